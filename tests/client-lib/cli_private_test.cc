// The costore CLI with private files: `put --private`, `get` (and
// `--stream`), `info`, `ls`, `doctor` and `rekey`, run as processes against
// the real costored with a real gnome-keyring on a private bus (the
// integration tests' DaemonHarness and KeyringHarness, which start and stop
// the keyring and the daemon between commands).
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "tests/integration/daemon_harness.h"
#include "tests/integration/keyring_harness.h"

namespace costore::test {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::Not;

constexpr char kSite[] = "https://private.example";
constexpr char kOtherSite[] = "https://other.example";
constexpr int kExitNotFound = 2;
constexpr int kExitKeyring = 6;
constexpr int kExitUnreachable = 9;

struct Ran {
  int status = -1;  // exit status, or -1 if it did not exit normally
  std::string out;
  std::string err;
};

std::string Describe(const std::vector<std::string>& argv, const Ran& ran) {
  std::string text;
  for (const auto& arg : argv) text += arg + " ";
  return text + "-> exit " + std::to_string(ran.status) + "\nstdout:\n" + ran.out + "stderr:\n" + ran.err;
}

class CliPrivateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    keyring_ = std::make_unique<KeyringHarness>(harness_.address(), harness_.scratch("keyring"));
    keyring_->Start();
  }

  // Runs `argv` (argv[0] a path) with the private bus in its environment
  // (DaemonHarness exported it), standard output and error to files.
  Ran Run(const std::vector<std::string>& argv) {
    const std::string out_path = harness_.scratch("stdout"), err_path = harness_.scratch("stderr");
    pid_t pid = fork();
    if (pid == 0) {
      int in = open("/dev/null", O_RDONLY);
      int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      if (in < 0 || out < 0 || err < 0) _exit(126);
      dup2(in, STDIN_FILENO);
      dup2(out, STDOUT_FILENO);
      dup2(err, STDERR_FILENO);
      std::vector<char*> args;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      execv(args[0], args.data());
      _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    Ran ran;
    ran.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    ran.out = ReadFile(out_path);
    ran.err = ReadFile(err_path);
    return ran;
  }

  // `costore ARGS...`
  Ran Costore(std::vector<std::string> args) {
    args.insert(args.begin(), COSTORE_CLI_PATH);
    return Run(args);
  }

  // Runs costore, expecting `status`; returns what it printed.
  Ran Expect(int status, const std::vector<std::string>& args) {
    Ran ran = Costore(args);
    EXPECT_EQ(ran.status, status) << Describe(args, ran);
    return ran;
  }

  std::string Scratch(const std::string& name, const std::string& bytes) {
    std::string path = harness_.scratch(name);
    WriteFile(path, bytes);
    return path;
  }

  DaemonHarness harness_;
  std::unique_ptr<KeyringHarness> keyring_;
};

