// The WireGuard UDP socket: one dual-stack AF_INET6 socket (IPv4 peers appear as ::ffff:a.b.c.d),
// falling back to AF_INET when IPv6 is unavailable. Receives with recvmmsg and sends with
// sendmmsg into arenas allocated once; Endpoint objects for sources are cached so the hot path
// does not allocate. The local address each packet arrived on (IPV6_PKTINFO) is remembered per
// remote endpoint so replies leave from the address the peer wrote to ("sticky source").

import type { Endpoint, TxAccount } from "../../core/device-api.ts";
import * as E from "../../core/errno.ts";
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
  cstr,
  errno,
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

// ---------------------------------------------------------------------------------------------
// Address text <-> bytes

/** Parses dotted-quad IPv4 into out[off..off+4]; false if malformed. */
export function parseIPv4(s: string, out: Uint8Array, off: number): boolean {
  const parts = s.split(".");
  if (parts.length !== 4) return false;
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!;
    if (!/^\d{1,3}$/.test(p)) return false;
    const v = Number(p);
    if (v > 255) return false;
    out[off + i] = v;
  }
  return true;
}

/** Parses IPv6 text (with ::, embedded IPv4, optional %zone stripped) into 16 bytes. */
export function parseIPv6(text: string, out: Uint8Array, off: number): boolean {
  const pct = text.indexOf("%");
  const s = pct >= 0 ? text.slice(0, pct) : text;
  const dbl = s.indexOf("::");
  if (dbl >= 0 && s.indexOf("::", dbl + 1) >= 0) return false;
  const groups: number[] = [];
  const parseSide = (side: string, allowV4: boolean): number[] | null => {
    if (side === "") return [];
    const res: number[] = [];
    const items = side.split(":");
    for (let i = 0; i < items.length; i++) {
      const it = items[i]!;
      if (allowV4 && i === items.length - 1 && it.includes(".")) {
        const b = new Uint8Array(4);
        if (!parseIPv4(it, b, 0)) return null;
        res.push((b[0]! << 8) | b[1]!, (b[2]! << 8) | b[3]!);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(it)) return null;
        res.push(parseInt(it, 16));
      }
    }
    return res;
  };
  if (dbl >= 0) {
    const a = parseSide(s.slice(0, dbl), false);
    const b = parseSide(s.slice(dbl + 2), true);
    if (!a || !b || a.length + b.length > 7) return false;
    groups.push(...a, ...new Array<number>(8 - a.length - b.length).fill(0), ...b);
  } else {
    const a = parseSide(s, true);
    if (!a || a.length !== 8) return false;
    groups.push(...a);
  }
  for (let i = 0; i < 8; i++) {
    out[off + 2 * i] = groups[i]! >> 8;
    out[off + 2 * i + 1] = groups[i]! & 0xff;
  }
  return true;
}

/** RFC 5952 text for 16 address bytes (what inet_ntop prints). */
export function formatIPv6(b: Uint8Array, off: number): string {
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push((b[off + 2 * i]! << 8) | b[off + 2 * i + 1]!);
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (a: number, z: number) => g.slice(a, z).map((x) => x.toString(16)).join(":");
  if (bestStart < 0) return hex(0, 8);
  return hex(0, bestStart) + "::" + hex(bestStart + bestLen, 8);
}

function zoneName(index: number): string {
  const name = new Uint8Array(16);
  if (libc.if_indextoname(index, name) === null) return String(index);
  const end = name.indexOf(0);
  return new TextDecoder().decode(name.subarray(0, end < 0 ? 16 : end));
}

function isV4Mapped(b: Uint8Array, off: number): boolean {
  for (let i = 0; i < 10; i++) if (b[off + i] !== 0) return false;
  return b[off + 10] === 0xff && b[off + 11] === 0xff;
}

// ---------------------------------------------------------------------------------------------

interface CachedSource {
  ep: Endpoint;
  /** Address bytes as received (IPv4-mapped form for IPv4), to verify hash hits. */
  raw: Uint8Array;
}

/** Local address a peer wrote to: IPv6 (or IPv4-mapped) bytes plus the receiving ifindex. */
interface StickySource {
  addr: Uint8Array;
  ifindex: number;
}

/** Gives back bytes the engine counted as sent for a datagram the socket never took. */
function unsent(account: TxAccount | undefined, bytes: number): void {
  if (account !== undefined) account.txBytes -= bytes;
}

/** What the sockaddr cache remembers about an Endpoint object the engine hands to send. */
interface EncodedDest {
  ip: string;
  port: number;
  family: number;
  sa: Uint8Array;
}

export type UdpReceive = (buf: Uint8Array, off: number, len: number, src: Endpoint) => void;

