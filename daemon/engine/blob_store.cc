#include "daemon/engine/blob_store.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <memory>
#include <mutex>
#include <thread>

#include "daemon/engine/sha256.h"

namespace costore {
namespace {

// One read(2) fills this much at most. Measured on a 1 GiB file (warm cache,
// SHA-NI): CPU per GiB is flat from 128 KiB up (~0.95 s, most of it hashing)
// and ~10% higher at 64 KiB; 1 MiB keeps syscalls few and memory trivial.
constexpr size_t kReadBufferSize = size_t{1} << 20;

// Hashing is the slowest step of an ingest (SHA-256 with SHA-NI: about
// 0.75 s per GiB, against about 0.3 s to read and write the bytes through the
// page cache), so it runs on a thread of its own, on buffers the copy has
// filled: the two overlap and a store costs one pass over the bytes. The ring
// lets the copy run ahead of the hash by this many buffers; memory stays flat
// (kRingSlots * kReadBufferSize per ingest).
constexpr size_t kRingSlots = 4;

// While waiting for a pipe, the cancellation flag and the rate floor are
// looked at this often, so that a cancelled ingest does not sit out the
// whole idle timeout.
constexpr int kCancelPollIntervalMs = 100;

constexpr std::string_view kCacheDirTag =
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by costore (content-addressed model files).\n"
    "# For information about cache directory tags, see https://bford.info/cachedir/\n";

// Best-effort cleanup on paths that already failed or no longer matter: the
// original error is the one worth reporting, and Init empties ingest/ anyway.
void RemoveQuietly(Env* env, const std::string& path) { static_cast<void>(env->RemoveFile(path)); }

std::string RandomHex() {
  uint64_t value = 0;
  if (getrandom(&value, sizeof value, 0) != static_cast<ssize_t>(sizeof value)) {
    value = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) ^
            (static_cast<uint64_t>(getpid()) << 40);
  }
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(value));
  return text;
}

// "120 seconds", "0.2 seconds": the idle timeout as a person reads it.
std::string DescribeMillis(int ms) {
  ms = std::max(ms, 0);
  std::string text = std::to_string(ms / 1000);
  if (int rest = ms % 1000; rest != 0) {
    std::string fraction = std::to_string(1000 + rest).substr(1);  // "200"
    while (fraction.back() == '0') fraction.pop_back();
    text += "." + fraction;
  }
  return text + (ms == 1000 ? " second" : " seconds");
}

std::string DescribeSize(uint64_t bytes) {
  return std::to_string(bytes) + (bytes == 1 ? " byte" : " bytes");
}

int64_t SteadyMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// The request's rate floor, if any, with `received` bytes so far.
Status CheckRate(const IngestRequest& request, uint64_t received) {
  if (request.rate_floor == nullptr) return Status::OK();
  return request.rate_floor->Observe(SteadyMicros(), received);
}

// Waits until `fd` is readable, the idle timeout passes (Cancelled), the
// source falls below the rate floor, or the caller cancels. Returns OK when
// a read(2) will not block (it may yield EOF or an error, which the read
// reports).
Status WaitReadable(int fd, const IngestRequest& request, uint64_t received) {
  using Clock = std::chrono::steady_clock;
  const Clock::time_point deadline =
      Clock::now() + std::chrono::milliseconds(std::max(request.idle_timeout_ms, 0));
  for (;;) {
    if (request.cancelled != nullptr && request.cancelled->load()) {
      return Status::Cancelled("the write was cancelled");
    }
    if (Status s = CheckRate(request, received); !s.ok()) return s;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      return Status::Cancelled("no data from the source for " +
                               DescribeMillis(request.idle_timeout_ms) + "; giving up");
    }
    int wait_ms = static_cast<int>(left.count());
    if (request.cancelled != nullptr || request.rate_floor != nullptr) {
      wait_ms = std::min(wait_ms, kCancelPollIntervalMs);
    }
    pollfd pfd{fd, POLLIN, 0};
    int ready = ::poll(&pfd, 1, wait_ms);
    if (ready > 0) return Status::OK();
    if (ready < 0 && errno != EINTR) return Status::FromErrno("poll source descriptor", errno);
  }
}

