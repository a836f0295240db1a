// client_test_support.h: what the tests of the C++ API that run through
// tests/support/with-costored (client_test.cc, client_verify_gc_test.cc)
// share: test data and its digest, reading a descriptor, catching the
// costore::client::Error of a call, and scratch files in COSTORE_TEST_DIR.
// Only the public <costore/costore.hpp>, gtest and OpenSSL: these tests use
// libcostore as an outside program would. A test brings it all in, with
// costore::client's Client, Error and ErrorCode, by
// `using namespace costore::client_test;`.
#pragma once

#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <costore/costore.hpp>

namespace costore::client_test {

using client::Client;
using client::Error;
using client::ErrorCode;

// "sha256:<hex>" of `data`.
inline std::string Sha256(const std::vector<std::byte>& data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(data.data(), data.size(), digest, &length, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string text = "sha256:";
  for (unsigned int i = 0; i < length; ++i) {
    text += kHex[digest[i] >> 4];
    text += kHex[digest[i] & 0xf];
  }
  return text;
}

// Deterministic pseudo-random bytes, different for each seed.
inline std::vector<std::byte> Bytes(size_t size, uint32_t seed) {
  std::mt19937 generator(seed);
  std::vector<std::byte> data(size);
  for (auto& byte : data) byte = static_cast<std::byte>(generator() & 0xff);
  return data;
}

// Every byte of `fd` from where it is.
inline std::vector<std::byte> ReadAll(int fd) {
  std::vector<std::byte> data;
  std::array<std::byte, 1 << 16> buffer;
  for (;;) {
    ssize_t got = ::read(fd, buffer.data(), buffer.size());
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    data.insert(data.end(), buffer.begin(), buffer.begin() + got);
  }
  return data;
}

// Calls `fn` and returns the Error it throws (fails the test if none).
template <typename Fn>
Error ErrorOf(Fn&& fn) {
  try {
    fn();
  } catch (const Error& error) {
    return error;
  }
  ADD_FAILURE() << "no costore::client::Error was thrown";
  return Error(ErrorCode::kFailed, "no error");
}

// A file `name` in the scratch directory (COSTORE_TEST_DIR, else /tmp),
// holding `data`; returns its path.
inline std::string WriteScratch(const std::string& name, const std::vector<std::byte>& data) {
  const char* dir = std::getenv("COSTORE_TEST_DIR");
  std::string path = std::string(dir ? dir : "/tmp") + "/" + name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
  return path;
}

}  // namespace costore::client_test
