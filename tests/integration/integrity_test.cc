// The store's integrity against the real costored on a private bus: links
// planted below the store are never followed, a second daemon on the same
// store stops before touching it, a lost or unreadable catalog is rebuilt
// from the blobs, no reader can change what another reader gets (a
// read-only view, or sealed copies for sandboxed callers), damaged blobs are
// quarantined and never served, and pins hold against Collect.
//
// Attackers run in processes of their own: this test binary re-executes
// itself with COSTORE_INTEGRITY_HELPER set (see the helper below), so that
// the daemon sees another pid, another connection and, for the sandboxed
// case, another cgroup.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "costore-ipc/names.h"
#include "tests/integration/daemon_harness.h"

namespace costore::test {
namespace {

namespace fs = std::filesystem;

constexpr char kNotFound[] = "io.github.costore.Error.NotFound";
constexpr char kStoreInterface[] = "io.github.costore.Store1";
constexpr char kManagerInterface[] = "io.github.costore.Manager1";
constexpr char kOriginA[] = "https://a.example";
constexpr char kOriginB[] = "https://b.example";
// What the attacker writes over the start of a shared file.
constexpr char kEvilByte = 'E';
constexpr size_t kEvilLength = 64;
// The cgroup that makes the daemon take a process for the snap "costoretest".
constexpr char kSnapScope[] = "snap.costoretest.attacker-1.scope";
constexpr char kSnapApp[] = "snap:costoretest";

// ---------------------------------------------------------------------------
// The helper: this binary, re-executed with COSTORE_INTEGRITY_HELPER=<mode>.
// It opens COSTORE_HELPER_DIGEST as COSTORE_HELPER_ORIGIN on the bus at
// COSTORE_HELPER_ADDRESS (after joining COSTORE_HELPER_CGROUP, if set), tries
// what the mode says on the descriptor it got, and writes "key=value" lines
// to COSTORE_HELPER_OUT. It runs before main (gtest never starts).

std::string ErrnoName(int err) {
  const char* name = strerrorname_np(err);
  return name != nullptr ? name : "errno " + std::to_string(err);
}

std::string Outcome(bool ok) { return ok ? "ok" : ErrnoName(errno); }

std::string Env(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr ? value : "";
}

void HelperMain(const std::string& mode, std::string* out) {
  auto put = [out](const std::string& key, const std::string& value) { *out += key + "=" + value + "\n"; };
  const std::string cgroup = Env("COSTORE_HELPER_CGROUP");
  if (!cgroup.empty()) {
    // Before the first connection: the bus takes the pid from the socket,
    // and the daemon reads /proc/PID/cgroup.
    const std::string pid = std::to_string(getpid());
    int fd = open((cgroup + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
    bool joined = fd >= 0 && write(fd, pid.data(), pid.size()) == static_cast<ssize_t>(pid.size());
    int err = errno;
    if (fd >= 0) close(fd);
    errno = err;
    put("cgroup", Outcome(joined));
    if (!joined) return;
  }
  sdbus::UnixFd fd;
  try {
    auto connection = sdbus::createSessionBusConnectionWithAddress(Env("COSTORE_HELPER_ADDRESS"));
    auto proxy = sdbus::createProxy(*connection, ipc::kBusName, ipc::kObjectPath);
    Dict info;
    proxy->callMethod("Open")
        .onInterface(kStoreInterface)
        .withTimeout(std::chrono::seconds(20))
        .withArguments(Env("COSTORE_HELPER_ORIGIN"), Env("COSTORE_HELPER_DIGEST"), Dict{})
        .storeResultsTo(fd, info);
  } catch (const sdbus::Error& e) {
    put("open", e.getName());
    return;
  }
  const int n = fd.get();
  put("open", "ok");
  put("digest", DigestOf(ReadFd(n)));
  const std::string self_fd = "/proc/self/fd/" + std::to_string(n);
  std::string link(4096, '\0');
  ssize_t len = readlink(self_fd.c_str(), link.data(), link.size());
  link.resize(len > 0 ? static_cast<size_t>(len) : 0);
  put("link", link);
  if (mode == "chmod") {
    // Only the mode changes, and changes back: the bytes stay right.
    put("fchmod", Outcome(fchmod(n, 0644) == 0));
    put("fchmod-back", Outcome(fchmod(n, 0444) == 0));
    return;
  }
  if (mode == "snap") {
    int seals = fcntl(n, F_GET_SEALS);
    put("seals", seals >= 0 ? std::to_string(seals) : ErrnoName(errno));
  }
  // "ro", "rw", "snap": make the descriptor writable and write through it.
  put("fchmod", Outcome(fchmod(n, 0644) == 0));
  int writable = open(self_fd.c_str(), O_RDWR | O_CLOEXEC);
  put("reopen", Outcome(writable >= 0));
  if (writable < 0) return;
  const std::string evil(kEvilLength, kEvilByte);
  ssize_t wrote = pwrite(writable, evil.data(), evil.size(), 0);
  put("write", wrote == static_cast<ssize_t>(evil.size()) ? "ok" : wrote < 0 ? ErrnoName(errno) : "short");
  if (mode == "snap") {
    void* map = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, writable, 0);
    put("mmap-write", Outcome(map != MAP_FAILED));
    if (map != MAP_FAILED) {
      std::memset(map, kEvilByte, 16);
      munmap(map, 4096);
    }
    put("truncate", Outcome(ftruncate(writable, 10) == 0));
  }
  close(writable);
}

[[gnu::constructor]] void RunHelperIfAsked() {
  const char* mode = std::getenv("COSTORE_INTEGRITY_HELPER");
  if (mode == nullptr) return;
  std::string out;
  try {
    HelperMain(mode, &out);
  } catch (const std::exception& e) {
    out += std::string("exception=") + e.what() + "\n";
  }
  const std::string path = Env("COSTORE_HELPER_OUT");
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd >= 0) {
    ssize_t ignored = write(fd, out.data(), out.size());
    (void)ignored;
    close(fd);
  }
  _exit(0);
}

// ---------------------------------------------------------------------------
// Helpers of the tests.

bool IsSymlink(const std::string& path) {
  std::error_code ec;
  return fs::is_symlink(fs::symlink_status(path, ec));
}

bool IsRealDirectory(const std::string& path) {
  std::error_code ec;
  return fs::symlink_status(path, ec).type() == fs::file_type::directory;
}

std::string BlobPathOf(const std::string& store_dir, const std::string& digest) {
  const std::string hex = digest.substr(7);
  return store_dir + "/blobs/sha256/" + hex.substr(0, 2) + "/" + hex;
}

ino_t InodeOf(const std::string& path) {
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) return 0;
  return st.st_ino;
}

// Names in <store>/quarantine/ (not recursive).
std::vector<std::string> QuarantineNames(const std::string& store_dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (auto it = fs::directory_iterator(store_dir + "/quarantine", ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    names.push_back(it->path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::string Joined(const std::vector<std::string>& names) {
  std::string text;
  for (const auto& name : names) text += "  " + name + "\n";
  return text.empty() ? "  (nothing)\n" : text;
}

// The paths in quarantine/ whose names contain `part`.
std::vector<std::string> Quarantined(const std::string& store_dir, const std::string& part) {
  std::vector<std::string> found;
  for (const auto& name : QuarantineNames(store_dir)) {
    if (name.find(part) != std::string::npos) found.push_back(store_dir + "/quarantine/" + name);
  }
  return found;
}

// Every regular file below `dir` with its bytes.
std::map<std::string, std::string> Snapshot(const std::string& dir) {
  std::map<std::string, std::string> out;
  for (const auto& rel : FilesBelow(dir)) out[rel] = ReadFile(dir + "/" + rel);
  return out;
}

// The public entries of List, by digest.
std::map<std::string, Dict> ListByDigest(BusClient& client) {
  std::map<std::string, Dict> out;
  for (auto& entry : client.List({})) {
    if (entry["private"].get<bool>()) continue;
    out[entry["digest"].get<std::string>()] = entry;
  }
  return out;
}

std::string StateOf(BusClient& client, const std::string& digest) {
  auto files = ListByDigest(client);
  auto it = files.find(digest);
  return it == files.end() ? "(not listed)" : it->second["state"].get<std::string>();
}

// Verify of `digests`, by digest (public entries).
std::map<std::string, Dict> VerifyByDigest(BusClient& client, const std::vector<std::string>& digests) {
  Dict options;
  if (!digests.empty()) options["digests"] = sdbus::Variant(digests);
  std::map<std::string, Dict> out;
  for (auto& result : client.Verify(options)) {
    if (result["private"].get<bool>()) continue;
    out[result["digest"].get<std::string>()] = result;
  }
  return out;
}

// Polls `done` every 20 ms for at most `limit`; true once it holds.
bool Eventually(const std::function<bool()>& done, std::chrono::milliseconds limit = std::chrono::seconds(15)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    if (done()) return true;
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

bool WaitForIngest(const std::string& store_dir) {
  return Eventually([&] { return !FilesBelow(store_dir + "/ingest").empty(); }, std::chrono::seconds(10));
}

// Waits for `pid` at most `limit`; kills it if it is still running then.
// Returns the wait status, or -1 if it had to be killed.
int WaitBounded(pid_t pid, std::chrono::seconds limit) {
  int status = 0;
  const bool exited = Eventually([&] { return waitpid(pid, &status, WNOHANG) == pid; }, limit);
  if (exited) return status;
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  return -1;
}

// The environment of this process plus `extra`, as execve takes it.
class ChildEnv {
 public:
  explicit ChildEnv(const std::map<std::string, std::string>& extra) {
    for (char** e = environ; *e != nullptr; ++e) {
      std::string entry = *e;
      std::string key = entry.substr(0, entry.find('='));
      if (!extra.count(key)) strings_.push_back(entry);
    }
    for (const auto& [key, value] : extra) strings_.push_back(key + "=" + value);
    for (auto& s : strings_) pointers_.push_back(s.data());
    pointers_.push_back(nullptr);
  }
  char** get() { return pointers_.data(); }

 private:
  std::vector<std::string> strings_;
  std::vector<char*> pointers_;
};

// Runs the helper (this binary) in `mode` and returns what it reported.
std::map<std::string, std::string> RunHelper(DaemonHarness& harness, const std::string& mode,
                                             const std::string& origin, const std::string& digest,
                                             const std::string& cgroup = "") {
  static std::atomic<int> runs{0};
  const std::string out_path = harness.scratch("helper-" + mode + "-" + std::to_string(runs++) + ".out");
  ChildEnv env({{"COSTORE_INTEGRITY_HELPER", mode},
                {"COSTORE_HELPER_ADDRESS", harness.address()},
                {"COSTORE_HELPER_ORIGIN", origin},
                {"COSTORE_HELPER_DIGEST", digest},
                {"COSTORE_HELPER_CGROUP", cgroup},
                {"COSTORE_HELPER_OUT", out_path}});
  char arg0[] = "integrity-attacker";
  char* argv[] = {arg0, nullptr};
  pid_t pid = fork();
  if (pid == 0) {
    execve("/proc/self/exe", argv, env.get());
    _exit(127);
  }
  std::map<std::string, std::string> report;
  if (pid < 0) {
    ADD_FAILURE() << "fork: " << std::strerror(errno);
    return report;
  }
  int status = WaitBounded(pid, std::chrono::seconds(40));
  EXPECT_TRUE(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << "the helper (" << mode << ") did not exit cleanly: status " << status;
  std::ifstream in(out_path);
  std::string line;
  while (std::getline(in, line)) {
    size_t eq = line.find('=');
    if (eq != std::string::npos) report[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return report;
}

std::string Describe(const std::map<std::string, std::string>& report) {
  std::string text = "the helper reported:\n";
  for (const auto& [key, value] : report) text += "  " + key + "=" + value + "\n";
  return text;
}

class IntegrityTest : public ::testing::Test {
 protected:
  std::string Store(BusClient& client, const std::string& origin, const std::string& data) {
    std::string digest = DigestOf(data);
    std::string message;
    EXPECT_EQ(client.TryStore(origin, digest, PipeFrom(data), {}, nullptr, &message), "") << message;
    return digest;
  }

  const std::string& store() const { return harness_.store_dir(); }

  DaemonHarness harness_;
};

// ---------------------------------------------------------------------------
// 1. Confinement: a link planted in place of one of the store's directories
// is moved to quarantine/, never followed; a real directory takes its place
// (blob_store.h: "Init checks that blobs/, private/, ingest/ and quarantine/
// are real directories").

class ConfinementTest : public IntegrityTest, public ::testing::WithParamInterface<const char*> {};

TEST_P(ConfinementTest, ALinkInPlaceOfAStoreDirectoryIsQuarantinedNotFollowed) {
  const std::string rel = GetParam();
  harness_.StopDaemon();

  // Outside the store: a file of the user's, and bait that looks like store
  // content (a fan-out directory holding a correctly named blob), so that a
  // daemon that followed the link would index it, empty it or move it.
  const std::string outside = harness_.scratch("outside");
  fs::create_directories(outside);
  WriteFile(outside + "/victim.txt", "the user's own file; costore must not touch it");
  const std::string bait = "bait bytes outside the store";
  const std::string bait_hex = DigestOf(bait).substr(7);
  fs::create_directories(outside + "/" + bait_hex.substr(0, 2));
  WriteFile(outside + "/" + bait_hex.substr(0, 2) + "/" + bait_hex, bait);
  const auto before = Snapshot(outside);

  const std::string place = store() + "/" + rel;
  fs::remove_all(place);
  ASSERT_EQ(symlink(outside.c_str(), place.c_str()), 0) << std::strerror(errno);

  try {
    harness_.StartDaemon();
  } catch (const std::exception& e) {
    FAIL() << "with " << rel << " a link, " << e.what();
  }
  EXPECT_EQ(Snapshot(outside), before) << "a file outside the store was changed, moved or removed";
  EXPECT_TRUE(IsRealDirectory(place)) << place << " is not a real directory again";

  // The link itself is kept in quarantine/, still pointing where it did.
  std::vector<std::string> links;
  for (const auto& name : QuarantineNames(store())) {
    const std::string path = store() + "/quarantine/" + name;
    if (IsSymlink(path) && fs::read_symlink(path).string() == outside) links.push_back(path);
  }
  EXPECT_EQ(links.size(), 1u) << "quarantine/ holds:\n" << Joined(QuarantineNames(store()));

  // The bait was never indexed, and the store works.
  auto client = harness_.Connect();
  EXPECT_EQ(ListByDigest(*client).count(DigestOf(bait)), 0u);
  const std::string data = RandomBytes(40000, 11);
  const std::string digest = Store(*client, "", data);
  std::string bytes;
  EXPECT_EQ(client->TryOpen("", digest, &bytes), "");
  EXPECT_EQ(bytes, data);
  EXPECT_EQ(ReadFile(BlobPathOf(store(), digest)), data);
  EXPECT_EQ(Snapshot(outside), before);
  EXPECT_TRUE(FilesBelow(store() + "/ingest").empty());
}

INSTANTIATE_TEST_SUITE_P(StoreDirectories, ConfinementTest, ::testing::Values("ingest", "blobs/sha256", "private", "quarantine"),
                         [](const ::testing::TestParamInfo<const char*>& param) {
                           std::string name = param.param;
                           std::replace(name.begin(), name.end(), '/', '_');
                           return name;
                         });

// ---------------------------------------------------------------------------
// 2. One daemon per store: a second one stops at the lock, having touched
// nothing, while the first one's store is in flight.

TEST_F(IntegrityTest, ASecondDaemonOnTheSameStoreStopsAndLeavesTheFirstOneAlone) {
  auto client = harness_.Connect();
  int fds[2];
  ASSERT_EQ(pipe2(fds, O_CLOEXEC), 0);
  const std::string data = RandomBytes(3 << 20, 21);
  const std::string digest = DigestOf(data);
  std::string result = "pending", message;
  std::thread store_thread(
      [&] { result = client->TryStore("", digest, fds[0], {}, nullptr, &message); });
  const size_t half = data.size() / 2;
  ASSERT_EQ(write(fds[1], data.data(), half), static_cast<ssize_t>(half));
  ASSERT_TRUE(WaitForIngest(store())) << "the store never reached ingest/";
  const auto in_flight = FilesBelow(store() + "/ingest");

  // The second costored: the same binary, the same store, the same bus.
  const std::string costored = fs::read_symlink("/proc/" + std::to_string(harness_.daemon_pid()) + "/exe").string();
  const std::string log_path = harness_.scratch("second-costored.log");
  int log = open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  ASSERT_GE(log, 0);
  std::vector<std::string> args = {costored, "--store", store(), "--verbose", "--consent-agent", ""};
  std::vector<char*> argv;
  for (auto& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  pid_t second = fork();
  if (second == 0) {
    dup2(log, STDERR_FILENO);
    dup2(log, STDOUT_FILENO);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(log);
  ASSERT_GT(second, 0);
  int status = WaitBounded(second, std::chrono::seconds(20));
  const std::string second_log = ReadFile(log_path);
  ASSERT_NE(status, -1) << "the second costored kept running; its log:\n" << second_log;
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 3)
      << "status " << status << "; its log:\n" << second_log;
  EXPECT_THAT(second_log, ::testing::HasSubstr("in use by another costored (pid " +
                                               std::to_string(harness_.daemon_pid()) + ")"));
  // It did not empty ingest/ under the first daemon's feet.
  EXPECT_EQ(FilesBelow(store() + "/ingest"), in_flight);

  ASSERT_EQ(write(fds[1], data.data() + half, data.size() - half), static_cast<ssize_t>(data.size() - half));
  close(fds[1]);
  store_thread.join();
  close(fds[0]);
  EXPECT_EQ(result, "") << message << "\n" << harness_.DaemonLog();
  std::string bytes;
  EXPECT_EQ(client->TryOpen("", digest, &bytes), "");
  EXPECT_TRUE(bytes == data) << "the stored bytes differ";
  EXPECT_EQ(StateOf(*client, digest), "ok");
}

// ---------------------------------------------------------------------------
// 3. A lost, unreadable or replaced catalog is rebuilt from the blobs.

class CatalogTest : public IntegrityTest {
 protected:
  // Stores a few files as (this app, origin a) and stops the daemon.
  void StoreAndStop() {
    auto client = harness_.Connect();
    for (uint32_t i = 0; i < 3; ++i) {
      std::string data = RandomBytes(10000 + i * 7777, 100 + i);
      files_[Store(*client, kOriginA, data)] = data;
    }
    client.reset();
    int status = harness_.StopDaemon(SIGTERM);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << harness_.DaemonLog();
  }

  void RemoveCatalogFiles() {
    for (const char* suffix : {"", "-wal", "-shm"}) fs::remove_all(store() + "/catalog.db" + suffix);
  }

  // Every file is listed again, ok, and opens after a grant (who stored it
  // is not known any more).
  void ExpectReindexed() {
    auto client = harness_.Connect();
    auto listed = ListByDigest(*client);
    EXPECT_EQ(listed.size(), files_.size());
    for (const auto& [digest, data] : files_) {
      SCOPED_TRACE(digest);
      ASSERT_EQ(listed.count(digest), 1u) << "not listed after the rebuild";
      EXPECT_EQ(listed[digest]["state"].get<std::string>(), "ok");
      EXPECT_EQ(listed[digest]["size"].get<uint64_t>(), data.size());
      client->Grant(DaemonHarness::SelfApp(), kOriginA, digest);
      std::string bytes, message;
      EXPECT_EQ(client->TryOpen(kOriginA, digest, &bytes, &message), "") << message;
      EXPECT_TRUE(bytes == data) << "the bytes differ";
      EXPECT_THAT(harness_.DaemonLog(), ::testing::HasSubstr("re-indexed " + digest));
    }
    EXPECT_THAT(harness_.DaemonLog(), ::testing::HasSubstr("re-indexed"));
    EXPECT_TRUE(IsRealDirectory(store()) && fs::is_regular_file(fs::symlink_status(store() + "/catalog.db")));
  }

  std::map<std::string, std::string> files_;
};

TEST_F(CatalogTest, ALostCatalogIsRebuiltFromTheBlobs) {
  StoreAndStop();
  RemoveCatalogFiles();
  harness_.StartDaemon();
  ExpectReindexed();
}

TEST_F(CatalogTest, AGarbageCatalogIsQuarantinedAndRebuilt) {
  StoreAndStop();
  RemoveCatalogFiles();
  const std::string garbage = RandomBytes(16384, 77);
  WriteFile(store() + "/catalog.db", garbage);
  harness_.StartDaemon();
  std::vector<std::string> kept;
  for (const auto& path : Quarantined(store(), "catalog.db")) {
    if (fs::is_regular_file(fs::symlink_status(path)) && ReadFile(path) == garbage) kept.push_back(path);
  }
  EXPECT_EQ(kept.size(), 1u) << "the garbage catalog is not in quarantine/, which holds:\n"
                             << Joined(QuarantineNames(store()));
  ExpectReindexed();
}

TEST_F(CatalogTest, ACatalogThatIsADirectoryIsQuarantinedAndRebuilt) {
  StoreAndStop();
  RemoveCatalogFiles();
  fs::create_directories(store() + "/catalog.db");
  WriteFile(store() + "/catalog.db/inside.txt", "inside");
  harness_.StartDaemon();
  std::vector<std::string> kept;
  for (const auto& path : Quarantined(store(), "catalog.db")) {
    if (IsRealDirectory(path) && ReadFile(path + "/inside.txt") == "inside") kept.push_back(path);
  }
  EXPECT_EQ(kept.size(), 1u) << "quarantine/ holds:\n" << Joined(QuarantineNames(store()));
  ExpectReindexed();
}

TEST_F(CatalogTest, ACatalogThatIsALinkIsQuarantinedNotFollowed) {
  StoreAndStop();
  // The link points at a real catalog outside the store (a copy of this
  // one): a daemon that followed it would open it and write into it.
  const std::string outside = harness_.scratch("outside-catalog.db");
  fs::copy_file(store() + "/catalog.db", outside);
  const std::string outside_bytes = ReadFile(outside);
  RemoveCatalogFiles();
  ASSERT_EQ(symlink(outside.c_str(), (store() + "/catalog.db").c_str()), 0);
  harness_.StartDaemon();
  std::vector<std::string> kept;
  for (const auto& path : Quarantined(store(), "catalog.db")) {
    if (IsSymlink(path) && fs::read_symlink(path).string() == outside) kept.push_back(path);
  }
  EXPECT_EQ(kept.size(), 1u) << "quarantine/ holds:\n" << Joined(QuarantineNames(store()));
  ExpectReindexed();
  // Grants were written meanwhile: into the new catalog, not the outside one.
  EXPECT_TRUE(ReadFile(outside) == outside_bytes) << "the catalog outside the store was written";
  EXPECT_FALSE(fs::exists(outside + "-wal"));
}

// ---------------------------------------------------------------------------
// 4. One principal's descriptor cannot change what others get.

TEST_F(IntegrityTest, TheReadOnlyViewRefusesChmodAndReopeningForWriting) {
  auto client = harness_.Connect();
  const std::string data = RandomBytes(50000, 31);
  const std::string digest = Store(*client, kOriginA, data);
  const std::string blob = BlobPathOf(store(), digest);
  const ino_t inode = InodeOf(blob);
  client->Grant(DaemonHarness::SelfApp(), kOriginB, digest);

  auto report = RunHelper(harness_, "ro", kOriginB, digest);
  ASSERT_EQ(report["open"], "ok") << Describe(report) << harness_.DaemonLog();
  EXPECT_EQ(report["digest"], digest) << Describe(report);
  EXPECT_EQ(report["fchmod"], "EROFS") << Describe(report) << harness_.DaemonLog();
  EXPECT_EQ(report["reopen"], "EROFS") << Describe(report);
  EXPECT_EQ(report.count("write"), 0u) << Describe(report);

  struct stat st {};
  ASSERT_EQ(lstat(blob.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0444u);
  EXPECT_EQ(st.st_ino, inode);
  std::string bytes;
  EXPECT_EQ(client->TryOpen(kOriginA, digest, &bytes), "");
  EXPECT_TRUE(bytes == data) << "A does not get the stored bytes";
  EXPECT_EQ(StateOf(*client, digest), "ok");
}

TEST_F(IntegrityTest, WithoutTheViewARewrittenFileIsQuarantinedNeverServedAndRepairedByAStore) {
  harness_.StopDaemon();
  harness_.StartDaemon({"--no-read-only-view"});
  auto client = harness_.Connect();
  const std::string data = RandomBytes(50000, 32);
  const std::string digest = Store(*client, kOriginA, data);
  const std::string blob = BlobPathOf(store(), digest);
  const ino_t inode = InodeOf(blob);
  client->Grant(DaemonHarness::SelfApp(), kOriginB, digest);

  auto report = RunHelper(harness_, "rw", kOriginB, digest);
  ASSERT_EQ(report["open"], "ok") << Describe(report);
  // Without the view the attack works on the shared inode...
  ASSERT_EQ(report["fchmod"], "ok") << Describe(report);
  ASSERT_EQ(report["reopen"], "ok") << Describe(report);
  ASSERT_EQ(report["write"], "ok") << Describe(report);
  std::string poisoned = data;
  poisoned.replace(0, kEvilLength, std::string(kEvilLength, kEvilByte));

  // ...but nobody is served the attacker's bytes.
  std::string bytes, message;
  EXPECT_EQ(client->TryOpen(kOriginA, digest, &bytes, &message), kNotFound)
      << (bytes == poisoned ? "the attacker's bytes were served" : "");
  EXPECT_NE(bytes, poisoned);
  auto listed = ListByDigest(*client);
  ASSERT_EQ(listed.count(digest), 1u);
  EXPECT_EQ(listed[digest]["state"].get<std::string>(), "damaged");
  EXPECT_NE(listed[digest]["problem"].get<std::string>(), "");
  // The damaged inode is kept in quarantine/, with what the attacker wrote.
  std::vector<std::string> kept;
  for (const auto& path : Quarantined(store(), digest.substr(7))) {
    if (InodeOf(path) == inode) kept.push_back(path);
  }
  ASSERT_EQ(kept.size(), 1u) << "quarantine/ holds:\n" << Joined(QuarantineNames(store()));
  EXPECT_TRUE(ReadFile(kept[0]) == poisoned);
  // A repair from it cannot succeed (its bytes are wrong): still damaged.
  EXPECT_EQ(client->TryOpen(kOriginA, digest, nullptr), kNotFound);
  EXPECT_EQ(client->TryOpen(kOriginB, digest, nullptr), kNotFound);

  // Storing the right bytes repairs it.
  Store(*client, kOriginA, data);
  EXPECT_EQ(client->TryOpen(kOriginA, digest, &bytes), "");
  EXPECT_TRUE(bytes == data) << "the repaired file does not hold the stored bytes";
  EXPECT_EQ(StateOf(*client, digest), "ok");
  EXPECT_NE(InodeOf(BlobPathOf(store(), digest)), inode);
}

TEST_F(IntegrityTest, WithoutTheViewAChmodOnlyAttackIsRepairedFromTheQuarantinedCopy) {
  harness_.StopDaemon();
  harness_.StartDaemon({"--no-read-only-view"});
  auto client = harness_.Connect();
  const std::string data = RandomBytes(50000, 33);
  const std::string digest = Store(*client, kOriginA, data);
  const ino_t inode = InodeOf(BlobPathOf(store(), digest));
  client->Grant(DaemonHarness::SelfApp(), kOriginB, digest);

  auto report = RunHelper(harness_, "chmod", kOriginB, digest);
  ASSERT_EQ(report["open"], "ok") << Describe(report);
  ASSERT_EQ(report["fchmod"], "ok") << Describe(report);
  ASSERT_EQ(report["fchmod-back"], "ok") << Describe(report);
  EXPECT_TRUE(ReadFile(BlobPathOf(store(), digest)) == data);

  // The inode was touched (its holder may have made it writable): not
  // served as it is...
  EXPECT_EQ(client->TryOpen(kOriginA, digest, nullptr), kNotFound);
  // ...but its bytes are right, so it comes back as a fresh file.
  EXPECT_TRUE(Eventually([&] { return StateOf(*client, digest) == "ok"; }))
      << "still " << StateOf(*client, digest) << "\n" << harness_.DaemonLog();
  std::string bytes;
  EXPECT_EQ(client->TryOpen(kOriginA, digest, &bytes), "");
  EXPECT_TRUE(bytes == data);
  const ino_t fresh = InodeOf(BlobPathOf(store(), digest));
  EXPECT_NE(fresh, 0u);
  EXPECT_NE(fresh, inode) << "the touched inode is served again";
  EXPECT_THAT(harness_.DaemonLog(), ::testing::HasSubstr("repaired " + digest));
}

// The first cgroup directory (a v1 controller or the v2 root) in which a
// cgroup can be made; "" if none.
std::string MakeSnapCgroup() {
  const char* bases[] = {"/sys/fs/cgroup/pids",    "/sys/fs/cgroup/cpu",     "/sys/fs/cgroup/cpuacct",
                         "/sys/fs/cgroup/freezer", "/sys/fs/cgroup/devices", "/sys/fs/cgroup/blkio",
                         "/sys/fs/cgroup/memory",  "/sys/fs/cgroup/systemd", "/sys/fs/cgroup/unified",
                         "/sys/fs/cgroup"};
  for (const char* base : bases) {
    if (access((std::string(base) + "/cgroup.procs").c_str(), F_OK) != 0) continue;
    const std::string dir = std::string(base) + "/" + kSnapScope;
    if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) continue;
    if (access((dir + "/cgroup.procs").c_str(), W_OK) == 0) return dir;
    rmdir(dir.c_str());
  }
  return "";
}

TEST_F(IntegrityTest, WithoutTheViewASnapGetsASealedCopyThatChangesNothingForOthers) {
  if (geteuid() != 0) GTEST_SKIP() << "making a snap cgroup needs root";
  const std::string cgroup = MakeSnapCgroup();
  if (cgroup.empty()) GTEST_SKIP() << "no cgroup directory is writable here";
  struct RemoveCgroup {
    std::string dir;
    ~RemoveCgroup() {
      Eventually([&] { return rmdir(dir.c_str()) == 0 || errno == ENOENT; }, std::chrono::seconds(5));
    }
  } remove_cgroup{cgroup};

  harness_.StopDaemon();
  harness_.StartDaemon({"--no-read-only-view"});
  auto client = harness_.Connect();
  const std::string data = RandomBytes(50000, 34);
  const std::string digest = Store(*client, kOriginA, data);
  const ino_t inode = InodeOf(BlobPathOf(store(), digest));
  // A reader that holds the file before the snap gets it.
  auto [before_fd, before_info] = client->Open(kOriginA, digest, {});
  client->Grant(kSnapApp, kOriginB, digest);

  auto report = RunHelper(harness_, "snap", kOriginB, digest, cgroup);
  ASSERT_EQ(report["cgroup"], "ok") << Describe(report);
  ASSERT_EQ(report["open"], "ok") << Describe(report) << harness_.DaemonLog();
  EXPECT_EQ(report["digest"], digest) << Describe(report);
  // A copy, sealed: no write through it in any way.
  EXPECT_THAT(report["link"], ::testing::StartsWith("/memfd:")) << Describe(report);
  const int seals = std::atoi(report["seals"].c_str());
  EXPECT_EQ(seals & (F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW), F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW)
      << Describe(report);
  EXPECT_NE(report["write"], "ok") << Describe(report);
  EXPECT_NE(report["mmap-write"], "ok") << Describe(report);
  EXPECT_NE(report["truncate"], "ok") << Describe(report);

  // The daemon took the helper for the snap (its read is counted so).
  bool snap_read = false;
  for (auto& usage : client->Usage(digest)) {
    if (usage["app"].get<std::string>() == kSnapApp && usage["reads"].get<uint32_t>() > 0) snap_read = true;
  }
  EXPECT_TRUE(snap_read) << "no read by " << kSnapApp << " was recorded";

  EXPECT_TRUE(ReadFd(before_fd.get()) == data) << "an earlier reader's bytes changed";
  std::string bytes;
  EXPECT_EQ(client->TryOpen(kOriginA, digest, &bytes), "");
  EXPECT_TRUE(bytes == data) << "a later Open does not return the stored bytes";
  EXPECT_EQ(StateOf(*client, digest), "ok");
  EXPECT_EQ(InodeOf(BlobPathOf(store(), digest)), inode);
}

// ---------------------------------------------------------------------------
// 5. Damaged blobs are never served, listed as damaged, and reported by
// Verify. Each tampering is done to two files: one found by Open, one by
// Verify.

enum class Tamper { kFlipByte, kTruncate, kSymlink, kFifo };

class DamageTest : public IntegrityTest, public ::testing::WithParamInterface<Tamper> {
 protected:
  void Apply(Tamper how, const std::string& path, const std::string& data) {
    ASSERT_EQ(chmod(path.c_str(), 0644), 0) << path << ": " << std::strerror(errno);
    switch (how) {
      case Tamper::kFlipByte: {
        int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
        ASSERT_GE(fd, 0);
        char c = static_cast<char>(data[data.size() / 2] ^ 0x01);
        ASSERT_EQ(pwrite(fd, &c, 1, static_cast<off_t>(data.size() / 2)), 1);
        close(fd);
        break;
      }
      case Tamper::kTruncate:
        ASSERT_EQ(truncate(path.c_str(), 100), 0);
        break;
      case Tamper::kSymlink: {
        // The link points at the right bytes: still never followed.
        const std::string target = harness_.scratch("link-target-" + std::to_string(targets_.size()));
        WriteFile(target, data);
        targets_[target] = data;
        ASSERT_EQ(unlink(path.c_str()), 0);
        ASSERT_EQ(symlink(target.c_str(), path.c_str()), 0);
        break;
      }
      case Tamper::kFifo:
        ASSERT_EQ(unlink(path.c_str()), 0);
        ASSERT_EQ(mkfifo(path.c_str(), 0644), 0);
        break;
    }
  }

  // Open with a bounded wait: a daemon stuck on a FIFO gives NoReply.
  std::string OpenBounded(BusClient& client, const std::string& digest) {
    auto proxy = sdbus::createProxy(client.connection(), ipc::kBusName, ipc::kObjectPath);
    try {
      sdbus::UnixFd fd;
      Dict info;
      proxy->callMethod("Open")
          .onInterface(kStoreInterface)
          .withTimeout(std::chrono::seconds(10))
          .withArguments(std::string(""), digest, Dict{})
          .storeResultsTo(fd, info);
      return "";
    } catch (const sdbus::Error& e) {
      return e.getName();
    }
  }

  std::map<std::string, std::string> targets_;
};

TEST_P(DamageTest, ATamperedBlobIsNeverServedAndIsReportedDamaged) {
  const Tamper how = GetParam();
  auto client = harness_.Connect();
  const std::string data1 = RandomBytes(5000, 41), data2 = RandomBytes(6000, 42);
  const std::string intact_data = RandomBytes(7000, 43);
  const std::string found_by_open = Store(*client, "", data1);
  const std::string found_by_verify = Store(*client, "", data2);
  const std::string intact = Store(*client, "", intact_data);
  Apply(how, BlobPathOf(store(), found_by_open), data1);
  Apply(how, BlobPathOf(store(), found_by_verify), data2);

  if (how == Tamper::kFifo) {
    // The Open is answered, and the daemon serves another call meanwhile.
    std::string opened = "pending";
    std::thread open_thread([&] { opened = OpenBounded(*client, found_by_open); });
    auto other = harness_.Connect();
    auto proxy = sdbus::createProxy(other->connection(), ipc::kBusName, ipc::kObjectPath);
    std::vector<Dict> files;
    try {
      proxy->callMethod("List")
          .onInterface(kManagerInterface)
          .withTimeout(std::chrono::seconds(10))
          .withArguments(Dict{})
          .storeResultsTo(files);
    } catch (const sdbus::Error& e) {
      ADD_FAILURE() << "List was not served while an Open of a FIFO ran: " << e.getName();
    }
    open_thread.join();
    EXPECT_EQ(opened, kNotFound);
  } else {
    std::string bytes;
    EXPECT_EQ(client->TryOpen("", found_by_open, &bytes), kNotFound)
        << "served " << bytes.size() << " bytes of a tampered blob";
  }

  auto verified = VerifyByDigest(*client, {found_by_open, found_by_verify, intact});
  for (const auto& digest : {found_by_open, found_by_verify}) {
    SCOPED_TRACE(digest == found_by_open ? "found by Open" : "found by Verify");
    ASSERT_EQ(verified.count(digest), 1u);
    EXPECT_EQ(verified[digest]["state"].get<std::string>(), "damaged");
    EXPECT_NE(verified[digest]["problem"].get<std::string>(), "");
  }
  EXPECT_EQ(verified[intact]["state"].get<std::string>(), "ok");

  EXPECT_EQ(OpenBounded(*client, found_by_verify), kNotFound);
  auto listed = ListByDigest(*client);
  for (const auto& digest : {found_by_open, found_by_verify}) {
    SCOPED_TRACE(digest == found_by_open ? "found by Open" : "found by Verify");
    ASSERT_EQ(listed.count(digest), 1u);
    EXPECT_EQ(listed[digest]["state"].get<std::string>(), "damaged");
    EXPECT_NE(listed[digest]["problem"].get<std::string>(), "");
    // What was at the blob's place is kept in quarantine/, not deleted.
    EXPECT_FALSE(Quarantined(store(), digest.substr(7)).empty())
        << "quarantine/ holds:\n" << Joined(QuarantineNames(store()));
  }
  EXPECT_EQ(listed[intact]["state"].get<std::string>(), "ok");
  EXPECT_EQ(client->Space()["damaged"].get<uint32_t>(), 2u);
  std::string bytes;
  EXPECT_EQ(client->TryOpen("", intact, &bytes), "");
  EXPECT_TRUE(bytes == intact_data);
  // Link targets outside the store are left alone.
  for (const auto& [target, contents] : targets_) EXPECT_TRUE(ReadFile(target) == contents) << target;

  // Storing the right bytes again repairs both.
  Store(*client, "", data1);
  Store(*client, "", data2);
  EXPECT_EQ(client->TryOpen("", found_by_open, &bytes), "");
  EXPECT_TRUE(bytes == data1);
  EXPECT_EQ(client->TryOpen("", found_by_verify, &bytes), "");
  EXPECT_TRUE(bytes == data2);
  EXPECT_EQ(StateOf(*client, found_by_open), "ok");
  EXPECT_EQ(StateOf(*client, found_by_verify), "ok");
}

INSTANTIATE_TEST_SUITE_P(Tampering, DamageTest,
                         ::testing::Values(Tamper::kFlipByte, Tamper::kTruncate, Tamper::kSymlink, Tamper::kFifo),
                         [](const ::testing::TestParamInfo<Tamper>& param) {
                           switch (param.param) {
                             case Tamper::kFlipByte: return std::string("FlippedByte");
                             case Tamper::kTruncate: return std::string("TruncatedTo100Bytes");
                             case Tamper::kSymlink: return std::string("ReplacedByASymlink");
                             case Tamper::kFifo: return std::string("ReplacedByAFifo");
                           }
                           return std::string("Unknown");
                         });

TEST_F(IntegrityTest, VerifyOfAnIntactStoreReportsEveryEntryOkAndRecordsWhen) {
  auto client = harness_.Connect();
  std::map<std::string, std::string> files;
  for (uint32_t i = 0; i < 4; ++i) {
    std::string data = RandomBytes(3000 + i * 1000, 50 + i);
    files[Store(*client, i % 2 ? kOriginA : "", data)] = data;
  }
  auto before = ListByDigest(*client);
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  auto results = client->Verify({});
  ASSERT_EQ(results.size(), files.size());
  for (auto& result : results) {
    const std::string digest = result["digest"].get<std::string>();
    SCOPED_TRACE(digest);
    ASSERT_EQ(files.count(digest), 1u);
    EXPECT_EQ(result["state"].get<std::string>(), "ok");
    EXPECT_EQ(result["problem"].get<std::string>(), "");
    EXPECT_EQ(result["size"].get<uint64_t>(), files[digest].size());
  }
  auto after = ListByDigest(*client);
  for (const auto& [digest, data] : files) {
    SCOPED_TRACE(digest);
    EXPECT_EQ(after[digest]["state"].get<std::string>(), "ok");
    EXPECT_GT(after[digest]["last-verified"].get<int64_t>(), before[digest]["last-verified"].get<int64_t>());
  }
}

TEST_F(IntegrityTest, VerifyOfADigestNotStoredReportsAbsent) {
  auto client = harness_.Connect();
  const std::string stored = Store(*client, "", "stored bytes");
  const std::string absent = DigestOf("never stored");
  auto verified = VerifyByDigest(*client, {absent, stored});
  ASSERT_EQ(verified.count(absent), 1u);
  EXPECT_EQ(verified[absent]["state"].get<std::string>(), "absent");
  EXPECT_EQ(verified[stored]["state"].get<std::string>(), "ok");
}

// ---------------------------------------------------------------------------
// 6. What is left in ingest/ at start: directories go to quarantine/ whole,
// links are unlinked without touching their targets.

TEST_F(IntegrityTest, AStrayDirectoryInIngestIsQuarantinedWithItsContents) {
  harness_.StopDaemon();
  const std::string stray = store() + "/ingest/stray-dir";
  fs::create_directories(stray + "/nested");
  WriteFile(stray + "/inside.bin", "kept, not deleted");
  WriteFile(stray + "/nested/deeper.bin", "also kept");
  const std::string outside = harness_.scratch("ingest-link-target");
  WriteFile(outside, "the target of a link left in ingest/");
  ASSERT_EQ(symlink(outside.c_str(), (store() + "/ingest/leftover.part").c_str()), 0);

  harness_.StartDaemon();
  EXPECT_TRUE(fs::is_empty(store() + "/ingest")) << "ingest/ holds:\n" << Joined(FilesBelow(store() + "/ingest"));
  std::vector<std::string> moved;
  for (const auto& path : Quarantined(store(), "stray-dir")) {
    if (IsRealDirectory(path)) moved.push_back(path);
  }
  ASSERT_EQ(moved.size(), 1u) << "quarantine/ holds:\n" << Joined(QuarantineNames(store()));
  EXPECT_EQ(ReadFile(moved[0] + "/inside.bin"), "kept, not deleted");
  EXPECT_EQ(ReadFile(moved[0] + "/nested/deeper.bin"), "also kept");
  EXPECT_EQ(ReadFile(outside), "the target of a link left in ingest/");
  auto client = harness_.Connect();
  const std::string data = RandomBytes(9000, 61);
  const std::string digest = Store(*client, "", data);
  std::string bytes;
  EXPECT_EQ(client->TryOpen("", digest, &bytes), "");
  EXPECT_TRUE(bytes == data);
}

// ---------------------------------------------------------------------------
// 7. Pins and Collect.

TEST_F(IntegrityTest, CollectDeletesUnpinnedFilesLeastRecentlyUsedFirstAndKeepsPinnedOnes) {
  auto client = harness_.Connect();
  const std::string oldest_data = RandomBytes(1000, 71), pinned_data = RandomBytes(2000, 72),
                    newest_data = RandomBytes(3000, 73);
  const std::string oldest = Store(*client, "", oldest_data);
  const std::string pinned = Store(*client, "", pinned_data);
  const std::string newest = Store(*client, "", newest_data);
  client->SetPinned(pinned, true);
  EXPECT_TRUE(ListByDigest(*client)[pinned]["pinned"].get<bool>());
  EXPECT_FALSE(ListByDigest(*client)[oldest]["pinned"].get<bool>());
  const uint64_t total = client->Space()["store-bytes"].get<uint64_t>();
  EXPECT_EQ(total, 6000u);

  // A dry run reports and deletes nothing.
  auto dry = client->Collect({{"target-size", sdbus::Variant(uint64_t{0})}, {"dry-run", sdbus::Variant(true)}});
  EXPECT_EQ(dry["files-deleted"].get<uint32_t>(), 2u);
  EXPECT_EQ(dry["bytes-freed"].get<uint64_t>(), 4000u);
  EXPECT_THAT(dry["digests"].get<std::vector<std::string>>(), ::testing::ElementsAre(oldest, newest));
  EXPECT_EQ(ListByDigest(*client).size(), 3u);
  for (const auto& digest : {oldest, pinned, newest}) {
    EXPECT_TRUE(fs::exists(BlobPathOf(store(), digest))) << digest;
  }
  EXPECT_EQ(client->Space()["store-bytes"].get<uint64_t>(), total);

  // Down to 5000 bytes: the least recently used unpinned file goes first.
  auto some = client->Collect({{"target-size", sdbus::Variant(uint64_t{5000})}});
  EXPECT_THAT(some["digests"].get<std::vector<std::string>>(), ::testing::ElementsAre(oldest));
  EXPECT_EQ(some["files-deleted"].get<uint32_t>(), 1u);
  EXPECT_EQ(some["bytes-freed"].get<uint64_t>(), oldest_data.size());
  EXPECT_EQ(some["store-bytes"].get<uint64_t>(), total - oldest_data.size());

  // Down to nothing: everything but the pinned file.
  auto all = client->Collect({{"target-size", sdbus::Variant(uint64_t{0})}});
  EXPECT_THAT(all["digests"].get<std::vector<std::string>>(), ::testing::ElementsAre(newest));
  EXPECT_EQ(all["bytes-freed"].get<uint64_t>(), newest_data.size());
  EXPECT_EQ(some["bytes-freed"].get<uint64_t>() + all["bytes-freed"].get<uint64_t>(),
            oldest_data.size() + newest_data.size());
  EXPECT_EQ(all["store-bytes"].get<uint64_t>(), pinned_data.size());
  EXPECT_EQ(client->Space()["store-bytes"].get<uint64_t>(), pinned_data.size());
  auto listed = ListByDigest(*client);
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed.begin()->first, pinned);
  EXPECT_FALSE(fs::exists(BlobPathOf(store(), oldest)));
  EXPECT_FALSE(fs::exists(BlobPathOf(store(), newest)));
  std::string bytes;
  EXPECT_EQ(client->TryOpen("", pinned, &bytes), "");
  EXPECT_TRUE(bytes == pinned_data);
  EXPECT_EQ(client->TryOpen("", oldest, nullptr), kNotFound);

  // Unpinned, it goes too.
  client->SetPinned(pinned, false);
  auto last = client->Collect({{"target-size", sdbus::Variant(uint64_t{0})}});
  EXPECT_THAT(last["digests"].get<std::vector<std::string>>(), ::testing::ElementsAre(pinned));
  EXPECT_EQ(last["bytes-freed"].get<uint64_t>(), pinned_data.size());
  EXPECT_EQ(last["store-bytes"].get<uint64_t>(), 0u);
  EXPECT_TRUE(ListByDigest(*client).empty());
}

TEST_F(IntegrityTest, PinningADigestNotStoredIsNotFound) {
  auto client = harness_.Connect();
  try {
    client->SetPinned(DigestOf("not stored"), true);
    ADD_FAILURE() << "SetPinned of a digest not stored succeeded";
  } catch (const sdbus::Error& e) {
    EXPECT_EQ(e.getName(), kNotFound);
  }
}

}  // namespace
}  // namespace costore::test
