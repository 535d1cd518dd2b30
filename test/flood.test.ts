// Handshake flood against our daemon (namespaces). Written against behaviour, not internals:
// * 40 source addresses send initiations with a valid mac1 (garbage otherwise) as fast as they
//   can: the daemon answers them with cookie replies (it is under load) and never with a response.
// * Meanwhile a legitimate peer that has never handshaken before completes its handshake (through
//   the cookie: its retry carries mac2) and pings keep flowing during the flood.
// * A configured peer key sending correctly built initiations with a valid mac2 ~150/s from one
//   address gets at most the per-source budget answered (20/s, burst 5), not one per 20 ms.
// * Memory stays flat: the daemon's RSS after the flood is within a bound of the RSS before it
//   (warm-up: JIT code, heap and queue slots sized for the load), and a second, equal flood
//   adds (almost) nothing on top (per-message garbage that outlives the young generation, or
//   per-source state, would show there); where it did add, a third must not.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { join } from "node:path";
import { Lab } from "./netns.ts";
import { ROOT, daemonPid, genkey, ping, pingUntil, rssKiB, settledRssKiB, wgPair } from "./lib-wgpair.ts";
import type { FloodJob, FloodResult } from "./lib-flood.ts";
import { capture } from "./lib-udp.ts";
import { ptr } from "bun:ffi";
import { Copier } from "../platform/linux/libc.ts";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { HANDSHAKE_QUEUE_SIZE, createDevice } from "../core/device.ts";
import { formatEndpoint, type Endpoint } from "../core/endpoint.ts";
import { parseAddrPort } from "../core/uapi-server.ts";
import { generatePrivateKey, publicKey, randomBytes } from "../core/crypto.ts";
import { COOKIE_REPLY_LEN, INITIATION_LEN } from "../core/noise.ts";
import { setMac1 } from "./lib-fuzz.ts";

// Found by this flood: the daemon sent every cookie reply with the frozen first 64 bytes of an
// earlier handshake response. platform's Copier cached ptr() of the engine's small (148-byte)
// handshake buffer; JSC later moved that buffer's bytes (subarray() in addMacs), so the cached
// pointer kept reading the old storage. Legit peers then never got a valid cookie under load.
test("Copier keeps copying the live bytes after JSC relocates a small typed array", () => {
  const arena = new Uint8Array(4096);
  const c = new Copier(ptr(arena));
  const small = new Uint8Array(148).fill(3);
  c.copy(0, small, 0, 64);
  expect(arena[0]).toBe(3);
  small.fill(2);
  small.subarray(0, 4); // makes JSC move the bytes out of the GC cell
  small.fill(7);
  c.copy(0, small, 0, 64);
  expect(arena[63]).toBe(7);
});

// Found by the RSS check below: cookie replies once made garbage per reply (an encoded sockaddr
// per Endpoint object, since queue slots rewrite their own src for every message); that garbage
// outlived young GCs. Replies now go to the queue slot's own Endpoint, the bytes of the source.
test("under load, cookie replies go back to each source through Endpoints the engine already holds", () => {
  const priv = generatePrivateKey();
  const sent: { ep: Endpoint; to: string; len: number }[] = [];
  const dev = createDevice(
    { sendUdp: (_b, _o, len, ep) => void sent.push({ ep, to: formatEndpoint(ep), len }), writeTun: () => {}, bind: (p) => p || 51820 },
    { mono: () => 1000, wall: () => 1_700_000_000_000 },
    { deferHandshakes: true },
  );
  dev.uapi(`set=1\nprivate_key=${Buffer.from(priv).toString("hex")}\nlisten_port=51820\n\n`);
  dev.up();
  const msg = randomBytes(INITIATION_LEN);
  msg.set([1, 0, 0, 0]);
  msg.fill(0, INITIATION_LEN - 16);
  setMac1(msg, publicKey(priv));
  const srcs = ["192.0.2.10:4000", "192.0.2.11:4001", "[2001:db8::12]:4002", "[2001:db8::13]:4003"];
  // Waves big enough to be under load, more messages in all than the queue has slots; each
  // message arrives in a fresh Endpoint object.
  const WAVE = 200;
  const WAVES = Math.ceil((2 * HANDSHAKE_QUEUE_SIZE) / WAVE);
  for (let w = 0; w < WAVES; w++) {
    for (let i = 0; i < WAVE; i++) dev.receiveUdp(msg, 0, INITIATION_LEN, parseAddrPort(srcs[i % 4]!)!);
    dev.processHandshakes(Infinity);
  }
  const cookies = sent.filter((s) => s.len === COOKIE_REPLY_LEN);
  expect(cookies.length).toBe(WAVE * WAVES);
  expect(cookies.map((c) => c.to)).toEqual(Array.from({ length: WAVE * WAVES }, (_, i) => srcs[i % 4]!));
  const objects = new Set(cookies.map((c) => c.ep)).size;
  expect(objects).toBeLessThanOrEqual(HANDSHAKE_QUEUE_SIZE);
});

