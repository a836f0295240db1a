#include "daemon/engine/catalog.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <sqlite3.h>
#include <sys/stat.h>

#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "tests/daemon/engine/test_util.h"

namespace costore {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

#define ASSERT_OK(expr)                                                \
  do {                                                                 \
    Status assert_ok_status = (expr);                                  \
    ASSERT_TRUE(assert_ok_status.ok()) << assert_ok_status.ToString(); \
  } while (0)
#define EXPECT_OK(expr)                                                \
  do {                                                                 \
    Status expect_ok_status = (expr);                                  \
    EXPECT_TRUE(expect_ok_status.ok()) << expect_ok_status.ToString(); \
  } while (0)

// A digest whose 32 bytes are all `fill`: digests sort as their fill does.
Digest MakeDigest(uint8_t fill) {
  std::array<uint8_t, Digest::kSize> bytes;
  bytes.fill(fill);
  return Digest(bytes);
}

const Digest kA = MakeDigest(0x0a);
const Digest kB = MakeDigest(0x0b);
const Digest kC = MakeDigest(0x0c);

const Principal kCurl{"/usr/bin/curl", ""};
const Principal kFirefoxHf{"/usr/lib/firefox/firefox", "https://huggingface.co"};
const Principal kFirefoxEvil{"/usr/lib/firefox/firefox", "https://evil.example"};
const Principal kFlatpak{"flatpak:org.example.App", ""};

// Runs `sql` on its own connection to the database at `path` and returns the
// first column of the first row as text ("" if none): what another process
// would see.
std::string QueryText(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  std::string result;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK) {
      if (sqlite3_step(stmt) == SQLITE_ROW && sqlite3_column_text(stmt, 0) != nullptr) {
        result = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
      }
    } else {
      ADD_FAILURE() << sql << ": " << sqlite3_errmsg(db);
    }
    sqlite3_finalize(stmt);
  } else {
    ADD_FAILURE() << "open " << path << ": " << sqlite3_errmsg(db);
  }
  sqlite3_close(db);
  return result;
}

mode_t FileMode(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

class CatalogTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_OK(Catalog::Open(path(), &catalog_)); }

  std::string path() const { return dir_.Join("catalog.db"); }

  void Reopen() {
    catalog_.reset();
    ASSERT_OK(Catalog::Open(path(), &catalog_));
  }

  FileRecord Get(const Digest& digest) {
    FileRecord record;
    EXPECT_OK(catalog_->GetFile(digest, &record));
    return record;
  }

  std::vector<UsageRecord> Usage(const Digest& digest) {
    std::vector<UsageRecord> usage;
    EXPECT_OK(catalog_->GetUsage(digest, &usage));
    return usage;
  }

  std::vector<GrantRecord> Grants(const std::optional<Digest>& digest = std::nullopt) {
    std::vector<GrantRecord> grants;
    EXPECT_OK(catalog_->ListGrants(digest, &grants));
    return grants;
  }

  AccessFacts Facts(const Digest& digest, const Principal& who) {
    AccessFacts facts;
    EXPECT_OK(catalog_->GetAccessFacts(digest, who, &facts));
    return facts;
  }

  test::TempDir dir_;
  std::unique_ptr<Catalog> catalog_;
};

// gmock-friendly views of the records.
MATCHER_P3(IsGrant, principal, digest, created_us, "") {
  return arg.principal == principal && arg.digest == digest && arg.created_us == created_us;
}
MATCHER_P3(IsFacts, exists, stored_by_principal, granted, "") {
  *result_listener << "{exists " << arg.file_exists << ", stored " << arg.stored_by_principal
                   << ", granted " << arg.granted << "}";
  return arg.file_exists == exists && arg.stored_by_principal == stored_by_principal &&
         arg.granted == granted;
}

// --- Open, schema, file ------------------------------------------------------

TEST_F(CatalogTest, NewCatalogIsEmpty) {
  std::vector<FileRecord> files;
  ASSERT_OK(catalog_->ListFiles(&files));
  EXPECT_THAT(files, IsEmpty());
  std::vector<Digest> digests;
  ASSERT_OK(catalog_->ListDigests(&digests));
  EXPECT_THAT(digests, IsEmpty());
  EXPECT_THAT(Grants(), IsEmpty());
}

TEST_F(CatalogTest, SchemaIsVersionOneWithPrivateColumn) {
  EXPECT_EQ(QueryText(path(), "PRAGMA user_version"), "6");
  // Later private files rely on this column existing from version 1.
  EXPECT_EQ(
      QueryText(path(), "SELECT count(*) FROM pragma_table_info('files') WHERE name = 'private'"),
      "1");
}

TEST_F(CatalogTest, WalModeIsOn) { EXPECT_EQ(QueryText(path(), "PRAGMA journal_mode"), "wal"); }

TEST_F(CatalogTest, DatabaseFilesAreOwnerOnly) {
  ASSERT_OK(catalog_->RecordStore(kA, 1, "a", kCurl, 1));
  EXPECT_EQ(FileMode(path()), 0600u);
  // While open after a write, the WAL exists and has the database's mode.
  ASSERT_EQ(FileMode(path() + "-wal") & 0777, 0600u);
  EXPECT_EQ(FileMode(path() + "-shm"), 0600u);
}

TEST(CatalogOpenTest, CreatesTheFileOwnerOnlyWhateverTheUmask) {
  test::TempDir dir;
  mode_t old_umask = ::umask(0);
  std::unique_ptr<Catalog> catalog;
  Status s = Catalog::Open(dir.Join("catalog.db"), &catalog);
  ::umask(old_umask);
  ASSERT_OK(s);
  EXPECT_EQ(FileMode(dir.Join("catalog.db")), 0600u);
}

TEST(CatalogOpenTest, TightensAnExistingFile) {
  test::TempDir dir;
  std::string path = dir.Join("catalog.db");
  test::WriteFile(path, "");
  ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
  std::unique_ptr<Catalog> catalog;
  ASSERT_OK(Catalog::Open(path, &catalog));
  EXPECT_EQ(FileMode(path), 0600u);
}

TEST(CatalogOpenTest, MissingDirectoryIsAnIOError) {
  test::TempDir dir;
  std::unique_ptr<Catalog> catalog;
  Status s = Catalog::Open(dir.Join("no/such/dir/catalog.db"), &catalog);
  EXPECT_EQ(s.code(), Code::kIOError) << s.ToString();
  EXPECT_THAT(s.message(), HasSubstr("no/such/dir/catalog.db"));
  EXPECT_EQ(catalog, nullptr);
}

TEST(CatalogOpenTest, NewerSchemaIsRefusedAndLeftUntouched) {
  test::TempDir dir;
  std::string path = dir.Join("catalog.db");
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "CREATE TABLE future(x); PRAGMA user_version = 99;", nullptr,
                           nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }
  std::string before = test::ReadFile(path);
  std::unique_ptr<Catalog> catalog;
  Status s = Catalog::Open(path, &catalog);
  EXPECT_EQ(s.code(), Code::kIOError) << s.ToString();
  EXPECT_THAT(s.message(), HasSubstr("schema version 99"));
  EXPECT_THAT(s.message(), HasSubstr("newer"));
  EXPECT_THAT(s.message(), HasSubstr(path));
  EXPECT_EQ(catalog, nullptr);
  // Not even switched to WAL.
  EXPECT_EQ(test::ReadFile(path), before);
  EXPECT_EQ(QueryText(path, "PRAGMA journal_mode"), "delete");
}

