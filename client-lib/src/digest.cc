// Normalising user-typed digests to "sha256:<64 lowercase hex>".
#include <cctype>
#include <string>
#include <string_view>

#include "internal.h"

namespace costore::client {
namespace internal {
namespace {

constexpr size_t kHexDigits = 64;

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

std::string_view Trim(std::string_view text) {
  while (!text.empty() && IsSpace(text.front())) text.remove_prefix(1);
  while (!text.empty() && IsSpace(text.back())) text.remove_suffix(1);
  return text;
}

bool EqualsIgnoringCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  }
  return true;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

const char* NormalizeDigestTo(std::string_view text, std::string* out) {
  std::string_view hex = Trim(text);
  if (hex.empty()) return "it is empty";
  // An algorithm prefix: "sha256:" (OCI, costore) or "sha256-" (Ollama).
  size_t separator = hex.find_first_of(":-");
  if (separator != std::string_view::npos) {
    if (!EqualsIgnoringCase(hex.substr(0, separator), "sha256"))
      return "costore names files by SHA-256 only: write \"sha256:<64 hex digits>\" or the bare hex";
    hex.remove_prefix(separator + 1);
  }
  for (char c : hex) {
    if (HexValue(c) < 0) return "it contains a character that is not a hex digit";
  }
  if (hex.size() != kHexDigits) return "a SHA-256 digest has exactly 64 hex digits";
  std::string normalized = "sha256:";
  normalized.reserve(7 + kHexDigits);
  for (char c : hex) normalized.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  *out = std::move(normalized);
  return nullptr;
}

std::string Quote(std::string_view text, size_t max_bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string quoted = "\"";
  size_t taken = 0;
  for (char c : text) {
    if (taken++ == max_bytes) {
      quoted += "...";
      break;
    }
    auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      quoted += '\\';
      quoted += c;
    } else if (byte < 0x20 || byte == 0x7f) {
      quoted += "\\x";
      quoted += kHex[byte >> 4];
      quoted += kHex[byte & 0xf];
    } else {
      quoted += c;
    }
  }
  quoted += '"';
  return quoted;
}

}  // namespace internal

std::string NormalizeDigest(std::string_view text) {
  std::string normalized;
  if (const char* reason = internal::NormalizeDigestTo(text, &normalized))
    throw Error(ErrorCode::kInvalidArgument, "invalid digest " + internal::Quote(text) + ": " + reason);
  return normalized;
}

}  // namespace costore::client
