// The sealed-file format of private files: round trips at every size that
// matters, and every kind of tampering detected (docs/private-format.md).
#include "daemon/crypto/sealed_file.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sodium.h>
#include <sys/mman.h>
#include <unistd.h>

#include <optional>

#include "daemon/crypto/key_wrap.h"
#include "daemon/engine/sha256.h"
#include "tests/daemon/engine/test_util.h"

namespace costore {
namespace {

using ::testing::HasSubstr;

constexpr uint32_t kSmall = 64;  // the smallest chunk: many chunks from few bytes

class StringFile : public WritableFile {
 public:
  explicit StringFile(std::string* out) : out_(out) {}
  Status Append(std::span<const std::byte> data) override {
    out_->append(reinterpret_cast<const char*>(data.data()), data.size());
    return Status::OK();
  }
  Status Sync() override { return Status::OK(); }
  Status Close() override { return Status::OK(); }
  const std::string& path() const override { return path_; }

 private:
  std::string* out_;
  std::string path_ = "memory";
};

Digest DigestOf(const std::string& bytes) { return Sha256::Of(std::as_bytes(std::span(bytes.data(), bytes.size()))); }

SecretKey KeyFrom(uint8_t first) {
  std::array<uint8_t, 32> bytes{};
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(first + i);
  return SecretKey::FromBytes(bytes);
}

std::string Hex(const std::string& bytes) {
  std::string out(bytes.size() * 2 + 1, '\0');
  sodium_bin2hex(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
  out.pop_back();
  return out;
}

// Seals `plain` the way the daemon does: through SealingFile, appended in
// pieces of `piece` bytes.
std::string Seal(const std::string& plain, Cipher cipher, uint32_t chunk, const SecretKey& key,
                 std::optional<Digest> digest = std::nullopt, size_t piece = 7777) {
  SealedHeader header;
  header.cipher = cipher;
  header.chunk_size = chunk;
  header.digest = digest.value_or(DigestOf(plain));
  std::unique_ptr<ChunkCipher> chunk_cipher;
  Status s = ChunkCipher::Create(header, key, &chunk_cipher);
  EXPECT_TRUE(s.ok()) << s.ToString();
  std::string out;
  SealingFile file(std::make_unique<StringFile>(&out), std::move(chunk_cipher));
  for (size_t at = 0; at < plain.size(); at += piece) {
    const size_t n = std::min(piece, plain.size() - at);
    EXPECT_TRUE(file.Append(std::as_bytes(std::span(plain.data() + at, n))).ok());
  }
  EXPECT_TRUE(file.Sync().ok());
  EXPECT_TRUE(file.Close().ok());
  EXPECT_EQ(file.plaintext_size(), plain.size());
  return out;
}

struct Opened {
  Status status;
  std::string plain;
};

// Opens `sealed` as a decoder would. `size` is the plaintext size the
// catalog states; unset, it is derived from the length alone (as by a
// decoder that has only the file), so that the AEAD alone must catch
// truncation and extension. `trust_header`: take digest and cipher from
// the file's own header, as a decoder that has only the file would.
Opened Unseal(const std::string& sealed, Cipher cipher, const SecretKey& key, const Digest& digest,
              std::optional<uint64_t> size = std::nullopt, bool trust_header = false,
              ChunkCipher::Backend backend = ChunkCipher::Backend::kLibsodium) {
  Opened result;
  SealedReader::Expect expect{digest, 0, cipher};
  if (trust_header) {
    SealedHeader header;
    Status s = ParseHeader(std::span(reinterpret_cast<const uint8_t*>(sealed.data()), sealed.size()), &header);
    if (!s.ok()) return Opened{s, ""};
    expect.digest = header.digest;
    expect.cipher = header.cipher;
    if (!size) {
      uint64_t derived = 0;
      if (!sealed::PlaintextSize(sealed.size(), header.chunk_size, &derived)) {
        return Opened{Status::IOError("impossible length"), ""};
      }
      size = derived;
    }
  }
  if (!size) {
    uint64_t derived = 0;
    SealedHeader header;
    Status s = ParseHeader(std::span(reinterpret_cast<const uint8_t*>(sealed.data()), sealed.size()), &header);
    if (!s.ok()) return Opened{s, ""};
    if (!sealed::PlaintextSize(sealed.size(), header.chunk_size, &derived)) {
      return Opened{Status::IOError("impossible length"), ""};
    }
    size = derived;
  }
  expect.size = *size;
  int fd = memfd_create("sealed-test", MFD_CLOEXEC);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(write(fd, sealed.data(), sealed.size()), static_cast<ssize_t>(sealed.size()));
  std::unique_ptr<SealedReader> reader;
  result.status = SealedReader::Open(fd, expect, key, "private file under test", &reader, backend);
  if (result.status.ok()) {
    std::vector<uint8_t> buffer(reader->chunk_size());
    for (uint64_t i = 0; i < reader->chunk_count(); ++i) {
      size_t n = 0;
      std::fill(buffer.begin(), buffer.end(), 0xAA);
      result.status = reader->ReadChunk(i, buffer.data(), &n);
      if (!result.status.ok()) {
        // Nothing of a chunk that failed is left in the caller's buffer.
        const size_t plain = reader->ChunkPlainSize(i);
        EXPECT_TRUE(std::all_of(buffer.begin(), buffer.begin() + plain, [](uint8_t b) { return b == 0; }))
            << "chunk " << i << " leaked unauthenticated bytes";
        break;
      }
      result.plain.append(reinterpret_cast<const char*>(buffer.data()), n);
    }
  }
  close(fd);
  if (!result.status.ok()) result.plain.clear();
  return result;
}

class SealedFileTest : public ::testing::TestWithParam<Cipher> {
 protected:
  Cipher cipher() const { return GetParam(); }
  SecretKey key_ = SecretKey::Random();
};

std::string CipherTestName(const ::testing::TestParamInfo<Cipher>& param) {
  return param.param == Cipher::kAes256Gcm ? "Aes256Gcm" : "XChaCha20Poly1305";
}

INSTANTIATE_TEST_SUITE_P(Ciphers, SealedFileTest,
                         ::testing::Values(Cipher::kAes256Gcm, Cipher::kXChaCha20Poly1305), CipherTestName);

// --- round trips ---------------------------------------------------------------

TEST_P(SealedFileTest, RoundTripsEverySizeThatMattersWithSmallChunks) {
  const uint32_t c = kSmall;
  for (size_t size : {size_t{0}, size_t{1}, size_t{c - 1}, size_t{c}, size_t{c + 1}, size_t{2 * c},
                      size_t{37 * c + 13}, size_t{100 * c}}) {
    SCOPED_TRACE("size " + std::to_string(size));
    const std::string plain = test::RandomBytes(size, static_cast<uint32_t>(size) + 1);
    for (size_t piece : {size_t{1}, size_t{c}, size_t{4096}}) {
      const std::string sealed = Seal(plain, cipher(), c, key_, std::nullopt, piece);
      EXPECT_EQ(sealed.size(), sealed::SealedSize(size, c));
      uint64_t derived = 0;
      ASSERT_TRUE(sealed::PlaintextSize(sealed.size(), c, &derived));
      EXPECT_EQ(derived, size);
      Opened opened = Unseal(sealed, cipher(), key_, DigestOf(plain), size);
      ASSERT_TRUE(opened.status.ok()) << opened.status.ToString();
      EXPECT_EQ(opened.plain, plain);
    }
  }
}

TEST_P(SealedFileTest, RoundTripsWithTheDefaultChunkSize) {
  const uint32_t c = sealed::kDefaultChunkSize;
  for (size_t size : {size_t{0}, size_t{1}, size_t{c - 1}, size_t{c}, size_t{c + 1}, size_t{5 * c + 12345}}) {
    SCOPED_TRACE("size " + std::to_string(size));
    const std::string plain = test::RandomBytes(size, 7);
    const std::string sealed = Seal(plain, cipher(), c, key_, std::nullopt, 1 << 20);
    EXPECT_EQ(sealed.size(), sealed::SealedSize(size, c));
    Opened opened = Unseal(sealed, cipher(), key_, DigestOf(plain), size);
    ASSERT_TRUE(opened.status.ok()) << opened.status.ToString();
    EXPECT_TRUE(opened.plain == plain);
  }
}

TEST_P(SealedFileTest, SealingTheSameBytesTwiceUsesUnrelatedKeys) {
  const std::string plain = test::RandomBytes(1000, 3);
  const std::string a = Seal(plain, cipher(), kSmall, SecretKey::Random());
  const std::string b = Seal(plain, cipher(), kSmall, SecretKey::Random());
  EXPECT_EQ(a.substr(0, sealed::kHeaderSize), b.substr(0, sealed::kHeaderSize));  // same header
  EXPECT_NE(a.substr(sealed::kHeaderSize), b.substr(sealed::kHeaderSize));
  EXPECT_EQ(a.find(plain.substr(0, 32)), std::string::npos);  // no plaintext on disk
}

TEST_P(SealedFileTest, WrongKeyIsDetectedAtTheFirstChunk) {
  const std::string plain = test::RandomBytes(300, 4);
  const std::string sealed = Seal(plain, cipher(), kSmall, key_);
  Opened opened = Unseal(sealed, cipher(), SecretKey::Random(), DigestOf(plain), plain.size());
  EXPECT_EQ(opened.status.code(), Code::kIOError);
  EXPECT_THAT(opened.status.message(), HasSubstr("private file under test: chunk 1 of 5 failed authentication"));
  EXPECT_TRUE(opened.plain.empty());
}

// --- tampering ---------------------------------------------------------------

TEST_P(SealedFileTest, EveryHeaderByteIsAuthenticated) {
  const std::string plain = test::RandomBytes(3 * kSmall + 5, 5);
  const Digest digest = DigestOf(plain);
  const std::string sealed = Seal(plain, cipher(), kSmall, key_);
  for (size_t i = 0; i < sealed::kHeaderSize; ++i) {
    for (uint8_t flip : {uint8_t{0x01}, uint8_t{0x80}}) {
      std::string bad = sealed;
      bad[i] = static_cast<char>(bad[i] ^ flip);
      SCOPED_TRACE("header byte " + std::to_string(i) + " ^ " + std::to_string(flip));
      // Against what the catalog says ...
      Opened opened = Unseal(bad, cipher(), key_, digest, plain.size());
      EXPECT_FALSE(opened.status.ok());
      EXPECT_TRUE(opened.plain.empty());
      // ... and by a decoder that believes the header: the AEAD catches it.
      Opened trusting = Unseal(bad, cipher(), key_, digest, std::nullopt, /*trust_header=*/true);
      EXPECT_FALSE(trusting.status.ok());
      EXPECT_TRUE(trusting.plain.empty());
    }
  }
}

TEST_P(SealedFileTest, EveryChunkByteIsAuthenticated) {
  const std::string plain = test::RandomBytes(3 * kSmall + 5, 6);  // 4 chunks, the last short
  const Digest digest = DigestOf(plain);
  const std::string sealed = Seal(plain, cipher(), kSmall, key_);
  for (size_t i = sealed::kHeaderSize; i < sealed.size(); ++i) {
    std::string bad = sealed;
    bad[i] = static_cast<char>(bad[i] ^ 0x01);
    const size_t chunk = (i - sealed::kHeaderSize) / (kSmall + sealed::kTagSize);
    Opened opened = Unseal(bad, cipher(), key_, digest, plain.size());
    ASSERT_EQ(opened.status.code(), Code::kIOError) << "byte " << i;
    EXPECT_THAT(opened.status.message(),
                HasSubstr("chunk " + std::to_string(chunk + 1) + " of 4 failed authentication"));
    EXPECT_TRUE(opened.plain.empty());
  }
}

TEST_P(SealedFileTest, ReorderedChunksAreDetected) {
  const std::string plain = test::RandomBytes(4 * kSmall, 7);  // 4 full chunks
  const std::string sealed = Seal(plain, cipher(), kSmall, key_);
  const size_t len = kSmall + sealed::kTagSize;
  auto chunk = [&](size_t i) { return sealed.substr(sealed::kHeaderSize + i * len, len); };
  const std::string head = sealed.substr(0, sealed::kHeaderSize);
  for (auto order : std::vector<std::vector<size_t>>{{1, 0, 2, 3}, {0, 2, 1, 3}, {0, 1, 3, 2}, {3, 2, 1, 0}}) {
    std::string bad = head;
    for (size_t i : order) bad += chunk(i);
    Opened opened = Unseal(bad, cipher(), key_, DigestOf(plain), plain.size());
    EXPECT_EQ(opened.status.code(), Code::kIOError);
    EXPECT_TRUE(opened.plain.empty());
  }
}

TEST_P(SealedFileTest, TruncationIsDetectedAtEveryLength) {
  const std::string plain = test::RandomBytes(3 * kSmall + 5, 8);
  const std::string sealed = Seal(plain, cipher(), kSmall, key_);
  for (size_t keep = 0; keep < sealed.size(); ++keep) {
    SCOPED_TRACE("kept " + std::to_string(keep) + " bytes");
    const std::string bad = sealed.substr(0, keep);
    // The catalog's size gives it away at once ...
    EXPECT_FALSE(Unseal(bad, cipher(), key_, DigestOf(plain), plain.size()).status.ok());
    // ... and a decoder that has only the file still refuses: at a chunk
    // boundary, the new last chunk was sealed as "not last".
    Opened opened = Unseal(bad, cipher(), key_, DigestOf(plain));
    EXPECT_FALSE(opened.status.ok());
    EXPECT_TRUE(opened.plain.empty());
  }
}

TEST_P(SealedFileTest, ExtensionIsDetected) {
  const std::string plain = test::RandomBytes(2 * kSmall, 9);  // 2 full chunks
  const std::string sealed = Seal(plain, cipher(), kSmall, key_);
  const size_t len = kSmall + sealed::kTagSize;
  const std::string last = sealed.substr(sealed.size() - len);
  // Another file sealed under the same key with one chunk more: its chunks
  // 0 and 1 are "not last", so they cannot end this file, and its chunk 2
  // cannot follow this file's last chunk.
  const std::string longer = Seal(plain + test::RandomBytes(kSmall, 10), cipher(), kSmall, key_, DigestOf(plain));
  for (const std::string& bad :
       {sealed + last, sealed + std::string(len, '\0'), sealed + std::string(sealed::kTagSize, 'x'), sealed + "x",
        sealed + longer.substr(sealed::kHeaderSize + 2 * len)}) {
    Opened opened = Unseal(bad, cipher(), key_, DigestOf(plain));
    EXPECT_FALSE(opened.status.ok()) << bad.size();
    EXPECT_TRUE(opened.plain.empty());
    EXPECT_FALSE(Unseal(bad, cipher(), key_, DigestOf(plain), plain.size()).status.ok());
  }
}

TEST_P(SealedFileTest, ChunksSwappedBetweenFilesAreDetected) {
  const std::string a_plain = test::RandomBytes(3 * kSmall, 11);
  const std::string b_plain = test::RandomBytes(3 * kSmall, 12);
  const size_t len = kSmall + sealed::kTagSize;
  const SecretKey b_key = SecretKey::Random();
  const std::string a = Seal(a_plain, cipher(), kSmall, key_);
  // Another file under its own key (as always), and, to show the digest
  // alone also binds, another file under the same key.
  for (const std::string& b : {Seal(b_plain, cipher(), kSmall, b_key), Seal(b_plain, cipher(), kSmall, key_)}) {
    for (size_t i = 0; i < 3; ++i) {
      std::string bad = a;
      bad.replace(sealed::kHeaderSize + i * len, len, b.substr(sealed::kHeaderSize + i * len, len));
      Opened opened = Unseal(bad, cipher(), key_, DigestOf(a_plain), a_plain.size());
      EXPECT_EQ(opened.status.code(), Code::kIOError) << "chunk " << i;
      EXPECT_TRUE(opened.plain.empty());
    }
  }
  // Same bytes, same key, another digest in the header: nothing carries over.
  const std::string c = Seal(a_plain, cipher(), kSmall, key_, DigestOf(b_plain));
  std::string bad = a;
  bad.replace(sealed::kHeaderSize, len, c.substr(sealed::kHeaderSize, len));
  EXPECT_FALSE(Unseal(bad, cipher(), key_, DigestOf(a_plain), a_plain.size()).status.ok());
}

TEST_P(SealedFileTest, AFileUnderAnotherDigestIsRefusedBeforeAnyChunk) {
  const std::string plain = test::RandomBytes(100, 13);
  const std::string sealed = Seal(plain, cipher(), kSmall, key_);
  Opened opened = Unseal(sealed, cipher(), key_, DigestOf("other"), plain.size());
  EXPECT_EQ(opened.status.code(), Code::kIOError);
  EXPECT_THAT(opened.status.message(), HasSubstr("its header names " + DigestOf(plain).ToString()));
}

// --- header --------------------------------------------------------------------

TEST(SealedHeaderTest, ParseSaysWhatIsWrong) {
  SealedHeader header;
  header.cipher = Cipher::kXChaCha20Poly1305;
  header.chunk_size = 1 << 16;
  header.digest = DigestOf("x");
  auto good = EncodeHeader(header);
  SealedHeader parsed;
  ASSERT_TRUE(ParseHeader(good, &parsed).ok());
  EXPECT_EQ(parsed.chunk_size, 1u << 16);
  EXPECT_EQ(parsed.cipher, Cipher::kXChaCha20Poly1305);
  EXPECT_EQ(parsed.digest, header.digest);

  auto with = [&](size_t i, uint8_t v) {
    auto bytes = good;
    bytes[i] = v;
    return ParseHeader(bytes, &parsed).message();
  };
  EXPECT_THAT(with(0, 'X'), HasSubstr("magic"));
  EXPECT_THAT(with(8, 2), HasSubstr("format version is 2"));
  EXPECT_THAT(with(9, 7), HasSubstr("unknown cipher (7)"));
  EXPECT_THAT(with(10, 1), HasSubstr("reserved"));
  EXPECT_THAT(with(12, 1), HasSubstr("chunk size 65537 is not a power of two"));
  EXPECT_THAT(ParseHeader(std::span(good.data(), 47), &parsed).message(), HasSubstr("shorter than the 48-byte"));
}

TEST(SealedHeaderTest, ChunkSizesOutsideTheRangeAreRefused) {
  for (uint32_t size : {0u, 32u, 100u, (1u << 24) + 1, 1u << 25}) {
    SealedHeader header;
    header.chunk_size = size;
    std::unique_ptr<ChunkCipher> cipher;
    EXPECT_EQ(ChunkCipher::Create(header, SecretKey::Random(), &cipher).code(), Code::kInvalidArgument) << size;
  }
}

TEST(SealedLayoutTest, PlaintextSizeFromLength) {
  uint64_t size = 0;
  EXPECT_FALSE(sealed::PlaintextSize(47, 64, &size));
  EXPECT_FALSE(sealed::PlaintextSize(48 + 15, 64, &size));
  ASSERT_TRUE(sealed::PlaintextSize(48 + 16, 64, &size));
  EXPECT_EQ(size, 0u);
  ASSERT_TRUE(sealed::PlaintextSize(48 + 80, 64, &size));
  EXPECT_EQ(size, 64u);
  EXPECT_FALSE(sealed::PlaintextSize(48 + 80 + 16, 64, &size));  // an empty chunk after a full one
  ASSERT_TRUE(sealed::PlaintextSize(48 + 80 + 17, 64, &size));
  EXPECT_EQ(size, 65u);
}

// --- interoperability and test vectors -----------------------------------------

TEST(SealedInteropTest, OpenSslDecodesWhatLibsodiumSealsAndBack) {
  if (PreferredCipher() != Cipher::kAes256Gcm) GTEST_SKIP() << "no AES-NI: libsodium has no AES-256-GCM here";
  const SecretKey key = SecretKey::Random();
  const std::string plain = test::RandomBytes(5 * kSmall + 3, 14);
  const std::string sealed = Seal(plain, Cipher::kAes256Gcm, kSmall, key);
  Opened opened = Unseal(sealed, Cipher::kAes256Gcm, key, DigestOf(plain), plain.size(), false,
                         ChunkCipher::Backend::kOpenSsl);
  ASSERT_TRUE(opened.status.ok()) << opened.status.ToString();
  EXPECT_EQ(opened.plain, plain);
  // Tampering is caught by OpenSSL too, and what it decrypted is wiped.
  std::string bad = sealed;
  bad[sealed::kHeaderSize + 3] ^= 1;
  EXPECT_FALSE(Unseal(bad, Cipher::kAes256Gcm, key, DigestOf(plain), plain.size(), false,
                      ChunkCipher::Backend::kOpenSsl)
                   .status.ok());
}

// The worked example of docs/private-format.md: key 00 01 .. 1f, chunk size
// 64, the 100 bytes "costore test vector, " repeated and cut. Sealing is
// deterministic given the key (nonces come from the chunk index), so these
// are exact.
std::string ExamplePlaintext() {
  std::string text;
  while (text.size() < 100) text += "costore test vector, ";
  return text.substr(0, 100);
}

TEST(SealedVectorTest, WorkedExampleAes256Gcm) {
  // Without AES-NI, libsodium has no AES-GCM and OpenSSL seals instead:
  // the same bytes either way.
  const std::string sealed = Seal(ExamplePlaintext(), Cipher::kAes256Gcm, 64, KeyFrom(0));
  EXPECT_EQ(Hex(sealed),
            "434f53545345414c0101000040000000881ffabfbb12b583e3e11155a6590eb6094f69448848992f2d7a93e372d571c0"
            "6dd3c6aada5ee69d7ccdda41385af4faa62c247f08e20f5cf4f1c1e6e58b38253a7f90d94986d7741fe3129ab2ba063c"
            "cc2735830a0566d335d54b49384c6e876eff007b2abe6891cff10410f0dca4df31264dad1e12a36ff4106f220217fb6a"
            "2a83f891e9f61b161115cbcd8944724e57298ee62cef9f10b18e5a0903f5bd9ec84302b9");
}

TEST(SealedVectorTest, WorkedExampleXChaCha20Poly1305) {
  const std::string sealed = Seal(ExamplePlaintext(), Cipher::kXChaCha20Poly1305, 64, KeyFrom(0));
  EXPECT_EQ(Hex(sealed),
            "434f53545345414c0102000040000000881ffabfbb12b583e3e11155a6590eb6094f69448848992f2d7a93e372d571c0"
            "f669ffb383fa803962eb0c4dcc605b8948d3dfbf5af32278bf82e738f7927f4212aa16dd5a363582f3dfccbb2079fda1"
            "2c63a0dcdcd4d87c95401f3c5938a33addfc4c0659eca15623890758272b77fb8d2d253180bfb6ff6f1939cd0ad2ac85"
            "ff4d615c04ae305ecab67892d04dcc626374a393292d7e9c65ef9b599fdee6845a716714");
}

TEST(SealedVectorTest, WorkedExampleKeyWrap) {
  std::array<uint8_t, 24> nonce{};
  for (size_t i = 0; i < nonce.size(); ++i) nonce[i] = static_cast<uint8_t>(0x40 + i);
  const std::string wrapped = WrapDataKey(KeyFrom(0x80), 1, DigestOf(ExamplePlaintext()), KeyFrom(0), &nonce);
  EXPECT_EQ(Hex(wrapped), "01404142434445464748494a4b4c4d4e4f5051525354555657f10d71f75ff5f25df31b7dd8faa3935a2256607d1151"
            "8afbd2a3ef175e4813d77d5f8b5cb13e9062bb41f37f10c946e5");
}

// --- key wrapping ----------------------------------------------------------------

TEST(KeyWrapTest, RoundTripsAndBindsDigestAndVersion) {
  const SecretKey master = SecretKey::Random();
  const SecretKey data = SecretKey::Random();
  const Digest digest = DigestOf("a");
  const std::string wrapped = WrapDataKey(master, 3, digest, data);
  ASSERT_EQ(wrapped.size(), kWrappedKeySize);
  EXPECT_NE(WrapDataKey(master, 3, digest, data), wrapped);  // a random nonce each time

  SecretKey back;
  ASSERT_TRUE(UnwrapDataKey(master, 3, digest, wrapped, &back).ok());
  EXPECT_TRUE(back.Equals(data));

  EXPECT_THAT(UnwrapDataKey(master, 4, digest, wrapped, &back).message(),
              HasSubstr("does not unwrap under master key version 4"));
  EXPECT_FALSE(UnwrapDataKey(master, 3, DigestOf("b"), wrapped, &back).ok());
  EXPECT_FALSE(UnwrapDataKey(SecretKey::Random(), 3, digest, wrapped, &back).ok());
  for (size_t i = 0; i < wrapped.size(); ++i) {
    std::string bad = wrapped;
    bad[i] ^= 0x20;
    EXPECT_FALSE(UnwrapDataKey(master, 3, digest, bad, &back).ok()) << "byte " << i;
  }
  EXPECT_THAT(UnwrapDataKey(master, 3, digest, wrapped.substr(1), &back).message(), HasSubstr("malformed"));
}

}  // namespace
}  // namespace costore
