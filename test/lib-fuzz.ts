// Fuzzing harness shared by test/fuzz.test.ts (a fast slice) and bench/fuzz.ts (>= 1M inputs).
//
// A real handshake between two in-memory engines (fake clock, deterministic randomness) yields a
// corpus of valid messages: initiation, response, keepalive, data, cookie reply. Inputs are then
// generated from scratch or by mutating that corpus (bit flips, truncation, splices, live receiver
// indices so mutants reach the AEAD, fresh initiations/responses with a *valid mac1* so they reach
// the Noise code) and fed to the responder's receive path. Every input must leave the engine's
// state exactly as it was: none of them is authentic (every corpus message was delivered once
// already, so unmutated copies are replays).
import { hash, mac, publicKey, generatePrivateKey } from "../core/crypto.ts";
import { createDevice, type Device } from "../core/device.ts";
import { Endpoint, formatEndpoint } from "../core/endpoint.ts";
import { LABEL_MAC1 } from "../core/cookie.ts";
import { COOKIE_REPLY_LEN, INITIATION_LEN, RESPONSE_LEN } from "../core/noise.ts";

export function prng(seed: number) {
  let s = seed >>> 0 || 1;
  const next = () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
  return {
    next,
    int: (n: number) => next() % n,
    float: () => next() / 0x1_0000_0000,
    bytes: (n: number) => {
      const b = new Uint8Array(n);
      for (let i = 0; i < n; i++) b[i] = next() & 255;
      return b;
    },
  };
}

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

export interface Outputs {
  udp: { to: Endpoint; data: Uint8Array }[];
  tun: Uint8Array[];
  events: string[];
  errors: string[];
  /** Every log line at every level ("level: msg"). */
  logs: string[];
}

export interface Node {
  dev: Device;
  priv: Uint8Array;
  pub: Uint8Array;
  ep: Endpoint;
  out: Outputs;
  /** Everything this node ever sent, in order. */
  sentLog: Uint8Array[];
}

export interface World {
  a: Node;
  b: Node;
  clock: { mono: number; wall: number };
  /** Deliver everything queued in both outboxes (repeatedly) to the other side. */
  pump(): void;
  /** Valid messages seen on the wire, each already delivered to its receiver. */
  corpus: { name: string; to: "a" | "b"; bytes: Uint8Array }[];
}

function ipv4(src: string, dst: string, payloadLen: number, fill: number): Uint8Array {
  const p = new Uint8Array(20 + payloadLen);
  p[0] = 0x45;
  p[2] = (p.length >> 8) & 255;
  p[3] = p.length & 255;
  p[8] = 64;
  p[9] = 17;
  p.set(src.split(".").map(Number), 12);
  p.set(dst.split(".").map(Number), 16);
  p.fill(fill, 20);
  return p;
}

