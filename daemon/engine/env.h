// Env: every file-system operation the engine performs, behind one interface,
// as in LevelDB. Production code uses Env::Default() (POSIX); tests wrap it to
// inject faults (ENOSPC on the n-th write, a failing fsync or rename, a crash
// that drops what was not synced).
//
// Confinement. While a StoreLock on a store directory is held (LockStore),
// every path below that directory is resolved beneath the directory the lock
// holds open, and never through a symbolic link: a link planted anywhere
// inside the store (ingest/ -> ~/Documents) makes the call fail with IOError
// naming the path, so the engine never creates, renames, removes or opens
// anything outside its own store. Paths outside a locked store are
// resolved as usual (the store directory's own path may go through links:
// a user may have moved the store to another disk).
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

// What Stat reports; never about a symlink's target.
struct FileStat {
  enum class Type { kRegular, kDirectory, kSymlink, kOther };
  Type type = Type::kOther;
  uint64_t ino = 0;
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;
  uint32_t mode = 0;  // permission bits
  uint32_t uid = 0;
  uint32_t nlink = 0;
};

// "a symbolic link", "a directory", "a FIFO, socket or device", "a regular file".
std::string DescribeType(FileStat::Type type);

// One entry of a directory, with its type as the directory gives it.
struct DirEntry {
  std::string name;
  FileStat::Type type = FileStat::Type::kOther;
};

// Holds a store directory exclusively (see LockStore). Dropping it releases
// the lock and ends the confinement.
class StoreLock {
 public:
  virtual ~StoreLock() = default;
};

// Bytes on the file system holding a path.
struct FsSpace {
  uint64_t available = 0;  // free for this user (root's reserve excluded)
  uint64_t total = 0;
};

class Env {
 public:
  virtual ~Env() = default;

  // The process-wide POSIX environment. Never deleted.
  static Env* Default();

  // Creates `path` exclusively (O_CREAT|O_EXCL), write-only, with `mode`.
  virtual Status NewWritableFile(const std::string& path, mode_t mode,
                                 std::unique_ptr<WritableFile>* out) = 0;
  // Takes `root` (an existing directory owned by this user) for this
  // process: an exclusive lock on <root>/costored.lock, and confinement of
  // every path below `root` (see above). Busy, naming the holder's pid,
  // when another process (or another lock in this one) holds it.
  virtual Status LockStore(const std::string& root, std::unique_ptr<StoreLock>* lock) = 0;
  // Opens `path` read-only, never following a symlink and never blocking
  // (a FIFO opens with O_NONBLOCK and is refused); anything but a regular
  // file is refused with IOError naming what it is. *st (if given) is the
  // opened file's. The caller owns *fd (O_CLOEXEC, blocking reads).
  virtual Status OpenReadOnly(const std::string& path, int* fd, FileStat* st) = 0;
  // A read-only view of `root`: a directory descriptor on a detached
  // read-only mount of it (Linux mount API, in a user namespace of a
  // short-lived child). A file opened beneath it cannot be written, fchmod
  // fails, and reopening it for writing through /proc/self/fd fails
  // (EROFS), whoever holds the descriptor. IOError where the system allows
  // no user namespaces. The caller owns *dir_fd.
  virtual Status OpenReadOnlyView(const std::string& root, int* dir_fd) = 0;
  // OpenReadOnly of `relative` beneath `dir_fd` (a view), with the same
  // refusals; `path` names the file in messages.
  virtual Status OpenReadOnlyBeneath(int dir_fd, const std::string& relative, const std::string& path,
                                     int* fd, FileStat* st) = 0;
  // lstat(2): NotFound when absent.
  virtual Status Stat(const std::string& path, FileStat* st) = 0;
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
  // The same with each entry's type (from the directory, without a stat).
  virtual Status ListDir(const std::string& dir, std::vector<DirEntry>* entries) = 0;
  virtual bool FileExists(const std::string& path) = 0;
  // Bytes available to this user on the file system holding `path`.
  virtual Status FreeSpace(const std::string& path, uint64_t* bytes) = 0;
  virtual Status GetFsSpace(const std::string& path, FsSpace* space) = 0;
  // Allocates `size` bytes to a new file at `path` (fallocate), mode 0600:
  // a reserve that can be released when the disk is full.
  virtual Status Preallocate(const std::string& path, uint64_t size) = 0;
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
  Status LockStore(const std::string& root, std::unique_ptr<StoreLock>* lock) override {
    return target_->LockStore(root, lock);
  }
  Status OpenReadOnly(const std::string& path, int* fd, FileStat* st) override {
    return target_->OpenReadOnly(path, fd, st);
  }
  Status OpenReadOnlyView(const std::string& root, int* dir_fd) override {
    return target_->OpenReadOnlyView(root, dir_fd);
  }
  Status OpenReadOnlyBeneath(int dir_fd, const std::string& relative, const std::string& path, int* fd,
                             FileStat* st) override {
    return target_->OpenReadOnlyBeneath(dir_fd, relative, path, fd, st);
  }
  Status Stat(const std::string& path, FileStat* st) override { return target_->Stat(path, st); }
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
  Status ListDir(const std::string& dir, std::vector<DirEntry>* entries) override {
    return target_->ListDir(dir, entries);
  }
  bool FileExists(const std::string& path) override { return target_->FileExists(path); }
  Status FreeSpace(const std::string& path, uint64_t* bytes) override {
    return target_->FreeSpace(path, bytes);
  }
  Status GetFsSpace(const std::string& path, FsSpace* space) override { return target_->GetFsSpace(path, space); }
  Status Preallocate(const std::string& path, uint64_t size) override { return target_->Preallocate(path, size); }
  Status WriteFileAtomic(const std::string& path, std::string_view contents, mode_t mode) override {
    return target_->WriteFileAtomic(path, contents, mode);
  }
  int64_t NowMicros() override { return target_->NowMicros(); }

 private:
  Env* target_;
};

}  // namespace costore
