// Private files in the Engine: sealed at rest, opened as a sealed memfd or
// a pipe, visible only to their owner and explicit grantees, kept apart
// from public entries of the same digest, and the master key's life:
// created on first need, never replaced while files need it, rotated
// crash-safely. The keyring is an in-memory fake with injected failures.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <sqlite3.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <future>

#include "daemon/crypto/sealed_file.h"
#include "daemon/engine/engine.h"
#include "daemon/engine/private_files.h"
#include "tests/daemon/engine/engine_test_util.h"
#include "tests/daemon/engine/fake_key_store.h"
#include "tests/daemon/engine/test_util.h"

namespace costore {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

const Principal kOwner{"/usr/bin/owner", "https://owner.example"};
const Principal kOther{"/usr/bin/owner", "https://other.example"};
const Principal kThird{"/usr/bin/third", ""};
constexpr uint32_t kChunk = 4096;

struct Opened {
  Status status;
  std::string bytes;
  FileInfo info;
  bool is_pipe = false;
  int seals = 0;
};

class PrivateEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    signal(SIGPIPE, SIG_IGN);
    Reopen();
  }

  void Reopen(std::function<bool(uint32_t)> interrupt = nullptr) {
    engine_.reset();
    EngineOptions options;
    options.root = dir_.Join("store");
    options.key_store = &keyring_;
    options.chunk_size = kChunk;
    options.rekey_interrupt = std::move(interrupt);
    options.on_change = [this](const ChangeEvent& e) {
      std::lock_guard<std::mutex> lock(events_mu_);
      events_.push_back(e.what + " " + e.digest);
    };
    Status s = Engine::Open(options, &engine_);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  Status Store(const Principal& who, const std::string& bytes, bool is_private = true, FileInfo* info = nullptr,
               const std::string& name = "") {
    StoreRequest request;
    request.is_private = is_private;
    request.name = name;
    return test::StoreBytes(engine_.get(), who, bytes, request, info);
  }

  // Opens through OpenFileAsync, as the D-Bus front does.
  Opened Open(const Principal& who, const std::string& digest, bool stream = false) {
    std::promise<Opened> promise;
    auto future = promise.get_future();
    engine_->OpenFileAsync(who, digest, ":1.test", OpenOptions{stream},
                           [&promise](const Status& s, int fd, const FileInfo& info) {
                             Opened result{s, "", info, false, 0};
                             if (s.ok()) {
                               struct stat st {};
                               fstat(fd, &st);
                               result.is_pipe = S_ISFIFO(st.st_mode);
                               if (result.is_pipe) {
                                 char buf[65536];
                                 ssize_t n;
                                 while ((n = read(fd, buf, sizeof buf)) > 0) result.bytes.append(buf, n);
                               } else {
                                 result.seals = fcntl(fd, F_GET_SEALS);
                                 result.bytes = test::ReadFd(fd);
                               }
                               close(fd);
                             }
                             promise.set_value(std::move(result));
                           });
    return future.get();
  }

  std::vector<std::string> events() {
    std::lock_guard<std::mutex> lock(events_mu_);
    return events_;
  }

  std::string PrivatePath(const std::string& bytes, const Principal& owner) {
    const std::string hex = test::DigestText(bytes).substr(7);
    return dir_.Join("store/private/sha256/" + hex.substr(0, 2) + "/" + hex + "." + OwnerTag(owner));
  }

  test::TempDir dir_;
  test::FakeKeyStore keyring_;
  std::unique_ptr<Engine> engine_;
  std::mutex events_mu_;
  std::vector<std::string> events_;
};

// --- storing and opening -----------------------------------------------------------

