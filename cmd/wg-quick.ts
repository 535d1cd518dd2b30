// wg-quick(8) for Linux, behaving like the wireguard-tools v1.0.20210914 bash script: same
// config handling, same order of operations, and the same `[#] ...` lines on stderr, naming
// the `ip`/`wg`/`nft`/`iptables-restore` commands the script would have run. The work itself
// goes through rtnetlink, our own wg (in-process) and our own daemon; only the firewall rules
// are handed to nft or iptables-restore.
// Two extensions leave that behaviour alone where the reference works: `reload` (not in the
// usage text, which stays the reference's), and DNS through resolvectl where systemd-resolved
// manages DNS and no real resolvconf is installed (platform/linux/resolvconf.ts decides).
import { existsSync, readFileSync, realpathSync, renameSync, statSync, writeFileSync, openSync, fsyncSync, closeSync, unlinkSync } from "node:fs";
import { basename, dirname } from "node:path";
import { fieldOfDevice, showconfDevice } from "../core/tools/show.ts";
import { strerror as wgStrerror } from "../core/errno.ts";
import { getDevice, listInterfaces } from "../platform/ipc.ts";
import { socketPath } from "../platform/socket-path.ts";
import * as rt from "../platform/linux/rtnetlink.ts";
import {
  iptablesRemovalScript,
  iptablesRestore,
  iptablesScript,
  mergeRestoreScripts,
  nftApply,
  nftPath,
  nftRemovalScript,
  nftScript,
  xtables,
} from "../platform/linux/firewall.ts";
import {
  dnsManager,
  resolvconfAdd,
  resolvconfDel,
  resolvconfIfacePrefix,
  resolvconfList,
  resolvectl,
  resolvectlQuery,
  type DnsManager,
} from "../platform/linux/resolvconf.ts";
import { memfdWith } from "../platform/linux/memfd.ts";
import { wgMain } from "./wg.ts";
import { launchDaemon } from "./launch.ts";
import { selfCommand } from "./self.ts";

const NAME_RE = /^[a-zA-Z0-9_=+.-]{1,15}$/;
const PATH_NAME_RE = /(^|\/)([a-zA-Z0-9_=+.-]{1,15})\.conf$/;

/** Leaves wg-quick with a status (bash `exit N`, or a failed command under `set -e`). */
class Exit {
  constructor(readonly code: number) {}
}

const err = (s: string) => process.stderr.write(Buffer.from(s, "latin1"));

interface Options {
  prog: string;
  configFile: string;
  iface: string;
  wgConfig: string;
  addresses: string[];
  mtu: string;
  dns: string[];
  dnsSearch: string[];
  table: string;
  preUp: string[];
  postUp: string[];
  preDown: string[];
  postDown: string[];
  saveConfig: boolean;
}

function usage(prog: string): void {
  err(`Usage: ${prog} [ up | down | save | strip ] [ CONFIG_FILE | INTERFACE ]

  CONFIG_FILE is a configuration file, whose filename is the interface name
  followed by \`.conf'. Otherwise, INTERFACE is an interface name, with
  configuration found at /etc/wireguard/INTERFACE.conf. It is to be readable
  by wg(8)'s \`setconf' sub-command, with the exception of the following additions
  to the [Interface] section, which are handled by ${prog}:

  - Address: may be specified one or more times and contains one or more
    IP addresses (with an optional CIDR mask) to be set for the interface.
  - DNS: an optional DNS server to use while the device is up.
  - MTU: an optional MTU for the interface; if unspecified, auto-calculated.
  - Table: an optional routing table to which routes will be added; if
    unspecified or \`auto', the default table is used. If \`off', no routes
    are added.
  - PreUp, PostUp, PreDown, PostDown: script snippets which will be executed
    by bash(1) at the corresponding phases of the link, most commonly used
    to configure DNS. The string \`%i' is expanded to INTERFACE.
  - SaveConfig: if set to \`true', the configuration is saved from the current
    state of the interface upon shutdown.

See wg-quick(8) for more info and examples.
`);
}

// ---- parsing (bash `read -r` + parameter expansions of the reference) ----

/** bash `read -r line` with the default IFS: leading/trailing spaces and tabs trimmed, NULs dropped. */
function readLines(text: string): string[] {
  const parts = text.replace(/\0/g, "").split("\n");
  if (parts[parts.length - 1] === "") parts.pop();
  return parts.map((l) => l.replace(/^[ \t]+|[ \t]+$/g, ""));
}

const trimSpace = (s: string) => s.replace(/^[ \t\n\v\f\r]+|[ \t\n\v\f\r]+$/g, "");
/** Unquoted word splitting on the default IFS. */
const words = (s: string) => s.split(/[ \t\n]+/).filter((w) => w !== "");

function die(prog: string, msg: string): never {
  err(`${prog}: ${msg}\n`);
  throw new Exit(1);
}

