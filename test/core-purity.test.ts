// core/ must stay pure (team rules): no FFI, files, sockets, processes, clocks or timers.
// Time and I/O are injected; this test fails as soon as a file under core/ reaches for them.
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";

const CORE = join(import.meta.dir, "..", "core");

const FORBIDDEN_MODULES = [
  "bun",
  "bun:ffi",
  "fs",
  "node:fs",
  "net",
  "node:net",
  "child_process",
  "node:child_process",
  "dgram",
  "node:dgram",
];

const FORBIDDEN_CALLS: [string, RegExp][] = [
  ["Date.now(", /\bDate\s*\.\s*now\s*\(/],
  ["performance.now(", /\bperformance\s*\.\s*now\s*\(/],
  ["new Date(", /\bnew\s+Date\b/],
  ["process.hrtime", /\bprocess\s*\.\s*hrtime\b/],
  ["setTimeout", /\bsetTimeout\b/],
  ["setInterval", /\bsetInterval\b/],
  ["setImmediate", /\bsetImmediate\b/],
  ["Bun.", /\bBun\s*\./],
];

/** Blank out comments (keeping line numbers); `//` only counts at line start or after whitespace/;{}(, so URLs in strings survive. */
function stripComments(src: string): string {
  return src
    .replace(/\/\*[\s\S]*?\*\//g, (m) => m.replace(/[^\n]/g, " "))
    .replace(/(^|[\s;{}(),])\/\/.*$/gm, "$1");
}

/** Module specifiers a file loads: static/side-effect imports, re-exports, import() and require(). */
function specifiers(src: string): string[] {
  const out: string[] = [];
  const patterns = [
    /\b(?:import|export)\s[^;'"`]*?\bfrom\s*(['"])([^'"]+)\1/g,
    /\bimport\s*(['"])([^'"]+)\1/g,
    /\bimport\s*\(\s*(['"`])([^'"`]+)\1/g,
    /\brequire\s*\(\s*(['"`])([^'"`]+)\1/g,
  ];
  for (const re of patterns) for (const m of src.matchAll(re)) out.push(m[2]!);
  return out;
}

function violations(src: string): string[] {
  const code = stripComments(src);
  const found: string[] = [];
  for (const spec of specifiers(code)) {
    const base = spec.replace(/\/.*$/, ""); // fs/promises -> fs
    if (FORBIDDEN_MODULES.includes(spec) || FORBIDDEN_MODULES.includes(base)) found.push(`imports ${spec}`);
  }
  for (const [name, re] of FORBIDDEN_CALLS) if (re.test(code)) found.push(`uses ${name}`);
  return found;
}

function coreFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...coreFiles(p));
    else if (/\.(ts|tsx|mts|cts|js|mjs|cjs)$/.test(name)) out.push(p);
  }
  return out;
}

describe("core purity", () => {
  test("the scanner catches every forbidden import and call", () => {
    const bad = [
      `import { dlopen } from "bun:ffi";`,
      `import {\n  dlopen,\n} from 'bun:ffi'`,
      `import * as fs from "node:fs";`,
      `import fs from "fs";`,
      `import { readFile } from "fs/promises";`,
      `import { readFile } from "node:fs/promises";`,
      `import "node:net";`,
      `export { connect } from "net";`,
      `const cp = require("child_process");`,
      `const cp = await import("node:child_process");`,
      `import type { Socket } from "node:dgram";`,
      `import dgram from "dgram";`,
      `import { file } from "bun";`,
      `const t = Date.now();`,
      `const t = performance.now();`,
      `const d = new Date();`,
      `const t = process.hrtime.bigint();`,
      `setTimeout(() => {}, 1);`,
      `const h = setInterval(f, 5);`,
      `globalThis.setImmediate(f);`,
      `Bun.write("x", "y");`,
      `const x = 1; Bun.nanoseconds();`,
    ];
    for (const src of bad) expect({ src, bad: violations(src).length > 0 }).toEqual({ src, bad: true });
    const good = [
      `import { blake2s } from "@noble/hashes/blake2.js";`,
      `import { Endpoint } from "./device-api.ts";`,
      `// Date.now() is injected instead\nconst x = 1;`,
      `/* never call setTimeout here; Bun.sleep neither */ export const y = 2;`,
      `const url = "https://example.com/a"; // a Bun.file-free comment`,
      `const frames = "netlink"; const fsm = 1; const Bunny = 3;`,
      `export function tai64n(wallMs: number) { return wallMs; }`,
    ];
    for (const src of good) expect({ src, v: violations(src) }).toEqual({ src, v: [] });
  });

  test("no file under core/ imports I/O modules or reads clocks/timers", () => {
    const files = coreFiles(CORE);
    expect(files.length).toBeGreaterThanOrEqual(2);
    const problems: string[] = [];
    for (const f of files) for (const v of violations(readFileSync(f, "utf8"))) problems.push(`${f}: ${v}`);
    expect(problems).toEqual([]);
  });
});
