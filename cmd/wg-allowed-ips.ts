// `wg allowed-ips PREFIXES... [--except PREFIXES]...` (extension; the real wg answers "Invalid
// subcommand"): prints on one line the minimal prefix list covering PREFIXES minus the --except
// prefixes, in the form `wg showconf` prints after `AllowedIPs = ` (`0.0.0.0/1, 128.0.0.0/2`),
// or an empty line when nothing is left. The arithmetic is core/tools/prefix-set.ts.
import type { ArgsDef } from "citty";
import { formatPrefixList, parsePrefixLists, subtractPrefixes } from "../core/tools/prefix-set.ts";
import { parseOwnArgs, usageError } from "./cli.ts";

const ARGS = {
  prefixes: {
    type: "positional",
    description: "Addresses to cover, comma-separated as in AllowedIPs (`0.0.0.0/0,::/0`); several arguments add up",
  },
  except: {
    type: "string",
    valueHint: "PREFIX[,PREFIX...]",
    description: "Addresses to leave out; may be repeated",
  },
} as const satisfies ArgsDef;

/** Every value of --except in order: citty keeps only the last of a repeated option. */
function exceptValues(raw: readonly string[]): string[] | null {
  const values: string[] = [];
  for (let i = 0; i < raw.length; i++) {
    const a = raw[i]!;
    if (a === "--") break;
    if (a === "--except") {
      const v = raw[++i];
      if (v === undefined) return null;
      values.push(v);
    } else if (a.startsWith("--except=")) values.push(a.slice("--except=".length));
  }
  return values;
}

export async function wgAllowedIpsMain(argv0: string, args: string[]): Promise<number> {
  const name = `${argv0} allowed-ips`;
  const parsed = await parseOwnArgs(name, "Print the fewest prefixes covering PREFIXES minus the --except prefixes, as one AllowedIPs line", ARGS, args);
  if (typeof parsed === "number") return parsed;
  const exceptText = exceptValues(args);
  if (exceptText === null) return usageError(name, "option `--except' needs a value");
  const err = (s: string) => process.stderr.write(s);
  const include = parsePrefixLists(parsed._, err);
  if (!include) return 1;
  const exclude = parsePrefixLists(exceptText, err);
  if (!exclude) return 1;
  process.stdout.write(formatPrefixList(subtractPrefixes(include, exclude)) + "\n");
  return 0;
}
