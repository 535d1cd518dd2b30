// The kernel backend of `wg` (wireguard-tools' ipc-linux.h): WireGuard's generic-netlink family
// for reading and changing a kernel device, and the rtnetlink link dump that lists kernel
// WireGuard interfaces. Like wg, every operation opens a fresh socket, resolves the family id
// by name, and closes the socket again; replies are read into wg's buffer size, so every outcome
// (including ENOSPC for an error echo larger than that buffer) is the one wg sees.
//
// GET is a dump of several messages; the kernel continues a peer whose allowed IPs did not fit
// in the next message, repeating only its public key, and adjacent entries with the same key
// are merged afterwards (DeviceReader). SET is cut into messages of at most the socket buffer
// size the way wg cuts them (SetFragmenter): device attributes and REPLACE_PEERS only in the
// first, a peer continued in the next message carries its public key (and REMOVE_ME /
// UPDATE_ONLY) but neither its other attributes nor REPLACE_ALLOWEDIPS again.
//
// The entry points take the channel opener last: the kernel's socket, or in tests a scripted
// kernel (test/lib-kernel-model.ts).
import type { AllowedIp, DeviceConfig, PeerConfig, WgDevice, WgPeer } from "../../core/tools/containers.ts";
import type { GetResult } from "../../core/tools/uapi.ts";
import { EINTR, EINVAL, ENOENT, ENOSYS, EPROTONOSUPPORT } from "../../core/errno.ts";
import { endpointSockaddr, formatSockaddr } from "./resolve.ts";
import { AF_INET, AF_INET6, IFNAMSIZ, NETLINK_GENERIC, NETLINK_ROUTE } from "./libc.ts";
import {
  AttrCursor,
  MsgBuilder,
  NLA_F_NESTED,
  NLM_F_ACK,
  NLM_F_DUMP,
  NLM_F_REQUEST,
  NLMSG_HDRLEN,
  NetlinkError,
  openSocket,
  socketBufferSize,
  type ChannelOpener,
  type NetlinkChannel,
} from "./netlink.ts";
import { IFINFOMSG_SIZE, IFLA_IFNAME, IFLA_INFO_KIND, IFLA_LINKINFO, RTM_GETLINK } from "./rtnetlink.ts";

// generic netlink controller
const GENL_ID_CTRL = 0x10;
const CTRL_CMD_GETFAMILY = 3;
const CTRL_ATTR_FAMILY_ID = 1;
const CTRL_ATTR_FAMILY_NAME = 2;
/** Offset of the first attribute of a generic-netlink message (nlmsghdr + genlmsghdr). */
const GENL_ATTRS = 20;

// linux/wireguard.h
const WG_GENL_NAME = "wireguard";
const WG_GENL_VERSION = 1;
const WG_CMD_GET_DEVICE = 0;
const WG_CMD_SET_DEVICE = 1;
const WGDEVICE_A_IFNAME = 2;
const WGDEVICE_A_PRIVATE_KEY = 3;
const WGDEVICE_A_PUBLIC_KEY = 4;
const WGDEVICE_A_FLAGS = 5;
const WGDEVICE_A_LISTEN_PORT = 6;
const WGDEVICE_A_FWMARK = 7;
const WGDEVICE_A_PEERS = 8;
const WGDEVICE_F_REPLACE_PEERS = 1;
const WGPEER_A_PUBLIC_KEY = 1;
const WGPEER_A_PRESHARED_KEY = 2;
const WGPEER_A_FLAGS = 3;
const WGPEER_A_ENDPOINT = 4;
const WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL = 5;
const WGPEER_A_LAST_HANDSHAKE_TIME = 6;
const WGPEER_A_RX_BYTES = 7;
const WGPEER_A_TX_BYTES = 8;
const WGPEER_A_ALLOWEDIPS = 9;
const WGPEER_F_REMOVE_ME = 1;
const WGPEER_F_REPLACE_ALLOWEDIPS = 2;
const WGPEER_F_UPDATE_ONLY = 4;
const WGALLOWEDIP_A_FAMILY = 1;
const WGALLOWEDIP_A_IPADDR = 2;
const WGALLOWEDIP_A_CIDR_MASK = 3;
/** Linux 6.16+; older kernels refuse the element (EINVAL), see core/tools/allowed-ip-removal.ts. */
const WGALLOWEDIP_A_FLAGS = 4;
const WGALLOWEDIP_F_REMOVE_ME = 1;

