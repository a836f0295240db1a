// libcostore: the C++ interface to costored, the per-user store of AI model
// files named by their SHA-256.
//
// Bytes never travel in D-Bus messages: a store hands the daemon a file
// descriptor to read from, and Open hands back a read-only descriptor
// (mmap-able) on the stored bytes.
//
// Every failure is thrown as costore::client::Error, whose code says which
// kind (one per io.github.costore.Error.<Name>, plus Unreachable and Failed)
// and whose what() is the daemon's message, word for word.
//
// No call waits forever. Each has a D-Bus timeout for a daemon that
// answers but takes too long (25 s for the Manager1 calls; 10 min for
// Open, which may wait for the user's consent or the keyring; 24 h for
// Verify; none for a Store, which lasts as long as its bytes take to
// arrive). And while any call is in progress the library pings the
// daemon (org.freedesktop.DBus.Peer.Ping, answered on its event loop): if
// it answers nothing for the stall timeout (30 s; SetStallTimeout), the
// call fails with kUnreachable, "costored (pid N) stopped answering: no
// reply to a ping for 30 s". A store from a regular file whose offset
// moves counts as an answer. A daemon busy with a long store or waiting
// for the user still answers pings, so only a stalled one trips this.
// One thread per process does the watching: started by the first call,
// gone after 10 s without calls (and joined at exit; a forked child starts
// its own). It pings only for a call still in progress after a sixth of
// the stall timeout (50 ms to 5 s), so a quick call costs no thread, no
// ping and no system call.
//
// Store and Open calls answered kBusy (too many transfers in flight) are
// tried again by the library: first after the wait the daemon names ("; try
// again in N s" ending its message; 1 s when it names none), then after
// doubling waits (stretched by up to a quarter at random, at most 16 s
// each), 5 calls in all and at most 60 s of waiting; then kBusy is
// thrown, with the daemon's last message. A store from a regular file is
// only tried again when the daemon read none of it (its offset did not
// move); a Busy store never consumed bytes of a pipe (the contract says).
//
// A Client may be shared by threads: every call takes a bus connection of
// its own for its duration, so stores and opens run side by side.
// Callbacks (progress, stream readers) run on the thread that made the call.
//
// Digests are "sha256:<64 lowercase hex>"; every call taking a digest also
// accepts what NormalizeDigest accepts (bare hex, any case). Times are
// microseconds since the Unix epoch.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <unistd.h>

#ifndef COSTORE_EXPORT
#if defined(__GNUC__)
#define COSTORE_EXPORT __attribute__((visibility("default")))
#else
#define COSTORE_EXPORT
#endif
#endif

namespace costore::client {

// A total size that is not known in advance (progress callbacks).
inline constexpr uint64_t kUnknownSize = UINT64_MAX;

// The kinds of failure. The values equal the C ABI's costore_error codes.
enum class ErrorCode : int {
  kNotFound = 1,            // no such file, or not readable by this principal
  kPermissionDenied = 2,    // the caller may not use this interface
  kDigestMismatch = 3,      // the bytes did not match the digest or size
  kInvalidArgument = 4,     // a malformed digest, origin, option or descriptor
  kKeyringUnavailable = 5,  // private files need the (unlocked) keyring
  kNoSpace = 6,             // the disk holding the store is full
  kQuotaExceeded = 7,       // a configured limit would be exceeded
  kCancelled = 8,           // the transfer was abandoned
  kBusy = 9,                // too many transfers in flight (Store and Open: after retrying)
  kIOError = 10,            // the daemon (or this library) could not read or write
  kUnreachable = 11,        // no session bus, or no costored on it
  kFailed = 12,             // anything else; the message says what
};

// "NotFound", "PermissionDenied", ..., "IOError", "Unreachable", "Failed".
COSTORE_EXPORT std::string_view ErrorCodeName(ErrorCode code);

// The one exception type the library throws (besides std::bad_alloc and
// whatever a caller's own callback throws, which is passed through).
class COSTORE_EXPORT Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message);
  ErrorCode code() const noexcept { return code_; }

 private:
  ErrorCode code_;
};

