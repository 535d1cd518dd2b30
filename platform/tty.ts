// isatty(3) from libc. node:tty's isatty loads Node's stream machinery first, which was ~45 ms
// of the start-up of every `wg` command (measured on the compiled executable).
import { dlopen, FFIType } from "bun:ffi";

let lib: ReturnType<typeof open> | null = null;
const open = () => dlopen("libc.so.6", { isatty: { args: [FFIType.i32], returns: FFIType.i32 } });

export function isatty(fd: number): boolean {
  lib ??= open();
  return lib.symbols.isatty(fd) === 1;
}
