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

// The one little-endian codec of the code base. The functions below read and write fixed-width
// integers at a raw position, for formats that are patched or scanned in place (record headers,
// the journal, frame headers); ByteWriter and ByteReader build on them for whole messages.
inline void StoreLe32(uint32_t v, void* at) {
  auto* p = static_cast<unsigned char*>(at);
  for (int i = 0; i < 4; ++i) p[i] = static_cast<unsigned char>(v >> (8 * i));
}
inline void StoreLe64(uint64_t v, void* at) {
  auto* p = static_cast<unsigned char*>(at);
  for (int i = 0; i < 8; ++i) p[i] = static_cast<unsigned char>(v >> (8 * i));
}
inline uint32_t LoadLe32(const void* at) {
  const auto* p = static_cast<const unsigned char*>(at);
  return uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
}
inline uint64_t LoadLe64(const void* at) {
  const auto* p = static_cast<const unsigned char*>(at);
  return uint64_t{LoadLe32(p)} | uint64_t{LoadLe32(p + 4)} << 32;
}
inline void AppendLe32(uint32_t v, std::string* out) {
  char b[4];
  StoreLe32(v, b);
  out->append(b, sizeof(b));
}
inline void AppendLe64(uint64_t v, std::string* out) {
  char b[8];
  StoreLe64(v, b);
  out->append(b, sizeof(b));
}

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
  std::string_view data_;
  size_t offset_ = 0;
};

}  // namespace ballot

#endif  // BALLOT_STATEMACHINE_BYTE_CODEC_H_