// The cipher of a public file (FileInfo::cipher, FileEntry::cipher).
inline constexpr std::string_view kCipherNone = "none";

// A stored file, as Store and Open describe it.
struct FileInfo {
  std::string digest{};
  uint64_t size = 0;
  std::string name{};  // human-readable hint, may be empty
  int64_t first_stored_usec = 0;
  bool is_private = false;  // a private entry: encrypted at rest, the storing principal's own
  // "none" for a public file; for a private one the AEAD that seals it,
  // "aes-256-gcm" or "xchacha20-poly1305".
  std::string cipher{};
};

// The states of an entry (FileEntry::state, VerifyResult::state).
inline constexpr std::string_view kStateOk = "ok";
// Its bytes on disk are not the stored bytes (changed, truncated, replaced,
// gone): never served (Open says kNotFound) until the right bytes are
// stored again. The library reports any state it does not know as this.
inline constexpr std::string_view kStateDamaged = "damaged";
inline constexpr std::string_view kStateAbsent = "absent";  // Verify: the digest is not stored
// Verify: reading the file failed this time (no descriptors left, an I/O
// error); nothing was marked, try again.
inline constexpr std::string_view kStateUnreadable = "unreadable";

// One file of the store, as the manager sees it (List, Stat).
struct FileEntry {
  std::string digest{};
  uint64_t size = 0;
  std::string name{};
  bool is_private = false;  // encrypted at rest
  int64_t first_stored_usec = 0;
  int64_t last_used_usec = 0;  // the last store or read
  uint32_t stored_by = 0;      // how many principals stored it
  uint32_t used_by = 0;        // how many principals stored or read it
  std::string cipher{};        // as FileInfo::cipher
  // Private entries only: the principal that stored it ("" for public ones).
  std::string owner_app{};
  std::string owner_origin{};
  // Stat only: how many entries (public and private) the digest has;
  // List(digest) shows each. 0 from List.
  uint32_t entries = 0;
  std::string state{};             // kStateOk or kStateDamaged
  std::string problem{};           // a damaged entry: what was found, in plain words; "" when ok
  int64_t last_verified_usec = 0;  // when its bytes were last hashed and found right (0: never)
  bool pinned = false;             // Collect and automatic eviction never delete it
  bool damaged() const { return state != kStateOk; }
};

// One entry checked by Verify.
struct VerifyResult {
  std::string digest{};
  bool is_private = false;
  // Private entries only: the principal that stored it ("" for public ones).
  std::string owner_app{};
  std::string owner_origin{};
  std::string state{};    // kStateOk, kStateDamaged, kStateAbsent (the digest is not stored) or kStateUnreadable
  std::string problem{};  // what was wrong, in plain words; "" when ok
  uint64_t size = 0;
};

// What Collect deletes: files go when either limit given says so. At least
// one must be given (kInvalidArgument otherwise).
struct CollectOptions {
  std::optional<uint64_t> target_size{};         // until the store holds at most this many bytes
  std::optional<uint64_t> unused_for_seconds{};  // files nobody stored or read for this long
  bool dry_run = false;                          // report what would go, delete nothing
};

// What Collect deleted (or, with dry_run, would delete).
struct CollectResult {
  uint32_t files_deleted = 0;
  uint64_t bytes_freed = 0;
  std::vector<std::string> digests{};  // the files deleted
  uint64_t store_bytes = 0;            // what the store holds afterwards
};

// The store's room (Manager1.Space).
struct Space {
  uint64_t store_bytes = 0;     // its files as stored (sealed private files at their sealed size)
  uint32_t files = 0;           // entries, public and private
  uint32_t damaged = 0;         // entries found damaged
  uint32_t pinned = 0;          // pinned entries
  uint64_t free_bytes = 0;      // free for this user on the store's file system
  uint64_t floor_bytes = 0;     // the free space the store always leaves (min_free_space, resolved)
  uint64_t quota_bytes = 0;     // the quota (0: none)
  int64_t last_scrub_usec = 0;  // when the background scrub last finished (0: never)
};

