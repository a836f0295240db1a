#include "daemon/crypto/secret_key.h"

#include <sodium.h>

#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <new>
#include <utility>

namespace costore {

void EnsureSodium() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (sodium_init() < 0) {
      // Only when the kernel has no entropy source at all: nothing private
      // can be done safely, and continuing would be worse than stopping.
      std::fputs("costore: libsodium could not be initialised\n", stderr);
      std::abort();
    }
  });
}

namespace {

uint8_t* AllocateKey() {
  EnsureSodium();
  auto* bytes = static_cast<uint8_t*>(sodium_malloc(SecretKey::kSize));
  if (bytes == nullptr) throw std::bad_alloc();
  sodium_memzero(bytes, SecretKey::kSize);
  return bytes;
}

}  // namespace

SecretKey::SecretKey() : bytes_(AllocateKey()) {}

SecretKey::~SecretKey() {
  if (bytes_ != nullptr) sodium_free(bytes_);  // wipes before unmapping
}

SecretKey::SecretKey(SecretKey&& other) noexcept : bytes_(std::exchange(other.bytes_, nullptr)) {}

SecretKey& SecretKey::operator=(SecretKey&& other) noexcept {
  if (this != &other) {
    if (bytes_ != nullptr) sodium_free(bytes_);
    bytes_ = std::exchange(other.bytes_, nullptr);
  }
  return *this;
}

SecretKey SecretKey::Random() {
  SecretKey key;
  randombytes_buf(key.bytes_, kSize);
  return key;
}

SecretKey SecretKey::FromBytes(std::span<const uint8_t, kSize> bytes) {
  SecretKey key;
  std::copy(bytes.begin(), bytes.end(), key.bytes_);
  return key;
}

bool SecretKey::Equals(const SecretKey& other) const {
  return sodium_memcmp(bytes_, other.bytes_, kSize) == 0;
}

}  // namespace costore
