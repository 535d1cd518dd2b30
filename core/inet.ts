// Textual IP addresses exactly as glibc inet_pton/inet_ntop read and write them (wg and ip
// print addresses through these, so the bytes must match).
import { hexNibble } from "./encoding.ts";

export function inetPton4(s: string): Uint8Array | null {
  const out = new Uint8Array(4);
  let octets = 0, sawDigit = false, cur = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x30 && c <= 0x39) {
      if (sawDigit && cur === 0) return null;
      cur = cur * 10 + (c - 0x30);
      if (cur > 255) return null;
      if (!sawDigit) {
        if (++octets > 4) return null;
        sawDigit = true;
      }
    } else if (c === 0x2e && sawDigit) {
      if (octets === 4) return null;
      out[octets - 1] = cur;
      cur = 0;
      sawDigit = false;
    } else return null;
  }
  if (octets < 4 || !sawDigit) return null;
  out[3] = cur;
  return out;
}

export function inetPton6(s: string): Uint8Array | null {
  const out = new Uint8Array(16);
  let tp = 0, colonp = -1, i = 0, sawXdigit = false, val = 0, digits = 0, curtok = 0;
  if (s.startsWith(":")) {
    if (!s.startsWith("::")) return null;
    i = 1;
  }
  curtok = i;
  for (; i < s.length; i++) {
    const ch = s[i]!;
    const d = hexNibble(s.charCodeAt(i));
    if (d >= 0) {
      if (digits >= 4) return null;
      val = (val << 4) | d;
      digits++;
      sawXdigit = true;
      continue;
    }
    if (ch === ":") {
      curtok = i + 1;
      if (!sawXdigit) {
        if (colonp >= 0) return null;
        colonp = tp;
        continue;
      }
      if (i + 1 >= s.length) return null;
      if (tp + 2 > 16) return null;
      out[tp++] = (val >> 8) & 0xff;
      out[tp++] = val & 0xff;
      sawXdigit = false;
      digits = 0;
      val = 0;
      continue;
    }
    if (ch === "." && tp + 4 <= 16) {
      const v4 = inetPton4(s.slice(curtok));
      if (!v4) return null;
      out.set(v4, tp);
      tp += 4;
      sawXdigit = false;
      break;
    }
    return null;
  }
  if (sawXdigit) {
    if (tp + 2 > 16) return null;
    out[tp++] = (val >> 8) & 0xff;
    out[tp++] = val & 0xff;
  }
  if (colonp >= 0) {
    if (tp === 16) return null;
    const n = tp - colonp;
    for (let k = 1; k <= n; k++) {
      out[16 - k] = out[colonp + n - k]!;
      out[colonp + n - k] = 0;
    }
    tp = 16;
  }
  if (tp !== 16) return null;
  return out;
}

export function inetNtop4(a: Uint8Array): string {
  return `${a[0]}.${a[1]}.${a[2]}.${a[3]}`;
}

export function inetNtop6(a: Uint8Array): string {
  const w: number[] = [];
  for (let i = 0; i < 8; i++) w.push((a[i * 2]! << 8) | a[i * 2 + 1]!);
  let bestBase = -1, bestLen = 0, curBase = -1, curLen = 0;
  for (let i = 0; i < 8; i++) {
    if (w[i] === 0) {
      if (curBase === -1) (curBase = i), (curLen = 1);
      else curLen++;
    } else if (curBase !== -1) {
      if (bestBase === -1 || curLen > bestLen) (bestBase = curBase), (bestLen = curLen);
      curBase = -1;
    }
  }
  if (curBase !== -1 && (bestBase === -1 || curLen > bestLen)) (bestBase = curBase), (bestLen = curLen);
  if (bestBase !== -1 && bestLen < 2) bestBase = -1;
  let s = "";
  for (let i = 0; i < 8; i++) {
    if (bestBase !== -1 && i >= bestBase && i < bestBase + bestLen) {
      if (i === bestBase) s += ":";
      continue;
    }
    if (i !== 0) s += ":";
    if (i === 6 && bestBase === 0 && (bestLen === 6 || (bestLen === 5 && w[5] === 0xffff))) {
      s += inetNtop4(a.subarray(12, 16));
      break;
    }
    s += w[i]!.toString(16);
  }
  if (bestBase !== -1 && bestBase + bestLen === 8) s += ":";
  return s;
}

/**
 * `host:port` or `[host]:port` (the bracketed host may hold colons and a `%scope`): the host text
 * and the port (decimal, at most five digits, up to 65535); null for anything else or an empty host.
 */
export function splitHostPort(text: string): { host: string; port: number } | null {
  let host: string, port: string;
  if (text.startsWith("[")) {
    const end = text.indexOf("]");
    if (end < 0 || text[end + 1] !== ":") return null;
    host = text.slice(1, end);
    port = text.slice(end + 2);
  } else {
    const colon = text.lastIndexOf(":");
    if (colon < 0) return null;
    host = text.slice(0, colon);
    port = text.slice(colon + 1);
  }
  if (host === "" || !/^[0-9]{1,5}$/.test(port) || Number(port) > 65535) return null;
  return { host, port: Number(port) };
}
