// Cryptographic primitives of WireGuard (protocol.md §1). Pure: no I/O, no clock.
// The data-path AEAD sits behind `AeadBackend` so platform/ can plug in a native
// implementation; the noble one here is the always-available fallback.
import { blake2s } from "@noble/hashes/blake2.js";
import { hmac as nobleHmac } from "@noble/hashes/hmac.js";
import type { x25519 as X25519 } from "@noble/curves/ed25519.js";
import type * as Chacha from "@noble/ciphers/chacha.js";

// The curve and cipher modules are loaded on first use: building them costs start-up time that
// `wg genkey` and most of `wg` never need.
let curve: typeof X25519 | undefined;
const x25519Lazy = () => (curve ??= (require("@noble/curves/ed25519.js") as { x25519: typeof X25519 }).x25519);
let chachaMod: typeof Chacha | undefined;
const chacha = () => (chachaMod ??= require("@noble/ciphers/chacha.js") as typeof Chacha);

export const KEY_LEN = 32;

export function hash(...parts: Uint8Array[]): Uint8Array {
  return hashBackend.hash(parts);
}

/** Keyed BLAKE2s with a 16-byte digest length (not a truncated 32-byte hash). */
export function mac(key: Uint8Array, data: Uint8Array): Uint8Array {
  return hashBackend.mac(key, data);
}

export function hmac(key: Uint8Array, data: Uint8Array): Uint8Array {
  return hashBackend.hmac(key, data);
}

export const kdf1 = (key: Uint8Array, input: Uint8Array): Uint8Array => hashBackend.kdf1(key, input);
export const kdf2 = (key: Uint8Array, input: Uint8Array): [Uint8Array, Uint8Array] => hashBackend.kdf2(key, input);
export const kdf3 = (key: Uint8Array, input: Uint8Array): [Uint8Array, Uint8Array, Uint8Array] =>
  hashBackend.kdf3(key, input);

// ---------------------------------------------------------------- hash backend

/**
 * BLAKE2s-based primitives as a pluggable backend like the AEAD and X25519: a responder runs
 * ~21 HMACs per handshake, so platform/ can supply a native one that does a whole KDF chain in
 * one call. Every function returns fresh arrays the caller owns.
 */
export interface HashBackend {
  readonly name: string;
  /** BLAKE2s-256 of the concatenated parts. */
  hash(parts: readonly Uint8Array[]): Uint8Array;
  mac(key: Uint8Array, data: Uint8Array): Uint8Array;
  hmac(key: Uint8Array, data: Uint8Array): Uint8Array;
  kdf1(key: Uint8Array, input: Uint8Array): Uint8Array;
  kdf2(key: Uint8Array, input: Uint8Array): [Uint8Array, Uint8Array];
  kdf3(key: Uint8Array, input: Uint8Array): [Uint8Array, Uint8Array, Uint8Array];
}

// Pure TS on noble. Building a noble hash instance (option checks, buffers) costs more than the
// one or two compressions WireGuard feeds it, so one pristine instance is cloned into a reused
// work instance instead, and HMAC pads and the inner digest live in fixed scratch buffers.
// Single-threaded and non-reentrant (nothing here yields), so module-level scratch is safe.
const B2S_BLOCK = 64;
const pristine = blake2s.create({});
const work = blake2s.create({});
const hmacPad = new Uint8Array(B2S_BLOCK);
// digestInto wants 4-byte aligned output: these are whole ArrayBuffers.
const innerDigest = new Uint8Array(32);
const kdfT0 = new Uint8Array(32);
const kdfInput = new Uint8Array(33);

function digestParts(out: Uint8Array, a: Uint8Array, b?: Uint8Array): void {
  pristine._cloneInto(work);
  work.update(a);
  if (b !== undefined && b.length > 0) work.update(b);
  work.digestInto(out);
}

