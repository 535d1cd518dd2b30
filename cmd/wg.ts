// `wg`: argument handling and printing, byte-compatible with wireguard-tools v1.0.20210914.
// All text is handled as byte strings (one char per byte) so names and file contents print
// exactly as the C tool prints them.
import { closeSync, fstatSync, openSync, readSync, writeSync } from "node:fs";
import { clampPrivateKey, publicKey } from "../core/crypto.ts";
import { WgExit, isSpace, keyFromKeyFile, parseConfigFile, parseSetArgs, syncConfig, type ParseEnv } from "../core/tools/config.ts";
import type { WgDevice } from "../core/tools/containers.ts";
import { errnoFromCode, strerror } from "../core/errno.ts";
import { fieldOfDevice, jsonDevice, prettyDevice, showconfDevice } from "../core/tools/show.ts";
import { keyFromBase64, keyToBase64 } from "../core/encoding.ts";
import { resolveEndpoint, resolvePort } from "../platform/linux/resolve.ts";
import { dieOfBrokenPipe, isatty } from "../platform/linux/stdio.ts";
import { fromBytes, toBytes } from "./bytes.ts";

const VERSION_LINE = "wireguard-tools v1.0.20210914 - https://git.zx2c4.com/wireguard-tools/\n";

const SUBCOMMANDS = ["show", "showconf", "set", "setconf", "addconf", "syncconf", "genkey", "genpsk", "pubkey"];

// Loaded on first use: it brings node:net, which `wg genkey` and friends do not need.
type Ipc = typeof import("../platform/ipc.ts");
const ipc = () => import("../platform/ipc.ts");
const getDevice: Ipc["getDevice"] = async (...a) => (await ipc()).getDevice(...a);
const listInterfaces: Ipc["listInterfaces"] = async () => (await ipc()).listInterfaces();
const setDevice: Ipc["setDevice"] = async (...a) => (await ipc()).setDevice(...a);

function usage(prog: string): string {
  return (
    `Usage: ${prog} <cmd> [<args>]\n\n` +
    "Available subcommands:\n" +
    "  show: Shows the current configuration and device information\n" +
    "  showconf: Shows the current configuration of a given WireGuard interface, for use with `setconf'\n" +
    "  set: Change the current configuration, add peers, remove peers, or change peers\n" +
    "  setconf: Applies a configuration file to a WireGuard interface\n" +
    "  addconf: Appends a configuration file to a WireGuard interface\n" +
    "  syncconf: Synchronizes a configuration file to a WireGuard interface\n" +
    "  genkey: Generates a new private key and writes it to stdout\n" +
    "  genpsk: Generates a new preshared key and writes it to stdout\n" +
    "  pubkey: Reads a private key from stdin and writes a public key to stdout\n" +
    "You may pass `--help' to any of these subcommands to view usage.\n"
  );
}

const SHOW_USAGE_FIELDS =
  "[public-key | private-key | listen-port | fwmark | peers | preshared-keys | endpoints | allowed-ips | latest-handshakes | transfer | persistent-keepalive | dump]";
const SET_USAGE =
  "<interface> [listen-port <port>] [fwmark <mark>] [private-key <file path>] [peer <base64 public key> [remove] [preshared-key <file path>] [endpoint <ip>:<port>] [persistent-keepalive <interval seconds>] [allowed-ips <ip1>/<cidr1>[,<ip2>/<cidr2>]...] ]...";


function writeAll(fd: number, s: string): void {
  const buf = Buffer.from(s, "latin1");
  let off = 0;
  while (off < buf.length) {
    try {
      off += writeSync(fd, buf, off, buf.length - off);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "EAGAIN") {
        Bun.sleepSync(1);
        continue;
      }
      // The reader is gone: C's wg is killed by SIGPIPE right here, and so are we.
      if (code === "EPIPE") dieOfBrokenPipe();
      return; // Other errors: stdio would drop the output and carry on.
    }
  }
}

/** stdout like C stdio (line-buffered on a TTY, 4096-byte blocks otherwise); stderr unbuffered. */
class Output {
  private buf = "";
  private readonly tty: boolean;
  constructor() {
    this.tty = isatty(1);
  }
  out(s: string): void {
    this.buf += s;
    if (this.tty) {
      const nl = this.buf.lastIndexOf("\n");
      if (nl >= 0) {
        writeAll(1, this.buf.slice(0, nl + 1));
        this.buf = this.buf.slice(nl + 1);
      }
    } else if (this.buf.length >= 4096) {
      const n = this.buf.length - (this.buf.length % 4096);
      writeAll(1, this.buf.slice(0, n));
      this.buf = this.buf.slice(n);
    }
  }
  err(s: string): void {
    writeAll(2, s);
  }
  flush(): void {
    if (this.buf) writeAll(1, this.buf);
    this.buf = "";
  }
}

