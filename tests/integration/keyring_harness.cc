#include "tests/integration/keyring_harness.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sdbus-c++/sdbus-c++.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <stdexcept>
#include <thread>

namespace costore::test {

KeyringHarness::KeyringHarness(std::string bus_address, std::string dir, std::string password)
    : address_(std::move(bus_address)), dir_(std::move(dir)), password_(std::move(password)) {
  for (const char* sub : {"", "/home", "/data", "/config", "/runtime"}) {
    std::string path = dir_ + sub;
    mkdir(path.c_str(), 0700);
    chmod(path.c_str(), 0700);
  }
}

KeyringHarness::~KeyringHarness() { Stop(); }

void KeyringHarness::Start() {
  if (pid_ > 0) return;
  int input[2];
  if (pipe2(input, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
  const std::string log = dir_ + "/gnome-keyring.log";
  pid_ = fork();
  if (pid_ == 0) {
    dup2(input[0], STDIN_FILENO);
    int out = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (out >= 0) {
      dup2(out, STDOUT_FILENO);
      dup2(out, STDERR_FILENO);
    }
    setenv("DBUS_SESSION_BUS_ADDRESS", address_.c_str(), 1);
    setenv("HOME", (dir_ + "/home").c_str(), 1);
    setenv("XDG_DATA_HOME", (dir_ + "/data").c_str(), 1);
    setenv("XDG_CONFIG_HOME", (dir_ + "/config").c_str(), 1);
    setenv("XDG_RUNTIME_DIR", (dir_ + "/runtime").c_str(), 1);
    unsetenv("GNOME_KEYRING_CONTROL");
    execlp("gnome-keyring-daemon", "gnome-keyring-daemon", "--foreground", "--unlock", "--components=secrets",
           static_cast<char*>(nullptr));
    _exit(127);
  }
  close(input[0]);
  // The login password on stdin, then end of file.
  ssize_t ignored = write(input[1], password_.data(), password_.size());
  (void)ignored;
  close(input[1]);

  auto connection = sdbus::createSessionBusConnectionWithAddress(address_);
  auto bus = sdbus::createProxy(*connection, "org.freedesktop.DBus", "/org/freedesktop/DBus");
  for (int i = 0; i < 1000; ++i) {
    int status;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      throw std::runtime_error("gnome-keyring-daemon exited at start; see " + log);
    }
    bool owned = false;
    bus->callMethod("NameHasOwner").onInterface("org.freedesktop.DBus").withArguments("org.freedesktop.secrets")
        .storeResultsTo(owned);
    if (owned) {
      try {
        auto secrets = sdbus::createProxy(*connection, "org.freedesktop.secrets", "/org/freedesktop/secrets");
        sdbus::ObjectPath alias;
        secrets->callMethod("ReadAlias").onInterface("org.freedesktop.Secret.Service").withArguments("default")
            .storeResultsTo(alias);
        if (alias != "/") return;
      } catch (const sdbus::Error&) {
        // not serving yet
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  throw std::runtime_error("gnome-keyring-daemon did not serve a default collection within 20 s; see " + log);
}

void KeyringHarness::Stop() {
  if (pid_ <= 0) return;
  kill(pid_, SIGTERM);
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

std::string KeyringHarness::Run(const std::vector<std::string>& argv, int* status) {
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
  pid_t pid = fork();
  if (pid == 0) {
    dup2(out[1], STDOUT_FILENO);
    dup2(out[1], STDERR_FILENO);
    setenv("DBUS_SESSION_BUS_ADDRESS", address_.c_str(), 1);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
  close(out[1]);
  std::string text;
  char buf[4096];
  ssize_t n;
  while ((n = read(out[0], buf, sizeof buf)) > 0) text.append(buf, static_cast<size_t>(n));
  close(out[0]);
  waitpid(pid, status, 0);
  return text;
}

void KeyringHarness::LockDefaultCollection() {
  int status = 0;
  std::string out = Run({COSTORE_TEST_KEYRING_PATH, "lock"}, &status);
  if (status != 0) throw std::runtime_error("locking the keyring failed: " + out);
}

std::vector<std::pair<std::string, std::string>> KeyringHarness::MasterKeys() {
  int status = 0;
  std::string out = Run({COSTORE_TEST_KEYRING_PATH, "keys"}, &status);
  if (status != 0) throw std::runtime_error("listing the keyring failed: " + out);
  std::vector<std::pair<std::string, std::string>> keys;
  size_t at = 0;
  while (at < out.size()) {
    size_t end = out.find('\n', at);
    if (end == std::string::npos) end = out.size();
    std::string line = out.substr(at, end - at);
    size_t space = line.find(' ');
    if (space != std::string::npos) keys.emplace_back(line.substr(0, space), line.substr(space + 1));
    at = end + 1;
  }
  std::sort(keys.begin(), keys.end());
  return keys;
}

void KeyringHarness::ClearMasterKeys() {
  int status = 0;
  std::string out = Run({COSTORE_TEST_KEYRING_PATH, "clear"}, &status);
  if (status != 0) throw std::runtime_error("clearing the keyring failed: " + out);
}

std::string KeyringHarness::SecretToolSearch() {
  int status = 0;
  return Run({"secret-tool", "search", "--all", "xdg:schema", "io.github.costore.MasterKey"}, &status);
}

std::string HexToBytes(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  }
  return out;
}

}  // namespace costore::test
