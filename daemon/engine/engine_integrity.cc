// The engine's integrity work: reconciling catalog and disk at start,
// damage (quarantine, never serve, repair), Verify, pins and the scrub.
// Why each invariant holds is written down in docs/integrity.md.
#include <unistd.h>

#include <algorithm>
#include <array>
#include <map>
#include <set>

#include "daemon/engine/engine.h"
#include "daemon/engine/file_checks.h"
#include "daemon/engine/private_files.h"
#include "daemon/engine/quote.h"
#include "daemon/log.h"

namespace costore {
namespace {

constexpr char kLastScrubSetting[] = "last-scrub";
constexpr int64_t kMicrosPerDay = int64_t{86'400} * 1'000'000;

DiskIdentity IdentityOf(const FileStat& st) { return DiskIdentity{st.ino, st.mtime_ns, st.ctime_ns}; }

// Closes a descriptor at scope end.
struct FdCloser {
  int fd;
  ~FdCloser() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

Status Engine::FinishInterruptedRemovals(const InitReport& report) {
  for (const Digest& digest : report.interrupted_removals) {
    // The blob was moved out before its record was dropped; if the record
    // is still there (and no blob took its place), the removal was
    // interrupted: finish it. The .deleting file goes only after the
    // record (FULL sync): a crash in between finds it again.
    FileRecord record;
    if (catalog_->GetFile(digest, &record).ok() && !blobs_.Contains(digest)) {
      Status s = catalog_->DeleteFile(digest);
      if (!s.ok() && s.code() != Code::kNotFound) return s;
      LogWarning("finished deleting " + digest.ToString() + ", which a crash interrupted");
    }
    Status s = blobs_.FinishRemove(digest);
    if (!s.ok()) return s;
  }
  return Status::OK();
}

// A crash between publishing a blob and recording it leaves a blob that no
// record names; a lost catalog leaves every blob so. Both are re-verified
// (the name is the hash) and re-indexed, never deleted. A record whose
// bytes are gone is kept, marked damaged: storing the bytes again repairs it.
Status Engine::Reconcile() {
  ScanResult scan;
  Status s = blobs_.Scan(&scan);
  if (!s.ok()) return s;
  for (const std::string& moved : scan.quarantined) LogWarning("quarantined a stray: " + moved);

  std::vector<FileRecord> recorded;
  s = catalog_->ListFiles(&recorded);
  if (!s.ok()) return s;
  std::set<Digest> recorded_set;
  for (const FileRecord& record : recorded) recorded_set.insert(record.digest);
  const std::set<Digest> disk_set(scan.blobs.begin(), scan.blobs.end());

  uint32_t reindexed = 0;
  for (const Digest& digest : scan.blobs) {
    if (recorded_set.count(digest)) continue;
    int fd = -1;
    FileStat st;
    s = options_.env->OpenReadOnly(blobs_.BlobPath(digest), &fd, &st);
    if (!s.ok()) {
      LogWarning("cannot re-index " + digest.ToString() + ": " + s.message());
      continue;
    }
    FdCloser closer{fd};
    Digest found;
    uint64_t size = 0;
    s = HashFile(fd, blobs_.BlobPath(digest), &found, &size);
    if (!s.ok()) return s;
    if (found != digest) {
      std::string moved_to;
      s = blobs_.QuarantineBlob(digest, "bytes-do-not-match-name", &moved_to);
      if (!s.ok()) return s;
      LogWarning("a blob named " + digest.ToString() + " holds " + found.ToString() + "; moved to " + moved_to);
      continue;
    }
    s = catalog_->RecordRecovered(digest, size, IdentityOf(st), options_.env->NowMicros());
    if (!s.ok()) return s;
    ++reindexed;
    LogWarning("re-indexed " + digest.ToString() + " (" + std::to_string(size) +
               " bytes, verified): its bytes were stored but not recorded; who stored it is not known");
  }
  if (reindexed > 0) LogWarning("re-indexed " + std::to_string(reindexed) + " file(s) from the blobs on disk");

  for (const FileRecord& record : recorded) {
    if (disk_set.count(record.digest) || record.damaged()) continue;
    s = catalog_->MarkDamaged(record.digest, "its bytes were gone from the store");
    if (!s.ok()) return s;
    LogError(record.digest.ToString() + " is recorded but its bytes are gone; marked damaged (storing it again repairs it)");
  }

  // Private files: a record without bytes is marked damaged; bytes without
  // a record cannot be re-indexed (their data key was in the catalog), so
  // they are kept in quarantine/, not deleted.
  std::vector<PrivateFileRecord> private_recorded;
  s = catalog_->ListPrivateFiles(std::nullopt, &private_recorded);
  if (!s.ok()) return s;
  std::set<std::pair<Digest, std::string>> private_disk(scan.private_files.begin(), scan.private_files.end());
  std::set<std::pair<Digest, std::string>> private_names;
  for (const PrivateFileRecord& entry : private_recorded) {
    std::pair<Digest, std::string> name{entry.digest, OwnerTag(entry.blob_owner())};
    private_names.insert(name);
    if (private_disk.count(name) || entry.damaged()) continue;
    s = catalog_->MarkPrivateDamaged(entry.id, "its bytes were gone from the store");
    if (!s.ok()) return s;
    LogError("the private entry of " + entry.digest.ToString() + " is recorded but its bytes are gone; marked damaged");
  }
  for (const auto& [digest, tag] : scan.private_files) {
    if (private_names.count({digest, tag})) continue;
    s = blobs_.QuarantinePrivate(digest, tag, "unrecorded");
    if (!s.ok()) return s;
    LogWarning("moved an unrecorded private copy of " + digest.ToString() +
               " to quarantine/: its data key is in no record, so it cannot be re-indexed");
  }
  return Status::OK();
}

std::string Engine::Damage(const Digest& digest, const std::string& problem, bool try_repair, const FileStat* bad,
                           const FileRecord* seen) {
  std::string moved_to;
  uint64_t size = 0;
  {
    // What the caller saw was read without this lock: act only if nothing
    // changed since (a store may have repaired the file meanwhile).
    std::lock_guard<std::mutex> lock(LockFor(digest));
    FileRecord record;
    if (!catalog_->GetFile(digest, &record).ok()) return {};  // deleted meanwhile
    if (seen != nullptr && (!(record.disk == seen->disk) || record.damaged() != seen->damaged())) return {};
    size = record.size;
    FileStat now;
    const bool present = blobs_.StatBlob(digest, &now).ok();
    if (bad != nullptr && present && now.ino != bad->ino) return {};  // replaced meanwhile by a store
    if (bad == nullptr && present && record.disk.known() &&
        record.disk == DiskIdentity{now.ino, now.mtime_ns, now.ctime_ns}) {
      return {};  // it was absent, and the committed file is back
    }
    if (present) {
      Status s = blobs_.QuarantineBlob(digest, "damaged", &moved_to);
      if (!s.ok()) {
        LogError("cannot quarantine the damaged blob of " + digest.ToString() + ": " + s.ToString());
      }
    }
    if (!record.damaged()) {
      Status s = catalog_->MarkDamaged(digest, problem);
      if (!s.ok()) LogError("cannot mark " + digest.ToString() + " damaged: " + s.ToString());
    }
  }
  LogError(digest.ToString() + " is damaged: " + problem + (moved_to.empty() ? "" : "; moved to " + moved_to) +
           "; it is not served until the right bytes are stored again");
  Publish({"damaged", digest.ToString()});
  if (try_repair && !moved_to.empty()) {
    Spawn([this, digest, size, moved_to] {
      Status s = RepairFrom(digest, size, moved_to);
      if (!s.ok()) LogWarning("no repair of " + digest.ToString() + " from " + moved_to + ": " + s.message());
    });
  }
  return moved_to;
}

Status Engine::RepairFrom(const Digest& digest, uint64_t size, const std::string& quarantined) {
  try {
    const std::string path = options_.root + "/" + quarantined;
    int fd = -1;
    Status s = options_.env->OpenReadOnly(path, &fd, nullptr);
    if (!s.ok()) return s;
    FdCloser closer{fd};
    // The copy is hashed as it is made: what a holder of the old inode
    // writes meanwhile fails the digest, and nothing is committed.
    IngestRequest ingest;
    ingest.source_fd = fd;
    ingest.expected = digest;
    ingest.expected_size = size;
    ingest.cancelled = &cancelled_;
    StagedBlob staged;
    s = blobs_.Ingest(ingest, &staged);
    if (!s.ok()) return s;
    {
      std::lock_guard<std::mutex> lock(LockFor(digest));
      FileRecord record;
      s = catalog_->GetFile(digest, &record);
      if (!s.ok() || !record.damaged() || blobs_.Contains(digest)) return s;  // deleted or repaired meanwhile
      FileStat committed;
      bool existed = false;
      s = blobs_.Commit(&staged, &committed, &existed);
      if (!s.ok()) return s;
      if (existed) return Status::OK();
      const DiskIdentity disk{committed.ino, committed.mtime_ns, committed.ctime_ns};
      s = catalog_->MarkVerified(digest, options_.env->NowMicros(), &disk);
      if (!s.ok()) return s;
    }
    // Its bytes proved right and live on as a fresh file: the old inode,
    // which someone may still hold writable, goes.
    (void)options_.env->RemoveFile(path);
    LogWarning("repaired " + digest.ToString() + " from its quarantined copy, whose bytes were right");
    Publish({"verified", digest.ToString()});
    return Status::OK();
  } catch (const std::exception& e) {
    return Status::IOError(std::string("repair failed: ") + e.what());
  }
}

void Engine::VerifyPublic(const FileRecord& record, VerifyResult* result) {
  result->digest = record.digest.ToString();
  result->size = record.size;
  result->state = "damaged";
  if (record.damaged()) {
    result->problem = record.problem;
    return;
  }
  int fd = -1;
  FileStat st;
  Status s = blobs_.OpenBlob(record.digest, &fd, &st);
  if (!s.ok()) {
    result->problem = s.code() == Code::kNotFound ? "its bytes are gone from the store" : s.message();
    FileStat there;
    if (s.code() == Code::kNotFound) {
      Damage(record.digest, result->problem, false, nullptr, &record);
    } else if (s.code() == Code::kIOError && blobs_.StatBlob(record.digest, &there).ok() &&
               there.type != FileStat::Type::kRegular) {
      Damage(record.digest, result->problem, false, &there, &record);
    } else {
      result->state = "unreadable";  // a passing failure: reported, not marked
    }
    return;
  }
  FdCloser closer{fd};
  Digest found;
  uint64_t size = 0;
  s = HashFile(fd, blobs_.BlobPath(record.digest), &found, &size, &cancelled_);
  if (!s.ok()) {
    result->state = "unreadable";  // a read error this time: reported, not marked
    result->problem = s.message();
    return;
  }
  if (found != record.digest || size != record.size) {
    result->problem = "its bytes do not match: found " + found.ToString() + " (" + std::to_string(size) +
                      " bytes), stored " + std::to_string(record.size) + " bytes";
    Damage(record.digest, result->problem, /*try_repair=*/false, &st, &record);
    return;
  }
  const DiskIdentity disk = IdentityOf(st);
  if (record.disk.known() && disk != record.disk) {
    // Right bytes, but the inode changed (a mode change, a write that put
    // the same bytes back): someone may hold it writable. A fresh copy.
    std::string moved_to = Damage(record.digest, "changed on disk after it was stored", false, &st, &record);
    s = moved_to.empty() ? Status::IOError("not quarantined") : RepairFrom(record.digest, record.size, moved_to);
    if (!s.ok()) {
      result->problem = "changed on disk after it was stored; " + s.message();
      return;
    }
    result->state = "ok";
    return;
  }
  s = catalog_->MarkVerified(record.digest, options_.env->NowMicros(), record.disk.known() ? nullptr : &disk);
  if (!s.ok() && s.code() != Code::kNotFound) {
    result->problem = s.message();
    return;
  }
  result->state = "ok";
}

void Engine::VerifyPrivateEntry(const PrivateFileRecord& record, VerifyResult* result) {
  result->digest = record.digest.ToString();
  result->is_private = true;
  result->owner = record.owner;
  result->size = record.size;
  result->state = "damaged";
  if (record.damaged()) {
    result->problem = record.problem;
    return;
  }
  const std::string tag = OwnerTag(record.blob_owner());
  int fd = -1;
  FileStat st;
  Status s = blobs_.OpenPrivate(record.digest, tag, &fd, &st);
  std::string problem;
  if (!s.ok()) {
    problem = s.code() == Code::kNotFound ? "its bytes are gone from the store" : s.message();
  } else {
    FdCloser closer{fd};
    std::array<uint8_t, sealed::kHeaderSize> header_bytes{};
    SealedHeader header;
    const uint64_t expected = sealed::SealedSize(record.size, record.chunk_size);
    if (st.size != expected) {
      problem = "its sealed file is " + std::to_string(st.size) + " bytes, not " + std::to_string(expected);
    } else if (::pread(fd, header_bytes.data(), header_bytes.size(), 0) != static_cast<ssize_t>(header_bytes.size())) {
      problem = "its sealed header cannot be read";
    } else if (Status h = ParseHeader(header_bytes, &header); !h.ok()) {
      problem = "its sealed header is damaged: " + h.message();
    } else if (header.digest != record.digest || header.chunk_size != record.chunk_size) {
      problem = "its sealed header names another file";
    }
  }
  if (problem.empty()) {
    s = catalog_->MarkPrivateVerified(record.id, options_.env->NowMicros());
    if (s.ok() || s.code() == Code::kNotFound) result->state = "ok";
    else result->problem = s.message();
    return;
  }
  result->problem = problem;
  {
    std::lock_guard<std::mutex> lock(LockFor(record.digest));
    if (s.code() != Code::kNotFound) (void)blobs_.QuarantinePrivate(record.digest, tag, "damaged");
    (void)catalog_->MarkPrivateDamaged(record.id, problem);
  }
  LogError("the private entry of " + record.digest.ToString() + " is damaged: " + problem);
  Publish({"damaged", "*"});
}

Status Engine::Verify(const std::vector<std::string>& digests, std::vector<VerifyResult>* results) {
  std::vector<VerifyResult> out;
  std::vector<FileRecord> entries;
  std::vector<std::string> absent;
  for (const std::string& text : digests) {
    Digest digest;
    Status s = Digest::Parse(text, &digest);
    if (!s.ok()) return s;
    std::vector<FileRecord> found;
    s = List(&found, digest.ToString());
    if (!s.ok()) return s;
    if (found.empty()) absent.push_back(digest.ToString());
    entries.insert(entries.end(), found.begin(), found.end());
  }
  if (digests.empty()) {
    Status s = List(&entries);
    if (!s.ok()) return s;
  }
  if (verifying_.exchange(true)) return Status::Busy("a verification is already running; try again when it ends");
  struct Done {
    std::atomic<bool>* flag;
    ~Done() { *flag = false; }
  } done{&verifying_};
  try {
    std::vector<PrivateFileRecord> private_files;
    Status s = catalog_->ListPrivateFiles(std::nullopt, &private_files);
    if (!s.ok()) return s;
    std::map<std::pair<Digest, Principal>, const PrivateFileRecord*> private_by_owner;
    for (const PrivateFileRecord& entry : private_files) private_by_owner[{entry.digest, entry.owner}] = &entry;
    for (const FileRecord& entry : entries) {
      if (cancelled_) return Status::Cancelled("the daemon is shutting down");
      VerifyResult result;
      if (!entry.is_private) {
        VerifyPublic(entry, &result);
      } else if (auto it = private_by_owner.find({entry.digest, entry.owner}); it != private_by_owner.end()) {
        VerifyPrivateEntry(*it->second, &result);
      } else {
        continue;  // deleted meanwhile
      }
      out.push_back(std::move(result));
    }
  } catch (const std::exception& e) {
    return Status::IOError(std::string("verification failed: ") + e.what());
  }
  for (const std::string& digest : absent) {
    VerifyResult result;
    result.digest = digest;
    result.state = "absent";
    result.problem = "not stored";
    out.push_back(std::move(result));
  }
  *results = std::move(out);
  Publish({"verified", "*"});
  return Status::OK();
}

Status Engine::SetPinned(const std::string& digest_text, bool pinned) {
  Digest digest;
  Status s = Digest::Parse(digest_text, &digest);
  if (!s.ok()) return s;
  s = WithReserve([&] { return catalog_->SetPinned(digest, pinned); });
  if (s.code() == Code::kNotFound) return Status::NotFound("no file " + digest.ToString() + " in the store");
  if (!s.ok()) return s;
  Publish({"pinned", digest.ToString()});
  return Status::OK();
}

void Engine::ScrubLoop() {
  std::unique_lock<std::mutex> lock(scrub_mu_);
  while (!cancelled_) {
    const uint32_t days = GetSpaceSettings().scrub_interval_days;
    if (days == 0) {
      scrub_cv_.wait(lock);
      continue;
    }
    std::string text;
    int64_t last = 0;
    if (catalog_->GetSetting(kLastScrubSetting, &text).ok()) last = std::atoll(text.c_str());
    const int64_t due = last + days * kMicrosPerDay;
    const int64_t now = options_.env->NowMicros();
    if (now < due) {
      // Woken early by a settings change or shutdown; otherwise at most an
      // hour, so that a clock change is noticed.
      scrub_cv_.wait_for(lock, std::chrono::microseconds(std::min<int64_t>(due - now, int64_t{3'600'000'000})));
      continue;
    }
    lock.unlock();
    LowerThreadIoPriority(/*idle=*/true);
    std::vector<VerifyResult> results;
    Status s;
    try {
      s = Verify({}, &results);
    } catch (const std::exception& e) {
      s = Status::IOError(std::string("scrub failed: ") + e.what());
    }
    if (s.ok()) {
      const auto damaged = std::count_if(results.begin(), results.end(),
                                         [](const VerifyResult& r) { return r.state != "ok"; });
      LogInfo("scrub: verified " + std::to_string(results.size()) + " entries, " + std::to_string(damaged) +
              " damaged");
      (void)catalog_->SetSetting(kLastScrubSetting, std::to_string(options_.env->NowMicros()));
    } else if (s.code() != Code::kBusy && s.code() != Code::kCancelled) {
      LogWarning("scrub: " + s.ToString());
    }
    lock.lock();
    if (s.code() == Code::kBusy) scrub_cv_.wait_for(lock, std::chrono::minutes(10));
  }
}

}  // namespace costore
