#!/usr/bin/env bash
# Plots a soak CSV (benchmarks/soak.sh: t_s, rssN_mb..., diskN_mb..., [anonN_mb...,
# lmdbN_mb...]) as a PNG: RSS of each node and, if sampled, its anonymous part (left axis), its
# data directory size and, if sampled, the LMDB pages in use (right axis) against time.
#
#   benchmarks/soak_plot.sh soak.csv soak.png ["title"]
set -euo pipefail
csv="$1"
png="$2"
title="${3:-Soak: RSS and data directory size per node}"
if ! command -v gnuplot >/dev/null; then
  apt-get install -y gnuplot-nox >/dev/null
fi
nodes=$(head -1 "$csv" | tr ',' '\n' | grep -c '^rss')
plots=""
for ((i = 1; i <= nodes; i++)); do
  plots+="'$csv' using (\$1/60):$((1 + i)) with lines lw 2 title 'node $i RSS', "
done
for ((i = 1; i <= nodes; i++)); do
  plots+="'$csv' using (\$1/60):$((1 + nodes + i)) axes x1y2 with lines lw 2 dt 2 title 'node $i data dir', "
done
if head -1 "$csv" | grep -q anon1_mb; then
  for ((i = 1; i <= nodes; i++)); do
    plots+="'$csv' using (\$1/60):$((1 + 2 * nodes + i)) with lines lw 1 dt 3 title 'node $i anon RSS', "
  done
fi
if head -1 "$csv" | grep -q lmdb1_mb; then
  for ((i = 1; i <= nodes; i++)); do
    plots+="'$csv' using (\$1/60):$((1 + 3 * nodes + i)) axes x1y2 with lines lw 1 dt 4 title 'node $i LMDB pages in use', "
  done
fi
gnuplot <<EOF
set terminal pngcairo size 1100,700 font ",11" noenhanced
set output '$png'
set datafile separator ','
set key autotitle columnhead
set title "$title"
set xlabel 'minutes under load'
set ylabel 'RSS (MiB)'
set y2label 'data directory (MiB)'
set ytics nomirror
set y2tics
set yrange [0:*]
set y2range [0:*]
set grid
set key below horizontal maxcols 3
plot ${plots%, }
EOF
echo "wrote $png"
