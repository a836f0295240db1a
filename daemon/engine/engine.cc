#include "daemon/engine/engine.h"

#include <unistd.h>

#include <algorithm>
#include <set>

#include "daemon/crypto/key_wrap.h"
#include "daemon/engine/access_policy.h"
#include "daemon/engine/file_checks.h"
#include "daemon/engine/origin.h"
#include "daemon/engine/private_files.h"
#include "daemon/engine/quote.h"
#include "daemon/log.h"

namespace costore {
namespace {

// One message for every refusal and every miss, so that a caller cannot
// tell "stored but not yours" from "not stored".
Status NotStored(const Digest& digest) {
  return Status::NotFound("no file " + digest.ToString() + " in the store");
}

// Parses "*" or a digest, as grants take them.
Status ParseGrantTarget(const std::string& text, std::string* canonical) {
  if (text == "*") {
    *canonical = "*";
    return Status::OK();
  }
  Digest digest;
  Status s = Digest::Parse(text, &digest);
  if (!s.ok()) return s;
  *canonical = digest.ToString();
  return Status::OK();
}

// `caller` with its origin in canonical form (origin.h). Every call that
// takes an origin goes on with this one, so that all spellings of an
// origin are one principal: they store, read and are granted as one.
Status CanonicalPrincipal(const Principal& caller, Principal* who) {
  who->app = caller.app;
  return CanonicalizeOrigin(caller.origin, &who->origin);
}

// Checks who a grant is for (canonical in *who) and parses its target
// ("*" or a digest).
Status ParseGrant(const Principal& grantee, const std::string& text, Principal* who, std::string* target) {
  Status s = ValidateApp(grantee.app);
  if (!s.ok()) return s;
  s = CanonicalPrincipal(grantee, who);
  if (!s.ok()) return s;
  return ParseGrantTarget(text, target);
}

// Parses a digest filter; "" leaves *filter empty (no filter).
Status ParseDigestFilter(const std::string& text, std::optional<Digest>* filter) {
  if (text.empty()) return Status::OK();
  Digest digest;
  Status s = Digest::Parse(text, &digest);
  if (!s.ok()) return s;
  *filter = digest;
  return Status::OK();
}

// The ingest of a store request's bytes, public or private.
IngestRequest IngestOf(const StoreRequest& request, const Digest& digest, int idle_timeout_ms,
                       const std::atomic<bool>* cancelled) {
  IngestRequest ingest;
  ingest.source_fd = request.source_fd;
  ingest.expected = digest;
  ingest.expected_size = request.size;
  ingest.idle_timeout_ms = idle_timeout_ms;
  ingest.cancelled = cancelled;
  return ingest;
}

// What a Store or Open reply tells `who` about a file: its bytes, and of
// who stored it only what `who` itself did (`own`), never another
// principal's name or time.
FileInfo InfoFor(const FileRecord& record, const OwnStore& own) {
  return FileInfo{record.digest, record.size, own.name, own.first_stored_us, false, ""};
}

FileInfo InfoFor(const PrivateFileRecord& record, const Principal& who) {
  const bool own = record.owner == who;
  return FileInfo{record.digest, record.size, own ? record.name : std::string(), own ? record.first_stored_us : 0,
                  true, record.cipher};
}

// A private entry as List and Stat show it.
FileRecord EntryFrom(const PrivateFileRecord& record) {
  FileRecord file;
  file.digest = record.digest;
  file.size = record.size;
  file.name = record.name;
  file.is_private = true;
  file.first_stored_us = record.first_stored_us;
  file.last_used_us = record.last_used_us;
  file.stored_by = record.stored_by;
  file.used_by = record.used_by;
  file.cipher = record.cipher;
  file.owner = record.owner;
  file.problem = record.problem;
  file.verified_us = record.verified_us;
  file.pinned = record.pinned;
  return file;
}

// How a private file is named in messages: its digest and where it is.
std::string DescribePrivate(const BlobStore& blobs, const PrivateFileRecord& entry) {
  return "private file " + entry.digest.ToString() + " (" +
         blobs.PrivatePath(entry.digest, OwnerTag(entry.blob_owner())) + ")";
}

// The wait a Busy answer names. A store's slot frees when some store ends,
// which nothing predicts; a few seconds keeps retries cheap and prompt.
// Opens are short, except those waiting for the user.
constexpr uint32_t kStoreRetryAfterS = 5;
constexpr uint32_t kOpenRetryAfterS = 2;

}  // namespace

Status Engine::Open(const EngineOptions& options, std::unique_ptr<Engine>* out) {
  if (options.root.empty()) return Status::InvalidArgument("store directory is empty");
  Env* env = options.env;
  Status s = env->CreateDirs(options.root, 0700);
  if (!s.ok()) return s;
  // The lock comes before anything is read or changed: a second daemon on
  // the same store stops here, having touched nothing.
  std::unique_ptr<StoreLock> lock;
  s = env->LockStore(options.root, &lock);
  if (!s.ok()) return s;

  const std::string catalog_path = options.root + "/catalog.db";
  BlobStore layout(env, options.root);
  for (const char* suffix : {"", "-wal", "-shm"}) {
    const std::string path = catalog_path + suffix;
    FileStat st;
    if (!env->Stat(path, &st).ok() || st.type == FileStat::Type::kRegular) continue;
    std::string moved_to;
    s = layout.Quarantine(path, std::string("catalog.db") + suffix + "-was-not-a-file", &moved_to);
    if (!s.ok()) return s;
    LogWarning("catalog.db" + std::string(suffix) + " was " + DescribeType(st.type) + "; moved to " + moved_to +
               (*suffix == '\0' ? "; the catalog is rebuilt from the files on disk" : ""));
  }
  std::unique_ptr<Catalog> catalog;
  bool unreadable = false;
  s = Catalog::Open(catalog_path, &catalog, &unreadable);
  if (!s.ok() && unreadable) {
    // Not a database SQLite can read: moved aside (never deleted), and a
    // new one is rebuilt from disk. The bytes are named by their hash, so
    // every public file comes back; who stored and read it does not.
    LogError("the catalog is unreadable (" + s.message() + ")");
    for (const char* suffix : {"", "-wal", "-shm"}) {
      const std::string path = catalog_path + suffix;
      if (!env->FileExists(path)) continue;
      std::string moved_to;
      s = layout.Quarantine(path, std::string("catalog.db") + suffix, &moved_to);
      if (!s.ok()) return s;
      LogWarning("moved " + path + " to " + moved_to);
    }
    s = Catalog::Open(catalog_path, &catalog);
  }
  if (!s.ok()) return s;
  std::unique_ptr<Engine> engine(new Engine(options, std::move(lock), std::move(catalog)));
  InitReport report;
  s = engine->blobs_.Init(&report);
  if (!s.ok()) return s;
  for (const std::string& moved : report.quarantined) LogWarning("quarantined " + moved);
  s = engine->FinishInterruptedRemovals(report);
  if (!s.ok()) return s;
  s = engine->Reconcile();
  if (!s.ok()) return s;
  s = engine->LoadSettings();
  if (!s.ok()) return s;
  if (options.read_only_view) {
    s = engine->blobs_.UseReadOnlyView();
    if (!s.ok()) {
      LogWarning(s.message() + "; public files are handed out directly, and sandboxed apps get copies");
    }
  }
  engine->RefillReserve();
  engine->scrub_thread_ = std::thread([e = engine.get()] { e->ScrubLoop(); });
  *out = std::move(engine);
  return Status::OK();
}

Engine::Engine(const EngineOptions& options, std::unique_ptr<StoreLock> lock, std::unique_ptr<Catalog> catalog)
    : options_(options),
      lock_(std::move(lock)),
      blobs_(options.env, options.root),
      catalog_(std::move(catalog)),
      store_limits_("stores", options.store_caps, kStoreRetryAfterS),
      open_limits_("opens", options.open_caps, kOpenRetryAfterS),
      worker_open_limits_("private or copied opens", options.worker_open_caps, kOpenRetryAfterS),
      consent_(options.env),
      keys_(catalog_.get(), options.key_store),
      cipher_(options.cipher.value_or(PreferredCipher())) {}

Engine::~Engine() {
  // The default executor's threads (tests): streams stop at once.
  {
    std::lock_guard<std::mutex> lock(scrub_mu_);
    cancelled_ = true;
  }
  scrub_cv_.notify_all();
  if (scrub_thread_.joinable()) scrub_thread_.join();
  std::vector<std::thread> threads;
  {
    std::lock_guard<std::mutex> lock(threads_mu_);
    threads.swap(threads_);
  }
  for (auto& thread : threads) thread.join();
}

void Engine::Spawn(std::function<void()> task) {
  if (executor_.spawn) return executor_.spawn(std::move(task));
  std::lock_guard<std::mutex> lock(threads_mu_);
  threads_.emplace_back(std::move(task));
}

void Engine::PostBack(std::function<void()> task) {
  if (executor_.post) return executor_.post(std::move(task));
  // Not inline: the worker that posts may go on to fill a pipe that this
  // very task reads.
  Spawn(std::move(task));
}

std::mutex& Engine::LockFor(const Digest& digest) {
  return digest_locks_[digest.bytes()[0] % std::size(digest_locks_)];
}

void Engine::Publish(ChangeEvent event) {
  if (options_.on_change) options_.on_change(event);
}

void Engine::CancelAll() {
  {
    std::lock_guard<std::mutex> lock(scrub_mu_);
    cancelled_ = true;
  }
  scrub_cv_.notify_all();
  consent_.AbandonAll();
}

// An exception from below (a cipher, the keyring, an allocation) becomes
// an IOError for this call: it never reaches a worker's top, where it
// would end the daemon for every app.
template <typename F>
Status Guarded(std::string_view what, F&& body) {
  try {
    return body();
  } catch (const std::bad_alloc&) {
    LogError(std::string(what) + ": out of memory");
    return Status::IOError(std::string(what) + " failed: out of memory");
  } catch (const std::exception& e) {
    LogError(std::string(what) + ": unexpected exception: " + e.what());
    return Status::IOError(std::string(what) + " failed: " + e.what());
  }
}

Status Engine::AdmitStore(const Principal& who, CallerLimits::Slot* slot) {
  if (cancelled_) return Status::Cancelled("the daemon is shutting down");
  return store_limits_.Acquire(who, slot);
}

Status Engine::Store(const Principal& who, const StoreRequest& request, FileInfo* info,
                     CallerLimits::Slot admitted) {
  return Guarded("store", [&] {
    if (!admitted.held()) {
      Status s = AdmitStore(who, &admitted);
      if (!s.ok()) return s;
    }
    return StoreUnguarded(who, request, info);
  });
}

Status Engine::StoreUnguarded(const Principal& caller, const StoreRequest& request, FileInfo* info) {
  Digest digest;
  Status s = Digest::Parse(request.digest, &digest);
  if (!s.ok()) return s;
  Principal who;
  s = CanonicalPrincipal(caller, &who);
  if (!s.ok()) return s;
  s = ValidateName(request.name);
  if (!s.ok()) return s;
  if (request.size && *request.size > BlobStore::kMaxFileSize) {
    return Status::InvalidArgument("size " + std::to_string(*request.size) +
                                   " is larger than the 1 PiB limit");
  }
  if (cancelled_) return Status::Cancelled("the daemon is shutting down");

  // Room first: a store that cannot fit is refused before a byte is
  // written; one of unknown size is checked as it grows.
  const uint64_t known_size =
      request.size ? (request.is_private ? sealed::SealedSize(*request.size, options_.chunk_size) : *request.size) : 0;
  bool evict_as_it_grows = false;
  s = MakeRoomFor(known_size, reserved_bytes_.load(), &evict_as_it_grows);
  if (!s.ok()) return s;
  reserved_bytes_ += known_size;
  struct Unreserve {
    std::atomic<uint64_t>* counter;
    uint64_t bytes;
    ~Unreserve() { *counter -= bytes; }
  } unreserve{&reserved_bytes_, known_size};
  // Stores of unknown size, and stores admitted on room eviction would
  // make, are checked (and evict) as their bytes arrive.
  std::function<Status(uint64_t)> check_progress;
  if (!request.size || evict_as_it_grows) {
    check_progress = [this, known_size](uint64_t written) { return CheckGrowth(written, known_size); };
  }
  if (request.is_private) return StorePrivate(who, digest, request, check_progress, info);

  IngestRequest ingest = IngestOf(request, digest, options_.idle_timeout_ms, &cancelled_);
  ingest.check_progress = check_progress;
  RateFloor rate_floor = StoreRateFloor();
  ingest.rate_floor = &rate_floor;
  StagedBlob staged;
  s = blobs_.Ingest(ingest, &staged);
  if (!s.ok()) return s;
  if (!request.size || evict_as_it_grows) {
    // The bytes are here: the quota, exactly (evicting now, if allowed).
    s = CheckQuota(staged.size(), reserved_bytes_.load() - std::min(reserved_bytes_.load(), known_size),
                   GetSpaceSettings().auto_collect ? Evict::kEvict : Evict::kNever,
                   "storing " + std::to_string(staged.size()) + " bytes");
    if (!s.ok()) return s;
  }

  FileRecord record;
  OwnStore own;
  {
    std::lock_guard<std::mutex> lock(LockFor(digest));
    s = CommitPublic(who, request, &staged, &record, &own);
    if (!s.ok()) return s;
  }
  *info = InfoFor(record, own);
  Publish({"stored", digest.ToString()});
  return Status::OK();
}

RateFloor Engine::StoreRateFloor() {
  return RateFloor(GetMinStoreRate(), int64_t{options_.store_rate_grace_ms} * 1000,
                   int64_t{options_.store_rate_window_ms} * 1000);
}

Status Engine::CommitPublic(const Principal& who, const StoreRequest& request, StagedBlob* staged,
                            FileRecord* record, OwnStore* own) {
  const Digest digest = staged->digest();
  const uint64_t size = staged->size();
  FileRecord existing;
  Status s = catalog_->GetFileEntry(digest, &existing);
  if (!s.ok() && s.code() != Code::kNotFound) return s;
  const bool recorded = s.ok();
  const bool legacy = recorded && !existing.disk.known();
  FileStat on_disk;
  s = blobs_.StatBlob(digest, &on_disk);
  if (!s.ok() && s.code() != Code::kNotFound) return s;
  const bool present = s.ok();
  // The blob there is kept only if it is provably the one committed: the
  // verified bytes in hand replace anything else (a changed inode, a file
  // no record names, a damaged entry), which is moved aside, not deleted.
  bool trusted = false;
  if (present && recorded && !existing.damaged() && on_disk.type == FileStat::Type::kRegular &&
      on_disk.size == existing.size) {
    trusted = existing.disk == DiskIdentity{on_disk.ino, on_disk.mtime_ns, on_disk.ctime_ns};
  }
  if (present && legacy && !existing.damaged()) {
    // Recorded before inodes were (schema 3): nothing says it was changed,
    // nothing says it was not. The verified bytes in hand take its place;
    // the old inode is removed like a deleted blob, not quarantined.
    s = blobs_.BeginRemove(digest);
    if (s.ok()) s = blobs_.FinishRemove(digest);
    if (!s.ok()) return s;
  } else if (present && !trusted) {
    std::string moved_to;
    s = blobs_.QuarantineBlob(digest, "replaced-by-a-verified-store", &moved_to);
    if (!s.ok()) return s;
    LogWarning("moved the blob of " + digest.ToString() + " to " + moved_to +
               ": it was not the file committed; the bytes just stored replace it");
  }
  FileStat committed;
  bool existed = false;
  s = blobs_.Commit(staged, &committed, &existed);
  if (!s.ok()) return s;
  const DiskIdentity disk{committed.ino, committed.mtime_ns, committed.ctime_ns};
  // A new inode was verified as it was written; an existing one keeps its
  // identity (a schema-3 one gets it recorded now).
  s = catalog_->RecordStore(digest, size, request.name, who, options_.env->NowMicros(),
                            existed ? nullptr : &disk, own);

  if (!s.ok()) {
    // Leave no unrecorded bytes behind, unless an earlier store recorded them.
    if (!recorded && !existed && blobs_.BeginRemove(digest).ok()) (void)blobs_.FinishRemove(digest);
    return s;
  }
  if (recorded && existing.damaged()) {
    LogInfo("repaired " + digest.ToString() + ": the right bytes were stored again");
  }
  return catalog_->GetFileEntry(digest, record);
}

Status Engine::Resolve(const Principal& who, const Digest& digest, OpenTarget* target) {
  AccessFacts facts;
  Status s = catalog_->GetAccessFacts(digest, who, &facts);
  if (!s.ok()) return s;
  OpenTarget out;
  switch (DecideOpenEntry(facts)) {
    case OpenEntry::kNotFound:
      out.kind = OpenTarget::kMiss;
      break;
    case OpenEntry::kPublic:
      out.kind = OpenTarget::kPublic;
      out.own = facts.own;
      break;
    case OpenEntry::kAskConsent:
      out.kind = OpenTarget::kAsk;
      break;
    case OpenEntry::kOwnPrivate:
      out.kind = OpenTarget::kPrivate;
      s = catalog_->GetPrivateFile(digest, who, &out.entry);
      break;
    case OpenEntry::kGrantedPrivate: {
      // Several principals may hold the bytes privately; the same bytes,
      // so the first stored serves.
      out.kind = OpenTarget::kPrivate;
      std::vector<PrivateFileRecord> entries;
      s = catalog_->ListPrivateFiles(digest, &entries);
      if (s.ok() && entries.empty()) s = Status::NotFound("gone");
      if (s.ok()) out.entry = std::move(entries.front());
      break;
    }
  }
  if (s.code() == Code::kNotFound) {
    out.kind = OpenTarget::kMiss;  // deleted meanwhile
    s = Status::OK();
  }
  if (!s.ok()) return s;
  *target = std::move(out);
  return Status::OK();
}

Status Engine::OpenFile(const Principal& caller, const std::string& digest_text, int* fd,
                        FileInfo* info) {
  Digest digest;
  Status s = Digest::Parse(digest_text, &digest);
  if (!s.ok()) return s;
  Principal who;
  s = CanonicalPrincipal(caller, &who);
  if (!s.ok()) return s;
  OpenTarget target;
  s = Resolve(who, digest, &target);
  if (!s.ok()) return s;
  if (target.kind == OpenTarget::kPublic) return OpenAllowed(who, digest, OpenOptions{}, target.own, fd, info);
  if (target.kind == OpenTarget::kPrivate) return OpenPrivate(who, target.entry, OpenOptions{}, fd, info, nullptr);
  return NotStored(digest);
}

void Engine::OpenFileAsync(const Principal& who, const std::string& digest_text,
                           const std::string& caller, OpenDone done) {
  OpenFileAsync(who, digest_text, caller, OpenOptions{}, std::move(done));
}

void Engine::OpenFileAsync(const Principal& asker, const std::string& digest_text, const std::string& caller,
                           const OpenOptions& options, OpenDone done) {
  Digest digest;
  Status s = Digest::Parse(digest_text, &digest);
  Principal who;
  if (s.ok()) s = CanonicalPrincipal(asker, &who);
  if (!s.ok()) return done(s, -1, FileInfo{});
  // Spellings of one origin share its slots: admitted as the canonical one.
  if (!AdmitOpen(who, &done)) return;
  OpenTarget target;
  s = Resolve(who, digest, &target);
  if (!s.ok()) return done(s, -1, FileInfo{});

  if (target.kind == OpenTarget::kPublic) return OpenPublicAsync(who, digest, options, target.own, std::move(done));
  if (target.kind == OpenTarget::kPrivate) return OpenPrivateAsync(who, target.entry, options, std::move(done));
  if (target.kind == OpenTarget::kMiss) return done(NotStored(digest), -1, FileInfo{});

  // Every refusal made without asking the user (the policy, a remembered
  // denial, a spent budget, no agent) must cost what a miss costs, so that
  // its timing does not tell a caller that someone else stored the file:
  // it is decided from memory, before anything is read for the question.
  const ConsentSettings settings = GetSettings();
  if (!consent_.WouldAsk(who, digest.ToString(), settings)) return done(NotStored(digest), -1, FileInfo{});
  if (settings.policy == ConsentPolicy::kAskLater) {
    // Answered now as a miss; the question (whether to allow it next time)
    // is prepared after the reply has gone.
    done(NotStored(digest), -1, FileInfo{});
    return PostBack([this, who, digest, caller, settings] {
      AskUser(who, digest, caller, settings, /*deferred=*/true, [](ConsentDecision) {});
    });
  }
  AskUser(who, digest, caller, settings, /*deferred=*/false,
          [this, who, digest, options, done = std::move(done)](ConsentDecision decision) mutable {
            if (decision != ConsentDecision::kAllowOnce && decision != ConsentDecision::kAllowAlways) {
              return done(NotStored(digest), -1, FileInfo{});
            }
            // Asked because it never stored the file: it has no own facts.
            OpenPublicAsync(who, digest, options, OwnStore{}, std::move(done));
          });
}

void Engine::AskUser(const Principal& who, const Digest& digest, const std::string& caller,
                     const ConsentSettings& settings, bool deferred, std::function<void(ConsentDecision)> done) {
  // Only a public file that exists can be asked for; private files never are.
  FileRecord record;
  if (!catalog_->GetFileEntry(digest, &record).ok() || record.is_private || record.damaged()) {
    return done(ConsentDecision::kNoAnswer);
  }
  ConsentRequest request;
  request.who = who;
  request.deferred = deferred;
  request.files.push_back(record);
  if (!catalog_->GetUsage(digest, &request.attribution).ok()) request.attribution.clear();
  consent_.Request(request, caller, settings,
                   [this, who, digest, deferred, done = std::move(done)](ConsentDecision decision) {
                     // A deferred "allow once" has no request left to allow.
                     if (decision == ConsentDecision::kAllowAlways) {
                       // Not explicit: it opens the public file, never a
                       // private copy of the same bytes.
                       Status g = catalog_->AddGrant(who, digest.ToString(), options_.env->NowMicros(),
                                                     /*explicit_grant=*/false);
                       if (g.ok()) {
                         Publish({"granted", digest.ToString()});
                       } else {
                         LogWarning("could not record the grant the user gave: " + g.ToString());
                       }
                     }
                     done(deferred ? ConsentDecision::kNoAnswer : decision);
                   });
}

void Engine::CallerGone(const std::string& caller) { consent_.DropWaiter(caller); }

// Before anything is looked up, so that a miss and a hit count alike.
bool Engine::AdmitOpen(const Principal& who, OpenDone* done) {
  auto slot = std::make_shared<CallerLimits::Slot>();
  Status s = open_limits_.Acquire(who, slot.get());
  if (!s.ok()) {
    (*done)(s, -1, FileInfo{});
    return false;
  }
  // Given back when the answer goes out, or when a waiter whose caller
  // left is dropped unanswered.
  *done = [slot, inner = std::move(*done)](const Status& status, int fd, const FileInfo& info) {
    slot->Release();
    inner(status, fd, info);
  };
  return true;
}

void Engine::OpenPublicAsync(const Principal& who, const Digest& digest, const OpenOptions& options,
                             const OwnStore& own, OpenDone done) {
  if (!options.sandboxed || blobs_.has_read_only_view()) {
    // An fstat and an open beneath the view: quick, on the caller's thread.
    int fd = -1;
    FileInfo info;
    Status s = Guarded("open", [&] { return OpenAllowed(who, digest, options, own, &fd, &info); });
    return done(s, fd, info);
  }
  // A sandboxed reader without a read-only view gets a copy of the whole
  // file: on a worker, a few at a time, so that copying a large model
  // never stalls other callers or fills memory.
  auto worker = std::make_shared<CallerLimits::Slot>();
  if (Status busy = worker_open_limits_.Acquire(who, worker.get()); !busy.ok()) return done(busy, -1, FileInfo{});
  if (copies_in_flight_.fetch_add(1) >= kMaxCopiesInFlight) {
    --copies_in_flight_;
    return done(Status::Busy("too many copies for sandboxed readers in flight (at most " +
                             std::to_string(kMaxCopiesInFlight) + " for all callers)" + RetryHint(kOpenRetryAfterS)),
                -1, FileInfo{});
  }
  Spawn([this, who, digest, options, own, worker, done = std::move(done)]() mutable {
    int fd = -1;
    FileInfo info;
    Status s = Guarded("open", [&] { return OpenAllowed(who, digest, options, own, &fd, &info); });
    --copies_in_flight_;
    worker->Release();
    PostBack([done = std::move(done), s, fd, info] { done(s, fd, info); });
  });
}

Status Engine::OpenAllowed(const Principal& who, const Digest& digest, const OpenOptions& options,
                           const OwnStore& own, int* fd, FileInfo* info) {
  FileRecord record;
  Status s = catalog_->GetFileEntry(digest, &record);
  if (s.code() == Code::kNotFound) return NotStored(digest);  // deleted meanwhile
  if (!s.ok()) return s;
  if (record.damaged()) return NotStored(digest);
  int blob_fd = -1;
  FileStat st;
  s = blobs_.OpenBlob(digest, &blob_fd, &st);
  if (!s.ok()) {
    if (s.code() == Code::kNotFound) {
      Damage(digest, "its bytes are gone from the store", /*try_repair=*/false, nullptr, &record);
      return NotStored(digest);
    }
    FileStat there;
    if (s.code() == Code::kIOError && blobs_.StatBlob(digest, &there).ok() &&
        there.type != FileStat::Type::kRegular) {
      // A link, a FIFO, a directory: never opened, never served.
      Damage(digest, s.message(), /*try_repair=*/false, &there, &record);
      return NotStored(digest);
    }
    return s;  // a passing failure (no descriptors left, EIO): not damage
  }
  const DiskIdentity found{st.ino, st.mtime_ns, st.ctime_ns};
  if (!record.disk.known()) {
    // Stored before inodes were recorded: from now on this one is checked.
    if (st.size == record.size) (void)catalog_->SetDiskIdentity(digest, found);
  }
  if (st.size != record.size || (record.disk.known() && found != record.disk)) {
    ::close(blob_fd);
    std::string problem = "changed on disk after it was stored";
    if (st.size != record.size) {
      problem += " (" + std::to_string(st.size) + " bytes, stored " + std::to_string(record.size) + ")";
    } else if (found.ino != record.disk.ino) {
      problem += " (another file took its place)";
    } else {
      problem += " (its inode was modified: written, truncated or its mode changed)";
    }
    // The bytes may still be right (only a mode changed): re-verified from
    // the quarantined copy, and put back as a fresh file if they are.
    Damage(digest, problem, /*try_repair=*/st.size == record.size, &st, &record);
    return NotStored(digest);
  }
  if (options.sandboxed && !blobs_.has_read_only_view()) {
    // No read-only view: the shared inode itself would let its holder
    // fchmod it and reopen it for writing. A sandboxed app gets a copy.
    int copy_fd = -1;
    s = CopyToSealedMemfd(blob_fd, record.size, "costore:" + digest.ToString(), &copy_fd);
    ::close(blob_fd);
    if (!s.ok()) return s;
    blob_fd = copy_fd;
  }
  // Best effort: attribution is statistics; a full disk must not stop reads.
  s = catalog_->RecordRead(digest, who, options_.env->NowMicros());
  if (!s.ok() && s.code() != Code::kNotFound) LogDebug("not counting a read of " + digest.ToString() + ": " + s.message());
  *fd = blob_fd;
  *info = InfoFor(record, own);
  return Status::OK();
}

Status Engine::List(std::vector<FileRecord>* files, const std::string& digest_filter) {
  std::optional<Digest> filter;
  Status s = ParseDigestFilter(digest_filter, &filter);
  if (!s.ok()) return s;
  std::vector<FileRecord> public_files;
  s = catalog_->ListFiles(&public_files);
  if (!s.ok()) return s;
  std::vector<PrivateFileRecord> private_files;
  s = catalog_->ListPrivateFiles(filter, &private_files);
  if (!s.ok()) return s;
  // Both are ordered by digest; merge, the public entry first.
  std::vector<FileRecord> out;
  size_t p = 0;
  for (const FileRecord& file : public_files) {
    if (filter && file.digest != *filter) continue;
    while (p < private_files.size() && private_files[p].digest < file.digest) {
      out.push_back(EntryFrom(private_files[p++]));
    }
    out.push_back(file);
  }
  while (p < private_files.size()) out.push_back(EntryFrom(private_files[p++]));
  *files = std::move(out);
  return Status::OK();
}

Status Engine::Stat(const std::string& digest_text, FileRecord* file, uint32_t* entries) {
  Digest digest;
  Status s = Digest::Parse(digest_text, &digest);
  if (!s.ok()) return s;
  FileRecord public_file;
  s = catalog_->GetFile(digest, &public_file);
  if (!s.ok() && s.code() != Code::kNotFound) return s;
  const bool has_public = s.ok();
  std::vector<PrivateFileRecord> private_files;
  s = catalog_->ListPrivateFiles(digest, &private_files);
  if (!s.ok()) return s;
  if (!has_public && private_files.empty()) return NotStored(digest);
  *file = has_public ? public_file : EntryFrom(private_files.front());
  if (entries != nullptr) *entries = static_cast<uint32_t>(private_files.size() + (has_public ? 1 : 0));
  return Status::OK();
}

Status Engine::Delete(const std::string& digest_text) {
  Digest digest;
  Status s = Digest::Parse(digest_text, &digest);
  if (!s.ok()) return s;
  {
    std::lock_guard<std::mutex> lock(LockFor(digest));
    s = RemovePublic(digest);
    if (!s.ok() && s.code() != Code::kNotFound) return s;
    const bool had_public = s.ok();
    std::vector<PrivateFileRecord> deleted;
    s = WithReserve([&] { return catalog_->DeletePrivateFiles(digest, &deleted); });
    if (!s.ok()) return s;
    if (!had_public && deleted.empty()) return NotStored(digest);
    for (const PrivateFileRecord& entry : deleted) {
      s = blobs_.RemovePrivate(digest, OwnerTag(entry.blob_owner()));
      if (!s.ok() && s.code() != Code::kNotFound) return s;
    }
  }
  RefillReserve();
  Publish({"deleted", digest.ToString()});
  return Status::OK();
}

Status Engine::RemovePublic(const Digest& digest) {
  FileRecord record;
  Status s = catalog_->GetFile(digest, &record);
  if (!s.ok()) return s;
  // The blob moves into ingest/ first (durably), then the record goes,
  // then the file: a crash in between is finished at the next start, never
  // undone, and never leaves a record that names nothing.
  s = blobs_.BeginRemove(digest);
  const bool moved = s.ok();
  if (!s.ok() && s.code() != Code::kNotFound) return s;
  s = WithReserve([&] { return catalog_->DeleteFile(digest); });
  if (!s.ok()) {
    if (moved && blobs_.UndoRemove(digest).ok()) {
      // The rename back moved the inode's ctime: record it as it is now.
      FileStat back;
      if (blobs_.StatBlob(digest, &back).ok()) {
        (void)catalog_->SetDiskIdentity(digest, DiskIdentity{back.ino, back.mtime_ns, back.ctime_ns});
      }
    }
    return s;
  }
  if (moved) {
    s = blobs_.FinishRemove(digest);
    if (!s.ok()) LogWarning("deleting " + digest.ToString() + ": " + s.ToString() + " (removed at next start)");
  }
  return Status::OK();
}

Status Engine::Grant(const Principal& grantee, const std::string& digest_text) {
  Principal who;
  std::string target;
  Status s = ParseGrant(grantee, digest_text, &who, &target);
  if (!s.ok()) return s;
  // Set by the user in the manager: explicit, so a grant for one digest
  // also opens private copies of it ("*" never does).
  s = WithReserve([&] { return catalog_->AddGrant(who, target, options_.env->NowMicros(), /*explicit_grant=*/true); });
  if (s.code() == Code::kNotFound && target != "*") {
    Digest digest;
    if (Digest::Parse(target, &digest).ok()) return NotStored(digest);
  }
  if (!s.ok()) return s;
  Publish({"granted", target});
  return Status::OK();
}

Status Engine::Revoke(const Principal& grantee, const std::string& digest_text) {
  Principal who;
  std::string target;
  Status s = ParseGrant(grantee, digest_text, &who, &target);
  if (!s.ok()) return s;
  s = WithReserve([&] { return catalog_->RemoveGrant(who, target); });
  if (!s.ok()) return s;
  Publish({"revoked", target});
  return Status::OK();
}

Status Engine::ListGrants(const std::string& digest_filter, std::vector<GrantRecord>* grants) {
  std::optional<Digest> filter;
  Status s = ParseDigestFilter(digest_filter, &filter);
  if (!s.ok()) return s;
  return catalog_->ListGrants(filter, grants);
}

Status Engine::Usage(const std::string& digest_text, std::vector<UsageRecord>* usage) {
  Digest digest;
  Status s = Digest::Parse(digest_text, &digest);
  if (!s.ok()) return s;
  // The public entry's attribution when there is one: it never names who
  // stored the same bytes privately. Otherwise the private entries'.
  s = catalog_->GetUsage(digest, usage);
  if (s.code() == Code::kNotFound) s = catalog_->GetPrivateUsage(digest, usage);
  if (s.code() == Code::kNotFound) return NotStored(digest);
  return s;
}

}  // namespace costore

