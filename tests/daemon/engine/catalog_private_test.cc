// The catalog's private entries (schema version 3): apart from public
// files, one per (digest, owner), with their wrapped keys and versions;
// explicit and consent grants; the durable rekey bookkeeping.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>

#include "daemon/engine/catalog.h"
#include "tests/daemon/engine/test_util.h"

namespace costore {
namespace {

const Principal kA{"/usr/bin/a", ""};
const Principal kB{"/usr/bin/b", "https://b.example"};

Digest MakeDigest(uint8_t n) {
  std::array<uint8_t, 32> bytes{};
  bytes[0] = n;
  bytes[31] = 0x5a;
  return Digest(bytes);
}

NewPrivateFile Entry(const Digest& digest, const Principal& owner, uint32_t version = 1) {
  NewPrivateFile file;
  file.digest = digest;
  file.size = 1234;
  file.name = "model.bin";
  file.owner = owner;
  file.cipher = "aes-256-gcm";
  file.chunk_size = 1 << 20;
  file.key_version = version;
  file.wrapped_key = std::string("\x01\x00\xff", 3) + std::string(70, 'k');
  return file;
}

class CatalogPrivateTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(Catalog::Open(dir_.Join("catalog.db"), &catalog_).ok()); }
  test::TempDir dir_;
  std::unique_ptr<Catalog> catalog_;
};

TEST_F(CatalogPrivateTest, PrivateEntriesLiveApartFromPublicFiles) {
  const Digest d = MakeDigest(1);
  ASSERT_TRUE(catalog_->RecordStore(d, 1234, "public", kA, 10).ok());
  bool created = false;
  ASSERT_TRUE(catalog_->RecordPrivateStore(Entry(d, kB), 20, &created).ok());
  EXPECT_TRUE(created);

  FileRecord file;
  ASSERT_TRUE(catalog_->GetFile(d, &file).ok());
  EXPECT_FALSE(file.is_private);
  EXPECT_EQ(file.stored_by, 1u);
  std::vector<UsageRecord> usage;
  ASSERT_TRUE(catalog_->GetUsage(d, &usage).ok());
  ASSERT_EQ(usage.size(), 1u);
  EXPECT_EQ(usage[0].principal, kA);

  PrivateFileRecord entry;
  ASSERT_TRUE(catalog_->GetPrivateFile(d, kB, &entry).ok());
  EXPECT_EQ(entry.owner, kB);
  EXPECT_EQ(entry.wrapped_key, Entry(d, kB).wrapped_key);  // bytes, NULs and all
  EXPECT_EQ(entry.key_version, 1u);
  EXPECT_EQ(entry.cipher, "aes-256-gcm");
  EXPECT_EQ(entry.chunk_size, 1u << 20);
  EXPECT_EQ(catalog_->GetPrivateFile(d, kA, &entry).code(), Code::kNotFound);
  ASSERT_TRUE(catalog_->GetPrivateUsage(d, &usage).ok());
  ASSERT_EQ(usage.size(), 1u);
  EXPECT_EQ(usage[0].principal, kB);
  EXPECT_TRUE(usage[0].stored);
}

TEST_F(CatalogPrivateTest, StoringAgainKeepsTheFirstKey) {
  const Digest d = MakeDigest(2);
  bool created = false;
  ASSERT_TRUE(catalog_->RecordPrivateStore(Entry(d, kA, 1), 1, &created).ok());
  NewPrivateFile again = Entry(d, kA, 7);
  again.wrapped_key = "other";
  ASSERT_TRUE(catalog_->RecordPrivateStore(again, 2, &created).ok());
  EXPECT_FALSE(created);
  PrivateFileRecord entry;
  ASSERT_TRUE(catalog_->GetPrivateFile(d, kA, &entry).ok());
  EXPECT_EQ(entry.key_version, 1u);
  EXPECT_EQ(entry.wrapped_key, Entry(d, kA).wrapped_key);
  std::vector<UsageRecord> usage;
  ASSERT_TRUE(catalog_->GetPrivateUsage(d, &usage).ok());
  EXPECT_EQ(usage[0].stores, 2u);
}

