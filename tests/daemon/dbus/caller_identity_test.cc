// Caller identification from kernel data, against fake /proc trees and
// against this very process.
#include "daemon/dbus/caller_identity.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
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
  // <proc>/PID with an exe link (none when `exe` is ""), a status file with
  // PPid and Uid, and a cgroup file.
  void FakeProcessAt(pid_t pid, const std::string& exe, pid_t ppid, uid_t uid,
                     const std::string& cgroup = "0::/user.slice\n") {
    std::string dir = proc_.Join(std::to_string(pid));
    fs::create_directories(dir + "/root");
    if (!exe.empty()) fs::create_symlink(exe, dir + "/exe");
    std::string u = std::to_string(uid);
    test::WriteFile(dir + "/status", "Name:\tx\nPPid:\t" + std::to_string(ppid) + "\nUid:\t" + u + "\t" +
                                         u + "\t" + u + "\t" + u + "\n");
    test::WriteFile(dir + "/cgroup", cgroup);
  }
  // The native host as pid 42, uid 1000, started by pid 7; the caller's
  // identity as the bus reports it.
  CallerIdentity HostCalling(pid_t parent = 7) {
    FakeProcessAt(42, kHost, parent, 1000);
    CallerIdentity id;
    id.uid = 1000;
    return id;
  }
  static constexpr const char* kHost = "/usr/libexec/costore-native-host";
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

TEST_F(CallerIdentityTest, NativeHostIsTheBrowserThatStartedIt) {
  CallerIdentity id = HostCalling();
  FakeProcessAt(7, "/usr/lib/chromium/chromium", 1, 1000);
  ASSERT_TRUE(IdentifyProcess(42, &id, proc_.path()).ok());
  EXPECT_EQ(id.app, "/usr/lib/chromium/chromium");
  EXPECT_FALSE(id.sandboxed);
  EXPECT_EQ(id.pid, 42);
}

TEST_F(CallerIdentityTest, NativeHostOfAReplacedBrowserIsStillThatBrowser) {
  CallerIdentity id = HostCalling();
  FakeProcessAt(7, "/usr/lib/firefox-esr/firefox-esr (deleted)", 1, 1000);
  ASSERT_TRUE(IdentifyProcess(42, &id, proc_.path()).ok());
  EXPECT_EQ(id.app, "/usr/lib/firefox-esr/firefox-esr");
}

TEST_F(CallerIdentityTest, NativeHostReparentedToInitIsItself) {
  CallerIdentity id = HostCalling(1);
  FakeProcessAt(1, "/usr/lib/systemd/systemd", 0, 1000);
  ASSERT_TRUE(IdentifyProcess(42, &id, proc_.path()).ok());
  EXPECT_EQ(id.app, kHost);
  EXPECT_FALSE(id.sandboxed);
}

TEST_F(CallerIdentityTest, NativeHostWithAnUnreadableParentIsItself) {
  {
    CallerIdentity id = HostCalling();  // no <proc>/7 at all: it exited
    ASSERT_TRUE(IdentifyProcess(42, &id, proc_.path()).ok());
    EXPECT_EQ(id.app, kHost);
  }
  {
    CallerIdentity id;  // <proc>/7 without an exe link (a kernel thread, or not ours to read)
    id.uid = 1000;
    FakeProcessAt(7, "", 1, 1000);
    ASSERT_TRUE(IdentifyProcess(42, &id, proc_.path()).ok());
    EXPECT_EQ(id.app, kHost);
  }
}

TEST_F(CallerIdentityTest, NativeHostWithoutAStatusIsItself) {
  fs::create_directories(proc_.Join("42"));
  fs::create_symlink(kHost, proc_.Join("42/exe"));
  FakeProcessAt(7, "/usr/lib/chromium/chromium", 1, 1000);
  CallerIdentity id;
  id.uid = 1000;
  ASSERT_TRUE(IdentifyProcess(42, &id, proc_.path()).ok());
  EXPECT_EQ(id.app, kHost);
}

TEST_F(CallerIdentityTest, NativeHostStartedByAnotherUidIsItself) {
  {
    CallerIdentity id = HostCalling();
    FakeProcessAt(7, "/usr/lib/chromium/chromium", 1, 0);
    ASSERT_TRUE(IdentifyProcess(42, &id, proc_.path()).ok());
    EXPECT_EQ(id.app, kHost);
  }
  {
    // Any one uid differing is enough (a setuid parent).
    test::WriteFile(proc_.Join("7/status"), "PPid:\t1\nUid:\t1000\t0\t1000\t1000\n");
    CallerIdentity id;
    id.uid = 1000;
    ASSERT_TRUE(IdentifyProcess(42, &id, proc_.path()).ok());
    EXPECT_EQ(id.app, kHost);
  }
  {
    // The same parent, for a caller the bus says is root: not its browser.
    FakeProcessAt(8, "/usr/lib/chromium/chromium", 1, 1000);
    FakeProcessAt(43, kHost, 8, 0);
    CallerIdentity id;
    id.uid = 0;
    ASSERT_TRUE(IdentifyProcess(43, &id, proc_.path()).ok());
    EXPECT_EQ(id.app, kHost);
  }
}