/** Duration of the second flood (the first one is 22 s: it also carries the legit peer). */
const FLOOD2_SECONDS = 12;
/**
 * What the second flood may add to RSS. Measured on the 2-core box: +0.4 MiB now; +12 MiB while
 * every cookie reply re-encoded its destination (garbage promoted past the young generation),
 * +6.7 MiB with only the noble cipher per reply.
 */
const FLAT_KIB = 4 * 1024;

let lab: Lab;
beforeAll(() => {
  lab = new Lab("flood");
});
afterAll(async () => {
  await lab.cleanup();
});

test("initiation flood: cookies demanded, per-source limit, legit peer works, RSS bounded and flat over a second flood", async () => {
  const { a, b } = await wgPair(lab, { tag: "f", env: { LOG_LEVEL: "error" } });
  const net = a.outer4.split(".").slice(0, 3).join(".");
  const sources = Array.from({ length: 40 }, (_, i) => `${net}.${100 + i}`);
  for (const ip of [...sources, `${net}.99`]) a.ns.sh(`ip addr add ${ip}/24 dev ${a.dev}`);
  const c = genkey();
  b.ns.sh(`wg set ${b.iface} peer ${c.pub} allowed-ips 10.254.254.1/32`);
  const rss0 = await settledRssKiB(daemonPid(b));

  const job: FloodJob = {
    to: b.outer4,
    port: b.port,
    targetPub: b.key.pub,
    sources,
    seconds: 22,
    burst: Number(process.env.FLOOD_BURST ?? 300),
    gapMs: Number(process.env.FLOOD_GAP_MS ?? 50),
    peer: { priv: c.priv, source: `${net}.99`, intervalMs: 5, seconds: 4 },
  };
  const capDir = mkdtempSync(join(tmpdir(), "wgt-flood-"));
  const cap = await capture(b.ns, b.dev, join(capDir, "b.pcap"));
  const flooder = a.ns.spawn([process.execPath, join(ROOT, "test/lib-flood.ts"), JSON.stringify(job)]);
  await Bun.sleep(1500);
  const t0 = Date.now();
  // The legitimate peer's first handshake happens during the flood.
  const up = await pingUntil(a, b.inner4, 18000);
  const handshakeMs = Date.now() - t0;
  let ok = 0;
  for (let i = 0; i < 5; i++) if (ping(a, b.inner4, 1, 1)) ok++;
  const rssDuring = rssKiB(daemonPid(b));
  expect(await flooder.exited).toBe(0);
  const r = JSON.parse(flooder.output().trim().split("\n").pop()!) as FloodResult;
  // On the wire: every datagram b sent to a flood source is a 64-byte cookie reply.
  const wire = (await cap.stop()).filter((d) => d.src === b.outer4 && sources.includes(d.dst));
  rmSync(capDir, { recursive: true, force: true });
  const wireKinds: Record<string, number> = {};
  for (const d of wire) {
    for (let o = 0; o < d.payload.length; o += 64) {
      const k = `${d.payload[o]}/${d.payload.length % 64 === 0 ? 64 : d.payload.length}/${Buffer.from(d.payload.subarray(o, o + 8)).toString("hex").slice(0, d.payload[o] === 3 ? 2 : 16)}`;
      wireKinds[k] = (wireKinds[k] ?? 0) + 1;
    }
  }
  console.log("b -> flood sources on the wire:", JSON.stringify(wireKinds));
  const rss1 = await settledRssKiB(daemonPid(b));
  const cookieSources = sources.filter((s) => (r.answers[s]?.["3/64"] ?? 0) > 0).length;
  const responses = sources.reduce((n, s) => n + (r.answers[s]?.["2/92"] ?? 0), 0);
  const other = sources.reduce((n, s) => n + Object.entries(r.answers[s] ?? {}).filter(([k]) => k !== "3/64").reduce((m, [, v]) => m + v, 0), 0);
  const otherKinds = new Set(sources.flatMap((s) => Object.keys(r.answers[s] ?? {})));
  const cookies = sources.reduce((n, s) => n + (r.answers[s]?.["3/64"] ?? 0), 0);
  console.log(
    JSON.stringify({ sent: r.sent, cookies, cookieSources, responses, other, kinds: [...otherKinds], odd: r.odd, peer: r.peer, handshakeMs, pingsDuringFlood: ok, rssKiB: [rss0, rssDuring, rss1] }),
  );
  expect(up).toBe(true);
  expect(ok).toBeGreaterThanOrEqual(4);
  expect(cookieSources).toBeGreaterThanOrEqual(30);
  expect(responses).toBe(0);
  expect(other).toBe(0);
  // The configured key got its cookie and then only the per-source budget: 4 s x 20/s + 5 burst.
  expect(r.peer!.cookie).toBe(true);
  expect(r.peer!.sent).toBeGreaterThan(300); // > 75/s for 4 s
  expect(r.peer!.responses).toBeGreaterThan(0);
  // 4 s x 20/s + 5 burst, with slack for the sender overrunning its 4 s; without the per-source
  // limit the per-peer 20 ms rule alone would let ~50/s (~200) through.
  expect(r.peer!.responses).toBeLessThanOrEqual(4 * 20 + 5 + 25);
  // Bounded memory: the flood leaves no per-source state behind; what it adds is warm-up (JIT
  // code, heap capacity, queue slots). Measured ~7-10 MiB; it was ~40 MiB before the fixes.
  expect(rss1 - rss0).toBeLessThan(24 * 1024);
  expect(ping(a, b.inner4, 2)).toBe(true);

  // The same garbage flood again (rate and sources as before, shorter): RSS must stay put.
  const floodAgain = async () => {
    const p = a.ns.spawn([process.execPath, join(ROOT, "test/lib-flood.ts"), JSON.stringify({ ...job, seconds: FLOOD2_SECONDS, peer: undefined })]);
    expect(await p.exited).toBe(0);
    const r = JSON.parse(p.output().trim().split("\n").pop()!) as FloodResult;
    const cookies = sources.reduce((n, s) => n + (r.answers[s]?.["3/64"] ?? 0), 0);
    expect(cookies).toBeGreaterThan(r.sent / 2);
    return { sent: r.sent, cookies, rssKiB: await settledRssKiB(daemonPid(b)) };
  };
  const f2 = await floodAgain();
  let growth = f2.rssKiB - rss1;
  console.log(JSON.stringify({ flood2: f2, rssKiB: [rss0, rssDuring, rss1, f2.rssKiB], growthKiB: { flood1: rss1 - rss0, flood2: growth } }));
  if (growth >= FLAT_KIB) {
    // Seen once in ~12 runs, while another process took the CPU: +53 MiB that stayed. A leak
    // grows again with every flood; a heap sized up once (the daemon fell behind) does not.
    const f3 = await floodAgain();
    growth = f3.rssKiB - f2.rssKiB;
    console.log(JSON.stringify({ flood3: f3, growthKiB: { flood3: growth } }));
  }
  expect(growth).toBeLessThan(FLAT_KIB);
  // Still fine afterwards, and still running.
  expect(ping(a, b.inner4, 2)).toBe(true);
  expect(b.proc.proc.exitCode).toBeNull();
}, 100_000);
