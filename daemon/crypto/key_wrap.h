// Wrapping a file's data key under the master key, for the catalog
// (docs/private-format.md, "Key wrapping"):
//
//   wrapped = 0x01 || nonce (24 random bytes) || XChaCha20-Poly1305(master, nonce,
//             data key, ad = "costore/data-key/1" || digest || LE32(master version))
//
// 73 bytes. The additional data ties the wrapped key to its file's digest
// and to the master key version it was wrapped with, so a wrapped key moved
// to another row, or a row whose version was changed, does not unwrap.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "daemon/crypto/secret_key.h"
#include "daemon/engine/digest.h"
#include "daemon/engine/status.h"

namespace costore {

inline constexpr size_t kWrappedKeySize = 73;
inline constexpr uint8_t kWrapFormat = 1;

// A random nonce, unless `nonce` is given (for test vectors only).
std::string WrapDataKey(const SecretKey& master, uint32_t master_version, const Digest& digest,
                        const SecretKey& data_key, const std::array<uint8_t, 24>* nonce = nullptr);

// IOError when `wrapped` is malformed or does not authenticate under
// `master` for this digest and version: the message says so, naming
// `digest`.
Status UnwrapDataKey(const SecretKey& master, uint32_t master_version, const Digest& digest,
                     std::string_view wrapped, SecretKey* data_key);

}  // namespace costore
