// wg's configuration grammar: the value parsers shared by `wg set` and config files, the config
// file line grammar ([Interface]/[Peer]), the `wg set` word grammar, and syncconf's peer diff.
// Error texts are wireguard-tools v1.0.20210914's, byte for byte. Everything the OS answers
// (resolver, key files, sleeping between resolver retries) comes in through ParseEnv.
import {
  emptyDeviceConfig, emptyPeerConfig, type AllowedIp, type DeviceConfig, type PeerConfig, type WgDevice,
} from "./containers.ts";
import { keyFromBase64 } from "../encoding.ts";
import { inetPton4, inetPton6 } from "../inet.ts";

export type PortResult = { port: number } | { error: string };
/** `retry` is false for permanent resolver failures (EAI_NONAME, EAI_FAIL, EAI_NODATA) and non-resolver errors. */
export type EndpointResult = { endpoint: string } | { error: string; retry: boolean };

export interface ParseEnv {
  /** Write to stderr (text includes its newline). */
  err(text: string): void;
  /** getaddrinfo(NULL, value, {AF_UNSPEC, SOCK_DGRAM, IPPROTO_UDP, AI_PASSIVE}) -> port. */
  resolvePort(value: string): PortResult;
  /** getaddrinfo(host, port, {AF_UNSPEC, SOCK_DGRAM, IPPROTO_UDP}), first result, numeric text. */
  resolveEndpoint(host: string, port: string): EndpointResult;
  sleep(microseconds: number): void;
  /** The value of WG_ENDPOINT_RESOLUTION_RETRIES, if set. */
  retries: string | undefined;
  /** `wg set`'s private-key/preshared-key files: the key (zeros = remove) or null after printing an error. */
  readKeyFile?(path: string): Uint8Array | null;
}

/** Thrown where the reference calls exit() in the middle of parsing. */
export class WgExit extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}

export const isSpace = (c: number) => c === 0x20 || (c >= 0x09 && c <= 0x0d);
const isDigit = (c: number) => c >= 0x30 && c <= 0x39;

/** Remove every C-locale whitespace byte (isspace: \t \n \v \f \r and space). */
export function stripSpaces(s: string): string {
  return s.replace(/[\t-\r ]+/g, "");
}

/** glibc strtoul(s, &end, base) restricted to what wg feeds it: returns value (saturated) and rest. */
export function strtoul(s: string, base: 10 | 16): { n: bigint; rest: string } {
  let i = 0;
  while (i < s.length && isSpace(s.charCodeAt(i))) i++;
  let neg = false;
  if (s[i] === "+" || s[i] === "-") neg = s[i++] === "-";
  if (base === 16 && s[i] === "0" && (s[i + 1] === "x" || s[i + 1] === "X") && /[0-9a-fA-F]/.test(s[i + 2] ?? ""))
    i += 2;
  const digits = (base === 10 ? /^[0-9]*/ : /^[0-9a-fA-F]*/).exec(s.slice(i))![0];
  if (!digits) return { n: 0n, rest: s };
  const MAX = 0xffffffffffffffffn;
  let n = BigInt((base === 16 ? "0x" : "") + digits);
  if (n > MAX) n = MAX;
  else if (neg) n = (MAX + 1n - n) & MAX;
  return { n, rest: s.slice(i + digits.length) };
}

/** ASCII-only tolower (byte strings: chars above 0x7f stay as they are). */
const lower = (s: string) => (/[^\x00-\x7f]/.test(s) ? s.replace(/[A-Z]/g, (c) => c.toLowerCase()) : s.toLowerCase());

export function parseKey(value: string, env: ParseEnv): Uint8Array | null {
  const k = keyFromBase64(value);
  if (!k) env.err(`Key is not the correct length or format: \`${value}'\n`);
  return k;
}

export function parsePort(value: string, env: ParseEnv): number | null {
  if (!value.length) {
    env.err("Unable to parse empty port\n");
    return null;
  }
  const r = env.resolvePort(value);
  if ("error" in r) {
    env.err(`${r.error}: \`${value}'\n`);
    return null;
  }
  return r.port;
}

