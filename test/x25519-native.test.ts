// The libcrypto X25519 backend must be indistinguishable from noble: every vector, the same
// refusals (all-zero secrets), the same public keys, whatever the state of its key cache.
import { afterEach, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { dh, getDh, nobleDh, publicKey, setDh, type DhBackend } from "../core/crypto.ts";
import { loadOpenSslX25519, type OpenSslX25519 } from "../platform/linux/x25519-openssl.ts";

interface KernelCase {
  index: number;
  private: string;
  public: string;
  result: string;
  must_reject: boolean;
}
interface Vectors {
  rfc7748_scalarmult: { name: string; scalar: string; u: string; result: string }[];
  rfc7748_iterated: { after_1: string; after_1000: string };
  rfc7748_dh: { alice_private: string; alice_public: string; bob_private: string; bob_public: string; shared: string };
  kernel_selftest: KernelCase[];
}
const V = JSON.parse(readFileSync(new URL("./vectors/x25519.json", import.meta.url), "utf8")) as Vectors;
const hex = (s: string) => Uint8Array.from(Buffer.from(s, "hex"));
const toHex = (b: Uint8Array | null) => (b ? Buffer.from(b).toString("hex") : null);

const variants: [string, OpenSslX25519 | null][] = [
  ["shim", loadOpenSslX25519({ mode: "shim" })],
  ["evp", loadOpenSslX25519({ mode: "evp" })],
  ["shim, no cache", loadOpenSslX25519({ mode: "shim", cacheSize: 0 })],
  ["shim, cache 1", loadOpenSslX25519({ mode: "shim", cacheSize: 1 })],
];

afterEach(() => setDh(nobleDh));

test("libcrypto is found on this machine (both drivers load)", () => {
  expect(variants[0]![1]?.name).toStartWith("openssl-shim");
  expect(variants[1]![1]?.name).toStartWith("openssl-evp");
  expect(loadOpenSslX25519()?.name).toStartWith("openssl-");
});

test("missing library gives null so the noble fallback stays", () => {
  expect(loadOpenSslX25519({ sonames: ["libcrypto-does-not-exist.so.99"] })).toBeNull();
});

test("the vector file has what these tests rely on", () => {
  expect(V.kernel_selftest.length).toBe(81);
  expect(V.kernel_selftest.filter((c) => c.must_reject).length).toBe(16);
});

for (const [label, b] of variants) {
  const backend = () => {
    if (!b) throw new Error(`${label} backend did not load`);
    return b;
  };

  describe(`openssl X25519 (${label})`, () => {
    test("RFC 7748 §5.2 scalar multiplications (top bit of u masked)", () => {
      for (const v of V.rfc7748_scalarmult) {
        expect(toHex(backend().scalarMult(hex(v.scalar), hex(v.u)))).toBe(v.result);
      }
    });

    test("RFC 7748 §6.1 Diffie-Hellman: public keys and the shared secret", () => {
      const d = V.rfc7748_dh;
      const x = backend();
      expect(toHex(x.publicKey(hex(d.alice_private)))).toBe(d.alice_public);
      expect(toHex(x.publicKey(hex(d.bob_private)))).toBe(d.bob_public);
      expect(toHex(x.scalarMult(hex(d.alice_private), hex(d.bob_public)))).toBe(d.shared);
      expect(toHex(x.scalarMult(hex(d.bob_private), hex(d.alice_public)))).toBe(d.shared);
    });

    test("RFC 7748 §5.2 iterated, 1 and 1000 times", () => {
      const x = backend();
      let k: Uint8Array = hex("09".padEnd(64, "0"));
      let u = k;
      for (let i = 1; i <= 1000; i++) {
        const r = x.scalarMult(k, u);
        if (!r) throw new Error(`iteration ${i} refused`);
        u = k;
        k = r;
        if (i === 1) expect(toHex(k)).toBe(V.rfc7748_iterated.after_1);
      }
      expect(toHex(k)).toBe(V.rfc7748_iterated.after_1000);
    });

    test("all 81 kernel self-test cases; the 16 all-zero ones are refused with null", () => {
      const x = backend();
      let refused = 0;
      for (const c of V.kernel_selftest) {
        const got = x.scalarMult(hex(c.private), hex(c.public));
        if (c.must_reject) {
          expect({ index: c.index, got }).toEqual({ index: c.index, got: null });
          refused++;
        } else expect({ index: c.index, got: toHex(got) }).toEqual({ index: c.index, got: c.result });
      }
      expect(refused).toBe(16);
    });

    test("through core: dh() and publicKey() use the backend and agree with the vectors", () => {
      setDh(backend());
      expect(getDh()).toBe(backend());
      for (const c of V.kernel_selftest) {
        expect(toHex(dh(hex(c.private), hex(c.public)))).toBe(c.must_reject ? null : c.result);
      }
      expect(toHex(publicKey(hex(V.rfc7748_dh.alice_private)))).toBe(V.rfc7748_dh.alice_public);
    });

    test("randomized cross-check against noble, keys reused so the cache hits and evicts", () => {
      const x = backend();
      const rnd = (n: number) => crypto.getRandomValues(new Uint8Array(n));
      // Six private keys (more than the default cache holds) drawn in random order, unclamped.
      const privs = Array.from({ length: 6 }, () => rnd(32));
      for (let i = 0; i < 120; i++) {
        const priv = privs[rnd(1)[0]! % privs.length]!;
        const pub = i % 3 === 0 ? rnd(32) : nobleDh.publicKey(rnd(32)); // arbitrary u and real keys
        const want = nobleDh.scalarMult(priv, pub);
        expect(toHex(x.scalarMult(priv, pub))).toBe(toHex(want));
        expect(toHex(x.publicKey(priv))).toBe(toHex(nobleDh.publicKey(priv)));
      }
      for (let i = 0; i < 40; i++) {
        const a = rnd(32);
        const bb = rnd(32);
        const s1 = x.scalarMult(a, x.publicKey(bb));
        expect(s1).not.toBeNull();
        expect(toHex(s1)).toBe(toHex(x.scalarMult(bb, x.publicKey(a))));
      }
    });

    test("the cache keys on the private key's bytes, not on the array", () => {
      const x = backend();
      const priv = crypto.getRandomValues(new Uint8Array(32));
      const pub = nobleDh.publicKey(crypto.getRandomValues(new Uint8Array(32)));
      const first = x.scalarMult(priv, pub);
      priv[5]! ^= 0x10; // same array, different key
      expect(toHex(x.scalarMult(priv, pub))).toBe(toHex(nobleDh.scalarMult(priv, pub)));
      expect(toHex(x.scalarMult(priv, pub))).not.toBe(toHex(first));
      // a view at an offset of a larger buffer
      const big = new Uint8Array(64);
      big.set(priv, 16);
      expect(toHex(x.scalarMult(big.subarray(16, 48), pub))).toBe(toHex(nobleDh.scalarMult(priv, pub)));
      expect(toHex(x.publicKey(big.subarray(16, 48)))).toBe(toHex(nobleDh.publicKey(priv)));
    });

    test("refusals leave the backend usable; forget() keeps results right", () => {
      const x = backend();
      const zeroCase = V.kernel_selftest.find((c) => c.must_reject)!;
      const good = V.rfc7748_scalarmult[0]!;
      for (let i = 0; i < 200; i++) expect(x.scalarMult(hex(zeroCase.private), hex(zeroCase.public))).toBeNull();
      expect(toHex(x.scalarMult(hex(good.scalar), hex(good.u)))).toBe(good.result);
      x.forget();
      expect(toHex(x.scalarMult(hex(good.scalar), hex(good.u)))).toBe(good.result);
      expect(x.scalarMult(hex(zeroCase.private), hex(zeroCase.public))).toBeNull();
    });

    test("wrong lengths throw like noble; dh() turns that into null", () => {
      const x = backend();
      expect(() => x.scalarMult(new Uint8Array(31), new Uint8Array(32).fill(9))).toThrow(RangeError);
      expect(() => x.scalarMult(new Uint8Array(32).fill(9), new Uint8Array(33))).toThrow(RangeError);
      expect(() => x.publicKey(new Uint8Array(16))).toThrow(RangeError);
      setDh(x);
      expect(dh(new Uint8Array(31), new Uint8Array(32).fill(9))).toBeNull();
    });
  });
}

test("dh() refuses an all-zero secret even when a backend returns one", () => {
  const careless: DhBackend = { name: "careless", scalarMult: () => new Uint8Array(32), publicKey: () => new Uint8Array(32) };
  setDh(careless);
  expect(dh(new Uint8Array(32).fill(1), new Uint8Array(32).fill(2))).toBeNull();
  setDh(nobleDh);
  expect(getDh().name).toBe("noble");
});
