// Logging to stderr, one line per event, which journald picks up when the
// daemon runs as a user service. Untrusted text must go through Quote().
#pragma once

#include <string_view>

namespace costore {

enum class LogLevel { kDebug, kInfo, kWarning, kError };

void SetLogVerbose(bool verbose);
void Log(LogLevel level, std::string_view message);
inline void LogInfo(std::string_view m) { Log(LogLevel::kInfo, m); }
inline void LogWarning(std::string_view m) { Log(LogLevel::kWarning, m); }
inline void LogError(std::string_view m) { Log(LogLevel::kError, m); }
inline void LogDebug(std::string_view m) { Log(LogLevel::kDebug, m); }

}  // namespace costore
