// Store1 through the real daemon: storing, reading back, the access rule,
// and the privacy of refusals.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <thread>

#include "tests/integration/daemon_harness.h"

namespace costore::test {
namespace {

constexpr char kNotFound[] = "io.github.costore.Error.NotFound";
constexpr char kInvalid[] = "io.github.costore.Error.InvalidArgument";
constexpr char kMismatch[] = "io.github.costore.Error.DigestMismatch";
constexpr char kSileroDigest[] = "sha256:1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3";
constexpr uint64_t kSileroSize = 2327524;

class StoreOpenTest : public ::testing::Test {
 protected:
  DaemonHarness harness_;
};

TEST_F(StoreOpenTest, RealModelStoredByOneOriginIsHiddenFromAnotherUntilGranted) {
  auto client = harness_.Connect();
  std::string path = ModelPath("silero_vad.onnx");
  std::string model = ReadFile(path);
  ASSERT_EQ(model.size(), kSileroSize);

  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  Dict info;
  ASSERT_EQ(client->TryStore("https://huggingface.co", kSileroDigest, fd,
                             {{"name", sdbus::Variant(std::string("silero/silero_vad.onnx"))},
                              {"size", sdbus::Variant(kSileroSize)}},
                             &info),
            "");
  close(fd);
  EXPECT_EQ(info["digest"].get<std::string>(), kSileroDigest);
  EXPECT_EQ(info["size"].get<uint64_t>(), kSileroSize);
  EXPECT_EQ(info["name"].get<std::string>(), "silero/silero_vad.onnx");
  EXPECT_GT(info["first-stored"].get<int64_t>(), 0);

  // The storing origin reads it back.
  std::string bytes;
  ASSERT_EQ(client->TryOpen("https://huggingface.co", kSileroDigest, &bytes), "");
  EXPECT_EQ(bytes, model);

  // Another origin is refused exactly as if the file did not exist.
  std::string refused_message, absent_message;
  EXPECT_EQ(client->TryOpen("https://example.com", kSileroDigest, nullptr, &refused_message), kNotFound);
  std::string absent = DigestOf("never stored");
  EXPECT_EQ(client->TryOpen("https://example.com", absent, nullptr, &absent_message), kNotFound);
  auto without_digest = [](std::string message, const std::string& digest) {
    return message.replace(message.find(digest), digest.size(), "<digest>");
  };
  EXPECT_EQ(without_digest(refused_message, kSileroDigest), without_digest(absent_message, absent));
  // So is the same site through another app... and the app itself with no origin.
  EXPECT_EQ(client->TryOpen("", kSileroDigest, nullptr), kNotFound);

  // After a grant the other origin reads identical bytes.
  client->Grant(DaemonHarness::SelfApp(), "https://example.com", kSileroDigest);
  Dict open_info;
  ASSERT_EQ(client->TryOpen("https://example.com", kSileroDigest, &bytes, nullptr, &open_info), "");
  EXPECT_EQ(bytes, model);
  // Its reply tells it nothing of who stored the file, or when, or as what.
  EXPECT_EQ(open_info["name"].get<std::string>(), "");
  EXPECT_EQ(open_info["first-stored"].get<int64_t>(), 0);
  EXPECT_EQ(open_info["size"].get<uint64_t>(), kSileroSize);
  // The grant is for that file only.
  EXPECT_EQ(client->TryOpen("https://example.com", absent, nullptr), kNotFound);
}

// A Store reply tells the storer only what it did itself: a later storer
// of the same bytes never gets the first one's name (which could carry a
// tracking id) or time.
TEST_F(StoreOpenTest, StoreReplyCarriesOnlyTheCallersOwnFacts) {
  auto client = harness_.Connect();
  const std::string data = RandomBytes(4096, 21);
  const std::string digest = DigestOf(data);
  Dict first, second, again;
  ASSERT_EQ(client->TryStore("https://a.example", digest, PipeFrom(data),
                             {{"name", sdbus::Variant(std::string("uid-8c1f2e visited A"))}}, &first),
            "");
  EXPECT_EQ(first["name"].get<std::string>(), "uid-8c1f2e visited A");
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  ASSERT_EQ(client->TryStore("https://b.example", digest, PipeFrom(data), {}, &second), "");
  EXPECT_EQ(second["name"].get<std::string>(), "");
  EXPECT_GT(second["first-stored"].get<int64_t>(), first["first-stored"].get<int64_t>());
  EXPECT_EQ(second["size"].get<uint64_t>(), data.size());
  // B's own name and first store stay B's.
  ASSERT_EQ(client->TryStore("https://b.example", digest, PipeFrom(data),
                             {{"name", sdbus::Variant(std::string("b's name"))}}, &again),
            "");
  EXPECT_EQ(again["name"].get<std::string>(), "b's name");
  EXPECT_EQ(again["first-stored"].get<int64_t>(), second["first-stored"].get<int64_t>());
  // And B's Open says the same.
  Dict opened;
  ASSERT_EQ(client->TryOpen("https://b.example", digest, nullptr, nullptr, &opened), "");
  EXPECT_EQ(opened["name"].get<std::string>(), "b's name");
  EXPECT_EQ(opened["first-stored"].get<int64_t>(), second["first-stored"].get<int64_t>());
}

TEST_F(StoreOpenTest, OpenedDescriptorIsReadOnly) {
  auto client = harness_.Connect();
  std::string data = RandomBytes(4096, 7);
  std::string digest = DigestOf(data);
  ASSERT_EQ(client->TryStore("", digest, PipeFrom(data), {}), "");
  auto [fd, info] = client->Open("", digest, {});
  EXPECT_EQ(write(fd.get(), "x", 1), -1);
  EXPECT_EQ(ReadFd(fd.get()), data);
}

TEST_F(StoreOpenTest, DigestMismatchStoresNothingAndNamesWhatArrived) {
  auto client = harness_.Connect();
  std::string data = "these are not the bytes you hashed";
  std::string claimed = DigestOf("other bytes");
  std::string message;
  EXPECT_EQ(client->TryStore("https://a.example", claimed, PipeFrom(data), {}, nullptr, &message), kMismatch);
  EXPECT_THAT(message, ::testing::HasSubstr(DigestOf(data)));
  EXPECT_THAT(message, ::testing::HasSubstr(claimed));
  EXPECT_TRUE(client->List({}).empty());
  EXPECT_EQ(client->TryOpen("https://a.example", claimed, nullptr), kNotFound);
  EXPECT_EQ(client->TryOpen("https://a.example", DigestOf(data), nullptr), kNotFound);
  for (const auto& file : FilesBelow(harness_.store_dir())) {
    EXPECT_THAT(file, ::testing::Not(::testing::StartsWith("blobs/"))) << "a blob was left behind";
    EXPECT_THAT(file, ::testing::Not(::testing::StartsWith("ingest/"))) << "a partial file was left behind";
  }
}

TEST_F(StoreOpenTest, SizeOptionMustMatch) {
  auto client = harness_.Connect();
  std::string data = RandomBytes(10000, 3);
  std::string message;
  EXPECT_EQ(client->TryStore("", DigestOf(data), PipeFrom(data), {{"size", sdbus::Variant(uint64_t{9999})}},
                             nullptr, &message),
            kMismatch);
  EXPECT_THAT(message, ::testing::HasSubstr("9999"));
  EXPECT_TRUE(client->List({}).empty());
}

TEST_F(StoreOpenTest, StoringAgainVerifiesAndAddsTheCallerAsAStoringPrincipal) {
  auto client = harness_.Connect();
  std::string data = RandomBytes(100000, 11);
  std::string digest = DigestOf(data);
  ASSERT_EQ(client->TryStore("https://one.example", digest, PipeFrom(data), {}), "");
  // A second origin that has the bytes stores them too: it may read them
  // afterwards, and it learns nothing from the answer.
  ASSERT_EQ(client->TryStore("https://two.example", digest, PipeFrom(data), {}), "");
  // A third that claims the digest without the bytes gets a mismatch.
  EXPECT_EQ(client->TryStore("https://three.example", digest, PipeFrom("short"), {}), kMismatch);
  EXPECT_EQ(client->TryOpen("https://two.example", digest, nullptr), "");
  EXPECT_EQ(client->TryOpen("https://three.example", digest, nullptr), kNotFound);
  auto usage = client->Usage(digest);
  ASSERT_EQ(usage.size(), 2u);
  EXPECT_EQ(client->Stat(digest)["stored-by"].get<uint32_t>(), 2u);
  EXPECT_EQ(FilesBelow(harness_.store_dir() + "/blobs").size(), 1u);
}

TEST_F(StoreOpenTest, FourClientsStoringTheSameFileAtOnceEndWithOneBlobAndFourPrincipals) {
  std::string data = RandomBytes(8 << 20, 5);
  std::string digest = DigestOf(data);
  std::vector<std::unique_ptr<BusClient>> clients;
  for (int i = 0; i < 4; ++i) clients.push_back(harness_.Connect());
  std::vector<std::string> results(4);
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      results[i] = clients[i]->TryStore("https://site" + std::to_string(i) + ".example", digest,
                                        PipeFrom(data), {});
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < 4; ++i) EXPECT_EQ(results[i], "") << "client " << i;
  EXPECT_EQ(FilesBelow(harness_.store_dir() + "/blobs").size(), 1u);
  EXPECT_TRUE(FilesBelow(harness_.store_dir() + "/ingest").empty());
  auto usage = clients[0]->Usage(digest);
  ASSERT_EQ(usage.size(), 4u);
  for (auto& u : usage) EXPECT_TRUE(u["stored"].get<bool>());
  for (int i = 0; i < 4; ++i) {
    std::string bytes;
    EXPECT_EQ(clients[i]->TryOpen("https://site" + std::to_string(i) + ".example", digest, &bytes), "");
    EXPECT_EQ(bytes, data);
  }
}

TEST_F(StoreOpenTest, OpenIsAnsweredWhileASlowStoreIsInFlight) {
  auto slow_client = harness_.Connect();
  auto client = harness_.Connect();
  std::string quick = RandomBytes(1000, 9);
  ASSERT_EQ(client->TryStore("", DigestOf(quick), PipeFrom(quick), {}), "");

  // A store whose source stalls: the writer holds its end open and silent.
  std::string slow = RandomBytes(1 << 20, 13);
  int fds[2];
  ASSERT_EQ(pipe2(fds, O_CLOEXEC), 0);
  std::string slow_result = "pending";
  std::thread slow_store([&] {
    slow_result = slow_client->TryStore("", DigestOf(slow), fds[0], {});
  });
  ASSERT_EQ(write(fds[1], slow.data(), 4096), 4096);

  // While it waits, the daemon answers other calls.
  std::string bytes;
  EXPECT_EQ(client->TryOpen("", DigestOf(quick), &bytes), "");
  EXPECT_EQ(bytes, quick);
  EXPECT_EQ(client->List({}).size(), 1u);
  EXPECT_EQ(slow_result, "pending");

  size_t done = 4096;
  while (done < slow.size()) {
    ssize_t n = write(fds[1], slow.data() + done, slow.size() - done);
    ASSERT_GT(n, 0);
    done += static_cast<size_t>(n);
  }
  close(fds[1]);
  slow_store.join();
  close(fds[0]);
  EXPECT_EQ(slow_result, "");
  EXPECT_EQ(client->List({}).size(), 2u);
}

TEST_F(StoreOpenTest, MalformedArgumentsAreInvalidArgumentNamingWhatWasWrong) {
  auto client = harness_.Connect();
  std::string data = "x";
  std::string good = DigestOf(data);
  std::string message;

  struct Case {
    std::string digest;
    std::string mentions;
  };
  for (const Case& c : std::vector<Case>{
           {"", "empty"},
           {"sha512:" + good.substr(7), "sha512"},
           {good.substr(7), "prefix"},
           {good.substr(0, good.size() - 1), "63"},
           {"sha256:" + std::string(64, 'A'), "uppercase"},
           {"sha256:" + std::string(64, 'g'), "hex"},
       }) {
    EXPECT_EQ(client->TryStore("", c.digest, PipeFrom(data), {}, nullptr, &message), kInvalid) << c.digest;
    EXPECT_THAT(message, ::testing::HasSubstr(c.mentions)) << c.digest;
    EXPECT_EQ(client->TryOpen("", c.digest, nullptr, &message), kInvalid) << c.digest;
  }

  for (const std::string& origin :
       {std::string("https://evil.example\n"), std::string("https://a.example/../../etc"),
        std::string("https://a.example/path"), std::string("../../etc/passwd"), std::string("null"),
        std::string("ws://a.example"), std::string("https://a.example:99999")}) {
    EXPECT_EQ(client->TryStore(origin, good, PipeFrom(data), {}, nullptr, &message), kInvalid) << origin;
    EXPECT_THAT(message, ::testing::HasSubstr("origin"));
    EXPECT_EQ(client->TryOpen(origin, good, nullptr, &message), kInvalid) << origin;
  }

  EXPECT_EQ(client->TryStore("", good, PipeFrom(data), {{"size", sdbus::Variant(~uint64_t{0})}}, nullptr,
                             &message),
            kInvalid);
  EXPECT_THAT(message, ::testing::HasSubstr("size"));
  EXPECT_EQ(client->TryStore("", good, PipeFrom(data), {{"size", sdbus::Variant(std::string("12"))}}, nullptr,
                             &message),
            kInvalid);
  EXPECT_THAT(message, ::testing::HasSubstr("\"size\""));
  EXPECT_EQ(client->TryStore("", good, PipeFrom(data), {{"name", sdbus::Variant(std::string("a\x01z"))}},
                             nullptr, &message),
            kInvalid);
  EXPECT_THAT(message, ::testing::HasSubstr("name"));

  // A descriptor the daemon cannot read from.
  int wronly = open("/dev/null", O_WRONLY | O_CLOEXEC);
  EXPECT_EQ(client->TryStore("", good, wronly, {}, nullptr, &message), kInvalid);
  close(wronly);

  // Nothing was stored by any of it.
  EXPECT_TRUE(client->List({}).empty());
}

TEST_F(StoreOpenTest, LargeFileStreamedThroughAPipeKeepsDaemonMemoryFlat) {
  constexpr size_t kTotal = size_t{512} << 20;
  constexpr size_t kChunk = size_t{4} << 20;
  // Deterministic chunks: hash them first, then stream them again.
  std::string chunk = RandomBytes(kChunk, 21);
  auto make_chunk = [&](size_t i) {
    std::string c = chunk;
    std::memcpy(c.data(), &i, sizeof i);  // so the chunks differ
    return c;
  };
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  for (size_t i = 0; i < kTotal / kChunk; ++i) {
    std::string c = make_chunk(i);
    EVP_DigestUpdate(ctx, c.data(), c.size());
  }
  unsigned char md[32];
  EVP_DigestFinal_ex(ctx, md, nullptr);
  EVP_MD_CTX_free(ctx);
  std::string digest = "sha256:";
  for (unsigned char b : md) {
    static constexpr char kHex[] = "0123456789abcdef";
    digest += kHex[b >> 4];
    digest += kHex[b & 0xf];
  }

  int fds[2];
  ASSERT_EQ(pipe2(fds, O_CLOEXEC), 0);
  std::thread writer([&] {
    for (size_t i = 0; i < kTotal / kChunk; ++i) {
      std::string c = make_chunk(i);
      size_t done = 0;
      while (done < c.size()) {
        ssize_t n = write(fds[1], c.data() + done, c.size() - done);
        if (n <= 0) return;
        done += static_cast<size_t>(n);
      }
    }
    close(fds[1]);
  });
  auto client = harness_.Connect();
  long rss_before = harness_.DaemonPeakRssKiB();
  Dict info;
  EXPECT_EQ(client->TryStore("", digest, fds[0], {{"size", sdbus::Variant(uint64_t{kTotal})}}, &info), "");
  writer.join();
  close(fds[0]);
  EXPECT_EQ(info["size"].get<uint64_t>(), kTotal);
  long rss_after = harness_.DaemonPeakRssKiB();
  ASSERT_GT(rss_before, 0);
  // Flat: the peak grew by far less than the file (a fixed buffer, not the bytes).
  EXPECT_LT(rss_after - rss_before, 64 * 1024) << "daemon peak RSS went from " << rss_before << " KiB to "
                                               << rss_after << " KiB for a 512 MiB store";
}

}  // namespace
}  // namespace costore::test
