// Starting the tunnel daemon in the background, the way `wireguard-go IFACE` does: the launcher
// returns only once the daemon reports ready (interface and UAPI socket exist) or has exited.
// Shared by `wg daemon IFACE` (which re-runs itself) and wg-quick (which starts the daemon this
// way directly instead of through a launcher process, saving `up` one Bun start-up).
import { spawn } from "node:child_process";

/** The daemon signals SIGUSR1 to the pid in this variable once it is ready. */
export const READY_ENV = "WG_DAEMON_NOTIFY_PID";

/**
 * Runs `cmd` (a daemon command line, without -f) detached, in the foreground mode of the daemon.
 * Resolves 0 when it reports ready, else its exit status. `argv0`: the compiled file picks its
 * tool from argv[0] ("wg", "wg-quick"), so the launcher passes a neutral one (cmd/self.ts).
 */
export function launchDaemon(cmd: string[], argv0: string): Promise<number> {
  return new Promise<number>((resolve) => {
    let done = false;
    const finish = (code: number) => {
      if (done) return;
      done = true;
      process.off("SIGUSR1", onReady);
      child.unref();
      resolve(code);
    };
    const onReady = () => finish(0);
    process.on("SIGUSR1", onReady);
    const child = spawn(cmd[0]!, cmd.slice(1), {
      argv0,
      detached: true,
      // The daemon logs to stdout. Until it reports ready that is only errors (the default
      // level) which must reach the user, e.g. why the TUN could not be created, as
      // wireguard-go's do; once ready, a daemon without LOG_LEVEL or with LOG_LEVEL=silent
      // points stdout and stderr at /dev/null.
      stdio: ["ignore", "inherit", "inherit"],
      env: { ...process.env, WG_PROCESS_FOREGROUND: "1", [READY_ENV]: String(process.pid) },
    });
    // The child stays referenced until it reports: an unreferenced child would let this process
    // fall off the event loop (exit 0) before learning that the daemon failed.
    child.on("exit", (code) => finish(code ?? 1));
    child.on("error", () => finish(1));
  });
}
