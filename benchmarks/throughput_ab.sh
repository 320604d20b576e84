#!/usr/bin/env bash
# Throughput of two builds side by side: alternating runs of each build's own ballot-bench
# --start_nodes=3 (its own ballotd, default flags), measured as benchmarks/compare_etcd.sh
# measures Ballot (kv, 16 B values, 1 s warm-up).
#
#   BEFORE=/tmp/ballot-before/build benchmarks/throughput_ab.sh
#
# To build the commit before the snapshot work (9388b01) beside this tree:
#   mkdir -p /tmp/ballot-before && git archive 9388b01 | tar -x -C /tmp/ballot-before
#   cmake -S /tmp/ballot-before -B /tmp/ballot-before/build -DCMAKE_BUILD_TYPE=RelWithDebInfo
#   cmake --build /tmp/ballot-before/build -j2 --target ballotd ballot-bench
#
# Environment: BEFORE (build dir of the other commit), AFTER (default: build), RUNS (5),
# CLIENTS (256), VALUE_BYTES (16), DURATION_S (10), OUT (default
# benchmarks/results/throughput-ab-<UTC time>). Prints every run and the median per build.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
BEFORE="$(cd "${BEFORE:?set BEFORE to the other build directory}" && pwd)"
AFTER="$(cd "${AFTER:-$root/build}" && pwd)"
RUNS="${RUNS:-5}"
CLIENTS="${CLIENTS:-256}"
VALUE_BYTES="${VALUE_BYTES:-16}"
DURATION_S="${DURATION_S:-10}"
OUT="${OUT:-$root/benchmarks/results/throughput-ab-$(date -u +%Y%m%dT%H%M)}"
mkdir -p "$OUT"
echo "date_utc=$(date -u +%FT%TZ) before=$BEFORE after=$AFTER clients=$CLIENTS value_bytes=$VALUE_BYTES duration_s=$DURATION_S loadavg=$(cut -d' ' -f1-3 /proc/loadavg)" |
  tee "$OUT/params.txt"
: >"$OUT/runs.jsonl"
for ((run = 1; run <= RUNS; run++)); do
  for side in before after; do
    dir="$BEFORE"
    [[ "$side" == after ]] && dir="$AFTER"
    line="$(timeout $((DURATION_S + 120)) "$dir/tools/ballot-bench" --start_nodes=3 --workload=kv \
      --value_bytes="$VALUE_BYTES" --clients="$CLIENTS" --duration_s="$DURATION_S" --json \
      2>>"$OUT/bench.log" | grep '^{' | tail -1)"
    echo "$line" | jq -c --arg side "$side" --argjson run "$run" '{side: $side, run: $run} + .' |
      tee -a "$OUT/runs.jsonl" | jq -r '"\(.side) run \(.run): \(.throughput_ops | floor) ops/s, p50 \(.p50_us) us, p99 \(.p99_us) us, \(.commands_per_slot) cmds/slot, server \(.server_cpu_us_per_op) us/op"'
  done
done
for side in before after; do
  jq -s -r --arg side "$side" '[.[] | select(.side == $side)] as $r
    | def med(f): ($r | map(f) | sort) as $v | if ($v | length) % 2 == 1 then $v[($v | length) / 2 | floor]
        else ($v[($v | length) / 2 - 1] + $v[($v | length) / 2]) / 2 end;
    "\($side): median \(med(.throughput_ops) | floor) ops/s (min \($r | map(.throughput_ops) | min | floor), max \($r | map(.throughput_ops) | max | floor)), p50 \(med(.p50_us)) us, p99 \(med(.p99_us)) us, server \(med(.server_cpu_us_per_op)) us/op"' \
    "$OUT/runs.jsonl"
done | tee "$OUT/summary.txt"
