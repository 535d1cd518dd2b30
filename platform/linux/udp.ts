// The WireGuard UDP socket: one dual-stack AF_INET6 socket (IPv4 peers appear as ::ffff:a.b.c.d),
// falling back to AF_INET when IPv6 is unavailable. recvmmsg and sendmmsg work in arenas
// allocated once.
//
// Endpoints are bytes both ways. A received datagram reaches the engine as one reused Endpoint:
// the sender's address, port and scope from the sockaddr, and as its sticky source the local
// address and interface IPV6_PKTINFO reports. A send takes its destination and sticky source from
// the Endpoint the engine passes (for a peer, the peer's own), so a reply leaves from the address
// the peer wrote to; a source the kernel refuses is cleared on that Endpoint and the datagram
// goes out from a source chosen by route. Nothing is kept per remote address.

import { Endpoint } from "../../core/endpoint.ts";
import type { TxAccount } from "../../core/device-api.ts";
import { EADDRNOTAVAIL, EAGAIN, EINTR, EINVAL, EIO, EMSGSIZE, ENETUNREACH, ENODEV, EOPNOTSUPP } from "../../core/errno.ts";
import {
  Copier,
  AF_INET,
  AF_INET6,
  CMSG_HDR,
  IOVEC_SIZE,
  IPPROTO_IPV6,
  IPV6_PKTINFO,
  IPV6_RECVPKTINFO,
  IPV6_V6ONLY,
  MMSGHDR_SIZE,
  MMSG_LEN,
  MSG_CONTROL,
  MSG_CONTROLLEN,
  MSG_DONTWAIT,
  MSG_IOV,
  MSG_IOVLEN,
  MSG_NAME,
  MSG_NAMELEN,
  PKTINFO6_SPACE,
  POLLIN,
  SOCKADDR_IN6_SIZE,
  SOCK_CLOEXEC,
  SOCK_DGRAM,
  SOCK_NONBLOCK,
  SOL_SOCKET,
  SO_MARK,
  SO_RCVBUF,
  SO_RCVBUFFORCE,
  SO_SNDBUF,
  SO_SNDBUFFORCE,
  SysError,
  addr,
  errno,
  ifName,
  libc,
  setInt,
} from "./libc.ts";

/** Messages per recvmmsg/sendmmsg call. */
export const BATCH = 64;
/** Receive slots hold the largest UDP payload. */
const RECV_SLOT = 65536;
/** Send data arena: messages are packed back to back (a GSO message holds many datagrams). */
const SEND_ARENA = BATCH * 65536;
/** Largest UDP GSO message payload and segment count (kernel UDP_MAX_SEGMENTS is 64 or more). */
const GSO_MAX_BYTES = 65000;
const GSO_MAX_SEGS = 64;
const NAME_SLOT = 32;
const CTRL_SLOT = 128;
const SOL_UDP = 17;
const UDP_SEGMENT = 103;
const UDP_GRO = 104;
const SOCKBUF = 7 << 20;
/** UDP GSO on send and UDP_GRO on receive; WG_UDP_GSO=0 turns both off. */
const UDP_OFFLOAD = process.env.WG_UDP_GSO !== "0";

const POLLOUT = 4;
const SOCKADDR_IN_SIZE = 16;

/** Interface name for a scope id (if_indextoname), or the number when there is none. */
export function scopeName(index: number): string {
  const name = new Uint8Array(16);
  if (libc.if_indextoname(index, name) === null) return String(index);
  return ifName(name);
}

function isV4Mapped(b: Uint8Array, off: number): boolean {
  for (let i = 0; i < 10; i++) if (b[off + i] !== 0) return false;
  return b[off + 10] === 0xff && b[off + 11] === 0xff;
}

function u32le(b: Uint8Array, off: number): number {
  return (b[off]! | (b[off + 1]! << 8) | (b[off + 2]! << 16) | (b[off + 3]! << 24)) >>> 0;
}

