#include "native-host/protocol.h"

#include <limits>

#include "daemon/engine/origin.h"

namespace costore::native_host {
namespace {

constexpr uint64_t kMaxSafeInteger = (uint64_t{1} << 53) - 1;  // JavaScript's Number.MAX_SAFE_INTEGER

bool IsLowerHex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

bool IsValidIdString(const std::string& id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' ||
              c == '_' || c == '.' || c == ':';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

std::variant<Request, RequestError> ParseRequest(std::string_view payload) {
  nlohmann::json message;
  try {
    message = nlohmann::json::parse(payload.begin(), payload.end());
  } catch (const nlohmann::json::parse_error& error) {
    // Where and what, never the bytes themselves: they may not be UTF-8.
    const bool utf8 = std::string_view(error.what()).find("UTF-8") != std::string_view::npos;
    return RequestError{nullptr, std::string(utf8 ? "the message is not valid UTF-8" : "the message is not valid JSON") +
                                     " (at byte " + std::to_string(error.byte) + ")"};
  } catch (const nlohmann::json::exception&) {
    // A number beyond a double ("1e400") is out_of_range, not parse_error;
    // found by fuzz/protocol_fuzzer, it used to end the host.
    return RequestError{nullptr, "the message is not valid JSON (a number is out of range)"};
  }
  if (!message.is_object()) return RequestError{nullptr, "the message is not a JSON object"};
  auto id_it = message.find("id");
  if (id_it == message.end()) return RequestError{nullptr, "the message has no \"id\""};
  nlohmann::json id = *id_it;
  if (id.is_number_unsigned()) {
    if (id.get<uint64_t>() > kMaxSafeInteger) return RequestError{nullptr, "\"id\" is out of range"};
  } else if (id.is_number_integer()) {
    return RequestError{nullptr, "\"id\" must not be negative"};
  } else if (id.is_string()) {
    if (!IsValidIdString(id.get<std::string>())) {
      return RequestError{nullptr, "\"id\" must be 1-64 characters of [A-Za-z0-9._:-]"};
    }
  } else {
    return RequestError{nullptr, "\"id\" must be an integer or a string"};
  }
  auto op_it = message.find("op");
  if (op_it == message.end() || !op_it->is_string()) return RequestError{id, "\"op\" must be a string"};
  std::string op = op_it->get<std::string>();
  if (op.empty() || op.size() > 32) return RequestError{id, "\"op\" is not a known operation"};
  return Request{std::move(id), std::move(op), std::move(message)};
}

bool GetString(const nlohmann::json& body, const char* key, std::string* out, std::string* error,
               size_t max_length, bool required) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) {
    if (!required) return true;
    *error = std::string("\"") + key + "\" is missing";
    return false;
  }
  if (!it->is_string()) {
    *error = std::string("\"") + key + "\" must be a string";
    return false;
  }
  const std::string& value = it->get_ref<const std::string&>();
  if (value.size() > max_length) {
    *error = std::string("\"") + key + "\" is too long";
    return false;
  }
  *out = value;
  return true;
}

bool GetUint(const nlohmann::json& body, const char* key, uint64_t* out, std::string* error, bool required) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) {
    if (!required) return true;
    *error = std::string("\"") + key + "\" is missing";
    return false;
  }
  if (it->is_number_unsigned()) {
    uint64_t value = it->get<uint64_t>();
    if (value > kMaxSafeInteger) {
      *error = std::string("\"") + key + "\" is out of range";
      return false;
    }
    *out = value;
    return true;
  }
  if (it->is_number_float()) {
    double value = it->get<double>();
    if (value >= 0 && value <= static_cast<double>(kMaxSafeInteger) &&
        value == static_cast<double>(static_cast<uint64_t>(value))) {
      *out = static_cast<uint64_t>(value);
      return true;
    }
  }
  *error = std::string("\"") + key + "\" must be a non-negative integer";
  return false;
}

bool GetOrigin(const nlohmann::json& body, std::string* origin, std::string* error) {
  std::string given;
  if (!GetString(body, "origin", &given, error, 2048)) return false;
  if (given.empty()) {
    *error = "\"origin\" is empty; a site always has an origin";
    return false;
  }
  Status s = CanonicalizeOrigin(given, origin);
  if (!s.ok()) {
    *error = "\"origin\": " + s.message();
    return false;
  }
  return true;
}

std::optional<std::string> ParseDigest(std::string_view text) {
  if (text.rfind("sha256:", 0) == 0) text.remove_prefix(7);
  if (text.size() != 64) return std::nullopt;
  std::string digest = "sha256:";
  for (char c : text) {
    char lower = (c >= 'A' && c <= 'F') ? static_cast<char>(c - 'A' + 'a') : c;
    if (!IsLowerHex(lower)) return std::nullopt;
    digest += lower;
  }
  return digest;
}

std::string Base64Encode(const unsigned char* data, size_t size) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((size + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= size; i += 3) {
    uint32_t v = (uint32_t{data[i]} << 16) | (uint32_t{data[i + 1]} << 8) | data[i + 2];
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (size - i == 1) {
    uint32_t v = uint32_t{data[i]} << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += "==";
  } else if (size - i == 2) {
    uint32_t v = (uint32_t{data[i]} << 16) | (uint32_t{data[i + 1]} << 8);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

std::optional<std::string> Base64Decode(std::string_view text) {
  auto value_of = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  if (text.size() % 4 != 0) return std::nullopt;
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (size_t i = 0; i < text.size(); i += 4) {
    bool last = i + 4 == text.size();
    int a = value_of(text[i]), b = value_of(text[i + 1]);
    if (a < 0 || b < 0) return std::nullopt;
    char c3 = text[i + 2], c4 = text[i + 3];
    if (last && c3 == '=' && c4 == '=') {
      if (b & 15) return std::nullopt;  // non-canonical padding bits
      out += static_cast<char>((a << 2) | (b >> 4));
      break;
    }
    int c = value_of(c3);
    if (c < 0) return std::nullopt;
    if (last && c4 == '=') {
      if (c & 3) return std::nullopt;
      out += static_cast<char>((a << 2) | (b >> 4));
      out += static_cast<char>(((b & 15) << 4) | (c >> 2));
      break;
    }
    int d = value_of(c4);
    if (d < 0) return std::nullopt;
    out += static_cast<char>((a << 2) | (b >> 4));
    out += static_cast<char>(((b & 15) << 4) | (c >> 2));
    out += static_cast<char>(((c & 3) << 6) | d);
  }
  return out;
}

}  // namespace costore::native_host
