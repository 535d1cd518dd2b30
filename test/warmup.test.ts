// The daemon's JIT warm-up really pushes packets through a handshake and both directions of
// transport (a warm-up that delivered nothing would compile the wrong code), and wipes its keys;
// the I/O variant does so through real sockets and leaves no fd behind.
import { afterAll, describe, expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { Lab, waitFor } from "./netns.ts";
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

describe("I/O warm-up (real sockets over loopback)", () => {
  const ROOT = join(import.meta.dir, "..");
  const openFds = () => readdirSync("/proc/self/fd").length;
  let lab: Lab | null = null;
  afterAll(async () => {
    await lab?.cleanup();
  });

  test("carries packets through two I/O loops and engines, then closes every fd it opened", async () => {
    const { warmUpIo } = await import("../platform/linux/io-warmup.ts");
    const before = openFds();
    const step = warmUpIo(300, 50, { mono: () => performance.now(), wall: () => Date.now() });
    expect(step).not.toBeNull();
    expect(openFds()).toBe(before + 6); // two socketpairs, two UDP sockets
    const seen: number[] = [];
    for (let r = step!(); r >= 0; r = step!()) seen.push(r);
    expect(seen.length).toBe(6);
    // 4 of every 5 packets go from A to B; each comes out of B's "TUN" (super-packets merged back).
    expect(seen.at(-1)).toBe(240);
    expect(openFds()).toBe(before);
    expect(step!()).toBe(-1);
  });

  test("the daemon uses it where loopback is up and falls back to the engine pair where it is down", async () => {
    lab = new Lab("warm");
    const up = lab.ns("up");
    const down = lab.ns("down");
    down.sh("ip link set lo down");
    const iface = (s: string) => `wgtw${process.pid % 10000}${s}`;
    const run = async (ns: typeof up, name: string) => {
      const p = ns.spawn([process.execPath, join(ROOT, "cmd/main.ts"), "daemon", "-f", iface(name)], { LOG_LEVEL: "debug" });
      const done = await waitFor(() => /JIT warm-up \((\S+)\) done/.test(p.output()), 20000);
      await p.kill();
      expect(done).toBe(true);
      return /JIT warm-up \((\S+)\) done in \d+ ms, (\d+) packets delivered/.exec(p.output())!;
    };
    const [, kindUp, deliveredUp] = await run(up, "u");
    expect(kindUp).toBe("I/O");
    expect(Number(deliveredUp)).toBeGreaterThan(1000);
    const [, kindDown, deliveredDown] = await run(down, "d");
    expect(kindDown).toBe("engine");
    expect(Number(deliveredDown)).toBe(3000);
  }, 60000);
});
