// Removing single allowed IPs (core/tools/allowed-ip-removal.ts) without daemons or the kernel
// module: the netlink element wg 1.0.20250521 writes for a removal; a pre-6.16 kernel (the model
// in lib-kernel-model.ts) refusing it after applying what came before, which is why a probe
// decides; and, on random devices and requests, four backends ending in the same state: a 6.16+
// kernel and our daemon's UAPI (core/device.ts) removing natively, an older kernel and a UAPI
// daemon that answers -22 at `allowed_ip=-` as wireguard-go 0.0.20220316 does, both through the
// rewritten request.
import { describe, expect, test } from "bun:test";
import { applyWithRemovals, removalProbe, withoutRemovals, type DeviceIo } from "../core/tools/allowed-ip-removal.ts";
import { emptyPeerConfig, type AllowedIp, type DeviceConfig, type PeerConfig, type WgDevice } from "../core/tools/containers.ts";
import { buildSetRequest, parseGetResponse, parseSetResponse } from "../core/tools/uapi.ts";
import { formatPrefix } from "../core/allowedips.ts";
import { createDevice } from "../core/device.ts";
import { EINVAL } from "../core/errno.ts";
import { SetFragmenter, getDevice, setDevice } from "../platform/linux/ipc-netlink.ts";
import { MsgBuilder } from "../platform/linux/netlink.ts";
import { FAMILY, KernelModel, emptyDevice } from "./lib-kernel-model.ts";

const key = (n: number) => new Uint8Array(32).fill(n);
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const v4 = (a: number, b: number, c: number, d: number, cidr = 32, remove = false): AllowedIp => ({ family: 4, addr: new Uint8Array([a, b, c, d]), cidr, ...(remove ? { remove } : {}) });
const peer = (n: number, f: Partial<PeerConfig>): PeerConfig => ({ ...emptyPeerConfig(), publicKey: key(n), ...f });
const change = (...peers: PeerConfig[]): DeviceConfig => ({ replacePeers: false, peers });
/** Peers and their allowed IPs in order, as `wg show allowed-ips` lists them. */
const state = (d: WgDevice) => d.peers.map((p) => `${hex(p.publicKey).slice(0, 4)}: ${p.allowedIps.map(formatPrefix).join(" ")}`);

function kernelIo(model: KernelModel): DeviceIo {
  const open = () => model.channel();
  // setIndex 0 tells the model which message starts a change (only it may carry device attributes).
  return { get: async () => getDevice("wg0", open), set: async (c) => ((model.setIndex = 0), setDevice("wg0", c, open)) };
}

/** Our daemon's engine over UAPI; `legacy`: answers -22 at the first `allowed_ip=-`, after applying the lines before it. */
function daemonIo(legacy: boolean): DeviceIo & { requests: string[] } {
  const dev = createDevice({ sendUdp() {}, writeTun() {}, bind: (p) => p || 40000 }, { mono: () => 1000, wall: () => 1_700_000_000_000 });
  const requests: string[] = [];
  return {
    requests,
    get: async () => parseGetResponse(dev.uapi("get=1\n\n").response, "wg0"),
    set: async (c) => {
      const req = buildSetRequest(c);
      requests.push(req);
      const cut = legacy ? req.indexOf("\nallowed_ip=-") : -1;
      if (cut < 0) return parseSetResponse(dev.uapi(req).response);
      dev.uapi(req.slice(0, cut + 1) + "\n");
      return EINVAL;
    },
  };
}

