#include "store/snapshot_store.h"

#include <string>

namespace ballot::store {

Status VerifySnapshot(SnapshotStore* store, paxos::Slot applied_below) {
  Result<std::unique_ptr<SnapshotReader>> reader = store->Open(applied_below);
  if (!reader.ok()) return reader.status();
  std::string piece;
  // Bounded by the snapshot's size: every Read returns at least one byte until the end.
  while (true) {
    Status status = reader.value()->Read(kSnapshotChunkBytesMax, &piece);
    if (!status.ok()) return status;
    if (piece.empty()) return Status::Ok();
  }
}

}  // namespace ballot::store
