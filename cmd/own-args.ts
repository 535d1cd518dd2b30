// Argument handling for our own commands (the extensions beside the original wg and wg-quick
// words): citty parses them and generates their --help; an unknown option is an error (citty
// itself lets it through).
import { defineCommand, parseArgs, renderUsage, type ArgsDef, type ParsedArgs } from "citty";
import { isatty } from "../platform/linux/stdio.ts";

/** Prints `NAME: MSG` and where help is; returns the exit status 1. */
export function usageError(name: string, msg: string): number {
  process.stderr.write(`${name}: ${msg}\nTry \`${name} --help'.\n`);
  return 1;
}

/**
 * The parsed arguments, or an exit status after printing the help (0) or an error (1).
 * `name` is the command as typed (`wg allowed-ips`).
 */
export async function parseOwnArgs<const T extends ArgsDef>(name: string, description: string, def: T, args: string[]): Promise<ParsedArgs<T> | number> {
  if (args.includes("--help") || args.includes("-h")) {
    const text = await renderUsage(defineCommand({ meta: { name, description }, args: def }));
    // citty colours its help whatever stdout is; keep escapes off pipes and files.
    process.stdout.write((isatty(1) ? text : text.replace(/\x1b\[[0-9;]*m/g, "")) + "\n");
    return 0;
  }
  let parsed: ParsedArgs<T>;
  try {
    parsed = parseArgs<T>(args, def);
  } catch (e) {
    return usageError(name, e instanceof Error ? e.message : String(e));
  }
  // citty also sets camelCase and kebab-case spellings of each name.
  const norm = (k: string) => k.replace(/-/g, "").toLowerCase();
  const known = new Set(["_", ...Object.keys(def)].map(norm));
  const unknown = Object.keys(parsed).find((k) => !known.has(norm(k)));
  if (unknown !== undefined) return usageError(name, `unknown option \`${unknown.length === 1 ? "-" : "--"}${unknown}'`);
  return parsed;
}
