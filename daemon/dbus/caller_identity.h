// Who is calling: derived from kernel data about the calling process, never
// from anything the caller says. The pid and uid come from the bus daemon
// (GetConnectionCredentials); the app from /proc/PID.
#pragma once

#include <sys/types.h>

#include <string>

#include "daemon/engine/status.h"

namespace costore {

struct CallerIdentity {
  uid_t uid = static_cast<uid_t>(-1);
  pid_t pid = 0;
  // "/usr/bin/foo", "flatpak:org.example.App" or "snap:foo".
  std::string app;
  // Flatpak and snap apps: principals like any other for Store1, never
  // allowed on Manager1 (they must not grant themselves access).
  bool sandboxed = false;
};

// Fills app and sandboxed for process `pid`, reading under `proc_root`
// (normally "/proc"; tests point it at a fake tree). identity->uid must be
// the caller's uid (from the bus) already.
//   1. <proc>/PID/root/.flatpak-info with [Application] name=ID -> flatpak:ID
//   2. a cgroup path component "snap.NAME.*"                    -> snap:NAME
//   3. the executable, readlink <proc>/PID/exe                  -> its path
//   4. when that executable is named "costore-native-host": its parent
//      process (PPid in <proc>/PID/status), identified by 1-3, if that
//      parent is not pid 1, runs as identity->uid (every uid in its status)
//      and its app can be read; otherwise the host's own path.
//
// Why 4: the native messaging host acts for the browser that started it, so
// the principal's app is the browser ("/usr/lib/chromium/chromium",
// "/usr/lib/firefox-esr/firefox-esr"), not the host binary that every
// browser shares; sites are then told apart per browser. Browsers start
// native hosts as their direct children. A host whose browser died is
// reparented to init (pid 1: falls back) or to a subreaper such as
// systemd --user (taken as the app: a principal nobody granted anything;
// the daemon identifies a connection once, at its first call, which the
// host makes for a request its browser just sent). The host's PPid is read
// again after the parent's app: a parent that exited meanwhile, its pid
// perhaps reused, is never taken for the browser. Falling back never fails
// the call: the caller is then the host, as any other program is its
// executable.
//
// This gives nobody anything new: any unsandboxed program of the same user
// could already start the host and claim any origin through it (or start
// the browser's executable with a host of its own); that is out of the
// threat model, like anything else a same-user process can do. A sandboxed
// app cannot see the host binary, and a host inside a flatpak or snap is
// that flatpak or snap (1-2) before 4 applies.
Status IdentifyProcess(pid_t pid, CallerIdentity* identity,
                       const std::string& proc_root = "/proc");

}  // namespace costore
