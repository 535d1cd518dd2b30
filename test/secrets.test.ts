// Secrets: keys never reach logs, key files and sockets have tight modes, key material is zeroed.
//
// * Engine (in memory): logs at every level through handshake, data, rekey, expiry and close
//   contain no private key, preshared key or session key (base64 or hex, or a 16-char prefix).
// * Daemon (namespaces, LOG_LEVEL=debug): the same for private and preshared keys, including
//   after malformed UAPI sets that carry key-like values.
// * Zeroing: every prepared AEAD key is destroyed after close() and after zero_key_material; the
//   default backend's destroy() really zeroes (a destroyed key seals like the all-zero key);
//   handshake C/H/ephemeral are zero once a keypair is derived; the private key is wiped on close.
// * Modes: `wg genkey > file` warns for a world-accessible file and not under umask 077;
//   the UAPI socket is srwx------ and its directory 0755, the same as wireguard-go's.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "node:net";
import { getAead, setAead, type AeadBackend, type AeadKey } from "../core/crypto.ts";
import { makeWorld, type World } from "./lib-fuzz.ts";
import { SOCKET_DIR, socketPath } from "../platform/socket-path.ts";
import { Lab, waitFor } from "./netns.ts";
import { BUN, ROOT, ifname, pingUntil, startDaemon, wgPair } from "./lib-wgpair.ts";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const b64 = (b: Uint8Array) => Buffer.from(b).toString("base64");

/** Every textual form of `key` we look for (whole and prefixes, so truncated leaks count too). */
function forms(key: Uint8Array): string[] {
  const h = hex(key);
  const b = b64(key);
  return [h, h.toUpperCase(), b, h.slice(0, 16), b.slice(0, 16)];
}

function leaks(text: string, keys: Uint8Array[]): string[] {
  const found: string[] = [];
  for (const k of keys) for (const f of forms(k)) if (text.includes(f)) found.push(f);
  return found;
}

interface Tracked {
  copy: Uint8Array;
  destroyed: boolean;
}

/** Wraps the current AEAD backend, remembering every key it prepares and whether it was destroyed. */
function trackingAead(): { tracked: Tracked[]; restore: () => void } {
  const base = getAead();
  const tracked: Tracked[] = [];
  const wrapped: AeadBackend = {
    ...base,
    prepare(key: Uint8Array): AeadKey {
      const rec: Tracked = { copy: Uint8Array.from(key), destroyed: false };
      tracked.push(rec);
      const inner = base.prepare(key);
      // A proxy, so methods the backend grows later keep working.
      return new Proxy(inner, {
        get(target, prop) {
          if (prop === "destroy")
            return () => {
              rec.destroyed = true;
              target.destroy();
            };
          const v = Reflect.get(target, prop);
          return typeof v === "function" ? v.bind(target) : v;
        },
      });
    },
  };
  setAead(wrapped);
  return { tracked, restore: () => setAead(base) };
}

function ipv4(src: number, dst: number, n: number): Uint8Array {
  const p = new Uint8Array(20 + n);
  p[0] = 0x45;
  p[2] = p.length >> 8;
  p[3] = p.length & 255;
  p.set([10, 0, 0, src], 12);
  p.set([10, 0, 0, dst], 16);
  return p;
}

function traffic(w: World, rounds: number): void {
  for (let i = 0; i < rounds; i++) {
    const x = ipv4(1, 2, 50);
    w.a.dev.sendTunPacket(x, 0, x.length);
    const y = ipv4(2, 1, 60);
    w.b.dev.sendTunPacket(y, 0, y.length);
    w.pump();
  }
}

/** Advances the fake clock in steps, running timers and delivering what they send. */
function advance(w: World, ms: number, step = 1000, deliver = true): void {
  for (let t = 0; t < ms; t += step) {
    w.clock.mono += step;
    w.clock.wall += step;
    w.a.dev.tick();
    w.b.dev.tick();
    if (deliver) w.pump();
    else {
      w.a.out.udp.length = 0;
      w.b.out.udp.length = 0;
    }
  }
}

