// CRC-32C (Castagnoli), the checksum on every stored record.
//
// Chosen over xxHash because no xxhash development package is installed here and a table-driven
// CRC-32C is small, dependency-free and detects every 1-, 2- and 3-bit error and every burst up to
// 32 bits in a record, which is exactly the fault model of a flipped bit on disk. Same polynomial
// as iSCSI, ext4 and LevelDB: Crc32c("123456789") == 0xE3069283.
#ifndef BALLOT_STORE_CHECKSUM_H_
#define BALLOT_STORE_CHECKSUM_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace ballot::store {

// The CRC-32C of the concatenation of A and `data`, given crc = Crc32c(A). Crc32cExtend(0, ...)
// is the CRC of `data` alone.
uint32_t Crc32cExtend(uint32_t crc, const void* data, size_t size);

inline uint32_t Crc32c(const void* data, size_t size) { return Crc32cExtend(0, data, size); }
inline uint32_t Crc32c(std::string_view data) { return Crc32c(data.data(), data.size()); }

}  // namespace ballot::store

#endif  // BALLOT_STORE_CHECKSUM_H_
