// Snapshots as streams: a state of gigabytes is never copied whole in memory.
//
// A StateMachine writes its state through a SnapshotWriter and reads it back through a
// SnapshotReader, in chunks of at most kSnapshotChunkBytesMax. Where the bytes go (a file in the
// data directory, a peer on the network, memory in the simulator) is the runtime's business.
//
// Taking a snapshot has two steps so that Apply need not stop while it is written:
//   1. StateMachine::TakeSnapshotView(), on the apply thread between two Apply() calls, captures
//      a point-in-time view. It must be quick (O(1), or bounded by what Apply touches anyway).
//   2. SnapshotView::WriteTo(), later, on a background thread, serialises exactly the state as it
//      was at step 1, while Apply() and Query() keep running on the apply thread. The view must
//      make that safe (its own locking, copy-on-write, versioned entries: see samples/kv.h).
#ifndef BALLOT_STATEMACHINE_SNAPSHOT_STREAM_H_
#define BALLOT_STATEMACHINE_SNAPSHOT_STREAM_H_

#include <cstddef>
#include <string>
#include <string_view>

#include "paxos/status.h"

namespace ballot {

// The largest piece a writer should hand over at once, and a reader asks for at once. Bounds
// the memory of every stage of a snapshot's path.
inline constexpr size_t kSnapshotChunkBytesMax = size_t{1} << 20;

class SnapshotWriter {
 public:
  virtual ~SnapshotWriter() = default;
  // Appends bytes (any size; callers keep pieces <= kSnapshotChunkBytesMax). A non-ok status
  // (kIoError, kNoSpace) means the snapshot is abandoned: stop writing and return it.
  virtual Status Write(std::string_view bytes) = 0;
};

class SnapshotReader {
 public:
  virtual ~SnapshotReader() = default;
  // Reads up to `bytes_max` bytes into *out (replacing its contents). An empty *out with Ok
  // means the end of the snapshot. kCorruption if the underlying bytes fail their checksum.
  virtual Status Read(size_t bytes_max, std::string* out) = 0;

  // Reads exactly `bytes` bytes (kCorruption "truncated" if the snapshot ends first).
  Status ReadExact(size_t bytes, std::string* out);
  // Ok iff the snapshot has no bytes left (kCorruption "trailing bytes" otherwise).
  Status ExpectEnd();
};

// A point-in-time view of a state machine's state (see the top of this file).
class SnapshotView {
 public:
  virtual ~SnapshotView() = default;
  // Writes the state as of TakeSnapshotView(). Called once, on a background thread, possibly
  // concurrently with the state machine's Apply() and Query(). Returns the writer's error.
  virtual Status WriteTo(SnapshotWriter* out) = 0;
};

// A writer into a std::string, and a reader over one: for small states, tests and the simulator.
class StringSnapshotWriter final : public SnapshotWriter {
 public:
  Status Write(std::string_view bytes) override;
  std::string& data() { return data_; }

 private:
  std::string data_;
};

class StringSnapshotReader final : public SnapshotReader {
 public:
  explicit StringSnapshotReader(std::string_view data) : data_(data) {}
  Status Read(size_t bytes_max, std::string* out) override;

 private:
  std::string_view data_;
};

}  // namespace ballot

#endif  // BALLOT_STATEMACHINE_SNAPSHOT_STREAM_H_
