// DNS for wg-quick: through resolvconf(8) (Debian's resolvconf, openresolv) as the reference
// does, or, where systemd-resolved manages DNS and no real resolvconf is installed, per link
// through resolvectl(1), which also gives routing domains (`~example.com`). Without either,
// `DNS =` cannot work: callers get status 127 and a message that says what to install instead
// of bash's bare "command not found".
import { existsSync, lstatSync, readFileSync, realpathSync } from "node:fs";
import { basename } from "node:path";
import { whichNow } from "../current-env.ts";

export const RESOLVCONF_MISSING =
  "resolvconf: command not found (DNS = needs resolvconf or systemd-resolved: on Debian/Ubuntu install the openresolv or the systemd-resolved package, or remove DNS = from the configuration)";

export const RESOLVED_NOT_RUNNING =
  "resolvconf: command not found (DNS = needs resolvconf or systemd-resolved: resolvectl is installed but systemd-resolved is not running; start it with `systemctl enable --now systemd-resolved`, or install the openresolv package, or remove DNS = from the configuration)";

/** Exists while systemd-resolved runs (its RuntimeDirectory); the test for "resolved manages DNS". */
export const RESOLVED_RUNTIME_DIR = "/run/systemd/resolve";

/**
 * Who takes `DNS =`:
 * - "resolvconf": a resolvconf in PATH that is not systemd's compatibility symlink, or that
 *   symlink while resolved is not running: exactly the reference's behaviour;
 * - "resolvectl": resolvectl in PATH and resolved running, and resolvconf absent or only the
 *   symlink to resolvectl/systemctl (newer wireguard-tools also tell the two apart by the symlink);
 * - "missing": neither; `message` says what to install.
 */
export type DnsManager = { kind: "resolvconf" } | { kind: "resolvectl"; exe: string } | { kind: "missing"; message: string };

function isSystemdShim(path: string): boolean {
  try {
    if (!lstatSync(path).isSymbolicLink()) return false;
    return ["resolvectl", "systemctl", "systemd-resolve"].includes(basename(realpathSync(path)));
  } catch {
    return false;
  }
}

export function dnsManager(): DnsManager {
  const resolvconf = resolvconfPath();
  const resolvectl = whichNow("resolvectl");
  const resolved = resolvectl !== null && existsSync(RESOLVED_RUNTIME_DIR);
  if (resolvconf !== null && !(resolved && isSystemdShim(resolvconf))) return { kind: "resolvconf" };
  if (resolved) return { kind: "resolvectl", exe: resolvectl! };
  if (resolvconf !== null) return { kind: "resolvconf" };
  return { kind: "missing", message: resolvectl !== null ? RESOLVED_NOT_RUNNING : RESOLVCONF_MISSING };
}

/** `resolvectl ARGS...` with its messages passed through. Returns the status. */
export async function resolvectl(exe: string, args: readonly string[]): Promise<number> {
  const p = Bun.spawn([exe, ...args], { env: process.env, stdin: "ignore", stdout: "inherit", stderr: "inherit" });
  return await p.exited;
}

/**
 * The words after "Link N (IF):" of `resolvectl dns|domain IF` (errors hidden), i.e. the link's
 * current servers or domains; empty when unset or the link is unknown.
 */
export async function resolvectlQuery(exe: string, what: "dns" | "domain", iface: string): Promise<string[]> {
  const p = Bun.spawn([exe, what, iface], { env: process.env, stdin: "ignore", stdout: "pipe", stderr: "ignore" });
  const out = await new Response(p.stdout).text();
  if ((await p.exited) !== 0) return [];
  const words: string[] = [];
  for (const line of out.split("\n")) {
    const m = /^Link \d+ \([^)]*\):(.*)$/.exec(line.trim());
    if (m) words.push(...m[1]!.split(/\s+/).filter((w) => w !== ""));
  }
  return words;
}

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
  return whichNow("resolvconf");
}

async function run(args: string[], stdin: string | null, stdout: "inherit" | "pipe" | "ignore", stderr: "inherit" | "ignore"): Promise<{ status: number; out: string }> {
  const exe = resolvconfPath();
  if (exe === null) {
    if (stderr === "inherit") {
      const m = dnsManager();
      process.stderr.write(`${m.kind === "missing" ? m.message : RESOLVCONF_MISSING}\n`);
    }
    return { status: 127, out: "" };
  }
  const p = Bun.spawn([exe, ...args], {
    env: process.env,
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
    return readFileSync(`/etc/resolvconf/run/interface/${name}`, "utf8");
  } catch {
    return r.out;
  }
}
