// A Linux TUN device (IFF_TUN | IFF_NO_PI). The fd is non-blocking; readiness comes from the
// io-loop poller, so reads never stall the event loop.
//
// With IFF_VNET_HDR every read and write carries a 10-byte virtio_net_hdr. We use it on the
// write side for GRO: consecutive in-order TCP segments of one flow, as decrypted from one
// receive batch, are merged into one large packet that the kernel takes as a single GSO skb.
// The kernel's TCP receive path then runs once per ~40 segments instead of once per segment,
// which is most of what a TUN write costs. On the read side we ask for TSO (TUNSETOFFLOAD): the
// kernel hands us TCP super-packets of up to 64 KB (one read instead of ~45) and packets whose
// checksum is left to us; receive() cuts them into MTU-sized segments with correct checksums.

import { EAGAIN, EINTR, EINVAL } from "../../core/errno.ts";
import {
  Copier,
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
  ioctlValue,
  libc,
  setIfMtu,
} from "./libc.ts";

const IFF_VNET_HDR = 0x4000;
export const VNET_HDR_LEN = 10;
const VIRTIO_NET_HDR_F_NEEDS_CSUM = 1;
const VIRTIO_NET_HDR_GSO_TCPV4 = 1;
const VIRTIO_NET_HDR_GSO_TCPV6 = 4;
const TCP_FLAG_FIN = 0x01;
const TCP_FLAG_PSH = 0x08;
const TCP_FLAG_CWR = 0x80;
const TUNSETOFFLOAD = 0x400454d0;
const TUN_F_CSUM = 1;
const TUN_F_TSO4 = 2;
const TUN_F_TSO6 = 4;
const TCP_FLAG_ACK = 0x10;
/** Largest merged IP packet (IPv4 total length is 16 bits). */
const GRO_MAX = 65535;

export interface TunOptions {
  /** Open with IFF_VNET_HDR and merge TCP segments on write (default true). */
  gro?: boolean;
  /** Also take TCP super-packets and unfinished checksums on read (default: same as gro). */
  tso?: boolean;
}

export class Tun {
  /** -1 once closed. */
  fd: number;
  readonly name: string;
  /** Bytes before the IP packet in every read (the virtio header when vnet is on). */
  readonly readOffset: number;
  readonly vnet: boolean;
  private lastBuf: Uint8Array | null = null;
  private lastPtr = 0;

  // GRO state: one flow being merged, stored after a virtio header in `pend`.
  private readonly pend = new Uint8Array(VNET_HDR_LEN + GRO_MAX + 64);
  private readonly pendPtr: number;
  private readonly pendCopy: Copier;
  private pendLen = 0; // IP packet bytes in pend (0 = nothing pending)
  private pendCount = 0;
  private pendIpHl = 0;
  private pendHl = 0; // IP + TCP header length
  private pendGso = 0;
  private pendNextSeq = 0;
  private pendClosed = false;
  private readonly zeroHdr = new Uint8Array(VNET_HDR_LEN);
  private readonly iov = new BigUint64Array(4);
  /** Statistics: packets merged into a previous one, and writes issued. */
  merged = 0;
  writes = 0;
  writeErrors = 0;
  /** Merging on write; switched off if the kernel rejects a merged packet. */
  groEnabled = true;
  /** Statistics: reads that were super-packets, and segments cut from them. */
  superReads = 0;
  segments = 0;
  private readonly rbuf = new Uint8Array(VNET_HDR_LEN + 65536 + 256);
  private readonly rbufPtr = addr(this.rbuf, 0);
  private readonly seg = new Uint8Array(65536 + 256);
  private readonly segCopy = new Copier(addr(this.seg, 0));
  private readonly segView = new DataView(this.seg.buffer);
  private readonly rView = new DataView(this.rbuf.buffer);

  private constructor(fd: number, name: string, vnet: boolean) {
    this.fd = fd;
    this.name = name;
    this.vnet = vnet;
    this.readOffset = vnet ? VNET_HDR_LEN : 0;
    this.pendPtr = addr(this.pend, 0);
    this.pendCopy = new Copier(this.pendPtr);
    this.iov[0] = BigInt(addr(this.zeroHdr, 0));
    this.iov[1] = BigInt(VNET_HDR_LEN);
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
    const end = req.indexOf(0);
    const actual = new TextDecoder().decode(req.subarray(0, end < 0 ? 16 : end));
    return new Tun(fd, actual, vnet);
  }

