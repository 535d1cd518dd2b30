// `wg allowed-ips` (core/tools/prefix-set.ts): the result is checked against a brute-force set
// computation on random inputs. In a small space (one IPv4 /16, one IPv6 /112) every address is
// one bit of a bitset, and the expected list is the set's maximal aligned blocks, which is the
// unique minimal prefix cover; in the full spaces, where no bitset fits, both sets are compared at
// every boundary of every prefix involved (both are constant between consecutive boundaries).
// Every result is also checked to be sorted, disjoint, masked and free of mergeable pairs.
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import type { AllowedIp } from "../core/tools/containers.ts";
import { formatPrefixList, parsePrefixLists, subtractPrefixes } from "../core/tools/prefix-set.ts";
import { ours, real } from "./wg-harness.ts";

const bitsOf = (p: AllowedIp) => (p.family === 4 ? 32 : 128);
const big = (a: Uint8Array) => a.reduce((n, b) => (n << 8n) | BigInt(b), 0n);
const bytes = (n: bigint, len: number) => Uint8Array.from({ length: len }, (_, i) => Number((n >> BigInt(8 * (len - 1 - i))) & 0xffn));
const size = (p: AllowedIp) => 1n << BigInt(bitsOf(p) - p.cidr);
/** First address of the prefix, host bits cleared. */
const first = (p: AllowedIp) => big(p.addr) & ~(size(p) - 1n);
const prefix = (family: 4 | 6, n: bigint, cidr: number): AllowedIp => ({ family, addr: bytes(n, family === 4 ? 4 : 16), cidr });

/** Sorted (IPv4 first), host bits clear, disjoint, and no two siblings (which would merge into their parent). */
function expectCanonical(list: AllowedIp[]): void {
  const bad: string[] = [];
  const seen = new Set(list.map((p) => `${p.family}/${first(p)}/${p.cidr}`));
  list.forEach((p, i) => {
    if (big(p.addr) !== first(p)) bad.push(`host bits: ${formatPrefixList([p])}`);
    if (p.cidr > 0 && seen.has(`${p.family}/${first(p) ^ size(p)}/${p.cidr}`)) bad.push(`mergeable: ${formatPrefixList([p])}`);
    const prev = list[i - 1];
    if (prev && (prev.family > p.family || (prev.family === p.family && first(prev) + size(prev) > first(p))))
      bad.push(`order or overlap: ${formatPrefixList([prev, p])}`);
  });
  expect(bad).toEqual([]);
}

// ---- small spaces: one bit per address ----

const SPACE_BITS = 16;
const SPACE = 1 << SPACE_BITS;
const SPACES = { 4: { base: big(Uint8Array.of(10, 7, 0, 0)), bits: 32 }, 6: { base: big(Uint8Array.of(0xfd, 0, 0x12, 0x34, ...new Uint8Array(12))), bits: 128 } } as const;

/** A prefix inside the family's test space: an offset (host bits may be set) and a length. */
const smallPrefix = (family: 4 | 6) =>
  fc.record({ off: fc.integer({ min: 0, max: SPACE - 1 }), len: fc.integer({ min: 0, max: SPACE_BITS }) }).map(({ off, len }) =>
    prefix(family, SPACES[family].base + BigInt(off), SPACES[family].bits - len),
  );

function bitset(list: AllowedIp[], family: 4 | 6): Uint8Array {
  const set = new Uint8Array(SPACE);
  for (const p of list) {
    if (p.family !== family) continue;
    const lo = Number(first(p) - SPACES[family].base);
    set.fill(1, lo, lo + Number(size(p)));
  }
  return set;
}

/** The maximal aligned blocks of the set, in address order: whole block set -> one prefix, else its halves. */
function maximalBlocks(set: Uint8Array, family: 4 | 6): AllowedIp[] {
  const sums = new Int32Array(SPACE + 1);
  for (let i = 0; i < SPACE; i++) sums[i + 1] = sums[i]! + set[i]!;
  const out: AllowedIp[] = [];
  const walk = (lo: number, len: number) => {
    const n = sums[lo + len]! - sums[lo]!;
    if (n === 0) return;
    if (n === len) out.push(prefix(family, SPACES[family].base + BigInt(lo), SPACES[family].bits - Math.log2(len)));
    else (walk(lo, len / 2), walk(lo + len / 2, len / 2));
  };
  walk(0, SPACE);
  return out;
}

function checkSmall(include: AllowedIp[], exclude: AllowedIp[]): void {
  const got = subtractPrefixes(include, exclude);
  expectCanonical(got);
  const expected: AllowedIp[] = [];
  for (const family of [4, 6] as const) {
    const inc = bitset(include, family), exc = bitset(exclude, family);
    const want = inc.map((b, i) => b & (exc[i]! ^ 1));
    expect(bitset(got, family)).toEqual(want);
    expected.push(...maximalBlocks(want, family));
  }
  expect(formatPrefixList(got)).toBe(formatPrefixList(expected));
}

