// glibc's getaddrinfo/getnameinfo through FFI, because wg's observable behaviour *is* glibc's:
// port strings go through strtoul and the udp services database, hosts through NSS with RFC 6724
// ordering and scope-id names, and the error texts are gai_strerror's. Also the two directions
// between endpoint text and the sockaddr_in/in6 the kernel's netlink API carries.
import { ptr, read, toArrayBuffer, type Pointer } from "bun:ffi";
import { strerror } from "../../core/errno.ts";
import { inetNtop4, inetNtop6, inetPton4, inetPton6, splitHostPort } from "../../core/inet.ts";
import { AF_INET, AF_INET6, SOCK_DGRAM, errno, libcFunctions } from "./libc.ts";

const IPPROTO_UDP = 17, AI_PASSIVE = 1, AI_NUMERICHOST = 4, AI_NUMERICSERV = 0x400;
const NI_NUMERICHOST = 1, NI_NUMERICSERV = 2, NI_DGRAM = 16;
const EAI_NONAME = -2, EAI_FAIL = -4, EAI_NODATA = -5, EAI_SYSTEM = -11;

const bind = () =>
  libcFunctions({
    getaddrinfo: { args: ["ptr", "ptr", "ptr", "ptr"], returns: "i32" },
    freeaddrinfo: { args: ["ptr"], returns: "void" },
    getnameinfo: { args: ["ptr", "u32", "ptr", "u32", "ptr", "u32", "i32"], returns: "i32" },
    gai_strerror: { args: ["i32"], returns: "cstring" },
  });
let bound: ReturnType<typeof bind> | null = null;
/** The netdb.h functions, bound on first use. */
function netdb() {
  return (bound ??= bind());
}

/** Byte string (one char per byte, unlike libc.ts's UTF-8 cstr) -> NUL-terminated C string. */
function latin1Cstr(s: string): Buffer {
  return Buffer.concat([Buffer.from(s, "latin1"), Buffer.alloc(1)]);
}

interface GaiError {
  code: number;
  /** gai_strerror, or strerror(errno) for EAI_SYSTEM, as wg prints it. */
  text: string;
}

function gaiError(code: number): GaiError {
  if (code === EAI_SYSTEM) return { code, text: strerror(errno()) };
  return { code, text: String(netdb().gai_strerror(code)) };
}

interface Resolved {
  family: number;
  /** A copy of the sockaddr. */
  addr: Buffer;
}

function getaddrinfo(host: string | null, service: string, flags: number): Resolved | GaiError {
  const c = netdb();
  const hints = Buffer.alloc(48);
  hints.writeInt32LE(flags, 0);
  hints.writeInt32LE(0, 4);
  hints.writeInt32LE(SOCK_DGRAM, 8);
  hints.writeInt32LE(IPPROTO_UDP, 12);
  const res = new BigUint64Array(1);
  const hostBuf = host === null ? null : latin1Cstr(host);
  const servBuf = latin1Cstr(service);
  const ret = c.getaddrinfo(hostBuf ? ptr(hostBuf) : null, ptr(servBuf), ptr(hints), ptr(res));
  if (ret !== 0) return gaiError(ret);
  const ai = Number(res[0]) as Pointer;
  try {
    const family = read.i32(ai, 4);
    const addrlen = read.u32(ai, 16);
    const sa = read.ptr(ai, 24) as Pointer;
    const addr = Buffer.from(new Uint8Array(toArrayBuffer(sa, 0, addrlen)));
    if (!((family === AF_INET && addrlen === 16) || (family === AF_INET6 && addrlen === 28)))
      return { code: 0, text: "Neither IPv4 nor IPv6 address found" };
    return { family, addr };
  } finally {
    c.freeaddrinfo(ai);
  }
}

/** getnameinfo(NI_DGRAM|NI_NUMERICSERV|NI_NUMERICHOST) text as wg prints endpoints, or the error. */
function nameInfo(family: number, addr: Uint8Array): string | GaiError {
  const c = netdb();
  const host = Buffer.alloc(4097), serv = Buffer.alloc(513);
  const ret = c.getnameinfo(ptr(addr), addr.length, ptr(host), 4097, ptr(serv), 513, NI_DGRAM | NI_NUMERICSERV | NI_NUMERICHOST);
  if (ret !== 0) return gaiError(ret);
  const h = host.subarray(0, host.indexOf(0)).toString("latin1");
  const s = serv.subarray(0, serv.indexOf(0)).toString("latin1");
  return family === AF_INET6 && h.includes(":") ? `[${h}]:${s}` : `${h}:${s}`;
}

