// add_if, del_if, add_addr and set_mtu_up of the reference. add_if asks the
// kernel for a WireGuard link first, as the reference does; where that fails (no module) or
// WG_QUICK_PREFER_USERSPACE asks for it, a userspace implementation creates the link instead:
// our daemon, or the command WG_QUICK_USERSPACE_IMPLEMENTATION names. Everything after add_if
// works on either kind of link through the same wg backend.
import { existsSync } from "node:fs";
import { wireguardModuleLoaded } from "../../platform/linux/kernel.ts";
import { socketPath } from "../../platform/socket-path.ts";
import { toBytes } from "../bytes.ts";
import { launchDaemon } from "../launch.ts";
import { selfCommand } from "../self.ts";
import type { Quick } from "./context.ts";
import { die, err } from "./exit.ts";
import { unsetDns } from "./dns.ts";
import { removeFirewall } from "./firewall.ts";
import * as ip from "./ip.ts";
import { skipIpv6 } from "./ipv6.ts";
import { autoTable, deletePolicyRules, hasDefaultRoute } from "./routes.ts";
import { device, getFwmark } from "./wg.ts";
import { whichNow } from "../../platform/current-env.ts";

const FALLBACK = "[!] Missing WireGuard kernel module. Falling back to slow userspace implementation.\n";

/** Our extension: WG_QUICK_PREFER_USERSPACE=1 skips the kernel module even where it is loaded. */
const preferUserspace = () => {
  const v = process.env.WG_QUICK_PREFER_USERSPACE;
  return v !== undefined && v !== "" && v !== "0";
};

export async function addIf(q: Quick): Promise<void> {
  if (preferUserspace()) return await addUserspaceIf(q);
  if (ip.linkAddWireguard(q)) return;
  // The reference gives up here with the status of a negated test, 0 (then tears down), when
  // the module is there or the implementation the user named is not.
  const impl = process.env.WG_QUICK_USERSPACE_IMPLEMENTATION;
  if (wireguardModuleLoaded() || (impl && whichNow(impl) === null)) q.fail(0);
  err(FALLBACK);
  await addUserspaceIf(q);
}

/** `cmd IMPL IF`: the implementation WG_QUICK_USERSPACE_IMPLEMENTATION names, else our daemon. */
async function addUserspaceIf(q: Quick): Promise<void> {
  const impl = process.env.WG_QUICK_USERSPACE_IMPLEMENTATION;
  if (impl) {
    q.cmd(`${toBytes(impl)} ${q.iface}`);
    const exe = whichNow(impl);
    if (exe === null) {
      q.notFound(toBytes(impl));
      q.fail(127);
    }
    const p = Bun.spawn([exe, q.iface], { argv0: impl, env: process.env /* see platform/current-env.ts */, stdin: "inherit", stdout: "inherit", stderr: "inherit" });
    q.check(await p.exited);
  } else {
    const launch = selfCommand("daemon", [q.iface]);
    q.cmd(toBytes(launch.cmd.join(" ")));
    // What `wg daemon IFACE` would do, without that launcher process in between.
    q.check(await launchDaemon(launch.cmd, launch.argv0));
  }
  await socketCreated(q);
}

/** The launch contract says the socket exists when the launcher returns; allow a slow start. */
async function socketCreated(q: Quick): Promise<void> {
  for (let i = 0; i < 100 && !existsSync(socketPath(q.iface)); i++) await Bun.sleep(20);
}

/** del_if: DNS and firewall if this run set them, the policy rules of a default route, then the link (which also ends a userspace daemon). */
export async function delIf(q: Quick): Promise<void> {
  if (q.haveSetDns) await unsetDns(q);
  if (q.haveSetFirewall) await removeFirewall(q, true);
  const table = autoTable(q) ? await getFwmark(q) : null;
  if (table !== null && (await hasDefaultRoute(q))) for (const f of ip.FAMILIES) deletePolicyRules(q, f, table);
  ip.linkDelete(q);
}

/** add_addr: `ip -4|-6 address add A dev IF`; a valid IPv6 address where IPv6 is disabled is skipped with a warning (our extension). */
export function addAddr(q: Quick, address: string): void {
  const f = ip.familyOf(address);
  if (f === ip.INET6 && ip.isPrefix(address, f) && skipIpv6(q, `Address = ${address}`)) return;
  ip.addressAdd(q, address);
}

export async function setMtuUp(q: Quick): Promise<void> {
  ip.linkSetMtuUp(q, q.o.mtu !== "" ? q.o.mtu : String(await autoMtu(q)));
}

/**
 * Which endpoint-route MTU `up` starts from without MTU =. Unset, empty or `max`: the largest,
 * the reference's rule. `min` (our extension, the rule of newer upstream releases): the
 * smallest, so that the tunnel's packets fit the narrowest path, e.g. a PPPoE link (1492) next
 * to an Ethernet one (1500). The reference ignores the variable, so a file stays valid for both.
 */
export function mtuRule(q: Quick): "min" | "max" {
  const v = process.env.WG_QUICK_MTU ?? "";
  if (v === "" || v === "max") return "max";
  if (v === "min") return "min";
  die(q.o.prog, `WG_QUICK_MTU must be \`min' or \`max', not \`${v}'`);
}

/**
 * The MTU `up` picks without MTU =: the largest (or with WG_QUICK_MTU=min the smallest) MTU of
 * the endpoints' routes, else of the default route, else 1500; minus 80. `selfIndex` (reload)
 * ignores routes through the tunnel itself, which `up` never sees because it asks before
 * adding them.
 */
export async function autoMtu(q: Quick, selfIndex = 0): Promise<number> {
  const smallest = mtuRule(q) === "min";
  let mtu = 0;
  for (const p of (await device(q))?.peers ?? []) {
    const m = /^\[?([a-z0-9:.]+)\]?:[0-9]+$/.exec(p.endpoint ?? "");
    if (!m) continue;
    const v = ip.routeGetMtu(m[1]!, selfIndex);
    if (v !== null && v > 0 && (mtu === 0 || (smallest ? v < mtu : v > mtu))) mtu = v;
  }
  if (mtu === 0) mtu = ip.defaultRouteMtu() ?? 0;
  if (mtu <= 0) mtu = 1500;
  return mtu - 80;
}
