// Text-input generators (config files, `wg set` words, UAPI requests) shared by
// test/fuzz.test.ts and bench/fuzz.ts.
import fc from "fast-check";
import { WgExit, type ParseEnv } from "../core/tools/config.ts";

export function fakeEnv(): ParseEnv & { errors: string[] } {
  const errors: string[] = [];
  return {
    errors,
    err: (t) => void errors.push(t),
    resolvePort: (v) => (/^[0-9]+$/.test(v) && Number(v) < 65536 ? { port: Number(v) } : { error: "Servname not supported for ai_socktype" }),
    resolveEndpoint: (host, port) =>
      /^[0-9.]+$|:/.test(host) && /^[0-9]+$/.test(port) ? { endpoint: `${host}:${port}` } : { error: "Name or service not known", retry: false },
    sleep: () => {},
    retries: undefined,
    // Contract: null only after printing why.
    readKeyFile: (path) => {
      errors.push(`${path}: No such file or directory\n`);
      return null;
    },
  };
}

export const KEY = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";
export const configValue = fc.oneof(
  fc.constantFrom(KEY, KEY.slice(1), KEY.replace("=", "A"), "51820", "65536", "-1", "0x10", "off", "25", "70000",
    "192.0.2.1:51820", "[fd00::1]:1", "[fd00::1", "host:port", "10.0.0.0/8, fd00::/64", "10.0.0.0/33", "::/0", "", " ", "=", "\t"),
  fc.string({ maxLength: 40 }),
  fc.string({ unit: "binary", maxLength: 20 }),
);
export const configKey = fc.oneof(
  fc.constantFrom("PrivateKey", "ListenPort", "FwMark", "PublicKey", "PresharedKey", "Endpoint", "AllowedIPs",
    "PersistentKeepalive", "Address", "DNS", "MTU", "privatekey", "LISTENPORT", " ListenPort"),
  fc.string({ maxLength: 12 }),
);
export const configLine = fc.oneof(
  fc.constantFrom("[Interface]", "[Peer]", "[peer]", "[Interface", "", "# comment", "\0", "[]"),
  fc.tuple(configKey, fc.constantFrom("=", " = ", "==", ":"), configValue, fc.constantFrom("", " # c", "\r")).map(([k, e, v, t]) => k + e + v + t),
  fc.string({ maxLength: 60 }),
);
export const configText = fc.array(configLine, { maxLength: 14 }).map((ls) => ls.join("\n"));

/** Runs `f`, allowing only WgExit as an exception; fails when it takes over a second. */
export function bounded<T>(f: () => T): T | WgExit {
  const t0 = performance.now();
  try {
    return f();
  } catch (e) {
    if (e instanceof WgExit) return e;
    throw e;
  } finally {
    if (performance.now() - t0 > 1000) throw new Error("took over a second");
  }
}

export const uapiKey = fc.constantFrom("private_key", "listen_port", "fwmark", "replace_peers", "public_key", "update_only", "remove",
  "preshared_key", "endpoint", "persistent_keepalive_interval", "replace_allowed_ips", "allowed_ip", "protocol_version", "bogus", "");
const hex64 = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString("hex"));
export const uapiValue = fc.oneof(
  hex64,
  fc.constantFrom("true", "false", "1", "0", "65535", "65536", "-1", "4294967296", "192.0.2.1:1", "[::1]:0", "10.0.0.0/8", "::/0", "1.2.3.4/40", ""),
  fc.string({ maxLength: 30 }),
);
export const uapiLine = fc.oneof(fc.tuple(uapiKey, uapiValue).map(([k, v]) => `${k}=${v}`), fc.string({ maxLength: 40 }));
export const uapiRequest = fc.oneof(
  fc.tuple(fc.constantFrom("set=1", "get=1", "set=2", "", "get=1x"), fc.array(uapiLine, { maxLength: 12 }), fc.constantFrom("\n\n", "\n", "")).map(
    ([op, ls, end]) => [op, ...ls].join("\n") + end,
  ),
  fc.string({ maxLength: 200 }),
);

