// Server side of the cross-platform UAPI (protocol.md §14, wg-tools.md §9), behaving like
// wireguard-go 0.0.20220316 (plus the newer `allowed_ip=-prefix` removal): same output order,
// same negative errno values, values applied as they are read.
import type { UapiDevice, UapiReply } from "./device-api.ts";
import { Endpoint } from "./endpoint.ts";
import { EADDRINUSE, EINVAL, EIO, EPROTO } from "./errno.ts";
import { inetPton4, inetPton6 } from "./inet.ts";
import type { Peer } from "./peer.ts";
import { keyFromHex } from "./encoding.ts";
import { formatPrefix, parsePrefix } from "./allowedips.ts";
import { AsciiWriter } from "./ascii.ts";
import { equal } from "./crypto.ts";

class UapiError extends Error {
  constructor(
    readonly errno: number,
    message: string,
  ) {
    super(message);
  }
}

/** The peer being configured; `dummy` swallows lines for ignored/removed peers like go. */
interface SetPeer {
  peer: Peer | null;
  dummy: boolean;
  created: boolean;
  /** Persistent keepalive turned on or an endpoint given: such a peer sends a keepalive now. */
  startKeepalive: boolean;
}

/**
 * Serve the bytes of one UAPI connection, operations in order. An unknown operation or a
 * truncated request ends the answer there and asks for the connection to be closed (go's
 * IpcHandle returns); an empty response with `close` means "close without answering".
 */
export function handleUapi(dev: UapiDevice, request: string): UapiReply {
  const lines = new LineReader(request);
  let out = "";
  for (;;) {
    const op = lines.readLine();
    if (op === null) return { response: out, close: false };
    let errno = 0;
    if (op === "set=1") {
      try {
        setOperation(dev, lines);
      } catch (e) {
        errno = e instanceof UapiError ? e.errno : EIO;
        dev.log("error", `UAPI: ${(e as Error).message}`);
      }
      out += `errno=${errno === 0 ? 0 : -errno}\n\n`;
      // go's line scanner has read ahead past a failed set; nothing after it is served.
      if (errno !== 0) return { response: out, close: false };
    } else if (op === "get=1") {
      const c = lines.readChar();
      if (c === null) return { response: out, close: true };
      if (c !== "\n") {
        dev.log("error", `UAPI: trailing character in UAPI get: ${JSON.stringify(c)}`);
        out += `errno=${-EINVAL}\n\n`;
      } else {
        out += getOperation(dev) + "errno=0\n\n";
      }
    } else {
      dev.log("error", `UAPI: invalid UAPI operation: ${op}`);
      return { response: out, close: true };
    }
  }
}

/**
 * Parse a numeric endpoint as go's netip.ParseAddrPort does: `ip:port` or `[ip6(%zone)]:port`,
 * port decimal 0-65535. The zone is accepted but dropped, as wireguard-go 0.0.20220316 does (it
 * prints `[fe80::1]:5` after `endpoint=[fe80::1%lo]:5`).
 */
export function parseAddrPort(text: string): Endpoint | null {
  let host: string;
  let portText: string;
  if (text.startsWith("[")) {
    const close = text.indexOf("]");
    if (close === -1 || text[close + 1] !== ":") return null;
    host = text.slice(1, close);
    portText = text.slice(close + 2);
  } else {
    const colon = text.lastIndexOf(":");
    if (colon === -1) return null;
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (host.includes(":")) return null;
  }
  if (!/^[0-9]{1,5}$/.test(portText)) return null;
  const port = Number(portText);
  if (port > 65535) return null;
  const pct = host.indexOf("%");
  if (pct !== -1) {
    if (pct + 1 === host.length) return null;
    host = host.slice(0, pct);
  }
  if (host.includes(":")) {
    const addr = inetPton6(host);
    return addr === null ? null : Endpoint.of(6, addr, port);
  }
  const addr = inetPton4(host);
  if (addr === null || pct !== -1 || text.startsWith("[")) return null;
  return Endpoint.of(4, addr, port);
}

class LineReader {
  private pos = 0;
  constructor(private readonly text: string) {}
  /** A complete line without its "\n", or null when no newline is left (EOF). */
  readLine(): string | null {
    const nl = this.text.indexOf("\n", this.pos);
    if (nl === -1) return null;
    const line = this.text.slice(this.pos, nl);
    this.pos = nl + 1;
    return line;
  }
  /** Like bufio.Scanner lines: the last line may lack "\n"; a trailing "\r" is dropped. */
  scanLine(): string | null {
    if (this.pos >= this.text.length) return null;
    let line = this.readLine();
    if (line === null) {
      line = this.text.slice(this.pos);
      this.pos = this.text.length;
    }
    return line.endsWith("\r") ? line.slice(0, -1) : line;
  }
  readChar(): string | null {
    if (this.pos >= this.text.length) return null;
    return this.text[this.pos++]!;
  }
}