function parseOptions(prog: string, arg: string): Options {
  let configFile = arg;
  if (NAME_RE.test(configFile)) configFile = `/etc/wireguard/${configFile}.conf`;
  if (!existsSync(Buffer.from(configFile, "latin1"))) die(prog, `\`${configFile}' does not exist`);
  const m = PATH_NAME_RE.exec(configFile);
  if (!m) die(prog, "The config file must be a valid interface name, followed by .conf");
  const iface = m[2]!;
  configFile = realpathSync(Buffer.from(configFile, "latin1"), { encoding: "buffer" }).toString("latin1");
  const dir = configFile.slice(0, configFile.lastIndexOf("/")) || "/";
  try {
    const fileMode = statSync(Buffer.from(configFile, "latin1")).mode;
    const dirMode = statSync(Buffer.from(dir, "latin1")).mode;
    if ((fileMode & dirMode & 0o007) !== 0) err(`Warning: \`${configFile}' is world accessible\n`);
  } catch {
    // stat failing leaves bash's arithmetic empty; nothing sensible to warn about
  }
  const o: Options = {
    prog,
    configFile,
    iface,
    wgConfig: "",
    addresses: [],
    mtu: "",
    dns: [],
    dnsSearch: [],
    table: "",
    preUp: [],
    postUp: [],
    preDown: [],
    postDown: [],
    saveConfig: false,
  };
  let text: string;
  try {
    text = readFileSync(Buffer.from(configFile, "latin1"), "latin1");
  } catch {
    text = ""; // bash's `done < dir` fails the same way: nothing is read
  }
  let inInterface = false;
  for (const line of readLines(text)) {
    const hash = line.indexOf("#");
    const stripped = hash < 0 ? line : line.slice(0, hash);
    const eq = stripped.indexOf("=");
    const key = trimSpace(eq < 0 ? stripped : stripped.slice(0, eq));
    const value = trimSpace(eq < 0 ? stripped : stripped.slice(eq + 1));
    if (key.startsWith("[")) inInterface = false;
    if (key.toLowerCase() === "[interface]") inInterface = true;
    if (inInterface) {
      switch (key.toLowerCase()) {
        case "address":
          o.addresses.push(...words(value.replace(/,/g, " ")));
          continue;
        case "mtu":
          o.mtu = value;
          continue;
        case "dns":
          for (const v of words(value.replace(/,/g, " "))) {
            if (/^[0-9.]+$/.test(v) || v.includes(":")) o.dns.push(v);
            else o.dnsSearch.push(v);
          }
          continue;
        case "table":
          o.table = value;
          continue;
        case "preup":
          o.preUp.push(value);
          continue;
        case "predown":
          o.preDown.push(value);
          continue;
        case "postup":
          o.postUp.push(value);
          continue;
        case "postdown":
          o.postDown.push(value);
          continue;
        case "saveconfig": {
          const v = value.toLowerCase();
          if (v === "true") o.saveConfig = true;
          else if (v === "false") o.saveConfig = false;
          else die(prog, `\`${value}' is neither true nor false`);
          continue;
        }
      }
    }
    o.wgConfig += `${line}\n`;
  }
  return o;
}

// ---- the session: one invocation acting on one interface ----

class Session {
  haveSetDns = false;
  private dnsManagerCache: DnsManager | null = null;
  haveSetFirewall = false;
  interrupted = 0; // 128 + signal number once SIGINT/SIGTERM arrived during `up`
  tearingDown = false;
  /** `shellName`: bash's `$0` for the reference, the path its messages about missing commands start with. */
  constructor(
    readonly o: Options,
    readonly shellName: string = o.prog,
  ) {}

  get iface(): string {
    return this.o.iface;
  }

  /** bash `cmd`: echo the command the reference would run. */
  echo(line: string): void {
    // A signal during `up` is acted on between steps, as bash runs its trap once the
    // foreground command has finished.
    if (this.interrupted !== 0 && !this.tearingDown) throw new Exit(this.interrupted);
    err(`[#] ${line}\n`);
  }

  /** A failed step under `set -e`. */
  fail(code: number): never {
    throw new Exit(code);
  }

  /** bash's message when a command `cmd` runs is not in PATH (the `"$@"` of `cmd` is line 32). */
  notFound(name: string): void {
    err(`${this.shellName}: line 32: ${name}: command not found\n`);
  }

  // -- ip emulation --

  ifindex(): number {
    const i = rt.nameToIndex(this.iface);
    if (i === 0) {
      err(`Cannot find device "${this.iface}"\n`);
      this.fail(1);
    }
    return i;
  }

  /** Run an rtnetlink change the way `ip` reports its failure (status 2). */
  netlink(f: () => void): void {
    try {
      f();
    } catch (e) {
      if (e instanceof rt.NetlinkError) {
        err(`${e.ipText()}\n`);
        this.fail(2);
      }
      throw e;
    }
  }

  ipPrefix(text: string, family: number): rt.Prefix {
    const p = rt.parsePrefix(text, family);
    if (!p) {
      err(`Error: ${family === rt.AF_INET6 ? "inet6" : "inet"} prefix is expected rather than "${text}".\n`);
      this.fail(1);
    }
    return p;
  }

  ipTable(text: string): number {
    const t = rt.tableId(text);
    if (t === null) {
      err(`Error: argument "${text}" is wrong: "table" value is invalid\n\n`);
      this.fail(255);
    }
    return t;
  }

  // -- wg emulation --

  async wg(args: string[]): Promise<void> {
    this.echo(`wg ${args.join(" ")}`);
    const code = await wgMain("wg", args);
    if (code !== 0) this.fail(code);
  }

  /** `$(wg show IF FIELD)`: the text, or null after wg's error message. */
  async wgShow(field: string): Promise<string | null> {
    const r = await getDevice(this.iface);
    if (!r.ok) {
      err(`Unable to access interface: ${wgStrerror(r.errno)}\n`);
      return null;
    }
    return fieldOfDevice(r.device, field, false) ?? "";
  }

  async getFwmark(): Promise<number | null> {
    const text = await this.wgShow("fwmark");
    if (text === null) return null;
    const v = text.trim();
    if (v === "" || v === "off") return null;
    return Number(v);
  }

  async isWgInterface(): Promise<boolean> {
    const r = await listInterfaces();
    if (!r.ok) {
      err(`Unable to list interfaces: ${wgStrerror(r.errno)}\n`);
      return false;
    }
    return r.names.includes(this.iface);
  }

  // -- steps of the reference script --

  async executeHooks(hooks: readonly string[]): Promise<void> {
    for (const h of hooks) {
      const hook = h.split("%i").join(this.iface);
      this.echo(hook);
      // The reference evals the hook in a subshell of itself: errexit and pipefail on, its
      // variables visible. We give it the same shell options and the variables users rely on.
      const prelude =
        'INTERFACE=$1 CONFIG_FILE=$2 MTU=$3 TABLE=$4 PROGRAM=$5 hook=$6; shift 6; set -e -o pipefail; shopt -s extglob; eval "$hook"';
      const p = Bun.spawn(
        ["bash", "-c", prelude, this.o.prog, this.iface, this.o.configFile, this.o.mtu, this.o.table, this.o.prog, hook],
        { stdin: "inherit", stdout: "inherit", stderr: "inherit" },
      );
      const code = await p.exited;
      if (code !== 0) this.fail(code);
    }
  }

