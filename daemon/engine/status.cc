#include "daemon/engine/status.h"

#include <cerrno>
#include <cstring>

namespace costore {

std::string_view CodeName(Code code) {
  switch (code) {
    case Code::kOk: return "OK";
    case Code::kNotFound: return "NotFound";
    case Code::kPermissionDenied: return "PermissionDenied";
    case Code::kDigestMismatch: return "DigestMismatch";
    case Code::kInvalidArgument: return "InvalidArgument";
    case Code::kKeyringUnavailable: return "KeyringUnavailable";
    case Code::kNoSpace: return "NoSpace";
    case Code::kQuotaExceeded: return "QuotaExceeded";
    case Code::kCancelled: return "Cancelled";
    case Code::kBusy: return "Busy";
    case Code::kIOError: return "IOError";
  }
  return "IOError";
}

Status Status::FromErrno(std::string_view context, int err) {
  std::string msg(context);
  msg += ": ";
  msg += std::strerror(err);
  if (err == ENOSPC || err == EDQUOT) return NoSpace(std::move(msg));
  return IOError(std::move(msg));
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string out(CodeName(code_));
  out += ": ";
  out += message_;
  return out;
}

}  // namespace costore
