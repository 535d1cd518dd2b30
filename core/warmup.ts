// JIT warm-up for a freshly started daemon. JavaScriptCore compiles hot functions in tiers, so
// the first packets of a new process run through its interpreter and baseline code, many times
// slower than the optimised code that follows. Pushing packets through a private pair of
// engines, with the same functions the real device uses, gets the data path compiled before
// real traffic arrives. Pure: in-memory link, injected fake clock.
import { generatePrivateKey, publicKey } from "./crypto.ts";
import type { DeviceIO } from "./device-api.ts";
import { createDevice, type Device } from "./device.ts";
import { Endpoint, formatEndpoint } from "./endpoint.ts";
import { keyToHex } from "./encoding.ts";

/** Sizes that cover keepalive-like, small, MTU-sized packets and padding remainders. */
const SIZES = [28, 64, 84, 100, 576, 1280, 1420];

/**
 * Prepares `packets` packets of warm-up; each call of the returned function runs up to `slice`
 * of them (so a caller can yield to its event loop in between) and returns how many IP packets
 * the two engines delivered so far, or -1 once everything ran and the engines are closed.
 */
export function warmUp(packets: number, slice = packets): () => number {
  let now = 1_000_000;
  const clock = { mono: () => now, wall: () => 1_700_000_000_000 + now };
  let delivered = 0;
  const queue: { to: Device; data: Uint8Array; from: Endpoint }[] = [];
  const eps = [Endpoint.of(4, [192, 0, 2, 1], 1), Endpoint.of(4, [192, 0, 2, 2], 2)];
  const devs: Device[] = [];
  for (let i = 0; i < 2; i++) {
    const io: DeviceIO = {
      sendUdp: (buf, off, len) => queue.push({ to: devs[1 - i]!, data: buf.slice(off, off + len), from: eps[i]! }),
      writeTun: () => void delivered++,
      bind: (port) => port || 1 + i,
    };
    devs.push(createDevice(io, clock));
  }
  const keys = [generatePrivateKey(), generatePrivateKey()];
  for (let i = 0; i < 2; i++) {
    const other = 1 - i;
    devs[i]!.uapi(
      `set=1\nprivate_key=${keyToHex(keys[i]!)}\nlisten_port=${i + 1}\npublic_key=${keyToHex(publicKey(keys[other]!))}\n` +
        `endpoint=${formatEndpoint(eps[other]!)}\nallowed_ip=10.255.255.${other + 1}/32\n\n`,
    );
    devs[i]!.up();
  }
  const pump = () => {
    for (let q = queue.shift(); q !== undefined; q = queue.shift()) q.to.receiveUdp(q.data, 0, q.data.length, q.from);
  };
  const packet = new Uint8Array(1420);
  let n = 0;
  return () => {
    if (n >= packets) return -1;
    const end = Math.min(packets, n + slice);
    for (; n < end; n++) {
      const from = n & 1;
      const len = SIZES[n % SIZES.length]!;
      packet.fill(0, 0, 20);
      packet[0] = 0x45;
      packet[2] = len >> 8;
      packet[3] = len & 0xff;
      packet[9] = 1;
      packet.set([10, 255, 255, from + 1], 12);
      packet.set([10, 255, 255, 2 - from], 16);
      devs[from]!.sendTunPacket(packet, 0, len);
      pump();
      if ((n & 63) === 0) {
        now += 10;
        for (const d of devs) d.tick();
        pump();
      }
    }
    if (n >= packets) for (const d of devs) d.close();
    return delivered;
  };
}
