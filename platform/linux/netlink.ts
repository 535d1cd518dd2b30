// The one netlink socket layer, under rtnetlink.ts (NETLINK_ROUTE) and ipc-netlink.ts
// (NETLINK_GENERIC): a bound socket, a builder that writes a message and its (nested) attributes
// into one growing buffer, a cursor that walks attributes in place, and the receive loop that
// collects the replies to one request the way libmnl's callback runner does: data messages of
// any number of datagrams (multi-part dumps) until the NLMSG_DONE or the NLMSG_ERROR ack; an
// error reply becomes a NetlinkError carrying the errno and the kernel's extended-ack message.
// Multi-byte header and attribute fields are host byte order (little-endian on every target).
import { ptr } from "bun:ffi";
import { EBADMSG, EINTR, EINVAL, ENOSPC, strerror } from "../../core/errno.ts";
import {
  AF_NETLINK,
  MSG_FLAGS,
  MSG_IOV,
  MSG_IOVLEN,
  MSG_NAME,
  MSG_NAMELEN,
  MSG_TRUNC,
  MSGHDR_SIZE,
  IOVEC_SIZE,
  NETLINK_EXT_ACK,
  NETLINK_GET_STRICT_CHK,
  SOCK_CLOEXEC,
  SOCK_RAW,
  SOCKADDR_NL_SIZE,
  SOL_NETLINK,
  _SC_PAGESIZE,
  errno,
  libc,
  setInt,
} from "./libc.ts";

export const NLMSG_HDRLEN = 16;
const NLA_HDRLEN = 4;
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;
/** Types from here on are data messages (rtnetlink types, generic-netlink family ids). */
const NLMSG_MIN_TYPE = 0x10;

export const NLM_F_REQUEST = 0x1;
export const NLM_F_MULTI = 0x2;
export const NLM_F_ACK = 0x4;
export const NLM_F_DUMP_INTR = 0x10;
export const NLM_F_DUMP = 0x300;
export const NLM_F_EXCL = 0x200;
export const NLM_F_CREATE = 0x400;
/** On NLMSG_ERROR: the echoed request was cut to its header / extended-ack TLVs follow it. */
const NLM_F_CAPPED = 0x100;
const NLM_F_ACK_TLVS = 0x200;
const NLMSGERR_ATTR_MSG = 1;

export const NLA_F_NESTED = 0x8000;
const NLA_TYPE_MASK = 0x3fff;

const align4 = (n: number) => (n + 3) & ~3;

/**
 * libmnl's mnl_ideal_socket_buffer_size: min(page size, 8192). wg receives into a buffer of this
 * size and bounds every outgoing SET fragment by it.
 */
export function socketBufferSize(): number {
  const page = Number(libc.sysconf(_SC_PAGESIZE));
  return page > 0 && page < 8192 ? page : 8192;
}

/** A failed request: the errno (positive) and, when the kernel sent one, its extack message. */
export class NetlinkError extends Error {
  constructor(
    readonly errno: number,
    readonly extack: string | null = null,
  ) {
    super(extack ?? strerror(errno));
  }
  /** What iproute2 prints for this failure. */
  ipText(): string {
    return this.extack !== null ? `Error: ${this.extack}.` : `RTNETLINK answers: ${strerror(this.errno)}`;
  }
}

// ---- building ----

/**
 * One message at a time in one buffer that grows and is reused: start(), fixed headers and
 * attributes, finish(). Nests are offsets returned by nest() and closed by nestEnd() (or dropped
 * by cancel()). Padding is always written as zeros, so a reused buffer leaks nothing old.
 */
export class MsgBuilder {
  buf: Uint8Array;
  view: DataView;
  len = 0;

  constructor(capacity = 4096) {
    this.buf = new Uint8Array(capacity);
    this.view = new DataView(this.buf.buffer);
  }

