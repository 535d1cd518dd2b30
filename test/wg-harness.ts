// Shared pieces of the `wg` differential tests: run the reference /usr/bin/wg and ours on the
// same input and compare bytes; fake UAPI daemons on unix sockets with scripted answers.
import { unlinkSync, existsSync, mkdirSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { keyToHex } from "../core/encoding.ts";

export const MAIN = `${import.meta.dir}/../cmd/main.ts`;
export const RUN_WG = `${import.meta.dir}/run-wg.ts`;
export const SOCK_DIR = "/var/run/wireguard";

export interface Run {
  stdout: string;
  stderr: string;
  code: number;
}

export interface RunOpts {
  stdin?: string | Uint8Array;
  env?: Record<string, string>;
  cwd?: string;
  /** Run in a private mount namespace whose /run/wireguard is this directory (deterministic listings). */
  isolate?: string;
}

function baseEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith("WG_")) env[k] = v;
  return { ...env, ...extra };
}

export async function run(cmd: string[], o: RunOpts = {}): Promise<Run> {
  if (o.isolate)
    cmd = ["unshare", "-m", "--propagation", "private", "sh", "-c", 'mkdir -p /run/wireguard && mount --bind "$0" /run/wireguard && exec "$@"', o.isolate, ...cmd];
  const proc = Bun.spawn(cmd, {
    stdin: o.stdin === undefined ? "ignore" : "pipe",
    stdout: "pipe",
    stderr: "pipe",
    env: baseEnv(o.env),
    cwd: o.cwd,
  });
  if (o.stdin !== undefined) {
    const sink = proc.stdin as import("bun").FileSink;
    try {
      sink.write(typeof o.stdin === "string" ? Buffer.from(o.stdin, "latin1") : o.stdin);
      await sink.end();
    } catch {}
  }
  const [out, err] = await Promise.all([
    new Response(proc.stdout as ReadableStream).arrayBuffer(),
    new Response(proc.stderr as ReadableStream).arrayBuffer(),
  ]);
  const code = await proc.exited;
  return { stdout: Buffer.from(out).toString("latin1"), stderr: Buffer.from(err).toString("latin1"), code };
}

export const real = (args: string[], o: RunOpts = {}) => run(["wg", ...args], o);
export const ours = (args: string[], o: RunOpts = {}) => run([process.execPath, MAIN, "wg", ...args], o);
/** Ours with a chosen argv[0] (the reference is run through a shell `exec -a`). */
export const oursAs = (argv0: string, args: string[], o: RunOpts = {}) =>
  run([process.execPath, RUN_WG, ...args], { ...o, env: { ...o.env, WG_ARGV0: argv0 } });
export const realAs = (argv0: string, args: string[], o: RunOpts = {}) =>
  run(["bash", "-c", 'exec -a "$0" /usr/bin/wg "$@"', argv0, ...args], o);

/** Both tools, compared; retried when the world may have moved between the two runs. */
export async function both(args: string[], o: RunOpts = {}, attempts = 1): Promise<{ real: Run; ours: Run }> {
  let r: Run, m: Run;
  // Only the pretty form prints relative times.
  const pretty = args.length === 0 || (args[0] === "show" && args.length <= 2 && args[1] !== "interfaces");
  for (let i = 0; ; i++) {
    // Time-sensitive comparisons ("N seconds ago") start just after a second boundary, so both
    // runs (the reference takes milliseconds, we take a few hundred) see the same time(NULL).
    if (attempts > 1 && pretty) await Bun.sleep(1000 - (Date.now() % 1000) + 10);
    r = await real(args, o);
    m = await ours(args, o);
    if ((r.stdout === m.stdout && r.stderr === m.stderr && r.code === m.code) || i + 1 >= attempts) break;
  }
  return { real: r!, ours: m! };
}

// ---------------------------------------------------------------------------------------------
// Fake daemon

