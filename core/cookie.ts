// mac1/mac2 and cookie replies (protocol.md §4). CookieChecker is our side as the receiver of
// handshake messages; CookieGenerator is per peer, for the messages we send to that peer.
import { hchacha } from "@noble/ciphers/chacha.js";
import { aeadSeal, hash, mac, xaeadOpen } from "./crypto.ts";
import type { Endpoint } from "./endpoint.ts";
import { readU32, writeU32, MSG_COOKIE_REPLY, COOKIE_REPLY_LEN, INITIATION_LEN } from "./noise.ts";

const enc = new TextEncoder();
export const LABEL_MAC1 = enc.encode("mac1----");
export const LABEL_COOKIE = enc.encode("cookie--");
export const COOKIE_SECRET_MAX_AGE_MS = 120_000;
/** go's lifetime of a received cookie at the sender (the kernel uses 115 s). */
export const COOKIE_REFRESH_TIME_MS = 120_000;

const ZERO16 = new Uint8Array(16);
/** "expand 32-byte k" as little-endian words, HChaCha20's constants. */
const SIGMA = Uint32Array.of(0x61707865, 0x3320646e, 0x79622d32, 0x6b206574);

// A flood of initiations with a valid mac1 is answered with cookie replies, thousands a second:
// that path works in fixed scratch buffers (mac inputs, source bytes, HChaCha20 state) so only
// a few short-lived arrays per message are left to the GC. Views into a buffer are made once,
// since every subarray() is an object and makes JSC give a small array its own ArrayBuffer.
export class CookieChecker {
  private mac1Key: Uint8Array | null = null;
  private cookieKey: Uint8Array | null = null;
  private readonly secret = new Uint8Array(32);
  private secretBirth = -Infinity;
  /** Copy of the bytes a mac covers; views of it by length in macViews. */
  private readonly macIn = new Uint8Array(INITIATION_LEN);
  private readonly macViews: Uint8Array[] = [];
  /** The source's address and port (Endpoint.dstToBytes: IPv4 6 bytes, IPv6 18) for the cookie. */
  private readonly src = new Uint8Array(18);
  private readonly src4 = this.src.subarray(0, 6);
  private readonly cookieKey32 = new Uint32Array(8);
  private readonly nonce32 = new Uint32Array(4);
  private readonly subkey32 = new Uint32Array(8);
  private readonly subkey = new Uint8Array(this.subkey32.buffer);

  constructor(private readonly random: (n: number) => Uint8Array) {}

  /** Our static public key changed (null: no private key, every mac1 check fails). */
  setLocalPublic(pub: Uint8Array | null): void {
    this.mac1Key = pub ? hash(LABEL_MAC1, pub) : null;
    this.cookieKey = pub ? hash(LABEL_COOKIE, pub) : null;
    if (this.cookieKey) for (let i = 0; i < 8; i++) this.cookieKey32[i] = readU32(this.cookieKey, 4 * i);
    else this.cookieKey32.fill(0);
  }

  /** Test hook: install a known secret created at `birthMono`. */
  setSecret(secret: Uint8Array, birthMono: number): void {
    this.secret.set(secret);
    this.secretBirth = birthMono;
  }

  /** msg[off, off+n) copied into the scratch buffer, as a view of exactly n bytes. */
  private macInput(msg: Uint8Array, off: number, n: number): Uint8Array {
    const b = this.macIn;
    for (let i = 0; i < n; i++) b[i] = msg[off + i]!;
    return (this.macViews[n] ??= b.subarray(0, n));
  }

  /** mac1 over msg[off, off+len-32) with our key; len is the whole message length. */
  checkMac1(msg: Uint8Array, off: number, len: number): boolean {
    if (this.mac1Key === null || len > INITIATION_LEN || len < 32) return false;
    return equalAt(mac(this.mac1Key, this.macInput(msg, off, len - 32)), msg, off + len - 32);
  }

  /** Kernel style: the secret is regenerated lazily once it is too old. */
  makeCookie(src: Endpoint, nowMono: number): Uint8Array {
    if (nowMono - this.secretBirth >= COOKIE_SECRET_MAX_AGE_MS) {
      this.secret.set(this.random(32));
      this.secretBirth = nowMono;
    }
    return mac(this.secret, src.dstToBytes(this.src) === 6 ? this.src4 : this.src);
  }