  private reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const b = new Uint8Array(Math.max(this.buf.length * 2, this.len + n));
    b.set(this.buf.subarray(0, this.len));
    this.buf = b;
    this.view = new DataView(b.buffer);
  }

  /** Begin a new message (the previous one's bytes are given up). */
  start(type: number, flags: number): this {
    this.len = 0;
    this.header(NLMSG_HDRLEN);
    this.view.setUint16(4, type, true);
    this.view.setUint16(6, flags, true);
    return this;
  }

  /** A zeroed fixed-size header after the nlmsghdr (ifinfomsg, rtmsg, ...); returns its offset. */
  header(n: number): number {
    const size = align4(n);
    this.reserve(size);
    const off = this.len;
    this.buf.fill(0, off, off + size);
    this.len += size;
    return off;
  }

  /** `n` bytes (a multiple of 4) for the caller to fill completely; returns their offset. */
  space(n: number): number {
    this.reserve(n);
    const off = this.len;
    this.len += n;
    return off;
  }

  /** A fixed-size header copied from `data`. */
  raw(data: Uint8Array): this {
    const off = this.header(data.length);
    this.buf.set(data, off);
    return this;
  }

  /** The generic-netlink header. */
  genl(cmd: number, version: number): this {
    const off = this.header(4);
    this.buf[off] = cmd;
    this.buf[off + 1] = version;
    return this;
  }

  /** Whether an attribute with `payload` bytes keeps the message within `limit` (libmnl's *_check). */
  fits(payload: number, limit: number): boolean {
    return this.len + NLA_HDRLEN + align4(payload) <= limit;
  }

  /** Attribute header plus zeroed padded payload; returns the payload offset. */
  private attr(type: number, payload: number): number {
    const size = NLA_HDRLEN + align4(payload);
    this.reserve(size);
    const off = this.len;
    this.view.setUint32(off + size - 4, 0); // the padding (and possibly payload, overwritten next)
    this.view.setUint16(off, NLA_HDRLEN + payload, true);
    this.view.setUint16(off + 2, type, true);
    this.len += size;
    return off + NLA_HDRLEN;
  }

  // (The offset is taken before touching buf/view: attr() may replace them when it grows.)
  u8(type: number, v: number): this {
    const off = this.attr(type, 1);
    this.buf[off] = v;
    return this;
  }
  u16(type: number, v: number): this {
    const off = this.attr(type, 2);
    this.view.setUint16(off, v, true);
    return this;
  }
  u32(type: number, v: number): this {
    const off = this.attr(type, 4);
    this.view.setUint32(off, v >>> 0, true);
    return this;
  }
  bytes(type: number, src: Uint8Array, from = 0, n = src.length - from): this {
    const off = this.attr(type, n);
    for (let i = 0; i < n; i++) this.buf[off + i] = src[from + i]!;
    return this;
  }
  /** NUL-terminated UTF-8 text. */
  str(type: number, s: string): this {
    return this.bytes(type, new TextEncoder().encode(s + "\0"));
  }
  /** NUL-terminated byte string (one char per byte, as wg handles interface names). */
  bstr(type: number, s: string): this {
    const off = this.attr(type, s.length + 1);
    for (let i = 0; i < s.length; i++) this.buf[off + i] = s.charCodeAt(i);
    this.buf[off + s.length] = 0;
    return this;
  }

  /** Open a nested attribute (pass NLA_F_NESTED in `type` where the receiver wants it). */
  nest(type: number): number {
    return this.attr(type, 0) - NLA_HDRLEN;
  }
  nestEnd(off: number): void {
    this.view.setUint16(off, this.len - off, true);
  }
  /** Drop everything from `off` (a nest or attribute start) on. */
  cancel(off: number): void {
    this.len = off;
  }

  /** The finished message (a view into the buffer, valid until the next change). */
  finish(seq: number): Uint8Array {
    this.view.setUint32(0, this.len, true);
    this.view.setUint32(8, seq, true);
    this.view.setUint32(12, 0, true);
    return this.buf.subarray(0, this.len);
  }
}

