#include "daemon/engine/digest.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace costore {
namespace {

using ::testing::HasSubstr;

constexpr std::string_view kEmptyHex =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

std::string WithPrefix(std::string_view hex) { return "sha256:" + std::string(hex); }

Status Parse(std::string_view text) {
  Digest d;
  return Digest::Parse(text, &d);
}

TEST(DigestTest, ParsesCanonicalForm) {
  Digest d;
  ASSERT_TRUE(Digest::Parse(WithPrefix(kEmptyHex), &d).ok());
  EXPECT_EQ(d.bytes()[0], 0xe3);
  EXPECT_EQ(d.bytes()[1], 0xb0);
  EXPECT_EQ(d.bytes()[31], 0x55);
  EXPECT_EQ(d.hex(), kEmptyHex);
  EXPECT_EQ(d.ToString(), WithPrefix(kEmptyHex));
}

TEST(DigestTest, RoundTripsEveryByteValue) {
  std::array<uint8_t, Digest::kSize> bytes{};
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(i * 8 + 7);
  Digest original(bytes);
  Digest parsed;
  ASSERT_TRUE(Digest::Parse(original.ToString(), &parsed).ok());
  EXPECT_EQ(parsed, original);
  EXPECT_EQ(parsed.hex().size(), 64u);
  EXPECT_EQ(parsed.ToString(), "sha256:" + parsed.hex());
}

TEST(DigestTest, DefaultIsAllZero) {
  EXPECT_EQ(Digest().hex(), std::string(64, '0'));
}

TEST(DigestTest, OrdersByBytes) {
  std::array<uint8_t, Digest::kSize> low{}, high{};
  high[0] = 1;
  EXPECT_LT(Digest(low), Digest(high));
  EXPECT_NE(Digest(low), Digest(high));
}

TEST(DigestTest, RejectsEmpty) {
  Status s = Parse("");
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("empty"));
}

TEST(DigestTest, RejectsMissingPrefix) {
  Status s = Parse(kEmptyHex);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("no algorithm prefix"));
}

TEST(DigestTest, RejectsOtherAlgorithms) {
  for (std::string_view prefix : {"sha512:", "sha1:", "SHA256:", "Sha256:", "sha-256:", ":"}) {
    Status s = Parse(std::string(prefix) + std::string(kEmptyHex));
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << prefix;
    EXPECT_THAT(s.message(), HasSubstr("only sha256")) << prefix;
  }
}

TEST(DigestTest, RejectsWrongLengths) {
  for (size_t length : {0u, 1u, 63u, 65u, 128u}) {
    std::string hex(length, 'a');
    Status s = Parse(WithPrefix(hex));
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << length;
    EXPECT_THAT(s.message(), HasSubstr(std::to_string(length) + " hex digits")) << length;
  }
}

TEST(DigestTest, RejectsUppercaseHex) {
  std::string hex(kEmptyHex);
  hex[10] = 'C';
  Status s = Parse(WithPrefix(hex));
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("uppercase"));
}

TEST(DigestTest, RejectsNonHexCharacters) {
  for (char bad : {'g', 'G', 'z', ' ', '-', '\0', '\n', '\xff'}) {
    std::string hex(kEmptyHex);
    hex[63] = bad;
    Status s = Parse(WithPrefix(hex));
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << static_cast<int>(bad);
    EXPECT_THAT(s.message(), HasSubstr("not a hex digit")) << static_cast<int>(bad);
  }
}

TEST(DigestTest, RejectsWhitespaceAroundIt) {
  EXPECT_FALSE(Parse(" " + WithPrefix(kEmptyHex)).ok());
  EXPECT_FALSE(Parse(WithPrefix(kEmptyHex) + "\n").ok());
}

TEST(DigestTest, FailedParseLeavesOutputUntouched) {
  Digest d;
  ASSERT_TRUE(Digest::Parse(WithPrefix(kEmptyHex), &d).ok());
  EXPECT_FALSE(Digest::Parse(WithPrefix(std::string(64, 'g')), &d).ok());
  EXPECT_EQ(d.hex(), kEmptyHex);
}

TEST(DigestTest, MessageQuotesHostileInput) {
  // A caller-supplied digest ends up in logs: control bytes must be escaped.
  Status s = Parse("evil\nline");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.message().find('\n'), std::string::npos);
}

}  // namespace
}  // namespace costore
