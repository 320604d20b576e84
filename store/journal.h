// Journal: the checksummed, preallocated write-ahead file (DATA_DIR/journal) in front of LMDB.
//
// Why. A durable LMDB commit costs two device flushes (fdatasync of the data pages, then the
// O_DSYNC meta page). LmdbStore with LmdbOptions::journal appends each persist batch here as
// one record and syncs it with ONE fdatasync; LMDB is written behind it, every
// journal_checkpoint_bytes, in one durable transaction (a checkpoint), after which the journal
// is written again from its beginning. docs/durability.md has the ordering argument.
//
// Record (every integer little-endian):
//     crc32c u32 | payload_bytes u32 | seq u64 | payload | zero padding to a multiple of 8
// The CRC-32C covers payload_bytes, seq and the payload. `seq` numbers records across the life
// of the store (never reset), so after the journal restarts from offset 0 the records of an
// earlier round that are still in the file past the new tail are recognizably older: they are
// stale, never replayed.
//
// Preallocation. The file is created at its full size and every block is written with zeros
// and fsynced once, so an append is an overwrite of initialized blocks: its fdatasync has no
// metadata (size, extent) to flush, and a full disk can never fail an append.
//
// Threads. Not thread-safe; LmdbStore calls it under its mutex.
#ifndef BALLOT_STORE_JOURNAL_H_
#define BALLOT_STORE_JOURNAL_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "paxos/status.h"

namespace ballot::store {

inline constexpr char kJournalFileName[] = "journal";
inline constexpr size_t kJournalHeaderBytes = 16;
inline constexpr size_t kJournalAlignBytes = 8;
// A record's payload is bounded so that a damaged length can never make a scan read far.
inline constexpr size_t kJournalPayloadBytesMax = size_t{1} << 30;

// Bytes a record with `payload_bytes` of payload takes in the file, padding included.
size_t JournalRecordBytes(size_t payload_bytes);
// Appends the framed record to *out (padding included).
void AppendJournalRecord(uint64_t seq, std::string_view payload, std::string* out);

struct JournalRecord {
  uint64_t offset = 0;
  uint64_t seq = 0;
  std::string_view payload;  // views into the scanned bytes
};

// What recovery found in the journal, given the sequence number LMDB's last checkpoint holds.
struct JournalScan {
  std::vector<JournalRecord> records;  // newer than the checkpoint, in order: to replay
  uint64_t stale_records = 0;          // valid records at or below the checkpoint (skipped)
  uint64_t last_seq = 0;    // the newest seq known: the checkpoint's or the last record's
  uint64_t end_offset = 0;  // where the chain of consecutive records ends
  // The chain ended on bytes that are neither zeros (never written) nor a stale record: a record
  // cut by a crash, whose write was never acknowledged. It is discarded.
  bool torn_tail = false;
  // Bytes whose checksum the scan computed: its cost, which stays linear in the file's size.
  uint64_t checksummed_bytes = 0;
};

// Recovery rules, applied to the whole file:
//   1. From offset 0, read records while each is intact (checksum, bounds) and its seq is the
//      previous one's plus 1 (the first may have any seq).
//   2. Records with seq <= checkpoint_seq are already in LMDB (stale); the first newer one must
//      be checkpoint_seq + 1, else records are missing: kCorruption.
//   3. The chain ends at the first damaged record, or at an intact one that is not the next seq.
//      An intact record with a seq above the last one known that is not the next is a gap:
//      kCorruption. An older one is a stale tail: the normal end.
//   4. After a damaged record, every later 8-byte-aligned offset is searched for an intact
//      record newer than the last one known. A torn write is always the last write (each append
//      is synced before the next begins), so finding one means a synced record was damaged:
//      kCorruption ("corrupt, not torn"). Otherwise the damaged record is a torn tail.
// `bytes` is the whole file. Records view into it.
Result<JournalScan> ScanJournal(std::string_view bytes, uint64_t checkpoint_seq);

class Journal {
 public:
  // Opens DIR/journal, creating it (and syncing DIR) if missing. The file is extended to at
  // least `capacity_bytes` (rounded up to 4 KiB), zero-filled and fsynced; a larger existing file
  // keeps its size. kNoSpace if the disk cannot hold it, kIoError otherwise.
  static Result<std::unique_ptr<Journal>> Open(const std::string& dir, size_t capacity_bytes);
  // The whole file of DIR/journal; kNotFound if there is none.
  static Status ReadFile(const std::string& dir, std::string* out);

  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  // Writes record `seq` at the tail and fdatasyncs it. On success the tail moves past it.
  // Errors: kNoSpace (the record does not fit before the end of the file, or the write failed
  // with ENOSPC/EFBIG/EDQUOT: nothing was synced, a retry may rewrite the same place), kIoError
  // (a failed write or sync; the caller must treat the journal as failed for good: a failed
  // fdatasync is never retried).
  Status Append(uint64_t seq, std::string_view payload);
  // Reads [0, tail) (what was appended since the last Restart).
  Status ReadPending(std::string* out) const;
  // The next append goes to offset 0. Only after everything appended is durable elsewhere.
  void Restart() { tail_bytes_ = 0; }

  size_t tail_bytes() const { return tail_bytes_; }
  size_t capacity_bytes() const { return capacity_bytes_; }
  uint64_t syncs() const { return syncs_; }

 private:
  Journal(std::string path, int fd, size_t capacity_bytes)
      : path_(std::move(path)), fd_(fd), capacity_bytes_(capacity_bytes) {}

  const std::string path_;
  const int fd_;
  const size_t capacity_bytes_;
  size_t tail_bytes_ = 0;
  uint64_t syncs_ = 0;
  std::string record_;  // framing buffer, reused
};

}  // namespace ballot::store

#endif  // BALLOT_STORE_JOURNAL_H_
