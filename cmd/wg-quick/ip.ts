// The iproute2 layer. Every `ip` command of the reference goes through `run()`: it prints the
// `[#] ip ...` line (the reference's `cmd`), reads the arguments as ip does, and makes the
// rtnetlink request; a failure prints ip's own message and ends wg-quick with ip's status. The
// lookups the reference makes inside `$(...)` (no `[#]` line) are the functions at the end.
import * as rt from "../../platform/linux/rtnetlink.ts";
import type { Quick } from "./context.ts";
import { err } from "./exit.ts";

/** An address family as the reference derives it from an address: `[[ $1 == *:* ]] && proto=-6`. */
export interface Family {
  family: number;
  /** ip's option */
  proto: "-4" | "-6";
  /** nft's family, also the prefix of the iptables command */
  pf: "ip" | "ip6";
}

export const INET: Family = { family: rt.AF_INET, proto: "-4", pf: "ip" };
export const INET6: Family = { family: rt.AF_INET6, proto: "-6", pf: "ip6" };
export const FAMILIES = [INET, INET6] as const;

export const familyOf = (address: string): Family => (address.includes(":") ? INET6 : INET);
const familyOfNumber = (family: number): Family => (family === rt.AF_INET6 ? INET6 : INET);

/** ip refusing its arguments: its message and status. */
class IpUsage {
  constructor(
    readonly status: number,
    readonly text: string,
  ) {}
}

/** Runs `f`; ip's failure (of its arguments or of the kernel) is printed and returned as its status. */
function attempt(f: () => void): number {
  try {
    f();
    return 0;
  } catch (e) {
    if (e instanceof IpUsage) {
      err(`${e.text}\n`);
      return e.status;
    }
    if (e instanceof rt.NetlinkError) {
      err(`${e.ipText()}\n`);
      return 2;
    }
    throw e;
  }
}

/** `cmd ip WORDS`: the line, then the request; ip's status. */
function run(q: Quick, words: string, request: () => void): number {
  q.cmd(`ip ${words}`);
  return attempt(request);
}

/** `cmd ip WORDS` under `set -e`. */
function ip(q: Quick, words: string, request: () => void): void {
  q.check(run(q, words, request));
}

/** The same checks ip makes, before anything is changed (reload validates the whole file first). */
export function validate<T>(q: Quick, read: () => T): T {
  let v: T | undefined;
  q.check(attempt(() => void (v = read())));
  return v!;
}

// ---- arguments, read as ip reads them ----

export function prefixArg(text: string, f: Family): rt.Prefix {
  const p = rt.parsePrefix(text, f.family);
  if (!p) throw new IpUsage(1, `Error: ${f.pf === "ip6" ? "inet6" : "inet"} prefix is expected rather than "${text}".`);
  return p;
}

/** ip would read `text` as a prefix of the family. */
export const isPrefix = (text: string, f: Family) => rt.parsePrefix(text, f.family) !== null;

export function tableArg(text: string): number {
  const t = rt.tableId(text);
  if (t === null) throw new IpUsage(255, `Error: argument "${text}" is wrong: "table" value is invalid\n`);
  return t;
}

/** A C integer as strtol(..., 0) reads it, the whole string consumed (ip's get_integer). */
function parseCInt(s: string): number | null {
  let v: number;
  if (/^[+-]?0[xX][0-9a-fA-F]+$/.test(s)) v = parseInt(s, 16);
  else if (/^[+-]?0[0-7]*$/.test(s)) v = parseInt(s, 8);
  else if (/^[+-]?[1-9][0-9]*$/.test(s)) v = parseInt(s, 10);
  else return null;
  return v >= -0x80000000 && v <= 0x7fffffff ? v >>> 0 : null;
}

export function mtuArg(text: string): number {
  const mtu = parseCInt(text);
  if (mtu === null) throw new IpUsage(255, `Error: argument "${text}" is wrong: Invalid "mtu" value\n`);
  return mtu;
}

export function deviceArg(name: string): number {
  const i = rt.nameToIndex(name);
  if (i === 0) throw new IpUsage(1, `Cannot find device "${name}"`);
  return i;
}

const prefixText = (p: rt.Prefix) => `${rt.formatAddr(p.addr)}/${p.len}`;

// ---- the commands ----

/** `ip link add IF type wireguard`; false (after ip's message) when the kernel refuses it. */
export function linkAddWireguard(q: Quick): boolean {
  return run(q, `link add ${q.iface} type wireguard`, () => rt.linkAdd(q.iface, "wireguard")) === 0;
}

export function linkDelete(q: Quick): void {
  ip(q, `link delete dev ${q.iface}`, () => rt.linkDel(deviceArg(q.iface)));
}

/** `ip link set mtu M up dev IF`, M as written in the file or computed. */
export function linkSetMtuUp(q: Quick, mtu: string): void {
  ip(q, `link set mtu ${mtu} up dev ${q.iface}`, () => {
    const value = mtuArg(mtu);
    rt.linkSet(deviceArg(q.iface), { mtu: value, up: true });
  });
}

export function addressAdd(q: Quick, address: string): void {
  const f = familyOf(address);
  ip(q, `${f.proto} address add ${address} dev ${q.iface}`, () => {
    const p = prefixArg(address, f);
    rt.addrAdd(deviceArg(q.iface), p);
  });
}

export function addressDel(q: Quick, p: rt.Prefix): void {
  ip(q, `${familyOfNumber(p.family).proto} address del ${prefixText(p)} dev ${q.iface}`, () => rt.addrDel(deviceArg(q.iface), p));
}

