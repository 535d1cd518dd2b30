// The kernel backend of wg (platform/linux/ipc-netlink.ts) without the module: SET messages
// checked byte for byte against wg's own encoder output (/work/shared/netlink.md 5.5, 8.3) and,
// for a device of 10,000 peers / ~100,000 allowed IPs, applied fragment by fragment to a model of
// the kernel (test/lib-kernel-model.ts) that must end up holding exactly the configuration; GET
// dumps of that model (peers split across messages, messages packed into datagrams, u64 pads,
// NLM_F_DUMP_INTR) read back into the same device; error paths; and, on this host, the real wg
// and ours giving the same answer for a kernel interface when the module is absent.
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AllowedIp, DeviceConfig, PeerConfig, WgDevice } from "../core/tools/containers.ts";
import { emptyDeviceConfig, emptyPeerConfig } from "../core/tools/containers.ts";
import { dumpDevice } from "../core/tools/show.ts";
import { DeviceReader, SetFragmenter, getDevice, kernelInterfaces, setDevice } from "../platform/linux/ipc-netlink.ts";
import { MsgBuilder, NetlinkError } from "../platform/linux/netlink.ts";
import { endpointSockaddr, formatSockaddr } from "../platform/resolve.ts";
import { FAMILY, KernelModel, emptyDevice, type KDevice } from "./lib-kernel-model.ts";
import { both } from "./wg-harness.ts";

/** A distinct 32-byte key per n. */
const key = (n: number) => {
  const k = new Uint8Array(32);
  for (let i = 4; i < 32; i++) k[i] = (n * 131 + i * 7 + 1) & 0xff;
  new DataView(k.buffer).setUint32(0, n);
  return k;
};
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const v4 = (a: number, b: number, c: number, d: number, cidr = 32): AllowedIp => ({ family: 4, addr: new Uint8Array([a, b, c, d]), cidr });
const v6 = (n: number, cidr = 128): AllowedIp => {
  const addr = new Uint8Array(16);
  addr[0] = 0xfd;
  new DataView(addr.buffer).setUint32(12, n);
  return { family: 6, addr, cidr };
};

/** All messages a change produces (copies), as sent one after another. */
function fragments(name: string, config: DeviceConfig, limit = 4096): Uint8Array[] {
  const f = new SetFragmenter(name, config, limit);
  const b = new MsgBuilder(limit);
  const out: Uint8Array[] = [];
  let more: boolean;
  do {
    more = f.next(b, FAMILY);
    out.push(b.finish(1).slice());
  } while (more);
  return out;
}

/** A setconf-style change: 10,000 peers, ~100,000 allowed IPs, some peers far larger than a message. */
function bigConfig(): DeviceConfig {
  const c = emptyDeviceConfig();
  c.privateKey = key(0);
  c.listenPort = 51820;
  c.fwmark = 0x1234;
  c.replacePeers = true;
  let n = 0;
  for (let i = 0; i < 10_000; i++) {
    const p = emptyPeerConfig();
    p.publicKey = key(i + 1);
    p.replaceAllowedIps = true;
    if (i % 4 === 0) p.presharedKey = key(100_000 + i);
    if (i % 5 === 1) p.endpoint = `192.0.${(i >> 8) & 255}.${i & 255}:${1000 + (i % 60000)}`;
    else if (i % 5 === 2) p.endpoint = `[2001:db8::${i.toString(16)}]:${2000 + i}`;
    else if (i === 3) p.endpoint = "[fe80::1%lo]:51820";
    if (i % 3 === 0) p.persistentKeepalive = i % 65536;
    const count = i % 100 === 7 ? 400 : i % 13 === 0 ? 0 : 7;
    for (let j = 0; j < count; j++, n++) p.allowedIps.push(j % 3 === 2 ? v6(n) : v4(10, (n >> 16) & 255, (n >> 8) & 255, n & 255));
    c.peers.push(p);
  }
  return c;
}

/** What the kernel should hold after `config` was applied to an empty device. */
function expectedKernel(name: string, config: DeviceConfig): KDevice {
  const d = emptyDevice(name);
  d.privateKey = config.privateKey ?? null;
  d.publicKey = d.privateKey ? d.privateKey.map((x) => x ^ 0xff) : null;
  d.listenPort = config.listenPort ?? 0;
  d.fwmark = config.fwmark ?? 0;
  d.peers = config.peers.map((p) => ({
    pub: p.publicKey!,
    psk: p.presharedKey ?? new Uint8Array(32),
    endpoint: p.endpoint ? endpointSockaddr(p.endpoint) : null,
    keepalive: p.persistentKeepalive ?? 0,
    hsSec: 0n, hsNsec: 0n, rx: 0n, tx: 0n,
    ips: p.allowedIps.map((a) => ({ family: a.family === 4 ? (2 as const) : (10 as const), addr: a.addr, cidr: a.cidr })),
  }));
  return d;
}

