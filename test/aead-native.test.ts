// The libcrypto AEAD backend must be indistinguishable from noble: same vectors, same failures,
// byte-identical output for every length a WireGuard packet can have.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { nobleAead } from "../core/crypto.ts";
import { loadOpenSslAead, type OpenSslAeadMode } from "../platform/linux/aead-openssl.ts";

interface Vector {
  name: string;
  key: string;
  nonce: string;
  aad: string;
  plaintext: string | null;
  ciphertext_and_tag: string;
  must_fail: boolean | string;
}
const file = JSON.parse(readFileSync(new URL("./vectors/chacha20poly1305.json", import.meta.url), "utf8")) as Record<string, unknown>;
const vectors: Vector[] = ["rfc8439", "derived_must_fail", "kernel_encrypt", "kernel_decrypt"].flatMap(
  (k) => file[k] as Vector[],
);
// One kernel entry spells its flags as strings ("True", "None").
const mustFail = (v: Vector) => v.must_fail === true || v.must_fail === "True";
const hex = (s: string) => Uint8Array.from(Buffer.from(s, "hex"));
const toHex = (b: Uint8Array) => Buffer.from(b).toString("hex");
/** The WireGuard counter when the nonce has the form 00000000 || le64(counter), else null. */
function wgCounter(nonce: Uint8Array): bigint | null {
  if (nonce.length !== 12 || nonce[0] || nonce[1] || nonce[2] || nonce[3]) return null;
  return new DataView(nonce.buffer, nonce.byteOffset).getBigUint64(4, true);
}

const modes: OpenSslAeadMode[] = ["shim", "evp"];
const backends = new Map(modes.map((m) => [m, loadOpenSslAead({ mode: m })] as const));

test("libcrypto is found on this machine (both drivers load)", () => {
  for (const m of modes) expect(backends.get(m)?.name).toStartWith(`openssl-${m}`);
  expect(loadOpenSslAead()?.name).toStartWith("openssl-");
});

test("missing library gives null so the noble fallback stays", () => {
  expect(loadOpenSslAead({ sonames: ["libcrypto-does-not-exist.so.99"] })).toBeNull();
});

test("vector file has the expected shape", () => {
  expect(vectors.length).toBe(136);
  expect(vectors.filter(mustFail).length).toBe(5);
});