/** Two engines, a completed handshake, data both ways; returns the world and its corpus. */
/** `defer`: B queues handshake messages (the daemon's mode); pump() then drains the queue. */
export function makeWorld(seed: number, psk = true, defer = false): World {
  const clock = { mono: 1_000_000, wall: 1_700_000_000_000 };
  const c = { mono: () => clock.mono, wall: () => clock.wall };
  const r = prng(seed);
  const mk = (ip: string, port: number, deferHandshakes = false): Node => {
    const out: Outputs = { udp: [], tun: [], events: [], errors: [], logs: [] };
    const priv = generatePrivateKey(r.bytes);
    const node: Node = { dev: null!, priv, pub: publicKey(priv), ep: Endpoint.of(4, ip.split(".").map(Number), port), out, sentLog: [] };
    node.dev = createDevice(
      {
        sendUdp: (buf, off, len, to) => {
          const data = buf.slice(off, off + len);
          out.udp.push({ to: to.clone(), data });
          node.sentLog.push(data);
        },
        writeTun: (buf, off, len) => void out.tun.push(buf.slice(off, off + len)),
        bind: (p) => p || port,
        event: (e) => void out.events.push(e.type),
        log: (lvl, msg) => {
          out.logs.push(`${lvl}: ${msg}`);
          if (lvl === "error") out.errors.push(msg);
        },
      },
      c,
      { random: r.bytes, deferHandshakes },
    );
    return node;
  };
  const a = mk("192.0.2.1", 51820);
  const b = mk("192.0.2.2", 51821, defer);
  const pskHex = psk ? hex(r.bytes(32)) : "";
  const conf = (me: Node, other: Node, allowed: string) =>
    me.dev.uapi(
      `set=1\nprivate_key=${hex(me.priv)}\nlisten_port=${me.ep.port}\npublic_key=${hex(other.pub)}\n` +
        (pskHex ? `preshared_key=${pskHex}\n` : "") +
        `endpoint=${formatEndpoint(other.ep)}\nallowed_ip=${allowed}\n\n`,
    ).response;
  if (conf(a, b, "10.0.0.2/32") !== "errno=0\n\n" || conf(b, a, "10.0.0.1/32") !== "errno=0\n\n") throw new Error("config failed");
  a.dev.up();
  b.dev.up();
  const corpus: World["corpus"] = [];
  const pump = () => {
    for (let i = 0; i < 100; i++) {
      a.dev.processHandshakes(Infinity);
      b.dev.processHandshakes(Infinity);
      const qa = a.out.udp.splice(0);
      const qb = b.out.udp.splice(0);
      if (qa.length === 0 && qb.length === 0) return;
      for (const p of qa) {
        corpus.push({ name: `a>b type ${p.data[0]}`, to: "b", bytes: p.data });
        b.dev.receiveUdp(p.data, 0, p.data.length, a.ep);
      }
      for (const p of qb) {
        corpus.push({ name: `b>a type ${p.data[0]}`, to: "a", bytes: p.data });
        a.dev.receiveUdp(p.data, 0, p.data.length, b.ep);
      }
    }
  };
  const world: World = { a, b, clock, pump, corpus };
  // Handshake (initiation, response, keepalive) then data both ways, some of it padded.
  const pa = ipv4("10.0.0.1", "10.0.0.2", 37, 0xaa);
  a.dev.sendTunPacket(pa, 0, pa.length);
  pump();
  for (let i = 0; i < 4; i++) {
    clock.mono += 10;
    const x = ipv4("10.0.0.1", "10.0.0.2", 10 + i * 100, i);
    a.dev.sendTunPacket(x, 0, x.length);
    const y = ipv4("10.0.0.2", "10.0.0.1", 5 + i * 50, i);
    b.dev.sendTunPacket(y, 0, y.length);
    pump();
  }
  if (b.out.tun.length < 5 || a.out.tun.length < 4) throw new Error(`handshake/data did not work: ${b.out.tun.length}/${a.out.tun.length}`);
  // A cookie reply as B would send it to A's initiation (valid for A only while A waits for it).
  const init = corpus.find((p) => p.bytes[0] === 1)!.bytes;
  const reply = new Uint8Array(COOKIE_REPLY_LEN);
  b.dev.cookieChecker.createReply(init, 0, INITIATION_LEN, a.ep, clock.mono, reply);
  corpus.push({ name: "cookie reply b>a", to: "a", bytes: reply });
  a.dev.receiveUdp(reply, 0, reply.length, b.ep);
  for (const n of [a, b]) {
    n.out.udp.length = 0;
    n.out.tun.length = 0;
    n.out.events.length = 0;
    n.out.errors.length = 0;
  }
  return world;
}

function replayState(w: unknown): string {
  const o = w as Record<string, unknown>;
  const parts: string[] = [];
  for (const k of Object.keys(o)) {
    const v = o[k];
    parts.push(`${k}:${ArrayBuffer.isView(v) ? hex(new Uint8Array((v as Int32Array).buffer)) : String(v)}`);
  }
  return parts.join(",");
}

