// Helpers shared by the Engine tests (engine_test, private_engine_test):
// storing bytes as a client does, through a pipe.
#pragma once

#include <unistd.h>

#include <span>
#include <string>

#include "daemon/engine/engine.h"
#include "daemon/engine/sha256.h"
#include "tests/daemon/engine/test_util.h"

namespace costore::test {

// "sha256:<hex>" of `bytes`.
inline std::string DigestText(const std::string& bytes) {
  return Sha256::Of(std::as_bytes(std::span(bytes.data(), bytes.size()))).ToString();
}

// Stores `bytes` through a pipe; `request` says the rest (size, name,
// private). `info` may be null.
inline Status StoreBytes(Engine* engine, const Principal& who, const std::string& bytes, StoreRequest request,
                         FileInfo* info) {
  request.digest = DigestText(bytes);
  request.source_fd = PipeFrom(bytes);
  FileInfo ignored;
  Status s = engine->Store(who, request, info ? info : &ignored);
  close(request.source_fd);
  return s;
}

}  // namespace costore::test
