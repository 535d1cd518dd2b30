// Differential tests for wg-quick: the reference /usr/bin/wg-quick (wireguard-tools v1.0.20210914)
// and ours bring the same configuration up and down in twin network namespaces, and must leave
// the same addresses, routes, rules, nft ruleset, iptables rules, resolvconf calls, hook effects
// and printed lines; `down` must restore each namespace exactly. Needs root, nft, iptables and
// wireguard-go.
//
// Runs are sequential because the UAPI socket directory (/var/run/wireguard) is shared by all
// namespaces; interface names carry this process's id so concurrent test files never collide.
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { generatePrivateKey, publicKey } from "../core/crypto.ts";
import { keyToBase64 } from "../core/encoding.ts";
import { Lab, waitFor, type Netns, type RunResult } from "./netns.ts";
import { AS_NOBODY, nobodyExecutable } from "./lib-nobody.ts";
import { compileCommand } from "../build.ts";
import { HOST_NS_SETUP, SNAPSHOT_COMMANDS, type Snapshot, fullConfig, normSnapshot, normState, resolvconfStub, sortPeers, splitConfig } from "./lib-quick.ts";

const TIMEOUT = 120_000;
const MAIN = join(import.meta.dir, "..", "cmd", "main.ts");
const lab = new Lab("quick");
const dir = mkdtempSync("/tmp/wgt-quick-");
chmodSync(dir, 0o700);
const cfgDir = join(dir, "cfg");
mkdirSync(cfgDir, { mode: 0o700 });
const binDir = join(dir, "bin");
mkdirSync(binDir);
const stateDir = join(dir, "state"); // fake resolvconf state + hook log, reset before each side
const hookLog = join(stateDir, "hooks.log");

writeFileSync(join(binDir, "resolvconf"), resolvconfStub(stateDir), { mode: 0o755 });

const tag = (process.pid % 36 ** 3).toString(36);
let ifCounter = 0;
const createdIfaces: string[] = [];
const namespaces: Netns[] = [];
function newNs(short: string): Netns {
  const ns = lab.ns(short);
  namespaces.push(ns);
  return ns;
}
/** A fresh interface name for one scenario: wq<pid36><n>. */
function ifname(): string {
  const n = `wq${tag}${(ifCounter++).toString(36)}`;
  createdIfaces.push(n);
  return n;
}

const key = () => generatePrivateKey();
const b64 = (k: Uint8Array) => keyToBase64(k);
const PRIV = b64(key());
const PEER1 = b64(publicKey(key()));
const PEER2 = b64(publicKey(key()));
const PEER3 = b64(publicKey(key()));

type Side = "orig" | "ours" | "daemon";

/** The command line of each implementation; "daemon" is ours with our own tunnel daemon. */
function argvOf(side: Side, args: string[]): string[] {
  return side === "orig" ? ["/usr/bin/wg-quick", ...args] : [process.execPath, MAIN, "wg-quick", ...args];
}

function envOf(side: Side): Record<string, string> {
  const env: Record<string, string> = { PATH: `${binDir}:${process.env.PATH}`, WG_QUICK_USERSPACE_IMPLEMENTATION: "wireguard-go" };
  if (side === "daemon") env.WG_QUICK_USERSPACE_IMPLEMENTATION = "";
  return env;
}

/** Lines that legitimately differ: wireguard-go's banner and the name of the daemon launched. */
function normOutput(s: string, iface: string): string {
  return s
    .split("\n")
    .filter((l) => !/[│┌└]/.test(l))
    .map((l) => (l.startsWith("[#] ") && l.endsWith(` daemon ${iface}`) ? `[#] wireguard-go ${iface}` : l))
    .join("\n");
}

/** `wrap`: a command prefix that runs the rest, e.g. in a mount namespace of its own. */
function runSide(side: Side, ns: Netns, args: string[], iface: string, env: Record<string, string> = {}, wrap: string[] = []): RunResult {
  const r = ns.run([...wrap, ...argvOf(side, args)], { ...envOf(side), ...env });
  return { code: r.code, stdout: normOutput(r.stdout, iface), stderr: normOutput(r.stderr, iface) };
}

function snapshot(ns: Netns): Snapshot {
  const raw = {} as Snapshot;
  for (const [k, line] of Object.entries(SNAPSHOT_COMMANDS)) raw[k as keyof Snapshot] = ns.run(["sh", "-c", line]).stdout;
  return normSnapshot(raw, ns.name);
}

function resetState(): void {
  rmSync(stateDir, { recursive: true, force: true });
  mkdirSync(stateDir);
}

/** restore.log: what the iptables-restore wrappers of the no-nft tests were fed. */
function readState(): { resolvconf: string; hooks: string; restore: string } {
  const read = (p: string) => (existsSync(p) ? readFileSync(p, "latin1") : "");
  return { resolvconf: read(join(stateDir, "resolvconf.log")), hooks: read(hookLog), restore: read(join(stateDir, "restore.log")).replace(/fe80::[0-9a-f:]+/g, "fe80::LL") };
}

/** A namespace that looks like a host: eth0 (MTU 1460) with IPv4 and IPv6 default routes. */
let hostCounter = 0;
function hostNs(label: string, extra: string[] = []): Netns {
  const ns = newNs(`${label}${hostCounter++}`);
  ns.sh([...HOST_NS_SETUP, ...extra].join(" && "));
  // Carrier (and with it both ends' operational state, eth0's IPv6 addresses and their local
  // routes, one after the other) arrives asynchronously via linkwatch; snapshots taken before
  // that would differ from later ones. Where `extra` disabled IPv6 on eth0 it has none.
  const v6 = ns.run(["cat", "/proc/sys/net/ipv6/conf/eth0/disable_ipv6"]).stdout.trim() !== "1";
  for (let i = 0; i < 150; i++) {
    const up = ns.run(["cat", "/sys/class/net/eth0/operstate", "/sys/class/net/eth0peer/operstate"]).stdout === "up\nup\n";
    const local = v6 ? ns.run(["ip", "-o", "-6", "route", "show", "table", "local", "dev", "eth0"]).stdout : "";
    if (up && (!v6 || (local.includes("local fe80::") && local.includes("local fd51::2 ")))) break;
    Bun.sleepSync(20);
  }
  return ns;
}

interface Scenario {
  /** The configuration, a byte string (one char per byte); %LOG is replaced by the hook log path. */
  conf: string;
  /** A directory under cfgDir (JS text, so UTF-8 on disk) to keep the file in. */
  dir?: string;
  /** Extra shell lines for the namespace before `up`. */
  setup?: string[];
  /** Commands run while up (besides the snapshot), e.g. ["save"] or ["strip"]. */
  whileUp?: string[];
  /** Expect `up` to fail (then no `down`). */
  upFails?: boolean;
  /** Extra environment for every wg-quick run. */
  env?: Record<string, string>;
  /** A command prefix for every wg-quick run (see runSide). */
  wrap?: string[];
}

interface SideResult {
  up: RunResult;
  upState: Snapshot;
  showconf: string;
  whileUp: RunResult[];
  down: RunResult | null;
  sysctl: string;
  logs: { resolvconf: string; hooks: string; restore: string };
  confAfter: string;
}

/** Brings the scenario up and down with one implementation; checks that down restores the namespace. */
async function play(side: Side, s: Scenario, iface: string): Promise<SideResult> {
  const ns = hostNs(side, s.setup);
  const before = snapshot(ns);
  resetState();
  const path = join(cfgDir, s.dir ?? "", `${iface}.conf`);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, Buffer.from(s.conf.replaceAll("%LOG", hookLog), "latin1"), { mode: 0o600 });
  const up = runSide(side, ns, ["up", path], iface, s.env, s.wrap);
  if (s.upFails) expect(up.code).not.toBe(0);
  const upState = snapshot(ns);
  const showconf = sortPeers(normState(ns.run(["wg", "showconf", iface]).stdout, ns.name));
  const whileUp = (s.whileUp ?? []).map((c) => runSide(side, ns, [c, path], iface, s.env, s.wrap));
  const down = s.upFails ? null : runSide(side, ns, ["down", path], iface, s.env, s.wrap);
  const sysctl = ns.run(["sysctl", "-n", "net.ipv4.conf.all.src_valid_mark"]).stdout;
  // wireguard-go / our daemon leave when their link goes; give them a moment to remove the socket.
  await waitFor(() => !existsSync(`/var/run/wireguard/${iface}.sock`), 3000);
  const after = snapshot(ns);
  expect({ side, ...after }).toEqual({ side, ...before });
  return { up, upState, showconf, whileUp, down, sysctl, logs: readState(), confAfter: sortPeers(normState(readFileSync(path, "latin1"), ns.name)) };
}

async function compare(s: Scenario, sides: Side[] = ["orig", "ours"]): Promise<Record<string, SideResult>> {
  const iface = ifname();
  const out: Record<string, SideResult> = {};
  for (const side of sides) out[side] = await play(side, s, iface);
  const ref = out.orig!;
  for (const side of sides.slice(1)) expect({ side, ...out[side]! }).toEqual({ side, ...ref });
  return out;
}

/** The reference's and our runs of a scenario (ours may differ: an extension), one interface name. */
async function origAndOurs(s: Scenario, sOurs: Scenario = s): Promise<{ orig: SideResult; ours: SideResult }> {
  const iface = ifname();
  return { orig: await play("orig", s, iface), ours: await play("ours", sOurs, iface) };
}

afterAll(async () => {
  // Delete our links first so the daemons exit cleanly and remove their sockets.
  for (const ns of namespaces)
    ns.run(["sh", "-c", `for i in $(ls /sys/class/net | grep '^wq${tag}'); do ip link del $i; done`]);
  await Bun.sleep(300);
  await lab.cleanup();
  for (const i of createdIfaces) {
    try {
      unlinkSync(`/var/run/wireguard/${i}.sock`);
    } catch {}
  }
  rmSync(dir, { recursive: true, force: true });
}, 60_000);

// ---------------------------------------------------------------------------------------------

const SPLIT = splitConfig({ priv: PRIV, peer1: PEER1, peer2: PEER2 });
const FULL = fullConfig({ priv: PRIV, peer1: PEER1, peer2: PEER2 });

