// Manager1 through the real daemon: listing, attribution, grants, deletion,
// change signals, and who may call it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include "tests/integration/daemon_harness.h"

namespace costore::test {
namespace {

constexpr char kNotFound[] = "io.github.costore.Error.NotFound";
constexpr char kInvalid[] = "io.github.costore.Error.InvalidArgument";

class ManagerTest : public ::testing::Test {
 protected:
  std::string StoreBytes(BusClient& client, const std::string& origin, const std::string& data,
                         const std::string& name = "") {
    std::string digest = DigestOf(data);
    Dict options;
    if (!name.empty()) options["name"] = sdbus::Variant(name);
    EXPECT_EQ(client.TryStore(origin, digest, PipeFrom(data), options), "");
    return digest;
  }

  // Runs a shell command with the private bus in its environment.
  static std::string Run(const std::string& command, int* status = nullptr) {
    std::string out;
    FILE* pipe = popen((command + " 2>&1").c_str(), "r");
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
    int rc = pclose(pipe);
    if (status) *status = rc;
    return out;
  }

  DaemonHarness harness_;
};

TEST_F(ManagerTest, ListAndStatDescribeEveryFile) {
  auto client = harness_.Connect();
  std::string a = StoreBytes(*client, "https://a.example", "alpha bytes", "org/model-a.onnx");
  std::string b = StoreBytes(*client, "", "beta bytes");
  auto files = client->List({});
  ASSERT_EQ(files.size(), 2u);
  std::vector<std::string> digests;
  for (auto& f : files) digests.push_back(f["digest"].get<std::string>());
  EXPECT_THAT(digests, ::testing::UnorderedElementsAre(a, b));
  EXPECT_TRUE(std::is_sorted(digests.begin(), digests.end()));

  Dict stat = client->Stat(a);
  EXPECT_EQ(stat["size"].get<uint64_t>(), 11u);
  EXPECT_EQ(stat["name"].get<std::string>(), "org/model-a.onnx");
  EXPECT_FALSE(stat["private"].get<bool>());
  EXPECT_EQ(stat["stored-by"].get<uint32_t>(), 1u);
  EXPECT_EQ(stat["used-by"].get<uint32_t>(), 1u);
  EXPECT_GE(stat["last-used"].get<int64_t>(), stat["first-stored"].get<int64_t>());

  try {
    client->Stat(DigestOf("absent"));
    ADD_FAILURE() << "Stat of an absent file succeeded";
  } catch (const sdbus::Error& e) {
    EXPECT_EQ(e.getName(), kNotFound);
  }
}

TEST_F(ManagerTest, UsageAttributesStoresAndReadsToPrincipals) {
  auto client = harness_.Connect();
  std::string digest = StoreBytes(*client, "https://hf.example", "weights");
  client->Grant(DaemonHarness::SelfApp(), "https://reader.example", digest);
  ASSERT_EQ(client->TryOpen("https://reader.example", digest, nullptr), "");
  ASSERT_EQ(client->TryOpen("https://reader.example", digest, nullptr), "");

  auto usage = client->Usage(digest);
  ASSERT_EQ(usage.size(), 2u);
  EXPECT_EQ(usage[0]["origin"].get<std::string>(), "https://hf.example");
  EXPECT_EQ(usage[0]["app"].get<std::string>(), DaemonHarness::SelfApp());
  EXPECT_TRUE(usage[0]["stored"].get<bool>());
  EXPECT_EQ(usage[0]["stores"].get<uint32_t>(), 1u);
  EXPECT_EQ(usage[1]["origin"].get<std::string>(), "https://reader.example");
  EXPECT_FALSE(usage[1]["stored"].get<bool>());
  EXPECT_EQ(usage[1]["reads"].get<uint32_t>(), 2u);
  EXPECT_EQ(client->Stat(digest)["used-by"].get<uint32_t>(), 2u);
}

TEST_F(ManagerTest, GrantsForOneFileAndForEveryFile) {
  auto client = harness_.Connect();
  std::string one = StoreBytes(*client, "https://owner.example", "one");
  std::string two = StoreBytes(*client, "https://owner.example", "two");
  std::string app = DaemonHarness::SelfApp();

  client->Grant(app, "https://reader.example", one);
  client->Grant(app, "https://reader.example", one);  // twice is fine
  EXPECT_EQ(client->TryOpen("https://reader.example", one, nullptr), "");
  EXPECT_EQ(client->TryOpen("https://reader.example", two, nullptr), kNotFound);

  client->Grant(app, "https://trusted.example", "*");
  EXPECT_EQ(client->TryOpen("https://trusted.example", one, nullptr), "");
  EXPECT_EQ(client->TryOpen("https://trusted.example", two, nullptr), "");

  auto grants = client->ListGrants({});
  ASSERT_EQ(grants.size(), 2u);
  auto for_two = client->ListGrants({{"digest", sdbus::Variant(two)}});
  ASSERT_EQ(for_two.size(), 1u);
  EXPECT_EQ(for_two[0]["digest"].get<std::string>(), "*");

  client->Revoke(app, "https://reader.example", one);
  EXPECT_EQ(client->TryOpen("https://reader.example", one, nullptr), kNotFound);
  try {
    client->Revoke(app, "https://reader.example", one);
    ADD_FAILURE() << "revoking a missing grant succeeded";
  } catch (const sdbus::Error& e) {
    EXPECT_EQ(e.getName(), kNotFound);
  }
  // A grant names a real app and a valid origin.
  for (auto [bad_app, bad_origin] : std::vector<std::pair<std::string, std::string>>{
           {"", "https://x.example"}, {"relative/app", ""}, {app, "https://x.example/path"}}) {
    try {
      client->Grant(bad_app, bad_origin, one);
      ADD_FAILURE() << "granted to " << bad_app << " " << bad_origin;
    } catch (const sdbus::Error& e) {
      EXPECT_EQ(e.getName(), kInvalid);
    }
  }
  // A grant for a single file needs the file.
  try {
    client->Grant(app, "https://x.example", DigestOf("absent"));
    ADD_FAILURE() << "granted an absent file";
  } catch (const sdbus::Error& e) {
    EXPECT_EQ(e.getName(), kNotFound);
  }
}

TEST_F(ManagerTest, DeleteRemovesTheFileItsBytesAndItsGrants) {
  auto client = harness_.Connect();
  std::string data = RandomBytes(50000, 4);
  std::string digest = StoreBytes(*client, "https://owner.example", data);
  std::string app = DaemonHarness::SelfApp();
  client->Grant(app, "https://reader.example", digest);
  client->Grant(app, "https://everything.example", "*");

  // A descriptor handed out before the delete stays readable.
  auto [fd, info] = client->Open("https://owner.example", digest, {});
  client->Delete(digest);
  EXPECT_EQ(ReadFd(fd.get()), data);

  EXPECT_TRUE(client->List({}).empty());
  EXPECT_TRUE(FilesBelow(harness_.store_dir() + "/blobs").empty());
  EXPECT_EQ(client->TryOpen("https://owner.example", digest, nullptr), kNotFound);
  auto grants = client->ListGrants({});
  ASSERT_EQ(grants.size(), 1u) << "the file's grant should be gone, the '*' grant kept";
  EXPECT_EQ(grants[0]["digest"].get<std::string>(), "*");

  // Stored again, it does not come back with its old grant.
  StoreBytes(*client, "https://owner.example", data);
  EXPECT_EQ(client->TryOpen("https://reader.example", digest, nullptr), kNotFound);

  try {
    client->Delete(DigestOf("absent"));
    ADD_FAILURE() << "deleting an absent file succeeded";
  } catch (const sdbus::Error& e) {
    EXPECT_EQ(e.getName(), kNotFound);
  }
}

TEST_F(ManagerTest, ChangedIsSignalledForStoreGrantRevokeAndDelete) {
  auto watcher = harness_.Connect();
  watcher->Subscribe();
  watcher->Subscribe();  // again: still one subscription, one signal each
  auto client = harness_.Connect();
  std::string digest = StoreBytes(*client, "", "signal me");
  client->Grant(DaemonHarness::SelfApp(), "https://x.example", digest);
  client->Revoke(DaemonHarness::SelfApp(), "https://x.example", digest);
  client->Delete(digest);
  std::vector<std::pair<std::string, std::string>> expected = {
      {"stored", digest}, {"granted", digest}, {"revoked", digest}, {"deleted", digest}};
  for (int i = 0; i < 500 && watcher->changes().size() < expected.size(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(watcher->changes(), expected);
}

// Changed is unicast to subscribers: a connection with an ordinary match
// rule for it (every BusClient registers one) and no subscription learns
// nothing of what anyone stores; neither does one that unsubscribed.
TEST_F(ManagerTest, ChangedIsNotBroadcast) {
  auto bystander = harness_.Connect();
  auto leaver = harness_.Connect();
  leaver->Subscribe();
  leaver->Unsubscribe();
  try {
    leaver->Unsubscribe();
    ADD_FAILURE() << "a second Unsubscribe succeeded";
  } catch (const sdbus::Error& e) {
    EXPECT_EQ(e.getName(), kNotFound);
  }
  auto watcher = harness_.Connect();
  watcher->Subscribe();
  auto client = harness_.Connect();
  const std::string digest = StoreBytes(*client, "https://a.example", "what A stored");
  for (int i = 0; i < 500 && watcher->changes().empty(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_EQ(watcher->changes(), (std::vector<std::pair<std::string, std::string>>{{"stored", digest}}));
  // The bus delivers in order: a signal the daemon sent them would be in
  // their queues before these replies, and dispatched soon after.
  EXPECT_EQ(bystander->Manager1_proxy::Version(), 1u);
  EXPECT_EQ(leaver->Manager1_proxy::Version(), 1u);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_TRUE(bystander->changes().empty());
  EXPECT_TRUE(leaver->changes().empty());
}

// A subscriber that leaves the bus is forgotten: the daemon sends it nothing
// more (and keeps no state for it).
TEST_F(ManagerTest, SubscriberThatLeavesIsForgotten) {
  {
    auto gone = harness_.Connect();
    gone->Subscribe();
  }
  auto watcher = harness_.Connect();
  watcher->Subscribe();
  auto client = harness_.Connect();
  const std::string digest = StoreBytes(*client, "", "after the subscriber left");
  for (int i = 0; i < 500 && watcher->changes().empty(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(watcher->changes().size(), 1u);
  EXPECT_THAT(harness_.DaemonLog(), ::testing::Not(::testing::HasSubstr("cannot send Changed")));
}

TEST_F(ManagerTest, VersionPropertiesAreOne) {
  auto client = harness_.Connect();
  EXPECT_EQ(client->Store1_proxy::Version(), 1u);
  EXPECT_EQ(client->Manager1_proxy::Version(), 1u);
}

TEST_F(ManagerTest, ReadmeBusctlExampleWorks) {
  auto client = harness_.Connect();
  std::string digest = StoreBytes(*client, "", "busctl bytes", "demo.bin");
  int status = 0;
  std::string out = Run("busctl --user call io.github.costore /io/github/costore "
                        "io.github.costore.Manager1 List a{sv} 0",
                        &status);
  EXPECT_EQ(status, 0) << out;
  EXPECT_THAT(out, ::testing::HasSubstr(digest));
  EXPECT_THAT(out, ::testing::HasSubstr("demo.bin"));
}

TEST_F(ManagerTest, CallersOfAnotherUidAreRefused) {
  if (geteuid() != 0) {
    GTEST_SKIP() << "needs root to run a client as another uid (CI runs as root)";
  }
  auto client = harness_.Connect();
  std::string digest = StoreBytes(*client, "", "mine");
  // The bus socket lives in the harness's private directory: let nobody in.
  std::string dir = harness_.address().substr(harness_.address().find("path=") + 5);
  dir = dir.substr(0, dir.find_last_of('/'));
  chmod(dir.c_str(), 0755);
  int status = 0;
  std::string out = Run("setpriv --reuid=65534 --regid=65534 --clear-groups "
                        "busctl --user call io.github.costore /io/github/costore "
                        "io.github.costore.Manager1 List a{sv} 0",
                        &status);
  EXPECT_NE(status, 0) << out;
  EXPECT_THAT(out, ::testing::HasSubstr("uid 65534"));
  out = Run("setpriv --reuid=65534 --regid=65534 --clear-groups "
            "busctl --user call io.github.costore /io/github/costore "
            "io.github.costore.Store1 Open ssa{sv} '' " + digest + " 0",
            &status);
  EXPECT_NE(status, 0) << out;
  EXPECT_THAT(out, ::testing::HasSubstr("uid 65534"));
}

}  // namespace
}  // namespace costore::test
