import { describe, expect, test } from "bun:test";
import { CookieGenerator } from "../core/cookie.ts";
import { generatePrivateKey, publicKey, randomBytes, tai64n } from "../core/crypto.ts";
import { createDevice } from "../core/device.ts";
import { formatEndpoint } from "../core/endpoint.ts";
import { Handshake, INITIATION_LEN, MSG_COOKIE_REPLY, MSG_RESPONSE, createInitiation } from "../core/noise.ts";
import { parseAddrPort } from "../core/uapi-server.ts";
import { setMac1 } from "./lib-fuzz.ts";
import {
  DEFAULT_MAX_ENTRIES,
  IDLE_GC_AFTER_MS,
  PACKET_COST_MS,
  RateLimiter,
  TOKEN_MAX_MS,
} from "../core/ratelimiter.ts";

const vectors = (await Bun.file(new URL("./vectors/ratelimiter.json", import.meta.url)).json()) as {
  parameters: {
    packets_per_second: number;
    packets_burstable: number;
    packet_cost_ns: number;
    token_max_ns: number;
    new_entry_tokens_ns: number;
    idle_entry_gc_after_ns: number;
  };
  kernel_selftest_sequence: { steps: { t_ms: number; expected_allow: boolean }[] };
};

interface Source {
  family: 4 | 6;
  addr: Uint8Array;
}
const v4 = (a: number, b: number, c: number, d: number): Source => ({ family: 4, addr: Uint8Array.of(a, b, c, d) });
const v6 = (hex: string): Source => ({ family: 6, addr: Uint8Array.from(Buffer.from(hex, "hex")) });
const allow = (rl: RateLimiter, s: Source, t: number) => rl.allow(s.family, s.addr, t);
/** Spends a fresh source's whole burst, so its next packet at the same time is refused. */
function exhaust(rl: RateLimiter, s: Source, t: number): void {
  for (let i = 0; i < TOKEN_MAX_MS / PACKET_COST_MS; i++) expect(allow(rl, s, t)).toBe(true);
  expect(allow(rl, s, t)).toBe(false);
}
const K = v4(192, 0, 2, 1);

describe("ratelimiter vectors", () => {
  test("parameters", () => {
    const p = vectors.parameters;
    expect(PACKET_COST_MS * 1e6).toBe(p.packet_cost_ns);
    expect(TOKEN_MAX_MS * 1e6).toBe(p.token_max_ns);
    expect((TOKEN_MAX_MS - PACKET_COST_MS) * 1e6).toBe(p.new_entry_tokens_ns);
    expect(IDLE_GC_AFTER_MS * 1e6).toBe(p.idle_entry_gc_after_ns);
    expect(1000 / PACKET_COST_MS).toBe(p.packets_per_second);
    expect(TOKEN_MAX_MS / PACKET_COST_MS).toBe(p.packets_burstable);
  });

  test("kernel self-test schedule, with IPv4, shared /64 and distinct /64 sources", () => {
    const rl = new RateLimiter();
    const src4 = v4(192, 168, 1, 1);
    const src6 = v6("20010db8000000010000000000000001");
    let n = 0;
    for (const [i, s] of vectors.kernel_selftest_sequence.steps.entries()) {
      expect({ i, v4: allow(rl, src4, s.t_ms) }).toEqual({ i, v4: s.expected_allow });
      // Different lower 64 bits each step: same bucket as the first IPv6 source.
      const same64 = v6(`20010db800000001${(0x1000 + i).toString(16).padStart(16, "0")}`);
      expect({ i, v6: allow(rl, i === 0 ? src6 : same64, s.t_ms) }).toEqual({ i, v6: s.expected_allow });
      // A fresh IPv4 source and a fresh /64 are always allowed.
      expect(allow(rl, v4(10, 0, 0, i + 1), s.t_ms)).toBe(true);
      expect(allow(rl, v6(`20010db8${(0x100 + i).toString(16).padStart(8, "0")}0000000000000001`), s.t_ms)).toBe(true);
      n++;
    }
    expect(n).toBe(11);
  });
});

