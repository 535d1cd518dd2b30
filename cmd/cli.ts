// What our own commands (`wg daemon`, `wg completions`) share around citty: plain-text help
// generated from a command's definition, and the strictness citty leaves out. citty takes any
// option and any number of words; these commands answer an option they do not define, a word too
// many or a `--` with their usage error, as they did before citty parsed them.
import { parseArgs, renderUsage, type ArgsDef, type CommandDef, type ParsedArgs } from "citty";
import { stripVTControlCharacters } from "node:util";

/** `--help` or `-h` anywhere asks for the help text (citty's runMain convention). */
export function wantsHelp(argv: readonly string[]): boolean {
  return argv.includes("--help") || argv.includes("-h");
}

/** The help citty generates for `cmd`, without colours or trailing blanks. */
export async function helpText<T extends ArgsDef>(cmd: CommandDef<T>): Promise<string> {
  return stripVTControlCharacters(await renderUsage(cmd)).replace(/[ \t]+$/gm, "") + "\n";
}

/**
 * citty's parse of argv against `def`; null when argv has an option `def` does not define, more
 * words than its positionals, a `--`, or lacks a required positional.
 */
export function parseStrict<T extends ArgsDef>(argv: string[], def: T): ParsedArgs<T> | null {
  if (argv.includes("--")) return null;
  let parsed: ParsedArgs<T>;
  try {
    parsed = parseArgs<T>(argv, def);
  } catch {
    return null; // a required positional is missing
  }
  const known = new Set<string>();
  let positionals = 0;
  for (const [name, d] of Object.entries(def)) {
    known.add(name);
    if (d.type === "positional") positionals++;
    else if ("alias" in d) for (const a of [d.alias ?? []].flat()) known.add(a);
  }
  // citty also files each option under its camelCase spelling.
  const kebab = (k: string) => k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
  for (const key of Object.keys(parsed)) if (key !== "_" && !known.has(key) && !known.has(kebab(key))) return null;
  return parsed._.length > positionals ? null : parsed;
}