TEST_F(CallerIdentityTest, NativeHostStartedByAFlatpakIsThatFlatpak) {
  CallerIdentity id = HostCalling();
  FakeProcessAt(7, "/app/lib/chromium/chromium", 1, 1000);
  test::WriteFile(proc_.Join("7/root/.flatpak-info"), "[Application]\nname=org.chromium.Chromium\n");
  ASSERT_TRUE(IdentifyProcess(42, &id, proc_.path()).ok());
  EXPECT_EQ(id.app, "flatpak:org.chromium.Chromium");
  EXPECT_TRUE(id.sandboxed);
}

TEST_F(CallerIdentityTest, NativeHostStartedByASnapIsThatSnap) {
  CallerIdentity id = HostCalling();
  FakeProcessAt(7, "/snap/chromium/1/usr/lib/chromium-browser/chrome", 1, 1000,
                "0::/user.slice/user-1000.slice/user@1000.service/app.slice/snap.chromium.chromium-7.scope\n");
  ASSERT_TRUE(IdentifyProcess(42, &id, proc_.path()).ok());
  EXPECT_EQ(id.app, "snap:chromium");
  EXPECT_TRUE(id.sandboxed);
}

TEST_F(CallerIdentityTest, NativeHostWithAMalformedFlatpakParentIsItself) {
  CallerIdentity id = HostCalling();
  FakeProcessAt(7, "/app/bin/x", 1, 1000);
  test::WriteFile(proc_.Join("7/root/.flatpak-info"), "[Application]\nname=../../evil\n");
  ASSERT_TRUE(IdentifyProcess(42, &id, proc_.path()).ok());
  EXPECT_EQ(id.app, kHost);
  EXPECT_FALSE(id.sandboxed);
}

TEST_F(CallerIdentityTest, NativeHostInsideASandboxIsThatSandbox) {
  CallerIdentity id = HostCalling();
  test::WriteFile(proc_.Join("42/root/.flatpak-info"), "[Application]\nname=org.example.Sneaky\n");
  FakeProcessAt(7, "/usr/lib/chromium/chromium", 1, 1000);
  ASSERT_TRUE(IdentifyProcess(42, &id, proc_.path()).ok());
  EXPECT_EQ(id.app, "flatpak:org.example.Sneaky");
  EXPECT_TRUE(id.sandboxed);
}

TEST_F(CallerIdentityTest, OnlyTheNativeHostSpeaksForItsParent) {
  for (const char* exe : {"/usr/bin/costore-native-host-old", "/usr/bin/xcostore-native-host",
                          "/usr/bin/costore-native-host.sh", "/usr/bin/costore"}) {
    fs::remove_all(proc_.path());
    fs::create_directories(proc_.path());
    FakeProcessAt(42, exe, 7, 1000);
    FakeProcessAt(7, "/usr/lib/chromium/chromium", 1, 1000);
    CallerIdentity id;
    id.uid = 1000;
    ASSERT_TRUE(IdentifyProcess(42, &id, proc_.path()).ok());
    EXPECT_EQ(id.app, exe);
  }
}

TEST_F(CallerIdentityTest, ThisProcessIsItsOwnExecutable) {
  CallerIdentity id;
  ASSERT_TRUE(IdentifyProcess(getpid(), &id).ok());
  EXPECT_EQ(id.app, fs::read_symlink("/proc/self/exe").string());
}

// The real /proc: a copy of sleep(1) named costore-native-host, started by
// this test, is identified as this test's executable.
TEST_F(CallerIdentityTest, RealNativeHostChildIsItsParent) {
  test::TempDir bin;
  std::string host = bin.Join("costore-native-host");
  fs::copy_file("/bin/sleep", host);
  fs::permissions(host, fs::perms::owner_all);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::execl(host.c_str(), host.c_str(), "30", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  // Wait until the child runs the host, not this test's image any more.
  for (int i = 0; i < 500 && fs::read_symlink("/proc/" + std::to_string(child) + "/exe") != host; ++i) {
    ::usleep(10000);
  }
  CallerIdentity id;
  id.uid = ::geteuid();
  Status s = IdentifyProcess(child, &id);
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(id.app, fs::read_symlink("/proc/self/exe").string());
  EXPECT_FALSE(id.sandboxed);
}

}  // namespace
}  // namespace costore