describe("ratelimiter behaviour", () => {
  test("buckets: IPv4 whole address, IPv6 upper 64 bits, the families apart", () => {
    const rl = new RateLimiter();
    exhaust(rl, v4(1, 2, 3, 4), 0);
    expect(allow(rl, v4(1, 2, 3, 5), 0)).toBe(true);
    exhaust(rl, v6("fd000000000000010000000000000001"), 0);
    expect(allow(rl, v6("fd0000000000000100000000ffffffff"), 0)).toBe(false);
    expect(allow(rl, v6("fd000000000000020000000000000001"), 0)).toBe(true);
    // /64s that differ in either 32-bit half of the prefix are distinct.
    expect(allow(rl, v6("fd000001000000010000000000000001"), 0)).toBe(true);
    exhaust(rl, v4(0, 0, 0, 0), 0);
    expect(allow(rl, v6("00000000000000000000000000000000"), 0)).toBe(true);
    expect(rl.size()).toBe(7);
  });

  test("steady state is 20 packets per second after the burst", () => {
    const rl = new RateLimiter();
    let allowed = 0;
    for (let t = 0; t < 10_000; t += 5) if (allow(rl, K, t)) allowed++;
    // 5 at once, then one per 50 ms for the remaining 9995 ms.
    expect(allowed).toBe(5 + Math.floor(9995 / 50));
  });

  test("tokens cap at the burst after a long idle time", () => {
    const rl = new RateLimiter();
    for (let i = 0; i < 10; i++) allow(rl, K, 0);
    let burst = 0;
    for (let i = 0; i < 10; i++) if (allow(rl, K, 60_000)) burst++;
    expect(burst).toBe(5);
  });

  test("gc drops entries idle for a second, keeps the others", () => {
    const rl = new RateLimiter();
    allow(rl, v4(10, 0, 0, 1), 0);
    allow(rl, v4(10, 0, 0, 2), 500);
    expect(rl.size()).toBe(2);
    rl.gc(999);
    expect(rl.size()).toBe(2);
    rl.gc(1000);
    expect(rl.size()).toBe(1);
    rl.gc(1500);
    expect(rl.size()).toBe(0);
    // A collected source starts over as new (allowed, 4 more in its burst).
    let n = 0;
    for (let i = 0; i < 8; i++) if (allow(rl, v4(10, 0, 0, 1), 2000)) n++;
    expect(n).toBe(5);
    rl.clear();
    expect(rl.size()).toBe(0);
  });

  test("a full table refuses new sources but keeps serving known ones", () => {
    expect(DEFAULT_MAX_ENTRIES).toBeGreaterThanOrEqual(1024);
    const rl = new RateLimiter(4);
    for (let i = 0; i < 4; i++) expect(allow(rl, v4(10, 1, 0, i), 0)).toBe(true);
    expect(allow(rl, v6("20010db8000000ff0000000000000001"), 0)).toBe(false);
    expect(allow(rl, v4(10, 1, 0, 0), 0)).toBe(true);
    expect(rl.size()).toBe(4);
    // Once old entries are idle long enough, the table makes room without an explicit gc().
    expect(allow(rl, v6("20010db8000000ff0000000000000001"), 1000)).toBe(true);
    expect(rl.size()).toBe(1);
  });

  test("a clock going backwards never creates tokens", () => {
    const rl = new RateLimiter();
    for (let i = 0; i < 5; i++) expect(allow(rl, K, 1000)).toBe(true);
    expect(allow(rl, K, 900)).toBe(false);
    expect(allow(rl, K, 1000)).toBe(false);
    expect(allow(rl, K, 1050)).toBe(true);
  });
});