export class Udp {
  fd = -1;
  port = 0;
  fwmark = 0;
  /** AF_INET6 (dual-stack) or AF_INET. */
  family = AF_INET6;
  /** Replies leave from the local address the peer last wrote to. */
  sticky = true;
  /** UDP_GRO accepted by the kernel for the current socket. */
  gro = false;

  // receive arena
  private readonly rMsgs = new Uint8Array(BATCH * MMSGHDR_SIZE);
  private readonly rMsgs32 = new Uint32Array(this.rMsgs.buffer);
  private readonly rIov = new Uint8Array(BATCH * IOVEC_SIZE);
  private readonly rNames = new Uint8Array(BATCH * NAME_SLOT);
  private readonly rCtrl = new Uint8Array(BATCH * CTRL_SLOT);
  readonly rData = new Uint8Array(BATCH * RECV_SLOT);

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
  private readonly mSticky: (StickySource | undefined)[] = new Array(BATCH);
  /** Whose txBytes each queued message is debited from if it cannot be sent. */
  private readonly mAccount: (TxAccount | undefined)[] = new Array(BATCH);
  private mDest: EncodedDest | null = null;
  private mClosed = true;
  /** UDP GSO (UDP_SEGMENT) on send; switched off for good if the kernel or route refuses it. */
  gso = process.env.WG_UDP_GSO !== "0";
  /** Statistics: sendmmsg messages that carried several datagrams. */
  gsoMessages = 0;

