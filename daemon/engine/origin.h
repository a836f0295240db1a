// Web origins as principals: one origin, one spelling.
//
// A site is known to the store by its origin, and the store keys grants,
// usage and private files by the origin's text. Two spellings of one
// origin ("https://Example.com:443", "https://example.com") would be two
// principals: a grant to one would not cover the other, and a site could
// pass for a fresh principal at will. So every origin is brought to the
// one form a browser serializes (WHATWG URL: host parsing and origin
// serialization) before it is used, and what has no such form is refused.
// The daemon and the native host both use this function; there is no
// second copy of the rule.
#pragma once

#include <string>
#include <string_view>

#include "daemon/engine/status.h"

namespace costore {

// The canonical form of `in`, a caller's origin:
//   ""                     stays "" (a local app acting for itself);
//   scheme "://" host [":" port], where
//     scheme  is https, or http when the host is loopback (localhost,
//             *.localhost, 127.0.0.0/8, [::1]): the origins a browser can
//             give a secure context; any letter case, written lowercase;
//     host    is a host name of LDH labels (letters, digits, '-'; no label
//             empty, longer than 63 or with '-' at either end; no trailing
//             dot), written lowercase, %XX escapes decoded first as a
//             browser does; or an IPv4 address in dotted decimal (a.b.c.d,
//             0-255, no leading zeros: a host whose last label is a number
//             must be one, hex, octal and short forms are refused); or an
//             IPv6 address in brackets, written as WHATWG does (lowercase,
//             the longest run of zero groups as "::", no embedded IPv4);
//             a host that is not ASCII is refused with a message asking for
//             its xn-- (punycode) form, which is what a browser's origin
//             holds; xn-- labels are taken as LDH labels;
//     port    decimal, leading zeros allowed, 1-65535; the scheme's default
//             (443, 80) is dropped;
//   no userinfo, path (not even "/"), query or fragment; at most 255 bytes
//   once canonical, 1024 as given.
// Refusals are InvalidArgument naming the origin (quoted) and what is wrong.
Status CanonicalizeOrigin(std::string_view in, std::string* out);

}  // namespace costore