describe("engine", () => {
  test("no key in logs at any level; every session key destroyed after close()", () => {
    const { tracked, restore } = trackingAead();
    try {
      const w = makeWorld(7, true);
      traffic(w, 3);
      // Two rekeys (REKEY_AFTER_TIME 120 s) with traffic flowing.
      for (let i = 0; i < 26; i++) {
        advance(w, 10_000, 1000);
        traffic(w, 1);
      }
      expect(tracked.length).toBeGreaterThanOrEqual(6); // >= 3 sessions x 2 directions
      const psk = Buffer.from(w.a.dev.peers.values().next().value!.handshake.presharedKey);
      const keys = [w.a.priv, w.b.priv, psk, ...tracked.map((t) => t.copy)];
      expect(psk.some((x) => x !== 0)).toBe(true);
      const logs = [...w.a.out.logs, ...w.b.out.logs, ...w.a.out.events, ...w.b.out.events].join("\n");
      expect(w.a.out.logs.some((l) => l.includes("Handshake complete") || l.includes("handshake"))).toBe(true);
      // The UAPI answer carries the keys by design (that is how `wg showconf` works) - and the
      // test would notice a leak: it finds them there.
      expect(leaks(w.a.dev.uapi("get=1\n\n").response, [w.a.priv]).length).toBeGreaterThan(0);
      expect(leaks(logs, keys)).toEqual([]);
      w.a.dev.close();
      w.b.dev.close();
      expect(tracked.filter((t) => !t.destroyed).length).toBe(0);
    } finally {
      restore();
    }
  });

  test("zero_key_material: keys destroyed after 3 x REJECT_AFTER_TIME without a new handshake", () => {
    const { tracked, restore } = trackingAead();
    try {
      const w = makeWorld(8, true);
      traffic(w, 2);
      expect(tracked.some((t) => !t.destroyed)).toBe(true);
      // The peer goes silent: nothing is delivered any more.
      advance(w, 545_000, 5000, false);
      expect(w.a.dev.keypairsByIndex.size).toBe(0);
      expect(w.b.dev.keypairsByIndex.size).toBe(0);
      expect(tracked.filter((t) => !t.destroyed).length).toBe(0);
      for (const n of [w.a, w.b]) {
        const p = n.dev.peers.values().next().value!;
        expect(p.current ?? p.previous ?? p.next).toBeNull();
        expect(p.handshake.chainKey.every((x) => x === 0)).toBe(true);
        expect(p.handshake.localEphemeral.every((x) => x === 0)).toBe(true);
      }
    } finally {
      restore();
    }
  });

  test("handshake C, H and ephemeral are zero once the keypair is derived", () => {
    const w = makeWorld(9, true);
    for (const n of [w.a, w.b]) {
      const hs = n.dev.peers.values().next().value!.handshake;
      expect(n.dev.peers.values().next().value!.current).not.toBeNull();
      expect(hs.chainKey.every((x) => x === 0)).toBe(true);
      expect(hs.hash.every((x) => x === 0)).toBe(true);
      expect(hs.localEphemeral.every((x) => x === 0)).toBe(true);
    }
  });

  test("close() wipes the private key buffer", () => {
    const w = makeWorld(10, true);
    const pk = w.a.dev.privateKey!;
    expect(pk.some((x) => x !== 0)).toBe(true);
    w.a.dev.close();
    expect(pk.every((x) => x === 0)).toBe(true);
    expect(w.a.dev.privateKey).toBeNull();
  });

  test("the default AEAD backend's destroy() zeroes its key copy", () => {
    const aead = getAead();
    const key = new Uint8Array(32).fill(7);
    const k = aead.prepare(key);
    const zero = aead.prepare(new Uint8Array(32));
    const plain = new Uint8Array(16).fill(1);
    const out1 = new Uint8Array(32);
    const out2 = new Uint8Array(32);
    k.sealInto(5n, plain, 0, 16, out1, 0);
    zero.sealInto(5n, plain, 0, 16, out2, 0);
    expect(hex(out1)).not.toBe(hex(out2));
    k.destroy();
    k.sealInto(5n, plain, 0, 16, out1, 0);
    expect(hex(out1)).toBe(hex(out2));
  });
});

// ------------------------------------------------------------------------------------ processes

let lab: Lab;
let dir: string;
beforeAll(() => {
  lab = new Lab("secrets");
  dir = mkdtempSync(join(tmpdir(), "wgt-secrets-"));
});
afterAll(async () => {
  await lab.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

function uapiRaw(iface: string, req: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(socketPath(iface));
    let out = "";
    s.on("data", (d) => {
      out += d.toString();
      if (out.includes("\n\n")) s.end();
    });
    s.on("end", () => resolve(out));
    s.on("error", reject);
    s.write(req);
  });
}