namespace costore {
namespace {

constexpr char kPolicyKey[] = "consent-policy";
constexpr char kTimeoutKey[] = "consent-timeout";
constexpr char kBudgetKey[] = "prompts-per-hour";
constexpr char kMinFreeKey[] = "min-free-space";
constexpr char kQuotaKey[] = "quota";
constexpr char kAutoCollectKey[] = "auto-collect";
constexpr char kScrubKey[] = "scrub-interval";
constexpr char kMinRateKey[] = "min-store-rate";
constexpr const char* kSettingKeys[] = {kPolicyKey, kTimeoutKey,     kBudgetKey, kMinFreeKey,
                                       kQuotaKey,  kAutoCollectKey, kScrubKey,  kMinRateKey};

struct AllSettings {
  ConsentSettings consent;
  SpaceSettings space;
  uint64_t min_store_rate = 0;
};

// Settings are kept as text; numbers as decimal digits.
Status ParseNumber(const std::string& key, const std::string& text, uint64_t* out) {
  if (text.empty() || text.size() > 19) return Status::InvalidArgument(key + " is not a number");
  uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return Status::InvalidArgument(key + " is not a number");
    value = value * 10 + static_cast<uint64_t>(c - '0');
  }
  *out = value;
  return Status::OK();
}

// A byte count: t, or u for callers that only have 32-bit numbers.
bool AsBytes(const SettingValue& value, uint64_t* out) {
  if (const uint64_t* v = std::get_if<uint64_t>(&value)) {
    *out = *v;
    return true;
  }
  if (const uint32_t* v = std::get_if<uint32_t>(&value)) {
    *out = *v;
    return true;
  }
  return false;
}

// Checks `value` for `key` and writes it into *settings; *text is how the
// catalog keeps it.
Status ApplySetting(const std::string& key, const SettingValue& value, AllSettings* settings, std::string* text) {
  if (key == kPolicyKey) {
    const std::string* policy = std::get_if<std::string>(&value);
    if (policy == nullptr) return Status::InvalidArgument("consent-policy takes a string");
    if (!ParseConsentPolicy(*policy, &settings->consent.policy)) {
      return Status::InvalidArgument("consent-policy must be \"ask\", \"ask-later\" or \"deny\", not " +
                                     Quote(*policy));
    }
    *text = *policy;
    return Status::OK();
  }
  if (key == kTimeoutKey || key == kBudgetKey || key == kScrubKey) {
    const uint32_t* number = std::get_if<uint32_t>(&value);
    if (number == nullptr) return Status::InvalidArgument(key + " takes an unsigned number (u)");
    const uint32_t min = key == kTimeoutKey ? 1 : 0;
    const uint32_t max = key == kScrubKey ? 3650 : 3600;
    if (*number < min || *number > max) {
      return Status::InvalidArgument(key + " must be between " + std::to_string(min) + " and " +
                                     std::to_string(max) + ", not " + std::to_string(*number));
    }
    if (key == kTimeoutKey) {
      settings->consent.timeout_s = *number;
    } else if (key == kBudgetKey) {
      settings->consent.prompts_per_hour = *number;
    } else {
      settings->space.scrub_interval_days = *number;
    }
    *text = std::to_string(*number);
    return Status::OK();
  }
  if (key == kMinFreeKey || key == kQuotaKey) {
    uint64_t bytes = 0;
    if (!AsBytes(value, &bytes)) return Status::InvalidArgument(key + " takes a byte count (t)");
    if (bytes > BlobStore::kMaxFileSize * 1024) {
      return Status::InvalidArgument(key + " of " + std::to_string(bytes) + " bytes is beyond any disk");
    }
    (key == kMinFreeKey ? settings->space.min_free_space : settings->space.quota) = bytes;
    *text = std::to_string(bytes);
    return Status::OK();
  }
  if (key == kMinRateKey) {
    uint64_t rate = 0;
    if (!AsBytes(value, &rate)) return Status::InvalidArgument(key + " takes bytes per second (t or u)");
    // Past 1 TiB/s no disk keeps up: every store would be cancelled.
    if (rate > (uint64_t{1} << 40)) {
      return Status::InvalidArgument(key + " of " + std::to_string(rate) +
                                     " bytes per second is faster than any disk (at most 1 TiB/s; 0: off)");
    }
    settings->min_store_rate = rate;
    *text = std::to_string(rate);
    return Status::OK();
  }
  if (key == kAutoCollectKey) {
    const bool* on = std::get_if<bool>(&value);
    if (on == nullptr) return Status::InvalidArgument("auto-collect takes a boolean (b)");
    settings->space.auto_collect = *on;
    *text = *on ? "true" : "false";
    return Status::OK();
  }
  return Status::InvalidArgument("unknown setting " + Quote(key) +
                                 "; known: consent-policy, consent-timeout, prompts-per-hour, min-free-space, "
                                 "quota, auto-collect, scrub-interval, min-store-rate");
}

// A setting read back from the catalog, as the type its key takes.
Status ParseStoredSetting(const std::string& key, const std::string& text, SettingValue* value) {
  if (key == kPolicyKey) {
    *value = text;
    return Status::OK();
  }
  if (key == kAutoCollectKey) {
    if (text != "true" && text != "false") return Status::InvalidArgument("not a boolean");
    *value = text == "true";
    return Status::OK();
  }
  uint64_t number = 0;
  Status s = ParseNumber(key, text, &number);
  if (!s.ok()) return s;
  if (key == kMinFreeKey || key == kQuotaKey || key == kMinRateKey) {
    *value = number;
  } else {
    if (number > UINT32_MAX) return Status::InvalidArgument("out of range");
    *value = static_cast<uint32_t>(number);
  }
  return Status::OK();
}

}  // namespace

