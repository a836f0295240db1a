#include "daemon/engine/sha256.h"

#include <openssl/evp.h>

#include <cstdio>
#include <cstdlib>

namespace costore {
namespace {

// OpenSSL fails here only when it cannot allocate or its SHA-256 provider is
// missing; the engine cannot work without either, and has no exceptions.
[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr, "costore: OpenSSL %s failed\n", what);
  std::abort();
}

}  // namespace

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  if (ctx_ == nullptr) Die("EVP_MD_CTX_new");
  if (EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr) != 1) Die("EVP_DigestInit_ex(sha256)");
}

Sha256::~Sha256() { EVP_MD_CTX_free(ctx_); }

void Sha256::Update(std::span<const std::byte> data) {
  if (data.empty()) return;
  if (EVP_DigestUpdate(ctx_, data.data(), data.size()) != 1) Die("EVP_DigestUpdate");
}

Digest Sha256::Finish() {
  std::array<uint8_t, Digest::kSize> bytes{};
  unsigned int length = 0;
  if (EVP_DigestFinal_ex(ctx_, bytes.data(), &length) != 1 || length != Digest::kSize) {
    Die("EVP_DigestFinal_ex");
  }
  return Digest(bytes);
}

Digest Sha256::Of(std::span<const std::byte> data) {
  Sha256 hasher;
  hasher.Update(data);
  return hasher.Finish();
}

}  // namespace costore
