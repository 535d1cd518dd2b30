// Differential tests: the reference /usr/bin/wg (wireguard-tools v1.0.20210914) and ours, run on
// identical state, must agree on stdout, stderr and exit status byte for byte. State comes from
// fake UAPI daemons (scripted answers, recorded requests) and from wireguard-go in a private
// network namespace.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, mkdirSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AS_NOBODY, nobodyExecutable } from "./lib-nobody.ts";
import { keyToBase64, keyToHex } from "../core/encoding.ts";
import { publicKey } from "../core/crypto.ts";
import { Lab, waitFor, type Netns } from "./netns.ts";
import { FakeDaemon, MAIN, both, getAnswer, ours, oursAs, real, realAs, run, testKey, type FakeState, type RunOpts } from "./wg-harness.ts";

const TIMEOUT = 170_000;
const dir = mkdtempSync(join(tmpdir(), "wgdiff-"));
// Fake daemons live in a private socket directory and both tools run in a mount namespace that
// sees it as /run/wireguard: hermetic listings, and other test files never see our fakes.
const ISO = mkdtempSync(join(tmpdir(), "wgdiff-sock-"));
let isolateDefault: string | undefined = ISO;
const R = (args: string[], o: RunOpts = {}) => real(args, { isolate: isolateDefault, ...o });
const O = (args: string[], o: RunOpts = {}) => ours(args, { isolate: isolateDefault, ...o });
const file = (name: string, content: string | Uint8Array, mode = 0o600) => {
  const p = join(dir, name);
  writeFileSync(p, typeof content === "string" ? Buffer.from(content, "latin1") : content);
  chmodSync(p, mode);
  return p;
};

async function expectSame(args: string[], o: RunOpts = {}, attempts = 2) {
  const r = await both(args, { isolate: isolateDefault, ...o }, attempts);
  expect({ args, ...r.ours }).toEqual({ args, ...r.real });
  return r.real;
}

const K = (n: number) => keyToBase64(testKey(n));
const PRIV = testKey(1);
const PUBS = [2, 3, 4, 5, 6, 7, 8].map((n) => publicKey(testKey(n)));

const fakes: FakeDaemon[] = [];
async function fake(state: FakeState | (() => FakeState), name?: string) {
  const f = await FakeDaemon.serving(state, name, ISO).start();
  fakes.push(f);
  return f;
}
async function scripted(answer: (req: string) => string) {
  const f = await new FakeDaemon(answer, undefined, ISO).start();
  fakes.push(f);
  return f;
}

