// Engine: the store's whole behaviour, with no D-Bus in it. The D-Bus
// adaptor (daemon/dbus/) parses arguments, identifies the caller and calls
// these methods; another transport could call them the same way.
//
// Thread-safe. Store may run for as long as its source takes and is meant to
// be called on a worker thread; everything else returns quickly.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "daemon/crypto/sealed_file.h"
#include "daemon/engine/blob_store.h"
#include "daemon/engine/caller_limits.h"
#include "daemon/engine/catalog.h"
#include "daemon/engine/consent.h"
#include "daemon/engine/consent_broker.h"
#include "daemon/engine/env.h"
#include "daemon/engine/key_store.h"
#include "daemon/engine/master_keys.h"
#include "daemon/engine/principal.h"
#include "daemon/engine/status.h"

namespace costore {

class PrivateStream;

// A setting's value: text, a number, a byte count or a switch, as the key wants.
using SettingValue = std::variant<std::string, uint32_t, uint64_t, bool>;

// The store's space settings (Manager1 settings "min-free-space", "quota",
// "auto-collect", "scrub-interval").
struct SpaceSettings {
  uint64_t min_free_space = 0;  // 0: automatic (5% of the file system or 2 GiB, the smaller)
  uint64_t quota = 0;           // 0: none
  bool auto_collect = false;
  uint32_t scrub_interval_days = 0;  // 0: off
};

// What Manager1.Space reports.
struct SpaceReport {
  uint64_t store_bytes = 0;
  uint32_t files = 0;
  uint32_t damaged = 0;
  uint32_t pinned = 0;
  uint64_t free_bytes = 0;
  uint64_t floor_bytes = 0;
  uint64_t quota_bytes = 0;
  int64_t last_scrub_us = 0;
};

// One entry as Verify found it.
struct VerifyResult {
  std::string digest;
  bool is_private = false;
  Principal owner;  // private entries
  std::string state;    // "ok", "damaged", "absent"
  std::string problem;  // "" when ok
  uint64_t size = 0;
};

struct CollectOptions {
  std::optional<uint64_t> target_size;
  std::optional<uint64_t> unused_for_s;
  bool dry_run = false;
};

struct CollectResult {
  uint32_t files_deleted = 0;
  uint64_t bytes_freed = 0;
  std::vector<std::string> digests;
  uint64_t store_bytes = 0;
};

// Something the user's views should refresh for (Manager1.Changed).
struct ChangeEvent {
  std::string what;    // "stored", "deleted", "granted", "revoked", "forgotten", "settings"
  std::string digest;  // "sha256:..." or "*"
};

struct EngineOptions {
  std::string root;  // the store directory
  Env* env = Env::Default();
  // Stores in flight at once, per principal, per app (all its origins) and
  // in all; past any of them a store is Busy before a byte is read. The
  // total stays below the D-Bus worker pool (see daemon/main.cc), so stores
  // never starve private opens, verification or the keyring.
  CallerCaps store_caps{4, 8, 24};
  // Opens in flight (waiting for the user, decrypting, copying for a
  // sandboxed reader, streaming a private file) likewise. Every Open
  // counts while it runs, a miss as much as a hit, so that Busy says
  // nothing about what is stored.
  CallerCaps open_caps{4, 16, 64};
  // Of those, the ones that hold a worker (a private file decrypted or
  // streamed, a copy for a sandboxed reader), which the pool must also
  // keep apart from stores.
  CallerCaps worker_open_caps{2, 4, 6};
  int idle_timeout_ms = 120'000;   // a source silent this long is abandoned
  // After the grace period, a store averaging less than this over the
  // window is cancelled (bytes per second; 0: off). The Manager1 setting
  // "min-store-rate", once set, takes its place.
  uint64_t min_store_rate = uint64_t{1} << 20;
  int store_rate_grace_ms = 60'000;
  int store_rate_window_ms = 60'000;
  // Called after each change is committed, on the thread that made it, with
  // no engine lock held.
  std::function<void(const ChangeEvent&)> on_change;