/** Gives back bytes the engine counted as sent for a datagram the socket never took. */
function unsent(account: TxAccount | undefined, bytes: number): void {
  if (account !== undefined) account.txBytes -= bytes;
}

type UdpReceive = (buf: Uint8Array, off: number, len: number, src: Endpoint) => void;

export class Udp {
  fd = -1;
  port = 0;
  fwmark = 0;
  /** AF_INET6 (dual-stack, with sticky sources) or AF_INET. */
  family = AF_INET6;
  /** UDP_GRO accepted by the kernel for the current socket. */
  gro = false;

  // receive arena
  private readonly rMsgs = new Uint8Array(BATCH * MMSGHDR_SIZE);
  private readonly rMsgs32 = new Uint32Array(this.rMsgs.buffer);
  private readonly rIov = new Uint8Array(BATCH * IOVEC_SIZE);
  private readonly rNames = new Uint8Array(BATCH * NAME_SLOT);
  private readonly rCtrl = new Uint8Array(BATCH * CTRL_SLOT);
  readonly rData = new Uint8Array(BATCH * RECV_SLOT);
  /** The source of the datagram being delivered (rewritten for each). */
  private readonly rEp = new Endpoint();

  // send arena
  private readonly sMsgs = new Uint8Array(BATCH * MMSGHDR_SIZE);
  private readonly sMsgs32 = new Uint32Array(this.sMsgs.buffer);
  private readonly sIov = new Uint8Array(BATCH * IOVEC_SIZE);
  private readonly sIov32 = new Uint32Array(this.sIov.buffer);
  private readonly sNames = new Uint8Array(BATCH * NAME_SLOT);
  private readonly sCtrl = new Uint8Array(BATCH * CTRL_SLOT);
  private readonly sCtrlView = new DataView(this.sCtrl.buffer);
  private readonly sData = new Uint8Array(SEND_ARENA);
  private readonly sDataPtr: number;
  private readonly sCopy: Copier;
  private sCount = 0;
  private sTail = 0;
  // The message being filled (index sCount - 1) and what later datagrams must match to join it.
  private readonly mSeg = new Int32Array(BATCH);
  private readonly mSegs = new Int32Array(BATCH);
  private readonly mLen = new Int32Array(BATCH);
  /** Each queued message's destination and sticky source, copied when it was queued. */
  private readonly mDst = Array.from({ length: BATCH }, () => new Endpoint());
  /** The Endpoint each message was queued for, whose sticky source goes if the kernel refuses it. */
  private readonly mOwner: (Endpoint | undefined)[] = new Array(BATCH);
  /** Whose txBytes each queued message is debited from if it cannot be sent. */
  private readonly mAccount: (TxAccount | undefined)[] = new Array(BATCH);
  /** No message is open for more datagrams (none queued, or the last one ended short). */
  private mClosed = true;
  /** UDP GSO (UDP_SEGMENT) on send; switched off for good if the kernel or route refuses it. */
  gso = UDP_OFFLOAD;
  /** Statistics: sendmmsg messages that carried several datagrams. */
  gsoMessages = 0;

  private readonly pollfd = new Int32Array(2);
  /** Counters for tests and stats. */
  rxPackets = 0;
  /** Datagrams (messages, before GRO splitting) the last receive() got; < BATCH: queue drained. */
  lastBatch = 0;
  txPackets = 0;
  txDropped = 0;

