#include "tests/daemon/engine/crash_env.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

namespace costore::test {
namespace {

// One spelling per path, so that "a/b/" and "a//b" name the same directory.
std::string Normal(const std::string& path) {
  std::string out = std::filesystem::path(path).lexically_normal().string();
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  return out;
}

std::string Parent(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }

}  // namespace

// Counts each call and keeps track of the bytes appended and synced.
class CrashWritableFile final : public WritableFile {
 public:
  CrashWritableFile(CrashEnv* env, std::unique_ptr<WritableFile> target,
                    std::shared_ptr<CrashEnv::TrackedFile> tracked)
      : env_(env), target_(std::move(target)), tracked_(std::move(tracked)) {}

  Status Append(std::span<const std::byte> data) override {
    Status s = env_->Begin("Append", path());
    if (!s.ok()) return s;
    s = target_->Append(data);
    // Counted even when it failed: a short write may have written some.
    std::lock_guard<std::mutex> lock(env_->mu_);
    tracked_->size += s.ok() ? data.size() : 0;
    return s;
  }

  Status Sync() override {
    Status s = env_->Begin("Sync", path());
    if (!s.ok()) return s;
    uint64_t size = 0, seq = 0;
    {
      std::lock_guard<std::mutex> lock(env_->mu_);
      size = tracked_->size;
      seq = env_->next_seq_++;
    }
    s = target_->Sync();
    if (!s.ok()) return s;
    std::lock_guard<std::mutex> lock(env_->mu_);
    tracked_->synced = std::max(tracked_->synced, size);
    // A journaled file system commits every earlier name change with it.
    if (env_->semantics_ == CrashEnv::Semantics::kJournaled) env_->NoteSync("", seq);
    return s;
  }

  Status Close() override {
    Status s = env_->Begin("Close", path());
    if (!s.ok()) {
      // The dead process's descriptors are closed all the same.
      static_cast<void>(target_->Close());
      return s;
    }
    return target_->Close();
  }

  const std::string& path() const override { return target_->path(); }

 private:
  CrashEnv* env_;
  std::unique_ptr<WritableFile> target_;
  std::shared_ptr<CrashEnv::TrackedFile> tracked_;
};

CrashEnv::CrashEnv(Env* target, std::string scratch_dir, Semantics semantics)
    : EnvWrapper(target), scratch_dir_(Normal(scratch_dir)), semantics_(semantics) {
  std::error_code ec;
  std::filesystem::create_directories(scratch_dir_, ec);
}

CrashEnv::~CrashEnv() = default;

void CrashEnv::SimulateCrash() { Die(); }

void CrashEnv::Die() {
  crashed_ = true;
  std::call_once(crash_hook_once_, [this] {
    if (crash_hook_) crash_hook_();
  });
}

std::string CrashEnv::Operation(int64_t k) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (k < 1 || static_cast<size_t>(k) > operation_names_.size()) return "";
  return operation_names_[static_cast<size_t>(k - 1)];
}

Status CrashEnv::Begin(const char* name, const std::string& path) {
  const int64_t k = ++operations_;
  if (record_operations_) {
    std::lock_guard<std::mutex> lock(mu_);
    if (operation_names_.size() < static_cast<size_t>(k)) operation_names_.resize(static_cast<size_t>(k));
    operation_names_[static_cast<size_t>(k - 1)] = std::string(name) + " " + path;
  }
  const int64_t limit = crash_after_.load();
  if (limit >= 0 && k > limit) Die();
  if (crashed_) return Status::IOError(std::string(name) + " " + path + ": the process is dead (simulated crash)");
  return Status::OK();
}

bool CrashEnv::Durable(const std::string& dir, uint64_t seq) const {
  auto it = synced_before_.find(semantics_ == Semantics::kJournaled ? std::string() : dir);
  return it != synced_before_.end() && seq < it->second;
}

std::string CrashEnv::FindInode(ino_t ino, const std::string& hint) const {
  struct stat st {};
  if (::lstat(hint.c_str(), &st) == 0 && st.st_ino == ino) return hint;
  for (const Change& change : changes_) {
    if (change.kind == Change::kRemove && change.ino == ino && !change.saved.empty()) return change.saved;
  }
  return "";
}

void CrashEnv::NoteSync(const std::string& dir, uint64_t seq) {
  uint64_t& before = synced_before_[semantics_ == Semantics::kJournaled ? std::string() : dir];
  before = std::max(before, seq);
}