describe("netlink: a removal is WGALLOWEDIP_A_FLAGS = REMOVE_ME after the prefix", () => {
  test("element bytes, and fragments still within the bound", () => {
    const f = new SetFragmenter("wg0", change(peer(1, { allowedIps: [v4(10, 0, 0, 0, 8, true), v4(10, 1, 0, 0, 16)] })), 4096);
    const b = new MsgBuilder(4096);
    expect(f.next(b, FAMILY)).toBe(false);
    const msg = hex(b.finish(1));
    // nest 36 bytes | FAMILY u16 2 | IPADDR 10.0.0.0 | CIDR_MASK 8 | FLAGS u32 1; then a plain 28-byte element.
    expect(msg).toContain("24000080" + "0600010002000000" + "080002000a000000" + "0500030008000000" + "0800040001000000" + "1c000080");
    const many = change(peer(1, { allowedIps: Array.from({ length: 400 }, (_, i) => v4(10, 2, i >> 8, i & 255, 32, i % 2 === 0)) }));
    const model = new KernelModel(emptyDevice("wg0"), { allowedIpFlags: true });
    expect(setDevice("wg0", many, () => model.channel())).toBe(0);
    expect(model.sent.filter((s) => s.cmd === 1).every((s) => s.bytes.length <= 4096)).toBe(true);
    expect(model.device.peers[0]!.ips.length).toBe(200);
  });

  test("before 6.16 the kernel refuses it where it parses it, keeping what came before: never sent untried", async () => {
    const model = new KernelModel(emptyDevice("wg0"));
    const io = kernelIo(model);
    expect(await io.set(change(peer(1, { allowedIps: [v4(10, 0, 0, 0, 24), v4(10, 0, 1, 0, 24)] })))).toBe(0);
    const naive = change(peer(2, { allowedIps: [v4(10, 9, 0, 0, 16)] }), peer(1, { persistentKeepalive: 5, allowedIps: [v4(10, 0, 2, 0, 24), v4(10, 0, 0, 0, 24, true)] }));
    expect(await io.set(naive)).toBe(EINVAL);
    // Peer 2 was created and peer 1 got 10.0.2.0/24 before the refusal; the keepalive (after the list) was not set.
    const got = await io.get();
    expect(got.ok && state(got.device)).toEqual(["0101: 10.0.0.0/24 10.0.1.0/24 10.0.2.0/24", "0202: 10.9.0.0/16"]);
    expect(model.device.peers[0]!.keepalive).toBe(0);
  });
});

describe("probe, then native or rewritten", () => {
  const start = change(peer(1, { allowedIps: [v4(10, 0, 0, 0, 24), v4(10, 0, 1, 0, 24), v4(255, 255, 255, 255)] }), peer(2, { allowedIps: [v4(10, 9, 0, 0, 16)] }));
  const request = change(peer(1, { endpoint: "192.0.2.1:5", allowedIps: [v4(10, 0, 1, 0, 24, true), v4(10, 0, 5, 0, 24), v4(10, 9, 0, 0, 16, true)] }));
  const expected = ["0101: 10.0.0.0/24 255.255.255.255/32 10.0.5.0/24", "0202: 10.9.0.0/16"];

  test("the probe: an existing peer, update-only, losing a /32 it does not hold", () => {
    const dev: WgDevice = { name: "wg0", privateKey: null, publicKey: null, listenPort: 0, fwmark: 0, peers: [] };
    expect(removalProbe(dev)).toBeNull();
    dev.peers.push({ publicKey: key(1), presharedKey: null, endpoint: null, lastHandshakeSec: 0n, lastHandshakeNsec: 0n, rxBytes: 0n, txBytes: 0n, persistentKeepalive: 0, allowedIps: [v4(255, 255, 255, 255)] });
    expect(buildSetRequest(removalProbe(dev)!)).toBe(`set=1\npublic_key=${hex(key(1))}\nupdate_only=true\nallowed_ip=-255.255.255.254/32\n\n`);
  });

  for (const flags of [true, false]) {
    test(`kernel ${flags ? "6.16+: native" : "before 6.16: rewritten"}`, async () => {
      const model = new KernelModel(emptyDevice("wg0"), { allowedIpFlags: flags });
      const io = kernelIo(model);
      expect(await io.set(start)).toBe(0);
      const before = model.sent.length;
      expect(await applyWithRemovals(io, request)).toBe(0);
      const got = await io.get();
      expect(got.ok && state(got.device)).toEqual(expected);
      expect(got.ok && got.device.peers[0]!.endpoint).toBe("192.0.2.1:5");
      // GETFAMILY before each: get, probe, the change (and the final read).
      const cmds = model.sent.slice(before).filter((s) => s.type === FAMILY).map((s) => s.cmd);
      expect(cmds).toEqual([0, 1, 1, 0]);
      const last = model.sent.filter((s) => s.type === FAMILY && s.cmd === 1).at(-1)!.bytes;
      // Native: the FLAGS attribute goes out; rewritten: REPLACE_ALLOWEDIPS and the whole list instead.
      expect(hex(last).includes("0800040001000000")).toBe(flags);
    });
  }

  for (const legacy of [false, true]) {
    test(`UAPI ${legacy ? "daemon answering -22 (wireguard-go 0.0.20220316): rewritten" : "daemon with allowed_ip=-: native"}`, async () => {
      const io = daemonIo(legacy);
      expect(await io.set(start)).toBe(0);
      expect(await applyWithRemovals(io, request)).toBe(0);
      const got = await io.get();
      expect(got.ok && state(got.device)).toEqual(expected);
      const [probe, sent] = io.requests.slice(1);
      expect(probe).toStartWith(`set=1\npublic_key=${hex(key(1))}\nupdate_only=true\nallowed_ip=-255.255.255.254/32\n`);
      expect(sent).toBe(
        legacy
          ? `set=1\npublic_key=${hex(key(1))}\nendpoint=192.0.2.1:5\nreplace_allowed_ips=true\nallowed_ip=10.0.0.0/24\nallowed_ip=255.255.255.255/32\nallowed_ip=10.0.5.0/24\n\n`
          : `set=1\npublic_key=${hex(key(1))}\nendpoint=192.0.2.1:5\nallowed_ip=-10.0.1.0/24\nallowed_ip=10.0.5.0/24\nallowed_ip=-10.9.0.0/16\n\n`,
      );
    });
  }

  test("a device without peers: rewritten without a probe; read errors are the change's", async () => {
    const io = daemonIo(true);
    expect(await applyWithRemovals(io, change(peer(1, { allowedIps: [v4(10, 0, 0, 1), v4(10, 0, 0, 2), v4(10, 0, 0, 1, 32, true)] })))).toBe(0);
    expect(io.requests).toEqual([`set=1\npublic_key=${hex(key(1))}\nreplace_allowed_ips=true\nallowed_ip=10.0.0.2/32\n\n`]);
    const failing: DeviceIo = { get: async () => ({ ok: false, errno: 19 }), set: async () => 0 };
    expect(await applyWithRemovals(failing, request)).toBe(19);
    // Without removals nothing is read or probed.
    const plain = daemonIo(true);
    expect(await applyWithRemovals(plain, change(peer(1, { allowedIps: [v4(10, 0, 0, 1)] })))).toBe(0);
    expect(plain.requests.length).toBe(1);
  });

  test("blocks the device ignores only lose their removals", () => {
    const dev: WgDevice = { name: "wg0", privateKey: null, publicKey: key(9), listenPort: 0, fwmark: 0, peers: [] };
    const c = change(peer(9, { allowedIps: [v4(10, 0, 0, 1, 32, true), v4(10, 0, 0, 2)] }), peer(3, { updateOnly: true, allowedIps: [v4(10, 0, 0, 3, 32, true)] }));
    expect(withoutRemovals(c, dev).peers.map((p) => [p.replaceAllowedIps, p.allowedIps.map(formatPrefix)])).toEqual([
      [false, ["10.0.0.2/32"]],
      [false, []],
    ]);
  });
});

