// The fixed names of the costore D-Bus contract, shared by the daemon and
// the client library. The interface names themselves come from the
// generated glue (INTERFACE_NAME).
#pragma once

namespace costore::ipc {

inline constexpr const char* kBusName = "io.github.costore";
inline constexpr const char* kObjectPath = "/io/github/costore";
inline constexpr const char* kErrorPrefix = "io.github.costore.Error.";
inline constexpr unsigned kStoreVersion = 1;
inline constexpr unsigned kManagerVersion = 1;

}  // namespace costore::ipc
