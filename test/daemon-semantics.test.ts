// The daemon where users rely on kernel WireGuard's behaviour (issue 13), on real namespaces and
// packets: the interface moved into another namespace, sticky sources re-checked when routes
// change, persistent keepalive whatever the configuration order, and the neighbouring cases
// (routing loop, a LAN host's WireGuard forwarded through the tunnel, tunnel inside a tunnel,
// private-key change on both sides).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { socketPath } from "../platform/socket-path.ts";
import { Lab, type Netns, waitFor } from "./netns.ts";
import { BUN, genkey, ifname as uniqueIfname, keyFile, rssKiB, startDaemon } from "./lib-wgpair.ts";

let lab: Lab;
beforeAll(() => {
  lab = new Lab("dsem");
});
afterAll(async () => {
  await lab.cleanup();
});

const ifname = () => uniqueIfname("s");
const ping = (ns: Netns, to: string, wait = 1) => ns.run(["ping", "-c", "1", "-W", String(wait), to]).code === 0;
const pingUntil = (ns: Netns, to: string, ms = 8000) => waitFor(() => ping(ns, to), ms, 100);
/** `wg show IF dump`'s only peer line: endpoint, latest handshake, rx, tx. */
function peerOf(ns: Netns, iface: string): { endpoint: string; handshake: number; rx: number; tx: number } {
  const f = (ns.sh(`wg show ${iface} dump`).trim().split("\n")[1] ?? "").split("\t");
  return { endpoint: f[2] ?? "", handshake: Number(f[4] ?? 0), rx: Number(f[5] ?? 0), tx: Number(f[6] ?? 0) };
}

/** Our daemon in each of two namespaces, with fresh keys; stop() deletes the links and ends both. */
async function daemons(nsA: Netns, nsB: Netns) {
  const ia = ifname();
  const ib = ifname();
  const ka = genkey();
  const kb = genkey();
  const pa = await startDaemon(nsA, ia);
  const pb = await startDaemon(nsB, ib);
  const stop = async () => {
    nsA.run(["ip", "link", "del", ia]);
    nsB.run(["ip", "link", "del", ib]);
    await pa.kill();
    await pb.kill();
  };
  return { ia, ib, ka, kb, pa, pb, stop };
}

describe("the interface moved into another network namespace (the container recipe)", () => {
  test("create, configure, move, ping both ways, MTU seen there, move again, namespace deleted -> daemon exits, socket removed", async () => {
    const nsA = lab.ns("ma"); // where the daemon starts; the only namespace with a way to the peer
    const nsP = lab.ns("mp"); // the peer
    const nsC1 = lab.ns("mc1"); // containers: only lo, then the tunnel
    const nsC2 = lab.ns("mc2");
    lab.veth(nsA, nsP, { a: ["10.91.0.1/24"], b: ["10.91.0.2/24"] });
    const { ia, ib: ip, ka, kb: kp, pa, stop } = await daemons(nsA, nsP);
    try {
      nsP.sh(`wg set ${ip} private-key ${keyFile(kp.priv)} listen-port 47302 peer ${ka.pub} allowed-ips 10.92.0.1/32`);
      nsP.sh(`ip addr add 10.92.0.2/24 dev ${ip} && ip link set ${ip} up`);
      nsA.sh(`wg set ${ia} private-key ${keyFile(ka.priv)} listen-port 47301 peer ${kp.pub} endpoint 10.91.0.2:47302 allowed-ips 10.92.0.0/24`);
      nsA.sh(`ip link set ${ia} netns ${nsC1.name}`);
      nsC1.sh(`ip addr add 10.92.0.1/24 dev ${ia} && ip link set ${ia} up`);
      expect(await pingUntil(nsC1, "10.92.0.2")).toBe(true);
      expect(ping(nsP, "10.92.0.1", 2)).toBe(true);
      // the UDP socket stayed in A, the UAPI socket answers
      expect(nsA.sh("ss -Huan")).toContain(":47301 ");
      expect(nsC1.sh("ss -Huan")).not.toContain(":47301 ");
      expect(nsA.sh(`wg show ${ia} listen-port`).trim()).toBe("47301");
      expect(peerOf(nsP, ip).endpoint).toBe("10.91.0.1:47301");
      // an MTU change in the new namespace reaches the daemon
      nsC1.sh(`ip link set ${ia} mtu 1300`);
      expect(await waitFor(() => pa.output().includes("MTU updated: 1300"), 3000)).toBe(true);
      // down there stops the peer, up there starts it again
      nsC1.sh(`ip link set ${ia} down`);
      expect(await waitFor(() => pa.output().includes("Link down"), 3000)).toBe(true);
      // move on into a second container
      nsC1.sh(`ip link set ${ia} netns ${nsC2.name}`);
      nsC2.sh(`ip addr add 10.92.0.1/24 dev ${ia} && ip link set ${ia} mtu 1280 up`);
      expect(await pingUntil(nsC2, "10.92.0.2")).toBe(true);
      expect(ping(nsP, "10.92.0.1", 2)).toBe(true);
      expect(await waitFor(() => pa.output().includes("MTU updated: 1280"), 3000)).toBe(true);
      expect(pa.proc.exitCode).toBeNull();
      // deleting the namespace that holds it deletes the interface: now the daemon ends
      expect(Bun.spawnSync(["ip", "netns", "del", nsC2.name]).exitCode).toBe(0);
      const code = await Promise.race([pa.exited, Bun.sleep(5000).then(() => "timeout")]);
      expect(code).toBe(0);
      expect(pa.output()).toContain("Shutting down (interface removed)");
      expect(existsSync(socketPath(ia))).toBe(false);
    } finally {
      await stop();
    }
  }, 60_000);
});

