#include "statemachine/byte_codec.h"

#include <limits>
#include <utility>

#include <glog/logging.h>

namespace ballot {

namespace {

void PutFixed(std::string* data, uint64_t v, size_t size_bytes) {
  for (size_t i = 0; i < size_bytes; i++) {
    data->push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
  }
}

}  // namespace

void ByteWriter::PutU8(uint8_t v) { PutFixed(&data_, v, 1); }
void ByteWriter::PutU32(uint32_t v) { PutFixed(&data_, v, 4); }
void ByteWriter::PutU64(uint64_t v) { PutFixed(&data_, v, 8); }

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

bool ByteReader::GetFixed(size_t size_bytes, uint64_t* out) {
  DCHECK_LE(size_bytes, 8u);
  if (remaining() < size_bytes) return false;
  uint64_t v = 0;
  for (size_t i = 0; i < size_bytes; i++) {
    v |= uint64_t{static_cast<unsigned char>(data_[offset_ + i])} << (8 * i);
  }
  offset_ += size_bytes;
  *out = v;
  return true;
}

bool ByteReader::GetU8(uint8_t* out) {
  uint64_t v = 0;
  if (!GetFixed(1, &v)) return false;
  *out = static_cast<uint8_t>(v);
  return true;
}

bool ByteReader::GetU32(uint32_t* out) {
  uint64_t v = 0;
  if (!GetFixed(4, &v)) return false;
  *out = static_cast<uint32_t>(v);
  return true;
}

bool ByteReader::GetU64(uint64_t* out) { return GetFixed(8, out); }

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
