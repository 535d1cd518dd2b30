// BLAKE2s, keyed BLAKE2s (MAC), HMAC-BLAKE2s and the KDF chain from the system's libcrypto
// (OpenSSL 3) through bun:ffi, as the HashBackend. A responder computes ~21 HMACs per handshake;
// in JS each is compression plus allocation, here a whole KDF (up to 4 HMACs = 8 digests) is ONE
// foreign call into a TinyCC shim (bun:ffi `cc`, see openssl.ts) that
// builds HMAC on EVP_Digest* with a pre-fetched "BLAKE2S-256" and one reused digest context.
// The MAC is EVP_MAC "BLAKE2SMAC" with its output size passed as a parameter (a 16-byte keyed
// BLAKE2s is its own function, not a truncation). Returns null when libcrypto (3.x: EVP_MAC and
// EVP_MD_fetch) or TinyCC is missing or a known answer comes out wrong, so the noble backend stays.
import type { ConvertFns, Pointer } from "bun:ffi";
import { equal, type HashBackend } from "../../core/crypto.ts";
import { fnAddress } from "./libc.ts";
import { openLibcrypto, shimFunctions, type ShimSource } from "./openssl.ts";

const EVP_SYMBOLS = {
  EVP_MD_fetch: { args: ["ptr", "cstring", "ptr"], returns: "ptr" },
  EVP_MD_CTX_new: { args: [], returns: "ptr" },
  EVP_DigestInit_ex: { args: ["ptr", "ptr", "ptr"], returns: "i32" },
  EVP_DigestUpdate: { args: ["ptr", "ptr", "usize"], returns: "i32" },
  EVP_DigestFinal_ex: { args: ["ptr", "ptr", "ptr"], returns: "i32" },
  EVP_MAC_fetch: { args: ["ptr", "cstring", "ptr"], returns: "ptr" },
  EVP_MAC_CTX_new: { args: ["ptr"], returns: "ptr" },
  EVP_MAC_init: { args: ["ptr", "ptr", "usize", "ptr"], returns: "i32" },
  EVP_MAC_update: { args: ["ptr", "ptr", "usize"], returns: "i32" },
  EVP_MAC_final: { args: ["ptr", "ptr", "ptr", "usize"], returns: "i32" },
  ERR_clear_error: { args: [], returns: "void" },
} as const;

