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

#include "daemon/engine/quote.h"

namespace costore {
namespace {

constexpr int kBusyTimeoutMs = 5000;
constexpr mode_t kFileMode = 0600;

// kMigrations[v] brings a database from schema version v to v + 1, inside
// the migration transaction. A released entry is never edited: a change to
// the schema is a new entry, so that every existing database can follow.
constexpr const char* kMigrations[] = {
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
    std::string side = path + suffix;
    if (::chmod(side.c_str(), kFileMode) != 0 && errno != ENOENT) {
      return Status::FromErrno("catalog: chmod " + side, errno);
    }
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
    s = Exec(db, kMigrations[v], "migrate " + path + " to schema version " + std::to_string(v + 1));
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

Status NoSuchFile(const Digest& digest) {
  return Status::NotFound("no file " + digest.ToString() + " in the catalog");
}

Status FileExists(sqlite3* db, const std::string& digest, const std::string& what, bool* exists) {
  Statement stmt(db, what);
  Status s = stmt.Prepare("SELECT 1 FROM files WHERE digest = ?1");
  if (!s.ok()) return s;
  stmt.Bind(1, digest);
  return stmt.Step(exists);
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

// Counts one store or one read of `digest` by `who` at `now_us`.
Status CountUse(sqlite3* db, const std::string& digest, const Principal& who, bool is_store,
                int64_t now_us, const std::string& what) {
  int64_t principal_id = 0;
  Status s = UpsertPrincipal(db, who, what, &principal_id);
  if (!s.ok()) return s;
  Statement upsert(db, what);
  s = upsert.Prepare(
      "INSERT INTO usage(digest, principal, stored, stores, reads, first_used, last_used)"
      " VALUES(?1, ?2, ?3, ?3, ?4, ?5, ?5)"
      " ON CONFLICT(digest, principal) DO UPDATE SET"
      "   stored = max(stored, excluded.stored),"
      "   stores = stores + excluded.stores,"
      "   reads = reads + excluded.reads,"
      "   last_used = excluded.last_used");
  if (!s.ok()) return s;
  upsert.Bind(1, digest)
      .Bind(2, principal_id)
      .Bind(3, int64_t{is_store ? 1 : 0})
      .Bind(4, int64_t{is_store ? 0 : 1})
      .Bind(5, now_us);
  return upsert.Run();
}

// Columns: digest, size, name, private, first_stored, last_used, stored_by,
// used_by. A file nobody is recorded as using (none today, but usage rows
// may be pruned one day) was last used when it was stored.
constexpr const char* kSelectFiles =
    "SELECT f.digest, f.size, f.name, f.private, f.first_stored,"
    "       coalesce(max(u.last_used), f.first_stored),"
    "       count(CASE WHEN u.stored THEN 1 END),"
    "       count(u.principal)"
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
  *out = std::move(record);
  return Status::OK();
}

}  // namespace

Status Catalog::Open(const std::string& path, std::unique_ptr<Catalog>* out) {
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
                            const Principal& who, int64_t now_us) {
  if (size > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return Status::InvalidArgument("size " + std::to_string(size) + " of " + digest.ToString() +
                                   " is too large");
  }
  const std::string text = digest.ToString();
  const std::string what = "record store of " + text;
  std::lock_guard<std::mutex> lock(mu_);
  Transaction txn(db_);
  Status s = txn.Begin(Transaction::kWrite);
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

  s = CountUse(db_, text, who, /*is_store=*/true, now_us, what);
  if (!s.ok()) return s;
  return txn.Commit();
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
  if (!exists) return NoSuchFile(digest);
  s = CountUse(db_, text, who, /*is_store=*/false, now_us, what);
  if (!s.ok()) return s;
  return txn.Commit();
}

Status Catalog::GetFile(const Digest& digest, FileRecord* out) {
  const std::string text = digest.ToString();
  const std::string what = "get " + text;
  std::lock_guard<std::mutex> lock(mu_);
  Statement stmt(db_, what);
  Status s =
      stmt.Prepare((std::string(kSelectFiles) + "WHERE f.digest = ?1 GROUP BY f.digest").c_str());
  if (!s.ok()) return s;
  stmt.Bind(1, text);
  bool has_row = false;
  s = stmt.Step(&has_row);
  if (!s.ok()) return s;
  if (!has_row) return NoSuchFile(digest);
  return ReadFileRecord(stmt, out);
}

Status Catalog::ListFiles(std::vector<FileRecord>* out) {
  std::lock_guard<std::mutex> lock(mu_);
  Statement stmt(db_, "list files");
  Status s =
      stmt.Prepare((std::string(kSelectFiles) + "GROUP BY f.digest ORDER BY f.digest").c_str());
  if (!s.ok()) return s;
  std::vector<FileRecord> files;
  for (;;) {
    bool has_row = false;
    s = stmt.Step(&has_row);
    if (!s.ok()) return s;
    if (!has_row) break;
    FileRecord record;
    s = ReadFileRecord(stmt, &record);
    if (!s.ok()) return s;
    files.push_back(std::move(record));
  }
  *out = std::move(files);
  return Status::OK();
}

Status Catalog::ListDigests(std::vector<Digest>* out) {
  std::lock_guard<std::mutex> lock(mu_);
  Statement stmt(db_, "list digests");
  Status s = stmt.Prepare("SELECT digest FROM files ORDER BY digest");
  if (!s.ok()) return s;
  std::vector<Digest> digests;
  for (;;) {
    bool has_row = false;
    s = stmt.Step(&has_row);
    if (!s.ok()) return s;
    if (!has_row) break;
    Digest digest;
    s = ParseStoredDigest(stmt.Text(0), &digest);
    if (!s.ok()) return s;
    digests.push_back(digest);
  }
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
  Statement delete_file(db_, what);
  s = delete_file.Prepare("DELETE FROM files WHERE digest = ?1");
  if (!s.ok()) return s;
  delete_file.Bind(1, text);
  s = delete_file.Run();
  if (!s.ok()) return s;
  if (sqlite3_changes(db_) == 0) return NoSuchFile(digest);

  Statement delete_grants(db_, what);
  s = delete_grants.Prepare("DELETE FROM grants WHERE digest = ?1");
  if (!s.ok()) return s;
  delete_grants.Bind(1, text);
  s = delete_grants.Run();
  if (!s.ok()) return s;
  return txn.Commit();
}

Status Catalog::GetAccessFacts(const Digest& digest, const Principal& who, AccessFacts* out) {
  const std::string text = digest.ToString();
  std::lock_guard<std::mutex> lock(mu_);
  // One statement that always evaluates all three facts, so that the time
  // it takes says nothing about which of them holds.
  Statement stmt(db_, "access facts for " + text);
  Status s = stmt.Prepare(
      "SELECT"
      " EXISTS(SELECT 1 FROM files WHERE digest = ?1),"
      " EXISTS(SELECT 1 FROM principals p JOIN usage u ON u.principal = p.id"
      "        WHERE p.app = ?2 AND p.origin = ?3 AND u.digest = ?1 AND u.stored = 1),"
      " EXISTS(SELECT 1 FROM grants"
      "        WHERE app = ?2 AND origin = ?3 AND digest IN (?1, '*'))");
  if (!s.ok()) return s;
  stmt.Bind(1, text).Bind(2, who.app).Bind(3, who.origin);
  bool has_row = false;
  s = stmt.Step(&has_row);
  if (!s.ok()) return s;
  if (!has_row) return Status::IOError("catalog: access facts for " + text + ": no row");
  AccessFacts facts;
  facts.file_exists = stmt.Int(0) != 0;
  facts.stored_by_principal = stmt.Int(1) != 0;
  facts.granted = stmt.Int(2) != 0;
  *out = facts;
  return Status::OK();
}

Status Catalog::AddGrant(const Principal& who, const std::string& digest, int64_t now_us) {
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
    if (!s.ok()) return s;
    if (!exists) {
      return Status::NotFound("cannot grant " + digest + ": no such file in the catalog");
    }
  }
  // Granting again keeps the first grant's time.
  Statement insert(db_, what);
  s = insert.Prepare(
      "INSERT INTO grants(app, origin, digest, created) VALUES(?1, ?2, ?3, ?4)"
      " ON CONFLICT(app, origin, digest) DO NOTHING");
  if (!s.ok()) return s;
  insert.Bind(1, who.app).Bind(2, who.origin).Bind(3, digest).Bind(4, now_us);
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
        "SELECT app, origin, digest, created FROM grants WHERE digest IN (?1, '*')"
        " ORDER BY app, origin, digest");
    if (!s.ok()) return s;
    stmt.Bind(1, digest->ToString());
  } else {
    s = stmt.Prepare(
        "SELECT app, origin, digest, created FROM grants ORDER BY app, origin, digest");
    if (!s.ok()) return s;
  }
  std::vector<GrantRecord> grants;
  for (;;) {
    bool has_row = false;
    s = stmt.Step(&has_row);
    if (!s.ok()) return s;
    if (!has_row) break;
    GrantRecord grant;
    grant.principal.app = stmt.Text(0);
    grant.principal.origin = stmt.Text(1);
    grant.digest = stmt.Text(2);
    grant.created_us = stmt.Int(3);
    grants.push_back(std::move(grant));
  }
  *out = std::move(grants);
  return Status::OK();
}

