// `wg-quick qr CONFIG_FILE|INTERFACE [--png FILE]` (extension; the original wg-quick answers
// `qr` with its usage): the config file's bytes, unchanged, as one QR code (byte mode, error
// correction L, as `qrencode` makes them for the mobile apps), printed as terminal text or, with
// --png, written to FILE (mode 0600 when created) instead. The file is found exactly as `up`
// finds it. A PrivateKey in the file draws a warning on stderr, and the code is made anyway.
import { readFileSync, writeFileSync } from "node:fs";
import QRCode from "qrcode";
import type { ArgsDef } from "citty";
import { configLines, stripSpaces } from "../../core/tools/config.ts";
import { QUIET_ZONE, qrHalfBlocks } from "../../core/tools/qr-text.ts";
import { errnoFromCode, strerror } from "../../core/errno.ts";
import { fromBytes, toBytes } from "../bytes.ts";
import { parseOwnArgs, usageError } from "../cli.ts";
import { err } from "./exit.ts";
import { configFileOf } from "./options.ts";

const ARGS = {
  config: { type: "positional", required: true, description: "A config file NAME.conf, or an interface name (/etc/wireguard/NAME.conf)" },
  png: { type: "string", valueHint: "FILE", description: "Write the code as a PNG image to FILE instead of printing it" },
} as const satisfies ArgsDef;

const OPTIONS = { errorCorrectionLevel: "L", margin: QUIET_ZONE } as const;
/** PNG pixels per module. */
const PNG_SCALE = 8;

/** Whether a line of the file sets a PrivateKey, read as wg reads lines (spaces and `#...` dropped, any case). */
function hasPrivateKey(text: string): boolean {
  return configLines(text).some((l) => stripSpaces(l.split("\0")[0]!.split("#")[0]!).toLowerCase().startsWith("privatekey="));
}

/** `prog` is wg-quick's name for messages (a byte string); args (JS text) follow the word `qr`. */
export async function wgQuickQrMain(prog: string, args: string[]): Promise<number> {
  const name = `${fromBytes(prog)} qr`;
  const parsed = await parseOwnArgs(name, "Show a config file as a QR code (for the WireGuard mobile apps)", ARGS, args);
  if (typeof parsed === "number") return parsed;
  if (parsed._.length > 1) return usageError(name, `one config at a time, not \`${parsed._.join(" ")}'`);
  if (parsed.png === "") return usageError(name, "option `--png' needs a file name");
  // parseOwnArgs has answered a missing CONFIG.
  const { configFile } = configFileOf(prog, toBytes(parsed.config!));
  let data: Buffer;
  try {
    data = readFileSync(Buffer.from(configFile, "latin1"));
  } catch (e) {
    err(`${prog}: Unable to read \`${configFile}': ${strerror(errnoFromCode((e as NodeJS.ErrnoException).code))}\n`);
    return 1;
  }
  if (hasPrivateKey(data.toString("latin1")))
    err(`Warning: \`${configFile}' contains a PrivateKey: anyone who sees this QR code can use it\n`);
  const segments = [{ data: new Uint8Array(data), mode: "byte" as const }];
  let code: QRCode.QRCode;
  try {
    code = QRCode.create(segments, OPTIONS);
  } catch (e) {
    err(`${prog}: \`${configFile}' does not fit in a QR code (${data.length} bytes): ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
  if (parsed.png === undefined) {
    process.stdout.write(qrHalfBlocks(code.modules.size, code.modules.data));
    return 0;
  }
  const png = await QRCode.toBuffer(segments, { ...OPTIONS, type: "png", scale: PNG_SCALE });
  try {
    writeFileSync(parsed.png, png, { mode: 0o600 });
  } catch (e) {
    err(`${prog}: Unable to write \`${toBytes(parsed.png)}': ${strerror(errnoFromCode((e as NodeJS.ErrnoException).code))}\n`);
    return 1;
  }
  return 0;
}
