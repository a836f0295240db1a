// client_verify_gc_test: the store's upkeep through the C++ API against the
// real costored: Verify (a file damaged on disk is reported, never served,
// and repaired by storing it again), SetPinned, Collect, Space, and the
// space settings. Run through tests/support/with-costored (one daemon for
// the whole program; COSTORE_TEST_STORE is its store directory).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <costore/costore.hpp>

#include "client_test_support.h"

namespace {

using namespace costore::client_test;  // Client, Error, ErrorCode and the helpers
using costore::client::CollectOptions;
using costore::client::kStateAbsent;
using costore::client::kStateDamaged;
using costore::client::kStateOk;

constexpr uint64_t kGiB = uint64_t{1} << 30;

bool Contains(const std::vector<std::string>& digests, const std::string& digest) {
  return std::find(digests.begin(), digests.end(), digest) != digests.end();
}

// Where the daemon keeps the public file of `digest`:
// <store>/blobs/sha256/<first 2 hex>/<64 hex>.
std::string BlobPath(const std::string& digest) {
  const char* store = std::getenv("COSTORE_TEST_STORE");
  const std::string hex = digest.substr(7);
  return std::string(store ? store : "") + "/blobs/sha256/" + hex.substr(0, 2) + "/" + hex;
}

// Flips one byte of the stored file of `digest` on disk, as a failing disk
// or a careless program would (the file is 0444: made writable, then not).
void FlipStoredByte(const std::string& digest, off_t at) {
  const std::string path = BlobPath(digest);
  ASSERT_EQ(::chmod(path.c_str(), 0644), 0) << path << ": " << std::strerror(errno);
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(fd, 0) << path << ": " << std::strerror(errno);
  unsigned char byte = 0;
  EXPECT_EQ(::pread(fd, &byte, 1, at), 1);
  byte ^= 0x5a;
  EXPECT_EQ(::pwrite(fd, &byte, 1, at), 1);
  ::close(fd);
  ASSERT_EQ(::chmod(path.c_str(), 0444), 0);
}

// Cuts the stored file of `digest` to `size` bytes on disk.
void TruncateStored(const std::string& digest, off_t size) {
  const std::string path = BlobPath(digest);
  ASSERT_EQ(::chmod(path.c_str(), 0644), 0) << path << ": " << std::strerror(errno);
  EXPECT_EQ(::truncate(path.c_str(), size), 0) << std::strerror(errno);
  ASSERT_EQ(::chmod(path.c_str(), 0444), 0);
}

class UpkeepTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ASSERT_NE(std::getenv("DBUS_SESSION_BUS_ADDRESS"), nullptr) << "run me through tests/support/with-costored";
    ASSERT_NE(std::getenv("COSTORE_TEST_STORE"), nullptr) << "run me through tests/support/with-costored";
  }

  // The space settings back to their defaults after each test, whatever it
  // did, so that a quota or floor never refuses another test's stores.
  void TearDown() override {
    for (const auto& reset : std::vector<std::function<void()>>{
             [&] { client_.SetSettingUint64(costore::client::kSettingMinFreeSpace, 0); },
             [&] { client_.SetSettingUint64(costore::client::kSettingQuota, 0); },
             [&] { client_.SetSettingBool(costore::client::kSettingAutoCollect, false); },
             [&] { client_.SetSetting(costore::client::kSettingScrubInterval, 0u); },
         }) {
      try {
        reset();
      } catch (const Error&) {
        // A daemon without the setting: nothing to reset.
      }
    }
  }

  // A file in the scratch directory holding `data`; stores it as `origin`.
  std::string Store(const std::vector<std::byte>& data, const std::string& name,
                    const std::string& origin = "https://upkeep.example") {
    std::string path = WriteScratch(name, data);
    std::string digest = Sha256(data);
    client_.StorePath(path, digest, {.origin = origin, .name = name});
    return digest;
  }

  bool Stored(const std::string& digest) {
    try {
      client_.Stat(digest);
      return true;
    } catch (const Error& error) {
      EXPECT_EQ(error.code(), ErrorCode::kNotFound) << error.what();
      return false;
    }
  }

  Client client_ = Client::Connect();
};

