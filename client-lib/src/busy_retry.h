// When to try a Busy Store or Open again: the daemon's hint ("; try again
// in N s" at the end of its message) and the backoff after it. Pure
// functions, so the schedule can be tested without a daemon or a clock.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

namespace costore::client::internal {

// The retry budget: at most kBusyMaxTries calls in all, waiting at most
// kBusyMaxTotalWait between them in total, no single wait past
// kBusyMaxDelay unless the daemon asks for more.
inline constexpr int kBusyMaxTries = 5;
inline constexpr std::chrono::milliseconds kBusyMaxTotalWait = std::chrono::seconds(60);
inline constexpr std::chrono::milliseconds kBusyMaxDelay = std::chrono::seconds(16);

// N from a message ending in "; try again in N s" (N a whole number >= 1),
// or nullopt when it has no such ending.
std::optional<uint32_t> RetryAfterSeconds(std::string_view message);

// The wait before the next call, after `tries` calls were Busy (the first
// said to wait `first_hint` seconds, the last `last_hint`) and `waited` was
// spent waiting already; nullopt to give up and report Busy. The first
// wait is the daemon's hint (1 s without one); each later one doubles,
// stretched by up to a quarter by `jitter` (in [0, 1)) so that callers
// turned away together do not come back together, capped at
// kBusyMaxDelay, and never shorter than the last hint.
std::optional<std::chrono::milliseconds> BusyRetryDelay(int tries, std::optional<uint32_t> first_hint,
                                                        std::optional<uint32_t> last_hint,
                                                        std::chrono::milliseconds waited, double jitter);

}  // namespace costore::client::internal
