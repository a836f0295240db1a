#include "stall_watchdog.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <memory>

#include <costore-ipc/names.h>
#include <sdbus-c++/sdbus-c++.h>

namespace costore::client::internal {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using namespace std::chrono_literals;

// How often a silent daemon is pinged: a few times per timeout, at most
// every 5 s (a ping costs the daemon next to nothing).
milliseconds PingInterval(milliseconds timeout) { return std::clamp(timeout / 6, milliseconds(50), milliseconds(5000)); }

int PollTimeoutMs(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
  return static_cast<int>(std::clamp<int64_t>(left + 1, 0, 60'000));
}

int64_t OffsetOf(int fd) { return fd >= 0 ? ::lseek(fd, 0, SEEK_CUR) : -1; }

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

}  // namespace

std::string StallMessage(uint32_t pid, milliseconds silence) {
  return (pid ? "costored (pid " + std::to_string(pid) + ")" : std::string("costored")) +
         " stopped answering: no reply to a ping for " + DescribeSeconds(silence);
}

std::string DescribeSeconds(milliseconds duration) {
  const int64_t ms = duration.count();
  if (ms % 1000 == 0 || ms >= 10'000) return std::to_string((ms + 500) / 1000) + " s";
  return std::to_string(ms / 1000) + "." + std::to_string((ms % 1000) / 100) + " s";
}

StallWatchdog::StallWatchdog(milliseconds timeout, int bus_fd, int progress_fd)
    : timeout_(timeout), bus_fd_(bus_fd), progress_fd_(progress_fd) {
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  // Without an eventfd the call goes unwatched, as with no timeout at all.
  if (wake_fd_ >= 0 && timeout_ > 0ms) thread_ = std::thread([this] { Watch(); });
}

StallWatchdog::~StallWatchdog() {
  Finish();
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void StallWatchdog::Finish() {
  if (finished_.exchange(true)) return;
  if (!thread_.joinable()) return;
  uint64_t one = 1;
  [[maybe_unused]] ssize_t ignored = ::write(wake_fd_, &one, sizeof one);
  thread_.join();
}

std::optional<std::string> StallWatchdog::Stalled() const {
  std::lock_guard lock(mutex_);
  return stalled_;
}

std::optional<std::string> StallWatchdog::SilentFor(milliseconds at_least) const {
  std::lock_guard lock(mutex_);
  if (stalled_) return stalled_;
  if (silence_ < at_least || silence_ == 0ms) return std::nullopt;
  return StallMessage(daemon_pid_, silence_);
}

bool StallWatchdog::SleepUntil(Clock::time_point deadline) {
  for (;;) {
    pollfd wake{wake_fd_, POLLIN, 0};
    int ready = ::poll(&wake, 1, PollTimeoutMs(deadline));
    if (ready > 0) return false;
    if (Clock::now() >= deadline) return true;
  }
}

void StallWatchdog::Watch() {
  const Clock::time_point start = Clock::now();
  const milliseconds interval = PingInterval(timeout_);
  // Most calls are answered long before the first ping is due.
  if (!SleepUntil(start + interval)) return;

  // Declared before the connection and the proxy: the ping's reply handler
  // writes them, and runs only inside processPendingRequest() below.
  Clock::time_point last_answer = start;
  bool ping_pending = false;
  bool look_up_again = false;
  int64_t offset = OffsetOf(progress_fd_);
  DaemonIdentity daemon;
  std::unique_ptr<sdbus::IConnection> connection;
  std::unique_ptr<sdbus::IProxy> peer;  // the daemon's unique name, not the well-known one
  Clock::time_point next_ping = Clock::now();

  auto record_silence = [&] {
    std::lock_guard lock(mutex_);
    silence_ = ping_pending || look_up_again || !peer
                   ? std::chrono::duration_cast<milliseconds>(Clock::now() - last_answer)
                   : 0ms;
  };

  for (;;) {
    const Clock::time_point now = Clock::now();
    if (const int64_t moved = OffsetOf(progress_fd_); moved != offset) {
      offset = moved;  // the daemon is reading the caller's file: alive
      last_answer = now;
    }
    if (now - last_answer >= timeout_) {
      std::lock_guard lock(mutex_);
      silence_ = std::chrono::duration_cast<milliseconds>(now - last_answer);
      stalled_ = StallMessage(daemon.pid, timeout_);
      // The call blocked on this socket sees it end and returns.
      ::shutdown(bus_fd_, SHUT_RDWR);
      return;
    }
    if (look_up_again) {
      peer.reset();
      look_up_again = false;
    }
    if (!ping_pending && now >= next_ping) {
      next_ping = now + interval;
      try {
        if (!connection) connection = sdbus::createSessionBusConnection();
        if (!peer) {
          daemon = LookUpDaemon(*connection, interval);
          std::lock_guard lock(mutex_);
          daemon_pid_ = daemon.pid;
          peer = sdbus::createProxy(*connection, daemon.unique_name, "/");
        }
        auto ping = peer->createMethodCall("org.freedesktop.DBus.Peer", "Ping");
        ping_pending = true;
        peer->callMethod(
            ping,
            [&](sdbus::MethodReply& /*reply*/, const sdbus::Error* error) {
              ping_pending = false;
              if (!error) {
                last_answer = Clock::now();
              } else if (error->getName() != "org.freedesktop.DBus.Error.NoReply" &&
                         error->getName() != "org.freedesktop.DBus.Error.Timeout") {
                look_up_again = true;  // the name changed hands, or its owner left
              }
            },
            std::chrono::duration_cast<std::chrono::microseconds>(timeout_));
      } catch (const sdbus::Error&) {
        // No owner (yet), or no bus: no answer either.
        ping_pending = false;
        peer.reset();
      }
    }

    Clock::time_point deadline = std::min(last_answer + timeout_, now + interval);
    if (!ping_pending) deadline = std::min(deadline, next_ping);
    pollfd fds[2] = {{wake_fd_, POLLIN, 0}, {-1, 0, 0}};
    if (connection) {
      const sdbus::IConnection::PollData data = connection->getEventLoopPollData();
      fds[1] = {data.fd, data.events, 0};
      if (data.timeout_usec != UINT64_MAX) {
        timespec ts{};
        ::clock_gettime(CLOCK_MONOTONIC, &ts);
        const uint64_t now_usec = static_cast<uint64_t>(ts.tv_sec) * 1'000'000 + static_cast<uint64_t>(ts.tv_nsec) / 1000;
        const auto wait = std::chrono::microseconds(data.timeout_usec > now_usec ? data.timeout_usec - now_usec : 0);
        deadline = std::min(deadline, Clock::now() + wait);
      }
    }
    if (::poll(fds, 2, PollTimeoutMs(deadline)) > 0 && (fds[0].revents & POLLIN)) {
      record_silence();
      return;
    }
    if (connection) {
      try {
        while (connection->processPendingRequest()) {
        }
      } catch (const sdbus::Error&) {
        // The ping connection broke: start over with a new one.
        ping_pending = false;
        peer.reset();
        connection.reset();
      }
    }
  }
}

}  // namespace costore::client::internal
