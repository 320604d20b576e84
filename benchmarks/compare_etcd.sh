#!/usr/bin/env bash
# compare_etcd.sh: etcd and Ballot side by side on this machine, same durability, same load
# shape, interleaved so that both see the same machine; prints a side-by-side table and ratios.
#
#   benchmarks/compare_etcd.sh                  # 3 runs x (1, 16, 256 clients) x 10 s, failover
#   DURATION_S=3 RUNS=1 benchmarks/compare_etcd.sh   # a quick trial
#
# etcd: Debian's etcd-server (3 members on 127.0.0.1, data in a temp dir, default fsync), driven
# by etcd's own `benchmark put` tool, built here from Debian's etcd source package with Debian's
# Go, offline (GOPATH mode against the golang-*-dev packages; no module download). 8 B keys,
# 16 B values. Failover: kill -9 of the leader under a 16-client load, time until the first put
# sent after the kill succeeds (a small Go helper built the same way; one put every 10 ms).
# Ballot: build/tools/ballot-bench --start_nodes=3 --workload=kv --value_bytes=16, which starts
# its own 3 ballotd (LMDB, real syncs) and measures the same things the same way.
#
# Environment: DURATION_S (10), RUNS (3), CLIENTS ("1 16 256"), FAILOVER_KILLS (5 per run),
# BUILD_DIR (build), ETCD_TOOLS_DIR (cache for the built tools), KEEP_WORK=1 keeps the raw output,
# ETCD_EXTRA_FLAGS / BALLOT_NODE_FLAGS (extra server flags, e.g. to match election timeouts:
# "--heartbeat-interval=10 --election-timeout=100" for etcd), PLOT=FILE.svg (throughput and p99
# of both against clients, via benchmarks/plot.sh).
# Needs root for apt-get when something is missing; installs only Debian packages.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DURATION_S="${DURATION_S:-10}"
RUNS="${RUNS:-3}"
CLIENTS="${CLIENTS:-1 16 256}"
FAILOVER_KILLS="${FAILOVER_KILLS:-5}"
BUILD_DIR="${BUILD_DIR:-$ROOT/build}"
BALLOT_BENCH="$BUILD_DIR/tools/ballot-bench"
ETCD_TOOLS_DIR="${ETCD_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ballot-etcd-tools}"
WORK="$(mktemp -d /tmp/compare-etcd.XXXXXX)"
RESULTS="$WORK/results.jsonl"
: >"$RESULTS"

ETCD_REASON=""   # non-empty: etcd cannot be run at all
BENCH_REASON=""  # non-empty: etcd's benchmark tool is not available (throughput not measured)
ETCD_PIDS=()     # by member index 0..2; only processes this script started
LOAD_PID=""

log() { echo "== $*" >&2; }

cleanup() {
  { [[ -n "$LOAD_PID" ]] && kill -9 "$LOAD_PID"
    for pid in "${ETCD_PIDS[@]:-}"; do [[ -n "$pid" ]] && kill -9 "$pid"; done
    wait; } 2>/dev/null
  if [[ "${KEEP_WORK:-0}" == 1 ]]; then log "raw output kept in $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------------------------------------
# Setup: Debian packages, etcd's benchmark tool, Ballot's binaries.

apt_install() {  # apt_install PKG...: installs what is missing; false if it cannot
  local missing=()
  for p in "$@"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
    missing+=("$p"); done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  [[ $(id -u) -eq 0 ]] || { echo "not root: cannot apt-get install ${missing[*]}"; return 1; }
  log "apt-get install ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >"$WORK/apt.log" 2>&1 || {
    apt-get update -qq >>"$WORK/apt.log" 2>&1
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >>"$WORK/apt.log" 2>&1
  } || { echo "apt-get install ${missing[*]} failed: $(tail -1 "$WORK/apt.log")"; return 1; }
}

