#include "daemon/engine/engine.h"

#include <unistd.h>

#include <algorithm>
#include <set>

#include "daemon/crypto/key_wrap.h"
#include "daemon/engine/access_policy.h"
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

// Checks who a grant is for and parses its target ("*" or a digest).
Status ParseGrant(const Principal& who, const std::string& text, std::string* target) {
  Status s = ValidateApp(who.app);
  if (!s.ok()) return s;
  s = ValidateOrigin(who.origin);
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

FileInfo InfoFrom(const FileRecord& record) {
  return FileInfo{record.digest, record.size, record.name, record.first_stored_us, false, ""};
}

FileInfo InfoFrom(const PrivateFileRecord& record) {
  return FileInfo{record.digest, record.size, record.name, record.first_stored_us, true, record.cipher};
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
  return file;
}

// How a private file is named in messages: its digest and where it is.
std::string DescribePrivate(const BlobStore& blobs, const PrivateFileRecord& entry) {
  return "private file " + entry.digest.ToString() + " (" + blobs.PrivatePath(entry.digest, OwnerTag(entry.owner)) +
         ")";
}

// Decrements a counter when the scope ends.
class InFlight {
 public:
  explicit InFlight(std::atomic<int>* counter) : counter_(counter) { ++*counter_; }
  ~InFlight() { --*counter_; }
  InFlight(const InFlight&) = delete;
  InFlight& operator=(const InFlight&) = delete;

 private:
  std::atomic<int>* counter_;
};

}  // namespace

Status Engine::Open(const EngineOptions& options, std::unique_ptr<Engine>* out) {
  if (options.root.empty()) return Status::InvalidArgument("store directory is empty");
  Status s = options.env->CreateDirs(options.root, 0700);
  if (!s.ok()) return s;
  std::unique_ptr<Catalog> catalog;
  s = Catalog::Open(options.root + "/catalog.db", &catalog);
  if (!s.ok()) return s;
  std::unique_ptr<Engine> engine(new Engine(options, std::move(catalog)));
  s = engine->blobs_.Init();
  if (!s.ok()) return s;
  s = engine->RemoveOrphans();
  if (!s.ok()) return s;
  s = engine->LoadSettings();
  if (!s.ok()) return s;
  *out = std::move(engine);
  return Status::OK();
}

Engine::Engine(const EngineOptions& options, std::unique_ptr<Catalog> catalog)
    : options_(options),
      blobs_(options.env, options.root),
      catalog_(std::move(catalog)),
      consent_(options.env),
      keys_(catalog_.get(), options.key_store),
      cipher_(options.cipher.value_or(PreferredCipher())) {}