describe("random devices and changes: four backends, one outcome", () => {
  // A small world so that prefixes collide: moves between peers, re-inserts, removals of what another peer holds.
  const pool = [v4(10, 0, 0, 0, 24), v4(10, 0, 1, 0, 24), v4(10, 0, 1, 7, 24), v4(10, 0, 0, 0, 16), v4(10, 1, 0, 0, 24), { family: 6 as const, addr: new Uint8Array(16).fill(0xfd, 0, 1), cidr: 64 }];
  let seed = 0x12345;
  const rnd = (n: number) => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 8) % n;
  const ips = (withRemovals: boolean) => Array.from({ length: rnd(5) }, () => ({ ...pool[rnd(pool.length)]!, ...(withRemovals && rnd(2) ? { remove: true } : {}) }));
  const randomChange = (withRemovals: boolean): DeviceConfig => ({
    replacePeers: withRemovals && rnd(12) === 0,
    peers: Array.from({ length: 1 + rnd(4) }, () =>
      peer(1 + rnd(4), { remove: withRemovals && rnd(8) === 0, updateOnly: rnd(6) === 0, replaceAllowedIps: rnd(3) === 0, allowedIps: ips(withRemovals) }),
    ),
  });

  test("300 cases", async () => {
    let native = 0, rewritten = 0;
    for (let i = 0; i < 300; i++) {
      const setup = [randomChange(false), randomChange(false)], c = randomChange(true);
      const backends = [kernelIo(new KernelModel(emptyDevice("wg0"), { allowedIpFlags: true })), kernelIo(new KernelModel(emptyDevice("wg0"))), daemonIo(false), daemonIo(true)];
      const outcomes: string[][] = [];
      for (const io of backends) {
        for (const s of setup) expect(await io.set(s)).toBe(0);
        expect(await applyWithRemovals(io, c)).toBe(0);
        const got = await io.get();
        if (!got.ok) throw new Error(`read failed: ${got.errno}`);
        outcomes.push(state(got.device));
      }
      const legacy = backends[3] as ReturnType<typeof daemonIo>;
      if (legacy.requests.at(-1)!.includes("\nallowed_ip=-")) native++;
      else rewritten++;
      for (const o of outcomes.slice(1)) expect({ case: i, change: buildSetRequest(c), o }).toEqual({ case: i, change: buildSetRequest(c), o: outcomes[0]! });
    }
    // Every legacy request was rewritten; the count shows the cases were not trivial.
    expect([native, rewritten > 100]).toEqual([0, true]);
  });
});
