// The one key encoding, as wireguard-tools' encoding.c: 32-byte keys as canonical base64 (44
// characters, `=` last) and as lowercase hex (UAPI), plus the all-zero test. Decoders accept only
// the exact form and return null otherwise.

const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const B64_VALUE = (() => {
  const t = new Int16Array(256).fill(-1);
  for (let i = 0; i < 64; i++) t[B64.charCodeAt(i)] = i;
  return t;
})();

export function keyToBase64(key: Uint8Array): string {
  let s = "";
  for (let i = 0; i < 30; i += 3) {
    const v = (key[i]! << 16) | (key[i + 1]! << 8) | key[i + 2]!;
    s += B64[v >> 18]! + B64[(v >> 12) & 63]! + B64[(v >> 6) & 63]! + B64[v & 63]!;
  }
  const v = (key[30]! << 16) | (key[31]! << 8);
  return s + B64[v >> 18]! + B64[(v >> 12) & 63]! + B64[(v >> 6) & 63]! + "=";
}

const B64_CODES = Uint8Array.from(B64, (c) => c.charCodeAt(0));

/** keyToBase64's 44 characters written as ASCII bytes at out[off] (texts built as bytes). */
export function keyToBase64Into(key: Uint8Array, out: Uint8Array, off: number): void {
  for (let i = 0; i < 30; i += 3, off += 4) {
    const v = (key[i]! << 16) | (key[i + 1]! << 8) | key[i + 2]!;
    out[off] = B64_CODES[v >> 18]!;
    out[off + 1] = B64_CODES[(v >> 12) & 63]!;
    out[off + 2] = B64_CODES[(v >> 6) & 63]!;
    out[off + 3] = B64_CODES[v & 63]!;
  }
  const v = (key[30]! << 16) | (key[31]! << 8);
  out[off] = B64_CODES[v >> 18]!;
  out[off + 1] = B64_CODES[(v >> 12) & 63]!;
  out[off + 2] = B64_CODES[(v >> 6) & 63]!;
  out[off + 3] = 0x3d;
}

/** Only the canonical 44-character encoding of 32 bytes is accepted, like wg's key_from_base64. */
export function keyFromBase64(s: string): Uint8Array | null {
  if (s.length !== 44 || s.charCodeAt(43) !== 0x3d) return null;
  const out = new Uint8Array(32);
  let acc = 0, bits = 0, o = 0;
  for (let i = 0; i < 43; i++) {
    const c = s.charCodeAt(i);
    const v = c < 256 ? B64_VALUE[c]! : -1;
    if (v < 0) return null;
    acc = ((acc << 6) | v) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >> bits) & 0xff;
    }
  }
  if (acc & ((1 << bits) - 1)) return null;
  return out;
}

const HEX = Array.from({ length: 256 }, (_, i) => (i < 16 ? "0" : "") + i.toString(16));

/** Lowercase hex of the bytes (a key gives 64 digits, as UAPI writes it). */
export function keyToHex(key: Uint8Array): string {
  let s = "";
  for (let i = 0; i < key.length; i++) s += HEX[key[i]!]!;
  return s;
}

/** The value of a hex digit's character code (either case), or -1. */
export function hexNibble(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/** Exactly 64 hex digits (either case) -> 32 bytes, else null. */
export function keyFromHex(text: string): Uint8Array | null {
  if (text.length !== 64) return null;
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) {
    const hi = hexNibble(text.charCodeAt(2 * i));
    const lo = hexNibble(text.charCodeAt(2 * i + 1));
    if (hi < 0 || lo < 0) return null;
    out[i] = (hi << 4) | lo;
  }
  return out;
}

export function isZeroKey(k: Uint8Array): boolean {
  for (let i = 0; i < k.length; i++) if (k[i]) return false;
  return true;
}