TEST_F(PrivateEngineTest, StoredPrivatelyOpensAfterARestartAtEverySize) {
  for (size_t size : {size_t{0}, size_t{1}, size_t{kChunk - 1}, size_t{kChunk}, size_t{kChunk + 1},
                      size_t{25 * kChunk + 7}}) {
    SCOPED_TRACE("size " + std::to_string(size));
    const std::string data = test::RandomBytes(size, static_cast<uint32_t>(size) + 1);
    FileInfo info;
    ASSERT_TRUE(Store(kOwner, data, true, &info, "secret.gguf").ok());
    EXPECT_TRUE(info.is_private);
    EXPECT_EQ(info.cipher, CipherName(PreferredCipher()));
    EXPECT_EQ(info.size, size);

    // Sealed on disk, under private/, nothing under blobs/.
    const std::string path = PrivatePath(data, kOwner);
    ASSERT_TRUE(std::filesystem::exists(path));
    EXPECT_EQ(std::filesystem::file_size(path), sealed::SealedSize(size, kChunk));
    if (size >= 32) {
      EXPECT_EQ(test::ReadFile(path).find(data.substr(0, 32)), std::string::npos);
    }
  }
  EXPECT_TRUE(test::FilesBelow(dir_.Join("store/blobs")).empty());
  EXPECT_EQ(keyring_.saves.load(), 1);  // one master key, made on first need

  Reopen();
  for (size_t size : {size_t{0}, size_t{1}, size_t{kChunk - 1}, size_t{kChunk}, size_t{kChunk + 1},
                      size_t{25 * kChunk + 7}}) {
    const std::string data = test::RandomBytes(size, static_cast<uint32_t>(size) + 1);
    Opened opened = Open(kOwner, test::DigestText(data));
    ASSERT_TRUE(opened.status.ok()) << opened.status.ToString();
    EXPECT_TRUE(opened.bytes == data) << "size " << size;
    EXPECT_FALSE(opened.is_pipe);
    EXPECT_TRUE(opened.info.is_private);
    EXPECT_EQ(opened.seals & (F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL),
              F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL);
  }
}

TEST_F(PrivateEngineTest, TheMemfdCannotBeChanged) {
  const std::string data = test::RandomBytes(3 * kChunk, 2);
  ASSERT_TRUE(Store(kOwner, data).ok());
  int fd = -1;
  FileInfo info;
  ASSERT_TRUE(engine_->OpenFile(kOwner, test::DigestText(data), &fd, &info).ok());
  EXPECT_LT(pwrite(fd, "x", 1, 0), 0);
  EXPECT_LT(ftruncate(fd, 1), 0);
  EXPECT_LT(ftruncate(fd, 10 * kChunk), 0);
  EXPECT_LT(fcntl(fd, F_ADD_SEALS, 0), 0);  // F_SEAL_SEAL
  EXPECT_EQ(test::ReadFd(fd), data);
  close(fd);
}

TEST_F(PrivateEngineTest, StreamOptionGivesAPipeFilledAsTheCallerReads) {
  const std::string data = test::RandomBytes(3 << 20, 3);  // more than a pipe holds
  ASSERT_TRUE(Store(kOwner, data).ok());
  Opened opened = Open(kOwner, test::DigestText(data), /*stream=*/true);
  ASSERT_TRUE(opened.status.ok()) << opened.status.ToString();
  EXPECT_TRUE(opened.is_pipe);
  EXPECT_EQ(opened.info.size, data.size());
  EXPECT_TRUE(opened.bytes == data);
}

TEST_F(PrivateEngineTest, AReaderThatLeavesEarlyStopsTheStream) {
  const std::string data = test::RandomBytes(4 << 20, 4);
  ASSERT_TRUE(Store(kOwner, data).ok());
  std::promise<int> fd_promise;
  engine_->OpenFileAsync(kOwner, test::DigestText(data), ":1.test", OpenOptions{true},
                         [&](const Status& s, int fd, const FileInfo&) { fd_promise.set_value(s.ok() ? fd : -1); });
  int fd = fd_promise.get_future().get();
  ASSERT_GE(fd, 0);
  char buf[1000];
  ASSERT_GT(read(fd, buf, sizeof buf), 0);
  close(fd);
  Reopen();  // joins the pump, which must end on EPIPE rather than wait
  SUCCEED();
}

TEST_F(PrivateEngineTest, StoringTwiceKeepsOneEntryAndCountsBothStores) {
  const std::string data = test::RandomBytes(10000, 5);
  ASSERT_TRUE(Store(kOwner, data, true, nullptr, "").ok());
  ASSERT_TRUE(Store(kOwner, data, true, nullptr, "named.bin").ok());
  std::vector<FileRecord> files;
  ASSERT_TRUE(engine_->List(&files).ok());
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0].name, "named.bin");
  std::vector<UsageRecord> usage;
  ASSERT_TRUE(engine_->Usage(test::DigestText(data), &usage).ok());
  ASSERT_EQ(usage.size(), 1u);
  EXPECT_EQ(usage[0].stores, 2u);
  EXPECT_EQ(Open(kOwner, test::DigestText(data)).bytes, data);
}

