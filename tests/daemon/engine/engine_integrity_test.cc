// The engine's integrity behaviour (engine_integrity.cc, engine_space.cc)
// without a bus: a real store directory, real SQLite, files changed behind
// the engine's back as an attacker or a failing disk would.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "daemon/engine/engine.h"
#include "tests/daemon/engine/engine_test_util.h"
#include "tests/daemon/engine/test_util.h"

namespace costore {
namespace {

using ::testing::HasSubstr;
using test::DigestText;

const Principal kOwner{"/usr/bin/owner", ""};

class EngineIntegrityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    signal(SIGPIPE, SIG_IGN);
    Reopen();
  }

  void Reopen(Env* env = Env::Default()) {
    engine_.reset();
    EngineOptions options;
    options.root = root_;
    options.env = env;
    Status s = Engine::Open(options, &engine_);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  Status Store(const std::string& bytes) {
    return test::StoreBytes(engine_.get(), kOwner, bytes, StoreRequest{}, nullptr);
  }

  // The bytes an Open hands out, or the error's code name.
  std::string Open(const std::string& bytes) {
    int fd = -1;
    FileInfo info;
    Status s = engine_->OpenFile(kOwner, DigestText(bytes), &fd, &info);
    if (!s.ok()) return std::string(CodeName(s.code()));
    std::string out = test::ReadFd(fd);
    ::close(fd);
    return out;
  }

  FileRecord Stat(const std::string& bytes) {
    FileRecord record;
    EXPECT_TRUE(engine_->Stat(DigestText(bytes), &record).ok());
    return record;
  }

  // Polls (bounded, no time asserted) until `done` holds.
  template <typename F>
  bool Eventually(F&& done) {
    for (int i = 0; i < 1000; ++i) {
      if (done()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

  std::string BlobPath(const std::string& bytes) {
    const std::string hex = DigestText(bytes).substr(7);
    return root_ + "/blobs/sha256/" + hex.substr(0, 2) + "/" + hex;
  }

  std::vector<std::string> Quarantine() { return test::FilesBelow(root_ + "/quarantine"); }

  test::TempDir dir_;
  std::string root_ = dir_.Join("store");
  std::unique_ptr<Engine> engine_;
};

TEST_F(EngineIntegrityTest, AModeChangeIsCaughtAndTheFileRepairedFromItsRightBytes) {
  const std::string data = test::RandomBytes(300'000, 1);
  ASSERT_TRUE(Store(data).ok());
  // What a holder of the blob's descriptor could do: make it writable.
  ASSERT_EQ(::chmod(BlobPath(data).c_str(), 0644), 0);
  ASSERT_EQ(::chmod(BlobPath(data).c_str(), 0444), 0);
  EXPECT_EQ(Open(data), "NotFound");  // that inode is never served again
  // The bytes were right: a fresh copy replaces it, and the old inode goes.
  ASSERT_TRUE(Eventually([&] { return !Stat(data).damaged(); }));
  EXPECT_TRUE(Open(data) == data);
  EXPECT_TRUE(Quarantine().empty());
}

TEST_F(EngineIntegrityTest, RewrittenBytesAreNeverServedAndAStoreRepairs) {
  const std::string data = test::RandomBytes(300'000, 2);
  ASSERT_TRUE(Store(data).ok());
  ASSERT_EQ(::chmod(BlobPath(data).c_str(), 0644), 0);
  {
    int fd = ::open(BlobPath(data).c_str(), O_WRONLY);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::pwrite(fd, "EVIL", 4, 1000), 4);
    ::close(fd);
  }
  EXPECT_EQ(Open(data), "NotFound");
  FileRecord record = Stat(data);
  EXPECT_TRUE(record.damaged());
  EXPECT_THAT(record.problem, HasSubstr("changed on disk"));
  // The repair from the quarantined copy fails its digest: still damaged,
  // the tampered inode kept in quarantine/ for the user to see.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(Open(data), "NotFound");
  EXPECT_EQ(Quarantine().size(), 1u);
  ASSERT_TRUE(Store(data).ok());
  EXPECT_FALSE(Stat(data).damaged());
  EXPECT_TRUE(Open(data) == data);
}

TEST_F(EngineIntegrityTest, VerifyReportsTruncationAndRecordsWhenFilesWereVerified) {
  const std::string good = test::RandomBytes(10'000, 3), bad = test::RandomBytes(10'000, 4);
  ASSERT_TRUE(Store(good).ok());
  ASSERT_TRUE(Store(bad).ok());
  ASSERT_EQ(::truncate(BlobPath(bad).c_str(), 100), 0);
  std::vector<VerifyResult> results;
  ASSERT_TRUE(engine_->Verify({}, &results).ok());
  ASSERT_EQ(results.size(), 2u);
  for (const VerifyResult& r : results) {
    if (r.digest == DigestText(good)) {
      EXPECT_EQ(r.state, "ok");
    } else {
      EXPECT_EQ(r.state, "damaged");
      EXPECT_FALSE(r.problem.empty());
    }
  }
  EXPECT_GT(Stat(good).verified_us, 0);
  EXPECT_TRUE(Stat(bad).damaged());
  // Asking for a digest that is not stored: "absent", not an error.
  ASSERT_TRUE(engine_->Verify({DigestText("never stored")}, &results).ok());
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].state, "absent");
  EXPECT_EQ(engine_->Verify({"sha256:nope"}, &results).code(), Code::kInvalidArgument);
}

TEST_F(EngineIntegrityTest, TheScrubFindsDamageWithoutAnyCall) {
  const std::string data = test::RandomBytes(50'000, 5);
  ASSERT_TRUE(Store(data).ok());
  ASSERT_EQ(::chmod(BlobPath(data).c_str(), 0644), 0);
  ASSERT_EQ(::truncate(BlobPath(data).c_str(), 10), 0);
  // Never scrubbed, so due at once when turned on.
  ASSERT_TRUE(engine_->SetSetting("scrub-interval", uint32_t{7}).ok());
  ASSERT_TRUE(Eventually([&] { return Stat(data).damaged(); }));
  SpaceReport space;
  ASSERT_TRUE(Eventually([&] { return engine_->Space(&space).ok() && space.last_scrub_us > 0; }));
  EXPECT_EQ(space.damaged, 1u);
}

TEST_F(EngineIntegrityTest, ALostCatalogIsRebuiltFromTheBlobs) {
  const std::string a = test::RandomBytes(20'000, 6), b = test::RandomBytes(30'000, 7);
  ASSERT_TRUE(Store(a).ok());
  ASSERT_TRUE(Store(b).ok());
  engine_.reset();
  for (const char* name : {"catalog.db", "catalog.db-wal", "catalog.db-shm"}) {
    std::filesystem::remove(root_ + "/" + name);
  }
  Reopen();
  std::vector<FileRecord> files;
  ASSERT_TRUE(engine_->List(&files).ok());
  ASSERT_EQ(files.size(), 2u);
  for (const FileRecord& f : files) {
    EXPECT_FALSE(f.damaged());
    EXPECT_EQ(f.stored_by, 0u);  // who stored it is not known any more
    EXPECT_GT(f.verified_us, 0);
  }
  // The owner's attribution is gone; a grant (or a new store) opens it.
  ASSERT_TRUE(engine_->Grant(kOwner, DigestText(a)).ok());
  EXPECT_TRUE(Open(a) == a);
}

TEST_F(EngineIntegrityTest, AnUnreadableCatalogIsMovedAsideAndRebuilt) {
  const std::string a = test::RandomBytes(20'000, 8);
  ASSERT_TRUE(Store(a).ok());
  engine_.reset();
  std::filesystem::remove(root_ + "/catalog.db-wal");
  std::filesystem::remove(root_ + "/catalog.db-shm");
  test::WriteFile(root_ + "/catalog.db.new", std::string(8192, 'x'));
  std::filesystem::rename(root_ + "/catalog.db.new", root_ + "/catalog.db");
  Reopen();
  std::vector<FileRecord> files;
  ASSERT_TRUE(engine_->List(&files).ok());
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0].digest.ToString(), DigestText(a));
  ASSERT_EQ(Quarantine().size(), 1u);
  EXPECT_THAT(Quarantine()[0], HasSubstr("catalog.db"));
}

TEST_F(EngineIntegrityTest, ASecondEngineOnTheStoreIsBusyAndTouchesNothing) {
  test::WriteFile(root_ + "/ingest/0123456789abcdef.part", "a store in flight");
  std::unique_ptr<Engine> second;
  EngineOptions options;
  options.root = root_;
  Status s = Engine::Open(options, &second);
  EXPECT_EQ(s.code(), Code::kBusy);
  EXPECT_THAT(s.message(), HasSubstr("in use by another costored"));
  EXPECT_EQ(test::ReadFile(root_ + "/ingest/0123456789abcdef.part"), "a store in flight");
}

TEST_F(EngineIntegrityTest, CollectTakesTheLeastRecentlyUsedAndNeverAPinnedFile) {
  const std::string old_pinned = "old and pinned", old = "old", recent = "recent";
  ASSERT_TRUE(Store(old_pinned).ok());
  ASSERT_TRUE(Store(old).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_TRUE(Store(recent).ok());
  ASSERT_TRUE(engine_->SetPinned(DigestText(old_pinned), true).ok());
  EXPECT_EQ(engine_->SetPinned(DigestText("absent"), true).code(), Code::kNotFound);

  CollectOptions options;
  options.target_size = recent.size() + old_pinned.size();
  options.dry_run = true;
  CollectResult result;
  ASSERT_TRUE(engine_->Collect(options, &result).ok());
  EXPECT_THAT(result.digests, ::testing::ElementsAre(DigestText(old)));
  EXPECT_EQ(Open(old), old);  // a dry run deletes nothing

  options.dry_run = false;
  options.target_size = 0;
  ASSERT_TRUE(engine_->Collect(options, &result).ok());
  EXPECT_EQ(result.files_deleted, 2u);
  EXPECT_EQ(result.bytes_freed, old.size() + recent.size());
  EXPECT_EQ(result.store_bytes, old_pinned.size());
  EXPECT_EQ(Open(old_pinned), old_pinned);
  EXPECT_EQ(Open(recent), "NotFound");
  EXPECT_EQ(engine_->Collect(CollectOptions{}, &result).code(), Code::kInvalidArgument);
}

TEST_F(EngineIntegrityTest, AnInterruptedDeleteIsFinishedAtStart) {
  const std::string data = "deleted, then the daemon died";
  ASSERT_TRUE(Store(data).ok());
  engine_.reset();
  // Where a crash after the first step of a delete leaves the blob.
  const std::string hex = DigestText(data).substr(7);
  std::filesystem::rename(BlobPath(data), root_ + "/ingest/" + hex + ".deleting");
  Reopen();
  FileRecord record;
  EXPECT_EQ(engine_->Stat(DigestText(data), &record).code(), Code::kNotFound);
  EXPECT_TRUE(test::FilesBelow(root_ + "/ingest").empty());
}

// Review findings: each of these failed before its fix.

TEST_F(EngineIntegrityTest, AutoCollectNeverEvictsForAStoreThatOnlyClaimsASize) {
  const std::string a = test::RandomBytes(100'000, 9), b = test::RandomBytes(100'000, 10);
  ASSERT_TRUE(Store(a).ok());
  ASSERT_TRUE(Store(b).ok());
  ASSERT_TRUE(engine_->SetSetting("auto-collect", true).ok());
  ASSERT_TRUE(engine_->SetSetting("quota", uint64_t{250'000}).ok());
  // A caller claims 2^49 bytes: more than eviction could ever make room for.
  StoreRequest huge;
  huge.size = uint64_t{1} << 49;
  Status s = test::StoreBytes(engine_.get(), kOwner, "tiny", huge, nullptr);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(Open(a), a);
  EXPECT_EQ(Open(b), b);
  // It claims 150 KB (room if one file went) but sends 4 bytes: the files
  // are evicted only as bytes arrive, so none goes.
  StoreRequest liar;
  liar.size = 150'000;
  s = test::StoreBytes(engine_.get(), kOwner, "tiny", liar, nullptr);
  EXPECT_EQ(s.code(), Code::kDigestMismatch) << s.ToString();
  EXPECT_EQ(Open(a), a);
  EXPECT_EQ(Open(b), b);
  // An honest store of that size gets its room: the least recently used
  // file goes, once the bytes are in, and the quota holds.
  const std::string c = test::RandomBytes(150'000, 13);
  s = test::StoreBytes(engine_.get(), kOwner, c, liar, nullptr);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(Open(a), "NotFound");
  EXPECT_EQ(Open(b), b);
  EXPECT_EQ(Open(c), c);
  SpaceReport space;
  ASSERT_TRUE(engine_->Space(&space).ok());
  EXPECT_LE(space.store_bytes, 250'000u);
}

// Fails chosen opens with EMFILE, as a daemon out of descriptors would.
class OutOfDescriptorsEnv : public EnvWrapper {
 public:
  using EnvWrapper::EnvWrapper;
  std::atomic<int> failures{0};
  Status OpenReadOnly(const std::string& path, int* fd, FileStat* st) override {
    if (failures > 0 && path.find("/blobs/") != std::string::npos) {
      --failures;
      return Status::FromErrno("open " + path, EMFILE);
    }
    return EnvWrapper::OpenReadOnly(path, fd, st);
  }
  Status OpenReadOnlyBeneath(int dir_fd, const std::string& relative, const std::string& path, int* fd,
                             FileStat* st) override {
    if (failures > 0) {
      --failures;
      return Status::FromErrno("open " + path, EMFILE);
    }
    return EnvWrapper::OpenReadOnlyBeneath(dir_fd, relative, path, fd, st);
  }
};

TEST_F(EngineIntegrityTest, APassingOpenFailureIsAnErrorNotDamage) {
  OutOfDescriptorsEnv env(Env::Default());
  Reopen(&env);
  const std::string data = test::RandomBytes(10'000, 11);
  ASSERT_TRUE(Store(data).ok());
  env.failures = 1;
  EXPECT_EQ(Open(data), "IOError");
  EXPECT_FALSE(Stat(data).damaged());
  EXPECT_TRUE(Quarantine().empty());
  EXPECT_TRUE(Open(data) == data);
  env.failures = 1;
  std::vector<VerifyResult> results;
  ASSERT_TRUE(engine_->Verify({}, &results).ok());
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].state, "unreadable");
  EXPECT_FALSE(Stat(data).damaged());
}

TEST_F(EngineIntegrityTest, AForgottenSiteFileNeverComesBack) {
  const Principal site{"/usr/bin/browser", "https://forgotten.example"};
  const std::string data = test::RandomBytes(10'000, 12);
  ASSERT_TRUE(test::StoreBytes(engine_.get(), site, data, StoreRequest{}, nullptr).ok());
  // A failure moving the blob aside: nothing is forgotten (before the fix,
  // the record went and the blob stayed, to be re-indexed at next start).
  test::FaultInjectionEnv faulty(Env::Default());
  Reopen(&faulty);
  faulty.fail_rename = true;
  ForgetResult result;
  EXPECT_FALSE(engine_->ForgetOrigin(site.origin, &result).ok());
  faulty.fail_rename = false;
  EXPECT_TRUE(Stat(data).digest.ToString() == DigestText(data));
  ASSERT_TRUE(engine_->ForgetOrigin(site.origin, &result).ok());
  EXPECT_EQ(result.deleted_files.size(), 1u);
  Reopen();
  FileRecord record;
  EXPECT_EQ(engine_->Stat(DigestText(data), &record).code(), Code::kNotFound);
  EXPECT_FALSE(std::filesystem::exists(BlobPath(data)));
}

TEST_F(EngineIntegrityTest, AStrayWithAVeryLongNameDoesNotStopTheStart) {
  engine_.reset();
  const std::string dir = root_ + "/blobs/sha256/ab";
  std::filesystem::create_directories(dir);
  test::WriteFile(dir + "/" + std::string(240, 'z'), "stray");
  Reopen();
  EXPECT_EQ(Quarantine().size(), 1u);
}

TEST_F(EngineIntegrityTest, ALinkedCatalogSideFileIsQuarantinedNeverFollowed) {
  engine_.reset();
  const std::string victim = dir_.Join("victim");
  test::WriteFile(victim, "the user's file");
  ASSERT_EQ(::chmod(victim.c_str(), 0644), 0);
  std::filesystem::remove(root_ + "/catalog.db-wal");
  ASSERT_EQ(::symlink(victim.c_str(), (root_ + "/catalog.db-wal").c_str()), 0);
  Reopen();
  struct stat st {};
  ASSERT_EQ(::stat(victim.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);  // its mode untouched
  EXPECT_EQ(test::ReadFile(victim), "the user's file");
  EXPECT_EQ(Quarantine().size(), 1u);
}

}  // namespace
}  // namespace costore
