#include "daemon/dbus/service.h"

#include <unistd.h>

#include <chrono>
#include <thread>

#include "costore-ipc/Manager1_adaptor.h"
#include "costore-ipc/Store1_adaptor.h"
#include "costore-ipc/names.h"
#include "daemon/dbus/call_options.h"
#include "daemon/engine/file_checks.h"
#include "daemon/engine/quote.h"
#include "daemon/log.h"

namespace costore {
namespace {

using Dict = std::map<std::string, sdbus::Variant>;

// "none" for public files.
std::string CipherText(const std::string& cipher) { return cipher.empty() ? "none" : cipher; }

Dict InfoDict(const FileInfo& info) {
  return {{"digest", sdbus::Variant(info.digest.ToString())},
          {"size", sdbus::Variant(info.size)},
          {"name", sdbus::Variant(info.name)},
          {"first-stored", sdbus::Variant(info.first_stored_us)},
          {"private", sdbus::Variant(info.is_private)},
          {"cipher", sdbus::Variant(CipherText(info.cipher))}};
}

Dict FileDict(const FileRecord& file) {
  Dict dict = {{"digest", sdbus::Variant(file.digest.ToString())},
               {"size", sdbus::Variant(file.size)},
               {"name", sdbus::Variant(file.name)},
               {"private", sdbus::Variant(file.is_private)},
               {"first-stored", sdbus::Variant(file.first_stored_us)},
               {"last-used", sdbus::Variant(file.last_used_us)},
               {"stored-by", sdbus::Variant(file.stored_by)},
               {"used-by", sdbus::Variant(file.used_by)},
               {"cipher", sdbus::Variant(CipherText(file.cipher))},
               {"state", sdbus::Variant(std::string(file.damaged() ? "damaged" : "ok"))},
               {"problem", sdbus::Variant(file.problem)},
               {"last-verified", sdbus::Variant(file.verified_us)},
               {"pinned", sdbus::Variant(file.pinned)}};
  if (file.is_private) {
    dict.emplace("owner-app", sdbus::Variant(file.owner.app));
    dict.emplace("owner-origin", sdbus::Variant(file.owner.origin));
  }
  return dict;
}

void ThrowIfError(const Status& status) {
  if (!status.ok()) throw ToDbusError(status);
}

}  // namespace

sdbus::Error ToDbusError(const Status& status) {
  // Messages may carry what a caller sent (an origin, a name, a path);
  // sd-bus sends no reply at all for a string that is not UTF-8.
  return sdbus::Error(std::string(ipc::kErrorPrefix) + std::string(CodeName(status.code())),
                      ValidUtf8(status.message()));
}

// ---------------------------------------------------------------------------
// io.github.costore.Store1

class StoreObject : public sdbus::AdaptorInterfaces<io::github::costore::Store1_adaptor> {
 public:
  StoreObject(sdbus::IConnection& connection, Service& service)
      : AdaptorInterfaces(connection, ipc::kObjectPath), service_(service) {
    registerAdaptor();
  }
  virtual ~StoreObject() { unregisterAdaptor(); }

 private:
  using StoreResult = sdbus::Result<Dict>;
  using OpenResult = sdbus::Result<sdbus::UnixFd, Dict>;

  void Store(StoreResult&& result, std::string origin, std::string digest, sdbus::UnixFd source,
             Dict options) override {
    CallerIdentity caller;
    Status s = service_.IdentifyCurrentCaller(getObject(), &caller);
    StoreRequest request;
    request.digest = std::move(digest);
    if (s.ok()) s = ParseStoreOptions(options, &request);
    if (!s.ok()) {
      result.returnError(ToDbusError(s));
      return;
    }
    // The stream may take minutes: it runs on a worker, and only the reply
    // comes back to the loop thread. The Result (an sd-bus message, whose
    // reference count is not atomic) is only ever touched here and in the
    // posted closure.
    Principal who{caller.app, std::move(origin)};
    // Admitted here, before a worker is taken: a Busy store is answered at
    // once, with no byte of the source read.
    CallerLimits::Slot slot;
    if (s = service_.engine().AdmitStore(who, &slot); !s.ok()) return result.returnError(ToDbusError(s));
    auto pending = std::make_shared<StoreResult>(std::move(result));
    auto fd = std::make_shared<sdbus::UnixFd>(std::move(source));
    auto admitted = std::make_shared<CallerLimits::Slot>(std::move(slot));
    service_.StartWorker([this, pending = std::move(pending), fd = std::move(fd), admitted = std::move(admitted),
                          who = std::move(who), request = std::move(request)]() mutable {
      request.source_fd = fd->get();
      FileInfo info;
      Status status = service_.engine().Store(who, request, &info, std::move(*admitted));  // never throws: Guarded
      fd.reset();  // close the caller's descriptor now, not when the reply is sent
      if (status.ok()) {
        LogDebug("stored " + info.digest.ToString() + " for " + Quote(who.app) + " " + Quote(who.origin));
      }
      service_.loop().Post([pending = std::move(pending), status, info] {
        if (status.ok()) {
          pending->returnResults(InfoDict(info));
        } else {
          pending->returnError(ToDbusError(status));
        }
      });
    });
  }

