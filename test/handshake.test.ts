// Reproduces vectors/wireguard_handshake.json byte for byte: at the noise/cookie level and
// through two engines driven with the vector's ephemerals, indices and clock.
import { describe, expect, test } from "bun:test";
import { publicKey, tai64n } from "../core/crypto.ts";
import { CookieChecker, CookieGenerator } from "../core/cookie.ts";
import { Keypair, decryptTransport, encryptTransport, paddedLength } from "../core/keypair.ts";
import {
  C0,
  H0,
  Handshake,
  HandshakeState,
  consumeInitiation,
  consumeResponse,
  createInitiation,
  createResponse,
  deriveSession,
  type StaticIdentity,
} from "../core/noise.ts";
import { createDevice } from "../core/device.ts";
import { Endpoint } from "../core/endpoint.ts";

const V = (await Bun.file(new URL("./vectors/wireguard_handshake.json", import.meta.url)).json()) as any;
const h = (s: string) => Uint8Array.from(Buffer.from(s, "hex"));
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

const K = V.keys;
const initId: StaticIdentity = { privateKey: h(K.initiator_static_private), publicKey: h(K.initiator_static_public) };
const respId: StaticIdentity = { privateKey: h(K.responder_static_private), publicKey: h(K.responder_static_public) };

interface P {
  handshake: Handshake;
}
function peerOf(remote: StaticIdentity, local: StaticIdentity, psk: Uint8Array): P {
  const hs = new Handshake(Uint8Array.from(remote.publicKey));
  hs.setLocalPrivate(local.privateKey);
  hs.presharedKey.set(psk);
  return { handshake: hs };
}

/** Full responder-side acceptance: mac1 then Noise. */
function accept(checker: CookieChecker, msg: Uint8Array, peer: P, now: number): P | null {
  if (!checker.checkMac1(msg, 0, msg.length)) return null;
  return consumeInitiation(respId, msg, 0, (pub) => (hex(pub) === hex(initId.publicKey) ? peer : undefined), now);
}

function snapshot(hs: Handshake) {
  return {
    state: hs.state,
    c: hex(hs.chainKey),
    h: hex(hs.hash),
    ts: hex(hs.latestTimestamp),
    ri: hs.remoteIndex,
    last: hs.lastInitiationConsumedMono,
  };
}

describe("constants", () => {
  test("C0/H0", () => {
    expect(hex(C0)).toBe(V.constants.initial_chaining_key);
    expect(hex(H0)).toBe(V.constants.initial_hash);
    expect(hex(publicKey(initId.privateKey))).toBe(K.initiator_static_public);
    expect(hex(publicKey(h(K.initiator_ephemeral_private)))).toBe(K.initiator_ephemeral_public);
  });
  test("TAI64N of the vector's wall clock (ns rounded down to 2^24)", () => {
    expect(hex(tai64n(1700000000_500))).toBe(V.handshakes[0].initiation.timestamp_tai64n);
  });
});

