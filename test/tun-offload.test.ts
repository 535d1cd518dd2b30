// The TUN offloads as byte work, without a device: TSO super-packets cut by GsoSplitter, partial
// checksums completed, TCP segments merged by TcpMerger (and what it refuses to merge), and a
// merge cut back into the very segments it was made of. test/platform.test.ts runs the same
// code through a Tun over a socketpair.
import { describe, expect, test } from "bun:test";
import { GRO_MAX, GsoSplitter, TcpMerger, VNET_HDR_LEN } from "../platform/linux/tun-offload.ts";
import { expectSegments, fold, pattern, pseudo, sum, tcp, udpPartial, verifies, vnetFields, vnetHeader } from "./lib-packets.ts";

const ACK = 0x10, PSH = 0x08, FIN = 0x01, CWR = 0x80, SYN = 0x02;

/** A read as the kernel hands it over: virtio header, then the packet. */
const withHeader = (hdr: Uint8Array, pkt: Uint8Array) => {
  const m = new Uint8Array(VNET_HDR_LEN + pkt.length);
  m.set(hdr);
  m.set(pkt, VNET_HDR_LEN);
  return m;
};

/** Everything a GsoSplitter delivers for one read, copied out. */
const splitAll = (s: GsoSplitter, read: Uint8Array) => {
  const out: Uint8Array[] = [];
  const n = s.split(read, read.length, (b, o, l) => out.push(b.slice(o, o + l)));
  expect(n).toBe(out.length);
  return out;
};

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

describe("GsoSplitter (read side)", () => {
  for (const v4 of [true, false]) {
    const hl = v4 ? 20 : 40;
    test(`an IPv${v4 ? 4 : 6} super-packet becomes valid segments; FIN/PSH only on the last, CWR only on the first`, () => {
      const big = tcp(v4, 0xffffff00, pattern(2500, 2), CWR | ACK | PSH | FIN, 300);
      new DataView(big.buffer).setUint16(hl + 16, fold(pseudo(big, big.length - hl, 6))); // partial, as the kernel leaves it
      const s = new GsoSplitter();
      const segs = splitAll(s, withHeader(vnetHeader(1, v4 ? 1 : 4, hl + 32, 1000, hl, 16), big));
      expectSegments(segs, big, 1000, [CWR | ACK, ACK, ACK | PSH | FIN]);
      segs.forEach((p) => {
        // everything else in the headers is the super-packet's
        expect(hex(p.subarray(hl, hl + 4))).toBe(hex(big.subarray(hl, hl + 4)));
        expect(hex(p.subarray(hl + 8, hl + 13))).toBe(hex(big.subarray(hl + 8, hl + 13)));
        expect(hex(p.subarray(hl + 18, hl + 32))).toBe(hex(big.subarray(hl + 18, hl + 32)));
      });
      expect([s.superReads, s.segments]).toEqual([1, 3]);
    });
  }

  test("a partial UDP checksum is completed; a result of zero is sent as 0xffff", () => {
    const s = new GsoSplitter();
    const [done] = splitAll(s, withHeader(vnetHeader(1, 0, 0, 0, 20, 6), udpPartial(pattern(11, 4))));
    expect(verifies(done!)).toBe(true);
    // Choose the last payload word so that the datagram sums to 0xffff: its checksum is zero,
    // which UDP spells 0xffff (0 means "no checksum").
    const udp = udpPartial(new Uint8Array(12));
    const rest = fold(sum(udp.subarray(20))); // the checksum field holds the pseudo-header sum
    const w = 0xffff - rest;
    udp[38] = w >> 8;
    udp[39] = w & 0xff;
    const [z] = splitAll(s, withHeader(vnetHeader(1, 0, 0, 0, 20, 6), udp));
    expect(new DataView(z!.buffer).getUint16(26)).toBe(0xffff);
    expect(verifies(z!)).toBe(true);
  });

  test("plain packets pass unchanged; empty reads and unusable super-packets deliver nothing", () => {
    const s = new GsoSplitter();
    const pkt = tcp(true, 1, pattern(100, 1));
    const [same] = splitAll(s, withHeader(vnetHeader(0, 0, 0, 0, 0, 0), pkt));
    expect(hex(same!)).toBe(hex(pkt));
    expect(splitAll(s, new Uint8Array(VNET_HDR_LEN))).toEqual([]);
    expect(splitAll(s, withHeader(vnetHeader(1, 1, 52, 0, 20, 16), pkt))).toEqual([]); // gso size 0
    expect(splitAll(s, withHeader(vnetHeader(1, 1, 52, 1000, 20, 16), pkt.subarray(0, 30)))).toEqual([]); // no TCP header
    expect([s.superReads, s.segments]).toEqual([0, 0]);
  });
});