for (const mode of modes) {
  describe(`openssl ${mode}`, () => {
    const b = () => backends.get(mode)!;

    test("every vector through seal/open (WireGuard nonces) and prepared keys (empty AAD)", () => {
      let prepared = 0;
      let oneShot = 0;
      let skipped = 0;
      for (const v of vectors) {
        const key = hex(v.key);
        const nonce = hex(v.nonce);
        const aad = hex(v.aad);
        const sealed = hex(v.ciphertext_and_tag);
        const counter = wgCounter(nonce);
        if (counter === null) {
          skipped++;
          continue;
        }
        // one-shot API (the handshake path), with AAD
        const opened = b().open(key, counter, sealed, aad);
        if (mustFail(v)) expect(opened).toBeNull();
        else {
          expect(toHex(opened!)).toBe(v.plaintext!);
          expect(toHex(b().seal(key, counter, hex(v.plaintext!), aad))).toBe(v.ciphertext_and_tag);
        }
        oneShot++;
        if (aad.length > 0) continue;
        // prepared in-place API (the data path): odd offsets, separate and shared buffers
        const k = b().prepare(key);
        const inBuf = new Uint8Array(sealed.length + 7);
        inBuf.set(sealed, 3);
        const out = new Uint8Array(sealed.length + 5).fill(0xaa);
        const n = k.openInto(counter, inBuf, 3, sealed.length, out, 5);
        if (mustFail(v)) {
          expect(n).toBe(-1);
          // no unauthenticated plaintext may be left behind
          expect(out.subarray(5, 5 + sealed.length - 16).every((x) => x === 0)).toBe(true);
        } else {
          expect(n).toBe(sealed.length - 16);
          expect(toHex(out.subarray(5, 5 + n))).toBe(v.plaintext!);
          const plain = hex(v.plaintext!);
          const buf = new Uint8Array(plain.length + 32);
          buf.set(plain, 16);
          expect(k.sealInto(counter, buf, 16, plain.length, buf, 16)).toBe(plain.length + 16);
          expect(toHex(buf.subarray(16, 32 + plain.length))).toBe(v.ciphertext_and_tag);
          // and back in place
          expect(k.openInto(counter, buf, 16, plain.length + 16, buf, 16)).toBe(plain.length);
          expect(toHex(buf.subarray(16, 16 + plain.length))).toBe(v.plaintext!);
        }
        k.destroy();
        prepared++;
      }
      expect(prepared).toBe(8);
      expect(oneShot).toBe(82);
      expect(oneShot + skipped).toBe(vectors.length);
    });

    test("vectors with free-form nonces (not 00000000||le64) through sealWithNonce/openWithNonce", () => {
      let n = 0;
      for (const v of vectors) {
        const nonce = hex(v.nonce);
        if (wgCounter(nonce) !== null) continue;
        const key = hex(v.key);
        const aad = hex(v.aad);
        const opened = b().openWithNonce(key, nonce, hex(v.ciphertext_and_tag), aad);
        if (mustFail(v)) expect(opened).toBeNull();
        else {
          expect(toHex(opened!)).toBe(v.plaintext!);
          expect(toHex(b().sealWithNonce(key, nonce, hex(v.plaintext!), aad))).toBe(v.ciphertext_and_tag);
        }
        n++;
      }
      expect(n).toBe(vectors.length - 82);
    });

    test("must-fail cases: flipped tag, flipped ciphertext, wrong counter, wrong AAD, short input", () => {
      const key = new Uint8Array(32).fill(9);
      const plain = new Uint8Array(100).map((_, i) => i);
      const sealed = b().seal(key, 42n, plain, new Uint8Array(0));
      const k = b().prepare(key);
      const out = new Uint8Array(200);
      for (const i of [0, 50, 99, 100, 115]) {
        const bad = Uint8Array.from(sealed);
        bad[i]! ^= 0x80;
        expect(k.openInto(42n, bad, 0, bad.length, out, 0)).toBe(-1);
        expect(b().open(key, 42n, bad, new Uint8Array(0))).toBeNull();
      }
      expect(k.openInto(43n, sealed, 0, sealed.length, out, 0)).toBe(-1);
      expect(b().open(key, 42n, sealed, Uint8Array.of(1))).toBeNull();
      expect(k.openInto(42n, sealed, 0, 15, out, 0)).toBe(-1);
      expect(b().open(key, 42n, sealed.subarray(0, 15), new Uint8Array(0))).toBeNull();
      // a failure leaves the context usable
      expect(k.openInto(42n, sealed, 0, sealed.length, out, 0)).toBe(100);
      expect(toHex(out.subarray(0, 100))).toBe(toHex(plain));
      // a destroyed key refuses to work instead of touching freed memory
      k.destroy();
      expect(k.openInto(42n, sealed, 0, sealed.length, out, 0)).toBe(-1);
      expect(k.sealInto(42n, plain, 0, 100, out, 0)).toBe(-1);
      k.destroy();
    });

    test("out-of-range buffers throw instead of reading or writing past the view", () => {
      const k = b().prepare(new Uint8Array(32));
      const small = new Uint8Array(40);
      expect(() => k.sealInto(0n, small, 0, 30, small, 0)).toThrow(RangeError);
      expect(() => k.openInto(0n, small, 10, 40, small, 0)).toThrow(RangeError);
      expect(() => b().prepare(new Uint8Array(31))).toThrow(RangeError);
      k.destroy();
    });

    test("keepalive: empty plaintext gives a bare 16-byte tag, also from empty views", () => {
      const key = new Uint8Array(32).fill(1);
      const k = b().prepare(key);
      const want = nobleAead.seal(key, 0n, new Uint8Array(0), new Uint8Array(0));
      const tag = new Uint8Array(16);
      expect(k.sealInto(0n, new Uint8Array(0), 0, 0, tag, 0)).toBe(16);
      expect(toHex(tag)).toBe(toHex(want));
      expect(k.openInto(0n, tag, 0, 16, new Uint8Array(0), 0)).toBe(0);
      tag[0]! ^= 1;
      expect(k.openInto(0n, tag, 0, 16, new Uint8Array(0), 0)).toBe(-1);
      k.destroy();
    });

    test("randomized cross-check with noble for every length 0..2000", () => {
      const nk = new Uint8Array(32);
      const src = new Uint8Array(2000 + 64);
      const a = new Uint8Array(2000 + 64);
      const c = new Uint8Array(2000 + 64);
      const back = new Uint8Array(2000 + 64);
      crypto.getRandomValues(src);
      let key = crypto.getRandomValues(new Uint8Array(32));
      let k = b().prepare(key);
      let n = nobleAead.prepare(key);
      for (let len = 0; len <= 2000; len++) {
        if (len % 97 === 0) {
          k.destroy();
          n.destroy();
          key = crypto.getRandomValues(nk.slice());
          k = b().prepare(key);
          n = nobleAead.prepare(key);
        }
        const counter64 = BigInt.asUintN(64, ((BigInt(len) << 40n) ^ 0xfedcba9876543210n) + BigInt(len));
        const off = len % 17;
        expect(k.sealInto(counter64, src, off, len, a, off + 1)).toBe(len + 16);
        expect(n.sealInto(counter64, src, off, len, c, off + 1)).toBe(len + 16);
        if (toHex(a.subarray(off + 1, off + 17 + len)) !== toHex(c.subarray(off + 1, off + 17 + len))) {
          throw new Error(`seal mismatch at length ${len}`);
        }
        expect(k.openInto(counter64, c, off + 1, len + 16, back, 0)).toBe(len);
        if (toHex(back.subarray(0, len)) !== toHex(src.subarray(off, off + len))) throw new Error(`open mismatch at ${len}`);
        if (len % 50 === 0) {
          const ad = src.subarray(0, len % 64);
          const p = src.subarray(off, off + len);
          expect(toHex(b().seal(key, counter64, p, ad))).toBe(toHex(nobleAead.seal(key, counter64, p, ad)));
          expect(toHex(b().open(key, counter64, nobleAead.seal(key, counter64, p, ad), ad)!)).toBe(toHex(p));
        }
      }
      k.destroy();
      n.destroy();
    });

    test("destroy() releases the native contexts (100k prepare/use/destroy cycles)", () => {
      // Each used direction holds a ~1.4 KB EVP context: 100k leaked ones would add ~140 MB.
      const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync("/proc/self/status", "utf8"))![1]) / 1024;
      const key = new Uint8Array(32).fill(5);
      const buf = new Uint8Array(64);
      Bun.gc(true);
      const before = rss();
      for (let i = 0; i < 100_000; i++) {
        const k = b().prepare(key);
        k.sealInto(BigInt(i), buf, 0, 16, buf, 16);
        k.destroy();
      }
      Bun.gc(true);
      expect(rss() - before).toBeLessThan(48);
    });

    test("views with a non-zero byteOffset are addressed from their own start", () => {
      const key = new Uint8Array(32).fill(8);
      const k = b().prepare(key);
      const backing = new Uint8Array(4096);
      crypto.getRandomValues(backing);
      const plain = backing.slice(100, 1100);
      const src = backing.subarray(97); // plaintext at src[3]
      const dst = new Uint8Array(4096).fill(0xcc).subarray(211);
      expect(k.sealInto(77n, src, 3, 1000, dst, 5)).toBe(1016);
      // nothing written outside [5, 5 + 1016)
      expect([dst[4], dst[1021], new Uint8Array(dst.buffer)[210]]).toEqual([0xcc, 0xcc, 0xcc]);
      expect(toHex(dst.subarray(5, 1021))).toBe(toHex(nobleAead.seal(key, 77n, plain, new Uint8Array(0))));
      const back = new Uint8Array(2000).fill(0xcc).subarray(33);
      expect(k.openInto(77n, dst, 5, 1016, back, 9)).toBe(1000);
      expect([back[8], back[1009]]).toEqual([0xcc, 0xcc]);
      expect(toHex(back.subarray(9, 1009))).toBe(toHex(plain));
      k.destroy();
    });

    test("maximum counter (2^64-1) encodes the nonce like noble", () => {
      const key = new Uint8Array(32).fill(3);
      const max = (1n << 64n) - 1n;
      const plain = new Uint8Array(33).fill(7);
      const k = b().prepare(key);
      const out = new Uint8Array(49);
      k.sealInto(max, plain, 0, 33, out, 0);
      expect(toHex(out)).toBe(toHex(nobleAead.seal(key, max, plain, new Uint8Array(0))));
      k.destroy();
    });
  });
}
