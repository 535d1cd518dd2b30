// The protocol engine (core/device-api.ts Engine): receive pipeline (protocol.md §5), rotation
// (§7), timers (§8), roaming (§11). Everything is driven by calls and injected time; output goes
// through DeviceIO. The data path reuses preallocated buffers and does no per-packet allocation
// (counters travel as numbers, never BigInt).
import { clampPrivateKey, equal, generatePrivateKey, isZero, publicKey as derivePublic, randomBytes, tai64n } from "./crypto.ts";
import {
  DEFAULT_MTU,
  type Clock,
  type DeviceEvent,
  type DeviceIO,
  type DeviceOptions,
  type Engine,
  type LogLevel,
  type TxAccount,
  type UapiDevice,
  type UapiReply,
} from "./device-api.ts";
import { Endpoint, formatEndpoint } from "./endpoint.ts";
import { AllowedIPs } from "./allowedips.ts";
import { RateLimiter } from "./ratelimiter.ts";
import { CookieChecker } from "./cookie.ts";
import {
  consumeInitiation,
  consumeResponse,
  createInitiation,
  createResponse,
  deriveSession,
  readU32,
  type SessionKeys,
  type StaticIdentity,
  COOKIE_REPLY_LEN,
  DATA_MIN_LEN,
  INITIATION_LEN,
  MSG_COOKIE_REPLY,
  MSG_DATA,
  MSG_INITIATION,
  MSG_RESPONSE,
  RESPONSE_LEN,
} from "./noise.ts";
import { Keypair, SEND_COUNTER_LIMIT, decryptTransport, encryptTransport, paddedLength } from "./keypair.ts";
import { Peer } from "./peer.ts";
import { keyToHex } from "./encoding.ts";
import {
  KEEPALIVE_TIMEOUT_MS,
  MAX_TIMER_HANDSHAKES,
  REJECT_AFTER_TIME_MS,
  REKEY_AFTER_MESSAGES,
  REKEY_AFTER_TIME_MS,
  REKEY_ON_RECEIVE_AGE_MS,
  REKEY_TIMEOUT_JITTER_MAX_MS,
  REKEY_TIMEOUT_MS,
  TimerHint,
  TimerKind,
} from "./timers.ts";
import { handleUapi } from "./uapi-server.ts";

/** Handshake messages waiting beyond this many are dropped (go's QueueHandshakeSize). */
export const HANDSHAKE_QUEUE_SIZE = 1024;
/**
 * Backlog of waiting handshake messages that means "under load" (go: QueueHandshakeSize / 8):
 * a backlog only builds when messages arrive faster than we can answer them, so a busy but
 * legitimate stream of handshakes is never asked for cookies while we keep up.
 */
export const UNDER_LOAD_QUEUE_DEPTH = HANDSHAKE_QUEUE_SIZE / 8;
export const UNDER_LOAD_AFTER_MS = 1000;
/** Time tick() spends on queued handshake messages before yielding (ms of clock.mono()). */
export const HANDSHAKE_TICK_BUDGET_MS = 4;
const MAX_PACKET = 65535;
const EMPTY = new Uint8Array(0);

export function createDevice(io: DeviceIO, clock: Clock, opts: DeviceOptions = {}): Device {
  return new Device(io, clock, opts);
}

/** One queued handshake message (slots are preallocated and reused). */
interface HandshakeSlot {
  readonly buf: Uint8Array;
  len: number;
  type: number;
  readonly src: Endpoint;
}

