// Env::Default(): the engine's file-system calls on Linux.
//
// Every descriptor is opened with O_CLOEXEC: the daemon may spawn helpers
// and must not leak store files into them.

#include <dirent.h>
#include <fcntl.h>
#include <linux/mount.h>
#include <linux/openat2.h>
#include <sched.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "daemon/engine/env_posix.h"

namespace costore {
namespace {

// ENOENT is worth its own code: callers turn it into "no such file" for the
// user. Everything else is an IOError (or NoSpace) naming `context`.
Status PosixError(const std::string& context, int err) {
  if (err == ENOENT) return Status::NotFound(context + ": No such file or directory");
  return Status::FromErrno(context, err);
}

// A name for a temporary file that another writer will not pick: the
// caller still creates it with O_EXCL.
std::string RandomSuffix() {
  uint64_t value = 0;
  if (getrandom(&value, sizeof value, 0) != static_cast<ssize_t>(sizeof value)) {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    value = static_cast<uint64_t>(ts.tv_nsec) ^ (static_cast<uint64_t>(getpid()) << 32);
  }
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(value));
  return text;
}

std::string DirName(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

Status WriteAll(int fd, const std::string& path, const std::byte* data, size_t size) {
  while (size > 0) {
    ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return PosixError("write " + path, errno);
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
  return Status::OK();
}

class PosixWritableFile final : public WritableFile {
 public:
  PosixWritableFile(std::string path, int fd, const PosixFileOptions& options)
      : path_(std::move(path)), fd_(fd), options_(options) {}
  ~PosixWritableFile() override {
    static_cast<void>(JoinFlush());
    if (fd_ >= 0) ::close(fd_);
  }

  // Early flushes are fdatasync on a thread (PosixFileOptions), not
  // sync_file_range(SYNC_FILE_RANGE_WRITE) every few MiB: measured on a
  // 1 GiB ingest that shortened the final fsync (0.58 s -> 0.34 s, medians)
  // but not the ingest as a whole (1.69 s -> 1.79 s), since it only moves
  // the writeback submission from fsync into the copy loop, and it flushes
  // no disk cache.
  Status Append(std::span<const std::byte> data) override {
    if (!flush_error_.ok()) return flush_error_;
    Status s = WriteAll(fd_, path_, data.data(), data.size());
    if (!s.ok()) return s;
    written_ += data.size();
    // One early flush at a time: while one runs, the disk is the bottleneck
    // and another would only queue behind it.
    if (options_.early_flush_bytes != 0 &&
        written_ - flush_started_ >= options_.early_flush_bytes && !flush_running_.load()) {
      s = JoinFlush();
      if (!s.ok()) return s;
      flush_started_ = written_;
      flush_running_ = true;
      flusher_ = std::thread([this] {
        if (options_.datasync(fd_) != 0) flush_errno_ = errno;
        flush_running_ = false;
      });
    }
    return Status::OK();
  }

  Status Sync() override {
    Status s = JoinFlush();
    if (!s.ok()) return s;
    if (::fsync(fd_) != 0) return PosixError("fsync " + path_, errno);
    return Status::OK();
  }

  Status Close() override {
    static_cast<void>(JoinFlush());
    int fd = fd_;
    fd_ = -1;
    // On Linux the descriptor is released even when close fails, so it is
    // never retried; an error (e.g. EIO on NFS) still means lost bytes.
    if (fd >= 0 && ::close(fd) != 0 && errno != EINTR) return PosixError("close " + path_, errno);
    return Status::OK();
  }

  const std::string& path() const override { return path_; }

 private:
  // Waits for the early flush, if any. Its error sticks: after a failed
  // fdatasync a later fsync can succeed though the bytes never got to disk
  // (the kernel reports a writeback error once), so every later Append and
  // Sync fails too.
  Status JoinFlush() {
    if (flusher_.joinable()) {
      flusher_.join();
      if (flush_errno_ != 0 && flush_error_.ok()) {
        flush_error_ = PosixError("fdatasync " + path_, flush_errno_);
      }
    }
    return flush_error_;
  }

  std::string path_;
  int fd_;
  const PosixFileOptions options_;
  uint64_t written_ = 0;
  uint64_t flush_started_ = 0;
  std::thread flusher_;
  std::atomic<bool> flush_running_{false};
  int flush_errno_ = 0;  // set by flusher_, read after it is joined
  Status flush_error_;
};

FileStat StatFrom(const struct stat& st) {
  FileStat out;
  if (S_ISREG(st.st_mode)) {
    out.type = FileStat::Type::kRegular;
  } else if (S_ISDIR(st.st_mode)) {
    out.type = FileStat::Type::kDirectory;
  } else if (S_ISLNK(st.st_mode)) {
    out.type = FileStat::Type::kSymlink;
  }
  out.ino = static_cast<uint64_t>(st.st_ino);
  out.size = static_cast<uint64_t>(st.st_size);
  out.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
  out.ctime_ns = static_cast<int64_t>(st.st_ctim.tv_sec) * 1'000'000'000 + st.st_ctim.tv_nsec;
  out.mode = st.st_mode & 07777;
  out.uid = st.st_uid;
  out.nlink = static_cast<uint32_t>(st.st_nlink);
  return out;
}

FileStat::Type TypeFromDirent(unsigned char d_type) {
  switch (d_type) {
    case DT_REG: return FileStat::Type::kRegular;
    case DT_DIR: return FileStat::Type::kDirectory;
    case DT_LNK: return FileStat::Type::kSymlink;
    default: return FileStat::Type::kOther;
  }
}

// An owned descriptor.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      if (fd_ >= 0) ::close(fd_);
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_ = -1;
};

// openat2(2) resolving beneath `dir_fd` through no symlink at all (glibc
// 2.36 has no wrapper).
int OpenAt2Beneath(int dir_fd, const char* relative, int flags, mode_t mode) {
  open_how how{};
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
  how.mode = (flags & (O_CREAT | O_TMPFILE)) != 0 ? mode : 0;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  for (;;) {
    long fd = ::syscall(SYS_openat2, dir_fd, relative, &how, sizeof how);
    if (fd >= 0) return static_cast<int>(fd);
    // EAGAIN: a rename raced the lookup; the kernel asks to retry.
    if (errno != EAGAIN && errno != EINTR) return -1;
  }
}

// Why an open beneath a store failed, in words (ELOOP and EXDEV are how
// openat2 says "a symlink on the way" and "it would leave the store").
Status BeneathError(const std::string& what, const std::string& path, int err) {
  if (err == ELOOP || err == EXDEV) {
    return Status::IOError(what + " " + path +
                           ": a symbolic link is in the way; costore never follows links inside its store");
  }
  return PosixError(what + " " + path, err);
}

// Checks an opened descriptor is a regular file, and clears O_NONBLOCK (it
// only kept the open from waiting on a FIFO).
Status CheckRegular(int fd, const std::string& path, FileStat* st) {
  struct stat raw {};
  if (::fstat(fd, &raw) != 0) return PosixError("fstat " + path, errno);
  FileStat info = StatFrom(raw);
  if (info.type != FileStat::Type::kRegular) {
    return Status::IOError(path + " is " + DescribeType(info.type) + ", not a regular file");
  }
  int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0 && (flags & O_NONBLOCK) != 0) ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  if (st != nullptr) *st = info;
  return Status::OK();
}

// A locked store directory (PosixEnv::LockStore).
struct LockedRoot {
  std::string root;  // as given, without a trailing slash
  Fd root_fd;        // O_PATH|O_DIRECTORY: what confined paths resolve beneath
  Fd lock_fd;        // <root>/costored.lock, flock(LOCK_EX)
};

class PosixEnv;

class PosixStoreLock final : public StoreLock {
 public:
  PosixStoreLock(PosixEnv* env, std::shared_ptr<LockedRoot> root) : env_(env), root_(std::move(root)) {}
  ~PosixStoreLock() override;

