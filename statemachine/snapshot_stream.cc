#include "statemachine/snapshot_stream.h"

#include <algorithm>

namespace ballot {

Status SnapshotReader::ReadExact(size_t bytes, std::string* out) {
  out->clear();
  // Grown piece by piece rather than reserved up front: `bytes` often comes from a length field
  // in the stream, and a damaged one must fail as "truncated" without a huge allocation first.
  std::string piece;
  while (out->size() < bytes) {
    const size_t want = std::min(bytes - out->size(), kSnapshotChunkBytesMax);
    Status status = Read(want, &piece);
    if (!status.ok()) return status;
    if (piece.empty()) {
      return Status(StatusCode::kCorruption, "snapshot truncated: expected " +
                                                 std::to_string(bytes) + " bytes, got " +
                                                 std::to_string(out->size()));
    }
    CHECK_LE(piece.size(), want) << "SnapshotReader::Read returned more than asked for";
    out->append(piece);
  }
  return Status::Ok();
}

Status SnapshotReader::ExpectEnd() {
  std::string piece;
  Status status = Read(1, &piece);
  if (!status.ok()) return status;
  if (!piece.empty()) return Status(StatusCode::kCorruption, "snapshot has trailing bytes");
  return Status::Ok();
}

Status StringSnapshotWriter::Write(std::string_view bytes) {
  data_.append(bytes);
  return Status::Ok();
}

Status StringSnapshotReader::Read(size_t bytes_max, std::string* out) {
  const size_t n = std::min(bytes_max, data_.size());
  out->assign(data_.substr(0, n));
  data_.remove_prefix(n);
  return Status::Ok();
}

}  // namespace ballot
