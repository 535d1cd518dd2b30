// A scripted stand-in for the kernel side of WireGuard's generic-netlink API, for unit tests of
// platform/linux/ipc-netlink.ts without the module. It follows /work/shared/netlink.md:
// CTRL_CMD_GETFAMILY answers, WG_CMD_SET_DEVICE applied as wg_set_device/set_peer apply it
// (asserting the shape rules the kernel enforces: nest flags, exact sizes, the message bound,
// what may appear in which fragment), and WG_CMD_GET_DEVICE dumps cut into page-sized messages
// as wg_get_device_dump cuts them (a peer whose allowed IPs do not fit is continued in the next
// message with only its public key and the rest of its allowed IPs).
// Its own attribute walking is written out here (DataView, no code from the backend under test).
import { MsgBuilder, NLA_F_NESTED, NetlinkChannel } from "../platform/linux/netlink.ts";

export const FAMILY = 0x15;
const NLMSG_ERROR = 2, NLMSG_DONE = 3, GENL_ID_CTRL = 0x10;
const NLM_F_REQUEST = 1, NLM_F_MULTI = 2, NLM_F_ACK = 4, NLM_F_DUMP_INTR = 0x10, NLM_F_DUMP = 0x300, NLM_F_CAPPED = 0x100;

export interface KAllowedIp {
  family: 2 | 10;
  addr: Uint8Array;
  cidr: number;
}
export interface KPeer {
  pub: Uint8Array;
  psk: Uint8Array;
  endpoint: Uint8Array | null;
  keepalive: number;
  hsSec: bigint;
  hsNsec: bigint;
  rx: bigint;
  tx: bigint;
  ips: KAllowedIp[];
}
export interface KDevice {
  ifindex: number;
  name: string;
  privateKey: Uint8Array | null;
  /** Stands in for the derived public key (the model does no curve arithmetic). */
  publicKey: Uint8Array | null;
  listenPort: number;
  fwmark: number;
  peers: KPeer[];
}

export function emptyDevice(name: string): KDevice {
  return { ifindex: 7, name, privateKey: null, publicKey: null, listenPort: 0, fwmark: 0, peers: [] };
}

interface Attr {
  type: number;
  nested: boolean;
  off: number;
  len: number;
}

/** The attributes in [start, end), every header checked. */
function attrs(v: DataView, start: number, end: number): Attr[] {
  const out: Attr[] = [];
  let p = start;
  while (p < end) {
    if (p + 4 > end) throw new Error(`truncated attribute header at ${p}`);
    const len = v.getUint16(p, true), type = v.getUint16(p + 2, true);
    if (len < 4 || p + len > end) throw new Error(`attribute length ${len} at ${p} overruns ${end}`);
    out.push({ type: type & 0x3fff, nested: (type & 0x8000) !== 0, off: p + 4, len: len - 4 });
    p += (len + 3) & ~3;
  }
  if (p !== end && p - end >= 4) throw new Error("trailing bytes");
  return out;
}

const bytes = (v: DataView, a: Attr) => new Uint8Array(v.buffer, v.byteOffset + a.off, a.len).slice();
const hexOf = (b: Uint8Array) => Buffer.from(b).toString("hex");
const prefixKey = (a: KAllowedIp) => `${hexOf(a.addr)}/${a.cidr}`;
function masked(addr: Uint8Array, cidr: number): Uint8Array {
  for (let i = cidr >> 3; i < addr.length; i++) addr[i]! &= 0xff << Math.max(0, Math.min(8, 8 - (cidr - 8 * i))) & 0xff;
  return addr;
}
function scalar(a: Attr, size: number, what: string): void {
  if (a.nested) throw new Error(`${what}: NLA_F_NESTED on a scalar`);
  if (a.len !== size) throw new Error(`${what}: ${a.len} bytes, want ${size}`);
}
function nest(a: Attr, what: string): void {
  if (!a.nested) throw new Error(`${what}: NLA_F_NESTED is missing`);
}