// Refuses descriptors that can never be read to EOF, before any file is made.
Status CheckSource(int fd, bool* is_regular) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    if (err == EBADF) return Status::InvalidArgument("source descriptor is not open");
    return Status::FromErrno("fstat source descriptor", err);
  }
  if (S_ISDIR(st.st_mode)) return Status::InvalidArgument("source descriptor is a directory");
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0) return Status::FromErrno("fcntl source descriptor", errno);
  if ((flags & O_PATH) != 0) {
    return Status::InvalidArgument("source descriptor is an O_PATH descriptor; it cannot be read");
  }
  if ((flags & O_ACCMODE) == O_WRONLY) {
    return Status::InvalidArgument("source descriptor is open for writing only; it cannot be read");
  }
  *is_regular = S_ISREG(st.st_mode);
  return Status::OK();
}

// Hashes buffers on its own thread, in the order they are submitted. The
// caller fills the buffer Acquire returns, then Submits it; a buffer is
// handed out again only once it is hashed.
class HashPipeline {
 public:
  HashPipeline() {
    for (auto& buffer : buffers_) buffer = std::make_unique_for_overwrite<std::byte[]>(kReadBufferSize);
    thread_ = std::thread([this] { Run(); });
  }
  ~HashPipeline() { Join(); }
  HashPipeline(const HashPipeline&) = delete;
  HashPipeline& operator=(const HashPipeline&) = delete;

  // A free buffer of kReadBufferSize bytes; waits while every one is queued.
  std::byte* Acquire() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return submitted_ - hashed_ < kRingSlots; });
    return buffers_[submitted_ % kRingSlots].get();
  }
  // Queues the first `n` bytes of the buffer from the last Acquire.
  void Submit(size_t n) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      lengths_[submitted_ % kRingSlots] = n;
      ++submitted_;
    }
    cv_.notify_all();
  }
  // Hashes what is queued and returns the digest of everything submitted.
  Digest Finish() {
    Join();
    return hasher_.Finish();
  }

 private:
  void Run() {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      cv_.wait(lock, [&] { return hashed_ < submitted_ || done_; });
      if (hashed_ == submitted_) return;  // done, and nothing queued
      const size_t slot = hashed_ % kRingSlots;
      const std::span<const std::byte> chunk(buffers_[slot].get(), lengths_[slot]);
      lock.unlock();
      hasher_.Update(chunk);
      lock.lock();
      ++hashed_;
      cv_.notify_all();
    }
  }
  void Join() {
    if (!thread_.joinable()) return;
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  std::array<std::unique_ptr<std::byte[]>, kRingSlots> buffers_;
  std::array<size_t, kRingSlots> lengths_{};
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t submitted_ = 0;  // buffers, guarded by mu_
  uint64_t hashed_ = 0;
  bool done_ = false;
  Sha256 hasher_;  // touched by the thread only, until it is joined
  std::thread thread_;
};

struct Received {
  Digest digest;
  uint64_t size = 0;
  bool size_exceeded = false;  // stopped one byte past the limit
};

// Streams the source into `file`, hashing on the way (on a second thread,
// see HashPipeline), with a fixed ring of buffers so that memory stays flat
// whatever the size.
Status CopyAndHash(const IngestRequest& request, bool source_is_regular, WritableFile* file,
                   Received* received) {
  // A caller with no expected size still cannot store more than the limit.
  const uint64_t limit = request.expected_size.value_or(BlobStore::kMaxFileSize);
  HashPipeline hasher;
  uint64_t total = 0;
  uint64_t next_check = 0;
  for (;;) {
    if (request.check_progress && total >= next_check) {
      Status s = request.check_progress(total);
      if (!s.ok()) return s;
      next_check = total + BlobStore::kProgressCheckBytes;
    }
    if (request.cancelled != nullptr && request.cancelled->load()) {
      return Status::Cancelled("the write was cancelled");
    }
    if (!source_is_regular) {
      Status s = WaitReadable(request.source_fd, request, total);
      if (!s.ok()) return s;
    }
    // Reading one byte past the limit is enough to know the source is too
    // long; an endless source is not drained.
    const size_t want = static_cast<size_t>(std::min<uint64_t>(kReadBufferSize, limit + 1 - total));
    std::byte* buffer = hasher.Acquire();
    // read(2), not pread(2): callers watch progress through the shared offset.
    // That open file description is the caller's, which is also why there is
    // no posix_fadvise(SEQUENTIAL) here: it would change the caller's
    // read-ahead, and it measured no faster than the default.
    ssize_t n = ::read(request.source_fd, buffer, want);
    if (n < 0) {
      if (errno == EINTR) continue;
      // A non-blocking pipe: poll says readable, but another reader of the
      // same pipe took the bytes. Wait again.
      if ((errno == EAGAIN || errno == EWOULDBLOCK) && !source_is_regular) continue;
      return Status::FromErrno("read source descriptor", errno);
    }
    if (n == 0) break;
    const std::span<const std::byte> chunk(buffer, static_cast<size_t>(n));
    hasher.Submit(chunk.size());  // hashed while this thread writes it
    Status s = file->Append(chunk);
    if (!s.ok()) return s;
    total += static_cast<uint64_t>(n);
    if (s = CheckRate(request, total); !s.ok()) return s;
    if (total > limit) {
      if (!request.expected_size) {
        return Status::InvalidArgument("source holds more than " + DescribeSize(limit) +
                                       " (1 PiB), the largest file the store accepts");
      }
      received->size_exceeded = true;
      break;
    }
  }
  received->digest = hasher.Finish();
  received->size = total;
  return Status::OK();
}

