// The client library (platform/wg-client.ts, the package's export) against live daemons, ours
// and wireguard-go, in private namespaces. Every reading is checked against the real
// `/usr/bin/wg show IFACE dump`, every change against what that dump shows afterwards. The kernel
// backend is covered by the kernel suite. Needs root, wireguard-go and wireguard-tools.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as wg from "../platform/wg-client.ts";
import { Lab, type Netns } from "./netns.ts";
import { BUN, genkey, ifname, keyFile, pingUntil, ROOT, startDaemon, wgPair } from "./lib-wgpair.ts";
import { AS_NOBODY } from "./lib-nobody.ts";
import { SOCKET_DIR, socketPath } from "../platform/socket-path.ts";
import { subscribeEvents } from "../platform/events-client.ts";
import { errorOfErrno } from "../core/tools/client-errors.ts";

const lab = new Lab("clientlib");
afterAll(() => lab.cleanup());

/** The real wg's dump of one interface: the interface line and one line per peer, split at tabs. */
function dump(ns: Netns, iface: string): { dev: string[]; peers: string[][] } {
  const r = ns.run(["/usr/bin/wg", "show", iface, "dump"]);
  if (r.code !== 0) throw new Error(`wg show ${iface} dump: ${r.stderr}`);
  const [dev, ...peers] = r.stdout.trimEnd().split("\n").map((l) => l.split("\t"));
  return { dev: dev!, peers: byKey(peers) };
}

/** wireguard-go lists peers in Go map order, different at every read: compare them sorted by key. */
const byKey = (peers: string[][]) => peers.sort((x, y) => (x[0]! < y[0]! ? -1 : x[0]! > y[0]! ? 1 : 0));

/** The library's device in dump's words. */
function asDump(d: wg.Device): { dev: string[]; peers: string[][] } {
  return {
    dev: [d.privateKey ?? "(none)", d.publicKey ?? "(none)", String(d.listenPort), d.fwmark === null ? "off" : `0x${d.fwmark.toString(16)}`],
    peers: byKey(d.peers.map((p) => [
      p.publicKey, p.presharedKey ?? "(none)", p.endpoint ?? "(none)", p.allowedIPs.join(",") || "(none)",
      String(p.latestHandshakeSec), String(p.rxBytes), String(p.txBytes), p.persistentKeepalive === null ? "off" : String(p.persistentKeepalive),
    ])),
  };
}

const peerLine = (ns: Netns, iface: string, pub: string) => dump(ns, iface).peers.find((p) => p[0] === pub);

/** Rejects with the error `p` throws (fails the test when it does not throw). */
async function thrown(p: Promise<unknown>): Promise<wg.WireGuardError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(wg.WireGuardError);
    return e as wg.WireGuardError;
  }
  throw new Error("expected an error");
}

