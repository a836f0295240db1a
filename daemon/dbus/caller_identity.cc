#include "daemon/dbus/caller_identity.h"

#include <unistd.h>

#include <fstream>
#include <optional>
#include <sstream>
#include <string_view>

#include "daemon/engine/principal.h"

namespace costore {
namespace {

// The basename of the native messaging host's executable (native-host/).
constexpr std::string_view kNativeHostName = "costore-native-host";

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

// readlink <proc>/PID/exe without a trailing " (deleted)" (an executable
// replaced by an upgrade while running is still the same app), or "".
std::string Executable(const std::string& proc_root, pid_t pid) {
  std::string exe_link = ProcPath(proc_root, pid, "exe");
  std::string target(4096, '\0');
  ssize_t n = ::readlink(exe_link.c_str(), target.data(), target.size());
  if (n <= 0 || static_cast<size_t>(n) >= target.size()) return {};
  target.resize(static_cast<size_t>(n));
  constexpr std::string_view kDeleted = " (deleted)";
  if (target.size() > kDeleted.size() &&
      std::string_view(target).substr(target.size() - kDeleted.size()) == kDeleted) {
    target.resize(target.size() - kDeleted.size());
  }
  return target;
}

// The fields after "KEY:" on that line of <proc>/PID/status, or nullopt.
std::optional<std::string> StatusField(const std::string& proc_root, pid_t pid, std::string_view key) {
  std::ifstream in(ProcPath(proc_root, pid, "status"));
  if (!in) return std::nullopt;
  std::string line;
  while (std::getline(in, line)) {
    if (line.size() > key.size() && line.compare(0, key.size(), key) == 0 && line[key.size()] == ':') {
      return line.substr(key.size() + 1);
    }
  }
  return std::nullopt;
}

// The parent's pid from <proc>/PID/status, or 0.
pid_t ParentPid(const std::string& proc_root, pid_t pid) {
  std::optional<std::string> field = StatusField(proc_root, pid, "PPid");
  if (!field) return 0;
  std::istringstream in(*field);
  long ppid = 0;
  if (!(in >> ppid) || ppid <= 0) return 0;
  return static_cast<pid_t>(ppid);
}

// Whether every uid of process `pid` (real, effective, saved, filesystem)
// is `uid`.
bool RunsAs(const std::string& proc_root, pid_t pid, uid_t uid) {
  std::optional<std::string> field = StatusField(proc_root, pid, "Uid");
  if (!field) return false;
  std::istringstream in(*field);
  int count = 0;
  unsigned long value;
  while (in >> value) {
    if (value != static_cast<unsigned long>(uid)) return false;
    ++count;
  }
  return count > 0;
}

// The app that process `pid` is: flatpak, snap, or its executable, with
// `sandboxed` set accordingly. "" when none can be read; an error for a
// malformed flatpak id or snap name.
Status IdentifyApp(const std::string& proc_root, pid_t pid, std::string* app, bool* sandboxed) {
  std::string flatpak = FlatpakAppId(ProcPath(proc_root, pid, "root/.flatpak-info"));
  if (!flatpak.empty()) {
    *app = "flatpak:" + flatpak;
    *sandboxed = true;
    return ValidateApp(*app).ok() ? Status::OK()
                                  : Status::PermissionDenied("the caller's flatpak id is malformed");
  }
  std::string snap = SnapName(ProcPath(proc_root, pid, "cgroup"));
  if (!snap.empty()) {
    *app = "snap:" + snap;
    *sandboxed = true;
    return ValidateApp(*app).ok() ? Status::OK()
                                  : Status::PermissionDenied("the caller's snap name is malformed");
  }
  *app = Executable(proc_root, pid);
  *sandboxed = false;
  return Status::OK();
}

bool IsNativeHost(std::string_view exe) {
  size_t slash = exe.rfind('/');
  return exe.substr(slash == std::string_view::npos ? 0 : slash + 1) == kNativeHostName;
}

// The browser that started native host `host`: its parent, identified as
// any caller, when that parent is a process of `uid` other than pid 1 whose
// app can be read. False otherwise (the caller then stays the host).
bool IdentifyHostParent(const std::string& proc_root, pid_t host, uid_t uid, std::string* app,
                        bool* sandboxed) {
  pid_t parent = ParentPid(proc_root, host);
  if (parent <= 1) return false;
  if (!RunsAs(proc_root, parent, uid)) return false;
  std::string parent_app;
  bool parent_sandboxed = false;
  if (!IdentifyApp(proc_root, parent, &parent_app, &parent_sandboxed).ok() || parent_app.empty()) {
    return false;
  }
  // The parent may have exited and its pid been reused since PPid was read.
  // A child whose parent exits is reparented at once to an older process (a
  // subreaper or init), never back to a newer one: if the host's parent is
  // still `parent` now, everything above was read from the host's parent.
  if (ParentPid(proc_root, host) != parent) return false;
  *app = std::move(parent_app);
  *sandboxed = parent_sandboxed;
  return true;
}

}  // namespace

Status IdentifyProcess(pid_t pid, CallerIdentity* identity, const std::string& proc_root) {
  if (pid <= 0) return Status::PermissionDenied("the bus did not report the caller's process");
  identity->pid = pid;

  std::string app;
  bool sandboxed = false;
  Status s = IdentifyApp(proc_root, pid, &app, &sandboxed);
  if (!s.ok()) return s;
  if (app.empty()) {
    return Status::PermissionDenied("cannot identify the calling process " + std::to_string(pid));
  }
  // Only an unsandboxed host speaks for its parent: a host inside a flatpak
  // or snap is that flatpak or snap, as above.
  if (!sandboxed && IsNativeHost(app)) {
    IdentifyHostParent(proc_root, pid, identity->uid, &app, &sandboxed);
  }
  identity->app = std::move(app);
  identity->sandboxed = sandboxed;
  return Status::OK();
}

}  // namespace costore
