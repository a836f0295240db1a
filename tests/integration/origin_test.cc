// One origin, one principal, through the real daemon: every spelling of an
// origin stores, reads and is granted as its canonical form, and what is no
// origin a browser can give a secure context is refused by name.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "tests/integration/daemon_harness.h"

namespace costore::test {
namespace {

using ::testing::HasSubstr;

constexpr char kNotFound[] = "io.github.costore.Error.NotFound";
constexpr char kInvalid[] = "io.github.costore.Error.InvalidArgument";

class OriginTest : public ::testing::Test {
 protected:
  std::string StoreBytes(BusClient& client, const std::string& origin, const std::string& data) {
    std::string digest = DigestOf(data);
    EXPECT_EQ(client.TryStore(origin, digest, PipeFrom(data), {}), "");
    return digest;
  }

  // The D-Bus error name of `call` ("" if it succeeded), and its message.
  template <typename Call>
  static std::string ErrorOf(Call call, std::string* message = nullptr) {
    try {
      call();
      return "";
    } catch (const sdbus::Error& e) {
      if (message) *message = e.getMessage();
      return e.getName();
    }
  }

  DaemonHarness harness_;
};

TEST_F(OriginTest, AStoreUnderOneSpellingIsReadBackUnderAnotherWithoutAGrant) {
  auto client = harness_.Connect();
  std::string data = RandomBytes(5000, 11);
  std::string digest = StoreBytes(*client, "https://example.com:443", data);

  std::string bytes;
  ASSERT_EQ(client->TryOpen("https://example.com", digest, &bytes), "");
  EXPECT_EQ(bytes, data);
  EXPECT_EQ(client->TryOpen("HTTPS://Example.COM:0443", digest, nullptr), "");
  // Another origin still is another principal.
  EXPECT_EQ(client->TryOpen("https://example.com:8443", digest, nullptr), kNotFound);

  // One principal, shown in its canonical form, and no grant was needed.
  auto usage = client->Usage(digest);
  ASSERT_EQ(usage.size(), 1u);
  EXPECT_EQ(usage[0]["origin"].get<std::string>(), "https://example.com");
  EXPECT_TRUE(usage[0]["stored"].get<bool>());
  EXPECT_EQ(usage[0]["reads"].get<uint32_t>(), 2u);
  EXPECT_TRUE(client->ListGrants({}).empty());

  // Storing again under a third spelling counts for the same principal.
  StoreBytes(*client, "https://EXAMPLE.com", data);
  usage = client->Usage(digest);
  ASSERT_EQ(usage.size(), 1u);
  EXPECT_EQ(usage[0]["stores"].get<uint32_t>(), 2u);
}

TEST_F(OriginTest, AGrantToASiteCoversEverySpellingOfIt) {
  auto client = harness_.Connect();
  const std::string app = DaemonHarness::SelfApp();
  std::string digest = StoreBytes(*client, "https://owner.example", "granted bytes");
  EXPECT_EQ(client->TryOpen("HTTPS://EXAMPLE.COM", digest, nullptr), kNotFound);

  client->Grant(app, "https://example.com", digest);
  EXPECT_EQ(client->TryOpen("HTTPS://EXAMPLE.COM", digest, nullptr), "");
  EXPECT_EQ(client->TryOpen("https://example.com:443", digest, nullptr), "");
  client->Grant(app, "https://Example.com:443", digest);  // the same grant again
  auto grants = client->ListGrants({});
  ASSERT_EQ(grants.size(), 1u);
  EXPECT_EQ(grants[0]["origin"].get<std::string>(), "https://example.com");

  client->Revoke(app, "HTTPS://example.COM:00443", digest);
  EXPECT_TRUE(client->ListGrants({}).empty());
  EXPECT_EQ(client->TryOpen("https://example.com", digest, nullptr), kNotFound);
}

TEST_F(OriginTest, ForgettingASpellingForgetsTheSite) {
  auto client = harness_.Connect();
  std::string digest = StoreBytes(*client, "https://site.example", "forgotten bytes");
  auto result = client->ForgetOrigin("HTTPS://Site.Example:443");
  EXPECT_EQ(result["files-deleted"].get<uint32_t>(), 1u);
  EXPECT_EQ(client->TryOpen("https://site.example", digest, nullptr), kNotFound);
}

TEST_F(OriginTest, WhatIsNoSecureOriginIsRefusedByName) {
  auto client = harness_.Connect();
  const std::string app = DaemonHarness::SelfApp();
  std::string digest = StoreBytes(*client, "", "some bytes");
  for (const std::string origin :
       {"https://0x7f.1", "https://a_b.c", "ws://x", "moz-extension://x", "http://example.com", "https://a.com/"}) {
    const std::string quoted = "\"" + origin + "\"";
    std::string message;
    EXPECT_EQ(client->TryStore(origin, digest, PipeFrom("some bytes"), {}, nullptr, &message), kInvalid) << origin;
    EXPECT_THAT(message, HasSubstr(quoted));
    message.clear();
    EXPECT_EQ(client->TryOpen(origin, digest, nullptr, &message), kInvalid) << origin;
    EXPECT_THAT(message, HasSubstr(quoted));
    message.clear();
    EXPECT_EQ(ErrorOf([&] { client->Grant(app, origin, digest); }, &message), kInvalid) << origin;
    EXPECT_THAT(message, HasSubstr(quoted));
    EXPECT_EQ(ErrorOf([&] { client->Revoke(app, origin, digest); }), kInvalid) << origin;
    // Nothing recorded under that spelling: nothing to forget either.
    EXPECT_EQ(ErrorOf([&] { client->ForgetOrigin(origin); }), kInvalid) << origin;
  }
  EXPECT_TRUE(client->ListGrants({}).empty());
}

}  // namespace
}  // namespace costore::test