describe("through the engine", () => {
  const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
  const BURST = TOKEN_MAX_MS / PACKET_COST_MS;

  /**
   * A responder under load and one configured peer per source address. Each peer gets a cookie
   * for its address the way the protocol hands it out, then sends one fresh initiation with a
   * valid mac2, all at the same instant: only the rate limiter stands between those and a
   * handshake response. Returns how many responses went out.
   */
  function responsesUnderLoad(sources: string[]): number {
    const sent: { to: string; data: Uint8Array }[] = [];
    const clock = { mono: () => 5000, wall: () => 1_700_000_000_000 };
    const dev = createDevice(
      { sendUdp: (b, o, l, ep) => void sent.push({ to: formatEndpoint(ep), data: b.slice(o, o + l) }), writeTun() {}, bind: (p) => p || 51820 },
      clock,
      { deferHandshakes: true },
    );
    const priv = generatePrivateKey();
    const pub = publicKey(priv);
    const peers = sources.map((src, i) => {
      const key = generatePrivateKey();
      const hs = new Handshake(pub);
      hs.setLocalPrivate(key);
      return { src, identity: { privateKey: key, publicKey: publicKey(key) }, hs, cookie: new CookieGenerator(pub), wall: 1_700_000_000_000 + i };
    });
    let conf = `set=1\nprivate_key=${hex(priv)}\nlisten_port=51820\n`;
    for (const [i, p] of peers.entries()) conf += `public_key=${hex(p.identity.publicKey)}\nallowed_ip=10.77.${i}.0/24\n`;
    expect(dev.uapi(conf + "\n").response).toBe("errno=0\n\n");
    dev.up();
    const junk = randomBytes(INITIATION_LEN);
    junk.set([1, 0, 0, 0]);
    junk.fill(0, INITIATION_LEN - 16);
    setMac1(junk, pub);
    const initiation = (p: (typeof peers)[number]) => {
      const msg = new Uint8Array(INITIATION_LEN);
      p.wall += 1000;
      expect(createInitiation(p.identity, p.hs, generatePrivateKey(), 1 + sent.length, tai64n(p.wall), msg)).toBe(true);
      p.cookie.addMacs(msg, 0, INITIATION_LEN, clock.mono());
      return msg;
    };
    /** A backlog that puts the device under load, then one initiation per peer. */
    const round = () => {
      for (let i = 0; i < 128; i++) dev.receiveUdp(junk, 0, INITIATION_LEN, parseAddrPort("198.51.100.1:9")!);
      for (const p of peers) dev.receiveUdp(initiation(p), 0, INITIATION_LEN, parseAddrPort(p.src)!);
      sent.length = 0;
      dev.processHandshakes(Infinity);
    };
    round();
    for (const p of peers) {
      const reply = sent.find((s) => s.to === p.src && s.data[0] === MSG_COOKIE_REPLY)!;
      expect(p.cookie.consumeReply(reply.data, 0, clock.mono())).toBe(true);
    }
    round();
    return sent.filter((s) => s.data[0] === MSG_RESPONSE).length;
  }

  test("IPv6 sources in one /64 share one budget; separate /64s and IPv4 addresses each have their own", () => {
    const n = BURST + 3;
    const idx = Array.from({ length: n }, (_, i) => i + 1);
    expect(responsesUnderLoad(idx.map((i) => `[2001:db8:1:2::${i.toString(16)}]:51820`))).toBe(BURST);
    expect(responsesUnderLoad(idx.map((i) => `[2001:db8:1:2:${i.toString(16)}::1]:${40000 + i}`))).toBe(BURST);
    expect(responsesUnderLoad(idx.map((i) => `[2001:db8:1:${i.toString(16)}::1]:51820`))).toBe(n);
    expect(responsesUnderLoad(idx.map((i) => `[2001:db8:${i.toString(16)}:2::1]:51820`))).toBe(n);
    expect(responsesUnderLoad(idx.map((i) => `192.0.2.${i}:51820`))).toBe(n);
  });
});
