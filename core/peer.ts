// Per-peer state (protocol.md §7, §11) and endpoint text helpers. Behaviour lives in device.ts.
import { CookieGenerator } from "./cookie.ts";
import { keyToBase64, keyToHex } from "./encoding.ts";
import type { Endpoint } from "./device-api.ts";
import type { Keypair } from "./keypair.ts";
import { Handshake } from "./noise.ts";
import { PeerTimers, TimerHint } from "./timers.ts";
import { parseIp, formatIp } from "./allowedips.ts";

export const MAX_STAGED_PACKETS = 128;

export class Peer {
  readonly handshake: Handshake;
  readonly cookie: CookieGenerator;
  readonly timers: PeerTimers;
  readonly publicKeyHex: string;
  endpoint: Endpoint | null = null;
  persistentKeepalive = 0;
  current: Keypair<Peer> | null = null;
  previous: Keypair<Peer> | null = null;
  next: Keypair<Peer> | null = null;
  /** Copies of packets waiting for a usable keypair; oldest first, at most MAX_STAGED_PACKETS. */
  staged: Uint8Array[] = [];
  txBytes = 0;
  rxBytes = 0;
  /** Wall-clock ms of the last completed handshake (0 = never). */
  lastHandshakeWallMs = 0;
  lastSentHandshakeMono = -Infinity;
  /** Our index of the pending initiation registered in the device (-1: none). */
  handshakeIndex = -1;
  removed = false;
  private logName: string | null = null;

  constructor(
    readonly publicKey: Uint8Array,
    hint?: TimerHint,
  ) {
    this.timers = new PeerTimers(hint);
    this.handshake = new Handshake(publicKey);
    this.cookie = new CookieGenerator(publicKey);
    this.publicKeyHex = keyToHex(publicKey);
  }

  /** peerName() of this peer, built once: every handshake logs it, whatever the log level. */
  get name(): string {
    return (this.logName ??= peerName(this.publicKey));
  }

  /** Queue a copy of a packet (empty = keepalive), dropping the oldest beyond the bound. */
  stage(pkt: Uint8Array): void {
    if (this.staged.length >= MAX_STAGED_PACKETS) this.staged.shift();
    this.staged.push(pkt);
  }
}

/** wireguard-go's log name for a peer: `peer(ABCD…wxyz)` from the base64 public key. */
export function peerName(pub: Uint8Array): string {
  const b64 = keyToBase64(pub);
  return `peer(${b64.slice(0, 4)}…${b64.slice(39, 43)})`;
}

/** `a.b.c.d:port` or `[v6]:port` (go's AddrPort.String). */
export function formatEndpoint(ep: Endpoint): string {
  return ep.family === 6 ? `[${ep.ip}]:${ep.port}` : `${ep.ip}:${ep.port}`;
}

/**
 * Parse a numeric endpoint as go's netip.ParseAddrPort does: `ip:port` or `[ip6(%zone)]:port`,
 * port decimal 0-65535. Addresses are canonicalised; the zone is accepted but dropped, as
 * wireguard-go 0.0.20220316 does (it prints `[fe80::1]:5` after `endpoint=[fe80::1%lo]:5`).
 */
export function parseEndpoint(text: string): Endpoint | null {
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
  let zone = "";
  const pct = host.indexOf("%");
  if (pct !== -1) {
    zone = host.slice(pct);
    host = host.slice(0, pct);
    if (zone.length < 2) return null;
  }
  const ip = parseIp(host);
  if (ip === null) return null;
  if (ip.family === 4 && (zone !== "" || text.startsWith("["))) return null;
  return { family: ip.family, ip: formatIp(ip.family, ip.addr), port };
}

export function sameEndpoint(a: Endpoint, b: Endpoint): boolean {
  return a.port === b.port && a.family === b.family && a.ip === b.ip;
}

export function copyEndpoint(ep: Endpoint): Endpoint {
  return { family: ep.family, ip: ep.ip, port: ep.port };
}
