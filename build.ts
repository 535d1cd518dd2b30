// Compiles everything into one executable, dist/wg, with dist/wg-quick as a second name for it.
// Tests and the benchmark build their private copies with the same flags (compileCommand).
import { mkdirSync, rmSync, symlinkSync } from "node:fs";
import { join } from "node:path";

/**
 * `bun build` argv for the executable. --bytecode ships JavaScriptCore bytecode instead of source,
 * so a start does not parse the whole program first (bench/RESULTS.md, start-up).
 */
export function compileCommand(outfile: string): string[] {
  return [process.execPath, "build", "--compile", "--minify", "--sourcemap=none", "--bytecode", join(import.meta.dir, "cmd", "main.ts"), "--outfile", outfile];
}

if (import.meta.main) {
  mkdirSync("dist", { recursive: true });
  const r = Bun.spawnSync(compileCommand("dist/wg"), { stdout: "inherit", stderr: "inherit" });
  if (r.exitCode !== 0) process.exit(r.exitCode ?? 1);
  for (const name of ["wg-quick"]) {
    rmSync(`dist/${name}`, { force: true });
    symlinkSync("wg", `dist/${name}`);
  }
  console.log("built dist/wg (+ dist/wg-quick)");
}