/** The device `wg` should read from a kernel holding `k`. */
function expectedDevice(k: KDevice): WgDevice {
  return {
    name: k.name,
    privateKey: k.privateKey,
    publicKey: k.publicKey,
    listenPort: k.listenPort,
    fwmark: k.fwmark,
    peers: k.peers.map((p) => ({
      publicKey: p.pub,
      presharedKey: p.psk.some((x) => x) ? p.psk : null,
      endpoint: p.endpoint ? formatSockaddr(p.endpoint) : null,
      lastHandshakeSec: p.hsSec, lastHandshakeNsec: p.hsNsec, rxBytes: p.rx, txBytes: p.tx,
      persistentKeepalive: p.keepalive,
      allowedIps: p.ips.map((a) => ({ family: a.family === 2 ? (4 as const) : (6 as const), addr: a.addr, cidr: a.cidr })),
    })),
  };
}

const canon = (d: KDevice) => ({
  ...d,
  privateKey: d.privateKey && hex(d.privateKey),
  publicKey: d.publicKey && hex(d.publicKey),
  peers: d.peers.map((p) => ({ ...p, pub: hex(p.pub), psk: hex(p.psk), endpoint: p.endpoint && hex(p.endpoint), ips: p.ips.map((a) => `${a.family} ${hex(a.addr)}/${a.cidr}`) })),
});