setup_etcd() {
  local had_service=0
  command -v systemctl >/dev/null && systemctl is-active -q etcd 2>/dev/null && had_service=1
  local why
  why="$(apt_install etcd-server etcd-client)" || { ETCD_REASON="$why"; return; }
  # Installing etcd-server on a machine with systemd starts a system etcd; it would compete
  # for the two cores. Stop it only if this install started it.
  if [[ $had_service == 0 ]] && command -v systemctl >/dev/null &&
     systemctl is-active -q etcd 2>/dev/null; then
    log "stopping the system etcd service that the package install started"
    systemctl stop etcd; systemctl disable -q etcd 2>/dev/null
  fi
}

# Debian's deb-src entries, needed by `apt-get source` and `apt-get build-dep`.
ensure_deb_src() {
  grep -rqs "^Types:.*deb-src\|^deb-src " /etc/apt/sources.list /etc/apt/sources.list.d/ &&
    return 0
  [[ $(id -u) -eq 0 ]] || { echo "no deb-src entries in /etc/apt/sources.list* and not root"; return 1; }
  local codename
  codename="$(. /etc/os-release && echo "${VERSION_CODENAME:-}")"
  [[ -n "$codename" ]] || { echo "no VERSION_CODENAME in /etc/os-release"; return 1; }
  log "adding Debian deb-src entries (/etc/apt/sources.list.d/ballot-debian-src.sources)"
  cat >/etc/apt/sources.list.d/ballot-debian-src.sources <<EOF
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: $codename $codename-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  apt-get update -qq >"$WORK/apt-update.log" 2>&1 ||
    { echo "apt-get update failed: $(tail -1 "$WORK/apt-update.log")"; return 1; }
}

# The helper that measures etcd failover: finds the leader, kill -9s it, sends a put every
# 10 ms to the survivors and reports the time from the kill to the first success.
write_failover_helper() {
  mkdir -p "$1"
  cat >"$1/main.go" <<'EOF'
package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.etcd.io/etcd/clientv3"
)

const attemptsMax = 3000 // one put every 10 ms: 30 s at most

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "etcd-failover: "+format+"\n", args...)
	os.Exit(1)
}

// usage: etcd-failover ENDPOINT=PID ENDPOINT=PID ENDPOINT=PID
func main() {
	pids := map[string]int{}
	var eps []string
	for _, a := range os.Args[1:] {
		kv := strings.SplitN(a, "=", 2)
		pid, err := strconv.Atoi(kv[len(kv)-1])
		if len(kv) != 2 || err != nil {
			fail("bad argument %q (want ENDPOINT=PID)", a)
		}
		pids[kv[0]] = pid
		eps = append(eps, kv[0])
	}
	all, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second})
	if err != nil {
		fail("%v", err)
	}
	leader := ""
	for _, ep := range eps {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		st, err := all.Status(ctx, ep)
		cancel()
		if err == nil && st.Header.MemberId == st.Leader {
			leader = ep
		}
	}
	if leader == "" {
		fail("no leader found")
	}
	var rest []string
	for _, ep := range eps {
		if ep != leader {
			rest = append(rest, ep)
		}
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: rest, DialTimeout: 5 * time.Second})
	if err != nil {
		fail("%v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	_, err = cli.Put(ctx, "failover-warmup", "x")
	cancel()
	if err != nil {
		fail("warm-up put: %v", err)
	}
	done := make(chan time.Time, 1)
	killed := time.Now()
	if err := syscall.Kill(pids[leader], syscall.SIGKILL); err != nil {
		fail("kill %d: %v", pids[leader], err)
	}
	tick := time.NewTicker(10 * time.Millisecond)
	for i := 0; i < attemptsMax; i++ {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			if _, err := cli.Put(ctx, "failover", "v"); err == nil {
				select {
				case done <- time.Now():
				default:
				}
			}
		}()
		select {
		case t := <-done:
			fmt.Printf("{\"leader\":\"%s\",\"failover_ms\":%.1f}\n", leader,
				float64(t.Sub(killed).Microseconds())/1000)
			os.Exit(0)
		case <-tick.C:
		}
	}
	fail("no put succeeded within %d attempts", attemptsMax)
}
EOF
}

