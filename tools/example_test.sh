#!/usr/bin/env bash
# The library as another project uses it (ctest example_counter, so tools/test.sh and CI):
#   1. installs this build of Ballot to a temporary prefix (cmake --install);
#   2. checks that no installed header reaches a test hook (PlantedBugs, TEST_*);
#   3. builds examples/counter against the installed CMake package only, and its client once
#      more through pkg-config (ballot.pc);
#   4. runs a 3-node counter cluster on 127.0.0.1 (real processes, free ports), adds through the
#      client and checks the answers, SIGKILLs one node and checks that the other two still
#      answer, and stops the rest with SIGTERM.
# usage: tools/example_test.sh BUILD_DIR      (exit 0: passed; 77: skipped in a fuzz build)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="$(cd "${1:?usage: example_test.sh BUILD_DIR}" && pwd)"
work="$(mktemp -d /tmp/ballot-example.XXXXXX)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "example_test: FAIL: $*" >&2
  for log in "$work"/node*.log; do [ -f "$log" ] && { echo "--- $log" >&2; tail -20 "$log" >&2; }; done
  exit 1
}

# A sanitizer build's libraries need the sanitizer runtimes in whatever links them.
flags=()
if grep -q '^BALLOT_FUZZ:BOOL=ON' "$build/CMakeCache.txt"; then
  echo "example_test: skipped in a fuzz build"; exit 77
fi
if grep -q '^BALLOT_SANITIZE:BOOL=ON' "$build/CMakeCache.txt"; then
  flags+=(-DCMAKE_CXX_FLAGS=-fsanitize=address,undefined
          -DCMAKE_EXE_LINKER_FLAGS=-fsanitize=address,undefined)
fi

prefix="$work/prefix"
cmake --install "$build" --prefix "$prefix" >/dev/null
[ -f "$prefix/include/ballot/ballot.h" ] || fail "no include/ballot/ballot.h installed"
if grep -rlE 'PlantedBugs|TEST_' "$prefix/include"; then fail "an installed header has a test hook"; fi

cmake -S "$root/examples/counter" -B "$work/build" -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo "${flags[@]}" >/dev/null
cmake --build "$work/build" -j"${JOBS:-2}" >/dev/null
server="$work/build/counter-server"
client="$work/build/counter-client"

# The same client through pkg-config (libdir is lib/ or lib/<multiarch>/).
pc_dir="$(dirname "$(find "$prefix" -name ballot.pc | head -1)")"
# shellcheck disable=SC2046
c++ "$root/examples/counter/counter_client.cc" -o "$work/counter-client-pc" \
  $(PKG_CONFIG_PATH="$pc_dir" pkg-config --cflags --libs ballot) \
  ${flags:+-fsanitize=address,undefined}

ports=($(python3 -c '
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))'))
cluster="1@127.0.0.1:${ports[0]},2@127.0.0.1:${ports[1]},3@127.0.0.1:${ports[2]}"
for id in 1 2 3; do
  "$server" --id=$id --cluster="$cluster" --data_dir="$work/data$id" >"$work/node$id.log" 2>&1 &
  pids+=($!)
done

expect() {  # expect WANT CLIENT ARGS...: the client's answer must be WANT
  local want="$1"; shift
  local got
  got="$(timeout 30 "$@")" || fail "'${*:2}' failed"
  [ "$got" = "$want" ] || fail "'${*:2}' answered '$got', want '$want'"
}
expect 5 "$client" --cluster="$cluster" add 5
expect 12 "$client" --cluster="$cluster" add 7
expect 12 "$client" --cluster="$cluster" get
expect 9 "$work/counter-client-pc" --cluster="$cluster" add -3
if timeout 30 "$client" --cluster="$cluster" add x 2>/dev/null; then fail "'add x' was accepted"; fi

# One node killed: the other two are a majority and keep serving (a new leader if it led).
kill -9 "${pids[0]}"
wait "${pids[0]}" 2>/dev/null || true
expect 10 "$client" --cluster="$cluster" add 1
expect 10 "$client" --cluster="$cluster" get

for pid in "${pids[@]:1}"; do kill -TERM "$pid"; done
for pid in "${pids[@]:1}"; do
  timeout 30 tail --pid="$pid" -f /dev/null || fail "a node did not stop on SIGTERM"
done
echo "example_test: passed"
