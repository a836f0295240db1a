#include "daemon/engine/sha256.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace costore {
namespace {

std::span<const std::byte> Bytes(std::string_view text) {
  return std::as_bytes(std::span<const char>(text.data(), text.size()));
}

std::string HexOf(std::string_view text) { return Sha256::Of(Bytes(text)).hex(); }

// FIPS 180-2 / NIST CAVS vectors.
TEST(Sha256Test, KnownVectors) {
  EXPECT_EQ(HexOf(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(HexOf("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(HexOf("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(HexOf(std::string(1'000'000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256Test, ByteAtATimeEqualsOneShot) {
  std::string data(100'000, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 31 % 251);
  Sha256 hasher;
  for (char c : data) hasher.Update(Bytes(std::string_view(&c, 1)));
  EXPECT_EQ(hasher.Finish(), Sha256::Of(Bytes(data)));
}

TEST(Sha256Test, NothingHashedIsTheEmptyDigest) {
  Sha256 hasher;
  hasher.Update({});
  EXPECT_EQ(hasher.Finish().ToString(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(Sha256Test, ChunkedUpdatesEqualOneShot) {
  std::mt19937 gen(42);
  std::string data(3 * 1024 * 1024 + 17, '\0');
  for (char& c : data) c = static_cast<char>(gen() & 0xff);
  const Digest one_shot = Sha256::Of(Bytes(data));

  // Chunk sizes around the 64-byte block boundary, and a large odd one.
  for (size_t chunk : {63u, 64u, 65u, 4096u, 1000003u}) {
    Sha256 hasher;
    for (size_t pos = 0; pos < data.size(); pos += chunk) {
      hasher.Update(Bytes(std::string_view(data).substr(pos, chunk)));
    }
    EXPECT_EQ(hasher.Finish(), one_shot) << "chunk " << chunk;
  }
  // Random chunk sizes, empty ones included.
  Sha256 hasher;
  std::uniform_int_distribution<size_t> size(0, 200'000);
  for (size_t pos = 0; pos < data.size();) {
    size_t n = std::min(size(gen), data.size() - pos);
    hasher.Update(Bytes(std::string_view(data).substr(pos, n)));
    pos += n;
  }
  EXPECT_EQ(hasher.Finish(), one_shot);
}

TEST(Sha256Test, IndependentHashersDoNotInterfere) {
  Sha256 a, b;
  a.Update(Bytes("ab"));
  b.Update(Bytes("xyz"));
  a.Update(Bytes("c"));
  EXPECT_EQ(a.Finish().hex(), HexOf("abc"));
  EXPECT_EQ(b.Finish().hex(), HexOf("xyz"));
}

}  // namespace
}  // namespace costore
