// X25519 from the system's libcrypto (OpenSSL 3 / 1.1.1) through bun:ffi, as the DhBackend.
// A handshake response makes four scalar multiplications (publicKey + three DH), so their cost
// decides how many handshakes per second the daemon can answer, and libcrypto's are far cheaper
// than @noble/curves' (bench/x25519.ts). Returns null when libcrypto cannot be loaded or fails its known-answer
// check, so callers keep the noble backend.
//
// OpenSSL computes the public key whenever a private EVP_PKEY is made (one full scalar
// multiplication), so a DH built from scratch costs two. Derive contexts are therefore kept for
// the few most recently used private keys: the static key is used by every handshake, and an
// ephemeral key is used by publicKey() and then by two DHs right after. A cached DH is one scalar
// multiplication and, with the TinyCC shim (bun:ffi `cc`, as in aead-openssl.ts), one foreign
// call: peer key + set_peer + derive + free in C. Without TinyCC the same EVP calls are made one
// by one from JS ("evp").
//
// The cache holds copies of private keys (in JS and inside libcrypto) until evicted or until
// forget() is called; OpenSSL wipes its copy when the context is freed.
import { type ConvertFns, type Pointer } from "bun:ffi";
import { fnAddress } from "./libc.ts";
import { openLibcrypto, shimFunctions, type ShimSource } from "./openssl.ts";
import { equal, type DhBackend } from "../../core/crypto.ts";

export type OpenSslX25519Mode = "shim" | "evp";


// NID_X25519 (include/openssl/obj_mac.h), the EVP_PKEY_X25519 type; same in 1.1.1 and 3.x.
const EVP_PKEY_X25519 = 1034;
const KEY_LEN = 32;
/** Private keys whose derive contexts are kept (static key + a few handshakes' ephemerals). */
const DEFAULT_CACHE = 4;

const EVP_SYMBOLS = {
  EVP_PKEY_new_raw_private_key: { args: ["i32", "ptr", "ptr", "usize"], returns: "ptr" },
  EVP_PKEY_new_raw_public_key: { args: ["i32", "ptr", "ptr", "usize"], returns: "ptr" },
  EVP_PKEY_free: { args: ["ptr"], returns: "void" },
  EVP_PKEY_get_raw_public_key: { args: ["ptr", "ptr", "ptr"], returns: "i32" },
  EVP_PKEY_CTX_new: { args: ["ptr", "ptr"], returns: "ptr" },
  EVP_PKEY_CTX_free: { args: ["ptr"], returns: "void" },
  EVP_PKEY_CTX_get0_pkey: { args: ["ptr"], returns: "ptr" },
  EVP_PKEY_derive_init: { args: ["ptr"], returns: "i32" },
  EVP_PKEY_derive_set_peer: { args: ["ptr", "ptr"], returns: "i32" },
  EVP_PKEY_derive: { args: ["ptr", "ptr", "ptr"], returns: "i32" },
  ERR_clear_error: { args: [], returns: "void" },
} as const;

type EvpFns = ConvertFns<typeof EVP_SYMBOLS>;


// Prototypes are spelled out instead of including <openssl/evp.h> so no development headers are
// needed; the function pointers come from our dlopen handle. A failed derive (OpenSSL refuses an
// all-zero shared secret) leaves an entry on the thread's error queue, which is cleared so it
// cannot grow or confuse a later caller; the output is zeroed so nothing partial escapes.
const SHIM_SOURCE = `
typedef unsigned long ulong;
typedef void *(*new_raw_fn)(int, void *, const unsigned char *, ulong);
typedef void (*free_fn)(void *);
typedef int (*get_raw_fn)(void *, unsigned char *, ulong *);
typedef void *(*ctx_new_fn)(void *, void *);
typedef void *(*get0_fn)(void *);
typedef int (*derive_init_fn)(void *);
typedef int (*set_peer_fn)(void *, void *);
typedef int (*derive_fn)(void *, unsigned char *, ulong *);
typedef void (*clear_fn)(void);
static new_raw_fn p_new_priv, p_new_pub;
static free_fn p_pkey_free, p_ctx_free;
static get_raw_fn p_get_pub;
static ctx_new_fn p_ctx_new;
static get0_fn p_get0;
static derive_init_fn p_derive_init;
static set_peer_fn p_set_peer;
static derive_fn p_derive;
static clear_fn p_err_clear;

void wg_x25519_setup(void **f) {
  p_new_priv = (new_raw_fn)f[0]; p_new_pub = (new_raw_fn)f[1]; p_pkey_free = (free_fn)f[2];
  p_get_pub = (get_raw_fn)f[3]; p_ctx_new = (ctx_new_fn)f[4]; p_ctx_free = (free_fn)f[5];
  p_get0 = (get0_fn)f[6]; p_derive_init = (derive_init_fn)f[7]; p_set_peer = (set_peer_fn)f[8];
  p_derive = (derive_fn)f[9]; p_err_clear = (clear_fn)f[10];
}

/* A derive context for a private key (the context holds the only reference to the key). */
void *wg_x25519_context(const unsigned char *priv) {
  void *ctx = 0;
  void *pkey = p_new_priv(${EVP_PKEY_X25519}, 0, priv, ${KEY_LEN});
  if (pkey) {
    ctx = p_ctx_new(pkey, 0);
    p_pkey_free(pkey);
    if (ctx && p_derive_init(ctx) != 1) { p_ctx_free(ctx); ctx = 0; }
  }
  if (!ctx) p_err_clear();
  return ctx;
}

int wg_x25519_derive(void *ctx, const unsigned char *pub, unsigned char *out) {
  ulong len = ${KEY_LEN};
  int ok = 0, i;
  void *peer = p_new_pub(${EVP_PKEY_X25519}, 0, pub, ${KEY_LEN});
  if (peer) {
    ok = p_set_peer(ctx, peer) == 1 && p_derive(ctx, out, &len) == 1 && len == ${KEY_LEN};
    p_pkey_free(peer);
  }
  if (!ok) {
    p_err_clear();
    for (i = 0; i < ${KEY_LEN}; i++) out[i] = 0;
  }
  return ok;
}

int wg_x25519_public(void *ctx, unsigned char *out) {
  ulong len = ${KEY_LEN};
  void *pkey = p_get0(ctx);
  int ok = pkey && p_get_pub(pkey, out, &len) == 1 && len == ${KEY_LEN};
  if (!ok) p_err_clear();
  return ok;
}
`;

