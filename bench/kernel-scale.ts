// `wg setconf` and `wg show dump` of 10,000 peers / 100,000 allowed IPs on a *kernel* WireGuard
// device: ours against the real /usr/bin/wg, inside the test VM (test/kernel-wg.test.ts runs it
// in its guest; `bun test test/kernel-wg.test.ts -t scale` runs only this). Three measurements:
//   - whole commands, wall time in the guest (each run on a fresh device, tools alternating);
//   - the start-up of each executable alone (`genkey`), which under emulation dominates ours;
//   - ours in-process: config parse + SET, and GET + dump rendering, timed inside one Bun
//     process (`bun bench/kernel-scale.ts inproc CONF PREFIX RUNS`, run in the guest, root:
//     it creates the devices PREFIX0.. itself).
import { readFileSync } from "node:fs";
import { median } from "./lib/stats.ts";

export interface KernelScaleResult {
  runs: number;
  /** Milliseconds per run. */
  setconf: { real: number[]; ours: number[] };
  dump: { real: number[]; ours: number[] };
  startup: { real: number[]; ours: number[] };
  inproc: { set: number[]; dump: number[] };
  dumpLines: { real: number; ours: number };
}

/**
 * The guest script: `runs` rounds in namespace `kb`, each tool on a fresh device per round, the
 * two taking turns (which goes first alternates). Devices are not deleted in between (removing
 * 10,000 peers is slow in the emulated kernel, see bench/RESULTS.md); the namespace goes at the
 * end and the kernel cleans it up in the background. Prints one line per measurement.
 */
export function kernelScaleScript(o: { ours: string; conf: string; runs: number; bun: string; self: string }): string {
  return `set -u
ns() { ip netns exec kb "$@"; }
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
ip netns add kb && ip -n kb link set lo up || exit 1
for i in $(seq ${o.runs}); do
  if [ $((i % 2)) = 1 ]; then order="real ours"; else order="ours real"; fi
  for tool in $order; do
    bin=/usr/bin/wg; [ $tool = ours ] && bin=${o.ours}
    dev=wgb$i$tool
    ip -n kb link add $dev type wireguard || exit 1
    t=$(date +%s%N); ns $bin setconf $dev ${o.conf} || exit 2; s=$(ms $t)
    t=$(date +%s%N); ns $bin show $dev dump > /tmp/kb-dump.$tool || exit 3; d=$(ms $t)
    echo "$tool setconf $s dump $d lines $(wc -l < /tmp/kb-dump.$tool)"
    t=$(date +%s%N); $bin genkey > /dev/null; echo "$tool startup $(ms $t)"
  done
done
ns ${o.bun} ${o.self} inproc ${o.conf} wgin ${o.runs} || exit 4
ip netns del kb
`;
}

export function parseKernelScale(stdout: string, runs: number): KernelScaleResult {
  const r: KernelScaleResult = {
    runs,
    setconf: { real: [], ours: [] },
    dump: { real: [], ours: [] },
    startup: { real: [], ours: [] },
    inproc: { set: [], dump: [] },
    dumpLines: { real: 0, ours: 0 },
  };
  for (const line of stdout.split("\n")) {
    const w = line.split(" ");
    const tool = w[0] as "real" | "ours";
    if ((tool === "real" || tool === "ours") && w[1] === "setconf") {
      r.setconf[tool].push(Number(w[2]));
      r.dump[tool].push(Number(w[4]));
      r.dumpLines[tool] = Number(w[6]);
    } else if ((tool === "real" || tool === "ours") && w[1] === "startup") r.startup[tool].push(Number(w[2]));
    else if (w[0] === "inproc") {
      r.inproc.set.push(Number(w[2]));
      r.inproc.dump.push(Number(w[4]));
    }
  }
  return r;
}

/** Markdown rows: medians in ms and ours/real. */
export function kernelScaleTable(r: KernelScaleResult): string {
  const m = (xs: number[]) => median(xs);
  const row = (what: string, real: number, ours: number) => `| ${what} | ${real.toFixed(0)} | ${ours.toFixed(0)} | ${(ours / real).toFixed(2)}x |`;
  return [
    "| median of " + r.runs + " runs (ms) | real wg | ours | ours/real |",
    "|---|---|---|---|",
    row("`wg setconf` (10,000 peers, 100,000 allowed IPs)", m(r.setconf.real), m(r.setconf.ours)),
    row("`wg show dump` of them", m(r.dump.real), m(r.dump.ours)),
    row("start-up alone (`wg genkey`)", m(r.startup.real), m(r.startup.ours)),
    row("setconf minus start-up", m(r.setconf.real) - m(r.startup.real), m(r.setconf.ours) - m(r.startup.ours)),
    row("dump minus start-up", m(r.dump.real) - m(r.startup.real), m(r.dump.ours) - m(r.startup.ours)),
    `| ours in-process: parse + SET / GET + render | | ${m(r.inproc.set).toFixed(0)} / ${m(r.inproc.dump).toFixed(0)} | |`,
  ].join("\n");
}

/** Guest side: parse + SET and GET + dump text, in-process, `runs` times, each on a fresh device IFACE<i>. */
async function inproc(conf: string, iface: string, runs: number): Promise<void> {
  const { parseConfigFile } = await import("../core/tools/config.ts");
  const { dumpDevice } = await import("../core/tools/show.ts");
  const { defaultParseEnv } = await import("../cmd/wg.ts");
  const { getDevice, setDevice } = await import("../platform/linux/ipc-netlink.ts");
  const { linkAdd } = await import("../platform/linux/rtnetlink.ts");
  const text = readFileSync(conf, "latin1");
  const env = defaultParseEnv((s) => process.stderr.write(s));
  for (let i = 0; i < runs; i++) {
    const dev = `${iface}${i}`;
    linkAdd(dev, "wireguard");
    let t = performance.now();
    const config = parseConfigFile(text, false, env);
    if (!config) throw new Error("config does not parse");
    const errno = setDevice(dev, config);
    if (errno) throw new Error(`setDevice: errno ${errno}`);
    const set = performance.now() - t;
    t = performance.now();
    const r = getDevice(dev);
    if (!r.ok) throw new Error(`getDevice: errno ${r.errno}`);
    const lines = dumpDevice(r.device, false).split("\n").length - 1;
    console.log(`inproc set ${set.toFixed(1)} dump ${(performance.now() - t).toFixed(1)} lines ${lines}`);
  }
}

if (import.meta.main && process.argv[2] === "inproc") await inproc(process.argv[3]!, process.argv[4]!, Number(process.argv[5] ?? 3));
