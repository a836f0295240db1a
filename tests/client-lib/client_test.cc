// client_test: the C++ API of libcostore against the real costored. Run
// through tests/support/with-costored (one daemon for the whole program, so
// every test uses origins and data of its own).
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iterator>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <costore/costore.hpp>

#include "client_test_support.h"

namespace {

using namespace costore::client_test;  // Client, Error, ErrorCode and the helpers
using costore::client::StoreOptions;

constexpr const char* kModelDigest = "sha256:1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3";
constexpr const char* kModelHex = "1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3";
constexpr uint64_t kModelSize = 2327524;
constexpr const char* kEmptyDigest = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

std::string ModelPath() {
  const char* source_dir = std::getenv("COSTORE_SOURCE_DIR");
  if (!source_dir) return {};
  return std::string(source_dir) + "/../shared/data/models/silero_vad.onnx";
}

std::vector<std::byte> ReadPath(const std::string& path) {
  costore::client::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  return fd ? ReadAll(fd.get()) : std::vector<std::byte>{};
}

std::string SelfExecutable() {
  char path[PATH_MAX];
  ssize_t length = ::readlink("/proc/self/exe", path, sizeof path - 1);
  return length < 0 ? std::string() : std::string(path, static_cast<size_t>(length));
}

// A ReadCallback serving `data` at most `chunk` bytes at a time.
struct ChunkedReader {
  const std::vector<std::byte>& data;
  size_t chunk;
  size_t offset = 0;
  size_t operator()(std::span<std::byte> buffer) {
    size_t n = std::min({buffer.size(), chunk, data.size() - offset});
    std::memcpy(buffer.data(), data.data() + offset, n);
    offset += n;
    return n;
  }
};

struct ProgressLog {
  std::vector<std::pair<uint64_t, uint64_t>> calls;
  costore::client::ProgressCallback Callback() {
    return [this](uint64_t done, uint64_t total) { calls.emplace_back(done, total); };
  }
  bool Monotonic() const {
    return std::is_sorted(calls.begin(), calls.end(),
                          [](const auto& a, const auto& b) { return a.first < b.first; });
  }
};

class ClientTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ASSERT_NE(std::getenv("DBUS_SESSION_BUS_ADDRESS"), nullptr) << "run me through tests/support/with-costored";
    model_path_ = ModelPath();
    model_ = ReadPath(model_path_);
    ASSERT_EQ(model_.size(), kModelSize) << "the model file " << model_path_
                                         << " is missing or has the wrong size (set COSTORE_SOURCE_DIR)";
  }

  Client client_ = Client::Connect();
  static inline std::string model_path_;
  static inline std::vector<std::byte> model_;
};

TEST(NormalizeDigest, AcceptsTheUsualSpellings) {
  EXPECT_EQ(costore::client::NormalizeDigest(kModelHex), kModelDigest);
  EXPECT_EQ(costore::client::NormalizeDigest("SHA256:1A153A22F4509E292A94E67D6F9B85E8DEB25B4988682B7E174C65279D8788E3"),
            kModelDigest);
  EXPECT_EQ(costore::client::NormalizeDigest(std::string("sha256-") + kModelHex), kModelDigest);
  EXPECT_EQ(costore::client::NormalizeDigest(std::string("  ") + kModelDigest + "\n"), kModelDigest);
}

TEST(NormalizeDigest, RejectsOthersWithAReason) {
  for (const char* bad : {"", "   ", "sha256:", "1a15", "md5:d41d8cd98f00b204e9800998ecf8427e",
                          "sha512:1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3",
                          "1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3aa",
                          "zz153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3"}) {
    Error error = ErrorOf([&] { costore::client::NormalizeDigest(bad); });
    EXPECT_EQ(error.code(), ErrorCode::kInvalidArgument) << bad;
    EXPECT_NE(std::string(error.what()).find("invalid digest"), std::string::npos) << error.what();
  }
}

TEST(ErrorCodeName, NamesEveryCode) {
  EXPECT_EQ(costore::client::ErrorCodeName(ErrorCode::kNotFound), "NotFound");
  EXPECT_EQ(costore::client::ErrorCodeName(ErrorCode::kQuotaExceeded), "QuotaExceeded");
  EXPECT_EQ(costore::client::ErrorCodeName(ErrorCode::kUnreachable), "Unreachable");
  EXPECT_FALSE(costore::client::LibraryVersion().empty());
}

