// What wg-quick reads and sets of the running kernel outside rtnetlink: whether the wireguard
// module is loaded, and sysctl keys.
import { existsSync, writeFileSync } from "node:fs";

/** The wireguard module is loaded (or built in): /sys/module/wireguard exists. */
export function wireguardModuleLoaded(): boolean {
  return existsSync("/sys/module/wireguard");
}

/** `sysctl -q KEY=VALUE` (KEY dotted, as sysctl takes it); false when the kernel refuses the write. */
export function setSysctl(key: string, value: string): boolean {
  try {
    writeFileSync(`/proc/sys/${key.replaceAll(".", "/")}`, `${value}\n`);
    return true;
  } catch {
    return false;
  }
}
