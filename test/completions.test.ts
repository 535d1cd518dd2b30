// The bash, zsh and fish completion scripts, run by the real shells. A stand-in `wg` first in PATH
// answers `wg show interfaces` and `wg show IF peers`, so no interface is needed. fish completes
// through its own engine (`complete -C`); zsh's completion system needs a terminal, so the
// script's functions run with compadd/_describe/_files/_message replaced by printers and
// `words`/`CURRENT` set as the completion system would set them.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const COMPLETIONS = join(import.meta.dir, "..", "completions");
let dir: string;
let env: Record<string, string>;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "wgt-compl-"));
  const fake = join(dir, "wg");
  writeFileSync(fake, `#!/bin/sh\ncase "$*" in\n  "show interfaces") echo "wgx0 wgy1" ;;\n  "show wgx0 peers") printf 'PEERKEYA=\\nPEERKEYB=\\n' ;;\nesac\n`);
  chmodSync(fake, 0o755);
  env = { ...(process.env as Record<string, string>), PATH: `${dir}:${process.env.PATH}` };
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const lines = (s: string) => s.split("\n").filter(Boolean);

describe("fish", () => {
  const complete = (line: string) => {
    const r = Bun.spawnSync(["fish", "--no-config", "-c", `source ${COMPLETIONS}/wg.fish; complete -C ${JSON.stringify(line)}`], { env, stdout: "pipe", stderr: "pipe" });
    expect(r.stderr.toString()).toBe("");
    return lines(r.stdout.toString()).map((l) => l.split("\t")[0]!);
  };
  test("subcommands with descriptions, interfaces, show fields", () => {
    expect(complete("wg se")).toEqual(["set", "setconf"]);
    expect(complete("wg show ")).toEqual(["all", "interfaces", "wgx0", "wgy1"]);
    expect(complete("wg show wgx0 la")).toEqual(["latest-handshakes"]);
    expect(complete("wg show interfaces ")).toEqual([]);
    expect(complete("wg showconf ")).toEqual(["wgx0", "wgy1"]);
  });
  test("`wg set` offers device options, then peer options after `peer`", () => {
    expect(complete("wg set wgx0 ")).toEqual(["fwmark", "listen-port", "peer", "private-key"]);
    expect(complete("wg set wgx0 peer KEY ")).toEqual(["allowed-ips", "endpoint", "peer", "persistent-keepalive", "preshared-key", "remove"]);
  });
  test("our extensions: events, allowed-ips, exporter and their options", () => {
    expect(complete("wg e")).toEqual(["events", "exporter"]);
    expect(complete("wg events ")).toEqual(["wgx0", "wgy1"]);
    expect(complete("wg allowed-ips --")).toEqual(["--except"]);
    expect(complete("wg exporter --")).toEqual(["--friendly-names", "--listen"]);
    expect(complete("wg exporter ")).toEqual(["wgx0", "wgy1"]);
  });
});

describe("zsh", () => {
  const complete = (...words: string[]) => {
    const script = [
      "compadd() { while [[ $1 == -* ]]; do if [[ $1 == -- ]]; then shift; break; elif [[ $1 == -a ]]; then shift; print -l -- ${(P)1}; shift; else shift; fi; done; (( $# )) && print -l -- \"$@\"; return 0 }",
      "_describe() { local name=${@[-1]}; print -l -- ${${(P)name}%%:*} }",
      "_files() { print -- '<files>' }",
      "_message() { print -- '<message>' }",
      `words=(${words.map((w) => `'${w}'`).join(" ")}); CURRENT=${words.length}`,
      `source ${COMPLETIONS}/wg.zsh`,
    ].join("\n");
    const r = Bun.spawnSync(["zsh", "-f", "-c", script], { env, stdout: "pipe", stderr: "pipe" });
    expect(r.stderr.toString()).toBe("");
    return lines(r.stdout.toString());
  };
  test("subcommands, interfaces, show fields", () => {
    expect(complete("wg", "")).toEqual(["show", "showconf", "set", "setconf", "addconf", "syncconf", "genkey", "genpsk", "pubkey", "events", "allowed-ips", "exporter"]);
    expect(complete("wg", "show", "")).toEqual(["all", "interfaces", "wgx0", "wgy1"]);
    expect(complete("wg", "show", "wgx0", "")).toContain("latest-handshakes");
    expect(complete("wg", "show", "interfaces", "")).toEqual([]);
    expect(complete("wg", "setconf", "wgx0", "")).toEqual(["<files>"]);
  });
  test("`wg set`: device options, peer keys after `peer`, peer options, files for keys", () => {
    expect(complete("wg", "set", "wgx0", "")).toEqual(["listen-port", "fwmark", "private-key", "peer"]);
    expect(complete("wg", "set", "wgx0", "peer", "")).toEqual(["PEERKEYA=", "PEERKEYB="]);
    expect(complete("wg", "set", "wgx0", "peer", "PEERKEYA=", "")).toEqual(["peer", "remove", "preshared-key", "endpoint", "persistent-keepalive", "allowed-ips"]);
    expect(complete("wg", "set", "wgx0", "private-key", "")).toEqual(["<files>"]);
    expect(complete("wg", "set", "wgx0", "listen-port", "")).toEqual(["<message>"]);
  });
  test("our extensions: events, allowed-ips, exporter and their options", () => {
    expect(complete("wg", "events", "")).toEqual(["wgx0", "wgy1"]);
    expect(complete("wg", "allowed-ips", "--")).toEqual(["--except="]);
    expect(complete("wg", "exporter", "")).toEqual(["--listen=", "--friendly-names=", "wgx0", "wgy1"]);
    expect(complete("wg", "exporter", "--friendly-names", "")).toEqual(["<files>"]);
  });
});

