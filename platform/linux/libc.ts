// bun:ffi bindings to the C library: `libc` holds the calls the daemon makes, and
// libcFunctions() binds the few more that single modules need (setns, isatty, getaddrinfo...);
// plus the kernel constants and struct layouts (x86_64/aarch64 LP64) they take. libc.so.6 is
// opened here and in one other place: io-loop.ts's poller Worker binds poll itself, as a Worker
// has its own module instances and its inline source imports nothing but bun:ffi. Every call is
// synchronous: callers use non-blocking fds and wait for readiness elsewhere (see io-loop.ts),
// never a blocking call on the main thread.

import { dlopen, FFIType, linkSymbols, ptr, read, type ConvertFns, type FFIFunction, type Pointer } from "bun:ffi";
import { EINVAL, strerror } from "../../core/errno.ts";

const { i32, u32, i64, i64_fast, u64, ptr: P } = FFIType;

// What binding everything else takes: the dynamic linker's lookups, and errno.
const dl = dlopen("libc.so.6", {
  dlopen: { args: [P, i32], returns: P },
  dlsym: { args: [P, P], returns: P },
  __errno_location: { args: [], returns: P },
}).symbols;

/** Native address of a bun:ffi function (every one carries it as `.ptr`, absent from the types). */
export const fnAddress = (f: unknown): Pointer => (f as { ptr: Pointer }).ptr;

/**
 * Binds `defs` to the functions of those names in the library `handle` (null: RTLD_DEFAULT, the
 * libraries the process runs on); null when one of them is missing.
 */
export function bindFunctions<S extends Record<string, FFIFunction>>(handle: Pointer | null, defs: S): ConvertFns<S> | null {
  const linked: Record<string, FFIFunction> = {};
  for (const [name, def] of Object.entries(defs)) {
    const fn = dl.dlsym(handle, cstr(name)) as Pointer | null;
    if (fn === null) return null;
    linked[name] = { ...def, ptr: fn };
  }
  return linkSymbols(linked as S).symbols;
}

/**
 * Binds C library functions, for the modules that need a few beyond `libc` and bind them on
 * first use. dlsym finds them among the libraries the process already runs on (RTLD_DEFAULT), so
 * libc.so.6 is not opened again.
 */
export function libcFunctions<S extends Record<string, FFIFunction>>(defs: S): ConvertFns<S> {
  const fns = bindFunctions(null, defs);
  if (fns === null) throw new Error(`the C library lacks one of ${Object.keys(defs).join(", ")}`);
  return fns;
}

const RTLD_LAZY = 1;
const libraries = new Map<string, Pointer | null>();

/** dlopen(3) handle of the shared library `soname`, opened once per process; null when missing. */
export function openLibrary(soname: string): Pointer | null {
  let h = libraries.get(soname);
  if (h === undefined) libraries.set(soname, (h = dl.dlopen(cstr(soname), RTLD_LAZY) as Pointer | null));
  return h;
}

const CALLS = {
  open: { args: [P, i32, i32], returns: i32 },
  close: { args: [i32], returns: i32 },
  dup2: { args: [i32, i32], returns: i32 },
  read: { args: [i32, P, u64], returns: i64_fast },
  write: { args: [i32, P, u64], returns: i64_fast },
  writev: { args: [i32, P, i32], returns: i64_fast },
  ioctl: { args: [i32, u64, P], returns: i32 },
  socket: { args: [i32, i32, i32], returns: i32 },
  socketpair: { args: [i32, i32, i32, P], returns: i32 },
  setsockopt: { args: [i32, i32, i32, P, u32], returns: i32 },
  getsockopt: { args: [i32, i32, i32, P, P], returns: i32 },
  bind: { args: [i32, P, u32], returns: i32 },
  connect: { args: [i32, P, u32], returns: i32 },
  getsockname: { args: [i32, P, P], returns: i32 },
  recvmmsg: { args: [i32, P, u32, i32, P], returns: i32 },
  sendmmsg: { args: [i32, P, u32, i32], returns: i32 },
  sendto: { args: [i32, P, u64, i32, P, u32], returns: i64_fast },
  recv: { args: [i32, P, u64, i32], returns: i64_fast },
  recvmsg: { args: [i32, P, i32], returns: i64_fast },
  sysconf: { args: [i32], returns: i64 },
  poll: { args: [P, u64, i32], returns: i32 },
  ppoll: { args: [P, u64, P, P], returns: i32 },
  eventfd: { args: [u32, i32], returns: i32 },
  if_nametoindex: { args: [P], returns: u32 },
  if_indextoname: { args: [u32, P], returns: P },
  memcpy: { args: [P, P, u64], returns: P },
} satisfies Record<string, FFIFunction>;
type Calls = ConvertFns<typeof CALLS>;

