// Errors: the daemon's D-Bus errors and bus failures as costore::client::Error.
#include <array>
#include <string>
#include <string_view>
#include <utility>

#include <costore-ipc/names.h>
#include <sdbus-c++/Error.h>

#include "internal.h"

namespace costore::client {
namespace {

constexpr std::array<std::pair<ErrorCode, std::string_view>, 12> kCodeNames = {{
    {ErrorCode::kNotFound, "NotFound"},
    {ErrorCode::kPermissionDenied, "PermissionDenied"},
    {ErrorCode::kDigestMismatch, "DigestMismatch"},
    {ErrorCode::kInvalidArgument, "InvalidArgument"},
    {ErrorCode::kKeyringUnavailable, "KeyringUnavailable"},
    {ErrorCode::kNoSpace, "NoSpace"},
    {ErrorCode::kQuotaExceeded, "QuotaExceeded"},
    {ErrorCode::kCancelled, "Cancelled"},
    {ErrorCode::kBusy, "Busy"},
    {ErrorCode::kIOError, "IOError"},
    {ErrorCode::kUnreachable, "Unreachable"},
    {ErrorCode::kFailed, "Failed"},
}};

// Bus-level failures meaning "costored is not there (any more)".
constexpr std::array<std::string_view, 9> kUnreachableNames = {
    "org.freedesktop.DBus.Error.ServiceUnknown",  // not running, not activatable
    "org.freedesktop.DBus.Error.NameHasNoOwner",
    "org.freedesktop.DBus.Error.NoServer",
    "org.freedesktop.DBus.Error.Disconnected",
    "org.freedesktop.DBus.Error.NoReply",  // exited without replying
    "org.freedesktop.DBus.Error.Timeout",  // no reply within the call's own timeout (sd-bus)
    "org.freedesktop.DBus.Error.Spawn.ChildExited",
    "org.freedesktop.DBus.Error.Spawn.Failed",
    "org.freedesktop.DBus.Error.FileNotFound",  // no bus socket
};

constexpr std::string_view kSystemErrorPrefix = "System.Error.";

bool StartsWith(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

}  // namespace

Error::Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}

std::string_view ErrorCodeName(ErrorCode code) {
  for (const auto& [known, name] : kCodeNames) {
    if (known == code) return name;
  }
  return "Failed";
}

namespace internal {

ErrorCode CodeFromDbusName(std::string_view name) {
  for (const auto& [code, code_name] : kCodeNames) {
    if (code == ErrorCode::kUnreachable || code == ErrorCode::kFailed) continue;
    if (code_name == name) return code;
  }
  return ErrorCode::kFailed;
}

Error TranslateDbusError(const sdbus::Error& error) {
  const std::string& name = error.getName();
  const std::string& message = error.getMessage();
  std::string_view prefix = costore::ipc::kErrorPrefix;
  if (StartsWith(name, prefix)) {
    ErrorCode code = CodeFromDbusName(std::string_view(name).substr(prefix.size()));
    if (code == ErrorCode::kFailed) return Error(code, name + ": " + message);  // a newer daemon's error
    return Error(code, message);
  }
  for (std::string_view unreachable : kUnreachableNames) {
    if (name == unreachable) return Error(ErrorCode::kUnreachable, "costored is not reachable: " + message);
  }
  if (StartsWith(name, kSystemErrorPrefix) || name == "org.sdbus-cpp.Error")
    return Error(ErrorCode::kUnreachable, "cannot talk to the session bus: " + message);
  if (name == "org.freedesktop.DBus.Error.AccessDenied")
    return Error(ErrorCode::kPermissionDenied, message);
  if (name == "org.freedesktop.DBus.Error.InvalidArgs")
    return Error(ErrorCode::kInvalidArgument, message);
  if (name == "org.freedesktop.DBus.Error.NoMemory" || name == "org.freedesktop.DBus.Error.LimitsExceeded")
    return Error(ErrorCode::kBusy, message);
  return Error(ErrorCode::kFailed, message.empty() ? name : message + " (" + name + ")");
}

bool ConnectionStillUsable(const sdbus::Error& error) {
  const std::string& name = error.getName();
  return StartsWith(name, costore::ipc::kErrorPrefix) || name == "org.freedesktop.DBus.Error.InvalidArgs" ||
         name == "org.freedesktop.DBus.Error.AccessDenied" || name == "org.freedesktop.DBus.Error.ServiceUnknown" ||
         name == "org.freedesktop.DBus.Error.UnknownMethod" || name == "org.freedesktop.DBus.Error.UnknownObject" ||
         name == "org.freedesktop.DBus.Error.UnknownInterface";
}

}  // namespace internal
}  // namespace costore::client
