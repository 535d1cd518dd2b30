// An anonymous in-memory file, so secrets handed to a path-taking reader (wg setconf) never
// touch a disk: the counterpart of bash's `<(echo ...)` that wg-quick uses.
import { closeSync, writeSync } from "node:fs";
import { cstr, libcFunctions } from "./libc.ts";

const { memfd_create } = libcFunctions({ memfd_create: { args: ["ptr", "u32"], returns: "i32" } });
const MFD_CLOEXEC = 1;

/** Write `data` to a new memfd; `path` reopens it from the start. Call close() when done. */
export function memfdWith(data: Uint8Array): { path: string; close(): void } {
  const fd = memfd_create(cstr("wg-quick"), MFD_CLOEXEC);
  if (fd < 0) throw new Error("memfd_create failed");
  let off = 0;
  while (off < data.length) off += writeSync(fd, data, off, data.length - off);
  return { path: `/proc/self/fd/${fd}`, close: () => closeSync(fd) };
}
