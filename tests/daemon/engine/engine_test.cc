// The Engine on its own: no bus, a temporary store, real SQLite, and a
// fault-injecting Env to prove that failures never lose or corrupt data.
#include "daemon/engine/engine.h"

#include <fcntl.h>
#include <signal.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <thread>

#include "tests/daemon/engine/engine_test_util.h"
#include "tests/daemon/engine/test_util.h"

namespace costore {
namespace {

using test::DigestText;
using test::TempDir;

const Principal kOwner{"/usr/bin/owner", "https://owner.example"};
const Principal kOther{"/usr/bin/owner", "https://other.example"};
const Principal kOtherApp{"/usr/bin/other", "https://owner.example"};

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Feeder threads may write into a pipe whose reader gave up, as
    // clients do to the daemon (which ignores SIGPIPE too).
    signal(SIGPIPE, SIG_IGN);
    Reopen();
  }

  void Reopen(Env* env = Env::Default()) {
    engine_.reset();
    EngineOptions options;
    options.root = dir_.Join("store");
    options.env = env;
    options.on_change = [this](const ChangeEvent& e) {
      std::lock_guard<std::mutex> lock(events_mu_);
      events_.push_back(e.what + " " + e.digest);
    };
    Status s = Engine::Open(options, &engine_);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  Status Store(const Principal& who, const std::string& bytes, FileInfo* info = nullptr,
               std::optional<uint64_t> size = std::nullopt, const std::string& name = "") {
    StoreRequest request;
    request.size = size;
    request.name = name;
    return test::StoreBytes(engine_.get(), who, bytes, request, info);
  }

  Status OpenBytes(const Principal& who, const std::string& digest, std::string* bytes) {
    int fd = -1;
    FileInfo info;
    Status s = engine_->OpenFile(who, digest, &fd, &info);
    if (s.ok()) {
      *bytes = test::ReadFd(fd);
      close(fd);
    }
    return s;
  }

  std::vector<std::string> events() {
    std::lock_guard<std::mutex> lock(events_mu_);
    return events_;
  }

  TempDir dir_;
  std::unique_ptr<Engine> engine_;
  std::mutex events_mu_;
  std::vector<std::string> events_;
};

TEST_F(EngineTest, OwnerReadsBackOthersOnlyWithAGrant) {
  std::string data = test::RandomBytes(70000, 1);
  std::string digest = DigestText(data);
  FileInfo info;
  ASSERT_TRUE(Store(kOwner, data, &info, data.size(), "org/model.onnx").ok());
  EXPECT_EQ(info.digest.ToString(), digest);
  EXPECT_EQ(info.size, data.size());
  EXPECT_EQ(info.name, "org/model.onnx");

  std::string bytes;
  ASSERT_TRUE(OpenBytes(kOwner, digest, &bytes).ok());
  EXPECT_EQ(bytes, data);
  EXPECT_EQ(OpenBytes(kOther, digest, &bytes).code(), Code::kNotFound);
  // Same origin string, another app: another principal.
  EXPECT_EQ(OpenBytes(kOtherApp, digest, &bytes).code(), Code::kNotFound);

  ASSERT_TRUE(engine_->Grant(kOther, digest).ok());
  ASSERT_TRUE(OpenBytes(kOther, digest, &bytes).ok());
  EXPECT_EQ(bytes, data);
  EXPECT_EQ(OpenBytes(kOtherApp, digest, &bytes).code(), Code::kNotFound);
  ASSERT_TRUE(engine_->Revoke(kOther, digest).ok());
  EXPECT_EQ(OpenBytes(kOther, digest, &bytes).code(), Code::kNotFound);
}

TEST_F(EngineTest, RefusalAndMissCarryTheSameMessage) {
  std::string data = "present";
  ASSERT_TRUE(Store(kOwner, data).ok());
  std::string present = DigestText(data), absent = DigestText("absent");
  std::string bytes;
  Status refused = OpenBytes(kOther, present, &bytes);
  Status missing = OpenBytes(kOther, absent, &bytes);
  ASSERT_EQ(refused.code(), Code::kNotFound);
  ASSERT_EQ(missing.code(), Code::kNotFound);
  std::string a = refused.message(), b = missing.message();
  a.replace(a.find(present), present.size(), "X");
  b.replace(b.find(absent), absent.size(), "X");
  EXPECT_EQ(a, b);
}

TEST_F(EngineTest, AttributionCountsStoresAndReads) {
  std::string data = "attributed";
  std::string digest = DigestText(data);
  ASSERT_TRUE(Store(kOwner, data).ok());
  ASSERT_TRUE(Store(kOwner, data).ok());
  ASSERT_TRUE(engine_->Grant(kOther, "*").ok());
  std::string bytes;
  ASSERT_TRUE(OpenBytes(kOther, digest, &bytes).ok());
  std::vector<UsageRecord> usage;
  ASSERT_TRUE(engine_->Usage(digest, &usage).ok());
  ASSERT_EQ(usage.size(), 2u);
  EXPECT_EQ(usage[0].principal, kOwner);
  EXPECT_TRUE(usage[0].stored);
  EXPECT_EQ(usage[0].stores, 2u);
  EXPECT_EQ(usage[1].principal, kOther);
  EXPECT_FALSE(usage[1].stored);
  EXPECT_EQ(usage[1].reads, 1u);
}

TEST_F(EngineTest, InvalidArgumentsAreRefusedBeforeAnyByteIsRead) {
  std::string data = "x";
  StoreRequest request;
  request.source_fd = test::PipeFrom(data);
  FileInfo info;
  request.digest = "sha256:nothex";
  EXPECT_EQ(engine_->Store(kOwner, request, &info).code(), Code::kInvalidArgument);
  request.digest = DigestText(data);
  EXPECT_EQ(engine_->Store(Principal{"/usr/bin/x", "https://x.example/"}, request, &info).code(),
            Code::kInvalidArgument);
  request.name = std::string(2000, 'n');
  EXPECT_EQ(engine_->Store(kOwner, request, &info).code(), Code::kInvalidArgument);
  request.name = "";
  request.size = uint64_t{1} << 51;
  Status s = engine_->Store(kOwner, request, &info);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_THAT(s.message(), ::testing::HasSubstr("1 PiB"));
  close(request.source_fd);
  EXPECT_EQ(engine_->Grant(Principal{"", ""}, "*").code(), Code::kInvalidArgument);
  EXPECT_EQ(engine_->Grant(kOther, "everything").code(), Code::kInvalidArgument);
  std::vector<FileRecord> files;
  ASSERT_TRUE(engine_->List(&files).ok());
  EXPECT_TRUE(files.empty());
}

TEST_F(EngineTest, NoSpaceMidStoreLeavesStoredFilesIntact) {
  std::string kept = test::RandomBytes(5000, 2);
  ASSERT_TRUE(Store(kOwner, kept).ok());

  test::FaultInjectionEnv faulty(Env::Default());
  Reopen(&faulty);
  faulty.fail_append_after = 2;
  faulty.append_errno = ENOSPC;
  Status s = Store(kOwner, test::RandomBytes(8 << 20, 3));
  EXPECT_EQ(s.code(), Code::kNoSpace) << s.ToString();
  faulty.fail_append_after = -1;

  std::vector<FileRecord> files;
  ASSERT_TRUE(engine_->List(&files).ok());
  ASSERT_EQ(files.size(), 1u);
  std::string bytes;
  ASSERT_TRUE(OpenBytes(kOwner, DigestText(kept), &bytes).ok());
  EXPECT_EQ(bytes, kept);
  EXPECT_TRUE(std::filesystem::is_empty(dir_.Join("store/ingest")));
}

TEST_F(EngineTest, FailedFsyncOrRenamePublishesNothing) {
  test::FaultInjectionEnv faulty(Env::Default());
  Reopen(&faulty);
  faulty.fail_sync = true;
  EXPECT_EQ(Store(kOwner, "sync fails").code(), Code::kIOError);
  faulty.fail_sync = false;
  faulty.fail_rename = true;
  EXPECT_EQ(Store(kOwner, "rename fails").code(), Code::kIOError);
  faulty.fail_rename = false;
  std::vector<FileRecord> files;
  ASSERT_TRUE(engine_->List(&files).ok());
  EXPECT_TRUE(files.empty());
  EXPECT_TRUE(std::filesystem::is_empty(dir_.Join("store/ingest")));
  // And the store still works afterwards.
  EXPECT_TRUE(Store(kOwner, "works").ok());
}

TEST_F(EngineTest, DeleteRemovesRecordBytesAndGrants) {
  std::string data = "to delete";
  std::string digest = DigestText(data);
  ASSERT_TRUE(Store(kOwner, data).ok());
  ASSERT_TRUE(engine_->Grant(kOther, digest).ok());
  ASSERT_TRUE(engine_->Delete(digest).ok());
  FileRecord record;
  EXPECT_EQ(engine_->Stat(digest, &record).code(), Code::kNotFound);
  std::vector<GrantRecord> grants;
  ASSERT_TRUE(engine_->ListGrants("", &grants).ok());
  EXPECT_TRUE(grants.empty());
  EXPECT_FALSE(std::filesystem::exists(dir_.Join("store/blobs/sha256/" + digest.substr(7, 2) + "/" +
                                                 digest.substr(7))));
  EXPECT_EQ(engine_->Delete(digest).code(), Code::kNotFound);
}

TEST_F(EngineTest, ChangesArePublishedAfterTheyAreCommitted) {
  std::string data = "events";
  std::string digest = DigestText(data);
  ASSERT_TRUE(Store(kOwner, data).ok());
  ASSERT_TRUE(engine_->Grant(kOther, "*").ok());
  ASSERT_TRUE(engine_->Revoke(kOther, "*").ok());
  ASSERT_TRUE(engine_->Delete(digest).ok());
  EXPECT_FALSE(Store(kOwner, "mismatch", nullptr, 1).ok());  // publishes nothing
  EXPECT_THAT(events(), ::testing::ElementsAre("stored " + digest, "granted *", "revoked *",
                                               "deleted " + digest));
}

TEST_F(EngineTest, ConcurrentStoresAndDeletesOfOneDigestStayConsistent) {
  std::string data = test::RandomBytes(1 << 20, 9);
  std::string digest = DigestText(data);
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      Principal who{"/usr/bin/app", "https://site" + std::to_string(i) + ".example"};
      for (int round = 0; round < 5; ++round) {
        Status s = Store(who, data);
        EXPECT_TRUE(s.ok()) << s.ToString();
        if (i == 0) (void)engine_->Delete(digest);
      }
    });
  }
  for (auto& t : threads) t.join();
  // Whatever interleaving happened, a record exists exactly when its blob does.
  FileRecord record;
  bool recorded = engine_->Stat(digest, &record).ok();
  bool on_disk = std::filesystem::exists(dir_.Join("store/blobs/sha256/" + digest.substr(7, 2) + "/" +
                                                   digest.substr(7)));
  EXPECT_EQ(recorded, on_disk);
  if (recorded) {
    // A delete may have dropped any given site's claim; whoever still
    // claims the file reads the right bytes.
    std::vector<UsageRecord> usage;
    ASSERT_TRUE(engine_->Usage(digest, &usage).ok());
    auto storer = std::find_if(usage.begin(), usage.end(), [](const UsageRecord& u) { return u.stored; });
    ASSERT_NE(storer, usage.end());
    std::string bytes;
    ASSERT_TRUE(OpenBytes(storer->principal, digest, &bytes).ok());
    EXPECT_EQ(bytes, data);
  }
}

