#!/usr/bin/env bash
# Ballot against braft's example/counter, and against one unreplicated in-memory Ballot node,
# side by side: for each run, for each client count, one point of each, interleaved.
#   braft:     3 counter_server on 127.0.0.1 (-raft_sync=true), counter_client -thread_num=N
#              (closed loop, one fetch_add per request); ops/s = mean of its per-second qps
#              after the warm-up, p50/p99 = its 10 s latency window at the end
#   ballot:    ballot-bench --start_nodes=3 --workload=seq --clients=N (LMDB + journal, syncs on)
#   mem1:      ballot-bench --start_nodes=1 --node_flags=--in_memory --workload=seq --clients=N
#   nojournal: as ballot, with --node_flags=--store_journal=false (one LMDB commit per batch)
#   bigckpt:   as ballot, with --store_journal_checkpoint_kb=CKPT_KB (65536: 64 MiB, so that no
#              checkpoint lands in a short run) instead of the default 1 MiB
#
#   BRAFT_BIN=/work/ext/braft/build-example/counter benchmarks/compare_braft.sh
#
# braft is built outside the tree from github:apache/brpc (1.17.0) and github:baidu/braft with
# Debian's libgflags-dev, libprotobuf-dev, libprotoc-dev, protobuf-compiler, libleveldb-dev,
# libssl-dev; the counter client is given two more fields in its per-second line (p50=, p99=,
# bvar::LatencyRecorder::latency_percentile). BRAFT_BIN unset or missing: braft is skipped.
# Environment: BUILD (build), RUNS (3), CLIENTS ("1 16 64"), DURATION_S (10), WARMUP_S (2),
# SYSTEMS ("braft ballot mem1"), WORKLOAD (Ballot's: seq; kv as compare_etcd.sh runs it, 16 B
# values), OUT (benchmarks/results/compare-braft-<UTC time>).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="$(cd "${BUILD:-$root/build}" && pwd)"
RUNS="${RUNS:-3}"
CLIENTS="${CLIENTS:-1 16 64}"
DURATION_S="${DURATION_S:-10}"
WARMUP_S="${WARMUP_S:-2}"
SYSTEMS="${SYSTEMS:-braft ballot mem1}"
WORKLOAD="${WORKLOAD:-seq}"
BRAFT_BIN="${BRAFT_BIN:-}"
OUT="${OUT:-$root/benchmarks/results/compare-braft-$(date -u +%Y%m%dT%H%M)}"
mkdir -p "$OUT"
WORK="$(mktemp -d /tmp/compare-braft.XXXXXX)"
BPIDS=()
cleanup() { for p in "${BPIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
echo "date_utc=$(date -u +%FT%TZ) workload=$WORKLOAD systems=$SYSTEMS clients=$CLIENTS runs=$RUNS duration_s=$DURATION_S loadavg=$(cut -d' ' -f1-3 /proc/loadavg)" | tee "$OUT/params.txt"
: >"$OUT/runs.jsonl"

braft_point() {  # clients -> JSON line
  local n="$1" conf="" i port dir
  rm -rf "$WORK/braft"; mkdir -p "$WORK/braft"
  for i in 0 1 2; do conf+="127.0.0.1:$(free_port):0,"; done
  BPIDS=()
  for i in 0 1 2; do
    port="$(echo "$conf" | cut -d, -f$((i + 1)) | cut -d: -f2)"
    dir="$WORK/braft/$i"; mkdir -p "$dir"
    (cd "$dir" && exec "$BRAFT_BIN/counter_server" -raft_sync=true -port="$port" -conf="$conf" \
      -election_timeout_ms=1000 -bthread_concurrency=18 >std.log 2>&1) &
    BPIDS+=($!)
  done
  sleep 3  # election (1 s timeout)
  timeout -s INT $((WARMUP_S + DURATION_S + 1)) "$BRAFT_BIN/counter_client" -conf="$conf" \
    -thread_num="$n" -timeout_ms=5000 >"$WORK/braft/client.log" 2>&1 || true
  for p in "${BPIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  BPIDS=()
  grep -o 'qps=[0-9]* latency=[0-9]* p50=[0-9]* p99=[0-9]*' "$WORK/braft/client.log" |
    tail -n +$((WARMUP_S + 1)) | head -n "$DURATION_S" |
    awk -v n="$n" '{split($1,a,"=");split($3,b,"=");split($4,c,"=");s+=a[2];k++;p50=b[2];p99=c[2]}
      END {if (k) printf "{\"clients\":%d,\"throughput_ops\":%.1f,\"p50_us\":%d,\"p99_us\":%d,\"seconds\":%d}\n", n, s/k, p50, p99, k}'
}

ballot_point() {  # nodes clients [node flags]
  timeout $((DURATION_S + 120)) "$BUILD/tools/ballot-bench" --start_nodes="$1" --workload="$WORKLOAD" \
    --value_bytes=16 --clients="$2" --warmup_s="$WARMUP_S" --duration_s="$DURATION_S" --node_flags="${3:-}" --json \
    2>>"$OUT/bench.log" | grep '^{' | tail -1 |
    jq -c '{clients, throughput_ops, p50_us, p99_us, server_cpu_us_per_op, commands_per_slot}'
}

for ((run = 1; run <= RUNS; run++)); do
  for n in $CLIENTS; do
    for sys in $SYSTEMS; do
      case "$sys" in
        braft) [[ -x "$BRAFT_BIN/counter_server" ]] || continue; line="$(braft_point "$n")" ;;
        ballot) line="$(ballot_point 3 "$n")" ;;
        mem1) line="$(ballot_point 1 "$n" --in_memory)" ;;
        nojournal) line="$(ballot_point 3 "$n" --store_journal=false)" ;;
        bigckpt) line="$(ballot_point 3 "$n" --store_journal_checkpoint_kb="${CKPT_KB:-65536}")" ;;
      esac
      [[ -n "$line" ]] || line="{\"clients\":$n,\"throughput_ops\":0,\"p50_us\":0,\"p99_us\":0}"
      echo "$line" | jq -c --arg sys "$sys" --argjson run "$run" --arg load "$(cut -d' ' -f1 /proc/loadavg)" \
        '{sys: $sys, run: $run, load1: $load} + .' | tee -a "$OUT/runs.jsonl" |
        jq -r '"\(.sys) run \(.run) clients \(.clients): \(.throughput_ops | floor) ops/s, p50 \(.p50_us) us, p99 \(.p99_us) us (load \(.load1))"'
    done
  done
done
echo "| clients | system | median ops/s (min-max) | median p50 us | median p99 us |" | tee "$OUT/summary.md"
echo "|---|---|---|---|---|" | tee -a "$OUT/summary.md"
jq -s -r 'group_by([.clients, .sys])[] as $r
  | def med(f): ($r | map(f) | sort) as $v | if ($v | length) % 2 == 1 then $v[($v | length) / 2 | floor]
      else ($v[($v | length) / 2 - 1] + $v[($v | length) / 2]) / 2 end;
  "| \($r[0].clients) | \($r[0].sys) | \(med(.throughput_ops) | floor) (\($r | map(.throughput_ops) | min | floor)-\($r | map(.throughput_ops) | max | floor)) | \(med(.p50_us)) | \(med(.p99_us)) |"' \
  "$OUT/runs.jsonl" | tee -a "$OUT/summary.md"
