// A client that never hangs: libcostore (C++ API and C ABI) against the
// real costored stopped with SIGSTOP (its loop answers nothing, not even
// the library's pings), and Busy answers tried again until a slot frees.
// Nothing here measures time: a call that hung would be stopped by ctest's
// timeout, which is the backstop.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <costore/costore.h>
#include <costore/costore.hpp>

#include <algorithm>
#include <sys/ioctl.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "tests/integration/daemon_harness.h"

namespace costore::test {
namespace {

using client::Client;
using client::ErrorCode;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

// Stops costored for as long as it lives (SIGSTOP, then SIGCONT): the
// harness can only end a daemon that runs.
class Stopped {
 public:
  explicit Stopped(pid_t pid) : pid_(pid) { EXPECT_EQ(kill(pid_, SIGSTOP), 0); }
  ~Stopped() { kill(pid_, SIGCONT); }
  Stopped(const Stopped&) = delete;
  Stopped& operator=(const Stopped&) = delete;

 private:
  pid_t pid_;
};

// The client::Error a call throws; fails the test if it throws none.
client::Error ErrorOf(const std::function<void()>& call) {
  try {
    call();
  } catch (const client::Error& error) {
    return error;
  }
  ADD_FAILURE() << "the call did not fail";
  return client::Error(ErrorCode::kFailed, "");
}

class ClientStallTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // DaemonHarness points DBUS_SESSION_BUS_ADDRESS at its private bus.
    client_ = std::make_unique<Client>(Client::Connect());
    client_->SetStallTimeout(2s);
  }

  std::string StallMessage() const {
    return "costored (pid " + std::to_string(harness_.daemon_pid()) +
           ") stopped answering: no reply to a ping for 2 s";
  }

  // Expects `call`, made while the daemon is stopped, to fail as stalled.
  void ExpectStalled(const std::function<void()>& call) {
    client::Error error = ErrorOf(call);
    EXPECT_EQ(error.code(), ErrorCode::kUnreachable) << error.what();
    EXPECT_EQ(std::string(error.what()), StallMessage());
  }

  std::string WriteScratch(const std::string& name, const std::string& bytes) {
    const std::string path = harness_.scratch(name);
    WriteFile(path, bytes);
    return path;
  }

  DaemonHarness harness_;
  std::unique_ptr<Client> client_;
};

TEST_F(ClientStallTest, AManagerCallFailsAndTheNextOneWorksOnceTheDaemonRuns) {
  const std::string data = "listed";
  client_->StorePath(WriteScratch("listed", data), DigestOf(data));
  {
    Stopped stopped(harness_.daemon_pid());
    ExpectStalled([&] { client_->List(); });
    ExpectStalled([&] { client_->Stat(DigestOf(data)); });
  }
  // The connection the watchdog shut down is not reused.
  EXPECT_EQ(client_->List().size(), 1u);
}

TEST_F(ClientStallTest, AStoreOfARegularFileFails) {
  const std::string data = RandomBytes(1 << 20, 3);
  const std::string path = WriteScratch("file", data);
  {
    Stopped stopped(harness_.daemon_pid());
    ExpectStalled([&] { client_->StorePath(path, DigestOf(data)); });
    // With a progress callback the call runs on a worker thread.
    ExpectStalled([&] { client_->StorePath(path, DigestOf(data), {.progress = [](uint64_t, uint64_t) {}}); });
  }
}

TEST_F(ClientStallTest, AStoreFromAPipeFails) {
  int fds[2];
  ASSERT_EQ(pipe2(fds, O_CLOEXEC), 0);
  ASSERT_EQ(write(fds[1], "some", 4), 4);  // and the writer stays open: more may come
  {
    Stopped stopped(harness_.daemon_pid());
    ExpectStalled([&] { client_->StoreFd(fds[0], DigestOf("some more")); });
    // A stream: the library fills its pipe until the daemon stops taking bytes.
    std::string chunk(1 << 16, 'x');
    ExpectStalled([&] {
      client_->StoreStream(
          [&](std::span<std::byte> buffer) {
            std::memcpy(buffer.data(), chunk.data(), std::min(buffer.size(), chunk.size()));
            return std::min(buffer.size(), chunk.size());
          },
          DigestOf("endless"));
    });
  }
  close(fds[0]);
  close(fds[1]);
}

TEST_F(ClientStallTest, AnOpenFails) {
  const std::string data = "opened";
  client_->StorePath(WriteScratch("opened", data), DigestOf(data));
  {
    Stopped stopped(harness_.daemon_pid());
    ExpectStalled([&] { client_->Open(DigestOf(data)); });
  }
  EXPECT_GE(client_->Open(DigestOf(data)).fd.get(), 0);
}