describe("bash", () => {
  // Without bash-completion loaded, as in `bash --norc`: the scripts' own fallback splits words.
  const complete = (script: string, ...words: string[]) => {
    const fn = script === "wg.bash" ? "_wg_completion" : "_wg_quick_completion";
    const sh = `source ${COMPLETIONS}/${script}; COMP_WORDS=(${words.map((w) => `'${w}'`).join(" ")}); COMP_CWORD=${words.length - 1}; ${fn}; printf '%s\\n' "\${COMPREPLY[@]}"`;
    const r = Bun.spawnSync(["bash", "--norc", "--noprofile", "-c", sh], { env, stdout: "pipe", stderr: "pipe", cwd: dir });
    expect(r.stderr.toString()).toBe("");
    return lines(r.stdout.toString());
  };
  test("wg: subcommands, interfaces, show fields, `wg set` options, our extensions", () => {
    expect(complete("wg.bash", "wg", "se")).toEqual(["set", "setconf"]);
    expect(complete("wg.bash", "wg", "show", "")).toEqual(["all", "interfaces", "wgx0", "wgy1"]);
    expect(complete("wg.bash", "wg", "set", "wgx0", "peer", "PEERKEYA=", "r")).toEqual(["remove"]);
    expect(complete("wg.bash", "wg", "e")).toEqual(["events", "exporter"]);
    expect(complete("wg.bash", "wg", "events", "")).toEqual(["wgx0", "wgy1", "--help"]);
    expect(complete("wg.bash", "wg", "allowed-ips", "--e")).toEqual(["--except="]);
    expect(complete("wg.bash", "wg", "exporter", "--l")).toEqual(["--listen="]);
  });
  test("wg-quick: commands with reload and qr, then interfaces for down", () => {
    expect(complete("wg-quick.bash", "wg-quick", "")).toEqual(["up", "down", "save", "strip", "reload", "qr", "--help"]);
    expect(complete("wg-quick.bash", "wg-quick", "down", "wg")).toEqual(["wgx0", "wgy1"]);
  });
});

describe("wg completions", () => {
  const run = (...args: string[]) => {
    const r = Bun.spawnSync([process.execPath, join(import.meta.dir, "..", "cmd", "main.ts"), "completions", ...args], { stdout: "pipe", stderr: "pipe" });
    return { code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() };
  };
  const file = (name: string) => Bun.file(join(COMPLETIONS, name)).text();
  const USAGE = "Usage: completions <bash|zsh|fish> [wg|wg-quick]   (wg-quick: bash only)\n";

  test("prints the shipped scripts", async () => {
    expect(run("bash")).toEqual({ code: 0, out: await file("wg.bash"), err: "" });
    expect(run("bash", "wg-quick")).toEqual({ code: 0, out: await file("wg-quick.bash"), err: "" });
    expect(run("zsh", "wg")).toEqual({ code: 0, out: await file("wg.zsh"), err: "" });
    expect(run("fish")).toEqual({ code: 0, out: await file("wg.fish"), err: "" });
  });

  test("anything else is a usage error; --help shows the generated help", () => {
    for (const bad of [[], ["zsh", "wg-quick"], ["powershell"], ["bash", "wg", "extra"], ["bash", "--foo"], ["--", "bash"], ["-x"]]) {
      expect(run(...bad)).toEqual({ code: 1, out: "", err: USAGE });
    }
    const help = run("--help");
    expect(help.code).toBe(0);
    expect(help.out).toContain("USAGE wg completions");
    expect(help.out).toMatch(/SHELL +bash, zsh or fish/);
    expect(help.out).not.toContain("\x1b[");
  });
});