Status Engine::LoadSettings() {
  AllSettings settings;
  settings.min_store_rate = options_.min_store_rate;  // until the user sets one
  for (const char* key : kSettingKeys) {
    std::string text;
    Status s = catalog_->GetSetting(key, &text);
    if (s.code() == Code::kNotFound) continue;
    if (!s.ok()) return s;
    SettingValue value;
    std::string ignored;
    if (!ParseStoredSetting(key, text, &value).ok() || !ApplySetting(key, value, &settings, &ignored).ok()) {
      LogWarning(std::string("ignoring the stored setting ") + key + " = " + Quote(text));
    }
  }
  std::lock_guard<std::mutex> lock(settings_mu_);
  settings_ = settings.consent;
  space_ = settings.space;
  min_store_rate_ = settings.min_store_rate;
  return Status::OK();
}

uint64_t Engine::GetMinStoreRate() {
  std::lock_guard<std::mutex> lock(settings_mu_);
  return min_store_rate_;
}

SpaceSettings Engine::GetSpaceSettings() {
  std::lock_guard<std::mutex> lock(settings_mu_);
  return space_;
}

ConsentSettings Engine::GetSettings() {
  std::lock_guard<std::mutex> lock(settings_mu_);
  return settings_;
}

Status Engine::SetSetting(const std::string& key, const SettingValue& value) {
  AllSettings settings;
  {
    std::lock_guard<std::mutex> lock(settings_mu_);
    settings = AllSettings{settings_, space_, min_store_rate_};
  }
  std::string text;
  Status s = ApplySetting(key, value, &settings, &text);
  if (!s.ok()) return s;
  s = WithReserve([&] { return catalog_->SetSetting(key, text); });
  if (!s.ok()) return s;
  {
    std::lock_guard<std::mutex> lock(settings_mu_);
    // Only this key: another key set meanwhile keeps its new value.
    if (key == kPolicyKey || key == kTimeoutKey || key == kBudgetKey) {
      settings_ = settings.consent;
    } else if (key == kMinRateKey) {
      min_store_rate_ = settings.min_store_rate;
    } else {
      space_ = settings.space;
    }
  }
  if (key == kScrubKey) {
    std::lock_guard<std::mutex> lock(scrub_mu_);  // so that the scrub cannot miss it between check and wait
    scrub_cv_.notify_all();
  }
  Publish({"settings", "*"});
  return Status::OK();
}

