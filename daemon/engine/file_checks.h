// Reading a stored file whole: hashing it (verification, re-indexing) and
// copying it into a sealed memfd (a sandboxed reader's own copy).
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "daemon/engine/digest.h"
#include "daemon/engine/status.h"

namespace costore {

// SHA-256 and length of everything `fd` holds, read with pread(2) from
// offset 0 (the descriptor's offset is left alone). Stops with Cancelled
// when `cancelled` turns true.
Status HashFile(int fd, const std::string& what, Digest* digest, uint64_t* size,
                const std::atomic<bool>* cancelled = nullptr);

// A new memfd holding the `size` bytes of `fd`, sealed (F_SEAL_SHRINK |
// F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) before anyone else sees it.
// *out is owned by the caller. A file that is not `size` bytes long is an
// IOError: the caller checked it just before.
Status CopyToSealedMemfd(int fd, uint64_t size, const std::string& memfd_name, int* out);

// Lowers the calling thread's I/O priority for background work: `idle`
// waits for an otherwise idle disk, else the lowest best-effort level.
// Best effort (some schedulers ignore it).
void LowerThreadIoPriority(bool idle);

}  // namespace costore
