// Routing-loop guard. When the route to a peer's endpoint leads into the tunnel itself (an
// AllowedIPs of 0.0.0.0/0 without an exception for the endpoint), every encrypted datagram comes
// back out of the TUN and would be encrypted again, growing by a header each lap and, once past
// the MTU, splitting into fragments that loop too: a storm with no end. Our own datagram shows
// up on the TUN as UDP from our own port to a peer's endpoint, and is dropped there, at the first
// lap. The port alone is not enough: a router that forwards a LAN host's own WireGuard through
// the tunnel (masquerading it to the tunnel's address) passes on UDP from the same port number to
// other destinations, which the kernel's module and wireguard-go carry. (The kernel's module has a
// check for loops, ELOOP when the route's device is its own, which does not stop such a packet
// circling: see the issue-13 notes in bench/RESULTS.md.)

/** Whether some peer's endpoint is `port` at the `family` address in addr[off..]. */
export type PeerEndpointTest = (family: 4 | 6, addr: Uint8Array, off: number, port: number) => boolean;

/**
 * True when the IP packet buf[off, off+len) is a UDP datagram (first fragment or whole) from
 * source port `port` to a destination `isPeerEndpoint` accepts. Only meaningful where the TUN and
 * the UDP socket share a namespace (a socket elsewhere may see the same port number used by
 * someone else).
 */
export function isOwnDatagram(buf: Uint8Array, off: number, len: number, port: number, isPeerEndpoint: PeerEndpointTest): boolean {
  if (port === 0 || len < 28) return false;
  const version = buf[off]! >> 4;
  let udp: number;
  if (version === 4) {
    if (buf[off + 9] !== 17 || (((buf[off + 6]! & 0x1f) << 8) | buf[off + 7]!) !== 0) return false;
    udp = off + (buf[off]! & 15) * 4;
  } else if (version === 6) {
    if (buf[off + 6] !== 17) return false;
    udp = off + 40;
  } else return false;
  if (udp + 8 > off + len) return false;
  if (((buf[udp]! << 8) | buf[udp + 1]!) !== port) return false;
  const dstPort = (buf[udp + 2]! << 8) | buf[udp + 3]!;
  return version === 4 ? isPeerEndpoint(4, buf, off + 16, dstPort) : isPeerEndpoint(6, buf, off + 24, dstPort);
}
