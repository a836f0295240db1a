#include "daemon/engine/catalog.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iterator>
#include <limits>
#include <string_view>

#include "daemon/engine/origin.h"
#include "daemon/engine/quote.h"

namespace costore {
namespace {

constexpr int kBusyTimeoutMs = 5000;
constexpr mode_t kFileMode = 0600;

// One step of the schema: SQL, then, for what SQL cannot do alone, C++ run
// in the same transaction (all or nothing, as the SQL). A plain string
// converts, so that an SQL-only entry is written as one.
struct Migration {
  constexpr Migration(const char* sql_text) : sql(sql_text) {}  // implicit on purpose
  constexpr Migration(const char* sql_text, Status (*then)(sqlite3* db, const std::string& what))
      : sql(sql_text), step(then) {}
  const char* sql;
  Status (*step)(sqlite3* db, const std::string& what) = nullptr;
};

Status CanonicalizeStoredOrigins(sqlite3* db, const std::string& what);

// kMigrations[v] brings a database from schema version v to v + 1, inside
// the migration transaction. A released entry is never edited: a change to
// the schema is a new entry, so that every existing database can follow.
constexpr Migration kMigrations[] = {
    // 0 -> 1: the first schema.
    //
    // Digests are stored in their one textual form, "sha256:<hex>". Grants
    // name principals by (app, origin) text rather than by principals.id so
    // that a grant can exist for a principal that has never called; their
    // digest is a file's or "*", so it cannot reference files(digest), and
    // DeleteFile removes a file's grants itself.
    R"sql(
CREATE TABLE files(
  digest TEXT PRIMARY KEY NOT NULL,
  size INTEGER NOT NULL CHECK(size >= 0),
  name TEXT NOT NULL DEFAULT '',
  first_stored INTEGER NOT NULL,
  private INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE principals(
  id INTEGER PRIMARY KEY,
  app TEXT NOT NULL,
  origin TEXT NOT NULL,
  UNIQUE(app, origin)
);
CREATE TABLE usage(
  digest TEXT NOT NULL REFERENCES files(digest) ON DELETE CASCADE,
  principal INTEGER NOT NULL REFERENCES principals(id),
  stored INTEGER NOT NULL DEFAULT 0,
  stores INTEGER NOT NULL DEFAULT 0,
  reads INTEGER NOT NULL DEFAULT 0,
  first_used INTEGER NOT NULL,
  last_used INTEGER NOT NULL,
  PRIMARY KEY(digest, principal)
);
CREATE TABLE grants(
  app TEXT NOT NULL,
  origin TEXT NOT NULL,
  digest TEXT NOT NULL,
  created INTEGER NOT NULL,
  PRIMARY KEY(app, origin, digest)
);
CREATE INDEX grants_by_digest ON grants(digest);
)sql",
    // 1 -> 2: the user's settings (consent policy, timeouts, budgets), as
    // text keyed by name; the engine owns their types and defaults.
    R"sql(
CREATE TABLE settings(
  key TEXT PRIMARY KEY NOT NULL,
  value TEXT NOT NULL
);
)sql",
    // 2 -> 3: private files. Each is an entry of its own per (digest,
    // owner), apart from `files`, so that a public and a private copy of
    // the same bytes never share a record, attribution or key; a file's
    // data key is kept wrapped under the master key (which lives only in
    // the keyring) with the version of the master key that wraps it.
    //
    // grants.explicit: 1 for grants the user set in the manager, 0 for
    // "allow always" answers in a consent dialog. Only explicit grants for
    // a single digest open private entries. Grants made before version 3
    // cannot be told apart, so they stay 0 (they predate private files).
    R"sql(
CREATE TABLE private_files(
  id INTEGER PRIMARY KEY,
  digest TEXT NOT NULL,
  owner INTEGER NOT NULL REFERENCES principals(id),
  size INTEGER NOT NULL CHECK(size >= 0),
  name TEXT NOT NULL DEFAULT '',
  first_stored INTEGER NOT NULL,
  cipher TEXT NOT NULL,
  chunk_size INTEGER NOT NULL,
  key_version INTEGER NOT NULL,
  wrapped_key BLOB NOT NULL,
  UNIQUE(digest, owner)
);
CREATE INDEX private_files_by_key_version ON private_files(key_version);
CREATE TABLE private_usage(
  file INTEGER NOT NULL REFERENCES private_files(id) ON DELETE CASCADE,
  principal INTEGER NOT NULL REFERENCES principals(id),
  stored INTEGER NOT NULL DEFAULT 0,
  stores INTEGER NOT NULL DEFAULT 0,
  reads INTEGER NOT NULL DEFAULT 0,
  first_used INTEGER NOT NULL,
  last_used INTEGER NOT NULL,
  PRIMARY KEY(file, principal)
);
ALTER TABLE grants ADD COLUMN explicit INTEGER NOT NULL DEFAULT 0;
)sql",
    // 3 -> 4: integrity. problem: '' while the bytes on disk are the stored
    // bytes, else what was found (a damaged entry is never served; storing
    // the right bytes repairs it). verified: when the bytes were last hashed
    // and found right. pinned: never evicted. disk_*: the public blob's
    // inode as committed (DiskIdentity); 0 for files stored before, which
    // the engine fills in at their next open.
    R"sql(
ALTER TABLE files ADD COLUMN problem TEXT NOT NULL DEFAULT '';
ALTER TABLE files ADD COLUMN verified INTEGER NOT NULL DEFAULT 0;
ALTER TABLE files ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0;
ALTER TABLE files ADD COLUMN disk_ino INTEGER NOT NULL DEFAULT 0;
ALTER TABLE files ADD COLUMN disk_mtime INTEGER NOT NULL DEFAULT 0;
ALTER TABLE files ADD COLUMN disk_ctime INTEGER NOT NULL DEFAULT 0;
ALTER TABLE private_files ADD COLUMN problem TEXT NOT NULL DEFAULT '';
ALTER TABLE private_files ADD COLUMN verified INTEGER NOT NULL DEFAULT 0;
ALTER TABLE private_files ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0;
)sql",
    // 4 -> 5: one origin, one principal. Origins are recorded in their
    // canonical form (origin.h); CanonicalizeStoredOrigins rewrites and
    // merges what was recorded in other spellings. A private file's name
    // on disk comes from its owner's spelling (OwnerTag), so an entry
    // whose owner's origin is rewritten keeps the old spelling in
    // named_for_origin (NULL: the owner's origin names it).
    Migration{R"sql(
ALTER TABLE private_files ADD COLUMN named_for_origin TEXT;
)sql",
              CanonicalizeStoredOrigins},
    // 5 -> 6: each principal's own facts about a public file: the first
    // name it gave and when it first stored it, so that a reply tells a
    // caller only what it did itself (files.name and files.first_stored are
    // whoever stored first). Existing storers get their first use as their
    // first store, and the file's name goes to its earliest storer.
    R"sql(
ALTER TABLE usage ADD COLUMN name TEXT NOT NULL DEFAULT '';
ALTER TABLE usage ADD COLUMN first_stored INTEGER NOT NULL DEFAULT 0;
UPDATE usage SET first_stored = first_used WHERE stored = 1;
UPDATE usage SET name = (SELECT f.name FROM files f WHERE f.digest = usage.digest)
 WHERE stored = 1 AND principal = (SELECT u.principal FROM usage u WHERE u.digest = usage.digest AND u.stored = 1
                                   ORDER BY u.first_used, u.principal LIMIT 1);
)sql",
};
constexpr int kSchemaVersion = static_cast<int>(std::size(kMigrations));

// "catalog: <what>: <sqlite's message>", as NoSpace when the disk is full.
Status SqliteError(sqlite3* db, std::string_view what) {
  std::string msg = "catalog: ";
  msg += what;
  msg += ": ";
  msg += sqlite3_errmsg(db);
  int primary = sqlite3_extended_errcode(db) & 0xff;
  int sys = sqlite3_system_errno(db);
  if (primary == SQLITE_FULL || (primary == SQLITE_IOERR && (sys == ENOSPC || sys == EDQUOT))) {
    return Status::NoSpace(std::move(msg));
  }
  return Status::IOError(std::move(msg));
}

uint32_t ClampToU32(int64_t v) {
  if (v < 0) return 0;
  if (v > std::numeric_limits<uint32_t>::max()) return std::numeric_limits<uint32_t>::max();
  return static_cast<uint32_t>(v);
}

// One prepared statement, finalized at scope end. A bind failure is kept
// and reported by the next Step, so that call sites bind without checking.
class Statement {
 public:
  Statement(sqlite3* db, std::string what) : db_(db), what_(std::move(what)) {}
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Status Prepare(const char* sql) {
    if (sqlite3_prepare_v2(db_, sql, -1, &stmt_, nullptr) != SQLITE_OK) {
      return SqliteError(db_, what_);
    }
    return Status::OK();
  }

  Statement& Bind(int index, std::string_view text) {
    // SQLITE_TRANSIENT: callers pass temporaries (digest.ToString()).
    Check(
        sqlite3_bind_text64(stmt_, index, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8));
    return *this;
  }
  Statement& Bind(int index, int64_t value) {
    Check(sqlite3_bind_int64(stmt_, index, value));
    return *this;
  }
  Statement& BindBlob(int index, std::string_view bytes) {
    Check(sqlite3_bind_blob64(stmt_, index, bytes.data(), bytes.size(), SQLITE_TRANSIENT));
    return *this;
  }

