// `wg show ... --json` (extension): every field of `dump` under stable names, plus `online`;
// the default outputs stay byte-identical to the real wg (the real wg rejects --json).
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { keyToBase64 } from "../core/encoding.ts";
import { FakeDaemon, ours, real, testKey, type FakeState } from "./wg-harness.ts";

const dir = mkdtempSync("/tmp/wgjson-");
const now = () => BigInt(Math.floor(Date.now() / 1000));
const state: FakeState = {
  priv: testKey(1),
  port: 51820,
  fwmark: 0x1234,
  peers: [
    { pub: testKey(2), psk: testKey(3), endpoint: "192.0.2.7:51820", hsSec: (n) => n - 30n, hsNsec: 5n, rx: 1234n, tx: 9007199254740993n, keepalive: 25, allowed: ["10.0.0.0/24", "fd00::/64"] },
    { pub: testKey(4), hsSec: (n) => n - 600n, allowed: [] },
    { pub: testKey(5) },
  ],
};
let fake: FakeDaemon;
let second: FakeDaemon;

beforeAll(async () => {
  fake = await FakeDaemon.serving(state, "wj0", dir).start();
  second = await FakeDaemon.serving({ peers: [] }, "wj1", dir).start();
});
afterAll(async () => {
  await fake.stop();
  await second.stop();
  rmSync(dir, { recursive: true, force: true });
});
const iso = { isolate: dir };

test("one interface as an object with every dump field and online", async () => {
  const r = await ours(["show", "wj0", "--json"], iso);
  expect(r.stderr).toBe("");
  expect(r.code).toBe(0);
  const j = JSON.parse(r.stdout);
  expect(j).toMatchObject({ name: "wj0", private_key: keyToBase64(testKey(1)), listen_port: 51820, fwmark: 0x1234 });
  expect(typeof j.public_key).toBe("string");
  const [p1, p2, p3] = j.peers;
  expect(p1).toMatchObject({
    public_key: keyToBase64(testKey(2)), preshared_key: keyToBase64(testKey(3)), endpoint: "192.0.2.7:51820",
    allowed_ips: ["10.0.0.0/24", "fd00::/64"], latest_handshake_nsec: 5, transfer_rx: 1234,
    transfer_tx: "9007199254740993", persistent_keepalive: 25, online: true,
  });
  expect(Math.abs(p1.latest_handshake - (Number(now()) - 30))).toBeLessThanOrEqual(2);
  expect(p2).toMatchObject({ preshared_key: null, endpoint: null, allowed_ips: [], persistent_keepalive: null, online: false });
  expect(p3).toMatchObject({ latest_handshake: 0, online: false });
  // The field form gives the same document.
  const f = await ours(["show", "wj0", "json"], iso);
  expect(JSON.parse(f.stdout).peers.length).toBe(3);
  // Same facts as dump: keys, endpoint, allowed ips and counters agree line by line.
  const dump = (await ours(["show", "wj0", "dump"], iso)).stdout.trim().split("\n").map((l) => l.split("\t"));
  expect(dump[0]![0]).toBe(j.private_key);
  expect(dump[0]![1]).toBe(j.public_key);
  expect(dump[1]![2]).toBe(p1.endpoint);
  expect(dump[1]![5]).toBe(String(p1.transfer_rx));
  expect(dump[1]![6]).toBe(p1.transfer_tx);
});

test("all interfaces as an array; --json before the interface too", async () => {
  const a = JSON.parse((await ours(["show", "all", "--json"], iso)).stdout);
  expect(a.map((d: { name: string }) => d.name).sort()).toEqual(["wj0", "wj1"]);
  const b = JSON.parse((await ours(["show", "--json"], iso)).stdout);
  expect(b.length).toBe(2);
  const c = JSON.parse((await ours(["show", "--json", "wj1"], iso)).stdout);
  expect(c).toMatchObject({ name: "wj1", peers: [] });
});

test("missing interface: the usual error and status", async () => {
  const r = await ours(["show", "wjmissing", "--json"], iso);
  expect(r.code).toBe(1);
  expect(r.stderr).toBe("Unable to access interface: Protocol not supported\n");
});

test("the real wg rejects these words, and default outputs are unchanged", async () => {
  const rr = await real(["show", "wj0", "--json"], iso);
  expect(rr.code).toBe(1);
  for (const args of [["show", "wj0", "dump"], ["show", "wj0", "endpoints"], ["showconf", "wj0"]]) {
    const [a, b] = await Promise.all([real(args, iso), ours(args, iso)]);
    expect(b).toEqual(a);
  }
});
