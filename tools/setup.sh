#!/usr/bin/env bash
# Installs every Debian package Ballot's build, tests, demo and benchmarks need.
# Idempotent: installs only what is missing, so a second run does nothing.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libboost-dev libboost-system-dev
  capnproto libcapnp-dev
  liblmdb-dev lmdb-utils
  libgflags-dev libgoogle-glog-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  python3 procps
  python3-prometheus-client  # parses GET /metrics in tests/cluster/metrics_test.cc
  clang libclang-rt-dev  # libFuzzer and clang's sanitizers (tests/fuzz/)
  clang-format           # tools/format_check.sh (CI)
  iproute2 nftables      # network namespaces and link cuts (tests/partition/)
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi

echo "setup: installing ${missing[*]}"
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
"${sudo_cmd[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "setup: done"
