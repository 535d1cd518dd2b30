// IP/TCP/UDP packet builders and checksum checks for the TUN offload tests, written
// independently of the implementation (platform/linux/tun-offload.ts) so they can catch it out.
import { expect } from "bun:test";

/** Sum of big-endian 16-bit words (odd tail padded with zero), unfolded. */
export const sum = (b: Uint8Array, s = 0) => {
  for (let i = 0; i < b.length; i += 2) s += (b[i]! << 8) | (b[i + 1] ?? 0);
  return s;
};

export const fold = (s: number) => {
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 65536);
  return s;
};

/** The pseudo-header sum of an IPv4/IPv6 packet for an L4 length and protocol. */
export const pseudo = (pkt: Uint8Array, l4len: number, proto: number) => {
  const v4 = pkt[0]! >> 4 === 4;
  return sum(v4 ? pkt.subarray(12, 20) : pkt.subarray(8, 40)) + proto + l4len;
};

/** True when the IPv4 header checksum (if any) and the TCP/UDP checksum verify. */
export const verifies = (pkt: Uint8Array) => {
  const v4 = pkt[0]! >> 4 === 4;
  const hl = v4 ? 20 : 40;
  if (v4 && fold(sum(pkt.subarray(0, 20))) !== 0xffff) return false;
  const proto = v4 ? pkt[9]! : pkt[6]!;
  return fold(pseudo(pkt, pkt.length - hl, proto) + sum(pkt.subarray(hl))) === 0xffff;
};

/**
 * A TCP segment 10.0.0.1:5001 -> 10.0.0.2:443 (or fd00::1 -> fd00::2) with a 32-byte header
 * (timestamp option), valid checksums, and the given sequence number, payload, flags and IPv4 id.
 */
export const tcp = (v4: boolean, seq: number, payload: Uint8Array, flags = 0x10, id = 7) => {
  const hl = v4 ? 20 : 40;
  const p = new Uint8Array(hl + 32 + payload.length);
  const v = new DataView(p.buffer);
  if (v4) {
    p[0] = 0x45;
    v.setUint16(2, p.length);
    v.setUint16(4, id);
    p[6] = 0x40;
    p[8] = 64;
    p[9] = 6;
    p.set([10, 0, 0, 1, 10, 0, 0, 2], 12);
    v.setUint16(10, ~fold(sum(p.subarray(0, 20))) & 0xffff);
  } else {
    p[0] = 0x60;
    v.setUint16(4, p.length - 40);
    p[6] = 6;
    p[7] = 64;
    p[8] = 0xfd;
    p[23] = 1;
    p[24] = 0xfd;
    p[39] = 2;
  }
  v.setUint16(hl, 5001);
  v.setUint16(hl + 2, 443);
  v.setUint32(hl + 4, seq);
  v.setUint32(hl + 8, 99);
  p[hl + 12] = 8 << 4; // 32-byte header: 12 bytes of options (NOP NOP timestamp)
  p[hl + 13] = flags;
  v.setUint16(hl + 14, 512);
  p.set([1, 1, 8, 10, 0, 0, 0, 5, 0, 0, 0, 6], hl + 20);
  p.set(payload, hl + 32);
  v.setUint16(hl + 16, ~fold(pseudo(p, p.length - hl, 6) + sum(p.subarray(hl))) & 0xffff);
  return p;
};

/** n bytes of a pattern that differs per k. */
export const pattern = (n: number, k: number) => Uint8Array.from({ length: n }, (_, i) => (i * 7 + k) & 0xff);

/** A virtio_net_hdr: flags, gso type, header length, gso size, checksum start and offset. */
export const vnetHeader = (flags: number, gsoType: number, hdrLen: number, gsoSize: number, csumStart: number, csumOffset: number) => {
  const h = new Uint8Array(10);
  const v = new DataView(h.buffer);
  h[0] = flags;
  h[1] = gsoType;
  v.setUint16(2, hdrLen, true);
  v.setUint16(4, gsoSize, true);
  v.setUint16(6, csumStart, true);
  v.setUint16(8, csumOffset, true);
  return h;
};

/**
 * Asserts that `segs` are the TCP super-packet `big` (as tcp() builds it) cut every `gso` payload
 * bytes: lengths, checksums, sequence numbers, IPv4 lengths and ids counting up, IPv6 payload
 * lengths, payload bytes, and the TCP flags given per segment.
 */
export const expectSegments = (segs: Uint8Array[], big: Uint8Array, gso: number, flags: number[]) => {
  const v4 = big[0]! >> 4 === 4;
  const hl = v4 ? 20 : 40;
  const bv = new DataView(big.buffer, big.byteOffset);
  const seq0 = bv.getUint32(hl + 4);
  const id0 = v4 ? bv.getUint16(4) : 0;
  const payload = big.subarray(hl + 32);
  expect(segs.map((s) => s.length)).toEqual(flags.map((_, k) => hl + 32 + Math.min(gso, payload.length - k * gso)));
  segs.forEach((s, k) => {
    const v = new DataView(s.buffer, s.byteOffset);
    expect(verifies(s)).toBe(true);
    expect(v.getUint32(hl + 4)).toBe((seq0 + k * gso) >>> 0);
    expect(s[hl + 13]).toBe(flags[k]!);
    if (v4) {
      expect(v.getUint16(2)).toBe(s.length);
      expect(v.getUint16(4)).toBe((id0 + k) & 0xffff);
    } else expect(v.getUint16(4)).toBe(s.length - 40);
    expect(Buffer.from(s.subarray(hl + 32)).equals(Buffer.from(payload.subarray(k * gso, (k + 1) * gso)))).toBe(true);
  });
};

/** The fields of the virtio_net_hdr at the start of b, in vnetHeader's order. */
export const vnetFields = (b: Uint8Array) => {
  const v = new DataView(b.buffer, b.byteOffset, 10);
  return [b[0], b[1], v.getUint16(2, true), v.getUint16(4, true), v.getUint16(6, true), v.getUint16(8, true)];
};

/**
 * An IPv4 UDP datagram 10.0.0.1:1234 -> 10.0.0.2:53 with `payload`, whose checksum field holds
 * only the pseudo-header sum, as the kernel leaves it for NEEDS_CSUM.
 */
export const udpPartial = (payload: Uint8Array) => {
  const udp = new Uint8Array(28 + payload.length);
  const uv = new DataView(udp.buffer);
  udp.set([0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
  uv.setUint16(2, udp.length);
  uv.setUint16(10, ~fold(sum(udp.subarray(0, 20))) & 0xffff);
  uv.setUint16(20, 1234);
  uv.setUint16(22, 53);
  uv.setUint16(24, 8 + payload.length);
  udp.set(payload, 28);
  uv.setUint16(26, fold(pseudo(udp, 8 + payload.length, 17)));
  return udp;
};