/** HMAC-BLAKE2s(key, data) into out (32 bytes, 4-byte aligned; may alias neither input). */
function hmacInto(key: Uint8Array, data: Uint8Array, out: Uint8Array): void {
  hmacPad.fill(0);
  if (key.length > B2S_BLOCK) digestParts(hmacPad, key);
  else hmacPad.set(key);
  for (let i = 0; i < B2S_BLOCK; i++) hmacPad[i]! ^= 0x36;
  digestParts(innerDigest, hmacPad, data);
  for (let i = 0; i < B2S_BLOCK; i++) hmacPad[i]! ^= 0x36 ^ 0x5c;
  digestParts(out, hmacPad, innerDigest);
  hmacPad.fill(0);
  innerDigest.fill(0);
}

/** t1..tn of the KDF into fresh arrays; t0 never leaves the scratch buffer. */
function kdfOut(n: number, key: Uint8Array, input: Uint8Array): Uint8Array[] {
  hmacInto(key, input, kdfT0);
  const out: Uint8Array[] = [];
  for (let i = 1; i <= n; i++) {
    const t = new Uint8Array(32);
    if (i === 1) {
      hmacInto(kdfT0, ONE, t);
    } else {
      kdfInput.set(out[i - 2]!);
      kdfInput[32] = i;
      hmacInto(kdfT0, kdfInput, t);
    }
    out.push(t);
  }
  kdfT0.fill(0);
  kdfInput.fill(0);
  return out;
}

export const nobleHash: HashBackend = {
  name: "noble",
  hash(parts) {
    const out = new Uint8Array(32);
    if (parts.length <= 2) digestParts(out, parts[0] ?? EMPTY, parts[1]);
    else {
      pristine._cloneInto(work);
      for (const p of parts) if (p.length > 0) work.update(p);
      work.digestInto(out);
    }
    return out;
  },
  mac: (key, data) => blake2s(data, { key, dkLen: 16 }),
  hmac(key, data) {
    const out = new Uint8Array(32);
    hmacInto(key, data, out);
    return out;
  },
  kdf1: (key, input) => kdfOut(1, key, input)[0]!,
  kdf2: (key, input) => kdfOut(2, key, input) as [Uint8Array, Uint8Array],
  kdf3: (key, input) => kdfOut(3, key, input) as [Uint8Array, Uint8Array, Uint8Array],
};

/** The pre-seam implementation (fresh noble instances per call): reference for tests and benches. */
export const nobleHashReference: HashBackend = {
  name: "noble-reference",
  hash(parts) {
    const h = blake2s.create({});
    for (const p of parts) h.update(p);
    return h.digest();
  },
  mac: (key, data) => blake2s(data, { key, dkLen: 16 }),
  hmac: (key, data) => nobleHmac(blake2s, key, data),
  kdf1: (key, input) => referenceKdf(1, key, input)[0]!,
  kdf2: (key, input) => referenceKdf(2, key, input) as [Uint8Array, Uint8Array],
  kdf3: (key, input) => referenceKdf(3, key, input) as [Uint8Array, Uint8Array, Uint8Array],
};

const ONE = Uint8Array.of(1);
function referenceKdf(n: 1 | 2 | 3, key: Uint8Array, input: Uint8Array): Uint8Array[] {
  const t0 = nobleHmac(blake2s, key, input);
  const out: Uint8Array[] = [];
  let prev = nobleHmac(blake2s, t0, ONE);
  out.push(prev);
  for (let i = 2; i <= n; i++) {
    const buf = new Uint8Array(prev.length + 1);
    buf.set(prev);
    buf[prev.length] = i;
    prev = nobleHmac(blake2s, t0, buf);
    out.push(prev);
  }
  t0.fill(0);
  return out;
}

let hashBackend: HashBackend = nobleHash;
export function setHash(b: HashBackend): void {
  hashBackend = b;
}
export function getHash(): HashBackend {
  return hashBackend;
}

export function clampPrivateKey(k: Uint8Array): Uint8Array {
  const c = Uint8Array.from(k);
  c[0]! &= 248;
  c[31]! &= 127;
  c[31]! |= 64;
  return c;
}

export function generatePrivateKey(random: (n: number) => Uint8Array = randomBytes): Uint8Array {
  return clampPrivateKey(random(32));
}