// ---- parsing ----

/**
 * Walks the attributes of one level in place: after next() returns true, `type` (flag bits
 * masked off), `off` (payload offset in `buf`) and `len` (payload length) describe the current
 * one. Stops at the end or at the first malformed header, as libmnl's mnl_attr_ok does.
 * Allocates nothing per attribute: one cursor per nesting level, reused.
 */
export class AttrCursor {
  buf: Uint8Array = new Uint8Array(0);
  view: DataView = new DataView(this.buf.buffer);
  type = 0;
  off = 0;
  len = 0;
  private pos = 0;
  private end = 0;

  /** Iterate the attributes in buf[start, end). */
  over(buf: Uint8Array, start: number, end = buf.length): this {
    if (buf !== this.buf) {
      this.buf = buf;
      this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    }
    this.pos = start;
    this.end = end;
    return this;
  }

  /** Iterate the payload of `parent`'s current attribute. */
  inside(parent: AttrCursor): this {
    if (parent.buf !== this.buf) {
      this.buf = parent.buf;
      this.view = parent.view;
    }
    this.pos = parent.off;
    this.end = parent.off + parent.len;
    return this;
  }

  next(): boolean {
    const pos = this.pos;
    if (pos + NLA_HDRLEN > this.end) return false;
    const alen = this.view.getUint16(pos, true);
    if (alen < NLA_HDRLEN || alen > this.end - pos) return false;
    this.type = this.view.getUint16(pos + 2, true) & NLA_TYPE_MASK;
    this.off = pos + NLA_HDRLEN;
    this.len = alen - NLA_HDRLEN;
    this.pos = pos + align4(alen);
    return true;
  }

  u8(): number {
    return this.buf[this.off]!;
  }
  u16(): number {
    return this.view.getUint16(this.off, true);
  }
  u32(): number {
    return this.view.getUint32(this.off, true);
  }
  /** Unaligned-safe (the kernel 4-byte-aligns u64 payloads unless it pads). */
  u64(): bigint {
    return this.view.getBigUint64(this.off, true);
  }
  i64(): bigint {
    return this.view.getBigInt64(this.off, true);
  }
  /** A copy of the payload (addresses byte by byte: slice costs more than a 4-byte copy). */
  copy(): Uint8Array {
    const n = this.len, off = this.off, buf = this.buf;
    if (n > 16) return buf.slice(off, off + n);
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = buf[off + i]!;
    return out;
  }
  /** A view of the payload (valid while the buffer is). */
  payload(): Uint8Array {
    return this.buf.subarray(this.off, this.off + this.len);
  }
  /** The payload up to its first NUL, as UTF-8 text. */
  str(): string {
    const p = this.payload();
    const z = p.indexOf(0);
    return new TextDecoder().decode(z < 0 ? p : p.subarray(0, z));
  }
  /** The payload up to its first NUL, as a byte string (one char per byte). */
  bstr(): string {
    let s = "";
    for (let i = this.off, end = this.off + this.len; i < end && this.buf[i] !== 0; i++) s += String.fromCharCode(this.buf[i]!);
    return s;
  }
}

// ---- the socket ----

interface SocketOptions {
  /** Ask for extended acks (error messages) and strict checking of dump requests (rtnetlink). */
  extAck?: boolean;
  strictCheck?: boolean;
  /** Receive buffer; a larger datagram fails with ENOSPC, as libmnl reports MSG_TRUNC. */
  bufferSize?: number;
}

/** Called for each data message of a reply: its offset and length in `rx`, type and flags. */
type OnMessage = (off: number, len: number, type: number, flags: number) => void;

/**
 * Request/reply framing over some datagram transport: the kernel socket below, or a scripted
 * kernel in tests. Subclasses send a finished message and receive one datagram into `rx`.
 */
