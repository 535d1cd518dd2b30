// The TUN offloads of IFF_VNET_HDR, apart from the device as wireguard-go keeps offload_linux.go:
// byte work over buffers, no I/O. Every packet read or written with IFF_VNET_HDR is preceded by a
// 10-byte virtio_net_hdr.
//
// Read side (GsoSplitter): with TSO asked for (TUNSETOFFLOAD) the kernel hands over TCP
// super-packets of up to 64 KB and packets whose checksum it left to us; they are cut into
// MTU-sized segments with correct headers and checksums, or completed, before the engine sees them.
//
// Write side (TcpMerger, GRO): consecutive in-order TCP segments of one flow, as decrypted from
// one receive batch, are merged into one large packet that the kernel takes as a single GSO skb,
// so its TCP receive path runs once per merged packet instead of once per segment.
//
// Both keep their buffers for their lifetime: nothing here allocates per packet.

import { Copier, addr } from "./libc.ts";

export const VNET_HDR_LEN = 10;
const VIRTIO_NET_HDR_F_NEEDS_CSUM = 1;
const VIRTIO_NET_HDR_GSO_TCPV4 = 1;
const VIRTIO_NET_HDR_GSO_TCPV6 = 4;
const TCP_FLAG_FIN = 0x01;
const TCP_FLAG_PSH = 0x08;
const TCP_FLAG_ACK = 0x10;
const TCP_FLAG_CWR = 0x80;
/** Largest merged IP packet (IPv4 total length is 16 bits). */
export const GRO_MAX = 65535;

/** Receives one plain IP packet at buf[off, off+len), valid only during the call. */
export type Deliver = (buf: Uint8Array, off: number, len: number) => void;

/** Turns what one read of a vnet TUN returned into plain IP packets. */
export class GsoSplitter {
  /** Statistics: reads that were super-packets, and segments cut from them. */
  superReads = 0;
  segments = 0;
  private readonly seg = new Uint8Array(65536 + 256);
  private readonly segCopy = new Copier(addr(this.seg, 0));
  private readonly segView = new DataView(this.seg.buffer);

