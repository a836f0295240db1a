#include "stall_watchdog.h"

#include <time.h>

#include <algorithm>
#include <cstdint>
#include <memory>

#include <costore-ipc/names.h>
#include <sdbus-c++/sdbus-c++.h>

namespace costore::client::internal {
namespace {

using Clock = StallClock;
using std::chrono::milliseconds;
using namespace std::chrono_literals;

// The daemon's unique name and pid, asked of the bus itself (which answers
// even when costored does not). Throws sdbus::Error when the name has no
// owner (not started yet, or gone).
struct DaemonIdentity {
  std::string unique_name;
  uint32_t pid = 0;
};

DaemonIdentity LookUpDaemon(sdbus::IConnection& connection, milliseconds timeout) {
  auto bus = sdbus::createProxy(connection, "org.freedesktop.DBus", "/org/freedesktop/DBus");
  DaemonIdentity identity;
  auto owner = bus->createMethodCall("org.freedesktop.DBus", "GetNameOwner");
  owner << std::string(ipc::kBusName);
  bus->callMethod(owner, timeout) >> identity.unique_name;
  auto pid = bus->createMethodCall("org.freedesktop.DBus", "GetConnectionUnixProcessID");
  pid << identity.unique_name;
  bus->callMethod(pid, timeout) >> identity.pid;
  return identity;
}

class DbusPinger final : public Pinger {
 public:
  void Ping(milliseconds interval, milliseconds reply_timeout) override {
    if (look_up_again_) {
      peer_.reset();
      look_up_again_ = false;
    }
    try {
      // The session bus of now, not of the first call: a connection lives
      // only while some call is overdue.
      if (!connection_) connection_ = sdbus::createSessionBusConnection();
      if (!peer_) {
        daemon_ = LookUpDaemon(*connection_, interval);
        peer_ = sdbus::createProxy(*connection_, daemon_.unique_name, "/");
      }
      auto ping = peer_->createMethodCall("org.freedesktop.DBus.Peer", "Ping");
      pending_ = true;
      peer_->callMethod(
          ping,
          [this](sdbus::MethodReply& /*reply*/, const sdbus::Error* error) {
            pending_ = false;
            if (!error) {
              last_answer_ = Clock::now();
            } else if (error->getName() != "org.freedesktop.DBus.Error.NoReply" &&
                       error->getName() != "org.freedesktop.DBus.Error.Timeout") {
              look_up_again_ = true;  // the name changed hands, or its owner left
            }
          },
          std::chrono::duration_cast<std::chrono::microseconds>(reply_timeout));
    } catch (const sdbus::Error&) {
      // No owner (yet), or no bus: no answer either.
      pending_ = false;
      peer_.reset();
    }
  }

  bool Pending() const override { return pending_; }
  bool Silent() const override { return pending_ || look_up_again_ || !peer_; }
  std::optional<Clock::time_point> LastAnswer() const override { return last_answer_; }
  uint32_t DaemonPid() const override { return daemon_.pid; }

  Wait NextWait() const override {
    Wait wait;
    if (!connection_) return wait;
    const sdbus::IConnection::PollData data = connection_->getEventLoopPollData();
    wait.fd = data.fd;
    wait.events = data.events;
    if (data.timeout_usec != UINT64_MAX) {
      timespec ts{};
      ::clock_gettime(CLOCK_MONOTONIC, &ts);
      const uint64_t now_usec = static_cast<uint64_t>(ts.tv_sec) * 1'000'000 + static_cast<uint64_t>(ts.tv_nsec) / 1000;
      wait.until = Clock::now() + std::chrono::microseconds(data.timeout_usec > now_usec ? data.timeout_usec - now_usec : 0);
    }
    return wait;
  }

  void Process() override {
    if (!connection_) return;
    try {
      while (connection_->processPendingRequest()) {
      }
    } catch (const sdbus::Error&) {
      // The ping connection broke: start over with a new one.
      pending_ = false;
      peer_.reset();
      connection_.reset();
    }
  }

 private:
  std::optional<Clock::time_point> last_answer_;
  bool pending_ = false;
  bool look_up_again_ = false;
  DaemonIdentity daemon_;
  std::unique_ptr<sdbus::IConnection> connection_;
  std::unique_ptr<sdbus::IProxy> peer_;  // the daemon's unique name, not the well-known one
};

}  // namespace

std::unique_ptr<Pinger> MakeDbusPinger() { return std::make_unique<DbusPinger>(); }

std::string StallMessage(uint32_t pid, milliseconds silence) {
  return (pid ? "costored (pid " + std::to_string(pid) + ")" : std::string("costored")) +
         " stopped answering: no reply to a ping for " + DescribeSeconds(silence);
}

std::string DescribeSeconds(milliseconds duration) {
  const int64_t ms = duration.count();
  if (ms % 1000 == 0 || ms >= 10'000) return std::to_string((ms + 500) / 1000) + " s";
  return std::to_string(ms / 1000) + "." + std::to_string((ms % 1000) / 100) + " s";
}

StallWatchdog::StallWatchdog(milliseconds timeout, int bus_fd, int progress_fd, StallRegistry& registry)
    : registry_(registry) {
  watch_.timeout = timeout;
  watch_.bus_fd = bus_fd;
  watch_.progress_fd = progress_fd;
  if (timeout > 0ms) {
    registry_.Arm(watch_);
    armed_ = true;
  }
}

StallWatchdog::~StallWatchdog() { Finish(); }

void StallWatchdog::Finish() {
  if (!armed_) return;
  armed_ = false;
  registry_.Disarm(watch_);
}

std::optional<std::string> StallWatchdog::Stalled() const { return watch_.stalled; }

std::optional<std::string> StallWatchdog::SilentFor(milliseconds at_least) const {
  if (watch_.stalled) return watch_.stalled;
  if (watch_.silence < at_least || watch_.silence == 0ms) return std::nullopt;
  return StallMessage(watch_.daemon_pid, watch_.silence);
}

}  // namespace costore::client::internal
