// Benchmark harness: our daemon vs wireguard-go in the same run, on the same machine.
//
//   bun bench/run.ts [--quick] [--impl wireguard-go,wireguard-go-gso,ours] [--rounds N] [--seconds S]
//                    [--only aead,tunnel,handshake,scale,startup] [--hs-window N] [--build]
//                    [--write | --no-write]
//
// A full run rewrites bench/RESULTS.md (keeping its hand-written "Observations" section); a
// --quick run only prints unless --write is given.
//
// --build compiles cmd/main.ts into a temporary executable (as `bun run build` would, without
// touching dist/) when dist/wg is absent, for the start-up numbers and the "ours-bin" daemon.
//
// Tunnel numbers come from two fresh namespaces joined by veth with one daemon in each; rounds
// alternate the implementations (A B A B ...) and the table shows medians. An implementation
// may be "x" (both sides) or "x:y" (side A runs x, side B runs y, e.g. an interop pair).
// Needs root, iperf3, ping, wireguard-go and /usr/bin/wg.
import { readFileSync, writeFileSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generatePrivateKey, nobleAead, publicKey } from "../core/crypto.ts";
import { loadOpenSslAead } from "../platform/linux/aead-openssl.ts";
import { benchBackend } from "./aead.ts";
import { compileCommand } from "../build.ts";
import { cleanupImpls, compiledWg, getImplementation, type Implementation } from "./lib/impls.ts";
import { iperf, pingMedianMs, startIperfServer, stopIperfServer, type ThroughputResult } from "./lib/net.ts";
import { cleanupAll, PORT, setupPair, UNDERLAY_B } from "./lib/pair.ts";
import { cpuSeconds, nsRun, run } from "./lib/proc.ts";
import { measureScale, type ScaleResult } from "./lib/scale.ts";
import { fmt, median, table } from "./lib/stats.ts";
import type { FloodParams, FloodResult } from "./lib/handshake.ts";

const ROOT = join(import.meta.dir, "..");
const argv = process.argv.slice(2);
const flag = (name: string) => argv.includes(name);
const option = (name: string) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};
const quick = flag("--quick");
const rounds = Number(option("--rounds") ?? (quick ? 2 : 3));
const seconds = Number(option("--seconds") ?? (quick ? 2 : 5));
const pings = quick ? 30 : 100;
const idlePings = quick ? 10 : 20;
const sections = new Set((option("--only") ?? "aead,tunnel,handshake,scale,startup").split(","));
const HS_PEERS = 256;
// Below go's under-load threshold (128 queued); --hs-window shows where another daemon's lies.
const HS_WINDOW = Number(option("--hs-window") ?? 32);

interface Variant {
  label: string;
  a: Implementation;
  b: Implementation;
}

function variants(): Variant[] {
  const requested = option("--impl")?.split(",") ?? ["wireguard-go", "ours"];
  const out: Variant[] = [];
  for (const spec of requested) {
    const [x, y = x] = spec.split(":") as [string, string?];
    const a = getImplementation(x);
    const b = getImplementation(y!);
    const why = a.unavailable() ?? b.unavailable();
    if (why) {
      notes.push(`${spec}: skipped (${why})`);
      continue;
    }
    out.push({ label: spec, a, b });
  }
  return out;
}

const notes: string[] = [];
const OBSERVATIONS = "## Observations (hand-written";
const log = (s: string) => process.stderr.write(s + "\n");

interface TunnelSample {
  ping: number;
  idlePing: number;
  one: ThroughputResult;
  four: ThroughputResult;
}

async function tunnelRound(v: Variant): Promise<TunnelSample> {
  const pair = await setupPair(v.a, v.b);
  try {
    const server = await startIperfServer(pair);
    try {
      const idlePing = pingMedianMs(pair, idlePings, 0.2);
      const ping = pingMedianMs(pair, pings, 0.01);
      const one = iperf(pair, 1, seconds);
      const four = iperf(pair, 4, seconds);
      return { ping, idlePing, one, four };
    } finally {
      await stopIperfServer(server);
    }
  } finally {
    await pair.teardown();
  }
}

