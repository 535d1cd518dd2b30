// `wg exporter [--listen ADDR:PORT] [--friendly-names FILE] [IFACE...]` (extension; the real wg
// answers "Invalid subcommand"): serves the interfaces' counters and handshakes as Prometheus
// metrics at http://ADDR:PORT/metrics, under prometheus_wireguard_exporter's names. Loopback
// only unless --listen says otherwise.
import { readFileSync } from "node:fs";
import type { ArgsDef } from "citty";
import { inetPton4, inetPton6 } from "../core/inet.ts";
import { parseFriendlyNames } from "../core/tools/metrics.ts";
import { serveMetrics } from "../platform/metrics-server.ts";
import { parseOwnArgs, usageError } from "./cli.ts";

/** prometheus_wireguard_exporter's port, so existing scrape configs only change the host. */
export const DEFAULT_LISTEN = "127.0.0.1:9586";

const ARGS = {
  interfaces: {
    type: "positional",
    required: false,
    description: "Interfaces to report (default: every WireGuard interface present at each scrape)",
  },
  listen: {
    type: "string",
    valueHint: "ADDR:PORT",
    default: DEFAULT_LISTEN,
    description: "Address to serve on, `[V6]:PORT` for IPv6; port 0 picks a free one",
  },
  "friendly-names": {
    type: "string",
    valueHint: "FILE",
    description: "A wg config file whose `# friendly_name=NAME` lines in [Peer] sections label those peers",
  },
} as const satisfies ArgsDef;

/** `ADDR:PORT` or `[V6]:PORT` with a numeric address; null when it is not one. */
export function parseListen(text: string): { hostname: string; port: number } | null {
  const m = /^(?:\[([^\]]+)\]|([^:\[\]]+)):(\d{1,5})$/.exec(text);
  if (!m) return null;
  const hostname = m[1] ?? m[2]!;
  const port = Number(m[3]);
  if (port > 65535) return null;
  if (m[1] !== undefined ? !inetPton6(hostname) : !inetPton4(hostname)) return null;
  return { hostname, port };
}

export async function wgExporterMain(argv0: string, args: string[]): Promise<number> {
  const name = `${argv0} exporter`;
  const parsed = await parseOwnArgs(name, "Serve Prometheus metrics of WireGuard interfaces over HTTP", ARGS, args);
  if (typeof parsed === "number") return parsed;
  const listen = parseListen(parsed.listen);
  if (!listen) return usageError(name, `--listen wants ADDR:PORT or [V6]:PORT with a numeric address: \`${parsed.listen}'`);
  let friendlyNames = new Map<string, string>();
  const namesFile = parsed["friendly-names"];
  if (namesFile !== undefined) {
    try {
      friendlyNames = parseFriendlyNames(readFileSync(namesFile, "utf8"));
    } catch (e) {
      process.stderr.write(`${name}: ${namesFile}: ${(e as Error).message}\n`);
      return 1;
    }
  }
  let server;
  try {
    server = serveMetrics({ ...listen, interfaces: parsed._, friendlyNames });
  } catch (e) {
    process.stderr.write(`${name}: cannot listen on ${parsed.listen}: ${(e as Error).message}\n`);
    return 1;
  }
  process.stderr.write(`${name}: serving ${server.url}\n`);
  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  await server.stop();
  return 0;
}
