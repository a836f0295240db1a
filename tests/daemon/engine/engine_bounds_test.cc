// The Engine's per-caller bounds: stores and opens in flight per principal
// and per app, and the minimum average rate of a store. Real pipes, a real
// store; the rate's grace period and window are shortened.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "daemon/engine/engine.h"
#include "tests/daemon/engine/engine_test_util.h"
#include "tests/daemon/engine/test_util.h"

namespace costore {
namespace {

using ::testing::EndsWith;
using ::testing::HasSubstr;
using test::DigestText;

const Principal kTrickler{"/usr/bin/browser", "https://slow.example"};
const Principal kSameApp{"/usr/bin/browser", "https://fast.example"};
const Principal kOtherApp{"/usr/bin/other", ""};

// Holds every question until told to answer.
class HoldingAgent : public ConsentAgent {
 public:
  void Ask(const ConsentRequest&, uint32_t, std::function<void(ConsentDecision)> done) override {
    std::lock_guard<std::mutex> lock(mu);
    held.push_back(std::move(done));
  }
  void Cancel(const std::string&) override {}
  void AnswerAll(ConsentDecision decision) {
    std::vector<std::function<void(ConsentDecision)>> answers;
    {
      std::lock_guard<std::mutex> lock(mu);
      answers.swap(held);
    }
    for (auto& done : answers) done(decision);
  }
  std::mutex mu;
  std::vector<std::function<void(ConsentDecision)>> held;
};

// A store whose source says nothing until told to.
struct StalledStore {
  int fds[2] = {-1, -1};
  std::thread thread;
  Status result;
};

class EngineBoundsTest : public ::testing::Test {
 protected:
  void SetUp() override { signal(SIGPIPE, SIG_IGN); }
  void TearDown() override {
    for (auto& stalled : stalled_) Finish(stalled.get());
    if (engine_) engine_->SetConsentAgent(nullptr);
  }

