// Set arithmetic on IP prefixes for `wg allowed-ips` ("everything but my LAN"): the addresses
// covered by one list of prefixes minus those covered by another, written back as the smallest
// list of prefixes. Each family is handled as a sorted list of disjoint inclusive address ranges;
// the result of a range is split greedily into the largest aligned blocks, which is the minimal
// prefix cover of that range, and ranges that touch are merged first, so no two output prefixes
// can be joined into one.
import type { AllowedIp } from "./containers.ts";
import { parseAllowedIps, stripSpaces, type ParseEnv } from "./config.ts";
import { emptyPeerConfig } from "./containers.ts";
import { formatAllowedIp } from "./show.ts";

/** Inclusive range of one family's addresses, as unsigned integers. */
interface Range {
  lo: bigint;
  hi: bigint;
}

const bitsOf = (family: 4 | 6) => (family === 4 ? 32 : 128);

function toBigInt(addr: Uint8Array): bigint {
  let n = 0n;
  for (const b of addr) n = (n << 8n) | BigInt(b);
  return n;
}

function fromBigInt(n: bigint, bytes: number): Uint8Array {
  const out = new Uint8Array(bytes);
  for (let i = bytes - 1; i >= 0; i--, n >>= 8n) out[i] = Number(n & 0xffn);
  return out;
}

/** The addresses of the prefixes of one family (host bits ignored), sorted, merged where they touch. */
function rangesOf(prefixes: readonly AllowedIp[], family: 4 | 6): Range[] {
  const bits = BigInt(bitsOf(family));
  const sorted = prefixes
    .filter((p) => p.family === family)
    .map((p) => {
      const size = 1n << (bits - BigInt(p.cidr));
      const lo = toBigInt(p.addr) & ~(size - 1n);
      return { lo, hi: lo + size - 1n };
    })
    .sort((a, b) => (a.lo < b.lo ? -1 : a.lo > b.lo ? 1 : 0));
  const out: Range[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && r.lo <= last.hi + 1n) {
      if (r.hi > last.hi) last.hi = r.hi;
    } else out.push({ ...r });
  }
  return out;
}

/** a minus b; both sorted and disjoint, and so is the result (still merged where a was). */
function subtract(a: readonly Range[], b: readonly Range[]): Range[] {
  const out: Range[] = [];
  let j = 0;
  for (const r of a) {
    let lo = r.lo;
    while (j < b.length && b[j]!.hi < lo) j++;
    for (let k = j; k < b.length && b[k]!.lo <= r.hi && lo <= r.hi; k++) {
      if (b[k]!.lo > lo) out.push({ lo, hi: b[k]!.lo - 1n });
      lo = b[k]!.hi + 1n;
    }
    if (lo <= r.hi) out.push({ lo, hi: r.hi });
  }
  return out;
}

/** The fewest prefixes covering exactly [lo, hi]: at each step the largest aligned block that fits. */
function rangeToPrefixes(r: Range, family: 4 | 6, out: AllowedIp[]): void {
  const bits = bitsOf(family);
  let lo = r.lo;
  while (lo <= r.hi) {
    let k = 0;
    while (k < bits && ((lo >> BigInt(k)) & 1n) === 0n && lo + (1n << BigInt(k + 1)) - 1n <= r.hi) k++;
    out.push({ family, addr: fromBigInt(lo, bits / 8), cidr: bits - k });
    lo += 1n << BigInt(k);
  }
}

/**
 * The minimal prefix list covering `include` minus `exclude`: IPv4 before IPv6, each sorted by
 * address, pairwise disjoint, host bits clear, and no two of them mergeable into one prefix.
 */
export function subtractPrefixes(include: readonly AllowedIp[], exclude: readonly AllowedIp[]): AllowedIp[] {
  const out: AllowedIp[] = [];
  for (const family of [4, 6] as const)
    for (const r of subtract(rangesOf(include, family), rangesOf(exclude, family))) rangeToPrefixes(r, family, out);
  return out;
}

/**
 * Comma-separated prefix lists as `wg set ... allowed-ips` reads them (whitespace removed, the
 * same grammar and error texts, but no `+`/`-` signs: those are addresses that do not parse);
 * an empty argument is an empty list. Null after an error was reported through err (a nonzero
 * host part only warns there).
 */
export function parsePrefixLists(lists: readonly string[], err: ParseEnv["err"]): AllowedIp[] | null {
  const peer = emptyPeerConfig();
  for (const list of lists) if (!parseAllowedIps(peer, stripSpaces(list), { err }, false)) return null;
  return peer.allowedIps;
}

/** One line in the form `wg showconf` prints after `AllowedIPs = `: `10.0.0.0/8, fd00::/8`. */
export function formatPrefixList(prefixes: readonly AllowedIp[]): string {
  return prefixes.map(formatAllowedIp).join(", ");
}
