// Receive-side replay window (protocol.md §6), RFC 6479 ring laid out like wireguard-go:
// 128 blocks of 64 bits with one block of slack, so the window is (128 - 1) * 64 = 8128.
// Each 64-bit block is two Uint32 words; counters are handled as (hi, lo) u32 halves so the
// per-packet path needs neither BigInt arithmetic nor allocation.

const BLOCKS = 128;
const BLOCK_MASK = BLOCKS - 1;
const WORDS = BLOCKS * 2;
const TWO32 = 0x1_0000_0000;

export const WINDOW_SIZE = (BLOCKS - 1) * 64; // 8128

/** wireguard-go / whitepaper limit: a counter >= this is never accepted. */
export const REJECT_AFTER_MESSAGES = 2n ** 64n - 2n ** 13n - 1n;
const LIMIT_HI = Number(REJECT_AFTER_MESSAGES >> 32n);
const LIMIT_LO = Number(REJECT_AFTER_MESSAGES & 0xffffffffn);

// Scratch for the BigInt entry points (split once, then share the u32 path).
let splitHi = 0;
let splitLo = 0;
function split(counter: bigint): boolean {
  if (counter < 0n) return false;
  if (counter <= 0x1f_ffff_ffff_ffffn) {
    // Number() of a safe-integer BigInt is exact and does not allocate a BigInt.
    const n = Number(counter);
    splitHi = Math.floor(n / TWO32);
    splitLo = n - splitHi * TWO32;
    return true;
  }
  if (counter >= 1n << 64n) return false;
  splitHi = Number(counter >> 32n);
  splitLo = Number(counter & 0xffffffffn);
  return true;
}

export class ReplayWindow {
  private readonly ring = new Int32Array(WORDS);
  private lastHi = 0;
  private lastLo = 0;

  reset(): void {
    this.ring.fill(0);
    this.lastHi = 0;
    this.lastLo = 0;
  }

  /** Check and record; call only after the packet authenticated. */
  accept(counter: bigint): boolean {
    return split(counter) && this.acceptU32(splitHi, splitLo);
  }

  /** Pure check, no state change (e.g. to drop obvious replays before decrypting). */
  wouldAccept(counter: bigint): boolean {
    return split(counter) && this.wouldAcceptU32(splitHi, splitLo);
  }

  /** Counter given as its high and low unsigned 32-bit halves (as read from the wire). */
  acceptU32(hi: number, lo: number): boolean {
    if (hi > LIMIT_HI || (hi === LIMIT_HI && lo >= LIMIT_LO)) return false;
    const ring = this.ring;
    const lastHi = this.lastHi;
    const lastLo = this.lastLo;
    if (hi > lastHi || (hi === lastHi && lo > lastLo)) {
      // Blocks between the old and the new newest block slide into the window: clear them.
      const dHi = hi - lastHi;
      let diff = dHi >= 2 ? BLOCKS : dHi * 0x400_0000 + (lo >>> 6) - (lastLo >>> 6);
      if (diff > BLOCKS) diff = BLOCKS;
      const cur = (lastLo >>> 6) & BLOCK_MASK;
      for (let i = 1; i <= diff; i++) {
        const w = ((cur + i) & BLOCK_MASK) << 1;
        ring[w] = 0;
        ring[w + 1] = 0;
      }
      this.lastHi = hi;
      this.lastLo = lo;
    } else {
      const dHi = lastHi - hi;
      if (dHi >= 2 || dHi * TWO32 + lastLo - lo > WINDOW_SIZE) return false;
    }
    const w = (((lo >>> 6) & BLOCK_MASK) << 1) | ((lo >>> 5) & 1);
    const bit = 1 << (lo & 31);
    const old = ring[w]!;
    if ((old & bit) !== 0) return false;
    ring[w] = old | bit;
    return true;
  }

  wouldAcceptU32(hi: number, lo: number): boolean {
    if (hi > LIMIT_HI || (hi === LIMIT_HI && lo >= LIMIT_LO)) return false;
    const lastHi = this.lastHi;
    const lastLo = this.lastLo;
    if (hi > lastHi || (hi === lastHi && lo > lastLo)) return true;
    const dHi = lastHi - hi;
    if (dHi >= 2 || dHi * TWO32 + lastLo - lo > WINDOW_SIZE) return false;
    const w = (((lo >>> 6) & BLOCK_MASK) << 1) | ((lo >>> 5) & 1);
    return (this.ring[w]! & (1 << (lo & 31))) === 0;
  }
}
