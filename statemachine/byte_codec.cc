#include "statemachine/byte_codec.h"

#include <glog/logging.h>

#include <limits>
#include <utility>

namespace ballot {

void ByteWriter::PutU8(uint8_t v) { data_.push_back(static_cast<char>(v)); }
void ByteWriter::PutU32(uint32_t v) { AppendLe32(v, &data_); }
void ByteWriter::PutU64(uint64_t v) { AppendLe64(v, &data_); }

void ByteWriter::PutBytes(std::string_view bytes) {
  CHECK_LE(bytes.size(), std::numeric_limits<uint32_t>::max()) << "byte string too long to encode";
  PutU32(static_cast<uint32_t>(bytes.size()));
  data_.append(bytes);
}

std::string ByteWriter::Release() {
  std::string out = std::move(data_);
  data_.clear();
  return out;
}

bool ByteReader::GetU8(uint8_t* out) {
  if (remaining() < 1) return false;
  *out = static_cast<uint8_t>(data_[offset_]);
  offset_ += 1;
  return true;
}

bool ByteReader::GetU32(uint32_t* out) {
  if (remaining() < 4) return false;
  *out = LoadLe32(data_.data() + offset_);
  offset_ += 4;
  return true;
}

bool ByteReader::GetU64(uint64_t* out) {
  if (remaining() < 8) return false;
  *out = LoadLe64(data_.data() + offset_);
  offset_ += 8;
  return true;
}

bool ByteReader::GetBytes(std::string_view* out) {
  const size_t offset_before = offset_;
  uint32_t size_bytes = 0;
  if (!GetU32(&size_bytes)) return false;
  if (remaining() < size_bytes) {
    offset_ = offset_before;  // leave the reader where it was, as documented
    return false;
  }
  *out = data_.substr(offset_, size_bytes);
  offset_ += size_bytes;
  return true;
}

}  // namespace ballot