  /**
   * Reads one packet into buf[off..]; the IP packet starts at off + readOffset. Returns the IP
   * packet's length, 0 when nothing is queued, or -errno (EBADFD/EIO: the device is gone).
   */
  read(buf: Uint8Array, off: number, max: number): number {
    const n = Number(libc.read(this.fd, addr(buf, off), max));
    if (n >= 0) return n > this.readOffset ? n - this.readOffset : 0;
    const e = errno();
    return e === EAGAIN || e === EINTR ? 0 : -e;
  }

  /**
   * Reads one packet from the device and hands `deliver` one or more plain IP packets (a TSO
   * super-packet is cut into segments; a pending checksum is completed). Buffers are only valid
   * during the callback. Returns the number delivered, 0 when nothing was queued, or -errno.
   */
  receive(deliver: (buf: Uint8Array, off: number, len: number) => void): number {
    const r = this.rbuf;
    const n = Number(libc.read(this.fd, this.rbufPtr, r.length));
    if (n < 0) {
      const e = errno();
      return e === EAGAIN || e === EINTR ? 0 : -e;
    }
    if (!this.vnet) {
      if (n === 0) return 0;
      deliver(r, 0, n);
      return 1;
    }
    const h = VNET_HDR_LEN;
    const len = n - h;
    if (len <= 0) return 0;
    const flags = r[0]!;
    const gsoType = r[1]! & 0x7f;
    if (gsoType === VIRTIO_NET_HDR_GSO_TCPV4 || gsoType === VIRTIO_NET_HDR_GSO_TCPV6) {
      return this.segment(len, this.rView.getUint16(4, true), this.rView.getUint16(6, true), deliver);
    }
    if ((flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) !== 0) {
      const start = this.rView.getUint16(6, true);
      const at = h + start + this.rView.getUint16(8, true);
      if (start < len && at + 2 <= n) {
        // The field holds the pseudo-header sum; add the rest and complement.
        // 0 and 0xffff are the same one's-complement zero; UDP requires the latter.
        const c = ~fold(sum16(r, h + start, n)) & 0xffff || 0xffff;
        r[at] = c >> 8;
        r[at + 1] = c & 0xff;
      }
    }
    deliver(r, h, len);
    return 1;
  }

  /** Cuts the TCP super-packet in rbuf into gso-sized segments with fixed headers and checksums. */
  private segment(len: number, gso: number, ipHl: number, deliver: (buf: Uint8Array, off: number, len: number) => void): number {
    const r = this.rbuf;
    const h = VNET_HDR_LEN;
    const v4 = r[h]! >> 4 === 4;
    if (v4) ipHl = (r[h]! & 15) * 4;
    else if (ipHl < 40) ipHl = 40;
    const t = h + ipHl;
    if (t + 20 > h + len || gso === 0) return 0;
    const thl = (r[t + 12]! >> 4) * 4;
    const hl = ipHl + thl;
    const payloadTotal = len - hl;
    if (payloadTotal <= 0) return 0;
    const seg = this.seg;
    const sv = this.segView;
    const seq0 = seqAt(r, t);
    const id0 = v4 ? (r[h + 4]! << 8) | r[h + 5]! : 0;
    const flags0 = r[t + 13]!;
    // Pseudo-header address sum, shared by every segment.
    let addrSum = 0;
    if (v4) for (let i = 12; i < 20; i += 2) addrSum += (r[h + i]! << 8) | r[h + i + 1]!;
    else for (let i = 8; i < 40; i += 2) addrSum += (r[h + i]! << 8) | r[h + i + 1]!;
    seg.set(r.subarray(h, h + hl), 0);
    let count = 0;
    for (let done = 0; done < payloadTotal; done += gso) {
      const plen = Math.min(gso, payloadTotal - done);
      const last = done + plen >= payloadTotal;
      const segLen = hl + plen;
      this.segCopy.copy(hl, r, h + hl + done, plen);
      if (v4) {
        sv.setUint16(2, segLen);
        sv.setUint16(4, (id0 + count) & 0xffff);
        sv.setUint16(10, 0);
        sv.setUint16(10, ~fold(sum16(seg, 0, 20)) & 0xffff);
      } else {
        sv.setUint16(4, segLen - 40);
      }
      sv.setUint32(ipHl + 4, (seq0 + done) >>> 0);
      let f = flags0;
      if (!last) f &= ~(TCP_FLAG_FIN | TCP_FLAG_PSH);
      if (count > 0) f &= ~TCP_FLAG_CWR;
      seg[ipHl + 13] = f;
      sv.setUint16(ipHl + 16, 0);
      const c = ~fold(addrSum + 6 + thl + plen + sum16(seg, ipHl, segLen)) & 0xffff;
      sv.setUint16(ipHl + 16, c);
      count++;
      deliver(seg, 0, segLen);
    }
    this.superReads++;
    this.segments += count;
    return count;
  }