/** `ip -4|-6 route add|del P dev IF [table T]`, T as written (a name or a number). */
function route(q: Quick, verb: "add" | "del", prefix: string, table: string | undefined, request: typeof rt.routeAdd): void {
  const f = familyOf(prefix);
  ip(q, `${f.proto} route ${verb} ${prefix} dev ${q.iface}${table === undefined ? "" : ` table ${table}`}`, () => {
    const p = prefixArg(prefix, f);
    const t = table === undefined ? rt.RT_TABLE_MAIN : tableArg(table);
    request(p, deviceArg(q.iface), t);
  });
}

export const routeAdd = (q: Quick, prefix: string, table?: string) => route(q, "add", prefix, table, rt.routeAdd);
export const routeDel = (q: Quick, prefix: string, table?: string) => route(q, "del", prefix, table, rt.routeDel);

/** The words of `ip rule add|delete` for a rule wg-quick makes: `[not] [fwmark M] table T [suppress_prefixlength N]`. */
function ruleWords(spec: rt.RuleSpec): string {
  let s = spec.invert ? "not " : "";
  if (spec.fwmark !== undefined) s += `fwmark ${spec.fwmark} `;
  s += `table ${spec.table === rt.RT_TABLE_MAIN ? "main" : spec.table}`;
  if (spec.suppressPrefixlen !== undefined) s += ` suppress_prefixlength ${spec.suppressPrefixlen}`;
  return s;
}

export function ruleAdd(q: Quick, f: Family, spec: rt.RuleSpec): void {
  ip(q, `${f.proto} rule add ${ruleWords(spec)}`, () => rt.ruleAdd(f.family, spec));
}

export function ruleDelete(q: Quick, f: Family, spec: rt.RuleSpec): void {
  ip(q, `${f.proto} rule delete ${ruleWords(spec)}`, () => rt.ruleDel(f.family, spec));
}

// ---- lookups (`$(ip ...)` in the reference: nothing printed but ip's errors) ----

/** `ip link show dev IF` would show a link. */
export const linkExists = (name: string) => rt.linkGet(name) !== null;

/** The MTU of a route as `ip route get`/`ip route show` prints it, else of its device (`ip link show`). */
function routeMtu(r: rt.Route | null): number | null {
  if (!r) return null;
  if (r.mtu !== null) return r.mtu;
  if (r.oif === null || r.multipath) return null;
  return rt.linkByIndex(r.oif)?.mtu ?? null;
}

/**
 * The MTU found through `ip route get ADDRESS`, or null; ip's complaints reach stderr as they do
 * from the reference's `$(ip route get ...)`. A route through `exceptIndex` counts as none.
 */
export function routeGetMtu(address: string, exceptIndex = 0): number | null {
  const p = rt.parsePrefix(address, 0);
  if (!p) {
    err(`Error: any valid prefix is expected rather than "${address}".\n`);
    return null;
  }
  let r: rt.Route | null = null;
  if (attempt(() => void (r = rt.routeGet(p.addr))) !== 0) return null;
  const route = r as rt.Route | null;
  return route && exceptIndex !== 0 && route.oif === exceptIndex ? null : routeMtu(route);
}

/** The MTU of the first line of `ip route show default`, or null. */
export const defaultRouteMtu = () => routeMtu(rt.defaultRoutes()[0] ?? null);

/** `ip -4 route show table T` or `ip -6 route show table T` would print something. */
export const tableInUse = (table: number) => rt.tableHasRoutes(rt.AF_INET, table) || rt.tableHasRoutes(rt.AF_INET6, table);

/** `ip -4|-6 route show dev IF match P` would print something (an unreadable P or IF: nothing). */
export function routeMatches(q: Quick, prefix: string): boolean {
  const p = rt.parsePrefix(prefix, familyOf(prefix).family);
  const idx = rt.nameToIndex(q.iface);
  return p !== null && idx !== 0 && rt.routeMatchExists(p, idx);
}

/** The link's exact route P in table T (`ip route show table T dev IF exact P`). */
export function routeExists(q: Quick, prefix: string, table: number): boolean {
  const p = rt.parsePrefix(prefix, familyOf(prefix).family);
  const idx = rt.nameToIndex(q.iface);
  return p !== null && idx !== 0 && rt.routeList(p.family).some((r) => r.table === table && r.oif === idx && samePrefix(r.dst, p));
}

/** `ip -4|-6 rule show` (nothing when it fails, as `2>/dev/null` in a test of its text). */
export function rules(f: Family): rt.Rule[] {
  try {
    return rt.ruleList(f.family);
  } catch {
    return [];
  }
}

/** The link's addresses (both families when `f` is absent), in `ip addr show` order; none when it is gone. */
export function addresses(q: Quick, f?: Family): rt.Prefix[] {
  const idx = rt.nameToIndex(q.iface);
  return idx === 0 ? [] : rt.addrList(idx, f?.family ?? 0).map((a) => a.prefix);
}

/** Address texts without length, as `ip -o addr show` gives them to the firewall rules. */
export const addressTexts = (q: Quick, f: Family) => addresses(q, f).map((p) => rt.formatAddr(p.addr));

/** `Address = A/LEN` texts of `ip -brief address show dev IF`; null (after ip's message) when there is no link. */
export function addressesBrief(q: Quick): string[] | null {
  if (rt.nameToIndex(q.iface) === 0) {
    err(`Device "${q.iface}" does not exist.\n`);
    return null;
  }
  return addresses(q).map(prefixText);
}

/** The link's MTU (`ip link show dev IF`), or null. */
export function linkMtu(q: Quick): number | null {
  return rt.linkGet(q.iface)?.mtu ?? null;
}

export function samePrefix(a: rt.Prefix, b: rt.Prefix): boolean {
  if (a.family !== b.family || a.len !== b.len || a.addr.length !== b.addr.length) return false;
  for (let i = 0; i < a.addr.length; i++) if (a.addr[i] !== b.addr[i]) return false;
  return true;
}