TEST_F(CatalogPrivateTest, AccessFactsSeePrivateEntriesAndExplicitGrants) {
  const Digest d = MakeDigest(3);
  bool created = false;
  ASSERT_TRUE(catalog_->RecordPrivateStore(Entry(d, kA), 1, &created).ok());
  AccessFacts facts;
  ASSERT_TRUE(catalog_->GetAccessFacts(d, kA, &facts).ok());
  EXPECT_FALSE(facts.file_exists);
  EXPECT_TRUE(facts.owns_private);
  EXPECT_TRUE(facts.private_exists);
  ASSERT_TRUE(catalog_->GetAccessFacts(d, kB, &facts).ok());
  EXPECT_FALSE(facts.owns_private);
  EXPECT_TRUE(facts.private_exists);
  EXPECT_FALSE(facts.granted_explicitly);

  // A consent answer ("allow always") is not explicit; "*" never counts.
  ASSERT_TRUE(catalog_->AddGrant(kB, "*", 2).ok());
  ASSERT_TRUE(catalog_->AddGrant(kB, d.ToString(), 3, /*explicit_grant=*/false).ok());
  ASSERT_TRUE(catalog_->GetAccessFacts(d, kB, &facts).ok());
  EXPECT_TRUE(facts.granted);
  EXPECT_FALSE(facts.granted_explicitly);
  // Granting it in the manager makes it explicit, keeping its time.
  ASSERT_TRUE(catalog_->AddGrant(kB, d.ToString(), 4, /*explicit_grant=*/true).ok());
  ASSERT_TRUE(catalog_->GetAccessFacts(d, kB, &facts).ok());
  EXPECT_TRUE(facts.granted_explicitly);
  std::vector<GrantRecord> grants;
  ASSERT_TRUE(catalog_->ListGrants(d, &grants).ok());
  ASSERT_EQ(grants.size(), 2u);
  EXPECT_EQ(grants[1].digest, d.ToString());
  EXPECT_EQ(grants[1].created_us, 3);
  EXPECT_TRUE(grants[1].explicit_grant);
  // A consent answer later does not take it back.
  ASSERT_TRUE(catalog_->AddGrant(kB, d.ToString(), 5, /*explicit_grant=*/false).ok());
  ASSERT_TRUE(catalog_->GetAccessFacts(d, kB, &facts).ok());
  EXPECT_TRUE(facts.granted_explicitly);
}

TEST_F(CatalogPrivateTest, DeletingTheLastEntryDropsItsGrants) {
  const Digest d = MakeDigest(4);
  bool created = false;
  ASSERT_TRUE(catalog_->RecordPrivateStore(Entry(d, kA), 1, &created).ok());
  ASSERT_TRUE(catalog_->RecordPrivateStore(Entry(d, kB), 1, &created).ok());
  ASSERT_TRUE(catalog_->AddGrant(kB, d.ToString(), 2).ok());  // a private-only digest can be granted
  std::vector<PrivateFileRecord> deleted;
  ASSERT_TRUE(catalog_->DeletePrivateFiles(d, &deleted).ok());
  EXPECT_EQ(deleted.size(), 2u);
  std::vector<GrantRecord> grants;
  ASSERT_TRUE(catalog_->ListGrants(std::nullopt, &grants).ok());
  EXPECT_TRUE(grants.empty());
  EXPECT_EQ(catalog_->AddGrant(kB, d.ToString(), 3).code(), Code::kNotFound);
}

TEST_F(CatalogPrivateTest, RekeyFinishesOnlyWhenNoEntryIsLeftBehind) {
  bool created = false;
  ASSERT_TRUE(catalog_->RecordPrivateStore(Entry(MakeDigest(5), kA, 1), 1, &created).ok());
  ASSERT_TRUE(catalog_->RecordPrivateStore(Entry(MakeDigest(6), kA, 1), 1, &created).ok());
  ASSERT_TRUE(catalog_->SetMasterKeyVersion(1).ok());
  ASSERT_TRUE(catalog_->BeginRekey(2).ok());
  bool finished = true;
  ASSERT_TRUE(catalog_->FinishRekey(2, &finished).ok());
  EXPECT_FALSE(finished);

  PrivateFileRecord entry;
  ASSERT_TRUE(catalog_->GetPrivateFile(MakeDigest(5), kA, &entry).ok());
  bool updated = false;
  ASSERT_TRUE(catalog_->RewrapPrivateKey(entry.id, 1, 2, "new", &updated).ok());
  EXPECT_TRUE(updated);
  ASSERT_TRUE(catalog_->RewrapPrivateKey(entry.id, 1, 2, "again", &updated).ok());
  EXPECT_FALSE(updated);  // no longer under version 1
  uint32_t left = 0;
  ASSERT_TRUE(catalog_->CountPrivateFilesNotAt(2, &left).ok());
  EXPECT_EQ(left, 1u);

  ASSERT_TRUE(catalog_->GetPrivateFile(MakeDigest(6), kA, &entry).ok());
  ASSERT_TRUE(catalog_->RewrapPrivateKey(entry.id, 1, 2, "new", &updated).ok());
  ASSERT_TRUE(catalog_->FinishRekey(2, &finished).ok());
  EXPECT_TRUE(finished);
  std::string value;
  ASSERT_TRUE(catalog_->GetSetting(kMasterKeyVersionSetting, &value).ok());
  EXPECT_EQ(value, "2");
  EXPECT_EQ(catalog_->GetSetting(kRekeyTargetSetting, &value).code(), Code::kNotFound);
}

