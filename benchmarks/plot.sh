#!/usr/bin/env bash
# plot.sh: throughput and p99 latency against clients, as an SVG, from ballot-bench --csv files.
#
#   build/tools/ballot-bench --start_nodes=3 --workload=kv --sweep=1,4,16,64,256 --csv=kv.csv
#   benchmarks/plot.sh kv.csv                      # writes kv.svg
#   benchmarks/plot.sh -o both.svg kv.csv seq.csv  # one pair of lines per file
#
# ballot-bench appends one row per point, without a header:
#   workload,clients,in_flight,throughput_ops,p50_us,p90_us,p99_us,p999_us,max_us,errors
# Rows with the same client count (repeated runs appended to one file) are reduced to their
# median. Throughput is drawn against the left axis, p99 latency (ms) against the right one;
# clients on a log scale. Needs gnuplot (installs Debian's gnuplot-nox if missing and root).
set -euo pipefail

usage() { echo "usage: $0 [-o OUT.svg] [-t TITLE] FILE.csv [FILE.csv...]" >&2; exit 2; }

out=""
title="Ballot: throughput and p99 latency"
while getopts "o:t:h" opt; do
  case "$opt" in
    o) out="$OPTARG" ;;
    t) title="$OPTARG" ;;
    *) usage ;;
  esac
done
shift $((OPTIND - 1))
[[ $# -ge 1 ]] || usage
for f in "$@"; do [[ -r "$f" ]] || { echo "$0: cannot read $f" >&2; exit 2; }; done
[[ -n "$out" ]] || out="${1%.csv}.svg"

if ! command -v gnuplot >/dev/null; then
  [[ $(id -u) -eq 0 ]] || { echo "$0: gnuplot is missing: apt-get install gnuplot-nox" >&2; exit 1; }
  echo "== apt-get install gnuplot-nox" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gnuplot-nox >/dev/null 2>&1 || {
    apt-get update -qq >/dev/null 2>&1
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gnuplot-nox >/dev/null
  }
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# One data file per input: clients, median throughput, median p99 in ms (sorted by clients).
plots=()
i=0
for f in "$@"; do
  i=$((i + 1))
  dat="$work/$i.dat"
  python3 - "$f" >"$dat" <<'EOF'
import csv, statistics, sys
points = {}
for row in csv.reader(open(sys.argv[1])):
    if len(row) < 10 or not row[1].strip().isdigit():
        continue  # a header or a foreign line
    c = int(row[1])
    points.setdefault(c, []).append((float(row[3]), float(row[6]) / 1000.0))
if not points:
    sys.exit(f"{sys.argv[1]}: no ballot-bench CSV rows (workload,clients,in_flight,throughput,...)")
for c in sorted(points):
    v = points[c]
    print(c, statistics.median(t for t, _ in v), statistics.median(p for _, p in v))
EOF
  name="$(basename "$f" .csv)"
  name="${name//_/\\_}"
  plots+=("'$dat' using 1:2 axes x1y1 with linespoints lw 2 pt 7 dt 1 lc $i title '$name ops/s'")
  plots+=("'$dat' using 1:3 axes x1y2 with linespoints lw 2 pt 6 dt 2 lc $i title '$name p99 ms'")
done

joined=""
for p in "${plots[@]}"; do joined+="${joined:+, }$p"; done

gnuplot <<EOF
set terminal svg size 900,540 dynamic enhanced font "sans,12" background rgb "white"
set output '$out'
set title "${title//\"/\\\"}"
set xlabel "clients (closed loop)"
set ylabel "throughput (operations/s)"
set y2label "p99 latency (ms)"
set logscale x 2
set yrange [0:*]
set y2range [0:*]
set ytics nomirror
set y2tics
set grid xtics ytics
set key top left box opaque
set datafile separator whitespace
plot $joined
EOF
echo "$out"
