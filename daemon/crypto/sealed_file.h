// The format of a private file at rest ("sealed file"), specified in
// docs/private-format.md:
//
//   header (48 bytes) | chunk 0 | chunk 1 | ... | chunk n-1
//
// The plaintext is cut into chunks of `chunk_size` bytes (the last one may
// be shorter, and is empty only for an empty file). Each chunk is sealed
// with an AEAD under the file's own random data key: ciphertext || 16-byte
// tag. The nonce is the chunk index and a last-chunk flag; the additional
// data is the whole header (which names the plaintext's SHA-256) followed
// by the same index and flag. So every chunk authenticates the header,
// its own position and whether it ends the file: reordering, truncation,
// extension, a changed header byte, or a chunk from another file (another
// key, another digest) all fail authentication.
//
// A deterministic nonce is safe here because a data key seals exactly one
// file, and (index, last) never repeats within it.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "daemon/crypto/secret_key.h"
#include "daemon/engine/digest.h"
#include "daemon/engine/env.h"
#include "daemon/engine/status.h"

namespace costore {

enum class Cipher : uint8_t {
  kAes256Gcm = 1,          // libsodium crypto_aead_aes256gcm (AES-NI + PCLMUL)
  kXChaCha20Poly1305 = 2,  // libsodium crypto_aead_xchacha20poly1305_ietf
};

// "aes-256-gcm", "xchacha20-poly1305": as the catalog and the D-Bus
// contract write them.
std::string_view CipherName(Cipher cipher);
bool ParseCipherName(std::string_view name, Cipher* cipher);
// What new files are sealed with on this machine: AES-256-GCM where
// libsodium has it in hardware (crypto_aead_aes256gcm_is_available()),
// else XChaCha20-Poly1305.
Cipher PreferredCipher();

namespace sealed {

inline constexpr std::array<uint8_t, 8> kMagic = {'C', 'O', 'S', 'T', 'S', 'E', 'A', 'L'};
inline constexpr uint8_t kVersion = 1;
inline constexpr size_t kHeaderSize = 48;
inline constexpr size_t kTagSize = 16;
// Readers accept any power of two in [kMinChunkSize, kMaxChunkSize].
inline constexpr uint32_t kMinChunkSize = 64;
inline constexpr uint32_t kMaxChunkSize = uint32_t{1} << 24;  // 16 MiB
// What the writer uses; chosen by measurement (docs/private-format.md,
// "Chunk size"): 1 MiB.
inline constexpr uint32_t kDefaultChunkSize = uint32_t{1} << 20;

// Bytes on disk for a plaintext of `size` bytes.
uint64_t SealedSize(uint64_t size, uint32_t chunk_size);
// The plaintext size a sealed file of `sealed_size` bytes holds, as a
// decoder derives it from the length alone; false if no plaintext seals to
// that length (a chunk cut in the middle, an empty non-first last chunk).
bool PlaintextSize(uint64_t sealed_size, uint32_t chunk_size, uint64_t* size);

}  // namespace sealed

struct SealedHeader {
  uint8_t version = sealed::kVersion;
  Cipher cipher = Cipher::kXChaCha20Poly1305;
  uint32_t chunk_size = sealed::kDefaultChunkSize;
  Digest digest;  // SHA-256 of the whole plaintext
};

std::array<uint8_t, sealed::kHeaderSize> EncodeHeader(const SealedHeader& header);
// Checks magic, version, cipher, reserved bytes and chunk size; the
// message says which is wrong.
Status ParseHeader(std::span<const uint8_t> bytes, SealedHeader* header);

// The AEAD of one file: header and data key, with the key schedule
// computed once. Thread-compatible (const methods may run concurrently).
class ChunkCipher {
 public:
  enum class Backend {
    kLibsodium,  // the default
    kOpenSsl,    // AES-256-GCM only: to open files sealed elsewhere when
                 // libsodium lacks hardware AES here, and in tests to show
                 // that the format is plain AES-GCM that another library decodes
  };
  // InvalidArgument when the cipher cannot be used on this machine.
  static Status Create(const SealedHeader& header, const SecretKey& data_key,
                       std::unique_ptr<ChunkCipher>* out, Backend backend = Backend::kLibsodium);
  virtual ~ChunkCipher() = default;