describe("brute force on a bitset of every address", () => {
  test("IPv4 prefixes inside 10.7.0.0/16", () => {
    fc.assert(
      fc.property(fc.array(smallPrefix(4), { maxLength: 12 }), fc.array(smallPrefix(4), { maxLength: 12 }), (inc, exc) => checkSmall(inc, exc)),
      { numRuns: 300 },
    );
  });
  test("IPv6 prefixes inside fd00:1234::/112", () => {
    fc.assert(
      fc.property(fc.array(smallPrefix(6), { maxLength: 12 }), fc.array(smallPrefix(6), { maxLength: 12 }), (inc, exc) => checkSmall(inc, exc)),
      { numRuns: 300 },
    );
  });
  test("both families in one call stay apart", () => {
    const any = fc.oneof(smallPrefix(4), smallPrefix(6));
    fc.assert(fc.property(fc.array(any, { maxLength: 16 }), fc.array(any, { maxLength: 16 }), (inc, exc) => checkSmall(inc, exc)), { numRuns: 300 });
  });
  test("many small excluded blocks (long outputs)", () => {
    const host = (family: 4 | 6) => smallPrefix(family).map((p) => ({ ...p, cidr: bitsOf(p) - (p.cidr & 3) }));
    const whole = (family: 4 | 6) => prefix(family, SPACES[family].base, SPACES[family].bits - SPACE_BITS);
    fc.assert(fc.property(fc.array(host(4), { maxLength: 60 }), (exc) => checkSmall([whole(4)], exc)), { numRuns: 100 });
    fc.assert(fc.property(fc.array(host(6), { maxLength: 60 }), (exc) => checkSmall([whole(6)], exc)), { numRuns: 100 });
  });
});

// ---- full spaces: compare at every boundary ----

const anyPrefix = (family: 4 | 6) => {
  const bits = family === 4 ? 32 : 128;
  return fc
    .record({ hi: fc.bigInt({ min: 0n, max: (1n << BigInt(bits)) - 1n }), len: fc.oneof(fc.integer({ min: 0, max: 12 }), fc.integer({ min: 0, max: bits })) })
    .map(({ hi, len }) => prefix(family, hi, len));
};

const inAny = (list: AllowedIp[], family: 4 | 6, x: bigint) => list.some((p) => p.family === family && x >= first(p) && x < first(p) + size(p));

/** Membership in a canonical (sorted, disjoint) list by binary search: the results can be long. */
function inSorted(list: AllowedIp[], family: 4 | 6, x: bigint): boolean {
  let lo = 0, hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1, p = list[mid]!;
    if (p.family < family || (p.family === family && first(p) + size(p) <= x)) lo = mid + 1;
    else hi = mid;
  }
  const p = list[lo];
  return p !== undefined && p.family === family && first(p) <= x;
}

function checkAtBoundaries(include: AllowedIp[], exclude: AllowedIp[]): void {
  const got = subtractPrefixes(include, exclude);
  expectCanonical(got);
  const wrong: string[] = [];
  for (const family of [4, 6] as const) {
    const top = 1n << BigInt(family === 4 ? 32 : 128);
    const points = new Set<bigint>([0n]);
    for (const p of [...include, ...exclude, ...got]) if (p.family === family) points.add(first(p)).add(first(p) + size(p));
    for (const x of points)
      if (x < top && inSorted(got, family, x) !== (inAny(include, family, x) && !inAny(exclude, family, x))) wrong.push(`IPv${family} ${x}`);
  }
  expect(wrong).toEqual([]);
}

describe("brute force at every boundary of the whole address space", () => {
  test("random prefixes of any length, both families", () => {
    const any = fc.oneof(anyPrefix(4), anyPrefix(6));
    fc.assert(fc.property(fc.array(any, { maxLength: 10 }), fc.array(any, { maxLength: 10 }), (inc, exc) => checkAtBoundaries(inc, exc)), { numRuns: 500 });
  });
  test("everything minus random prefixes", () => {
    const all = [prefix(4, 0n, 0), prefix(6, 0n, 0)];
    const any = fc.oneof(anyPrefix(4), anyPrefix(6));
    fc.assert(fc.property(fc.array(any, { maxLength: 10 }), (exc) => checkAtBoundaries(all, exc)), { numRuns: 300 });
  });
});

// ---- known answers and the command ----

const parse = (...lists: string[]) => {
  const errs: string[] = [];
  const r = parsePrefixLists(lists, (s) => errs.push(s));
  expect(errs).toEqual([]);
  return r!;
};
const minus = (inc: string[], exc: string[]) => formatPrefixList(subtractPrefixes(parse(...inc), parse(...exc)));

const NOT_LAN_V4 = "0.0.0.0/1, 128.0.0.0/2, 192.0.0.0/9, 192.128.0.0/11, 192.160.0.0/13, 192.169.0.0/16, 192.170.0.0/15, 192.172.0.0/14, 192.176.0.0/12, 192.192.0.0/10, 193.0.0.0/8, 194.0.0.0/7, 196.0.0.0/6, 200.0.0.0/5, 208.0.0.0/4, 224.0.0.0/3";
const NOT_ULA_V6 = "::/1, 8000::/2, c000::/3, e000::/4, f000::/5, f800::/6, fc00::/8, fe00::/7";

