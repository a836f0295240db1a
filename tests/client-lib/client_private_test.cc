// Private files through libcostore, C++ API and C ABI, against the real
// costored with a real gnome-keyring on a private bus (the integration
// tests' DaemonHarness and KeyringHarness): private store, open as a memfd
// and as a pipe, the info and list fields, visibility, KeyringStatus and
// Rekey, and the keyring gone.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <costore/costore.h>
#include <costore/costore.hpp>

#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tests/integration/daemon_harness.h"
#include "tests/integration/keyring_harness.h"

namespace costore::test {
namespace {

using client::Client;
using client::ErrorCode;

constexpr char kSite[] = "https://private.example";
constexpr char kOtherSite[] = "https://other.example";

// Every byte of `fd` from where it is, with read(2): pipes too.
std::string ReadAll(int fd) {
  std::string out;
  char buffer[65536];
  ssize_t n;
  while ((n = read(fd, buffer, sizeof buffer)) > 0) out.append(buffer, static_cast<size_t>(n));
  return out;
}

bool IsKnownCipher(const std::string& cipher) { return cipher == "aes-256-gcm" || cipher == "xchacha20-poly1305"; }

// Writes `bytes` to a new file under the harness's scratch directory.
std::string WriteScratch(const DaemonHarness& harness, const std::string& name, const std::string& bytes) {
  std::string path = harness.scratch(name);
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  close(fd);
  return path;
}

ErrorCode CodeOf(const std::function<void()>& call) {
  try {
    call();
  } catch (const client::Error& error) {
    return error.code();
  }
  ADD_FAILURE() << "the call did not fail";
  return ErrorCode::kFailed;
}

class ClientPrivateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // DaemonHarness points DBUS_SESSION_BUS_ADDRESS at its private bus, so
    // Client::Connect and the C handle find it.
    keyring_ = std::make_unique<KeyringHarness>(harness_.address(), harness_.scratch("keyring"));
    keyring_->Start();
    client_ = std::make_unique<Client>(Client::Connect());
  }

  DaemonHarness harness_;
  std::unique_ptr<KeyringHarness> keyring_;
  std::unique_ptr<Client> client_;
};

