// What the wg-quick differential suites share (test/wg-quick.test.ts on the host with userspace
// tunnels, test/kernel-wg-quick.test.ts in the kernel VM): the namespace that looks like a host,
// the resolvconf stand-in, the two reference configurations, and the state snapshot of a
// namespace with the normalisation of what the kernel chooses differently in twin namespaces.

/** The shell lines of a snapshot; each one's stdout is one field. */
export const SNAPSHOT_COMMANDS = {
  links: "ip -o link | sed 's/ qlen [0-9]*//; s/link\\/[a-z]* .*//'",
  addrs: "ip addr",
  /** Both families. */
  routes: "ip -d route show table all",
  rules: "ip -d -4 rule; ip -d -6 rule",
  nft: "nft list ruleset",
  /** iptables-save and ip6tables-save without their timestamp comments. */
  xtables: "{ iptables-save; ip6tables-save; } | grep -v '^#'",
} as const;

export type Snapshot = Record<keyof typeof SNAPSHOT_COMMANDS, string>;

/** Kernel-chosen values that differ between twin namespaces: link-local addresses, ifindexes, packet counters. */
export function normState(s: string, nsName: string): string {
  return s
    .replaceAll(nsName, "NS")
    .replace(/fe80::[0-9a-f:]+/g, "fe80::LL")
    .replace(/^\d+: /gm, "N: ")
    .replace(/@if\d+/g, "@ifN")
    .replace(/counter packets \d+ bytes \d+/g, "counter packets N bytes N")
    .replace(/ \[\d+:\d+\]$/gm, " [N:N]");
}

/**
 * The commands' outputs normalised. Line order within a routing table follows insertion order,
 * which for link-local routes depends on when each link got carrier: routes compare as a set.
 */
export function normSnapshot<T extends Partial<Snapshot>>(raw: T, nsName: string): T {
  const out = { ...raw };
  for (const k of Object.keys(out) as (keyof Snapshot)[]) out[k] = normState(out[k]!, nsName);
  if (out.routes !== undefined) out.routes = out.routes.split("\n").sort().join("\n");
  return out;
}

/** wireguard-go lists peers in Go map order (random): compare configurations with peers sorted. */
export function sortPeers(conf: string): string {
  const blocks = conf.split(/\n(?=\[Peer\]\n)/);
  const head = blocks.shift() ?? "";
  return [head, ...blocks.map((b) => b.replace(/\n*$/, "\n")).sort()].join("\n");
}

/** `s` as one shell word. */
export const shq = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

/** `ip -batch` lines of the host namespace, after its links exist. */
const HOST_NS_BATCH = [
  "link set eth0 mtu 1460 up",
  "link set eth0peer up",
  "addr add 198.51.100.2/24 dev eth0",
  "addr add fd51::2/64 dev eth0 nodad",
  "route add default via 198.51.100.1",
  "route add default via fd51::1 dev eth0",
  "route add 203.0.113.0/24 via 198.51.100.1 mtu 1300",
];

/**
 * Shell lines (to be joined with &&) that make a namespace look like a host: eth0 (MTU 1460)
 * with IPv4 and IPv6 default routes, and a route with an mtu metric to 203.0.113.0/24. Few
 * processes: in the emulated guest each one is slow.
 */
export const HOST_NS_SETUP = [
  "echo 0 > /proc/sys/net/ipv6/conf/all/accept_dad",
  "echo 0 > /proc/sys/net/ipv6/conf/default/accept_dad",
  "ip link add eth0 address 02:00:00:00:00:01 type veth peer name eth0peer address 02:00:00:00:00:02",
  // eth0peer only gives eth0 its carrier. Without IPv6 on it, the kernel has no second
  // link-local route whose place in the table (first come as carrier arrives) could differ
  // between twin namespaces.
  "echo 1 > /proc/sys/net/ipv6/conf/eth0peer/disable_ipv6",
  `printf '%s\\n' ${HOST_NS_BATCH.map(shq).join(" ")} | ip -batch -`,
];

/**
 * Carrier (and with it eth0's link-local address and its routes) arrives asynchronously via
 * linkwatch; a snapshot taken before that would differ from later ones. This shell command
 * succeeds once it has arrived.
 */
export const CARRIER_ARRIVED = `case "$(ip -o -6 route show table local)" in *"local fe80::"*) true ;; *) false ;; esac`;

/**
 * resolvconf stand-in: records every call (and what was piped in) in `stateDir`/resolvconf.log,
 * answers -l from its state, fails when FAKE_RESOLVCONF_FAIL is set, and says so on stderr when
 * it runs without wg-quick's LC_ALL=C. `stateDir` is shell text.
 */
export const resolvconfStub = (stateDir: string) => `#!/bin/sh
d="${stateDir}"
echo "resolvconf $*" >> "$d/resolvconf.log"
[ "$LC_ALL" = C ] || echo "resolvconf: run without LC_ALL=C" >&2
[ -n "$FAKE_RESOLVCONF_FAIL" ] && { echo "resolvconf: simulated failure" >&2; exit 4; }
case "$1" in
-a) cat > "$d/if-$2"; sed 's/^/  | /' "$d/if-$2" >> "$d/resolvconf.log" ;;
-d) rm -f "$d/if-$2" ;;
-l) cat "$d/if-$2" ;;
esac
`;

/** Keys (base64) the reference configurations use. */
export interface QuickKeys {
  priv: string;
  peer1: string;
  peer2: string;
}

/** Split tunnel: two peers, IPv4+IPv6 addresses, DNS servers and search domains, an endpoint via eth0. */
export const splitConfig = (k: QuickKeys) => `[Interface]
PrivateKey = ${k.priv}
ListenPort = 51001
Address = 10.71.0.2/24, fd71::2/64
Address = 10.72.0.2/32
DNS = 10.71.0.53, fd71::53, example.com, corp.test
[Peer]
PublicKey = ${k.peer1}
AllowedIPs = 10.71.0.0/24, 10.99.0.0/16, fd99::/48
Endpoint = 198.51.100.1:51820
[Peer]
PublicKey = ${k.peer2}
AllowedIPs = 10.98.1.0/24, 192.0.2.77/32
`;

/** Full tunnel IPv4+IPv6 through one peer with an IPv6 endpoint. */
export const fullConfig = (k: QuickKeys) => `[Interface]
PrivateKey = ${k.priv}
ListenPort = 51002
Address = 10.73.0.2/32, fd73::2/128
DNS = 10.73.0.1
[Peer]
PublicKey = ${k.peer1}
AllowedIPs = 0.0.0.0/0, ::/0
Endpoint = [fd51::1]:51820
`;
