// Text for humans: sizes, times, digests, aligned tables.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace costore::cli {

// "0 B", "512 B", "2.2 MiB", "1.5 GiB".
std::string HumanSize(uint64_t bytes);

// Bytes for a size typed by a person: plain bytes ("1048576"), or a number,
// with or without a fraction, and a unit: K, M, G, T, P or KiB, MiB, GiB,
// TiB, PiB (powers of 1024), KB, MB, GB, TB, PB (powers of 1000), or B; any
// case, a space allowed before the unit. A fraction of a byte is rounded
// down ("1.5K" is 1536, "0.1K" 102). Otherwise nullopt, and *why says what
// is wrong.
std::optional<uint64_t> ParseSize(std::string_view text, std::string* why);

// Local time "2024-05-01 12:03:04" for microseconds since the epoch; "-"
// for 0 (never).
std::string HumanTime(int64_t usec);

// The first 12 hex digits of "sha256:<hex>"; "*" and malformed text as is.
std::string ShortDigest(std::string_view digest);

// "-" for the empty origin (the app itself).
std::string HumanOrigin(std::string_view origin);

// `text` safe to print on a terminal: control characters (C0, DEL, C1),
// bidirectional and zero-width format characters, backslashes and bytes
// that are not UTF-8 are written as escapes (\n, \x1b, \u{202e}, \\), so
// that a name or path chosen by another program can neither drive the
// terminal nor disguise itself.
std::string Printable(std::string_view text);

// Every line of `text` with `indent` before it.
std::string Indent(std::string_view text, std::string_view indent);

// Columns padded to their widest cell; the last column is not padded.
// Cells are passed through Printable.
class Table {
 public:
  explicit Table(std::vector<std::string> header) { Add(std::move(header)); }
  void Add(std::vector<std::string> row);
  std::string Render() const;

 private:
  std::vector<std::vector<std::string>> rows_;
};

}  // namespace costore::cli
