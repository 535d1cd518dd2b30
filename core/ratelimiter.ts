// Per-source token bucket for handshake messages under load (protocol.md §9). Only consulted after
// mac2 validated, so the source address is proven. Time is injected in milliseconds (monotonic).
// Kernel semantics: `tokens >= cost`, idle entries (>= 1 s) are collected, the table is capped
// and a full table refuses new sources.

export const PACKETS_PER_SECOND = 20;
export const PACKETS_BURSTABLE = 5;
export const PACKET_COST_MS = 1000 / PACKETS_PER_SECOND; // 50
export const TOKEN_MAX_MS = PACKET_COST_MS * PACKETS_BURSTABLE; // 250
export const IDLE_GC_AFTER_MS = 1000;
/** Kernel: 8 x an 8192-bucket hash table on machines with more than 1 GiB. */
export const DEFAULT_MAX_ENTRIES = 65536;

interface Bucket {
  tokens: number;
  last: number;
}

export class RateLimiter {
  private readonly table = new Map<string, Bucket>();
  private lastGc = -Infinity;

  constructor(private readonly maxEntries: number = DEFAULT_MAX_ENTRIES) {}

  /** Spend one packet's worth of tokens for `key` at `nowMs`; false means drop. */
  allow(key: string, nowMs: number): boolean {
    const b = this.table.get(key);
    if (b === undefined) {
      if (this.table.size >= this.maxEntries) {
        // Collect at most once a second so a flood of new sources cannot make every call O(n).
        if (nowMs - this.lastGc < IDLE_GC_AFTER_MS) return false;
        this.gc(nowMs);
        if (this.table.size >= this.maxEntries) return false;
      }
      // A new source is allowed and starts with a full bucket minus this packet's cost.
      this.table.set(key, { tokens: TOKEN_MAX_MS - PACKET_COST_MS, last: nowMs });
      return true;
    }
    const elapsed = nowMs - b.last;
    let tokens = b.tokens + (elapsed > 0 ? elapsed : 0);
    if (tokens > TOKEN_MAX_MS) tokens = TOKEN_MAX_MS;
    if (elapsed > 0) b.last = nowMs;
    if (tokens >= PACKET_COST_MS) {
      b.tokens = tokens - PACKET_COST_MS;
      return true;
    }
    b.tokens = tokens;
    return false;
  }

  /** Drop entries idle for at least a second; the engine calls this once a second. */
  gc(nowMs: number): void {
    this.lastGc = nowMs;
    for (const [k, b] of this.table) if (nowMs - b.last >= IDLE_GC_AFTER_MS) this.table.delete(k);
  }

  size(): number {
    return this.table.size;
  }

  clear(): void {
    this.table.clear();
  }
}

/**
 * Bucket key for a source address read from buf[off..]: the whole IPv4 address, or the upper
 * 64 bits of an IPv6 address (kernel; one host usually owns a whole /64).
 */
export function rateLimitKey(family: 4 | 6, buf: Uint8Array, off: number): string {
  if (family === 4) return `4:${buf[off]}.${buf[off + 1]}.${buf[off + 2]}.${buf[off + 3]}`;
  const hi = ((buf[off]! << 24) | (buf[off + 1]! << 16) | (buf[off + 2]! << 8) | buf[off + 3]!) >>> 0;
  const lo = ((buf[off + 4]! << 24) | (buf[off + 5]! << 16) | (buf[off + 6]! << 8) | buf[off + 7]!) >>> 0;
  return `6:${hi.toString(16)}:${lo.toString(16)}`;
}
