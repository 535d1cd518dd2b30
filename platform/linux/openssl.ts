// Shared plumbing for the libcrypto backends: find the library by soname and compile a TinyCC
// shim (bun:ffi `cc`) that receives libcrypto's function pointers from our dlopen handle, so no
// development headers or `libcrypto.so` symlink are needed. Every libcrypto backend uses it.
import { cc, dlopen, type FFIFunction, type Pointer } from "bun:ffi";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const LIBCRYPTO_SONAMES: readonly string[] = ["libcrypto.so.3", "libcrypto.so.1.1", "libcrypto.so", "libcrypto.so.10"];

export type Symbols = Record<string, FFIFunction>;

/** dlopen the first soname that has every symbol; null when none does. */
export function openLibcrypto<S extends Symbols>(symbols: S, sonames: readonly string[] = LIBCRYPTO_SONAMES) {
  for (const soname of sonames) {
    try {
      return { lib: dlopen(soname, symbols), soname };
    } catch {
      // missing library or symbol: try the next soname
    }
  }
  return null;
}

/** Native address of a bun:ffi function (every one carries it as `.ptr`, absent from the types). */
export const fnAddress = (f: unknown): Pointer => (f as { ptr: Pointer }).ptr;

/** Compiles C source with Bun's TinyCC; null when TinyCC is unavailable or the source fails. */
export function compileShim<S extends Symbols>(tag: string, source: string, symbols: S) {
  let dir: string | null = null;
  try {
    // cc() takes a path; a private temp dir keeps the compiled executable self-contained.
    dir = mkdtempSync(join(tmpdir(), `wg-${tag}-`));
    const file = join(dir, "shim.c");
    writeFileSync(file, source);
    return cc({ source: file, symbols });
  } catch {
    return null;
  } finally {
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
}