describe("SET messages as wg builds them", () => {
  test("one small change is byte for byte wg's (netlink.md 8.3)", () => {
    const c = emptyDeviceConfig();
    c.listenPort = 51820;
    const p = emptyPeerConfig();
    p.publicKey = Uint8Array.from({ length: 32 }, (_, i) => 0x20 + i);
    p.endpoint = "192.0.2.1:51820";
    p.replaceAllowedIps = true;
    p.allowedIps.push(v4(10, 0, 0, 2));
    c.peers.push(p);
    const [m, ...rest] = fragments("wg0", c);
    expect(rest.length).toBe(0);
    const want = `8c000000 15000500 c0a36865 00000000 01010000 08000200 77673000 06000600
      6cca0000 68000880 64000080 24000100 20212223 24252627 28292a2b 2c2d2e2f
      30313233 34353637 38393a3b 3c3d3e3f 14000400 0200ca6c c0000201 00000000
      00000000 08000300 02000000 20000980 1c000080 06000100 02000000 08000200
      0a000002 05000300 20000000`.replace(/\s+/g, "");
    // sequence number (bytes 8..11) aside
    expect(hex(m!.subarray(0, 8)) + hex(m!.subarray(12))).toBe(want.slice(0, 16) + want.slice(24));
  });

  test("a peer larger than a message is cut where wg cuts it (netlink.md 5.5)", () => {
    const c = emptyDeviceConfig();
    Object.assign(c, { privateKey: key(1), listenPort: 51820, fwmark: 0, replacePeers: true });
    const a = emptyPeerConfig();
    Object.assign(a, { publicKey: key(2), presharedKey: key(3), endpoint: "192.0.2.1:51820", persistentKeepalive: 25, replaceAllowedIps: true });
    for (let i = 0; i < 300; i++) a.allowedIps.push(v4(10, 1, i >> 8, i & 255));
    const b = emptyPeerConfig();
    Object.assign(b, { publicKey: key(4), replaceAllowedIps: true });
    b.allowedIps.push(v4(10, 2, 0, 1));
    c.peers.push(a, b);
    const ms = fragments("wg0", c);
    expect(ms.map((m) => m.length)).toEqual([4072, 4080, 688]);
    // allowed-IP elements per message: 28 bytes each, counted from the known overheads
    expect([(4072 - 208) / 28, (4080 - 76) / 28, (688 - 76 - 80) / 28]).toEqual([138, 143, 19]);
  });

  test("10,000 peers / ~100,000 allowed IPs: every message within 4096 bytes, the kernel ends up with exactly the config", () => {
    const config = bigConfig();
    const total = config.peers.reduce((n, p) => n + p.allowedIps.length, 0);
    expect(total).toBeGreaterThan(95_000);
    const model = new KernelModel(emptyDevice("wg0"));
    const t0 = performance.now();
    expect(setDevice("wg0", config, () => model.channel())).toBe(0);
    const ms = performance.now() - t0;
    expect(model.setIndex).toBeGreaterThan(600);
    expect(Math.max(...model.sent.filter((s) => s.cmd === 1).map((s) => s.bytes.length))).toBeLessThanOrEqual(4096);
    expect(canon(model.device)).toEqual(canon(expectedKernel("wg0", config)));
    // Applying an unchanged copy on top (addconf-like, no REPLACE_PEERS) changes nothing.
    model.setIndex = 0;
    expect(setDevice("wg0", { ...config, replacePeers: false, privateKey: undefined, listenPort: undefined, fwmark: undefined }, () => model.channel())).toBe(0);
    expect(canon(model.device)).toEqual(canon(expectedKernel("wg0", config)));
    console.log(`set of ${config.peers.length} peers / ${total} allowed IPs through the model: ${model.sent.length} messages, ${ms.toFixed(0)} ms`);
  });

  test("continued peers keep REMOVE_ME and UPDATE_ONLY, drop REPLACE_ALLOWEDIPS; REPLACE_PEERS only first", () => {
    const big = (n: number, base: number) => Array.from({ length: n }, (_, i) => v4(172, 16 + base, i >> 8, i & 255));
    const start = emptyDevice("wg1");
    const mk = (n: number, ips: AllowedIp[]) => ({ pub: key(n), psk: new Uint8Array(32), endpoint: null, keepalive: 0, hsSec: 0n, hsNsec: 0n, rx: 0n, tx: 0n, ips: ips.map((a) => ({ family: 2 as const, addr: a.addr, cidr: a.cidr })) });
    start.peers = [mk(1, big(3, 0)), mk(2, big(3, 1)), mk(3, big(3, 2))];
    const model = new KernelModel(structuredClone(start));
    const c = emptyDeviceConfig();
    const peer = (n: number, f: Partial<PeerConfig>) => ({ ...emptyPeerConfig(), publicKey: key(n), ...f }) as PeerConfig;
    c.peers.push(
      peer(1, { remove: true, allowedIps: big(500, 3) }), // removed; its continuations must not bring it back
      peer(2, { replaceAllowedIps: true, allowedIps: big(500, 4) }), // exactly these 500 afterwards
      peer(3, { allowedIps: big(300, 5) }), // appended to its 3
      peer(9, { updateOnly: true, allowedIps: big(500, 6) }), // absent: must not be created by a continuation
    );
    const ms = fragments("wg1", c);
    expect(ms.length).toBeGreaterThan(4);
    expect(setDevice("wg1", c, () => model.channel())).toBe(0);
    const d = model.device;
    expect(d.peers.map((p) => hex(p.pub))).toEqual([hex(key(2)), hex(key(3))]);
    expect(d.peers[0]!.ips.map((a) => hex(a.addr))).toEqual(big(500, 4).map((a) => hex(a.addr)));
    expect(d.peers[1]!.ips.map((a) => hex(a.addr))).toEqual([...big(3, 2), ...big(300, 5)].map((a) => hex(a.addr)));
    // With REPLACE_PEERS, only the first message may carry it (the model rejects it elsewhere).
    const model2 = new KernelModel(structuredClone(start));
    expect(setDevice("wg1", { ...c, replacePeers: true, privateKey: key(7) }, () => model2.channel())).toBe(0);
    expect(model2.device.peers.map((p) => hex(p.pub))).toEqual([hex(key(2)), hex(key(3))]);
    expect(model2.device.peers[1]!.ips.length).toBe(300);
  });

  test("no peers: one message with the device attributes only", () => {
    const c = emptyDeviceConfig();
    c.fwmark = 0;
    const ms = fragments("wg0", c);
    expect(ms.length).toBe(1);
    expect(hex(ms[0]!.subarray(16))).toBe("01010000" + "0800020077673000" + "0800070000000000");
  });

  test("a bound no message can satisfy fails instead of looping", () => {
    const c = emptyDeviceConfig();
    c.peers.push({ ...emptyPeerConfig(), publicKey: key(1), allowedIps: [v4(10, 0, 0, 1)] });
    expect(() => fragments("wg0", c, 80)).toThrow("too small");
  });
});