  void Open(OpenResult&& result, std::string origin, std::string digest, Dict options) override {
    CallerIdentity caller;
    Status s = service_.IdentifyCurrentCaller(getObject(), &caller);
    OpenOptions open_options;
    if (s.ok()) s = ParseOpenOptions(options, &open_options);
    open_options.sandboxed = caller.sandboxed;
    if (!s.ok()) {
      result.returnError(ToDbusError(s));
      return;
    }
    // The answer may wait for the user. Every step of it (the agent's
    // reply, the caller leaving) happens on this loop thread, so the
    // Result is only ever touched here. A private file is decrypted on a
    // worker (the keyring may block), whose reply the engine posts back
    // here through the executor the Service gave it.
    auto pending = std::make_shared<OpenResult>(std::move(result));
    service_.engine().OpenFileAsync(
        Principal{caller.app, origin}, digest, getObject().getCurrentlyProcessedMessage()->getSender(),
        open_options, [pending](const Status& status, int fd, const FileInfo& info) {
          if (status.ok()) {
            pending->returnResults(sdbus::UnixFd(fd, sdbus::adopt_fd), InfoDict(info));
          } else {
            pending->returnError(ToDbusError(status));
          }
        });
  }

  uint32_t Version() override { return ipc::kStoreVersion; }

  Service& service_;
};

// ---------------------------------------------------------------------------
// io.github.costore.Manager1

class ManagerObject : public sdbus::AdaptorInterfaces<io::github::costore::Manager1_adaptor> {
 public:
  ManagerObject(sdbus::IConnection& connection, Service& service)
      : AdaptorInterfaces(connection, ipc::kObjectPath), service_(service) {
    registerAdaptor();
  }
  virtual ~ManagerObject() { unregisterAdaptor(); }

  // Changed, addressed to `destination`: the bus delivers it to that
  // connection alone, unlike the generated emitChanged's broadcast.
  void SendChanged(const std::string& destination, const ChangeEvent& event) {
    sdbus::Signal signal = getObject().createSignal(INTERFACE_NAME, "Changed");
    signal << event.what << event.digest;
    signal.setDestination(destination);
    try {
      getObject().emitSignal(signal);
    } catch (const sdbus::Error& e) {
      LogWarning("cannot send Changed to " + destination + ": " + e.getMessage());
    }
  }

 private:
  // Manager1 is the user's own: a sandboxed app must not grant itself access.
  void RequireUser() {
    CallerIdentity caller;
    ThrowIfError(service_.IdentifyCurrentCaller(getObject(), &caller));
    if (caller.sandboxed) {
      ThrowIfError(Status::PermissionDenied(caller.app + " is sandboxed; Manager1 is for the user's own tools"));
    }
  }

  std::vector<Dict> List(const Dict& options) override {
    RequireUser();
    std::string digest;
    ThrowIfError(GetOption(options, "digest", "s", &digest));
    std::vector<FileRecord> files;
    ThrowIfError(service_.engine().List(&files, digest));
    std::vector<Dict> out;
    out.reserve(files.size());
    for (const auto& file : files) out.push_back(FileDict(file));
    return out;
  }

  Dict Stat(const std::string& digest) override {
    RequireUser();
    FileRecord file;
    uint32_t entries = 0;
    ThrowIfError(service_.engine().Stat(digest, &file, &entries));
    Dict dict = FileDict(file);
    dict.emplace("entries", sdbus::Variant(entries));
    return dict;
  }

  void Delete(const std::string& digest) override {
    RequireUser();
    ThrowIfError(service_.engine().Delete(digest));
  }

  void Grant(const std::string& app, const std::string& origin, const std::string& digest) override {
    RequireUser();
    ThrowIfError(service_.engine().Grant(Principal{app, origin}, digest));
  }