export function getOperation(dev: UapiDevice): string {
  const w = new AsciiWriter();
  if (dev.privateKey !== null) {
    w.str("private_key=");
    w.hex(dev.privateKey);
    w.str("\n");
  }
  if (dev.listenPort !== 0) w.str(`listen_port=${dev.listenPort}\n`);
  if (dev.fwmark !== 0) w.str(`fwmark=${dev.fwmark}\n`);
  for (const p of dev.peers.values()) {
    w.str("public_key=");
    w.str(p.publicKeyHex);
    w.str("\npreshared_key=");
    w.hex(p.handshake.presharedKey);
    w.str("\nprotocol_version=1\n");
    if (p.endpoint !== null) {
      w.str("endpoint=");
      w.str(dev.endpointText(p.endpoint));
      w.str("\n");
    }
    const ms = p.lastHandshakeWallMs;
    const sec = Math.floor(ms / 1000);
    const nsec = Math.min(999_999_999, Math.max(0, Math.round((ms - sec * 1000) * 1e6)));
    w.str("last_handshake_time_sec=");
    w.uint(sec);
    w.str("\nlast_handshake_time_nsec=");
    w.uint(nsec);
    w.str("\ntx_bytes=");
    w.uint(p.txBytes);
    w.str("\nrx_bytes=");
    w.uint(p.rxBytes);
    w.str("\npersistent_keepalive_interval=");
    w.uint(p.persistentKeepalive);
    w.str("\n");
    for (const e of dev.allowedIps.entriesFor(p)) {
      w.str("allowed_ip=");
      if (e.family === 4) w.prefix4(e.addr, e.cidr);
      else w.str(formatPrefix(e));
      w.str("\n");
    }
  }
  return w.text();
}

function parseUint(value: string, max: number, what: string): number {
  if (!/^[0-9]+$/.test(value)) throw new UapiError(EINVAL, `failed to parse ${what}: ${value}`);
  const n = Number(value);
  if (n > max) throw new UapiError(EINVAL, `failed to parse ${what}: ${value} out of range`);
  return n;
}

function setOperation(dev: UapiDevice, lines: LineReader): void {
  const cur: SetPeer = { peer: null, dummy: false, created: false, startKeepalive: false };
  let deviceConfig = true;
  let keySet = false;
  // After the device lines, a new private key lets the remaining peers start (their keepalives),
  // once replace_peers has removed the ones this request drops.
  const endDevice = () => {
    if (deviceConfig && keySet) dev.startPeers();
    deviceConfig = false;
  };
  for (;;) {
    const line = lines.scanLine();
    if (line === null || line === "") {
      endDevice();
      postConfig(dev, cur);
      return;
    }
    const eq = line.indexOf("=");
    if (eq === -1) throw new UapiError(EPROTO, `failed to parse line ${JSON.stringify(line)}`);
    const key = line.slice(0, eq);
    const value = line.slice(eq + 1);
    if (key === "public_key") {
      endDevice();
      postConfig(dev, cur);
      publicKeyLine(dev, cur, value);
      continue;
    }
    if (deviceConfig) keySet = deviceLine(dev, key, value) || keySet;
    else peerLine(dev, cur, key, value);
  }
}

/** One device line; true for a private key. */
function deviceLine(dev: UapiDevice, key: string, value: string): boolean {
  switch (key) {
    case "private_key": {
      const sk = keyFromHex(value);
      if (sk === null) throw new UapiError(EINVAL, "failed to set private_key: invalid hex");
      dev.log("verbose", "UAPI: Updating private key");
      dev.setPrivateKey(sk);
      sk.fill(0);
      return true;
    }
    case "listen_port": {
      const port = parseUint(value, 65535, "listen_port");
      dev.log("verbose", "UAPI: Updating listen port");
      try {
        dev.setListenPort(port);
      } catch (e) {
        throw new UapiError(EADDRINUSE, `failed to set listen_port: ${(e as Error).message}`);
      }
      return false;
    }
    case "fwmark": {
      const mark = parseUint(value, 0xffffffff, "fwmark");
      dev.log("verbose", "UAPI: Updating fwmark");
      try {
        dev.setFwmark(mark);
      } catch (e) {
        throw new UapiError(EADDRINUSE, `failed to update fwmark: ${(e as Error).message}`);
      }
      return false;
    }
    case "replace_peers":
      if (value !== "true") throw new UapiError(EINVAL, `failed to set replace_peers, invalid value: ${value}`);
      dev.log("verbose", "UAPI: Removing all peers");
      dev.removeAllPeers();
      return false;
    default:
      throw new UapiError(EINVAL, `invalid UAPI device key: ${key}`);
  }
}

