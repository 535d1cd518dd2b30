// wg's renderers, as show.c and showconf.c print them: `wg show` (pretty, with colours and
// durations as terminal.c filters them), the field and dump forms, showconf, and our --json.
//
// Strings here are "byte strings": one JS char per byte (latin1), because wg prints raw bytes
// (interface names are truncated to 15 bytes, not characters). cmd/ converts at the edges.
import type { AllowedIp, WgDevice, WgPeer } from "./containers.ts";
import { inetNtop4, inetNtop6 } from "../inet.ts";
import { keyToBase64 } from "../encoding.ts";
import { AsciiWriter } from "../ascii.ts";
import { REJECT_AFTER_TIME_MS } from "../timers.ts";

export function formatAllowedIp(ip: AllowedIp): string {
  return (ip.family === 4 ? inetNtop4(ip.addr) : inetNtop6(ip.addr)) + "/" + ip.cidr;
}

// ---------------------------------------------------------------------------------------------
// Units and durations

const RESET = "\x1b[0m", BOLD = "\x1b[1m", GREEN = "\x1b[32m", YELLOW = "\x1b[33m", CYAN = "\x1b[36m";
const RED = "\x1b[31m";

/** C printf("%.2f") of the double n / 2^shift (n an integral double): round half to even. */
function fixed2(n: number, shift: number): string {
  const num = BigInt(n) * 100n;
  const q = num >> BigInt(shift);
  const r = num - (q << BigInt(shift));
  const twice = r * 2n, whole = 1n << BigInt(shift);
  const rounded = twice > whole || (twice === whole && (q & 1n) === 1n) ? q + 1n : q;
  const s = rounded.toString().padStart(3, "0");
  return s.slice(0, -2) + "." + s.slice(-2);
}

export function formatBytes(b: bigint): string {
  const d = Number(b);
  if (b < 1024n) return `${b} ${CYAN}B${RESET}`;
  if (b < 1n << 20n) return `${fixed2(d, 10)} ${CYAN}KiB${RESET}`;
  if (b < 1n << 30n) return `${fixed2(d, 20)} ${CYAN}MiB${RESET}`;
  if (b < 1n << 40n) return `${fixed2(d, 30)} ${CYAN}GiB${RESET}`;
  return `${fixed2(d, 40)} ${CYAN}TiB${RESET}`;
}

export function prettyTime(left: bigint): string {
  const Y = 365n * 24n * 3600n, D = 24n * 3600n;
  const parts: [bigint, string][] = [
    [left / Y, "year"],
    [(left % Y) / D, "day"],
    [(left % D) / 3600n, "hour"],
    [(left % 3600n) / 60n, "minute"],
    [left % 60n, "second"],
  ];
  let s = "";
  for (const [n, unit] of parts) {
    if (!n) continue;
    s += `${s ? ", " : ""}${n} ${CYAN}${unit}${n === 1n ? "" : "s"}${RESET}`;
  }
  return s;
}

export function ago(sec: bigint, now: bigint): string {
  if (now === sec) return "Now";
  if (now < sec) return `(${RED}System clock wound backward; connection problems may ensue.${RESET})`;
  return prettyTime(now - sec) + " ago";
}

/** wg's terminal filter: drop every ESC [ ... <letter> sequence (as terminal.c does it). */
export function stripAnsi(s: string): string {
  const len = s.length;
  if (len < 2) return s;
  const drop = new Uint8Array(len);
  for (let i = 0; i < len - 2; i++) {
    if (drop[i] || s.charCodeAt(i) !== 0x1b || s.charCodeAt(i + 1) !== 0x5b) continue;
    drop[i] = drop[i + 1] = 1;
    let j = i + 2;
    for (; j < len; j++) {
      const c = s.charCodeAt(j);
      if ((c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)) break;
      drop[j] = 1;
    }
    if (j < len) drop[j] = 1;
  }
  let out = "";
  for (let i = 0; i < len; i++) if (!drop[i]) out += s[i];
  return out;
}

// ---------------------------------------------------------------------------------------------
// show / showconf renderers

function hasHandshake(p: WgPeer): boolean {
  return p.lastHandshakeSec !== 0n || p.lastHandshakeNsec !== 0n;
}

/** wg's pretty order: newest handshake first, never-handshaken last, ties keep daemon order. */
export function sortPeersForShow(peers: readonly WgPeer[]): WgPeer[] {
  return [...peers].sort((a, b) => {
    const ha = hasHandshake(a), hb = hasHandshake(b);
    if (!ha && hb) return 1;
    if (!hb && ha) return -1;
    let diff = a.lastHandshakeSec - b.lastHandshakeSec;
    if (!diff) diff = a.lastHandshakeNsec - b.lastHandshakeNsec;
    return diff < 0n ? 1 : diff > 0n ? -1 : 0;
  });
}

