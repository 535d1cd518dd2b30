// The Debian package and the prefix install (platform/linux/package/), installed into a
// throw-away minimal Debian root (test/lib-debroot.ts) and run from there: keys, man pages,
// systemd units, completions, and wg-quick up/reload/down of /etc/wireguard/*.conf in a network
// namespace (the userspace daemon, as this host has no kernel module). dpkg --purge and the
// prefix uninstall must give back the root's exact file list. The first run makes the root with
// debootstrap (minutes); later runs unpack it from .cache/debroot (seconds).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildDeb } from "../platform/linux/package/build.ts";
import { debianRoot, inRoot, shInRoot, snapshot } from "./lib-debroot.ts";
import { Lab, type Netns } from "./netns.ts";

const REPO = join(import.meta.dir, "..");
/**
 * Left out of the before/after comparison, as they are no package's files: dpkg's database and
 * logs, man-db's cache (its trigger and `man` itself write there), and the run-time state under
 * /run and /tmp (the daemon's socket directory, systemd-analyze's marker; tmpfs on a real system).
 */
const BOOKKEEPING = ["var/lib/dpkg", "var/log", "var/cache/man", "run", "tmp"];

let out: string;
let deb: string;
let root: string;
let lab: Lab;
let ns: Netns;
let pristine: string[];

beforeAll(() => {
  out = mkdtempSync(join(tmpdir(), "wgt-pkg-"));
  lab = new Lab("pkg");
  ns = lab.ns("a");
});
afterAll(async () => {
  await lab.cleanup();
  if (root) rmSync(root, { recursive: true, force: true });
  rmSync(out, { recursive: true, force: true });
});

const field = (name: string) => Bun.spawnSync(["dpkg-deb", "-f", deb, name]).stdout.toString().trim();

describe("the .deb", () => {
  test("builds with dpkg-deb", () => {
    deb = buildDeb(out);
    const pkg = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8"));
    expect(deb).toBe(join(out, `${pkg.name}_${pkg.version}_amd64.deb`));
    expect(field("Package")).toBe(pkg.name);
    expect(field("Version")).toBe(pkg.version);
  }, 300_000);

  test("control: depends on libc6 alone, provides/replaces/conflicts wireguard-tools", () => {
    expect(field("Depends")).toMatch(/^libc6 \(>= 2\.[0-9]+\)$/);
    expect(field("Recommends")).toContain("libssl3");
    expect(field("Provides")).toBe("wireguard-tools (= 1.0.20210914)");
    expect(field("Replaces")).toBe("wireguard-tools");
    expect(field("Conflicts")).toBe("wireguard-tools");
  });

  test("files, links and modes", () => {
    const list = Bun.spawnSync(["dpkg-deb", "-c", deb])
      .stdout.toString()
      .trim()
      .split("\n")
      .map((l) => {
        const [mode, owner, , , , ...rest] = l.split(/\s+/);
        return `${mode} ${owner} ${rest.join(" ")}`;
      })
      .filter((l) => !l.startsWith("d") || l.includes("etc/wireguard"));
    expect(list.sort()).toEqual(
      [
        "drwx------ root/root ./etc/wireguard/",
        "-rw-r--r-- root/root ./lib/systemd/system/wg-quick.target",
        "-rw-r--r-- root/root ./lib/systemd/system/wg-quick@.service",
        "-rwxr-xr-x root/root ./usr/bin/wg",
        "lrwxrwxrwx root/root ./usr/bin/wg-quick -> wg",
        "-rw-r--r-- root/root ./usr/share/bash-completion/completions/wg",
        "-rw-r--r-- root/root ./usr/share/bash-completion/completions/wg-quick",
        "-rw-r--r-- root/root ./usr/share/doc/wgts/changelog.gz",
        "-rw-r--r-- root/root ./usr/share/doc/wgts/copyright",
        "-rw-r--r-- root/root ./usr/share/fish/vendor_completions.d/wg.fish",
        "-rw-r--r-- root/root ./usr/share/lintian/overrides/wgts",
        "-rw-r--r-- root/root ./usr/share/man/man8/wg-quick.8.gz",
        "-rw-r--r-- root/root ./usr/share/man/man8/wg.8.gz",
        "-rw-r--r-- root/root ./usr/share/zsh/vendor-completions/_wg",
      ].sort(),
    );
  });

  test("lintian reports no errors", () => {
    const r = Bun.spawnSync(["lintian", "--fail-on", "error", deb], { stdout: "pipe", stderr: "pipe" });
    const tags = r.stdout.toString();
    expect(tags.split("\n").filter((l) => l.startsWith("E:"))).toEqual([]);
    expect(r.exitCode).toBe(0);
  }, 300_000);
});

