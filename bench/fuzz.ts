// Long fuzz run: >= 1,000,000 generated inputs through the engine receive path (test/lib-fuzz.ts
// generators, state snapshot compared every 1000 inputs, outputs after every input) plus the
// config, `wg set`, UAPI server and UAPI client parsers (fast-check, test/lib-fuzz-text.ts).
//
//   bun bench/fuzz.ts [ENGINE_INPUTS] [TEXT_INPUTS_PER_PARSER]    (defaults 1,000,000 and 50,000)
//   FUZZ_SEED=n reproduces a run. Exits 1 on the first failure, printing the input.
import fc from "fast-check";
import { WgExit, parseConfigFile, parseSetArgs } from "../core/tools/config.ts";
import { buildSetRequest, parseGetResponse, parseSetResponse } from "../core/tools/uapi.ts";
import { fuzzEngine, makeWorld } from "../test/lib-fuzz.ts";
import { bounded, configText, configValue, fakeEnv, uapiRequest } from "../test/lib-fuzz-text.ts";

const ENGINE = Number(process.argv[2] ?? 1_000_000);
const TEXT = Number(process.argv[3] ?? 50_000);
const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 1_000_000);
let total = 0;
let failed = false;
const t00 = performance.now();
console.log(`seed ${SEED}`);

// Engine: fresh worlds every 100k inputs (new keys, indices, corpus).
{
  const t0 = performance.now();
  const byGen: Record<string, number> = {};
  let cookieReplies = 0;
  for (let done = 0, round = 0; done < ENGINE && !failed; round++) {
    const n = Math.min(100_000, ENGINE - done);
    const w = makeWorld(SEED + round, round % 2 === 0);
    const s = fuzzEngine(w, n, SEED * 31 + round, 1000, 0.003);
    done += s.inputs;
    cookieReplies += s.cookieReplies;
    for (const [k, v] of Object.entries(s.byGenerator)) byGen[k] = (byGen[k] ?? 0) + v;
    if (s.failures.length) {
      console.error(`ENGINE FAILURE (round ${round}):\n${s.failures.join("\n")}`);
      failed = true;
    }
  }
  const inputs = Object.values(byGen).reduce((a, b) => a + b, 0);
  total += inputs;
  const sec = (performance.now() - t0) / 1000;
  console.log(`engine receive path: ${inputs} inputs in ${sec.toFixed(1)} s (${Math.round(inputs / sec)}/s), cookie replies ${cookieReplies}`);
  console.log(`  by generator: ${JSON.stringify(byGen)}`);
}

function run(name: string, prop: fc.IPropertyWithHooks<unknown[]> | fc.IProperty<unknown[]>): void {
  if (failed) return;
  const t0 = performance.now();
  const r = fc.check(prop, { numRuns: TEXT, seed: SEED });
  const sec = (performance.now() - t0) / 1000;
  total += r.numRuns;
  console.log(`${name}: ${r.numRuns} inputs in ${sec.toFixed(1)} s${r.failed ? "  FAILED" : ""}`);
  if (r.failed) {
    console.error(fc.defaultReportMessage(r));
    failed = true;
  }
}

run(
  "config files",
  fc.property(configText, fc.boolean(), (text, append) => {
    const env = fakeEnv();
    const r = bounded(() => parseConfigFile(text, append, env));
    if (r instanceof WgExit || r === null) return env.errors.length > 0;
    return buildSetRequest(r).endsWith("\n\n");
  }),
);
run(
  "wg set words",
  fc.property(fc.array(configValue, { maxLength: 10 }), (words) => {
    const env = fakeEnv();
    const r = bounded(() => parseSetArgs(words, env));
    return r === null || r instanceof WgExit ? env.errors.length > 0 : true;
  }),
);
{
  const w = makeWorld(SEED);
  run(
    "UAPI server",
    fc.property(uapiRequest, (req) => {
      const res = bounded(() => w.b.dev.uapi(req).response);
      return typeof res === "string" && /^((?:[a-z_]+=[^\n]*\n)*errno=-?\d+\n\n)*$/.test(res);
    }),
  );
  const real = w.a.dev.uapi("get=1\n\n").response;
  run(
    "UAPI client",
    fc.property(fc.oneof(fc.string({ maxLength: 300 }), fc.nat().chain((n) => fc.string({ maxLength: 4 }).map((v) => real.slice(0, n % real.length) + v + real.slice((n % real.length) + 1)))), (text) => {
      const g = bounded(() => parseGetResponse(text, "wg0"));
      const s = bounded(() => parseSetResponse(text));
      return !(g instanceof WgExit) && Number.isInteger(s);
    }),
  );
}
console.log(`TOTAL ${total} inputs in ${((performance.now() - t00) / 1000).toFixed(1)} s: ${failed ? "FAIL" : "PASS"}`);
process.exit(failed ? 1 : 0);
