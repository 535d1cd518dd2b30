// Noise_IKpsk2 handshake of WireGuard (protocol.md §2, §3, §9). Pure functions over a per-peer
// `Handshake` record; the device supplies ephemerals, indices and time so tests can replay the
// published vectors. Every consume* function verifies completely before it commits anything.
import { aeadOpen, aeadSeal, dh, hash, kdf1, kdf2, kdf3, publicKey } from "./crypto.ts";

const enc = new TextEncoder();
export const CONSTRUCTION = enc.encode("Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s");
export const IDENTIFIER = enc.encode("WireGuard v1 zx2c4 Jason@zx2c4.com");
export const C0 = hash(CONSTRUCTION);
export const H0 = hash(C0, IDENTIFIER);

export const MSG_INITIATION = 1;
export const MSG_RESPONSE = 2;
export const MSG_COOKIE_REPLY = 3;
export const MSG_DATA = 4;
export const INITIATION_LEN = 148;
export const RESPONSE_LEN = 92;
export const COOKIE_REPLY_LEN = 64;
export const DATA_HEADER_LEN = 16;
export const DATA_MIN_LEN = 32;
/** Offsets of mac1 in each handshake message (mac2 follows 16 bytes later). */
export const INITIATION_MAC1 = 116;
export const RESPONSE_MAC1 = 60;

/** Receive flood rule: at most one accepted initiation per peer per 20 ms. */
export const INITIATION_MIN_INTERVAL_MS = 1000 / 50;

export const enum HandshakeState {
  Zeroed = 0,
  CreatedInitiation = 1,
  ConsumedInitiation = 2,
  CreatedResponse = 3,
  ConsumedResponse = 4,
}

export interface StaticIdentity {
  privateKey: Uint8Array;
  publicKey: Uint8Array;
}

export class Handshake {
  state: HandshakeState = HandshakeState.Zeroed;
  readonly chainKey = new Uint8Array(32);
  readonly hash = new Uint8Array(32);
  readonly localEphemeral = new Uint8Array(32);
  readonly remoteEphemeral = new Uint8Array(32);
  localIndex = 0;
  remoteIndex = 0;
  // DH(S_priv_local, S_pub_remote), computed on first use: configuring thousands of peers must
  // not cost one X25519 each up front. `localPrivate` is the device's key (not a copy).
  private localPrivate: Uint8Array | null = null;
  private staticStatic: Uint8Array | null = null;
  private staticStaticKnown = false;
  readonly presharedKey = new Uint8Array(32);
  /** Greatest TAI64N accepted from this peer (only ever increases). */
  readonly latestTimestamp = new Uint8Array(12);
  lastInitiationConsumedMono = -Infinity;

  constructor(readonly remoteStatic: Uint8Array) {}

  /** Our private key changed: the static-static DH is recomputed on next use. */
  setLocalPrivate(priv: Uint8Array | null): void {
    this.staticStatic?.fill(0);
    this.staticStatic = null;
    this.staticStaticKnown = false;
    this.localPrivate = priv;
  }

  /** DH(S_priv_local, S_pub_remote); null when it is zero or we have no private key. */
  get precomputedStaticStatic(): Uint8Array | null {
    if (!this.staticStaticKnown) {
      this.staticStatic = this.localPrivate ? dh(this.localPrivate, this.remoteStatic) : null;
      this.staticStaticKnown = true;
    }
    return this.staticStatic;
  }

  /** Forget the in-progress handshake (C, H, ephemeral); keeps timestamp and flood state. */
  clear(): void {
    this.state = HandshakeState.Zeroed;
    this.chainKey.fill(0);
    this.hash.fill(0);
    this.localEphemeral.fill(0);
    this.remoteEphemeral.fill(0);
    this.localIndex = 0;
    this.remoteIndex = 0;
  }

  /** Records a step that passed every check: the new state, C and H; wipes the caller's C. */
  commit(state: HandshakeState, c: Uint8Array, h: Uint8Array): void {
    this.state = state;
    this.chainKey.set(c);
    this.hash.set(h);
    c.fill(0);
  }
}

function mixHash(h: Uint8Array, data: Uint8Array): Uint8Array {
  return hash(h, data);
}