TEST_F(ClientStallTest, TheCAbiTakesTheStallTimeoutToo) {
  costore_client* handle = costore_client_new();
  ASSERT_NE(handle, nullptr);
  ASSERT_EQ(costore_client_set_stall_timeout(handle, 2000), COSTORE_OK);  // before connecting: kept
  {
    Stopped stopped(harness_.daemon_pid());
    costore_file_entry** entries = nullptr;
    size_t count = 0;
    EXPECT_EQ(costore_client_list(handle, &entries, &count), COSTORE_ERROR_UNREACHABLE);
    EXPECT_EQ(std::string(costore_client_get_error_message(handle)), StallMessage());
  }
  costore_client_free(handle);
}

int BytesInPipe(int fd) {
  int n = 0;
  return ioctl(fd, FIONREAD, &n) == 0 ? n : -1;
}

// costored with --max-stores 1, and that one slot taken by a store from a
// pipe until Release(): every other store is Busy meanwhile.
class OnlySlotHeld {
 public:
  explicit OnlySlotHeld(DaemonHarness& harness) {
    harness.StopDaemon();
    harness.StartDaemon({"--max-stores", "1"});
    holder_ = harness.Connect();
    auto probe = harness.Connect();
    // Taken once a probe is Busy while the holder's call is still open. A
    // probe may take the slot first, and then the holder is the one told
    // Busy: it tries again.
    for (int attempt = 0; attempt < 20 && !held_; ++attempt) {
      EXPECT_EQ(pipe2(fds_, O_CLOEXEC), 0);
      holder_done_ = false;
      thread_ = std::thread([this] {
        result_ = holder_->TryStore("", DigestOf("held"), fds_[0], {}, nullptr, &message_);
        holder_done_ = true;
      });
      EXPECT_EQ(write(fds_[1], "he", 2), 2);
      // The daemon has taken the holder's store once it has read those
      // bytes (it reads only what it admitted); probe after that.
      for (int i = 0; i < 500 && !holder_done_ && BytesInPipe(fds_[0]) > 0; ++i) std::this_thread::sleep_for(10ms);
      for (int i = 0; i < 100 && !holder_done_; ++i) {
        if (probe->TryStore("", DigestOf("p"), PipeFrom("p"), {}) == kBusy && !holder_done_) {
          held_ = true;
          break;
        }
        std::this_thread::sleep_for(10ms);
      }
      if (held_) break;
      close(fds_[1]);
      fds_[1] = -1;
      thread_.join();
      close(fds_[0]);
    }
    EXPECT_TRUE(held_) << "the holder never kept the only slot; its last store: " << result_ << " " << message_;
  }
  ~OnlySlotHeld() { Release(); }

  // Ends the holder's store (stored) and returns its D-Bus error name.
  std::string Release() {
    if (fds_[1] >= 0) {
      EXPECT_EQ(write(fds_[1], "ld", 2), 2);
      close(fds_[1]);
      fds_[1] = -1;
      thread_.join();
      close(fds_[0]);
    }
    return result_;
  }

 private:
  static constexpr char kBusy[] = "io.github.costore.Error.Busy";
  std::unique_ptr<BusClient> holder_;
  int fds_[2] = {-1, -1};
  std::thread thread_;
  std::string result_ = "pending";
  std::string message_;
  std::atomic<bool> holder_done_{false};
  bool held_ = false;
};

TEST_F(ClientStallTest, ABusyStoreIsTriedAgainUntilTheSlotFrees) {
  OnlySlotHeld slot(harness_);
  const std::string data = RandomBytes(100000, 5);
  const std::string path = WriteScratch("busy", data);
  std::string stored_digest, failure = "pending";
  std::thread store([&] {
    try {
      stored_digest = client_->StorePath(path, DigestOf(data)).digest;
      failure.clear();
    } catch (const client::Error& error) {
      failure = error.what();
    }
  });
  // The store has been answered Busy at least once by now (without
  // retries it would already have failed), and waits to try again.
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(slot.Release(), "");
  store.join();
  EXPECT_EQ(failure, "");
  EXPECT_EQ(stored_digest, DigestOf(data));
}

// A slot that never frees: Busy in the end, after a bounded number of tries.
TEST_F(ClientStallTest, ABusyStoreGivesUpAfterItsRetries) {
  OnlySlotHeld slot(harness_);
  client::Error error = ErrorOf([&] { client_->StorePath(WriteScratch("never", "never"), DigestOf("never")); });
  EXPECT_EQ(error.code(), ErrorCode::kBusy) << error.what();
  EXPECT_THAT(std::string(error.what()), HasSubstr("too many stores in flight"));
}

}  // namespace
}  // namespace costore::test