 private:
  PosixEnv* env_;
  std::shared_ptr<LockedRoot> root_;
};

class PosixEnv final : public Env {
 public:
  // Where a path is: beneath a locked store (dir_fd, relative path), or
  // outside every one (dir_fd AT_FDCWD, the path itself).
  struct Place {
    std::shared_ptr<LockedRoot> root;  // keeps dir_fd open while in use
    int dir_fd = AT_FDCWD;
    std::string relative;
    bool confined() const { return root != nullptr; }
  };

  Place Locate(const std::string& path) {
    std::lock_guard<std::mutex> lock(roots_mu_);
    for (const auto& root : roots_) {
      const std::string& r = root->root;
      if (path.size() > r.size() + 1 && path.compare(0, r.size(), r) == 0 && path[r.size()] == '/') {
        std::string relative = path.substr(r.size() + 1);
        while (!relative.empty() && relative.front() == '/') relative.erase(0, 1);
        if (relative.empty()) relative = ".";
        return Place{root, root->root_fd.get(), relative};
      }
      if (path == r) return Place{root, root->root_fd.get(), "."};
    }
    return Place{nullptr, AT_FDCWD, path};
  }

  // open(2) of `path` with `flags`, beneath its store when it has one.
  int OpenPath(const Place& place, int flags, mode_t mode) {
    if (place.confined()) return OpenAt2Beneath(place.dir_fd, place.relative.c_str(), flags, mode);
    return ::open(place.relative.c_str(), flags | O_CLOEXEC, mode);
  }