/**
 * Everything an unauthenticated packet must not change (protocol.md §15): per peer the endpoint,
 * handshake state/keys/indices/timestamp, keypairs (identity, counters, validity, replay
 * window), tx/rx, timers, cookie state; per device the index tables and rate-limiter size.
 * Deliberately excluded: the under-load estimate (it counts arriving handshake packets by design).
 */
export function snapshot(dev: Device): string {
  const parts: string[] = [];
  parts.push(`up=${dev.isUp} port=${dev.listenPort} rl=${dev.rateLimiter.size()}`);
  parts.push(`kp=${[...dev.keypairsByIndex.keys()].sort().join(",")}`);
  parts.push(`hs=${[...dev.handshakesByIndex.keys()].sort().join(",")}`);
  for (const p of dev.peers.values()) {
    const h = p.handshake;
    parts.push(
      `peer ${p.publicKeyHex} ep=${p.endpoint ? `${formatEndpoint(p.endpoint)} src=${p.endpoint.hasSrc ? `${hex(p.endpoint.src)}%${p.endpoint.srcIfindex}` : "-"}` : "-"} tx=${p.txBytes} rx=${p.rxBytes} ` +
        `lastHs=${p.lastHandshakeWallMs} lastSent=${p.lastSentHandshakeMono} hsIdx=${p.handshakeIndex} staged=${p.staged.length}`,
    );
    parts.push(
      `  hs state=${h.state} ck=${hex(h.chainKey)} h=${hex(h.hash)} le=${hex(h.localEphemeral)} re=${hex(h.remoteEphemeral)} ` +
        `li=${h.localIndex} ri=${h.remoteIndex} ts=${hex(h.latestTimestamp)} lic=${h.lastInitiationConsumedMono}`,
    );
    const t = p.timers as unknown as Record<string, unknown>;
    parts.push(
      `  timers ${["retransmitHandshake", "sendKeepalive", "newHandshake", "zeroKeyMaterial", "persistentKeepalive", "needAnotherKeepalive", "handshakeAttempts", "sentLastMinuteHandshake"].map((k) => `${k}=${String(t[k])}`).join(" ")}`,
    );
    parts.push(`  cookie ${replayState(p.cookie)}`);
    for (const [name, kp] of [
      ["cur", p.current],
      ["prev", p.previous],
      ["next", p.next],
    ] as const) {
      if (kp === null) parts.push(`  ${name}=null`);
      else
        parts.push(
          `  ${name} li=${kp.localIndex} ri=${kp.remoteIndex} sc=${kp.sendCounter} sv=${kp.sendValid} rv=${kp.receiveValid} ` +
            `d=${kp.destroyed} replay=${replayState(kp.replay)}`,
        );
    }
  }
  return parts.join("\n");
}

/** mac1 for a handshake message to `receiverPub` (in place). */
export function setMac1(msg: Uint8Array, receiverPub: Uint8Array): void {
  const key = hash(LABEL_MAC1, receiverPub);
  msg.set(mac(key, msg.subarray(0, msg.length - 32)), msg.length - 32);
}

function le32(b: Uint8Array, off: number, v: number): void {
  b[off] = v & 255;
  b[off + 1] = (v >>> 8) & 255;
  b[off + 2] = (v >>> 16) & 255;
  b[off + 3] = (v >>> 24) & 255;
}

export const GENERATORS = [
  "random",
  "typed-random",
  "bitflip",
  "bytes",
  "truncate-extend",
  "splice",
  "live-index",
  "valid-mac1",
  "counter",
  "replay",
] as const;
export type GeneratorName = (typeof GENERATORS)[number];

/**
 * One generated input for node `to` of the world. `r` drives every choice, so a seed reproduces
 * the sequence. "valid-mac1" inputs cost an X25519 in the receiver; callers weight them down.
 */
