// bun:ffi bindings to the few libc calls the Linux daemon needs, plus the kernel constants and
// struct layouts (x86_64/aarch64 LP64) they take. Every call is synchronous: callers use
// non-blocking fds and wait for readiness elsewhere (see io-loop.ts), never a blocking call on
// the main thread.

import { dlopen, FFIType, ptr, read, type Pointer } from "bun:ffi";
import { strerror } from "../../core/errno.ts";

const { i32, u32, i64, u64, ptr: P } = FFIType;

const lib = dlopen("libc.so.6", {
  open: { args: [P, i32, i32], returns: i32 },
  close: { args: [i32], returns: i32 },
  dup2: { args: [i32, i32], returns: i32 },
  read: { args: [i32, P, u64], returns: i64 },
  write: { args: [i32, P, u64], returns: i64 },
  writev: { args: [i32, P, i32], returns: i64 },
  ioctl: { args: [i32, u64, P], returns: i32 },
  fcntl: { args: [i32, i32, i64], returns: i32 },
  socket: { args: [i32, i32, i32], returns: i32 },
  socketpair: { args: [i32, i32, i32, P], returns: i32 },
  setsockopt: { args: [i32, i32, i32, P, u32], returns: i32 },
  getsockopt: { args: [i32, i32, i32, P, P], returns: i32 },
  bind: { args: [i32, P, u32], returns: i32 },
  connect: { args: [i32, P, u32], returns: i32 },
  getsockname: { args: [i32, P, P], returns: i32 },
  recvmmsg: { args: [i32, P, u32, i32, P], returns: i32 },
  sendmmsg: { args: [i32, P, u32, i32], returns: i32 },
  sendto: { args: [i32, P, u64, i32, P, u32], returns: i64 },
  sendmsg: { args: [i32, P, i32], returns: i64 },
  recv: { args: [i32, P, u64, i32], returns: i64 },
  recvmsg: { args: [i32, P, i32], returns: i64 },
  sysconf: { args: [i32], returns: i64 },
  poll: { args: [P, u64, i32], returns: i32 },
  ppoll: { args: [P, u64, P, P], returns: i32 },
  eventfd: { args: [u32, i32], returns: i32 },
  if_nametoindex: { args: [P], returns: u32 },
  if_indextoname: { args: [u32, P], returns: P },
  __errno_location: { args: [], returns: P },
  memcpy: { args: [P, P, u64], returns: P },
});

export const libc = lib.symbols;

// ioctls whose argument is a plain integer rather than a pointer (TUNSETOFFLOAD).
const libValue = dlopen("libc.so.6", { ioctl: { args: [i32, u64, u64], returns: i32 } });
export const ioctlValue = libValue.symbols.ioctl;

// errno lives at a per-thread address that never moves, so look it up once per thread.
const errnoPtr = libc.__errno_location() as Pointer;
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
 * Copies between buffers without allocating a subarray view per call (~3x cheaper than
 * set(subarray) for packet-sized copies). Remembers the last source buffer's address, since the
 * hot callers copy from the same engine buffer over and over.
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

export const E = {
  EPERM: 1,
  ENOENT: 2,
  EINTR: 4,
  EIO: 5,
  EBADF: 9,
  EAGAIN: 11,
  EBUSY: 16,
  ENODEV: 19,
  EINVAL: 22,
  EMSGSIZE: 90,
  EBADFD: 77,
  EADDRINUSE: 98,
  ECONNREFUSED: 111,
} as const;

export const O_RDWR = 2;
export const O_NONBLOCK = 0o4000;
export const O_CLOEXEC = 0o2000000;
export const F_GETFL = 3;
export const F_SETFL = 4;

export const AF_INET = 2;
export const AF_INET6 = 10;
export const AF_NETLINK = 16;
export const AF_UNIX = 1;
export const SOCK_DGRAM = 2;
export const SOCK_RAW = 3;
export const SOCK_NONBLOCK = 0o4000;
export const SOCK_CLOEXEC = 0o2000000;
export const NETLINK_ROUTE = 0;
export const NETLINK_GENERIC = 16;
export const SOL_NETLINK = 270;
export const NETLINK_CAP_ACK = 10;
export const NETLINK_EXT_ACK = 11;
export const NETLINK_GET_STRICT_CHK = 12;
/** struct sockaddr_nl */
export const SOCKADDR_NL_SIZE = 12;
export const RTMGRP_LINK = 1;

export const SOL_SOCKET = 1;
export const SO_REUSEADDR = 2;
export const SO_SNDBUF = 7;
export const SO_RCVBUF = 8;
export const SO_SNDBUFFORCE = 32;
export const SO_RCVBUFFORCE = 33;
export const SO_MARK = 36;
export const IPPROTO_IP = 0;
export const IPPROTO_IPV6 = 41;
export const IP_PKTINFO = 8;
export const IPV6_V6ONLY = 26;
export const IPV6_RECVPKTINFO = 49;
export const IPV6_PKTINFO = 50;
export const MSG_DONTWAIT = 0x40;
export const MSG_TRUNC = 0x20;
export const _SC_PAGESIZE = 30;

export const POLLIN = 1;
export const POLLERR = 8;
export const POLLHUP = 16;
export const POLLNVAL = 32;
export const EFD_NONBLOCK = 0o4000;
export const EFD_CLOEXEC = 0o2000000;

export const TUNSETIFF = 0x400454ca;
export const IFF_TUN = 0x0001;
export const IFF_NO_PI = 0x1000;
export const IFF_UP = 0x1;
export const SIOCGIFFLAGS = 0x8913;
export const SIOCSIFFLAGS = 0x8914;
export const SIOCGIFMTU = 0x8921;
export const SIOCSIFMTU = 0x8922;
export const IFNAMSIZ = 16;
export const IFREQ_SIZE = 40;

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
  if (nb.length >= IFNAMSIZ) throw new SysError("ifreq", E.EINVAL);
  req.set(nb, 0);
  return req;
}

let ctlFd = -1;
/** A throwaway datagram socket for interface ioctls (flags, MTU). */
export function controlSocket(): number {
  if (ctlFd < 0) ctlFd = check("socket", libc.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  return ctlFd;
}

/** Interface flags, or -errno (ENODEV once the link is gone). */
export function getIfFlags(name: string): number {
  const req = ifreq(name);
  if (libc.ioctl(controlSocket(), SIOCGIFFLAGS, req) < 0) return -errno();
  return new DataView(req.buffer).getUint16(16, true);
}

export function setIfFlags(name: string, flags: number): void {
  const req = ifreq(name);
  new DataView(req.buffer).setUint16(16, flags, true);
  check("ioctl(SIOCSIFFLAGS)", libc.ioctl(controlSocket(), SIOCSIFFLAGS, req));
}

/** Interface MTU, or -errno. */
export function getIfMtu(name: string): number {
  const req = ifreq(name);
  if (libc.ioctl(controlSocket(), SIOCGIFMTU, req) < 0) return -errno();
  return new DataView(req.buffer).getInt32(16, true);
}

export function setIfMtu(name: string, mtu: number): void {
  const req = ifreq(name);
  new DataView(req.buffer).setInt32(16, mtu, true);
  check("ioctl(SIOCSIFMTU)", libc.ioctl(controlSocket(), SIOCSIFMTU, req));
}

export function setNonBlocking(fd: number): void {
  const fl = check("fcntl", libc.fcntl(fd, F_GETFL, 0));
  check("fcntl", libc.fcntl(fd, F_SETFL, fl | O_NONBLOCK));
}
