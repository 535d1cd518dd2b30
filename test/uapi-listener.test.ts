// The UAPI socket server (platform/linux/uapi-listener.ts): large requests, closing like
// wireguard-go, over-long lines, and the events=1 subscription extension.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { listenUapi, type UapiListener } from "../platform/linux/uapi-listener.ts";
import { socketPath } from "../platform/socket-path.ts";
import { createDevice } from "../core/device.ts";
import { generatePrivateKey, publicKey } from "../core/crypto.ts";

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "wgt-uapil-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
const fresh = () => socketPath(`wgt-l${process.pid}-${n++}`, dir);

/** Connects, writes `req` (in chunks), collects everything until the server closes or `until` matches. */
async function talk(path: string, req: string | Uint8Array, opts: { until?: (got: string) => boolean; timeoutMs?: number } = {}) {
  let got = "";
  let closed = false;
  const done = Promise.withResolvers<void>();
  const s = await Bun.connect({
    unix: path,
    socket: {
      data(_s, d) {
        got += d.toString();
        if (opts.until?.(got)) done.resolve();
      },
      close() {
        closed = true;
        done.resolve();
      },
      end() {
        closed = true;
        done.resolve();
      },
    },
  });
  const bytes = typeof req === "string" ? new TextEncoder().encode(req) : req;
  // Write in 64 KiB pieces, waiting for the kernel buffer like a real client.
  for (let off = 0; off < bytes.length; ) {
    const w = s.write(bytes.subarray(off, off + 65536));
    off += w;
    if (w === 0) await Bun.sleep(1);
  }
  const timer = setTimeout(() => done.resolve(), opts.timeoutMs ?? 5000);
  await done.promise;
  clearTimeout(timer);
  const result = { got, closed };
  s.end();
  return result;
}