export interface ModelOptions {
  /** Make the first GET dump's second message carry NLM_F_DUMP_INTR (a SET came in between). */
  interruptFirstDump?: boolean;
  /** The family is not registered (no module): GETFAMILY fails with ENOENT. */
  noFamily?: boolean;
  /** Errno to answer the SET message with this index (0-based) with. */
  failSetAt?: { index: number; errno: number };
  /** Bytes per GET dump message (the kernel sizes them from the receive buffer). */
  dumpBudget?: number;
  /** Dump messages packed per datagram. */
  perDatagram?: number;
  /**
   * Linux 6.16+: an allowed IP may carry WGALLOWEDIP_A_FLAGS (REMOVE_ME). Without it the element
   * is refused with EINVAL where it is parsed, after what came before it was applied (strict
   * nla_parse_nested, type 4 above WGALLOWEDIP_A_MAX).
   */
  allowedIpFlags?: boolean;
}

/** An error the kernel answers with (the model's own shape checks throw plain Errors). */
class KernelErrno extends Error {
  constructor(readonly errno: number) {
    super(`errno ${errno}`);
  }
}

/** The kernel, as far as one WireGuard device goes. Plug in with `() => model.channel()`. */
export class KernelModel {
  readonly sent: { type: number; cmd: number; bytes: Uint8Array }[] = [];
  setIndex = 0;
  dumps = 0;
  /** Peers by public key, and the owner of each allowed prefix (the kernel's trie). */
  private readonly byKey = new Map<string, KPeer>();
  private readonly owner = new Map<string, KPeer>();
  constructor(
    readonly device: KDevice,
    readonly opts: ModelOptions = {},
  ) {
    for (const p of device.peers) {
      this.byKey.set(hexOf(p.pub), p);
      for (const a of p.ips) this.owner.set(prefixKey(a), p);
    }
  }

  private removePeer(peer: KPeer): void {
    this.device.peers = this.device.peers.filter((p) => p !== peer);
    this.byKey.delete(hexOf(peer.pub));
    for (const a of peer.ips) this.owner.delete(prefixKey(a));
  }

  channel(): ModelChannel {
    return new ModelChannel(this);
  }

  /** Datagrams answering one request. */
  answer(req: Uint8Array, portId: number): Uint8Array[] {
    const v = new DataView(req.buffer, req.byteOffset, req.byteLength);
    const len = v.getUint32(0, true), type = v.getUint16(4, true), flags = v.getUint16(6, true), seq = v.getUint32(8, true);
    if (len !== req.length) throw new Error(`nlmsg_len ${len} for ${req.length} bytes`);
    const cmd = req[16]!;
    if (req[18] !== 0 || req[19] !== 0) throw new Error("genlmsghdr.reserved is not 0");
    this.sent.push({ type, cmd, bytes: req.slice() });
    const top = attrs(v, 20, len);
    if (type === GENL_ID_CTRL) {
      if (this.opts.noFamily) return [errorMsg(req, seq, portId, 2)];
      const name = top.find((a) => a.type === 2);
      if (!name || new TextDecoder().decode(bytes(v, name)) !== "wireguard\0") throw new Error("GETFAMILY without the name");
      const b = new MsgBuilder().start(GENL_ID_CTRL, 0).genl(1, 2).bstr(2, "wireguard").u16(1, FAMILY).u32(3, 1);
      return [withPid(b.finish(seq).slice(), portId), ack(req, seq, portId)];
    }
    if (type !== FAMILY) throw new Error(`message type ${type}`);
    if (req[17] !== 1) throw new Error("genl version is not 1");
    const ifname = top.find((a) => a.type === 2);
    if (!ifname || ifname.nested) throw new Error("no IFNAME");
    const name = new TextDecoder().decode(bytes(v, ifname));
    if (!name.endsWith("\0")) throw new Error("IFNAME without NUL");
    if (name.slice(0, -1) !== this.device.name) return [errorMsg(req, seq, portId, 19)];
    if (cmd === 0) {
      if ((flags & NLM_F_DUMP) !== NLM_F_DUMP || !(flags & NLM_F_REQUEST)) throw new Error("GET without NLM_F_DUMP");
      return this.dump(seq, portId);
    }
    if (cmd !== 1) throw new Error(`cmd ${cmd}`);
    if (flags !== (NLM_F_REQUEST | NLM_F_ACK)) throw new Error(`SET flags ${flags}`);
    if (req.length > 4096) throw new Error(`SET message of ${req.length} bytes exceeds the 4096-byte bound`);
    const index = this.setIndex++;
    if (this.opts.failSetAt?.index === index) return [errorMsg(req, seq, portId, this.opts.failSetAt.errno)];
    try {
      this.applySet(v, top, index === 0);
    } catch (e) {
      if (e instanceof KernelErrno) return [errorMsg(req, seq, portId, e.errno)];
      throw e;
    }
    return [ack(req, seq, portId)];
  }

