// Drives the engine from the OS: TUN reads, UDP batches, link state, timers.
//
// Bun's FFI calls are synchronous, so a blocking read() would freeze the event loop (UAPI,
// timers). Every fd is therefore non-blocking, and the loop runs in three states:
//
//   idle     A small Worker blocks in poll() on the TUN, UDP, link-monitor, route-monitor and
//            kick fds. When one is readable it records which (S_READY), raises S_STATE and waits;
//            the main thread, parked in Atomics.waitAsync, wakes up.
//   drain    The main thread reads only the fds poll reported (drain(): recvmmsg batches into
//            the engine, the handshake queue for a bounded slice, TUN reads), flushes one
//            sendmmsg and runs due timers.
//   linger   Instead of handing back to the poller at once, the main thread waits in ppoll on
//            the same fds for up to LINGER_US: the answer to what was just sent usually arrives
//            within that, and is then taken without two thread wake-ups. Stretches of lingering
//            are bounded by LINGER_BUDGET_MS and never pass the engine's next timer, with an
//            event-loop turn between them, so UAPI requests and timers always get their turn.
//            While traffic is recent (HOT_MS) the main thread keeps lingering, so sparse packets
//            also wake it directly; after HOT_MS of silence it clears S_STATE and the poller
//            takes over again, so an idle daemon sleeps.
//
// The poller reports which fds were readable, so a wake-up does not pay for reads that would
// only say EAGAIN. A poll(0) from setImmediate was not used because it keeps a core busy while
// idle; node:fs reads were not used because they cost a thread-pool hop per packet.
// bench/RESULTS.md has the measurements behind LINGER_US, HOT_MS and the drain order.

import type { DeviceEvent, DeviceIO, Engine, LogLevel, Logger, TxAccount, UapiReply } from "../../core/device-api.ts";
import type { Endpoint } from "../../core/endpoint.ts";
import { EBADF, EBADFD, EIO, ENOBUFS } from "../../core/errno.ts";
import { AF_INET, EFD_CLOEXEC, EFD_NONBLOCK, IFF_UP, AF_NETLINK, MSG_DONTWAIT, NETLINK_ROUTE, RTMGRP_LINK, SOCK_CLOEXEC, SOCK_NONBLOCK, SOCK_RAW, SOL_NETLINK, SysError, errno, libc, setInt } from "./libc.ts";
import type { NetlinkSocket } from "./netlink.ts";
import { openRtnetlink, routeOutputIf } from "./rtnetlink.ts";
import type { Tun } from "./tun.ts";
import { isOwnDatagram } from "./loop-guard.ts";
import { BATCH, Udp, scopeName } from "./udp.ts";

// Shared flag layout (Int32 indices).
const S_STATE = 0; // 0 = poller armed/polling, 1 = something readable, main thread working
const S_STOP = 1;
const S_READY = 2; // bit per slot that poll() found readable, written by the poller before S_STATE
const S_FDS = 3; // one fd per slot, -1 when absent (poll() skips negative fds)
// Fixed slots, so the main thread knows from S_READY which reads are worth a syscall.
const SLOT_TUN = 0;
const SLOT_UDP = 1;
const SLOT_NL = 2;
const SLOT_KICK = 3;
const SLOT_RT = 4;
const MAX_FDS = 5;
export const READY_TUN = 1 << SLOT_TUN;
export const READY_UDP = 1 << SLOT_UDP;
const READY_NL = 1 << SLOT_NL;
const READY_KICK = 1 << SLOT_KICK;
const READY_RT = 1 << SLOT_RT;
const READY_ALL = READY_TUN | READY_UDP | READY_NL | READY_KICK | READY_RT;
/** Time per drain pass spent answering queued handshake messages (ms). */
const HANDSHAKE_PASS_BUDGET_MS = 2;
/**
 * How long the main thread waits in ppoll for more packets after a batch (microseconds): long
 * enough for the answer to what was just sent to cross both daemons, so it is taken without the
 * poller hop. The event loop (UAPI, signals) waits at most this long, and never past the
 * engine's next timer.
 */
