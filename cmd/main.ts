#!/usr/bin/env bun
// Single entry point of the executable. It dispatches on the name it was called by
// (`wg`, `wg-quick`) and otherwise on its first argument, so symlinks are optional.
import { basename } from "node:path";

const TOOLS = ["wg", "wg-quick", "daemon", "completions"] as const;
type Tool = (typeof TOOLS)[number];

/** The name the user typed to run us: the symlink name for the compiled file, else the script. */
export function invokedAs(): string {
  const a1 = process.argv[1] ?? "";
  // Compiled executables report a virtual path ("/$bunfs/root/...") in argv[1]; argv0 keeps the
  // name used on the command line (a symlink name like "wg" survives there).
  if (a1.startsWith("/$bunfs/") || a1 === "") return process.argv0 || "wg";
  return a1;
}

async function run(tool: Tool, argv0: string, args: string[]): Promise<number> {
  switch (tool) {
    case "wg":
      return (await import("./wg.ts")).wgMain(argv0, args);
    case "wg-quick":
      return (await import("./wg-quick.ts")).wgQuickMain(argv0, args);
    case "daemon":
      return (await import("./daemon.ts")).daemonMain(args);
    case "completions":
      return (await import("./completions.ts")).completionsMain(args);
  }
}

export async function main(): Promise<number> {
  const argv0 = invokedAs();
  const name = basename(argv0);
  const args = process.argv.slice(2);
  const first = args[0];
  // A tool word first wins, so `dist/wg daemon wg0` and `dist/wg wg-quick up x` work through the
  // `wg` name too; none of these words is a valid first argument of the real wg or wg-quick.
  if (first && (TOOLS as readonly string[]).includes(first)) return run(first as Tool, first, args.slice(1));
  if (name === "wg" || name === "wg-quick") return run(name, argv0, args);
  process.stderr.write(
    `Usage: ${name} <wg|wg-quick|daemon> [arguments...]\n` +
      `  wg ...        configure and show WireGuard interfaces (wg(8))\n` +
      `  wg-quick ...  bring interfaces up and down (wg-quick(8))\n` +
      `  daemon ...    run the userspace tunnel for an interface: daemon [-f|--foreground] INTERFACE\n` +
      `  completions <bash|zsh|fish> [wg|wg-quick]  print a shell completion script\n`,
  );
  return 1;
}

if (import.meta.main) {
  main().then(
    (code) => process.exit(code),
    (err) => {
      process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(1);
    },
  );
}
