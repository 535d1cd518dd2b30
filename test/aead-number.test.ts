// The number-counter AEAD entry points (sealIntoNumber/openIntoNumber) agree with the bigint ones
// in every backend, and the transport data path uses only them (no BigInt per packet).
import { describe, expect, test } from "bun:test";
import { getAead, nobleAead, setAead, type AeadBackend, type AeadKey } from "../core/crypto.ts";
import { Keypair, decryptTransport, encryptTransport } from "../core/keypair.ts";
import { loadOpenSslAead } from "../platform/linux/aead-openssl.ts";

const backends: AeadBackend[] = [nobleAead];
const shim = loadOpenSslAead({ mode: "shim" });
const evp = loadOpenSslAead({ mode: "evp" });
if (shim) backends.push(shim);
if (evp) backends.push(evp);

const COUNTERS = [0, 1, 255, 0xffff_ffff, 0x1_0000_0000, 0x1_2345_6789, 2 ** 53 - 1];

describe.each(backends.map((b) => [b.name, b] as const))("%s", (_name, b) => {
  test("number and bigint counters give the same bytes and open each other", () => {
    const key = new Uint8Array(32).map((_, i) => i * 5 + 3);
    const k = b.prepare(key);
    const plain = new Uint8Array(77).map((_, i) => i);
    for (const c of COUNTERS) {
      const viaBig = new Uint8Array(93);
      const viaNum = new Uint8Array(93);
      expect(k.sealInto(BigInt(c), plain, 0, 77, viaBig, 0)).toBe(93);
      expect(k.sealIntoNumber(c, plain, 0, 77, viaNum, 0)).toBe(93);
      expect(Buffer.from(viaNum).toString("hex")).toBe(Buffer.from(viaBig).toString("hex"));
      expect(Buffer.from(viaNum).toString("hex")).toBe(Buffer.from(nobleAead.seal(key, BigInt(c), plain, new Uint8Array(0))).toString("hex"));
      const back = new Uint8Array(77);
      expect(k.openIntoNumber(c, viaBig, 0, 93, back, 0)).toBe(77);
      expect(back).toEqual(plain);
      expect(k.openIntoNumber(c + 1, viaBig, 0, 93, back, 0)).toBe(-1);
      expect(k.openIntoNumber(c, viaBig, 0, 15, back, 0)).toBe(-1);
    }
    k.destroy();
  });
});

describe("transport data path", () => {
  test("encrypt/decrypt never call the bigint entry points", () => {
    const prev = getAead();
    const calls = { big: 0, num: 0 };
    const counting: AeadBackend = {
      ...nobleAead,
      name: "counting",
      prepare(key) {
        const k = nobleAead.prepare(key);
        const w: AeadKey = {
          sealInto: (...a) => (calls.big++, k.sealInto(...a)),
          openInto: (...a) => (calls.big++, k.openInto(...a)),
          sealIntoNumber: (...a) => (calls.num++, k.sealIntoNumber(...a)),
          openIntoNumber: (...a) => (calls.num++, k.openIntoNumber(...a)),
          destroy: () => k.destroy(),
        };
        return w;
      },
    };
    setAead(counting);
    try {
      const s = new Uint8Array(32).fill(7);
      const r = new Uint8Array(32).fill(9);
      const a = new Keypair(null, Uint8Array.from(s), Uint8Array.from(r), true, 1, 2, 0);
      const bkp = new Keypair(null, Uint8Array.from(r), Uint8Array.from(s), false, 2, 1, 0);
      const plain = new Uint8Array(60).fill(1);
      const out = new Uint8Array(200);
      const dec = new Uint8Array(200);
      for (const c of [0, 1, 0x1_0000_0001]) {
        const n = encryptTransport(a, c, plain, 0, 60, 64, out, 0);
        expect(decryptTransport(bkp, c, out, 0, n, dec, 0)).toBe(64);
      }
      expect(calls).toEqual({ big: 0, num: 6 });
      // a counter beyond 2^53 (only a forgery can carry one) still works through the bigint form
      const n = encryptTransport(a, 5, plain, 0, 60, 64, out, 0);
      expect(decryptTransport(bkp, 1n << 60n, out, 0, n, dec, 0)).toBe(-1);
      expect(calls.big).toBe(1);
    } finally {
      setAead(prev);
    }
  });
});