describe("wg-quick up/down: reference vs ours (wireguard-go as the tunnel)", () => {
  test("split tunnel, DNS with search domains, MTU from the endpoint's route", () => compare({ conf: SPLIT }), TIMEOUT);

  test("full tunnel IPv4+IPv6: fwmark table 51820, rules, nft, src_valid_mark", () => compare({ conf: FULL }), TIMEOUT);

  test("full tunnel picks the next free table when 51820 is taken", () =>
    compare({ conf: FULL, setup: ["ip route add 10.250.0.0/24 dev eth0 table 51820", "ip -6 route add fd25::/64 dev eth0 table 51821"] }),
  TIMEOUT);

  test("Table = off adds no routes", () =>
    compare({ conf: FULL.replace("DNS = 10.73.0.1", "Table = off") + "[Peer]\nPublicKey = " + PEER2 + "\nAllowedIPs = 10.74.0.0/16\n" }),
  TIMEOUT);

  test("Table = 1234: every allowed IP (defaults too) goes to that table, no rules", () =>
    compare({
      conf: FULL.replace("DNS = 10.73.0.1", "Table = 1234") + "[Peer]\nPublicKey = " + PEER2 + "\nAllowedIPs = 10.74.0.0/16, fd74::/32\n",
    }),
  TIMEOUT);

  test("MTU auto: endpoint behind a route with an mtu metric", () =>
    compare({ conf: SPLIT.replace("198.51.100.1:51820", "203.0.113.5:51820").replace(/^DNS.*\n/m, "") }),
  TIMEOUT);

  test("MTU auto: endpoint without a route prints ip's error and falls back to the default route", () =>
    compare({
      conf: SPLIT.replace("198.51.100.1:51820", "192.0.2.9:51820").replace(/^DNS.*\n/m, ""),
      setup: ["ip route add unreachable 192.0.2.0/24"],
    }).then((r) => expect(r.orig!.up.stderr).toContain("RTNETLINK answers: No route to host\n[#] ip link set mtu 1380 up")),
  TIMEOUT);

  test("MTU auto: no endpoint, default route's device", () =>
    compare({ conf: SPLIT.replace(/^Endpoint.*\n/m, "").replace(/^DNS.*\n/m, "") }),
  TIMEOUT);

  test("MTU explicit, Table = auto, routes already present are skipped", () =>
    compare({
      conf: SPLIT.replace("ListenPort = 51001", "ListenPort = 51001\nMTU = 1280\nTable = auto").replace("10.98.1.0/24", "10.98.1.0/24, 10.71.0.128/25"),
    }),
  TIMEOUT);

  test("FwMark in the file becomes the table; no `wg set fwmark`", () =>
    compare({ conf: FULL.replace("ListenPort = 51002", "ListenPort = 51002\nFwMark = 0x1234") }),
  TIMEOUT);

  test("addresses without prefix, DNS with only a search domain, Table in hex", () =>
    compare({
      conf: SPLIT.replace("Address = 10.71.0.2/24, fd71::2/64", "Address = 10.71.0.2,fd71::2").replace(/^DNS.*$/m, "DNS = only.search.test\nTable = 0x4d2"),
    }),
  TIMEOUT);

  test("hooks: %i, $INTERFACE, comment truncation at an unquoted #, order", () =>
    compare({
      conf: `${SPLIT.replace(/^DNS.*\n/m, "")}`.replace(
        "[Peer]",
        `PreUp = echo "preup %i" >> %LOG
PostUp = echo "postup %i $INTERFACE" >> %LOG # trailing comment
PostUp = echo second >> %LOG
PostUp = echo cut#here >> %LOG
PostUp = echo "it's" >> %LOG # don't
PostUp = echo plain#"quoted" >> %LOG
PreDown = echo "predown %i" >> %LOG
PostDown = echo "postdown %i" >> %LOG
[Peer]`,
      ),
    }),
  TIMEOUT);

  test("non-ASCII: the file in a directory tëst/, a hook with UTF-8 and a byte that is not, a UTF-8 search domain; up, strip, save, down", async () => {
    const r = await compare({
      dir: "t\u00ebst",
      conf: SPLIT.replace(/^DNS.*$/m, "DNS = 10.71.0.53, ex\xc3\xa4mple.test").replace(
        "[Peer]",
        `PostUp = printf '%s\\n' "\xc3\xa9 \xff $CONFIG_FILE" >> %LOG\nSaveConfig = true\n[Peer]`,
      ),
      whileUp: ["strip", "save"],
    });
    expect(r.ours!.logs.hooks).toMatch(/^\xc3\xa9 \xff \/.*\/t\xc3\xabst\/wq[0-9a-z]+\.conf\n$/);
    expect(r.ours!.logs.resolvconf).toContain("search ex\xc3\xa4mple.test\n");
  }, TIMEOUT);

  test("failing PostUp tears everything down (full tunnel) with the hook's status", () =>
    compare({ conf: FULL.replace("[Peer]", "PostUp = exit 3\n[Peer]"), upFails: true }),
  TIMEOUT);

  test("failing PreUp: teardown of a link that does not exist yet", () =>
    compare({ conf: SPLIT.replace("[Peer]", "PreUp = false\n[Peer]"), upFails: true }),
  TIMEOUT);

  test("SaveConfig = true rewrites the file on down; save and strip while up", () =>
    compare({
      conf: FULL.replace("ListenPort = 51002\n", "ListenPort = 51002\nMTU = 1400\nSaveConfig = TRUE\nPostUp = true\n# a comment\n"),
      whileUp: ["strip", "save"],
    }),
  TIMEOUT);
});

describe("wg-quick failures: reference vs ours (messages, status, teardown)", () => {
  test("route already in the custom table: RTNETLINK answers: File exists", () =>
    compare({ conf: FULL.replace("DNS = 10.73.0.1", "Table = 1234"), setup: ["ip route add 0.0.0.0/0 dev eth0 table 1234"], upFails: true }),
  TIMEOUT);
  test("invalid Address", () => compare({ conf: SPLIT.replace("10.72.0.2/32", "10.72.0.300/32"), upFails: true }), TIMEOUT);
  test("invalid IPv6 Address prefix length", () => compare({ conf: SPLIT.replace("fd71::2/64", "fd71::2/129"), upFails: true }), TIMEOUT);
  test("invalid MTU", () => compare({ conf: SPLIT.replace("ListenPort = 51001", "ListenPort = 51001\nMTU = 12x"), upFails: true }), TIMEOUT);
  test("MTU below the minimum: kernel extack text", () => compare({ conf: SPLIT.replace("ListenPort = 51001", "ListenPort = 51001\nMTU = 60"), upFails: true }), TIMEOUT);
  test("unknown table name", () => compare({ conf: SPLIT.replace("ListenPort = 51001", "ListenPort = 51001\nTable = nosuchtable"), upFails: true }), TIMEOUT);
  test("Table = main by name", () => compare({ conf: SPLIT.replace("ListenPort = 51001", "ListenPort = 51001\nTable = main") }), TIMEOUT);
  test("wg rejects a line (wg-quick key inside [Peer])", () => compare({ conf: `${SPLIT}DNS = 1.1.1.1\n`, upFails: true }), TIMEOUT);
  test("userspace implementation not found: silent exit, teardown noise", () =>
    compare({ conf: SPLIT, env: { WG_QUICK_USERSPACE_IMPLEMENTATION: "wgq-no-such-impl" }, upFails: true }),
  TIMEOUT);
  test("resolvconf failing aborts up and tears down", () =>
    compare({ conf: SPLIT.replace("DNS = 10.71.0.53", "DNS = 6.6.6.6, 10.71.0.53"), setup: [], upFails: true, env: { FAKE_RESOLVCONF_FAIL: "1" } }),
  TIMEOUT);
  test("ours: an error of ours during up (no bash in PATH for a PostUp hook) still tears down, as the reference's EXIT trap would", async () => {
    const iface = ifname();
    const ns = hostNs("ex");
    const before = snapshot(ns);
    const path = join(cfgDir, `${iface}.conf`);
    writeFileSync(path, SPLIT.replace(/^DNS.*\n/m, "").replace("[Peer]", "PostUp = true\n[Peer]"), { mode: 0o600 });
    const up = runSide("daemon", ns, ["up", path], iface, {}, ["env", "PATH=/nonexistent"]);
    expect(up.code).toBe(1);
    expect(up.stderr).toContain(`[#] true\n[#] ip link delete dev ${iface}\n`);
    await waitFor(() => !existsSync(`/var/run/wireguard/${iface}.sock`), 3000);
    expect(snapshot(ns)).toEqual(before);
  }, TIMEOUT);
});

describe("signals during up: reference vs ours", () => {
  test("SIGTERM while a PostUp hook runs: the hook finishes, both traps tear down", async () => {
    const iface = ifname();
    const r: Record<string, RunResult> = {};
    for (const side of ["orig", "ours"] as const) {
      const ns = hostNs(side);
      const before = snapshot(ns);
      resetState();
      const marker = join(stateDir, "in-hook");
      const path = join(cfgDir, `${iface}.conf`);
      writeFileSync(path, SPLIT.replace(/^DNS.*\n/m, "").replace("[Peer]", `PostUp = touch ${marker}; sleep 0.5\n[Peer]`), { mode: 0o600 });
      const p = Bun.spawn(["ip", "netns", "exec", ns.name, ...argvOf(side, ["up", path])], {
        env: { ...process.env, ...envOf(side) },
        stdout: "pipe",
        stderr: "pipe",
      });
      expect(await waitFor(() => existsSync(marker), 10_000, 10)).toBe(true);
      p.kill("SIGTERM");
      const code = await p.exited;
      r[side] = { code, stdout: normOutput(await new Response(p.stdout).text(), iface), stderr: normOutput(await new Response(p.stderr).text(), iface) };
      await waitFor(() => !existsSync(`/var/run/wireguard/${iface}.sock`), 3000);
      expect(snapshot(ns)).toEqual(before);
    }
    expect(r.orig!.stderr).toContain("[#] ip link delete dev");
    expect(r.ours).toEqual(r.orig!);
  }, TIMEOUT);
});

describe("wg-quick with our own daemon", () => {
  test("split tunnel: same state and lines as the reference with wireguard-go", () => compare({ conf: SPLIT }, ["orig", "daemon"]), TIMEOUT);
  test("full tunnel: same state and lines as the reference with wireguard-go", () => compare({ conf: FULL }, ["orig", "daemon"]), TIMEOUT);
});

