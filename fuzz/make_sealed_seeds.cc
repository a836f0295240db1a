// Writes the seed corpus of sealed_file_fuzzer: files sealed with the
// fuzzer's fixed key over its known plaintext, in both ciphers (AES-256-GCM
// where this machine has it), small chunk sizes and lengths around chunk
// boundaries. Usage: make_sealed_seeds <directory>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "daemon/crypto/sealed_file.h"
#include "daemon/engine/sha256.h"
#include "fuzz/sealed_fuzz_support.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <directory>\n", argv[0]);
    return 2;
  }
  const costore::SecretKey key = costore::fuzz::SealedFuzzKey();
  int written = 0;
  for (costore::Cipher cipher : {costore::Cipher::kXChaCha20Poly1305, costore::Cipher::kAes256Gcm}) {
    for (uint32_t chunk_size : {64u, 128u}) {
      for (size_t size : {size_t{0}, size_t{1}, size_t{chunk_size - 1}, size_t{chunk_size}, size_t{2 * chunk_size + 3}}) {
        const std::vector<uint8_t> plain = costore::fuzz::Plaintext(size);
        costore::SealedHeader header;
        header.cipher = cipher;
        header.chunk_size = chunk_size;
        header.digest = costore::Sha256::Of(std::as_bytes(std::span<const uint8_t>(plain)));
        std::unique_ptr<costore::ChunkCipher> sealer;
        if (!costore::ChunkCipher::Create(header, key, &sealer).ok()) continue;  // no AES here
        const auto encoded = costore::EncodeHeader(header);
        std::vector<uint8_t> file(encoded.begin(), encoded.end());
        const uint64_t chunks = size == 0 ? 1 : (size + chunk_size - 1) / chunk_size;
        for (uint64_t i = 0; i < chunks; ++i) {
          const size_t start = i * chunk_size;
          const size_t n = std::min<size_t>(chunk_size, size - start);
          std::vector<uint8_t> sealed(n + costore::sealed::kTagSize);
          sealer->Seal(i, i + 1 == chunks, std::span<const uint8_t>(plain.data() + start, n), sealed.data());
          file.insert(file.end(), sealed.begin(), sealed.end());
        }
        const std::string path = std::string(argv[1]) + "/" + std::string(costore::CipherName(cipher)) + "-" +
                                 std::to_string(chunk_size) + "-" + std::to_string(size);
        FILE* f = std::fopen(path.c_str(), "wb");
        if (f == nullptr || std::fwrite(file.data(), 1, file.size(), f) != file.size() || std::fclose(f) != 0) {
          std::perror(path.c_str());
          return 1;
        }
        ++written;
      }
    }
  }
  std::printf("%d seed files in %s\n", written, argv[1]);
  return 0;
}
