// The endpoint as bytes (core/endpoint.ts): its text at the UAPI edge, the bytes the cookie
// covers, and how the engine keeps a peer's sticky source on the peer's own Endpoint.
import { describe, expect, test } from "bun:test";
import { createDevice } from "../core/device.ts";
import { Endpoint, formatEndpoint } from "../core/endpoint.ts";
import { parseAddrPort } from "../core/uapi-server.ts";
import { makeWorld } from "./lib-fuzz.ts";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

describe("text (UAPI endpoint=)", () => {
  test("parse then format gives the canonical form", () => {
    for (const [text, out] of [
      ["192.0.2.1:51820", "192.0.2.1:51820"],
      ["0.0.0.0:0", "0.0.0.0:0"],
      ["[fd00::1]:1", "[fd00::1]:1"],
      ["[::]:2", "[::]:2"],
      ["[2001:db8:0:0:1:0:0:1]:3", "[2001:db8::1:0:0:1]:3"],
      ["[2001:DB8::0:1]:4", "[2001:db8::1]:4"],
      ["[1:0:0:2:0:0:0:3]:5", "[1:0:0:2::3]:5"],
      ["[1:0:3:4:5:6:7:8]:6", "[1:0:3:4:5:6:7:8]:6"],
      ["[::ffff:1.2.3.4]:65535", "[::ffff:1.2.3.4]:65535"],
      // The zone is accepted and dropped, as wireguard-go 0.0.20220316 does.
      ["[fe80::1%lo]:7", "[fe80::1]:7"],
    ] as const) {
      expect({ text, got: formatEndpoint(parseAddrPort(text)!) }).toEqual({ text, got: out });
    }
  });

  test("malformed endpoints are refused", () => {
    for (const bad of ["", "1.2.3.4", "1.2.3.4:", ":5", "1.2.3.4:65536", "1.2.3.4:x", "1.2.3.256:1", "[1.2.3.4]:5", "1.2.3.4%lo:5", "::1:5", "[::1]", "[::1]5", "[fe80::1%]:5", "[1::2::3]:5", "host:5"]) {
      expect({ bad, ep: parseAddrPort(bad) }).toEqual({ bad, ep: null });
    }
  });

  test("a scope id is printed by interface name when one is given, else by number", () => {
    const ep = Endpoint.of(6, parseAddrPort("[fe80::b]:9")!.addr, 9, 3);
    expect(formatEndpoint(ep)).toBe("[fe80::b%3]:9");
    expect(formatEndpoint(ep, (i) => `eth${i}`)).toBe("[fe80::b%eth3]:9");
    expect(Endpoint.of(4, [10, 0, 0, 1], 9, 3).scope).toBe(0);
  });

  test("the device asks its io for scope names as a method of the io", () => {
    const io = {
      prefix: "eth",
      sendUdp() {},
      writeTun() {},
      bind: () => 1,
      scopeName(i: number) {
        return `${this.prefix}${i}`;
      },
    };
    const dev = createDevice(io, { mono: () => 0, wall: () => 0 });
    expect(dev.endpointText(Endpoint.of(6, parseAddrPort("[fe80::b]:9")!.addr, 9, 3))).toBe("[fe80::b%eth3]:9");
  });
});

