// The contract between the pure protocol engine (core/device.ts) and the daemon that wires it
// to the OS (platform/). The engine never touches sockets, files or clocks itself.

/** The tunnel MTU a new interface gets, as wireguard-go and the kernel choose it. */
export const DEFAULT_MTU = 1420;

/** A UDP endpoint. `ip` is the textual address ("192.0.2.1", "fd00::1"); family 4 or 6. */
export interface Endpoint {
  family: 4 | 6;
  ip: string;
  port: number;
}

/**
 * A peer's sent-bytes counter. wireguard-go counts a datagram only once the socket took it, so a
 * send that fails later (sendmmsg batches them; unreachable network, firewall) is debited here.
 */
export interface TxAccount {
  txBytes: number;
}

/** Side effects the engine asks for. Buffers passed in are only valid during the call. */
export interface DeviceIO {
  /** Send one UDP payload to `ep`; `account`'s txBytes loses `len` if the datagram cannot be sent. */
  sendUdp(buf: Uint8Array, off: number, len: number, ep: Endpoint, account?: TxAccount): void;
  /** Deliver one decrypted IP packet to the TUN device. */
  writeTun(buf: Uint8Array, off: number, len: number): void;
  /**
   * (Re)bind the UDP socket(s) to `port` (0 = random) with `fwmark` (0 = none).
   * Returns the port actually bound; throws an Error with a numeric `errno` property on failure.
   */
  bind(port: number, fwmark: number): number;
  /** Forget cached sticky source addresses for this peer's endpoint (timer-driven). */
  clearSrc?(ep: Endpoint): void;
  /** Structured notifications (handshake complete, endpoint changed, peer added...). */
  event?(ev: DeviceEvent): void;
  log?(level: "error" | "verbose" | "debug", msg: string): void;
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
  /** One received UDP payload from `src` (src and buf are only valid during the call). */
  receiveUdp(buf: Uint8Array, off: number, len: number, src: Endpoint): void;
  /** One IP packet read from the TUN device, to be encrypted towards the peer its destination maps to. */
  sendTunPacket(buf: Uint8Array, off: number, len: number): void;
  /** Run every timer due at clock.mono(). */
  tick(): void;
  /** Monotonic ms at which tick() next has work (Infinity when nothing is armed). */
  nextDeadline(): number;
  /** One whole UAPI request ("get=1\n\n" or "set=1\n...\n\n") in, the whole response text out. */
  uapi(request: string): string;
  /** uapi() plus whether the connection must be closed after the response (go closes on an unknown operation). */
  uapiSession?(request: string): { response: string; close: boolean };
  /** Interface administratively up/down (timers only run while up; down clears sessions like go). */
  up(): void;
  down(): void;
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
