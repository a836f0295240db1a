// Origins: the one rule, CanonicalizeOrigin (daemon/engine/origin.h), and
// the native host's GetOrigin, which applies it to a request's "origin".
// Properties: a canonical origin is its own canonical form (one origin,
// one spelling); it is at most 255 bytes, ASCII, lowercase, and has no
// path; the host takes exactly what the daemon takes (but "", which a site
// never is) and in the same form; every refusal is InvalidArgument with a
// valid UTF-8 message naming the origin.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "daemon/engine/origin.h"
#include "fuzz/check.h"
#include "native-host/protocol.h"

using costore::Status;
using costore::fuzz::IsValidUtf8;
using costore::fuzz::StartsWith;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view origin(reinterpret_cast<const char*>(data), size);

  std::string canonical;
  const Status s = costore::CanonicalizeOrigin(origin, &canonical);
  if (!s.ok()) {
    FUZZ_CHECK(s.code() == costore::Code::kInvalidArgument);
    FUZZ_CHECK(StartsWith(s.message(), "origin \""));
    FUZZ_CHECK(IsValidUtf8(s.message()));
  } else {
    FUZZ_CHECK(canonical.size() <= 255);
    for (char c : canonical) {
      FUZZ_CHECK(static_cast<unsigned char>(c) < 0x80 && !(c >= 'A' && c <= 'Z'));
    }
    if (!canonical.empty()) {
      FUZZ_CHECK(canonical.rfind("https://", 0) == 0 || canonical.rfind("http://", 0) == 0);
      FUZZ_CHECK(canonical.find('/', canonical.find("://") + 3) == std::string::npos);
    }
    std::string again;
    FUZZ_CHECK(costore::CanonicalizeOrigin(canonical, &again).ok());
    FUZZ_CHECK(again == canonical);
  }

  // JSON strings must be UTF-8; anything else never reaches GetOrigin.
  if (!IsValidUtf8(origin)) return 0;
  std::string from_host, error;
  const bool taken =
      costore::native_host::GetOrigin(nlohmann::json{{"origin", std::string(origin)}}, &from_host, &error);
  if (taken) {
    FUZZ_CHECK(s.ok() && !canonical.empty() && from_host == canonical);
  } else {
    FUZZ_CHECK(!(s.ok() && !canonical.empty()) || origin.size() > 2048);
    FUZZ_CHECK(IsValidUtf8(error));
  }
  return 0;
}
