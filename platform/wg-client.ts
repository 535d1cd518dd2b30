// The client library (the package's main export, `import * as wg from "wgts"`): list WireGuard
// interfaces, read one, change one, make keys and follow events, with typed results and errors.
// It is the `wg` command's own path, not a second implementation: the same backend chooser
// (ipc.ts: UAPI for userspace daemons, generic netlink for kernel links), the same value parsers
// and codecs (core/tools/), the same key encoding (core/encoding.ts) and the same event source as
// `wg events`. Needs Bun (bun:ffi underneath, for netlink and name resolution).
import { clampPrivateKey, generatePrivateKey as newPrivateKey, publicKey, randomBytes } from "../core/crypto.ts";
import { keyFromBase64, keyToBase64 } from "../core/encoding.ts";
import { configOf, deviceOf, eventOf, type Device, type DeviceUpdate, type WgEvent } from "../core/tools/client.ts";
import { badKey, errorOfErrno, NoSuchDeviceError, type WireGuardError } from "../core/tools/client-errors.ts";
import { followEvents, getDevice as ipcGetDevice, listInterfaces, setDevice } from "./ipc.ts";
import type { EventSubscription } from "./events-client.ts";
import { resolveEndpoint, resolvePort } from "./linux/resolve.ts";

export type { Device, DeviceUpdate, EventType, Peer, PeerUpdate, WgEvent } from "../core/tools/client.ts";
export { BadKeyError, InvalidArgumentError, NoSuchDeviceError, NotSupportedError, PermissionError, WireGuardError } from "../core/tools/client-errors.ts";

// The backends take interface names as byte strings (one char per byte), as the OS has them.
const toBytes = (s: string) => Buffer.from(s, "utf8").toString("latin1");
const fromBytes = (s: string) => Buffer.from(s, "latin1").toString("utf8");
const makeDate = (v: number | string) => new Date(v);

/** Names of every WireGuard interface: kernel links first, then userspace daemons' sockets. */
export async function listDevices(): Promise<string[]> {
  const r = await listInterfaces();
  if (!r.ok) throw errorOfErrno(r.errno, "Unable to list interfaces");
  return r.names.map(fromBytes);
}

/** Everything `wg show NAME dump` reports about one interface. */
export async function getDevice(name: string): Promise<Device> {
  const r = await ipcGetDevice(toBytes(name));
  if (!r.ok) throw errorOfErrno(r.errno, `Unable to access interface ${name}`, name);
  return deviceOf({ ...r.device, name: fromBytes(r.device.name) }, BigInt(Math.floor(Date.now() / 1000)), makeDate);
}

/**
 * Every interface named (all of listDevices() when none are), read concurrently; one that is
 * gone by the time it is read is left out. Other errors are thrown.
 */
export async function getDevices(names?: readonly string[]): Promise<Device[]> {
  const list = names ?? (await listDevices());
  const read = await Promise.all(list.map((n) => getDevice(n).catch((e) => (e instanceof NoSuchDeviceError ? null : Promise.reject(e)))));
  return read.filter((d) => d !== null);
}

// wg's endpoint parser with the OS resolver; no retries: a caller that wants them retries itself.
const PARSE_ENV = { resolvePort, resolveEndpoint, sleep: (us: number) => Bun.sleepSync(us / 1000), retries: "0" };

/**
 * Applies `update` to one interface in one request, as `wg set` does. Allowed IPs are added to
 * the peer's unless `replaceAllowedIPs` is set; `removeAllowedIPs` takes single ones away
 * (natively where the backend can, else as a replacement of that peer's list: wg's `-PREFIX`).
 */
export async function configureDevice(name: string, update: DeviceUpdate): Promise<void> {
  const peers = update.peers?.map((p) => (p.endpoint === undefined ? p : { ...p, endpoint: toBytes(p.endpoint) }));
  const config = configOf({ ...update, peers }, PARSE_ENV);
  const errno = await setDevice(toBytes(name), config);
  if (errno) throw errorOfErrno(errno, `Unable to modify interface ${name}`, name);
}

/** A new private key, base64 (as `wg genkey`). */
export function generatePrivateKey(): string {
  return keyToBase64(newPrivateKey());
}

/** A new preshared key, base64 (as `wg genpsk`). */
export function generatePresharedKey(): string {
  return keyToBase64(randomBytes(32));
}

/** The public key of a base64 private key (as `wg pubkey`); BadKeyError when it is not one. */
export function publicKeyOf(privateKey: string): string {
  const k = typeof privateKey === "string" ? keyFromBase64(privateKey) : null;
  if (!k) throw badKey("private key");
  return keyToBase64(publicKey(clampPrivateKey(k)));
}

/** A live event stream: iterate it with `for await`; leaving the loop or close() ends it. */
export interface EventStream extends AsyncIterableIterator<WgEvent> {
  close(): void;
}

/**
 * Follows one interface's events (`wg events NAME`). Resolves once the daemon accepted the
 * subscription (a kernel link is read every second instead, and then shows neither failed
 * handshakes nor key rotations); NotSupportedError for daemons without event streams
 * (wireguard-go).
 */
export async function events(name: string): Promise<EventStream> {
  const queue: WgEvent[] = [];
  let wake: (() => void) | null = null;
  let ended = false;
  let failure: WireGuardError | null = null;
  const r = await followEvents(toBytes(name), (line) => {
    try {
      queue.push(eventOf(line, makeDate));
    } catch (e) {
      failure ??= e as WireGuardError;
    }
    wake?.();
  });
  if (!r.ok) throw errorOfErrno(r.errno, `Unable to follow interface ${name}`, name);
  const sub: EventSubscription = r.sub;
  void sub.ended.then(() => {
    ended = true;
    wake?.();
  });
  const stream: EventStream = {
    async next(): Promise<IteratorResult<WgEvent>> {
      for (;;) {
        const ev = queue.shift();
        if (ev) return { value: ev, done: false };
        if (failure) {
          // A rejected next() is not followed by return(): close here, or the socket keeps the process alive.
          const f = failure;
          failure = null;
          stream.close();
          throw f;
        }
        if (ended) return { value: undefined, done: true };
        await new Promise<void>((resolve) => (wake = resolve));
        wake = null;
      }
    },
    async return(): Promise<IteratorResult<WgEvent>> {
      stream.close();
      return { value: undefined, done: true };
    },
    close() {
      queue.length = 0;
      ended = true;
      sub.close();
      wake?.();
    },
    [Symbol.asyncIterator]() {
      return stream;
    },
  };
  return stream;
}