/** rp_filter off on every interface of `ns` (the two-path topology below needs asymmetric routes). */
function noRpFilter(ns: Netns): void {
  ns.sh("for f in /proc/sys/net/ipv4/conf/*/rp_filter; do echo 0 > $f; done");
}

describe("sticky source: re-checked when routes or addresses change, dropped when gone", () => {
  test("a more preferred route through another interface moves the source (kernel, go); a removed address is dropped at once", async () => {
    const nsA = lab.ns("sa");
    const nsB = lab.ns("sb");
    // Two links between A and B. First: A 10.93.0.1/24 (its route at metric 10) <-> B 10.93.0.2.
    // Second: A's "vthree" holds 10.93.0.3 without a route; B's end has no address.
    lab.veth(nsA, nsB, { a: ["10.93.0.1/24 metric 10"], b: ["10.93.0.2/24"] }, "vone");
    lab.veth(nsA, nsB, { a: ["10.93.0.3/24 noprefixroute"] }, "vthree");
    noRpFilter(nsA);
    noRpFilter(nsB);
    const { ia, ib, ka, kb, stop } = await daemons(nsA, nsB);
    try {
      // A knows no endpoint: it answers from where B wrote to (10.93.0.1), the sticky source.
      nsA.sh(`wg set ${ia} private-key ${keyFile(ka.priv)} listen-port 47401 peer ${kb.pub} allowed-ips 10.94.0.2/32`);
      nsA.sh(`ip addr add 10.94.0.1/24 dev ${ia} && ip link set ${ia} up`);
      nsB.sh(`wg set ${ib} private-key ${keyFile(kb.priv)} listen-port 47402 peer ${ka.pub} endpoint 10.93.0.1:47401 allowed-ips 10.94.0.1/32`);
      nsB.sh(`ip addr add 10.94.0.2/24 dev ${ib} && ip link set ${ib} up`);
      expect(await pingUntil(nsB, "10.94.0.1")).toBe(true);
      expect(ping(nsA, "10.94.0.2")).toBe(true);
      expect(peerOf(nsB, ib).endpoint).toBe("10.93.0.1:47401");
      // The recipe: a more preferred route to B through the other interface, source 10.93.0.3.
      nsA.sh("ip route add 10.93.0.0/24 dev vthree src 10.93.0.3 metric 1");
      const moved = await waitFor(() => ping(nsA, "10.94.0.2") && peerOf(nsB, ib).endpoint === "10.93.0.3:47401", 5000, 100);
      expect({ moved, endpoint: peerOf(nsB, ib).endpoint }).toEqual({ moved: true, endpoint: "10.93.0.3:47401" });
      // Not too sticky: B now writes to 10.93.0.3; that address goes away (and its route with it),
      // A's next reply leaves from what remains.
      nsA.sh("ip addr del 10.93.0.3/24 dev vthree");
      const back = await waitFor(() => ping(nsA, "10.94.0.2") && peerOf(nsB, ib).endpoint === "10.93.0.1:47401", 5000, 100);
      expect({ back, endpoint: peerOf(nsB, ib).endpoint }).toEqual({ back: true, endpoint: "10.93.0.1:47401" });
      expect(ping(nsB, "10.94.0.1")).toBe(true);
    } finally {
      await stop();
    }
  }, 40_000);
});

