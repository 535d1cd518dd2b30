// Removing single allowed IPs (wg 1.0.20250521's `-PREFIX`) on whichever backend serves the
// device. Our daemon and wireguard-go 0.0.20250515+ take `allowed_ip=-PREFIX`, Linux 6.16+ takes
// WGALLOWEDIP_F_REMOVE_ME; wireguard-go 0.0.20220316 answers errno=-22 and older kernels refuse
// the unknown attribute with EINVAL. Both refuse only when they reach the removal, after applying
// whatever came before it in the request, so a request is never sent just to see whether it
// works. Instead a probe that changes nothing anywhere (an existing peer, update-only, losing a
// prefix it does not hold) tells the two apart: accepted, the request goes as it is; EINVAL, it
// is rewritten so that every peer block with removals replaces that peer's whole list with the
// list the removals leave (in the same request, so the emptied list is refilled at once; over
// netlink only a list too long for one message is continued in the next).
// Additions (`+PREFIX`) need none of this: they are plain inserts without replace_allowed_ips.
import { formatPrefix } from "../allowedips.ts";
import { publicKey } from "../crypto.ts";
import { isZeroKey, keyToHex } from "../encoding.ts";
import { EINVAL } from "../errno.ts";
import type { AllowedIp, DeviceConfig, PeerConfig, WgDevice } from "./containers.ts";
import type { GetResult } from "./uapi.ts";

/** One device's backend (UAPI or netlink), as platform/ipc.ts has chosen it. */
export interface DeviceIo {
  get(): Promise<GetResult>;
  /** 0, or the errno the change failed with. */
  set(config: DeviceConfig): Promise<number>;
}

/** True when some peer block (not itself a removal) takes allowed IPs away. */
export function removesAllowedIps(c: DeviceConfig): boolean {
  return c.peers.some((p) => !p.remove && p.allowedIps.some((ip) => ip.remove));
}

/**
 * A change that alters nothing on any backend yet carries one removal: the device's first peer,
 * update-only, losing a /32 it does not hold. Null when the device has no peers.
 */
export function removalProbe(dev: WgDevice): DeviceConfig | null {
  const peer = dev.peers[0];
  if (!peer) return null;
  const held = new Set(peer.allowedIps.map(formatPrefix));
  const addr = new Uint8Array([255, 255, 255, 255]);
  while (held.has(`${addr.join(".")}/32`)) addr[3]!--;
  const probe: PeerConfig = {
    publicKey: peer.publicKey, remove: false, updateOnly: true, replaceAllowedIps: false,
    allowedIps: [{ family: 4, addr, cidr: 32, remove: true }],
  };
  return { replacePeers: false, peers: [probe] };
}

/**
 * `c` for a backend without removals: replayed over `dev` (as read just before) the way a daemon
 * applies it (replace_peers, a new private key dropping the peer with its public key, peer
 * removal, replacement, inserts that move a prefix from its previous owner and to the end of the
 * list, removals only of a prefix the peer holds), every peer block with removals becomes
 * replace + the list that peer holds after it, preceded, when the block took prefixes from other
 * peers that it then gave up, by a block inserting just those (so their old holders lose them as
 * they would have). A block the device ignores (the device's own key, update-only for an absent
 * peer) only loses its removals; other blocks are sent as they are.
 */
export function withoutRemovals(c: DeviceConfig, dev: WgDevice): DeviceConfig {
  // Per peer, its prefixes in order (a Map keeps insertion order); and who holds each prefix.
  const lists = new Map<string, Map<string, AllowedIp>>();
  const owner = new Map<string, string>();
  const drop = (key: string) => {
    for (const p of lists.get(key)?.keys() ?? []) owner.delete(p);
    lists.delete(key);
  };
  if (!c.replacePeers) {
    for (const p of dev.peers) {
      const key = keyToHex(p.publicKey), list = new Map<string, AllowedIp>();
      for (const ip of p.allowedIps) {
        const prefix = formatPrefix(ip);
        list.set(prefix, ip);
        owner.set(prefix, key);
      }
      lists.set(key, list);
    }
  }
  const ownKey = c.privateKey ? (isZeroKey(c.privateKey) ? null : publicKey(c.privateKey)) : dev.publicKey;
  const own = ownKey && keyToHex(ownKey);
  if (own) drop(own);
  const peers = c.peers.map((block) => {
    const key = keyToHex(block.publicKey ?? new Uint8Array(32));
    if (block.remove) {
      drop(key);
      return [block];
    }
    if (key === own || (block.updateOnly && !lists.has(key))) {
      const kept = block.allowedIps.filter((ip) => !ip.remove);
      return [kept.length === block.allowedIps.length ? block : { ...block, allowedIps: kept }];
    }
    let list = lists.get(key);
    if (!list) lists.set(key, (list = new Map()));
    if (block.replaceAllowedIps) {
      for (const p of list.keys()) owner.delete(p);
      list.clear();
    }
    let removes = false;
    // Prefixes this block takes from other peers: if they are gone again by its end, the
    // replacement alone would leave them with their old holders.
    const taken = new Map<string, AllowedIp>();
    for (const ip of block.allowedIps) {
      const prefix = formatPrefix(ip);
      const held = owner.get(prefix);
      if (ip.remove) {
        removes = true;
        if (held === key) (list.delete(prefix), owner.delete(prefix));
        continue;
      }
      const plain: AllowedIp = { family: ip.family, addr: ip.addr, cidr: ip.cidr };
      if (held !== undefined && held !== key) (lists.get(held)!.delete(prefix), taken.set(prefix, plain));
      list.delete(prefix);
      list.set(prefix, plain);
      owner.set(prefix, key);
    }
    if (!removes) return [block];
    const replacement = { ...block, replaceAllowedIps: true, allowedIps: [...list.values()] };
    const lost = [...taken].filter(([prefix]) => !list.has(prefix)).map(([, ip]) => ip);
    if (!lost.length) return [replacement];
    // Take them first (an insert moves a prefix), then the replacement drops them.
    return [{ publicKey: block.publicKey, remove: false, updateOnly: block.updateOnly, replaceAllowedIps: false, allowedIps: lost }, replacement];
  });
  return { ...c, peers: peers.flat() };
}

/**
 * Applies `c` through `io`: as it is when it removes no allowed IPs or the backend removes them
 * itself, else as withoutRemovals() rewrites it. Between the read and the rewritten change
 * another writer's change to those peers' allowed IPs would be overwritten, as with any
 * read-modify-write client; and a kernel whose probe peer is removed in between accepts the
 * probe unread (update-only on an absent peer), so an old one would then refuse the change
 * part-way. 0, or the errno of the step that failed.
 */
export async function applyWithRemovals(io: DeviceIo, c: DeviceConfig): Promise<number> {
  if (!removesAllowedIps(c)) return io.set(c);
  const read = await io.get();
  if (!read.ok) return read.errno;
  const probe = removalProbe(read.device);
  if (probe) {
    const errno = await io.set(probe);
    if (errno === 0) return io.set(c);
    if (errno !== EINVAL) return errno;
  }
  // Refused, or no peer to probe with (then every removal is a no-op or undoes an insert of
  // this same change, which the rewrite reproduces on any backend).
  return io.set(withoutRemovals(c, read.device));
}