afterAll(async () => {
  for (const f of fakes) await f.stop();
  rmSync(dir, { recursive: true, force: true });
  rmSync(ISO, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------

describe("dispatch and usage", () => {
  const cases: string[][] = [
    ["-v"], ["--version"], ["version"], ["--version", "x"], ["-h"], ["--help"], ["help"], ["help", "x"],
    [""], ["Show"], ["--show"], ["bogus", "a", "b"], ["show", "-h"], ["show", "--help"], ["show", "help"],
    ["show", "a", "b", "c"], ["show", "interfaces", "x"], ["showconf"], ["showconf", "a", "b"], ["set"], ["set", "x"],
    ["setconf"], ["setconf", "x"], ["addconf", "x", "y", "z"], ["syncconf"], ["genkey", "x"], ["genkey", "--help"],
    ["genpsk", "-h"], ["pubkey", "x"],
  ];
  for (const args of cases) test(`wg ${args.join(" ")}`, () => expectSame(args), TIMEOUT);

  test("argv[0] is printed verbatim", async () => {
    for (const argv0 of ["/usr/bin/wg", "./wg", "wireguard", "w g"]) {
      for (const args of [["--help"], ["nope"], ["set"], ["show", "a", "b", "c"], ["pubkey"], ["genkey", "x"], ["setconf"]]) {
        const r = await realAs(argv0, args, { stdin: "" });
        const m = await oursAs(argv0, args, { stdin: "" });
        expect({ argv0, args, ...m }).toEqual({ argv0, args, ...r });
      }
    }
  }, TIMEOUT);
});

describe("pubkey/genkey/genpsk", () => {
  const inputs: [string, string][] = [
    ["rfc a", "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=\n"],
    ["rfc b", "XasIfmJKikt54X+Lg4AO5m87sSkmGLb9HC+LJ/+I4Os="],
    ["zero", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"],
    ["ff", "//////////////////////////////////////////8=\n"],
    ["7f", "/////////////////////////////////////////38=\n"],
    ["empty", ""],
    ["short", "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo\n"],
    ["trailing", "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=x\n"],
    ["blanks", "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo= \t\r\n\v\f\0\0 \n"],
    ["leading space", " dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=\n"],
    ["bad key + garbage", "!!!!CnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=zz"],
    ["bad key", "!!!!CnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=\n"],
    ["non-canonical", "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCp=\n"],
    ["no pad", "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCoA\n"],
    ["url-safe", "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LC-=\n"],
    ["nul in key", "dwdtCnMYpX08FsFyUbJm\0d9ML4frwJkqsXf7pR25LCo=\n"],
    ["hex", "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a\n"],
  ];
  for (const [name, input] of inputs) test(`pubkey: ${name}`, () => expectSame(["pubkey"], { stdin: input }), TIMEOUT);

  test("pubkey from /dev/null", async () => {
    const r = await run(["sh", "-c", "wg pubkey </dev/null"]);
    const m = await run(["sh", "-c", `${process.execPath} ${import.meta.dir}/../cmd/main.ts wg pubkey </dev/null`]);
    expect(m).toEqual(r);
  }, TIMEOUT);

  test("odd standard streams", async () => {
    const ourWg = `${process.execPath} ${import.meta.dir}/../cmd/main.ts wg`;
    for (const line of ["pubkey < /", "genkey >&-; echo rc=$?", "genpsk > /dev/null", "show --help 2>&1 >/dev/null", "--help 2>/dev/null"]) {
      const r = await run(["sh", "-c", `wg ${line}`]);
      const m = await run(["sh", "-c", `${ourWg} ${line}`]);
      expect({ line, ...m }).toEqual({ line, ...r });
    }
  }, TIMEOUT);

  test("genkey/genpsk format, clamping and world-accessible warning", async () => {
    for (const cmd of ["genkey", "genpsk"]) {
      const seen: Uint8Array[] = [];
      for (let i = 0; i < 4; i++) {
        const m = await ours([cmd]);
        expect(m.code).toBe(0);
        expect(m.stderr).toBe("");
        expect(m.stdout).toMatch(/^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=\n$/);
        seen.push(Buffer.from(m.stdout.trim(), "base64"));
      }
      if (cmd === "genkey") for (const k of seen) expect([k[0]! & 7, k[31]! & 0xc0]).toEqual([0, 0x40]);
      expect(new Set(seen.map((k) => Buffer.from(k).toString("hex"))).size).toBe(4);
      for (const umask of ["022", "077", "027", "026"]) {
        const sh = (bin: string) => `umask ${umask}; f=${dir}/k-${umask}-$$; rm -f $f; ${bin} ${cmd} > $f; rc=$?; wc -c < $f; rm -f $f; exit $rc`;
        const r = await run(["sh", "-c", sh("wg")]);
        const m = await run(["sh", "-c", sh(`${process.execPath} ${import.meta.dir}/../cmd/main.ts wg`)]);
        expect({ umask, ...m }).toEqual({ umask, ...r });
      }
    }
  }, TIMEOUT);
});

describe("value parsers via wg set (no daemon: parse, then 'Protocol not supported')", () => {
  const ifname = `wt${process.pid % 100000}none`;
  const key = K(9);
  const cases: string[][] = [
    ["listen-port", "51820"], ["listen-port", "+5"], ["listen-port", " 12"], ["listen-port", "00012"],
    ["listen-port", "65536"], ["listen-port", "99999"], ["listen-port", "4294967295"], ["listen-port", "-1"],
    ["listen-port", "abc"], ["listen-port", "12 "], ["listen-port", "1e3"], ["listen-port", "0x10"],
    ["listen-port", "domain"], ["listen-port", "http"], ["listen-port", ""],
    ["fwmark", "0"], ["fwmark", "off"], ["fwmark", "OFF"], ["fwmark", "0x10"], ["fwmark", "0X10"], ["fwmark", "010"],
    ["fwmark", "0x"], ["fwmark", "-1"], ["fwmark", "abc"], ["fwmark", "12z"], ["fwmark", "4294967295"],
    ["fwmark", "4294967296"], ["fwmark", "0xffffffff"], ["fwmark", "0x100000000"], ["fwmark", ""], ["fwmark", " 1"],
    ["Listen-Port", "1"], ["listen-port"], ["bogus"], ["remove"], ["endpoint", "1.2.3.4:5"],
    ["peer", key, "persistent-keepalive", "25"], ["peer", key, "persistent-keepalive", "OfF"],
    ["peer", key, "persistent-keepalive", "65535"], ["peer", key, "persistent-keepalive", "65536"],
    ["peer", key, "persistent-keepalive", "-1"], ["peer", key, "persistent-keepalive", "+5"],
    ["peer", key, "persistent-keepalive", ""], ["peer", key, "persistent-keepalive", "abc"],
    ["peer", key, "persistent-keepalive"], ["peer", key, "remove", "extra"], ["peer", key, "listen-port", "1"],
    ["peer", "abc"], ["peer", key.slice(0, 43) + "B"], ["peer", key + " "], ["peer"],
    ["peer", key, "endpoint", ""], ["peer", key, "endpoint", "[::1"], ["peer", key, "endpoint", "[::1]"],
    ["peer", key, "endpoint", "[::1]:"], ["peer", key, "endpoint", "[::1]x5"], ["peer", key, "endpoint", "1.2.3.4"],
    ["peer", key, "endpoint", "1.2.3.4:"], ["peer", key, "endpoint", "1.2.3.4:abc"], ["peer", key, "endpoint", "1.2.3.4:65536"],
    ["peer", key, "endpoint", "2001:db8::4:4444"], ["peer", key, "endpoint", "[fe80::1%nonexist]:5"],
    ["peer", key, "endpoint", "nonexistent.invalid:5"], ["peer", key, "endpoint", "127.1:5"],
    ["peer", key, "allowed-ips", ""], ["peer", key, "allowed-ips", " 10.0.0.0/8 , fd00::/8 "],
    ["peer", key, "allowed-ips", "10.0.0.1,"], ["peer", key, "allowed-ips", "10.0.0.1,,10.0.0.2"],
    ["peer", key, "allowed-ips", "010.0.0.1"], ["peer", key, "allowed-ips", "10.4/16"], ["peer", key, "allowed-ips", "0x1.2.3.4"],
    ["peer", key, "allowed-ips", "host.example"], ["peer", key, "allowed-ips", "10.0.0.0/33"], ["peer", key, "allowed-ips", "10.0.0.0/+8"],
    ["peer", key, "allowed-ips", "10.0.0.0/x"], ["peer", key, "allowed-ips", "10.0.0.0/"], ["peer", key, "allowed-ips", "10.0.0.0/016"],
    ["peer", key, "allowed-ips", "10.4.4.4/16"], ["peer", key, "allowed-ips", "FD00:0:0::1/64"], ["peer", key, "allowed-ips", "::/129"],
    ["peer", key, "allowed-ips", "[::1]/128"], ["peer", key, "allowed-ips", "fe80::1%lo/64"],
    ["peer", key, "allowed-ips", "1.2.3.4/32,1.2.3.5/24,::1.2.3.4/96"],
    ["peer", key, "preshared-key", "/nonexistent/file"], ["private-key", "/nonexistent/file"],
  ];
  // Unresolvable services are "temporary" resolver errors: allow one retry (1.00 s) instead of 15.
  const retryOnce = { env: { WG_ENDPOINT_RESOLUTION_RETRIES: "1" } };
  for (const words of cases)
    test(`set ${words.join(" ")}`, () => expectSame(["set", ifname, ...words], words.includes("endpoint") ? retryOnce : {}), TIMEOUT);

  // The one extension of the set grammar: signed entries, which 1.0.20210914 cannot parse.
  test("allowed-ips with +/- signs: an error for the real wg, accepted by ours", async () => {
    for (const list of ["-10.0.0.0/8", "+10.0.0.1,-fd00::/8", "10.0.0.1,+10.0.0.2"]) {
      const { real: r, ours: m } = await both(["set", ifname, "peer", key, "allowed-ips", list], { isolate: isolateDefault });
      expect(r).toEqual({ stdout: "", stderr: `Unable to parse IP address: \`${list.split(",").find((e) => /^[-+]/.test(e))!.split("/")[0]}'\n`, code: 1 });
      expect(m).toEqual({ stdout: "", stderr: "Unable to modify interface: Protocol not supported\n", code: 1 });
    }
  }, TIMEOUT);

  test("endpoint resolution retry variable", async () => {
    for (const v of ["abc", "-1", "2147483648", "", " 3", "infinity"]) {
      await expectSame(["set", ifname, "peer", key, "endpoint", "127.0.0.1:1"], { env: { WG_ENDPOINT_RESOLUTION_RETRIES: v } });
      await expectSame(["set", ifname, "peer", key, "endpoint", ""], { env: { WG_ENDPOINT_RESOLUTION_RETRIES: v } });
    }
    // Not validated unless an endpoint is parsed.
    await expectSame(["set", ifname, "listen-port", "1"], { env: { WG_ENDPOINT_RESOLUTION_RETRIES: "abc" } });
  }, TIMEOUT);

  test("key files", async () => {
    const good = K(10);
    const files: [string, string][] = [
      ["good", good + "\n"], ["good-nonl", good], ["blank-tail", good + " \t\r\n\v\f"], ["empty", ""],
      ["short", good.slice(0, 20)], ["trail", good + "x"], ["nul-trail", good + "\0"], ["lead-space", " " + good],
      ["bad", "!" + good.slice(1)], ["nul-in", good.slice(0, 10) + "\0" + good.slice(11)],
    ];
    for (const [name, content] of files) {
      const p = file(`key-${name}`, content);
      await expectSame(["set", ifname, "private-key", p]);
      await expectSame(["set", ifname, "peer", key, "preshared-key", p]);
    }
    await expectSame(["set", ifname, "private-key", "/dev/null"]);
    await expectSame(["set", ifname, "private-key", dir]);
    mkdirSync(join(dir, "noaccess"), { recursive: true });
  }, TIMEOUT);
});

describe("config files (no daemon)", () => {
  const ifname = `wt${process.pid % 100000}none`;
  const k = K(11), k2 = K(12);
  const files: [string, string][] = [
    ["clean", `[Interface]\nPrivateKey = ${k}\nListenPort = 51820\nFwMark = 0x10\n\n[Peer]\nPublicKey = ${k2}\nAllowedIPs = 10.0.0.0/8\n`],
    ["messy", `[interface]\nprivatekey=${k}\nLISTENPORT = 4 3 0 0 1 # comment\n\t[PEER]\n public key = ${k2}\nallowedips=10.7.0.0/16\nALLOWEDIPS=10.8.0.0/16,\tfd00:8::/64\n endpoint = 127.0.0.1 : 7\r\n`],
    ["address", `[Interface]\nAddress = 10.0.0.1/24\n`],
    ["empty-allowed", `[Peer]\nPublicKey = ${k2}\nAllowedIPs =\n`],
    ["before-section", `PrivateKey = ${k}\n`],
    ["wrong-section", `[Interface]\nPublicKey = ${k2}\n`],
    ["bom", `\xef\xbb\xbf[Interface]\nPrivateKey = ${k}\n`],
    ["peer-no-key", `[Interface]\nPrivateKey = ${k}\n[Peer]\nAllowedIPs = 10.0.0.0/8\n`],
    ["peer-x", `[Peer]x\n`],
    ["peers", `[Peers]\n`],
    ["bad-key", `[Interface]\nPrivateKey = abc\n`],
    ["bad-port", `[Interface]\nListenPort = abc\n`],
    ["bad-fwmark", `[Interface]\nFwMark = 0X1\n`],
    ["bad-keepalive", `[Peer]\nPublicKey = ${k2}\nPersistentKeepalive = 70000\n`],
    ["bad-endpoint", `[Peer]\nPublicKey = ${k2}\nEndpoint = [::1\n`],
    ["bad-ip", `[Peer]\nPublicKey = ${k2}\nAllowedIPs = 10.0.0.1/33\n`],
    ["host-bits", `[Peer]\nPublicKey = ${k2}\nAllowedIPs = 10.4.4.4/16, FD00:0:0::1/64\n`],
    ["hash-in-value", `[Peer]\nPublicKey = ${k2}#comment\n`],
    ["nul-line", `[Interface]\nListenPort = 5\0garbage\n`],
    ["empty", ``],
    ["comments-only", `# nothing\n   \n\t# more\n`],
    ["two-errors", `[Interface]\nFoo = 1\nBar = 2\n`],
    ["no-final-newline", `[Interface]\nListenPort = 7`],
    ["psk", `[Peer]\nPublicKey = ${k2}\nPresharedKey = ${k}\nPresharedKey = bad\n`],
    ["wg-quick-in-peer", `[Peer]\nPublicKey = ${k2}\nDNS = 1.1.1.1\n`],
  ];
  for (const [name, content] of files) {
    test(`config ${name}`, async () => {
      const p = file(`conf-${name}.conf`, content);
      for (const cmd of ["setconf", "addconf", "syncconf"]) await expectSame([cmd, ifname, p]);
    }, TIMEOUT);
  }
  test("config file access", async () => {
    for (const cmd of ["setconf", "addconf", "syncconf"]) {
      await expectSame([cmd, ifname, "/nonexistent"]);
      await expectSame([cmd, ifname, dir]);
      await expectSame([cmd, ifname, "/dev/null"]);
    }
  }, TIMEOUT);
});

describe("show and showconf against fake daemons", () => {
  let now0 = 0n;
  const state = (): FakeState => ({
    priv: PRIV,
    port: 51820,
    fwmark: 0xdeadbeef,
    peers: [
      { pub: PUBS[0]!, hsSec: (n) => n + 100n, rx: 1n << 64n, tx: 0n },
      { pub: PUBS[1]!, hsSec: (n) => n - 5n, hsNsec: 900n, tx: 1536n, keepalive: 65535 },
      { pub: PUBS[2]!, endpoint: "[2001:db8::1]:443", allowed: ["0.0.0.0/0", "::/0"], hsSec: (n) => n - 5n, hsNsec: 10n, rx: 1073741823n, tx: 1n << 40n, keepalive: 1 },
      { pub: PUBS[3]!, psk: testKey(40), endpoint: "192.0.2.1:51820", allowed: ["10.0.0.2/32", "fd00::2/128"], hsSec: (n) => n - 63n, rx: 1048576n, tx: 1263n, keepalive: 3661 },
      { pub: PUBS[4]!, hsSec: (n) => n - 86400n, rx: 5n << 30n, tx: 1n << 50n, keepalive: 60 },
      { pub: PUBS[5]!, allowed: ["192.168.0.0/16", "::ffff:10.1.1.1/128", "::1.2.3.4/128", "fe80::/10"], hsSec: (n) => n - (365n * 86400n + 86400n + 3661n), rx: 1023n, tx: 1024n, endpoint: "[fe80::1%1]:5" },
      { pub: PUBS[6]!, hsSec: (n) => n, endpoint: "[::ffff:192.0.2.7]:9", rx: 1152n, tx: 1151n },
    ],
  });
  let f: FakeDaemon, empty: FakeDaemon, nokey: FakeDaemon;
  beforeAll(async () => {
    now0 = BigInt(Math.floor(Date.now() / 1000));
    f = await fake(state);
    empty = await fake({ peers: [] });
    nokey = await fake({ port: 41001, fwmark: 0x1234, peers: [{ pub: PUBS[0]!, hsNsec: 5n }, { pub: PUBS[1]!, hsSec: 7n }] });
  });
  void now0;

  const fields = ["public-key", "private-key", "listen-port", "fwmark", "peers", "preshared-keys", "endpoints", "allowed-ips", "latest-handshakes", "transfer", "persistent-keepalive", "dump", "Dump", "bogus"];
  test("pretty, colour modes, hidden keys", async () => {
    for (const d of [f, empty, nokey]) {
      await expectSame(["show", d.name], {}, 3);
      await expectSame(["show", d.name], { env: { WG_COLOR_MODE: "always" } }, 3);
      await expectSame(["show", d.name], { env: { WG_COLOR_MODE: "Always" } }, 3);
      await expectSame(["show", d.name], { env: { WG_COLOR_MODE: "never", WG_HIDE_KEYS: "never" } }, 3);
      await expectSame(["show", d.name], { env: { WG_COLOR_MODE: "always", WG_HIDE_KEYS: "never" } }, 3);
      await expectSame(["showconf", d.name]);
      for (const field of fields) await expectSame(["show", d.name, field]);
    }
  }, TIMEOUT);

  test("pretty on a TTY (script)", async () => {
    const hasScript = (await run(["sh", "-c", "command -v script"])).code === 0;
    if (!hasScript) return;
    const sh = (bin: string) => ["script", "-qec", `${bin} show ${f.name}`, "/dev/null"];
    for (let i = 0; i < 3; i++) {
      const r = await run(sh("wg"), { isolate: ISO });
      const m = await run(sh(`${process.execPath} ${import.meta.dir}/../cmd/main.ts wg`), { isolate: ISO });
      if (r.stdout === m.stdout || i === 2) {
        expect(m.stdout).toBe(r.stdout);
        break;
      }
    }
  }, TIMEOUT);

  test("many peers, sort stability, big output", async () => {
    const peers = [];
    for (let i = 0; i < 300; i++)
      peers.push({ pub: publicKey(testKey(1000 + i)), hsSec: BigInt(i % 3 === 0 ? 0 : 1700000000 + (i % 7)), hsNsec: BigInt(i % 5), rx: BigInt(i * 1000), allowed: [`10.${i >> 8}.${i & 255}.0/24`] });
    const d = await fake({ priv: PRIV, port: 1, peers });
    for (const args of [["show", d.name], ["show", d.name, "dump"], ["showconf", d.name], ["show", d.name, "allowed-ips"]])
      await expectSame(args, {}, 3);
  }, TIMEOUT);

  test("error answers and malformed answers", async () => {
    const answers = [
      "errno=13\n\n", "errno=2\n\n", "errno=-22\n\n", "errno=x\n\n", "\n", "", "listen_port=5\n", "listen_port=5\nerrno=0\n",
      "listen_port=5\r\nerrno=0\n\n", "listen_port=65536\nerrno=0\n\n", "listen_port=+5\nerrno=0\n\n", "fwmark=4294967296\nerrno=0\n\n",
      "private_key=zz\nerrno=0\n\n", `private_key=${keyToHex(PRIV).toUpperCase()}\nerrno=0\n\n`, "garbage\nerrno=0\n\n",
      "unknown_key=1\nprotocol_version=1\nerrno=0\n\nafter=1\n", "errno=0\nlisten_port=7\n\n", "errno=5\nerrno=0\n\n",
      `public_key=${keyToHex(PUBS[0]!)}\nrx_bytes=99999999999999999999999\ntx_bytes=18446744073709551615\nerrno=0\n\n`,
      `public_key=${keyToHex(PUBS[0]!)}\nlast_handshake_time_sec=9223372036854775808\nerrno=0\n\n`,
      `public_key=${keyToHex(PUBS[0]!)}\nallowed_ip=10.0.0.0\nerrno=0\n\n`,
      `public_key=${keyToHex(PUBS[0]!)}\nallowed_ip=10.0.0.0/33\nerrno=0\n\n`,
      `public_key=${keyToHex(PUBS[0]!)}\nallowed_ip=10.0.0.0/256\nerrno=0\n\n`,
      `public_key=${keyToHex(PUBS[0]!)}\nendpoint=1.2.3.4\nerrno=0\n\n`,
      `public_key=${keyToHex(PUBS[0]!)}\npersistent_keepalive_interval=65536\nerrno=0\n\n`,
      `public_key=${keyToHex(PUBS[0]!)}\npreshared_key=${"0".repeat(64)}\nprivate_key=${keyToHex(PRIV)}\nlisten_port=9\nerrno=0\n\n`,
      `private_key=${"0".repeat(64)}\nerrno=0\n\n`,
      `public_key=${keyToHex(PUBS[0]!)}\nendpoint=localhost:5\nendpoint=[::1%1]:6\nerrno=0\n\n`,
      `public_key=${keyToHex(PUBS[0]!)}\nendpoint=[fe80::1%99]:6\nerrno=0\n\n`,
      `public_key=${keyToHex(PUBS[0]!)}\nendpoint=[fe80::1%lo]:6\nallowed_ip=::ffff:1.2.3.4/128\nerrno=0\n\n`,
    ];
    for (const a of answers) {
      const d = await scripted(() => a);
      await expectSame(["show", d.name]);
      await expectSame(["showconf", d.name]);
      await expectSame(["show", d.name, "dump"]);
      await d.stop();
    }
  }, TIMEOUT);

  test("show all / interfaces / wg (isolated socket directory)", async () => {
    const iso = mkdtempSync(join(tmpdir(), "wgdiff-iso-"));
    const o = { isolate: iso };
    const local: FakeDaemon[] = [];
    const add = async (d: FakeDaemon) => (local.push(await d.start()), d);
    const allArgs = [[], ["show"], ["show", "all"], ["show", "interfaces"], ["show", "all", "dump"], ["show", "all", "endpoints"], ["show", "all", "peers"], ["show", "all", "allowed-ips"], ["show", "all", "bogus"], ["show", "all", "-h"], ["show", "interfaces", "x"]];
    try {
      for (const args of allArgs) await expectSame(args, o); // no interface at all
      await add(FakeDaemon.serving({ peers: [] }, "cd1", iso));
      await add(FakeDaemon.serving(state, "cd0", iso));
      await add(FakeDaemon.serving({ port: 41001, fwmark: 0x1234, peers: [] }, "cd2", iso));
      for (const args of allArgs) await expectSame(args, o, 3);
      await expectSame(["show", "all"], { ...o, env: { WG_COLOR_MODE: "always" } }, 3);
      await add(new FakeDaemon(() => "errno=13\n\n", "zerr", iso));
      for (const args of allArgs) await expectSame(args, o, 3);
      // Only failing interfaces: status 1; a failing last one leaves a trailing blank line.
      for (const d of local.slice(0, 3)) await d.stop();
      for (const args of allArgs) await expectSame(args, o, 3);
      await add(FakeDaemon.serving({ peers: [] }, "x" + "y".repeat(20), iso));
      for (const args of allArgs) await expectSame(args, o, 3);
      await add(FakeDaemon.serving({ peers: [] }, "\u00e9".repeat(9), iso));
      await add(FakeDaemon.serving({ peers: [] }, "e\x1b[1mx\x1b[", iso));
      for (const args of allArgs) await expectSame(args, o, 3);
      await expectSame(["show", "\u00e9".repeat(9)], o);
      await expectSame(["show", "\u00e9".repeat(9), "dump"], o);
      // stdout is block-buffered and stderr is not: merged, the errors come first.
      const peers = [];
      for (let i = 0; i < 200; i++) peers.push({ pub: publicKey(testKey(3000 + i)), allowed: [`10.1.${i}.0/24`] });
      await add(FakeDaemon.serving({ priv: PRIV, peers }, "big", iso));
      for (const args of [["show", "all"], ["show", "all", "dump"], []]) {
        const r = await run(["sh", "-c", 'exec "$@" 2>&1', "sh", "wg", ...args], o);
        const m = await run(["sh", "-c", 'exec "$@" 2>&1', "sh", process.execPath, `${import.meta.dir}/../cmd/main.ts`, "wg", ...args], o);
        expect({ args, ...m }).toEqual({ args, ...r });
      }
      writeFileSync(join(iso, "plain.sock"), "");
      writeFileSync(join(iso, ".sock"), "");
      writeFileSync(join(iso, "notasock"), "");
      mkdirSync(join(iso, "dir.sock"));
      for (const args of [["show", "interfaces"], ["show", "all"]]) await expectSame(args, o, 3);
    } finally {
      for (const d of local) await d.stop().catch(() => {});
      rmSync(iso, { recursive: true, force: true });
    }
  }, TIMEOUT);

  test("non-root user: Permission denied on root-only sockets", async () => {
    const iso = mkdtempSync(join(tmpdir(), "wgdiff-perm-"));
    chmodSync(iso, 0o755);
    const d = await FakeDaemon.serving({ port: 5, peers: [] }, "perm0", iso).start();
    chmodSync(d.path, 0o700);
    const asNobody = (cmd: string[]) => [...AS_NOBODY, ...cmd];
    const exe = nobodyExecutable();
    const wrap = (cmd: string[]) => ["unshare", "-m", "--propagation", "private", "sh", "-c", 'mount --bind "$0" /run/wireguard && exec "$@"', iso, ...asNobody(cmd)];
    try {
      for (const args of [["show", "perm0"], ["show", "all"], ["show", "interfaces"], ["set", "perm0", "listen-port", "1"], ["showconf", "perm0"]]) {
        const r = await run(wrap(["wg", ...args]), { env: { HOME: "/tmp" }, cwd: "/" });
        const m = await run(wrap([exe, "wg", ...args]), { env: { HOME: "/tmp" }, cwd: "/" });
        expect({ args, ...m }).toEqual({ args, ...r });
        if (args.join(" ") === "show perm0") expect(r.stderr).toBe("Unable to access interface: Permission denied\n");
      }
      chmodSync(iso, 0o700);
      for (const args of [["show", "all"], ["show", "interfaces"], [], ["show", "perm0"]]) {
        const r = await run(wrap(["wg", ...args]), { env: { HOME: "/tmp" }, cwd: "/" });
        const m = await run(wrap([exe, "wg", ...args]), { env: { HOME: "/tmp" }, cwd: "/" });
        expect({ args, ...m }).toEqual({ args, ...r });
      }
    } finally {
      await d.stop();
      rmSync(iso, { recursive: true, force: true });
    }
  }, TIMEOUT);

  test("wg with no arguments on the shared directory", async () => {
    // Other test files run busy tunnels here: counters and handshake ages move between the two
    // runs, so those values are masked; names, keys, order and layout must still agree.
    const mask = (t: string) => t.replace(/^( {2}(transfer|latest handshake): ).*$/gm, "$1*");
    let r: Awaited<ReturnType<typeof both>>;
    for (let i = 0; ; i++) {
      r = await both([], { isolate: undefined });
      if (mask(r.real.stdout) === mask(r.ours.stdout) || i === 4) break;
    }
    expect({ ...r.ours, stdout: mask(r.ours.stdout) }).toEqual({ ...r.real, stdout: mask(r.real.stdout) });
  }, TIMEOUT);

  test("no such interface, names with /, stale sockets, non-sockets", async () => {
    await expectSame(["show", "wt-nonexistent"]);
    await expectSame(["show", "../wireguard/x"]);
    await expectSame(["show", "nonexistent", "bogus"]);
    await expectSame(["show", ""]);
    await expectSame(["showconf", "wt-nonexistent"]);
    await expectSame(["set", "wt-nonexistent", "listen-port", "5"]);
    // A regular file named like a socket is ignored.
    const plain = `${ISO}/wt${process.pid % 100000}plain.sock`;
    writeFileSync(plain, "");
    try {
      await expectSame(["show", `wt${process.pid % 100000}plain`]);
    } finally {
      rmSync(plain, { force: true });
    }
    // A stale socket (no listener) is deleted by both tools.
    for (const tool of [R, O]) {
      const name = `wt${process.pid % 100000}stale`;
      const path = `${ISO}/${name}.sock`;
      const py = await run(["python3", "-c", `import socket;s=socket.socket(socket.AF_UNIX);s.bind("${path}")`]);
      expect(py.code).toBe(0);
      const r = await tool(["show", name]);
      expect(r).toEqual({ stdout: "", stderr: "Unable to access interface: Protocol not supported\n", code: 1 });
      expect(existsSync(path)).toBe(false);
    }
  }, TIMEOUT);
});

describe("output into a pipe whose reader has gone", () => {
  // C's stdio write gets EPIPE and the process dies of SIGPIPE; a shell sees 141 (and
  // `set -o pipefail` fails the pipeline). 3000 peers make the dump far larger than a pipe buffer.
  test("`wg show IF dump | head -c 1`: killed by SIGPIPE like the reference, nothing on stderr", async () => {
    const many = await fake({ priv: PRIV, port: 51820, peers: Array.from({ length: 3000 }, (_, i) => ({ pub: testKey(1000 + i), allowed: ["10.0.0.0/8"], tx: BigInt(i) })) });
    const pipe = (wg: string[]) =>
      run(["bash", "-c", 'set -o pipefail; "$@" show "$0" dump | head -c 1 >/dev/null; echo "status ${PIPESTATUS[0]} $?"', many.name, ...wg], { isolate: ISO });
    const r = await pipe(["wg"]);
    const m = await pipe([process.execPath, MAIN, "wg"]);
    expect(r).toEqual({ stdout: "status 141 141\n", stderr: "", code: 0 });
    expect(m).toEqual(r);
  }, TIMEOUT);
});

describe("requests sent (recorded by a fake daemon)", () => {
  async function sameRequests(words: (name: string) => string[], o: RunOpts = {}, answer = "errno=0\n\n", getState?: FakeState) {
    const results = [];
    for (const tool of [R, O]) {
      const d = await scripted((req) => (req.startsWith("get=1") ? getAnswer(getState ?? { peers: [] }, 0n) : answer));
      const r = await tool(words(d.name), o);
      results.push({ ...r, requests: d.requests });
      await d.stop();
    }
    expect({ words: words("IF"), ...results[1] }).toEqual({ words: words("IF"), ...results[0] });
    return results[0]!;
  }
  const key = K(20), key2 = K(21);

  test("wg set, every option", async () => {
    const priv = file("req-priv", K(22) + "\n"), psk = file("req-psk", K(23));
    await sameRequests((n) => ["set", n, "listen-port", "51820"]);
    await sameRequests((n) => ["set", n, "fwmark", "0x10", "listen-port", "1", "fwmark", "16", "private-key", priv]);
    await sameRequests((n) => ["set", n, "private-key", "/dev/null", "fwmark", "off"]);
    await sameRequests((n) => [
      "set", n, "peer", key, "allowed-ips", "10.4.4.4/16, fd00::1/64", "endpoint", "[fe80::1%lo]:5", "persistent-keepalive", "0",
      "preshared-key", psk, "allowed-ips", "::ffff:1.2.3.4", "peer", key2, "remove", "endpoint", "1.2.3.4:5",
      "peer", K(24), "endpoint", "127.0.0.1:7", "allowed-ips", "",
    ]);
    const r = await sameRequests((n) => ["set", n, "peer", key, "endpoint", "localhost:domain", "preshared-key", "/dev/null"]);
    expect(r.requests.at(-1)).toMatch(/^set=1\npublic_key=[0-9a-f]{64}\npreshared_key=0{64}\nendpoint=(127\.0\.0\.1|\[::1\]):53\n\n$/);
    await sameRequests((n) => ["set", n, "peer", key, "peer", key, "allowed-ips", "1.2.3.4"]);
    await sameRequests((n) => ["set", n + "0123456789abcdef", "listen-port", "7"]);
  }, TIMEOUT);

  test("interface names are cut to 15 bytes for set/setconf, not for show", async () => {
    const fifteen = `wt${process.pid % 100000}`.padEnd(15, "t");
    const d = await fake({ port: 3, peers: [] }, fifteen);
    const conf = file("req-trunc.conf", "[Interface]\nListenPort = 9\n");
    for (const args of [["set", fifteen + "XYZ", "listen-port", "5"], ["setconf", fifteen + "X", conf], ["syncconf", fifteen + "X", conf], ["show", fifteen + "X"], ["show", fifteen], ["showconf", fifteen + "X"]]) {
      const before = d.setRequests().length;
      const r = await R(args);
      const reqR = d.setRequests().slice(before);
      const m = await O(args);
      const reqM = d.setRequests().slice(before + reqR.length);
      expect({ args, ...m, reqM }).toEqual({ args, ...r, reqM: reqR });
    }
    expect(d.setRequests().length).toBe(6);
  }, TIMEOUT);

  test("key files and configs from pipes (/dev/stdin)", async () => {
    const ourWg = `${process.execPath} ${import.meta.dir}/../cmd/main.ts wg`;
    const d = await fake({ peers: [] });
    for (const line of [
      `printf '' | WG set ${d.name} private-key /dev/stdin`,
      `printf '%s\n' ${K(80)} | WG set ${d.name} private-key /dev/stdin`,
      `printf '%s' ${K(80)} | WG set ${d.name} peer ${K(81)} preshared-key /dev/stdin`,
      `printf '[Peer]\nPublicKey = %s\n' ${K(81)} | WG addconf ${d.name} /dev/stdin`,
      `WG setconf ${d.name} /dev/stdin < /dev/null`,
      `WG set ${d.name} private-key /dev/stdin < /dev/null`,
      `WG setconf ${d.name} ${dir}`,
    ]) {
      const before = d.setRequests().length;
      const r = await run(["sh", "-c", line.replace("WG", "wg")], { isolate: ISO });
      const reqR = d.setRequests().slice(before);
      const m = await run(["sh", "-c", line.replace("WG", ourWg)], { isolate: ISO });
      const reqM = d.setRequests().slice(before + reqR.length);
      expect({ line, ...m, reqM }).toEqual({ line, ...r, reqM: reqR });
    }
  }, TIMEOUT);

  test("syncconf: reading the device fails", async () => {
    const conf = file("req-sync-fail.conf", `[Peer]\nPublicKey = ${K(82)}\n`);
    for (const a of ["errno=13\n\n", "garbage\n\n"]) {
      const d = await scripted((req) => (req.startsWith("get=1") ? a : "errno=0\n\n"));
      await expectSame(["syncconf", d.name, conf]);
      await expectSame(["syncconf", d.name, file("req-sync-nopeer.conf", "[Interface]\nListenPort = 1\n")]);
      await d.stop();
    }
  }, TIMEOUT);

  test("set error answers", async () => {
    for (const a of ["errno=-22\n\n", "errno=-98\n\n", "errno=-1\n\n", "errno=22\n\n", "errno=0\nerrno=-5\n\n", "x=1\n\n", "\n", "", "garbage\n\n", "errno=abc\n\n", "errno=-2147483648\n\n", "errno=2147483648\n\n", "errno=-71\n\n", "errno=71\n\n"])
      await sameRequests((n) => ["set", n, "listen-port", "1"], {}, a);
  }, TIMEOUT);

  test("setconf / addconf / syncconf requests", async () => {
    const full = file("req-full.conf", `[Interface]\nPrivateKey = ${K(30)}\nListenPort = 7\nFwMark = 9\n[Peer]\nPublicKey = ${K(31)}\nPresharedKey = ${K(32)}\nEndpoint = 127.0.0.1:1\nPersistentKeepalive = off\nAllowedIPs = 10.0.0.0/8\n[Peer]\nPublicKey = ${K(33)}\n[Peer]\nPublicKey = ${K(31)}\nAllowedIPs = 10.1.0.0/16\n`);
    const noPeers = file("req-nopeers.conf", `[Interface]\nListenPort = 8\n`);
    const emptyConf = file("req-empty.conf", ``);
    const runtime: FakeState = { peers: [7, 31, 2, 33, 99, 0].map((n) => ({ pub: testKey(n) })) };
    for (const cmd of ["setconf", "addconf", "syncconf"])
      for (const p of [full, noPeers, emptyConf]) {
        await sameRequests((n) => [cmd, n, p]);
        await sameRequests((n) => [cmd, n, p], {}, "errno=0\n\n", runtime);
      }
    await sameRequests((n) => ["syncconf", n, full], {}, "errno=-22\n\n", runtime);
  }, TIMEOUT);
});

// ---------------------------------------------------------------------------------------------
// Generated inputs: random config files and `wg set` word lists built from valid and invalid
// pieces, applied to a recording fake by both tools (seeded, so failures reproduce).

describe("generated inputs", () => {
  let seed = 0x2545f491;
  const rnd = (n: number) => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % n;
  };
  const pick = <T,>(xs: readonly T[]): T => xs[rnd(xs.length)]!;
  const mixCase = (w: string) => [...w].map((c) => (rnd(2) ? c.toUpperCase() : c.toLowerCase())).join("");
  const blank = () => pick(["", "", " ", "\t", "  ", " \t "]);
  const spaced = (w: string) => (rnd(4) ? w : [...w].join(pick([" ", "\t"])));
  const keys = [K(100), K(101), K(102), K(103)];
  const values: Record<string, string[]> = {
    PrivateKey: [...keys, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "abc", K(104).slice(0, 43) + "B", ""],
    ListenPort: ["51820", "0", "+5", "00012", "65536", "99999", "domain", "abc", "-1", ""],
    FwMark: ["0", "off", "OFF", "0x10", "010", "0xffffffff", "4294967295", "0X10", "4294967296", "0x", "12z", ""],
    PublicKey: [...keys, "bad", ""],
    PresharedKey: [...keys, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "x", ""],
    AllowedIPs: ["10.0.0.0/8", "10.4.4.4/16", "fd00::/8, 10.1.0.0/16", "0.0.0.0/0,::/0", "FD00::1/64", "::ffff:1.2.3.4/128", "10.0.0.0/33", "1.2.3", "10.0.0.1,", ""],
    Endpoint: ["127.0.0.1:1", "[::1]:2", "2001:db8::4:4444", "[fe80::1%lo]:5", "[::1", "1.2.3.4", "1.2.3.4:65536", "1.2.3.4:abc", ""],
    PersistentKeepalive: ["0", "off", "25", "65535", "65536", "+1", ""],
  };
  /** How many leading entries of each pool are valid; invalid ones are drawn 1 time in 8. */
  const validCount: Record<string, number> = { PrivateKey: 5, ListenPort: 7, FwMark: 7, PublicKey: 4, PresharedKey: 5, AllowedIPs: 5, Endpoint: 4, PersistentKeepalive: 4 };
  const value = (key: string) => {
    const pool = values[key]!, n = validCount[key]!;
    return rnd(8) ? pool[rnd(n)]! : pool[n + rnd(pool.length - n)]!;
  };
  const ifaceKeys = ["PrivateKey", "ListenPort", "FwMark"];
  const peerKeys = ["PublicKey", "PresharedKey", "AllowedIPs", "Endpoint", "PersistentKeepalive"];
  function configText(): string {
    const lines: string[] = [];
    let section: "none" | "i" | "p" = "none";
    const n = 1 + rnd(10);
    for (let i = 0; i < n; i++) {
      const r = rnd(20);
      if (r < 3) {
        lines.push(blank() + mixCase("[Interface]") + blank());
        section = "i";
      } else if (r < 6) {
        lines.push(blank() + mixCase("[Peer]") + blank());
        section = "p";
        if (rnd(4)) lines.push(`PublicKey = ${pick(keys)}`);
      } else if (r < 7) lines.push(rnd(6) ? pick(["# comment", "", "   ", "\r"]) : pick(["Address = 10.0.0.1/24", "[Peers]", "junk", "DNS = 1.1.1.1"]));
      else {
        const key = section === "p" || (section === "none" && !rnd(6)) ? pick(peerKeys) : pick(ifaceKeys);
        const v = value(key);
        lines.push(`${blank()}${spaced(rnd(3) ? key : mixCase(key))}${blank()}=${blank()}${v}${rnd(5) ? "" : " # c"}${rnd(8) ? "" : "\r"}`);
      }
    }
    return lines.join("\n") + (rnd(3) ? "\n" : "");
  }
  function setWords(): string[] {
    const w: string[] = [];
    const n = 1 + rnd(6);
    let inPeer = false;
    for (let i = 0; i < n; i++) {
      const r = rnd(12);
      if (r < 3) {
        w.push("peer", pick([...keys, "bad"]));
        inPeer = true;
        if (!rnd(5)) w.push("remove");
      } else if (!inPeer || r < 4) {
        const opt = pick(["listen-port", "fwmark", "private-key"]);
        w.push(opt, opt === "listen-port" ? value("ListenPort") : opt === "fwmark" ? value("FwMark") : pick([keyFile, "/dev/null", "/nonexistent"]));
      } else {
        const opt = pick(["endpoint", "allowed-ips", "persistent-keepalive", "preshared-key", "remove", "bogus"]);
        if (opt === "remove" || opt === "bogus") w.push(opt);
        else w.push(opt, opt === "endpoint" ? value("Endpoint") : opt === "allowed-ips" ? value("AllowedIPs") : opt === "persistent-keepalive" ? value("PersistentKeepalive") : pick([keyFile, "/dev/null", badKeyFile]));
      }
    }
    if (!rnd(6)) w.pop();
    return w;
  }
  let keyFile = "", badKeyFile = "";
  const noRetry = { env: { WG_ENDPOINT_RESOLUTION_RETRIES: "0" } };

  async function compare(args: (name: string) => string[]) {
    const runtime: FakeState = { peers: [keys[0]!, K(105), keys[3]!].map((k) => ({ pub: Buffer.from(k, "base64") })) };
    const d = await fake(runtime);
    const rR = await R(args(d.name), noRetry);
    const reqR = d.setRequests();
    d.requests.length = 0;
    const rO = await O(args(d.name), noRetry);
    const reqO = d.setRequests();
    await d.stop();
    expect({ args: args("IF"), ...rO, req: reqO }).toEqual({ args: args("IF"), ...rR, req: reqR });
    return rR.code;
  }

  test("random config files via setconf/addconf/syncconf", async () => {
    seed = 0x2545f491 + 1; // each test reproducible on its own
    keyFile = file("gen-key", K(106) + "\n");
    badKeyFile = file("gen-badkey", K(106) + "x");
    const codes: number[] = [];
    for (let i = 0; i < 30; i++) {
      const p = file(`gen-${i}.conf`, configText());
      const cmd = pick(["setconf", "addconf", "syncconf"]);
      codes.push(await compare((n) => [cmd, n, p]));
    }
    // The generator must exercise both outcomes.
    expect(codes.filter((c) => c === 0).length).toBeGreaterThan(3);
    expect(codes.filter((c) => c === 1).length).toBeGreaterThan(3);
  }, TIMEOUT);

  test("random daemon answers via show/showconf/dump", async () => {
    seed = 0x2545f491 + 2; // each test reproducible on its own
    const hex = (k: string) => Buffer.from(k, "base64").toString("hex");
    const devLines = [`private_key=${hex(K(107))}`, `private_key=${hex(K(107)).toUpperCase()}`, "listen_port=51820", "listen_port=0", "fwmark=4294967295", "protocol_version=1"];
    const badDevLines = ["private_key=00", "listen_port=65536", "fwmark=x", "bogus"];
    const peerLines = [
      `public_key=${hex(K(108))}`, `public_key=${hex(K(109))}`, `public_key=${hex(K(108))}`,
      `preshared_key=${hex(K(110))}`, `preshared_key=${"0".repeat(64)}`, "endpoint=127.0.0.1:5", "endpoint=[::1]:6", "endpoint=[fe80::1%1]:7",
      "last_handshake_time_sec=1", "last_handshake_time_sec=1700000000", "last_handshake_time_nsec=5", "last_handshake_time_sec=99999999999",
      "rx_bytes=1263", "tx_bytes=18446744073709551615", "persistent_keepalive_interval=25",
      "allowed_ip=10.0.0.0/8", "allowed_ip=fd00::/64", "allowed_ip=10.0.0.1/32", "allowed_ip=::ffff:1.2.3.4/128", "private_key=00", "listen_port=9",
    ];
    const badPeerLines = ["public_key=zz", "endpoint=1.2.3.4", "rx_bytes=x", "persistent_keepalive_interval=65536", "allowed_ip=1.2.3.4/40"];
    const ends = ["errno=0\n\n", "errno=0\n\n", "errno=0\n\n", "errno=0\n\n", "errno=0\n\n", "errno=13\n\n", "errno=-1\n\n", "\n", ""];
    const codes: number[] = [];
    for (let i = 0; i < 30; i++) {
      const lines: string[] = [];
      for (let j = rnd(4); j > 0; j--) lines.push(pick(rnd(10) ? devLines : badDevLines));
      for (let j = rnd(14); j > 0; j--) lines.push(pick(rnd(20) ? peerLines : badPeerLines));
      const answer = lines.map((l) => l + "\n").join("") + pick(ends);
      const d = await scripted(() => answer);
      for (const args of [["show", d.name], ["showconf", d.name], ["show", d.name, "dump"]]) {
        // "N seconds ago" moves with the clock: retry when the two runs straddled a second.
        const { real: r, ours: m } = await both(args, { isolate: ISO }, 3);
        expect({ answer, args, ...m }).toEqual({ answer, args, ...r });
        codes.push(r.code);
      }
      await d.stop();
    }
    expect(codes.filter((c) => c === 0).length).toBeGreaterThan(5);
  }, TIMEOUT);

  test("random wg set word lists", async () => {
    seed = 0x2545f491 + 3; // each test reproducible on its own
    keyFile = file("gen-key", K(106) + "\n");
    badKeyFile = file("gen-badkey", K(106) + "x");
    const codes: number[] = [];
    for (let i = 0; i < 30; i++) {
      const words = setWords();
      codes.push(await compare((n) => ["set", n, ...words]));
    }
    expect(codes.filter((c) => c === 0).length).toBeGreaterThan(3);
    expect(codes.filter((c) => c === 1).length).toBeGreaterThan(3);
  }, TIMEOUT);
});

// ---------------------------------------------------------------------------------------------
// wireguard-go: the same commands must leave a real daemon in the same state.

const DAEMONS: [string, (name: string) => string[]][] = [
  ["wireguard-go", (name) => ["wireguard-go", name]],
  ["our daemon", (name) => [process.execPath, `${import.meta.dir}/../cmd/main.ts`, "daemon", name]],
];

for (const [kind, launch] of DAEMONS)
describe(`against ${kind}`, () => {
  let lab: Lab;
  let ns: Netns;
  const name = `wt${process.pid % 100000}${kind === "wireguard-go" ? "g" : "o"}`;
  let ok = false;
  beforeAll(async () => {
    isolateDefault = undefined;
    lab = new Lab(kind === "wireguard-go" ? "wgdiffg" : "wgdiffo");
    ns = lab.ns("a");
    const r = ns.run(launch(name));
    ok = r.code === 0 && (await waitFor(() => existsSync(`/var/run/wireguard/${name}.sock`), 5000));
  }, TIMEOUT);
  afterAll(async () => {
    isolateDefault = ISO;
    ns?.run(["ip", "link", "del", name]);
    await waitFor(() => !existsSync(`/var/run/wireguard/${name}.sock`), 3000);
    rmSync(`/var/run/wireguard/${name}.sock`, { force: true });
    await lab?.cleanup();
  });

  /** The daemon's state as the reference prints it, peers sorted (wireguard-go's map order is random). */
  async function snapshot(): Promise<string> {
    const r = await real(["show", name, "dump"]);
    const [head, ...peers] = r.stdout.split("\n").filter(Boolean);
    return [r.code, r.stderr, head, ...peers.sort()].join("\n");
  }
  const reset = file("go-reset.conf", "[Interface]\nListenPort = 40000\n");

  async function sameEffect(steps: string[][]) {
    const snaps: string[] = [];
    const outs: unknown[] = [];
    for (const tool of [real, ours]) {
      expect((await real(["setconf", name, reset])).code).toBe(0);
      const o = [];
      for (const s of steps) o.push(await tool(s));
      outs.push(o);
      snaps.push(await snapshot());
    }
    expect(snaps[0]).toMatch(/^0\n\n/);
    expect({ steps, snap: snaps[1], outs: outs[1] }).toEqual({ steps, snap: snaps[0], outs: outs[0] });
  }

  test("setconf/addconf/syncconf/set leave the same state", async () => {
    expect(ok).toBe(true);
    const k1 = K(50), k2 = K(51), k3 = K(52);
    const full = file("go-full.conf", `[Interface]\nPrivateKey = ${K(53)}\nListenPort = 40001\nFwMark = 0x20\n\n[Peer]\nPublicKey = ${k1}\nPresharedKey = ${K(54)}\nEndpoint = 127.0.0.1:9\nAllowedIPs = 10.4.4.4/16, fd00::1/64\nPersistentKeepalive = 25\n\n[Peer]\nPublicKey = ${k2}\nAllowedIPs = 10.5.0.0/16\n`);
    const add = file("go-add.conf", `[Peer]\nPublicKey = ${k3}\nAllowedIPs = 10.5.0.0/24\n[Peer]\nPublicKey = ${k1}\n`);
    const sync = file("go-sync.conf", `[Interface]\nListenPort = 40002\n[Peer]\nPublicKey = ${k2}\nEndpoint = [::1]:7\n`);
    const keyf = file("go-key", K(55) + "\n");
    await sameEffect([["setconf", name, full]]);
    await sameEffect([["setconf", name, full], ["addconf", name, add]]);
    await sameEffect([["setconf", name, full], ["syncconf", name, sync]]);
    await sameEffect([["setconf", name, full], ["set", name, "peer", k1, "remove", "peer", k2, "allowed-ips", "", "persistent-keepalive", "7", "endpoint", "127.0.0.1:65536"]]);
    await sameEffect([["set", name, "listen-port", "40003", "fwmark", "0xff", "private-key", keyf, "peer", k3, "preshared-key", keyf, "allowed-ips", "0.0.0.0/0,::/0"]]);
    await sameEffect([["set", name, "private-key", keyf, "peer", publicKeyB64(K(55))]]);
    await sameEffect([["set", name, "peer", k1, "protocol", "1"]]);
  }, TIMEOUT);

  test("hostname endpoints: temporary resolver failures are retried (no DNS in the namespace)", async () => {
    expect(ok).toBe(true);
    const inNs = (tool: "real" | "ours", args: string[], o: RunOpts) =>
      run(["ip", "netns", "exec", ns.name, ...(tool === "real" ? ["wg"] : [process.execPath, `${import.meta.dir}/../cmd/main.ts`, "wg"]), ...args], o);
    const conf = file("go-dns.conf", `[Peer]\nPublicKey = ${K(70)}\nEndpoint = wg-test.example.com:51820\n`);
    const cases: [string[], Record<string, string>][] = [
      [["set", name, "peer", K(70), "endpoint", "wg-test.example.com:51820"], { WG_ENDPOINT_RESOLUTION_RETRIES: "2" }],
      [["set", name, "peer", K(70), "endpoint", "wg-test.example.com:51820"], { WG_ENDPOINT_RESOLUTION_RETRIES: "0" }],
      [["setconf", name, conf], { WG_ENDPOINT_RESOLUTION_RETRIES: "1" }],
      [["set", name, "peer", K(70), "endpoint", "localhost:7"], {}],
      [["set", name, "peer", K(70), "endpoint", "[fe80::1%lo]:7"], {}],
    ];
    for (const [args, env] of cases) {
      const r = await inNs("real", args, { env });
      const m = await inNs("ours", args, { env });
      expect({ args, ...m }).toEqual({ args, ...r });
      const snapR = await snapshot();
      expect(snapR).toMatch(/^0\n/);
    }
  }, TIMEOUT);

  test("show/showconf/fields of a wireguard-go device", async () => {
    expect(ok).toBe(true);
    const one = file("go-one.conf", `[Interface]\nPrivateKey = ${K(60)}\nListenPort = 40010\nFwMark = 0x1234\n[Peer]\nPublicKey = ${K(61)}\nPresharedKey = ${K(62)}\nEndpoint = [::1]:51002\nAllowedIPs = 10.0.2.0/24, fd00:2::/64, 10.9.9.9/16\nPersistentKeepalive = 25\n`);
    expect((await real(["setconf", name, one])).code).toBe(0);
    for (const args of [["show", name], ["showconf", name], ...["public-key", "private-key", "listen-port", "fwmark", "peers", "preshared-keys", "endpoints", "allowed-ips", "latest-handshakes", "transfer", "persistent-keepalive", "dump"].map((f) => ["show", name, f])])
      await expectSame(args, {}, 3);
    await expectSame(["show", name], { env: { WG_COLOR_MODE: "always" } }, 3);
    // Errors reported by the daemon on set.
    await expectSame(["set", name, "peer", K(61), "endpoint", "[fe80::1%lo]:5"]);
    const empty = file("go-empty.conf", "");
    expect((await real(["setconf", name, empty])).code).toBe(0);
    await expectSame(["show", name, "listen-port"].slice(0, 2).concat(["private-key"]));
  }, TIMEOUT);

  test("after a real handshake: times, counters, endpoints", async () => {
    expect(ok).toBe(true);
    // A second namespace with a wireguard-go peer, joined by a veth pair.
    const nsB = lab.ns("b");
    lab.veth(ns, nsB, { a: ["10.201.0.1/24"], b: ["10.201.0.2/24"] });
    const peerName = `${name}p`;
    expect(nsB.run(["wireguard-go", peerName]).code).toBe(0);
    expect(await waitFor(() => existsSync(`/var/run/wireguard/${peerName}.sock`), 5000)).toBe(true);
    try {
      const [privA, privB] = [testKey(90), testKey(91)];
      const confA = file("hs-a.conf", `[Interface]\nPrivateKey = ${keyToBase64(privA)}\nListenPort = 40100\n[Peer]\nPublicKey = ${keyToBase64(publicKey(privB))}\nEndpoint = 10.201.0.2:40101\nAllowedIPs = 10.202.0.2/32\n`);
      const confB = file("hs-b.conf", `[Interface]\nPrivateKey = ${keyToBase64(privB)}\nListenPort = 40101\n[Peer]\nPublicKey = ${keyToBase64(publicKey(privA))}\nAllowedIPs = 10.202.0.1/32\n`);
      expect((await real(["setconf", name, confA])).code).toBe(0);
      expect((await real(["setconf", peerName, confB])).code).toBe(0);
      ns.sh(`ip addr add 10.202.0.1/24 dev ${name} && ip link set ${name} up`);
      nsB.sh(`ip addr add 10.202.0.2/24 dev ${peerName} && ip link set ${peerName} up`);
      expect(await waitFor(() => ns.run(["ping", "-c1", "-W1", "10.202.0.2"]).code === 0, 10000)).toBe(true);
      for (const n of [name, peerName]) {
        const hs = await real(["show", n, "latest-handshakes"]);
        expect(hs.stdout).toMatch(/\t[1-9]\d+\n$/);
        for (const args of [["show", n], ["show", n, "dump"], ["show", n, "transfer"], ["show", n, "endpoints"], ["showconf", n]])
          await expectSame(args, {}, 3);
        await expectSame(["show", n], { env: { WG_COLOR_MODE: "always" } }, 3);
      }
    } finally {
      nsB.run(["ip", "link", "del", peerName]);
      await waitFor(() => !existsSync(`/var/run/wireguard/${peerName}.sock`), 3000);
      rmSync(`/var/run/wireguard/${peerName}.sock`, { force: true });
    }
  }, TIMEOUT);
});

function publicKeyB64(priv: string): string {
  return keyToBase64(publicKey(Buffer.from(priv, "base64")));
}
