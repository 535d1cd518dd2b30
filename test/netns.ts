// Network-namespace lab for tests that send real packets. Needs root.
//
//   const lab = new Lab("daemon");            // namespaces are named wgt-daemon-<pid>-<n>-<name>
//   const a = lab.ns("a"), b = lab.ns("b");   // created at once, loopback up
//   lab.veth(a, b, { a: ["10.0.0.1/24", "fd00::1/64"], b: ["10.0.0.2/24", "fd00::2/64"] });
//                                             // -> ["veth1", "veth1"]: the name inside each ns
//   a.sh("ip addr");                          // run a shell line inside a; throws on failure, returns stdout
//   a.run(["ping", "-c1", "10.0.0.2"]);       // { code, stdout, stderr }, never throws
//   const p = a.spawn(["iperf3", "-s"]);      // background process inside a; tracked by the lab
//   await p.kill();                           // SIGTERM (then SIGKILL after 2 s), by PID only
//   await waitFor(() => a.run([...]).code === 0, 5000);  // poll a condition
//   await lab.cleanup();                      // kills every spawned PID, deletes every namespace
//
// cleanup() is idempotent; call it from afterAll/finally. As a last resort the lab also cleans up
// synchronously when the test process exits or gets SIGINT/SIGTERM, and a new Lab deletes
// namespaces of its area left behind by processes that no longer exist (a SIGKILLed run).
// Names are unique per process, so concurrent test files and helpers never collide; nothing
// outside the lab's namespaces is touched. Note: /var/run/wireguard is shared by all
// namespaces, so interface names of daemons must be unique too (e.g. include process.pid).

import type { Subprocess } from "bun";

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface Proc {
  readonly pid: number;
  readonly proc: Subprocess<"ignore", "pipe", "pipe">;
  /** Everything the process printed so far (stdout and stderr interleaved by arrival). */
  output(): string;
  /** Resolves with the exit code once the process has ended. */
  readonly exited: Promise<number>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when it has exited. */
  kill(graceMs?: number): Promise<void>;
}

let labCounter = 0;
const liveLabs = new Set<Lab>();
process.on("exit", () => {
  for (const lab of liveLabs) lab.cleanupSync();
});
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.once(sig, () => {
    for (const lab of liveLabs) lab.cleanupSync();
    process.exit(130);
  });
}

/** Deletes namespaces `wgt-<area>-<pid>-*` whose creating process is gone. */
function sweepStale(area: string): void {
  const list = runSync(["ip", "netns", "list"]).stdout;
  const re = new RegExp(`^(wgt-${area}-(\\d+)-\\S+)`, "gm");
  for (const m of list.matchAll(re)) {
    const pid = Number(m[2]);
    let alive = true;
    try {
      process.kill(pid, 0);
    } catch {
      alive = false;
    }
    if (alive) continue;
    for (const p of runSync(["ip", "netns", "pids", m[1]!]).stdout.split(/\s+/).filter(Boolean)) {
      try {
        process.kill(Number(p), "SIGKILL");
      } catch {}
    }
    runSync(["ip", "netns", "del", m[1]!]);
  }
}

