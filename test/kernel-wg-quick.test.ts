// wg-quick on the kernel path, against the real WireGuard module in the qemu guest of
// test/lib-vm.ts: the reference /usr/bin/wg-quick (driving /usr/bin/wg over netlink) and ours
// (our compiled executable copied into the guest, its directory first in PATH so hooks run our
// wg too) bring the same configurations up and down in twin network namespaces of the guest.
// Compared as in test/wg-quick.test.ts (its snapshot and normalisation, test/lib-quick.ts):
// printed lines and status, addresses, routes of all tables, rules, nft ruleset, the device
// read back by the real `wg showconf`, resolvconf and hook logs, saved files; each side's
// `down` restores its namespace exactly, and each side's link is a kernel link of kind
// wireguard with no UAPI socket. Then ours alone: `reload` between two of those configurations
// ends in the reference's state for each; WG_QUICK_PREFER_USERSPACE=1 starts our daemon (a TUN
// and a UAPI socket) though the module is there; and pings flow through a tunnel ours brings up
// to a peer namespace configured with the real wg.
//
// Speed: every process start in the emulated guest is slow (ours takes seconds), so each run of
// one side is ONE guest script writing its results into the shared directory, and a few runs go
// at once: the reference's while our executable is being copied into the guest, then ours.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { generatePrivateKey, publicKey } from "../core/crypto.ts";
import { keyToBase64 } from "../core/encoding.ts";
import type { Lab } from "./netns.ts";
import { type Vm, bootTestVm, stopTestVm, guestExecutable } from "./lib-vm.ts";
import {
  CARRIER_ARRIVED,
  HOST_NS_SETUP,
  type Snapshot,
  fullConfig,
  normSnapshot,
  normState,
  resolvconfStub,
  shq,
  sortPeers,
  splitConfig,
} from "./lib-quick.ts";

const b64 = (k: Uint8Array) => keyToBase64(k);
const pair = () => {
  const k = generatePrivateKey();
  return { priv: b64(k), pub: b64(publicKey(k)) };
};
const KEYS = { priv: pair().priv, peer1: pair().pub, peer2: pair().pub };
/** Kernel links live in their namespace: every twin run uses this name. */
const IF = "wgq0";
/** The userspace run's name: UAPI sockets (/var/run/wireguard) are shared by all namespaces. */
const IF_USER = "wgu0";

const HOOKS = [
  'PreUp = echo "preup %i" >> %LOG',
  'PostUp = echo "postup %i $INTERFACE" >> %LOG # trailing comment',
  "PostUp = command -v wg >> %LOG",
  "PostUp = wg show %i listen-port >> %LOG",
  "PreDown = wg show %i allowed-ips | sort >> %LOG",
  'PostDown = echo "postdown %i" >> %LOG',
].join("\n");
const noDns = (c: string) => c.replace(/^DNS.*\n/m, "");
const withInterfaceLines = (c: string, lines: string) => c.replace("[Peer]", `${lines}\n[Peer]`);

const SPLIT = withInterfaceLines(splitConfig(KEYS), HOOKS);
const FULL = fullConfig(KEYS);

interface Scenario {
  /** Short name: the runs' ids. */
  id: string;
  title: string;
  /** The configuration; %LOG becomes the hook log's path. */
  conf: string;
  /** wg-quick commands run while up (after the snapshot). */
  whileUp?: string[];
}

const SCENARIOS: Scenario[] = [
  {
    id: "split",
    title: "split tunnel: IPv4+IPv6 addresses, DNS, MTU auto from the endpoint's route, hooks (our wg in PATH); strip while up",
    conf: SPLIT,
    whileUp: ["strip"],
  },
  {
    id: "table",
    title: "MTU explicit, Table = 1234, SaveConfig: save and strip while up, the file rewritten on down",
    conf: withInterfaceLines(splitConfig(KEYS), "MTU = 1280\nTable = 1234\nSaveConfig = true\nPostUp = true\n# a comment"),
    whileUp: ["save", "strip"],
  },
  {
    id: "off",
    title: "Table = off: no routes; MTU auto from a route with an mtu metric",
    conf: withInterfaceLines(noDns(splitConfig(KEYS)).replace("198.51.100.1:51820", "203.0.113.5:51820"), "Table = off"),
  },
  {
    id: "full",
    title: "full tunnel IPv4+IPv6: fwmark, table 51820, suppress_prefixlength rules, nft, src_valid_mark",
    conf: FULL,
  },
];
const scenario = (id: string) => SCENARIOS.find((s) => s.id === id)!;