async function handshakeRound(v: Variant): Promise<FloodResult & { daemonCores: number }> {
  const pair = await setupPair(v.a, v.b);
  const dir = mkdtempSync(join(tmpdir(), "wgb-hs-"));
  try {
    const privs = Array.from({ length: HS_PEERS }, () => generatePrivateKey());
    const conf = privs.map((p) => `[Peer]\nPublicKey = ${Buffer.from(publicKey(p)).toString("base64")}\n`).join("\n");
    nsRun(pair.b.ns, ["wg", "addconf", pair.b.iface, "/dev/stdin"], { input: conf });
    const params: FloodParams = {
      responderPublicKey: pair.b.publicKey,
      host: UNDERLAY_B,
      port: PORT,
      initiatorPrivateKeys: privs.map((p) => Buffer.from(p).toString("base64")),
      seconds: quick ? 2 : 4,
      window: HS_WINDOW,
    };
    const file = join(dir, "params.json");
    writeFileSync(file, JSON.stringify(params));
    const cpu0 = cpuSeconds(pair.b.daemon.pid);
    const t0 = performance.now();
    const r = nsRun(pair.a.ns, [process.execPath, join(import.meta.dir, "lib", "handshake.ts"), file], { timeoutMs: 60_000 });
    const daemonCores = (cpuSeconds(pair.b.daemon.pid) - cpu0) / ((performance.now() - t0) / 1000);
    return { ...(JSON.parse(r.stdout) as FloodResult), daemonCores };
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await pair.teardown();
  }
}

function timeCommand(cmd: string[], n: number): number {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    run(cmd);
    times.push(performance.now() - t);
  }
  return median(times);
}

function machine(): string {
  const cpu = /model name\s*:\s*(.*)/.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? "?";
  const kernel = run(["uname", "-r"]).stdout.trim();
  const nproc = run(["nproc"]).stdout.trim();
  const wgGo = run(["dpkg-query", "-W", "-f=${Version}", "wireguard-go"], { allowFail: true }).stdout.trim() || "?";
  return `nproc ${nproc}, CPU ${cpu}, kernel ${kernel}, bun ${Bun.version}, wireguard-go ${wgGo}`;
}

const ratio = (ours: number, base: number) => (Number.isFinite(ours) && Number.isFinite(base) && base !== 0 ? `${fmt(ours / base, 2)}x` : "-");

