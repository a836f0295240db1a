#include "daemon/crypto/sealed_file.h"

#include <openssl/evp.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>

namespace costore {
namespace {

void PutLe32(uint8_t* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out[i] = static_cast<uint8_t>(v >> (8 * i));
}
void PutLe64(uint8_t* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out[i] = static_cast<uint8_t>(v >> (8 * i));
}
uint32_t GetLe32(const uint8_t* in) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | in[i];
  return v;
}

bool ValidChunkSize(uint32_t size) {
  return size >= sealed::kMinChunkSize && size <= sealed::kMaxChunkSize && std::has_single_bit(size);
}

// --- libsodium AES-256-GCM -----------------------------------------------

class SodiumAesGcm final : public ChunkCipher {
 public:
  SodiumAesGcm(const SealedHeader& header, const SecretKey& key) : ChunkCipher(header) {
    // The expanded key schedule is as secret as the key: guarded memory.
    state_ = static_cast<crypto_aead_aes256gcm_state*>(sodium_malloc(sizeof(crypto_aead_aes256gcm_state)));
    if (state_ == nullptr) throw std::bad_alloc();
    crypto_aead_aes256gcm_beforenm(state_, key.data());
  }
  ~SodiumAesGcm() override { sodium_free(state_); }

  void Seal(uint64_t index, bool last, std::span<const uint8_t> plain, uint8_t* out) const override {
    uint8_t nonce[crypto_aead_aes256gcm_NPUBBYTES];
    Nonce(index, last, nonce, sizeof nonce);
    const auto ad = AdditionalData(index, last);
    unsigned long long out_len = 0;
    crypto_aead_aes256gcm_encrypt_afternm(out, &out_len, plain.data(), plain.size(), ad.data(), ad.size(),
                                          nullptr, nonce, state_);
  }

  bool Open(uint64_t index, bool last, std::span<const uint8_t> sealed, uint8_t* out) const override {
    if (sealed.size() < sealed::kTagSize) return false;
    uint8_t nonce[crypto_aead_aes256gcm_NPUBBYTES];
    Nonce(index, last, nonce, sizeof nonce);
    const auto ad = AdditionalData(index, last);
    unsigned long long out_len = 0;
    if (crypto_aead_aes256gcm_decrypt_afternm(out, &out_len, nullptr, sealed.data(), sealed.size(), ad.data(),
                                              ad.size(), nonce, state_) != 0) {
      sodium_memzero(out, sealed.size() - sealed::kTagSize);
      return false;
    }
    return true;
  }

 private:
  crypto_aead_aes256gcm_state* state_ = nullptr;
};

// --- libsodium XChaCha20-Poly1305 ----------------------------------------

class SodiumXChaCha final : public ChunkCipher {
 public:
  SodiumXChaCha(const SealedHeader& header, const SecretKey& key) : ChunkCipher(header) {
    key_ = SecretKey::FromBytes(key.span());
  }

  void Seal(uint64_t index, bool last, std::span<const uint8_t> plain, uint8_t* out) const override {
    uint8_t nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];
    Nonce(index, last, nonce, sizeof nonce);
    const auto ad = AdditionalData(index, last);
    unsigned long long out_len = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt(out, &out_len, plain.data(), plain.size(), ad.data(), ad.size(),
                                               nullptr, nonce, key_.data());
  }

  bool Open(uint64_t index, bool last, std::span<const uint8_t> sealed, uint8_t* out) const override {
    if (sealed.size() < sealed::kTagSize) return false;
    uint8_t nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];
    Nonce(index, last, nonce, sizeof nonce);
    const auto ad = AdditionalData(index, last);
    unsigned long long out_len = 0;
    // libsodium checks the tag before it decrypts anything.
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(out, &out_len, nullptr, sealed.data(), sealed.size(),
                                                   ad.data(), ad.size(), nonce, key_.data()) != 0) {
      sodium_memzero(out, sealed.size() - sealed::kTagSize);
      return false;
    }
    return true;
  }

 private:
  SecretKey key_;
};

