// What an installation of wgts consists of and where each piece goes: one list for the Debian
// package (build.ts) and the prefix install (install.ts), so both put the same files in place.
// Everything here is computed from the sources in this directory, completions/ and package.json;
// only place() writes to the filesystem.
import { chmodSync, copyFileSync, existsSync, lstatSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { gzipSync } from "node:zlib";

export const PACKAGE_DIR = import.meta.dir;
export const REPO = join(import.meta.dir, "..", "..", "..");

/** Installation directories, absolute as seen on the installed system. */
export interface Dirs {
  bindir: string;
  man8dir: string;
  unitdir: string;
  bashcompdir: string;
  zshcompdir: string;
  fishcompdir: string;
  docdir: string;
  /** Holds wireguard/ (wg-quick's configurations); wg-quick looks only in /etc/wireguard. */
  sysconfdir: string;
}

/** The Debian package's places (as wireguard-tools on Debian 12, units under /lib). */
export function debianDirs(name: string): Dirs {
  return {
    bindir: "/usr/bin",
    man8dir: "/usr/share/man/man8",
    unitdir: "/lib/systemd/system",
    bashcompdir: "/usr/share/bash-completion/completions",
    zshcompdir: "/usr/share/zsh/vendor-completions",
    fishcompdir: "/usr/share/fish/vendor_completions.d",
    docdir: `/usr/share/doc/${name}`,
    sysconfdir: "/etc",
  };
}

/**
 * A prefix install's places. Every one of them is searched by default when PREFIX is /usr/local
 * (systemd: /usr/local/lib/systemd/system; bash-completion, zsh and fish: /usr/local/share).
 */
export function prefixDirs(prefix: string, name: string, unitdir?: string): Dirs {
  const share = `${prefix}/share`;
  return {
    bindir: `${prefix}/bin`,
    man8dir: `${share}/man/man8`,
    unitdir: unitdir ?? `${prefix}/lib/systemd/system`,
    bashcompdir: `${share}/bash-completion/completions`,
    zshcompdir: `${share}/zsh/site-functions`,
    fishcompdir: `${share}/fish/vendor_completions.d`,
    docdir: `${share}/doc/${name}`,
    sysconfdir: "/etc",
  };
}

export type Entry =
  | { kind: "file"; path: string; mode: number; data: Uint8Array }
  /** A large file copied from `from` (the executable). */
  | { kind: "copy"; path: string; mode: number; from: string }
  | { kind: "link"; path: string; target: string }
  | { kind: "dir"; path: string; mode: number };

export interface Meta {
  name: string;
  version: string;
  /** Of the newest changelog entry, ISO (YYYY-MM-DD): the man pages' date. */
  date: string;
}

/** The changelog's newest entry: its version, maintainer line and date. */
export interface ChangelogHead {
  version: string;
  maintainer: string;
  date: Date;
}

/** Parses the first entry of a Debian-format changelog ("pkg (version) dist; urgency=..." ... " -- who  date"). */
export function changelogHead(text: string): ChangelogHead {
  const head = /^(\S+) \(([^)]+)\) [^;]+; urgency=\S+$/m.exec(text);
  const trailer = /^ -- (.+ <[^>]+>) {2}(.+)$/m.exec(text);
  if (!head || !trailer) throw new Error("changelog: no entry in Debian format at the top");
  const date = new Date(trailer[2]!);
  if (Number.isNaN(date.getTime())) throw new Error(`changelog: bad date ${trailer[2]}`);
  return { version: head[2]!, maintainer: trailer[1]!, date };
}

/** Package name and version from package.json, checked against the changelog's newest entry. */
export function readMeta(): Meta & { maintainer: string; time: Date } {
  const pkg = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as { name: string; version: string };
  const head = changelogHead(readFileSync(join(PACKAGE_DIR, "changelog"), "utf8"));
  if (head.version !== pkg.version) throw new Error(`changelog's newest entry is ${head.version}, package.json says ${pkg.version}: add an entry`);
  return { name: pkg.name, version: pkg.version, date: head.date.toISOString().slice(0, 10), maintainer: head.maintainer, time: head.date };
}