// Prototypes and the OSSL_PARAM layout (stable ABI of OpenSSL 3: key, data_type, data,
// data_size, return_size; OSSL_PARAM_UNSIGNED_INTEGER = 2) are spelled out so no headers are
// needed. Every failure zeroes the output and clears the error queue; secrets in scratch
// (pads, t0, inner digests) are wiped before returning.
const SHIM_SOURCE = `
typedef unsigned long ulong;
typedef int (*dinit_fn)(void *, const void *, void *);
typedef int (*dupdate_fn)(void *, const void *, ulong);
typedef int (*dfinal_fn)(void *, unsigned char *, unsigned int *);
typedef int (*minit_fn)(void *, const unsigned char *, ulong, const void *);
typedef int (*mupdate_fn)(void *, const unsigned char *, ulong);
typedef int (*mfinal_fn)(void *, unsigned char *, ulong *, ulong);
typedef void (*clear_fn)(void);
typedef struct { const char *key; unsigned int data_type; void *data; ulong data_size; ulong return_size; } param_t;

static dinit_fn p_dinit;
static dupdate_fn p_dupdate;
static dfinal_fn p_dfinal;
static minit_fn p_minit;
static mupdate_fn p_mupdate;
static mfinal_fn p_mfinal;
static clear_fn p_clear;
static void *md, *dctx, *mctx;

void wg_hash_setup(void **f) {
  p_dinit = (dinit_fn)f[0]; p_dupdate = (dupdate_fn)f[1]; p_dfinal = (dfinal_fn)f[2];
  p_minit = (minit_fn)f[3]; p_mupdate = (mupdate_fn)f[4]; p_mfinal = (mfinal_fn)f[5];
  p_clear = (clear_fn)f[6]; md = f[7]; dctx = f[8]; mctx = f[9];
}

static void wipe(unsigned char *p, int n) {
  volatile unsigned char *v = p;
  while (n-- > 0) *v++ = 0;
}

static int fail(unsigned char *out, int n) {
  p_clear();
  wipe(out, n);
  return 0;
}

static int digest2(unsigned char *out, const unsigned char *a, ulong an, const unsigned char *b, ulong bn) {
  unsigned int n = 32;
  return p_dinit(dctx, md, 0) == 1 && (an == 0 || p_dupdate(dctx, a, an) == 1) &&
         (bn == 0 || p_dupdate(dctx, b, bn) == 1) && p_dfinal(dctx, out, &n) == 1 && n == 32;
}

static int hmac(unsigned char *out, const unsigned char *key, ulong kn, const unsigned char *d, ulong dn) {
  unsigned char pad[64], inner[32];
  int i, ok = 1;
  for (i = 0; i < 64; i++) pad[i] = 0;
  if (kn > 64) ok = digest2(pad, key, kn, 0, 0);
  else for (i = 0; i < (int)kn; i++) pad[i] = key[i];
  for (i = 0; i < 64; i++) pad[i] ^= 0x36;
  ok = ok && digest2(inner, pad, 64, d, dn);
  for (i = 0; i < 64; i++) pad[i] ^= 0x36 ^ 0x5c;
  ok = ok && digest2(out, pad, 64, inner, 32);
  wipe(pad, 64);
  wipe(inner, 32);
  return ok;
}

int wg_hash2(unsigned char *out, const unsigned char *a, ulong an, const unsigned char *b, ulong bn) {
  return digest2(out, a, an, b, bn) ? 1 : fail(out, 32);
}

int wg_hmac(unsigned char *out, const unsigned char *key, ulong kn, const unsigned char *d, ulong dn) {
  return hmac(out, key, kn, d, dn) ? 1 : fail(out, 32);
}

/* t1..tn into o1..on: t0 = HMAC(key, in); t1 = HMAC(t0, 1); ti = HMAC(t0, t(i-1) || i). */
int wg_kdf(int n, unsigned char *o1, unsigned char *o2, unsigned char *o3,
           const unsigned char *key, ulong kn, const unsigned char *in, ulong inn) {
  unsigned char t0[32], buf[33];
  unsigned char *outs[3];
  int i, j, ok;
  outs[0] = o1; outs[1] = o2; outs[2] = o3;
  ok = hmac(t0, key, kn, in, inn);
  buf[0] = 1;
  ok = ok && hmac(o1, t0, 32, buf, 1);
  for (i = 2; ok && i <= n; i++) {
    for (j = 0; j < 32; j++) buf[j] = outs[i - 2][j];
    buf[32] = (unsigned char)i;
    ok = hmac(outs[i - 1], t0, 32, buf, 33);
  }
  wipe(t0, 32);
  wipe(buf, 33);
  if (ok) return 1;
  for (i = 0; i < n; i++) wipe(outs[i], 32);
  return fail(o1, 32);
}

/* Keyed BLAKE2s with digest length outlen (1..32) and a 1..32-byte key. */
int wg_mac(unsigned char *out, ulong outlen, const unsigned char *key, ulong kn, const unsigned char *d, ulong dn) {
  ulong size = outlen, got = 0;
  param_t params[2];
  params[0].key = "size"; params[0].data_type = 2; params[0].data = &size;
  params[0].data_size = sizeof(size); params[0].return_size = (ulong)-1;
  params[1].key = 0; params[1].data_type = 0; params[1].data = 0; params[1].data_size = 0; params[1].return_size = 0;
  if (p_minit(mctx, key, kn, params) == 1 && (dn == 0 || p_mupdate(mctx, d, dn) == 1) &&
      p_mfinal(mctx, out, &got, outlen) == 1 && got == outlen)
    return 1;
  return fail(out, (int)outlen);
}
`;

const SHIM_SYMBOLS = {
  wg_hash_setup: { args: ["ptr"], returns: "void" },
  wg_hash2: { args: ["ptr", "ptr", "usize", "ptr", "usize"], returns: "i32" },
  wg_hmac: { args: ["ptr", "ptr", "usize", "ptr", "usize"], returns: "i32" },
  wg_kdf: { args: ["i32", "ptr", "ptr", "ptr", "ptr", "usize", "ptr", "usize"], returns: "i32" },
  wg_mac: { args: ["ptr", "usize", "ptr", "usize", "ptr", "usize"], returns: "i32" },
} as const;

