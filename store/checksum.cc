#include "store/checksum.h"

#include <array>
#include <cstring>

#include "statemachine/byte_codec.h"

namespace ballot::store {
namespace {

constexpr uint32_t kPolyReflected = 0x82F63B78;  // Castagnoli, bit-reversed
constexpr size_t kSlices = 8;

using Tables = std::array<std::array<uint32_t, 256>, kSlices>;

// Slicing-by-8: table[k][b] is the CRC of byte b followed by k zero bytes, so eight input bytes
// are folded per step with eight lookups instead of eight dependent ones.
constexpr Tables MakeTables() {
  Tables t{};
  for (uint32_t b = 0; b < 256; ++b) {
    uint32_t crc = b;
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ ((crc & 1) ? kPolyReflected : 0);
    t[0][b] = crc;
  }
  for (size_t k = 1; k < kSlices; ++k) {
    for (uint32_t b = 0; b < 256; ++b) t[k][b] = (t[k - 1][b] >> 8) ^ t[0][t[k - 1][b] & 0xFF];
  }
  return t;
}

constexpr Tables kTables = MakeTables();

}  // namespace

uint32_t Crc32cExtend(uint32_t crc, const void* data, size_t size) {
  const auto* p = static_cast<const uint8_t*>(data);
  uint32_t l = ~crc;
  for (; size >= kSlices; size -= kSlices, p += kSlices) {
    const uint32_t lo = l ^ LoadLe32(p);
    const uint32_t hi = LoadLe32(p + 4);
    l = kTables[7][lo & 0xFF] ^ kTables[6][(lo >> 8) & 0xFF] ^ kTables[5][(lo >> 16) & 0xFF] ^
        kTables[4][lo >> 24] ^ kTables[3][hi & 0xFF] ^ kTables[2][(hi >> 8) & 0xFF] ^
        kTables[1][(hi >> 16) & 0xFF] ^ kTables[0][hi >> 24];
  }
  for (; size > 0; --size, ++p) l = (l >> 8) ^ kTables[0][(l ^ *p) & 0xFF];
  return ~l;
}

}  // namespace ballot::store
