// JIT warm-up of the whole data path, I/O included. core/warmup.ts compiles the engine, but the
// I/O code (drain, recvmmsg/sendmmsg batching, TUN reads with segmentation, GRO merging on
// write) would still run through JavaScriptCore's interpreter for the first few hundred packets,
// and sparse traffic such as a ping every 200 ms would never get it compiled.
//
// This runs the real classes on private file descriptors: two engines, each behind its own
// LinuxIO whose "TUN" is one end of an AF_UNIX datagram socketpair (one packet per read, like a
// TUN with IFF_VNET_HDR) and whose UDP socket is bound to 127.0.0.1. Packets written into A's
// socketpair cross A's engine, real UDP over loopback, B's engine and come out of B's
// socketpair. It needs the loopback interface up; without it the caller falls back to the
// engine-only warm-up.
import { generatePrivateKey, publicKey } from "../../core/crypto.ts";
import type { Clock } from "../../core/device-api.ts";
import { createDevice, type Device } from "../../core/device.ts";
import { keyToHex } from "../../core/encoding.ts";
import { LinuxIO, READY_TUN, READY_UDP } from "./io-loop.ts";
import { AF_UNIX, MSG_DONTWAIT, SOCK_CLOEXEC, SOCK_DGRAM, SOCK_NONBLOCK, libc } from "./libc.ts";
import { Tun } from "./tun.ts";
import { VNET_HDR_LEN } from "./tun-offload.ts";

const TCP_MSS = 1380;

interface Side {
  engine: Device;
  io: LinuxIO;
  /** The far end of the socketpair: what the kernel side of a TUN would be. */
  wire: number;
}

const quiet = () => {};

/**
 * Sets up the private pair. Returns a step function that runs up to `slice` packets per call and
 * returns how many packets came out of B's side so far, or -1 once all `packets` ran and
 * everything is closed; or null when the pair cannot run here (no loopback).
 */
export function warmUpIo(packets: number, slice: number, clock: Clock): (() => number) | null {
  const sides: Side[] = [];
  const fds: number[] = [];
  const closeAll = () => {
    for (const s of sides) {
      s.engine.close();
      s.io.udp.close();
    }
    for (const fd of fds) libc.close(fd);
    sides.length = 0;
    fds.length = 0;
  };
  try {
    const keys = [generatePrivateKey(), generatePrivateKey()];
    for (let i = 0; i < 2; i++) {
      const pair = new Int32Array(2);
      if (libc.socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair) < 0) return closeAll(), null;
      fds.push(pair[0]!, pair[1]!);
      const io = new LinuxIO(Tun.fromFd(pair[0]!, `warm${i}`, true), { log: quiet });
      io.udp.loopbackOnly = true;
      const engine = createDevice(io, clock, { deferHandshakes: true });
      io.attach(engine);
      engine.uapi(`set=1\nprivate_key=${keyToHex(keys[i]!)}\nlisten_port=0\n\n`);
      engine.up();
      sides.push({ engine, io, wire: pair[1]! });
    }
    for (let i = 0; i < 2; i++) {
      const other = sides[1 - i]!;
      if (other.io.udp.port === 0) return closeAll(), null;
      sides[i]!.engine.uapi(
        `set=1\npublic_key=${keyToHex(publicKey(keys[1 - i]!))}\nendpoint=127.0.0.1:${other.io.udp.port}\n` +
          `allowed_ip=10.255.${1 - i}.0/24\n\n`,
      );
    }
  } catch {
    closeAll();
    return null;
  }

  const [a, b] = sides as [Side, Side];
  const frame = new Uint8Array(VNET_HDR_LEN + 40 + 8 * TCP_MSS);
  const frameView = new DataView(frame.buffer);
  const sink = new Uint8Array(70000);
  let delivered = 0;
  let seq = 1;
  let n = 0;
  let failures = 0;

  /** Everything the far end of a side's socketpair holds, thrown away; counts packets. */
  const drainWire = (s: Side) => {
    let got = 0;
    while (Number(libc.recv(s.wire, sink, sink.length, MSG_DONTWAIT)) > 0) got++;
    return got;
  };
  /** A packet from 10.255.from.1 to 10.255.to.1 as a TUN read would carry it. */
  const build = (from: number, to: number, k: number): number => {
    frame.fill(0, 0, VNET_HDR_LEN + 40);
    const ip = VNET_HDR_LEN;
    let len: number;
    if (k % 4 === 0) {
      // A TCP super-packet (TSO): header + several MSS of payload, checksum left to us.
      const segs = 1 + (k % 7);
      len = 40 + segs * TCP_MSS;
      frame[0] = 1; // NEEDS_CSUM
      frame[1] = 1; // GSO_TCPV4
      frameView.setUint16(2, 40, true);
      frameView.setUint16(4, TCP_MSS, true);
      frameView.setUint16(6, 20, true);
      frameView.setUint16(8, 16, true);
      frame[ip + 9] = 6;
      frameView.setUint16(ip + 20, 40000 + from);
      frameView.setUint16(ip + 22, 5201);
      frameView.setUint32(ip + 24, seq);
      frameView.setUint32(ip + 28, 1);
      frame[ip + 32] = 5 << 4;
      frame[ip + 33] = 0x18; // ACK|PSH
      frameView.setUint16(ip + 34, 65535);
      seq = (seq + segs * TCP_MSS) >>> 0;
    } else {
      // An ICMP echo of a ping's size, or a larger one.
      len = k % 4 === 1 ? 84 : 576 + (k % 3) * 400;
      frame[ip + 9] = 1;
      frame[ip + 20] = 8;
    }
    frame[ip] = 0x45;
    frameView.setUint16(ip + 2, Math.min(len, 65535));
    frame[ip + 8] = 64;
    frame.set([10, 255, from, 1, 10, 255, to, 1], ip + 12);
    return VNET_HDR_LEN + len;
  };
  const send = (from: Side, to: Side, k: number) => {
    const size = build(from === a ? 0 : 1, from === a ? 1 : 0, k);
    if (Number(libc.write(from.wire, frame, size)) !== size) failures++;
    from.io.pump(READY_TUN);
    // Loopback delivers during sendmmsg; a few passes carry handshake round trips too.
    for (let pass = 0; pass < 3; pass++) {
      to.io.pump(READY_UDP | READY_TUN);
      from.io.pump(READY_UDP);
    }
    const got = drainWire(to);
    drainWire(from);
    if (to === b) delivered += got;
  };

  return () => {
    if (n >= packets) return -1;
    const end = Math.min(packets, n + slice);
    for (; n < end; n++) send(n % 5 === 4 ? b : a, n % 5 === 4 ? a : b, n);
    if (n >= packets || failures > 16) {
      n = packets;
      closeAll();
    }
    return delivered;
  };
}