describe("TcpMerger (write side, GRO)", () => {
  for (const v4 of [true, false]) {
    const hl = v4 ? 20 : 40;
    test(`in-order IPv${v4 ? 4 : 6} segments merge into one GSO packet that splits back into the same segments`, () => {
      const segs = [0, 1, 2].map((k) => tcp(v4, 5000 + k * 800, pattern(800, k), ACK, 40 + k));
      segs.push(tcp(v4, 7400, pattern(300, 9), ACK | PSH, 43));
      const m = new TcpMerger();
      expect(m.start(segs[0]!, 0, segs[0]!.length)).toBe(true);
      for (const p of segs.slice(1)) expect(m.append(p, 0, p.length)).toBe(true);
      expect([m.count, m.merged]).toEqual([4, 3]);
      const n = m.finish();
      expect(n).toBe(VNET_HDR_LEN + hl + 32 + 2700);
      const out = m.buf.slice(0, n);
      expect(vnetFields(out)).toEqual([1, v4 ? 1 : 4, hl + 32, 800, hl, 16]);
      const ip = out.subarray(VNET_HDR_LEN);
      const iv = new DataView(ip.buffer, ip.byteOffset);
      if (v4) {
        expect(iv.getUint16(2)).toBe(ip.length);
        expect(fold(sum(ip.subarray(0, 20)))).toBe(0xffff);
      } else expect(iv.getUint16(4)).toBe(ip.length - 40);
      expect(ip[hl + 13]).toBe(ACK | PSH);
      expect(iv.getUint16(hl + 16)).toBe(fold(pseudo(ip, ip.length - hl, 6)));
      // The kernel segments it again (as GsoSplitter does): the original packets come back.
      const back = splitAll(new GsoSplitter(), out);
      expect(back.map(hex)).toEqual(segs.map(hex));
      m.clear();
      expect(m.finish()).toBe(0);
      expect(m.append(segs[1]!, 0, segs[1]!.length)).toBe(false);
    });
  }

  test("only the flow's next plain segment is appended", () => {
    const first = tcp(true, 1000, pattern(1000, 0));
    const m = new TcpMerger();
    const fresh = () => (m.clear(), expect(m.start(first, 0, first.length)).toBe(true));
    const refused = (p: Uint8Array) => {
      fresh();
      expect(m.append(p, 0, p.length)).toBe(false);
      expect(m.count).toBe(1);
    };
    refused(tcp(true, 2001, pattern(1000, 1))); // sequence gap
    refused(tcp(true, 2000, pattern(1001, 1))); // larger than the first segment
    refused(tcp(true, 2000, pattern(100, 1), ACK | FIN)); // FIN
    refused(tcp(false, 2000, pattern(1000, 1))); // other family
    const otherPort = tcp(true, 2000, pattern(1000, 1));
    otherPort[20 + 1]! ^= 1;
    refused(otherPort);
    const otherTos = tcp(true, 2000, pattern(1000, 1));
    otherTos[1] = 0x10;
    refused(otherTos);
    const otherAck = tcp(true, 2000, pattern(1000, 1));
    otherAck[20 + 11]! ^= 1;
    refused(otherAck);
    // A shorter segment or PSH ends the merge: nothing more is appended after it.
    for (const last of [tcp(true, 2000, pattern(500, 1)), tcp(true, 2000, pattern(1000, 1), ACK | PSH)]) {
      fresh();
      expect(m.append(last, 0, last.length)).toBe(true);
      const next = tcp(true, 2000 + last.length - 52, pattern(1000, 2));
      expect(m.append(next, 0, next.length)).toBe(false);
    }
  });

  test("what cannot start a merge: non-TCP, PSH, SYN, IPv4 fragments and options, no payload", () => {
    const m = new TcpMerger();
    const cannot = (p: Uint8Array) => expect(m.start(p, 0, p.length)).toBe(false);
    cannot(udpPartial(pattern(100, 1)));
    cannot(tcp(true, 1, pattern(100, 1), ACK | PSH));
    cannot(tcp(true, 1, pattern(100, 1), SYN | ACK));
    cannot(tcp(true, 1, new Uint8Array(0)));
    const frag = tcp(true, 1, pattern(100, 1));
    frag[6] = 0x20; // more fragments
    cannot(frag);
    const opts = tcp(true, 1, pattern(100, 1));
    opts[0] = 0x46; // IPv4 header with options
    cannot(opts);
    expect(m.count).toBe(0);
  });

  test("a merge stays within one IP packet's 64 KiB; a lone segment goes out with a zero header", () => {
    const m = new TcpMerger();
    const size = 1400;
    let seq = 0;
    let appended = 0;
    const first = tcp(true, seq, pattern(size, 0));
    expect(m.start(first, 0, first.length)).toBe(true);
    for (;;) {
      seq += size;
      const p = tcp(true, seq, pattern(size, 1));
      if (!m.append(p, 0, p.length)) break;
      appended++;
    }
    expect(52 + (appended + 1) * size).toBeLessThanOrEqual(GRO_MAX);
    expect(52 + (appended + 2) * size).toBeGreaterThan(GRO_MAX);
    m.clear();
    expect(m.start(first, 0, first.length)).toBe(true);
    const n = m.finish();
    expect([...m.buf.subarray(0, VNET_HDR_LEN)]).toEqual(new Array(VNET_HDR_LEN).fill(0));
    expect(hex(m.buf.subarray(VNET_HDR_LEN, n))).toBe(hex(first));
  });
});
