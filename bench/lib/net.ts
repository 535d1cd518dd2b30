// Traffic through a tunnel pair: iperf3 TCP throughput with the daemons' CPU use, and ping RTT.
import { TUNNEL_B, type Pair } from "./pair.ts";
import { cpuSeconds, nsRun, nsSpawn, stop, type Daemon } from "./proc.ts";
import { median } from "./stats.ts";

export interface ThroughputResult {
  mbps: number;
  /** CPU of both daemons together, in cores (1.0 = one core busy). */
  daemonCores: number;
  /** The sending (A) and receiving (B) daemon separately, in cores. */
  coresA: number;
  coresB: number;
  /** Daemon core-seconds spent per Gbit moved. */
  cpuSecPerGbit: number;
  retransmits: number;
}

const IPERF_PORT = 5201;

/** An iperf3 server in B's namespace for the life of the pair. */
export async function startIperfServer(pair: Pair): Promise<Daemon> {
  const server = nsSpawn(pair.b.ns, ["iperf3", "-s", "-B", TUNNEL_B, "-p", String(IPERF_PORT)]);
  await Bun.sleep(300);
  return server;
}
export const stopIperfServer = stop;

/** TCP from A to B for `seconds` (+1 s of slow start that iperf3 omits from its totals). */
export function iperf(pair: Pair, streams: number, seconds: number): ThroughputResult {
  const pids = [pair.a.daemon.pid, pair.b.daemon.pid];
  const cpu0 = pids.map(cpuSeconds);
  const t0 = performance.now();
  const r = nsRun(pair.a.ns, ["iperf3", "-c", TUNNEL_B, "-p", String(IPERF_PORT), "-t", String(seconds), "-O", "1",
    "-P", String(streams), "-J"], { allowFail: true, timeoutMs: (seconds + 20) * 1000 });
  const wall = (performance.now() - t0) / 1000;
  const used = pids.map((pid, i) => cpuSeconds(pid) - cpu0[i]!);
  const cpu = used[0]! + used[1]!;
  let j: { end?: { sum_received?: { bits_per_second?: number }; sum_sent?: { retransmits?: number } }; error?: string };
  try {
    j = JSON.parse(r.stdout);
  } catch {
    throw new Error(`iperf3 gave no JSON: ${r.stderr.trim()}`);
  }
  if (j.error || !j.end?.sum_received?.bits_per_second) throw new Error(`iperf3: ${j.error ?? "no result"}`);
  const mbps = j.end.sum_received.bits_per_second / 1e6;
  const daemonCores = cpu / wall;
  return { mbps, daemonCores, coresA: used[0]! / wall, coresB: used[1]! / wall, cpuSecPerGbit: daemonCores / (mbps / 1000), retransmits: j.end.sum_sent?.retransmits ?? 0 };
}

/** Round-trip times in ms of `count` pings from A to B through the tunnel, `intervalSec` apart. */
export function pingRtts(pair: Pair, count: number, intervalSec: number): number[] {
  const r = nsRun(pair.a.ns, ["ping", "-n", "-c", String(count), "-i", String(intervalSec), "-W", "1", TUNNEL_B], {
    allowFail: true,
    timeoutMs: count * (intervalSec + 1) * 1000 + 5000,
  });
  return [...r.stdout.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
}

/**
 * Median round-trip time in ms of `count` pings through the tunnel, `intervalSec` apart. The
 * interval matters: a daemon that sleeps between packets pays its wake-up cost on every ping.
 */
export function pingMedianMs(pair: Pair, count: number, intervalSec: number): number {
  return median(pingRtts(pair, count, intervalSec));
}
