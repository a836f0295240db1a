#include "daemon/engine/principal.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <string>

#include "daemon/engine/quote.h"

namespace costore {
namespace {

constexpr size_t kMaxOriginBytes = 255;
constexpr size_t kMaxAppBytes = 4096;
constexpr size_t kMaxNameBytes = 1024;

bool IsSchemeChar(char c, bool first) {
  if (c >= 'a' && c <= 'z') return true;
  if (first) return false;
  return (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.';
}

bool IsHostChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
}

Status BadOrigin(std::string_view origin, std::string_view why) {
  return Status::InvalidArgument("origin " + Quote(origin) + " " + std::string(why) +
                                 "; expected \"\" or scheme://host[:port], e.g. "
                                 "\"https://huggingface.co\"");
}

}  // namespace

Status ValidateOrigin(std::string_view origin) {
  if (origin.empty()) return Status::OK();
  if (origin.size() > kMaxOriginBytes) return BadOrigin(origin, "is longer than 255 bytes");
  if (HasControlCharacter(origin)) return BadOrigin(origin, "contains a control character");
  if (origin == "null") return BadOrigin(origin, "is opaque and cannot own files");
  size_t sep = origin.find("://");
  if (sep == std::string_view::npos || sep == 0) return BadOrigin(origin, "has no scheme");
  for (size_t i = 0; i < sep; ++i) {
    if (!IsSchemeChar(origin[i], i == 0)) {
      return BadOrigin(origin, "has a scheme that is not lowercase letters, digits, '+', '-' or '.'");
    }
  }
  std::string_view rest = origin.substr(sep + 3);
  if (rest.empty()) return BadOrigin(origin, "has no host");
  if (rest.find('@') != std::string_view::npos) return BadOrigin(origin, "has user information");
  std::string_view host = rest;
  std::string_view port;
  if (rest.front() == '[') {  // IPv6 literal
    size_t close = rest.find(']');
    if (close == std::string_view::npos) return BadOrigin(origin, "has an unterminated IPv6 address");
    std::string address(rest.substr(1, close - 1));
    in6_addr parsed;
    bool lowercase = std::none_of(address.begin(), address.end(), [](char c) { return c >= 'A' && c <= 'F'; });
    if (address.empty() || !lowercase || inet_pton(AF_INET6, address.c_str(), &parsed) != 1) {
      return BadOrigin(origin, "has an invalid IPv6 address");
    }
    host = rest.substr(0, close + 1);
    std::string_view after = rest.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return BadOrigin(origin, "has a path, query or fragment");
      port = after.substr(1);
      if (port.empty()) return BadOrigin(origin, "has an empty port");
    }
  } else {
    size_t colon = rest.find(':');
    if (colon != std::string_view::npos) {
      host = rest.substr(0, colon);
      port = rest.substr(colon + 1);
      if (port.empty()) return BadOrigin(origin, "has an empty port");
    }
    if (host.empty()) return BadOrigin(origin, "has no host");
    for (char c : host) {
      if (c == '/' || c == '?' || c == '#' || c == '\\') {
        return BadOrigin(origin, "has a path, query or fragment");
      }
      if (c == '@') return BadOrigin(origin, "has user information");
      if (c >= 'A' && c <= 'Z') return BadOrigin(origin, "is not lowercase");
      if (!IsHostChar(c)) return BadOrigin(origin, "has a character not allowed in a host name");
    }
    if (host.front() == '.' || host.back() == '.' || host.find("..") != std::string_view::npos) {
      return BadOrigin(origin, "has an empty host label");
    }
    for (size_t start = 0; start < host.size();) {
      size_t end = host.find('.', start);
      if (end == std::string_view::npos) end = host.size();
      if (host[start] == '-' || host[end - 1] == '-') {
        return BadOrigin(origin, "has a host label that starts or ends with '-'");
      }
      start = end + 1;
    }
  }
  if (!port.empty()) {
    if (port.size() > 5) return BadOrigin(origin, "has a port that is out of range");
    unsigned value = 0;
    for (char c : port) {
      if (c < '0' || c > '9') {
        return BadOrigin(origin, c == '/' ? "has a path, query or fragment" : "has a port that is not a number");
      }
      value = value * 10 + static_cast<unsigned>(c - '0');
    }
    if (value == 0 || value > 65535) return BadOrigin(origin, "has a port that is out of range");
  }
  return Status::OK();
}

Status ValidateApp(std::string_view app) {
  auto bad = [&](std::string_view why) {
    return Status::InvalidArgument("app " + Quote(app) + " " + std::string(why) +
                                   "; expected an absolute path, flatpak:<id> or snap:<name>");
  };
  if (app.empty()) return bad("is empty");
  if (app.size() > kMaxAppBytes) return bad("is longer than 4096 bytes");
  if (HasControlCharacter(app)) return bad("contains a control character");
  if (app.front() == '/') return Status::OK();
  for (std::string_view prefix : {std::string_view("flatpak:"), std::string_view("snap:")}) {
    if (app.substr(0, prefix.size()) == prefix) {
      if (app.size() == prefix.size()) return bad("has an empty id");
      if (app.find('/') != std::string_view::npos) return bad("contains a '/'");
      return Status::OK();
    }
  }
  return bad("is not recognised");
}

Status ValidateName(std::string_view name) {
  if (name.size() > kMaxNameBytes) {
    return Status::InvalidArgument("name " + Quote(name) + " is longer than 1024 bytes");
  }
  if (HasControlCharacter(name)) {
    return Status::InvalidArgument("name " + Quote(name) + " contains a control character");
  }
  return Status::OK();
}

}  // namespace costore
