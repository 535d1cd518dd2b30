// NETLINK_ROUTE client over the netlink socket layer (netlink.ts). It replaces the `ip`
// invocations of wg-quick: links, addresses, routes and policy rules, plus the few lookups
// wg-quick makes (`ip route get`, `ip rule show`, `ip route show table T`). Errors carry the
// kernel's errno and its extended-ack message so callers can print what iproute2 would have printed.
// The daemon uses it too: io-loop.ts asks the kernel which interface a sticky source's route
// leaves by (openRtnetlink, routeOutputIf), and tun.ts gives the namespace a TUN moved to an id
// here (netnsIdAssign). ipc-netlink.ts takes its link-message constants from here.
import { readFileSync, readdirSync } from "node:fs";
import { EAFNOSUPPORT, EINVAL, ENODEV, ERANGE } from "../../core/errno.ts";
import { inetNtop4, inetNtop6, inetPton4, inetPton6 } from "../../core/inet.ts";
import { AF_INET, AF_INET6, NETLINK_ROUTE, libc } from "./libc.ts";
import {
  AttrCursor,
  MsgBuilder,
  NLM_F_ACK,
  NLM_F_CREATE,
  NLM_F_DUMP,
  NLM_F_EXCL,
  NLM_F_REQUEST,
  NLMSG_HDRLEN,
  NetlinkError,
  NetlinkSocket,
} from "./netlink.ts";

export { NetlinkError } from "./netlink.ts";
/** The address families the calls below take (wg-quick passes them through). */
export { AF_INET, AF_INET6 } from "./libc.ts";

const RTM_NEWLINK = 16;
const RTM_DELLINK = 17;
export const RTM_GETLINK = 18;
const RTM_NEWADDR = 20;
const RTM_DELADDR = 21;
const RTM_GETADDR = 22;
const RTM_NEWROUTE = 24;
const RTM_DELROUTE = 25;
const RTM_GETROUTE = 26;
const RTM_NEWRULE = 32;
const RTM_DELRULE = 33;
const RTM_GETRULE = 34;

export const IFLA_IFNAME = 3;
const IFLA_MTU = 4;
export const IFLA_LINKINFO = 18;
export const IFLA_INFO_KIND = 1;
/** struct ifinfomsg, the fixed header of link messages. */
export const IFINFOMSG_SIZE = 16;
const IFF_UP = 0x1;

const IFA_ADDRESS = 1;
const IFA_LOCAL = 2;

const RTA_DST = 1;
const RTA_OIF = 4;
const RTA_GATEWAY = 5;
const RTA_PRIORITY = 6;
const RTA_PREFSRC = 7;
const RTA_METRICS = 8;
const RTA_MULTIPATH = 9;
const RTA_TABLE = 15;
const RTAX_MTU = 2;
const RTPROT_BOOT = 3;
const RT_SCOPE_UNIVERSE = 0;
const RT_SCOPE_LINK = 253;
const RT_SCOPE_HOST = 254;
const RTN_UNICAST = 1;
const RTM_F_CLONED = 0x200;
const RT_TABLE_UNSPEC = 0;
export const RT_TABLE_MAIN = 254;
const RT_SCOPE_NOWHERE = 255;

const FRA_DST = 1;
const FRA_SRC = 2;
const FRA_IIFNAME = 3;
const FRA_PRIORITY = 6;
const FRA_FWMARK = 10;
const FRA_SUPPRESS_PREFIXLEN = 14;
const FRA_TABLE = 15;
const FRA_FWMASK = 16;
const FRA_OIFNAME = 17;
const FIB_RULE_INVERT = 0x2;
const FR_ACT_UNSPEC = 0;
const FR_ACT_TO_TBL = 1;

// ---- messages ----

/** A request: nlmsghdr with type and flags, then the caller's fixed header and attributes. */
const msg = (type: number, flags: number) => new MsgBuilder(1024).start(type, flags);

interface Reply {
  type: number;
  flags: number;
  body: Uint8Array; // payload after the 16-byte nlmsghdr
}