TEST_F(PrivateEngineTest, AMismatchStoresNothing) {
  StoreRequest request;
  request.digest = test::DigestText("expected");
  request.source_fd = test::PipeFrom("arrived");
  request.is_private = true;
  FileInfo info;
  Status s = engine_->Store(kOwner, request, &info);
  close(request.source_fd);
  EXPECT_EQ(s.code(), Code::kDigestMismatch);
  EXPECT_THAT(s.message(), HasSubstr(test::DigestText("arrived")));
  EXPECT_TRUE(test::FilesBelow(dir_.Join("store/private")).empty());
  EXPECT_TRUE(test::FilesBelow(dir_.Join("store/ingest")).empty());
  std::vector<FileRecord> files;
  ASSERT_TRUE(engine_->List(&files).ok());
  EXPECT_TRUE(files.empty());
}

TEST_F(PrivateEngineTest, ChangedEventsDoNotNameAPrivateDigest) {
  ASSERT_TRUE(Store(kOwner, "private bytes").ok());
  ASSERT_TRUE(Store(kOwner, "public bytes", false).ok());
  EXPECT_THAT(events(), ElementsAre("stored *", "stored " + test::DigestText("public bytes")));
}

// --- who sees what -------------------------------------------------------------------

TEST_F(PrivateEngineTest, OthersGetNotFoundUnlessGrantedThatVeryDigest) {
  const std::string data = test::RandomBytes(5000, 6);
  const std::string digest = test::DigestText(data);
  ASSERT_TRUE(Store(kOwner, data).ok());

  Opened refused = Open(kOther, digest);
  Opened missing = Open(kOther, test::DigestText("nobody stored this"));
  ASSERT_EQ(refused.status.code(), Code::kNotFound);
  ASSERT_EQ(missing.status.code(), Code::kNotFound);
  std::string a = refused.status.message(), b = missing.status.message();
  a.replace(a.find(digest), digest.size(), "X");
  b.replace(b.find(test::DigestText("nobody stored this")), digest.size(), "X");
  EXPECT_EQ(a, b);

  // "*" does not reach private files.
  ASSERT_TRUE(engine_->Grant(kOther, "*").ok());
  EXPECT_EQ(Open(kOther, digest).status.code(), Code::kNotFound);
  // An explicit grant of the digest does.
  ASSERT_TRUE(engine_->Grant(kOther, digest).ok());
  Opened granted = Open(kOther, digest);
  ASSERT_TRUE(granted.status.ok()) << granted.status.ToString();
  EXPECT_EQ(granted.bytes, data);
  EXPECT_EQ(Open(kThird, digest).status.code(), Code::kNotFound);
  ASSERT_TRUE(engine_->Revoke(kOther, digest).ok());
  EXPECT_EQ(Open(kOther, digest).status.code(), Code::kNotFound);
  EXPECT_EQ(keyring_.prompts.load(), 0);
}

// Answers every consent question "allow always", and counts them.
class AllowingAgent : public ConsentAgent {
 public:
  std::atomic<int> asked{0};
  void Ask(const ConsentRequest& request, uint32_t, std::function<void(ConsentDecision)> done) override {
    ++asked;
    for (const FileRecord& file : request.files) EXPECT_FALSE(file.is_private);
    done(ConsentDecision::kAllowAlways);
  }
  void Cancel(const std::string&) override {}
};

TEST_F(PrivateEngineTest, PrivateFilesAreNeverPutToTheConsentAgent) {
  AllowingAgent agent;
  engine_->SetConsentAgent(&agent);
  const std::string data = test::RandomBytes(6000, 30);
  const std::string digest = test::DigestText(data);
  ASSERT_TRUE(Store(kOwner, data).ok());
  // Only a private entry: nobody is asked, the answer is NotFound.
  EXPECT_EQ(Open(kOther, digest).status.code(), Code::kNotFound);
  EXPECT_EQ(agent.asked.load(), 0);

  // A public copy appears: asking is for the public copy, and the "allow
  // always" grant it leaves opens the public copy only.
  ASSERT_TRUE(Store(kThird, data, /*is_private=*/false).ok());
  Opened opened = Open(kOther, digest);
  ASSERT_TRUE(opened.status.ok()) << opened.status.ToString();
  EXPECT_FALSE(opened.info.is_private);
  EXPECT_EQ(agent.asked.load(), 1);
  std::vector<GrantRecord> grants;
  ASSERT_TRUE(engine_->ListGrants(digest, &grants).ok());
  ASSERT_EQ(grants.size(), 1u);
  EXPECT_FALSE(grants[0].explicit_grant);  // so it never opens a private entry
  // The owner still gets its own private entry, unasked.
  Opened own = Open(kOwner, digest);
  ASSERT_TRUE(own.status.ok());
  EXPECT_TRUE(own.info.is_private);
  EXPECT_EQ(agent.asked.load(), 1);
  engine_->SetConsentAgent(nullptr);
}

