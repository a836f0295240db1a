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

// While waiting for a pipe, the cancellation flag is looked at this often,
// so that a cancelled ingest does not sit out the whole idle timeout.
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

// Waits until `fd` is readable, the idle timeout passes (Cancelled), or the
// caller cancels. Returns OK when a read(2) will not block (it may yield EOF
// or an error, which the read reports).
Status WaitReadable(int fd, const IngestRequest& request) {
  using Clock = std::chrono::steady_clock;
  const Clock::time_point deadline =
      Clock::now() + std::chrono::milliseconds(std::max(request.idle_timeout_ms, 0));
  for (;;) {
    if (request.cancelled != nullptr && request.cancelled->load()) {
      return Status::Cancelled("the write was cancelled");
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      return Status::Cancelled("no data from the source for " +
                               DescribeMillis(request.idle_timeout_ms) + "; giving up");
    }
    int wait_ms = static_cast<int>(left.count());
    if (request.cancelled != nullptr) wait_ms = std::min(wait_ms, kCancelPollIntervalMs);
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
  for (;;) {
    if (request.cancelled != nullptr && request.cancelled->load()) {
      return Status::Cancelled("the write was cancelled");
    }
    if (!source_is_regular) {
      Status s = WaitReadable(request.source_fd, request);
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
      ingest_dir_(root_ + "/ingest") {}

Status BlobStore::Init() {
  Status s = env_->CreateDirs(root_, 0700);
  // The store holds what the user downloaded; other users have no business
  // listing it, whatever mode an older version or the user left.
  if (s.ok()) s = env_->Chmod(root_, 0700);
  if (s.ok()) s = env_->CreateDirs(blobs_dir_, 0700);
  if (s.ok()) s = env_->CreateDirs(private_dir_, 0700);
  if (s.ok()) s = env_->CreateDirs(ingest_dir_, 0700);
  if (!s.ok()) return s;

  const std::string tag = root_ + "/CACHEDIR.TAG";
  if (!env_->FileExists(tag)) {
    s = env_->WriteFileAtomic(tag, kCacheDirTag, 0644);
    if (!s.ok()) return s;
  }

  // Nothing in ingest/ outlives a process: a file there is a write that a
  // crash interrupted, and its caller has long gone.
  std::vector<std::string> leftovers;
  s = env_->GetChildren(ingest_dir_, &leftovers);
  if (!s.ok()) return s;
  for (const std::string& name : leftovers) {
    s = env_->RemoveFile(ingest_dir_ + "/" + name);
    if (!s.ok() && s.code() != Code::kNotFound) return s;
  }
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

Status BlobStore::Commit(StagedBlob* staged) {
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

  bool existed = false;
  s = env_->RenameNoReplace(staged->path_, target, &existed);
  if (!s.ok()) return s;  // the staged file stays; its destructor removes it
  if (existed) {
    // Same digest, same bytes: the blob on disk already is this file.
    RemoveQuietly(env_, staged->path_);
  }
  staged->path_.clear();
  return env_->SyncDir(fan_out_dir);
}

Status BlobStore::OpenBlob(const Digest& digest, int* fd) {
  Status s = env_->OpenReadOnly(BlobPath(digest), fd);
  if (s.code() == Code::kNotFound) return Status::NotFound("no file " + digest.ToString() + " in the store");
  return s;
}

Status BlobStore::RemoveBlob(const Digest& digest) {
  const std::string path = BlobPath(digest);
  Status s = env_->RemoveFile(path);
  if (s.code() == Code::kNotFound) return Status::NotFound("no file " + digest.ToString() + " in the store");
  if (!s.ok()) return s;
  return env_->SyncDir(path.substr(0, path.rfind('/')));
}

bool BlobStore::Contains(const Digest& digest) { return env_->FileExists(BlobPath(digest)); }

Status BlobStore::ListBlobs(std::vector<Digest>* digests) {
  digests->clear();
  std::vector<std::string> fan_outs;
  Status s = env_->GetChildren(blobs_dir_, &fan_outs);
  if (!s.ok()) return s;
  for (const std::string& fan_out : fan_outs) {
    std::vector<std::string> names;
    // Not a directory, or removed meanwhile: it holds no blob BlobPath finds.
    if (!env_->GetChildren(blobs_dir_ + "/" + fan_out, &names).ok()) continue;
    for (const std::string& name : names) {
      Digest digest;
      if (!Digest::Parse("sha256:" + name, &digest).ok()) continue;
      // A blob in the wrong fan-out directory is unreachable; not listed.
      if (name.compare(0, 2, fan_out) != 0 || fan_out.size() != 2) continue;
      digests->push_back(digest);
    }
  }
  std::sort(digests->begin(), digests->end());
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

Status BlobStore::OpenPrivate(const Digest& digest, const std::string& owner_tag, int* fd) {
  Status s = env_->OpenReadOnly(PrivatePath(digest, owner_tag), fd);
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

Status BlobStore::ListPrivate(std::vector<std::pair<Digest, std::string>>* files) {
  files->clear();
  std::vector<std::string> fan_outs;
  Status s = env_->GetChildren(private_dir_, &fan_outs);
  if (!s.ok()) return s;
  for (const std::string& fan_out : fan_outs) {
    std::vector<std::string> names;
    if (fan_out.size() != 2 || !env_->GetChildren(private_dir_ + "/" + fan_out, &names).ok()) continue;
    for (const std::string& name : names) {
      // <64 hex>.<32 hex>
      if (name.size() != 64 + 1 + 32 || name[64] != '.' || name.compare(0, 2, fan_out) != 0) continue;
      Digest digest;
      if (!Digest::Parse("sha256:" + name.substr(0, 64), &digest).ok()) continue;
      const std::string tag = name.substr(65);
      if (tag.find_first_not_of("0123456789abcdef") != std::string::npos) continue;
      files->emplace_back(digest, tag);
    }
  }
  std::sort(files->begin(), files->end());
  return Status::OK();
}

}  // namespace costore
