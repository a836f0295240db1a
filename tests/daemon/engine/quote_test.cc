#include "daemon/engine/quote.h"

#include <gtest/gtest.h>

#include <string>

namespace costore {
namespace {

// What D-Bus accepts as a string: UTF-8, as Utf8SequenceLength judges it,
// checked here independently by walking the bytes' bit patterns.
bool IsUtf8(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    const size_t n = Utf8SequenceLength(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

TEST(QuoteTest, PlainTextIsQuotedAsItIs) {
  EXPECT_EQ(Quote("https://a.example"), "\"https://a.example\"");
  EXPECT_EQ(Quote("é ü 日本 🙂"), "\"é ü 日本 🙂\"");
}

TEST(QuoteTest, ControlCharactersQuotesAndBackslashesAreEscaped) {
  EXPECT_EQ(Quote(std::string("a\nb\x7f\"\\", 6)), "\"a\\x0ab\\x7f\\x22\\x5c\"");
}

TEST(QuoteTest, TheCutNeverSplitsACharacter) {
  // 600 two-byte characters, cut at 80 bytes: 40 whole ones, never 39 and a half.
  std::string name;
  for (int i = 0; i < 600; ++i) name += "é";
  const std::string quoted = Quote(name);
  EXPECT_TRUE(IsUtf8(quoted));
  std::string expected = "\"";
  for (int i = 0; i < 40; ++i) expected += "é";
  EXPECT_EQ(quoted, expected + "...\"");
  // Cut points falling inside three- and four-byte characters.
  for (size_t max = 0; max < 12; ++max) {
    EXPECT_TRUE(IsUtf8(Quote("日本語🙂🙂", max))) << max;
  }
}

TEST(QuoteTest, BytesThatAreNotUtf8AreEscaped) {
  EXPECT_EQ(Quote(std::string("\xff\xc3", 2)), "\"\\xff\\xc3\"");           // a stray byte, a cut-short character
  EXPECT_EQ(Quote(std::string("\xc0\xaf", 2)), "\"\\xc0\\xaf\"");           // overlong "/"
  EXPECT_EQ(Quote(std::string("\xed\xa0\x80", 3)), "\"\\xed\\xa0\\x80\"");  // a UTF-16 surrogate
  EXPECT_EQ(Quote(std::string("\xf4\x90\x80\x80", 4)), "\"\\xf4\\x90\\x80\\x80\"");  // past U+10FFFF
}

TEST(QuoteTest, ValidUtf8KeepsCharactersAndEscapesTheRest) {
  EXPECT_EQ(ValidUtf8("ok é"), "ok é");
  const std::string cut = std::string("name \xc3", 6);  // a message cut mid-character elsewhere
  EXPECT_EQ(ValidUtf8(cut), "name \\xc3");
  EXPECT_TRUE(IsUtf8(ValidUtf8(std::string("\x80\xbf\xfe", 3))));
}

}  // namespace
}  // namespace costore
