// The client library's data model (platform/wg-client.ts is its entry): devices and peers as read,
// change requests and events, in plain JS types (keys as base64 text, addresses as text, counters
// as bigint), and the conversions to and from the tool's own containers (containers.ts), so a
// library call travels the same codecs and backends as the `wg` command.
import { isZeroKey, keyFromBase64, keyToBase64 } from "../encoding.ts";
import { EINVAL } from "../errno.ts";
import type { AllowedIp, DeviceConfig, PeerConfig, WgDevice, WgPeer } from "./containers.ts";
import { emptyPeerConfig } from "./containers.ts";
import { parseAllowedIps, parseEndpoint, type ParseEnv } from "./config.ts";
import { formatAllowedIp, peerOnline } from "./show.ts";
import { badArgument, badKey, InvalidArgumentError } from "./client-errors.ts";
import { handshakeMs, type EventType } from "./events.ts";

/** One interface as `wg show IFACE dump` reports it, field for field. */
export interface Device {
  name: string;
  /** base64; null when none is set. */
  privateKey: string | null;
  publicKey: string | null;
  /** 0 when the device has not bound a port yet. */
  listenPort: number;
  /** null when off (0). */
  fwmark: number | null;
  peers: Peer[];
}

export interface Peer {
  publicKey: string;
  /** null when none is set. */
  presharedKey: string | null;
  /** `203.0.113.1:51820`, `[2001:db8::1]:51820`; null when unknown. */
  endpoint: string | null;
  /** `10.0.0.0/24`, `fd00::/64`, in the daemon's order. */
  allowedIPs: string[];
  /** Time of the latest handshake (millisecond precision); null when there was none. */
  latestHandshake: Date | null;
  /** The same time exactly: UNIX seconds (0 = never) and nanoseconds. */
  latestHandshakeSec: bigint;
  latestHandshakeNsec: number;
  rxBytes: bigint;
  txBytes: bigint;
  /** Seconds; null when off. */
  persistentKeepalive: number | null;
  /** A handshake within the last 180 s (as `wg show --json` reports it), judged at read time. */
  online: boolean;
}

/** A change to one interface; absent fields are left as they are. */
export interface DeviceUpdate {
  /** base64; null removes the key. */
  privateKey?: string | null;
  listenPort?: number;
  /** 0 turns it off. */
  fwmark?: number;
  /** Remove every peer first; those in `peers` are then created anew from this update alone. */
  replacePeers?: boolean;
  peers?: PeerUpdate[];
}

export interface PeerUpdate {
  publicKey: string;
  /** Remove this peer; every other field is ignored. */
  remove?: boolean;
  /** Change the peer only if it exists; never create it. */
  updateOnly?: boolean;
  /** base64; null removes it. */
  presharedKey?: string | null;
  /** `HOST:PORT` or `[V6]:PORT`; a name is resolved once, here, as `wg set` resolves it. */
  endpoint?: string;
  /** Seconds, 0 = off. */
  persistentKeepalive?: number;
  /** Drop the peer's allowed IPs before adding `allowedIPs` (which may then be empty). */
  replaceAllowedIPs?: boolean;
  /** Prefixes (`10.0.0.0/24`; a bare address is a host route) added to the peer's. */
  allowedIPs?: string[];
  /**
   * Prefixes taken from the peer's allowed IPs (exactly these; one the peer does not hold is
   * left alone), before `allowedIPs` are added. Backends without single removals (wireguard-go
   * 0.0.20220316, Linux before 6.16) get the peer's resulting list as a replacement instead.
   */
  removeAllowedIPs?: string[];
}

export type { EventType };

/** One line of `wg events`, typed. */
export interface WgEvent {
  time: Date;
  interface: string;
  type: EventType;
  publicKey: string;
  /** Set for `endpoint` (the new one) and `handshake` (where it came from) when known. */
  endpoint: string | null;
  lastHandshake: Date | null;
  online: boolean;
}

const b64OrNull = (k: Uint8Array | null) => (k && !isZeroKey(k) ? keyToBase64(k) : null);

/** The Date constructor, injected: core has no clock and makes no Date itself. */
export type MakeDate = (v: number | string) => Date;

function peerOf(p: WgPeer, nowSec: bigint, date: MakeDate): Peer {
  const sec = p.lastHandshakeSec, nsec = Number(p.lastHandshakeNsec);
  return {
    publicKey: keyToBase64(p.publicKey),
    presharedKey: b64OrNull(p.presharedKey),
    endpoint: p.endpoint,
    allowedIPs: p.allowedIps.map(formatAllowedIp),
    latestHandshake: sec === 0n ? null : date(handshakeMs(p)),
    latestHandshakeSec: sec,
    latestHandshakeNsec: nsec,
    rxBytes: p.rxBytes,
    txBytes: p.txBytes,
    persistentKeepalive: p.persistentKeepalive || null,
    online: peerOnline(p, nowSec),
  };
}

