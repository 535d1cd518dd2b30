// `completions <bash|zsh|fish> [wg|wg-quick]`: prints the completion script shipped inside the
// executable, so `wg completions bash > /etc/bash_completion.d/wg` installs it.
import { defineCommand, type ArgsDef } from "citty";
import wgBash from "../completions/wg.bash" with { type: "text" };
import wgQuickBash from "../completions/wg-quick.bash" with { type: "text" };
import wgZsh from "../completions/wg.zsh" with { type: "text" };
import wgFish from "../completions/wg.fish" with { type: "text" };
import { helpText, parseStrict, wantsHelp } from "./cli.ts";

const SCRIPTS: Record<string, Record<string, string>> = {
  bash: { wg: wgBash, "wg-quick": wgQuickBash },
  zsh: { wg: wgZsh },
  fish: { wg: wgFish },
};

const args = {
  shell: { type: "positional", required: true, description: "bash, zsh or fish" },
  tool: { type: "positional", default: "wg", description: "wg or wg-quick (bash only)" },
} as const satisfies ArgsDef;

const command = defineCommand({ meta: { name: "wg completions", description: "Prints a shell completion script" }, args });

export async function completionsMain(argv: string[]): Promise<number> {
  if (wantsHelp(argv)) {
    process.stdout.write(await helpText(command));
    return 0;
  }
  const words = parseStrict(argv, args);
  const script = words ? SCRIPTS[words.shell]?.[words.tool] : undefined;
  if (script === undefined) {
    process.stderr.write("Usage: completions <bash|zsh|fish> [wg|wg-quick]   (wg-quick: bash only)\n");
    return 1;
  }
  process.stdout.write(script);
  return 0;
}
