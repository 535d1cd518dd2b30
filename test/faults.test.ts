// Faults around two of our daemons in namespaces (test/lib-wgpair.ts):
// * peer daemon SIGKILLed and restarted with the same config: stale socket handled, traffic
//   recovers by itself (the surviving side re-handshakes after its timers, as WireGuard does);
// * endpoint address change (roaming): the other side follows the new source address;
// * interface deleted under the daemon: it exits and removes its UAPI socket;
// * UAPI clients that disconnect mid-request: the daemon keeps serving and leaks no fds;
// * packet loss, delay and reordering (tc netem): handshakes complete and traffic flows;
// * nothing leaks: every daemon we stop leaves no process and no socket file behind.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import { connect } from "node:net";
import { socketPath } from "../platform/socket-path.ts";
import { Lab, waitFor } from "./netns.ts";
import { ROOT, configure, peerDump, ping, pingUntil, startDaemon, wgPair } from "./lib-wgpair.ts";

let lab: Lab;
beforeAll(() => {
  lab = new Lab("faults");
});
afterAll(async () => {
  await lab.cleanup();
});

/** Open sockets of a process (each has its own inode: a leaked connection shows up here). */
const fdCount = (pid: number) =>
  readdirSync(`/proc/${pid}/fd`).filter((f) => {
    try {
      return readlinkSync(`/proc/${pid}/fd/${f}`).startsWith("socket:");
    } catch {
      return false;
    }
  }).length;

