// Digest: the name of a stored file, the SHA-256 of its bytes.
// Its one textual form on the wire and in the catalog is
// "sha256:<64 lowercase hex>"; Parse accepts nothing else.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "daemon/engine/status.h"

namespace costore {

class Digest {
 public:
  static constexpr size_t kSize = 32;
  Digest() = default;
  explicit Digest(const std::array<uint8_t, kSize>& bytes) : bytes_(bytes) {}

  // Strict: "sha256:" + 64 lowercase hex digits. Anything else is an
  // InvalidArgument whose message says what is wrong (empty, another
  // algorithm, wrong length, uppercase, a non-hex character).
  static Status Parse(std::string_view text, Digest* out);

  const std::array<uint8_t, kSize>& bytes() const { return bytes_; }
  std::string hex() const;       // 64 lowercase hex digits
  std::string ToString() const;  // "sha256:" + hex()

  bool operator==(const Digest&) const = default;
  auto operator<=>(const Digest&) const = default;

 private:
  std::array<uint8_t, kSize> bytes_{};
};

}  // namespace costore