  /** wg_set_device for one message (`first`: the first of a fragmented change). */
  private applySet(v: DataView, top: Attr[], first: boolean): void {
    const dev = this.device;
    for (const a of top) {
      if (a.type === 2) continue;
      if ([3, 5, 6, 7].includes(a.type) && !first) throw new Error(`device attribute ${a.type} in a continuation message`);
    }
    const get = (t: number) => top.find((a) => a.type === t);
    const fw = get(7), port = get(6), flags = get(5), priv = get(3), peers = get(8);
    if (fw) (scalar(fw, 4, "FWMARK"), (dev.fwmark = v.getUint32(fw.off, true)));
    if (port) (scalar(port, 2, "LISTEN_PORT"), (dev.listenPort = v.getUint16(port.off, true)));
    if (flags) {
      scalar(flags, 4, "DEVICE FLAGS");
      const f = v.getUint32(flags.off, true);
      if (f & ~1) throw new Error("unknown device flags");
      if (f & 1) for (const p of [...dev.peers]) this.removePeer(p);
    }
    if (priv) {
      scalar(priv, 32, "PRIVATE_KEY");
      const k = bytes(v, priv);
      dev.privateKey = k.some((x) => x) ? k : null;
      dev.publicKey = dev.privateKey ? dev.privateKey.map((x) => x ^ 0xff) : null;
    }
    if (!peers) return;
    nest(peers, "PEERS");
    for (const el of attrs(v, peers.off, peers.off + peers.len)) {
      if (el.type !== 0) throw new Error("peer element type is not 0");
      nest(el, "peer");
      this.setPeer(v, attrs(v, el.off, el.off + el.len));
    }
  }

