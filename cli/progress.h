// A one-line progress bar on stderr, drawn only when stderr is a terminal.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace costore::cli {

class ProgressBar {
 public:
  // `label` is the verb shown before the bar ("hashing", "storing").
  explicit ProgressBar(std::string label);
  ~ProgressBar();
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  // `total` may be client::kUnknownSize. Redraws at most ten times a
  // second, and only once the transfer has lasted a moment (short ones never
  // show a bar).
  void Update(uint64_t done, uint64_t total);
  // Erases the bar.
  void Finish();

 private:
  void Draw(uint64_t done, uint64_t total);

  std::string label_;
  bool enabled_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_{};
};

}  // namespace costore::cli
