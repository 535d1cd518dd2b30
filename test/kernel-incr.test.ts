// `+`/`-` allowed IPs on the kernel's WireGuard, in the qemu guest of test/lib-vm.ts (Debian's
// kernel, older than 6.16: it has no WGALLOWEDIP_A_FLAGS, so our wg's probe is refused and each
// peer with removals gets its resulting list as a replacement; were the attribute ignored
// instead of refused, the removal would have become an insertion and the lists below would
// differ). One guest command: two namespaces with kernel WireGuard links (tunnelled over the
// guest's loopback), set up by the real /usr/bin/wg; then our wg's `set` and `addconf` with signed entries, each
// followed by the real wg's reading and pings to the removed and the kept prefix.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { clampPrivateKey, publicKey } from "../core/crypto.ts";
import { keyToBase64 } from "../core/encoding.ts";
import type { Lab } from "./netns.ts";
import { type Vm, bootTestVm, stopTestVm, guestExecutable } from "./lib-vm.ts";
import { testKey } from "./wg-harness.ts";

const priv = (n: number) => keyToBase64(clampPrivateKey(testKey(n)));
const pub = (n: number) => keyToBase64(publicKey(clampPrivateKey(testKey(n))));
const [A, B, X] = [pub(1), pub(2), pub(3)];

let lab: Lab;
let vm: Vm;
let exe: string;
beforeAll(async () => {
  ({ lab, vm } = await bootTestVm("kincr"));
  exe = await guestExecutable(vm);
}, 170_000);
afterAll(async () => {
  await stopTestVm(lab, vm);
});

const script = () => `
W=/usr/bin/wg
ours() { ns=$1; shift; ip netns exec $ns ${exe} "$@"; echo "rc=$?"; }
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

test("wg set and addconf with +/- on a kernel link: lists, traffic and the rest of the peer", async () => {
  const r = await vm.sh(script(), { timeoutMs: 90_000 });
  expect(r.stderr).toBe("");
  expect(r.stdout).toBe(
    [
      "== before", "10.1.0.2 ok", "10.2.0.1 ok", `${B}\t10.1.0.2/32 10.2.0.0/24`, `${X}\t10.9.0.0/16`,
      "== set", "rc=0", `${B}\t10.1.0.2/32 10.3.0.0/24`, `${X}\t10.9.0.0/16`, "10.2.0.1 dropped", "10.1.0.2 ok", "rest unchanged",
      "== addconf", "rc=0", `${B}\t10.2.0.0/24 10.1.0.2/32`, `${X}\t10.9.0.0/16`, "10.2.0.1 ok",
      "== bad", "Unable to parse IP address: `x'", "rc=1", `${B}\t10.2.0.0/24 10.1.0.2/32`, `${X}\t10.9.0.0/16`,
      "",
    ].join("\n"),
  );
}, 120_000);
