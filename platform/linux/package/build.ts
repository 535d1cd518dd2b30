// `npm run package`: compiles the executable and builds dist/<name>_<version>_<arch>.deb with
// dpkg-deb alone (no debhelper): the files of layout.ts in Debian's places, the maintainer scripts
// of this directory, and a control file whose Depends comes from the executable's ELF needs.
import { chmodSync, lstatSync, lutimesSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { compileCommand } from "../../../build.ts";
import { dependsFor, readDynamicNeeds } from "./elf.ts";
import { PACKAGE_DIR, REPO, debianDirs, entries, place, readMeta, type Entry } from "./layout.ts";

/** Debian's name for the architecture Bun compiles for (the host's). */
export function debianArch(): string {
  const arch = ({ x64: "amd64", arm64: "arm64" } as Record<string, string>)[process.arch];
  if (!arch) throw new Error(`no Debian architecture for ${process.arch}`);
  return arch;
}

/** What the package declares besides its files; Depends is filled in from the executable. */
function control(meta: ReturnType<typeof readMeta>, depends: string, installedKiB: number): string {
  return [
    `Package: ${meta.name}`,
    `Version: ${meta.version}`,
    `Architecture: ${debianArch()}`,
    `Maintainer: ${meta.maintainer}`,
    `Installed-Size: ${installedKiB}`,
    `Depends: ${depends}`,
    // libcrypto: native ChaCha20-Poly1305/X25519/BLAKE2s (else the built-in TypeScript code);
    // iproute2: rt_tables names and the `ip` commands users put in hooks (wg-quick itself talks
    // rtnetlink); nft, else iptables-restore: wg-quick's rules for default routes.
    "Recommends: libssl3 | libssl1.1, iproute2, nftables | iptables",
    "Suggests: openresolv | resolvconf | systemd-resolved",
    // The wg and wg-quick of this release are drop-ins for that version's.
    "Provides: wireguard-tools (= 1.0.20210914)",
    "Conflicts: wireguard-tools",
    "Replaces: wireguard-tools",
    "Section: net",
    "Priority: optional",
    "Description: userspace WireGuard: drop-in wg and wg-quick with their tunnel daemon",
    " wgts is WireGuard written in TypeScript on Bun: one executable that is wg(8)",
    " and wg-quick(8) of wireguard-tools (same arguments, output and exit codes),",
    " and the userspace tunnel daemon they start where the kernel module is",
    " missing, such as in containers and on old or locked-down kernels.",
    " .",
    " It adds JSON output (wg show --json), an event stream (wg events),",
    " wg-quick reload, DNS through systemd-resolved, and daemon options to keep",
    " the UDP socket in another network namespace and to look endpoint host names",
    " up again.",
    "",
  ].join("\n");
}

/** Files, links and directories under `root`, as paths relative to it, parents first. */
function walk(root: string, dir = root): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    out.push(relative(root, p));
    if (lstatSync(p).isDirectory() && !lstatSync(p).isSymbolicLink()) out.push(...walk(root, p));
  }
  return out;
}

/** Installed-Size as dpkg-gencontrol counts it: KiB per file rounded up, 1 per directory or link. */
function installedKiB(root: string, paths: string[]): number {
  let kib = 0;
  for (const p of paths) {
    const st = lstatSync(join(root, p));
    kib += st.isFile() ? Math.ceil(st.size / 1024) : 1;
  }
  return kib;
}

/** Builds the package; returns its path. */
export function buildDeb(outDir = join(REPO, "dist")): string {
  const meta = readMeta();
  mkdirSync(outDir, { recursive: true });
  const stage = mkdtempSync(join(outDir, ".deb-"));
  try {
    const binary = join(stage, "wg.compiled");
    const r = Bun.spawnSync(compileCommand(binary), { stdout: "inherit", stderr: "inherit" });
    if (r.exitCode !== 0) throw new Error(`bun build failed (${r.exitCode})`);
    const depends = dependsFor(readDynamicNeeds(binary));

    const root = join(stage, "root");
    mkdirSync(root, { mode: 0o755 });
    chmodSync(root, 0o755);
    const list: Entry[] = [
      ...entries(debianDirs(meta.name), meta, binary),
      { kind: "file", path: `/usr/share/lintian/overrides/${meta.name}`, mode: 0o644, data: readFileSync(join(PACKAGE_DIR, "lintian-overrides")) },
    ];
    place(list, root);
    rmSync(binary);

    // Every entry dated by the changelog, so the same sources give the same package.
    const epoch = meta.time;
    const paths = walk(root);
    for (const p of [...paths, ""]) lutimesSync(join(root, p), epoch, epoch);
    const files = paths.filter((p) => lstatSync(join(root, p)).isFile());
    const md5sums = files.map((p) => `${new Bun.CryptoHasher("md5").update(readFileSync(join(root, p))).digest("hex")}  ${p}\n`).join("");
    const debian = join(root, "DEBIAN");
    mkdirSync(debian, { mode: 0o755 });
    chmodSync(debian, 0o755);
    writeFileSync(join(debian, "control"), control(meta, depends, installedKiB(root, paths)));
    writeFileSync(join(debian, "md5sums"), md5sums);
    for (const f of ["control", "md5sums"]) chmodSync(join(debian, f), 0o644);
    for (const script of ["postinst", "prerm", "postrm"]) {
      writeFileSync(join(debian, script), readFileSync(join(PACKAGE_DIR, script)));
      chmodSync(join(debian, script), 0o755);
    }

    const deb = join(outDir, `${meta.name}_${meta.version}_${debianArch()}.deb`);
    // gzip rather than xz: quick to build and to unpack (the trade-off is in bench/RESULTS.md).
    const d = Bun.spawnSync(["dpkg-deb", "--root-owner-group", "-Zgzip", "-z6", "--build", root, deb], {
      stdout: "pipe",
      stderr: "inherit",
      env: { ...process.env, SOURCE_DATE_EPOCH: String(Math.floor(epoch.getTime() / 1000)) },
    });
    if (d.exitCode !== 0) throw new Error(`dpkg-deb failed (${d.exitCode})`);
    return deb;
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  const deb = buildDeb();
  console.log(`built ${relative(process.cwd(), deb)}`);
}
