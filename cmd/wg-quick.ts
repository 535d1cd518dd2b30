// wg-quick(8) for Linux, behaving like the wireguard-tools v1.0.20210914 bash script: same
// command line, config handling, order of operations, and the same `[#] ...` lines on stderr,
// naming the `ip`/`wg`/`nft`/`iptables-restore` commands the script would have run. The work
// itself goes through rtnetlink, our own wg (in-process) and the kernel's WireGuard or our own
// daemon; only the firewall rules are handed to nft or iptables-restore. The steps live in
// cmd/wg-quick/, one function per function of the script.
// Three extensions leave that behaviour alone where the reference works: `reload` and `qr` (not
// in the usage text, which stays the reference's), and DNS through resolvectl where
// systemd-resolved manages DNS and no real resolvconf is installed (platform/linux/resolvconf.ts
// decides).
import { basename, dirname } from "node:path";
import { closeRtnetlink } from "../platform/linux/rtnetlink.ts";
import { fromBytes, toBytes } from "./bytes.ts";
import { compiledExecutable, selfCommand } from "./self.ts";
import { cmdDown, cmdSave, cmdStrip, cmdUp } from "./wg-quick/commands.ts";
import { Quick } from "./wg-quick/context.ts";
import { Exit, err } from "./wg-quick/exit.ts";
import { parseOptions } from "./wg-quick/options.ts";
import { cmdReload, parseReloadArgs } from "./wg-quick/reload.ts";

function usage(prog: string): void {
  err(`Usage: ${prog} [ up | down | save | strip ] [ CONFIG_FILE | INTERFACE ]

  CONFIG_FILE is a configuration file, whose filename is the interface name
  followed by \`.conf'. Otherwise, INTERFACE is an interface name, with
  configuration found at /etc/wireguard/INTERFACE.conf. It is to be readable
  by wg(8)'s \`setconf' sub-command, with the exception of the following additions
  to the [Interface] section, which are handled by ${prog}:

  - Address: may be specified one or more times and contains one or more
    IP addresses (with an optional CIDR mask) to be set for the interface.
  - DNS: an optional DNS server to use while the device is up.
  - MTU: an optional MTU for the interface; if unspecified, auto-calculated.
  - Table: an optional routing table to which routes will be added; if
    unspecified or \`auto', the default table is used. If \`off', no routes
    are added.
  - PreUp, PostUp, PreDown, PostDown: script snippets which will be executed
    by bash(1) at the corresponding phases of the link, most commonly used
    to configure DNS. The string \`%i' is expanded to INTERFACE.
  - SaveConfig: if set to \`true', the configuration is saved from the current
    state of the interface upon shutdown.

See wg-quick(8) for more info and examples.
`);
}

const COMMANDS = { up: cmdUp, down: cmdDown, save: cmdSave, strip: cmdStrip, reload: cmdReload } as const;
type Command = keyof typeof COMMANDS;

/** Re-run ourselves with the same arguments under sudo when not root, as the reference does (even for strip). */
function autoSu(prog: string, args: string[]): number | null {
  if (process.getuid?.() === 0) return null;
  const sudo = Bun.which("sudo");
  if (sudo === null) {
    err(`${prog}: must be run as root, and sudo is not installed\n`);
    return 127;
  }
  // Through sudo the name we were run by is lost; the `wg-quick` word selects the tool instead.
  const self = selfCommand("wg-quick", args);
  const p = Bun.spawnSync([sudo, "-p", `${fromBytes(prog)} must be run as root. Please enter the password for %u to continue: `, "--", ...self.cmd], {
    stdin: "inherit",
    stdout: "inherit",
    stderr: "inherit",
  });
  return p.exitCode ?? 1;
}

/** The command and its CONFIG_FILE|INTERFACE (JS text), or the status to exit with (usage, help). */
async function commandLine(prog: string, args: string[]): Promise<{ command: Command; config: string } | number> {
  if (args.length === 1 && (args[0] === "--help" || args[0] === "-h" || args[0] === "help")) {
    usage(prog);
    return 0;
  }
  if (args[0] === "reload") {
    const config = await parseReloadArgs(prog, args.slice(1));
    return typeof config === "number" ? config : { command: "reload", config };
  }
  const command = args[0];
  if (args.length !== 2 || (command !== "up" && command !== "down" && command !== "save" && command !== "strip")) {
    usage(prog);
    return 1;
  }
  return { command, config: args[1]! };
}

/**
 * `wg-quick` with argv[0] = argv0 (its basename prefixes messages) and the remaining arguments,
 * as JS text. Past the command line everything is a byte string (cmd/bytes.ts), as in the script.
 */
export async function wgQuickMain(argv0: string, args: string[]): Promise<number> {
  const prog = toBytes(basename(argv0) || "wg-quick");
  // `qr` is ours (cmd/wg-quick/qr.ts); it only reads the file, so it needs no root.
  if (args[0] === "qr") {
    try {
      return await (await import("./wg-quick/qr.ts")).wgQuickQrMain(prog, args.slice(1));
    } catch (e) {
      if (e instanceof Exit) return e.code;
      throw e;
    }
  }
  const line = await commandLine(prog, args);
  if (typeof line === "number") return line;
  const su = autoSu(prog, args);
  if (su !== null) return su;
  // bash's `$0` for a script found in PATH is the path it was found at.
  const shellName = toBytes(argv0.includes("/") ? argv0 : (Bun.which(argv0) ?? argv0));
  // The reference exports LC_ALL=C and puts its own (resolved) directory first in PATH, so hooks
  // see the `wg` installed next to it (from source there is none); platform/current-env.ts says
  // how every child then sees them.
  process.env.LC_ALL = "C";
  const exe = compiledExecutable();
  if (exe !== null) process.env.PATH = `${dirname(exe)}:${process.env.PATH ?? ""}`;
  try {
    await COMMANDS[line.command](new Quick(parseOptions(prog, toBytes(line.config)), shellName));
    return 0;
  } catch (e) {
    if (e instanceof Exit) return e.code;
    throw e;
  } finally {
    closeRtnetlink();
  }
}
