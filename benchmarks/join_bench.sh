#!/usr/bin/env bash
# Time for a NEW member to catch up SLOTS slots of history and become a voter
# (docs/membership.md): `ballotd --join` on an empty data directory + `ballotctl member add`.
#
#   benchmarks/join_bench.sh                       # 1,000,000 slots of history
#   SLOTS=100000 benchmarks/join_bench.sh          # a quick trial
#
# Three ballotd (kv, default snapshot settings plus NODE_FLAGS; by default
# --batch_commands_max=1 so that slots = commands, as in catchup_bench.sh). kv puts of VALUE_BYTES
# at CLIENTS clients run until the leader's chosen slot reaches SLOTS (the nodes snapshot and
# compact meanwhile), then stop (UNDER_LOAD=1: keep running while node 4 joins). Node 4 starts
# with --join and `ballotctl member add 4@...` runs at once; the script times, from node 4's
# process start: "fetching a snapshot", "installed the snapshot", `member add` returning (the
# leader promoted it: its commit index is within promote_lag_slots_max of the leader's), and its
# applied slot reaching the leader's chosen slot as it was when node 4 started.
#
# Environment: SLOTS (1000000), CLIENTS (256), VALUE_BYTES (100), NODE_FLAGS
# (--batch_commands_max=1), UNDER_LOAD (0), LOAD_MAX_S (1200), OUT (default
# benchmarks/results/join-<UTC time>), BUILD_DIR, KEEP_WORK.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="$(cd "${BUILD_DIR:-$root/build}" && pwd)"
SLOTS="${SLOTS:-1000000}"
CLIENTS="${CLIENTS:-256}"
VALUE_BYTES="${VALUE_BYTES:-100}"
NODE_FLAGS="${NODE_FLAGS---batch_commands_max=1}"
UNDER_LOAD="${UNDER_LOAD:-0}"
LOAD_MAX_S="${LOAD_MAX_S:-1200}"
OUT="${OUT:-$root/benchmarks/results/join-$(date -u +%Y%m%dT%H%M)}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
WORK="$(mktemp -d /tmp/ballot-join.XXXXXX)"
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
  [[ -f "$WORK/node4.log" ]] && grep -vE 'connected to peer|lost the connection|closing ' \
    "$WORK/node4.log" >"$OUT/node4-events.log" || true
  [[ "${KEEP_WORK:-0}" == 1 ]] || rm -rf "$WORK"
}
trap cleanup EXIT
secs() { awk -v a="$1" -v b="$2" 'BEGIN {if (a == "" || b == "") print "NA"; else printf "%.3f", a - b}'; }

{
  echo "date_utc=$(date -u +%FT%TZ) commit=$(git -C "$root" rev-parse --short HEAD)"
  echo "slots=$SLOTS clients=$CLIENTS value_bytes=$VALUE_BYTES node_flags=$NODE_FLAGS under_load=$UNDER_LOAD"
  echo "loadavg_before=$(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$OUT/params.txt"

cluster_init
cluster_start_all
leader="$(wait_for_leader 60)"
"$BUILD/tools/ballot-bench" --cluster="$CLUSTER" --workload=kv --value_bytes="$VALUE_BYTES" \
  --clients="$CLIENTS" --duration_s="$LOAD_MAX_S" --warmup_s=0 >>"$OUT/load.out" 2>>"$OUT/load.log" &
bench_pid=$!
load_start=$SECONDS
while :; do
  sleep 2
  leader="$(cluster_leader)"
  chosen="$( [[ -n "$leader" ]] && node_field "$leader" chosen || echo 0)"
  ((${chosen:-0} >= SLOTS)) && break
  if ! kill -0 "$bench_pid" 2>/dev/null || ((SECONDS - load_start > LOAD_MAX_S)); then
    echo "the load did not reach $SLOTS slots within $LOAD_MAX_S s (at ${chosen:-?})" >&2
    exit 1
  fi
done
echo "$chosen slots in $((SECONDS - load_start)) s" | tee -a "$OUT/params.txt"
((UNDER_LOAD)) || stop_load
sleep 1
leader="$(wait_for_leader 60)"
ctl status | tee -a "$OUT/params.txt"

ID="$(awk '/^cluster_id/ {print $2}' "$WORK/node1/CLUSTER")"
E4="4@127.0.0.1:$(free_port)"
C4="$CLUSTER,$E4"
target="$(node_field "$leader" chosen)"
t0="$(date +%s.%N)"
"$BUILD/tools/ballotd" --id=4 --cluster="$C4" --cluster_id="$ID" --data_dir="$WORK/node4" \
  --state_machine="${STATE_MACHINE:-kv}" --join $NODE_FLAGS >>"$WORK/node4.log" 2>&1 &
NODE_PID[4]=$!
"$BUILD/tools/ballotctl" --cluster="$CLUSTER" --cluster_id="$ID" --wait_ms=600000 \
  member add "$E4" | tee "$OUT/member_add.out"
t_voter="$(date +%s.%N)"
deadline=$((SECONDS + 600))
while ((SECONDS < deadline)); do
  applied="$("$BUILD/tools/ballotctl" --cluster="$C4" --cluster_id="$ID" --timeout_ms=2000 \
    status --json 2>/dev/null | jq -r '.nodes[] | select(.id == 4) | .applied // empty')"
  [[ -n "$applied" ]] && ((applied >= target)) && break
  sleep 0.05
done
t_caught="$(date +%s.%N)"
stop_load
tf="$(log_time "$WORK/node4.log" 'fetching a snapshot' 0)"
ti="$(log_time "$WORK/node4.log" 'installed the snapshot' 0)"
below="$(grep -m1 -oE 'installed the snapshot below slot [0-9]+' "$WORK/node4.log" | awk '{print $NF}' || true)"
"$BUILD/tools/ballotctl" --cluster="$C4" --cluster_id="$ID" member list | tee -a "$OUT/params.txt"
echo "history_slots,under_load,snapshot_below,fetch_s,install_s,voter_s,caught_up_s" >"$OUT/join.csv"
echo "$target,$UNDER_LOAD,${below:-none},$(secs "$tf" "$t0"),$(secs "$ti" "$tf"),$(secs "$t_voter" "$t0"),$(secs "$t_caught" "$t0")" |
  tee -a "$OUT/join.csv"
du -sk "$WORK"/node*/snapshots | tee -a "$OUT/params.txt"
echo "results in $OUT"
