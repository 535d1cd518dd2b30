// UAPI get/set semantics of core/uapi-server.ts against wireguard-go 0.0.20220316 behaviour
// (wg-tools.md §9): field order, errno values, peer selection rules, values applied as read.
import { describe, expect, test } from "bun:test";
import { clampPrivateKey, generatePrivateKey, publicKey } from "../core/crypto.ts";
import { createDevice } from "../core/device.ts";
import type { DeviceEvent } from "../core/device-api.ts";
import { Endpoint } from "../core/endpoint.ts";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const Z = "00".repeat(32);

function mk() {
  const binds: [number, number][] = [];
  const events: DeviceEvent[] = [];
  let failBind: number | null = null;
  let t = 1000;
  const dev = createDevice(
    {
      sendUdp() {},
      writeTun() {},
      bind(port, fwmark) {
        binds.push([port, fwmark]);
        if (failBind !== null && (port === failBind || failBind === -1)) {
          const e = new Error("address in use") as Error & { errno: number };
          e.errno = 98;
          throw e;
        }
        return port === 0 ? 43210 : port;
      },
      event: (e) => events.push(e),
    },
    { mono: () => t, wall: () => 1_700_000_000_000 + t },
  );
  return {
    dev,
    binds,
    events,
    set: (body: string) => dev.uapi(`set=1\n${body}\n`).response,
    get: () => dev.uapi("get=1\n\n").response,
    failBind: (p: number | null) => {
      failBind = p;
    },
  };
}

const k1 = generatePrivateKey();
const k2 = generatePrivateKey();
const k3 = generatePrivateKey();
const p1 = hex(publicKey(k1));
const p2 = hex(publicKey(k2));
const p3 = hex(publicKey(k3));

describe("get", () => {
  test("empty device answers only errno=0", () => {
    expect(mk().get()).toBe("errno=0\n\n");
  });

  test("full output in wireguard-go's order", () => {
    const d = mk();
    const own = generatePrivateKey();
    expect(
      d.set(
        `private_key=${hex(own)}\nlisten_port=51820\nfwmark=16\n` +
          `public_key=${p1}\npreshared_key=${"ab".repeat(32)}\nendpoint=192.0.2.1:51820\npersistent_keepalive_interval=25\n` +
          `allowed_ip=10.0.0.0/24\nallowed_ip=fd00::1/64\n` +
          `public_key=${p2}\nallowed_ip=10.0.1.5/32\n`,
      ),
    ).toBe("errno=0\n\n");
    expect(d.get()).toBe(
      `private_key=${hex(own)}\nlisten_port=51820\nfwmark=16\n` +
        `public_key=${p1}\npreshared_key=${"ab".repeat(32)}\nprotocol_version=1\nendpoint=192.0.2.1:51820\n` +
        `last_handshake_time_sec=0\nlast_handshake_time_nsec=0\ntx_bytes=0\nrx_bytes=0\npersistent_keepalive_interval=25\n` +
        `allowed_ip=10.0.0.0/24\nallowed_ip=fd00::/64\n` +
        `public_key=${p2}\npreshared_key=${Z}\nprotocol_version=1\n` +
        `last_handshake_time_sec=0\nlast_handshake_time_nsec=0\ntx_bytes=0\nrx_bytes=0\npersistent_keepalive_interval=0\n` +
        `allowed_ip=10.0.1.5/32\n` +
        `errno=0\n\n`,
    );
  });

  test("trailing character after get=1 is EINVAL; several operations per request", () => {
    const d = mk();
    expect(d.dev.uapi("get=1\nx")).toEqual({ response: "errno=-22\n\n", close: false });
    expect(d.dev.uapi("get=1\n\nget=1\n\n")).toEqual({ response: "errno=0\n\nerrno=0\n\n", close: false });
    expect(d.dev.uapi("set=1\nfwmark=3\n\nget=1\n\n")).toEqual({ response: "errno=0\n\nfwmark=3\nerrno=0\n\n", close: false });
  });

  test("unknown operation or truncated request closes without an answer", () => {
    const d = mk();
    expect(d.dev.uapi("foo=1\n\n")).toEqual({ response: "", close: true });
    expect(d.dev.uapi("get=1\n")).toEqual({ response: "", close: true });
    expect(d.dev.uapi("get=1\n\nfoo=1\n\n")).toEqual({ response: "errno=0\n\n", close: true });
    expect(d.dev.uapi("")).toEqual({ response: "", close: false });
  });
});

