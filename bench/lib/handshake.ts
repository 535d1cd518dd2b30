// Handshake-rate load generator. Builds valid Noise_IK initiations (protocol.md §2.1) for many
// initiator identities and keeps a fixed window of them outstanding against one responder:
// each response releases the next initiation. The window stays below go's under-load threshold
// (queue >= 128), so this measures how fast a daemon answers handshakes, not its DoS defence.
//
// Every peer reuses one ephemeral key (the responder does not check, and it keeps the generator's
// own cost to one small AEAD and one MAC per message); timestamps are synthetic and strictly
// increasing per peer, and each peer is used at most every 25 ms (responders refuse < 20 ms).
//
// Run inside the initiator's namespace: bun bench/lib/handshake.ts <params.json>
import { readFileSync } from "node:fs";
import { aeadSeal, dh, hash, kdf1, kdf2, mac, publicKey } from "../../core/crypto.ts";

const CONSTRUCTION = "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s";
const IDENTIFIER = "WireGuard v1 zx2c4 Jason@zx2c4.com";
const te = new TextEncoder();

export interface FloodParams {
  responderPublicKey: string; // base64
  host: string;
  port: number;
  initiatorPrivateKeys: string[]; // base64, configured as peers on the responder
  seconds: number;
  window: number;
}

export interface FloodResult {
  sent: number;
  responses: number;
  cookies: number;
  timeouts: number;
  seconds: number;
  responsesPerSec: number;
}

interface Initiator {
  encryptedStatic: Uint8Array;
  hashAfterStatic: Uint8Array;
  timestampKey: Uint8Array;
  nextTimestamp: bigint;
  lastSent: number;
}

const b64 = (s: string) => Uint8Array.from(Buffer.from(s, "base64"));

export function prepareInitiators(responderPub: Uint8Array, privs: Uint8Array[]) {
  const c0 = hash(te.encode(CONSTRUCTION));
  const h0 = hash(c0, te.encode(IDENTIFIER));
  const ePriv = new Uint8Array(32).map((_, i) => (i * 37 + 11) & 0xff);
  ePriv[0]! &= 248;
  ePriv[31] = (ePriv[31]! & 127) | 64;
  const ePub = publicKey(ePriv);
  let h = hash(h0, responderPub);
  let c = kdf1(c0, ePub);
  h = hash(h, ePub);
  const es = dh(ePriv, responderPub);
  if (!es) throw new Error("responder key gives a zero DH");
  const [c1, k1] = kdf2(c, es);
  c = c1;
  const now = BigInt(Date.now());
  const initiators: Initiator[] = privs.map((priv) => {
    const encryptedStatic = aeadSeal(k1, 0n, publicKey(priv), h);
    const hashAfterStatic = hash(h, encryptedStatic);
    const ss = dh(priv, responderPub);
    if (!ss) throw new Error("initiator key gives a zero DH");
    const [, timestampKey] = kdf2(c, ss);
    // TAI64N of now, then +1 ns per message: strictly increasing and never below a real one.
    const nextTimestamp = ((0x400000000000000an + now / 1000n) << 32n) | ((now % 1000n) * 1_000_000n);
    return { encryptedStatic, hashAfterStatic, timestampKey, nextTimestamp, lastSent: -1e9 };
  });
  const mac1Key = hash(te.encode("mac1----"), responderPub);
  return { ePub, initiators, mac1Key };
}

export function buildInitiation(prep: ReturnType<typeof prepareInitiators>, who: Initiator, sender: number): Uint8Array {
  const msg = new Uint8Array(148);
  const v = new DataView(msg.buffer);
  v.setUint32(0, 1, true);
  v.setUint32(4, sender, true);
  msg.set(prep.ePub, 8);
  msg.set(who.encryptedStatic, 40);
  const ts = new Uint8Array(12);
  const tv = new DataView(ts.buffer);
  tv.setBigUint64(0, who.nextTimestamp >> 32n);
  tv.setUint32(8, Number(who.nextTimestamp & 0xffffffffn));
  who.nextTimestamp++;
  msg.set(aeadSeal(who.timestampKey, 0n, ts, who.hashAfterStatic), 88);
  msg.set(mac(prep.mac1Key, msg.subarray(0, 116)), 116);
  return msg;
}

export async function flood(p: FloodParams): Promise<FloodResult> {
  const prep = prepareInitiators(b64(p.responderPublicKey), p.initiatorPrivateKeys.map(b64));
  const outstanding = new Map<number, number>(); // sender index -> send time
  let sent = 0;
  let responses = 0;
  let cookies = 0;
  let timeouts = 0;
  let next = 0;
  let senderSeq = (Math.random() * 0x7fffffff) >>> 0;
  let running = true;
  let t0 = 0;
  const sock = await Bun.udpSocket({
    socket: {
      data(_s, buf) {
        if (buf.length < 8) return;
        const type = buf[0];
        const receiver = buf.readUInt32LE(type === 2 ? 8 : 4);
        if (!outstanding.delete(receiver)) return;
        if (type === 2 && buf.length === 92) responses++;
        else if (type === 3 && buf.length === 64) cookies++;
        if (running) sendOne();
      },
    },
  });
  function sendOne(): void {
    const now = performance.now();
    const who = prep.initiators[next]!;
    if (now - who.lastSent < 25) {
      // Every identity was used within 25 ms: wait instead of being refused as a flood.
      setTimeout(() => running && sendOne(), 25 - (now - who.lastSent));
      return;
    }
    next = (next + 1) % prep.initiators.length;
    who.lastSent = now;
    senderSeq = (senderSeq + 1) >>> 0;
    outstanding.set(senderSeq, now);
    sock.send(buildInitiation(prep, who, senderSeq), p.port, p.host);
    sent++;
  }
  t0 = performance.now();
  for (let i = 0; i < p.window; i++) sendOne();
  // Lost or refused messages would shrink the window; replace any outstanding for > 250 ms.
  const reaper = setInterval(() => {
    const now = performance.now();
    for (const [idx, at] of outstanding) {
      if (now - at > 250) {
        outstanding.delete(idx);
        timeouts++;
        if (running) sendOne();
      }
    }
  }, 50);
  await Bun.sleep(p.seconds * 1000);
  running = false;
  const seconds = (performance.now() - t0) / 1000;
  clearInterval(reaper);
  sock.close();
  return { sent, responses, cookies, timeouts, seconds, responsesPerSec: responses / seconds };
}

if (import.meta.main) {
  const params = JSON.parse(readFileSync(process.argv[2]!, "utf8")) as FloodParams;
  const r = await flood(params);
  process.stdout.write(JSON.stringify(r) + "\n");
  process.exit(0);
}