/** The calls the daemon makes, bound (all of them) by the first one made. */
export let libc: Calls = standIn();

/**
 * Until its first call `libc` is a stand-in whose functions bind the real table, put it in its
 * place and call through: a `wg` command that binds only isatty pays nothing for the daemon's
 * calls, and after the first call every caller reaches the bound functions directly.
 */
function standIn(): Calls {
  const calls: Record<string, (...args: unknown[]) => unknown> = {};
  for (const name of Object.keys(CALLS)) calls[name] = (...args) => (boundLibc()[name as keyof Calls] as (...a: unknown[]) => unknown)(...args);
  return calls as Calls;
}

let bound: Calls | null = null;
/** `libc` bound, where the functions themselves are needed (their addresses, fnAddress). */
function boundLibc(): Calls {
  if (bound === null) libc = bound = libcFunctions(CALLS);
  return bound;
}

let ioctlInt: ((fd: number, request: number | bigint, value: number | bigint) => number) | null = null;
/** ioctl for requests whose argument is a plain integer rather than a pointer (TUNSETOFFLOAD). */
export function ioctlValue(fd: number, request: number, value: number): number {
  ioctlInt ??= linkSymbols({ ioctl: { args: [i32, u64, u64], returns: i32, ptr: fnAddress(boundLibc().ioctl) } }).symbols.ioctl;
  return ioctlInt(fd, request, value);
}

// errno lives at a per-thread address that never moves, so look it up once per thread.
const errnoPtr = dl.__errno_location() as Pointer;
export function errno(): number {
  return read.i32(errnoPtr, 0);
}

/** An Error carrying the numeric errno, as DeviceIO.bind and callers expect. */
export class SysError extends Error {
  constructor(
    readonly call: string,
    readonly errno: number,
  ) {
    super(`${call}: ${strerror(errno)} (errno ${errno})`);
  }
}

export function check(call: string, rc: number): number {
  if (rc < 0) throw new SysError(call, errno());
  return rc;
}

export function cstr(s: string): Uint8Array {
  return new TextEncoder().encode(s + "\0");
}

/** Address of a byte inside a long-lived buffer (arenas are allocated once and kept alive). */
export function addr(buf: Uint8Array, off = 0): number {
  return ptr(buf, off);
}

/**
 * Copies between buffers with memcpy, without the subarray view per call that set(subarray)
 * allocates (hot paths do not allocate per packet). Remembers the last source buffer's address,
 * since the hot callers copy from the same engine buffer over and over.
 */
export class Copier {
  private src: Uint8Array | null = null;
  private srcPtr = 0;
  constructor(private readonly dstPtr: number) {}
  copy(dstOff: number, src: Uint8Array, srcOff: number, len: number): void {
    if (src !== this.src) {
      // A small typed array starts with its bytes inside the GC cell and JSC moves them out the
      // first time anything asks for its ArrayBuffer (subarray, .buffer): a pointer cached
      // before that goes stale. Asking first moves them now, to a place that stays put.
      void src.buffer;
      this.src = src;
      this.srcPtr = ptr(src, 0);
    }
    libc.memcpy(this.dstPtr + dstOff, this.srcPtr + srcOff, len);
  }
}

export const O_RDWR = 2;
export const O_NONBLOCK = 0o4000;
export const O_CLOEXEC = 0o2000000;

export const AF_INET = 2;
export const AF_INET6 = 10;
export const AF_NETLINK = 16;
export const AF_UNIX = 1;
export const SOCK_STREAM = 1;
export const SOCK_DGRAM = 2;
export const SOCK_RAW = 3;
export const SOCK_NONBLOCK = 0o4000;
export const SOCK_CLOEXEC = 0o2000000;
export const NETLINK_ROUTE = 0;
export const NETLINK_GENERIC = 16;
export const SOL_NETLINK = 270;
export const NETLINK_EXT_ACK = 11;
export const NETLINK_GET_STRICT_CHK = 12;
/** struct sockaddr_nl */
export const SOCKADDR_NL_SIZE = 12;
export const RTMGRP_LINK = 1;