describe("GET dumps read back", () => {
  const config = bigConfig();
  const state = () => {
    const k = expectedKernel("wg0", config);
    // traffic the model cannot make: handshakes, counters (one above 2^53)
    k.peers.forEach((p, i) => {
      if (i % 7 === 0) (p.hsSec = 1_700_000_000n + BigInt(i)), (p.hsNsec = BigInt(i * 1000));
      p.rx = BigInt(i) * 1_000_003n;
      p.tx = i === 5 ? 2n ** 60n + 7n : BigInt(i);
    });
    return k;
  };

  test("peers split across messages, several messages per datagram: the same device", () => {
    for (const opts of [{ perDatagram: 1 }, { perDatagram: 3, dumpBudget: 8000 }, { dumpBudget: 1024 }]) {
      const k = state();
      const model = new KernelModel(k, opts);
      const r = getDevice("wg0", () => model.channel());
      if (!r.ok) throw new Error(`errno ${r.errno}`);
      expect(r.device).toEqual(expectedDevice(k));
      // the split really happened: some peer appeared in more than one message
      expect(model.dumps).toBe(1);
    }
  });

  test("a peer continued in the next message has its allowed IPs appended in order", () => {
    const k = emptyDevice("wg0");
    const ips = Array.from({ length: 1000 }, (_, i) => ({ family: 2 as const, addr: new Uint8Array([10, 9, i >> 8, i & 255]), cidr: 32 }));
    k.peers.push({ pub: key(1), psk: key(2), endpoint: endpointSockaddr("[fe80::1%lo]:7"), keepalive: 5, hsSec: 1n, hsNsec: 2n, rx: 3n, tx: 4n, ips });
    k.peers.push({ pub: key(3), psk: new Uint8Array(32), endpoint: null, keepalive: 0, hsSec: 0n, hsNsec: 0n, rx: 0n, tx: 0n, ips: [] });
    const model = new KernelModel(k, { dumpBudget: 2000 });
    const reader = new DeviceReader("wg0");
    const seen: number[] = [];
    const ch = model.channel();
    const b = new MsgBuilder().start(FAMILY, 0x305).genl(0, 1).bstr(2, "wg0");
    ch.replies(ch.send(b), (off, len) => {
      reader.message(ch.rx, off, len);
      seen.push(reader.device.peers.length);
    });
    expect(seen.length).toBeGreaterThan(10); // 1000 IPs in 2000-byte messages
    expect(reader.device.peers.length).toBeGreaterThan(10); // one entry per appearance before merging
    const d = reader.finish();
    expect(d.peers.length).toBe(2);
    expect(d.peers[0]!.allowedIps.map((a) => a.addr[2]! * 256 + a.addr[3]!)).toEqual(ips.map((_, i) => i));
    expect(d.peers[0]!.endpoint).toBe("[fe80::1%lo]:7");
    expect(dumpDevice(d, false).split("\n")[1]).toStartWith(`${Buffer.from(key(1)).toString("base64")}\t${Buffer.from(key(2)).toString("base64")}\t[fe80::1%lo]:7\t10.9.0.0/32,10.9.0.1/32,`);
  });

  test("NLM_F_DUMP_INTR: the whole read starts again from the family lookup", () => {
    const k = state();
    const model = new KernelModel(k, { interruptFirstDump: true });
    const r = getDevice("wg0", () => model.channel());
    if (!r.ok) throw new Error(`errno ${r.errno}`);
    expect(model.dumps).toBe(2);
    expect(model.sent.filter((s) => s.type === 0x10).length).toBe(2);
    expect(r.device).toEqual(expectedDevice(k));
  });

  test("empty device: no peers, no keys", () => {
    const model = new KernelModel(emptyDevice("wg7"));
    expect(getDevice("wg7", () => model.channel())).toEqual({
      ok: true,
      device: { name: "wg7", privateKey: null, publicKey: null, listenPort: 0, fwmark: 0, peers: [] },
    });
  });
});