  async addIf(): Promise<void> {
    this.echo(`ip link add ${this.iface} type wireguard`);
    try {
      rt.linkAdd(this.iface, "wireguard");
      return;
    } catch (e) {
      if (!(e instanceof rt.NetlinkError)) throw e;
      err(`${e.ipText()}\n`);
    }
    const envImpl = process.env.WG_QUICK_USERSPACE_IMPLEMENTATION;
    let launch: { cmd: string[]; argv0: string };
    let shown: string;
    if (envImpl) {
      const exe = Bun.which(envImpl);
      // The reference exits here with `$?` of a negated test, i.e. 0 (then tears down).
      if (existsSync("/sys/module/wireguard") || exe === null) this.fail(0);
      launch = { cmd: [exe, this.iface], argv0: envImpl };
      shown = `${envImpl} ${this.iface}`;
    } else {
      if (existsSync("/sys/module/wireguard")) this.fail(0);
      launch = selfCommand("daemon", [this.iface]);
      shown = launch.cmd.join(" ");
    }
    err("[!] Missing WireGuard kernel module. Falling back to slow userspace implementation.\n");
    this.echo(shown);
    let code: number;
    if (envImpl) {
      const p = Bun.spawn(launch.cmd, { argv0: launch.argv0, stdin: "inherit", stdout: "inherit", stderr: "inherit" });
      code = await p.exited;
    } else {
      // What `wg daemon IFACE` would do, without that launcher process in between.
      code = await launchDaemon(launch.cmd, launch.argv0);
    }
    if (code !== 0) this.fail(code);
    // The launch contract says the socket exists when the launcher returns; allow a slow start.
    for (let i = 0; i < 100 && !existsSync(socketPath(this.iface)); i++) await Bun.sleep(20);
  }

  async setConfig(): Promise<void> {
    this.echo(`wg setconf ${this.iface} /dev/fd/63`);
    const f = memfdWith(Buffer.from(`${this.o.wgConfig}\n`, "latin1"));
    try {
      const code = await wgMain("wg", ["setconf", this.iface, f.path]);
      if (code !== 0) this.fail(code);
    } finally {
      f.close();
    }
  }

  addAddr(a: string): void {
    const family = a.includes(":") ? rt.AF_INET6 : rt.AF_INET;
    this.echo(`ip ${family === rt.AF_INET6 ? "-6" : "-4"} address add ${a} dev ${this.iface}`);
    const p = this.ipPrefix(a, family);
    const idx = this.ifindex();
    this.netlink(() => rt.addrAdd(idx, p));
  }

  /** MTU of a route as `ip route get`/`ip route show` prints it, else of its device. */
  routeMtu(r: rt.Route | null): number | null {
    if (!r) return null;
    if (r.mtu !== null) return r.mtu;
    if (r.oif === null || r.multipath) return null;
    return rt.linkByIndex(r.oif)?.mtu ?? null;
  }

  async setMtuUp(): Promise<void> {
    if (this.o.mtu !== "") {
      this.echo(`ip link set mtu ${this.o.mtu} up dev ${this.iface}`);
      const mtu = parseCInt(this.o.mtu);
      if (mtu === null) {
        err(`Error: argument "${this.o.mtu}" is wrong: Invalid "mtu" value\n\n`);
        this.fail(255);
      }
      const idx = this.ifindex();
      this.netlink(() => rt.linkSet(idx, { mtu, up: true }));
      return;
    }
    const mtu = await this.autoMtu(0);
    this.echo(`ip link set mtu ${mtu} up dev ${this.iface}`);
    const idx = this.ifindex();
    this.netlink(() => rt.linkSet(idx, { mtu, up: true }));
  }

  /**
   * The MTU `up` picks without MTU =: the largest MTU of the endpoints' routes (else of the
   * default route, else 1500) minus 80. `selfIndex` (reload) ignores routes through the tunnel
   * itself, which `up` never sees because it asks before adding them.
   */
  async autoMtu(selfIndex: number): Promise<number> {
    let mtu = 0;
    const endpoints = await this.wgShow("endpoints");
    for (const line of readLines(endpoints ?? "")) {
      const endpoint = line.slice(line.search(/[ \t]|$/)).replace(/^[ \t]+/, "");
      const m = /^\[?([a-z0-9:.]+)\]?:[0-9]+$/.exec(endpoint);
      if (!m) continue;
      const p = rt.parsePrefix(m[1]!, 0);
      if (!p) {
        err(`Error: any valid prefix is expected rather than "${m[1]}".\n`);
        continue;
      }
      let r: rt.Route | null = null;
      try {
        r = rt.routeGet(p.addr);
      } catch (e) {
        if (!(e instanceof rt.NetlinkError)) throw e;
        err(`${e.ipText()}\n`);
      }
      if (r && selfIndex !== 0 && r.oif === selfIndex) r = null;
      const v = this.routeMtu(r);
      if (v !== null && v > mtu) mtu = v;
    }
    if (mtu === 0) {
      const v = this.routeMtu(rt.defaultRoutes()[0] ?? null);
      if (v !== null && v > mtu) mtu = v;
    }
    if (mtu <= 0) mtu = 1500;
    return mtu - 80;
  }

  /** Decided on first use, so configurations without DNS never look for a resolver. */
  get dnsManager(): DnsManager {
    return (this.dnsManagerCache ??= dnsManager());
  }

  /** `resolvectl dns IF S...` then `resolvectl domain IF D...`; `~d` entries are routing domains. */
  async resolvectlSet(exe: string): Promise<void> {
    this.haveSetDns = true; // a half-applied link setting is reverted by the teardown too
    this.echo(`resolvectl dns ${this.iface} ${this.o.dns.join(" ")}`);
    let code = await resolvectl(exe, ["dns", this.iface, ...this.o.dns]);
    if (code !== 0) this.fail(code);
    if (this.o.dnsSearch.length === 0) return;
    this.echo(`resolvectl domain ${this.iface} ${this.o.dnsSearch.join(" ")}`);
    code = await resolvectl(exe, ["domain", this.iface, ...this.o.dnsSearch]);
    if (code !== 0) this.fail(code);
  }