std::string DescribeMismatch(const IngestRequest& request, const Received& received) {
  std::string text = "bytes do not match: expected " + request.expected.ToString();
  if (request.expected_size) text += " (" + DescribeSize(*request.expected_size) + ")";
  if (received.size_exceeded) {
    // The digest of a truncated prefix would only mislead.
    return text + ", received more than " + DescribeSize(*request.expected_size);
  }
  return text + ", received " + received.digest.ToString() + " (" + DescribeSize(received.size) +
         ")";
}

}  // namespace

StagedBlob::~StagedBlob() {
  if (!path_.empty() && env_ != nullptr) RemoveQuietly(env_, path_);
}

StagedBlob::StagedBlob(StagedBlob&& other) noexcept
    : env_(other.env_),
      digest_(other.digest_),
      size_(other.size_),
      path_(std::move(other.path_)) {
  other.path_.clear();
}

StagedBlob& StagedBlob::operator=(StagedBlob&& other) noexcept {
  if (this != &other) {
    if (!path_.empty() && env_ != nullptr) RemoveQuietly(env_, path_);
    env_ = other.env_;
    digest_ = other.digest_;
    size_ = other.size_;
    path_ = std::move(other.path_);
    other.path_.clear();
  }
  return *this;
}

BlobStore::BlobStore(Env* env, std::string root)
    : env_(env),
      root_(std::move(root)),
      blobs_dir_(root_ + "/blobs/sha256"),
      private_dir_(root_ + "/private/sha256"),
      ingest_dir_(root_ + "/ingest"),
      quarantine_dir_(root_ + "/quarantine") {}

BlobStore::~BlobStore() {
  if (view_fd_ >= 0) ::close(view_fd_);
}

Status BlobStore::Quarantine(const std::string& path, const std::string& label, std::string* moved_to) {
  Status s = env_->CreateDirs(quarantine_dir_, 0700);
  if (!s.ok()) return s;
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &utc);
  // A stray's own name may be long: names here stay well under NAME_MAX.
  std::string short_label = label.size() > 160 ? label.substr(0, 160) + "-cut" : label;
  std::string base = quarantine_dir_ + "/" + stamp + "-" + short_label;
  std::string target = base;
  for (int attempt = 0; attempt < 8; ++attempt) {
    bool existed = false;
    s = env_->RenameNoReplace(path, target, &existed);
    if (!s.ok()) return s;
    if (!existed) {
      if (moved_to != nullptr) *moved_to = target.substr(root_.size() + 1);
      s = env_->SyncDir(quarantine_dir_);
      if (s.ok()) s = env_->SyncDir(path.substr(0, path.rfind('/')));
      return s;
    }
    target = base + "-" + RandomHex();
  }
  return Status::IOError("cannot move " + path + " to " + quarantine_dir_ + ": every name is taken");
}

