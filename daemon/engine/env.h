// Env: every file-system operation the engine performs, behind one interface,
// as in LevelDB. Production code uses Env::Default() (POSIX); tests wrap it to
// inject faults (ENOSPC on the n-th write, a failing fsync or rename).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "daemon/engine/status.h"

namespace costore {

// A file being written. Not thread-safe.
class WritableFile {
 public:
  virtual ~WritableFile() = default;
  virtual Status Append(std::span<const std::byte> data) = 0;
  // fsync(2): the bytes written so far are durable when this returns OK.
  virtual Status Sync() = 0;
  virtual Status Close() = 0;
  virtual const std::string& path() const = 0;
};

class Env {
 public:
  virtual ~Env() = default;

  // The process-wide POSIX environment. Never deleted.
  static Env* Default();

  // Creates `path` exclusively (O_CREAT|O_EXCL), write-only, with `mode`.
  virtual Status NewWritableFile(const std::string& path, mode_t mode,
                                 std::unique_ptr<WritableFile>* out) = 0;
  // Opens `path` read-only (O_RDONLY|O_CLOEXEC); the caller owns *fd.
  virtual Status OpenReadOnly(const std::string& path, int* fd) = 0;
  // Renames `from` to `to` unless `to` exists; then *existed is set and
  // `from` is left in place. Never replaces a file.
  virtual Status RenameNoReplace(const std::string& from, const std::string& to,
                                 bool* existed) = 0;
  virtual Status RemoveFile(const std::string& path) = 0;
  virtual Status Chmod(const std::string& path, mode_t mode) = 0;
  // Creates `path` and its missing parents with `mode`; OK if it exists.
  virtual Status CreateDirs(const std::string& path, mode_t mode) = 0;
  // fsync(2) on a directory, so that a rename or unlink in it is durable.
  virtual Status SyncDir(const std::string& path) = 0;
  // Names (not paths) of the entries of `dir`, without "." and "..".
  virtual Status GetChildren(const std::string& dir, std::vector<std::string>* names) = 0;
  virtual bool FileExists(const std::string& path) = 0;
  // Bytes available to this user on the file system holding `path`.
  virtual Status FreeSpace(const std::string& path, uint64_t* bytes) = 0;
  // Writes `contents` to `path` atomically (temp file, fsync, rename).
  virtual Status WriteFileAtomic(const std::string& path, std::string_view contents,
                                 mode_t mode) = 0;
  // Microseconds since the Unix epoch.
  virtual int64_t NowMicros() = 0;
};

// Forwards every call to a target Env; subclass it to override a few calls.
class EnvWrapper : public Env {
 public:
  explicit EnvWrapper(Env* target) : target_(target) {}
  Env* target() const { return target_; }

  Status NewWritableFile(const std::string& path, mode_t mode,
                         std::unique_ptr<WritableFile>* out) override {
    return target_->NewWritableFile(path, mode, out);
  }
  Status OpenReadOnly(const std::string& path, int* fd) override {
    return target_->OpenReadOnly(path, fd);
  }
  Status RenameNoReplace(const std::string& from, const std::string& to, bool* existed) override {
    return target_->RenameNoReplace(from, to, existed);
  }
  Status RemoveFile(const std::string& path) override { return target_->RemoveFile(path); }
  Status Chmod(const std::string& path, mode_t mode) override { return target_->Chmod(path, mode); }
  Status CreateDirs(const std::string& path, mode_t mode) override {
    return target_->CreateDirs(path, mode);
  }
  Status SyncDir(const std::string& path) override { return target_->SyncDir(path); }
  Status GetChildren(const std::string& dir, std::vector<std::string>* names) override {
    return target_->GetChildren(dir, names);
  }
  bool FileExists(const std::string& path) override { return target_->FileExists(path); }
  Status FreeSpace(const std::string& path, uint64_t* bytes) override {
    return target_->FreeSpace(path, bytes);
  }
  Status WriteFileAtomic(const std::string& path, std::string_view contents, mode_t mode) override {
    return target_->WriteFileAtomic(path, contents, mode);
  }
  int64_t NowMicros() override { return target_->NowMicros(); }

 private:
  Env* target_;
};

}  // namespace costore
