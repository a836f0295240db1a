// StallRegistry: the one thread per process that watches every libcostore
// call in progress for a stalled daemon. Arming a call is a mutex and an
// insert (no syscall, no thread): most calls are answered long before the
// thread would look at them. Only a call in progress for longer than its
// ping interval makes the thread ping the daemon, through a Pinger.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace costore::client::internal {

using StallClock = std::chrono::steady_clock;

// Asks the daemon whether it is alive. Used by the registry's thread only,
// one at a time; created when a call becomes overdue, dropped when none is.
class Pinger {
 public:
  virtual ~Pinger() = default;
  // Sends a ping, answered within `reply_timeout` or never; blocks for at
  // most `interval` (looking the daemon up on the bus).
  virtual void Ping(std::chrono::milliseconds interval, std::chrono::milliseconds reply_timeout) = 0;
  virtual bool Pending() const = 0;
  // No ping answered since the last one was sent, or no daemon to ping.
  virtual bool Silent() const = 0;
  // When the daemon last answered, if ever.
  virtual std::optional<StallClock::time_point> LastAnswer() const = 0;
  virtual uint32_t DaemonPid() const = 0;  // 0 while unknown
  // The descriptor to wait on for replies (-1: none), its poll events and
  // the latest time to call Process() even without one.
  struct Wait {
    int fd = -1;
    short events = 0;
    StallClock::time_point until = StallClock::time_point::max();
  };
  virtual Wait NextWait() const = 0;
  virtual void Process() = 0;
};

// One call in progress. Owned by the caller (StallWatchdog); the registry
// writes the fields below `progress_fd` under its mutex while it is armed.
struct StallWatch {
  std::chrono::milliseconds timeout{0};
  int bus_fd = -1;
  int progress_fd = -1;
  StallClock::time_point start;
  bool overdue = false;  // the thread has started pinging for it
  int64_t offset = -1;   // of progress_fd, since it became overdue
  StallClock::time_point last_progress;
  std::optional<std::string> stalled;
  std::chrono::milliseconds silence{0};  // at disarm (or stall) time
  uint32_t daemon_pid = 0;               // as the pings found it, 0: unknown
};

class StallRegistry {
 public:
  using PingerFactory = std::function<std::unique_ptr<Pinger>()>;
  // `idle`: how long the thread outlives the last call before it exits.
  StallRegistry(PingerFactory make_pinger, std::chrono::milliseconds idle);
  // Stops and joins the thread (at exit, for the process-wide one).
  ~StallRegistry();
  StallRegistry(const StallRegistry&) = delete;
  StallRegistry& operator=(const StallRegistry&) = delete;

  // The process-wide registry, pinging costored on the session bus.
  static StallRegistry& Global();

  // Starts watching `watch` (timeout > 0); starts the thread if none runs.
  void Arm(StallWatch& watch);
  // Stops watching it. Waits while the thread is acting on it (reading its
  // progress offset, shutting its bus fd down), so that once Disarm()
  // returns the caller may close or reuse both descriptors.
  void Disarm(StallWatch& watch);

  // For tests: whether the thread runs now.
  bool ThreadRunning() const;

 private:
  void Loop();
  // One pass over the armed watches under the lock; returns when to look
  // again and the shortest ping interval of an overdue one (zero: none).
  StallClock::time_point Check(StallClock::time_point now, std::chrono::milliseconds& ping_interval,
                               std::chrono::milliseconds& reply_timeout);
  void Wake();
  void ForgetAfterFork();

  const PingerFactory make_pinger_;
  const std::chrono::milliseconds idle_;
  mutable std::mutex mutex_;
  std::vector<StallWatch*> watches_;
  uint64_t arms_ = 0;           // count of Arm() calls, to tell idle from busy
  bool running_ = false;        // the thread runs (or is starting)
  bool stop_ = false;
  StallClock::time_point next_wake_;  // when the thread looks again on its own
  bool daemon_silent_ = false;        // the pinger's state, for Disarm()
  std::optional<StallClock::time_point> last_answer_;
  uint32_t daemon_pid_ = 0;
  int wake_fd_ = -1;  // an eventfd; written only when a watch is due before next_wake_
  std::unique_ptr<std::thread> thread_;
};

// How often a silent daemon is pinged: a few times per timeout, at most
// every 5 s (a ping costs the daemon next to nothing).
std::chrono::milliseconds PingInterval(std::chrono::milliseconds timeout);

}  // namespace costore::client::internal