  /** `resolvectl revert IF`; its failure does not stop a teardown (resolved forgets dead links anyway). */
  async resolvectlRevert(exe: string): Promise<void> {
    this.echo(`resolvectl revert ${this.iface}`);
    await resolvectl(exe, ["revert", this.iface]);
  }

  async setDns(): Promise<void> {
    if (this.o.dns.length === 0) return;
    const m = this.dnsManager;
    if (m.kind === "resolvectl") return await this.resolvectlSet(m.exe);
    const name = resolvconfIfacePrefix() + this.iface;
    this.echo(`resolvconf -a ${name} -m 0 -x`);
    const code = await resolvconfAdd(name, this.o.dns, this.o.dnsSearch);
    if (code !== 0) this.fail(code);
    this.haveSetDns = true;
  }

  async unsetDns(): Promise<void> {
    if (this.o.dns.length === 0) return;
    const m = this.dnsManager;
    if (m.kind === "resolvectl") return await this.resolvectlRevert(m.exe);
    const name = resolvconfIfacePrefix() + this.iface;
    this.echo(`resolvconf -d ${name} -f`);
    const code = await resolvconfDel(name);
    if (code !== 0) this.fail(code);
  }

  async addRoute(prefix: string): Promise<void> {
    const family = prefix.includes(":") ? rt.AF_INET6 : rt.AF_INET;
    const proto = family === rt.AF_INET6 ? "-6" : "-4";
    const table = this.o.table;
    if (table === "off") return;
    if (table !== "" && table !== "auto") {
      this.echo(`ip ${proto} route add ${prefix} dev ${this.iface} table ${table}`);
      const p = this.ipPrefix(prefix, family);
      const t = this.ipTable(table);
      const idx = this.ifindex();
      this.netlink(() => rt.routeAdd(p, idx, t));
    } else if (prefix.endsWith("/0")) {
      await this.addDefault(prefix);
    } else {
      const p = rt.parsePrefix(prefix, family);
      const idx = rt.nameToIndex(this.iface);
      if (p && idx !== 0 && rt.routeMatchExists(p, idx)) return;
      this.echo(`ip ${proto} route add ${prefix} dev ${this.iface}`);
      const pp = this.ipPrefix(prefix, family);
      const i = this.ifindex();
      this.netlink(() => rt.routeAdd(pp, i));
    }
  }

  async addDefault(prefix: string): Promise<void> {
    let table = await this.getFwmark();
    if (table === null) {
      table = 51820;
      while (rt.tableHasRoutes(rt.AF_INET, table) || rt.tableHasRoutes(rt.AF_INET6, table)) table++;
      await this.wg(["set", this.iface, "fwmark", String(table)]);
    }
    const family = prefix.includes(":") ? rt.AF_INET6 : rt.AF_INET;
    const proto = family === rt.AF_INET6 ? "-6" : "-4";
    const pf = family === rt.AF_INET6 ? "ip6" : "ip";
    this.echo(`ip ${proto} route add ${prefix} dev ${this.iface} table ${table}`);
    const p = this.ipPrefix(prefix, family);
    const idx = this.ifindex();
    this.netlink(() => rt.routeAdd(p, idx, table));
    this.echo(`ip ${proto} rule add not fwmark ${table} table ${table}`);
    this.netlink(() => rt.ruleAdd(family, { invert: true, fwmark: table, table }));
    this.echo(`ip ${proto} rule add table main suppress_prefixlength 0`);
    this.netlink(() => rt.ruleAdd(family, { table: rt.RT_TABLE_MAIN, suppressPrefixlen: 0 }));

    const addrs = rt.addrList(idx, family).map((a) => rt.formatAddr(a.prefix.addr));
    if (family === rt.AF_INET) {
      this.echo("sysctl -q net.ipv4.conf.all.src_valid_mark=1");
      try {
        writeFileSync("/proc/sys/net/ipv4/conf/all/src_valid_mark", "1\n");
      } catch {
        err('sysctl: permission denied on key "net.ipv4.conf.all.src_valid_mark"\n');
        this.fail(255);
      }
    }
    // `type -p nft` is asked anew each time, as the reference does.
    const nft = nftPath();
    const code =
      nft !== null
        ? await this.nft(nft, nftScript(pf, this.iface, table, addrs))
        : await this.iptablesRestore(pf, iptablesScript(this.iface, table, addrs));
    if (code !== 0) this.fail(code);
    this.haveSetFirewall = true;
  }

  /** `cmd nft -f <(echo -n SCRIPT)`. */
  async nft(nft: string, script: string): Promise<number> {
    this.echo("nft -f /dev/fd/63");
    return await nftApply(nft, script);
  }

  /** `echo -n SCRIPT | cmd iptables-restore -n` (ip6tables-restore for "ip6"); 127 when it is not in PATH. */
  async iptablesRestore(pf: "ip" | "ip6", script: string): Promise<number> {
    const name = `${xtables(pf)}-restore`;
    this.echo(`${name} -n`);
    const exe = Bun.which(name);
    if (exe === null) {
      this.notFound(name);
      return 127;
    }
    return await iptablesRestore(exe, name, script);
  }

  /**
   * The reference's remove_firewall: IF's nft tables if nft is in PATH, then, if iptables is,
   * IF's tagged rules of both families. `strict` (errexit, the teardown of `up`) stops at the
   * first failure; `down` runs it as `remove_firewall || true`, which goes on past failures.
   */
  async removeFirewall(strict: boolean): Promise<void> {
    const nft = nftPath();
    if (nft !== null) {
      const script = await nftRemovalScript(nft, this.iface);
      if (script !== "") {
        const code = await this.nft(nft, script);
        if (code !== 0 && strict) this.fail(code);
      }
    }
    if (Bun.which("iptables") === null) return;
    for (const pf of ["ip", "ip6"] as const) {
      const script = await iptablesRemovalScript(`${xtables(pf)}-save`, this.iface);
      if (script === null) continue;
      const code = await this.iptablesRestore(pf, script);
      if (code !== 0 && strict) this.fail(code);
    }
  }