export class Device implements Engine, UapiDevice {
  readonly random: (n: number) => Uint8Array;
  mtu: number;
  privateKey: Uint8Array | null = null;
  publicKey: Uint8Array | null = null;
  identity: StaticIdentity | null = null;
  listenPort = 0;
  fwmark = 0;
  /** The port is bound (go's device state); the engine runs only while the link is up too (`running`). */
  isUp = false;
  /** The TUN link's administrative state (setLinkUp); the engine works only while both are up. */
  linkUp = true;
  closed = false;
  readonly peers = new Map<string, Peer>();
  readonly allowedIps = new AllowedIPs<Peer>();
  readonly keypairsByIndex = new Map<number, Keypair<Peer>>();
  readonly handshakesByIndex = new Map<number, Peer>();
  readonly cookieChecker: CookieChecker;
  readonly rateLimiter = new RateLimiter();
  private readonly timerHint = new TimerHint();
  private lastGcMono = -Infinity;
  // Handshake messages wait here (a ring) until processHandshakes(); its depth is the load signal.
  private readonly deferHandshakes: boolean;
  private hsQueue: HandshakeSlot[] = [];
  private hsHead = 0;
  private hsCount = 0;
  /** Handshake messages dropped because the queue was full (statistics). */
  handshakesDropped = 0;
  private underLoadUntil = -Infinity;
  // Preallocated output buffers (valid only during the io call they are passed to).
  private readonly sendBuf = new Uint8Array(MAX_PACKET + 64);
  private readonly recvBuf = new Uint8Array(MAX_PACKET + 64);
  private readonly hsBuf = new Uint8Array(INITIATION_LEN);
  private jitterPool: Uint8Array = new Uint8Array(0);
  private jitterPos = 0;
  /** io.scopeName bound to io, so it can be handed to formatEndpoint. */
  private readonly scopeName: ((scope: number) => string) | undefined;

  constructor(
    readonly io: DeviceIO,
    readonly clock: Clock,
    opts: DeviceOptions,
  ) {
    this.random = opts.random ?? randomBytes;
    this.mtu = opts.mtu ?? DEFAULT_MTU;
    this.cookieChecker = new CookieChecker(this.random);
    this.deferHandshakes = opts.deferHandshakes ?? false;
    this.scopeName = io.scopeName?.bind(io);
  }

  // ------------------------------------------------------------------ Engine

  /** Bound and the link up: only then is anything sent or answered. */
  get running(): boolean {
    return this.isUp && this.linkUp;
  }

  receiveUdp(buf: Uint8Array, off: number, len: number, src: Endpoint): void {
    if (!this.running || len < 4) return;
    // Bytes 0-3 as one LE u32: non-zero reserved bytes make an unknown type.
    const type = readU32(buf, off);
    if (type === MSG_DATA) {
      if (len >= DATA_MIN_LEN) this.receiveData(buf, off, len, src);
    } else if ((type === MSG_INITIATION && len === INITIATION_LEN) || (type === MSG_RESPONSE && len === RESPONSE_LEN)) {
      this.enqueueHandshake(type, buf, off, len, src);
      if (!this.deferHandshakes) this.processHandshakes(Infinity);
    } else if (type === MSG_COOKIE_REPLY && len === COOKIE_REPLY_LEN) {
      this.receiveCookieReply(buf, off);
    }
  }

  sendTunPacket(buf: Uint8Array, off: number, len: number): void {
    if (!this.running || len < 1 || len > MAX_PACKET) return;
    const version = buf[off]! >> 4;
    let peer: Peer | undefined;
    if (version === 4) {
      if (len < 20) return;
      peer = this.allowedIps.lookup(4, buf, off + 16);
    } else if (version === 6) {
      if (len < 40) return;
      peer = this.allowedIps.lookup(6, buf, off + 24);
    } else return;
    if (peer === undefined) return;
    const now = this.clock.mono();
    if (peer.staged.length === 0) {
      const kp = this.usableKeypair(peer, now);
      if (kp !== null) {
        this.sendData(peer, kp, buf, off, len, now);
        return;
      }
    }
    peer.stage(buf.slice(off, off + len));
    this.flushStaged(peer);
  }

  tick(): void {
    if (!this.running) return;
    if (this.hsCount > 0) this.processHandshakes(HANDSHAKE_TICK_BUDGET_MS);
    const now = this.clock.mono();
    if (now >= this.timerHint.at) {
      // Handlers re-arm through the hint, so start from Infinity and fold in every peer.
      this.timerHint.at = Infinity;
      for (const peer of this.peers.values()) {
        if (peer.timers.next() <= now) {
          for (;;) {
            const kind = peer.timers.takeDue(now);
            if (kind === -1 || peer.removed) break;
            this.fireTimer(peer, kind, now);
          }
        }
        const n = peer.timers.next();
        if (n < this.timerHint.at) this.timerHint.at = n;
      }
    }
    if (now - this.lastGcMono >= 1000) {
      this.lastGcMono = now;
      this.rateLimiter.gc(now);
    }
  }

