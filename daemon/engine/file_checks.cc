#include "daemon/engine/file_checks.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <span>

#include "daemon/engine/sha256.h"

namespace costore {
namespace {

constexpr size_t kBufferSize = size_t{1} << 20;

// <linux/ioprio.h> is not in every set of headers this builds with.
constexpr int kIoprioWhoProcess = 1;
constexpr int kIoprioClassShift = 13;
constexpr int kIoprioClassBestEffort = 2;
constexpr int kIoprioClassIdle = 3;

}  // namespace

Status HashFile(int fd, const std::string& what, Digest* digest, uint64_t* size, const std::atomic<bool>* cancelled) {
  auto buffer = std::make_unique_for_overwrite<std::byte[]>(kBufferSize);
  Sha256 hasher;
  uint64_t offset = 0;
  for (;;) {
    if (cancelled != nullptr && cancelled->load()) return Status::Cancelled("verification of " + what + " was cancelled");
    ssize_t n = ::pread(fd, buffer.get(), kBufferSize, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno("read " + what, errno);
    }
    if (n == 0) break;
    hasher.Update(std::span<const std::byte>(buffer.get(), static_cast<size_t>(n)));
    offset += static_cast<uint64_t>(n);
  }
  *digest = hasher.Finish();
  *size = offset;
  return Status::OK();
}

Status CopyToSealedMemfd(int fd, uint64_t size, const std::string& memfd_name, int* out) {
  int memfd = ::memfd_create(memfd_name.c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (memfd < 0) return Status::FromErrno("memfd_create", errno);
  Status s;
  off_t offset = 0;
  while (s.ok() && static_cast<uint64_t>(offset) < size) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(size - static_cast<uint64_t>(offset), 1u << 30));
    ssize_t n = ::sendfile(memfd, fd, &offset, want);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      s = errno == ENOSPC || errno == ENOMEM
              ? Status::NoSpace("no memory for a private copy of " + std::to_string(size) + " bytes")
              : Status::FromErrno("copy into memfd", errno);
    } else if (n == 0) {
      s = Status::IOError("the file ended after " + std::to_string(offset) + " of " + std::to_string(size) + " bytes");
    }
  }
  if (s.ok() && ::lseek(memfd, 0, SEEK_SET) != 0) s = Status::FromErrno("seek memfd", errno);
  if (s.ok() && ::fcntl(memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0) {
    s = Status::FromErrno("seal memfd", errno);
  }
  if (!s.ok()) {
    ::close(memfd);
    return s;
  }
  *out = memfd;
  return Status::OK();
}

void LowerThreadIoPriority(bool idle) {
  const int value = idle ? (kIoprioClassIdle << kIoprioClassShift)
                         : ((kIoprioClassBestEffort << kIoprioClassShift) | 7);
  // who = 0: the calling thread.
  static_cast<void>(::syscall(SYS_ioprio_set, kIoprioWhoProcess, 0, value));
}

}  // namespace costore