TEST_F(PrivateEngineTest, PublicAndPrivateEntriesOfOneDigestNeverMix) {
  const std::string data = test::RandomBytes(9000, 7);
  const std::string digest = test::DigestText(data);
  ASSERT_TRUE(Store(kThird, data, /*is_private=*/false).ok());  // public
  ASSERT_TRUE(Store(kOwner, data, /*is_private=*/true).ok());   // private, same bytes

  std::vector<FileRecord> files;
  ASSERT_TRUE(engine_->List(&files).ok());
  ASSERT_EQ(files.size(), 2u);
  EXPECT_FALSE(files[0].is_private);
  EXPECT_EQ(files[0].stored_by, 1u);
  EXPECT_TRUE(files[0].cipher.empty());
  EXPECT_TRUE(files[1].is_private);
  EXPECT_EQ(files[1].owner, kOwner);
  EXPECT_EQ(files[1].cipher, CipherName(PreferredCipher()));

  // The public file's attribution never names the private storer.
  std::vector<UsageRecord> usage;
  ASSERT_TRUE(engine_->Usage(digest, &usage).ok());
  ASSERT_EQ(usage.size(), 1u);
  EXPECT_EQ(usage[0].principal, kThird);
  FileRecord stat;
  uint32_t entries = 0;
  ASSERT_TRUE(engine_->Stat(digest, &stat, &entries).ok());
  EXPECT_FALSE(stat.is_private);
  EXPECT_EQ(entries, 2u);

  // Each opens its own.
  Opened pub = Open(kThird, digest);
  ASSERT_TRUE(pub.status.ok());
  EXPECT_FALSE(pub.info.is_private);
  Opened priv = Open(kOwner, digest);
  ASSERT_TRUE(priv.status.ok());
  EXPECT_TRUE(priv.info.is_private);
  EXPECT_EQ(priv.bytes, data);
  // A "*" grant opens the public copy, and reading it does not show in
  // the private entry.
  ASSERT_TRUE(engine_->Grant(kOther, "*").ok());
  Opened other = Open(kOther, digest);
  ASSERT_TRUE(other.status.ok());
  EXPECT_FALSE(other.info.is_private);

  // The public copy is still readable by nobody-else's rules: a private
  // store never made it private, and it stays in blobs/.
  EXPECT_EQ(test::FilesBelow(dir_.Join("store/blobs")).size(), 1u);
  EXPECT_EQ(test::FilesBelow(dir_.Join("store/private")).size(), 1u);

  // Delete removes both entries.
  ASSERT_TRUE(engine_->Delete(digest).ok());
  ASSERT_TRUE(engine_->List(&files).ok());
  EXPECT_TRUE(files.empty());
  EXPECT_TRUE(test::FilesBelow(dir_.Join("store/blobs")).empty());
  EXPECT_TRUE(test::FilesBelow(dir_.Join("store/private")).empty());
}

TEST_F(PrivateEngineTest, TwoOwnersOfOneDigestGetTwoEntries) {
  const std::string data = test::RandomBytes(7000, 8);
  const std::string digest = test::DigestText(data);
  ASSERT_TRUE(Store(kOwner, data).ok());
  ASSERT_TRUE(Store(kOther, data).ok());
  EXPECT_EQ(test::FilesBelow(dir_.Join("store/private")).size(), 2u);
  EXPECT_NE(test::ReadFile(PrivatePath(data, kOwner)), test::ReadFile(PrivatePath(data, kOther)));
  std::vector<FileRecord> files;
  ASSERT_TRUE(engine_->List(&files, digest).ok());
  ASSERT_EQ(files.size(), 2u);
  EXPECT_EQ(Open(kOwner, digest).bytes, data);
  EXPECT_EQ(Open(kOther, digest).bytes, data);
  EXPECT_EQ(Open(kThird, digest).status.code(), Code::kNotFound);
}

TEST_F(PrivateEngineTest, ForgettingAnOriginRemovesItsPrivateFiles) {
  ASSERT_TRUE(Store(kOwner, "owner's private").ok());
  ASSERT_TRUE(Store(kOther, "other's private").ok());
  ForgetResult result;
  ASSERT_TRUE(engine_->ForgetOrigin(kOwner.origin, &result).ok());
  ASSERT_EQ(result.deleted_private.size(), 1u);
  std::vector<FileRecord> files;
  ASSERT_TRUE(engine_->List(&files).ok());
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0].owner, kOther);
  EXPECT_EQ(test::FilesBelow(dir_.Join("store/private")).size(), 1u);
}