# Builds etcd's tools/benchmark (and the failover helper) from Debian's etcd source package
# with Debian's Go, offline. Sets BENCH_REASON, saying exactly which step failed, if it cannot.
setup_etcd_benchmark() {
  local version why
  version="$(dpkg-query -W -f='${Version}' etcd-server 2>/dev/null)"
  local out="$ETCD_TOOLS_DIR/$version"
  if [[ -x "$out/benchmark" && -x "$out/etcd-failover" ]]; then
    ETCD_BENCHMARK="$out/benchmark"; ETCD_FAILOVER="$out/etcd-failover"; return
  fi
  why="$(apt_install golang-go dpkg-dev)" || { BENCH_REASON="$why"; return; }
  why="$(ensure_deb_src)" || { BENCH_REASON="$why"; return; }
  log "apt-get build-dep etcd (the Go libraries etcd's tools import, as Debian packages)"
  if ! DEBIAN_FRONTEND=noninteractive apt-get build-dep -y -qq etcd >"$WORK/build-dep.log" 2>&1; then
    BENCH_REASON="apt-get build-dep etcd failed: $(tail -1 "$WORK/build-dep.log")"; return
  fi
  local src="$WORK/etcd-src" gopath="$WORK/gopath"
  mkdir -p "$src" "$gopath/src/go.etcd.io"
  log "apt-get source etcd=$version"
  if ! (cd "$src" && apt-get source -qq "etcd=${version%+b*}" >"$WORK/source.log" 2>&1); then
    BENCH_REASON="apt-get source etcd failed: $(grep -v '^W:' "$WORK/source.log" | tail -1)"
    return
  fi
  local tree
  tree="$(find "$src" -maxdepth 1 -mindepth 1 -type d -name 'etcd-*' | head -1)"
  [[ -d "$tree/tools/benchmark" ]] ||
    { BENCH_REASON="Debian's etcd source has no tools/benchmark"; return; }
  ln -s "$tree" "$gopath/src/go.etcd.io/etcd"
  write_failover_helper "$gopath/src/ballot/etcd-failover"
  mkdir -p "$out"
  log "go build go.etcd.io/etcd/tools/benchmark (GOPATH mode, GOPROXY=off)"
  local goenv=(env GO111MODULE=off GOPROXY=off GOFLAGS= GOPATH="$gopath:/usr/share/gocode"
               GOCACHE="$WORK/gocache")
  if ! (cd "$gopath/src/go.etcd.io/etcd" &&
        "${goenv[@]}" go build -o "$out/benchmark" ./tools/benchmark) >"$WORK/go.log" 2>&1; then
    BENCH_REASON="go build of etcd's tools/benchmark failed offline: $(head -3 "$WORK/go.log" | tr '\n' ' ')"
    return
  fi
  if ! (cd "$gopath/src/ballot/etcd-failover" &&
        "${goenv[@]}" go build -o "$out/etcd-failover" .) >>"$WORK/go.log" 2>&1; then
    BENCH_REASON="go build of the failover helper failed: $(tail -3 "$WORK/go.log" | tr '\n' ' ')"
    return
  fi
  ETCD_BENCHMARK="$out/benchmark"; ETCD_FAILOVER="$out/etcd-failover"
}

setup_ballot() {
  if [[ ! -x "$BALLOT_BENCH" || ! -x "$BUILD_DIR/tools/ballotd" ]]; then
    log "building Ballot (tools/build.sh)"
    "$ROOT/tools/build.sh" >"$WORK/ballot-build.log" 2>&1 ||
      { echo "Ballot build failed: see tools/build.sh" >&2; exit 1; }
  fi
}

# ------------------------------------------------------------------------------------------
# etcd cluster: three members on 127.0.0.1, free ports, data in $WORK, default fsync.

