// The tunnel daemon, wireguard-go style: `daemon [-f|--foreground] INTERFACE-NAME`.
// Without -f the launcher re-runs this same command line in the background and returns only once
// the child reports that the TUN link and the UAPI socket exist (wg-quick's next command is
// `wg setconf`, which needs both). LOG_LEVEL=debug|verbose|error|silent picks what is printed.
//
// This file wires the parts together in named steps (runForeground); the command line is
// daemon-args.ts's, the protocol core/'s and the I/O platform/'s.

import { READY_ENV, launchDaemon } from "./launch.ts";
import { selfCommand } from "./self.ts";
import { wantsHelp } from "./cli.ts";
import { USAGE, VERSION, daemonHelp, parseDaemonArgs, type DaemonOptions } from "./daemon-args.ts";
import { DEFAULT_MTU, type Clock, type DeviceEvent, type LogLevel, type Logger } from "../core/device-api.ts";
import type { Device } from "../core/device.ts";
import { formatEndpoint } from "../core/peer.ts";
import { eventLine } from "../core/tools/events.ts";
import { emptyDeviceConfig, emptyPeerConfig } from "../core/tools/containers.ts";
import { buildSetRequest, parseSetResponse } from "../core/tools/uapi.ts";
import { keyFromHex, keyToBase64 } from "../core/encoding.ts";
import { strerror } from "../core/errno.ts";
import { LinuxIO } from "../platform/linux/io-loop.ts";
import { detachStdio } from "../platform/linux/stdio.ts";
import { Tun } from "../platform/linux/tun.ts";
import { listenUapi, socketInode, type UapiListener } from "../platform/linux/uapi-listener.ts";
import { socketPath } from "../platform/socket-path.ts";
import { NetnsSwitch } from "../platform/linux/netns.ts";
import { EndpointReresolver } from "../platform/reresolve.ts";

/** One line of the event stream (core/tools/events.ts) for an event of our engine. */
function daemonEventLine(iface: string, ev: DeviceEvent, dev: Device): string {
  const peer = ev.type === "peer-removed" ? undefined : dev.peers.get(ev.publicKey);
  const endpoint = "endpoint" in ev ? ev.endpoint : null;
  const iso = (ms: number) => new Date(ms).toISOString();
  return eventLine(iface, ev.type, keyToBase64(keyFromHex(ev.publicKey)!), endpoint, peer?.lastHandshakeWallMs ?? 0, Date.now(), iso);
}

/** argv = the words after the subcommand. Returns the exit status. */
export async function daemonMain(argv: string[]): Promise<number> {
  if (argv.length === 1 && (argv[0] === "--version" || argv[0] === "-v")) {
    process.stdout.write(`wgts daemon v${VERSION}\n\nUserspace WireGuard daemon for Linux (TypeScript on Bun).\n`);
    return 0;
  }
  if (wantsHelp(argv)) {
    process.stdout.write(await daemonHelp());
    return 0;
  }
  const cl = parseDaemonArgs(argv);
  if ("usage" in cl || "error" in cl) {
    process.stderr.write("error" in cl ? cl.error : USAGE);
    return 1;
  }
  if (!cl.foreground) {
    // The same command line again, detached (launchDaemon asks it to stay in the foreground).
    const self = selfCommand("daemon", argv);
    return launchDaemon(self.cmd, self.argv0);
  }
  return runForeground(cl.iface, parseLevel(process.env.LOG_LEVEL), cl.opts);
}

// ---------------------------------------------------------------------------------------------
// Logging

/** LOG_LEVEL: the least severe level printed, or none. */
type Verbosity = LogLevel | "silent";