/** Parsed attributes of one level: type (without nested/byteorder bits) → payload. Last wins. */
function parseAttrs(b: Uint8Array, start: number): Map<number, Uint8Array> {
  const out = new Map<number, Uint8Array>();
  const c = new AttrCursor().over(b, start);
  while (c.next()) out.set(c.type, c.payload());
  return out;
}

function u32of(d: Uint8Array | undefined): number | undefined {
  if (d === undefined || d.length < 4) return undefined;
  return new DataView(d.buffer, d.byteOffset, 4).getUint32(0, true);
}

function cstr(d: Uint8Array | undefined): string | undefined {
  if (d === undefined) return undefined;
  const z = d.indexOf(0);
  return new TextDecoder().decode(z < 0 ? d : d.subarray(0, z));
}

// ---- the socket ----

let sock: NetlinkSocket | null = null;

/** A NETLINK_ROUTE request socket in the calling thread's namespace (for the queries below). */
export function openRtnetlink(): NetlinkSocket {
  return new NetlinkSocket(NETLINK_ROUTE, { extAck: true, strictCheck: true, bufferSize: 1 << 16 });
}

/** Close the cached socket (wg-quick's main, once its command has run). */
export function closeRtnetlink(): void {
  sock?.close();
  sock = null;
}

/** Send one request and collect its replies until the ack (or DONE for dumps; an interrupted dump is used as it is). */
function transact(m: MsgBuilder, own?: NetlinkSocket): Reply[] {
  const s = own ?? (sock ??= openRtnetlink());
  const replies: Reply[] = [];
  s.replies(s.send(m), (off, len, type, flags) => replies.push({ type, flags, body: s.rx.slice(off + NLMSG_HDRLEN, off + len) }), true);
  return replies;
}

// ---- addresses and prefixes (parsed the way iproute2 parses them) ----

export interface Prefix {
  family: number; // AF_INET or AF_INET6
  addr: Uint8Array; // 4 or 16 bytes
  len: number; // prefix length in bits
}

/** Parse an IPv4 address as iproute2 does: 1-4 dotted parts, each a C number (strtoul base 0) ≤ 255. */
function parseIPv4(s: string): Uint8Array | null {
  const parts = s.split(".");
  if (parts.length < 1 || parts.length > 4) return null;
  const out = new Uint8Array(4);
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i]!;
    let v: number;
    if (/^0[xX][0-9a-fA-F]+$/.test(p)) v = parseInt(p.slice(2), 16);
    else if (/^0[0-7]*$/.test(p)) v = parseInt(p, 8);
    else if (/^[1-9][0-9]*$/.test(p)) v = parseInt(p, 10);
    else return null;
    if (v > 255) return null;
    out[i] = v;
  }
  return out;
}

/** Parse `ADDR[/LEN]` for the given family (0 = decide from the text), like iproute2's get_prefix. */
export function parsePrefix(text: string, family: number): Prefix | null {
  if (text === "default" || text === "all" || text === "any") {
    const fam = family === 0 ? AF_INET : family;
    return { family: fam, addr: new Uint8Array(fam === AF_INET6 ? 16 : 4), len: 0 };
  }
  const slash = text.indexOf("/");
  const addrText = slash < 0 ? text : text.slice(0, slash);
  const fam = family !== 0 ? family : addrText.includes(":") ? AF_INET6 : AF_INET;
  const addr = fam === AF_INET6 ? inetPton6(addrText) : parseIPv4(addrText);
  if (!addr) return null;
  const max = addr.length * 8;
  let len = max;
  if (slash >= 0) {
    const l = text.slice(slash + 1);
    if (/^[0-9]+$/.test(l)) len = Number(l);
    else if (fam === AF_INET && inetPton4(l)) {
      // A dotted netmask must be contiguous ones.
      const m = inetPton4(l)!;
      const bits = ((m[0]! << 24) | (m[1]! << 16) | (m[2]! << 8) | m[3]!) >>> 0;
      const ones = 32 - Math.log2((~bits >>> 0) + 1);
      if (!Number.isInteger(ones)) return null;
      len = ones;
    } else return null;
    if (len > max) return null;
  }
  return { family: fam, addr, len };
}