Status Engine::ForgetOrigin(const std::string& given, ForgetResult* result) {
  if (given.empty()) {
    return Status::InvalidArgument("origin is empty; to forget an app, revoke its grants");
  }
  std::string origin;
  Status s = CanonicalizeOrigin(given, &origin);
  if (!s.ok()) {
    // A spelling recorded before origins were canonical, with no canonical
    // form (ws://, an extension's): no other call reaches it, this one
    // removes it as it is written.
    bool recorded = false;
    Status looked = catalog_->HasOrigin(given, &recorded);
    if (!looked.ok()) return looked;
    if (!recorded) return s;
    origin = given;
  }
  {
    // Files may be deleted: hold every digest lock (always in index order,
    // so that this never deadlocks with a single-digest holder).
    std::vector<std::unique_lock<std::mutex>> locks;
    for (auto& mu : digest_locks_) locks.emplace_back(mu);
    // As in RemovePublic: the blobs move into ingest/ before the records go,
    // so that a crash or a failure never leaves a forgotten file's bytes in
    // blobs/ to be re-indexed at the next start. Every digest lock is held,
    // so the dry run names exactly what the real one deletes.
    ForgetResult preview;
    s = catalog_->ForgetOrigin(origin, &preview, /*dry_run=*/true);
    if (!s.ok()) return s;
    std::vector<Digest> moved;
    for (const Digest& digest : preview.deleted_files) {
      Status begun = blobs_.BeginRemove(digest);
      if (begun.ok()) {
        moved.push_back(digest);
      } else if (begun.code() != Code::kNotFound) {
        for (const Digest& back : moved) (void)blobs_.UndoRemove(back);
        return begun;
      }
    }
    s = WithReserve([&] { return catalog_->ForgetOrigin(origin, result); });
    if (!s.ok()) {
      for (const Digest& back : moved) (void)blobs_.UndoRemove(back);
      return s;
    }
    for (const Digest& digest : moved) {
      Status removed = blobs_.FinishRemove(digest);
      if (!removed.ok()) {
        LogWarning("forgetting " + Quote(origin) + ": " + removed.ToString() + " (removed at next start)");
      }
    }
    for (const PrivateFileRecord& entry : result->deleted_private) {
      Status removed = blobs_.RemovePrivate(entry.digest, OwnerTag(entry.blob_owner()));
      if (!removed.ok() && removed.code() != Code::kNotFound) {
        LogWarning("forgetting " + Quote(origin) + ": " + removed.ToString() + " (quarantined at next start)");
      }
    }
  }
  Publish({"forgotten", "*"});
  return Status::OK();
}

}  // namespace costore

