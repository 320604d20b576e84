// ByteWriter / ByteReader: a tiny explicit little-endian binary encoding.
//
// Snapshots and command payloads must encode identically on every replica and every compiler,
// so nothing here depends on struct layout or host byte order. State machines may use these for
// their own payloads and snapshots (the samples do).
//
// Encoding: integers are fixed-width little-endian; a byte string is a u32 length followed by
// the bytes. A ByteReader never reads past its input and never allocates: a length that runs
// past the end is a decode failure, so garbage input cannot cause a large allocation.
#ifndef BALLOT_STATEMACHINE_BYTE_CODEC_H_
#define BALLOT_STATEMACHINE_BYTE_CODEC_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace ballot {

class ByteWriter {
 public:
  ByteWriter() = default;

  void PutU8(uint8_t v);
  void PutU32(uint32_t v);
  void PutU64(uint64_t v);
  // A u32 length prefix, then the bytes. CHECKs that the length fits in a u32.
  void PutBytes(std::string_view bytes);

  const std::string& data() const { return data_; }
  // Moves the encoded bytes out; the writer is empty afterwards.
  std::string Release();

 private:
  std::string data_;
};

// Reads what a ByteWriter wrote. Every Get returns false (and leaves *out unchanged) if the input
// is too short; after a failure the reader should be discarded. Does not own the input: it must
// outlive the reader and every string_view handed out by GetBytes.
class ByteReader {
 public:
  explicit ByteReader(std::string_view data) : data_(data) {}

  [[nodiscard]] bool GetU8(uint8_t* out);
  [[nodiscard]] bool GetU32(uint32_t* out);
  [[nodiscard]] bool GetU64(uint64_t* out);
  // Views into the input; nothing is copied.
  [[nodiscard]] bool GetBytes(std::string_view* out);

  size_t remaining() const { return data_.size() - offset_; }
  bool empty() const { return remaining() == 0; }

 private:
  [[nodiscard]] bool GetFixed(size_t size_bytes, uint64_t* out);

  std::string_view data_;
  size_t offset_ = 0;
};

}  // namespace ballot

#endif  // BALLOT_STATEMACHINE_BYTE_CODEC_H_
