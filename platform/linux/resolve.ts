// glibc's getaddrinfo/getnameinfo through FFI, because wg's observable behaviour *is* glibc's:
// port strings go through strtoul and the udp services database, hosts through NSS with RFC 6724
// ordering and scope-id names, and the error texts are gai_strerror's.
import { ptr, read, toArrayBuffer, type Pointer } from "bun:ffi";
import { strerror } from "../../core/errno.ts";
import { AF_INET, AF_INET6, SOCK_DGRAM, errno, libcFunctions } from "./libc.ts";

const IPPROTO_UDP = 17, AI_PASSIVE = 1;
const NI_NUMERICHOST = 1, NI_NUMERICSERV = 2, NI_DGRAM = 16;
export const EAI_NONAME = -2, EAI_AGAIN = -3, EAI_FAIL = -4, EAI_NODATA = -5, EAI_SYSTEM = -11;

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

/** Byte string (one char per byte) -> NUL-terminated C string buffer. */
function cstr(s: string): Buffer {
  return Buffer.concat([Buffer.from(s, "latin1"), Buffer.alloc(1)]);
}

export interface GaiError {
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
  const hostBuf = host === null ? null : cstr(host);
  const servBuf = cstr(service);
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

/** getnameinfo(NI_DGRAM|NI_NUMERICSERV|NI_NUMERICHOST) text as wg prints endpoints. */
function numericName(r: Resolved): string | null {
  const c = netdb();
  const host = Buffer.alloc(4097), serv = Buffer.alloc(513);
  const ret = c.getnameinfo(ptr(r.addr), r.addr.length, ptr(host), 4097, ptr(serv), 513, NI_DGRAM | NI_NUMERICSERV | NI_NUMERICHOST);
  if (ret !== 0) return null;
  const h = host.subarray(0, host.indexOf(0)).toString("latin1");
  const s = serv.subarray(0, serv.indexOf(0)).toString("latin1");
  return r.family === AF_INET6 && h.includes(":") ? `[${h}]:${s}` : `${h}:${s}`;
}

/** wg's parse_port: the port glibc makes of `value` (a number, or a udp service name). */
export function resolvePort(value: string): { port: number } | { error: string } {
  const r = getaddrinfo(null, value, AI_PASSIVE);
  if ("text" in r) return { error: r.text };
  return { port: r.addr.readUInt16BE(2) };
}

/** wg's parse_endpoint resolution step; `retry` false for the permanent failures. */
export function resolveEndpoint(host: string, port: string): { endpoint: string } | { error: string; retry: boolean } {
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
