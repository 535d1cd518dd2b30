// The daemon's command line: `wg daemon [-f|--foreground] [--udp-netns NAME|PATH]
// [--endpoint-hostname PUBKEY=HOST:PORT]... [--reresolve-dns[=SECONDS]] INTERFACE-NAME`.
// citty holds the grammar and generates --help; a usage error prints wireguard-go's usage line.
import { defineCommand, type ArgsDef } from "citty";
import { helpText, parseStrict } from "./cli.ts";
import { RERESOLVE_DEFAULT_INTERVAL_MS, parseHostnameEndpoint, type HostnameEndpoint } from "../platform/reresolve.ts";

export const VERSION = "0.1.0";

/**
 * The grammar, for citty's parse and its generated `--help`. The two options citty cannot
 * express are taken out of argv before it parses (takeRepeatables): --endpoint-hostname may be
 * given several times and --reresolve-dns has an optional value.
 */
const DAEMON_ARGS = {
  "interface-name": { type: "positional", required: true, description: "the TUN interface to create and serve, as `wireguard-go INTERFACE-NAME`" },
  foreground: { type: "boolean", alias: "f", description: "stay in the foreground (else return once the interface and its socket exist)" },
  "udp-netns": { type: "string", valueHint: "NAME|PATH", description: "create the UDP socket in that network namespace" },
  "endpoint-hostname": { type: "string", valueHint: "PUBKEY=HOST:PORT", description: "look HOST up again while the peer's handshake is stale (repeatable)" },
  "reresolve-dns": {
    type: "string",
    valueHint: "SECONDS",
    description: `how often to check; =SECONDS is optional (default ${RERESOLVE_DEFAULT_INTERVAL_MS / 1000}; also WG_RERESOLVE_DNS)`,
  },
} as const satisfies ArgsDef;

const daemonCommand = defineCommand({
  meta: { name: "wg daemon", version: VERSION, description: "Userspace WireGuard daemon for Linux" },
  args: DAEMON_ARGS,
});

/** wireguard-go's usage line (on stderr, exit 1); the options beyond it are in --help. */
export const USAGE = `Usage: wg daemon [-f/--foreground] INTERFACE-NAME\nOptions beyond wireguard-go: wg daemon --help\n`;

/** Options beyond wireguard-go's command line. */
export interface DaemonOptions {
  /** Create the UDP socket in this network namespace (name in /var/run/netns, or a path). */
  udpNetns?: string;
  /** Hostnames to look up again for peers whose handshakes have gone stale. */
  hostnames?: HostnameEndpoint[];
  /** Re-resolution check interval; set by --reresolve-dns[=SECONDS] or WG_RERESOLVE_DNS. */
  reresolveIntervalMs?: number;
}

/** A parsed command line; `usage` for words outside the grammar, `error` for a bad option value. */
export type DaemonCommandLine =
  | { iface: string; foreground: boolean; opts: DaemonOptions }
  | { usage: true }
  | { error: string };

/** The interval in ms: empty (a bare --reresolve-dns) is the default; SECONDS is a positive number, an `s` after it allowed; else null. */
function parseReresolve(v: string): number | null {
  if (v === "") return RERESOLVE_DEFAULT_INTERVAL_MS;
  if (/^[0-9]+(\.[0-9]+)?s?$/.test(v) && parseFloat(v) > 0) return parseFloat(v) * 1000;
  return null;
}

/** Takes every --endpoint-hostname SPEC / =SPEC and --reresolve-dns[=SECONDS] out of argv. */
function takeRepeatables(argv: string[]): { rest: string[]; hostnames: (string | undefined)[]; reresolve: string[] } {
  const rest: string[] = [];
  const hostnames: (string | undefined)[] = [];
  const reresolve: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--endpoint-hostname") hostnames.push(argv[++i]);
    else if (a.startsWith("--endpoint-hostname=")) hostnames.push(a.slice(20));
    else if (a === "--reresolve-dns") reresolve.push("");
    else if (a.startsWith("--reresolve-dns=")) reresolve.push(a.slice(16));
    else rest.push(a);
  }
  return { rest, hostnames, reresolve };
}

/** Parses the words after `daemon` (without --help and --version, which daemonMain answers). */
export function parseDaemonArgs(argv: string[], env: Record<string, string | undefined> = process.env): DaemonCommandLine {
  const { rest, hostnames, reresolve } = takeRepeatables(argv);
  const opts: DaemonOptions = {};
  for (const spec of hostnames) {
    const h = spec === undefined ? null : parseHostnameEndpoint(spec);
    if (h === null) return { error: `wg daemon: --endpoint-hostname wants PUBKEY=HOST:PORT (base64 key), got: ${spec ?? ""}\n` };
    (opts.hostnames ??= []).push(h);
  }
  for (const v of reresolve) {
    const ms = parseReresolve(v);
    if (ms === null) return { usage: true };
    opts.reresolveIntervalMs = ms;
  }
  const args = parseStrict(rest, DAEMON_ARGS);
  if (args === null) return { usage: true };
  const netns = args["udp-netns"];
  if (netns !== undefined) {
    if (netns === "") return { usage: true };
    opts.udpNetns = netns;
  }
  const iface = args["interface-name"];
  if (iface === undefined || iface.length === 0 || iface.length >= 16 || iface.includes("/") || iface.startsWith("-")) return { usage: true };
  if (opts.reresolveIntervalMs === undefined && env.WG_RERESOLVE_DNS !== undefined) {
    opts.reresolveIntervalMs = parseReresolve(env.WG_RERESOLVE_DNS) ?? undefined;
  }
  return { iface, foreground: args.foreground === true || env.WG_PROCESS_FOREGROUND === "1", opts };
}

/** The help citty generates for the daemon. */
export function daemonHelp(): Promise<string> {
  return helpText(daemonCommand);
}