const LINGER_US = Number(process.env.WG_LINGER_US ?? 2000);
/** Bound on one stretch of lingering under constant traffic before the event loop gets a turn. */
const LINGER_BUDGET_MS = 8;
/** A TUN packet this soon after the previous one (ms) marks a flow worth reading out in batches. */
const TUN_DENSE_MS = 1;
/** How long after the last packet the main thread keeps polling itself (ms); 0 = linger only. */
const HOT_MS = Number(process.env.WG_HOT_MS ?? 1000);

const POLLER_SOURCE = `
import { dlopen, FFIType } from "bun:ffi";
const lib = dlopen("libc.so.6", {
  poll: { args: [FFIType.ptr, FFIType.u64, FFIType.i32], returns: FFIType.i32 },
});
self.onmessage = (ev) => {
  const st = new Int32Array(ev.data);
  const pfd = new Int32Array(${MAX_FDS * 2});
  while (Atomics.load(st, ${S_STOP}) === 0) {
    for (let i = 0; i < ${MAX_FDS}; i++) { pfd[2 * i] = Atomics.load(st, ${S_FDS} + i); pfd[2 * i + 1] = 1; }
    const r = lib.symbols.poll(pfd, ${MAX_FDS}, 1000);
    if (r <= 0) continue;
    let ready = 0;
    for (let i = 0; i < ${MAX_FDS}; i++) if ((pfd[2 * i + 1] >>> 16) !== 0) ready |= 1 << i;
    Atomics.store(st, ${S_READY}, ready);
    Atomics.store(st, ${S_STATE}, 1);
    Atomics.notify(st, ${S_STATE});
    while (Atomics.load(st, ${S_STATE}) === 1 && Atomics.load(st, ${S_STOP}) === 0) Atomics.wait(st, ${S_STATE}, 1, 1000);
  }
  self.postMessage("stopped");
};
`;

export interface LoopOptions {
  log: Logger;
  /** Called once when the loop stops because the interface vanished or stop() was called. */
  onExit?: (reason: string) => void;
  /** The engine's structured notifications (handshakes, endpoints, peers). */
  onEvent?: (ev: DeviceEvent) => void;
}

/**
 * The DeviceIO the engine talks to, and the loop that feeds it. Create, hand to createDevice,
 * then attach(engine) and start().
 */
export class LinuxIO implements DeviceIO {
  readonly udp = new Udp();
  engine: Engine | null = null;
  private readonly sab = new SharedArrayBuffer(64);
  private readonly st = new Int32Array(this.sab);
  private worker: Worker | null = null;
  private running = false;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private timerAt = Infinity;
  private readonly evBuf = new Uint8Array(8);
  private readonly nlBuf = new Uint8Array(8192);
  private kickFd = -1;
  private nlFd = -1;
  /** IPv4 route and address notifications of the UDP socket's namespace, and a socket to ask it. */
  private rtFd = -1;
  private rtQuery: NetlinkSocket | null = null;
  private linkUp = false;
  private linkAway = false;
  private mtu = 0;
  private exitReason = "";
  private readonly onTun = (buf: Uint8Array, off: number, len: number) => {
    if (this.loopGuard && isOwnDatagram(buf, off, len, this.udp.port, this.isPeerEndpoint)) {
      if (this.loopDrops++ % 1024 === 0) this.opts.log("debug", `Avoiding routing loop: an encrypted packet of ours came back through the interface (${this.loopDrops} so far)`);
      return;
    }
    this.engine!.sendTunPacket(buf, off, len);
  };
  private readonly isPeerEndpoint = (family: 4 | 6, addr: Uint8Array, off: number, port: number) => this.engine!.isPeerEndpoint(family, addr, off, port);
  /** The TUN and the UDP socket share a namespace, so our own datagrams can loop (loop-guard.ts). */
  private loopGuard = true;
  /** Packets dropped by the loop guard (statistics). */
  loopDrops = 0;
  private readonly onUdp = (buf: Uint8Array, off: number, len: number, src: Endpoint) => {
    this.engine!.receiveUdp(buf, off, len, src);
  };
  /** Statistics for tests/benchmarks. */
  wakeups = 0;
  lingerHits = 0;
  private readonly lingerFds = new Int32Array(MAX_FDS * 2);
  private readonly lingerSlots = new Int32Array(MAX_FDS);
  private readonly linger = new BigInt64Array([0n, BigInt(LINGER_US * 1000)]);
  /** tv_nsec's low word, rewritten per wait without allocating a BigInt (tv_nsec < 1e9). */
  private readonly lingerNs = new Int32Array(this.linger.buffer);
  private lingerCount = 0;
  private lastTunMs = -Infinity;
  tunRx = 0;
  tunTx = 0;

