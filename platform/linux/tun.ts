// A Linux TUN device (IFF_TUN | IFF_NO_PI): one read or write is one IP packet. The fd is
// non-blocking; readiness comes from the io-loop poller, so reads never stall the event loop.

import {
  E,
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
  ifreq,
  libc,
  setIfMtu,
} from "./libc.ts";

export const DEFAULT_MTU = 1420;

export class Tun {
  /** -1 once closed. */
  fd: number;
  readonly name: string;
  private lastBuf: Uint8Array | null = null;
  private lastPtr = 0;

  private constructor(fd: number, name: string) {
    this.fd = fd;
    this.name = name;
  }

  /** Creates (or attaches to) the TUN named `name`; the kernel picks a name for "" or "wg%d". */
  static open(name: string): Tun {
    const fd = libc.open(cstr("/dev/net/tun"), O_RDWR | O_NONBLOCK | O_CLOEXEC, 0);
    if (fd < 0) throw new SysError("open(/dev/net/tun)", errno());
    const req = ifreq(name);
    new DataView(req.buffer).setUint16(16, IFF_TUN | IFF_NO_PI, true);
    if (libc.ioctl(fd, TUNSETIFF, req) < 0) {
      const e = errno();
      libc.close(fd);
      throw new SysError("ioctl(TUNSETIFF)", e);
    }
    const end = req.indexOf(0);
    const actual = new TextDecoder().decode(req.subarray(0, end < 0 ? 16 : end));
    return new Tun(fd, actual);
  }

  /**
   * Reads one packet into buf[off..]. Returns its length, 0 when nothing is queued, or -errno
   * (EBADFD/EIO mean the device is gone).
   */
  read(buf: Uint8Array, off: number, max: number): number {
    const n = Number(libc.read(this.fd, addr(buf, off), max));
    if (n >= 0) return n;
    const e = errno();
    return e === E.EAGAIN || e === E.EINTR ? 0 : -e;
  }

  /** Writes one packet. Returns bytes written or -errno (a full queue drops, like the kernel). */
  write(buf: Uint8Array, off: number, len: number): number {
    // The engine writes from the same buffer every time: resolve its address once.
    if (buf !== this.lastBuf) {
      this.lastBuf = buf;
      this.lastPtr = addr(buf, 0);
    }
    const n = Number(libc.write(this.fd, this.lastPtr + off, len));
    return n >= 0 ? n : -errno();
  }

  mtu(): number {
    return getIfMtu(this.name);
  }

  setMtu(mtu: number): void {
    setIfMtu(this.name, mtu);
  }

  /** Link flags, or -ENODEV when the interface was deleted. */
  flags(): number {
    return getIfFlags(this.name);
  }

  close(): void {
    if (this.fd >= 0) libc.close(this.fd);
    this.fd = -1;
  }
}