Status CrashEnv::NewWritableFile(const std::string& path, mode_t mode, std::unique_ptr<WritableFile>* out) {
  Status s = Begin("NewWritableFile", path);
  if (!s.ok()) return s;
  // Held across the call so that changes are logged in the order they happen.
  std::lock_guard<std::mutex> lock(mu_);
  std::unique_ptr<WritableFile> file;
  s = target()->NewWritableFile(path, mode, &file);
  if (!s.ok()) return s;
  auto tracked = std::make_shared<TrackedFile>();
  tracked->path = Normal(path);
  files_.push_back(tracked);
  changes_.push_back(Change{Change::kCreateFile, "", tracked->path, "", next_seq_++});
  *out = std::make_unique<CrashWritableFile>(this, std::move(file), std::move(tracked));
  return s;
}

Status CrashEnv::LockStore(const std::string& root, std::unique_ptr<StoreLock>* lock) {
  Status s = Begin("LockStore", root);
  if (!s.ok()) return s;
  std::lock_guard<std::mutex> guard(mu_);
  // The lock is a file in the store directory; made now unless it is there.
  std::vector<std::string> before;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(root, ec)) before.push_back(entry.path().string());
  s = target()->LockStore(root, lock);
  if (!s.ok()) return s;
  for (const auto& entry : std::filesystem::directory_iterator(root, ec)) {
    const std::string name = Normal(entry.path().string());
    if (std::find(before.begin(), before.end(), entry.path().string()) == before.end()) {
      changes_.push_back(Change{Change::kCreateFile, "", name, "", next_seq_++});
    }
  }
  return s;
}

Status CrashEnv::OpenReadOnly(const std::string& path, int* fd, FileStat* st) {
  Status s = Begin("OpenReadOnly", path);
  if (!s.ok()) return s;
  return target()->OpenReadOnly(path, fd, st);
}

Status CrashEnv::OpenReadOnlyView(const std::string& root, int* dir_fd) {
  Status s = Begin("OpenReadOnlyView", root);
  if (!s.ok()) return s;
  return target()->OpenReadOnlyView(root, dir_fd);
}

Status CrashEnv::OpenReadOnlyBeneath(int dir_fd, const std::string& relative, const std::string& path, int* fd,
                                     FileStat* st) {
  Status s = Begin("OpenReadOnlyBeneath", path);
  if (!s.ok()) return s;
  return target()->OpenReadOnlyBeneath(dir_fd, relative, path, fd, st);
}

Status CrashEnv::Stat(const std::string& path, FileStat* st) {
  Status s = Begin("Stat", path);
  if (!s.ok()) return s;
  return target()->Stat(path, st);
}

Status CrashEnv::RenameNoReplace(const std::string& from, const std::string& to, bool* existed) {
  Status s = Begin("RenameNoReplace", from + " -> " + to);
  if (!s.ok()) return s;
  std::lock_guard<std::mutex> lock(mu_);
  s = target()->RenameNoReplace(from, to, existed);
  if (!s.ok() || *existed) return s;
  const std::string old_name = Normal(from), new_name = Normal(to);
  struct stat st {};
  const ino_t ino = ::lstat(new_name.c_str(), &st) == 0 ? st.st_ino : 0;
  changes_.push_back(Change{Change::kRename, old_name, new_name, "", next_seq_++, ino});
  for (auto& file : files_) {
    if (file->path == old_name) file->path = new_name;
  }
  return s;
}

Status CrashEnv::RemoveFile(const std::string& path) {
  Status s = Begin("RemoveFile", path);
  if (!s.ok()) return s;
  std::lock_guard<std::mutex> lock(mu_);
  // Kept aside (a second link to the same inode), in case the removal
  // turns out not to be durable.
  std::string saved = scratch_dir_ + "/removed-" + std::to_string(++saved_count_);
  struct stat st {};
  const ino_t ino = ::lstat(path.c_str(), &st) == 0 ? st.st_ino : 0;
  bool kept = ::link(path.c_str(), saved.c_str()) == 0;
  if (!kept && errno == EXDEV) {
    std::error_code ec;
    kept = std::filesystem::copy_file(path, saved, ec);
  }
  s = target()->RemoveFile(path);
  if (!s.ok()) {
    if (kept) ::unlink(saved.c_str());
    return s;
  }
  if (!kept) saved.clear();
  const std::string name = Normal(path);
  changes_.push_back(Change{Change::kRemove, name, "", saved, next_seq_++, ino});
  for (auto& file : files_) {
    if (file->path == name) file->path = saved;
  }
  return s;
}

