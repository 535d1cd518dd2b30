// Memory and control-plane cost at scale: RSS of an idle interface, then with 10,000 peers and
// 100,000 allowed IPs loaded by `wg setconf`, and how long `wg show dump` takes for them.
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Implementation } from "./impls.ts";
import { genKeyPair, removeStaleSocket, startDaemon, uniqueNames } from "./pair.ts";
import { nsRun, rssKiB, run, stop, type Daemon } from "./proc.ts";
import { median } from "./stats.ts";

export interface ScaleResult {
  idleRssMiB: number;
  /** Wall time of loading the peers (by `loadedBy`). */
  setconfSec: number;
  /** How the peers got in: "setconf", or "addconf xN" after setconf of the whole file failed. */
  loadedBy: string;
  note?: string;
  loadedRssMiB: number;
  dumpSec: number;
  dumpLines: number;
}

/** A wg(8) config with `peers` random peers holding `ipsPerPeer` distinct /32s each in 10/8. */
export function bigConfig(privateKey: string | null, peers: number, ipsPerPeer: number, first = 0): string {
  const out: string[] = privateKey ? ["[Interface]", `PrivateKey = ${privateKey}`, "ListenPort = 51820", ""] : [];
  let n = 1 + first * ipsPerPeer;
  for (let p = first; p < first + peers; p++) {
    const ips: string[] = [];
    for (let j = 0; j < ipsPerPeer; j++, n++) ips.push(`10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}/32`);
    // Random bytes are acceptable public keys to wg and to both daemons.
    out.push("[Peer]", `PublicKey = ${randomBytes(32).toString("base64")}`, `AllowedIPs = ${ips.join(", ")}`, "");
  }
  return out.join("\n");
}

async function settleRss(pid: number): Promise<number> {
  // Let a garbage-collected daemon settle before sampling; take the median of a few samples.
  const samples: number[] = [];
  for (let i = 0; i < 3; i++) {
    await Bun.sleep(300);
    samples.push(rssKiB(pid));
  }
  return median(samples) / 1024;
}

export async function measureScale(impl: Implementation, peers = 10_000, ipsPerPeer = 10): Promise<ScaleResult> {
  const { nsA: ns, ifA: iface } = uniqueNames();
  const dir = mkdtempSync(join(tmpdir(), "wgb-scale-"));
  let daemon: Daemon | null = null;
  run(["ip", "netns", "add", ns]);
  try {
    run(["ip", "-n", ns, "link", "set", "lo", "up"]);
    daemon = await startDaemon(impl, ns, iface);
    const { privateKey } = genKeyPair();
    nsRun(ns, ["wg", "set", iface, "private-key", "/dev/stdin", "listen-port", "51820"], { input: privateKey + "\n" });
    run(["ip", "-n", ns, "link", "set", iface, "up"]);
    const idleRssMiB = await settleRss(daemon.pid);
    const conf = join(dir, "big.conf");
    writeFileSync(conf, bigConfig(privateKey, peers, ipsPerPeer));
    let t = performance.now();
    const whole = nsRun(ns, ["wg", "setconf", iface, conf], { timeoutMs: 300_000, allowFail: true });
    let setconfSec = (performance.now() - t) / 1000;
    let loadedBy = "setconf";
    let note: string | undefined;
    if (whole.code !== 0) {
      // Still measure memory at scale: feed the same peers in chunks small enough to be accepted.
      note = `wg setconf of the whole file failed (${whole.code === -1 ? "killed by a signal, the daemon closed the socket mid-request" : `exit ${whole.code}`}); loaded with wg addconf in chunks of 1000 peers instead`;
      t = performance.now();
      const chunks = Math.ceil(peers / 1000);
      for (let c = 0; c < chunks; c++) {
        const part = join(dir, `part${c}.conf`);
        writeFileSync(part, bigConfig(null, Math.min(1000, peers - c * 1000), ipsPerPeer, c * 1000));
        nsRun(ns, ["wg", "addconf", iface, part], { timeoutMs: 300_000 });
      }
      loadedBy = `addconf x${chunks}`;
      setconfSec = (performance.now() - t) / 1000;
    }
    const loadedRssMiB = await settleRss(daemon.pid);
    const times: number[] = [];
    let dumpLines = 0;
    for (let i = 0; i < 3; i++) {
      t = performance.now();
      const r = nsRun(ns, ["wg", "show", iface, "dump"], { timeoutMs: 120_000 });
      times.push((performance.now() - t) / 1000);
      dumpLines = r.stdout.trimEnd().split("\n").length;
    }
    return { idleRssMiB, setconfSec, loadedBy, note, loadedRssMiB, dumpSec: median(times), dumpLines };
  } finally {
    await stop(daemon);
    run(["ip", "netns", "del", ns], { allowFail: true });
    removeStaleSocket(iface);
    rmSync(dir, { recursive: true, force: true });
  }
}
