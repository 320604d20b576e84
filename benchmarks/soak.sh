#!/usr/bin/env bash
# Soak: a three-node kv cluster under full load for DURATION_S, with each node's RSS and data
# directory size sampled every second into a CSV, then plotted (benchmarks/soak_plot.sh).
# Afterwards (RESTARTS > 0) benchmarks/restart_bench.sh times restarts on the soak's data.
#
#   benchmarks/soak.sh                                   # 30 min, default snapshot settings
#   DURATION_S=60 RESTARTS=1 benchmarks/soak.sh          # a quick trial
#   NODE_FLAGS="--snapshot_every_slots=20000" benchmarks/soak.sh
#
# Environment: DURATION_S (1800), CLIENTS (256), VALUE_BYTES (100), NODE_FLAGS (extra ballotd
# flags, e.g. snapshot settings), RESTARTS (3), BUILD_DIR (build), OUT (where the CSV, logs and
# PNG go; default benchmarks/results/soak-<UTC time>), WORK (node data; default a temp dir,
# kept for restart_bench.sh unless KEEP_WORK=0). Bounded: the load stops after DURATION_S, each restart
# gives up after 120 s, every ballotd dies with the script.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="$(cd "${BUILD_DIR:-$root/build}" && pwd)"
DURATION_S="${DURATION_S:-1800}"
CLIENTS="${CLIENTS:-256}"
VALUE_BYTES="${VALUE_BYTES:-100}"
NODE_FLAGS="${NODE_FLAGS:-}"
RESTARTS="${RESTARTS:-3}"
OUT="${OUT:-$root/benchmarks/results/soak-$(date -u +%Y%m%dT%H%M)}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
WORK="${WORK:-$(mktemp -d /tmp/ballot-soak.XXXXXX)}"
mkdir -p "$WORK"
# shellcheck source=benchmarks/cluster_lib.sh
source "$root/benchmarks/cluster_lib.sh"

bench_pid=""
cleanup() {
  [[ -n "$bench_pid" ]] && kill "$bench_pid" 2>/dev/null || true
  cluster_stop_all
  save_node_events "$OUT"
  [[ "${KEEP_WORK:-1}" == 1 ]] || rm -rf "$WORK"
}
trap cleanup EXIT

for b in ballotd ballotctl ballot-bench; do
  [[ -x "$BUILD/tools/$b" ]] || { echo "missing $BUILD/tools/$b (build it first)" >&2; exit 2; }
done

{
  echo "date_utc=$(date -u +%FT%TZ)"
  echo "commit=$(git -C "$root" rev-parse --short HEAD)"
  echo "duration_s=$DURATION_S clients=$CLIENTS value_bytes=$VALUE_BYTES"
  echo "node_flags=$NODE_FLAGS"
  echo "loadavg_before=$(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$OUT/params.txt"

cluster_init
cluster_start_all
leader="$(wait_for_leader 60)"
echo "cluster $CLUSTER, leader $leader, data in $WORK"

"$BUILD/tools/ballot-bench" --cluster="$CLUSTER" --workload=kv --value_bytes="$VALUE_BYTES" \
  --clients="$CLIENTS" --duration_s="$DURATION_S" --warmup_s=1 --json \
  >"$OUT/bench.out" 2>"$OUT/bench.log" &
bench_pid=$!

# One row a second while the load runs: seconds since the load started, then per node RSS,
# data directory size, anonymous RSS (RSS without LMDB's file pages: the heap) and the LMDB
# pages in use (high-water mark minus free pages; the data directory is the preallocated map)
# in MiB.
csv="$OUT/soak.csv"
{
  printf "t_s"
  for ((id = 1; id <= NODES; id++)); do printf ",rss%d_mb" "$id"; done
  for ((id = 1; id <= NODES; id++)); do printf ",disk%d_mb" "$id"; done
  for ((id = 1; id <= NODES; id++)); do printf ",anon%d_mb" "$id"; done
  for ((id = 1; id <= NODES; id++)); do printf ",lmdb%d_mb" "$id"; done
  printf "\n"
} >"$csv"
start="$(date +%s.%N)"
next=1
while kill -0 "$bench_pid" 2>/dev/null; do
  now="$(date +%s.%N)"
  row="$(awk -v a="$now" -v b="$start" 'BEGIN {printf "%.1f", a - b}')"
  for ((id = 1; id <= NODES; id++)); do row+=",$(rss_mb "${NODE_PID[$id]}")"; done
  for ((id = 1; id <= NODES; id++)); do row+=",$(disk_mb "$WORK/node$id")"; done
  for ((id = 1; id <= NODES; id++)); do row+=",$(anon_mb "${NODE_PID[$id]}")"; done
  for ((id = 1; id <= NODES; id++)); do row+=",$(lmdb_live_mb "$WORK/node$id")"; done
  echo "$row" >>"$csv"
  # Sleep to the next whole second since the start, so sampling does not drift.
  sleep "$(awk -v n="$next" -v s="$start" -v t="$(date +%s.%N)" \
    'BEGIN {d = s + n - t; printf "%.3f", (d > 0 ? d : 0)}')"
  next=$((next + 1))
done
wait "$bench_pid" || { echo "ballot-bench failed, see $OUT/bench.log" >&2; exit 1; }
bench_pid=""
grep -v '^{' "$OUT/bench.out" || true
ls -l "$WORK"/node*/snapshots >"$OUT/snapshots.txt" 2>&1 || true
ctl status >"$OUT/status-after-load.txt" 2>&1 || true
cat "$OUT/status-after-load.txt"

# Plateau summary: the largest value in each third of the run, per node. Growth that has
# stopped shows as equal maxima in the last two thirds.
awk -F, -v nodes="$NODES" 'NR == 1 {for (i = 2; i <= NF; i++) name[i] = $i; next}
  {t[NR] = $1; for (i = 2; i <= NF; i++) v[NR, i] = $i; n = NR}
  END {
    printf "%-10s %10s %14s %14s %14s\n", "series", "first", "max 1st third", "max 2nd third", "max 3rd third"
    for (i = 2; i <= 4 * nodes + 1; i++) {
      m1 = m2 = m3 = 0
      for (r = 2; r <= n; r++) {
        third = (r - 2) * 3 / (n - 1)
        if (third < 1 && v[r, i] > m1) m1 = v[r, i]
        else if (third >= 1 && third < 2 && v[r, i] > m2) m2 = v[r, i]
        else if (third >= 2 && v[r, i] > m3) m3 = v[r, i]
      }
      printf "%-10s %10.1f %14.1f %14.1f %14.1f\n", name[i], v[2, i], m1, m2, m3
    }
  }' "$csv" | tee "$OUT/plateau.txt"

"$root/benchmarks/soak_plot.sh" "$csv" "$OUT/soak.png" \
  "Soak: kv ${VALUE_BYTES} B, $CLIENTS clients, 3 nodes ${NODE_FLAGS:-(default snapshot settings)}"

echo "results in $OUT"
if ((RESTARTS > 0)); then
  # Restart timing on the soak's own data: benchmarks/restart_bench.sh starts the nodes again.
  cluster_stop_all
  WORK="$WORK" OUT="$OUT" RESTARTS="$RESTARTS" BUILD_DIR="$BUILD" NODE_FLAGS="$NODE_FLAGS" \
    "$root/benchmarks/restart_bench.sh" || echo "restart_bench.sh failed" >&2
fi
