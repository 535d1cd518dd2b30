// Every entry of the primitive vector files (test/vectors, copied from the team's shared/vectors) against core/crypto.ts.
import { describe, expect, test } from "bun:test";
import { blake2s } from "@noble/hashes/blake2.js";
import { chacha20poly1305, hchacha } from "@noble/ciphers/chacha.js";
import {
  aeadOpen,
  aeadSeal,
  dh,
  hash,
  hmac,
  kdf1,
  kdf2,
  kdf3,
  mac,
  nobleAead,
  publicKey,
  xaeadOpen,
  xaeadSeal,
  type AeadBackend,
} from "../core/crypto.ts";
import { aeadVectorCases, allChaChaCases, checkAeadBackend, hex, loadVector, toHex, wireguardCounter } from "./aead-vectors.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const SLOW = process.env.WG_SLOW === "1";

// ---------------------------------------------------------------- X25519

describe("x25519.json", () => {
  const v = loadVector("x25519.json");

  test("RFC 7748 5.2 scalar multiplication", () => {
    expect(v.rfc7748_scalarmult.length).toBe(2);
    for (const e of v.rfc7748_scalarmult) {
      const r = dh(hex(e.scalar), hex(e.u));
      expect({ name: e.name, r: r && toHex(r) }).toEqual({ name: e.name, r: e.result });
    }
  });

  const iterate = (n: number) => {
    let k = hex("09".padEnd(64, "0"));
    let u = k;
    for (let i = 0; i < n; i++) {
      const r = dh(k, u);
      if (r === null) throw new Error(`iteration ${i} gave zero`);
      u = k;
      k = r;
    }
    return toHex(k);
  };
  test("RFC 7748 5.2 iterated, 1 and 1000", () => {
    expect(iterate(1)).toBe(v.rfc7748_iterated.after_1);
    expect(iterate(1000)).toBe(v.rfc7748_iterated.after_1000);
  });
  test.skipIf(!SLOW)("RFC 7748 5.2 iterated 1 000 000 (WG_SLOW=1)", () => {
    expect(iterate(1_000_000)).toBe(v.rfc7748_iterated.after_1000000);
  }, 3_600_000);

  test("RFC 7748 6.1 Alice and Bob", () => {
    const d = v.rfc7748_dh;
    expect(toHex(publicKey(hex(d.alice_private)))).toBe(d.alice_public);
    expect(toHex(publicKey(hex(d.bob_private)))).toBe(d.bob_public);
    expect(toHex(dh(hex(d.alice_private), hex(d.bob_public))!)).toBe(d.shared);
    expect(toHex(dh(hex(d.bob_private), hex(d.alice_public))!)).toBe(d.shared);
  });

  test("kernel self-test: 81 cases, all-zero results rejected", () => {
    let rejected = 0;
    for (const e of v.kernel_selftest) {
      const r = dh(hex(e.private), hex(e.public));
      if (e.must_reject) {
        expect(e.result).toBe("00".repeat(32));
        expect({ index: e.index, r }).toEqual({ index: e.index, r: null });
        rejected++;
      } else {
        expect({ index: e.index, r: r && toHex(r) }).toEqual({ index: e.index, r: e.result });
      }
    }
    expect(v.kernel_selftest.length).toBe(81);
    expect(rejected).toBe(16);
  });
});

// ---------------------------------------------------------------- ChaCha20-Poly1305

