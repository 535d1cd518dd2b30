// set_dns and unset_dns of the reference (resolvconf), or per link through resolvectl where
// systemd-resolved manages DNS and no real resolvconf is installed; and the DNS lines of a saved
// configuration. platform/linux/resolvconf.ts decides which and runs the tools.
import {
  resolvconfAdd,
  resolvconfDel,
  resolvconfIfacePrefix,
  resolvconfList,
  resolvectl,
  resolvectlQuery,
} from "../../platform/linux/resolvconf.ts";
import { fromBytes, toBytes } from "../bytes.ts";
import type { Quick } from "./context.ts";
import { readLines } from "./options.ts";

/** The record name resolvconf keeps the interface's DNS under. */
export const resolvconfName = (q: Quick) => resolvconfIfacePrefix() + q.iface;

/**
 * The platform's resolver calls take and give JS text, the file's DNS words are byte strings: a
 * word that is not valid UTF-8 cannot reach resolvconf or resolvectl unchanged (the reference
 * passes its bytes), one that is arrives as it was written.
 */
const text = (words: readonly string[]) => words.map(fromBytes);

/** What `resolvectl dns|domain IF` holds for the link, as byte strings like the file's words. */
export const resolvectlWords = async (exe: string, what: "dns" | "domain", iface: string) => (await resolvectlQuery(exe, what, iface)).map(toBytes);

/** `resolvectl dns IF S...` then `resolvectl domain IF D...`; `~d` entries are routing domains. */
export async function resolvectlSet(q: Quick, exe: string): Promise<void> {
  q.haveSetDns = true; // a half-applied link setting is reverted by the teardown too
  q.cmd(`resolvectl dns ${q.iface} ${q.o.dns.join(" ")}`);
  q.check(await resolvectl(exe, ["dns", q.iface, ...text(q.o.dns)]));
  if (q.o.dnsSearch.length === 0) return;
  q.cmd(`resolvectl domain ${q.iface} ${q.o.dnsSearch.join(" ")}`);
  q.check(await resolvectl(exe, ["domain", q.iface, ...text(q.o.dnsSearch)]));
}

/** `resolvectl revert IF`; its failure does not stop a teardown (resolved forgets dead links anyway). */
export async function resolvectlRevert(q: Quick, exe: string): Promise<void> {
  q.cmd(`resolvectl revert ${q.iface}`);
  await resolvectl(exe, ["revert", q.iface]);
}

export async function setDns(q: Quick): Promise<void> {
  if (q.o.dns.length === 0) return;
  const m = q.dnsManager;
  if (m.kind === "resolvectl") return await resolvectlSet(q, m.exe);
  const name = resolvconfName(q);
  q.cmd(`resolvconf -a ${name} -m 0 -x`);
  q.check(await resolvconfAdd(name, text(q.o.dns), text(q.o.dnsSearch)));
  q.haveSetDns = true;
}

export async function unsetDns(q: Quick): Promise<void> {
  if (q.o.dns.length === 0) return;
  const m = q.dnsManager;
  if (m.kind === "resolvectl") return await resolvectlRevert(q, m.exe);
  await resolvconfDelete(q);
}

/** `cmd resolvconf -d NAME -f` */
export async function resolvconfDelete(q: Quick): Promise<void> {
  const name = resolvconfName(q);
  q.cmd(`resolvconf -d ${name} -f`);
  q.check(await resolvconfDel(name));
}

/** What save_config writes for DNS: the servers resolvconf holds (search domains are lost), or everything resolved holds. */
export async function savedDns(q: Quick): Promise<string[]> {
  const m = q.dnsManager;
  // resolved keeps the domains too, routing ones with their `~`: nothing of DNS = is lost.
  if (m.kind === "resolvectl") return [...(await resolvectlWords(m.exe, "dns", q.iface)), ...(await resolvectlWords(m.exe, "domain", q.iface))];
  const out: string[] = [];
  for (const line of readLines(toBytes(await resolvconfList(resolvconfName(q))))) {
    const found = /^nameserver ([a-zA-Z0-9_=+:%.-]+)$/.exec(line);
    if (found) out.push(found[1]!);
  }
  return out;
}
