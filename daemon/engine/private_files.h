// Handing out the plaintext of a private file: a sealed memfd holding all
// of it, or a pipe a worker fills chunk by chunk as the caller reads.
// Either way every chunk is authenticated before any of its bytes leave.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "daemon/crypto/sealed_file.h"
#include "daemon/engine/principal.h"
#include "daemon/engine/status.h"

namespace costore {

// The owner's part of a private file's name: the first 16 bytes of
// SHA-256("costore/owner/1" 0x00 app 0x00 origin), as 32 lowercase hex
// digits. Two principals storing the same digest privately get two files.
std::string OwnerTag(const Principal& owner);

// Decrypts the whole file into a new memfd (several threads for a large
// file), then seals it (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE |
// F_SEAL_SEAL) so that nobody can change what the caller reads. A file too
// large for memory is refused with NoSpace, never a crash. On a chunk that
// fails authentication the memfd is dropped and the IOError names the
// file. *fd is owned by the caller.
Status UnsealToMemfd(SealedReader* reader, const std::string& memfd_name, int* fd);

// Streams a sealed file into a pipe. Prepare authenticates the first chunk
// before the caller gets the pipe, so a wrong key or a damaged header is a
// proper error; Pump then writes the rest. If a later chunk fails, the
// pipe is closed early (the caller sees fewer bytes than the size it was
// told) and the error is logged, naming the file.
class PrivateStream {
 public:
  // Takes ownership of `file_fd` (the sealed file) and `reader` (reading it).
  PrivateStream(int file_fd, std::unique_ptr<SealedReader> reader, std::string what);
  ~PrivateStream();
  PrivateStream(const PrivateStream&) = delete;
  PrivateStream& operator=(const PrivateStream&) = delete;

  // *read_fd (owned by the caller) is the pipe's read end.
  Status Prepare(int* read_fd);
  // Writes every chunk, waiting for the reader; stops when the reader
  // closes its end, reads nothing for `idle_timeout_ms`, or `cancelled`
  // turns true. Returns how it ended.
  Status Pump(const std::atomic<bool>* cancelled, int idle_timeout_ms);

 private:
  Status WriteAll(const uint8_t* data, size_t size, const std::atomic<bool>* cancelled, int idle_timeout_ms);

  int file_fd_;
  std::unique_ptr<SealedReader> reader_;
  std::string what_;
  int write_fd_ = -1;
  std::unique_ptr<uint8_t[]> plain_;
  size_t first_size_ = 0;  // chunk 0, authenticated by Prepare
};

}  // namespace costore
