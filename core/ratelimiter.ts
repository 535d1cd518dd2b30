// Per-source token bucket for handshake messages under load (protocol.md §9). Only consulted after
// mac2 validated, so the source address is proven. Time is injected in milliseconds (monotonic).
// Kernel semantics: a bucket per IPv4 address and per IPv6 /64 (one host usually owns a whole
// /64, so its other addresses share the budget), `tokens >= cost`, idle entries (>= 1 s) are
// collected, the table is capped and a full table refuses new sources. Keys are numbers read
// from the address bytes, so a known source costs no allocation.

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
  /** IPv4 sources by address. */
  private readonly v4 = new Map<number, Bucket>();
  /** IPv6 sources by /64: its upper 32 bits, then the lower 32. */
  private readonly v6 = new Map<number, Map<number, Bucket>>();
  private count = 0;
  private lastGc = -Infinity;

  constructor(private readonly maxEntries: number = DEFAULT_MAX_ENTRIES) {}

  /**
   * Spend one packet's worth of tokens for the source address at addr[0, 4) (family 4) or
   * addr[0, 16) (family 6) at `nowMs`; false means drop.
   */
  allow(family: 4 | 6, addr: Uint8Array, nowMs: number): boolean {
    const b = family === 4 ? this.v4.get(u32(addr, 0)) : this.v6.get(u32(addr, 0))?.get(u32(addr, 4));
    if (b === undefined) {
      if (!this.room(nowMs)) return false;
      // A new source is allowed and starts with a full bucket minus this packet's cost.
      const fresh = { tokens: TOKEN_MAX_MS - PACKET_COST_MS, last: nowMs };
      if (family === 4) this.v4.set(u32(addr, 0), fresh);
      else {
        const hi = u32(addr, 0);
        let inner = this.v6.get(hi);
        if (inner === undefined) this.v6.set(hi, (inner = new Map()));
        inner.set(u32(addr, 4), fresh);
      }
      this.count++;
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

  /**
   * Whether one more source fits. A full table is collected at most once a second, so a flood of
   * new sources cannot make every call O(n).
   */
  private room(nowMs: number): boolean {
    if (this.count < this.maxEntries) return true;
    if (nowMs - this.lastGc < IDLE_GC_AFTER_MS) return false;
    this.gc(nowMs);
    return this.count < this.maxEntries;
  }

  /** Drop entries idle for at least a second; the engine calls this once a second. */
  gc(nowMs: number): void {
    this.lastGc = nowMs;
    this.collect(this.v4, nowMs);
    for (const [hi, inner] of this.v6) {
      this.collect(inner, nowMs);
      if (inner.size === 0) this.v6.delete(hi);
    }
  }

  private collect(table: Map<number, Bucket>, nowMs: number): void {
    for (const [k, b] of table) {
      if (nowMs - b.last >= IDLE_GC_AFTER_MS) {
        table.delete(k);
        this.count--;
      }
    }
  }

  /** Number of sources (IPv4 addresses and IPv6 /64s) with a bucket. */
  size(): number {
    return this.count;
  }

  clear(): void {
    this.v4.clear();
    this.v6.clear();
    this.count = 0;
  }
}

function u32(b: Uint8Array, off: number): number {
  return ((b[off]! << 24) | (b[off + 1]! << 16) | (b[off + 2]! << 8) | b[off + 3]!) >>> 0;
}
