// Catalog: what the store holds and who used it, in one SQLite database
// (WAL mode) at <root>/catalog.db.
//
//   files(digest, size, name, first_stored, private)   public files
//   principals(id, app, origin)
//   usage(digest, principal, stored, stores, reads, first_used, last_used)
//   grants(app, origin, digest or '*', created, explicit)
//   settings(key, value)
//   private_files(id, digest, owner, size, name, first_stored, cipher,
//                 chunk_size, key_version, wrapped_key)    since version 3
//   private_usage(file, principal, stored, stores, reads, first_used, last_used)
//   files and private_files, since version 4: problem ('' when the bytes are
//     the stored bytes, else what was found: never served), verified (when
//     last hashed and found right), pinned; files also disk_ino, disk_mtime,
//     disk_ctime (the blob's inode as committed: see DiskIdentity)
//
// Private files are entries of their own, one per (digest, owner): a
// private store never touches `files` or `usage`, and a public file's
// record never names who stored the same bytes privately. (files.private,
// from version 1, stays 0.)
//
// Thread-safe: one connection, serialised by a mutex; every method is one
// transaction. The schema version is kept in PRAGMA user_version.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "daemon/engine/digest.h"
#include "daemon/engine/principal.h"
#include "daemon/engine/status.h"

struct sqlite3;

namespace costore {

// A committed blob's inode as it was right after commit. Any change to the
// file (a write, a truncation, a fchmod: all move ctime, which no
// unprivileged process can set back) or its replacement by another file
// shows as a difference. All zero: not recorded yet (a file stored before
// schema version 4).
struct DiskIdentity {
  uint64_t ino = 0;
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;
  bool known() const { return ino != 0 || ctime_ns != 0; }
  bool operator==(const DiskIdentity&) const = default;
};

struct FileRecord {
  Digest digest;
  uint64_t size = 0;
  std::string name;
  bool is_private = false;
  int64_t first_stored_us = 0;
  int64_t last_used_us = 0;  // last store or read by anyone
  uint32_t stored_by = 0;    // principals that stored it
  uint32_t used_by = 0;      // principals that stored or read it
  // Private entries only (filled by the engine from PrivateFileRecord):
  std::string cipher;  // "aes-256-gcm" or "xchacha20-poly1305"
  Principal owner;     // the principal that stored it privately
  std::string problem;   // "" unless damaged: what was found
  int64_t verified_us = 0;
  bool pinned = false;
  DiskIdentity disk;     // public entries
  bool damaged() const { return !problem.empty(); }
};

// One private entry: the bytes one principal stored with the "private"
// option, sealed under their own data key (see daemon/crypto/).
struct PrivateFileRecord {
  int64_t id = 0;
  Digest digest;
  Principal owner;
  uint64_t size = 0;  // of the plaintext
  std::string name;
  int64_t first_stored_us = 0;
  int64_t last_used_us = 0;
  uint32_t stored_by = 0;
  uint32_t used_by = 0;
  std::string cipher;       // "aes-256-gcm" or "xchacha20-poly1305"
  uint32_t chunk_size = 0;  // as in the sealed file's header
  uint32_t key_version = 0;  // the master key version that wraps the data key
  std::string wrapped_key;   // bytes (daemon/crypto/key_wrap.h)
  std::string problem;       // "" unless damaged
  int64_t verified_us = 0;
  bool pinned = false;
  // The origin whose spelling names the sealed file (OwnerTag) when it is
  // not the owner's: the owner's origin was rewritten to its canonical form
  // by the schema 5 migration, and the file keeps its name.
  std::optional<std::string> named_for_origin;
  bool damaged() const { return !problem.empty(); }
  // The principal OwnerTag names the sealed file by.
  Principal blob_owner() const { return {owner.app, named_for_origin.value_or(owner.origin)}; }
};

// What the store holds, for Space and the quota.
struct CatalogTotals {
  uint64_t public_bytes = 0;
  uint32_t files = 0;  // entries, public and private
  uint32_t damaged = 0;
  uint32_t pinned = 0;
  // (plaintext size, chunk size) of each private entry: the engine turns
  // them into sealed sizes.
  std::vector<std::pair<uint64_t, uint32_t>> private_sizes;
};

struct UsageRecord {
  Principal principal;
  bool stored = false;
  uint32_t stores = 0;
  uint32_t reads = 0;
  int64_t first_used_us = 0;
  int64_t last_used_us = 0;
};

struct GrantRecord {
  Principal principal;
  std::string digest;  // "sha256:..." or "*"
  int64_t created_us = 0;
  bool explicit_grant = false;  // set in the manager, not from a consent dialog
};

// What the access rule needs to know about one (file, principal) pair,
// gathered by one query so that a refusal and a miss cost the same.
// What one principal itself did with a public file: the first name it gave
// and when it first stored it (0: it never did). Its own facts, and so the
// only ones a Store or Open reply may tell it: never another principal's
// name or time.
struct OwnStore {
  std::string name;
  int64_t first_stored_us = 0;
};

struct AccessFacts {
  bool file_exists = false;
  bool stored_by_principal = false;
  OwnStore own;  // when stored_by_principal
  bool granted = false;  // a grant for this file or for "*"
  // Private entries of the same digest:
  bool owns_private = false;       // the principal stored it privately
  bool private_exists = false;     // someone stored it privately
  bool granted_explicitly = false;  // a grant for this very digest, set in the manager
};

struct ForgetResult {
  uint32_t grants_removed = 0;
  uint32_t usage_removed = 0;        // usage records (stores and reads) removed
  std::vector<Digest> deleted_files;  // records removed; the caller removes the bytes
  // Private entries the origin's principals owned; the caller removes the bytes.
  std::vector<PrivateFileRecord> deleted_private;
};

// A private entry to record (Catalog::RecordPrivateStore).
struct NewPrivateFile {
  Digest digest;
  uint64_t size = 0;
  std::string name;
  Principal owner;
  std::string cipher;
  uint32_t chunk_size = 0;
  uint32_t key_version = 0;
  std::string wrapped_key;
};

// Settings keys the engine keeps for private files.
inline constexpr char kStoreIdSetting[] = "store-id";                  // random, names keyring items
inline constexpr char kMasterKeyVersionSetting[] = "master-key-version";  // the current master key
inline constexpr char kRekeyTargetSetting[] = "rekey-target";          // set while a rekey runs

class Catalog {
 public:
  // Opens or creates the database, enables WAL, migrates the schema.
  // *unreadable (if given) is set when the file is not a database SQLite
  // can read (corrupt, truncated, another kind of file): the engine then
  // moves it aside and rebuilds. Other errors (a full disk, a newer
  // schema) leave it false: the file is left as it is.
  static Status Open(const std::string& path, std::unique_ptr<Catalog>* out, bool* unreadable = nullptr);
  ~Catalog();

