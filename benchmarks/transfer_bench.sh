#!/usr/bin/env bash
# transfer_bench.sh: the client-visible pause of a leader transfer and of a rolling restart.
#
#   benchmarks/transfer_bench.sh                      # 3 runs of each, 16 clients, 20 s
#   RUNS=1 DURATION_S=8 benchmarks/transfer_bench.sh  # a quick trial
#
# Each run is build/tools/ballot-bench --start_nodes=3 --workload=seq (three ballotd with LMDB
# and real syncs, started by the tool) under CLIENTS closed-loop clients:
#   transfer: --transfer=TRANSFERS moves leadership (Client::TransferLeadership, what `ballotctl
#             leader transfer` does) evenly spaced over the run;
#   rolling:  --rolling_restart SIGTERMs node 1, restarts it and waits until it serves, then
#             node 2, then node 3 (a leader hands leadership over before it exits).
# Latency is reported two ways: (1) operations in flight during a window (sent before it ended,
# answered after it began; a window is the transfer call, or SIGTERM until the restarted node
# serves again) against every other operation; (2) by whole seconds of completion, seconds that
# saw a window against the others (what a per-second p99 graph shows). Also the failed
# operations (must be 0) and each window's length.
#
# Environment: RUNS (3), CLIENTS (16), DURATION_S (20), TRANSFERS (5), BUILD_DIR (build),
# OUT (results directory; default benchmarks/results/transfer-<UTC time>). Bounded: ballot-bench
# gives every request 5 s and kills its nodes when it exits.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="$(cd "${BUILD_DIR:-$root/build}" && pwd)"
RUNS="${RUNS:-3}"
CLIENTS="${CLIENTS:-16}"
DURATION_S="${DURATION_S:-20}"
TRANSFERS="${TRANSFERS:-5}"
OUT="${OUT:-$root/benchmarks/results/transfer-$(date -u +%Y%m%dT%H%M)}"
mkdir -p "$OUT"
bench="$BUILD/tools/ballot-bench"
[[ -x "$bench" ]] || { echo "no $bench: build first (tools/build.sh)" >&2; exit 1; }

# field NAME TEXT: the value of the first NAME=... in TEXT.
field() { grep -oE "(^|[ ;(])$1=[^ ;,]*" <<<"$2" | head -1 | cut -d= -f2; }

run_one() {  # run_one KIND RUN FLAGS...
  local kind="$1" run="$2"
  shift 2
  local out="$OUT/$kind-$run.out" log="$OUT/$kind-$run.log"
  timeout $((DURATION_S + 120)) "$bench" --start_nodes=3 --workload=seq --clients="$CLIENTS" \
    --duration_s="$DURATION_S" "$@" >"$out" 2>"$log"
  local point during seconds
  point="$(grep '^clients=' "$out")"
  during="$(grep '^disruptions=' "$out")"
  seconds="$(grep '^by second:' "$out")"
  # during line: "... during: ops=N p50_us=A p99_us=B max_us=C; steady: p50_us=D p99_us=E ..."
  local d_part="${during#*during: }" s_part="${during#*steady: }"
  local b_with="${seconds#*disruption }" b_other="${seconds#*other seconds }"
  printf '%-8s %3s %8s %7s %9s %9s %9s %10s %10s %9s  %s\n' "$kind" "$run" \
    "$(field throughput_ops "$point")" "$(field errors "$point")" \
    "$(field p99_us "$s_part")" "$(field p99_us "$d_part")" "$(field max_us "$d_part")" \
    "$(field p99_us "$b_other")" "$(field p99_us "$b_with")" "$(field ops "$d_part")" \
    "$(sed -n 's/.*window_ms=\(\[[^]]*\]\).*/\1/p' <<<"$during")" | tee -a "$OUT/summary.txt"
  grep -E 'leader transfer|SIGTERM' "$log" | sed 's/^/           /' >>"$OUT/events.txt" || true
}

{
  echo "transfer_bench: $CLIENTS clients, seq, $DURATION_S s per run, $RUNS runs; $(nproc) cores"
  echo "git $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?'), $(date -u +%FT%TZ)"
  printf '%-8s %3s %8s %7s %9s %9s %9s %10s %10s %9s  %s\n' kind run ops/s errors \
    steady_p99 during_p99 during_max sec_p99 sec_p99_w ops_during "windows_ms"
  echo "  (us; steady/during: by operation; sec_p99: seconds without a window, sec_p99_w: with)"
} | tee "$OUT/summary.txt"
for ((run = 1; run <= RUNS; run++)); do
  run_one transfer "$run" --transfer="$TRANSFERS"
  run_one rolling "$run" --rolling_restart
done
echo "events (from ballot-bench's log):"
cat "$OUT/events.txt" 2>/dev/null || true
echo "raw output in $OUT"
