// The native host's JSON protocol (native-host/protocol.h) on arbitrary
// text. Properties: ParseRequest never throws; a request has an id that is
// a safe non-negative integer or a short string, a non-empty op and an
// object body; a refusal has a message, and an id only when the id itself
// was usable; the typed field getters either give a value of the type and
// range asked or name the field; base64 that decodes re-encodes to exactly
// the same text (the decoder is strict), and a web origin the host accepts
// is one it calls trustworthy only if it is a web origin.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "fuzz/check.h"
#include "native-host/protocol.h"

namespace nh = costore::native_host;

namespace {

constexpr uint64_t kMaxSafeInteger = (uint64_t{1} << 53) - 1;

void CheckFieldError(const std::string& error, const char* key) {
  FUZZ_CHECK(error.find(std::string("\"") + key + "\"") == 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto decoded = nh::Base64Decode(text)) {
    FUZZ_CHECK(nh::Base64Encode(reinterpret_cast<const unsigned char*>(decoded->data()), decoded->size()) == text);
  }
  auto parsed = nh::ParseRequest(text);
  if (auto* error = std::get_if<nh::RequestError>(&parsed)) {
    FUZZ_CHECK(!error->message.empty());
    FUZZ_CHECK(error->id.is_null() || error->id.is_number_unsigned() || error->id.is_string());
    return 0;
  }
  const nh::Request& request = std::get<nh::Request>(parsed);
  FUZZ_CHECK(request.body.is_object());
  FUZZ_CHECK(!request.op.empty() && request.op.size() <= 32);
  if (request.id.is_number_unsigned()) {
    FUZZ_CHECK(request.id.get<uint64_t>() <= kMaxSafeInteger);
  } else {
    FUZZ_CHECK(request.id.is_string());
    const auto& id = request.id.get_ref<const std::string&>();
    FUZZ_CHECK(!id.empty() && id.size() <= 64);
  }

  for (const char* key : {"origin", "digest", "transfer", "data"}) {
    std::string value, error;
    if (nh::GetString(request.body, key, &value, &error, 4096, /*required=*/true)) {
      FUZZ_CHECK(value.size() <= 4096);
      if (std::string_view(key) == "origin") {
        std::string origin, origin_error;
        if (nh::GetOrigin(request.body, &origin, &origin_error)) {
          std::string again;
          FUZZ_CHECK(nh::GetOrigin(nlohmann::json{{"origin", origin}}, &again, &origin_error) && again == origin);
        } else {
          FUZZ_CHECK(!origin_error.empty());
        }
      }
      if (std::string_view(key) == "digest") {
        if (auto digest = nh::ParseDigest(value)) FUZZ_CHECK(digest->size() == 71);
      }
      if (std::string_view(key) == "data") {
        if (auto decoded = nh::Base64Decode(value)) {
          FUZZ_CHECK(nh::Base64Encode(reinterpret_cast<const unsigned char*>(decoded->data()), decoded->size()) ==
                     value);
        }
      }
    } else {
      CheckFieldError(error, key);
    }
  }
  for (const char* key : {"offset", "length", "size"}) {
    uint64_t value = 0;
    std::string error;
    if (nh::GetUint(request.body, key, &value, &error, /*required=*/false)) {
      FUZZ_CHECK(value <= kMaxSafeInteger);
    } else {
      CheckFieldError(error, key);
    }
  }
  return 0;
}
