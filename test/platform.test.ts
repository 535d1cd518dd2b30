// Real-packet tests of the Linux plumbing (TUN, batched UDP, poller loop, UAPI socket) without
// the protocol engine. Each scenario runs a small child script inside a private namespace, since
// a TUN device belongs to the namespace of the process that creates it.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Lab, type Netns } from "./netns.ts";
import { expectSegments, fold, pattern, pseudo, sum, tcp, udpPartial, verifies, vnetFields, vnetHeader } from "./lib-packets.ts";

const ROOT = join(import.meta.dir, "..");
const BUN = process.execPath;
let lab: Lab;
let dir: string;

beforeAll(() => {
  lab = new Lab("plat");
  dir = mkdtempSync(join(tmpdir(), "wgt-plat-"));
});
afterAll(async () => {
  await lab.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

/** Writes a child script (imports resolved against the checkout) and returns its path. */
function script(name: string, body: string): string {
  const p = join(dir, name);
  writeFileSync(p, body.replaceAll("@ROOT@", ROOT));
  return p;
}

function runIn(ns: Netns, path: string, args: string[] = []): any {
  const r = ns.run([BUN, path, ...args]);
  if (r.code !== 0) throw new Error(`child ${path} exit ${r.code}\n${r.stderr}\n${r.stdout}`);
  const last = r.stdout.trim().split("\n").pop()!;
  return JSON.parse(last);
}

describe("TUN", () => {
  test("echo request routed into the TUN arrives through the poller loop; a written packet reaches a socket; link state and deletion are seen", () => {
    const ns = lab.ns("tun");
    const p = script(
      "tun.ts",
      `
import { Tun } from "@ROOT@/platform/linux/tun.ts";
import { LinuxIO } from "@ROOT@/platform/linux/io-loop.ts";
import { Udp } from "@ROOT@/platform/linux/udp.ts";
import { formatEndpoint } from "@ROOT@/core/endpoint.ts";
const tun = Tun.open("wgtun0");
tun.setMtu(1420);
const seen = { echo: 0, ups: 0, downs: 0, links: [] as boolean[], mtu: 0, written: 0, name: tun.name, mtuRead: tun.mtu() };
const sock = new Udp();
const io = new LinuxIO(tun, { log: () => {} });
// An IPv4/UDP packet 10.9.0.2:5555 -> 10.9.0.1:<port>, UDP checksum 0 (allowed for IPv4).
function udpPacket(port: number): Uint8Array {
  const payload = new TextEncoder().encode("hello-tun");
  const b = new Uint8Array(28 + payload.length);
  const v = new DataView(b.buffer);
  b[0] = 0x45; v.setUint16(2, b.length); b[8] = 64; b[9] = 17;
  b.set([10, 9, 0, 2], 12); b.set([10, 9, 0, 1], 16);
  let s = 0; for (let i = 0; i < 20; i += 2) s += v.getUint16(i); while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  v.setUint16(10, ~s & 0xffff);
  v.setUint16(20, 5555); v.setUint16(22, port); v.setUint16(24, 8 + payload.length);
  b.set(payload, 28);
  return b;
}
io.attach({
  receiveUdp() {},
  sendTunPacket(b: Uint8Array, o: number, l: number) {
    // IPv4 ICMP echo request to 10.9.0.2
    if (b[o] >> 4 === 4 && b[o + 9] === 1 && b[o + 20] === 8 && b[o + 19] === 2) seen.echo++;
  },
  tick() {}, nextDeadline() { return Infinity; }, uapi() { return { response: "errno=0\\n\\n", close: false }; },
  up() { seen.ups++; }, down() { seen.downs++; }, setLinkUp(u: boolean) { seen.links.push(u); }, checkSources() { return 0; },
  setMtu(m: number) { seen.mtu = m; }, close() {},
} as any);
const sh = (c: string) => Bun.spawnSync(["sh", "-c", c]);
setTimeout(() => {
  sh("ip link set wgtun0 up && ip addr add 10.9.0.1/24 dev wgtun0");
  Bun.spawn(["ping", "-c", "3", "-i", "0.2", "-W", "1", "10.9.0.2"]);
}, 100);
setTimeout(() => {
  const port = sock.bind(0, 0);
  io.writeTun(udpPacket(port), 0, 37);
  sock.readable(1000);
  sock.receive((b, o, l, src) => { if (new TextDecoder().decode(b.subarray(o, o + l)) === "hello-tun" && formatEndpoint(src) === "10.9.0.2:5555") seen.written++; });
  sh("ip link set wgtun0 mtu 1380");
}, 1300);
setTimeout(() => sh("ip link set wgtun0 down"), 1600);
setTimeout(() => sh("ip link del wgtun0"), 1900);
const guard = setTimeout(() => { console.log(JSON.stringify({ ...seen, reason: "timeout" })); process.exit(1); }, 8000);
const reason = await io.start();
clearTimeout(guard);
console.log(JSON.stringify({ ...seen, reason, wakeups: io.wakeups }));
process.exit(0);
`,
    );
    const r = runIn(ns, p);
    expect(r.name).toBe("wgtun0");
    expect(r.mtuRead).toBe(1420);
    expect(r.echo).toBeGreaterThanOrEqual(3);
    expect(r.written).toBe(1);
    // up() (the bind) at start like wireguard-go and again on link up (a no-op for the engine);
    // the link state reaches the engine as the kernel's device open/stop: down at start, up, down.
    expect(r.ups).toBe(2);
    expect(r.downs).toBe(0);
    expect(r.links).toEqual([false, true, false]);
    expect(r.mtu).toBe(1380);
    expect(r.reason).toBe("interface removed");
  }, 20000);
});

describe("UDP", () => {
  test("between two namespaces: SO_MARK, recvmmsg batches, UDP GSO/GRO, dual-stack sources, sticky reply source, EADDRINUSE", async () => {
    const a = lab.ns("ua");
    const b = lab.ns("ub");
    const [dev] = lab.veth(a, b, { a: ["10.7.0.1/24", "fd07::1/64", "fe80::a/64"], b: ["10.7.0.2/24", "10.7.0.3/24", "fd07::2/64", "fe80::b/64"] });
    const server = script(
      "udp-server.ts",
      `
import { Udp, scopeName } from "@ROOT@/platform/linux/udp.ts";
import { formatEndpoint } from "@ROOT@/core/endpoint.ts";
const u = new Udp();
const port = u.bind(0, 0);
console.log(JSON.stringify({ port }));
let got = 0, maxBatch = 0, badLen = 0, big = 0; const sources = new Set<string>();
const end = Date.now() + 8000;
while (got < 2006 && Date.now() < end) {
  if (!u.readable(200)) continue;
  await Bun.sleep(20); // let a burst queue up so one recvmmsg returns many
  const n = u.receive((buf, off, len, src) => {
    got++;
    if (len === 3000) big++;
    else if (len !== 1200 && !(len === 8 && (buf[off] === 0x50 || buf[off] === 0x51))) badLen++;
    sources.add(src.family + " " + formatEndpoint(src, scopeName).replace(/:\\d+$/, ""));
    // Reply to the probe: it must leave from the address it was sent to.
    if (buf[off] === 0x50 || buf[off] === 0x51) { u.send(buf, off, len, src); u.flush(); }
  });
  if (n > maxBatch) maxBatch = n;
}
let inUse = 0;
try { new Udp().bind(port, 0); } catch (e: any) { inUse = e.errno; }
console.log(JSON.stringify({ got, maxBatch, badLen, big, gro: u.gro, sources: [...sources].sort(), inUse }));
`,
    );
    const client = script(
      "udp-client.ts",
      `
import { Udp, scopeName } from "@ROOT@/platform/linux/udp.ts";
import { getInt, SOL_SOCKET, SO_MARK, cstr, libc } from "@ROOT@/platform/linux/libc.ts";
import { formatEndpoint } from "@ROOT@/core/endpoint.ts";
import { parseAddrPort } from "@ROOT@/core/uapi-server.ts";
const port = Number(process.argv[2]);
const u = new Udp();
u.bind(0, 0x2a5);
const mark = getInt(u.fd, SOL_SOCKET, SO_MARK);
const msg = new Uint8Array(1200);
const to4 = parseAddrPort("10.7.0.2:" + port)!;
const to6 = parseAddrPort("[fd07::2]:" + port)!;
for (let i = 0; i < 1000; i++) u.send(msg, 0, 1200, to4);
for (let i = 0; i < 1000; i++) u.send(msg, 0, 1200, to6);
u.flush();
await Bun.sleep(100);
msg[0] = 0x50;
u.send(msg, 0, 8, parseAddrPort("10.7.0.3:" + port)!); u.flush();
let replyFrom = "";
if (u.readable(2000)) u.receive((b, o, l, src) => { replyFrom = formatEndpoint(src); });
// Link-local with a zone: the server must answer back through the same interface.
msg[0] = 0x51;
const linkLocal = parseAddrPort("[fe80::b]:" + port)!;
linkLocal.scope = libc.if_nametoindex(cstr(process.argv[3]!));
u.send(msg, 0, 8, linkLocal); u.flush();
let linkLocalReply = "";
if (u.readable(2000)) u.receive((b, o, l, src) => { linkLocalReply = formatEndpoint(src, scopeName); });
// Datagrams above the path MTU: the kernel refuses them as one GSO message (EINVAL); they must
// still arrive (as IP fragments), sent one by one, and GSO is switched off.
const big = new Uint8Array(3000);
for (let i = 0; i < 4; i++) u.send(big, 0, 3000, to4);
u.flush();
console.log(JSON.stringify({ mark, replyFrom, linkLocalReply, gsoAfter: u.gso, tx: u.txPackets, dropped: u.txDropped, gsoMessages: u.gsoMessages }));
`,
    );
    const srv = b.spawn([BUN, server]);
    let port = 0;
    for (let i = 0; i < 100 && port === 0; i++) {
      await Bun.sleep(50);
      const m = srv.output().match(/\{"port":(\d+)\}/);
      if (m) port = Number(m[1]);
    }
    expect(port).toBeGreaterThan(0);
    const c = runIn(a, client, [String(port), dev]);
    await srv.exited;
    const s = JSON.parse(srv.output().trim().split("\n").pop()!);
    expect(c.mark).toBe(0x2a5);
    expect(c.dropped).toBe(0);
    expect(c.replyFrom).toBe(`10.7.0.3:${port}`);
    expect(s.got).toBe(2006);
    expect(s.big).toBe(4);
    expect(c.gsoAfter).toBe(false);
    expect(c.linkLocalReply).toBe(`[fe80::b%${dev}]:${port}`);
    // Sent as UDP GSO messages, received through UDP_GRO, split back into 1200-byte datagrams.
    expect(c.gsoMessages).toBeGreaterThan(0);
    expect(c.tx).toBe(2006);
    expect(s.gro).toBe(true);
    expect(s.badLen).toBe(0);
    expect(s.maxBatch).toBeGreaterThan(1);
    expect(s.sources.length).toBe(3);
    expect(s.sources.slice(0, 2)).toEqual(["4 10.7.0.1", "6 [fd07::1]"]);
    expect(s.sources[2]).toMatch(new RegExp(`^6 \\[fe80::[0-9a-f:]+%${dev}\\]$`));
    expect(s.inUse).toBe(98);
  }, 20000);
});

describe("UDP sticky source refused", () => {
  test("forgotten when the kernel takes the datagram without it; kept through no route, a GSO refusal and a firewall drop", () => {
    const ns = lab.ns("us");
    const [dev] = lab.veth(ns, lab.ns("ut"), { a: ["10.8.0.1/24", "fd08::1/64"], b: ["10.8.0.2/24", "fd08::2/64"] });
    const p = script(
      "udp-sticky.ts",
      `
import { Udp } from "@ROOT@/platform/linux/udp.ts";
import { Endpoint } from "@ROOT@/core/endpoint.ts";
import { cstr, libc } from "@ROOT@/platform/linux/libc.ts";
const sh = (c: string) => { const r = Bun.spawnSync(["sh", "-c", c]); if (r.exitCode !== 0) throw new Error(c + ": " + r.stderr); };
sh("nft add table inet t && nft add chain inet t out '{ type filter hook output priority 0; }' && nft add rule inet t out udp dport 9 drop");
const ifx = libc.if_nametoindex(cstr(process.argv[2]!));
const v4 = (n: number, last: number) => [10, n, 0, last];
const v6 = (n: number, last: number) => [0xfd, n, ...Array(13).fill(0), last];
/** count datagrams of len bytes to <net>.2:port from sticky source <8>.<src> on interface srcIf, on a fresh socket. */
function run(family: 4 | 6, net: number, port: number, src: number, srcIf: number, count = 1, len = 100) {
  const u = new Udp();
  u.bind(0, 0);
  const addr = family === 4 ? v4 : v6;
  const ep = Endpoint.of(family, addr(net, 2), port);
  ep.hasSrc = true;
  ep.src.set(addr(8, src));
  ep.srcIfindex = srcIf;
  for (let i = 0; i < count; i++) u.send(new Uint8Array(len), 0, len, ep);
  u.flush();
  u.close();
  return { kept: ep.hasSrc, tx: u.txPackets, dropped: u.txDropped, gso: u.gso, gsoMessages: u.gsoMessages };
}
console.log(JSON.stringify({
  stale4: run(4, 8, 7, 99, ifx), // no longer an address here (ENETUNREACH)
  stale6: run(6, 8, 7, 99, ifx), // the same for IPv6 (EINVAL)
  goneIf6: run(6, 8, 7, 1, 9999), // its interface is gone (ENODEV)
  staleGso: run(4, 8, 7, 99, ifx, 4, 1000), // a stale source on a GSO message
  noRoute: run(4, 9, 7, 1, ifx), // no route to the destination at all (ENETUNREACH)
  gsoRefused: run(4, 8, 7, 1, ifx, 4, 3000), // segments above the MTU: GSO refused
  firewall: run(4, 8, 9, 1, ifx), // dropped by the output hook (EPERM)
}));
`,
    );
    const r = runIn(ns, p, [dev]);
    const sent = (n: number, gsoMessages = 0) => ({ kept: false, tx: n, dropped: 0, gso: true, gsoMessages });
    expect(r.stale4).toEqual(sent(1));
    expect(r.stale6).toEqual(sent(1));
    expect(r.goneIf6).toEqual(sent(1));
    expect(r.staleGso).toEqual(sent(4, 1));
    expect(r.noRoute).toEqual({ kept: true, tx: 0, dropped: 1, gso: true, gsoMessages: 0 });
    expect(r.gsoRefused).toEqual({ kept: true, tx: 4, dropped: 0, gso: false, gsoMessages: 0 });
    expect(r.firewall).toEqual({ kept: true, tx: 0, dropped: 1, gso: true, gsoMessages: 0 });
  }, 20000);
});

describe("UAPI listener", () => {
  test("socket mode 0700, several requests per connection, split writes, abrupt client", async () => {
    const sockDir = join(dir, "run");
    const { listenUapi } = await import("../platform/linux/uapi-listener.ts");
    const { socketPath } = await import("../platform/socket-path.ts");
    const { statSync } = await import("node:fs");
    const path = socketPath("wgt-uapi0", sockDir);
    const seen: string[] = [];
    const l = listenUapi(path, (req) => {
      seen.push(req);
      return req.startsWith("get=1") ? "private_key=00\nerrno=0\n\n" : "errno=0\n\n";
    });
    try {
      expect(statSync(path).mode & 0o777).toBe(0o700);
      expect(statSync(sockDir).mode & 0o777).toBe(0o755);
      expect(statSync(path).isSocket()).toBe(true);
      // A second listener on a live socket must refuse (EADDRINUSE).
      let err = 0;
      try {
        listenUapi(path, () => "");
      } catch (e: any) {
        err = e.errno;
      }
      expect(err).toBe(98);
      let got = "";
      const done = Promise.withResolvers<void>();
      const s = await Bun.connect({
        unix: path,
        socket: {
          data(_s, d) {
            got += d.toString();
            if (got.split("errno=0\n\n").length === 3) done.resolve();
          },
        },
      });
      s.write("get=1\n");
      await Bun.sleep(20);
      s.write("\nset=1\nlisten_port=1\n\n");
      await done.promise;
      s.end();
      expect(seen).toEqual(["get=1\n\n", "set=1\nlisten_port=1\n\n"]);
      expect(got).toBe("private_key=00\nerrno=0\n\nerrno=0\n\n");
      // Empty probe connection and a client vanishing mid-request.
      (await Bun.connect({ unix: path, socket: { data() {} } })).end();
      const s2 = await Bun.connect({ unix: path, socket: { data() {} } });
      s2.write("set=1\nlisten_po");
      s2.terminate();
      await Bun.sleep(50);
      expect(seen.length).toBe(2);
    } finally {
      l.close();
    }
    expect(() => statSync(path)).toThrow();
  });
});

describe("TUN offloads over a socketpair (byte-exact)", () => {
  async function pair() {
    const { libc } = await import("../platform/linux/libc.ts");
    const { Tun } = await import("../platform/linux/tun.ts");
    const fds = new Int32Array(2);
    expect(libc.socketpair(1, 2 | 0o4000, 0, fds)).toBe(0); // AF_UNIX, SOCK_DGRAM|NONBLOCK
    const tun = Tun.fromFd(fds[0]!, "sp", true);
    const other = fds[1]!;
    const recvAll = () => {
      const out: Uint8Array[] = [];
      const buf = new Uint8Array(70000);
      for (;;) {
        const n = Number(libc.recv(other, buf, buf.length, 0x40));
        if (n <= 0) return out;
        out.push(buf.slice(0, n));
      }
    };
    const send = (b: Uint8Array) => expect(Number(libc.write(other, b, b.length))).toBe(b.length);
    return { tun, recvAll, send, close: () => (tun.close(), libc.close(other)) };
  }

  for (const v4 of [true, false]) {
    test(`GRO: in-order IPv${v4 ? 4 : 6} TCP segments become one GSO write; others pass unchanged`, async () => {
      const { tun, recvAll, close } = await pair();
      try {
        const segs = [0, 1, 2, 3, 4].map((k) => tcp(v4, 1000 + k * 1000, pattern(1000, k)));
        const last = tcp(v4, 6000, pattern(500, 9), 0x18);
        const gap = tcp(v4, 9000, pattern(1000, 3)); // out of order: starts a new merge
        for (const s of [...segs, last, gap]) expect(tun.write(s, 0, s.length)).toBe(s.length);
        const udp = new Uint8Array([0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, 0, 53, 0, 53, 0, 8, 0, 0]);
        tun.write(udp, 0, udp.length);
        tun.flush();
        const got = recvAll();
        expect(got.length).toBe(3);
        const [merged, single, plain] = got as [Uint8Array, Uint8Array, Uint8Array];
        const hl = v4 ? 20 : 40;
        expect(vnetFields(merged)).toEqual([1, v4 ? 1 : 4, hl + 32, 1000, hl, 16]);
        const ip = merged.subarray(10);
        const iv = new DataView(ip.buffer, ip.byteOffset);
        expect(ip.length).toBe(hl + 32 + 5500);
        if (v4) {
          expect(iv.getUint16(2)).toBe(ip.length);
          expect(fold(sum(ip.subarray(0, 20)))).toBe(0xffff);
        } else expect(iv.getUint16(4)).toBe(ip.length - 40);
        expect(ip[hl + 13]).toBe(0x18); // PSH of the last segment carried over
        expect(iv.getUint32(hl + 4)).toBe(1000);
        // CHECKSUM_PARTIAL: the field is the folded pseudo-header sum.
        expect(iv.getUint16(hl + 16)).toBe(fold(pseudo(ip, ip.length - hl, 6)));
        const payload = ip.subarray(hl + 32);
        const want = new Uint8Array(5500);
        [0, 1, 2, 3, 4].forEach((k) => want.set(pattern(1000, k), k * 1000));
        want.set(pattern(500, 9), 5000);
        expect(Buffer.from(payload).equals(Buffer.from(want))).toBe(true);
        // A lone segment and a non-TCP packet go out untouched with an all-zero header.
        expect([...single.subarray(0, 10)]).toEqual(new Array(10).fill(0));
        expect(Buffer.from(single.subarray(10)).equals(Buffer.from(gap))).toBe(true);
        expect(Buffer.from(plain.subarray(10)).equals(Buffer.from(udp))).toBe(true);
        expect(tun.merged).toBe(5);
      } finally {
        close();
      }
    });

    test(`TSO: an IPv${v4 ? 4 : 6} TCP super-packet is cut into valid segments`, async () => {
      const { tun, send, close } = await pair();
      try {
        const big = tcp(v4, 0xfffffc00, pattern(3000, 1), 0x19, 100); // ACK|PSH|FIN, seq wraps
        const hl = v4 ? 20 : 40;
        const hdr = vnetHeader(1, v4 ? 1 : 4, hl + 32, 1200, hl, 16);
        // The kernel leaves only the pseudo-header sum in a super-packet's checksum field.
        new DataView(big.buffer).setUint16(hl + 16, 0x1234);
        const msg = new Uint8Array(10 + big.length);
        msg.set(hdr);
        msg.set(big, 10);
        send(msg);
        const segs: Uint8Array[] = [];
        expect(tun.receive((b, o, l) => segs.push(b.slice(o, o + l)))).toBe(3);
        expectSegments(segs, big, 1200, [0x10, 0x10, 0x19]);

        // A single packet whose checksum the kernel left to us (NEEDS_CSUM, no GSO): UDP.
        const udp = udpPartial(pattern(11, 4));
        const m2 = new Uint8Array(10 + udp.length);
        m2.set(vnetHeader(1, 0, 0, 0, 20, 6));
        m2.set(udp, 10);
        send(m2);
        const out: Uint8Array[] = [];
        expect(tun.receive((b, o, l) => out.push(b.slice(o, o + l)))).toBe(1);
        expect(verifies(out[0]!)).toBe(true);
        expect(tun.receive(() => {})).toBe(0); // nothing left: EAGAIN
      } finally {
        close();
      }
    });
  }
});
