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
  std::string origin;  // "" for the app itself, or a canonical web origin (origin.h)

  bool operator==(const Principal&) const = default;
  auto operator<=>(const Principal&) const = default;
};

// An app as written in Grant/Revoke: an absolute path, "flatpak:<id>" or
// "snap:<name>"; no control characters; at most 4096 bytes.
Status ValidateApp(std::string_view app);

// A display name hint: at most 1024 bytes, no control characters.
Status ValidateName(std::string_view name);

}  // namespace costore
