// execute_hooks of the reference: PreUp, PostUp, PreDown and PostDown snippets run by bash.
import type { Quick } from "./context.ts";

/**
 * The reference evals each hook in a subshell of itself, errexit and pipefail on, its variables
 * visible. We give it the same shell options and the variables users rely on.
 */
const PRELUDE = 'INTERFACE=$1 CONFIG_FILE=$2 MTU=$3 TABLE=$4 PROGRAM=$5 hook=$6; shift 6; set -e -o pipefail; shopt -s extglob; eval "$hook"';

/** Each hook with `%i` replaced by the interface, printed, then run; a failing one ends wg-quick with its status. */
export async function executeHooks(q: Quick, hooks: readonly string[]): Promise<void> {
  for (const h of hooks) {
    const hook = h.split("%i").join(q.iface);
    q.cmd(hook);
    const p = Bun.spawn(["bash", "-c", PRELUDE, q.o.prog, q.iface, q.o.configFile, q.o.mtu, q.o.table, q.o.prog, hook], {
      env: process.env, // Bun's default is the environment we started with, without wg-quick's PATH and LC_ALL
      stdin: "inherit",
      stdout: "inherit",
      stderr: "inherit",
    });
    q.check(await p.exited);
  }
}
