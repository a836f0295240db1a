// A refusal is a miss, in time too: for each way an Open is refused without
// asking the user, 1000 Opens of a file someone else stored, interleaved
// with 1000 Opens of a digest nobody stored, from the same caller through
// the real daemon, must be one distribution (|Mann-Whitney z| < 3, ratio of
// medians within 0.9-1.1). Nothing here asserts a time: only how two
// distributions measured in the same run compare.
//
// A genuine difference shows in every run; a chance one (|z| >= 3 happens
// in 0.3% of runs of two identical distributions, and a loaded machine can
// shift one run) does not repeat: a kind that fails is measured once more,
// and fails the test only if it fails both times.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "tests/integration/daemon_harness.h"
#include "tests/integration/keyring_harness.h"
#include "tests/integration/scripted_agent.h"

namespace costore::test {
namespace {

constexpr char kNotFound[] = "io.github.costore.Error.NotFound";
constexpr char kStorer[] = "https://storer.example";
constexpr char kAsker[] = "https://asker.example";
constexpr int kSamples = 1000;
constexpr int kWarmUp = 100;

// The Mann-Whitney U statistic of `a` against `b` as a z score (normal
// approximation; ties get their mean rank). Positive: `a` tends larger.
double MannWhitneyZ(const std::vector<double>& a, const std::vector<double>& b) {
  std::vector<std::pair<double, int>> all;
  for (double x : a) all.emplace_back(x, 0);
  for (double x : b) all.emplace_back(x, 1);
  std::sort(all.begin(), all.end());
  double rank_sum_a = 0;
  for (size_t i = 0; i < all.size();) {
    size_t j = i;
    while (j < all.size() && all[j].first == all[i].first) ++j;
    const double mean_rank = (static_cast<double>(i + 1) + static_cast<double>(j)) / 2;
    for (size_t k = i; k < j; ++k) {
      if (all[k].second == 0) rank_sum_a += mean_rank;
    }
    i = j;
  }
  const double n1 = static_cast<double>(a.size()), n2 = static_cast<double>(b.size());
  const double u = rank_sum_a - n1 * (n1 + 1) / 2;
  return (u - n1 * n2 / 2) / std::sqrt(n1 * n2 * (n1 + n2 + 1) / 12);
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

struct Comparison {
  double z = 0;
  double ratio = 0;  // median(refused) / median(miss)
  double miss_median_us = 0;
  bool Same() const { return std::fabs(z) < 3 && ratio >= 0.9 && ratio <= 1.1; }
};

std::string Describe(const std::string& kind, const Comparison& c) {
  char line[200];
  std::snprintf(line, sizeof line, "%s: z = %+.2f, median ratio refused/miss = %.3f (miss median %.0f us)",
                kind.c_str(), c.z, c.ratio, c.miss_median_us);
  return line;
}

TEST(MannWhitneyTest, TellsShiftedDistributionsApart) {
  std::mt19937 rng(1);
  std::normal_distribution<double> noise(100, 10);
  std::vector<double> a, b, shifted;
  for (int i = 0; i < kSamples; ++i) {
    a.push_back(noise(rng));
    b.push_back(noise(rng));
    shifted.push_back(noise(rng) + 3);  // 0.3 standard deviations
  }
  EXPECT_LT(std::fabs(MannWhitneyZ(a, b)), 3);
  EXPECT_LT(MannWhitneyZ(a, shifted), -3);
  EXPECT_GT(MannWhitneyZ(shifted, a), 3);
  EXPECT_NEAR(MannWhitneyZ(a, a), 0, 1e-9);
}

class TimingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    client_ = harness_.Connect();
    target_ = DigestOf(data_);
    miss_ = DigestOf("nobody stored this");
    ASSERT_EQ(client_->TryStore(kStorer, target_, PipeFrom(data_), {{"name", sdbus::Variant(std::string("m.onnx"))}}),
              "");
  }

  // One Open as the asker, in microseconds; it must be NotFound.
  double TimeOpen(const std::string& digest) {
    const auto start = std::chrono::steady_clock::now();
    const std::string error = client_->TryOpen(kAsker, digest, nullptr);
    const auto end = std::chrono::steady_clock::now();
    EXPECT_EQ(error, kNotFound) << digest;
    return std::chrono::duration<double, std::micro>(end - start).count();
  }

