// Facts about the standard streams that C's stdio has and Bun does not expose: isatty(3), death
// by SIGPIPE, and a daemon's detach from the terminal. node:tty's isatty would load Node's
// stream machinery into the start-up of every `wg` command; these are C calls, bound on first use.
import { closeSync, openSync } from "node:fs";
import { libc, libcFunctions } from "./libc.ts";

const SIGPIPE = 13;
const SIG_DFL = 0;

const bind = () =>
  libcFunctions({
    isatty: { args: ["i32"], returns: "i32" },
    signal: { args: ["i32", "u64"], returns: "u64" },
    raise: { args: ["i32"], returns: "i32" },
  });
let c: ReturnType<typeof bind> | null = null;

export function isatty(fd: number): boolean {
  c ??= bind();
  return c.isatty(fd) === 1;
}

/**
 * Ends the process the way a C program writing to a pipe nobody reads ends: killed by SIGPIPE
 * (the shell sees 141; `set -o pipefail` fails the pipeline). Bun ignores SIGPIPE, so writes
 * only return EPIPE; this restores the default action and raises it.
 */
export function dieOfBrokenPipe(): never {
  c ??= bind();
  c.signal(SIGPIPE, SIG_DFL);
  c.raise(SIGPIPE);
  process.exit(128 + SIGPIPE);
}

/** Points stdout and stderr at /dev/null, as a detached daemon does: nothing more reaches the terminal it started from. */
export function detachStdio(): void {
  const devnull = openSync("/dev/null", "r+");
  libc.dup2(devnull, 1);
  libc.dup2(devnull, 2);
  if (devnull > 2) closeSync(devnull);
}
