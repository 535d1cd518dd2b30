// core/config.ts and core/uapi.ts in isolation: the grammar, the error texts, the requests built,
// resolver retry timing, and the get-answer parser. (test/wg-diff.test.ts checks the same
// against the reference binary end to end.)
import { describe, expect, test } from "bun:test";
import { ConfigParser, WgExit, keyFromKeyFile, parseAllowedIps, parseConfigFile, parseEndpoint, parseFwmark, parseKeepalive, parseSetArgs, strtoul, syncConfig, type EndpointResult, type ParseEnv } from "../core/tools/config.ts";
import { buildSetRequest, parseGetResponse, parseSetResponse } from "../core/tools/uapi.ts";
import { emptyPeerConfig, type AllowedIp, type WgDevice } from "../core/tools/containers.ts";
import { keyToBase64, keyToHex } from "../core/encoding.ts";

function env(o: Partial<ParseEnv> & { resolve?: (h: string, p: string) => EndpointResult } = {}) {
  const errs: string[] = [];
  const sleeps: number[] = [];
  const e: ParseEnv = {
    err: (s) => errs.push(s),
    resolvePort: (v) => (/^\d+$/.test(v) ? { port: Number(v) & 0xffff } : { error: "Servname not supported for ai_socktype" }),
    resolveEndpoint: o.resolve ?? ((h, p) => ({ endpoint: `${h}:${p}` })),
    sleep: (us) => sleeps.push(us),
    retries: o.retries,
    readKeyFile: o.readKeyFile,
  };
  return { e, errs, sleeps };
}

const key = (n: number) => new Uint8Array(32).fill(n);
const K = (n: number) => keyToBase64(key(n));

describe("value parsers", () => {
  test("fwmark", () => {
    const { e, errs } = env();
    expect([parseFwmark("off", e), parseFwmark("OfF", e), parseFwmark("010", e), parseFwmark("0x1F", e), parseFwmark("4294967295", e)]).toEqual([0, 0, 10, 31, 4294967295]);
    for (const bad of ["0X10", "0x", "-1", "abc", "12z", "4294967296", "", " 1", "0x-1"]) expect(parseFwmark(bad, e)).toBeNull();
    expect(errs[0]).toBe("Fwmark is neither 0/off nor 0-0xffffffff: `0X10'\n");
    expect(errs.length).toBe(9);
  });
  test("keepalive", () => {
    const { e, errs } = env();
    expect([parseKeepalive("OFF", e), parseKeepalive("0", e), parseKeepalive("65535", e)]).toEqual([0, 0, 65535]);
    for (const bad of ["65536", "-1", "+5", "abc", ""]) expect(parseKeepalive(bad, e)).toBeNull();
    expect(errs).toContain("Persistent keepalive interval is neither 0/off nor 1-65535: `+5'\n");
  });
  test("strtoul like glibc", () => {
    expect(strtoul(" +12x", 10)).toEqual({ n: 12n, rest: "x" });
    expect(strtoul("-1", 10).n).toBe(0xffffffffffffffffn);
    expect(strtoul("99999999999999999999999", 10).n).toBe(0xffffffffffffffffn);
    expect(strtoul("0xg", 16)).toEqual({ n: 0n, rest: "xg" });
    expect(strtoul("", 10)).toEqual({ n: 0n, rest: "" });
  });
  test("allowed IPs: entries, masks, warnings", () => {
    const { e, errs } = env();
    const p = emptyPeerConfig();
    expect(parseAllowedIps(p, "10.4.4.4/16,FD00:0:0::1/64,::ffff:1.2.3.4,10.0.0.0/016", e)).toBe(true);
    expect(p.allowedIps.map((a) => a.cidr)).toEqual([16, 64, 128, 16]);
    expect(errs).toEqual(["Warning: AllowedIP has nonzero host part: 10.4.4.4/16\n", "Warning: AllowedIP has nonzero host part: FD00:0:0::1/64\n"]);
    const cases: [string, string][] = [
      ["10.0.0.1,", "Unable to parse IP address: `'\n"],
      ["010.0.0.1", "Unable to parse IP address: `010.0.0.1'\n"],
      ["10.4/16", "Unable to parse IP address: `10.4'\n"],
      ["10.0.0.0/33", "AllowedIP is not in the correct format: `10.0.0.0/33'\n"],
      ["10.0.0.0/+8", "AllowedIP is not in the correct format: `10.0.0.0/+8'\n"],
      ["::/129", "AllowedIP is not in the correct format: `::/129'\n"],
      // Signed entries (1.0.20250521) are named without their one sign.
      ["-", "Unable to parse IP address: `'\n"],
      ["+-10.0.0.1", "Unable to parse IP address: `-10.0.0.1'\n"],
      ["-10.0.0.0/33", "AllowedIP is not in the correct format: `10.0.0.0/33'\n"],
      ["+10.0.0.1,-nope", "Unable to parse IP address: `nope'\n"],
    ];
    for (const [v, msg] of cases) {
      const x = env();
      expect(parseAllowedIps(emptyPeerConfig(), v, x.e)).toBe(false);
      expect(x.errs).toEqual([msg]);
    }
    const empty = emptyPeerConfig();
    expect(parseAllowedIps(empty, "", e)).toBe(true);
    expect([empty.replaceAllowedIps, empty.allowedIps.length]).toEqual([true, 0]);
  });
});

