// Wire helpers for the reliability tests: a tshark capture of UDP payloads in a namespace and a
// small UDP sender/listener (`bun test/lib-udp.ts '<json>'`, run inside a namespace).
import { type Netns, type Proc, waitFor } from "./netns.ts";

export interface Datagram {
  src: string;
  sport: number;
  dst: string;
  dport: number;
  payload: Uint8Array;
}

/**
 * Starts capturing UDP (IPv4 and IPv6) on `dev` inside `ns` into `file`, narrowed by a capture
 * `filter` if given (e.g. "host 10.0.0.1"); stop() ends it and returns the datagrams.
 */
export async function capture(ns: Netns, dev: string, file: string, filter?: string): Promise<{ stop(): Promise<Datagram[]> }> {
  const p: Proc = ns.spawn(["dumpcap", "-q", "-i", dev, "-f", filter ? `udp and (${filter})` : "udp", "-w", file]);
  await waitFor(() => p.output().includes("Capturing") || Bun.file(file).size > 0, 5000);
  await Bun.sleep(300);
  return {
    async stop() {
      await Bun.sleep(200);
      await p.kill();
      // IPv4 or IPv6: one of each address pair is empty.
      const fields = ["ip.src", "ipv6.src", "udp.srcport", "ip.dst", "ipv6.dst", "udp.dstport", "udp.payload"];
      const r = Bun.spawnSync(["tshark", "-r", file, "-T", "fields", ...fields.flatMap((f) => ["-e", f])]);
      const out: Datagram[] = [];
      for (const line of r.stdout.toString().split("\n")) {
        const f = line.split("\t");
        if (f.length < 7 || !f[6]) continue;
        out.push({ src: f[0] || f[1]!, sport: Number(f[2]), dst: f[3] || f[4]!, dport: Number(f[5]), payload: new Uint8Array(Buffer.from(f[6]!.replaceAll(":", ""), "hex")) });
      }
      return out;
    },
  };
}

export interface SendJob {
  to: string;
  port: number;
  /** Hex payloads, sent in order with `gapMs` between them. */
  payloads: string[];
  gapMs?: number;
  /** How long to listen for answers on the sending socket after the last datagram. */
  listenMs?: number;
  bind?: string;
}

/** Runs a SendJob inside `ns`; returns the first byte (message type) of every answer received. */
export function sendFrom(ns: Netns, job: SendJob): number[] {
  const r = ns.run([process.execPath, import.meta.path, JSON.stringify(job)]);
  if (r.code !== 0) throw new Error(`udp sender failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split("\n").pop()!);
}

if (import.meta.main) {
  const job = JSON.parse(process.argv[2]!) as SendJob;
  const answers: number[] = [];
  const sock = await Bun.udpSocket({
    hostname: job.bind ?? "0.0.0.0",
    socket: { data: (_s, buf) => void answers.push(buf[0] ?? -1) },
  });
  for (const h of job.payloads) {
    sock.send(Buffer.from(h, "hex"), job.port, job.to);
    if (job.gapMs) await Bun.sleep(job.gapMs);
  }
  await Bun.sleep(job.listenMs ?? 1000);
  sock.close();
  console.log(JSON.stringify(answers));
}