TEST_F(CliPrivateTest, PutPrivateThenGetGivesTheSameBytesAndInfoSaysPrivate) {
  const std::string model_path = ModelPath("silero_vad.onnx");
  const std::string model = ReadFile(model_path);
  ASSERT_FALSE(model.empty());
  const std::string digest = DigestOf(model);

  Ran put = Expect(0, {"put", "--private", model_path});
  EXPECT_EQ(put.out, digest + "\n");

  // As a memfd, to a file and to standard output; as a pipe.
  Expect(0, {"get", digest, "-o", harness_.scratch("copy.onnx")});
  EXPECT_TRUE(ReadFile(harness_.scratch("copy.onnx")) == model);
  Ran to_stdout = Expect(0, {"get", digest});
  EXPECT_TRUE(to_stdout.out == model);
  Expect(0, {"get", digest.substr(7), "--stream", "-o", harness_.scratch("streamed.onnx")});
  EXPECT_TRUE(ReadFile(harness_.scratch("streamed.onnx")) == model);
  Ran streamed_out = Expect(0, {"get", "--stream", digest});
  EXPECT_TRUE(streamed_out.out == model);

  Ran info = Expect(0, {"info", digest});
  EXPECT_THAT(info.out, HasSubstr("visibility:    private"));
  EXPECT_THAT(info.out, MatchesRegex("(.|\n)*cipher: +(aes-256-gcm|xchacha20-poly1305)\n(.|\n)*"));
  EXPECT_THAT(info.out, HasSubstr("owner:         " COSTORE_CLI_PATH "\n"));
  Ran json = Expect(0, {"info", "--json", digest});
  EXPECT_THAT(json.out, HasSubstr("\"private\": true"));
  EXPECT_THAT(json.out, HasSubstr("\"owner-app\": \"" COSTORE_CLI_PATH "\""));
  EXPECT_THAT(json.out, HasSubstr("\"owner-origin\": \"\""));
  EXPECT_THAT(json.out, Not(HasSubstr("\"cipher\": \"none\"")));

  Ran ls = Expect(0, {"ls"});
  EXPECT_THAT(ls.out, HasSubstr("PRIVATE TO"));
  EXPECT_THAT(ls.out, HasSubstr(digest.substr(7, 12)));
  EXPECT_THAT(ls.out, HasSubstr(COSTORE_CLI_PATH));

  // Nothing in the clear under the store directory.
  for (const std::string& file : FilesBelow(harness_.store_dir())) {
    EXPECT_EQ(file.rfind("blobs/", 0), std::string::npos) << file;
    EXPECT_EQ(ReadFile(harness_.store_dir() + "/" + file).find(model.substr(100000, 64)), std::string::npos) << file;
  }

  // A public copy of the same digest, by another principal, is an entry of
  // its own; info names both, ls DIGEST shows both.
  Expect(0, {"put", model_path, "--origin", kOtherSite});
  info = Expect(0, {"info", digest});
  EXPECT_THAT(info.out, HasSubstr("visibility:    public"));
  EXPECT_THAT(info.out, HasSubstr("cipher:        none"));
  EXPECT_THAT(info.out, HasSubstr("entries:       2"));
  ls = Expect(0, {"ls", digest});
  EXPECT_THAT(ls.out, HasSubstr("PRIVATE TO"));
  EXPECT_EQ(std::count(ls.out.begin(), ls.out.end(), '\n'), 3) << ls.out;
  Ran missing = Expect(kExitNotFound, {"ls", DigestOf("never stored")});
  EXPECT_THAT(missing.err, HasSubstr("no file"));
}

TEST_F(CliPrivateTest, AnotherPrincipalGetsNotFoundUntilGrantedThatFile) {
  const std::string data = RandomBytes(300000, 31);
  const std::string digest = DigestOf(data);
  const std::string never = DigestOf("never stored");
  Expect(0, {"put", "--private", "--origin", kSite, Scratch("data.bin", data)});
  Expect(0, {"get", digest, "--origin", kSite, "-o", harness_.scratch("mine.bin")});
  EXPECT_TRUE(ReadFile(harness_.scratch("mine.bin")) == data);

  // Another origin, and the app itself: NotFound, worded as a miss.
  auto without_digest = [](std::string text, const std::string& d) {
    for (size_t at; (at = text.find(d)) != std::string::npos;) text.replace(at, d.size(), "<digest>");
    return text;
  };
  Ran refused = Expect(kExitNotFound, {"get", digest, "--origin", kOtherSite, "-o", harness_.scratch("x")});
  Ran absent = Expect(kExitNotFound, {"get", never, "--origin", kOtherSite, "-o", harness_.scratch("x")});
  EXPECT_EQ(without_digest(refused.err, digest), without_digest(absent.err, never));
  EXPECT_FALSE(std::filesystem::exists(harness_.scratch("x")));
  Expect(kExitNotFound, {"get", digest, "-o", harness_.scratch("x")});

  // Another app (a copy of the CLI elsewhere is another executable), with
  // the owner's very origin: NotFound too.
  const std::string other_app = harness_.scratch("other-app");
  std::filesystem::copy_file(COSTORE_CLI_PATH, other_app);
  std::filesystem::permissions(other_app, std::filesystem::perms::owner_all);
  auto other = [&](std::vector<std::string> args) {
    args.insert(args.begin(), other_app);
    return Run(args);
  };
  Ran stranger = other({"get", digest, "--origin", kSite, "--stream", "-o", harness_.scratch("x")});
  EXPECT_EQ(stranger.status, kExitNotFound) << stranger.err;
  EXPECT_THAT(stranger.err, HasSubstr("costore: get " + digest + ": "));

  // A grant for every file does not reach private files; one for this file does.
  Expect(0, {"grant", "*", "--app", other_app, "--origin", kSite});
  EXPECT_EQ(other({"get", digest, "--origin", kSite, "-o", harness_.scratch("x")}).status, kExitNotFound);
  Expect(0, {"grant", digest, "--app", other_app, "--origin", kSite});
  Ran granted = other({"get", digest, "--origin", kSite, "-o", harness_.scratch("theirs.bin")});
  ASSERT_EQ(granted.status, 0) << granted.err;
  EXPECT_TRUE(ReadFile(harness_.scratch("theirs.bin")) == data);

  Ran ls = Expect(0, {"ls"});
  EXPECT_THAT(ls.out, HasSubstr(std::string(kSite) + " (" + COSTORE_CLI_PATH + ")"));
  Ran json = Expect(0, {"ls", "--json"});
  EXPECT_THAT(json.out, HasSubstr("\"owner-origin\": \"" + std::string(kSite) + "\""));
}

