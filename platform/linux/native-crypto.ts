// libcrypto behind the core's three crypto seams (AEAD, X25519, BLAKE2s), loaded together for the
// daemon: their TinyCC shims are compiled as one unit, and each backend that loads and passes
// its self-check replaces noble while the others keep it.
import { setAead, setDh, setHash } from "../../core/crypto.ts";
import { AEAD_SHIM, loadOpenSslAead } from "./aead-openssl.ts";
import { HASH_SHIM, loadOpenSslHash } from "./hash-openssl.ts";
import { compileShim } from "./openssl.ts";
import { X25519_SHIM, loadOpenSslX25519 } from "./x25519-openssl.ts";

function plug<B extends { name: string }>(seam: string, load: () => B | null, use: (b: B) => void): string {
  const native = load();
  if (native) use(native);
  return `${seam} backend: ${native ? native.name : "noble (libcrypto unavailable)"}`;
}

/** Plugs in every libcrypto backend that works; one line per seam names the backend in use. */
export function useNativeCrypto(): string[] {
  const shims = [AEAD_SHIM, X25519_SHIM, HASH_SHIM];
  const symbols = { ...AEAD_SHIM.symbols, ...X25519_SHIM.symbols, ...HASH_SHIM.symbols };
  const shim = compileShim("crypto", shims.map((s) => s.source).join("\n"), symbols)?.symbols ?? null;
  return [
    plug("AEAD", () => loadOpenSslAead({ shim }), setAead),
    plug("X25519", () => loadOpenSslX25519({ shim }), setDh),
    plug("BLAKE2s", () => loadOpenSslHash({ shim }), setHash),
  ];
}
