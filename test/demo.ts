// Demo: a WireGuard tunnel between two network namespaces, both ends run by our daemon and
// configured by our `wg`. Prints what it does, pings through the tunnel, shows `wg show`, and
// removes everything it created (namespaces, daemons) even on failure. Needs root.
import { $ } from "bun";
import { existsSync } from "node:fs";
import { join } from "node:path";

const root = join(import.meta.dir, "..");
const exe = existsSync(join(root, "dist/wg")) ? [join(root, "dist/wg")] : [process.execPath, join(root, "cmd/main.ts")];
const tag = `wgd${process.pid % 100000}`;
// /var/run/wireguard is shared by all namespaces, so each end needs its own interface name.
const ifs = [`${tag}i0`, `${tag}i1`];
const ns = [`${tag}a`, `${tag}b`];
const pids: number[] = [];

async function sh(cmd: string[], input?: string): Promise<string> {
  const p = Bun.spawn(cmd, { stdin: input === undefined ? "ignore" : new TextEncoder().encode(input), stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  if (code !== 0) throw new Error(`${cmd.join(" ")} failed (${code}): ${err || out}`);
  return out;
}
const inNs = (n: string, ...cmd: string[]) => ["ip", "netns", "exec", n, ...cmd];

async function cleanup() {
  for (const pid of pids) try { process.kill(pid, "SIGTERM"); } catch {}
  await Bun.sleep(200);
  for (const n of ns) await $`ip netns del ${n}`.quiet().nothrow();
}

async function demo() {
  console.log(`# two namespaces ${ns[0]} and ${ns[1]} joined by a veth pair (192.168.241.1 <-> .2)`);
  for (const n of ns) await sh(["ip", "netns", "add", n]);
  await sh(["ip", "link", "add", `${tag}v0`, "netns", ns[0]!, "type", "veth", "peer", "name", `${tag}v1`, "netns", ns[1]!]);
  for (const [i, n] of ns.entries()) {
    await sh(inNs(n, "ip", "addr", "add", `192.168.241.${i + 1}/24`, "dev", `${tag}v${i}`));
    await sh(inNs(n, "ip", "link", "set", `${tag}v${i}`, "up"));
    await sh(inNs(n, "ip", "link", "set", "lo", "up"));
  }
  const keys = [];
  for (let i = 0; i < 2; i++) {
    const priv = (await sh([...exe, "wg", "genkey"])).trim();
    const pub = (await sh([...exe, "wg", "pubkey"], priv + "\n")).trim();
    keys.push({ priv, pub });
  }
  for (const [i, n] of ns.entries()) {
    const wg = ifs[i]!;
    console.log(`# ${n}: start our daemon for ${wg}, configure it with our wg`);
    const d = Bun.spawn(inNs(n, ...exe, "daemon", "-f", wg), { stdout: "inherit", stderr: "inherit" });
    pids.push(d.pid);
    for (let t = 0; t < 100 && !existsSync(`/var/run/wireguard/${wg}.sock`); t++) await Bun.sleep(50);
    const other = keys[1 - i]!;
    await sh(inNs(n, ...exe, "wg", "set", wg, "private-key", "/dev/stdin", "listen-port", `${51820 + i}`,
      "peer", other.pub, "allowed-ips", `10.66.0.${2 - i}/32`, "endpoint", `192.168.241.${2 - i}:${51821 - i}`), keys[i]!.priv + "\n");
    await sh(inNs(n, "ip", "addr", "add", `10.66.0.${i + 1}/24`, "dev", wg));
    await sh(inNs(n, "ip", "link", "set", wg, "up"));
  }
  console.log(`# ping 10.66.0.2 from ${ns[0]} through the tunnel`);
  process.stdout.write(await sh(inNs(ns[0]!, "ping", "-c", "3", "-i", "0.2", "10.66.0.2")));
  console.log(`# wg show ${ifs[0]} (in ${ns[0]})`);
  process.stdout.write(await sh(inNs(ns[0]!, ...exe, "wg", "show", ifs[0]!)));
}

try {
  await demo();
  console.log("# demo ok");
} catch (e) {
  console.error(`demo failed: ${(e as Error).message}`);
  process.exitCode = 1;
} finally {
  await cleanup();
}