  /**
   * r[0, n) is a virtio header and the IP packet behind it. A TCP super-packet is cut into
   * segments, a pending checksum is completed (in r), anything else is passed on as it is.
   * Returns the number of packets delivered.
   */
  split(r: Uint8Array, n: number, deliver: Deliver): number {
    const h = VNET_HDR_LEN;
    const len = n - h;
    if (len <= 0) return 0;
    const flags = r[0]!;
    const gsoType = r[1]! & 0x7f;
    if (gsoType === VIRTIO_NET_HDR_GSO_TCPV4 || gsoType === VIRTIO_NET_HDR_GSO_TCPV6) {
      return this.segment(r, len, (r[4]! | (r[5]! << 8)), (r[6]! | (r[7]! << 8)), deliver);
    }
    if ((flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) !== 0) {
      const start = r[6]! | (r[7]! << 8);
      const at = h + start + (r[8]! | (r[9]! << 8));
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

  /** Cuts the TCP super-packet behind r's virtio header into gso-sized segments. */
  private segment(r: Uint8Array, len: number, gso: number, ipHl: number, deliver: Deliver): number {
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
    this.segCopy.copy(0, r, h, hl);
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
}

/**
 * GRO for the write side: one flow being merged, kept after a virtio header in `buf`. The device
 * writes buf[0, finish()) and then clear()s.
 */
export class TcpMerger {
  /** Virtio header, then the merged IP packet. */
  readonly buf = new Uint8Array(VNET_HDR_LEN + GRO_MAX + 64);
  /** Statistics: packets merged into a previous one. */
  merged = 0;
  /** Packets in the merge (0 = nothing pending). */
  count = 0;
  private readonly copier = new Copier(addr(this.buf, 0));
  private len = 0; // IP packet bytes in buf
  private ipHl = 0;
  private hl = 0; // IP + TCP header length
  private gso = 0;
  private nextSeq = 0;
  private closed = false;

  /** Starts a merge with b[o, o+len) if it is a plain in-order TCP data segment. */
  start(b: Uint8Array, o: number, len: number): boolean {
    const ipHl = tcpDataHeaderLen(b, o, len);
    if (ipHl <= 0) return false;
    const t = o + ipHl;
    const thl = (b[t + 12]! >> 4) * 4;
    if ((b[t + 13]! & TCP_FLAG_PSH) !== 0) return false; // would end the merge at once
    const payload = len - ipHl - thl;
    this.copier.copy(VNET_HDR_LEN, b, o, len);
    this.len = len;
    this.count = 1;
    this.ipHl = ipHl;
    this.hl = ipHl + thl;
    this.gso = payload;
    this.nextSeq = (seqAt(b, t) + payload) >>> 0;
    this.closed = false;
    return true;
  }

  /** Appends b[o, o+len) to the merge if it is the flow's next segment; false leaves all as it was. */
  append(b: Uint8Array, o: number, len: number): boolean {
    if (this.count === 0 || this.closed) return false;
    const ipHl = tcpDataHeaderLen(b, o, len);
    if (ipHl !== this.ipHl) return false;
    const p = this.buf;
    const h = VNET_HDR_LEN;
    const t = o + ipHl;
    const pt = h + ipHl;
    const thl = (b[t + 12]! >> 4) * 4;
    if (ipHl + thl !== this.hl) return false;
    const payload = len - this.hl;
    if (payload > this.gso || this.len + payload > GRO_MAX) return false;
    if (seqAt(b, t) !== this.nextSeq) return false;
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
    this.copier.copy(h + this.len, b, o + this.hl, payload);
    this.len += payload;
    this.count++;
    this.merged++;
    this.nextSeq = (this.nextSeq + payload) >>> 0;
    if ((flags & TCP_FLAG_PSH) !== 0) {
      p[pt + 13] = flags;
      this.closed = true;
    }
    if (payload < this.gso) this.closed = true;
    return true;
  }

  /**
   * Completes the virtio header (GSO and a partial checksum when several segments were merged,
   * all zero for a single one) and the IP header; returns the bytes of buf to write, 0 when
   * nothing is pending.
   */
  finish(): number {
    if (this.count === 0) return 0;
    const p = this.buf;
    const h = VNET_HDR_LEN;
    if (this.count > 1) {
      const ipHl = this.ipHl;
      const v4 = p[h]! >> 4 === 4;
      const tcpLen = this.len - ipHl;
      let sum: number;
      if (v4) {
        p[h + 2] = this.len >> 8;
        p[h + 3] = this.len & 0xff;
        p[h + 10] = p[h + 11] = 0;
        const c = ~fold(sum16(p, h, h + 20)) & 0xffff;
        p[h + 10] = c >> 8;
        p[h + 11] = c & 0xff;
        sum = 6 + tcpLen;
        for (let i = 12; i < 20; i += 2) sum += (p[h + i]! << 8) | p[h + i + 1]!;
      } else {
        const pl = this.len - 40;
        p[h + 4] = pl >> 8;
        p[h + 5] = pl & 0xff;
        sum = 6 + tcpLen;
        for (let i = 8; i < 40; i += 2) sum += (p[h + i]! << 8) | p[h + i + 1]!;
      }
      sum = fold(sum);
      // CHECKSUM_PARTIAL: the field holds the folded pseudo-header sum, not its complement.
      const t = h + ipHl;
      p[t + 16] = sum >> 8;
      p[t + 17] = sum & 0xff;
      p[0] = VIRTIO_NET_HDR_F_NEEDS_CSUM;
      p[1] = v4 ? VIRTIO_NET_HDR_GSO_TCPV4 : VIRTIO_NET_HDR_GSO_TCPV6;
      p[2] = this.hl & 0xff;
      p[3] = this.hl >> 8;
      p[4] = this.gso & 0xff;
      p[5] = this.gso >> 8;
      p[6] = ipHl;
      p[7] = 0;
      p[8] = 16;
      p[9] = 0;
    } else {
      p.fill(0, 0, VNET_HDR_LEN);
    }
    return VNET_HDR_LEN + this.len;
  }

  /** Drops the merge (after it was written, or with the device). */
  clear(): void {
    this.count = 0;
    this.len = 0;
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

/** One's-complement fold of a sum to 16 bits. */
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
