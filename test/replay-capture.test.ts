// Replay of real captured traffic between two of our daemons (namespaces, dumpcap on the veth).
//
// Control: an initiation captured while the responder could not see it (nft drop) and replayed
// later from another port IS answered with a response - so the method notices acceptance.
// Then: an initiation and data packets that were delivered once, replayed later from another
// port towards both daemons, are dropped: no answer to the replayer, no handshake, rx counters,
// endpoint, latest handshake and the TUN's rx_packets unchanged.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Lab } from "./netns.ts";
import { peerDump, ping, pingUntil, wgPair, type Side } from "./lib-wgpair.ts";
import { capture, sendFrom, type Datagram } from "./lib-udp.ts";

let lab: Lab;
let dir: string;
beforeAll(() => {
  lab = new Lab("replay");
  dir = mkdtempSync(join(tmpdir(), "wgt-replay-"));
});
afterAll(async () => {
  await lab.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

function state(s: Side) {
  const d = peerDump(s);
  const tunRx = Number(s.ns.sh(`cat /sys/class/net/${s.iface}/statistics/rx_packets`).trim());
  return { ...d, tunRx };
}

function between(caps: Datagram[], from: Side, to: Side, type?: number): Datagram[] {
  return caps.filter((d) => d.src === from.outer4 && d.dst === to.outer4 && d.dport === to.port && (type === undefined || d.payload[0] === type));
}

test("captured initiation and data replayed later are dropped without any reaction", async () => {
  const { a, b } = await wgPair(lab, { tag: "r" });

  // --- control: an initiation b never saw is accepted from any address, and we see it.
  b.ns.sh(`nft add table inet wgtreplay && nft add chain inet wgtreplay in '{ type filter hook input priority 0; }' && nft add rule inet wgtreplay in udp dport ${b.port} drop`);
  let cap = await capture(a.ns, a.dev, join(dir, "c1.pcap"));
  expect(ping(a, b.inner4, 1, 1)).toBe(false);
  let caps = await cap.stop();
  b.ns.sh("nft delete table inet wgtreplay");
  const unseen = between(caps, a, b, 1);
  expect(unseen.length).toBeGreaterThanOrEqual(1);
  const rx0 = peerDump(b).rx;
  const answers0 = sendFrom(a.ns, { to: b.outer4, port: b.port, payloads: [hex(unseen.at(-1)!.payload)], listenMs: 1500 });
  expect(answers0).toContain(2); // a handshake response, sent to the replayer
  expect(peerDump(b).rx).toBeGreaterThan(rx0);

  // --- the real thing: capture a handshake and data that b and a accept...
  cap = await capture(a.ns, a.dev, join(dir, "c2.pcap"));
  expect(await pingUntil(a, b.inner4, 20000)).toBe(true);
  expect(ping(a, b.inner4, 5)).toBe(true);
  caps = await cap.stop();
  const toB = between(caps, a, b);
  const toA = between(caps, b, a);
  expect(toB.filter((d) => d.payload[0] === 1).length).toBeGreaterThanOrEqual(1);
  expect(toB.filter((d) => d.payload[0] === 4).length).toBeGreaterThanOrEqual(5);
  expect(toA.filter((d) => d.payload[0] === 2).length).toBeGreaterThanOrEqual(1);
  expect(toA.filter((d) => d.payload[0] === 4).length).toBeGreaterThanOrEqual(5);

  // ...then replay all of it, in order and reversed, towards each side.
  await Bun.sleep(1000);
  const before = { a: state(a), b: state(b) };
  const payloadsB = toB.map((d) => hex(d.payload));
  const payloadsA = toA.map((d) => hex(d.payload));
  const ansB = sendFrom(a.ns, { to: b.outer4, port: b.port, payloads: [...payloadsB, ...payloadsB.slice().reverse()], gapMs: 5, listenMs: 1500 });
  const ansA = sendFrom(b.ns, { to: a.outer4, port: a.port, payloads: [...payloadsA, ...payloadsA.slice().reverse()], gapMs: 5, listenMs: 1500 });
  const after = { a: state(a), b: state(b) };
  expect(ansB).toEqual([]);
  expect(ansA).toEqual([]);
  expect(after).toEqual(before);

  // The tunnel is unharmed.
  expect(ping(a, b.inner4, 2)).toBe(true);
}, 90_000);