  void Revoke(const std::string& app, const std::string& origin, const std::string& digest) override {
    RequireUser();
    ThrowIfError(service_.engine().Revoke(Principal{app, origin}, digest));
  }

  std::vector<Dict> ListGrants(const Dict& options) override {
    RequireUser();
    std::string digest;
    ThrowIfError(GetOption(options, "digest", "s", &digest));
    std::vector<GrantRecord> grants;
    ThrowIfError(service_.engine().ListGrants(digest, &grants));
    std::vector<Dict> out;
    for (const auto& grant : grants) {
      out.push_back({{"app", sdbus::Variant(grant.principal.app)},
                     {"origin", sdbus::Variant(grant.principal.origin)},
                     {"digest", sdbus::Variant(grant.digest)},
                     {"created", sdbus::Variant(grant.created_us)},
                     {"explicit", sdbus::Variant(grant.explicit_grant)}});
    }
    return out;
  }

  std::vector<Dict> Usage(const std::string& digest) override {
    RequireUser();
    std::vector<UsageRecord> usage;
    ThrowIfError(service_.engine().Usage(digest, &usage));
    std::vector<Dict> out;
    for (const auto& u : usage) {
      out.push_back({{"app", sdbus::Variant(u.principal.app)},
                     {"origin", sdbus::Variant(u.principal.origin)},
                     {"stored", sdbus::Variant(u.stored)},
                     {"first-used", sdbus::Variant(u.first_used_us)},
                     {"last-used", sdbus::Variant(u.last_used_us)},
                     {"stores", sdbus::Variant(u.stores)},
                     {"reads", sdbus::Variant(u.reads)}});
    }
    return out;
  }

  Dict ForgetOrigin(const std::string& origin) override {
    RequireUser();
    ForgetResult result;
    ThrowIfError(service_.engine().ForgetOrigin(origin, &result));
    return {{"grants-removed", sdbus::Variant(result.grants_removed)},
            {"claims-removed", sdbus::Variant(result.usage_removed)},
            {"files-deleted",
             sdbus::Variant(static_cast<uint32_t>(result.deleted_files.size() + result.deleted_private.size()))}};
  }

  void Subscribe() override {
    RequireUser();
    ThrowIfError(service_.Subscribe(Sender()));
  }

  void Unsubscribe() override {
    RequireUser();
    ThrowIfError(service_.Unsubscribe(Sender()));
  }

  void RegisterConsentAgent(const sdbus::ObjectPath& path) override {
    RequireUser();
    ThrowIfError(service_.consent_agents().Register(Sender(), path));
  }

  void UnregisterConsentAgent(const sdbus::ObjectPath& path) override {
    RequireUser();
    ThrowIfError(service_.consent_agents().Unregister(Sender(), path));
  }

  Dict GetSettings() override {
    RequireUser();
    ConsentSettings settings = service_.engine().GetSettings();
    SpaceSettings space = service_.engine().GetSpaceSettings();
    return {{"consent-policy", sdbus::Variant(std::string(ConsentPolicyName(settings.policy)))},
            {"consent-timeout", sdbus::Variant(settings.timeout_s)},
            {"prompts-per-hour", sdbus::Variant(settings.prompts_per_hour)},
            {"min-free-space", sdbus::Variant(space.min_free_space)},
            {"quota", sdbus::Variant(space.quota)},
            {"auto-collect", sdbus::Variant(space.auto_collect)},
            {"scrub-interval", sdbus::Variant(space.scrub_interval_days)},
            {"min-store-rate", sdbus::Variant(service_.engine().GetMinStoreRate())}};
  }

  void SetSetting(const std::string& key, const sdbus::Variant& value) override {
    RequireUser();
    SettingValue setting;
    if (value.containsValueOfType<std::string>()) {
      setting = value.get<std::string>();
    } else if (value.containsValueOfType<uint32_t>()) {
      setting = value.get<uint32_t>();
    } else if (value.containsValueOfType<uint64_t>()) {
      setting = value.get<uint64_t>();
    } else if (value.containsValueOfType<bool>()) {
      setting = value.get<bool>();
    } else {
      ThrowIfError(Status::InvalidArgument("setting " + Quote(key) + " must be a string (s), a number (u), a byte "
                                           "count (t) or a boolean (b), not " + value.peekValueType()));
    }
    ThrowIfError(service_.engine().SetSetting(key, setting));
  }