const SHIM_SYMBOLS = {
  wg_x25519_setup: { args: ["ptr"], returns: "void" },
  wg_x25519_context: { args: ["ptr"], returns: "ptr" },
  wg_x25519_derive: { args: ["ptr", "ptr", "ptr"], returns: "i32" },
  wg_x25519_public: { args: ["ptr", "ptr"], returns: "i32" },
} as const;

export const X25519_SHIM: ShimSource<typeof SHIM_SYMBOLS> = { source: SHIM_SOURCE, symbols: SHIM_SYMBOLS };
type ShimFns = ConvertFns<typeof SHIM_SYMBOLS>;

/** The shim's functions, connected to libcrypto's; null without TinyCC. */
function setupShim(s: EvpFns, given: ShimFns | null | undefined): ShimFns | null {
  const shim = shimFunctions("x25519", X25519_SHIM, given);
  if (!shim) return null;
  try {
    const table = new BigUint64Array([
      s.EVP_PKEY_new_raw_private_key, s.EVP_PKEY_new_raw_public_key, s.EVP_PKEY_free,
      s.EVP_PKEY_get_raw_public_key, s.EVP_PKEY_CTX_new, s.EVP_PKEY_CTX_free, s.EVP_PKEY_CTX_get0_pkey,
      s.EVP_PKEY_derive_init, s.EVP_PKEY_derive_set_peer, s.EVP_PKEY_derive, s.ERR_clear_error,
    ].map((f) => BigInt(fnAddress(f))));
    shim.wg_x25519_setup(table);
  } catch {
    return null;
  }
  return shim;
}

/** The DhBackend plus control over the private-key cache. */
export interface OpenSslX25519 extends DhBackend {
  /** Frees every cached context and wipes the cached private-key copies. */
  forget(): void;
}

export interface OpenSslX25519Options {
  /** Force one driver (benchmarks, tests). Default: the shim when TinyCC works, else EVP calls. */
  mode?: OpenSslX25519Mode;
  /** Library names tried in order. */
  sonames?: readonly string[];
  /** Private keys whose contexts are kept; 0 builds and frees a context per operation. */
  cacheSize?: number;
  /** X25519_SHIM compiled already, with other shims (native-crypto.ts); by default compiled here. */
  shim?: ShimFns | null;
}

/** Loads libcrypto's X25519; null when the library is missing or gives a wrong known answer. */
export function loadOpenSslX25519(options: OpenSslX25519Options = {}): OpenSslX25519 | null {
  try {
    return load(options);
  } catch {
    return null;
  }
}

interface Entry {
  key: Uint8Array;
  ctx: Pointer;
}

function checkKey(k: Uint8Array, what: string): void {
  if (!(k instanceof Uint8Array) || k.length !== KEY_LEN) throw new RangeError(`X25519 ${what} must be 32 bytes`);
}

