// Client side of the event stream (a UAPI extension of our daemon): connect to the interface's
// UAPI socket, send `events=1\n\n`, expect `errno=0\n\n`, then read one JSON object per line.
// wireguard-go does not know the operation and closes the connection without answering; that
// is reported as "not supported".
import { ENODEV, EOPNOTSUPP, EPROTO, errnoFromCode, strerror } from "../core/errno.ts";

/** Resolves once the daemon accepted (ok) or refused/closed (error text). */
export interface EventSubscription {
  /** Resolves when the stream ends (daemon gone or close() called). */
  readonly ended: Promise<void>;
  close(): void;
}

/** On failure: wg events' message and the errno behind it (EOPNOTSUPP when the daemon has no stream). */
export type SubscribeResult = { ok: true; sub: EventSubscription } | { ok: false; error: string; errno: number };

export async function subscribeEvents(path: string, onLine: (line: string) => void): Promise<SubscribeResult> {
  const accepted = Promise.withResolvers<SubscribeResult>();
  const ended = Promise.withResolvers<void>();
  const dec = new TextDecoder();
  let buf = "";
  let subscribed = false;
  let socket: Awaited<ReturnType<typeof Bun.connect>> | null = null;
  const sub: EventSubscription = {
    ended: ended.promise,
    close() {
      socket?.end();
    },
  };
  const finish = () => {
    if (!subscribed) accepted.resolve({ ok: false, error: "the daemon does not support event streams", errno: EOPNOTSUPP });
    ended.resolve();
  };
  try {
    socket = await Bun.connect({
      unix: path,
      socket: {
        data(_s, chunk) {
          buf += dec.decode(chunk, { stream: true });
          if (!subscribed) {
            const end = buf.indexOf("\n\n");
            if (end < 0) return;
            const header = buf.slice(0, end);
            buf = buf.slice(end + 2);
            if (header !== "errno=0") {
              const refused = /^errno=-?(\d+)$/.exec(header);
              accepted.resolve({ ok: false, error: `the daemon refused the subscription (${header.replace(/\n/g, " ")})`, errno: refused ? Number(refused[1]) : EPROTO });
              _s.end();
              return;
            }
            subscribed = true;
            accepted.resolve({ ok: true, sub });
          }
          for (;;) {
            const nl = buf.indexOf("\n");
            if (nl < 0) break;
            const line = buf.slice(0, nl);
            buf = buf.slice(nl + 1);
            if (line !== "") onLine(line);
          }
        },
        close: finish,
        end: finish,
        error: finish,
      },
    });
  } catch (e) {
    // wg's wording: a missing socket means no such interface.
    const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    const errno = code === "ENOENT" ? ENODEV : errnoFromCode(code);
    return { ok: false, error: code === "ENOENT" || code === "ECONNREFUSED" ? strerror(errno) : String(code), errno };
  }
  socket.write("events=1\n\n");
  return accepted.promise;
}