  // Sets *has_row to whether a row is ready to read.
  Status Step(bool* has_row) {
    if (bind_rc_ != SQLITE_OK) return SqliteError(db_, what_);
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) {
      *has_row = true;
      return Status::OK();
    }
    *has_row = false;
    if (rc == SQLITE_DONE) return Status::OK();
    return SqliteError(db_, what_);
  }
  // Runs a statement that returns no row.
  Status Run() {
    bool has_row;
    return Step(&has_row);
  }

  int64_t Int(int column) const { return sqlite3_column_int64(stmt_, column); }
  bool IsNull(int column) const { return sqlite3_column_type(stmt_, column) == SQLITE_NULL; }
  std::string Blob(int column) const {
    const void* bytes = sqlite3_column_blob(stmt_, column);
    if (bytes == nullptr) return {};
    return std::string(static_cast<const char*>(bytes), static_cast<size_t>(sqlite3_column_bytes(stmt_, column)));
  }
  std::string Text(int column) const {
    const unsigned char* text = sqlite3_column_text(stmt_, column);
    if (text == nullptr) return {};
    return std::string(reinterpret_cast<const char*>(text),
                       static_cast<size_t>(sqlite3_column_bytes(stmt_, column)));
  }

 private:
  void Check(int rc) {
    if (bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  }

  sqlite3* db_;
  std::string what_;  // for error messages
  sqlite3_stmt* stmt_ = nullptr;
  int bind_rc_ = SQLITE_OK;
};

Status Exec(sqlite3* db, const char* sql, std::string_view what) {
  if (sqlite3_exec(db, sql, nullptr, nullptr, nullptr) != SQLITE_OK) return SqliteError(db, what);
  return Status::OK();
}

// A transaction rolled back at scope end unless committed.
class Transaction {
 public:
  enum Kind { kRead, kWrite };
  explicit Transaction(sqlite3* db) : db_(db) {}
  ~Transaction() {
    // Some errors (SQLITE_FULL, SQLITE_IOERR...) already rolled back.
    if (begun_ && !sqlite3_get_autocommit(db_)) {
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    }
  }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  // A writer takes the write lock at BEGIN: a deferred transaction that
  // later upgrades to a writer gets SQLITE_BUSY at once, without waiting
  // out busy_timeout, if another connection writes meanwhile.
  Status Begin(Kind kind) {
    Status s = Exec(db_, kind == kWrite ? "BEGIN IMMEDIATE" : "BEGIN", "begin transaction");
    begun_ = s.ok();
    return s;
  }
  Status Commit() { return Exec(db_, "COMMIT", "commit"); }

 private:
  sqlite3* db_;
  bool begun_ = false;
};

// Makes the commits made while it lives durable against a power cut
// (synchronous=FULL fsyncs the WAL at each commit), then goes back to
// NORMAL. For the changes whose loss would matter: a revoked grant that
// came back after a crash would give access the user took away. Create it
// before the transaction begins, so that it outlives the commit.
class ScopedFullSync {
 public:
  explicit ScopedFullSync(sqlite3* db) : db_(db) {
    sqlite3_exec(db_, "PRAGMA synchronous=FULL", nullptr, nullptr, nullptr);
  }
  ~ScopedFullSync() { sqlite3_exec(db_, "PRAGMA synchronous=NORMAL", nullptr, nullptr, nullptr); }
  ScopedFullSync(const ScopedFullSync&) = delete;
  ScopedFullSync& operator=(const ScopedFullSync&) = delete;

 private:
  sqlite3* db_;
};

// Creates the database file 0600 before SQLite does (SQLite would create
// it 0644 less the umask), and tightens an existing one. SQLite gives the
// -wal and -shm files the mode of the database file; ones left by an
// earlier run are tightened too.
Status PrepareDatabaseFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, kFileMode);
  if (fd < 0) return Status::FromErrno("catalog: open " + path, errno);
  if (::fchmod(fd, kFileMode) != 0) {
    int err = errno;
    ::close(fd);
    return Status::FromErrno("catalog: chmod " + path, err);
  }
  ::close(fd);
  for (const char* suffix : {"-wal", "-shm"}) {
    // Never through a link: a link here would change a file elsewhere.
    std::string side = path + suffix;
    int side_fd = ::open(side.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (side_fd < 0) {
      if (errno == ENOENT) continue;
      return Status::FromErrno("catalog: open " + side, errno);
    }
    int rc = ::fchmod(side_fd, kFileMode);
    int err = errno;
    ::close(side_fd);
    if (rc != 0) return Status::FromErrno("catalog: chmod " + side, err);
  }
  return Status::OK();
}

Status ReadSchemaVersion(sqlite3* db, const std::string& path, int* version) {
  Statement stmt(db, "open " + path);
  Status s = stmt.Prepare("PRAGMA user_version");
  bool has_row = false;
  if (s.ok()) s = stmt.Step(&has_row);
  if (!s.ok()) return s;
  *version = has_row ? static_cast<int>(stmt.Int(0)) : 0;
  return Status::OK();
}

Status RefuseNewerSchema(const std::string& path, int version) {
  return Status::IOError("catalog: " + path + " has schema version " + std::to_string(version) +
                         ", newer than this costored knows (" + std::to_string(kSchemaVersion) +
                         "); it was written by a newer costore and is left untouched");
}

Status SetJournalModeWal(sqlite3* db, const std::string& path) {
  Statement stmt(db, "enable WAL on " + path);
  Status s = stmt.Prepare("PRAGMA journal_mode=WAL");
  bool has_row = false;
  if (s.ok()) s = stmt.Step(&has_row);
  if (!s.ok()) return s;
  std::string mode = has_row ? stmt.Text(0) : "";
  if (mode != "wal") {
    return Status::IOError("catalog: " + path + ": cannot enable WAL (journal mode stays " +
                           Quote(mode) + "); is it on a file system without shared memory?");
  }
  return Status::OK();
}

// Brings the schema to kSchemaVersion in one transaction: a crash leaves
// the old version or the new one, never a mix.
Status Migrate(sqlite3* db, const std::string& path) {
  Transaction txn(db);
  Status s = txn.Begin(Transaction::kWrite);
  if (!s.ok()) return s;
  // Read again under the write lock: another process may have migrated.
  int version = 0;
  s = ReadSchemaVersion(db, path, &version);
  if (!s.ok()) return s;
  if (version > kSchemaVersion) return RefuseNewerSchema(path, version);
  if (version == kSchemaVersion) return Status::OK();  // rolls back an empty txn
  for (int v = version; v < kSchemaVersion; ++v) {
    const std::string what = "migrate " + path + " to schema version " + std::to_string(v + 1);
    s = Exec(db, kMigrations[v].sql, what);
    if (s.ok() && kMigrations[v].step != nullptr) s = kMigrations[v].step(db, what);
    if (!s.ok()) return s;
  }
  std::string set_version = "PRAGMA user_version=" + std::to_string(kSchemaVersion);
  s = Exec(db, set_version.c_str(), "set schema version of " + path);
  if (!s.ok()) return s;
  return txn.Commit();
}

Status Configure(sqlite3* db, const std::string& path) {
  sqlite3_busy_timeout(db, kBusyTimeoutMs);
  // Check the version before anything that writes: a database from a newer
  // costore is not ours to change, not even its journal mode. This is also
  // the first read, where a file that is not a database shows.
  int version = 0;
  Status s = ReadSchemaVersion(db, path, &version);
  if (!s.ok()) return s;
  if (version > kSchemaVersion) return RefuseNewerSchema(path, version);

  s = SetJournalModeWal(db, path);
  if (!s.ok()) return s;
  // In WAL mode, synchronous=NORMAL fsyncs only at checkpoints: a commit
  // survives any crash of the daemon (it is in the OS's cache), and a power
  // cut may lose the last commits but never corrupts the database. What is
  // lost is acceptable: a blob whose record is lost is removed as an orphan
  // at start and stored again by whoever needs it; a lost usage count is
  // only statistics. Revokes and deletes use ScopedFullSync.
  s = Exec(db, "PRAGMA synchronous=NORMAL", "set synchronous on " + path);
  if (!s.ok()) return s;
  s = Exec(db, "PRAGMA foreign_keys=ON", "enable foreign keys on " + path);
  if (!s.ok()) return s;
  return Migrate(db, path);
}

// Parses a digest read back from the catalog.
Status ParseStoredDigest(const std::string& text, Digest* out) {
  Status s = Digest::Parse(text, out);
  if (!s.ok()) return Status::IOError("catalog: corrupt record: " + s.message());
  return Status::OK();
}

// "*" or a valid digest text.
Status ValidateGrantDigest(const std::string& digest) {
  if (digest == "*") return Status::OK();
  Digest parsed;
  return Digest::Parse(digest, &parsed);
}

std::string DescribeGrant(const Principal& who, const std::string& digest) {
  return Quote(digest) + " to app " + Quote(who.app) + " origin " + Quote(who.origin);
}

Status NoSuchFile(const std::string& digest) {
  return Status::NotFound("no file " + digest + " in the catalog");
}

Status NoPrivateEntryOf(const std::string& digest) {
  return Status::NotFound("no private entry of " + digest + " in the catalog");
}

Status NoSuchPrivateEntry(int64_t id) {
  return Status::NotFound("no private entry " + std::to_string(id) + " in the catalog");
}

// SQLite keeps sizes as signed 64-bit integers.
Status CheckStoredSize(uint64_t size, const Digest& digest) {
  if (size > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return Status::InvalidArgument("size " + std::to_string(size) + " of " + digest.ToString() +
                                   " is too large");
  }
  return Status::OK();
}

// Prepares `sql`, binds `param` (text or integer) as ?1 and steps once;
// *has_row says whether a row came back.
template <typename Param>
Status StepWith(sqlite3* db, const std::string& what, const char* sql, const Param& param, bool* has_row) {
  Statement stmt(db, what);
  Status s = stmt.Prepare(sql);
  if (!s.ok()) return s;
  stmt.Bind(1, param);
  return stmt.Step(has_row);
}

// Runs `sql`, which returns no row, with `param` as ?1.
template <typename Param>
Status RunWith(sqlite3* db, const std::string& what, const char* sql, const Param& param) {
  bool has_row = false;
  return StepWith(db, what, sql, param, &has_row);
}

