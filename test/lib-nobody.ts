// Runs of our tools as user nobody. A checkout inside a 0700 directory (a `mktemp -d` clone) is
// unreadable to nobody, so those runs use a compiled copy of the executable in a directory
// nobody can enter, started from "/"; removed after the test file.
import { afterAll } from "bun:test";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compileCommand } from "../build.ts";

let dir: string | null = null;
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = null;
});

/** Path of the compiled executable (built once per test file). */
export function nobodyExecutable(): string {
  if (dir) return join(dir, "wgts");
  dir = mkdtempSync(join(tmpdir(), "wgt-nobody-"));
  chmodSync(dir, 0o755);
  const exe = join(dir, "wgts");
  const r = Bun.spawnSync(compileCommand(exe), { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`compiling for the non-root test failed: ${r.stderr.toString()}`);
  return exe;
}

/** argv prefix that drops to nobody (uid/gid 65534, no groups). */
export const AS_NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"];