for (const impl of ["ours", "go"] as const) {
  describe(`${impl === "ours" ? "our daemon" : "wireguard-go"} through the library`, () => {
    let ns: Netns;
    let iface: string;
    beforeAll(async () => {
      ns = lab.ns(impl);
      iface = ifname(impl === "ours" ? "l" : "g");
      await startDaemon(ns, iface, { kind: impl });
    });

    test("listDevices names it", async () => {
      expect(await wg.listDevices()).toContain(iface);
    });

    test("getDevice reports every field of `wg show dump`, typed", async () => {
      const [k1, k2] = [genkey(), genkey()];
      const me = genkey();
      ns.sh(
        `wg set ${iface} private-key ${keyFile(me.priv)} listen-port 45123 fwmark 0x1234 ` +
          `peer ${k1.pub} preshared-key ${keyFile(wg.generatePresharedKey())} endpoint 192.0.2.1:51820 persistent-keepalive 25 allowed-ips 10.1.0.0/24,fd00:1::/64 ` +
          `peer ${k2.pub} allowed-ips 10.2.0.1/32`,
      );
      const d = await wg.getDevice(iface);
      expect(d.name).toBe(iface);
      expect(asDump(d)).toEqual(dump(ns, iface));
      expect(d.publicKey).toBe(me.pub);
      const p1 = d.peers.find((p) => p.publicKey === k1.pub)!;
      expect(p1.allowedIPs).toEqual(["10.1.0.0/24", "fd00:1::/64"]);
      expect(typeof p1.rxBytes).toBe("bigint");
      expect(typeof p1.latestHandshakeSec).toBe("bigint");
      expect(p1).toMatchObject({ endpoint: "192.0.2.1:51820", persistentKeepalive: 25, latestHandshake: null, online: false });
      ns.sh(`wg set ${iface} fwmark 0 peer ${k1.pub} remove peer ${k2.pub} remove`);
    });

    test("configureDevice: keys, port, fwmark, peers; allowed IPs added, replaced; updateOnly, remove, replacePeers", async () => {
      const me = wg.generatePrivateKey();
      const [a, b, c, ghost] = [0, 1, 2, 3].map(() => wg.publicKeyOf(wg.generatePrivateKey())) as [string, string, string, string];
      const psk = wg.generatePresharedKey();
      await wg.configureDevice(iface, {
        privateKey: me, listenPort: 45124, fwmark: 0x42,
        peers: [{ publicKey: a, presharedKey: psk, endpoint: "192.0.2.9:4000", persistentKeepalive: 0, allowedIPs: ["10.3.0.0/24", "fd00:3::1"] }],
      });
      expect(dump(ns, iface).dev).toEqual([me, wg.publicKeyOf(me), "45124", "0x42"]);
      expect(peerLine(ns, iface, a)).toEqual([a, psk, "192.0.2.9:4000", "10.3.0.0/24,fd00:3::1/128", "0", "0", "0", "off"]);

      // Allowed IPs are added (listed in insertion order) unless replaceAllowedIPs is set.
      await wg.configureDevice(iface, { peers: [{ publicKey: a, allowedIPs: ["10.3.1.0/24"] }] });
      expect(peerLine(ns, iface, a)![3]).toBe("10.3.0.0/24,fd00:3::1/128,10.3.1.0/24");
      await wg.configureDevice(iface, { peers: [{ publicKey: a, replaceAllowedIPs: true, allowedIPs: ["10.4.0.0/16"] }] });
      expect(peerLine(ns, iface, a)![3]).toBe("10.4.0.0/16");
      await wg.configureDevice(iface, { peers: [{ publicKey: a, replaceAllowedIPs: true, allowedIPs: [] }] });
      expect(peerLine(ns, iface, a)![3]).toBe("(none)");

      // updateOnly changes an existing peer and never creates one.
      await wg.configureDevice(iface, { peers: [{ publicKey: ghost, updateOnly: true, allowedIPs: ["10.5.0.0/24"] }, { publicKey: a, updateOnly: true, endpoint: "[2001:db8::9]:4001", presharedKey: null }] });
      expect(peerLine(ns, iface, ghost)).toBeUndefined();
      expect(peerLine(ns, iface, a)!.slice(1, 3)).toEqual(["(none)", "[2001:db8::9]:4001"]);

      await wg.configureDevice(iface, { peers: [{ publicKey: b, persistentKeepalive: 7 }, { publicKey: a, remove: true }] });
      expect(dump(ns, iface).peers.map((p) => p[0])).toEqual([b]);
      expect(peerLine(ns, iface, b)![7]).toBe("7");

      await wg.configureDevice(iface, { replacePeers: true, peers: [{ publicKey: c, allowedIPs: ["10.6.0.1"] }] });
      expect(dump(ns, iface).peers).toEqual([[c, "(none)", "(none)", "10.6.0.1/32", "0", "0", "0", "off"]]);
      expect(asDump(await wg.getDevice(iface))).toEqual(dump(ns, iface));

      await wg.configureDevice(iface, { fwmark: 0, replacePeers: true });
      expect(dump(ns, iface)).toEqual({ dev: [me, wg.publicKeyOf(me), "45124", "off"], peers: [] });
      await wg.configureDevice(iface, { privateKey: null });
      expect(dump(ns, iface).dev).toEqual(["(none)", "(none)", "45124", "off"]);
    });

    test(`configureDevice: removeAllowedIPs takes exactly those prefixes (${impl === "ours" ? "natively" : "as a replacement of the list"})`, async () => {
      const [a, b] = [0, 1].map(() => wg.publicKeyOf(wg.generatePrivateKey())) as [string, string];
      await wg.configureDevice(iface, { peers: [{ publicKey: a, allowedIPs: ["10.7.0.0/24", "10.7.1.0/24", "fd00:7::/64"] }, { publicKey: b, allowedIPs: ["10.8.0.0/24"] }] });
      // Removals first, then additions; a prefix held by another peer, or not at all, stays where it is.
      await wg.configureDevice(iface, { peers: [{ publicKey: a, removeAllowedIPs: ["10.7.1.7/24", "10.8.0.0/24", "10.9.0.0/24", "10.7.0.0/24"], allowedIPs: ["10.7.0.0/24", "10.7.2.0/24"] }] });
      expect(peerLine(ns, iface, a)![3]).toBe("fd00:7::/64,10.7.0.0/24,10.7.2.0/24");
      expect(peerLine(ns, iface, b)![3]).toBe("10.8.0.0/24");
      expect((await wg.getDevice(iface)).peers.find((p) => p.publicKey === a)!.allowedIPs).toEqual(["fd00:7::/64", "10.7.0.0/24", "10.7.2.0/24"]);
      for (const bad of [["-10.7.0.0/24"], ["10.7.0.0/33"]]) expect(await thrown(wg.configureDevice(iface, { peers: [{ publicKey: a, removeAllowedIPs: bad }] }))).toBeInstanceOf(wg.InvalidArgumentError);
      expect(await thrown(wg.configureDevice(iface, { peers: [{ publicKey: a, allowedIPs: ["+10.7.3.0/24"] }] }))).toBeInstanceOf(wg.InvalidArgumentError);
      await wg.configureDevice(iface, { peers: [{ publicKey: a, remove: true }, { publicKey: b, remove: true }] });
    });

    test("typed errors with errno; a rejected request changes nothing", async () => {
      const pub = wg.publicKeyOf(wg.generatePrivateKey());
      const before = dump(ns, iface);
      const badKey = await thrown(wg.configureDevice(iface, { listenPort: 45999, peers: [{ publicKey: pub }, { publicKey: "not a key" }] }));
      expect(badKey).toBeInstanceOf(wg.BadKeyError);
      expect([badKey.errno, badKey.code]).toEqual([22, "EINVAL"]);
      for (const update of [
        { peers: [{ publicKey: pub, allowedIPs: ["10.0.0.0/33"] }] },
        { peers: [{ publicKey: pub, allowedIPs: ["10.0.0.1,10.0.0.2"] }] },
        { peers: [{ publicKey: pub, endpoint: "192.0.2.1" }] },
        { listenPort: 70000 },
        { peers: [{ publicKey: pub, persistentKeepalive: -1 }] },
      ]) {
        const e = await thrown(wg.configureDevice(iface, update));
        expect(e).toBeInstanceOf(wg.InvalidArgumentError);
        expect(e.errno).toBe(22);
      }
      expect(dump(ns, iface)).toEqual(before);

      const missing = ifname("m");
      for (const e of [await thrown(wg.getDevice(missing)), await thrown(wg.configureDevice(missing, { listenPort: 1 })), await thrown(wg.events(missing))]) {
        expect(e).toBeInstanceOf(wg.NoSuchDeviceError);
        // Without the kernel module wg reports EPROTONOSUPPORT for an unknown name, with it ENODEV.
        expect(["ENODEV", "EPROTONOSUPPORT"]).toContain(e.code);
        expect(e.device).toBe(missing);
      }
      expect(() => wg.publicKeyOf("AAAA")).toThrow(wg.BadKeyError);
    });

    if (impl === "go")
      test("events: wireguard-go has no event stream (NotSupportedError, EOPNOTSUPP)", async () => {
        const e = await thrown(wg.events(iface));
        expect(e).toBeInstanceOf(wg.NotSupportedError);
        expect([e.errno, e.code]).toEqual([95, "EOPNOTSUPP"]);
      });
  });
}

