// `+`/`-` allowed IPs (wireguard-tools 1.0.20250521's syntax, issue 17) end to end: our `wg`
// changes a tunnel between our daemon (which removes natively: `allowed_ip=-PREFIX`) and
// wireguard-go 0.0.20220316 (which answers -22 to that, so our wg sends the peer's resulting list
// as a replacement), through `wg set` and config files (addconf, syncconf). Each change is read
// back with the real `/usr/bin/wg show`, each daemon's log shows which way it was applied, and
// pings show that traffic to and from a removed prefix is dropped while the rest flows.
// Needs root, wireguard-go and wireguard-tools.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Lab, waitFor, type Netns, type Proc } from "./netns.ts";
import { BUN, ROOT, genkey, ifname, keyFile, startDaemon, type Key } from "./lib-wgpair.ts";

const lab = new Lab("incr");
const dir = mkdtempSync(join(tmpdir(), "wgt-incr-"));
afterAll(async () => {
  await lab.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

interface End {
  ns: Netns;
  iface: string;
  key: Key;
  proc: Proc;
}
let A: End; // our daemon
let B: End; // wireguard-go
const N = 10 + (process.pid % 200); // 10.N.x.y: outer .0, tunnel .1, B's extra .2, A's extra .5

/** Our wg, inside the end's namespace. */
function ours(end: End, ...args: string[]) {
  return end.ns.run([BUN, join(ROOT, "cmd/main.ts"), "wg", ...args]);
}
const allowed = (end: End) => end.ns.sh(`/usr/bin/wg show ${end.iface} allowed-ips`).trim().split("\t")[1];
const ping = (end: End, to: string, from?: string) => end.ns.run(["ping", "-c", "1", "-W", "2", ...(from ? ["-I", from] : []), to]).code === 0;
/** How often the daemon has logged `text` so far. */
const count = (end: End, text: string) => end.proc.output().split(text).length - 1;
/** Waits (the output is read while the event loop runs) until the daemon has logged `text` `n` times. */
const logged = (end: End, text: string, n: number) => waitFor(() => count(end, text) >= n, 3000);

beforeAll(async () => {
  const [nsA, nsB] = [lab.ns("a"), lab.ns("b")];
  lab.veth(nsA, nsB, { a: [`10.${N}.0.1/24`], b: [`10.${N}.0.2/24`] });
  const mk = async (ns: Netns, tag: string, kind: "ours" | "go"): Promise<End> => {
    const iface = ifname(tag);
    return { ns, iface, key: genkey(), proc: await startDaemon(ns, iface, { kind }) };
  };
  A = await mk(nsA, "ia", "ours");
  B = await mk(nsB, "ib", "go");
  A.ns.sh(
    `wg set ${A.iface} private-key ${keyFile(A.key.priv)} listen-port 47101 peer ${B.key.pub} endpoint 10.${N}.0.2:47102 allowed-ips 10.${N}.1.2/32,10.${N}.2.0/24 && ` +
      `ip addr add 10.${N}.1.1/24 dev ${A.iface} && ip addr add 10.${N}.5.1/24 dev ${A.iface} && ip link set ${A.iface} up && ip route add 10.${N}.2.0/24 dev ${A.iface}`,
  );
  B.ns.sh(
    `wg set ${B.iface} private-key ${keyFile(B.key.priv)} listen-port 47102 peer ${A.key.pub} endpoint 10.${N}.0.1:47101 allowed-ips 10.${N}.1.1/32,10.${N}.5.0/24 && ` +
      `ip addr add 10.${N}.1.2/24 dev ${B.iface} && ip addr add 10.${N}.2.1/24 dev ${B.iface} && ip link set ${B.iface} up && ip route add 10.${N}.5.0/24 dev ${B.iface}`,
  );
  // Both prefixes of each side carry traffic both ways before anything is removed.
  const up = () => ping(A, `10.${N}.1.2`) && ping(A, `10.${N}.2.1`) && ping(B, `10.${N}.1.1`, `10.${N}.2.1`) && ping(B, `10.${N}.5.1`) && ping(A, `10.${N}.1.2`, `10.${N}.5.1`);
  if (!up() && !up()) throw new Error(`tunnel did not come up:\n${A.proc.output()}\n${B.proc.output()}`);
}, 60_000);

test("our daemon: wg set -/+ removes and adds in place (allowed_ip=-), and the removed prefix carries no traffic", async () => {
  const r = ours(A, "set", A.iface, "peer", B.key.pub, "allowed-ips", `-10.${N}.2.0/24, +10.${N}.3.0/24`);
  expect([r.code, r.stdout, r.stderr]).toEqual([0, "", ""]);
  expect(allowed(A)).toBe(`10.${N}.1.2/32 10.${N}.3.0/24`);
  // Natively: the probe's removal and the change's, and still only the one replacement of the set-up.
  expect(await logged(A, "UAPI: Removing allowedip\n", 2)).toBe(true);
  expect(count(A, "UAPI: Removing all allowedips")).toBe(1);
  // To B's 10.N.2.1: A has no peer for it any more. From it: A drops what B sends with that source.
  expect(ping(A, `10.${N}.2.1`)).toBe(false);
  expect(ping(B, `10.${N}.1.1`, `10.${N}.2.1`)).toBe(false);
  expect(ping(A, `10.${N}.1.2`)).toBe(true);
  // Removing what the peer does not hold changes nothing; a bad entry changes nothing either.
  expect(ours(A, "set", A.iface, "peer", B.key.pub, "allowed-ips", `-10.${N}.9.0/24,-10.${N}.3.0/25`).code).toBe(0);
  expect(ours(A, "set", A.iface, "peer", B.key.pub, "allowed-ips", `-10.${N}.3.0/24,-x`)).toMatchObject({ code: 1, stderr: "Unable to parse IP address: `x'\n" });
  expect(allowed(A)).toBe(`10.${N}.1.2/32 10.${N}.3.0/24`);
}, 30_000);

test("wireguard-go: the probe is refused, the peer's list is replaced with the result, and the removed prefix carries no traffic", async () => {
  const r = ours(B, "set", B.iface, "peer", A.key.pub, "allowed-ips", `-10.${N}.5.0/24`);
  expect([r.code, r.stdout, r.stderr]).toEqual([0, "", ""]);
  expect(allowed(B)).toBe(`10.${N}.1.1/32`);
  // The probe, refused with nothing applied; then the replacement (after the set-up's).
  expect(await logged(B, "failed to set allowed ip", 1)).toBe(true);
  expect(await logged(B, "UAPI: Removing all allowedips", 2)).toBe(true);
  expect(ping(B, `10.${N}.5.1`)).toBe(false);
  expect(ping(A, `10.${N}.1.2`, `10.${N}.5.1`)).toBe(false);
  expect(ping(B, `10.${N}.1.1`)).toBe(true);
  // A mixed list: applied in order against the list as read, the endpoint with it.
  expect(ours(B, "set", B.iface, "peer", A.key.pub, "endpoint", `10.${N}.0.1:47101`, "allowed-ips", `+10.${N}.7.0/24,10.${N}.8.0/24,-10.${N}.1.1/32,+10.${N}.1.1`).code).toBe(0);
  expect(allowed(B)).toBe(`10.${N}.7.0/24 10.${N}.8.0/24 10.${N}.1.1/32`);
  expect(ping(B, `10.${N}.1.1`)).toBe(true);
}, 30_000);

test("config files: addconf and syncconf apply +/- to both daemons, unsigned lines still replace", () => {
  const conf = (name: string, text: string) => {
    const p = join(dir, name);
    writeFileSync(p, text, { mode: 0o600 });
    return p;
  };
  // A gets 10.N.2.0/24 back and loses 10.N.3.0/24; B gets 10.N.5.0/24 back and loses 10.N.7.0/24.
  expect(ours(A, "addconf", A.iface, conf("a.conf", `[Peer]\nPublicKey = ${B.key.pub}\nAllowedIPs = +10.${N}.2.0/24, -10.${N}.3.0/24\n`)).code).toBe(0);
  expect(allowed(A)).toBe(`10.${N}.1.2/32 10.${N}.2.0/24`);
  const sync = conf("b.conf", `[Interface]\nPrivateKey = ${B.key.priv}\nListenPort = 47102\n[Peer]\nPublicKey = ${A.key.pub}\nEndpoint = 10.${N}.0.1:47101\nAllowedIPs = -10.${N}.7.0/24\nAllowedIPs = +10.${N}.5.0/24\n`);
  expect(ours(B, "syncconf", B.iface, sync).code).toBe(0);
  expect(allowed(B)).toBe(`10.${N}.8.0/24 10.${N}.1.1/32 10.${N}.5.0/24`);
  expect(ping(A, `10.${N}.2.1`)).toBe(true);
  expect(ping(B, `10.${N}.5.1`)).toBe(true);
  // Without signs a file replaces the list, as 1.0.20210914 does.
  expect(ours(B, "addconf", B.iface, conf("b2.conf", `[Peer]\nPublicKey = ${A.key.pub}\nAllowedIPs = 10.${N}.1.1/32, 10.${N}.5.0/24\n`)).code).toBe(0);
  expect(allowed(B)).toBe(`10.${N}.1.1/32 10.${N}.5.0/24`);
}, 30_000);
