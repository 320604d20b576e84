#!/usr/bin/env python3
"""Classifies ballot-bench --interval_csv seconds around snapshot writes (snapshot_bench.sh).

    snapshot_classify.py OUT_DIR

Reads OUT_DIR/snapshots.csv (one row per `ballotctl snapshot`: node, start and end of the
command), OUT_DIR/seconds.csv (unix_s,second,ops,errors,p50_us,p99_us,max_us; the row at unix_s
covers (unix_s - 1, unix_s]) and OUT_DIR/nodeN-events.log (glog lines "snapshot below slot S is
durable"). A requested snapshot's write lasts from the command until the last "is durable" line
of that node within 15 s after the command returned: a client that retries the request while a
long snapshot is written makes the node take another one right after it, and those writes count
too. A second is "during" if it overlaps a write, "after" for the 2 s after one, "without"
otherwise; the first 5 s are skipped. Writes classified.csv and prints, per class, the seconds,
ops/s, the median and worst per-second p99 and the largest latency.
"""
import csv
import datetime
import glob
import os
import re
import statistics
import sys

out = sys.argv[1]
durable = {}
for path in glob.glob(os.path.join(out, "node*-events.log")):
    node = re.search(r"node(\d+)-events", path).group(1)
    for line in open(path):
        m = re.match(r"I(\d{8}) (\S+) .*snapshot below slot \d+ is durable", line)
        if m:
            # glog writes local time; these machines run in UTC like the rest of the scripts.
            t = datetime.datetime.strptime(m.group(1) + " " + m.group(2), "%Y%m%d %H:%M:%S.%f")
            durable.setdefault(node, []).append(t.timestamp())

writes = []
for s in csv.DictReader(open(os.path.join(out, "snapshots.csv"))):
    start, end = float(s["start_unix_s"]), float(s["end_unix_s"])
    last = max([t for t in durable.get(s["node"], []) if end - 1 <= t <= end + 15] + [end])
    writes.append((start, last))
    print(f"snapshot {s['snapshot']} on node {s['node']} ({s['role']}): command {end - start:.2f} s, "
          f"writes until {last - start:.2f} s after it")

classes = {"without": [], "during": [], "after": []}
with open(os.path.join(out, "classified.csv"), "w") as f:
    for row in csv.reader(open(os.path.join(out, "seconds.csv"))):
        t, second = float(row[0]), int(row[1])
        if second <= 5:
            continue
        cls = "without"
        for start, last in writes:
            if t > start and t - 1 < last:
                cls = "during"
                break
            if last <= t - 1 < last + 2:
                cls = "after"
        classes[cls].append(row)
        f.write(cls + "," + ",".join(row) + "\n")

for cls, rows in classes.items():
    if not rows:
        print(f"{cls}: no seconds")
        continue
    p99 = [int(r[5]) for r in rows]
    ops = sum(int(r[2]) for r in rows) / len(rows)
    print(f"{cls:8s} seconds={len(rows)} ops/s={ops:.0f} per-second p99: median "
          f"{statistics.median(p99) / 1000:.1f} ms, worst {max(p99) / 1000:.1f} ms; "
          f"max latency {max(int(r[6]) for r in rows) / 1000:.1f} ms")
