// Two (or three) engines on a simulated network with a fake clock: latency, jitter (reordering),
// loss and drop filters; time advances event by event through nextDeadline()/tick().
import { describe, expect, test } from "bun:test";
import { generatePrivateKey, publicKey, hash, mac } from "../core/crypto.ts";
import { createDevice, type Device } from "../core/device.ts";
import type { DeviceEvent } from "../core/device-api.ts";
import { Endpoint, formatEndpoint } from "../core/endpoint.ts";
import { parseAddrPort } from "../core/uapi-server.ts";
import { LABEL_MAC1 } from "../core/cookie.ts";
import { prng } from "./lib-fuzz.ts";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
/** An endpoint from UAPI text ("192.0.2.1:51820", "[2001:db8::2]:51820"). */
const ep = (text: string) => parseAddrPort(text)!;
const text = (e: Endpoint) => formatEndpoint(e);


interface Pkt {
  at: number;
  seq: number;
  from: Endpoint;
  to: Endpoint;
  data: Uint8Array;
}

class SimNode {
  dev!: Device;
  tun: Uint8Array[] = [];
  events: DeviceEvent[] = [];
  sent: { t: number; to: Endpoint; data: Uint8Array }[] = [];
  priv: Uint8Array;
  pub: Uint8Array;
  constructor(
    readonly net: Net,
    readonly name: string,
    public ep: Endpoint,
    seed: number,
  ) {
    const r = prng(seed);
    this.priv = generatePrivateKey(r.bytes);
    this.pub = publicKey(this.priv);
    this.dev = createDevice(
      {
        sendUdp: (buf, off, len, to) => {
          const data = buf.slice(off, off + len);
          this.sent.push({ t: net.t, to: to.clone(), data });
          net.send(this.ep, to, data);
        },
        writeTun: (buf, off, len) => {
          this.tun.push(buf.slice(off, off + len));
        },
        bind: (p) => p || 40000,
        event: (e) => this.events.push(e),
      },
      net.clock,
      { random: r.bytes, mtu: 1420, deferHandshakes: true },
    );
  }
  uapi(s: string): string {
    return this.dev.uapi(s).response;
  }
  sentOfType(type: number, since = -Infinity) {
    return this.sent.filter((p) => p.data[0] === type && p.t >= since);
  }
  get(): Record<string, string[]> {
    const out: Record<string, string[]> = {};
    for (const line of this.uapi("get=1\n\n").split("\n")) {
      const eq = line.indexOf("=");
      if (eq > 0) (out[line.slice(0, eq)] ??= []).push(line.slice(eq + 1));
    }
    return out;
  }
}

class Net {
  t = 0;
  readonly clock = { mono: () => this.t, wall: () => 1_700_000_000_000 + this.t };
  nodes: SimNode[] = [];
  inflight: Pkt[] = [];
  seq = 0;
  loss = 0;
  latency = 5;
  jitter = 0;
  /** return false to drop */
  filter: (from: Endpoint, to: Endpoint, data: Uint8Array) => boolean = () => true;
  rng = prng(99);
  send(from: Endpoint, to: Endpoint, data: Uint8Array) {
    if (!this.filter(from, to, data)) return;
    if (this.loss > 0 && this.rng.float() < this.loss) return;
    const at = this.t + this.latency + this.rng.float() * this.jitter;
    this.inflight.push({ at, seq: this.seq++, from: from.clone(), to: to.clone(), data });
  }
  inject(from: Endpoint, to: Endpoint, data: Uint8Array) {
    this.inflight.push({ at: this.t, seq: this.seq++, from: from.clone(), to: to.clone(), data });
  }
  node(name: string, ip: string, seed: number): SimNode {
    const n = new SimNode(this, name, ep(ip.includes(":") ? `[${ip}]:51820` : `${ip}:51820`), seed);
    this.nodes.push(n);
    return n;
  }
  /** Advance the clock to now+ms, delivering packets and firing timers in time order. */
  run(ms: number) {
    const until = this.t + ms;
    for (let guard = 0; ; guard++) {
      if (guard > 5_000_000) throw new Error("simulation does not converge");
      let next = Infinity;
      for (const p of this.inflight) next = Math.min(next, p.at);
      for (const n of this.nodes) next = Math.min(next, n.dev.nextDeadline());
      if (next > until) break;
      this.t = Math.max(this.t, next);
      const due = this.inflight.filter((p) => p.at <= this.t).sort((a, b) => a.at - b.at || a.seq - b.seq);
      this.inflight = this.inflight.filter((p) => p.at > this.t);
      for (const p of due) {
        const dst = this.nodes.find((n) => n.ep.sameDst(p.to));
        // the receiver gets a reused src object, like the daemon's batch loop
        const src = p.from.clone();
        dst?.dev.receiveUdp(p.data, 0, p.data.length, src);
        src.copyFrom(ep("203.0.113.250:1"));
      }
      for (const n of this.nodes) if (n.dev.nextDeadline() <= this.t) n.dev.tick();
    }
    this.t = until;
  }
}