describe("known answers", () => {
  test("everything but 192.168.0.0/16 and fd00::/8 (the issue's example)", () => {
    expect(minus(["0.0.0.0/0,::/0"], ["192.168.0.0/16,fd00::/8"])).toBe(`${NOT_LAN_V4}, ${NOT_ULA_V6}`);
  });
  test("the public IPv4 list people paste: everything but RFC 1918", () => {
    expect(minus(["0.0.0.0/0"], ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"])).toBe(
      "0.0.0.0/5, 8.0.0.0/7, 11.0.0.0/8, 12.0.0.0/6, 16.0.0.0/4, 32.0.0.0/3, 64.0.0.0/2, 128.0.0.0/3, 160.0.0.0/5, 168.0.0.0/6, 172.0.0.0/12, 172.32.0.0/11, 172.64.0.0/10, 172.128.0.0/9, 173.0.0.0/8, 174.0.0.0/7, 176.0.0.0/4, 192.0.0.0/9, 192.128.0.0/11, 192.160.0.0/13, 192.169.0.0/16, 192.170.0.0/15, 192.172.0.0/14, 192.176.0.0/12, 192.192.0.0/10, 193.0.0.0/8, 194.0.0.0/7, 196.0.0.0/6, 200.0.0.0/5, 208.0.0.0/4, 224.0.0.0/3",
    );
  });
  test("adjacent and overlapping inputs merge; hosts print with /32 and /128", () => {
    expect(minus(["10.0.0.0/25,10.0.0.128/25,10.0.0.0/26"], [])).toBe("10.0.0.0/24");
    expect(minus(["10.0.0.0/30"], ["10.0.0.1"])).toBe("10.0.0.0/32, 10.0.0.2/31");
    expect(minus(["::/126"], ["::2"])).toBe("::/127, ::3/128");
    expect(minus(["10.0.0.0/8"], ["0.0.0.0/0"])).toBe("");
    expect(minus(["::ffff:10.0.0.0/120"], [])).toBe("::ffff:10.0.0.0/120");
  });
  test("host bits are ignored after wg's warning", () => {
    const errs: string[] = [];
    const r = parsePrefixLists([" 10.1.2.3 / 8 "], (s) => errs.push(s));
    expect(errs).toEqual(["Warning: AllowedIP has nonzero host part: 10.1.2.3/8\n"]);
    expect(formatPrefixList(subtractPrefixes(r!, []))).toBe("10.0.0.0/8");
  });
});

describe("wg allowed-ips", () => {
  test("one line for the issue's example; several arguments and repeated --except add up", async () => {
    const a = await ours(["allowed-ips", "0.0.0.0/0,::/0", "--except", "192.168.0.0/16,fd00::/8"]);
    expect(a).toEqual({ stdout: `${NOT_LAN_V4}, ${NOT_ULA_V6}\n`, stderr: "", code: 0 });
    const b = await ours(["allowed-ips", "::/0", "0.0.0.0/0", "--except=fd00::/8", "--except", "192.168.0.0/16"]);
    expect(b).toEqual(a);
  });
  test("an empty result is an empty line", async () => {
    expect(await ours(["allowed-ips", "10.0.0.0/8", "--except", "10.0.0.0/7"])).toEqual({ stdout: "\n", stderr: "", code: 0 });
  });
  test("errors say what is wrong and exit 1 with nothing on stdout", async () => {
    const cases: [string[], string][] = [
      [[], "wg allowed-ips: Missing required positional argument: PREFIXES\nTry `wg allowed-ips --help'.\n"],
      [["10.0.0.0/8", "--except"], "wg allowed-ips: option `--except' needs a value\nTry `wg allowed-ips --help'.\n"],
      [["10.0.0.0/8", "--exclude", "10.0.0.0/9"], "wg allowed-ips: unknown option `--exclude'\nTry `wg allowed-ips --help'.\n"],
      [["10.0.0.0/8,nope"], "Unable to parse IP address: `nope'\n"],
      [["10.0.0.0/8", "--except", "10.0.0.0/33"], "AllowedIP is not in the correct format: `10.0.0.0/33'\n"],
      [["10.0.0.0/8,"], "Unable to parse IP address: `'\n"],
      // wg set's +/- signs are no part of these lists.
      [["0.0.0.0/0,-10.0.0.0/8"], "Unable to parse IP address: `-10.0.0.0'\n"],
    ];
    for (const [args, stderr] of cases) expect(await ours(["allowed-ips", ...args])).toEqual({ stdout: "", stderr, code: 1 });
  });
  test("--help is generated from the argument definitions", async () => {
    const r = await ours(["allowed-ips", "--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("USAGE wg allowed-ips [OPTIONS] <PREFIXES>");
    expect(r.stdout).toContain("--except=<PREFIX[,PREFIX...]>");
    expect(r.stdout).not.toContain("\x1b[");
  });
  test.skipIf(!Bun.which("wg"))("the real wg rejects the word, so no working script changes", async () => {
    const r = await real(["allowed-ips", "0.0.0.0/0"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toStartWith("Invalid subcommand: `allowed-ips'\n");
  });
});
