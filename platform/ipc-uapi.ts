// The UAPI backend of `wg` (wireguard-tools' ipc-uapi.h): find userspace WireGuard interfaces
// by their sockets in /var/run/wireguard and talk the text protocol to their daemons, with
// wg's probing and stale-socket cleanup. platform/ipc.ts decides per interface whether this
// backend or the kernel's (linux/ipc-netlink.ts) serves it.
import { readdirSync, statSync, unlinkSync } from "node:fs";
import { createConnection } from "node:net";
import { GET_REQUEST, buildSetRequest, parseGetResponse, parseSetResponse, responseComplete, type GetResult, type EndpointFormatter } from "../core/tools/uapi.ts";
import type { DeviceConfig } from "../core/tools/containers.ts";
import { EBADF, ECONNREFUSED, EINVAL, ENOENT, errnoFromCode } from "../core/errno.ts";
import { SOCKET_DIR, socketPath } from "./socket-path.ts";
import { formatDaemonEndpoint } from "./linux/resolve.ts";

/** Interface names are byte strings (one char per byte). */
const bytes = (s: string) => Buffer.from(s, "latin1");

function isSocketFile(path: string): boolean {
  try {
    return statSync(bytes(path)).isSocket();
  } catch {
    return false;
  }
}

type Conn = { ok: true; sock: ReturnType<typeof createConnection> } | { ok: false; errno: number };

/** connect(); a refused connection means the daemon is gone, and its stale socket file is deleted. */
async function connectOrClean(path: string): Promise<Conn> {
  const c = await connect(path);
  if (!c.ok && c.errno === ECONNREFUSED) {
    try {
      unlinkSync(bytes(path));
    } catch {}
  }
  return c;
}

function connect(path: string): Promise<Conn> {
  return new Promise((resolve) => {
    // node:net takes a string path and encodes it as UTF-8; our names are byte strings.
    const sock = createConnection({ path: bytes(path).toString("utf8") });
    const onError = (e: NodeJS.ErrnoException) => resolve({ ok: false, errno: errnoFromCode(e.code) });
    sock.once("error", onError);
    sock.once("connect", () => {
      sock.off("error", onError);
      resolve({ ok: true, sock });
    });
  });
}

/**
 * wg's userspace_has_wireguard_interface: a socket file we can connect to (or are refused
 * permission to). A refused connection means the daemon is gone: the stale file is deleted.
 */
export async function hasInterface(name: string): Promise<boolean> {
  if (name.includes("/")) return false;
  const path = socketPath(name);
  if (!isSocketFile(path)) return false;
  const c = await connectOrClean(path);
  if (c.ok) c.sock.destroy();
  return c.ok || c.errno !== ECONNREFUSED;
}

/** wg's userspace_get_wireguard_interfaces: connectable sockets in raw directory order. */
export async function userspaceInterfaces(): Promise<{ ok: true; names: string[] } | { ok: false; errno: number }> {
  const names: string[] = [];
  let entries: Buffer[];
  try {
    // Bun's readdir returns getdents order unsorted, which is what readdir(3) gives wg.
    entries = readdirSync(bytes(SOCKET_DIR), { encoding: "buffer" });
  } catch (e) {
    const errno = errnoFromCode((e as NodeJS.ErrnoException).code);
    return errno === ENOENT ? { ok: true, names } : { ok: false, errno };
  }
  for (const ent of entries) {
    const file = ent.toString("latin1");
    if (file.length <= 5 || !file.endsWith(".sock")) continue;
    const name = file.slice(0, -5);
    // readdir stops a name at NUL; strlen-based iteration of the list would end early on empty names.
    if (await hasInterface(name)) names.push(name);
  }
  return { ok: true, names };
}

/** One UAPI exchange: connect, write, read until the terminating empty line (or EOF). */
async function uapiExchange(name: string, request: string): Promise<{ ok: true; text: string } | { ok: false; errno: number }> {
  if (name.includes("/")) return { ok: false, errno: EINVAL };
  const path = socketPath(name);
  try {
    if (!statSync(bytes(path)).isSocket()) return { ok: false, errno: EBADF };
  } catch (e) {
    return { ok: false, errno: errnoFromCode((e as NodeJS.ErrnoException).code) };
  }
  const c = await connectOrClean(path);
  if (!c.ok) return c;
  const sock = c.sock;
  return new Promise((resolve) => {
    let text = "";
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      sock.destroy();
      resolve({ ok: true, text });
    };
    sock.on("data", (d: Buffer) => {
      text += d.toString("latin1");
      if (responseComplete(text)) finish();
    });
    sock.on("end", finish);
    sock.on("close", finish);
    // A reset or broken pipe still ends the answer: what arrived is judged by the parser.
    sock.on("error", finish);
    sock.write(Buffer.from(request, "latin1"));
  });
}

/** wg's userspace_get_device. `name` locates the socket; the displayed name is cut to 15 bytes. */
export async function getDevice(name: string, formatEndpoint: EndpointFormatter = formatDaemonEndpoint): Promise<GetResult> {
  const r = await uapiExchange(name, GET_REQUEST);
  if (!r.ok) return r;
  return parseGetResponse(r.text, name.slice(0, 15), formatEndpoint);
}

/** wg's userspace_set_device: 0 on success, else the errno wg reports. */
export async function setDevice(name: string, config: DeviceConfig): Promise<number> {
  const r = await uapiExchange(name, buildSetRequest(config));
  if (!r.ok) return r.errno;
  return parseSetResponse(r.text);
}
