// The reference's calls of `wg`. Those it prints (`wg setconf`, `wg set`, `wg syncconf`) run our
// wg in-process; the lookups it makes inside `$(wg show ...)` read the device through the wg
// backend directly and use its fields as they are. The backend is imported here and nowhere
// else in wg-quick, whichever one (UAPI socket, kernel netlink) carries the interface.
import type { WgDevice } from "../../core/tools/containers.ts";
import { strerror } from "../../core/errno.ts";
import { getDevice, listInterfaces } from "../../platform/ipc.ts";
import { memfdWith } from "../../platform/linux/memfd.ts";
import { wgMain } from "../wg.ts";
import { die, err, type Quick } from "./context.ts";

/** `cmd wg ARGS...` */
export async function wg(q: Quick, args: string[]): Promise<void> {
  q.cmd(`wg ${args.join(" ")}`);
  q.check(await wgMain("wg", args));
}

/** `cmd wg SUBCOMMAND IF <(echo "$TEXT")`: the text (plus echo's newline) in memory, never on disk. */
export async function wgWithFile(q: Quick, subcommand: "setconf" | "syncconf", text: string): Promise<void> {
  q.cmd(`wg ${subcommand} ${q.iface} /dev/fd/63`);
  const f = memfdWith(Buffer.from(`${text}\n`, "latin1"));
  try {
    q.check(await wgMain("wg", [subcommand, q.iface, f.path]));
  } finally {
    f.close();
  }
}

/** The device as `wg show IF` reads it, or null after wg's message. */
export async function device(q: Quick): Promise<WgDevice | null> {
  const r = await getDevice(q.iface);
  if (r.ok) return r.device;
  err(`Unable to access interface: ${strerror(r.errno)}\n`);
  return null;
}

/** get_fwmark: the interface's fwmark, null when it is off or cannot be read. */
export async function getFwmark(q: Quick): Promise<number | null> {
  const d = await device(q);
  return d === null || d.fwmark === 0 ? null : d.fwmark;
}

/** `[[ " $(wg show interfaces) " == *" IF "* ]] || die ...`, as down, save and reload begin. */
export async function requireWgInterface(q: Quick): Promise<void> {
  const r = await listInterfaces();
  if (!r.ok) err(`Unable to list interfaces: ${strerror(r.errno)}\n`);
  if (!r.ok || !r.names.includes(q.iface)) die(q.o.prog, `\`${q.iface}' is not a WireGuard interface`);
}