// Reads every row `stmt` returns, each decoded by `read`, into *out.
template <typename Record>
Status CollectRows(Statement* stmt, Status (*read)(const Statement&, Record*), std::vector<Record>* out) {
  for (;;) {
    bool has_row = false;
    Status s = stmt->Step(&has_row);
    if (!s.ok()) return s;
    if (!has_row) return Status::OK();
    Record record;
    s = read(*stmt, &record);
    if (!s.ok()) return s;
    out->push_back(std::move(record));
  }
}

Status FileExists(sqlite3* db, const std::string& digest, const std::string& what, bool* exists) {
  return StepWith(db, what, "SELECT 1 FROM files WHERE digest = ?1", digest, exists);
}

Status PrivateFileExists(sqlite3* db, const std::string& digest, const std::string& what, bool* exists) {
  return StepWith(db, what, "SELECT 1 FROM private_files WHERE digest = ?1 LIMIT 1", digest, exists);
}

// Adds the principal if new; sets *id to its row id.
Status UpsertPrincipal(sqlite3* db, const Principal& who, const std::string& what, int64_t* id) {
  Statement insert(db, what);
  Status s = insert.Prepare(
      "INSERT INTO principals(app, origin) VALUES(?1, ?2) ON CONFLICT(app, origin) DO NOTHING");
  if (!s.ok()) return s;
  insert.Bind(1, who.app).Bind(2, who.origin);
  s = insert.Run();
  if (!s.ok()) return s;

  Statement select(db, what);
  s = select.Prepare("SELECT id FROM principals WHERE app = ?1 AND origin = ?2");
  if (!s.ok()) return s;
  select.Bind(1, who.app).Bind(2, who.origin);
  bool has_row = false;
  s = select.Step(&has_row);
  if (!s.ok()) return s;
  if (!has_row) return Status::IOError("catalog: " + std::string(what) + ": principal vanished");
  *id = select.Int(0);
  return Status::OK();
}

// Where uses are counted: `usage` by a public file's digest,
// `private_usage` by a private entry's id.
struct UsageTable {
  const char* table;
  const char* file_column;
};
constexpr UsageTable kUsage{"usage", "digest"};
constexpr UsageTable kPrivateUsage{"private_usage", "file"};

// Counts one store or one read by `who` at `now_us` of the file that
// `file` (a digest or an entry id) names in `usage`.
template <typename FileKey>
Status CountUse(sqlite3* db, const UsageTable& usage, const FileKey& file, const Principal& who, bool is_store,
                int64_t now_us, const std::string& what, int64_t* principal_id_out = nullptr) {
  int64_t principal_id = 0;
  Status s = UpsertPrincipal(db, who, what, &principal_id);
  if (!s.ok()) return s;
  const std::string table = usage.table;
  const std::string column = usage.file_column;
  const std::string sql =
      "INSERT INTO " + table + "(" + column + ", principal, stored, stores, reads, first_used, last_used)"
      " VALUES(?1, ?2, ?3, ?3, ?4, ?5, ?5)"
      " ON CONFLICT(" + column + ", principal) DO UPDATE SET"
      "   stored = max(stored, excluded.stored),"
      "   stores = stores + excluded.stores,"
      "   reads = reads + excluded.reads,"
      "   last_used = excluded.last_used";
  Statement upsert(db, what);
  s = upsert.Prepare(sql.c_str());
  if (!s.ok()) return s;
  upsert.Bind(1, file)
      .Bind(2, principal_id)
      .Bind(3, int64_t{is_store ? 1 : 0})
      .Bind(4, int64_t{is_store ? 0 : 1})
      .Bind(5, now_us);
  s = upsert.Run();
  if (s.ok() && principal_id_out != nullptr) *principal_id_out = principal_id;
  return s;
}

// A public store's own facts: the principal's first store time and the
// first non-empty name it gave; *own gets them as they now are.
Status RecordOwnStore(sqlite3* db, const std::string& digest, int64_t principal_id, const std::string& name,
                      int64_t now_us, const std::string& what, OwnStore* own) {
  Statement update(db, what);
  Status s = update.Prepare(
      "UPDATE usage SET first_stored = CASE WHEN first_stored = 0 THEN ?3 ELSE first_stored END,"
      "                 name = CASE WHEN name = '' THEN ?4 ELSE name END"
      " WHERE digest = ?1 AND principal = ?2 RETURNING name, first_stored");
  if (!s.ok()) return s;
  update.Bind(1, digest).Bind(2, principal_id).Bind(3, now_us).Bind(4, name);
  bool has_row = false;
  s = update.Step(&has_row);
  if (!s.ok()) return s;
  if (!has_row) return Status::IOError("catalog: " + what + ": the store was not counted");
  if (own != nullptr) *own = OwnStore{update.Text(0), update.Int(1)};
  return Status::OK();
}

// Columns: digest, size, name, private, first_stored, last_used, stored_by,
// used_by. A file nobody is recorded as using (none today, but usage rows
// may be pruned one day) was last used when it was stored.
constexpr const char* kSelectFiles =
    "SELECT f.digest, f.size, f.name, f.private, f.first_stored,"
    "       coalesce(max(u.last_used), f.first_stored),"
    "       count(CASE WHEN u.stored THEN 1 END),"
    "       count(u.principal),"
    "       f.problem, f.verified, f.pinned, f.disk_ino, f.disk_mtime, f.disk_ctime"
    " FROM files f LEFT JOIN usage u ON u.digest = f.digest ";

Status ReadFileRecord(const Statement& stmt, FileRecord* out) {
  FileRecord record;
  Status s = ParseStoredDigest(stmt.Text(0), &record.digest);
  if (!s.ok()) return s;
  record.size = static_cast<uint64_t>(stmt.Int(1));
  record.name = stmt.Text(2);
  record.is_private = stmt.Int(3) != 0;
  record.first_stored_us = stmt.Int(4);
  record.last_used_us = stmt.Int(5);
  record.stored_by = ClampToU32(stmt.Int(6));
  record.used_by = ClampToU32(stmt.Int(7));
  record.problem = stmt.Text(8);
  record.verified_us = stmt.Int(9);
  record.pinned = stmt.Int(10) != 0;
  record.disk.ino = static_cast<uint64_t>(stmt.Int(11));
  record.disk.mtime_ns = stmt.Int(12);
  record.disk.ctime_ns = stmt.Int(13);
  *out = std::move(record);
  return Status::OK();
}

// Columns: id, digest, owner app, owner origin, size, name, first_stored,
// last_used, stored_by, used_by, cipher, chunk_size, key_version,
// wrapped_key, problem, verified, pinned, named_for_origin.
constexpr const char* kSelectPrivate =
    "SELECT f.id, f.digest, p.app, p.origin, f.size, f.name, f.first_stored,"
    "       coalesce(max(u.last_used), f.first_stored),"
    "       count(CASE WHEN u.stored THEN 1 END), count(u.principal),"
    "       f.cipher, f.chunk_size, f.key_version, f.wrapped_key,"
    "       f.problem, f.verified, f.pinned, f.named_for_origin"
    " FROM private_files f JOIN principals p ON p.id = f.owner"
    " LEFT JOIN private_usage u ON u.file = f.id ";
// How lists of private entries are ordered.
constexpr const char* kPrivateOrder = "GROUP BY f.id ORDER BY f.digest, f.first_stored, f.id";

Status ReadPrivateRecord(const Statement& stmt, PrivateFileRecord* out) {
  PrivateFileRecord record;
  record.id = stmt.Int(0);
  Status s = ParseStoredDigest(stmt.Text(1), &record.digest);
  if (!s.ok()) return s;
  record.owner.app = stmt.Text(2);
  record.owner.origin = stmt.Text(3);
  record.size = static_cast<uint64_t>(stmt.Int(4));
  record.name = stmt.Text(5);
  record.first_stored_us = stmt.Int(6);
  record.last_used_us = stmt.Int(7);
  record.stored_by = ClampToU32(stmt.Int(8));
  record.used_by = ClampToU32(stmt.Int(9));
  record.cipher = stmt.Text(10);
  record.chunk_size = ClampToU32(stmt.Int(11));
  record.key_version = ClampToU32(stmt.Int(12));
  record.wrapped_key = stmt.Blob(13);
  record.problem = stmt.Text(14);
  record.verified_us = stmt.Int(15);
  record.pinned = stmt.Int(16) != 0;
  if (!stmt.IsNull(17)) record.named_for_origin = stmt.Text(17);
  *out = std::move(record);
  return Status::OK();
}

// Prepares kSelectPrivate followed by `rest` (WHERE, GROUP BY, ORDER BY).
Status PreparePrivate(Statement* stmt, const std::string& rest) {
  return stmt->Prepare((std::string(kSelectPrivate) + rest).c_str());
}

// The one private entry `stmt` selects, or `missing` when there is none.
Status ReadOnePrivate(Statement* stmt, const Status& missing, PrivateFileRecord* out) {
  std::vector<PrivateFileRecord> found;
  Status s = CollectRows(stmt, ReadPrivateRecord, &found);
  if (!s.ok()) return s;
  if (found.empty()) return missing;
  *out = std::move(found.front());
  return Status::OK();
}

// Columns: app, origin, stored, stores, reads, first_used, last_used.
Status ReadUsageRecord(const Statement& stmt, UsageRecord* out) {
  UsageRecord record;
  record.principal.app = stmt.Text(0);
  record.principal.origin = stmt.Text(1);
  record.stored = stmt.Int(2) != 0;
  record.stores = ClampToU32(stmt.Int(3));
  record.reads = ClampToU32(stmt.Int(4));
  record.first_used_us = stmt.Int(5);
  record.last_used_us = stmt.Int(6);
  *out = std::move(record);
  return Status::OK();
}

// What the usage of public and of private files differ in: the entries
// that must exist, the miss, and the query (ReadUsageRecord's columns, the
// digest as ?1).
struct UsageQuery {
  Status (*exists)(sqlite3* db, const std::string& digest, const std::string& what, bool* exists);
  Status (*missing)(const std::string& digest);
  const char* sql;
};