// --- OpenSSL AES-256-GCM -------------------------------------------------

class OpenSslAesGcm final : public ChunkCipher {
 public:
  OpenSslAesGcm(const SealedHeader& header, const SecretKey& key) : ChunkCipher(header) {
    key_ = SecretKey::FromBytes(key.span());
  }

  void Seal(uint64_t index, bool last, std::span<const uint8_t> plain, uint8_t* out) const override {
    uint8_t nonce[12];
    Nonce(index, last, nonce, sizeof nonce);
    const auto ad = AdditionalData(index, last);
    EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
    int len = 0;
    bool ok = ctx != nullptr && EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), nullptr, key_.data(), nonce) == 1 &&
              EVP_EncryptUpdate(ctx, nullptr, &len, ad.data(), static_cast<int>(ad.size())) == 1 &&
              EVP_EncryptUpdate(ctx, out, &len, plain.data(), static_cast<int>(plain.size())) == 1 &&
              EVP_EncryptFinal_ex(ctx, out + len, &len) == 1 &&
              EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, sealed::kTagSize, out + plain.size()) == 1;
    EVP_CIPHER_CTX_free(ctx);
    if (!ok) throw std::runtime_error("OpenSSL AES-256-GCM failed");
  }

  bool Open(uint64_t index, bool last, std::span<const uint8_t> sealed, uint8_t* out) const override {
    if (sealed.size() < sealed::kTagSize) return false;
    const size_t plain_size = sealed.size() - sealed::kTagSize;
    uint8_t nonce[12];
    Nonce(index, last, nonce, sizeof nonce);
    const auto ad = AdditionalData(index, last);
    uint8_t tag[sealed::kTagSize];
    std::memcpy(tag, sealed.data() + plain_size, sizeof tag);
    EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
    int len = 0;
    bool ok = ctx != nullptr && EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), nullptr, key_.data(), nonce) == 1 &&
              EVP_DecryptUpdate(ctx, nullptr, &len, ad.data(), static_cast<int>(ad.size())) == 1 &&
              EVP_DecryptUpdate(ctx, out, &len, sealed.data(), static_cast<int>(plain_size)) == 1 &&
              EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, sizeof tag, tag) == 1 &&
              EVP_DecryptFinal_ex(ctx, out + len, &len) == 1;
    EVP_CIPHER_CTX_free(ctx);
    // OpenSSL decrypts before it checks the tag: wipe what it wrote.
    if (!ok) sodium_memzero(out, plain_size);
    return ok;
  }

 private:
  SecretKey key_;
};

}  // namespace

std::string_view CipherName(Cipher cipher) {
  switch (cipher) {
    case Cipher::kAes256Gcm: return "aes-256-gcm";
    case Cipher::kXChaCha20Poly1305: return "xchacha20-poly1305";
  }
  return "unknown";
}

bool ParseCipherName(std::string_view name, Cipher* cipher) {
  for (Cipher c : {Cipher::kAes256Gcm, Cipher::kXChaCha20Poly1305}) {
    if (name == CipherName(c)) {
      *cipher = c;
      return true;
    }
  }
  return false;
}

Cipher PreferredCipher() {
  EnsureSodium();
  return crypto_aead_aes256gcm_is_available() ? Cipher::kAes256Gcm : Cipher::kXChaCha20Poly1305;
}

uint64_t sealed::SealedSize(uint64_t size, uint32_t chunk_size) {
  const uint64_t chunks = size == 0 ? 1 : (size + chunk_size - 1) / chunk_size;
  return kHeaderSize + size + chunks * kTagSize;
}

