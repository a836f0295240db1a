// The costore CLI's exit codes: one per kind of failure, so that scripts can
// tell a missing file from a refused one from a daemon that is not running.
#pragma once

#include <costore/costore.hpp>

namespace costore::cli {

enum ExitCode : int {
  kExitOk = 0,
  kExitUsage = 1,             // bad command line
  kExitNotFound = 2,          // no such file in the store, or not readable by this principal
  kExitPermissionDenied = 3,  // the daemon refused this caller
  kExitDigestMismatch = 4,    // the bytes did not match the digest or size
  kExitInvalidArgument = 5,   // a malformed digest, origin, app or name
  kExitKeyring = 6,           // the keyring is unavailable or locked; doctor: private files unusable
  kExitNoSpace = 7,           // no space left, or a quota exceeded
  kExitBusy = 8,              // busy or cancelled: try again
  kExitUnreachable = 9,       // no session bus, or costored not on it
  kExitOther = 10,            // anything else (local I/O errors included)
  kExitAgentBusy = 11,        // costore agent: another consent agent is registered
  kExitDamaged = 12,          // costore verify: a stored file is damaged
};

// The --help footer and README list these.
inline constexpr const char* kExitCodesHelp =
    "Exit status:\n"
    "  0  success\n"
    "  1  usage error\n"
    "  2  not found (or not readable by this principal; verify: a digest is not stored)\n"
    "  3  permission denied\n"
    "  4  digest or size mismatch\n"
    "  5  invalid argument (digest, origin, app, name)\n"
    "  6  keyring unavailable or locked (doctor: private files cannot be stored or opened now)\n"
    "  7  no space left or quota exceeded\n"
    "  8  busy or cancelled: try again\n"
    "  9  costored unreachable (no session bus, daemon not running, or it stopped answering)\n"
    "  10 other failure (local I/O error, ...)\n"
    "  11 another consent agent is already registered (agent)\n"
    "  12 a stored file is damaged: its bytes on disk are not the stored bytes (verify)";

inline ExitCode ExitCodeFor(client::ErrorCode code) {
  switch (code) {
    case client::ErrorCode::kNotFound: return kExitNotFound;
    case client::ErrorCode::kPermissionDenied: return kExitPermissionDenied;
    case client::ErrorCode::kDigestMismatch: return kExitDigestMismatch;
    case client::ErrorCode::kInvalidArgument: return kExitInvalidArgument;
    case client::ErrorCode::kKeyringUnavailable: return kExitKeyring;
    case client::ErrorCode::kNoSpace:
    case client::ErrorCode::kQuotaExceeded: return kExitNoSpace;
    case client::ErrorCode::kCancelled:
    case client::ErrorCode::kBusy: return kExitBusy;
    case client::ErrorCode::kUnreachable: return kExitUnreachable;
    case client::ErrorCode::kIOError:
    case client::ErrorCode::kFailed: return kExitOther;
  }
  return kExitOther;
}

}  // namespace costore::cli

#include <string>
#include <utility>

namespace costore::cli {

// A failure to report as "costore: <message>" and exit with `code`.
struct Failure {
  ExitCode code;
  std::string message;
};

// Runs `fn`, turning a client::Error into a Failure whose message starts
// with `what` ("open sha256:1a15...: <daemon message>").
template <typename Fn>
auto Attempt(const std::string& what, Fn&& fn) -> decltype(fn()) {
  try {
    return std::forward<Fn>(fn)();
  } catch (const client::Error& error) {
    throw Failure{ExitCodeFor(error.code()), what + ": " + error.what()};
  }
}

}  // namespace costore::cli