  rulesText(family: number): string {
    try {
      return rt.ruleList(family).map(rt.ruleText).join("\n");
    } catch {
      return "";
    }
  }

  async delIf(): Promise<void> {
    if (this.haveSetDns) await this.unsetDns();
    if (this.haveSetFirewall) await this.removeFirewall(true);
    const table = this.o.table === "" || this.o.table === "auto" ? await this.getFwmark() : null;
    if (table !== null) {
      const allowed = (await this.wgShow("allowed-ips")) ?? "";
      if (/\/0( |\n|$)/.test(allowed)) {
        const name = rt.tableName(table);
        for (const [family, proto] of [
          [rt.AF_INET, "-4"],
          [rt.AF_INET6, "-6"],
        ] as const) {
          while (this.rulesText(family).includes(`lookup ${name}`)) {
            this.echo(`ip ${proto} rule delete table ${table}`);
            this.netlink(() => rt.ruleDel(family, { table }));
          }
          while (this.rulesText(family).includes("from all lookup main suppress_prefixlength 0")) {
            this.echo(`ip ${proto} rule delete table main suppress_prefixlength 0`);
            this.netlink(() => rt.ruleDel(family, { table: rt.RT_TABLE_MAIN, suppressPrefixlen: 0 }));
          }
        }
      }
    }
    this.echo(`ip link delete dev ${this.iface}`);
    const idx = this.ifindex();
    this.netlink(() => rt.linkDel(idx));
  }

  async saveConfig(): Promise<void> {
    let header = "[Interface]\n";
    const idx = rt.nameToIndex(this.iface);
    if (idx !== 0)
      for (const a of rt.addrList(idx)) header += `Address = ${rt.formatAddr(a.prefix.addr)}/${a.prefix.len}\n`;
    else err(`Device "${this.iface}" does not exist.\n`);
    const dm = this.dnsManager;
    if (dm.kind === "resolvectl") {
      // resolved keeps the domains too, routing ones with their `~`: nothing of DNS = is lost.
      for (const w of await resolvectlQuery(dm.exe, "dns", this.iface)) header += `DNS = ${w}\n`;
      for (const w of await resolvectlQuery(dm.exe, "domain", this.iface)) header += `DNS = ${w}\n`;
    } else {
      const dnsText = await resolvconfList(resolvconfIfacePrefix() + this.iface);
      for (const line of readLines(dnsText)) {
        const m = /^nameserver ([a-zA-Z0-9_=+:%.-]+)$/.exec(line);
        if (m) header += `DNS = ${m[1]}\n`;
      }
    }
    if (this.o.mtu !== "" && idx !== 0) {
      const link = rt.linkByIndex(idx);
      if (link) header += `MTU = ${link.mtu}\n`;
    }
    if (this.o.table !== "") header += `Table = ${this.o.table}\n`;
    if (this.o.saveConfig) header += "SaveConfig = true\n";
    for (const c of this.o.preUp) header += `PreUp = ${c}\n`;
    for (const c of this.o.postUp) header += `PostUp = ${c}\n`;
    for (const c of this.o.preDown) header += `PreDown = ${c}\n`;
    for (const c of this.o.postDown) header += `PostDown = ${c}\n`;

    this.echo(`wg showconf ${this.iface}`);
    const r = await getDevice(this.iface);
    if (!r.ok) {
      err(`Unable to access interface: ${wgStrerror(r.errno)}\n`);
      this.fail(1);
    }
    const current = showconfDevice(r.device).replace(/\n+$/, "");
    const marker = current.indexOf("[Interface]\n");
    const merged = marker < 0 ? current : current.slice(0, marker) + header + current.slice(marker + 12);
    const tmp = `${this.o.configFile}.tmp`;
    const tmpPath = Buffer.from(tmp, "latin1");
    const oldMask = process.umask(0o077);
    try {
      try {
        const fd = openSync(tmpPath, "w", 0o600);
        try {
          writeFileSync(fd, Buffer.from(`${merged}\n`, "latin1"));
          fsyncSync(fd);
        } finally {
          closeSync(fd);
        }
      } catch {
        try {
          unlinkSync(tmpPath);
        } catch {}
        die(this.o.prog, "Could not write configuration file");
      }
      try {
        renameSync(tmpPath, Buffer.from(this.o.configFile, "latin1"));
      } catch {
        try {
          unlinkSync(tmpPath);
        } catch {}
        die(this.o.prog, "Could not move configuration file");
      }
    } finally {
      process.umask(oldMask);
    }
  }

  /** `wg show IF allowed-ips` prefixes, in the order `sort -nr -k 2 -t /` leaves them. */
  async routePrefixes(): Promise<string[]> {
    const text = (await this.wgShow("allowed-ips")) ?? "";
    const list: string[] = [];
    for (const line of readLines(text)) {
      const rest = line.slice(line.search(/[ \t]|$/));
      for (const w of words(rest)) if (/^[0-9a-z:.]+\/[0-9]+$/.test(w)) list.push(w);
    }
    const num = (s: string) => Number(/^\d*/.exec(s.slice(s.indexOf("/") + 1))![0] || "0");
    return list.sort((a, b) => num(b) - num(a) || (a < b ? 1 : a > b ? -1 : 0));
  }