// --- tampering -----------------------------------------------------------------------

TEST_F(PrivateEngineTest, ATamperedChunkFailsTheOpenNamingTheFile) {
  const std::string data = test::RandomBytes(5 * kChunk, 9);
  ASSERT_TRUE(Store(kOwner, data).ok());
  const std::string path = PrivatePath(data, kOwner);
  std::filesystem::permissions(path, std::filesystem::perms::owner_write, std::filesystem::perm_options::add);
  std::string sealed = test::ReadFile(path);
  sealed[sealed::kHeaderSize + 3 * (kChunk + sealed::kTagSize) + 100] ^= 1;  // chunk 4 of 5
  std::filesystem::remove(path);
  test::WriteFile(path, sealed);

  Opened opened = Open(kOwner, test::DigestText(data));
  EXPECT_EQ(opened.status.code(), Code::kIOError);
  EXPECT_THAT(opened.status.message(), HasSubstr("private file " + test::DigestText(data)));
  EXPECT_THAT(opened.status.message(), HasSubstr(path));
  EXPECT_THAT(opened.status.message(), HasSubstr("chunk 4 of 5 failed authentication"));
  EXPECT_TRUE(opened.bytes.empty());

  // Streaming: the first chunks go out, then the pipe ends early.
  Opened streamed = Open(kOwner, test::DigestText(data), /*stream=*/true);
  ASSERT_TRUE(streamed.status.ok());
  EXPECT_EQ(streamed.bytes, data.substr(0, 3 * kChunk));
}

TEST_F(PrivateEngineTest, ADamagedHeaderFailsBeforeAnyByte) {
  const std::string data = test::RandomBytes(2 * kChunk, 10);
  ASSERT_TRUE(Store(kOwner, data).ok());
  const std::string path = PrivatePath(data, kOwner);
  std::string sealed = test::ReadFile(path);
  sealed[20] ^= 1;  // a digest byte
  std::filesystem::permissions(path, std::filesystem::perms::owner_write, std::filesystem::perm_options::add);
  std::filesystem::remove(path);
  test::WriteFile(path, sealed);
  for (bool stream : {false, true}) {
    Opened opened = Open(kOwner, test::DigestText(data), stream);
    EXPECT_EQ(opened.status.code(), Code::kIOError);
    EXPECT_THAT(opened.status.message(), HasSubstr("is damaged"));
  }
}

// --- the keyring -----------------------------------------------------------------------

TEST_F(PrivateEngineTest, NoKeyringRefusesPrivateFilesOnlyAndReadsNoByte) {
  keyring_.state = KeyringState::kNoService;
  const std::string data = "private, but no keyring";
  StoreRequest request;
  request.digest = test::DigestText(data);
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  ASSERT_EQ(write(fds[1], data.data(), data.size()), static_cast<ssize_t>(data.size()));
  close(fds[1]);
  request.source_fd = fds[0];
  request.is_private = true;
  FileInfo info;
  Status s = engine_->Store(kOwner, request, &info);
  EXPECT_EQ(s.code(), Code::kKeyringUnavailable);
  char c;
  EXPECT_EQ(read(fds[0], &c, 1), 1);  // the source was left untouched
  close(fds[0]);
  EXPECT_TRUE(Store(kOwner, "public is fine", false).ok());
  EXPECT_TRUE(Open(kOwner, test::DigestText("public is fine")).status.ok());
  EXPECT_EQ(engine_->KeyringStatus().report.state, "no-service");
}

TEST_F(PrivateEngineTest, ALockedKeyringIsAskedToUnlock) {
  ASSERT_TRUE(Store(kOwner, "stored while unlocked").ok());
  keyring_.state = KeyringState::kLocked;
  EXPECT_EQ(engine_->KeyringStatus().report.state, "locked");
  EXPECT_EQ(keyring_.prompts.load(), 0);  // KeyringStatus only looks

  Opened opened = Open(kOwner, test::DigestText("stored while unlocked"));
  EXPECT_EQ(opened.status.code(), Code::kKeyringUnavailable);
  EXPECT_THAT(opened.status.message(), HasSubstr("locked"));
  EXPECT_EQ(keyring_.prompts.load(), 1);
  EXPECT_EQ(Store(kOwner, "stored while locked").code(), Code::kKeyringUnavailable);

  keyring_.unlock_succeeds = true;  // the user answers the prompt
  opened = Open(kOwner, test::DigestText("stored while unlocked"));
  ASSERT_TRUE(opened.status.ok()) << opened.status.ToString();
  EXPECT_EQ(opened.bytes, "stored while unlocked");
}