/** inet_ntop text of a 4- or 16-byte address. */
export function formatAddr(addr: Uint8Array): string {
  return addr.length === 4 ? inetNtop4(addr) : inetNtop6(addr);
}

/** Whether the first `len` bits of a and b agree. */
function samePrefix(a: Uint8Array, b: Uint8Array, len: number): boolean {
  if (a.length !== b.length) return false;
  const full = len >> 3;
  for (let i = 0; i < full; i++) if (a[i] !== b[i]) return false;
  const rem = len & 7;
  if (rem === 0) return true;
  const mask = (0xff << (8 - rem)) & 0xff;
  return ((a[full]! ^ b[full]!) & mask) === 0;
}

// ---- routing table names (/etc/iproute2/rt_tables) ----

let tableNames: Map<string, number> | null = null;

function loadTableNames(): Map<string, number> {
  if (tableNames) return tableNames;
  const m = new Map<string, number>([
    ["unspec", 0],
    ["default", 253],
    ["main", 254],
    ["local", 255],
  ]);
  const files = ["/etc/iproute2/rt_tables"];
  try {
    for (const f of readdirSync("/etc/iproute2/rt_tables.d").sort())
      if (f.endsWith(".conf")) files.push(`/etc/iproute2/rt_tables.d/${f}`);
  } catch {
    // no drop-in directory
  }
  for (const f of files) {
    let text: string;
    try {
      text = readFileSync(f, "utf8");
    } catch {
      continue;
    }
    for (const raw of text.split("\n")) {
      const line = raw.trim();
      if (line === "" || line.startsWith("#")) continue;
      const mm = /^(0x[0-9a-fA-F]+|[0-9]+)\s+([^\s#]+)/.exec(line);
      if (mm) m.set(mm[2]!, Number(mm[1]));
    }
  }
  tableNames = m;
  return m;
}

/** Table id for a name or C number (strtoul base 0), as `ip ... table X` resolves it; null if invalid. */
export function tableId(text: string): number | null {
  const n = loadTableNames().get(text);
  if (n !== undefined) return n;
  let v: number;
  if (/^0[xX][0-9a-fA-F]+$/.test(text)) v = parseInt(text.slice(2), 16);
  else if (/^0[0-7]*$/.test(text)) v = parseInt(text, 8);
  else if (/^[1-9][0-9]*$/.test(text)) v = Number(text);
  else return null;
  return v <= 0xffffffff ? v : null;
}

// ---- links ----

export interface Link {
  index: number;
  name: string;
  mtu: number;
  flags: number;
  kind: string | null;
}

function parseLink(r: Reply): Link {
  const v = new DataView(r.body.buffer, r.body.byteOffset, r.body.byteLength);
  const attrs = parseAttrs(r.body, IFINFOMSG_SIZE);
  const info = attrs.get(IFLA_LINKINFO);
  const kind = info ? (cstr(parseAttrs(info, 0).get(IFLA_INFO_KIND)) ?? null) : null;
  return {
    index: v.getInt32(4, true),
    flags: v.getUint32(8, true),
    name: cstr(attrs.get(IFLA_IFNAME)) ?? "",
    mtu: u32of(attrs.get(IFLA_MTU)) ?? 0,
    kind,
  };
}

function ifinfo(index: number, flags = 0, change = 0): Uint8Array {
  const b = new Uint8Array(IFINFOMSG_SIZE);
  const v = new DataView(b.buffer);
  v.setInt32(4, index, true);
  v.setUint32(8, flags, true);
  v.setUint32(12, change, true);
  return b;
}

/** The link called `name`, or null when there is none (ENODEV). */
export function linkGet(name: string): Link | null {
  const m = msg(RTM_GETLINK, NLM_F_REQUEST | NLM_F_ACK).raw(ifinfo(0)).str(IFLA_IFNAME, name);
  try {
    const r = transact(m);
    return r[0] ? parseLink(r[0]) : null;
  } catch (e) {
    if (e instanceof NetlinkError && (e.errno === ENODEV || e.errno === EINVAL || e.errno === ERANGE)) return null;
    throw e;
  }
}

export function linkByIndex(index: number): Link | null {
  const m = msg(RTM_GETLINK, NLM_F_REQUEST | NLM_F_ACK).raw(ifinfo(index));
  try {
    const r = transact(m);
    return r[0] ? parseLink(r[0]) : null;
  } catch (e) {
    if (e instanceof NetlinkError && e.errno === ENODEV) return null;
    throw e;
  }
}

/** `ip link add NAME type KIND`. */
export function linkAdd(name: string, kind: string): void {
  const m = msg(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL).raw(ifinfo(0));
  m.str(IFLA_IFNAME, name);
  const li = m.nest(IFLA_LINKINFO);
  m.str(IFLA_INFO_KIND, kind);
  m.nestEnd(li);
  transact(m);
}

/** `ip link delete dev NAME` for a resolved index. */
export function linkDel(index: number): void {
  transact(msg(RTM_DELLINK, NLM_F_REQUEST | NLM_F_ACK).raw(ifinfo(index)));
}

/** `ip link set [mtu M] [up] dev`: one RTM_NEWLINK, as iproute2 sends it. */
export function linkSet(index: number, opts: { mtu?: number; up?: boolean }): void {
  const m = msg(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK).raw(
    ifinfo(index, opts.up ? IFF_UP : 0, opts.up !== undefined ? IFF_UP : 0),
  );
  if (opts.mtu !== undefined) m.u32(IFLA_MTU, opts.mtu);
  transact(m);
}

// ---- addresses ----

export interface Address {
  family: number;
  index: number;
  prefix: Prefix; // IFA_LOCAL (or IFA_ADDRESS) with ifa_prefixlen
  scope: number;
}

/** `ip -4|-6 address add P dev`: IFA_LOCAL and IFA_ADDRESS both, host scope for 127/8. */
export function addrAdd(index: number, p: Prefix): void {
  const hdr = new Uint8Array(8);
  hdr[0] = p.family;
  hdr[1] = p.len;
  hdr[3] = p.family === AF_INET && p.addr[0] === 127 ? RT_SCOPE_HOST : RT_SCOPE_UNIVERSE;
  new DataView(hdr.buffer).setUint32(4, index, true);
  const m = msg(RTM_NEWADDR, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL).raw(hdr);
  m.bytes(IFA_LOCAL, p.addr).bytes(IFA_ADDRESS, p.addr);
  transact(m);
}

export function addrDel(index: number, p: Prefix): void {
  const hdr = new Uint8Array(8);
  hdr[0] = p.family;
  hdr[1] = p.len;
  new DataView(hdr.buffer).setUint32(4, index, true);
  const m = msg(RTM_DELADDR, NLM_F_REQUEST | NLM_F_ACK).raw(hdr);
  m.bytes(IFA_LOCAL, p.addr).bytes(IFA_ADDRESS, p.addr);
  transact(m);
}

/** Addresses of one link (family 0 = both), in kernel dump order (IPv4 first), as `ip addr show dev`. */
export function addrList(index: number, family = 0): Address[] {
  const hdr = new Uint8Array(8);
  hdr[0] = family;
  new DataView(hdr.buffer).setUint32(4, index, true);
  const out: Address[] = [];
  for (const r of transact(msg(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP).raw(hdr))) {
    const v = new DataView(r.body.buffer, r.body.byteOffset, r.body.byteLength);
    const idx = v.getUint32(4, true);
    if (idx !== index) continue;
    const fam = r.body[0]!;
    if (family !== 0 && fam !== family) continue;
    const attrs = parseAttrs(r.body, 8);
    const addr = attrs.get(IFA_LOCAL) ?? attrs.get(IFA_ADDRESS);
    if (!addr) continue;
    out.push({ family: fam, index: idx, scope: r.body[3]!, prefix: { family: fam, addr: addr.slice(), len: r.body[1]! } });
  }
  return out;
}

// ---- routes ----

export interface Route {
  family: number;
  table: number;
  dst: Prefix;
  oif: number | null; // first nexthop's device for multipath routes
  multipath: boolean; // `ip` prints the nexthops on lines of their own
  gateway: Uint8Array | null;
  mtu: number | null; // RTAX_MTU metric
  type: number;
  protocol: number;
  scope: number;
  priority: number | null;
  prefsrc: Uint8Array | null;
  flags: number;
}

function parseRoute(r: Reply): Route {
  const b = r.body;
  const fam = b[0]!;
  const attrs = parseAttrs(b, 12);
  const table = u32of(attrs.get(RTA_TABLE)) ?? b[4]!;
  const dstBytes = attrs.get(RTA_DST);
  const size = fam === AF_INET6 ? 16 : 4;
  let oif = u32of(attrs.get(RTA_OIF)) ?? null;
  let gateway = attrs.get(RTA_GATEWAY)?.slice() ?? null;
  const mp = attrs.get(RTA_MULTIPATH);
  if (oif === null && mp && mp.length >= 8) {
    // struct rtnexthop { len u16, flags u8, hops u8, ifindex i32 } then attributes
    const v = new DataView(mp.buffer, mp.byteOffset, mp.byteLength);
    oif = v.getInt32(4, true);
    const nhLen = v.getUint16(0, true);
    gateway = parseAttrs(mp.subarray(0, nhLen), 8).get(RTA_GATEWAY)?.slice() ?? null;
  }
  let mtu: number | null = null;
  const metrics = attrs.get(RTA_METRICS);
  if (metrics) mtu = u32of(parseAttrs(metrics, 0).get(RTAX_MTU)) ?? null;
  return {
    family: fam,
    table,
    dst: { family: fam, addr: dstBytes ? dstBytes.slice() : new Uint8Array(size), len: b[1]! },
    oif,
    multipath: mp !== undefined,
    gateway,
    mtu,
    protocol: b[5]!,
    scope: b[6]!,
    type: b[7]!,
    priority: u32of(attrs.get(RTA_PRIORITY)) ?? null,
    prefsrc: attrs.get(RTA_PREFSRC)?.slice() ?? null,
    flags: new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(8, true),
  };
}

function rtmsg(family: number, dstLen: number, table: number, protocol: number, scope: number, type: number): Uint8Array {
  const h = new Uint8Array(12);
  h[0] = family;
  h[1] = dstLen;
  h[4] = table < 256 ? table : RT_TABLE_UNSPEC;
  h[5] = protocol;
  h[6] = scope;
  h[7] = type;
  return h;
}

/** `ip -4|-6 route add P dev IF [table T]`: a link-scope unicast route, protocol boot. */
export function routeAdd(dst: Prefix, oif: number, table = RT_TABLE_MAIN): void {
  const m = msg(RTM_NEWROUTE, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL).raw(
    rtmsg(dst.family, dst.len, table, RTPROT_BOOT, RT_SCOPE_LINK, RTN_UNICAST),
  );
  m.bytes(RTA_DST, dst.addr);
  if (table >= 256) m.u32(RTA_TABLE, table);
  m.u32(RTA_OIF, oif);
  transact(m);
}

/** `ip -4|-6 route del P dev IF [table T]`: scope "nowhere" matches a route of any scope, as ip sends it. */
export function routeDel(dst: Prefix, oif: number, table = RT_TABLE_MAIN): void {
  const m = msg(RTM_DELROUTE, NLM_F_REQUEST | NLM_F_ACK).raw(rtmsg(dst.family, dst.len, table, 0, RT_SCOPE_NOWHERE, 0));
  m.bytes(RTA_DST, dst.addr);
  if (table >= 256) m.u32(RTA_TABLE, table);
  m.u32(RTA_OIF, oif);
  transact(m);
}

/** All routes of one family (every table), in kernel dump order; cached clones excluded. */
export function routeList(family: number): Route[] {
  let replies: Reply[];
  try {
    replies = transact(msg(RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP).raw(rtmsg(family, 0, 0, 0, 0, 0)));
  } catch (e) {
    // An address family the kernel does not have (IPv6 disabled) lists nothing, as `ip` shows.
    if (e instanceof NetlinkError && (e.errno === EAFNOSUPPORT || e.errno === EINVAL)) return [];
    throw e;
  }
  return replies.map(parseRoute).filter((r) => (r.flags & RTM_F_CLONED) === 0);
}

/** `ip route show table T` would print something. */
export function tableHasRoutes(family: number, table: number): boolean {
  return routeList(family).some((r) => r.table === table);
}

/** `ip route show [table main] dev IF match P` would print something. */
export function routeMatchExists(p: Prefix, oif: number): boolean {
  return routeList(p.family).some(
    (r) => r.table === RT_TABLE_MAIN && r.oif === oif && r.dst.len <= p.len && samePrefix(r.dst.addr, p.addr, r.dst.len),
  );
}

/** `ip route show default` (IPv4, main table): the default routes in dump order. */
export function defaultRoutes(): Route[] {
  return routeList(AF_INET).filter((r) => r.table === RT_TABLE_MAIN && r.dst.len === 0);
}

/** `ip route get ADDR`: the route the kernel would use; NetlinkError (e.g. unreachable) otherwise. */
export function routeGet(addr: Uint8Array): Route | null {
  const family = addr.length === 16 ? AF_INET6 : AF_INET;
  const m = msg(RTM_GETROUTE, NLM_F_REQUEST | NLM_F_ACK).raw(rtmsg(family, addr.length * 8, 0, 0, 0, 0));
  m.bytes(RTA_DST, addr);
  const r = transact(m);
  return r[0] ? parseRoute(r[0]) : null;
}

const RTA_SRC = 2;
const RTA_MARK = 16;

/**
 * The output interface the kernel routes `dst` through when sending from local address `src`
 * with mark `mark` (`ip route get DST from SRC mark M`): the kernel's check of a sticky source.
 * -errno when there is no such route (EINVAL, ENETUNREACH: `src` is no local address, ...).
 * `s`: a socket in the namespace to ask (the UDP socket's).
 */
export function routeOutputIf(s: NetlinkSocket, family: number, dst: Uint8Array, src: Uint8Array, mark: number): number {
  const n = family === AF_INET6 ? 16 : 4;
  const m = msg(RTM_GETROUTE, NLM_F_REQUEST | NLM_F_ACK).raw(rtmsg(family, n * 8, 0, 0, 0, 0));
  m.bytes(RTA_DST, dst.subarray(0, n));
  m.bytes(RTA_SRC, src.subarray(0, n));
  if (mark !== 0) m.u32(RTA_MARK, mark);
  try {
    const r = transact(m, s);
    return r[0] ? (parseRoute(r[0]).oif ?? 0) : 0;
  } catch (e) {
    if (e instanceof NetlinkError) return -e.errno;
    throw e;
  }
}

const RTM_NEWNSID = 88;
const NETNSA_NSID = 1;
const NETNSA_FD = 3;

/**
 * Gives the namespace open as `nsFd` an id in ours (`ip netns set NAME auto`), so a netlink
 * socket with NETLINK_LISTEN_ALL_NSID here hears its link notifications. Ids hold no reference:
 * the namespace still dies with its last user. An id it already has (EEXIST) is fine; any other
 * refusal is ignored too: the id serves only later notifications, and Tun.link() reads the link
 * in that namespace now either way.
 */
export function netnsIdAssign(nsFd: number): void {
  const m = msg(RTM_NEWNSID, NLM_F_REQUEST | NLM_F_ACK).raw(new Uint8Array(4));
  m.u32(NETNSA_NSID, 0xffffffff);
  m.u32(NETNSA_FD, nsFd);
  try {
    transact(m);
  } catch (e) {
    if (!(e instanceof NetlinkError)) throw e;
  }
}

// ---- policy rules ----

export interface Rule {
  family: number;
  priority: number;
  table: number;
  invert: boolean;
  action: number;
  fwmark: number | null;
  fwmask: number | null;
  suppressPrefixlen: number | null;
  src: Prefix | null;
  dst: Prefix | null;
  tos: number;
  iif: string | null;
  oif: string | null;
}

export interface RuleSpec {
  table: number;
  invert?: boolean;
  fwmark?: number;
  suppressPrefixlen?: number;
}

function fibRuleMsg(type: number, flags: number, family: number, spec: RuleSpec, action: number): MsgBuilder {
  const h = new Uint8Array(12);
  h[0] = family;
  h[4] = spec.table < 256 ? spec.table : RT_TABLE_UNSPEC;
  h[7] = action;
  new DataView(h.buffer).setUint32(8, spec.invert ? FIB_RULE_INVERT : 0, true);
  const m = msg(type, flags).raw(h);
  if (spec.fwmark !== undefined) m.u32(FRA_FWMARK, spec.fwmark);
  if (spec.table >= 256) m.u32(FRA_TABLE, spec.table);
  if (spec.suppressPrefixlen !== undefined) m.u32(FRA_SUPPRESS_PREFIXLEN, spec.suppressPrefixlen);
  return m;
}

/** `ip -4|-6 rule add [not] [fwmark M] table T [suppress_prefixlength N]`. */
export function ruleAdd(family: number, spec: RuleSpec): void {
  transact(fibRuleMsg(RTM_NEWRULE, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, family, spec, FR_ACT_TO_TBL));
}

/** `ip -4|-6 rule delete table T [suppress_prefixlength N]`: deletes the first matching rule. */
export function ruleDel(family: number, spec: RuleSpec): void {
  transact(fibRuleMsg(RTM_DELRULE, NLM_F_REQUEST | NLM_F_ACK, family, spec, FR_ACT_UNSPEC));
}

export function ruleList(family: number): Rule[] {
  const h = new Uint8Array(12);
  h[0] = family;
  let replies: Reply[];
  try {
    replies = transact(msg(RTM_GETRULE, NLM_F_REQUEST | NLM_F_DUMP).raw(h));
  } catch (e) {
    if (e instanceof NetlinkError && (e.errno === EAFNOSUPPORT || e.errno === EINVAL)) return [];
    throw e;
  }
  return replies.map((r) => {
    const b = r.body;
    const attrs = parseAttrs(b, 12);
    const flags = new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(8, true);
    const sp = u32of(attrs.get(FRA_SUPPRESS_PREFIXLEN));
    return {
      family: b[0]!,
      priority: u32of(attrs.get(FRA_PRIORITY)) ?? 0,
      table: u32of(attrs.get(FRA_TABLE)) ?? b[4]!,
      invert: (flags & FIB_RULE_INVERT) !== 0,
      action: b[7]!,
      fwmark: u32of(attrs.get(FRA_FWMARK)) ?? null,
      fwmask: u32of(attrs.get(FRA_FWMASK)) ?? null,
      // The kernel reports "no suppression" as -1 (0xffffffff) or omits the attribute.
      suppressPrefixlen: sp === undefined || sp === 0xffffffff ? null : sp,
      src: b[2] ? { family: b[0]!, addr: attrs.get(FRA_SRC)?.slice() ?? new Uint8Array(0), len: b[2]! } : null,
      dst: b[1] ? { family: b[0]!, addr: attrs.get(FRA_DST)?.slice() ?? new Uint8Array(0), len: b[1]! } : null,
      tos: b[3]!,
      iif: cstr(attrs.get(FRA_IIFNAME)) ?? null,
      oif: cstr(attrs.get(FRA_OIFNAME)) ?? null,
    };
  });
}

/** if_nametoindex: 0 when there is no such link. */
export function nameToIndex(name: string): number {
  const e = new TextEncoder().encode(name);
  const b = new Uint8Array(e.length + 1);
  b.set(e);
  return libc.if_nametoindex(b);
}
