#include "native-host/protocol.h"

#include <arpa/inet.h>

#include <charconv>
#include <limits>

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

// One DNS label of a host name: [a-z0-9-], 1-63, no '-' at either end.
constexpr size_t kMaxOriginBytes = 255;

bool IsHostLabel(std::string_view label) {
  if (label.empty() || label.size() > 63) return false;
  if (label.front() == '-' || label.back() == '-') return false;
  for (char c : label) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return true;
}

bool IsHost(std::string_view host) {
  if (host.empty()) return false;
  if (host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') return false;
    std::string inner(host.substr(1, host.size() - 2));
    // Serialized IPv6 is lowercase hex, ':' and '.'; checking every byte
    // also keeps a NUL from ending inet_pton's C string early (found by
    // fuzz/origin_fuzzer: "[::\0anything]" parsed as "[::]").
    for (char c : inner) {
      if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || c == ':' || c == '.')) return false;
    }
    in6_addr address{};
    return inet_pton(AF_INET6, inner.c_str(), &address) == 1;
  }
  if (host.size() > 253) return false;
  size_t start = 0;
  while (true) {
    size_t dot = host.find('.', start);
    std::string_view label = host.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (!IsHostLabel(label)) return false;
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return true;
}

}  // namespace

std::variant<Request, RequestError> ParseRequest(std::string_view payload) {
  nlohmann::json message = nlohmann::json::parse(payload.begin(), payload.end(), nullptr, false);
  if (message.is_discarded()) return RequestError{nullptr, "the message is not valid UTF-8 JSON"};
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

bool IsWebOrigin(std::string_view origin) {
  // The daemon takes origins of at most 255 bytes (ValidateOrigin); a
  // longer one (a 253-byte host name fits the DNS but not that) would only
  // come back as InvalidArgument. Found by fuzz/origin_fuzzer.
  if (origin.size() > kMaxOriginBytes) return false;
  std::string_view rest;
  std::string_view default_port;
  if (origin.rfind("https://", 0) == 0) {
    rest = origin.substr(8);
    default_port = "443";
  } else if (origin.rfind("http://", 0) == 0) {
    rest = origin.substr(7);
    default_port = "80";
  } else {
    return false;
  }
  std::string_view host = rest;
  std::string_view port;
  size_t colon = rest.rfind(':');
  size_t bracket = rest.rfind(']');
  if (colon != std::string_view::npos && (bracket == std::string_view::npos || colon > bracket)) {
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
    if (port.empty() || port.size() > 5 || port.front() == '0' || port == default_port) return false;
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535) return false;
  }
  return IsHost(host);
}

bool IsTrustworthyWebOrigin(std::string_view origin) {
  if (!IsWebOrigin(origin)) return false;
  if (origin.rfind("https://", 0) == 0) return true;
  std::string_view host = origin.substr(7);  // "http://"
  size_t colon = host.rfind(':');
  if (colon != std::string_view::npos && (host.rfind(']') == std::string_view::npos || colon > host.rfind(']'))) {
    host = host.substr(0, colon);
  }
  if (host == "[::1]" || host == "localhost") return true;
  constexpr std::string_view kLocalhostSuffix = ".localhost";
  if (host.size() > kLocalhostSuffix.size() &&
      host.substr(host.size() - kLocalhostSuffix.size()) == kLocalhostSuffix) {
    return true;
  }
  std::string text(host);
  in_addr v4{};
  return inet_pton(AF_INET, text.c_str(), &v4) == 1 && (ntohl(v4.s_addr) >> 24) == 127;
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
