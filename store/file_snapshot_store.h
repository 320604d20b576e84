// FileSnapshotStore: snapshots as files in DIR/snapshots, one per applied_below:
//
//   DIR/snapshots/snap-<applied_below, 20 digits>.snap   committed (store/snapshot_format.h)
//   DIR/snapshots/tmp-<applied_below>-<n>.snap            being written; deleted by OpenDir()
//
// A sink writes its tmp file; Commit() fsyncs it, renames it over the final name and fsyncs the
// directory, so after a crash a snapshot is either wholly there or absent (rename is atomic),
// and a committed one survives power loss. Every I/O error is a Status naming the file:
// ENOSPC / EDQUOT / EFBIG are kNoSpace, anything else kIoError. A failed fsync is kIoError and
// the sink is dead (the kernel may have dropped the dirty pages: retrying could "succeed" over
// lost data). A dead or abandoned sink deletes its tmp file.
//
// Thread-safe: every method may be called from any thread. Readers keep their file open, so a
// snapshot deleted (or replaced) meanwhile is still read whole, from the old inode.
#ifndef BALLOT_STORE_FILE_SNAPSHOT_STORE_H_
#define BALLOT_STORE_FILE_SNAPSHOT_STORE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "store/snapshot_store.h"

namespace ballot::store {

class FileSnapshotStore final : public SnapshotStore {
 public:
  // Opens DIR/snapshots, creating it (and syncing DIR) if missing, and deletes tmp files that
  // a crash left. kIoError naming the path on failure.
  static Result<std::unique_ptr<FileSnapshotStore>> OpenDir(const std::string& dir);

  // DIR/snapshots and the name of the file holding one snapshot.
  static std::string SnapshotsDir(const std::string& dir);
  static std::string FileName(paxos::Slot applied_below);
  // The applied_below a committed snapshot's file name stands for; 0 if it is not one.
  static paxos::Slot ParseFileName(const std::string& name);

  FileSnapshotStore(const FileSnapshotStore&) = delete;
  FileSnapshotStore& operator=(const FileSnapshotStore&) = delete;

  Result<std::unique_ptr<SnapshotSink>> Create(paxos::Slot applied_below) override;
  Result<std::unique_ptr<SnapshotSink>> CreateRaw(paxos::Slot applied_below) override;
  Result<std::vector<SnapshotInfo>> List() override;
  Result<std::unique_ptr<SnapshotReader>> Open(paxos::Slot applied_below) override;
  Status ReadRaw(paxos::Slot applied_below, uint64_t offset, size_t bytes_max,
                 std::string* out) override;
  Status DeleteBelow(paxos::Slot applied_below) override;

  const std::string& snapshots_dir() const { return snapshots_dir_; }
  std::string PathOf(paxos::Slot applied_below) const;

 private:
  explicit FileSnapshotStore(std::string snapshots_dir);

  const std::string snapshots_dir_;
  // Makes tmp names unique within this process; rename and unlink are atomic, so nothing else
  // needs a lock.
  std::atomic<uint64_t> next_tmp_id_{1};
};

// Verifies a snapshot file by path without a store (offline inspection): Ok iff every checksum
// holds. *applied_below, *logical_bytes and *raw_bytes are filled as far as they could be read.
Status VerifySnapshotFile(const std::string& path, paxos::Slot* applied_below,
                          uint64_t* logical_bytes, uint64_t* raw_bytes);

}  // namespace ballot::store

#endif  // BALLOT_STORE_FILE_SNAPSHOT_STORE_H_
