// Key encodings, units and address formatting used by `wg`, checked against known answers and
// (for the CLI key commands) against the reference binary.
import { describe, expect, test } from "bun:test";
import { clampPrivateKey, publicKey } from "../core/crypto.ts";
import { formatBytes, prettyTime, stripAnsi } from "../core/tools/show.ts";
import { inetNtop6, inetPton4, inetPton6 } from "../core/inet.ts";
import { keyFromBase64, keyFromHex, keyToBase64, keyToHex } from "../core/encoding.ts";
import { ours, real } from "./wg-harness.ts";

const KNOWN: [string, string][] = [
  ["dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=", "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo="],
  ["XasIfmJKikt54X+Lg4AO5m87sSkmGLb9HC+LJ/+I4Os=", "3p7bfXt9wbTTW2HC7OQ1Nz+DQ8hbeGdNrfx+FG+IK08="],
  ["AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "L+V9o0fNYkMVKNqsX7spBzD/9oSvxM/C7ZCZX1jLO3Q="],
  ["//////////////////////////////////////////8=", "hHwNLDdSNPNl5mCVUYejc1oPdhPRYJ06ak2MU66qWiI="],
  ["/////////////////////////////////////////38=", "hHwNLDdSNPNl5mCVUYejc1oPdhPRYJ06ak2MU66qWiI="],
];

describe("keys", () => {
  test("known public keys (clamped internally)", () => {
    for (const [priv, pub] of KNOWN) expect(keyToBase64(publicKey(clampPrivateKey(keyFromBase64(priv)!)))).toBe(pub);
  });
  test("only canonical base64 is accepted", () => {
    const k = KNOWN[0]![0];
    expect(keyFromBase64(k)).not.toBeNull();
    for (const bad of [k.slice(0, 43), k + "=", k.slice(0, 42) + "p=", k.slice(0, 42) + "-=", " " + k.slice(0, 43), k.slice(0, 42) + "==", "A".repeat(44)])
      expect(keyFromBase64(bad)).toBeNull();
    for (const c of "AEIMQUYcgkosw048") expect(keyFromBase64(k.slice(0, 42) + c + "=")).not.toBeNull();
    for (let i = 0; i < 200; i++) {
      const b = crypto.getRandomValues(new Uint8Array(32));
      expect(keyFromBase64(keyToBase64(b))).toEqual(b);
      expect(keyToBase64(b)).toBe(Buffer.from(b).toString("base64"));
      expect(keyFromHex(keyToHex(b).toUpperCase())).toEqual(b);
    }
    expect(keyFromHex("0".repeat(63))).toBeNull();
  });
  test("pubkey CLI equals reference", async () => {
    for (const [priv] of KNOWN) {
      const r = await real(["pubkey"], { stdin: priv + "\n" });
      expect(await ours(["pubkey"], { stdin: priv + "\n" })).toEqual(r);
    }
  }, 60_000);
  test("genkey output is a clamped key whose pubkey the reference agrees with", async () => {
    const k = await ours(["genkey"]);
    const r = await real(["pubkey"], { stdin: k.stdout });
    expect(await ours(["pubkey"], { stdin: k.stdout })).toEqual(r);
  }, 60_000);
});

describe("formatting", () => {
  test("bytes: unit chosen before rounding, C %.2f (half-even on exact ties)", () => {
    const cases: [bigint, string][] = [
      [0n, "0 B"], [1023n, "1023 B"], [1024n, "1.00 KiB"], [1263n, "1.23 KiB"], [1536n, "1.50 KiB"], [1152n, "1.12 KiB"],
      [1048576n, "1.00 MiB"], [1073741823n, "1024.00 MiB"], [5n << 30n, "5.00 GiB"], [1n << 40n, "1.00 TiB"],
      [1n << 50n, "1024.00 TiB"], [(1n << 64n) - 1n, "16777216.00 TiB"],
    ];
    for (const [b, s] of cases) expect(stripAnsi(formatBytes(b))).toBe(s);
  });
  test("durations", () => {
    expect(stripAnsi(prettyTime(63n))).toBe("1 minute, 3 seconds");
    expect(stripAnsi(prettyTime(65535n))).toBe("18 hours, 12 minutes, 15 seconds");
    expect(stripAnsi(prettyTime(365n * 86400n + 86400n + 3661n))).toBe("1 year, 1 day, 1 hour, 1 minute, 1 second");
  });
  test("inet_pton / inet_ntop like glibc", () => {
    expect(inetPton4("010.0.0.1")).toBeNull();
    expect(inetPton4("1.2.3")).toBeNull();
    expect(inetPton4("0.0.0.0")).toEqual(new Uint8Array(4));
    const cases: [string, string][] = [
      ["::", "::"], ["::1", "::1"], ["FD00:0:0::1", "fd00::1"], ["::ffff:1.2.3.4", "::ffff:1.2.3.4"], ["::1.2.3.4", "::1.2.3.4"],
      ["1:0:0:2:0:0:0:3", "1:0:0:2::3"], ["1:0:0:2:0:0:3:4", "1::2:0:0:3:4"], ["0:0:1::", "0:0:1::"], ["1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"],
      ["1::", "1::"], ["::0:0:1:1", "::0.1.0.1"], ["::1:0:0:0:0", "0:0:0:1::"], ["::ffff:0:1.2.3.4", "::ffff:0:102:304"],
    ];
    for (const [i, o] of cases) expect(inetNtop6(inetPton6(i)!)).toBe(o);
    for (const bad of [":1", "1:::2", "1::2::3", "12345::", "1:2:3:4:5:6:7:8:9", "::1.2.3", "fe80::1%lo", "[::1]"]) expect(inetPton6(bad)).toBeNull();
  });
  test("colour stripping drops whole escape sequences only", () => {
    expect(stripAnsi("\x1b[0m\x1b[32m\x1b[1minterface\x1b[0m: \x1b[32mx\x1b[0m\n")).toBe("interface: x\n");
    expect(stripAnsi("a\x1b[")).toBe("a\x1b[");
  });
});

describe("bash completion", () => {
  const complete = (words: string[]) => {
    const script = `source ${import.meta.dir}/../completions/wg.bash; COMP_WORDS=(${words.map((w) => `'${w}'`).join(" ")}); COMP_CWORD=${words.length - 1}; _wg_completion; printf '%s\\n' "\${COMPREPLY[@]}"`;
    const r = Bun.spawnSync(["bash", "-c", script], { stdout: "pipe", stderr: "pipe" });
    return r.stdout.toString().split("\n").filter(Boolean);
  };
  test("subcommands, fields and set options", () => {
    expect(complete(["wg", "se"])).toEqual(["set", "setconf"]);
    expect(complete(["wg", "show", "wg0", "pe"])).toEqual(["peers", "persistent-keepalive"]);
    expect(complete(["wg", "set", "wg0", "f"])).toEqual(["fwmark"]);
    expect(complete(["wg", "set", "wg0", "peer", "KEY", "p"])).toEqual(["peer", "preshared-key", "persistent-keepalive"]);
    expect(complete(["wg", "show", "int"])).toContain("interfaces");
  });
});

describe("completion scripts from the executable", () => {
  const main = `${import.meta.dir}/../cmd/main.ts`;
  test("completions <shell> [tool] prints the shipped files; wg-quick completes commands", async () => {
    for (const [shell, tool, file] of [["bash", "wg", "wg.bash"], ["zsh", "wg", "wg.zsh"], ["fish", "wg", "wg.fish"], ["bash", "wg-quick", "wg-quick.bash"]]) {
      const p = Bun.spawnSync([process.execPath, main, "completions", shell!, tool!]);
      expect(p.exitCode).toBe(0);
      expect(p.stdout.toString()).toBe(await Bun.file(`${import.meta.dir}/../completions/${file}`).text());
    }
    expect(Bun.spawnSync([process.execPath, main, "completions", "tcsh"]).exitCode).toBe(1);
    const q = Bun.spawnSync(["bash", "-c", `source ${import.meta.dir}/../completions/wg-quick.bash; COMP_WORDS=(wg-quick s); COMP_CWORD=1; _wg_quick_completion; printf '%s\\n' "\${COMPREPLY[@]}"`]);
    expect(q.stdout.toString().split("\n").filter(Boolean).sort()).toEqual(["save", "strip"]);
  });
});
