// Catalog: what the store holds and who used it, in one SQLite database
// (WAL mode) at <root>/catalog.db.
//
//   files(digest, size, name, first_stored, private)
//   principals(id, app, origin)
//   usage(digest, principal, stored, stores, reads, first_used, last_used)
//   grants(app, origin, digest or '*', created)
//   settings(key, value)
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

struct FileRecord {
  Digest digest;
  uint64_t size = 0;
  std::string name;
  bool is_private = false;
  int64_t first_stored_us = 0;
  int64_t last_used_us = 0;  // last store or read by anyone
  uint32_t stored_by = 0;    // principals that stored it
  uint32_t used_by = 0;      // principals that stored or read it
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
};

// What the access rule needs to know about one (file, principal) pair,
// gathered by one query so that a refusal and a miss cost the same.
struct AccessFacts {
  bool file_exists = false;
  bool stored_by_principal = false;
  bool granted = false;  // a grant for this file or for "*"
};

struct ForgetResult {
  uint32_t grants_removed = 0;
  uint32_t usage_removed = 0;        // usage records (stores and reads) removed
  std::vector<Digest> deleted_files;  // records removed; the caller removes the bytes
};

class Catalog {
 public:
  // Opens or creates the database, enables WAL, migrates the schema.
  static Status Open(const std::string& path, std::unique_ptr<Catalog>* out);
  ~Catalog();

  // Adds the file if new (keeping the first name given; a later non-empty
  // name fills an empty one) and counts a store by `who`.
  Status RecordStore(const Digest& digest, uint64_t size, const std::string& name,
                     const Principal& who, int64_t now_us);
  // Counts a read by `who`. NotFound if the file is not recorded.
  Status RecordRead(const Digest& digest, const Principal& who, int64_t now_us);

  Status GetFile(const Digest& digest, FileRecord* out);  // NotFound if absent
  Status ListFiles(std::vector<FileRecord>* out);         // ordered by digest
  Status ListDigests(std::vector<Digest>* out);
  // Removes the file, its usage and every grant naming it. NotFound if absent.
  Status DeleteFile(const Digest& digest);

  Status GetAccessFacts(const Digest& digest, const Principal& who, AccessFacts* out);

  // `digest` is "sha256:..." or "*". Granting twice is OK.
  Status AddGrant(const Principal& who, const std::string& digest, int64_t now_us);
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
  Status ForgetOrigin(const std::string& origin, ForgetResult* result);

  // The user's settings, as text. NotFound when never set.
  Status GetSetting(const std::string& key, std::string* value);
  Status SetSetting(const std::string& key, const std::string& value);

 private:
  explicit Catalog(sqlite3* db);
  std::mutex mu_;
  sqlite3* db_;
};

}  // namespace costore
