// wg and wg-quick handle names, paths and file text as byte strings (one char per byte, as
// "latin1" reads them), so they print and compare exactly what the C tool and the bash script
// see. The command line, the environment and the arguments of spawned programs are JS text,
// which Bun decodes from and encodes to UTF-8: these two cross that edge. Bytes that are not
// valid UTF-8 do not survive a round trip through JS text (Bun decodes them as U+FFFD).

/** JS text (from argv, the environment) -> byte string. */
export const toBytes = (s: string) => Buffer.from(s, "utf8").toString("latin1");

/** Byte string -> JS text (for argv of a spawned program, citty, JS paths). */
export const fromBytes = (s: string) => Buffer.from(s, "latin1").toString("utf8");