  // The keyring may block (and Rekey may prompt): both run on a worker,
  // and only their reply comes back to the loop thread.
  void Rekey(sdbus::Result<Dict>&& result, Dict /*options*/) override {
    if (!CheckUser(result)) return;
    auto pending = std::make_shared<sdbus::Result<Dict>>(std::move(result));
    service_.StartWorker([this, pending] {
      RekeyResult rekey;
      Status status = service_.engine().Rekey(&rekey);
      service_.loop().Post([pending, status, rekey] {
        if (!status.ok()) return pending->returnError(ToDbusError(status));
        pending->returnResults(Dict{{"files-rewrapped", sdbus::Variant(rekey.rewrapped)},
                                    {"key-version", sdbus::Variant(rekey.key_version)},
                                    {"resumed", sdbus::Variant(rekey.resumed)},
                                    {"old-keys-removed", sdbus::Variant(rekey.old_keys_removed)}});
      });
    });
  }

  void KeyringStatus(sdbus::Result<Dict>&& result) override {
    if (!CheckUser(result)) return;
    auto pending = std::make_shared<sdbus::Result<Dict>>(std::move(result));
    service_.StartWorker([this, pending] {
      KeyringStatusInfo info = service_.engine().KeyringStatus();
      service_.loop().Post([pending, info] {
        pending->returnResults(Dict{{"state", sdbus::Variant(info.report.state)},
                                    {"message", sdbus::Variant(info.report.message)},
                                    {"private-files", sdbus::Variant(info.report.private_files)},
                                    {"key-version", sdbus::Variant(info.report.key_version)},
                                    {"rekey-pending", sdbus::Variant(info.report.rekey_pending)},
                                    {"cipher", sdbus::Variant(info.cipher)},
                                    {"chunk-size", sdbus::Variant(info.chunk_size)}});
      });
    });
  }

  // RequireUser for asynchronous methods: replies with the error itself.
  template <typename Result>
  bool CheckUser(Result& result) {
    try {
      RequireUser();
      return true;
    } catch (const sdbus::Error& e) {
      result.returnError(e);
      return false;
    }
  }

  // Hashes every byte: on a worker, at low I/O priority; only the reply
  // comes back to the loop thread.
  void Verify(sdbus::Result<std::vector<Dict>>&& result, Dict options) override {
    if (!CheckUser(result)) return;
    std::vector<std::string> digests;
    Status s = ParseVerifyOptions(options, &digests);
    if (!s.ok()) return result.returnError(ToDbusError(s));
    auto pending = std::make_shared<sdbus::Result<std::vector<Dict>>>(std::move(result));
    service_.StartWorker([this, pending, digests = std::move(digests)] {
      LowerThreadIoPriority(/*idle=*/false);
      std::vector<VerifyResult> results;
      Status status = service_.engine().Verify(digests, &results);
      service_.loop().Post([pending, status, results = std::move(results)] {
        if (!status.ok()) return pending->returnError(ToDbusError(status));
        std::vector<Dict> out;
        for (const VerifyResult& r : results) {
          Dict dict{{"digest", sdbus::Variant(r.digest)},
                    {"private", sdbus::Variant(r.is_private)},
                    {"state", sdbus::Variant(r.state)},
                    {"problem", sdbus::Variant(r.problem)},
                    {"size", sdbus::Variant(r.size)}};
          if (r.is_private) {
            dict.emplace("owner-app", sdbus::Variant(r.owner.app));
            dict.emplace("owner-origin", sdbus::Variant(r.owner.origin));
          }
          out.push_back(std::move(dict));
        }
        pending->returnResults(out);
      });
    });
  }

  void SetPinned(const std::string& digest, const bool& pinned) override {
    RequireUser();
    ThrowIfError(service_.engine().SetPinned(digest, pinned));
  }

  Dict Collect(const Dict& options) override {
    RequireUser();
    CollectOptions collect;
    ThrowIfError(ParseCollectOptions(options, &collect));
    CollectResult result;
    ThrowIfError(service_.engine().Collect(collect, &result));
    return {{"files-deleted", sdbus::Variant(result.files_deleted)},
            {"bytes-freed", sdbus::Variant(result.bytes_freed)},
            {"digests", sdbus::Variant(result.digests)},
            {"store-bytes", sdbus::Variant(result.store_bytes)}};
  }