for (const HS of V.handshakes as any[]) {
  describe(HS.name, () => {
    const psk = h(HS.preshared_key);
    const ini = HS.initiation;
    const res = HS.response;

    function runInitiation() {
      const respPeer = peerOf(respId, initId, psk); // initiator's record of the responder
      const msg = new Uint8Array(148);
      expect(createInitiation(initId, respPeer.handshake, h(K.initiator_ephemeral_private), ini.sender_index, h(ini.timestamp_tai64n), msg)).toBe(true);
      new CookieGenerator(respId.publicKey).addMacs(msg, 0, 148, 0);
      return { respPeer, msg };
    }

    test("initiation bytes and intermediate C/H", () => {
      const { respPeer, msg } = runInitiation();
      expect(hex(msg)).toBe(ini.message);
      const last = ini.trace[ini.trace.length - 1];
      expect(hex(respPeer.handshake.hash)).toBe(last.H);
      expect(hex(respPeer.handshake.chainKey)).toBe(ini.trace[5].C);
      expect(respPeer.handshake.state).toBe(HandshakeState.CreatedInitiation);
    });

    test("responder consumes, builds the response, keys and transport messages match", () => {
      const { respPeer, msg } = runInitiation();
      const checker = new CookieChecker(() => new Uint8Array(32));
      checker.setLocalPublic(respId.publicKey);
      const initPeer = peerOf(initId, respId, psk); // responder's record of the initiator
      expect(accept(checker, msg, initPeer, 1000)).toBe(initPeer);
      expect(hex(initPeer.handshake.hash)).toBe(ini.trace[6].H);
      expect(hex(initPeer.handshake.latestTimestamp)).toBe(ini.timestamp_tai64n);
      expect(initPeer.handshake.remoteIndex).toBe(ini.sender_index);

      const rmsg = new Uint8Array(92);
      expect(createResponse(initPeer.handshake, h(K.responder_ephemeral_private), res.sender_index, rmsg)).toBe(true);
      new CookieGenerator(initId.publicKey).addMacs(rmsg, 0, 92, 0);
      expect(hex(rmsg)).toBe(res.message);
      expect(hex(initPeer.handshake.chainKey)).toBe(HS.final_chaining_key);
      expect(hex(initPeer.handshake.hash)).toBe(HS.final_hash);

      // initiator side
      const ichecker = new CookieChecker(() => new Uint8Array(32));
      ichecker.setLocalPublic(initId.publicKey);
      expect(ichecker.checkMac1(rmsg, 0, 92)).toBe(true);
      const got = consumeResponse(initId, rmsg, 0, (idx) => (idx === ini.sender_index ? respPeer : undefined));
      expect(got).toBe(respPeer);
      expect(hex(respPeer.handshake.chainKey)).toBe(HS.final_chaining_key);

      const rk = deriveSession(initPeer.handshake)!;
      const ik = deriveSession(respPeer.handshake)!;
      expect(hex(rk.receive)).toBe(HS.transport_keys.initiator_send_equals_responder_receive);
      expect(hex(rk.send)).toBe(HS.transport_keys.initiator_receive_equals_responder_send);
      expect(hex(ik.send)).toBe(HS.transport_keys.initiator_send_equals_responder_receive);
      expect(hex(ik.receive)).toBe(HS.transport_keys.initiator_receive_equals_responder_send);
      expect([ik.initiator, rk.initiator]).toEqual([true, false]);
      // handshake secrets are erased after derivation
      expect(initPeer.handshake.state).toBe(HandshakeState.Zeroed);
      expect(hex(initPeer.handshake.chainKey)).toBe("00".repeat(32));
      expect(hex(respPeer.handshake.localEphemeral)).toBe("00".repeat(32));

      const ikp = new Keypair(null, ik.send, ik.receive, true, ik.localIndex, ik.remoteIndex, 0);
      const rkp = new Keypair(null, rk.send, rk.receive, false, rk.localIndex, rk.remoteIndex, 0);
      for (const T of HS.transport as any[]) {
        const kp = T.direction === "initiator->responder" ? ikp : rkp;
        const other = kp === ikp ? rkp : ikp;
        const plain = h(T.plaintext_ip_packet);
        const padded = plain.length === 0 ? 0 : paddedLength(plain.length, T.mtu);
        expect(padded).toBe(T.plaintext_padded_length);
        const out = new Uint8Array(2048);
        const n = encryptTransport(kp, T.counter, plain, 0, plain.length, padded, out, 0);
        expect(hex(out.subarray(0, n))).toBe(T.message);
        const dec = new Uint8Array(2048);
        const m = decryptTransport(other, BigInt(T.counter), out, 0, n, dec, 0);
        expect(m).toBe(padded);
        expect(hex(dec.subarray(0, plain.length))).toBe(T.plaintext_ip_packet);
        out[20]! ^= 1;
        expect(decryptTransport(other, BigInt(T.counter), out, 0, n, dec, 0)).toBe(-1);
      }
    });

    test("every single-bit flip of the initiation (type..mac1) is rejected with no state change", () => {
      const { msg } = runInitiation();
      const checker = new CookieChecker(() => new Uint8Array(32));
      checker.setLocalPublic(respId.publicKey);
      const initPeer = peerOf(initId, respId, psk);
      const before = snapshot(initPeer.handshake);
      // one bit in every byte of every field except mac2 (ignored when not under load)
      for (let i = 0; i < 132; i++) {
        const bad = Uint8Array.from(msg);
        bad[i]! ^= 1 << i % 8;
        expect({ i, ok: accept(checker, bad, initPeer, 1000) }).toEqual({ i, ok: null });
      }
      expect(snapshot(initPeer.handshake)).toEqual(before);
      // Same flips in the Noise fields with a recomputed (valid) mac1: the AEADs/DH must reject.
      const gen = new CookieGenerator(respId.publicKey);
      for (let i = 8; i < 116; i++) {
        const bad = Uint8Array.from(msg);
        bad[i]! ^= 1 << i % 8;
        gen.addMacs(bad, 0, 148, 0);
        expect(checker.checkMac1(bad, 0, 148)).toBe(true);
        expect({ i, ok: accept(checker, bad, initPeer, 1000) }).toEqual({ i, ok: null });
      }
      expect(snapshot(initPeer.handshake)).toEqual(before);
      // the untouched message is accepted, so the loops above exercised the real path
      expect(accept(checker, msg, initPeer, 1000)).toBe(initPeer);
    });

    test("replayed and flooding initiations are rejected; stored timestamp only moves forward", () => {
      const { msg } = runInitiation();
      const checker = new CookieChecker(() => new Uint8Array(32));
      checker.setLocalPublic(respId.publicKey);
      const initPeer = peerOf(initId, respId, psk);
      expect(accept(checker, msg, initPeer, 1000)).toBe(initPeer);
      const snap = snapshot(initPeer.handshake);
      expect(accept(checker, msg, initPeer, 5000)).toBeNull(); // replay, much later
      expect(snapshot(initPeer.handshake)).toEqual(snap);
      // newer timestamp but within 20 ms of the last accepted one: flood
      const respPeer = peerOf(respId, initId, psk);
      const msg2 = new Uint8Array(148);
      const ts2 = h(ini.timestamp_tai64n);
      ts2[11] = 1;
      createInitiation(initId, respPeer.handshake, h(K.responder_ephemeral_private), 7, ts2, msg2);
      new CookieGenerator(respId.publicKey).addMacs(msg2, 0, 148, 0);
      expect(accept(checker, msg2, initPeer, 1019)).toBeNull();
      expect(snapshot(initPeer.handshake)).toEqual(snap);
      expect(accept(checker, msg2, initPeer, 1020)).toBe(initPeer);
      expect(hex(initPeer.handshake.latestTimestamp)).toBe(hex(ts2));
    });

    test("response bit flips are rejected and leave the pending initiation intact", () => {
      const { respPeer, msg } = runInitiation();
      const initPeer = peerOf(initId, respId, psk);
      const checker = new CookieChecker(() => new Uint8Array(32));
      checker.setLocalPublic(respId.publicKey);
      accept(checker, msg, initPeer, 1000);
      const rmsg = new Uint8Array(92);
      createResponse(initPeer.handshake, h(K.responder_ephemeral_private), res.sender_index, rmsg);
      new CookieGenerator(initId.publicKey).addMacs(rmsg, 0, 92, 0);
      const ichecker = new CookieChecker(() => new Uint8Array(32));
      ichecker.setLocalPublic(initId.publicKey);
      const before = snapshot(respPeer.handshake);
      for (let i = 0; i < 76; i++) {
        const bad = Uint8Array.from(rmsg);
        bad[i]! ^= 1 << i % 8;
        const ok =
          ichecker.checkMac1(bad, 0, 92) &&
          consumeResponse(initId, bad, 0, (idx) => (idx === ini.sender_index ? respPeer : undefined));
        expect({ i, ok: !!ok }).toEqual({ i, ok: false });
      }
      expect(snapshot(respPeer.handshake)).toEqual(before);
      expect(consumeResponse(initId, rmsg, 0, (idx) => (idx === ini.sender_index ? respPeer : undefined))).toBe(respPeer);
    });
  });
}

