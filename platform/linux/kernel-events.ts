// `wg events` for a kernel WireGuard link. The kernel has no event multicast, so the device is
// read with WG_CMD_GET_DEVICE every second (KERNEL_EVENTS_INTERVAL_MS) and what changed between
// two readings becomes the same lines our daemon sends (handshake, endpoint, peer-added,
// peer-removed). Handshakes that happen within one interval show as one; failed handshakes and
// key rotations are not visible this way. The stream ends when the link is gone.
import { strerror } from "../../core/errno.ts";
import { keyToBase64 } from "../../core/encoding.ts";
import type { WgDevice } from "../../core/tools/containers.ts";
import { deviceEvents, eventLine, handshakeMs } from "../../core/tools/events.ts";
import type { EventSubscription, SubscribeResult } from "../events-client.ts";
import { getDevice } from "./ipc-netlink.ts";

/** Reading interval: a handshake is reported at most this late. */
const KERNEL_EVENTS_INTERVAL_MS = 1000;
const iso = (ms: number) => new Date(ms).toISOString();

/** Follow kernel link `name`; fails (with wg's text for the errno) when it cannot be read now. */
export function followKernel(name: string, onLine: (line: string) => void): SubscribeResult {
  const first = getDevice(name);
  if (!first.ok) return { ok: false, error: strerror(first.errno), errno: first.errno };
  let last: WgDevice = first.device;
  const ended = Promise.withResolvers<void>();
  let timer: ReturnType<typeof setTimeout> | null = null;
  const stop = () => {
    if (timer !== null) clearTimeout(timer);
    timer = null;
    ended.resolve();
  };
  const poll = () => {
    const r = getDevice(name);
    if (!r.ok) return stop();
    const now = Date.now();
    for (const ev of deviceEvents(last, r.device)) {
      const p = ev.peer;
      const removed = ev.type === "peer-removed";
      const endpoint = ev.type === "handshake" || ev.type === "endpoint" ? p.endpoint : null;
      onLine(eventLine(name, ev.type, keyToBase64(p.publicKey), endpoint, removed ? 0 : handshakeMs(p), now, iso));
    }
    last = r.device;
    timer = setTimeout(poll, KERNEL_EVENTS_INTERVAL_MS);
  };
  timer = setTimeout(poll, KERNEL_EVENTS_INTERVAL_MS);
  const sub: EventSubscription = { ended: ended.promise, close: stop };
  return { ok: true, sub };
}