// A standing permission for the principal (app, origin) to open a file.
struct GrantEntry {
  std::string app{};     // "/usr/bin/foo", "flatpak:<id>" or "snap:<name>"
  std::string origin{};  // "" for the app itself, or a web origin
  std::string digest{};  // a digest, or "*" for every file
  int64_t created_usec = 0;
};

// How one principal (app, origin) used one file.
struct PrincipalUsage {
  std::string app{};
  std::string origin{};
  bool stored = false;  // this principal stored the file
  int64_t first_used_usec = 0;
  int64_t last_used_usec = 0;
  uint32_t stores = 0;  // how many times it stored the file
  uint32_t reads = 0;   // how many times it opened the file
};

// What Manager1.ForgetOrigin removed.
struct ForgetResult {
  uint32_t grants_removed = 0;  // grants to the origin, for any app
  uint32_t claims_removed = 0;  // its storing and reading records
  uint32_t files_deleted = 0;   // files that nobody else had stored
};

// The user's settings (Manager1.GetSettings).
struct Settings {
  // "ask": ask the consent agent (starting one if none is registered);
  // "deny": never ask, only grants open others' files. A later daemon may
  // add values: treat unknown ones as "not ask".
  std::string consent_policy{};
  uint32_t consent_timeout_s = 0;  // an unanswered prompt is refused after this
  uint32_t prompts_per_hour = 0;   // per principal; past it, refused unasked
  // Bytes the store always leaves free on its file system (a store that
  // would go below is kNoSpace); 0: automatic, 5% of the file system or
  // 2 GiB, whichever is smaller.
  uint64_t min_free_space = 0;
  uint64_t quota = 0;                // the most bytes the store may hold (kQuotaExceeded); 0: none
  bool auto_collect = false;         // make room past the quota or floor by evicting unpinned public files
  uint32_t scrub_interval_days = 0;  // days between background verifications; 0: off
  // Bytes per second a store must average once its first minute has
  // passed, or it is cancelled (kCancelled); 0: off.
  uint64_t min_store_rate = 0;
};

// What Manager1.Rekey did.
struct RekeyResult {
  uint32_t files_rewrapped = 0;   // data keys re-wrapped by this call
  uint32_t key_version = 0;       // the master key version now in use (0: no key yet, nothing to do)
  bool resumed = false;           // it finished a rekey that had been interrupted
  uint32_t old_keys_removed = 0;  // old master key versions removed from the keyring
};

// The keyring as the daemon sees it (Manager1.KeyringStatus).
struct KeyringStatus {
  // "ready", "no-key", "no-service", "locked", "no-default-collection",
  // "key-missing" or "error"; a later daemon may add states: treat unknown
  // ones as not ready.
  std::string state{};
  std::string message{};        // the state in plain words, with what to do
  uint32_t private_files = 0;   // private entries in the store
  uint32_t key_version = 0;     // the current master key version (0: none yet)
  bool rekey_pending = false;   // a rekey was interrupted: Rekey finishes it
  std::string cipher{};         // the AEAD new private files get here
  uint32_t chunk_size = 0;      // plaintext bytes per sealed chunk of new files
  // Whether private files can be stored and opened now.
  bool usable() const { return state == "ready" || state == "no-key"; }
};

// The keys of SetSetting.
inline constexpr std::string_view kSettingConsentPolicy = "consent-policy";      // string: "ask" or "deny"
inline constexpr std::string_view kSettingConsentTimeout = "consent-timeout";    // uint32: seconds, 1-3600
inline constexpr std::string_view kSettingPromptsPerHour = "prompts-per-hour";   // uint32: 0-3600
inline constexpr std::string_view kSettingMinFreeSpace = "min-free-space";       // uint64: bytes, 0 = automatic
inline constexpr std::string_view kSettingQuota = "quota";                       // uint64: bytes, 0 = none
inline constexpr std::string_view kSettingAutoCollect = "auto-collect";          // bool
inline constexpr std::string_view kSettingScrubInterval = "scrub-interval";      // uint32: days, 0 = off
inline constexpr std::string_view kSettingMinStoreRate = "min-store-rate";       // uint64: bytes/s, 0 = off

// Called during a store about ten times a second, and once at the end with
// done == total. `total` is kUnknownSize when not known in advance.
using ProgressCallback = std::function<void(uint64_t done, uint64_t total)>;