// In one read transaction: query.missing unless an entry of `digest`
// exists, else the rows of query.sql.
Status ReadUsage(sqlite3* db, const UsageQuery& query, const std::string& digest, const std::string& what,
                 std::vector<UsageRecord>* out) {
  Transaction txn(db);
  Status s = txn.Begin(Transaction::kRead);
  if (!s.ok()) return s;
  bool exists = false;
  s = query.exists(db, digest, what, &exists);
  if (!s.ok()) return s;
  if (!exists) return query.missing(digest);

  Statement stmt(db, what);
  s = stmt.Prepare(query.sql);
  if (!s.ok()) return s;
  stmt.Bind(1, digest);
  std::vector<UsageRecord> usage;
  s = CollectRows(&stmt, ReadUsageRecord, &usage);
  if (!s.ok()) return s;
  // Read-only: ending it either way is the same. Commit, so that an error
  // here is seen rather than dropped.
  s = txn.Commit();
  if (!s.ok()) return s;
  *out = std::move(usage);
  return Status::OK();
}

constexpr UsageQuery kFileUsage{
    FileExists, NoSuchFile,
    "SELECT p.app, p.origin, u.stored, u.stores, u.reads, u.first_used, u.last_used"
    " FROM usage u JOIN principals p ON p.id = u.principal"
    " WHERE u.digest = ?1"
    " ORDER BY u.first_used, p.app, p.origin"};

// One row per principal across the digest's private entries.
constexpr UsageQuery kPrivateFileUsage{
    PrivateFileExists, NoPrivateEntryOf,
    "SELECT p.app, p.origin, max(u.stored), sum(u.stores), sum(u.reads), min(u.first_used), max(u.last_used)"
    " FROM private_usage u JOIN private_files f ON f.id = u.file JOIN principals p ON p.id = u.principal"
    " WHERE f.digest = ?1 GROUP BY p.id"
    " ORDER BY min(u.first_used), p.app, p.origin"};

// Columns: digest.
Status ReadDigest(const Statement& stmt, Digest* out) { return ParseStoredDigest(stmt.Text(0), out); }

// Columns: app, origin, digest, created, explicit.
Status ReadGrantRecord(const Statement& stmt, GrantRecord* out) {
  GrantRecord grant;
  grant.principal.app = stmt.Text(0);
  grant.principal.origin = stmt.Text(1);
  grant.digest = stmt.Text(2);
  grant.created_us = stmt.Int(3);
  grant.explicit_grant = stmt.Int(4) != 0;
  *out = std::move(grant);
  return Status::OK();
}

constexpr const char* kDeleteFile = "DELETE FROM files WHERE digest = ?1";
constexpr const char* kDeleteGrantsOf = "DELETE FROM grants WHERE digest = ?1";

// Removes the grants naming `digest` once no entry, public or private,
// of it is left: a grant for a single file needs the file.
Status DropGrantsIfGone(sqlite3* db, const std::string& digest, const std::string& what) {
  bool exists = false;
  Status s = FileExists(db, digest, what, &exists);
  if (s.ok() && !exists) s = PrivateFileExists(db, digest, what, &exists);
  if (!s.ok() || exists) return s;
  return RunWith(db, what, kDeleteGrantsOf, digest);
}

Status WriteSetting(sqlite3* db, const std::string& key, const std::string& value, const std::string& what) {
  Statement stmt(db, what);
  Status s = stmt.Prepare(
      "INSERT INTO settings(key, value) VALUES(?1, ?2)"
      " ON CONFLICT(key) DO UPDATE SET value = excluded.value");
  if (!s.ok()) return s;
  stmt.Bind(1, key).Bind(2, value);
  return stmt.Run();
}

Status RemoveSetting(sqlite3* db, const std::string& key, const std::string& what) {
  return RunWith(db, what, "DELETE FROM settings WHERE key = ?1", key);
}

// Sets verified (and, with `disk`, the inode, clearing any damage).
Status WriteVerified(sqlite3* db, const std::string& digest, int64_t now_us, const DiskIdentity* disk,
                     const std::string& what) {
  Statement stmt(db, what);
  Status s = stmt.Prepare(disk != nullptr ? "UPDATE files SET verified = ?2, problem = '', disk_ino = ?3,"
                                            " disk_mtime = ?4, disk_ctime = ?5 WHERE digest = ?1"
                                          : "UPDATE files SET verified = ?2 WHERE digest = ?1");
  if (!s.ok()) return s;
  stmt.Bind(1, digest).Bind(2, now_us);
  if (disk != nullptr) {
    stmt.Bind(3, static_cast<int64_t>(disk->ino)).Bind(4, disk->mtime_ns).Bind(5, disk->ctime_ns);
  }
  return stmt.Run();
}

// --- schema 5: one origin, one principal ----------------------------------

// Runs `sql`, which returns no row, with `params` (text or integers) as
// ?1, ?2, ...
template <typename... Params>
Status RunBound(sqlite3* db, const std::string& what, const std::string& sql, const Params&... params) {
  Statement stmt(db, what);
  Status s = stmt.Prepare(sql.c_str());
  if (!s.ok()) return s;
  int index = 0;
  (stmt.Bind(++index, params), ...);
  return stmt.Run();
}

// SQL adding the rows of `usage` whose `key` ("principal" or the file
// column) is ?1 to the rows of the same file and principal where `key` is
// ?2, as two records of one principal merge: stores and reads summed,
// stored max, first_used min, last_used max. The ?1 rows stay, for the
// caller to delete.
std::string MergeUsageSql(const UsageTable& usage, const std::string& key) {
  const std::string table = usage.table;
  const std::string file = usage.file_column;
  const std::string moved = key == "principal" ? file + ", ?2" : "?2, principal";
  return "INSERT INTO " + table + "(" + file + ", principal, stored, stores, reads, first_used, last_used)"
         " SELECT " + moved + ", stored, stores, reads, first_used, last_used FROM " + table +
         " WHERE " + key + " = ?1"
         " ON CONFLICT(" + file + ", principal) DO UPDATE SET"
         "   stored = max(stored, excluded.stored),"
         "   stores = stores + excluded.stores,"
         "   reads = reads + excluded.reads,"
         "   first_used = min(first_used, excluded.first_used),"
         "   last_used = max(last_used, excluded.last_used)";
}

// Moves the usage rows of `usage` whose `key` is `from` to `to`.
Status MoveUsage(sqlite3* db, const UsageTable& usage, const std::string& key, int64_t from, int64_t to,
                 const std::string& what) {
  Status s = RunBound(db, what, MergeUsageSql(usage, key), from, to);
  if (!s.ok()) return s;
  return RunBound(db, what, "DELETE FROM " + std::string(usage.table) + " WHERE " + key + " = ?1", from);
}

struct StoredPrincipal {
  int64_t id = 0;
  std::string app;
  std::string origin;
};

// Columns: id, app, origin.
Status ReadStoredPrincipal(const Statement& stmt, StoredPrincipal* out) {
  out->id = stmt.Int(0);
  out->app = stmt.Text(1);
  out->origin = stmt.Text(2);
  return Status::OK();
}

// A private entry of the principal being merged away, and the entry of
// the same digest the surviving principal already has (0 if none).
struct EntryToMove {
  int64_t id = 0;
  int64_t rival = 0;
  bool keep = true;  // this one stays rather than the rival
};

// Columns: id, rival id or NULL, keep.
Status ReadEntryToMove(const Statement& stmt, EntryToMove* out) {
  out->id = stmt.Int(0);
  out->rival = stmt.Int(1);
  out->keep = stmt.Int(2) != 0;
  return Status::OK();
}

// Gives principal `to` a private entry of `from`, which was spelled
// `spelling`: the sealed file keeps its name (named_for_origin).
Status ReownPrivateEntry(sqlite3* db, int64_t entry, int64_t to, const std::string& spelling,
                         const std::string& what) {
  return RunBound(db, what,
                  "UPDATE private_files SET owner = ?2, named_for_origin = coalesce(named_for_origin, ?3)"
                  " WHERE id = ?1",
                  entry, to, spelling);
}

// Drops private entry `loser` in favour of `keeper` (same digest, same
// principal now): its usage joins the keeper's. Its sealed file, no longer
// recorded, is moved to quarantine/ at the next start, as any unrecorded
// private file is: never deleted. The keeper holds the same bytes.
Status DropRivalEntry(sqlite3* db, int64_t loser, int64_t keeper, const std::string& what) {
  Status s = MoveUsage(db, kPrivateUsage, "file", loser, keeper, what);
  if (!s.ok()) return s;
  return RunBound(db, what, "DELETE FROM private_files WHERE id = ?1", loser);
}

// Merges principal `from` (whose origin was spelled `spelling`) into `to`,
// the same app and origin, and removes `from`.
Status MergePrincipal(sqlite3* db, int64_t from, int64_t to, const std::string& spelling, const std::string& what) {
  Status s = MoveUsage(db, kUsage, "principal", from, to, what);
  if (s.ok()) s = MoveUsage(db, kPrivateUsage, "principal", from, to, what);
  if (!s.ok()) return s;
  // Of two private entries of one digest, the undamaged one stays, else
  // the first stored.
  Statement select(db, what);
  s = select.Prepare(
      "SELECT f.id, g.id, CASE WHEN g.id IS NULL THEN 1"
      "   WHEN (f.problem = '') != (g.problem = '') THEN f.problem = ''"
      "   WHEN f.first_stored != g.first_stored THEN f.first_stored < g.first_stored"
      "   ELSE f.id < g.id END"
      " FROM private_files f LEFT JOIN private_files g ON g.digest = f.digest AND g.owner = ?2"
      " WHERE f.owner = ?1 ORDER BY f.id");
  if (!s.ok()) return s;
  select.Bind(1, from).Bind(2, to);
  std::vector<EntryToMove> entries;
  s = CollectRows(&select, ReadEntryToMove, &entries);
  if (!s.ok()) return s;
  for (const EntryToMove& entry : entries) {
    if (entry.rival == 0) {
      s = ReownPrivateEntry(db, entry.id, to, spelling, what);
    } else if (entry.keep) {
      s = DropRivalEntry(db, entry.rival, entry.id, what);
      if (s.ok()) s = ReownPrivateEntry(db, entry.id, to, spelling, what);
    } else {
      s = DropRivalEntry(db, entry.id, entry.rival, what);
    }
    if (!s.ok()) return s;
  }
  return RunBound(db, what, "DELETE FROM principals WHERE id = ?1", from);
}

