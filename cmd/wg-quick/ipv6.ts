// Our extension for hosts with IPv6 disabled: where the kernel would refuse IPv6 on the
// interface (and the reference's `up` would fail on its first IPv6 address or route), each IPv6
// step is skipped with one warning line instead. Where IPv6 works nothing changes. `down` needs
// nothing of its own: it only removes what it finds.
import { ipv6Unavailable } from "../../platform/linux/kernel.ts";
import type { Quick } from "./context.ts";
import { err } from "./exit.ts";

/** True, after a `[!] ...` line naming `what`, when IPv6 cannot be configured on the interface. */
export function skipIpv6(q: Quick, what: string): boolean {
  const why = ipv6Unavailable(q.iface);
  if (why === null) return false;
  err(`[!] IPv6 is disabled on ${q.iface} (${why}): skipping ${what}\n`);
  return true;
}
