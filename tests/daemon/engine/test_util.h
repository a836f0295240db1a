// Helpers shared by the engine tests: a temporary directory that removes
// itself, and a fault-injecting Env.
#pragma once

#include <atomic>
#include <string>
#include <vector>

#include "daemon/engine/env.h"

namespace costore::test {

// A fresh directory under $TMPDIR (or /tmp), removed recursively at scope end.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string Join(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Wraps an Env and fails chosen operations, to test that errors leave the
// store intact. Counters are atomic: engine tests run stores on threads.
class FaultInjectionEnv : public EnvWrapper {
 public:
  explicit FaultInjectionEnv(Env* target) : EnvWrapper(target) {}

  // Append fails with `errno_value` once this many appends have succeeded
  // (-1: never).
  std::atomic<int> fail_append_after{-1};
  int append_errno = ENOSPC;
  std::atomic<bool> fail_sync{false};
  std::atomic<bool> fail_rename{false};
  std::atomic<int> appends{0};

  Status NewWritableFile(const std::string& path, mode_t mode,
                         std::unique_ptr<WritableFile>* out) override;
  Status RenameNoReplace(const std::string& from, const std::string& to, bool* existed) override;
};

// Writes `contents` to a new file at `path`.
void WriteFile(const std::string& path, const std::string& contents);
// Reads a whole file, or a descriptor from offset 0.
std::string ReadFile(const std::string& path);
std::string ReadFd(int fd);
// The read end of a pipe that a thread fills with `bytes`, then closes.
// Its writer may outlive a reader that gives up: ignore SIGPIPE.
int PipeFrom(const std::string& bytes);
// Deterministic pseudo-random bytes.
std::string RandomBytes(size_t n, uint32_t seed = 1);
// All regular files below `dir`, relative paths, sorted.
std::vector<std::string> FilesBelow(const std::string& dir);

}  // namespace costore::test
