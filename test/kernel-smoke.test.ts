// The kernel VM harness (test/lib-vm.ts) works: the guest runs the Debian kernel with the real
// WireGuard module, the host's tools and our compiled executable run inside it, commands return
// exact bytes and exit codes, and the guest is reachable over the TAP in IPv4 and IPv6.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type Lab, waitFor } from "./netns.ts";
import { type Vm, bootTestVm, stopTestVm, guestExecutable } from "./lib-vm.ts";

let lab: Lab;
let vm: Vm;
beforeAll(async () => {
  ({ lab, vm } = await bootTestVm("kvmsmoke"));
}, 150_000);
afterAll(async () => {
  await stopTestVm(lab, vm);
});

test("the guest runs the module kernel with wireguard loaded and a seeded CSPRNG", async () => {
  const r = await vm.sh("uname -r; test -d /sys/module/wireguard && echo wg-module; cat /proc/sys/kernel/random/entropy_avail");
  const [rel, mod, entropy] = r.stdout.trim().split("\n");
  expect(rel).toBe(vm.kernelRelease);
  expect(mod).toBe("wg-module");
  // Since 5.18 entropy_avail is 256 once the CRNG is initialised.
  expect(Number(entropy)).toBeGreaterThanOrEqual(256);
}, 30_000);

test("exit codes, stdin and byte-exact stdout/stderr", async () => {
  const bytes = Buffer.from([0, 1, 0x7f, 0x80, 0xff, 0x0a, 0x0d]);
  const r = await vm.sh("cat; printf 'e\\377' >&2; exit 7", { stdin: bytes.toString("latin1") });
  expect(r.code).toBe(7);
  expect(Buffer.from(r.stdoutBytes)).toEqual(bytes);
  expect(r.stdout).toBe(bytes.toString("latin1"));
  expect(r.stderr).toBe("e\xff");
}, 30_000);

test("commands overlap, and a background process outlives its command", async () => {
  // Each of the two waits for the other's file: they can only finish by running at once.
  const a = join(vm.shared, "ov-a");
  const b = join(vm.shared, "ov-b");
  const wait = (f: string) => `i=0; until [ -e ${f} ]; do i=$((i+1)); [ $i -lt 300 ] || exit 9; sleep 0.1; done`;
  const rs = await Promise.all([vm.sh(`touch ${a}; ${wait(b)}; echo A`), vm.sh(`touch ${b}; ${wait(a)}; echo B`)]);
  expect(rs.map((r) => [r.code, r.stdout])).toEqual([
    [0, "A\n"],
    [0, "B\n"],
  ]);
  const f = join(vm.shared, "bg.txt");
  await vm.ok(`(sleep 1; echo late > ${f}) > /dev/null 2>&1 &`);
  expect(existsSync(f)).toBe(false);
  expect(await waitFor(() => existsSync(f) && readFileSync(f, "utf8") === "late\n", 20_000)).toBe(true);
}, 60_000);

test("a kernel WireGuard interface, configured and shown by the real /usr/bin/wg", async () => {
  const out = await vm.ok(
    "ip link add wgsmoke type wireguard && wg genkey > /tmp/k && wg set wgsmoke private-key /tmp/k listen-port 51820 && " +
      "wg show wgsmoke listen-port && wg show wgsmoke public-key && wg pubkey < /tmp/k && ip -d link show wgsmoke",
  );
  const [port, pub, pub2] = out.split("\n");
  expect(port).toBe("51820");
  expect(pub).toMatch(/^[A-Za-z0-9+/]{43}=$/);
  expect(pub).toBe(pub2!);
  expect(out).toContain("wireguard");
  await vm.ok("ip link del wgsmoke");
}, 30_000);

test("our compiled executable and bun run in the guest", async () => {
  const exe = await guestExecutable(vm);
  const key = await vm.ok(`${exe} genkey`, { timeoutMs: 120_000 });
  expect(key).toMatch(/^[A-Za-z0-9+/]{43}=\n$/);
  // Our pubkey agrees with the real wg in the guest.
  const [ours, real] = await Promise.all([vm.ok(`${exe} pubkey`, { stdin: key, timeoutMs: 120_000 }), vm.ok("wg pubkey", { stdin: key })]);
  expect(ours).toBe(real);
  expect((await vm.ok(`${process.execPath} --version`, { timeoutMs: 120_000 })).trim()).toBe(Bun.version);
}, 300_000);