  checkMac2(msg: Uint8Array, off: number, len: number, src: Endpoint, nowMono: number): boolean {
    if (len > INITIATION_LEN || len < 16) return false;
    const cookie = this.makeCookie(src, nowMono);
    const m = mac(cookie, this.macInput(msg, off, len - 16));
    cookie.fill(0);
    return equalAt(m, msg, off + len - 16);
  }

  /**
   * Cookie reply to the handshake message msg[off, off+len) into out[0, 64). The receiver
   * index is the message's sender index; the AAD is its mac1.
   */
  createReply(msg: Uint8Array, off: number, len: number, src: Endpoint, nowMono: number, out: Uint8Array): boolean {
    if (this.cookieKey === null || len > INITIATION_LEN || len < 32) return false;
    const nonce = this.random(24);
    const cookie = this.makeCookie(src, nowMono);
    const mac1 = this.macInput(msg, off + len - 32, 16);
    // XChaCha20-Poly1305 = ChaCha20-Poly1305 under HChaCha20(key, nonce[0, 16)) with the nonce
    // 0^4 || nonce[16, 24), which is the transport nonce for the little-endian counter there.
    for (let i = 0; i < 4; i++) this.nonce32[i] = readU32(nonce, 4 * i);
    hchacha(SIGMA, this.cookieKey32, this.nonce32, this.subkey32);
    const counter = (BigInt(readU32(nonce, 20)) << 32n) | BigInt(readU32(nonce, 16));
    const sealed = aeadSeal(this.subkey, counter, cookie, mac1);
    this.subkey32.fill(0);
    cookie.fill(0);
    out.fill(0, 0, COOKIE_REPLY_LEN);
    out[0] = MSG_COOKIE_REPLY;
    writeU32(out, 4, readU32(msg, off + 4));
    out.set(nonce, 8);
    out.set(sealed, 32);
    return true;
  }

  clear(): void {
    this.secret.fill(0);
    this.secretBirth = -Infinity;
  }
}

/** Constant-time: a equals msg[off, off + a.length). */
function equalAt(a: Uint8Array, msg: Uint8Array, off: number): boolean {
  let acc = 0;
  for (let i = 0; i < a.length; i++) acc |= a[i]! ^ msg[off + i]!;
  return acc === 0;
}

export class CookieGenerator {
  // Derived on first use so configuring many peers stays cheap.
  private keys: { mac1: Uint8Array; cookie: Uint8Array } | null = null;
  private readonly cookie = new Uint8Array(16);
  private cookieBirth = -Infinity;
  private hasCookie = false;
  private readonly lastMac1 = new Uint8Array(16);
  /** One reply per mac1 sent (kernel rule). */
  private lastMac1Answerable = false;

  constructor(private readonly peerPublic: Uint8Array) {}

  private derived(): { mac1: Uint8Array; cookie: Uint8Array } {
    return (this.keys ??= { mac1: hash(LABEL_MAC1, this.peerPublic), cookie: hash(LABEL_COOKIE, this.peerPublic) });
  }

  /** Fill mac1 and mac2 of the handshake message msg[off, off+len). */
  addMacs(msg: Uint8Array, off: number, len: number, nowMono: number): void {
    const m1 = mac(this.derived().mac1, msg.subarray(off, off + len - 32));
    msg.set(m1, off + len - 32);
    this.lastMac1.set(m1);
    this.lastMac1Answerable = true;
    if (this.hasCookie && nowMono - this.cookieBirth <= COOKIE_REFRESH_TIME_MS) {
      msg.set(mac(this.cookie, msg.subarray(off, off + len - 16)), off + len - 16);
    } else {
      msg.set(ZERO16, off + len - 16);
    }
  }

  /** Decrypt and store the cookie of a reply (64 bytes at off). False changes nothing. */
  consumeReply(msg: Uint8Array, off: number, nowMono: number): boolean {
    if (!this.lastMac1Answerable) return false;
    const nonce = msg.subarray(off + 8, off + 32);
    const sealed = msg.subarray(off + 32, off + 64);
    const cookie = xaeadOpen(this.derived().cookie, nonce, sealed, this.lastMac1);
    if (cookie === null) return false;
    this.cookie.set(cookie);
    cookie.fill(0);
    this.cookieBirth = nowMono;
    this.hasCookie = true;
    this.lastMac1Answerable = false;
    return true;
  }

  clear(): void {
    this.cookie.fill(0);
    this.hasCookie = false;
    this.lastMac1.fill(0);
    this.lastMac1Answerable = false;
  }
}
