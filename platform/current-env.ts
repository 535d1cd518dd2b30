// Bun.spawn and Bun.which default to the environment the process started with, not to process.env
// as changed since. wg-quick changes it as the original does (LC_ALL=C; the compiled executable's
// directory first in PATH), and every command it runs must see that: children are spawned with
// `env: process.env`, and programs are looked up with whichNow.

/** The program `name` as found in the current PATH, or null. */
export function whichNow(name: string): string | null {
  return Bun.which(name, { PATH: process.env.PATH ?? "" });
}