// Feeds a streamed store: fill (part of) `buffer` and return how many bytes
// were written to it; 0 ends the stream. An exception abandons the store
// (nothing is stored) and is rethrown by StoreStream.
using ReadCallback = std::function<size_t(std::span<std::byte> buffer)>;

// Designated initializers read well: {.origin = "https://example.org"}.
struct StoreOptions {
  // The web origin the caller acts for ("https://example.org"), or "" for
  // the calling app itself.
  std::string origin{};
  // A human-readable name shown to the user; the first name given is kept.
  std::string name{};
  // The expected size: any other amount is a DigestMismatch. StorePath
  // fills it in from the file when not set.
  std::optional<uint64_t> size{};
  ProgressCallback progress{};
  // Store privately: encrypted at rest, an entry of this principal's own
  // that others open only with a grant of this very digest. Needs the
  // keyring (kKeyringUnavailable otherwise, before any byte is read), and
  // may wait for the user to unlock it.
  bool is_private = false;
};

// Options of Open beyond the origin.
struct OpenOptions {
  // For a private file, a pipe that the daemon fills as the caller reads
  // instead of a memfd holding the whole file. A pipe ends early if a
  // chunk fails authentication: read until FileInfo::size bytes arrived.
  // No effect on public files.
  bool stream = false;
};

