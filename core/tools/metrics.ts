// `wg exporter`'s page: devices as read by the client library, in the Prometheus text exposition
// format 0.0.4, under the metric names and labels of prometheus_wireguard_exporter (so its
// dashboards and alerts work unchanged) plus two of ours. Only public keys appear: the device
// model carries private and preshared keys, and nothing here reads them.
import type { Device, Peer } from "./client.ts";
import { configLines, stripSpaces } from "./config.ts";
import { ONLINE_WINDOW_MS } from "./show.ts";

/** The text format's media type (what Prometheus asks for and every scraper reads). */
export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** Public key (base64) -> the name a config file gives that peer. */
export type FriendlyNames = ReadonlyMap<string, string>;

interface Family {
  name: string;
  type: "counter" | "gauge";
  help: string;
  /** Per peer; null for per-interface families. */
  peer: ((p: Peer) => bigint | number | boolean) | null;
  device?: (d: Device) => number;
}

const FAMILIES: readonly Family[] = [
  { name: "wireguard_sent_bytes_total", type: "counter", help: "Bytes sent to the peer", peer: (p) => p.txBytes },
  { name: "wireguard_received_bytes_total", type: "counter", help: "Bytes received from the peer", peer: (p) => p.rxBytes },
  { name: "wireguard_latest_handshake_seconds", type: "gauge", help: "UNIX time of the latest handshake with the peer (0: never)", peer: (p) => p.latestHandshakeSec },
  { name: "wireguard_peer_online", type: "gauge", help: `1 when the latest handshake with the peer is younger than ${ONLINE_WINDOW_MS / 1000} seconds`, peer: (p) => p.online },
  { name: "wireguard_peers", type: "gauge", help: "Peers configured on the interface", peer: null, device: (d) => d.peers.length },
];

/** A label value as the text format writes it: backslash, double quote and newline escaped. */
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

const sampleValue = (v: bigint | number | boolean) => (typeof v === "boolean" ? (v ? "1" : "0") : String(v));

/** The whole page for `devices`, one family after another (HELP, TYPE, then its samples). */
export function renderMetrics(devices: readonly Device[], names: FriendlyNames = new Map()): string {
  let s = "";
  for (const f of FAMILIES) {
    s += `# HELP ${f.name} ${f.help}\n# TYPE ${f.name} ${f.type}\n`;
    for (const d of devices) {
      if (f.device) s += `${f.name}${labelSet([["interface", d.name]])} ${f.device(d)}\n`;
      if (f.peer) for (const p of d.peers) s += `${f.name}${peerLabels(d, p, names)} ${sampleValue(f.peer(p))}\n`;
    }
  }
  return s;
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
