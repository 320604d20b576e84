#!/usr/bin/env bash
# The README's first command: installs what is missing, builds, and runs a 3-replica Ballot
# cluster on 127.0.0.1 serving the replicated sequence generator. It draws numbers, SIGKILLs the
# leader, shows the new leader with its higher epoch and numbers still rising without repeats,
# restarts the killed node and shows it catching up, then stops everything it started.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/tools/setup.sh"
echo "== building (the first time takes several minutes; log in /tmp/ballot-demo-build.log)"
if ! "$root/tools/build.sh" >/tmp/ballot-demo-build.log 2>&1; then
  tail -30 /tmp/ballot-demo-build.log
  echo "build failed"
  exit 1
fi
bin="${BUILD_DIR:-$root/build}/tools"

work="$(mktemp -d /tmp/ballot-demo.XXXXXX)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# Three free ports below the ephemeral range (tools/free_ports.py says why).
read -r -a ports < <(python3 "$root/tools/free_ports.py" 3)
cluster="1@127.0.0.1:${ports[0]},2@127.0.0.1:${ports[1]},3@127.0.0.1:${ports[2]}"
ctl() { "$bin/ballotctl" --cluster="$cluster" --timeout_ms=3000 "$@"; }

start_node() {
  local id=$1
  "$bin/ballotd" --id="$id" --cluster="$cluster" --data_dir="$work/node$id" \
    --state_machine=sequence >"$work/node$id.log" 2>&1 &
  pids[$id]=$!
}

wait_for_leader() {
  local deadline=$((SECONDS + 20))
  until ctl leader >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then echo "no leader after 20 s"; exit 1; fi
    sleep 0.05
  done
}

step() { printf '\n== %s\n' "$*"; }

step "starting 3 replicas: $cluster (data in $work)"
for id in 1 2 3; do start_node "$id"; done
wait_for_leader
ctl status

step "drawing numbers from the replicated sequence generator"
before=$(ctl seq next --count=5 | tr '\n' ' ')
echo "got: $before"
read -r leader epoch < <(ctl leader)
echo "leader is node $leader, epoch $epoch"

step "fencing: a paused leader wakes up and tries to write with its old token"
"$bin/ballot-fenced-kv" --port=0 --data_dir="$work/resource" >"$work/resource.out" 2>"$work/resource.log" &
resource_pid=$!
pids[9]=$resource_pid
until grep -q "listening on" "$work/resource.out" 2>/dev/null; do sleep 0.05; done
resource="127.0.0.1:$(awk '/listening on/ {print $3}' "$work/resource.out")"
fence() { "$bin/ballot-fenced-kv" --connect="$resource" --send="$1"; }
echo "fenced resource (a key-value store that checks tokens) on $resource"
echo "leader $leader writes with its token $epoch:"
fence "WRITE orders $epoch owner node-$leader"
echo "SIGSTOP node $leader (a long GC pause, a frozen VM...)"
kill -STOP "${pids[$leader]}"
deadline=$((SECONDS + 20))
while :; do
  if read -r l2 e2 < <(ctl leader 2>/dev/null) && [ "$e2" -gt "$epoch" ]; then break; fi
  if [ $SECONDS -ge $deadline ]; then echo "no new leader"; exit 1; fi
  sleep 0.05
done
echo "node $l2 took over with epoch $e2; it registers its token, then writes:"
fence "REGISTER orders $e2"
fence "WRITE orders $e2 owner node-$l2"
echo "SIGCONT node $leader: it still believes it leads and sends the write it had in hand:"
kill -CONT "${pids[$leader]}"
set +e
fence "WRITE orders $epoch owner node-$leader"
rc=$?
set -e
if [ $rc -ne 3 ]; then echo "the stale write was not rejected"; exit 1; fi
echo "bounced: old token $epoch < new token $e2. The resource still holds:"
fence "READ owner"
leader=$l2
epoch=$e2

step "SIGKILL the leader (node $leader)"
kill -9 "${pids[$leader]}"
wait "${pids[$leader]}" 2>/dev/null || true
t0=$(date +%s%N)
after=$(ctl seq next --count=5 | tr '\n' ' ')
t1=$(date +%s%N)
echo "first numbers after the kill: $after  ($(( (t1 - t0) / 1000000 )) ms after the kill)"
read -r new_leader new_epoch < <(ctl leader)
echo "new leader is node $new_leader, epoch $new_epoch (was $epoch)"
if [ "$new_epoch" -le "$epoch" ]; then echo "epoch did not grow"; exit 1; fi
last_before=$(echo "$before" | awk '{print $NF}')
first_after=$(echo "$after" | awk '{print $1}')
if [ "$first_after" -le "$last_before" ]; then echo "numbers went backwards"; exit 1; fi
echo "numbers keep rising: $last_before < $first_after, none repeated"
ctl status

step "restarting node $leader with its data directory"
start_node "$leader"
ctl seq next --count=3 >/dev/null
deadline=$((SECONDS + 20))
while :; do
  json=$(ctl status --json)
  caught_up=$(python3 -c '
import json, sys
nodes = json.loads(sys.argv[1])["nodes"]
applied = [n.get("applied", 0) for n in nodes if n.get("reachable")]
print("yes" if len(applied) == 3 and len(set(applied)) == 1 else "no")' "$json")
  [ "$caught_up" = yes ] && break
  if [ $SECONDS -ge $deadline ]; then echo "node $leader did not catch up"; ctl status; exit 1; fi
  sleep 0.1
done
echo "node $leader caught up:"
ctl status

step "stopping the cluster"
for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done  # SIGTERM: clean shutdown
wait 2>/dev/null || true
pids=()
echo "demo finished"