describe("persistent keepalive starts whatever the configuration order (real daemons, counters)", () => {
  // Steps towards "able to send"; every order is covered by the engine test in device-sim.
  const orders: string[][] = [
    ["endpoint+keepalive", "link", "key"], // the issue's recipe: the private key last
    ["key", "endpoint+keepalive", "link"], // the link last
    ["link", "key", "endpoint+keepalive"], // the peer last
  ];
  for (const order of orders) {
    test(`${order.join(", ")}: nothing leaves before the last step, a handshake right after it; link down sends nothing`, async () => {
      const nsA = lab.ns(`ka${orders.indexOf(order)}`);
      const nsB = lab.ns(`kb${orders.indexOf(order)}`);
      lab.veth(nsA, nsB, { a: ["10.95.0.1/24"], b: ["10.95.0.2/24"] });
      const { ia, ib, ka, kb, stop } = await daemons(nsA, nsB);
      try {
        nsB.sh(`wg set ${ib} private-key ${keyFile(kb.priv)} listen-port 47502 peer ${ka.pub} allowed-ips 10.96.0.1/32`);
        nsB.sh(`ip addr add 10.96.0.2/24 dev ${ib} && ip link set ${ib} up`);
        nsA.sh(`ip addr add 10.96.0.1/24 dev ${ia}`);
        nsA.sh(`wg set ${ia} listen-port 47501 peer ${kb.pub} allowed-ips 10.96.0.2/32`);
        const steps: Record<string, string> = {
          key: `wg set ${ia} private-key ${keyFile(ka.priv)}`,
          link: `ip link set ${ia} up`,
          "endpoint+keepalive": `wg set ${ia} peer ${kb.pub} endpoint 10.95.0.2:47502 persistent-keepalive 1`,
        };
        for (const step of order.slice(0, -1)) nsA.sh(steps[step]!);
        await Bun.sleep(2500);
        expect(peerOf(nsA, ia).tx).toBe(0);
        expect(peerOf(nsB, ib).rx).toBe(0);
        const t0 = Date.now();
        nsA.sh(steps[order.at(-1)!]!);
        expect(await waitFor(() => peerOf(nsA, ia).handshake > 0, 3000, 50)).toBe(true);
        expect(Date.now() - t0).toBeLessThan(1500);
        // keepalives flow with no traffic at all
        const rx = peerOf(nsB, ib).rx;
        await Bun.sleep(2500);
        expect(peerOf(nsB, ib).rx).toBeGreaterThanOrEqual(rx + 2 * 32);
        // link down: the kernel's device stop; nothing more leaves
        nsA.sh(`ip link set ${ia} down`);
        await Bun.sleep(300);
        const tx = peerOf(nsA, ia).tx;
        await Bun.sleep(2500);
        expect(peerOf(nsA, ia).tx).toBe(tx);
        // and up again: at once
        nsA.sh(`ip link set ${ia} up`);
        expect(await waitFor(() => peerOf(nsA, ia).tx > tx, 1500, 50)).toBe(true);
        expect(await pingUntil(nsA, "10.96.0.2", 3000)).toBe(true);
      } finally {
        await stop();
      }
    }, 40_000);
  }
});

