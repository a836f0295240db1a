// ConsentBroker alone: a fake clock and a fake agent, so that budgets,
// remembered denials and their bounds are tested without waiting.
#include "daemon/engine/consent_broker.h"

#include <gtest/gtest.h>

#include <atomic>
#include <vector>

#include "daemon/engine/digest.h"

namespace costore {
namespace {

constexpr int64_t kMinute = int64_t{60} * 1'000'000;

class FakeClockEnv : public EnvWrapper {
 public:
  FakeClockEnv() : EnvWrapper(Env::Default()) {}
  int64_t NowMicros() override { return now_us; }
  std::atomic<int64_t> now_us{int64_t{1'700'000'000} * 1'000'000};
};

// Answers every question at once with `answer`, and counts them.
class FakeAgent : public ConsentAgent {
 public:
  void Ask(const ConsentRequest&, uint32_t, std::function<void(ConsentDecision)> done) override {
    ++asked;
    done(answer);
  }
  void Cancel(const std::string&) override {}
  ConsentDecision answer = ConsentDecision::kDeny;
  int asked = 0;
};

class ConsentBrokerTest : public ::testing::Test {
 protected:
  void MakeBroker(size_t max_principals) {
    broker_ = std::make_unique<ConsentBroker>(&env_, max_principals);
    broker_->SetAgent(&agent_);
  }

  // The decision for `origin` asking for file number `file`.
  ConsentDecision Ask(const std::string& origin, int file = 0) {
    ConsentRequest request;
    request.who = Principal{"/usr/bin/browser", origin};
    FileRecord record;
    std::string hex(64, '0');
    hex.replace(64 - std::to_string(file).size(), std::string::npos, std::to_string(file));
    EXPECT_TRUE(Digest::Parse("sha256:" + hex, &record.digest).ok());
    request.files.push_back(record);
    ConsentDecision decision = ConsentDecision::kAllowOnce;
    bool answered = false;
    broker_->Request(request, ":1.1", settings_, [&](ConsentDecision d) {
      decision = d;
      answered = true;
    });
    EXPECT_TRUE(answered);
    return decision;
  }

  FakeClockEnv env_;
  FakeAgent agent_;
  ConsentSettings settings_;  // ask, 10 prompts per hour
  std::unique_ptr<ConsentBroker> broker_;
};

TEST_F(ConsentBrokerTest, ADeniedFileIsRefusedUnaskedAndTheBudgetRunsOut) {
  MakeBroker(ConsentBroker::kMaxPrincipals);
  EXPECT_EQ(Ask("https://a.example", 1), ConsentDecision::kDeny);
  EXPECT_EQ(Ask("https://a.example", 1), ConsentDecision::kDeny);
  EXPECT_EQ(agent_.asked, 1);
  agent_.answer = ConsentDecision::kNoAnswer;
  for (int file = 2; file < 20; ++file) Ask("https://a.example", file);
  EXPECT_EQ(agent_.asked, 10);  // the hour's budget
}

TEST_F(ConsentBrokerTest, StateStaysBoundedWith10000Principals) {
  MakeBroker(ConsentBroker::kMaxPrincipals);
  for (int i = 0; i < 10'000; ++i) {
    Ask("https://o" + std::to_string(i) + ".example");
    ASSERT_LE(broker_->principals_tracked(), ConsentBroker::kMaxPrincipals);
  }
  EXPECT_EQ(broker_->principals_tracked(), ConsentBroker::kMaxPrincipals);
}

TEST_F(ConsentBrokerTest, AnEvictedDenialCostsAPromptOfTheBudgetAndNoMore) {
  MakeBroker(4);
  EXPECT_EQ(Ask("https://victim.example", 1), ConsentDecision::kDeny);
  EXPECT_EQ(agent_.asked, 1);
  // Four other principals push the victim's state out.
  for (int i = 0; i < 4; ++i) Ask("https://flood" + std::to_string(i) + ".example");
  EXPECT_EQ(agent_.asked, 5);
  // Back, it is not asked at once: it starts with an empty budget.
  const int before = agent_.asked;
  EXPECT_NE(Ask("https://victim.example", 1), ConsentDecision::kAllowOnce);
  EXPECT_EQ(agent_.asked, before);
  // One prompt's worth of refill (6 minutes at 10 an hour) buys one
  // question, no more.
  env_.now_us += 6 * kMinute;
  EXPECT_EQ(Ask("https://victim.example", 1), ConsentDecision::kDeny);
  EXPECT_EQ(agent_.asked, before + 1);
  EXPECT_EQ(Ask("https://victim.example", 1), ConsentDecision::kDeny);
  EXPECT_EQ(Ask("https://victim.example", 2), ConsentDecision::kNoAnswer);
  EXPECT_EQ(agent_.asked, before + 1);
}

TEST_F(ConsentBrokerTest, ForgettingStateANewPrincipalWouldHaveLosesNothing) {
  MakeBroker(4);
  agent_.answer = ConsentDecision::kNoAnswer;
  for (int i = 0; i < 4; ++i) Ask("https://old" + std::to_string(i) + ".example");
  // An hour later their budgets are full again and they hold no denial:
  // evicting them is lossless, and newcomers get their full budget.
  env_.now_us += 61 * kMinute;
  const int before = agent_.asked;
  for (int i = 0; i < 4; ++i) Ask("https://new" + std::to_string(i) + ".example");
  EXPECT_EQ(agent_.asked, before + 4);
  for (int i = 0; i < 9; ++i) Ask("https://new0.example", 100 + i);
  EXPECT_EQ(agent_.asked, before + 4 + 9);  // the rest of new0's ten
}

TEST_F(ConsentBrokerTest, AfterALossyEvictionUnknownPrincipalsStartEmptyForAnHour) {
  MakeBroker(2);
  agent_.answer = ConsentDecision::kNoAnswer;
  Ask("https://a.example");
  Ask("https://b.example");
  Ask("https://c.example");  // evicts a, which prompted just now: lossy
  int before = agent_.asked;
  Ask("https://unknown.example");
  EXPECT_EQ(agent_.asked, before);
  env_.now_us += 61 * kMinute;
  Ask("https://unknown2.example");
  EXPECT_EQ(agent_.asked, before + 1);
}

TEST_F(ConsentBrokerTest, DenialsPerPrincipalAreBounded) {
  MakeBroker(ConsentBroker::kMaxPrincipals);
  settings_.prompts_per_hour = 3600;
  const int denials = static_cast<int>(ConsentBroker::kMaxDenialsPerPrincipal) + 1;
  for (int file = 0; file < denials; ++file) EXPECT_EQ(Ask("https://a.example", file), ConsentDecision::kDeny);
  EXPECT_EQ(agent_.asked, denials);
  // The newest are remembered; the oldest was dropped and is asked again
  // (from the budget, which paid for it).
  EXPECT_EQ(Ask("https://a.example", denials - 1), ConsentDecision::kDeny);
  EXPECT_EQ(agent_.asked, denials);
  Ask("https://a.example", 0);
  EXPECT_EQ(agent_.asked, denials + 1);
}

}  // namespace
}  // namespace costore
