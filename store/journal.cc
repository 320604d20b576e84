#include "store/journal.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "statemachine/byte_codec.h"
#include "store/checksum.h"
#include "store/sync_dir.h"

namespace ballot::store {
namespace {

constexpr size_t kFileBlockBytes = 4096;
// Where the header's fields are (store/journal.h): the crc covers everything after itself.
constexpr size_t kCrcOffset = 0;
constexpr size_t kLengthOffset = 4;
constexpr size_t kSeqOffset = 8;
constexpr size_t kCrcCoveredHeaderBytes = kJournalHeaderBytes - kLengthOffset;
constexpr size_t kZeroChunkBytes = 64 * 1024;

Status Corrupt(std::string message) {
  return Status(StatusCode::kCorruption, "journal: " + std::move(message));
}

bool IsNoSpace(int err) { return err == ENOSPC || err == EFBIG || err == EDQUOT; }

Status Errno(int err, const std::string& what) {
  return Status(IsNoSpace(err) ? StatusCode::kNoSpace : StatusCode::kIoError,
                what + ": " + strerror(err));
}

// The intact record at `offset` whose seq is at least `seq_min`, if there is one. The seq is
// checked before the checksum so that searching a file for newer records stays cheap. Adds the
// bytes it checksummed to *checksummed.
bool RecordAt(std::string_view bytes, size_t offset, uint64_t seq_min, JournalRecord* record,
              uint64_t* checksummed) {
  if (offset > bytes.size() || bytes.size() - offset < kJournalHeaderBytes) return false;
  const char* p = bytes.data() + offset;
  const uint32_t payload_bytes = LoadLe32(p + kLengthOffset);
  const uint64_t seq = LoadLe64(p + kSeqOffset);
  if (seq == 0 || seq < seq_min) return false;
  if (payload_bytes == 0 || payload_bytes > kJournalPayloadBytesMax) return false;
  if (JournalRecordBytes(payload_bytes) > bytes.size() - offset) return false;
  *checksummed += kCrcCoveredHeaderBytes + payload_bytes;
  if (Crc32c(p + kLengthOffset, kCrcCoveredHeaderBytes + payload_bytes) !=
      LoadLe32(p + kCrcOffset)) {
    return false;
  }
  *record = JournalRecord{offset, seq, std::string_view(p + kJournalHeaderBytes, payload_bytes)};
  return true;
}

// Never-written space: the file is zero-filled when it is created.
bool ZeroHeaderAt(std::string_view bytes, size_t offset) {
  const size_t n = std::min(kJournalHeaderBytes, bytes.size() - std::min(offset, bytes.size()));
  for (size_t i = 0; i < n; ++i) {
    if (bytes[offset + i] != 0) return false;
  }
  return true;
}

Status PwriteAll(int fd, const char* data, size_t size, size_t offset, const std::string& what) {
  while (size > 0) {
    const ssize_t n = pwrite(fd, data, size, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Errno(errno, what);
    if (n == 0) return Status(StatusCode::kIoError, what + ": write returned 0");
    data += n;
    size -= static_cast<size_t>(n);
    offset += static_cast<size_t>(n);
  }
  return Status::Ok();
}

Status PreadAll(int fd, char* data, size_t size, size_t offset, const std::string& what) {
  while (size > 0) {
    const ssize_t n = pread(fd, data, size, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Errno(errno, what);
    if (n == 0) return Status(StatusCode::kIoError, what + ": unexpected end of file");
    data += n;
    size -= static_cast<size_t>(n);
    offset += static_cast<size_t>(n);
  }
  return Status::Ok();
}

// Extends the file to `target` bytes of written zeros and fsyncs it (see the header: appends
// must be overwrites of initialized blocks).
Status ZeroFill(int fd, size_t from, size_t target, const std::string& path) {
  int rc;
  do {
    rc = fallocate(fd, 0, static_cast<off_t>(from), static_cast<off_t>(target - from));
  } while (rc != 0 && errno == EINTR);
  if (rc != 0 && errno != EOPNOTSUPP && errno != ENOSYS) {
    return Errno(errno, "cannot preallocate " + path + " to " + std::to_string(target) + " bytes");
  }
  const std::string zeros(kZeroChunkBytes, '\0');
  for (size_t at = from; at < target; at += kZeroChunkBytes) {
    const size_t n = std::min(kZeroChunkBytes, target - at);
    if (Status s = PwriteAll(fd, zeros.data(), n, at, "cannot preallocate " + path); !s.ok()) {
      return s;
    }
  }
  if (fsync(fd) != 0) return Errno(errno, "fsync " + path);
  return Status::Ok();
}

}  // namespace

size_t JournalRecordBytes(size_t payload_bytes) {
  const size_t raw = kJournalHeaderBytes + payload_bytes;
  return (raw + kJournalAlignBytes - 1) / kJournalAlignBytes * kJournalAlignBytes;
}

void AppendJournalRecord(uint64_t seq, std::string_view payload, std::string* out) {
  CHECK_GT(seq, 0u);
  CHECK(!payload.empty());
  CHECK_LE(payload.size(), kJournalPayloadBytesMax);
  const size_t start = out->size();
  out->resize(start + JournalRecordBytes(payload.size()), '\0');
  char* p = out->data() + start;
  StoreLe32(static_cast<uint32_t>(payload.size()), p + kLengthOffset);
  StoreLe64(seq, p + kSeqOffset);
  memcpy(p + kJournalHeaderBytes, payload.data(), payload.size());
  StoreLe32(Crc32c(p + kLengthOffset, kCrcCoveredHeaderBytes + payload.size()), p + kCrcOffset);
}

Result<JournalScan> ScanJournal(std::string_view bytes, uint64_t checkpoint_seq) {
  JournalScan scan;
  scan.last_seq = checkpoint_seq;
  size_t pos = 0;
  uint64_t prev_seq = 0;
  JournalRecord record;
  while (RecordAt(bytes, pos, 1, &record, &scan.checksummed_bytes)) {
    if (prev_seq != 0 && record.seq != prev_seq + 1) {
      if (record.seq > scan.last_seq) {
        return Corrupt("record at offset " + std::to_string(pos) + " has seq " +
                       std::to_string(record.seq) + " but follows seq " + std::to_string(prev_seq) +
                       ": records are missing");
      }
      break;  // a record of an earlier round, left past the new tail: stale
    }
    if (record.seq <= checkpoint_seq) {
      ++scan.stale_records;
    } else {
      if (record.seq != scan.last_seq + 1) {
        return Corrupt("record at offset " + std::to_string(pos) + " has seq " +
                       std::to_string(record.seq) + " but LMDB's checkpoint is at seq " +
                       std::to_string(scan.last_seq) + ": records are missing");
      }
      scan.records.push_back(record);
      scan.last_seq = record.seq;
    }
    prev_seq = record.seq;
    pos += JournalRecordBytes(record.payload.size());
  }
  scan.end_offset = pos;
  // Why the chain ended: zeros (never written), a stale record, or a damaged one (torn).
  JournalRecord stale;
  scan.torn_tail = pos < bytes.size() && !ZeroHeaderAt(bytes, pos) &&
                   !RecordAt(bytes, pos, 1, &stale, &scan.checksummed_bytes);
  // A record newer than last_seq belongs to the round that wrote from offset 0 with consecutive
  // seqs, so its seq is at most last_seq + (records that fit in the file): the CRC is checked
  // only for headers in that range, not for every payload word that looks like a large seq.
  const uint64_t seq_max = scan.last_seq + 1 + bytes.size() / kJournalAlignBytes;
  for (size_t at = pos + kJournalAlignBytes; at + kJournalHeaderBytes <= bytes.size();
       at += kJournalAlignBytes) {
    if (LoadLe64(bytes.data() + at + kSeqOffset) > seq_max) continue;
    if (RecordAt(bytes, at, scan.last_seq + 1, &record, &scan.checksummed_bytes)) {
      return Corrupt("the valid records end at offset " + std::to_string(pos) + " (seq " +
                     std::to_string(scan.last_seq) + ") but an intact newer record (seq " +
                     std::to_string(record.seq) + ") follows at offset " + std::to_string(at) +
                     ": a synced record was damaged (corrupt, not torn); refusing to recover");
    }
  }
  return scan;
}

Result<std::unique_ptr<Journal>> Journal::Open(const std::string& dir, size_t capacity_bytes) {
  const std::string path = dir + "/" + kJournalFileName;
  struct stat st;
  const bool created = stat(path.c_str(), &st) != 0 && errno == ENOENT;
  const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return Errno(errno, "cannot open " + path);
  std::unique_ptr<Journal> journal;
  if (fstat(fd, &st) != 0) {
    const int err = errno;
    close(fd);
    return Errno(err, "fstat " + path);
  }
  const size_t have = static_cast<size_t>(st.st_size);
  const size_t want =
      std::max(have, (capacity_bytes + kFileBlockBytes - 1) / kFileBlockBytes * kFileBlockBytes);
  journal.reset(new Journal(path, fd, want));
  if (have < want) {
    if (Status s = ZeroFill(fd, have, want, path); !s.ok()) return s;
  }
  if (created) {
    if (Status s = SyncDirectory(dir); !s.ok()) return s;
  }
  return journal;
}

Status Journal::ReadFile(const std::string& dir, std::string* out) {
  const std::string path = dir + "/" + kJournalFileName;
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT) return Status(StatusCode::kNotFound, "no journal in " + dir);
    return Errno(err, "cannot open " + path);
  }
  struct stat st;
  Status s;
  if (fstat(fd, &st) != 0) {
    s = Errno(errno, "fstat " + path);
  } else {
    out->assign(static_cast<size_t>(st.st_size), '\0');
    s = PreadAll(fd, out->data(), out->size(), 0, "reading " + path);
  }
  close(fd);
  return s;
}

Journal::~Journal() { close(fd_); }

Status Journal::Append(uint64_t seq, std::string_view payload) {
  record_.clear();
  AppendJournalRecord(seq, payload, &record_);
  if (record_.size() > capacity_bytes_ - tail_bytes_) {
    return Status(StatusCode::kNoSpace, path_ + " is full (" + std::to_string(tail_bytes_) +
                                            " of " + std::to_string(capacity_bytes_) +
                                            " bytes used, record of " +
                                            std::to_string(record_.size()) + ")");
  }
  if (Status s = PwriteAll(fd_, record_.data(), record_.size(), tail_bytes_, "writing " + path_);
      !s.ok()) {
    return s;
  }
  if (fdatasync(fd_) != 0) {
    // Never Errno(): a failed sync is an I/O error whatever errno says, and is never retried.
    return Status(StatusCode::kIoError, "fdatasync " + path_ + ": " + strerror(errno));
  }
  ++syncs_;
  tail_bytes_ += record_.size();
  return Status::Ok();
}

Status Journal::ReadPending(std::string* out) const {
  out->assign(tail_bytes_, '\0');
  return PreadAll(fd_, out->data(), tail_bytes_, 0, "reading " + path_);
}

}  // namespace ballot::store
