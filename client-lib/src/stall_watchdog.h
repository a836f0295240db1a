// StallWatchdog: notices, while a call is in progress, that costored has
// stopped answering (stopped, stuck, swapped out for good), and makes the
// call fail instead of waiting for a reply that never comes. A watchdog is
// an entry in the process-wide StallRegistry (stall_registry.h): creating
// and finishing one costs a mutex, not a thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "stall_registry.h"

namespace costore::client::internal {

class StallWatchdog {
 public:
  // Watches a call in progress on the bus connection whose socket is
  // `bus_fd`, for at most `timeout` of silence (zero: not at all).
  // `progress_fd`, when not -1, is a regular file the daemon reads the
  // call's bytes from: its shared offset moving counts as an answer too.
  // When the daemon answers nothing for `timeout`, the watchdog shuts
  // `bus_fd` down, so that the blocked call returns at once; Stalled() then
  // says why. `bus_fd` must stay open until Finish() returns.
  StallWatchdog(std::chrono::milliseconds timeout, int bus_fd, int progress_fd,
                StallRegistry& registry = StallRegistry::Global());
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
  StallRegistry& registry_;
  StallWatch watch_;
  bool armed_ = false;
};

// Pings costored (its unique name, looked up on the session bus) from a
// connection of its own.
std::unique_ptr<Pinger> MakeDbusPinger();

// "30 s", "1.5 s": a duration as the stall message says it.
std::string DescribeSeconds(std::chrono::milliseconds duration);
// "costored (pid N) stopped answering: no reply to a ping for 30 s".
std::string StallMessage(uint32_t pid, std::chrono::milliseconds silence);

}  // namespace costore::client::internal