  nextDeadline(): number {
    if (!this.running) return Infinity;
    if (this.hsCount > 0) return this.clock.mono();
    // May be early (a disarmed timer); tick() then finds nothing due and tightens it.
    let t = this.timerHint.at;
    if (this.rateLimiter.size() > 0) t = Math.min(t, this.lastGcMono + 1000);
    return t;
  }

  uapi(request: string): UapiReply {
    return handleUapi(this, request);
  }

  /** Bring the device up: bind the port, start timers. Throws the io.bind error (device stays down). */
  up(): void {
    if (this.isUp || this.closed) return;
    try {
      this.listenPort = this.io.bind(this.listenPort, this.fwmark);
    } catch (e) {
      // go's BindUpdate forgets the port when binding fails.
      this.listenPort = 0;
      this.log("error", `Unable to update bind: ${(e as Error).message}`);
      throw e;
    }
    this.isUp = true;
    this.log("verbose", "Interface state was Down, requested Up, now Up");
    this.startPeers();
  }

  /** Stops, like go's device down: sessions and timers go, nothing is sent or answered (close() and tests use it). */
  down(): void {
    if (!this.isUp) return;
    this.isUp = false;
    this.stopAll();
    this.log("verbose", "Interface state was Up, requested Down, now Down");
  }

  setLinkUp(up: boolean): void {
    if (up === this.linkUp) return;
    this.linkUp = up;
    this.log("verbose", `Link ${up ? "up: peers start" : "down: peers stop"}`);
    if (up) this.startPeers();
    else this.stopAll();
  }

  checkSources(keep: (ep: Endpoint) => boolean): number {
    let dropped = 0;
    for (const peer of this.peers.values()) {
      const ep = peer.endpoint;
      if (ep !== null && ep.hasSrc && !keep(ep)) {
        ep.clearSrc();
        dropped++;
      }
    }
    return dropped;
  }

  isPeerEndpoint(family: 4 | 6, addr: Uint8Array, off: number, port: number): boolean {
    const n = family === 4 ? 4 : 16;
    next: for (const peer of this.peers.values()) {
      const ep = peer.endpoint;
      if (ep === null || ep.port !== port || ep.family !== family) continue;
      for (let i = 0; i < n; i++) if (ep.addr[i] !== addr[off + i]) continue next;
      return true;
    }
    return false;
  }

  /** Everything in flight dropped: the handshake queue and every peer's sessions and timers. */
  private stopAll(): void {
    this.hsHead = this.hsCount = 0;
    for (const peer of this.peers.values()) this.stopPeer(peer);
  }

  /**
   * The device just became able to send (up, link up, key set): every peer with persistent
   * keepalive sends one (a handshake when it has no session), the others their staged packets.
   */
  startPeers(): void {
    if (!this.running || this.identity === null) return;
    for (const peer of this.peers.values()) {
      if (peer.persistentKeepalive > 0) this.sendKeepalive(peer);
      else this.flushStaged(peer);
    }
  }

  setMtu(mtu: number): void {
    this.mtu = mtu;
  }

  close(): void {
    this.down();
    for (const peer of [...this.peers.values()]) this.removePeer(peer);
    this.privateKey?.fill(0);
    this.privateKey = null;
    this.identity = null;
    this.cookieChecker.clear();
    this.cookieChecker.setLocalPublic(null);
    this.closed = true;
  }

  // ------------------------------------------------------------------ configuration (UAPI)

  setPrivateKey(key: Uint8Array | null): void {
    const sk = key === null || isZero(key) ? null : clampPrivateKey(key);
    if (sk === null ? this.privateKey === null : this.privateKey !== null && equal(sk, this.privateKey)) return;
    const pub = sk ? derivePublic(sk) : null;
    if (pub) {
      for (const peer of [...this.peers.values()]) if (equal(peer.publicKey, pub)) this.removePeer(peer);
    }
    this.privateKey?.fill(0);
    this.privateKey = sk;
    this.publicKey = pub;
    this.identity = sk && pub ? { privateKey: sk, publicKey: pub } : null;
    this.cookieChecker.setLocalPublic(pub);
    for (const peer of this.peers.values()) {
      peer.handshake.setLocalPrivate(sk);
      this.expireCurrentKeypairs(peer);
    }
  }

