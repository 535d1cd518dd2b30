// Data-path AEAD throughput, single core: noble vs libcrypto (one-call C shim and plain EVP
// calls), sealing and opening 1420-byte packets in place with prepared keys.
// Usage: bun bench/aead.ts [--quick] [--size N]
import { ptr } from "bun:ffi";
import { nobleAead, type AeadBackend } from "../core/crypto.ts";
import { loadOpenSslAead } from "../platform/linux/aead-openssl.ts";

const args = process.argv.slice(2);
const quick = args.includes("--quick");
const sizeArg = args.indexOf("--size");
const SIZE = sizeArg >= 0 ? Number(args[sizeArg + 1]) : 1420;
// Seconds of measurement per case; short because the bench machine is shared.
const SECONDS = quick ? 0.3 : 0.5;
const ROUNDS = quick ? 1 : 2;

export interface AeadResult {
  backend: string;
  op: "seal" | "open";
  mbPerSec: number;
  nsPerPacket: number;
}

function measure(op: () => void): number {
  // Warm-up lets the JIT compile the call path before timing.
  for (let i = 0; i < 2000; i++) op();
  let batch = 256;
  let best = Infinity;
  for (let r = 0; r < ROUNDS; r++) {
    let n = 0;
    const t0 = performance.now();
    let t = t0;
    while (t - t0 < SECONDS * 1000) {
      for (let i = 0; i < batch; i++) op();
      n += batch;
      t = performance.now();
    }
    best = Math.min(best, ((t - t0) * 1e6) / n);
    batch = Math.max(64, batch);
  }
  return best;
}

export function benchBackend(b: AeadBackend, size = SIZE): AeadResult[] {
  const key = new Uint8Array(32).map((_, i) => i + 1);
  const k = b.prepare(key);
  // Layout as on the data path: 16-byte header room, payload, 16-byte tag room.
  const buf = new Uint8Array(16 + size + 16);
  for (let i = 16; i < 16 + size; i++) buf[i] = i & 0xff;
  let counter = 0n;
  const sealNs = measure(() => {
    k.sealInto(counter++, buf, 16, size, buf, 16);
  });
  // Open a fixed valid packet repeatedly: decrypt into a second buffer so the input stays valid.
  const sealed = new Uint8Array(16 + size + 16);
  k.sealInto(7n, buf, 16, size, sealed, 16);
  const out = new Uint8Array(16 + size);
  const openNs = measure(() => {
    if (k.openInto(7n, sealed, 16, size + 16, out, 16) !== size) throw new Error(`${b.name}: open failed`);
  });
  k.destroy();
  const mb = (ns: number) => (size / ns) * 1e3;
  return [
    { backend: b.name, op: "seal", mbPerSec: mb(sealNs), nsPerPacket: sealNs },
    { backend: b.name, op: "open", mbPerSec: mb(openNs), nsPerPacket: openNs },
  ];
}

/** Cost of bun:ffi ptr() on a pooled buffer, the per-argument price of passing JS memory. */
function ptrCostNs(): number {
  const buf = new Uint8Array(2048);
  let acc = 0;
  const ns = measure(() => {
    acc += ptr(buf, 16);
  });
  if (acc === 0.5) console.log(acc); // keeps the loop observable
  return ns;
}

if (import.meta.main) {
  const backends: AeadBackend[] = [nobleAead];
  for (const mode of ["shim", "evp"] as const) {
    const b = loadOpenSslAead({ mode });
    if (b) backends.push(b);
    else console.log(`(openssl ${mode} backend unavailable)`);
  }
  // Backends alternate over several passes and the median pass is shown, so a burst of load
  // from other processes on the shared cores does not land on one backend only.
  const passes = quick ? 1 : 5;
  const all = new Map<string, AeadResult[]>();
  for (let p = 0; p < passes; p++) {
    for (const b of backends) {
      for (const r of benchBackend(b)) {
        const key = `${r.backend}\t${r.op}`;
        all.set(key, [...(all.get(key) ?? []), r]);
      }
    }
  }
  console.log(`ChaCha20-Poly1305, ${SIZE}-byte packets, in place, prepared key, one core, median of ${passes} passes`);
  console.log(`${"backend".padEnd(34)} ${"op".padEnd(5)} ${"MB/s".padStart(9)} ${"ns/pkt".padStart(9)}`);
  for (const rs of all.values()) {
    const r = rs.sort((a, b) => a.nsPerPacket - b.nsPerPacket)[rs.length >> 1]!;
    console.log(`${r.backend.padEnd(34)} ${r.op.padEnd(5)} ${r.mbPerSec.toFixed(0).padStart(9)} ${r.nsPerPacket.toFixed(0).padStart(9)}`);
  }
  console.log(`bun:ffi ptr(buf, off): ${ptrCostNs().toFixed(1)} ns per call`);
}