export function parseFwmark(value: string, env: ParseEnv): number | null {
  if (lower(value) === "off") return 0;
  if (isDigit(value.charCodeAt(0))) {
    const hex = value.length > 2 && value[0] === "0" && value[1] === "x";
    const { n, rest } = strtoul(value, hex ? 16 : 10);
    if (!rest && n <= 0xffffffffn) return Number(n);
  }
  env.err(`Fwmark is neither 0/off nor 0-0xffffffff: \`${value}'\n`);
  return null;
}

export function parseKeepalive(value: string, env: ParseEnv): number | null {
  if (lower(value) === "off") return 0;
  if (isDigit(value.charCodeAt(0))) {
    const { n, rest } = strtoul(value, 10);
    if (!rest && n <= 65535n) return Number(n);
  }
  env.err(`Persistent keepalive interval is neither 0/off nor 1-65535: \`${value}'\n`);
  return null;
}

/** WG_ENDPOINT_RESOLUTION_RETRIES: -1 = forever. Exits the program on a bad value, like wg. */
export function parseDnsRetries(env: ParseEnv): number {
  const v = env.retries;
  if (v === undefined) return 15;
  if (v === "infinity") return -1;
  const { n, rest } = strtoul(v, 10);
  if (rest || n > 0x7fffffffn) {
    env.err(`Unable to parse WG_ENDPOINT_RESOLUTION_RETRIES: \`${v}'\n`);
    throw new WgExit(1);
  }
  return Number(n);
}

/** C printf("%.2f", us / 1e6) for an integral microsecond count. */
function seconds2(us: number): string {
  const cents = Math.floor(us / 10000), rem = us % 10000;
  const r = rem > 5000 || (rem === 5000 && cents % 2 === 1) ? cents + 1 : cents;
  return `${Math.floor(r / 100)}.${String(r % 100).padStart(2, "0")}`;
}

export function parseEndpoint(value: string, env: ParseEnv): string | null {
  let retries = parseDnsRetries(env);
  if (!value.length) {
    env.err("Unable to parse empty endpoint\n");
    return null;
  }
  let host: string, port: string;
  if (value[0] === "[") {
    const end = value.indexOf("]");
    if (end < 0) {
      env.err(`Unable to find matching brace of endpoint: \`${value}'\n`);
      return null;
    }
    if (value[end + 1] !== ":" || end + 2 >= value.length) {
      env.err(`Unable to find port of endpoint: \`${value}'\n`);
      return null;
    }
    host = value.slice(1, end);
    port = value.slice(end + 2);
  } else {
    const end = value.lastIndexOf(":");
    if (end < 0 || end + 1 >= value.length) {
      env.err(`Unable to find port of endpoint: \`${value}'\n`);
      return null;
    }
    host = value.slice(0, end);
    port = value.slice(end + 1);
  }
  for (let timeout = 1000000; ; timeout = Math.min(20000000, Math.floor((timeout * 6) / 5) >>> 0)) {
    const r = env.resolveEndpoint(host, port);
    if ("endpoint" in r) return r.endpoint;
    if (!r.retry || (retries >= 0 && !retries--)) {
      env.err(`${r.error}: \`${value}'\n`);
      return null;
    }
    env.err(`${r.error}: \`${value}'. Trying again in ${seconds2(timeout)} seconds...\n`);
    env.sleep(timeout);
  }
}

function parseIp(value: string, env: Pick<ParseEnv, "err">): Uint8Array | null {
  const a = value.includes(":") ? inetPton6(value) : inetPton4(value);
  if (!a) env.err(`Unable to parse IP address: \`${value}'\n`);
  return a;
}

function hostBitsClear(ip: AllowedIp): boolean {
  for (let bit = ip.cidr; bit < ip.addr.length * 8; bit++)
    if (ip.addr[bit >> 3]! & (0x80 >> (bit & 7))) return false;
  return true;
}

/**
 * The common entry `a.b.c.d` or `a.b.c.d/n` read straight from `s` (no substrings): the
 * AllowedIp, or null for anything else (leading zeros, IPv6, odd masks, errors), which the
 * general path then handles with its exact messages.
 */