export interface FakePeer {
  pub: Uint8Array;
  psk?: Uint8Array;
  endpoint?: string;
  /** Handshake seconds: a number, or a function of "now" (unix seconds) evaluated at answer time. */
  hsSec?: bigint | ((now: bigint) => bigint);
  hsNsec?: bigint;
  rx?: bigint;
  tx?: bigint;
  keepalive?: number;
  allowed?: string[];
}

export interface FakeState {
  priv?: Uint8Array;
  port?: number;
  fwmark?: number;
  peers: FakePeer[];
}

export function getAnswer(s: FakeState, now: bigint): string {
  let t = "";
  if (s.priv) t += `private_key=${keyToHex(s.priv)}\n`;
  if (s.port) t += `listen_port=${s.port}\n`;
  if (s.fwmark) t += `fwmark=${s.fwmark}\n`;
  for (const p of s.peers) {
    t += `public_key=${keyToHex(p.pub)}\n`;
    t += `preshared_key=${keyToHex(p.psk ?? new Uint8Array(32))}\n`;
    t += "protocol_version=1\n";
    if (p.endpoint) t += `endpoint=${p.endpoint}\n`;
    const hs = typeof p.hsSec === "function" ? p.hsSec(now) : (p.hsSec ?? 0n);
    t += `last_handshake_time_sec=${hs}\nlast_handshake_time_nsec=${p.hsNsec ?? 0n}\n`;
    t += `tx_bytes=${p.tx ?? 0n}\nrx_bytes=${p.rx ?? 0n}\npersistent_keepalive_interval=${p.keepalive ?? 0}\n`;
    for (const a of p.allowed ?? []) t += `allowed_ip=${a}\n`;
  }
  return t + "errno=0\n\n";
}

let fakeCounter = 0;

/** A scripted UAPI daemon on /var/run/wireguard/NAME.sock that records every request. */
export class FakeDaemon {
  readonly name: string;
  readonly path: string;
  readonly requests: string[] = [];
  /** Empty connections (wg's probe) seen. */
  probes = 0;
  private server: Server;
  private sockets = new Set<Socket>();

  constructor(
    public answer: (request: string) => string,
    name?: string,
    dir: string = SOCK_DIR,
  ) {
    this.name = name ?? `wt${process.pid % 100000}f${fakeCounter++}`;
    this.path = `${dir}/${this.name}.sock`;
    if (!existsSync(dir)) mkdirSync(dir, { recursive: true });
    try {
      unlinkSync(this.path);
    } catch {}
    this.server = createServer((sock) => {
      this.sockets.add(sock);
      let buf = "";
      let answered = false;
      sock.on("data", (d) => {
        buf += d.toString("latin1");
        if (!answered && (buf.startsWith("get=1\n\n") || (buf.startsWith("set=1\n") && buf.includes("\n\n")))) {
          answered = true;
          this.requests.push(buf);
          sock.end(Buffer.from(this.answer(buf), "latin1"));
        }
      });
      sock.on("end", () => {
        if (!buf) this.probes++;
        if (!answered) sock.end();
      });
      sock.on("error", () => {});
      sock.on("close", () => this.sockets.delete(sock));
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(this.path, resolve));
    return this;
  }

  /** A fake that answers get with `state` (read at answer time) and set with errno=0. */
  static serving(state: FakeState | (() => FakeState), name?: string, dir?: string): FakeDaemon {
    return new FakeDaemon((req) => {
      if (req.startsWith("get=1")) return getAnswer(typeof state === "function" ? state() : state, BigInt(Math.floor(Date.now() / 1000)));
      return "errno=0\n\n";
    }, name, dir);
  }

  setRequests(): string[] {
    return this.requests.filter((r) => r.startsWith("set="));
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    try {
      unlinkSync(this.path);
    } catch {}
  }
}

/** Deterministic test keys. */
export function testKey(n: number): Uint8Array {
  const k = new Uint8Array(32);
  for (let i = 0; i < 32; i++) k[i] = (n * 37 + i * 11 + 1) & 0xff;
  return k;
}
