// SnapshotStore: where a node keeps its state-machine snapshots, as checksummed byte streams.
//
// The bytes are opaque here (the Applier's format, statemachine/applier.h); this layer makes
// them durable, verifiable and transferable:
//   - Create(applied_below) returns a sink; nothing is visible until Commit(), which makes the
//     snapshot durable and visible atomically (file store: write DIR/snapshots/tmp-*, fsync,
//     rename to snap-<applied_below>, fsync the directory). A crash or an abandoned sink leaves
//     no trace but a temporary file that the next Open() deletes.
//   - Every snapshot carries per-chunk checksums and a checksum of the whole; Open() returns a
//     reader that verifies them as it goes and reports kCorruption at the first damaged byte,
//     and at the end if the whole does not match. A reader never hands out unverified bytes
//     followed by "Ok, end": the last Read() before the end checks the whole.
//   - For snapshot transfer, the stored form (the "raw" bytes, framing and checksums included)
//     can be read by offset and written by a receiver as is: CreateRaw() + Write() in order +
//     Commit(), which verifies the whole stream before making it visible.
//
// Implementations: FileSnapshotStore (production, store/file_snapshot_store.h) and
// MemSnapshotStore (tests and the simulator, whose "disk" must survive a simulated crash).
//
// Threads: implementations are thread-safe; a sink or a reader is used by one thread at a time.
#ifndef BALLOT_STORE_SNAPSHOT_STORE_H_
#define BALLOT_STORE_SNAPSHOT_STORE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "paxos/status.h"
#include "paxos/types.h"
#include "statemachine/snapshot_stream.h"

namespace ballot::store {

struct SnapshotInfo {
  paxos::Slot applied_below = 0;  // the snapshot covers every slot below
  uint64_t raw_bytes = 0;         // size of the stored form (what a transfer sends)
};

// Writes one snapshot. Destroying it without Commit() abandons it.
class SnapshotSink : public SnapshotWriter {
 public:
  // Makes the snapshot durable and visible. For a raw sink, first verifies the whole stream
  // (kCorruption if it is damaged or incomplete: nothing becomes visible). kIoError / kNoSpace.
  virtual Status Commit() = 0;
};

class SnapshotStore {
 public:
  virtual ~SnapshotStore() = default;

  // A sink for the logical bytes of a new snapshot covering every slot below `applied_below`.
  // Committing a snapshot whose applied_below already exists replaces it.
  virtual Result<std::unique_ptr<SnapshotSink>> Create(paxos::Slot applied_below) = 0;
  // A sink for raw bytes received from a peer's ReadRaw(), in order from offset 0.
  virtual Result<std::unique_ptr<SnapshotSink>> CreateRaw(paxos::Slot applied_below) = 0;

  // Committed snapshots, newest (highest applied_below) first. Contents are not verified here.
  virtual Result<std::vector<SnapshotInfo>> List() = 0;
  // A verifying reader of one snapshot's logical bytes. kNotFound if there is no such snapshot.
  virtual Result<std::unique_ptr<SnapshotReader>> Open(paxos::Slot applied_below) = 0;
  // Up to `bytes_max` raw bytes from `offset` (empty at the end). kNotFound if it is gone.
  virtual Status ReadRaw(paxos::Slot applied_below, uint64_t offset, size_t bytes_max,
                         std::string* out) = 0;
  // Deletes every committed snapshot with applied_below < `applied_below`.
  virtual Status DeleteBelow(paxos::Slot applied_below) = 0;
};

// Reads a whole snapshot through its verifying reader: Ok iff every checksum holds.
Status VerifySnapshot(SnapshotStore* store, paxos::Slot applied_below);

}  // namespace ballot::store

#endif  // BALLOT_STORE_SNAPSHOT_STORE_H_
