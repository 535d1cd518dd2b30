// The tunnel daemon, wireguard-go style: `daemon [-f|--foreground] INTERFACE-NAME`.
// Without -f the launcher re-runs this same command line in the background and returns only once
// the child reports that the TUN link and the UAPI socket exist (wg-quick's next command is
// `wg setconf`, which needs both). LOG_LEVEL=debug|verbose|error|silent picks what is printed.

import { openSync } from "node:fs";
import { READY_ENV, launchDaemon } from "./launch.ts";
import { DEFAULT_MTU, type Clock, type DeviceEvent } from "../core/device-api.ts";
import type { Device } from "../core/device.ts";
import { formatEndpoint } from "../core/peer.ts";
import { eventLine } from "../core/tools/events.ts";
import { setAead, setDh, setHash } from "../core/crypto.ts";
import { LinuxIO, type LogLevel } from "../platform/linux/io-loop.ts";
import { libc } from "../platform/linux/libc.ts";
import { Tun } from "../platform/linux/tun.ts";
import { listenUapi, socketInode, type UapiListener } from "../platform/linux/uapi-listener.ts";
import { socketPath } from "../platform/socket-path.ts";
import { NetnsSwitch } from "../platform/linux/netns.ts";
import { EndpointReresolver, RERESOLVE_DEFAULT_INTERVAL_MS, parseHostnameEndpoint, type HostnameEndpoint } from "../platform/reresolve.ts";

const VERSION = "0.1.0";

/** One line of the event stream (core/tools/events.ts) for an event of our engine. */
export function daemonEventLine(iface: string, ev: DeviceEvent, dev: Device, nowWallMs = Date.now()): string {
  const peer = ev.type === "peer-removed" ? undefined : dev.peers.get(ev.publicKey);
  const endpoint = "endpoint" in ev ? ev.endpoint : null;
  const iso = (ms: number) => new Date(ms).toISOString();
  return eventLine(iface, ev.type, Buffer.from(ev.publicKey, "hex").toString("base64"), endpoint, peer?.lastHandshakeWallMs ?? 0, nowWallMs, iso);
}

function usage(prog: string): void {
  // First line as wireguard-go prints it; our extensions follow.
  process.stderr.write(
    `Usage: ${prog} [-f/--foreground] INTERFACE-NAME\n` +
      `Options beyond wireguard-go:\n` +
      `  --udp-netns NAME|PATH                 create the UDP socket in that network namespace\n` +
      `  --endpoint-hostname PUBKEY=HOST:PORT  look HOST up again while the peer's handshake is stale (repeatable)\n` +
      `  --reresolve-dns[=SECONDS]             how often to check (default 30; also WG_RERESOLVE_DNS)\n`,
  );
}

/** Options beyond wireguard-go's command line. */
export interface DaemonOptions {
  /** Create the UDP socket in this network namespace (name in /var/run/netns, or a path). */
  udpNetns?: string;
  /** Hostnames to look up again for peers whose handshakes have gone stale. */
  hostnames?: HostnameEndpoint[];
  /** Re-resolution check interval; set by --reresolve-dns[=SECONDS] or WG_RERESOLVE_DNS. */
  reresolveIntervalMs?: number;
}

/** `1`/`true`/empty: the default interval; a number: that many seconds; else null. */
function parseReresolve(v: string): number | null {
  if (v === "" || v === "1" || v === "true" || v === "yes") return RERESOLVE_DEFAULT_INTERVAL_MS;
  if (/^[0-9]+(\.[0-9]+)?s?$/.test(v) && parseFloat(v) > 0) return parseFloat(v) * 1000;
  return null;
}

function parseLevel(s: string | undefined): LogLevel {
  switch (s) {
    case "verbose":
    case "debug":
      return "debug";
    case "error":
      return "error";
    case "silent":
      return "silent";
    default:
      return "error";
  }
}

