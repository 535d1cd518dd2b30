// Daemon behaviour beyond the wire protocol, in private namespaces (test/netns.ts): port bound at
// start like wireguard-go, the events stream, the UDP/TUN namespace split, endpoint re-resolution.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { socketPath } from "../platform/socket-path.ts";
import { Lab, type Netns, waitFor } from "./netns.ts";
import { BUN, ROOT, genkey, ifname as uniqueIfname, keyFile, startDaemon } from "./lib-wgpair.ts";

let lab: Lab;
let dir: string;
/** Numbers ports and addresses apart per use. */
let counter = 0;

beforeAll(() => {
  lab = new Lab("dfeat");
  dir = mkdtempSync(join(tmpdir(), "wgt-dfeat-"));
});
afterAll(async () => {
  await lab.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

const ifname = () => uniqueIfname("f");

const udpPorts = (ns: Netns) => ns.sh("ss -Huan").trim();

describe("startup and link state (wireguard-go parity)", () => {
  test("the UDP port is bound right after start with the link down, and link down/up keeps it", async () => {
    const ns = lab.ns("s1");
    for (const kind of ["go", "ours"] as const) {
      const iface = ifname();
      const k = ++counter;
      const p = await startDaemon(ns, iface, { kind });
      try {
        expect(ns.sh(`ip -o link show ${iface}`)).not.toContain(",UP");
        const port = ns.sh(`wg show ${iface} listen-port`).trim();
        expect(Number(port)).toBeGreaterThan(0);
        expect(udpPorts(ns)).toContain(`:${port} `);
        ns.sh(`ip link set ${iface} up`);
        await Bun.sleep(300);
        expect(ns.sh(`wg show ${iface} listen-port`).trim()).toBe(port);
        ns.sh(`ip link set ${iface} down`);
        await Bun.sleep(300);
        expect(ns.sh(`wg show ${iface} listen-port`).trim()).toBe(port);
        expect(udpPorts(ns)).toContain(`:${port} `);
        // a new port while the link is down is bound at once, as go does
        ns.sh(`wg set ${iface} listen-port 4${k}77`);
        expect(udpPorts(ns)).toContain(`:4${k}77 `);
      } finally {
        ns.run(["ip", "link", "del", iface]);
        await p.kill();
      }
    }
  }, 30_000);
});

describe("handshake load (cookies only when a backlog builds, like go)", () => {
  test("paced initiations well above 128/s get no cookie replies; a burst of thousands does", async () => {
    const nsA = lab.ns("la");
    const nsB = lab.ns("lb");
    lab.veth(nsA, nsB, { a: ["10.83.0.1/24"], b: ["10.83.0.2/24"] });
    const ia = ifname();
    const ka = genkey();
    const pa = await startDaemon(nsA, ia);
    try {
      // the link up: like the kernel, a device that is down answers nothing
      nsA.sh(`wg set ${ia} private-key ${keyFile(ka.priv)} listen-port 47501 && ip link set ${ia} up`);
      // Junk initiations with a valid mac1 (they cost the responder a DH each) from one socket;
      // prints how many cookie replies came back.
      const sender = join(dir, "hs-sender.ts");
      writeFileSync(
        sender,
        `import { hash, mac } from "${ROOT}/core/crypto.ts";
import { createSocket } from "node:dgram";
const [pub, count, gapMs] = [Buffer.from(process.argv[2], "base64"), Number(process.argv[3]), Number(process.argv[4])];
const key = hash(new TextEncoder().encode("mac1----"), pub);
const sock = createSocket("udp4");
let cookies = 0;
sock.on("message", (m) => { if (m[0] === 3) cookies++; });
await new Promise((r) => sock.bind(0, r));
const msg = new Uint8Array(148);
for (let i = 0; i < count; i++) {
  crypto.getRandomValues(msg);
  msg[0] = 1; msg[1] = msg[2] = msg[3] = 0;
  msg.set(mac(key, msg.subarray(0, 116)), 116);
  msg.fill(0, 132);
  sock.send(msg, 47501, "10.83.0.1");
  if (gapMs > 0) await Bun.sleep(gapMs);
  else if (i % 64 === 63) await Bun.sleep(0);
}
await Bun.sleep(1500);
console.log(JSON.stringify({ cookies }));
process.exit(0);
`,
      );
      const run = (count: number, gapMs: number) => {
        const r = nsB.run([BUN, sender, ka.pub, String(count), String(gapMs)]);
        if (r.code !== 0) throw new Error(r.stderr);
        return JSON.parse(r.stdout.trim().split("\n").pop()!).cookies as number;
      };
      // ~250/s for 1.2 s: the old ">= 128 per second" rule answered the tail with cookies
      expect(run(300, 4)).toBe(0);
      await Bun.sleep(1200);
      // thousands at once: the queue fills, the daemon is under load and demands cookies
      expect(run(4000, 0)).toBeGreaterThan(0);
    } finally {
      nsA.run(["ip", "link", "del", ia]);
      await pa.kill();
    }
  }, 40_000);
});

describe("large configurations", () => {
  test("wg setconf with 10,000 peers (a ~2 MB UAPI request) and wg show read back", async () => {
    const ns = lab.ns("big");
    const iface = ifname();
    const p = await startDaemon(ns, iface);
    try {
      const rnd = () => Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64");
      let conf = `[Interface]\nPrivateKey = ${genkey().priv}\nListenPort = 47401\n`;
      for (let i = 0; i < 10_000; i++) {
        conf += `\n[Peer]\nPublicKey = ${rnd()}\nPresharedKey = ${rnd()}\nEndpoint = 192.0.2.${i & 255}:${1024 + i}\nAllowedIPs = 10.${i >> 8}.${i & 255}.0/24, fd00:${i.toString(16)}::/64\n`;
      }
      const file = join(dir, "big.conf");
      writeFileSync(file, conf);
      const set = ns.run(["wg", "setconf", iface, file]);
      expect(set.stderr).toBe("");
      expect(set.code).toBe(0);
      const peers = ns.sh(`wg show ${iface} peers`).trim().split("\n");
      expect(peers.length).toBe(10_000);
      expect(ns.sh(`wg show ${iface} allowed-ips`).split("\n").filter((l) => l.includes("fd00:")).length).toBe(10_000);
    } finally {
      ns.run(["ip", "link", "del", iface]);
      await p.kill();
    }
  }, 60_000);
});

describe("events (UAPI extension events=1)", () => {
  test("handshake (online), endpoint change, peer removal arrive as JSON lines; wg events prints them", async () => {
    const { subscribeEvents } = await import("../platform/events-client.ts");
    const nsA = lab.ns("ea");
    const nsB = lab.ns("eb");
    const [dev] = lab.veth(nsA, nsB, { a: ["10.77.0.1/24"], b: ["10.77.0.2/24", "10.77.0.3/24"] });
    void dev;
    const ia = ifname();
    const ib = ifname();
    const ka = genkey();
    const kb = genkey();
    const pa = await startDaemon(nsA, ia);
    const pb = await startDaemon(nsB, ib, { kind: "go" });
    const lines: any[] = [];
    const r = await subscribeEvents(socketPath(ia), (l) => lines.push(JSON.parse(l)));
    expect(r.ok).toBe(true);
    // the CLI, followed until it has printed something
    const cli = nsA.spawn([BUN, join(ROOT, "cmd/wg-events.ts"), ia]);
    try {
      nsB.sh(`wg set ${ib} private-key ${keyFile(kb.priv)} listen-port 47002 peer ${ka.pub} allowed-ips 10.78.0.1/32 && ip addr add 10.78.0.2/24 dev ${ib} && ip link set ${ib} up`);
      nsA.sh(`wg set ${ia} private-key ${keyFile(ka.priv)} listen-port 47001 && ip addr add 10.78.0.1/24 dev ${ia} && ip link set ${ia} up`);
      // The CLI has subscribed once its connection shows in A (an accepted unix socket belongs to
      // the client's namespace: ours, from the test's, does not); it sent events=1 on connecting.
      const cliConnected = () => nsA.sh("ss -xH").split("\n").some((l) => l.includes("ESTAB") && l.includes(socketPath(ia)));
      expect(await waitFor(cliConnected, 10000)).toBe(true);
      nsA.sh(`wg set ${ia} peer ${kb.pub} endpoint 10.77.0.2:47002 allowed-ips 10.78.0.2/32`);
      const ping = nsA.run(["ping", "-c", "1", "-W", "3", "10.78.0.2"]);
      expect(ping.code).toBe(0);
      expect(await waitFor(() => lines.some((e) => e.type === "handshake"), 5000)).toBe(true);
      nsA.sh(`wg set ${ia} peer ${kb.pub} endpoint 10.77.0.3:47002`);
      nsA.sh(`wg set ${ia} peer ${kb.pub} remove`);
      expect(await waitFor(() => lines.some((e) => e.type === "peer-removed"), 5000)).toBe(true);
      const b64 = kb.pub;
      const types = lines.map((e) => e.type);
      expect(types[0]).toBe("peer-added");
      expect(types).toContain("keys-rotated");
      const hs = lines.find((e) => e.type === "handshake")!;
      expect(hs).toMatchObject({ interface: ia, public_key: b64, endpoint: "10.77.0.2:47002", online: true });
      expect(Date.parse(hs.time)).toBeGreaterThan(Date.now() - 60_000);
      expect(Date.parse(hs.last_handshake)).toBeGreaterThan(Date.now() - 60_000);
      const ep = lines.filter((e) => e.type === "endpoint").at(-1)!;
      expect(ep).toMatchObject({ public_key: b64, endpoint: "10.77.0.3:47002", online: true });
      expect(lines.at(-1)).toMatchObject({ type: "peer-removed", public_key: b64, online: false });
      for (const e of lines) expect(e.public_key).toBe(b64);
      // the CLI printed the same stream
      expect(await waitFor(() => cli.output().includes('"peer-removed"'), 5000)).toBe(true);
      const cliTypes = cli
        .output()
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l).type);
      expect(cliTypes).toEqual(types);
      // the stream ends (and the CLI exits 0) when the daemon goes away
      r.ok && (await Promise.race([r.sub.ended, Bun.sleep(10)]));
      nsA.run(["ip", "link", "del", ia]);
      expect(await Promise.race([cli.exited, Bun.sleep(5000).then(() => -1)])).toBe(0);
    } finally {
      if (r.ok) r.sub.close();
      await cli.kill();
      nsA.run(["ip", "link", "del", ia]);
      nsB.run(["ip", "link", "del", ib]);
      await pa.kill();
      await pb.kill();
    }
  }, 40_000);

  test("wireguard-go closes the connection: the client reports no event support", async () => {
    const { subscribeEvents } = await import("../platform/events-client.ts");
    const ns = lab.ns("eg");
    const iface = ifname();
    const p = await startDaemon(ns, iface, { kind: "go" });
    try {
      const r = await subscribeEvents(socketPath(iface), () => {});
      expect(r).toEqual({ ok: false, error: "the daemon does not support event streams", errno: 95 });
      const cli = ns.run([BUN, join(ROOT, "cmd/wg-events.ts"), iface]);
      expect(cli.code).toBe(1);
      expect(cli.stderr).toBe(`Unable to follow interface ${iface}: the daemon does not support event streams\n`);
    } finally {
      ns.run(["ip", "link", "del", iface]);
      await p.kill();
    }
  }, 20_000);
});