describe("set: device keys", () => {
  test("private key is clamped; zero removes it", () => {
    const d = mk();
    const raw = new Uint8Array(32).fill(0xff);
    expect(d.set(`private_key=${hex(raw)}\n`)).toBe("errno=0\n\n");
    expect(d.get()).toBe(`private_key=${hex(clampPrivateKey(raw))}\nerrno=0\n\n`);
    expect(hex(d.dev.publicKey!)).toBe(hex(publicKey(clampPrivateKey(raw))));
    expect(d.set(`private_key=${Z}\n`)).toBe("errno=0\n\n");
    expect(d.get()).toBe("errno=0\n\n");
    expect(d.set(`private_key=${"AB".repeat(32)}\n`)).toBe("errno=0\n\n"); // either case
    expect(d.set(`private_key=${"ab".repeat(31)}\n`)).toBe("errno=-22\n\n");
    expect(d.set(`private_key=${"zz".repeat(32)}\n`)).toBe("errno=-22\n\n");
  });

  test("listen_port: stored while down, bound when up, bind failure is EADDRINUSE and leaves no port", () => {
    const d = mk();
    expect(d.set("listen_port=51820\n")).toBe("errno=0\n\n");
    expect(d.binds).toEqual([]);
    expect(d.get()).toBe("listen_port=51820\nerrno=0\n\n");
    d.dev.up();
    expect(d.binds).toEqual([[51820, 0]]);
    expect(d.set("listen_port=0\n")).toBe("errno=0\n\n");
    expect(d.get()).toBe("listen_port=43210\nerrno=0\n\n");
    d.failBind(5555);
    expect(d.set("listen_port=5555\n")).toBe("errno=-98\n\n");
    expect(d.get()).toBe("errno=0\n\n");
    for (const bad of ["65536", "-1", "+5", "", "0x10", "1 "]) expect(d.set(`listen_port=${bad}\n`)).toBe("errno=-22\n\n");
    // up() with a port that cannot be bound throws, stays down and forgets the port (go)
    d.dev.down();
    expect(d.set("listen_port=5555\n")).toBe("errno=0\n\n");
    expect(() => d.dev.up()).toThrow();
    expect(d.dev.isUp).toBe(false);
    expect(d.get()).toBe("errno=0\n\n");
    d.failBind(null);
    d.dev.up();
    expect(d.get()).toBe("listen_port=43210\nerrno=0\n\n");
  });

  test("fwmark: rebinds with the mark when up, 0 is off, range checked", () => {
    const d = mk();
    d.dev.up();
    expect(d.set("fwmark=4294967295\n")).toBe("errno=0\n\n");
    expect(d.binds.at(-1)).toEqual([43210, 4294967295]);
    expect(d.get()).toBe("listen_port=43210\nfwmark=4294967295\nerrno=0\n\n");
    const n = d.binds.length;
    expect(d.set("fwmark=4294967295\n")).toBe("errno=0\n\n");
    expect(d.binds.length).toBe(n); // unchanged mark: no rebind
    expect(d.set("fwmark=0\n")).toBe("errno=0\n\n");
    expect(d.get()).toBe("listen_port=43210\nerrno=0\n\n");
    expect(d.set("fwmark=4294967296\n")).toBe("errno=-22\n\n");
    d.failBind(-1);
    expect(d.set("fwmark=7\n")).toBe("errno=-98\n\n");
  });

  test("replace_peers, unknown keys, malformed lines", () => {
    const d = mk();
    d.set(`public_key=${p1}\npublic_key=${p2}\n`);
    expect(d.dev.peers.size).toBe(2);
    expect(d.set(`replace_peers=false\n`)).toBe("errno=-22\n\n");
    expect(d.set(`replace_peers=true\npublic_key=${p3}\n`)).toBe("errno=0\n\n");
    expect([...d.dev.peers.keys()]).toEqual([p3]);
    expect(d.set("bogus=1\n")).toBe("errno=-22\n\n");
    expect(d.set("no equals sign\n")).toBe("errno=-71\n\n");
    // device keys are not accepted once a peer block started
    expect(d.set(`public_key=${p3}\nlisten_port=1\n`)).toBe("errno=-22\n\n");
  });

  test("values are applied as they are read: a failing request keeps earlier lines", () => {
    const d = mk();
    expect(d.set(`fwmark=9\npublic_key=${p1}\nallowed_ip=10.0.0.1/32\nendpoint=nonsense\nallowed_ip=10.0.0.2/32\n`)).toBe("errno=-22\n\n");
    const g = d.get();
    expect(g).toContain("fwmark=9\n");
    expect(g).toContain(`public_key=${p1}\n`);
    expect(g).toContain("allowed_ip=10.0.0.1/32\n");
    expect(g).not.toContain("10.0.0.2");
  });

  test("a missing final empty line still applies the set (EOF ends it)", () => {
    const d = mk();
    expect(d.set("fwmark=5")).toBe("errno=0\n\n");
    expect(d.dev.uapi("set=1\nfwmark=6").response).toBe("errno=0\n\n");
    expect(d.get()).toBe("fwmark=6\nerrno=0\n\n");
  });
});