export interface PrettyOptions {
  /** time(NULL) of the caller. */
  now: bigint;
  color: boolean;
  /** WG_HIDE_KEYS=never shows private and preshared keys. */
  showKeys: boolean;
}

/** The C code prints in many terminal_printf calls, each filtered separately; so do we. */
export function prettyDevice(dev: WgDevice, o: PrettyOptions): string {
  const chunks: string[] = [];
  const p = (s: string) => chunks.push(o.color ? s : stripAnsi(s));
  const masked = (k: Uint8Array) => (o.showKeys ? keyToBase64(k) : "(hidden)");
  p(RESET);
  p(`${GREEN}${BOLD}interface${RESET}: ${GREEN}${dev.name}${RESET}\n`);
  if (dev.publicKey) p(`  ${BOLD}public key${RESET}: ${keyToBase64(dev.publicKey)}\n`);
  if (dev.privateKey) p(`  ${BOLD}private key${RESET}: ${masked(dev.privateKey)}\n`);
  if (dev.listenPort) p(`  ${BOLD}listening port${RESET}: ${dev.listenPort}\n`);
  if (dev.fwmark) p(`  ${BOLD}fwmark${RESET}: 0x${dev.fwmark.toString(16)}\n`);
  const peers = sortPeersForShow(dev.peers);
  if (peers.length) p("\n");
  peers.forEach((peer, idx) => {
    p(`${YELLOW}${BOLD}peer${RESET}: ${YELLOW}${keyToBase64(peer.publicKey)}${RESET}\n`);
    if (peer.presharedKey) p(`  ${BOLD}preshared key${RESET}: ${masked(peer.presharedKey)}\n`);
    if (peer.endpoint !== null) p(`  ${BOLD}endpoint${RESET}: ${peer.endpoint}\n`);
    p(`  ${BOLD}allowed ips${RESET}: `);
    if (peer.allowedIps.length) {
      peer.allowedIps.forEach((ip, i) => {
        const addr = ip.family === 4 ? inetNtop4(ip.addr) : inetNtop6(ip.addr);
        p(`${addr}${CYAN}/${RESET}${ip.cidr}${i + 1 < peer.allowedIps.length ? ", " : "\n"}`);
      });
    } else p("(none)\n");
    if (peer.lastHandshakeSec) p(`  ${BOLD}latest handshake${RESET}: ${ago(peer.lastHandshakeSec, o.now)}\n`);
    if (peer.rxBytes || peer.txBytes) {
      p(`  ${BOLD}transfer${RESET}: `);
      p(`${formatBytes(peer.rxBytes)} received, `);
      p(`${formatBytes(peer.txBytes)} sent\n`);
    }
    if (peer.persistentKeepalive)
      p(`  ${BOLD}persistent keepalive${RESET}: every ${prettyTime(BigInt(peer.persistentKeepalive))}\n`);
    if (idx + 1 < peers.length) p("\n");
  });
  return chunks.join("");
}

const maybeKey = (k: Uint8Array | null) => (k ? keyToBase64(k) : "(none)");
const fwmarkText = (m: number) => (m ? `0x${m.toString(16)}` : "off");

/** `wg show IF dump` (written as bytes: it is megabytes for 10,000 peers). */
export function dumpDevice(dev: WgDevice, withInterface: boolean): string {
  const pre = withInterface ? `${dev.name}\t` : "";
  const w = new AsciiWriter();
  const key = (k: Uint8Array | null) => (k ? w.key64(k) : w.str("(none)"));
  const TAB = 9, NL = 10;
  w.str(pre);
  key(dev.privateKey);
  w.char(TAB);
  key(dev.publicKey);
  w.str(`\t${dev.listenPort}\t${fwmarkText(dev.fwmark)}\n`);
  for (const p of dev.peers) {
    w.str(pre);
    w.key64(p.publicKey);
    w.char(TAB);
    key(p.presharedKey);
    w.char(TAB);
    w.str(p.endpoint ?? "(none)");
    w.char(TAB);
    const ips = p.allowedIps;
    if (!ips.length) w.str("(none)");
    for (let i = 0; i < ips.length; i++) {
      const ip = ips[i]!;
      if (i) w.char(0x2c);
      if (ip.family === 4) w.prefix4(ip.addr, ip.cidr);
      else w.str(formatAllowedIp(ip));
    }
    w.str(`\t${p.lastHandshakeSec}\t${p.rxBytes}\t${p.txBytes}\t${p.persistentKeepalive || "off"}`);
    w.char(NL);
  }
  return w.text();
}

