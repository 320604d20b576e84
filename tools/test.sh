#!/usr/bin/env bash
# The README's test command: installs what is missing, builds, runs every test (ctest).
# Exits non-zero on any failure. Every test has a time bound (see tests/CMakeLists.txt).
# ctest includes example_counter (tools/example_test.sh): Ballot installed to a temporary prefix,
# examples/counter built against it, a 3-node cluster of it run.
#   BUILD_DIR=...      build somewhere else (default: build/)
#   SANITIZE=1         build and test with AddressSanitizer + UBSan (into build-asan/)
#   FUZZ=0             skip the short libFuzzer run of every fuzz target (tests/fuzz/fuzz.sh
#                      smoke, a clang build in build-fuzz/); FUZZ_RUNS=N sets its length
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
# The fuzz targets' corpora and saved crashes already ran in ctest (fuzz_replay_test); this
# fuzzes each target briefly with libFuzzer so that CI also explores beyond them.
if [ "${FUZZ:-1}" = 1 ] && [ "${SANITIZE:-0}" != 1 ]; then
  "$root/tests/fuzz/fuzz.sh" smoke "${FUZZ_RUNS:-20000}"
fi
