// Two network namespaces joined by a veth pair, one WireGuard daemon in each, configured as
// peers with /usr/bin/wg. Everything created here has a name unique to this process and is
// removed by teardown(), and by cleanupAll() when the harness is interrupted.
import { existsSync, rmSync } from "node:fs";
import type { Implementation } from "./impls.ts";
import { nsRun, nsSpawn, run, stop, uapiReady, uapiSocket, waitFor, type Daemon } from "./proc.ts";

export const UNDERLAY_A = "10.77.0.1";
export const UNDERLAY_B = "10.77.0.2";
export const TUNNEL_A = "10.78.0.1";
export const TUNNEL_B = "10.78.0.2";
export const PORT = 51820;

export interface Side {
  ns: string;
  iface: string;
  impl: Implementation;
  daemon: Daemon;
  privateKey: string;
  publicKey: string;
}

export interface Pair {
  a: Side;
  b: Side;
  teardown(): Promise<void>;
}

let seq = 0;
const live = new Set<() => Promise<void>>();

/** Removes whatever is still set up; safe to call more than once. */
export async function cleanupAll(): Promise<void> {
  for (const t of [...live]) await t();
}

export function genKeyPair(): { privateKey: string; publicKey: string } {
  const privateKey = run(["wg", "genkey"]).stdout.trim();
  const publicKey = run(["wg", "pubkey"], { input: privateKey + "\n" }).stdout.trim();
  return { privateKey, publicKey };
}

/** Unique names: namespaces `wgb-<pid>-<n>{a,b}`, interfaces `wb<pid>x<n>{a,b}` (<= 15 chars). */
export function uniqueNames(): { prefix: string; nsA: string; nsB: string; ifA: string; ifB: string } {
  const n = seq++;
  const prefix = `wgb-${process.pid}-${n}`;
  return { prefix, nsA: `${prefix}a`, nsB: `${prefix}b`, ifA: `wb${process.pid}x${n}a`, ifB: `wb${process.pid}x${n}b` };
}

/** Starts a daemon for `iface` in `ns` and waits for its UAPI socket. */
export async function startDaemon(impl: Implementation, ns: string, iface: string): Promise<Daemon> {
  const daemon = nsSpawn(ns, impl.command(iface));
  const ok = await waitFor(() => uapiReady(iface) || daemon.proc.exitCode !== null, impl.startTimeoutMs);
  if (!ok || daemon.proc.exitCode !== null || !uapiReady(iface)) {
    await stop(daemon);
    const err = (await daemon.stderrText()).trim().split("\n").slice(-3).join(" / ");
    throw new Error(`${impl.name} did not come up for ${iface} in ${ns}${err ? `: ${err}` : ""}`);
  }
  return daemon;
}

export function removeStaleSocket(iface: string): void {
  // A daemon killed hard leaves its socket behind; the name is ours alone.
  if (existsSync(uapiSocket(iface))) rmSync(uapiSocket(iface), { force: true });
}

export async function setupPair(implA: Implementation, implB: Implementation): Promise<Pair> {
  const { nsA, nsB, ifA, ifB } = uniqueNames();
  const daemons: Daemon[] = [];
  let done = false;
  const teardown = async () => {
    if (done) return;
    done = true;
    live.delete(teardown);
    for (const d of daemons) await stop(d);
    for (const ns of [nsA, nsB]) run(["ip", "netns", "del", ns], { allowFail: true });
    removeStaleSocket(ifA);
    removeStaleSocket(ifB);
  };
  live.add(teardown);
  try {
    run(["ip", "netns", "add", nsA]);
    run(["ip", "netns", "add", nsB]);
    run(["ip", "-n", nsA, "link", "add", "va", "type", "veth", "peer", "name", "vb", "netns", nsB]);
    run(["ip", "-n", nsA, "addr", "add", `${UNDERLAY_A}/24`, "dev", "va"]);
    run(["ip", "-n", nsB, "addr", "add", `${UNDERLAY_B}/24`, "dev", "vb"]);
    for (const [ns, dev] of [[nsA, "va"], [nsB, "vb"]] as const) {
      run(["ip", "-n", ns, "link", "set", "lo", "up"]);
      run(["ip", "-n", ns, "link", "set", dev, "up"]);
    }
    const ka = genKeyPair();
    const kb = genKeyPair();
    const dA = await startDaemon(implA, nsA, ifA);
    daemons.push(dA);
    const dB = await startDaemon(implB, nsB, ifB);
    daemons.push(dB);
    const a: Side = { ns: nsA, iface: ifA, impl: implA, daemon: dA, ...ka };
    const b: Side = { ns: nsB, iface: ifB, impl: implB, daemon: dB, ...kb };
    configure(a, b, UNDERLAY_B, TUNNEL_A, TUNNEL_B);
    configure(b, a, UNDERLAY_A, TUNNEL_B, TUNNEL_A);
    // The first packet triggers the handshake; wait until the tunnel carries traffic.
    const up = await waitFor(
      () => nsRun(nsA, ["ping", "-c", "1", "-W", "1", TUNNEL_B], { allowFail: true }).code === 0,
      8000,
      100,
    );
    if (!up) throw new Error(`tunnel ${implA.name} <-> ${implB.name} carries no traffic`);
    return { a, b, teardown };
  } catch (e) {
    await teardown();
    throw e;
  }
}

function configure(self: Side, peer: Side, peerUnderlay: string, selfTunnel: string, peerTunnel: string): void {
  nsRun(self.ns, ["wg", "set", self.iface, "private-key", "/dev/stdin", "listen-port", String(PORT),
    "peer", peer.publicKey, "endpoint", `${peerUnderlay}:${PORT}`, "allowed-ips", `${peerTunnel}/32`],
    { input: self.privateKey + "\n" });
  run(["ip", "-n", self.ns, "addr", "add", `${selfTunnel}/24`, "dev", self.iface]);
  run(["ip", "-n", self.ns, "link", "set", self.iface, "mtu", "1420", "up"]);
}
