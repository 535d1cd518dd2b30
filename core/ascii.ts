// ASCII text written straight into bytes, for the large texts of the daemon and the tool (a UAPI
// `get` answer, a `wg show dump` of 10,000 peers: megabytes), instead of a string rope of many
// pieces encoded at the end (bench/RESULTS.md has the comparison). text() decodes the bytes once
// as Latin-1, a flat 8-bit string that is cheap to encode again. Strings given to str() are byte
// strings (one char per byte, below 0x100).
import { keyToBase64Into } from "./encoding.ts";

const HEX_DIGITS = Uint8Array.from("0123456789abcdef", (c) => c.charCodeAt(0));
const latin1 = new TextDecoder("latin1");

export class AsciiWriter {
  buf = new Uint8Array(1 << 16);
  len = 0;
  private room(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const grown = new Uint8Array(Math.max(this.buf.length * 2, this.len + n));
    grown.set(this.buf.subarray(0, this.len));
    this.buf = grown;
  }
  str(s: string): void {
    this.room(s.length);
    for (let i = 0; i < s.length; i++) this.buf[this.len++] = s.charCodeAt(i);
  }
  /** One character code (below 0x100). */
  char(c: number): void {
    this.room(1);
    this.buf[this.len++] = c;
  }
  hex(b: Uint8Array): void {
    this.room(2 * b.length);
    for (let i = 0; i < b.length; i++) {
      this.buf[this.len++] = HEX_DIGITS[b[i]! >> 4]!;
      this.buf[this.len++] = HEX_DIGITS[b[i]! & 15]!;
    }
  }
  /** A 32-byte key in base64, as core/encoding.ts writes it. */
  key64(k: Uint8Array): void {
    this.room(44);
    keyToBase64Into(k, this.buf, this.len);
    this.len += 44;
  }
  /** A non-negative integer below 2^53, in decimal (below 1000 without making a string). */
  uint(n: number): void {
    if (n >= 1000) {
      this.str(String(n));
      return;
    }
    this.room(3);
    if (n >= 100) this.buf[this.len++] = 48 + Math.floor(n / 100);
    if (n >= 10) this.buf[this.len++] = 48 + (Math.floor(n / 10) % 10);
    this.buf[this.len++] = 48 + (n % 10);
  }
  /** An IPv4 prefix as inet_ntop prints the address, then /cidr (at most 18 characters). */
  prefix4(addr: Uint8Array, cidr: number): void {
    this.room(18);
    const b = this.buf;
    let len = this.len;
    for (let i = 0; i < 5; i++) {
      const n = i < 4 ? addr[i]! : cidr;
      if (i > 0) b[len++] = i < 4 ? 0x2e : 0x2f;
      if (n >= 100) b[len++] = 48 + Math.floor(n / 100);
      if (n >= 10) b[len++] = 48 + (Math.floor(n / 10) % 10);
      b[len++] = 48 + (n % 10);
    }
    this.len = len;
  }
  /** Everything written, as a byte string. */
  text(): string {
    return latin1.decode(this.buf.subarray(0, this.len));
  }
}