TEST_F(PrivateEngineTest, AMissingKeyIsNeverReplacedWhileFilesNeedIt) {
  ASSERT_TRUE(Store(kOwner, "needs the key").ok());
  ASSERT_TRUE(Store(kOther, "needs it too").ok());
  keyring_.Clear();  // the keyring was reset, or the item deleted

  Opened opened = Open(kOwner, test::DigestText("needs the key"));
  EXPECT_EQ(opened.status.code(), Code::kKeyringUnavailable);
  EXPECT_THAT(opened.status.message(), HasSubstr("missing from the keyring, and 2 private files are encrypted"));
  Status s = Store(kOwner, "a new private file");
  EXPECT_EQ(s.code(), Code::kKeyringUnavailable);
  EXPECT_THAT(s.message(), HasSubstr("will not make a new key"));
  EXPECT_EQ(keyring_.saves.load(), 1);
  EXPECT_TRUE(keyring_.Versions().empty());
  KeyringStatusInfo status = engine_->KeyringStatus();
  EXPECT_EQ(status.report.state, "key-missing");
  EXPECT_EQ(status.report.private_files, 2u);

  // Once the user gives the files up, a new key (a new version) is made.
  ASSERT_TRUE(engine_->Delete(test::DigestText("needs the key")).ok());
  ASSERT_TRUE(engine_->Delete(test::DigestText("needs it too")).ok());
  ASSERT_TRUE(Store(kOwner, "a new private file").ok());
  EXPECT_THAT(keyring_.Versions(), ElementsAre(2u));
  EXPECT_EQ(Open(kOwner, test::DigestText("a new private file")).bytes, "a new private file");
}

TEST_F(PrivateEngineTest, NoDefaultCollectionIsReportedWhenAKeyMustBeMade) {
  keyring_.fail_save = true;
  Status s = Store(kOwner, "first private file");
  EXPECT_EQ(s.code(), Code::kKeyringUnavailable);
  EXPECT_TRUE(test::FilesBelow(dir_.Join("store/private")).empty());
}

TEST_F(PrivateEngineTest, TheMasterKeyIsNowhereInTheStore) {
  ASSERT_TRUE(Store(kOwner, test::RandomBytes(50000, 11)).ok());
  ASSERT_TRUE(Store(kOther, test::RandomBytes(100, 12)).ok());
  engine_.reset();  // checkpoint the catalog
  auto keys = keyring_.Keys();
  ASSERT_EQ(keys.size(), 1u);
  const std::string raw(reinterpret_cast<const char*>(keys[0].data()), 32);
  for (const std::string& file : test::FilesBelow(dir_.Join("store"))) {
    EXPECT_EQ(test::ReadFile(dir_.Join("store/" + file)).find(raw), std::string::npos) << file;
  }
}

// --- rekey -------------------------------------------------------------------------------

