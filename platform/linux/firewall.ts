// The firewall rules wg-quick installs for a default route through the tunnel. They drop packets
// addressed to the tunnel's own addresses that arrive elsewhere (spoofed), and carry the fwmark
// of the encrypted UDP into conntrack so that replies to the endpoint keep bypassing the tunnel
// table. Like wg-quick 1.0.20210914: with `nft` in PATH an nftables table per family, otherwise
// iptables rules tagged with a comment naming the interface, fed to `iptables-restore -n`.
import { whichNow } from "../current-env.ts";

/** Where `nft` is in PATH, or null (the rules then go through iptables-restore). */
export function nftPath(): string | null {
  return whichNow("nft");
}

/** The nft script for one address family ("ip" or "ip6"), byte for byte as wg-quick 1.0.20210914 builds it. */
export function nftScript(pf: "ip" | "ip6", iface: string, table: number, addresses: readonly string[]): string {
  const t = `wg-quick-${iface}`;
  let s = `add table ${pf} ${t}\n`;
  s += `add chain ${pf} ${t} preraw { type filter hook prerouting priority -300; }\n`;
  s += `add chain ${pf} ${t} premangle { type filter hook prerouting priority -150; }\n`;
  s += `add chain ${pf} ${t} postmangle { type filter hook postrouting priority -150; }\n`;
  for (const a of addresses) s += `add rule ${pf} ${t} preraw iifname != "${iface}" ${pf} daddr ${a} fib saddr type != local drop\n`;
  s += `add rule ${pf} ${t} postmangle meta l4proto udp mark ${table} ct mark set mark \n`;
  s += `add rule ${pf} ${t} premangle meta l4proto udp meta mark set ct mark \n`;
  return s;
}

/** Run `nft -f` on a script fed through a pipe; nft's own messages pass through. Returns its status. */
export async function nftApply(nft: string, script: string): Promise<number> {
  const p = Bun.spawn([nft, "-f", "/dev/stdin"], { env: process.env, stdin: new TextEncoder().encode(script), stdout: "inherit", stderr: "inherit" });
  return await p.exited;
}

/** The `delete table ...` script for every table `nft list tables` shows named wg-quick-IFACE ("" if none). */
export async function nftRemovalScript(nft: string, iface: string): Promise<string> {
  const p = Bun.spawn([nft, "list", "tables"], { env: process.env, stdin: "ignore", stdout: "pipe", stderr: "ignore" });
  const text = await new Response(p.stdout).text();
  await p.exited;
  let script = "";
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line.endsWith(` wg-quick-${iface}`)) script += `delete ${line}\n`;
  }
  return script;
}

// ---- iptables (no nft in PATH) ----

/** The iptables command of a family: its -save and -restore siblings carry the same prefix. */
export function xtables(pf: "ip" | "ip6"): "iptables" | "ip6tables" {
  return pf === "ip6" ? "ip6tables" : "iptables";
}

/**
 * The message where neither nft nor the family's iptables-restore is installed, so the rules of
 * a default route cannot be made: bash's "command not found" and what to install.
 */
export function restoreMissingMessage(pf: "ip" | "ip6"): string {
  const name = `${xtables(pf)}-restore`;
  const route = pf === "ip6" ? "::/0" : "0.0.0.0/0";
  return `${name}: command not found (a default route, AllowedIPs = ${route}, needs nft or ${name} for its firewall rules: on Debian/Ubuntu install the nftables package, or iptables)`;
}

/** What tags every rule of IFACE; the closing quote keeps `wg0` from matching `wg01`'s rules. */
function marker(iface: string): string {
  return `-m comment --comment "wg-quick(8) rule for ${iface}"`;
}

/** The iptables-restore input for one family, byte for byte as wg-quick 1.0.20210914 builds it. */
export function iptablesScript(iface: string, table: number, addresses: readonly string[]): string {
  const m = marker(iface);
  let s = "*raw\n";
  for (const a of addresses) s += `-I PREROUTING ! -i ${iface} -d ${a} -m addrtype ! --src-type LOCAL -j DROP ${m}\n`;
  s += `COMMIT\n*mangle\n`;
  s += `-I POSTROUTING -m mark --mark ${table} -p udp -j CONNMARK --save-mark ${m}\n`;
  s += `-I PREROUTING -p udp -j CONNMARK --restore-mark ${m}\n`;
  s += "COMMIT\n";
  return s;
}

/**
 * `NAME -n` (iptables-restore or ip6tables-restore at `exe`) fed `script` through a pipe, under
 * the name the reference runs it by; its own messages pass through. Returns its status.
 */
export async function iptablesRestore(exe: string, name: string, script: string): Promise<number> {
  const p = Bun.spawn([exe, "-n"], { env: process.env, argv0: name, stdin: new TextEncoder().encode(script), stdout: "inherit", stderr: "inherit" });
  return await p.exited;
}

/**
 * The restore input deleting every rule of IFACE that `SAVE` (iptables-save or ip6tables-save)
 * lists: its table headers and COMMITs, and each tagged `-A` line turned into `-D`. Null when no
 * rule of IFACE is there, or `SAVE` is not in PATH (the reference's `2>/dev/null` hides that).
 */
export async function iptablesRemovalScript(save: string, iface: string): Promise<string | null> {
  const exe = whichNow(save);
  if (exe === null) return null;
  const p = Bun.spawn([exe], { env: process.env, argv0: save, stdin: "ignore", stdout: "pipe", stderr: "ignore" });
  const text = await new Response(p.stdout).text();
  await p.exited;
  const m = marker(iface);
  let script = "";
  let found = false;
  const lines = text.split("\n");
  lines.pop(); // bash's `while read -r` drops an unterminated last line
  for (const raw of lines) {
    const line = raw.replace(/^[ \t]+|[ \t]+$/g, "");
    if (!(line.startsWith("*") || line === "COMMIT" || (line.startsWith("-A ") && line.indexOf(m, 3) >= 0))) continue;
    if (line.startsWith("-A")) found = true;
    script += `${line.startsWith("-A") ? `-D${line.slice(2)}` : line}\n`;
  }
  return found ? script : null;
}

/**
 * Restore inputs joined table by table (one `*table ... COMMIT` block each, in first-seen order,
 * lines in input order), so deleting old rules and inserting new ones is one commit per table.
 */
export function mergeRestoreScripts(...scripts: string[]): string {
  const blocks = new Map<string, string[]>();
  let current: string[] | null = null;
  for (const script of scripts) {
    for (const line of script.split("\n")) {
      if (line.startsWith("*")) {
        const name = line.slice(1);
        current = blocks.get(name) ?? [];
        blocks.set(name, current);
      } else if (line === "COMMIT") current = null;
      else if (line !== "" && current !== null) current.push(line);
    }
  }
  let out = "";
  for (const [name, lines] of blocks) if (lines.length) out += `*${name}\n${lines.map((l) => `${l}\n`).join("")}COMMIT\n`;
  return out;
}
