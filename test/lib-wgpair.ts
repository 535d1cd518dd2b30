// Two of our daemons in two namespaces joined by a veth, configured through the real `wg`.
// Shared by the reliability tests (flood, replay, faults, secrets) and bench/soak.ts.
//
//   const lab = new Lab("flood");
//   const { a, b } = await wgPair(lab, { tag: "f" });
//   await pingUntil(a, b.inner4);
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { socketPath } from "../platform/socket-path.ts";
import { type Lab, type Netns, type Proc, waitFor } from "./netns.ts";

export const ROOT = join(import.meta.dir, "..");
export const BUN = process.execPath;

export interface Key {
  priv: string;
  pub: string;
}

export function genkey(): Key {
  const priv = Bun.spawnSync(["wg", "genkey"]).stdout.toString().trim();
  const pub = Bun.spawnSync(["wg", "pubkey"], { stdin: Buffer.from(priv + "\n") }).stdout.toString().trim();
  return { priv, pub };
}

let keyDir: string | null = null;
const removeKeyDir = () => {
  if (keyDir) rmSync(keyDir, { recursive: true, force: true });
  keyDir = null;
};
// Under `bun test` (no "exit" event there) the directory goes with the test file's afterAll;
// scripts such as bench/soak.ts fall back to the exit event.
try {
  (await import("bun:test")).afterAll(removeKeyDir);
} catch {
  process.on("exit", removeKeyDir);
}
/** A 0600 file holding `content` (key files for `wg set`), removed when the tests or process end. */
export function keyFile(content: string): string {
  keyDir ??= mkdtempSync(join(tmpdir(), "wgt-rel-"));
  const p = join(keyDir, `k${Math.random().toString(36).slice(2)}`);
  writeFileSync(p, content + "\n", { mode: 0o600 });
  return p;
}

export interface Side {
  ns: Netns;
  iface: string;
  key: Key;
  port: number;
  outer4: string;
  inner4: string;
  dev: string;
  proc: Proc;
  env: Record<string, string>;
}

let counter = 0;
/** Interface names are global through /var/run/wireguard: unique per process and call. */
export function ifname(tag: string): string {
  return `wr${tag}${process.pid % 100000}${(counter++).toString(36)}`.slice(0, 15);
}

export interface DaemonOpts {
  /** Our daemon (default) or wireguard-go. */
  kind?: "ours" | "go";
  /** Words before the interface name (our daemon's options). */
  args?: string[];
  /** Environment beyond LOG_LEVEL=debug. */
  env?: Record<string, string>;
}

/** Starts a daemon for `iface` in the foreground inside `ns` and waits until its socket answers. */
export async function startDaemon(ns: Netns, iface: string, opts: DaemonOpts = {}): Promise<Proc> {
  const kind = opts.kind ?? "ours";
  const cmd = kind === "ours" ? [BUN, join(ROOT, "cmd/main.ts"), "daemon", "-f", ...(opts.args ?? []), iface] : ["wireguard-go", "-f", iface];
  const p = ns.spawn(cmd, { LOG_LEVEL: "debug", ...opts.env });
  // A SIGKILLed predecessor leaves its socket file behind: wait until the socket answers.
  const ok = await waitFor(
    () => existsSync(socketPath(iface)) && ns.run(["ip", "link", "show", iface]).code === 0 && ns.run(["wg", "show", iface, "listen-port"]).code === 0,
    15000,
  );
  if (!ok) throw new Error(`${kind} daemon for ${iface} did not come up:\n${p.output()}`);
  return p;
}