export abstract class NetlinkChannel {
  /** Port id the kernel assigned at bind (0: none). */
  abstract readonly portId: number;
  abstract readonly rx: Uint8Array;
  abstract readonly rxView: DataView;
  private seq = Math.floor(Date.now() / 1000) >>> 0 || 1;

  /** Send `data` (a finished message). */
  protected abstract transmit(data: Uint8Array): void;
  /** One datagram into `rx`; returns its length. */
  protected abstract receive(): number;
  abstract close(): void;

  /** Finish the builder's message with a fresh sequence number and send it; returns the number. */
  send(b: MsgBuilder): number {
    const seq = this.seq;
    this.seq = (seq + 1) >>> 0 || 1;
    this.transmit(b.finish(seq));
    return seq;
  }

  /**
   * Read the replies to request `seq` until its end: the ack (NLMSG_ERROR 0), or NLMSG_DONE of a
   * dump (which gets no ack). Data messages go to `onMessage`. An error reply, an error in DONE
   * and NLM_F_DUMP_INTR (EINTR: the dumped object changed meanwhile) throw NetlinkError, the
   * latter unless `acceptInterrupted` (the messages are then delivered as they are, as iproute2
   * carries on after "Dump was interrupted"). Messages for another sequence number or port (left
   * over from an abandoned request) are skipped.
   */
  replies(seq: number, onMessage?: OnMessage, acceptInterrupted = false): void {
    for (;;) {
      const n = this.receive();
      const v = this.rxView;
      let off = 0;
      while (off + NLMSG_HDRLEN <= n) {
        const len = v.getUint32(off, true);
        if (len < NLMSG_HDRLEN || len > n - off) break;
        const type = v.getUint16(off + 4, true);
        const flags = v.getUint16(off + 6, true);
        const rseq = v.getUint32(off + 8, true);
        const rpid = v.getUint32(off + 12, true);
        if ((rseq !== 0 && rseq !== seq) || (rpid !== 0 && this.portId !== 0 && rpid !== this.portId)) {
          off += align4(len);
          continue;
        }
        if (flags & NLM_F_DUMP_INTR && !acceptInterrupted) throw new NetlinkError(EINTR);
        if (type >= NLMSG_MIN_TYPE) onMessage?.(off, len, type, flags);
        else if (type === NLMSG_ERROR) {
          if (len < NLMSG_HDRLEN + 4 + NLMSG_HDRLEN) throw new NetlinkError(EBADMSG);
          const err = v.getInt32(off + NLMSG_HDRLEN, true);
          if (err === 0) return;
          // The request is echoed after the error code: its header only when capped.
          const echoed = flags & NLM_F_CAPPED ? NLMSG_HDRLEN : v.getUint32(off + 20, true);
          throw new NetlinkError(Math.abs(err), this.extack(off, len, flags, 20 + align4(echoed)));
        } else if (type === NLMSG_DONE) {
          const err = len >= NLMSG_HDRLEN + 4 ? v.getInt32(off + NLMSG_HDRLEN, true) : 0;
          if (err === 0) return;
          throw new NetlinkError(Math.abs(err), this.extack(off, len, flags, 20));
        }
        off += align4(len);
      }
    }
  }

  private extack(off: number, len: number, flags: number, tlvs: number): string | null {
    if (!(flags & NLM_F_ACK_TLVS)) return null;
    const c = new AttrCursor().over(this.rx, off + tlvs, off + len);
    while (c.next()) if (c.type === NLMSGERR_ATTR_MSG) return c.str();
    return null;
  }
}

/** Opens a channel for a netlink protocol (NETLINK_ROUTE, NETLINK_GENERIC). */
export type ChannelOpener = (protocol: number) => NetlinkChannel;