  /**
   * Writes one IP packet (possibly held back to merge with the next ones: call flush() at the
   * end of each batch). Returns len, or -errno (a full queue drops, like the kernel).
   */
  write(buf: Uint8Array, off: number, len: number): number {
    if (!this.vnet) return this.writeRaw(buf, off, len);
    if (this.pendLen > 0 && this.tryAppend(buf, off, len)) return len;
    this.flush();
    if (this.tryStart(buf, off, len)) return len;
    return this.writeRaw(buf, off, len);
  }

  /** Writes out the packet being merged, if any. */
  flush(): void {
    if (this.pendLen === 0) return;
    const p = this.pend;
    const h = VNET_HDR_LEN;
    if (this.pendCount > 1) {
      const ipHl = this.pendIpHl;
      const v4 = p[h]! >> 4 === 4;
      const tcpLen = this.pendLen - ipHl;
      let sum: number;
      if (v4) {
        p[h + 2] = this.pendLen >> 8;
        p[h + 3] = this.pendLen & 0xff;
        p[h + 10] = p[h + 11] = 0;
        let s = 0;
        for (let i = 0; i < 20; i += 2) s += (p[h + i]! << 8) | p[h + i + 1]!;
        s = (s & 0xffff) + (s >>> 16);
        s = (s & 0xffff) + (s >>> 16);
        const c = ~s & 0xffff;
        p[h + 10] = c >> 8;
        p[h + 11] = c & 0xff;
        sum = 6 + tcpLen;
        for (let i = 12; i < 20; i += 2) sum += (p[h + i]! << 8) | p[h + i + 1]!;
      } else {
        const pl = this.pendLen - 40;
        p[h + 4] = pl >> 8;
        p[h + 5] = pl & 0xff;
        sum = 6 + tcpLen;
        for (let i = 8; i < 40; i += 2) sum += (p[h + i]! << 8) | p[h + i + 1]!;
      }
      sum = (sum & 0xffff) + (sum >>> 16);
      sum = (sum & 0xffff) + (sum >>> 16);
      // CHECKSUM_PARTIAL: the field holds the folded pseudo-header sum, not its complement.
      const t = h + ipHl;
      p[t + 16] = sum >> 8;
      p[t + 17] = sum & 0xff;
      p[0] = VIRTIO_NET_HDR_F_NEEDS_CSUM;
      p[1] = v4 ? VIRTIO_NET_HDR_GSO_TCPV4 : VIRTIO_NET_HDR_GSO_TCPV6;
      p[2] = this.pendHl & 0xff;
      p[3] = this.pendHl >> 8;
      p[4] = this.pendGso & 0xff;
      p[5] = this.pendGso >> 8;
      p[6] = ipHl;
      p[7] = 0;
      p[8] = 16;
      p[9] = 0;
    } else {
      p.fill(0, 0, VNET_HDR_LEN);
    }
    const n = Number(libc.write(this.fd, this.pendPtr, VNET_HDR_LEN + this.pendLen));
    this.writes++;
    if (n < 0) {
      this.writeErrors++;
      // A kernel that refuses our GSO packets (EINVAL): stop merging; TCP resends what was lost.
      if (this.pendCount > 1 && errno() === EINVAL) this.groEnabled = false;
    }
    this.pendLen = 0;
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
      this.iov[2] = BigInt(this.lastPtr + off);
      this.iov[3] = BigInt(len);
      n = Number(libc.writev(this.fd, this.iov, 2));
      if (n >= 0) return n - VNET_HDR_LEN;
    } else {
      n = Number(libc.write(this.fd, this.lastPtr + off, len));
      if (n >= 0) return n;
    }
    return -errno();
  }

  /** Starts a merge candidate if the packet is a plain in-order TCP data segment. */
  private tryStart(b: Uint8Array, o: number, len: number): boolean {
    if (!this.groEnabled) return false;
    const ipHl = tcpDataHeaderLen(b, o, len);
    if (ipHl <= 0) return false;
    const t = o + ipHl;
    const thl = (b[t + 12]! >> 4) * 4;
    if ((b[t + 13]! & TCP_FLAG_PSH) !== 0) return false; // would end the merge at once
    const payload = len - ipHl - thl;
    this.pendCopy.copy(VNET_HDR_LEN, b, o, len);
    this.pendLen = len;
    this.pendCount = 1;
    this.pendIpHl = ipHl;
    this.pendHl = ipHl + thl;
    this.pendGso = payload;
    this.pendNextSeq = (seqAt(b, t) + payload) >>> 0;
    this.pendClosed = false;
    return true;
  }

  private tryAppend(b: Uint8Array, o: number, len: number): boolean {
    if (this.pendClosed) return false;
    const ipHl = tcpDataHeaderLen(b, o, len);
    if (ipHl !== this.pendIpHl) return false;
    const p = this.pend;
    const h = VNET_HDR_LEN;
    const t = o + ipHl;
    const pt = h + ipHl;
    const thl = (b[t + 12]! >> 4) * 4;
    if (ipHl + thl !== this.pendHl) return false;
    const payload = len - this.pendHl;
    if (payload > this.pendGso || this.pendLen + payload > GRO_MAX) return false;
    if (seqAt(b, t) !== this.pendNextSeq) return false;
    // Same flow and same IP header fields that matter (TOS/TTL or traffic class/hop limit).
    if (ipHl === 20) {
      if (b[o + 1] !== p[h + 1] || b[o + 8] !== p[h + 8]) return false;
      for (let i = 12; i < 20; i++) if (b[o + i] !== p[h + i]) return false;
    } else {
      for (let i = 0; i < 4; i++) if (b[o + i] !== p[h + i]) return false;
      if (b[o + 7] !== p[h + 7]) return false;
      for (let i = 8; i < 40; i++) if (b[o + i] !== p[h + i]) return false;
    }
    // Ports, ack, header length, window, urgent, options equal; flags ACK or ACK|PSH.
    for (let i = 0; i < 4; i++) if (b[t + i] !== p[pt + i]) return false;
    for (let i = 8; i < 13; i++) if (b[t + i] !== p[pt + i]) return false;
    const flags = b[t + 13]!;
    if ((flags & ~TCP_FLAG_PSH) !== p[pt + 13]) return false;
    for (let i = 14; i < 16; i++) if (b[t + i] !== p[pt + i]) return false;
    for (let i = 18; i < thl; i++) if (b[t + i] !== p[pt + i]) return false;
    this.pendCopy.copy(h + this.pendLen, b, o + this.pendHl, payload);
    this.pendLen += payload;
    this.pendCount++;
    this.merged++;
    this.pendNextSeq = (this.pendNextSeq + payload) >>> 0;
    if ((flags & TCP_FLAG_PSH) !== 0) {
      p[pt + 13] = flags;
      this.pendClosed = true;
    }
    if (payload < this.pendGso) this.pendClosed = true;
    return true;
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
    this.pendLen = 0;
  }
}

