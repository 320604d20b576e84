#include "statemachine/byte_codec.h"

#include <cstdint>
#include <string>
#include <string_view>

#include <gtest/gtest.h>

namespace ballot {
namespace {

TEST(ByteCodecTest, RoundTripsEveryWidthLittleEndian) {
  ByteWriter writer;
  writer.PutU8(0xAB);
  writer.PutU32(0x01020304);
  writer.PutU64(0x1122334455667788);
  writer.PutBytes("hello");
  writer.PutBytes("");
  const std::string data = writer.Release();
  ASSERT_EQ(data.size(), 1u + 4 + 8 + 4 + 5 + 4);
  // Little-endian on every host: the low byte comes first.
  EXPECT_EQ(static_cast<uint8_t>(data[1]), 0x04);
  EXPECT_EQ(static_cast<uint8_t>(data[5]), 0x88);

  ByteReader reader(data);
  uint8_t u8 = 0;
  uint32_t u32 = 0;
  uint64_t u64 = 0;
  std::string_view a;
  std::string_view b;
  ASSERT_TRUE(reader.GetU8(&u8));
  ASSERT_TRUE(reader.GetU32(&u32));
  ASSERT_TRUE(reader.GetU64(&u64));
  ASSERT_TRUE(reader.GetBytes(&a));
  ASSERT_TRUE(reader.GetBytes(&b));
  EXPECT_EQ(u8, 0xAB);
  EXPECT_EQ(u32, 0x01020304u);
  EXPECT_EQ(u64, 0x1122334455667788u);
  EXPECT_EQ(a, "hello");
  EXPECT_EQ(b, "");
  EXPECT_TRUE(reader.empty());
  EXPECT_FALSE(reader.GetU8(&u8));
}

TEST(ByteCodecTest, ShortInputFailsWithoutConsuming) {
  ByteReader reader(std::string_view("\x01\x02\x03", 3));
  uint32_t u32 = 7;
  EXPECT_FALSE(reader.GetU32(&u32));
  EXPECT_EQ(u32, 7u);
  EXPECT_EQ(reader.remaining(), 3u);
}

TEST(ByteCodecTest, LengthPastTheEndIsRejectedNotAllocated) {
  ByteWriter writer;
  writer.PutU32(0xFFFFFFFF);  // claims 4 GiB follow
  writer.PutU8('x');
  const std::string data = writer.Release();
  ByteReader reader(data);
  std::string_view out = "unchanged";
  EXPECT_FALSE(reader.GetBytes(&out));
  EXPECT_EQ(out, "unchanged");
  EXPECT_EQ(reader.remaining(), data.size());
}

}  // namespace
}  // namespace ballot