function stamp(): string {
  const d = new Date();
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}/${p(d.getMonth() + 1)}/${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

function makeLogger(iface: string, level: LogLevel) {
  const verbose = level === "debug" || level === "verbose";
  const errors = level !== "silent";
  return (lvl: "error" | "verbose" | "debug", msg: string) => {
    if (lvl === "error" ? !errors : !verbose) return;
    const tag = lvl === "error" ? "ERROR" : "DEBUG";
    process.stdout.write(`${tag}: (${iface}) ${stamp()} ${msg}\n`);
  };
}

/** argv = the words after the subcommand. Returns the exit status. */
export async function daemonMain(argv: string[]): Promise<number> {
  const prog = "wg daemon";
  let foreground = process.env.WG_PROCESS_FOREGROUND === "1";
  let iface: string | undefined;
  const opts: DaemonOptions = {};
  if (argv.length === 1 && (argv[0] === "--version" || argv[0] === "-v")) {
    process.stdout.write(`wgts daemon v${VERSION}\n\nUserspace WireGuard daemon for Linux (TypeScript on Bun).\n`);
    return 0;
  }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "-f" || a === "--foreground") foreground = true;
    else if (a === "--udp-netns" && i + 1 < argv.length && argv[i + 1] !== "") opts.udpNetns = argv[++i]!;
    else if (a.startsWith("--udp-netns=") && a.length > 12) opts.udpNetns = a.slice(12);
    else if (a === "--endpoint-hostname" || a.startsWith("--endpoint-hostname=")) {
      const spec = a === "--endpoint-hostname" ? argv[++i] : a.slice(20);
      const h = spec === undefined ? null : parseHostnameEndpoint(spec);
      if (h === null) {
        process.stderr.write(`${prog}: --endpoint-hostname wants PUBKEY=HOST:PORT (base64 key), got: ${spec ?? ""}\n`);
        return 1;
      }
      (opts.hostnames ??= []).push(h);
    } else if (a === "--reresolve-dns" || a.startsWith("--reresolve-dns=")) {
      const ms = parseReresolve(a === "--reresolve-dns" ? "" : a.slice(16));
      if (ms === null) {
        usage(prog);
        return 1;
      }
      opts.reresolveIntervalMs = ms;
    }
    else if (iface === undefined && !a.startsWith("-")) iface = a;
    else {
      usage(prog);
      return 1;
    }
  }
  if (iface === undefined || iface.length === 0 || iface.length >= 16 || iface.includes("/")) {
    usage(prog);
    return 1;
  }
  const envReresolve = process.env.WG_RERESOLVE_DNS;
  if (opts.reresolveIntervalMs === undefined && envReresolve !== undefined && envReresolve !== "0") {
    opts.reresolveIntervalMs = parseReresolve(envReresolve) ?? undefined;
  }
  const level = parseLevel(process.env.LOG_LEVEL);
  if (!foreground) {
    // Re-run our own command line detached. Under `bun script.ts` argv[1] is the script; a
    // compiled executable has a virtual path there.
    const a1 = process.argv[1] ?? "";
    const cmd = a1 === "" || a1.startsWith("/$bunfs/") ? process.argv.slice(2) : process.argv.slice(1);
    return launchDaemon([process.execPath, ...cmd], process.argv0);
  }
  return runForeground(iface, level, opts);
}

