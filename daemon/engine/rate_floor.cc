#include "daemon/engine/rate_floor.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

namespace costore {

std::string DescribeRate(double bytes_per_s) {
  char text[64];
  if (bytes_per_s >= 1024.0 * 1024.0) {
    std::snprintf(text, sizeof text, "%.0f bytes/s (%.1f MiB/s)", bytes_per_s, bytes_per_s / (1024.0 * 1024.0));
  } else if (bytes_per_s >= 1024.0) {
    std::snprintf(text, sizeof text, "%.0f bytes/s (%.1f KiB/s)", bytes_per_s, bytes_per_s / 1024.0);
  } else {
    std::snprintf(text, sizeof text, "%.1f bytes/s", bytes_per_s);
  }
  return text;
}

RateFloor::RateFloor(uint64_t min_bytes_per_s, int64_t grace_us, int64_t window_us)
    : min_bytes_per_s_(min_bytes_per_s), grace_us_(std::max<int64_t>(grace_us, 0)),
      window_us_(std::max<int64_t>(window_us, 1)) {}

Status RateFloor::Observe(int64_t now_us, uint64_t received) {
  if (min_bytes_per_s_ == 0) return Status::OK();
  if (start_us_ < 0) {
    start_us_ = now_us;
    samples_.emplace_back(now_us, received);
    return Status::OK();
  }
  if (now_us - samples_.back().first >= window_us_ / kSamplesPerWindow) samples_.emplace_back(now_us, received);
  // The baseline is the newest sample at least a window old: drop the ones
  // before it.
  while (samples_.size() > 1 && now_us - samples_[1].first >= window_us_) samples_.pop_front();
  if (now_us - start_us_ < grace_us_) return Status::OK();
  const auto& [since_us, then] = samples_.front();
  const int64_t span_us = now_us - since_us;
  if (span_us < window_us_) return Status::OK();  // a grace shorter than the window: wait for a whole window
  const double rate = static_cast<double>(received - then) * 1e6 / static_cast<double>(span_us);
  if (rate >= static_cast<double>(min_bytes_per_s_)) return Status::OK();
  return Status::Cancelled("the source kept " + DescribeRate(rate) + " over the last " +
                           std::to_string(static_cast<long long>(std::llround(span_us / 1e6))) +
                           " s; a store must keep at least " + DescribeRate(static_cast<double>(min_bytes_per_s_)) +
                           " (the min-store-rate setting) once its first " +
                           std::to_string(static_cast<long long>(std::llround(grace_us_ / 1e6))) + " s have passed");
}

}  // namespace costore
