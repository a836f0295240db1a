#include "daemon/engine/rate_floor.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace costore {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kSecond = 1'000'000;

TEST(RateFloorTest, ATricklingSourceIsCancelledOnceTheGracePeriodPasses) {
  RateFloor floor(1 << 20, 60 * kSecond, 60 * kSecond);
  Status s;
  int64_t now = 0;
  uint64_t received = 0;
  // One byte every 2 s: fine during the grace period, cancelled after it.
  for (; now < 60 * kSecond; now += 2 * kSecond) {
    s = floor.Observe(now, ++received);
    ASSERT_TRUE(s.ok()) << "at " << now / kSecond << " s: " << s.ToString();
  }
  for (; now <= 62 * kSecond && s.ok(); now += 2 * kSecond) s = floor.Observe(now, ++received);
  ASSERT_EQ(s.code(), Code::kCancelled);
  EXPECT_THAT(s.message(), HasSubstr("the source kept 0.5 bytes/s over the last 60 s"));
  EXPECT_THAT(s.message(), HasSubstr("at least 1048576 bytes/s (1.0 MiB/s)"));
  EXPECT_THAT(s.message(), HasSubstr("min-store-rate"));
}

TEST(RateFloorTest, TheAverageIsOverTheLastWindowOnly) {
  RateFloor floor(1000, 10 * kSecond, 10 * kSecond);
  uint64_t received = 0;
  // Fast for 30 s (10 kB/s), then nothing: the fast start does not carry a
  // stalled source past a whole window.
  int64_t now = 0;
  for (; now <= 30 * kSecond; now += kSecond / 10) ASSERT_TRUE(floor.Observe(now, received += 1000).ok());
  Status s;
  for (; now <= 45 * kSecond && s.ok(); now += kSecond / 10) s = floor.Observe(now, received);
  EXPECT_EQ(s.code(), Code::kCancelled);
  EXPECT_GT(now, 36 * kSecond);  // not before the window held less than 1000 bytes/s on average
  EXPECT_LE(now, 41 * kSecond);  // and at most one window after the source stopped
}

TEST(RateFloorTest, ASteadySourceAboveTheFloorRunsForever) {
  RateFloor floor(1000, kSecond, kSecond);
  uint64_t received = 0;
  for (int64_t now = 0; now < 3600 * kSecond; now += kSecond / 4) {
    ASSERT_TRUE(floor.Observe(now, received += 300).ok()) << now;
  }
}

TEST(RateFloorTest, ZeroIsOff) {
  RateFloor floor(0, 0, kSecond);
  for (int64_t now = 0; now < 100 * kSecond; now += kSecond) EXPECT_TRUE(floor.Observe(now, 0).ok());
}

}  // namespace
}  // namespace costore