describe("incremental allowed IPs (`+`/`-`, wireguard-tools 1.0.20250521)", () => {
  const entries = (p: { allowedIps: AllowedIp[] }) => p.allowedIps.map((a) => `${a.remove ? "-" : "+"}${Buffer.from(a.addr).join(".")}/${a.cidr}`);
  test("a sign anywhere in a list makes it incremental; unsigned entries add; one sign is taken off", () => {
    const { e, errs } = env();
    const p = emptyPeerConfig();
    expect(parseAllowedIps(p, "10.0.0.1,-10.0.0.2/32,+10.0.0.0/8", e)).toBe(true);
    expect([p.replaceAllowedIps, entries(p), errs]).toEqual([false, ["+10.0.0.1/32", "-10.0.0.2/32", "+10.0.0.0/8"], []]);
    // Each list decides afresh, so the last one of a peer wins (upstream's rule).
    expect(parseAllowedIps(p, "10.0.0.3", e)).toBe(true);
    expect(p.replaceAllowedIps).toBe(true);
    expect(parseAllowedIps(p, "+10.0.0.4", e)).toBe(true);
    expect([p.replaceAllowedIps, p.allowedIps.length]).toEqual([false, 5]);
    // Unsigned lists stay what 1.0.20210914 made of them.
    const q = emptyPeerConfig();
    expect(parseAllowedIps(q, "10.0.0.1,fd00::/8", e)).toBe(true);
    expect([q.replaceAllowedIps, q.allowedIps.some((a) => "remove" in a)]).toEqual([true, false]);
  });
  test("warnings name the entry without its sign; unsigned mode keeps the sign as part of the address", () => {
    const x = env();
    expect(parseAllowedIps(emptyPeerConfig(), "-10.4.4.4/16", x.e)).toBe(true);
    expect(x.errs).toEqual(["Warning: AllowedIP has nonzero host part: 10.4.4.4/16\n"]);
    // wg allowed-ips and the library's lists.
    const y = env();
    expect(parseAllowedIps(emptyPeerConfig(), "-10.0.0.0/8", y.e, false)).toBe(false);
    expect(y.errs).toEqual(["Unable to parse IP address: `-10.0.0.0'\n"]);
  });
  test("wg set and config files: no replace_allowed_ips, removals as allowed_ip=-PREFIX", () => {
    const d = parseSetArgs(["peer", K(8), "allowed-ips", " - 10.0.0.2/32 , 10.0.0.3, +fd00::1/64", "peer", K(9), "allowed-ips", "10.9.0.0/16"], env().e)!;
    expect(buildSetRequest(d)).toBe(
      `set=1\npublic_key=${keyToHex(key(8))}\nallowed_ip=-10.0.0.2/32\nallowed_ip=10.0.0.3/32\nallowed_ip=fd00::1/64\n` +
        `public_key=${keyToHex(key(9))}\nreplace_allowed_ips=true\nallowed_ip=10.9.0.0/16\n\n`,
    );
    const file = `[Peer]\nPublicKey = ${K(8)}\nAllowedIPs = 10.1.0.0/16\nAllowedIPs = - 10.2.0.0/16, +10.3.0.0/16\n[Peer]\nPublicKey = ${K(9)}\nAllowedIPs = -10.4.0.0/16\nAllowedIPs = 10.5.0.0/16\n[Peer]\nPublicKey = ${K(10)}\n`;
    const c = parseConfigFile(file, true, env().e)!;
    expect(c.peers.map((p) => [p.replaceAllowedIps, entries(p)])).toEqual([
      [false, ["+10.1.0.0/16", "-10.2.0.0/16", "+10.3.0.0/16"]],
      [true, ["-10.4.0.0/16", "+10.5.0.0/16"]],
      [true, []],
    ]);
    expect(buildSetRequest(c)).toContain(`public_key=${keyToHex(key(8))}\nallowed_ip=10.1.0.0/16\nallowed_ip=-10.2.0.0/16\nallowed_ip=10.3.0.0/16\n`);
  });
});

