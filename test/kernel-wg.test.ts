// `wg` on the kernel path, differentially: in one qemu guest running the Debian kernel with the
// real WireGuard module (test/lib-vm.ts), two network namespaces hold identical devices; every
// case runs the real /usr/bin/wg in one and our compiled executable in the other (both called as
// `wg`), after the same set-up in both. Compared byte for byte: stdout, stderr, exit status and
// the resulting state of every device (`wg show all dump` by the real wg). Cases: every
// subcommand and form, set options including removal, keys from files and stdin, endpoints
// (IPv4, IPv6, scoped link-local, a host name), allowed-IP replacement and moves, setconf /
// addconf / syncconf, errors (missing device, non-WireGuard link, bad arguments, not permitted,
// address in use, an error echo larger than wg's receive buffer), a kernel link shadowed by a
// UAPI socket, and 10,000 peers / 100,000 allowed IPs (fragmented sets, multi-part dumps). Then
// ours only: --json checked against the real dump, `wg events` following a kernel link (it polls),
// and, with KERNEL_SCALE_RUNS=N, bench/kernel-scale.ts in the same guest.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, existsSync, linkSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { clampPrivateKey, publicKey } from "../core/crypto.ts";
import { keyToBase64 } from "../core/encoding.ts";
import type { Lab } from "./netns.ts";
import { type Vm, bootTestVm, stopTestVm, guestExecutable } from "./lib-vm.ts";
import { nobodyExecutable } from "./lib-nobody.ts";
import { testKey } from "./wg-harness.ts";
import { kernelScaleScript, kernelScaleTable, parseKernelScale } from "../bench/kernel-scale.ts";

const ROOT = join(import.meta.dir, "..");
const priv = (n: number) => clampPrivateKey(testKey(n));
const PUB = (n: number) => keyToBase64(publicKey(priv(n)));
const PRIV = (n: number) => keyToBase64(priv(n));

let lab: Lab;
let vm: Vm;
let exe: string;
/** Files shared with the guest (same path there). */
let F: (name: string, content?: string) => string;

beforeAll(async () => {
  // 10,000-peer devices, two Bun processes and the benchmark's devices need more than 1 GiB.
  ({ lab, vm } = await bootTestVm("kwg", { memMiB: 2048 }));
  exe = await ourExecutable(vm);
  F = (name, content) => {
    const p = join(vm.shared, name);
    if (content !== undefined) writeFileSync(p, Buffer.from(content, "latin1"), { mode: 0o600 });
    return p;
  };
  writeFileSync(join(vm.shared, "lib.sh"), LIB(vm.shared, exe.replace(/\/wg$/, "")));
  await vm.ok(`. ${vm.shared}/lib.sh && for n in r o; do ip netns add $n && ip -n $n link set lo up || exit 1; done`);
}, 1_200_000);
afterAll(async () => {
  await stopTestVm(lab, vm);
});

/**
 * guestExecutable, with its copy into the guest done first without its 120 s bound: over 9p on
 * a busy machine the ~100 MB take longer. The file appears under its final name only when whole.
 */
async function ourExecutable(vm: Vm): Promise<string> {
  const shared = join(vm.shared, "wgts");
  if (!existsSync(shared)) {
    try {
      linkSync(nobodyExecutable(), shared);
    } catch {
      copyFileSync(nobodyExecutable(), shared);
    }
  }
  await vm.ok(`mkdir -p /tmp/wgts && cp ${shared} /tmp/wgts/.wg && mv /tmp/wgts/.wg /tmp/wgts/wg && ln -sf wg /tmp/wgts/wg-quick`, { timeoutMs: 900_000 });
  return guestExecutable(vm);
}

/**
 * Guest helpers. `setup SCRIPT`: the same shell in both namespaces, with the real wg.
 * `tcase ID STDIN CMD`: CMD (shell text calling `wg`) in namespace r with the real wg first in
 * PATH and in namespace o with ours, then each namespace's state; results in $D/ID.{r,o}.*.
 */
