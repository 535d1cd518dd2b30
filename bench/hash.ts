// BLAKE2s primitives per second: noble as before the HashBackend seam (fresh instances), noble
// with reused instances (the default), and libcrypto through the shim; plus what a responder
// does per handshake (protocol.md §2): mac1 check, consumeInitiation, createResponse, mac1 of the
// response, deriveSession, with native X25519 and AEAD so the hash share is visible.
// Short by design (2 shared cores): bun bench/hash.ts [--ms N]
import { nobleHash, nobleHashReference, setAead, setDh, setHash, tai64n, type HashBackend } from "../core/crypto.ts";
import { CookieChecker, CookieGenerator } from "../core/cookie.ts";
import {
  consumeInitiation,
  createInitiation,
  createResponse,
  deriveSession,
  Handshake,
  INITIATION_LEN,
  RESPONSE_LEN,
  type StaticIdentity,
} from "../core/noise.ts";
import { loadOpenSslAead } from "../platform/linux/aead-openssl.ts";
import { loadOpenSslHash } from "../platform/linux/hash-openssl.ts";
import { loadOpenSslX25519 } from "../platform/linux/x25519-openssl.ts";
import { generatePrivateKey, publicKey } from "../core/crypto.ts";
import { rate } from "./lib/stats.ts";

const msArg = process.argv.indexOf("--ms");
const budgetMs = msArg > 0 ? Number(process.argv[msArg + 1]) : 2000;
const ROUNDS = 7;
const rnd = (n: number) => crypto.getRandomValues(new Uint8Array(n));

const aead = loadOpenSslAead();
const dhNative = loadOpenSslX25519();
if (aead) setAead(aead);
if (dhNative) setDh(dhNative);


// Responder fixture: initiations pre-built from one initiator with increasing timestamps; the
// responder's clock advances 25 ms per message so the 20 ms flood rule never refuses one.
const initiator: StaticIdentity = (() => {
  const k = generatePrivateKey();
  return { privateKey: k, publicKey: publicKey(k) };
})();
const responder: StaticIdentity = (() => {
  const k = generatePrivateKey();
  return { privateKey: k, publicKey: publicKey(k) };
})();
const initHs = new Handshake(responder.publicKey);
initHs.setLocalPrivate(initiator.privateKey);
const gen = new CookieGenerator(responder.publicKey);
const POOL = 4096;
const initiations: Uint8Array[] = [];
for (let i = 0; i < POOL; i++) {
  const m = new Uint8Array(INITIATION_LEN);
  createInitiation(initiator, initHs, generatePrivateKey(), i + 1, tai64n(1_700_000_000_000 + i * 1000), m);
  gen.addMacs(m, 0, INITIATION_LEN, 0);
  initiations.push(m);
}

function responderWork(): () => void {
  const peer = { handshake: new Handshake(initiator.publicKey) };
  peer.handshake.setLocalPrivate(responder.privateKey);
  const checker = new CookieChecker(rnd);
  checker.setLocalPublic(responder.publicKey);
  const back = new CookieGenerator(initiator.publicKey);
  const out = new Uint8Array(RESPONSE_LEN);
  let i = 0;
  let now = 0;
  return () => {
    if (i === POOL) {
      // timestamps would replay: start over with a fresh record
      peer.handshake = new Handshake(initiator.publicKey);
      peer.handshake.setLocalPrivate(responder.privateKey);
      i = 0;
    }
    const msg = initiations[i++]!;
    now += 25;
    if (!checker.checkMac1(msg, 0, INITIATION_LEN)) throw new Error("mac1");
    const p = consumeInitiation(responder, msg, 0, (k) => (k.length === 32 ? peer : undefined), now);
    if (!p) throw new Error("consumeInitiation");
    if (!createResponse(p.handshake, generatePrivateKey(), i, out)) throw new Error("createResponse");
    back.addMacs(out, 0, RESPONSE_LEN, now);
    if (!deriveSession(p.handshake)) throw new Error("deriveSession");
  };
}

const COLS = ["hash", "mac", "hmac", "kdf1", "kdf2", "kdf3", "response"] as const;
function workloads(b: HashBackend): Record<(typeof COLS)[number], () => void> {
  const key = rnd(32);
  const data32 = rnd(32);
  const msg = rnd(116);
  return {
    hash: () => b.hash([key, data32]),
    mac: () => b.mac(key, msg),
    hmac: () => b.hmac(key, data32),
    kdf1: () => b.kdf1(key, data32),
    kdf2: () => b.kdf2(key, data32),
    kdf3: () => b.kdf3(key, data32),
    response: (() => {
      const w = responderWork();
      return () => {
        setHash(b);
        w();
      };
    })(),
  };
}

const backends: [string, HashBackend | null][] = [
  ["noble, fresh instances (before)", nobleHashReference],
  ["noble, reused instances", nobleHash],
  ["openssl shim", loadOpenSslHash()],
];
const loaded = backends.filter((e): e is [string, HashBackend] => e[1] !== null);
const work = new Map(loaded.map(([label, b]) => [label, workloads(b)]));
const samples = new Map(loaded.map(([label]) => [label, new Map(COLS.map((c) => [c, [] as number[]]))]));
for (const w of work.values()) for (const c of COLS) for (let k = 0; k < 200; k++) w[c]();
// Backends take turns in short slices; each cell is the median slice, so load from other
// processes on the shared cores hits every backend alike.
for (let r = 0; r < ROUNDS; r++) {
  for (const c of COLS) for (const [label] of loaded) samples.get(label)!.get(c)!.push(rate(work.get(label)![c], budgetMs / ROUNDS / COLS.length));
}
const median = (xs: number[]) => xs.sort((a, b) => a - b)[xs.length >> 1]!;
console.log(`X25519: ${dhNative?.name ?? "noble"}, AEAD: ${aead?.name ?? "noble"}`);
console.log(`| backend | ${COLS.join(" | ")} |`);
console.log(`|---|${COLS.map(() => "---").join("|")}|`);
for (const [label, b] of backends) {
  const cells = COLS.map((c) => (b ? Math.round(median(samples.get(label)!.get(c)!)).toString() : "unavailable"));
  console.log(`| ${label} | ${cells.join(" | ")} |`);
}
console.log(`(operations per second, median of ${ROUNDS} interleaved slices; response = responder handshakes/s on one core incl. X25519 + AEAD)`);