  /** Throws (from io.bind) when the device is up and the port cannot be bound; port becomes 0. */
  setListenPort(port: number): void {
    this.listenPort = port;
    if (!this.isUp) return;
    try {
      this.listenPort = this.io.bind(port, this.fwmark);
    } catch (e) {
      this.listenPort = 0;
      throw e;
    }
    this.clearPeerSources();
  }

  setFwmark(mark: number): void {
    if (mark === this.fwmark) return;
    this.fwmark = mark;
    if (!this.isUp) return;
    this.listenPort = this.io.bind(this.listenPort, mark);
    this.clearPeerSources();
  }

  lookupPeer(pub: Uint8Array): Peer | undefined {
    return this.peers.get(keyToHex(pub));
  }

  createPeer(pub: Uint8Array): Peer {
    const peer = new Peer(Uint8Array.from(pub), this.timerHint);
    peer.handshake.setLocalPrivate(this.privateKey);
    this.peers.set(peer.publicKeyHex, peer);
    if (this.io.log) this.log("verbose", `${peer.name} - UAPI: Created`);
    this.emit({ type: "peer-added", publicKey: peer.publicKeyHex });
    return peer;
  }

  removePeer(peer: Peer): void {
    if (peer.removed) return;
    this.stopPeer(peer);
    peer.removed = true;
    peer.handshake.setLocalPrivate(null);
    peer.handshake.presharedKey.fill(0);
    peer.cookie.clear();
    this.allowedIps.removeByPeer(peer);
    this.peers.delete(peer.publicKeyHex);
    if (this.io.log) this.log("verbose", `${peer.name} - Removed`);
    this.emit({ type: "peer-removed", publicKey: peer.publicKeyHex });
  }

  removeAllPeers(): void {
    for (const peer of [...this.peers.values()]) this.removePeer(peer);
  }

  /** After a UAPI peer block (go handlePostConfig): keepalive when asked and on, flush staged. */
  peerConfigured(peer: Peer, startKeepalive: boolean): void {
    if (!this.running || peer.removed) return;
    if (startKeepalive && peer.persistentKeepalive > 0) this.sendKeepalive(peer);
    this.flushStaged(peer);
  }

  // ------------------------------------------------------------------ receive

  private receiveData(buf: Uint8Array, off: number, len: number, src: Endpoint): void {
    const kp = this.keypairsByIndex.get(readU32(buf, off + 4));
    if (kp === undefined || !kp.receiveValid) return;
    const now = this.clock.mono();
    if (now - kp.createdMono >= REJECT_AFTER_TIME_MS) return;
    const lo = readU32(buf, off + 8);
    const hi = readU32(buf, off + 12);
    // Cheap pre-check so obvious replays cost no decryption; recorded only after auth.
    if (!kp.replay.wouldAcceptU32(hi, lo)) return;
    // Exact as a number below 2^53; only forged or absurd counters take the BigInt path.
    const counter = hi < 0x20_0000 ? hi * 0x1_0000_0000 + lo : (BigInt(hi) << 32n) | BigInt(lo);
    const n = decryptTransport(kp, counter, buf, off, len, this.recvBuf, 0);
    if (n < 0) return;
    if (!kp.replay.acceptU32(hi, lo)) return;

    const peer = kp.peer;
    peer.rxBytes += len;
    this.setEndpoint(peer, src);
    if (kp === peer.next) {
      this.dropKeypair(peer.previous);
      peer.previous = peer.current;
      peer.current = kp;
      peer.next = null;
      this.handshakeComplete(peer);
      this.emit({ type: "keys-rotated", publicKey: peer.publicKeyHex });
      this.flushStaged(peer);
    }
    this.keepKeyFreshReceive(peer, now);
    peer.timers.anyAuthenticatedPacketReceived();
    if (this.running) peer.timers.anyAuthenticatedPacketTraversal(now, peer.persistentKeepalive);
    if (n === 0) return; // keepalive
    if (this.running) peer.timers.dataReceived(now);

    const p = this.recvBuf;
    const version = p[0]! >> 4;
    let innerLen: number;
    let owner: Peer | undefined;
    if (version === 4) {
      if (n < 20) return;
      innerLen = (p[2]! << 8) | p[3]!;
      if (innerLen < 20 || innerLen > n) return;
      owner = this.allowedIps.lookup(4, p, 12);
    } else if (version === 6) {
      if (n < 40) return;
      innerLen = ((p[4]! << 8) | p[5]!) + 40;
      if (innerLen > n) return;
      owner = this.allowedIps.lookup(6, p, 8);
    } else return;
    if (owner !== peer) return;
    this.io.writeTun(p, 0, innerLen);
  }