  // Adds the file if new (keeping the first name given; a later non-empty
  // name fills an empty one) and counts a store by `who`. With `disk`, the
  // bytes were just verified and committed as that inode: it is recorded,
  // verified is set to now, and a damaged file is repaired.
  // *own (if given): the principal's own facts after this store.
  Status RecordStore(const Digest& digest, uint64_t size, const std::string& name,
                     const Principal& who, int64_t now_us, const DiskIdentity* disk = nullptr,
                     OwnStore* own = nullptr);
  // A blob found on disk with no record (a lost catalog, a crash between
  // commit and record) whose bytes were verified: recorded with no
  // attribution. OK if a record exists.
  Status RecordRecovered(const Digest& digest, uint64_t size, const DiskIdentity& disk, int64_t now_us);
  // Integrity state (NotFound if the file is not recorded).
  Status SetDiskIdentity(const Digest& digest, const DiskIdentity& disk);
  Status MarkDamaged(const Digest& digest, const std::string& problem);
  // The bytes were hashed and found right (as inode `disk` if given, which
  // repairs a damaged record).
  Status MarkVerified(const Digest& digest, int64_t now_us, const DiskIdentity* disk = nullptr);
  Status MarkPrivateDamaged(int64_t id, const std::string& problem);
  Status MarkPrivateVerified(int64_t id, int64_t now_us);
  // Pins or unpins every entry of `digest`; NotFound if it has none.
  Status SetPinned(const Digest& digest, bool pinned);
  Status GetTotals(CatalogTotals* totals);
  // Counts a read by `who`. NotFound if the file is not recorded.
  Status RecordRead(const Digest& digest, const Principal& who, int64_t now_us);

  Status GetFile(const Digest& digest, FileRecord* out);  // NotFound if absent
  // GetFile without the attribution (last_used is first_stored, stored_by
  // and used_by 0): one indexed row, whose cost does not grow with the
  // number of principals that used the file. For the paths whose time a
  // caller sees (Store, Open).
  Status GetFileEntry(const Digest& digest, FileRecord* out);
  Status ListFiles(std::vector<FileRecord>* out);         // ordered by digest
  Status ListDigests(std::vector<Digest>* out);
  // Removes the file, its usage and every grant naming it. NotFound if absent.
  Status DeleteFile(const Digest& digest);