// Migration 4 -> 5: every origin in principals and grants in its canonical
// form (origin.h), so that each spelling recorded before is the principal
// callers now reach. Principals that become one merge (MergePrincipal);
// grants that become one keep the earliest created and explicit if either
// was. An origin with no canonical form (ws://, an extension's, http on a
// remote host) is left as it was: no call reaches it any more but
// ForgetOrigin, which removes it. Files and blobs are not touched: only
// who is recorded as storing, reading or being granted them changes.
Status CanonicalizeStoredOrigins(sqlite3* db, const std::string& what) {
  Statement all_principals(db, what);
  Status s = all_principals.Prepare("SELECT id, app, origin FROM principals WHERE origin != '' ORDER BY id");
  if (!s.ok()) return s;
  std::vector<StoredPrincipal> principals;
  s = CollectRows(&all_principals, ReadStoredPrincipal, &principals);
  if (!s.ok()) return s;
  for (const StoredPrincipal& principal : principals) {
    std::string canonical;
    if (!CanonicalizeOrigin(principal.origin, &canonical).ok() || canonical == principal.origin) continue;
    bool found = false;
    int64_t survivor = 0;
    {
      Statement find(db, what);
      s = find.Prepare("SELECT id FROM principals WHERE app = ?1 AND origin = ?2");
      if (!s.ok()) return s;
      find.Bind(1, principal.app).Bind(2, canonical);
      s = find.Step(&found);
      if (!s.ok()) return s;
      if (found) survivor = find.Int(0);
    }
    if (found) {
      s = MergePrincipal(db, principal.id, survivor, principal.origin, what);
    } else {
      s = RunBound(db, what,
                   "UPDATE private_files SET named_for_origin = coalesce(named_for_origin, ?2) WHERE owner = ?1",
                   principal.id, principal.origin);
      if (s.ok()) s = RunBound(db, what, "UPDATE principals SET origin = ?2 WHERE id = ?1", principal.id, canonical);
    }
    if (!s.ok()) return s;
  }

  Statement all_grants(db, what);
  s = all_grants.Prepare("SELECT app, origin, digest, created, explicit FROM grants WHERE origin != ''");
  if (!s.ok()) return s;
  std::vector<GrantRecord> grants;
  s = CollectRows(&all_grants, ReadGrantRecord, &grants);
  if (!s.ok()) return s;
  for (const GrantRecord& grant : grants) {
    std::string canonical;
    if (!CanonicalizeOrigin(grant.principal.origin, &canonical).ok() || canonical == grant.principal.origin) {
      continue;
    }
    s = RunBound(db, what,
                 "INSERT INTO grants(app, origin, digest, created, explicit) VALUES(?1, ?2, ?3, ?4, ?5)"
                 " ON CONFLICT(app, origin, digest) DO UPDATE SET"
                 "   created = min(created, excluded.created), explicit = max(explicit, excluded.explicit)",
                 grant.principal.app, canonical, grant.digest, grant.created_us,
                 int64_t{grant.explicit_grant ? 1 : 0});
    if (s.ok()) {
      s = RunBound(db, what, "DELETE FROM grants WHERE app = ?1 AND origin = ?2 AND digest = ?3",
                   grant.principal.app, grant.principal.origin, grant.digest);
    }
    if (!s.ok()) return s;
  }
  return Status::OK();
}

}  // namespace

Status Catalog::Open(const std::string& path, std::unique_ptr<Catalog>* out, bool* unreadable) {
  if (unreadable != nullptr) *unreadable = false;
  Status s = PrepareDatabaseFile(path);
  if (!s.ok()) return s;
  sqlite3* db = nullptr;
  // NOMUTEX: mu_ serialises every use of the connection.
  int rc = sqlite3_open_v2(path.c_str(), &db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX |
                               SQLITE_OPEN_NOFOLLOW | SQLITE_OPEN_EXRESCODE,
                           nullptr);
  if (rc != SQLITE_OK) {
    s = db != nullptr ? SqliteError(db, "open " + path)
                      : Status::IOError("catalog: open " + path + ": " + sqlite3_errstr(rc));
    sqlite3_close(db);
    return s;
  }
  s = Configure(db, path);
  if (!s.ok()) {
    const int primary = sqlite3_extended_errcode(db) & 0xff;
    if (unreadable != nullptr && (primary == SQLITE_NOTADB || primary == SQLITE_CORRUPT)) *unreadable = true;
    sqlite3_close(db);
    return s;
  }
  out->reset(new Catalog(db));
  return Status::OK();
}

Catalog::Catalog(sqlite3* db) : db_(db) {}

Catalog::~Catalog() {
  // Every statement is finalized by now, so this closes at once; the last
  // connection to close checkpoints the WAL into the database.
  sqlite3_close(db_);
}

Status Catalog::RecordStore(const Digest& digest, uint64_t size, const std::string& name,
                            const Principal& who, int64_t now_us, const DiskIdentity* disk, OwnStore* own) {
  Status s = CheckStoredSize(size, digest);
  if (!s.ok()) return s;
  const std::string text = digest.ToString();
  const std::string what = "record store of " + text;
  std::lock_guard<std::mutex> lock(mu_);
  Transaction txn(db_);
  s = txn.Begin(Transaction::kWrite);
  if (!s.ok()) return s;

  // The first name given is kept; a later non-empty name fills an empty one.
  Statement insert(db_, what);
  s = insert.Prepare(
      "INSERT INTO files(digest, size, name, first_stored) VALUES(?1, ?2, ?3, ?4)"
      " ON CONFLICT(digest) DO UPDATE SET name = excluded.name"
      "   WHERE files.name = '' AND excluded.name <> ''");
  if (!s.ok()) return s;
  insert.Bind(1, text).Bind(2, static_cast<int64_t>(size)).Bind(3, name).Bind(4, now_us);
  s = insert.Run();
  if (!s.ok()) return s;

  if (disk != nullptr) {
    s = WriteVerified(db_, text, now_us, disk, what);
    if (!s.ok()) return s;
  }
  int64_t principal_id = 0;
  s = CountUse(db_, kUsage, text, who, /*is_store=*/true, now_us, what, &principal_id);
  if (!s.ok()) return s;
  s = RecordOwnStore(db_, text, principal_id, name, now_us, what, own);
  if (!s.ok()) return s;
  return txn.Commit();
}

Status Catalog::RecordRecovered(const Digest& digest, uint64_t size, const DiskIdentity& disk, int64_t now_us) {
  Status s = CheckStoredSize(size, digest);
  if (!s.ok()) return s;
  const std::string text = digest.ToString();
  const std::string what = "record recovered file " + text;
  std::lock_guard<std::mutex> lock(mu_);
  Statement insert(db_, what);
  s = insert.Prepare(
      "INSERT INTO files(digest, size, first_stored, verified, disk_ino, disk_mtime, disk_ctime)"
      " VALUES(?1, ?2, ?3, ?3, ?4, ?5, ?6) ON CONFLICT(digest) DO NOTHING");
  if (!s.ok()) return s;
  insert.Bind(1, text)
      .Bind(2, static_cast<int64_t>(size))
      .Bind(3, now_us)
      .Bind(4, static_cast<int64_t>(disk.ino))
      .Bind(5, disk.mtime_ns)
      .Bind(6, disk.ctime_ns);
  return insert.Run();
}

Status Catalog::SetDiskIdentity(const Digest& digest, const DiskIdentity& disk) {
  const std::string text = digest.ToString();
  const std::string what = "record the inode of " + text;
  std::lock_guard<std::mutex> lock(mu_);
  Statement stmt(db_, what);
  Status s = stmt.Prepare("UPDATE files SET disk_ino = ?2, disk_mtime = ?3, disk_ctime = ?4 WHERE digest = ?1");
  if (!s.ok()) return s;
  stmt.Bind(1, text).Bind(2, static_cast<int64_t>(disk.ino)).Bind(3, disk.mtime_ns).Bind(4, disk.ctime_ns);
  s = stmt.Run();
  if (s.ok() && sqlite3_changes(db_) == 0) return NoSuchFile(text);
  return s;
}

Status Catalog::MarkDamaged(const Digest& digest, const std::string& problem) {
  const std::string text = digest.ToString();
  const std::string what = "mark " + text + " damaged";
  std::lock_guard<std::mutex> lock(mu_);
  ScopedFullSync full_sync(db_);  // a damaged file must not be served again after a crash
  Statement stmt(db_, what);
  Status s = stmt.Prepare("UPDATE files SET problem = ?2 WHERE digest = ?1");
  if (!s.ok()) return s;
  stmt.Bind(1, text).Bind(2, problem.empty() ? std::string("damaged") : problem);
  s = stmt.Run();
  if (s.ok() && sqlite3_changes(db_) == 0) return NoSuchFile(text);
  return s;
}

Status Catalog::MarkVerified(const Digest& digest, int64_t now_us, const DiskIdentity* disk) {
  const std::string text = digest.ToString();
  std::lock_guard<std::mutex> lock(mu_);
  Status s = WriteVerified(db_, text, now_us, disk, "mark " + text + " verified");
  if (s.ok() && sqlite3_changes(db_) == 0) return NoSuchFile(text);
  return s;
}

