// X25519 operations per second: noble vs libcrypto (shim / EVP driver, with and without the
// private-key context cache). Short by design (2 shared cores): bun bench/x25519.ts [--ms N]
//
// "response" is what a responder does per handshake (protocol.md §2.2): DH(S_priv, E_i),
// a fresh ephemeral (publicKey), DH(E_r, E_i), DH(E_r, S_i) - reported as responses/s.
import { nobleDh, type DhBackend } from "../core/crypto.ts";
import { loadOpenSslX25519 } from "../platform/linux/x25519-openssl.ts";
import { rate } from "./lib/stats.ts";

const msArg = process.argv.indexOf("--ms");
const budgetMs = msArg > 0 ? Number(process.argv[msArg + 1]) : 1400;
const rnd = (n: number) => crypto.getRandomValues(new Uint8Array(n));

const ROUNDS = 7;


const COLS = ["dh, same private key", "dh, new private key", "publicKey", "response"] as const;

function workloads(b: DhBackend): Record<(typeof COLS)[number], () => void> {
  const staticPriv = rnd(32);
  const peerPubs = Array.from({ length: 64 }, () => nobleDh.publicKey(rnd(32)));
  const privs = Array.from({ length: 64 }, () => rnd(32));
  let i = 0;
  return {
    "dh, same private key": () => b.scalarMult(staticPriv, peerPubs[i++ & 63]!),
    "dh, new private key": () => b.scalarMult(privs[i++ & 63]!, peerPubs[i & 63]!),
    publicKey: () => b.publicKey(privs[i++ & 63]!),
    response: () => {
      const ei = peerPubs[i++ & 63]!;
      b.scalarMult(staticPriv, ei);
      const er = rnd(32);
      b.publicKey(er);
      b.scalarMult(er, ei);
      b.scalarMult(er, peerPubs[(i * 7) & 63]!);
    },
  };
}

const backends: [string, DhBackend | null][] = [
  ["noble", nobleDh],
  ["openssl shim", loadOpenSslX25519({ mode: "shim" })],
  ["openssl shim, no cache", loadOpenSslX25519({ mode: "shim", cacheSize: 0 })],
  ["openssl evp", loadOpenSslX25519({ mode: "evp" })],
];

// Backends take turns in short slices and each cell reports its median slice: other processes
// on the shared cores then hit every backend alike instead of whichever ran at the time.
const loaded = backends.filter((e): e is [string, DhBackend] => e[1] !== null);
const samples = new Map(loaded.map(([label]) => [label, new Map(COLS.map((c) => [c, [] as number[]]))]));
const work = new Map(loaded.map(([label, b]) => [label, workloads(b)]));
for (const w of work.values()) for (const c of COLS) for (let k = 0; k < 5; k++) w[c]();
for (let r = 0; r < ROUNDS; r++) {
  for (const c of COLS) for (const [label] of loaded) samples.get(label)!.get(c)!.push(rate(work.get(label)![c], budgetMs / ROUNDS));
}
const median = (xs: number[]) => xs.sort((a, b) => a - b)[xs.length >> 1]!;
console.log(`| backend | ${COLS.join(" | ")} |`);
console.log(`|---|${COLS.map(() => "---").join("|")}|`);
for (const [label, b] of backends) {
  const cells = COLS.map((c) => (b ? Math.round(median(samples.get(label)!.get(c)!)).toString() : "unavailable"));
  console.log(`| ${label} | ${cells.join(" | ")} |`);
}
console.log(`(operations per second, median of ${ROUNDS} interleaved slices; response = handshake responses/s of X25519 work alone)`);