describe("--udp-netns: UDP in one namespace, the tunnel in another", () => {
  test("TUN in B (no outside link), UDP in A: traffic reaches a peer only A can reach", async () => {
    const nsA = lab.ns("na"); // outer: has the link to the peer
    const nsB = lab.ns("nb"); // container: only lo and the tunnel
    const nsC = lab.ns("nc"); // the peer (wireguard-go)
    lab.veth(nsA, nsC, { a: ["10.79.0.1/24"], b: ["10.79.0.2/24"] });
    nsB.sh("ip link set lo up");
    const ib = ifname();
    const ic = ifname();
    const kb = genkey();
    const kc = genkey();
    const pb = await startDaemon(nsB, ib, { args: ["--udp-netns", nsA.name] });
    const pc = await startDaemon(nsC, ic, { kind: "go" });
    try {
      nsC.sh(`wg set ${ic} private-key ${keyFile(kc.priv)} listen-port 47102 peer ${kb.pub} allowed-ips 10.80.0.1/32 && ip addr add 10.80.0.2/24 dev ${ic} && ip link set ${ic} up`);
      nsB.sh(
        `wg set ${ib} private-key ${keyFile(kb.priv)} listen-port 47101 peer ${kc.pub} endpoint 10.79.0.2:47102 allowed-ips 10.80.0.2/32 && ip addr add 10.80.0.1/24 dev ${ib} && ip link set ${ib} up`,
      );
      // the socket is in A, the interface in B
      expect(nsA.sh("ss -Huan")).toContain(":47101 ");
      expect(nsB.sh("ss -Huan")).not.toContain(":47101 ");
      expect(nsA.run(["ip", "link", "show", ib]).code).not.toBe(0);
      expect(nsB.run(["ping", "-c", "1", "-W", "1", "10.79.0.2"]).code).not.toBe(0); // B alone cannot reach C
      const ok = await waitFor(() => nsB.run(["ping", "-c", "1", "-W", "1", "10.80.0.2"]).code === 0, 8000, 100);
      expect(ok).toBe(true);
      expect(nsC.run(["ping", "-c", "1", "-W", "2", "10.80.0.1"]).code).toBe(0);
      // C saw us at A's address
      expect(nsC.sh(`wg show ${ic} endpoints`)).toContain("10.79.0.1:47101");
      // a new listen port is also created in A
      nsB.sh(`wg set ${ib} listen-port 47111`);
      expect(nsA.sh("ss -Huan")).toContain(":47111 ");
    } finally {
      nsB.run(["ip", "link", "del", ib]);
      nsC.run(["ip", "link", "del", ic]);
      await pb.kill();
      await pc.kill();
    }
  }, 40_000);

  test("a missing namespace fails the start", async () => {
    const ns = lab.ns("nx");
    const r = ns.run([BUN, join(ROOT, "cmd/main.ts"), "daemon", "-f", "--udp-netns", "wgt-no-such-ns-xyz", ifname()], { LOG_LEVEL: "error" });
    expect(r.code).toBe(1);
    expect(r.stdout + r.stderr).toContain("Failed to open UDP network namespace wgt-no-such-ns-xyz");
  });
});

