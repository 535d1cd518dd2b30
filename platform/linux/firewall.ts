// The nftables rules wg-quick installs for a default route through the tunnel, applied with
// `nft -f`. They drop packets addressed to the tunnel's own addresses that arrive elsewhere
// (spoofed), and carry the fwmark of the encrypted UDP into conntrack so that replies to the
// endpoint keep bypassing the tunnel table.

/** Where `nft` is in PATH, or null (wg-quick then fails with a clear error instead of iptables). */
export function nftPath(): string | null {
  return Bun.which("nft");
}

export const NFT_MISSING = "nft (nftables) is required for a default route through the tunnel, but it is not in PATH";

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
  const p = Bun.spawn([nft, "-f", "/dev/stdin"], { stdin: new TextEncoder().encode(script), stdout: "inherit", stderr: "inherit" });
  return await p.exited;
}

/** The `delete table ...` script for every table `nft list tables` shows named wg-quick-IFACE ("" if none). */
export async function nftRemovalScript(nft: string, iface: string): Promise<string> {
  const p = Bun.spawn([nft, "list", "tables"], { stdin: "ignore", stdout: "pipe", stderr: "ignore" });
  const text = await new Response(p.stdout).text();
  await p.exited;
  let script = "";
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line.endsWith(` wg-quick-${iface}`)) script += `delete ${line}\n`;
  }
  return script;
}
