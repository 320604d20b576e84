// Snapshots, compaction, snapshot transfer and the apply queue's bound: how the Ready driver
// (net/server/driver.h) behaves. Public: ServerOptions::driver is one of these.
#ifndef BALLOT_NET_SERVER_DRIVER_TUNING_H_
#define BALLOT_NET_SERVER_DRIVER_TUNING_H_

#include <cstddef>
#include <cstdint>

#include "paxos/status.h"

namespace ballot {

struct DriverTuning {
  // Proposals are refused (Overloaded) while this many chosen commands wait for the applier.
  size_t apply_queue_commands_max = 65536;
  // A snapshot is taken once this many slots, or this many bytes of commands, were applied
  // since the last one (0 turns that trigger off). The byte trigger waits at least for as many
  // bytes of log as the last snapshot had, so that a large state is not rewritten for a little
  // log (snapshot writes stay at most about one byte per byte of log), while a small state
  // bounds the log, and so restart time and memory, at 64 MiB (docs/performance.md: with
  // 256 MiB a 30-minute soak held 1.6 GB RSS per node and restarts took 4.7-7.4 s, with 64 MiB
  // 400 MB and 0.6-1.3 s).
  uint64_t snapshot_every_slots = 100000;
  uint64_t snapshot_every_log_bytes = uint64_t{64} << 20;
  // Chosen slots kept in memory below the newest snapshot, so that a briefly lagging replica
  // catches up from the log instead of needing a snapshot.
  uint64_t log_retain_slots = 20000;
  // Snapshot transfer: bytes per chunk, at most this many bytes received per tick (the
  // throttle that keeps heartbeats and client traffic flowing), and how long without progress
  // before the receiver asks again from its offset.
  size_t transfer_chunk_bytes = size_t{1} << 20;
  uint64_t transfer_bytes_per_tick_max = uint64_t{8} << 20;
  uint64_t transfer_retry_ticks = 100;
  Status Validate() const;
};

}  // namespace ballot

#endif  // BALLOT_NET_SERVER_DRIVER_TUNING_H_