  constructor(
    readonly tun: Tun,
    private readonly opts: LoopOptions,
  ) {}

  // ---- DeviceIO -------------------------------------------------------------------------------

  sendUdp(buf: Uint8Array, off: number, len: number, ep: Endpoint, account?: TxAccount): void {
    this.udp.send(buf, off, len, ep, account);
  }

  writeTun(buf: Uint8Array, off: number, len: number): void {
    if (this.tun.write(buf, off, len) > 0) this.tunTx++;
  }

  bind(port: number, fwmark: number): number {
    try {
      const p = this.udp.bind(port, fwmark);
      this.opts.log("verbose", `UDP bind has been updated (port ${p}${fwmark ? `, fwmark ${fwmark}` : ""})`);
      return p;
    } finally {
      this.publishFds();
    }
  }

  scopeName(scope: number): string {
    return scopeName(scope);
  }

  log(level: LogLevel, msg: string): void {
    this.opts.log(level, msg);
  }

  event(ev: DeviceEvent): void {
    this.opts.onEvent?.(ev);
  }

  // ---- loop -----------------------------------------------------------------------------------

  attach(engine: Engine): void {
    this.engine = engine;
  }

  /** Starts polling; resolves when the loop has stopped. */
  async start(): Promise<string> {
    const engine = this.engine;
    if (!engine) throw new Error("LinuxIO.start before attach");
    this.kickFd = libc.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (this.kickFd < 0) throw new SysError("eventfd", errno());
    this.nlFd = openMonitor(RTMGRP_LINK, true);
    this.openRouteMonitor();
    this.running = true;
    this.mtu = this.tun.mtu();
    if (this.mtu > 0) engine.setMtu(this.mtu);
    // Like wireguard-go 0.0.20220316 the port is bound as soon as the device exists, whatever the
    // link state, so `wg show` lists it right after start; like the kernel, the engine sends and
    // answers only while the link is up (checkLink()).
    engine.setLinkUp(false);
    this.bringUp();
    this.checkLink();
    this.publishFds();
    const url = URL.createObjectURL(new Blob([POLLER_SOURCE], { type: "application/javascript" }));
    const worker = new Worker(url);
    this.worker = worker;
    worker.unref?.();
    worker.postMessage(this.sab);
    this.schedule();
    const st = this.st;
    while (this.running) {
      const w = Atomics.waitAsync(st, S_STATE, 0);
      if (w.async) await w.value;
      if (!this.running) break;
      if (Atomics.load(st, S_STATE) !== 1) continue;
      this.wakeups++;
      this.safeDrain(Atomics.load(st, S_READY) || READY_ALL);
      // Linger (see the header): the first wait of a stretch is LINGER_US, later ones up to the
      // stretch's budget; every wait ends at the engine's next timer.
      let lastTraffic = performance.now();
      for (let stretch = 0; this.running; stretch++) {
        const until = performance.now() + LINGER_BUDGET_MS;
        const perWait = stretch === 0 ? LINGER_US * 1000 : LINGER_BUDGET_MS * 1e6;
        for (let extra = 0; extra < 64 && this.running; extra++) {
          const now = performance.now();
          const left = Math.min(until, engine.nextDeadline()) - now;
          if (left <= 0) break;
          this.lingerNs[2] = Math.min(perWait, Math.ceil(left * 1e6));
          if (libc.ppoll(this.lingerFds, this.lingerCount, this.linger, null) <= 0) break;
          this.lingerHits++;
          lastTraffic = performance.now();
          let ready = 0;
          for (let i = 0; i < this.lingerCount; i++) if (this.lingerFds[2 * i + 1]! >>> 16 !== 0) ready |= this.lingerSlots[i]!;
          this.safeDrain(ready);
        }
        if (performance.now() - lastTraffic >= HOT_MS) break;
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
      Atomics.store(st, S_STATE, 0);
      Atomics.notify(st, S_STATE);
    }
    this.opts.log(
      "verbose",
      `I/O stats: wakeups ${this.wakeups}, linger hits ${this.lingerHits}, tun rx ${this.tunRx} tx ${this.tunTx} (writes ${this.tun.writes}, merged ${this.tun.merged}, super-packets ${this.tun.superReads} -> ${this.tun.segments}), udp rx ${this.udp.rxPackets} tx ${this.udp.txPackets} (gso messages ${this.udp.gsoMessages}) dropped ${this.udp.txDropped}, routing-loop drops ${this.loopDrops}`,
    );
    return this.exitReason;
  }

  /** Stops the loop and the poller (idempotent). Does not close the TUN or the engine. */
  stop(reason = "stopped"): void {
    if (!this.running) return;
    this.running = false;
    this.exitReason = reason;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    Atomics.store(this.st, S_STOP, 1);
    Atomics.store(this.st, S_STATE, 1);
    Atomics.notify(this.st, S_STATE);
    this.kick();
    this.worker?.terminate();
    this.worker = null;
    if (this.nlFd >= 0) libc.close(this.nlFd);
    if (this.rtFd >= 0) libc.close(this.rtFd);
    if (this.kickFd >= 0) libc.close(this.kickFd);
    this.nlFd = this.rtFd = this.kickFd = -1;
    this.rtQuery?.close();
    this.rtQuery = null;
    this.opts.onExit?.(reason);
  }

  /**
   * Runs one UAPI request through the engine, then flushes what it queued and re-arms timers.
   * `close`: the connection must be closed after the response (an unknown operation, like go).
   */
  uapi(request: string): UapiReply {
    const res = this.engine!.uapi(request);
    this.udp.flush();
    this.schedule();
    return res;
  }

  /**
   * One drain pass outside the loop, for an instance that is never start()ed: the I/O warm-up
   * drives a private pair this way. Leaves no timer behind.
   */
  pump(ready: number): void {
    this.running = true;
    try {
      this.safeDrain(ready);
    } finally {
      this.running = false;
      if (this.timer !== null) clearTimeout(this.timer);
      this.timer = null;
      this.timerAt = Infinity;
    }
  }

  private publishFds(): void {
    const slots: [number, number][] = [
      [SLOT_TUN, this.tun.fd],
      [SLOT_UDP, this.udp.fd],
      [SLOT_NL, this.nlFd],
      [SLOT_KICK, this.kickFd],
      [SLOT_RT, this.rtFd],
    ];
    for (const [slot, fd] of slots) Atomics.store(this.st, S_FDS + slot, fd >= 0 ? fd : -1);
    // The linger set leaves out the kick eventfd (it only wakes the poller thread).
    let n = 0;
    for (const [slot, fd] of slots) {
      if (fd < 0 || slot === SLOT_KICK) continue;
      this.lingerFds[2 * n] = fd;
      this.lingerFds[2 * n + 1] = 1;
      this.lingerSlots[n] = 1 << slot;
      n++;
    }
    this.lingerCount = n;
    this.kick();
  }

  private kick(): void {
    if (this.kickFd < 0) return;
    this.evBuf[0] = 1;
    libc.write(this.kickFd, this.evBuf, 8);
  }

  /** An engine bug on one packet must not take the tunnel down: log it and carry on. */
  private safeDrain(ready: number): void {
    try {
      this.drain(ready);
    } catch (e) {
      this.udp.flush();
      this.tun.flush();
      this.opts.log("error", `I/O loop: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    }
  }

  /**
   * One pass over what poll reported readable (`ready`: READY_* bits). It reads only those fds
   * and stops at the first sign a queue is empty (a short recvmmsg batch; for a sparse TUN, the
   * one packet poll announced): asking again would cost a syscall that only says EAGAIN, and
   * every syscall costs more than its own work (with page-table isolation the code after it runs
   * cold). The caller's ppoll answers "is there more?" for every fd at once, and returns at once
   * when there is.
   */
  private drain(ready: number): void {
    const engine = this.engine!;
    const udp = this.udp;
    const tun = this.tun;
    if ((ready & READY_KICK) !== 0 && this.kickFd >= 0) libc.read(this.kickFd, this.evBuf, 8);
    if ((ready & READY_NL) !== 0 && this.nlFd >= 0) this.drainNetlink();
    if ((ready & READY_RT) !== 0 && this.rtFd >= 0) this.drainRoutes();
    if (!this.running) return;
    if ((ready & READY_UDP) !== 0) {
      for (let k = 0; k < 4; k++) {
        if (udp.receive(this.onUdp) <= 0 || udp.lastBatch < BATCH) break;
      }
    }
    // Handshakes wait in the engine's queue and get a slice of time per pass: when they arrive
    // faster than that, the backlog grows and the engine turns to cookies (go's rule).
    engine.processHandshakes?.(HANDSHAKE_PASS_BUDGET_MS);
    tun.flush();
    if ((ready & READY_TUN) !== 0) {
      // A packet within TUN_DENSE_MS of the previous one means a flow: read the queue out in one
      // go. Otherwise take the one packet poll announced and send it without a wasted read.
      const now = performance.now();
      const limit = now - this.lastTunMs < TUN_DENSE_MS ? BATCH : 1;
      this.lastTunMs = now;
      for (let k = 0; k < limit; k++) {
        const n = tun.receive(this.onTun);
        if (n === 0) break;
        if (n < 0) {
          if (n === -EBADFD || n === -EIO || n === -EBADF) {
            udp.flush();
            this.stop("interface removed");
            return;
          }
          break;
        }
        this.tunRx += n;
      }
    }
    udp.flush();
    if (engine.nextDeadline() <= performance.now()) {
      engine.tick();
      udp.flush();
    }
    this.schedule();
  }

  private drainNetlink(): void {
    if (this.drainSocket(this.nlFd)) this.checkLink();
  }

  /**
   * Reads a notification socket empty; true when anything was there, also when the socket
   * overflowed (ENOBUFS: notifications were lost, so the state must be read afresh).
   */
  private drainSocket(fd: number): boolean {
    let any = false;
    for (;;) {
      const n = Number(libc.recv(fd, this.nlBuf, this.nlBuf.length, MSG_DONTWAIT));
      if (n > 0 || (n < 0 && errno() === ENOBUFS)) any = true;
      else return any;
    }
  }

  /**
   * Routes or addresses changed: every sticky source is checked again, as the kernel checks it
   * when its route cache was dropped (below), and one that fails is forgotten.
   */
  private drainRoutes(): void {
    if (!this.drainSocket(this.rtFd) || this.rtQuery === null) return;
    const dropped = this.engine!.checkSources(this.keepSource);
    if (dropped > 0) this.opts.log("debug", `Routes changed: ${dropped} sticky source(s) dropped`);
  }

  /**
   * The kernel's rule for an IPv4 sticky source (send4): it stays while the route to the peer
   * from that address leaves through the interface the peer's packets arrived on. An IPv6 source
   * is only checked for existence (send6), which the send path does (a failed send drops it).
   */
  private readonly keepSource = (ep: Endpoint): boolean => {
    if (ep.family !== 4) return true;
    const oif = routeOutputIf(this.rtQuery!, AF_INET, ep.addr, ep.src, this.udp.fwmark);
    return oif >= 0 && (ep.srcIfindex === 0 || oif === ep.srcIfindex);
  };

  /** The route monitor and query socket, where the UDP socket lives (--udp-netns). Best effort. */
  private openRouteMonitor(): void {
    const make = () => {
      // IPv4 only: keepSource checks nothing else.
      this.rtFd = openMonitor(RTMGRP_IPV4_IFADDR | RTMGRP_IPV4_ROUTE, false);
      try {
        this.rtQuery = openRtnetlink();
      } catch {
        this.rtQuery = null;
      }
      return this.rtFd;
    };
    if (this.udp.createIn) this.udp.createIn(make);
    else make();
  }

  /**
   * Follows the link wherever it lives: MTU into setMtu, link up/down into the engine (the
   * kernel's device open/stop), exit when the device is deleted. A move to another namespace
   * keeps the daemon (and its UDP socket, where it was) running; "up" also retries the bind.
   */
  checkLink(): void {
    const engine = this.engine!;
    const link = this.tun.link();
    if (link === null) {
      this.stop("interface removed");
      return;
    }
    if (link === undefined) return;
    this.loopGuard = !link.away && this.udp.createIn === null;
    if (link.away !== this.linkAway) {
      this.linkAway = link.away;
      this.opts.log("verbose", link.away ? `Interface moved to another network namespace (now ${link.name}); UDP stays here` : `Interface back in the daemon's network namespace (${link.name})`);
    }
    const up = (link.flags & IFF_UP) !== 0;
    if (link.mtu > 0 && link.mtu !== this.mtu) {
      this.mtu = link.mtu;
      this.opts.log("verbose", `MTU updated: ${link.mtu}`);
      engine.setMtu(link.mtu);
    }
    if (up !== this.linkUp) {
      this.linkUp = up;
      engine.setLinkUp(up);
      if (up) this.bringUp();
      else this.udp.flush();
    }
    this.schedule();
  }

  private bringUp(): void {
    try {
      this.engine!.up();
    } catch {
      // The engine logged the bind failure and stays down, like go; the next link-up retries.
    }
    this.udp.flush();
    this.publishFds();
  }

  /** Keeps one setTimeout aimed at engine.nextDeadline(). */
  schedule(): void {
    if (!this.running || !this.engine) return;
    const at = this.engine.nextDeadline();
    if (at === this.timerAt && this.timer !== null) return;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.timerAt = at;
    if (!Number.isFinite(at)) return;
    const delay = Math.max(0, Math.min(at - performance.now(), 2 ** 31 - 1));
    this.timer = setTimeout(this.fire, Math.ceil(delay));
  }

  private readonly fire = () => {
    this.timer = null;
    this.timerAt = Infinity;
    if (!this.running || !this.engine) return;
    this.engine.tick();
    this.udp.flush();
    this.schedule();
  };
}

const RTMGRP_IPV4_IFADDR = 0x10;
const RTMGRP_IPV4_ROUTE = 0x40;
const NETLINK_LISTEN_ALL_NSID = 8;

/**
 * A NETLINK_ROUTE socket subscribed to `groups`. `allNsid`: also hears namespaces that have an
 * id here (the link monitor follows a TUN moved elsewhere this way; Tun.link() assigns the id).
 */
function openMonitor(groups: number, allNsid: boolean): number {
  const fd = libc.socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) return -1;
  if (allNsid) setInt(fd, SOL_NETLINK, NETLINK_LISTEN_ALL_NSID, 1);
  const sa = new Uint8Array(12);
  const dv = new DataView(sa.buffer);
  dv.setUint16(0, AF_NETLINK, true);
  dv.setUint32(8, groups, true);
  if (libc.bind(fd, sa, 12) < 0) {
    libc.close(fd);
    return -1;
  }
  return fd;
}
