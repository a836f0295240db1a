// Private files through the real daemon, with the real gnome-keyring on the
// private bus: encrypted at rest, the master key only in the keyring, the
// keyring's states told apart, visibility, and a rekey killed midway.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "tests/integration/daemon_harness.h"
#include "tests/integration/keyring_harness.h"

namespace costore::test {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kNotFound[] = "io.github.costore.Error.NotFound";
constexpr char kKeyring[] = "io.github.costore.Error.KeyringUnavailable";
constexpr char kIOError[] = "io.github.costore.Error.IOError";
constexpr char kSite[] = "https://private.example";
constexpr char kOtherSite[] = "https://other.example";

Dict Private() { return {{"private", sdbus::Variant(true)}}; }

struct Opened {
  std::string error;    // D-Bus error name, "" on success
  std::string message;  // its message
  std::string bytes;
  Dict info;
  bool is_pipe = false;
  int seals = 0;
  bool write_failed = false;
};

Opened OpenWith(BusClient& client, const std::string& origin, const std::string& digest, bool stream = false) {
  Opened result;
  try {
    Dict options;
    if (stream) options["stream"] = sdbus::Variant(true);
    auto [fd, info] = client.Open(origin, digest, options);
    result.info = info;
    struct stat st {};
    fstat(fd.get(), &st);
    result.is_pipe = S_ISFIFO(st.st_mode);
    if (result.is_pipe) {
      char buf[65536];
      ssize_t n;
      while ((n = read(fd.get(), buf, sizeof buf)) > 0) result.bytes.append(buf, static_cast<size_t>(n));
    } else {
      result.seals = fcntl(fd.get(), F_GET_SEALS);
      result.write_failed = pwrite(fd.get(), "x", 1, 0) < 0;
      result.bytes = ReadFd(fd.get());
    }
  } catch (const sdbus::Error& e) {
    result.error = e.getName();
    result.message = e.getMessage();
  }
  return result;
}

class PrivateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    keyring_ = std::make_unique<KeyringHarness>(harness_.address(), harness_.scratch("keyring"));
    keyring_->Start();
    client_ = harness_.Connect();
  }

  std::string StorePrivately(const std::string& origin, const std::string& bytes, std::string* error_message = nullptr,
                             Dict* info = nullptr) {
    return client_->TryStore(origin, DigestOf(bytes), PipeFrom(bytes), Private(), info, error_message);
  }

  // Every byte of every file under the store directory.
  std::string AllStoreBytes() {
    std::string all;
    for (const std::string& file : FilesBelow(harness_.store_dir())) {
      all += ReadFile(harness_.store_dir() + "/" + file);
      all += '\n';
    }
    return all;
  }

  DaemonHarness harness_;
  std::unique_ptr<KeyringHarness> keyring_;
  std::unique_ptr<BusClient> client_;
};