describe("daemon", () => {
  test("LOG_LEVEL=debug through handshakes and bad UAPI input: no private or preshared key in the output", async () => {
    const pskB64 = Bun.spawnSync(["wg", "genpsk"]).stdout.toString().trim();
    const { a, b } = await wgPair(lab, { tag: "k", psk: pskB64, env: { LOG_LEVEL: "debug" } });
    expect(await pingUntil(a, b.inner4, 15000)).toBe(true);
    const keys = [a.key.priv, b.key.priv, pskB64].map((k) => new Uint8Array(Buffer.from(k, "base64")));
    // Malformed sets carrying key-like values: refused, and the refusal must not echo them.
    const bad = hex(keys[0]!).slice(0, 63) + "x";
    for (const req of [`set=1\nprivate_key=${bad}\n\n`, `set=1\npublic_key=${hex(keys[1]!)}\npreshared_key=${hex(keys[2]!)}zz\n\n`, `set=1\nprivate_key=${hex(keys[0]!)}0\n\n`]) {
      expect(await uapiRaw(a.iface, req)).toMatch(/^errno=-22\n\n$/);
    }
    // Rekey by restarting the session from the other side (a fresh handshake logs again).
    const pskFile = join(dir, "psk");
    writeFileSync(pskFile, pskB64 + "\n", { mode: 0o600 });
    b.ns.sh(`wg set ${b.iface} peer ${a.key.pub} remove`);
    b.ns.sh(`wg set ${b.iface} peer ${a.key.pub} allowed-ips ${a.inner4}/32 endpoint ${a.outer4}:${a.port} preshared-key ${pskFile}`);
    await Bun.sleep(200);
    expect(await pingUntil(b, a.inner4, 15000)).toBe(true);
    await Bun.sleep(300);
    const out = a.proc.output() + b.proc.output();
    expect(out).toContain("Handshake");
    expect(out).toContain("UAPI");
    expect(leaks(out, keys)).toEqual([]);
  }, 60_000);

  test("UAPI socket srwx------ in a 0755 directory, like wireguard-go", async () => {
    const ns = lab.ns("sock");
    const ours = ifname("o");
    const go = ifname("g");
    const p1 = await startDaemon(ns, ours);
    const p2 = await startDaemon(ns, go, { kind: "go" });
    expect(existsSync(socketPath(ours)) && existsSync(socketPath(go))).toBe(true);
    const mine = statSync(socketPath(ours));
    const theirs = statSync(socketPath(go));
    expect(mine.isSocket()).toBe(true);
    expect((mine.mode & 0o7777).toString(8)).toBe((theirs.mode & 0o7777).toString(8));
    expect(mine.mode & 0o077).toBe(0);
    expect((statSync(SOCKET_DIR).mode & 0o7777).toString(8)).toBe("755");
    await p1.kill();
    await p2.kill();
    expect(await waitFor(() => !existsSync(socketPath(ours)), 5000)).toBe(true);
  }, 30_000);

  test("wg-quick save rewrites a 0644 config as 0600 under umask 022 (it holds the private key)", () => {
    const ns = lab.ns("save");
    const iface = ifname("s");
    const sub = join(dir, "conf");
    Bun.spawnSync(["mkdir", "-m", "700", sub]);
    const conf = join(sub, `${iface}.conf`);
    const priv = Bun.spawnSync(["wg", "genkey"]).stdout.toString().trim();
    writeFileSync(conf, `[Interface]\nPrivateKey = ${priv}\nListenPort = ${40000 + (process.pid % 20000)}\n`, { mode: 0o644 });
    const wgq = `'${BUN}' '${join(ROOT, "cmd/main.ts")}' wg-quick`;
    const r = ns.run(["sh", "-c", `umask 022; ${wgq} up '${conf}' && ${wgq} save '${conf}'; s=$?; ${wgq} down '${conf}'; exit $s`], { WG_QUICK_USERSPACE_IMPLEMENTATION: "" });
    expect(r.code).toBe(0);
    expect(statSync(conf).mode & 0o777).toBe(0o600);
    expect(Bun.file(conf).size).toBeGreaterThan(0);
    expect(existsSync(`${conf}.tmp`)).toBe(false);
  }, 30_000);

  test("wg genkey > file: warns for a world-accessible file, silent and 0600 under umask 077", () => {
    const f1 = join(dir, "k1");
    const r1 = Bun.spawnSync(["sh", "-c", `umask 022; '${BUN}' '${join(ROOT, "cmd/main.ts")}' wg genkey > '${f1}'`]);
    expect(r1.stderr.toString()).toBe("Warning: writing to world accessible file.\nConsider setting the umask to 077 and trying again.\n");
    const f2 = join(dir, "k2");
    const r2 = Bun.spawnSync(["sh", "-c", `umask 077; '${BUN}' '${join(ROOT, "cmd/main.ts")}' wg genkey > '${f2}'`]);
    expect(r2.stderr.toString()).toBe("");
    expect(statSync(f2).mode & 0o777).toBe(0o600);
    expect(Bun.file(f2).size).toBe(45);
  });
});