/** Two of our daemons, A and B, joined by a veth (outer 10.<n>.0.x) with a tunnel (10.<n+1>.0.x). */
async function pair(tag: string, n: number, opts: { allowedA?: string; keepalive?: number } = {}) {
  const nsA = lab.ns(`${tag}a`);
  const nsB = lab.ns(`${tag}b`);
  lab.veth(nsA, nsB, { a: [`10.${n}.0.1/24`], b: [`10.${n}.0.2/24`] });
  const d = await daemons(nsA, nsB);
  const { ia, ib, ka, kb } = d;
  const pk = opts.keepalive ? ` persistent-keepalive ${opts.keepalive}` : "";
  nsB.sh(`wg set ${ib} private-key ${keyFile(kb.priv)} listen-port 4${n}2 peer ${ka.pub} allowed-ips 10.${n + 1}.0.1/32${pk}`);
  nsB.sh(`ip addr add 10.${n + 1}.0.2/24 dev ${ib} && ip link set ${ib} up`);
  nsA.sh(`wg set ${ia} private-key ${keyFile(ka.priv)} listen-port 4${n}1 peer ${kb.pub} endpoint 10.${n}.0.2:4${n}2 allowed-ips ${opts.allowedA ?? `10.${n + 1}.0.2/32`}${pk}`);
  nsA.sh(`ip addr add 10.${n + 1}.0.1/24 dev ${ia} && ip link set ${ia} up`);
  return { nsA, nsB, ...d };
}

