// The always-available fallback: both daemons forced onto the pure-TypeScript crypto (what runs
// where libcrypto is missing) still handshake and carry packets of every size both ways.
import { afterAll, expect, test } from "bun:test";
import { Lab } from "./netns.ts";
import { ping, pingUntil, wgPair } from "./lib-wgpair.ts";

const lab = new Lab("noble");
afterAll(() => lab.cleanup());

test("WG_CRYPTO=noble daemons: handshake, small and MTU-sized pings both ways", async () => {
  const { a, b } = await wgPair(lab, { tag: "nb", env: { WG_CRYPTO: "noble", LOG_LEVEL: "verbose" } });
  expect(await pingUntil(a, b.inner4)).toBe(true);
  expect(ping(b, a.inner4, 3)).toBe(true);
  for (const size of [0, 1, 100, 1392]) {
    expect(a.ns.run(["ping", "-c", "1", "-W", "2", "-s", String(size), b.inner4]).code).toBe(0);
  }
  for (const side of [a, b]) {
    const out = side.proc.output();
    expect(out).toContain("backends: noble (WG_CRYPTO=noble)");
    expect(out).not.toContain("openssl");
  }
});
