#!/usr/bin/env bash
# Configures and builds Ballot into ${BUILD_DIR:-build} (RelWithDebInfo), two jobs at a time.
# Extra arguments go to cmake's configure step (e.g. -DBALLOT_SANITIZE=ON).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${BUILD_DIR:-$root/build}"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}" "$@" >/dev/null
cmake --build "$build" -j"${JOBS:-2}"