describe("cookie round", () => {
  const CR = V.cookie_round;
  const src = Endpoint.of(4, [192, 0, 2, 1], CR.initiator_source_port);
  test("cookie, reply bytes, consumption and the next initiation's mac2", () => {
    const nonce = h(CR.nonce);
    const checker = new CookieChecker((n) => (n === 24 ? nonce : new Uint8Array(n)));
    checker.setLocalPublic(respId.publicKey);
    checker.setSecret(h(CR.responder_cookie_secret), 0);
    expect(hex(checker.makeCookie(src, 10))).toBe(CR.cookie);

    const first = h(V.handshakes[0].initiation.message);
    expect(hex(first.subarray(116, 132))).toBe(CR.replying_to_mac1);
    const reply = new Uint8Array(64);
    expect(checker.createReply(first, 0, 148, src, 10, reply)).toBe(true);
    expect(hex(reply)).toBe(CR.cookie_reply_message);

    // initiator: only a reply to the mac1 it sent is accepted, and only once
    const gen = new CookieGenerator(respId.publicKey);
    expect(gen.consumeReply(reply, 0, 20)).toBe(false); // nothing sent yet
    const again = Uint8Array.from(first);
    gen.addMacs(again, 0, 148, 20);
    expect(hex(again)).toBe(hex(first));
    const tampered = Uint8Array.from(reply);
    tampered[40]! ^= 0x80;
    expect(gen.consumeReply(tampered, 0, 20)).toBe(false);
    expect(gen.consumeReply(reply, 0, 20)).toBe(true);
    expect(gen.consumeReply(reply, 0, 21)).toBe(false);

    const N = CR.next_initiation;
    const respPeer = peerOf(respId, initId, new Uint8Array(32));
    const msg = new Uint8Array(148);
    createInitiation(initId, respPeer.handshake, h(N.ephemeral_private), N.sender_index, h(N.timestamp_tai64n), msg);
    gen.addMacs(msg, 0, 148, 5000);
    expect(hex(msg)).toBe(N.message);
    expect(hex(msg.subarray(132))).toBe(N.mac2);
    expect(checker.checkMac1(msg, 0, 148)).toBe(true);
    expect(checker.checkMac2(msg, 0, 148, src, 5000)).toBe(true);
    expect(checker.checkMac2(msg, 0, 148, Endpoint.of(4, src.addr.subarray(0, 4), src.port + 1), 5000)).toBe(false);
    for (let i = 132; i < 148; i++) {
      const bad = Uint8Array.from(msg);
      bad[i]! ^= 1 << i % 8;
      expect(checker.checkMac2(bad, 0, 148, src, 5000)).toBe(false);
    }
    // a cookie older than 120 s is no longer used for mac2
    const later = Uint8Array.from(msg);
    gen.addMacs(later, 0, 148, 20 + 120_001);
    expect(hex(later.subarray(132))).toBe("00".repeat(16));
    // the responder's secret expires after 120 s: mac2 under the old secret no longer validates
    expect(checker.checkMac2(msg, 0, 148, src, 120_000)).toBe(false);
  });
});

