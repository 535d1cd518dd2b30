// The UAPI endpoint: a Unix stream socket at /var/run/wireguard/<iface>.sock, directory 0755,
// socket created under umask 077 (srwx------) like wireguard-go. A connection may carry several
// requests; each complete request (up to and including its empty line) is answered in order.
// Empty connections (wg's "has interface" probe) and clients vanishing mid-request are normal.
//
// Requests are collected whole before they are handled; wireguard-go sets no size limit and a
// `wg setconf` of 10,000 peers is ~2 MB, so the bound is generous (MAX_REQUEST) and a line may
// not exceed go's bufio.Scanner token limit (MAX_LINE). Extension: `events=1\n\n` turns the
// connection into an event stream (answered `errno=0\n\n`, then one JSON object per line);
// wireguard-go closes such a connection without answering, which tells clients it is missing.

import { chmodSync, existsSync, lstatSync, mkdirSync, unlinkSync } from "node:fs";
import type { Socket, UnixSocketListener } from "bun";
import { EADDRINUSE, EIO } from "../../core/errno.ts";
import { AF_UNIX, SOCK_CLOEXEC, SOCK_STREAM, SysError, libc } from "./libc.ts";

/** The answer to a set that fails as a whole (go's scanner error, a throwing handler). */
const EIO_ANSWER = `errno=-${EIO}\n\n`;

/** Connect probe: true when something accepts on `path` (so it is in use, not stale). */
function listening(path: string): boolean {
  const fd = libc.socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  const sa = new Uint8Array(110);
  sa[0] = AF_UNIX;
  sa.set(new TextEncoder().encode(path).subarray(0, 107), 2);
  const rc = libc.connect(fd, sa, sa.length);
  libc.close(fd);
  return rc === 0;
}

/** Bytes of one request that may be buffered before the connection is dropped. */
export const MAX_REQUEST = 64 << 20;
/** Longest line (go's bufio.MaxScanTokenSize); beyond it a set fails with EIO like go's scanner. */
export const MAX_LINE = 64 << 10;
/** Unsent event bytes a slow subscriber may accumulate before it is disconnected. */
export const MAX_SUBSCRIBER_BACKLOG = 4 << 20;

interface ConnState {
  decoder: TextDecoder;
  text: string;
  /** Where the search for the end of the request resumes (everything before has no "\n\n"). */
  scanFrom: number;
  pending: Uint8Array | null;
  closed: boolean;
  /** Close once everything pending is written. */
  ending: boolean;
  unsubscribe: (() => void) | null;
}

/** A handler's answer: text to send, and whether to close the connection afterwards. */
export type UapiAnswer = string | { response: string; close: boolean };

export interface UapiListenerOptions {
  /**
   * Called for a connection that sent `events=1\n\n`; `write` sends one line to it (false once
   * the subscriber is gone). Returns the function that ends the subscription.
   */
  subscribe?: (write: (line: string) => boolean) => () => void;
}

export interface UapiListener {
  readonly path: string;
  close(): void;
}

/**
 * Listens on `path`. `handle` gets one whole request ("get=1\n\n", "set=1\n...\n\n") and returns
 * the whole response; a plain "" or `close: true` closes the connection after it (go's behaviour
 * for an unknown operation). Throws SysError(EADDRINUSE) when another daemon answers on the socket.
 */