  constructor() {
    const rm = new DataView(this.rMsgs.buffer);
    const ri = new DataView(this.rIov.buffer);
    const sm = new DataView(this.sMsgs.buffer);
    for (let i = 0; i < BATCH; i++) {
      const m = i * MMSGHDR_SIZE;
      ri.setBigUint64(i * IOVEC_SIZE, BigInt(addr(this.rData, i * RECV_SLOT)), true);
      ri.setBigUint64(i * IOVEC_SIZE + 8, BigInt(RECV_SLOT), true);
      rm.setBigUint64(m + MSG_NAME, BigInt(addr(this.rNames, i * NAME_SLOT)), true);
      rm.setBigUint64(m + MSG_IOV, BigInt(addr(this.rIov, i * IOVEC_SIZE)), true);
      rm.setBigUint64(m + MSG_IOVLEN, 1n, true);
      rm.setBigUint64(m + MSG_CONTROL, BigInt(addr(this.rCtrl, i * CTRL_SLOT)), true);

      sm.setBigUint64(m + MSG_NAME, BigInt(addr(this.sNames, i * NAME_SLOT)), true);
      sm.setBigUint64(m + MSG_IOV, BigInt(addr(this.sIov, i * IOVEC_SIZE)), true);
      sm.setBigUint64(m + MSG_IOVLEN, 1n, true);
      sm.setBigUint64(m + MSG_CONTROL, BigInt(addr(this.sCtrl, i * CTRL_SLOT)), true);
    }
    this.sDataPtr = addr(this.sData, 0);
    this.sCopy = new Copier(this.sDataPtr);
  }

  /**
   * Where sockets are created: null = the current network namespace; else a wrapper that runs
   * the socket() call elsewhere (NetnsSwitch.run for the daemon's --udp-netns). The namespace
   * is fixed at creation, so bind, send and receive need no switching.
   */
  createIn: (<T>(make: () => T) => T) | null = null;
  /** Bind to 127.0.0.1 instead of every address (the I/O warm-up's private sockets). */
  loopbackOnly = false;