const LIB = (shared: string, oursDir: string) => `D=${shared}/res
mkdir -p $D
P0=/usr/sbin:/usr/bin:/sbin:/bin
setup() {
  for n in r o; do
    ip netns exec $n env -i PATH=$P0 HOME=/root sh -ec "$1" > /dev/null 2>> $D/setup.err || { echo "setup failed in $n: $1" >> $D/setup.err; return 1; }
  done
}
side() {
  P=$P0; [ $2 = o ] && P=${oursDir}:$P0
  ip netns exec $2 env -i PATH=$P HOME=/root sh -c "$4" < $3 > $D/$1.$2.out 2> $D/$1.$2.err; echo $? > $D/$1.$2.code
  ip netns exec $2 /usr/bin/wg show all dump > $D/$1.$2.state 2>&1
}
# Both sides at once (the guest has two CPUs; the namespaces share nothing a case touches).
tcase() {
  side "$1" r "$2" "$3" &
  side "$1" o "$2" "$3"
  wait
}
`;

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

interface Case {
  cmd: string;
  /** Shell run in both namespaces (real wg) before the case. */
  setup?: string;
  stdin?: string;
}

interface Outcome {
  out: string;
  err: string;
  code: string;
  state: string;
}

/** Runs the cases in order in one guest command; returns the mismatches (none = identical). */
async function runCases(group: string, cases: Case[], timeoutMs = 600_000): Promise<{ mismatches: string[]; real: Outcome[]; ours: Outcome[] }> {
  let script = `. ${vm.shared}/lib.sh\n: > $D/setup.err\n`;
  cases.forEach((c, i) => {
    const id = `${group}${i}`;
    if (c.setup) script += `setup ${q(c.setup)} || exit 3\n`;
    const stdin = c.stdin === undefined ? "/dev/null" : F(`${id}.stdin`, c.stdin);
    script += `tcase ${id} ${stdin} ${q(c.cmd)}\n`;
  });
  const r = await vm.sh(script, { timeoutMs });
  const setupErr = readFileSync(join(vm.shared, "res", "setup.err"), "latin1");
  if (r.code !== 0) throw new Error(`guest script failed (${r.code}): ${r.stderr}\n${setupErr}`);
  const read = (id: string, n: string): Outcome => {
    const f = (ext: string) => readFileSync(join(vm.shared, "res", `${id}.${n}.${ext}`), "latin1");
    return { out: f("out"), err: f("err"), code: f("code").trim(), state: f("state") };
  };
  const mismatches: string[] = [];
  const real: Outcome[] = [], ours: Outcome[] = [];
  cases.forEach((c, i) => {
    const a = read(`${group}${i}`, "r"), b = read(`${group}${i}`, "o");
    real.push(a);
    ours.push(b);
    for (const k of ["code", "out", "err", "state"] as const)
      if (a[k] !== b[k]) mismatches.push(`${c.cmd} [${k}]\n${firstDifference(a[k], b[k])}`);
  });
  return { mismatches, real, ours };
}

function firstDifference(a: string, b: string): string {
  const al = a.split("\n"), bl = b.split("\n");
  for (let i = 0; i < Math.max(al.length, bl.length); i++)
    if (al[i] !== bl[i]) return `  line ${i + 1}:\n  real: ${JSON.stringify(al[i])}\n  ours: ${JSON.stringify(bl[i])}`;
  return "";
}

// ---------------------------------------------------------------------------------------------

/** A distinct public key per n (testKey repeats every 256). */
function peerKey(n: number): string {
  const k = testKey(n);
  new DataView(k.buffer).setUint32(0, n);
  return keyToBase64(k);
}

/**
 * A config of peers from..to-1, each with 10 allowed IPs (nine IPv4 /32, one IPv6 /128), every
 * third with an endpoint, every fifth with a preshared key, every seventh with a keepalive.
 */
function big(from: number, to: number, shift = 0): string {
  let s = `[Interface]\nPrivateKey = ${PRIV(40)}\nListenPort = 44000\n`;
  for (let p = from; p < to; p++) {
    const ips: string[] = [];
    for (let j = 0; j < 10; j++) {
      const n = p * 10 + j + shift;
      ips.push(j === 9 ? `fd44::${(n >> 16).toString(16)}:${(n & 0xffff).toString(16)}/128` : `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}/32`);
    }
    s += `\n[Peer]\nPublicKey = ${peerKey(100_000 + p)}\nAllowedIPs = ${ips.join(", ")}\n`;
    if (p % 3 === 0) s += `Endpoint = 198.18.${(p >> 8) & 255}.${p & 255}:${1 + p}\n`;
    if (p % 5 === 0) s += `PresharedKey = ${peerKey(200_000 + p)}\n`;
    if (p % 7 === 0) s += `PersistentKeepalive = ${1 + (p % 100)}\n`;
  }
  return s;
}
/** The 10,000-peer / 100,000-IP config in the shared directory. */
const bigConf = () => F("big.conf", big(0, 10_000));

