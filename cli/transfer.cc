#include "transfer.h"

#include <fcntl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include <openssl/evp.h>

namespace costore::cli {
namespace {

constexpr size_t kChunkSize = size_t{1} << 20;
// copy_file_range/sendfile move this much per call, so progress can follow.
constexpr size_t kKernelCopyChunk = size_t{16} << 20;

class Sha256 {
 public:
  Sha256() : context_(EVP_MD_CTX_new()) {
    if (!context_ || EVP_DigestInit_ex(context_.get(), EVP_sha256(), nullptr) != 1)
      throw client::Error(client::ErrorCode::kFailed, "cannot initialise SHA-256 (OpenSSL)");
  }
  void Update(const void* data, size_t size) {
    if (EVP_DigestUpdate(context_.get(), data, size) != 1)
      throw client::Error(client::ErrorCode::kFailed, "SHA-256 update failed (OpenSSL)");
  }
  std::string Finish() {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    if (EVP_DigestFinal_ex(context_.get(), digest, &length) != 1)
      throw client::Error(client::ErrorCode::kFailed, "SHA-256 final failed (OpenSSL)");
    static constexpr char kHex[] = "0123456789abcdef";
    std::string text = "sha256:";
    for (unsigned int i = 0; i < length; ++i) {
      text += kHex[digest[i] >> 4];
      text += kHex[digest[i] & 0xf];
    }
    return text;
  }

 private:
  struct Free {
    void operator()(EVP_MD_CTX* context) const { EVP_MD_CTX_free(context); }
  };
  std::unique_ptr<EVP_MD_CTX, Free> context_;
};

void WriteAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    ssize_t written = ::write(fd, data, size);
    if (written < 0) {
      if (errno == EINTR) continue;
      ThrowSystemError("write", errno);
    }
    data += written;
    size -= static_cast<size_t>(written);
  }
}

// Whether a kernel copy call failed only because it does not apply to these
// descriptors (so the next method should be tried).
bool NotApplicable(int err) {
  return err == EINVAL || err == EXDEV || err == ENOSYS || err == EOPNOTSUPP || err == EBADF || err == ESPIPE ||
         err == ETXTBSY || err == EPERM;
}

std::string TemporaryDirectory() {
  const char* dir = std::getenv("TMPDIR");
  return dir && *dir ? dir : "/tmp";
}

}  // namespace

void ThrowSystemError(const std::string& what, int err) {
  throw client::Error(client::ErrorCode::kIOError, "cannot " + what + ": " + std::strerror(err));
}

Hashed HashFile(int fd, uint64_t offset, const ByteProgress& progress) {
  Sha256 sha;
  std::vector<char> buffer(kChunkSize);
  uint64_t done = 0;
  ::posix_fadvise(fd, static_cast<off_t>(offset), 0, POSIX_FADV_SEQUENTIAL);
  for (;;) {
    ssize_t got = ::pread(fd, buffer.data(), buffer.size(), static_cast<off_t>(offset + done));
    if (got < 0) {
      if (errno == EINTR) continue;
      ThrowSystemError("read the file", errno);
    }
    if (got == 0) break;
    sha.Update(buffer.data(), static_cast<size_t>(got));
    done += static_cast<uint64_t>(got);
    if (progress) progress(done);
  }
  return {sha.Finish(), done};
}

Spooled SpoolAndHash(int in, const ByteProgress& progress) {
  std::string dir = TemporaryDirectory();
  client::UniqueFd spool(::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
  if (!spool) {
    // No O_TMPFILE on this file system: a named file, unlinked at once.
    std::string name = dir + "/costore-stdin-XXXXXX";
    spool.reset(::mkostemp(name.data(), O_CLOEXEC));
    if (!spool) ThrowSystemError("create a temporary file in " + dir, errno);
    ::unlink(name.c_str());
  }
  Sha256 sha;
  std::vector<char> buffer(kChunkSize);
  uint64_t done = 0;
  for (;;) {
    ssize_t got = ::read(in, buffer.data(), buffer.size());
    if (got < 0) {
      if (errno == EINTR) continue;
      ThrowSystemError("read standard input", errno);
    }
    if (got == 0) break;
    sha.Update(buffer.data(), static_cast<size_t>(got));
    WriteAll(spool.get(), buffer.data(), static_cast<size_t>(got));
    done += static_cast<uint64_t>(got);
    if (progress) progress(done);
  }
  if (::lseek(spool.get(), 0, SEEK_SET) != 0) ThrowSystemError("rewind the temporary file", errno);
  return {std::move(spool), {sha.Finish(), done}};
}

uint64_t CopyAll(int in, int out, const ByteProgress& progress) {
  uint64_t done = 0;
  auto advance = [&](ssize_t moved) {
    done += static_cast<uint64_t>(moved);
    if (progress) progress(done);
  };
  // 1. copy_file_range: file to file, in the kernel (reflinks where possible).
  for (;;) {
    ssize_t moved = ::copy_file_range(in, nullptr, out, nullptr, kKernelCopyChunk, 0);
    if (moved > 0) {
      advance(moved);
      continue;
    }
    if (moved == 0) return done;
    if (errno == EINTR) continue;
    if (!NotApplicable(errno)) ThrowSystemError("copy", errno);
    break;
  }
  // 2. sendfile: from a file to anything (pipes included), in the kernel.
  for (;;) {
    ssize_t moved = ::sendfile(out, in, nullptr, kKernelCopyChunk);
    if (moved > 0) {
      advance(moved);
      continue;
    }
    if (moved == 0) return done;
    if (errno == EINTR) continue;
    if (!NotApplicable(errno)) ThrowSystemError("copy", errno);
    break;
  }
  // 3. read/write.
  std::vector<char> buffer(kChunkSize);
  for (;;) {
    ssize_t got = ::read(in, buffer.data(), buffer.size());
    if (got < 0) {
      if (errno == EINTR) continue;
      ThrowSystemError("read", errno);
    }
    if (got == 0) return done;
    WriteAll(out, buffer.data(), static_cast<size_t>(got));
    advance(got);
  }
}

OutputFile::OutputFile(std::string path) : path_(std::move(path)) {
  size_t slash = path_.rfind('/');
  std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path_.substr(0, slash));
  std::string base = slash == std::string::npos ? path_ : path_.substr(slash + 1);
  temporary_path_ = dir + "/." + base + ".costore-XXXXXX";
  fd_.reset(::mkostemp(temporary_path_.data(), O_CLOEXEC));
  if (!fd_) ThrowSystemError("create a file in " + dir, errno);
  // mkostemp makes 0600; give the file the mode open(2) would have.
  mode_t mask = ::umask(0);
  ::umask(mask);
  ::fchmod(fd_.get(), 0666 & ~mask);
}

OutputFile::~OutputFile() {
  if (!temporary_path_.empty()) ::unlink(temporary_path_.c_str());
}

void OutputFile::Commit() {
  if (::fsync(fd_.get()) != 0) ThrowSystemError("write " + path_, errno);
  if (::close(fd_.release()) != 0) ThrowSystemError("write " + path_, errno);
  if (::rename(temporary_path_.c_str(), path_.c_str()) != 0) ThrowSystemError("rename onto " + path_, errno);
  temporary_path_.clear();
}

}  // namespace costore::cli