TEST_F(CliPrivateTest, DoctorTellsTheKeyringStatesApartWithItsExitCode) {
  Ran fresh = Expect(0, {"doctor"});
  EXPECT_THAT(fresh.out, HasSubstr("keyring:            ready: no master key yet"));
  EXPECT_THAT(fresh.out, HasSubstr("private files:      none yet; they can be stored\n"));
  EXPECT_THAT(fresh.out, HasSubstr("master key:         none yet"));

  const std::string data = RandomBytes(100000, 32);
  const std::string digest = DigestOf(data);
  Expect(0, {"put", "--private", Scratch("data.bin", data)});
  Ran ready = Expect(0, {"doctor"});
  EXPECT_THAT(ready.out, HasSubstr("keyring:            ready: unlocked, and it holds costore's master key\n"));
  EXPECT_THAT(ready.out, HasSubstr("private files:      1 private file; it can be opened\n"));
  EXPECT_THAT(ready.out, HasSubstr("master key:         version 1\n"));
  EXPECT_THAT(ready.out, MatchesRegex("(.|\n)*new private files:  (aes-256-gcm|xchacha20-poly1305), in .* chunks\n(.|\n)*"));
  EXPECT_THAT(ready.out, Not(HasSubstr("rekey:")));
  // One fact a line, each "label: value".
  for (size_t at = 0, end; at < ready.out.size(); at = end + 1) {
    end = ready.out.find('\n', at);
    EXPECT_THAT(ready.out.substr(at, end - at), MatchesRegex("[a-z ]+: +[^ ].*"));
  }
  Ran json = Expect(0, {"doctor", "--json"});
  EXPECT_THAT(json.out, HasSubstr("\"state\": \"ready\""));
  EXPECT_THAT(json.out, HasSubstr("\"usable\": true"));
  EXPECT_THAT(json.out, HasSubstr("\"private-files\": 1"));

  // Locked: a distinct state, exit 6; the file is unavailable with the same words.
  keyring_->LockDefaultCollection();
  Ran locked = Expect(kExitKeyring, {"doctor"});
  EXPECT_THAT(locked.out, HasSubstr("keyring:            locked\n"));
  EXPECT_THAT(locked.out, HasSubstr("private files:      1 private file; unavailable until the keyring is fixed\n"));
  EXPECT_THAT(locked.out, HasSubstr("public files:       not affected"));
  Ran get_locked = Expect(kExitKeyring, {"get", digest, "-o", harness_.scratch("x")});
  EXPECT_THAT(get_locked.err, AllOf(HasSubstr("costore: get " + digest + ": "), HasSubstr("locked")));

  // No keyring at all: another state, exit 6, and a private put says why.
  keyring_->Stop();
  Ran gone = Expect(kExitKeyring, {"doctor"});
  EXPECT_THAT(gone.out, HasSubstr("keyring:            unavailable: no Secret Service (keyring daemon) on the session bus\n"));
  EXPECT_THAT(gone.out, HasSubstr("details:            "));
  EXPECT_THAT(gone.out, HasSubstr("master key:         version 1"));
  EXPECT_NE(gone.out, locked.out);
  Ran json_gone = Expect(kExitKeyring, {"doctor", "--json"});
  EXPECT_THAT(json_gone.out, HasSubstr("\"state\": \"no-service\""));
  EXPECT_THAT(json_gone.out, HasSubstr("\"usable\": false"));
  const std::string other = RandomBytes(20000, 33);
  const std::string other_path = Scratch("other.bin", other);
  Ran put_gone = Expect(kExitKeyring, {"put", "--private", other_path});
  EXPECT_THAT(put_gone.err, AllOf(HasSubstr("costore: put " + other_path + ": "), HasSubstr("no Secret Service")));
  // Public files go on.
  Expect(0, {"put", other_path});
  Expect(0, {"get", DigestOf(other), "-o", harness_.scratch("public.bin")});
  EXPECT_TRUE(ReadFile(harness_.scratch("public.bin")) == other);

  // Back again: ready, exit 0.
  keyring_->Start();
  Expect(0, {"doctor"});
  Expect(0, {"get", digest, "-o", harness_.scratch("again.bin")});
  EXPECT_TRUE(ReadFile(harness_.scratch("again.bin")) == data);
}