Status Catalog::GetUsage(const Digest& digest, std::vector<UsageRecord>* out) {
  const std::string text = digest.ToString();
  const std::string what = "usage of " + text;
  std::lock_guard<std::mutex> lock(mu_);
  Transaction txn(db_);
  Status s = txn.Begin(Transaction::kRead);
  if (!s.ok()) return s;
  bool exists = false;
  s = FileExists(db_, text, what, &exists);
  if (!s.ok()) return s;
  if (!exists) return NoSuchFile(digest);

  Statement stmt(db_, what);
  s = stmt.Prepare(
      "SELECT p.app, p.origin, u.stored, u.stores, u.reads, u.first_used, u.last_used"
      " FROM usage u JOIN principals p ON p.id = u.principal"
      " WHERE u.digest = ?1"
      " ORDER BY u.first_used, p.app, p.origin");
  if (!s.ok()) return s;
  stmt.Bind(1, text);
  std::vector<UsageRecord> usage;
  for (;;) {
    bool has_row = false;
    s = stmt.Step(&has_row);
    if (!s.ok()) return s;
    if (!has_row) break;
    UsageRecord record;
    record.principal.app = stmt.Text(0);
    record.principal.origin = stmt.Text(1);
    record.stored = stmt.Int(2) != 0;
    record.stores = ClampToU32(stmt.Int(3));
    record.reads = ClampToU32(stmt.Int(4));
    record.first_used_us = stmt.Int(5);
    record.last_used_us = stmt.Int(6);
    usage.push_back(std::move(record));
  }
  // Read-only: ending it either way is the same. Commit, so that an error
  // here is seen rather than dropped.
  s = txn.Commit();
  if (!s.ok()) return s;
  *out = std::move(usage);
  return Status::OK();
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
  Statement stmt(db_, "write setting " + key);
  Status s = stmt.Prepare(
      "INSERT INTO settings(key, value) VALUES(?1, ?2)"
      " ON CONFLICT(key) DO UPDATE SET value = excluded.value");
  if (!s.ok()) return s;
  stmt.Bind(1, key).Bind(2, value);
  return stmt.Run();
}