  async up(): Promise<void> {
    if (rt.linkGet(this.iface) !== null) die(this.o.prog, `\`${this.iface}' already exists`);
    const onInt = () => (this.interrupted ||= 130);
    const onTerm = () => (this.interrupted ||= 143);
    process.on("SIGINT", onInt);
    process.on("SIGTERM", onTerm);
    try {
      await this.executeHooks(this.o.preUp);
      await this.addIf();
      await this.setConfig();
      for (const a of this.o.addresses) this.addAddr(a);
      await this.setMtuUp();
      await this.setDns();
      for (const p of await this.routePrefixes()) await this.addRoute(p);
      await this.executeHooks(this.o.postUp);
      if (this.interrupted) throw new Exit(this.interrupted);
    } catch (e) {
      if (!(e instanceof Exit)) throw e;
      if (!this.interrupted) throw new Exit(await this.teardown(e.code));
      // bash runs the INT/TERM trap (del_if; exit) and then its EXIT trap, i.e. del_if again,
      // whose failure on the now missing link decides the status.
      throw new Exit(await this.teardown(await this.teardown(0)));
    } finally {
      process.off("SIGINT", onInt);
      process.off("SIGTERM", onTerm);
    }
  }

  /** The reference's EXIT trap: del_if, whose own failure (errexit) decides the status. */
  async teardown(code: number): Promise<number> {
    this.tearingDown = true;
    try {
      await this.delIf();
      return code;
    } catch (e) {
      if (e instanceof Exit) return e.code;
      throw e;
    }
  }

  async down(): Promise<void> {
    if (!(await this.isWgInterface())) die(this.o.prog, `\`${this.iface}' is not a WireGuard interface`);
    await this.executeHooks(this.o.preDown);
    if (this.o.saveConfig) await this.saveConfig();
    // resolved only knows live links, so its per-link setting goes before the link does.
    const viaResolved = this.o.dns.length > 0 && this.dnsManager.kind === "resolvectl";
    if (viaResolved) await this.unsetDns();
    await this.delIf();
    if (!viaResolved) {
      try {
        await this.unsetDns();
      } catch (e) {
        if (!(e instanceof Exit)) throw e;
      }
    }
    await this.removeFirewall(false);
    await this.executeHooks(this.o.postDown);
  }

  // ---- reload: bring a running interface to what `up` of the (changed) file would give ----

  /**
   * `wg syncconf` (peers whose settings did not change keep their sessions), then Address, MTU,
   * DNS and the routes of added/removed allowed IPs, each only where it differs. The link stays;
   * hooks do not run. Every value is checked before anything changes.
   */
  async reload(): Promise<void> {
    if (!(await this.isWgInterface())) die(this.o.prog, `\`${this.iface}' is not a WireGuard interface`);
    const idx = this.ifindex();
    const want = this.o.addresses.map((text) => {
      const family = text.includes(":") ? rt.AF_INET6 : rt.AF_INET;
      return { text, prefix: this.ipPrefix(text, family) };
    });
    let mtu: number | null = null;
    if (this.o.mtu !== "") {
      mtu = parseCInt(this.o.mtu);
      if (mtu === null) {
        err(`Error: argument "${this.o.mtu}" is wrong: Invalid "mtu" value\n\n`);
        this.fail(255);
      }
    }
    if (this.o.table !== "" && this.o.table !== "auto" && this.o.table !== "off") this.ipTable(this.o.table);
    const oldPrefixes = await this.routePrefixes();
    const oldAddrs = [rt.AF_INET, rt.AF_INET6].map((f) => this.addrTexts(idx, f).join(" "));
    // syncconf zeroes what the file leaves out. The fwmark of the default-route procedure must
    // stay (else the tunnel's own UDP loops into it), and so does a random port (peers keep
    // sending to it); `up` of the file would choose them anew, reload keeps the running ones.
    const keep: string[] = [];
    const lp = await this.wgShow("listen-port");
    if (!configHasKey(this.o.wgConfig, "listenport") && lp !== null && /^[1-9][0-9]*$/.test(lp.trim())) keep.push(`ListenPort = ${lp.trim()}`);
    const mark = await this.getFwmark();
    if (!configHasKey(this.o.wgConfig, "fwmark") && mark !== null) keep.push(`FwMark = ${mark}`);
    await this.syncConfig(keep);
    this.reloadAddresses(idx, want);
    await this.reloadMtu(idx, mtu);
    await this.reloadDns();
    await this.reloadRoutes(idx, oldPrefixes, oldAddrs);
  }