TEST_F(EngineTest, CancelAllStopsStoresInFlight) {
  int fds[2];
  ASSERT_EQ(pipe2(fds, O_CLOEXEC), 0);
  Status result;
  std::thread store([&] {
    StoreRequest request;
    request.digest = DigestText("never");
    request.source_fd = fds[0];
    FileInfo info;
    result = engine_->Store(kOwner, request, &info);
  });
  ASSERT_EQ(write(fds[1], "some", 4), 4);
  engine_->CancelAll();
  // The ingest loop notices between reads: give it something to read.
  ASSERT_EQ(write(fds[1], "more", 4), 4);
  store.join();
  close(fds[0]);
  close(fds[1]);
  EXPECT_EQ(result.code(), Code::kCancelled);
  EXPECT_EQ(Store(kOwner, "after").code(), Code::kCancelled);
}

TEST_F(EngineTest, StoreSurvivesReopen) {
  std::string data = test::RandomBytes(10000, 5);
  ASSERT_TRUE(Store(kOwner, data, nullptr, std::nullopt, "kept.bin").ok());
  ASSERT_TRUE(engine_->Grant(kOther, DigestText(data)).ok());
  Reopen();
  std::string bytes;
  ASSERT_TRUE(OpenBytes(kOther, DigestText(data), &bytes).ok());
  EXPECT_EQ(bytes, data);
  FileRecord record;
  ASSERT_TRUE(engine_->Stat(DigestText(data), &record).ok());
  EXPECT_EQ(record.name, "kept.bin");
}

}  // namespace
}  // namespace costore