function env(name: string): string | undefined {
  const v = process.env[name];
  return v === undefined ? undefined : toBytes(v);
}

/** Read up to n bytes from fd (like fread): fewer only at EOF or on error. */
function readUpTo(fd: number, n: number): { data: Uint8Array; error: boolean } {
  const buf = new Uint8Array(n);
  let got = 0;
  while (got < n) {
    let r: number;
    try {
      r = readSync(fd, buf, got, n - got, null);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "EAGAIN") {
        Bun.sleepSync(1);
        continue;
      }
      return { data: buf.subarray(0, got), error: true };
    }
    if (r === 0) break;
    got += r;
  }
  return { data: buf.subarray(0, got), error: false };
}

/** Read fd in chunks until EOF, an error, or `chunk` returns false (EAGAIN waits and retries). */
function readChunks(fd: number, chunk: (buf: Uint8Array, n: number) => boolean): void {
  const buf = new Uint8Array(65536);
  for (;;) {
    let r: number;
    try {
      r = readSync(fd, buf, 0, buf.length, null);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "EAGAIN") {
        Bun.sleepSync(1);
        continue;
      }
      return;
    }
    if (r === 0 || !chunk(buf, r)) return;
  }
}

/** Feed fd's remaining bytes to `each` until it returns false or EOF/error. */
function readRest(fd: number, each: (c: number) => boolean): void {
  readChunks(fd, (buf, n) => {
    for (let i = 0; i < n; i++) if (!each(buf[i]!)) return false;
    return true;
  });
}

function openForRead(path: string, o: Output): number | null {
  try {
    return openSync(Buffer.from(path, "latin1"), "r");
  } catch (e) {
    o.err(`fopen: ${strerror(errnoFromCode((e as NodeJS.ErrnoException).code))}\n`);
    return null;
  }
}

/** Whether ftell would report offset 0 (pipes, sockets and TTYs cannot seek). */
function seekable(fd: number): boolean {
  try {
    const st = fstatSync(fd);
    return !(st.isFIFO() || st.isSocket() || isatty(fd));
  } catch {
    return false;
  }
}

function makeEnv(o: Output): ParseEnv {
  return defaultParseEnv((s) => o.err(s));
}

/** The OS side of wg's parsers (glibc resolver, key files, sleeping); for in-process setconf/set. */
export function defaultParseEnv(err: (text: string) => void): ParseEnv {
  const openKey = (path: string) => {
    try {
      return openSync(Buffer.from(path, "latin1"), "r");
    } catch (e) {
      err(`fopen: ${strerror(errnoFromCode((e as NodeJS.ErrnoException).code))}\n`);
      return null;
    }
  };
  return {
    err,
    resolvePort,
    resolveEndpoint,
    sleep: (us) => Bun.sleepSync(us / 1000),
    retries: env("WG_ENDPOINT_RESOLUTION_RETRIES"),
    readKeyFile(path) {
      const fd = openKey(path);
      if (fd === null) return null;
      try {
        const head = readUpTo(fd, 44);
        const rest: number[] = [];
        if (head.data.length === 44)
          readRest(fd, (c) => {
            rest.push(c);
            return isSpace(c);
          });
        const atStart0 = head.data.length === 0 && !head.error && seekable(fd);
        return keyFromKeyFile({ head: head.data, headError: head.error, atStart0, rest: Uint8Array.from(rest) }, this);
      } finally {
        closeSync(fd);
      }
    },
  };
}

const nowSeconds = () => BigInt(Math.floor(Date.now() / 1000));

// ---------------------------------------------------------------------------------------------

/**
 * `wg show [<interface> | all] --json` (or the field word `json`): an extension the real wg
 * rejects as an invalid parameter, so no script that works with the original sees a change.
 * One interface prints an object, `all` (or none) an array of them.
 */
async function showJson(args: string[], o: Output): Promise<number> {
  const now = nowSeconds();
  const target = args[0];
  if (target !== undefined && target !== "all") {
    const r = await getDevice(target);
    if (!r.ok) {
      o.err(`Unable to access interface: ${strerror(r.errno)}\n`);
      return 1;
    }
    o.out(JSON.stringify(jsonDevice(r.device, now), null, 2) + "\n");
    return 0;
  }
  const list = await listInterfaces();
  if (!list.ok) {
    o.err(`Unable to list interfaces: ${strerror(list.errno)}\n`);
    return 1;
  }
  const devices = [];
  let failed = false;
  for (const name of list.names) {
    const r = await getDevice(name);
    if (r.ok) devices.push(jsonDevice(r.device, now));
    else {
      o.err(`Unable to access interface ${name}: ${strerror(r.errno)}\n`);
      failed = true;
    }
  }
  o.out(JSON.stringify(devices, null, 2) + "\n");
  return failed && devices.length === 0 && list.names.length > 0 ? 1 : 0;
}