const KEY_LEN = 32;

/** A generic-netlink socket with WireGuard's family id resolved, as wg's mnlg_socket_open. */
function openWireguard(open: ChannelOpener): { sock: NetlinkChannel; family: number } {
  const sock = open(NETLINK_GENERIC);
  try {
    const b = new MsgBuilder(64).start(GENL_ID_CTRL, NLM_F_REQUEST | NLM_F_ACK).genl(CTRL_CMD_GETFAMILY, 1);
    b.bstr(CTRL_ATTR_FAMILY_NAME, WG_GENL_NAME);
    let family = -1;
    const c = new AttrCursor();
    sock.replies(sock.send(b), (off, len) => {
      c.over(sock.rx, off + GENL_ATTRS, off + len);
      while (c.next()) if (c.type === CTRL_ATTR_FAMILY_ID && c.len === 2) family = c.u16();
    });
    if (family < 0) throw new NetlinkError(ENOSYS);
    return { sock, family };
  } catch (e) {
    sock.close();
    // No such family: the module is not loaded (and could not be), which wg reports as this.
    if (e instanceof NetlinkError && e.errno === ENOENT) throw new NetlinkError(EPROTONOSUPPORT);
    throw e;
  }
}

function errnoOf(e: unknown): number {
  if (e instanceof NetlinkError) return e.errno;
  throw e;
}

// ---- GET ----

const keysEqual = (a: Uint8Array, b: Uint8Array) => {
  for (let i = 0; i < KEY_LEN; i++) if (a[i] !== b[i]) return false;
  return true;
};

/**
 * Accumulates the data messages of one WG_CMD_GET_DEVICE dump into a WgDevice as wg's
 * parse_device does: device attributes overwrite, every peer element is appended (a continued
 * peer too), and finish() merges runs of adjacent peers with the same public key. Attributes of
 * the wrong size are ignored; a peer without a public key or an allowed IP that is not a valid
 * IPv4/IPv6 prefix fails the read (EINVAL), as it fails wg's.
 */
export class DeviceReader {
  readonly device: WgDevice;
  private readonly dev = new AttrCursor();
  private readonly peers = new AttrCursor();
  private readonly peer = new AttrCursor();
  private readonly ips = new AttrCursor();
  private readonly ip = new AttrCursor();

  constructor(name: string) {
    this.device = { name, privateKey: null, publicKey: null, listenPort: 0, fwmark: 0, peers: [] };
  }

  /** One data message: the nlmsghdr at buf[off], `len` bytes long. */
  message(buf: Uint8Array, off: number, len: number): void {
    const d = this.dev.over(buf, off + GENL_ATTRS, off + len);
    const dev = this.device;
    while (d.next()) {
      switch (d.type) {
        case WGDEVICE_A_IFNAME:
          if (d.len > 0) dev.name = d.bstr().slice(0, IFNAMSIZ - 1);
          break;
        case WGDEVICE_A_PRIVATE_KEY:
          if (d.len === KEY_LEN) dev.privateKey = d.copy();
          break;
        case WGDEVICE_A_PUBLIC_KEY:
          if (d.len === KEY_LEN) dev.publicKey = d.copy();
          break;
        case WGDEVICE_A_LISTEN_PORT:
          if (d.len === 2) dev.listenPort = d.u16();
          break;
        case WGDEVICE_A_FWMARK:
          if (d.len === 4) dev.fwmark = d.u32();
          break;
        case WGDEVICE_A_PEERS:
          for (const p = this.peers.inside(d); p.next(); ) dev.peers.push(this.readPeer());
          break;
      }
    }
  }

