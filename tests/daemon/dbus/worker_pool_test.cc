#include "daemon/dbus/worker_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace costore {
namespace {

TEST(WorkerPoolTest, RunsEveryTaskAndJoinsAtShutdown) {
  std::atomic<int> done{0};
  {
    WorkerPool pool(3);
    for (int i = 0; i < 50; ++i) pool.Submit([&] { ++done; });
    EXPECT_TRUE(pool.Shutdown(-1));
  }
  EXPECT_EQ(done.load(), 50);
}

TEST(WorkerPoolTest, NeverRunsMoreThanItsBound) {
  std::atomic<int> running{0}, peak{0};
  WorkerPool pool(2);
  for (int i = 0; i < 8; ++i) {
    pool.Submit([&] {
      int now = ++running;
      int seen = peak.load();
      while (now > seen && !peak.compare_exchange_weak(seen, now)) {
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      --running;
    });
  }
  ASSERT_TRUE(pool.Shutdown(-1));
  EXPECT_LE(peak.load(), 2);
  EXPECT_GE(peak.load(), 1);
}

TEST(WorkerPoolTest, AThrowingTaskIsCaughtAndThePoolGoesOn) {
  WorkerPool pool(1);
  std::atomic<int> after{0};
  pool.Submit([] { throw std::runtime_error("escaped from a cipher"); });
  pool.Submit([] { throw 42; });
  pool.Submit([&] { ++after; });
  ASSERT_TRUE(pool.Shutdown(-1));
  EXPECT_EQ(pool.escaped(), 2);
  EXPECT_EQ(after.load(), 1);
}

TEST(WorkerPoolTest, ShutdownWaitsAtMostItsTimeoutForABusyTask) {
  WorkerPool pool(1);
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  pool.Submit([&] {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return release; });
  });
  EXPECT_FALSE(pool.Shutdown(50));  // still busy: not joined
  {
    std::lock_guard<std::mutex> lock(mu);
    release = true;
  }
  cv.notify_all();
  EXPECT_TRUE(pool.Shutdown(-1));
}

TEST(WorkerPoolTest, TasksAfterShutdownAreDropped) {
  WorkerPool pool(1);
  ASSERT_TRUE(pool.Shutdown(-1));
  std::atomic<int> ran{0};
  pool.Submit([&] { ++ran; });
  EXPECT_EQ(ran.load(), 0);
}

}  // namespace
}  // namespace costore