bool sealed::PlaintextSize(uint64_t sealed_size, uint32_t chunk_size, uint64_t* size) {
  if (sealed_size < kHeaderSize + kTagSize) return false;
  const uint64_t body = sealed_size - kHeaderSize;
  const uint64_t full = uint64_t{chunk_size} + kTagSize;
  const uint64_t whole = body / full;
  const uint64_t rest = body % full;
  if (rest == 0) {
    *size = whole * chunk_size;  // the last chunk is full
    return true;
  }
  // A shorter last chunk: at least its tag, and empty only if it is the
  // only chunk (an empty file).
  if (rest < kTagSize || (rest == kTagSize && whole > 0)) return false;
  *size = whole * chunk_size + (rest - kTagSize);
  return true;
}

std::array<uint8_t, sealed::kHeaderSize> EncodeHeader(const SealedHeader& header) {
  std::array<uint8_t, sealed::kHeaderSize> out{};
  std::copy(sealed::kMagic.begin(), sealed::kMagic.end(), out.begin());
  out[8] = header.version;
  out[9] = static_cast<uint8_t>(header.cipher);
  // out[10], out[11]: reserved, zero
  PutLe32(out.data() + 12, header.chunk_size);
  std::copy(header.digest.bytes().begin(), header.digest.bytes().end(), out.begin() + 16);
  return out;
}

Status ParseHeader(std::span<const uint8_t> bytes, SealedHeader* header) {
  if (bytes.size() < sealed::kHeaderSize) {
    return Status::IOError("it is shorter than the " + std::to_string(sealed::kHeaderSize) + "-byte header");
  }
  if (!std::equal(sealed::kMagic.begin(), sealed::kMagic.end(), bytes.begin())) {
    return Status::IOError("it does not start with the sealed-file magic \"COSTSEAL\"");
  }
  if (bytes[8] != sealed::kVersion) {
    return Status::IOError("its format version is " + std::to_string(bytes[8]) + "; this costored reads version " +
                           std::to_string(sealed::kVersion));
  }
  SealedHeader out;
  out.version = bytes[8];
  if (bytes[9] != static_cast<uint8_t>(Cipher::kAes256Gcm) &&
      bytes[9] != static_cast<uint8_t>(Cipher::kXChaCha20Poly1305)) {
    return Status::IOError("its header names an unknown cipher (" + std::to_string(bytes[9]) + ")");
  }
  out.cipher = static_cast<Cipher>(bytes[9]);
  if (bytes[10] != 0 || bytes[11] != 0) return Status::IOError("its header's reserved bytes are not zero");
  out.chunk_size = GetLe32(bytes.data() + 12);
  if (!ValidChunkSize(out.chunk_size)) {
    return Status::IOError("its header's chunk size " + std::to_string(out.chunk_size) +
                           " is not a power of two between 64 bytes and 16 MiB");
  }
  std::array<uint8_t, Digest::kSize> digest{};
  std::copy(bytes.begin() + 16, bytes.begin() + 48, digest.begin());
  out.digest = Digest(digest);
  *header = out;
  return Status::OK();
}

// --- ChunkCipher -----------------------------------------------------------

ChunkCipher::ChunkCipher(const SealedHeader& header) : header_(header), encoded_header_(EncodeHeader(header)) {}

std::array<uint8_t, sealed::kHeaderSize + 9> ChunkCipher::AdditionalData(uint64_t index, bool last) const {
  std::array<uint8_t, sealed::kHeaderSize + 9> ad{};
  std::copy(encoded_header_.begin(), encoded_header_.end(), ad.begin());
  PutLe64(ad.data() + sealed::kHeaderSize, index);
  ad[sealed::kHeaderSize + 8] = last ? 1 : 0;
  return ad;
}

void ChunkCipher::Nonce(uint64_t index, bool last, uint8_t* nonce, size_t size) {
  std::memset(nonce, 0, size);
  PutLe64(nonce, index);
  nonce[8] = last ? 1 : 0;
}