function plainV4(s: string, start: number, end: number): AllowedIp | null {
  const addr = new Uint8Array(4);
  let i = start;
  for (let octet = 0; octet < 4; octet++) {
    if (octet && s.charCodeAt(i++) !== 0x2e) return null;
    const first = i;
    let v = 0;
    for (let c = s.charCodeAt(i); i < end && c >= 0x30 && c <= 0x39; c = s.charCodeAt(++i)) v = v * 10 + (c - 0x30);
    const digits = i - first;
    if (digits === 0 || digits > 3 || v > 255 || (digits > 1 && s.charCodeAt(first) === 0x30)) return null;
    addr[octet] = v;
  }
  if (i === end) return { family: 4, addr, cidr: 32 };
  if (s.charCodeAt(i++) !== 0x2f) return null;
  const first = i;
  let cidr = 0;
  for (let c = s.charCodeAt(i); i < end && c >= 0x30 && c <= 0x39; c = s.charCodeAt(++i)) cidr = cidr * 10 + (c - 0x30);
  if (i !== end || i === first || i - first > 2 || cidr > 32) return null;
  return { family: 4, addr, cidr };
}

/**
 * Appends to peer.allowedIps; `value` has no whitespace. Each list replaces the peer's allowed
 * IPs, unless (`signed`, wireguard-tools 1.0.20250521's extension) one of its entries starts
 * with `+` (add) or `-` (remove): then the list is an incremental change, its unsigned entries
 * are added too, and one sign is taken off before the entry is parsed. As upstream, every list
 * decides afresh, so the last `allowed-ips`/`AllowedIPs` of a peer decides. Signed entries were
 * "Unable to parse IP address" in 1.0.20210914, so unsigned input parses as it always did.
 */
export function parseAllowedIps(peer: PeerConfig, value: string, env: Pick<ParseEnv, "err">, signed = true): boolean {
  peer.replaceAllowedIps = true;
  if (!value.length) return true;
  for (let start = 0; start <= value.length; ) {
    let end = value.indexOf(",", start);
    if (end < 0) end = value.length;
    const sign = signed ? value[start] : undefined;
    if (sign === "+" || sign === "-") {
      peer.replaceAllowedIps = false;
      start++;
    }
    const fast = plainV4(value, start, end);
    if (fast && !hostBitsClear(fast)) env.err(`Warning: AllowedIP has nonzero host part: ${value.slice(start, end)}\n`);
    const ip = fast ?? allowedIp(value.slice(start, end), env);
    if (!ip) return false;
    if (sign === "-") ip.remove = true;
    peer.allowedIps.push(ip);
    start = end + 1;
  }
  return true;
}

/** One entry of an AllowedIPs list; null after printing why. */
function allowedIp(entry: string, env: Pick<ParseEnv, "err">): AllowedIp | null {
  const slash = entry.indexOf("/");
  const ipText = slash < 0 ? entry : entry.slice(0, slash);
  const addr = parseIp(ipText, env);
  if (!addr) return null;
  const family: 4 | 6 = addr.length === 4 ? 4 : 6;
  const max = family === 4 ? 32 : 128;
  let cidr = max;
  if (slash >= 0) {
    const mask = entry.slice(slash + 1);
    // A plain short number needs no strtoul (which handles signs, spaces and saturation).
    const { n, rest } = /^[0-9]{1,3}$/.test(mask) ? { n: BigInt(mask), rest: "" } : strtoul(mask, 10);
    if (!isDigit(mask.charCodeAt(0)) || rest || n > BigInt(max)) {
      env.err(`AllowedIP is not in the correct format: \`${entry}'\n`);
      return null;
    }
    cidr = Number(n);
  }
  const ip: AllowedIp = { family, addr, cidr };
  if (!hostBitsClear(ip)) env.err(`Warning: AllowedIP has nonzero host part: ${ipText}/${entry.slice(slash + 1)}\n`);
  return ip;
}

// ---------------------------------------------------------------------------------------------
// Config files

/** Streaming parser for wg config files; feed it lines (without or with their "\n"). */
export class ConfigParser {
  readonly device: DeviceConfig = emptyDeviceConfig();
  private section: "none" | "interface" | "peer" = "none";
  private peer: PeerConfig | null = null;