Status BlobStore::EnsureDirectory(const std::string& dir, InitReport* report) {
  FileStat st;
  Status s = env_->Stat(dir, &st);
  if (s.ok() && st.type != FileStat::Type::kDirectory && dir == quarantine_dir_) {
    // quarantine/ itself is not a directory: it cannot hold itself. Renamed
    // aside first; once a real quarantine/ exists, moved into it.
    const std::string aside = root_ + "/quarantine-was-" +
                              (st.type == FileStat::Type::kSymlink ? "a-link-" : "not-a-directory-") + RandomHex();
    bool existed = false;
    s = env_->RenameNoReplace(dir, aside, &existed);
    if (s.ok()) s = env_->CreateDirs(dir, 0700);
    std::string moved_to;
    if (s.ok()) s = Quarantine(aside, aside.substr(root_.size() + 1), &moved_to);
    if (!s.ok()) return s;
    report->quarantined.push_back("quarantine (" + DescribeType(st.type) + ") -> " + moved_to);
    return Status::OK();
  }
  if (s.ok() && st.type != FileStat::Type::kDirectory) {
    // Never emptied through, never followed: moved aside whole.
    std::string label = dir.substr(root_.size() + 1);
    std::replace(label.begin(), label.end(), '/', '-');
    std::string moved_to;
    s = Quarantine(dir, label + "-was-" + (st.type == FileStat::Type::kSymlink ? "a-link" : "not-a-directory"),
                   &moved_to);
    if (!s.ok()) return s;
    report->quarantined.push_back(dir.substr(root_.size() + 1) + " (" + DescribeType(st.type) + ") -> " + moved_to);
  } else if (!s.ok() && s.code() != Code::kNotFound) {
    return s;
  }
  return env_->CreateDirs(dir, 0700);
}

Status BlobStore::Init(InitReport* report) {
  *report = InitReport{};
  // The root itself is checked (owner, mode) and held by Env::LockStore.
  Status s = env_->CreateDirs(root_, 0700);
  if (!s.ok()) return s;
  s = EnsureDirectory(quarantine_dir_, report);
  for (const std::string& dir : {root_ + "/blobs", blobs_dir_, root_ + "/private", private_dir_, ingest_dir_}) {
    if (s.ok()) s = EnsureDirectory(dir, report);
  }
  if (!s.ok()) return s;

  // What LockStore renamed aside (a link or FIFO where costored.lock goes).
  std::vector<DirEntry> top;
  s = env_->ListDir(root_, &top);
  if (!s.ok()) return s;
  for (const DirEntry& entry : top) {
    if (!entry.name.starts_with("costored.lock-was-not-a-file-")) continue;
    std::string moved_to;
    s = Quarantine(root_ + "/" + entry.name, "costored.lock", &moved_to);
    if (!s.ok()) return s;
    report->quarantined.push_back("costored.lock (" + DescribeType(entry.type) + ") -> " + moved_to);
  }

  const std::string tag = root_ + "/CACHEDIR.TAG";
  if (!env_->FileExists(tag)) {
    s = env_->WriteFileAtomic(tag, kCacheDirTag, 0644);
    if (!s.ok()) return s;
  }

  // Nothing in ingest/ outlives a process: a .part is a write that a crash
  // interrupted, and its caller has long gone; a .deleting is a removal
  // to finish. Only regular files and links are unlinked (a link's target
  // stays untouched); anything else is quarantined, never recursed into.
  std::vector<DirEntry> leftovers;
  s = env_->ListDir(ingest_dir_, &leftovers);
  if (!s.ok()) return s;
  for (const DirEntry& entry : leftovers) {
    const std::string path = ingest_dir_ + "/" + entry.name;
    if (entry.type != FileStat::Type::kRegular && entry.type != FileStat::Type::kSymlink) {
      std::string moved_to;
      s = Quarantine(path, "ingest-" + entry.name, &moved_to);
      if (!s.ok()) return s;
      report->quarantined.push_back("ingest/" + entry.name + " (" + DescribeType(entry.type) + ") -> " + moved_to);
      continue;
    }
    constexpr std::string_view kDeleting = ".deleting";
    if (entry.type == FileStat::Type::kRegular && entry.name.size() > kDeleting.size() &&
        entry.name.ends_with(kDeleting)) {
      const std::string name = entry.name.substr(0, entry.name.size() - kDeleting.size());
      Digest digest;
      if (name.size() == 64 && Digest::Parse("sha256:" + name, &digest).ok()) {
        // Left in place: it marks a removal to finish until its record is
        // gone (FinishRemove), so that a crash during this start still
        // finds it.
        report->interrupted_removals.push_back(digest);
        continue;
      }
    }
    s = env_->RemoveFile(path);
    if (!s.ok() && s.code() != Code::kNotFound) return s;
  }
  s = env_->SyncDir(ingest_dir_);
  if (!s.ok()) return s;
  // Directories made above are durable only once their parents are synced
  // (on file systems without a journal that commits everything at once):
  // the store's own entry in its parent too.
  const std::string parent = root_.substr(0, std::max<size_t>(root_.rfind('/'), 1));
  for (const std::string& dir : {parent, root_, root_ + "/blobs", root_ + "/private"}) {
    s = env_->SyncDir(dir);
    if (!s.ok()) return s;
  }
  return Status::OK();
}