  private setPeer(v: DataView, pa: Attr[]): void {
    const dev = this.device;
    const get = (t: number) => pa.find((a) => a.type === t);
    const pub = get(1);
    if (!pub) throw new Error("peer without PUBLIC_KEY");
    scalar(pub, 32, "PUBLIC_KEY");
    const key = bytes(v, pub);
    const fl = get(3);
    let flags = 0;
    if (fl) (scalar(fl, 4, "PEER FLAGS"), (flags = v.getUint32(fl.off, true)));
    if (flags & ~7) throw new Error("unknown peer flags");
    let peer = this.byKey.get(hexOf(key));
    if (!peer) {
      if (flags & 5) return; // REMOVE_ME or UPDATE_ONLY on an absent peer: nothing
      peer = { pub: key, psk: new Uint8Array(32), endpoint: null, keepalive: 0, hsSec: 0n, hsNsec: 0n, rx: 0n, tx: 0n, ips: [] };
      dev.peers.push(peer);
      this.byKey.set(hexOf(key), peer);
    }
    if (flags & 1) return this.removePeer(peer);
    const psk = get(2), ep = get(4), ka = get(5), ips = get(9);
    if (psk) (scalar(psk, 32, "PRESHARED_KEY"), (peer.psk = bytes(v, psk)));
    if (ep) {
      if (ep.nested) throw new Error("ENDPOINT nested");
      const fam = v.getUint16(ep.off, true);
      if ((fam === 2 && ep.len === 16) || (fam === 10 && ep.len === 28)) peer.endpoint = bytes(v, ep);
    }
    if (flags & 2) {
      for (const a of peer.ips) this.owner.delete(prefixKey(a));
      peer.ips = [];
    }
    if (ips) {
      nest(ips, "ALLOWEDIPS");
      for (const el of attrs(v, ips.off, ips.off + ips.len)) {
        if (el.type !== 0) throw new Error("allowed-IP element type is not 0");
        nest(el, "allowed IP");
        const ia = attrs(v, el.off, el.off + el.len);
        const f = ia.find((a) => a.type === 1), ad = ia.find((a) => a.type === 2), c = ia.find((a) => a.type === 3), fl = ia.find((a) => a.type === 4);
        if (fl && !this.opts.allowedIpFlags) throw new KernelErrno(22);
        if (!f || !ad || !c || ia.length !== (fl ? 4 : 3)) throw new Error("allowed IP needs exactly FAMILY, IPADDR, CIDR_MASK (and FLAGS)");
        scalar(f, 2, "FAMILY");
        scalar(c, 1, "CIDR_MASK");
        let removeMe = false;
        if (fl) {
          scalar(fl, 4, "ALLOWEDIP FLAGS");
          const x = v.getUint32(fl.off, true);
          if (x & ~1) throw new KernelErrno(22); // NLA_POLICY_MASK
          removeMe = x === 1;
        }
        const family = v.getUint16(f.off, true), cidr = v.getUint8(c.off);
        if (!((family === 2 && ad.len === 4 && cidr <= 32) || (family === 10 && ad.len === 16 && cidr <= 128))) throw new Error("EINVAL allowed IP");
        // The trie holds prefixes masked.
        const ip: KAllowedIp = { family, addr: masked(bytes(v, ad), cidr), cidr };
        const k = prefixKey(ip);
        const was = this.owner.get(k);
        if (removeMe) {
          // Only that exact prefix, and only from this peer.
          if (was === peer) (this.owner.delete(k), (peer.ips = peer.ips.filter((x) => prefixKey(x) !== k)));
          continue;
        }
        // Inserting a prefix held by another peer moves it here; by this one, to the end of its list.
        if (was) was.ips = was.ips.filter((x) => prefixKey(x) !== k);
        this.owner.set(k, peer);
        peer.ips.push(ip);
      }
    }
    if (ka) (scalar(ka, 2, "KEEPALIVE"), (peer.keepalive = v.getUint16(ka.off, true)));
  }