  const SealedHeader& header() const { return header_; }
  // Seals chunk `index`: `out` receives plain.size() + kTagSize bytes.
  virtual void Seal(uint64_t index, bool last, std::span<const uint8_t> plain, uint8_t* out) const = 0;
  // Opens chunk `index`: on success `out` receives sealed.size() - kTagSize
  // bytes. False if the chunk does not authenticate; `out` is then wiped.
  virtual bool Open(uint64_t index, bool last, std::span<const uint8_t> sealed, uint8_t* out) const = 0;

 protected:
  explicit ChunkCipher(const SealedHeader& header);
  // The additional data of chunk `index`: header || LE64(index) || last.
  std::array<uint8_t, sealed::kHeaderSize + 9> AdditionalData(uint64_t index, bool last) const;
  // The nonce of chunk `index`: LE64(index) || last || zeros, `size` bytes.
  static void Nonce(uint64_t index, bool last, uint8_t* nonce, size_t size);

  SealedHeader header_;
  std::array<uint8_t, sealed::kHeaderSize> encoded_header_;
};

// A WritableFile that seals what is appended to it and writes the sealed
// bytes to `target`: the header first, then each chunk once the next byte
// shows it is not the last. Sync() seals the last chunk (so no Append may
// follow it) and then syncs `target`. Memory: two chunk buffers.
class SealingFile : public WritableFile {
 public:
  SealingFile(std::unique_ptr<WritableFile> target, std::unique_ptr<ChunkCipher> cipher);
  ~SealingFile() override;

  Status Append(std::span<const std::byte> data) override;
  Status Sync() override;
  Status Close() override;
  const std::string& path() const override { return target_->path(); }

  uint64_t plaintext_size() const { return plaintext_size_; }

 private:
  Status WriteHeaderOnce();
  Status SealPending(bool last);

  std::unique_ptr<WritableFile> target_;
  std::unique_ptr<ChunkCipher> cipher_;
  const uint32_t chunk_size_;
  std::unique_ptr<uint8_t[]> plain_;   // chunk_size_ bytes
  std::unique_ptr<uint8_t[]> sealed_;  // chunk_size_ + kTagSize bytes
  size_t filled_ = 0;                  // bytes of plain_ in use
  uint64_t next_index_ = 0;
  uint64_t plaintext_size_ = 0;
  bool header_written_ = false;
  bool finished_ = false;
};

// Reads a sealed file chunk by chunk. Every chunk is authenticated before
// any of its bytes is returned.
class SealedReader {
 public:
  struct Expect {
    Digest digest;
    uint64_t size = 0;
    Cipher cipher = Cipher::kXChaCha20Poly1305;
  };
  // `fd` is borrowed and read with pread(2). `what` names the file in
  // messages ("private file sha256:... (...)"). Checks the header against
  // `expect` and the file's length against the chunk layout before any
  // chunk is read: a damaged or mismatched file is an IOError naming it.
  static Status Open(int fd, const Expect& expect, const SecretKey& data_key, std::string what,
                     std::unique_ptr<SealedReader>* out,
                     ChunkCipher::Backend backend = ChunkCipher::Backend::kLibsodium);

  uint64_t size() const { return size_; }
  uint64_t chunk_count() const { return chunk_count_; }
  uint32_t chunk_size() const { return cipher_->header().chunk_size; }
  // Plaintext bytes in chunk `index`.
  size_t ChunkPlainSize(uint64_t index) const;

  // Reads, authenticates and decrypts chunk `index` into `out` (room for
  // chunk_size() bytes); *n is the plaintext length. A chunk that does not
  // authenticate is an IOError naming the file and the chunk, and `out`
  // holds nothing of it.
  Status ReadChunk(uint64_t index, uint8_t* out, size_t* n);
  // The same with the caller's buffer for the sealed bytes (room for
  // chunk_size() + kTagSize): callable from several threads at once.
  Status ReadChunkWith(uint64_t index, uint8_t* sealed_buffer, uint8_t* out, size_t* n) const;

 private:
  SealedReader() = default;
  int fd_ = -1;
  std::string what_;
  std::unique_ptr<ChunkCipher> cipher_;
  uint64_t size_ = 0;
  uint64_t chunk_count_ = 0;
  std::unique_ptr<uint8_t[]> sealed_;
};

}  // namespace costore
