#!/usr/bin/env bash
# Client latency while a node writes a snapshot of a large state, against the seconds around it
# in the same run.
#
#   benchmarks/snapshot_bench.sh                       # ~1.1 GiB kv state, 4 snapshots
#   KEYS=1024 SNAPSHOTS=2 PERIOD_S=20 benchmarks/snapshot_bench.sh   # a quick trial (256 MiB)
#
# 1. Starts three ballotd (kv) that never snapshot by themselves (--snapshot_every_slots=0
#    --snapshot_every_log_mb=0), fills CLIENTS x KEYS keys with VALUE_BYTES each (default
#    64 x 4352 x 4 KiB = 1.14 GB of values), until every key is written.
# 2. Runs a fixed load (LOAD_CLIENTS closed-loop clients putting VALUE_BYTES values over the
#    same keys, so the state keeps its size) for (SNAPSHOTS + 1) x PERIOD_S seconds, with
#    ballot-bench --interval_csv (count, p50, p99, max per second). At PERIOD_S, 2 x PERIOD_S,
#    ... it runs `ballotctl snapshot --id=N`, alternating the leader and a follower, and notes
#    when the command was sent and when it returned (the snapshot durable).
# 3. benchmarks/snapshot_classify.py classifies each second as "during" (overlapping a snapshot
#    write, including the extra ones a retried request causes), "after" (the 2 s after one) or
#    "without" (the rest; the first 5 s are warm-up) and prints, for each class, ops/s, the
#    median and the worst of the per-second p99s, and the largest latency.
#
# Environment: CLIENTS (64), KEYS (4352), VALUE_BYTES (4096), FILL_S (240, the most the fill
# may take), LOAD_CLIENTS (16), SNAPSHOTS (4), PERIOD_S (40), NODE_FLAGS (extra ballotd flags),
# OUT (default benchmarks/results/snapshot-<UTC time>), BUILD_DIR, KEEP_WORK=1 to keep the data.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="$(cd "${BUILD_DIR:-$root/build}" && pwd)"
CLIENTS="${CLIENTS:-64}"
KEYS="${KEYS:-4352}"
VALUE_BYTES="${VALUE_BYTES:-4096}"
FILL_S="${FILL_S:-240}"
LOAD_CLIENTS="${LOAD_CLIENTS:-16}"
SNAPSHOTS="${SNAPSHOTS:-4}"
PERIOD_S="${PERIOD_S:-40}"
NODE_FLAGS="--snapshot_every_slots=0 --snapshot_every_log_mb=0 ${NODE_FLAGS:-}"
OUT="${OUT:-$root/benchmarks/results/snapshot-$(date -u +%Y%m%dT%H%M)}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
WORK="$(mktemp -d /tmp/ballot-snapbench.XXXXXX)"
# shellcheck source=benchmarks/cluster_lib.sh
source "$root/benchmarks/cluster_lib.sh"
bench_pid=""
cleanup() {
  [[ -n "$bench_pid" ]] && kill "$bench_pid" 2>/dev/null || true
  cluster_stop_all
  save_node_events "$OUT"
  [[ "${KEEP_WORK:-0}" == 1 ]] || rm -rf "$WORK"
}
trap cleanup EXIT

{
  echo "date_utc=$(date -u +%FT%TZ) commit=$(git -C "$root" rev-parse --short HEAD)"
  echo "state: $CLIENTS clients x $KEYS keys x $VALUE_BYTES B; load: $LOAD_CLIENTS clients"
  echo "node_flags=$NODE_FLAGS"
  echo "loadavg_before=$(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$OUT/params.txt"

cluster_init
cluster_start_all
wait_for_leader 60 >/dev/null

# 1. Fill. Each client (one request in flight) writes its keys in order, so once every
# client's last key exists every key has been written; the fill stops then (or fails after
# FILL_S).
echo "filling $((CLIENTS * KEYS)) keys of $VALUE_BYTES B"
fill_start=$SECONDS
"$BUILD/tools/ballot-bench" --cluster="$CLUSTER" --workload=kv --value_bytes="$VALUE_BYTES" \
  --kv_keys="$KEYS" --clients="$CLIENTS" --duration_s="$FILL_S" --warmup_s=0 \
  >"$OUT/fill.out" 2>"$OUT/fill.log" &
bench_pid=$!
written=0  # clients 0 .. written-1 have written their last key
while ((written < CLIENTS)); do
  kill -0 "$bench_pid" 2>/dev/null || { echo "the fill ended before every key was written: raise FILL_S" >&2; exit 1; }
  sleep 5
  while ((written < CLIENTS)) && ctl --timeout_ms=5000 kv get "k$written.$((KEYS - 1))" >/dev/null 2>&1; do
    written=$((written + 1))
  done
done
kill "$bench_pid" 2>/dev/null || true
wait "$bench_pid" 2>/dev/null || true
bench_pid=""
echo "fill: every key written after $((SECONDS - fill_start)) s" | tee -a "$OUT/params.txt"
leader="$(wait_for_leader 60)"
ctl status | tee -a "$OUT/params.txt"

# 2. Fixed load with snapshots in the middle.
total_s=$(((SNAPSHOTS + 1) * PERIOD_S))
: >"$OUT/seconds.csv"
"$BUILD/tools/ballot-bench" --cluster="$CLUSTER" --workload=kv --value_bytes="$VALUE_BYTES" \
  --kv_keys="$KEYS" --clients="$LOAD_CLIENTS" --duration_s="$total_s" --warmup_s=0 --json \
  --interval_csv="$OUT/seconds.csv" >"$OUT/load.out" 2>"$OUT/load.log" &
bench_pid=$!
load_start="$(date +%s.%N)"
echo "snapshot,node,role,start_unix_s,end_unix_s,seconds,covers_below,file_mb" >"$OUT/snapshots.csv"
for ((k = 1; k <= SNAPSHOTS; k++)); do
  sleep "$(awk -v s="$load_start" -v k="$k" -v p="$PERIOD_S" -v t="$(date +%s.%N)" \
    'BEGIN {d = s + k * p - t; printf "%.3f", (d > 0 ? d : 0)}')"
  leader="$(cluster_leader)"
  if ((k % 2)); then node="$leader" role=leader; else node="$(cluster_follower "$leader")" role=follower; fi
  t1="$(date +%s.%N)"
  reply="$(ctl --timeout_ms=600000 snapshot --id="$node" 2>&1 || true)"
  t2="$(date +%s.%N)"
  below="$(echo "$reply" | awk '/covers slots below/ {print $NF}')"
  mb="$(du -sk "$WORK/node$node/snapshots/snap-$(printf %020d "${below:-0}").snap" 2>/dev/null |
    awk '{printf "%.1f", $1 / 1024}' || true)"
  awk -v k="$k" -v n="$node" -v r="$role" -v a="$t1" -v b="$t2" -v c="${below:-failed}" -v m="${mb:-0}" \
    'BEGIN {printf "%d,%s,%s,%.3f,%.3f,%.2f,%s,%s\n", k, n, r, a, b, b - a, c, m}' |
    tee -a "$OUT/snapshots.csv"
done
wait "$bench_pid"
bench_pid=""
grep -v '^{' "$OUT/load.out" || true

# 3. Per-second p99 during snapshot writes against the seconds without one.
save_node_events "$OUT"
python3 "$root/benchmarks/snapshot_classify.py" "$OUT" | tee "$OUT/summary.txt"
echo "results in $OUT"
