// `+`/`-` allowed IPs on the kernel's WireGuard, in qemu guests of test/lib-vm.ts, twice: on
// Debian's installed kernel (older than 6.16: it refuses WGALLOWEDIP_A_FLAGS, so our wg's probe
// is refused and each peer with removals gets its resulting list as a replacement), and on the
// newest trixie-backports kernel test/setup.sh unpacks (6.16+: the probe is accepted and the
// removals go as WGALLOWEDIP_F_REMOVE_ME). Both must leave the same lists; were the attribute
// ignored instead of refused, a removal would have become an insertion and the lists would
// differ. Which path the kernel took is read from its function tracer: a replacement calls
// wg_allowedips_remove_by_peer, a native removal wg_allowedips_remove_v4/_v6 (absent before
// 6.16); each of our wg's commands is followed by the count of both.
// One guest command per kernel: two namespaces with kernel WireGuard links (tunnelled over the
// guest's loopback), set up by the real /usr/bin/wg; then our wg's `set` and `addconf` with
// signed entries, each followed by the real wg's reading and pings to the removed and the kept
// prefix.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { clampPrivateKey, publicKey } from "../core/crypto.ts";
import { keyToBase64 } from "../core/encoding.ts";
import type { Lab } from "./netns.ts";
import { type Kernel, type Vm, bootTestVm, cachedKernel, stopTestVm, guestExecutable } from "./lib-vm.ts";
import { testKey } from "./wg-harness.ts";

const priv = (n: number) => keyToBase64(clampPrivateKey(testKey(n)));
const pub = (n: number) => keyToBase64(publicKey(clampPrivateKey(testKey(n))));
const [A, B, X] = [pub(1), pub(2), pub(3)];

const script = (exe: string) => `
W=/usr/bin/wg
T=/sys/kernel/tracing
mount -t tracefs tracefs $T || exit 3
# A kernel before 6.16 has no wg_allowedips_remove_v4/_v6 to trace.
for f in wg_allowedips_remove_by_peer wg_allowedips_remove_v4 wg_allowedips_remove_v6; do echo $f >> $T/set_ftrace_filter 2> /dev/null; done
echo function > $T/current_tracer || exit 3
ours() { ns=$1; shift; echo > $T/trace; ip netns exec $ns ${exe} "$@"; echo "rc=$?"; echo "kernel: lists replaced $(grep -c ' wg_allowedips_remove_by_peer <-' $T/trace), prefixes removed $(grep -c ' wg_allowedips_remove_v[46] <-' $T/trace)"; }
show() { ip netns exec a $W show wga allowed-ips; }
reach() { for to in "$@"; do ip netns exec a ping -c 1 -W 1 $to > /dev/null 2>&1 && echo "$to ok" || echo "$to dropped"; done; }
# Links made here and moved into a and b keep their UDP sockets here: the tunnel runs over lo.
for n in a b; do ip netns add $n && ip -n $n link set lo up && ip link add wg$n type wireguard && ip link set wg$n netns $n || exit 3; done
printf '%s\\n' ${priv(1)} > /tmp/ka; printf '%s\\n' ${priv(2)} > /tmp/kb
{
  ip netns exec a $W set wga private-key /tmp/ka listen-port 51001 peer ${B} endpoint 127.0.0.1:51002 persistent-keepalive 25 allowed-ips 10.1.0.2/32,10.2.0.0/24 peer ${X} allowed-ips 10.9.0.0/16 &&
  ip netns exec b $W set wgb private-key /tmp/kb listen-port 51002 peer ${A} endpoint 127.0.0.1:51001 allowed-ips 10.1.0.1/32 &&
  ip -n a addr add 10.1.0.1/24 dev wga && ip -n a link set wga up && ip -n a route add 10.2.0.0/24 dev wga &&
  ip -n b addr add 10.1.0.2/24 dev wgb && ip -n b addr add 10.2.0.1/24 dev wgb && ip -n b link set wgb up
} || exit 3
# The first packets wait for the handshake.
i=0; until ip netns exec a ping -c 1 -W 2 10.1.0.2 > /dev/null 2>&1; do i=$((i+1)); [ $i -lt 15 ] || break; done
echo "== before"; reach 10.1.0.2 10.2.0.1; show
ip netns exec a $W show wga dump | cut -f1-3,5,8 | sort > /tmp/before
echo "== set"; ours a set wga peer ${B} allowed-ips "-10.2.0.0/24, +10.3.0.0/24, -10.9.0.0/16"; show; reach 10.2.0.1 10.1.0.2
# Nothing but the allowed IPs changed: keys, endpoint, handshake (the session was kept), keepalive.
ip netns exec a $W show wga dump | cut -f1-3,5,8 | sort | cmp -s - /tmp/before && echo "rest unchanged"
echo "== addconf"; printf '[Peer]\\nPublicKey = %s\\nAllowedIPs = +10.2.0.0/24, -10.3.0.0/24, -10.1.0.2/32, 10.1.0.2\\n' ${B} > /tmp/inc.conf
ours a addconf wga /tmp/inc.conf; show; reach 10.2.0.1
echo "== bad"; ours a set wga peer ${B} allowed-ips -10.2.0.0/24,-x 2>&1; show
`;