TEST(CatalogOpenTest, GarbageFileIsAnErrorNotACrash) {
  test::TempDir dir;
  std::string path = dir.Join("catalog.db");
  std::string garbage = test::RandomBytes(8192, 7);
  test::WriteFile(path, garbage);
  std::unique_ptr<Catalog> catalog;
  Status s = Catalog::Open(path, &catalog);
  EXPECT_EQ(s.code(), Code::kIOError) << s.ToString();
  EXPECT_THAT(s.message(), HasSubstr("not a database"));
  EXPECT_THAT(s.message(), HasSubstr(path));
  EXPECT_EQ(catalog, nullptr);
  EXPECT_EQ(test::ReadFile(path), garbage);
}

TEST(CatalogOpenTest, DamagedDatabaseIsAnErrorNotACrash) {
  test::TempDir dir;
  std::string path = dir.Join("catalog.db");
  {
    std::unique_ptr<Catalog> catalog;
    ASSERT_OK(Catalog::Open(path, &catalog));
    for (uint8_t i = 1; i <= 20; ++i) {
      ASSERT_OK(catalog->RecordStore(MakeDigest(i), i, "f", kCurl, i));
    }
  }  // closing checkpoints the WAL into the file
  // Keep SQLite's 100-byte header, destroy everything after it.
  std::string contents = test::ReadFile(path);
  ASSERT_GT(contents.size(), 4096u);
  std::string garbage = test::RandomBytes(contents.size() - 100, 3);
  contents.replace(100, garbage.size(), garbage);
  test::WriteFile(path, contents);

  std::unique_ptr<Catalog> catalog;
  Status s = Catalog::Open(path, &catalog);
  if (s.ok()) {
    std::vector<FileRecord> files;
    s = catalog->ListFiles(&files);
  }
  EXPECT_EQ(s.code(), Code::kIOError) << s.ToString();
  EXPECT_THAT(s.message(), HasSubstr("catalog: "));
}

TEST_F(CatalogTest, ReopenedCatalogHasTheSameData) {
  ASSERT_OK(catalog_->RecordStore(kA, 1000, "model.gguf", kCurl, 10));
  ASSERT_OK(catalog_->RecordStore(kB, 2000, "", kFirefoxHf, 20));
  ASSERT_OK(catalog_->RecordRead(kA, kFirefoxHf, 30));
  ASSERT_OK(catalog_->AddGrant(kFirefoxEvil, kA.ToString(), 40));
  ASSERT_OK(catalog_->AddGrant(kFlatpak, "*", 50));

  std::vector<FileRecord> files_before;
  ASSERT_OK(catalog_->ListFiles(&files_before));
  std::vector<UsageRecord> usage_before = Usage(kA);
  std::vector<GrantRecord> grants_before = Grants();

  Reopen();
  std::vector<FileRecord> files_after;
  ASSERT_OK(catalog_->ListFiles(&files_after));
  ASSERT_EQ(files_after.size(), files_before.size());
  for (size_t i = 0; i < files_after.size(); ++i) {
    const FileRecord& x = files_before[i];
    const FileRecord& y = files_after[i];
    EXPECT_EQ(x.digest, y.digest);
    EXPECT_EQ(x.size, y.size);
    EXPECT_EQ(x.name, y.name);
    EXPECT_EQ(x.first_stored_us, y.first_stored_us);
    EXPECT_EQ(x.last_used_us, y.last_used_us);
    EXPECT_EQ(x.stored_by, y.stored_by);
    EXPECT_EQ(x.used_by, y.used_by);
  }
  std::vector<UsageRecord> usage_after = Usage(kA);
  ASSERT_EQ(usage_after.size(), 2u);
  for (size_t i = 0; i < usage_after.size(); ++i) {
    EXPECT_EQ(usage_after[i].principal, usage_before[i].principal);
    EXPECT_EQ(usage_after[i].stores, usage_before[i].stores);
    EXPECT_EQ(usage_after[i].reads, usage_before[i].reads);
    EXPECT_EQ(usage_after[i].last_used_us, usage_before[i].last_used_us);
  }
  EXPECT_THAT(Grants(),
              ElementsAre(IsGrant(kFirefoxEvil, kA.ToString(), 40), IsGrant(kFlatpak, "*", 50)));
  EXPECT_EQ(grants_before.size(), 2u);
  EXPECT_THAT(Facts(kA, kFirefoxEvil), IsFacts(true, false, true));

  // And the reopened catalog writes.
  ASSERT_OK(catalog_->RecordRead(kA, kCurl, 60));
  EXPECT_EQ(Get(kA).last_used_us, 60);
}

// --- RecordStore, RecordRead, GetFile -----------------------------------------

TEST_F(CatalogTest, RecordStoreAddsTheFile) {
  ASSERT_OK(catalog_->RecordStore(kA, 123456789012, "llama.gguf", kCurl, 1000));
  FileRecord f = Get(kA);
  EXPECT_EQ(f.digest, kA);
  EXPECT_EQ(f.size, 123456789012u);  // above 4 GiB
  EXPECT_EQ(f.name, "llama.gguf");
  EXPECT_FALSE(f.is_private);
  EXPECT_EQ(f.first_stored_us, 1000);
  EXPECT_EQ(f.last_used_us, 1000);
  EXPECT_EQ(f.stored_by, 1u);
  EXPECT_EQ(f.used_by, 1u);
}

TEST_F(CatalogTest, TextRoundTripsExactly) {
  const std::string name = "mod\xc3\xa8le 'quoted' \"x\" %s;--.gguf";
  const Principal who{"/opt/App Dir/bin/app'; DROP TABLE files;--", "http://127.0.0.1:8080"};
  ASSERT_OK(catalog_->RecordStore(kA, 1, name, who, 1));
  EXPECT_EQ(Get(kA).name, name);
  std::vector<UsageRecord> usage = Usage(kA);
  ASSERT_EQ(usage.size(), 1u);
  EXPECT_EQ(usage[0].principal, who);
  EXPECT_THAT(Facts(kA, who), IsFacts(true, true, false));
}

TEST_F(CatalogTest, SizeBeyondInt64IsInvalid) {
  Status s = catalog_->RecordStore(kA, std::numeric_limits<uint64_t>::max(), "", kCurl, 1);
  EXPECT_EQ(s.code(), Code::kInvalidArgument) << s.ToString();
  FileRecord f;
  EXPECT_EQ(catalog_->GetFile(kA, &f).code(), Code::kNotFound);
}

TEST_F(CatalogTest, FirstNameIsKept) {
  ASSERT_OK(catalog_->RecordStore(kA, 10, "first.gguf", kCurl, 1));
  ASSERT_OK(catalog_->RecordStore(kA, 10, "second.gguf", kFirefoxHf, 2));
  ASSERT_OK(catalog_->RecordStore(kA, 10, "", kFlatpak, 3));
  FileRecord f = Get(kA);
  EXPECT_EQ(f.name, "first.gguf");
  EXPECT_EQ(f.first_stored_us, 1);
  EXPECT_EQ(f.size, 10u);
}

TEST_F(CatalogTest, LaterNameFillsAnEmptyOne) {
  ASSERT_OK(catalog_->RecordStore(kA, 10, "", kCurl, 1));
  EXPECT_EQ(Get(kA).name, "");
  ASSERT_OK(catalog_->RecordStore(kA, 10, "named.gguf", kFirefoxHf, 2));
  EXPECT_EQ(Get(kA).name, "named.gguf");
  ASSERT_OK(catalog_->RecordStore(kA, 10, "other.gguf", kFlatpak, 3));
  EXPECT_EQ(Get(kA).name, "named.gguf");
  EXPECT_EQ(Get(kA).first_stored_us, 1);
}

