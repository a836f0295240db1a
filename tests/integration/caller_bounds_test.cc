// Bounded by caller, against the real costored: one caller's trickling
// stores never make another caller's store Busy, a trickler is cancelled
// once the (shortened) rate window passes, and refused Opens from new
// origins do not grow the daemon.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <thread>
#include <vector>

#include "tests/integration/daemon_harness.h"

namespace costore::test {
namespace {

using ::testing::EndsWith;
using ::testing::HasSubstr;

const std::string kBusy = "io.github.costore.Error.Busy";

// VmRSS of `pid`, in KiB.
long RssKiB(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

// A pipe that the test writes into a byte at a time.
struct Trickle {
  int fds[2] = {-1, -1};
  std::thread thread;
  std::string result = "pending";  // read once `done`
  std::string message;
  std::atomic<bool> done{false};
  ~Trickle() {
    if (thread.joinable()) thread.join();
    for (int fd : fds) {
      if (fd >= 0) close(fd);
    }
  }
};

class CallerBoundsTest : public ::testing::Test {
 protected:
  DaemonHarness harness_;
};

TEST_F(CallerBoundsTest, SixteenTricklersFromOneCallerDoNotMakeAnotherCallersStoreBusy) {
  constexpr int kBytes = 10;
  const std::string data(kBytes, 'x');
  std::vector<std::unique_ptr<BusClient>> clients;
  std::vector<std::unique_ptr<Trickle>> trickles;
  std::vector<int> sent(16, 0);
  for (int i = 0; i < 16; ++i) {
    clients.push_back(harness_.Connect());
    auto trickle = std::make_unique<Trickle>();
    ASSERT_EQ(pipe2(trickle->fds, O_CLOEXEC), 0);
    ASSERT_EQ(write(trickle->fds[1], "x", 1), 1);  // the first byte is waiting before the call
    sent[i] = 1;
    trickles.push_back(std::move(trickle));
  }
  for (int i = 0; i < 16; ++i) {
    Trickle* t = trickles[i].get();
    BusClient* client = clients[i].get();
    t->thread = std::thread([t, client, &data] {
      t->result = client->TryStore("https://slow.example", DigestOf(data), t->fds[0], {}, nullptr, &t->message);
      t->done = true;
    });
  }
  // Busy ones are answered at once; the rest hold their slots.
  int answered = 0;
  for (int i = 0; i < 1000 && answered < 12; ++i) {
    answered = 0;
    for (auto& t : trickles) answered += t->done;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // no more than 12
  std::vector<bool> busy;
  for (auto& t : trickles) busy.push_back(t->done && t->result == kBusy);
  ASSERT_EQ(std::count(busy.begin(), busy.end(), true), 12);
  for (size_t i = 0; i < trickles.size(); ++i) {
    Trickle* t = trickles[i].get();
    if (!busy[i]) continue;
    EXPECT_THAT(t->message, EndsWith("; try again in 5 s"));
    EXPECT_THAT(t->message, HasSubstr("https://slow.example"));
    // Not a byte of a refused store's source was read.
    char byte = 0;
    ASSERT_EQ(fcntl(t->fds[0], F_SETFL, O_NONBLOCK), 0);
    EXPECT_EQ(read(t->fds[0], &byte, 1), 1);
  }
  // The admitted four trickle on, one byte every 2 s (no idle timeout
  // ends them), while other callers store.
  std::atomic<bool> stop{false};
  std::thread feeder([&] {
    while (!stop) {
      std::this_thread::sleep_for(std::chrono::seconds(2));
      for (size_t i = 0; i < trickles.size(); ++i) {
        if (busy[i] || sent[i] >= kBytes - 1) continue;
        EXPECT_EQ(write(trickles[i]->fds[1], "x", 1), 1);
        ++sent[i];
      }
    }
  });
  std::this_thread::sleep_for(std::chrono::seconds(3));
  auto other_origins = harness_.Connect();
  auto app_itself = harness_.Connect();
  std::string message;
  for (int i = 0; i < 8; ++i) {
    const std::string bytes = "fast " + std::to_string(i);
    EXPECT_EQ(other_origins->TryStore("https://fast" + std::to_string(i % 4) + ".example", DigestOf(bytes),
                                      PipeFrom(bytes), {}, nullptr, &message),
              "")
        << message;
  }
  EXPECT_EQ(app_itself->TryStore("", DigestOf("app"), PipeFrom("app"), {}, nullptr, &message), "") << message;
  stop = true;
  feeder.join();
  // The tricklers send the rest and succeed.
  for (size_t i = 0; i < trickles.size(); ++i) {
    Trickle* t = trickles[i].get();
    if (busy[i]) continue;
    EXPECT_FALSE(t->done);
    const std::string rest(kBytes - sent[i], 'x');
    EXPECT_EQ(write(t->fds[1], rest.data(), rest.size()), static_cast<ssize_t>(rest.size()));
    close(t->fds[1]);
    t->fds[1] = -1;
  }
  for (auto& t : trickles) {
    t->thread.join();
    if (t->result != kBusy) {
      EXPECT_EQ(t->result, "") << t->message;
    }
  }
}

TEST_F(CallerBoundsTest, ATricklerIsCancelledOnceTheRateWindowPasses) {
  harness_.StopDaemon();
  harness_.StartDaemon({"--store-rate-window", "2"});
  auto client = harness_.Connect();
  EXPECT_EQ(client->GetSettings().at("min-store-rate").get<uint64_t>(), uint64_t{1} << 20);
  Trickle t;
  ASSERT_EQ(pipe2(t.fds, O_CLOEXEC), 0);
  std::atomic<bool> stop{false};
  std::thread feeder([&] {
    while (!stop && write(t.fds[1], "x", 1) == 1) std::this_thread::sleep_for(std::chrono::milliseconds(500));
  });
  t.result = client->TryStore("https://slow.example", DigestOf(std::string(100, 'x')), t.fds[0], {}, nullptr,
                              &t.message);
  stop = true;
  feeder.join();
  EXPECT_EQ(t.result, "io.github.costore.Error.Cancelled");
  EXPECT_THAT(t.message, HasSubstr("bytes/s over the last 2 s"));
  EXPECT_THAT(t.message, HasSubstr("at least 1048576 bytes/s"));
  EXPECT_TRUE(client->List({}).empty());

  // Off (0), the same trickler finishes.
  client->SetSetting("min-store-rate", sdbus::Variant(uint64_t{0}));
  EXPECT_EQ(client->GetSettings().at("min-store-rate").get<uint64_t>(), 0u);
  Trickle slow;
  ASSERT_EQ(pipe2(slow.fds, O_CLOEXEC), 0);
  std::thread slow_feeder([&] {
    for (int i = 0; i < 8; ++i) {
      EXPECT_EQ(write(slow.fds[1], "x", 1), 1);
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
    close(slow.fds[1]);
    slow.fds[1] = -1;
  });
  slow.result = client->TryStore("https://slow.example", DigestOf(std::string(8, 'x')), slow.fds[0], {}, nullptr,
                                 &slow.message);
  slow_feeder.join();
  EXPECT_EQ(slow.result, "") << slow.message;
}

TEST_F(CallerBoundsTest, RefusedOpensFromNewOriginsKeepTheDaemonSmall) {
  // No consent agent: every Open of a file others stored is refused, and
  // each new origin spends a prompt of its budget on the way.
  harness_.StopDaemon();
  harness_.StartDaemon({"--consent-agent", ""});
  auto owner = harness_.Connect();
  const std::string data = "a file others may ask for";
  ASSERT_EQ(owner->TryStore("https://owner.example", DigestOf(data), PipeFrom(data), {}), "");
  const std::string digest = DigestOf(data);
  std::atomic<int> refused{0};
  std::atomic<int> unexpected{0};
  auto open_from = [&](int first, int count) {
    constexpr int kThreads = 4;
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        auto client = harness_.Connect();
        for (int i = first + t; i < first + count; i += kThreads) {
          const std::string origin = "https://visitor-" + std::to_string(i) + ".example";
          if (client->TryOpen(origin, digest, nullptr) == "io.github.costore.Error.NotFound") {
            ++refused;
          } else {
            ++unexpected;
          }
        }
      });
    }
    for (auto& thread : threads) thread.join();
  };
  // Warm-up: past the broker's 4096 principals, so that what follows only
  // replaces what is kept.
  open_from(0, 8000);
  const long before = RssKiB(harness_.daemon_pid());
  open_from(8000, 40'000);
  const long after = RssKiB(harness_.daemon_pid());
  std::printf("daemon VmRSS after warm-up: %ld KiB; after 40000 more refused Opens from new origins: %ld KiB "
              "(growth %ld KiB)\n",
              before, after, after - before);
  EXPECT_EQ(refused.load(), 48'000);
  EXPECT_EQ(unexpected.load(), 0);
  ASSERT_GT(before, 0);
  EXPECT_LT(after - before, 2048) << "KiB";
}

}  // namespace
}  // namespace costore::test