Status BlobStore::UseReadOnlyView() {
  int fd = -1;
  Status s = env_->OpenReadOnlyView(root_, &fd);
  if (!s.ok()) return s;
  if (view_fd_ >= 0) ::close(view_fd_);
  view_fd_ = fd;
  return Status::OK();
}

Status BlobStore::Ingest(const IngestRequest& request, StagedBlob* staged) {
  if (request.expected_size && *request.expected_size > kMaxFileSize) {
    return Status::InvalidArgument("expected size of " + DescribeSize(*request.expected_size) +
                                   " is above the limit of 1 PiB (" + DescribeSize(kMaxFileSize) +
                                   ")");
  }
  bool source_is_regular = false;
  Status s = CheckSource(request.source_fd, &source_is_regular);
  if (!s.ok()) return s;

  if (request.expected_size) {
    // Refuse at once rather than after writing most of a file that cannot fit.
    uint64_t free_bytes = 0;
    s = env_->FreeSpace(root_, &free_bytes);
    if (!s.ok()) return s;
    if (*request.expected_size > free_bytes) {
      return Status::NoSpace("the file needs " + DescribeSize(*request.expected_size) + " but only " +
                             DescribeSize(free_bytes) + " are free on the file system of " + root_);
    }
  }

  const std::string part_path = ingest_dir_ + "/" + RandomHex() + ".part";
  std::unique_ptr<WritableFile> file;
  s = env_->NewWritableFile(part_path, 0600, &file);
  if (!s.ok()) return s;
  if (request.filter) file = request.filter(std::move(file));

  Received received;
  s = CopyAndHash(request, source_is_regular, file.get(), &received);
  if (s.ok() && (received.size_exceeded || received.digest != request.expected ||
                 (request.expected_size && received.size != *request.expected_size))) {
    // Checked before fsync: bytes that will be thrown away need not be durable.
    s = Status::DigestMismatch(DescribeMismatch(request, received));
  }
  if (s.ok()) s = file->Sync();
  if (s.ok()) {
    s = file->Close();
  } else {
    static_cast<void>(file->Close());  // the first error is the one to report
  }
  file.reset();
  if (!s.ok()) {
    RemoveQuietly(env_, part_path);
    return s;
  }

  StagedBlob result;
  result.env_ = env_;
  result.digest_ = received.digest;
  result.size_ = received.size;
  result.path_ = part_path;
  *staged = std::move(result);
  return Status::OK();
}

Status BlobStore::Commit(StagedBlob* staged, FileStat* committed, bool* existed) {
  *existed = false;
  if (staged->path_.empty()) return Status::InvalidArgument("nothing is staged to commit");
  const std::string target = BlobPath(staged->digest_);
  const std::string fan_out_dir = target.substr(0, target.rfind('/'));

  // Read-only before it becomes visible: nobody ever sees a writable blob.
  Status s = env_->Chmod(staged->path_, 0444);
  if (!s.ok()) return s;
  const bool fan_out_is_new = !env_->FileExists(fan_out_dir);
  s = env_->CreateDirs(fan_out_dir, 0700);
  if (!s.ok()) return s;
  if (fan_out_is_new) {
    // The new directory's entry must be durable too, or a crash could lose
    // the blob that is about to be renamed into it.
    s = env_->SyncDir(blobs_dir_);
    if (!s.ok()) return s;
  }

  s = env_->RenameNoReplace(staged->path_, target, existed);
  if (!s.ok()) return s;  // the staged file stays; its destructor removes it
  if (*existed) {
    // Same digest: the engine trusts the blob there (it moves one it does
    // not trust aside before committing).
    RemoveQuietly(env_, staged->path_);
  }
  staged->path_.clear();
  s = env_->SyncDir(fan_out_dir);
  // The old name's removal too: otherwise, after a power cut, the blob can
  // keep its ingest/ name, whose removal at start moves its ctime. Synced
  // when the digest was there already as well, so that a store costs the
  // same whether or not someone stored the file before.
  if (s.ok()) s = env_->SyncDir(ingest_dir_);
  if (!s.ok()) return s;
  // Taken after the rename, which changes the inode's ctime.
  return env_->Stat(target, committed);
}