  /** wg_get_device_dump: every message at most `dumpBudget` bytes, then NLMSG_DONE. */
  private dump(seq: number, portId: number): Uint8Array[] {
    const budget = this.opts.dumpBudget ?? 3776;
    const dev = this.device;
    const msgs: Uint8Array[] = [];
    const interrupt = this.opts.interruptFirstDump && this.dumps === 0;
    this.dumps++;
    let peer = 0, ip = 0;
    let first = true;
    const b = new MsgBuilder(budget);
    for (;;) {
      b.start(FAMILY, NLM_F_MULTI).genl(0, 1);
      if (first) {
        b.u16(6, dev.listenPort).u32(7, dev.fwmark).u32(1, dev.ifindex).bstr(2, dev.name);
        if (dev.privateKey) b.bytes(3, dev.privateKey).bytes(4, dev.publicKey!);
        first = false;
      }
      if (peer >= dev.peers.length) {
        msgs.push(b.finish(seq).slice());
        break;
      }
      const peersNest = b.nest(8 | NLA_F_NESTED);
      let full = false;
      for (; peer < dev.peers.length; peer++) {
        const p = dev.peers[peer]!;
        const start = b.len;
        const pn = b.nest(NLA_F_NESTED);
        b.bytes(1, p.pub);
        if (ip === 0) {
          b.bytes(2, p.psk);
          const hs = new Uint8Array(16);
          new DataView(hs.buffer).setBigInt64(0, p.hsSec, true);
          new DataView(hs.buffer).setBigInt64(8, p.hsNsec, true);
          b.bytes(6, hs).u16(5, p.keepalive);
          // As nla_put_u64_64bit may: a type-0 pad before a u64 (every other peer here).
          if (peer % 2) b.bytes(0, new Uint8Array(0));
          const u64 = (t: number, x: bigint) => {
            const d = new Uint8Array(8);
            new DataView(d.buffer).setBigUint64(0, x, true);
            b.bytes(t, d);
          };
          u64(8, p.tx);
          u64(7, p.rx);
          b.u32(10, 1);
          if (p.endpoint) b.bytes(4, p.endpoint);
        }
        if (b.len > budget) {
          b.cancel(start);
          full = true;
          break;
        }
        if (p.ips.length) {
          const ipsNest = b.nest(9 | NLA_F_NESTED);
          for (; ip < p.ips.length; ip++) {
            const a = p.ips[ip]!;
            const at = b.len;
            const e = b.nest(NLA_F_NESTED);
            b.u8(3, a.cidr).u16(1, a.family).bytes(2, a.addr);
            b.nestEnd(e);
            if (b.len > budget) {
              b.cancel(at);
              full = true;
              break;
            }
          }
          b.nestEnd(ipsNest);
        }
        b.nestEnd(pn);
        if (full) break;
        ip = 0;
      }
      b.nestEnd(peersNest);
      const m = b.finish(seq).slice();
      if (interrupt && msgs.length === 1) new DataView(m.buffer).setUint16(6, NLM_F_MULTI | NLM_F_DUMP_INTR, true);
      msgs.push(m);
      if (!full) break;
    }
    const done = new Uint8Array(20);
    const dv = new DataView(done.buffer);
    dv.setUint32(0, 20, true);
    dv.setUint16(4, NLMSG_DONE, true);
    dv.setUint16(6, NLM_F_MULTI, true);
    dv.setUint32(8, seq, true);
    msgs.push(done);
    for (const m of msgs) withPid(m, portId);
    const per = this.opts.perDatagram ?? 1;
    const out: Uint8Array[] = [];
    for (let i = 0; i < msgs.length; i += per) {
      const group = msgs.slice(i, i + per);
      const d = new Uint8Array(group.reduce((n, m) => n + ((m.length + 3) & ~3), 0));
      let o = 0;
      for (const m of group) (d.set(m, o), (o += (m.length + 3) & ~3));
      out.push(d);
    }
    return out;
  }
}

function withPid(m: Uint8Array, pid: number): Uint8Array {
  new DataView(m.buffer, m.byteOffset).setUint32(12, pid, true);
  return m;
}

/** NLMSG_ERROR: error 0 with the request's header (capped), or -errno with the request echoed. */
function errorMsg(req: Uint8Array, seq: number, pid: number, errno: number): Uint8Array {
  const echo = errno === 0 ? req.subarray(0, 16) : req;
  const m = new Uint8Array(20 + ((echo.length + 3) & ~3));
  const v = new DataView(m.buffer);
  v.setUint32(0, m.length, true);
  v.setUint16(4, NLMSG_ERROR, true);
  v.setUint16(6, errno === 0 ? NLM_F_CAPPED : 0, true);
  v.setUint32(8, seq, true);
  v.setUint32(12, pid, true);
  v.setInt32(16, -errno, true);
  m.set(echo, 20);
  return m;
}
const ack = (req: Uint8Array, seq: number, pid: number) => errorMsg(req, seq, pid, 0);

export class ModelChannel extends NetlinkChannel {
  readonly portId = 0x3039;
  readonly rx = new Uint8Array(1 << 16);
  readonly rxView = new DataView(this.rx.buffer);
  private queue: Uint8Array[] = [];
  closed = false;
  constructor(private readonly model: KernelModel) {
    super();
  }
  protected transmit(data: Uint8Array): void {
    if (this.closed) throw new Error("send on a closed channel");
    this.queue.push(...this.model.answer(data.slice(), this.portId));
  }
  protected receive(): number {
    const d = this.queue.shift();
    if (!d) throw new Error("receive with no reply pending (a real socket would block forever)");
    this.rx.set(d);
    return d.length;
  }
  close(): void {
    this.closed = true;
  }
  /** Replace the pending replies by one hand-made datagram. */
  inject(datagram: Uint8Array): void {
    this.queue = [datagram];
  }
}