  Status GetAccessFacts(const Digest& digest, const Principal& who, AccessFacts* out);

  // `digest` is "sha256:..." or "*". Granting twice is OK. A grant is
  // explicit when the user set it in the manager (Manager1.Grant), not
  // when it came from an "allow always" answer to a consent dialog; only
  // an explicit grant for the digest itself opens private entries.
  // Granting again explicitly makes an existing grant explicit.
  Status AddGrant(const Principal& who, const std::string& digest, int64_t now_us,
                  bool explicit_grant = true);
  // NotFound if there is no such grant.
  Status RemoveGrant(const Principal& who, const std::string& digest);
  // All grants, or those naming `digest` (and "*"), ordered by app, origin, digest.
  Status ListGrants(const std::optional<Digest>& digest, std::vector<GrantRecord>* out);

  // Every principal that stored or read the file, first used first.
  // NotFound if the file is not recorded.
  Status GetUsage(const Digest& digest, std::vector<UsageRecord>* out);

  // Forgets a web origin: every grant to it, every usage record of its
  // principals, and the records of files that no principal of another
  // origin stored (listed in result->deleted_files).
  // With `dry_run`, reports what it would do and changes nothing.
  Status ForgetOrigin(const std::string& origin, ForgetResult* result, bool dry_run = false);
  // Whether a principal or a grant names `origin`, spelled exactly so:
  // how ForgetOrigin finds a spelling recorded before origins were
  // canonical that has no canonical form (see the schema 5 migration).
  Status HasOrigin(const std::string& origin, bool* recorded);

  // The user's settings, as text. NotFound when never set.
  Status GetSetting(const std::string& key, std::string* value);
  Status SetSetting(const std::string& key, const std::string& value);

  // --- private entries ---------------------------------------------------
  // Adds the entry (digest, owner) if new, else keeps the existing one
  // (and its key); either way counts a store by the owner. *created says
  // which.
  Status RecordPrivateStore(const NewPrivateFile& file, int64_t now_us, bool* created);
  // NotFound if absent.
  Status GetPrivateFile(const Digest& digest, const Principal& owner, PrivateFileRecord* out);
  Status GetPrivateFileById(int64_t id, PrivateFileRecord* out);
  // Every private entry (or those of `digest`), ordered by digest, then
  // first stored first.
  Status ListPrivateFiles(const std::optional<Digest>& digest, std::vector<PrivateFileRecord>* out);
  // Counts a read of entry `id` by `who`. NotFound if the entry is gone.
  Status RecordPrivateRead(int64_t id, const Principal& who, int64_t now_us);
  // Usage of the private entries of `digest`, first used first. NotFound if none.
  Status GetPrivateUsage(const Digest& digest, std::vector<UsageRecord>* out);
  // Removes every private entry of `digest` (listed in *deleted; the
  // caller removes their bytes). Grants naming `digest` go too when no
  // public entry of it remains.
  Status DeletePrivateFiles(const Digest& digest, std::vector<PrivateFileRecord>* deleted);
  // Removes one entry (a record whose bytes are gone). NotFound if absent.
  Status DeletePrivateFile(int64_t id);
  // How many private entries there are, and how many are wrapped under a
  // master key version other than `version`.
  Status CountPrivateFiles(uint32_t* total);
  Status CountPrivateFilesNotAt(uint32_t version, uint32_t* count);
  // Replaces the wrapped key of entry `id` if it is still wrapped under
  // `from_version`; *updated says whether it was.
  Status RewrapPrivateKey(int64_t id, uint32_t from_version, uint32_t to_version, const std::string& wrapped,
                          bool* updated);

  // --- master key versions (settings, written durably) ---------------------
  // Sets the current master key version and ends any rekey.
  Status SetMasterKeyVersion(uint32_t version);
  // Records that a rekey to `target` has begun.
  Status BeginRekey(uint32_t target);
  // In one transaction: if every private entry is wrapped under `target`,
  // makes it the current version, ends the rekey and sets *finished.
  Status FinishRekey(uint32_t target, bool* finished);

 private:
  Status GetFileRow(const Digest& digest, bool with_usage, FileRecord* out);
  explicit Catalog(sqlite3* db);
  std::mutex mu_;
  sqlite3* db_;
};

}  // namespace costore
