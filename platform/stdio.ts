// Facts about the standard streams that C's stdio has and Bun does not expose: isatty(3), and
// death by SIGPIPE. node:tty's isatty loads Node's stream machinery first, which was ~45 ms of
// the start-up of every `wg` command (measured on the compiled executable).
import { dlopen, FFIType } from "bun:ffi";

const SIGPIPE = 13;
const SIG_DFL = 0;

let lib: ReturnType<typeof open> | null = null;
const open = () =>
  dlopen("libc.so.6", {
    isatty: { args: [FFIType.i32], returns: FFIType.i32 },
    signal: { args: [FFIType.i32, FFIType.u64], returns: FFIType.u64 },
    raise: { args: [FFIType.i32], returns: FFIType.i32 },
  });

export function isatty(fd: number): boolean {
  lib ??= open();
  return lib.symbols.isatty(fd) === 1;
}

/**
 * Ends the process the way a C program writing to a pipe nobody reads ends: killed by SIGPIPE
 * (the shell sees 141; `set -o pipefail` fails the pipeline). Bun ignores SIGPIPE, so writes
 * only return EPIPE; this restores the default action and raises it.
 */
export function dieOfBrokenPipe(): never {
  lib ??= open();
  lib.symbols.signal(SIGPIPE, SIG_DFL);
  lib.symbols.raise(SIGPIPE);
  process.exit(128 + SIGPIPE);
}
