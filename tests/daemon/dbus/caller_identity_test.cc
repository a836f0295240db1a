// Caller identification from kernel data, against fake /proc trees and
// against this very process.
#include "daemon/dbus/caller_identity.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "tests/daemon/engine/test_util.h"

namespace costore {
namespace {

namespace fs = std::filesystem;

class CallerIdentityTest : public ::testing::Test {
 protected:
  // <proc>/42 with an exe link to `exe` and the given cgroup file.
  std::string FakeProcess(const std::string& exe, const std::string& cgroup = "0::/user.slice\n") {
    fs::create_directories(proc_.Join("42/root"));
    fs::create_symlink(exe, proc_.Join("42/exe"));
    test::WriteFile(proc_.Join("42/cgroup"), cgroup);
    return proc_.path();
  }
  test::TempDir proc_;
};

TEST_F(CallerIdentityTest, PlainProcessIsItsExecutable) {
  std::string root = FakeProcess("/usr/lib/chromium/chromium");
  CallerIdentity id;
  ASSERT_TRUE(IdentifyProcess(42, &id, root).ok());
  EXPECT_EQ(id.app, "/usr/lib/chromium/chromium");
  EXPECT_FALSE(id.sandboxed);
}

TEST_F(CallerIdentityTest, ReplacedExecutableIsStillTheSameApp) {
  std::string root = FakeProcess("/usr/bin/llama-server (deleted)");
  CallerIdentity id;
  ASSERT_TRUE(IdentifyProcess(42, &id, root).ok());
  EXPECT_EQ(id.app, "/usr/bin/llama-server");
}

TEST_F(CallerIdentityTest, FlatpakAppIsNamedByItsIdAndSandboxed) {
  std::string root = FakeProcess("/app/bin/firefox");
  test::WriteFile(proc_.Join("42/root/.flatpak-info"),
                  "[Instance]\nname=wrong\n[Application]\nname=org.mozilla.firefox\nruntime=x\n");
  CallerIdentity id;
  ASSERT_TRUE(IdentifyProcess(42, &id, root).ok());
  EXPECT_EQ(id.app, "flatpak:org.mozilla.firefox");
  EXPECT_TRUE(id.sandboxed);
}

TEST_F(CallerIdentityTest, SnapAppIsNamedFromItsCgroupAndSandboxed) {
  std::string root = FakeProcess(
      "/snap/firefox/123/usr/lib/firefox/firefox",
      "0::/user.slice/user-1000.slice/user@1000.service/app.slice/snap.firefox.firefox-4242.scope\n");
  CallerIdentity id;
  ASSERT_TRUE(IdentifyProcess(42, &id, root).ok());
  EXPECT_EQ(id.app, "snap:firefox");
  EXPECT_TRUE(id.sandboxed);
}

TEST_F(CallerIdentityTest, MalformedFlatpakIdIsRefused) {
  std::string root = FakeProcess("/app/bin/x");
  test::WriteFile(proc_.Join("42/root/.flatpak-info"), "[Application]\nname=../../evil\n");
  CallerIdentity id;
  EXPECT_EQ(IdentifyProcess(42, &id, root).code(), Code::kPermissionDenied);
}

TEST_F(CallerIdentityTest, VanishedProcessIsRefused) {
  CallerIdentity id;
  EXPECT_EQ(IdentifyProcess(42, &id, proc_.path()).code(), Code::kPermissionDenied);
  EXPECT_EQ(IdentifyProcess(0, &id).code(), Code::kPermissionDenied);
}

TEST_F(CallerIdentityTest, ThisProcessIsItsOwnExecutable) {
  CallerIdentity id;
  ASSERT_TRUE(IdentifyProcess(getpid(), &id).ok());
  EXPECT_EQ(id.app, fs::read_symlink("/proc/self/exe").string());
}

}  // namespace
}  // namespace costore