/** gzip -9n: best compression, no name or time stamp, so equal input gives equal bytes. */
export const gzip = (data: string | Uint8Array): Uint8Array => gzipSync(data, { level: 9 });

const source = (name: string) => readFileSync(join(PACKAGE_DIR, name), "utf8");
const substitute = (text: string, vars: Record<string, string>) => text.replace(/@([A-Z]+)@/g, (m, k: string) => vars[k] ?? m);

/** Every file, link and directory of an installation, `binary` being the compiled executable. */
export function entries(dirs: Dirs, meta: Meta, binary: string): Entry[] {
  const vars = { VERSION: meta.version, DATE: meta.date, BINDIR: dirs.bindir };
  const text = (path: string, body: string, mode = 0o644): Entry => ({ kind: "file", path, mode, data: new TextEncoder().encode(body) });
  const completion = (file: string) => readFileSync(join(REPO, "completions", file), "utf8");
  return [
    { kind: "copy", path: `${dirs.bindir}/wg`, mode: 0o755, from: binary },
    { kind: "link", path: `${dirs.bindir}/wg-quick`, target: "wg" },
    text(`${dirs.unitdir}/wg-quick@.service`, substitute(source("wg-quick@.service.in"), vars)),
    text(`${dirs.unitdir}/wg-quick.target`, source("wg-quick.target")),
    { kind: "file", path: `${dirs.man8dir}/wg.8.gz`, mode: 0o644, data: gzip(substitute(source("wg.8"), vars)) },
    { kind: "file", path: `${dirs.man8dir}/wg-quick.8.gz`, mode: 0o644, data: gzip(substitute(source("wg-quick.8"), vars)) },
    text(`${dirs.bashcompdir}/wg`, completion("wg.bash")),
    text(`${dirs.bashcompdir}/wg-quick`, completion("wg-quick.bash")),
    text(`${dirs.zshcompdir}/_wg`, completion("wg.zsh")),
    text(`${dirs.fishcompdir}/wg.fish`, completion("wg.fish")),
    text(`${dirs.docdir}/copyright`, source("copyright")),
    { kind: "file", path: `${dirs.docdir}/changelog.gz`, mode: 0o644, data: gzip(source("changelog")) },
    { kind: "dir", path: `${dirs.sysconfdir}/wireguard`, mode: 0o700 },
  ];
}

/**
 * Puts `list` under `root` (a staging tree or DESTDIR; "" for /). Parent directories are made
 * 0755; files are written beside their place and renamed over it, so a running wg is never
 * overwritten in place. Returns the directories that did not exist before (the uninstall removes
 * them again when empty), parents before children.
 */
export function place(list: readonly Entry[], root: string): string[] {
  const created: string[] = [];
  const ensureDir = (dir: string, mode = 0o755) => {
    if (existsSync(root + dir)) return;
    ensureDir(dirname(dir));
    mkdirSync(root + dir);
    chmodSync(root + dir, mode);
    created.push(dir);
  };
  for (const e of list) {
    const at = root + e.path;
    if (e.kind === "dir") {
      ensureDir(e.path, e.mode);
      chmodSync(at, e.mode);
      continue;
    }
    ensureDir(dirname(e.path));
    const tmp = `${at}.wgts-new`;
    rmSync(tmp, { force: true });
    if (e.kind === "link") symlinkSync(e.target, tmp);
    else {
      if (e.kind === "copy") copyFileSync(e.from, tmp);
      else writeFileSync(tmp, e.data);
      chmodSync(tmp, e.mode);
    }
    if (existsSync(at) && lstatSync(at).isDirectory()) throw new Error(`${at} is a directory`);
    renameSync(tmp, at);
  }
  return created;
}
