// Network namespaces: the daemon's `--udp-netns` creates the UDP socket inside another namespace
// (sockets keep the namespace they were created in), while the TUN device, the link monitor and
// everything else stay in the daemon's own; the link state of a TUN moved into another namespace
// is read there. setns(2) switches only the calling thread, and every FFI call of ours runs on
// the main thread, so switching there around the call and straight back is enough.
import { closeSync, openSync, statSync } from "node:fs";
import { SysError, errno, libcFunctions } from "./libc.ts";

const CLONE_NEWNET = 0x40000000;

const { setns } = libcFunctions({ setns: { args: ["i32", "i32"], returns: "i32" } });

/** `ip netns` names live in /var/run/netns; anything with a "/" is a path (e.g. /proc/PID/ns/net). */
export function netnsPath(spec: string): string {
  return spec.includes("/") ? spec : `/var/run/netns/${spec}`;
}

/** The main thread's own namespace, opened on first use (to return to after runInNetns). */
let homeFd = -1;

/** The inode that identifies the daemon's own network namespace. */
export function homeNetnsInode(): number {
  return statSync("/proc/self/ns/net").ino;
}

/**
 * Runs `fn` with the calling thread inside the network namespace the open file `fd` refers to
 * (a /var/run/netns file, /proc/PID/ns/net, or a TUN's TUNGETDEVNETNS), then back home.
 */
export function runInNetns<T>(fd: number, what: string, fn: () => T): T {
  if (homeFd < 0) homeFd = openSync("/proc/thread-self/ns/net", "r");
  if (setns(fd, CLONE_NEWNET) < 0) throw new SysError(`setns(${what})`, errno());
  try {
    return fn();
  } finally {
    // Staying in the wrong namespace would silently move the daemon's work: give up instead.
    if (setns(homeFd, CLONE_NEWNET) < 0) {
      process.stderr.write(`setns back to the daemon's namespace failed (errno ${errno()})\n`);
      process.exit(1);
    }
  }
}

export class NetnsSwitch {
  private readonly target: number;

  /** Opens the namespace `spec` (name or path); throws when it is missing or not a namespace. */
  constructor(readonly spec: string) {
    this.target = openSync(netnsPath(spec), "r");
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
    return runInNetns(this.target, this.spec, fn);
  }

  close(): void {
    try {
      closeSync(this.target);
    } catch {}
  }
}
