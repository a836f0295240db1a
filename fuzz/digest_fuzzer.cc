// The three digest parsers: the daemon's strict Digest::Parse, libcostore's
// lenient NormalizeDigest (what users type) and the native host's
// ParseDigest (what the extension sends). Properties: each agrees with the
// daemon on what it accepts (whatever the lenient ones accept normalizes
// to something the daemon parses), the daemon's form round-trips, and
// every refusal is a valid UTF-8 message naming the digest.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "client-lib/src/internal.h"
#include "daemon/engine/digest.h"
#include "fuzz/check.h"
#include "native-host/protocol.h"

using costore::Digest;
using costore::Status;
using costore::fuzz::IsValidUtf8;
using costore::fuzz::StartsWith;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  Digest digest;
  const Status strict = Digest::Parse(text, &digest);
  if (strict.ok()) {
    FUZZ_CHECK(digest.ToString() == text);  // one textual form
  } else {
    FUZZ_CHECK(strict.code() == costore::Code::kInvalidArgument);
    FUZZ_CHECK(StartsWith(strict.message(), "digest "));
    FUZZ_CHECK(IsValidUtf8(strict.message()));
  }

  std::string normalized;
  const char* reason = costore::client::internal::NormalizeDigestTo(text, &normalized);
  if (reason == nullptr) {
    Digest again;
    FUZZ_CHECK(Digest::Parse(normalized, &again).ok());
    FUZZ_CHECK(again.ToString() == normalized);
  }
  if (strict.ok()) FUZZ_CHECK(reason == nullptr && normalized == text);
  try {
    FUZZ_CHECK(costore::client::NormalizeDigest(text) == normalized && reason == nullptr);
  } catch (const costore::client::Error& e) {
    FUZZ_CHECK(reason != nullptr);
    FUZZ_CHECK(e.code() == costore::client::ErrorCode::kInvalidArgument);
    FUZZ_CHECK(StartsWith(e.what(), "invalid digest \""));
  }

  const auto host = costore::native_host::ParseDigest(text);
  if (host) {
    // The host accepts a subset of what libcostore accepts, with the same
    // meaning, and only what the daemon then parses.
    FUZZ_CHECK(reason == nullptr && *host == normalized);
    Digest again;
    FUZZ_CHECK(Digest::Parse(*host, &again).ok());
  }
  if (strict.ok()) FUZZ_CHECK(host && *host == text);
  return 0;
}
