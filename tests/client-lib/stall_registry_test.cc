// The process-wide stall watchdog's registry, without a daemon: a fake
// Pinger stands for costored (answering or silent), a socketpair for the
// call's bus connection. Nothing here measures time: a watch that is never
// shut down would be stopped by ctest's timeout.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "stall_registry.h"
#include "stall_watchdog.h"
#include "thread_count.h"

namespace costore::client::internal {
namespace {

using costore::test::ThreadsOfThisProcess;

using namespace std::chrono_literals;

// A daemon that answers every ping at once, or never.
struct FakeDaemon {
  std::atomic<bool> answers{false};
  std::atomic<int> pingers_made{0};
  std::atomic<int> pings{0};
};

class FakePinger final : public Pinger {
 public:
  explicit FakePinger(FakeDaemon& daemon) : daemon_(daemon) {}
  void Ping(std::chrono::milliseconds, std::chrono::milliseconds) override {
    ++daemon_.pings;
    if (daemon_.answers) {
      last_answer_ = StallClock::now();
      silent_ = false;
    } else {
      silent_ = true;
    }
  }
  bool Pending() const override { return false; }
  bool Silent() const override { return silent_; }
  std::optional<StallClock::time_point> LastAnswer() const override { return last_answer_; }
  uint32_t DaemonPid() const override { return 4242; }
  Wait NextWait() const override { return {}; }
  void Process() override {}

