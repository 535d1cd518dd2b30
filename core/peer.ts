// Per-peer state (protocol.md §7, §11). Behaviour lives in device.ts.
import { CookieGenerator } from "./cookie.ts";
import { keyToBase64, keyToHex } from "./encoding.ts";
import type { Endpoint } from "./endpoint.ts";
import type { Keypair } from "./keypair.ts";
import { Handshake } from "./noise.ts";
import { PeerTimers, TimerHint } from "./timers.ts";

export const MAX_STAGED_PACKETS = 128;

export class Peer {
  readonly handshake: Handshake;
  readonly cookie: CookieGenerator;
  readonly timers: PeerTimers;
  readonly publicKeyHex: string;
  /** Where the peer is and the local address to answer from; the device's own object, updated in place (null: unknown). */
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

// cmd/daemon.ts formats peer endpoints with this name from here.
export { formatEndpoint } from "./endpoint.ts";