describe("transport", () => {
  test("unpadded packets sealed straight from the source equal the copy path; keepalive is 32 bytes", () => {
    const key = h(V.handshakes[0].transport_keys.initiator_send_equals_responder_receive);
    const a = new Keypair(null, Uint8Array.from(key), Uint8Array.from(key), true, 1, 2, 0);
    const b = new Keypair(null, Uint8Array.from(key), Uint8Array.from(key), false, 2, 1, 0);
    for (const len of [16, 64, 1420]) {
      const plain = Uint8Array.from({ length: len }, (_, i) => (i * 7) & 255);
      const direct = new Uint8Array(2048);
      const n1 = encryptTransport(a, 5, plain, 0, len, len, direct, 0);
      // copy path: source inside the destination buffer region forces the copy
      const viaCopy = new Uint8Array(2048);
      viaCopy.set(plain, 16);
      const n2 = encryptTransport(a, 5, viaCopy, 16, len, len, viaCopy, 0);
      expect(n1).toBe(len + 32);
      expect(hex(direct.subarray(0, n1))).toBe(hex(viaCopy.subarray(0, n2)));
      const out = new Uint8Array(2048);
      expect(decryptTransport(b, 5n, direct, 0, n1, out, 0)).toBe(len);
      expect(hex(out.subarray(0, len))).toBe(hex(plain));
      expect(decryptTransport(b, 6n, direct, 0, n1, out, 0)).toBe(-1); // wrong counter
    }
    const ka = new Uint8Array(64);
    expect(encryptTransport(a, 0, new Uint8Array(0), 0, 0, 0, ka, 0)).toBe(32);
  });
});

