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
// (normally "/proc"; tests point it at a fake tree).
//   1. <proc>/PID/root/.flatpak-info with [Application] name=ID -> flatpak:ID
//   2. a cgroup path component "snap.NAME.*"                    -> snap:NAME
//   3. the executable, readlink <proc>/PID/exe                  -> its path
Status IdentifyProcess(pid_t pid, CallerIdentity* identity,
                       const std::string& proc_root = "/proc");

}  // namespace costore
