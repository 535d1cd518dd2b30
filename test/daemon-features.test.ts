// Daemon behaviour beyond the wire protocol, in private namespaces (test/netns.ts): port bound at
// start like wireguard-go, the events stream, the UDP/TUN namespace split, endpoint re-resolution.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Lab, type Netns, type Proc, waitFor } from "./netns.ts";

const ROOT = join(import.meta.dir, "..");
const BUN = process.execPath;
const SOCK_DIR = "/var/run/wireguard";
let lab: Lab;
let dir: string;
let ifaceCounter = 0;

beforeAll(() => {
  lab = new Lab("dfeat");
  dir = mkdtempSync(join(tmpdir(), "wgt-dfeat-"));
});
afterAll(async () => {
  await lab.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

function ifname(): string {
  return `wf${process.pid % 100000}${String.fromCharCode(97 + ifaceCounter++)}`;
}

function genkey(): { priv: string; pub: string } {
  const priv = Bun.spawnSync(["wg", "genkey"]).stdout.toString().trim();
  const pub = Bun.spawnSync(["wg", "pubkey"], { stdin: Buffer.from(priv + "\n") }).stdout.toString().trim();
  return { priv, pub };
}

function keyFile(content: string): string {
  const p = join(dir, `k${Math.random().toString(36).slice(2)}`);
  writeFileSync(p, content + "\n", { mode: 0o600 });
  return p;
}

async function startDaemon(ns: Netns, kind: "ours" | "go", iface: string, extra: string[] = [], env: Record<string, string> = {}): Promise<Proc> {
  const cmd = kind === "ours" ? [BUN, join(ROOT, "cmd/main.ts"), "daemon", "-f", ...extra, iface] : ["wireguard-go", "-f", iface];
  const p = ns.spawn(cmd, { LOG_LEVEL: "debug", ...env });
  const ok = await waitFor(() => existsSync(`${SOCK_DIR}/${iface}.sock`) && ns.run(["ip", "link", "show", iface]).code === 0, 10000);
  if (!ok) throw new Error(`${kind} daemon for ${iface} did not come up:\n${p.output()}`);
  return p;
}

const udpPorts = (ns: Netns) => ns.sh("ss -Huan").trim();

describe("startup and link state (wireguard-go parity)", () => {
  test("the UDP port is bound right after start with the link down, and link down/up keeps it", async () => {
    const ns = lab.ns("s1");
    for (const kind of ["go", "ours"] as const) {
      const iface = ifname();
      const p = await startDaemon(ns, kind, iface);
      try {
        expect(ns.sh(`ip -o link show ${iface}`)).not.toContain(",UP");
        const port = ns.sh(`wg show ${iface} listen-port`).trim();
        expect(Number(port)).toBeGreaterThan(0);
        expect(udpPorts(ns)).toContain(`:${port} `);
        ns.sh(`ip link set ${iface} up`);
        await Bun.sleep(300);
        expect(ns.sh(`wg show ${iface} listen-port`).trim()).toBe(port);
        ns.sh(`ip link set ${iface} down`);
        await Bun.sleep(300);
        expect(ns.sh(`wg show ${iface} listen-port`).trim()).toBe(port);
        expect(udpPorts(ns)).toContain(`:${port} `);
        // a new port while the link is down is bound at once, as go does
        ns.sh(`wg set ${iface} listen-port 4${ifaceCounter}77`);
        expect(udpPorts(ns)).toContain(`:4${ifaceCounter}77 `);
      } finally {
        ns.run(["ip", "link", "del", iface]);
        await p.kill();
      }
    }
  }, 30_000);
});
