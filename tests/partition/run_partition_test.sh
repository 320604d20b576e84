#!/usr/bin/env bash
# Runs the partition test binary (tests/partition/partition_test.cc) with cleanup that survives
# the binary: before and after (trap, on any exit), removes the network namespaces and links of
# partition runs whose process no longer exists (names "bp<pid>x<n>-..."). The binary cleans up
# after itself when it can; this covers a crash or ctest's timeout killing it.
#   run_partition_test.sh <partition_test binary> [gtest flags]
# Exit 77 (ctest: skipped) when not root or without ip/nft, with a loud SKIPPED message.
set -uo pipefail

skip() {
  local msg
  msg="$(printf '\n*** SKIPPED: %s\n*** Partition tests did NOT run; run as root to test real partitions.\n' "$1")"
  echo "$msg"
  echo "$msg" >&2
  exit 77
}
[ "$(id -u)" = 0 ] || skip "not root (network namespaces and nftables need CAP_NET_ADMIN)"
command -v ip >/dev/null || skip "no ip (Debian package iproute2)"
command -v nft >/dev/null || skip "no nft (Debian package nftables)"

sweep() {
  local ns pid
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^bp[0-9]+x[0-9]+-' || true); do
    pid="${ns#bp}"
    pid="${pid%%x*}"
    if ! kill -0 "$pid" 2>/dev/null; then ip netns del "$ns" 2>/dev/null || true; fi
  done
  for link in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//' |
                grep -E '^bp[0-9]+x[0-9]+-c$' || true); do
    pid="${link#bp}"
    pid="${pid%%x*}"
    if ! kill -0 "$pid" 2>/dev/null; then ip link del "$link" 2>/dev/null || true; fi
  done
}

sweep
child=0
on_exit() {
  if [ "$child" != 0 ]; then kill -KILL "$child" 2>/dev/null; wait "$child" 2>/dev/null; fi
  sweep
}
trap on_exit EXIT
trap 'exit 143' TERM INT
"$@" &
child=$!
wait "$child"
rc=$?
child=0
exit "$rc"