/** A bound AF_NETLINK socket (blocking; replies to a request arrive promptly). */
export class NetlinkSocket extends NetlinkChannel {
  readonly fd: number;
  readonly portId: number;
  readonly rx: Uint8Array;
  readonly rxView: DataView;
  private readonly name = new Uint8Array(SOCKADDR_NL_SIZE);
  private readonly iov = new Uint8Array(IOVEC_SIZE);
  private readonly hdr = new Uint8Array(MSGHDR_SIZE);
  private readonly hdrView: DataView;
  private readonly kernel = new Uint8Array(SOCKADDR_NL_SIZE);

  /** Throws NetlinkError with the errno of socket/bind/getsockname. */
  constructor(protocol: number, opts: SocketOptions = {}) {
    super();
    const fd = libc.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol);
    if (fd < 0) throw new NetlinkError(errno());
    try {
      if (opts.extAck) setInt(fd, SOL_NETLINK, NETLINK_EXT_ACK, 1);
      if (opts.strictCheck) setInt(fd, SOL_NETLINK, NETLINK_GET_STRICT_CHK, 1);
      new DataView(this.kernel.buffer).setUint16(0, AF_NETLINK, true);
      if (libc.bind(fd, this.kernel, SOCKADDR_NL_SIZE) < 0) throw new NetlinkError(errno());
      const sa = new Uint8Array(SOCKADDR_NL_SIZE);
      const salen = new Uint32Array([SOCKADDR_NL_SIZE]);
      if (libc.getsockname(fd, sa, salen) < 0) throw new NetlinkError(errno());
      const v = new DataView(sa.buffer);
      if (salen[0] !== SOCKADDR_NL_SIZE || v.getUint16(0, true) !== AF_NETLINK) throw new NetlinkError(EINVAL);
      this.portId = v.getUint32(4, true);
    } catch (e) {
      libc.close(fd);
      throw e;
    }
    this.fd = fd;
    this.rx = new Uint8Array(opts.bufferSize ?? socketBufferSize());
    this.rxView = new DataView(this.rx.buffer);
    // Small typed arrays move their bytes on first .buffer access; take the addresses after.
    void this.name.buffer, void this.iov.buffer, void this.hdr.buffer;
    const iovView = new DataView(this.iov.buffer);
    iovView.setBigUint64(0, BigInt(ptr(this.rx)), true);
    iovView.setBigUint64(8, BigInt(this.rx.length), true);
    this.hdrView = new DataView(this.hdr.buffer);
    this.hdrView.setBigUint64(MSG_NAME, BigInt(ptr(this.name)), true);
    this.hdrView.setBigUint64(MSG_IOV, BigInt(ptr(this.iov)), true);
    this.hdrView.setBigUint64(MSG_IOVLEN, 1n, true);
  }

  close(): void {
    libc.close(this.fd);
  }

  protected transmit(data: Uint8Array): void {
    for (;;) {
      if (Number(libc.sendto(this.fd, data, data.length, 0, this.kernel, SOCKADDR_NL_SIZE)) >= 0) return;
      const e = errno();
      if (e !== EINTR) throw new NetlinkError(e);
    }
  }

  /** MSG_TRUNC (a datagram larger than `rx`) is ENOSPC, as libmnl reports it. */
  protected receive(): number {
    for (;;) {
      this.hdrView.setUint32(MSG_NAMELEN, SOCKADDR_NL_SIZE, true);
      this.hdrView.setInt32(MSG_FLAGS, 0, true);
      const n = Number(libc.recvmsg(this.fd, this.hdr, 0));
      if (n < 0) {
        const e = errno();
        if (e === EINTR) continue;
        throw new NetlinkError(e);
      }
      if (this.hdrView.getInt32(MSG_FLAGS, true) & MSG_TRUNC) throw new NetlinkError(ENOSPC);
      if (this.hdrView.getUint32(MSG_NAMELEN, true) !== SOCKADDR_NL_SIZE) throw new NetlinkError(EINVAL);
      return n;
    }
  }
}

/** The default opener: a fresh kernel socket with libmnl's buffer size, as wg uses. */
export const openSocket: ChannelOpener = (protocol) => new NetlinkSocket(protocol);
