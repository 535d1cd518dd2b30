// `wg-quick qr` (extension): the QR code, as a PNG and as terminal text, is decoded by an
// independent decoder (jsQR; PNGs read with pngjs) and must give back the config file's bytes.
// The terminal text is turned back into modules from its half blocks, checked for the quiet
// zone and the colour codes, and drawn as an image for the decoder. Also: the lookup of a bare
// interface name in /etc/wireguard (a private tmpfs in a private mount namespace, so the host's
// directory is never written), the PrivateKey warning, errors, and the compiled executable.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import jsQR from "jsqr";
import { PNG } from "pngjs";
import { compileCommand } from "../build.ts";
import { LINE_END, LINE_START, QUIET_ZONE } from "../core/tools/qr-text.ts";
import { run, type Run } from "./wg-harness.ts";

const MAIN = join(import.meta.dir, "..", "cmd", "main.ts");
const dir = mkdtempSync("/tmp/wgt-qr-");
const quick = (args: string[]) => run([process.execPath, MAIN, "wg-quick", ...args]);

const PRIVATE = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";
const CLIENT = `[Interface]
PrivateKey = ${PRIVATE}
Address = 10.8.0.2/32, fd08::2/128
DNS = 10.8.0.1

[Peer]
# the VPN server; comments and the Address/DNS lines above travel with the file
PublicKey = xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=
PresharedKey = FpCyhws9cxwWoV4xELtfJvjJN+zQVRPISllRWgeopVE=
AllowedIPs = 0.0.0.0/0, ::/0
Endpoint = vpn.example.net:51820
PersistentKeepalive = 25
`;
/** No [Interface] key: nothing secret (and not ASCII-only, to check bytes survive). */
const PEER_ONLY = "[Peer]\nPublicKey = xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=\nAllowedIPs = 10.0.0.0/8\n# caf\u00e9 \u2713\n";