Status Catalog::ForgetOrigin(const std::string& origin, ForgetResult* result) {
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
  for (;;) {
    bool has_row = false;
    s = orphaned.Step(&has_row);
    if (!s.ok()) return s;
    if (!has_row) break;
    Digest digest;
    s = ParseStoredDigest(orphaned.Text(0), &digest);
    if (!s.ok()) return s;
    out.deleted_files.push_back(digest);
  }

  for (const Digest& digest : out.deleted_files) {
    Statement delete_file(db_, what);
    s = delete_file.Prepare("DELETE FROM files WHERE digest = ?1");
    if (!s.ok()) return s;
    delete_file.Bind(1, digest.ToString());
    s = delete_file.Run();
    if (!s.ok()) return s;
    Statement delete_grants(db_, what);
    s = delete_grants.Prepare("DELETE FROM grants WHERE digest = ?1");
    if (!s.ok()) return s;
    delete_grants.Bind(1, digest.ToString());
    s = delete_grants.Run();
    if (!s.ok()) return s;
  }

  Statement claims(db_, what);
  s = claims.Prepare(
      "DELETE FROM usage WHERE principal IN (SELECT id FROM principals WHERE origin = ?1)");
  if (!s.ok()) return s;
  claims.Bind(1, origin);
  s = claims.Run();
  if (!s.ok()) return s;
  out.usage_removed = static_cast<uint32_t>(sqlite3_changes(db_));

  Statement grants(db_, what);
  s = grants.Prepare("DELETE FROM grants WHERE origin = ?1");
  if (!s.ok()) return s;
  grants.Bind(1, origin);
  s = grants.Run();
  if (!s.ok()) return s;
  out.grants_removed = static_cast<uint32_t>(sqlite3_changes(db_));

  s = txn.Commit();
  if (!s.ok()) return s;
  *result = std::move(out);
  return Status::OK();
}

}  // namespace costore
