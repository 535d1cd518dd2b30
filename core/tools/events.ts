// The lines of `wg events` (one JSON object per line, README "wg events"), whoever produces
// them: our daemon as things happen, or `wg events` itself for a kernel link, which has no event
// stream and is read periodically: deviceEvents() names what changed between two readings.
import type { WgDevice, WgPeer } from "./containers.ts";
import { handshakeOnline } from "./show.ts";
import { keyToHex } from "../encoding.ts";

export type EventType = "handshake" | "handshake-failed" | "endpoint" | "peer-added" | "peer-removed" | "keys-rotated";

/** Milliseconds since the epoch -> ISO 8601 text (`Date.prototype.toISOString`), injected: core has no clock. */
export type IsoTime = (ms: number) => string;

/**
 * One line: {"time", "interface", "type", "public_key" (base64), then "endpoint" when the event
 * carries one, "last_handshake" (ISO 8601) when there was one, and "online"}.
 */
export function eventLine(iface: string, type: EventType, publicKeyBase64: string, endpoint: string | null, lastHandshakeMs: number, nowMs: number, iso: IsoTime): string {
  const rec: Record<string, unknown> = {
    time: iso(nowMs),
    interface: iface,
    type,
    public_key: publicKeyBase64,
  };
  if (endpoint) rec.endpoint = endpoint;
  if (lastHandshakeMs > 0) rec.last_handshake = iso(lastHandshakeMs);
  rec.online = handshakeOnline(lastHandshakeMs, nowMs);
  return JSON.stringify(rec);
}

/** A peer's latest handshake in milliseconds since the epoch (whole ones; 0 = never), as eventLine takes it. */
export const handshakeMs = (p: WgPeer): number => Number(p.lastHandshakeSec) * 1000 + Math.floor(Number(p.lastHandshakeNsec) / 1e6);

export interface PeerEvent {
  type: "handshake" | "endpoint" | "peer-added" | "peer-removed";
  peer: WgPeer;
}

const keyOf = (p: WgPeer) => keyToHex(p.publicKey);
const handshakeOf = (p: WgPeer) => p.lastHandshakeSec * 1_000_000_000n + p.lastHandshakeNsec;

/**
 * What happened between two readings of a device, in the order the daemon reports such things:
 * removed peers, then per peer of the new reading (in its order) peer-added, endpoint (a new,
 * known endpoint) and handshake (a newer handshake time; it names the endpoint).
 */
export function deviceEvents(before: WgDevice, after: WgDevice): PeerEvent[] {
  const old = new Map<string, WgPeer>();
  for (const p of before.peers) old.set(keyOf(p), p);
  const now = new Set<string>();
  const added: PeerEvent[] = [];
  for (const p of after.peers) {
    const k = keyOf(p);
    now.add(k);
    const was = old.get(k);
    if (!was) added.push({ type: "peer-added", peer: p });
    if (p.endpoint !== null && p.endpoint !== (was?.endpoint ?? null)) added.push({ type: "endpoint", peer: p });
    if (handshakeOf(p) !== 0n && handshakeOf(p) !== (was ? handshakeOf(was) : 0n)) added.push({ type: "handshake", peer: p });
  }
  const removed: PeerEvent[] = [];
  for (const p of before.peers) if (!now.has(keyOf(p))) removed.push({ type: "peer-removed", peer: p });
  return [...removed, ...added];
}
