// What killed processes, shutdowns, stalled or vanished clients and a full
// house do to the daemon: nothing stored is lost or corrupted, and every
// caller gets a clear answer.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <filesystem>
#include <thread>

#include "tests/integration/daemon_harness.h"

namespace costore::test {
namespace {

constexpr char kNotFound[] = "io.github.costore.Error.NotFound";
constexpr char kMismatch[] = "io.github.costore.Error.DigestMismatch";

class RobustnessTest : public ::testing::Test {
 protected:
  DaemonHarness harness_;
};

// Waits until a partial file appears in ingest/ (the daemon is mid-store).
bool WaitForIngest(const std::string& store_dir) {
  for (int i = 0; i < 500; ++i) {
    if (!FilesBelow(store_dir + "/ingest").empty()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

TEST_F(RobustnessTest, FilesAndGrantsSurviveARestart) {
  std::string data = RandomBytes(300000, 8);
  std::string digest = DigestOf(data);
  {
    auto client = harness_.Connect();
    ASSERT_EQ(client->TryStore("https://a.example", digest, PipeFrom(data), {}), "");
    client->Grant(DaemonHarness::SelfApp(), "https://b.example", digest);
  }
  int status = harness_.StopDaemon(SIGTERM);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << harness_.DaemonLog();
  harness_.StartDaemon();
  auto client = harness_.Connect();
  std::string bytes;
  EXPECT_EQ(client->TryOpen("https://b.example", digest, &bytes), "");
  EXPECT_EQ(bytes, data);
  EXPECT_EQ(client->List({}).size(), 1u);
}

TEST_F(RobustnessTest, KilledMidStoreLeavesNothingPublishedAndIsCleanedAtStart) {
  std::string kept = RandomBytes(1000, 1);
  auto client = harness_.Connect();
  ASSERT_EQ(client->TryStore("", DigestOf(kept), PipeFrom(kept), {}), "");

  int fds[2];
  ASSERT_EQ(pipe2(fds, O_CLOEXEC), 0);
  std::string partial = RandomBytes(1 << 20, 2);
  std::thread store([&] { client->TryStore("", DigestOf(partial + "more"), fds[0], {}); });
  ASSERT_EQ(write(fds[1], partial.data(), partial.size()), static_cast<ssize_t>(partial.size()));
  ASSERT_TRUE(WaitForIngest(harness_.store_dir()));
  harness_.StopDaemon(SIGKILL);
  close(fds[1]);
  store.join();
  close(fds[0]);
  EXPECT_FALSE(FilesBelow(harness_.store_dir() + "/ingest").empty()) << "the crash should leave a partial file";

  harness_.StartDaemon();
  EXPECT_TRUE(FilesBelow(harness_.store_dir() + "/ingest").empty());
  auto again = harness_.Connect();
  auto files = again->List({});
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0]["digest"].get<std::string>(), DigestOf(kept));
  std::string bytes;
  EXPECT_EQ(again->TryOpen("", DigestOf(kept), &bytes), "");
  EXPECT_EQ(bytes, kept);
}

TEST_F(RobustnessTest, SigtermMidStoreCancelsTheStoreAndExitsCleanly) {
  auto client = harness_.Connect();
  int fds[2];
  ASSERT_EQ(pipe2(fds, O_CLOEXEC), 0);
  std::string result = "pending", message;
  std::thread store([&] { result = client->TryStore("", DigestOf("never finished"), fds[0], {}, nullptr, &message); });
  ASSERT_EQ(write(fds[1], "partial", 7), 7);
  ASSERT_TRUE(WaitForIngest(harness_.store_dir()));
  int status = harness_.StopDaemon(SIGTERM);
  store.join();
  close(fds[1]);
  close(fds[0]);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << harness_.DaemonLog();
  EXPECT_EQ(result, "io.github.costore.Error.Cancelled") << message;
  EXPECT_TRUE(FilesBelow(harness_.store_dir() + "/ingest").empty());
}

TEST_F(RobustnessTest, ClientThatVanishesMidStoreStoresNothing) {
  std::string data = RandomBytes(1 << 20, 6);
  std::string digest = DigestOf(data);
  int fds[2];
  ASSERT_EQ(pipe2(fds, 0), 0);
  // A child process starts the store and dies halfway through its bytes.
  pid_t child = fork();
  if (child == 0) {
    auto connection = sdbus::createSessionBusConnectionWithAddress(harness_.address());
    auto proxy = sdbus::createProxy(*connection, "io.github.costore", "/io/github/costore");
    auto call = proxy->createMethodCall("io.github.costore.Store1", "Store");
    call << std::string("") << digest << sdbus::UnixFd(fds[0]) << Dict{};
    try {
      proxy->callMethod(call, 1000);  // sent; the reply is never awaited
    } catch (const sdbus::Error&) {
    }
    ssize_t ignored = write(fds[1], data.data(), data.size() / 2);
    (void)ignored;
    _exit(0);
  }
  close(fds[0]);
  close(fds[1]);
  waitpid(child, nullptr, 0);
  auto client = harness_.Connect();
  // The daemon reads EOF, finds a mismatch and stores nothing.
  for (int i = 0; i < 500 && !FilesBelow(harness_.store_dir() + "/ingest").empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(client->List({}).empty());
  EXPECT_TRUE(FilesBelow(harness_.store_dir() + "/ingest").empty());
  EXPECT_EQ(client->TryStore("", digest, PipeFrom(data), {}), "");
}

TEST_F(RobustnessTest, SilentSourceIsAbandonedAfterTheIdleTimeout) {
  harness_.StopDaemon();
  harness_.StartDaemon({"--idle-timeout", "1"});
  auto client = harness_.Connect();
  int fds[2];
  ASSERT_EQ(pipe2(fds, O_CLOEXEC), 0);
  std::string message;
  EXPECT_EQ(client->TryStore("", DigestOf("x"), fds[0], {}, nullptr, &message),
            "io.github.costore.Error.Cancelled");
  EXPECT_THAT(message, ::testing::HasSubstr("no data"));
  close(fds[0]);
  close(fds[1]);
  EXPECT_TRUE(FilesBelow(harness_.store_dir() + "/ingest").empty());
}

TEST_F(RobustnessTest, TooManyStoresInFlightAreBusy) {
  harness_.StopDaemon();
  harness_.StartDaemon({"--max-stores", "1"});
  auto slow = harness_.Connect();
  auto client = harness_.Connect();
  int fds[2];
  ASSERT_EQ(pipe2(fds, O_CLOEXEC), 0);
  std::string data = "slow";
  std::string slow_result = "pending";
  std::thread store([&] { slow_result = slow->TryStore("", DigestOf(data), fds[0], {}); });
  ASSERT_TRUE(WaitForIngest(harness_.store_dir()));
  std::string message;
  EXPECT_EQ(client->TryStore("", DigestOf("y"), PipeFrom("y"), {}, nullptr, &message),
            "io.github.costore.Error.Busy");
  ASSERT_EQ(write(fds[1], data.data(), data.size()), 4);
  close(fds[1]);
  store.join();
  close(fds[0]);
  EXPECT_EQ(slow_result, "");
  EXPECT_EQ(client->TryStore("", DigestOf("y"), PipeFrom("y"), {}), "");
}

TEST_F(RobustnessTest, OrphanBlobsAndLostRecordsAreReconciledAtStart) {
  auto client = harness_.Connect();
  std::string kept = "kept", lost = "lost";
  ASSERT_EQ(client->TryStore("", DigestOf(kept), PipeFrom(kept), {}), "");
  ASSERT_EQ(client->TryStore("", DigestOf(lost), PipeFrom(lost), {}), "");
  harness_.StopDaemon();
  // An orphan: bytes no record names (a crash between rename and record).
  std::string orphan_hex = DigestOf("orphan").substr(7);
  std::string orphan_dir = harness_.store_dir() + "/blobs/sha256/" + orphan_hex.substr(0, 2);
  std::filesystem::create_directories(orphan_dir);
  WriteFile(orphan_dir + "/" + orphan_hex, "orphan");
  // A lost blob: a record whose bytes vanished.
  std::string lost_hex = DigestOf(lost).substr(7);
  std::string lost_path = harness_.store_dir() + "/blobs/sha256/" + lost_hex.substr(0, 2) + "/" + lost_hex;
  chmod((harness_.store_dir() + "/blobs/sha256/" + lost_hex.substr(0, 2)).c_str(), 0700);
  ASSERT_EQ(unlink(lost_path.c_str()), 0);

  harness_.StartDaemon();
  auto again = harness_.Connect();
  // Nothing is deleted at start: the orphan's bytes are verified against
  // its name and re-indexed (without attribution); the lost blob's record
  // stays, marked damaged, and is never served.
  EXPECT_TRUE(std::filesystem::exists(orphan_dir + "/" + orphan_hex));
  auto files = again->List({});
  ASSERT_EQ(files.size(), 3u);
  std::map<std::string, std::string> states;
  for (auto& file : files) states[file["digest"].get<std::string>()] = file["state"].get<std::string>();
  EXPECT_EQ(states[DigestOf(kept)], "ok");
  EXPECT_EQ(states[DigestOf("orphan")], "ok");
  EXPECT_EQ(states[DigestOf(lost)], "damaged");
  EXPECT_EQ(again->TryOpen("", DigestOf(lost), nullptr), kNotFound);
  EXPECT_THAT(harness_.DaemonLog(), ::testing::HasSubstr("re-indexed " + DigestOf("orphan")));
  // Storing the lost bytes again repairs the record.
  ASSERT_EQ(again->TryStore("", DigestOf(lost), PipeFrom(lost), {}), "");
  std::string bytes;
  EXPECT_EQ(again->TryOpen("", DigestOf(lost), &bytes), "");
  EXPECT_EQ(bytes, lost);
}

// A refusal quoting a hostile argument must still be sent: D-Bus refuses
// strings that are not UTF-8, and an error message cut in the middle of a
// character used to leave the caller with no reply at all.
TEST_F(RobustnessTest, HostileNonAsciiArgumentsGetAnErrorReply) {
  auto client = harness_.Connect();
  std::string arabic_digits;
  for (int i = 0; i < 64; ++i) arabic_digits += "\u0661";  // U+0661, two bytes each
  const std::string long_name = [] {
    std::string n;
    for (int i = 0; i < 600; ++i) n += "\u00e9";
    return n;
  }();
  auto error_of = [](const std::function<void()>& call) -> std::string {
    try {
      call();
    } catch (const sdbus::Error& e) {
      return e.getName();
    }
    return "";
  };
  const std::string prefix = "io.github.costore.Error.";
  EXPECT_THAT(client->TryStore("", "sha256:" + arabic_digits, PipeFrom("x"), {}), ::testing::StartsWith(prefix));
  EXPECT_THAT(client->TryStore("https://\u00e9\u00e9\u00e9.example/" + arabic_digits, DigestOf("x"), PipeFrom("x"), {}),
              ::testing::StartsWith(prefix));
  EXPECT_THAT(client->TryStore("", DigestOf("x"), PipeFrom("x"), {{"name", sdbus::Variant(long_name)}}),
              ::testing::StartsWith(prefix));
  EXPECT_THAT(client->TryOpen("", "sha256:" + arabic_digits, nullptr), ::testing::StartsWith(prefix));
  EXPECT_THAT(error_of([&] { client->Stat("sha256:" + arabic_digits); }), ::testing::StartsWith(prefix));
  EXPECT_THAT(error_of([&] { client->Delete("sha256:" + arabic_digits); }), ::testing::StartsWith(prefix));
  EXPECT_THAT(error_of([&] { client->Grant("/usr/bin/x", "", "sha256:" + arabic_digits); }),
              ::testing::StartsWith(prefix));
  EXPECT_THAT(error_of([&] { client->ForgetOrigin("https://" + long_name); }), ::testing::StartsWith(prefix));
  EXPECT_THAT(error_of([&] { client->SetSetting(long_name, sdbus::Variant(uint32_t{1})); }),
              ::testing::StartsWith(prefix));
}

TEST_F(RobustnessTest, StoreLayoutIsPrivateAndBlobsAreReadOnly) {
  auto client = harness_.Connect();
  std::string data = "layout";
  ASSERT_EQ(client->TryStore("", DigestOf(data), PipeFrom(data), {}), "");
  struct stat st;
  ASSERT_EQ(stat(harness_.store_dir().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  std::string hex = DigestOf(data).substr(7);
  ASSERT_EQ(stat((harness_.store_dir() + "/blobs/sha256/" + hex.substr(0, 2) + "/" + hex).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0444u);
  EXPECT_TRUE(std::filesystem::exists(harness_.store_dir() + "/CACHEDIR.TAG"));
  EXPECT_TRUE(std::filesystem::exists(harness_.store_dir() + "/catalog.db"));
}

TEST_F(RobustnessTest, HostileStoresOfAnExistingDigestDoNotDisturbIt) {
  auto client = harness_.Connect();
  std::string data = RandomBytes(20000, 30);
  std::string digest = DigestOf(data);
  ASSERT_EQ(client->TryStore("", digest, PipeFrom(data), {}), "");
  // A hostile client claims the same digest with other bytes, repeatedly.
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(client->TryStore("https://evil.example", digest, PipeFrom(RandomBytes(20000, 31 + i)), {}),
              kMismatch);
  }
  std::string bytes;
  EXPECT_EQ(client->TryOpen("", digest, &bytes), "");
  EXPECT_EQ(bytes, data);
  EXPECT_EQ(client->TryOpen("https://evil.example", digest, nullptr), kNotFound);
}

}  // namespace
}  // namespace costore::test
