#!/usr/bin/env bash
# Where an operation's time goes in a 3-node cluster under ballot-bench --workload=seq (issue 13):
# for each client count, a fresh cluster (cluster_lib.sh), then, while the load runs,
#   - /proc/diskstats of the data disk (device flushes and writes per operation),
#   - strace -f -c on the leader and on one follower (syscall counts and time),
#   - strace -f -T on the leader for the sync, network and wake-up calls (per-call latency),
#   - perf record -g on the leader and a follower (on-CPU, call graphs), reported as text,
#   - perf record of sched:sched_switch on the leader (off-CPU: which threads sleep, where).
# Only summaries are kept (no perf.data).
#
#   benchmarks/profile_cluster.sh                          # journal on (the default), 1 and 16 clients
#   NODE_FLAGS=--store_journal=false TAG=nojournal benchmarks/profile_cluster.sh
#
# Environment: BUILD (build), CLIENTS ("1 16"), DURATION_S (profile window, 8), TAG (journal),
# NODE_FLAGS, OUT (benchmarks/results/profile-13), DISK (vda).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="$(cd "${BUILD:-$root/build}" && pwd)"
CLIENTS="${CLIENTS:-1 16}"
DURATION_S="${DURATION_S:-8}"
TAG="${TAG:-journal}"
OUT="${OUT:-$root/benchmarks/results/profile-13}"
DISK="${DISK:-vda}"
NODE_FLAGS="${NODE_FLAGS:-}"
STATE_MACHINE=sequence
mkdir -p "$OUT"
WORK="$(mktemp -d /tmp/ballot-profile.XXXXXX)"
source "$root/benchmarks/cluster_lib.sh"
trap 'cluster_stop_all; rm -rf "$WORK"' EXIT

flushes() { awk -v d="$DISK" '$3 == d {print $4, $8, $(NF-1)}' /proc/diskstats; }  # reads writes flushes

for n in $CLIENTS; do
  p="$OUT/$TAG-c$n"
  rm -f "$WORK/cluster"; rm -rf "$WORK"/node*
  cluster_init
  cluster_start_all
  leader="$(cluster_leader)"
  follower=$(( leader % 3 + 1 ))
  lpid="${NODE_PID[$leader]}"; fpid="${NODE_PID[$follower]}"
  echo "tag=$TAG clients=$n leader=$leader follower=$follower loadavg=$(cut -d' ' -f1-3 /proc/loadavg) node_flags=$NODE_FLAGS" | tee "$p-params.txt"
  total=$((DURATION_S * 4 + 8))
  "$BUILD/tools/ballot-bench" --cluster="$CLUSTER" --workload=seq --clients="$n" --warmup_s=2 \
    --duration_s="$total" --interval_csv="$p-intervals.csv" --json >"$p-bench.json" 2>"$p-bench.log" &
  bench=$!
  sleep 3
  # 1) disk flushes and ops in a quiet window (no tracer attached)
  before="$(flushes)"; t0=$(date +%s.%N)
  sleep "$DURATION_S"
  after="$(flushes)"; t1=$(date +%s.%N)
  echo "diskstats_before(reads writes flushes)=$before after=$after t0=$t0 t1=$t1" >"$p-diskstats.txt"
  # 2) strace -c on leader and follower
  timeout -s INT "$DURATION_S" strace -f -c -o "$p-strace-c-leader.txt" -p "$lpid" 2>/dev/null &
  s1=$!
  timeout -s INT "$DURATION_S" strace -f -c -o "$p-strace-c-follower.txt" -p "$fpid" 2>/dev/null &
  s2=$!
  wait "$s1" "$s2" 2>/dev/null || true
  # 3) per-call latency of sync, network and wake-ups on the leader (2 s only: strace slows it)
  timeout -s INT 2 strace -f -tt -T -e trace=fdatasync,fsync,pwrite64,sendmsg,recvmsg,recvfrom,sendto,writev,epoll_wait,futex \
    -o "$WORK/st-T.txt" -p "$lpid" 2>/dev/null || true
  python3 "$root/benchmarks/strace_T_summary.py" "$WORK/st-T.txt" >"$p-strace-T-leader.txt" || true
  timeout -s INT 2 strace -f -tt -T -e trace=fdatasync,fsync,pwrite64,sendmsg,recvmsg,recvfrom,sendto,writev,epoll_wait,futex \
    -o "$WORK/st-Tf.txt" -p "$fpid" 2>/dev/null || true
  python3 "$root/benchmarks/strace_T_summary.py" "$WORK/st-Tf.txt" >"$p-strace-T-follower.txt" || true
  # 4) on-CPU profile of leader and follower
  perf record -q -F 499 -g -o "$WORK/perf-l.data" -p "$lpid" -- sleep "$DURATION_S" 2>/dev/null &
  s1=$!
  perf record -q -F 499 -g -o "$WORK/perf-f.data" -p "$fpid" -- sleep "$DURATION_S" 2>/dev/null &
  s2=$!
  wait "$s1" "$s2" 2>/dev/null || true
  perf report -i "$WORK/perf-l.data" --no-children --sort comm,dso,symbol --stdio -g none --percent-limit 0.7 2>/dev/null | grep -v '^$' | head -70 >"$p-perf-leader.txt" || true
  perf report -i "$WORK/perf-f.data" --no-children --sort comm,dso,symbol --stdio -g none --percent-limit 0.7 2>/dev/null | grep -v '^$' | head -70 >"$p-perf-follower.txt" || true
  perf report -i "$WORK/perf-l.data" --no-children --sort comm --stdio -g none 2>/dev/null | grep -v '^$' | head -30 >"$p-perf-leader-threads.txt" || true
  # 5) off-CPU: context switches of the leader's threads, with the stack at the switch
  perf record -q -e sched:sched_switch -g -o "$WORK/perf-sw.data" -p "$lpid" -- sleep 3 2>/dev/null || true
  perf report -i "$WORK/perf-sw.data" --no-children --sort comm,symbol --stdio -g caller,0.5,callee,function,percent --percent-limit 3 2>/dev/null | grep -v '^$' | head -150 >"$p-offcpu-leader.txt" || true
  wait "$bench" || true
  grep "^{" "$p-bench.json" | tail -1 >"$p-bench.summary.json" || true
  rm -f "$p-bench.json"
  cluster_stop_all
done