  /** `wg syncconf IF` of the wg part, with `extra` lines added to its [Interface] section. */
  async syncConfig(extra: readonly string[]): Promise<void> {
    this.echo(`wg syncconf ${this.iface} /dev/fd/63`);
    let text = this.o.wgConfig;
    if (extra.length) {
      const lines = readLines(text);
      const at = lines.findIndex((l) => trimSpace(l.replace(/#.*/, "")).toLowerCase() === "[interface]");
      if (at < 0) lines.unshift("[Interface]", ...extra);
      else lines.splice(at + 1, 0, ...extra);
      text = lines.map((l) => `${l}\n`).join("");
    }
    const f = memfdWith(Buffer.from(`${text}\n`, "latin1"));
    try {
      const code = await wgMain("wg", ["syncconf", this.iface, f.path]);
      if (code !== 0) this.fail(code);
    } finally {
      f.close();
    }
  }

  addrTexts(idx: number, family: number): string[] {
    return rt.addrList(idx, family).map((a) => rt.formatAddr(a.prefix.addr));
  }

  /** Adds the file's new addresses, then removes the ones it no longer has (the kernel's IPv6 link-local stays). */
  reloadAddresses(idx: number, want: readonly { text: string; prefix: rt.Prefix }[]): void {
    const present = () => rt.addrList(idx).map((a) => a.prefix);
    const addMissing = () => {
      const have = present();
      for (const w of want) {
        if (have.some((h) => samePrefix(h, w.prefix))) continue;
        this.addAddr(w.text);
        have.push(w.prefix);
      }
    };
    // Adding first: removing the last IPv4 address would flush every IPv4 route of the link.
    addMissing();
    for (const h of present()) {
      if (want.some((w) => samePrefix(h, w.prefix))) continue;
      if (h.family === rt.AF_INET6 && h.addr[0] === 0xfe && (h.addr[1]! & 0xc0) === 0x80) continue;
      this.echo(`ip ${h.family === rt.AF_INET6 ? "-6" : "-4"} address del ${rt.formatAddr(h.addr)}/${h.len} dev ${this.iface}`);
      this.netlink(() => rt.addrDel(idx, h));
    }
    // Removing a primary IPv4 address takes its secondaries along unless promote_secondaries is set.
    addMissing();
  }

  async reloadMtu(idx: number, mtu: number | null): Promise<void> {
    const target = mtu ?? (await this.autoMtu(idx));
    if (rt.linkByIndex(idx)?.mtu === target) return;
    this.echo(`ip link set mtu ${mtu !== null ? this.o.mtu : target} up dev ${this.iface}`);
    this.netlink(() => rt.linkSet(idx, { mtu: target, up: true }));
  }

  /** Re-applies DNS only if the resolver's record for the link differs from the file's. */
  async reloadDns(): Promise<void> {
    const hasDns = this.o.dns.length > 0;
    const m = this.dnsManager;
    if (m.kind === "resolvectl") {
      const servers = await resolvectlQuery(m.exe, "dns", this.iface);
      const domains = await resolvectlQuery(m.exe, "domain", this.iface);
      const wantServers = hasDns ? this.o.dns : [];
      const wantDomains = hasDns ? this.o.dnsSearch : [];
      if (servers.join(" ") === wantServers.join(" ") && domains.join(" ") === wantDomains.join(" ")) return;
      if (servers.length || domains.length) await this.resolvectlRevert(m.exe);
      if (hasDns) await this.resolvectlSet(m.exe);
      return;
    }
    if (m.kind === "missing") {
      if (hasDns) await this.setDns(); // prints what to install, status 127
      return;
    }
    const name = resolvconfIfacePrefix() + this.iface;
    const record = (text: string) =>
      readLines(text)
        .filter((l) => /^(nameserver|search)[ \t]/.test(l))
        .map((l) => words(l).join(" "))
        .join("\n");
    const current = record(await resolvconfList(name));
    let wanted = this.o.dns.map((s) => `nameserver ${s}`).join("\n");
    if (hasDns && this.o.dnsSearch.length) wanted += `\nsearch ${this.o.dnsSearch.join(" ")}`;
    if (current === wanted) return;
    if (hasDns) return await this.setDns();
    this.echo(`resolvconf -d ${name} -f`);
    const code = await resolvconfDel(name);
    if (code !== 0) this.fail(code);
  }

  /** The link's exact route P in table T (`ip route show table T dev IF exact P`). */
  routeExists(p: rt.Prefix, idx: number, table: number): boolean {
    return rt.routeList(p.family).some((r) => r.table === table && r.oif === idx && samePrefix(r.dst, p));
  }

  /** Routes of allowed IPs that went away are deleted, new ones added as `up` adds them. */
  async reloadRoutes(idx: number, oldPrefixes: readonly string[], oldAddrs: readonly string[]): Promise<void> {
    const table = this.o.table;
    if (table === "off") return;
    const custom = table !== "" && table !== "auto";
    const t = custom ? this.ipTable(table) : rt.RT_TABLE_MAIN;
    const now = await this.routePrefixes();
    const fwmark = custom ? null : await this.getFwmark();
    const famOf = (p: string) => (p.includes(":") ? rt.AF_INET6 : rt.AF_INET);
    const protoOf = (f: number) => (f === rt.AF_INET6 ? "-6" : "-4");

    for (const p of oldPrefixes) {
      if (now.includes(p)) continue;
      const family = famOf(p);
      const pp = rt.parsePrefix(p, family);
      if (!pp) continue;
      if (!custom && p.endsWith("/0")) {
        if (fwmark !== null) await this.removeDefault(idx, p, pp, fwmark);
      } else if (this.routeExists(pp, idx, t)) {
        this.echo(`ip ${protoOf(family)} route del ${p} dev ${this.iface}${custom ? ` table ${table}` : ""}`);
        this.netlink(() => rt.routeDel(pp, idx, t));
      }
    }

    for (const p of now) {
      const family = famOf(p);
      const pp = rt.parsePrefix(p, family);
      if (!pp) continue;
      if (custom) {
        if (!this.routeExists(pp, idx, t)) await this.addRoute(p);
      } else if (!p.endsWith("/0")) {
        await this.addRoute(p);
      } else if (fwmark === null || !oldPrefixes.includes(p)) {
        await this.addDefault(p);
      } else {
        // Already routed: the route goes with the family's last address; the firewall names the addresses.
        if (!this.routeExists(pp, idx, fwmark)) {
          this.echo(`ip ${protoOf(family)} route add ${p} dev ${this.iface} table ${fwmark}`);
          this.netlink(() => rt.routeAdd(pp, idx, fwmark));
        }
        const addrs = this.addrTexts(idx, family);
        if (addrs.join(" ") !== oldAddrs[family === rt.AF_INET6 ? 1 : 0]) await this.replaceFirewall(family, fwmark, addrs);
      }
    }

    // `up` of this file would leave no fwmark: only a default route makes one up.
    const mark = custom ? null : await this.getFwmark();
    if (mark !== null && !now.some((p) => p.endsWith("/0")) && !configHasKey(this.o.wgConfig, "fwmark")) {
      await this.wg(["set", this.iface, "fwmark", "0"]);
    }
  }

  /** Undoes the default-route procedure for one family: route, both rules, the family's firewall rules. */
  async removeDefault(idx: number, p: string, pp: rt.Prefix, table: number): Promise<void> {
    const family = pp.family;
    const proto = family === rt.AF_INET6 ? "-6" : "-4";
    if (this.routeExists(pp, idx, table)) {
      this.echo(`ip ${proto} route del ${p} dev ${this.iface} table ${table}`);
      this.netlink(() => rt.routeDel(pp, idx, table));
    }
    const name = rt.tableName(table);
    while (this.rulesText(family).includes(`lookup ${name}`)) {
      this.echo(`ip ${proto} rule delete table ${table}`);
      this.netlink(() => rt.ruleDel(family, { table }));
    }
    while (this.rulesText(family).includes("from all lookup main suppress_prefixlength 0")) {
      this.echo(`ip ${proto} rule delete table main suppress_prefixlength 0`);
      this.netlink(() => rt.ruleDel(family, { table: rt.RT_TABLE_MAIN, suppressPrefixlen: 0 }));
    }
    await this.replaceFirewall(family, table, null);
  }

  /**
   * Deletes the family's wg-quick firewall rules (nft table, tagged iptables rules: whichever
   * `down` would remove) and, given addresses, creates them anew for them the way `up` would:
   * with nft if it is in PATH, else with iptables-restore. Removal and creation go in one
   * transaction (one `nft -f`, or one `iptables-restore -n` commit per table).
   */
  async replaceFirewall(family: number, table: number, addrs: readonly string[] | null): Promise<void> {
    const nft = nftPath();
    const pf = family === rt.AF_INET6 ? "ip6" : "ip";
    const xtRemoval = Bun.which("iptables") !== null ? await iptablesRemovalScript(`${xtables(pf)}-save`, this.iface) : null;
    if (nft === null) {
      if (xtRemoval === null && addrs === null) return;
      const script = mergeRestoreScripts(xtRemoval ?? "", addrs === null ? "" : iptablesScript(this.iface, table, addrs));
      const code = await this.iptablesRestore(pf, script);
      if (code !== 0) this.fail(code);
      return;
    }
    const removal = (await nftRemovalScript(nft, this.iface))
      .split("\n")
      .filter((l) => l.startsWith(`delete table ${pf} `))
      .map((l) => `${l}\n`)
      .join("");
    const script = removal + (addrs === null ? "" : nftScript(pf, this.iface, table, addrs));
    if (script !== "") {
      const code = await this.nft(nft, script);
      if (code !== 0) this.fail(code);
    }
    if (xtRemoval !== null) {
      const code = await this.iptablesRestore(pf, xtRemoval);
      if (code !== 0) this.fail(code);
    }
  }

  async save(): Promise<void> {
    if (!(await this.isWgInterface())) die(this.o.prog, `\`${this.iface}' is not a WireGuard interface`);
    await this.saveConfig();
  }
}

function samePrefix(a: rt.Prefix, b: rt.Prefix): boolean {
  if (a.family !== b.family || a.len !== b.len || a.addr.length !== b.addr.length) return false;
  for (let i = 0; i < a.addr.length; i++) if (a.addr[i] !== b.addr[i]) return false;
  return true;
}

/** The [Interface] section of the wg part sets `key` (lower case), e.g. FwMark: then it is the user's. */
function configHasKey(wgConfig: string, key: string): boolean {
  let inInterface = false;
  for (const line of readLines(wgConfig)) {
    const stripped = line.replace(/#.*/, "");
    const k = trimSpace(stripped.split("=")[0]!).toLowerCase();
    if (k.startsWith("[")) inInterface = k === "[interface]";
    else if (inInterface && k === key && stripped.includes("=")) return true;
  }
  return false;
}

/** A C integer as strtol(..., 0) reads it, the whole string consumed (ip's get_integer). */
function parseCInt(s: string): number | null {
  let v: number;
  if (/^[+-]?0[xX][0-9a-fA-F]+$/.test(s)) v = parseInt(s, 16);
  else if (/^[+-]?0[0-7]*$/.test(s)) v = parseInt(s, 8);
  else if (/^[+-]?[1-9][0-9]*$/.test(s)) v = parseInt(s, 10);
  else return null;
  return v >= -0x80000000 && v <= 0x7fffffff ? v >>> 0 : null;
}

/** Re-run ourselves under sudo when not root, as the reference does (even for strip). */
function autoSu(prog: string, args: string[]): number | null {
  if (process.getuid?.() === 0) return null;
  const sudo = Bun.which("sudo");
  if (sudo === null) {
    err(`${prog}: must be run as root, and sudo is not installed\n`);
    return 127;
  }
  // Through sudo the name we were run by is lost; the `wg-quick` word selects the tool instead.
  const self = selfCommand("wg-quick", args);
  const p = Bun.spawnSync([sudo, "-p", `${prog} must be run as root. Please enter the password for %u to continue: `, "--", ...self.cmd], {
    stdin: "inherit",
    stdout: "inherit",
    stderr: "inherit",
  });
  return p.exitCode ?? 1;
}

/** `wg-quick` with argv[0] = argv0 (its basename prefixes messages) and the remaining arguments. */
export async function wgQuickMain(argv0: string, args: string[]): Promise<number> {
  const prog = basename(argv0) || "wg-quick";
  if (args.length === 1 && (args[0] === "--help" || args[0] === "-h" || args[0] === "help")) {
    usage(prog);
    return 0;
  }
  const cmd = args[0];
  // `reload` is ours; the usage text stays the reference's byte for byte.
  if (args.length !== 2 || (cmd !== "up" && cmd !== "down" && cmd !== "save" && cmd !== "strip" && cmd !== "reload")) {
    usage(prog);
    return 1;
  }
  const su = autoSu(prog, args);
  if (su !== null) return su;
  // bash's `$0` for a script found in PATH is the path it was found at.
  const shellName = argv0.includes("/") ? argv0 : (Bun.which(argv0) ?? argv0);
  // The reference exports LC_ALL=C and puts its own directory first in PATH, so hooks (and the
  // tools it runs) see the `wg` installed next to it.
  process.env.LC_ALL = "C";
  const self = selfCommand("wg", []);
  if (self.cmd.length === 1) process.env.PATH = `${dirname(self.cmd[0]!)}:${process.env.PATH ?? ""}`;
  try {
    const o = parseOptions(prog, args[1]!);
    const s = new Session(o, shellName);
    switch (cmd) {
      case "up":
        await s.up();
        break;
      case "down":
        await s.down();
        break;
      case "save":
        await s.save();
        break;
      case "reload":
        await s.reload();
        break;
      case "strip":
        process.stdout.write(Buffer.from(`${o.wgConfig}\n`, "latin1"));
        break;
    }
    return 0;
  } catch (e) {
    if (e instanceof Exit) return e.code;
    throw e;
  } finally {
    rt.closeRtnetlink();
  }
}

