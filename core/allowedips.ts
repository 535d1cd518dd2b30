// Cryptokey routing table (protocol.md §12): longest-prefix match from an IP address to a peer.
// One path-compressed binary trie per family, as in the kernel: every node is a masked prefix,
// a node without a peer always has two children. Keys are held as big-endian u32 words so the
// per-packet lookup compares whole words and reads the address straight from the packet buffer.
import { inetNtop4, inetNtop6, inetPton4, inetPton6 } from "./inet.ts";

export type Family = 4 | 6;

export interface Prefix {
  family: Family;
  addr: Uint8Array;
  cidr: number;
}

class Node<P> {
  k0 = 0;
  k1 = 0;
  k2 = 0;
  k3 = 0;
  m0 = 0;
  m1 = 0;
  m2 = 0;
  m3 = 0;
  peer: P | undefined = undefined;
  c0: Node<P> | null = null;
  c1: Node<P> | null = null;
  parent: Node<P> | null = null;
  constructor(
    readonly family: Family,
    readonly cidr: number,
    key: Uint32Array,
  ) {
    const m = maskWords(cidr);
    // Signed int32 so the engine keeps them as small integers on the lookup path.
    this.m0 = m[0]! | 0;
    this.m1 = m[1]! | 0;
    this.m2 = m[2]! | 0;
    this.m3 = m[3]! | 0;
    this.k0 = key[0]! & this.m0;
    this.k1 = key[1]! & this.m1;
    this.k2 = key[2]! & this.m2;
    this.k3 = key[3]! & this.m3;
  }
  word(i: number): number {
    return i === 0 ? this.k0 : i === 1 ? this.k1 : i === 2 ? this.k2 : this.k3;
  }
}

function maskWords(cidr: number): Uint32Array {
  const m = new Uint32Array(4);
  for (let i = 0; i < 4; i++) {
    const bits = Math.min(32, Math.max(0, cidr - i * 32));
    m[i] = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  }
  return m;
}

function toWords(family: Family, addr: Uint8Array, off = 0): Uint32Array {
  const w = new Uint32Array(4);
  const n = family === 4 ? 1 : 4;
  for (let i = 0; i < n; i++) {
    const o = off + i * 4;
    w[i] = ((addr[o]! << 24) | (addr[o + 1]! << 16) | (addr[o + 2]! << 8) | addr[o + 3]!) >>> 0;
  }
  return w;
}

function bitAt(words: Uint32Array | Node<unknown>, pos: number): 0 | 1 {
  const i = pos >>> 5;
  const w = words instanceof Uint32Array ? words[i]! : words.word(i);
  return ((w >>> (31 - (pos & 31))) & 1) as 0 | 1;
}

/** Leading bits on which the node's prefix and `key` agree, capped at both lengths. */
function commonBits(node: Node<unknown>, key: Uint32Array, cidr: number): number {
  const limit = Math.min(node.cidr, cidr);
  for (let i = 0; i * 32 < limit; i++) {
    const x = (node.word(i) ^ key[i]!) >>> 0;
    if (x !== 0) return Math.min(limit, i * 32 + Math.clz32(x));
  }
  return limit;
}

function checkPrefix(family: Family, addr: Uint8Array, cidr: number): void {
  const len = family === 4 ? 4 : 16;
  if (family !== 4 && family !== 6) throw new RangeError(`bad address family ${family}`);
  if (addr.length < len) throw new RangeError(`IPv${family} address needs ${len} bytes`);
  if (!Number.isInteger(cidr) || cidr < 0 || cidr > len * 8) throw new RangeError(`bad prefix length ${cidr}`);
}

export class AllowedIPs<P> {
  private root4: Node<P> | null = null;
  private root6: Node<P> | null = null;
  // Set keeps insertion order and moves a re-inserted prefix to the end, like go's list.
  private readonly byPeer = new Map<P, Set<Node<P>>>();

