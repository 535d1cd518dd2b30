// ChaCha20-Poly1305 from the system's libcrypto (OpenSSL 3 / 1.1) through bun:ffi, as the
// data-path AeadBackend: libcrypto's assembly, not @noble/ciphers' JavaScript, is what makes the
// tunnel fast (bench/RESULTS.md, AEAD). Returns null when libcrypto cannot be loaded or fails its
// self-check, so callers keep the noble backend.
//
// Two ways to drive a prepared key (bench/aead.ts compares them):
//  * "shim": a few lines of C compiled at load time by Bun's built-in TinyCC (bun:ffi `cc`) do
//    nonce + init + update + final + tag in ONE foreign call per packet. The shim does not link
//    against libcrypto (the -dev symlink `libcrypto.so` is often absent); it receives the EVP
//    function pointers from our dlopen handle.
//  * "evp": the same five EVP calls made one by one from JS. Used when TinyCC is unavailable.
// The tag comparison is OpenSSL's (CRYPTO_memcmp, constant time).
import { ptr, type ConvertFns, type Pointer } from "bun:ffi";
import { fnAddress } from "./libc.ts";
import { openLibcrypto, shimFunctions, type ShimSource } from "./openssl.ts";
import { equal, nobleAead, type AeadBackend, type AeadKey } from "../../core/crypto.ts";

export type OpenSslAeadMode = "shim" | "evp";


// EVP_CIPHER_CTX_ctrl commands (include/openssl/evp.h); identical in 1.1 and 3.x.
const EVP_CTRL_AEAD_GET_TAG = 0x10;
const EVP_CTRL_AEAD_SET_TAG = 0x11;
const TAG_LEN = 16;

const EVP_SYMBOLS = {
  EVP_chacha20_poly1305: { args: [], returns: "ptr" },
  EVP_CIPHER_CTX_new: { args: [], returns: "ptr" },
  EVP_CIPHER_CTX_free: { args: ["ptr"], returns: "void" },
  EVP_CipherInit_ex: { args: ["ptr", "ptr", "ptr", "ptr", "ptr", "i32"], returns: "i32" },
  EVP_CipherUpdate: { args: ["ptr", "ptr", "ptr", "ptr", "i32"], returns: "i32" },
  EVP_CipherFinal_ex: { args: ["ptr", "ptr", "ptr"], returns: "i32" },
  EVP_CIPHER_CTX_ctrl: { args: ["ptr", "i32", "i32", "ptr"], returns: "i32" },
} as const;

type EvpFns = ConvertFns<typeof EVP_SYMBOLS>;


// The shim owns the nonce layout (00000000 || le64 counter) so JS passes the counter as a u64
// and no nonce buffer crosses the boundary. Prototypes are spelled out instead of including
// <openssl/evp.h> so no development headers are needed.
const SHIM_SOURCE = `
typedef unsigned long long u64;
typedef int (*init_fn)(void *, const void *, void *, const unsigned char *, const unsigned char *, int);
typedef int (*update_fn)(void *, unsigned char *, int *, const unsigned char *, int);
typedef int (*final_fn)(void *, unsigned char *, int *);
typedef int (*ctrl_fn)(void *, int, int, void *);
static init_fn p_init;
static update_fn p_update;
static final_fn p_final;
static ctrl_fn p_ctrl;

void wg_aead_setup(void *i, void *u, void *f, void *c) {
  p_init = (init_fn)i; p_update = (update_fn)u; p_final = (final_fn)f; p_ctrl = (ctrl_fn)c;
}

static void put_nonce(unsigned char *n, u64 c) {
  int i;
  n[0] = n[1] = n[2] = n[3] = 0;
  for (i = 0; i < 8; i++) { n[4 + i] = (unsigned char)c; c >>= 8; }
}

int wg_aead_seal(void *ctx, u64 counter, unsigned char *src, int srcOff, int len, unsigned char *dst, int dstOff) {
  unsigned char nonce[12];
  int n = 0, m = 0;
  src += srcOff;
  dst += dstOff;
  put_nonce(nonce, counter);
  if (p_init(ctx, 0, 0, 0, nonce, 1) != 1) return -1;
  if (len > 0 && p_update(ctx, dst, &n, src, len) != 1) return -1;
  if (p_final(ctx, dst + n, &m) != 1) return -1;
  if (p_ctrl(ctx, ${EVP_CTRL_AEAD_GET_TAG}, ${TAG_LEN}, dst + len) != 1) return -1;
  return len + ${TAG_LEN};
}

int wg_aead_open(void *ctx, u64 counter, unsigned char *src, int srcOff, int len, unsigned char *dst, int dstOff) {
  unsigned char nonce[12];
  unsigned char tag[${TAG_LEN}];
  int n = 0, m = 0, plen = len - ${TAG_LEN}, i, ok;
  src += srcOff;
  dst += dstOff;
  if (plen < 0) return -1;
  /* the tag is copied first: decrypting in place may overwrite it when dst trails src */
  for (i = 0; i < ${TAG_LEN}; i++) tag[i] = src[plen + i];
  put_nonce(nonce, counter);
  if (p_init(ctx, 0, 0, 0, nonce, 0) != 1) return -1;
  if (p_ctrl(ctx, ${EVP_CTRL_AEAD_SET_TAG}, ${TAG_LEN}, tag) != 1) return -1;
  ok = plen == 0 || p_update(ctx, dst, &n, src, plen) == 1;
  ok = p_final(ctx, dst + n, &m) == 1 && ok;
  if (!ok) {
    /* never release unauthenticated plaintext */
    for (i = 0; i < plen; i++) dst[i] = 0;
    return -1;
  }
  return plen;
}
`;

