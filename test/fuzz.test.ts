// Fuzzing, fast slice (bench/fuzz.ts runs >= 1M inputs with the same generators).
//
// Receive path: generated and mutated packets (from a real in-memory handshake, test/lib-fuzz.ts)
// never throw, never make the engine answer (except a cookie reply to a valid-mac1 handshake
// message under load), never reach TUN, and leave every piece of engine state unchanged.
// Text parsers: the config-file parser, `wg set` words, the UAPI server and the UAPI client
// parsers never throw (except the documented WgExit), never hang, and say why they refuse.
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { WgExit, parseConfigFile, parseSetArgs } from "../core/tools/config.ts";
import { buildSetRequest, parseGetResponse, parseSetResponse } from "../core/tools/uapi.ts";
import { KEY, bounded, configText, configValue, fakeEnv, uapiRequest } from "./lib-fuzz-text.ts";
import { GENERATORS, fuzzEngine, generate, makeWorld, prng, snapshot, source } from "./lib-fuzz.ts";

const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 1_000_000);
console.log(`fuzz seed ${SEED} (FUZZ_SEED=${SEED} reproduces)`);

describe("engine receive path", () => {
  test("under load (queued handshakes, the daemon's mode): only valid cookie replies, no state change; a legit peer gets through via mac2", () => {
    const w = makeWorld(SEED + 6, true, true);
    const b = w.b.dev;
    const before = snapshot(b);
    const r = prng(SEED);
    const inputs: { m: Uint8Array; src: ReturnType<typeof source> }[] = [];
    for (let i = 0; i < 600; i++) {
      const g = i % 2 === 0 ? "valid-mac1" : GENERATORS[r.int(GENERATORS.length)]!;
      inputs.push({ m: generate(w, "b", g, r), src: source(w, "b", r) });
    }
    for (const { m, src } of inputs) b.receiveUdp(m, 0, m.length, src);
    expect(b.handshakeBacklog()).toBeGreaterThanOrEqual(128);
    b.processHandshakes(Infinity);
    const out = w.b.out.udp.splice(0);
    expect(out.length).toBeGreaterThan(100);
    for (const o of out) {
      expect(o.data.length).toBe(64);
      expect(o.data[0]).toBe(3);
    }
    expect(w.b.out.tun.length + w.b.out.events.length).toBe(0);
    expect(snapshot(b)).toBe(before);

    // Still under load: a fresh initiation from A is answered with a cookie, A stores it, and
    // A's retry (after REKEY_TIMEOUT) carries mac2 and gets a response; data flows again.
    // Past the cookie lifetime: the cookie A got in makeWorld() must not help it here.
    w.clock.mono += 121_000;
    w.clock.wall += 121_000;
    // Down/up drops A's sessions (like go), so A must handshake again.
    w.a.dev.down();
    w.a.dev.up();
    const pkt = new Uint8Array(28);
    pkt[0] = 0x45;
    pkt[3] = 28;
    pkt.set([10, 0, 0, 1], 12);
    pkt.set([10, 0, 0, 2], 16);
    for (const { m, src } of inputs.slice(0, 300)) b.receiveUdp(m, 0, m.length, src);
    w.a.dev.sendTunPacket(pkt, 0, pkt.length);
    const init = w.a.out.udp.splice(0);
    expect(init.length).toBe(1);
    b.receiveUdp(init[0]!.data, 0, init[0]!.data.length, w.a.ep);
    b.processHandshakes(Infinity);
    // Garbage "from A's address" is answered too; A's own reply carries its sender index.
    const idx = (m: Uint8Array, off: number) => Buffer.from(m.subarray(off, off + 4)).toString("hex");
    const replies = w.b.out.udp.splice(0).filter((o) => o.to.port === w.a.ep.port && idx(o.data, 4) === idx(init[0]!.data, 4));
    expect(replies.length).toBe(1);
    expect(replies[0]!.data[0]).toBe(3);
    w.a.dev.receiveUdp(replies[0]!.data, 0, 64, w.b.ep);
    expect(w.a.out.udp.length).toBe(0); // a cookie never triggers an early retry
    w.clock.mono += 5_400;
    w.clock.wall += 5_400;
    for (const { m, src } of inputs.slice(0, 300)) b.receiveUdp(m, 0, m.length, src);
    w.a.dev.tick();
    const retry = w.a.out.udp.splice(0);
    expect(retry.length).toBe(1);
    b.receiveUdp(retry[0]!.data, 0, retry[0]!.data.length, w.a.ep);
    b.processHandshakes(Infinity);
    const resp = w.b.out.udp.splice(0).filter((o) => o.to.port === w.a.ep.port && idx(o.data, o.data[0] === 2 ? 8 : 4) === idx(retry[0]!.data, 4));
    expect(resp.map((o) => o.data[0])).toEqual([2]);
    w.a.dev.receiveUdp(resp[0]!.data, 0, resp[0]!.data.length, w.b.ep);
    w.pump();
    expect(w.b.out.tun.length).toBe(1);
  });

  test("the snapshot notices an authentic packet (the harness can fail)", () => {
    const w = makeWorld(SEED);
    const before = snapshot(w.b.dev);
    const p = new Uint8Array(28);
    p[0] = 0x45;
    p[3] = 28;
    p.set([10, 0, 0, 1], 12);
    p.set([10, 0, 0, 2], 16);
    w.a.dev.sendTunPacket(p, 0, p.length);
    const msg = w.a.out.udp.splice(0)[0]!.data;
    w.b.dev.receiveUdp(msg, 0, msg.length, w.a.ep);
    expect(w.b.out.tun.length).toBe(1);
    expect(snapshot(w.b.dev)).not.toBe(before);
    // ...and the same packet again is a replay: no further change.
    const after = snapshot(w.b.dev);
    w.b.dev.receiveUdp(msg, 0, msg.length, w.a.ep);
    expect(snapshot(w.b.dev)).toBe(after);
    expect(w.b.out.tun.length).toBe(1);
  });

  test("every generator yields inputs", () => {
    const w = makeWorld(SEED + 1);
    const r = prng(SEED);
    for (const g of GENERATORS) for (const to of ["a", "b"] as const) expect(generate(w, to, g, r)).toBeInstanceOf(Uint8Array);
  });

  test("30k generated/mutated packets: no throw, no answer, no state change; session still works", () => {
    const w = makeWorld(SEED + 2);
    const t0 = performance.now();
    const stats = fuzzEngine(w, 30_000, SEED, 10, 0.02);
    const ms = performance.now() - t0;
    console.log(`engine fuzz: ${stats.inputs} inputs in ${ms.toFixed(0)} ms, cookie replies ${stats.cookieReplies}`, stats.byGenerator);
    expect(stats.failures).toEqual([]);
    expect(stats.inputs).toBe(30_000);
    // Still a working session afterwards.
    const p = new Uint8Array(40);
    p[0] = 0x45;
    p[3] = 40;
    p.set([10, 0, 0, 1], 12);
    p.set([10, 0, 0, 2], 16);
    w.a.dev.sendTunPacket(p, 0, p.length);
    w.pump();
    expect(w.b.out.tun.length).toBe(1);
  }, 60_000);

  test("fast-check: arbitrary bytes and corpus mutations leave the engine unchanged", () => {
    const w = makeWorld(SEED + 3);
    const snapA = snapshot(w.a.dev);
    const snapB = snapshot(w.b.dev);
    const corpus = w.corpus;
    const packet = fc.oneof(
      fc.uint8Array({ maxLength: 1600 }),
      fc.tuple(fc.constantFrom(1, 2, 3, 4), fc.uint8Array({ minLength: 28, maxLength: 200 })).map(([t, b]) => {
        const m = new Uint8Array(4 + b.length);
        m[0] = t;
        m.set(b, 4);
        return m;
      }),
      fc
        .tuple(fc.nat(corpus.length - 1), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }), fc.option(fc.nat()))
        .map(([i, edits, cut]) => {
          const m = corpus[i]!.bytes.slice();
          for (const [pos, v] of edits) m[pos % m.length] = v;
          return cut === null ? m : m.slice(0, cut % (m.length + 1));
        }),
    );
    fc.assert(
      fc.property(packet, fc.boolean(), fc.nat(), (m, toA, s) => {
        const node = toA ? w.a : w.b;
        node.dev.receiveUdp(m, 0, m.length, source(w, toA ? "a" : "b", prng(s + 1)));
        // Generated messages rarely carry a valid mac1, so not even a cookie reply is expected.
        return node.out.udp.length === 0 && node.out.tun.length === 0 && node.out.events.length === 0;
      }),
      { numRuns: 5000, seed: SEED },
    );
    expect(snapshot(w.a.dev)).toBe(snapA);
    expect(snapshot(w.b.dev)).toBe(snapB);
  }, 60_000);
});

