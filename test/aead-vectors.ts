// ChaCha20-Poly1305 vectors in the shape an AeadBackend consumes, so every backend (noble in
// core/crypto.ts, the native one in platform/) is checked against the same data:
//   import { checkAeadBackend } from "./aead-vectors.ts";
//   const r = checkAeadBackend(backend); expect(r.failures).toEqual([]); expect(r.checked).toBeGreaterThan(100);
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { AeadBackend } from "../core/crypto.ts";

export const VECTOR_DIR = join(import.meta.dir, "vectors");

export function loadVector<T = any>(file: string): T {
  return JSON.parse(readFileSync(join(VECTOR_DIR, file), "utf8")) as T;
}

export const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, "hex"));
export const toHex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex");

interface RawAead {
  name: string;
  key: string;
  nonce: string;
  aad: string;
  plaintext: string | null;
  ciphertext_and_tag: string;
  must_fail: boolean;
}

/** Any ChaCha20-Poly1305 case, with its raw 12-byte nonce. */
export interface ChaChaCase {
  name: string;
  key: Uint8Array;
  nonce: Uint8Array;
  aad: Uint8Array;
  /** null for must-fail cases. */
  plaintext: Uint8Array | null;
  /** ciphertext || 16-byte tag */
  sealed: Uint8Array;
  mustFail: boolean;
}

/** A case whose nonce is WireGuard's `00000000 || le64(counter)`. */
export interface AeadVectorCase extends ChaChaCase {
  counter: bigint;
}

/** Every RFC 8439 / kernel / derived ChaCha20-Poly1305 entry of chacha20poly1305.json. */
export function allChaChaCases(): ChaChaCase[] {
  const v = loadVector<Record<string, RawAead[]>>("chacha20poly1305.json");
  const out: ChaChaCase[] = [];
  for (const group of ["rfc8439", "derived_must_fail", "kernel_encrypt", "kernel_decrypt"]) {
    const list = v[group];
    if (!Array.isArray(list) || list.length === 0) throw new Error(`chacha20poly1305.json: missing ${group}`);
    for (const e of list) {
      out.push({
        name: e.name,
        key: hex(e.key),
        nonce: hex(e.nonce),
        aad: hex(e.aad),
        plaintext: e.plaintext === null ? null : hex(e.plaintext),
        sealed: hex(e.ciphertext_and_tag),
        mustFail: e.must_fail,
      });
    }
  }
  return out;
}

export function wireguardCounter(nonce: Uint8Array): bigint | null {
  if (nonce.length !== 12 || nonce[0] !== 0 || nonce[1] !== 0 || nonce[2] !== 0 || nonce[3] !== 0) return null;
  return new DataView(nonce.buffer, nonce.byteOffset, 12).getBigUint64(4, true);
}

/**
 * The RFC/kernel cases usable with WireGuard's nonce form, plus the transport messages of
 * wireguard_handshake.json (empty AAD, padded IP packets and a keepalive).
 */