  private readPeer(): WgPeer {
    const c = this.peer.inside(this.peers);
    let publicKey: Uint8Array | null = null;
    const peer: WgPeer = {
      publicKey: new Uint8Array(0), presharedKey: null, endpoint: null, lastHandshakeSec: 0n, lastHandshakeNsec: 0n,
      rxBytes: 0n, txBytes: 0n, persistentKeepalive: 0, allowedIps: [],
    };
    while (c.next()) {
      switch (c.type) {
        case WGPEER_A_PUBLIC_KEY:
          if (c.len === KEY_LEN) publicKey = c.copy();
          break;
        case WGPEER_A_PRESHARED_KEY:
          if (c.len === KEY_LEN) {
            const k = c.payload();
            peer.presharedKey = k.some((x) => x !== 0) ? k.slice() : null;
          }
          break;
        case WGPEER_A_ENDPOINT: {
          const family = c.len >= 16 ? c.u16() : 0;
          if ((family === AF_INET && c.len === 16) || (family === AF_INET6 && c.len === 28)) peer.endpoint = formatSockaddr(c.payload());
          break;
        }
        case WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL:
          if (c.len === 2) peer.persistentKeepalive = c.u16();
          break;
        case WGPEER_A_LAST_HANDSHAKE_TIME:
          if (c.len === 16) {
            peer.lastHandshakeSec = c.i64();
            peer.lastHandshakeNsec = c.view.getBigInt64(c.off + 8, true);
          }
          break;
        case WGPEER_A_RX_BYTES:
          if (c.len === 8) peer.rxBytes = c.u64();
          break;
        case WGPEER_A_TX_BYTES:
          if (c.len === 8) peer.txBytes = c.u64();
          break;
        case WGPEER_A_ALLOWEDIPS:
          for (const a = this.ips.inside(c); a.next(); ) peer.allowedIps.push(this.readAllowedIp());
          break;
      }
    }
    if (!publicKey) throw new NetlinkError(EINVAL);
    peer.publicKey = publicKey;
    return peer;
  }

  private readAllowedIp(): AllowedIp {
    return this.kernelLayoutIp() ?? this.anyLayoutIp();
  }

  /**
   * The element exactly as the kernel writes it (CIDR_MASK, FAMILY, IPADDR: 24 bytes for IPv4,
   * 36 for IPv6), read at fixed offsets; null for any other layout. This is the innermost loop
   * of reading a large device.
   */
  private kernelLayoutIp(): AllowedIp | null {
    const e = this.ips, v = e.view, buf = e.buf, o = e.off, n = e.len;
    const size = n === 24 ? 4 : n === 36 ? 16 : 0;
    if (
      size === 0 ||
      v.getUint32(o, true) !== (5 | (WGALLOWEDIP_A_CIDR_MASK << 16)) ||
      v.getUint32(o + 8, true) !== (6 | (WGALLOWEDIP_A_FAMILY << 16)) ||
      v.getUint16(o + 12, true) !== (size === 4 ? AF_INET : AF_INET6) ||
      v.getUint32(o + 16, true) !== ((4 + size) | (WGALLOWEDIP_A_IPADDR << 16))
    )
      return null;
    const cidr = buf[o + 4]!;
    if (cidr > size * 8) return null;
    const addr = new Uint8Array(size);
    for (let i = 0; i < size; i++) addr[i] = buf[o + 20 + i]!;
    return { family: size === 4 ? 4 : 6, addr, cidr };
  }

  private anyLayoutIp(): AllowedIp {
    const c = this.ip.inside(this.ips);
    let family = 0, cidr = 0;
    let addr: Uint8Array | null = null;
    while (c.next()) {
      if (c.type === WGALLOWEDIP_A_FAMILY && c.len === 2) family = c.u16();
      else if (c.type === WGALLOWEDIP_A_CIDR_MASK && c.len === 1) cidr = c.u8();
      else if (c.type === WGALLOWEDIP_A_IPADDR && (c.len === 4 || c.len === 16)) addr = c.copy();
    }
    if (family === AF_INET && cidr <= 32) return { family: 4, addr: addr?.length === 4 ? addr : (addr?.slice(0, 4) ?? new Uint8Array(4)), cidr };
    if (family === AF_INET6 && cidr <= 128) return { family: 6, addr: addr?.length === 16 ? addr : new Uint8Array(16), cidr };
    throw new NetlinkError(EINVAL);
  }

