// The consent policy through the real daemon and a scripted agent: when the
// user is asked, what each answer does, and what a hostile or broken party
// (a page prompting in a loop, a caller or an agent that vanishes, an agent
// of another uid) can and cannot do.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstdio>
#include <future>
#include <optional>
#include <thread>

#include "tests/integration/daemon_harness.h"
#include "tests/integration/scripted_agent.h"

namespace costore::test {
namespace {

constexpr char kNotFound[] = "io.github.costore.Error.NotFound";
constexpr char kOwner[] = "https://huggingface.co";
constexpr char kAsker[] = "https://asker.example";

// Unsets an environment variable (which the daemons started meanwhile
// inherit) and puts it back.
class ScopedUnsetenv {
 public:
  explicit ScopedUnsetenv(const char* name) : name_(name) {
    if (const char* value = std::getenv(name)) old_ = value;
    ::unsetenv(name);
  }
  ~ScopedUnsetenv() {
    if (old_) ::setenv(name_, old_->c_str(), 1);
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

class ConsentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    owner_ = harness_.Connect();
    digest_ = DigestOf(data_);
    ASSERT_EQ(owner_->TryStore(kOwner, digest_, PipeFrom(data_),
                               {{"name", sdbus::Variant(std::string("org/model.onnx"))}}),
              "");
  }

  std::unique_ptr<ScriptedAgent> Agent(std::optional<std::string> decision) {
    auto agent = std::make_unique<ScriptedAgent>(harness_.address(), decision);
    EXPECT_EQ(agent->Register(), "");
    return agent;
  }

  // Open as `origin` on a connection of its own, in the background.
  std::future<std::string> OpenLater(const std::string& origin, const std::string& digest,
                                     std::string* bytes = nullptr) {
    return std::async(std::launch::async, [this, origin, digest, bytes] {
      auto client = harness_.Connect();
      return client->TryOpen(origin, digest, bytes);
    });
  }

  std::vector<std::string> GrantTargets() {
    std::vector<std::string> out;
    for (auto& g : owner_->ListGrants({})) out.push_back(g["origin"].get<std::string>() + " " + g["digest"].get<std::string>());
    return out;
  }

  DaemonHarness harness_;
  std::unique_ptr<BusClient> owner_;
  std::string data_ = RandomBytes(30000, 77);
  std::string digest_;
};

TEST_F(ConsentTest, AllowOnceServesThisRequestAndWritesNoGrant) {
  auto agent = Agent("allow-once");
  std::string bytes;
  EXPECT_EQ(owner_->TryOpen(kAsker, digest_, &bytes), "");
  EXPECT_EQ(bytes, data_);
  EXPECT_TRUE(GrantTargets().empty());
  // The request described who asks for what, and who used it before.
  ASSERT_EQ(agent->requests().size(), 1u);
  auto request = agent->requests()[0];
  EXPECT_EQ(request["origin"].get<std::string>(), kAsker);
  EXPECT_EQ(request["app"].get<std::string>(), DaemonHarness::SelfApp());
  auto files = request["files"].get<std::vector<Dict>>();
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0]["digest"].get<std::string>(), digest_);
  EXPECT_EQ(files[0]["name"].get<std::string>(), "org/model.onnx");
  EXPECT_EQ(files[0]["size"].get<uint64_t>(), data_.size());
  auto attribution = request["attribution"].get<std::vector<Dict>>();
  ASSERT_EQ(attribution.size(), 1u);
  EXPECT_EQ(attribution[0]["origin"].get<std::string>(), kOwner);
  EXPECT_TRUE(attribution[0]["stored"].get<bool>());
  // Asked again next time; the read was attributed.
  EXPECT_EQ(owner_->TryOpen(kAsker, digest_, nullptr), "");
  EXPECT_EQ(agent->requests().size(), 2u);
  EXPECT_EQ(owner_->Usage(digest_).size(), 2u);
}

TEST_F(ConsentTest, AllowAlwaysWritesAGrantAndDoesNotAskAgain) {
  auto agent = Agent("allow-always");
  EXPECT_EQ(owner_->TryOpen(kAsker, digest_, nullptr), "");
  EXPECT_THAT(GrantTargets(), ::testing::ElementsAre(std::string(kAsker) + " " + digest_));
  EXPECT_EQ(owner_->TryOpen(kAsker, digest_, nullptr), "");
  EXPECT_EQ(agent->requests().size(), 1u);
}

