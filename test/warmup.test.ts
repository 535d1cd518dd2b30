// The daemon's JIT warm-up really pushes packets through a handshake and both directions of
// transport (a warm-up that delivered nothing would compile the wrong code), and wipes its keys.
import { expect, test } from "bun:test";
import { warmUp } from "../core/warmup.ts";

test("warm-up delivers every packet through a real handshake, in slices, then ends", () => {
  const step = warmUp(500, 64);
  const seen: number[] = [];
  for (let r = step(); r >= 0; r = step()) seen.push(r);
  expect(seen.length).toBe(Math.ceil(500 / 64));
  expect(seen.at(-1)).toBe(500);
  for (let i = 1; i < seen.length; i++) expect(seen[i]!).toBeGreaterThan(seen[i - 1]!);
  expect(step()).toBe(-1);
});