TEST_F(ClientPrivateTest, StorePrivatelyThenOpenAsMemfdAndAsPipe) {
  EXPECT_EQ(client_->GetKeyringStatus().state, "no-key");
  const std::string data = RandomBytes((3 << 20) + 17, 21);  // more than one chunk
  const std::string digest = DigestOf(data);
  const std::string path = WriteScratch(harness_, "data.bin", data);

  client::FileInfo info = client_->StorePath(path, digest, {.origin = kSite, .name = "data.bin", .is_private = true});
  EXPECT_TRUE(info.is_private);
  EXPECT_TRUE(IsKnownCipher(info.cipher)) << info.cipher;
  EXPECT_EQ(info.size, data.size());

  client::OpenedFile opened = client_->Open(digest, kSite);
  EXPECT_TRUE(opened.info.is_private);
  EXPECT_EQ(opened.info.cipher, info.cipher);
  EXPECT_TRUE(ReadAll(opened.fd.get()) == data);
  const int seals = fcntl(opened.fd.get(), F_GET_SEALS);
  EXPECT_EQ(seals & (F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL),
            F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL);
  EXPECT_NE(fcntl(opened.fd.get(), F_GETFD) & FD_CLOEXEC, 0);

  client::OpenedFile streamed = client_->Open(digest, kSite, {.stream = true});
  struct stat st {};
  ASSERT_EQ(fstat(streamed.fd.get(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  EXPECT_TRUE(ReadAll(streamed.fd.get()) == data);
  EXPECT_TRUE(streamed.info.is_private);

  // Everyone else: NotFound, like a miss.
  EXPECT_EQ(CodeOf([&] { client_->Open(digest, kOtherSite); }), ErrorCode::kNotFound);
  EXPECT_EQ(CodeOf([&] { client_->Open(digest); }), ErrorCode::kNotFound);

  // The manager's view: the owner, the cipher, and a public copy apart.
  std::vector<client::FileEntry> entries = client_->List();
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_TRUE(entries[0].is_private);
  EXPECT_EQ(entries[0].cipher, info.cipher);
  EXPECT_EQ(entries[0].owner_app, DaemonHarness::SelfApp());
  EXPECT_EQ(entries[0].owner_origin, kSite);
  client_->StorePath(path, digest, {.origin = kOtherSite});
  entries = client_->List(digest);
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_FALSE(entries[0].is_private);
  EXPECT_EQ(entries[0].cipher, "none");
  EXPECT_EQ(entries[0].owner_app, "");
  EXPECT_TRUE(entries[1].is_private);
  EXPECT_TRUE(client_->List(DigestOf("never stored")).empty());
  client::FileEntry stat = client_->Stat(digest);
  EXPECT_FALSE(stat.is_private);
  EXPECT_EQ(stat.entries, 2u);
  client::OpenedFile public_copy = client_->Open(digest, kOtherSite);
  EXPECT_FALSE(public_copy.info.is_private);
  EXPECT_EQ(public_copy.info.cipher, "none");

  client::KeyringStatus status = client_->GetKeyringStatus();
  EXPECT_EQ(status.state, "ready");
  EXPECT_TRUE(status.usable());
  EXPECT_EQ(status.private_files, 1u);
  EXPECT_EQ(status.key_version, 1u);
  EXPECT_FALSE(status.rekey_pending);
  EXPECT_EQ(status.cipher, info.cipher);
  EXPECT_GT(status.chunk_size, 0u);
  EXPECT_FALSE(status.message.empty());
}

TEST_F(ClientPrivateTest, RekeyThenEveryFileStillOpens) {
  client::RekeyResult nothing = client_->Rekey();
  EXPECT_EQ(nothing.key_version, 0u);  // no key yet: nothing to do
  EXPECT_EQ(nothing.files_rewrapped, 0u);

  const std::string a = RandomBytes(70000, 22), b = RandomBytes(90000, 23);
  client_->StoreStream(
      [&, done = false](std::span<std::byte> buffer) mutable -> size_t {
        if (done) return 0;
        done = true;
        std::memcpy(buffer.data(), a.data(), a.size());
        return a.size();
      },
      DigestOf(a), {.origin = kSite, .is_private = true});
  client_->StorePath(WriteScratch(harness_, "b.bin", b), DigestOf(b), {.is_private = true});

  client::RekeyResult result = client_->Rekey();
  EXPECT_EQ(result.files_rewrapped, 2u);
  EXPECT_EQ(result.key_version, 2u);
  EXPECT_FALSE(result.resumed);
  EXPECT_EQ(result.old_keys_removed, 1u);
  EXPECT_EQ(keyring_->MasterKeys().size(), 1u);
  EXPECT_TRUE(ReadAll(client_->Open(DigestOf(a), kSite).fd.get()) == a);
  EXPECT_TRUE(ReadAll(client_->Open(DigestOf(b)).fd.get()) == b);
  EXPECT_EQ(client_->GetKeyringStatus().key_version, 2u);
}

TEST_F(ClientPrivateTest, WithoutTheKeyringPrivateCallsAreKeyringUnavailable) {
  const std::string data = RandomBytes(5000, 24);
  const std::string digest = DigestOf(data);
  client_->StorePath(WriteScratch(harness_, "kept.bin", data), digest, {.is_private = true});
  keyring_->Stop();

  client::KeyringStatus status = client_->GetKeyringStatus();
  EXPECT_EQ(status.state, "no-service");
  EXPECT_FALSE(status.usable());
  EXPECT_EQ(status.private_files, 1u);
  try {
    client_->Open(digest);
    ADD_FAILURE() << "a private open without the keyring succeeded";
  } catch (const client::Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::kKeyringUnavailable);
    EXPECT_NE(std::string(error.what()).find("no Secret Service"), std::string::npos) << error.what();
  }
  const std::string other = RandomBytes(6000, 25);
  EXPECT_EQ(CodeOf([&] {
              client_->StorePath(WriteScratch(harness_, "other.bin", other), DigestOf(other), {.is_private = true});
            }),
            ErrorCode::kKeyringUnavailable);
  EXPECT_EQ(CodeOf([&] { client_->Rekey(); }), ErrorCode::kKeyringUnavailable);
  // Public files go on.
  client_->StorePath(harness_.scratch("other.bin"), DigestOf(other));
  EXPECT_TRUE(ReadAll(client_->Open(DigestOf(other)).fd.get()) == other);
}

// Verify and Collect with private entries: Verify names the owner of each
// private entry; Collect never deletes one, not even with --to 0, and
// pinning a digest pins its private entries too.
TEST_F(ClientPrivateTest, VerifyReportsPrivateEntriesAndCollectNeverDeletesThem) {
  const std::string data = RandomBytes(80000, 27);
  const std::string digest = DigestOf(data);
  const std::string path = WriteScratch(harness_, "both.bin", data);
  client_->StorePath(path, digest, {.origin = kSite, .is_private = true});
  client_->StorePath(path, digest, {.origin = kOtherSite});  // a public entry beside it

  std::vector<client::VerifyResult> results = client_->Verify({digest});
  ASSERT_EQ(results.size(), 2u);  // as List orders them: the public entry first
  EXPECT_FALSE(results[0].is_private);
  EXPECT_EQ(results[0].state, client::kStateOk);
  EXPECT_TRUE(results[1].is_private);
  EXPECT_EQ(results[1].state, client::kStateOk) << results[1].problem;
  EXPECT_EQ(results[1].owner_app, DaemonHarness::SelfApp());
  EXPECT_EQ(results[1].owner_origin, kSite);
  EXPECT_EQ(results[1].size, data.size());

  client_->SetPinned(digest, true);
  for (const client::FileEntry& entry : client_->List(digest)) EXPECT_TRUE(entry.pinned) << entry.is_private;
  EXPECT_EQ(client_->GetSpace().pinned, 2u);
  client_->SetPinned(digest, false);

  client::CollectResult collected = client_->Collect({.target_size = 0});
  EXPECT_EQ(collected.digests, std::vector<std::string>{digest});  // the public entry only
  std::vector<client::FileEntry> left = client_->List(digest);
  ASSERT_EQ(left.size(), 1u);
  EXPECT_TRUE(left[0].is_private);
  EXPECT_GT(collected.store_bytes, 0u);  // the sealed private file
  EXPECT_EQ(client_->GetSpace().store_bytes, collected.store_bytes);
  EXPECT_TRUE(ReadAll(client_->Open(digest, kSite).fd.get()) == data);
  EXPECT_EQ(client_->Collect({.unused_for_seconds = 0}).files_deleted, 0u);
  EXPECT_EQ(client_->List(digest).size(), 1u);
}

// The C ABI's private additions, from C++ (c_api_test.c covers strict C11
// without a keyring).
TEST_F(ClientPrivateTest, CInterface) {
  const std::string data = RandomBytes(40000, 26);
  const std::string digest = DigestOf(data);
  const std::string path = WriteScratch(harness_, "c.bin", data);
  costore_client* c = costore_client_new();
  ASSERT_NE(c, nullptr);

  costore_keyring_status* status = nullptr;
  ASSERT_EQ(costore_client_keyring_status(c, &status), COSTORE_OK) << costore_client_get_error_message(c);
  EXPECT_STREQ(status->state, "no-key");
  costore_keyring_status_free(status);

  costore_store_options* options = costore_store_options_new();
  ASSERT_EQ(costore_store_options_set_origin(options, kSite), COSTORE_OK);
  ASSERT_EQ(costore_store_options_set_private(options, true), COSTORE_OK);
  EXPECT_EQ(costore_store_options_set_private(nullptr, true), COSTORE_ERROR_INVALID_ARGUMENT);
  costore_file_info* info = nullptr;
  ASSERT_EQ(costore_client_store_path(c, path.c_str(), digest.c_str(), options, &info), COSTORE_OK)
      << costore_client_get_error_message(c);
  costore_store_options_free(options);
  EXPECT_TRUE(costore_file_info_is_private(info));
  const std::string cipher = costore_file_info_get_cipher(info);
  EXPECT_TRUE(IsKnownCipher(cipher)) << cipher;
  costore_file_info_free(info);

  for (unsigned flags : {0u, static_cast<unsigned>(COSTORE_OPEN_STREAM)}) {
    int fd = -1;
    info = nullptr;
    ASSERT_EQ(costore_client_open_with_flags(c, digest.c_str(), kSite, flags, &fd, &info), COSTORE_OK)
        << costore_client_get_error_message(c);
    struct stat st {};
    fstat(fd, &st);
    EXPECT_EQ(S_ISFIFO(st.st_mode), flags == COSTORE_OPEN_STREAM);
    EXPECT_TRUE(ReadAll(fd) == data);
    EXPECT_TRUE(costore_file_info_is_private(info));
    EXPECT_EQ(costore_file_info_get_cipher(info), cipher);
    costore_file_info_free(info);
    close(fd);
  }
  int fd = -1;
  EXPECT_EQ(costore_client_open_with_flags(c, digest.c_str(), kSite, 0x100, &fd, nullptr),
            COSTORE_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(fd, -1);
  EXPECT_EQ(costore_client_open(c, digest.c_str(), kOtherSite, &fd, nullptr), COSTORE_ERROR_NOT_FOUND);

  costore_file_entry** entries = nullptr;
  size_t count = 0;
  ASSERT_EQ(costore_client_list_digest(c, digest.c_str(), &entries, &count), COSTORE_OK);
  ASSERT_EQ(count, 1u);
  EXPECT_TRUE(entries[0]->is_private);
  EXPECT_EQ(costore_file_entry_get_cipher(entries[0]), cipher);
  EXPECT_EQ(std::string(costore_file_entry_get_owner_app(entries[0])), DaemonHarness::SelfApp());
  EXPECT_STREQ(costore_file_entry_get_owner_origin(entries[0]), kSite);
  costore_file_entry_array_free(entries);

  costore_rekey_result* rekey = nullptr;
  ASSERT_EQ(costore_client_rekey(c, &rekey), COSTORE_OK) << costore_client_get_error_message(c);
  EXPECT_EQ(rekey->files_rewrapped, 1u);
  EXPECT_EQ(rekey->key_version, 2u);
  EXPECT_FALSE(rekey->resumed);
  EXPECT_EQ(rekey->old_keys_removed, 1u);
  costore_rekey_result_free(rekey);
  ASSERT_EQ(costore_client_open_with_flags(c, digest.c_str(), kSite, 0, &fd, nullptr), COSTORE_OK);
  EXPECT_TRUE(ReadAll(fd) == data);
  close(fd);

  keyring_->Stop();
  ASSERT_EQ(costore_client_keyring_status(c, &status), COSTORE_OK);
  EXPECT_STREQ(status->state, "no-service");
  EXPECT_EQ(status->private_files, 1u);
  EXPECT_EQ(status->key_version, 2u);
  EXPECT_GT(std::strlen(status->message), 0u);
  costore_keyring_status_free(status);
  EXPECT_EQ(costore_client_open(c, digest.c_str(), kSite, &fd, nullptr), COSTORE_ERROR_KEYRING_UNAVAILABLE);
  EXPECT_EQ(costore_client_rekey(c, nullptr), COSTORE_ERROR_KEYRING_UNAVAILABLE);
  EXPECT_NE(std::string(costore_client_get_error_message(c)), "");
  costore_client_free(c);
}

}  // namespace
}  // namespace costore::test
