#!/usr/bin/env bash
# Installs the Debian packages the test suite uses as the other side of the wire and as oracles.
# Idempotent; needs root (CI runs as root). Never touches the host's network configuration.
set -eu
# `setup.sh demo` installs only what the demo needs.
pairs="ip:iproute2 ping:iputils-ping iperf3:iperf3 wireguard-go:wireguard-go wg:wireguard-tools nft:nftables iptables-restore:iptables tshark:tshark zsh:zsh fish:fish qemu-system-x86_64:qemu-system-x86 cpio:cpio xz:xz-utils"
[ "${1:-}" = demo ] && pairs="ip:iproute2 ping:iputils-ping"
# test/package.test.ts: debootstrap makes its throw-away Debian root, lintian checks the package.
[ "${1:-}" = demo ] || pairs="$pairs debootstrap:debootstrap lintian:lintian"
need=()
for pair in $pairs; do
  cmd=${pair%%:*}; pkg=${pair#*:}
  command -v "$cmd" >/dev/null 2>&1 || need+=("$pkg")
done
if [ "${1:-}" != demo ]; then
  # The kernel-* tests boot a Debian kernel in qemu (test/lib-vm.ts): a static busybox for its
  # initramfs, and an installed kernel whose modules include wireguard and 9p (the cloud flavour
  # has no 9p, so the generic one is installed when none qualifies).
  dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'ok installed' || need+=(busybox-static)
  kernel=
  for f in /boot/vmlinuz-*; do
    v=${f#/boot/vmlinuz-}
    [ -d "/lib/modules/$v" ] || continue
    if [ -n "$(find "/lib/modules/$v" -name 'wireguard.ko*' -print -quit)" ] && [ -n "$(find "/lib/modules/$v" -name '9p.ko*' -print -quit)" ]; then kernel=$v; fi
  done
  [ -n "$kernel" ] || need+=(linux-image-amd64)
fi
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then echo "test/setup.sh: missing ${need[*]} and not root" >&2; exit 1; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null 2>&1 || true
  apt-get install -y -qq "${need[@]}" >/dev/null
fi
