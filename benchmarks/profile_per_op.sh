#!/usr/bin/env bash
# Per operation, from benchmarks/profile_cluster.sh's outputs: fdatasync and pwrite64 calls of the
# leader and of one follower (strace -c, the window right after the diskstats window), and
# context switches avoided... Prints one line per TAG-cN prefix.
#   benchmarks/profile_per_op.sh benchmarks/results/profile-13
set -euo pipefail
dir="$1"
printf '%-16s %9s %10s %10s %10s %10s %10s %10s\n' point ops/s pwrite/op_L sync/op_L sync/op_F futex/op_L sendmsg/op_L epoll/op_L
for d in "$dir"/*-diskstats.txt; do
  p="${d%-diskstats.txt}"
  t1="$(grep -o 't1=[0-9.]*' "$d" | cut -d= -f2)"
  # strace -c ran for 8 s from t1 (the tracer slows the nodes: ops are counted in that window)
  ops="$(awk -F, -v a="$t1" -v b="$(echo "$t1 + 8" | bc)" '$1 >= a && $1 < b {s += $3; k++} END {print s, k}' "$p-intervals.csv")"
  n="${ops% *}"; k="${ops#* }"
  get() { awk -v s="$2" '$NF == s {print $4}' "$1" | head -1; }
  printf '%-16s %9.0f %10.2f %10.2f %10.2f %10.2f %10.2f %10.2f\n' "$(basename "$p")" "$(echo "$n / $k" | bc -l)" \
    "$(echo "0$(get "$p-strace-c-leader.txt" pwrite64) / $n" | bc -l)" \
    "$(echo "0$(get "$p-strace-c-leader.txt" fdatasync) / $n" | bc -l)" \
    "$(echo "0$(get "$p-strace-c-follower.txt" fdatasync) / $n" | bc -l)" \
    "$(echo "0$(get "$p-strace-c-leader.txt" futex) / $n" | bc -l)" \
    "$(echo "0$(get "$p-strace-c-leader.txt" sendmsg) / $n" | bc -l)" \
    "$(echo "0$(get "$p-strace-c-leader.txt" epoll_wait) / $n" | bc -l)"
done