  /** Number of handshake messages waiting for processHandshakes(). */
  handshakeBacklog(): number {
    return this.hsCount;
  }

  /**
   * Work through queued handshake messages, oldest first, for about `budgetMs` of clock.mono()
   * (at least one message). Each one sees the backlog behind it: at UNDER_LOAD_QUEUE_DEPTH or
   * more the device is under load, and stays so for UNDER_LOAD_AFTER_MS (go's IsUnderLoad).
   */
  processHandshakes(budgetMs: number): void {
    if (this.hsCount === 0) return;
    const start = this.clock.mono();
    const q = this.hsQueue;
    do {
      const slot = q[this.hsHead]!;
      this.hsHead = (this.hsHead + 1) % HANDSHAKE_QUEUE_SIZE;
      this.hsCount--;
      const now = this.clock.mono();
      if (this.hsCount >= UNDER_LOAD_QUEUE_DEPTH) this.underLoadUntil = now + UNDER_LOAD_AFTER_MS;
      this.receiveHandshake(slot.type, slot.buf, 0, slot.len, slot.src, now);
      if (!this.running) return;
    } while (this.hsCount > 0 && this.clock.mono() - start < budgetMs);
  }

  private enqueueHandshake(type: number, buf: Uint8Array, off: number, len: number, src: Endpoint): void {
    if (this.hsCount >= HANDSHAKE_QUEUE_SIZE) {
      this.handshakesDropped++;
      return;
    }
    const q = this.hsQueue;
    const at = (this.hsHead + this.hsCount) % HANDSHAKE_QUEUE_SIZE;
    let slot = q[at];
    if (slot === undefined) {
      // Slots are made on first need, so an idle device keeps no 150 KB queue.
      slot = { buf: new Uint8Array(INITIATION_LEN), len: 0, type: 0, src: new Endpoint() };
      q[at] = slot;
    }
    slot.buf.set(buf.subarray(off, off + len));
    slot.len = len;
    slot.type = type;
    slot.src.copyFrom(src);
    this.hsCount++;
  }

  private receiveHandshake(type: number, buf: Uint8Array, off: number, len: number, src: Endpoint, now: number): void {
    const identity = this.identity;
    if (identity === null) return;
    if (!this.cookieChecker.checkMac1(buf, off, len)) return;
    if (now < this.underLoadUntil) {
      if (!this.cookieChecker.checkMac2(buf, off, len, src, now)) {
        if (this.cookieChecker.createReply(buf, off, len, src, now, this.hsBuf)) {
          this.sendUdp(this.hsBuf, COOKIE_REPLY_LEN, src);
        }
        return;
      }
      if (!this.rateLimiter.allow(src.family, src.addr, now)) return;
    }
    if (type === MSG_INITIATION) {
      const peer = consumeInitiation(identity, buf, off, (pub) => this.peers.get(keyToHex(pub)), now);
      if (peer === null) return;
      this.releaseHandshakeIndex(peer);
      peer.rxBytes += len;
      this.setEndpoint(peer, src);
      this.log("debug", `${peer.name} - Received handshake initiation`);
      this.sendResponse(peer, now);
      peer.timers.anyAuthenticatedPacketReceived();
      peer.timers.anyAuthenticatedPacketTraversal(now, peer.persistentKeepalive);
    } else {
      const peer = consumeResponse(identity, buf, off, (idx) => this.handshakesByIndex.get(idx));
      if (peer === null) return;
      this.releaseHandshakeIndex(peer);
      peer.rxBytes += len;
      this.setEndpoint(peer, src);
      this.log("debug", `${peer.name} - Received handshake response`);
      const keys = deriveSession(peer.handshake);
      if (keys !== null) {
        this.installKeypair(peer, keys, now);
        peer.timers.sessionDerived(now);
        this.handshakeComplete(peer);
        this.sendKeepalive(peer);
      }
      peer.timers.anyAuthenticatedPacketReceived();
      peer.timers.anyAuthenticatedPacketTraversal(now, peer.persistentKeepalive);
    }
  }

