#include "daemon/engine/digest.h"

#include "daemon/engine/quote.h"

namespace costore {
namespace {

constexpr std::string_view kPrefix = "sha256:";
constexpr char kHexDigits[] = "0123456789abcdef";

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

}  // namespace

Status Digest::Parse(std::string_view text, Digest* out) {
  if (text.empty()) return Status::InvalidArgument("digest is empty; expected sha256:<64 hex digits>");
  size_t colon = text.find(':');
  if (colon == std::string_view::npos) {
    return Status::InvalidArgument("digest " + Quote(text) +
                                   " has no algorithm prefix; expected sha256:<64 hex digits>");
  }
  if (text.substr(0, colon + 1) != kPrefix) {
    return Status::InvalidArgument("digest " + Quote(text) + " uses algorithm " +
                                   Quote(text.substr(0, colon)) + "; only sha256 is supported");
  }
  std::string_view hex = text.substr(kPrefix.size());
  if (hex.size() != 2 * kSize) {
    return Status::InvalidArgument("digest " + Quote(text) + " has " + std::to_string(hex.size()) +
                                   " hex digits; sha256 needs 64");
  }
  Digest d;
  for (size_t i = 0; i < kSize; ++i) {
    int hi = HexValue(hex[2 * i]);
    int lo = HexValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      char bad = hi < 0 ? hex[2 * i] : hex[2 * i + 1];
      bool upper = bad >= 'A' && bad <= 'F';
      return Status::InvalidArgument(
          "digest " + Quote(text) +
          (upper ? " has uppercase hex digits; digests are written in lowercase"
                 : " has a character that is not a hex digit"));
    }
    d.bytes_[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  *out = d;
  return Status::OK();
}

std::string Digest::hex() const {
  std::string out;
  out.reserve(2 * kSize);
  for (uint8_t b : bytes_) {
    out += kHexDigits[b >> 4];
    out += kHexDigits[b & 0xf];
  }
  return out;
}

std::string Digest::ToString() const { return std::string(kPrefix) + hex(); }

}  // namespace costore