  /** `append` is addconf: only the device fields present in the file are sent. */
  constructor(private readonly env: ParseEnv, append: boolean) {
    if (!append) {
      this.device.replacePeers = true;
      this.device.privateKey = new Uint8Array(32);
      this.device.fwmark = 0;
      this.device.listenPort = 0;
    }
  }

  /** One line as getline returns it. False after printing the error (parsing must stop). */
  line(input: string): boolean {
    const nul = input.indexOf("\0");
    if (nul >= 0) input = input.slice(0, nul);
    const hash = input.indexOf("#");
    const line = stripSpaces(hash >= 0 ? input.slice(0, hash) : input);
    if (!line.length) return true;
    return this.process(line);
  }

  private process(line: string): boolean {
    const env = this.env;
    // `Key=value` with a case-insensitive key and a non-empty value, split at the first "=".
    const eq = line.indexOf("=");
    if (eq < 0) {
      const l = lower(line);
      if (l === "[interface]") {
        this.section = "interface";
        return true;
      }
      if (l === "[peer]") {
        this.peer = emptyPeerConfig();
        this.peer.replaceAllowedIps = true;
        this.device.peers.push(this.peer);
        this.section = "peer";
        return true;
      }
    }
    const key = eq > 0 && line.length > eq + 1 ? lower(line.slice(0, eq)) : "";
    const value = (k: string): string | null => (key === k ? line.slice(eq + 1) : null);
    let v: string | null;
    if (this.section === "interface") {
      if ((v = value("listenport")) !== null) {
        const port = parsePort(v, env);
        if (port === null) return false;
        this.device.listenPort = port;
        return true;
      }
      if ((v = value("fwmark")) !== null) {
        const mark = parseFwmark(v, env);
        if (mark === null) return false;
        this.device.fwmark = mark;
        return true;
      }
      if ((v = value("privatekey")) !== null) {
        const k = parseKey(v, env);
        // A bad key zeroes the stored one, harmless since parsing stops.
        if (!k) return false;
        this.device.privateKey = k;
        return true;
      }
    } else if (this.section === "peer") {
      const peer = this.peer!;
      if ((v = value("endpoint")) !== null) {
        const ep = parseEndpoint(v, env);
        if (ep === null) return false;
        peer.endpoint = ep;
        return true;
      }
      if ((v = value("publickey")) !== null) {
        const k = parseKey(v, env);
        if (!k) return false;
        peer.publicKey = k;
        return true;
      }
      if ((v = value("allowedips")) !== null) return parseAllowedIps(peer, v, env);
      if ((v = value("persistentkeepalive")) !== null) {
        const n = parseKeepalive(v, env);
        if (n === null) return false;
        peer.persistentKeepalive = n;
        return true;
      }
      if ((v = value("presharedkey")) !== null) {
        const k = parseKey(v, env);
        if (!k) return false;
        peer.presharedKey = k;
        return true;
      }
    }
    env.err(`Line unrecognized: \`${line}'\n`);
    return false;
  }

  /** After the last line: the request, or null after printing why. */
  finish(): DeviceConfig | null {
    for (const p of this.device.peers) {
      if (!p.publicKey) {
        this.env.err("A peer is missing a public key\n");
        return null;
      }
    }
    return this.device;
  }
}

/** Split file contents the way getline does (a final line needs no "\n"). */
export function configLines(text: string): string[] {
  const lines = text.split("\n");
  if (lines.length && lines[lines.length - 1] === "") lines.pop();
  return lines;
}

/**
 * setconf/addconf/syncconf's reading of a file: the request, or null after printing the
 * reference's messages ("Configuration parsing error" / "Invalid configuration").
 */
export function parseConfigFile(text: string, append: boolean, env: ParseEnv): DeviceConfig | null {
  const parser = new ConfigParser(env, append);
  for (const line of configLines(text)) {
    if (!parser.line(line)) {
      env.err("Configuration parsing error\n");
      return null;
    }
  }
  const dev = parser.finish();
  if (!dev) env.err("Invalid configuration\n");
  return dev;
}

// ---------------------------------------------------------------------------------------------
// `wg set` words

