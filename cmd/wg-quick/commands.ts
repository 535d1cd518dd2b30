// cmd_up, cmd_down, cmd_save and cmd_strip of the reference, step by step in its order.
import type { Quick } from "./context.ts";
import { Exit, die } from "./exit.ts";
import { setDns, unsetDns } from "./dns.ts";
import { removeFirewall } from "./firewall.ts";
import { executeHooks } from "./hooks.ts";
import * as ip from "./ip.ts";
import { addAddr, addIf, delIf, mtuRule, setMtuUp } from "./interface.ts";
import { addRoute, routePrefixes } from "./routes.ts";
import { saveConfig } from "./save.ts";
import { requireWgInterface, wgWithFile } from "./wg.ts";

/** set_config: `wg setconf IF` of the file's wg part. */
const setConfig = (q: Quick) => wgWithFile(q, "setconf", q.o.wgConfig);

export async function cmdUp(q: Quick): Promise<void> {
  if (ip.linkExists(q.iface)) die(q.o.prog, `\`${q.iface}' already exists`);
  if (q.o.mtu === "") mtuRule(q); // a bad WG_QUICK_MTU stops `up` before anything changes
  const onInt = () => (q.interrupted ||= 130);
  const onTerm = () => (q.interrupted ||= 143);
  process.on("SIGINT", onInt);
  process.on("SIGTERM", onTerm);
  try {
    await executeHooks(q, q.o.preUp);
    await addIf(q);
    await setConfig(q);
    for (const a of q.o.addresses) addAddr(q, a);
    await setMtuUp(q);
    await setDns(q);
    for (const p of await routePrefixes(q)) await addRoute(q, p);
    await executeHooks(q, q.o.postUp);
    if (q.interrupted) throw new Exit(q.interrupted);
  } catch (e) {
    if (!(e instanceof Exit)) {
      // Not a step's status but an error of ours: the EXIT trap still runs del_if, and the
      // error (not whatever the teardown meets) is what ends wg-quick.
      await teardown(q, 0).catch(() => {});
      throw e;
    }
    if (!q.interrupted) throw new Exit(await teardown(q, e.code));
    // bash runs the INT/TERM trap (del_if; exit) and then its EXIT trap, i.e. del_if again,
    // whose failure on the now missing link decides the status.
    throw new Exit(await teardown(q, await teardown(q, 0)));
  } finally {
    process.off("SIGINT", onInt);
    process.off("SIGTERM", onTerm);
  }
}

/** The reference's EXIT trap during `up`: del_if, whose own failure (errexit) decides the status. */
async function teardown(q: Quick, code: number): Promise<number> {
  q.tearingDown = true;
  try {
    await delIf(q);
    return code;
  } catch (e) {
    if (e instanceof Exit) return e.code;
    throw e;
  }
}

export async function cmdDown(q: Quick): Promise<void> {
  await requireWgInterface(q);
  await executeHooks(q, q.o.preDown);
  if (q.o.saveConfig) await saveConfig(q);
  // resolved only knows live links, so its per-link setting goes before the link does.
  const viaResolved = q.o.dns.length > 0 && q.dnsManager.kind === "resolvectl";
  if (viaResolved) await unsetDns(q);
  await delIf(q);
  if (!viaResolved) await orTrue(unsetDns(q));
  await removeFirewall(q, false);
  await executeHooks(q, q.o.postDown);
}

/** bash `STEP || true` */
async function orTrue(step: Promise<void>): Promise<void> {
  try {
    await step;
  } catch (e) {
    if (!(e instanceof Exit)) throw e;
  }
}

export async function cmdSave(q: Quick): Promise<void> {
  await requireWgInterface(q);
  await saveConfig(q);
}

export function cmdStrip(q: Quick): void {
  process.stdout.write(Buffer.from(`${q.o.wgConfig}\n`, "latin1"));
}
