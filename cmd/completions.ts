// `completions <bash|zsh|fish> [wg|wg-quick]`: prints the completion script shipped inside the
// executable, so `wg completions bash > /etc/bash_completion.d/wg` installs it.
import wgBash from "../completions/wg.bash" with { type: "text" };
import wgQuickBash from "../completions/wg-quick.bash" with { type: "text" };
import wgZsh from "../completions/wg.zsh" with { type: "text" };
import wgFish from "../completions/wg.fish" with { type: "text" };

const SCRIPTS: Record<string, Record<string, string>> = {
  bash: { wg: wgBash, "wg-quick": wgQuickBash },
  zsh: { wg: wgZsh },
  fish: { wg: wgFish },
};

export function completionsMain(args: string[]): number {
  const [shell, tool = "wg"] = args;
  const script = shell ? SCRIPTS[shell]?.[tool] : undefined;
  if (script === undefined || args.length > 2) {
    process.stderr.write("Usage: completions <bash|zsh|fish> [wg|wg-quick]   (wg-quick: bash only)\n");
    return 1;
  }
  process.stdout.write(script);
  return 0;
}