Engine::~Engine() {
  // The default executor's threads (tests): streams stop at once.
  cancelled_ = true;
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

// A crash between publishing a blob and recording it leaves a blob that no
// record names; a record whose blob is gone cannot be served. Both are
// reconciled here, before the first caller is served.
Status Engine::RemoveOrphans() {
  std::vector<Digest> on_disk;
  Status s = blobs_.ListBlobs(&on_disk);
  if (!s.ok()) return s;
  std::vector<Digest> recorded;
  s = catalog_->ListDigests(&recorded);
  if (!s.ok()) return s;
  std::set<Digest> recorded_set(recorded.begin(), recorded.end());
  std::set<Digest> disk_set(on_disk.begin(), on_disk.end());
  for (const Digest& digest : on_disk) {
    if (recorded_set.count(digest)) continue;
    LogWarning("removing " + digest.ToString() + ": its bytes were stored but never recorded");
    s = blobs_.RemoveBlob(digest);
    if (!s.ok() && s.code() != Code::kNotFound) return s;
  }
  for (const Digest& digest : recorded) {
    if (disk_set.count(digest)) continue;
    LogWarning("forgetting " + digest.ToString() + ": its record exists but its bytes are gone");
    s = catalog_->DeleteFile(digest);
    if (!s.ok() && s.code() != Code::kNotFound) return s;
  }

  // The same for private files, named by (digest, owner tag).
  std::vector<std::pair<Digest, std::string>> private_on_disk;
  s = blobs_.ListPrivate(&private_on_disk);
  if (!s.ok()) return s;
  std::vector<PrivateFileRecord> private_recorded;
  s = catalog_->ListPrivateFiles(std::nullopt, &private_recorded);
  if (!s.ok()) return s;
  std::set<std::pair<Digest, std::string>> private_disk_set(private_on_disk.begin(), private_on_disk.end());
  std::set<std::pair<Digest, std::string>> private_recorded_set;
  for (const PrivateFileRecord& entry : private_recorded) {
    std::pair<Digest, std::string> name{entry.digest, OwnerTag(entry.owner)};
    private_recorded_set.insert(name);
    if (private_disk_set.count(name)) continue;
    LogWarning("forgetting the private entry of " + entry.digest.ToString() + ": its record exists but its bytes are gone");
    s = catalog_->DeletePrivateFile(entry.id);
    if (!s.ok() && s.code() != Code::kNotFound) return s;
  }
  for (const auto& [digest, tag] : private_on_disk) {
    if (private_recorded_set.count({digest, tag})) continue;
    LogWarning("removing a private copy of " + digest.ToString() + ": its bytes were stored but never recorded");
    s = blobs_.RemovePrivate(digest, tag);
    if (!s.ok() && s.code() != Code::kNotFound) return s;
  }
  return Status::OK();
}

std::mutex& Engine::LockFor(const Digest& digest) {
  return digest_locks_[digest.bytes()[0] % std::size(digest_locks_)];
}

void Engine::Publish(ChangeEvent event) {
  if (options_.on_change) options_.on_change(event);
}

void Engine::CancelAll() {
  cancelled_ = true;
  consent_.AbandonAll();
}

Status Engine::Store(const Principal& who, const StoreRequest& request, FileInfo* info) {
  Digest digest;
  Status s = Digest::Parse(request.digest, &digest);
  if (!s.ok()) return s;
  s = ValidateOrigin(who.origin);
  if (!s.ok()) return s;
  s = ValidateName(request.name);
  if (!s.ok()) return s;
  if (request.size && *request.size > BlobStore::kMaxFileSize) {
    return Status::InvalidArgument("size " + std::to_string(*request.size) +
                                   " is larger than the 1 PiB limit");
  }
  if (cancelled_) return Status::Cancelled("the daemon is shutting down");

  InFlight in_flight(&stores_in_flight_);
  if (stores_in_flight_.load() > options_.max_concurrent_stores) {
    return Status::Busy("too many stores in flight (" + std::to_string(options_.max_concurrent_stores) +
                        "); try again when one has finished");
  }
  if (request.is_private) return StorePrivate(who, digest, request, info);

  IngestRequest ingest = IngestOf(request, digest, options_.idle_timeout_ms, &cancelled_);
  StagedBlob staged;
  s = blobs_.Ingest(ingest, &staged);
  if (!s.ok()) return s;

  const uint64_t size = staged.size();
  FileRecord record;
  {
    std::lock_guard<std::mutex> lock(LockFor(digest));
    s = blobs_.Commit(&staged);
    if (!s.ok()) return s;
    s = catalog_->RecordStore(digest, size, request.name, who, options_.env->NowMicros());
    if (!s.ok()) {
      // Leave no unrecorded bytes behind, unless an earlier store recorded them.
      FileRecord existing;
      if (catalog_->GetFile(digest, &existing).code() == Code::kNotFound) {
        (void)blobs_.RemoveBlob(digest);
      }
      return s;
    }
    s = catalog_->GetFile(digest, &record);
    if (!s.ok()) return s;
  }
  *info = InfoFrom(record);
  Publish({"stored", digest.ToString()});
  return Status::OK();
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

Status Engine::OpenFile(const Principal& who, const std::string& digest_text, int* fd,
                        FileInfo* info) {
  Digest digest;
  Status s = Digest::Parse(digest_text, &digest);
  if (!s.ok()) return s;
  s = ValidateOrigin(who.origin);
  if (!s.ok()) return s;
  OpenTarget target;
  s = Resolve(who, digest, &target);
  if (!s.ok()) return s;
  if (target.kind == OpenTarget::kPublic) return OpenAllowed(who, digest, fd, info);
  if (target.kind == OpenTarget::kPrivate) return OpenPrivate(who, target.entry, OpenOptions{}, fd, info, nullptr);
  return NotStored(digest);
}

void Engine::OpenFileAsync(const Principal& who, const std::string& digest_text,
                           const std::string& caller, OpenDone done) {
  OpenFileAsync(who, digest_text, caller, OpenOptions{}, std::move(done));
}

void Engine::OpenFileAsync(const Principal& who, const std::string& digest_text, const std::string& caller,
                           const OpenOptions& options, OpenDone done) {
  Digest digest;
  Status s = Digest::Parse(digest_text, &digest);
  if (s.ok()) s = ValidateOrigin(who.origin);
  OpenTarget target;
  if (s.ok()) s = Resolve(who, digest, &target);
  if (!s.ok()) return done(s, -1, FileInfo{});

  if (target.kind == OpenTarget::kPublic) {
    int fd = -1;
    FileInfo info;
    s = OpenAllowed(who, digest, &fd, &info);
    return done(s, fd, info);
  }
  if (target.kind == OpenTarget::kPrivate) return OpenPrivateAsync(who, target.entry, options, std::move(done));
  if (target.kind == OpenTarget::kMiss) return done(NotStored(digest), -1, FileInfo{});

  // Only a public file that exists can be asked for; private files never are.
  FileRecord record;
  if (!catalog_->GetFile(digest, &record).ok() || record.is_private) {
    return done(NotStored(digest), -1, FileInfo{});
  }
  ConsentRequest request;
  request.who = who;
  request.files.push_back(record);
  if (!catalog_->GetUsage(digest, &request.attribution).ok()) request.attribution.clear();
  consent_.Request(request, caller, GetSettings(),
                   [this, who, digest, done = std::move(done)](ConsentDecision decision) {
                     if (decision != ConsentDecision::kAllowOnce &&
                         decision != ConsentDecision::kAllowAlways) {
                       return done(NotStored(digest), -1, FileInfo{});
                     }
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
                     int opened_fd = -1;
                     FileInfo opened;
                     Status status = OpenAllowed(who, digest, &opened_fd, &opened);
                     done(status, opened_fd, opened);
                   });
}

void Engine::CallerGone(const std::string& caller) { consent_.DropWaiter(caller); }

Status Engine::OpenAllowed(const Principal& who, const Digest& digest, int* fd, FileInfo* info) {
  int blob_fd = -1;
  Status s = blobs_.OpenBlob(digest, &blob_fd);
  if (!s.ok()) {
    if (s.code() == Code::kNotFound) {
      LogError("record of " + digest.ToString() + " has no bytes on disk");
      return NotStored(digest);
    }
    return s;
  }
  FileRecord record;
  s = catalog_->RecordRead(digest, who, options_.env->NowMicros());
  if (s.ok()) s = catalog_->GetFile(digest, &record);
  if (!s.ok()) {
    ::close(blob_fd);
    // Deleted between the access check and now: to the caller, a miss.
    return s.code() == Code::kNotFound ? NotStored(digest) : s;
  }
  *fd = blob_fd;
  *info = InfoFrom(record);
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
    // The record goes first: a crash after it leaves an orphan blob, which
    // the next start removes; the reverse order would leave a record
    // pointing at nothing.
    s = catalog_->DeleteFile(digest);
    if (!s.ok() && s.code() != Code::kNotFound) return s;
    const bool had_public = s.ok();
    if (had_public) {
      s = blobs_.RemoveBlob(digest);
      if (!s.ok() && s.code() != Code::kNotFound) return s;
    }
    std::vector<PrivateFileRecord> deleted;
    s = catalog_->DeletePrivateFiles(digest, &deleted);
    if (!s.ok()) return s;
    if (!had_public && deleted.empty()) return NotStored(digest);
    for (const PrivateFileRecord& entry : deleted) {
      s = blobs_.RemovePrivate(digest, OwnerTag(entry.owner));
      if (!s.ok() && s.code() != Code::kNotFound) return s;
    }
  }
  Publish({"deleted", digest.ToString()});
  return Status::OK();
}

Status Engine::Grant(const Principal& who, const std::string& digest_text) {
  std::string target;
  Status s = ParseGrant(who, digest_text, &target);
  if (!s.ok()) return s;
  // Set by the user in the manager: explicit, so a grant for one digest
  // also opens private copies of it ("*" never does).
  s = catalog_->AddGrant(who, target, options_.env->NowMicros(), /*explicit_grant=*/true);
  if (s.code() == Code::kNotFound && target != "*") {
    Digest digest;
    if (Digest::Parse(target, &digest).ok()) return NotStored(digest);
  }
  if (!s.ok()) return s;
  Publish({"granted", target});
  return Status::OK();
}

Status Engine::Revoke(const Principal& who, const std::string& digest_text) {
  std::string target;
  Status s = ParseGrant(who, digest_text, &target);
  if (!s.ok()) return s;
  s = catalog_->RemoveGrant(who, target);
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

// Settings are kept as text; numbers as decimal digits.
Status ParseNumber(const std::string& key, const std::string& text, uint32_t* out) {
  if (text.empty() || text.size() > 9) return Status::InvalidArgument(key + " is not a number");
  uint32_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return Status::InvalidArgument(key + " is not a number");
    value = value * 10 + static_cast<uint32_t>(c - '0');
  }
  *out = value;
  return Status::OK();
}

// Checks `value` for `key` and writes it into *settings; *text is how the
// catalog keeps it.
Status ApplySetting(const std::string& key, const SettingValue& value, ConsentSettings* settings,
                    std::string* text) {
  if (key == kPolicyKey) {
    const std::string* policy = std::get_if<std::string>(&value);
    if (policy == nullptr) return Status::InvalidArgument("consent-policy takes a string");
    if (*policy != "ask" && *policy != "deny") {
      return Status::InvalidArgument("consent-policy must be \"ask\" or \"deny\", not " + Quote(*policy));
    }
    settings->ask = *policy == "ask";
    *text = *policy;
    return Status::OK();
  }
  if (key == kTimeoutKey || key == kBudgetKey) {
    const uint32_t* number = std::get_if<uint32_t>(&value);
    if (number == nullptr) return Status::InvalidArgument(key + " takes an unsigned number (u)");
    const uint32_t min = key == kTimeoutKey ? 1 : 0;
    if (*number < min || *number > 3600) {
      return Status::InvalidArgument(key + " must be between " + std::to_string(min) +
                                     " and 3600, not " + std::to_string(*number));
    }
    (key == kTimeoutKey ? settings->timeout_s : settings->prompts_per_hour) = *number;
    *text = std::to_string(*number);
    return Status::OK();
  }
  return Status::InvalidArgument("unknown setting " + Quote(key) +
                                 "; known: consent-policy, consent-timeout, prompts-per-hour");
}

}  // namespace

