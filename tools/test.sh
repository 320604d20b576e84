#!/usr/bin/env bash
# The README's test command: installs what is missing, builds, runs every test (ctest).
# Exits non-zero on any failure. Every test has a time bound (see tests/CMakeLists.txt).
#   BUILD_DIR=...      build somewhere else (default: build/)
#   SANITIZE=1         build and test with AddressSanitizer + UBSan (into build-asan/)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/tools/setup.sh"
extra=()
if [ "${SANITIZE:-0}" = 1 ]; then
  export BUILD_DIR="${BUILD_DIR:-$root/build-asan}"
  extra+=(-DBALLOT_SANITIZE=ON)
fi
build="${BUILD_DIR:-$root/build}"
BUILD_DIR="$build" "$root/tools/build.sh" "${extra[@]}"
cd "$build"
ctest --output-on-failure -j"${JOBS:-2}" --timeout 900
