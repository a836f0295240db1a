#include "format.h"

#include <cstdio>
#include <ctime>
#include <utility>

namespace costore::cli {

std::string HumanSize(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (bytes < 1024) return std::to_string(bytes) + " B";
  double value = static_cast<double>(bytes);
  size_t unit = 0;
  while (value >= 1024 && unit + 1 < std::size(kUnits)) {
    value /= 1024;
    ++unit;
  }
  char text[32];
  std::snprintf(text, sizeof text, value < 10 ? "%.1f %s" : "%.0f %s", value, kUnits[unit]);
  return text;
}

std::optional<uint64_t> ParseSize(std::string_view text, std::string* why) {
  auto fail = [&](std::string reason) -> std::optional<uint64_t> {
    *why = std::move(reason);
    return std::nullopt;
  };
  const auto is_digit = [](char c) { return c >= '0' && c <= '9'; };
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
  if (text.empty()) return fail("no size given");
  if (text.front() == '-') return fail("a size cannot be negative");
  size_t i = 0;
  while (i < text.size() && is_digit(text[i])) ++i;
  const std::string_view whole = text.substr(0, i);
  std::string_view fraction;
  if (i < text.size() && text[i] == '.') {
    size_t start = ++i;
    while (i < text.size() && is_digit(text[i])) ++i;
    fraction = text.substr(start, i - start);
    if (fraction.empty()) return fail("a digit must follow the decimal point");
  }
  if (whole.empty() && fraction.empty()) return fail("a size starts with a number");
  std::string_view unit = text.substr(i);
  if (!unit.empty() && unit.front() == ' ') unit.remove_prefix(1);

  std::string lower;
  for (char c : unit) lower += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  static constexpr std::string_view kPrefixes = "kmgtp";
  uint64_t multiplier = 1, base = 1;
  size_t factors = 0;
  if (!(lower.empty() || lower == "b")) {
    size_t power = kPrefixes.find(lower[0]);
    std::string_view rest = std::string_view(lower).substr(1);
    if (power == std::string_view::npos || !(rest.empty() || rest == "b" || rest == "ib"))
      return fail("unknown unit \"" + std::string(unit) + "\" (use B, K, M, G, T, P, KiB..PiB or KB..PB)");
    base = rest == "b" ? 1000 : 1024;
    factors = power + 1;
    for (size_t k = 0; k < factors; ++k) multiplier *= base;
  }
  if (multiplier == 1 && !fraction.empty()) return fail("a number of bytes has no fraction");

  constexpr uint64_t kMax = UINT64_MAX;
  uint64_t value = 0;
  for (char c : whole) {
    const uint64_t digit = static_cast<uint64_t>(c - '0');
    if (value > (kMax - digit) / 10) return fail("too large");
    value = value * 10 + digit;
  }
  if (value > kMax / multiplier) return fail("too large");
  value *= multiplier;
  // The fraction's bytes, floor(multiplier * digits / 10^n), multiplying by
  // the base one factor at a time as quotient and remainder (no overflow
  // with at most 16 digits; further ones are worth less than a byte).
  if (fraction.size() > 16) fraction = fraction.substr(0, 16);
  uint64_t quotient = 0, remainder = 0, denominator = 1;
  for (char c : fraction) {
    remainder = remainder * 10 + static_cast<uint64_t>(c - '0');
    denominator *= 10;
  }
  for (size_t k = 0; k < factors; ++k) {
    const uint64_t scaled = remainder * base;
    quotient = quotient * base + scaled / denominator;
    remainder = scaled % denominator;
  }
  if (quotient > kMax - value) return fail("too large");
  value += quotient;
  return value;
}

std::string HumanTime(int64_t usec) {
  if (usec <= 0) return "-";
  std::time_t seconds = static_cast<std::time_t>(usec / 1000000);
  std::tm local{};
  if (!localtime_r(&seconds, &local)) return "-";
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S", &local);
  return text;
}

std::string ShortDigest(std::string_view digest) {
  constexpr std::string_view kPrefix = "sha256:";
  if (digest.substr(0, kPrefix.size()) != kPrefix) return std::string(digest);
  return std::string(digest.substr(kPrefix.size(), 12));
}

std::string HumanOrigin(std::string_view origin) { return origin.empty() ? "-" : std::string(origin); }

namespace {

// Whether the code point `cp` must not reach a terminal as is.
bool NeedsEscape(uint32_t cp) {
  if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0)) return true;  // C0, DEL, C1
  if (cp == 0x061c || cp == 0x200e || cp == 0x200f) return true;             // bidi marks
  if (cp >= 0x202a && cp <= 0x202e) return true;                             // bidi embeddings, overrides
  if (cp >= 0x2066 && cp <= 0x2069) return true;                             // bidi isolates
  if (cp >= 0x200b && cp <= 0x200d) return true;                             // zero-width space, joiners
  if (cp == 0x2028 || cp == 0x2029 || cp == 0xfeff) return true;             // separators, BOM
  return false;
}