TEST(Connect, NoBusIsUnreachable) {
  std::string saved = std::getenv("DBUS_SESSION_BUS_ADDRESS");
  ::setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/costore-test-bus", 1);
  Error error = ErrorOf([] { Client::Connect(); });
  ::setenv("DBUS_SESSION_BUS_ADDRESS", saved.c_str(), 1);
  EXPECT_EQ(error.code(), ErrorCode::kUnreachable);
  EXPECT_NE(std::string(error.what()).find("session bus"), std::string::npos) << error.what();
}

TEST_F(ClientTest, StorePathThenOpenReturnsTheSameBytes) {
  ProgressLog progress;
  StoreOptions options;
  options.origin = "https://roundtrip.example";
  options.name = "snakers4/silero-vad/silero_vad.onnx";
  options.progress = progress.Callback();
  auto info = client_.StorePath(model_path_, kModelHex, options);
  EXPECT_EQ(info.digest, kModelDigest);
  EXPECT_EQ(info.size, kModelSize);
  EXPECT_FALSE(info.name.empty());
  EXPECT_GT(info.first_stored_usec, 0);

  ASSERT_FALSE(progress.calls.empty());
  EXPECT_TRUE(progress.Monotonic());
  EXPECT_EQ(progress.calls.back(), std::make_pair(kModelSize, kModelSize));

  auto opened = client_.Open(kModelDigest, "https://roundtrip.example");
  EXPECT_EQ(opened.info.digest, kModelDigest);
  EXPECT_EQ(opened.info.size, kModelSize);
  EXPECT_EQ(opened.info.name, info.name);
  EXPECT_EQ(opened.info.first_stored_usec, info.first_stored_usec);
  EXPECT_TRUE(ReadAll(opened.fd.get()) == model_);
}

TEST_F(ClientTest, OpenedDescriptorIsReadOnlyMappableAndCloseOnExec) {
  client_.StorePath(model_path_, kModelDigest, {.origin = "https://mmap.example"});
  auto opened = client_.Open(kModelDigest, "https://mmap.example");
  int fd = opened.fd.get();
  EXPECT_NE(::fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);
  EXPECT_LT(::write(fd, "x", 1), 0);
  void* map = ::mmap(nullptr, kModelSize, PROT_READ, MAP_SHARED, fd, 0);
  ASSERT_NE(map, MAP_FAILED) << std::strerror(errno);
  EXPECT_EQ(std::memcmp(map, model_.data(), kModelSize), 0);
  ::munmap(map, kModelSize);
}

TEST_F(ClientTest, AnotherOriginGetsNotFoundLikeAMissUntilGranted) {
  const std::string self = SelfExecutable();
  client_.StorePath(model_path_, kModelDigest, {.origin = "https://owner.example"});

  Error refused = ErrorOf([&] { client_.Open(kModelDigest, "https://other.example"); });
  EXPECT_EQ(refused.code(), ErrorCode::kNotFound);
  const std::string zeros(64, '0');
  Error missing = ErrorOf([&] { client_.Open("sha256:" + zeros, "https://other.example"); });
  EXPECT_EQ(missing.code(), ErrorCode::kNotFound);
  std::string missing_text = missing.what();
  for (size_t at = missing_text.find(zeros); at != std::string::npos; at = missing_text.find(zeros, at))
    missing_text.replace(at, zeros.size(), kModelHex);
  EXPECT_EQ(std::string(refused.what()), missing_text);

  client_.Grant(self, "https://other.example", kModelDigest);
  client_.Grant(self, "https://other.example", kModelDigest);  // twice is fine
  EXPECT_TRUE(ReadAll(client_.Open(kModelDigest, "https://other.example").fd.get()) == model_);

  auto grants = client_.ListGrants(kModelDigest);
  EXPECT_TRUE(std::any_of(grants.begin(), grants.end(), [&](const auto& grant) {
    return grant.app == self && grant.origin == "https://other.example" && grant.digest == kModelDigest &&
           grant.created_usec > 0;
  }));

  client_.Revoke(self, "https://other.example", kModelDigest);
  EXPECT_EQ(ErrorOf([&] { client_.Open(kModelDigest, "https://other.example"); }).code(), ErrorCode::kNotFound);
  EXPECT_EQ(ErrorOf([&] { client_.Revoke(self, "https://other.example", kModelDigest); }).code(),
            ErrorCode::kNotFound);
}