TEST_F(UpkeepTest, EntriesCarryStateAndPin) {
  auto data = Bytes(20000, 1);
  std::string digest = Store(data, "state.bin");
  costore::client::FileEntry entry = client_.Stat(digest);
  EXPECT_EQ(entry.state, kStateOk);
  EXPECT_FALSE(entry.damaged());
  EXPECT_EQ(entry.problem, "");
  EXPECT_FALSE(entry.pinned);
  const uint32_t pinned_before = client_.GetSpace().pinned;

  client_.SetPinned(digest.substr(7), true);  // bare hex is fine
  EXPECT_TRUE(client_.Stat(digest).pinned);
  auto entries = client_.List(digest);
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_TRUE(entries[0].pinned);
  EXPECT_EQ(entries[0].state, kStateOk);
  EXPECT_EQ(client_.GetSpace().pinned, pinned_before + 1);
  client_.SetPinned(digest, true);  // twice is fine
  EXPECT_EQ(client_.GetSpace().pinned, pinned_before + 1);

  client_.SetPinned(digest, false);
  EXPECT_FALSE(client_.Stat(digest).pinned);
  EXPECT_EQ(client_.GetSpace().pinned, pinned_before);

  EXPECT_EQ(ErrorOf([&] { client_.SetPinned("sha256:" + std::string(64, 'e'), true); }).code(),
            ErrorCode::kNotFound);
  EXPECT_EQ(ErrorOf([&] { client_.SetPinned("not a digest", true); }).code(), ErrorCode::kInvalidArgument);
  // Delete is the user's own word: it deletes a pinned file too.
  client_.SetPinned(digest, true);
  client_.Delete(digest);
  EXPECT_FALSE(Stored(digest));
  EXPECT_EQ(client_.GetSpace().pinned, pinned_before);
}

TEST_F(UpkeepTest, VerifyReportsOkEntriesAndAbsentDigests) {
  auto data = Bytes(300000, 2);
  std::string digest = Store(data, "verify-ok.bin");
  const std::string unknown = "sha256:" + std::string(64, 'c');

  auto results = client_.Verify({digest.substr(7), unknown});
  ASSERT_EQ(results.size(), 2u);
  auto ok = std::find_if(results.begin(), results.end(), [&](const auto& r) { return r.digest == digest; });
  auto absent = std::find_if(results.begin(), results.end(), [&](const auto& r) { return r.digest == unknown; });
  ASSERT_NE(ok, results.end());
  ASSERT_NE(absent, results.end());
  EXPECT_EQ(ok->state, kStateOk);
  EXPECT_EQ(ok->problem, "");
  EXPECT_EQ(ok->size, data.size());
  EXPECT_FALSE(ok->is_private);
  EXPECT_EQ(ok->owner_app, "");
  EXPECT_EQ(absent->state, kStateAbsent);

  // Every entry, ordered as List orders them.
  auto all = client_.Verify();
  auto listed = client_.List();
  ASSERT_EQ(all.size(), listed.size());
  for (size_t i = 0; i < all.size(); ++i) {
    EXPECT_EQ(all[i].digest, listed[i].digest);
    EXPECT_EQ(all[i].state, kStateOk) << all[i].digest << ": " << all[i].problem;
  }
  costore::client::FileEntry entry = client_.Stat(digest);
  EXPECT_GT(entry.last_verified_usec, 0);
  EXPECT_GE(entry.last_verified_usec, entry.first_stored_usec);

  EXPECT_EQ(ErrorOf([&] { client_.Verify({digest, "sha256:nope"}); }).code(), ErrorCode::kInvalidArgument);
  client_.Delete(digest);
}