describe("command line (citty, wireguard-go's usage line)", () => {
  test("options, repeats and optional values parse as before; words outside the grammar are usage errors", async () => {
    const { parseDaemonArgs } = await import("../cmd/daemon-args.ts");
    const k = genkey();
    const hex = Buffer.from(k.pub, "base64").toString("hex");
    const run = (iface: string, foreground: boolean, opts: object) => ({ iface, foreground, opts });
    expect(parseDaemonArgs(["wg0"], {})).toEqual(run("wg0", false, {}));
    expect(parseDaemonArgs(["wg0", "-f"], {})).toEqual(run("wg0", true, {}));
    expect(parseDaemonArgs(["--foreground", "--udp-netns", "-f", "wg0"], {})).toEqual(run("wg0", true, { udpNetns: "-f" }));
    expect(parseDaemonArgs(["--udp-netns=/proc/1/ns/net", "wg0"], { WG_PROCESS_FOREGROUND: "1" })).toEqual(run("wg0", true, { udpNetns: "/proc/1/ns/net" }));
    expect(parseDaemonArgs(["--endpoint-hostname", `${k.pub}=a.test:1`, `--endpoint-hostname=${k.pub}=[fd00::1]:2`, "--reresolve-dns", "wg0"], {})).toEqual(
      run("wg0", false, {
        hostnames: [
          { publicKeyHex: hex, host: "a.test", port: 1 },
          { publicKeyHex: hex, host: "fd00::1", port: 2 },
        ],
        reresolveIntervalMs: 30_000,
      }),
    );
    expect(parseDaemonArgs(["--reresolve-dns=0.5", "wg0"], { WG_RERESOLVE_DNS: "9" })).toEqual(run("wg0", false, { reresolveIntervalMs: 500 }));
    expect(parseDaemonArgs(["wg0"], { WG_RERESOLVE_DNS: "9" })).toEqual(run("wg0", false, { reresolveIntervalMs: 9000 }));
    // =SECONDS as the help says: 1 is one second, not "on".
    expect(parseDaemonArgs(["--reresolve-dns=1", "wg0"], {})).toEqual(run("wg0", false, { reresolveIntervalMs: 1000 }));
    expect(parseDaemonArgs(["wg0"], { WG_RERESOLVE_DNS: "0" })).toEqual(run("wg0", false, {}));
    expect(parseDaemonArgs(["--endpoint-hostname", "nokey", "wg0"], {})).toEqual({ error: "wg daemon: --endpoint-hostname wants PUBKEY=HOST:PORT (base64 key), got: nokey\n" });
    for (const bad of [[], ["-f"], ["-x", "wg0"], ["--bogus", "wg0"], ["-fv", "wg0"], ["wg0", "wg1"], ["--", "wg0"], ["-"], [""], ["a/b"], ["0123456789abcdef"], ["--udp-netns=", "wg0"], ["wg0", "--udp-netns"], ["--reresolve-dns=soon", "wg0"], ["--reresolve-dns=0", "wg0"]]) {
      expect(parseDaemonArgs(bad, {})).toEqual({ usage: true });
    }
  });

  test("usage errors print wireguard-go's usage line and exit 1; --help prints the generated help", () => {
    // Only command lines that fail before anything is created run here, outside a namespace.
    const daemon = (...args: string[]) => {
      const r = Bun.spawnSync([BUN, join(ROOT, "cmd/main.ts"), "daemon", ...args], { stdout: "pipe", stderr: "pipe" });
      return { code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() };
    };
    for (const bad of [[], ["--bogus", "wgx0"], ["wgx0", "wgx1"]]) {
      const r = daemon(...bad);
      expect(r.code).toBe(1);
      expect(r.out).toBe("");
      expect(r.err.split("\n")[0]).toBe("Usage: wg daemon [-f/--foreground] INTERFACE-NAME");
    }
    const help = daemon("--help");
    expect(help.code).toBe(0);
    for (const opt of ["-f, --foreground", "--udp-netns=<NAME|PATH>", "--endpoint-hostname=<PUBKEY=HOST:PORT>", "--reresolve-dns=<SECONDS>", "(default 30;", "<INTERFACE-NAME>"]) {
      expect(help.out).toContain(opt);
    }
  });
});

