#include "daemon/engine/private_files.h"

#include <fcntl.h>
#include <poll.h>
#include <sodium.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "daemon/engine/sha256.h"

namespace costore {
namespace {

// Bigger than the default 64 KiB, so the reader takes whole chunks; an
// unprivileged process may ask up to /proc/sys/fs/pipe-max-size (1 MiB).
constexpr int kPipeSize = 1 << 20;
constexpr int kPollIntervalMs = 100;
// Threads that decrypt one file into a memfd, at most.
constexpr uint64_t kMaxUnsealThreads = 4;

}  // namespace

std::string OwnerTag(const Principal& owner) {
  std::string input = "costore/owner/1";
  input += '\0';
  input += owner.app;
  input += '\0';
  input += owner.origin;
  const Digest digest = Sha256::Of(std::as_bytes(std::span(input.data(), input.size())));
  return digest.hex().substr(0, 32);
}

Status UnsealToMemfd(SealedReader* reader, const std::string& memfd_name, int* out) {
  int fd = ::memfd_create(memfd_name.c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return Status::FromErrno("memfd_create", errno);
  // Chunks are decrypted into buffers and pwrite(2)-n into the memfd: a
  // write that finds no memory fails with an error (decrypting straight
  // into a shared mapping would fault a page at a time, measured 4x the
  // CPU here, and die with SIGBUS when memory runs out; see
  // docs/private-format.md). Nobody else holds the memfd until it is
  // sealed, and a chunk that fails leaves nothing behind: the memfd is
  // dropped. Large files are decrypted by several threads, each taking
  // every k-th chunk.
  const uint64_t chunks = reader->chunk_count();
  const uint32_t chunk_size = reader->chunk_size();
  const unsigned threads = static_cast<unsigned>(
      std::min<uint64_t>({chunks / 4 + 1, kMaxUnsealThreads, std::max(1u, std::thread::hardware_concurrency())}));
  std::mutex mu;
  Status first_error;
  std::atomic<bool> failed{false};
  auto work = [&](unsigned self) {
    auto sealed = std::make_unique_for_overwrite<uint8_t[]>(chunk_size + sealed::kTagSize);
    auto plain = std::make_unique_for_overwrite<uint8_t[]>(chunk_size);
    Status s;
    for (uint64_t i = self; s.ok() && i < chunks && !failed.load(); i += threads) {
      size_t n = 0;
      s = reader->ReadChunkWith(i, sealed.get(), plain.get(), &n);
      size_t done = 0;
      while (s.ok() && done < n) {
        ssize_t w = ::pwrite(fd, plain.get() + done, n - done, static_cast<off_t>(i * chunk_size + done));
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) {
          s = errno == ENOSPC || errno == ENOMEM || errno == EFBIG
                  ? Status::NoSpace("not enough memory to hand out a private file of " +
                                    std::to_string(reader->size()) +
                                    " bytes at once; open it with the \"stream\" option instead")
                  : Status::FromErrno("write memfd", errno);
        }
        if (w > 0) done += static_cast<size_t>(w);
      }
    }
    sodium_memzero(plain.get(), chunk_size);
    if (!s.ok()) {
      failed = true;
      std::lock_guard<std::mutex> lock(mu);
      if (first_error.ok()) first_error = s;
    }
  };
  std::vector<std::thread> helpers;
  for (unsigned t = 1; t < threads; ++t) helpers.emplace_back(work, t);
  work(0);
  for (auto& helper : helpers) helper.join();
  if (!first_error.ok()) {
    ::close(fd);
    return first_error;
  }
  if (::fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0) {
    Status s = Status::FromErrno("seal memfd", errno);
    ::close(fd);
    return s;
  }
  *out = fd;
  return Status::OK();
}

PrivateStream::PrivateStream(int file_fd, std::unique_ptr<SealedReader> reader, std::string what)
    : file_fd_(file_fd), reader_(std::move(reader)), what_(std::move(what)) {}

PrivateStream::~PrivateStream() {
  if (plain_) sodium_memzero(plain_.get(), reader_->chunk_size());
  if (write_fd_ >= 0) ::close(write_fd_);
  if (file_fd_ >= 0) ::close(file_fd_);
}

Status PrivateStream::Prepare(int* read_fd) {
  plain_ = std::make_unique_for_overwrite<uint8_t[]>(reader_->chunk_size());
  Status s = reader_->ReadChunk(0, plain_.get(), &first_size_);
  if (!s.ok()) return s;
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return Status::FromErrno("pipe", errno);
  // Best effort: a smaller pipe only means more wake-ups.
  (void)::fcntl(fds[1], F_SETPIPE_SZ, kPipeSize);
  // Non-blocking, so that a reader that stops reading cannot hold the
  // worker beyond the idle timeout.
  int flags = ::fcntl(fds[1], F_GETFL);
  if (flags < 0 || ::fcntl(fds[1], F_SETFL, flags | O_NONBLOCK) != 0) {
    int err = errno;
    ::close(fds[0]);
    ::close(fds[1]);
    return Status::FromErrno("pipe", err);
  }
  write_fd_ = fds[1];
  *read_fd = fds[0];
  return Status::OK();
}

Status PrivateStream::WriteAll(const uint8_t* data, size_t size, const std::atomic<bool>* cancelled,
                               int idle_timeout_ms) {
  using Clock = std::chrono::steady_clock;
  auto deadline = Clock::now() + std::chrono::milliseconds(idle_timeout_ms);
  while (size > 0) {
    if (cancelled != nullptr && cancelled->load()) return Status::Cancelled("the daemon is shutting down");
    ssize_t n = ::write(write_fd_, data, size);
    if (n > 0) {
      data += n;
      size -= static_cast<size_t>(n);
      deadline = Clock::now() + std::chrono::milliseconds(idle_timeout_ms);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EPIPE) return Status::Cancelled("the reader closed the pipe");
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return Status::FromErrno("write pipe", errno);
    if (Clock::now() >= deadline) return Status::Cancelled("the reader read nothing for too long; giving up");
    pollfd pfd{write_fd_, POLLOUT, 0};
    int ready = ::poll(&pfd, 1, kPollIntervalMs);
    if (ready < 0 && errno != EINTR) return Status::FromErrno("poll pipe", errno);
    if (ready > 0 && (pfd.revents & (POLLERR | POLLHUP)) != 0 && (pfd.revents & POLLOUT) == 0) {
      return Status::Cancelled("the reader closed the pipe");
    }
  }
  return Status::OK();
}

Status PrivateStream::Pump(const std::atomic<bool>* cancelled, int idle_timeout_ms) {
  Status s = WriteAll(plain_.get(), first_size_, cancelled, idle_timeout_ms);
  for (uint64_t i = 1; s.ok() && i < reader_->chunk_count(); ++i) {
    size_t n = 0;
    s = reader_->ReadChunk(i, plain_.get(), &n);
    if (s.ok()) s = WriteAll(plain_.get(), n, cancelled, idle_timeout_ms);
  }
  ::close(write_fd_);  // end of file for the reader, early if s is an error
  write_fd_ = -1;
  return s;
}

}  // namespace costore