TEST_F(ClientTest, GrantForEveryFile) {
  const std::string self = SelfExecutable();
  auto data = Bytes(4096, 7);
  std::string digest = Sha256(data);
  client_.StorePath(WriteScratch("every-file.bin", data), digest, {.origin = "https://maker.example"});
  EXPECT_EQ(ErrorOf([&] { client_.Open(digest, "https://everything.example"); }).code(), ErrorCode::kNotFound);

  client_.Grant(self, "https://everything.example", "*");
  EXPECT_TRUE(ReadAll(client_.Open(digest, "https://everything.example").fd.get()) == data);
  auto grants = client_.ListGrants(digest);  // "*" grants name every file
  EXPECT_TRUE(std::any_of(grants.begin(), grants.end(), [&](const auto& grant) {
    return grant.origin == "https://everything.example" && grant.digest == "*";
  }));
  auto all = client_.ListGrants();
  EXPECT_GE(all.size(), grants.size());
  client_.Revoke(self, "https://everything.example", "*");
  EXPECT_EQ(ErrorOf([&] { client_.Open(digest, "https://everything.example"); }).code(), ErrorCode::kNotFound);
}

TEST_F(ClientTest, DigestMismatchStoresNothingAndNamesWhatArrived) {
  auto data = Bytes(100000, 11);
  std::string actual = Sha256(data);
  std::string claimed = Sha256(Bytes(100000, 12));
  std::string path = WriteScratch("mismatch.bin", data);

  Error error = ErrorOf([&] { client_.StorePath(path, claimed); });
  EXPECT_EQ(error.code(), ErrorCode::kDigestMismatch);
  EXPECT_NE(std::string(error.what()).find(actual), std::string::npos) << error.what();
  EXPECT_NE(std::string(error.what()).find("100000"), std::string::npos) << error.what();

  for (const std::string& digest : {actual, claimed})
    EXPECT_EQ(ErrorOf([&] { client_.Stat(digest); }).code(), ErrorCode::kNotFound);
  for (const auto& entry : client_.List()) {
    EXPECT_NE(entry.digest, actual);
    EXPECT_NE(entry.digest, claimed);
  }
}

TEST_F(ClientTest, WrongExpectedSizeIsAMismatch) {
  auto data = Bytes(5000, 13);
  std::string digest = Sha256(data);
  std::string path = WriteScratch("size.bin", data);
  EXPECT_EQ(ErrorOf([&] { client_.StorePath(path, digest, {.size = 4999}); }).code(), ErrorCode::kDigestMismatch);
  EXPECT_EQ(ErrorOf([&] { client_.StorePath(path, digest, {.size = 5001}); }).code(), ErrorCode::kDigestMismatch);
  EXPECT_EQ(ErrorOf([&] { client_.Stat(digest); }).code(), ErrorCode::kNotFound);
}

TEST_F(ClientTest, StreamStoreFromACallback) {
  auto data = Bytes((3 << 20) + 123, 21);
  std::string digest = Sha256(data);
  for (bool size_known : {false, true}) {
    ChunkedReader reader{data, 77777};
    ProgressLog progress;
    StoreOptions options{.origin = "https://stream.example", .name = "stream.bin"};
    if (size_known) options.size = data.size();
    options.progress = progress.Callback();
    auto info = client_.StoreStream(std::ref(reader), digest, options);
    EXPECT_EQ(info.digest, digest);
    EXPECT_EQ(info.size, data.size());
    ASSERT_FALSE(progress.calls.empty());
    EXPECT_TRUE(progress.Monotonic());
    EXPECT_EQ(progress.calls.back().first, data.size());
    EXPECT_EQ(progress.calls.front().second, size_known ? data.size() : costore::client::kUnknownSize);
  }
  EXPECT_TRUE(ReadAll(client_.Open(digest, "https://stream.example").fd.get()) == data);
}

TEST_F(ClientTest, StreamLongerThanTheExpectedSizeIsAMismatch) {
  auto data = Bytes(3 << 20, 22);
  ChunkedReader reader{data, 1 << 20};
  // The daemon stops reading one byte past the size; the library must not
  // hang feeding a pipe that nobody reads any more.
  Error error = ErrorOf([&] { client_.StoreStream(std::ref(reader), Sha256(data), {.size = 1000}); });
  EXPECT_EQ(error.code(), ErrorCode::kDigestMismatch);
}

