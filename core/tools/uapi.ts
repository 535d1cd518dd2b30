// Client side of the cross-platform UAPI text protocol, as wireguard-tools' ipc-uapi.h speaks it:
// build the `set=1` request from a parsed configuration, and parse a `get=1` answer into a device.
import { publicKey } from "../crypto.ts";
import { ENETUNREACH, EPROTO } from "../errno.ts";
import { isZeroKey, keyFromHex, keyToHex } from "../encoding.ts";
import { inetNtop4, inetNtop6, inetPton4, inetPton6 } from "../inet.ts";
import type { AllowedIp, DeviceConfig, WgDevice, WgPeer } from "./containers.ts";
import { strtoul } from "./config.ts";

/** The `set=1` request, keys in wg's fixed order; a removal is `allowed_ip=-PREFIX` (wg 1.0.20250521). */
export function buildSetRequest(c: DeviceConfig): string {
  let s = "set=1\n";
  if (c.privateKey) s += `private_key=${keyToHex(c.privateKey)}\n`;
  if (c.listenPort !== undefined) s += `listen_port=${c.listenPort}\n`;
  if (c.fwmark !== undefined) s += `fwmark=${c.fwmark >>> 0}\n`;
  if (c.replacePeers) s += "replace_peers=true\n";
  for (const p of c.peers) {
    s += `public_key=${keyToHex(p.publicKey ?? new Uint8Array(32))}\n`;
    if (p.updateOnly) s += "update_only=true\n";
    if (p.remove) {
      s += "remove=true\n";
      continue;
    }
    if (p.presharedKey) s += `preshared_key=${keyToHex(p.presharedKey)}\n`;
    if (p.endpoint !== undefined) s += `endpoint=${p.endpoint}\n`;
    if (p.persistentKeepalive !== undefined) s += `persistent_keepalive_interval=${p.persistentKeepalive}\n`;
    if (p.replaceAllowedIps) s += "replace_allowed_ips=true\n";
    for (const ip of p.allowedIps)
      s += `allowed_ip=${ip.remove ? "-" : ""}${ip.family === 4 ? inetNtop4(ip.addr) : inetNtop6(ip.addr)}/${ip.cidr}\n`;
  }
  return s + "\n";
}

export const GET_REQUEST = "get=1\n\n";

/** Resolves an endpoint a daemon reported (host and port split as wg does) to its display text. */
export type EndpointFormatter = (host: string, port: string) => string | null;

/** Numeric-only formatter (no resolver, no scope-id names): enough for what daemons send. */
export const numericEndpoint: EndpointFormatter = (host, port) => {
  if (!/^[0-9]+$/.test(port) || Number(port) > 65535) return null;
  const n = Number(port);
  if (!host.includes(":")) {
    const a = inetPton4(host);
    return a ? `${inetNtop4(a)}:${n}` : null;
  }
  const pct = host.indexOf("%");
  const a = inetPton6(pct >= 0 ? host.slice(0, pct) : host);
  if (!a) return null;
  const scope = pct >= 0 ? host.slice(pct + 1) : "";
  if (pct >= 0 && !/^[0-9]+$/.test(scope)) return null;
  // getnameinfo(NI_NUMERICHOST) appends a non-zero scope id, link-local or not.
  const scopeText = scope && Number(scope) ? `%${Number(scope)}` : "";
  return `[${inetNtop6(a)}${scopeText}]:${n}`;
};

export type GetResult = { ok: true; device: WgDevice } | { ok: false; errno: number };

const U16 = 0xffffn, U32 = 0xffffffffn, I63 = 0x7fffffffffffffffn, U64 = 0xffffffffffffffffn;

/** wg's NUM(max): first char a digit, fully decimal, <= max; else the answer is malformed. */
function num(v: string, max: bigint): bigint | null {
  const c = v.charCodeAt(0);
  if (!(c >= 0x30 && c <= 0x39)) return null;
  const { n, rest } = strtoul(v, 10);
  if (rest || n > max) return null;
  return n;
}

/**
 * Parse a `get=1` answer (the whole text read from the socket). `name` is the display name.
 * Mirrors userspace_get_device: malformed input is EPROTO, `errno=N` (N > 0) is that error.
 */