describe("neighbouring cases", () => {
  test("routing loop (the endpoint routed into the tunnel itself): dropped at the first lap, daemon and counters sane", async () => {
    const { nsA, ia, pa, stop } = await pair("lp", 101, { allowedA: "0.0.0.0/0" });
    try {
      expect(await pingUntil(nsA, "10.102.0.2")).toBe(true);
      const before = peerOf(nsA, ia);
      const rss0 = rssKiB(pa.pid);
      nsA.sh(`ip route add 10.101.0.2/32 dev ${ia}`);
      nsA.run(["ping", "-c", "5", "-i", "0.2", "-W", "1", "10.102.0.2"]);
      nsA.run(["ping", "-c", "3", "-s", "1392", "-i", "0.2", "-W", "1", "10.102.0.2"]);
      await Bun.sleep(1000);
      const looped = peerOf(nsA, ia);
      // one encrypted datagram per ping at most (the kernel sends none: ELOOP), no storm
      expect(looped.tx - before.tx).toBeLessThan(8 * 1500 + 4 * 148);
      const tunPackets = Number(/TX:.*\n\s*\d+\s+(\d+)/.exec(nsA.sh(`ip -s link show ${ia}`))![1]);
      expect(tunPackets).toBeLessThan(100);
      expect(rssKiB(pa.pid) - rss0).toBeLessThan(20_000);
      expect(pa.proc.exitCode).toBeNull();
      nsA.sh(`ip route del 10.101.0.2/32 dev ${ia}`);
      expect(await pingUntil(nsA, "10.102.0.2", 12_000)).toBe(true);
      expect(pa.output()).toContain("Avoiding routing loop");
    } finally {
      await stop();
    }
  }, 40_000);

  test("a LAN host's own WireGuard on our port number, masqueraded through the tunnel (VPN router): carried, not taken for a loop", async () => {
    const { nsA, nsB, ia, pa, stop } = await pair("fw", 109, { allowedA: "0.0.0.0/0" });
    const nsL = lab.ns("fwl");
    lab.veth(nsL, nsA, { a: ["10.111.0.2/24"], b: ["10.111.0.1/24"] }, "lan");
    try {
      expect(await pingUntil(nsA, "10.110.0.2")).toBe(true);
      nsA.sh("sysctl -qw net.ipv4.ip_forward=1");
      nsA.sh(`nft add table ip nat && nft add chain ip nat post '{ type nat hook postrouting priority srcnat; }' && nft add rule ip nat post oifname ${ia} masquerade`);
      nsL.sh("ip route add default via 10.111.0.1");
      const listener = nsB.spawn([BUN, "-e", `require("node:dgram").createSocket("udp4").on("message", (m, r) => console.log("got " + m + " from " + r.address + ":" + r.port)).bind(5555, () => console.log("listening"))`]);
      expect(await waitFor(() => listener.output().includes("listening"), 5000)).toBe(true);
      // From L's port 41091, A's listen port; masquerading keeps it: UDP 10.110.0.1:41091 -> 10.110.0.2:5555 on A's TUN.
      const sender = `const s = require("node:dgram").createSocket("udp4"); s.bind(41091, async () => { for (let i = 0; i < 3; i++) { s.send("lan", 5555, "10.110.0.2"); await Bun.sleep(100); } s.close(); })`;
      expect(nsL.run([BUN, "-e", sender]).code).toBe(0);
      expect(await waitFor(() => listener.output().includes("got lan from 10.110.0.1:41091"), 3000)).toBe(true);
      expect(pa.output()).not.toContain("Avoiding routing loop");
    } finally {
      await stop();
    }
  }, 40_000);

  test("onion: a tunnel whose endpoint is only reachable through another tunnel", async () => {
    const outer = await pair("on", 103);
    const { nsA, nsB } = outer;
    const { ia, ib, ka, kb, stop } = await daemons(nsA, nsB);
    try {
      expect(await pingUntil(nsA, "10.104.0.2")).toBe(true);
      // inner: endpoint 10.104.0.2 is B's address inside the outer tunnel
      nsB.sh(`wg set ${ib} private-key ${keyFile(kb.priv)} listen-port 41062 peer ${ka.pub} allowed-ips 10.106.0.1/32`);
      nsB.sh(`ip addr add 10.106.0.2/24 dev ${ib} && ip link set ${ib} mtu 1340 up`);
      nsA.sh(`wg set ${ia} private-key ${keyFile(ka.priv)} listen-port 41061 peer ${kb.pub} endpoint 10.104.0.2:41062 allowed-ips 10.106.0.2/32`);
      nsA.sh(`ip addr add 10.106.0.1/24 dev ${ia} && ip link set ${ia} mtu 1340 up`);
      expect(await pingUntil(nsA, "10.106.0.2")).toBe(true);
      expect(ping(nsB, "10.106.0.1", 2)).toBe(true);
      expect(nsA.run(["ping", "-c", "3", "-i", "0.2", "-s", "1300", "-M", "do", "-W", "2", "10.106.0.2"]).code).toBe(0);
      expect(peerOf(nsB, ib).endpoint).toBe("10.104.0.1:41061");
    } finally {
      await stop();
      await outer.stop();
    }
  }, 40_000);

  test("private keys changed on both sides: the next packet gets a new handshake at once, no stale session", async () => {
    const { nsA, nsB, ia, ib, pa, stop } = await pair("pk", 107);
    try {
      expect(await pingUntil(nsA, "10.108.0.2")).toBe(true);
      const hs0 = peerOf(nsA, ia).handshake;
      const a2 = genkey();
      const b2 = genkey();
      const peerA = nsA.sh(`wg show ${ia} peers`).trim();
      const peerB = nsB.sh(`wg show ${ib} peers`).trim();
      nsB.sh(`wg set ${ib} private-key ${keyFile(b2.priv)} peer ${peerB} remove peer ${a2.pub} allowed-ips 10.108.0.1/32`);
      nsA.sh(`wg set ${ia} private-key ${keyFile(a2.priv)} peer ${peerA} remove peer ${b2.pub} endpoint 10.107.0.2:41072 allowed-ips 10.108.0.2/32`);
      await Bun.sleep(1100); // handshake times have a resolution of a second
      const t0 = Date.now();
      expect(ping(nsA, "10.108.0.2", 3)).toBe(true);
      expect(Date.now() - t0).toBeLessThan(1500);
      expect(peerOf(nsA, ia).handshake).toBeGreaterThan(hs0);
      expect(ping(nsB, "10.108.0.1", 2)).toBe(true);
      expect(pa.output()).not.toContain("ERROR");
    } finally {
      await stop();
    }
  }, 40_000);
});
