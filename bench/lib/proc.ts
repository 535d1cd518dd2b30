// Process helpers for the benchmark harness: synchronous commands, background daemons we own,
// and per-process CPU and memory read from /proc.
import { existsSync, readFileSync } from "node:fs";

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion; throws with its stderr unless `allowFail`. */
export function run(cmd: string[], opts: { input?: string; allowFail?: boolean; timeoutMs?: number } = {}): RunResult {
  const p = Bun.spawnSync(cmd, {
    stdin: opts.input !== undefined ? Buffer.from(opts.input) : "ignore",
    stdout: "pipe",
    stderr: "pipe",
    timeout: opts.timeoutMs ?? 60_000,
  });
  const r = { code: p.exitCode ?? -1, stdout: p.stdout.toString(), stderr: p.stderr.toString() };
  if (r.code !== 0 && !opts.allowFail) {
    const how = p.exitCode === null ? `killed by ${p.signalCode ?? "a signal"}` : `exit ${r.code}`;
    throw new Error(`${cmd.join(" ")} failed (${how}): ${r.stderr.trim() || r.stdout.trim()}`);
  }
  return r;
}

/** Runs inside a network namespace. */
export const nsRun = (ns: string, cmd: string[], opts: Parameters<typeof run>[1] = {}) =>
  run(["ip", "netns", "exec", ns, ...cmd], opts);

export interface Daemon {
  pid: number;
  proc: ReturnType<typeof Bun.spawn>;
  stderrText(): Promise<string>;
}

/** Starts a long-running process in a namespace. `ip netns exec` execs in place, so the PID is the daemon's. */
export function nsSpawn(ns: string, cmd: string[], env: Record<string, string> = {}): Daemon {
  const proc = Bun.spawn(["ip", "netns", "exec", ns, ...cmd], {
    stdin: "ignore",
    stdout: "ignore",
    stderr: "pipe",
    env: { ...process.env, ...env },
  });
  return {
    pid: proc.pid,
    proc,
    stderrText: async () => {
      try {
        return await new Response(proc.stderr as ReadableStream).text();
      } catch {
        return "";
      }
    },
  };
}

export async function stop(d: Daemon | null | undefined): Promise<void> {
  if (!d || d.proc.exitCode !== null) return;
  d.proc.kill("SIGTERM");
  const done = await Promise.race([d.proc.exited.then(() => true), Bun.sleep(2000).then(() => false)]);
  if (!done) {
    d.proc.kill("SIGKILL");
    await d.proc.exited;
  }
}

const CLK_TCK = Number(run(["getconf", "CLK_TCK"], { allowFail: true }).stdout.trim()) || 100;

/** User+system CPU seconds used so far by a process (and its reaped children are not counted). */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name, which is in parentheses and may contain spaces.
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / CLK_TCK; // utime, stime (fields 14 and 15)
  } catch {
    return NaN;
  }
}

/** Resident set size in KiB (VmRSS). */
export function rssKiB(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) : NaN;
  } catch {
    return NaN;
  }
}

export async function waitFor(cond: () => boolean, timeoutMs: number, stepMs = 25): Promise<boolean> {
  const end = performance.now() + timeoutMs;
  while (performance.now() < end) {
    if (cond()) return true;
    await Bun.sleep(stepMs);
  }
  return cond();
}

export const uapiSocket = (iface: string) => `/var/run/wireguard/${iface}.sock`;
export const uapiReady = (iface: string) => existsSync(uapiSocket(iface));
