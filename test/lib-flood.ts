// Handshake flooder, run inside a namespace: `bun test/lib-flood.ts '<FloodJob json>'`.
//
// Garbage mode: from every address in `sources` (one UDP socket each), initiations that carry a
// valid mac1 for the target (anyone who knows its public key can compute one) and garbage
// otherwise, as fast as the sockets take them; answers are counted per source.
// Peer mode (`peer`): a real configured peer's key sends correctly built initiations with fresh
// timestamps from one address every `peer.intervalMs`; first it obtains a cookie (one initiation,
// wait for the cookie reply) so later initiations carry a valid mac2 and reach the per-source
// rate limiter. Handshake responses received are counted.
// Prints one JSON line: FloodResult.
import { generatePrivateKey, publicKey, randomBytes, tai64n } from "../core/crypto.ts";
import { CookieGenerator } from "../core/cookie.ts";
import { Handshake, INITIATION_LEN, createInitiation } from "../core/noise.ts";
import { setMac1 } from "./lib-fuzz.ts";

export interface FloodJob {
  to: string;
  port: number;
  /** Target's public key, base64. */
  targetPub: string;
  sources: string[];
  seconds: number;
  /** Datagrams per burst (round robin over the sources) and pause after each burst. */
  burst?: number;
  gapMs?: number;
  peer?: { priv: string; source: string; intervalMs: number; seconds: number };
}

export interface FloodResult {
  sent: number;
  /** Answers per source address, keyed "type/length". */
  answers: Record<string, Record<string, number>>;
  /** The first few answers that are not 64-byte cookie replies (diagnostics). */
  odd?: string[];
  peer?: { sent: number; cookie: boolean; responses: number; cookieReplies: number; seconds: number };
}

if (import.meta.main) {
  const job = JSON.parse(process.argv[2]!) as FloodJob;
  const targetPub = new Uint8Array(Buffer.from(job.targetPub, "base64"));
  const result: FloodResult = { sent: 0, answers: {} };
  const note = (src: string, type: string) => {
    const m = (result.answers[src] ??= {});
    m[type] = (m[type] ?? 0) + 1;
  };
  const templates: Buffer[] = [];
  for (let i = 0; i < 256; i++) {
    const m = randomBytes(INITIATION_LEN);
    m[0] = 1;
    m[1] = m[2] = m[3] = 0;
    m.fill(0, INITIATION_LEN - 16);
    setMac1(m, targetPub);
    templates.push(Buffer.from(m));
  }
  const socks = await Promise.all(
    job.sources.map((ip) =>
      Bun.udpSocket({
        hostname: ip,
        socket: {
          data: (_s, buf, port, addr) => {
            const kind = `${buf[0] ?? -1}/${buf.length}`;
            note(ip, kind);
            if (kind !== "3/64" && (result.odd ??= []).length < 5) result.odd.push(`${ip} <- ${addr}:${port} ${Buffer.from(buf.subarray(0, 16)).toString("hex")}`);
          },
        },
      }),
    ),
  );

  const peerTask = (async () => {
    if (!job.peer) return;
    const p = job.peer;
    const priv = new Uint8Array(Buffer.from(p.priv, "base64"));
    const identity = { privateKey: priv, publicKey: publicKey(priv) };
    const hs = new Handshake(targetPub);
    hs.setLocalPrivate(priv);
    const gen = new CookieGenerator(targetPub);
    const stats = { sent: 0, cookie: false, responses: 0, cookieReplies: 0, seconds: p.seconds };
    result.peer = stats;
    let wall = Date.now();
    const buf = new Uint8Array(INITIATION_LEN);
    const sock = await Bun.udpSocket({
      hostname: p.source,
      socket: {
        data: (_s, d) => {
          if (d[0] === 3 && d.length === 64) {
            stats.cookieReplies++;
            if (gen.consumeReply(new Uint8Array(d), 0, performance.now())) stats.cookie = true;
          } else if (d[0] === 2) stats.responses++;
        },
      },
    });
    const sendOne = () => {
      wall = Math.max(wall + 1, Date.now());
      createInitiation(identity, hs, generatePrivateKey(), (Math.random() * 0xffffffff) >>> 0, tai64n(wall), buf);
      gen.addMacs(buf, 0, INITIATION_LEN, performance.now());
      sock.send(buf, job.port, job.to);
    };
    // Get a cookie first (the target answers with one only while it is under load).
    for (let i = 0; i < 40 && !stats.cookie; i++) {
      sendOne();
      await Bun.sleep(250);
    }
    stats.responses = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < p.seconds * 1000) {
      // Two per tick: sleeps overshoot on a loaded machine, and the rate must clearly exceed
      // both the per-source budget (20/s) and the per-peer 20 ms flood rule (50/s).
      sendOne();
      sendOne();
      stats.sent += 2;
      await Bun.sleep(p.intervalMs);
    }
    await Bun.sleep(300);
    sock.close();
  })();

  const t0 = performance.now();
  let k = 0;
  while (performance.now() - t0 < job.seconds * 1000) {
    for (let i = 0; i < (job.burst ?? 200); i++) {
      const s = socks[k % socks.length]!;
      s.send(templates[k & 255]!, job.port, job.to);
      k++;
    }
    await Bun.sleep(job.gapMs ?? 1);
  }
  result.sent = k;
  await peerTask;
  await Bun.sleep(500);
  for (const s of socks) s.close();
  console.log(JSON.stringify(result));
  process.exit(0);
}