TEST_F(PrivateEngineTest, RekeyRewrapsEveryKeyAndSurvivesAnInterruption) {
  std::vector<std::string> files;
  for (int i = 0; i < 5; ++i) {
    files.push_back(test::RandomBytes(3000 + i, 20 + i));
    ASSERT_TRUE(Store(i % 2 ? kOwner : kOther, files.back()).ok());
  }
  ASSERT_TRUE(Store(kThird, "public, untouched", false).ok());
  EXPECT_THAT(keyring_.Versions(), ElementsAre(1u));

  // Killed after two re-wraps.
  Reopen([](uint32_t n) { return n == 2; });
  RekeyResult result;
  Status s = engine_->Rekey(&result);
  EXPECT_EQ(s.code(), Code::kCancelled);
  EXPECT_THAT(keyring_.Versions(), ElementsAre(1u, 2u));  // the old key is kept

  // Every file opens in between, whichever key wraps it.
  Reopen();
  EXPECT_TRUE(engine_->KeyringStatus().report.rekey_pending);
  for (int i = 0; i < 5; ++i) {
    Opened opened = Open(i % 2 ? kOwner : kOther, test::DigestText(files[i]));
    ASSERT_TRUE(opened.status.ok()) << opened.status.ToString();
    EXPECT_EQ(opened.bytes, files[i]);
  }
  // A store meanwhile goes under the new key.
  ASSERT_TRUE(Store(kThird, "stored mid-rekey").ok());

  // The rerun finishes it.
  ASSERT_TRUE(engine_->Rekey(&result).ok());
  EXPECT_TRUE(result.resumed);
  EXPECT_EQ(result.rewrapped, 3u);
  EXPECT_EQ(result.key_version, 2u);
  EXPECT_EQ(result.old_keys_removed, 1u);
  EXPECT_THAT(keyring_.Versions(), ElementsAre(2u));
  KeyringStatusInfo status = engine_->KeyringStatus();
  EXPECT_EQ(status.report.state, "ready");
  EXPECT_EQ(status.report.key_version, 2u);
  EXPECT_FALSE(status.report.rekey_pending);

  Reopen();
  for (int i = 0; i < 5; ++i) EXPECT_EQ(Open(i % 2 ? kOwner : kOther, test::DigestText(files[i])).bytes, files[i]);
  EXPECT_EQ(Open(kThird, test::DigestText("stored mid-rekey")).bytes, "stored mid-rekey");

  // And again, uninterrupted.
  ASSERT_TRUE(engine_->Rekey(&result).ok());
  EXPECT_FALSE(result.resumed);
  EXPECT_EQ(result.rewrapped, 6u);
  EXPECT_THAT(keyring_.Versions(), ElementsAre(3u));
  EXPECT_EQ(Open(kOwner, test::DigestText(files[1])).bytes, files[1]);
}

TEST_F(PrivateEngineTest, RekeyWithNoKeyDoesNothing) {
  RekeyResult result;
  ASSERT_TRUE(engine_->Rekey(&result).ok());
  EXPECT_EQ(result.key_version, 0u);
  EXPECT_EQ(result.rewrapped, 0u);
  EXPECT_EQ(keyring_.saves.load(), 0);
  EXPECT_EQ(engine_->KeyringStatus().report.state, "no-key");
}

TEST_F(PrivateEngineTest, RekeyNeedsTheKeyring) {
  ASSERT_TRUE(Store(kOwner, "x").ok());
  keyring_.state = KeyringState::kLocked;
  RekeyResult result;
  EXPECT_EQ(engine_->Rekey(&result).code(), Code::kKeyringUnavailable);
  EXPECT_THAT(keyring_.Versions(), ElementsAre(1u));
}

// --- exceptions ---------------------------------------------------------------------------------

TEST_F(PrivateEngineTest, AThrowOnAWorkerIsAnIOErrorAndTheEngineGoesOn) {
  const std::string data = "sealed before the fault";
  ASSERT_TRUE(Store(kOwner, data).ok());
  Reopen();  // no key cached: the next open asks the keyring, on a worker
  keyring_.throw_in_lookup = true;
  Opened opened = Open(kOwner, test::DigestText(data));
  EXPECT_EQ(opened.status.code(), Code::kIOError) << opened.status.ToString();
  EXPECT_THAT(opened.status.message(), HasSubstr("the cipher library threw"));
  Status stored = Store(kOwner, "stored during the fault");
  EXPECT_EQ(stored.code(), Code::kIOError) << stored.ToString();
  // Still serving, and the fault gone, everything works again.
  keyring_.throw_in_lookup = false;
  EXPECT_EQ(Open(kOwner, test::DigestText(data)).bytes, data);
  EXPECT_TRUE(Store(kOwner, "after the fault").ok());
}

// --- crashes ---------------------------------------------------------------------------------

TEST_F(PrivateEngineTest, OrphansAreReconciledAtStart) {
  const std::string kept = "kept private";
  const std::string lost = "record lost";
  ASSERT_TRUE(Store(kOwner, kept).ok());
  ASSERT_TRUE(Store(kOwner, lost).ok());
  engine_.reset();
  // Bytes with no record: a crash between publishing and recording.
  const std::string stray = PrivatePath("never recorded", kOther);
  std::filesystem::create_directories(std::filesystem::path(stray).parent_path());
  test::WriteFile(stray, "sealed bytes nobody can read");
  // A record with no bytes.
  std::filesystem::remove(PrivatePath(lost, kOwner));
  Reopen();
  // Unrecorded sealed bytes cannot be re-indexed (their key was in the
  // catalog): kept in quarantine/, never deleted.
  EXPECT_FALSE(std::filesystem::exists(stray));
  EXPECT_EQ(test::FilesBelow(dir_.Join("store/quarantine")).size(), 1u);
  // A record without bytes is kept, marked damaged, and never served.
  std::vector<FileRecord> files;
  ASSERT_TRUE(engine_->List(&files).ok());
  ASSERT_EQ(files.size(), 2u);
  int damaged = 0;
  for (const FileRecord& file : files) damaged += file.damaged() ? 1 : 0;
  EXPECT_EQ(damaged, 1);
  EXPECT_EQ(Open(kOwner, test::DigestText(kept)).bytes, kept);
  EXPECT_EQ(Open(kOwner, test::DigestText(lost)).status.code(), Code::kNotFound);
  // Storing the bytes again repairs it.
  ASSERT_TRUE(Store(kOwner, lost).ok());
  EXPECT_EQ(Open(kOwner, test::DigestText(lost)).bytes, lost);
}

