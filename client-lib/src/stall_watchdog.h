// StallWatchdog: notices, while a call is in progress, that costored has
// stopped answering (stopped, stuck, swapped out for good), and makes the
// call fail instead of waiting for a reply that never comes.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

namespace costore::client::internal {

class StallWatchdog {
 public:
  // Watches a call in progress on the bus connection whose socket is
  // `bus_fd`, for at most `timeout` of silence. `progress_fd`, when not -1,
  // is a regular file the daemon reads the call's bytes from: its shared
  // offset moving counts as an answer too. When the daemon answers nothing
  // for `timeout`, the watchdog shuts `bus_fd` down, so that the blocked
  // call returns at once; Stalled() then says why. `bus_fd` must stay open
  // until Finish() returns.
  StallWatchdog(std::chrono::milliseconds timeout, int bus_fd, int progress_fd);
  ~StallWatchdog();
  StallWatchdog(const StallWatchdog&) = delete;
  StallWatchdog& operator=(const StallWatchdog&) = delete;

  // Stops watching (the call returned); idempotent.
  void Finish();
  // After Finish(): "costored (pid N) stopped answering: ..." if the
  // watchdog gave up on the daemon (and shut the connection down).
  std::optional<std::string> Stalled() const;
  // After Finish(), for a call that failed on its own D-Bus timeout: the
  // stall message, if the daemon had been silent for at least `at_least`
  // by then (it did not answer the pings either).
  std::optional<std::string> SilentFor(std::chrono::milliseconds at_least) const;

 private:
  void Watch();
  // Waits until `deadline` or Finish(); false once finished.
  bool SleepUntil(std::chrono::steady_clock::time_point deadline);

  const std::chrono::milliseconds timeout_;
  const int bus_fd_;
  const int progress_fd_;
  int wake_fd_ = -1;  // an eventfd Finish() writes to
  std::atomic<bool> finished_{false};
  mutable std::mutex mutex_;
  std::optional<std::string> stalled_;
  std::chrono::milliseconds silence_{0};
  uint32_t daemon_pid_ = 0;  // 0 until looked up
  std::thread thread_;
};

// "30 s", "1.5 s": a duration as the stall message says it.
std::string DescribeSeconds(std::chrono::milliseconds duration);
// "costored (pid N) stopped answering: no reply to a ping for 30 s".
std::string StallMessage(uint32_t pid, std::chrono::milliseconds silence);

}  // namespace costore::client::internal