TEST_F(PrivateTest, StoredPrivatelyOpensAfterARestartAndTheKeyIsOnlyInTheKeyring) {
  const std::string model = ReadFile(ModelPath("silero_vad.onnx"));
  ASSERT_FALSE(model.empty());
  const std::string digest = DigestOf(model);
  int fd = open(ModelPath("silero_vad.onnx").c_str(), O_RDONLY | O_CLOEXEC);
  Dict info;
  Dict options = Private();
  options["name"] = sdbus::Variant(std::string("silero_vad.onnx"));
  ASSERT_EQ(client_->TryStore(kSite, digest, fd, options, &info), "");
  close(fd);
  EXPECT_TRUE(info["private"].get<bool>());
  EXPECT_EQ(info["cipher"].get<std::string>(), "aes-256-gcm");  // this CPU has AES-NI
  EXPECT_EQ(info["size"].get<uint64_t>(), model.size());

  // Restart the daemon: the key comes from the keyring again.
  harness_.StopDaemon();
  harness_.StartDaemon();
  client_ = harness_.Connect();
  Opened opened = OpenWith(*client_, kSite, digest);
  ASSERT_EQ(opened.error, "") << opened.message;
  EXPECT_TRUE(opened.bytes == model);
  EXPECT_FALSE(opened.is_pipe);
  EXPECT_EQ(opened.seals & (F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL),
            F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL);
  EXPECT_TRUE(opened.write_failed);
  EXPECT_TRUE(opened.info["private"].get<bool>());

  Opened streamed = OpenWith(*client_, kSite, digest, /*stream=*/true);
  ASSERT_EQ(streamed.error, "") << streamed.message;
  EXPECT_TRUE(streamed.is_pipe);
  EXPECT_TRUE(streamed.bytes == model);

  // The key is in the keyring, found by secret-tool ...
  const std::string search = keyring_->SecretToolSearch();
  EXPECT_THAT(search, HasSubstr("attribute.version = 1"));
  EXPECT_THAT(search, HasSubstr("label = costore master key"));
  auto keys = keyring_->MasterKeys();
  ASSERT_EQ(keys.size(), 1u);
  ASSERT_EQ(keys[0].second.size(), 64u);
  const std::string raw = HexToBytes(keys[0].second);
  // ... and nowhere under the store directory, in no form; nor in the log.
  harness_.StopDaemon();  // so that the catalog's WAL is checkpointed too
  const std::string everything = AllStoreBytes();
  EXPECT_GT(everything.size(), model.size());
  EXPECT_EQ(everything.find(raw), std::string::npos);
  EXPECT_EQ(everything.find(keys[0].second), std::string::npos);
  EXPECT_EQ(everything.find(model.substr(1000, 64)), std::string::npos);  // nor the plaintext
  EXPECT_THAT(harness_.DaemonLog(), Not(HasSubstr(keys[0].second)));
  // Public files are untouched by any of this: nothing under blobs/.
  for (const std::string& file : FilesBelow(harness_.store_dir())) {
    EXPECT_EQ(file.rfind("blobs/", 0), std::string::npos) << file;
  }
}

TEST_F(PrivateTest, NoKeyringMeansKeyringUnavailableForPrivateFilesOnly) {
  keyring_->Stop();
  std::string message;
  EXPECT_EQ(StorePrivately(kSite, "no keyring here", &message), kKeyring);
  EXPECT_THAT(message, HasSubstr("no Secret Service"));
  EXPECT_THAT(message, HasSubstr("gnome-keyring-daemon"));
  // Public files go on.
  const std::string data = RandomBytes(10000, 1);
  ASSERT_EQ(client_->TryStore(kSite, DigestOf(data), PipeFrom(data), {}), "");
  std::string bytes;
  ASSERT_EQ(client_->TryOpen(kSite, DigestOf(data), &bytes), "");
  EXPECT_EQ(bytes, data);
  Dict status = client_->KeyringStatus();
  EXPECT_EQ(status["state"].get<std::string>(), "no-service");
}

TEST_F(PrivateTest, ALockedKeyringIsADistinctClearError) {
  const std::string data = RandomBytes(200000, 2);
  ASSERT_EQ(StorePrivately(kSite, data), "");
  EXPECT_EQ(client_->KeyringStatus()["state"].get<std::string>(), "ready");

  keyring_->LockDefaultCollection();
  Dict status = client_->KeyringStatus();
  EXPECT_EQ(status["state"].get<std::string>(), "locked");

  // The daemon asks the keyring to unlock; no prompt can show on this bus,
  // so it stays locked, as when the user dismisses the prompt.
  Opened opened = OpenWith(*client_, kSite, DigestOf(data));
  EXPECT_EQ(opened.error, kKeyring);
  EXPECT_THAT(opened.message, HasSubstr("locked"));
  EXPECT_THAT(opened.message, HasSubstr("Unlock it"));
  EXPECT_THAT(opened.message, Not(HasSubstr("no Secret Service")));
  std::string message;
  EXPECT_EQ(StorePrivately(kSite, "stored while locked", &message), kKeyring);
  EXPECT_THAT(message, HasSubstr("locked"));
  // Public files go on.
  ASSERT_EQ(client_->TryStore(kSite, DigestOf("public"), PipeFrom("public"), {}), "");

  // Unlocked again (the keyring restarted with the login password), the
  // file opens.
  keyring_->Stop();
  keyring_->Start();
  opened = OpenWith(*client_, kSite, DigestOf(data));
  ASSERT_EQ(opened.error, "") << opened.message;
  EXPECT_TRUE(opened.bytes == data);
}