describe("the kernel module first, userspace as the fallback (this host has no wireguard module)", () => {
  const fallbackLines = (iface: string) => [
    `[#] ip link add ${iface} type wireguard`,
    "Error: Unknown device type.",
    "[!] Missing WireGuard kernel module. Falling back to slow userspace implementation.",
    `[#] wireguard-go ${iface}`,
  ];

  test("`ip link add IF type wireguard` is refused here; ours, with wireguard-go or our daemon, falls back with the reference's lines", async () => {
    expect(existsSync("/sys/module/wireguard")).toBe(false);
    const probe = newNs("nomod").run(["ip", "link", "add", "wqprobe", "type", "wireguard"]);
    expect(probe).toEqual({ code: 2, stdout: "", stderr: "Error: Unknown device type.\n" });
    const r = await compare({ conf: SPLIT }, ["orig", "ours", "daemon"]);
    const iface = /^\[#\] ip link add (\S+) type wireguard$/m.exec(r.orig!.up.stderr)![1]!;
    for (const side of ["orig", "ours", "daemon"]) expect(r[side]!.up.stderr.split("\n").slice(0, 4)).toEqual(fallbackLines(iface));
  }, TIMEOUT);

  test("WG_QUICK_PREFER_USERSPACE=1: no `ip link add`, the userspace line first, then state and lines as the reference's", async () => {
    const iface = ifname();
    const env = { WG_QUICK_PREFER_USERSPACE: "1" };
    const orig = await play("orig", { conf: FULL, env }, iface);
    const skipped = `${fallbackLines(iface).slice(0, 3).join("\n")}\n`;
    expect(orig.up.stderr).toStartWith(skipped);
    for (const side of ["ours", "daemon"] as const) {
      const r = await play(side, { conf: FULL, env }, iface);
      expect(r.up.stderr).toStartWith(`[#] wireguard-go ${iface}\n[#] wg setconf ${iface} /dev/fd/63\n`);
      expect({ side, ...r }).toEqual({ side, ...orig, up: { ...orig.up, stderr: orig.up.stderr.slice(skipped.length) } });
    }
  }, TIMEOUT);

  test("WG_QUICK_PREFER_USERSPACE=1 and an implementation not in PATH: bash's message for it, then the teardown", async () => {
    const iface = ifname();
    const ns = hostNs("pref");
    const before = snapshot(ns);
    const path = join(cfgDir, `${iface}.conf`);
    writeFileSync(path, SPLIT.replace(/^DNS.*\n/m, ""), { mode: 0o600 });
    const r = runSide("ours", ns, ["up", path], iface, { WG_QUICK_PREFER_USERSPACE: "1", WG_QUICK_USERSPACE_IMPLEMENTATION: "wgq-no-such-impl" });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toStartWith(`[#] wgq-no-such-impl ${iface}\n`);
    expect(r.stderr).toContain(": line 32: wgq-no-such-impl: command not found\n");
    expect(r.stderr).toContain(`[#] ip link delete dev ${iface}\n`);
    expect(r.stderr).not.toContain("ip link add");
    expect(snapshot(ns)).toEqual(before);
  }, TIMEOUT);
});

describe("wg-quick command line and errors: reference vs ours", () => {
  const iface = ifname();
  const cases: { name: string; args: (p: string) => string[]; prep?: () => void }[] = [
    { name: "no arguments", args: () => [] },
    { name: "--help", args: () => ["--help"] },
    { name: "-h", args: () => ["-h"] },
    { name: "help", args: () => ["help"] },
    { name: "help x", args: () => ["help", "x"] },
    { name: "unknown command", args: (p) => ["bogus", p] },
    { name: "up alone", args: () => ["up"] },
    { name: "missing file", args: () => ["up", "/nonexistent/dir/wg9.conf"] },
    { name: "missing /etc/wireguard name", args: () => ["down", "wgq-nope-x"] },
    { name: "bad file name", args: () => ["strip", join(cfgDir, "bad name!.conf")], prep: () => writeFileSync(join(cfgDir, "bad name!.conf"), "[Interface]\n") },
    { name: "strip", args: (p) => ["strip", p] },
    { name: "down of a non-WireGuard interface", args: (p) => ["down", p] },
    { name: "save of a non-WireGuard interface", args: (p) => ["save", p] },
    { name: "up of an existing link", args: () => ["up", join(cfgDir, "lo.conf")], prep: () => writeFileSync(join(cfgDir, "lo.conf"), "[Interface]\n", { mode: 0o600 }) },
    {
      name: "SaveConfig neither true nor false",
      args: () => ["strip", join(cfgDir, "wqbool.conf")],
      prep: () => writeFileSync(join(cfgDir, "wqbool.conf"), "[Interface]\nSaveConfig = maybe\n", { mode: 0o600 }),
    },
    {
      name: "world-accessible warning, messy lines kept for wg",
      args: () => ["strip", join(dir, "open", "wqopen.conf")],
      prep: () => {
        mkdirSync(join(dir, "open"), { recursive: true, mode: 0o755 });
        chmodSync(join(dir, "open"), 0o755);
        writeFileSync(
          join(dir, "open", "wqopen.conf"),
          "  [interface]  \r\n\tPrivateKey = abc # c\nADDRESS=10.0.0.1/24\n# comment\n[Peer]\nAddress = 1.2.3.4\nDNS=1.1.1.1\n  [Interface]\nmtu = 9\nlast line no newline",
          { mode: 0o644 },
        );
      },
    },
  ];
  const path = join(cfgDir, `${iface}.conf`);
  writeFileSync(path, SPLIT, { mode: 0o600 });
  for (const c of cases) {
    test(c.name, () => {
      c.prep?.();
      const ns = newNs(`cli${cases.indexOf(c)}`);
      const r: Record<string, RunResult> = {};
      for (const side of ["orig", "ours"] as const) r[side] = runSide(side, ns, c.args(path), iface);
      expect(r.ours).toEqual(r.orig!);
    }, TIMEOUT);
  }
});

describe("full tunnel traffic: a host behind the peer through the tunnel, the endpoint outside it", () => {
  for (const side of ["ours", "daemon"] as const) {
    test(side === "ours" ? "ours with wireguard-go" : "ours with our daemon", async () => {
      const c = newNs(`tc${side}`);
      const s = newNs(`ts${side}`);
      const h = newNs(`th${side}`);
      lab.veth(c, s, { a: ["10.200.0.2/24", "fd20::2/64"], b: ["10.200.0.1/24", "fd20::1/64"] }, "up0");
      lab.veth(s, h, { a: ["10.99.0.1/24", "fd99::1/64"], b: ["10.99.0.2/24", "fd99::2/64"] }, "dn0");
      h.sh("ip route add default via 10.99.0.1 && ip -6 route add default via fd99::1");
      s.sh("sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1");
      // The peer: wireguard-go, configured by hand.
      const serverIf = ifname();
      const clientIf = ifname();
      const serverKey = key();
      const clientKey = key();
      const keyFile = join(dir, `${serverIf}.key`);
      writeFileSync(keyFile, `${b64(serverKey)}\n`, { mode: 0o600 });
      s.sh(
        `wireguard-go ${serverIf} >/dev/null && wg set ${serverIf} private-key ${keyFile} listen-port 51820 ` +
          `peer ${b64(publicKey(clientKey))} allowed-ips 10.73.0.2/32,fd73::2/128 && ` +
          `ip addr add 10.73.0.1/24 dev ${serverIf} && ip addr add fd73::1/64 dev ${serverIf} nodad && ip link set ${serverIf} up`,
      );
      const path = join(cfgDir, `${clientIf}.conf`);
      writeFileSync(
        path,
        `[Interface]\nPrivateKey = ${b64(clientKey)}\nAddress = 10.73.0.2/32, fd73::2/128\n\n[Peer]\nPublicKey = ${b64(publicKey(serverKey))}\n` +
          `Endpoint = 10.200.0.1:51820\nAllowedIPs = 0.0.0.0/0, ::/0\n`,
        { mode: 0o600 },
      );
      const up = runSide(side, c, ["up", path], clientIf);
      expect(up.code).toBe(0);
      expect(up.stderr).toContain(`[#] ip link set mtu 1420 up dev ${clientIf}`);
      // The client has no route to 10.99.0.0/24 or fd99::/64 except the tunnel.
      expect(c.run(["ping", "-c", "2", "-i", "0.2", "-W", "3", "10.99.0.2"]).code).toBe(0);
      expect(c.run(["ping", "-6", "-c", "2", "-i", "0.2", "-W", "3", "fd99::2"]).code).toBe(0);
      expect(c.run(["ip", "route", "get", "10.99.0.2"]).stdout).toContain(`dev ${clientIf} table 51820`);
      // The endpoint stays reachable outside the tunnel (suppress_prefixlength 0 + fwmark rule).
      expect(c.run(["ip", "route", "get", "10.200.0.1"]).stdout).toContain("dev up0");
      expect(c.run(["ping", "-c", "1", "-W", "3", "10.200.0.1"]).code).toBe(0);
      const transfer = s.sh(`wg show ${serverIf} transfer`).trim().split("\t");
      expect(Number(transfer[1])).toBeGreaterThan(0);
      const down = runSide(side, c, ["down", path], clientIf);
      expect(down.code).toBe(0);
      expect(c.run(["ping", "-c", "1", "-W", "1", "10.99.0.2"]).code).not.toBe(0);
      s.run(["ip", "link", "del", serverIf]);
    }, TIMEOUT);
  }
});

describe("bare interface names: /etc/wireguard/IFACE.conf (a private tmpfs over /etc/wireguard)", () => {
  test("strip, up, save and down by name, reference vs ours", async () => {
    const iface = ifname();
    const src = join(dir, `${iface}.src`);
    writeFileSync(src, SPLIT.replace("ListenPort = 51001", "ListenPort = 51001\nSaveConfig = true"), { mode: 0o600 });
    const r: Record<string, RunResult> = {};
    for (const side of ["orig", "ours"] as const) {
      const ns = hostNs(side);
      const before = snapshot(ns);
      resetState();
      const q = (args: string) => [...argvOf(side, args.split(" "))].map((w) => `'${w}'`).join(" ");
      // unshare -m: the tmpfs exists only for this shell; the host's /etc/wireguard is never written.
      const script = [
        "mount -t tmpfs -o mode=0700 none /etc/wireguard",
        `cp ${src} /etc/wireguard/${iface}.conf`,
        q(`strip ${iface}`),
        q(`up ${iface}`),
        q(`save ${iface}`),
        q(`down ${iface}`),
        `cat /etc/wireguard/${iface}.conf`,
      ].join(" && ");
      const out = ns.run(["unshare", "-m", "sh", "-c", script], envOf(side));
      await waitFor(() => !existsSync(`/var/run/wireguard/${iface}.sock`), 3000);
      expect(snapshot(ns)).toEqual(before);
      r[side] = { code: out.code, stdout: sortPeers(normState(normOutput(out.stdout, iface), ns.name)), stderr: normOutput(out.stderr, iface) };
    }
    expect(r.orig!.code).toBe(0);
    expect(r.ours).toEqual(r.orig!);
  }, TIMEOUT);
});

describe("resolvconf interface-order prefix (an overlay over /etc in a private mount namespace)", () => {
  test("`tun*` in /etc/resolvconf/interface-order names the record tun.IFACE, for up, save and down", async () => {
    const iface = ifname();
    const path = join(cfgDir, `${iface}.conf`);
    const r: Record<string, RunResult & { log: string; saved: string }> = {};
    for (const side of ["orig", "ours"] as const) {
      const ns = hostNs(side);
      const before = snapshot(ns);
      resetState();
      writeFileSync(path, SPLIT, { mode: 0o600 });
      const ov = join(dir, `overlay-${side}`);
      mkdirSync(join(ov, "upper"), { recursive: true });
      mkdirSync(join(ov, "work"), { recursive: true });
      const q = (args: string) => [...argvOf(side, args.split(" "))].map((w) => `'${w}'`).join(" ");
      const script = [
        `mount -t overlay overlay -o lowerdir=/etc,upperdir=${ov}/upper,workdir=${ov}/work /etc`,
        "mkdir -p /etc/resolvconf",
        "printf 'lo.inet*\\ntun*\\neth*\\n' > /etc/resolvconf/interface-order",
        q(`up ${path}`),
        q(`save ${path}`),
        q(`down ${path}`),
      ].join(" && ");
      const out = ns.run(["unshare", "-m", "sh", "-c", script], envOf(side));
      await waitFor(() => !existsSync(`/var/run/wireguard/${iface}.sock`), 3000);
      expect(snapshot(ns)).toEqual(before);
      const saved = sortPeers(normState(readFileSync(path, "latin1"), ns.name));
      r[side] = { code: out.code, stdout: out.stdout, stderr: normOutput(out.stderr, iface), log: readState().resolvconf, saved };
    }
    expect(r.orig!.code).toBe(0);
    expect(r.orig!.stderr).toContain(`[#] resolvconf -a tun.${iface} -m 0 -x`);
    expect(r.orig!.saved).toContain("DNS = 10.71.0.53\nDNS = fd71::53\n");
    expect(r.ours).toEqual(r.orig!);
    expect(existsSync("/etc/resolvconf")).toBe(false);
  }, TIMEOUT);
});

describe("no nft in PATH: the iptables fallback, reference vs ours", () => {
  // PATHs whose sbin part is a directory of symlinks to /usr/sbin minus some tools. The
  // (ip6)iptables-restore there log their arguments and input, so the bytes fed are compared too.
  // Made on first use: a run filtered with -t collects this block without running its hooks.
  let pathRoot: string | null = null;
  afterAll(() => pathRoot && rmSync(pathRoot, { recursive: true, force: true }));
  function pathWithout(label: string, drop: RegExp): Record<string, string> {
    pathRoot ??= mkdtempSync("/tmp/wgt-quick-path-");
    const d = join(pathRoot, label);
    if (!existsSync(d)) {
      mkdirSync(d);
      for (const n of readdirSync("/usr/sbin")) {
        if (drop.test(n)) continue;
        if (n !== "iptables-restore" && n !== "ip6tables-restore") symlinkSync(join("/usr/sbin", n), join(d, n));
        else writeFileSync(join(d, n), `#!/bin/sh\necho "== \${0##*/} $*" >> ${stateDir}/restore.log\ntee -a ${stateDir}/restore.log | /usr/sbin/${n} "$@"\n`, { mode: 0o755 });
      }
    }
    const PATH = `${binDir}:${d}:/usr/bin:/bin`;
    for (const n of ["nft", ...(label === "xt" ? [] : ["iptables-restore"])]) expect(Bun.which(n, { PATH })).toBeNull();
    expect(Bun.which("sysctl", { PATH })).not.toBeNull();
    return { PATH };
  }
  const noNft = () => pathWithout("xt", /^nft$/);
  const noNftNoXt = () => pathWithout("none", /^(nft|ip6?tables.*)$/);
  const noNftNoV4Restore = () => pathWithout("v6only", /^(nft|iptables-restore)$/);
  // iptables-restore leaves its (emptied) tables and chains behind when rules are deleted, as it should: the
  // namespace starts with both tables in both families holding someone else's rules, which must
  // survive untouched. One is tagged for `wq`, a prefix of every interface name here.
  const XT_SETUP = ["iptables", "ip6tables"].flatMap((x) => [
    `${x} -t raw -A PREROUTING -p tcp --dport 9 -m comment --comment "wg-quick(8) rule for wq" -j DROP`,
    `${x} -t mangle -A PREROUTING -p udp --dport 9 -j ACCEPT`,
    `${x} -t mangle -A POSTROUTING -p udp --dport 9 -j ACCEPT`,
  ]);
  const rulesOf = (state: string, iface: string) => state.split("\n").filter((l) => l.includes(`"wg-quick(8) rule for ${iface}"`));

  test("full tunnel IPv4+IPv6: ip6tables-restore/iptables-restore on up, -D of exactly its rules on down", async () => {
    const r = await compare({ conf: FULL, setup: XT_SETUP, env: noNft() });
    const o = r.orig!;
    const iface = /rule for (wq[0-9a-z]+)"/.exec(o.upState.xtables)![1]!;
    expect(o.up.code).toBe(0);
    expect(o.up.stderr).toContain(`[#] ip -6 rule add table main suppress_prefixlength 0\n[#] ip6tables-restore -n\n[#] ip -4 route add`);
    expect(o.up.stderr).toEndWith("[#] sysctl -q net.ipv4.conf.all.src_valid_mark=1\n[#] iptables-restore -n\n");
    expect(o.up.stderr).not.toContain("nft");
    // Per family, raw: a drop per address (IPv6: fd73::2 and the link-local); mangle: save/restore of the mark.
    expect(rulesOf(o.upState.xtables, iface)).toHaveLength(1 + 2 + (2 + 2));
    expect(o.upState.xtables).toContain(`-A PREROUTING -d 10.73.0.2/32 ! -i ${iface} -m addrtype ! --src-type LOCAL -m comment --comment "wg-quick(8) rule for ${iface}" -j DROP`);
    expect(o.upState.xtables).toContain(`-A POSTROUTING -p udp -m mark --mark 0xca6c -m comment --comment "wg-quick(8) rule for ${iface}" -j CONNMARK --save-mark`);
    expect(o.upState.xtables).toContain(`"wg-quick(8) rule for wq" -j DROP`);
    expect(o.upState.nft).not.toContain(`wg-quick-${iface}`);
    expect(o.down!.stderr).toEndWith(`[#] ip link delete dev ${iface}\n[#] resolvconf -d ${iface} -f\n[#] iptables-restore -n\n[#] ip6tables-restore -n\n`);
    const fed = o.logs.restore.split(/^(?=== )/m);
    expect(fed).toHaveLength(4);
    expect(fed[0]).toStartWith(`== ip6tables-restore -n\n*raw\n-I PREROUTING ! -i ${iface} -d fd73::2 -m addrtype ! --src-type LOCAL -j DROP -m comment --comment "wg-quick(8) rule for ${iface}"\n`);
    expect(fed[1]).toBe(
      `== iptables-restore -n\n*raw\n-I PREROUTING ! -i ${iface} -d 10.73.0.2 -m addrtype ! --src-type LOCAL -j DROP -m comment --comment "wg-quick(8) rule for ${iface}"\n` +
        `COMMIT\n*mangle\n-I POSTROUTING -m mark --mark 51820 -p udp -j CONNMARK --save-mark -m comment --comment "wg-quick(8) rule for ${iface}"\n` +
        `-I PREROUTING -p udp -j CONNMARK --restore-mark -m comment --comment "wg-quick(8) rule for ${iface}"\nCOMMIT\n`,
    );
    expect(fed[2]).toStartWith("== iptables-restore -n\n*mangle\n-D PREROUTING -p udp -m comment");
  }, TIMEOUT);

  // Our extension: where the reference fails with bash's "command not found", ours says what to
  // install in its place; status, state and every other line are the reference's.
  const missingTool = (name: string, route: string) =>
    `${name}: command not found (a default route, AllowedIPs = ${route}, needs nft or ${name} for its firewall rules: on Debian/Ubuntu install the nftables package, or iptables)\n`;
  const bashNotFound = (name: string) => `/usr/bin/wg-quick: line 32: ${name}: command not found\n`;

  test("neither nft nor iptables: the reference's `ip6tables-restore: command not found`, ours names what to install; status 127, teardown", async () => {
    const { orig: o, ours } = await origAndOurs({ conf: FULL.replace(/^DNS.*\n/m, ""), env: noNftNoXt(), upFails: true });
    expect(o.up.code).toBe(127);
    expect(o.up.stderr).toContain(`[#] ip6tables-restore -n\n${bashNotFound("ip6tables-restore")}[#] ip -6 rule delete`);
    expect(o.upState.xtables).toBe("");
    expect(ours.up.stderr).toContain(`[#] ip6tables-restore -n\n${missingTool("ip6tables-restore", "::/0")}[#] ip -6 rule delete`);
    expect(ours).toEqual({ ...o, up: { ...o.up, stderr: o.up.stderr.replace(bashNotFound("ip6tables-restore"), missingTool("ip6tables-restore", "::/0")) } });
  }, TIMEOUT);

  test("IPv6 rules set, then iptables-restore missing: ours names what to install; the teardown deletes the IPv6 rules", async () => {
    const { orig: o, ours } = await origAndOurs({ conf: FULL.replace(/^DNS.*\n/m, ""), setup: XT_SETUP, env: noNftNoV4Restore(), upFails: true });
    expect(o.up.code).toBe(127);
    expect(o.up.stderr).toContain(`[#] iptables-restore -n\n${bashNotFound("iptables-restore")}[#] ip6tables-restore -n\n[#] ip -4 rule delete`);
    expect(ours).toEqual({ ...o, up: { ...o.up, stderr: o.up.stderr.replace(bashNotFound("iptables-restore"), missingTool("iptables-restore", "0.0.0.0/0")) } });
  }, TIMEOUT);

  test("IPv4-only full tunnel with FwMark: iptables only, ip6tables untouched", () =>
    compare({
      conf: FULL.replace(/^DNS.*\n/m, "").replace("ListenPort = 51002", "ListenPort = 51002\nFwMark = 0x1234").replace(", ::/0", ""),
      setup: XT_SETUP,
      env: noNft(),
    }).then((r) => {
      expect(r.orig!.up.stderr).not.toContain("ip6tables-restore");
      expect(r.orig!.upState.xtables).toContain("--mark 0x1234");
    }),
  TIMEOUT);

  test("ours: reload re-applies the rules for changed addresses and removes a family's with its default route", async () => {
    const iface = ifname();
    const env = noNft();
    const conf = FULL.replace(/^DNS.*\n/m, "");
    const X = conf;
    const Y = conf.replace("Address = 10.73.0.2/32, fd73::2/128", "Address = 10.73.0.3/32, fd73::2/128, fd73::3/128");
    const Z = Y.replace(", ::/0", "");
    const ns = hostNs("rx", XT_SETUP);
    const before = snapshot(ns);
    const path = join(cfgDir, `${iface}.conf`);
    const write = (text: string) => writeFileSync(path, text, { mode: 0o600 });
    const run = (cmd: string) => runSide("ours", ns, [cmd, path], iface, env);
    const down = async () => {
      expect(run("down").code).toBe(0);
      await waitFor(() => !existsSync(`/var/run/wireguard/${iface}.sock`), 3000);
    };
    const sorted = (t: string) => t.split("\n").sort().join("\n");
    const stateOf = () => {
      const s = snapshot(ns);
      return { ...s, routes: sorted(s.routes), xtables: sorted(s.xtables) };
    };
    const fresh = async (text: string) => {
      write(text);
      expect(run("up").code).toBe(0);
      const s = stateOf();
      await down();
      return s;
    };
    const wantY = await fresh(Y);
    const wantZ = await fresh(Z);
    expect(sorted(before.xtables)).not.toEqual(wantY.xtables);
    expect(rulesOf(wantZ.xtables, iface)).toHaveLength(3);

    write(X);
    expect(run("up").code).toBe(0);
    write(Y);
    const rY = run("reload");
    expect(rY.code).toBe(0);
    expect(rY.stderr).toContain("[#] ip6tables-restore -n\n");
    expect(rY.stderr).toContain("[#] iptables-restore -n\n");
    expect(stateOf()).toEqual(wantY);
    write(Z);
    const rZ = run("reload");
    expect(rZ.code).toBe(0);
    expect(rZ.stderr).toContain("[#] ip -6 rule delete table main suppress_prefixlength 0\n[#] ip6tables-restore -n\n");
    expect(rZ.stderr).not.toContain("[#] iptables-restore");
    expect(stateOf()).toEqual(wantZ);
    await down();
    expect(snapshot(ns)).toEqual(before);
  }, TIMEOUT);
});

describe("ours: clear errors where the reference needs tools we do not replace", () => {
  const noSbin = { PATH: "/usr/bin:/bin" }; // resolvconf and nft live in /usr/sbin here
  test("no resolvconf: status 127, a message naming what to install, full teardown", async () => {
    const iface = ifname();
    const ns = hostNs("ours");
    const before = snapshot(ns);
    const path = join(cfgDir, `${iface}.conf`);
    writeFileSync(path, SPLIT, { mode: 0o600 });
    const r = runSide("ours", ns, ["up", path], iface, noSbin);
    expect(r.code).toBe(127);
    expect(r.stderr).toContain(`[#] resolvconf -a ${iface} -m 0 -x\nresolvconf: command not found (DNS = needs resolvconf`);
    expect(r.stderr).toContain("install the openresolv or the systemd-resolved package");
    expect(r.stderr).toEndWith(`[#] ip link delete dev ${iface}\n`);
    await waitFor(() => !existsSync(`/var/run/wireguard/${iface}.sock`), 3000);
    expect(snapshot(ns)).toEqual(before);
  }, TIMEOUT);
});

describe("ours: extensions where the reference fails (issue 17), reference vs ours", () => {
  // A container's view of /proc/sys: read-only (a bind mount in a mount namespace of the run's own).
  const RO_SYSCTL = ["unshare", "-m", "sh", "-c", 'mount --bind /proc/sys /proc/sys && mount -o remount,ro,bind /proc/sys && exec "$@"', "ro-sysctl"];
  const SVM = "net.ipv4.conf.all.src_valid_mark";
  const svmLine = `[#] sysctl -q ${SVM}=1\n`;
  const svmAlready = [`sysctl -qw ${SVM}=1`];

  test("src_valid_mark already 1, /proc/sys read-only: the reference fails; ours skips the write and its line, otherwise as the reference with /proc/sys writable", async () => {
    const iface = ifname();
    const origRo = await play("orig", { conf: FULL, setup: svmAlready, wrap: RO_SYSCTL, upFails: true }, iface);
    expect(origRo.up.code).toBe(1);
    expect(origRo.up.stderr).toContain(`${svmLine}sysctl: permission denied on key "${SVM}"\n[#] resolvconf -d`);
    const origRw = await play("orig", { conf: FULL, setup: svmAlready }, iface);
    expect(origRw.up.stderr).toContain(svmLine);
    const ours = await play("ours", { conf: FULL, setup: svmAlready, wrap: RO_SYSCTL }, iface);
    expect(ours.up.code).toBe(0);
    expect(ours).toEqual({ ...origRw, up: { ...origRw.up, stderr: origRw.up.stderr.replace(svmLine, "") } });
  }, TIMEOUT);

  test("src_valid_mark already 1, /proc/sys writable: the reference's line and write, unchanged", async () => {
    const r = await compare({ conf: FULL, setup: svmAlready });
    expect(r.orig!.up.stderr).toContain(svmLine);
  }, TIMEOUT);

  test("src_valid_mark 0, /proc/sys read-only: both fail alike (sysctl's message, status 1, teardown)", async () => {
    const r = await compare({ conf: FULL, wrap: RO_SYSCTL, upFails: true });
    expect(r.orig!.up.code).toBe(1);
    expect(r.orig!.up.stderr).toContain(`${svmLine}sysctl: permission denied on key "${SVM}"\n`);
  }, TIMEOUT);

  // IPv6 everywhere: an address, a route and a default route; the endpoint is IPv4.
  const V6 = `${FULL.replace("[fd51::1]:51820", "198.51.100.1:51820")}[Peer]\nPublicKey = ${PEER2}\nAllowedIPs = 10.99.0.0/16, fd99::/48\n`;
  // The same without its IPv6 parts: what the reference brings up where IPv6 is disabled.
  const V4 = V6.replace(", fd73::2/128", "").replace(", ::/0", "").replace(", fd99::/48", "");

  for (const [label, setup] of [
    ["in the namespace (net.ipv6.conf.all.disable_ipv6=1)", ["sysctl -qw net.ipv6.conf.all.disable_ipv6=1"]],
    ["for new links only (net.ipv6.conf.default.disable_ipv6=1)", ["sysctl -qw net.ipv6.conf.default.disable_ipv6=1"]],
  ] as const) {
    test(`IPv6 disabled ${label}: the reference fails; ours skips each IPv6 step with a warning, otherwise as the reference without IPv6 in the file`, async () => {
      const iface = ifname();
      const origV6 = await play("orig", { conf: V6, setup: [...setup], upFails: true }, iface);
      expect(origV6.up.code).toBe(2);
      expect(origV6.up.stderr).toContain(`[#] ip -6 address add fd73::2/128 dev ${iface}\nError: ipv6: IPv6 is disabled on this device.\n`);
      const origV4 = await play("orig", { conf: V4, setup: [...setup] }, iface);
      const ours = await play("ours", { conf: V6, setup: [...setup], whileUp: ["reload"] }, iface);
      const why = `[!] IPv6 is disabled on ${iface} (net.ipv6.conf.${iface}.disable_ipv6 = 1): skipping `;
      const warnings = [`${why}Address = fd73::2/128`, `${why}the route for AllowedIPs = fd99::/48`, `${why}the default route ::/0 (its routing table, policy rules and firewall rules)`];
      const lines = ours.up.stderr.split("\n");
      expect(lines.filter((l) => l.startsWith("[!] IPv6"))).toEqual(warnings);
      expect(lines[lines.indexOf(warnings[0]!) - 1]).toBe(`[#] ip -4 address add 10.73.0.2/32 dev ${iface}`);
      // A reload of the unchanged file changes nothing and warns the same way.
      expect(ours.whileUp[0]).toEqual({ code: 0, stdout: "", stderr: `[#] wg syncconf ${iface} /dev/fd/63\n${warnings.join("\n")}\n` });
      expect(ours.showconf).toContain("AllowedIPs = 0.0.0.0/0, ::/0\n");
      // Besides the file and the reload, ours differs in `wg showconf` (the peer has ::/0) and in reload's look at the DNS record.
      const same = (r: SideResult) => ({ ...r, showconf: "", whileUp: [], confAfter: "", logs: { ...r.logs, resolvconf: r.logs.resolvconf.replace(`resolvconf -l ${iface}\n`, "") } });
      const oursUp = { ...ours.up, stderr: lines.filter((l) => !l.startsWith("[!] IPv6")).join("\n") };
      expect(same({ ...ours, up: oursUp })).toEqual(same(origV4));
    }, TIMEOUT);
  }

  test("hooks: a quoted or escaped # is kept (the reference cuts inside the quotes: a syntax error); an unquoted one still ends the command", async () => {
    const hooks = `PostUp = echo "double #1 %i" >> %LOG
PostUp = echo 'single #2' >> %LOG # a comment
PostUp = echo escaped \\#3 >> %LOG
PostUp = printf '%s\\n' $'ansi \\'#4\\'' >> %LOG
PostUp = echo unquoted >> %LOG # cut "here
PreDown = echo "predown #5" >> %LOG
`;
    const conf = SPLIT.replace(/^DNS.*\n/m, "").replace("ListenPort = 51001\n", "ListenPort = 51001\nSaveConfig = true\n").replace("[Peer]", () => `${hooks}[Peer]`);
    const { orig, ours } = await origAndOurs({ conf, upFails: true }, { conf, whileUp: ["save"] });
    expect(orig.up.code).toBe(2);
    expect(orig.up.stderr).toMatch(/\[#\] echo "double\n\/usr\/bin\/wg-quick: eval: line \d+: unexpected EOF while looking for matching `"'\n/);
    expect(ours.up.code).toBe(0);
    const iface = /ip link delete dev (\S+)/.exec(orig.up.stderr)![1]!;
    expect(ours.up.stderr).toContain(
      `[#] echo "double #1 ${iface}" >> ${hookLog}\n[#] echo 'single #2' >> ${hookLog}\n[#] echo escaped \\#3 >> ${hookLog}\n` +
        `[#] printf '%s\\n' $'ansi \\'#4\\'' >> ${hookLog}\n[#] echo unquoted >> ${hookLog}\n`,
    );
    expect(ours.logs.hooks).toBe(`double #1 ${iface}\nsingle #2\nescaped #3\nansi '#4'\nunquoted\npredown #5\n`);
    // save and SaveConfig write the hooks back as read, so the file keeps them.
    expect(ours.confAfter).toContain(`PostUp = echo "double #1 %i" >> ${hookLog}\nPostUp = echo 'single #2' >> ${hookLog}\nPostUp = echo escaped \\#3 >> ${hookLog}\n`);
    expect(ours.confAfter).toContain(`PostUp = echo unquoted >> ${hookLog}\nPreDown = echo "predown #5" >> ${hookLog}\n`);
  }, TIMEOUT);

  // A PPPoE-like uplink (MTU 1492) next to a 1500 one, an endpoint behind each. Bridges without
  // ports (this kernel has no dummy links): no carrier ever, so nothing changes asynchronously.
  const LINKS = ["lan0 mtu 1500", "ppp0 mtu 1492"].map(
    (l, i) => `ip link add ${l} address 02:00:00:00:01:0${i} type bridge && sysctl -qw net.ipv6.conf.${l.split(" ")[0]}.disable_ipv6=1 && ip link set ${l.split(" ")[0]} up && ip route add 100.6${4 + i}.0.0/24 dev ${l.split(" ")[0]}`,
  );
  const TWO = SPLIT.replace(/^DNS.*\n/m, "").replace("198.51.100.1:51820", "100.64.0.1:51820").replace("192.0.2.77/32\n", "192.0.2.77/32\nEndpoint = 100.65.0.1:51820\n");

  test("MTU from two endpoints (1500 and PPPoE 1492): the largest by default, as the reference", async () => {
    const r = await compare({ conf: TWO, setup: LINKS });
    expect(r.orig!.up.stderr).toContain("[#] ip link set mtu 1420 up dev");
  }, TIMEOUT);

  test("WG_QUICK_MTU=min: the smallest endpoint-route MTU (1492 - 80); the reference ignores the variable", async () => {
    const env = { WG_QUICK_MTU: "min" };
    const { orig, ours } = await origAndOurs({ conf: TWO, setup: LINKS, env });
    expect(orig.up.stderr).toContain("[#] ip link set mtu 1420 up dev");
    expect(ours.up.stderr).toContain("[#] ip link set mtu 1412 up dev");
    expect(JSON.parse(JSON.stringify(ours).replaceAll("mtu 1412", "mtu 1420"))).toEqual(orig);
  }, TIMEOUT);

  test("WG_QUICK_MTU with another value: ours stops before changing anything (status 1); with MTU = it is not read", async () => {
    const iface = ifname();
    const env = { WG_QUICK_MTU: "smallest" };
    const bad = await play("ours", { conf: TWO, setup: LINKS, env, upFails: true }, iface);
    expect(bad.up).toEqual({ code: 1, stdout: "", stderr: "wg-quick: WG_QUICK_MTU must be `min' or `max', not `smallest'\n" });
    const fixed = await play("ours", { conf: TWO.replace("ListenPort = 51001\n", "ListenPort = 51001\nMTU = 1300\n"), setup: LINKS, env }, iface);
    expect(fixed.up.code).toBe(0);
    expect(fixed.up.stderr).toContain(`[#] ip link set mtu 1300 up dev ${iface}\n`);
  }, TIMEOUT);
});

describe("rtnetlink helpers: iproute2's parsing and printing", () => {
  test("parsePrefix accepts what `ip` accepts and rejects the rest", async () => {
    const rt = await import("../platform/linux/rtnetlink.ts");
    const show = (t: string, f = 0) => {
      const p = rt.parsePrefix(t, f);
      return p ? `${p.family === rt.AF_INET6 ? 6 : 4} ${rt.formatAddr(p.addr)}/${p.len}` : null;
    };
    expect(show("10.0.0.1")).toBe("4 10.0.0.1/32");
    expect(show("10.1/16")).toBe("4 10.1.0.0/16");
    expect(show("0x0a.0.0.1/8")).toBe("4 10.0.0.1/8");
    expect(show("10.0.0.0/255.255.0.0")).toBe("4 10.0.0.0/16");
    expect(show("10.0.0.0/255.0.255.0")).toBeNull();
    expect(show("10.0.0.300/24")).toBeNull();
    expect(show("10.0.0.1/33")).toBeNull();
    expect(show("fd00::1")).toBe("6 fd00::1/128");
    expect(show("FD00:0:0:0:0:0:0:1/64")).toBe("6 fd00::1/64");
    expect(show("::ffff:1.2.3.4/96")).toBe("6 ::ffff:1.2.3.4/96");
    expect(show("fd00::1/129")).toBeNull();
    expect(show("fe80::1%eth0")).toBeNull();
    expect(show("default", rt.AF_INET6)).toBe("6 ::/0");
    expect(show("1:2:3:4:5:6:7:8")).toBe("6 1:2:3:4:5:6:7:8/128");
    expect(show("1:0:0:2:0:0:0:3")).toBe("6 1:0:0:2::3/128");
    expect(show("1::2::3")).toBeNull();
  });

  test("table names and numbers resolve like `ip ... table X`", async () => {
    const rt = await import("../platform/linux/rtnetlink.ts");
    expect(rt.tableId("main")).toBe(254);
    expect(rt.tableId("local")).toBe(255);
    expect(rt.tableId("51820")).toBe(51820);
    expect(rt.tableId("0x4d2")).toBe(1234);
    expect(rt.tableId("nosuchtable")).toBeNull();
  });
});

describe("the compiled executable", () => {
  test("`wg-quick` (symlink to the one file) starts its own daemon, hooks find the `wg` beside it first in PATH, and it tears down", async () => {
    const out = join(dir, "dist");
    mkdirSync(out, { recursive: true });
    const build = Bun.spawnSync(compileCommand(join(out, "wg")), { stdout: "pipe", stderr: "pipe" });
    expect(build.exitCode).toBe(0);
    symlinkSync("wg", join(out, "wg-quick"));
    const iface = ifname();
    const ns = hostNs("bin");
    const before = snapshot(ns);
    resetState();
    const path = join(cfgDir, `${iface}.conf`);
    writeFileSync(path, SPLIT.replace("[Peer]", `PostUp = command -v wg > ${hookLog}\n[Peer]`), { mode: 0o600 });
    const env = { PATH: `${binDir}:${process.env.PATH}` };
    const up = ns.run([join(out, "wg-quick"), "up", path], env);
    // As the reference puts its own directory first: not the wg that PATH has (/usr/bin/wg).
    expect(readFileSync(hookLog, "latin1")).toBe(`${join(realpathSync(out), "wg")}\n`);
    expect(up.stderr).toContain(`[#] ${join(out, "wg")} daemon ${iface}\n[#] wg setconf ${iface} /dev/fd/63\n`);
    expect(up.code).toBe(0);
    expect(ns.run([join(out, "wg"), "show", iface, "listen-port"]).stdout).toBe("51001\n");
    expect(ns.run(["ip", "-4", "route", "show", "dev", iface]).stdout).toContain("10.99.0.0/16 scope link");
    const down = ns.run([join(out, "wg-quick"), "down", path], env);
    expect(down.code).toBe(0);
    await waitFor(() => !existsSync(`/var/run/wireguard/${iface}.sock`), 3000);
    expect(snapshot(ns)).toEqual(before);
  }, TIMEOUT);
});

describe("not root", () => {
  test.skipIf(Bun.which("sudo") !== null)("without sudo: status 127 like the reference, with a plain message", () => {
    const conf = join(cfgDir, "wqnoroot.conf");
    writeFileSync(conf, "[Interface]\n", { mode: 0o644 });
    const asNobody = (argv: string[]) => {
      const r = Bun.spawnSync([...AS_NOBODY, ...argv], { stdout: "pipe", stderr: "pipe", cwd: "/" });
      return { code: r.exitCode, stderr: r.stderr.toString() };
    };
    const orig = asNobody(argvOf("orig", ["strip", conf]));
    const ours = asNobody([nobodyExecutable(), "wg-quick", "strip", conf]);
    expect(orig.code).toBe(127);
    expect(ours).toEqual({ code: 127, stderr: "wg-quick: must be run as root, and sudo is not installed\n" });
  });
});

// ---------------------------------------------------------------------------------------------
// Extensions of ours (not in the reference): DNS through systemd-resolved, and `reload`.

const rcBin = join(dir, "rcbin"); // resolvectl stand-in and systemd's resolvconf symlink to it
mkdirSync(rcBin);
const rcOnlyBin = join(dir, "rconly"); // resolvectl stand-in alone
mkdirSync(rcOnlyBin);
// resolvectl stand-in: logs every call, keeps per-link servers/domains, answers queries in
// resolvectl's "Link N (IF): ..." format, and like the real one fails for links that do not
// exist (so a revert after the link is gone would show) or when resolved is not running.
const FAKE_RESOLVECTL = `#!/bin/sh
d="${stateDir}"
echo "resolvectl $*" >> "$d/resolvectl.log"
[ -d /run/systemd/resolve ] || { echo "Failed to connect to bus: resolved not running" >&2; exit 1; }
[ -n "$FAKE_RESOLVECTL_FAIL" ] && [ "$1" = "$FAKE_RESOLVECTL_FAIL" ] && { echo "Failed to set $1: simulated" >&2; exit 1; }
cmd=$1; i=$2; shift 2
[ -e "/sys/class/net/$i" ] || { echo "Failed to resolve interface \\"$i\\": No such device" >&2; exit 1; }
case "$cmd" in
dns|domain)
  if [ $# -eq 0 ]; then echo "Link $(cat /sys/class/net/$i/ifindex) ($i): $(cat "$d/rc-$cmd-$i" 2>/dev/null)"
  else echo "$*" > "$d/rc-$cmd-$i"; fi ;;
revert) rm -f "$d/rc-dns-$i" "$d/rc-domain-$i" ;;
*) exit 1 ;;
esac
`;
writeFileSync(join(rcBin, "resolvectl"), FAKE_RESOLVECTL, { mode: 0o755 });
symlinkSync("resolvectl", join(rcBin, "resolvconf"));
writeFileSync(join(rcOnlyBin, "resolvectl"), FAKE_RESOLVECTL, { mode: 0o755 });

function readStateFile(name: string): string {
  const p = join(stateDir, name);
  return existsSync(p) ? readFileSync(p, "latin1") : "";
}

/**
 * Runs wg-quick command lines (ours, our daemon) in one shell inside `ns` and a private mount
 * namespace in which, if `resolved`, /run/systemd/resolve exists (a tmpfs over /run/systemd, so
 * the host's /run is never written).
 */
function runWithResolved(ns: Netns, resolved: boolean, cmds: string[][], env: Record<string, string>): RunResult {
  const q = (args: string[]) => argvOf("daemon", args).map((w) => `'${w}'`).join(" ");
  const prep = resolved ? "mount -t tmpfs -o mode=0755 none /run/systemd && mkdir /run/systemd/resolve" : "mount -t tmpfs -o mode=0755 none /run/systemd";
  const script = [prep, ...cmds.map(q)].join(" && ");
  return ns.run(["unshare", "-m", "sh", "-c", script], { ...envOf("daemon"), ...env });
}

describe("ours: DNS through systemd-resolved (fake resolvectl, fake /run/systemd/resolve in a private mount namespace)", () => {
  const conf = SPLIT.replace(/^DNS.*$/m, "DNS = 10.71.0.53, fd71::53, example.com, ~corp.test");

  test("resolvconf only as systemd's symlink: per-link servers, search and routing domains; save keeps them; revert before the link goes", async () => {
    const iface = ifname();
    const ns = hostNs("rd");
    const before = snapshot(ns);
    resetState();
    const path = join(cfgDir, `${iface}.conf`);
    writeFileSync(path, conf, { mode: 0o600 });
    const r = runWithResolved(ns, true, [["up", path], ["save", path], ["down", path]], { PATH: `${rcBin}:/usr/bin:/bin` });
    await waitFor(() => !existsSync(`/var/run/wireguard/${iface}.sock`), 3000);
    expect(snapshot(ns)).toEqual(before);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(
      `[#] ip link set mtu 1380 up dev ${iface}\n[#] resolvectl dns ${iface} 10.71.0.53 fd71::53\n[#] resolvectl domain ${iface} example.com ~corp.test\n[#] ip -6 route add fd99::/48 dev ${iface}\n`,
    );
    expect(r.stderr).toContain(`[#] resolvectl revert ${iface}\n[#] ip link delete dev ${iface}\n`);
    expect(r.stderr).not.toContain("resolvconf");
    expect(r.stderr).not.toContain("Failed");
    expect(readStateFile("resolvectl.log")).toBe(
      [
        `resolvectl dns ${iface} 10.71.0.53 fd71::53`,
        `resolvectl domain ${iface} example.com ~corp.test`,
        `resolvectl dns ${iface}`, // save
        `resolvectl domain ${iface}`,
        `resolvectl revert ${iface}`,
        "",
      ].join("\n"),
    );
    expect(readFileSync(path, "latin1")).toContain("DNS = 10.71.0.53\nDNS = fd71::53\nDNS = example.com\nDNS = ~corp.test\n");
    expect(readStateFile("resolvconf.log")).toBe("");
  }, TIMEOUT);

  test("reload: DNS re-applied only when it changed (revert, then servers and domains; a UTF-8 domain unchanged too); reverted when DNS = goes", async () => {
    const iface = ifname();
    const ns = hostNs("rl");
    const before = snapshot(ns);
    resetState();
    const files = ["DNS = 10.71.0.53, ~c\u00f6rp.test", "DNS = 10.71.0.54, example.com", ""].map((dns, i) => {
      mkdirSync(join(cfgDir, `dns${i}`), { recursive: true, mode: 0o700 });
      const p = join(cfgDir, `dns${i}`, `${iface}.conf`);
      writeFileSync(p, SPLIT.replace(/^DNS.*\n/m, dns ? `${dns}\n` : ""), { mode: 0o600 });
      return p;
    });
    const [d0, d1, d2] = files as [string, string, string];
    const r = runWithResolved(ns, true, [["up", d0], ["reload", d0], ["reload", d1], ["reload", d2], ["down", d2]], { PATH: `${rcBin}:/usr/bin:/bin` });
    await waitFor(() => !existsSync(`/var/run/wireguard/${iface}.sock`), 3000);
    expect(snapshot(ns)).toEqual(before);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(
      `[#] wg syncconf ${iface} /dev/fd/63\n[#] wg syncconf ${iface} /dev/fd/63\n[#] resolvectl revert ${iface}\n[#] resolvectl dns ${iface} 10.71.0.54\n[#] resolvectl domain ${iface} example.com\n[#] wg syncconf ${iface} /dev/fd/63\n[#] resolvectl revert ${iface}\n[#] ip link delete`,
    );
    const q = [`resolvectl dns ${iface}`, `resolvectl domain ${iface}`];
    expect(readStateFile("resolvectl.log")).toBe(
      [
        `resolvectl dns ${iface} 10.71.0.53`,
        `resolvectl domain ${iface} ~c\xc3\xb6rp.test`, // the file's bytes, UTF-8
        ...q,
        ...q,
        `resolvectl revert ${iface}`,
        `resolvectl dns ${iface} 10.71.0.54`,
        `resolvectl domain ${iface} example.com`,
        ...q,
        `resolvectl revert ${iface}`,
        "",
      ].join("\n"),
    );
  }, TIMEOUT);

  test("resolvectl failing during up: status passes through, the link setting is reverted, full teardown", async () => {
    const iface = ifname();
    const ns = hostNs("rf");
    const before = snapshot(ns);
    resetState();
    const path = join(cfgDir, `${iface}.conf`);
    writeFileSync(path, conf, { mode: 0o600 });
    const r = runWithResolved(ns, true, [["up", path]], { PATH: `${rcOnlyBin}:/usr/bin:/bin`, FAKE_RESOLVECTL_FAIL: "domain" });
    await waitFor(() => !existsSync(`/var/run/wireguard/${iface}.sock`), 3000);
    expect(snapshot(ns)).toEqual(before);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      `[#] resolvectl domain ${iface} example.com ~corp.test\nFailed to set domain: simulated\n[#] resolvectl revert ${iface}\n[#] ip link delete dev ${iface}\n`,
    );
  }, TIMEOUT);

  test("a real resolvconf stays in charge even while resolved runs (the reference's behaviour)", async () => {
    const iface = ifname();
    const ns = hostNs("rr");
    resetState();
    const path = join(cfgDir, `${iface}.conf`);
    writeFileSync(path, conf, { mode: 0o600 });
    const r = runWithResolved(ns, true, [["up", path], ["down", path]], { PATH: `${binDir}:${rcOnlyBin}:/usr/bin:/bin` });
    await waitFor(() => !existsSync(`/var/run/wireguard/${iface}.sock`), 3000);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`[#] resolvconf -a ${iface} -m 0 -x\n`);
    expect(r.stderr).toContain(`[#] ip link delete dev ${iface}\n[#] resolvconf -d ${iface} -f\n`);
    expect(readStateFile("resolvectl.log")).toBe("");
    expect(readStateFile("resolvconf.log")).toContain("  | search example.com ~corp.test\n");
  }, TIMEOUT);

  test("resolvectl installed but resolved not running, no resolvconf: status 127 and what to do", async () => {
    const iface = ifname();
    const ns = hostNs("rn");
    const before = snapshot(ns);
    resetState();
    const path = join(cfgDir, `${iface}.conf`);
    writeFileSync(path, conf, { mode: 0o600 });
    const r = runWithResolved(ns, false, [["up", path]], { PATH: `${rcOnlyBin}:/usr/bin:/bin` });
    await waitFor(() => !existsSync(`/var/run/wireguard/${iface}.sock`), 3000);
    expect(snapshot(ns)).toEqual(before);
    expect(r.code).toBe(127);
    expect(r.stderr).toContain(`[#] resolvconf -a ${iface} -m 0 -x\nresolvconf: command not found (DNS = needs resolvconf or systemd-resolved: resolvectl is installed but systemd-resolved is not running`);
    expect(r.stderr).toContain("systemctl enable --now systemd-resolved");
    expect(r.stderr).toEndWith(`[#] ip link delete dev ${iface}\n`);
    expect(readStateFile("resolvectl.log")).toBe("");
  }, TIMEOUT);
});

describe("ours: wg-quick reload IFACE|CONFIG", () => {
  test("its command line: help, and usage errors in the format of the other own commands (cmd/cli.ts)", () => {
    const run = (args: string[]) => {
      const r = Bun.spawnSync(argvOf("ours", ["reload", ...args]), { stdout: "pipe", stderr: "pipe" });
      return { code: r.exitCode, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
    };
    const help = run(["--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("USAGE wg-quick reload ");
    expect(help.stdout).toContain("CONFIG=<CONFIG_FILE|INTERFACE>");
    expect(help.stdout).not.toContain("\x1b");
    const tryHelp = "Try `wg-quick reload --help'.\n";
    expect(run(["--frob", "wg0"])).toEqual({ code: 1, stdout: "", stderr: `wg-quick reload: unknown option \`--frob'\n${tryHelp}` });
    expect(run(["a.conf", "b.conf"])).toEqual({ code: 1, stdout: "", stderr: `wg-quick reload: one config at a time, not \`a.conf b.conf'\n${tryHelp}` });
    const none = run([]);
    expect(none.code).toBe(1);
    expect(none.stderr).toStartWith("wg-quick reload: ");
    expect(none.stderr).toEndWith(tryHelp);
  });

  for (const side of ["ours", "daemon"] as const) {
    test(`${side === "ours" ? "wireguard-go" : "our daemon"}: reloads to B, C (full tunnel), B equal fresh ups of them; the unchanged peer keeps its session`, async () => {
      const c = newNs(`rc${side}`);
      const s = newNs(`rs${side}`);
      lab.veth(c, s, { a: ["10.200.0.2/24"], b: ["10.200.0.1/24"] }, "up0");
      const serverIf = ifname();
      const iface = ifname();
      const serverKey = key();
      const clientKey = key();
      const serverPub = b64(publicKey(serverKey));
      const peer4 = b64(publicKey(key()));
      const keyFile = join(dir, `${serverIf}.key`);
      writeFileSync(keyFile, `${b64(serverKey)}\n`, { mode: 0o600 });
      s.sh(
        `wireguard-go ${serverIf} >/dev/null && wg set ${serverIf} private-key ${keyFile} listen-port 51820 ` +
          `peer ${b64(publicKey(clientKey))} allowed-ips 10.80.0.2/32,fd80::2/128 && ` +
          `ip addr add 10.80.0.1/24 dev ${serverIf} && ip link set ${serverIf} up`,
      );
      const head = (addr: string, mtu: number, dns: string) =>
        `[Interface]\nPrivateKey = ${b64(clientKey)}\nListenPort = 51830\nAddress = ${addr}\nMTU = ${mtu}\nDNS = ${dns}\n`;
      const server = (extra: string) => `\n[Peer]\nPublicKey = ${serverPub}\nEndpoint = 10.200.0.1:51820\nAllowedIPs = 10.80.0.1/32, 10.99.0.0/24${extra}\n`;
      const A =
        head("10.80.0.2/24, 10.85.0.2/32", 1400, "10.80.0.53") +
        server("") +
        `[Peer]\nPublicKey = ${PEER2}\nAllowedIPs = 10.81.0.0/24, 10.84.0.0/24\n[Peer]\nPublicKey = ${PEER3}\nAllowedIPs = 10.86.0.0/24\n`;
      const peersB = `[Peer]\nPublicKey = ${PEER2}\nAllowedIPs = 10.81.0.0/24, 10.83.0.0/24\nPersistentKeepalive = 25\n[Peer]\nPublicKey = ${peer4}\nAllowedIPs = fd83::/64\n`;
      const B = head("10.80.0.2/24, fd80::2/64", 1380, "10.80.0.53, 10.80.0.54, corp.test") + server("") + peersB;
      const C = head("10.80.0.2/24, fd80::2/64", 1380, "10.80.0.53, 10.80.0.54, corp.test") + server(", 0.0.0.0/0, ::/0") + peersB;

      const path = join(cfgDir, `${iface}.conf`);
      const write = (text: string) => writeFileSync(path, text, { mode: 0o600 });
      const run = (cmd: string) => runSide(side, c, [cmd, path], iface);
      // Link-local addresses are random, so their routes' order is too: compared as sorted lines.
      const stateOf = () => ({
        ...snapshot(c),
        routes: snapshot(c).routes.split("\n").sort().join("\n"),
        showconf: sortPeers(normState(c.run(["wg", "showconf", iface]).stdout, c.name)),
        dns: readStateFile(`if-${iface}`),
      });
      const handshake = () => c.sh(`wg show ${iface} latest-handshakes`).split("\n").find((l) => l.startsWith(serverPub))!.split("\t")[1]!;
      const ping = () => c.run(["ping", "-c", "1", "-W", "3", "10.80.0.1"]).code;
      /** Reload while a ping runs every 100 ms: none of its packets may be lost. */
      const reloadPinging = async () => {
        const p = c.spawn(["ping", "-i", "0.1", "-c", "25", "-W", "3", "10.80.0.1"]);
        await Bun.sleep(300);
        const r = run("reload");
        await p.exited;
        expect(p.output()).toContain("25 packets transmitted, 25 received");
        return r;
      };

      // The veth's link-local address (and its route) arrives asynchronously.
      expect(await waitFor(() => c.run(["ip", "-6", "route", "show", "table", "local"]).stdout.includes("local fe80::"), 5000)).toBe(true);
      const before = snapshot(c);
      resetState();
      write(A);
      expect(run("up").code).toBe(0);
      const index = c.sh(`cat /sys/class/net/${iface}/ifindex`);
      expect(ping()).toBe(0);
      const hs = handshake();
      expect(Number(hs)).toBeGreaterThan(0);
      await Bun.sleep(1100); // a new handshake would show a later second

      write(B);
      const rB = await reloadPinging();
      expect(rB).toEqual({
        code: 0,
        stdout: "",
        stderr: [
          `[#] wg syncconf ${iface} /dev/fd/63`,
          `[#] ip -6 address add fd80::2/64 dev ${iface}`,
          `[#] ip -4 address del 10.85.0.2/32 dev ${iface}`,
          `[#] ip link set mtu 1380 up dev ${iface}`,
          `[#] resolvconf -a ${iface} -m 0 -x`,
          `[#] ip -4 route del 10.86.0.0/24 dev ${iface}`,
          `[#] ip -4 route del 10.84.0.0/24 dev ${iface}`,
          `[#] ip -6 route add fd83::/64 dev ${iface}`,
          `[#] ip -4 route add 10.83.0.0/24 dev ${iface}`,
          "",
        ].join("\n"),
      });
      expect(handshake()).toBe(hs);
      expect(ping()).toBe(0);
      expect(handshake()).toBe(hs);
      const stateB = stateOf();
      expect(stateB.showconf).toContain("PersistentKeepalive = 25");

      write(C);
      const rC = await reloadPinging();
      expect(rC.code).toBe(0);
      expect(rC.stderr).toStartWith(`[#] wg syncconf ${iface} /dev/fd/63\n[#] wg set ${iface} fwmark 51820\n[#] ip -6 route add ::/0 dev ${iface} table 51820\n`);
      expect(handshake()).toBe(hs);
      expect(c.run(["ip", "route", "get", "192.0.2.1"]).stdout).toContain(`dev ${iface} table 51820`);
      const stateC = stateOf();

      write(B);
      const rB2 = await reloadPinging();
      expect(rB2.code).toBe(0);
      expect(rB2.stderr).toContain(`[#] ip -4 rule delete table main suppress_prefixlength 0\n[#] nft -f /dev/fd/63\n[#] wg set ${iface} fwmark 0\n`);
      expect(stateOf()).toEqual(stateB);
      expect(run("reload")).toEqual({ code: 0, stdout: "", stderr: `[#] wg syncconf ${iface} /dev/fd/63\n` });
      expect(handshake()).toBe(hs);
      expect(c.sh(`cat /sys/class/net/${iface}/ifindex`)).toBe(index);

      // Invalid values are found before anything changes.
      write(B.replace("fd80::2/64", "fd80::2/129"));
      const bad = run("reload");
      expect(bad.code).toBe(1);
      expect(bad.stderr).toBe('Error: inet6 prefix is expected rather than "fd80::2/129".\n');
      expect(stateOf()).toEqual(stateB);

      // The same files brought up from scratch give the same state.
      for (const [text, state] of [
        [B, stateB],
        [C, stateC],
      ] as const) {
        expect(run("down").code).toBe(0);
        await waitFor(() => !existsSync(`/var/run/wireguard/${iface}.sock`), 3000);
        write(text);
        expect(run("up").code).toBe(0);
        expect(stateOf()).toEqual(state);
      }
      expect(run("down").code).toBe(0);
      await waitFor(() => !existsSync(`/var/run/wireguard/${iface}.sock`), 3000);
      expect(snapshot(c)).toEqual(before);
      s.run(["ip", "link", "del", serverIf]);
    }, TIMEOUT);
  }

  test("reload with resolvconf: an unchanged record (a UTF-8 domain too) is kept, a changed one replaced, a removed DNS = deleted", async () => {
    const iface = ifname();
    const ns = hostNs("rl");
    resetState();
    const path = join(cfgDir, `${iface}.conf`);
    const utf8 = SPLIT.replace("corp.test", "c\u00f6rp.test");
    const texts = [utf8, utf8, utf8.replace("10.71.0.53, ", ""), utf8.replace(/^DNS.*\n/m, "")];
    const out: RunResult[] = [];
    for (const [i, t] of texts.entries()) {
      writeFileSync(path, t, { mode: 0o600 });
      out.push(runSide("daemon", ns, [i === 0 ? "up" : "reload", path], iface));
    }
    out.push(runSide("daemon", ns, ["down", path], iface));
    await waitFor(() => !existsSync(`/var/run/wireguard/${iface}.sock`), 3000);
    expect(out.map((r) => r.code)).toEqual([0, 0, 0, 0, 0]);
    expect(out[1]!.stderr).toBe(`[#] wg syncconf ${iface} /dev/fd/63\n`);
    expect(out[2]!.stderr).toBe(`[#] wg syncconf ${iface} /dev/fd/63\n[#] resolvconf -a ${iface} -m 0 -x\n`);
    expect(out[3]!.stderr).toBe(`[#] wg syncconf ${iface} /dev/fd/63\n[#] resolvconf -d ${iface} -f\n`);
    expect(readStateFile("resolvconf.log")).toContain(`resolvconf -a ${iface} -m 0 -x\n  | nameserver fd71::53\n  | search example.com ${Buffer.from("c\u00f6rp.test").toString("latin1")}\nresolvconf -l ${iface}\nresolvconf -d ${iface} -f\n`);
  }, TIMEOUT);

  test("reload of an interface that is not up: the message of down, status 1", () => {
    const iface = ifname();
    const ns = newNs("rl");
    const path = join(cfgDir, `${iface}.conf`);
    writeFileSync(path, SPLIT, { mode: 0o600 });
    expect(runSide("ours", ns, ["reload", path], iface)).toEqual({ code: 1, stdout: "", stderr: `wg-quick: \`${iface}' is not a WireGuard interface\n` });
  });
});