describe("padding examples", () => {
  for (const e of V.padding_rule.examples as any[]) {
    test(`len ${e.plaintext_length} mtu ${e.mtu}`, () => {
      expect(paddedLength(e.plaintext_length, e.mtu)).toBe(e.padded_length);
    });
  }
});

describe("engines reproduce the vector on the wire", () => {
  for (const [hsIdx, HS] of (V.handshakes as any[]).entries()) {
    test(`${HS.name}: initiation, response and three transport messages`, () => {
      let mono = 1000;
      const wall0 = 1700000000_500 - mono;
      const clock = { mono: () => mono, wall: () => wall0 + mono };
      const le = (n: number) => Uint8Array.of(n & 255, (n >>> 8) & 255, (n >>> 16) & 255, n >>> 24);
      // size-keyed scripted randomness: 4 bytes = index (then jitter), 32 bytes = ephemeral
      const scripted = (q4: Uint8Array[], q32: Uint8Array[]) => (n: number) =>
        (n === 4 ? q4.shift() : n === 32 ? q32.shift() : undefined) ?? new Uint8Array(n);
      const wire: { from: string; bytes: string }[] = [];
      const aEp = Endpoint.of(4, [192, 0, 2, 1], 51820);
      const bEp = Endpoint.of(4, [192, 0, 2, 2], 51820);
      const tunA: string[] = [];
      const tunB: string[] = [];
      let pending: { to: "A" | "B"; bytes: Uint8Array } | null = null;
      const mk = (name: "A" | "B", tun: string[], random: (n: number) => Uint8Array) =>
        createDevice(
          {
            sendUdp(buf, off, len) {
              const bytes = buf.slice(off, off + len);
              wire.push({ from: name, bytes: hex(bytes) });
              pending = { to: name === "A" ? "B" : "A", bytes };
            },
            writeTun(buf, off, len) {
              tun.push(hex(buf.subarray(off, off + len)));
            },
            bind: (p) => p,
          },
          clock,
          { random, mtu: 1420 },
        );
      const A = mk("A", tunA, scripted([le(HS.initiation.sender_index)], [h(K.initiator_ephemeral_private)]));
      const B = mk("B", tunB, scripted([le(HS.response.sender_index)], [h(K.responder_ephemeral_private)]));
      const pskLine = `preshared_key=${HS.preshared_key}\n`;
      expect(A.uapi(`set=1\nprivate_key=${K.initiator_static_private}\nlisten_port=51820\npublic_key=${K.responder_static_public}\n${pskLine}endpoint=192.0.2.2:51820\nallowed_ip=10.99.0.2/32\n\n`).response).toBe("errno=0\n\n");
      expect(B.uapi(`set=1\nprivate_key=${K.responder_static_private}\nlisten_port=51820\npublic_key=${K.initiator_static_public}\n${pskLine}allowed_ip=10.99.0.1/32\n\n`).response).toBe("errno=0\n\n");
      A.up();
      B.up();
      const pump = () => {
        while (pending) {
          const p: { to: "A" | "B"; bytes: Uint8Array } = pending;
          pending = null;
          (p.to === "A" ? A : B).receiveUdp(p.bytes, 0, p.bytes.length, p.to === "A" ? bEp : aEp);
        }
      };
      const T = HS.transport;
      const echo = h(T[0].plaintext_ip_packet);
      A.sendTunPacket(echo, 0, echo.length); // no key yet: staged, initiation sent
      expect(wire[0]).toEqual({ from: "A", bytes: HS.initiation.message });
      pump();
      expect(wire[1]).toEqual({ from: "B", bytes: HS.response.message });
      expect(wire[2]).toEqual({ from: "A", bytes: T[0].message }); // staged echo, counter 0
      expect(tunB).toEqual([T[0].plaintext_ip_packet]);
      const reply = h(T[2].plaintext_ip_packet);
      B.sendTunPacket(reply, 0, reply.length);
      expect(wire[3]).toEqual({ from: "B", bytes: T[2].message });
      pump();
      expect(tunA).toEqual([T[2].plaintext_ip_packet]);
      // A received data and sent nothing: its keepalive (counter 1) goes out after 10 s
      mono += 10_000;
      A.tick();
      expect(wire[4]).toEqual({ from: "A", bytes: T[1].message });
      expect(wire.length).toBe(5);
      void hsIdx;
    });
  }
});