TEST_F(CatalogTest, StoresAreCountedPerPrincipal) {
  ASSERT_OK(catalog_->RecordStore(kA, 10, "a", kCurl, 100));
  ASSERT_OK(catalog_->RecordStore(kA, 10, "a", kCurl, 200));
  ASSERT_OK(catalog_->RecordStore(kA, 10, "a", kCurl, 300));
  std::vector<UsageRecord> usage = Usage(kA);
  ASSERT_EQ(usage.size(), 1u);
  EXPECT_EQ(usage[0].principal, kCurl);
  EXPECT_TRUE(usage[0].stored);
  EXPECT_EQ(usage[0].stores, 3u);
  EXPECT_EQ(usage[0].reads, 0u);
  EXPECT_EQ(usage[0].first_used_us, 100);
  EXPECT_EQ(usage[0].last_used_us, 300);
  FileRecord f = Get(kA);
  EXPECT_EQ(f.stored_by, 1u);
  EXPECT_EQ(f.used_by, 1u);
  EXPECT_EQ(f.first_stored_us, 100);
  EXPECT_EQ(f.last_used_us, 300);
}

TEST_F(CatalogTest, ReadsAreCountedPerPrincipal) {
  ASSERT_OK(catalog_->RecordStore(kA, 10, "a", kCurl, 100));
  ASSERT_OK(catalog_->RecordRead(kA, kFirefoxHf, 200));
  ASSERT_OK(catalog_->RecordRead(kA, kFirefoxHf, 300));
  ASSERT_OK(catalog_->RecordRead(kA, kCurl, 400));
  std::vector<UsageRecord> usage = Usage(kA);
  ASSERT_EQ(usage.size(), 2u);
  EXPECT_EQ(usage[0].principal, kCurl);
  EXPECT_TRUE(usage[0].stored);
  EXPECT_EQ(usage[0].stores, 1u);
  EXPECT_EQ(usage[0].reads, 1u);
  EXPECT_EQ(usage[0].last_used_us, 400);
  EXPECT_EQ(usage[1].principal, kFirefoxHf);
  EXPECT_FALSE(usage[1].stored);
  EXPECT_EQ(usage[1].stores, 0u);
  EXPECT_EQ(usage[1].reads, 2u);
  EXPECT_EQ(usage[1].first_used_us, 200);
  EXPECT_EQ(usage[1].last_used_us, 300);
  FileRecord f = Get(kA);
  EXPECT_EQ(f.stored_by, 1u);
  EXPECT_EQ(f.used_by, 2u);
  EXPECT_EQ(f.last_used_us, 400);
}

TEST_F(CatalogTest, StoreAfterReadMarksThePrincipalAsStorer) {
  ASSERT_OK(catalog_->RecordStore(kA, 10, "a", kCurl, 100));
  ASSERT_OK(catalog_->RecordRead(kA, kFirefoxHf, 200));
  EXPECT_THAT(Facts(kA, kFirefoxHf), IsFacts(true, false, false));
  ASSERT_OK(catalog_->RecordStore(kA, 10, "a", kFirefoxHf, 300));
  EXPECT_THAT(Facts(kA, kFirefoxHf), IsFacts(true, true, false));
  std::vector<UsageRecord> usage = Usage(kA);
  ASSERT_EQ(usage.size(), 2u);
  EXPECT_EQ(usage[1].principal, kFirefoxHf);
  EXPECT_TRUE(usage[1].stored);
  EXPECT_EQ(usage[1].stores, 1u);
  EXPECT_EQ(usage[1].reads, 1u);
  EXPECT_EQ(usage[1].first_used_us, 200);
  EXPECT_EQ(usage[1].last_used_us, 300);
  EXPECT_EQ(Get(kA).stored_by, 2u);
  // A later read does not unmark it.
  ASSERT_OK(catalog_->RecordRead(kA, kFirefoxHf, 400));
  EXPECT_THAT(Facts(kA, kFirefoxHf), IsFacts(true, true, false));
}

TEST_F(CatalogTest, ReadOfAbsentFileIsNotFoundAndRecordsNothing) {
  Status s = catalog_->RecordRead(kA, kCurl, 1);
  EXPECT_EQ(s.code(), Code::kNotFound) << s.ToString();
  EXPECT_THAT(s.message(), HasSubstr(kA.ToString()));
  FileRecord f;
  EXPECT_EQ(catalog_->GetFile(kA, &f).code(), Code::kNotFound);
  std::vector<UsageRecord> usage;
  EXPECT_EQ(catalog_->GetUsage(kA, &usage).code(), Code::kNotFound);
  EXPECT_EQ(QueryText(path(), "SELECT count(*) FROM usage"), "0");
}

TEST_F(CatalogTest, GetAbsentFileIsNotFound) {
  ASSERT_OK(catalog_->RecordStore(kA, 1, "", kCurl, 1));
  FileRecord f;
  Status s = catalog_->GetFile(kB, &f);
  EXPECT_EQ(s.code(), Code::kNotFound) << s.ToString();
  EXPECT_THAT(s.message(), HasSubstr(kB.ToString()));
}

TEST_F(CatalogTest, LastUsedFallsBackToFirstStored) {
  ASSERT_OK(catalog_->RecordStore(kA, 1, "", kCurl, 77));
  // No API removes usage alone; another connection stands in for a future
  // pruning of old usage rows.
  QueryText(path(), "DELETE FROM usage");
  FileRecord f = Get(kA);
  EXPECT_EQ(f.last_used_us, 77);
  EXPECT_EQ(f.stored_by, 0u);
  EXPECT_EQ(f.used_by, 0u);
}

TEST_F(CatalogTest, ListsAreOrderedByDigest) {
  ASSERT_OK(catalog_->RecordStore(kC, 3, "c", kCurl, 1));
  ASSERT_OK(catalog_->RecordStore(kA, 1, "a", kCurl, 2));
  ASSERT_OK(catalog_->RecordStore(kB, 2, "b", kFirefoxHf, 3));
  ASSERT_OK(catalog_->RecordRead(kB, kCurl, 4));
  std::vector<FileRecord> files;
  ASSERT_OK(catalog_->ListFiles(&files));
  ASSERT_EQ(files.size(), 3u);
  EXPECT_EQ(files[0].digest, kA);
  EXPECT_EQ(files[1].digest, kB);
  EXPECT_EQ(files[2].digest, kC);
  EXPECT_EQ(files[1].name, "b");
  EXPECT_EQ(files[1].size, 2u);
  EXPECT_EQ(files[1].stored_by, 1u);
  EXPECT_EQ(files[1].used_by, 2u);
  EXPECT_EQ(files[1].last_used_us, 4);
  std::vector<Digest> digests;
  ASSERT_OK(catalog_->ListDigests(&digests));
  EXPECT_THAT(digests, ElementsAre(kA, kB, kC));
}

// --- GetUsage ---------------------------------------------------------------

TEST_F(CatalogTest, UsageIsOrderedByFirstUseThenPrincipal) {
  const Principal b{"/usr/bin/b", ""};
  const Principal a_none{"/usr/bin/a", ""};
  const Principal a_x{"/usr/bin/a", "https://x.example"};
  const Principal a_y{"/usr/bin/a", "https://y.example"};
  ASSERT_OK(catalog_->RecordStore(kA, 1, "", b, 10));
  ASSERT_OK(catalog_->RecordRead(kA, a_y, 20));
  ASSERT_OK(catalog_->RecordRead(kA, a_x, 20));
  ASSERT_OK(catalog_->RecordStore(kA, 1, "", a_none, 20));
  ASSERT_OK(catalog_->RecordRead(kA, b, 30));  // a later use does not move b
  std::vector<UsageRecord> usage = Usage(kA);
  ASSERT_EQ(usage.size(), 4u);
  EXPECT_EQ(usage[0].principal, b);
  EXPECT_EQ(usage[1].principal, a_none);
  EXPECT_EQ(usage[2].principal, a_x);
  EXPECT_EQ(usage[3].principal, a_y);
}