  // Private files. Where the master key lives (not owned; null: private
  // files are KeyringUnavailable).
  KeyStore* key_store = nullptr;
  // How new private files are sealed. Unset: PreferredCipher().
  std::optional<Cipher> cipher;
  uint32_t chunk_size = sealed::kDefaultChunkSize;
  // Tests only: called after each re-wrap of a rekey with the count so
  // far; true stops the rekey there, as a crash would.
  std::function<bool(uint32_t rewrapped)> rekey_interrupt;
  // Hand out public files through a read-only view of the store (see
  // Env::OpenReadOnlyView). Off (or unavailable): the blob itself, and a
  // sealed memfd copy for sandboxed callers.
  bool read_only_view = true;
  // Bytes kept allocated in <root>/reserve and released when the disk is
  // full, so that a delete can still commit. 0: none.
  uint64_t reserve_bytes = uint64_t{8} << 20;
};

// Where the engine runs work that may block (the keyring, decryption) for
// an asynchronous call: `spawn` runs a task on a worker thread; `post` runs
// a task on the thread that made the call (the D-Bus loop). Unset: the
// engine starts (and joins, when destroyed) threads of its own for both.
struct Executor {
  std::function<void(std::function<void()>)> spawn;
  std::function<void(std::function<void()>)> post;
};

struct StoreRequest {
  std::string digest;  // as received; validated by the engine
  int source_fd = -1;  // borrowed
  std::optional<uint64_t> size;
  std::string name;
  // Sealed at rest under a data key wrapped by the keyring's master key,
  // as an entry of this principal's own.
  bool is_private = false;
};

// What Store and Open report about a file.
struct FileInfo {
  Digest digest;
  uint64_t size = 0;
  std::string name;
  int64_t first_stored_us = 0;
  bool is_private = false;
  std::string cipher;  // private files: "aes-256-gcm" or "xchacha20-poly1305"
};

struct OpenOptions {
  // A private file comes as a pipe filled while the caller reads, instead
  // of a sealed memfd holding all of it. Public files are always the file.
  bool stream = false;
  // The caller is a flatpak or snap app: with no read-only view, it gets a
  // sealed copy, never a descriptor on the shared inode.
  bool sandboxed = false;
};

// What KeyringStatus reports.
struct KeyringStatusInfo {
  KeyringReport report;
  std::string cipher;  // what new private files are sealed with here
  uint32_t chunk_size = 0;
};

class Engine {
 public:
  static Status Open(const EngineOptions& options, std::unique_ptr<Engine>* out);
  ~Engine();

  // --- Store1 -----------------------------------------------------------
  // A place for a store of `who` (see EngineOptions::store_caps), or Busy.
  // The D-Bus adaptor asks before it gives the store a worker, so that a
  // Busy store never waits for one.
  Status AdmitStore(const Principal& who, CallerLimits::Slot* slot);
  // `admitted`: from AdmitStore; empty, the store is admitted here.
  Status Store(const Principal& who, const StoreRequest& request, FileInfo* info,
               CallerLimits::Slot admitted = {});
  // On OK, *fd is a read-only descriptor owned by the caller. Never asks
  // the user: a file the principal may not read is NotFound.
  Status OpenFile(const Principal& who, const std::string& digest, int* fd, FileInfo* info);

  // Like OpenFile, but a public file that someone else stored is put to
  // the consent agent (see ConsentBroker for when and how often); `done`
  // gets the outcome, possibly after the user answered. `caller` names the
  // connection, so that CallerGone can drop its waits. Every refusal is the
  // same NotFound as a miss.
  //
  // A private file is decrypted on a worker (see Executor); `done` is
  // posted back. Private files are never put to the consent agent.
  using OpenDone = std::function<void(const Status& status, int fd, const FileInfo& info)>;
  void OpenFileAsync(const Principal& who, const std::string& digest, const std::string& caller,
                     OpenDone done);
  void OpenFileAsync(const Principal& who, const std::string& digest, const std::string& caller,
                     const OpenOptions& options, OpenDone done);
  // Set before serving; not thread-safe.
  void SetExecutor(Executor executor) { executor_ = std::move(executor); }
  void CallerGone(const std::string& caller);
  // May be null. Not owned; must outlive the engine or be reset first.
  void SetConsentAgent(ConsentAgent* agent) { consent_.SetAgent(agent); }