// --------------------------------------------------------------------------------- config files

describe("config parser", () => {
  test("generated config files: a config or a printed reason, never a throw", () => {
    let accepted = 0;
    fc.assert(
      fc.property(configText, fc.boolean(), (text, append) => {
        const env = fakeEnv();
        const r = bounded(() => parseConfigFile(text, append, env));
        if (r instanceof WgExit || r === null) {
          // A refusal always says why, on lines of its own.
          return env.errors.length > 0 && env.errors.every((e) => e.endsWith("\n") && e.length > 1);
        }
        accepted++;
        const req = buildSetRequest(r);
        return req.startsWith("set=1\n") && req.endsWith("\n\n");
      }),
      { numRuns: 4000, seed: SEED },
    );
    expect(accepted).toBeGreaterThan(20);
  });

  test("a valid file is accepted (the property can succeed)", () => {
    const env = fakeEnv();
    const r = parseConfigFile(`[Interface]\nPrivateKey = ${KEY}\nListenPort = 51820\n[Peer]\nPublicKey = ${KEY}\nAllowedIPs = 10.0.0.0/8\nEndpoint = 192.0.2.1:1\n`, false, env);
    expect(env.errors).toEqual([]);
    expect(r?.peers.length).toBe(1);
  });

  test("generated `wg set` word lists", () => {
    const word = fc.oneof(
      fc.constantFrom("listen-port", "fwmark", "private-key", "peer", "remove", "endpoint", "allowed-ips", "persistent-keepalive", "preshared-key", KEY, "51820", "/nonexistent", "off"),
      configValue,
    );
    fc.assert(
      fc.property(fc.array(word, { maxLength: 10 }), (words) => {
        const env = fakeEnv();
        const r = bounded(() => parseSetArgs(words, env));
        return r === null || r instanceof WgExit ? env.errors.length > 0 : typeof buildSetRequest(r) === "string";
      }),
      { numRuns: 4000, seed: SEED },
    );
  });
});

