// DNS for wg-quick through resolvconf(8) (Debian's resolvconf, openresolv, or systemd's
// resolvectl symlink). Without one, `DNS =` cannot work: callers get status 127 and a message
// that says what to install instead of bash's bare "command not found".
import { readFileSync } from "node:fs";

export const RESOLVCONF_MISSING =
  "resolvconf: command not found (DNS = needs resolvconf: install openresolv, resolvconf or systemd-resolved, or remove DNS = from the configuration)";

/** Debian resolvconf orders interfaces by /etc/resolvconf/interface-order: "tun." when it lists "tun*". */
export function resolvconfIfacePrefix(): string {
  let text: string;
  try {
    text = readFileSync("/etc/resolvconf/interface-order", "latin1");
  } catch {
    return "";
  }
  for (const raw of text.split("\n")) {
    const m = /^([A-Za-z0-9-]+)\*$/.exec(raw.trim());
    if (m) return `${m[1]}.`;
  }
  return "";
}

function resolvconfPath(): string | null {
  return Bun.which("resolvconf");
}

async function run(args: string[], stdin: string | null, stdout: "inherit" | "pipe" | "ignore", stderr: "inherit" | "ignore"): Promise<{ status: number; out: string }> {
  const exe = resolvconfPath();
  if (exe === null) {
    if (stderr === "inherit") process.stderr.write(`${RESOLVCONF_MISSING}\n`);
    return { status: 127, out: "" };
  }
  const p = Bun.spawn([exe, ...args], {
    stdin: stdin === null ? "ignore" : new TextEncoder().encode(stdin),
    stdout,
    stderr,
  });
  const out = stdout === "pipe" ? await new Response(p.stdout as ReadableStream).text() : "";
  return { status: await p.exited, out };
}

/** `resolvconf -a NAME -m 0 -x` fed with the nameserver/search lines. Returns the status. */
export async function resolvconfAdd(name: string, servers: readonly string[], search: readonly string[]): Promise<number> {
  let text = servers.map((s) => `nameserver ${s}\n`).join("");
  if (search.length) text += `search ${search.join(" ")}\n`;
  return (await run(["-a", name, "-m", "0", "-x"], text, "inherit", "inherit")).status;
}

/** `resolvconf -d NAME -f`. */
export async function resolvconfDel(name: string): Promise<number> {
  return (await run(["-d", name, "-f"], null, "inherit", "inherit")).status;
}

/**
 * What `resolvconf -l NAME` prints (errors hidden), or, when that fails, the Debian state file
 * /etc/resolvconf/run/interface/NAME, as wg-quick's save reads it.
 */
export async function resolvconfList(name: string): Promise<string> {
  const r = await run(["-l", name], null, "pipe", "ignore");
  if (r.status === 0) return r.out;
  try {
    return readFileSync(`/etc/resolvconf/run/interface/${name}`, "latin1");
  } catch {
    return r.out;
  }
}