// ---- the guest side --------------------------------------------------------------------------

let lab: Lab;
let vm: Vm;
/** Our executable in the guest (its directory also has wg-quick). */
let exeReady: Promise<string>;
const PATH_TAIL = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

type SideName = "orig" | "ours";

interface RunSpec {
  /** Unique per run: names the namespace (kq-ID), the guest's work dir and the result dir. */
  id: string;
  side: SideName;
  iface: string;
  /** Configuration versions c0, c1, ...; c0 is in place before the steps. */
  confs: string[];
  env?: Record<string, string>;
  /** Shell lines of the run (see `step`). */
  steps: string[];
}

/** Building blocks of RunSpec.steps. */
const step = {
  /** `wg-quick ARGS CONF` of the run's side; NAME.code, .out, .err. */
  quick: (name: string, verb: string) => `q ${name} ${verb} "$CONF"`,
  /** The namespace's state (GUEST_SNAPSHOT). */
  snap: (name: string) => `snap ${name}`,
  /** The device read by the real wg, its UAPI socket, the resolvconf record. */
  probe: (name: string) => `probe ${name}`,
  /** Configuration version i in place of the file. */
  put: (i: number) => `(umask 077; cat "$I/c${i}.conf" > "$CONF")`,
};

const guestDir = (id: string) => `/tmp/kq/${id}`;
const inDir = (id: string) => join(vm.shared, "in", id);
const outDir = (id: string) => join(vm.shared, "out", id);

/**
 * The guest's snapshot: what lib-quick's SNAPSHOT_COMMANDS show but the link list (`ip -d addr`
 * has the links, with their kind) and iptables (wg-quick uses it only where nft is missing), in
 * three processes (each one is slow in the guest): one `ip -d -batch` for addresses, routes of
 * both families and IPv4 rules, then IPv6 rules, then nft. NAME.ip, NAME.rules6, NAME.nft.
 */
const GUEST_SNAPSHOT = `snap() {
  printf '%s\\n' 'addr show' 'route show table all' 'rule show' | ip -d -batch - > "$O/$1.ip" 2>&1
  ip -d -6 rule > "$O/$1.rules6" 2>&1
  nft list ruleset > "$O/$1.nft" 2>&1
}`;
type GuestSnapshot = Pick<Snapshot, "addrs" | "routes" | "rules" | "nft">;

/** The sections of the batch's output: link and address lines, route lines (`-d` starts each with its type), rule lines (`PRIORITY:<tab>`). */
function splitIpBatch(text: string): { addrs: string; routes: string; rules: string } {
  const lines = text.split("\n");
  let i = 0;
  while (i < lines.length && /^(\d+: |\s)/.test(lines[i]!)) i++;
  let j = i;
  while (j < lines.length && !/^\d+:\t/.test(lines[j]!)) j++;
  const part = (a: number, b: number) => lines.slice(a, b).map((l) => `${l}\n`).join("");
  return { addrs: part(0, i), routes: part(i, j), rules: part(j, lines.length).replace(/\n$/, "") };
}

