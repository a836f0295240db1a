// Helpers shared by the private-file benchmarks: wall time, medians, sizes
// on the command line, and cheap pseudo-random bytes.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace costore::bench {

// Seconds on a steady clock.
inline double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

inline double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// "256M" -> 268435456 (K, M and G suffixes, either case).
inline uint64_t ParseBytes(const char* text) {
  char* end = nullptr;
  uint64_t n = std::strtoull(text, &end, 10);
  if (*end == 'K' || *end == 'k') n <<= 10;
  if (*end == 'M' || *end == 'm') n <<= 20;
  if (*end == 'G' || *end == 'g') n <<= 30;
  return n;
}

// Fills `block` (a multiple of 8 bytes long) with xorshift64 output,
// carrying on from *state.
inline void FillXorshift(std::vector<char>* block, uint64_t* state) {
  for (size_t j = 0; j < block->size(); j += 8) {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    std::memcpy(block->data() + j, state, 8);
  }
}

}  // namespace costore::bench
