// Soak: two of our daemons in namespaces exchange traffic for SOAK_SECONDS (default 630 s, i.e.
// five rekeys at REKEY_AFTER_TIME = 120 s) and we check that no session is lost and RSS stays flat.
//
//   bun bench/soak.ts            # needs root; prints a markdown section and exits 1 on failure
//
// Traffic: a continuous ping at 10/s (every reply is accounted for) plus a 3 s iperf3 TCP burst
// (capped at 100 Mbit/s, the machine is shared) every 60 s. Every 5 s we sample both daemons'
// RSS and the latest-handshake time. "Session loss" = a run of >= 10 consecutive lost pings
// (1 s with no working tunnel); a rekey should be invisible to traffic.
import { Lab } from "../test/netns.ts";
import { daemonPid, peerDump, pingUntil, rssKiB, wgPair } from "../test/lib-wgpair.ts";

const SECONDS = Number(process.env.SOAK_SECONDS ?? 630);
const lab = new Lab("soak");
let failed = false;
try {
  const { a, b } = await wgPair(lab, { tag: "s", env: { LOG_LEVEL: "error" } });
  if (!(await pingUntil(a, b.inner4, 15000))) throw new Error("tunnel never came up");
  const iperfServer = b.ns.spawn(["iperf3", "-s", "-B", b.inner4, "-p", "5299"]);
  await Bun.sleep(300);
  const count = SECONDS * 10;
  const pinger = a.ns.spawn(["ping", "-n", "-D", "-i", "0.1", "-W", "1", "-c", String(count), b.inner4]);
  const t0 = Date.now();
  const samples: { t: number; rssA: number; rssB: number; hs: number }[] = [];
  const handshakes = new Set<number>();
  let iperfMbits: number[] = [];
  let nextIperf = 10;
  while (Date.now() - t0 < SECONDS * 1000) {
    await Bun.sleep(5000);
    const t = (Date.now() - t0) / 1000;
    const d = peerDump(a);
    handshakes.add(d.latestHandshake);
    samples.push({ t, rssA: rssKiB(daemonPid(a)), rssB: rssKiB(daemonPid(b)), hs: d.latestHandshake });
    if (t >= nextIperf && t < SECONDS - 10) {
      nextIperf += 60;
      const r = a.ns.run(["iperf3", "-c", b.inner4, "-p", "5299", "-t", "3", "-b", "100M", "-J"]);
      try {
        iperfMbits.push(JSON.parse(r.stdout).end.sum_received.bits_per_second / 1e6);
      } catch {
        iperfMbits.push(0);
      }
    }
  }
  await pinger.exited.catch(() => {});
  await Bun.sleep(1500);
  const out = pinger.output();
  const seqs = new Set<number>();
  for (const m of out.matchAll(/icmp_seq=(\d+)/g)) seqs.add(Number(m[1]));
  let maxRun = 0;
  let run = 0;
  let lost = 0;
  for (let i = 1; i <= count; i++) {
    if (seqs.has(i)) run = 0;
    else {
      lost++;
      run++;
      if (run > maxRun) maxRun = run;
    }
  }
  await iperfServer.kill();
  const first = samples.slice(0, 6);
  const last = samples.slice(-6);
  const avg = (xs: number[]) => Math.round(xs.reduce((s, x) => s + x, 0) / Math.max(1, xs.length));
  const rssA0 = avg(first.map((s) => s.rssA));
  const rssA1 = avg(last.map((s) => s.rssA));
  const rssB0 = avg(first.map((s) => s.rssB));
  const rssB1 = avg(last.map((s) => s.rssB));
  const maxA = Math.max(...samples.map((s) => s.rssA));
  const maxB = Math.max(...samples.map((s) => s.rssB));
  const distinctHs = [...handshakes].filter((h) => h > 0).length;
  const expectedRekeys = Math.floor(SECONDS / 125);
  const growth = Math.max(rssA1 - rssA0, rssB1 - rssB0);
  const ok = maxRun < 10 && distinctHs >= expectedRekeys && growth < 30 * 1024 && lost / count < 0.01;
  failed = !ok;
  const lines = [
    `## Soak (bench/soak.ts, ${new Date().toISOString().slice(0, 16)}Z)`,
    "",
    `${SECONDS} s, ours <-> ours in namespaces; ping 10/s + 3 s iperf3 TCP burst (<=100 Mbit/s) every 60 s.`,
    "",
    `| metric | value |`,
    `|---|---|`,
    `| pings sent / lost | ${count} / ${lost} (${((100 * lost) / count).toFixed(2)} %) |`,
    `| longest run of lost pings | ${maxRun} (session loss = >= 10) |`,
    `| distinct handshakes seen by A (sampled every 5 s) | ${distinctHs} (expected >= ${expectedRekeys}) |`,
    `| iperf3 bursts Mbit/s | ${iperfMbits.map((x) => x.toFixed(0)).join(", ")} |`,
    `| RSS A first/last minute avg, max (MiB) | ${(rssA0 / 1024).toFixed(1)} / ${(rssA1 / 1024).toFixed(1)}, ${(maxA / 1024).toFixed(1)} |`,
    `| RSS B first/last minute avg, max (MiB) | ${(rssB0 / 1024).toFixed(1)} / ${(rssB1 / 1024).toFixed(1)}, ${(maxB / 1024).toFixed(1)} |`,
    `| verdict | ${ok ? "PASS" : "FAIL"} |`,
    "",
  ];
  console.log(lines.join("\n"));
  if (process.env.SOAK_JSON) await Bun.write(process.env.SOAK_JSON, JSON.stringify({ samples, lost, maxRun, distinctHs, iperfMbits }));
} catch (e) {
  failed = true;
  console.error(e);
} finally {
  await lab.cleanup();
}
process.exit(failed ? 1 : 0);