Status BlobStore::OpenBlob(const Digest& digest, int* fd, FileStat* st) {
  const std::string path = BlobPath(digest);
  Status s = view_fd_ >= 0 ? env_->OpenReadOnlyBeneath(view_fd_, path.substr(root_.size() + 1), path, fd, st)
                           : env_->OpenReadOnly(path, fd, st);
  if (s.code() == Code::kNotFound) return Status::NotFound("no file " + digest.ToString() + " in the store");
  return s;
}

Status BlobStore::StatBlob(const Digest& digest, FileStat* st) { return env_->Stat(BlobPath(digest), st); }

Status BlobStore::BeginRemove(const Digest& digest) {
  const std::string path = BlobPath(digest);
  const std::string deleting = DeletingPath(digest.hex());
  bool existed = false;
  Status s = env_->RenameNoReplace(path, deleting, &existed);
  if (s.code() == Code::kNotFound) return Status::NotFound("no file " + digest.ToString() + " in the store");
  if (!s.ok()) return s;
  if (existed) {
    // A removal of the same digest that did not finish: that file goes.
    s = env_->RemoveFile(deleting);
    if (s.ok()) s = env_->RenameNoReplace(path, deleting, &existed);
    if (!s.ok()) return s;
    if (existed) return Status::IOError("cannot move " + path + " to " + deleting + ": it keeps coming back");
  }
  s = env_->SyncDir(ingest_dir_);
  if (s.ok()) s = env_->SyncDir(path.substr(0, path.rfind('/')));
  return s;
}

Status BlobStore::FinishRemove(const Digest& digest) {
  Status s = env_->RemoveFile(DeletingPath(digest.hex()));
  if (s.code() == Code::kNotFound) return Status::OK();
  return s;
}

Status BlobStore::UndoRemove(const Digest& digest) {
  bool existed = false;
  Status s = env_->RenameNoReplace(DeletingPath(digest.hex()), BlobPath(digest), &existed);
  if (s.ok() && existed) s = FinishRemove(digest);  // stored again meanwhile
  return s;
}

Status BlobStore::QuarantineBlob(const Digest& digest, const std::string& why, std::string* moved_to) {
  return Quarantine(BlobPath(digest), "blob-" + digest.hex() + "-" + why, moved_to);
}

bool BlobStore::Contains(const Digest& digest) { return env_->FileExists(BlobPath(digest)); }

Status BlobStore::ScanFanOuts(const std::string& dir, bool is_private, ScanResult* result) {
  std::vector<DirEntry> fan_outs;
  Status s = env_->ListDir(dir, &fan_outs);
  if (!s.ok()) return s;
  const std::string kind = is_private ? "private" : "blob";
  auto stray = [&](const std::string& path, const std::string& rel, FileStat::Type type) -> Status {
    std::string moved_to;
    std::string label = rel;
    std::replace(label.begin(), label.end(), '/', '-');
    Status q = Quarantine(path, "stray-" + label, &moved_to);
    if (q.ok()) result->quarantined.push_back(rel + " (" + DescribeType(type) + ") -> " + moved_to);
    return q;
  };
  for (const DirEntry& fan_out : fan_outs) {
    const std::string fan_out_path = dir + "/" + fan_out.name;
    const std::string fan_out_rel = fan_out_path.substr(root_.size() + 1);
    const bool valid_fan_out = fan_out.name.size() == 2 &&
                               fan_out.name.find_first_not_of("0123456789abcdef") == std::string::npos;
    if (fan_out.type != FileStat::Type::kDirectory || !valid_fan_out) {
      s = stray(fan_out_path, fan_out_rel, fan_out.type);
      if (!s.ok()) return s;
      continue;
    }
    std::vector<DirEntry> names;
    s = env_->ListDir(fan_out_path, &names);
    if (!s.ok()) return s;
    for (const DirEntry& entry : names) {
      const std::string& name = entry.name;
      Digest digest;
      bool named_right = name.compare(0, 2, fan_out.name) == 0;
      std::string tag;
      if (is_private) {
        named_right = named_right && name.size() == 64 + 1 + 32 && name[64] == '.' &&
                      Digest::Parse("sha256:" + name.substr(0, 64), &digest).ok();
        if (named_right) {
          tag = name.substr(65);
          named_right = tag.find_first_not_of("0123456789abcdef") == std::string::npos;
        }
      } else {
        named_right = named_right && name.size() == 64 && Digest::Parse("sha256:" + name, &digest).ok();
      }
      if (!named_right || entry.type != FileStat::Type::kRegular) {
        s = stray(fan_out_path + "/" + name, fan_out_rel + "/" + name, entry.type);
        if (!s.ok()) return s;
        continue;
      }
      if (is_private) {
        result->private_files.emplace_back(digest, tag);
      } else {
        result->blobs.push_back(digest);
      }
    }
  }
  return Status::OK();
}