  /**
   * (Re)binds to `port` (0 = random) with `fwmark` (0 = none). Returns the bound port; throws a
   * SysError (numeric errno) and leaves the device without a socket on failure, like go.
   */
  bind(port: number, fwmark: number): number {
    // A mark-only change keeps the socket, as wireguard-go does: closing and re-binding the same
    // port fails with EADDRINUSE while the poller thread still holds the old fd in poll().
    // The same port again (`wg syncconf` of an unchanged ListenPort) keeps it for the same reason.
    if (this.fd >= 0 && port === this.port) {
      if (fwmark === this.fwmark) return this.port;
      if (setInt(this.fd, SOL_SOCKET, SO_MARK, fwmark | 0) < 0) throw new SysError("setsockopt(SO_MARK)", errno());
      this.fwmark = fwmark;
      return this.port;
    }
    this.close();
    const open = (family: number) => {
      const make = () => libc.socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      return this.createIn ? this.createIn(make) : make();
    };
    let fd = open(AF_INET6);
    let family = AF_INET6;
    if (fd < 0) {
      fd = open(AF_INET);
      family = AF_INET;
      if (fd < 0) throw new SysError("socket", errno());
    }
    const fail = (call: string): never => {
      const e = errno();
      libc.close(fd);
      throw new SysError(call, e);
    };
    if (family === AF_INET6) {
      setInt(fd, IPPROTO_IPV6, IPV6_V6ONLY, 0);
      setInt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1);
    }
    // Coalesced receive: a burst from one sender may arrive as one buffer of equal-size datagrams.
    this.gro = UDP_OFFLOAD && setInt(fd, SOL_UDP, UDP_GRO, 1) === 0;
    if (fwmark !== 0 && setInt(fd, SOL_SOCKET, SO_MARK, fwmark | 0) < 0) fail("setsockopt(SO_MARK)");
    if (setInt(fd, SOL_SOCKET, SO_RCVBUFFORCE, SOCKBUF) < 0) setInt(fd, SOL_SOCKET, SO_RCVBUF, SOCKBUF);
    if (setInt(fd, SOL_SOCKET, SO_SNDBUFFORCE, SOCKBUF) < 0) setInt(fd, SOL_SOCKET, SO_SNDBUF, SOCKBUF);
    const sa = new Uint8Array(SOCKADDR_IN6_SIZE);
    const dv = new DataView(sa.buffer);
    dv.setUint16(0, family, true);
    dv.setUint16(2, port, false);
    if (this.loopbackOnly) {
      if (family === AF_INET6) sa.set([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1], 8);
      else sa.set([127, 0, 0, 1], 4);
    }
    const saLen = family === AF_INET6 ? SOCKADDR_IN6_SIZE : SOCKADDR_IN_SIZE;
    if (libc.bind(fd, sa, saLen) < 0) fail("bind");
    const out = new Uint8Array(SOCKADDR_IN6_SIZE);
    const outLen = new Uint32Array([SOCKADDR_IN6_SIZE]);
    if (libc.getsockname(fd, out, outLen) < 0) fail("getsockname");
    this.fd = fd;
    this.family = family;
    this.port = new DataView(out.buffer).getUint16(2, false);
    this.fwmark = fwmark;
    return this.port;
  }

  close(): void {
    if (this.fd >= 0) libc.close(this.fd);
    this.fd = -1;
    this.port = 0;
    // Queued datagrams die with the socket: they were never sent.
    for (let i = 0; i < this.sCount; i++) unsent(this.mAccount[i], this.mLen[i]!);
    this.dequeueAll();
  }

  /**
   * One recvmmsg: hands every received datagram to `onPacket`. Returns the number received
   * (0 when nothing is queued) or -errno.
   */
  receive(onPacket: UdpReceive): number {
    if (this.fd < 0) return 0;
    const m32 = this.rMsgs32;
    for (let i = 0; i < BATCH; i++) {
      const w = (i * MMSGHDR_SIZE) >> 2;
      m32[w + (MSG_NAMELEN >> 2)] = NAME_SLOT;
      m32[w + (MSG_CONTROLLEN >> 2)] = CTRL_SLOT;
      m32[w + (MSG_CONTROLLEN >> 2) + 1] = 0;
    }
    const n = libc.recvmmsg(this.fd, this.rMsgs, BATCH, MSG_DONTWAIT, null);
    this.lastBatch = n > 0 ? n : 0;
    if (n < 0) {
      const e = errno();
      return e === EAGAIN || e === EINTR ? 0 : -e;
    }
    let count = 0;
    const ep = this.rEp;
    for (let i = 0; i < n; i++) {
      const len = m32[((i * MMSGHDR_SIZE + MMSG_LEN) >> 2)]!;
      if (!this.readSource(i, ep)) continue;
      const seg = this.scanControl(i, ep);
      const base = i * RECV_SLOT;
      if (seg > 0 && seg < len) {
        // A UDP_GRO buffer: equal-size datagrams back to back, the last one possibly shorter.
        for (let o = 0; o < len; o += seg) {
          this.rxPackets++;
          count++;
          onPacket(this.rData, base + o, Math.min(seg, len - o), ep);
        }
      } else {
        this.rxPackets++;
        count++;
        onPacket(this.rData, base, len, ep);
      }
    }
    return count;
  }

  /** Message i's sender (sockaddr) into ep, without a sticky source; false for another family. */
  private readSource(i: number, ep: Endpoint): boolean {
    const b = this.rNames;
    const o = i * NAME_SLOT;
    const fam = b[o]! | (b[o + 1]! << 8);
    const a = ep.addr;
    if (fam === AF_INET6 && !isV4Mapped(b, o + 8)) {
      ep.family = 6;
      for (let k = 0; k < 16; k++) a[k] = b[o + 8 + k]!;
      ep.scope = u32le(b, o + 24);
    } else if (fam === AF_INET6 || fam === AF_INET) {
      // IPv4, as a mapped address on the dual-stack socket or plain.
      const at = fam === AF_INET6 ? o + 20 : o + 4;
      ep.family = 4;
      for (let k = 0; k < 4; k++) a[k] = b[at + k]!;
      ep.scope = 0;
    } else return false;
    ep.port = (b[o + 2]! << 8) | b[o + 3]!;
    ep.hasSrc = false;
    return true;
  }

  /**
   * Walks message i's control data: IPV6_PKTINFO becomes ep's sticky source; returns the UDP_GRO
   * segment size (0 when the buffer is one datagram).
   */
  private scanControl(i: number, ep: Endpoint): number {
    const c = this.rCtrl;
    const base = i * CTRL_SLOT;
    const clen = Math.min(this.rMsgs32[((i * MMSGHDR_SIZE + MSG_CONTROLLEN) >> 2)]!, CTRL_SLOT);
    let seg = 0;
    for (let o = 0; o + CMSG_HDR <= clen; ) {
      const l = c[base + o]! | (c[base + o + 1]! << 8);
      if (l < CMSG_HDR) break;
      const level = c[base + o + 8]! | (c[base + o + 9]! << 8);
      const type = c[base + o + 12]! | (c[base + o + 13]! << 8);
      if (level === IPPROTO_IPV6 && type === IPV6_PKTINFO && l >= CMSG_HDR + 20) {
        this.noteSource(base + o + CMSG_HDR, ep);
      } else if (level === SOL_UDP && type === UDP_GRO && l >= CMSG_HDR + 2) {
        seg = c[base + o + CMSG_HDR]! | (c[base + o + CMSG_HDR + 1]! << 8);
      }
      o += (l + 7) & ~7;
    }
    return seg;
  }

  /** The in6_pktinfo at rCtrl[d..] as ep's sticky source (IPv4 from its mapped form). */
  private noteSource(d: number, ep: Endpoint): void {
    const c = this.rCtrl;
    const s = ep.src;
    if (ep.family === 4) for (let k = 0; k < 4; k++) s[k] = c[d + 12 + k]!;
    else for (let k = 0; k < 16; k++) s[k] = c[d + k]!;
    ep.srcIfindex = u32le(c, d + 16);
    ep.hasSrc = true;
  }

  /** Message i's sockaddr for the destination in ep. */
  private writeName(i: number, ep: Endpoint): void {
    const b = this.sNames;
    const o = i * NAME_SLOT;
    const a = ep.addr;
    b.fill(0, o, o + SOCKADDR_IN6_SIZE);
    b[o + 2] = ep.port >>> 8;
    b[o + 3] = ep.port & 0xff;
    if (this.family === AF_INET6) {
      b[o] = AF_INET6;
      if (ep.family === 4) {
        b[o + 18] = b[o + 19] = 0xff;
        for (let k = 0; k < 4; k++) b[o + 20 + k] = a[k]!;
      } else {
        for (let k = 0; k < 16; k++) b[o + 8 + k] = a[k]!;
        const scope = ep.scope;
        b[o + 24] = scope & 0xff;
        b[o + 25] = (scope >>> 8) & 0xff;
        b[o + 26] = (scope >>> 16) & 0xff;
        b[o + 27] = scope >>> 24;
      }
    } else {
      b[o] = AF_INET;
      for (let k = 0; k < 4; k++) b[o + 4 + k] = a[k]!;
    }
    this.sMsgs32[(i * MMSGHDR_SIZE + MSG_NAMELEN) >> 2] = this.family === AF_INET6 ? SOCKADDR_IN6_SIZE : SOCKADDR_IN_SIZE;
  }

  /**
   * Queues one datagram for the next flush. Datagrams of equal size to the same destination
   * (and source) join one UDP GSO message: one kernel send path for up to 64 of them.
   */
  send(buf: Uint8Array, off: number, len: number, ep: Endpoint, account?: TxAccount): void {
    if (this.fd < 0) {
      unsent(account, len);
      return;
    }
    if (ep.family === 6 && this.family !== AF_INET6) {
      this.txDropped++;
      unsent(account, len);
      return;
    }
    // Sticky sources need IPV6_PKTINFO, which only the dual-stack socket has.
    const sticky = ep.hasSrc && this.family === AF_INET6;
    let i = this.sCount - 1;
    if (
      this.gso &&
      !this.mClosed &&
      this.mAccount[i] === account &&
      len <= this.mSeg[i]! &&
      this.mSegs[i]! < GSO_MAX_SEGS &&
      this.mLen[i]! + len <= GSO_MAX_BYTES &&
      this.sTail + len <= SEND_ARENA &&
      this.mDst[i]!.sameDst(ep) &&
      (sticky ? this.mDst[i]!.sameSrc(ep) : !this.mDst[i]!.hasSrc)
    ) {
      this.sCopy.copy(this.sTail, buf, off, len);
      this.sTail += len;
      this.mLen[i] = this.mLen[i]! + len;
      this.mSegs[i] = this.mSegs[i]! + 1;
      if (len < this.mSeg[i]!) this.mClosed = true;
      return;
    }
    if (this.sCount === BATCH || this.sTail + len > SEND_ARENA) this.flush();
    i = this.sCount++;
    const start = this.sTail;
    this.sCopy.copy(start, buf, off, len);
    this.sTail += len;
    this.mSeg[i] = len;
    this.mSegs[i] = 1;
    this.mLen[i] = len;
    const dst = this.mDst[i]!;
    dst.copyFrom(ep);
    if (!sticky) dst.hasSrc = false;
    this.mOwner[i] = ep;
    this.mAccount[i] = account;
    this.mClosed = false;
    const iv = (i * IOVEC_SIZE) >> 2;
    const p = this.sDataPtr + start;
    this.sIov32[iv] = p % 4294967296;
    this.sIov32[iv + 1] = Math.floor(p / 4294967296);
    this.writeName(i, dst);
  }

  /** Fills message i's length and control data (sticky source, GSO segment size). */
  private finish(i: number): void {
    const iv = (i * IOVEC_SIZE) >> 2;
    this.sIov32[iv + 2] = this.mLen[i]!;
    this.sIov32[iv + 3] = 0;
    const c = this.sCtrl;
    const v = this.sCtrlView;
    const base = i * CTRL_SLOT;
    let o = 0;
    const dst = this.mDst[i]!;
    if (dst.hasSrc) {
      v.setUint32(base, CMSG_HDR + 20, true);
      v.setUint32(base + 4, 0, true);
      v.setInt32(base + 8, IPPROTO_IPV6, true);
      v.setInt32(base + 12, IPV6_PKTINFO, true);
      const d = base + CMSG_HDR;
      const s = dst.src;
      if (dst.family === 4) {
        c.fill(0, d, d + 10);
        c[d + 10] = c[d + 11] = 0xff;
        for (let k = 0; k < 4; k++) c[d + 12 + k] = s[k]!;
      } else for (let k = 0; k < 16; k++) c[d + k] = s[k]!;
      // An IPv4 source must not pin the interface: the kernel then routes normally.
      v.setUint32(d + 16, dst.family === 4 ? 0 : dst.srcIfindex, true);
      o = PKTINFO6_SPACE;
    }
    if (this.mSegs[i]! > 1) {
      v.setUint32(base + o, CMSG_HDR + 2, true);
      v.setUint32(base + o + 4, 0, true);
      v.setInt32(base + o + 8, SOL_UDP, true);
      v.setInt32(base + o + 12, UDP_SEGMENT, true);
      v.setUint16(base + o + CMSG_HDR, this.mSeg[i]!, true);
      o += CMSG_HDR + 8;
    }
    const w = (i * MMSGHDR_SIZE) >> 2;
    this.sMsgs32[w + (MSG_CONTROLLEN >> 2)] = o;
  }

  /** Sends everything queued with as few sendmmsg calls as the kernel allows. */
  flush(): void {
    const total = this.sCount;
    if (total === 0) return;
    for (let i = 0; i < total; i++) this.finish(i);
    let start = 0;
    let retries = 0;
    /** Whose sticky source message `start` is being retried without (see below). */
    let unsourced: Endpoint | null = null;
    while (start < total) {
      const n = libc.sendmmsg(this.fd, addr(this.sMsgs, start * MMSGHDR_SIZE), total - start, 0);
      if (n > 0) {
        unsourced?.clearSrc();
        unsourced = null;
        for (let k = start; k < start + n; k++) {
          this.txPackets += this.mSegs[k]!;
          if (this.mSegs[k]! > 1) this.gsoMessages++;
        }
        start += n;
        continue;
      }
      const e = errno();
      if (e === EAGAIN && retries++ < 50) {
        // Socket buffer full: wait briefly for room instead of dropping a whole batch.
        this.pollfd[0] = this.fd;
        this.pollfd[1] = POLLOUT;
        libc.poll(this.pollfd, 1, 10);
        continue;
      }
      if (e === EINTR) continue;
      // What a sticky source no longer ours gets (ENETUNREACH for IPv4, EINVAL for IPv6, ENODEV
      // when its interface is gone, EINVAL or EADDRNOTAVAIL from a route refusing it): retry the
      // message without it, so the kernel picks a source by route. Only if the kernel takes it
      // then is the source forgotten where it came from (unless that Endpoint has learnt another
      // since): the same errno may mean something else (no route at all; for a GSO message, GSO
      // refused), which the retry meets again and hands on below.
      const dst = this.mDst[start]!;
      if (dst.hasSrc && (e === ENETUNREACH || e === EINVAL || e === ENODEV || e === EADDRNOTAVAIL)) {
        const owner = this.mOwner[start]!;
        unsourced = owner.sameDst(dst) && owner.sameSrc(dst) ? owner : null;
        dst.hasSrc = false;
        this.finish(start);
        continue;
      }
      unsourced = null;
      if (this.mSegs[start]! > 1 && (e === EIO || e === EINVAL || e === EMSGSIZE || e === EOPNOTSUPP)) {
        // The route or kernel refused UDP GSO (EIO without checksum offload, EINVAL on old
        // kernels): send this message datagram by datagram and stop batching that way.
        this.gso = false;
        this.sendSegments(start);
        start++;
        continue;
      }
      // Unsendable message (unreachable network, ...): skip it like lost packets.
      this.txDropped += this.mSegs[start]!;
      unsent(this.mAccount[start], this.mLen[start]!);
      start++;
    }
    this.dequeueAll();
  }

  /** Empties the send queue (sent or given up), dropping its references to engine objects. */
  private dequeueAll(): void {
    this.mAccount.fill(undefined, 0, this.sCount);
    this.mOwner.fill(undefined, 0, this.sCount);
    this.sCount = 0;
    this.sTail = 0;
    this.mClosed = true;
  }

  /** Sends GSO message i as separate datagrams (fallback path). */
  private sendSegments(i: number): void {
    const iv = (i * IOVEC_SIZE) >> 2;
    const p = this.sIov32[iv]! + this.sIov32[iv + 1]! * 4294967296;
    const seg = this.mSeg[i]!;
    const len = this.mLen[i]!;
    const sa = this.sNames.subarray(i * NAME_SLOT, i * NAME_SLOT + SOCKADDR_IN6_SIZE);
    const saLen = this.family === AF_INET6 ? SOCKADDR_IN6_SIZE : SOCKADDR_IN_SIZE;
    for (let o = 0; o < len; o += seg) {
      const r = Number(libc.sendto(this.fd, p + o, Math.min(seg, len - o), 0, sa, saLen));
      if (r >= 0) this.txPackets++;
      else {
        this.txDropped++;
        unsent(this.mAccount[i], Math.min(seg, len - o));
      }
    }
  }

  /** True when the socket has data (used by tests without the poller). */
  readable(timeoutMs: number): boolean {
    this.pollfd[0] = this.fd;
    this.pollfd[1] = POLLIN;
    return libc.poll(this.pollfd, 1, timeoutMs) > 0;
  }
}
