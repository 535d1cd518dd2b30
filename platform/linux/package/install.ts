// Installs wgts without the Debian package, like `make install PREFIX=... DESTDIR=...`:
//
//   bun platform/linux/package/install.ts [--prefix /usr/local] [--destdir DIR] [--unitdir DIR] [--uninstall]
//   (npm run install-prefix -- --prefix /usr/local ...)
//
// Puts the package's files (layout.ts) under PREFIX: bin/wg and bin/wg-quick, the man pages,
// the systemd units (ExecStart naming PREFIX/bin), the shell completions, the documents, and
// /etc/wireguard (0700). It records what it put in place and which directories it created in
// PREFIX/share/doc/wgts/installed-files; --uninstall removes exactly those, directories only when
// empty (so /etc/wireguard stays while it holds configurations).
import { existsSync, lstatSync, mkdtempSync, readFileSync, rmSync, rmdirSync, writeFileSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { compileCommand } from "../../../build.ts";
import { entries, place, prefixDirs, readMeta, type Dirs } from "./layout.ts";

export interface InstallOptions {
  prefix: string;
  /** Staging root prepended to every path ("" for the live system). */
  destdir: string;
  unitdir?: string;
}

const manifestPath = (dirs: Dirs) => `${dirs.docdir}/installed-files`;

/** Manifest lines: "f PATH" for a file or link put in place, "d PATH" for a directory created. */
function readManifest(at: string): { files: string[]; dirs: string[] } | null {
  if (!existsSync(at)) return null;
  const files: string[] = [];
  const dirs: string[] = [];
  for (const line of readFileSync(at, "utf8").split("\n")) {
    if (line.startsWith("f ")) files.push(line.slice(2));
    else if (line.startsWith("d ")) dirs.push(line.slice(2));
  }
  return { files, dirs };
}

/** Compiles the executable and puts every file in place; returns the paths installed. */
export function install(o: InstallOptions): string[] {
  const meta = readMeta();
  const dirs = prefixDirs(o.prefix, meta.name, o.unitdir);
  const tmp = mkdtempSync(join(tmpdir(), "wgts-install-"));
  try {
    const binary = join(tmp, "wg");
    const r = Bun.spawnSync(compileCommand(binary), { stdout: "ignore", stderr: "inherit" });
    if (r.exitCode !== 0) throw new Error(`bun build failed (${r.exitCode})`);
    const list = entries(dirs, meta, binary);
    // A second install over the first keeps the first's record of directories it created.
    const before = readManifest(o.destdir + manifestPath(dirs));
    const created = place(list, o.destdir);
    const files = list.filter((e) => e.kind !== "dir").map((e) => e.path);
    const madeDirs = [...new Set([...(before?.dirs ?? []), ...created])];
    const lines = [...files.map((p) => `f ${p}`), `f ${manifestPath(dirs)}`, ...madeDirs.map((d) => `d ${d}`)];
    writeFileSync(o.destdir + manifestPath(dirs), lines.join("\n") + "\n", { mode: 0o644 });
    return [...files, manifestPath(dirs)];
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** Removes what install() recorded; returns the directories kept because they are not empty. */
export function uninstall(o: InstallOptions): string[] {
  const dirs = prefixDirs(o.prefix, readMeta().name, o.unitdir);
  const manifest = readManifest(o.destdir + manifestPath(dirs));
  if (!manifest) throw new Error(`no installation under ${o.destdir}${o.prefix} (missing ${o.destdir}${manifestPath(dirs)})`);
  for (const f of manifest.files) rmSync(o.destdir + f, { force: true });
  const kept: string[] = [];
  // Children before parents: longest paths first.
  for (const d of [...manifest.dirs].sort((a, b) => b.length - a.length)) {
    const at = o.destdir + d;
    if (!existsSync(at) || !lstatSync(at).isDirectory()) continue;
    if (readdirSync(at).length > 0) kept.push(d);
    else rmdirSync(at);
  }
  return kept;
}

/** Lets a running systemd see added or removed units (only when installing into the live system). */
function daemonReload(o: InstallOptions): void {
  if (o.destdir !== "" || !existsSync("/run/systemd/system") || Bun.which("systemctl") === null) return;
  Bun.spawnSync(["systemctl", "daemon-reload"], { stdout: "ignore", stderr: "ignore" });
}

function usage(): never {
  process.stderr.write("Usage: install.ts [--prefix DIR] [--destdir DIR] [--unitdir DIR] [--uninstall]\n");
  process.exit(1);
}

if (import.meta.main) {
  const o: InstallOptions = { prefix: "/usr/local", destdir: "" };
  let remove = false;
  const args = process.argv.slice(2);
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const value = () => {
      const v = a.includes("=") ? a.slice(a.indexOf("=") + 1) : args[++i];
      if (v === undefined || v === "") usage();
      return v;
    };
    const name = a.split("=")[0];
    if (name === "--prefix") o.prefix = value().replace(/\/+$/, "") || "/";
    else if (name === "--destdir") o.destdir = resolve(value()).replace(/\/+$/, "");
    else if (name === "--unitdir") o.unitdir = value().replace(/\/+$/, "");
    else if (a === "--uninstall") remove = true;
    else usage();
  }
  if (!o.prefix.startsWith("/") || (o.unitdir !== undefined && !o.unitdir.startsWith("/"))) usage();
  if (o.prefix === "/") o.prefix = "";
  try {
    if (remove) {
      for (const d of uninstall(o)) console.log(`kept ${o.destdir}${d}: not empty`);
      console.log(`removed wgts from ${o.destdir}${o.prefix || "/"}`);
    } else {
      for (const p of install(o)) console.log(`installed ${o.destdir}${p}`);
    }
    daemonReload(o);
  } catch (e) {
    process.stderr.write(`install.ts: ${(e as Error).message}\n`);
    process.exit(1);
  }
}