// An owned file descriptor, closed on destruction.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) noexcept : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  int get() const noexcept { return fd_; }
  explicit operator bool() const noexcept { return fd_ >= 0; }
  // Gives up ownership: the caller closes the returned descriptor.
  int release() noexcept {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void reset(int fd = -1) noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

// An opened stored file: a read-only descriptor at the start of its bytes
// (mmap-able; writes through it fail) and its description.
struct OpenedFile {
  UniqueFd fd;
  FileInfo info;
};

class COSTORE_EXPORT Client {
 public:
  // Connects to the session bus (DBUS_SESSION_BUS_ADDRESS). Throws
  // Error(kUnreachable) when there is none. Does not look for the daemon:
  // calls report kUnreachable when it is not there.
  static Client Connect();

  // How long a call in progress waits for any sign of life from the daemon
  // before failing with kUnreachable ("costored (pid N) stopped answering:
  // no reply to a ping for 30 s"); see the top of this file. Default 30 s;
  // zero turns the check off (only each call's own D-Bus timeout is left).
  // Applies to calls started afterwards, from any thread.
  void SetStallTimeout(std::chrono::milliseconds timeout);

  Client(Client&&) noexcept;
  Client& operator=(Client&&) noexcept;
  ~Client();

  // --- Store1 ---

  // Stores the file at `path` under `digest`. The daemon reads every byte
  // and verifies it; on a mismatch nothing is stored and the
  // kDigestMismatch message names the digest and size that arrived. No
  // D-Bus timeout: a store takes as long as its bytes take; a stalled
  // daemon is noticed (see the top of this file). A store that failed
  // that way may still complete once the daemon resumes.
  FileInfo StorePath(const std::string& path, std::string_view digest,
                     const StoreOptions& options = {}) const;
  // As StorePath, reading `fd` (regular file, pipe or socket) from its
  // current position to its end. `fd` stays the caller's (not closed).
  FileInfo StoreFd(int fd, std::string_view digest, const StoreOptions& options = {}) const;
  // As StorePath, with the bytes produced by `read`, called on this thread
  // while the daemon reads them from a pipe.
  FileInfo StoreStream(const ReadCallback& read, std::string_view digest,
                       const StoreOptions& options = {}) const;

  // Opens a stored file for (this app, `origin`). A file this principal may
  // not read fails exactly like a missing one: kNotFound. May wait up to a
  // few minutes for the user's consent, or (private files) for the keyring
  // to be unlocked. A private file comes as a sealed memfd holding the
  // plaintext (may be mmap(2)ed read-only).
  OpenedFile Open(std::string_view digest, std::string_view origin = {}) const;
  OpenedFile Open(std::string_view digest, std::string_view origin, const OpenOptions& options) const;

  // --- Manager1 ---

  // Every entry, ordered by digest (a digest's public entry first, then its
  // private entries).
  std::vector<FileEntry> List() const;
  // The entries of one digest (none if it is not stored).
  std::vector<FileEntry> List(std::string_view digest) const;
  // The digest's public entry if there is one, else its first private
  // entry; FileEntry::entries counts them all.
  FileEntry Stat(std::string_view digest) const;
  // Removes the file's bytes, record, attribution and grants. Descriptors
  // already handed out stay readable until closed.
  void Delete(std::string_view digest) const;
  // Lets (app, origin) open `digest`, or every file when digest is "*".
  // `app` as the daemon identifies apps: an absolute executable path,
  // "flatpak:<id>" or "snap:<name>"; origin "" for the app itself.
  void Grant(std::string_view app, std::string_view origin, std::string_view digest) const;
  // Removes such a grant; kNotFound if there is none.
  void Revoke(std::string_view app, std::string_view origin, std::string_view digest) const;
  // All grants, or (digest not empty) those naming `digest`, including "*".
  std::vector<GrantEntry> ListGrants(std::string_view digest = {}) const;
  // The principals that stored or read `digest`, first stored first.
  std::vector<PrincipalUsage> Usage(std::string_view digest) const;

  // Forgets a site (`origin` is a web origin, not ""): removes every grant
  // to it (for any app), its storing and reading records, and deletes the
  // files that nobody else stored. Forgetting an origin the store does not
  // know is not an error: every count is 0.
  ForgetResult ForgetOrigin(std::string_view origin) const;
  // The settings.
  Settings GetSettings() const;
  // Changes one setting; kept across daemon restarts. The daemon checks
  // key, type and range: kInvalidArgument names what is wrong. Each key
  // takes the type its kSetting* constant names: a string
  // (kSettingConsentPolicy), a uint32 (SetSetting), a uint64
  // (SetSettingUint64) or a bool (SetSettingBool).
  void SetSetting(std::string_view key, std::string_view value) const;
  void SetSetting(std::string_view key, uint32_t value) const;
  void SetSettingUint64(std::string_view key, uint64_t value) const;
  void SetSettingBool(std::string_view key, bool value) const;

  // Re-wraps every private file's data key under a new master key in the
  // keyring (crash-safe; after an interruption, calling it again finishes
  // it). May wait for the user to unlock the keyring. kKeyringUnavailable
  // when it is out of reach or a key is missing; kBusy while another rekey
  // runs.
  RekeyResult Rekey() const;
  // The keyring's state; looks, never prompts.
  KeyringStatus GetKeyringStatus() const;

  // Reads and hashes every byte of every entry, or (digests not empty) of
  // the entries of those digests, ordered as List orders them; a digest
  // that is not stored comes back kStateAbsent. Entries whose bytes do not
  // match are quarantined and marked damaged; storing the right bytes
  // repairs them. Takes as long as reading the files takes (at idle I/O
  // priority); kBusy while another Verify runs.
  std::vector<VerifyResult> Verify(const std::vector<std::string>& digests = {}) const;
  // Pins (or unpins) every entry of `digest`: Collect and automatic
  // eviction never delete a pinned file (Delete and ForgetOrigin still do).
  // kNotFound if it is not stored.
  void SetPinned(std::string_view digest, bool pinned) const;
  // Deletes public files, least recently used first, as `options` says;
  // pinned files and private entries are never collected.
  CollectResult Collect(const CollectOptions& options) const;
  // The store's size and room, and the space settings in force.
  Space GetSpace() const;

 private:
  struct Impl;
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Turns a user-typed digest into the daemon's one form. Accepts
// "sha256:<hex>", "sha256-<hex>" (Ollama) or bare <hex>: 64 hex digits in
// any case, surrounded by optional whitespace. Returns
// "sha256:<64 lowercase hex>"; throws Error(kInvalidArgument) saying what
// is wrong otherwise.
COSTORE_EXPORT std::string NormalizeDigest(std::string_view text);

// The library's version, "MAJOR.MINOR.PATCH".
COSTORE_EXPORT std::string_view LibraryVersion();

}  // namespace costore::client