Status Catalog::MarkPrivateDamaged(int64_t id, const std::string& problem) {
  std::lock_guard<std::mutex> lock(mu_);
  ScopedFullSync full_sync(db_);
  Statement stmt(db_, "mark private entry " + std::to_string(id) + " damaged");
  Status s = stmt.Prepare("UPDATE private_files SET problem = ?2 WHERE id = ?1");
  if (!s.ok()) return s;
  stmt.Bind(1, id).Bind(2, problem.empty() ? std::string("damaged") : problem);
  s = stmt.Run();
  if (s.ok() && sqlite3_changes(db_) == 0) return NoSuchPrivateEntry(id);
  return s;
}

Status Catalog::MarkPrivateVerified(int64_t id, int64_t now_us) {
  std::lock_guard<std::mutex> lock(mu_);
  Statement stmt(db_, "mark private entry " + std::to_string(id) + " verified");
  Status s = stmt.Prepare("UPDATE private_files SET verified = ?2 WHERE id = ?1");
  if (!s.ok()) return s;
  stmt.Bind(1, id).Bind(2, now_us);
  s = stmt.Run();
  if (s.ok() && sqlite3_changes(db_) == 0) return NoSuchPrivateEntry(id);
  return s;
}

Status Catalog::SetPinned(const Digest& digest, bool pinned) {
  const std::string text = digest.ToString();
  const std::string what = std::string(pinned ? "pin " : "unpin ") + text;
  std::lock_guard<std::mutex> lock(mu_);
  Transaction txn(db_);
  Status s = txn.Begin(Transaction::kWrite);
  if (!s.ok()) return s;
  int changed = 0;
  for (const char* sql : {"UPDATE files SET pinned = ?2 WHERE digest = ?1",
                          "UPDATE private_files SET pinned = ?2 WHERE digest = ?1"}) {
    Statement stmt(db_, what);
    s = stmt.Prepare(sql);
    if (!s.ok()) return s;
    stmt.Bind(1, text).Bind(2, int64_t{pinned ? 1 : 0});
    s = stmt.Run();
    if (!s.ok()) return s;
    changed += sqlite3_changes(db_);
  }
  if (changed == 0) return NoSuchFile(text);
  return txn.Commit();
}

Status Catalog::GetTotals(CatalogTotals* totals) {
  std::lock_guard<std::mutex> lock(mu_);
  Transaction txn(db_);
  Status s = txn.Begin(Transaction::kRead);
  if (!s.ok()) return s;
  CatalogTotals out;
  {
    Statement stmt(db_, "sum the store's files");
    s = stmt.Prepare(
        "SELECT coalesce(sum(size), 0), count(*), count(CASE WHEN problem <> '' THEN 1 END),"
        "       count(CASE WHEN pinned THEN 1 END) FROM files");
    bool has_row = false;
    if (s.ok()) s = stmt.Step(&has_row);
    if (!s.ok()) return s;
    out.public_bytes = static_cast<uint64_t>(stmt.Int(0));
    out.files = ClampToU32(stmt.Int(1));
    out.damaged = ClampToU32(stmt.Int(2));
    out.pinned = ClampToU32(stmt.Int(3));
  }
  Statement stmt(db_, "sum the store's private files");
  s = stmt.Prepare("SELECT size, chunk_size, problem <> '', pinned FROM private_files");
  if (!s.ok()) return s;
  for (;;) {
    bool has_row = false;
    s = stmt.Step(&has_row);
    if (!s.ok()) return s;
    if (!has_row) break;
    out.private_sizes.emplace_back(static_cast<uint64_t>(stmt.Int(0)), ClampToU32(stmt.Int(1)));
    ++out.files;
    if (stmt.Int(2) != 0) ++out.damaged;
    if (stmt.Int(3) != 0) ++out.pinned;
  }
  s = txn.Commit();
  if (!s.ok()) return s;
  *totals = std::move(out);
  return Status::OK();
}

Status Catalog::RecordRead(const Digest& digest, const Principal& who, int64_t now_us) {
  const std::string text = digest.ToString();
  const std::string what = "record read of " + text;
  std::lock_guard<std::mutex> lock(mu_);
  Transaction txn(db_);
  Status s = txn.Begin(Transaction::kWrite);
  if (!s.ok()) return s;
  bool exists = false;
  s = FileExists(db_, text, what, &exists);
  if (!s.ok()) return s;
  if (!exists) return NoSuchFile(text);
  s = CountUse(db_, kUsage, text, who, /*is_store=*/false, now_us, what);
  if (!s.ok()) return s;
  return txn.Commit();
}

Status Catalog::GetFile(const Digest& digest, FileRecord* out) { return GetFileRow(digest, /*with_usage=*/true, out); }

Status Catalog::GetFileEntry(const Digest& digest, FileRecord* out) {
  return GetFileRow(digest, /*with_usage=*/false, out);
}

Status Catalog::GetFileRow(const Digest& digest, bool with_usage, FileRecord* out) {
  // Without usage: the row alone, the same columns as kSelectFiles gives,
  // with no attribution counted.
  static constexpr const char* kSelectEntry =
      "SELECT f.digest, f.size, f.name, f.private, f.first_stored, f.first_stored, 0, 0,"
      "       f.problem, f.verified, f.pinned, f.disk_ino, f.disk_mtime, f.disk_ctime"
      " FROM files f WHERE f.digest = ?1";
  const std::string text = digest.ToString();
  const std::string what = "get " + text;
  std::lock_guard<std::mutex> lock(mu_);
  Statement stmt(db_, what);
  Status s = stmt.Prepare(with_usage ? (std::string(kSelectFiles) + "WHERE f.digest = ?1 GROUP BY f.digest").c_str()
                                     : kSelectEntry);
  if (!s.ok()) return s;
  stmt.Bind(1, text);
  bool has_row = false;
  s = stmt.Step(&has_row);
  if (!s.ok()) return s;
  if (!has_row) return NoSuchFile(text);
  return ReadFileRecord(stmt, out);
}

Status Catalog::ListFiles(std::vector<FileRecord>* out) {
  std::lock_guard<std::mutex> lock(mu_);
  Statement stmt(db_, "list files");
  Status s =
      stmt.Prepare((std::string(kSelectFiles) + "GROUP BY f.digest ORDER BY f.digest").c_str());
  if (!s.ok()) return s;
  std::vector<FileRecord> files;
  s = CollectRows(&stmt, ReadFileRecord, &files);
  if (!s.ok()) return s;
  *out = std::move(files);
  return Status::OK();
}

Status Catalog::ListDigests(std::vector<Digest>* out) {
  std::lock_guard<std::mutex> lock(mu_);
  Statement stmt(db_, "list digests");
  Status s = stmt.Prepare("SELECT digest FROM files ORDER BY digest");
  if (!s.ok()) return s;
  std::vector<Digest> digests;
  s = CollectRows(&stmt, ReadDigest, &digests);
  if (!s.ok()) return s;
  *out = std::move(digests);
  return Status::OK();
}

Status Catalog::DeleteFile(const Digest& digest) {
  const std::string text = digest.ToString();
  const std::string what = "delete " + text;
  std::lock_guard<std::mutex> lock(mu_);
  // Durable: a record that came back after a power cut would name a blob
  // that is gone.
  ScopedFullSync full_sync(db_);
  Transaction txn(db_);
  Status s = txn.Begin(Transaction::kWrite);
  if (!s.ok()) return s;

  // Usage rows go by ON DELETE CASCADE; grants of "*" stay.
  s = RunWith(db_, what, kDeleteFile, text);
  if (!s.ok()) return s;
  if (sqlite3_changes(db_) == 0) return NoSuchFile(text);
  s = RunWith(db_, what, kDeleteGrantsOf, text);
  if (!s.ok()) return s;
  return txn.Commit();
}

Status Catalog::GetAccessFacts(const Digest& digest, const Principal& who, AccessFacts* out) {
  const std::string text = digest.ToString();
  std::lock_guard<std::mutex> lock(mu_);
  // One statement that always evaluates all the facts, so that the time
  // it takes says nothing about which of them holds.
  Statement stmt(db_, "access facts for " + text);
  Status s = stmt.Prepare(
      "SELECT"
      " EXISTS(SELECT 1 FROM files WHERE digest = ?1),"
      " (SELECT u.first_stored FROM principals p JOIN usage u ON u.principal = p.id"
      "        WHERE p.app = ?2 AND p.origin = ?3 AND u.digest = ?1 AND u.stored = 1),"
      " EXISTS(SELECT 1 FROM grants"
      "        WHERE app = ?2 AND origin = ?3 AND digest IN (?1, '*')),"
      " EXISTS(SELECT 1 FROM private_files f JOIN principals p ON p.id = f.owner"
      "        WHERE f.digest = ?1 AND p.app = ?2 AND p.origin = ?3),"
      " EXISTS(SELECT 1 FROM private_files WHERE digest = ?1),"
      " EXISTS(SELECT 1 FROM grants"
      "        WHERE app = ?2 AND origin = ?3 AND digest = ?1 AND explicit = 1),"
      " (SELECT u.name FROM principals p JOIN usage u ON u.principal = p.id"
      "        WHERE p.app = ?2 AND p.origin = ?3 AND u.digest = ?1 AND u.stored = 1)");
  if (!s.ok()) return s;
  stmt.Bind(1, text).Bind(2, who.app).Bind(3, who.origin);
  bool has_row = false;
  s = stmt.Step(&has_row);
  if (!s.ok()) return s;
  if (!has_row) return Status::IOError("catalog: access facts for " + text + ": no row");
  AccessFacts facts;
  facts.file_exists = stmt.Int(0) != 0;
  facts.stored_by_principal = !stmt.IsNull(1);
  if (facts.stored_by_principal) facts.own = OwnStore{stmt.Text(6), stmt.Int(1)};
  facts.granted = stmt.Int(2) != 0;
  facts.owns_private = stmt.Int(3) != 0;
  facts.private_exists = stmt.Int(4) != 0;
  facts.granted_explicitly = stmt.Int(5) != 0;
  *out = facts;
  return Status::OK();
}