function readU32(b: Uint8Array, off: number): number {
  return (b[off]! | (b[off + 1]! << 8) | (b[off + 2]! << 16) | (b[off + 3]! << 24)) >>> 0;
}
function writeU32(b: Uint8Array, off: number, v: number): void {
  b[off] = v & 0xff;
  b[off + 1] = (v >>> 8) & 0xff;
  b[off + 2] = (v >>> 16) & 0xff;
  b[off + 3] = (v >>> 24) & 0xff;
}
export { readU32, writeU32 };

/** 12-byte big-endian comparison: a > b. */
function timestampAfter(a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 0; i < 12; i++) {
    if (a[i]! !== b[i]!) return a[i]! > b[i]!;
  }
  return false;
}

/**
 * Build an initiation into out[0, 116) (macs are the cookie module's job). `ephemeralPrivate` must
 * be a fresh clamped key. Returns false (nothing changed) when a DH fails.
 */
export function createInitiation(
  local: StaticIdentity,
  hs: Handshake,
  ephemeralPrivate: Uint8Array,
  localIndex: number,
  timestamp: Uint8Array,
  out: Uint8Array,
): boolean {
  const ss = hs.precomputedStaticStatic;
  if (ss === null) return false;
  const ePub = publicKey(ephemeralPrivate);
  let h = mixHash(mixHash(H0, hs.remoteStatic), ePub);
  let c = kdf1(C0, ePub);
  const es = dh(ephemeralPrivate, hs.remoteStatic);
  if (es === null) return false;
  let k: Uint8Array;
  [c, k] = kdf2(c, es);
  es.fill(0);
  const encStatic = aeadSeal(k, 0n, local.publicKey, h);
  k.fill(0);
  h = mixHash(h, encStatic);
  [c, k] = kdf2(c, ss);
  const encTs = aeadSeal(k, 0n, timestamp, h);
  h = mixHash(h, encTs);
  k.fill(0);

  out.fill(0, 0, INITIATION_LEN);
  out[0] = MSG_INITIATION;
  writeU32(out, 4, localIndex);
  out.set(ePub, 8);
  out.set(encStatic, 40);
  out.set(encTs, 88);

  hs.clear();
  hs.commit(HandshakeState.CreatedInitiation, c, h);
  hs.localEphemeral.set(ephemeralPrivate);
  hs.localIndex = localIndex;
  return true;
}

/**
 * Verify an initiation (mac checks already done by the caller). `findPeer` maps the decrypted
 * static key to a peer. Returns null on any failure, else the peer; the handshake is updated
 * (state ConsumedInitiation) only when every check, including replay and flood, passed.
 */
export function consumeInitiation<P extends { handshake: Handshake }>(
  local: StaticIdentity,
  msg: Uint8Array,
  off: number,
  findPeer: (staticPublic: Uint8Array) => P | undefined,
  nowMono: number,
): P | null {
  const ePub = msg.subarray(off + 8, off + 40);
  let h = mixHash(mixHash(H0, local.publicKey), ePub);
  let c = kdf1(C0, ePub);
  const es = dh(local.privateKey, ePub);
  if (es === null) return null;
  let k: Uint8Array;
  [c, k] = kdf2(c, es);
  es.fill(0);
  const encStatic = msg.subarray(off + 40, off + 88);
  const peerStatic = aeadOpen(k, 0n, encStatic, h);
  k.fill(0);
  if (peerStatic === null) return null;
  h = mixHash(h, encStatic);
  const peer = findPeer(peerStatic);
  if (peer === undefined) return null;
  const hs = peer.handshake;
  const ss = hs.precomputedStaticStatic;
  if (ss === null) return null;
  [c, k] = kdf2(c, ss);
  const encTs = msg.subarray(off + 88, off + 116);
  const ts = aeadOpen(k, 0n, encTs, h);
  k.fill(0);
  if (ts === null) return null;
  h = mixHash(h, encTs);

  const replay = !timestampAfter(ts, hs.latestTimestamp);
  const flood = nowMono - hs.lastInitiationConsumedMono < INITIATION_MIN_INTERVAL_MS;
  if (replay || flood) return null;

  hs.latestTimestamp.set(ts);
  hs.lastInitiationConsumedMono = nowMono;
  hs.clear();
  hs.commit(HandshakeState.ConsumedInitiation, c, h);
  hs.remoteEphemeral.set(ePub);
  hs.remoteIndex = readU32(msg, off + 4);
  return peer;
}