export function parseGetResponse(text: string, name: string, formatEndpoint: EndpointFormatter = numericEndpoint): GetResult {
  const dev: WgDevice = { name, privateKey: null, publicKey: null, listenPort: 0, fwmark: 0, peers: [] };
  let peer: WgPeer | null = null;
  let ret = -EPROTO;
  let pos = 0;
  const fail = { ok: false as const, errno: EPROTO };
  for (;;) {
    if (pos >= text.length) return fail;
    const nl = text.indexOf("\n", pos);
    let line = nl < 0 ? text.slice(pos) : text.slice(pos, nl + 1);
    pos = nl < 0 ? text.length : nl + 1;
    // getline hands over the bytes; strlen stops at an embedded NUL.
    const z = line.indexOf("\0");
    if (z >= 0) line = line.slice(0, z);
    if (line === "\n") break;
    const eq = line.indexOf("=");
    if (eq < 0 || line.length === 0 || !line.endsWith("\n")) return fail;
    const key = line.slice(0, eq);
    const value = line.slice(eq + 1, -1);
    if (!peer && key === "private_key") {
      const k = keyFromHex(value);
      if (!k) return fail;
      dev.privateKey = k;
      dev.publicKey = publicKey(k);
    } else if (!peer && key === "listen_port") {
      const n = num(value, U16);
      if (n === null) return fail;
      dev.listenPort = Number(n);
    } else if (!peer && key === "fwmark") {
      const n = num(value, U32);
      if (n === null) return fail;
      dev.fwmark = Number(n);
    } else if (key === "public_key") {
      const k = keyFromHex(value);
      if (!k) return fail;
      peer = {
        publicKey: k, presharedKey: null, endpoint: null, lastHandshakeSec: 0n, lastHandshakeNsec: 0n,
        rxBytes: 0n, txBytes: 0n, persistentKeepalive: 0, allowedIps: [],
      };
      dev.peers.push(peer);
    } else if (peer && key === "preshared_key") {
      const k = keyFromHex(value);
      if (!k) return fail;
      peer.presharedKey = isZeroKey(k) ? null : k;
    } else if (peer && key === "endpoint") {
      let host: string, port: string;
      if (!value.length) return fail;
      if (value[0] === "[") {
        const end = value.indexOf("]");
        if (end < 0 || value[end + 1] !== ":" || end + 2 >= value.length) return fail;
        host = value.slice(1, end);
        port = value.slice(end + 2);
      } else {
        const end = value.lastIndexOf(":");
        if (end < 0 || end + 1 >= value.length) return fail;
        host = value.slice(0, end);
        port = value.slice(end + 1);
      }
      const ep = formatEndpoint(host, port);
      if (ep === null) return { ok: false, errno: ENETUNREACH /* as the reference sets */ };
      peer.endpoint = ep;
    } else if (peer && key === "persistent_keepalive_interval") {
      const n = num(value, U16);
      if (n === null) return fail;
      peer.persistentKeepalive = Number(n);
    } else if (peer && key === "allowed_ip") {
      const slash = value.indexOf("/");
      if (slash < 0) return fail;
      const ip = value.slice(0, slash), mask = value.slice(slash + 1);
      const c = mask.charCodeAt(0);
      if (!(c >= 0x30 && c <= 0x39)) return fail;
      const a = ip.includes(":") ? inetPton6(ip) : inetPton4(ip);
      const { n, rest } = strtoul(mask, 10);
      // wg stores the prefix length in a uint8_t before range-checking it.
      const cidr = Number(n & 0xffn);
      if (rest || !a || cidr > (a.length === 4 ? 32 : 128)) return fail;
      peer.allowedIps.push({ family: a.length === 4 ? 4 : 6, addr: a, cidr });
    } else if (peer && key === "last_handshake_time_sec") {
      const n = num(value, I63);
      if (n === null) return fail;
      peer.lastHandshakeSec = n;
    } else if (peer && key === "last_handshake_time_nsec") {
      const n = num(value, I63);
      if (n === null) return fail;
      peer.lastHandshakeNsec = n;
    } else if (peer && key === "rx_bytes") {
      const n = num(value, U64);
      if (n === null) return fail;
      peer.rxBytes = n;
    } else if (peer && key === "tx_bytes") {
      const n = num(value, U64);
      if (n === null) return fail;
      peer.txBytes = n;
    } else if (key === "errno") {
      const n = num(value, 0x7fffffffn);
      if (n === null) return fail;
      ret = -Number(n);
    }
  }
  if (ret) return { ok: false, errno: -ret };
  return { ok: true, device: dev };
}

/**
 * Parse the answer to a `set=1` request: 0 on success, else the positive errno wg reports
 * (strerror(-value), so a positive daemon value yields a negative errno = "Unknown error -N").
 */
export function parseSetResponse(text: string): number {
  let ret: number | null = null;
  let pos = 0;
  for (;;) {
    if (pos >= text.length) return EPROTO;
    const nl = text.indexOf("\n", pos);
    let line = nl < 0 ? text.slice(pos) : text.slice(pos, nl + 1);
    pos = nl < 0 ? text.length : nl + 1;
    const z = line.indexOf("\0");
    if (z >= 0) line = line.slice(0, z);
    if (line === "\n") return ret === null ? EPROTO : ret === 0 || ret === -0x80000000 ? ret : -ret;
    const eq = line.indexOf("=");
    if (eq < 0 || !line.endsWith("\n")) return EPROTO;
    if (line.slice(0, eq) === "errno") {
      const v = line.slice(eq + 1, -1);
      const c = v.charCodeAt(0);
      if (c !== 0x2d && !(c >= 0x30 && c <= 0x39)) return EPROTO;
      if (!/^-?[0-9]+$/.test(v)) return EPROTO;
      const n = BigInt(v);
      if (n > 0x7fffffffn || n < -0x80000000n) return EPROTO;
      ret = Number(n);
    }
  }
}

/** True when the whole answer (through its terminating empty line) has arrived. */
export function responseComplete(text: string): boolean {
  return text.startsWith("\n") || text.includes("\n\n");
}