// --- private files -------------------------------------------------------------

namespace costore {

Status Engine::StorePrivate(const Principal& who, const Digest& digest, const StoreRequest& request,
                            const std::function<Status(uint64_t)>& check_progress, FileInfo* info) {
  // The keyring first: a locked or missing keyring fails at once, not
  // after the whole stream has been read.
  SecretKey master;
  uint32_t version = 0;
  Status s = keys_.ForNewFile(&master, &version);
  if (!s.ok()) return s;

  SealedHeader header;
  header.cipher = cipher_;
  header.chunk_size = options_.chunk_size;
  header.digest = digest;
  SecretKey data_key = SecretKey::Random();
  std::unique_ptr<ChunkCipher> chunk_cipher;
  s = ChunkCipher::Create(header, data_key, &chunk_cipher);
  if (!s.ok()) return s;

  // One pass: the bytes are hashed as they arrive (the digest is of the
  // plaintext) and sealed chunk by chunk on their way to ingest/.
  IngestRequest ingest = IngestOf(request, digest, options_.idle_timeout_ms, &cancelled_);
  ingest.check_progress = check_progress;
  RateFloor rate_floor = StoreRateFloor();
  ingest.rate_floor = &rate_floor;
  ingest.filter = [&chunk_cipher](std::unique_ptr<WritableFile> file) -> std::unique_ptr<WritableFile> {
    return std::make_unique<SealingFile>(std::move(file), std::move(chunk_cipher));
  };
  StagedBlob staged;
  s = blobs_.Ingest(ingest, &staged);
  if (!s.ok()) return s;

  PrivateFileRecord record;
  {
    // A rekey must not finish between choosing the key version and
    // recording the entry under it.
    auto versions = keys_.HoldVersions();
    if (!keys_.StillValidForNewFile(version)) {
      s = keys_.ForNewFile(&master, &version);  // rotated while the bytes streamed
      if (!s.ok()) return s;
    }
    NewPrivateFile entry;
    entry.digest = digest;
    entry.size = staged.size();
    entry.name = request.name;
    entry.owner = who;
    entry.cipher = std::string(CipherName(cipher_));
    entry.chunk_size = options_.chunk_size;
    entry.key_version = version;
    entry.wrapped_key = WrapDataKey(master, version, digest, data_key);

    std::lock_guard<std::mutex> lock(LockFor(digest));
    PrivateFileRecord existing;
    s = catalog_->GetPrivateFile(digest, who, &existing);
    if (!s.ok() && s.code() != Code::kNotFound) return s;
    bool exists = s.ok();
    if (exists && existing.damaged()) {
      // Its bytes are not what was sealed: the new ones take its place (the
      // old file, if any is left, goes to quarantine/, not away).
      (void)blobs_.QuarantinePrivate(digest, OwnerTag(existing.blob_owner()), "replaced-by-a-verified-store");
      s = catalog_->DeletePrivateFile(existing.id);
      if (!s.ok()) return s;
      exists = false;
    }
    if (!exists) {
      // No record names a file at this path: publish ours, replacing
      // anything a crash left there.
      s = blobs_.CommitPrivate(&staged, OwnerTag(who));
      if (!s.ok()) return s;
    }
    // An existing entry keeps its bytes and key; ours are dropped with
    // `staged`. The bytes were read and verified all the same.
    bool created = false;
    s = catalog_->RecordPrivateStore(entry, options_.env->NowMicros(), &created);
    if (!s.ok()) {
      if (!exists) (void)blobs_.RemovePrivate(digest, OwnerTag(who));
      return s;
    }
    s = catalog_->GetPrivateFile(digest, who, &record);
    if (!s.ok()) return s;
  }
  *info = InfoFor(record, who);
  // Manager1.Changed is a broadcast: a private store does not name its digest.
  Publish({"stored", "*"});
  return Status::OK();
}

Status Engine::OpenPrivate(const Principal& who, const PrivateFileRecord& entry, const OpenOptions& options,
                           int* fd, FileInfo* info, std::unique_ptr<PrivateStream>* stream) {
  if (entry.damaged()) return NotStored(entry.digest);
  SecretKey master;
  Status s = keys_.ForVersion(entry.key_version, /*interactive=*/true, &master);
  if (!s.ok()) return s;
  SecretKey data_key;
  s = UnwrapDataKey(master, entry.key_version, entry.digest, entry.wrapped_key, &data_key);
  if (!s.ok()) return s;
  Cipher cipher;
  if (!ParseCipherName(entry.cipher, &cipher)) {
    return Status::IOError("the catalog names an unknown cipher " + Quote(entry.cipher) + " for " +
                           DescribePrivate(blobs_, entry));
  }
  int file_fd = -1;
  s = blobs_.OpenPrivate(entry.digest, OwnerTag(entry.blob_owner()), &file_fd);
  if (!s.ok()) {
    if (s.code() == Code::kNotFound) {
      LogError("the record of " + DescribePrivate(blobs_, entry) + " has no bytes on disk");
      return NotStored(entry.digest);
    }
    return s;
  }
  const std::string what = DescribePrivate(blobs_, entry);
  std::unique_ptr<SealedReader> reader;
  s = SealedReader::Open(file_fd, SealedReader::Expect{entry.digest, entry.size, cipher}, data_key, what, &reader);
  int out_fd = -1;
  std::unique_ptr<PrivateStream> pump;
  if (s.ok() && options.stream && stream != nullptr) {
    pump = std::make_unique<PrivateStream>(file_fd, std::move(reader), what);
    file_fd = -1;  // the stream owns it
    s = pump->Prepare(&out_fd);
  } else if (s.ok()) {
    s = UnsealToMemfd(reader.get(), "costore:" + entry.digest.ToString(), &out_fd);
  }
  if (file_fd >= 0) ::close(file_fd);
  if (!s.ok()) {
    if (s.code() == Code::kIOError) LogError(s.message());
    return s;
  }
  s = catalog_->RecordPrivateRead(entry.id, who, options_.env->NowMicros());
  if (s.code() == Code::kNotFound) {
    ::close(out_fd);
    return NotStored(entry.digest);  // deleted meanwhile
  }
  // Otherwise best effort: a full disk must not stop reads.
  if (!s.ok()) LogDebug("not counting a read of " + entry.digest.ToString() + ": " + s.message());
  *fd = out_fd;
  *info = InfoFor(entry, who);
  if (stream != nullptr) *stream = std::move(pump);
  return Status::OK();
}

void Engine::OpenPrivateAsync(const Principal& who, const PrivateFileRecord& entry, const OpenOptions& options,
                              OpenDone done) {
  // The keyring may block (even prompt), and decryption takes time: off
  // the caller's thread; only the reply comes back. The worker is counted
  // against the caller until the stream is pumped dry.
  auto worker = std::make_shared<CallerLimits::Slot>();
  if (Status busy = worker_open_limits_.Acquire(who, worker.get()); !busy.ok()) return done(busy, -1, FileInfo{});
  Spawn([this, who, entry, options, worker, done = std::move(done)]() mutable {
    int fd = -1;
    FileInfo info;
    std::unique_ptr<PrivateStream> stream;
    Status s = Guarded("open of a private file",
                       [&] { return OpenPrivate(who, entry, options, &fd, &info, &stream); });
    PostBack([done = std::move(done), s, fd, info] { done(s, fd, info); });
    if (s.ok() && stream) {
      Status pumped = stream->Pump(&cancelled_, options_.idle_timeout_ms);
      if (pumped.code() == Code::kIOError) {
        LogError(pumped.message() + "; the stream to the reader was cut short");
      } else if (!pumped.ok()) {
        LogDebug("streaming " + entry.digest.ToString() + " stopped: " + pumped.message());
      }
    }
    worker->Release();
  });
}

Status Engine::Rekey(RekeyResult* result) {
  Status s = Guarded("rekey", [&] { return keys_.Rekey(options_.rekey_interrupt, result); });
  if (s.ok()) Publish({"rekeyed", "*"});
  return s;
}

KeyringStatusInfo Engine::KeyringStatus() {
  KeyringStatusInfo info;
  try {
    info.report = keys_.Report();
  } catch (const std::exception& e) {
    info.report.state = "error";
    info.report.message = std::string("reading the keyring failed: ") + e.what();
  }
  info.cipher = std::string(CipherName(cipher_));
  info.chunk_size = options_.chunk_size;
  return info;
}

}  // namespace costore