TEST_F(CatalogTest, UsageIsPerFile) {
  ASSERT_OK(catalog_->RecordStore(kA, 1, "", kCurl, 1));
  ASSERT_OK(catalog_->RecordStore(kB, 1, "", kFirefoxHf, 2));
  std::vector<UsageRecord> usage = Usage(kB);
  ASSERT_EQ(usage.size(), 1u);
  EXPECT_EQ(usage[0].principal, kFirefoxHf);
}

TEST_F(CatalogTest, UsageOfAbsentFileIsNotFound) {
  std::vector<UsageRecord> usage;
  Status s = catalog_->GetUsage(kA, &usage);
  EXPECT_EQ(s.code(), Code::kNotFound) << s.ToString();
}

// --- DeleteFile ---------------------------------------------------------------

TEST_F(CatalogTest, DeleteRemovesFileUsageAndItsGrantsButNotStarGrants) {
  ASSERT_OK(catalog_->RecordStore(kA, 1, "a", kCurl, 1));
  ASSERT_OK(catalog_->RecordRead(kA, kFirefoxHf, 2));
  ASSERT_OK(catalog_->RecordStore(kB, 2, "b", kCurl, 3));
  ASSERT_OK(catalog_->AddGrant(kFirefoxEvil, kA.ToString(), 4));
  ASSERT_OK(catalog_->AddGrant(kFlatpak, kA.ToString(), 5));
  ASSERT_OK(catalog_->AddGrant(kFlatpak, kB.ToString(), 6));
  ASSERT_OK(catalog_->AddGrant(kFirefoxHf, "*", 7));

  ASSERT_OK(catalog_->DeleteFile(kA));

  FileRecord f;
  EXPECT_EQ(catalog_->GetFile(kA, &f).code(), Code::kNotFound);
  std::vector<UsageRecord> usage;
  EXPECT_EQ(catalog_->GetUsage(kA, &usage).code(), Code::kNotFound);
  EXPECT_EQ(QueryText(path(), "SELECT count(*) FROM usage WHERE digest = '" + kA.ToString() + "'"),
            "0");
  EXPECT_THAT(Grants(),
              ElementsAre(IsGrant(kFirefoxHf, "*", 7), IsGrant(kFlatpak, kB.ToString(), 6)));
  std::vector<Digest> digests;
  ASSERT_OK(catalog_->ListDigests(&digests));
  EXPECT_THAT(digests, ElementsAre(kB));
  EXPECT_EQ(Get(kB).used_by, 1u);
  EXPECT_THAT(Facts(kA, kCurl), IsFacts(false, false, false));

  // Stored again, it starts afresh: no old owner, counts or grants.
  ASSERT_OK(catalog_->RecordStore(kA, 1, "again", kFirefoxHf, 10));
  FileRecord again = Get(kA);
  EXPECT_EQ(again.name, "again");
  EXPECT_EQ(again.first_stored_us, 10);
  EXPECT_EQ(again.stored_by, 1u);
  EXPECT_EQ(again.used_by, 1u);
  EXPECT_THAT(Facts(kA, kCurl), IsFacts(true, false, false));
  EXPECT_THAT(Facts(kA, kFirefoxEvil), IsFacts(true, false, false));
  std::vector<UsageRecord> fresh = Usage(kA);
  ASSERT_EQ(fresh.size(), 1u);
  EXPECT_EQ(fresh[0].stores, 1u);
  EXPECT_EQ(fresh[0].reads, 0u);
}

TEST_F(CatalogTest, DeleteAbsentFileIsNotFound) {
  ASSERT_OK(catalog_->RecordStore(kA, 1, "", kCurl, 1));
  Status s = catalog_->DeleteFile(kB);
  EXPECT_EQ(s.code(), Code::kNotFound) << s.ToString();
  ASSERT_OK(catalog_->DeleteFile(kA));
  EXPECT_EQ(catalog_->DeleteFile(kA).code(), Code::kNotFound);
}

// --- GetAccessFacts -----------------------------------------------------------

TEST_F(CatalogTest, AccessFactsForOwnerOthersAndAbsentFiles) {
  ASSERT_OK(catalog_->RecordStore(kA, 1, "", kFirefoxHf, 1));
  ASSERT_OK(catalog_->RecordRead(kA, kCurl, 2));
  EXPECT_THAT(Facts(kA, kFirefoxHf), IsFacts(true, true, false));
  // Reading does not make a principal an owner.
  EXPECT_THAT(Facts(kA, kCurl), IsFacts(true, false, false));
  // Same app, another origin: another principal.
  EXPECT_THAT(Facts(kA, kFirefoxEvil), IsFacts(true, false, false));
  EXPECT_THAT(Facts(kA, Principal{kFirefoxHf.app, ""}), IsFacts(true, false, false));
  // Same origin, another app: another principal.
  EXPECT_THAT(Facts(kA, Principal{"/usr/bin/chromium", kFirefoxHf.origin}),
              IsFacts(true, false, false));
  // Owning one file says nothing about another.
  EXPECT_THAT(Facts(kB, kFirefoxHf), IsFacts(false, false, false));
}

TEST_F(CatalogTest, AccessFactsWithGrants) {
  ASSERT_OK(catalog_->RecordStore(kA, 1, "", kCurl, 1));
  ASSERT_OK(catalog_->RecordStore(kB, 1, "", kCurl, 1));
  // Grants to principals that never called.
  ASSERT_OK(catalog_->AddGrant(kFirefoxHf, kA.ToString(), 2));
  ASSERT_OK(catalog_->AddGrant(kFlatpak, "*", 3));

  EXPECT_THAT(Facts(kA, kFirefoxHf), IsFacts(true, false, true));
  EXPECT_THAT(Facts(kB, kFirefoxHf), IsFacts(true, false, false));    // other file
  EXPECT_THAT(Facts(kA, kFirefoxEvil), IsFacts(true, false, false));  // other origin
  EXPECT_THAT(Facts(kA, kFlatpak), IsFacts(true, false, true));
  EXPECT_THAT(Facts(kB, kFlatpak), IsFacts(true, false, true));
  // "*" holds for absent files too; the access rule requires existence.
  EXPECT_THAT(Facts(kC, kFlatpak), IsFacts(false, false, true));
  EXPECT_THAT(Facts(kC, kFirefoxHf), IsFacts(false, false, false));
  // Owner and granted at once.
  ASSERT_OK(catalog_->AddGrant(kCurl, kA.ToString(), 4));
  EXPECT_THAT(Facts(kA, kCurl), IsFacts(true, true, true));
}

// --- Grants -------------------------------------------------------------------

TEST_F(CatalogTest, GrantForUnknownFileIsNotFound) {
  Status s = catalog_->AddGrant(kFirefoxHf, kA.ToString(), 1);
  EXPECT_EQ(s.code(), Code::kNotFound) << s.ToString();
  EXPECT_THAT(s.message(), HasSubstr(kA.ToString()));
  EXPECT_THAT(Grants(), IsEmpty());
}

TEST_F(CatalogTest, GrantOfInvalidDigestTextIsInvalidArgument) {
  ASSERT_OK(catalog_->RecordStore(kA, 1, "", kCurl, 1));
  const std::string hex = kA.hex();
  const std::vector<std::string> bad_digests = {"",
                                                "**",
                                                " *",
                                                hex,
                                                "SHA256:" + hex,
                                                "sha256:" + hex.substr(1),
                                                "md5:0123456789abcdef0123456789abcdef",
                                                "sha256:" + std::string(64, 'A'),
                                                "sha256:" + std::string(63, 'a') + "g"};
  for (const std::string& bad : bad_digests) {
    Status s = catalog_->AddGrant(kFirefoxHf, bad, 1);
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << bad << ": " << s.ToString();
    s = catalog_->RemoveGrant(kFirefoxHf, bad);
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << bad << ": " << s.ToString();
  }
  EXPECT_THAT(Grants(), IsEmpty());
}