function publicKeyLine(dev: UapiDevice, cur: SetPeer, value: string): void {
  const pub = keyFromHex(value);
  if (pub === null) throw new UapiError(EINVAL, "failed to get peer by public key: invalid hex");
  cur.startKeepalive = false;
  cur.created = false;
  cur.dummy = dev.publicKey !== null && equal(dev.publicKey, pub);
  if (cur.dummy) {
    cur.peer = null;
    return;
  }
  const existing = dev.lookupPeer(pub);
  cur.created = existing === undefined;
  cur.peer = existing ?? dev.createPeer(pub);
}

function peerLine(dev: UapiDevice, cur: SetPeer, key: string, value: string): void {
  const peer = cur.dummy ? null : cur.peer;
  // Only build the log name when someone listens: a 10k-peer setconf would pay for it per line.
  const name = !dev.logging ? "" : peer ? peer.name : "peer(dummy)";
  switch (key) {
    case "update_only":
      if (value !== "true") throw new UapiError(EINVAL, `failed to set update only, invalid value: ${value}`);
      if (cur.created && peer) {
        dev.removePeer(peer);
        cur.peer = null;
        cur.dummy = true;
      }
      return;
    case "remove":
      if (value !== "true") throw new UapiError(EINVAL, `failed to set remove, invalid value: ${value}`);
      if (peer) {
        dev.log("verbose", `${name} - UAPI: Removing`);
        dev.removePeer(peer);
      }
      cur.peer = null;
      cur.dummy = true;
      return;
    case "preshared_key": {
      dev.log("verbose", `${name} - UAPI: Updating preshared key`);
      const psk = keyFromHex(value);
      if (psk === null) throw new UapiError(EINVAL, "failed to set preshared key: invalid hex");
      if (peer) peer.handshake.presharedKey.set(psk);
      psk.fill(0);
      return;
    }
    case "endpoint": {
      dev.log("verbose", `${name} - UAPI: Updating endpoint`);
      const ep = parseAddrPort(value);
      if (ep === null) throw new UapiError(EINVAL, `failed to set endpoint ${value}`);
      if (peer) {
        dev.setEndpoint(peer, ep);
        cur.startKeepalive = true;
      }
      return;
    }
    case "persistent_keepalive_interval": {
      dev.log("verbose", `${name} - UAPI: Updating persistent keepalive interval`);
      const secs = parseUint(value, 65535, "persistent keepalive interval");
      if (peer) {
        const old = peer.persistentKeepalive;
        peer.persistentKeepalive = secs;
        if (old === 0 && secs !== 0) cur.startKeepalive = true;
      }
      return;
    }
    case "replace_allowed_ips":
      dev.log("verbose", `${name} - UAPI: Removing all allowedips`);
      if (value !== "true") throw new UapiError(EINVAL, `failed to replace allowedips, invalid value: ${value}`);
      if (peer) dev.allowedIps.removeByPeer(peer);
      return;
    case "allowed_ip": {
      const remove = value.startsWith("-");
      const text = remove ? value.slice(1) : value;
      dev.log("verbose", `${name} - UAPI: ${remove ? "Removing" : "Adding"} allowedip`);
      // netip.ParsePrefix: the "/bits" part is mandatory and the address carries no zone.
      const prefix = text.includes("/") && !text.includes("%") ? parsePrefix(text) : null;
      if (prefix === null) throw new UapiError(EINVAL, `failed to set allowed ip: ${text}`);
      if (!peer) return;
      if (remove) dev.allowedIps.remove(prefix.family, prefix.addr, prefix.cidr, peer);
      else dev.allowedIps.insert(prefix.family, prefix.addr, prefix.cidr, peer);
      return;
    }
    case "protocol_version":
      if (value !== "1") throw new UapiError(EINVAL, `invalid protocol version: ${value}`);
      return;
    default:
      throw new UapiError(EINVAL, `invalid UAPI peer key: ${key}`);
  }
}

function postConfig(dev: UapiDevice, cur: SetPeer): void {
  if (cur.peer === null || cur.dummy) return;
  dev.peerConfigured(cur.peer, cur.startKeepalive);
}
