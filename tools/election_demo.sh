#!/usr/bin/env bash
# Leader election for your own processes with `ballotctl lock run`, and fencing when it is not
# enough. Starts a 3-replica Ballot cluster serving the lock sample on 127.0.0.1, the sample
# fenced resource (ballot-fenced-kv), and three workers w1 w2 w3, each started as
#   ballotctl --cluster=... lock run jobs --owner=wN --ttl_ms=3000 -- worker.sh wN
# so that only the one holding the lock "jobs" runs; it registers its BALLOT_FENCING_TOKEN with
# the resource and writes with it twice a second. Then:
#   1. SIGKILL the leader's lock run: its worker dies with it (parent-death signal) and another
#      worker takes over within the TTL.
#   2. SIGSTOP the leader's lock run and its worker (a frozen VM, a long GC pause) past the TTL:
#      the next worker takes over. SIGCONT the old worker first: it still believes it leads, and
#      its next write is REJECTED by the resource (stale token). Then SIGCONT its lock run: it
#      sees its hold ran out and exits 4.
#   3. SIGTERM every lock run: each stops its worker, releases the lock, exits 143.
# Everything it starts is stopped at the end (and on any failure). Each wait is bounded.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${BUILD_DIR:-$root/build}"
"$root/tools/setup.sh"
echo "== building ballotd, ballotctl, ballot-fenced-kv (log in /tmp/ballot-election-demo-build.log)"
if ! { [ -f "$build/CMakeCache.txt" ] ||
       cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}"; } \
       >/tmp/ballot-election-demo-build.log 2>&1 ||
   ! cmake --build "$build" -j"${JOBS:-2}" --target ballotd ballotctl ballot-fenced-kv \
       >>/tmp/ballot-election-demo-build.log 2>&1; then
  tail -30 /tmp/ballot-election-demo-build.log
  echo "build failed"
  exit 1
fi
bin="$build/tools"
ttl_ms=3000

work="$(mktemp -d /tmp/ballot-election-demo.XXXXXX)"
pids=()                 # everything to SIGKILL at the end
declare -A lockrun      # worker name -> pid of its lock run
cleanup() {
  for p in "${pids[@]}" "${lockrun[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n== %s\n' "$*"; }
fail() {
  echo "FAILED: $*"
  echo "-- workers' log:"
  cat "$work/workers.log" 2>/dev/null || true
  for f in "$work"/lockrun-*.log; do [ -e "$f" ] && { echo "-- $(basename "$f"):"; cat "$f"; }; done
  for f in "$work"/node*.log; do [ -e "$f" ] && { echo "-- $(basename "$f") (tail):"; tail -15 "$f"; }; done
  exit 1
}
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# Three free ports below the ephemeral range (tools/free_ports.py says why).
read -r -a ports < <(python3 "$root/tools/free_ports.py" 3)
cluster="1@127.0.0.1:${ports[0]},2@127.0.0.1:${ports[1]},3@127.0.0.1:${ports[2]}"
ctl() { "$bin/ballotctl" --cluster="$cluster" --timeout_ms=3000 "$@"; }

step "starting 3 replicas serving the lock sample: $cluster"
for id in 1 2 3; do
  "$bin/ballotd" --id="$id" --cluster="$cluster" --data_dir="$work/node$id" \
    --state_machine=lock >"$work/node$id.log" 2>&1 &
  pids+=($!)
done
deadline=$((SECONDS + 20))
until ctl leader >/dev/null 2>&1; do
  [ $SECONDS -lt $deadline ] || fail "no leader after 20 s"
  for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null || fail "a replica exited"; done
  sleep 0.05
done

step "starting the fenced resource (ballot-fenced-kv: refuses writes with a token below the highest seen)"
"$bin/ballot-fenced-kv" --port=0 --data_dir="$work/resource" >"$work/resource.out" \
  2>"$work/resource.log" &
pids+=($!)
deadline=$((SECONDS + 20))
until grep -q "listening on" "$work/resource.out" 2>/dev/null; do
  [ $SECONDS -lt $deadline ] || fail "the resource did not start"
  sleep 0.05
done
resource="127.0.0.1:$(awk '/listening on/ {print $3}' "$work/resource.out")"
fence() { "$bin/ballot-fenced-kv" --connect="$resource" --send="$1" 2>&1 || true; }
echo "resource on $resource"

# The worker: what an application would run under `lock run`. It registers its token with the
# resource before acting (docs/fencing.md), then writes with it; a refused write means another
# worker has taken over, so it stops.
cat >"$work/worker.sh" <<'WORKER'
#!/usr/bin/env bash
set -u
name=$1 fenced_kv=$2 resource=$3 log=$4
say() { echo "$(date +%T.%3N) $name (pid $$, token $BALLOT_FENCING_TOKEN): $*" >>"$log"; }
send() { "$fenced_kv" --connect="$resource" --send="$1" 2>&1; }
trap 'say "SIGTERM: stopping"; exit 0' TERM
say "elected leader of lock '$BALLOT_LOCK_NAME'"
say "REGISTER -> $(send "REGISTER jobs $BALLOT_FENCING_TOKEN")"
n=0
while :; do
  n=$((n + 1))
  reply=$(send "WRITE jobs $BALLOT_FENCING_TOKEN owner $name-write-$n")
  say "write $n -> $reply"
  case "$reply" in REJECTED*) say "fenced off: another worker leads now; exiting"; exit 3 ;; esac
  sleep 0.5
