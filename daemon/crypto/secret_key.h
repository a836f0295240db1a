// SecretKey: 32 secret bytes (a master key or a file's data key) kept in
// libsodium's guarded memory: mlock()ed so that it is never swapped out,
// between guard pages, and wiped when freed. Never copied implicitly; never
// printed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace costore {

// Initialises libsodium once per process (thread-safe). Every function of
// daemon/crypto calls it; call it before using libsodium directly.
void EnsureSodium();

class SecretKey {
 public:
  static constexpr size_t kSize = 32;

  SecretKey();  // all zero
  ~SecretKey();
  SecretKey(SecretKey&& other) noexcept;
  SecretKey& operator=(SecretKey&& other) noexcept;
  SecretKey(const SecretKey&) = delete;
  SecretKey& operator=(const SecretKey&) = delete;

  // 32 bytes from the kernel's CSPRNG (randombytes_buf).
  static SecretKey Random();
  static SecretKey FromBytes(std::span<const uint8_t, kSize> bytes);

  uint8_t* data() { return bytes_; }
  const uint8_t* data() const { return bytes_; }
  std::span<const uint8_t, kSize> span() const { return std::span<const uint8_t, kSize>(bytes_, kSize); }

  // Constant-time comparison.
  bool Equals(const SecretKey& other) const;

 private:
  uint8_t* bytes_;  // sodium_malloc'd, kSize bytes
};

}  // namespace costore