const SHIM_SYMBOLS = {
  wg_aead_setup: { args: ["ptr", "ptr", "ptr", "ptr"], returns: "void" },
  wg_aead_seal: { args: ["ptr", "u64", "ptr", "i32", "i32", "ptr", "i32"], returns: "i32" },
  wg_aead_open: { args: ["ptr", "u64", "ptr", "i32", "i32", "ptr", "i32"], returns: "i32" },
} as const;

export const AEAD_SHIM: ShimSource<typeof SHIM_SYMBOLS> = { source: SHIM_SOURCE, symbols: SHIM_SYMBOLS };
type ShimFns = ConvertFns<typeof SHIM_SYMBOLS>;

/** The shim's functions, connected to libcrypto's; null without TinyCC. */
function setupShim(s: EvpFns, given: ShimFns | null | undefined): ShimFns | null {
  const shim = shimFunctions("aead", AEAD_SHIM, given);
  if (!shim) return null;
  try {
    shim.wg_aead_setup(fnAddress(s.EVP_CipherInit_ex), fnAddress(s.EVP_CipherUpdate), fnAddress(s.EVP_CipherFinal_ex), fnAddress(s.EVP_CIPHER_CTX_ctrl));
  } catch {
    return null;
  }
  return shim;
}

function wipe(key: Uint8Array | null): null {
  key?.fill(0);
  return null;
}

function checkRange(buf: Uint8Array, off: number, len: number): void {
  if (!(off >= 0 && len >= 0 && off + len <= buf.length)) throw new RangeError("AEAD buffer range out of bounds");
}

/** The AeadBackend plus free-form 12-byte nonces (RFC 8439 vectors whose nonce is not a counter). */
export interface OpenSslAead extends AeadBackend {
  sealWithNonce(key: Uint8Array, nonce12: Uint8Array, plain: Uint8Array, ad: Uint8Array): Uint8Array;
  openWithNonce(key: Uint8Array, nonce12: Uint8Array, sealed: Uint8Array, ad: Uint8Array): Uint8Array | null;
}

export interface OpenSslAeadOptions {
  /** Force one driver (benchmarks, tests). Default: the shim when TinyCC works, else EVP calls. */
  mode?: OpenSslAeadMode;
  /** Library names tried in order. */
  sonames?: readonly string[];
  /** AEAD_SHIM compiled already, with other shims (native-crypto.ts); by default compiled here. */
  shim?: ShimFns | null;
}

/** Loads libcrypto's ChaCha20-Poly1305; null when the library is missing or misbehaves. */
export function loadOpenSslAead(options: OpenSslAeadOptions = {}): OpenSslAead | null {
  try {
    return load(options);
  } catch {
    return null;
  }
}

