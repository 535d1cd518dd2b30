// A Linux TUN device (IFF_TUN | IFF_NO_PI). The fd is non-blocking; readiness comes from the
// io-loop poller, so reads never stall the event loop.
//
// With IFF_VNET_HDR (the default) every read and write carries a virtio_net_hdr, and the
// offloads of tun-offload.ts apply: TCP segments merged on write (GRO), and with TSO asked for
// (TUNSETOFFLOAD) TCP super-packets and unfinished checksums taken on read and cut or completed
// there. If the kernel refuses a merged packet, merging stops for the device's lifetime.

import { fstatSync } from "node:fs";
import { EAGAIN, EBADFD, EINTR, EINVAL } from "../../core/errno.ts";
import {
  IFF_NO_PI,
  IFF_TUN,
  O_CLOEXEC,
  O_NONBLOCK,
  O_RDWR,
  SysError,
  TUNSETIFF,
  addr,
  cstr,
  errno,
  getIfFlags,
  getIfMtu,
  ifName,
  ifreq,
  ioctlValue,
  libc,
  setIfMtu,
  AF_INET,
  SOCK_DGRAM,
  SOCK_CLOEXEC,
} from "./libc.ts";
import { homeNetnsInode, runInNetns } from "./netns.ts";
import { netnsIdAssign } from "./rtnetlink.ts";
import { GsoSplitter, TcpMerger, VNET_HDR_LEN, type Deliver } from "./tun-offload.ts";

const IFF_VNET_HDR = 0x4000;
const TUNSETOFFLOAD = 0x400454d0;
const TUN_F_CSUM = 1;
const TUN_F_TSO4 = 2;
const TUN_F_TSO6 = 4;
const TUNGETIFF = 0x800454d2;
/** _IO('T', 227): an fd of the namespace the device lives in now (Linux 5.2). */
const TUNGETDEVNETNS = 0x54e3;
/** The daemon's own namespace (its inode), looked up on first need. */
let homeIno: number | undefined;

/** Where the device is and its state there; see Tun.link(). */
export interface LinkState {
  /** Its name now (a move may rename it). */
  name: string;
  flags: number;
  mtu: number;
  /** It lives in another namespace than the daemon. */
  away: boolean;
}
export interface TunOptions {
  /** Open with IFF_VNET_HDR and merge TCP segments on write (default true). */
  gro?: boolean;
  /** Also take TCP super-packets and unfinished checksums on read (default: same as gro). */
  tso?: boolean;
}

export class Tun {
  /** -1 once closed. */
  fd: number;
  /** The interface name; follows a rename seen by link(). */
  name: string;
  readonly vnet: boolean;
  private lastBuf: Uint8Array | null = null;
  private lastPtr = 0;

  private readonly gro = new TcpMerger();
  private readonly groPtr = addr(this.gro.buf, 0);
  private readonly split = new GsoSplitter();
  private readonly zeroHdr = new Uint8Array(VNET_HDR_LEN);
  /** struct iovec[2]: the zero header, then the packet; 32-bit words, so no BigInt per write. */
  private readonly iov = new Uint32Array(8);
  /** Statistics: writes issued. */
  writes = 0;
  /** Merging on write; switched off if the kernel rejects a merged packet. */
  groEnabled = true;
  private readonly rbuf = new Uint8Array(VNET_HDR_LEN + 65536 + 256);
  private readonly rbufPtr = addr(this.rbuf, 0);

  private constructor(fd: number, name: string, vnet: boolean) {
    this.fd = fd;
    this.name = name;
    this.vnet = vnet;
    const hdr = addr(this.zeroHdr, 0);
    this.iov[0] = hdr % 4294967296;
    this.iov[1] = Math.floor(hdr / 4294967296);
    this.iov[2] = VNET_HDR_LEN;
  }

  /** Statistics: packets merged into a previous one on write. */
  get merged(): number {
    return this.gro.merged;
  }

  /** Statistics: reads that were super-packets, and segments cut from them. */
  get superReads(): number {
    return this.split.superReads;
  }

  get segments(): number {
    return this.split.segments;
  }

  /**
   * Wraps an fd that already behaves like a TUN (one packet per read/write). Tests use a
   * SOCK_DGRAM socketpair to check segmentation and merging byte for byte.
   */
  static fromFd(fd: number, name: string, vnet: boolean): Tun {
    return new Tun(fd, name, vnet);
  }

  /** Creates (or attaches to) the TUN named `name`; the kernel picks a name for "" or "wg%d". */
  static open(name: string, opts: TunOptions = {}): Tun {
    const vnet = opts.gro ?? true;
    const fd = libc.open(cstr("/dev/net/tun"), O_RDWR | O_NONBLOCK | O_CLOEXEC, 0);
    if (fd < 0) throw new SysError("open(/dev/net/tun)", errno());
    const req = ifreq(name);
    new DataView(req.buffer).setUint16(16, IFF_TUN | IFF_NO_PI | (vnet ? IFF_VNET_HDR : 0), true);
    if (libc.ioctl(fd, TUNSETIFF, req) < 0) {
      const e = errno();
      libc.close(fd);
      throw new SysError("ioctl(TUNSETIFF)", e);
    }
    if (vnet && (opts.tso ?? true)) {
      // Best effort: without it the kernel just keeps segmenting for us.
      ioctlValue(fd, TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6);
    }
    return new Tun(fd, ifName(req), vnet);
  }