Status ChunkCipher::Create(const SealedHeader& header, const SecretKey& data_key, std::unique_ptr<ChunkCipher>* out,
                           Backend backend) {
  EnsureSodium();
  if (!ValidChunkSize(header.chunk_size)) {
    return Status::InvalidArgument("chunk size " + std::to_string(header.chunk_size) +
                                   " is not a power of two between 64 bytes and 16 MiB");
  }
  switch (header.cipher) {
    case Cipher::kAes256Gcm:
      if (backend == Backend::kLibsodium && crypto_aead_aes256gcm_is_available()) {
        *out = std::make_unique<SodiumAesGcm>(header, data_key);
      } else {
        // OpenSSL has AES-GCM everywhere (in software where the CPU lacks
        // it), so a store sealed on one machine opens on any other.
        *out = std::make_unique<OpenSslAesGcm>(header, data_key);
      }
      return Status::OK();
    case Cipher::kXChaCha20Poly1305:
      if (backend == Backend::kOpenSsl) {
        return Status::InvalidArgument("the OpenSSL backend implements AES-256-GCM only");
      }
      *out = std::make_unique<SodiumXChaCha>(header, data_key);
      return Status::OK();
  }
  return Status::InvalidArgument("unknown cipher");
}

// --- SealingFile -------------------------------------------------------------

SealingFile::SealingFile(std::unique_ptr<WritableFile> target, std::unique_ptr<ChunkCipher> cipher)
    : target_(std::move(target)),
      cipher_(std::move(cipher)),
      chunk_size_(cipher_->header().chunk_size),
      plain_(std::make_unique_for_overwrite<uint8_t[]>(chunk_size_)),
      sealed_(std::make_unique_for_overwrite<uint8_t[]>(chunk_size_ + sealed::kTagSize)) {}

SealingFile::~SealingFile() {
  // The plaintext passed through here; do not leave it in freed memory.
  sodium_memzero(plain_.get(), chunk_size_);
}

Status SealingFile::WriteHeaderOnce() {
  if (header_written_) return Status::OK();
  const auto header = EncodeHeader(cipher_->header());
  Status s = target_->Append(std::as_bytes(std::span(header)));
  if (s.ok()) header_written_ = true;
  return s;
}

Status SealingFile::SealPending(bool last) {
  cipher_->Seal(next_index_, last, std::span<const uint8_t>(plain_.get(), filled_), sealed_.get());
  Status s = target_->Append(std::as_bytes(std::span(sealed_.get(), filled_ + sealed::kTagSize)));
  if (!s.ok()) return s;
  ++next_index_;
  filled_ = 0;
  return Status::OK();
}

Status SealingFile::Append(std::span<const std::byte> data) {
  if (finished_) return Status::InvalidArgument("sealed file " + path() + ": append after the last chunk");
  Status s = WriteHeaderOnce();
  if (!s.ok()) return s;
  while (!data.empty()) {
    // A full chunk followed by more bytes is not the last one.
    if (filled_ == chunk_size_) {
      s = SealPending(/*last=*/false);
      if (!s.ok()) return s;
    }
    const size_t n = std::min<size_t>(chunk_size_ - filled_, data.size());
    std::memcpy(plain_.get() + filled_, data.data(), n);
    filled_ += n;
    plaintext_size_ += n;
    data = data.subspan(n);
  }
  return Status::OK();
}

Status SealingFile::Sync() {
  if (!finished_) {
    Status s = WriteHeaderOnce();
    if (!s.ok()) return s;
    s = SealPending(/*last=*/true);  // empty only for an empty file
    if (!s.ok()) return s;
    finished_ = true;
  }
  return target_->Sync();
}

Status SealingFile::Close() { return target_->Close(); }

// --- SealedReader -------------------------------------------------------------