async function showMain(prog: string, cmd: string, args: string[], o: Output): Promise<number> {
  const jsonAt = args.findIndex((a) => a === "--json");
  if (jsonAt >= 0 && args.length <= 2) return showJson(args.filter((_, i) => i !== jsonAt), o);
  if (args.length === 2 && args[1] === "json" && args[0] !== "interfaces") return showJson(args.slice(0, 1), o);
  const showUsage = () => o.err(`Usage: ${prog} ${cmd} { <interface> | all | interfaces } ${SHOW_USAGE_FIELDS}\n`);
  if (args.length > 2) {
    showUsage();
    return 1;
  }
  const colorVar = env("WG_COLOR_MODE");
  const pretty = (dev: WgDevice) =>
    prettyDevice(dev, {
      now: nowSeconds(),
      color: colorVar === "always" ? true : colorVar === "never" ? false : isatty(1),
      showKeys: env("WG_HIDE_KEYS") === "never",
    });
  const field = args[1];
  const ugly = (dev: WgDevice, withInterface: boolean): boolean => {
    const text = fieldOfDevice(dev, field!, withInterface);
    if (text === null) {
      o.err(`Invalid parameter: \`${field}'\n`);
      showUsage();
      return false;
    }
    o.out(text);
    return true;
  };

  if (args.length === 0 || args[0] === "all") {
    const list = await listInterfaces();
    if (!list.ok) {
      o.err(`Unable to list interfaces: ${strerror(list.errno)}\n`);
      return 1;
    }
    let ret = list.names.length ? 1 : 0;
    for (let i = 0; i < list.names.length; i++) {
      const name = list.names[i]!;
      const r = await getDevice(name);
      if (!r.ok) {
        o.err(`Unable to access interface ${name}: ${strerror(r.errno)}\n`);
        continue;
      }
      if (field !== undefined) {
        if (!ugly(r.device, true)) return 1;
      } else {
        o.out(pretty(r.device));
        if (i + 1 < list.names.length) o.out("\n");
      }
      ret = 0;
    }
    return ret;
  }
  if (args[0] === "interfaces") {
    if (args.length > 1) {
      showUsage();
      return 1;
    }
    const list = await listInterfaces();
    if (!list.ok) {
      o.err(`Unable to list interfaces: ${strerror(list.errno)}\n`);
      return 1;
    }
    if (list.names.length) o.out(list.names.join(" ") + "\n");
    return 0;
  }
  if (args.length === 1 && (args[0] === "-h" || args[0] === "--help" || args[0] === "help")) {
    showUsage();
    return 0;
  }
  const r = await getDevice(args[0]!);
  if (!r.ok) {
    o.err(`Unable to access interface: ${strerror(r.errno)}\n`);
    return 1;
  }
  if (field !== undefined) return ugly(r.device, false) ? 0 : 1;
  o.out(pretty(r.device));
  return 0;
}

async function showconfMain(prog: string, cmd: string, args: string[], o: Output): Promise<number> {
  if (args.length !== 1) {
    o.err(`Usage: ${prog} ${cmd} <interface>\n`);
    return 1;
  }
  const r = await getDevice(args[0]!);
  if (!r.ok) {
    o.err(`Unable to access interface: ${strerror(r.errno)}\n`);
    return 1;
  }
  o.out(showconfDevice(r.device));
  return 0;
}

async function setMain(prog: string, cmd: string, args: string[], o: Output): Promise<number> {
  if (args.length < 2) {
    o.err(`Usage: ${prog} ${cmd} ${SET_USAGE}\n`);
    return 1;
  }
  const config = parseSetArgs(args.slice(1), makeEnv(o));
  if (!config) return 1;
  const errno = await setDevice(args[0]!.slice(0, 15), config);
  if (errno) {
    o.err(`Unable to modify interface: ${strerror(errno)}\n`);
    return 1;
  }
  return 0;
}

async function setconfMain(prog: string, cmd: string, args: string[], o: Output): Promise<number> {
  if (args.length !== 2) {
    o.err(`Usage: ${prog} ${cmd} <interface> <configuration filename>\n`);
    return 1;
  }
  const fd = openForRead(args[1]!, o);
  if (fd === null) return 1;
  const text = readFdText(fd);
  const penv = makeEnv(o);
  let config = parseConfigFile(text, cmd === "addconf", penv);
  if (!config) return 1;
  const name = args[0]!.slice(0, 15);
  if (cmd === "syncconf" && config.peers.length) {
    const runtime = await getDevice(name);
    if (!runtime.ok) {
      o.err(`Unable to retrieve current interface configuration: ${strerror(runtime.errno)}\n`);
      return 1;
    }
    config = syncConfig(config, runtime.device);
  }
  const errno = await setDevice(name, config);
  if (errno) {
    o.err(`Unable to modify interface: ${strerror(errno)}\n`);
    return 1;
  }
  return 0;
}