export function listenUapi(
  path: string,
  handle: (request: string) => UapiAnswer,
  log?: (msg: string) => void,
  options: UapiListenerOptions = {},
): UapiListener {
  const dir = path.slice(0, path.lastIndexOf("/"));
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  if (existsSync(path)) {
    if (listening(path)) throw new SysError(`listen ${path}`, EADDRINUSE);
    try {
      unlinkSync(path);
    } catch {}
  }
  const enc = new TextEncoder();
  const flushPending = (s: Socket<ConnState>) => {
    const st = s.data;
    while (st.pending && st.pending.length > 0) {
      const n = s.write(st.pending);
      if (n <= 0) return;
      st.pending = n >= st.pending.length ? null : st.pending.subarray(n);
    }
    if (st.ending && st.pending === null) s.end();
  };
  const send = (s: Socket<ConnState>, text: string) => {
    const bytes = enc.encode(text);
    const st = s.data;
    st.pending = st.pending ? concat(st.pending, bytes) : bytes;
    flushPending(s);
  };
  const finish = (s: Socket<ConnState>) => {
    const st = s.data;
    st.closed = true;
    st.ending = true;
    st.text = "";
    flushPending(s);
  };
  const dropSubscription = (st: ConnState) => {
    const u = st.unsubscribe;
    st.unsubscribe = null;
    u?.();
  };
  const old = process.umask(0o077);
  let server: UnixSocketListener<ConnState>;
  try {
    server = Bun.listen<ConnState>({
      unix: path,
      // A client may shut down its sending side right after the request (socat, `nc -U -N`):
      // the answer still goes out whole, as from wireguard-go, and then the connection ends.
      allowHalfOpen: true,
      socket: {
        open(s) {
          s.data = { decoder: new TextDecoder(), text: "", scanFrom: 0, pending: null, closed: false, ending: false, unsubscribe: null };
        },
        data(s, chunk) {
          const st = s.data;
          // A subscriber's further input is ignored.
          if (st.closed || st.unsubscribe) return;
          st.text += st.decoder.decode(chunk, { stream: true });
          for (;;) {
            const end = requestEnd(st.text, st.scanFrom);
            if (end < 0) break;
            const req = st.text.slice(0, end);
            st.text = st.text.slice(end);
            st.scanFrom = 0;
            if (req === "events=1\n\n" && options.subscribe) {
              st.text = "";
              send(s, "errno=0\n\n");
              const write = (line: string): boolean => {
                if (st.closed) return false;
                send(s, line);
                if (st.pending !== null && st.pending.length > MAX_SUBSCRIBER_BACKLOG) {
                  log?.("UAPI: event subscriber too slow, disconnected");
                  dropSubscription(st);
                  finish(s);
                  return false;
                }
                return true;
              };
              st.unsubscribe = options.subscribe(write);
              return;
            }
            let res: { response: string; close: boolean };
            try {
              const r = handle(req);
              res = typeof r === "string" ? { response: r, close: r === "" } : r;
            } catch (e) {
              log?.(`UAPI request failed: ${e instanceof Error ? e.message : String(e)}`);
              res = { response: EIO_ANSWER, close: false };
            }
            if (st.closed) return;
            if (res.response !== "") send(s, res.response);
            if (res.close) {
              finish(s);
              return;
            }
          }
          // Resume the search for "\n\n" where this one stopped (one character back, in case the
          // pair is split across chunks), so a large request costs linear time.
          st.scanFrom = Math.max(0, st.text.length - 1);
          const lineStart = st.text.lastIndexOf("\n") + 1;
          if (st.text.length - lineStart > MAX_LINE) {
            // go's scanner fails a set with EIO on an over-long line; any other op never ends.
            log?.("UAPI: line too long");
            if (st.text.startsWith("set=1\n")) send(s, EIO_ANSWER);
            finish(s);
          } else if (st.text.length > MAX_REQUEST) {
            log?.("UAPI: request too large");
            finish(s);
          }
        },
        drain(s) {
          flushPending(s);
        },
        end(s) {
          // An events subscriber that stops sending still listens; anyone else is done.
          if (!s.data || s.data.unsubscribe) return;
          finish(s);
        },
        close(s) {
          if (!s.data) return;
          s.data.closed = true;
          dropSubscription(s.data);
        },
        error(s) {
          if (!s.data) return;
          s.data.closed = true;
          dropSubscription(s.data);
        },
      },
    });
  } finally {
    process.umask(old);
  }
  try {
    chmodSync(path, 0o700);
  } catch {}
  const ino = lstatSync(path).ino;
  return {
    path,
    close() {
      server.stop(true);
      try {
        // Only remove the socket if it is still ours (a new daemon may have replaced it).
        if (lstatSync(path).ino === ino) unlinkSync(path);
      } catch {}
    },
  };
}

/** Index just past the empty line ending the first request in `text` (searched from `from`), or -1. */
function requestEnd(text: string, from: number): number {
  if (text.startsWith("\n")) return 1;
  const i = text.indexOf("\n\n", from);
  return i < 0 ? -1 : i + 2;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const r = new Uint8Array(a.length + b.length);
  r.set(a, 0);
  r.set(b, a.length);
  return r;
}

/** Inode of the socket file, or -1 if it is gone (the daemon exits when its socket is deleted). */
export function socketInode(path: string): number {
  try {
    return lstatSync(path).ino;
  } catch {
    return -1;
  }
}