Status Engine::LoadSettings() {
  ConsentSettings settings;
  for (const char* key : {kPolicyKey, kTimeoutKey, kBudgetKey}) {
    std::string text;
    Status s = catalog_->GetSetting(key, &text);
    if (s.code() == Code::kNotFound) continue;
    if (!s.ok()) return s;
    SettingValue value = text;
    if (std::string(key) != kPolicyKey) {
      uint32_t number = 0;
      if (!ParseNumber(key, text, &number).ok()) {
        LogWarning(std::string("ignoring the stored setting ") + key + " = " + Quote(text));
        continue;
      }
      value = number;
    }
    std::string ignored;
    if (!ApplySetting(key, value, &settings, &ignored).ok()) {
      LogWarning(std::string("ignoring the stored setting ") + key + " = " + Quote(text));
    }
  }
  std::lock_guard<std::mutex> lock(settings_mu_);
  settings_ = settings;
  return Status::OK();
}

ConsentSettings Engine::GetSettings() {
  std::lock_guard<std::mutex> lock(settings_mu_);
  return settings_;
}

Status Engine::SetSetting(const std::string& key, const SettingValue& value) {
  ConsentSettings settings = GetSettings();
  std::string text;
  Status s = ApplySetting(key, value, &settings, &text);
  if (!s.ok()) return s;
  s = catalog_->SetSetting(key, text);
  if (!s.ok()) return s;
  {
    std::lock_guard<std::mutex> lock(settings_mu_);
    settings_ = settings;
  }
  Publish({"settings", "*"});
  return Status::OK();
}

