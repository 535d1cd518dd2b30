import { describe, expect, test } from "bun:test";
import { REJECT_AFTER_MESSAGES, ReplayWindow, WINDOW_SIZE } from "../core/replay.ts";

const vectors = (await Bun.file(new URL("./vectors/replay_counter.json", import.meta.url)).json()) as {
  window_size: number;
  reject_after_messages: { wireguard_go: string };
  sequences: {
    name: string;
    steps: {
      counter?: string;
      counter_with_wireguard_go_limit?: string;
      counter_range?: { from: string; to: string; step: number };
      expected_accept: boolean;
    }[];
  }[];
};

describe("replay window vectors (kernel selftest/counter.c, go limit)", () => {
  test("constants", () => {
    expect(WINDOW_SIZE).toBe(vectors.window_size);
    expect(REJECT_AFTER_MESSAGES).toBe(BigInt(vectors.reject_after_messages.wireguard_go));
    expect(REJECT_AFTER_MESSAGES).toBe(18446744073709543423n);
  });

  for (const seq of vectors.sequences) {
    test(seq.name, () => {
      const w = new ReplayWindow();
      let n = 0;
      const check = (c: bigint, expected: boolean) => {
        // wouldAccept must predict accept and must not change state.
        expect({ c, would: w.wouldAccept(c) }).toEqual({ c, would: expected });
        expect({ c, would: w.wouldAccept(c) }).toEqual({ c, would: expected });
        expect({ c, ok: w.accept(c) }).toEqual({ c, ok: expected });
        n++;
      };
      for (const s of seq.steps) {
        if (s.counter_range) {
          const from = BigInt(s.counter_range.from);
          const to = BigInt(s.counter_range.to);
          const step = BigInt(s.counter_range.step);
          expect(step === 1n || step === -1n).toBe(true);
          for (let c = from; step > 0n ? c <= to : c >= to; c += step) check(c, s.expected_accept);
        } else {
          check(BigInt(s.counter_with_wireguard_go_limit ?? s.counter!), s.expected_accept);
        }
      }
      expect(n).toBeGreaterThan(2);
    });
  }
});

describe("replay window behaviour", () => {
  test("reset gives a fresh window", () => {
    const w = new ReplayWindow();
    expect(w.accept(0n)).toBe(true);
    expect(w.accept(0n)).toBe(false);
    expect(w.accept(100000n)).toBe(true);
    w.reset();
    expect(w.accept(0n)).toBe(true);
    expect(w.accept(100000n)).toBe(true);
  });

  test("out-of-range BigInts are rejected", () => {
    const w = new ReplayWindow();
    expect(w.accept(-1n)).toBe(false);
    expect(w.accept(1n << 64n)).toBe(false);
    expect(w.accept(REJECT_AFTER_MESSAGES)).toBe(false);
    expect(w.accept(REJECT_AFTER_MESSAGES - 1n)).toBe(true);
    expect(w.accept(REJECT_AFTER_MESSAGES - 1n - BigInt(WINDOW_SIZE))).toBe(true);
    expect(w.accept(REJECT_AFTER_MESSAGES - 2n - BigInt(WINDOW_SIZE))).toBe(false);
  });

  test("window edge exactly at W behind, across the 2^32 and 2^53 boundaries", () => {
    for (const base of [0n, (1n << 32n) - 5n, (1n << 53n) - 3n, 1n << 60n]) {
      const w = new ReplayWindow();
      const top = base + 20000n;
      expect(w.accept(top)).toBe(true);
      expect(w.accept(top - BigInt(WINDOW_SIZE) - 1n)).toBe(false);
      expect(w.accept(top - BigInt(WINDOW_SIZE))).toBe(true);
      expect(w.accept(top - BigInt(WINDOW_SIZE))).toBe(false);
      expect(w.accept(top - 1n)).toBe(true);
      expect(w.accept(top + (1n << 33n))).toBe(true);
      expect(w.accept(top)).toBe(false);
    }
  });

  test("acceptU32 agrees with accept", () => {
    const a = new ReplayWindow();
    const b = new ReplayWindow();
    const c = 0x1_2345_6789n;
    expect(a.accept(c)).toBe(true);
    expect(b.acceptU32(1, 0x2345_6789)).toBe(true);
    expect(b.acceptU32(1, 0x2345_6789)).toBe(false);
    expect(a.accept(c - 7000n)).toBe(b.acceptU32(1, 0x2345_6789 - 7000));
    expect(a.wouldAccept(c - 7000n)).toBe(false);
    expect(b.wouldAcceptU32(0, 0xffff_ffff)).toBe(false);
  });

  test("randomized against a set-based reference", () => {
    let seed = 12345;
    const rnd = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed / 0x1_0000_0000;
    };
    for (const start of [0n, (1n << 32n) - 30000n, (1n << 63n)]) {
      const w = new ReplayWindow();
      const seen = new Set<bigint>();
      let max = -1n;
      let cur = start;
      for (let i = 0; i < 40000; i++) {
        const r = rnd();
        let c: bigint;
        if (r < 0.5) c = cur + BigInt(Math.floor(rnd() * 70));
        else if (r < 0.95) c = cur - BigInt(Math.floor(rnd() * 9000));
        else c = cur + BigInt(Math.floor(rnd() * 30000));
        if (c < 0n) c = 0n;
        if (c > cur) cur = c;
        const expected =
          c < REJECT_AFTER_MESSAGES && (max < 0n || c > max || max - c <= BigInt(WINDOW_SIZE)) && !seen.has(c);
        expect(w.wouldAccept(c)).toBe(expected);
        const got = w.accept(c);
        if (got !== expected) throw new Error(`counter ${c}: got ${got}, expected ${expected}`);
        if (expected) {
          seen.add(c);
          if (c > max) max = c;
        }
      }
    }
  });
});
