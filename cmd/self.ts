// How to run this program again as a child process (the tunnel daemon for wg-quick, sudo).
import { join } from "node:path";

/** The argv[0] given to compiled re-executions: not "wg"/"wg-quick", so main.ts dispatches on `tool`. */
export const SELF_ARGV0 = "wgts";

/** The compiled executable's path (its modules live under the virtual /$bunfs/ root), or null when run from source. */
export function compiledExecutable(): string | null {
  // Bun.main, not import.meta.path: a --bytecode build keeps the source paths in import.meta.
  const compiled = Bun.main.startsWith("/$bunfs/") || Bun.main.startsWith("B:/~BUN/");
  return compiled ? process.execPath : null;
}

/**
 * The command line that runs `tool` (`daemon`, `wg`, `wg-quick`) of our own executable, and
 * the argv[0] to start it with. The compiled file is [its path, tool, ...args] started as "wgts":
 * cmd/main.ts picks the tool from argv[0] when that is `wg` or `wg-quick`, so the name the user
 * ran us by must not be passed on.
 * From source it is the Bun runtime with cmd/main.ts next to this file:
 * `bun /work/main/cmd/main.ts tool ...args`.
 */
export function selfCommand(tool: string, args: readonly string[]): { cmd: string[]; argv0: string } {
  const exe = compiledExecutable();
  if (exe !== null) return { cmd: [exe, tool, ...args], argv0: SELF_ARGV0 };
  return { cmd: [process.execPath, join(import.meta.dir, "main.ts"), tool, ...args], argv0: process.execPath };
}