/** Linux 6.16 or later (WGALLOWEDIP_A_FLAGS). */
const removesNatively = (release: string) => {
  const [major = 0, minor = 0] = release.split(".").map((n) => parseInt(n, 10));
  return major > 6 || (major === 6 && minor >= 16);
};

/**
 * The script's output on a kernel that removes natively or not: the same lists, traffic and
 * exit codes; what differs is the kernel's work per change (with native removals, the probe's
 * prefix and the change's two removed ones; without, one replaced list).
 */
const expected = (native: boolean) => {
  const kernel = native ? "kernel: lists replaced 0, prefixes removed 3" : "kernel: lists replaced 1, prefixes removed 0";
  return [
    "== before", "10.1.0.2 ok", "10.2.0.1 ok", `${B}\t10.1.0.2/32 10.2.0.0/24`, `${X}\t10.9.0.0/16`,
    "== set", "rc=0", kernel, `${B}\t10.1.0.2/32 10.3.0.0/24`, `${X}\t10.9.0.0/16`, "10.2.0.1 dropped", "10.1.0.2 ok", "rest unchanged",
    "== addconf", "rc=0", kernel, `${B}\t10.2.0.0/24 10.1.0.2/32`, `${X}\t10.9.0.0/16`, "10.2.0.1 ok",
    "== bad", "Unable to parse IP address: `x'", "rc=1", "kernel: lists replaced 0, prefixes removed 0", `${B}\t10.2.0.0/24 10.1.0.2/32`, `${X}\t10.9.0.0/16`,
    "",
  ].join("\n");
};

const cases: { title: string; area: string; kernel: () => Kernel | undefined; native: boolean }[] = [
  { title: "Debian's installed kernel (before 6.16): replaced lists", area: "kincr", kernel: () => undefined, native: false },
  { title: "the trixie-backports kernel (6.16+): native removals", area: "kincrnew", kernel: cachedKernel, native: true },
];

for (const c of cases) {
  describe(c.title, () => {
    let lab: Lab | undefined;
    let vm: Vm | undefined;
    let exe: string;
    beforeAll(async () => {
      ({ lab, vm } = await bootTestVm(c.area, { kernel: c.kernel() }));
      exe = await guestExecutable(vm);
    }, 170_000);
    afterAll(async () => {
      await stopTestVm(lab, vm);
    });

    test("wg set and addconf with +/- on a kernel link: lists, traffic and the rest of the peer", async () => {
      expect({ release: vm!.kernelRelease, native: removesNatively(vm!.kernelRelease) }).toEqual({ release: vm!.kernelRelease, native: c.native });
      const r = await vm!.sh(script(exe), { timeoutMs: 90_000 });
      expect(r.stderr).toBe("");
      expect(r.stdout).toBe(expected(c.native));
    }, 120_000);
  });
}