const key = (n: number) => F(`key${n}`, PRIV(n) + "\n");
const psk = (n: number) => F(`psk${n}`, keyToBase64(testKey(500 + n)) + "\n");

describe("the real wg and ours on identical kernel devices", () => {
  test("show, showconf, set (every option), setconf/addconf/syncconf", async () => {
    const conf1 = F(
      "conf1",
      `[Interface]\nPrivateKey = ${PRIV(10)}\nListenPort = 41000\nFwMark = 0x99\n\n` +
        `[Peer]\nPublicKey = ${PUB(11)}\nPresharedKey = ${keyToBase64(testKey(600))}\nEndpoint = 198.51.100.11:11\nAllowedIPs = 10.11.0.0/16, fd11::/64\nPersistentKeepalive = 11\n\n` +
        `[Peer]\nPublicKey = ${PUB(12)}\nEndpoint = [fe80::12%wgs]:12\nAllowedIPs = 10.12.0.1/32\n\n` +
        `[Peer]\nPublicKey = ${PUB(13)}\nAllowedIPs = 10.13.0.0/24\n`,
    );
    const conf2 = F("conf2", `[Interface]\nListenPort = 42000\n\n[Peer]\nPublicKey = ${PUB(14)}\nEndpoint = [2001:db8::14]:14\nAllowedIPs = 10.14.0.0/24, 10.13.0.0/24\n`);
    const conf3 = F(
      "conf3",
      `[Interface]\nPrivateKey = ${PRIV(10)}\nListenPort = 41000\n\n[Peer]\nPublicKey = ${PUB(11)}\nEndpoint = 198.51.100.111:111\nAllowedIPs = 10.111.0.0/16\n\n[Peer]\nPublicKey = ${PUB(15)}\nAllowedIPs = 10.15.0.0/24\n`,
    );
    const fields = ["public-key", "private-key", "listen-port", "fwmark", "peers", "preshared-keys", "endpoints", "allowed-ips", "latest-handshakes", "transfer", "persistent-keepalive", "dump"];
    const cases: Case[] = [
      {
        setup:
          `ip link add wg0 type wireguard && ip link add wgs type wireguard && ` +
          `wg set wg0 private-key ${key(1)} listen-port 51820 fwmark 0x42 ` +
          `peer ${PUB(2)} preshared-key ${psk(2)} endpoint 192.0.2.2:51820 allowed-ips 10.0.2.0/24,fd00:2::/64 persistent-keepalive 25 ` +
          `peer ${PUB(3)} endpoint [2001:db8::3]:3 allowed-ips 10.0.3.3/32 ` +
          `peer ${PUB(4)} endpoint [fe80::4%wgs]:4 allowed-ips 0.0.0.0/0,::/0`,
        cmd: "wg",
      },
      { cmd: "wg show" },
      { cmd: "wg show all" },
      { cmd: "wg show interfaces" },
      { cmd: "wg show wg0" },
      { cmd: "WG_HIDE_KEYS=never wg show wg0" },
      { cmd: "WG_COLOR_MODE=always wg show all" },
      ...fields.map((f) => ({ cmd: `wg show wg0 ${f}` })),
      { cmd: "wg show all dump" },
      { cmd: "wg show all endpoints" },
      { cmd: "wg showconf wg0" },
      // set, one option at a time
      { cmd: "wg set wg0 listen-port 0" },
      { cmd: "wg set wg0 listen-port 51821 fwmark 0" },
      { cmd: "wg set wg0 fwmark 0x1234" },
      { cmd: "wg set wg0 fwmark off" },
      { cmd: `wg set wg0 private-key ${key(5)}` },
      // (the guest's devtmpfs has no /dev/stdin link)
      { cmd: "wg set wg0 private-key /proc/self/fd/0", stdin: PRIV(6) + "\n" },
      { cmd: `wg set wg0 peer ${PUB(2)} preshared-key /dev/null` },
      { cmd: `wg set wg0 peer ${PUB(3)} preshared-key ${psk(3)} endpoint 192.0.2.33:65535 persistent-keepalive 0` },
      { cmd: `wg set wg0 peer ${PUB(3)} endpoint [fe80::33%wgs]:33 persistent-keepalive 65535` },
      { cmd: `wg set wg0 peer ${PUB(3)} endpoint [fe80::34%1]:34` },
      { cmd: `wg set wg0 peer ${PUB(3)} endpoint localhost:35 persistent-keepalive off` },
      { cmd: `wg set wg0 peer ${PUB(3)} allowed-ips 10.3.0.0/16,10.3.1.2/8,fd03::1/48` },
      { cmd: `wg set wg0 peer ${PUB(3)} allowed-ips ''` },
      { cmd: `wg set wg0 peer ${PUB(5)} allowed-ips 10.0.5.0/24 peer ${PUB(6)} endpoint 1.2.3.4:5 peer ${PUB(2)} remove` },
      { cmd: `wg set wg0 peer ${PUB(7)} allowed-ips 0.0.0.0/0` }, // moves 0.0.0.0/0 from peer 4
      { cmd: `wg set wg0 peer ${PUB(4)} remove peer ${PUB(4)} allowed-ips 10.9.9.9/32` },
      { cmd: `wg set wg0 peer ${PUB(9)} remove` }, // absent: nothing
      { cmd: `wg set wg0 peer ${PUB(6)} allowed-ips 10.6.0.0/24 peer ${PUB(6)} allowed-ips 10.6.1.0/24` },
      { cmd: `wg set wg0 peer ${PUB(6)} allowed-ips 10.6.2.0/24,10.6.2.0/24,::/0` },
      { cmd: `wg set wg0 peer ${PUB(6)} allowed-ips 10.6.2.0/24,10.6.2.0/24,::/0` },
      { cmd: `wg set wg0 peer ${PUB(6)} endpoint [::ffff:192.0.2.6]:6` },
      { cmd: `wg set wg0 peer ${keyToBase64(publicKey(priv(6)))} allowed-ips 10.66.0.0/16` }, // its own key: ignored
      { cmd: "wg set wg0 private-key /dev/null" },
      { cmd: "wg show wg0" },
      { cmd: "wg showconf wg0" },
      // whole files
      { cmd: `wg setconf wg0 ${conf1}` },
      { cmd: "wg showconf wg0" },
      { cmd: `wg addconf wg0 ${conf2}` },
      { cmd: `wg syncconf wg0 ${conf3}` },
      { cmd: "wg setconf wg0 /proc/self/fd/0", stdin: readFileSync(conf1, "latin1") },
      { cmd: `wg syncconf wg0 ${conf1}` }, // nothing to change
      { cmd: "wg setconf wg0 /dev/null" },
      { cmd: "wg show wg0" },
      { cmd: `wg addconf wg0 ${conf2}` },
      { cmd: "wg show all" },
    ];
    const r = await runCases("a", cases);
    expect(r.mismatches).toEqual([]);
    // the cases really exercised the kernel (not two identical failures)
    expect(r.real[4]!.out).toContain("interface: wg0");
    expect(r.real[4]!.out).toContain("[fe80::4%wgs]:4");
    expect(r.real.filter((o) => o.code !== "0").length).toBe(0);
  }, 900_000);

  test("errors: missing device, non-WireGuard link, bad arguments, not permitted, address in use", async () => {
    const nobody = "setpriv --reuid=65534 --regid=65534 --clear-groups";
    // A first SET message of 4092 bytes: the kernel's error answer echoes it and is larger than
    // wg's 4096-byte receive buffer, so wg reports ENOSPC instead of EADDRINUSE.
    const ips = Array.from({ length: 200 }, (_, i) => `10.200.${i >> 8}.${i & 255}/32`).join(", ");
    const big = F("enospc.conf", `[Interface]\nPrivateKey = ${PRIV(20)}\nListenPort = 40000\n\n[Peer]\nPublicKey = ${PUB(21)}\nAllowedIPs = ${ips}\n`);
    const small = F("eaddr.conf", `[Interface]\nPrivateKey = ${PRIV(20)}\nListenPort = 40000\n\n[Peer]\nPublicKey = ${PUB(21)}\nAllowedIPs = 10.201.0.1/32\n`);
    const cases: Case[] = [
      { setup: "ip link add wge0 type wireguard", cmd: "wg show nonexist" },
      { cmd: "wg show lo" },
      { cmd: "wg show lo dump" },
      { cmd: "wg show nonexist dump" },
      { cmd: "wg showconf nonexist" },
      { cmd: "wg showconf lo" },
      { cmd: "wg set nonexist listen-port 1" },
      { cmd: "wg set lo listen-port 1" },
      { cmd: `wg setconf nonexist ${small}` },
      { cmd: `wg addconf lo ${small}` },
      { cmd: `wg syncconf nonexist ${small}` },
      { cmd: "wg show aaaaaaaaaaaaaaaaaaaa" },
      { cmd: "wg showconf aaaaaaaaaaaaaaaaaaaa" },
      { cmd: "wg set aaaaaaaaaaaaaaaaaaaa listen-port 1" },
      { cmd: "wg set wge0 listen-port abc" },
      { cmd: "wg set wge0 peer notakey" },
      { cmd: `wg set wge0 peer ${PUB(2)} allowed-ips 10.0.0.0/33` },
      { cmd: "wg set wge0 fwmark" },
      { cmd: "wg show wge0 bogus" },
      { cmd: "wg setconf wge0 /nonexistent" },
      { cmd: `${nobody} wg show wge0` },
      { cmd: `${nobody} wg show` },
      { cmd: `${nobody} wg set wge0 listen-port 1` },
      { cmd: `${nobody} wg showconf wge0` },
      {
        setup: "ip link add wge1 type wireguard && wg set wge1 listen-port 40000 && ip link set wge1 up && wg set wge0 listen-port 40001 && ip link set wge0 up",
        cmd: "wg set wge0 listen-port 40000",
      },
      { cmd: `wg setconf wge0 ${small}` },
      { cmd: `wg setconf wge0 ${big}` },
      { cmd: "wg show wge0 dump" },
    ];
    const r = await runCases("e", cases);
    expect(r.mismatches).toEqual([]);
    const err = (i: number) => r.real[i]!.err;
    expect(err(0)).toBe("Unable to access interface: No such device\n");
    expect(err(1)).toBe("Unable to access interface: Operation not supported\n");
    expect(err(20)).toBe("Unable to access interface: Operation not permitted\n");
    expect(err(24)).toBe("Unable to modify interface: Address already in use\n");
    expect(err(26)).toBe("Unable to modify interface: No space left on device\n");
  }, 900_000);

  test("kernel links first, then UAPI sockets; a socket shadows a kernel link of its name", async () => {
    // The guest kernel has no TUN, so the userspace side is test/wg-harness.ts's fake UAPI daemon,
    // in the guest's root namespace: its socket is seen from both namespaces.
    const fake = F(
      "fake.ts",
      `import { FakeDaemon } from ${JSON.stringify(join(ROOT, "test", "wg-harness.ts"))};\n` +
        `const k = (b: string) => new Uint8Array(Buffer.from(b, "base64"));\n` +
        `await FakeDaemon.serving({ priv: k(${JSON.stringify(PRIV(30))}), port: 43000, peers: [{ pub: k(${JSON.stringify(PUB(31))}), endpoint: "192.0.2.31:31", allowed: ["10.31.0.0/24"] }] }, "wgu").start();\n` +
        `console.log("serving");\n`,
    );
    const log = F("fake.log", "");
    await vm.ok(`${process.execPath} ${fake} > ${log} 2>&1 & echo $! > ${F("fake.pid", "")}; i=0; until [ -S /var/run/wireguard/wgu.sock ]; do i=$((i+1)); [ $i -lt 600 ] || exit 1; sleep 0.2; done`, { timeoutMs: 300_000 });
    try {
      const cases: Case[] = [
        { setup: "ip link add wgu type wireguard && ip link add wgk type wireguard", cmd: "wg show interfaces" },
        { cmd: "wg show all dump" },
        { cmd: "wg show wgu" },
        { cmd: `wg set wgu peer ${PUB(32)} allowed-ips 10.32.0.0/24` },
        { cmd: "wg show wgu allowed-ips" },
        { cmd: "wg show wgk" },
        { cmd: "wg showconf wgu" },
      ];
      const r = await runCases("u", cases);
      expect(r.mismatches).toEqual([]);
      expect(r.real[0]!.out.trim().split(" ").filter((n) => !["wg0", "wgs", "wge0", "wge1"].includes(n))).toEqual(["wgu", "wgk", "wgu"]);
      expect(r.real[4]!.out).toContain("10.31.0.0/24");
    } finally {
      await vm.sh(`kill $(cat ${join(vm.shared, "fake.pid")})`);
    }
  }, 600_000);

  test("10,000 peers / 100,000 allowed IPs: setconf, dump, syncconf, addconf", async () => {
    const all = bigConf();
    // syncconf: 200 peers fewer, 100 with other allowed IPs; addconf: 100 more. (Few removals:
    // removing peers is slow in the emulated kernel.)
    const sync = F("big-sync.conf", big(0, 9_700) + big(9_700, 9_800, 1_000_000).replace(/^\[Interface\][^[]*/, ""));
    const add = F("big-add.conf", big(20_000, 20_100).replace(/^\[Interface\][^[]*/, ""));
    const cases: Case[] = [
      { setup: "for l in wg0 wgs wge0 wge1 wgu wgk; do ip link del $l 2>/dev/null || true; done; ip link add wgbig type wireguard", cmd: `wg setconf wgbig ${all}` },
      { cmd: "wg show wgbig dump" },
      { cmd: `wg syncconf wgbig ${sync}` },
      { cmd: `wg addconf wgbig ${add}` },
    ];
    const r = await runCases("b", cases, 900_000);
    expect(r.mismatches).toEqual([]);
    expect(r.real[1]!.out.split("\n").length).toBe(10_002); // interface line, 10,000 peers, final newline
    const ips = r.real[1]!.out.split("\n").slice(1, -1).reduce((n, l) => n + l.split("\t")[3]!.split(",").length, 0);
    expect(ips).toBe(100_000);
    // the state after syncconf and addconf: 9,800 + 100 peers
    expect(r.real[3]!.state.trim().split("\n").length).toBe(1 + 9_900);
  }, 1_200_000);
});

describe("our extensions on kernel links", () => {
  test("--json: every field of the real wg's dump", async () => {
    const setup = `ip link add wgj type wireguard && wg set wgj private-key ${key(50)} listen-port 45000 fwmark 7 peer ${PUB(51)} preshared-key ${psk(51)} endpoint [fe80::51%lo]:51 allowed-ips 10.51.0.0/24,fd51::/64 persistent-keepalive 5 peer ${PUB(52)}`;
    const r = await vm.ok(
      `ip netns exec o sh -ec ${q(setup)} && ip netns exec o /usr/bin/wg show wgj dump && echo --- && ip netns exec o ${exe} show wgj --json && echo --- && ip netns exec o ${exe} show all --json`,
      { timeoutMs: 300_000 },
    );
    const [dump, one, all] = r.split("---\n");
    const [dev, ...peers] = dump!.trim().split("\n").map((l) => l.split("\t"));
    const j = JSON.parse(one!);
    expect(j).toMatchObject({ name: "wgj", private_key: dev![0], public_key: dev![1], listen_port: Number(dev![2]), fwmark: 7 });
    expect(j.peers.map((p: Record<string, unknown>) => [p.public_key, p.preshared_key ?? "(none)", p.endpoint ?? "(none)", (p.allowed_ips as string[]).join(",") || "(none)", String(p.latest_handshake), String(p.transfer_rx), String(p.transfer_tx), p.persistent_keepalive === null ? "off" : String(p.persistent_keepalive)])).toEqual(peers);
    expect(JSON.parse(all!).map((d: { name: string }) => d.name)).toContain("wgj");
  }, 400_000);

  test("wg events follows a kernel link by reading it every second", async () => {
    const ns = (n: string, s: string) => `ip netns exec ${n} sh -ec ${q(s)}`;
    const out = join(vm.shared, "events.out");
    const r = await vm.sh(
      [
        "set -e",
        "ip netns add ea; ip netns add eb; ip -n ea link set lo up; ip -n eb link set lo up",
        // No veth in the guest kernel: both devices are created in ea (their UDP sockets stay
        // there, talking over 127.0.0.1) and wgeb is moved to eb, so pings cross the tunnel.
        ns("ea", `ip link add wgea type wireguard && ip link add wgeb type wireguard && wg set wgea private-key ${key(60)} listen-port 46000 peer ${PUB(61)} endpoint 127.0.0.1:46001 allowed-ips 10.98.0.2/32 && wg set wgeb private-key ${key(61)} listen-port 46001 peer ${PUB(60)} allowed-ips 10.98.0.1/32 && ip link set wgeb netns eb && ip addr add 10.98.0.1/24 dev wgea && ip link set wgea up`),
        ns("eb", "ip addr add 10.98.0.2/24 dev wgeb && ip link set wgeb up"),
        `ip netns exec ea ${exe} events wgea > ${out} 2>&1 &`,
        "pid=$!",
        "sleep 12", // our start-up under emulation, then the first reading
        `ip netns exec ea wg set wgea peer ${PUB(62)} allowed-ips 10.98.0.3/32`,
        "sleep 3",
        `ip netns exec ea wg set wgea peer ${PUB(62)} endpoint 10.99.0.3:3`,
        "sleep 3",
        "ip netns exec ea ping -c 1 -W 10 10.98.0.2 > /dev/null",
        "sleep 3",
        `ip netns exec ea wg set wgea peer ${PUB(62)} remove`,
        "sleep 3",
        "ip -n ea link del wgea",
        "i=0; while kill -0 $pid 2>/dev/null && [ $i -lt 100 ]; do sleep 0.2; i=$((i+1)); done",
        "set +e; wait $pid; echo exit=$?",
        "ip netns del ea; ip netns del eb",
      ].join("\n"),
      { timeoutMs: 300_000 },
    );
    expect(r.stdout).toBe("exit=0\n");
    const lines = readFileSync(out, "utf8").trim().split("\n").map((l) => JSON.parse(l));
    expect(lines.map((e) => e.type)).toEqual(["peer-added", "endpoint", "handshake", "peer-removed"]);
    expect(lines[0]).toMatchObject({ interface: "wgea", public_key: PUB(62), online: false });
    expect(lines[1]).toMatchObject({ public_key: PUB(62), endpoint: "10.99.0.3:3" });
    expect(lines[2]).toMatchObject({ public_key: PUB(61), endpoint: "127.0.0.1:46001", online: true });
    expect(Date.parse(lines[2].last_handshake)).toBeGreaterThan(Date.now() - 120_000);
    expect(lines[3]).toMatchObject({ public_key: PUB(62), online: false });
  }, 400_000);
});

// The benchmark adds minutes under emulation, so the suite runs it only when asked:
// KERNEL_SCALE_RUNS=3 bun test test/kernel-wg.test.ts (results in bench/RESULTS.md).
const scaleRuns = Number(process.env.KERNEL_SCALE_RUNS ?? 0);
describe.skipIf(!scaleRuns)("scale (KERNEL_SCALE_RUNS=N)", () => {
  test("bench/kernel-scale.ts: setconf and dump of 10,000 peers, ours against the real wg", async () => {
    const runs = scaleRuns;
    const conf = bigConf();
    const script = kernelScaleScript({ ours: exe, conf, runs, bun: process.execPath, self: join(ROOT, "bench", "kernel-scale.ts") });
    const r = await vm.sh(script, { timeoutMs: 1_500_000 });
    if (r.code !== 0) throw new Error(`kernel-scale failed (${r.code}): ${r.stderr}`);
    const res = parseKernelScale(r.stdout, runs);
    console.log(`kernel-scale (${vm.accel}, ${vm.kernelRelease}):\n${kernelScaleTable(res)}\n${r.stdout}`);
    expect(res.setconf.ours.length).toBe(runs);
    expect(res.dumpLines.ours).toBe(res.dumpLines.real);
    expect(res.inproc.set.length).toBe(runs);
  }, 1_600_000);
});