TEST_F(UpkeepTest, VerifyFindsADamagedFileThatIsNeverServedUntilStoredAgain) {
  auto data = Bytes(1 << 20, 3);
  std::string digest = Store(data, "damaged.bin");
  const uint32_t damaged_before = client_.GetSpace().damaged;

  FlipStoredByte(digest, 123456);
  auto results = client_.Verify({digest});
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].digest, digest);
  EXPECT_EQ(results[0].state, kStateDamaged);
  EXPECT_NE(results[0].problem, "");
  EXPECT_EQ(results[0].size, data.size());

  // The manager's view says so, and why; the bytes are kept aside, not
  // deleted.
  costore::client::FileEntry entry = client_.Stat(digest);
  EXPECT_EQ(entry.state, kStateDamaged);
  EXPECT_TRUE(entry.damaged());
  EXPECT_NE(entry.problem, "");
  auto listed = client_.List(digest);
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].state, kStateDamaged);
  EXPECT_EQ(client_.GetSpace().damaged, damaged_before + 1);
  const std::filesystem::path quarantine = std::filesystem::path(std::getenv("COSTORE_TEST_STORE")) / "quarantine";
  EXPECT_TRUE(std::filesystem::is_directory(quarantine));
  if (std::filesystem::is_directory(quarantine)) {
    EXPECT_FALSE(std::filesystem::is_empty(quarantine)) << "the damaged bytes were not kept in " << quarantine;
  }

  // Never served: a miss, worded as for a file that is not stored.
  Error refused = ErrorOf([&] { client_.Open(digest, "https://upkeep.example"); });
  EXPECT_EQ(refused.code(), ErrorCode::kNotFound);
  // Still damaged when verified again ("now or before").
  EXPECT_EQ(client_.Verify({digest}).at(0).state, kStateDamaged);

  // Storing the right bytes repairs it.
  EXPECT_EQ(Store(data, "damaged.bin"), digest);
  entry = client_.Stat(digest);
  EXPECT_EQ(entry.state, kStateOk);
  EXPECT_EQ(entry.problem, "");
  auto opened = client_.Open(digest, "https://upkeep.example");
  EXPECT_TRUE(ReadAll(opened.fd.get()) == data);
  EXPECT_EQ(client_.Verify({digest}).at(0).state, kStateOk);
  EXPECT_EQ(client_.GetSpace().damaged, damaged_before);
  client_.Delete(digest);
}

TEST_F(UpkeepTest, OpenNoticesATruncatedFileWithoutAVerify) {
  auto data = Bytes(200000, 4);
  std::string digest = Store(data, "truncated.bin");
  TruncateStored(digest, 1000);
  EXPECT_EQ(ErrorOf([&] { client_.Open(digest, "https://upkeep.example"); }).code(), ErrorCode::kNotFound);
  costore::client::FileEntry entry = client_.Stat(digest);
  EXPECT_EQ(entry.state, kStateDamaged);
  EXPECT_NE(entry.problem, "");

  Store(data, "truncated.bin");
  EXPECT_EQ(client_.Stat(digest).state, kStateOk);
  EXPECT_TRUE(ReadAll(client_.Open(digest, "https://upkeep.example").fd.get()) == data);
  client_.Delete(digest);
}

TEST_F(UpkeepTest, CollectNeverDeletesPinnedFiles) {
  auto kept_data = Bytes(150000, 5);
  auto gone_data = Bytes(250000, 6);
  std::string kept = Store(kept_data, "pinned.bin");
  std::string gone = Store(gone_data, "unpinned.bin");
  client_.SetPinned(kept, true);

  // A dry run says what would go, and deletes nothing.
  costore::client::CollectResult dry = client_.Collect({.target_size = 0, .dry_run = true});
  EXPECT_TRUE(Contains(dry.digests, gone));
  EXPECT_FALSE(Contains(dry.digests, kept));
  EXPECT_EQ(dry.files_deleted, dry.digests.size());
  EXPECT_GE(dry.bytes_freed, gone_data.size());
  EXPECT_TRUE(Stored(gone));
  EXPECT_TRUE(Stored(kept));

  costore::client::CollectResult done = client_.Collect({.target_size = 0});
  EXPECT_EQ(done.digests, dry.digests);
  EXPECT_EQ(done.files_deleted, done.digests.size());
  EXPECT_EQ(done.bytes_freed, dry.bytes_freed);
  EXPECT_EQ(done.store_bytes, dry.store_bytes);
  EXPECT_FALSE(Stored(gone));
  EXPECT_TRUE(Stored(kept));
  EXPECT_GE(done.store_bytes, kept_data.size());
  EXPECT_EQ(done.store_bytes, client_.GetSpace().store_bytes);

  // Nothing left to collect but the pinned file.
  costore::client::CollectResult again = client_.Collect({.target_size = 0});
  EXPECT_EQ(again.files_deleted, 0u);
  EXPECT_EQ(again.bytes_freed, 0u);
  EXPECT_TRUE(again.digests.empty());
  EXPECT_TRUE(Stored(kept));

  client_.SetPinned(kept, false);
  costore::client::CollectResult unpinned = client_.Collect({.target_size = 0});
  EXPECT_TRUE(Contains(unpinned.digests, kept));
  EXPECT_FALSE(Stored(kept));
  EXPECT_EQ(client_.GetSpace().store_bytes, unpinned.store_bytes);
}