  /** Map the prefix (host bits masked off) to `peer`, taking it from any previous owner. */
  insert(family: Family, addr: Uint8Array, cidr: number, peer: P): void {
    checkPrefix(family, addr, cidr);
    if (peer === undefined) throw new TypeError("peer must not be undefined");
    const key = toWords(family, addr);
    const root = family === 4 ? this.root4 : this.root6;
    if (root === null) {
      const fresh = new Node<P>(family, cidr, key);
      this.setRoot(family, fresh);
      this.own(fresh, peer);
      return;
    }
    let node: Node<P> = root;
    for (;;) {
      const common = commonBits(node, key, cidr);
      if (common === node.cidr && common === cidr) {
        this.own(node, peer);
        return;
      }
      if (common === node.cidr) {
        const bit = bitAt(key, node.cidr);
        const child: Node<P> | null = bit ? node.c1 : node.c0;
        if (child === null) {
          const fresh = new Node<P>(family, cidr, key);
          this.attach(node, bit, fresh);
          this.own(fresh, peer);
          return;
        }
        node = child;
        continue;
      }
      const parent = node.parent;
      const parentBit = parent === null ? 0 : parent.c1 === node ? 1 : 0;
      if (common === cidr) {
        const fresh = new Node<P>(family, cidr, key);
        this.attach(fresh, bitAt(node, cidr), node);
        this.replace(family, parent, parentBit, fresh);
        this.own(fresh, peer);
        return;
      }
      const split = new Node<P>(family, common, key);
      const fresh = new Node<P>(family, cidr, key);
      this.attach(split, bitAt(node, common), node);
      this.attach(split, bitAt(key, common), fresh);
      this.replace(family, parent, parentBit, split);
      this.own(fresh, peer);
      return;
    }
  }

  /** Remove one prefix, only if `peer` owns it. */
  remove(family: Family, addr: Uint8Array, cidr: number, peer: P): boolean {
    checkPrefix(family, addr, cidr);
    const node = this.find(family, toWords(family, addr), cidr);
    if (node === null || node.peer !== peer) return false;
    this.byPeer.get(peer)?.delete(node);
    this.unlink(node);
    return true;
  }

  removeByPeer(peer: P): void {
    const nodes = this.byPeer.get(peer);
    if (nodes === undefined) return;
    this.byPeer.delete(peer);
    for (const n of nodes) this.unlink(n);
  }

  /** Longest-prefix match of the address at buf[off..off+4|16]. */
  lookup(family: Family, buf: Uint8Array, off: number): P | undefined {
    let found: P | undefined = undefined;
    if (family === 4) {
      const a = (buf[off]! << 24) | (buf[off + 1]! << 16) | (buf[off + 2]! << 8) | buf[off + 3]!;
      let n = this.root4;
      while (n !== null) {
        if (((a ^ n.k0) & n.m0) !== 0) break;
        if (n.peer !== undefined) found = n.peer;
        if (n.cidr === 32) break;
        n = ((a >>> (31 - n.cidr)) & 1) === 0 ? n.c0 : n.c1;
      }
      return found;
    }
    const a0 = (buf[off]! << 24) | (buf[off + 1]! << 16) | (buf[off + 2]! << 8) | buf[off + 3]!;
    const a1 = (buf[off + 4]! << 24) | (buf[off + 5]! << 16) | (buf[off + 6]! << 8) | buf[off + 7]!;
    const a2 = (buf[off + 8]! << 24) | (buf[off + 9]! << 16) | (buf[off + 10]! << 8) | buf[off + 11]!;
    const a3 = (buf[off + 12]! << 24) | (buf[off + 13]! << 16) | (buf[off + 14]! << 8) | buf[off + 15]!;
    let n = this.root6;
    while (n !== null) {
      if (((a0 ^ n.k0) & n.m0) !== 0 || ((a1 ^ n.k1) & n.m1) !== 0 || ((a2 ^ n.k2) & n.m2) !== 0 || ((a3 ^ n.k3) & n.m3) !== 0)
        break;
      if (n.peer !== undefined) found = n.peer;
      const c = n.cidr;
      if (c === 128) break;
      const w = c < 64 ? (c < 32 ? a0 : a1) : c < 96 ? a2 : a3;
      n = ((w >>> (31 - (c & 31))) & 1) === 0 ? n.c0 : n.c1;
    }
    return found;
  }

  /** The peer's prefixes in insertion order (a re-inserted prefix moves to the end). */
  entriesFor(peer: P): Prefix[] {
    const nodes = this.byPeer.get(peer);
    const out: Prefix[] = [];
    if (nodes === undefined) return out;
    for (const n of nodes) out.push({ family: n.family, addr: nodeAddr(n), cidr: n.cidr });
    return out;
  }

  clear(): void {
    this.root4 = null;
    this.root6 = null;
    this.byPeer.clear();
  }