describe("UAPI listener", () => {
  test("a 10,000-peer set (several MB) is handled whole", async () => {
    const path = fresh();
    const seen: number[] = [];
    const l = listenUapi(path, (req) => {
      seen.push(req.length);
      return "errno=0\n\n";
    });
    try {
      let req = "set=1\nreplace_peers=true\n";
      for (let i = 0; i < 10_000; i++) {
        const k = i.toString(16).padStart(64, "0");
        req += `public_key=${k}\npreshared_key=${k}\nendpoint=192.0.2.${i & 255}:${1000 + i}\npersistent_keepalive_interval=25\nreplace_allowed_ips=true\nallowed_ip=10.${i >> 8}.${i & 255}.0/24\nallowed_ip=fd00::${i.toString(16)}/128\n`;
      }
      req += "\n";
      expect(req.length).toBeGreaterThan(2 << 20);
      const r = await talk(path, req, { until: (g) => g.endsWith("\n\n") });
      expect(r.got).toBe("errno=0\n\n");
      expect(seen).toEqual([req.length]);
    } finally {
      l.close();
    }
  });

  test("closes after an answer the handler marks final, or an empty one", async () => {
    const path = fresh();
    const l = listenUapi(path, (req) => (req.startsWith("bye") ? { response: "errno=-22\n\n", close: true } : req.startsWith("x") ? "" : "errno=0\n\n"));
    try {
      let r = await talk(path, "x=1\n\nget=1\n\n");
      expect(r).toEqual({ got: "", closed: true });
      r = await talk(path, "bye\n\nget=1\n\n");
      expect(r).toEqual({ got: "errno=-22\n\n", closed: true });
      r = await talk(path, "get=1\n\nget=1\n\n", { until: (g) => g === "errno=0\n\nerrno=0\n\n" });
      expect(r).toEqual({ got: "errno=0\n\nerrno=0\n\n", closed: false });
    } finally {
      l.close();
    }
  });

  test("an over-long line fails a set with EIO (go's scanner limit) and closes", async () => {
    const path = fresh();
    let calls = 0;
    const l = listenUapi(path, () => (calls++, "errno=0\n\n"));
    try {
      const r = await talk(path, "set=1\npublic_key=" + "a".repeat(70_000));
      expect(r).toEqual({ got: "errno=-5\n\n", closed: true });
      expect(calls).toBe(0);
    } finally {
      l.close();
    }
  });

  test("with the engine: unknown operation closes silently; get=1 + junk answers errno=-22 then closes (go)", async () => {
    const path = fresh();
    const dev = createDevice({ sendUdp() {}, writeTun() {}, bind: (p) => p }, { mono: () => 0, wall: () => 0 });
    const l: UapiListener = listenUapi(path, (req) => dev.uapi(req));
    try {
      expect(await talk(path, "hello=1\n\n")).toEqual({ got: "", closed: true });
      expect(await talk(path, "get=1\nx...\n\n")).toEqual({ got: "errno=-22\n\n", closed: true });
      const k = generatePrivateKey();
      const r = await talk(path, `set=1\nprivate_key=${Buffer.from(k).toString("hex")}\n\nget=1\n\n`, { until: (g) => g.split("\n\n").length === 3 });
      expect(r.got).toBe(`errno=0\n\nprivate_key=${Buffer.from(k).toString("hex")}\nerrno=0\n\n`);
      expect(r.closed).toBe(false);
      void publicKey;
    } finally {
      l.close();
    }
  });

  test("events=1 subscribes: errno=0, then the lines written to it; unsubscribed when the client leaves", async () => {
    const path = fresh();
    const writers = new Set<(line: string) => boolean>();
    const l = listenUapi(path, () => "errno=0\n\n", undefined, {
      subscribe(write) {
        writers.add(write);
        return () => writers.delete(write);
      },
    });
    try {
      let got = "";
      const s = await Bun.connect({ unix: path, socket: { data: (_s, d) => void (got += d.toString()) } });
      s.write("events=1\n\n");
      for (let i = 0; i < 100 && writers.size === 0; i++) await Bun.sleep(5);
      expect(writers.size).toBe(1);
      for (const w of writers) expect(w('{"type":"a"}\n')).toBe(true);
      s.write("get=1\n\n"); // ignored on a subscription
      for (let i = 0; i < 100 && !got.includes("a"); i++) await Bun.sleep(5);
      expect(got).toBe('errno=0\n\n{"type":"a"}\n');
      s.end();
      for (let i = 0; i < 100 && writers.size > 0; i++) await Bun.sleep(5);
      expect(writers.size).toBe(0);
      // plain connections are not subscribers
      expect((await talk(path, "get=1\n\n", { until: (g) => g.endsWith("\n\n") })).got).toBe("errno=0\n\n");
    } finally {
      l.close();
    }
  });
});

describe("UAPI listener: a client that half-closes", () => {
  test("after `get=1` and shutdown(SHUT_WR) still receives the whole (large) answer", async () => {
    const path = fresh();
    const big = `private_key=${"ab".repeat(32)}\n` + `public_key=${"cd".repeat(32)}\nallowed_ip=10.0.0.1/32\n`.repeat(40000) + "errno=0\n\n";
    const l = listenUapi(path, (req) => (req === "get=1\n\n" ? big : "errno=22\n\n"));
    try {
      const { createConnection } = await import("node:net");
      const got = await new Promise<string>((resolve, reject) => {
        const chunks: Buffer[] = [];
        const c = createConnection({ path, allowHalfOpen: true });
        c.on("connect", () => c.end("get=1\n\n"));
        c.on("data", (d: Buffer) => chunks.push(d));
        c.on("end", () => resolve(Buffer.concat(chunks).toString("latin1")));
        c.on("error", reject);
        setTimeout(() => reject(new Error("timeout")), 10000);
      });
      expect(got.length).toBe(big.length);
      expect(got === big).toBe(true);
    } finally {
      l.close();
    }
  });
});
