#include "statemachine/byte_codec.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <string_view>

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

TEST(ByteCodecTest, RawFieldsAreLittleEndianAtAnyAlignment) {
  char buf[13] = {};
  StoreLe32(0x01020304, buf + 1);  // unaligned on purpose
  StoreLe64(0x1122334455667788, buf + 5);
  EXPECT_EQ(std::string(buf + 1, 4), std::string("\x04\x03\x02\x01", 4));
  EXPECT_EQ(static_cast<uint8_t>(buf[5]), 0x88);
  EXPECT_EQ(static_cast<uint8_t>(buf[12]), 0x11);
  EXPECT_EQ(LoadLe32(buf + 1), 0x01020304u);
  EXPECT_EQ(LoadLe64(buf + 5), 0x1122334455667788u);
  // High bits survive (no sign extension from char).
  StoreLe64(~uint64_t{0}, buf);
  EXPECT_EQ(LoadLe64(buf), ~uint64_t{0});
  EXPECT_EQ(LoadLe32(buf), ~uint32_t{0});

  std::string out = "x";
  AppendLe32(0xA1B2C3D4, &out);
  AppendLe64(7, &out);
  ASSERT_EQ(out.size(), 1u + 4 + 8);
  EXPECT_EQ(LoadLe32(out.data() + 1), 0xA1B2C3D4u);
  EXPECT_EQ(LoadLe64(out.data() + 5), 7u);
  // The same bytes ByteWriter writes.
  ByteWriter writer;
  writer.PutU32(0xA1B2C3D4);
  writer.PutU64(7);
  EXPECT_EQ(writer.data(), out.substr(1));
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