done
WORKER
chmod +x "$work/worker.sh"
touch "$work/workers.log"

start_worker() {
  local name=$1
  "$bin/ballotctl" --cluster="$cluster" lock run jobs --owner="$name" --ttl_ms=$ttl_ms -- \
    "$work/worker.sh" "$name" "$bin/ballot-fenced-kv" "$resource" "$work/workers.log" \
    2>>"$work/lockrun-$name.log" &
  lockrun[$name]=$!
}

shown=0
show_log() {  # prints the workers' log lines not shown yet
  local total
  total=$(wc -l <"$work/workers.log")
  if [ "$total" -gt "$shown" ]; then
    tail -n +"$((shown + 1))" "$work/workers.log" | head -n "$((total - shown))" | sed 's/^/   /'
    shown=$total
  fi
}
elected_count() { grep -c "elected leader" "$work/workers.log" || true; }
leader_name() { grep "elected leader" "$work/workers.log" | tail -1 | awk '{print $2}'; }
leader_pid() { grep "elected leader" "$work/workers.log" | tail -1 | sed 's/.*(pid \([0-9]*\),.*/\1/'; }
leader_token() { grep "elected leader" "$work/workers.log" | tail -1 | sed 's/.*token \([0-9]*\)).*/\1/'; }
wait_for_election() {  # waits until the n-th election has happened
  local n=$1 deadline=$((SECONDS + 30))
  until [ "$(elected_count)" -ge "$n" ]; do
    [ $SECONDS -lt $deadline ] || fail "no election #$n within 30 s"
    sleep 0.02
  done
}

step "three workers compete for lock 'jobs' with ballotctl lock run (TTL $ttl_ms ms)"
for w in w1 w2 w3; do start_worker "$w"; done
wait_for_election 1
sleep 1.2
show_log
leader=$(leader_name)
echo "-> $leader leads; the other two wait for the lock"

step "1. SIGKILL $leader's lock run (pid ${lockrun[$leader]})"
old_pid=$(leader_pid)
t0=$(now_ms)
{ kill -9 "${lockrun[$leader]}"; wait "${lockrun[$leader]}" || true; } 2>/dev/null
deadline=$((SECONDS + 10))
while [ -e "/proc/$old_pid" ] && [ "$(awk '{print $3}' "/proc/$old_pid/stat" 2>/dev/null)" != Z ]; do
  [ $SECONDS -lt $deadline ] || fail "$leader's worker (pid $old_pid) outlived its lock run"
  sleep 0.01
done
echo "-> its worker (pid $old_pid) died with it: PR_SET_PDEATHSIG, no orphan keeps working"
wait_for_election 2
t1=$(now_ms)
show_log
echo "-> $(leader_name) took over $((t1 - t0)) ms after the kill (TTL $ttl_ms ms), with a higher token"
start_worker "$leader"
echo "-> $leader's lock run started again; it waits in line"

sleep 1
show_log
leader=$(leader_name)
old_pid=$(leader_pid)
old_token=$(leader_token)
step "2. SIGSTOP $leader's lock run and its worker for longer than the TTL (a frozen VM)"
kill -STOP "${lockrun[$leader]}" || fail "$leader's lock run is gone"
# The worker's process group: lock run gives CMD a group of its own.
kill -STOP -- "-$old_pid" || fail "$leader's worker (pid $old_pid) is gone"
wait_for_election 3
show_log
new_token=$(leader_token)
echo "-> $(leader_name) took over with token $new_token while $leader was frozen"
sleep 1
show_log
echo "-> SIGCONT $leader's worker only: it still believes it leads and writes with token $old_token"
kill -CONT -- "-$old_pid"
deadline=$((SECONDS + 10))
until grep -q "token $old_token): write .* -> REJECTED" "$work/workers.log"; do
  [ $SECONDS -lt $deadline ] || fail "the stale write of token $old_token was not rejected"
  sleep 0.02
done
sleep 0.2
show_log
echo "-> the resource refused the stale token $old_token (highest seen: $new_token):"
echo "   HIGHEST jobs -> $(fence "HIGHEST jobs"); READ owner -> $(fence "READ owner")"
echo "-> SIGCONT $leader's lock run: it finds its hold ran out"
kill -CONT "${lockrun[$leader]}"
set +e
wait "${lockrun[$leader]}"
rc=$?
set -e
sed 's/^/   /' "$work/lockrun-$leader.log" | tail -3
echo "-> $leader's lock run exited $rc (4: the lock was lost while the command ran)"
[ "$rc" -eq 4 ] || fail "expected exit 4 from $leader's lock run, got $rc"
unset "lockrun[$leader]"

step "3. SIGTERM the remaining lock runs: each stops its worker, releases the lock and exits"
for w in "${!lockrun[@]}"; do kill -TERM "${lockrun[$w]}"; done
for w in "${!lockrun[@]}"; do
  set +e
  wait "${lockrun[$w]}"
  rc=$?
  set -e
  echo "   $w's lock run exited $rc (128 + SIGTERM)"
  [ "$rc" -eq 143 ] || fail "expected 143 from $w's lock run, got $rc"
done
lockrun=()
show_log

step "stopping the cluster and the resource"
for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
wait 2>/dev/null || true
pids=()
echo "election demo finished"
