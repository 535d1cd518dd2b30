import { describe, expect, test } from "bun:test";
import { AllowedIPs, formatIp, formatPrefix, maskAddr, parseIp, parsePrefix, type Family } from "../core/allowedips.ts";

const vectors = (await Bun.file(new URL("./vectors/allowedips.json", import.meta.url)).json()) as {
  ops: {
    op: "insert" | "lookup" | "remove_by_peer" | "reset" | "expect_entries_for_peer";
    peer?: string;
    prefix?: string;
    ip?: string;
    expect_peer?: string;
    expect_not_peer?: string;
    entries?: string[];
  }[];
};

function mustPrefix(s: string) {
  const p = parsePrefix(s);
  if (p === null) throw new Error(`unparsable prefix ${s}`);
  return p;
}
function mustIp(s: string) {
  const p = parseIp(s);
  if (p === null) throw new Error(`unparsable ip ${s}`);
  return p;
}

describe("allowedips vectors (kernel selftest/allowedips.c)", () => {
  test("all operations", () => {
    const t = new AllowedIPs<string>();
    let lookups = 0;
    for (const op of vectors.ops) {
      switch (op.op) {
        case "insert": {
          const p = mustPrefix(op.prefix!);
          t.insert(p.family, p.addr, p.cidr, op.peer!);
          break;
        }
        case "lookup": {
          const ip = mustIp(op.ip!);
          // Read from an offset inside a larger buffer, as the data path does.
          const buf = new Uint8Array(40);
          buf.set(ip.addr, 7);
          const got = t.lookup(ip.family, buf, 7);
          if (op.expect_peer !== undefined) expect({ ip: op.ip, got }).toEqual({ ip: op.ip, got: op.expect_peer });
          if (op.expect_not_peer !== undefined) expect(got).not.toBe(op.expect_not_peer);
          lookups++;
          break;
        }
        case "remove_by_peer":
          t.removeByPeer(op.peer!);
          break;
        case "reset":
          t.clear();
          break;
        case "expect_entries_for_peer": {
          const got = t.entriesFor(op.peer!).map(formatPrefix);
          expect([...got].sort()).toEqual([...op.entries!].sort());
          // Insertion order, as wireguard-go lists them.
          expect(got).toEqual(op.entries!);
          break;
        }
        default:
          throw new Error(`unknown op ${(op as { op: string }).op}`);
      }
    }
    expect(lookups).toBeGreaterThan(30);
  });
});

