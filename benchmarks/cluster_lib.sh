# Shell helpers for the snapshot benchmarks (sourced, not run): start, stop and inspect a local
# three-node ballotd cluster whose data directories, logs and pids live under $WORK, so that a
# script can sample each node's RSS and disk, SIGKILL and restart one node, and read its log.
#
# Needs: BUILD (the build directory), WORK (an existing directory), NODES (default 3).
# Every ballotd started here dies with the script (see cluster_stop_all in an EXIT trap).

NODES="${NODES:-3}"
declare -A NODE_PID

# A free TCP port on 127.0.0.1 (bind port 0, read it back, close it).
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Writes $WORK/cluster (the --cluster flag) once; later calls reuse it, so a node restarted
# from its data directory keeps its address.
cluster_init() {
  if [[ ! -s "$WORK/cluster" ]]; then
    local flag="" id
    for ((id = 1; id <= NODES; id++)); do
      flag+="${flag:+,}$id@127.0.0.1:$(free_port)"
    done
    echo "$flag" >"$WORK/cluster"
  fi
  CLUSTER="$(cat "$WORK/cluster")"
}

# cluster_start_node ID [extra ballotd flags...]: starts node ID in the background, its log
# appended to $WORK/nodeID.log. Prints nothing; NODE_PID[ID] is its pid and
# $WORK/nodeID.started holds the wall-clock start time (seconds, ns precision).
cluster_start_node() {
  local id="$1"
  shift
  date +%s.%N >"$WORK/node$id.started"
  "$BUILD/tools/ballotd" --id="$id" --cluster="$CLUSTER" --data_dir="$WORK/node$id" \
    --state_machine="${STATE_MACHINE:-kv}" $NODE_FLAGS "$@" >>"$WORK/node$id.log" 2>&1 &
  NODE_PID[$id]=$!
}

cluster_start_all() {
  local id
  for ((id = 1; id <= NODES; id++)); do cluster_start_node "$id" "$@"; done
}

cluster_kill_node() {  # SIGKILL, as a crash would
  local id="$1" pid="${NODE_PID[$1]:-}"
  [[ -n "$pid" ]] || return 0
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  unset "NODE_PID[$id]"
}

cluster_stop_all() {
  local id
  for id in "${!NODE_PID[@]}"; do cluster_kill_node "$id"; done
}

# Copies each node's log without the connection chatter (leadership, snapshots, compaction,
# transfers, map growth) to DIR/nodeN-events.log.
save_node_events() {
  local dir="$1" id
  for ((id = 1; id <= NODES; id++)); do
    [[ -f "$WORK/node$id.log" ]] || continue
    grep -vE 'connected to peer|lost the connection|closing ' "$WORK/node$id.log" \
      >"$dir/node$id-events.log" || true
  done
}

ctl() { "$BUILD/tools/ballotctl" --cluster="$CLUSTER" "$@"; }

# The leader's id (empty if none answers within 10 s).
cluster_leader() { ctl --timeout_ms=10000 leader 2>/dev/null | awk '{print $1}'; }

# node_field ID FIELD: one field (chosen, applied, role, ...) of node ID from `status --json`.
node_field() {
  ctl --timeout_ms=2000 status --json 2>/dev/null |
    jq -r --argjson id "$1" --arg f "$2" '.nodes[] | select(.id == $id) | .[$f] // empty'
}

wait_for_leader() {
  local deadline=$((SECONDS + ${1:-60})) leader=""
  while ((SECONDS < deadline)); do
    leader="$(cluster_leader)"
    [[ -n "$leader" ]] && { echo "$leader"; return 0; }
    sleep 0.2
  done
  echo "no leader within ${1:-60} s" >&2
  return 1
}

# A follower's id: the first node that is not the leader.
cluster_follower() {
  local leader="$1" id
  for ((id = 1; id <= NODES; id++)); do
    [[ "$id" != "$leader" ]] && { echo "$id"; return 0; }
  done
}

# VmRSS of a pid in MiB (0 if it is gone).
rss_mb() {
  awk '/^VmRSS:/ {printf "%.1f", $2 / 1024; found = 1} END {if (!found) printf "0"}' \
    "/proc/$1/status" 2>/dev/null || echo 0
}

# RssAnon of a pid in MiB: the heap, without the LMDB file pages mapped in (0 if it is gone).
anon_mb() {
  awk '/^RssAnon:/ {printf "%.1f", $2 / 1024; found = 1} END {if (!found) printf "0"}' \
    "/proc/$1/status" 2>/dev/null || echo 0
}

# LMDB pages in use in a node's data directory, in MiB: the high-water mark minus the free list
# (mdb_stat from lmdb-utils; empty if it is missing). The file itself is the preallocated map.
lmdb_live_mb() {
  command -v mdb_stat >/dev/null || return 0
  mdb_stat -ef "$1" 2>/dev/null |
    awk '/Page size:/ {ps = $NF} /Number of pages used:/ {used = $NF} /Free pages:/ {free = $NF}
         END {if (ps) printf "%.1f", (used - free) * ps / 1048576}'
}

# Disk space a directory takes, in MiB (allocated blocks, as `du` counts them).
disk_mb() { du -sk "$1" 2>/dev/null | awk '{printf "%.1f", $1 / 1024}'; }

# The time of a glog line matching REGEX in a node log, as seconds since the epoch (the first
# match after line FROM_LINE, default 0). glog writes I20261203 07:30:12.345678 (local time) or,
# in older versions, I1203 07:30:12.345678.
log_time() {
  local log="$1" regex="$2" from="${3:-0}"
  tail -n +"$((from + 1))" "$log" | grep -m1 -E "$regex" |
    awk -v y="$(date +%Y)" '{s = substr($1, 2); if (length(s) == 4) s = y s;
                             printf "%s-%s-%s %s\n", substr(s, 1, 4), substr(s, 5, 2), substr(s, 7, 2), $2}' |
    { read -r stamp && date -d "$stamp" +%s.%N; } || true
}