  private readonly sources = new Map<number, CachedSource>();
  private readonly stickyByIp = new Map<string, Map<number, StickySource>>();
  private readonly dests = new WeakMap<Endpoint, EncodedDest>();
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
   * (Re)binds to `port` (0 = random) with `fwmark` (0 = none). Returns the bound port; throws a
   * SysError (numeric errno) and leaves the device without a socket on failure, like go.
   */
  /**
   * Where sockets are created: null = the current network namespace; else a wrapper that runs
   * the socket() call elsewhere (NetnsSwitch.run for the daemon's --udp-netns). The namespace
   * is fixed at creation, so bind, send and receive need no switching.
   */
  createIn: ((make: () => number) => number) | null = null;
  /** Bind to 127.0.0.1 instead of every address (the I/O warm-up's private sockets). */
  loopbackOnly = false;

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
    this.gro = process.env.WG_UDP_GSO !== "0" && setInt(fd, SOL_UDP, UDP_GRO, 1) === 0;
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
    const saLen = family === AF_INET6 ? SOCKADDR_IN6_SIZE : 16;
    if (libc.bind(fd, sa, saLen) < 0) fail("bind");
    const out = new Uint8Array(SOCKADDR_IN6_SIZE);
    const outLen = new Uint32Array([SOCKADDR_IN6_SIZE]);
    if (libc.getsockname(fd, out, outLen) < 0) fail("getsockname");
    this.fd = fd;
    this.family = family;
    this.port = new DataView(out.buffer).getUint16(2, false);
    this.fwmark = fwmark;
    this.stickyByIp.clear();
    return this.port;
  }

  close(): void {
    if (this.fd >= 0) libc.close(this.fd);
    this.fd = -1;
    this.port = 0;
    // Queued datagrams die with the socket: they were never sent.
    for (let i = 0; i < this.sCount; i++) {
      unsent(this.mAccount[i], this.mLen[i]!);
      this.mAccount[i] = undefined;
    }
    this.sCount = 0;
    this.sTail = 0;
    this.mDest = null;
    this.mClosed = true;
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
      return e === E.EAGAIN || e === E.EINTR ? 0 : -e;
    }
    let count = 0;
    for (let i = 0; i < n; i++) {
      const len = m32[((i * MMSGHDR_SIZE + MMSG_LEN) >> 2)]!;
      const ep = this.sourceOf(i);
      if (ep === null) continue;
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

  private sourceOf(i: number): Endpoint | null {
    const b = this.rNames;
    const o = i * NAME_SLOT;
    const fam = b[o]! | (b[o + 1]! << 8);
    const port = (b[o + 2]! << 8) | b[o + 3]!;
    let a: number; // byte offset of the 16-byte (or mapped) address
    let v4: boolean;
    if (fam === AF_INET6) {
      a = o + 8;
      v4 = isV4Mapped(b, a);
    } else if (fam === AF_INET) {
      // Store IPv4 as mapped into bytes [8..24) so both families share the cache check.
      b.copyWithin(o + 20, o + 4, o + 8);
      b.fill(0, o + 8, o + 18);
      b[o + 18] = 0xff;
      b[o + 19] = 0xff;
      a = o + 8;
      v4 = true;
    } else return null;
    let key: number;
    if (v4) {
      key = ((b[a + 12]! * 16777216 + ((b[a + 13]! << 16) | (b[a + 14]! << 8) | b[a + 15]!)) * 65536) + port;
    } else {
      let h = 0x811c9dc5;
      for (let k = 0; k < 20; k++) h = Math.imul(h ^ b[a + k]!, 0x01000193); // address + scope id
      key = -((h >>> 0) * 65536 + port) - 1; // negative keys cannot collide with IPv4 keys
    }
    const hit = this.sources.get(key);
    if (hit !== undefined) {
      if (v4) return hit.ep;
      const r = hit.raw;
      let same = true;
      for (let k = 0; k < 20; k++)
        if (r[k] !== b[a + k]) {
          same = false;
          break;
        }
      if (same) return hit.ep;
    }
    // Bounded: unauthenticated sources must not grow memory without limit.
    if (this.sources.size >= 4096) this.sources.clear();
    const raw = b.slice(a, a + 20);
    let ep: Endpoint;
    if (v4) ep = { family: 4, ip: `${raw[12]}.${raw[13]}.${raw[14]}.${raw[15]}`, port };
    else {
      // Link-local senders keep their zone ("fe80::1%eth0") so replies can be routed back.
      const scope = raw[16]! | (raw[17]! << 8) | (raw[18]! << 16) | (raw[19]! * 16777216);
      ep = { family: 6, ip: formatIPv6(raw, 0) + (scope !== 0 ? `%${zoneName(scope)}` : ""), port };
    }
    this.sources.set(key, { ep, raw });
    return ep;
  }

  /**
   * Walks message i's control data: notes IPV6_PKTINFO as the sticky source towards `ep` and
   * returns the UDP_GRO segment size (0 when the buffer is one datagram).
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
        if (this.sticky && this.family === AF_INET6) this.noteSticky(base + o + CMSG_HDR, ep);
      } else if (level === SOL_UDP && type === UDP_GRO && l >= CMSG_HDR + 2) {
        seg = c[base + o + CMSG_HDR]! | (c[base + o + CMSG_HDR + 1]! << 8);
      }
      o += (l + 7) & ~7;
    }
    return seg;
  }

  /** Remembers the in6_pktinfo at rCtrl[d..] as the reply source towards `ep`. */
  private noteSticky(d: number, ep: Endpoint): void {
    const c = this.rCtrl;
    let byPort = this.stickyByIp.get(ep.ip);
    if (byPort === undefined) {
      if (this.stickyByIp.size >= 4096) this.stickyByIp.clear();
      byPort = new Map();
      this.stickyByIp.set(ep.ip, byPort);
    }
    let s = byPort.get(ep.port);
    if (s === undefined) {
      s = { addr: new Uint8Array(16), ifindex: 0 };
      byPort.set(ep.port, s);
    }
    let changed = false;
    for (let k = 0; k < 16; k++)
      if (s.addr[k] !== c[d + k]) {
        changed = true;
        break;
      }
    if (changed) s.addr.set(c.subarray(d, d + 16));
    s.ifindex = c[d + 16]! | (c[d + 17]! << 8) | (c[d + 18]! << 16) | (c[d + 19]! << 24);
  }

  /** Forgets the sticky source for `ep` so the kernel chooses by route again. */
  clearSrc(ep: Endpoint): void {
    this.stickyByIp.get(ep.ip)?.delete(ep.port);
  }

  private encode(ep: Endpoint): EncodedDest | null {
    let d = this.dests.get(ep);
    if (d !== undefined && d.ip === ep.ip && d.port === ep.port && d.family === ep.family) return d;
    const sa = new Uint8Array(SOCKADDR_IN6_SIZE);
    const dv = new DataView(sa.buffer);
    if (this.family === AF_INET6) {
      dv.setUint16(0, AF_INET6, true);
      dv.setUint16(2, ep.port, false);
      if (ep.family === 4) {
        sa[18] = 0xff;
        sa[19] = 0xff;
        if (!parseIPv4(ep.ip, sa, 20)) return null;
      } else {
        if (!parseIPv6(ep.ip, sa, 8)) return null;
        const pct = ep.ip.indexOf("%");
        if (pct >= 0) {
          const zone = ep.ip.slice(pct + 1);
          const idx = /^\d+$/.test(zone) ? Number(zone) : libc.if_nametoindex(cstr(zone));
          dv.setUint32(24, idx, true);
        }
      }
    } else {
      if (ep.family !== 4) return null;
      dv.setUint16(0, AF_INET, true);
      dv.setUint16(2, ep.port, false);
      if (!parseIPv4(ep.ip, sa, 4)) return null;
    }
    d = { ip: ep.ip, port: ep.port, family: ep.family, sa };
    this.dests.set(ep, d);
    return d;
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
    const d = this.encode(ep);
    if (d === null) {
      this.txDropped++;
      unsent(account, len);
      return;
    }
    const sticky = this.sticky && this.family === AF_INET6 ? this.stickyByIp.get(ep.ip)?.get(ep.port) : undefined;
    let i = this.sCount - 1;
    if (
      this.gso &&
      !this.mClosed &&
      this.mDest !== null &&
      (d === this.mDest || (d.port === this.mDest.port && d.ip === this.mDest.ip && d.family === this.mDest.family)) &&
      this.mSticky[i] === sticky &&
      this.mAccount[i] === account &&
      len <= this.mSeg[i]! &&
      this.mSegs[i]! < GSO_MAX_SEGS &&
      this.mLen[i]! + len <= GSO_MAX_BYTES &&
      this.sTail + len <= SEND_ARENA
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
    this.mSticky[i] = sticky;
    this.mAccount[i] = account;
    this.mDest = d;
    this.mClosed = false;
    const iv = (i * IOVEC_SIZE) >> 2;
    const p = this.sDataPtr + start;
    this.sIov32[iv] = p % 4294967296;
    this.sIov32[iv + 1] = Math.floor(p / 4294967296);
    this.sNames.set(d.sa, i * NAME_SLOT);
    const w = (i * MMSGHDR_SIZE) >> 2;
    this.sMsgs32[w + (MSG_NAMELEN >> 2)] = this.family === AF_INET6 ? SOCKADDR_IN6_SIZE : 16;
  }

  /** Fills message i's length and control data (sticky source, GSO segment size). */
  private finish(i: number, withSticky: boolean): void {
    const iv = (i * IOVEC_SIZE) >> 2;
    this.sIov32[iv + 2] = this.mLen[i]!;
    this.sIov32[iv + 3] = 0;
    const c = this.sCtrl;
    const v = this.sCtrlView;
    const base = i * CTRL_SLOT;
    let o = 0;
    const s = withSticky ? this.mSticky[i] : undefined;
    if (s !== undefined) {
      v.setUint32(base, CMSG_HDR + 20, true);
      v.setUint32(base + 4, 0, true);
      v.setInt32(base + 8, IPPROTO_IPV6, true);
      v.setInt32(base + 12, IPV6_PKTINFO, true);
      c.set(s.addr, base + CMSG_HDR);
      // An IPv4-mapped source must not pin the interface: the kernel then routes normally.
      v.setUint32(base + CMSG_HDR + 16, isV4Mapped(s.addr, 0) ? 0 : s.ifindex, true);
      o = PKTINFO6_SPACE;
    }
    if (this.mSegs[i]! > 1) {
      this.gsoMessages++;
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
    for (let i = 0; i < total; i++) this.finish(i, true);
    let start = 0;
    let retries = 0;
    while (start < total) {
      const n = libc.sendmmsg(this.fd, addr(this.sMsgs, start * MMSGHDR_SIZE), total - start, 0);
      if (n > 0) {
        for (let k = start; k < start + n; k++) this.txPackets += this.mSegs[k]!;
        start += n;
        continue;
      }
      const e = errno();
      if (e === E.EAGAIN && retries++ < 50) {
        // Socket buffer full: wait briefly for room instead of dropping a whole batch.
        this.pollfd[0] = this.fd;
        this.pollfd[1] = 4; // POLLOUT
        libc.poll(this.pollfd, 1, 10);
        continue;
      }
      if (e === E.EINTR) continue;
      // A stale sticky source (address removed: EINVAL, EADDRNOTAVAIL, ENETUNREACH...): retry
      // the message without it so the kernel picks a source by route.
      if (this.mSticky[start] !== undefined) {
        this.mSticky[start] = undefined;
        this.stickyByIp.clear();
        this.finish(start, false);
        continue;
      }
      if (this.mSegs[start]! > 1 && (e === E.EIO || e === E.EINVAL || e === E.EMSGSIZE || e === 95 /* EOPNOTSUPP */)) {
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
    this.mAccount.fill(undefined, 0, total);
    this.sCount = 0;
    this.sTail = 0;
    this.mDest = null;
    this.mClosed = true;
  }

  /** Sends GSO message i as separate datagrams (fallback path). */
  private sendSegments(i: number): void {
    const iv = (i * IOVEC_SIZE) >> 2;
    const p = this.sIov32[iv]! + this.sIov32[iv + 1]! * 4294967296;
    const seg = this.mSeg[i]!;
    const len = this.mLen[i]!;
    const sa = this.sNames.subarray(i * NAME_SLOT, i * NAME_SLOT + SOCKADDR_IN6_SIZE);
    const saLen = this.family === AF_INET6 ? SOCKADDR_IN6_SIZE : 16;
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