export const HASH_SHIM: ShimSource<typeof SHIM_SYMBOLS> = { source: SHIM_SOURCE, symbols: SHIM_SYMBOLS };

/** The HashBackend plus keyed BLAKE2s of any output length (tests run the full vector tables). */
export interface OpenSslHash extends HashBackend {
  /** Keyed BLAKE2s, outLen 1..32, key 1..32 bytes (OpenSSL's BLAKE2SMAC refuses an empty key). */
  keyedBlake2s(key: Uint8Array, data: Uint8Array, outLen: number): Uint8Array;
}

export interface OpenSslHashOptions {
  /** Library names tried in order. */
  sonames?: readonly string[];
  /** HASH_SHIM compiled already, with other shims (native-crypto.ts); by default compiled here. */
  shim?: ConvertFns<typeof SHIM_SYMBOLS> | null;
}

/** Loads libcrypto's BLAKE2s; null when the library or TinyCC is missing or misbehaves. */
export function loadOpenSslHash(options: OpenSslHashOptions = {}): OpenSslHash | null {
  try {
    return load(options);
  } catch {
    return null;
  }
}

function load(options: OpenSslHashOptions): OpenSslHash | null {
  const opened = openLibcrypto(EVP_SYMBOLS, options.sonames);
  if (!opened) return null;
  const { symbols: s, soname } = opened;
  // Fetched once: the legacy EVP_blake2s256() would repeat the provider lookup on every init.
  const cname = (t: string) => Buffer.from(t + "\0");
  const md = s.EVP_MD_fetch(null, cname("BLAKE2S-256"), null) as Pointer | null;
  const macAlg = md ? (s.EVP_MAC_fetch(null, cname("BLAKE2SMAC"), null) as Pointer | null) : null;
  const dctx = macAlg ? (s.EVP_MD_CTX_new() as Pointer | null) : null;
  const mctx = dctx ? (s.EVP_MAC_CTX_new(macAlg) as Pointer | null) : null;
  if (!mctx) {
    s.ERR_clear_error();
    return null;
  }
  const sh = shimFunctions("hash", HASH_SHIM, options.shim);
  if (!sh) return null;
  // The fetched algorithms and the two contexts live as long as the process: one backend is
  // loaded per daemon, and freeing them would leave the shim's static pointers dangling.
  sh.wg_hash_setup(
    new BigUint64Array(
      [
        fnAddress(s.EVP_DigestInit_ex), fnAddress(s.EVP_DigestUpdate), fnAddress(s.EVP_DigestFinal_ex),
        fnAddress(s.EVP_MAC_init), fnAddress(s.EVP_MAC_update), fnAddress(s.EVP_MAC_final),
        fnAddress(s.ERR_clear_error), md!, dctx!, mctx,
      ].map((p) => BigInt(p)),
    ),
  );

  // bun:ffi cannot take the address of an empty view; with length 0 nothing is read there, so
  // any live buffer stands in.
  const PLACEHOLDER = new Uint8Array(8);
  const NOTHING = new Uint8Array(0);
  const nonEmpty = (b: Uint8Array) => (b.length > 0 ? b : PLACEHOLDER);

  // Each output is its own array: views into one shared buffer cost more (subarray makes JSC
  // materialize the ArrayBuffer) than the extra allocations. Unused slots get a dummy.
  const kdfCall = (n: number, o1: Uint8Array, o2: Uint8Array, o3: Uint8Array, key: Uint8Array, input: Uint8Array): void => {
    if (sh.wg_kdf(n, o1, o2, o3, nonEmpty(key), key.length, nonEmpty(input), input.length) !== 1) throw new Error("BLAKE2s KDF failed");
  };
  const KDF_SINK = new Uint8Array(32);

  const keyedBlake2s = (key: Uint8Array, data: Uint8Array, outLen: number): Uint8Array => {
    if (!(Number.isInteger(outLen) && outLen >= 1 && outLen <= 32)) throw new RangeError("BLAKE2s output length must be 1..32");
    if (key.length < 1 || key.length > 32) throw new RangeError("BLAKE2s MAC key must be 1..32 bytes");
    const out = new Uint8Array(outLen);
    if (sh.wg_mac(out, outLen, key, key.length, nonEmpty(data), data.length) !== 1) throw new Error("BLAKE2s MAC failed");
    return out;
  };

  // Parts beyond two are concatenated here (nothing in the protocol hashes more than two).
  const hash2 = (a: Uint8Array, b: Uint8Array): Uint8Array => {
    const out = new Uint8Array(32);
    if (sh.wg_hash2(out, nonEmpty(a), a.length, nonEmpty(b), b.length) !== 1) throw new Error("BLAKE2s failed");
    return out;
  };

  const backend: OpenSslHash = {
    name: `openssl-shim (${soname})`,
    hash(parts) {
      if (parts.length <= 2) return hash2(parts[0] ?? NOTHING, parts[1] ?? NOTHING);
      return hash2(Buffer.concat(parts), NOTHING);
    },
    mac: (key, data) => keyedBlake2s(key, data, 16),
    hmac(key, data) {
      const out = new Uint8Array(32);
      if (sh.wg_hmac(out, nonEmpty(key), key.length, nonEmpty(data), data.length) !== 1) throw new Error("HMAC-BLAKE2s failed");
      return out;
    },
    kdf1(key, input) {
      const t1 = new Uint8Array(32);
      kdfCall(1, t1, KDF_SINK, KDF_SINK, key, input);
      return t1;
    },
    kdf2(key, input) {
      const t: [Uint8Array, Uint8Array] = [new Uint8Array(32), new Uint8Array(32)];
      kdfCall(2, t[0], t[1], KDF_SINK, key, input);
      return t;
    },
    kdf3(key, input) {
      const t: [Uint8Array, Uint8Array, Uint8Array] = [new Uint8Array(32), new Uint8Array(32), new Uint8Array(32)];
      kdfCall(3, t[0], t[1], t[2], key, input);
      return t;
    },
    keyedBlake2s,
  };
  return selfCheck(backend) ? backend : null;
}