export function generate(w: World, to: "a" | "b", g: GeneratorName, r: ReturnType<typeof prng>): Uint8Array {
  const target = to === "a" ? w.a : w.b;
  const mine = w.corpus.filter((c) => c.to === to);
  const pick = () => mine[r.int(mine.length)]!.bytes;
  const liveIndices = [...target.dev.keypairsByIndex.keys(), ...target.dev.handshakesByIndex.keys()];
  switch (g) {
    case "random": {
      const n = r.int(8) === 0 ? r.int(1600) : r.int(200);
      return r.bytes(n);
    }
    case "typed-random": {
      const type = 1 + r.int(4);
      const len = [0, INITIATION_LEN, RESPONSE_LEN, COOKIE_REPLY_LEN, 32 + 16 * r.int(10)][type]!;
      const m = r.bytes(len);
      m[0] = type;
      m[1] = m[2] = m[3] = 0;
      if (r.int(2) === 0 && liveIndices.length) le32(m, type === 1 ? 4 : type === 2 ? 8 : 4, liveIndices[r.int(liveIndices.length)]!);
      return m;
    }
    case "bitflip": {
      const m = pick().slice();
      const flips = 1 + r.int(3);
      for (let i = 0; i < flips; i++) {
        const bit = r.int(m.length * 8);
        m[bit >> 3]! ^= 1 << (bit & 7);
      }
      return m;
    }
    case "bytes": {
      const m = pick().slice();
      const k = 1 + r.int(4);
      for (let i = 0; i < k; i++) m[r.int(m.length)] = [0, 255, 1, 0x80, r.int(256)][r.int(5)]!;
      return m;
    }
    case "truncate-extend": {
      const m = pick();
      if (r.int(2) === 0) return m.slice(0, r.int(m.length));
      const out = new Uint8Array(m.length + 1 + r.int(64));
      out.set(m);
      out.set(r.bytes(out.length - m.length), m.length);
      return out;
    }
    case "splice": {
      const x = pick();
      const y = pick();
      const cut = r.int(Math.min(x.length, y.length));
      const out = x.slice();
      out.set(y.subarray(cut, Math.min(y.length, x.length)), cut);
      return out;
    }
    case "live-index": {
      // Data/cookie messages aimed at live indices with garbage bodies: they reach the AEAD.
      const type = r.int(3) === 0 ? 3 : 4;
      const m = type === 3 ? r.bytes(COOKIE_REPLY_LEN) : r.bytes(32 + r.int(1450));
      m[0] = type;
      m[1] = m[2] = m[3] = 0;
      if (liveIndices.length) le32(m, 4, liveIndices[r.int(liveIndices.length)]!);
      return m;
    }
    case "valid-mac1": {
      // Handshake messages that pass mac1 (anyone can compute it) but nothing after it.
      const src = mine.filter((c) => c.bytes[0] === 1 || c.bytes[0] === 2);
      let m: Uint8Array;
      if (src.length && r.int(2) === 0) {
        m = src[r.int(src.length)]!.bytes.slice();
        const k = 1 + r.int(3);
        for (let i = 0; i < k; i++) m[4 + r.int(m.length - 36)] = r.int(256);
      } else {
        const type = 1 + r.int(2);
        m = r.bytes(type === 1 ? INITIATION_LEN : RESPONSE_LEN);
        m[0] = type;
        m[1] = m[2] = m[3] = 0;
        if (type === 2 && liveIndices.length) le32(m, 8, liveIndices[r.int(liveIndices.length)]!);
      }
      setMac1(m, target.pub);
      return m;
    }
    case "counter": {
      // A captured data message with another counter: authentic bytes, wrong nonce.
      const data = mine.filter((c) => c.bytes[0] === 4);
      const m = data[r.int(data.length)]!.bytes.slice();
      le32(m, 8, r.int(3) === 0 ? 0xffffffff : r.int(64));
      le32(m, 12, r.int(4) === 0 ? r.next() : 0);
      return m;
    }
    case "replay":
      return pick().slice();
  }
}

/**
 * Random source endpoints: usually the peer's own, sometimes spoofed; often arriving on another
 * local address (a sticky source an unauthenticated packet must not teach the engine).
 */