  private find(family: Family, key: Uint32Array, cidr: number): Node<P> | null {
    let n = family === 4 ? this.root4 : this.root6;
    while (n !== null && n.cidr <= cidr) {
      if (commonBits(n, key, cidr) < n.cidr) return null;
      if (n.cidr === cidr) return n;
      n = bitAt(key, n.cidr) ? n.c1 : n.c0;
    }
    return null;
  }

  private own(node: Node<P>, peer: P): void {
    if (node.peer !== undefined) this.byPeer.get(node.peer)?.delete(node);
    node.peer = peer;
    let set = this.byPeer.get(peer);
    if (set === undefined) this.byPeer.set(peer, (set = new Set()));
    set.add(node);
  }

  private setRoot(family: Family, n: Node<P> | null): void {
    if (family === 4) this.root4 = n;
    else this.root6 = n;
    if (n !== null) n.parent = null;
  }

  private attach(parent: Node<P>, bit: number, child: Node<P>): void {
    if (bit) parent.c1 = child;
    else parent.c0 = child;
    child.parent = parent;
  }

  private replace(family: Family, parent: Node<P> | null, bit: number, n: Node<P> | null): void {
    if (parent === null) this.setRoot(family, n);
    else if (n === null) {
      if (bit) parent.c1 = null;
      else parent.c0 = null;
    } else this.attach(parent, bit, n);
  }

  /** Drop the node's peer, then splice out every node left peerless with fewer than two children. */
  private unlink(node: Node<P>): void {
    node.peer = undefined;
    let n: Node<P> | null = node;
    while (n !== null && n.peer === undefined && (n.c0 === null || n.c1 === null)) {
      const child: Node<P> | null = n.c0 ?? n.c1;
      const parent: Node<P> | null = n.parent;
      this.replace(n.family, parent, parent !== null && parent.c1 === n ? 1 : 0, child);
      n.parent = n.c0 = n.c1 = null;
      n = parent;
    }
  }
}

function nodeAddr(n: Node<unknown>): Uint8Array {
  const len = n.family === 4 ? 4 : 16;
  const out = new Uint8Array(len);
  for (let i = 0; i < len; i++) out[i] = (n.word(i >>> 2) >>> (24 - 8 * (i & 3))) & 0xff;
  return out;
}

// ---------------------------------------------------------------- text forms (inet_pton/inet_ntop)

/** inet_pton-compatible: IPv6 if the text contains ':', else a strict dotted quad. */
export function parseIp(text: string): { family: Family; addr: Uint8Array } | null {
  const addr = text.includes(":") ? inetPton6(text) : inetPton4(text);
  return addr === null ? null : { family: addr.length === 4 ? 4 : 6, addr };
}

/**
 * `ip/cidr` or a bare `ip` (full length), as wg accepts allowed IPs. The mask is decimal,
 * starts with a digit (leading zeros allowed). Host bits are masked off.
 */
export function parsePrefix(text: string): Prefix | null {
  const slash = text.indexOf("/");
  const ip = parseIp(slash === -1 ? text : text.slice(0, slash));
  if (ip === null) return null;
  const max = ip.family === 4 ? 32 : 128;
  let cidr = max;
  if (slash !== -1) {
    const m = text.slice(slash + 1);
    if (!/^[0-9]+$/.test(m)) return null;
    cidr = Number(m);
    if (cidr > max) return null;
  }
  return { family: ip.family, addr: maskAddr(ip.addr, cidr), cidr };
}

/** Copy of `addr` with the bits beyond `cidr` cleared. */
export function maskAddr(addr: Uint8Array, cidr: number): Uint8Array {
  const out = Uint8Array.from(addr);
  for (let i = 0; i < out.length; i++) {
    const bits = cidr - i * 8;
    if (bits >= 8) continue;
    out[i]! &= bits <= 0 ? 0 : (0xff << (8 - bits)) & 0xff;
  }
  return out;
}

/** glibc inet_ntop text: lowercase, longest zero run (>= 2 groups, first on ties) as `::`. */
export function formatIp(family: Family, addr: Uint8Array): string {
  return family === 4 ? inetNtop4(addr) : inetNtop6(addr);
}

/** Canonical `addr/cidr` with host bits masked, e.g. `10.0.0.0/24`, `fd00::/64`. */
export function formatPrefix(e: Prefix): string {
  return `${formatIp(e.family, maskAddr(e.addr, e.cidr))}/${e.cidr}`;
}