  // The directory holding `path` (opened O_PATH, beneath its store) and
  // the last component's name, for the *at(2) calls.
  Status OpenParent(const std::string& path, Fd* dir, std::string* name) {
    size_t slash = path.rfind('/');
    std::string parent = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
    *name = slash == std::string::npos ? path : path.substr(slash + 1);
    if (name->empty() || *name == "." || *name == "..") {
      return Status::InvalidArgument("not a file name: " + path);
    }
    Place place = Locate(parent);
    int fd = OpenPath(place, O_PATH | O_DIRECTORY, 0);
    if (fd < 0) return BeneathError("open directory", parent, errno);
    *dir = Fd(fd);
    return Status::OK();
  }

  Status LockStore(const std::string& root_in, std::unique_ptr<StoreLock>* out) override {
    std::string root = root_in;
    while (root.size() > 1 && root.back() == '/') root.pop_back();
    auto locked = std::make_shared<LockedRoot>();
    locked->root = root;
    // The store's own path may go through links (a store moved to another
    // disk); nothing below it may.
    int dir = ::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0) return PosixError("open store directory " + root, errno);
    Fd dir_fd(dir);
    struct stat st {};
    if (::fstat(dir, &st) != 0) return PosixError("fstat " + root, errno);
    if (st.st_uid != ::geteuid()) {
      return Status::PermissionDenied("the store directory " + root + " belongs to uid " +
                                      std::to_string(st.st_uid) + ", not to this user (uid " +
                                      std::to_string(::geteuid()) + ")");
    }
    int lock = OpenLockFile(dir, root);
    if (lock < 0) return BeneathError("open", root + "/costored.lock", errno);
    locked->lock_fd = Fd(lock);
    if (::flock(lock, LOCK_EX | LOCK_NB) != 0) {
      int err = errno;
      if (err != EWOULDBLOCK) return PosixError("lock " + root + "/costored.lock", err);
      char text[32] = {};
      ssize_t n = ::pread(lock, text, sizeof text - 1, 0);
      std::string holder = n > 0 ? std::string(text, static_cast<size_t>(n)) : "";
      while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
      return Status::Busy("the store at " + root + " is in use by another costored" +
                          (holder.empty() ? std::string() : " (pid " + holder + ")") +
                          "; one daemon serves a store at a time");
    }
    // The store holds what the user downloaded; other users have no
    // business listing it, whatever mode an older version or the user left.
    // Only the holder of the lock changes it.
    if ((st.st_mode & 07777) != 0700 && ::fchmod(dir, 0700) != 0) return PosixError("chmod " + root, errno);
    std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(lock, 0) != 0 || ::pwrite(lock, pid.data(), pid.size(), 0) < 0) {
      return PosixError("write " + root + "/costored.lock", errno);
    }
    locked->root_fd = std::move(dir_fd);
    {
      std::lock_guard<std::mutex> guard(roots_mu_);
      roots_.push_back(locked);
    }
    *out = std::make_unique<PosixStoreLock>(this, std::move(locked));
    return Status::OK();
  }

  // Opens (creating) <root>/costored.lock. Something else in its place (a
  // link, a FIFO, a directory) is renamed aside, never followed, for
  // BlobStore::Init to quarantine; -1 with errno on failure.
  static int OpenLockFile(int dir, const std::string& root) {
    for (int attempt = 0; attempt < 2; ++attempt) {
      int lock = OpenAt2Beneath(dir, "costored.lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK, 0600);
      if (lock >= 0) {
        struct stat st {};
        if (::fstat(lock, &st) == 0 && S_ISREG(st.st_mode)) {
          ::fcntl(lock, F_SETFL, ::fcntl(lock, F_GETFL) & ~O_NONBLOCK);
          return lock;
        }
        ::close(lock);
      } else if (errno != ELOOP && errno != EISDIR && errno != ENXIO) {
        return -1;
      }
      const std::string aside = "costored.lock-was-not-a-file-" + RandomSuffix();
      if (::renameat(dir, "costored.lock", dir, aside.c_str()) != 0 && errno != ENOENT) return -1;
    }
    static_cast<void>(root);
    errno = ELOOP;
    return -1;
  }

  void Unlock(const std::shared_ptr<LockedRoot>& root) {
    std::lock_guard<std::mutex> guard(roots_mu_);
    std::erase(roots_, root);
  }

  Status NewWritableFile(const std::string& path, mode_t mode,
                         std::unique_ptr<WritableFile>* out) override {
    Place place = Locate(path);
    int fd = OpenPath(place, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode);
    if (fd < 0) return BeneathError("create", path, errno);
    *out = NewPosixWritableFile(path, fd);
    return Status::OK();
  }

  Status OpenReadOnly(const std::string& path, int* fd, FileStat* st) override {
    Place place = Locate(path);
    int result = OpenPath(place, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY, 0);
    if (result < 0) return BeneathError("open", path, errno);
    Fd opened(result);
    Status s = CheckRegular(result, path, st);
    if (!s.ok()) return s;
    *fd = opened.release();
    return Status::OK();
  }

  Status OpenReadOnlyView(const std::string& root, int* dir_fd) override;

  Status OpenReadOnlyBeneath(int dir_fd, const std::string& relative, const std::string& path, int* fd,
                             FileStat* st) override {
    int result = OpenAt2Beneath(dir_fd, relative.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY, 0);
    if (result < 0) return BeneathError("open", path, errno);
    Fd opened(result);
    Status s = CheckRegular(result, path, st);
    if (!s.ok()) return s;
    *fd = opened.release();
    return Status::OK();
  }

  Status Stat(const std::string& path, FileStat* st) override {
    Fd dir;
    std::string name;
    Status s = OpenParent(path, &dir, &name);
    if (!s.ok()) return s;
    struct stat raw {};
    if (::fstatat(dir.get(), name.c_str(), &raw, AT_SYMLINK_NOFOLLOW) != 0) return PosixError("stat " + path, errno);
    *st = StatFrom(raw);
    return Status::OK();
  }

  Status RenameNoReplace(const std::string& from, const std::string& to, bool* existed) override {
    *existed = false;
    Fd from_dir, to_dir;
    std::string from_name, to_name;
    Status s = OpenParent(from, &from_dir, &from_name);
    if (s.ok()) s = OpenParent(to, &to_dir, &to_name);
    if (!s.ok()) return s;
    if (::renameat2(from_dir.get(), from_name.c_str(), to_dir.get(), to_name.c_str(), RENAME_NOREPLACE) == 0) {
      return Status::OK();
    }
    int err = errno;
    if (err == EEXIST) {
      *existed = true;
      return Status::OK();
    }
    if (err != EINVAL && err != ENOSYS) return PosixError("rename " + from + " to " + to, err);
    // The file system cannot rename without replacing (some FUSE and network
    // file systems). link(2) has the same never-replace guarantee; the cost
    // is a moment in which both names exist, which Init cleans up.
    if (::linkat(from_dir.get(), from_name.c_str(), to_dir.get(), to_name.c_str(), 0) != 0) {
      err = errno;
      if (err == EEXIST) {
        *existed = true;
        return Status::OK();
      }
      return PosixError("link " + from + " to " + to, err);
    }
    if (::unlinkat(from_dir.get(), from_name.c_str(), 0) != 0) return PosixError("unlink " + from, errno);
    return Status::OK();
  }

  Status RemoveFile(const std::string& path) override {
    Fd dir;
    std::string name;
    Status s = OpenParent(path, &dir, &name);
    if (!s.ok()) return s;
    // unlinkat removes the name itself: a symlink goes, its target stays.
    if (::unlinkat(dir.get(), name.c_str(), 0) != 0) return PosixError("remove " + path, errno);
    return Status::OK();
  }

  Status Chmod(const std::string& path, mode_t mode) override {
    Place place = Locate(path);
    int fd = OpenPath(place, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY, 0);
    if (fd < 0) return BeneathError("chmod", path, errno);
    Fd opened(fd);
    if (::fchmod(fd, mode) != 0) return PosixError("chmod " + path, errno);
    return Status::OK();
  }

  Status CreateDirs(const std::string& path, mode_t mode) override {
    if (path.empty()) return Status::InvalidArgument("cannot create a directory with an empty path");
    Place place = Locate(path);
    if (place.confined()) return CreateDirsBeneath(place, path, mode);
    // Walk the prefixes from the root so that every missing parent gets
    // `mode` too, not the process default.
    size_t pos = 0;
    while (pos != std::string::npos) {
      pos = path.find('/', pos + 1);
      std::string prefix = path.substr(0, pos);
      if (prefix.empty() || prefix.back() == '/') continue;  // "//" in the path
      if (::mkdir(prefix.c_str(), mode) == 0) continue;
      int err = errno;
      if (err != EEXIST) return PosixError("mkdir " + prefix, err);
      struct stat st {};
      if (::stat(prefix.c_str(), &st) != 0) return PosixError("stat " + prefix, errno);
      if (!S_ISDIR(st.st_mode)) return PosixError("mkdir " + prefix, ENOTDIR);
    }
    return Status::OK();
  }

  // Each component is made (mkdirat) and entered (openat2, no symlink)
  // beneath the store: a link on the way is an error, never followed.
  Status CreateDirsBeneath(const Place& place, const std::string& path, mode_t mode) {
    Fd current(::fcntl(place.dir_fd, F_DUPFD_CLOEXEC, 0));
    if (current.get() < 0) return PosixError("dup", errno);
    size_t begin = 0;
    const std::string& rel = place.relative;
    while (begin < rel.size()) {
      size_t end = rel.find('/', begin);
      if (end == std::string::npos) end = rel.size();
      std::string component = rel.substr(begin, end - begin);
      begin = end + 1;
      if (component.empty() || component == ".") continue;
      if (::mkdirat(current.get(), component.c_str(), mode) != 0 && errno != EEXIST) {
        return PosixError("mkdir " + path, errno);
      }
      int next = OpenAt2Beneath(current.get(), component.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW, 0);
      if (next < 0) {
        int err = errno;
        if (err == ENOTDIR) return Status::IOError("mkdir " + path + ": " + component + " is not a directory");
        return BeneathError("mkdir", path, err);
      }
      current = Fd(next);
    }
    return Status::OK();
  }

  Status SyncDir(const std::string& path) override {
    Place place = Locate(path);
    int fd = OpenPath(place, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0);
    if (fd < 0) return BeneathError("open directory", path, errno);
    int result = ::fsync(fd);
    int err = errno;
    ::close(fd);
    // A few file systems cannot fsync a directory and say so with EINVAL;
    // they order metadata themselves, so there is nothing more to do.
    if (result != 0 && err != EINVAL) return PosixError("fsync directory " + path, err);
    return Status::OK();
  }

  Status GetChildren(const std::string& dir, std::vector<std::string>* names) override {
    std::vector<DirEntry> entries;
    Status s = ListDir(dir, &entries);
    names->clear();
    for (auto& entry : entries) names->push_back(std::move(entry.name));
    return s;
  }

  Status ListDir(const std::string& dir, std::vector<DirEntry>* entries) override {
    entries->clear();
    Place place = Locate(dir);
    int fd = OpenPath(place, O_RDONLY | O_DIRECTORY | (place.confined() ? O_NOFOLLOW : 0), 0);
    if (fd < 0) return BeneathError("open directory", dir, errno);
    DIR* stream = ::fdopendir(fd);
    if (stream == nullptr) {
      int err = errno;
      ::close(fd);
      return PosixError("read directory " + dir, err);
    }
    for (;;) {
      errno = 0;
      const dirent* entry = ::readdir(stream);
      if (entry == nullptr) break;
      std::string_view name = entry->d_name;
      if (name == "." || name == "..") continue;
      FileStat::Type type = TypeFromDirent(entry->d_type);
      if (entry->d_type == DT_UNKNOWN) {
        // Some file systems do not fill d_type: ask the inode.
        struct stat st {};
        if (::fstatat(::dirfd(stream), entry->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0) type = StatFrom(st).type;
      }
      entries->push_back(DirEntry{std::string(name), type});
    }
    int err = errno;
    ::closedir(stream);
    if (err != 0) return PosixError("read directory " + dir, err);
    return Status::OK();
  }

  bool FileExists(const std::string& path) override {
    FileStat st;
    return Stat(path, &st).ok();
  }

  Status FreeSpace(const std::string& path, uint64_t* bytes) override {
    FsSpace space;
    Status s = GetFsSpace(path, &space);
    if (s.ok()) *bytes = space.available;
    return s;
  }

  Status GetFsSpace(const std::string& path, FsSpace* space) override {
    Place place = Locate(path);
    int fd = OpenPath(place, O_PATH, 0);
    if (fd < 0) return BeneathError("statvfs", path, errno);
    Fd opened(fd);
    struct statvfs info {};
    if (::fstatvfs(fd, &info) != 0) return PosixError("statvfs " + path, errno);
    // f_bavail, not f_bfree: blocks reserved for root are not ours to use.
    space->available = static_cast<uint64_t>(info.f_bavail) * static_cast<uint64_t>(info.f_frsize);
    space->total = static_cast<uint64_t>(info.f_blocks) * static_cast<uint64_t>(info.f_frsize);
    return Status::OK();
  }

  Status Preallocate(const std::string& path, uint64_t size) override {
    Place place = Locate(path);
    int fd = OpenPath(place, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600);
    if (fd < 0) return BeneathError("create", path, errno);
    Fd opened(fd);
    int err = ::posix_fallocate(fd, 0, static_cast<off_t>(size));
    if (err == EOPNOTSUPP || err == EINVAL) {
      // No fallocate (some FUSE file systems): write zeros instead.
      std::vector<char> zeros(std::min<uint64_t>(size, 1 << 20));
      uint64_t left = size;
      err = 0;
      while (left > 0 && err == 0) {
        ssize_t n = ::write(fd, zeros.data(), std::min<uint64_t>(left, zeros.size()));
        if (n < 0) err = errno;
        else left -= static_cast<uint64_t>(n);
      }
    }
    if (err == 0 && ::fsync(fd) != 0) err = errno;
    if (err != 0) {
      opened = Fd();
      static_cast<void>(RemoveFile(path));
      return PosixError("allocate " + path, err);
    }
    return Status::OK();
  }

  Status WriteFileAtomic(const std::string& path, std::string_view contents, mode_t mode) override {
    // The temporary file sits next to the target so that rename(2) stays on
    // one file system and is atomic.
    std::string temp = path + ".tmp-" + RandomSuffix();
    Place place = Locate(temp);
    int fd = OpenPath(place, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode);
    if (fd < 0) return BeneathError("create", temp, errno);
    Status s = WriteAll(fd, temp, reinterpret_cast<const std::byte*>(contents.data()),
                        contents.size());
    if (s.ok() && ::fsync(fd) != 0) s = PosixError("fsync " + temp, errno);
    if (::close(fd) != 0 && s.ok() && errno != EINTR) s = PosixError("close " + temp, errno);
    if (s.ok()) {
      Fd from_dir, to_dir;
      std::string from_name, to_name;
      s = OpenParent(temp, &from_dir, &from_name);
      if (s.ok()) s = OpenParent(path, &to_dir, &to_name);
      if (s.ok() && ::renameat(from_dir.get(), from_name.c_str(), to_dir.get(), to_name.c_str()) != 0) {
        s = PosixError("rename " + temp + " to " + path, errno);
      }
    }
    if (!s.ok()) {
      static_cast<void>(RemoveFile(temp));
      return s;
    }
    return SyncDir(DirName(path));
  }

  int64_t NowMicros() override {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1'000;
  }

 private:
  std::mutex roots_mu_;
  std::vector<std::shared_ptr<LockedRoot>> roots_;
};

PosixStoreLock::~PosixStoreLock() { env_->Unlock(root_); }

// Sends one descriptor over a socket; raw syscalls only (a forked child).
bool SendFd(int socket, int fd) {
  char byte = 'v';
  iovec io{&byte, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &io;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
  cmsg->cmsg_level = SOL_SOCKET;
  cmsg->cmsg_type = SCM_RIGHTS;
  cmsg->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(cmsg), &fd, sizeof fd);
  return ::sendmsg(socket, &msg, MSG_NOSIGNAL) == 1;
}

int ReceiveFd(int socket) {
  char byte = 0;
  iovec io{&byte, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &io;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  do {
    n = ::recvmsg(socket, &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n != 1) return -1;
  cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
  if (cmsg == nullptr || cmsg->cmsg_type != SCM_RIGHTS) return -1;
  int fd = -1;
  std::memcpy(&fd, CMSG_DATA(cmsg), sizeof fd);
  return fd;
}

bool WriteProcFile(const char* path, const char* text) {
  int fd = ::open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  size_t len = std::strlen(text);
  bool ok = ::write(fd, text, len) == static_cast<ssize_t>(len);
  ::close(fd);
  return ok;
}

// Why a view: a descriptor on the blob itself lets its holder fchmod it and
// reopen /proc/self/fd/N for writing, changing the one copy every other
// reader gets. A file opened through a read-only mount refuses both
// (EROFS), and costs nothing: no copy, the same page cache. Making a mount
// needs CAP_SYS_ADMIN in the user namespace that owns the mount namespace,
// so a short-lived child enters new user and mount namespaces (as any
// unprivileged process may where user namespaces are allowed), clones the
// store as a detached mount (open_tree), makes it read-only (mount_setattr)
// and sends the descriptor back. The daemon itself never changes namespace.
Status PosixEnv::OpenReadOnlyView(const std::string& root, int* dir_fd) {
  int sockets[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sockets) != 0) return PosixError("socketpair", errno);
  Fd parent_end(sockets[0]), child_end(sockets[1]);
  const char* root_path = root.c_str();
  // Everything the child needs is prepared here: after fork in a threaded
  // process it may only make system calls.
  char uid_map[64], gid_map[64];
  std::snprintf(uid_map, sizeof uid_map, "%u %u 1\n", ::geteuid(), ::geteuid());
  std::snprintf(gid_map, sizeof gid_map, "%u %u 1\n", ::getegid(), ::getegid());
  pid_t pid = ::fork();
  if (pid < 0) return PosixError("fork", errno);
  if (pid == 0) {
    if (::unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) ::_exit(10);
    WriteProcFile("/proc/self/setgroups", "deny");
    if (!WriteProcFile("/proc/self/uid_map", uid_map) || !WriteProcFile("/proc/self/gid_map", gid_map)) ::_exit(11);
    // By path, not through root_fd: that names a mount of the namespace
    // just left, which open_tree may not clone from here.
    long tree = ::syscall(SYS_open_tree, AT_FDCWD, root_path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
    if (tree < 0) ::_exit(12);
    mount_attr attr{};
    attr.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;
    if (::syscall(SYS_mount_setattr, static_cast<int>(tree), "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) != 0) {
      ::_exit(13);
    }
    ::_exit(SendFd(sockets[1], static_cast<int>(tree)) ? 0 : 14);
  }
  child_end = Fd();
  int view = ReceiveFd(parent_end.get());
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (view < 0) {
    const int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    const char* step = code == 10   ? "no user namespace could be made (unshare)"
                       : code == 11 ? "the user namespace's id maps could not be written"
                       : code == 12 ? "the store could not be cloned as a mount (open_tree)"
                       : code == 13 ? "the mount could not be made read-only (mount_setattr)"
                                    : "the helper process failed";
    return Status::IOError("no read-only view of " + root + ": " + step);
  }
  // The child found the store by its path: make sure that is still the
  // directory this process locked (the path may go through a link that
  // was repointed meanwhile).
  Place place = Locate(root);
  struct stat view_st {}, root_st {};
  if (place.confined() && (::fstat(view, &view_st) != 0 || ::fstat(place.dir_fd, &root_st) != 0 ||
                           view_st.st_dev != root_st.st_dev || view_st.st_ino != root_st.st_ino)) {
    ::close(view);
    return Status::IOError("no read-only view of " + root + ": its path now leads to another directory");
  }
  *dir_fd = view;
  return Status::OK();
}

}  // namespace

std::string DescribeType(FileStat::Type type) {
  switch (type) {
    case FileStat::Type::kRegular: return "a regular file";
    case FileStat::Type::kDirectory: return "a directory";
    case FileStat::Type::kSymlink: return "a symbolic link";
    case FileStat::Type::kOther: break;
  }
  return "a FIFO, socket or device";
}

std::unique_ptr<WritableFile> NewPosixWritableFile(std::string path, int fd,
                                                   const PosixFileOptions& options) {
  return std::make_unique<PosixWritableFile>(std::move(path), fd, options);
}

Env* Env::Default() {
  // Leaked on purpose: threads may still use it while static destructors run.
  static Env* const env = new PosixEnv();
  return env;
}

}  // namespace costore