Status SealedReader::Open(int fd, const Expect& expect, const SecretKey& data_key, std::string what,
                          std::unique_ptr<SealedReader>* out, ChunkCipher::Backend backend) {
  auto damaged = [&](const std::string& problem) {
    return Status::IOError(what + " is damaged: " + problem + "; it cannot be decrypted");
  };
  uint8_t header_bytes[sealed::kHeaderSize];
  ssize_t got = 0;
  while (got < static_cast<ssize_t>(sizeof header_bytes)) {
    ssize_t n = ::pread(fd, header_bytes + got, sizeof header_bytes - static_cast<size_t>(got), got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::FromErrno("read " + what, errno);
    if (n == 0) break;
    got += n;
  }
  SealedHeader header;
  Status s = ParseHeader(std::span<const uint8_t>(header_bytes, static_cast<size_t>(got)), &header);
  if (!s.ok()) return damaged(s.message());
  if (header.digest != expect.digest) {
    return damaged("its header names " + header.digest.ToString() + ", not " + expect.digest.ToString());
  }
  if (header.cipher != expect.cipher) {
    return damaged("its header names the cipher " + std::string(CipherName(header.cipher)) +
                   " but the catalog says " + std::string(CipherName(expect.cipher)));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) return Status::FromErrno("stat " + what, errno);
  const uint64_t length = static_cast<uint64_t>(st.st_size);
  if (length != sealed::SealedSize(expect.size, header.chunk_size)) {
    return damaged("it holds " + std::to_string(length) + " bytes where a file of " + std::to_string(expect.size) +
                   " bytes sealed in chunks of " + std::to_string(header.chunk_size) + " takes " +
                   std::to_string(sealed::SealedSize(expect.size, header.chunk_size)) +
                   " (truncated or extended)");
  }
  std::unique_ptr<SealedReader> reader(new SealedReader());
  s = ChunkCipher::Create(header, data_key, &reader->cipher_, backend);
  if (!s.ok()) return damaged(s.message());
  reader->fd_ = fd;
  reader->what_ = std::move(what);
  reader->size_ = expect.size;
  reader->chunk_count_ = expect.size == 0 ? 1 : (expect.size + header.chunk_size - 1) / header.chunk_size;
  reader->sealed_ = std::make_unique_for_overwrite<uint8_t[]>(header.chunk_size + sealed::kTagSize);
  *out = std::move(reader);
  return Status::OK();
}

size_t SealedReader::ChunkPlainSize(uint64_t index) const {
  const uint64_t start = index * chunk_size();
  if (start >= size_) return 0;
  return static_cast<size_t>(std::min<uint64_t>(chunk_size(), size_ - start));
}

Status SealedReader::ReadChunk(uint64_t index, uint8_t* out, size_t* n) {
  return ReadChunkWith(index, sealed_.get(), out, n);
}

Status SealedReader::ReadChunkWith(uint64_t index, uint8_t* sealed_buffer, uint8_t* out, size_t* n) const {
  if (index >= chunk_count_) return Status::InvalidArgument(what_ + ": no chunk " + std::to_string(index));
  const size_t plain = ChunkPlainSize(index);
  const size_t want = plain + sealed::kTagSize;
  const uint64_t offset = sealed::kHeaderSize + index * (uint64_t{chunk_size()} + sealed::kTagSize);
  size_t got = 0;
  while (got < want) {
    ssize_t r = ::pread(fd_, sealed_buffer + got, want - got, static_cast<off_t>(offset + got));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Status::FromErrno("read " + what_, errno);
    if (r == 0) {
      return Status::IOError(what_ + " is damaged: it ends inside chunk " + std::to_string(index) +
                             " (truncated while being read)");
    }
    got += static_cast<size_t>(r);
  }
  const bool last = index + 1 == chunk_count_;
  if (!cipher_->Open(index, last, std::span<const uint8_t>(sealed_buffer, want), out)) {
    return Status::IOError(what_ + ": chunk " + std::to_string(index + 1) + " of " + std::to_string(chunk_count_) +
                           " failed authentication: the file was altered or damaged on disk, or belongs to "
                           "another entry; none of its bytes are handed out");
  }
  *n = plain;
  return Status::OK();
}

}  // namespace costore
