// `wg-quick reload CONFIG_FILE|INTERFACE`, our extension: bring a running interface to what `up`
// of the (changed) file would give, without taking it down. `wg syncconf` first (peers whose
// settings did not change keep their sessions), then Address, MTU, DNS and the routes of
// added/removed allowed IPs, each only where it differs. Hooks do not run; Table and SaveConfig
// changes need down/up.
import type { ArgsDef } from "citty";
import { resolvconfList } from "../../platform/linux/resolvconf.ts";
import * as rt from "../../platform/linux/rtnetlink.ts";
import { fromBytes, toBytes } from "../bytes.ts";
import { parseOwnArgs, usageError } from "../cli.ts";
import type { Quick } from "./context.ts";
import { resolvconfDelete, resolvconfName, resolvectlRevert, resolvectlSet, resolvectlWords, setDns } from "./dns.ts";
import { replaceFirewall } from "./firewall.ts";
import { autoMtu, mtuRule } from "./interface.ts";
import * as ip from "./ip.ts";
import type { Family } from "./ip.ts";
import { skipIpv6 } from "./ipv6.ts";
import { configHasKey, readLines, trimSpace, words } from "./options.ts";
import { addDefault, addRoute, autoTable, deletePolicyRules, prefixesOf, routePrefixes, skipDefault } from "./routes.ts";
import { device, getFwmark, requireWgInterface, wg, wgWithFile } from "./wg.ts";

const ARGS = {
  config: {
    type: "positional",
    required: true,
    description: "the configuration file (NAME.conf), or an interface name for /etc/wireguard/NAME.conf",
    valueHint: "CONFIG_FILE|INTERFACE",
  },
} as const satisfies ArgsDef;

/** The CONFIG argument of `reload ARGS` (JS text), or the status to exit with after help or a usage error. */
export async function parseReloadArgs(prog: string, args: string[]): Promise<string | number> {
  const name = `${fromBytes(prog)} reload`;
  const parsed = await parseOwnArgs(name, "Apply a changed configuration to a running interface without taking it down", ARGS, args);
  if (typeof parsed === "number") return parsed;
  if (parsed._.length > 1) return usageError(name, `one config at a time, not \`${parsed._.join(" ")}'`);
  return parsed.config!;
}

/** Every value is checked before anything changes. */
export async function cmdReload(q: Quick): Promise<void> {
  await requireWgInterface(q);
  ip.validate(q, () => ip.deviceArg(q.iface));
  const want = q.o.addresses.map((text) => ({ text, prefix: ip.validate(q, () => ip.prefixArg(text, ip.familyOf(text))) }));
  const mtu = q.o.mtu === "" ? null : ip.validate(q, () => ip.mtuArg(q.o.mtu));
  if (mtu === null) mtuRule(q);
  if (!autoTable(q) && q.o.table !== "off") ip.validate(q, () => ip.tableArg(q.o.table));
  const before = await device(q);
  const oldPrefixes = prefixesOf(before);
  const oldAddresses = new Map(ip.FAMILIES.map((f) => [f, ip.addressTexts(q, f).join(" ")]));
  await syncConfig(q, keptSettings(q, before));
  reloadAddresses(q, want);
  await reloadMtu(q, mtu);
  await reloadDns(q);
  await reloadRoutes(q, oldPrefixes, oldAddresses);
}

/**
 * syncconf zeroes what the file leaves out. The fwmark of the default-route procedure must stay
 * (else the tunnel's own UDP loops into it), and so does a random port (peers keep sending to
 * it); `up` of the file would choose them anew, reload keeps the running ones.
 */
function keptSettings(q: Quick, d: Awaited<ReturnType<typeof device>>): string[] {
  const keep: string[] = [];
  if (d === null) return keep;
  if (!configHasKey(q.o.wgConfig, "listenport") && d.listenPort > 0) keep.push(`ListenPort = ${d.listenPort}`);
  if (!configHasKey(q.o.wgConfig, "fwmark") && d.fwmark !== 0) keep.push(`FwMark = ${d.fwmark}`);
  return keep;
}

