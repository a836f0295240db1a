// Internals of libcostore shared by the C++ and C interfaces.
#pragma once

#include <string>
#include <string_view>

#include "costore/costore.hpp"

namespace sdbus {
class Error;
}

namespace costore::client::internal {

// Writes "sha256:<64 lowercase hex>" to *out and returns nullptr, or returns
// a static sentence saying why `text` is not a digest (see NormalizeDigest).
const char* NormalizeDigestTo(std::string_view text, std::string* out);

// `text` in double quotes, control characters escaped, cut to `max_bytes`.
std::string Quote(std::string_view text, size_t max_bytes = 80);

// The code for a daemon error name without its prefix ("NotFound"), or
// kFailed for a name this library does not know.
ErrorCode CodeFromDbusName(std::string_view name);

// An Error for a D-Bus or sdbus-c++ failure: costore errors keep the
// daemon's message; bus failures become kUnreachable.
Error TranslateDbusError(const sdbus::Error& error);

// Whether a connection that failed with `error` is still fit for reuse
// (the daemon answered, with an error of its own).
bool ConnectionStillUsable(const sdbus::Error& error);

}  // namespace costore::client::internal