async function runForeground(iface: string, level: LogLevel, opts: DaemonOptions = {}): Promise<number> {
  const log = makeLogger(iface, level);
  log("verbose", `Starting wgts daemon version ${VERSION}`);
  // Opened before the TUN exists so a wrong namespace fails the start, not the first bind.
  let udpNetns: NetnsSwitch | null = null;
  if (opts.udpNetns !== undefined) {
    try {
      udpNetns = new NetnsSwitch(opts.udpNetns);
    } catch (e) {
      log("error", `Failed to open UDP network namespace ${opts.udpNetns}: ${(e as Error).message}`);
      return 1;
    }
  }
  let tun: Tun;
  try {
    tun = Tun.open(iface);
  } catch (e) {
    log("error", `Failed to create TUN device: ${(e as Error).message}`);
    return 1;
  }
  try {
    tun.setMtu(DEFAULT_MTU);
  } catch (e) {
    log("error", `Failed to set MTU: ${(e as Error).message}`);
  }

  // WG_CRYPTO=noble keeps the pure-TypeScript fallback (what runs where libcrypto is missing).
  if (process.env.WG_CRYPTO === "noble") log("verbose", "AEAD, X25519 and BLAKE2s backends: noble (WG_CRYPTO=noble)");
  else await loadNativeCrypto(log);

  const clock: Clock = { mono: () => performance.now(), wall: () => Date.now() };
  let uapi: UapiListener | null = null;
  // The JIT warm-up waits for configuration to settle (see below); requests push it back.
  let onUapi = () => {};
  let engine: Device | null = null;
  // Event stream subscribers (UAPI extension `events=1`); lines are only built when someone listens.
  const subscribers = new Set<(line: string) => boolean>();
  const onEvent = (ev: DeviceEvent) => {
    if (subscribers.size === 0 || engine === null) return;
    const line = daemonEventLine(iface, ev, engine) + "\n";
    for (const write of subscribers) write(line);
  };
  const io = new LinuxIO(tun, { log, onEvent });
  if (udpNetns !== null) {
    const ns = udpNetns;
    io.udp.createIn = (make) => ns.run(make);
    log("verbose", `UDP sockets live in network namespace ${ns.spec}`);
  }
  try {
    const { createDevice } = await import("../core/device.ts");
    engine = createDevice(io, clock, { mtu: DEFAULT_MTU, deferHandshakes: true });
    io.attach(engine);
    log("verbose", "Device started");
    uapi = listenUapi(socketPath(iface), (req) => (onUapi(), io.uapi(req)), (m) => log("error", m), {
      subscribe(write) {
        subscribers.add(write);
        return () => subscribers.delete(write);
      },
    });
    log("verbose", "UAPI listener started");
  } catch (e) {
    log("error", `Failed to start: ${(e as Error).message}`);
    uapi?.close();
    engine?.close();
    tun.close();
    return 1;
  }

  const path = uapi.path;
  const ino = socketInode(path);
  const stop = (reason: string) => io.stop(reason);
  const onSig = () => stop("signal");
  process.on("SIGINT", onSig);
  process.on("SIGTERM", onSig);
  // wireguard-go exits when its socket file is removed or replaced.
  const watch = setInterval(() => {
    if (socketInode(path) !== ino) stop("UAPI socket removed");
  }, 1000);

  const notify = Number(process.env[READY_ENV] ?? 0);
  delete process.env[READY_ENV];
  if (notify > 0) {
    if (process.env.LOG_LEVEL === undefined || process.env.LOG_LEVEL === "silent") {
      // Detached and quiet like wireguard-go: nothing of ours reaches the launcher's terminal.
      const devnull = openSync("/dev/null", "r+");
      libc.dup2(devnull, 1);
      libc.dup2(devnull, 2);
    }
    try {
      process.kill(notify, "SIGUSR1");
    } catch {}
  }

  // Off unless hostnames were given; --reresolve-dns/WG_RERESOLVE_DNS only tune the interval.
  let reresolver: EndpointReresolver | null = null;
  if (opts.hostnames && opts.hostnames.length > 0) {
    const dev = engine;
    reresolver = new EndpointReresolver(opts.hostnames, {
      intervalMs: opts.reresolveIntervalMs,
      peer(hex) {
        const p = dev.peers.get(hex);
        if (p === undefined) return null;
        return { endpoint: p.endpoint ? formatEndpoint(p.endpoint) : null, lastHandshakeWallMs: p.lastHandshakeWallMs };
      },
      setEndpoint(hex, endpoint) {
        const r = io.uapi(`set=1\npublic_key=${hex}\nupdate_only=true\nendpoint=${endpoint}\n\n`);
        if (r.response !== "errno=0\n\n") log("error", `Setting re-resolved endpoint ${endpoint} failed: ${r.response.trim()}`);
      },
      log,
    });
    reresolver.start();
    log("verbose", `Re-resolving ${opts.hostnames.length} endpoint hostname(s) every ${reresolver.intervalMs / 1000} s while stale`);
  }

  // Get the data path JIT-compiled before real traffic needs it, in slices between which the
  // event loop serves packets, UAPI and timers: through a private pair of engines and I/O loops
  // over loopback when it is up, else through the engines alone. WG_WARMUP_PACKETS=0 turns it off.
  // It starts once UAPI has been quiet for WARM_QUIET_MS (at most WARM_MAX_DELAY_MS after start):
  // `wg-quick up` configures the daemon right after it reports ready, and its setconf and
  // `wg show` waited behind the warm-up's set-up and slices (measured: up 370 -> 300 ms without).
  const warmPackets = Number(process.env.WG_WARMUP_PACKETS ?? 3000);
  if (warmPackets > 0) {
    const WARM_QUIET_MS = 150;
    const WARM_MAX_DELAY_MS = 1000;
    const { warmUpIo } = await import("../platform/linux/io-warmup.ts");
    const { warmUp } = await import("../core/warmup.ts");
    const begin = () => {
      onUapi = () => {};
      let kind = "I/O";
      const ioStep = warmUpIo(Math.ceil(warmPackets / 2), 25, clock);
      let step = ioStep ?? ((kind = "engine"), warmUp(warmPackets, 50));
      const started = performance.now();
      let delivered = 0;
      const slice = () => {
        const r = step();
        if (r >= 0) {
          delivered = r;
          // Loopback that carries nothing (down, filtered) warms nothing: use the engine pair.
          if (step === ioStep && r === 0) {
            while (ioStep() >= 0);
            kind = "engine";
            step = warmUp(warmPackets, 50);
          }
          setTimeout(slice, 1);
        } else log("debug", `JIT warm-up (${kind}) done in ${(performance.now() - started).toFixed(0)} ms, ${delivered} packets delivered`);
      };
      slice();
    };
    const latest = performance.now() + WARM_MAX_DELAY_MS;
    let timer = setTimeout(begin, WARM_QUIET_MS);
    onUapi = () => {
      clearTimeout(timer);
      timer = setTimeout(begin, Math.max(0, Math.min(WARM_QUIET_MS, latest - performance.now())));
    };
  }

  const reason = await io.start();
  reresolver?.stop();
  log("verbose", `Shutting down (${reason})`);
  clearInterval(watch);
  process.off("SIGINT", onSig);
  process.off("SIGTERM", onSig);
  uapi.close();
  engine.close();
  io.udp.close();
  udpNetns?.close();
  tun.close();
  log("verbose", "Device closed");
  return 0;
}

