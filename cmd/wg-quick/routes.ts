// add_route and add_default of the reference: routes for the allowed IPs, and for a default
// route the fwmark policy routing (a table of its own, `not fwmark` and
// `suppress_prefixlength 0` rules, src_valid_mark, the firewall rules); the rule deletion of
// del_if; the allowed IPs in the order the reference routes them.
import type { WgDevice } from "../../core/tools/containers.ts";
import { formatAllowedIp } from "../../core/tools/show.ts";
import { readSysctl, setSysctl, sysctlWritable } from "../../platform/linux/kernel.ts";
import * as rt from "../../platform/linux/rtnetlink.ts";
import type { Quick } from "./context.ts";
import { err } from "./exit.ts";
import { addFirewall } from "./firewall.ts";
import * as ip from "./ip.ts";
import { skipIpv6 } from "./ipv6.ts";
import { device, getFwmark, wg } from "./wg.ts";

/** `Table =` empty or `auto`: routes go to the main table, default routes get policy routing. */
export const autoTable = (q: Quick) => q.o.table === "" || q.o.table === "auto";

/** The allowed IPs of `wg show IF allowed-ips`, ordered as `sort -nr -k 2 -t /` leaves them: longest prefix first, ties in reverse byte order. */
export async function routePrefixes(q: Quick): Promise<string[]> {
  return prefixesOf(await device(q));
}

export function prefixesOf(d: WgDevice | null): string[] {
  const list = (d?.peers ?? []).flatMap((p) => p.allowedIps.map((a) => ({ text: formatAllowedIp(a), cidr: a.cidr })));
  list.sort((a, b) => b.cidr - a.cidr || (a.text < b.text ? 1 : a.text > b.text ? -1 : 0));
  return list.map((a) => a.text);
}

/** `wg show IF allowed-ips` has a `/0`. */
export async function hasDefaultRoute(q: Quick): Promise<boolean> {
  return ((await device(q))?.peers ?? []).some((p) => p.allowedIps.some((a) => a.cidr === 0));
}

/** The reference's add_route; an IPv6 route where IPv6 is disabled is skipped with a warning (our extension). */
export async function addRoute(q: Quick, prefix: string): Promise<void> {
  if (q.o.table === "off") return;
  if (autoTable(q) && prefix.endsWith("/0")) return await addDefault(q, prefix);
  if (ip.familyOf(prefix) === ip.INET6 && skipIpv6(q, `the route for AllowedIPs = ${prefix}`)) return;
  if (!autoTable(q)) ip.routeAdd(q, prefix, q.o.table);
  else if (!ip.routeMatches(q, prefix)) ip.routeAdd(q, prefix);
}

/** A default route ::/0 where IPv6 is disabled: skipped whole (route, rules, firewall) with a warning (our extension). */
export const skipDefault = (q: Quick, prefix: string) =>
  ip.familyOf(prefix) === ip.INET6 && skipIpv6(q, `the default route ${prefix} (its routing table, policy rules and firewall rules)`);

/** The fwmark table: the interface's fwmark, else the first table from 51820 on that is empty in both families (then set as the fwmark). */
async function fwmarkTable(q: Quick): Promise<number> {
  const mark = await getFwmark(q);
  if (mark !== null) return mark;
  let table = 51820;
  while (ip.tableInUse(table)) table++;
  await wg(q, ["set", q.iface, "fwmark", String(table)]);
  return table;
}

/** The two policy rules of the default-route procedure (also what del_if deletes). */
const notFwmarkRule = (table: number): rt.RuleSpec => ({ invert: true, fwmark: table, table });
const suppressRule: rt.RuleSpec = { table: rt.RT_TABLE_MAIN, suppressPrefixlen: 0 };

export async function addDefault(q: Quick, prefix: string): Promise<void> {
  if (skipDefault(q, prefix)) return;
  const table = await fwmarkTable(q);
  const f = ip.familyOf(prefix);
  ip.routeAdd(q, prefix, String(table));
  ip.ruleAdd(q, f, notFwmarkRule(table));
  ip.ruleAdd(q, f, suppressRule);
  const addresses = ip.addressTexts(q, f);
  if (f === ip.INET) setSrcValidMark(q);
  await addFirewall(q, f, table, addresses);
}

const SRC_VALID_MARK = "net.ipv4.conf.all.src_valid_mark";

/**
 * `cmd sysctl -q net.ipv4.conf.all.src_valid_mark=1`. Our extension, for containers with a
 * read-only /proc/sys: where the key cannot be written but already is 1, nothing is printed or
 * written (as newer upstream skips it), instead of failing `up`. Where it can be written, the
 * line and the write are the reference's even when the value is 1 already.
 */
function setSrcValidMark(q: Quick): void {
  if (readSysctl(SRC_VALID_MARK) === "1" && !sysctlWritable(SRC_VALID_MARK)) return;
  q.cmd(`sysctl -q ${SRC_VALID_MARK}=1`);
  const failure = setSysctl(SRC_VALID_MARK, "1");
  if (failure === null) return;
  err(`${failure}\n`);
  q.fail(1);
}

/**
 * A rule `ip rule show` prints with `lookup TABLE` (the reference's first loop), and the one it
 * prints as `from all lookup main suppress_prefixlength 0` (no selector before the lookup).
 */
const looksUp = (r: rt.Rule, table: number) => r.table === table;
const isSuppressRule = (r: rt.Rule) =>
  r.table === rt.RT_TABLE_MAIN &&
  r.suppressPrefixlen === 0 &&
  r.src === null &&
  r.dst === null &&
  r.tos === 0 &&
  r.fwmark === null &&
  r.fwmask === null &&
  r.iif === null &&
  r.oif === null;

/** del_if's loops for one family: `ip rule delete table T` while a rule looks up T, then the suppression rule while one is there. */
export function deletePolicyRules(q: Quick, f: ip.Family, table: number): void {
  while (ip.rules(f).some((r) => looksUp(r, table))) ip.ruleDelete(q, f, { table });
  while (ip.rules(f).some(isSuppressRule)) ip.ruleDelete(q, f, suppressRule);
}