free_ports() {  # prints $1 free TCP ports on 127.0.0.1
  python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

ETCD_ENDPOINTS=""
etcd_member_start() {  # etcd_member_start INDEX
  local i=$1 dir="$ETCD_DIR/m$1"
  etcd --name "m$i" --data-dir "$dir" \
    --listen-client-urls "http://127.0.0.1:${ETCD_CPORTS[$i]}" \
    --advertise-client-urls "http://127.0.0.1:${ETCD_CPORTS[$i]}" \
    --listen-peer-urls "http://127.0.0.1:${ETCD_PPORTS[$i]}" \
    --initial-advertise-peer-urls "http://127.0.0.1:${ETCD_PPORTS[$i]}" \
    --initial-cluster "$ETCD_INITIAL" --initial-cluster-token "ballot-compare-$$" \
    --initial-cluster-state new --logger zap --log-outputs "$ETCD_DIR/m$i.log" \
    ${ETCD_EXTRA_FLAGS:-} >>"$ETCD_DIR/m$i.out" 2>&1 &
  ETCD_PIDS[$i]=$!
}

etcd_wait_healthy() {  # every member healthy and a put goes through, within 30 s
  local deadline=$((SECONDS + 30))
  while ((SECONDS < deadline)); do
    if etcdctl --endpoints="$ETCD_ENDPOINTS" --command-timeout=2s endpoint health >/dev/null 2>&1 &&
       etcdctl --endpoints="$ETCD_ENDPOINTS" --command-timeout=2s put ballot-ready 1 >/dev/null 2>&1
    then return 0; fi
    sleep 0.2
  done
  return 1
}

etcd_start() {
  ETCD_DIR="$(mktemp -d "$WORK/etcd.XXXXXX")"
  local ports
  read -r -a ports <<<"$(free_ports 6)"
  ETCD_CPORTS=("${ports[@]:0:3}"); ETCD_PPORTS=("${ports[@]:3:3}")
  ETCD_INITIAL=""; ETCD_ENDPOINTS=""
  for i in 0 1 2; do
    ETCD_INITIAL+="${ETCD_INITIAL:+,}m$i=http://127.0.0.1:${ETCD_PPORTS[$i]}"
    ETCD_ENDPOINTS+="${ETCD_ENDPOINTS:+,}127.0.0.1:${ETCD_CPORTS[$i]}"
  done
  for i in 0 1 2; do etcd_member_start "$i"; done
  etcd_wait_healthy || { echo "etcd cluster did not become healthy; see $ETCD_DIR" >&2; return 1; }
}

etcd_stop() {
  for i in 0 1 2; do
    [[ -n "${ETCD_PIDS[$i]:-}" ]] && { kill -9 "${ETCD_PIDS[$i]}"; wait "${ETCD_PIDS[$i]}"; } 2>/dev/null
    ETCD_PIDS[$i]=""
  done
  rm -rf "$ETCD_DIR"
}

# etcd_put_args CLIENTS TOTAL [flag...]: sets ETCD_PUT_ARGS to an etcd `benchmark put` command.
etcd_put_args() {
  local n=$1 total=$2; shift 2
  ETCD_PUT_ARGS=("$ETCD_BENCHMARK" --endpoints="$ETCD_ENDPOINTS" "$@" --conns=$((n < 16 ? n : 16))
    --clients="$n" --precise put --key-size=8 --val-size=16 --key-space-size=100000
    --total="$total")
}

# etcd_put CLIENTS TOTAL: a measured point, sent to the leader as Ballot's clients do.
etcd_put() {
  etcd_put_args "$1" "$2" --target-leader
  "${ETCD_PUT_ARGS[@]}" 2>&1
}

# Parses a `benchmark put` report into one JSON object on stdout.
parse_etcd_report() {
  python3 -c '
import json, re, sys
text = sys.stdin.read()
def num(pattern):
    m = re.search(pattern, text)
    return float(m.group(1)) if m else None
errors = sum(int(n) for n in re.findall(r"^\s*\[(\d+)\]\t", text, re.M))
print(json.dumps({"seconds": num(r"Total:\s+([\d.]+) secs"),
                  "throughput": num(r"Requests/sec:\s+([\d.]+)"),
                  "p50_ms": (num(r"\s50% in ([\d.]+) secs") or 0) * 1e3,
                  "p99_ms": (num(r"\s99% in ([\d.]+) secs") or 0) * 1e3,
                  "errors": errors}))'
}

etcd_point() {  # etcd_point RUN CLIENTS
  local run=$1 n=$2
  etcd_start || { etcd_stop; return; }
  # Warm-up, which also sizes --total for ~DURATION_S (the tool has no duration flag): a short
  # probe, then ~2 s at the probe's rate (the probe alone underestimates: it includes dialing).
  local rate=0 warm=$((n * 100 < 5000 ? n * 100 : 5000))
  for _ in 1 2; do
    rate="$(etcd_put "$n" "$warm" | parse_etcd_report | python3 -c \
            'import json,sys; print(json.load(sys.stdin)["throughput"] or 0)')"
    warm="$(python3 -c "print(max($n * 4, int(2 * float('$rate'))))")"
  done
  local total
  total="$(python3 -c "print(max($n * 4, int(float('$rate') * $DURATION_S)))")"
  local out="$WORK/etcd-run$run-c$n.txt"
  etcd_put "$n" "$total" >"$out"
  parse_etcd_report <"$out" | python3 -c "
import json, sys
r = json.load(sys.stdin); r.update(system='etcd', run=$run, clients=$n, total=$total)
print(json.dumps(r))" >>"$RESULTS"
  log "etcd   run $run clients $n: $(tail -1 "$RESULTS")"
  etcd_stop
}

etcd_failover() {  # etcd_failover RUN: FAILOVER_KILLS leader kills under a 16-client load
  local run=$1
  etcd_start || { etcd_stop; return; }
  # The load goes to every member (not --target-leader), so it goes on after the kill. Started
  # directly, not in a subshell, so that $! is the tool itself.
  etcd_put_args 16 100000000
  "${ETCD_PUT_ARGS[@]}" >/dev/null 2>&1 &
  LOAD_PID=$!
  sleep 1
  local ms=()
  for ((k = 1; k <= FAILOVER_KILLS; k++)); do
    local args=()
    for i in 0 1 2; do args+=("127.0.0.1:${ETCD_CPORTS[$i]}=${ETCD_PIDS[$i]}"); done
    local line="" rc leader="" killed=""
    # The helper kills one of our background etcd; reaping it inside this redirected group
    # keeps bash's "Killed" job notice off the terminal.
    {
      line="$("$ETCD_FAILOVER" "${args[@]}" 2>>"$WORK/etcd-failover.err")"; rc=$?
      if ((rc == 0)); then
        leader="$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["leader"])' "$line")"
        for i in 0 1 2; do [[ "${ETCD_CPORTS[$i]}" == "${leader##*:}" ]] && killed=$i; done
        [[ -n "$killed" ]] && wait "${ETCD_PIDS[$killed]}"
      fi
    } 2>/dev/null
    if [[ -z "$killed" ]]; then
      log "etcd failover $k: no result: $(tail -1 "$WORK/etcd-failover.err")"; continue
    fi
    ms+=("$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["failover_ms"])' "$line")")
    log "etcd   run $run kill $k: leader $leader, first success after ${ms[-1]} ms"
    etcd_member_start "$killed"  # back to full strength, on its data
    etcd_wait_healthy || log "etcd did not recover after kill $k"
    sleep 1
  done
  { kill -9 "$LOAD_PID"; wait "$LOAD_PID"; } 2>/dev/null; LOAD_PID=""
  python3 -c "import json,sys; print(json.dumps({'system':'etcd','run':$run,'failover_ms':[float(x) for x in sys.argv[1:]]}))" \
    "${ms[@]}" >>"$RESULTS"
  etcd_stop
}

# ------------------------------------------------------------------------------------------
# Ballot: ballot-bench starts its own 3 ballotd and prints one JSON line per point.

ballot_point() {  # ballot_point RUN CLIENTS [extra flags]
  local run=$1 n=$2; shift 2
  local out="$WORK/ballot-run$run-c$n$*.txt"
  "$BALLOT_BENCH" --start_nodes=3 --workload=kv --value_bytes=16 --clients="$n" \
    --duration_s="$DURATION_S" --json --node_flags="${BALLOT_NODE_FLAGS:-}" "$@" \
    >"$out" 2>"$out.err"
  local last
  last="$(grep '^{' "$out" | tail -1)"
  if [[ -z "$last" ]]; then
    log "ballot run $run clients $n: no result ($(tail -1 "$out.err"))"; return
  fi
  python3 -c "
import json, sys
j = json.loads(sys.argv[1])
r = dict(system='ballot', run=$run, clients=j['clients'], seconds=j['duration_s'],
         throughput=j['throughput_ops'], p50_ms=j['p50_us'] / 1e3, p99_ms=j['p99_us'] / 1e3,
         errors=j['errors'])
if j['failover_ms']: r = dict(system='ballot', run=$run, failover_ms=j['failover_ms'])
print(json.dumps(r))" "$last" >>"$RESULTS"
  log "ballot run $run clients $n: $(tail -1 "$RESULTS")"
}

# ------------------------------------------------------------------------------------------
# The table.

report() {
  python3 - "$RESULTS" "$ETCD_REASON" "$BENCH_REASON" "$DURATION_S" "$RUNS" "$CLIENTS" <<'EOF'
import json, statistics, sys
path, etcd_reason, bench_reason, duration, runs, clients = sys.argv[1:]
rows = [json.loads(l) for l in open(path) if l.strip()]
points = [r for r in rows if "clients" in r]
fails = {s: [ms for r in rows if r["system"] == s and "failover_ms" in r for ms in r["failover_ms"]]
         for s in ("etcd", "ballot")}
tp_reason = etcd_reason or bench_reason

def pick(system, clients, key):
    return [r[key] for r in points if r["system"] == system and r["clients"] == clients
            and r.get(key) is not None and r.get("throughput")]

def med(v): return statistics.median(v) if v else None
def rng(v, fmt): return f"{fmt(med(v))} ({fmt(min(v))}-{fmt(max(v))})" if v else "-"
def k(x): return f"{x/1000:.1f}k" if x >= 1000 else f"{x:.0f}"
def ms(x): return f"{x:.2f}" if x < 10 else f"{x:.1f}"

print()
print(f"Side by side on this machine: {runs} run(s) per point, ~{duration} s each; "
      "median (min-max) over runs.")
print("etcd: Debian etcd-server, 3 members on 127.0.0.1, default fsync, `benchmark put` "
      "8 B keys / 16 B values, --target-leader.")
print("Ballot: ballot-bench --start_nodes=3 --workload=kv --value_bytes=16 (LMDB, real syncs).")
print()
hdr = ["clients", "etcd puts/s", "Ballot puts/s", "Ballot/etcd",
       "etcd p50 ms", "Ballot p50 ms", "etcd p99 ms", "Ballot p99 ms"]
table = [hdr]
for c in sorted({r["clients"] for r in points} | {int(c) for c in clients.split()}):
    et, bt = pick("etcd", c, "throughput"), pick("ballot", c, "throughput")
    ratio = f"{med(bt)/med(et):.2f}x" if et and bt else "-"
    table.append([str(c), rng(et, k) if et else "not measured", rng(bt, k), ratio,
                  rng(pick("etcd", c, "p50_ms"), ms), rng(pick("ballot", c, "p50_ms"), ms),
                  rng(pick("etcd", c, "p99_ms"), ms), rng(pick("ballot", c, "p99_ms"), ms)])
widths = [max(len(r[i]) for r in table) for i in range(len(hdr))]
for i, r in enumerate(table):
    print("  ".join(x.rjust(w) for x, w in zip(r, widths)))
    if i == 0: print("  ".join("-" * w for w in widths))
print("(ratio: Ballot's median puts/s over etcd's)")
secs = [r["seconds"] for r in points if r["system"] == "etcd" and r.get("seconds")]
if secs:
    print(f"etcd points lasted {min(secs):.1f}-{max(secs):.1f} s (its tool takes a request "
          "count, sized from a warm-up)")
errs = {s: sum(r.get("errors") or 0 for r in points if r["system"] == s) for s in ("etcd", "ballot")}
print(f"\nerrors (all points): etcd {errs['etcd']}, Ballot {errs['ballot']}")
print("\nLeader failover (kill -9 the leader under 16 clients; first success of a put sent after "
      "the kill):")
print("  (each with its default timeouts: etcd heartbeat 100 ms, election 1000 ms; Ballot tick "
      "10 ms, heartbeat 1 tick, election 10-20 ticks; unless ETCD_EXTRA_FLAGS / "
      "BALLOT_NODE_FLAGS say otherwise)")
for s, name in (("etcd", "etcd"), ("ballot", "Ballot")):
    v = fails[s]
    if v:
        print(f"  {name:6} median {med(v):.0f} ms, range {min(v):.0f}-{max(v):.0f} ms over {len(v)} kills")
    elif s == "etcd" and tp_reason:
        print(f"  etcd   not measured: {tp_reason}")
    else:
        print(f"  {name:6} not measured")
if fails["etcd"] and fails["ballot"]:
    print(f"  Ballot/etcd median failover time: {med(fails['ballot'])/med(fails['etcd']):.2f}x")
if tp_reason:
    print(f"\netcd: not measured: {tp_reason}")
EOF
}

# ------------------------------------------------------------------------------------------

main() {
  log "load average: $(cut -d' ' -f1-3 /proc/loadavg) (the comparison is only fair on a quiet machine)"
  setup_ballot
  setup_etcd
  if [[ -z "$ETCD_REASON" ]]; then
    setup_etcd_benchmark
    [[ -n "$BENCH_REASON" ]] && log "etcd throughput: not measured: $BENCH_REASON"
  else
    log "etcd: not measured: $ETCD_REASON"
  fi
  # A loop of `etcdctl put` processes would measure process start-up, not etcd: no fallback.
  for ((run = 1; run <= RUNS; run++)); do
    for n in $CLIENTS; do
      [[ -z "$ETCD_REASON$BENCH_REASON" ]] && etcd_point "$run" "$n"
      ballot_point "$run" "$n"
    done
    if ((FAILOVER_KILLS > 0)); then
      [[ -z "$ETCD_REASON$BENCH_REASON" ]] && etcd_failover "$run"
      local fd=$((DURATION_S > 2 * FAILOVER_KILLS ? DURATION_S : 2 * FAILOVER_KILLS))
      DURATION_S="$fd" ballot_point "$run" 16 --failover="$FAILOVER_KILLS"
    fi
  done
  report
  plot
}

# Both systems' points as ballot-bench CSV rows (workload,clients,in_flight,throughput,p50,p90,
# p99,p999,max,errors; microseconds; fields a system does not report are 0), then one plot of
# throughput and p99 against clients. PLOT=FILE.svg (default: in the work directory) keeps it.
plot() {
  python3 - "$RESULTS" "$WORK" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
for system in ("etcd", "ballot"):
    with open(f"{sys.argv[2]}/{system}.csv", "w") as out:
        for r in rows:
            if r["system"] != system or "clients" not in r or not r.get("throughput"):
                continue
            us = lambda key: int(r[key] * 1000) if r.get(key) is not None else 0
            out.write(f"kv,{r['clients']},1,{int(r['throughput'])},{us('p50_ms')},0,"
                      f"{us('p99_ms')},0,0,{r.get('errors') or 0}\n")
EOF
  [[ -n "${PLOT:-}" || "${KEEP_WORK:-0}" == 1 ]] || return 0
  local svg="${PLOT:-$WORK/compare.svg}"
  if [[ -s "$WORK/etcd.csv" && -s "$WORK/ballot.csv" ]] &&
    "$ROOT/benchmarks/plot.sh" -o "$svg" -t "Ballot and etcd, 3 replicas on one 2-core machine" \
      "$WORK/ballot.csv" "$WORK/etcd.csv" >/dev/null; then
    log "plot: $svg"
  fi
}

main "$@"