/** Build a response into out[0, 60) for a consumed initiation. Returns false when a DH fails. */
export function createResponse(
  hs: Handshake,
  ephemeralPrivate: Uint8Array,
  localIndex: number,
  out: Uint8Array,
): boolean {
  if (hs.state !== HandshakeState.ConsumedInitiation) return false;
  const ePub = publicKey(ephemeralPrivate);
  let c = kdf1(hs.chainKey, ePub);
  let h = mixHash(hs.hash, ePub);
  const ee = dh(ephemeralPrivate, hs.remoteEphemeral);
  if (ee === null) return false;
  c = kdf1(c, ee);
  ee.fill(0);
  const se = dh(ephemeralPrivate, hs.remoteStatic);
  if (se === null) return false;
  c = kdf1(c, se);
  se.fill(0);
  const [c2, tau, k] = kdf3(c, hs.presharedKey);
  c.fill(0);
  c = c2;
  h = mixHash(h, tau);
  tau.fill(0);
  const empty = aeadSeal(k, 0n, new Uint8Array(0), h);
  k.fill(0);
  h = mixHash(h, empty);

  out.fill(0, 0, RESPONSE_LEN);
  out[0] = MSG_RESPONSE;
  writeU32(out, 4, localIndex);
  writeU32(out, 8, hs.remoteIndex);
  out.set(ePub, 12);
  out.set(empty, 44);

  hs.commit(HandshakeState.CreatedResponse, c, h);
  hs.localEphemeral.set(ephemeralPrivate);
  hs.localIndex = localIndex;
  return true;
}

/**
 * Verify a response (macs already checked). `findByIndex` maps our index (the message's receiver)
 * to the peer with a pending initiation. Commits (state ConsumedResponse) only on full success.
 */
export function consumeResponse<P extends { handshake: Handshake }>(
  local: StaticIdentity,
  msg: Uint8Array,
  off: number,
  findByIndex: (localIndex: number) => P | undefined,
): P | null {
  const receiver = readU32(msg, off + 8);
  const peer = findByIndex(receiver);
  if (peer === undefined) return null;
  const hs = peer.handshake;
  if (hs.state !== HandshakeState.CreatedInitiation || hs.localIndex !== receiver) return null;
  const ePub = msg.subarray(off + 12, off + 44);
  let c = kdf1(hs.chainKey, ePub);
  let h = mixHash(hs.hash, ePub);
  const ee = dh(hs.localEphemeral, ePub);
  if (ee === null) return null;
  c = kdf1(c, ee);
  ee.fill(0);
  const se = dh(local.privateKey, ePub);
  if (se === null) return null;
  c = kdf1(c, se);
  se.fill(0);
  const [c2, tau, k] = kdf3(c, hs.presharedKey);
  c = c2;
  h = mixHash(h, tau);
  tau.fill(0);
  const encEmpty = msg.subarray(off + 44, off + 60);
  const ok = aeadOpen(k, 0n, encEmpty, h);
  k.fill(0);
  if (ok === null) return null;
  h = mixHash(h, encEmpty);
  // The state may have changed while we computed (e.g. a consumed initiation replaced it).
  if (hs.state !== HandshakeState.CreatedInitiation || hs.localIndex !== receiver) return null;
  hs.commit(HandshakeState.ConsumedResponse, c, h);
  hs.remoteEphemeral.set(ePub);
  hs.remoteIndex = readU32(msg, off + 4);
  return peer;
}

export interface SessionKeys {
  send: Uint8Array;
  receive: Uint8Array;
  initiator: boolean;
  localIndex: number;
  remoteIndex: number;
}

/**
 * Derive transport keys from a finished handshake (initiator: ConsumedResponse, responder:
 * CreatedResponse) and erase C, H and the ephemeral. Returns null in any other state.
 */
export function deriveSession(hs: Handshake): SessionKeys | null {
  let initiator: boolean;
  if (hs.state === HandshakeState.ConsumedResponse) initiator = true;
  else if (hs.state === HandshakeState.CreatedResponse) initiator = false;
  else return null;
  const [t1, t2] = kdf2(hs.chainKey, new Uint8Array(0));
  const keys: SessionKeys = {
    send: initiator ? t1 : t2,
    receive: initiator ? t2 : t1,
    initiator,
    localIndex: hs.localIndex,
    remoteIndex: hs.remoteIndex,
  };
  hs.clear();
  return keys;
}