// Runs `sql` on the catalog at `path`, as another process would.
void RunSql(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* error = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
  std::string message = error ? error : "";
  sqlite3_free(error);
  sqlite3_close(db);
  ASSERT_EQ(rc, SQLITE_OK) << message;
}

TEST_F(PrivateEngineTest, PrivateFilesStoredUnderAnOldSpellingStayReadableAfterTheMigration) {
  const std::string renamed = "stored as https://Owner.example:443";
  const std::string twice = "stored under two spellings";
  ASSERT_TRUE(Store(kOwner, renamed).ok());
  ASSERT_TRUE(Store(kOther, twice, true, nullptr, "first").ok());
  engine_.reset();
  // The store as schema 4 left it: kOwner's files stored as
  // "https://Owner.example:443", and `twice` stored by kOther both as
  // itself and, a moment later, as "https://other.example:0443". Each
  // sealed file is named by the spelling it was stored under.
  const Principal spelled{kOwner.app, "https://Owner.example:443"};
  const Principal other_spelled{kOther.app, "https://other.example:0443"};
  std::filesystem::rename(PrivatePath(renamed, kOwner), PrivatePath(renamed, spelled));
  std::filesystem::copy_file(PrivatePath(twice, kOther), PrivatePath(twice, other_spelled));
  const std::string catalog = dir_.Join("store/catalog.db");
  RunSql(catalog,
         "UPDATE principals SET origin = 'https://Owner.example:443' WHERE origin = 'https://owner.example';"
         "INSERT INTO principals(app, origin) VALUES('" + kOther.app + "', 'https://other.example:0443');"
         "INSERT INTO private_files(digest, owner, size, name, first_stored, cipher, chunk_size, key_version,"
         "  wrapped_key) SELECT digest, (SELECT id FROM principals WHERE origin = 'https://other.example:0443'),"
         "  size, 'second', first_stored + 1, cipher, chunk_size, key_version, wrapped_key FROM private_files"
         "  WHERE name = 'first';"
         "ALTER TABLE private_files DROP COLUMN named_for_origin;"
         "ALTER TABLE usage DROP COLUMN name;"
         "ALTER TABLE usage DROP COLUMN first_stored;"
         "PRAGMA user_version = 4;");
  Reopen();

  // Readable by the site in any spelling, from the file its old spelling named.
  EXPECT_EQ(Open(kOwner, test::DigestText(renamed)).bytes, renamed);
  EXPECT_EQ(Open({kOwner.app, "HTTPS://OWNER.EXAMPLE"}, test::DigestText(renamed)).bytes, renamed);
  EXPECT_TRUE(std::filesystem::exists(PrivatePath(renamed, spelled)));
  // Of the two entries of one principal, the first stored stays; the
  // other's sealed file is kept in quarantine/, not deleted.
  Opened opened = Open(kOther, test::DigestText(twice));
  EXPECT_EQ(opened.bytes, twice);
  EXPECT_EQ(opened.info.name, "first");
  EXPECT_FALSE(std::filesystem::exists(PrivatePath(twice, other_spelled)));
  EXPECT_EQ(test::FilesBelow(dir_.Join("store/quarantine")).size(), 1u);
  std::vector<FileRecord> files;
  ASSERT_TRUE(engine_->List(&files).ok());
  EXPECT_EQ(files.size(), 2u);
  for (const FileRecord& file : files) EXPECT_FALSE(file.damaged()) << file.digest.ToString();

  // Forgetting the site removes the file under its old name.
  ForgetResult forgotten;
  ASSERT_TRUE(engine_->ForgetOrigin("https://owner.example", &forgotten).ok());
  EXPECT_EQ(forgotten.deleted_private.size(), 1u);
  EXPECT_FALSE(std::filesystem::exists(PrivatePath(renamed, spelled)));
}

}  // namespace
}  // namespace costore