/** The words after `wg set IFACE`; null after printing the error. */
export function parseSetArgs(args: readonly string[], env: ParseEnv): DeviceConfig | null {
  const dev = emptyDeviceConfig();
  let peer: PeerConfig | null = null;
  let i = 0;
  const readKey = (path: string) => (env.readKeyFile ? env.readKeyFile(path) : null);
  while (i < args.length) {
    const w = args[i]!, v = args[i + 1];
    const has = v !== undefined;
    if (w === "listen-port" && has && !peer) {
      const port = parsePort(v, env);
      if (port === null) return null;
      dev.listenPort = port;
      i += 2;
    } else if (w === "fwmark" && has && !peer) {
      const mark = parseFwmark(v, env);
      if (mark === null) return null;
      dev.fwmark = mark;
      i += 2;
    } else if (w === "private-key" && has && !peer) {
      const k = readKey(v);
      if (!k) return null;
      dev.privateKey = k;
      i += 2;
    } else if (w === "peer" && has) {
      peer = emptyPeerConfig();
      dev.peers.push(peer);
      const k = parseKey(v, env);
      if (!k) return null;
      peer.publicKey = k;
      i += 2;
    } else if (w === "remove" && peer) {
      peer.remove = true;
      i += 1;
    } else if (w === "endpoint" && has && peer) {
      const ep = parseEndpoint(v, env);
      if (ep === null) return null;
      peer.endpoint = ep;
      i += 2;
    } else if (w === "allowed-ips" && has && peer) {
      if (!parseAllowedIps(peer, stripSpaces(v), env)) return null;
      i += 2;
    } else if (w === "persistent-keepalive" && has && peer) {
      const n = parseKeepalive(v, env);
      if (n === null) return null;
      peer.persistentKeepalive = n;
      i += 2;
    } else if (w === "preshared-key" && has && peer) {
      const k = readKey(v);
      if (!k) return null;
      peer.presharedKey = k;
      i += 2;
    } else {
      env.err(`Invalid argument: ${w}\n`);
      return null;
    }
  }
  return dev;
}

/** Key file contents as wg's read_keyfile judges them; null after printing the error. */
export function keyFromKeyFile(
  f: { head: Uint8Array; headError: boolean; atStart0: boolean; rest: Uint8Array },
  env: ParseEnv,
): Uint8Array | null {
  if (f.head.length !== 44) {
    // An empty, seekable, error-free file (or /dev/null) means "remove the key".
    if (!f.headError && f.head.length === 0 && f.atStart0) return new Uint8Array(32);
    env.err("Invalid length key in key file\n");
    return null;
  }
  for (const c of f.rest) {
    if (!isSpace(c)) {
      env.err(`Found trailing character in key file: \`${String.fromCharCode(c)}'\n`);
      return null;
    }
  }
  let text = String.fromCharCode(...f.head);
  const nul = text.indexOf("\0");
  if (nul >= 0) text = text.slice(0, nul);
  return parseKey(text, env);
}

// ---------------------------------------------------------------------------------------------
// syncconf

function compareKeys(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < 32; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}

/**
 * syncconf: turn a parsed file (setconf form) into the request that makes the running device
 * match it. Only called when the file has peers. Running peers missing from the file get
 * removal blocks in front, in descending key order (v1.0.20210914 compares nothing else).
 */
export function syncConfig(file: DeviceConfig, runtime: WgDevice): DeviceConfig {
  if (!runtime.peers.length) return file;
  const all = [
    ...file.peers.map((p) => ({ key: p.publicKey!, fromFile: 1 })),
    ...runtime.peers.map((p) => ({ key: p.publicKey, fromFile: 0 })),
  ].sort((a, b) => compareKeys(a.key, b.key) || a.fromFile - b.fromFile);
  const peers = [...file.peers];
  for (let i = 0; i < all.length; i++) {
    if (all[i]!.fromFile) continue;
    const next = all[i + 1];
    if (!next || !next.fromFile || compareKeys(all[i]!.key, next.key)) {
      const removal = emptyPeerConfig();
      removal.publicKey = all[i]!.key;
      removal.remove = true;
      peers.unshift(removal);
    }
  }
  return { ...file, replacePeers: false, peers };
}