describe("endpoints and resolver retries", () => {
  test("splitting", () => {
    const seen: string[][] = [];
    const { e, errs } = env({ resolve: (h, p) => (seen.push([h, p]), { endpoint: "x" }) });
    for (const v of ["[::1]:5", "2001:db8::4:4444", "host:svc", "[fe80::1%lo]:7"]) expect(parseEndpoint(v, e)).toBe("x");
    expect(seen).toEqual([["::1", "5"], ["2001:db8::4", "4444"], ["host", "svc"], ["fe80::1%lo", "7"]]);
    for (const v of ["", "[::1", "[::1]", "[::1]:", "[::1]x5", "1.2.3.4", "1.2.3.4:"]) expect(parseEndpoint(v, e)).toBeNull();
    expect(errs).toEqual([
      "Unable to parse empty endpoint\n",
      "Unable to find matching brace of endpoint: `[::1'\n",
      "Unable to find port of endpoint: `[::1]'\n",
      "Unable to find port of endpoint: `[::1]:'\n",
      "Unable to find port of endpoint: `[::1]x5'\n",
      "Unable to find port of endpoint: `1.2.3.4'\n",
      "Unable to find port of endpoint: `1.2.3.4:'\n",
    ]);
  });
  test("temporary failures retry 15 times with growing delays, then fail", () => {
    const { e, errs, sleeps } = env({ resolve: () => ({ error: "Temporary failure in name resolution", retry: true }) });
    expect(parseEndpoint("h:1", e)).toBeNull();
    expect(sleeps.length).toBe(15);
    expect(sleeps.slice(0, 5)).toEqual([1000000, 1200000, 1440000, 1728000, 2073600]);
    expect(errs.map((l) => /in ([\d.]+) seconds/.exec(l)?.[1] ?? "final")).toEqual([
      "1.00", "1.20", "1.44", "1.73", "2.07", "2.49", "2.99", "3.58", "4.30", "5.16", "6.19", "7.43", "8.92", "10.70", "12.84", "final",
    ]);
    expect(errs[0]).toBe("Temporary failure in name resolution: `h:1'. Trying again in 1.00 seconds...\n");
    expect(errs.at(-1)).toBe("Temporary failure in name resolution: `h:1'\n");
  });
  test("delay caps at 20 s; infinity and 0", () => {
    let n = 0;
    const { e, sleeps } = env({ retries: "infinity", resolve: () => (++n < 40 ? { error: "T", retry: true } : { endpoint: "ok" }) });
    expect(parseEndpoint("h:1", e)).toBe("ok");
    expect(Math.max(...sleeps)).toBe(20000000);
    const z = env({ retries: "0", resolve: () => ({ error: "T", retry: true }) });
    expect(parseEndpoint("h:1", z.e)).toBeNull();
    expect(z.sleeps.length).toBe(0);
  });
  test("permanent failures do not retry; a bad variable exits", () => {
    const p = env({ resolve: () => ({ error: "Name or service not known", retry: false }) });
    expect(parseEndpoint("h:1", p.e)).toBeNull();
    expect(p.errs).toEqual(["Name or service not known: `h:1'\n"]);
    for (const bad of ["abc", "-1", "2147483648", " "]) {
      const b = env({ retries: bad });
      expect(() => parseEndpoint("", b.e)).toThrow(WgExit);
      expect(b.errs).toEqual([`Unable to parse WG_ENDPOINT_RESOLUTION_RETRIES: \`${bad}'\n`]);
    }
  });
});

