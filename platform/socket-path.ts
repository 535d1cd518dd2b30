// Where UAPI sockets live, for the daemon that serves them and the tools that find them: the
// cross-platform convention /var/run/wireguard/NAME.sock shared with wireguard-go and wg.
export const SOCKET_DIR = "/var/run/wireguard";

/** The UAPI socket of interface `name` (a byte string); `dir` only for tests. */
export function socketPath(name: string, dir = SOCKET_DIR): string {
  return `${dir}/${name}.sock`;
}
