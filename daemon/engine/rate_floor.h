// RateFloor: the minimum average rate a store must keep. The idle timeout
// alone measures the gap between bytes, so a source sending one byte every
// few seconds would hold its store slot (and a worker) forever; this
// measures the bytes themselves.
//
// After `grace_us` from the first observation, the bytes received over the
// last `window_us` must average at least `min_bytes_per_s`, or Observe
// returns Cancelled naming the rate kept and the minimum. Samples are kept
// at most every window/kSamplesPerWindow, so memory is bounded whatever
// the store's length. Times are given by the caller (a steady clock), so
// tests can drive it.
#pragma once

#include <cstdint>
#include <deque>
#include <utility>

#include "daemon/engine/status.h"

namespace costore {

class RateFloor {
 public:
  static constexpr int kSamplesPerWindow = 32;

  // min_bytes_per_s == 0: off (Observe is always OK).
  RateFloor(uint64_t min_bytes_per_s, int64_t grace_us, int64_t window_us);

  // `received`: bytes so far, as of `now_us`. Call it often (after each
  // read and each wake-up while waiting); cheap.
  Status Observe(int64_t now_us, uint64_t received);

 private:
  const uint64_t min_bytes_per_s_;
  const int64_t grace_us_;
  const int64_t window_us_;
  int64_t start_us_ = -1;
  std::deque<std::pair<int64_t, uint64_t>> samples_;  // (time, received), oldest first
};

// "1048576 bytes/s (1 MiB/s)": a rate as a person reads it.
std::string DescribeRate(double bytes_per_s);

}  // namespace costore
