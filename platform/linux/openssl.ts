// Shared plumbing for the libcrypto backends: libcrypto is opened once (libc.ts openLibrary) and
// each backend binds its functions from that handle; a TinyCC shim (bun:ffi `cc`) receives
// libcrypto's function pointers from us, so no development headers or `libcrypto.so` symlink are
// needed. Every libcrypto backend uses it.
import { cc, type ConvertFns, type FFIFunction } from "bun:ffi";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bindFunctions, openLibrary } from "./libc.ts";

const LIBCRYPTO_SONAMES: readonly string[] = ["libcrypto.so.3", "libcrypto.so.1.1", "libcrypto.so", "libcrypto.so.10"];

export type Symbols = Record<string, FFIFunction>;

/** `symbols` from the first libcrypto soname that has every one of them; null when none does. */
export function openLibcrypto<S extends Symbols>(symbols: S, sonames: readonly string[] = LIBCRYPTO_SONAMES): { symbols: ConvertFns<S>; soname: string } | null {
  for (const soname of sonames) {
    const handle = openLibrary(soname);
    const bound = handle === null ? null : bindFunctions(handle, symbols);
    if (bound !== null) return { symbols: bound, soname };
  }
  return null;
}

/** A TinyCC shim's C source and the functions it exports. */
export interface ShimSource<S extends Symbols> {
  source: string;
  symbols: S;
}

/**
 * The functions of `shim`: `given` when a caller compiled it already together with other shims
 * (null when that failed), else compiled here alone.
 */
export function shimFunctions<S extends Symbols>(tag: string, shim: ShimSource<S>, given: ConvertFns<S> | null | undefined): ConvertFns<S> | null {
  if (given !== undefined) return given;
  return compileShim(tag, shim.source, shim.symbols)?.symbols ?? null;
}

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