TEST_F(CatalogPrivateTest, ForgetOriginTakesItsPrivateEntriesAndReads) {
  const Digest mine = MakeDigest(7), theirs = MakeDigest(8);
  bool created = false;
  ASSERT_TRUE(catalog_->RecordPrivateStore(Entry(mine, kB), 1, &created).ok());
  ASSERT_TRUE(catalog_->RecordPrivateStore(Entry(theirs, kA), 1, &created).ok());
  PrivateFileRecord entry;
  ASSERT_TRUE(catalog_->GetPrivateFile(theirs, kA, &entry).ok());
  ASSERT_TRUE(catalog_->RecordPrivateRead(entry.id, kB, 2).ok());
  ForgetResult result;
  ASSERT_TRUE(catalog_->ForgetOrigin(kB.origin, &result).ok());
  ASSERT_EQ(result.deleted_private.size(), 1u);
  EXPECT_EQ(result.deleted_private[0].digest, mine);
  EXPECT_EQ(result.usage_removed, 2u);  // its store of `mine`, its read of `theirs`
  std::vector<PrivateFileRecord> left;
  ASSERT_TRUE(catalog_->ListPrivateFiles(std::nullopt, &left).ok());
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].used_by, 1u);
}

TEST_F(CatalogPrivateTest, VersionTwoGrantsMigrateAsNotExplicit) {
  catalog_.reset();
  const std::string path = dir_.Join("v2.db");
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         "CREATE TABLE files(digest TEXT PRIMARY KEY NOT NULL, size INTEGER NOT NULL, name TEXT NOT"
                         " NULL DEFAULT '', first_stored INTEGER NOT NULL, private INTEGER NOT NULL DEFAULT 0);"
                         "CREATE TABLE principals(id INTEGER PRIMARY KEY, app TEXT NOT NULL, origin TEXT NOT NULL,"
                         " UNIQUE(app, origin));"
                         "CREATE TABLE usage(digest TEXT NOT NULL REFERENCES files(digest) ON DELETE CASCADE,"
                         " principal INTEGER NOT NULL REFERENCES principals(id), stored INTEGER NOT NULL DEFAULT 0,"
                         " stores INTEGER NOT NULL DEFAULT 0, reads INTEGER NOT NULL DEFAULT 0, first_used INTEGER"
                         " NOT NULL, last_used INTEGER NOT NULL, PRIMARY KEY(digest, principal));"
                         "CREATE TABLE grants(app TEXT NOT NULL, origin TEXT NOT NULL, digest TEXT NOT NULL,"
                         " created INTEGER NOT NULL, PRIMARY KEY(app, origin, digest));"
                         "CREATE INDEX grants_by_digest ON grants(digest);"
                         "CREATE TABLE settings(key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL);"
                         "INSERT INTO grants VALUES('/usr/bin/a', '', '*', 5);"
                         "PRAGMA user_version = 2;",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  ASSERT_TRUE(Catalog::Open(path, &catalog_).ok());
  std::vector<GrantRecord> grants;
  ASSERT_TRUE(catalog_->ListGrants(std::nullopt, &grants).ok());
  ASSERT_EQ(grants.size(), 1u);
  EXPECT_FALSE(grants[0].explicit_grant);
  bool created = false;
  EXPECT_TRUE(catalog_->RecordPrivateStore(Entry(MakeDigest(9), kA), 1, &created).ok());
}

}  // namespace
}  // namespace costore