/** Sum of big-endian 16-bit words of b[from, to) (odd tail padded with zero), unfolded. */
function sum16(b: Uint8Array, from: number, to: number): number {
  let s = 0;
  let i = from;
  const end2 = to - ((to - from) & 1);
  // Eight bytes per step keeps the loop short; the Number accumulator cannot overflow here.
  for (; i + 8 <= end2; i += 8) {
    s += ((b[i]! << 8) | b[i + 1]!) + ((b[i + 2]! << 8) | b[i + 3]!) + ((b[i + 4]! << 8) | b[i + 5]!) + ((b[i + 6]! << 8) | b[i + 7]!);
  }
  for (; i < end2; i += 2) s += (b[i]! << 8) | b[i + 1]!;
  if (end2 !== to) s += b[to - 1]! << 8;
  return s;
}

function fold(s: number): number {
  while (s > 0xffff) s = (s % 65536) + Math.floor(s / 65536);
  return s;
}

function seqAt(b: Uint8Array, t: number): number {
  return ((b[t + 4]! << 24) | (b[t + 5]! << 16) | (b[t + 6]! << 8) | b[t + 7]!) >>> 0;
}

/**
 * IP header length when b[o..o+len) is a consistent, unfragmented IPv4 (no options) or IPv6 (no
 * extension headers) TCP segment with only ACK (+PSH) set and a non-empty payload; else 0.
 */
function tcpDataHeaderLen(b: Uint8Array, o: number, len: number): number {
  let ipHl: number;
  const v = b[o]! >> 4;
  if (v === 4) {
    if (b[o] !== 0x45 || b[o + 9] !== 6 || len < 40) return 0;
    if (((b[o + 2]! << 8) | b[o + 3]!) !== len) return 0;
    if (((b[o + 6]! & 0x3f) | b[o + 7]!) !== 0) return 0; // MF or fragment offset
    ipHl = 20;
  } else if (v === 6) {
    if (b[o + 6] !== 6 || len < 60) return 0;
    if (((b[o + 4]! << 8) | b[o + 5]!) + 40 !== len) return 0;
    ipHl = 40;
  } else return 0;
  const t = o + ipHl;
  const thl = (b[t + 12]! >> 4) * 4;
  if (thl < 20 || ipHl + thl >= len) return 0;
  const flags = b[t + 13]!;
  if ((flags & ~TCP_FLAG_PSH) !== TCP_FLAG_ACK) return 0;
  return ipHl;
}
