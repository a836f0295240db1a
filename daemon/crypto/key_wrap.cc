#include "daemon/crypto/key_wrap.h"

#include <sodium.h>

#include <cstring>

namespace costore {
namespace {

constexpr std::string_view kContext = "costore/data-key/1";
constexpr size_t kNonceSize = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
static_assert(kNonceSize == 24);
static_assert(kWrappedKeySize == 1 + kNonceSize + SecretKey::kSize + crypto_aead_xchacha20poly1305_ietf_ABYTES);

std::array<uint8_t, kContext.size() + Digest::kSize + 4> AdditionalData(uint32_t version, const Digest& digest) {
  std::array<uint8_t, kContext.size() + Digest::kSize + 4> ad{};
  std::memcpy(ad.data(), kContext.data(), kContext.size());
  std::memcpy(ad.data() + kContext.size(), digest.bytes().data(), Digest::kSize);
  for (int i = 0; i < 4; ++i) ad[kContext.size() + Digest::kSize + i] = static_cast<uint8_t>(version >> (8 * i));
  return ad;
}

}  // namespace

std::string WrapDataKey(const SecretKey& master, uint32_t master_version, const Digest& digest,
                        const SecretKey& data_key, const std::array<uint8_t, 24>* nonce) {
  EnsureSodium();
  std::string out(kWrappedKeySize, '\0');
  auto* bytes = reinterpret_cast<uint8_t*>(out.data());
  bytes[0] = kWrapFormat;
  if (nonce != nullptr) {
    std::memcpy(bytes + 1, nonce->data(), kNonceSize);
  } else {
    randombytes_buf(bytes + 1, kNonceSize);
  }
  const auto ad = AdditionalData(master_version, digest);
  unsigned long long len = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(bytes + 1 + kNonceSize, &len, data_key.data(), SecretKey::kSize,
                                             ad.data(), ad.size(), nullptr, bytes + 1, master.data());
  return out;
}

Status UnwrapDataKey(const SecretKey& master, uint32_t master_version, const Digest& digest,
                     std::string_view wrapped, SecretKey* data_key) {
  EnsureSodium();
  if (wrapped.size() != kWrappedKeySize || static_cast<uint8_t>(wrapped[0]) != kWrapFormat) {
    return Status::IOError("the catalog's wrapped data key of " + digest.ToString() +
                           " is malformed (catalog damaged?)");
  }
  const auto* bytes = reinterpret_cast<const uint8_t*>(wrapped.data());
  const auto ad = AdditionalData(master_version, digest);
  SecretKey key;
  unsigned long long len = 0;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(key.data(), &len, nullptr, bytes + 1 + kNonceSize,
                                                 kWrappedKeySize - 1 - kNonceSize, ad.data(), ad.size(), bytes + 1,
                                                 master.data()) != 0) {
    return Status::IOError("the data key of " + digest.ToString() + " does not unwrap under master key version " +
                           std::to_string(master_version) +
                           ": the keyring holds a different key under that version, or the catalog was altered");
  }
  *data_key = std::move(key);
  return Status::OK();
}

}  // namespace costore