describe("config files", () => {
  test("messy file equals clean file", () => {
    const clean = `[Interface]\nPrivateKey = ${K(1)}\nListenPort = 43001\n[Peer]\nPublicKey = ${K(2)}\nAllowedIPs = 10.7.0.0/16, 10.8.0.0/16, fd00:8::/64\nEndpoint = h:7\n`;
    const messy = `[interface]\nprivatekey=${K(1)}\nLISTENPORT = 4 3 0 0 1 # comment\n\t[PEER]\n public key = ${K(2)}\nallowedips=10.7.0.0/16\nALLOWEDIPS=10.8.0.0/16,\tfd00:8::/64\n endpoint = h : 7\r\n`;
    const a = parseConfigFile(clean, false, env().e)!, b = parseConfigFile(messy, false, env().e)!;
    expect(buildSetRequest(b)).toBe(buildSetRequest(a));
    expect(buildSetRequest(a)).toBe(
      `set=1\nprivate_key=${keyToHex(key(1))}\nlisten_port=43001\nfwmark=0\nreplace_peers=true\npublic_key=${keyToHex(key(2))}\nendpoint=h:7\nreplace_allowed_ips=true\nallowed_ip=10.7.0.0/16\nallowed_ip=10.8.0.0/16\nallowed_ip=fd00:8::/64\n\n`,
    );
  });
  test("addconf sends only what the file has", () => {
    const c = parseConfigFile(`[Peer]\nPublicKey = ${K(3)}\n`, true, env().e)!;
    expect(buildSetRequest(c)).toBe(`set=1\npublic_key=${keyToHex(key(3))}\nreplace_allowed_ips=true\n\n`);
    expect(buildSetRequest(parseConfigFile("", false, env().e)!)).toBe(`set=1\nprivate_key=${"0".repeat(64)}\nlisten_port=0\nfwmark=0\nreplace_peers=true\n\n`);
  });
  test("errors", () => {
    const cases: [string, string[]][] = [
      ["[Interface]\nAddress = 10.0.0.1/24\n", ["Line unrecognized: `Address=10.0.0.1/24'\n", "Configuration parsing error\n"]],
      [`[Peer]\nAllowedIPs =\n`, ["Line unrecognized: `AllowedIPs='\n", "Configuration parsing error\n"]],
      [`PrivateKey = ${K(1)}\n`, [`Line unrecognized: \`PrivateKey=${K(1)}'\n`, "Configuration parsing error\n"]],
      [`[Peer]\nAllowedIPs = 10.0.0.0/8\n`, ["A peer is missing a public key\n", "Invalid configuration\n"]],
      [`[Interface]\nPrivateKey = abc # c\n`, ["Key is not the correct length or format: `abc'\n", "Configuration parsing error\n"]],
      [`\xef\xbb\xbf[Interface]\n`, ["Line unrecognized: `\xef\xbb\xbf[Interface]'\n", "Configuration parsing error\n"]],
      [`[Interface]\nListenPort = 5\0junk\nFoo\n`, ["Line unrecognized: `Foo'\n", "Configuration parsing error\n"]],
      [`[Peer]x\n`, ["Line unrecognized: `[Peer]x'\n", "Configuration parsing error\n"]],
    ];
    for (const [text, msgs] of cases) {
      const x = env();
      expect(parseConfigFile(text, false, x.e)).toBeNull();
      expect(x.errs).toEqual(msgs);
    }
  });
  test("repeated keys overwrite, AllowedIPs accumulate, sections merge", () => {
    const p = new ConfigParser(env().e, true);
    for (const l of ["[Interface]", "ListenPort=1", "[Peer]", `PublicKey=${K(4)}`, `PublicKey=${K(5)}`, "AllowedIPs=1.1.1.1", "AllowedIPs=2.2.2.2", "[Interface]", "ListenPort=2"]) expect(p.line(l)).toBe(true);
    const d = p.finish()!;
    expect(d.listenPort).toBe(2);
    expect(d.peers.length).toBe(1);
    expect(d.peers[0]!.publicKey).toEqual(key(5));
    expect(d.peers[0]!.allowedIps.length).toBe(2);
  });
});