Status CrashEnv::Chmod(const std::string& path, mode_t mode) {
  Status s = Begin("Chmod", path);
  if (!s.ok()) return s;
  return target()->Chmod(path, mode);
}

Status CrashEnv::CreateDirs(const std::string& path, mode_t mode) {
  Status s = Begin("CreateDirs", path);
  if (!s.ok()) return s;
  std::lock_guard<std::mutex> lock(mu_);
  // Which of the directories on the way are missing, and so are made now.
  std::vector<std::string> missing;
  const std::string full = Normal(path);
  for (size_t pos = full.find('/', 1);; pos = full.find('/', pos + 1)) {
    const std::string prefix = full.substr(0, pos);
    struct stat st {};
    if (::lstat(prefix.c_str(), &st) != 0 && errno == ENOENT) missing.push_back(prefix);
    if (pos == std::string::npos) break;
  }
  s = target()->CreateDirs(path, mode);
  for (const std::string& dir : missing) {
    struct stat st {};
    if (::lstat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
      changes_.push_back(Change{Change::kMakeDir, "", dir, "", next_seq_++});
    }
  }
  return s;
}

Status CrashEnv::SyncDir(const std::string& path) {
  Status s = Begin("SyncDir", path);
  if (!s.ok()) return s;
  uint64_t seq = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    seq = next_seq_++;
  }
  s = target()->SyncDir(path);
  if (!s.ok()) return s;
  std::lock_guard<std::mutex> lock(mu_);
  NoteSync(Normal(path), seq);
  return s;
}

Status CrashEnv::GetChildren(const std::string& dir, std::vector<std::string>* names) {
  Status s = Begin("GetChildren", dir);
  if (!s.ok()) return s;
  return target()->GetChildren(dir, names);
}

Status CrashEnv::ListDir(const std::string& dir, std::vector<DirEntry>* entries) {
  Status s = Begin("ListDir", dir);
  if (!s.ok()) return s;
  return target()->ListDir(dir, entries);
}

Status CrashEnv::GetFsSpace(const std::string& path, FsSpace* space) {
  Status s = Begin("GetFsSpace", path);
  if (!s.ok()) return s;
  return target()->GetFsSpace(path, space);
}

Status CrashEnv::Preallocate(const std::string& path, uint64_t size) {
  Status s = Begin("Preallocate", path);
  if (!s.ok()) return s;
  std::lock_guard<std::mutex> lock(mu_);
  struct stat st {};
  const bool existed = ::lstat(path.c_str(), &st) == 0;
  s = target()->Preallocate(path, size);
  if (!s.ok() || existed) return s;
  changes_.push_back(Change{Change::kCreateFile, "", Normal(path), "", next_seq_++});
  return s;
}

bool CrashEnv::FileExists(const std::string& path) {
  if (!Begin("FileExists", path).ok()) return false;
  return target()->FileExists(path);
}

Status CrashEnv::FreeSpace(const std::string& path, uint64_t* bytes) {
  Status s = Begin("FreeSpace", path);
  if (!s.ok()) return s;
  return target()->FreeSpace(path, bytes);
}

Status CrashEnv::WriteFileAtomic(const std::string& path, std::string_view contents, mode_t mode) {
  Status s = Begin("WriteFileAtomic", path);
  if (!s.ok()) return s;
  uint64_t seq = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    seq = next_seq_++;
  }
  s = target()->WriteFileAtomic(path, contents, mode);
  if (!s.ok()) return s;
  std::lock_guard<std::mutex> lock(mu_);
  // It fsynced the new file and then its directory: the file is durable,
  // and so is every earlier change in that directory.
  const std::string name = Normal(path);
  NoteSync(Parent(name), seq);
  for (auto& file : files_) {
    if (file->path == name) file->path.clear();  // replaced by a durable file
  }
  return s;
}

int64_t CrashEnv::NowMicros() {
  // Cannot fail; counted all the same.
  static_cast<void>(Begin("NowMicros", ""));
  return target()->NowMicros();
}

