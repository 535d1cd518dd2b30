// The libcrypto hash backend must be indistinguishable from noble: every BLAKE2s vector its API
// covers, the KDF/HMAC vectors, random cross-checks (including views at odd offsets and the
// lengths around block boundaries), and the handshake vectors with it selected.
import { afterEach, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  getHash,
  hash,
  hmac,
  kdf1,
  kdf2,
  kdf3,
  mac,
  nobleHash,
  nobleHashReference,
  setHash,
  type HashBackend,
} from "../core/crypto.ts";
import { loadOpenSslHash } from "../platform/linux/hash-openssl.ts";

interface B2Entry {
  outlen: number;
  key: string;
  input: string;
  output: string;
}
const B2 = JSON.parse(readFileSync(new URL("./vectors/blake2s.json", import.meta.url), "utf8")) as {
  rfc7693_abc: B2Entry;
  rfc7693_selftest: { grand_hash: string; entries: B2Entry[] };
  reference_kat_unkeyed: B2Entry[];
  reference_kat_keyed: B2Entry[];
  kernel_mainline_variable: B2Entry[];
};
const KDF = JSON.parse(readFileSync(new URL("./vectors/wireguard_kdf.json", import.meta.url), "utf8")) as {
  kdf: { key: string; input: string; t1: string; t2: string; t3: string }[];
  hmac_blake2s: { key: string; input: string; output: string }[];
  construction_constants: { construction: string; identifier: string; initial_chaining_key: string; initial_hash: string };
};
const hex = (s: string) => Uint8Array.from(Buffer.from(s, "hex"));
const toHex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const rnd = (n: number) => crypto.getRandomValues(new Uint8Array(n));
/** A copy of b placed at an odd byte offset inside a larger buffer. */
const atOffset = (b: Uint8Array, off: number) => {
  const big = new Uint8Array(b.length + off + 5);
  big.set(b, off);
  return big.subarray(off, off + b.length);
};

const native = loadOpenSslHash();
const allEntries = [
  B2.rfc7693_abc,
  ...B2.rfc7693_selftest.entries,
  ...B2.reference_kat_unkeyed,
  ...B2.reference_kat_keyed,
  ...B2.kernel_mainline_variable,
];

afterEach(() => setHash(nobleHash));

test("libcrypto BLAKE2s loads on this machine", () => {
  expect(native?.name).toStartWith("openssl-shim");
});

test("missing library gives null so the noble fallback stays", () => {
  expect(loadOpenSslHash({ sonames: ["libdoes-not-exist.so.9"] })).toBeNull();
});

test("every 32-byte unkeyed BLAKE2s vector through hash()", () => {
  const cases = allEntries.filter((e) => e.outlen === 32 && e.key === "");
  expect(cases.length).toBeGreaterThan(256);
  for (const b of [native!, nobleHash]) {
    for (const e of cases) {
      const input = hex(e.input);
      expect(toHex(b.hash([input]))).toBe(e.output);
      // split into two parts (the mixHash shape) and into three (the concatenating path)
      const one = Math.min(1, input.length);
      const cut = Math.max(one, input.length >> 1);
      expect(toHex(b.hash([input.subarray(0, cut), input.subarray(cut)]))).toBe(e.output);
      expect(toHex(b.hash([input.subarray(0, one), input.subarray(one, cut), input.subarray(cut)]))).toBe(e.output);
    }
  }
});

test("every keyed BLAKE2s vector (any outlen, key 1..32 bytes) through keyedBlake2s; 16-byte ones through mac()", () => {
  const keyed = allEntries.filter((e) => e.key !== "");
  expect(keyed.length).toBeGreaterThan(400);
  let macs = 0;
  for (const e of keyed) {
    expect(toHex(native!.keyedBlake2s(hex(e.key), hex(e.input), e.outlen))).toBe(e.output);
    if (e.outlen === 16) {
      macs++;
      expect(toHex(native!.mac(hex(e.key), hex(e.input)))).toBe(e.output);
      expect(toHex(nobleHash.mac(hex(e.key), hex(e.input)))).toBe(e.output);
    }
  }
  expect(macs).toBeGreaterThan(10);
  // the cookie shape (16-byte key); mac1's 32-byte key is covered by the handshake vectors
  expect(keyed.some((e) => e.outlen === 16 && e.key.length === 32)).toBe(true);
});

test("RFC 7693 Appendix E grand hash", () => {
  const g = B2.rfc7693_selftest;
  const outs = g.entries.map((e) =>
    e.key === "" ? (e.outlen === 32 ? native!.hash([hex(e.input)]) : null) : native!.keyedBlake2s(hex(e.key), hex(e.input), e.outlen),
  );
  // unkeyed outlen < 32 is outside the backend's API (OpenSSL 3.0 has no digest size parameter):
  // those come from the vector file, everything else from libcrypto
  const parts = outs.map((o, i) => o ?? hex(g.entries[i]!.output));
  expect(toHex(native!.hash(parts))).toBe(g.grand_hash);
});

test("keyedBlake2s refuses what it cannot compute", () => {
  expect(() => native!.keyedBlake2s(new Uint8Array(0), rnd(3), 16)).toThrow(RangeError);
  expect(() => native!.keyedBlake2s(rnd(33), rnd(3), 16)).toThrow(RangeError);
  expect(() => native!.keyedBlake2s(rnd(32), rnd(3), 33)).toThrow(RangeError);
  expect(() => native!.keyedBlake2s(rnd(32), rnd(3), 0)).toThrow(RangeError);
});

const backends: [string, HashBackend][] = [
  ["openssl", native!],
  ["noble", nobleHash],
  ["noble-reference", nobleHashReference],
];