TEST_F(ClientTest, ExceptionFromTheStreamCallbackAbandonsTheStore) {
  auto data = Bytes(4 << 20, 23);
  std::string digest = Sha256(data);
  size_t given = 0;
  auto reader = [&](std::span<std::byte> buffer) -> size_t {
    if (given >= (1 << 20)) throw std::runtime_error("source went away");
    size_t n = std::min(buffer.size(), data.size() - given);
    std::memcpy(buffer.data(), data.data() + given, n);
    given += n;
    return n;
  };
  try {
    client_.StoreStream(reader, digest);
    ADD_FAILURE() << "StoreStream did not throw";
  } catch (const std::runtime_error& error) {
    EXPECT_STREQ(error.what(), "source went away");
  }
  EXPECT_EQ(ErrorOf([&] { client_.Stat(digest); }).code(), ErrorCode::kNotFound);
}

TEST_F(ClientTest, StoreFdFollowsTheSharedOffsetAndLeavesTheFdOpen) {
  costore::client::UniqueFd fd(::open(model_path_.c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(fd);
  // Start part-way: the daemon reads from the current position, so the
  // digest must be that of the tail.
  constexpr off_t kSkip = 1000;
  ASSERT_EQ(::lseek(fd.get(), kSkip, SEEK_SET), kSkip);
  std::vector<std::byte> tail(model_.begin() + kSkip, model_.end());
  ProgressLog progress;
  auto info = client_.StoreFd(fd.get(), Sha256(tail), {.progress = progress.Callback()});
  EXPECT_EQ(info.size, tail.size());
  EXPECT_EQ(::lseek(fd.get(), 0, SEEK_CUR), static_cast<off_t>(kModelSize));  // read with read(2)
  ASSERT_FALSE(progress.calls.empty());
  EXPECT_EQ(progress.calls.front().second, tail.size());  // total from the file, before the answer
  EXPECT_EQ(progress.calls.back(), std::make_pair(uint64_t{tail.size()}, uint64_t{tail.size()}));
  EXPECT_TRUE(progress.Monotonic());
}

TEST_F(ClientTest, StoreFdFromAPipe) {
  auto data = Bytes(1 << 20, 31);
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  costore::client::UniqueFd read_end(fds[0]);
  std::thread writer([&, write_end = costore::client::UniqueFd(fds[1])] {
    const std::byte* at = data.data();
    size_t left = data.size();
    while (left > 0) {
      ssize_t written = ::write(write_end.get(), at, left);
      if (written <= 0) break;
      at += written;
      left -= static_cast<size_t>(written);
    }
  });
  auto info = client_.StoreFd(read_end.get(), Sha256(data));
  writer.join();
  EXPECT_EQ(info.size, data.size());
}

TEST_F(ClientTest, EmptyFile) {
  std::string path = WriteScratch("empty.bin", {});
  auto info = client_.StorePath(path, kEmptyDigest, {.origin = "https://empty.example"});
  EXPECT_EQ(info.size, 0u);
  auto opened = client_.Open(kEmptyDigest, "https://empty.example");
  EXPECT_TRUE(ReadAll(opened.fd.get()).empty());
}

TEST_F(ClientTest, ConcurrentStoresThroughOneClient) {
  constexpr int kThreads = 4;
  std::vector<std::vector<std::byte>> blobs;
  for (int i = 0; i < kThreads; ++i) blobs.push_back(Bytes((1 << 20) + static_cast<size_t>(i), 40 + i));
  std::vector<std::string> failures(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      try {
        ChunkedReader reader{blobs[i], 65536};
        auto info = client_.StoreStream(std::ref(reader), Sha256(blobs[i]), {.origin = "https://concurrent.example"});
        if (info.size != blobs[i].size()) failures[i] = "wrong size";
        auto opened = client_.Open(Sha256(blobs[i]), "https://concurrent.example");
        if (ReadAll(opened.fd.get()) != blobs[i]) failures[i] = "bytes differ";
      } catch (const std::exception& error) {
        failures[i] = error.what();
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (int i = 0; i < kThreads; ++i) EXPECT_EQ(failures[i], "") << "thread " << i;
}

TEST_F(ClientTest, ListStatUsageAndDelete) {
  const std::string self = SelfExecutable();
  auto data = Bytes(65536, 51);
  std::string digest = Sha256(data);
  std::string path = WriteScratch("manager.bin", data);
  client_.StorePath(path, digest, {.origin = "https://one.example", .name = "first name"});
  client_.StorePath(path, digest, {.origin = "https://two.example", .name = "second name"});
  client_.Open(digest, "https://one.example");
  client_.Open(digest, "https://one.example");
  client_.Grant(self, "https://reader.example", digest);
  client_.Open(digest, "https://reader.example");

  auto files = client_.List();
  EXPECT_TRUE(std::is_sorted(files.begin(), files.end(),
                             [](const auto& a, const auto& b) { return a.digest < b.digest; }));
  auto listed = std::find_if(files.begin(), files.end(), [&](const auto& entry) { return entry.digest == digest; });
  ASSERT_NE(listed, files.end());

  auto entry = client_.Stat(digest.substr(7));  // bare hex is fine
  EXPECT_EQ(entry.digest, digest);
  EXPECT_EQ(entry.size, data.size());
  EXPECT_EQ(entry.name, "first name");  // the first name given is kept
  EXPECT_FALSE(entry.is_private);
  EXPECT_EQ(entry.stored_by, 2u);
  EXPECT_EQ(entry.used_by, 3u);
  EXPECT_GT(entry.first_stored_usec, 0);
  EXPECT_GE(entry.last_used_usec, entry.first_stored_usec);
  EXPECT_EQ(listed->stored_by, entry.stored_by);
  EXPECT_EQ(listed->used_by, entry.used_by);

  auto usage = client_.Usage(digest);
  ASSERT_EQ(usage.size(), 3u);
  EXPECT_EQ(usage[0].origin, "https://one.example");  // first stored first
  for (const auto& principal : usage) {
    EXPECT_EQ(principal.app, self);
    EXPECT_GT(principal.first_used_usec, 0);
    EXPECT_GE(principal.last_used_usec, principal.first_used_usec);
    if (principal.origin == "https://one.example") {
      EXPECT_TRUE(principal.stored);
      EXPECT_EQ(principal.stores, 1u);
      EXPECT_EQ(principal.reads, 2u);
    } else if (principal.origin == "https://two.example") {
      EXPECT_TRUE(principal.stored);
      EXPECT_EQ(principal.stores, 1u);
      EXPECT_EQ(principal.reads, 0u);
    } else {
      EXPECT_EQ(principal.origin, "https://reader.example");
      EXPECT_FALSE(principal.stored);
      EXPECT_EQ(principal.reads, 1u);
    }
  }

  // Deleting keeps handed-out descriptors readable, drops grants, and
  // leaves a miss worded like a refusal.
  auto still_open = client_.Open(digest, "https://one.example");
  Error refused = ErrorOf([&] { client_.Open(digest, "https://stranger.example"); });
  client_.Delete(digest);
  EXPECT_TRUE(ReadAll(still_open.fd.get()) == data);
  EXPECT_EQ(ErrorOf([&] { client_.Stat(digest); }).code(), ErrorCode::kNotFound);
  Error gone = ErrorOf([&] { client_.Open(digest, "https://one.example"); });
  EXPECT_EQ(gone.code(), ErrorCode::kNotFound);
  EXPECT_STREQ(gone.what(), refused.what());
  EXPECT_TRUE(client_.ListGrants(digest).empty());
  EXPECT_EQ(ErrorOf([&] { client_.Delete(digest); }).code(), ErrorCode::kNotFound);
  EXPECT_EQ(ErrorOf([&] { client_.Usage(digest); }).code(), ErrorCode::kNotFound);
}

TEST_F(ClientTest, InvalidArguments) {
  const std::string self = SelfExecutable();
  // Caught by the library before any call.
  for (auto call : std::vector<std::function<void()>>{
           [&] { client_.StorePath(model_path_, "sha256:nope"); },
           [&] { client_.Open("nope"); },
           [&] { client_.Stat(""); },
           [&] { client_.Delete("sha1:da39a3ee5e6b4b0d3255bfef95601890afd80709"); },
           [&] { client_.Grant(self, "", "**"); },
           [&] { client_.Usage("12345"); },
           [&] { client_.ListGrants("xyz"); },
       }) {
    EXPECT_EQ(ErrorOf(call).code(), ErrorCode::kInvalidArgument);
  }
  // Caught by the daemon, which names the argument.
  Error origin = ErrorOf([&] { client_.Open(kModelDigest, "https://Upper.Case/path"); });
  EXPECT_EQ(origin.code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(std::string(origin.what()).find("origin"), std::string::npos) << origin.what();
  EXPECT_EQ(ErrorOf([&] { client_.Grant("relative/app", "", "*"); }).code(), ErrorCode::kInvalidArgument);
  Error name = ErrorOf([&] { client_.StorePath(model_path_, kModelDigest, {.name = "bad\nname"}); });
  EXPECT_EQ(name.code(), ErrorCode::kInvalidArgument);
  // A stream the daemon refuses (perhaps before reading a byte): the
  // library must stop feeding the pipe rather than block on it.
  auto big = Bytes(4 << 20, 61);
  ChunkedReader reader{big, 1 << 20};
  EXPECT_EQ(ErrorOf([&] { client_.StoreStream(std::ref(reader), Sha256(big), {.origin = "not an origin"}); }).code(),
            ErrorCode::kInvalidArgument);
  // A grant for one file needs the file.
  EXPECT_EQ(ErrorOf([&] { client_.Grant(self, "", "sha256:" + std::string(64, 'f')); }).code(), ErrorCode::kNotFound);
  // Local problems.
  EXPECT_EQ(ErrorOf([&] { client_.StorePath("/nonexistent/x.onnx", kModelDigest); }).code(), ErrorCode::kIOError);
  EXPECT_EQ(ErrorOf([&] { client_.StoreFd(-1, kModelDigest); }).code(), ErrorCode::kInvalidArgument);
}

TEST_F(ClientTest, ForgetOriginRemovesItsGrantsRecordsAndFilesOnlyItStored) {
  const std::string self = SelfExecutable();
  const std::string forgotten = "https://forget-me.example";
  auto only_data = Bytes(40000, 71);
  auto shared_data = Bytes(40000, 72);
  auto granted_data = Bytes(40000, 73);
  std::string only = Sha256(only_data), shared = Sha256(shared_data), granted = Sha256(granted_data);
  client_.StorePath(WriteScratch("only.bin", only_data), only, {.origin = forgotten});
  client_.StorePath(WriteScratch("shared.bin", shared_data), shared, {.origin = forgotten});
  client_.StorePath(WriteScratch("shared.bin", shared_data), shared, {.origin = "https://keeps.example"});
  client_.StorePath(WriteScratch("granted.bin", granted_data), granted, {.origin = "https://keeps.example"});
  client_.Grant(self, forgotten, granted);
  client_.Open(granted, forgotten);

  costore::client::ForgetResult result = client_.ForgetOrigin(forgotten);
  EXPECT_EQ(result.grants_removed, 1u);
  EXPECT_EQ(result.files_deleted, 1u);
  EXPECT_GE(result.claims_removed, 2u);  // its claim on `shared` and its read of `granted`

  EXPECT_EQ(ErrorOf([&] { client_.Stat(only); }).code(), ErrorCode::kNotFound);
  EXPECT_EQ(client_.Stat(shared).stored_by, 1u);
  EXPECT_TRUE(client_.ListGrants(granted).empty());
  for (const auto& digest : {shared, granted}) {
    for (const auto& principal : client_.Usage(digest)) EXPECT_NE(principal.origin, forgotten) << digest;
  }

  // Nothing left: not an error.
  result = client_.ForgetOrigin(forgotten);
  EXPECT_EQ(result.grants_removed + result.claims_removed + result.files_deleted, 0u);
  EXPECT_EQ(ErrorOf([&] { client_.ForgetOrigin(""); }).code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(ErrorOf([&] { client_.ForgetOrigin("https://Not An Origin"); }).code(), ErrorCode::kInvalidArgument);
  client_.Delete(shared);
  client_.Delete(granted);
}

TEST_F(ClientTest, SettingsRoundTrip) {
  using costore::client::kSettingConsentPolicy;
  using costore::client::kSettingConsentTimeout;
  using costore::client::kSettingPromptsPerHour;
  costore::client::Settings settings = client_.GetSettings();
  EXPECT_EQ(settings.consent_policy, "ask");
  EXPECT_EQ(settings.consent_timeout_s, 60u);
  EXPECT_EQ(settings.prompts_per_hour, 10u);

  client_.SetSetting(kSettingConsentPolicy, "deny");
  client_.SetSetting(kSettingConsentTimeout, 5u);
  client_.SetSetting(kSettingPromptsPerHour, 0u);
  settings = client_.GetSettings();
  EXPECT_EQ(settings.consent_policy, "deny");
  EXPECT_EQ(settings.consent_timeout_s, 5u);
  EXPECT_EQ(settings.prompts_per_hour, 0u);

  Error bad_policy = ErrorOf([&] { client_.SetSetting(kSettingConsentPolicy, "maybe"); });
  EXPECT_EQ(bad_policy.code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(std::string(bad_policy.what()).find("consent-policy"), std::string::npos) << bad_policy.what();
  EXPECT_EQ(ErrorOf([&] { client_.SetSetting(kSettingConsentTimeout, 3601u); }).code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(ErrorOf([&] { client_.SetSetting(kSettingConsentTimeout, "60"); }).code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(ErrorOf([&] { client_.SetSetting(kSettingConsentPolicy, 1u); }).code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(ErrorOf([&] { client_.SetSetting("colour", "blue"); }).code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(client_.GetSettings().consent_timeout_s, 5u);  // refusals change nothing

  client_.SetSetting(kSettingConsentPolicy, "ask");
  client_.SetSetting(kSettingConsentTimeout, 60u);
  client_.SetSetting(kSettingPromptsPerHour, 10u);
  EXPECT_EQ(client_.GetSettings().consent_policy, "ask");
}

TEST_F(ClientTest, ClientIsMovable) {
  Client moved = std::move(client_);
  EXPECT_NO_THROW(moved.List());
  client_ = std::move(moved);
  EXPECT_NO_THROW(client_.List());
}

// with-costored starts no keyring: private calls are KeyringUnavailable and
// say why, KeyringStatus says so, and public files carry cipher "none".
// (client_private_test covers private files with a real keyring.)
TEST_F(ClientTest, PrivateFilesWithoutAKeyring) {
  costore::client::KeyringStatus status = client_.GetKeyringStatus();
  EXPECT_EQ(status.state, "no-service");
  EXPECT_FALSE(status.usable());
  EXPECT_NE(status.message.find("Secret Service"), std::string::npos) << status.message;
  EXPECT_FALSE(status.cipher.empty());
  EXPECT_GT(status.chunk_size, 0u);

  Error error = ErrorOf([&] {
    client_.StorePath(model_path_, kModelDigest, {.origin = "https://private.example", .is_private = true});
  });
  EXPECT_EQ(error.code(), ErrorCode::kKeyringUnavailable);
  EXPECT_NE(std::string(error.what()).find("Secret Service"), std::string::npos) << error.what();
  // No master key was ever made: a rekey has nothing to do.
  costore::client::RekeyResult rekey = client_.Rekey();
  EXPECT_EQ(rekey.key_version, 0u);
  EXPECT_EQ(rekey.files_rewrapped, 0u);

  auto info = client_.StorePath(model_path_, kModelDigest, {.origin = "https://public.example"});
  EXPECT_FALSE(info.is_private);
  EXPECT_EQ(info.cipher, "none");
  // "stream" changes nothing for a public file: the descriptor is the file.
  auto opened = client_.Open(kModelDigest, "https://public.example", {.stream = true});
  struct stat st {};
  ASSERT_EQ(::fstat(opened.fd.get(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_FALSE(opened.info.is_private);
  EXPECT_EQ(opened.info.cipher, "none");
  EXPECT_TRUE(ReadAll(opened.fd.get()) == model_);
  auto entries = client_.List(kModelHex);
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_FALSE(entries[0].is_private);
  EXPECT_EQ(entries[0].cipher, "none");
  EXPECT_EQ(entries[0].owner_app, "");
  EXPECT_EQ(client_.Stat(kModelDigest).entries, 1u);
  EXPECT_EQ(ErrorOf([&] { client_.List("not a digest"); }).code(), ErrorCode::kInvalidArgument);
  client_.Delete(kModelDigest);
}

}  // namespace
