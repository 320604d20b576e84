#include "store/checksum.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace ballot::store {
namespace {

TEST(Crc32cTest, KnownVectors) {
  EXPECT_EQ(Crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(Crc32c(""), 0u);
  // RFC 3720 (iSCSI) B.4 test patterns.
  std::string zeros(32, '\0');
  EXPECT_EQ(Crc32c(zeros), 0x8A9136AAu);
  std::string ones(32, '\xff');
  EXPECT_EQ(Crc32c(ones), 0x62A8AB43u);
  std::string ascending(32, '\0');
  for (int i = 0; i < 32; ++i) ascending[i] = static_cast<char>(i);
  EXPECT_EQ(Crc32c(ascending), 0x46DD794Eu);
  std::string descending(32, '\0');
  for (int i = 0; i < 32; ++i) descending[i] = static_cast<char>(31 - i);
  EXPECT_EQ(Crc32c(descending), 0x113FDB5Cu);
}

TEST(Crc32cTest, ExtendEqualsWholeAtEverySplitAndAlignment) {
  std::mt19937_64 rng(42);
  std::string data(300, '\0');
  for (char& c : data) c = static_cast<char>(rng());
  for (size_t offset = 0; offset < 9; ++offset) {
    const std::string_view s = std::string_view(data).substr(offset);
    const uint32_t whole = Crc32c(s);
    for (size_t split = 0; split <= s.size(); split += 7) {
      const uint32_t a = Crc32c(s.substr(0, split));
      EXPECT_EQ(Crc32cExtend(a, s.data() + split, s.size() - split), whole)
          << "offset " << offset << " split " << split;
    }
  }
}

TEST(Crc32cTest, DetectsEverySingleBitFlip) {
  std::string data = "a record of moderate length, 0123456789abcdefghijklmnopqrstuvwxyz";
  const uint32_t good = Crc32c(data);
  for (size_t i = 0; i < data.size() * 8; ++i) {
    data[i / 8] ^= static_cast<char>(1 << (i % 8));
    EXPECT_NE(Crc32c(data), good) << "bit " << i;
    data[i / 8] ^= static_cast<char>(1 << (i % 8));
  }
}

}  // namespace
}  // namespace ballot::store