function runSync(cmd: string[], env?: Record<string, string>): RunResult {
  const r = Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe", env: env ? { ...process.env, ...env } : undefined });
  return { code: r.exitCode ?? -1, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

export class Netns {
  constructor(
    readonly lab: Lab,
    /** Full namespace name (for `ip netns exec`). */
    readonly name: string,
  ) {}

  /** Runs argv inside the namespace and waits for it. Never throws. */
  run(cmd: string[], env?: Record<string, string>): RunResult {
    return runSync(["ip", "netns", "exec", this.name, ...cmd], env);
  }

  /** Runs a shell line inside the namespace; throws with stderr when it fails; returns stdout. */
  sh(line: string, env?: Record<string, string>): string {
    const r = this.run(["sh", "-c", line], env);
    if (r.code !== 0) throw new Error(`[${this.name}] ${line}: exit ${r.code}\n${r.stderr}${r.stdout}`);
    return r.stdout;
  }

  /** Starts argv inside the namespace in the background; the lab kills it on cleanup. */
  spawn(cmd: string[], env?: Record<string, string>): Proc {
    return this.lab.spawn(["ip", "netns", "exec", this.name, ...cmd], env);
  }
}

export class Lab {
  readonly prefix: string;
  private readonly namespaces: Netns[] = [];
  private readonly procs = new Set<Proc>();

  constructor(area: string) {
    if (!/^[a-z0-9]+$/.test(area)) throw new Error(`Lab area must be [a-z0-9]+: ${area}`);
    sweepStale(area);
    this.prefix = `wgt-${area}-${process.pid}-${labCounter++}-`;
    liveLabs.add(this);
  }

  /** Creates namespace `<prefix><short>` with lo up. */
  ns(short: string): Netns {
    const name = this.prefix + short;
    const r = runSync(["ip", "netns", "add", name]);
    if (r.code !== 0) throw new Error(`ip netns add ${name}: ${r.stderr}`);
    const ns = new Netns(this, name);
    this.namespaces.push(ns);
    ns.sh("ip link set lo up");
    return ns;
  }

  /**
   * Connects a and b with a veth pair (named `name` in both namespaces, default veth<N>), brings
   * both ends up and assigns the given addresses (IPv6 without DAD so they work at once).
   */
  veth(a: Netns, b: Netns, addrs: { a?: string[]; b?: string[] } = {}, name?: string): [string, string] {
    const n = name ?? `veth${this.namespaces.indexOf(b)}`;
    const tmp = `wgt${process.pid % 100000}x${labCounter++}`.slice(0, 15);
    a.sh(`ip link add ${n} type veth peer name ${tmp} && ip link set ${tmp} netns ${b.name}`);
    b.sh(`ip link set ${tmp} name ${n}`);
    for (const [ns, list] of [
      [a, addrs.a ?? []],
      [b, addrs.b ?? []],
    ] as const) {
      for (const ad of list) ns.sh(`ip addr add ${ad} dev ${n}${ad.includes(":") ? " nodad" : ""}`);
      ns.sh(`ip link set ${n} up`);
    }
    return [n, n];
  }

  spawn(cmd: string[], env?: Record<string, string>): Proc {
    const proc = Bun.spawn(cmd, {
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
      env: env ? { ...process.env, ...env } : process.env,
    });
    let out = "";
    const pump = async (s: ReadableStream<Uint8Array>) => {
      const dec = new TextDecoder();
      for await (const c of s) out += dec.decode(c, { stream: true });
    };
    void pump(proc.stdout).catch(() => {});
    void pump(proc.stderr).catch(() => {});
    const p: Proc = {
      pid: proc.pid,
      proc,
      output: () => out,
      exited: proc.exited,
      kill: async (graceMs = 2000) => {
        if (proc.exitCode === null && proc.signalCode === null) {
          proc.kill("SIGTERM");
          const t = setTimeout(() => proc.kill("SIGKILL"), graceMs);
          await proc.exited;
          clearTimeout(t);
        }
        this.procs.delete(p);
      },
    };
    this.procs.add(p);
    return p;
  }

  /** Kills every process the lab started and deletes its namespaces. Idempotent. */
  async cleanup(): Promise<void> {
    await Promise.all([...this.procs].map((p) => p.kill(1000)));
    this.cleanupSync();
  }

  cleanupSync(): void {
    for (const p of this.procs) {
      try {
        process.kill(p.pid, "SIGKILL");
      } catch {}
    }
    this.procs.clear();
    for (const ns of this.namespaces.splice(0)) {
      // Processes we did not start may linger in the namespace (e.g. a daemon that forked);
      // kill only those whose network namespace is ours.
      const pids = runSync(["ip", "netns", "pids", ns.name]).stdout.split(/\s+/).filter(Boolean);
      for (const pid of pids) {
        try {
          process.kill(Number(pid), "SIGKILL");
        } catch {}
      }
      runSync(["ip", "netns", "del", ns.name]);
    }
    liveLabs.delete(this);
  }
}

/** Polls `cond` every `stepMs` until true or `timeoutMs` passed; returns whether it became true. */
export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs = 5000, stepMs = 50): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return true;
    if (Date.now() > end) return false;
    await Bun.sleep(stepMs);
  }
}