  /**
   * Reads one packet from the device and hands `deliver` one or more plain IP packets (a TSO
   * super-packet is cut into segments; a pending checksum is completed). Buffers are only valid
   * during the callback. Returns the number delivered, 0 when nothing was queued, or -errno
   * (EBADFD/EIO: the device is gone).
   */
  receive(deliver: Deliver): number {
    const r = this.rbuf;
    const n = Number(libc.read(this.fd, this.rbufPtr, r.length));
    if (n < 0) {
      const e = errno();
      return e === EAGAIN || e === EINTR ? 0 : -e;
    }
    if (this.vnet) return this.split.split(r, n, deliver);
    if (n === 0) return 0;
    deliver(r, 0, n);
    return 1;
  }

  /**
   * Writes one IP packet (possibly held back to merge with the next ones: call flush() at the
   * end of each batch). Returns len, or -errno (a full queue drops, like the kernel).
   */
  write(buf: Uint8Array, off: number, len: number): number {
    if (!this.vnet) return this.writeRaw(buf, off, len);
    if (this.gro.append(buf, off, len)) return len;
    this.flush();
    if (this.groEnabled && this.gro.start(buf, off, len)) return len;
    return this.writeRaw(buf, off, len);
  }

  /** Writes out the packet being merged, if any. */
  flush(): void {
    const bytes = this.gro.finish();
    if (bytes === 0) return;
    const n = Number(libc.write(this.fd, this.groPtr, bytes));
    this.writes++;
    // A kernel that refuses our GSO packets (EINVAL): stop merging; TCP resends what was lost.
    if (n < 0 && this.gro.count > 1 && errno() === EINVAL) this.groEnabled = false;
    this.gro.clear();
  }

  /** One packet with an all-zero virtio header (no GSO, checksum already complete). */
  private writeRaw(buf: Uint8Array, off: number, len: number): number {
    if (buf !== this.lastBuf) {
      this.lastBuf = buf;
      this.lastPtr = addr(buf, 0);
    }
    this.writes++;
    let n: number;
    if (this.vnet) {
      const p = this.lastPtr + off;
      this.iov[4] = p % 4294967296;
      this.iov[5] = Math.floor(p / 4294967296);
      this.iov[6] = len;
      n = Number(libc.writev(this.fd, this.iov, 2));
      if (n >= 0) return n - VNET_HDR_LEN;
    } else {
      n = Number(libc.write(this.fd, this.lastPtr + off, len));
      if (n >= 0) return n;
    }
    return -errno();
  }

  mtu(): number {
    return getIfMtu(this.name);
  }

  setMtu(mtu: number): void {
    setIfMtu(this.name, mtu);
  }

  /**
   * The device's link state wherever it lives, null once it is deleted, undefined when it
   * cannot be read just now. The TUN fd stays attached to the device when the link moves to
   * another namespace (`ip link set IF netns NS`), and is detached (TUNGETIFF: EBADFD) only when
   * the device is gone, also when the namespace holding it was deleted. Flags and MTU are read inside that namespace; it also gets an id in
   * ours, so the link monitor hears its notifications. Nothing here keeps that namespace alive.
   */
  link(): LinkState | null | undefined {
    const req = new Uint8Array(40);
    if (libc.ioctl(this.fd, TUNGETIFF, req) < 0) return errno() === EBADFD || this.fd < 0 ? null : this.linkHere();
    this.name = ifName(req);
    const nsFd = ioctlValue(this.fd, TUNGETDEVNETNS, 0);
    if (nsFd < 0) return this.linkHere();
    try {
      if (fstatSync(nsFd).ino === (homeIno ??= homeNetnsInode())) return this.linkHere();
      netnsIdAssign(nsFd);
      return runInNetns(nsFd, `the namespace of ${this.name}`, (): LinkState | undefined => {
        const sock = libc.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (sock < 0) return undefined;
        try {
          const flags = getIfFlags(this.name, sock);
          return flags < 0 ? undefined : { name: this.name, flags, mtu: getIfMtu(this.name, sock), away: true };
        } finally {
          libc.close(sock);
        }
      });
    } catch {
      return undefined; // setns refused: try again at the next notification
    } finally {
      libc.close(nsFd);
    }
  }

  /** Read by name in the daemon's namespace; -ENODEV here means only "not here". */
  private linkHere(): LinkState | undefined {
    const flags = getIfFlags(this.name);
    if (flags < 0) return undefined;
    return { name: this.name, flags, mtu: getIfMtu(this.name), away: false };
  }

  close(): void {
    if (this.fd >= 0) libc.close(this.fd);
    this.fd = -1;
    this.gro.clear();
  }
}
