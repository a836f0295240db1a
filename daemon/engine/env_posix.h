// The POSIX WritableFile behind Env::Default(), exposed so that tests can
// set how often it flushes early and make a flush fail.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <memory>
#include <string>

#include "daemon/engine/env.h"

namespace costore {

struct PosixFileOptions {
  // What is slow in the final fsync of a large file is the flush of the
  // disk's write cache, and its cost grows with the bytes written since the
  // previous flush (the virtio disk of a VM: 0.04 s after 64 MiB, 0.4 s
  // after 1 GiB). Every this many bytes a helper thread fdatasyncs while the
  // writes go on, so that the final fsync only has the last stretch to
  // flush. 0 turns early flushes off.
  uint64_t early_flush_bytes = uint64_t{128} << 20;
  // fdatasync(2); tests put a failing one here.
  int (*datasync)(int fd) = ::fdatasync;
};

// Takes ownership of `fd`, open for writing on `path`.
std::unique_ptr<WritableFile> NewPosixWritableFile(std::string path, int fd,
                                                   const PosixFileOptions& options = {});

}  // namespace costore