/** One `wg show IF FIELD` answer; null for an unknown field. */
export function fieldOfDevice(dev: WgDevice, field: string, withInterface: boolean): string | null {
  const pre = withInterface ? `${dev.name}\t` : "";
  const perPeer = (f: (p: WgPeer) => string) => dev.peers.map((p) => `${pre}${keyToBase64(p.publicKey)}\t${f(p)}\n`).join("");
  switch (field) {
    case "public-key":
      return `${pre}${maybeKey(dev.publicKey)}\n`;
    case "private-key":
      return `${pre}${maybeKey(dev.privateKey)}\n`;
    case "listen-port":
      return `${pre}${dev.listenPort}\n`;
    case "fwmark":
      return `${pre}${fwmarkText(dev.fwmark)}\n`;
    case "endpoints":
      // v1.0.20210914 prints the prefix once per interface, not per line (spec 4.4).
      return pre + dev.peers.map((p) => `${keyToBase64(p.publicKey)}\t${p.endpoint ?? "(none)"}\n`).join("");
    case "allowed-ips":
      return perPeer((p) => (p.allowedIps.length ? p.allowedIps.map(formatAllowedIp).join(" ") : "(none)"));
    case "latest-handshakes":
      return perPeer((p) => `${p.lastHandshakeSec}`);
    case "transfer":
      return perPeer((p) => `${p.rxBytes}\t${p.txBytes}`);
    case "persistent-keepalive":
      return perPeer((p) => (p.persistentKeepalive ? `${p.persistentKeepalive}` : "off"));
    case "preshared-keys":
      return perPeer((p) => maybeKey(p.presharedKey));
    case "peers":
      return dev.peers.map((p) => `${pre}${keyToBase64(p.publicKey)}\n`).join("");
    case "dump":
      return dumpDevice(dev, withInterface);
  }
  return null;
}

export function showconfDevice(dev: WgDevice): string {
  let s = "[Interface]\n";
  if (dev.listenPort) s += `ListenPort = ${dev.listenPort}\n`;
  if (dev.fwmark) s += `FwMark = 0x${dev.fwmark.toString(16)}\n`;
  if (dev.privateKey) s += `PrivateKey = ${keyToBase64(dev.privateKey)}\n`;
  s += "\n";
  dev.peers.forEach((p, i) => {
    s += `[Peer]\nPublicKey = ${keyToBase64(p.publicKey)}\n`;
    if (p.presharedKey) s += `PresharedKey = ${keyToBase64(p.presharedKey)}\n`;
    if (p.allowedIps.length) s += `AllowedIPs = ${p.allowedIps.map(formatAllowedIp).join(", ")}\n`;
    if (p.endpoint !== null) s += `Endpoint = ${p.endpoint}\n`;
    if (p.persistentKeepalive) s += `PersistentKeepalive = ${p.persistentKeepalive}\n`;
    if (i + 1 < dev.peers.length) s += "\n";
  });
  return s;
}

/**
 * A peer counts as online while its latest handshake is younger than REJECT_AFTER_TIME: a
 * session from it may still carry data. `wg show --json`, `wg events` and `wg exporter` use it.
 */
export const ONLINE_WINDOW_MS = REJECT_AFTER_TIME_MS;

/** Whether a handshake at `lastHandshakeMs` (Unix ms, 0 for never) leaves its peer online at `nowMs`. */
export function handshakeOnline(lastHandshakeMs: number, nowMs: number): boolean {
  return lastHandshakeMs > 0 && nowMs - lastHandshakeMs < ONLINE_WINDOW_MS;
}

export function peerOnline(p: WgPeer, nowSec: bigint): boolean {
  return handshakeOnline(Number(p.lastHandshakeSec) * 1000, Number(nowSec) * 1000);
}

// Counters are u64 on the wire; JSON numbers are exact only below 2^53, so larger ones stay text.
const jsonInt = (v: bigint): number | string => (v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString());
const keyOrNull = (k: Uint8Array | null) => (k ? keyToBase64(k) : null);

/**
 * The `wg show --json` form of one interface: every field of `dump` under stable snake_case
 * names (absent values are null, not "(none)"/"off"), plus the derived `online` flag.
 */
export function jsonDevice(dev: WgDevice, nowSec: bigint): Record<string, unknown> {
  return {
    name: dev.name,
    private_key: keyOrNull(dev.privateKey),
    public_key: keyOrNull(dev.publicKey),
    listen_port: dev.listenPort,
    fwmark: dev.fwmark || null,
    peers: dev.peers.map((p) => ({
      public_key: keyToBase64(p.publicKey),
      preshared_key: keyOrNull(p.presharedKey),
      endpoint: p.endpoint,
      allowed_ips: p.allowedIps.map(formatAllowedIp),
      latest_handshake: jsonInt(p.lastHandshakeSec),
      latest_handshake_nsec: jsonInt(p.lastHandshakeNsec),
      transfer_rx: jsonInt(p.rxBytes),
      transfer_tx: jsonInt(p.txBytes),
      persistent_keepalive: p.persistentKeepalive || null,
      online: peerOnline(p, nowSec),
    })),
  };
}