// Fixed answers (test/vectors: RFC 7693 "abc", the BLAKE2 reference keyed KAT for an empty
// message, wireguard-go's KDF test, the kernel's 256-byte-key HMAC case) prove at load that the
// library and shim compute WireGuard's functions: digest, MAC size parameter, HMAC with a long
// key, the KDF chain. The full tables and a noble cross-check are in test/hash-native.test.ts.
const hex = (t: string) => Uint8Array.from(Buffer.from(t, "hex"));
const ascii = (t: string) => new TextEncoder().encode(t);
const seq = (n: number) => Uint8Array.from({ length: n }, (_, i) => i & 0xff);

function selfCheck(b: OpenSslHash): boolean {
  try {
    let ok = equal(b.hash([ascii("ab"), ascii("c")]), hex("508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982"));
    ok &&= equal(b.keyedBlake2s(seq(32), new Uint8Array(0), 32), hex("48a8997da407876b3d79c0d92325ad3b89cbb754d86ab71aee047ad345fd2c49"));
    const [t1, t2, t3] = b.kdf3(ascii("test-key"), ascii("test-input"));
    ok &&= equal(t1, hex("6f0e5ad38daba1bea8a0d213688736f19763239305e0f58aba697f9ffc41c633"));
    ok &&= equal(t2, hex("df1194df20802a4fe594cde27e92991c8cae66c366e8106aaa937a55fa371e8a"));
    ok &&= equal(t3, hex("fac6e2745a325f5dc5d11a5b165aad08b0ada28e7b4e666b7c077934a4d76c24"));
    ok &&= equal(
      b.hmac(seq(256), hex("0101020305080d1522375990e97962db3d18556dc22ff12011314273b528dd05")),
      hex("772f0c7141f44b2bb3c6b6f960dee4523866e8bf9b96c49f60d9243799d6ec31"),
    );
    return ok;
  } catch {
    return false;
  }
}