describe("chacha20poly1305.json", () => {
  const all = allChaChaCases();

  test("every entry with the one-shot noble API (arbitrary nonces)", () => {
    expect(all.length).toBe(1 + 4 + 118 + 13);
    let fails = 0;
    for (const c of all) {
      if (c.mustFail) {
        fails++;
        expect(() => chacha20poly1305(c.key, c.nonce, c.aad).decrypt(c.sealed)).toThrow();
        continue;
      }
      const sealed = chacha20poly1305(c.key, c.nonce, c.aad).encrypt(c.plaintext!);
      expect({ name: c.name, sealed: toHex(sealed) }).toEqual({ name: c.name, sealed: toHex(c.sealed) });
      const opened = chacha20poly1305(c.key, c.nonce, c.aad).decrypt(c.sealed);
      expect({ name: c.name, opened: toHex(opened) }).toEqual({ name: c.name, opened: toHex(c.plaintext!) });
    }
    expect(fails).toBe(5);
  });

  test("WireGuard-nonce cases through aeadSeal/aeadOpen", () => {
    const cases = aeadVectorCases();
    // 69 kernel encrypt + 13 decrypt with 8-byte nonces, 6 transport messages.
    expect(cases.length).toBe(69 + 13 + 6);
    for (const c of cases) {
      const opened = aeadOpen(c.key, c.counter, c.sealed, c.aad);
      if (c.mustFail) {
        expect({ name: c.name, opened }).toEqual({ name: c.name, opened: null });
        continue;
      }
      expect({ name: c.name, opened: opened && toHex(opened) }).toEqual({ name: c.name, opened: toHex(c.plaintext!) });
      expect({ name: c.name, sealed: toHex(aeadSeal(c.key, c.counter, c.plaintext!, c.aad)) }).toEqual({
        name: c.name,
        sealed: toHex(c.sealed),
      });
      // A flipped bit anywhere in the tag, or the wrong AAD or counter, must not authenticate.
      const bad = Uint8Array.from(c.sealed);
      bad[bad.length - 1]! ^= 0x80;
      expect(aeadOpen(c.key, c.counter, bad, c.aad)).toBeNull();
      expect(aeadOpen(c.key, c.counter + 1n, c.sealed, c.aad)).toBeNull();
      expect(aeadOpen(c.key, c.counter, c.sealed, Uint8Array.of(...c.aad, 0))).toBeNull();
    }
  });

  test("noble backend: one-shot and prepared sealInto/openInto", () => {
    const r = checkAeadBackend(nobleAead);
    expect(r.failures).toEqual([]);
    expect(r.checked).toBe(88);
    expect(r.prepared).toBe(4 + 4 + 6);
  });

  test("checkAeadBackend reports broken backends", () => {
    // Forgeries accepted by the one-shot open and by openInto.
    const lax: AeadBackend = {
      ...nobleAead,
      name: "lax",
      open: (key, counter, sealed, ad) =>
        nobleAead.open(key, counter, sealed, ad) ?? new Uint8Array(Math.max(0, sealed.length - 16)),
      prepare(key) {
        const k = nobleAead.prepare(key);
        return { ...k, openInto: (c, s, so, l, d, dof) => Math.max(k.openInto(c, s, so, l, d, dof), l - 16) };
      },
    };
    const r1 = checkAeadBackend(lax);
    expect(r1.failures.some((f) => f.includes("open accepted a forged message"))).toBe(true);
    expect(r1.failures.some((f) => f.includes("openInto accepted"))).toBe(true);
    // Big-endian counter in the nonce: everything with a non-zero counter breaks.
    const bigEndian: AeadBackend = {
      ...nobleAead,
      name: "big-endian",
      seal: (key, counter, plain, ad) => {
        const n = new Uint8Array(12);
        new DataView(n.buffer).setBigUint64(4, counter, false);
        return chacha20poly1305(key, n, ad).encrypt(plain);
      },
    };
    expect(checkAeadBackend(bigEndian).failures.filter((f) => f.includes("seal mismatch")).length).toBeGreaterThan(50);
  });

  test("the helper recognises only 00000000||le64 nonces", () => {
    expect(wireguardCounter(hex("000000000102030405060708"))).toBe(0x0807060504030201n);
    expect(wireguardCounter(hex("070000004041424344454647"))).toBeNull();
  });
});

// ---------------------------------------------------------------- XChaCha20-Poly1305

const SIGMA = new Uint32Array([0x61707865, 0x3320646e, 0x79622d32, 0x6b206574]);
function hchacha20(key: Uint8Array, nonce16: Uint8Array): Uint8Array {
  const k = new Uint32Array(8);
  const n = new Uint32Array(4);
  const kv = new DataView(key.buffer, key.byteOffset, 32);
  const nv = new DataView(nonce16.buffer, nonce16.byteOffset, 16);
  for (let i = 0; i < 8; i++) k[i] = kv.getUint32(i * 4, true);
  for (let i = 0; i < 4; i++) n[i] = nv.getUint32(i * 4, true);
  const o = new Uint32Array(8);
  hchacha(SIGMA, k, n, o);
  const out = new Uint8Array(32);
  const ov = new DataView(out.buffer);
  for (let i = 0; i < 8; i++) ov.setUint32(i * 4, o[i]!, true);
  return out;
}

describe("xchacha20poly1305.json", () => {
  const v = loadVector("xchacha20poly1305.json");

  test("HChaCha20", () => {
    expect(v.hchacha20.length).toBeGreaterThan(0);
    for (const e of v.hchacha20) expect(toHex(hchacha20(hex(e.key), hex(e.nonce16)))).toBe(e.subkey);
  });

  test("AEAD entries through xaeadSeal/xaeadOpen, and as HChaCha20 + ChaCha20-Poly1305", () => {
    expect(v.aead.length).toBe(3);
    for (const e of v.aead) {
      const key = hex(e.key);
      const nonce = hex(e.nonce);
      const aad = hex(e.aad);
      expect({ name: e.name, s: toHex(xaeadSeal(key, nonce, hex(e.plaintext), aad)) }).toEqual({
        name: e.name,
        s: e.ciphertext_and_tag,
      });
      const opened = xaeadOpen(key, nonce, hex(e.ciphertext_and_tag), aad);
      expect(opened && toHex(opened)).toBe(e.plaintext);
      // protocol.md §1: k' = HChaCha20(k, N[0:16]), nonce 00000000 || N[16:24].
      const sub = hchacha20(key, nonce.subarray(0, 16));
      const counter = new DataView(nonce.buffer, nonce.byteOffset + 16, 8).getBigUint64(0, true);
      expect(toHex(aeadSeal(sub, counter, hex(e.plaintext), aad))).toBe(e.ciphertext_and_tag);
    }
  });

  test("derived must-fail entries are refused", () => {
    expect(v.derived_must_fail.length).toBe(3);
    for (const e of v.derived_must_fail) {
      expect(e.must_fail).toBe(true);
      expect({ name: e.name, r: xaeadOpen(hex(e.key), hex(e.nonce), hex(e.ciphertext_and_tag), hex(e.aad)) }).toEqual({
        name: e.name,
        r: null,
      });
    }
  });
});