/** The next event of `stream` that satisfies `want`, or null after `ms`. */
async function nextEvent(stream: wg.EventStream, want: (e: wg.WgEvent) => boolean, ms = 10_000): Promise<wg.WgEvent | null> {
  const deadline = Bun.sleep(ms).then(() => null);
  for (;;) {
    const r = await Promise.race([stream.next(), deadline]);
    if (r === null || r.done) return null;
    if (want(r.value)) return r.value;
  }
}

describe("a live tunnel between two of our daemons", () => {
  test("events as an async iterator; counters and handshake after traffic match the dump", async () => {
    const psk = wg.generatePresharedKey();
    const { a, b } = await wgPair(lab, { tag: "c", psk });
    const stream = await wg.events(a.iface);
    try {
      expect(await pingUntil(a, b.inner4)).toBe(true);
      const hs = await nextEvent(stream, (e) => e.type === "handshake");
      expect(hs).toMatchObject({ interface: a.iface, publicKey: b.key.pub, endpoint: `${b.outer4}:${b.port}`, online: true });
      expect(hs!.time).toBeInstanceOf(Date);
      expect(hs!.lastHandshake).toBeInstanceOf(Date);

      const d = await wg.getDevice(a.iface);
      expect(asDump(d)).toEqual(dump(a.ns, a.iface));
      const p = d.peers[0]!;
      expect(p.rxBytes > 0n && p.txBytes > 0n).toBe(true);
      expect(p.presharedKey).toBe(psk);
      expect(p.online).toBe(true);
      expect(Math.abs(p.latestHandshake!.getTime() - hs!.lastHandshake!.getTime())).toBeLessThan(1000);

      const extra = wg.publicKeyOf(wg.generatePrivateKey());
      await wg.configureDevice(a.iface, { peers: [{ publicKey: extra, allowedIPs: ["10.200.0.1"] }] });
      expect(await nextEvent(stream, (e) => e.type === "peer-added")).toMatchObject({ publicKey: extra, online: false, lastHandshake: null });
      await wg.configureDevice(a.iface, { peers: [{ publicKey: extra, remove: true }] });
      expect(await nextEvent(stream, (e) => e.type === "peer-removed")).toMatchObject({ publicKey: extra });
    } finally {
      stream.close();
    }
    // Closed: the iterator ends instead of waiting for more.
    expect(await stream.next()).toEqual({ value: undefined, done: true });
  }, 60_000);
});