// Decodes one UTF-8 sequence at text[i]; returns its length, or 0 if it is
// not well-formed (overlong, surrogate, beyond U+10FFFF, truncated).
size_t DecodeUtf8(std::string_view text, size_t i, uint32_t* cp) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[i + k]); };
  const unsigned char lead = byte(0);
  size_t length;
  uint32_t value;
  if (lead < 0x80) {
    *cp = lead;
    return 1;
  } else if (lead >= 0xc2 && lead <= 0xdf) {
    length = 2;
    value = lead & 0x1f;
  } else if (lead >= 0xe0 && lead <= 0xef) {
    length = 3;
    value = lead & 0x0f;
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    length = 4;
    value = lead & 0x07;
  } else {
    return 0;
  }
  if (i + length > text.size()) return 0;
  for (size_t k = 1; k < length; ++k) {
    if ((byte(k) & 0xc0) != 0x80) return 0;
    value = (value << 6) | (byte(k) & 0x3f);
  }
  if ((length == 3 && value < 0x800) || (length == 4 && (value < 0x10000 || value > 0x10ffff)) ||
      (value >= 0xd800 && value <= 0xdfff))
    return 0;
  *cp = value;
  return length;
}

}  // namespace

std::string Printable(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  char escape[16];
  for (size_t i = 0; i < text.size();) {
    uint32_t cp = 0;
    size_t length = DecodeUtf8(text, i, &cp);
    if (length == 0) {
      std::snprintf(escape, sizeof escape, "\\x%02x", static_cast<unsigned>(static_cast<unsigned char>(text[i])));
      out += escape;
      ++i;
      continue;
    }
    if (cp == '\\') {
      out += "\\\\";
    } else if (cp == '\n') {
      out += "\\n";
    } else if (cp == '\t') {
      out += "\\t";
    } else if (cp == '\r') {
      out += "\\r";
    } else if (cp < 0x80 && NeedsEscape(cp)) {
      std::snprintf(escape, sizeof escape, "\\x%02x", static_cast<unsigned>(cp));
      out += escape;
    } else if (NeedsEscape(cp)) {
      std::snprintf(escape, sizeof escape, "\\u{%04x}", static_cast<unsigned>(cp));
      out += escape;
    } else {
      out.append(text.substr(i, length));
    }
    i += length;
  }
  return out;
}

std::string Indent(std::string_view text, std::string_view indent) {
  std::string out;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    out.append(indent);
    out.append(text.substr(start, end - start));
    out += '\n';
    start = end + 1;
  }
  return out;
}

void Table::Add(std::vector<std::string> row) {
  for (auto& cell : row) cell = Printable(cell);
  rows_.push_back(std::move(row));
}

namespace {

// Display width: UTF-8 continuation bytes take no column.
size_t Width(const std::string& text) {
  size_t width = 0;
  for (unsigned char c : text) {
    if ((c & 0xC0) != 0x80) ++width;
  }
  return width;
}

}  // namespace

std::string Table::Render() const {
  std::vector<size_t> widths;
  for (const auto& row : rows_) {
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], Width(row[i]));
  }
  std::string out;
  for (const auto& row : rows_) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line.append(widths[i] - Width(row[i]) + 2, ' ');
    }
    // Empty last cells leave no padding behind.
    line.erase(line.find_last_not_of(' ') + 1);
    out += line;
    out += '\n';
  }
  return out;
}

}  // namespace costore::cli
