// A throw-away Debian root for tests that install packages and run what they installed:
//
//   const root = await debianRoot();                  // fresh copy in a temp dir
//   inRoot(root, ["sh", "-c", "wg genkey"]);          // chrooted, /proc /sys /dev mounted
//   inRoot(root, ["wg-quick", "up", "wg0"], ns);      // ... inside a Lab namespace
//   snapshot(root);                                   // its file list, to compare before/after
//   rmSync(root, { recursive: true, force: true });
//
// The root is `debootstrap --variant=minbase` of the host's release with ROOT_PACKAGES added,
// made once (a few minutes, from the Debian mirror the host's apt uses) and kept as a tarball in
// .cache/debroot/ (git ignores it), which each test run unpacks anew (seconds). The mounts a
// command needs are made in a private mount namespace that ends with it, so the host's mount
// table never changes and deleting the root never reaches into /dev or /proc.
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, renameSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Netns, RunResult } from "./netns.ts";

/** Beyond minbase: man-db (man), systemd (systemd-analyze and the units the ours refer to), libssl3. */
export const ROOT_PACKAGES = ["man-db", "systemd", "libssl3"];
/** In the checkout, not node_modules/ (which `npm ci` empties and a worktree may share). */
const CACHE = join(import.meta.dir, "..", ".cache", "debroot");
const ROOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

function osRelease(key: string): string {
  const m = new RegExp(`^${key}=["']?([^"'\\n]*)`, "m").exec(readFileSync("/etc/os-release", "utf8"));
  if (!m?.[1]) throw new Error(`/etc/os-release has no ${key}`);
  return m[1];
}

/** The host apt's mirror for `suite` main (deb822 or one-line sources), else null (debootstrap's default). */
export function aptMirror(suite: string): string | null {
  const files = ["/etc/apt/sources.list"];
  const d = "/etc/apt/sources.list.d";
  if (existsSync(d)) for (const f of readdirSync(d).sort()) files.push(join(d, f));
  for (const f of files) {
    if (!existsSync(f)) continue;
    const text = readFileSync(f, "utf8");
    if (f.endsWith(".sources")) {
      for (const stanza of text.split(/\n\s*\n/)) {
        const field = (k: string) => new RegExp(`^${k}:\\s*(.*)$`, "mi").exec(stanza)?.[1]?.trim().split(/\s+/) ?? [];
        if (field("Types").includes("deb") && field("Suites").includes(suite) && field("Components").includes("main")) return field("URIs")[0] ?? null;
      }
    } else {
      for (const line of text.split("\n")) {
        const m = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)\s+(.*)$/.exec(line.trim());
        if (m && m[2] === suite && m[3]!.split(/\s+/).includes("main")) return m[1]!;
      }
    }
  }
  return null;
}

function run(cmd: string[]): RunResult {
  const r = Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe" });
  return { code: r.exitCode ?? -1, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

/** The cached tarball of the minimal root, made with debootstrap when missing. */
async function rootTarball(): Promise<string> {
  const suite = osRelease("VERSION_CODENAME");
  const tar = join(CACHE, `${suite}-minbase-${ROOT_PACKAGES.join("+")}.tar`);
  if (existsSync(tar)) return tar;
  if (Bun.which("debootstrap") === null) throw new Error("debootstrap is not installed (test/setup.sh installs it)");
  mkdirSync(join(CACHE, "debs"), { recursive: true });
  const build = mkdtempSync(join(CACHE, "build-"));
  try {
    const mirror = aptMirror(suite);
    const args = ["debootstrap", "--variant=minbase", `--include=${ROOT_PACKAGES.join(",")}`, `--cache-dir=${join(CACHE, "debs")}`, suite, join(build, "root")];
    const p = Bun.spawn(mirror ? [...args, mirror] : args, { stdout: "pipe", stderr: "pipe" });
    const [out, err] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text()]);
    if ((await p.exited) !== 0) throw new Error(`debootstrap failed:\n${(out + err).slice(-3000)}`);
    const t = run(["tar", "-C", join(build, "root"), "-cf", join(build, "root.tar"), "."]);
    if (t.code !== 0) throw new Error(`tar: ${t.stderr}`);
    renameSync(join(build, "root.tar"), tar);
    return tar;
  } finally {
    rmSync(build, { recursive: true, force: true });
  }
}

/** A fresh minimal Debian root in a new temporary directory; the caller deletes it. */
export async function debianRoot(): Promise<string> {
  const tar = await rootTarball();
  const root = mkdtempSync(join(tmpdir(), "wgt-debroot-"));
  const r = run(["tar", "-C", root, "-xpf", tar]);
  if (r.code !== 0) throw new Error(`tar -x: ${r.stderr}`);
  return root;
}

/**
 * Runs argv chrooted into `root` (inside `ns` when given) with a clean environment, /proc, /sys
 * and the host's /dev mounted in a private mount namespace of its own. Never throws.
 */
export function inRoot(root: string, argv: string[], ns?: Netns, env: Record<string, string> = {}): RunResult {
  const vars = Object.entries({ PATH: ROOT_PATH, HOME: "/root", LC_ALL: "C.UTF-8", TERM: "dumb", ...env }).map(([k, v]) => `${k}=${v}`);
  const script =
    'R=$1; shift; mount -t proc proc "$R/proc" && mount -t sysfs sysfs "$R/sys" && mount --rbind /dev "$R/dev" && exec chroot "$R" /usr/bin/env -i "$@"';
  const cmd = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", root, ...vars, ...argv];
  return run(ns ? ["ip", "netns", "exec", ns.name, ...cmd] : cmd);
}

/** Shell line in the root; throws with its output when it fails, returns stdout. */
export function shInRoot(root: string, line: string, ns?: Netns): string {
  const r = inRoot(root, ["sh", "-c", line], ns);
  if (r.code !== 0) throw new Error(`[root] ${line}: exit ${r.code}\n${r.stderr}${r.stdout}`);
  return r.stdout;
}

/**
 * "mode path" (symlinks with their target) of everything in the root except `ignore`d
 * prefixes: the file list an install must add to and an uninstall must restore.
 */
export function snapshot(root: string, ignore: readonly string[] = []): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const name of readdirSync(join(root, rel)).sort()) {
      const p = rel === "" ? name : `${rel}/${name}`;
      if (ignore.some((i) => p === i || p.startsWith(`${i}/`))) continue;
      const st = lstatSync(join(root, p));
      const link = st.isSymbolicLink() ? ` -> ${readlinkSync(join(root, p))}` : "";
      out.push(`${(st.mode & 0o7777).toString(8)} ${p}${link}`);
      if (st.isDirectory()) walk(p);
    }
  };
  walk("");
  return out;
}