TEST_F(CliPrivateTest, RekeyRoundTripAndAnInterruptedOneResumed) {
  Ran nothing = Expect(0, {"rekey"});
  EXPECT_THAT(nothing.out, HasSubstr("nothing to re-wrap"));

  std::vector<std::string> files, digests;
  for (int i = 0; i < 4; ++i) {
    files.push_back(RandomBytes(40000 + i, 40 + i));
    digests.push_back(DigestOf(files.back()));
    Expect(0, {"put", "--private", "--origin", kSite, Scratch("f" + std::to_string(i), files.back())});
  }
  auto all_open = [&] {
    for (size_t i = 0; i < files.size(); ++i) {
      const std::string copy = harness_.scratch("copy" + std::to_string(i));
      Expect(0, {"get", digests[i], "--origin", kSite, "-o", copy});
      EXPECT_TRUE(ReadFile(copy) == files[i]) << i;
    }
  };

  Ran rekey = Expect(0, {"rekey"});
  EXPECT_THAT(rekey.out, HasSubstr("now wrapped by master key version 2"));
  EXPECT_THAT(rekey.out, HasSubstr("files re-wrapped:  4\n"));
  EXPECT_THAT(rekey.out, HasSubstr("resumed:           no"));
  EXPECT_THAT(rekey.out, HasSubstr("old keys removed:  1"));
  Ran json = Expect(0, {"rekey", "--json"});
  EXPECT_THAT(json.out, HasSubstr("\"files-rewrapped\": 4"));
  EXPECT_THAT(json.out, HasSubstr("\"key-version\": 3"));
  EXPECT_THAT(json.out, HasSubstr("\"resumed\": false"));
  all_open();

  // A daemon killed after re-wrapping two data keys (its test hook): the
  // CLI says the daemon went away; doctor says a rekey is pending; every
  // file still opens; the rerun resumes it.
  harness_.StopDaemon();
  setenv("COSTORE_TEST_REKEY_KILL_AFTER", "2", 1);
  harness_.StartDaemon();
  unsetenv("COSTORE_TEST_REKEY_KILL_AFTER");
  Ran killed = Expect(kExitUnreachable, {"rekey"});
  EXPECT_THAT(killed.err, HasSubstr("costore: rekey: "));
  harness_.StopDaemon();
  harness_.StartDaemon();
  Ran pending = Expect(0, {"doctor"});
  EXPECT_THAT(pending.out, HasSubstr("rekey:              interrupted; run \"costore rekey\" to finish it"));
  all_open();
  Ran resumed = Expect(0, {"rekey"});
  EXPECT_THAT(resumed.out, HasSubstr("now wrapped by master key version 4"));
  EXPECT_THAT(resumed.out, HasSubstr("files re-wrapped:  2\n"));
  EXPECT_THAT(resumed.out, HasSubstr("resumed:           yes"));
  EXPECT_THAT(Expect(0, {"doctor"}).out, Not(HasSubstr("rekey:")));
  EXPECT_EQ(keyring_->MasterKeys().size(), 1u);

  harness_.StopDaemon();
  harness_.StartDaemon();
  all_open();

  // Without the keyring, rekey says so.
  keyring_->Stop();
  Ran no_keyring = Expect(kExitKeyring, {"rekey"});
  EXPECT_THAT(no_keyring.err, AllOf(HasSubstr("costore: rekey: "), HasSubstr("no Secret Service")));
}

}  // namespace
}  // namespace costore::test