export function publicKey(priv: Uint8Array): Uint8Array {
  return dhBackend.publicKey(priv);
}
const BASEPOINT = (() => {
  const b = new Uint8Array(32);
  b[0] = 9;
  return b;
})();

export function isZero(b: Uint8Array): boolean {
  let acc = 0;
  for (let i = 0; i < b.length; i++) acc |= b[i]!;
  return acc === 0;
}

/** X25519; returns null when the shared secret is all zero (the message must be dropped). */
export function dh(priv: Uint8Array, pub: Uint8Array): Uint8Array | null {
  let out: Uint8Array | null;
  try {
    out = dhBackend.scalarMult(priv, pub);
  } catch {
    return null;
  }
  // Checked here whatever the backend claims (protocol.md §1): a native one must not skip it.
  return out === null || isZero(out) ? null : out;
}

// ---------------------------------------------------------------- X25519 backend

/**
 * X25519 as a pluggable backend like the AEAD, so platform/ can supply a native one (handshake
 * rate is bound by scalar multiplications). scalarMult clamps the scalar and masks the top bit of
 * u (RFC 7748) and returns null for an all-zero result or a failure; publicKey throws on failure.
 */
export interface DhBackend {
  readonly name: string;
  scalarMult(priv: Uint8Array, pub: Uint8Array): Uint8Array | null;
  publicKey(priv: Uint8Array): Uint8Array;
}

export const nobleDh: DhBackend = {
  name: "noble",
  scalarMult(priv, pub) {
    try {
      // noble throws on an all-zero result
      return x25519Lazy().scalarMult(priv, pub);
    } catch {
      return null;
    }
  },
  publicKey: (priv) => x25519Lazy().scalarMult(priv, BASEPOINT),
};

let dhBackend: DhBackend = nobleDh;
export function setDh(b: DhBackend): void {
  dhBackend = b;
}
export function getDh(): DhBackend {
  return dhBackend;
}

/** Constant-time equality. */
export function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let acc = 0;
  for (let i = 0; i < a.length; i++) acc |= a[i]! ^ b[i]!;
  return acc === 0;
}

export function randomBytes(n: number): Uint8Array {
  const b = new Uint8Array(n);
  crypto.getRandomValues(b);
  return b;
}

/** TAI64N label for a wall-clock time, nanoseconds rounded down to 2^24 like kernel and go. */
export function tai64n(wallMs: number, out: Uint8Array = new Uint8Array(12)): Uint8Array {
  const secs = Math.floor(wallMs / 1000);
  let nanos = Math.floor((wallMs - secs * 1000) * 1e6);
  nanos -= nanos % 16777216;
  const v = new DataView(out.buffer, out.byteOffset, 12);
  v.setBigUint64(0, 0x400000000000000an + BigInt(secs));
  v.setUint32(8, nanos);
  return out;
}

// ---------------------------------------------------------------- AEAD

function nonce12(counter: bigint, out = new Uint8Array(12)): Uint8Array {
  new DataView(out.buffer, out.byteOffset, 12).setBigUint64(4, counter, true);
  return out;
}

/** The 12-byte nonce for a counter given as a safe integer (no BigInt on the data path). */
function nonce12Number(counter: number, view: DataView): void {
  view.setUint32(0, 0);
  view.setUint32(4, counter >>> 0, true);
  view.setUint32(8, Math.floor(counter / 0x1_0000_0000), true);
}

/** One-shot ChaCha20-Poly1305 for handshake fields (small, not on the data path). */
export function aeadSeal(key: Uint8Array, counter: bigint, plain: Uint8Array, ad: Uint8Array): Uint8Array {
  return getAead().seal(key, counter, plain, ad);
}
export function aeadOpen(key: Uint8Array, counter: bigint, sealed: Uint8Array, ad: Uint8Array): Uint8Array | null {
  return getAead().open(key, counter, sealed, ad);
}

export function xaeadSeal(key: Uint8Array, nonce24: Uint8Array, plain: Uint8Array, ad: Uint8Array): Uint8Array {
  return chacha().xchacha20poly1305(key, nonce24, ad).encrypt(plain);
}
export function xaeadOpen(key: Uint8Array, nonce24: Uint8Array, sealed: Uint8Array, ad: Uint8Array): Uint8Array | null {
  try {
    return chacha().xchacha20poly1305(key, nonce24, ad).decrypt(sealed);
  } catch {
    return null;
  }
}