function numericName(r: Resolved): string | null {
  const t = nameInfo(r.family, r.addr);
  return typeof t === "string" ? t : null;
}

/** wg's parse_port: the port glibc makes of `value` (a number, or a udp service name). */
export function resolvePort(value: string): { port: number } | { error: string } {
  const r = getaddrinfo(null, value, AI_PASSIVE);
  if ("text" in r) return { error: r.text };
  return { port: r.addr.readUInt16BE(2) };
}

/**
 * wg's parse_endpoint resolution step; `retry` false for the permanent failures. A numeric
 * address in canonical form with a plain decimal port is what getaddrinfo and getnameinfo would
 * return unchanged, so it skips them (config files with thousands of endpoints).
 */
export function resolveEndpoint(host: string, port: string): { endpoint: string } | { error: string; retry: boolean } {
  if (/^(0|[1-9][0-9]{0,4})$/.test(port) && Number(port) <= 65535 && !host.includes("%")) {
    const v4 = inetPton4(host);
    if (v4 && inetNtop4(v4) === host) return { endpoint: `${host}:${port}` };
    const v6 = v4 ? null : inetPton6(host);
    if (v6) return { endpoint: `[${inetNtop6(v6)}]:${port}` };
  }
  const r = getaddrinfo(host, port, 0);
  if ("text" in r) {
    const permanent = r.code === 0 || r.code === EAI_NONAME || r.code === EAI_FAIL || r.code === EAI_NODATA;
    return { error: r.text, retry: !permanent };
  }
  // getnameinfo cannot fail for a numeric request on an address getaddrinfo produced.
  return { endpoint: numericName(r) ?? "" };
}

/** For endpoints a daemon reports: resolved and re-printed, null when unresolvable. */
export function formatDaemonEndpoint(host: string, port: string): string | null {
  const r = getaddrinfo(host, port, 0);
  if ("text" in r) return null;
  return numericName(r);
}

/**
 * wg's endpoint() for a sockaddr_in/in6 read from the kernel: getnameinfo's numeric text (a
 * nonzero IPv6 scope id is printed as the interface name for link-local addresses, else as a
 * number), or gai_strerror's text when getnameinfo fails. Without a scope id that text is
 * inet_ntop's plus the port, which core/inet.ts writes identically (no FFI call per peer).
 */
export function formatSockaddr(sa: Uint8Array): string {
  const v = new DataView(sa.buffer, sa.byteOffset, sa.byteLength);
  const family = sa.length >= 2 ? v.getUint16(0, true) : 0;
  if (family === AF_INET && sa.length === 16) return `${inetNtop4(sa.subarray(4, 8))}:${v.getUint16(2)}`;
  if (family === AF_INET6 && sa.length === 28 && v.getUint32(24, true) === 0) return `[${inetNtop6(sa.subarray(8, 24))}]:${v.getUint16(2)}`;
  const t = nameInfo(family, family === AF_INET ? sa.subarray(0, 16) : family === AF_INET6 ? sa.subarray(0, 28) : sa.subarray(0, 0));
  return typeof t === "string" ? t : t.text;
}

/**
 * The sockaddr_in (16 bytes) or sockaddr_in6 (28) for endpoint text in the form resolveEndpoint
 * and formatSockaddr print (`1.2.3.4:5`, `[v6]:5`, `[fe80::1%eth0]:5`); null for anything else.
 * Scope ids go through getaddrinfo (interface names); the rest is parsed here.
 */
export function endpointSockaddr(text: string): Uint8Array | null {
  const hp = splitHostPort(text);
  if (!hp) return null;
  const { host, port } = hp;
  const v4 = host.includes(":") ? null : inetPton4(host);
  const v6 = v4 || host.includes("%") ? null : inetPton6(host);
  if (v4 || v6) {
    // Written byte by byte: a DataView would make the small array materialise its buffer.
    const sa = new Uint8Array(v4 ? 16 : 28);
    const family = v4 ? AF_INET : AF_INET6, n = port;
    sa[0] = family;
    sa[2] = n >> 8;
    sa[3] = n & 0xff;
    sa.set(v4 ?? v6!, v4 ? 4 : 8);
    return sa;
  }
  const r = getaddrinfo(host, String(port), AI_NUMERICHOST | AI_NUMERICSERV);
  return "text" in r ? null : new Uint8Array(r.addr);
}