  // --- Manager1 ---------------------------------------------------------
  // Every entry, public and private (`digest_filter`: only that digest's),
  // ordered by digest, the public entry first.
  Status List(std::vector<FileRecord>* files, const std::string& digest_filter = "");
  // The public entry if there is one, else the first private one stored;
  // *entries (if given) counts the digest's entries.
  Status Stat(const std::string& digest, FileRecord* file, uint32_t* entries = nullptr);
  // Removes every entry of the digest, public and private.
  Status Delete(const std::string& digest);
  Status Grant(const Principal& who, const std::string& digest);
  Status Revoke(const Principal& who, const std::string& digest);
  Status ListGrants(const std::string& digest_filter, std::vector<GrantRecord>* grants);
  Status Usage(const std::string& digest, std::vector<UsageRecord>* usage);
  // Forgets a web origin: its grants, its usage, and the files nobody else stored.
  Status ForgetOrigin(const std::string& origin, ForgetResult* result);

  // Re-wraps every private file's data key under a new master key;
  // resumes an interrupted one. Blocking (keyring): run on a worker.
  Status Rekey(RekeyResult* result);
  // The keyring's state in plain words; never prompts. Blocking.
  KeyringStatusInfo KeyringStatus();

  ConsentSettings GetSettings();
  // Keys: "consent-policy" ("ask" or "deny"), "consent-timeout" (seconds,
  // 1 to 3600), "prompts-per-hour" (0 to 3600), "min-store-rate" (bytes
  // per second, 0: off), and the space settings. Kept in the catalog.
  Status SetSetting(const std::string& key, const SettingValue& value);

  // --- integrity and space (Manager1) -------------------------------------
  // Hashes every entry (or those of `digests`); damaged ones are
  // quarantined and marked. Blocking: run on a worker. Busy while another
  // runs.
  Status Verify(const std::vector<std::string>& digests, std::vector<VerifyResult>* results);
  Status SetPinned(const std::string& digest, bool pinned);
  Status Collect(const CollectOptions& options, CollectResult* result);
  Status Space(SpaceReport* report);
  SpaceSettings GetSpaceSettings();
  // The minimum average rate a store keeps (bytes per second; 0: off).
  uint64_t GetMinStoreRate();

  // Makes stores in flight stop with Cancelled and refuses pending consent
  // requests (used at shutdown).
  void CancelAll();

  const std::string& root() const { return options_.root; }

 private:
  // Which entry an Open gets.
  struct OpenTarget {
    enum Kind { kMiss, kPublic, kPrivate, kAsk } kind = kMiss;
    PrivateFileRecord entry;  // kPrivate
    OwnStore own;             // kPublic: what the caller itself stored
  };

