// Transport keypairs and the per-packet crypto step (protocol.md §3 type 4, §6, §7, §10).
// encryptTransport/decryptTransport touch only the keypair and the given buffers so they can
// later run in a worker; the device does all bookkeeping around them.
import { getAead, type AeadKey } from "./crypto.ts";
import { ReplayWindow } from "./replay.ts";
import { MSG_DATA, DATA_HEADER_LEN, writeU32 } from "./noise.ts";

/**
 * Send counters are JS numbers: exact up to 2^53, and a keypair lives at most
 * REJECT_AFTER_TIME (180 s), so 2^53 packets can never be reached (that would be 5e13 pps).
 * REKEY_AFTER_MESSAGES (2^60) is therefore also unreachable; the check is kept for the record.
 * This limit is stricter than REJECT_AFTER_MESSAGES (~2^64) and keeps nonces unique regardless.
 */
export const SEND_COUNTER_LIMIT = Number.MAX_SAFE_INTEGER;

export class Keypair<P = unknown> {
  readonly sendKey: AeadKey;
  readonly receiveKey: AeadKey;
  /** Next counter to use for sending. */
  sendCounter = 0;
  sendValid = true;
  receiveValid = true;
  readonly replay = new ReplayWindow();
  destroyed = false;

  constructor(
    readonly peer: P,
    send: Uint8Array,
    receive: Uint8Array,
    readonly initiator: boolean,
    readonly localIndex: number,
    readonly remoteIndex: number,
    readonly createdMono: number,
  ) {
    const aead = getAead();
    this.sendKey = aead.prepare(send);
    this.receiveKey = aead.prepare(receive);
    // prepare() keeps its own copy; the derived bytes must not linger.
    send.fill(0);
    receive.fill(0);
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.sendValid = false;
    this.receiveValid = false;
    this.sendKey.destroy();
    this.receiveKey.destroy();
  }
}

/** Plaintext length after padding (protocol.md §10): zero-pad to 16, never beyond the MTU. */
export function paddedLength(len: number, mtu: number): number {
  if (mtu === 0) return (len + 15) & ~15;
  const last = len > mtu ? len % mtu : len;
  let padded = (last + 15) & ~15;
  if (padded > mtu) padded = mtu;
  return len - last + padded;
}

/**
 * Build a data message into dst[dstOff...): header, then the sealed padded plaintext.
 * The plaintext src[srcOff, srcOff+len) is copied first so src may be any caller buffer.
 * Returns the message length.
 */
export function encryptTransport(
  kp: Keypair,
  counter: number,
  src: Uint8Array,
  srcOff: number,
  len: number,
  padded: number,
  dst: Uint8Array,
  dstOff: number,
): number {
  dst[dstOff] = MSG_DATA;
  dst[dstOff + 1] = 0;
  dst[dstOff + 2] = 0;
  dst[dstOff + 3] = 0;
  writeU32(dst, dstOff + 4, kp.remoteIndex);
  const hi = Math.floor(counter / 0x1_0000_0000);
  writeU32(dst, dstOff + 8, counter >>> 0);
  writeU32(dst, dstOff + 12, hi);
  const body = dstOff + DATA_HEADER_LEN;
  // Full-size packets need no padding: seal straight from the caller's buffer, no copy.
  if (padded === len && src !== dst) {
    return DATA_HEADER_LEN + kp.sendKey.sealIntoNumber(counter, src, srcOff, len, dst, body);
  }
  if (len > 0) dst.set(src.subarray(srcOff, srcOff + len), body);
  if (padded > len) dst.fill(0, body + len, body + padded);
  return DATA_HEADER_LEN + kp.sendKey.sealIntoNumber(counter, dst, body, padded, dst, body);
}

/**
 * Open the data message msg[off, off+len) into dst[dstOff...). The counter is a number when it is
 * below 2^53 (every real one: the data path creates no BigInt), else a bigint. Returns the
 * plaintext length or -1; the keypair is not modified (the replay window is updated by the
 * caller after success).
 */
export function decryptTransport(
  kp: Keypair,
  counter: number | bigint,
  msg: Uint8Array,
  off: number,
  len: number,
  dst: Uint8Array,
  dstOff: number,
): number {
  const body = off + DATA_HEADER_LEN;
  if (typeof counter === "number") return kp.receiveKey.openIntoNumber(counter, msg, body, len - DATA_HEADER_LEN, dst, dstOff);
  return kp.receiveKey.openInto(counter, msg, body, len - DATA_HEADER_LEN, dst, dstOff);
}