 private:
  FakeDaemon& daemon_;
  std::optional<StallClock::time_point> last_answer_;
  bool silent_ = true;
};

StallRegistry::PingerFactory FactoryFor(FakeDaemon& daemon) {
  return [&daemon] {
    ++daemon.pingers_made;
    return std::make_unique<FakePinger>(daemon);
  };
}

// A connected socketpair: [0] is the call's bus fd, [1] the daemon's end.
struct Bus {
  Bus() { EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0); }
  ~Bus() {
    close(fds[0]);
    close(fds[1]);
  }
  // Blocks like a call waiting for its reply: until the watchdog shuts the
  // call's end down (read returns 0).
  bool WaitForShutdown() {
    char byte;
    return read(fds[0], &byte, 1) == 0;
  }
  bool StillOpen() { return send(fds[0], "x", 1, MSG_NOSIGNAL) == 1; }
  int fds[2];
};

TEST(StallRegistryTest, ASilentDaemonGetsTheCallsConnectionShutDown) {
  FakeDaemon daemon;
  StallRegistry registry(FactoryFor(daemon), 10s);
  Bus bus;
  StallWatchdog watchdog(300ms, bus.fds[0], -1, registry);
  EXPECT_TRUE(bus.WaitForShutdown());
  watchdog.Finish();
  EXPECT_EQ(watchdog.Stalled(), "costored (pid 4242) stopped answering: no reply to a ping for 0.3 s");
  EXPECT_GE(daemon.pings.load(), 1);
}

TEST(StallRegistryTest, ADaemonThatAnswersPingsKeepsALongCallAlive) {
  FakeDaemon daemon;
  daemon.answers = true;
  StallRegistry registry(FactoryFor(daemon), 10s);
  Bus bus;
  StallWatchdog watchdog(300ms, bus.fds[0], -1, registry);
  // Until well past the stall timeout, counted in pings (at most one per
  // 50 ms ping interval): not in wall time.
  while (daemon.pings < 20) std::this_thread::sleep_for(10ms);
  watchdog.Finish();
  EXPECT_EQ(watchdog.Stalled(), std::nullopt);
  EXPECT_EQ(watchdog.SilentFor(1ms), std::nullopt);
  EXPECT_TRUE(bus.StillOpen());
}

TEST(StallRegistryTest, AMovingFileOffsetCountsAsAnAnswer) {
  FakeDaemon daemon;  // silent: only the offset says the daemon lives
  StallRegistry registry(FactoryFor(daemon), 10s);
  Bus bus;
  char path[] = "/tmp/stall_registry_test.XXXXXX";
  const int file = mkstemp(path);
  ASSERT_GE(file, 0);
  unlink(path);
  ASSERT_EQ(ftruncate(file, 1 << 20), 0);
  StallWatchdog watchdog(300ms, bus.fds[0], file, registry);
  std::atomic<bool> reading{true};
  std::thread reader([&] {
    while (reading) {
      lseek(file, 1, SEEK_CUR);
      std::this_thread::sleep_for(20ms);
    }
  });
  while (daemon.pings < 20) std::this_thread::sleep_for(10ms);
  reading = false;
  reader.join();
  EXPECT_TRUE(bus.StillOpen());
  // And once the offset stops, the silence counts again.
  EXPECT_TRUE(bus.WaitForShutdown());
  watchdog.Finish();
  EXPECT_TRUE(watchdog.Stalled().has_value());
  close(file);
}

TEST(StallRegistryTest, ASilenceShorterThanTheTimeoutIsReportedAtFinish) {
  FakeDaemon daemon;
  StallRegistry registry(FactoryFor(daemon), 10s);
  Bus bus;
  StallWatchdog watchdog(6s, bus.fds[0], -1, registry);
  // The ping interval of a 6 s timeout is 1 s: wait for the first ping.
  while (daemon.pings < 1) std::this_thread::sleep_for(10ms);
  watchdog.Finish();
  EXPECT_EQ(watchdog.Stalled(), std::nullopt);
  EXPECT_TRUE(watchdog.SilentFor(1ms).has_value());
  EXPECT_EQ(watchdog.SilentFor(1h), std::nullopt);
  EXPECT_TRUE(bus.StillOpen());
}

TEST(StallRegistryTest, QuickCallsShareOneThreadAndNeverPing) {
  FakeDaemon daemon;
  StallRegistry registry(FactoryFor(daemon), 10s);
  const int before = ThreadsOfThisProcess();
  Bus bus;
  for (int i = 0; i < 1000; ++i) {
    StallWatchdog watchdog(30s, bus.fds[0], -1, registry);
    EXPECT_LE(ThreadsOfThisProcess(), before + 1);
  }
  EXPECT_EQ(daemon.pingers_made.load(), 0);
  EXPECT_TRUE(bus.StillOpen());
}

TEST(StallRegistryTest, CallsOnManyThreadsAreWatchedByOne) {
  FakeDaemon daemon;
  StallRegistry registry(FactoryFor(daemon), 10s);
  const int before = ThreadsOfThisProcess();
  constexpr int kCalls = 8;
  Bus buses[kCalls];
  std::thread callers[kCalls];
  std::atomic<int> shut_down{0};
  for (int i = 0; i < kCalls; ++i) {
    callers[i] = std::thread([&, i] {
      StallWatchdog watchdog(200ms, buses[i].fds[0], -1, registry);
      shut_down += buses[i].WaitForShutdown();
    });
  }
  for (auto& caller : callers) caller.join();
  EXPECT_EQ(shut_down.load(), kCalls);
  EXPECT_LE(ThreadsOfThisProcess(), before + 1);
}

TEST(StallRegistryTest, TheThreadExitsWhenIdleAndComesBackOnTheNextCall) {
  FakeDaemon daemon;
  StallRegistry registry(FactoryFor(daemon), 100ms);
  const int before = ThreadsOfThisProcess();
  Bus bus;
  { StallWatchdog watchdog(30s, bus.fds[0], -1, registry); }
  EXPECT_TRUE(registry.ThreadRunning());
  while (registry.ThreadRunning()) std::this_thread::sleep_for(10ms);
  // Joined by the next Arm(): then it is the only one again.
  StallWatchdog watchdog(300ms, bus.fds[0], -1, registry);
  EXPECT_TRUE(registry.ThreadRunning());
  EXPECT_TRUE(bus.WaitForShutdown());
  watchdog.Finish();
  EXPECT_TRUE(watchdog.Stalled().has_value());
  EXPECT_LE(ThreadsOfThisProcess(), before + 1);
}

TEST(StallRegistryTest, AForkedChildCallsWithItsOwnThread) {
  { StallWatchdog warm(30s, -1, -1); }  // the global registry's thread runs
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    Bus bus;
    StallWatchdog watchdog(300ms, bus.fds[0], -1);
    // The child's thread watches: a silent (absent) daemon gets the call
    // shut down.
    _exit(bus.WaitForShutdown() ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

}  // namespace
}  // namespace costore::client::internal
