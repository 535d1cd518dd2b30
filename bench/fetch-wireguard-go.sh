#!/usr/bin/env bash
# Fetches the newer wireguard-go of Debian trixie (0.0.20231211, the build with UDP GSO/GRO and
# TUN offloads) for the benchmark's "wireguard-go-gso" implementation: downloaded with an apt
# configuration of its own (test/private-apt.sh) and unpacked, not installed, into
# /var/cache/wgts-bench/wireguard-go/<version>/ (only the newest kept). Prints the binary's path.
# Needs root and Debian's archive.
set -eu
. "$(dirname "$0")/../test/private-apt.sh"
root=/var/cache/wgts-bench
private_apt "$root/apt" trixie || { echo "bench/fetch-wireguard-go.sh: $PRIVATE_APT_WHY" >&2; exit 1; }
version=$(apt-cache "${PRIVATE_APT[@]}" show wireguard-go | sed -n 's/^Version: //p' | sort -Vr | head -n 1)
[ -n "$version" ] || { echo "bench/fetch-wireguard-go.sh: trixie lists no wireguard-go" >&2; exit 1; }
dest=$root/wireguard-go/$version
if [ ! -x "$dest/usr/bin/wireguard-go" ]; then
  tmp=$root/wireguard-go/.partial
  rm -rf "$tmp" && mkdir -p "$tmp"
  (cd "$tmp" && apt-get "${PRIVATE_APT[@]}" download -qq "wireguard-go=$version" < /dev/null)
  dpkg -x "$tmp"/wireguard-go_*.deb "$tmp/root"
  rm -rf "$dest" && mv "$tmp/root" "$dest" && rm -rf "$tmp"
fi
find "$root/wireguard-go" -mindepth 1 -maxdepth 1 ! -name "$version" -exec rm -rf {} +
echo "$dest/usr/bin/wireguard-go"
