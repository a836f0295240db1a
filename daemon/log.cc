#include "daemon/log.h"

#include <unistd.h>

#include <atomic>
#include <string>

namespace costore {
namespace {
std::atomic<bool> g_verbose{false};
}

void SetLogVerbose(bool verbose) { g_verbose = verbose; }

void Log(LogLevel level, std::string_view message) {
  if (level == LogLevel::kDebug && !g_verbose) return;
  // sd-daemon(3) priority prefixes: journald files the line at that level.
  const char* prefix = level == LogLevel::kError     ? "<3>"
                       : level == LogLevel::kWarning ? "<4>"
                       : level == LogLevel::kInfo    ? "<6>"
                                                     : "<7>";
  std::string line = std::string(prefix) + "costored: " + std::string(message) + "\n";
  // One write(2) per line, so lines from several threads never interleave.
  ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
  (void)ignored;
}

}  // namespace costore
