// `wg`'s one door to WireGuard devices, as wireguard-tools' ipc.c: an interface with a
// connectable UAPI socket (/var/run/wireguard/NAME.sock) is a userspace daemon's and is spoken to
// over UAPI (ipc-uapi.ts); any other name goes to the kernel over generic netlink
// (linux/ipc-netlink.ts), whose errors are then wg's (no such device, operation not permitted,
// protocol not supported when the module is missing).
import { applyWithRemovals, type DeviceIo } from "../core/tools/allowed-ip-removal.ts";
import type { DeviceConfig } from "../core/tools/containers.ts";
import type { GetResult } from "../core/tools/uapi.ts";
import * as kernel from "./linux/ipc-netlink.ts";
import * as uapi from "./ipc-uapi.ts";
import { subscribeEvents, type SubscribeResult } from "./events-client.ts";
import { followKernel } from "./linux/kernel-events.ts";
import { socketPath } from "./socket-path.ts";

export type ListResult = { ok: true; names: string[] } | { ok: false; errno: number };

/** wg's ipc_list_devices: kernel links in rtnetlink dump order, then UAPI sockets in directory order. */
export async function listInterfaces(): Promise<ListResult> {
  const k = kernel.kernelInterfaces();
  if (!k.ok) return k;
  const u = await uapi.userspaceInterfaces();
  if (!u.ok) return u;
  return { ok: true, names: [...k.names, ...u.names] };
}

/** Which backend serves `name`: a connectable UAPI socket wins. */
async function isUserspace(name: string): Promise<boolean> {
  return uapi.hasInterface(name);
}

/** wg's ipc_get_device. */
export async function getDevice(name: string): Promise<GetResult> {
  return (await isUserspace(name)) ? uapi.getDevice(name) : kernel.getDevice(name);
}

/**
 * wg's ipc_set_device: 0, or the errno wg reports. Removals of single allowed IPs are sent as
 * they are where the backend takes them, else rewritten as replacements (allowed-ip-removal.ts).
 */
export async function setDevice(name: string, config: DeviceConfig): Promise<number> {
  const io: DeviceIo = (await isUserspace(name))
    ? // Only the allowed IPs of this reading are used: endpoints need no resolver and cannot fail it.
      { get: () => uapi.getDevice(name, (host, port) => `${host}:${port}`), set: (c) => uapi.setDevice(name, c) }
    : { get: async () => kernel.getDevice(name), set: async (c) => kernel.setDevice(name, c) };
  return applyWithRemovals(io, config);
}

/**
 * `wg events` for one interface: our daemon pushes its events over the UAPI socket; a kernel
 * link is read periodically and the differences reported (linux/kernel-events.ts).
 */
export async function followEvents(name: string, onLine: (line: string) => void): Promise<SubscribeResult> {
  return (await isUserspace(name)) ? subscribeEvents(socketPath(name), onLine) : followKernel(name, onLine);
}