// The client library (platform/wg-client.ts) on a kernel link: bun in the guest runs a script
// that configures the link through it and reads it back; the real wg reads the same link.
test("the client library configures and reads a kernel link, as the real wg sees it", async () => {
  const script = join(vm.shared, "client.ts");
  writeFileSync(
    script,
    `import * as wg from ${JSON.stringify(join(import.meta.dir, "..", "platform", "wg-client.ts"))};
const priv = wg.generatePrivateKey(), peer = wg.publicKeyOf(wg.generatePrivateKey()), other = wg.publicKeyOf(wg.generatePrivateKey());
await wg.configureDevice("wglib", { privateKey: priv, listenPort: 51999, fwmark: 7, peers: [
  { publicKey: peer, endpoint: "192.0.2.1:51820", persistentKeepalive: 25, allowedIPs: ["10.9.0.0/24", "fd09::/64"] },
  { publicKey: other, allowedIPs: ["10.10.0.1"] },
] });
await wg.configureDevice("wglib", { peers: [{ publicKey: other, remove: true }, { publicKey: peer, removeAllowedIPs: ["fd09::/64"], allowedIPs: ["10.9.1.0/24"] }] });
const d = await wg.getDevice("wglib");
const errs = [];
for (const f of [() => wg.getDevice("wgnone"), () => wg.configureDevice("eth0", { listenPort: 1 })]) {
  try { await f(); errs.push("no error"); } catch (e) { errs.push(e.constructor.name + " " + e.errno); }
}
console.log(JSON.stringify({ list: await wg.listDevices(), pub: wg.publicKeyOf(priv), d: { ...d, peers: d.peers.map((p) => ({ publicKey: p.publicKey, endpoint: p.endpoint, allowedIPs: p.allowedIPs, keepalive: p.persistentKeepalive })) }, errs }));
`,
  );
  const out = await vm.ok(`ip link add wglib type wireguard && ${process.execPath} ${script} && wg show wglib dump`, { timeoutMs: 120_000 });
  const [json, ...dump] = out.trim().split("\n");
  const r = JSON.parse(json!);
  expect(r.list).toEqual(["wglib"]);
  expect(r.errs).toEqual(["NoSuchDeviceError 19", "NotSupportedError 95"]);
  const peer = r.d.peers[0].publicKey;
  expect(r.d).toMatchObject({ name: "wglib", publicKey: r.pub, listenPort: 51999, fwmark: 7 });
  expect(r.d.peers).toEqual([{ publicKey: peer, endpoint: "192.0.2.1:51820", allowedIPs: ["10.9.0.0/24", "10.9.1.0/24"], keepalive: 25 }]);
  // The real wg reads what the library wrote.
  expect(dump[0]!.split("\t").slice(1)).toEqual([r.pub, "51999", "0x7"]);
  expect(dump.slice(1).map((l) => l.split("\t"))).toEqual([[peer, "(none)", "192.0.2.1:51820", "10.9.0.0/24,10.9.1.0/24", "0", "0", "0", "25"]]);
  await vm.ok("ip link del wglib");
}, 180_000);

test("the guest is reachable over the TAP (IPv4 and IPv6) and nothing else", async () => {
  expect(vm.ns.run(["ping", "-c", "1", "-W", "5", vm.guest4]).code).toBe(0);
  expect(vm.ns.run(["ping", "-c", "1", "-W", "5", vm.guest6]).code).toBe(0);
  expect((await vm.sh(`ping -c 1 -W 5 ${vm.host4} && ping -c 1 -W 5 ${vm.host6}`)).code).toBe(0);
  const links = await vm.ok("ip -o link show | awk -F': ' '{print $2}'");
  expect(links.trim().split("\n").sort()).toEqual(["eth0", "lo"]);
  expect((await vm.ok("ip route show default")).trim()).toBe("");
}, 60_000);