function ip4(src: string, dst: string, payloadLen = 36, tag = 0): Uint8Array {
  const b = new Uint8Array(20 + payloadLen);
  b[0] = 0x45;
  b[2] = b.length >> 8;
  b[3] = b.length & 255;
  b[8] = 64;
  b[9] = 17;
  b.set(src.split(".").map(Number), 12);
  b.set(dst.split(".").map(Number), 16);
  if (payloadLen >= 4) new DataView(b.buffer).setUint32(20, tag);
  return b;
}
const tagOf = (p: Uint8Array) => new DataView(p.buffer, p.byteOffset).getUint32(20);

/** A at 192.0.2.1 (tunnel 10.9.0.1) knows B's endpoint; B (10.9.0.2) learns A's by roaming. */
function pair(opts: { loss?: number; jitter?: number; pkaA?: number } = {}) {
  const net = new Net();
  net.loss = opts.loss ?? 0;
  net.jitter = opts.jitter ?? 0;
  const A = net.node("A", "192.0.2.1", 1);
  const B = net.node("B", "192.0.2.2", 2);
  expect(
    A.uapi(
      `set=1\nprivate_key=${hex(A.priv)}\nlisten_port=51820\npublic_key=${hex(B.pub)}\nendpoint=192.0.2.2:51820\n` +
        (opts.pkaA ? `persistent_keepalive_interval=${opts.pkaA}\n` : "") +
        `allowed_ip=10.9.0.2/32\n\n`,
    ),
  ).toBe("errno=0\n\n");
  expect(B.uapi(`set=1\nprivate_key=${hex(B.priv)}\nlisten_port=51820\npublic_key=${hex(A.pub)}\nallowed_ip=10.9.0.1/32\n\n`)).toBe(
    "errno=0\n\n",
  );
  A.dev.up();
  B.dev.up();
  const aToB = (tag = 0, len = 36) => {
    const p = ip4("10.9.0.1", "10.9.0.2", len, tag);
    A.dev.sendTunPacket(p, 0, p.length);
  };
  const bToA = (tag = 0, len = 36) => {
    const p = ip4("10.9.0.2", "10.9.0.1", len, tag);
    B.dev.sendTunPacket(p, 0, p.length);
  };
  return { net, A, B, aToB, bToA };
}