/** (Re)applies keys, port, peer, endpoint and addresses of `me` towards `other`. */
export function configure(me: Side, other: Side, opts: { psk?: string; endpoint?: boolean; keepalive?: number } = {}): void {
  const words = ["wg", "set", me.iface, "private-key", keyFile(me.key.priv), "listen-port", String(me.port), "peer", other.key.pub];
  if (opts.psk) words.push("preshared-key", keyFile(opts.psk));
  if (opts.endpoint !== false) words.push("endpoint", `${other.outer4}:${other.port}`);
  if (opts.keepalive) words.push("persistent-keepalive", String(opts.keepalive));
  words.push("allowed-ips", `${other.inner4}/32`);
  me.ns.sh(words.join(" "));
  if (!me.ns.sh(`ip -4 addr show dev ${me.iface}`).includes(me.inner4)) {
    me.ns.sh(`ip addr add ${me.inner4}/24 dev ${me.iface}`);
  }
  me.ns.sh(`ip link set ${me.iface} up`);
}

export interface PairOpts {
  tag: string;
  psk?: string;
  env?: Record<string, string>;
  keepalive?: number;
}

let netCounter = 0;
export async function wgPair(lab: Lab, opts: PairOpts): Promise<{ a: Side; b: Side }> {
  const n = ++netCounter;
  // 10.<x>.<n>.0/24 outer, 10.<x+1>.<n>.0/24 inner; x spreads tags so files differ.
  const x = 30 + ((opts.tag.charCodeAt(0) * 7) % 150);
  const nsA = lab.ns(`a${n}`);
  const nsB = lab.ns(`b${n}`);
  const [dev] = lab.veth(nsA, nsB, { a: [`10.${x}.${n}.1/24`], b: [`10.${x}.${n}.2/24`] });
  const env = opts.env ?? {};
  const mk = async (ns: Netns, h: number): Promise<Side> => {
    const iface = ifname(opts.tag);
    return {
      ns,
      iface,
      key: genkey(),
      port: 41000 + ((process.pid + n * 10 + h) % 20000),
      outer4: `10.${x}.${n}.${h}`,
      inner4: `10.${x + 1}.${n}.${h}`,
      dev,
      env,
      proc: await startDaemon(ns, iface, { env }),
    };
  };
  const a = await mk(nsA, 1);
  const b = await mk(nsB, 2);
  configure(a, b, { psk: opts.psk, keepalive: opts.keepalive });
  configure(b, a, { psk: opts.psk, keepalive: opts.keepalive });
  return { a, b };
}

export function ping(from: Side, to: string, count = 1, waitS = 2): boolean {
  return from.ns.run(["ping", "-c", String(count), "-i", "0.2", "-W", String(waitS), to]).code === 0;
}

/** Pings until one succeeds (the first packet waits for the handshake). */
export async function pingUntil(from: Side, to: string, timeoutMs = 10000): Promise<boolean> {
  return waitFor(() => ping(from, to, 1, 1), timeoutMs, 100);
}

/** Resident set size of a process in KiB (0 when it is gone). */
export function rssKiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/**
 * The daemon's resident size once it is idle: the smallest of several samples over `ms`. One
 * sample right after a burst can catch garbage the collector has not yet returned (seen in CI as
 * a spike of a few MiB); a leak stays in every sample, so the minimum still shows it.
 */
export async function settledRssKiB(pid: number, ms = 3000): Promise<number> {
  let min = Infinity;
  for (let t = 0; t < ms; t += 250) {
    await Bun.sleep(250);
    min = Math.min(min, rssKiB(pid));
  }
  return min;
}

/** The daemon's own PID: the lab spawns `ip netns exec ... bun`, which execs, so it is the same. */
export function daemonPid(s: Side): number {
  return s.proc.pid;
}

/** `wg show <iface> dump` peer line fields for the single peer. */
export function peerDump(s: Side): { endpoint: string; latestHandshake: number; rx: number; tx: number } {
  const lines = s.ns.sh(`wg show ${s.iface} dump`).trim().split("\n");
  const f = (lines[1] ?? "").split("\t");
  return { endpoint: f[2] ?? "", latestHandshake: Number(f[4] ?? 0), rx: Number(f[5] ?? 0), tx: Number(f[6] ?? 0) };
}
