#include "busy_retry.h"

#include <algorithm>
#include <cmath>

namespace costore::client::internal {

using std::chrono::milliseconds;

std::optional<uint32_t> RetryAfterSeconds(std::string_view message) {
  constexpr std::string_view kLead = "; try again in ";
  constexpr std::string_view kUnit = " s";
  if (message.size() < kUnit.size() || message.substr(message.size() - kUnit.size()) != kUnit) return std::nullopt;
  message.remove_suffix(kUnit.size());
  const size_t lead = message.rfind(kLead);
  if (lead == std::string_view::npos) return std::nullopt;
  const std::string_view digits = message.substr(lead + kLead.size());
  if (digits.empty() || digits.size() > 6) return std::nullopt;  // past 11 days is not a hint
  uint32_t seconds = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
    seconds = seconds * 10 + static_cast<uint32_t>(c - '0');
  }
  if (seconds == 0) return std::nullopt;
  return seconds;
}

std::optional<milliseconds> BusyRetryDelay(int tries, std::optional<uint32_t> first_hint,
                                           std::optional<uint32_t> last_hint, milliseconds waited,
                                           double jitter) {
  if (tries < 1 || tries >= kBusyMaxTries) return std::nullopt;
  const milliseconds first = std::chrono::seconds(first_hint.value_or(1));
  milliseconds delay = first;
  if (tries > 1) {
    const double doubled = static_cast<double>(first.count()) * std::ldexp(1.0, tries - 1);
    const double stretched = doubled * (1.0 + std::clamp(jitter, 0.0, 1.0) / 4);
    delay = std::min(kBusyMaxDelay, milliseconds(static_cast<int64_t>(std::min(stretched, 1e12))));
  }
  if (last_hint) delay = std::max(delay, milliseconds(std::chrono::seconds(*last_hint)));
  if (waited + delay > kBusyMaxTotalWait) return std::nullopt;
  return delay;
}

}  // namespace costore::client::internal