describe("engine pair", () => {
  test("handshake and data both ways; stats, events and uapi get", () => {
    const { net, A, B, aToB, bToA } = pair();
    aToB(1);
    net.run(100);
    expect(B.tun.map(tagOf)).toEqual([1]);
    bToA(2);
    net.run(100);
    expect(A.tun.map(tagOf)).toEqual([2]);
    expect(A.events.map((e) => e.type)).toContain("handshake");
    expect(B.events.map((e) => e.type)).toEqual(["peer-added", "endpoint", "handshake", "keys-rotated"]);
    const ga = A.get();
    const gb = B.get();
    expect(gb.endpoint).toEqual(["192.0.2.1:51820"]);
    expect(Number(ga.last_handshake_time_sec![0])).toBe(1_700_000_000);
    // tx/rx count whole UDP payloads incl. handshakes, symmetric on a lossless link
    const sum = (n: SimNode) => n.sent.reduce((s, p) => s + p.data.length, 0);
    expect(Number(ga.tx_bytes![0])).toBe(sum(A));
    expect(Number(gb.rx_bytes![0])).toBe(sum(A));
    expect(Number(gb.tx_bytes![0])).toBe(sum(B));
    expect(Number(ga.rx_bytes![0])).toBe(sum(B));
    // 36+20 = 56-byte packet padded to 64: 16 header + 64 + 16 tag
    expect(A.sentOfType(4)[0]!.data.length).toBe(96);
  });

  test("lossy, reordering link: delivered packets are exactly once and in the sent set", () => {
    const { net, A, B, aToB, bToA } = pair({ jitter: 40 });
    aToB(-1 >>> 0);
    net.run(200);
    B.tun.length = 0;
    net.loss = 0.1;
    for (let i = 0; i < 400; i++) {
      aToB(i);
      bToA(10_000 + i);
      net.run(7);
    }
    net.run(20_000);
    const gotB = B.tun.map(tagOf);
    const gotA = A.tun.map(tagOf);
    expect(new Set(gotB).size).toBe(gotB.length);
    expect(new Set(gotA).size).toBe(gotA.length);
    expect(gotB.every((t) => t < 400)).toBe(true);
    expect(gotA.every((t) => t >= 10_000 && t < 10_400)).toBe(true);
    expect(gotB.length).toBeGreaterThan(300);
    expect(gotA.length).toBeGreaterThan(300);
    // jitter of 40 ms with 7 ms spacing reorders packets; the replay window must accept them
    let reordered = 0;
    for (let i = 1; i < gotB.length; i++) if (gotB[i]! < gotB[i - 1]!) reordered++;
    expect(reordered).toBeGreaterThan(10);
  });

  test("staged packets are bounded (128, oldest dropped) and flushed after the handshake", () => {
    const { net, B, aToB } = pair();
    net.filter = () => false; // nothing gets through yet
    for (let i = 0; i < 300; i++) aToB(i);
    net.filter = () => true;
    net.run(6_000); // retransmission after ~5 s completes the handshake
    expect(B.tun.map(tagOf)).toEqual(Array.from({ length: 128 }, (_, i) => 172 + i));
  });

  test("rekey at 120 s by the initiator only, traffic uninterrupted", () => {
    const { net, A, B, aToB, bToA } = pair();
    aToB(0);
    net.run(50);
    const firstIndex = A.dev.peers.values().next().value!.current!.localIndex;
    for (let s = 1; s <= 130; s++) {
      aToB(s);
      bToA(s);
      net.run(1000);
    }
    const inits = A.sentOfType(1);
    expect(inits.length).toBe(2);
    expect(inits[1]!.t).toBeGreaterThanOrEqual(120_000);
    expect(inits[1]!.t).toBeLessThan(122_000);
    expect(B.sentOfType(1).length).toBe(0);
    expect(A.dev.peers.values().next().value!.current!.localIndex).not.toBe(firstIndex);
    expect(B.tun.length).toBe(131);
    expect(A.tun.length).toBe(130);
  });

  test("silent responder: initiation every ~5 s, gives up after 20 initiations, staged dropped", () => {
    const { net, A, aToB } = pair();
    net.filter = (_f, to) => text(to) !== "192.0.2.2:51820";
    aToB(1);
    net.run(300_000);
    const inits = A.sentOfType(1);
    expect(inits.length).toBe(20); // 1 + 19 retries (attempts > MAX_TIMER_HANDSHAKES = 18 gives up)
    for (let i = 1; i < inits.length; i++) {
      const gap = inits[i]!.t - inits[i - 1]!.t;
      expect(gap).toBeGreaterThanOrEqual(5000);
      expect(gap).toBeLessThan(5334);
    }
    // every retry is a new initiation: new sender index and new ephemeral
    expect(new Set(inits.map((p) => hex(p.data.subarray(4, 8)))).size).toBe(20);
    expect(new Set(inits.map((p) => hex(p.data.subarray(8, 40)))).size).toBe(20);
    expect(A.events.filter((e) => e.type === "handshake-failed").length).toBe(1);
    const peer = A.dev.peers.values().next().value!;
    expect(peer.staged.length).toBe(0);
    // after giving up, once the path works the staged packet is gone; new traffic restarts
    net.filter = () => true;
    aToB(2);
    net.run(100);
    expect(net.nodes[1]!.tun.map(tagOf)).toEqual([2]);
  });

  test("keepalive 10 s after receiving data without replying; new handshake 15 s after unanswered data", () => {
    const { net, A, B, aToB } = pair();
    aToB(1);
    net.run(100);
    const t0 = net.t;
    net.run(12_000);
    const ka = B.sentOfType(4, t0);
    expect(ka.length).toBe(1);
    expect(ka[0]!.data.length).toBe(32);
    expect(ka[0]!.t - t0).toBeGreaterThan(9_800);
    expect(ka[0]!.t - t0).toBeLessThan(10_100);
    // now B stops answering: A sends data and initiates 15 s (+jitter) later
    net.filter = (_f, to) => text(to) !== "192.0.2.1:51820";
    const t1 = net.t;
    aToB(2);
    net.run(16_000);
    const inits = A.sentOfType(1, t1);
    expect(inits.length).toBe(1);
    expect(inits[0]!.t - t1).toBeGreaterThanOrEqual(15_000);
    expect(inits[0]!.t - t1).toBeLessThan(15_334);
  });

  test("persistent keepalive: immediate when enabled while up, then every interval when idle", () => {
    const { net, A, B, aToB } = pair();
    aToB(1);
    net.run(100);
    const t0 = net.t;
    expect(A.uapi(`set=1\npublic_key=${hex(B.pub)}\npersistent_keepalive_interval=25\n\n`)).toBe("errno=0\n\n");
    expect(A.sentOfType(4, t0).length).toBe(1); // sent synchronously
    net.run(101_000);
    const ka = A.sentOfType(4, t0).filter((p) => p.data.length === 32);
    // t0, then 25 s after the last packet either way: B's keepalive at ~t0+10 s re-arms it
    expect(ka.map((p) => Math.round((p.t - t0) / 100) / 10)).toEqual([0, 34.9, 59.9, 84.9]);
    expect(B.get().persistent_keepalive_interval).toEqual(["0"]);
    expect(A.get().persistent_keepalive_interval).toEqual(["25"]);
  });

  test("keys older than 180 s are neither used nor accepted", () => {
    const { net, A, B, aToB } = pair();
    aToB(1);
    net.run(100);
    // capture two data packets without delivering them
    net.filter = () => false;
    aToB(2);
    aToB(3);
    const [p2, p3] = A.sentOfType(4).slice(-2);
    net.run(170_000);
    net.inject(A.ep, B.ep, p2!.data);
    net.run(10);
    expect(B.tun.map(tagOf)).toEqual([1, 2]); // still valid at ~170 s
    net.run(11_000);
    net.inject(A.ep, B.ep, p3!.data);
    net.run(10);
    expect(B.tun.map(tagOf)).toEqual([1, 2]); // dropped at > 180 s
    // A must not send with the old keypair: new data triggers a handshake instead
    const t = net.t;
    aToB(4);
    expect(A.sentOfType(4, t).length).toBe(0);
    expect(A.sentOfType(1, t).length).toBe(1);
    net.filter = () => true;
    net.run(6_000);
    expect(B.tun.map(tagOf)).toEqual([1, 2, 4]);
  });

  test("zero_key_material erases keypairs 540 s after the last session", () => {
    const { net, A, B, aToB } = pair();
    aToB(1);
    net.run(100);
    net.filter = () => false;
    net.run(541_000);
    for (const n of [A, B]) {
      const p = n.dev.peers.values().next().value!;
      expect([p.current, p.previous, p.next]).toEqual([null, null, null]);
      expect(n.dev.keypairsByIndex.size).toBe(0);
    }
  });

  test("session survives three simulated hours of lossy traffic", () => {
    const { net, A, B, aToB, bToA } = pair({ loss: 0.05, jitter: 10 });
    let sent = 0;
    for (let s = 0; s < 3 * 3600; s += 2) {
      aToB(s);
      bToA(s);
      sent++;
      net.run(2000);
    }
    net.run(1000);
    expect(B.tun.length / sent).toBeGreaterThan(0.85);
    expect(A.tun.length / sent).toBeGreaterThan(0.85);
    // still working at the end, with a handshake within the last ~2-3 minutes
    const lastHs = Number(A.get().last_handshake_time_sec![0]);
    expect(net.clock.wall() / 1000 - lastHs).toBeLessThan(200);
    const before = B.tun.length;
    net.loss = 0;
    aToB(999_999);
    net.run(100);
    expect(B.tun.length).toBe(before + 1);
    expect(A.events.filter((e) => e.type === "handshake-failed").length).toBe(0);
  }, 30_000);

  test("replayed data is dropped without touching counters or endpoint", () => {
    const { net, A, B, aToB } = pair();
    aToB(1);
    net.run(100);
    const pkt = A.sentOfType(4).at(-1)!;
    const rx = B.get().rx_bytes;
    net.inject(ep("198.51.100.7:9"), B.ep, pkt.data);
    net.run(10);
    expect(B.tun.length).toBe(1);
    expect(B.get().rx_bytes).toEqual(rx!);
    expect(B.get().endpoint).toEqual(["192.0.2.1:51820"]);
    expect(B.sent.length).toBe(1); // only the handshake response
  });

  test("bit flips in a data packet are dropped and do not advance the replay window", () => {
    const { net, A, B, aToB } = pair();
    aToB(1);
    net.run(100);
    net.filter = () => false;
    aToB(2);
    aToB(3);
    const [p2, p3] = A.sentOfType(4).slice(-2).map((p) => p.data);
    net.filter = () => true;
    const rx = B.get().rx_bytes;
    const attacker = ep("198.51.100.5:5");
    // flip one bit per byte: type/reserved, receiver index, counter, ciphertext, tag
    for (let i = 0; i < p3!.length; i++) {
      const bad = Uint8Array.from(p3!);
      bad[i]! ^= 1 << i % 8;
      net.inject(attacker, B.ep, bad);
    }
    net.run(10);
    expect(B.tun.map(tagOf)).toEqual([1]);
    expect(B.get().rx_bytes).toEqual(rx!);
    expect(B.get().endpoint).toEqual(["192.0.2.1:51820"]);
    // the genuine packets still pass, in either order
    net.inject(A.ep, B.ep, p3!);
    net.inject(A.ep, B.ep, p2!);
    net.run(10);
    expect(B.tun.map(tagOf)).toEqual([1, 3, 2]);
  });

  test("simultaneous initiations from both sides converge", () => {
    const { net, A, B, aToB, bToA } = pair();
    B.uapi(`set=1\npublic_key=${hex(A.pub)}\nendpoint=192.0.2.1:51820\n\n`);
    aToB(1);
    bToA(2);
    net.run(20_000);
    expect(B.tun.map(tagOf)).toEqual([1]);
    expect(A.tun.map(tagOf)).toEqual([2]);
    aToB(3);
    bToA(4);
    net.run(100);
    expect(B.tun.map(tagOf)).toEqual([1, 3]);
    expect(A.tun.map(tagOf)).toEqual([2, 4]);
  });

  test("spoofed inner source address is dropped", () => {
    const { net, A, B, aToB } = pair();
    aToB(1);
    net.run(100);
    const spoofed = ip4("10.9.0.77", "10.9.0.2", 36, 5);
    A.dev.sendTunPacket(spoofed, 0, spoofed.length);
    const bad6 = new Uint8Array(40); // IPv6 header with no payload but not in allowed IPs
    bad6[0] = 0x60;
    net.run(100);
    expect(B.tun.map(tagOf)).toEqual([1]);
    // inconsistent inner length (total_length beyond the plaintext) is dropped too
    const lying = ip4("10.9.0.1", "10.9.0.2", 36, 6);
    lying[2] = 0x10;
    A.dev.sendTunPacket(lying, 0, lying.length);
    net.run(100);
    expect(B.tun.map(tagOf)).toEqual([1]);
  });

  test("roaming: endpoint follows authenticated packets only, stored as a copy", () => {
    const { net, A, B, aToB } = pair();
    aToB(1);
    net.run(100);
    expect(B.get().endpoint).toEqual(["192.0.2.1:51820"]);
    // garbage and forged packets from an attacker with a live receiver index change nothing
    const attacker = ep("198.51.100.66:666");
    const real = A.sentOfType(4).at(-1)!.data;
    const forged = Uint8Array.from(real);
    forged[8] = 200; // new counter, tag no longer valid
    net.inject(attacker, B.ep, forged);
    const cookie = new Uint8Array(64);
    cookie[0] = 3;
    cookie.set(real.subarray(4, 8), 4);
    net.inject(attacker, B.ep, cookie);
    net.run(10);
    expect(B.get().endpoint).toEqual(["192.0.2.1:51820"]);
    expect(B.events.filter((e) => e.type === "endpoint").length).toBe(1);
    // A moves: the next authenticated packet updates B's endpoint, and B answers there
    A.ep = ep("192.0.2.11:40001");
    aToB(2);
    net.run(100);
    expect(B.get().endpoint).toEqual(["192.0.2.11:40001"]);
    const p = ip4("10.9.0.2", "10.9.0.1", 36, 3);
    B.dev.sendTunPacket(p, 0, p.length);
    net.run(100);
    expect(A.tun.map(tagOf)).toEqual([3]);
    expect(text(B.sent.at(-1)!.to)).toBe("192.0.2.11:40001");
  });

  test("unauthenticated input gets silence and changes nothing", () => {
    const { net, A, B, aToB } = pair();
    aToB(1);
    net.run(100);
    const snap = () => JSON.stringify([B.get(), B.events.length, B.dev.keypairsByIndex.size, B.dev.handshakesByIndex.size, B.tun.length]);
    const before = snap();
    const sentBefore = B.sent.length;
    const r = prng(7);
    const attacker = ep("198.51.100.9:7");
    const init = A.sentOfType(1)[0]!.data;
    const shapes: Uint8Array[] = [];
    for (const [type, len] of [[1, 148], [2, 92], [3, 64], [4, 32], [4, 100], [1, 147], [5, 148], [0, 4]] as const) {
      for (let k = 0; k < 20; k++) {
        const b = r.bytes(len);
        b[0] = type;
        b[1] = b[2] = b[3] = 0;
        shapes.push(b);
      }
    }
    // valid mac1 but garbage contents; an old initiation replayed; reserved bytes set
    const m1 = r.bytes(148);
    m1[0] = 1;
    m1[1] = m1[2] = m1[3] = 0;
    m1.set(mac(hash(LABEL_MAC1, B.pub), m1.subarray(0, 116)), 116);
    shapes.push(m1, Uint8Array.from(init));
    const reserved = Uint8Array.from(init);
    reserved[1] = 1;
    shapes.push(reserved);
    for (const s of shapes) net.inject(attacker, B.ep, s);
    net.run(10);
    expect(B.sent.length).toBe(sentBefore);
    expect(snap()).toBe(before);
    expect(B.dev.rateLimiter.size()).toBe(0);
  });

  test("responder never sends with `next` before key confirmation", () => {
    const { net, A, B } = pair();
    // A's first initiation is delivered; everything after B's response from A is lost
    let responses = 0;
    net.filter = (from, _to, d) => {
      if (d[0] === 2) responses++;
      return !(text(from) === "192.0.2.1:51820" && responses > 0);
    };
    const p = ip4("10.9.0.1", "10.9.0.2", 36, 1);
    A.dev.sendTunPacket(p, 0, p.length);
    net.run(50);
    expect(B.sentOfType(2).length).toBe(1);
    const q = ip4("10.9.0.2", "10.9.0.1", 36, 2);
    B.dev.sendTunPacket(q, 0, q.length);
    net.run(10);
    expect(B.sentOfType(4).length).toBe(0);
    expect(B.dev.peers.values().next().value!.next).not.toBeNull();
  });

  test("under a handshake flood the responder demands a cookie; the initiator's retry with mac2 gets through", () => {
    const { net, A, B, aToB } = pair();
    const attacker = ep("198.51.100.13:13");
    const r = prng(3);
    const mac1Key = hash(LABEL_MAC1, B.pub);
    const junk = () => {
      const m = r.bytes(148);
      m[0] = 1;
      m[1] = m[2] = m[3] = 0;
      m.set(mac(mac1Key, m.subarray(0, 116)), 116);
      m.fill(0, 132);
      return m;
    };
    const flood = () => {
      for (let i = 0; i < 200; i++) net.inject(attacker, B.ep, junk());
    };
    flood();
    net.run(1);
    aToB(1);
    net.run(50);
    // B answered A's initiation with a cookie reply, not a response
    expect(B.sentOfType(2).length).toBe(0);
    const cookieReplies = B.sentOfType(3).filter((p) => text(p.to) === "192.0.2.1:51820");
    expect(cookieReplies.length).toBe(1);
    // the 200 junk messages arrived together: the first ones saw a backlog of >= 128 behind them,
    // so B was under load for all of them (and for the next second): every one got a cookie reply
    expect(B.sentOfType(3).filter((p) => p.to.sameDst(attacker)).length).toBe(200);
    // A does not resend early because of the cookie
    expect(A.sentOfType(1).length).toBe(1);
    // keep flooding; A's retransmission carries mac2 and is processed despite the load
    for (let i = 0; i < 6; i++) {
      flood();
      net.run(1000);
    }
    const inits = A.sentOfType(1);
    expect(inits.length).toBe(2);
    expect(hex(inits[1]!.data.subarray(132))).not.toBe("00".repeat(16));
    expect(hex(inits[0]!.data.subarray(132))).toBe("00".repeat(16));
    expect(B.sentOfType(2).length).toBe(1);
    expect(B.tun.map(tagOf)).toEqual([1]);
  });

  test("under load means a handshake backlog of >= 128 (go's queue / 8), not a message rate", () => {
    const { net, A, B } = pair();
    const attacker = ep("198.51.100.13:13");
    const r = prng(4);
    const mac1Key = hash(LABEL_MAC1, B.pub);
    const junk = () => {
      const m = r.bytes(148);
      m[0] = 1;
      m[1] = m[2] = m[3] = 0;
      m.set(mac(mac1Key, m.subarray(0, 116)), 116);
      m.fill(0, 132);
      return m;
    };
    const toAttacker = () => B.sentOfType(3).filter((p) => p.to.sameDst(attacker)).length;
    // 128 at once: the first one dequeued still has 127 behind it — not under load
    for (let i = 0; i < 128; i++) net.inject(attacker, B.ep, junk());
    net.run(1);
    expect(toAttacker()).toBe(0);
    // thousands per second, but each answered before the next arrives: never a backlog
    for (let i = 0; i < 600; i++) {
      net.inject(attacker, B.ep, junk());
      net.run(0.5);
    }
    expect(toAttacker()).toBe(0);
    // 129 at once: the first one has 128 behind it — under load from there, for 1 s
    for (let i = 0; i < 129; i++) net.inject(attacker, B.ep, junk());
    net.run(1);
    expect(toAttacker()).toBe(129);
    net.inject(attacker, B.ep, junk());
    net.run(900);
    expect(toAttacker()).toBe(130);
    net.run(200);
    net.inject(attacker, B.ep, junk());
    net.run(1);
    expect(toAttacker()).toBe(130);
    // the queue is bounded like go's (1024); the rest is dropped
    for (let i = 0; i < 1100; i++) net.inject(attacker, B.ep, junk());
    net.run(1);
    expect(B.dev.handshakesDropped).toBe(1100 - 1024);
    void A;
  }, 30_000);

  test("many peers handshaking at 500/s, each answered in time, get responses, not cookies", () => {
    const net = new Net();
    net.latency = 1;
    const B = net.node("B", "192.0.2.2", 2);
    const n = 150;
    const peers: SimNode[] = [];
    let conf = `set=1\nprivate_key=${hex(B.priv)}\nlisten_port=51820\n`;
    for (let i = 0; i < n; i++) {
      const P = net.node(`P${i}`, `198.18.${i >> 8}.${(i & 255) + 1}`, 100 + i);
      expect(
        P.uapi(`set=1\nprivate_key=${hex(P.priv)}\nlisten_port=51820\npublic_key=${hex(B.pub)}\nendpoint=192.0.2.2:51820\nallowed_ip=10.9.0.2/32\n\n`),
      ).toBe("errno=0\n\n");
      P.dev.up();
      conf += `public_key=${hex(P.pub)}\nallowed_ip=10.10.${i >> 8}.${i & 255}/32\n`;
      peers.push(P);
    }
    expect(B.uapi(conf + "\n")).toBe("errno=0\n\n");
    B.dev.up();
    for (let i = 0; i < n; i++) {
      const p = ip4(`10.10.${i >> 8}.${i & 255}`, "10.9.0.2", 36, i);
      peers[i]!.dev.sendTunPacket(p, 0, p.length);
      net.run(2);
    }
    net.run(100);
    expect(B.sentOfType(3).length).toBe(0);
    expect(B.sentOfType(2).length).toBe(n);
    expect(B.tun.length).toBe(n);
  }, 30_000);

  test("down() clears sessions and stops timers; up() with persistent keepalive sends one", () => {
    const { net, A, B, aToB } = pair({ pkaA: 30 });
    aToB(1);
    net.run(100);
    A.dev.down();
    const p = A.dev.peers.values().next().value!;
    expect(p.current).toBeNull();
    expect(A.dev.nextDeadline()).toBe(Infinity);
    const n = A.sent.length;
    net.run(100_000);
    expect(A.sent.length).toBe(n);
    A.dev.up();
    expect(A.sentOfType(1).length).toBe(2); // the keepalive needs a key: a handshake starts
    net.run(100);
    expect(p.current).not.toBeNull();
    void B;
  });

  test("IPv6 endpoints and IPv6 inner packets", () => {
    const net = new Net();
    const A = net.node("A", "2001:db8::1", 11);
    const B = net.node("B", "2001:db8::2", 12);
    A.uapi(`set=1\nprivate_key=${hex(A.priv)}\nlisten_port=51820\npublic_key=${hex(B.pub)}\nendpoint=[2001:db8:0::2]:51820\nallowed_ip=fd00::2/128\n\n`);
    B.uapi(`set=1\nprivate_key=${hex(B.priv)}\nlisten_port=51820\npublic_key=${hex(A.pub)}\nallowed_ip=fd00::/127\n\n`);
    A.dev.up();
    B.dev.up();
    const v6 = (src: number, dst: number, payload: number, tag: number) => {
      const b = new Uint8Array(40 + payload);
      b[0] = 0x60;
      b[4] = payload >> 8;
      b[5] = payload & 255;
      b[6] = 17;
      b[7] = 64;
      b[8] = 0xfd;
      b[23] = src;
      b[24] = 0xfd;
      b[39] = dst;
      new DataView(b.buffer).setUint32(40, tag);
      return b;
    };
    const p = v6(1, 2, 20, 77);
    A.dev.sendTunPacket(p, 0, p.length);
    net.run(100);
    expect(B.tun.map((x) => new DataView(x.buffer).getUint32(40))).toEqual([77]);
    expect(B.tun[0]!.length).toBe(60); // padding trimmed by the IPv6 payload length
    expect(B.get().endpoint).toEqual(["[2001:db8::1]:51820"]);
    const q = v6(2, 1, 20, 78);
    B.dev.sendTunPacket(q, 0, q.length);
    net.run(100);
    expect(A.tun.length).toBe(1);
    // inner source fd00::3 is not A's (B's table maps fd00::/127 = fd00::0-1 to A)
    const spoof = v6(3, 2, 20, 79);
    A.dev.sendTunPacket(spoof, 0, spoof.length);
    net.run(100);
    expect(B.tun.length).toBe(1);
  });

  test("close() zeroes keys", () => {
    const { net, A, aToB } = pair();
    aToB(1);
    net.run(100);
    const kp = A.dev.peers.values().next().value!.current!;
    A.dev.close();
    expect(kp.destroyed).toBe(true);
    expect(A.dev.privateKey).toBeNull();
    expect(A.dev.peers.size).toBe(0);
    expect(A.uapi("get=1\n\n")).toBe("listen_port=51820\nerrno=0\n\n");
  });
});