  // kSamples pairs, each (miss, refused) in a random order.
  Comparison Measure(const std::string& refused_digest) {
    std::mt19937 rng(std::random_device{}());
    std::vector<double> miss, refused;
    for (int i = 0; i < kWarmUp + kSamples; ++i) {
      const bool refused_first = rng() & 1;
      double r = 0, m = 0;
      if (refused_first) r = TimeOpen(refused_digest);
      m = TimeOpen(miss_);
      if (!refused_first) r = TimeOpen(refused_digest);
      if (i < kWarmUp) continue;
      miss.push_back(m);
      refused.push_back(r);
    }
    Comparison c;
    c.z = MannWhitneyZ(refused, miss);
    c.miss_median_us = Median(miss);
    c.ratio = Median(refused) / c.miss_median_us;
    return c;
  }

  // Measures; once more if the first run differs; fails if both do.
  void ExpectRefusalLooksLikeAMiss(const std::string& kind, const std::string& refused_digest = "") {
    const std::string digest = refused_digest.empty() ? target_ : refused_digest;
    Comparison first = Measure(digest);
    std::printf("%s\n", Describe(kind, first).c_str());
    if (first.Same()) return;
    Comparison second = Measure(digest);
    std::printf("%s (measured again)\n", Describe(kind, second).c_str());
    EXPECT_TRUE(second.Same()) << "a refusal (" << kind << ") is told apart from a miss by its time:\n  "
                               << Describe(kind, first) << "\n  " << Describe(kind, second);
  }

  std::unique_ptr<ScriptedAgent> Agent(std::optional<std::string> decision) {
    auto agent = std::make_unique<ScriptedAgent>(harness_.address(), decision);
    EXPECT_EQ(agent->Register(), "");
    return agent;
  }

  DaemonHarness harness_;
  std::unique_ptr<BusClient> client_;
  std::string data_ = RandomBytes(4096, 11);
  std::string target_;
  std::string miss_;
};

// No agent registered and none to start (the harness starts costored with
// --consent-agent ""): a plain package install without a display.
TEST_F(TimingTest, NoAgentRefusalCostsAMiss) { ExpectRefusalLooksLikeAMiss("no consent agent"); }

TEST_F(TimingTest, PolicyDenyCostsAMiss) {
  auto agent = Agent(std::nullopt);  // would hold any question: never asked
  client_->SetSetting("consent-policy", sdbus::Variant(std::string("deny")));
  ExpectRefusalLooksLikeAMiss("consent-policy deny");
  EXPECT_TRUE(agent->requests().empty());
}

TEST_F(TimingTest, RememberedDenialCostsAMiss) {
  auto agent = Agent("deny");
  ASSERT_EQ(client_->TryOpen(kAsker, target_, nullptr), kNotFound);
  ASSERT_EQ(agent->requests().size(), 1u);
  ExpectRefusalLooksLikeAMiss("denied before");
  EXPECT_EQ(agent->requests().size(), 1u);  // never asked again
}

TEST_F(TimingTest, SpentBudgetCostsAMiss) {
  client_->SetSetting("prompts-per-hour", sdbus::Variant(uint32_t{1}));
  const std::string other_data = RandomBytes(4096, 12);
  const std::string other = DigestOf(other_data);
  ASSERT_EQ(client_->TryStore(kStorer, other, PipeFrom(other_data), {}), "");
  auto agent = Agent("allow-once");
  ASSERT_EQ(client_->TryOpen(kAsker, other, nullptr), "");  // the one prompt of this hour
  ExpectRefusalLooksLikeAMiss("prompt budget spent");
  EXPECT_EQ(agent->requests().size(), 1u);
}

TEST_F(TimingTest, AskLaterCostsAMiss) {
  client_->SetSetting("consent-policy", sdbus::Variant(std::string("ask-later")));
  auto agent = Agent(std::nullopt);  // holds the one deferred question
  ExpectRefusalLooksLikeAMiss("consent-policy ask-later");
  EXPECT_EQ(agent->requests().size(), 1u);
}

// 300 principals stored (and so are named in the attribution of) the file.
TEST_F(TimingTest, ManyStorersCostAMiss) {
  for (int i = 0; i < 300; ++i) {
    ASSERT_EQ(client_->TryStore("https://storer" + std::to_string(i) + ".example", target_, PipeFrom(data_), {}), "");
  }
  ExpectRefusalLooksLikeAMiss("300 principals stored it");
}

TEST_F(TimingTest, PrivateFileOfAnotherCostsAMiss) {
  KeyringHarness keyring(harness_.address(), harness_.scratch("keyring"));
  keyring.Start();
  const std::string secret = RandomBytes(4096, 13);
  const std::string digest = DigestOf(secret);
  ASSERT_EQ(client_->TryStore(kStorer, digest, PipeFrom(secret), {{"private", sdbus::Variant(true)}}), "");
  ExpectRefusalLooksLikeAMiss("another principal's private file", digest);
}

}  // namespace
}  // namespace costore::test
