#include "tests/daemon/engine/test_util.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <stdexcept>
#include <thread>

namespace costore::test {

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string templ = std::string(base && *base ? base : "/tmp") + "/costore-test-XXXXXX";
  if (mkdtemp(templ.data()) == nullptr) {
    throw std::runtime_error(std::string("mkdtemp: ") + std::strerror(errno));
  }
  path_ = templ;
}

TempDir::~TempDir() {
  std::error_code ec;
  // Blobs are 0444 and their directories may be too: make them writable
  // so that remove_all can unlink them.
  for (auto it = std::filesystem::recursive_directory_iterator(path_, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    std::filesystem::permissions(it->path(), std::filesystem::perms::owner_all,
                                 std::filesystem::perm_options::add, ec);
  }
  std::filesystem::remove_all(path_, ec);
}

namespace {

class FaultyWritableFile : public WritableFile {
 public:
  FaultyWritableFile(std::unique_ptr<WritableFile> target, FaultInjectionEnv* env)
      : target_(std::move(target)), env_(env) {}
  Status Append(std::span<const std::byte> data) override {
    int limit = env_->fail_append_after.load();
    if (limit >= 0 && env_->appends.load() >= limit) {
      return Status::FromErrno("write " + target_->path(), env_->append_errno);
    }
    ++env_->appends;
    return target_->Append(data);
  }
  Status Sync() override {
    if (env_->fail_sync) return Status::FromErrno("fsync " + target_->path(), EIO);
    return target_->Sync();
  }
  Status Close() override { return target_->Close(); }
  const std::string& path() const override { return target_->path(); }

 private:
  std::unique_ptr<WritableFile> target_;
  FaultInjectionEnv* env_;
};

}  // namespace

Status FaultInjectionEnv::NewWritableFile(const std::string& path, mode_t mode,
                                          std::unique_ptr<WritableFile>* out) {
  std::unique_ptr<WritableFile> file;
  Status s = target()->NewWritableFile(path, mode, &file);
  if (!s.ok()) return s;
  *out = std::make_unique<FaultyWritableFile>(std::move(file), this);
  return Status::OK();
}

Status FaultInjectionEnv::RenameNoReplace(const std::string& from, const std::string& to,
                                          bool* existed) {
  if (fail_rename) return Status::FromErrno("rename " + from, EIO);
  return target()->RenameNoReplace(from, to, existed);
}

void WriteFile(const std::string& path, const std::string& contents) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0) << path << ": " << std::strerror(errno);
  size_t done = 0;
  while (done < contents.size()) {
    ssize_t n = ::write(fd, contents.data() + done, contents.size() - done);
    ASSERT_GT(n, 0) << path << ": " << std::strerror(errno);
    done += static_cast<size_t>(n);
  }
  ::close(fd);
}

std::string ReadFd(int fd) {
  std::string out;
  char buf[65536];
  off_t offset = 0;
  for (;;) {
    ssize_t n = ::pread(fd, buf, sizeof buf, offset);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
    offset += n;
  }
  return out;
}

std::string ReadFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  std::string out = ReadFd(fd);
  ::close(fd);
  return out;
}

int PipeFrom(const std::string& bytes) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return -1;
  std::thread([fd = fds[1], bytes] {
    size_t done = 0;
    while (done < bytes.size()) {
      ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
      if (n <= 0) break;
      done += static_cast<size_t>(n);
    }
    ::close(fd);
  }).detach();
  return fds[0];
}

std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::string out(n, '\0');
  for (auto& c : out) c = static_cast<char>(gen() & 0xff);
  return out;
}

std::vector<std::string> FilesBelow(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file()) out.push_back(std::filesystem::relative(it->path(), dir).string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace costore::test