for (const [label, b] of backends) {
  test(`${label}: KDF1/2/3, HMAC (incl. 256-byte key) and construction constants`, () => {
    setHash(b);
    expect(getHash()).toBe(b);
    for (const v of KDF.kdf) {
      const key = hex(v.key);
      const input = hex(v.input);
      expect(toHex(kdf1(key, input))).toBe(v.t1);
      expect(kdf2(key, input).map(toHex)).toEqual([v.t1, v.t2]);
      expect(kdf3(key, input).map(toHex)).toEqual([v.t1, v.t2, v.t3]);
      expect(kdf3(atOffset(key, 3), atOffset(input, 1)).map(toHex)).toEqual([v.t1, v.t2, v.t3]);
    }
    expect(KDF.hmac_blake2s.some((v) => v.key.length / 2 === 256)).toBe(true);
    for (const v of KDF.hmac_blake2s) {
      expect(toHex(hmac(hex(v.key), hex(v.input)))).toBe(v.output);
      expect(toHex(hmac(atOffset(hex(v.key), 1), atOffset(hex(v.input), 7)))).toBe(v.output);
    }
    const c = KDF.construction_constants;
    const c0 = hash(new TextEncoder().encode(c.construction));
    expect(toHex(c0)).toBe(c.initial_chaining_key);
    expect(toHex(hash(c0, new TextEncoder().encode(c.identifier)))).toBe(c.initial_hash);
  });
}

test("randomized cross-check against noble (fresh instances), odd offsets and block boundaries", () => {
  const ref = nobleHashReference;
  const lens = [0, 1, 31, 32, 33, 55, 63, 64, 65, 116, 127, 128, 129, 132, 200, 1000];
  for (let i = 0; i < 300; i++) {
    const dlen = i < lens.length ? lens[i]! : (Math.random() * 300) | 0;
    const klen = i < lens.length ? lens[(i * 5) % lens.length]! : (Math.random() * 140) | 0;
    const off = i % 5;
    const data = atOffset(rnd(dlen), off);
    const key = atOffset(rnd(klen), (off + 2) % 4);
    const key32 = atOffset(rnd(32), off);
    for (const b of [native!, nobleHash]) {
      expect(toHex(b.hash([data]))).toBe(toHex(ref.hash([data])));
      expect(toHex(b.hash([key, data]))).toBe(toHex(ref.hash([key, data])));
      expect(toHex(b.hmac(key, data))).toBe(toHex(ref.hmac(key, data)));
      expect(b.kdf3(key, data).map(toHex)).toEqual(ref.kdf3(key, data).map(toHex));
      expect(toHex(b.kdf1(key, data))).toBe(toHex(ref.kdf1(key, data)));
      expect(toHex(b.mac(key32, data))).toBe(toHex(ref.mac(key32, data)));
      expect(toHex(b.mac(key32.subarray(0, 16), data))).toBe(toHex(ref.mac(key32.subarray(0, 16), data)));
    }
  }
});

test("outputs are fresh arrays the caller may wipe; inputs are not modified", () => {
  const key = rnd(32);
  const input = rnd(32);
  const [keyCopy, inputCopy] = [Uint8Array.from(key), Uint8Array.from(input)];
  const [a1, a2, a3] = native!.kdf3(key, input);
  a1.fill(0);
  a2.fill(0);
  const [b1, b2, b3] = native!.kdf3(key, input);
  expect(toHex(b3)).toBe(toHex(a3));
  expect(toHex(b1)).toBe(toHex(nobleHash.kdf1(key, input)));
  expect(toHex(b2)).toBe(toHex(nobleHash.kdf2(key, input)[1]));
  expect(toHex(key)).toBe(toHex(keyCopy));
  expect(toHex(input)).toBe(toHex(inputCopy));
  const h1 = native!.hash([key]);
  h1.fill(0);
  expect(toHex(native!.hash([key]))).toBe(toHex(nobleHash.hash([key])));
});

test(
  "test/handshake.test.ts passes with the native backend selected (and actually uses it)",
  async () => {
    const dir = mkdtempSync(join(tmpdir(), "wgt-hash-"));
    try {
      const countFile = join(dir, "count");
      const root = new URL("..", import.meta.url).pathname;
      writeFileSync(
        join(dir, "preload.ts"),
        `import { setHash, type HashBackend } from ${JSON.stringify(root + "core/crypto.ts")};
import { loadOpenSslHash } from ${JSON.stringify(root + "platform/linux/hash-openssl.ts")};
import { writeFileSync } from "node:fs";
import { afterAll } from "bun:test";
const n = loadOpenSslHash();
if (!n) throw new Error("native hash backend did not load");
let calls = 0;
const counted: HashBackend = {
  name: n.name,
  hash: (p) => (calls++, n.hash(p)),
  mac: (k, d) => (calls++, n.mac(k, d)),
  hmac: (k, d) => (calls++, n.hmac(k, d)),
  kdf1: (k, i) => (calls++, n.kdf1(k, i)),
  kdf2: (k, i) => (calls++, n.kdf2(k, i)),
  kdf3: (k, i) => (calls++, n.kdf3(k, i)),
};
setHash(counted);
afterAll(() => writeFileSync(${JSON.stringify(countFile)}, String(calls)));
`,
      );
      const p = Bun.spawnSync([process.execPath, "test", "--preload", join(dir, "preload.ts"), "test/handshake.test.ts"], {
        cwd: root,
        stdout: "pipe",
        stderr: "pipe",
      });
      const out = p.stdout.toString() + p.stderr.toString();
      expect(out).toMatch(/ 0 fail/);
      expect(p.exitCode).toBe(0);
      expect(Number(readFileSync(countFile, "utf8"))).toBeGreaterThan(50);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
  60_000,
);
