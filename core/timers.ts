// The five per-peer timers of protocol.md §8 as plain deadlines on the injected monotonic clock.
// This module only decides *when*; core/device.ts decides *what* happens on expiry.

export const REKEY_AFTER_MESSAGES = 2 ** 60;
export const REKEY_AFTER_TIME_MS = 120_000;
export const REJECT_AFTER_TIME_MS = 180_000;
export const REKEY_TIMEOUT_MS = 5_000;
export const KEEPALIVE_TIMEOUT_MS = 10_000;
export const MAX_TIMER_HANDSHAKES = 90 / 5;
export const REKEY_TIMEOUT_JITTER_MAX_MS = 334; // exclusive upper bound: 0..333 ms
export const ZERO_KEY_MATERIAL_MS = REJECT_AFTER_TIME_MS * 3;
/** Receive-side last-minute rekey for the initiator of the current keypair. */
export const REKEY_ON_RECEIVE_AGE_MS = REJECT_AFTER_TIME_MS - KEEPALIVE_TIMEOUT_MS - REKEY_TIMEOUT_MS;

export const enum TimerKind {
  RetransmitHandshake = 0,
  SendKeepalive = 1,
  NewHandshake = 2,
  ZeroKeyMaterial = 3,
  PersistentKeepalive = 4,
}

const NONE = Infinity;

/**
 * Lower bound of every armed deadline of a device's peers, so the device need not scan all peers
 * for nextDeadline()/tick(). Arming lowers it; disarming leaves it early, which only costs one
 * scan that finds nothing due and recomputes it.
 */
export class TimerHint {
  at = NONE;
}

export class PeerTimers {
  constructor(private readonly hint: TimerHint = new TimerHint()) {}

  private note(t: number): number {
    if (t < this.hint.at) this.hint.at = t;
    return t;
  }

  retransmitHandshake = NONE;
  sendKeepalive = NONE;
  newHandshake = NONE;
  zeroKeyMaterial = NONE;
  persistentKeepalive = NONE;
  needAnotherKeepalive = false;
  handshakeAttempts = 0;
  sentLastMinuteHandshake = false;

  /** Earliest armed deadline (Infinity when none). */
  next(): number {
    return Math.min(
      this.retransmitHandshake,
      this.sendKeepalive,
      this.newHandshake,
      this.zeroKeyMaterial,
      this.persistentKeepalive,
    );
  }

  /**
   * Disarm and return the first timer due at `now`, or -1. The caller loops until -1 so a
   * handler that re-arms a timer for later is not fired twice.
   */
  takeDue(now: number): TimerKind | -1 {
    if (this.retransmitHandshake <= now) {
      this.retransmitHandshake = NONE;
      return TimerKind.RetransmitHandshake;
    }
    if (this.sendKeepalive <= now) {
      this.sendKeepalive = NONE;
      return TimerKind.SendKeepalive;
    }
    if (this.newHandshake <= now) {
      this.newHandshake = NONE;
      return TimerKind.NewHandshake;
    }
    if (this.zeroKeyMaterial <= now) {
      this.zeroKeyMaterial = NONE;
      return TimerKind.ZeroKeyMaterial;
    }
    if (this.persistentKeepalive <= now) {
      this.persistentKeepalive = NONE;
      return TimerKind.PersistentKeepalive;
    }
    return -1;
  }

  stop(): void {
    this.retransmitHandshake = NONE;
    this.sendKeepalive = NONE;
    this.newHandshake = NONE;
    this.zeroKeyMaterial = NONE;
    this.persistentKeepalive = NONE;
    this.needAnotherKeepalive = false;
  }

  // ---- event hooks (kernel timers.c names) -------------------------------------------

  /** After sending a non-keepalive data packet. */
  dataSent(now: number, jitter: number): void {
    if (this.newHandshake === NONE) this.newHandshake = this.note(now + KEEPALIVE_TIMEOUT_MS + REKEY_TIMEOUT_MS + jitter);
  }

  /** After receiving a non-keepalive data packet. */
  dataReceived(now: number): void {
    if (this.sendKeepalive === NONE) this.sendKeepalive = this.note(now + KEEPALIVE_TIMEOUT_MS);
    else this.needAnotherKeepalive = true;
  }

  /** After sending any authenticated packet (handshake, data, keepalive). */
  anyAuthenticatedPacketSent(): void {
    this.sendKeepalive = NONE;
  }

  /** After receiving any authenticated packet. */
  anyAuthenticatedPacketReceived(): void {
    this.newHandshake = NONE;
  }

  /** Before sending / after receiving any authenticated packet. */
  anyAuthenticatedPacketTraversal(now: number, persistentKeepaliveSec: number): void {
    if (persistentKeepaliveSec > 0) this.persistentKeepalive = this.note(now + persistentKeepaliveSec * 1000);
  }

  /** send_keepalive re-armed after firing when another keepalive is owed. */
  rearmSendKeepalive(now: number): void {
    this.sendKeepalive = this.note(now + KEEPALIVE_TIMEOUT_MS);
  }

  handshakeInitiated(now: number, jitter: number): void {
    this.retransmitHandshake = this.note(now + REKEY_TIMEOUT_MS + jitter);
  }

  handshakeComplete(): void {
    this.retransmitHandshake = NONE;
    this.handshakeAttempts = 0;
    this.sentLastMinuteHandshake = false;
  }

  sessionDerived(now: number): void {
    this.zeroKeyMaterial = this.note(now + ZERO_KEY_MATERIAL_MS);
  }

  /** retransmit gave up: keepalives stop, keys die after 540 s unless already scheduled. */
  gaveUp(now: number): void {
    this.sendKeepalive = NONE;
    if (this.zeroKeyMaterial === NONE) this.zeroKeyMaterial = this.note(now + ZERO_KEY_MATERIAL_MS);
  }
}
