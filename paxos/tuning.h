// How one replica of the core behaves: timeouts, leases and bounds (paxos/options.h adds who the
// replica is). Times are in ticks: the runtime decides how long a tick is (the server uses 10 ms)
// and calls Replica::Tick() once per tick. Public: ServerOptions::paxos is one of these.
#ifndef BALLOT_PAXOS_TUNING_H_
#define BALLOT_PAXOS_TUNING_H_

#include <cstddef>
#include <cstdint>

namespace ballot::paxos {

struct Tuning {
  uint64_t seed = 0;  // seeds the election-timeout PRNG; make it differ per node

  // The leader sends a heartbeat every heartbeat_ticks. A follower that hears nothing from a
  // leader for a randomized timeout in [election_ticks, 2 * election_ticks) runs for election.
  uint32_t heartbeat_ticks = 1;
  uint32_t election_ticks = 10;
  // Acceptors that heard from the leader refuse to promise to anyone else for lease_ticks. The
  // leader counts its own lease from when it SENT the heartbeat (acceptors start theirs on
  // arrival, which is later), shortened by LeaseMarginTicks(), and serves reads locally while it
  // holds.
  uint32_t lease_ticks = 6;
  // The bound on how far any two nodes' tick rates may differ from the nominal one, in parts per
  // million (1000 = 0.1%: quartz oscillators are within ~100 ppm; the rest is headroom for VM
  // clocks). The leader's lease is shortened by LeaseMarginTicks() =
  //   1 + ceil(2 * max_clock_drift_ppm * 1e-6 * lease_ticks)
  // ticks: the 1 covers the acceptor counting its lease in whole ticks (its current tick began
  // up to a tick before the heartbeat arrived), the rest covers the leader's clock running slow
  // while the acceptor's runs fast, each by at most the bound. Leases are only as safe as this
  // bound: nodes whose clocks drift further may serve stale lease reads. Every node of a cluster
  // must use the same value (and the same lease_ticks and tick length).
  uint32_t max_clock_drift_ppm = 1000;
  // A leader whose storage has not completed a persist batch for more than this many ticks
  // (300 = 3 s at 10 ms ticks) steps down and stops heartbeating so that others can elect a
  // leader whose disk works; while its persist stays stuck it does not run for election
  // either. A follower's stuck disk holds nobody up: its votes are simply missing.
  uint32_t persist_stall_ticks_max = 300;
  // A leader that has not heard from a majority for this long steps down.
  uint32_t check_quorum_ticks = 10;
  // The leader promotes a learner to voter once its reported commit index is within this many
  // slots of the leader's (and past the leader's start slot): it has caught up.
  uint64_t promote_lag_slots_max = 64;
  bool auto_promote_learners = true;  // off: learners stay learners until promoted by hand
  // A leadership transfer that has not completed after this long is abandoned and the leader
  // takes commands again.
  uint32_t transfer_ticks_max = 50;
  // Accepts not acknowledged by a majority after this long are sent again.
  uint32_t accept_retry_ticks = 3;
  // A replica that is missing chosen values asks again after this long.
  uint32_t catchup_retry_ticks = 2;

  // The leader cuts new slots only while its own previous persist batch is not outstanding (or a
  // full batch is waiting): commands that arrive during a sync share the next slot. Off: a slot
  // per Drain whenever the window has room (more, smaller slots; kept for the simulator).
  bool pace_proposals_by_sync = true;

  // Bounds. Beyond a bound the answer is Overloaded, never unbounded memory.
  size_t batch_commands_max = 512;      // commands per slot
  size_t batch_bytes_max = 1 << 20;     // payload bytes per slot (< message_bytes_max)
  size_t window_slots_max = 64;         // slots proposed but not yet chosen
  size_t pending_commands_max = 16384;  // commands waiting for a slot
  size_t reads_pending_max = 4096;      // read-index requests waiting for confirmation
  size_t catchup_entries_max = 256;     // chosen entries per catch-up reply
  // An acceptor does not promise to a candidate whose phase-1 report would carry more than this
  // many entries (or message_bytes_max bytes): one reply must fit a frame, and a candidate that
  // far behind must catch up (from the log or a snapshot) before it can lead.
  size_t promise_entries_max = 4096;
  size_t accept_entries_max = 64;  // slots per Accept message
  // Payload bytes per Accept or catch-up message (a single larger slot still goes alone). Keeps
  // every message well inside the transport's frame limit (net/frame.h, 16 MiB).
  size_t message_bytes_max = 8 << 20;

  // How much shorter the leader's lease is than the acceptors' (see max_clock_drift_ppm).
  uint32_t LeaseMarginTicks() const;
};

}  // namespace ballot::paxos

#endif  // BALLOT_PAXOS_TUNING_H_
