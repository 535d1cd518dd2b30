// `wg exporter`'s page: devices as read by the client library, in the Prometheus text exposition
// format 0.0.4 or in OpenMetrics 1.0.0, under the metric names and labels of
// prometheus_wireguard_exporter (so its dashboards and alerts work unchanged) plus two of ours.
// Only public keys appear: the device model carries private and preshared keys, and nothing here
// reads them.
import type { Device, Peer } from "./client.ts";
import { configLines, stripSpaces } from "./config.ts";
import { ONLINE_WINDOW_MS } from "./show.ts";

/** The two expositions: the text format 0.0.4 (every scraper reads it) and OpenMetrics 1.0.0. */
export type MetricsFormat = "text" | "openmetrics";

/** Each format's media type, as the Content-Type of its page. */
export const METRICS_CONTENT_TYPE: Readonly<Record<MetricsFormat, string>> = {
  text: "text/plain; version=0.0.4; charset=utf-8",
  openmetrics: "application/openmetrics-text; version=1.0.0; charset=utf-8",
};

/**
 * The format an Accept header asks for, as Prometheus's own client library negotiates it: its
 * media ranges by q (q=0 ones dropped), explicit types before wildcards at equal q, else as
 * listed; the first that is OpenMetrics 1.0.0 (or unversioned) picks OpenMetrics, the first that
 * is text/plain or a wildcard covering it picks the text format, as does a header naming neither.
 */
export function negotiateFormat(accept: string | null): MetricsFormat {
  const ranges: { format: MetricsFormat | null; q: number; wildcard: boolean }[] = [];
  for (const clause of (accept ?? "").split(",")) {
    const [type = "", ...params] = clause.split(";").map((s) => s.trim().toLowerCase());
    const param = (key: string) => params.find((p) => p.startsWith(key + "="))?.slice(key.length + 1).replace(/^"(.*)"$/, "$1");
    const q = Number(param("q") ?? 1);
    if (!(q > 0 && q <= 1)) continue;
    const version = param("version");
    const format =
      type === "application/openmetrics-text" ? (version === undefined || version === "1.0.0" ? "openmetrics" : null)
      : type === "text/plain" || type === "text/*" || type === "*/*" ? "text"
      : null;
    ranges.push({ format, q, wildcard: type.endsWith("/*") });
  }
  // Array.prototype.sort is stable: equal ranges keep the header's order.
  ranges.sort((a, b) => b.q - a.q || Number(a.wildcard) - Number(b.wildcard));
  return ranges.find((r) => r.format !== null)?.format ?? "text";
}

/** Public key (base64) -> the name a config file gives that peer. */
export type FriendlyNames = ReadonlyMap<string, string>;

interface Family {
  /** The family's name; a counter's samples add `_total` (which the text format's family keeps). */
  name: string;
  type: "counter" | "gauge";
  help: string;
  /** Per peer; null for per-interface families. */
  peer: ((p: Peer) => bigint | number | boolean) | null;
  device?: (d: Device) => number;
}

const FAMILIES: readonly Family[] = [
  { name: "wireguard_sent_bytes", type: "counter", help: "Bytes sent to the peer", peer: (p) => p.txBytes },
  { name: "wireguard_received_bytes", type: "counter", help: "Bytes received from the peer", peer: (p) => p.rxBytes },
  { name: "wireguard_latest_handshake_seconds", type: "gauge", help: "UNIX time of the latest handshake with the peer (0: never)", peer: (p) => p.latestHandshakeSec },
  { name: "wireguard_peer_online", type: "gauge", help: `1 when the latest handshake with the peer is younger than ${ONLINE_WINDOW_MS / 1000} seconds`, peer: (p) => p.online },
  { name: "wireguard_peers", type: "gauge", help: "Peers configured on the interface", peer: null, device: (d) => d.peers.length },
];

/**
 * A label value as both formats write it (and OpenMetrics' HELP text): backslash, double quote
 * and newline escaped.
 */
export function escapeLabelValue(v: string): string {
  return v.replace(/[\\"\n]/g, (c) => (c === "\n" ? "\\n" : "\\" + c));
}

const labelSet = (pairs: readonly (readonly [string, string])[]) => "{" + pairs.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(",") + "}";

function peerLabels(d: Device, p: Peer, names: FriendlyNames): string {
  // The allowed IPs as `wg show dump` lists them (what the original exporter copies).
  const pairs: [string, string][] = [
    ["interface", d.name],
    ["public_key", p.publicKey],
    ["allowed_ips", p.allowedIPs.length ? p.allowedIPs.join(",") : "(none)"],
  ];
  const friendly = names.get(p.publicKey);
  if (friendly !== undefined) pairs.push(["friendly_name", friendly]);
  return labelSet(pairs);
}

/** HELP text: the text format escapes backslash and newline, OpenMetrics double quotes too. */
const escapeHelp = (help: string, format: MetricsFormat) =>
  format === "openmetrics" ? escapeLabelValue(help) : help.replace(/[\\\n]/g, (c) => (c === "\n" ? "\\n" : "\\\\"));

const sampleValue = (v: bigint | number | boolean) => (typeof v === "boolean" ? (v ? "1" : "0") : String(v));

/**
 * The whole page for `devices` in `format`, one family after another (HELP, TYPE, then its
 * samples); an OpenMetrics page ends with `# EOF`.
 */
export function renderMetrics(devices: readonly Device[], names: FriendlyNames = new Map(), format: MetricsFormat = "text"): string {
  let s = "";
  for (const f of FAMILIES) {
    const sample = f.type === "counter" ? `${f.name}_total` : f.name;
    const family = format === "openmetrics" ? f.name : sample;
    s += `# HELP ${family} ${escapeHelp(f.help, format)}\n# TYPE ${family} ${f.type}\n`;
    for (const d of devices) {
      if (f.device) s += `${sample}${labelSet([["interface", d.name]])} ${f.device(d)}\n`;
      if (f.peer) for (const p of d.peers) s += `${sample}${peerLabels(d, p, names)} ${sampleValue(f.peer(p))}\n`;
    }
  }
  return format === "openmetrics" ? s + "# EOF\n" : s;
}

/**
 * Friendly names from a wg config file, as prometheus_wireguard_exporter 3.4+ reads them: a
 * `# friendly_name=NAME` comment line inside a [Peer] (or networkd's [WireGuardPeer]) section
 * names that section's PublicKey.
 */
export function parseFriendlyNames(text: string): Map<string, string> {
  const names = new Map<string, string>();
  let inPeer = false, key: string | null = null, name: string | null = null;
  const close = () => {
    if (inPeer && key !== null && name !== null) names.set(key, name);
    key = name = null;
  };
  for (const raw of configLines(text)) {
    const comment = /^\s*#\s*friendly_name\s*=\s*(.*?)\s*$/i.exec(raw);
    if (comment) {
      name = comment[1]!;
      continue;
    }
    const line = stripSpaces(raw.replace(/#.*/, ""));
    if (line.startsWith("[")) {
      close();
      inPeer = /^\[(peer|wireguardpeer)\]$/i.test(line);
    } else if (/^publickey=/i.test(line)) key = line.slice(line.indexOf("=") + 1);
  }
  close();
  return names;
}
