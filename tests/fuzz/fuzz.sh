#!/usr/bin/env bash
# Builds and runs the libFuzzer targets (tests/fuzz/*_fuzzer.cc) with clang, ASan and UBSan, in
# ${FUZZ_BUILD_DIR:-build-fuzz}/ (separate from the GCC build).
#
#   tests/fuzz/fuzz.sh build             build every fuzz_<target> (and fuzz_make_corpus), and
#                                        every library (the clang -Wthread-safety check)
#   tests/fuzz/fuzz.sh smoke [runs]      each target, `runs` executions (default 20000) from its
#                                        checked-in corpus; what tools/test.sh runs
#   tests/fuzz/fuzz.sh soak [runs]       each target, `runs` executions (default 10^7), one at a
#                                        time; prints executions, exec/s and crashes per target
#   tests/fuzz/fuzz.sh corpus            regenerate tests/fuzz/corpus/ from valid encodings
#   tests/fuzz/fuzz.sh run <target> ...  one target with your own libFuzzer flags
#
# Inputs found new are written to a scratch corpus, never into the tree. A crash leaves its
# input in ${FUZZ_ARTIFACTS:-build-fuzz/artifacts}/<target>/; copy it to
# tests/fuzz/crashes/<target>/ with the fix: fuzz_replay_test then replays it in every build.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="${FUZZ_BUILD_DIR:-$root/build-fuzz}"
artifacts="${FUZZ_ARTIFACTS:-$build/artifacts}"
corpus="$root/tests/fuzz/corpus"
targets=(frame codec record_codec session_table applier_restore sequence_restore kv_restore
         lock_restore)

build() {
  CC="${FUZZ_CC:-clang}" CXX="${FUZZ_CXX:-clang++}" cmake -S "$root" -B "$build" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBALLOT_FUZZ=ON >/dev/null
  # ballot_libraries too: this is the clang build, where -Wthread-safety checks every
  # GUARDED_BY/REQUIRES annotation (statemachine/thread_annotations.h); a violation fails the build.
  cmake --build "$build" -j"${JOBS:-2}" --target fuzz_targets ballot_libraries
}

# run_target <target> <libFuzzer flags...>: fuzzes from the checked-in corpus into a scratch one.
run_target() {
  local t="$1"
  shift
  local scratch
  scratch="$(mktemp -d)"
  mkdir -p "$artifacts/$t"
  local rc=0
  # UBSan findings must crash (not just print) so that libFuzzer saves the input.
  UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1" \
    "$build/tests/fuzz/fuzz_$t" -artifact_prefix="$artifacts/$t/" -print_final_stats=1 \
    "$@" "$scratch" "$corpus/$t" >"$artifacts/$t.log" 2>&1 || rc=$?
  rm -rf "$scratch"
  return "$rc"
}

# summary <target>: executions, exec/s and the verdict from a run's log.
summary() {
  local t="$1" log="$artifacts/$1.log"
  local runs secs
  runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
  secs="$(sed -n 's/^stat::total_time_seconds: *//p' "$log" 2>/dev/null | tail -1)"
  printf '%-18s executions=%-10s exec/s=%-8s' "$t" "${runs:-?}" \
    "$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)"
  if grep -q 'ERROR: libFuzzer\|ERROR: AddressSanitizer\|runtime error:\|Check failed' "$log"; then
    echo " CRASH (see $log, input in $artifacts/$t/)"
    return 1
  fi
  echo " crashes=0"
}

cmd="${1:-smoke}"
case "$cmd" in
  build)
    build
    ;;
  smoke | soak)
    build
    default_runs=20000
    if [ "$cmd" = soak ]; then default_runs=10000000; fi
    runs="${2:-$default_runs}"
    failed=0
    for t in "${targets[@]}"; do
      start=$(date +%s)
      run_target "$t" -runs="$runs" || true
      summary "$t" || failed=1
      echo "                   wall seconds=$(($(date +%s) - start))"
    done
    if [ "$failed" != 0 ]; then
      echo "fuzz: a target crashed" >&2
      exit 1
    fi
    ;;
  corpus)
    build
    rm -rf "$corpus"
    "$build/tests/fuzz/fuzz_make_corpus" "$corpus"
    find "$corpus" -type f | wc -l | xargs echo "fuzz: seed files written:"
    ;;
  run)
    build
    t="$2"
    shift 2
    UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1" "$build/tests/fuzz/fuzz_$t" "$@"
    ;;
  *)
    echo "usage: $0 build | smoke [runs] | soak [runs] | corpus | run <target> [flags]" >&2
    exit 2
    ;;
esac
