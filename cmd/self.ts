// How to run this program again as a child process (the tunnel daemon for wg-quick, sudo).
import { join } from "node:path";

/**
 * The argv prefix that starts our own executable: [process.execPath] for the compiled file
 * (whose modules live under the virtual /$bunfs/ root), otherwise the Bun runtime followed by
 * cmd/main.ts next to this file, i.e. `bun /work/main/cmd/main.ts`. Append the tool name
 * ("daemon", "wg", "wg-quick") and its arguments.
 */
export function selfCommand(): string[] {
  if (import.meta.path.startsWith("/$bunfs/") || import.meta.path.startsWith("B:/~BUN/")) return [process.execPath];
  return [process.execPath, join(import.meta.dir, "main.ts")];
}