Status Catalog::AddGrant(const Principal& who, const std::string& digest, int64_t now_us,
                         bool explicit_grant) {
  Status s = ValidateGrantDigest(digest);
  if (!s.ok()) return s;
  const std::string what = "grant " + digest;
  std::lock_guard<std::mutex> lock(mu_);
  Transaction txn(db_);
  s = txn.Begin(Transaction::kWrite);
  if (!s.ok()) return s;
  if (digest != "*") {
    bool exists = false;
    s = FileExists(db_, digest, what, &exists);
    if (s.ok() && !exists) s = PrivateFileExists(db_, digest, what, &exists);
    if (!s.ok()) return s;
    if (!exists) {
      return Status::NotFound("cannot grant " + digest + ": no such file in the catalog");
    }
  }
  // Granting again keeps the first grant's time; an explicit grant stays
  // explicit.
  Statement insert(db_, what);
  s = insert.Prepare(
      "INSERT INTO grants(app, origin, digest, created, explicit) VALUES(?1, ?2, ?3, ?4, ?5)"
      " ON CONFLICT(app, origin, digest) DO UPDATE SET explicit = max(explicit, excluded.explicit)");
  if (!s.ok()) return s;
  insert.Bind(1, who.app).Bind(2, who.origin).Bind(3, digest).Bind(4, now_us).Bind(5, int64_t{explicit_grant ? 1 : 0});
  s = insert.Run();
  if (!s.ok()) return s;
  return txn.Commit();
}

Status Catalog::RemoveGrant(const Principal& who, const std::string& digest) {
  Status s = ValidateGrantDigest(digest);
  if (!s.ok()) return s;
  const std::string what = "revoke " + digest;
  std::lock_guard<std::mutex> lock(mu_);
  // Durable: a revoked grant must not come back after a power cut.
  ScopedFullSync full_sync(db_);
  Transaction txn(db_);
  s = txn.Begin(Transaction::kWrite);
  if (!s.ok()) return s;
  Statement remove(db_, what);
  s = remove.Prepare("DELETE FROM grants WHERE app = ?1 AND origin = ?2 AND digest = ?3");
  if (!s.ok()) return s;
  remove.Bind(1, who.app).Bind(2, who.origin).Bind(3, digest);
  s = remove.Run();
  if (!s.ok()) return s;
  if (sqlite3_changes(db_) == 0) {
    return Status::NotFound("no grant of " + DescribeGrant(who, digest));
  }
  return txn.Commit();
}

Status Catalog::ListGrants(const std::optional<Digest>& digest, std::vector<GrantRecord>* out) {
  std::lock_guard<std::mutex> lock(mu_);
  Statement stmt(db_, "list grants");
  Status s;
  if (digest.has_value()) {
    s = stmt.Prepare(
        "SELECT app, origin, digest, created, explicit FROM grants WHERE digest IN (?1, '*')"
        " ORDER BY app, origin, digest");
    if (!s.ok()) return s;
    stmt.Bind(1, digest->ToString());
  } else {
    s = stmt.Prepare(
        "SELECT app, origin, digest, created, explicit FROM grants ORDER BY app, origin, digest");
    if (!s.ok()) return s;
  }
  std::vector<GrantRecord> grants;
  s = CollectRows(&stmt, ReadGrantRecord, &grants);
  if (!s.ok()) return s;
  *out = std::move(grants);
  return Status::OK();
}

Status Catalog::GetUsage(const Digest& digest, std::vector<UsageRecord>* out) {
  const std::string text = digest.ToString();
  std::lock_guard<std::mutex> lock(mu_);
  return ReadUsage(db_, kFileUsage, text, "usage of " + text, out);
}

}  // namespace costore

namespace costore {

Status Catalog::GetSetting(const std::string& key, std::string* value) {
  std::lock_guard<std::mutex> lock(mu_);
  Statement stmt(db_, "read setting " + key);
  Status s = stmt.Prepare("SELECT value FROM settings WHERE key = ?1");
  if (!s.ok()) return s;
  stmt.Bind(1, key);
  bool has_row = false;
  s = stmt.Step(&has_row);
  if (!s.ok()) return s;
  if (!has_row) return Status::NotFound("setting " + key + " is not set");
  *value = stmt.Text(0);
  return Status::OK();
}

Status Catalog::SetSetting(const std::string& key, const std::string& value) {
  std::lock_guard<std::mutex> lock(mu_);
  // Durable: settings change rarely, and some must never be lost (the
  // store id names the master key in the keyring).
  ScopedFullSync full_sync(db_);
  return WriteSetting(db_, key, value, "write setting " + key);
}

Status Catalog::HasOrigin(const std::string& origin, bool* recorded) {
  std::lock_guard<std::mutex> lock(mu_);
  return StepWith(db_, "look up origin " + Quote(origin),
                  "SELECT 1 WHERE EXISTS(SELECT 1 FROM principals WHERE origin = ?1)"
                  " OR EXISTS(SELECT 1 FROM grants WHERE origin = ?1)",
                  origin, recorded);
}

Status Catalog::ForgetOrigin(const std::string& origin, ForgetResult* result, bool dry_run) {
  const std::string what = "forget " + origin;
  std::lock_guard<std::mutex> lock(mu_);
  ScopedFullSync full_sync(db_);
  Transaction txn(db_);
  Status s = txn.Begin(Transaction::kWrite);
  if (!s.ok()) return s;
  ForgetResult out;

  // Files this origin stored that no principal of another origin stored:
  // nobody else claims them, so they go.
  Statement orphaned(db_, what);
  s = orphaned.Prepare(
      "SELECT DISTINCT u.digest FROM usage u JOIN principals p ON p.id = u.principal"
      " WHERE p.origin = ?1 AND u.stored = 1 AND NOT EXISTS("
      "   SELECT 1 FROM usage o JOIN principals q ON q.id = o.principal"
      "   WHERE o.digest = u.digest AND o.stored = 1 AND q.origin != ?1)"
      " ORDER BY u.digest");
  if (!s.ok()) return s;
  orphaned.Bind(1, origin);
  s = CollectRows(&orphaned, ReadDigest, &out.deleted_files);
  if (!s.ok()) return s;

  // Its usage goes first, so that the count includes the records of the
  // files deleted below (they would otherwise go silently, by cascade).
  s = RunWith(db_, what, "DELETE FROM usage WHERE principal IN (SELECT id FROM principals WHERE origin = ?1)",
              origin);
  if (!s.ok()) return s;
  out.usage_removed = static_cast<uint32_t>(sqlite3_changes(db_));

  for (const Digest& digest : out.deleted_files) {
    s = RunWith(db_, what, kDeleteFile, digest.ToString());
    if (!s.ok()) return s;
    s = RunWith(db_, what, kDeleteGrantsOf, digest.ToString());
    if (!s.ok()) return s;
  }

  // Private entries: the origin's own go with it (nobody else may claim
  // them), and so do its reads of entries it was granted.
  Statement owned(db_, what);
  s = PreparePrivate(&owned, std::string("WHERE p.origin = ?1 ") + kPrivateOrder);
  if (!s.ok()) return s;
  owned.Bind(1, origin);
  s = CollectRows(&owned, ReadPrivateRecord, &out.deleted_private);
  if (!s.ok()) return s;
  s = RunWith(db_, what,
              "DELETE FROM private_usage WHERE principal IN (SELECT id FROM principals WHERE origin = ?1)", origin);
  if (!s.ok()) return s;
  out.usage_removed += static_cast<uint32_t>(sqlite3_changes(db_));
  s = RunWith(db_, what, "DELETE FROM private_files WHERE owner IN (SELECT id FROM principals WHERE origin = ?1)",
              origin);
  if (!s.ok()) return s;
  for (const PrivateFileRecord& entry : out.deleted_private) {
    s = DropGrantsIfGone(db_, entry.digest.ToString(), what);
    if (!s.ok()) return s;
  }

  s = RunWith(db_, what, "DELETE FROM grants WHERE origin = ?1", origin);
  if (!s.ok()) return s;
  out.grants_removed = static_cast<uint32_t>(sqlite3_changes(db_));

  if (dry_run) {
    *result = std::move(out);
    return Status::OK();  // rolled back as txn ends
  }
  s = txn.Commit();
  if (!s.ok()) return s;
  *result = std::move(out);
  return Status::OK();
}

}  // namespace costore

// --- private entries ---------------------------------------------------------