describe("set: peers", () => {
  test("remove=true drops the peer and swallows the rest of its block", () => {
    const d = mk();
    d.set(`public_key=${p1}\nallowed_ip=10.0.0.1/32\npublic_key=${p2}\n`);
    expect(d.set(`public_key=${p1}\nremove=true\nallowed_ip=10.0.0.9/32\nendpoint=1.2.3.4:5\npublic_key=${p2}\nallowed_ip=10.0.0.2/32\n`)).toBe("errno=0\n\n");
    expect([...d.dev.peers.keys()]).toEqual([p2]);
    expect(d.get()).not.toContain("10.0.0.9");
    expect(d.get()).toContain("allowed_ip=10.0.0.2/32\n");
    expect(d.set(`public_key=${p1}\nremove=yes\n`)).toBe("errno=-22\n\n");
    expect(d.events.map((e) => e.type)).toEqual(["peer-added", "peer-added", "peer-removed", "peer-added"]);
  });

  test("update_only=true does not create, but updates existing peers", () => {
    const d = mk();
    expect(d.set(`public_key=${p1}\nupdate_only=true\nallowed_ip=10.0.0.1/32\n`)).toBe("errno=0\n\n");
    expect(d.dev.peers.size).toBe(0);
    d.set(`public_key=${p2}\n`);
    expect(d.set(`public_key=${p2}\nupdate_only=true\npersistent_keepalive_interval=7\n`)).toBe("errno=0\n\n");
    expect(d.get()).toContain("persistent_keepalive_interval=7\n");
  });

  test("a peer with the device's own public key is ignored; a new private key removes such a peer", () => {
    const d = mk();
    d.set(`private_key=${hex(k1)}\n`);
    expect(d.set(`public_key=${p1}\nallowed_ip=10.0.0.1/32\npublic_key=${p2}\n`)).toBe("errno=0\n\n");
    expect([...d.dev.peers.keys()]).toEqual([p2]);
    expect(d.set(`private_key=${hex(k2)}\n`)).toBe("errno=0\n\n");
    expect(d.dev.peers.size).toBe(0);
  });

  test("preshared_key, endpoint forms and keepalive range", () => {
    const d = mk();
    expect(d.set(`public_key=${p1}\npreshared_key=${"cd".repeat(32)}\nendpoint=[fe80:0::1%lo]:5\n`)).toBe("errno=0\n\n");
    expect(d.get()).toContain(`preshared_key=${"cd".repeat(32)}\nprotocol_version=1\nendpoint=[fe80::1]:5\n`);
    expect(d.set(`public_key=${p1}\npreshared_key=${Z}\nendpoint=[::ffff:1.2.3.4]:65535\n`)).toBe("errno=0\n\n");
    expect(d.get()).toContain(`preshared_key=${Z}\nprotocol_version=1\nendpoint=[::ffff:1.2.3.4]:65535\n`);
    for (const bad of ["example.com:51820", "1.2.3.4", "1.2.3.4:65536", "[1.2.3.4]:5", "fe80::1:5", "1.2.3.256:1", "[::1]5"]) {
      expect({ bad, r: d.set(`public_key=${p1}\nendpoint=${bad}\n`) }).toEqual({ bad, r: "errno=-22\n\n" });
    }
    expect(d.set(`public_key=${p1}\npersistent_keepalive_interval=65535\n`)).toBe("errno=0\n\n");
    expect(d.set(`public_key=${p1}\npersistent_keepalive_interval=65536\n`)).toBe("errno=-22\n\n");
    expect(d.set(`public_key=${p1}\npreshared_key=xyz\n`)).toBe("errno=-22\n\n");
    expect(d.set(`public_key=${"00".repeat(31)}\n`)).toBe("errno=-22\n\n");
    expect(d.set(`public_key=${p1}\nprotocol_version=1\n`)).toBe("errno=0\n\n");
    expect(d.set(`public_key=${p1}\nprotocol_version=2\n`)).toBe("errno=-22\n\n");
    expect(d.set(`public_key=${p1}\nfrobnicate=1\n`)).toBe("errno=-22\n\n");
  });

  test("allowed IPs: masked, moved between peers, re-insert moves to the end, replace and '-' removal", () => {
    const d = mk();
    expect(d.set(`public_key=${p1}\nallowed_ip=10.4.4.4/16\nallowed_ip=10.5.0.0/16\nallowed_ip=10.6.0.0/16\npublic_key=${p2}\nallowed_ip=10.5.0.0/16\n`)).toBe("errno=0\n\n");
    const lines = () => d.get().split("\n").filter((l) => l.startsWith("allowed_ip=") || l.startsWith("public_key="));
    expect(lines()).toEqual([`public_key=${p1}`, "allowed_ip=10.4.0.0/16", "allowed_ip=10.6.0.0/16", `public_key=${p2}`, "allowed_ip=10.5.0.0/16"]);
    d.set(`public_key=${p1}\nallowed_ip=10.4.0.0/16\n`);
    expect(lines().slice(0, 3)).toEqual([`public_key=${p1}`, "allowed_ip=10.6.0.0/16", "allowed_ip=10.4.0.0/16"]);
    expect(d.set(`public_key=${p1}\nallowed_ip=-10.6.1.1/16\n`)).toBe("errno=0\n\n");
    expect(lines().slice(0, 2)).toEqual([`public_key=${p1}`, "allowed_ip=10.4.0.0/16"]);
    expect(d.set(`public_key=${p1}\nreplace_allowed_ips=true\nallowed_ip=::/0\n`)).toBe("errno=0\n\n");
    expect(lines().slice(0, 2)).toEqual([`public_key=${p1}`, "allowed_ip=::/0"]);
    for (const bad of ["10.0.0.1", "10.0.0.1/33", "10.0.0/8", "fe80::1%lo/64", "/8", "-"]) {
      expect({ bad, r: d.set(`public_key=${p1}\nallowed_ip=${bad}\n`) }).toEqual({ bad, r: "errno=-22\n\n" });
    }
    expect(d.set(`public_key=${p1}\nreplace_allowed_ips=1\n`)).toBe("errno=-22\n\n");
  });

  test("changing the private key invalidates sessions for sending", () => {
    // a real session via two devices on a direct link
    const t = { now: 1000 };
    const clock = { mono: () => t.now, wall: () => 1_700_000_000_000 + t.now };
    const q: [string, Uint8Array][] = [];
    const mkd = (name: string) =>
      createDevice(
        { sendUdp: (b, o, l) => q.push([name, b.slice(o, o + l)]), writeTun() {}, bind: (p) => p },
        clock,
      );
    const A = mkd("A");
    const B = mkd("B");
    A.uapi(`set=1\nprivate_key=${hex(k1)}\nlisten_port=1\npublic_key=${p2}\nendpoint=192.0.2.2:2\nallowed_ip=10.0.0.2/32\n\n`);
    B.uapi(`set=1\nprivate_key=${hex(k2)}\nlisten_port=2\npublic_key=${p1}\nallowed_ip=10.0.0.1/32\n\n`);
    A.up();
    B.up();
    const pkt = new Uint8Array(40);
    pkt[0] = 0x45;
    pkt[3] = 40;
    pkt.set([10, 0, 0, 1, 10, 0, 0, 2], 12);
    A.sendTunPacket(pkt, 0, 40);
    while (q.length) {
      const [from, b] = q.shift()!;
      (from === "A" ? B : A).receiveUdp(b, 0, b.length, from === "A" ? Endpoint.of(4, [192, 0, 2, 1], 1) : Endpoint.of(4, [192, 0, 2, 2], 2));
    }
    const peer = A.peers.get(p2)!;
    expect(peer.current?.sendValid).toBe(true);
    expect(A.uapi(`set=1\nprivate_key=${hex(k3)}\n\n`).response).toBe("errno=0\n\n");
    expect(peer.current?.sendValid).toBe(false);
    A.sendTunPacket(pkt, 0, 40);
    expect(q.map(([, b]) => b[0])).toEqual([1]); // a fresh initiation, no data
  });
});
