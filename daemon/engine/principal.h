// Principal: on whose behalf a call is made, the pair (app, origin).
// The app comes from kernel data about the calling process (see
// daemon/dbus/caller_identity.h); the origin is the caller's assertion.
#pragma once

#include <string>
#include <string_view>

#include "daemon/engine/status.h"

namespace costore {

struct Principal {
  std::string app;     // "/usr/bin/foo", "flatpak:org.example.App", "snap:foo"
  std::string origin;  // "" for the app itself, or a serialized web origin

  bool operator==(const Principal&) const = default;
  auto operator<=>(const Principal&) const = default;
};

// An origin is "" or a serialized tuple origin: scheme "://" host [":" port],
// lowercase, no userinfo, path, query, fragment or trailing slash, at most
// 255 bytes. "null" (an opaque origin) is refused: it cannot be a principal.
// The message names the origin and what is wrong with it.
Status ValidateOrigin(std::string_view origin);

// An app as written in Grant/Revoke: an absolute path, "flatpak:<id>" or
// "snap:<name>"; no control characters; at most 4096 bytes.
Status ValidateApp(std::string_view app);

// A display name hint: at most 1024 bytes, no control characters.
Status ValidateName(std::string_view name);

}  // namespace costore