/**
 * A transport key prepared once per keypair direction. In-place variants write into caller
 * buffers so the data path does not allocate per packet.
 */
export interface AeadKey {
  /** Encrypts src[srcOff, srcOff+len) to dst[dstOff, dstOff+len+16). Returns bytes written. */
  sealInto(counter: bigint, src: Uint8Array, srcOff: number, len: number, dst: Uint8Array, dstOff: number): number;
  /** Opens src[srcOff, srcOff+len) (ciphertext+tag) into dst; returns plaintext length or -1. */
  openInto(counter: bigint, src: Uint8Array, srcOff: number, len: number, dst: Uint8Array, dstOff: number): number;
  /**
   * sealInto/openInto with the counter as a number, which must be a non-negative safe integer
   * (< 2^53): the per-packet path then creates no BigInt. Larger counters use the bigint forms.
   */
  sealIntoNumber(counter: number, src: Uint8Array, srcOff: number, len: number, dst: Uint8Array, dstOff: number): number;
  openIntoNumber(counter: number, src: Uint8Array, srcOff: number, len: number, dst: Uint8Array, dstOff: number): number;
  /** Forget the key material. */
  destroy(): void;
}

export interface AeadBackend {
  readonly name: string;
  prepare(key: Uint8Array): AeadKey;
  seal(key: Uint8Array, counter: bigint, plain: Uint8Array, ad: Uint8Array): Uint8Array;
  open(key: Uint8Array, counter: bigint, sealed: Uint8Array, ad: Uint8Array): Uint8Array | null;
}

const EMPTY = new Uint8Array(0);

export const nobleAead: AeadBackend = {
  name: "noble",
  prepare(key: Uint8Array): AeadKey {
    const k = Uint8Array.from(key);
    const nonce = new Uint8Array(12);
    const nonceView = new DataView(nonce.buffer);
    const seal = (src: Uint8Array, srcOff: number, len: number, dst: Uint8Array, dstOff: number): number => {
      const out = dst.subarray(dstOff, dstOff + len + 16);
      chacha().chacha20poly1305(k, nonce, EMPTY).encrypt(src.subarray(srcOff, srcOff + len), out);
      return len + 16;
    };
    const open = (src: Uint8Array, srcOff: number, len: number, dst: Uint8Array, dstOff: number): number => {
      try {
        chacha().chacha20poly1305(k, nonce, EMPTY).decrypt(src.subarray(srcOff, srcOff + len), dst.subarray(dstOff, dstOff + len - 16));
      } catch {
        return -1;
      }
      return len - 16;
    };
    return {
      sealInto(counter, src, srcOff, len, dst, dstOff) {
        nonce12(counter, nonce);
        return seal(src, srcOff, len, dst, dstOff);
      },
      openInto(counter, src, srcOff, len, dst, dstOff) {
        if (len < 16) return -1;
        nonce12(counter, nonce);
        return open(src, srcOff, len, dst, dstOff);
      },
      sealIntoNumber(counter, src, srcOff, len, dst, dstOff) {
        nonce12Number(counter, nonceView);
        return seal(src, srcOff, len, dst, dstOff);
      },
      openIntoNumber(counter, src, srcOff, len, dst, dstOff) {
        if (len < 16) return -1;
        nonce12Number(counter, nonceView);
        return open(src, srcOff, len, dst, dstOff);
      },
      destroy() {
        k.fill(0);
      },
    };
  },
  seal(key, counter, plain, ad) {
    return chacha().chacha20poly1305(key, nonce12(counter), ad).encrypt(plain);
  },
  open(key, counter, sealed, ad) {
    try {
      return chacha().chacha20poly1305(key, nonce12(counter), ad).decrypt(sealed);
    } catch {
      return null;
    }
  },
};

let backend: AeadBackend = nobleAead;
export function setAead(b: AeadBackend): void {
  backend = b;
}
export function getAead(): AeadBackend {
  return backend;
}
