// Status: the result of an engine operation, modelled on LevelDB's.
// An OK status carries nothing; an error carries a code that maps 1:1 to a
// D-Bus error name (io.github.costore.Error.<CodeName>) and a message meant
// for a human: it names what was wrong.
#pragma once

#include <string>
#include <string_view>

namespace costore {

enum class Code {
  kOk = 0,
  kNotFound,
  kPermissionDenied,
  kDigestMismatch,
  kInvalidArgument,
  kKeyringUnavailable,
  kNoSpace,
  kQuotaExceeded,
  kCancelled,
  kBusy,
  kIOError,
};

// "NotFound", "InvalidArgument", ... as used in the D-Bus error names.
std::string_view CodeName(Code code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  static Status OK() { return Status(); }
  static Status NotFound(std::string msg) { return {Code::kNotFound, std::move(msg)}; }
  static Status PermissionDenied(std::string msg) { return {Code::kPermissionDenied, std::move(msg)}; }
  static Status DigestMismatch(std::string msg) { return {Code::kDigestMismatch, std::move(msg)}; }
  static Status InvalidArgument(std::string msg) { return {Code::kInvalidArgument, std::move(msg)}; }
  static Status KeyringUnavailable(std::string msg) { return {Code::kKeyringUnavailable, std::move(msg)}; }
  static Status NoSpace(std::string msg) { return {Code::kNoSpace, std::move(msg)}; }
  static Status QuotaExceeded(std::string msg) { return {Code::kQuotaExceeded, std::move(msg)}; }
  static Status Cancelled(std::string msg) { return {Code::kCancelled, std::move(msg)}; }
  static Status Busy(std::string msg) { return {Code::kBusy, std::move(msg)}; }
  static Status IOError(std::string msg) { return {Code::kIOError, std::move(msg)}; }
  // An IOError (or NoSpace, for ENOSPC/EDQUOT) describing errno for `context`.
  static Status FromErrno(std::string_view context, int err);

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  // "NotFound: <message>", or "OK".
  std::string ToString() const;

 private:
  Status(Code code, std::string msg) : code_(code), message_(std::move(msg)) {}
  Code code_ = Code::kOk;
  std::string message_;
};

}  // namespace costore
