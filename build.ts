// Compiles everything into one executable, dist/wg, with dist/wg-quick as a second name for it.
import { $ } from "bun";
import { mkdirSync, rmSync, symlinkSync } from "node:fs";

mkdirSync("dist", { recursive: true });
await $`bun build --compile --minify --sourcemap=none cmd/main.ts --outfile dist/wg`;
for (const name of ["wg-quick"]) {
  rmSync(`dist/${name}`, { force: true });
  symlinkSync("wg", `dist/${name}`);
}
console.log("built dist/wg (+ dist/wg-quick)");