export function aeadVectorCases(): AeadVectorCase[] {
  const out: AeadVectorCase[] = [];
  for (const c of allChaChaCases()) {
    const counter = wireguardCounter(c.nonce);
    if (counter !== null) out.push({ ...c, counter });
  }
  const hs = loadVector<any>("wireguard_handshake.json");
  for (const h of hs.handshakes) {
    for (const [i, t] of (h.transport as any[]).entries()) {
      const plain = new Uint8Array(t.plaintext_padded_length);
      plain.set(hex(t.plaintext_ip_packet));
      const msg = hex(t.message);
      const counter = BigInt(t.counter);
      const nonce = new Uint8Array(12);
      new DataView(nonce.buffer).setBigUint64(4, counter, true);
      out.push({
        name: `${h.name}: transport ${i} (${t.direction}, counter ${t.counter})`,
        key: hex(t.key),
        nonce,
        counter,
        aad: new Uint8Array(0),
        plaintext: plain,
        sealed: msg.subarray(16),
        mustFail: false,
      });
    }
  }
  return out;
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Runs every WireGuard-nonce case through `backend`: one-shot seal/open for all of them, and the
 * prepared sealInto/openInto path (disjoint buffers at odd offsets, and in place) for those with
 * empty AAD, since AeadKey has no AAD. Must-fail cases must be refused by open and openInto.
 */
export function checkAeadBackend(backend: AeadBackend): { checked: number; prepared: number; failures: string[] } {
  const failures: string[] = [];
  let checked = 0;
  let prepared = 0;
  const fail = (c: AeadVectorCase, what: string) => failures.push(`${backend.name}: ${c.name}: ${what}`);
  for (const c of aeadVectorCases()) {
    checked++;
    let opened: Uint8Array | null = null;
    try {
      opened = backend.open(c.key, c.counter, c.sealed, c.aad);
    } catch (e) {
      fail(c, `open threw ${e}`);
    }
    if (c.mustFail) {
      if (opened !== null) fail(c, "open accepted a forged message");
    } else {
      if (opened === null || !same(opened, c.plaintext!)) fail(c, "open gave wrong plaintext");
      try {
        const sealed = backend.seal(c.key, c.counter, c.plaintext!, c.aad);
        if (!same(sealed, c.sealed)) fail(c, `seal mismatch: ${toHex(sealed)}`);
      } catch (e) {
        fail(c, `seal threw ${e}`);
      }
    }
    if (c.aad.length !== 0) continue;
    prepared++;
    const k = backend.prepare(c.key);
    try {
      const len = c.sealed.length;
      // Disjoint buffers at odd offsets.
      const src = new Uint8Array(len + 37).fill(0xa5);
      src.set(c.sealed, 5);
      const dst = new Uint8Array(len + 41).fill(0x5a);
      const n = k.openInto(c.counter, src, 5, len, dst, 11);
      if (c.mustFail) {
        if (n !== -1) fail(c, `openInto accepted a forged message (${n})`);
      } else if (n !== len - 16 || !same(dst.subarray(11, 11 + n), c.plaintext!)) {
        fail(c, `openInto gave ${n} / wrong plaintext`);
      }
      // In place, as the data path does it.
      const buf = new Uint8Array(len + 32);
      buf.set(c.sealed, 16);
      const m = k.openInto(c.counter, buf, 16, len, buf, 16);
      if (c.mustFail) {
        if (m !== -1) fail(c, `in-place openInto accepted a forged message (${m})`);
      } else if (m !== len - 16 || !same(buf.subarray(16, 16 + m), c.plaintext!)) {
        fail(c, `in-place openInto gave ${m} / wrong plaintext`);
      }
      // Wrong counter must not authenticate.
      if (!c.mustFail && k.openInto(c.counter ^ 1n, src, 5, len, dst, 11) !== -1) fail(c, "openInto accepted a wrong counter");
      if (!c.mustFail) {
        const plain = c.plaintext!;
        const s = new Uint8Array(plain.length + 19).fill(0x33);
        s.set(plain, 3);
        const d = new Uint8Array(plain.length + 16 + 23).fill(0x44);
        const w = k.sealInto(c.counter, s, 3, plain.length, d, 7);
        if (w !== plain.length + 16 || !same(d.subarray(7, 7 + w), c.sealed)) fail(c, "sealInto mismatch");
        if (d[6] !== 0x44 || d[7 + plain.length + 16] !== 0x44) fail(c, "sealInto wrote outside its range");
        const ip = new Uint8Array(plain.length + 16 + 32);
        ip.set(plain, 16);
        const w2 = k.sealInto(c.counter, ip, 16, plain.length, ip, 16);
        if (w2 !== plain.length + 16 || !same(ip.subarray(16, 16 + w2), c.sealed)) fail(c, "in-place sealInto mismatch");
      }
    } catch (e) {
      fail(c, `prepared path threw ${e}`);
    } finally {
      k.destroy();
    }
  }
  return { checked, prepared, failures };
}