describe("wg set words", () => {
  test("grammar", () => {
    const files: Record<string, Uint8Array | null> = { a: key(7), z: new Uint8Array(32) };
    const { e, errs } = env({ readKeyFile: (p) => files[p] ?? null });
    const d = parseSetArgs(["fwmark", "1", "listen-port", "5", "fwmark", "2", "private-key", "a", "peer", K(8), "allowed-ips", " 1.2.3.4/32 ,5.6.7.8", "allowed-ips", "9.9.9.9", "remove", "preshared-key", "z", "peer", K(9), "endpoint", "e:1", "persistent-keepalive", "off"], e)!;
    expect(errs).toEqual([]);
    expect(buildSetRequest(d)).toBe(
      `set=1\nprivate_key=${keyToHex(key(7))}\nlisten_port=5\nfwmark=2\npublic_key=${keyToHex(key(8))}\nremove=true\npublic_key=${keyToHex(key(9))}\nendpoint=e:1\npersistent_keepalive_interval=0\n\n`,
    );
    for (const [words, msg] of [
      [["peer", K(8), "listen-port", "1"], "Invalid argument: listen-port\n"],
      [["remove"], "Invalid argument: remove\n"],
      [["listen-port"], "Invalid argument: listen-port\n"],
      [["Listen-Port", "1"], "Invalid argument: Listen-Port\n"],
      [["peer", K(8), "remove", "extra"], "Invalid argument: extra\n"],
    ] as [string[], string][]) {
      const x = env();
      expect(parseSetArgs(words, x.e)).toBeNull();
      expect(x.errs).toEqual([msg]);
    }
  });
  test("key files", () => {
    const enc = (s: string) => new Uint8Array(Buffer.from(s, "latin1"));
    const ok = (head: string, rest = "", atStart0 = true) => keyFromKeyFile({ head: enc(head), headError: false, atStart0, rest: enc(rest) }, env().e);
    expect(ok(K(3), "\n \t")).toEqual(key(3));
    expect(ok("")).toEqual(new Uint8Array(32));
    const x = env();
    expect(keyFromKeyFile({ head: enc(""), headError: false, atStart0: false, rest: enc("") }, x.e)).toBeNull();
    expect(keyFromKeyFile({ head: enc("abc"), headError: false, atStart0: true, rest: enc("") }, x.e)).toBeNull();
    expect(keyFromKeyFile({ head: enc(K(3)), headError: false, atStart0: true, rest: enc("\0") }, x.e)).toBeNull();
    expect(keyFromKeyFile({ head: enc(" " + K(3).slice(0, 43)), headError: false, atStart0: true, rest: enc("=") }, x.e)).toBeNull();
    expect(x.errs).toEqual(["Invalid length key in key file\n", "Invalid length key in key file\n", "Found trailing character in key file: `\0'\n", "Found trailing character in key file: `='\n"]);
  });
});

describe("syncconf and UAPI answers", () => {
  test("removals first, descending key order, replace_peers dropped", () => {
    const file = parseConfigFile(`[Peer]\nPublicKey = ${K(5)}\n`, false, env().e)!;
    const runtime: WgDevice = { name: "x", privateKey: null, publicKey: null, listenPort: 0, fwmark: 0, peers: [] };
    expect(syncConfig(file, runtime).replacePeers).toBe(true);
    runtime.peers = [1, 9, 5, 3].map((n) => ({ publicKey: key(n), presharedKey: null, endpoint: null, lastHandshakeSec: 0n, lastHandshakeNsec: 0n, rxBytes: 0n, txBytes: 0n, persistentKeepalive: 0, allowedIps: [] }));
    const s = syncConfig(file, runtime);
    expect(s.replacePeers).toBe(false);
    expect(s.peers.map((p) => [p.publicKey![0], p.remove])).toEqual([[9, true], [3, true], [1, true], [5, false]]);
  });
  test("get answers", () => {
    const good = `private_key=${keyToHex(key(1))}\nlisten_port=5\nfwmark=7\npublic_key=${keyToHex(key(2))}\npreshared_key=${"0".repeat(64)}\nendpoint=[::1]:9\nlast_handshake_time_sec=3\nrx_bytes=99999999999999999999999\nallowed_ip=10.0.0.0/8\nprivate_key=zz\nerrno=0\n\n`;
    const r = parseGetResponse(good, "n");
    expect(r.ok).toBe(true);
    if (r.ok) {
      expect(r.device.peers[0]!.endpoint).toBe("[::1]:9");
      expect(r.device.peers[0]!.presharedKey).toBeNull();
      expect(r.device.peers[0]!.rxBytes).toBe(0xffffffffffffffffn);
      expect(r.device.listenPort).toBe(5);
    }
    for (const [t, errno] of [["errno=13\n\n", 13], ["errno=-1\n\n", 71], ["\n", 71], ["listen_port=1\n", 71], ["x\nerrno=0\n\n", 71], ["listen_port=65536\nerrno=0\n\n", 71]] as [string, number][])
      expect(parseGetResponse(t, "n")).toEqual({ ok: false, errno });
  });
  test("set answers", () => {
    expect([parseSetResponse("errno=0\n\n"), parseSetResponse("errno=-22\n\n"), parseSetResponse("errno=22\n\n"), parseSetResponse("x=1\n\n"), parseSetResponse(""), parseSetResponse("errno=71\n\n")]).toEqual([0, 22, -22, 71, 71, -71]);
  });
});