describe("bytes", () => {
  test("dstToBytes is the address then the port big-endian (the cookie's input)", () => {
    const out = new Uint8Array(18).fill(0xee);
    expect(parseAddrPort("192.0.2.7:258")!.dstToBytes(out)).toBe(6);
    expect(hex(out.subarray(0, 6))).toBe("c00002070102");
    expect(parseAddrPort("[2001:db8::7]:51820")!.dstToBytes(out)).toBe(18);
    expect(hex(out)).toBe("20010db8000000000000000000000007ca6c");
  });

  test("sameDst covers family, address, port and scope; sameSrc the sticky source", () => {
    const a = parseAddrPort("[fe80::1]:5")!;
    const b = a.clone();
    expect(a.sameDst(b)).toBe(true);
    b.scope = 2;
    expect(a.sameDst(b)).toBe(false);
    expect(parseAddrPort("1.2.3.4:5")!.sameDst(parseAddrPort("1.2.3.4:6")!)).toBe(false);
    expect(parseAddrPort("0.0.0.0:5")!.sameDst(parseAddrPort("[::]:5")!)).toBe(false);
    const c = a.clone();
    expect(a.sameSrc(c)).toBe(true);
    c.hasSrc = true;
    c.src.set([0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    c.srcIfindex = 4;
    expect(a.sameSrc(c)).toBe(false);
    a.copySrc(c);
    expect(a.sameSrc(c)).toBe(true);
    a.srcIfindex = 5;
    expect(a.sameSrc(c)).toBe(false);
    a.clearSrc();
    expect([a.hasSrc, a.srcIfindex, hex(a.src)]).toEqual([false, 0, "00".repeat(16)]);
  });
});

describe("the peer's sticky source in the engine", () => {
  /** A 28-byte IPv4 packet from 10.0.0.`from` to 10.0.0.`to` (the world's tunnel addresses). */
  function packet(from: number, to: number): Uint8Array {
    const pkt = new Uint8Array(28);
    pkt[0] = 0x45;
    pkt[3] = 28;
    pkt.set([10, 0, 0, from, 10, 0, 0, to], 12);
    return pkt;
  }
  /** A data packet B sends to A, and the Endpoint A sees it from: B's address, arriving on `local` (IPv4). */
  function fromB(w: ReturnType<typeof makeWorld>, local: number[] | null): { data: Uint8Array; src: Endpoint } {
    const pkt = packet(2, 1);
    w.b.dev.sendTunPacket(pkt, 0, pkt.length);
    const sent = w.b.out.udp.splice(0);
    expect(sent.length).toBe(1);
    const src = w.b.ep.clone();
    if (local) {
      src.hasSrc = true;
      src.src.set(local);
      src.srcIfindex = 7;
    }
    return { data: sent[0]!.data, src };
  }
  /** Where A's next data packet to B goes, and from which source. */
  function nextSend(w: ReturnType<typeof makeWorld>): Endpoint {
    const pkt = packet(1, 2);
    w.a.dev.sendTunPacket(pkt, 0, pkt.length);
    const sent = w.a.out.udp.splice(0);
    expect(sent.length).toBe(1);
    return sent[0]!.to;
  }

  test("learnt from authenticated packets, kept on the peer's Endpoint, sent with, cleared on request", () => {
    const w = makeWorld(11);
    const peer = [...w.a.dev.peers.values()][0]!;
    const own = peer.endpoint!;
    const events = w.a.out.events.length;
    const p = fromB(w, [192, 0, 2, 100]);
    w.a.dev.receiveUdp(p.data, 0, p.data.length, p.src);
    // The engine copied it: the caller's object is free again.
    p.src.clearSrc();
    expect(peer.endpoint).toBe(own);
    expect([own.hasSrc, [...own.src.subarray(0, 4)], own.srcIfindex]).toEqual([true, [192, 0, 2, 100], 7]);
    const to = nextSend(w);
    expect([formatEndpoint(to), to.hasSrc, [...to.src.subarray(0, 4)]]).toEqual([formatEndpoint(w.b.ep), true, [192, 0, 2, 100]]);
    // Same address, new local address: no endpoint event, the source follows.
    const q = fromB(w, [192, 0, 2, 101]);
    w.a.dev.receiveUdp(q.data, 0, q.data.length, q.src);
    expect([...own.src.subarray(0, 4)]).toEqual([192, 0, 2, 101]);
    expect(w.a.out.events.length).toBe(events);
    // A forged packet from the same address and another local address teaches nothing.
    const forged = Uint8Array.from(q.data);
    forged[20]! ^= 1;
    const r = fromB(w, [192, 0, 2, 102]);
    w.a.dev.receiveUdp(forged, 0, forged.length, r.src);
    expect([...own.src.subarray(0, 4)]).toEqual([192, 0, 2, 101]);
    // A new socket: the kernel chooses by route again.
    w.a.dev.setListenPort(51900);
    expect(own.hasSrc).toBe(false);
    // UAPI endpoint= with the same address also starts without a sticky source.
    w.a.dev.receiveUdp(r.data, 0, r.data.length, r.src);
    expect(own.hasSrc).toBe(true);
    expect(w.a.dev.uapi(`set=1\npublic_key=${peer.publicKeyHex}\nendpoint=${formatEndpoint(w.b.ep)}\n\n`).response).toBe("errno=0\n\n");
    expect(peer.endpoint).toBe(own);
    expect(own.hasSrc).toBe(false);
    expect(w.a.out.events.length).toBe(events);
  });
});