  /** The device, with continued peers merged into their first entry. */
  finish(): WgDevice {
    const out: WgPeer[] = [];
    for (const p of this.device.peers) {
      const last = out[out.length - 1];
      if (last && keysEqual(last.publicKey, p.publicKey)) for (const ip of p.allowedIps) last.allowedIps.push(ip);
      else out.push(p);
    }
    this.device.peers = out;
    return this.device;
  }
}

function readDevice(name: string, open: ChannelOpener): WgDevice {
  const { sock, family } = openWireguard(open);
  try {
    const b = new MsgBuilder(64).start(family, NLM_F_REQUEST | NLM_F_ACK | NLM_F_DUMP).genl(WG_CMD_GET_DEVICE, WG_GENL_VERSION);
    b.bstr(WGDEVICE_A_IFNAME, name);
    const reader = new DeviceReader(name);
    sock.replies(sock.send(b), (off, len) => reader.message(sock.rx, off, len));
    return reader.finish();
  } finally {
    sock.close();
  }
}

/**
 * wg's kernel_get_device: the device, read again from the start whenever a SET interrupted the
 * dump. As in wg 1.0.20210914 a name of 16 bytes or more goes to the kernel as it is (which
 * refuses it; later wg versions refuse it themselves with ENAMETOOLONG).
 */
export function getDevice(name: string, open: ChannelOpener = openSocket): GetResult {
  for (;;) {
    try {
      return { ok: true, device: readDevice(name, open) };
    } catch (e) {
      const errno = errnoOf(e);
      if (errno !== EINTR) return { ok: false, errno };
    }
  }
}

// ---- SET ----

/**
 * Writes the WG_CMD_SET_DEVICE messages for one change, each at most `limit` bytes, as wg's
 * kernel_set_device cuts them. next() writes one message into the builder and says whether
 * another follows; the caller sends each and waits for its ack before asking for the next.
 */
export class SetFragmenter {
  /** Peer the next message starts with; -1 before the first message. */
  private peer = -1;
  /** Allowed IP of that peer to continue with; -1 = the peer starts afresh. */
  private ip = -1;
  private readonly endpoints: (Uint8Array | null)[];

  constructor(
    private readonly name: string,
    private readonly config: DeviceConfig,
    private readonly limit: number,
  ) {
    this.endpoints = config.peers.map((p) => (p.endpoint === undefined ? null : endpointSockaddr(p.endpoint)));
  }

