// End-to-end: our daemon against itself and against wireguard-go, configured by the real `wg`,
// with real packets in private namespaces (test/netns.ts). Needs root, wireguard-go, wg, iperf3.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { socketPath } from "../platform/socket-path.ts";
import { Lab, type Netns, type Proc, waitFor } from "./netns.ts";
import { BUN, ROOT, genkey, ifname as uniqueIfname, keyFile, startDaemon } from "./lib-wgpair.ts";

let lab: Lab;
let dir: string;
let netCounter = 0;

beforeAll(() => {
  lab = new Lab("dint");
  dir = mkdtempSync(join(tmpdir(), "wgt-dint-"));
});
afterAll(async () => {
  await lab.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

type Kind = "ours" | "go";

const ifname = () => uniqueIfname("i");

interface Side {
  ns: Netns;
  kind: Kind;
  iface: string;
  key: { priv: string; pub: string };
  port: number;
  outer4: string;
  outer6: string;
  inner4: string;
  inner6: string;
  /** The veth carrying the outer packets (same name in both namespaces). */
  outerDev: string;
  proc: Proc;
}

interface PairOpts {
  psk?: boolean;
  v6outer?: boolean;
  /** Which sides know the other's endpoint ("a" = only A can initiate). */
  endpoints?: "both" | "a" | "b";
}

async function pair(kindA: Kind, kindB: Kind, opts: PairOpts = {}): Promise<[Side, Side]> {
  const n = ++netCounter;
  const nsA = lab.ns(`a${n}`);
  const nsB = lab.ns(`b${n}`);
  const o4 = (h: number) => `10.${100 + n}.0.${h}`;
  const o6 = (h: number) => `fd00:${(0x100 + n).toString(16)}::${h}`;
  const [devA] = lab.veth(nsA, nsB, { a: [`${o4(1)}/24`, `${o6(1)}/64`], b: [`${o4(2)}/24`, `${o6(2)}/64`] });
  const mk = (ns: Netns, kind: Kind, h: number): Omit<Side, "proc"> => ({
    ns,
    kind,
    iface: ifname(),
    key: genkey(),
    port: 40000 + n * 10 + h,
    outer4: o4(h),
    outer6: o6(h),
    inner4: `10.${200 + n}.0.${h}`,
    inner6: `fd00:${(0x200 + n).toString(16)}::${h}`,
    outerDev: devA,
  });
  const sa = mk(nsA, kindA, 1);
  const sb = mk(nsB, kindB, 2);
  const A: Side = { ...sa, proc: await startDaemon(nsA, sa.iface, { kind: kindA }) };
  const B: Side = { ...sb, proc: await startDaemon(nsB, sb.iface, { kind: kindB }) };
  const psk = opts.psk ? keyFile(Bun.spawnSync(["wg", "genpsk"]).stdout.toString().trim()) : null;
  const ep = (s: Side) => (opts.v6outer ? `[${s.outer6}]:${s.port}` : `${s.outer4}:${s.port}`);
  const eps = opts.endpoints ?? "both";
  for (const [me, other, hasEp] of [
    [A, B, eps !== "b"],
    [B, A, eps !== "a"],
  ] as const) {
    const words = ["wg", "set", me.iface, "private-key", keyFile(me.key.priv), "listen-port", String(me.port), "peer", other.key.pub];
    if (psk) words.push("preshared-key", psk);
    if (hasEp) words.push("endpoint", ep(other));
    words.push("allowed-ips", `${other.inner4}/32,${other.inner6}/128`);
    me.ns.sh(words.join(" "));
    me.ns.sh(`ip addr add ${me.inner4}/24 dev ${me.iface} && ip addr add ${me.inner6}/64 dev ${me.iface} nodad && ip link set ${me.iface} up`);
  }
  return [A, B];
}

function ping(from: Side, to: string, count = 2): boolean {
  const r = from.ns.run(["ping", "-c", String(count), "-i", "0.2", "-W", "2", to]);
  return r.code === 0;
}

/** Pings until one succeeds (the first packet waits for the handshake). */
async function pingOk(from: Side, to: string): Promise<boolean> {
  for (let i = 0; i < 5; i++) if (ping(from, to, 1)) return ping(from, to, 2);
  return false;
}

/** One short iperf3 run from `client` to `server`'s inner address; returns received bits/s. */
async function iperf(client: Side, server: Side, extra: string[] = [], v6 = false): Promise<number> {
  const addr = v6 ? server.inner6 : server.inner4;
  const srv = server.ns.spawn(["iperf3", "-s", "-1", "--forceflush", "-B", addr]);
  try {
    await waitFor(() => srv.output().includes("listening"), 5000);
    const r = client.ns.run(["iperf3", "-c", addr, "-t", "1", "-J", ...extra]);
    if (r.code !== 0) throw new Error(`iperf3 ${extra.join(" ")}: ${r.stdout.slice(0, 500)} ${r.stderr}`);
    const end = JSON.parse(r.stdout).end;
    if (extra.includes("-u")) {
      const sum = end.sum;
      // Lost datagrams would show a broken checksum path (the kernel drops them silently).
      if (sum.lost_percent > 20) throw new Error(`iperf3 UDP lost ${sum.lost_percent}%`);
      return sum.bits_per_second;
    }
    return end.sum_received.bits_per_second;
  } finally {
    await srv.kill();
  }
}

function dumpPeers(s: Side): string[][] {
  return s.ns
    .sh(`wg show ${s.iface} dump`)
    .trim()
    .split("\n")
    .slice(1)
    .map((l) => l.split("\t"));
}

async function stop(...sides: Side[]): Promise<void> {
  for (const s of sides) await s.proc.kill();
}

describe("ours <-> ours", () => {
  test("ping v4 and v6 both ways, iperf3, wg show dump", async () => {
    const [A, B] = await pair("ours", "ours");
    try {
      expect(await pingOk(A, B.inner4)).toBe(true);
      expect(await pingOk(B, A.inner4)).toBe(true);
      expect(await pingOk(A, B.inner6)).toBe(true);
      expect(await pingOk(B, A.inner6)).toBe(true);

      const bps = await iperf(A, B);
      const bps6 = await iperf(B, A, [], true);
      console.log(`ours<->ours iperf3: tcp4 ${(bps / 1e6).toFixed(0)} Mbit/s, tcp6 ${(bps6 / 1e6).toFixed(0)} Mbit/s`);
      expect(bps).toBeGreaterThan(10e6);
      expect(bps6).toBeGreaterThan(10e6);

      const dev = A.ns.sh(`wg show ${A.iface} dump`).trim().split("\n")[0]!.split("\t");
      expect(dev).toEqual([A.key.priv, A.key.pub, String(A.port), "off"]);
      const [p] = dumpPeers(A);
      expect(p![0]).toBe(B.key.pub);
      expect(p![1]).toBe("(none)");
      expect(p![2]).toBe(`${B.outer4}:${B.port}`);
      expect(p![3]).toBe(`${B.inner4}/32,${B.inner6}/128`);
      expect(Number(p![4])).toBeGreaterThan(Date.now() / 1000 - 60);
      expect(Number(p![5])).toBeGreaterThan(100e3); // rx: iperf3 ACKs + pings
      expect(Number(p![6])).toBeGreaterThan(10e6); // tx
      expect(p![7]).toBe("off");
    } finally {
      await stop(A, B);
    }
  }, 60000);
});

describe("ours <-> wireguard-go", () => {
  for (const [initiator, psk, v6] of [
    ["ours", false, false],
    ["go", false, false],
    ["ours", true, true],
    ["go", true, true],
  ] as const) {
    test(`${initiator} initiates, psk=${psk}, outer IPv${v6 ? 6 : 4}`, async () => {
      const [A, B] = await pair(initiator, initiator === "ours" ? "go" : "ours", { psk, v6outer: v6, endpoints: "a" });
      try {
        expect(await pingOk(A, B.inner4)).toBe(true);
        expect(await pingOk(B, A.inner6)).toBe(true);
        if (!psk) {
          // TCP both ways over IPv4 and IPv6 and UDP: the other kernel verifies every checksum we
          // produced when cutting TSO super-packets, and accepts our merged (GRO) writes.
          const rate = (x: number) => `${(x / 1e6).toFixed(0)} Mbit/s`;
          const up = await iperf(A, B);
          const down = await iperf(A, B, ["-R"]);
          const up6 = await iperf(A, B, [], true);
          const udp = await iperf(A, B, ["-u", "-b", "20M"]);
          console.log(`${A.kind}->${B.kind} tcp4 ${rate(up)}, reverse ${rate(down)}, tcp6 ${rate(up6)}, udp ${rate(udp)}`);
          for (const x of [up, down, up6]) expect(x).toBeGreaterThan(5e6);
        }
        const [pa] = dumpPeers(A);
        const [pb] = dumpPeers(B);
        // The responder learned the initiator's endpoint from the authenticated handshake.
        expect(pb![2]).toBe(v6 ? `[${A.outer6}]:${A.port}` : `${A.outer4}:${A.port}`);
        expect(pa![1] === "(none)").toBe(!psk);
        expect(pb![1]).toBe(pa![1]!);
        for (const p of [pa!, pb!]) {
          expect(Number(p[4])).toBeGreaterThan(0);
          expect(Number(p[5])).toBeGreaterThan(0);
          expect(Number(p[6])).toBeGreaterThan(0);
        }
      } finally {
        await stop(A, B);
      }
    }, 60000);
  }

  test("mismatched preshared key: no tunnel", async () => {
    const [A, B] = await pair("ours", "go", { psk: true });
    try {
      B.ns.sh(`wg set ${B.iface} peer ${A.key.pub} preshared-key ${keyFile(Bun.spawnSync(["wg", "genpsk"]).stdout.toString().trim())}`);
      expect(ping(A, B.inner4, 2)).toBe(false);
      expect(dumpPeers(A)[0]![4]).toBe("0");
    } finally {
      await stop(A, B);
    }
  }, 60000);
});

describe("configured by the real wg", () => {
  test("setconf, syncconf, set errors, showconf", async () => {
    const n = ++netCounter;
    const ns = lab.ns(`c${n}`);
    const iface = ifname();
    const d = await startDaemon(ns, iface);
    try {
      const me = genkey();
      const p1 = genkey();
      const p2 = genkey();
      const psk = Bun.spawnSync(["wg", "genpsk"]).stdout.toString().trim();
      const conf = join(dir, `${iface}.conf`);
      writeFileSync(
        conf,
        `[Interface]\nPrivateKey = ${me.priv}\nListenPort = 45123\nFwMark = 0x42\n\n` +
          `[Peer]\nPublicKey = ${p1.pub}\nPresharedKey = ${psk}\nEndpoint = 192.0.2.1:51820\nAllowedIPs = 10.1.0.0/16, fd00::/64\nPersistentKeepalive = 25\n\n` +
          `[Peer]\nPublicKey = ${p2.pub}\nEndpoint = [2001:db8::1]:7\nAllowedIPs = 10.2.0.1/32\n`,
      );
      ns.sh(`wg setconf ${iface} ${conf}`);
      const lines = ns.sh(`wg show ${iface} dump`).trim().split("\n");
      expect(lines[0]).toBe(`${me.priv}\t${me.pub}\t45123\t0x42`);
      const rows = lines.slice(1).map((l) => l.split("\t"));
      const byKey = new Map(rows.map((r) => [r[0], r]));
      // The device is up from the start (like wireguard-go), so turning on the persistent
      // keepalive sent an initiation at once; this namespace has no route to 192.0.2.1, so the
      // send failed and, as in go, counts nothing.
      expect(byKey.get(p1.pub)!.slice(1, 8)).toEqual([psk, "192.0.2.1:51820", "10.1.0.0/16,fd00::/64", "0", "0", "0", "25"].slice(0, 7));
      expect(byKey.get(p2.pub)!.slice(1, 8)).toEqual(["(none)", "[2001:db8::1]:7", "10.2.0.1/32", "0", "0", "0", "off"]);
      // The UDP socket really is bound to the configured port once the link is up.
      ns.sh(`ip link set ${iface} up`);
      await waitFor(() => ns.run(["sh", "-c", "ss -lun | grep -q ':45123 '"]).code === 0, 3000);
      expect(ns.run(["sh", "-c", "ss -lun | grep -q ':45123 '"]).code).toBe(0);

      writeFileSync(conf, `[Interface]\nPrivateKey = ${me.priv}\nListenPort = 45124\n\n[Peer]\nPublicKey = ${p2.pub}\nAllowedIPs = 10.3.0.0/24\n`);
      ns.sh(`wg syncconf ${iface} ${conf}`);
      const after = ns.sh(`wg show ${iface} dump`).trim().split("\n");
      expect(after.length).toBe(2);
      expect(after[0]).toBe(`${me.priv}\t${me.pub}\t45124\toff`);
      expect(after[1]!.split("\t").slice(0, 4)).toEqual([p2.pub, "(none)", "[2001:db8::1]:7", "10.3.0.0/24"]);

      // Port already taken: wg prints the daemon's -EADDRINUSE.
      const blocker = ns.spawn([BUN, "-e", `require("node:dgram").createSocket("udp6").bind(45200); setInterval(()=>{}, 1e6)`]);
      await waitFor(() => ns.run(["sh", "-c", "ss -lun | grep -q ':45200 '"]).code === 0, 3000);
      const r = ns.run(["wg", "set", iface, "listen-port", "45200"]);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain("Address already in use");
      await blocker.kill();


      const showconf = ns.sh(`wg showconf ${iface}`);
      expect(showconf).toContain(`PublicKey = ${p2.pub}`);
      expect(showconf).toContain("AllowedIPs = 10.3.0.0/24");
    } finally {
      await d.kill();
    }
  }, 60000);

  test("background launch returns once link and socket exist; link deletion stops the daemon", async () => {
    const n = ++netCounter;
    const ns = lab.ns(`l${n}`);
    const iface = ifname();
    const r = ns.run([BUN, join(ROOT, "cmd/main.ts"), "daemon", iface]);
    expect(r.code).toBe(0);
    expect(existsSync(socketPath(iface))).toBe(true);
    expect(ns.run(["ip", "link", "show", iface]).code).toBe(0);
    expect(ns.sh(`wg show ${iface} dump`).split("\t").length).toBe(4);
    // A second daemon for the same interface fails (TUN busy), in the background or not.
    const again = ns.run([BUN, join(ROOT, "cmd/main.ts"), "daemon", iface]);
    expect(again.code).toBe(1);
    const againFg = ns.run([BUN, join(ROOT, "cmd/main.ts"), "daemon", "-f", iface]);
    expect(againFg.code).toBe(1);
    expect(againFg.stdout + againFg.stderr).toContain("Device or resource busy");
    expect(existsSync(socketPath(iface))).toBe(true);
    ns.sh(`ip link del ${iface}`);
    expect(await waitFor(() => !existsSync(socketPath(iface)), 5000)).toBe(true);
    // (`ip netns pids` runs on the host: inside the namespace it would list itself.)
    const gone = await waitFor(() => Bun.spawnSync(["ip", "netns", "pids", ns.name]).stdout.toString().trim() === "", 5000);
    expect(gone).toBe(true);
    // SIGTERM removes the socket and the link; deleting the socket stops the daemon.
    const fg = await startDaemon(ns, iface);
    fg.proc.kill("SIGTERM");
    expect(await fg.exited).toBe(0);
    expect(existsSync(socketPath(iface))).toBe(false);
    expect(ns.run(["ip", "link", "show", iface]).code).not.toBe(0);
    const fg2 = await startDaemon(ns, iface);
    rmSync(socketPath(iface));
    expect(await Promise.race([fg2.exited, Bun.sleep(5000).then(() => -1)])).toBe(0);
    expect(ns.run(["ip", "link", "show", iface]).code).not.toBe(0);
    // Usage errors.
    const u = ns.run([BUN, join(ROOT, "cmd/main.ts"), "daemon"]);
    expect(u.code).toBe(1);
    expect(u.stderr).toContain("[-f/--foreground] INTERFACE-NAME");
  }, 30000);
});

describe("security and roaming", () => {
  test("roaming: the peer moves to a new outer address, traffic continues, endpoint updates", async () => {
    const [A, B] = await pair("ours", "ours", { endpoints: "a" });
    try {
      expect(await pingOk(A, B.inner4)).toBe(true);
      expect(dumpPeers(B)[0]![2]).toBe(`${A.outer4}:${A.port}`);
      const newAddr = A.outer4.replace(/\.1$/, ".77");
      A.ns.sh(`ip addr del ${A.outer4}/24 dev ${A.outerDev} && ip addr add ${newAddr}/24 dev ${A.outerDev}`);
      expect(await pingOk(A, B.inner4)).toBe(true);
      expect(dumpPeers(B)[0]![2]).toBe(`${newAddr}:${A.port}`);
      expect(await pingOk(B, A.inner4)).toBe(true);
    } finally {
      await stop(A, B);
    }
  }, 60000);

  test("stealth: unauthenticated UDP gets no answer; spoofed inner source is dropped", async () => {
    const [A, B] = await pair("ours", "ours");
    try {
      expect(await pingOk(A, B.inner4)).toBe(true);
      const probe = join(dir, "probe.ts");
      writeFileSync(
        probe,
        `
import dgram from "node:dgram";
const [host, port] = [process.argv[2]!, Number(process.argv[3])];
const s = dgram.createSocket("udp4");
let replies = 0;
s.on("message", () => replies++);
const msgs: Uint8Array[] = [];
const rnd = (n: number) => crypto.getRandomValues(new Uint8Array(n));
for (const [type, len] of [[1, 148], [2, 92], [3, 64], [4, 32], [4, 100], [1, 147], [5, 148], [0, 10]]) {
  const m = rnd(len); m[0] = type; m[1] = m[2] = m[3] = 0; msgs.push(m);
}
msgs.push(rnd(1), rnd(1400), new Uint8Array(148).fill(0, 0).map((_, i) => (i === 0 ? 1 : 0)));
s.bind(0, () => {
  for (const m of msgs) s.send(m, port, host);
  setTimeout(() => { console.log(JSON.stringify({ replies, sent: msgs.length })); process.exit(0); }, 1500);
});
`,
      );
      const r = B.ns.run([BUN, probe, A.outer4, String(A.port)]);
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout.trim())).toEqual({ replies: 0, sent: 11 });
      // Still healthy after the garbage.
      expect(ping(A, B.inner4, 1)).toBe(true);

      // B sends from an inner address A does not allow for B: A must not deliver it.
      const rx = () => Number(A.ns.sh(`cat /sys/class/net/${A.iface}/statistics/rx_packets`).trim());
      B.ns.sh(`ip addr add 10.250.0.9/32 dev ${B.iface} && ip route add ${A.inner4}/32 dev ${B.iface} src 10.250.0.9 || true`);
      B.ns.sh(`wg set ${B.iface} peer ${A.key.pub} allowed-ips ${A.inner4}/32,${A.inner6}/128`);
      const before = rx();
      const peerRxBefore = Number(dumpPeers(A)[0]![5]);
      B.ns.run(["ping", "-c", "3", "-i", "0.2", "-W", "1", "-I", "10.250.0.9", A.inner4]);
      const peerRxAfter = Number(dumpPeers(A)[0]![5]);
      expect(peerRxAfter).toBeGreaterThan(peerRxBefore); // the packets did arrive and decrypt...
      expect(rx()).toBe(before); // ...but none reached A's interface
    } finally {
      await stop(A, B);
    }
  }, 60000);
});
