#include "progress.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include <costore/costore.hpp>

#include "format.h"

namespace costore::cli {
namespace {

using namespace std::chrono_literals;

constexpr auto kDelayBeforeShowing = 300ms;
constexpr auto kRedrawInterval = 100ms;

size_t TerminalWidth() {
  winsize size{};
  if (::ioctl(STDERR_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 0) return size.ws_col;
  return 80;
}

}  // namespace

ProgressBar::ProgressBar(std::string label)
    : label_(std::move(label)), enabled_(::isatty(STDERR_FILENO) == 1), start_(std::chrono::steady_clock::now()) {}

ProgressBar::~ProgressBar() { Finish(); }

void ProgressBar::Update(uint64_t done, uint64_t total) {
  if (!enabled_) return;
  auto now = std::chrono::steady_clock::now();
  if (now - start_ < kDelayBeforeShowing || now - last_draw_ < kRedrawInterval) return;
  last_draw_ = now;
  Draw(done, total);
}

void ProgressBar::Draw(uint64_t done, uint64_t total) {
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  std::string rate = seconds > 0 ? HumanSize(static_cast<uint64_t>(static_cast<double>(done) / seconds)) + "/s" : "";
  std::string amounts = HumanSize(done);
  bool known = total != client::kUnknownSize && total > 0;
  if (known) amounts += " / " + HumanSize(total);
  std::string tail = "  " + amounts + "  " + rate;
  std::string line = label_ + " ";
  size_t width = TerminalWidth();
  if (known) {
    size_t bar_width = width > line.size() + tail.size() + 8 ? std::min<size_t>(40, width - line.size() - tail.size() - 8) : 0;
    double fraction = std::min(1.0, static_cast<double>(done) / static_cast<double>(total));
    if (bar_width > 0) {
      auto filled = static_cast<size_t>(fraction * static_cast<double>(bar_width));
      line += "[" + std::string(filled, '#') + std::string(bar_width - filled, '.') + "]";
    }
    char percent[8];
    std::snprintf(percent, sizeof percent, " %3d%%", static_cast<int>(fraction * 100));
    line += percent;
  }
  line += tail;
  if (line.size() >= width) line.resize(width - 1);
  std::fprintf(stderr, "\r\033[K%s", line.c_str());
  std::fflush(stderr);
  drawn_ = true;
}

void ProgressBar::Finish() {
  if (!drawn_) return;
  std::fprintf(stderr, "\r\033[K");
  std::fflush(stderr);
  drawn_ = false;
}

}  // namespace costore::cli
