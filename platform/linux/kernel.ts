// What wg-quick reads and sets of the running kernel outside rtnetlink: whether the wireguard
// module is loaded, sysctl keys, and whether IPv6 is usable on a link. Sysctl keys are given
// dotted, as sysctl(8) takes them; they are read in the caller's network namespace.
import { closeSync, constants, existsSync, openSync, readFileSync, writeSync } from "node:fs";
import { errnoFromCode, EACCES, EPERM, strerror } from "../../core/errno.ts";

const EROFS = errnoFromCode("EROFS");

/** The wireguard module is loaded (or built in): /sys/module/wireguard exists. */
export function wireguardModuleLoaded(): boolean {
  return existsSync("/sys/module/wireguard");
}

const sysctlPath = (key: string) => `/proc/sys/${key.replaceAll(".", "/")}`;

const errnoOf = (e: unknown) => errnoFromCode((e as { code?: string }).code);

/** A /proc/sys file's value without its newline, or null when it cannot be read. */
function readValue(path: string): string | null {
  try {
    return readFileSync(path, "latin1").replace(/\n$/, "");
  } catch {
    return null;
  }
}

export const readSysctl = (key: string) => readValue(sysctlPath(key));

/** The key can be opened for writing (no write is made): false on a read-only /proc/sys, as in containers. */
export function sysctlWritable(key: string): boolean {
  try {
    closeSync(openSync(sysctlPath(key), constants.O_WRONLY));
    return true;
  } catch {
    return false;
  }
}

/**
 * `sysctl -q KEY=VALUE` (procps-ng 4.0): null when the value was written, else sysctl's message
 * (its exit status is then 1).
 */
export function setSysctl(key: string, value: string): string | null {
  let fd: number;
  try {
    fd = openSync(sysctlPath(key), constants.O_WRONLY);
  } catch (e) {
    const errno = errnoOf(e);
    if (errno === EPERM || errno === EACCES || errno === EROFS) return `sysctl: permission denied on key "${key}"`;
    return `sysctl: setting key "${key}": ${strerror(errno)}`;
  }
  try {
    writeSync(fd, `${value}\n`);
    return null;
  } catch (e) {
    return `sysctl: setting key "${key}": ${strerror(errnoOf(e))}`;
  } finally {
    closeSync(fd);
  }
}

/**
 * Why IPv6 cannot be configured on link IFACE, or null when it can: its `disable_ipv6` is 1 (set
 * for it, or inherited from net.ipv6.conf.all/default when it was created), or the kernel runs
 * without IPv6 (no /proc/sys/net/ipv6). The kernel then refuses IPv6 addresses and routes on it.
 */
export function ipv6Unavailable(iface: string): string | null {
  if (existsSync("/proc/sys/net") && !existsSync("/proc/sys/net/ipv6")) return "the kernel runs without IPv6";
  // By path: a dot in the name would split a dotted key.
  return readValue(`/proc/sys/net/ipv6/conf/${iface}/disable_ipv6`) === "1" ? `net.ipv6.conf.${iface}.disable_ipv6 = 1` : null;
}