Status BlobStore::Scan(ScanResult* result) {
  *result = ScanResult{};
  Status s = ScanFanOuts(blobs_dir_, false, result);
  if (s.ok()) s = ScanFanOuts(private_dir_, true, result);
  if (!s.ok()) return s;
  std::sort(result->blobs.begin(), result->blobs.end());
  std::sort(result->private_files.begin(), result->private_files.end());
  return Status::OK();
}

std::string BlobStore::BlobPath(const Digest& digest) const {
  const std::string hex = digest.hex();
  return blobs_dir_ + "/" + hex.substr(0, 2) + "/" + hex;
}

}  // namespace costore

namespace costore {

std::string BlobStore::PrivatePath(const Digest& digest, const std::string& owner_tag) const {
  const std::string hex = digest.hex();
  return private_dir_ + "/" + hex.substr(0, 2) + "/" + hex + "." + owner_tag;
}

Status BlobStore::CommitPrivate(StagedBlob* staged, const std::string& owner_tag) {
  if (staged->path_.empty()) return Status::InvalidArgument("nothing is staged to commit");
  const std::string target = PrivatePath(staged->digest_, owner_tag);
  const std::string fan_out_dir = target.substr(0, target.rfind('/'));
  Status s = env_->Chmod(staged->path_, 0400);
  if (!s.ok()) return s;
  const bool fan_out_is_new = !env_->FileExists(fan_out_dir);
  s = env_->CreateDirs(fan_out_dir, 0700);
  if (!s.ok()) return s;
  if (fan_out_is_new) {
    s = env_->SyncDir(private_dir_);
    if (!s.ok()) return s;
  }
  for (int attempt = 0; attempt < 2; ++attempt) {
    bool existed = false;
    s = env_->RenameNoReplace(staged->path_, target, &existed);
    if (!s.ok()) return s;
    if (!existed) {
      staged->path_.clear();
      return env_->SyncDir(fan_out_dir);
    }
    // Bytes no record names (sealed under a key nobody has any more):
    // make way for the new ones.
    s = env_->RemoveFile(target);
    if (!s.ok() && s.code() != Code::kNotFound) return s;
  }
  return Status::IOError("cannot replace " + target + ": it keeps coming back");
}

Status BlobStore::OpenPrivate(const Digest& digest, const std::string& owner_tag, int* fd, FileStat* st) {
  Status s = env_->OpenReadOnly(PrivatePath(digest, owner_tag), fd, st);
  if (s.code() == Code::kNotFound) return Status::NotFound("no file " + digest.ToString() + " in the store");
  return s;
}

Status BlobStore::RemovePrivate(const Digest& digest, const std::string& owner_tag) {
  const std::string path = PrivatePath(digest, owner_tag);
  Status s = env_->RemoveFile(path);
  if (s.code() == Code::kNotFound) return Status::NotFound("no file " + digest.ToString() + " in the store");
  if (!s.ok()) return s;
  return env_->SyncDir(path.substr(0, path.rfind('/')));
}

Status BlobStore::QuarantinePrivate(const Digest& digest, const std::string& owner_tag, const std::string& why) {
  return Quarantine(PrivatePath(digest, owner_tag), "private-" + digest.hex() + "." + owner_tag + "-" + why);
}

}  // namespace costore
