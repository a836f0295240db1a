#include "daemon/dbus/caller_identity.h"

#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string_view>

#include "daemon/engine/principal.h"

namespace costore {
namespace {

std::string ProcPath(const std::string& proc_root, pid_t pid, const char* leaf) {
  return proc_root + "/" + std::to_string(pid) + "/" + leaf;
}

// The [Application] name= key of a .flatpak-info keyfile, or "".
std::string FlatpakAppId(const std::string& path) {
  std::ifstream in(path);
  if (!in) return {};
  std::string line;
  bool in_application = false;
  while (std::getline(in, line)) {
    if (!line.empty() && line.front() == '[') {
      in_application = line == "[Application]";
      continue;
    }
    if (in_application && line.rfind("name=", 0) == 0) return line.substr(5);
  }
  return {};
}

// The NAME of a cgroup component "snap.NAME.<app>-<id>.scope", or "".
std::string SnapName(const std::string& cgroup_path) {
  std::ifstream in(cgroup_path);
  if (!in) return {};
  std::string line;
  while (std::getline(in, line)) {
    std::string_view rest(line);
    size_t pos;
    while ((pos = rest.find("/snap.")) != std::string_view::npos) {
      rest = rest.substr(pos + 6);
      size_t dot = rest.find('.');
      if (dot != std::string_view::npos && dot > 0) return std::string(rest.substr(0, dot));
    }
  }
  return {};
}

}  // namespace

Status IdentifyProcess(pid_t pid, CallerIdentity* identity, const std::string& proc_root) {
  if (pid <= 0) return Status::PermissionDenied("the bus did not report the caller's process");
  identity->pid = pid;

  std::string flatpak = FlatpakAppId(ProcPath(proc_root, pid, "root/.flatpak-info"));
  if (!flatpak.empty()) {
    identity->app = "flatpak:" + flatpak;
    identity->sandboxed = true;
    return ValidateApp(identity->app).ok()
               ? Status::OK()
               : Status::PermissionDenied("the caller's flatpak id is malformed");
  }
  std::string snap = SnapName(ProcPath(proc_root, pid, "cgroup"));
  if (!snap.empty()) {
    identity->app = "snap:" + snap;
    identity->sandboxed = true;
    return ValidateApp(identity->app).ok()
               ? Status::OK()
               : Status::PermissionDenied("the caller's snap name is malformed");
  }

  std::string exe_link = ProcPath(proc_root, pid, "exe");
  std::string target(4096, '\0');
  ssize_t n = ::readlink(exe_link.c_str(), target.data(), target.size());
  if (n <= 0 || static_cast<size_t>(n) >= target.size()) {
    return Status::PermissionDenied("cannot identify the calling process " + std::to_string(pid));
  }
  target.resize(static_cast<size_t>(n));
  // An executable replaced by an upgrade while running reads "... (deleted)":
  // it is still the same app.
  constexpr std::string_view kDeleted = " (deleted)";
  if (target.size() > kDeleted.size() &&
      std::string_view(target).substr(target.size() - kDeleted.size()) == kDeleted) {
    target.resize(target.size() - kDeleted.size());
  }
  identity->app = target;
  identity->sandboxed = false;
  return Status::OK();
}

}  // namespace costore
