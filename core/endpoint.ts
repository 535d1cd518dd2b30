// A peer's UDP address as bytes, with the local address replies to it leave from (protocol.md
// §11), like the kernel's `struct endpoint` and wireguard-go's `conn.Endpoint`.
//
// The platform fills one from each received datagram's sockaddr and packet info; the engine
// copies it into the peer's own Endpoint after authentication and hands that back for every
// send. Nothing on the data path turns an endpoint into text: text is made only at the edges
// (UAPI `endpoint=`, logs, events) by formatEndpoint, and parsed only by the UAPI server.
import { inetNtop4, inetNtop6 } from "./inet.ts";

export class Endpoint {
  /** 4: addr[0, 4) is an IPv4 address; 6: addr[0, 16) is an IPv6 address. */
  family: 4 | 6 = 4;
  readonly addr = new Uint8Array(16);
  port = 0;
  /** IPv6 scope id: the interface index a link-local address belongs to; 0 when none. */
  scope = 0;
  /**
   * Sticky source: the local address (same family and layout as addr) the peer last wrote to
   * and the interface that received it. Replies leave from there while hasSrc; clearSrc() lets
   * the kernel choose by route again.
   */
  hasSrc = false;
  readonly src = new Uint8Array(16);
  srcIfindex = 0;

  /** An endpoint without a sticky source; `addr` holds 4 or 16 bytes by family. */
  static of(family: 4 | 6, addr: ArrayLike<number>, port: number, scope = 0): Endpoint {
    const ep = new Endpoint();
    ep.family = family;
    ep.addr.set(addr);
    ep.port = port;
    ep.scope = family === 6 ? scope : 0;
    return ep;
  }

  /** Same destination: family, address, port and scope. */
  sameDst(o: Endpoint): boolean {
    if (this.port !== o.port || this.family !== o.family || this.scope !== o.scope) return false;
    const a = this.addr;
    const b = o.addr;
    for (let i = this.family === 4 ? 3 : 15; i >= 0; i--) if (a[i] !== b[i]) return false;
    return true;
  }

  /** Same sticky source (both without one counts as the same). */
  sameSrc(o: Endpoint): boolean {
    if (this.hasSrc !== o.hasSrc) return false;
    if (!this.hasSrc) return true;
    if (this.srcIfindex !== o.srcIfindex) return false;
    const a = this.src;
    const b = o.src;
    for (let i = this.family === 4 ? 3 : 15; i >= 0; i--) if (a[i] !== b[i]) return false;
    return true;
  }

  /** Destination and sticky source of `o` into this object. */
  copyFrom(o: Endpoint): void {
    this.family = o.family;
    this.addr.set(o.addr);
    this.port = o.port;
    this.scope = o.scope;
    this.copySrc(o);
  }

  /** Only the sticky source of `o` (which has the same family). */
  copySrc(o: Endpoint): void {
    this.hasSrc = o.hasSrc;
    this.src.set(o.src);
    this.srcIfindex = o.srcIfindex;
  }

  clone(): Endpoint {
    const ep = new Endpoint();
    ep.copyFrom(this);
    return ep;
  }

  /** Forget the sticky source. */
  clearSrc(): void {
    this.hasSrc = false;
    this.src.fill(0);
    this.srcIfindex = 0;
  }

  /**
   * The bytes that identify this source for a cookie (the kernel's layout): the address, then the
   * port big-endian, written to out[0, 6) for IPv4 or out[0, 18) for IPv6. Returns the length.
   */
  dstToBytes(out: Uint8Array): number {
    const n = this.family === 4 ? 4 : 16;
    for (let i = 0; i < n; i++) out[i] = this.addr[i]!;
    out[n] = (this.port >>> 8) & 0xff;
    out[n + 1] = this.port & 0xff;
    return n + 2;
  }
}

/**
 * `a.b.c.d:port` or `[v6]:port`, addresses as inet_ntop prints them; a scope id appears as
 * `%NAME`, the interface name `scopeName` gives (its number without one).
 */
export function formatEndpoint(ep: Endpoint, scopeName?: (scope: number) => string): string {
  if (ep.family === 4) return `${inetNtop4(ep.addr)}:${ep.port}`;
  const zone = ep.scope === 0 ? "" : `%${scopeName ? scopeName(ep.scope) : ep.scope}`;
  return `[${inetNtop6(ep.addr)}${zone}]:${ep.port}`;
}