  void Open(EngineOptions options) {
    options.root = dir_.Join("store");
    Status s = Engine::Open(options, &engine_);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  Status Store(const Principal& who, const std::string& bytes) {
    FileInfo info;
    return test::StoreBytes(engine_.get(), who, bytes, StoreRequest{}, &info);
  }

  // Starts a store of `who` from a pipe nobody writes to yet, and waits
  // until it is in flight (its file in ingest/ exists).
  void StartStalled(const Principal& who) {
    auto stalled = std::make_unique<StalledStore>();
    ASSERT_EQ(pipe2(stalled->fds, O_CLOEXEC), 0);
    const size_t before = test::FilesBelow(dir_.Join("store/ingest")).size();
    StalledStore* raw = stalled.get();
    stalled->thread = std::thread([this, raw, who] {
      StoreRequest request;
      request.digest = DigestText("x");
      request.source_fd = raw->fds[0];
      FileInfo info;
      raw->result = engine_->Store(who, request, &info);
    });
    stalled_.push_back(std::move(stalled));
    for (int i = 0; i < 1000 && test::FilesBelow(dir_.Join("store/ingest")).size() <= before; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    ASSERT_GT(test::FilesBelow(dir_.Join("store/ingest")).size(), before) << "the store never started";
  }

  void Finish(StalledStore* stalled) {
    if (stalled->fds[1] >= 0) {
      EXPECT_EQ(write(stalled->fds[1], "x", 1), 1);
      close(stalled->fds[1]);
      stalled->fds[1] = -1;
    }
    if (stalled->thread.joinable()) stalled->thread.join();
    if (stalled->fds[0] >= 0) close(stalled->fds[0]);
    stalled->fds[0] = -1;
  }

  test::TempDir dir_;
  std::unique_ptr<Engine> engine_;
  std::vector<std::unique_ptr<StalledStore>> stalled_;
};

TEST_F(EngineBoundsTest, OneCallersStalledStoresNeverMakeAnotherCallersStoreBusy) {
  Open(EngineOptions{});
  for (int i = 0; i < 4; ++i) StartStalled(kTrickler);
  // The fifth from the same principal is Busy at once, naming when to
  // retry, and not a byte of its source is read.
  const int source = test::PipeFrom("abc");
  StoreRequest request;
  request.digest = DigestText("abc");
  request.source_fd = source;
  FileInfo info;
  Status s = engine_->Store(kTrickler, request, &info);
  EXPECT_EQ(s.code(), Code::kBusy);
  EXPECT_THAT(s.message(), HasSubstr("at most 4 for origin \"https://slow.example\""));
  EXPECT_THAT(s.message(), EndsWith("; try again in 5 s"));
  char left[8];
  EXPECT_EQ(read(source, left, sizeof left), 3) << "the refused store read its source";
  close(source);
  // Another origin of the same app, and another app, store as usual.
  EXPECT_TRUE(Store(kSameApp, "fast").ok());
  EXPECT_TRUE(Store(kOtherApp, "other").ok());
  // Stalled stores finish, and the principal may store again.
  for (auto& stalled : stalled_) Finish(stalled.get());
  for (auto& stalled : stalled_) EXPECT_TRUE(stalled->result.ok()) << stalled->result.ToString();
  EXPECT_TRUE(Store(kTrickler, "later").ok());
}

TEST_F(EngineBoundsTest, AnAppIsCappedOverAllItsOriginsAndOtherAppsAreNot) {
  Open(EngineOptions{});
  for (int i = 0; i < 8; ++i) StartStalled(Principal{"flatpak:org.example.Greedy", "https://o" + std::to_string(i) + ".example"});
  Status s = Store(Principal{"flatpak:org.example.Greedy", "https://o9.example"}, "more");
  EXPECT_EQ(s.code(), Code::kBusy);
  EXPECT_THAT(s.message(), HasSubstr("at most 8 for app \"flatpak:org.example.Greedy\""));
  EXPECT_TRUE(Store(kOtherApp, "other").ok());
}

TEST_F(EngineBoundsTest, ATricklingSourceIsCancelledAfterTheGracePeriodWithItsRate) {
  EngineOptions options;
  options.store_rate_grace_ms = 300;
  options.store_rate_window_ms = 300;
  Open(options);
  int fds[2];
  ASSERT_EQ(pipe2(fds, O_CLOEXEC), 0);
  std::atomic<bool> stop{false};
  std::thread trickle([&] {
    while (!stop && write(fds[1], "x", 1) == 1) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  });
  StoreRequest request;
  request.digest = DigestText(std::string(1000, 'x'));
  request.source_fd = fds[0];
  FileInfo info;
  Status s = engine_->Store(kTrickler, request, &info);
  stop = true;
  close(fds[0]);
  trickle.join();
  close(fds[1]);
  ASSERT_EQ(s.code(), Code::kCancelled) << s.ToString();
  EXPECT_THAT(s.message(), HasSubstr("the source kept "));
  EXPECT_THAT(s.message(), HasSubstr("bytes/s over the last"));
  EXPECT_THAT(s.message(), HasSubstr("at least 1048576 bytes/s"));
  EXPECT_TRUE(test::FilesBelow(dir_.Join("store/ingest")).empty());
  // A store that keeps the pace is untouched by the same settings.
  EXPECT_TRUE(Store(kTrickler, test::RandomBytes(1 << 20, 3)).ok());
}

TEST_F(EngineBoundsTest, MinStoreRateZeroLetsATricklerFinish) {
  EngineOptions options;
  options.store_rate_grace_ms = 100;
  options.store_rate_window_ms = 100;
  Open(options);
  ASSERT_TRUE(engine_->SetSetting("min-store-rate", uint64_t{0}).ok());
  EXPECT_EQ(engine_->GetMinStoreRate(), 0u);
  int fds[2];
  ASSERT_EQ(pipe2(fds, O_CLOEXEC), 0);
  std::thread trickle([&] {
    for (int i = 0; i < 20; ++i) {
      EXPECT_EQ(write(fds[1], "x", 1), 1);
      std::this_thread::sleep_for(std::chrono::milliseconds(30));
    }
    close(fds[1]);
  });
  StoreRequest request;
  request.digest = DigestText(std::string(20, 'x'));
  request.source_fd = fds[0];
  FileInfo info;
  Status s = engine_->Store(kTrickler, request, &info);
  trickle.join();
  close(fds[0]);
  EXPECT_TRUE(s.ok()) << s.ToString();
  // The setting is checked and kept.
  EXPECT_EQ(engine_->SetSetting("min-store-rate", std::string("fast")).code(), Code::kInvalidArgument);
  EXPECT_EQ(engine_->SetSetting("min-store-rate", uint64_t{1} << 41).code(), Code::kInvalidArgument);
  ASSERT_TRUE(engine_->SetSetting("min-store-rate", uint64_t{4096}).ok());
  engine_.reset();
  Open(options);
  EXPECT_EQ(engine_->GetMinStoreRate(), 4096u);
}

TEST_F(EngineBoundsTest, OpensWaitingForTheUserAreCappedPerPrincipalAndMissesCountAlike) {
  Open(EngineOptions{});
  HoldingAgent agent;
  engine_->SetConsentAgent(&agent);
  ASSERT_TRUE(Store(kOtherApp, "shared").ok());
  const Principal asker{"/usr/bin/browser", "https://asker.example"};
  std::atomic<int> answered{0};
  std::vector<Status> results(4);
  for (int i = 0; i < 4; ++i) {
    engine_->OpenFileAsync(asker, DigestText("shared"), ":1.7", [&, i](const Status& s, int fd, const FileInfo&) {
      results[i] = s;
      if (fd >= 0) close(fd);
      ++answered;
    });
  }
  EXPECT_EQ(answered.load(), 0);  // all four wait for the user
  // A fifth, even for a file that is not stored, is Busy: Busy says
  // nothing about what is stored.
  Status fifth;
  engine_->OpenFileAsync(asker, DigestText("absent"), ":1.7",
                         [&](const Status& s, int, const FileInfo&) { fifth = s; });
  EXPECT_EQ(fifth.code(), Code::kBusy);
  EXPECT_THAT(fifth.message(), EndsWith("; try again in 2 s"));
  // Another principal is not held up.
  Status other;
  engine_->OpenFileAsync(kSameApp, DigestText("absent"), ":1.8",
                         [&](const Status& s, int, const FileInfo&) { other = s; });
  EXPECT_EQ(other.code(), Code::kNotFound);
  // The user answers: the slots are free again.
  agent.AnswerAll(ConsentDecision::kAllowOnce);
  EXPECT_EQ(answered.load(), 4);
  for (const Status& s : results) EXPECT_TRUE(s.ok()) << s.ToString();
  Status again;
  engine_->OpenFileAsync(asker, DigestText("absent"), ":1.7",
                         [&](const Status& s, int, const FileInfo&) { again = s; });
  EXPECT_EQ(again.code(), Code::kNotFound);
}

TEST_F(EngineBoundsTest, ACallerThatLeftGivesItsOpenSlotsBack) {
  Open(EngineOptions{});
  HoldingAgent agent;
  engine_->SetConsentAgent(&agent);
  ASSERT_TRUE(Store(kOtherApp, "shared").ok());
  const Principal asker{"/usr/bin/browser", "https://asker.example"};
  for (int i = 0; i < 4; ++i) {
    engine_->OpenFileAsync(asker, DigestText("shared"), ":1.9", [](const Status&, int, const FileInfo&) {});
  }
  engine_->CallerGone(":1.9");
  Status s;
  engine_->OpenFileAsync(asker, DigestText("absent"), ":1.10", [&](const Status& st, int, const FileInfo&) { s = st; });
  EXPECT_EQ(s.code(), Code::kNotFound);
  agent.AnswerAll(ConsentDecision::kNoAnswer);
}

}  // namespace
}  // namespace costore
