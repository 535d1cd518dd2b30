# Sourced by test/setup.sh and bench/fetch-wireguard-go.sh.
#
# private_apt DIR SUITE...: an apt configuration of its own in DIR (sources.list, lists, cache) for
# Debian's SUITEs (main), so that packages of another release can be downloaded while the host's
# sources and package state stay as they are. Sets the array PRIVATE_APT to the options that
# select it (for apt-get and apt-cache) and fetches the package lists. On failure: status 1 and
# the reason in PRIVATE_APT_WHY.
private_apt() {
  local dir=$1 suite keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  shift
  [ -r "$keyring" ] || { PRIVATE_APT_WHY="$keyring (debian-archive-keyring) missing"; return 1; }
  mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial"
  : > "$dir/sources.list"
  for suite in "$@"; do echo "deb [signed-by=$keyring] http://deb.debian.org/debian $suite main" >> "$dir/sources.list"; done
  PRIVATE_APT=(-o "Dir::Etc::sourcelist=$dir/sources.list" -o Dir::Etc::sourceparts=- -o "Dir::State::Lists=$dir/lists" -o "Dir::Cache=$dir/cache" -o APT::Get::List-Cleanup=0 -o APT::Sandbox::User=root)
  apt-get "${PRIVATE_APT[@]}" update -qq --error-on=any > "$dir/update.log" 2>&1 || { PRIVATE_APT_WHY="apt-get update failed: $(tail -n 3 "$dir/update.log" | tr '\n' ' ')"; return 1; }
}
