// libcrypto behind the core's three crypto seams (AEAD, X25519, BLAKE2s), loaded together for the
// daemon: each backend that loads and passes its self-check replaces noble, the others keep it.
import { setAead, setDh, setHash } from "../../core/crypto.ts";
import { loadOpenSslAead } from "./aead-openssl.ts";
import { loadOpenSslHash } from "./hash-openssl.ts";
import { loadOpenSslX25519 } from "./x25519-openssl.ts";

function plug<B extends { name: string }>(seam: string, load: () => B | null, use: (b: B) => void): string {
  const native = load();
  if (native) use(native);
  return `${seam} backend: ${native ? native.name : "noble (libcrypto unavailable)"}`;
}

/** Plugs in every libcrypto backend that works; one line per seam names the backend in use. */
export function useNativeCrypto(): string[] {
  return [plug("AEAD", loadOpenSslAead, setAead), plug("X25519", loadOpenSslX25519, setDh), plug("BLAKE2s", loadOpenSslHash, setHash)];
}