TEST_F(ConsentTest, DenyIsAMissAndIsRememberedSoAPageCannotPromptInALoop) {
  auto agent = Agent("deny");
  std::string refused, absent;
  EXPECT_EQ(owner_->TryOpen(kAsker, digest_, nullptr, &refused), kNotFound);
  EXPECT_EQ(owner_->TryOpen(kAsker, DigestOf("absent"), nullptr, &absent), kNotFound);
  EXPECT_EQ(refused.substr(0, 8), absent.substr(0, 8));
  for (int i = 0; i < 5; ++i) EXPECT_EQ(owner_->TryOpen(kAsker, digest_, nullptr), kNotFound);
  EXPECT_EQ(agent->requests().size(), 1u) << "a denied request must not prompt again";
  EXPECT_TRUE(GrantTargets().empty());
  // Absent files never reach the agent at all.
  EXPECT_EQ(agent->requests().size(), 1u);
}

TEST_F(ConsentTest, NoAnswerWithinTheTimeoutIsARefusalAndTheDialogIsCancelled) {
  owner_->SetSetting("consent-timeout", sdbus::Variant(uint32_t{1}));
  auto agent = Agent(std::nullopt);
  EXPECT_EQ(owner_->TryOpen(kAsker, digest_, nullptr), kNotFound);
  ASSERT_TRUE(agent->WaitForCancels(1));
  EXPECT_EQ(agent->cancelled()[0], agent->requests()[0]["id"].get<std::string>());
}

TEST_F(ConsentTest, IdenticalConcurrentRequestsShareOnePrompt) {
  auto agent = Agent(std::nullopt);
  std::string first_bytes, second_bytes;
  auto first = OpenLater(kAsker, digest_, &first_bytes);
  ASSERT_TRUE(agent->WaitForRequests(1));
  auto second = OpenLater(kAsker, digest_, &second_bytes);
  // A different principal for the same file gets a prompt of its own.
  auto other = OpenLater("https://other.example", digest_);
  ASSERT_TRUE(agent->WaitForRequests(2));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  ASSERT_EQ(agent->requests().size(), 2u);
  agent->Answer(agent->requests()[0]["id"].get<std::string>(), "allow-once");
  agent->Answer(agent->requests()[1]["id"].get<std::string>(), "deny");
  EXPECT_EQ(first.get(), "");
  EXPECT_EQ(second.get(), "");
  EXPECT_EQ(other.get(), kNotFound);
  EXPECT_EQ(first_bytes, data_);
  EXPECT_EQ(second_bytes, data_);
}

TEST_F(ConsentTest, PromptBudgetRefusesUnaskedOnceSpent) {
  owner_->SetSetting("prompts-per-hour", sdbus::Variant(uint32_t{2}));
  auto agent = Agent("allow-once");
  EXPECT_EQ(owner_->TryOpen(kAsker, digest_, nullptr), "");
  EXPECT_EQ(owner_->TryOpen(kAsker, digest_, nullptr), "");
  EXPECT_EQ(owner_->TryOpen(kAsker, digest_, nullptr), kNotFound);
  EXPECT_EQ(agent->requests().size(), 2u);
  // The budget is per principal: another site still gets asked.
  EXPECT_EQ(owner_->TryOpen("https://other.example", digest_, nullptr), "");
  EXPECT_EQ(agent->requests().size(), 3u);
}

TEST_F(ConsentTest, DenyPolicyNeverAsksButGrantsStillWork) {
  owner_->SetSetting("consent-policy", sdbus::Variant(std::string("deny")));
  auto agent = Agent("allow-always");
  EXPECT_EQ(owner_->TryOpen(kAsker, digest_, nullptr), kNotFound);
  EXPECT_TRUE(agent->requests().empty());
  owner_->Grant(DaemonHarness::SelfApp(), kAsker, digest_);
  EXPECT_EQ(owner_->TryOpen(kAsker, digest_, nullptr), "");
  auto settings = owner_->GetSettings();
  EXPECT_EQ(settings["consent-policy"].get<std::string>(), "deny");
  // Settings survive a restart.
  harness_.StopDaemon();
  harness_.StartDaemon();
  auto client = harness_.Connect();
  EXPECT_EQ(client->GetSettings()["consent-policy"].get<std::string>(), "deny");
}

TEST_F(ConsentTest, BadSettingsAreInvalidArgumentNamingTheProblem) {
  for (auto [key, value] : std::vector<std::pair<std::string, sdbus::Variant>>{
           {"consent-policy", sdbus::Variant(std::string("maybe"))},
           {"consent-policy", sdbus::Variant(uint32_t{1})},
           {"consent-timeout", sdbus::Variant(uint32_t{0})},
           {"consent-timeout", sdbus::Variant(uint32_t{4000})},
           {"no-such-key", sdbus::Variant(uint32_t{1})}}) {
    try {
      owner_->SetSetting(key, value);
      ADD_FAILURE() << key << " was accepted";
    } catch (const sdbus::Error& e) {
      EXPECT_EQ(e.getName(), "io.github.costore.Error.InvalidArgument");
      EXPECT_THAT(e.getMessage(), ::testing::HasSubstr(key == "no-such-key" ? "unknown setting" : key));
    }
  }
}