function innerScript(r: RunSpec, wgQuick: string): string {
  return `set -u
R=${guestDir(r.id)} O=${outDir(r.id)} I=${inDir(r.id)}
CONF=$R/${r.iface}.conf
export RC_STATE=$R/state PATH=${r.side === "ours" ? `${wgQuick.replace(/\/[^/]+$/, "")}:` : ""}${vm.shared}/bin:${PATH_TAIL}
${Object.entries(r.env ?? {})
  .map(([k, v]) => `export ${k}=${shq(v)}`)
  .join("\n")}
${GUEST_SNAPSHOT}
q() { n=$1; shift; ${wgQuick} "$@" > "$O/$n.out" 2> "$O/$n.err"; echo $? > "$O/$n.code"; }
probe() {
  /usr/bin/wg showconf ${r.iface} > "$O/$1.showconf" 2>&1
  [ -e /var/run/wireguard/${r.iface}.sock ] && echo ${r.iface}.sock > "$O/$1.sockets"
  [ "$1" = up ] && [ -n "\${WG_QUICK_PREFER_USERSPACE-}" ] && /usr/bin/wg show interfaces > "$O/$1.interfaces" 2>&1
  [ -e "$RC_STATE/if-${r.iface}" ] && cat "$RC_STATE/if-${r.iface}" > "$O/$1.dns"
}
ip link set lo up
${HOST_NS_SETUP.join(" && \\\n")} || exit 90
i=0; until ${CARRIER_ARRIVED}; do i=$((i+1)); [ $i -lt 500 ] || exit 91; sleep 0.02; done
snap before
${step.put(0)}
${r.steps.join("\n")}
i=0; while [ -e /var/run/wireguard/${r.iface}.sock ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done
read v < /proc/sys/net/ipv4/conf/all/src_valid_mark && echo "$v" > "$O/sysctl"
snap after
cat "$CONF" > "$O/conf.after"
for f in resolvconf.log hooks.log; do cat "$RC_STATE/$f" > "$O/$f" 2>/dev/null; done
exit 0
`;
}

/** `v` with every string in it (deeply) passed through `f`. */
function mapStrings<T>(v: T, f: (s: string) => string): T {
  if (typeof v === "string") return f(v) as T;
  if (v === null || typeof v !== "object") return v;
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, mapStrings(x, f)])) as T;
}

/**
 * Guest runs at a time: the guest's two CPUs stay busy while a run waits on 9p or a child
 * process; more runs would only share them.
 */
const PARALLEL = 3;
let running = 0;
const waiting: (() => void)[] = [];
/** `f` once fewer than PARALLEL guest runs are going on, in the order asked. */
async function inTurn<T>(f: () => Promise<T>): Promise<T> {
  if (running >= PARALLEL) await new Promise<void>((go) => waiting.push(go));
  running++;
  try {
    return await f();
  } finally {
    running--;
    waiting.shift()?.();
  }
}