  private receiveCookieReply(buf: Uint8Array, off: number): void {
    const idx = readU32(buf, off + 4);
    const peer = this.handshakesByIndex.get(idx) ?? this.keypairsByIndex.get(idx)?.peer;
    if (peer === undefined) return;
    if (peer.cookie.consumeReply(buf, off, this.clock.mono())) {
      this.log("debug", `${peer.name} - Received cookie reply`);
    }
  }

  // ------------------------------------------------------------------ send

  /** The current keypair if it may still send; marks it invalid when it may not. */
  private usableKeypair(peer: Peer, now: number): Keypair<Peer> | null {
    const kp = peer.current;
    if (kp === null || !kp.sendValid) return null;
    if (now - kp.createdMono >= REJECT_AFTER_TIME_MS || kp.sendCounter >= SEND_COUNTER_LIMIT) {
      kp.sendValid = false;
      return null;
    }
    return kp;
  }

  private sendData(peer: Peer, kp: Keypair<Peer>, buf: Uint8Array, off: number, len: number, now: number): void {
    const ep = peer.endpoint;
    if (ep === null) return;
    peer.timers.anyAuthenticatedPacketTraversal(now, peer.persistentKeepalive);
    const padded = len === 0 ? 0 : paddedLength(len, this.mtu);
    const counter = kp.sendCounter++;
    const mlen = encryptTransport(kp, counter, buf, off, len, padded, this.sendBuf, 0);
    this.sendUdp(this.sendBuf, mlen, ep, peer);
    peer.txBytes += mlen;
    const t = peer.timers;
    t.anyAuthenticatedPacketSent();
    if (len > 0 && t.newHandshake === Infinity) t.dataSent(now, this.jitter());
    // keep-key-fresh (send side)
    if (kp.sendCounter > REKEY_AFTER_MESSAGES || (kp.initiator && now - kp.createdMono >= REKEY_AFTER_TIME_MS)) {
      this.initiateHandshake(peer, false);
    }
  }

  private flushStaged(peer: Peer): void {
    if (peer.staged.length === 0 || !this.running) return;
    const now = this.clock.mono();
    while (peer.staged.length > 0) {
      const kp = this.usableKeypair(peer, now);
      if (kp === null) {
        this.initiateHandshake(peer, false);
        return;
      }
      const pkt = peer.staged.shift()!;
      this.sendData(peer, kp, pkt, 0, pkt.length, now);
    }
  }

  private sendKeepalive(peer: Peer): void {
    if (peer.staged.length === 0) peer.stage(EMPTY);
    this.flushStaged(peer);
  }

  private initiateHandshake(peer: Peer, isRetry: boolean): void {
    if (!isRetry) peer.timers.handshakeAttempts = 0;
    const now = this.clock.mono();
    const identity = this.identity;
    // Without a key or an endpoint nothing can go out: the attempt is not spent, so setting the
    // missing piece starts the handshake at once (startPeers, peerConfigured).
    if (now - peer.lastSentHandshakeMono < REKEY_TIMEOUT_MS || !this.running || identity === null || peer.endpoint === null) return;
    peer.lastSentHandshakeMono = now;
    const index = this.newIndex();
    const eph = generatePrivateKey(this.random);
    const ts = tai64n(this.clock.wall());
    this.releaseHandshakeIndex(peer);
    const ok = createInitiation(identity, peer.handshake, eph, index, ts, this.hsBuf);
    eph.fill(0);
    if (!ok) return;
    this.handshakesByIndex.set(index, peer);
    peer.handshakeIndex = index;
    peer.cookie.addMacs(this.hsBuf, 0, INITIATION_LEN, now);
    this.log("debug", `${peer.name} - Sending handshake initiation`);
    peer.timers.anyAuthenticatedPacketTraversal(now, peer.persistentKeepalive);
    this.sendHandshakeBytes(peer, INITIATION_LEN);
    peer.timers.anyAuthenticatedPacketSent();
    peer.timers.handshakeInitiated(now, this.jitter());
  }

