#include "daemon/engine/engine.h"

#include <unistd.h>

#include <algorithm>
#include <set>

#include "daemon/engine/access_policy.h"
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

FileInfo InfoFrom(const FileRecord& record) {
  return FileInfo{record.digest, record.size, record.name, record.first_stored_us};
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
      consent_(options.env) {}

Engine::~Engine() = default;

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

  IngestRequest ingest;
  ingest.source_fd = request.source_fd;
  ingest.expected = digest;
  ingest.expected_size = request.size;
  ingest.idle_timeout_ms = options_.idle_timeout_ms;
  ingest.cancelled = &cancelled_;
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

Status Engine::OpenFile(const Principal& who, const std::string& digest_text, int* fd,
                        FileInfo* info) {
  Digest digest;
  Status s = Digest::Parse(digest_text, &digest);
  if (!s.ok()) return s;
  s = ValidateOrigin(who.origin);
  if (!s.ok()) return s;
  AccessFacts facts;
  s = catalog_->GetAccessFacts(digest, who, &facts);
  if (!s.ok()) return s;
  if (DecideOpen(facts) != AccessDecision::kAllow) return NotStored(digest);
  return OpenAllowed(who, digest, fd, info);
}

void Engine::OpenFileAsync(const Principal& who, const std::string& digest_text,
                           const std::string& caller, OpenDone done) {
  Digest digest;
  Status s = Digest::Parse(digest_text, &digest);
  if (s.ok()) s = ValidateOrigin(who.origin);
  AccessFacts facts;
  if (s.ok()) s = catalog_->GetAccessFacts(digest, who, &facts);
  if (!s.ok()) return done(s, -1, FileInfo{});

  int fd = -1;
  FileInfo info;
  if (DecideOpen(facts) == AccessDecision::kAllow) {
    s = OpenAllowed(who, digest, &fd, &info);
    return done(s, fd, info);
  }
  // Only a file that exists can be asked for; private files never are.
  FileRecord record;
  if (!facts.file_exists || !catalog_->GetFile(digest, &record).ok() || record.is_private) {
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
                       Status g = catalog_->AddGrant(who, digest.ToString(), options_.env->NowMicros());
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

Status Engine::List(std::vector<FileRecord>* files) { return catalog_->ListFiles(files); }

Status Engine::Stat(const std::string& digest_text, FileRecord* file) {
  Digest digest;
  Status s = Digest::Parse(digest_text, &digest);
  if (!s.ok()) return s;
  s = catalog_->GetFile(digest, file);
  if (s.code() == Code::kNotFound) return NotStored(digest);
  return s;
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
    if (s.code() == Code::kNotFound) return NotStored(digest);
    if (!s.ok()) return s;
    s = blobs_.RemoveBlob(digest);
    if (!s.ok() && s.code() != Code::kNotFound) return s;
  }
  Publish({"deleted", digest.ToString()});
  return Status::OK();
}

Status Engine::Grant(const Principal& who, const std::string& digest_text) {
  Status s = ValidateApp(who.app);
  if (!s.ok()) return s;
  s = ValidateOrigin(who.origin);
  if (!s.ok()) return s;
  std::string target;
  s = ParseGrantTarget(digest_text, &target);
  if (!s.ok()) return s;
  s = catalog_->AddGrant(who, target, options_.env->NowMicros());
  if (!s.ok()) return s;
  Publish({"granted", target});
  return Status::OK();
}

Status Engine::Revoke(const Principal& who, const std::string& digest_text) {
  Status s = ValidateApp(who.app);
  if (!s.ok()) return s;
  s = ValidateOrigin(who.origin);
  if (!s.ok()) return s;
  std::string target;
  s = ParseGrantTarget(digest_text, &target);
  if (!s.ok()) return s;
  s = catalog_->RemoveGrant(who, target);
  if (!s.ok()) return s;
  Publish({"revoked", target});
  return Status::OK();
}

Status Engine::ListGrants(const std::string& digest_filter, std::vector<GrantRecord>* grants) {
  std::optional<Digest> filter;
  if (!digest_filter.empty()) {
    Digest digest;
    Status s = Digest::Parse(digest_filter, &digest);
    if (!s.ok()) return s;
    filter = digest;
  }
  return catalog_->ListGrants(filter, grants);
}

Status Engine::Usage(const std::string& digest_text, std::vector<UsageRecord>* usage) {
  Digest digest;
  Status s = Digest::Parse(digest_text, &digest);
  if (!s.ok()) return s;
  s = catalog_->GetUsage(digest, usage);
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
  }
  Publish({"forgotten", "*"});
  return Status::OK();
}

}  // namespace costore
