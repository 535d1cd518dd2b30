// save_config of the reference: the file rewritten from the live interface (its addresses, DNS,
// MTU and the wg configuration), wg-quick's own settings and hooks kept, written atomically with
// umask 077.
import { closeSync, fsyncSync, openSync, renameSync, unlinkSync, writeFileSync } from "node:fs";
import { showconfDevice } from "../../core/tools/show.ts";
import type { Quick } from "./context.ts";
import { die } from "./exit.ts";
import { savedDns } from "./dns.ts";
import * as ip from "./ip.ts";
import { device } from "./wg.ts";

/** The new [Interface] header: live addresses, DNS and MTU, then the file's Table, SaveConfig and hooks. */
async function interfaceHeader(q: Quick): Promise<string> {
  const o = q.o;
  const lines = ["[Interface]"];
  const addresses = ip.addressesBrief(q);
  for (const a of addresses ?? []) lines.push(`Address = ${a}`);
  for (const d of await savedDns(q)) lines.push(`DNS = ${d}`);
  const mtu = o.mtu !== "" && addresses !== null ? ip.linkMtu(q) : null;
  if (mtu !== null) lines.push(`MTU = ${mtu}`);
  if (o.table !== "") lines.push(`Table = ${o.table}`);
  if (o.saveConfig) lines.push("SaveConfig = true");
  for (const [key, hooks] of [
    ["PreUp", o.preUp],
    ["PostUp", o.postUp],
    ["PreDown", o.preDown],
    ["PostDown", o.postDown],
  ] as const)
    for (const c of hooks) lines.push(`${key} = ${c}`);
  return lines.map((l) => `${l}\n`).join("");
}

export async function saveConfig(q: Quick): Promise<void> {
  const header = await interfaceHeader(q);
  q.cmd(`wg showconf ${q.iface}`);
  const d = await device(q);
  if (d === null) q.fail(1);
  const current = showconfDevice(d).replace(/\n+$/, "");
  const marker = current.indexOf("[Interface]\n");
  const merged = marker < 0 ? current : current.slice(0, marker) + header + current.slice(marker + 12);
  writeAtomically(q, `${merged}\n`);
}

/** FILE.tmp written with umask 077 and synced, then renamed over FILE; the reference's messages on failure. */
function writeAtomically(q: Quick, text: string): void {
  const tmp = Buffer.from(`${q.o.configFile}.tmp`, "latin1");
  const giveUp = (msg: string): never => {
    try {
      unlinkSync(tmp);
    } catch {}
    die(q.o.prog, msg);
  };
  const oldMask = process.umask(0o077);
  try {
    try {
      const fd = openSync(tmp, "w", 0o600);
      try {
        writeFileSync(fd, Buffer.from(text, "latin1"));
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    } catch {
      giveUp("Could not write configuration file");
    }
    try {
      renameSync(tmp, Buffer.from(q.o.configFile, "latin1"));
    } catch {
      giveUp("Could not move configuration file");
    }
  } finally {
    process.umask(oldMask);
  }
}