describe("--endpoint-hostname: re-resolution of stale hostname endpoints", () => {
  test("option parsing", async () => {
    const { parseHostnameEndpoint } = await import("../platform/reresolve.ts");
    const k = genkey();
    const hex = Buffer.from(k.pub, "base64").toString("hex");
    expect(parseHostnameEndpoint(`${k.pub}=peer.example:51820`)).toEqual({ publicKeyHex: hex, host: "peer.example", port: 51820 });
    expect(parseHostnameEndpoint(`${k.pub}=[fd00::1]:7`)).toEqual({ publicKeyHex: hex, host: "fd00::1", port: 7 });
    for (const bad of [`${k.pub}=peer.example`, `${k.pub}=:5`, `${k.pub}=h:70000`, `x=h:1`, `${k.pub}h:1`]) expect(parseHostnameEndpoint(bad)).toBeNull();
  });

  test("a peer that never completes a handshake is re-pointed when its name changes; a live session is left alone", async () => {
    const nsA = lab.ns("ra");
    const nsC = lab.ns("rc");
    lab.veth(nsA, nsC, { a: ["10.81.0.1/24"], b: ["10.81.0.2/24"] });
    const hosts = join(dir, "hosts");
    writeFileSync(hosts, "127.0.0.1 localhost\n10.81.0.9 peer.test\n");
    const ia = ifname();
    const ic = ifname();
    const ka = genkey();
    const kc = genkey();
    // The daemon sees `hosts` as /etc/hosts through a private mount namespace.
    const daemon = [BUN, join(ROOT, "cmd/main.ts"), "daemon", "-f", "--endpoint-hostname", `${kc.pub}=peer.test:47302`, "--reresolve-dns=0.5", ia];
    const pa = nsA.spawn(["unshare", "-m", "sh", "-c", `mount --bind ${hosts} /etc/hosts && exec "$@"`, "sh", ...daemon], { LOG_LEVEL: "debug" });
    expect(await waitFor(() => existsSync(socketPath(ia)) && nsA.run(["ip", "link", "show", ia]).code === 0, 10000)).toBe(true);
    const pc = await startDaemon(nsC, ic, { kind: "go" });
    try {
      nsC.sh(`wg set ${ic} private-key ${keyFile(kc.priv)} listen-port 47302 peer ${ka.pub} allowed-ips 10.82.0.1/32 && ip addr add 10.82.0.2/24 dev ${ic} && ip link set ${ic} up`);
      // what wg-quick would have sent after resolving peer.test
      nsA.sh(`wg set ${ia} private-key ${keyFile(ka.priv)} peer ${kc.pub} endpoint 10.81.0.9:47302 allowed-ips 10.82.0.2/32 persistent-keepalive 1 && ip addr add 10.82.0.1/24 dev ${ia} && ip link set ${ia} up`);
      await Bun.sleep(1500);
      expect(nsA.sh(`wg show ${ia} endpoints`)).toContain("10.81.0.9:47302"); // same name, same address
      expect(nsA.run(["ping", "-c", "1", "-W", "1", "10.82.0.2"]).code).not.toBe(0);
      writeFileSync(hosts, "127.0.0.1 localhost\n10.81.0.2 peer.test\n");
      expect(await waitFor(() => nsA.sh(`wg show ${ia} endpoints`).includes("10.81.0.2:47302"), 5000)).toBe(true);
      expect(await waitFor(() => nsA.run(["ping", "-c", "1", "-W", "1", "10.82.0.2"]).code === 0, 10000, 200)).toBe(true);
      // with a fresh handshake a changed name is not followed
      writeFileSync(hosts, "127.0.0.1 localhost\n10.81.0.77 peer.test\n");
      await Bun.sleep(1500);
      expect(nsA.sh(`wg show ${ia} endpoints`)).toContain("10.81.0.2:47302");
      expect(pa.output()).toContain("Endpoint of peer.test re-resolved: 10.81.0.9:47302 -> 10.81.0.2:47302");
    } finally {
      nsA.run(["ip", "link", "del", ia]);
      nsC.run(["ip", "link", "del", ic]);
      await pa.kill();
      await pc.kill();
    }
  }, 40_000);
});