namespace costore {

Status Catalog::RecordPrivateStore(const NewPrivateFile& file, int64_t now_us, bool* created) {
  Status s = CheckStoredSize(file.size, file.digest);
  if (!s.ok()) return s;
  const std::string text = file.digest.ToString();
  const std::string what = "record private store of " + text;
  std::lock_guard<std::mutex> lock(mu_);
  Transaction txn(db_);
  s = txn.Begin(Transaction::kWrite);
  if (!s.ok()) return s;
  int64_t owner = 0;
  s = UpsertPrincipal(db_, file.owner, what, &owner);
  if (!s.ok()) return s;
  // An existing entry keeps its bytes and key; only an empty name is filled.
  Statement insert(db_, what);
  s = insert.Prepare(
      "INSERT INTO private_files(digest, owner, size, name, first_stored, cipher, chunk_size, key_version,"
      "                          wrapped_key)"
      " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
      " ON CONFLICT(digest, owner) DO NOTHING");
  if (!s.ok()) return s;
  insert.Bind(1, text)
      .Bind(2, owner)
      .Bind(3, static_cast<int64_t>(file.size))
      .Bind(4, file.name)
      .Bind(5, now_us)
      .Bind(6, file.cipher)
      .Bind(7, int64_t{file.chunk_size})
      .Bind(8, int64_t{file.key_version})
      .BindBlob(9, file.wrapped_key);
  s = insert.Run();
  if (!s.ok()) return s;
  const bool is_new = sqlite3_changes(db_) > 0;
  Statement select(db_, what);
  s = select.Prepare("SELECT id FROM private_files WHERE digest = ?1 AND owner = ?2");
  if (!s.ok()) return s;
  select.Bind(1, text).Bind(2, owner);
  bool has_row = false;
  s = select.Step(&has_row);
  if (!s.ok()) return s;
  if (!has_row) return Status::IOError("catalog: " + what + ": entry vanished");
  const int64_t id = select.Int(0);
  if (!is_new && !file.name.empty()) {
    Statement name(db_, what);
    s = name.Prepare("UPDATE private_files SET name = ?2 WHERE id = ?1 AND name = ''");
    if (!s.ok()) return s;
    name.Bind(1, id).Bind(2, file.name);
    s = name.Run();
    if (!s.ok()) return s;
  }
  s = CountUse(db_, kPrivateUsage, id, file.owner, /*is_store=*/true, now_us, what);
  if (!s.ok()) return s;
  s = txn.Commit();
  if (!s.ok()) return s;
  *created = is_new;
  return Status::OK();
}

Status Catalog::GetPrivateFile(const Digest& digest, const Principal& owner, PrivateFileRecord* out) {
  const std::string text = digest.ToString();
  std::lock_guard<std::mutex> lock(mu_);
  Statement stmt(db_, "get private " + text);
  Status s = PreparePrivate(&stmt, "WHERE f.digest = ?1 AND p.app = ?2 AND p.origin = ?3 GROUP BY f.id");
  if (!s.ok()) return s;
  stmt.Bind(1, text).Bind(2, owner.app).Bind(3, owner.origin);
  return ReadOnePrivate(&stmt, NoPrivateEntryOf(text), out);
}

Status Catalog::GetPrivateFileById(int64_t id, PrivateFileRecord* out) {
  std::lock_guard<std::mutex> lock(mu_);
  Statement stmt(db_, "get private entry " + std::to_string(id));
  Status s = PreparePrivate(&stmt, "WHERE f.id = ?1 GROUP BY f.id");
  if (!s.ok()) return s;
  stmt.Bind(1, id);
  return ReadOnePrivate(&stmt, NoSuchPrivateEntry(id), out);
}

Status Catalog::ListPrivateFiles(const std::optional<Digest>& digest, std::vector<PrivateFileRecord>* out) {
  std::lock_guard<std::mutex> lock(mu_);
  Statement stmt(db_, "list private files");
  Status s = PreparePrivate(&stmt, std::string(digest.has_value() ? "WHERE f.digest = ?1 " : "") + kPrivateOrder);
  if (!s.ok()) return s;
  if (digest.has_value()) stmt.Bind(1, digest->ToString());
  std::vector<PrivateFileRecord> files;
  s = CollectRows(&stmt, ReadPrivateRecord, &files);
  if (!s.ok()) return s;
  *out = std::move(files);
  return Status::OK();
}

Status Catalog::RecordPrivateRead(int64_t id, const Principal& who, int64_t now_us) {
  const std::string what = "record read of private entry " + std::to_string(id);
  std::lock_guard<std::mutex> lock(mu_);
  Transaction txn(db_);
  Status s = txn.Begin(Transaction::kWrite);
  if (!s.ok()) return s;
  bool exists = false;
  s = StepWith(db_, what, "SELECT 1 FROM private_files WHERE id = ?1", id, &exists);
  if (!s.ok()) return s;
  if (!exists) return NoSuchPrivateEntry(id);
  s = CountUse(db_, kPrivateUsage, id, who, /*is_store=*/false, now_us, what);
  if (!s.ok()) return s;
  return txn.Commit();
}

Status Catalog::GetPrivateUsage(const Digest& digest, std::vector<UsageRecord>* out) {
  const std::string text = digest.ToString();
  std::lock_guard<std::mutex> lock(mu_);
  return ReadUsage(db_, kPrivateFileUsage, text, "private usage of " + text, out);
}

Status Catalog::DeletePrivateFiles(const Digest& digest, std::vector<PrivateFileRecord>* deleted) {
  const std::string text = digest.ToString();
  const std::string what = "delete private entries of " + text;
  std::lock_guard<std::mutex> lock(mu_);
  ScopedFullSync full_sync(db_);
  Transaction txn(db_);
  Status s = txn.Begin(Transaction::kWrite);
  if (!s.ok()) return s;
  Statement select(db_, what);
  s = PreparePrivate(&select, "WHERE f.digest = ?1 GROUP BY f.id ORDER BY f.id");
  if (!s.ok()) return s;
  select.Bind(1, text);
  std::vector<PrivateFileRecord> found;
  s = CollectRows(&select, ReadPrivateRecord, &found);
  if (!s.ok()) return s;
  s = RunWith(db_, what, "DELETE FROM private_files WHERE digest = ?1", text);
  if (!s.ok()) return s;
  s = DropGrantsIfGone(db_, text, what);
  if (!s.ok()) return s;
  s = txn.Commit();
  if (!s.ok()) return s;
  *deleted = std::move(found);
  return Status::OK();
}

Status Catalog::DeletePrivateFile(int64_t id) {
  const std::string what = "delete private entry " + std::to_string(id);
  std::lock_guard<std::mutex> lock(mu_);
  ScopedFullSync full_sync(db_);
  Transaction txn(db_);
  Status s = txn.Begin(Transaction::kWrite);
  if (!s.ok()) return s;
  Statement select(db_, what);
  s = select.Prepare("SELECT digest FROM private_files WHERE id = ?1");
  if (!s.ok()) return s;
  select.Bind(1, id);
  bool has_row = false;
  s = select.Step(&has_row);
  if (!s.ok()) return s;
  if (!has_row) return NoSuchPrivateEntry(id);
  const std::string digest = select.Text(0);
  s = RunWith(db_, what, "DELETE FROM private_files WHERE id = ?1", id);
  if (!s.ok()) return s;
  s = DropGrantsIfGone(db_, digest, what);
  if (!s.ok()) return s;
  return txn.Commit();
}

Status Catalog::CountPrivateFiles(uint32_t* total) {
  std::lock_guard<std::mutex> lock(mu_);
  Statement stmt(db_, "count private files");
  Status s = stmt.Prepare("SELECT count(*) FROM private_files");
  bool has_row = false;
  if (s.ok()) s = stmt.Step(&has_row);
  if (!s.ok()) return s;
  *total = has_row ? ClampToU32(stmt.Int(0)) : 0;
  return Status::OK();
}

Status Catalog::CountPrivateFilesNotAt(uint32_t version, uint32_t* count) {
  std::lock_guard<std::mutex> lock(mu_);
  Statement stmt(db_, "count private files to rewrap");
  Status s = stmt.Prepare("SELECT count(*) FROM private_files WHERE key_version != ?1");
  if (!s.ok()) return s;
  stmt.Bind(1, int64_t{version});
  bool has_row = false;
  s = stmt.Step(&has_row);
  if (!s.ok()) return s;
  *count = has_row ? ClampToU32(stmt.Int(0)) : 0;
  return Status::OK();
}

Status Catalog::RewrapPrivateKey(int64_t id, uint32_t from_version, uint32_t to_version, const std::string& wrapped,
                                 bool* updated) {
  const std::string what = "rewrap the key of private entry " + std::to_string(id);
  std::lock_guard<std::mutex> lock(mu_);
  Statement stmt(db_, what);
  Status s = stmt.Prepare("UPDATE private_files SET wrapped_key = ?3, key_version = ?4 WHERE id = ?1 AND key_version = ?2");
  if (!s.ok()) return s;
  stmt.Bind(1, id).Bind(2, int64_t{from_version}).BindBlob(3, wrapped).Bind(4, int64_t{to_version});
  s = stmt.Run();
  if (!s.ok()) return s;
  *updated = sqlite3_changes(db_) > 0;
  return Status::OK();
}

Status Catalog::SetMasterKeyVersion(uint32_t version) {
  const std::string what = "set the master key version";
  std::lock_guard<std::mutex> lock(mu_);
  // Durable: which key wraps the data keys must never go back.
  ScopedFullSync full_sync(db_);
  Transaction txn(db_);
  Status s = txn.Begin(Transaction::kWrite);
  if (s.ok()) s = WriteSetting(db_, kMasterKeyVersionSetting, std::to_string(version), what);
  if (s.ok()) s = RemoveSetting(db_, kRekeyTargetSetting, what);
  if (!s.ok()) return s;
  return txn.Commit();
}

Status Catalog::BeginRekey(uint32_t target) {
  const std::string what = "begin a rekey";
  std::lock_guard<std::mutex> lock(mu_);
  ScopedFullSync full_sync(db_);
  Transaction txn(db_);
  Status s = txn.Begin(Transaction::kWrite);
  if (s.ok()) s = WriteSetting(db_, kRekeyTargetSetting, std::to_string(target), what);
  if (!s.ok()) return s;
  return txn.Commit();
}

Status Catalog::FinishRekey(uint32_t target, bool* finished) {
  const std::string what = "finish a rekey";
  std::lock_guard<std::mutex> lock(mu_);
  // Durable, and it makes every rewrap committed before it durable too (a
  // commit with synchronous=FULL syncs the whole WAL): the old key may be
  // dropped from the keyring only after this.
  ScopedFullSync full_sync(db_);
  Transaction txn(db_);
  Status s = txn.Begin(Transaction::kWrite);
  if (!s.ok()) return s;
  Statement left(db_, what);
  s = left.Prepare("SELECT EXISTS(SELECT 1 FROM private_files WHERE key_version != ?1)");
  if (!s.ok()) return s;
  left.Bind(1, int64_t{target});
  bool has_row = false;
  s = left.Step(&has_row);
  if (!s.ok()) return s;
  if (has_row && left.Int(0) != 0) {
    *finished = false;
    return Status::OK();  // rolls back an empty transaction
  }
  s = WriteSetting(db_, kMasterKeyVersionSetting, std::to_string(target), what);
  if (s.ok()) s = RemoveSetting(db_, kRekeyTargetSetting, what);
  if (s.ok()) s = txn.Commit();
  if (!s.ok()) return s;
  *finished = true;
  return Status::OK();
}

}  // namespace costore