export const SOL_SOCKET = 1;
export const SO_SNDBUF = 7;
export const SO_RCVBUF = 8;
export const SO_SNDBUFFORCE = 32;
export const SO_RCVBUFFORCE = 33;
export const SO_MARK = 36;
export const IPPROTO_IPV6 = 41;
export const IPV6_V6ONLY = 26;
export const IPV6_RECVPKTINFO = 49;
export const IPV6_PKTINFO = 50;
export const MSG_DONTWAIT = 0x40;
export const MSG_TRUNC = 0x20;
export const _SC_PAGESIZE = 30;

export const POLLIN = 1;
export const EFD_NONBLOCK = 0o4000;
export const EFD_CLOEXEC = 0o2000000;

export const TUNSETIFF = 0x400454ca;
export const IFF_TUN = 0x0001;
export const IFF_NO_PI = 0x1000;
export const IFF_UP = 0x1;
const SIOCGIFFLAGS = 0x8913;
const SIOCGIFMTU = 0x8921;
const SIOCSIFMTU = 0x8922;
export const IFNAMSIZ = 16;
const IFREQ_SIZE = 40;

// struct layouts (LP64)
export const SOCKADDR_IN6_SIZE = 28;
export const IOVEC_SIZE = 16;
export const MSGHDR_SIZE = 56;
export const MMSGHDR_SIZE = 64;
export const MSG_NAME = 0;
export const MSG_NAMELEN = 8;
export const MSG_IOV = 16;
export const MSG_IOVLEN = 24;
export const MSG_CONTROL = 32;
export const MSG_CONTROLLEN = 40;
export const MSG_FLAGS = 48;
export const MMSG_LEN = 56;
export const CMSG_HDR = 16;
/** CMSG_SPACE(sizeof(struct in6_pktinfo)) */
export const PKTINFO6_SPACE = 40;

export function setInt(fd: number, level: number, opt: number, value: number): number {
  const v = new Int32Array([value]);
  return libc.setsockopt(fd, level, opt, v, 4);
}

export function getInt(fd: number, level: number, opt: number): number {
  const v = new Int32Array(1);
  const l = new Uint32Array([4]);
  check("getsockopt", libc.getsockopt(fd, level, opt, v, l));
  return v[0]!;
}

/** A struct ifreq with the interface name filled in. */
export function ifreq(name: string): Uint8Array {
  const req = new Uint8Array(IFREQ_SIZE);
  const nb = new TextEncoder().encode(name);
  if (nb.length >= IFNAMSIZ) throw new SysError("ifreq", EINVAL);
  req.set(nb, 0);
  return req;
}

/** The interface name at the start of `buf` (struct ifreq, if_indextoname's output), NUL-terminated. */
export function ifName(buf: Uint8Array): string {
  const end = buf.indexOf(0);
  return new TextDecoder().decode(buf.subarray(0, end < 0 ? IFNAMSIZ : end));
}

let ctlFd = -1;
/** A throwaway datagram socket for interface ioctls (flags, MTU). */
function controlSocket(): number {
  if (ctlFd < 0) ctlFd = check("socket", libc.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  return ctlFd;
}

/** Interface flags, or -errno (ENODEV once the link is gone); `sock` picks the namespace. */
export function getIfFlags(name: string, sock = controlSocket()): number {
  const req = ifreq(name);
  if (libc.ioctl(sock, SIOCGIFFLAGS, req) < 0) return -errno();
  return new DataView(req.buffer).getUint16(16, true);
}

/** Interface MTU, or -errno; `sock` picks the namespace. */
export function getIfMtu(name: string, sock = controlSocket()): number {
  const req = ifreq(name);
  if (libc.ioctl(sock, SIOCGIFMTU, req) < 0) return -errno();
  return new DataView(req.buffer).getInt32(16, true);
}

export function setIfMtu(name: string, mtu: number): void {
  const req = ifreq(name);
  new DataView(req.buffer).setInt32(16, mtu, true);
  check("ioctl(SIOCSIFMTU)", libc.ioctl(controlSocket(), SIOCSIFMTU, req));
}