function parseLevel(s: string | undefined): Verbosity {
  switch (s) {
    case "verbose":
    case "debug":
      return "debug";
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

function makeLogger(iface: string, level: Verbosity): Logger {
  const verbose = level === "debug" || level === "verbose";
  const errors = level !== "silent";
  return (lvl, msg) => {
    if (lvl === "error" ? !errors : !verbose) return;
    const tag = lvl === "error" ? "ERROR" : "DEBUG";
    process.stdout.write(`${tag}: (${iface}) ${stamp()} ${msg}\n`);
  };
}

// ---------------------------------------------------------------------------------------------
// Running in the foreground

/** A start-up step that failed: its message is logged and the daemon exits with status 1. */
class StartError extends Error {}

/** The engine, its I/O loop and its UAPI socket, once started. */
interface Running {
  io: LinuxIO;
  engine: Device;
  uapi: UapiListener;
  clock: Clock;
  /** Runs before every UAPI request is served (the warm-up waits for configuration to settle). */
  hook: { beforeRequest: () => void };
}

async function runForeground(iface: string, level: Verbosity, opts: DaemonOptions = {}): Promise<number> {
  const log = makeLogger(iface, level);
  log("verbose", `Starting wgts daemon version ${VERSION}`);
  let udpNetns: NetnsSwitch | null;
  let tun: Tun;
  let dev: Running;
  try {
    // Opened before the TUN exists so a wrong namespace fails the start, not the first bind.
    udpNetns = opts.udpNetns === undefined ? null : openUdpNetns(opts.udpNetns);
    tun = createTun(iface, log);
    await loadCrypto(log);
    dev = await startDevice(iface, tun, udpNetns, log);
  } catch (e) {
    if (!(e instanceof StartError)) throw e;
    log("error", e.message);
    return 1;
  }
  const unwatch = watchForStop(dev);
  reportReady();
  const reresolver = startReresolver(dev, opts, log);
  await scheduleWarmUp(dev, Number(process.env.WG_WARMUP_PACKETS ?? 3000), log);

  const reason = await dev.io.start();
  reresolver?.stop();
  log("verbose", `Shutting down (${reason})`);
  unwatch();
  dev.uapi.close();
  dev.engine.close();
  dev.io.udp.close();
  udpNetns?.close();
  tun.close();
  log("verbose", "Device closed");
  return 0;
}

function openUdpNetns(spec: string): NetnsSwitch {
  try {
    return new NetnsSwitch(spec);
  } catch (e) {
    throw new StartError(`Failed to open UDP network namespace ${spec}: ${(e as Error).message}`);
  }
}

function createTun(iface: string, log: Logger): Tun {
  let tun: Tun;
  try {
    tun = Tun.open(iface);
  } catch (e) {
    throw new StartError(`Failed to create TUN device: ${(e as Error).message}`);
  }
  try {
    tun.setMtu(DEFAULT_MTU);
  } catch (e) {
    log("error", `Failed to set MTU: ${(e as Error).message}`);
  }
  return tun;
}

/**
 * libcrypto behind the core's crypto seams where it loads. WG_CRYPTO=noble keeps the
 * pure-TypeScript fallback (what runs where libcrypto is missing).
 */
async function loadCrypto(log: Logger): Promise<void> {
  if (process.env.WG_CRYPTO === "noble") {
    log("verbose", "AEAD, X25519 and BLAKE2s backends: noble (WG_CRYPTO=noble)");
    return;
  }
  try {
    const { useNativeCrypto } = await import("../platform/linux/native-crypto.ts");
    for (const line of useNativeCrypto()) log("verbose", line);
  } catch (e) {
    log("verbose", `AEAD, X25519 and BLAKE2s backends: noble (${(e as Error).message})`);
  }
}

/** The engine on its I/O loop, configured and watched through the UAPI socket. */
async function startDevice(iface: string, tun: Tun, udpNetns: NetnsSwitch | null, log: Logger): Promise<Running> {
  const clock: Clock = { mono: () => performance.now(), wall: () => Date.now() };
  let engine: Device | null = null;
  let uapi: UapiListener | null = null;
  // Event stream subscribers (UAPI extension `events=1`); lines are only built when someone listens.
  const subscribers = new Set<(line: string) => boolean>();
  const onEvent = (ev: DeviceEvent) => {
    if (subscribers.size === 0 || engine === null) return;
    const line = daemonEventLine(iface, ev, engine) + "\n";
    for (const write of subscribers) write(line);
  };
  const io = new LinuxIO(tun, { log, onEvent });
  if (udpNetns !== null) {
    io.udp.createIn = (make) => udpNetns.run(make);
    log("verbose", `UDP sockets live in network namespace ${udpNetns.spec}`);
  }
  try {
    const { createDevice } = await import("../core/device.ts");
    engine = createDevice(io, clock, { mtu: DEFAULT_MTU, deferHandshakes: true });
    io.attach(engine);
    log("verbose", "Device started");
    const hook = { beforeRequest: () => {} };
    uapi = listenUapi(socketPath(iface), (req) => (hook.beforeRequest(), io.uapi(req)), (m) => log("error", m), {
      subscribe(write) {
        subscribers.add(write);
        return () => subscribers.delete(write);
      },
    });
    log("verbose", "UAPI listener started");
    return { io, engine, uapi, clock, hook };
  } catch (e) {
    uapi?.close();
    engine?.close();
    tun.close();
    throw new StartError(`Failed to start: ${(e as Error).message}`);
  }
}

/**
 * Stops the loop on SIGINT/SIGTERM and, as wireguard-go does, when the socket file is removed or
 * replaced. Returns the function that stops watching.
 */
function watchForStop(dev: Running): () => void {
  const path = dev.uapi.path;
  const ino = socketInode(path);
  const onSig = () => dev.io.stop("signal");
  process.on("SIGINT", onSig);
  process.on("SIGTERM", onSig);
  const watch = setInterval(() => {
    if (socketInode(path) !== ino) dev.io.stop("UAPI socket removed");
  }, 1000);
  return () => {
    clearInterval(watch);
    process.off("SIGINT", onSig);
    process.off("SIGTERM", onSig);
  };
}

/** Tells the launcher (cmd/launch.ts), if one waits, that the link and the socket exist. */
function reportReady(): void {
  const notify = Number(process.env[READY_ENV] ?? 0);
  delete process.env[READY_ENV];
  if (notify <= 0) return;
  if (process.env.LOG_LEVEL === undefined || process.env.LOG_LEVEL === "silent") {
    // Detached and quiet like wireguard-go: nothing of ours reaches the launcher's terminal.
    detachStdio();
  }
  try {
    process.kill(notify, "SIGUSR1");
  } catch {}
}

/** Off unless hostnames were given; --reresolve-dns/WG_RERESOLVE_DNS only tune the interval. */
function startReresolver(dev: Running, opts: DaemonOptions, log: Logger): EndpointReresolver | null {
  if (!opts.hostnames || opts.hostnames.length === 0) return null;
  const { engine, io } = dev;
  const reresolver = new EndpointReresolver(opts.hostnames, {
    intervalMs: opts.reresolveIntervalMs,
    peer(hex) {
      const p = engine.peers.get(hex);
      if (p === undefined) return null;
      return { endpoint: p.endpoint ? formatEndpoint(p.endpoint) : null, lastHandshakeWallMs: p.lastHandshakeWallMs };
    },
    setEndpoint(hex, endpoint) {
      // update_only: a peer removed meanwhile stays removed.
      const peer = { ...emptyPeerConfig(), publicKey: keyFromHex(hex), updateOnly: true, endpoint };
      const errno = parseSetResponse(io.uapi(buildSetRequest({ ...emptyDeviceConfig(), peers: [peer] })).response);
      if (errno !== 0) log("error", `Setting re-resolved endpoint ${endpoint} failed: ${strerror(Math.abs(errno))}`);
    },
    log,
  });
  reresolver.start();
  log("verbose", `Re-resolving ${opts.hostnames.length} endpoint hostname(s) every ${reresolver.intervalMs / 1000} s while stale`);
  return reresolver;
}

/** UAPI quiet this long starts the warm-up... */
const WARM_QUIET_MS = 150;
/** ...and it starts at the latest this long after the daemon is ready. */
const WARM_MAX_DELAY_MS = 1000;

/**
 * Gets the data path JIT-compiled before real traffic needs it, in slices between which the event
 * loop serves packets, UAPI and timers: through a private pair of engines and I/O loops over
 * loopback when it is up, else through the engines alone. `packets` 0 (WG_WARMUP_PACKETS=0)
 * turns it off. It waits for UAPI to go quiet, because `wg-quick up` configures the daemon right
 * after it reports ready and those requests must not queue behind the warm-up.
 */
async function scheduleWarmUp(dev: Running, packets: number, log: Logger): Promise<void> {
  if (!(packets > 0)) return;
  const { warmUpIo } = await import("../platform/linux/io-warmup.ts");
  const { warmUp } = await import("../core/warmup.ts");
  const begin = () => {
    dev.hook.beforeRequest = () => {};
    let kind = "I/O";
    const ioStep = warmUpIo(Math.ceil(packets / 2), 25, dev.clock);
    let step = ioStep ?? ((kind = "engine"), warmUp(packets, 50));
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
          step = warmUp(packets, 50);
        }
        setTimeout(slice, 1);
      } else log("debug", `JIT warm-up (${kind}) done in ${(performance.now() - started).toFixed(0)} ms, ${delivered} packets delivered`);
    };
    slice();
  };
  const latest = performance.now() + WARM_MAX_DELAY_MS;
  let timer = setTimeout(begin, WARM_QUIET_MS);
  dev.hook.beforeRequest = () => {
    clearTimeout(timer);
    timer = setTimeout(begin, Math.max(0, Math.min(WARM_QUIET_MS, latest - performance.now())));
  };
}
