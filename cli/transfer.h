// Moving bytes locally: hashing, spooling stdin, copying descriptors,
// writing an output file atomically.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include <costore/costore.hpp>

namespace costore::cli {

// Called with the number of bytes done so far.
using ByteProgress = std::function<void(uint64_t done)>;

struct Hashed {
  std::string digest;  // "sha256:<64 lowercase hex>"
  uint64_t size = 0;
};

// SHA-256 (OpenSSL EVP) of a regular file's bytes from `offset` to its end,
// read with pread(2): the file offset does not move.
Hashed HashFile(int fd, uint64_t offset, const ByteProgress& progress);

// Copies `in` to its end into an unnamed temporary file in $TMPDIR (or
// /tmp), hashing as it goes. The returned descriptor is at offset 0.
struct Spooled {
  client::UniqueFd fd;
  Hashed hashed;
};
Spooled SpoolAndHash(int in, const ByteProgress& progress);

// Copies `in` from its offset to its end into `out`, with
// copy_file_range(2) or sendfile(2) where the kernel allows, read/write
// otherwise. Returns the number of bytes copied.
uint64_t CopyAll(int in, int out, const ByteProgress& progress);

// A file written under a temporary name in the directory of `path` and
// renamed over `path` by Commit(); removed if never committed.
class OutputFile {
 public:
  explicit OutputFile(std::string path);
  ~OutputFile();
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;

  int fd() const { return fd_.get(); }
  void Commit();

 private:
  std::string path_;
  std::string temporary_path_;
  client::UniqueFd fd_;
};

// "cannot <what>: <strerror(errno)>" as a local I/O error.
[[noreturn]] void ThrowSystemError(const std::string& what, int err);

}  // namespace costore::cli