describe("errors", () => {
  test("no family (no module): EPROTONOSUPPORT for get and set", () => {
    const model = new KernelModel(emptyDevice("wg0"), { noFamily: true });
    expect(getDevice("wg0", () => model.channel())).toEqual({ ok: false, errno: 93 });
    expect(setDevice("wg0", emptyDeviceConfig(), () => model.channel())).toBe(93);
  });

  test("no such device: ENODEV", () => {
    const model = new KernelModel(emptyDevice("wg0"));
    expect(getDevice("nope", () => model.channel())).toEqual({ ok: false, errno: 19 });
    expect(setDevice("nope", emptyDeviceConfig(), () => model.channel())).toBe(19);
  });

  test("a refused fragment stops the sequence with its errno", () => {
    const model = new KernelModel(emptyDevice("wg0"), { failSetAt: { index: 2, errno: 12 } });
    expect(setDevice("wg0", bigConfig(), () => model.channel())).toBe(12);
    expect(model.setIndex).toBe(3);
  });

  test("error replies: extended-ack message, DONE with an error", () => {
    const model = new KernelModel(emptyDevice("wg0"));
    const ch = model.channel();
    // hand-made: NLMSG_ERROR -EINVAL, capped, with NLMSGERR_ATTR_MSG
    const seq = ch.send(new MsgBuilder().start(FAMILY, 5).genl(1, 1).bstr(2, "wg0"));
    const err = new MsgBuilder().start(2, 0x300);
    const at = err.header(20);
    err.view.setInt32(at, -22, true);
    err.str(1, "NLA_F_NESTED is missing");
    const m = err.finish(seq);
    ch.inject(m.slice());
    let e: unknown;
    try {
      ch.replies(seq);
    } catch (x) {
      e = x;
    }
    expect(e).toBeInstanceOf(NetlinkError);
    expect([(e as NetlinkError).errno, (e as NetlinkError).extack]).toEqual([22, "NLA_F_NESTED is missing"]);
    const done = new MsgBuilder().start(3, 2);
    done.view.setInt32(done.header(4), -16, true);
    ch.inject(done.finish(seq).slice());
    expect(() => ch.replies(seq)).toThrow("Device or resource busy");
  });
});

describe("listing and formatting", () => {
  test("kernel interfaces: the host's links of kind wireguard, in dump order", () => {
    const r = kernelInterfaces();
    expect(r.ok).toBe(true);
    const ip = Bun.spawnSync(["ip", "-d", "-o", "link", "show", "type", "wireguard"]).stdout.toString();
    const names = ip.split("\n").filter(Boolean).map((l) => l.split(": ")[1]!.split("@")[0]!);
    if (r.ok) expect(r.names).toEqual(names);
  });

  test("endpoints: text <-> sockaddr as getaddrinfo/getnameinfo do", () => {
    for (const t of ["1.2.3.4:5", "[::1]:65535", "[fe80::1%lo]:51820", "[::ffff:1.2.3.4]:9", "[2001:db8::1]:0"]) expect(formatSockaddr(endpointSockaddr(t)!)).toBe(t);
    expect(hex(endpointSockaddr("[fe80::1%lo]:51820")!)).toBe("0a00ca6c00000000fe80000000000000000000000000000101000000");
    expect(formatSockaddr(endpointSockaddr("[fe80::1%1]:1")!)).toBe("[fe80::1%lo]:1");
    expect(formatSockaddr(endpointSockaddr("[2001:db8::1%1]:1")!)).toBe("[2001:db8::1%1]:1");
    for (const bad of ["1.2.3.4", "1.2.3.4:65536", "[::1:5", "host:5", "[fe80::1%nosuchif0]:5"]) expect(endpointSockaddr(bad)).toBeNull();
  });
});

// ---------------------------------------------------------------------------------------------

describe("the real wg and ours on this host's kernel", () => {
  const iso = mkdtempSync(join(tmpdir(), "wgnl-sock-"));
  afterAll(() => rmSync(iso, { recursive: true, force: true }));
  const moduleLoaded = existsSync("/sys/module/wireguard");
  const cases = [["show", "wgx"], ["show", "wgx", "dump"], ["showconf", "wgx"], ["set", "wgx", "listen-port", "1"], ["setconf", "wgx", "/dev/null"], ["syncconf", "wgx", "/dev/null"], ["show", "lo"], ["show", "a".repeat(40)], ["show"], ["show", "interfaces"]];
  for (const args of cases)
    test(`wg ${args.join(" ")}`, async () => {
      const r = await both(args, { isolate: iso });
      expect({ args, ...r.ours }).toEqual({ args, ...r.real });
      if (!moduleLoaded && args[1] === "wgx") expect(r.real.stderr).toEndWith(": Protocol not supported\n");
    }, 30_000);
});
