// The stored form of a snapshot, shared by FileSnapshotStore and MemSnapshotStore so that their
// raw bytes (what ReadRaw hands out and CreateRaw takes in) are identical.
//
//   header  magic u32 | version u32 | applied_below u64 | crc32c of the previous 16 bytes u32
//   frame*  length u32 | crc32c(length bytes + payload) u32 | payload (1..kSnapshotChunkBytesMax)
//   end     0 u32      | crc32c(0 u32 + the 12 bytes below) u32 |
//           logical bytes u64 | crc32c of every payload byte, in order u32
//   then nothing: trailing bytes are corruption.
//
// Integers are little-endian (statemachine/byte_codec.h). Per-frame checksums find a damaged
// chunk where it is, before its bytes are handed out; the end record catches frames that are
// missing, repeated or reordered, and a stream cut at a frame boundary.
#ifndef BALLOT_STORE_SNAPSHOT_FORMAT_H_
#define BALLOT_STORE_SNAPSHOT_FORMAT_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "paxos/status.h"
#include "paxos/types.h"
#include "statemachine/snapshot_stream.h"

namespace ballot::store {

inline constexpr uint32_t kSnapshotFileMagic = 0x504E5342;  // "BSNP" little-endian
inline constexpr uint32_t kSnapshotFileVersion = 1;
inline constexpr size_t kSnapshotFileHeaderBytes = 4 + 4 + 8 + 4;
inline constexpr size_t kSnapshotFrameHeaderBytes = 4 + 4;
inline constexpr size_t kSnapshotEndBodyBytes = 8 + 4;

// Where an encoder puts raw bytes (a file, a string).
class RawSnapshotOutput {
 public:
  virtual ~RawSnapshotOutput() = default;
  virtual Status Append(std::string_view raw) = 0;
};

// Where a decoder gets raw bytes: exactly `bytes` into *out, or fewer only at the end.
class RawSnapshotInput {
 public:
  virtual ~RawSnapshotInput() = default;
  virtual Status ReadRaw(size_t bytes, std::string* out) = 0;
};

// Frames logical bytes. Buffers up to one chunk, so callers may write pieces of any size without
// producing tiny frames. Any error from the output is returned, and sticks.
class SnapshotEncoder {
 public:
  SnapshotEncoder(paxos::Slot applied_below, RawSnapshotOutput* out);
  SnapshotEncoder(const SnapshotEncoder&) = delete;
  SnapshotEncoder& operator=(const SnapshotEncoder&) = delete;

  Status Write(std::string_view logical);
  // Writes the last frame and the end record. Nothing may be written after it.
  Status Finish();

  uint64_t logical_bytes() const { return logical_bytes_; }

 private:
  Status Start();
  Status EmitFrame(std::string_view payload);

  const paxos::Slot applied_below_;
  RawSnapshotOutput* const out_;
  bool started_ = false;
  bool finished_ = false;
  Status error_;
  std::string pending_;  // at most kSnapshotChunkBytesMax bytes not yet framed
  uint64_t logical_bytes_ = 0;
  uint32_t whole_crc_ = 0;
};

// Reads and verifies a framed snapshot: the logical bytes come out only after their frame's
// checksum holds, and the last bytes only after the end record (length and whole checksum) and
// the absence of trailing bytes were checked, so "Ok, end" is never said of a damaged stream.
// `name` (a path, or "memory snapshot N") goes into every error message.
class SnapshotDecoder final : public SnapshotReader {
 public:
  SnapshotDecoder(std::string name, RawSnapshotInput* in);
  SnapshotDecoder(const SnapshotDecoder&) = delete;
  SnapshotDecoder& operator=(const SnapshotDecoder&) = delete;

  // Reads and checks the header; must be called (and succeed) before Read. kCorruption if it is
  // damaged, or if `expected_applied_below` (when not 0) differs from the recorded one.
  Status Start(paxos::Slot expected_applied_below);
  paxos::Slot applied_below() const { return applied_below_; }

  Status Read(size_t bytes_max, std::string* out) override;

  // Reads the whole remaining stream, discarding it: Ok iff every checksum holds.
  Status VerifyRest();
  uint64_t logical_bytes() const { return logical_bytes_; }
  uint32_t whole_crc() const { return whole_crc_; }

 private:
  Status Corrupt(const std::string& what) const;
  Status ReadFrameHeader(uint32_t* length, uint32_t* crc);
  Status ReadEnd(uint32_t crc);
  Status Fill();

  const std::string name_;
  RawSnapshotInput* const in_;
  paxos::Slot applied_below_ = 0;
  bool started_ = false;
  Status error_;  // sticky: after a failure every Read returns it
  uint64_t raw_offset_ = 0;
  std::string chunk_;  // the current verified payload
  size_t chunk_pos_ = 0;
  bool end_verified_ = false;
  // A frame header read ahead (to learn whether the current chunk is the last one).
  bool has_next_ = false;
  uint32_t next_length_ = 0;
  uint32_t next_crc_ = 0;
  uint64_t logical_bytes_ = 0;
  uint32_t whole_crc_ = 0;
};

}  // namespace ballot::store

#endif  // BALLOT_STORE_SNAPSHOT_FORMAT_H_