function load(options: OpenSslAeadOptions): OpenSslAead | null {
  const { mode } = options;
  const opened = openLibcrypto(EVP_SYMBOLS, options.sonames);
  if (!opened) return null;
  const { symbols: s, soname } = opened;
  const cipher = s.EVP_chacha20_poly1305();
  if (!cipher) return null;
  const shim = mode === "evp" ? null : setupShim(s, options.shim);
  if (mode === "shim" && !shim) return null;

  // Scratch for the EVP driver and the one-shot calls; pointers are taken once because these
  // buffers live as long as the backend (ptr() pins their storage).
  const outl = new Int32Array(new ArrayBuffer(8));
  const outlPtr = ptr(outl);
  const nonce = new Uint8Array(new ArrayBuffer(16), 0, 12);
  const nonceView = new DataView(nonce.buffer, 0, 12);
  const noncePtr = ptr(nonce);
  const tagScratch = new Uint8Array(new ArrayBuffer(TAG_LEN));
  const tagPtr = ptr(tagScratch);

  const freeCtx = (ctx: Pointer) => s.EVP_CIPHER_CTX_free(ctx);
  // Keys that are dropped without destroy() still get their contexts (and key schedules) freed.
  const finalizer = new FinalizationRegistry<Pointer[]>((ctxs) => ctxs.forEach(freeCtx));

  function newCtx(key: Uint8Array | null, enc: number): Pointer {
    const ctx = s.EVP_CIPHER_CTX_new() as Pointer | null;
    if (!ctx) throw new Error("EVP_CIPHER_CTX_new failed");
    if (s.EVP_CipherInit_ex(ctx, cipher, null, key ? ptr(key) : null, null, enc) !== 1) {
      freeCtx(ctx);
      throw new Error("EVP_CipherInit_ex failed");
    }
    return ctx;
  }

  // One context for all one-shot (handshake) operations; the key is set on every call.
  const oneShotCtx = newCtx(null, 1);

  // Pointer arguments must not come from empty views (ptr() refuses them); when nothing is read
  // or written there any valid address will do, so the other buffer stands in.
  const at = (buf: Uint8Array, off: number, other: Uint8Array, otherOff: number): Pointer =>
    buf.length > 0 ? ptr(buf, off) : ptr(other, otherOff);

  /** EVP driver: returns bytes written or -1; `enc` 1 seals, 0 opens. */
  function evpCrypt(ctx: Pointer, enc: number, counter: bigint | number | Uint8Array, src: Uint8Array, srcOff: number, len: number,
                    dst: Uint8Array, dstOff: number, ad: Uint8Array | null, key: Uint8Array | null): number {
    if (typeof counter === "bigint") {
      nonceView.setUint32(0, 0);
      nonceView.setBigUint64(4, counter, true);
    } else if (typeof counter === "number") {
      nonceView.setUint32(0, 0);
      nonceView.setUint32(4, counter >>> 0, true);
      nonceView.setUint32(8, Math.floor(counter / 0x1_0000_0000), true);
    } else nonce.set(counter);
    const plen = enc ? len : len - TAG_LEN;
    if (plen < 0) return -1;
    if (!enc) tagScratch.set(src.subarray(srcOff + plen, srcOff + len));
    if (s.EVP_CipherInit_ex(ctx, null, null, key ? ptr(key) : null, noncePtr, enc) !== 1) return -1;
    if (!enc && s.EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, TAG_LEN, tagPtr) !== 1) return -1;
    if (ad && ad.length > 0 && s.EVP_CipherUpdate(ctx, null, outlPtr, ad, ad.length) !== 1) return -1;
    let n = 0;
    let ok = true;
    if (plen > 0) {
      ok = s.EVP_CipherUpdate(ctx, ptr(dst, dstOff), outlPtr, ptr(src, srcOff), plen) === 1;
      n = outl[0]!;
    }
    // Final runs even after a failed update so the context is left reusable.
    ok = s.EVP_CipherFinal_ex(ctx, at(dst, dstOff + n, src, srcOff), outlPtr) === 1 && ok;
    if (!ok) {
      if (!enc) dst.fill(0, dstOff, dstOff + plen);
      return -1;
    }
    if (enc) {
      if (s.EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, TAG_LEN, ptr(dst, dstOff + len)) !== 1) return -1;
      return len + TAG_LEN;
    }
    return plen;
  }

  function prepare(key: Uint8Array): AeadKey {
    // One context per direction, each made on first use: a WireGuard transport key only ever
    // seals or only ever opens, so the other context (memory and key setup) is never paid for. Re-initialising a single context with the other `enc` flag per packet would re-enter
    // the provider's key setup every time.
    let pendingKey: Uint8Array | null = Uint8Array.from(key);
    let sealCtx: Pointer | null = null;
    let openCtx: Pointer | null = null;
    const owned: Pointer[] = []; // what the finalizer frees if destroy() is never called
    const make = (enc: number): Pointer | null => {
      if (!pendingKey) return null;
      const ctx = newCtx(pendingKey, enc);
      owned.push(ctx);
      if (enc) sealCtx = ctx;
      else openCtx = ctx;
      if (sealCtx && openCtx) pendingKey = wipe(pendingKey);
      return ctx;
    };
    const shimSeal = shim?.wg_aead_seal;
    const shimOpen = shim?.wg_aead_open;
    // bigint and number counters share one path: the shim's u64 argument takes either without
    // conversion, and the EVP driver writes either into the nonce.
    const seal = (counter: bigint | number, src: Uint8Array, srcOff: number, len: number, dst: Uint8Array, dstOff: number): number => {
      const ctx = sealCtx ?? make(1);
      if (!ctx) return -1;
      checkRange(src, srcOff, len);
      checkRange(dst, dstOff, len + TAG_LEN);
      // Typed arrays go straight into "ptr" arguments with their offsets, without a ptr() call.
      if (shimSeal) return shimSeal(ctx, counter, src.length > 0 ? src : dst, srcOff, len, dst, dstOff);
      return evpCrypt(ctx, 1, counter, src, srcOff, len, dst, dstOff, null, null);
    };
    const open = (counter: bigint | number, src: Uint8Array, srcOff: number, len: number, dst: Uint8Array, dstOff: number): number => {
      if (len < TAG_LEN) return -1;
      const ctx = openCtx ?? make(0);
      if (!ctx) return -1;
      checkRange(src, srcOff, len);
      checkRange(dst, dstOff, len - TAG_LEN);
      if (shimOpen) return shimOpen(ctx, counter, src, srcOff, len, dst.length > 0 ? dst : src, dstOff);
      return evpCrypt(ctx, 0, counter, src, srcOff, len, dst, dstOff, null, null);
    };
    const k: AeadKey = {
      sealInto: seal,
      openInto: open,
      sealIntoNumber: seal,
      openIntoNumber: open,
      destroy() {
        finalizer.unregister(k);
        for (const ctx of owned.splice(0)) freeCtx(ctx);
        sealCtx = openCtx = null;
        pendingKey = wipe(pendingKey);
      },
    };
    finalizer.register(k, owned, k);
    return k;
  }

  function checkKey(key: Uint8Array): void {
    if (key.length !== 32) throw new RangeError("ChaCha20-Poly1305 key must be 32 bytes");
  }

  function checkNonce(nonce12: Uint8Array): void {
    if (nonce12.length !== 12) throw new RangeError("ChaCha20-Poly1305 nonce must be 12 bytes");
  }

  const backend: OpenSslAead = {
    name: `openssl-${shim ? "shim" : "evp"} (${soname})`,
    prepare(key) {
      checkKey(key);
      return prepare(key);
    },
    seal: (key, counter, plain, ad) => oneShotSeal(key, counter, plain, ad),
    open: (key, counter, sealed, ad) => oneShotOpen(key, counter, sealed, ad),
    sealWithNonce(key, nonce12, plain, ad) {
      checkNonce(nonce12);
      return oneShotSeal(key, nonce12, plain, ad);
    },
    openWithNonce(key, nonce12, sealed, ad) {
      checkNonce(nonce12);
      return oneShotOpen(key, nonce12, sealed, ad);
    },
  };

  function oneShotSeal(key: Uint8Array, counter: bigint | Uint8Array, plain: Uint8Array, ad: Uint8Array): Uint8Array {
    checkKey(key);
    const out = new Uint8Array(plain.length + TAG_LEN);
    if (evpCrypt(oneShotCtx, 1, counter, plain, 0, plain.length, out, 0, ad, key) < 0) throw new Error("AEAD seal failed");
    return out;
  }
  function oneShotOpen(key: Uint8Array, counter: bigint | Uint8Array, sealed: Uint8Array, ad: Uint8Array): Uint8Array | null {
    checkKey(key);
    if (sealed.length < TAG_LEN) return null;
    const out = new Uint8Array(Math.max(1, sealed.length - TAG_LEN));
    const n = evpCrypt(oneShotCtx, 0, counter, sealed, 0, sealed.length, out, 0, ad, key);
    return n < 0 ? null : out.subarray(0, n);
  }
  return selfCheck(backend) ? backend : null;
}

// The full vector set is checked by tests; at load a short cross-check against noble proves the
// library behaves as WireGuard's AEAD (right symbol, nonce layout, tag placement, rejection)
// before it is trusted with the data path.
function selfCheck(b: AeadBackend): boolean {
  try {
    const key = new Uint8Array(32).map((_, i) => i * 3 + 1);
    const plain = new Uint8Array(48).map((_, i) => i * 7);
    const counter = 0x0102030405060708n;
    const want = nobleAead.seal(key, counter, plain, new Uint8Array(0));
    const k = b.prepare(key);
    const sealed = new Uint8Array(64);
    let same = k.sealInto(counter, plain, 0, 48, sealed, 0) === 64 && equal(sealed, want);
    const withAd = b.seal(key, counter, plain, Uint8Array.of(1, 2, 3));
    same &&= equal(withAd, nobleAead.seal(key, counter, plain, Uint8Array.of(1, 2, 3)));
    const back = new Uint8Array(48);
    same &&= k.openInto(counter, sealed, 0, 64, back, 0) === 48 && equal(back, plain);
    sealed[10]! ^= 1;
    same &&= k.openInto(counter, sealed, 0, 64, back, 0) === -1;
    k.destroy();
    return same;
  } catch {
    return false;
  }
}