describe("transfer counters (wireguard-go parity)", () => {
  test("a datagram the socket refuses is not counted as sent; once routable it is", async () => {
    const ns = lab.ns("tx");
    const peer = genkey();
    const counts: Record<string, [number, number]> = {};
    for (const kind of ["go", "ours"] as const) {
      const iface = ifname();
      const k = ++counter;
      const p = await startDaemon(ns, iface, { kind });
      try {
        const me = genkey();
        ns.sh(`wg set ${iface} private-key ${keyFile(me.priv)} peer ${peer.pub} endpoint 10.99.${k}.9:51820 allowed-ips 10.98.${k}.2/32`);
        ns.sh(`ip addr add 10.98.${k}.1/24 dev ${iface} && ip link set ${iface} up`);
        const tx = () => Number(ns.sh(`wg show ${iface} transfer`).trim().split("\t")[2]);
        // No route to the endpoint: sendmmsg/sendmsg says ENETUNREACH for the handshake initiation.
        ns.run(["ping", "-c", "1", "-W", "1", `10.98.${k}.2`]);
        await Bun.sleep(500);
        const unroutable = tx();
        // Routable (into lo, where nobody answers): the initiation leaves, 148 bytes.
        ns.sh(`ip route add 10.99.${k}.0/24 dev lo`);
        ns.run(["ping", "-c", "1", "-W", "1", `10.98.${k}.2`]);
        const sent = await waitFor(() => tx() > 0, 4000);
        counts[kind] = [unroutable, sent ? tx() : 0];
        ns.sh(`ip route del 10.99.${k}.0/24 dev lo`);
      } finally {
        ns.run(["ip", "link", "del", iface]);
        await p.kill();
      }
    }
    expect(counts.go![0]).toBe(0);
    expect(counts.go![1] % 148).toBe(0);
    expect(counts.ours![0]).toBe(0);
    expect(counts.ours![1]).toBeGreaterThan(0);
    expect(counts.ours![1] % 148).toBe(0);
  }, 40_000);
});
