#!/usr/bin/env bash
# Time for a follower that is SLOTS_BEHIND slots behind to catch up, via a snapshot transfer.
#
#   benchmarks/catchup_bench.sh                          # 1,000,000 slots behind
#   SLOTS_BEHIND=100000 benchmarks/catchup_bench.sh      # a quick trial
#
# Three ballotd (kv, default snapshot settings plus NODE_FLAGS). The load is kv puts of
# VALUE_BYTES at CLIENTS clients; by default the nodes run with --batch_commands_max=1 (one
# command per slot), so that a million slots take minutes rather than the hours they would at
# the ~100 commands per slot a loaded leader batches: what a follower has to catch up on is
# counted in slots (the log it missed), and with one command per slot slots = commands.
# 1. A follower is SIGKILLed; the load runs until the leader's chosen slot has advanced by
#    SLOTS_BEHIND (the others snapshot and compact past it meanwhile), then stops.
# 2. The follower starts again on its data directory; the time until its applied slot reaches
#    the leader's chosen slot, with the parts from its log: start -> "fetching a snapshot",
#    -> "installed the snapshot" (transfer, verify, install), -> caught up (the log after it).
# 3. UNDER_LOAD=1 (default): the same again with the load running during the catch-up (target:
#    the leader's chosen slot when the follower restarts).
#
# Environment: SLOTS_BEHIND (1000000), CLIENTS (256), VALUE_BYTES (100), NODE_FLAGS
# (default --batch_commands_max=1), UNDER_LOAD (1), LOAD_MAX_S (1200: the most the load may run
# to reach SLOTS_BEHIND), OUT (default benchmarks/results/catchup-<UTC time>), BUILD_DIR.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="$(cd "${BUILD_DIR:-$root/build}" && pwd)"
SLOTS_BEHIND="${SLOTS_BEHIND:-1000000}"
CLIENTS="${CLIENTS:-256}"
VALUE_BYTES="${VALUE_BYTES:-100}"
NODE_FLAGS="${NODE_FLAGS---batch_commands_max=1}"
UNDER_LOAD="${UNDER_LOAD:-1}"
LOAD_MAX_S="${LOAD_MAX_S:-1200}"
OUT="${OUT:-$root/benchmarks/results/catchup-$(date -u +%Y%m%dT%H%M)}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
WORK="$(mktemp -d /tmp/ballot-catchup.XXXXXX)"
# shellcheck source=benchmarks/cluster_lib.sh
source "$root/benchmarks/cluster_lib.sh"
bench_pid=""
stop_load() {
  if [[ -n "$bench_pid" ]]; then
    kill "$bench_pid" 2>/dev/null || true
    wait "$bench_pid" 2>/dev/null || true
    bench_pid=""
  fi
}
cleanup() {
  stop_load
  cluster_stop_all
  save_node_events "$OUT"
  [[ "${KEEP_WORK:-0}" == 1 ]] || rm -rf "$WORK"
}
trap cleanup EXIT
start_load() {  # runs until stopped (or LOAD_MAX_S)
  "$BUILD/tools/ballot-bench" --cluster="$CLUSTER" --workload=kv --value_bytes="$VALUE_BYTES" \
    --clients="$CLIENTS" --duration_s="$LOAD_MAX_S" --warmup_s=0 >>"$OUT/load.out" 2>>"$OUT/load.log" &
  bench_pid=$!
}
secs() { awk -v a="$1" -v b="$2" 'BEGIN {if (a == "" || b == "") print "NA"; else printf "%.3f", a - b}'; }

{
  echo "date_utc=$(date -u +%FT%TZ) commit=$(git -C "$root" rev-parse --short HEAD)"
  echo "slots_behind=$SLOTS_BEHIND clients=$CLIENTS value_bytes=$VALUE_BYTES node_flags=$NODE_FLAGS"
  echo "loadavg_before=$(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$OUT/params.txt"
echo "round,under_load,node,behind_slots,target_slot,snapshot_below,fetch_s,install_s,log_s,total_s" \
  >"$OUT/catchup.csv"

cluster_init
cluster_start_all
for ((round = 1; round <= 1 + UNDER_LOAD; round++)); do
  under=$((round == 2))
  leader="$(wait_for_leader 60)"
  f="$(cluster_follower "$leader")"
  start_load
  sleep 3
  cluster_kill_node "$f"
  base="$(node_field "$leader" chosen)"
  echo "round $round: node $f down at leader slot $base; loading until slot $((base + SLOTS_BEHIND))"
  load_start=$SECONDS
  while :; do
    sleep 2
    leader="$(cluster_leader)"
    chosen="$( [[ -n "$leader" ]] && node_field "$leader" chosen || echo 0)"
    ((${chosen:-0} >= base + SLOTS_BEHIND)) && break
    if ! kill -0 "$bench_pid" 2>/dev/null || ((SECONDS - load_start > LOAD_MAX_S)); then
      echo "the load did not reach $SLOTS_BEHIND slots within $LOAD_MAX_S s (at ${chosen:-?})" >&2
      exit 1
    fi
  done
  echo "  $((chosen - base)) slots in $((SECONDS - load_start)) s"
  ((under)) || stop_load
  sleep 1
  leader="$(wait_for_leader 60)"
  ctl status | tee -a "$OUT/params.txt"
  line="$(wc -l <"$WORK/node$f.log")"
  cluster_start_node "$f"
  t0="$(cat "$WORK/node$f.started")"
  target="$(node_field "$leader" chosen)"
  deadline=$((SECONDS + 600))
  while ((SECONDS < deadline)); do
    applied="$(node_field "$f" applied || true)"
    [[ -n "$applied" ]] && ((applied >= target)) && break
    sleep 0.05
  done
  t_caught="$(date +%s.%N)"
  ((under)) && stop_load
  tf="$(log_time "$WORK/node$f.log" 'fetching a snapshot' "$line")"
  ti="$(log_time "$WORK/node$f.log" 'installed the snapshot' "$line")"
  below="$(tail -n +"$((line + 1))" "$WORK/node$f.log" | grep -m1 -oE 'installed the snapshot below slot [0-9]+' | awk '{print $NF}' || true)"
  echo "$round,$under,$f,$((target - base)),$target,${below:-none},$(secs "$tf" "$t0"),$(secs "$ti" "$tf"),$(secs "$t_caught" "$ti"),$(secs "$t_caught" "$t0")" |
    tee -a "$OUT/catchup.csv"
  du -sk "$WORK"/node*/snapshots | tee -a "$OUT/params.txt"
  sleep 2
done
echo "results in $OUT"