Status Engine::ForgetOrigin(const std::string& origin, ForgetResult* result) {
  if (origin.empty()) {
    return Status::InvalidArgument("origin is empty; to forget an app, revoke its grants");
  }
  Status s = ValidateOrigin(origin);
  if (!s.ok()) return s;
  {
    // Files may be deleted: hold every digest lock (always in index order,
    // so that this never deadlocks with a single-digest holder).
    std::vector<std::unique_lock<std::mutex>> locks;
    for (auto& mu : digest_locks_) locks.emplace_back(mu);
    s = catalog_->ForgetOrigin(origin, result);
    if (!s.ok()) return s;
    for (const Digest& digest : result->deleted_files) {
      Status removed = blobs_.RemoveBlob(digest);
      if (!removed.ok() && removed.code() != Code::kNotFound) {
        LogWarning("forgetting " + Quote(origin) + ": " + removed.ToString() +
                   " (removed at next start)");
      }
    }
    for (const PrivateFileRecord& entry : result->deleted_private) {
      Status removed = blobs_.RemovePrivate(entry.digest, OwnerTag(entry.owner));
      if (!removed.ok() && removed.code() != Code::kNotFound) {
        LogWarning("forgetting " + Quote(origin) + ": " + removed.ToString() + " (removed at next start)");
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
                            FileInfo* info) {
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
    const bool exists = s.ok();
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
  *info = InfoFrom(record);
  // Manager1.Changed is a broadcast: a private store does not name its digest.
  Publish({"stored", "*"});
  return Status::OK();
}

Status Engine::OpenPrivate(const Principal& who, const PrivateFileRecord& entry, const OpenOptions& options,
                           int* fd, FileInfo* info, std::unique_ptr<PrivateStream>* stream) {
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
  s = blobs_.OpenPrivate(entry.digest, OwnerTag(entry.owner), &file_fd);
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
  if (!s.ok()) {
    ::close(out_fd);
    return s.code() == Code::kNotFound ? NotStored(entry.digest) : s;  // deleted meanwhile
  }
  *fd = out_fd;
  *info = InfoFrom(entry);
  if (stream != nullptr) *stream = std::move(pump);
  return Status::OK();
}

void Engine::OpenPrivateAsync(const Principal& who, const PrivateFileRecord& entry, const OpenOptions& options,
                              OpenDone done) {
  // The keyring may block (even prompt), and decryption takes time: off
  // the caller's thread; only the reply comes back.
  Spawn([this, who, entry, options, done = std::move(done)]() mutable {
    int fd = -1;
    FileInfo info;
    std::unique_ptr<PrivateStream> stream;
    Status s = OpenPrivate(who, entry, options, &fd, &info, &stream);
    PostBack([done = std::move(done), s, fd, info] { done(s, fd, info); });
    if (s.ok() && stream) {
      Status pumped = stream->Pump(&cancelled_, options_.idle_timeout_ms);
      if (pumped.code() == Code::kIOError) {
        LogError(pumped.message() + "; the stream to the reader was cut short");
      } else if (!pumped.ok()) {
        LogDebug("streaming " + entry.digest.ToString() + " stopped: " + pumped.message());
      }
    }
  });
}

Status Engine::Rekey(RekeyResult* result) {
  Status s = keys_.Rekey(options_.rekey_interrupt, result);
  if (s.ok()) Publish({"rekeyed", "*"});
  return s;
}

KeyringStatusInfo Engine::KeyringStatus() {
  KeyringStatusInfo info;
  info.report = keys_.Report();
  info.cipher = std::string(CipherName(cipher_));
  info.chunk_size = options_.chunk_size;
  return info;
}

}  // namespace costore
