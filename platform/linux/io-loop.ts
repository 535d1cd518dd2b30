// Drives the engine from the OS: TUN reads, UDP batches, link state, timers.
//
// Bun FFI calls are synchronous, so a blocking read() would freeze the event loop (UAPI, timers).
// Instead every fd is non-blocking and a tiny Worker does nothing but a blocking poll() on them;
// when something is readable it flips a shared flag and the main thread, woken through
// Atomics.waitAsync, reads what poll reported (recvmmsg batches, TUN reads; see drain()), flushes
// one sendmmsg, then waits up to LINGER_US in ppoll itself for the next burst before re-arming
// the poller. Measured on the 2-core box: the worker/waitAsync hand-off round trip runs ~31k/s
// when hot; an idle wake costs a median ~60 us (postMessage: ~100 us), ~110-140 us from poll()
// returning to JS running on the main thread during 10 ms pings. A 2 ms linger (was 250 us)
// catches the echo of what was just sent (per 123 pings the pinging side had 128 poller wakes and
// 120 linger hits, was 167 and 74); ping medians moved 1.14 -> 0.76, 1.43 -> 1.48, 0.90 -> 0.87 ms
// in three noisy sets (bench/RESULTS.md). The poller reports which fds were readable, so a wake
// does not pay for reads that would only say EAGAIN. Not tried, by reasoning: poll(0) from setImmediate burns a
// core while idle; node:fs reads cost a threadpool hop per packet.

import type { DeviceEvent, DeviceIO, Endpoint, Engine, TxAccount } from "../../core/device-api.ts";
import * as E from "../../core/errno.ts";
import { EFD_CLOEXEC, EFD_NONBLOCK, IFF_UP, AF_NETLINK, NETLINK_ROUTE, RTMGRP_LINK, SOCK_CLOEXEC, SOCK_NONBLOCK, SOCK_RAW, SysError, errno, libc } from "./libc.ts";
import type { Tun } from "./tun.ts";
import { BATCH, Udp } from "./udp.ts";