  private sendResponse(peer: Peer, now: number): void {
    peer.lastSentHandshakeMono = now;
    peer.timers.anyAuthenticatedPacketTraversal(now, peer.persistentKeepalive);
    const index = this.newIndex();
    const eph = generatePrivateKey(this.random);
    const ok = createResponse(peer.handshake, eph, index, this.hsBuf);
    eph.fill(0);
    if (!ok) return;
    peer.cookie.addMacs(this.hsBuf, 0, RESPONSE_LEN, now);
    const keys = deriveSession(peer.handshake);
    if (keys === null) return;
    this.installKeypair(peer, keys, now);
    peer.timers.sessionDerived(now);
    this.log("debug", `${peer.name} - Sending handshake response`);
    this.sendHandshakeBytes(peer, RESPONSE_LEN);
    peer.timers.anyAuthenticatedPacketSent();
  }

  private sendHandshakeBytes(peer: Peer, len: number): void {
    const ep = peer.endpoint;
    if (ep === null) return;
    this.sendUdp(this.hsBuf, len, ep, peer);
    peer.txBytes += len;
  }

  // ------------------------------------------------------------------ timers

  private fireTimer(peer: Peer, kind: TimerKind, now: number): void {
    const t = peer.timers;
    switch (kind) {
      case TimerKind.RetransmitHandshake:
        if (t.handshakeAttempts > MAX_TIMER_HANDSHAKES) {
          this.log("debug", `${peer.name} - Handshake did not complete after ${MAX_TIMER_HANDSHAKES + 2} attempts, giving up`);
          t.gaveUp(now);
          peer.staged = [];
          this.emit({ type: "handshake-failed", publicKey: peer.publicKeyHex });
        } else {
          t.handshakeAttempts++;
          this.log("debug", `${peer.name} - Handshake did not complete after ${REKEY_TIMEOUT_MS / 1000} seconds, retrying (try ${t.handshakeAttempts + 1})`);
          peer.endpoint?.clearSrc();
          this.initiateHandshake(peer, true);
        }
        break;
      case TimerKind.SendKeepalive:
        this.sendKeepalive(peer);
        if (t.needAnotherKeepalive) {
          t.needAnotherKeepalive = false;
          t.rearmSendKeepalive(now);
        }
        break;
      case TimerKind.NewHandshake:
        this.log("debug", `${peer.name} - Retrying handshake because we stopped hearing back after ${(KEEPALIVE_TIMEOUT_MS + REKEY_TIMEOUT_MS) / 1000} seconds`);
        peer.endpoint?.clearSrc();
        this.initiateHandshake(peer, false);
        break;
      case TimerKind.ZeroKeyMaterial:
        this.log("debug", `${peer.name} - Removing all keys, since we haven't received a new one in ${(REJECT_AFTER_TIME_MS * 3) / 1000} seconds`);
        this.releaseHandshakeIndex(peer);
        peer.handshake.clear();
        this.dropAllKeypairs(peer);
        break;
      case TimerKind.PersistentKeepalive:
        if (peer.persistentKeepalive > 0) this.sendKeepalive(peer);
        break;
    }
  }

  private keepKeyFreshReceive(peer: Peer, now: number): void {
    const t = peer.timers;
    if (t.sentLastMinuteHandshake) return;
    const kp = peer.current;
    if (kp !== null && kp.sendValid && kp.initiator && now - kp.createdMono >= REKEY_ON_RECEIVE_AGE_MS) {
      t.sentLastMinuteHandshake = true;
      this.initiateHandshake(peer, false);
    }
  }

  private handshakeComplete(peer: Peer): void {
    peer.timers.handshakeComplete();
    peer.lastHandshakeWallMs = this.clock.wall();
    this.log("debug", `${peer.name} - Handshake complete`);
    this.emit({
      type: "handshake",
      publicKey: peer.publicKeyHex,
      endpoint: peer.endpoint ? this.endpointText(peer.endpoint) : null,
    });
  }

  // ------------------------------------------------------------------ keypairs and indices

  private installKeypair(peer: Peer, keys: SessionKeys, now: number): void {
    const kp = new Keypair<Peer>(peer, keys.send, keys.receive, keys.initiator, keys.localIndex, keys.remoteIndex, now);
    this.keypairsByIndex.set(kp.localIndex, kp);
    if (kp.initiator) {
      if (peer.next !== null) {
        this.dropKeypair(peer.previous);
        peer.previous = peer.next;
        peer.next = null;
        this.dropKeypair(peer.current);
      } else {
        this.dropKeypair(peer.previous);
        peer.previous = peer.current;
      }
      peer.current = kp;
      this.emit({ type: "keys-rotated", publicKey: peer.publicKeyHex });
    } else {
      this.dropKeypair(peer.next);
      peer.next = kp;
      this.dropKeypair(peer.previous);
      peer.previous = null;
    }
  }