TEST_F(CatalogTest, GrantingTwiceKeepsTheFirstTime) {
  ASSERT_OK(catalog_->RecordStore(kA, 1, "", kCurl, 1));
  ASSERT_OK(catalog_->AddGrant(kFirefoxHf, kA.ToString(), 100));
  ASSERT_OK(catalog_->AddGrant(kFirefoxHf, kA.ToString(), 200));
  ASSERT_OK(catalog_->AddGrant(kFirefoxHf, "*", 300));
  ASSERT_OK(catalog_->AddGrant(kFirefoxHf, "*", 400));
  EXPECT_THAT(Grants(),
              ElementsAre(IsGrant(kFirefoxHf, "*", 300), IsGrant(kFirefoxHf, kA.ToString(), 100)));
}

TEST_F(CatalogTest, RemoveGrant) {
  ASSERT_OK(catalog_->RecordStore(kA, 1, "", kCurl, 1));
  ASSERT_OK(catalog_->AddGrant(kFirefoxHf, kA.ToString(), 2));
  ASSERT_OK(catalog_->AddGrant(kFirefoxHf, "*", 3));

  // Missing: none for this principal, none for this digest.
  Status s = catalog_->RemoveGrant(kFirefoxEvil, kA.ToString());
  EXPECT_EQ(s.code(), Code::kNotFound) << s.ToString();
  EXPECT_THAT(s.message(), HasSubstr("evil.example"));
  EXPECT_EQ(catalog_->RemoveGrant(kFirefoxHf, kB.ToString()).code(), Code::kNotFound);

  // Removing "*" leaves the single-file grant, and the other way round.
  ASSERT_OK(catalog_->RemoveGrant(kFirefoxHf, "*"));
  EXPECT_THAT(Grants(), ElementsAre(IsGrant(kFirefoxHf, kA.ToString(), 2)));
  EXPECT_THAT(Facts(kA, kFirefoxHf), IsFacts(true, false, true));
  ASSERT_OK(catalog_->RemoveGrant(kFirefoxHf, kA.ToString()));
  EXPECT_THAT(Grants(), IsEmpty());
  EXPECT_THAT(Facts(kA, kFirefoxHf), IsFacts(true, false, false));
  EXPECT_EQ(catalog_->RemoveGrant(kFirefoxHf, kA.ToString()).code(), Code::kNotFound);
}

TEST_F(CatalogTest, RevokeOfAGrantForADeletedFileIsNotFound) {
  ASSERT_OK(catalog_->RecordStore(kA, 1, "", kCurl, 1));
  ASSERT_OK(catalog_->AddGrant(kFirefoxHf, kA.ToString(), 2));
  ASSERT_OK(catalog_->DeleteFile(kA));
  EXPECT_EQ(catalog_->RemoveGrant(kFirefoxHf, kA.ToString()).code(), Code::kNotFound);
}

TEST_F(CatalogTest, ListGrantsFiltersAndOrders) {
  ASSERT_OK(catalog_->RecordStore(kA, 1, "", kCurl, 1));
  ASSERT_OK(catalog_->RecordStore(kB, 1, "", kCurl, 1));
  ASSERT_OK(catalog_->AddGrant(kFlatpak, kB.ToString(), 10));
  ASSERT_OK(catalog_->AddGrant(kFlatpak, kA.ToString(), 11));
  ASSERT_OK(catalog_->AddGrant(kFirefoxHf, kA.ToString(), 12));
  ASSERT_OK(catalog_->AddGrant(kFirefoxEvil, "*", 13));
  ASSERT_OK(catalog_->AddGrant(kCurl, kB.ToString(), 14));

  // Ordered by app, then origin, then digest ("*" before "sha256:").
  EXPECT_THAT(
      Grants(),
      ElementsAre(IsGrant(kCurl, kB.ToString(), 14), IsGrant(kFirefoxEvil, "*", 13),
                  IsGrant(kFirefoxHf, kA.ToString(), 12), IsGrant(kFlatpak, kA.ToString(), 11),
                  IsGrant(kFlatpak, kB.ToString(), 10)));
  EXPECT_THAT(Grants(kA),
              ElementsAre(IsGrant(kFirefoxEvil, "*", 13), IsGrant(kFirefoxHf, kA.ToString(), 12),
                          IsGrant(kFlatpak, kA.ToString(), 11)));
  EXPECT_THAT(Grants(kB),
              ElementsAre(IsGrant(kCurl, kB.ToString(), 14), IsGrant(kFirefoxEvil, "*", 13),
                          IsGrant(kFlatpak, kB.ToString(), 10)));
  // A digest nobody was granted: only the "*" grants.
  EXPECT_THAT(Grants(kC), ElementsAre(IsGrant(kFirefoxEvil, "*", 13)));
}

// --- Concurrency --------------------------------------------------------------

