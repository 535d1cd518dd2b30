import { describe, expect, test } from "bun:test";
import {
  DEFAULT_MAX_ENTRIES,
  IDLE_GC_AFTER_MS,
  PACKET_COST_MS,
  RateLimiter,
  TOKEN_MAX_MS,
  rateLimitKey,
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

const v4 = (a: number, b: number, c: number, d: number) => rateLimitKey(4, Uint8Array.of(a, b, c, d), 0);
function v6(hex: string) {
  const buf = new Uint8Array(20);
  buf.set(Buffer.from(hex, "hex"), 3);
  return rateLimitKey(6, buf, 3);
}

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
      expect({ i, v4: rl.allow(src4, s.t_ms) }).toEqual({ i, v4: s.expected_allow });
      // Different lower 64 bits each step: same bucket as the first IPv6 source.
      const same64 = v6(`20010db800000001${(0x1000 + i).toString(16).padStart(16, "0")}`);
      expect({ i, v6: rl.allow(i === 0 ? src6 : same64, s.t_ms) }).toEqual({ i, v6: s.expected_allow });
      // A fresh IPv4 source and a fresh /64 are always allowed.
      expect(rl.allow(v4(10, 0, 0, i + 1), s.t_ms)).toBe(true);
      expect(rl.allow(v6(`20010db8${(0x100 + i).toString(16).padStart(8, "0")}0000000000000001`), s.t_ms)).toBe(true);
      n++;
    }
    expect(n).toBe(11);
  });
});

describe("ratelimiter behaviour", () => {
  test("keys: IPv4 whole address, IPv6 upper 64 bits", () => {
    expect(v4(1, 2, 3, 4)).not.toBe(v4(1, 2, 3, 5));
    expect(v6("fd000000000000010000000000000001")).toBe(v6("fd0000000000000100000000ffffffff"));
    expect(v6("fd000000000000010000000000000001")).not.toBe(v6("fd000000000000020000000000000001"));
    expect(v6("00000000000000000000000000000000")).not.toBe(v4(0, 0, 0, 0));
  });

  test("steady state is 20 packets per second after the burst", () => {
    const rl = new RateLimiter();
    let allowed = 0;
    for (let t = 0; t < 10_000; t += 5) if (rl.allow("k", t)) allowed++;
    // 5 at once, then one per 50 ms for the remaining 9995 ms.
    expect(allowed).toBe(5 + Math.floor(9995 / 50));
  });

  test("tokens cap at the burst after a long idle time", () => {
    const rl = new RateLimiter();
    for (let i = 0; i < 10; i++) rl.allow("k", 0);
    let burst = 0;
    for (let i = 0; i < 10; i++) if (rl.allow("k", 60_000)) burst++;
    expect(burst).toBe(5);
  });

  test("gc drops entries idle for a second, keeps the others", () => {
    const rl = new RateLimiter();
    rl.allow("a", 0);
    rl.allow("b", 500);
    expect(rl.size()).toBe(2);
    rl.gc(999);
    expect(rl.size()).toBe(2);
    rl.gc(1000);
    expect(rl.size()).toBe(1);
    rl.gc(1500);
    expect(rl.size()).toBe(0);
    // A collected source starts over as new (allowed, 4 more in its burst).
    let n = 0;
    for (let i = 0; i < 8; i++) if (rl.allow("a", 2000)) n++;
    expect(n).toBe(5);
    rl.clear();
    expect(rl.size()).toBe(0);
  });

  test("a full table refuses new sources but keeps serving known ones", () => {
    expect(DEFAULT_MAX_ENTRIES).toBeGreaterThanOrEqual(1024);
    const rl = new RateLimiter(4);
    for (let i = 0; i < 4; i++) expect(rl.allow(`s${i}`, 0)).toBe(true);
    expect(rl.allow("new", 0)).toBe(false);
    expect(rl.allow("s0", 0)).toBe(true);
    expect(rl.size()).toBe(4);
    // Once old entries are idle long enough, the table makes room without an explicit gc().
    expect(rl.allow("new", 1000)).toBe(true);
    expect(rl.size()).toBe(1);
  });

  test("a clock going backwards never creates tokens", () => {
    const rl = new RateLimiter();
    for (let i = 0; i < 5; i++) expect(rl.allow("k", 1000)).toBe(true);
    expect(rl.allow("k", 900)).toBe(false);
    expect(rl.allow("k", 1000)).toBe(false);
    expect(rl.allow("k", 1050)).toBe(true);
  });
});
