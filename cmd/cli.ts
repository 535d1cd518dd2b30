// What our own commands (the daemon, completions and the extensions beside the original wg and
// wg-quick words) share around citty: plain-text help generated from a command's definition, and
// the strictness citty leaves out. citty takes any option and any number of words; these
// commands answer an option they do not define with their usage error.
import { defineCommand, parseArgs, renderUsage, type ArgsDef, type CommandDef, type ParsedArgs } from "citty";
import { stripVTControlCharacters } from "node:util";

/** `--help` or `-h` anywhere asks for the help text (citty's runMain convention). */
export function wantsHelp(argv: readonly string[]): boolean {
  return argv.includes("--help") || argv.includes("-h");
}

/** The help citty generates for `cmd`, without colours or trailing blanks. */
export async function helpText<T extends ArgsDef>(cmd: CommandDef<T>): Promise<string> {
  return stripVTControlCharacters(await renderUsage(cmd)).replace(/[ \t]+$/gm, "") + "\n";
}

/** The first option citty parsed that `def` does not define, as typed (`-x`, `--name`). */
function unknownOption(parsed: object, def: ArgsDef): string | undefined {
  const known = new Set<string>(["_"]);
  for (const [name, d] of Object.entries(def)) {
    known.add(name);
    if (d.type !== "positional" && "alias" in d) for (const a of [d.alias ?? []].flat()) known.add(a);
  }
  // citty also files each option under its camelCase spelling.
  const kebab = (k: string) => k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
  const key = Object.keys(parsed).find((k) => !known.has(k) && !known.has(kebab(k)));
  return key === undefined ? undefined : `${key.length === 1 ? "-" : "--"}${key}`;
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
  if (unknownOption(parsed, def) !== undefined) return null;
  const positionals = Object.values(def).filter((d) => d.type === "positional").length;
  return parsed._.length > positionals ? null : parsed;
}

/** Prints `NAME: MSG` and where help is; returns the exit status 1. */
export function usageError(name: string, msg: string): number {
  process.stderr.write(`${name}: ${msg}\nTry \`${name} --help'.\n`);
  return 1;
}

/**
 * An extension's arguments, or an exit status after printing its help (0) or a usage error (1).
 * `name` is the command as typed (`wg allowed-ips`); further positionals are the command's to judge.
 */
export async function parseOwnArgs<const T extends ArgsDef>(name: string, description: string, def: T, args: string[]): Promise<ParsedArgs<T> | number> {
  if (wantsHelp(args)) {
    process.stdout.write(await helpText(defineCommand({ meta: { name, description }, args: def })));
    return 0;
  }
  let parsed: ParsedArgs<T>;
  try {
    parsed = parseArgs<T>(args, def);
  } catch (e) {
    return usageError(name, e instanceof Error ? e.message : String(e));
  }
  const unknown = unknownOption(parsed, def);
  if (unknown !== undefined) return usageError(name, `unknown option \`${unknown}'`);
  return parsed;
}
