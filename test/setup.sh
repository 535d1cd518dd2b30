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
  # test/wg-exporter.test.ts parses the OpenMetrics page with prometheus_client (a module, no
  # command), under Debian's python3.
  /usr/bin/python3 -c 'import prometheus_client.openmetrics.parser' >/dev/null 2>&1 || need+=(python3-prometheus-client)
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
[ "${1:-}" = demo ] && exit 0

# test/kernel-incr.test.ts also boots a kernel new enough to remove single allowed IPs (Linux
# 6.16+): the newest `-amd64` kernel of trixie-backports (the cloud flavour has no 9p), chosen
# now, fetched with an apt configuration of its own (the host's sources and package state stay
# as they are) and unpacked, not installed, into $kernels/<release>/ (its packages' root, plus
# the modules.dep that their postinst would have made), where it stays for later runs; lib-vm.ts
# (cachedKernel) finds it there. A failure is written to $kernels/fetch-failed, which that test
# reports; the rest of the suite goes on.
fetch_kernel() {
  local kernels=/var/cache/wgts-test/kernels
  if [ "$(id -u)" != 0 ]; then echo "test/setup.sh: not root, so no trixie-backports kernel in $kernels (test/kernel-incr.test.ts needs it)" >&2; return; fi
  mkdir -p "$kernels"
  give_up() {
    echo "test/setup.sh: $1" >&2
    printf '%s\n' "$1" > "$kernels/fetch-failed"
  }
  . "$(dirname "$0")/private-apt.sh"
  private_apt /var/cache/wgts-test/apt trixie-backports || { give_up "cannot fetch a trixie-backports kernel: $PRIVATE_APT_WHY"; return; }
  local o=("${PRIVATE_APT[@]}")
  # The newest image all of whose dependencies of its own release are in the archive: newer
  # kernels split the files into linux-binary-, linux-modules- and linux-base- packages, which
  # for a superseded version may be gone while its image is still listed.
  local candidate pkg= release= debs=() kind name
  for candidate in $(apt-cache "${o[@]}" search --names-only '^linux-image-[0-9].*-amd64$' | cut -d' ' -f1 | grep -Ev -- '-(cloud|rt)-amd64$' | sort -Vr); do
    release=${candidate#linux-image-} pkg=$candidate debs=()
    while read -r kind name; do
      [ "$kind" = Depends: ] || continue
      case $name in
        "<"*"-$release>") pkg= ;;
        *"-$release") debs+=("$name") ;;
      esac
    done < <(apt-cache "${o[@]}" depends "$candidate")
    [ -z "$pkg" ] || break
  done
  [ -n "$pkg" ] || { give_up "cannot fetch a trixie-backports kernel: no linux-image-<version>-amd64 listed with all its packages"; return; }
  if [ ! -d "$kernels/$release" ]; then
    local tmp=$kernels/.partial
    rm -rf "$tmp" && mkdir -p "$tmp/debs"
    if ! (cd "$tmp/debs" && apt-get "${o[@]}" download -qq "$pkg" "${debs[@]}" > ../download.log 2>&1 < /dev/null); then
      give_up "cannot fetch $pkg: apt-get download failed: $(tail -n 3 "$tmp/download.log" | tr '\n' ' ')"
      rm -rf "$tmp"
      return
    fi
    for d in "$tmp"/debs/*.deb; do dpkg -x "$d" "$tmp" || { give_up "dpkg -x $d failed"; rm -rf "$tmp"; return; }; done
    rm -rf "$tmp/debs" "$tmp/download.log"
    # This depmod (and the guest's modprobe -d) looks in <root>/lib/modules, merged-/usr packages
    # ship /usr/lib/modules.
    [ -e "$tmp/lib" ] || ln -s usr/lib "$tmp/lib"
    local mods=$tmp/lib/modules/$release
    if ! { [ -e "$mods/vmlinuz" ] || [ -e "$tmp/boot/vmlinuz-$release" ]; } || [ -z "$(find "$mods" -name 'wireguard.ko*' -print -quit 2> /dev/null)" ] || [ -z "$(find "$mods" -name '9p.ko*' -print -quit 2> /dev/null)" ]; then
      give_up "$pkg unpacked without a vmlinuz, wireguard or 9p module"
      rm -rf "$tmp"
      return
    fi
    depmod -b "$tmp" "$release" || { give_up "depmod for $pkg failed"; rm -rf "$tmp"; return; }
    mv "$tmp" "$kernels/$release"
    echo "test/setup.sh: unpacked $pkg into $kernels/$release"
  fi
  # Only the newest is kept.
  find "$kernels" -mindepth 1 -maxdepth 1 ! -name "$release" -exec rm -rf {} +
}
fetch_kernel
