// Origin validation: the daemon's ValidateOrigin (what may be a principal)
// and the native host's IsWebOrigin / IsTrustworthyWebOrigin (what the
// extension may act for). Properties: a trustworthy origin is a web
// origin, a web origin the host passes on is one the daemon accepts (or
// the host would forward requests the daemon refuses), and every refusal
// is a valid UTF-8 message naming the origin.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "daemon/engine/principal.h"
#include "fuzz/check.h"
#include "native-host/protocol.h"

using costore::Status;
using costore::fuzz::IsValidUtf8;
using costore::fuzz::StartsWith;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view origin(reinterpret_cast<const char*>(data), size);

  const Status valid = costore::ValidateOrigin(origin);
  if (!valid.ok()) {
    FUZZ_CHECK(valid.code() == costore::Code::kInvalidArgument);
    FUZZ_CHECK(StartsWith(valid.message(), "origin \""));
    FUZZ_CHECK(IsValidUtf8(valid.message()));
  }

  const bool web = costore::native_host::IsWebOrigin(origin);
  const bool trustworthy = costore::native_host::IsTrustworthyWebOrigin(origin);
  if (trustworthy) FUZZ_CHECK(web);
  if (web) FUZZ_CHECK(valid.ok());
  if (web) FUZZ_CHECK(origin != "null" && !origin.empty());
  return 0;
}