Status CrashEnv::DropUnsyncedData(std::vector<std::string>* report) {
  Die();
  std::lock_guard<std::mutex> lock(mu_);
  if (dropped_) return Status::InvalidArgument("DropUnsyncedData was already called");
  dropped_ = true;
  std::vector<std::string> lines;
  Status result;
  auto touched = [&](const std::string& path) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0) touched_inodes_.insert(st.st_ino);
  };
  auto failed = [&](const std::string& what) {
    lines.push_back("FAILED: " + what);
    if (result.ok()) result = Status::IOError(what);
  };

  // File data first (it belongs to the inode, whatever names it ends with).
  for (const auto& file : files_) {
    if (file->path.empty()) continue;
    struct stat st {};
    if (::lstat(file->path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if (static_cast<uint64_t>(st.st_size) <= file->synced) continue;
    const off_t length = static_cast<off_t>(file->synced);
    int rc = ::truncate(file->path.c_str(), length);
    if (rc != 0 && errno == EACCES) {
      // Read-only already (a blob is made 0444): the crash does not care.
      ::chmod(file->path.c_str(), (st.st_mode & 07777) | S_IWUSR);
      rc = ::truncate(file->path.c_str(), length);
      ::chmod(file->path.c_str(), st.st_mode & 07777);
    }
    if (rc != 0) {
      failed(Errno("truncate " + file->path));
      continue;
    }
    lines.push_back("truncated " + file->path + " from " + std::to_string(st.st_size) + " to " +
                    std::to_string(file->synced) + " bytes (the rest was never synced)");
  }

  // Then names, newest change first: when a change is undone, every later
  // change in the same directory is undone already (a SyncDir makes all
  // earlier changes of its directory durable, never a later one alone).
  for (auto it = changes_.rbegin(); it != changes_.rend(); ++it) {
    const Change& change = *it;
    switch (change.kind) {
      case Change::kCreateFile:
        if (Durable(Parent(change.to), change.seq)) break;
        if (::unlink(change.to.c_str()) == 0) {
          lines.push_back("removed " + change.to + ": its creation was never made durable");
        } else if (errno != ENOENT) {
          failed(Errno("unlink " + change.to));
        }
        break;
      case Change::kMakeDir: {
        if (Durable(Parent(change.to), change.seq)) break;
        std::error_code ec;
        if (std::filesystem::remove_all(change.to, ec) > 0) {
          lines.push_back("removed directory " + change.to + " and all below it: its creation was never made durable");
        }
        if (ec) failed("remove " + change.to + ": " + ec.message());
        break;
      }
      case Change::kRemove:
        if (Durable(Parent(change.from), change.seq)) break;
        if (change.saved.empty()) {
          failed("cannot restore " + change.from + ": it could not be kept aside when it was removed");
        } else if (::link(change.saved.c_str(), change.from.c_str()) == 0) {
          touched(change.from);
          lines.push_back("restored " + change.from + ": its removal was never made durable");
        } else {
          failed(Errno("restore " + change.from));
        }
        break;
      case Change::kRename: {
        const bool added = Durable(Parent(change.to), change.seq);
        const bool removed = Durable(Parent(change.from), change.seq);
        if (added && removed) break;
        if (!added && !removed) {
          if (::rename(change.to.c_str(), change.from.c_str()) == 0) {
            touched(change.from);
            lines.push_back("moved " + change.to + " back to " + change.from + ": the rename was never made durable");
          } else {
            failed(Errno("move " + change.to + " back to " + change.from));
          }
        } else if (!added) {
          if (::unlink(change.to.c_str()) == 0) {
            lines.push_back("removed " + change.to + ": renamed from " + change.from +
                            ", whose removal was made durable but not the new name");
          } else {
            failed(Errno("unlink " + change.to));
          }
        } else {
          // The new name may be gone since (a later, durable removal).
          const std::string source = FindInode(change.ino, change.to);
          if (!source.empty() && ::link(source.c_str(), change.from.c_str()) == 0) {
            touched(change.from);
            lines.push_back("restored " + change.from + " (renamed to " + change.to +
                            "): the new name was made durable but not the removal of the old one");
          } else {
            failed(Errno("restore " + change.from + " from " + (source.empty() ? change.to : source)));
          }
        }
        break;
      }
    }
  }

  // What was kept aside is not part of the file system.
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(scratch_dir_, ec)) {
    std::filesystem::remove_all(entry.path(), ec);
  }
  changes_.clear();
  files_.clear();
  if (report != nullptr) *report = std::move(lines);
  return result;
}

}  // namespace costore::test
