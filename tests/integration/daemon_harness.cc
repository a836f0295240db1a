#include "tests/integration/daemon_harness.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <thread>

#include "costore-ipc/names.h"

extern char** environ;

namespace costore::test {
namespace {

pid_t Spawn(const std::vector<std::string>& argv, int stdout_fd, int stderr_fd) {
  pid_t pid = fork();
  if (pid == 0) {
    if (stdout_fd >= 0) dup2(stdout_fd, STDOUT_FILENO);
    if (stderr_fd >= 0) dup2(stderr_fd, STDERR_FILENO);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
  return pid;
}

// A sanitized costored is stopped with SIGTERM, so that it exits and
// LeakSanitizer checks it; otherwise a kill is quicker.
#ifdef COSTORE_SANITIZED
constexpr int kStopSignal = SIGTERM;
#else
constexpr int kStopSignal = SIGKILL;
#endif

// Waits for `pid` for up to `seconds`, then kills it.
void StopWithin(pid_t pid, int signo, int seconds) {
  kill(pid, signo);
  for (int i = 0; i < seconds * 100; ++i) {
    if (waitpid(pid, nullptr, WNOHANG) == pid) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
}

bool NameHasOwner(sdbus::IConnection& connection, const std::string& name) {
  auto proxy = sdbus::createProxy(connection, "org.freedesktop.DBus", "/org/freedesktop/DBus");
  bool has = false;
  proxy->callMethod("NameHasOwner").onInterface("org.freedesktop.DBus").withArguments(name).storeResultsTo(has);
  return has;
}

}  // namespace

// ---------------------------------------------------------------------------

BusClient::BusClient(std::unique_ptr<sdbus::IConnection> connection)
    : ProxyInterfaces(*connection, ipc::kBusName, ipc::kObjectPath), connection_(std::move(connection)) {
  registerProxy();
  connection_->enterEventLoopAsync();
}

BusClient::~BusClient() {
  unregisterProxy();
  connection_->leaveEventLoop();
}

void BusClient::onChanged(const std::string& what, const std::string& digest) {
  std::lock_guard<std::mutex> lock(mu_);
  changes_.emplace_back(what, digest);
}

std::vector<std::pair<std::string, std::string>> BusClient::changes() {
  std::lock_guard<std::mutex> lock(mu_);
  return changes_;
}

std::string BusClient::TryStore(const std::string& origin, const std::string& digest, int fd,
                                const Dict& options, Dict* info, std::string* error_message) {
  try {
    Dict out = Store(origin, digest, sdbus::UnixFd(fd), options);
    if (info) *info = out;
    return "";
  } catch (const sdbus::Error& e) {
    if (error_message) *error_message = e.getMessage();
    return e.getName();
  }
}

std::string BusClient::TryOpen(const std::string& origin, const std::string& digest, std::string* bytes,
                               std::string* error_message, Dict* info) {
  try {
    auto [fd, out] = Open(origin, digest, {});
    if (bytes) *bytes = ReadFd(fd.get());
    if (info) *info = out;
    return "";
  } catch (const sdbus::Error& e) {
    if (error_message) *error_message = e.getMessage();
    return e.getName();
  }
}

// ---------------------------------------------------------------------------

DaemonHarness::DaemonHarness() {
  // Feeder threads may write into a pipe the daemon stopped reading.
  signal(SIGPIPE, SIG_IGN);
  store_dir_ = dir_.Join("store");
  std::string config = dir_.Join("bus.conf");
  std::ofstream(config) << R"(<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:dir=)" << dir_.path() << R"(</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
    <allow user="*"/>
  </policy>
</busconfig>
)";
  int address_pipe[2];
  if (pipe2(address_pipe, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
  int bus_log = open(dir_.Join("bus.log").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  bus_pid_ = Spawn({"dbus-daemon", "--config-file=" + config, "--nofork", "--print-address=1"},
                   address_pipe[1], bus_log);
  close(address_pipe[1]);
  close(bus_log);
  std::string line;
  char c;
  while (read(address_pipe[0], &c, 1) == 1 && c != '\n') line += c;
  close(address_pipe[0]);
  if (line.empty()) throw std::runtime_error("dbus-daemon did not print its address");
  address_ = line;
  // Child processes (the daemon, CLI runs) find the private bus here.
  setenv("DBUS_SESSION_BUS_ADDRESS", address_.c_str(), 1);
  StartDaemon();
}

DaemonHarness::~DaemonHarness() {
  if (daemon_pid_ > 0) {
    StopWithin(daemon_pid_, kStopSignal, 30);
    daemon_pid_ = -1;
  }
  if (bus_pid_ > 0) {
    kill(bus_pid_, SIGTERM);
    waitpid(bus_pid_, nullptr, 0);
  }
  // Every daemon a test ran logs to a *.log here (costored.log,
  // costored-b.log, a test's own): a sanitizer report in any is a failure,
  // though the daemon may have gone on (TSan) or been killed since.
  for (const auto& entry : std::filesystem::directory_iterator(dir_.path())) {
    if (entry.path().extension() != ".log") continue;
    const std::string report = SanitizerReport(ReadFile(entry.path().string()));
    if (!report.empty()) ADD_FAILURE() << "a sanitizer reported in " << entry.path().filename() << ":\n" << report;
  }
}

pid_t DaemonHarness::StartOtherDaemon(const std::string& path) {
  auto connection = sdbus::createSessionBusConnectionWithAddress(address_);
  auto bus = sdbus::createProxy(*connection, "org.freedesktop.DBus", "/org/freedesktop/DBus");
  auto has_owner = [&] {
    bool has = false;
    bus->callMethod("NameHasOwner")
        .onInterface("org.freedesktop.DBus")
        .withArguments(std::string(costore::ipc::kBusName))
        .storeResultsTo(has);
    return has;
  };
  StopDaemon(SIGTERM);
  for (int i = 0; i < 500 && has_owner(); ++i) ::usleep(10'000);  // the bus sees it gone
  const std::string log = scratch("costored-b.log");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
  // A store of its own: the harness's daemon already made one, maybe with a
  // newer catalog schema than this binary knows.
  std::vector<std::string> argv = {path, "--store", scratch("store-b"), "--verbose"};
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::strncmp(*e, "DBUS_SESSION_BUS_ADDRESS=", 25) != 0) env_strings.emplace_back(*e);
  }
  env_strings.push_back("DBUS_SESSION_BUS_ADDRESS=" + address_);
  std::vector<char*> env;
  for (auto& e : env_strings) env.push_back(e.data());
  env.push_back(nullptr);
  pid_t pid = -1;
  const int err = posix_spawn(&pid, path.c_str(), &actions, nullptr, args.data(), env.data());
  posix_spawn_file_actions_destroy(&actions);
  if (err != 0) {
    throw std::runtime_error("spawn " + path + ": " + std::strerror(err));
  }
  for (int i = 0; i < 1000; ++i) {
    if (has_owner()) return pid;
    if (::waitpid(pid, nullptr, WNOHANG) == pid) {
      std::ifstream in(log);
      throw std::runtime_error(path + " exited at start:\n" + std::string(std::istreambuf_iterator<char>(in), {}));
    }
    ::usleep(10'000);
  }
  std::ifstream in(log);
  throw std::runtime_error(path + " did not take its bus name:\n" + std::string(std::istreambuf_iterator<char>(in), {}));
}


void DaemonHarness::StartDaemon(const std::vector<std::string>& extra_args) {
  std::vector<std::string> argv = {COSTORED_PATH, "--store", store_dir_, "--verbose"};
  // No consent agent is started unless a test asks for one.
  if (std::find(extra_args.begin(), extra_args.end(), "--consent-agent") == extra_args.end()) {
    argv.insert(argv.end(), {"--consent-agent", ""});
  }
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  int log = open(dir_.Join("costored.log").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  daemon_pid_ = Spawn(argv, -1, log);
  close(log);
  auto connection = sdbus::createSessionBusConnectionWithAddress(address_);
  for (int i = 0; i < 1000; ++i) {
    if (NameHasOwner(*connection, ipc::kBusName)) return;
    int status;
    if (waitpid(daemon_pid_, &status, WNOHANG) == daemon_pid_) {
      daemon_pid_ = -1;
      throw std::runtime_error("costored exited at start:\n" + DaemonLog());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  throw std::runtime_error("costored did not take its bus name:\n" + DaemonLog());
}

int DaemonHarness::StopDaemon(int signo) {
  int status = 0;
  if (daemon_pid_ <= 0) return status;
  kill(daemon_pid_, signo);
  waitpid(daemon_pid_, &status, 0);
  daemon_pid_ = -1;
  return status;
}

std::string DaemonHarness::DaemonLog() const { return ReadFile(dir_.Join("costored.log")); }

long DaemonHarness::DaemonPeakRssKiB() const {
  std::ifstream in("/proc/" + std::to_string(daemon_pid_) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  }
  return -1;
}

std::unique_ptr<BusClient> DaemonHarness::Connect() {
  return std::make_unique<BusClient>(sdbus::createSessionBusConnectionWithAddress(address_));
}

std::string DaemonHarness::SelfApp() {
  return std::filesystem::read_symlink("/proc/self/exe").string();
}

// ---------------------------------------------------------------------------

std::string SanitizerReport(const std::string& log) {
  static constexpr const char* kMarkers[] = {
      "ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "WARNING: ThreadSanitizer", "ERROR: ThreadSanitizer",
      "runtime error: ",  // UBSan
      "SUMMARY: UndefinedBehaviorSanitizer"};
  size_t first = std::string::npos;
  for (const char* marker : kMarkers) first = std::min(first, log.find(marker));
  if (first == std::string::npos) return "";
  size_t start = log.rfind('\n', first);
  start = start == std::string::npos ? 0 : start + 1;
  size_t end = start;
  for (int lines = 0; lines < 40 && end != std::string::npos; ++lines) {
    end = log.find('\n', end + 1);
  }
  return log.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

std::string DigestOf(const std::string& bytes) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(bytes.data(), bytes.size(), md, &len, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "sha256:";
  for (unsigned i = 0; i < len; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 0xf];
  }
  return out;
}

std::string ModelPath(const std::string& file_name) {
  const char* source = std::getenv("COSTORE_SOURCE_DIR");
  std::string path = std::string(source ? source : COSTORE_DEFAULT_SOURCE_DIR) + "/../shared/data/models/" + file_name;
  if (!std::filesystem::exists(path)) {
    ADD_FAILURE() << "the model file " << path
                  << " is missing: the tests read the real models from ../shared/data/models/";
  }
  return path;
}

}  // namespace costore::test