/** wg-quick up, reload (a peer added to the file) and down of /etc/wireguard/wgpkg0.conf in the root. */
function upReloadDown(bindir: string): void {
  const iface = "wgpkg0";
  const conf = join(root, "etc/wireguard", `${iface}.conf`);
  const key = shInRoot(root, `${bindir}/wg genkey`).trim();
  const peerA = shInRoot(root, `${bindir}/wg genkey | ${bindir}/wg pubkey`).trim();
  const peerB = shInRoot(root, `${bindir}/wg genkey | ${bindir}/wg pubkey`).trim();
  const base = `[Interface]\nPrivateKey = ${key}\nListenPort = 51999\nAddress = 10.98.0.1/24\n\n[Peer]\nPublicKey = ${peerA}\nAllowedIPs = 10.98.0.2/32\n`;
  writeFileSync(conf, base);
  chmodSync(conf, 0o600);
  try {
    const up = inRoot(root, [`${bindir}/wg-quick`, "up", iface], ns);
    expect(up.stderr).toContain(`[#] ip link add ${iface} type wireguard`);
    expect(up.code).toBe(0);
    expect(existsSync(join(root, "run/wireguard", `${iface}.sock`))).toBe(true);
    expect(ns.sh(`ip -o -4 addr show dev ${iface}`)).toContain("10.98.0.1/24");
    expect(shInRoot(root, `${bindir}/wg show ${iface} listen-port`, ns)).toBe("51999\n");

    writeFileSync(conf, `${base}\n[Peer]\nPublicKey = ${peerB}\nAllowedIPs = 10.97.5.0/24\n`);
    const reload = inRoot(root, [`${bindir}/wg-quick`, "reload", iface], ns);
    expect(reload.code).toBe(0);
    expect(shInRoot(root, `${bindir}/wg show ${iface} peers`, ns).trim().split("\n").sort()).toEqual([peerA, peerB].sort());
    expect(ns.sh("ip -o -4 route")).toContain(`10.97.5.0/24 dev ${iface}`);

    const down = inRoot(root, [`${bindir}/wg-quick`, "down", iface], ns);
    expect(down.code).toBe(0);
    expect(ns.run(["ip", "link", "show", iface]).code).not.toBe(0);
    expect(existsSync(join(root, "run/wireguard", `${iface}.sock`))).toBe(false);
  } finally {
    inRoot(root, [`${bindir}/wg-quick`, "down", iface], ns);
    rmSync(conf, { force: true });
  }
}

/** The installed executable, man pages, units and completions, run from inside the root. */
function checkInstalled(bindir: string, mandir: string, unitdir: string): void {
  // Keys: ours in the root against wireguard-tools' wg on the host.
  const pair = shInRoot(root, `k=$(${bindir}/wg genkey) && echo "$k" && echo "$k" | ${bindir}/wg pubkey`).trim().split("\n");
  expect(pair).toHaveLength(2);
  const host = Bun.spawnSync(["/usr/bin/wg", "pubkey"], { stdin: new TextEncoder().encode(pair[0] + "\n") });
  expect(pair[1]).toBe(host.stdout.toString().trim());

  for (const page of ["wg", "wg-quick"]) {
    const r = inRoot(root, ["man", "--warnings", "-l", `${mandir}/man8/${page}.8.gz`], undefined, { MANWIDTH: "80" });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`${page.toUpperCase()}(8)`);
    // Found by name (Debian's /usr/local/man is a link to share/man).
    expect(shInRoot(root, `readlink -f "$(man -w ${page})"`).trim()).toBe(`${mandir}/man8/${page}.8.gz`);
  }

  const verify = inRoot(root, ["systemd-analyze", "verify", `${unitdir}/wg-quick@.service`, `${unitdir}/wg-quick.target`]);
  expect(verify.stderr).toBe("");
  expect(verify.code).toBe(0);
  expect(readFileSync(join(root, unitdir, "wg-quick@.service"), "utf8")).toContain(`ExecReload=${bindir}/wg-quick reload %i\n`);
}