TEST_F(PrivateTest, OthersGetNotFoundUntilTheUserGrantsThatDigest) {
  const std::string data = RandomBytes(30000, 3);
  const std::string digest = DigestOf(data);
  ASSERT_EQ(StorePrivately(kSite, data), "");

  Opened refused = OpenWith(*client_, kOtherSite, digest);
  Opened absent = OpenWith(*client_, kOtherSite, DigestOf("never stored"));
  ASSERT_EQ(refused.error, kNotFound);
  ASSERT_EQ(absent.error, kNotFound);
  auto without = [](std::string message, const std::string& d) { return message.replace(message.find(d), d.size(), "<d>"); };
  EXPECT_EQ(without(refused.message, digest), without(absent.message, DigestOf("never stored")));
  EXPECT_EQ(OpenWith(*client_, "", digest).error, kNotFound);

  // "*" does not reach private files.
  client_->Grant(DaemonHarness::SelfApp(), kOtherSite, "*");
  EXPECT_EQ(OpenWith(*client_, kOtherSite, digest).error, kNotFound);
  // A grant of that digest does.
  client_->Grant(DaemonHarness::SelfApp(), kOtherSite, digest);
  Opened granted = OpenWith(*client_, kOtherSite, digest);
  ASSERT_EQ(granted.error, "") << granted.message;
  EXPECT_TRUE(granted.bytes == data);

  auto files = client_->List({});
  ASSERT_EQ(files.size(), 1u);
  EXPECT_TRUE(files[0]["private"].get<bool>());
  EXPECT_EQ(files[0]["cipher"].get<std::string>(), "aes-256-gcm");
  EXPECT_EQ(files[0]["owner-origin"].get<std::string>(), kSite);
  EXPECT_EQ(files[0]["owner-app"].get<std::string>(), DaemonHarness::SelfApp());
  auto grants = client_->ListGrants({{"digest", sdbus::Variant(digest)}});
  ASSERT_EQ(grants.size(), 2u);
  EXPECT_TRUE(grants[1]["explicit"].get<bool>());
}

TEST_F(PrivateTest, APublicCopyNeverTellsWhoStoredItPrivately) {
  const std::string data = RandomBytes(40000, 4);
  const std::string digest = DigestOf(data);
  ASSERT_EQ(StorePrivately(kSite, data), "");
  ASSERT_EQ(client_->TryStore(kOtherSite, digest, PipeFrom(data), {}), "");

  auto usage = client_->Usage(digest);
  ASSERT_EQ(usage.size(), 1u);
  EXPECT_EQ(usage[0]["origin"].get<std::string>(), kOtherSite);
  Dict stat = client_->Stat(digest);
  EXPECT_FALSE(stat["private"].get<bool>());
  EXPECT_EQ(stat["cipher"].get<std::string>(), "none");
  EXPECT_EQ(stat["stored-by"].get<uint32_t>(), 1u);
  EXPECT_EQ(stat["entries"].get<uint32_t>(), 2u);
  auto entries = client_->List({{"digest", sdbus::Variant(digest)}});
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_FALSE(entries[0]["private"].get<bool>());
  EXPECT_TRUE(entries[1]["private"].get<bool>());

  Opened mine = OpenWith(*client_, kSite, digest);
  ASSERT_EQ(mine.error, "") << mine.message;
  EXPECT_TRUE(mine.info["private"].get<bool>());
  Opened theirs = OpenWith(*client_, kOtherSite, digest);
  ASSERT_EQ(theirs.error, "") << theirs.message;
  EXPECT_FALSE(theirs.info["private"].get<bool>());
  EXPECT_EQ(theirs.info["cipher"].get<std::string>(), "none");
}

TEST_F(PrivateTest, AMissingKeyIsReportedAndNeverSilentlyReplaced) {
  ASSERT_EQ(StorePrivately(kSite, "needs its key"), "");
  keyring_->ClearMasterKeys();
  Opened opened = OpenWith(*client_, kSite, DigestOf("needs its key"));
  EXPECT_EQ(opened.error, kKeyring);
  EXPECT_THAT(opened.message, HasSubstr("missing from the keyring, and 1 private file is encrypted under it"));
  std::string message;
  EXPECT_EQ(StorePrivately(kSite, "a new one", &message), kKeyring);
  EXPECT_THAT(message, HasSubstr("will not make a new key"));
  EXPECT_TRUE(keyring_->MasterKeys().empty());
  Dict status = client_->KeyringStatus();
  EXPECT_EQ(status["state"].get<std::string>(), "key-missing");
  EXPECT_EQ(status["private-files"].get<uint32_t>(), 1u);
}

