// A QR code's module matrix as terminal text (`wg-quick qr`): UTF-8 half blocks, two module rows
// per line, with the 4-module quiet zone the QR standard asks for. The colours are set
// explicitly (light modules drawn in bright white on a black background, reset at each line's
// end), so the code reads the same on dark and light terminal themes.

/** Quiet zone around the code, in modules (ISO/IEC 18004). */
export const QUIET_ZONE = 4;

export const LINE_START = "\x1b[40;97m";
export const LINE_END = "\x1b[0m";

/** Light module on top / below (or both, or neither) -> the character that draws the light part. */
const BLOCKS = [" ", "\u2584", "\u2580", "\u2588"] as const; // neither, lower, upper, both

/**
 * `dark` holds size*size modules row by row (non-zero = dark). The quiet zone surrounds it on
 * every side; its height is odd, so the last line's lower half is one more light row.
 */
export function qrHalfBlocks(size: number, dark: ArrayLike<number>): string {
  const full = size + 2 * QUIET_ZONE;
  const light = (x: number, y: number) => {
    const cx = x - QUIET_ZONE, cy = y - QUIET_ZONE;
    return cx < 0 || cy < 0 || cx >= size || cy >= size || !dark[cy * size + cx];
  };
  let out = "";
  for (let y = 0; y < full; y += 2) {
    out += LINE_START;
    for (let x = 0; x < full; x++) out += BLOCKS[(light(x, y) ? 2 : 0) + (light(x, y + 1) ? 1 : 0)];
    out += LINE_END + "\n";
  }
  return out;
}