TEST_F(ConsentTest, CallerThatDisconnectsCancelsItsDialog) {
  auto agent = Agent(std::nullopt);
  {
    auto connection = sdbus::createSessionBusConnectionWithAddress(harness_.address());
    auto proxy = sdbus::createProxy(*connection, "io.github.costore", "/io/github/costore");
    auto call = proxy->createMethodCall("io.github.costore.Store1", "Open");
    call << std::string(kAsker) << digest_ << Dict{};
    (void)proxy->callMethod(call, [](sdbus::MethodReply&, const sdbus::Error*) {});
    ASSERT_TRUE(agent->WaitForRequests(1));
  }  // the caller's connection closes here
  ASSERT_TRUE(agent->WaitForCancels(1));
  EXPECT_EQ(agent->cancelled()[0], agent->requests()[0]["id"].get<std::string>());
}

TEST_F(ConsentTest, OnlyOneAgentAtATime) {
  auto first = Agent(std::nullopt);
  ScriptedAgent second(harness_.address(), "allow-always");
  EXPECT_EQ(second.Register(), "io.github.costore.Error.Busy");
  EXPECT_EQ(second.Unregister(), kNotFound);
  EXPECT_EQ(first->Register(), "") << "registering again from the same connection is fine";
  EXPECT_EQ(first->Unregister(), "");
  EXPECT_EQ(second.Register(), "");
  EXPECT_EQ(owner_->TryOpen(kAsker, digest_, nullptr), "");
  EXPECT_TRUE(first->requests().empty());
}

// Starts costore-test-agent in `mode`; returns its pid and its stdout.
pid_t StartAgentProcess(const std::string& mode, FILE** out) {
  int fds[2];
  EXPECT_EQ(pipe(fds), 0);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]);
    execl(COSTORE_TEST_AGENT_PATH, COSTORE_TEST_AGENT_PATH, mode.c_str(), nullptr);
    _exit(127);
  }
  close(fds[1]);
  *out = fdopen(fds[0], "r");
  return pid;
}

std::string ReadLine(FILE* in) {
  char line[256] = {};
  if (fgets(line, sizeof line, in) == nullptr) return "";
  return line;
}

TEST_F(ConsentTest, AgentThatCrashesMidRequestIsARefusalAndIsForgotten) {
  FILE* out = nullptr;
  pid_t pid = StartAgentProcess("hold", &out);
  ASSERT_EQ(ReadLine(out), "registered\n");
  auto open = OpenLater(kAsker, digest_);
  ASSERT_THAT(ReadLine(out), ::testing::StartsWith("request "));
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  fclose(out);
  EXPECT_EQ(open.get(), kNotFound);
  // The dead agent is forgotten: another can register.
  auto next = Agent("allow-once");
  EXPECT_EQ(owner_->TryOpen(kAsker, digest_, nullptr), "");
}

TEST_F(ConsentTest, DaemonStartsTheAgentWhenNoneIsRegistered) {
  harness_.StopDaemon();
  harness_.StartDaemon(
      {"--consent-agent", std::string(COSTORE_TEST_AGENT_PATH) + " allow-once", "--consent-agent-headless"});
  auto client = harness_.Connect();
  std::string bytes;
  EXPECT_EQ(client->TryOpen(kAsker, digest_, &bytes), "") << harness_.DaemonLog();
  EXPECT_EQ(bytes, data_);
  EXPECT_THAT(harness_.DaemonLog(), ::testing::HasSubstr("started the consent agent"));
}

TEST_F(ConsentTest, NoAgentAndNoneToStartIsARefusal) {
  harness_.StopDaemon();
  harness_.StartDaemon({"--consent-agent", "/nonexistent/costore-consent --agent", "--consent-agent-headless"});
  auto client = harness_.Connect();
  EXPECT_EQ(client->TryOpen(kAsker, digest_, nullptr), kNotFound);
  EXPECT_THAT(harness_.DaemonLog(), ::testing::HasSubstr("cannot start the consent agent"));
}

