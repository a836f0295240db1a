#include "daemon/engine/origin.h"

#include <arpa/inet.h>

#include <array>
#include <cstdint>

#include "daemon/engine/quote.h"

namespace costore {
namespace {

constexpr size_t kMaxOriginBytes = 255;
constexpr size_t kMaxInputBytes = 1024;
constexpr size_t kMaxLabelBytes = 63;

Status BadOrigin(std::string_view origin, std::string_view why) {
  return Status::InvalidArgument("origin " + Quote(origin) + " " + std::string(why) +
                                 "; expected \"\" or https://host[:port] (http:// for a loopback host), "
                                 "e.g. \"https://huggingface.co\"");
}

char ToLower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

int HexValue(char c) {
  if (IsDigit(c)) return c - '0';
  c = ToLower(c);
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

bool AllOf(std::string_view text, bool (*pred)(char)) {
  for (char c : text) {
    if (!pred(c)) return false;
  }
  return true;
}

// WHATWG's "ends in a number": a host whose last label is decimal or 0x
// hex is an IPv4 address to a browser (or an error), never a name.
bool EndsInANumber(std::string_view host) {
  size_t dot = host.rfind('.');
  std::string_view last = dot == std::string_view::npos ? host : host.substr(dot + 1);
  if (!last.empty() && AllOf(last, IsDigit)) return true;
  if (last.size() >= 2 && last[0] == '0' && last[1] == 'x') {
    return AllOf(last.substr(2), [](char c) { return HexValue(c) >= 0; });
  }
  return false;
}

// a.b.c.d, each 0-255 in decimal without leading zeros: the only IPv4 form
// a browser serializes. Sets *first_octet.
bool IsDottedDecimal(std::string_view host, int* first_octet) {
  int parts = 0;
  for (size_t start = 0; start <= host.size(); ++parts) {
    size_t dot = host.find('.', start);
    if (dot == std::string_view::npos) dot = host.size();
    std::string_view part = host.substr(start, dot - start);
    if (part.empty() || part.size() > 3 || !AllOf(part, IsDigit)) return false;
    if (part.size() > 1 && part[0] == '0') return false;
    int value = 0;
    for (char c : part) value = value * 10 + (c - '0');
    if (value > 255) return false;
    if (parts == 0) *first_octet = value;
    start = dot + 1;
  }
  return parts == 4;
}

// The bracketed address as WHATWG serializes it: lowercase hex without
// leading zeros, the first longest run of two or more zero groups as "::",
// an embedded IPv4 address written as hex groups.
bool CanonicalIpv6(std::string_view inner, std::string* out) {
  if (inner.empty()) return false;
  for (char c : inner) {
    if (HexValue(c) < 0 && c != ':' && c != '.') return false;  // no zone ids, no spaces
  }
  std::string text(inner);
  std::array<unsigned char, 16> bytes{};
  if (inet_pton(AF_INET6, text.c_str(), bytes.data()) != 1) return false;
  std::array<unsigned, 8> groups{};
  for (size_t i = 0; i < 8; ++i) groups[i] = (unsigned{bytes[2 * i]} << 8) | bytes[2 * i + 1];
  size_t compress = 8, run = 0;
  for (size_t i = 0; i < 8;) {
    size_t j = i;
    while (j < 8 && groups[j] == 0) ++j;
    if (j - i > run && j - i >= 2) {
      compress = i;
      run = j - i;
    }
    i = j == i ? i + 1 : j;
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s = "[";
  for (size_t i = 0; i < 8;) {
    if (i == compress) {
      s += "::";
      i += run;
      continue;
    }
    bool leading = true;
    for (int shift = 12; shift >= 0; shift -= 4) {
      unsigned digit = (groups[i] >> shift) & 0xf;
      if (leading && digit == 0 && shift > 0) continue;
      leading = false;
      s += kHex[digit];
    }
    ++i;
    if (i < 8 && i != compress) s += ':';
  }
  s += ']';
  *out = std::move(s);
  return true;
}

// The host of a special URL, as the WHATWG host parser reads it, held to
// LDH names; *loopback tells whether http may be used with it.
Status CanonicalHost(std::string_view origin, std::string_view in, std::string* out, bool* loopback) {
  if (in.empty()) return BadOrigin(origin, "has no host");
  if (in.front() == '[') {
    if (in.back() != ']') return BadOrigin(origin, "has an invalid IPv6 address");
    if (!CanonicalIpv6(in.substr(1, in.size() - 2), out)) return BadOrigin(origin, "has an invalid IPv6 address");
    *loopback = *out == "[::1]";
    return Status::OK();
  }
  // Browsers decode %XX in a host before anything else.
  std::string host;
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      host += ToLower(in[i]);
      continue;
    }
    if (i + 2 >= in.size() || HexValue(in[i + 1]) < 0 || HexValue(in[i + 2]) < 0) {
      return BadOrigin(origin, "has a '%' in its host that is not a %XX escape");
    }
    host += ToLower(static_cast<char>(HexValue(in[i + 1]) * 16 + HexValue(in[i + 2])));
    i += 2;
  }
  for (char c : host) {
    if (static_cast<unsigned char>(c) >= 0x80) {
      return BadOrigin(origin,
                       "has a host that is not ASCII; give its xn-- (punycode) form, as a browser's "
                       "origin does (e.g. \"https://xn--bcher-kva.example\" for b\xC3\xBC" "cher.example)");
    }
  }
  if (host.empty() || host.front() == '.' || host.back() == '.' || host.find("..") != std::string::npos) {
    return BadOrigin(origin, "has an empty host label (or a trailing dot)");
  }
  if (EndsInANumber(host)) {
    int first_octet = 0;
    if (!IsDottedDecimal(host, &first_octet)) {
      return BadOrigin(origin,
                       "has a host that ends in a number but is not an IPv4 address in dotted decimal "
                       "(a.b.c.d, each 0-255 without leading zeros)");
    }
    *loopback = first_octet == 127;
    *out = std::move(host);
    return Status::OK();
  }
  for (size_t start = 0; start < host.size();) {
    size_t dot = host.find('.', start);
    if (dot == std::string::npos) dot = host.size();
    std::string_view label = std::string_view(host).substr(start, dot - start);
    if (label.size() > kMaxLabelBytes) return BadOrigin(origin, "has a host label longer than 63 bytes");
    for (char c : label) {
      if (!(IsAlpha(c) || IsDigit(c) || c == '-')) {
        return BadOrigin(origin, "has " + Quote(std::string_view(&c, 1)) +
                                     " in its host; a host name is letters, digits, '-' and '.'");
      }
    }
    if (label.front() == '-' || label.back() == '-') {
      return BadOrigin(origin, "has a host label that starts or ends with '-'");
    }
    start = dot + 1;
  }
  constexpr std::string_view kLocalhost = "localhost";
  *loopback = host == kLocalhost ||
              (host.size() > kLocalhost.size() && host.ends_with(kLocalhost) &&
               host[host.size() - kLocalhost.size() - 1] == '.');
  *out = std::move(host);
  return Status::OK();
}

// A decimal port, leading zeros allowed, 1-65535; 0 for none.
Status ParsePort(std::string_view origin, std::string_view text, unsigned* port) {
  if (text.empty()) return BadOrigin(origin, "has an empty port");
  if (!AllOf(text, IsDigit)) return BadOrigin(origin, "has a port that is not a number");
  while (text.size() > 1 && text.front() == '0') text.remove_prefix(1);
  unsigned value = 0;
  if (text.size() <= 5) {
    for (char c : text) value = value * 10 + static_cast<unsigned>(c - '0');
  }
  if (text.size() > 5 || value == 0 || value > 65535) {
    return BadOrigin(origin, "has a port that is out of range (1-65535)");
  }
  *port = value;
  return Status::OK();
}

}  // namespace

Status CanonicalizeOrigin(std::string_view in, std::string* out) {
  if (in.empty()) {
    out->clear();
    return Status::OK();
  }
  if (in.size() > kMaxInputBytes) return BadOrigin(in, "is longer than 1024 bytes");
  if (HasControlCharacter(in)) return BadOrigin(in, "contains a control character");
  if (in == "null") return BadOrigin(in, "is opaque and cannot own files");

  size_t sep = in.find("://");
  if (sep == std::string_view::npos || sep == 0) return BadOrigin(in, "has no scheme");
  std::string scheme;
  for (size_t i = 0; i < sep; ++i) {
    char c = in[i];
    if (!(IsAlpha(c) || (i > 0 && (IsDigit(c) || c == '+' || c == '-' || c == '.')))) {
      return BadOrigin(in, "has a scheme that is not letters, digits, '+', '-' or '.'");
    }
    scheme += ToLower(c);
  }
  if (scheme != "https" && scheme != "http") {
    return BadOrigin(in, "has the scheme " + Quote(scheme) +
                             ", which cannot be an origin here: only https (and http for a loopback "
                             "host) gives a secure context");
  }

  std::string_view authority = in.substr(sep + 3);
  if (authority.find_first_of("/?#\\") != std::string_view::npos) {
    return BadOrigin(in, "has a path, query or fragment");
  }
  if (authority.find('@') != std::string_view::npos) return BadOrigin(in, "has user information");
  std::string_view host_text = authority;
  std::string_view port_text;
  bool has_port = false;
  size_t colon = authority.find(':');
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return BadOrigin(in, "has an unterminated IPv6 address");
    host_text = authority.substr(0, close + 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty() && after.front() != ':') {
      return BadOrigin(in, "has characters after its IPv6 address that are not a port");
    }
    has_port = !after.empty();
    if (has_port) port_text = after.substr(1);
  } else if (colon != std::string_view::npos) {
    host_text = authority.substr(0, colon);
    port_text = authority.substr(colon + 1);
    has_port = true;
  }

  std::string host;
  bool loopback = false;
  Status s = CanonicalHost(in, host_text, &host, &loopback);
  if (!s.ok()) return s;
  unsigned port = 0;
  if (has_port) {
    s = ParsePort(in, port_text, &port);
    if (!s.ok()) return s;
  }
  if (scheme == "http" && !loopback) {
    return BadOrigin(in,
                     "is http on a host that is not loopback (localhost, *.localhost, 127.0.0.0/8, "
                     "[::1]); a browser gives such a page no secure context: use https");
  }
  std::string canonical = scheme + "://" + host;
  const unsigned default_port = scheme == "https" ? 443 : 80;
  if (port != 0 && port != default_port) canonical += ":" + std::to_string(port);
  if (canonical.size() > kMaxOriginBytes) return BadOrigin(in, "is longer than 255 bytes");
  *out = std::move(canonical);
  return Status::OK();
}

}  // namespace costore
