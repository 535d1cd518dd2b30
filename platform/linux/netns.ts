// Network namespaces for the daemon's `--udp-netns`: the UDP socket is created inside another
// namespace (sockets keep the namespace they were created in), while the TUN device, the link
// monitor and everything else stay in the daemon's own. setns(2) switches only the calling
// thread, and every FFI call of ours runs on the main thread, so switching there around the
// socket() call and straight back is enough.
import { closeSync, openSync } from "node:fs";
import { SysError, errno, libcFunctions } from "./libc.ts";

const CLONE_NEWNET = 0x40000000;

const { setns } = libcFunctions({ setns: { args: ["i32", "i32"], returns: "i32" } });

/** `ip netns` names live in /var/run/netns; anything with a "/" is a path (e.g. /proc/PID/ns/net). */
export function netnsPath(spec: string): string {
  return spec.includes("/") ? spec : `/var/run/netns/${spec}`;
}

export class NetnsSwitch {
  private readonly target: number;
  private readonly home: number;

  /** Opens the namespace `spec` (name or path); throws when it is missing or not a namespace. */
  constructor(readonly spec: string) {
    this.target = openSync(netnsPath(spec), "r");
    this.home = openSync("/proc/thread-self/ns/net", "r");
    // Prove now (not at the first bind) that the file is a network namespace we may enter.
    try {
      this.run(() => 0);
    } catch (e) {
      this.close();
      throw e;
    }
  }

  /** Runs `fn` with the calling thread inside the target namespace. */
  run<T>(fn: () => T): T {
    if (setns(this.target, CLONE_NEWNET) < 0) throw new SysError(`setns(${this.spec})`, errno());
    try {
      return fn();
    } finally {
      // Staying in the wrong namespace would silently move the TUN side's work: give up instead.
      if (setns(this.home, CLONE_NEWNET) < 0) {
        process.stderr.write(`setns back to the daemon's namespace failed (errno ${errno()})\n`);
        process.exit(1);
      }
    }
  }

  close(): void {
    try {
      closeSync(this.target);
    } catch {}
    try {
      closeSync(this.home);
    } catch {}
  }
}
