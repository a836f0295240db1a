// What the sealed-file fuzzer and its seed generator share: a fixed data
// key and the plaintext every seed file seals, so that the fuzzer knows
// what any chunk that authenticates must hold.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "daemon/crypto/secret_key.h"

namespace costore::fuzz {

inline SecretKey SealedFuzzKey() {
  std::array<uint8_t, SecretKey::kSize> bytes{};
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(0xa0 + i);
  return SecretKey::FromBytes(bytes);
}

// Byte `offset` of every sealed plaintext: not periodic in any chunk size,
// so a chunk moved to another position cannot look right.
inline uint8_t PlaintextByte(uint64_t offset) { return static_cast<uint8_t>((offset * 131 + offset / 251) ^ 0x5a); }

inline std::vector<uint8_t> Plaintext(size_t size) {
  std::vector<uint8_t> plain(size);
  for (size_t i = 0; i < size; ++i) plain[i] = PlaintextByte(i);
  return plain;
}

}  // namespace costore::fuzz