describe("faults", () => {
  test("peer daemon killed and restarted: a new session forms without intervention", async () => {
    const { a, b } = await wgPair(lab, { tag: "k", env: { LOG_LEVEL: "error" } });
    expect(await pingUntil(a, b.inner4, 15000)).toBe(true);
    b.proc.proc.kill("SIGKILL");
    await b.proc.exited;
    // SIGKILL leaves the socket file behind; the new daemon must cope with it.
    b.proc = await startDaemon(b.ns, b.iface, { env: b.env });
    configure(b, a);
    // Only the survivor sends: its old session is dead at the peer, so it must notice by its
    // own timers (keepalive 10 s + rekey timeout 5 s) and handshake again.
    const t0 = Date.now();
    expect(await pingUntil(a, b.inner4, 30000)).toBe(true);
    const recoveryMs = Date.now() - t0;
    console.log(`survivor-initiated recovery after restart: ${recoveryMs} ms`);
    // The restarted side gets through at once in the other direction too.
    expect(ping(b, a.inner4, 2)).toBe(true);
  }, 60_000);

  test("restarted side sends first: new session within seconds", async () => {
    const { a, b } = await wgPair(lab, { tag: "l", env: { LOG_LEVEL: "error" } });
    expect(await pingUntil(a, b.inner4, 15000)).toBe(true);
    await b.proc.kill();
    b.proc = await startDaemon(b.ns, b.iface, { env: b.env });
    configure(b, a);
    const t0 = Date.now();
    expect(await pingUntil(b, a.inner4, 10000)).toBe(true);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(ping(a, b.inner4, 2)).toBe(true);
  }, 60_000);

  test("endpoint address change: the peer follows the new source address", async () => {
    const { a, b } = await wgPair(lab, { tag: "e", env: { LOG_LEVEL: "error" } });
    expect(await pingUntil(a, b.inner4, 15000)).toBe(true);
    expect(peerDump(b).endpoint).toBe(`${a.outer4}:${a.port}`);
    const moved = a.outer4.replace(/\.1$/, ".77");
    // Delete first: deleting a primary address also deletes its secondaries.
    a.ns.sh(`ip addr del ${a.outer4}/24 dev ${a.dev} && ip addr add ${moved}/24 dev ${a.dev}`);
    expect(await pingUntil(a, b.inner4, 15000)).toBe(true);
    expect(peerDump(b).endpoint).toBe(`${moved}:${a.port}`);
    expect(ping(b, a.inner4, 2)).toBe(true);
  }, 60_000);

  test("interface deleted under the daemon: it exits and removes its socket", async () => {
    const { a, b } = await wgPair(lab, { tag: "d", env: { LOG_LEVEL: "error" } });
    expect(await pingUntil(a, b.inner4, 15000)).toBe(true);
    b.ns.sh(`ip link del ${b.iface}`);
    const code = await Promise.race([b.proc.exited, Bun.sleep(10000).then(() => "timeout")]);
    expect(code).not.toBe("timeout");
    console.log(`daemon exit status after link deletion: ${code}; output: ${b.proc.output().trim().split("\n").slice(-2).join(" | ")}`);
    expect(existsSync(socketPath(b.iface))).toBe(false);
    // The other daemon does not care.
    expect(a.proc.proc.exitCode).toBeNull();
  }, 60_000);

  test("UAPI clients vanishing mid-request: daemon keeps serving, no fd leak", async () => {
    const { a, b } = await wgPair(lab, { tag: "u", env: { LOG_LEVEL: "error" } });
    expect(await pingUntil(a, b.inner4, 15000)).toBe(true);
    const path = socketPath(a.iface);
    const pid = a.proc.pid;
    a.ns.sh(`wg show ${a.iface} >/dev/null`);
    await Bun.sleep(200);
    const fds0 = fdCount(pid);
    const partials = [
      "",
      "get=1\n",
      "get=",
      "set=1\n",
      "set=1\nprivate_key=",
      `set=1\nlisten_port=${a.port}\npublic_key=${"ab".repeat(32)}\nallowed_ip=10.99.`,
      "set=1\n" + "x".repeat(1000),
    ];
    for (let round = 0; round < 10; round++) {
      await Promise.all(
        partials.map(
          (req) =>
            new Promise<void>((resolve) => {
              const s = connect(path);
              s.on("error", () => resolve());
              s.on("connect", () => {
                if (req) s.write(req);
                // Half the time close at once, else after the daemon had a moment to start reading.
                setTimeout(() => {
                  s.destroy();
                  resolve();
                }, round % 2 ? 0 : 20);
              });
            }),
        ),
      );
    }
    await Bun.sleep(500);
    // Still serving, same configuration (the partial sets were never applied), tunnel fine.
    const show = a.ns.sh(`wg show ${a.iface} dump`);
    expect(show).toContain(b.key.pub);
    expect(show).not.toContain(Buffer.from("ab".repeat(32), "hex").toString("base64"));
    expect(ping(a, b.inner4, 2)).toBe(true);
    expect(await waitFor(() => fdCount(pid) <= fds0, 5000)).toBe(true);
  }, 60_000);

  // The first over-long request costs the daemon one socket for good (a lazily created one, it
  // seems: more such requests do not add any); what must not happen is one per connection.
  test("UAPI clients sending over-long lines and vanishing: no socket kept per connection", async () => {
    const { a } = await wgPair(lab, { tag: "v", env: { LOG_LEVEL: "error" } });
    const pid = a.proc.pid;
    a.ns.sh(`wg show ${a.iface} >/dev/null`);
    await Bun.sleep(200);
    const overlong = async (n: number) => {
    for (let i = 0; i < n; i++) {
      await new Promise<void>((resolve) => {
        const s = connect(socketPath(a.iface));
        s.on("error", () => resolve());
        s.on("connect", () => {
          s.write("set=1\n" + "x".repeat(100_000));
          setTimeout(() => {
            s.destroy();
            resolve();
          }, 20);
        });
      });
    }
    };
    const fds0 = fdCount(pid);
    await overlong(2);
    await Bun.sleep(1000);
    const fds1 = fdCount(pid);
    await overlong(10);
    const closed = await waitFor(() => fdCount(pid) <= fds1, 5000);
    console.log(`daemon sockets: ${fds0} before, ${fds1} after 2 over-long requests, ${fdCount(pid)} after 10 more`);
    expect(fds1 - fds0).toBeLessThanOrEqual(1);
    expect(closed).toBe(true);
    expect(a.ns.sh(`wg show ${a.iface} listen-port`).trim()).toBe(String(a.port));
  }, 30_000);

  test("loss, delay and reordering (lossy relay): handshake completes, traffic flows", async () => {
    // tc netem is not available in this kernel ("Specified qdisc kind is unknown"), so A talks to
    // B through a relay in A's namespace that drops 15% each way and delays 0-40 ms (reorders).
    const { a, b } = await wgPair(lab, { tag: "n", env: { LOG_LEVEL: "error" } });
    const relayPort = 20000 + (process.pid % 20000);
    const relay = a.ns.spawn([process.execPath, join(ROOT, "test/lib-relay.ts"), JSON.stringify({ listen: "127.0.0.1", listenPort: relayPort, out: a.outer4, to: b.outer4, toPort: b.port, loss: 0.15, maxDelayMs: 40 })]);
    expect(await waitFor(() => relay.output().includes("ready"), 5000)).toBe(true);
    // B forgets A's endpoint (it learns the relay's from the handshake); A sends to the relay.
    b.ns.sh(`wg set ${b.iface} peer ${a.key.pub} remove && wg set ${b.iface} peer ${a.key.pub} allowed-ips ${a.inner4}/32`);
    a.ns.sh(`wg set ${a.iface} peer ${b.key.pub} endpoint 127.0.0.1:${relayPort}`);
    expect(await pingUntil(a, b.inner4, 30000)).toBe(true);
    expect(peerDump(b).endpoint.startsWith(`${a.outer4}:`)).toBe(true);
    expect(peerDump(b).endpoint).not.toBe(`${a.outer4}:${a.port}`);
    const res = a.ns.run(["ping", "-c", "40", "-i", "0.05", "-W", "1", b.inner4]);
    const received = Number(/(\d+) received/.exec(res.stdout)?.[1] ?? 0);
    console.log(`ping through the lossy relay: ${received}/40`);
    expect(received).toBeGreaterThanOrEqual(16);
    expect(received).toBeLessThan(40); // the relay really loses packets
    // TCP over the lossy, reordering tunnel completes a transfer.
    const srv = b.ns.spawn(["iperf3", "-s", "-1", "-B", b.inner4, "-p", "5301"]);
    await Bun.sleep(300);
    const ip = a.ns.run(["iperf3", "-c", b.inner4, "-p", "5301", "-t", "3", "-J"]);
    await srv.kill();
    let bits = 0;
    try {
      bits = JSON.parse(ip.stdout).end?.sum_received?.bits_per_second ?? 0;
    } catch {}
    console.log(`iperf3 through the lossy relay: ${(bits / 1e6).toFixed(2)} Mbit/s`);
    expect(bits).toBeGreaterThan(20_000);
    await relay.kill();
  }, 90_000);

  test("nothing leaks: stopped daemons leave no process and no socket file", async () => {
    const { a, b } = await wgPair(lab, { tag: "z", env: { LOG_LEVEL: "error" } });
    expect(await pingUntil(a, b.inner4, 15000)).toBe(true);
    for (const s of [a, b]) {
      await s.proc.kill();
      expect(s.proc.proc.exitCode).toBe(0);
      expect(existsSync(socketPath(s.iface))).toBe(false);
      expect(s.ns.run(["ip", "link", "show", s.iface]).code).not.toBe(0);
      // Asked from outside: `ip netns pids` run inside would list itself.
      const pids = () => Bun.spawnSync(["ip", "netns", "pids", s.ns.name]).stdout.toString().trim();
      expect(await waitFor(() => pids() === "", 3000)).toBe(true);
    }
  }, 60_000);
});