export function source(w: World, to: "a" | "b", r: ReturnType<typeof prng>): Endpoint {
  const peer = to === "a" ? w.b : w.a;
  let ep: Endpoint;
  switch (r.int(4)) {
    case 0:
      ep = Endpoint.of(4, [198, 51, 100, r.int(256)], 1 + r.int(65535));
      break;
    case 1:
      ep = Endpoint.of(6, [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, r.int(256), r.int(256)], 1 + r.int(65535));
      break;
    default:
      ep = peer.ep.clone();
  }
  if (r.int(2) === 0) {
    ep.hasSrc = true;
    ep.src.set(r.bytes(16));
    ep.srcIfindex = 1 + r.int(8);
  }
  return ep;
}

export interface FuzzStats {
  inputs: number;
  cookieReplies: number;
  byGenerator: Record<string, number>;
  failures: string[];
}

/**
 * Feed `count` generated inputs alternately to A and B, checking after every input that nothing
 * was sent, written to TUN, emitted or logged at error level, and every `snapshotEvery` inputs
 * that both engines' snapshots are unchanged. Stops at the first failure.
 */
export function fuzzEngine(w: World, count: number, seed: number, snapshotEvery = 1, mac1Weight = 0.01): FuzzStats {
  const r = prng(seed);
  const stats: FuzzStats = { inputs: 0, cookieReplies: 0, byGenerator: {}, failures: [] };
  const before = { a: snapshot(w.a.dev), b: snapshot(w.b.dev) };
  const cheap = GENERATORS.filter((g) => g !== "valid-mac1");
  const hexs = (b: Uint8Array) => hex(b.subarray(0, 64)) + (b.length > 64 ? "..." : "");
  for (let i = 0; i < count; i++) {
    const to = (i & 1) === 0 ? "b" : "a";
    const node = to === "a" ? w.a : w.b;
    const g = r.next() / 0x1_0000_0000 < mac1Weight ? "valid-mac1" : cheap[r.int(cheap.length)]!;
    const input = generate(w, to, g, r);
    const src = source(w, to, r);
    stats.byGenerator[g] = (stats.byGenerator[g] ?? 0) + 1;
    stats.inputs++;
    try {
      node.dev.receiveUdp(input, 0, input.length, src);
    } catch (e) {
      stats.failures.push(`${g} -> ${to}: threw ${(e as Error).stack}\ninput=${hexs(input)}`);
      return stats;
    }
    const o = node.out;
    o.logs.length = 0;
    // The one allowed answer (protocol.md §15.1): a cookie reply to a valid-mac1 handshake
    // message while under load, sent back to the packet's source.
    if (o.udp.length === 1 && o.udp[0]!.data.length === COOKIE_REPLY_LEN && o.udp[0]!.data[0] === 3 &&
        (input.length === INITIATION_LEN || input.length === RESPONSE_LEN) &&
        node.dev.cookieChecker.checkMac1(input, 0, input.length) &&
        o.udp[0]!.to.sameDst(src)) {
      stats.cookieReplies++;
      o.udp.length = 0;
    }
    if (o.udp.length || o.tun.length || o.events.length || o.errors.length) {
      stats.failures.push(
        `${g} -> ${to}: reacted (udp=${o.udp.length} tun=${o.tun.length} events=${o.events.join(",")} errors=${o.errors.join(";")})\ninput=${hexs(input)}`,
      );
      return stats;
    }
    if ((i + 1) % snapshotEvery === 0 || i === count - 1) {
      const now = { a: snapshot(w.a.dev), b: snapshot(w.b.dev) };
      for (const k of ["a", "b"] as const) {
        if (now[k] !== before[k]) {
          stats.failures.push(`${g} -> ${to}: state of ${k} changed within the last ${snapshotEvery} inputs\nbefore:\n${before[k]}\nafter:\n${now[k]}\nlast input=${hexs(input)}`);
          return stats;
        }
      }
    }
  }
  return stats;
}
