// The firewall steps of the reference (the scripts themselves are platform/linux/firewall.ts):
// the rules add_default installs for one family, remove_firewall, and for reload a family's
// rules replaced in one transaction. `type -p nft` is asked anew each time, as the reference does.
import {
  iptablesRemovalScript,
  iptablesRestore,
  iptablesScript,
  mergeRestoreScripts,
  nftApply,
  nftPath,
  nftRemovalScript,
  nftScript,
  restoreMissingMessage,
  xtables,
} from "../../platform/linux/firewall.ts";
import type { Quick } from "./context.ts";
import { err } from "./exit.ts";
import { FAMILIES, type Family } from "./ip.ts";
import { whichNow } from "../../platform/current-env.ts";

/** `cmd nft -f <(echo -n SCRIPT)`; its status. */
async function nft(q: Quick, exe: string, script: string): Promise<number> {
  q.cmd("nft -f /dev/fd/63");
  return await nftApply(exe, script);
}

/**
 * `echo -n SCRIPT | cmd iptables-restore -n` (ip6tables-restore for IPv6); 127 when it is not in
 * PATH, with bash's message, or (`creating`, our extension) one that says what to install.
 */
async function restore(q: Quick, f: Family, script: string, creating = false): Promise<number> {
  const name = `${xtables(f.pf)}-restore`;
  q.cmd(`${name} -n`);
  const exe = whichNow(name);
  if (exe === null) {
    if (creating) err(`${restoreMissingMessage(f.pf)}\n`);
    else q.notFound(name);
    return 127;
  }
  return await iptablesRestore(exe, name, script);
}

/** The tail of add_default: rules for the tunnel's `addresses` and the fwmark `table`, with nft if present. */
export async function addFirewall(q: Quick, f: Family, table: number, addresses: readonly string[]): Promise<void> {
  const exe = nftPath();
  q.check(exe !== null ? await nft(q, exe, nftScript(f.pf, q.iface, table, addresses)) : await restore(q, f, iptablesScript(q.iface, table, addresses), true));
  q.haveSetFirewall = true;
}

/**
 * remove_firewall: IF's nft tables if nft is in PATH, then, if iptables is, IF's tagged rules of
 * both families. `strict` (errexit, the teardown of `up`) stops at the first failure; `down`
 * runs it as `remove_firewall || true`, which goes on past failures.
 */
export async function removeFirewall(q: Quick, strict: boolean): Promise<void> {
  const done = (code: number) => {
    if (strict) q.check(code);
  };
  const exe = nftPath();
  if (exe !== null) {
    const script = await nftRemovalScript(exe, q.iface);
    if (script !== "") done(await nft(q, exe, script));
  }
  if (whichNow("iptables") === null) return;
  for (const f of FAMILIES) {
    const script = await iptablesRemovalScript(`${xtables(f.pf)}-save`, q.iface);
    if (script !== null) done(await restore(q, f, script));
  }
}

/**
 * Deletes the family's wg-quick firewall rules (nft table, tagged iptables rules: whichever
 * `down` would remove) and, given addresses, creates them anew for them the way `up` would:
 * with nft if it is in PATH, else with iptables-restore. Removal and creation go in one
 * transaction (one `nft -f`, or one `iptables-restore -n` commit per table).
 */
export async function replaceFirewall(q: Quick, f: Family, table: number, addresses: readonly string[] | null): Promise<void> {
  const exe = nftPath();
  const xtRemoval = whichNow("iptables") !== null ? await iptablesRemovalScript(`${xtables(f.pf)}-save`, q.iface) : null;
  if (exe === null) {
    if (xtRemoval === null && addresses === null) return;
    const script = mergeRestoreScripts(xtRemoval ?? "", addresses === null ? "" : iptablesScript(q.iface, table, addresses));
    q.check(await restore(q, f, script, addresses !== null));
    return;
  }
  const removal = (await nftRemovalScript(exe, q.iface))
    .split("\n")
    .filter((l) => l.startsWith(`delete table ${f.pf} `))
    .map((l) => `${l}\n`)
    .join("");
  const script = removal + (addresses === null ? "" : nftScript(f.pf, q.iface, table, addresses));
  if (script !== "") q.check(await nft(q, exe, script));
  if (xtRemoval !== null) q.check(await restore(q, f, xtRemoval));
}
