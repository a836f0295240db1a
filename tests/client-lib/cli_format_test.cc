// The CLI's text helpers: what reaches the terminal from names, origins and
// paths chosen by other programs.
#include <gtest/gtest.h>

#include <string>

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

TEST(Indent, PrefixesEveryLine) {
  EXPECT_EQ(Indent("a\nb\n", "  "), "  a\n  b\n");
  EXPECT_EQ(Indent("last line without newline", "> "), "> last line without newline\n");
  EXPECT_EQ(Indent("", "  "), "");
}

}  // namespace
}  // namespace costore::cli