function load(options: OpenSslX25519Options): OpenSslX25519 | null {
  const { mode } = options;
  const cacheSize = Math.max(0, Math.floor(options.cacheSize ?? DEFAULT_CACHE));
  const opened = openLibcrypto(EVP_SYMBOLS, options.sonames);
  if (!opened) return null;
  const { symbols: s, soname } = opened;
  const sh = mode === "evp" ? null : setupShim(s, options.shim);
  if (mode === "shim" && !sh) return null;

  // size_t in/out argument of the EVP driver; lives as long as the backend.
  const lenBox = new BigUint64Array(1);

  function newContext(priv: Uint8Array): Pointer | null {
    if (sh) return sh.wg_x25519_context(priv) as Pointer | null;
    const pkey = s.EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, null, priv, KEY_LEN) as Pointer | null;
    let ctx: Pointer | null = null;
    if (pkey) {
      ctx = s.EVP_PKEY_CTX_new(pkey, null) as Pointer | null;
      s.EVP_PKEY_free(pkey);
      if (ctx && s.EVP_PKEY_derive_init(ctx) !== 1) {
        s.EVP_PKEY_CTX_free(ctx);
        ctx = null;
      }
    }
    if (!ctx) s.ERR_clear_error();
    return ctx;
  }

  function derive(ctx: Pointer, pub: Uint8Array, out: Uint8Array): boolean {
    if (sh) return sh.wg_x25519_derive(ctx, pub, out) === 1;
    const peer = s.EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, null, pub, KEY_LEN) as Pointer | null;
    let ok = false;
    if (peer) {
      lenBox[0] = BigInt(KEY_LEN);
      ok = s.EVP_PKEY_derive_set_peer(ctx, peer) === 1 && s.EVP_PKEY_derive(ctx, out, lenBox) === 1 && lenBox[0] === BigInt(KEY_LEN);
      s.EVP_PKEY_free(peer);
    }
    if (!ok) {
      s.ERR_clear_error();
      out.fill(0);
    }
    return ok;
  }

  function rawPublic(ctx: Pointer, out: Uint8Array): boolean {
    if (sh) return sh.wg_x25519_public(ctx, out) === 1;
    const pkey = s.EVP_PKEY_CTX_get0_pkey(ctx) as Pointer | null;
    lenBox[0] = BigInt(KEY_LEN);
    const ok = pkey !== null && s.EVP_PKEY_get_raw_public_key(pkey, out, lenBox) === 1 && lenBox[0] === BigInt(KEY_LEN);
    if (!ok) s.ERR_clear_error();
    return ok;
  }

  // Most recently used first; a handful of entries, so a linear scan is the cheapest lookup.
  const cache: Entry[] = [];
  const drop = (e: Entry) => {
    s.EVP_PKEY_CTX_free(e.ctx);
    e.key.fill(0);
  };

  /** Runs `f` with a derive context for `priv`, cached or made (and maybe freed) for the call. */
  function withContext<T>(priv: Uint8Array, f: (ctx: Pointer) => T, failed: T): T {
    for (let i = 0; i < cache.length; i++) {
      const e = cache[i]!;
      if (equal(e.key, priv)) {
        if (i > 0) {
          cache.splice(i, 1);
          cache.unshift(e);
        }
        return f(e.ctx);
      }
    }
    const ctx = newContext(priv);
    if (!ctx) return failed;
    if (cacheSize === 0) {
      try {
        return f(ctx);
      } finally {
        s.EVP_PKEY_CTX_free(ctx);
      }
    }
    cache.unshift({ key: Uint8Array.from(priv), ctx });
    if (cache.length > cacheSize) drop(cache.pop()!);
    return f(ctx);
  }

  const backend: OpenSslX25519 = {
    name: `openssl-${sh ? "shim" : "evp"} (${soname})`,
    scalarMult(priv, pub) {
      checkKey(priv, "private key");
      checkKey(pub, "public key");
      const out = new Uint8Array(KEY_LEN);
      return withContext(priv, (ctx) => (derive(ctx, pub, out) ? out : null), null);
    },
    publicKey(priv) {
      checkKey(priv, "private key");
      const out = new Uint8Array(KEY_LEN);
      if (!withContext(priv, (ctx) => rawPublic(ctx, out), false)) throw new Error("X25519 public key derivation failed");
      return out;
    },
    forget() {
      for (const e of cache.splice(0)) drop(e);
    },
  };
  const ok = selfCheck(backend);
  backend.forget();
  return ok ? backend : null;
}

// The full vector set and a randomized comparison with noble are in the tests. At load a few
// known answers prove the library computes WireGuard's X25519 (scalar clamping, top bit of u
// ignored, the base point, refusal of a small-order point) before it is trusted with handshakes.
// Fixed answers rather than noble: comparing with noble would load its curve module into the
// daemon's start-up only for this check, since with this backend the daemon never uses it.
const hex = (s: string) => Uint8Array.from(Buffer.from(s, "hex"));
const KNOWN = {
  // RFC 7748 §5.2, second vector: an unclamped scalar and a u with its top bit set.
  scalar: "4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
  u: "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
  result: "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957",
  // RFC 7748 §6.1, Alice's key pair.
  private: "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
  public: "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a",
};

function selfCheck(b: DhBackend): boolean {
  try {
    const got = b.scalarMult(hex(KNOWN.scalar), hex(KNOWN.u));
    if (!got || !equal(got, hex(KNOWN.result))) return false;
    if (!equal(b.publicKey(hex(KNOWN.private)), hex(KNOWN.public))) return false;
    // u = 1 is a point of small order: a clamped scalar (a multiple of 8) maps it to the
    // identity, an all-zero secret, which the backend must refuse.
    const one = new Uint8Array(KEY_LEN);
    one[0] = 1;
    return b.scalarMult(hex(KNOWN.scalar), one) === null;
  } catch {
    return false;
  }
}