TEST_F(PrivateTest, ATamperedFileFailsItsOpenNamingIt) {
  const std::string data = RandomBytes(3 << 20, 5);
  const std::string digest = DigestOf(data);
  ASSERT_EQ(StorePrivately(kSite, data), "");
  std::string path;
  for (const std::string& file : FilesBelow(harness_.store_dir())) {
    if (file.rfind("private/", 0) == 0) path = harness_.store_dir() + "/" + file;
  }
  ASSERT_FALSE(path.empty());
  std::filesystem::permissions(path, std::filesystem::perms::owner_write, std::filesystem::perm_options::add);
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  const off_t offset = 48 + (1 << 20) + 16 + 12345;  // inside chunk 2 of 3
  char byte = ReadFile(path)[offset];
  byte ^= 1;
  ASSERT_EQ(pwrite(fd, &byte, 1, offset), 1);
  close(fd);
  Opened opened = OpenWith(*client_, kSite, digest);
  EXPECT_EQ(opened.error, kIOError);
  EXPECT_THAT(opened.message, HasSubstr("private file " + digest));
  EXPECT_THAT(opened.message, HasSubstr("chunk 2 of 3 failed authentication"));
}

TEST_F(PrivateTest, RekeyKilledMidwayCompletesOnTheRerun) {
  std::vector<std::string> files;
  for (int i = 0; i < 5; ++i) {
    files.push_back(RandomBytes(50000 + i, 10 + i));
    ASSERT_EQ(StorePrivately(i % 2 ? kSite : kOtherSite, files.back()), "");
  }
  auto before = keyring_->MasterKeys();
  ASSERT_EQ(before.size(), 1u);

  // A daemon that dies (SIGKILL) after re-wrapping two data keys.
  harness_.StopDaemon();
  setenv("COSTORE_TEST_REKEY_KILL_AFTER", "2", 1);
  harness_.StartDaemon();
  unsetenv("COSTORE_TEST_REKEY_KILL_AFTER");
  client_ = harness_.Connect();
  const pid_t pid = harness_.daemon_pid();
  EXPECT_THROW(client_->Rekey({}), sdbus::Error);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  harness_.StopDaemon();  // forget the dead one

  // Both keys are kept, and every file opens in between.
  auto middle = keyring_->MasterKeys();
  ASSERT_EQ(middle.size(), 2u);
  EXPECT_EQ(middle[0].first, "1");
  EXPECT_EQ(middle[1].first, "2");
  EXPECT_EQ(middle[0].second, before[0].second);
  harness_.StartDaemon();
  client_ = harness_.Connect();
  EXPECT_TRUE(client_->KeyringStatus()["rekey-pending"].get<bool>());
  for (int i = 0; i < 5; ++i) {
    Opened opened = OpenWith(*client_, i % 2 ? kSite : kOtherSite, DigestOf(files[i]));
    ASSERT_EQ(opened.error, "") << opened.message;
    EXPECT_TRUE(opened.bytes == files[i]);
  }

  // The rerun finishes it and drops the old key.
  Dict result = client_->Rekey({});
  EXPECT_TRUE(result["resumed"].get<bool>());
  EXPECT_EQ(result["files-rewrapped"].get<uint32_t>(), 3u);
  EXPECT_EQ(result["key-version"].get<uint32_t>(), 2u);
  EXPECT_EQ(result["old-keys-removed"].get<uint32_t>(), 1u);
  auto after = keyring_->MasterKeys();
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[0].first, "2");
  Dict keyring_status = client_->KeyringStatus();
  EXPECT_EQ(keyring_status["state"].get<std::string>(), "ready");
  EXPECT_FALSE(keyring_status["rekey-pending"].get<bool>());

  harness_.StopDaemon();
  harness_.StartDaemon();
  client_ = harness_.Connect();
  for (int i = 0; i < 5; ++i) {
    Opened opened = OpenWith(*client_, i % 2 ? kSite : kOtherSite, DigestOf(files[i]));
    ASSERT_EQ(opened.error, "") << opened.message;
    EXPECT_TRUE(opened.bytes == files[i]);
  }
  harness_.StopDaemon();
  const std::string everything = AllStoreBytes();
  EXPECT_EQ(everything.find(HexToBytes(after[0].second)), std::string::npos);
  EXPECT_EQ(everything.find(HexToBytes(before[0].second)), std::string::npos);
}

}  // namespace
}  // namespace costore::test