/** Plugs libcrypto in behind the core's crypto seams where it loads; noble stays otherwise. */
async function loadNativeCrypto(log: (level: "error" | "verbose" | "debug", msg: string) => void): Promise<void> {
  try {
    const { loadOpenSslAead } = await import("../platform/linux/aead-openssl.ts");
    const native = loadOpenSslAead();
    if (native) setAead(native);
    log("verbose", `AEAD backend: ${native ? native.name : "noble (libcrypto unavailable)"}`);
  } catch (e) {
    log("verbose", `AEAD backend: noble (${(e as Error).message})`);
  }
  try {
    const { loadOpenSslX25519 } = await import("../platform/linux/x25519-openssl.ts");
    const native = loadOpenSslX25519();
    if (native) setDh(native);
    log("verbose", `X25519 backend: ${native ? native.name : "noble (libcrypto unavailable)"}`);
  } catch (e) {
    log("verbose", `X25519 backend: noble (${(e as Error).message})`);
  }
  try {
    const { loadOpenSslHash } = await import("../platform/linux/hash-openssl.ts");
    const native = loadOpenSslHash();
    if (native) setHash(native);
    log("verbose", `BLAKE2s backend: ${native ? native.name : "noble (libcrypto unavailable)"}`);
  } catch (e) {
    log("verbose", `BLAKE2s backend: noble (${(e as Error).message})`);
  }
}