describe("events from a socket that is not there", () => {
  test("the subscription fails with ENODEV and its text, as for a missing interface", async () => {
    const r = await subscribeEvents(socketPath(ifname("n")), () => {});
    expect(r).toEqual({ ok: false, error: "No such device", errno: 19 });
  });
});

describe("events from a daemon that sends a line that is not an event", () => {
  test("next() rejects with InvalidArgumentError and the subscription is closed", async () => {
    const name = ifname("e");
    const path = socketPath(name);
    mkdirSync(SOCKET_DIR, { recursive: true });
    const closed = Promise.withResolvers<void>();
    let subscriber: unknown = null;
    // Answers the subscription, then sends garbage; notes when the subscriber hangs up.
    const server = Bun.listen({
      unix: path,
      socket: {
        data(s, d) {
          if (d.toString() !== "events=1\n\n") return;
          subscriber = s;
          s.write("errno=0\n\nnot an event\n");
        },
        close(s) {
          if (s === subscriber) closed.resolve();
        },
      },
    });
    try {
      const stream = await wg.events(name);
      const e = await stream.next().then(() => null, (e: unknown) => e);
      expect(e).toBeInstanceOf(wg.InvalidArgumentError);
      expect(await Promise.race([closed.promise.then(() => true), Bun.sleep(5000).then(() => false)])).toBe(true);
      expect(await stream.next()).toEqual({ value: undefined, done: true });
    } finally {
      server.stop(true);
      rmSync(path, { force: true });
    }
  }, 20_000);
});

describe("errors of operations on no one interface", () => {
  test("listing fails without naming a device", () => {
    const e = errorOfErrno(13, "Unable to list interfaces");
    expect(e).toBeInstanceOf(wg.PermissionError);
    expect([e.message, e.device]).toEqual(["Unable to list interfaces: Permission denied", undefined]);
  });
});

describe("keys", () => {
  test("private, public and preshared keys agree with the real wg", () => {
    const priv = wg.generatePrivateKey();
    const real = Bun.spawnSync(["/usr/bin/wg", "pubkey"], { stdin: Buffer.from(priv + "\n") }).stdout.toString().trim();
    expect(wg.publicKeyOf(priv)).toBe(real);
    const psks = new Set([0, 1, 2, 3].map(() => wg.generatePresharedKey()));
    expect(psks.size).toBe(4);
    for (const k of psks) expect(k).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    expect(() => wg.publicKeyOf(priv.slice(0, 43) + "A")).toThrow(wg.BadKeyError);
  });
});