const file = (name: string, text: string | Uint8Array) => {
  const path = join(dir, name);
  writeFileSync(path, text, { mode: 0o600 });
  return path;
};
let client: string, peerOnly: string;
beforeAll(() => {
  client = file("wgqr0.conf", CLIENT);
  peerOnly = file("wgqr1.conf", PEER_ONLY);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** jsQR's reading of an RGBA image: the raw bytes of the code, or null. */
function decodeRgba(rgba: Uint8ClampedArray, width: number, height: number): Uint8Array | null {
  const r = jsQR(rgba, width, height, { inversionAttempts: "dontInvert" });
  return r ? Uint8Array.from(r.binaryData) : null;
}

/** The PNG's code bytes; also checks its quiet zone (the finder's dark ring, 7 modules wide, starts QUIET_ZONE modules in). */
function decodePng(path: string): Uint8Array | null {
  const png = PNG.sync.read(readFileSync(path));
  const dark = (x: number, y: number) => png.data[(y * png.width + x) * 4]! < 128;
  let d = 0;
  while (!dark(d, d)) d++;
  let run = 0;
  while (dark(d + run, d)) run++;
  expect([png.width === png.height, run % 7, d / (run / 7)]).toEqual([true, 0, QUIET_ZONE]);
  return decodeRgba(new Uint8ClampedArray(png.data), png.width, png.height);
}

const UPPER = "\u2580", LOWER = "\u2584", FULL = "\u2588";

/** Terminal text -> rows of modules (true = light), two per line; throws on anything else. */
function halfBlocksToModules(text: string): boolean[][] {
  const lines = text.split("\n");
  expect(lines.pop()).toBe("");
  const rows: boolean[][] = [];
  for (const line of lines) {
    expect(line.startsWith(LINE_START) && line.endsWith(LINE_END)).toBe(true);
    const chars = [...line.slice(LINE_START.length, -LINE_END.length)];
    const top: boolean[] = [], bottom: boolean[] = [];
    for (const c of chars) {
      if (![" ", UPPER, LOWER, FULL].includes(c)) throw new Error(`unexpected character U+${c.codePointAt(0)!.toString(16)}`);
      top.push(c === UPPER || c === FULL);
      bottom.push(c === LOWER || c === FULL);
    }
    rows.push(top, bottom);
  }
  return rows;
}

/** Light modules white, dark ones black, `scale` pixels each. */
function modulesToRgba(rows: boolean[][], scale: number): { rgba: Uint8ClampedArray; width: number; height: number } {
  const width = rows[0]!.length * scale, height = rows.length * scale;
  const rgba = new Uint8ClampedArray(width * height * 4);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const v = rows[(y / scale) | 0]![(x / scale) | 0] ? 255 : 0;
      rgba.set([v, v, v, 255], (y * width + x) * 4);
    }
  return { rgba, width, height };
}

/** The terminal code decodes to `bytes`, with a light quiet zone of QUIET_ZONE modules all round. */
function expectTerminalCode(stdout: string, bytes: Uint8Array): void {
  const rows = halfBlocksToModules(stdout);
  const n = rows[0]!.length;
  // Square plus one light padding row (the zone's height is odd), QR sizes are 17 + 4 * version.
  expect(rows.length).toBe(n + 1);
  expect((n - 2 * QUIET_ZONE - 17) % 4).toBe(0);
  const light = (x: number, y: number) => rows[y]![x];
  for (let i = 0; i < n; i++)
    for (let q = 0; q < QUIET_ZONE; q++) expect([light(q, i), light(n - 1 - q, i), light(i, q), light(i, n - 1 - q), light(i, n)]).toEqual([true, true, true, true, true]);
  // The finder pattern's dark outer ring starts right inside the quiet zone.
  expect(light(QUIET_ZONE, QUIET_ZONE)).toBe(false);
  const img = modulesToRgba(rows, 4);
  expect(decodeRgba(img.rgba, img.width, img.height)).toEqual(bytes);
}

const WARNING = (path: string) => `Warning: \`${path}' contains a PrivateKey: anyone who sees this QR code can use it\n`;

describe("wg-quick qr", () => {
  test("terminal code decodes to the file's bytes; a PrivateKey is warned about but shown", async () => {
    const r = await quick(["qr", client]);
    expect([r.code, r.stderr]).toEqual([0, WARNING(client)]);
    expectTerminalCode(Buffer.from(r.stdout, "latin1").toString("utf8"), readFileSync(client));
  });
  test("--png writes a 0600 PNG that decodes to the file's bytes (no terminal output)", async () => {
    const png = join(dir, "client.png");
    const r = await quick(["qr", "--png", png, client]);
    expect(r).toEqual({ code: 0, stdout: "", stderr: WARNING(client) });
    expect(statSync(png).mode & 0o777).toBe(0o600);
    expect(decodePng(png)).toEqual(new Uint8Array(readFileSync(client)));
  });
  test("no PrivateKey, no warning; non-ASCII bytes survive in both forms", async () => {
    const bytes = new Uint8Array(readFileSync(peerOnly));
    const t = await quick(["qr", peerOnly]);
    expect([t.code, t.stderr]).toEqual([0, ""]);
    const text = Buffer.from(t.stdout, "latin1").toString("utf8");
    expectTerminalCode(text, bytes);
    // The code as the test saw it (colours stripped), for the log.
    console.log(`wg-quick qr of:\n${PEER_ONLY}${text.replaceAll(LINE_START, "").replaceAll(LINE_END, "")}`);
    const png = join(dir, "peer.png");
    expect(await quick(["qr", peerOnly, `--png=${png}`])).toEqual({ code: 0, stdout: "", stderr: "" });
    expect(decodePng(png)).toEqual(bytes);
  });
  test("a PrivateKey is found as wg reads keys: any case, spaces inside; not in a comment", () => {
    const cases: [string, boolean][] = [
      ["[Interface]\n  private key\t= abc\n", true],
      ["[Interface]\nPRIVATEKEY=abc # x\n", true],
      ["[Interface]\n# PrivateKey = abc\n", false],
      ["[Peer]\nPublicKey = abc\n", false],
    ];
    return Promise.all(
      cases.map(async ([text, warned], i) => {
        const path = file(`wgk${i}.conf`, text);
        const r = await quick(["qr", path]);
        expect([r.code, r.stderr]).toEqual([0, warned ? WARNING(path) : ""]);
      }),
    );
  });
  test.skipIf(!existsSync("/etc/wireguard"))("an interface name means /etc/wireguard/NAME.conf, as for up", async () => {
    const png = join(dir, "byname.png");
    // unshare -m: the tmpfs exists only for this shell; the host's /etc/wireguard is never written.
    const script = `mount -t tmpfs -o mode=0700 none /etc/wireguard && cp '${peerOnly}' /etc/wireguard/wgqr9.conf && exec "$@"`;
    const r = await run(["unshare", "-m", "sh", "-c", script, "sh", process.execPath, MAIN, "wg-quick", "qr", "wgqr9", "--png", png]);
    expect(r).toEqual({ code: 0, stdout: "", stderr: "" });
    expect(decodePng(png)).toEqual(new Uint8Array(readFileSync(peerOnly)));
  });
  test("errors: wg-quick's own for the lookup, ours for the rest; exit 1", async () => {
    const big = file("wgbig.conf", "# " + "x".repeat(3000) + "\n");
    const cases: [string[], Run][] = [
      [["qr", join(dir, "nope.conf")], { code: 1, stdout: "", stderr: `wg-quick: \`${join(dir, "nope.conf")}' does not exist\n` }],
      [["qr", join(dir, "client.png")], { code: 1, stdout: "", stderr: "wg-quick: The config file must be a valid interface name, followed by .conf\n" }],
      [["qr"], { code: 1, stdout: "", stderr: "wg-quick qr: Missing required positional argument: CONFIG\nTry `wg-quick qr --help'.\n" }],
      [["qr", client, peerOnly], { code: 1, stdout: "", stderr: `wg-quick qr: one config at a time, not \`${client} ${peerOnly}'\nTry \`wg-quick qr --help'.\n` }],
      [["qr", client, "--svg"], { code: 1, stdout: "", stderr: "wg-quick qr: unknown option `--svg'\nTry `wg-quick qr --help'.\n" }],
      [["qr", client, "--png"], { code: 1, stdout: "", stderr: "wg-quick qr: option `--png' needs a file name\nTry `wg-quick qr --help'.\n" }],
      [["qr", big], { code: 1, stdout: "", stderr: `wg-quick: \`${big}' does not fit in a QR code (3003 bytes): The amount of data is too big to be stored in a QR Code\n` }],
      [["qr", client, "--png", join(dir, "no", "dir.png")], { code: 1, stdout: "", stderr: `${WARNING(client)}wg-quick: Unable to write \`${join(dir, "no", "dir.png")}': No such file or directory\n` }],
    ];
    for (const [args, want] of cases) expect(await quick(args)).toEqual(want);
  });
  test("--help is generated; the original usage text is unchanged", async () => {
    const h = await quick(["qr", "--help"]);
    expect(h.code).toBe(0);
    expect(h.stdout).toContain("USAGE wg-quick qr [OPTIONS] <CONFIG>");
    expect(h.stdout).toContain("--png=<FILE>");
    const u = await quick(["--help"]);
    expect(u.stderr).toStartWith("Usage: wg-quick [ up | down | save | strip ] [ CONFIG_FILE | INTERFACE ]\n");
    expect(u.stderr).not.toContain("qr");
  });
  test("the compiled executable bundles the encoder", async () => {
    const exe = join(dir, "wg");
    const build = Bun.spawnSync(compileCommand(exe), { stdout: "pipe", stderr: "pipe" });
    expect(build.exitCode).toBe(0);
    const png = join(dir, "compiled.png");
    const r = await run([exe, "wg-quick", "qr", peerOnly, "--png", png]);
    expect(r).toEqual({ code: 0, stdout: "", stderr: "" });
    expect(decodePng(png)).toEqual(new Uint8Array(readFileSync(peerOnly)));
    const t = await run([exe, "wg-quick", "qr", peerOnly]);
    expectTerminalCode(Buffer.from(t.stdout, "latin1").toString("utf8"), new Uint8Array(readFileSync(peerOnly)));
  }, 120_000);
});
