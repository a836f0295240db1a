#include "daemon/engine/principal.h"

#include <string>

#include "daemon/engine/quote.h"

namespace costore {
namespace {

constexpr size_t kMaxAppBytes = 4096;
constexpr size_t kMaxNameBytes = 1024;

}  // namespace

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
