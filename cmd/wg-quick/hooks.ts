// execute_hooks of the reference: PreUp, PostUp, PreDown and PostDown snippets run by bash.
import { fromBytes } from "../bytes.ts";
import type { Quick } from "./context.ts";

/**
 * The reference evals each hook in a subshell of itself, errexit and pipefail on, its variables
 * visible. We give it the same shell options and the variables users rely on. The values are
 * byte strings, but a spawned program's arguments are UTF-8 text: each arrives \xHH-escaped
 * (argBytes) and `printf %b` turns it back into its bytes, valid UTF-8 or not.
 */
const PRELUDE =
  'printf -v INTERFACE %b "$1"; printf -v CONFIG_FILE %b "$2"; printf -v MTU %b "$3"; printf -v TABLE %b "$4"; ' +
  'printf -v PROGRAM %b "$5"; printf -v hook %b "$6"; shift 6; set -e -o pipefail; shopt -s extglob; eval "$hook"';

/** A byte string as a `printf %b` argument: backslashes and non-ASCII bytes as \xHH, the rest as is. */
const argBytes = (s: string) => s.replace(/[\\\x80-\xff]/g, (c) => `\\x${c.charCodeAt(0).toString(16)}`);

/** Each hook with `%i` replaced by the interface, printed, then run; a failing one ends wg-quick with its status. */
export async function executeHooks(q: Quick, hooks: readonly string[]): Promise<void> {
  for (const h of hooks) {
    const hook = h.split("%i").join(q.iface);
    q.cmd(hook);
    const vars = [q.iface, q.o.configFile, q.o.mtu, q.o.table, q.o.prog, hook].map(argBytes);
    const p = Bun.spawn(["bash", "-c", PRELUDE, fromBytes(q.o.prog), ...vars], {
      env: process.env, // see platform/current-env.ts
      stdin: "inherit",
      stdout: "inherit",
      stderr: "inherit",
    });
    q.check(await p.exited);
  }
}