TEST_F(CatalogTest, ConcurrentStoresOfOneDigestMakeOneFile) {
  constexpr int kThreads = 4;
  constexpr int kStoresEach = 25;
  std::vector<Status> results(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([this, t, &results] {
      Principal who{"/usr/bin/app" + std::to_string(t), ""};
      for (int i = 0; i < kStoresEach; ++i) {
        Status s = catalog_->RecordStore(kA, 4096, "name" + std::to_string(t), who, 1 + i);
        if (!s.ok()) {
          results[t] = s;
          return;
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (const Status& s : results) EXPECT_TRUE(s.ok()) << s.ToString();

  std::vector<Digest> digests;
  ASSERT_OK(catalog_->ListDigests(&digests));
  EXPECT_THAT(digests, ElementsAre(kA));
  FileRecord f = Get(kA);
  EXPECT_EQ(f.stored_by, 4u);
  EXPECT_EQ(f.used_by, 4u);
  EXPECT_EQ(f.size, 4096u);
  EXPECT_THAT(f.name, ::testing::StartsWith("name"));  // whichever came first
  std::vector<UsageRecord> usage = Usage(kA);
  ASSERT_EQ(usage.size(), 4u);
  for (const UsageRecord& u : usage) {
    EXPECT_TRUE(u.stored);
    EXPECT_EQ(u.stores, static_cast<uint32_t>(kStoresEach));
  }
  EXPECT_EQ(QueryText(path(), "SELECT count(*) FROM principals"), "4");
}


// --- Settings, forgetting an origin, migration --------------------------------

TEST_F(CatalogTest, SettingsAreKeptAcrossReopen) {
  std::string value;
  EXPECT_EQ(catalog_->GetSetting("consent-policy", &value).code(), Code::kNotFound);
  ASSERT_OK(catalog_->SetSetting("consent-policy", "deny"));
  ASSERT_OK(catalog_->SetSetting("consent-policy", "ask"));
  Reopen();
  ASSERT_OK(catalog_->GetSetting("consent-policy", &value));
  EXPECT_EQ(value, "ask");
}

TEST_F(CatalogTest, ForgetOriginRemovesItsGrantsUsageAndTheFilesOnlyItStored) {
  const Principal kChromiumHf{"/usr/lib/chromium/chromium", "https://huggingface.co"};
  // kA: stored only by huggingface.co (through two apps) -> deleted.
  ASSERT_OK(catalog_->RecordStore(kA, 1, "a", kFirefoxHf, 100));
  ASSERT_OK(catalog_->RecordStore(kA, 1, "a", kChromiumHf, 101));
  // kB: stored by huggingface.co and by curl -> kept, curl's claim stays.
  ASSERT_OK(catalog_->RecordStore(kB, 2, "b", kFirefoxHf, 102));
  ASSERT_OK(catalog_->RecordStore(kB, 2, "b", kCurl, 103));
  // kC: stored by evil.example, read by huggingface.co -> kept, the read goes.
  ASSERT_OK(catalog_->RecordStore(kC, 3, "c", kFirefoxEvil, 104));
  ASSERT_OK(catalog_->AddGrant(kFirefoxHf, kC.ToString(), 105));
  ASSERT_OK(catalog_->RecordRead(kC, kFirefoxHf, 106));
  ASSERT_OK(catalog_->AddGrant(kChromiumHf, "*", 107));
  ASSERT_OK(catalog_->AddGrant(kFirefoxEvil, kB.ToString(), 108));

  ForgetResult result;
  ASSERT_OK(catalog_->ForgetOrigin("https://huggingface.co", &result));
  EXPECT_THAT(result.deleted_files, ::testing::ElementsAre(kA));
  EXPECT_EQ(result.grants_removed, 2u);
  EXPECT_EQ(result.usage_removed, 4u);  // its two stores of kA, its store of kB, its read of kC

  FileRecord record;
  EXPECT_EQ(catalog_->GetFile(kA, &record).code(), Code::kNotFound);
  EXPECT_EQ(Get(kB).stored_by, 1u);
  ASSERT_EQ(Usage(kB).size(), 1u);
  EXPECT_EQ(Usage(kB)[0].principal, kCurl);
  ASSERT_EQ(Usage(kC).size(), 1u);
  EXPECT_EQ(Usage(kC)[0].principal, kFirefoxEvil);
  EXPECT_THAT(Grants(), ::testing::ElementsAre(IsGrant(kFirefoxEvil, kB.ToString(), 108)));
  EXPECT_THAT(Facts(kC, kFirefoxHf), IsFacts(true, false, false));

  // Forgetting it again finds nothing more to do.
  ASSERT_OK(catalog_->ForgetOrigin("https://huggingface.co", &result));
  EXPECT_TRUE(result.deleted_files.empty());
  EXPECT_EQ(result.grants_removed, 0u);
}

TEST_F(CatalogTest, VersionOneDatabaseIsMigratedKeepingItsData) {
  catalog_.reset();
  std::filesystem::remove(path());
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path().c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         "CREATE TABLE files(digest TEXT PRIMARY KEY NOT NULL, size INTEGER NOT NULL"
                         " CHECK(size >= 0), name TEXT NOT NULL DEFAULT '', first_stored INTEGER NOT NULL,"
                         " private INTEGER NOT NULL DEFAULT 0);"
                         "CREATE TABLE principals(id INTEGER PRIMARY KEY, app TEXT NOT NULL, origin TEXT"
                         " NOT NULL, UNIQUE(app, origin));"
                         "CREATE TABLE usage(digest TEXT NOT NULL REFERENCES files(digest) ON DELETE CASCADE,"
                         " principal INTEGER NOT NULL REFERENCES principals(id), stored INTEGER NOT NULL"
                         " DEFAULT 0, stores INTEGER NOT NULL DEFAULT 0, reads INTEGER NOT NULL DEFAULT 0,"
                         " first_used INTEGER NOT NULL, last_used INTEGER NOT NULL, PRIMARY KEY(digest,"
                         " principal));"
                         "CREATE TABLE grants(app TEXT NOT NULL, origin TEXT NOT NULL, digest TEXT NOT NULL,"
                         " created INTEGER NOT NULL, PRIMARY KEY(app, origin, digest));"
                         "CREATE INDEX grants_by_digest ON grants(digest);"
                         "INSERT INTO grants VALUES('/usr/bin/curl', '', '*', 5);"
                         "PRAGMA user_version = 1;",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  ASSERT_OK(Catalog::Open(path(), &catalog_));
  EXPECT_EQ(QueryText(path(), "PRAGMA user_version"), "6");
  EXPECT_THAT(Grants(), ::testing::ElementsAre(IsGrant(kCurl, "*", 5)));
  ASSERT_OK(catalog_->SetSetting("k", "v"));
}

// Schema 6 keeps each principal's own name and first store: the file's name
// goes to its earliest storer, and every storer's first use is its first
// store; a reader gets neither.
TEST_F(CatalogTest, OwnFactsAreMigratedToTheEarliestStorer) {
  catalog_.reset();
  std::filesystem::remove(path());
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path().c_str(), &db), SQLITE_OK);
  const std::string a = kA.ToString();
  const std::string sql =
      "CREATE TABLE files(digest TEXT PRIMARY KEY NOT NULL, size INTEGER NOT NULL CHECK(size >= 0),"
      " name TEXT NOT NULL DEFAULT '', first_stored INTEGER NOT NULL, private INTEGER NOT NULL DEFAULT 0);"
      "CREATE TABLE principals(id INTEGER PRIMARY KEY, app TEXT NOT NULL, origin TEXT NOT NULL, UNIQUE(app, origin));"
      "CREATE TABLE usage(digest TEXT NOT NULL REFERENCES files(digest) ON DELETE CASCADE,"
      " principal INTEGER NOT NULL REFERENCES principals(id), stored INTEGER NOT NULL DEFAULT 0,"
      " stores INTEGER NOT NULL DEFAULT 0, reads INTEGER NOT NULL DEFAULT 0, first_used INTEGER NOT NULL,"
      " last_used INTEGER NOT NULL, PRIMARY KEY(digest, principal));"
      "CREATE TABLE grants(app TEXT NOT NULL, origin TEXT NOT NULL, digest TEXT NOT NULL,"
      " created INTEGER NOT NULL, PRIMARY KEY(app, origin, digest));"
      "CREATE INDEX grants_by_digest ON grants(digest);"
      "INSERT INTO files VALUES('" + a + "', 10, 'org/model.onnx', 100, 0);"
      "INSERT INTO principals VALUES(1, '/usr/bin/a', 'https://late.example');"
      "INSERT INTO principals VALUES(2, '/usr/bin/a', 'https://first.example');"
      "INSERT INTO principals VALUES(3, '/usr/bin/a', 'https://reader.example');"
      "INSERT INTO usage VALUES('" + a + "', 1, 1, 1, 0, 300, 300);"
      "INSERT INTO usage VALUES('" + a + "', 2, 1, 2, 0, 100, 200);"
      "INSERT INTO usage VALUES('" + a + "', 3, 0, 0, 4, 150, 150);"
      "PRAGMA user_version = 1;";
  ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  ASSERT_OK(Catalog::Open(path(), &catalog_));
  auto own = [&](const std::string& origin) {
    AccessFacts facts;
    EXPECT_OK(catalog_->GetAccessFacts(kA, Principal{"/usr/bin/a", origin}, &facts));
    return std::make_tuple(facts.stored_by_principal, facts.own.name, facts.own.first_stored_us);
  };
  EXPECT_EQ(own("https://first.example"), std::make_tuple(true, std::string("org/model.onnx"), int64_t{100}));
  EXPECT_EQ(own("https://late.example"), std::make_tuple(true, std::string(), int64_t{300}));
  EXPECT_EQ(own("https://reader.example"), std::make_tuple(false, std::string(), int64_t{0}));
  // A later store by the late storer keeps its first store and takes its
  // first name; the earliest storer's name stays its own.
  OwnStore late;
  ASSERT_OK(catalog_->RecordStore(kA, 10, "late/name.onnx", Principal{"/usr/bin/a", "https://late.example"}, 400,
                                  nullptr, &late));
  EXPECT_EQ(late.name, "late/name.onnx");
  EXPECT_EQ(late.first_stored_us, 300);
  ASSERT_OK(catalog_->RecordStore(kA, 10, "other.onnx", Principal{"/usr/bin/a", "https://late.example"}, 500,
                                  nullptr, &late));
  EXPECT_EQ(late.name, "late/name.onnx");
  EXPECT_EQ(own("https://first.example"), std::make_tuple(true, std::string("org/model.onnx"), int64_t{100}));
}

// --- schema 5: one origin, one principal ---------------------------------

// Schema 4 as costore wrote it before origins were canonical: the SQL of
// migrations 0 -> 4, as released.
constexpr const char* kSchema4 = R"sql(
CREATE TABLE files(digest TEXT PRIMARY KEY NOT NULL, size INTEGER NOT NULL CHECK(size >= 0),
  name TEXT NOT NULL DEFAULT '', first_stored INTEGER NOT NULL, private INTEGER NOT NULL DEFAULT 0);
CREATE TABLE principals(id INTEGER PRIMARY KEY, app TEXT NOT NULL, origin TEXT NOT NULL, UNIQUE(app, origin));
CREATE TABLE usage(digest TEXT NOT NULL REFERENCES files(digest) ON DELETE CASCADE,
  principal INTEGER NOT NULL REFERENCES principals(id), stored INTEGER NOT NULL DEFAULT 0,
  stores INTEGER NOT NULL DEFAULT 0, reads INTEGER NOT NULL DEFAULT 0, first_used INTEGER NOT NULL,
  last_used INTEGER NOT NULL, PRIMARY KEY(digest, principal));
CREATE TABLE grants(app TEXT NOT NULL, origin TEXT NOT NULL, digest TEXT NOT NULL, created INTEGER NOT NULL,
  PRIMARY KEY(app, origin, digest));
CREATE INDEX grants_by_digest ON grants(digest);
CREATE TABLE settings(key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL);
CREATE TABLE private_files(id INTEGER PRIMARY KEY, digest TEXT NOT NULL,
  owner INTEGER NOT NULL REFERENCES principals(id), size INTEGER NOT NULL CHECK(size >= 0),
  name TEXT NOT NULL DEFAULT '', first_stored INTEGER NOT NULL, cipher TEXT NOT NULL,
  chunk_size INTEGER NOT NULL, key_version INTEGER NOT NULL, wrapped_key BLOB NOT NULL, UNIQUE(digest, owner));
CREATE INDEX private_files_by_key_version ON private_files(key_version);
CREATE TABLE private_usage(file INTEGER NOT NULL REFERENCES private_files(id) ON DELETE CASCADE,
  principal INTEGER NOT NULL REFERENCES principals(id), stored INTEGER NOT NULL DEFAULT 0,
  stores INTEGER NOT NULL DEFAULT 0, reads INTEGER NOT NULL DEFAULT 0, first_used INTEGER NOT NULL,
  last_used INTEGER NOT NULL, PRIMARY KEY(file, principal));
ALTER TABLE grants ADD COLUMN explicit INTEGER NOT NULL DEFAULT 0;
ALTER TABLE files ADD COLUMN problem TEXT NOT NULL DEFAULT '';
ALTER TABLE files ADD COLUMN verified INTEGER NOT NULL DEFAULT 0;
ALTER TABLE files ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0;
ALTER TABLE files ADD COLUMN disk_ino INTEGER NOT NULL DEFAULT 0;
ALTER TABLE files ADD COLUMN disk_mtime INTEGER NOT NULL DEFAULT 0;
ALTER TABLE files ADD COLUMN disk_ctime INTEGER NOT NULL DEFAULT 0;
ALTER TABLE private_files ADD COLUMN problem TEXT NOT NULL DEFAULT '';
ALTER TABLE private_files ADD COLUMN verified INTEGER NOT NULL DEFAULT 0;
ALTER TABLE private_files ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0;
PRAGMA user_version = 4;
)sql";

class OriginMigrationTest : public CatalogTest {
 protected:
  // Replaces the catalog with a schema 4 one holding `rows` (SQL).
  void WriteSchema4(const std::string& rows) {
    catalog_.reset();
    std::filesystem::remove(path());
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path().c_str(), &db), SQLITE_OK);
    char* error = nullptr;
    int rc = sqlite3_exec(db, (std::string(kSchema4) + rows).c_str(), nullptr, nullptr, &error);
    std::string message = error ? error : "";
    sqlite3_free(error);
    sqlite3_close(db);
    ASSERT_EQ(rc, SQLITE_OK) << message;
  }

  // WriteSchema4, then opens it, which migrates it.
  void MigrateFrom(const std::string& rows) {
    WriteSchema4(rows);
    ASSERT_OK(Catalog::Open(path(), &catalog_));
  }

  // The rows `select` returns, columns joined by '|', rows by ';'.
  std::string Rows(const std::string& select) {
    return QueryText(path(), "SELECT group_concat(row, ';') FROM (" + select + ")");
  }
};

