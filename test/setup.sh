#!/usr/bin/env bash
# Installs the Debian packages the test suite uses as the other side of the wire and as oracles.
# Idempotent; needs root (CI runs as root). Never touches the host's network configuration.
set -eu
# `setup.sh demo` installs only what the demo needs.
pairs="ip:iproute2 ping:iputils-ping iperf3:iperf3 wireguard-go:wireguard-go wg:wireguard-tools nft:nftables iptables-restore:iptables tshark:tshark zsh:zsh fish:fish"
[ "${1:-}" = demo ] && pairs="ip:iproute2 ping:iputils-ping"
# test/package.test.ts: debootstrap makes its throw-away Debian root, lintian checks the package.
[ "${1:-}" = demo ] || pairs="$pairs debootstrap:debootstrap lintian:lintian"
need=()
for pair in $pairs; do
  cmd=${pair%%:*}; pkg=${pair#*:}
  command -v "$cmd" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then echo "test/setup.sh: missing ${need[*]} and not root" >&2; exit 1; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null 2>&1 || true
  apt-get install -y -qq "${need[@]}" >/dev/null
fi