describe("the package export, as another project uses it", () => {
  let dir: string;
  let ns: Netns;
  let iface: string;
  const consumer = [
    `import * as wg from "wgts";`,
    `const name = process.argv[2]!;`,
    `try {`,
    `  const d: wg.Device = await wg.getDevice(name);`,
    `  const rx: bigint = d.peers[0]?.rxBytes ?? 0n;`,
    `  console.log(JSON.stringify({ ok: true, name: d.name, rx: String(rx) }));`,
    `} catch (e) {`,
    `  if (!(e instanceof wg.WireGuardError)) throw e;`,
    `  console.log(JSON.stringify({ ok: false, name: e.name, errno: e.errno, code: e.code, permission: e instanceof wg.PermissionError }));`,
    `}`,
  ].join("\n");
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "wgt-consumer-"));
    chmodSync(dir, 0o755);
    mkdirSync(join(dir, "node_modules"));
    symlinkSync(ROOT, join(dir, "node_modules", "wgts"));
    writeFileSync(join(dir, "consumer.ts"), consumer + "\n");
    writeFileSync(join(dir, "wrong.ts"), `import * as wg from "wgts";\nexport const s: string = (await wg.getDevice("x")).peers[0]!.rxBytes;\n`);
    const tsconfig = {
      compilerOptions: {
        target: "ESNext", module: "Preserve", moduleResolution: "bundler", strict: true, noEmit: true, skipLibCheck: true,
        allowImportingTsExtensions: true, types: ["bun"], typeRoots: [join(ROOT, "node_modules", "@types")],
      },
    };
    writeFileSync(join(dir, "tsconfig.json"), JSON.stringify({ ...tsconfig, files: ["consumer.ts"] }));
    writeFileSync(join(dir, "tsconfig.wrong.json"), JSON.stringify({ ...tsconfig, files: ["wrong.ts"] }));
    ns = lab.ns("pkg");
    iface = ifname("p");
    await startDaemon(ns, iface);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const tsc = (project: string) => Bun.spawnSync([join(ROOT, "node_modules", ".bin", "tsc"), "--noEmit", "--pretty", "false", "-p", join(dir, project)], { stdout: "pipe", stderr: "pipe" });

  test("types: a consumer type-checks against `exports` and a wrong use does not", () => {
    const ok = tsc("tsconfig.json");
    expect(ok.stdout.toString() + ok.stderr.toString()).toBe("");
    expect(ok.exitCode).toBe(0);
    const wrong = tsc("tsconfig.wrong.json");
    expect(wrong.exitCode).not.toBe(0);
    expect(wrong.stdout.toString()).toContain("wrong.ts(2,14): error TS2322: Type 'bigint' is not assignable to type 'string'.");
  });

  test("`import \"wgts\"` runs under Bun; as an unprivileged user it gets PermissionError (EACCES)", () => {
    const asRoot = Bun.spawnSync([BUN, join(dir, "consumer.ts"), iface], { stdout: "pipe", stderr: "pipe", cwd: dir });
    expect(asRoot.stderr.toString()).toBe("");
    expect(JSON.parse(asRoot.stdout.toString())).toEqual({ ok: true, name: iface, rx: "0" });
    // nobody cannot read a checkout in a 0700 directory: a compiled copy of the consumer runs instead.
    const exe = join(dir, "consumer");
    const built = Bun.spawnSync([BUN, "build", "--compile", join(dir, "consumer.ts"), "--outfile", exe], { stdout: "pipe", stderr: "pipe", cwd: dir });
    expect(built.exitCode).toBe(0);
    const asNobody = Bun.spawnSync([...AS_NOBODY, exe, iface], { stdout: "pipe", stderr: "pipe", cwd: "/" });
    expect(asNobody.stderr.toString()).toBe("");
    expect(JSON.parse(asNobody.stdout.toString())).toEqual({ ok: false, name: "PermissionError", errno: 13, code: "EACCES", permission: true });
  }, 60_000);
});