/** A device as read, in the library's form; its name is JS text already (the caller converts the OS's bytes). */
export function deviceOf(dev: WgDevice, nowSec: bigint, date: MakeDate): Device {
  return {
    name: dev.name,
    privateKey: b64OrNull(dev.privateKey),
    publicKey: b64OrNull(dev.publicKey),
    listenPort: dev.listenPort,
    fwmark: dev.fwmark || null,
    peers: dev.peers.map((p) => peerOf(p, nowSec, date)),
  };
}

function key(text: string | null, what: string): Uint8Array {
  if (text === null) return new Uint8Array(32);
  const k = typeof text === "string" ? keyFromBase64(text) : null;
  if (!k) throw badKey(what);
  return k;
}

function integer(v: number, max: number, what: string): number {
  if (!Number.isInteger(v) || v < 0 || v > max) throw badArgument(`${what} must be an integer from 0 to ${max}: ${v}`);
  return v;
}

/** `wg`'s parsers report through env.err; the library turns the text into the error's message. */
function collecting(env: Omit<ParseEnv, "err">): { env: ParseEnv; text: () => string } {
  let text = "";
  return { env: { ...env, err: (s) => void (text += s) }, text: () => text.trim() };
}

function peerConfigOf(u: PeerUpdate, env: Omit<ParseEnv, "err">): PeerConfig {
  const p = emptyPeerConfig();
  p.publicKey = key(u.publicKey, "peer public key");
  if (u.remove) {
    p.remove = true;
    return p;
  }
  if (u.updateOnly) p.updateOnly = true;
  if (u.presharedKey !== undefined) p.presharedKey = key(u.presharedKey, "preshared key");
  if (u.endpoint !== undefined) {
    const c = collecting(env);
    const ep = parseEndpoint(u.endpoint, c.env);
    if (ep === null) throw badArgument(c.text());
    p.endpoint = ep;
  }
  if (u.persistentKeepalive !== undefined) p.persistentKeepalive = integer(u.persistentKeepalive, 65535, "persistent keepalive");
  if (u.removeAllowedIPs !== undefined) {
    const removals = prefixes(u.removeAllowedIPs, env);
    for (const ip of removals) ip.remove = true;
    p.allowedIps.push(...removals);
  }
  if (u.allowedIPs !== undefined) p.allowedIps.push(...prefixes(u.allowedIPs, env));
  p.replaceAllowedIps = u.replaceAllowedIPs === true;
  return p;
}

/** A list of single prefixes, parsed as wg parses allowed IPs (no `+`/`-` signs here). */
function prefixes(list: string[], env: Omit<ParseEnv, "err">): AllowedIp[] {
  const c = collecting(env);
  const entries = list.map((s) => s.trim());
  if (entries.some((s) => s === "" || s.includes(","))) throw badArgument(`allowed IPs must be single prefixes: ${JSON.stringify(list)}`);
  const p = emptyPeerConfig();
  // Warnings (a set host part) are wg's to print; here the daemon masks the bits as usual.
  if (!parseAllowedIps(p, entries.join(","), { err: c.env.err }, false)) throw badArgument(c.text());
  return p.allowedIps;
}

/**
 * The tool's change request for `u`. `env` is the OS side of wg's parsers (name resolution);
 * throws BadKeyError or InvalidArgumentError naming the field at fault.
 */
export function configOf(u: DeviceUpdate, env: Omit<ParseEnv, "err">): DeviceConfig {
  const c: DeviceConfig = { replacePeers: u.replacePeers === true, peers: [] };
  if (u.privateKey !== undefined) c.privateKey = key(u.privateKey, "private key");
  if (u.listenPort !== undefined) c.listenPort = integer(u.listenPort, 65535, "listen port");
  if (u.fwmark !== undefined) c.fwmark = integer(u.fwmark, 0xffffffff, "fwmark");
  for (const p of u.peers ?? []) c.peers.push(peerConfigOf(p, env));
  return c;
}

const EVENT_TYPES: ReadonlySet<string> = new Set<EventType>(["handshake", "handshake-failed", "endpoint", "peer-added", "peer-removed", "keys-rotated"]);

/** One JSON line of the event stream, or an InvalidArgumentError when it is not one. */
export function eventOf(line: string, date: MakeDate): WgEvent {
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(line);
  } catch {
    throw new InvalidArgumentError(EINVAL, `not an event line: ${line}`);
  }
  const str = (k: string) => (typeof j[k] === "string" ? (j[k] as string) : null);
  const time = str("time"), iface = str("interface"), type = str("type"), pub = str("public_key");
  if (time === null || iface === null || type === null || pub === null || !EVENT_TYPES.has(type)) throw new InvalidArgumentError(EINVAL, `not an event line: ${line}`);
  const last = str("last_handshake");
  return {
    time: date(time),
    interface: iface,
    type: type as EventType,
    publicKey: pub,
    endpoint: str("endpoint"),
    lastHandshake: last === null ? null : date(last),
    online: j.online === true,
  };
}
