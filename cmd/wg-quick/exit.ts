// How wg-quick speaks and stops: stderr byte for byte, the reference's `die`, and the status a
// step leaves with (bash `exit N`, or a failed command under `set -e`).
/** Leaves wg-quick with a status (bash `exit N`, or a failed command under `set -e`). */
export class Exit {
  constructor(readonly code: number) {}
}

/** stderr, byte for byte (interface names and config text are byte strings, one char per byte). */
export const err = (s: string) => process.stderr.write(Buffer.from(s, "latin1"));

/** The reference's `die`: `PROG: MESSAGE` and status 1. */
export function die(prog: string, msg: string): never {
  err(`${prog}: ${msg}\n`);
  throw new Exit(1);
}