  Dict Space() override {
    RequireUser();
    SpaceReport space;
    ThrowIfError(service_.engine().Space(&space));
    return {{"store-bytes", sdbus::Variant(space.store_bytes)},
            {"files", sdbus::Variant(space.files)},
            {"damaged", sdbus::Variant(space.damaged)},
            {"pinned", sdbus::Variant(space.pinned)},
            {"free-bytes", sdbus::Variant(space.free_bytes)},
            {"floor-bytes", sdbus::Variant(space.floor_bytes)},
            {"quota-bytes", sdbus::Variant(space.quota_bytes)},
            {"last-scrub", sdbus::Variant(space.last_scrub_us)}};
  }

  uint32_t Version() override { return ipc::kManagerVersion; }

  std::string Sender() { return getObject().getCurrentlyProcessedMessage()->getSender(); }

  Service& service_;
};

// ---------------------------------------------------------------------------

Service::Service(sdbus::IConnection& connection, Engine& engine, EventLoop& loop,
                 std::vector<std::string> agent_command, bool agent_needs_display, int max_workers)
    : connection_(connection),
      engine_(engine),
      loop_(loop),
      consent_agents_(connection, loop, std::move(agent_command), agent_needs_display),
      workers_(max_workers) {
  engine_.SetConsentAgent(&consent_agents_);
  // Private opens block on the keyring and decrypt: on workers, with the
  // reply posted back to the loop thread (the only one that touches sd-bus).
  engine_.SetExecutor(Executor{[this](std::function<void()> task) { StartWorker(std::move(task)); },
                               [this](std::function<void()> task) { loop_.Post(std::move(task)); }});
  // Unique names are never reused on a bus, so a cached identity is valid
  // until its name goes away; forget it then.
  name_owner_watch_ = connection_.addMatch(
      "type='signal',sender='org.freedesktop.DBus',interface='org.freedesktop.DBus',"
      "member='NameOwnerChanged'",
      [this](sdbus::Message& msg) {
        std::string name, old_owner, new_owner;
        msg >> name >> old_owner >> new_owner;
        if (!new_owner.empty()) return;
        identities_.Erase(name);
        subscribers_.erase(name);
        // A caller that left stops waiting for its dialog; an agent that
        // left answers nothing more.
        engine_.CallerGone(name);
        consent_agents_.NameVanished(name);
      });
  store_ = std::make_unique<StoreObject>(connection, *this);
  manager_ = std::make_unique<ManagerObject>(connection, *this);
}

Service::~Service() { engine_.SetConsentAgent(nullptr); }

Status Service::IdentifyCurrentCaller(const sdbus::IObject& object, CallerIdentity* identity) {
  const sdbus::Message* msg = object.getCurrentlyProcessedMessage();
  if (msg == nullptr) return Status::PermissionDenied("no message is being processed");
  std::string sender = msg->getSender();
  if (const CallerIdentity* cached = identities_.Find(sender)) {
    *identity = *cached;
    return Status::OK();
  }
  CallerIdentity found;
  try {
    // On a dbus-daemon bus these ask the bus daemon (GetConnectionCredentials):
    // kernel data it took from the socket, not the caller's word.
    found.uid = msg->getCredsUid();
    found.pid = msg->getCredsPid();
  } catch (const sdbus::Error& e) {
    return Status::PermissionDenied("cannot read the caller's credentials: " + e.getMessage());
  }
  if (found.uid != ::geteuid()) {
    return Status::PermissionDenied("caller runs as uid " + std::to_string(found.uid) +
                                    "; this store belongs to uid " + std::to_string(::geteuid()));
  }
  Status s = IdentifyProcess(found.pid, &found);
  if (!s.ok()) return s;
  identities_.FindOrInsert(sender, found);
  *identity = found;
  return Status::OK();
}

void Service::EmitChanged(const ChangeEvent& event) {
  for (const std::string& subscriber : subscribers_) manager_->SendChanged(subscriber, event);
}

Status Service::Subscribe(const std::string& sender) {
  if (subscribers_.count(sender)) return Status::OK();
  if (subscribers_.size() >= kMaxSubscribers) {
    return Status::Busy(std::to_string(kMaxSubscribers) + " connections are subscribed to Changed already");
  }
  subscribers_.insert(sender);
  return Status::OK();
}

Status Service::Unsubscribe(const std::string& sender) {
  if (subscribers_.erase(sender) == 0) return Status::NotFound("this connection is not subscribed to Changed");
  return Status::OK();
}

void Service::StartWorker(std::function<void()> work) { workers_.Submit(std::move(work)); }

bool Service::WaitForWorkers(int timeout_ms) { return workers_.Shutdown(timeout_ms); }

}  // namespace costore