export type LogLevel = "silent" | "error" | "verbose" | "debug";
export type Logger = (level: "error" | "verbose" | "debug", msg: string) => void;

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
const MAX_FDS = 4;
export const READY_TUN = 1 << SLOT_TUN;
export const READY_UDP = 1 << SLOT_UDP;
const READY_NL = 1 << SLOT_NL;
const READY_KICK = 1 << SLOT_KICK;
const READY_ALL = READY_TUN | READY_UDP | READY_NL | READY_KICK;
/** Time per drain pass spent answering queued handshake messages (ms). */
const HANDSHAKE_PASS_BUDGET_MS = 2;
/**
 * How long the main thread waits in ppoll for more packets after a batch (microseconds). Long
 * enough to catch the answer to what was just sent (a ping's echo crosses both daemons in
 * ~0.5-1 ms here), so it is taken without the poller hop; the event loop (UAPI, signals) waits at
 * most this long, and never past the engine's next timer.
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
  private linkUp = false;
  private mtu = 0;
  private exitReason = "";
  private readonly onTun = (buf: Uint8Array, off: number, len: number) => {
    this.engine!.sendTunPacket(buf, off, len);
  };
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

  clearSrc(ep: Endpoint): void {
    this.udp.clearSrc(ep);
  }

  log(level: "error" | "verbose" | "debug", msg: string): void {
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
    this.nlFd = openLinkMonitor();
    this.running = true;
    this.mtu = this.tun.mtu();
    if (this.mtu > 0) engine.setMtu(this.mtu);
    // wireguard-go 0.0.20220316 brings the device up as soon as it exists, whatever the link
    // state: its TUN status probe (a zero-length write) reads as "up" on a down link, so the
    // UDP port is bound and `wg show` lists it right after start. Measured, see checkLink().
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
      // More packets (the next burst, or the answer to what we just sent) are usually less than
      // a millisecond or two away: wait for them right here, asleep in ppoll, instead of paying
      // the hand-off through the poller thread and the event loop (~100 us median from idle).
      // Bounded so UAPI requests and timers still get the event loop under constant load.
      // While traffic is recent (HOT_MS) the main thread keeps polling in such stretches, with
      // an event-loop turn between them, so sparse packets (a ping every 200 ms) wake it
      // directly instead of costing two thread wake-ups each; after HOT_MS of silence the
      // poller thread takes over again and an idle daemon sleeps.
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
      `I/O stats: wakeups ${this.wakeups}, linger hits ${this.lingerHits}, tun rx ${this.tunRx} tx ${this.tunTx} (writes ${this.tun.writes}, merged ${this.tun.merged}, super-packets ${this.tun.superReads} -> ${this.tun.segments}), udp rx ${this.udp.rxPackets} tx ${this.udp.txPackets} (gso messages ${this.udp.gsoMessages}) dropped ${this.udp.txDropped}`,
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
    if (this.kickFd >= 0) libc.close(this.kickFd);
    this.nlFd = this.kickFd = -1;
    this.opts.onExit?.(reason);
  }

  /**
   * Runs one UAPI request through the engine, then flushes what it queued and re-arms timers.
   * `close`: the connection must be closed after the response (an unknown operation, like go).
   */
  uapi(request: string): { response: string; close: boolean } {
    const engine = this.engine!;
    let res: { response: string; close: boolean };
    if (engine.uapiSession) res = engine.uapiSession(request);
    else {
      const response = engine.uapi(request);
      res = { response, close: response === "" };
    }
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
   * one packet poll announced): asking again would cost a syscall that only says EAGAIN, and a
   * syscall is dear on this kind of VM (page-table isolation flushes the TLB on every entry, so
   * the code after it runs cold). The caller's ppoll answers "is there more?" for every fd at
   * once, and returns at once when there is. Measured per ping on the pinging side: 9 syscalls
   * (5 of them EAGAIN reads) before, 5 after.
   */
  private drain(ready: number): void {
    const engine = this.engine!;
    const udp = this.udp;
    const tun = this.tun;
    if ((ready & READY_KICK) !== 0 && this.kickFd >= 0) libc.read(this.kickFd, this.evBuf, 8);
    if ((ready & READY_NL) !== 0 && this.nlFd >= 0) this.drainNetlink();
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
          if (n === -E.EBADFD || n === -E.EIO || n === -E.EBADF) {
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
    let any = false;
    while (Number(libc.recv(this.nlFd, this.nlBuf, this.nlBuf.length, 0x40)) > 0) any = true;
    if (any) this.checkLink();
  }

  /**
   * Follows the link: MTU into setMtu, exit when it is gone, and "up" retries engine.up() (a
   * no-op when already up; go's "Interface up requested"). Link down changes nothing, like
   * wireguard-go 0.0.20220316 on Linux: it never sees a down event for its own TUN (its netlink
   * watcher keys on IFF_RUNNING and its write probe keeps saying "up"), so the device stays up,
   * the port stays bound and sessions and timers continue across `ip link set down`/`up`.
   */
  checkLink(): void {
    const engine = this.engine!;
    const flags = this.tun.flags();
    if (flags < 0) {
      if (flags === -E.ENODEV) this.stop("interface removed");
      return;
    }
    const up = (flags & IFF_UP) !== 0;
    const mtu = this.tun.mtu();
    if (mtu > 0 && mtu !== this.mtu) {
      this.mtu = mtu;
      this.opts.log("verbose", `MTU updated: ${mtu}`);
      engine.setMtu(mtu);
    }
    if (up !== this.linkUp) {
      this.linkUp = up;
      if (up) this.bringUp();
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

/** A NETLINK_ROUTE socket subscribed to link changes (up/down, MTU, deletion). */
function openLinkMonitor(): number {
  const fd = libc.socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) return -1;
  const sa = new Uint8Array(12);
  const dv = new DataView(sa.buffer);
  dv.setUint16(0, AF_NETLINK, true);
  dv.setUint32(8, RTMGRP_LINK, true);
  if (libc.bind(fd, sa, 12) < 0) {
    libc.close(fd);
    return -1;
  }
  return fd;
}
