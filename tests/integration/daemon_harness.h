// DaemonHarness: a private session bus (dbus-daemon) with the real costored
// binary on it, a fresh store directory, and clients that speak the contract
// through the generated proxies. Each test gets its own; nothing touches the
// user's real bus or store.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <sdbus-c++/sdbus-c++.h>

#include "costore-ipc/Manager1_proxy.h"
#include "costore-ipc/Store1_proxy.h"
#include "tests/daemon/engine/test_util.h"

namespace costore::test {

using Dict = std::map<std::string, sdbus::Variant>;

// One client connection to the private bus, as one app.
class BusClient : public sdbus::ProxyInterfaces<io::github::costore::Store1_proxy,
                                                io::github::costore::Manager1_proxy> {
 public:
  explicit BusClient(std::unique_ptr<sdbus::IConnection> connection);
  virtual ~BusClient();

  // Store from a descriptor; returns the D-Bus error name ("" on success)
  // and fills *info or *error_message.
  std::string TryStore(const std::string& origin, const std::string& digest, int fd,
                       const Dict& options, Dict* info = nullptr, std::string* error_message = nullptr);
  std::string TryOpen(const std::string& origin, const std::string& digest, std::string* bytes,
                      std::string* error_message = nullptr, Dict* info = nullptr);

  // (what, digest) of every Changed signal seen so far.
  std::vector<std::pair<std::string, std::string>> changes();
  sdbus::IConnection& connection() { return *connection_; }

 private:
  void onChanged(const std::string& what, const std::string& digest) override;
  std::unique_ptr<sdbus::IConnection> connection_;
  std::mutex mu_;
  std::vector<std::pair<std::string, std::string>> changes_;
};

class DaemonHarness {
 public:
  DaemonHarness();
  ~DaemonHarness();

  // Starts costored (with extra arguments) and waits until it owns its name.
  void StartDaemon(const std::vector<std::string>& extra_args = {});
  // Replaces the harness's costored with the binary at `path` (say, a
  // daemon built from another commit, for an A/B benchmark), with a store
  // of its own, on the harness's bus; waits until it owns the name and
  // returns its pid (the caller stops it). Throws std::runtime_error with
  // its log when it does not start.
  pid_t StartOtherDaemon(const std::string& path);
  // Sends `signo` and waits; returns the raw wait status.
  int StopDaemon(int signo = SIGTERM);
  pid_t daemon_pid() const { return daemon_pid_; }
  std::string DaemonLog() const;
  // The daemon's peak resident memory (VmHWM), in KiB.
  long DaemonPeakRssKiB() const;

  std::unique_ptr<BusClient> Connect();
  const std::string& address() const { return address_; }
  const std::string& store_dir() const { return store_dir_; }
  std::string scratch(const std::string& name) const { return dir_.Join(name); }
  // The app under which the daemon knows this test process.
  static std::string SelfApp();

 private:
  TempDir dir_;
  std::string address_;
  std::string store_dir_;
  pid_t bus_pid_ = -1;
  pid_t daemon_pid_ = -1;
};

// The first report of a sanitizer (ASan, LSan, UBSan, TSan) in a process's
// log, up to 40 lines of it; "" if there is none. The harness fails the
// test when a daemon it ran wrote one (scripts/test-sanitizers).
std::string SanitizerReport(const std::string& log);

// "sha256:<hex>" of `bytes`.
std::string DigestOf(const std::string& bytes);
// The file at `path` (the real model files live in ../shared/data/models).
std::string ModelPath(const std::string& file_name);

}  // namespace costore::test