  next(b: MsgBuilder, family: number): boolean {
    const c = this.config, limit = this.limit;
    b.start(family, NLM_F_REQUEST | NLM_F_ACK).genl(WG_CMD_SET_DEVICE, WG_GENL_VERSION);
    b.bstr(WGDEVICE_A_IFNAME, this.name);
    const first = this.peer < 0;
    if (first) {
      if (c.privateKey) b.bytes(WGDEVICE_A_PRIVATE_KEY, c.privateKey, 0, KEY_LEN);
      if (c.listenPort !== undefined) b.u16(WGDEVICE_A_LISTEN_PORT, c.listenPort);
      if (c.fwmark !== undefined) b.u32(WGDEVICE_A_FWMARK, c.fwmark);
      if (c.replacePeers) b.u32(WGDEVICE_A_FLAGS, WGDEVICE_F_REPLACE_PEERS);
      this.peer = 0;
    }
    const peers = c.peers;
    if (!peers.length) return false;
    const start = { peer: this.peer, ip: this.ip, first };
    const peersNest = b.nest(WGDEVICE_A_PEERS | NLA_F_NESTED);
    for (let i = this.peer; i < peers.length; i++) {
      const p = peers[i]!;
      const fresh = this.ip < 0;
      if (!b.fits(0, limit)) return this.cut(b, peersNest, -1, false, -1, i, start);
      const peerNest = b.nest(NLA_F_NESTED);
      let fits = b.fits(KEY_LEN, limit);
      if (fits) b.bytes(WGPEER_A_PUBLIC_KEY, p.publicKey ?? new Uint8Array(KEY_LEN), 0, KEY_LEN);
      fits &&= !fresh || this.putPeerFields(b, p, this.endpoints[i]!);
      const flags = peerFlags(p, fresh);
      if (fits && flags) {
        fits = b.fits(4, limit);
        if (fits) b.u32(WGPEER_A_FLAGS, flags);
      }
      if (!fits) return this.cut(b, peersNest, peerNest, false, -1, i, start);
      const ips = p.allowedIps;
      if (ips.length) {
        if (this.ip < 0) this.ip = 0;
        if (!b.fits(0, limit)) return this.cut(b, peersNest, peerNest, true, -1, i, start);
        const ipsNest = b.nest(WGPEER_A_ALLOWEDIPS | NLA_F_NESTED);
        for (; this.ip < ips.length; this.ip++)
          if (!putAllowedIp(b, ips[this.ip]!, limit)) return this.cut(b, peersNest, peerNest, true, ipsNest, i, start);
        b.nestEnd(ipsNest);
      }
      this.ip = -1;
      b.nestEnd(peerNest);
    }
    b.nestEnd(peersNest);
    this.peer = peers.length;
    return false;
  }

  /** PRESHARED_KEY, ENDPOINT, PERSISTENT_KEEPALIVE_INTERVAL of a peer's first appearance; false if they do not fit. */
  private putPeerFields(b: MsgBuilder, p: PeerConfig, endpoint: Uint8Array | null): boolean {
    const limit = this.limit;
    if (p.presharedKey) {
      if (!b.fits(KEY_LEN, limit)) return false;
      b.bytes(WGPEER_A_PRESHARED_KEY, p.presharedKey, 0, KEY_LEN);
    }
    if (endpoint) {
      if (!b.fits(endpoint.length, limit)) return false;
      b.bytes(WGPEER_A_ENDPOINT, endpoint);
    }
    if (p.persistentKeepalive !== undefined) {
      if (!b.fits(2, limit)) return false;
      b.u16(WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL, p.persistentKeepalive);
    }
    return true;
  }

  /**
   * End the message where something did not fit. Among the allowed IPs (`inIps`) the peer is
   * closed (with its ALLOWEDIPS nest, if one was opened) and continues at the IP that did not
   * fit; otherwise the partial peer is dropped and sent whole in the next message.
   */
  private cut(b: MsgBuilder, peersNest: number, peerNest: number, inIps: boolean, ipsNest: number, peer: number, start: { peer: number; ip: number; first: boolean }): boolean {
    if (inIps) {
      if (ipsNest >= 0) b.nestEnd(ipsNest);
      b.nestEnd(peerNest);
    } else if (peerNest >= 0) b.cancel(peerNest);
    b.nestEnd(peersNest);
    this.peer = peer;
    // A message that carried nothing new would be sent forever.
    if (!start.first && peer === start.peer && this.ip === start.ip) throw new Error(`SET message bound of ${this.limit} bytes is too small`);
    return true;
  }
}

/** WGPEER_A_FLAGS; REPLACE_ALLOWEDIPS only where the peer starts, so a continuation keeps the IPs before it. */
function peerFlags(p: PeerConfig, fresh: boolean): number {
  let flags = 0;
  if (p.remove) flags |= WGPEER_F_REMOVE_ME;
  if (p.updateOnly) flags |= WGPEER_F_UPDATE_ONLY;
  if (fresh && p.replaceAllowedIps) flags |= WGPEER_F_REPLACE_ALLOWEDIPS;
  return flags;
}

