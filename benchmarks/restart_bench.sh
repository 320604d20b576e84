#!/usr/bin/env bash
# Restart time of ballotd nodes with a long history, broken into its parts.
#
#   WORK=/tmp/soak-default benchmarks/restart_bench.sh   # on benchmarks/soak.sh's data
#   FILL_S=300 benchmarks/restart_bench.sh               # fills its own cluster first
#
# 1. Cold start: all nodes start on their data directories at once; per node the time from
#    process start to "opened lmdb store" (open), to "serving ... on port" (recover: the durable
#    state and the log after the mark loaded, the newest snapshot restored, transport open), and
#    the time until the first client put succeeds (a leader elected, its recovered log chosen).
# 2. RESTARTS times, with no load: SIGKILL a follower, start it again, and time open, recover,
#    and replay (until its applied slot reaches the chosen slot the leader had before the kill:
#    the log after its snapshot re-applied), with the snapshot it restored and its size.
#
# Environment: WORK (data of a stopped cluster started with benchmarks/cluster_lib.sh; if unset a
# temp dir filled for FILL_S seconds of kv puts at CLIENTS clients), OUT (results; default
# benchmarks/results/restart-<UTC time>), RESTARTS (3), NODE_FLAGS, BUILD_DIR. Bounded: every
# wait gives up after 120 s, every ballotd dies with the script.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="$(cd "${BUILD_DIR:-$root/build}" && pwd)"
RESTARTS="${RESTARTS:-3}"
NODE_FLAGS="${NODE_FLAGS:-}"
CLIENTS="${CLIENTS:-256}"
OUT="${OUT:-$root/benchmarks/results/restart-$(date -u +%Y%m%dT%H%M)}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
own_work=0
if [[ -z "${WORK:-}" ]]; then
  WORK="$(mktemp -d /tmp/ballot-restart.XXXXXX)"
  own_work=1
fi
# shellcheck source=benchmarks/cluster_lib.sh
source "$root/benchmarks/cluster_lib.sh"
cleanup() {
  cluster_stop_all
  save_node_events "$OUT"
  if ((own_work)) && [[ "${KEEP_WORK:-0}" != 1 ]]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT
cluster_init

if ((own_work)); then
  cluster_start_all
  wait_for_leader 60 >/dev/null
  echo "filling for ${FILL_S:-300} s (kv, 100 B values, $CLIENTS clients)"
  "$BUILD/tools/ballot-bench" --cluster="$CLUSTER" --workload=kv --value_bytes=100 \
    --clients="$CLIENTS" --duration_s="${FILL_S:-300}" --json >"$OUT/bench.out" 2>"$OUT/bench.log"
  cluster_stop_all
fi
commands="$(grep '^{' "$OUT/bench.out" 2>/dev/null | tail -1 | jq -r '.ops // empty' || true)"
echo "commands applied by the load before the restarts (measured part of ballot-bench): ${commands:-unknown}" |
  tee "$OUT/restart.txt"

secs() { awk -v a="$1" -v b="$2" 'BEGIN {if (a == "" || b == "") print "NA"; else printf "%.3f", a - b}'; }

# 1. Cold start of the whole cluster.
declare -A from
for ((id = 1; id <= NODES; id++)); do from[$id]="$(wc -l <"$WORK/node$id.log" 2>/dev/null || echo 0)"; done
cluster_start_all
t_start="$(cat "$WORK/node1.started")"
deadline=$((SECONDS + 120))
until ctl --timeout_ms=1000 kv put restart-probe x >/dev/null 2>&1; do
  ((SECONDS < deadline)) || { echo "no successful put within 120 s" >&2; exit 1; }
  sleep 0.02
done
t_first_op="$(date +%s.%N)"
{
  echo "cold start of all $NODES nodes: first successful put $(secs "$t_first_op" "$t_start") s after the first process started"
  for ((id = 1; id <= NODES; id++)); do
    t0="$(cat "$WORK/node$id.started")"
    to="$(log_time "$WORK/node$id.log" 'opened lmdb store' "${from[$id]}")"
    ts="$(log_time "$WORK/node$id.log" 'serving .* on port' "${from[$id]}")"
    echo "  node $id: open $(secs "$to" "$t0") s, recover (log + snapshot load) $(secs "$ts" "$to") s, serving at $(secs "$ts" "$t0") s"
  done
} | tee -a "$OUT/restart.txt"
ctl status | tee -a "$OUT/restart.txt"

# 2. Follower restarts.
echo "restart,node,applied_below,snapshot_below,snapshot_mb,open_s,recover_s,replay_s,total_s" \
  >"$OUT/restart.csv"
for ((r = 1; r <= RESTARTS; r++)); do
  leader="$(wait_for_leader 60)"
  f="$(cluster_follower "$leader")"
  target="$(node_field "$leader" chosen)"
  cluster_kill_node "$f"
  snap="$(ls "$WORK/node$f/snapshots" 2>/dev/null | grep -E '^snap-[0-9]+\.snap$' | sort -t- -k2 -n | tail -1 || true)"
  snap_below="${snap#snap-}"
  snap_below="${snap_below%.snap}"
  [[ -n "$snap_below" ]] && snap_below=$((10#$snap_below))
  snap_mb="$( [[ -n "$snap" ]] && du -sk "$WORK/node$f/snapshots/$snap" | awk '{printf "%.1f", $1 / 1024}' || echo 0)"
  line="$(wc -l <"$WORK/node$f.log")"
  cluster_start_node "$f"
  t0="$(cat "$WORK/node$f.started")"
  deadline=$((SECONDS + 120))
  applied=0
  while ((SECONDS < deadline)); do
    applied="$(node_field "$f" applied || true)"
    [[ -n "$applied" ]] && ((applied >= target)) && break
    sleep 0.02
  done
  t_caught="$(date +%s.%N)"
  to="$(log_time "$WORK/node$f.log" 'opened lmdb store' "$line")"
  ts="$(log_time "$WORK/node$f.log" 'serving .* on port' "$line")"
  echo "$r,$f,$applied,${snap_below:-none},$snap_mb,$(secs "$to" "$t0"),$(secs "$ts" "$to"),$(secs "$t_caught" "$ts"),$(secs "$t_caught" "$t0")" |
    tee -a "$OUT/restart.csv"
  sleep 2
done
echo "results in $OUT"
