// parse_options and read_bool of the reference: the config file's lookup, its permission
// warning, and the split of its lines into wg-quick's keys and the part handed to `wg`.
import { existsSync, readFileSync, realpathSync, statSync } from "node:fs";
import { die, err } from "./exit.ts";

export interface Options {
  prog: string;
  configFile: string;
  iface: string;
  /** Every line that is not a wg-quick key of [Interface], each ending in "\n" (`wg-quick strip`). */
  wgConfig: string;
  addresses: string[];
  mtu: string;
  dns: string[];
  dnsSearch: string[];
  table: string;
  preUp: string[];
  postUp: string[];
  preDown: string[];
  postDown: string[];
  saveConfig: boolean;
}

const NAME_RE = /^[a-zA-Z0-9_=+.-]{1,15}$/;
const PATH_NAME_RE = /(^|\/)([a-zA-Z0-9_=+.-]{1,15})\.conf$/;

/** bash `read -r line` with the default IFS: leading/trailing spaces and tabs trimmed, NULs dropped. */
export function readLines(text: string): string[] {
  const parts = text.replace(/\0/g, "").split("\n");
  if (parts[parts.length - 1] === "") parts.pop();
  return parts.map((l) => l.replace(/^[ \t]+|[ \t]+$/g, ""));
}

/** extglob `*([[:space:]])` trimmed from both ends. */
export const trimSpace = (s: string) => s.replace(/^[ \t\n\v\f\r]+|[ \t\n\v\f\r]+$/g, "");

/** Unquoted word splitting on the default IFS. */
export const words = (s: string) => s.split(/[ \t\n]+/).filter((w) => w !== "");

/** One line as the reference cuts it: text before `#`, then key and value around the first `=`, trimmed. */
function keyValue(line: string): { key: string; value: string; hasEq: boolean } {
  const hash = line.indexOf("#");
  const stripped = hash < 0 ? line : line.slice(0, hash);
  const eq = stripped.indexOf("=");
  return {
    key: trimSpace(eq < 0 ? stripped : stripped.slice(0, eq)),
    value: trimSpace(eq < 0 ? stripped : stripped.slice(eq + 1)),
    hasEq: eq >= 0,
  };
}

/**
 * A hook's value (our extension of the reference's cut at the first `#`): the line's text after
 * its first `=`, up to the first `#` that is neither inside quotes ('...', "...", $'...') nor
 * escaped by a backslash, trimmed. Where the reference kept a command, the first `#` is
 * unquoted and both cut there; a quoted `#` made it cut inside the quotes, a syntax error.
 * Quotes are matched as written, not inside `$(...)`; unbalanced ones keep the rest of the line.
 */
function hookValue(line: string): string {
  const eq = line.indexOf("=");
  let quote: "'" | '"' | "$'" | null = null;
  let i = eq + 1;
  for (; i < line.length; i++) {
    const c = line[i];
    if (quote === "'") {
      if (c === "'") quote = null;
    } else if (c === "\\") i++; // unquoted, in "..." and in $'...' a backslash takes the next character along
    else if (quote !== null) {
      if (c === quote[quote.length - 1]) quote = null;
    } else if (c === "#") break;
    else if (c === "'" || c === '"') quote = c;
    else if (c === "$" && line[i + 1] === "'") {
      quote = "$'";
      i++;
    }
  }
  return trimSpace(line.slice(eq + 1, i));
}

/** CONFIG_FILE|INTERFACE as the reference finds it: the resolved file and the interface name. */
export function configFileOf(prog: string, arg: string): { configFile: string; iface: string } {
  let configFile = arg;
  if (NAME_RE.test(configFile)) configFile = `/etc/wireguard/${configFile}.conf`;
  if (!existsSync(Buffer.from(configFile, "latin1"))) die(prog, `\`${configFile}' does not exist`);
  const m = PATH_NAME_RE.exec(configFile);
  if (!m) die(prog, "The config file must be a valid interface name, followed by .conf");
  const iface = m[2]!;
  configFile = realpathSync(Buffer.from(configFile, "latin1"), { encoding: "buffer" }).toString("latin1");
  warnWorldAccessible(configFile);
  return { configFile, iface };
}

export function parseOptions(prog: string, arg: string): Options {
  const { configFile, iface } = configFileOf(prog, arg);
  const o: Options = {
    prog,
    configFile,
    iface,
    wgConfig: "",
    addresses: [],
    mtu: "",
    dns: [],
    dnsSearch: [],
    table: "",
    preUp: [],
    postUp: [],
    preDown: [],
    postDown: [],
    saveConfig: false,
  };
  let text: string;
  try {
    text = readFileSync(Buffer.from(configFile, "latin1"), "latin1");
  } catch {
    text = ""; // bash's `done < dir` fails the same way: nothing is read
  }
  let inInterface = false;
  for (const line of readLines(text)) {
    const { key, value, hasEq } = keyValue(line);
    const k = key.toLowerCase();
    if (k.startsWith("[")) inInterface = k === "[interface]";
    const hook = hasEq && Object.hasOwn(HOOK_LISTS, k);
    if (inInterface && interfaceKey(prog, o, k, hook ? hookValue(line) : value)) continue;
    o.wgConfig += `${line}\n`;
  }
  return o;
}

const HOOK_LISTS = { preup: "preUp", predown: "preDown", postup: "postUp", postdown: "postDown" } as const;

/** Takes one of wg-quick's own [Interface] keys into `o`; false for every other line. */
function interfaceKey(prog: string, o: Options, key: string, value: string): boolean {
  const list = () => words(value.replace(/,/g, " "));
  switch (key) {
    case "address":
      o.addresses.push(...list());
      return true;
    case "mtu":
      o.mtu = value;
      return true;
    case "dns":
      for (const v of list()) (/^[0-9.]+$/.test(v) || v.includes(":") ? o.dns : o.dnsSearch).push(v);
      return true;
    case "table":
      o.table = value;
      return true;
    case "preup":
    case "predown":
    case "postup":
    case "postdown":
      o[HOOK_LISTS[key]].push(value);
      return true;
    case "saveconfig":
      o.saveConfig = readBool(prog, value);
      return true;
  }
  return false;
}

function readBool(prog: string, value: string): boolean {
  const v = value.toLowerCase();
  if (v === "true") return true;
  if (v === "false") return false;
  die(prog, `\`${value}' is neither true nor false`);
}

/** Others may read the file when both it and its directory grant them access. */
function warnWorldAccessible(configFile: string): void {
  const dir = configFile.slice(0, configFile.lastIndexOf("/")) || "/";
  try {
    const fileMode = statSync(Buffer.from(configFile, "latin1")).mode;
    const dirMode = statSync(Buffer.from(dir, "latin1")).mode;
    if ((fileMode & dirMode & 0o007) !== 0) err(`Warning: \`${configFile}' is world accessible\n`);
  } catch {
    // stat failing leaves bash's arithmetic empty; nothing sensible to warn about
  }
}

/** The [Interface] section of the wg part sets `key` (lower case), e.g. FwMark: then it is the user's. */
export function configHasKey(wgConfig: string, key: string): boolean {
  let inInterface = false;
  for (const line of readLines(wgConfig)) {
    const kv = keyValue(line);
    const k = kv.key.toLowerCase();
    if (k.startsWith("[")) inInterface = k === "[interface]";
    else if (inInterface && k === key && kv.hasEq) return true;
  }
  return false;
}