describe("allowedips semantics", () => {
  const ins = (t: AllowedIPs<string>, s: string, peer: string) => {
    const p = mustPrefix(s);
    t.insert(p.family, p.addr, p.cidr, peer);
  };
  const look = (t: AllowedIPs<string>, s: string) => {
    const ip = mustIp(s);
    return t.lookup(ip.family, ip.addr, 0);
  };
  const rm = (t: AllowedIPs<string>, s: string, peer: string) => {
    const p = mustPrefix(s);
    return t.remove(p.family, p.addr, p.cidr, peer);
  };

  test("re-insert moves the prefix to the new peer and to the end of the list", () => {
    const t = new AllowedIPs<string>();
    ins(t, "10.0.0.0/8", "a");
    ins(t, "fd00::/8", "a");
    ins(t, "10.1.0.0/16", "a");
    ins(t, "10.0.0.0/8", "a");
    expect(t.entriesFor("a").map(formatPrefix)).toEqual(["fd00::/8", "10.1.0.0/16", "10.0.0.0/8"]);
    ins(t, "10.9.9.9/8", "b");
    expect(t.entriesFor("a").map(formatPrefix)).toEqual(["fd00::/8", "10.1.0.0/16"]);
    expect(t.entriesFor("b").map(formatPrefix)).toEqual(["10.0.0.0/8"]);
    expect(look(t, "10.2.3.4")).toBe("b");
    expect(look(t, "10.1.3.4")).toBe("a");
    expect(look(t, "11.1.3.4")).toBeUndefined();
    expect(look(t, "fd12::1")).toBe("a");
    expect(look(t, "fe12::1")).toBeUndefined();
  });

  test("remove only when owned by the peer; the trie stays consistent", () => {
    const t = new AllowedIPs<string>();
    ins(t, "10.0.0.0/8", "a");
    ins(t, "10.1.0.0/16", "b");
    ins(t, "10.1.1.0/24", "a");
    expect(rm(t, "10.1.0.0/16", "a")).toBe(false);
    expect(rm(t, "10.1.0.0/17", "b")).toBe(false);
    expect(look(t, "10.1.2.3")).toBe("b");
    expect(rm(t, "10.1.0.0/16", "b")).toBe(true);
    expect(rm(t, "10.1.0.0/16", "b")).toBe(false);
    expect(look(t, "10.1.2.3")).toBe("a");
    expect(look(t, "10.1.1.3")).toBe("a");
    expect(t.entriesFor("b")).toEqual([]);
    expect(rm(t, "10.0.0.0/8", "a")).toBe(true);
    expect(look(t, "10.1.2.3")).toBeUndefined();
    expect(look(t, "10.1.1.3")).toBe("a");
    t.removeByPeer("a");
    expect(look(t, "10.1.1.3")).toBeUndefined();
    expect(t.entriesFor("a")).toEqual([]);
    ins(t, "0.0.0.0/0", "c");
    ins(t, "::/0", "d");
    expect(look(t, "1.2.3.4")).toBe("c");
    expect(look(t, "::1")).toBe("d");
    t.clear();
    expect(look(t, "1.2.3.4")).toBeUndefined();
    expect(t.entriesFor("c")).toEqual([]);
  });

  test("v4 and v6 tables are separate, /32 and /128 host routes", () => {
    const t = new AllowedIPs<string>();
    ins(t, "0.0.0.0/0", "v4");
    ins(t, "::ffff:0:0/96", "mapped");
    ins(t, "255.255.255.255/32", "bcast");
    ins(t, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128", "all1");
    expect(look(t, "::ffff:1.2.3.4")).toBe("mapped");
    expect(look(t, "1.2.3.4")).toBe("v4");
    expect(look(t, "255.255.255.255")).toBe("bcast");
    expect(look(t, "255.255.255.254")).toBe("v4");
    expect(look(t, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")).toBe("all1");
    expect(look(t, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe")).toBeUndefined();
  });

  test("insert rejects bad input", () => {
    const t = new AllowedIPs<string>();
    expect(() => t.insert(4, new Uint8Array(4), 33, "a")).toThrow();
    expect(() => t.insert(6, new Uint8Array(4), 8, "a")).toThrow();
    expect(() => t.insert(4, new Uint8Array(4), -1, "a")).toThrow();
  });
});

describe("prefix text", () => {
  test("parsePrefix / formatPrefix canonical forms", () => {
    const cases: [string, string][] = [
      ["10.1.0.20/29", "10.1.0.16/29"],
      ["10.0.0.1", "10.0.0.1/32"],
      ["10.4.4.4/016", "10.4.0.0/16"],
      ["0.0.0.0/0", "0.0.0.0/0"],
      ["1.2.3.4/0", "0.0.0.0/0"],
      ["FD00:0:0::1/64", "fd00::/64"],
      ["fd00::1", "fd00::1/128"],
      ["::/0", "::/0"],
      ["::ffff:10.1.1.1/128", "::ffff:10.1.1.1/128"],
      ["::1.2.3.4/128", "::1.2.3.4/128"],
      ["::0.0.1.0/128", "::100/128"],
      ["::ffff:0:1.2.3.4/128", "::ffff:0:102:304/128"],
      ["64:ff9b::1.2.3.4/128", "64:ff9b::102:304/128"],
      ["1:0:0:1:0:0:0:1/128", "1:0:0:1::1/128"],
      ["1:0:1:0:1:0:1:0/128", "1:0:1:0:1:0:1:0/128"],
      ["0:0:1::/128", "0:0:1::/128"],
      ["0:0:0:0:0:1:0:0/128", "::1:0:0/128"],
      ["1:2:3:4:5:6:7::/128", "1:2:3:4:5:6:7:0/128"],
      ["1:2:3:4:5:6:1.2.3.4/128", "1:2:3:4:5:6:102:304/128"],
      ["0::1.2.3.4/128", "::1.2.3.4/128"],
      ["2607:5300:6d8a:6bf8:dab1:f1df:c05f:1523/21", "2607:5000::/21"],
      ["2404:6800:4004:800:dead:beef:dead:beef/64", "2404:6800:4004:800::/64"],
    ];
    for (const [input, want] of cases) {
      const p = parsePrefix(input);
      expect({ input, got: p === null ? null : formatPrefix(p) }).toEqual({ input, got: want });
    }
  });

  test("parse rejects what inet_pton and wg reject", () => {
    for (const bad of [
      "",
      "/8",
      "10.0.0.0/33",
      "::/129",
      "10.0.0.0/",
      "10.0.0.0/+8",
      "10.0.0.0/x",
      "10.0.0.0/8/8",
      "010.0.0.1/8",
      "10.4/16",
      "0x1.2.3.4",
      "256.1.1.1",
      "1.2.3.4.5",
      "1:2:3:4:5:6:7::8",
      "1.2.3.4::",
      "::01.2.3.4",
      "::00001",
      "1::2::3",
      ":1::2",
      "1::2:",
      ":::",
      "::1.2.3",
      "::1.2.3.4:5",
      "1:2:3:4:5:6:7:8:9",
      "1:2:3:4:5:6:7",
      "1:2:3:4:5:6::1.2.3.4",
      "fe80::1%lo",
      "[::1]",
      "example.com",
    ]) {
      expect({ bad, p: parsePrefix(bad) }).toEqual({ bad, p: null });
    }
  });

  test("formatIp and maskAddr", () => {
    expect(formatIp(4, Uint8Array.of(192, 0, 2, 1))).toBe("192.0.2.1");
    expect(formatIp(6, new Uint8Array(16))).toBe("::");
    expect(formatIp(6, mustIp("::1").addr)).toBe("::1");
    expect(formatIp(6, mustIp("1::").addr)).toBe("1::");
    expect(formatIp(6, mustIp("::2").addr)).toBe("::2");
    expect(maskAddr(Uint8Array.of(255, 255, 255, 255), 13)).toEqual(Uint8Array.of(255, 248, 0, 0));
  });
});

// ---------------------------------------------------------------- randomized against a naive reference

function rng(seed: number) {
  return () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) / 0x1_0000_0000;
  };
}

class NaiveTable {
  private readonly m = new Map<string, string>();
  private key(f: Family, addr: Uint8Array, cidr: number) {
    return `${f}|${cidr}|${Array.from(maskAddr(addr, cidr)).join(".")}`;
  }
  insert(f: Family, addr: Uint8Array, cidr: number, peer: string) {
    this.m.set(this.key(f, addr, cidr), peer);
  }
  remove(f: Family, addr: Uint8Array, cidr: number, peer: string) {
    const k = this.key(f, addr, cidr);
    if (this.m.get(k) !== peer) return false;
    this.m.delete(k);
    return true;
  }
  removeByPeer(peer: string) {
    for (const [k, v] of this.m) if (v === peer) this.m.delete(k);
  }
  count(peer: string) {
    let n = 0;
    for (const v of this.m.values()) if (v === peer) n++;
    return n;
  }
  lookup(f: Family, addr: Uint8Array) {
    for (let c = f === 4 ? 32 : 128; c >= 0; c--) {
      const v = this.m.get(this.key(f, addr, c));
      if (v !== undefined) return v;
    }
    return undefined;
  }
}


/** Walks the private trie: parent links, masked keys, child placement, no useless peerless nodes. */
function checkTrie(t: AllowedIPs<string>, peers: string[]): void {
  const anyT = t as any;
  let owned = 0;
  for (const [root, bits] of [
    [anyT.root4, 32],
    [anyT.root6, 128],
  ] as const) {
    if (root === null) continue;
    expect(root.parent).toBeNull();
    const stack: any[] = [root];
    while (stack.length > 0) {
      const n = stack.pop();
      expect(n.cidr).toBeLessThanOrEqual(bits);
      const words = [n.k0, n.k1, n.k2, n.k3];
      const masks = [n.m0, n.m1, n.m2, n.m3];
      for (let i = 0; i < 4; i++) expect(words[i] & ~masks[i]).toBe(0);
      if (n.peer === undefined) {
        if (n.c0 === null || n.c1 === null) throw new Error(`peerless node /${n.cidr} with < 2 children`);
      } else owned++;
      for (const [bit, c] of [
        [0, n.c0],
        [1, n.c1],
      ] as const) {
        if (c === null) continue;
        expect(c.parent).toBe(n);
        expect(c.cidr).toBeGreaterThan(n.cidr);
        const cw = [c.k0, c.k1, c.k2, c.k3];
        for (let i = 0; i < 4; i++) expect(cw[i] & masks[i]).toBe(words[i]);
        expect((cw[n.cidr >>> 5] >>> (31 - (n.cidr & 31))) & 1).toBe(bit);
        stack.push(c);
      }
    }
  }
  let listed = 0;
  for (const p of peers) listed += t.entriesFor(p).length;
  expect(owned).toBe(listed);
}

describe("allowedips randomized", () => {
  test("thousands of prefixes agree with a linear longest-prefix reference", () => {
    const rnd = rng(0x2545f491);
    const peers = ["p0", "p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8", "p9"];
    const t = new AllowedIPs<string>();
    const ref = new NaiveTable();
    const seeds: Record<Family, Uint8Array[]> = { 4: [], 6: [] };
    const byteChoices = [0, 1, 10, 128, 192, 255];
    const randAddr = (f: Family) => {
      const pool = seeds[f];
      const a = new Uint8Array(f === 4 ? 4 : 16);
      if (pool.length > 0 && rnd() < 0.7) {
        // Near an existing address: copy it and perturb some trailing bits.
        a.set(pool[Math.floor(rnd() * pool.length)]!);
        const from = Math.floor(rnd() * a.length * 8);
        for (let b = from; b < a.length * 8; b++) if (rnd() < 0.5) a[b >> 3]! ^= 0x80 >> (b & 7);
      } else {
        for (let i = 0; i < a.length; i++)
          a[i] = rnd() < 0.5 ? byteChoices[Math.floor(rnd() * byteChoices.length)]! : Math.floor(rnd() * 256);
      }
      return a;
    };
    const randCidr = (f: Family) => {
      const max = f === 4 ? 32 : 128;
      const r = rnd();
      return r < 0.02 ? 0 : r < 0.2 ? max : Math.floor(rnd() * (max + 1));
    };
    const live: { f: Family; addr: Uint8Array; cidr: number; peer: string }[] = [];
    let checks = 0;
    const checkLookups = (n: number) => {
      const buf = new Uint8Array(64);
      for (let i = 0; i < n; i++) {
        const f: Family = rnd() < 0.5 ? 4 : 6;
        const a = randAddr(f);
        const off = Math.floor(rnd() * 40);
        buf.set(a, off);
        const got = t.lookup(f, buf, off);
        const want = ref.lookup(f, a);
        if (got !== want) throw new Error(`lookup ${formatIp(f, a)}: got ${got}, want ${want}`);
        checks++;
      }
    };
    for (let round = 0; round < 4; round++) {
      for (let i = 0; i < 1500; i++) {
        const f: Family = rnd() < 0.5 ? 4 : 6;
        const addr = randAddr(f);
        const cidr = randCidr(f);
        const peer = peers[Math.floor(rnd() * peers.length)]!;
        seeds[f].push(addr);
        t.insert(f, addr, cidr, peer);
        ref.insert(f, addr, cidr, peer);
        live.push({ f, addr, cidr, peer });
      }
      checkLookups(2000);
      checkTrie(t, peers);
      // Single removals, some by the wrong peer.
      for (let i = 0; i < 300; i++) {
        const e = live[Math.floor(rnd() * live.length)]!;
        const peer = rnd() < 0.7 ? e.peer : peers[Math.floor(rnd() * peers.length)]!;
        expect(t.remove(e.f, e.addr, e.cidr, peer)).toBe(ref.remove(e.f, e.addr, e.cidr, peer));
      }
      checkLookups(1000);
      checkTrie(t, peers);
      const victim = peers[Math.floor(rnd() * peers.length)]!;
      t.removeByPeer(victim);
      ref.removeByPeer(victim);
      checkLookups(1000);
      checkTrie(t, peers);
      for (const p of peers) {
        const entries = t.entriesFor(p);
        expect(entries.length).toBe(ref.count(p));
        for (const e of entries) expect(ref.lookup(e.family, e.addr)).toBeDefined();
      }
    }
    expect(checks).toBe(16000);
  });
});

// Speed is measured by bench/, never by a timed unit test; this only checks a big table works.
describe("allowedips: a full table", () => {
  test("10,000 random prefixes of both families answer lookups", () => {
    const t = new AllowedIPs<number>();
    const rnd = rng(99);
    const a = new Uint8Array(16);
    for (let i = 0; i < 5000; i++) {
      for (let j = 0; j < 16; j++) a[j] = Math.floor(rnd() * 256);
      t.insert(4, a, 8 + Math.floor(rnd() * 25), i);
      t.insert(6, a, 16 + Math.floor(rnd() * 113), i);
    }
    const buf = new Uint8Array(1 << 16);
    for (let i = 0; i < buf.length; i++) buf[i] = Math.floor(rnd() * 256);
    let hits = 0;
    for (let i = 0; i < 400_000; i++) {
      const off = (i * 16) & 0xffef;
      if (t.lookup(i & 1 ? 4 : 6, buf, off) !== undefined) hits++;
    }
    expect(hits).toBeGreaterThan(0);
  });
});