/** Directives of a unit file, comments and the Documentation= lines (which name different pages) left out. */
function directives(text: string): string[] {
  return text.split("\n").filter((l) => l !== "" && !l.startsWith("#") && !l.startsWith("Documentation="));
}

describe("installed with dpkg into a minimal Debian root", () => {
  test("the root", async () => {
    root = await debianRoot();
    pristine = snapshot(root, BOOKKEEPING);
    expect(pristine).toContain("755 usr/bin/dpkg");
  }, 900_000);

  test("dpkg -i", () => {
    copyFileSync(deb, join(root, "tmp/wgts.deb"));
    const r = inRoot(root, ["dpkg", "-i", "/tmp/wgts.deb"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    rmSync(join(root, "tmp/wgts.deb"));
    // Every library the executable loads belongs to libc6, the one dependency.
    const libs = [...shInRoot(root, "ldd /usr/bin/wg").matchAll(/=> (\/\S+)/g)].map((m) => m[1]!);
    expect(libs.length).toBeGreaterThan(0);
    for (const lib of libs) expect(shInRoot(root, `dpkg -S ${lib} | cut -d: -f1`).trim()).toBe("libc6");
    expect(snapshot(root, BOOKKEEPING)).toContain("700 etc/wireguard");
  });

  test("wg keys, man pages, systemd units", () => checkInstalled("/usr/bin", "/usr/share/man", "/lib/systemd/system"));

  test("units: wireguard-tools' directives, ExecReload through wg-quick reload", () => {
    for (const unit of ["wg-quick@.service", "wg-quick.target"]) {
      const ours = directives(readFileSync(join(root, "lib/systemd/system", unit), "utf8"));
      const theirs = directives(readFileSync(join("/lib/systemd/system", unit), "utf8"));
      const reload = (l: string) => l.startsWith("ExecReload=");
      expect(ours.filter((l) => !reload(l))).toEqual(theirs.filter((l) => !reload(l)));
      expect(ours.filter(reload)).toEqual(unit.endsWith(".service") ? ["ExecReload=/usr/bin/wg-quick reload %i"] : []);
    }
  });

  test("completions: bash completes from the installed file; zsh and fish are what `wg completions` prints", () => {
    const line = "source /usr/share/bash-completion/completions/wg; COMP_WORDS=(wg se); COMP_CWORD=1; _wg_completion; echo ${COMPREPLY[@]}";
    expect(shInRoot(root, `bash -c '${line}'`).trim()).toBe("set setconf");
    expect(shInRoot(root, "bash -c 'source /usr/share/bash-completion/completions/wg-quick; complete -p wg-quick'")).toContain("wg-quick");
    expect(readFileSync(join(root, "usr/share/zsh/vendor-completions/_wg"), "utf8")).toBe(shInRoot(root, "wg completions zsh"));
    expect(readFileSync(join(root, "usr/share/fish/vendor_completions.d/wg.fish"), "utf8")).toBe(shInRoot(root, "wg completions fish"));
  });

  test("wg-quick up, reload, down of /etc/wireguard/wgpkg0.conf in a network namespace", () => upReloadDown("/usr/bin"), 60_000);

  test("dpkg --purge leaves the root's file list as before", () => {
    const r = inRoot(root, ["dpkg", "--purge", "wgts"]);
    expect(r.code).toBe(0);
    expect(snapshot(root, BOOKKEEPING)).toEqual(pristine);
  });
});

describe("prefix install (install.ts) into the same root", () => {
  const installTs = join(REPO, "platform/linux/package/install.ts");
  const tool = (...args: string[]) => Bun.spawnSync([process.execPath, installTs, "--prefix", "/usr/local", "--destdir", root, ...args], { stdout: "pipe", stderr: "pipe" });

  test("installs the same files under /usr/local", () => {
    const r = tool();
    expect(r.stderr.toString()).toBe("");
    expect(r.exitCode).toBe(0);
    const added = snapshot(root, BOOKKEEPING).filter((l) => !pristine.includes(l));
    for (const f of [
      "755 usr/local/bin/wg",
      "777 usr/local/bin/wg-quick -> wg",
      "644 usr/local/lib/systemd/system/wg-quick@.service",
      "644 usr/local/lib/systemd/system/wg-quick.target",
      "644 usr/local/share/man/man8/wg.8.gz",
      "644 usr/local/share/man/man8/wg-quick.8.gz",
      "644 usr/local/share/bash-completion/completions/wg",
      "644 usr/local/share/bash-completion/completions/wg-quick",
      "644 usr/local/share/zsh/site-functions/_wg",
      "644 usr/local/share/fish/vendor_completions.d/wg.fish",
      "644 usr/local/share/doc/wgts/copyright",
      "644 usr/local/share/doc/wgts/changelog.gz",
      "700 etc/wireguard",
    ])
      expect(added).toContain(f);
  }, 120_000);

  test("wg keys, man pages, systemd units", () => checkInstalled("/usr/local/bin", "/usr/local/share/man", "/usr/local/lib/systemd/system"));

  test("wg-quick up, reload, down", () => upReloadDown("/usr/local/bin"), 60_000);

  test("--uninstall leaves the root's file list as before", () => {
    const r = tool("--uninstall");
    expect(r.exitCode).toBe(0);
    expect(snapshot(root, BOOKKEEPING)).toEqual(pristine);
  });
});

describe("replacing wireguard-tools", () => {
  test("dpkg -i over an installed wireguard-tools removes it and takes over wg and wg-quick", () => {
    // Debian's package, from apt's cache (test/setup.sh installed it on the host) or downloaded.
    const cached = Bun.spawnSync(["sh", "-c", "ls /var/cache/apt/archives/wireguard-tools_*.deb 2>/dev/null | tail -1"]).stdout.toString().trim();
    let theirs = cached;
    if (theirs === "") {
      const dl = Bun.spawnSync(["apt-get", "download", "wireguard-tools"], { cwd: out, stdout: "pipe", stderr: "pipe" });
      expect(dl.exitCode).toBe(0);
      theirs = join(out, Bun.spawnSync(["sh", "-c", "ls wireguard-tools_*.deb"], { cwd: out }).stdout.toString().trim());
    }
    copyFileSync(theirs, join(root, "tmp/wireguard-tools.deb"));
    copyFileSync(deb, join(root, "tmp/wgts.deb"));
    try {
      expect(inRoot(root, ["dpkg", "-i", "/tmp/wireguard-tools.deb"]).code).toBe(0);
      expect(shInRoot(root, "dpkg -S /usr/bin/wg")).toBe("wireguard-tools: /usr/bin/wg\n");
      const r = inRoot(root, ["dpkg", "-i", "/tmp/wgts.deb"]);
      expect(r.code).toBe(0);
      expect(shInRoot(root, "dpkg-query -W -f '${db:Status-Status}' wireguard-tools")).not.toBe("installed");
      expect(shInRoot(root, "dpkg -S /usr/bin/wg /usr/bin/wg-quick /lib/systemd/system/wg-quick@.service")).toBe(
        "wgts: /usr/bin/wg\nwgts: /usr/bin/wg-quick\nwgts: /lib/systemd/system/wg-quick@.service\n",
      );
      expect(inRoot(root, ["wg", "completions", "zsh"]).code).toBe(0);
    } finally {
      inRoot(root, ["dpkg", "--purge", "wgts", "wireguard-tools"]);
      rmSync(join(root, "tmp/wireguard-tools.deb"), { force: true });
      rmSync(join(root, "tmp/wgts.deb"), { force: true });
    }
    expect(snapshot(root, BOOKKEEPING)).toEqual(pristine);
  }, 60_000);
});
