// What a 64-bit little-endian ELF executable needs from the dynamic linker: its DT_NEEDED
// libraries and, per library, the symbol versions it requires (GLIBC_2.17, ...). The package's
// Depends line is derived from these (dpkg-shlibdeps' job, without dpkg-dev). Reads only the
// header, the section headers and the sections they name, never the whole file.
import { closeSync, openSync, readSync } from "node:fs";

const SHT_DYNAMIC = 6;
const SHT_GNU_VERNEED = 0x6ffffffe;
const DT_NEEDED = 1n;

export interface DynamicNeeds {
  /** DT_NEEDED sonames, in file order. */
  needed: string[];
  /** soname -> version names required from it. */
  versions: Map<string, string[]>;
}

interface Section {
  type: number;
  offset: number;
  size: number;
  link: number;
  info: number;
}

export function readDynamicNeeds(file: string): DynamicNeeds {
  const fd = openSync(file, "r");
  try {
    const read = (offset: number, size: number) => {
      const b = Buffer.alloc(size);
      if (readSync(fd, b, 0, size, offset) !== size) throw new Error(`${file}: truncated ELF`);
      return b;
    };
    const h = read(0, 64);
    if (h.readUInt32BE(0) !== 0x7f454c46 || h[4] !== 2 || h[5] !== 1) throw new Error(`${file}: not a 64-bit little-endian ELF file`);
    const shoff = Number(h.readBigUInt64LE(0x28));
    const shentsize = h.readUInt16LE(0x3a);
    const shnum = h.readUInt16LE(0x3c);
    if (shoff === 0 || shnum === 0) throw new Error(`${file}: no section headers`);
    const table = read(shoff, shentsize * shnum);
    const sections: Section[] = [];
    for (let i = 0; i < shnum; i++) {
      const o = i * shentsize;
      sections.push({
        type: table.readUInt32LE(o + 4),
        offset: Number(table.readBigUInt64LE(o + 24)),
        size: Number(table.readBigUInt64LE(o + 32)),
        link: table.readUInt32LE(o + 40),
        info: table.readUInt32LE(o + 44),
      });
    }
    const body = (s: Section) => read(s.offset, s.size);
    const cstr = (strtab: Buffer, at: number) => strtab.toString("latin1", at, strtab.indexOf(0, at));

    const needed: string[] = [];
    for (const s of sections.filter((x) => x.type === SHT_DYNAMIC)) {
      const dyn = body(s);
      const strtab = body(sections[s.link]!);
      for (let o = 0; o + 16 <= dyn.length; o += 16) {
        const tag = dyn.readBigInt64LE(o);
        if (tag === 0n) break;
        if (tag === DT_NEEDED) needed.push(cstr(strtab, Number(dyn.readBigUInt64LE(o + 8))));
      }
    }

    // Verneed records: {vn_version u16, vn_cnt u16, vn_file u32, vn_aux u32, vn_next u32}, each
    // followed (at vn_aux) by vn_cnt Vernaux {hash u32, flags u16, other u16, name u32, next u32}.
    const versions = new Map<string, string[]>();
    for (const s of sections.filter((x) => x.type === SHT_GNU_VERNEED)) {
      const vn = body(s);
      const strtab = body(sections[s.link]!);
      let o = 0;
      for (let n = 0; n < s.info; n++) {
        const lib = cstr(strtab, vn.readUInt32LE(o + 4));
        const names = versions.get(lib) ?? [];
        let a = o + vn.readUInt32LE(o + 8);
        for (let k = vn.readUInt16LE(o + 2); k > 0; k--) {
          names.push(cstr(strtab, vn.readUInt32LE(a + 8)));
          a += vn.readUInt32LE(a + 12);
        }
        versions.set(lib, names);
        const next = vn.readUInt32LE(o + 12);
        if (next === 0) break;
        o += next;
      }
    }
    return { needed, versions };
  } finally {
    closeSync(fd);
  }
}

/** Sonames of GNU libc on Debian (package libc6 on amd64 and arm64). */
const LIBC6_SONAMES = new Set([
  "libc.so.6",
  "libm.so.6",
  "libpthread.so.0",
  "libdl.so.2",
  "librt.so.1",
  "libresolv.so.2",
  "libutil.so.1",
  "ld-linux-x86-64.so.2",
  "ld-linux-aarch64.so.1",
]);

/** Compares dotted versions numerically ("2.9" < "2.17"). */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(".").map(Number);
  const pb = b.split(".").map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/**
 * The Depends line for `needs`: libc6 at the highest GLIBC_x.y version any of its libraries is
 * asked for. Throws when the executable needs a library outside libc6 (its package would have to
 * be added here).
 */
export function dependsFor(needs: DynamicNeeds): string {
  const foreign = needs.needed.filter((s) => !LIBC6_SONAMES.has(s));
  if (foreign.length) throw new Error(`the executable needs ${foreign.join(", ")}: not in libc6, declare its package`);
  let min = "2.2.5";
  for (const [lib, names] of needs.versions) {
    if (!LIBC6_SONAMES.has(lib)) continue;
    for (const n of names) {
      const m = /^GLIBC_([0-9.]+)$/.exec(n);
      if (m && compareVersions(m[1]!, min) > 0) min = m[1]!;
    }
  }
  return `libc6 (>= ${min})`;
}
