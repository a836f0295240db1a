#include "daemon/engine/lru_map.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace costore {
namespace {

TEST(LruMapTest, HoldsAtMostItsCapacityAndEvictsTheLeastRecentlyUsed) {
  std::vector<std::string> evicted;
  LruMap<std::string, int> map(3, [&](const std::string& key, const int&) { evicted.push_back(key); });
  map.FindOrInsert("a", 1);
  map.FindOrInsert("b", 2);
  map.FindOrInsert("c", 3);
  ASSERT_NE(map.Find("a"), nullptr);  // "a" is now the most recently used
  bool inserted = false;
  map.FindOrInsert("d", 4, &inserted);
  EXPECT_TRUE(inserted);
  EXPECT_EQ(evicted, std::vector<std::string>{"b"});
  EXPECT_EQ(map.size(), 3u);
  EXPECT_EQ(map.Find("b"), nullptr);
  EXPECT_EQ(*map.Find("a"), 1);
  // Found, not replaced.
  EXPECT_EQ(map.FindOrInsert("c", 30, &inserted), 3);
  EXPECT_FALSE(inserted);
  map.Erase("a");
  EXPECT_EQ(map.size(), 2u);
  for (int i = 0; i < 10'000; ++i) map.FindOrInsert(std::to_string(i), i);
  EXPECT_EQ(map.size(), 3u);
  EXPECT_EQ(*map.Find("9999"), 9999);
}

}  // namespace
}  // namespace costore
