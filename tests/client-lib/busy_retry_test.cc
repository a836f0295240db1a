// The Busy hint parser and the retry schedule (client-lib/src/busy_retry.*).
#include "busy_retry.h"

#include <gtest/gtest.h>

#include <chrono>
#include <optional>

namespace costore::client::internal {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(RetryAfterSecondsTest, ReadsTheWholeSecondsAtTheEnd) {
  EXPECT_EQ(RetryAfterSeconds("too many stores in flight for this app (4); try again in 3 s"), 3u);
  EXPECT_EQ(RetryAfterSeconds("; try again in 1 s"), 1u);
  EXPECT_EQ(RetryAfterSeconds("a; try again in 9; try again in 120 s"), 120u);
}

TEST(RetryAfterSecondsTest, AnythingElseIsNoHint) {
  EXPECT_EQ(RetryAfterSeconds("too many stores in flight (16); try again when one has finished"), std::nullopt);
  EXPECT_EQ(RetryAfterSeconds(""), std::nullopt);
  EXPECT_EQ(RetryAfterSeconds("; try again in 0 s"), std::nullopt);     // at least 1
  EXPECT_EQ(RetryAfterSeconds("; try again in -1 s"), std::nullopt);
  EXPECT_EQ(RetryAfterSeconds("; try again in 1.5 s"), std::nullopt);   // whole seconds only
  EXPECT_EQ(RetryAfterSeconds("; try again in  s"), std::nullopt);
  EXPECT_EQ(RetryAfterSeconds("; try again in 3 s."), std::nullopt);    // it ends the message
  EXPECT_EQ(RetryAfterSeconds("; try again in 3s"), std::nullopt);
  EXPECT_EQ(RetryAfterSeconds("try again in 3 s"), std::nullopt);       // the "; " is part of it
  EXPECT_EQ(RetryAfterSeconds("; try again in 99999999999 s"), std::nullopt);
  EXPECT_EQ(RetryAfterSeconds("; try again in \u0663 s"), std::nullopt);  // U+0663 is not an ASCII digit
}

TEST(BusyRetryDelayTest, TheFirstWaitIsTheHintOrOneSecond) {
  EXPECT_EQ(BusyRetryDelay(1, 3, 3, milliseconds(0), 0.9), milliseconds(seconds(3)));
  EXPECT_EQ(BusyRetryDelay(1, std::nullopt, std::nullopt, milliseconds(0), 0.9), milliseconds(seconds(1)));
}

TEST(BusyRetryDelayTest, LaterWaitsDoubleWithAtMostAQuarterOfJitter) {
  milliseconds waited(0);
  milliseconds previous(0);
  for (int tries = 1; tries < kBusyMaxTries; ++tries) {
    auto low = BusyRetryDelay(tries, std::nullopt, std::nullopt, waited, 0.0);
    auto high = BusyRetryDelay(tries, std::nullopt, std::nullopt, waited, 0.999);
    ASSERT_TRUE(low && high) << tries;
    EXPECT_EQ(*low, milliseconds(1000 << (tries - 1))) << tries;
    EXPECT_GE(*high, *low);
    EXPECT_LE(*high, *low + *low / 4);
    if (tries > 1) {
      EXPECT_GT(*high, *low);
    }
    EXPECT_GT(*low, previous);
    previous = *low;
    waited += *high;
  }
}

TEST(BusyRetryDelayTest, EachWaitIsCappedButNeverShorterThanTheDaemonAsks) {
  EXPECT_EQ(BusyRetryDelay(4, 8, 8, milliseconds(0), 0.5), kBusyMaxDelay);  // 8 s doubled thrice
  EXPECT_EQ(BusyRetryDelay(2, 1, 20, milliseconds(0), 0.0), milliseconds(seconds(20)));
}

TEST(BusyRetryDelayTest, TheBudgetIsBounded) {
  EXPECT_EQ(BusyRetryDelay(kBusyMaxTries, std::nullopt, std::nullopt, milliseconds(0), 0.0), std::nullopt);
  EXPECT_EQ(BusyRetryDelay(0, std::nullopt, std::nullopt, milliseconds(0), 0.0), std::nullopt);
  // A wait that would take the total past the budget is not made.
  EXPECT_EQ(BusyRetryDelay(2, 30, 30, milliseconds(seconds(31)), 0.0), std::nullopt);
  EXPECT_EQ(BusyRetryDelay(1, 61, 61, milliseconds(0), 0.0), std::nullopt);
  // Whatever the hints and the jitter, the waits add up to at most the budget.
  for (uint32_t hint : {1u, 2u, 7u, 15u, 59u, 60u}) {
    milliseconds waited(0);
    int tries = 1;
    while (auto delay = BusyRetryDelay(tries, hint, hint, waited, 0.999)) {
      waited += *delay;
      ++tries;
    }
    EXPECT_LE(waited, kBusyMaxTotalWait) << hint;
    EXPECT_LE(tries, kBusyMaxTries) << hint;
  }
}

}  // namespace
}  // namespace costore::client::internal