describe("persistent keepalive starts whatever the configuration order (kernel semantics)", () => {
  type Step = "key" | "link" | "endpoint" | "keepalive";
  const perms = (xs: Step[]): Step[][] => (xs.length <= 1 ? [xs] : xs.flatMap((x, i) => perms([...xs.slice(0, i), ...xs.slice(i + 1)]).map((r) => [x, ...r])));
  const all = perms(["key", "link", "endpoint", "keepalive"]);

  test("24 orders: nothing leaves before the last step, a handshake at once after it, then keepalives", () => {
    expect(all.length).toBe(24);
    for (const order of all) {
      const net = new Net();
      const A = net.node("A", "192.0.2.1", 1);
      const B = net.node("B", "192.0.2.2", 2);
      B.uapi(`set=1\nprivate_key=${hex(B.priv)}\nlisten_port=51820\npublic_key=${hex(A.pub)}\nallowed_ip=10.9.0.1/32\n\n`);
      B.dev.up();
      // The daemon at start: port bound, link down, a peer known by key only.
      A.dev.setLinkUp(false);
      A.dev.up();
      expect(A.uapi(`set=1\nlisten_port=51820\npublic_key=${hex(B.pub)}\nallowed_ip=10.9.0.2/32\n\n`)).toBe("errno=0\n\n");
      const peerLine = `public_key=${hex(B.pub)}\n`;
      const apply: Record<Step, () => void> = {
        key: () => void A.uapi(`set=1\nprivate_key=${hex(A.priv)}\n\n`),
        link: () => A.dev.setLinkUp(true),
        endpoint: () => void A.uapi(`set=1\n${peerLine}endpoint=192.0.2.2:51820\n\n`),
        keepalive: () => void A.uapi(`set=1\n${peerLine}persistent_keepalive_interval=1\n\n`),
      };
      for (const [i, step] of order.entries()) {
        apply[step]();
        if (i < order.length - 1) {
          net.run(20_000);
          expect({ order, after: step, sent: A.sent.length }).toEqual({ order, after: step, sent: 0 });
        }
      }
      // sent synchronously by the last step, before any time passes
      expect({ order, initiations: A.sentOfType(1).length }).toEqual({ order, initiations: 1 });
      net.run(3500);
      const peer = A.dev.peers.get(hex(B.pub))!;
      expect(peer.current).not.toBeNull();
      // keepalives (empty data messages, 32 bytes) every second after the handshake
      expect(A.sent.filter((p) => p.data[0] === 4 && p.data.length === 32).length).toBeGreaterThanOrEqual(3);
    }
  });

  test("link down stops the peer (sessions and timers gone, nothing sent); link up starts it again at once", () => {
    const { net, A, aToB } = pair({ pkaA: 1 });
    aToB(1);
    net.run(100);
    const peer = A.dev.peers.values().next().value!;
    expect(peer.current).not.toBeNull();
    A.dev.setLinkUp(false);
    expect(peer.current).toBeNull();
    expect(A.dev.nextDeadline()).toBe(Infinity);
    const n = A.sent.length;
    aToB(2); // a packet that would reach the engine anyway is dropped
    net.run(60_000);
    expect(A.sent.length).toBe(n);
    A.dev.setLinkUp(true);
    expect(A.sentOfType(1, net.t).length).toBe(1);
    net.run(100);
    expect(peer.current).not.toBeNull();
  });

  test("a private key change: the old session stops sending, a peer with keepalive handshakes at once", () => {
    const { net, A, B, aToB } = pair({ pkaA: 25 });
    aToB(1);
    net.run(100);
    const peer = A.dev.peers.values().next().value!;
    const old = peer.current!;
    // both sides change keys and learn each other's new public key
    const a2 = generatePrivateKey(prng(7).bytes);
    const b2 = generatePrivateKey(prng(8).bytes);
    B.uapi(`set=1\nprivate_key=${hex(b2)}\nreplace_peers=true\npublic_key=${hex(publicKey(a2))}\nallowed_ip=10.9.0.1/32\n\n`);
    const t0 = net.t;
    A.uapi(
      `set=1\nprivate_key=${hex(a2)}\nreplace_peers=true\npublic_key=${hex(publicKey(b2))}\nendpoint=192.0.2.2:51820\npersistent_keepalive_interval=25\nallowed_ip=10.9.0.2/32\n\n`,
    );
    expect(old.sendValid).toBe(false);
    expect(A.sentOfType(1, t0).length).toBe(1);
    net.run(50);
    const fresh = A.dev.peers.values().next().value!;
    expect(fresh.current).not.toBeNull();
    expect(fresh.current).not.toBe(old);
    aToB(9);
    net.run(50);
    expect(B.tun.map(tagOf)).toEqual([1, 9]);
  });
});
