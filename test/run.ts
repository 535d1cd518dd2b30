// Runs the whole suite with `bun test` and ends with the line CI reads: "N passed, M failed".
// Each test file runs in its own `bun test` process so one crashing file cannot hide the others.
import { readdirSync } from "node:fs";
import { join } from "node:path";

const dir = join(import.meta.dir);
const only = process.argv.slice(2);
const files = readdirSync(dir)
  .filter((f) => f.endsWith(".test.ts"))
  .filter((f) => only.length === 0 || only.some((o) => f.includes(o)))
  .sort();

let passed = 0;
let failed = 0;
const failures: string[] = [];
for (const f of files) {
  const started = Date.now();
  const proc = Bun.spawn([process.execPath, "test", "--timeout", "180000", join(dir, f)], {
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, FORCE_COLOR: "0" },
  });
  const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  const code = await proc.exited;
  const text = out + err;
  const p = Number(/^\s*(\d+) pass$/m.exec(text)?.[1] ?? 0);
  let m = Number(/^\s*(\d+) fail$/m.exec(text)?.[1] ?? 0);
  if (code !== 0 && m === 0) m = 1; // a file that crashed or errored outside a test still fails
  passed += p;
  failed += m;
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  process.stdout.write(`${m ? "FAIL" : "ok  "} ${f}: ${p} passed, ${m} failed (${secs}s)\n`);
  if (m) {
    failures.push(f);
    const lines = text.split("\n");
    process.stdout.write(lines.filter((l) => /\(fail\)|error|Error|expect/.test(l)).slice(0, 40).join("\n") + "\n");
    // The measurements the tests print as JSON lines: what a failed bound was compared with.
    const measured = lines.filter((l) => l.startsWith("{")).slice(-10);
    if (measured.length) process.stdout.write(measured.join("\n") + "\n");
  }
}
if (failures.length) process.stdout.write(`failing files: ${failures.join(", ")}\n`);
process.stdout.write(`${passed} passed, ${failed} failed\n`);
process.exit(failed ? 1 : 0);
