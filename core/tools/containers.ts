// What `wg` reads from and sends to a WireGuard device, whichever backend carries it (UAPI or the
// kernel's netlink), as wireguard-tools' containers.h: a device as read, and a change request.
export interface AllowedIp {
  family: 4 | 6;
  /** 4 or 16 bytes, as written (host bits are kept; the daemon masks them). */
  addr: Uint8Array;
  cidr: number;
  /**
   * Only in a change request: take this prefix away from the peer instead of adding it (wg's
   * `-PREFIX`, UAPI `allowed_ip=-PREFIX`, netlink WGALLOWEDIP_F_REMOVE_ME); a prefix the peer
   * does not hold is left alone.
   */
  remove?: boolean;
}

/** A device as read back from a daemon (what `wg show` prints). */
export interface WgDevice {
  /** Display name: the requested name truncated to 15 bytes. */
  name: string;
  privateKey: Uint8Array | null;
  publicKey: Uint8Array | null;
  listenPort: number;
  fwmark: number;
  peers: WgPeer[];
}

export interface WgPeer {
  publicKey: Uint8Array;
  /** null when the daemon reports the all-zero key. */
  presharedKey: Uint8Array | null;
  /** getnameinfo-numeric text: `1.2.3.4:5`, `[fe80::1%lo]:5`; null when unknown. */
  endpoint: string | null;
  lastHandshakeSec: bigint;
  lastHandshakeNsec: bigint;
  rxBytes: bigint;
  txBytes: bigint;
  persistentKeepalive: number;
  allowedIps: AllowedIp[];
}

/** A change request (what `wg set`/setconf/addconf/syncconf send). Absent field = leave alone. */
export interface DeviceConfig {
  privateKey?: Uint8Array;
  listenPort?: number;
  fwmark?: number;
  replacePeers: boolean;
  peers: PeerConfig[];
}

export interface PeerConfig {
  /** null while a config file's [Peer] has not named its key yet. */
  publicKey: Uint8Array | null;
  remove: boolean;
  /**
   * Change the peer only if it exists (never create it). wg's syntax cannot say this; the
   * allowed-IP removal probe (allowed-ip-removal.ts) and the client library set it.
   */
  updateOnly?: boolean;
  presharedKey?: Uint8Array;
  /** Already resolved, numeric form as in WgPeer.endpoint. */
  endpoint?: string;
  persistentKeepalive?: number;
  /** Drop the peer's allowed IPs before applying `allowedIps` (false: an incremental change). */
  replaceAllowedIps: boolean;
  /** Applied in order: each entry added (moved to the end if held) or, with `remove`, taken away. */
  allowedIps: AllowedIp[];
}

export function emptyDeviceConfig(): DeviceConfig {
  return { replacePeers: false, peers: [] };
}

export function emptyPeerConfig(): PeerConfig {
  return { publicKey: null, remove: false, replaceAllowedIps: false, allowedIps: [] };
}