/** `wg syncconf IF` of the wg part, with `extra` lines added to its [Interface] section. */
async function syncConfig(q: Quick, extra: readonly string[]): Promise<void> {
  let text = q.o.wgConfig;
  if (extra.length) {
    const lines = readLines(text);
    const at = lines.findIndex((l) => trimSpace(l.replace(/#.*/, "")).toLowerCase() === "[interface]");
    if (at < 0) lines.unshift("[Interface]", ...extra);
    else lines.splice(at + 1, 0, ...extra);
    text = lines.map((l) => `${l}\n`).join("");
  }
  await wgWithFile(q, "syncconf", text);
}

const isLinkLocal = (p: rt.Prefix) => p.family === rt.AF_INET6 && p.addr[0] === 0xfe && (p.addr[1]! & 0xc0) === 0x80;

/**
 * Adds the file's new addresses, then removes the ones it no longer has (the kernel's IPv6
 * link-local stays). IPv6 ones where IPv6 is disabled are left out, with a warning, as `up` does.
 */
function reloadAddresses(q: Quick, all: readonly { text: string; prefix: rt.Prefix }[]): void {
  const want = all.filter((w) => w.prefix.family !== rt.AF_INET6 || !skipIpv6(q, `Address = ${w.text}`));
  const addMissing = () => {
    const have = ip.addresses(q);
    for (const w of want) {
      if (have.some((h) => ip.samePrefix(h, w.prefix))) continue;
      ip.addressAdd(q, w.text);
      have.push(w.prefix);
    }
  };
  // Adding first: removing the last IPv4 address would flush every IPv4 route of the link.
  addMissing();
  for (const h of ip.addresses(q)) if (!isLinkLocal(h) && !want.some((w) => ip.samePrefix(h, w.prefix))) ip.addressDel(q, h);
  // Removing a primary IPv4 address takes its secondaries along unless promote_secondaries is set.
  addMissing();
}

async function reloadMtu(q: Quick, mtu: number | null): Promise<void> {
  const target = mtu ?? (await autoMtu(q, rt.nameToIndex(q.iface)));
  if (ip.linkMtu(q) === target) return;
  ip.linkSetMtuUp(q, mtu !== null ? q.o.mtu : String(target));
}

/** Re-applies DNS only if the resolver's record for the link differs from the file's. */
async function reloadDns(q: Quick): Promise<void> {
  const hasDns = q.o.dns.length > 0;
  const m = q.dnsManager;
  if (m.kind === "resolvectl") {
    const servers = await resolvectlWords(m.exe, "dns", q.iface);
    const domains = await resolvectlWords(m.exe, "domain", q.iface);
    const wantServers = hasDns ? q.o.dns : [];
    const wantDomains = hasDns ? q.o.dnsSearch : [];
    if (servers.join(" ") === wantServers.join(" ") && domains.join(" ") === wantDomains.join(" ")) return;
    if (servers.length || domains.length) await resolvectlRevert(q, m.exe);
    if (hasDns) await resolvectlSet(q, m.exe);
    return;
  }
  if (m.kind === "missing") {
    if (hasDns) await setDns(q); // prints what to install, status 127
    return;
  }
  const record = (text: string) =>
    readLines(text)
      .filter((l) => /^(nameserver|search)[ \t]/.test(l))
      .map((l) => words(l).join(" "))
      .join("\n");
  const current = record(toBytes(await resolvconfList(resolvconfName(q))));
  let wanted = q.o.dns.map((s) => `nameserver ${s}`).join("\n");
  if (hasDns && q.o.dnsSearch.length) wanted += `\nsearch ${q.o.dnsSearch.join(" ")}`;
  if (current === wanted) return;
  if (hasDns) await setDns(q);
  else await resolvconfDelete(q);
}

/** Routes of allowed IPs that went away are deleted, new ones added as `up` adds them. */
async function reloadRoutes(q: Quick, oldPrefixes: readonly string[], oldAddresses: ReadonlyMap<Family, string>): Promise<void> {
  if (q.o.table === "off") return;
  const custom = !autoTable(q);
  const table = custom ? ip.validate(q, () => ip.tableArg(q.o.table)) : rt.RT_TABLE_MAIN;
  const now = await routePrefixes(q);
  const fwmark = custom ? null : await getFwmark(q);

  for (const p of oldPrefixes) {
    if (now.includes(p)) continue;
    if (!custom && p.endsWith("/0")) {
      if (fwmark !== null) await removeDefault(q, p, fwmark);
    } else if (ip.routeExists(q, p, table)) ip.routeDel(q, p, custom ? q.o.table : undefined);
  }

  for (const p of now) {
    if (custom) {
      if (!ip.routeExists(q, p, table)) await addRoute(q, p);
    } else if (!p.endsWith("/0")) {
      await addRoute(q, p);
    } else if (fwmark === null || !oldPrefixes.includes(p)) {
      await addDefault(q, p);
    } else if (!skipDefault(q, p)) {
      // Already routed: the route goes with the family's last address; the firewall names the addresses.
      const f = ip.familyOf(p);
      if (!ip.routeExists(q, p, fwmark)) ip.routeAdd(q, p, String(fwmark));
      const addresses = ip.addressTexts(q, f);
      if (addresses.join(" ") !== oldAddresses.get(f)) await replaceFirewall(q, f, fwmark, addresses);
    }
  }

  // `up` of this file would leave no fwmark: only a default route makes one up.
  const mark = custom ? null : await getFwmark(q);
  if (mark !== null && !now.some((p) => p.endsWith("/0")) && !configHasKey(q.o.wgConfig, "fwmark")) await wg(q, ["set", q.iface, "fwmark", "0"]);
}

/** Undoes the default-route procedure for one family: route, both rules, the family's firewall rules. */
async function removeDefault(q: Quick, prefix: string, table: number): Promise<void> {
  const f = ip.familyOf(prefix);
  if (ip.routeExists(q, prefix, table)) ip.routeDel(q, prefix, String(table));
  deletePolicyRules(q, f, table);
  await replaceFirewall(q, f, table, null);
}