// ---------------------------------------------------------------- BLAKE2s

/** BLAKE2s with outlen/key as parameters; routed through core/crypto where it has the form. */
function b2s(outlen: number, key: Uint8Array, input: Uint8Array): Uint8Array {
  if (key.length === 0 && outlen === 32) return hash(input);
  if (key.length > 0 && outlen === 16) return mac(key, input);
  return blake2s(input, key.length > 0 ? { key, dkLen: outlen } : { dkLen: outlen });
}

describe("blake2s.json", () => {
  const v = loadVector("blake2s.json");
  type E = { outlen: number; key: string; input: string; output: string; index?: number };
  const check = (list: E[]) => {
    for (const [i, e] of list.entries()) {
      const got = toHex(b2s(e.outlen, hex(e.key), hex(e.input)));
      expect({ i, outlen: e.outlen, got }).toEqual({ i, outlen: e.outlen, got: e.output });
      // The noble call directly, too (same function, no routing).
      const direct = blake2s(hex(e.input), e.key.length > 0 ? { key: hex(e.key), dkLen: e.outlen } : { dkLen: e.outlen });
      expect(toHex(direct)).toBe(e.output);
    }
  };

  test("RFC 7693 abc", () => check([v.rfc7693_abc]));

  test("RFC 7693 Appendix E entries and grand hash", () => {
    expect(v.rfc7693_selftest.entries.length).toBe(48);
    check(v.rfc7693_selftest.entries);
    const seq = (len: number, seed: number) => {
      const out = new Uint8Array(len);
      let a = Math.imul(0xdead4bad, seed) >>> 0;
      let b = 1;
      for (let i = 0; i < len; i++) {
        const t = (a + b) >>> 0;
        a = b;
        b = t;
        out[i] = t >>> 24;
      }
      return out;
    };
    const grand = blake2s.create({});
    for (const outlen of [16, 20, 28, 32])
      for (const inlen of [0, 3, 64, 65, 255, 1024]) {
        const input = seq(inlen, inlen);
        grand.update(b2s(outlen, new Uint8Array(0), input));
        grand.update(b2s(outlen, seq(outlen, outlen), input));
      }
    expect(toHex(grand.digest())).toBe(v.rfc7693_selftest.grand_hash);
  });

  test("BLAKE2 reference KAT, 256 unkeyed + 256 keyed", () => {
    expect(v.reference_kat_unkeyed.length).toBe(256);
    expect(v.reference_kat_keyed.length).toBe(256);
    check(v.reference_kat_unkeyed);
    check(v.reference_kat_keyed);
  });

  test("kernel mainline cases: every outlen 1..32, key lengths 0..32", () => {
    const list: E[] = v.kernel_mainline_variable;
    expect(list.length).toBe(256);
    expect(new Set(list.map((e) => e.outlen)).size).toBe(32);
    check(list);
    for (const [idx, out] of Object.entries(v.kernel_mainline_spot_values as Record<string, string>))
      expect(list.find((e) => e.index === Number(idx))!.output).toBe(out);
  });
});

// ---------------------------------------------------------------- WireGuard KDF, HMAC, constants

describe("wireguard_kdf.json", () => {
  const v = loadVector("wireguard_kdf.json");

  test("KDF1/2/3", () => {
    expect(v.kdf.length).toBe(3);
    for (const e of v.kdf) {
      const key = hex(e.key);
      const input = hex(e.input);
      expect(toHex(kdf1(key, input))).toBe(e.t1);
      expect(kdf2(key, input).map(toHex)).toEqual([e.t1, e.t2]);
      expect(kdf3(key, input).map(toHex)).toEqual([e.t1, e.t2, e.t3]);
    }
  });

  test("HMAC-BLAKE2s (incl. a 256-byte key)", () => {
    expect(v.hmac_blake2s.length).toBe(2);
    for (const e of v.hmac_blake2s) expect(toHex(hmac(hex(e.key), hex(e.input)))).toBe(e.output);
  });

  test("initial chaining key and hash", () => {
    const c = v.construction_constants;
    const ck = hash(enc(c.construction));
    expect(toHex(ck)).toBe(c.initial_chaining_key);
    expect(toHex(hash(ck, enc(c.identifier)))).toBe(c.initial_hash);
  });

  test("mac1 and cookie keys", () => {
    const m = v.mac_keys_for_handshake_vector;
    const pub = hex(m.responder_static_public);
    const c = v.construction_constants;
    expect(toHex(hash(enc(c.label_mac1), pub))).toBe(m["mac1_key = HASH('mac1----' || responder_static_public)"]);
    expect(toHex(hash(enc(c.label_cookie), pub))).toBe(m["cookie_key = HASH('cookie--' || responder_static_public)"]);
  });
});