/** One side's run in the guest; resolves with an accessor of its result files. */
async function play(r: RunSpec): Promise<Results> {
  const wgQuick = r.side === "ours" ? `${await exeReady}-quick` : "/usr/bin/wg-quick";
  mkdirSync(inDir(r.id), { recursive: true });
  mkdirSync(outDir(r.id), { recursive: true });
  r.confs.forEach((c, i) => writeFileSync(join(inDir(r.id), `c${i}.conf`), c.replaceAll("%LOG", `${guestDir(r.id)}/state/hooks.log`)));
  writeFileSync(join(inDir(r.id), "inner.sh"), innerScript(r, wgQuick));
  const ns = `kq-${r.id}`;
  await inTurn(async () => {
    const t0 = Date.now();
    const res = await vm.sh(
      `rm -rf ${guestDir(r.id)} && mkdir -p ${guestDir(r.id)}/state && ip netns add ${ns} && ip netns exec ${ns} /bin/sh ${inDir(r.id)}/inner.sh; rc=$?; ip netns del ${ns}; exit $rc`,
      { timeoutMs: 280_000 },
    );
    if (res.code !== 0) throw new Error(`guest run ${r.id}: exit ${res.code}\n${res.stderr}${res.stdout}`);
    console.log(`  run ${r.id}: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  });
  return new Results(r, ns);
}

/** A run's result files, normalised: its work dir and namespace name are the same for twins. */
class Results {
  constructor(
    readonly spec: RunSpec,
    readonly ns: string,
  ) {}

  file(name: string): string | null {
    try {
      return readFileSync(join(outDir(this.spec.id), name), "latin1").replaceAll(guestDir(this.spec.id), "/tmp/kq/RUN");
    } catch {
      return null;
    }
  }

  /** `wg-quick` step NAME: status and output. */
  quick(name: string) {
    return { code: Number(this.file(`${name}.code`)), stdout: this.file(`${name}.out`), stderr: this.file(`${name}.err`) };
  }

  snap(name: string): GuestSnapshot {
    const missing = (f: string) => `(missing ${name}.${f})`;
    const ip = splitIpBatch(this.file(`${name}.ip`) ?? missing("ip"));
    const rules = ip.rules + (this.file(`${name}.rules6`) ?? missing("rules6"));
    return normSnapshot({ ...ip, rules, nft: this.file(`${name}.nft`) ?? missing("nft") }, this.ns);
  }

  probe(name: string) {
    return {
      showconf: sortPeers(normState(this.file(`${name}.showconf`) ?? "", this.ns)),
      interfaces: this.file(`${name}.interfaces`),
      dns: this.file(`${name}.dns`),
    };
  }

  /** What kind of link the run's interface was in snapshot NAME (`ip -d` shows it), and its UAPI socket. */
  kind(name: string) {
    const block = this.snap(name).addrs.split(/\n(?=N: )/).find((b) => b.startsWith(`N: ${this.spec.iface}:`)) ?? "(no link)";
    const kind = /\n {4}wireguard /.test(block) ? "wireguard" : /\n {4}tun type tun /.test(block) ? "tun" : block;
    return { kind, sockets: this.file(`${name}.sockets`) ?? "" };
  }
}

/** The twin run of a scenario for one side. */
const twinId = (s: Scenario, side: SideName) => `${s.id}-${side}`;

function scenarioRun(s: Scenario, side: SideName): RunSpec {
  const id = twinId(s, side);
  const steps = [step.quick("up", "up"), step.snap("up"), step.probe("up")];
  for (const [i, c] of (s.whileUp ?? []).entries()) steps.push(step.quick(`while${i}`, c));
  steps.push(step.quick("down", "down"));
  return { id, side, iface: IF, confs: [s.conf], steps };
}

/** The hook log, where a hook printed the `wg` it finds (ours, `exe`, first in PATH) as the reference's. */
const hooksLog = (r: Results, exe: string) => r.file("hooks.log")?.replaceAll(`\n${exe}\n`, "\n/usr/bin/wg\n") ?? null;

/** Everything a twin comparison looks at. */
function summary(r: Results, s: Scenario, exe: string) {
  return {
    up: r.quick("up"),
    upState: r.snap("up"),
    upProbe: r.probe("up"),
    whileUp: (s.whileUp ?? []).map((_, i) => r.quick(`while${i}`)),
    down: r.quick("down"),
    sysctl: r.file("sysctl"),
    resolvconf: r.file("resolvconf.log"),
    hooks: hooksLog(r, exe),
    confAfter: sortPeers(normState(r.file("conf.after") ?? "", r.ns)),
  };
}

const runs = new Map<string, Promise<Results>>();
/** Starts a run at once; tests await it by id (a failure shows in the test that awaits it). */
function start(r: RunSpec): void {
  const p = play(r);
  p.catch(() => {});
  runs.set(r.id, p);
}
const result = (id: string) => runs.get(id)!;

// ---- ours alone: reload, the userspace preference, traffic -----------------------------------

/** Ours: up split, reload to full, reload back to split, down. */
const reloadRun = (): RunSpec => ({
  id: "reload",
  side: "ours",
  iface: IF,
  confs: [scenario("split").conf, scenario("full").conf],
  steps: [
    step.quick("up", "up"),
    step.put(1),
    step.quick("reload1", "reload"),
    step.snap("b"),
    step.probe("b"),
    step.put(0),
    step.quick("reload2", "reload"),
    step.snap("a2"),
    step.probe("a2"),
    step.quick("down", "down"),
  ],
});

/** Ours with WG_QUICK_PREFER_USERSPACE=1: the split scenario on our daemon. */
const userspaceRun = (): RunSpec => ({
  id: "user",
  side: "ours",
  iface: IF_USER,
  confs: [scenario("split").conf],
  env: { WG_QUICK_PREFER_USERSPACE: "1", WG_WARMUP_PACKETS: "0" },
  steps: [step.quick("up", "up"), step.snap("up"), step.probe("up"), step.quick("down", "down")],
});

// The traffic run: the client namespace (ours, full tunnel) and a peer namespace (kernel link
// configured with the real wg) joined by a veth; pings through the tunnel, a reload that keeps
// the peer (its transfer counters go on: removing it would zero them, and the kernel keeps the
// sessions of a peer that stays under the same private key), down. Not the handshake time:
// under load an initiation retransmitted while the first response was on its way completes
// late and moves it.
const SERVER = pair();
const CLIENT = pair();
const trafficConf = (extra: string) => `[Interface]
PrivateKey = ${CLIENT.priv}
Address = 10.80.0.2/32, fd80::2/128
[Peer]
PublicKey = ${SERVER.pub}
Endpoint = 10.200.0.1:51820
AllowedIPs = 0.0.0.0/0, ::/0
${extra}`;
const TRAFFIC_CONFS = [trafficConf(""), trafficConf(`[Peer]\nPublicKey = ${KEYS.peer2}\nAllowedIPs = 10.81.0.0/24\n`)];

function trafficScript(wgQuick: string): string {
  const id = "traffic";
  const [c, p] = [`kq-${id}-c`, `kq-${id}-p`];
  const inC = (cmd: string) => `ip netns exec ${c} ${cmd}`;
  const inP = (cmd: string) => `ip netns exec ${p} ${cmd}`;
  const O = outDir(id);
  const conf = `${guestDir(id)}/wgt0.conf`;
  const quick = (n: string, verb: string) => `${inC(`${wgQuick} ${verb} ${conf}`)} > ${O}/${n}.out 2> ${O}/${n}.err; echo $? > ${O}/${n}.code`;
  const put = (i: number) => `(umask 077; cat ${inDir(id)}/c${i}.conf > ${conf})`;
  const transfer = (n: string) => `${inC("/usr/bin/wg show wgt0 transfer")} > ${O}/${n}`;
  return [
    `rm -rf ${guestDir(id)} && mkdir -p ${guestDir(id)} && ip netns add ${c} && ip netns add ${p} || exit 90`,
    `export PATH=${wgQuick.replace(/\/[^/]+$/, "")}:${PATH_TAIL}`,
    `ip link add up0 netns ${c} type veth peer name up0 netns ${p} || exit 90`,
    `${inC("sh -c 'ip link set lo up && ip addr add 10.200.0.2/24 dev up0 && ip link set up0 up'")} || exit 90`,
    `${inP("sh -c 'ip link set lo up && ip addr add 10.200.0.1/24 dev up0 && ip link set up0 up'")} || exit 90`,
    `(umask 077; echo ${SERVER.priv} > ${guestDir(id)}/server.key)`,
    inP(
      `sh -c 'ip link add wgp type wireguard && /usr/bin/wg set wgp private-key ${guestDir(id)}/server.key listen-port 51820 ` +
        `peer ${CLIENT.pub} allowed-ips 10.80.0.2/32,fd80::2/128 && ip addr add 10.80.0.1/24 dev wgp && ` +
        `ip addr add fd80::1/64 dev wgp nodad && ip link set wgp up'`,
    ) + " || exit 90",
    put(0),
    quick("up", "up"),
    // ping's status is 0 once a reply came back.
    `${inC("ping -c 2 -i 0.3 -W 5 10.80.0.1")} > ${O}/ping4 2>&1; echo $? >> ${O}/ping4`,
    `${inC("ping -6 -c 2 -i 0.3 -W 5 fd80::1")} > ${O}/ping6 2>&1; echo $? >> ${O}/ping6`,
    `${inC("ip route get 10.80.0.1")} > ${O}/route-inner 2>&1`,
    `${inC("ip route get 10.200.0.1")} > ${O}/route-endpoint 2>&1`,
    `${inP("/usr/bin/wg show wgp transfer")} > ${O}/transfer-peer`,
    `${inC("ip -d -o link show dev wgt0")} > ${O}/link`,
    transfer("transfer1"),
    put(1),
    quick("reload", "reload"),
    transfer("transfer2"),
    `${inC("ping -c 2 -i 0.3 -W 5 10.80.0.1")} > ${O}/ping4b 2>&1; echo $? >> ${O}/ping4b`,
    quick("down", "down"),
    `${inC("ping -c 1 -W 1 10.80.0.1")} > ${O}/pingdown 2>&1; echo $? >> ${O}/pingdown`,
    `ip netns del ${c}; ip netns del ${p}`,
    "exit 0",
  ].join("\n");
}

async function playTraffic(): Promise<(name: string) => string> {
  const id = "traffic";
  const wgQuick = `${await exeReady}-quick`;
  mkdirSync(inDir(id), { recursive: true });
  mkdirSync(outDir(id), { recursive: true });
  TRAFFIC_CONFS.forEach((c, i) => writeFileSync(join(inDir(id), `c${i}.conf`), c));
  await inTurn(async () => {
    const t0 = Date.now();
    const res = await vm.sh(trafficScript(wgQuick), { timeoutMs: 280_000 });
    if (res.code !== 0) throw new Error(`guest traffic run: exit ${res.code}\n${res.stderr}${res.stdout}`);
    console.log(`  run ${id}: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  });
  return (name) => readFileSync(join(outDir(id), name), "latin1");
}
let traffic: Promise<(name: string) => string>;

// ---- setup -----------------------------------------------------------------------------------

beforeAll(async () => {
  ({ lab, vm } = await bootTestVm("kvmquick"));
  mkdirSync(join(vm.shared, "bin"));
  writeFileSync(join(vm.shared, "bin", "resolvconf"), resolvconfStub("$RC_STATE"), { mode: 0o755 });
  const t0 = Date.now();
  exeReady = guestExecutable(vm).then((exe) => {
    console.log(`  our executable in the guest after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    return exe;
  });
  exeReady.catch(() => {});
  for (const s of SCENARIOS) start(scenarioRun(s, "orig"));
  for (const s of SCENARIOS) start(scenarioRun(s, "ours"));
  start(reloadRun());
  start(userspaceRun());
  traffic = playTraffic();
  traffic.catch(() => {});
}, 150_000);

afterAll(async () => {
  await Promise.allSettled([...runs.values(), traffic]);
  await stopTestVm(lab, vm);
}, 120_000);

const TIMEOUT = 600_000;

// ---- the tests -------------------------------------------------------------------------------

describe("wg-quick on the kernel module: reference vs ours in twin namespaces of the guest", () => {
  for (const s of SCENARIOS) {
    test(s.title, async () => {
      const [orig, ours] = await Promise.all([result(twinId(s, "orig")), result(twinId(s, "ours"))]);
      for (const r of [orig, ours]) {
        // The kernel's link, no daemon; down restores the namespace.
        expect({ side: r.spec.side, ...r.kind("up") }).toEqual({ side: r.spec.side, kind: "wireguard", sockets: "" });
        expect({ side: r.spec.side, ...r.snap("after") }).toEqual({ side: r.spec.side, ...r.snap("before") });
      }
      const exe = await exeReady;
      const o = summary(orig, s, exe);
      // No fallback to userspace: the kernel took the link.
      expect(o.up.stderr).toContain(`[#] ip link add ${IF} type wireguard\n[#] wg setconf ${IF} /dev/fd/63\n`);
      if (s.conf.includes("command -v wg")) {
        expect(orig.file("hooks.log")).toContain("\n/usr/bin/wg\n");
        expect(ours.file("hooks.log")).toContain(`\n${exe}\n`);
      }
      expect(summary(ours, s, exe)).toEqual(o);
    }, TIMEOUT);
  }
});

describe("ours alone on the kernel module", () => {
  test("reload split → full → split: each time the reference's state after `up` of that file", async () => {
    const [r, split, full] = await Promise.all([result("reload"), result(twinId(scenario("split"), "orig")), result(twinId(scenario("full"), "orig"))]);
    const state = (x: Results, name: string) => ({ ...x.snap(name), ...x.probe(name) });
    expect(r.quick("up").code).toBe(0);
    const r1 = r.quick("reload1");
    expect(r1.code).toBe(0);
    expect(r1.stderr).toStartWith(`[#] wg syncconf ${IF} /dev/fd/63\n`);
    expect(r1.stderr).toContain(`[#] wg set ${IF} fwmark 51820\n`);
    expect(state(r, "b")).toEqual(state(full, "up"));
    const r2 = r.quick("reload2");
    expect(r2.code).toBe(0);
    expect(r2.stderr).toContain(`[#] wg set ${IF} fwmark 0\n`);
    expect(state(r, "a2")).toEqual(state(split, "up"));
    expect(r.quick("down").code).toBe(0);
    expect(r.snap("after")).toEqual(r.snap("before"));
  }, TIMEOUT);

  test("WG_QUICK_PREFER_USERSPACE=1: our daemon (a TUN and a UAPI socket) though the module is loaded; otherwise the reference's lines and state", async () => {
    const [u, orig] = await Promise.all([result("user"), result(twinId(scenario("split"), "orig"))]);
    const exe = await exeReady;
    expect({ ...u.quick("up"), ...u.kind("up") }).toMatchObject({ code: 0, kind: "tun", sockets: `${IF_USER}.sock\n` });
    expect(u.probe("up").interfaces).toBe(`${IF_USER}\n`);
    expect(u.snap("after")).toEqual(u.snap("before"));
    // Our daemon instead of `ip link add`, the rest as the reference on the kernel link.
    const same = (t: string) => t.replace(`[#] ${exe} daemon ${IF_USER}\n`, `[#] ip link add ${IF_USER} type wireguard\n`).replaceAll(IF_USER, IF);
    const view = (x: Results) => {
      const s = x.snap("up");
      // The TUN's own lines differ from a wireguard link's (qdisc, queue length), and a TUN has
      // an IPv6 link-local address (with its routes) where a kernel WireGuard link has none.
      const addrs = s.addrs.split(/\n(?=N: )/).filter((b) => !b.includes(`: ${IF}:`) && !b.includes(`: ${IF_USER}:`));
      const routes = s.routes.split("\n").filter((l) => !/ fe80::(LL|\/64) dev wg[qu]0 /.test(l));
      return { ...s, addrs: addrs.join("\n"), routes: routes.join("\n"), showconf: x.probe("up").showconf, up: x.quick("up"), down: x.quick("down"), resolvconf: x.file("resolvconf.log"), hooks: hooksLog(x, exe) };
    };
    const mine = view(u);
    expect(mine.up.stderr).toContain(`[#] ${exe} daemon ${IF_USER}\n[#] wg setconf ${IF_USER} /dev/fd/63\n`);
    expect(mine.up.stderr).not.toContain("ip link add");
    expect(mapStrings(mine, same)).toEqual(mapStrings(view(orig), same));
  }, TIMEOUT);

  test("traffic: pings through the full tunnel ours brings up to a kernel peer; reload keeps the peer; down ends it", async () => {
    const f = await traffic;
    expect(f("up.code")).toBe("0\n");
    expect(f("up.err")).toContain("[#] ip link add wgt0 type wireguard\n");
    expect(f("link")).toMatch(/ wireguard /);
    expect(f("ping4")).toMatch(/ received.*\n0\n$/s);
    expect(f("ping6")).toMatch(/ received.*\n0\n$/s);
    expect(f("route-inner")).toContain("dev wgt0 table 51820");
    expect(f("route-endpoint")).toContain("dev up0");
    /** rx and tx of the one peer (the client) or of the server peer in the client's list. */
    const counters = (name: string) => {
      const lines = f(name).trim().split("\n");
      const line = lines.length === 1 ? lines[0]! : lines.find((l) => l.startsWith(`${SERVER.pub}\t`))!;
      return line.split("\t").slice(1).map(Number);
    };
    const [rx, tx] = counters("transfer-peer");
    expect(rx).toBeGreaterThan(0);
    expect(tx).toBeGreaterThan(0);
    expect(f("reload.code")).toBe("0\n");
    expect(f("reload.err")).toBe("[#] wg syncconf wgt0 /dev/fd/63\n[#] ip -4 route add 10.81.0.0/24 dev wgt0\n");
    const [before, after] = [counters("transfer1"), counters("transfer2")];
    expect(before[0]).toBeGreaterThan(0);
    expect(before[1]).toBeGreaterThan(0);
    const kept = after[0]! >= before[0]! && after[1]! >= before[1]!;
    expect(kept ? "kept" : `${f("transfer1")} -> ${f("transfer2")}`).toBe("kept");
    expect(f("ping4b")).toMatch(/ received.*\n0\n$/s);
    expect(f("down.code")).toBe("0\n");
    expect(f("pingdown")).not.toMatch(/\n0\n$/);
  }, TIMEOUT);
});
