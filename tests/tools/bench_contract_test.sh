#!/usr/bin/env bash
# ballot-bench's contract, end to end against real ballotd processes it starts itself:
#   - every workload (seq, kv, lock) runs, makes progress and has no errors; the last line of
#     --json is one JSON object with throughput_ops, p50_us, p99_us and errors;
#   - --failover=1 kills the leader once and reports one time from the kill to the first
#     success after it;
#   - --sweep gives one JSON line per point; --csv appends one row per point;
#   - bad flags exit with code 2 and say why.
# Usage: bench_contract_test.sh BUILD_DIR
set -euo pipefail
bench="$1/tools/ballot-bench"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

check_json() {  # check_json FILE WHAT: the last line is a point that made progress without errors
  python3 - "$1" "$2" <<'PY'
import json, sys
path, what = sys.argv[1:]
lines = [l for l in open(path).read().splitlines() if l.strip()]
if not lines:
    sys.exit(f"{what}: no output")
try:
    p = json.loads(lines[-1])
except ValueError:
    sys.exit(f"{what}: last line is not JSON: {lines[-1]!r}")
for key in ("throughput_ops", "p50_us", "p99_us", "errors"):
    if key not in p:
        sys.exit(f"{what}: no {key} in {p}")
if p["throughput_ops"] <= 0 or p["errors"] != 0 or not 0 < p["p50_us"] <= p["p99_us"]:
    sys.exit(f"{what}: no progress, errors or impossible percentiles: {p}")
if p["epoch_start"] == 0 or p["epoch_end"] == 0:
    sys.exit(f"{what}: leader epoch unknown: {p}")
print(f"{what}: {p['throughput_ops']:.0f} ops/s, p50 {p['p50_us']} us, "
      f"{p['commands_per_slot']} commands per slot")
PY
}

short=(--start_nodes=3 --duration_s=1 --warmup_s=0.3 --json)
for workload in seq kv lock; do
  "$bench" "${short[@]}" --workload="$workload" --clients=8 --in_flight=2 \
    >"$work/$workload.out" 2>"$work/$workload.err" || fail "$workload: exit $?: $(tail -3 "$work/$workload.err")"
  check_json "$work/$workload.out" "$workload" || fail "$workload"
done

"$bench" "${short[@]}" --workload=seq --sweep=1,4 --csv="$work/points.csv" >"$work/sweep.out" 2>/dev/null ||
  fail "sweep: exit $?"
[[ $(grep -c '^{' "$work/sweep.out") -eq 2 ]] || fail "sweep: expected 2 JSON points: $(cat "$work/sweep.out")"
[[ $(wc -l <"$work/points.csv") -eq 2 ]] || fail "csv: expected 2 rows: $(cat "$work/points.csv")"
check_json "$work/sweep.out" "sweep" || fail "sweep"

"$bench" --start_nodes=3 --workload=seq --clients=4 --duration_s=3 --warmup_s=0.3 --failover=1 \
  --json >"$work/failover.out" 2>"$work/failover.err" || fail "failover: exit $?: $(tail -3 "$work/failover.err")"
python3 - "$work/failover.out" <<'PY' || fail "failover"
import json, sys
p = json.loads(open(sys.argv[1]).read().splitlines()[-1])
ms = p["failover_ms"]
# No time bound here: a kill the cluster never recovered from is reported as no figure at all.
if len(ms) != 1 or not ms[0] > 0 or p["failover_median_ms"] != ms[0]:
    sys.exit(f"failover: expected one kill timed: {p}")
if p["epoch_end"] <= p["epoch_start"]:
    sys.exit(f"failover: the leader's epoch did not grow: {p}")
print(f"failover: first success {ms[0]} ms after the kill")
PY

expect_usage() {  # expect_usage MESSAGE ARGS...: exit code 2 and MESSAGE on stderr
  local want="$1" code=0
  shift
  "$bench" "$@" >/dev/null 2>"$work/usage.err" || code=$?
  [[ $code -eq 2 ]] || fail "ballot-bench $*: exit $code, expected 2"
  grep -q -- "$want" "$work/usage.err" || fail "ballot-bench $*: no '$want' in: $(cat "$work/usage.err")"
}
expect_usage "unknown --workload" --start_nodes=3 --workload=bogus
expect_usage "exactly one of --cluster and --start_nodes" --workload=seq
expect_usage "--failover needs --start_nodes" --cluster=1@127.0.0.1:1 --failover=1
expect_usage "no_such_flag" --no_such_flag=1
echo "ballot-bench contract: ok"