const Principal kFirefoxExample{"/usr/lib/firefox/firefox", "https://example.com"};

TEST_F(OriginMigrationTest, SpellingsOfOneOriginBecomeOnePrincipal) {
  const std::string a = kA.ToString(), b = kB.ToString();
  MigrateFrom(
      "INSERT INTO files(digest, size, first_stored) VALUES('" + a + "', 1, 1), ('" + b + "', 2, 2);"
      "INSERT INTO principals VALUES(1, '/usr/lib/firefox/firefox', 'https://example.com'),"
      "  (2, '/usr/lib/firefox/firefox', 'https://example.com:443'),"
      "  (3, '/usr/lib/firefox/firefox', 'HTTPS://EXAMPLE.COM:0443'),"
      "  (4, '/usr/lib/firefox/firefox', 'https://Other.example'),"
      "  (5, '/usr/lib/firefox/firefox', 'ws://x'),"
      "  (6, '/usr/bin/curl', ''),"
      "  (7, '/usr/bin/curl', 'https://example.com:443');"
      // digest, principal, stored, stores, reads, first_used, last_used
      "INSERT INTO usage VALUES('" + a + "', 1, 0, 0, 2, 100, 200), ('" + a + "', 2, 1, 1, 1, 50, 150),"
      "  ('" + a + "', 3, 0, 0, 4, 120, 300), ('" + b + "', 2, 1, 2, 0, 10, 20),"
      "  ('" + b + "', 4, 0, 0, 1, 30, 40), ('" + b + "', 5, 1, 1, 0, 5, 5), ('" + b + "', 7, 0, 0, 1, 6, 7);"
      // app, origin, digest, created, explicit
      "INSERT INTO grants VALUES('/usr/lib/firefox/firefox', 'https://example.com', '" + a + "', 500, 0),"
      "  ('/usr/lib/firefox/firefox', 'https://EXAMPLE.com:443', '" + a + "', 400, 1),"
      "  ('/usr/lib/firefox/firefox', 'https://example.com:443', '*', 700, 0),"
      "  ('/usr/lib/firefox/firefox', 'moz-extension://x', '" + b + "', 800, 0),"
      "  ('/usr/bin/curl', 'https://example.com:00443', '" + b + "', 900, 1);");

  EXPECT_EQ(QueryText(path(), "PRAGMA user_version"), "6");
  // Merged (2, 3 into 1), renamed (4, 7), untouched (5, 6).
  EXPECT_EQ(Rows("SELECT id || '|' || app || '|' || origin AS row FROM principals ORDER BY id"),
            "1|/usr/lib/firefox/firefox|https://example.com;"
            "4|/usr/lib/firefox/firefox|https://other.example;"
            "5|/usr/lib/firefox/firefox|ws://x;"
            "6|/usr/bin/curl|;"
            "7|/usr/bin/curl|https://example.com");
  // Stores and reads summed, stored max, first_used min, last_used max.
  EXPECT_EQ(Rows("SELECT substr(digest, 8, 2) || '|' || principal || '|' || stored || '|' || stores || '|' ||"
                 " reads || '|' || first_used || '|' || last_used AS row FROM usage ORDER BY digest, principal"),
            "0a|1|1|1|7|50|300;"
            "0b|1|1|2|0|10|20;0b|4|0|0|1|30|40;0b|5|1|1|0|5|5;0b|7|0|0|1|6|7");
  // One grant per (app, origin, digest): the earliest created, explicit if
  // either was.
  EXPECT_EQ(Rows("SELECT app || '|' || origin || '|' || substr(digest, 1, 9) || '|' || created || '|' ||"
                 " explicit AS row FROM grants ORDER BY app, origin, digest"),
            "/usr/bin/curl|https://example.com|sha256:0b|900|1;"
            "/usr/lib/firefox/firefox|https://example.com|*|700|0;"
            "/usr/lib/firefox/firefox|https://example.com|sha256:0a|400|1;"
            "/usr/lib/firefox/firefox|moz-extension://x|sha256:0b|800|0");
  // Files are never touched.
  EXPECT_EQ(Rows("SELECT substr(digest, 8, 2) || '|' || size AS row FROM files ORDER BY digest"), "0a|1;0b|2");

  // Through the catalog: the merged principal is the canonical one.
  std::vector<UsageRecord> usage = Usage(kA);
  ASSERT_EQ(usage.size(), 1u);
  EXPECT_EQ(usage[0].principal, kFirefoxExample);
  EXPECT_TRUE(usage[0].stored);
  EXPECT_THAT(Facts(kA, kFirefoxExample), IsFacts(true, true, true));
  EXPECT_THAT(Facts(kB, kFirefoxExample), IsFacts(true, true, true));  // the "*" grant
  // The legacy spelling with no canonical form is still found, to be forgotten.
  bool recorded = false;
  ASSERT_OK(catalog_->HasOrigin("ws://x", &recorded));
  EXPECT_TRUE(recorded);
  ASSERT_OK(catalog_->HasOrigin("moz-extension://x", &recorded));
  EXPECT_TRUE(recorded);
  ASSERT_OK(catalog_->HasOrigin("https://example.com:443", &recorded));
  EXPECT_FALSE(recorded);
  ForgetResult forgotten;
  ASSERT_OK(catalog_->ForgetOrigin("ws://x", &forgotten));
  EXPECT_EQ(forgotten.usage_removed, 1u);
  ASSERT_OK(catalog_->ForgetOrigin("moz-extension://x", &forgotten));
  EXPECT_EQ(forgotten.grants_removed, 1u);
}

