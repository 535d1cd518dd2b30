// The daemons the harness can compare. Each runs in the foreground inside a namespace and serves
// the cross-platform UAPI socket /var/run/wireguard/IFACE.sock that /usr/bin/wg talks to.
import { existsSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const ROOT = join(import.meta.dir, "..", "..");

/** The compiled executable: dist/wg, unless the harness built a private copy (--build). */
export function compiledWg(): string {
  return process.env.WGB_COMPILED_WG ?? join(ROOT, "dist", "wg");
}

let neutral: string | null = null;
/**
 * cmd/main.ts picks the tool from the name it was invoked by before looking at argv[1], so
 * `dist/wg daemon IF` runs `wg daemon` (an invalid wg subcommand). A symlink with a neutral name
 * makes the first argument choose the tool; the symlink lives in a private temp dir.
 */
function neutralName(exe: string): string {
  if (!neutral) {
    neutral = join(mkdtempSync(join(tmpdir(), "wgb-bin-")), "wgts");
    symlinkSync(exe, neutral);
  }
  return neutral;
}

/** Removes the symlink directory, if one was made. */
export function cleanupImpls(): void {
  if (neutral) rmSync(join(neutral, ".."), { recursive: true, force: true });
  neutral = null;
}

export interface Implementation {
  name: string;
  /** argv that runs the daemon for `iface` in the foreground. */
  command(iface: string): string[];
  /** null when runnable here, else why not. */
  unavailable(): string | null;
  /** Seconds to wait for the UAPI socket (interpreted start-up is slower). */
  startTimeoutMs: number;
}

function which(bin: string): string | null {
  for (const dir of (process.env.PATH ?? "/usr/bin:/bin").split(":")) {
    const p = join(dir, bin);
    if (existsSync(p)) return p;
  }
  return null;
}

export const IMPLEMENTATIONS: Record<string, Implementation> = {
  "wireguard-go": {
    name: "wireguard-go",
    command: (iface) => [which("wireguard-go") ?? "wireguard-go", "-f", iface],
    unavailable: () => (which("wireguard-go") ? null : "wireguard-go not installed"),
    startTimeoutMs: 5000,
  },
  // Debian trixie's newer build (0.0.20231211: UDP GSO/GRO, TUN offloads), fetched and unpacked
  // by bench/fetch-wireguard-go.sh on first use.
  "wireguard-go-gso": {
    name: "wireguard-go-gso",
    command: (iface) => [trixieWireguardGo() ?? "wireguard-go", "-f", iface],
    unavailable: () => (trixieWireguardGo() ? null : `bench/fetch-wireguard-go.sh failed: ${fetchTrixie().why}`),
    startTimeoutMs: 5000,
  },
  // Our daemon from source, run by the same bun that runs the harness.
  ours: {
    name: "ours",
    command: (iface) => [process.execPath, join(ROOT, "cmd", "main.ts"), "daemon", "-f", iface],
    unavailable: () => (existsSync(join(ROOT, "cmd", "daemon.ts")) ? null : "cmd/daemon.ts not present yet"),
    startTimeoutMs: 10000,
  },
  // The compiled single executable (`bun run build`, or the harness's --build copy).
  "ours-bin": {
    name: "ours-bin",
    command: (iface) => [neutralName(compiledWg()), "daemon", "-f", iface],
    unavailable: () => (existsSync(compiledWg()) ? null : "dist/wg absent (run `bun run build` or pass --build)"),
    startTimeoutMs: 5000,
  },
};

let trixie: { path: string | null; why: string } | null = null;
function fetchTrixie(): { path: string | null; why: string } {
  if (!trixie) {
    const r = Bun.spawnSync(["bash", join(ROOT, "bench", "fetch-wireguard-go.sh")], { stdout: "pipe", stderr: "pipe" });
    const path = r.stdout.toString().trim();
    trixie = r.exitCode === 0 && existsSync(path) ? { path, why: "" } : { path: null, why: r.stderr.toString().trim() || `exit ${r.exitCode}` };
  }
  return trixie;
}
const trixieWireguardGo = () => fetchTrixie().path;

export function getImplementation(name: string): Implementation {
  const impl = IMPLEMENTATIONS[name];
  if (!impl) throw new Error(`unknown implementation "${name}" (known: ${Object.keys(IMPLEMENTATIONS).join(", ")})`);
  return impl;
}