  private dropKeypair(kp: Keypair<Peer> | null): void {
    if (kp === null) return;
    if (this.keypairsByIndex.get(kp.localIndex) === kp) this.keypairsByIndex.delete(kp.localIndex);
    kp.destroy();
  }

  private dropAllKeypairs(peer: Peer): void {
    this.dropKeypair(peer.current);
    this.dropKeypair(peer.previous);
    this.dropKeypair(peer.next);
    peer.current = peer.previous = peer.next = null;
  }

  private releaseHandshakeIndex(peer: Peer): void {
    if (peer.handshakeIndex !== -1) {
      if (this.handshakesByIndex.get(peer.handshakeIndex) === peer) this.handshakesByIndex.delete(peer.handshakeIndex);
      peer.handshakeIndex = -1;
    }
  }

  /** Random local index unique among live handshakes and keypairs. */
  private newIndex(): number {
    for (;;) {
      const r = this.random(4);
      const idx = readU32(r, 0);
      if (!this.keypairsByIndex.has(idx) && !this.handshakesByIndex.has(idx)) return idx;
    }
  }

  /** 0..333 ms; drawn from a pooled random block since data-sent re-arms it often. */
  private jitter(): number {
    if (this.jitterPos + 4 > this.jitterPool.length) {
      this.jitterPool = this.random(256);
      this.jitterPos = 0;
    }
    const v = readU32(this.jitterPool, this.jitterPos);
    this.jitterPos += 4;
    return v % REKEY_TIMEOUT_JITTER_MAX_MS;
  }

  private expireCurrentKeypairs(peer: Peer): void {
    this.releaseHandshakeIndex(peer);
    peer.handshake.clear();
    peer.lastSentHandshakeMono = -Infinity;
    if (peer.current) peer.current.sendValid = false;
    if (peer.next) peer.next.sendValid = false;
  }

  /** go Peer.Stop + ZeroAndFlushAll: timers off, keys and handshake gone, queue dropped. */
  private stopPeer(peer: Peer): void {
    peer.timers.stop();
    peer.timers.handshakeAttempts = 0;
    peer.timers.sentLastMinuteHandshake = false;
    this.releaseHandshakeIndex(peer);
    peer.handshake.clear();
    this.dropAllKeypairs(peer);
    peer.staged = [];
    peer.lastSentHandshakeMono = -Infinity;
  }

  /** A new socket or mark: the kernel chooses every peer's source by route again. */
  private clearPeerSources(): void {
    for (const p of this.peers.values()) p.endpoint?.clearSrc();
  }

  /**
   * Point `peer` at `src` (a copy; src stays the caller's): a roaming peer after an authenticated
   * packet, or UAPI `endpoint=`. The sticky source follows src's; a changed destination is logged
   * and reported.
   */
  setEndpoint(peer: Peer, src: Endpoint): void {
    const cur = peer.endpoint;
    if (cur !== null && cur.sameDst(src)) {
      if (!cur.sameSrc(src)) cur.copySrc(src);
      return;
    }
    if (cur === null) peer.endpoint = src.clone();
    else cur.copyFrom(src);
    const text = this.endpointText(src);
    this.log("verbose", `${peer.name} - Endpoint changed to ${text}`);
    this.emit({ type: "endpoint", publicKey: peer.publicKeyHex, endpoint: text });
  }

  endpointText(ep: Endpoint): string {
    return formatEndpoint(ep, this.scopeName);
  }

  get logging(): boolean {
    return this.io.log !== undefined;
  }

  /** A failing send must not abort the state machine half-way (timers, indices). */
  private sendUdp(buf: Uint8Array, len: number, ep: Endpoint, account?: TxAccount): void {
    try {
      this.io.sendUdp(buf, 0, len, ep, account);
    } catch (e) {
      this.log("debug", `Failed to send packet to ${this.endpointText(ep)}: ${(e as Error).message}`);
    }
  }

  private emit(ev: DeviceEvent): void {
    this.io.event?.(ev);
  }

  log(level: LogLevel, msg: string): void {
    this.io.log?.(level, msg);
  }
}