/** The rest of fd as a byte string, ending quietly at a read error (getline semantics); closes fd. */
function readFdText(fd: number): string {
  const parts: Buffer[] = [];
  try {
    readChunks(fd, (buf, n) => {
      parts.push(Buffer.from(buf.subarray(0, n)));
      return true;
    });
  } finally {
    closeSync(fd);
  }
  return Buffer.concat(parts).toString("latin1");
}

function genkeyMain(prog: string, cmd: string, args: string[], o: Output): number {
  if (args.length) {
    o.err(`Usage: ${prog} ${cmd}\n`);
    return 1;
  }
  try {
    const st = fstatSync(1);
    if (st.isFile() && st.mode & 0o007)
      o.err("Warning: writing to world accessible file.\nConsider setting the umask to 077 and trying again.\n");
  } catch {}
  let key: Uint8Array = crypto.getRandomValues(new Uint8Array(32));
  if (cmd === "genkey") key = clampPrivateKey(key);
  o.out(keyToBase64(key) + "\n");
  return 0;
}

function pubkeyMain(prog: string, cmd: string, args: string[], o: Output): number {
  if (args.length) {
    o.err(`Usage: ${prog} ${cmd}\n`);
    return 1;
  }
  const head = readUpTo(0, 44);
  if (head.data.length !== 44) {
    o.err(`${prog}: Key is not the correct length or format\n`);
    return 1;
  }
  let trailing = false;
  readRest(0, (c) => {
    if (c === 0 || isSpace(c)) return true;
    trailing = true;
    return false;
  });
  if (trailing) {
    o.err(`${prog}: Trailing characters found after key\n`);
    return 1;
  }
  let text = Buffer.from(head.data).toString("latin1");
  const nul = text.indexOf("\0");
  if (nul >= 0) text = text.slice(0, nul);
  const key = keyFromBase64(text);
  if (!key) {
    o.err(`${prog}: Key is not the correct length or format\n`);
    return 1;
  }
  o.out(keyToBase64(publicKey(clampPrivateKey(key))) + "\n");
  return 0;
}

/**
 * Our subcommands beyond the real wg's, which answers each with "Invalid subcommand", so nothing
 * that worked breaks. Loaded on use; they take JS text, as citty does.
 */
const EXTENSIONS = {
  events: async () => (await import("./wg-events.ts")).wgEventsMain,
  "allowed-ips": async () => (await import("./wg-allowed-ips.ts")).wgAllowedIpsMain,
  /** Prometheus metrics over HTTP. */
  exporter: async () => (await import("./wg-exporter.ts")).wgExporterMain,
} satisfies Record<string, () => Promise<(argv0: string, args: string[]) => Promise<number>>>;

async function dispatch(prog: string, args: string[], o: Output): Promise<number> {
  if (args.length === 1 && (args[0] === "-v" || args[0] === "--version" || args[0] === "version")) {
    o.out(VERSION_LINE);
    return 0;
  }
  if (args.length === 1 && (args[0] === "-h" || args[0] === "--help" || args[0] === "help")) {
    o.out(usage(prog));
    return 0;
  }
  if (args.length === 0) return showMain(prog, "show", [], o);
  const cmd = args[0]!;
  const rest = args.slice(1);
  const extension = Object.hasOwn(EXTENSIONS, cmd) ? EXTENSIONS[cmd as keyof typeof EXTENSIONS] : undefined;
  if (extension !== undefined) {
    o.flush();
    return (await extension())(fromBytes(prog), rest.map(fromBytes));
  }
  if (!SUBCOMMANDS.includes(cmd)) {
    o.err(`Invalid subcommand: \`${cmd}'\n`);
    o.err(usage(prog));
    return 1;
  }
  switch (cmd) {
    case "show":
      return showMain(prog, cmd, rest, o);
    case "showconf":
      return showconfMain(prog, cmd, rest, o);
    case "set":
      return setMain(prog, cmd, rest, o);
    case "setconf":
    case "addconf":
    case "syncconf":
      return setconfMain(prog, cmd, rest, o);
    case "genkey":
    case "genpsk":
      return genkeyMain(prog, cmd, rest, o);
    default:
      return pubkeyMain(prog, cmd, rest, o);
  }
}

/** `wg` with argv[0] = `argv0` (printed verbatim in messages) and the remaining arguments. */
export async function wgMain(argv0: string, args: string[]): Promise<number> {
  const o = new Output();
  let code: number;
  try {
    code = await dispatch(toBytes(argv0), args.map(toBytes), o);
  } catch (e) {
    if (!(e instanceof WgExit)) {
      o.flush();
      throw e;
    }
    code = e.code;
  }
  o.flush();
  return code;
}
