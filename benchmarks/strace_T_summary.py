#!/usr/bin/env python3
"""Summarises `strace -f -tt -T` output: per syscall and thread, calls and the time spent in each
call (p50, p90, p99, total), so that the sync, the network and the waits can be read apart."""
import re
import sys
from collections import defaultdict

line_re = re.compile(r'^(\d+)\s+\S+\s+(\w+)\(.*<([\d.]+)>\s*$')
resumed_re = re.compile(r'^(\d+)\s+\S+\s+<\.\.\. (\w+) resumed>.*<([\d.]+)>\s*$')
calls = defaultdict(list)
first = last = None
for line in open(sys.argv[1], errors='replace'):
    m = line_re.match(line) or resumed_re.match(line)
    if not m:
        continue
    tid, name, dur = m.group(1), m.group(2), float(m.group(3))
    calls[(name, tid)].append(dur)
tids = sorted({t for (_, t) in calls})
print(f"{'syscall':<14} {'tid':>8} {'calls':>7} {'p50_us':>9} {'p90_us':>9} {'p99_us':>9} {'total_ms':>9}")
for (name, tid), v in sorted(calls.items(), key=lambda kv: -sum(kv[1])):
    v.sort()
    q = lambda f: v[min(len(v) - 1, int(f * len(v)))] * 1e6
    print(f"{name:<14} {tid:>8} {len(v):>7} {q(0.5):>9.0f} {q(0.9):>9.0f} {q(0.99):>9.0f} {sum(v)*1e3:>9.1f}")
