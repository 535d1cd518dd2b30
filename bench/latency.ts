// Ping latency through the tunnel in steady state, ours vs wireguard-go, with the spread that a
// median hides. bench/run.ts measures pings right after the daemons start (start-up included);
// this lets both daemons settle first and reports median, p10 and p90 per round.
//
//   bun bench/latency.ts [--rounds N] [--impl wireguard-go,ours] [--interval 0.01,0.2]
//                        [--count N] [--settle-ms MS] [--no-warm] [--all]
//
// --no-warm skips the 5 unrecorded pings before each series; --all prints every RTT.
import { getImplementation } from "./lib/impls.ts";
import { pingRtts } from "./lib/net.ts";
import { cleanupAll, setupPair } from "./lib/pair.ts";
import { fmt, median, percentile } from "./lib/stats.ts";

const argv = process.argv.slice(2);
const option = (name: string) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};
const rounds = Number(option("--rounds") ?? 3);
const impls = (option("--impl") ?? "wireguard-go,ours").split(",");
const intervals = (option("--interval") ?? "0.01,0.2").split(",").map(Number);
const countFor = (interval: number) => Number(option("--count") ?? (interval >= 0.1 ? 25 : 100));
const settleMs = Number(option("--settle-ms") ?? 1500);

process.on("SIGINT", async () => {
  await cleanupAll();
  process.exit(130);
});

const medians = new Map<string, number[]>();
try {
  for (let r = 0; r < rounds; r++) {
    for (const spec of impls) {
      const [x, y = x] = spec.split(":") as [string, string?];
      const pair = await setupPair(getImplementation(x), getImplementation(y!));
      try {
        await Bun.sleep(settleMs);
        for (const interval of intervals) {
          if (!argv.includes("--no-warm")) pingRtts(pair, 5, interval);
          const rtts = pingRtts(pair, countFor(interval), interval);
          const key = `${spec}, pings ${interval * 1000} ms apart`;
          medians.set(key, [...(medians.get(key) ?? []), median(rtts)]);
          if (argv.includes("--all")) console.error(rtts.join(" "));
          console.error(`round ${r + 1} ${key}: median ${fmt(median(rtts), 3)} p10 ${fmt(percentile(rtts, 0.1), 3)} p90 ${fmt(percentile(rtts, 0.9), 3)} ms (${rtts.length} replies)`);
        }
      } finally {
        await pair.teardown();
      }
    }
  }
} finally {
  await cleanupAll();
}
for (const [key, v] of medians) console.log(`${key}: ${fmt(median(v), 3)} ms (round medians ${v.map((m) => fmt(m, 3)).join(", ")})`);