TEST_F(UpkeepTest, CollectByAgeKeepsFilesUsedSinceThen) {
  auto data = Bytes(60000, 7);
  std::string digest = Store(data, "recent.bin");
  // Just stored: not unused for a day.
  costore::client::CollectResult result = client_.Collect({.unused_for_seconds = 86400});
  EXPECT_FALSE(Contains(result.digests, digest));
  EXPECT_TRUE(Stored(digest));
  // Unused for at least no time at all: every unpinned public file.
  result = client_.Collect({.unused_for_seconds = 0});
  EXPECT_TRUE(Contains(result.digests, digest));
  EXPECT_FALSE(Stored(digest));
}

TEST_F(UpkeepTest, CollectNeedsALimit) {
  Error error = ErrorOf([&] { client_.Collect(CollectOptions{}); });
  EXPECT_EQ(error.code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(ErrorOf([&] { client_.Collect({.dry_run = true}); }).code(), ErrorCode::kInvalidArgument);
}

TEST_F(UpkeepTest, SpaceSettingsRoundTrip) {
  using costore::client::kSettingAutoCollect;
  using costore::client::kSettingMinFreeSpace;
  using costore::client::kSettingQuota;
  using costore::client::kSettingScrubInterval;
  costore::client::Settings settings = client_.GetSettings();
  EXPECT_EQ(settings.min_free_space, 0u);
  EXPECT_EQ(settings.quota, 0u);
  EXPECT_FALSE(settings.auto_collect);
  EXPECT_EQ(settings.scrub_interval_days, 0u);
  costore::client::Space space = client_.GetSpace();
  EXPECT_GT(space.floor_bytes, 0u);  // automatic, resolved
  EXPECT_LE(space.floor_bytes, 2 * kGiB);
  EXPECT_EQ(space.quota_bytes, 0u);
  EXPECT_GT(space.free_bytes, 0u);
  EXPECT_EQ(space.last_scrub_usec, 0);  // the scrub is off: it never ran

  client_.SetSettingUint64(kSettingMinFreeSpace, kGiB);
  client_.SetSettingUint64(kSettingQuota, 10 * kGiB);
  client_.SetSettingBool(kSettingAutoCollect, true);
  client_.SetSetting(kSettingScrubInterval, 7u);
  settings = client_.GetSettings();
  EXPECT_EQ(settings.min_free_space, kGiB);
  EXPECT_EQ(settings.quota, 10 * kGiB);
  EXPECT_TRUE(settings.auto_collect);
  EXPECT_EQ(settings.scrub_interval_days, 7u);
  EXPECT_EQ(settings.consent_policy, "ask");  // the others are left alone
  space = client_.GetSpace();
  EXPECT_EQ(space.floor_bytes, kGiB);
  EXPECT_EQ(space.quota_bytes, 10 * kGiB);

  // Wrong types and unknown keys: InvalidArgument naming the key.
  struct Refusal {
    std::string key;
    std::function<void()> call;
  };
  for (const Refusal& refusal : std::vector<Refusal>{
           {"quota", [&] { client_.SetSetting(kSettingQuota, "10G"); }},
           {"min-free-space", [&] { client_.SetSettingBool(kSettingMinFreeSpace, true); }},
           {"auto-collect", [&] { client_.SetSetting(kSettingAutoCollect, "yes"); }},
           {"auto-collect", [&] { client_.SetSettingUint64(kSettingAutoCollect, 1); }},
           {"scrub-interval", [&] { client_.SetSetting(kSettingScrubInterval, "weekly"); }},
           {"scrub-interval", [&] { client_.SetSettingBool(kSettingScrubInterval, true); }},
           {"colour", [&] { client_.SetSettingUint64("colour", 1); }},
       }) {
    Error error = ErrorOf(refusal.call);
    EXPECT_EQ(error.code(), ErrorCode::kInvalidArgument) << refusal.key << ": " << error.what();
    EXPECT_NE(std::string(error.what()).find(refusal.key), std::string::npos) << error.what();
  }
  settings = client_.GetSettings();  // refusals change nothing
  EXPECT_EQ(settings.min_free_space, kGiB);
  EXPECT_EQ(settings.quota, 10 * kGiB);
  EXPECT_TRUE(settings.auto_collect);
  EXPECT_EQ(settings.scrub_interval_days, 7u);

  client_.SetSettingUint64(kSettingMinFreeSpace, 0);
  client_.SetSettingUint64(kSettingQuota, 0);
  client_.SetSettingBool(kSettingAutoCollect, false);
  client_.SetSetting(kSettingScrubInterval, 0u);
  settings = client_.GetSettings();
  EXPECT_EQ(settings.min_free_space, 0u);
  EXPECT_EQ(settings.quota, 0u);
  EXPECT_FALSE(settings.auto_collect);
  EXPECT_EQ(settings.scrub_interval_days, 0u);
  EXPECT_EQ(client_.GetSpace().quota_bytes, 0u);
}

TEST_F(UpkeepTest, SpaceCountsTheStore) {
  costore::client::Space before = client_.GetSpace();
  auto data = Bytes(400000, 8);
  std::string digest = Store(data, "space.bin");
  costore::client::Space after = client_.GetSpace();
  EXPECT_EQ(after.files, before.files + 1);
  EXPECT_GE(after.store_bytes, before.store_bytes + data.size());
  client_.Delete(digest);
  costore::client::Space deleted = client_.GetSpace();
  EXPECT_EQ(deleted.files, before.files);
  EXPECT_EQ(deleted.store_bytes, before.store_bytes);
}

TEST_F(UpkeepTest, QuotaRefusesAStoreUnlessAutoCollectMakesRoom) {
  client_.Collect({.target_size = 0});  // only what this test stores, below
  std::string pinned = Store(Bytes(100000, 9), "quota-pinned.bin");
  client_.SetPinned(pinned, true);
  std::string evictable = Store(Bytes(100000, 10), "quota-evictable.bin");
  const uint64_t quota = client_.GetSpace().store_bytes + 50000;
  client_.SetSettingUint64(costore::client::kSettingQuota, quota);

  auto extra = Bytes(100000, 11);
  Error error = ErrorOf([&] { Store(extra, "quota-extra.bin"); });
  EXPECT_EQ(error.code(), ErrorCode::kQuotaExceeded) << error.what();
  EXPECT_FALSE(Stored(Sha256(extra)));

  // With auto-collect, the least recently used unpinned public file makes
  // room; the pinned one stays.
  client_.SetSettingBool(costore::client::kSettingAutoCollect, true);
  std::string stored = Store(extra, "quota-extra.bin");
  EXPECT_TRUE(Stored(stored));
  EXPECT_FALSE(Stored(evictable));
  EXPECT_TRUE(Stored(pinned));
  EXPECT_LE(client_.GetSpace().store_bytes, quota);

  client_.SetPinned(pinned, false);
  client_.Delete(pinned);
  client_.Delete(stored);
}

TEST_F(UpkeepTest, FreeSpaceFloorRefusesStores) {
  // A floor above what is free: every store would go below it.
  const uint64_t floor = client_.GetSpace().free_bytes + kGiB;
  client_.SetSettingUint64(costore::client::kSettingMinFreeSpace, floor);
  EXPECT_EQ(client_.GetSpace().floor_bytes, floor);

  auto data = Bytes(4096, 12);
  Error known = ErrorOf([&] { Store(data, "floor.bin"); });
  EXPECT_EQ(known.code(), ErrorCode::kNoSpace) << known.what();
  // Of unknown size: stopped as the bytes arrive.
  size_t offset = 0;
  auto reader = [&](std::span<std::byte> buffer) -> size_t {
    size_t n = std::min(buffer.size(), data.size() - offset);
    std::memcpy(buffer.data(), data.data() + offset, n);
    offset += n;
    return n;
  };
  Error unknown_size = ErrorOf([&] { client_.StoreStream(reader, Sha256(data)); });
  EXPECT_EQ(unknown_size.code(), ErrorCode::kNoSpace) << unknown_size.what();
  EXPECT_FALSE(Stored(Sha256(data)));

  client_.SetSettingUint64(costore::client::kSettingMinFreeSpace, 0);
  EXPECT_EQ(Store(data, "floor.bin"), Sha256(data));
  client_.Delete(Sha256(data));
}

}  // namespace
