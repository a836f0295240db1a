// The CLI's text helpers: what reaches the terminal from names, origins and
// paths chosen by other programs.
#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "format.h"

namespace costore::cli {
namespace {

TEST(Printable, KeepsOrdinaryText) {
  EXPECT_EQ(Printable("Xenova/whisper-tiny.en/onnx/decoder.onnx"), "Xenova/whisper-tiny.en/onnx/decoder.onnx");
  EXPECT_EQ(Printable("https://bücher.example"), "https://bücher.example");
  EXPECT_EQ(Printable("模型 🤗"), "模型 🤗");
  EXPECT_EQ(Printable(""), "");
}

TEST(Printable, EscapesTerminalControls) {
  EXPECT_EQ(Printable("a\x1b]0;owned\x07z"), "a\\x1b]0;owned\\x07z");
  EXPECT_EQ(Printable("line\nbreak\ttab\rcr"), "line\\nbreak\\ttab\\rcr");
  EXPECT_EQ(Printable(std::string("nul\0x", 5)), "nul\\x00x");
  EXPECT_EQ(Printable("del\x7f"), "del\\x7f");
  EXPECT_EQ(Printable("c1\xc2\x9b" "31m"), "c1\\u{009b}31m");  // U+009B CSI
}

TEST(Printable, EscapesBidiAndInvisibleCharacters) {
  // "evil\u202Excod.onnx" would show as "evildoc.onnx" reversed in part.
  EXPECT_EQ(Printable("evil\xe2\x80\xae" "xcod.onnx"), "evil\\u{202e}xcod.onnx");
  EXPECT_EQ(Printable("a\xe2\x81\xa6" "b"), "a\\u{2066}b");       // U+2066 LRI
  EXPECT_EQ(Printable("hugging\xe2\x80\x8b" "face"), "hugging\\u{200b}face");  // zero-width space
  EXPECT_EQ(Printable("\xef\xbb\xbf" "bom"), "\\u{feff}bom");
}

TEST(Printable, EscapesBackslashesAndBrokenUtf8) {
  EXPECT_EQ(Printable("a\\x1b"), "a\\\\x1b");  // a literal backslash cannot fake an escape
  EXPECT_EQ(Printable("\xff\xfe"), "\\xff\\xfe");
  EXPECT_EQ(Printable("\xc0\xaf"), "\\xc0\\xaf");          // overlong '/'
  EXPECT_EQ(Printable("\xed\xa0\x80"), "\\xed\\xa0\\x80");  // a surrogate
  EXPECT_EQ(Printable("cut\xe2\x80"), "cut\\xe2\\x80");     // truncated at the end
}

TEST(Table, EscapesCellsAndAligns) {
  Table table({"NAME", "SIZE"});
  table.Add({"a\x1b[2Jb", "1 B"});
  table.Add({"long-name", "2 B"});
  EXPECT_EQ(table.Render(),
            "NAME       SIZE\n"
            "a\\x1b[2Jb  1 B\n"
            "long-name  2 B\n");
}

TEST(Table, LeavesNoPaddingAfterEmptyLastCells) {
  Table table({"STATE", "DIGEST", "PROBLEM"});
  table.Add({"ok", "1a153a22f450", ""});
  table.Add({"damaged", "7ed98ddbad84", "truncated"});
  EXPECT_EQ(table.Render(),
            "STATE    DIGEST        PROBLEM\n"
            "ok       1a153a22f450\n"
            "damaged  7ed98ddbad84  truncated\n");
}

TEST(Indent, PrefixesEveryLine) {
  EXPECT_EQ(Indent("a\nb\n", "  "), "  a\n  b\n");
  EXPECT_EQ(Indent("last line without newline", "> "), "> last line without newline\n");
  EXPECT_EQ(Indent("", "  "), "");
}

// ParseSize(text) or, when it refuses, "error: <why>".
std::string Size(std::string_view text) {
  std::string why;
  std::optional<uint64_t> bytes = ParseSize(text, &why);
  return bytes ? std::to_string(*bytes) : "error: " + why;
}

TEST(ParseSize, PlainBytes) {
  EXPECT_EQ(Size("0"), "0");
  EXPECT_EQ(Size("1048576"), "1048576");
  EXPECT_EQ(Size("512B"), "512");
  EXPECT_EQ(Size("512 b"), "512");
  EXPECT_EQ(Size("  42  "), "42");
  EXPECT_EQ(Size("18446744073709551615"), "18446744073709551615");  // UINT64_MAX
}

TEST(ParseSize, BinaryUnits) {
  EXPECT_EQ(Size("500M"), "524288000");
  EXPECT_EQ(Size("2G"), "2147483648");
  EXPECT_EQ(Size("2g"), "2147483648");
  EXPECT_EQ(Size("1.5GiB"), "1610612736");
  EXPECT_EQ(Size("1.5 gib"), "1610612736");
  EXPECT_EQ(Size("4K"), "4096");
  EXPECT_EQ(Size("4KiB"), "4096");
  EXPECT_EQ(Size("1T"), "1099511627776");
  EXPECT_EQ(Size("1PiB"), "1125899906842624");
  EXPECT_EQ(Size(".5M"), "524288");
  EXPECT_EQ(Size("0.1K"), "102");  // 102.4: a fraction of a byte is rounded down
  EXPECT_EQ(Size("0G"), "0");
}

TEST(ParseSize, DecimalUnits) {
  EXPECT_EQ(Size("500MB"), "500000000");
  EXPECT_EQ(Size("2GB"), "2000000000");
  EXPECT_EQ(Size("1.5kb"), "1500");
  EXPECT_EQ(Size("2.25TB"), "2250000000000");
  EXPECT_EQ(Size("0.000000001GB"), "1");
  EXPECT_EQ(Size("1.0000000000000000001PB"), "1000000000000000");  // digits worth less than a byte
}

TEST(ParseSize, RefusesWithAReason) {
  EXPECT_EQ(Size(""), "error: no size given");
  EXPECT_EQ(Size("   "), "error: no size given");
  EXPECT_EQ(Size("-1G"), "error: a size cannot be negative");
  EXPECT_EQ(Size("G"), "error: a size starts with a number");
  EXPECT_EQ(Size("1.G"), "error: a digit must follow the decimal point");
  EXPECT_EQ(Size("1.5"), "error: a number of bytes has no fraction");
  EXPECT_EQ(Size("1.5B"), "error: a number of bytes has no fraction");
  EXPECT_EQ(Size("12X").rfind("error: unknown unit \"X\"", 0), 0u) << Size("12X");
  EXPECT_EQ(Size("1e9").rfind("error: unknown unit \"e9\"", 0), 0u) << Size("1e9");
  EXPECT_EQ(Size("5 MiBs").rfind("error: unknown unit", 0), 0u);
  EXPECT_EQ(Size("2E"), "error: unknown unit \"E\" (use B, K, M, G, T, P, KiB..PiB or KB..PB)");
  EXPECT_EQ(Size("18446744073709551616"), "error: too large");  // UINT64_MAX + 1
  EXPECT_EQ(Size("16384P"), "error: too large");                 // 2^64 bytes
  EXPECT_EQ(Size("16383.99999P"), "18446744062450552547");       // just below 2^64
}

}  // namespace
}  // namespace costore::cli
