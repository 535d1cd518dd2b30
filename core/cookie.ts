// mac1/mac2 and cookie replies (protocol.md §4). CookieChecker is our side as the receiver of
// handshake messages; CookieGenerator is per peer, for the messages we send to that peer.
import { equal, hash, mac, xaeadOpen, xaeadSeal } from "./crypto.ts";
import { parseIp } from "./allowedips.ts";
import type { Endpoint } from "./device-api.ts";
import { readU32, writeU32, MSG_COOKIE_REPLY, COOKIE_REPLY_LEN } from "./noise.ts";

const enc = new TextEncoder();
export const LABEL_MAC1 = enc.encode("mac1----");
export const LABEL_COOKIE = enc.encode("cookie--");
export const COOKIE_SECRET_MAX_AGE_MS = 120_000;
/** go's lifetime of a received cookie at the sender (the kernel uses 115 s). */
export const COOKIE_REFRESH_TIME_MS = 120_000;

const ZERO16 = new Uint8Array(16);

/**
 * Bytes that identify a packet source for the cookie: IP address then UDP port big-endian
 * (the kernel layout; private to us since only we recompute our cookies).
 */
export function sourceBytes(src: Endpoint): Uint8Array {
  const pct = src.ip.indexOf("%");
  const ip = parseIp(pct === -1 ? src.ip : src.ip.slice(0, pct));
  const addr = ip ? ip.addr : new Uint8Array(src.family === 4 ? 4 : 16);
  const out = new Uint8Array(addr.length + 2);
  out.set(addr);
  out[addr.length] = (src.port >>> 8) & 0xff;
  out[addr.length + 1] = src.port & 0xff;
  return out;
}

export class CookieChecker {
  private mac1Key: Uint8Array | null = null;
  private cookieKey: Uint8Array | null = null;
  private readonly secret = new Uint8Array(32);
  private secretBirth = -Infinity;

  constructor(private readonly random: (n: number) => Uint8Array) {}

  /** Our static public key changed (null: no private key, every mac1 check fails). */
  setLocalPublic(pub: Uint8Array | null): void {
    this.mac1Key = pub ? hash(LABEL_MAC1, pub) : null;
    this.cookieKey = pub ? hash(LABEL_COOKIE, pub) : null;
  }

  /** Test hook: install a known secret created at `birthMono`. */
  setSecret(secret: Uint8Array, birthMono: number): void {
    this.secret.set(secret);
    this.secretBirth = birthMono;
  }

  /** mac1 over msg[off, off+len-32) with our key; len is the whole message length. */
  checkMac1(msg: Uint8Array, off: number, len: number): boolean {
    if (this.mac1Key === null) return false;
    const m = mac(this.mac1Key, msg.subarray(off, off + len - 32));
    return equal(m, msg.subarray(off + len - 32, off + len - 16));
  }

  /** Kernel style: the secret is regenerated lazily once it is too old. */
  makeCookie(src: Endpoint, nowMono: number): Uint8Array {
    if (nowMono - this.secretBirth >= COOKIE_SECRET_MAX_AGE_MS) {
      this.secret.set(this.random(32));
      this.secretBirth = nowMono;
    }
    return mac(this.secret, sourceBytes(src));
  }

  checkMac2(msg: Uint8Array, off: number, len: number, src: Endpoint, nowMono: number): boolean {
    const cookie = this.makeCookie(src, nowMono);
    const m = mac(cookie, msg.subarray(off, off + len - 16));
    cookie.fill(0);
    return equal(m, msg.subarray(off + len - 16, off + len));
  }

  /**
   * Cookie reply to the handshake message msg[off, off+len) into out[0, 64). The receiver
   * index is the message's sender index; the AAD is its mac1.
   */
  createReply(msg: Uint8Array, off: number, len: number, src: Endpoint, nowMono: number, out: Uint8Array): boolean {
    if (this.cookieKey === null) return false;
    const nonce = this.random(24);
    const cookie = this.makeCookie(src, nowMono);
    const mac1 = msg.subarray(off + len - 32, off + len - 16);
    const sealed = xaeadSeal(this.cookieKey, nonce, cookie, mac1);
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