TEST_F(OriginMigrationTest, PrivateEntriesMoveAndKeepTheNameOfTheirSealedFile) {
  const std::string c = kC.ToString(), d = MakeDigest(0x0d).ToString(), e = MakeDigest(0x0e).ToString();
  MigrateFrom(
      "INSERT INTO principals VALUES(1, '/usr/lib/firefox/firefox', 'https://example.com'),"
      "  (2, '/usr/lib/firefox/firefox', 'https://example.com:443'),"
      "  (3, '/usr/lib/firefox/firefox', 'HTTPS://EXAMPLE.COM:0443'),"
      "  (4, '/usr/lib/firefox/firefox', 'https://Other.example'),"
      "  (6, '/usr/bin/curl', '');"
      // id, digest, owner, size, name, first_stored, cipher, chunk_size, key_version, wrapped_key
      "INSERT INTO private_files(id, digest, owner, size, name, first_stored, cipher, chunk_size, key_version,"
      "  wrapped_key) VALUES(1, '" + c + "', 2, 1, 'c', 60, 'aes-256-gcm', 65536, 1, x'01'),"
      "  (2, '" + d + "', 1, 2, 'd-later', 70, 'aes-256-gcm', 65536, 1, x'02'),"
      "  (3, '" + d + "', 3, 2, 'd-earlier', 65, 'aes-256-gcm', 65536, 1, x'03'),"
      "  (4, '" + e + "', 4, 3, 'e', 80, 'aes-256-gcm', 65536, 1, x'04');"
      // file, principal, stored, stores, reads, first_used, last_used
      "INSERT INTO private_usage VALUES(1, 2, 1, 1, 0, 60, 60), (2, 1, 1, 1, 0, 70, 70),"
      "  (2, 6, 0, 0, 3, 80, 90), (3, 3, 1, 1, 2, 65, 95), (4, 4, 1, 1, 0, 80, 80);");

  // Of the two entries of d, the first stored stays; the other's record
  // goes (its sealed file is quarantined by the engine at start).
  EXPECT_EQ(Rows("SELECT id || '|' || owner || '|' || name || '|' || coalesce(named_for_origin, 'NULL') AS row"
                 " FROM private_files ORDER BY id"),
            "1|1|c|https://example.com:443;"
            "3|1|d-earlier|HTTPS://EXAMPLE.COM:0443;"
            "4|4|e|https://Other.example");
  EXPECT_EQ(Rows("SELECT file || '|' || principal || '|' || stored || '|' || stores || '|' || reads || '|' ||"
                 " first_used || '|' || last_used AS row FROM private_usage ORDER BY file, principal"),
            "1|1|1|1|0|60|60;3|1|1|2|2|65|95;3|6|0|0|3|80|90;4|4|1|1|0|80|80");

  std::vector<PrivateFileRecord> entries;
  ASSERT_OK(catalog_->ListPrivateFiles(std::nullopt, &entries));
  ASSERT_EQ(entries.size(), 3u);
  for (const PrivateFileRecord& entry : entries) {
    EXPECT_EQ(entry.owner.origin, entry.digest == MakeDigest(0x0e) ? "https://other.example" : "https://example.com");
  }
  // The sealed files keep the names their spelling gave them.
  EXPECT_EQ(entries[0].blob_owner(), (Principal{"/usr/lib/firefox/firefox", "https://example.com:443"}));
  EXPECT_EQ(entries[1].blob_owner(), (Principal{"/usr/lib/firefox/firefox", "HTTPS://EXAMPLE.COM:0443"}));
  EXPECT_EQ(entries[2].blob_owner(), (Principal{"/usr/lib/firefox/firefox", "https://Other.example"}));
  PrivateFileRecord own;
  ASSERT_OK(catalog_->GetPrivateFile(kC, kFirefoxExample, &own));
  EXPECT_EQ(own.name, "c");

  // An entry stored after the migration is named by its owner.
  NewPrivateFile entry;
  entry.digest = MakeDigest(0x0f);
  entry.size = 1;
  entry.owner = kFirefoxExample;
  entry.cipher = "aes-256-gcm";
  entry.chunk_size = 65536;
  entry.key_version = 1;
  entry.wrapped_key = "k";
  bool created = false;
  ASSERT_OK(catalog_->RecordPrivateStore(entry, 100, &created));
  ASSERT_OK(catalog_->GetPrivateFile(MakeDigest(0x0f), kFirefoxExample, &own));
  EXPECT_FALSE(own.named_for_origin.has_value());
  EXPECT_EQ(own.blob_owner(), kFirefoxExample);
}

TEST_F(OriginMigrationTest, AnInterruptedMigrationLeavesSchemaFour) {
  // A principal whose merge cannot finish (a usage row naming a file that
  // does not exist, so the foreign key fails when it moves) rolls the whole
  // migration back, the rename done before it too: all or nothing.
  WriteSchema4(
      "INSERT INTO principals VALUES(1, '/a', 'https://Other.example'),"
      "  (2, '/a', 'https://example.com'), (3, '/a', 'https://Example.com');"
      "INSERT INTO usage VALUES('sha256:missing', 3, 1, 1, 0, 1, 1);");
  Status s = Catalog::Open(path(), &catalog_);
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("schema version 5"));
  EXPECT_EQ(QueryText(path(), "PRAGMA user_version"), "4");
  EXPECT_EQ(QueryText(path(), "SELECT group_concat(origin, ';') FROM (SELECT origin FROM principals ORDER BY id)"),
            "https://Other.example;https://example.com;https://Example.com");
  EXPECT_EQ(QueryText(path(), "SELECT count(*) FROM pragma_table_info('private_files')"
                              " WHERE name = 'named_for_origin'"),
            "0");
}

}  // namespace
}  // namespace costore