// ----------------------------------------------------------------------------------------- UAPI

describe("UAPI", () => {
  test("server: generated requests give well-formed answers or a logged error, device stays usable", () => {
    const w = makeWorld(SEED + 4);
    const dev = w.b.dev;
    let failedSets = 0;
    fc.assert(
      fc.property(uapiRequest, (req) => {
        w.b.out.errors.length = 0;
        const res = bounded(() => dev.uapi(req).response);
        if (res instanceof WgExit) return false;
        // Every answer is a sequence of "...errno=N\n\n" blocks.
        if (!/^((?:[a-z_]+=[^\n]*\n)*errno=-?\d+\n\n)*$/.test(res)) return false;
        const errs = [...res.matchAll(/errno=(-?\d+)/g)].map((m) => Number(m[1]));
        if (errs.some((e) => e !== 0)) {
          failedSets++;
          if (w.b.out.errors.length === 0) return false; // a refusal is logged with its reason
        }
        return true;
      }),
      { numRuns: 3000, seed: SEED },
    );
    expect(failedSets).toBeGreaterThan(10);
    expect(dev.uapi("get=1\n\n").response).toMatch(/errno=0\n\n$/);
  });

  test("client: get/set answer parsers on mutated real answers and noise", () => {
    const w = makeWorld(SEED + 5);
    const real = w.a.dev.uapi("get=1\n\n").response;
    expect(parseGetResponse(real, "wg0").ok).toBe(true);
    const mutated = fc
      .tuple(fc.array(fc.tuple(fc.nat(), fc.string({ maxLength: 3 })), { minLength: 1, maxLength: 5 }), fc.option(fc.nat()))
      .map(([edits, cut]) => {
        let s = real;
        for (const [pos, v] of edits) {
          const p = pos % (s.length + 1);
          s = s.slice(0, p) + v + s.slice(p + 1);
        }
        return cut === null ? s : s.slice(0, cut % (s.length + 1));
      });
    let rejected = 0;
    fc.assert(
      fc.property(fc.oneof(mutated, fc.string({ maxLength: 200 }), fc.string({ unit: "binary", maxLength: 100 })), (text) => {
        const g = bounded(() => parseGetResponse(text, "wg0"));
        const s = bounded(() => parseSetResponse(text));
        if (g instanceof WgExit || s instanceof WgExit) return false;
        if (!g.ok) {
          rejected++;
          if (!(Number.isInteger(g.errno) && g.errno !== 0)) return false;
        }
        return Number.isInteger(s);
      }),
      { numRuns: 5000, seed: SEED },
    );
    expect(rejected).toBeGreaterThan(100);
  });
});