// An agent that exits before registering (costore-consent without a
// display does) ends the wait at once rather than after the start timeout.
TEST_F(ConsentTest, AgentThatExitsAtStartIsARefusalAtOnce) {
  harness_.StopDaemon();
  harness_.StartDaemon({"--consent-agent", "/bin/false", "--consent-agent-headless"});
  auto client = harness_.Connect();
  EXPECT_EQ(client->TryOpen(kAsker, digest_, nullptr), kNotFound);
  EXPECT_THAT(harness_.DaemonLog(), ::testing::HasSubstr("exited before it registered (status 1)"));
  EXPECT_THAT(harness_.DaemonLog(), ::testing::Not(::testing::HasSubstr("did not register in time")));
}

// Without a graphical session the (graphical) agent is never started: the
// one here would allow, so an allowed Open would show that it ran.
TEST_F(ConsentTest, NoGraphicalSessionStartsNoAgent) {
  harness_.StopDaemon();
  ScopedUnsetenv no_display("DISPLAY"), no_wayland("WAYLAND_DISPLAY");
  harness_.StartDaemon({"--consent-agent", std::string(COSTORE_TEST_AGENT_PATH) + " allow-once"});
  auto client = harness_.Connect();
  EXPECT_EQ(client->TryOpen(kAsker, digest_, nullptr), kNotFound);
  EXPECT_THAT(harness_.DaemonLog(), ::testing::HasSubstr("no graphical session"));
  EXPECT_THAT(harness_.DaemonLog(), ::testing::Not(::testing::HasSubstr("started the consent agent")));
}

// "ask-later": the caller is answered at once as a miss; the user is asked
// in the background whether to allow it from now on.
TEST_F(ConsentTest, AskLaterAnswersAtOnceAndAsksForNextTime) {
  owner_->SetSetting("consent-policy", sdbus::Variant(std::string("ask-later")));
  EXPECT_EQ(owner_->GetSettings()["consent-policy"].get<std::string>(), "ask-later");
  auto agent = std::make_unique<ScriptedAgent>(harness_.address(), std::nullopt);  // holds every request
  ASSERT_EQ(agent->Register(), "");
  // Answered although the agent holds the question: the caller never waits.
  EXPECT_EQ(owner_->TryOpen(kAsker, digest_, nullptr), kNotFound);
  ASSERT_TRUE(agent->WaitForRequests(1));
  auto request = agent->requests()[0];
  EXPECT_TRUE(request["deferred"].get<bool>());
  // Asked once: a repeat while the question is open asks nothing more.
  EXPECT_EQ(owner_->TryOpen(kAsker, digest_, nullptr), kNotFound);
  agent->Answer(request["id"].get<std::string>(), "allow-always");
  for (int i = 0; i < 500 && GrantTargets().empty(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_THAT(GrantTargets(), ::testing::ElementsAre(std::string(kAsker) + " " + digest_));
  std::string bytes;
  EXPECT_EQ(owner_->TryOpen(kAsker, digest_, &bytes), "");
  EXPECT_EQ(bytes, data_);
  EXPECT_EQ(agent->requests().size(), 1u);
}

// A deferred "allow once" has no request left to allow: nothing is granted.
TEST_F(ConsentTest, AskLaterAllowOnceGrantsNothing) {
  owner_->SetSetting("consent-policy", sdbus::Variant(std::string("ask-later")));
  auto agent = Agent("allow-once");
  EXPECT_EQ(owner_->TryOpen(kAsker, digest_, nullptr), kNotFound);
  ASSERT_TRUE(agent->WaitForRequests(1));
  EXPECT_TRUE(GrantTargets().empty());
  // Asked again once that answer is in (the budget allows it), and again
  // not served.
  for (int i = 0; i < 200 && agent->requests().size() < 2; ++i) {
    EXPECT_EQ(owner_->TryOpen(kAsker, digest_, nullptr), kNotFound);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(agent->requests().size(), 2u);
  EXPECT_TRUE(GrantTargets().empty());
}

TEST_F(ConsentTest, AgentOfAnotherUidCannotRegister) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to run a process as another uid (CI runs as root)";
  std::string dir = harness_.address().substr(harness_.address().find("path=") + 5);
  dir = dir.substr(0, dir.find_last_of('/'));
  chmod(dir.c_str(), 0755);
  FILE* pipe = popen(("setpriv --reuid=65534 --regid=65534 --clear-groups busctl --user call "
                      "io.github.costore /io/github/costore io.github.costore.Manager1 "
                      "RegisterConsentAgent o /x 2>&1"),
                     "r");
  char buf[512] = {};
  size_t n = fread(buf, 1, sizeof buf - 1, pipe);
  int status = pclose(pipe);
  EXPECT_NE(status, 0);
  EXPECT_THAT(std::string(buf, n), ::testing::HasSubstr("uid 65534"));
}

}  // namespace
}  // namespace costore::test
