// The UAPI endpoint: a Unix stream socket at /var/run/wireguard/<iface>.sock, directory 0755,
// socket created under umask 077 (srwx------) like wireguard-go. A connection may carry several
// requests; each complete request (up to and including its empty line) is answered in order.
// Empty connections (wg's "has interface" probe) and clients vanishing mid-request are normal.

import { chmodSync, existsSync, lstatSync, mkdirSync, unlinkSync } from "node:fs";
import type { Socket, UnixSocketListener } from "bun";
import { E, SysError, libc } from "./libc.ts";

export const SOCKET_DIR = "/var/run/wireguard";

export function socketPath(iface: string, dir = SOCKET_DIR): string {
  return `${dir}/${iface}.sock`;
}

const AF_UNIX = 1;
const SOCK_STREAM = 1;
const SOCK_CLOEXEC = 0o2000000;

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

interface ConnState {
  decoder: TextDecoder;
  text: string;
  pending: Uint8Array | null;
  closed: boolean;
}

export interface UapiListener {
  readonly path: string;
  close(): void;
}

/**
 * Listens on `path`. `handle` gets one whole request ("get=1\n\n", "set=1\n...\n\n") and returns
 * the whole response. Throws SysError(EADDRINUSE) when another daemon answers on the socket.
 */
export function listenUapi(path: string, handle: (request: string) => string, log?: (msg: string) => void): UapiListener {
  const dir = path.slice(0, path.lastIndexOf("/"));
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  if (existsSync(path)) {
    if (listening(path)) throw new SysError(`listen ${path}`, E.EADDRINUSE);
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
  };
  const send = (s: Socket<ConnState>, text: string) => {
    const bytes = enc.encode(text);
    const st = s.data;
    st.pending = st.pending ? concat(st.pending, bytes) : bytes;
    flushPending(s);
  };
  const old = process.umask(0o077);
  let server: UnixSocketListener<ConnState>;
  try {
    server = Bun.listen<ConnState>({
      unix: path,
      socket: {
        open(s) {
          s.data = { decoder: new TextDecoder(), text: "", pending: null, closed: false };
        },
        data(s, chunk) {
          const st = s.data;
          if (st.closed) return;
          st.text += st.decoder.decode(chunk, { stream: true });
          for (;;) {
            const end = requestEnd(st.text);
            if (end < 0) break;
            const req = st.text.slice(0, end);
            st.text = st.text.slice(end);
            let res: string;
            try {
              res = handle(req);
            } catch (e) {
              log?.(`UAPI request failed: ${e instanceof Error ? e.message : String(e)}`);
              res = "errno=-5\n\n";
            }
            if (st.closed) return;
            send(s, res);
          }
          // A client that never ends its request must not grow memory without bound.
          if (st.text.length > 1 << 20) {
            st.closed = true;
            s.end();
          }
        },
        drain(s) {
          flushPending(s);
        },
        close(s) {
          if (s.data) s.data.closed = true;
        },
        error(s) {
          if (s.data) s.data.closed = true;
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

/** Index just past the empty line ending the first request in `text`, or -1. */
function requestEnd(text: string): number {
  if (text.startsWith("\n")) return 1;
  const i = text.indexOf("\n\n");
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
