// Re-resolution of hostname endpoints (wg-tools.md §12 item 9). UAPI carries only numeric
// endpoints, so the daemon learns hostnames from its own `--endpoint-hostname PUBKEY=HOST:PORT`
// options. Like wireguard-tools' contrib/reresolve-dns script, a peer whose latest handshake is
// older than 135 s (or that never had one) is looked up again every interval, and a changed
// address becomes its endpoint. A working session is never touched, so roaming still wins.
import { lookup } from "node:dns/promises";
import type { Logger } from "../core/device-api.ts";
import { keyFromBase64, keyToHex } from "../core/encoding.ts";
import { splitHostPort } from "../core/inet.ts";

/** Handshake age after which the hostname is looked up again (contrib/reresolve-dns uses 135 s). */
export const RERESOLVE_STALE_MS = 135_000;
export const RERESOLVE_DEFAULT_INTERVAL_MS = 30_000;

export interface HostnameEndpoint {
  /** The peer's public key, hex (engine spelling). */
  publicKeyHex: string;
  host: string;
  port: number;
}

export interface PeerView {
  endpoint: string | null;
  lastHandshakeWallMs: number;
}

export interface ReresolverOptions {
  intervalMs?: number;
  staleMs?: number;
  /** Current state of a peer, or null when it is not configured (then nothing is done). */
  peer(publicKeyHex: string): PeerView | null;
  /** Point the peer at `endpoint` (numeric, UAPI spelling). */
  setEndpoint(publicKeyHex: string, endpoint: string): void;
  log: Logger;
  wallNow?: () => number;
}

/** `PUBKEY=HOST:PORT` with a base64 key and `[v6]:port` or `host:port`; null when malformed. */
export function parseHostnameEndpoint(spec: string): HostnameEndpoint | null {
  // A base64 key is 44 characters and ends in "=" itself; the separator follows it.
  if (spec.length < 46 || spec[44] !== "=") return null;
  const key = keyFromBase64(spec.slice(0, 44));
  if (key === null) return null;
  const hp = splitHostPort(spec.slice(45));
  if (!hp) return null;
  return { publicKeyHex: keyToHex(key), host: hp.host, port: hp.port };
}

export class EndpointReresolver {
  private timer: ReturnType<typeof setInterval> | null = null;
  private busy = false;
  readonly intervalMs: number;
  readonly staleMs: number;

  constructor(
    readonly targets: HostnameEndpoint[],
    private readonly opts: ReresolverOptions,
  ) {
    this.intervalMs = opts.intervalMs ?? RERESOLVE_DEFAULT_INTERVAL_MS;
    this.staleMs = opts.staleMs ?? RERESOLVE_STALE_MS;
  }

  start(): void {
    if (this.timer !== null || this.targets.length === 0) return;
    this.timer = setInterval(() => void this.checkOnce(), this.intervalMs);
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /** One pass over every target whose session is stale. Overlapping passes are skipped. */
  async checkOnce(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const now = (this.opts.wallNow ?? Date.now)();
      for (const t of this.targets) {
        const p = this.opts.peer(t.publicKeyHex);
        if (p === null) continue;
        if (p.lastHandshakeWallMs > 0 && now - p.lastHandshakeWallMs < this.staleMs) continue;
        let address: string;
        let family: number;
        try {
          ({ address, family } = await lookup(t.host));
        } catch (e) {
          this.opts.log("verbose", `Re-resolving ${t.host} failed: ${(e as Error).message}`);
          continue;
        }
        const endpoint = family === 6 ? `[${address}]:${t.port}` : `${address}:${t.port}`;
        // Re-read: the peer may have been removed or have handshaken meanwhile.
        const again = this.opts.peer(t.publicKeyHex);
        if (again === null || again.endpoint === endpoint) continue;
        this.opts.log("verbose", `Endpoint of ${t.host} re-resolved: ${again.endpoint ?? "(none)"} -> ${endpoint}`);
        this.opts.setEndpoint(t.publicKeyHex, endpoint);
      }
    } finally {
      this.busy = false;
    }
  }
}
