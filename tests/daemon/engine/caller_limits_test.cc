#include "daemon/engine/caller_limits.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <vector>

namespace costore {
namespace {

using ::testing::EndsWith;
using ::testing::HasSubstr;

Principal P(const std::string& app, const std::string& origin) { return Principal{app, origin}; }

TEST(CallerLimitsTest, OnePrincipalIsCappedAndOthersAreNot) {
  CallerLimits limits("stores", CallerCaps{2, 8, 24}, 5);
  std::vector<CallerLimits::Slot> held(2);
  for (auto& slot : held) ASSERT_TRUE(limits.Acquire(P("/usr/bin/a", "https://a.example"), &slot).ok());
  CallerLimits::Slot refused;
  Status s = limits.Acquire(P("/usr/bin/a", "https://a.example"), &refused);
  EXPECT_EQ(s.code(), Code::kBusy);
  EXPECT_FALSE(refused.held());
  EXPECT_THAT(s.message(), HasSubstr("at most 2 for origin \"https://a.example\""));
  EXPECT_THAT(s.message(), EndsWith("; try again in 5 s"));
  // Another origin of the same app, and another app, are not held up.
  CallerLimits::Slot other_origin, other_app;
  EXPECT_TRUE(limits.Acquire(P("/usr/bin/a", "https://b.example"), &other_origin).ok());
  EXPECT_TRUE(limits.Acquire(P("/usr/bin/b", "https://a.example"), &other_app).ok());
  // A slot given back is free again.
  held[0].Release();
  EXPECT_TRUE(limits.Acquire(P("/usr/bin/a", "https://a.example"), &refused).ok());
}

TEST(CallerLimitsTest, AnAppIsCappedOverAllItsOrigins) {
  CallerLimits limits("stores", CallerCaps{4, 8, 24}, 5);
  std::vector<CallerLimits::Slot> held(8);
  for (size_t i = 0; i < held.size(); ++i) {
    ASSERT_TRUE(limits.Acquire(P("flatpak:org.example.App", "https://o" + std::to_string(i) + ".example"), &held[i])
                    .ok());
  }
  CallerLimits::Slot slot;
  Status s = limits.Acquire(P("flatpak:org.example.App", "https://new.example"), &slot);
  EXPECT_EQ(s.code(), Code::kBusy);
  EXPECT_THAT(s.message(), HasSubstr("at most 8 for app \"flatpak:org.example.App\", all its origins together"));
  EXPECT_TRUE(limits.Acquire(P("/usr/bin/other", ""), &slot).ok());
}

TEST(CallerLimitsTest, TheTotalIsSharedAndBookkeepingEndsWithTheCalls) {
  CallerLimits limits("opens", CallerCaps{1, 1, 3}, 2);
  {
    std::vector<CallerLimits::Slot> held(3);
    for (size_t i = 0; i < held.size(); ++i) {
      ASSERT_TRUE(limits.Acquire(P("/usr/bin/app" + std::to_string(i), ""), &held[i]).ok());
    }
    CallerLimits::Slot slot;
    Status s = limits.Acquire(P("/usr/bin/late", ""), &slot);
    EXPECT_EQ(s.code(), Code::kBusy);
    EXPECT_THAT(s.message(), HasSubstr("too many opens in flight (at most 3 for all callers)"));
    EXPECT_THAT(s.message(), EndsWith("; try again in 2 s"));
    EXPECT_EQ(limits.in_flight(), 3);
    // Moved slots still count once.
    CallerLimits::Slot moved = std::move(held[0]);
    EXPECT_FALSE(held[0].held());
    EXPECT_EQ(limits.in_flight(), 3);
  }
  EXPECT_EQ(limits.in_flight(), 0);
  EXPECT_EQ(limits.callers_tracked(), 0u);
}

TEST(CallerLimitsTest, RetryHintIsAWholeNumberOfSecondsAtLeastOne) {
  EXPECT_EQ(RetryHint(0), "; try again in 1 s");
  EXPECT_EQ(RetryHint(7), "; try again in 7 s");
}

}  // namespace
}  // namespace costore