  Engine(const EngineOptions& options, std::unique_ptr<StoreLock> lock, std::unique_ptr<Catalog> catalog);
  // Start-up: what Init found, then catalog against disk (engine_integrity.cc).
  Status FinishInterruptedRemovals(const InitReport& report);
  Status Reconcile();
  Status LoadSettings();
  Status StoreUnguarded(const Principal& who, const StoreRequest& request, FileInfo* info);
  // The minimum rate one store keeps, as the settings say now.
  RateFloor StoreRateFloor();
  // A public blob that is not what was committed: quarantined, marked,
  // announced, and a repair from the quarantined copy scheduled.
  // Returns where the blob was moved ("" if it was not). `bad`: the inode
  // found wrong; if another one is there by now, nothing is done.
  // `seen`: the record the caller checked; if it changed meanwhile,
  // nothing is done either.
  std::string Damage(const Digest& digest, const std::string& problem, bool try_repair,
                     const FileStat* bad = nullptr, const FileRecord* seen = nullptr);
  // Copies a quarantined blob back into the store if its bytes are right.
  Status RepairFrom(const Digest& digest, uint64_t size, const std::string& quarantined);
  // Checks one public entry's bytes on disk; fills *result.
  void VerifyPublic(const FileRecord& record, VerifyResult* result);
  void VerifyPrivateEntry(const PrivateFileRecord& record, VerifyResult* result);
  // Public Store's commit under the digest lock.
  Status CommitPublic(const Principal& who, const StoreRequest& request, StagedBlob* staged, FileRecord* record,
                      OwnStore* own);
  // Removes the public entry of `digest` (record and blob), crash-safely.
  // NotFound if there is none. Caller holds the digest lock.
  Status RemovePublic(const Digest& digest);
  // Space (engine_space.cc).
  Status StoreBytes(uint64_t* bytes);
  uint64_t FloorFor(const FsSpace& fs);
  // What eviction may do for a check: nothing, count the evictable files
  // as room (a store not yet sent), or evict (bytes arriving).
  enum class Evict { kNever, kCount, kEvict };
  // Room for `bytes` more: NoSpace below the floor, QuotaExceeded past the
  // quota. With auto-collect, room that eviction could make counts, and
  // *evict_as_it_grows asks the store to evict as its bytes arrive.
  Status MakeRoomFor(uint64_t bytes, uint64_t in_flight, bool* evict_as_it_grows);
  // The check made every BlobStore::kProgressCheckBytes of a store.
  Status CheckGrowth(uint64_t written, uint64_t own_reservation);
  // `bytes` more (and `in_flight` promised to stores under way) against
  // the free-space floor and the quota; `what` starts the message.
  Status CheckFloor(uint64_t bytes, uint64_t in_flight, Evict evict, const std::string& what);
  Status CheckQuota(uint64_t bytes, uint64_t in_flight, Evict evict, const std::string& what);
  uint64_t EvictableBytes();
  // Runs a catalog change that must work on a full disk: on NoSpace, the
  // reserve is released and the change tried again.
  Status WithReserve(const std::function<Status()>& change);
  void RefillReserve();
  Status EvictFor(uint64_t bytes_needed, CollectResult* result);
  void ScrubLoop();
  Status Resolve(const Principal& who, const Digest& digest, OpenTarget* target);
  // Puts a public file that someone else stored to the user (through the
  // ConsentBroker) and records an "allow always" as a grant. `deferred`:
  // the caller was answered already; `done` then always gets kNoAnswer.
  void AskUser(const Principal& who, const Digest& digest, const std::string& caller,
               const ConsentSettings& settings, bool deferred, std::function<void(ConsentDecision)> done);
  // Opens a file the principal may read (the rule or the user allowed it).
  // `own`: what the caller itself stored, the only attribution its reply
  // carries.
  Status OpenAllowed(const Principal& who, const Digest& digest, const OpenOptions& options, const OwnStore& own,
                     int* fd, FileInfo* info);
  // OpenAllowed for OpenFileAsync: a sandboxed caller's copy (no view) is
  // made on a worker.
  void OpenPublicAsync(const Principal& who, const Digest& digest, const OpenOptions& options, const OwnStore& own,
                       OpenDone done);
  static constexpr int kMaxCopiesInFlight = 2;
  std::atomic<int> copies_in_flight_{0};
  // Holds an open slot until `*done` runs or is dropped; false (and *done
  // answered Busy) when the caller has too many opens in flight.
  bool AdmitOpen(const Principal& who, OpenDone* done);
  Status StorePrivate(const Principal& who, const Digest& digest, const StoreRequest& request,
                      const std::function<Status(uint64_t)>& check_progress, FileInfo* info);
  // Blocking: the keyring and the decryption. With options.stream, *stream
  // is left to pump the pipe whose read end is *fd.
  Status OpenPrivate(const Principal& who, const PrivateFileRecord& entry, const OpenOptions& options, int* fd,
                     FileInfo* info, std::unique_ptr<PrivateStream>* stream);
  void OpenPrivateAsync(const Principal& who, const PrivateFileRecord& entry, const OpenOptions& options,
                        OpenDone done);
  void Spawn(std::function<void()> task);
  void PostBack(std::function<void()> task);
  std::mutex& LockFor(const Digest& digest);
  void Publish(ChangeEvent event);

  EngineOptions options_;
  std::unique_ptr<StoreLock> lock_;  // released last: after the catalog closes
  BlobStore blobs_;
  std::unique_ptr<Catalog> catalog_;
  std::atomic<bool> cancelled_{false};
  CallerLimits store_limits_;
  CallerLimits open_limits_;
  CallerLimits worker_open_limits_;
  // Commit and delete of the same digest are serialised by one of these.
  std::mutex digest_locks_[64];
  ConsentBroker consent_;
  std::mutex settings_mu_;
  ConsentSettings settings_;
  SpaceSettings space_;  // guarded by settings_mu_
  uint64_t min_store_rate_ = 0;  // guarded by settings_mu_
  std::atomic<uint64_t> reserved_bytes_{0};  // stores of known size in flight
  std::atomic<bool> verifying_{false};
  std::mutex reserve_mu_;
  std::mutex scrub_mu_;
  std::condition_variable scrub_cv_;
  std::thread scrub_thread_;
  MasterKeys keys_;
  Cipher cipher_;
  Executor executor_;
  std::mutex threads_mu_;
  std::vector<std::thread> threads_;  // the default executor's
};

}  // namespace costore
