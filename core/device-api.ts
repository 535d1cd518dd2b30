// The contract between the pure protocol engine (core/device.ts) and the daemon that wires it
// to the OS (platform/), and the configuration surface the UAPI server (core/uapi-server.ts)
// works on. The engine never touches sockets, files or clocks itself.
import type { AllowedIPs } from "./allowedips.ts";
import type { Endpoint } from "./endpoint.ts";
import type { Peer } from "./peer.ts";

/** A log message's level (wireguard-go prints verbose and debug both as DEBUG). */
export type LogLevel = "error" | "verbose" | "debug";
/** Where log lines go (the daemon prints them; tests collect them). */
export type Logger = (level: LogLevel, msg: string) => void;

/** The tunnel MTU a new interface gets, as wireguard-go and the kernel choose it. */
export const DEFAULT_MTU = 1420;

/**
 * A peer's sent-bytes counter. wireguard-go counts a datagram only once the socket took it, so a
 * send that fails later (sendmmsg batches them; unreachable network, firewall) is debited here.
 */
export interface TxAccount {
  txBytes: number;
}

/** Side effects the engine asks for. Buffers passed in are only valid during the call. */
export interface DeviceIO {
  /**
   * Send one UDP payload to `ep`, from its sticky source if it has one; `account`'s txBytes
   * loses `len` if the datagram cannot be sent. A sticky source the OS refuses is cleared on `ep`.
   */
  sendUdp(buf: Uint8Array, off: number, len: number, ep: Endpoint, account?: TxAccount): void;
  /** Deliver one decrypted IP packet to the TUN device. */
  writeTun(buf: Uint8Array, off: number, len: number): void;
  /**
   * (Re)bind the UDP socket(s) to `port` (0 = random) with `fwmark` (0 = none).
   * Returns the port actually bound; throws an Error with a numeric `errno` property on failure.
   */
  bind(port: number, fwmark: number): number;
  /** Interface name for an IPv6 scope id, for endpoint text (`[fe80::1%eth0]:51820`). */
  scopeName?(scope: number): string;
  /** Structured notifications (handshake complete, endpoint changed, peer added...). */
  event?(ev: DeviceEvent): void;
  log?(level: LogLevel, msg: string): void;
}

export type DeviceEvent =
  | { type: "handshake"; publicKey: string; endpoint: string | null }
  | { type: "handshake-failed"; publicKey: string }
  | { type: "endpoint"; publicKey: string; endpoint: string }
  | { type: "peer-added"; publicKey: string }
  | { type: "peer-removed"; publicKey: string }
  | { type: "keys-rotated"; publicKey: string };

/** Injected time sources: monotonic milliseconds and wall-clock milliseconds since the epoch. */
export interface Clock {
  mono(): number;
  wall(): number;
}

/**
 * The protocol engine, implemented by core/device.ts (`createDevice(io, clock, opts)`).
 * The daemon feeds it packets and time; everything it wants done goes through DeviceIO.
 */
export interface Engine {
  /**
   * One received UDP payload from `src`; src's sticky source is the local address it arrived on.
   * src and buf are only valid during the call (the engine copies what it keeps).
   */
  receiveUdp(buf: Uint8Array, off: number, len: number, src: Endpoint): void;
  /** One IP packet read from the TUN device, to be encrypted towards the peer its destination maps to. */
  sendTunPacket(buf: Uint8Array, off: number, len: number): void;
  /** Run every timer due at clock.mono(). */
  tick(): void;
  /** Monotonic ms at which tick() next has work (Infinity when nothing is armed). */
  nextDeadline(): number;
  /** One whole UAPI request ("get=1\n\n" or "set=1\n...\n\n") in, the whole response out. */
  uapi(request: string): UapiReply;
  /**
   * Bind the port (io.bind) and start; the engine runs once the link is up too (setLinkUp).
   * Throws the bind error, and then stays down.
   */
  up(): void;
  /**
   * The TUN link's administrative state (default up). Down is the kernel's device stop: sessions,
   * timers and staged packets go and nothing is sent or answered, while the port stays bound
   * (as wireguard-go keeps it); up starts every persistent keepalive.
   */
  setLinkUp(up: boolean): void;
  /**
   * Routes or addresses changed: every peer's sticky source that `keep` refuses is forgotten (the
   * kernel's re-check after its route cache was dropped). Returns how many were.
   */
  checkSources(keep: (ep: Endpoint) => boolean): number;
  /**
   * Whether some peer's current endpoint is `port` at the `family` address in addr[off..] (4 or
   * 16 bytes, scope not compared): the platform's routing-loop guard asks it about datagrams from
   * our own port.
   */
  isPeerEndpoint(family: 4 | 6, addr: Uint8Array, off: number, port: number): boolean;
  setMtu(mtu: number): void;
  /**
   * With DeviceOptions.deferHandshakes: work through queued handshake messages for about
   * `budgetMs` (their backlog is the under-load signal). tick() also does this.
   */
  processHandshakes?(budgetMs: number): void;
  /** Zero every key and stop. */
  close(): void;
}

export interface DeviceOptions {
  /** Randomness source (tests inject a deterministic one). */
  random?: (n: number) => Uint8Array;
  mtu?: number;
  /**
   * Queue received handshake messages (bounded, like go's handshake queue) instead of answering
   * them inside receiveUdp; processHandshakes()/tick() answer them. Default false: synchronous.
   */
  deferHandshakes?: boolean;
}

/**
 * What a UAPI request gets back, and whether the connection must then be closed (go closes it
 * after an unknown operation or a truncated request).
 */
export interface UapiReply {
  response: string;
  close: boolean;
}

/** The device as the UAPI server reads and configures it (core/uapi-server.ts). */
export interface UapiDevice {
  readonly privateKey: Uint8Array | null;
  readonly publicKey: Uint8Array | null;
  readonly listenPort: number;
  readonly fwmark: number;
  /** Peers by hex public key, in insertion order. */
  readonly peers: ReadonlyMap<string, Peer>;
  readonly allowedIps: AllowedIPs<Peer>;
  /** Whether log() goes anywhere (peer names for log lines are then worth building). */
  readonly logging: boolean;
  log(level: LogLevel, msg: string): void;
  setPrivateKey(key: Uint8Array | null): void;
  /** After a new private key: peers with persistent keepalive send one, the others their staged packets. */
  startPeers(): void;
  /** Throws when the device is up and the port cannot be bound. */
  setListenPort(port: number): void;
  /** Throws when the device is up and the socket refuses the mark. */
  setFwmark(mark: number): void;
  lookupPeer(pub: Uint8Array): Peer | undefined;
  createPeer(pub: Uint8Array): Peer;
  removePeer(peer: Peer): void;
  removeAllPeers(): void;
  /** A configured endpoint; a changed address is reported like a roaming one. */
  setEndpoint(peer: Peer, ep: Endpoint): void;
  /**
   * The end of a peer's lines: staged packets out, and with `startKeepalive` (persistent
   * keepalive turned on or an endpoint given) a peer with persistent keepalive sends one.
   */
  peerConfigured(peer: Peer, startKeepalive: boolean): void;
  /** Endpoint text as UAPI `get` prints it. */
  endpointText(ep: Endpoint): string;
}