/**
 * One allowed-IP element { FAMILY u16, IPADDR, CIDR_MASK u8 } (28 bytes for IPv4, 40 for IPv6),
 * and FLAGS u32 = REMOVE_ME after them for a removal (8 more, as wg 1.0.20250521 writes it),
 * written in one piece: it is the innermost loop of a large SET. False, with nothing written,
 * if it does not fit.
 */
function putAllowedIp(b: MsgBuilder, ip: AllowedIp, limit: number): boolean {
  const size = ip.family === 4 ? 4 : 16;
  const total = 4 + 8 + 4 + size + 8 + (ip.remove ? 8 : 0);
  if (b.len + total > limit) return false;
  const off = b.space(total);
  const v = b.view, buf = b.buf, addr = ip.addr;
  v.setUint32(off, total | (NLA_F_NESTED << 16), true);
  v.setUint32(off + 4, 6 | (WGALLOWEDIP_A_FAMILY << 16), true);
  v.setUint32(off + 8, ip.family === 4 ? AF_INET : AF_INET6, true); // u16 and its padding
  v.setUint32(off + 12, (4 + size) | (WGALLOWEDIP_A_IPADDR << 16), true);
  for (let i = 0; i < size; i++) buf[off + 16 + i] = addr[i]!;
  v.setUint32(off + 16 + size, 5 | (WGALLOWEDIP_A_CIDR_MASK << 16), true);
  v.setUint32(off + 20 + size, ip.cidr, true); // u8 and its padding
  if (ip.remove) {
    v.setUint32(off + 24 + size, 8 | (WGALLOWEDIP_A_FLAGS << 16), true);
    v.setUint32(off + 28 + size, WGALLOWEDIP_F_REMOVE_ME, true);
  }
  return true;
}

/** wg's kernel_set_device: 0, or the errno of the first message the kernel refused. */
export function setDevice(name: string, config: DeviceConfig, open: ChannelOpener = openSocket): number {
  let opened: { sock: NetlinkChannel; family: number };
  try {
    opened = openWireguard(open);
  } catch (e) {
    return errnoOf(e);
  }
  const { sock, family } = opened;
  try {
    const limit = socketBufferSize();
    const b = new MsgBuilder(limit);
    const fragments = new SetFragmenter(name, config, limit);
    let more: boolean;
    do {
      more = fragments.next(b, family);
      sock.replies(sock.send(b));
    } while (more);
    return 0;
  } catch (e) {
    return errnoOf(e);
  } finally {
    sock.close();
  }
}

// ---- listing ----

/**
 * Kernel WireGuard links (kind "wireguard") in rtnetlink dump order, as wg's
 * kernel_get_wireguard_interfaces: a dump interrupted by link changes yields what it had so far.
 */
export function kernelInterfaces(open: ChannelOpener = openSocket): { ok: true; names: string[] } | { ok: false; errno: number } {
  const names: string[] = [];
  let sock: NetlinkChannel;
  try {
    sock = open(NETLINK_ROUTE);
  } catch (e) {
    return { ok: false, errno: errnoOf(e) };
  }
  try {
    const b = new MsgBuilder(64).start(RTM_GETLINK, NLM_F_REQUEST | NLM_F_ACK | NLM_F_DUMP);
    b.header(IFINFOMSG_SIZE);
    const c = new AttrCursor(), info = new AttrCursor();
    sock.replies(sock.send(b), (off, len) => {
      let name = "", wireguard = false;
      for (c.over(sock.rx, off + NLMSG_HDRLEN + IFINFOMSG_SIZE, off + len); c.next(); ) {
        if (c.type === IFLA_IFNAME) name = c.bstr();
        else if (c.type === IFLA_LINKINFO)
          for (info.inside(c); info.next(); ) if (info.type === IFLA_INFO_KIND && info.bstr() === WG_GENL_NAME) wireguard = true;
      }
      if (name && wireguard) names.push(name);
    });
  } catch (e) {
    const errno = errnoOf(e);
    if (errno !== EINTR) return { ok: false, errno };
  } finally {
    sock.close();
  }
  return { ok: true, names };
}