async function main(): Promise<void> {
  const started = new Date();
  const out: string[] = [];
  out.push(`# Benchmark results`, "", `Run ${started.toISOString()} (${quick ? "quick" : "full"} mode: ${rounds} rounds, ` +
    `iperf3 ${seconds} s + 1 s omitted, ${pings} pings 10 ms apart + ${idlePings} pings 200 ms apart).`, "", `Machine: ${machine()}`, "",
    "Numbers are noisy: the machine has 2 cores shared by both daemons, iperf3, the load generator and " +
    "whatever else runs at the time (other work was often running). Compare implementations only within one run.", "");

  if (sections.has("aead")) {
    log("aead: noble vs libcrypto, 1420-byte packets");
    const rows: string[][] = [];
    const backends = [nobleAead, loadOpenSslAead({ mode: "shim" }), loadOpenSslAead({ mode: "evp" })];
    for (const b of backends) {
      if (!b) continue;
      for (const r of benchBackend(b, 1420)) rows.push([r.backend, r.op, fmt(r.mbPerSec, 0), fmt(r.nsPerPacket, 0)]);
    }
    out.push("## AEAD (ChaCha20-Poly1305, 1420-byte packets, one core, in place)", "",
      table(["backend", "op", "MB/s", "ns/packet"], rows), "");
  }

  const vs = sections.has("tunnel") || sections.has("handshake") || sections.has("scale") ? variants() : [];
  const base = vs[0];

  if (sections.has("tunnel") && vs.length > 0) {
    const samples = new Map<string, TunnelSample[]>(vs.map((v) => [v.label, []]));
    const broken = new Set<string>();
    for (let r = 0; r < rounds; r++) {
      for (const v of vs) {
        if (broken.has(v.label)) continue;
        log(`tunnel round ${r + 1}/${rounds}: ${v.label}`);
        try {
          samples.get(v.label)!.push(await tunnelRound(v));
        } catch (e) {
          broken.add(v.label);
          notes.push(`tunnel ${v.label}: ${(e as Error).message}`);
          log(`  failed: ${(e as Error).message}`);
        }
      }
    }
    const med = (label: string, f: (s: TunnelSample) => number) => median((samples.get(label) ?? []).map(f));
    const metrics: [string, (s: TunnelSample) => number, number][] = [
      ["TCP 1 stream (Mbit/s)", (s) => s.one.mbps, 0],
      ["TCP 4 streams (Mbit/s)", (s) => s.four.mbps, 0],
      [`ping median RTT, ${pings} pings 10 ms apart (ms)`, (s) => s.ping, 3],
      [`ping median RTT, ${idlePings} pings 200 ms apart (ms)`, (s) => s.idlePing, 3],
      ["daemon CPU, 1 stream (cores, both daemons)", (s) => s.one.daemonCores, 2],
      ["  sender daemon A (cores)", (s) => s.one.coresA, 2],
      ["  receiver daemon B (cores)", (s) => s.one.coresB, 2],
      ["daemon CPU per Gbit, 1 stream (core-s/Gbit)", (s) => s.one.cpuSecPerGbit, 2],
      ["daemon CPU per Gbit, 4 streams (core-s/Gbit)", (s) => s.four.cpuSecPerGbit, 2],
      ["TCP retransmits, 1 stream", (s) => s.one.retransmits, 0],
    ];
    const header = ["metric (median)", ...vs.map((v) => v.label), ...vs.slice(1).map((v) => `${v.label} / ${base!.label}`)];
    const rows = metrics.map(([name, f, d]) => [
      name,
      ...vs.map((v) => fmt(med(v.label, f), d)),
      ...vs.slice(1).map((v) => ratio(med(v.label, f), med(base!.label, f))),
    ]);
    rows.push(["rounds completed", ...vs.map((v) => String(samples.get(v.label)!.length)), ...vs.slice(1).map(() => "")]);
    out.push(`## Tunnel (iperf3 TCP A->B, ping A->B; rounds alternate ${vs.map((v) => v.label).join(" ")})`, "",
      table(header, rows), "");
  }

  if (sections.has("handshake") && vs.length > 0) {
    const res = new Map<string, (FloodResult & { daemonCores: number })[]>(vs.map((v) => [v.label, []]));
    for (let r = 0; r < Math.min(rounds, 2); r++) {
      for (const v of vs) {
        log(`handshake round ${r + 1}: ${v.label}`);
        try {
          res.get(v.label)!.push(await handshakeRound(v));
        } catch (e) {
          notes.push(`handshake ${v.label}: ${(e as Error).message}`);
          log(`  failed: ${(e as Error).message}`);
        }
      }
    }
    const med = (label: string, f: (x: FloodResult & { daemonCores: number }) => number) =>
      median((res.get(label) ?? []).map(f));
    const rows = vs.map((v) => [
      v.label,
      fmt(med(v.label, (x) => x.responsesPerSec), 0),
      fmt(med(v.label, (x) => (x.responses + x.cookies) / x.seconds), 0),
      fmt(med(v.label, (x) => x.cookies), 0),
      fmt(med(v.label, (x) => x.timeouts), 0),
      fmt(med(v.label, (x) => x.daemonCores), 2),
      v === base ? "" : ratio(med(v.label, (x) => x.responsesPerSec), med(base!.label, (x) => x.responsesPerSec)),
    ]);
    out.push(`## Handshakes answered (${HS_PEERS} initiator identities, ${HS_WINDOW} outstanding, generator on the same cores)`, "",
      table(["implementation", "responses/s", "answers/s (incl. cookies)", "cookie replies", "timeouts", "responder CPU (cores)", "vs base"], rows), "");
  }

  if (sections.has("scale") && vs.length > 0) {
    const rows: string[][] = [];
    const seen = new Set<string>();
    for (const v of vs) {
      if (seen.has(v.b.name)) continue;
      seen.add(v.b.name);
      log(`scale: ${v.b.name} with 10,000 peers / 100,000 allowed IPs`);
      try {
        const s: ScaleResult = await measureScale(v.b);
        rows.push([v.b.name, fmt(s.idleRssMiB, 1), fmt(s.setconfSec, 2), s.loadedBy, fmt(s.loadedRssMiB, 1), fmt(s.dumpSec, 3), String(s.dumpLines)]);
        if (s.note) notes.push(`scale ${v.b.name}: ${s.note}`);
      } catch (e) {
        notes.push(`scale ${v.b.name}: ${(e as Error).message}`);
        log(`  failed: ${(e as Error).message}`);
      }
    }
    out.push("## Scale (one interface; `wg setconf` of 10,000 peers with 10 /32 allowed IPs each)", "",
      table(["implementation", "idle RSS (MiB)", "load (s)", "loaded by", "RSS loaded (MiB)", "`wg show dump` (s)", "dump lines"], rows), "");
  }

  if (sections.has("startup")) {
    const rows: string[][] = [];
    const n = quick ? 5 : 10;
    const dist = compiledWg();
    const label = process.env.WGB_COMPILED_WG ? "compiled wg genkey (--build copy)" : "dist/wg genkey (compiled)";
    if (existsSync(dist)) rows.push([label, fmt(timeCommand([dist, "genkey"], n), 1)]);
    else notes.push("startup: dist/wg absent (run `bun run build` or pass --build); compiled start-up not measured");
    rows.push(["/usr/bin/wg genkey (C, reference)", fmt(timeCommand(["wg", "genkey"], n), 1)]);
    if (existsSync(join(ROOT, "cmd", "wg.ts"))) {
      rows.push(["bun cmd/main.ts wg genkey (source)", fmt(timeCommand([process.execPath, join(ROOT, "cmd", "main.ts"), "wg", "genkey"], n), 1)]);
    }
    out.push(`## Start-up (median wall time of ${n} runs)`, "", table(["command", "ms"], rows), "");
  }

  if (notes.length) out.push("## Notes", "", ...notes.map((n) => `* ${n}`), "");
  const text = out.join("\n");
  process.stdout.write(text + "\n");
  if (flag("--write") || (!quick && !flag("--no-write"))) {
    // A hand-written section at the end of the file survives re-runs (it explains, the run measures).
    const file = join(import.meta.dir, "RESULTS.md");
    const old = existsSync(file) ? readFileSync(file, "utf8") : "";
    const keep = old.indexOf(OBSERVATIONS);
    writeFileSync(file, text + (keep >= 0 ? "\n" + old.slice(keep) : ""));
  }
}

for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.on(sig, () => {
    cleanupAll().finally(() => process.exit(130));
  });
}
let buildDir: string | null = null;
try {
  if (flag("--build") && !process.env.WGB_COMPILED_WG && !existsSync(join(ROOT, "dist", "wg"))) {
    buildDir = mkdtempSync(join(tmpdir(), "wgb-build-"));
    const exe = join(buildDir, "wg");
    log("building a private compiled executable (--build)");
    const r = run(compileCommand(exe), { timeoutMs: 300_000, allowFail: true });
    if (r.code === 0) process.env.WGB_COMPILED_WG = exe;
    else notes.push(`--build failed: ${(r.stderr.match(/error: .*/)?.[0] ?? r.stderr.trim()).slice(0, 200)}`);
  }
  await main();
} finally {
  await cleanupAll();
  cleanupImpls();
  if (buildDir) rmSync(buildDir, { recursive: true, force: true });
}
