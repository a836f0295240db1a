// The a{sv} options of Store1 and Manager1 calls, parsed into the engine's
// request structs: pure functions of the dictionary, so that they can be
// unit-tested and fuzzed without a bus (fuzz/call_options_fuzzer.cc).
//
// A key of the wrong D-Bus type is an InvalidArgument naming the key, the
// type it must have and the type it had; unknown keys are ignored (as the
// ipc/*.xml contracts say); an absent key leaves the default.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <sdbus-c++/sdbus-c++.h>

#include "daemon/engine/engine.h"
#include "daemon/engine/status.h"

namespace costore {

using CallOptions = std::map<std::string, sdbus::Variant>;

// Reads option `key` of type T (D-Bus signature `type_name`) into *out;
// absent leaves *out untouched.
template <typename T>
Status GetOption(const CallOptions& options, const std::string& key, const char* type_name, T* out) {
  auto it = options.find(key);
  if (it == options.end()) return Status::OK();
  if (!it->second.containsValueOfType<T>()) {
    return Status::InvalidArgument("option \"" + key + "\" must be of D-Bus type " + type_name + ", not " +
                                   it->second.peekValueType());
  }
  *out = it->second.get<T>();
  return Status::OK();
}

// Store1.Store: "size" (t), "name" (s), "private" (b).
Status ParseStoreOptions(const CallOptions& options, StoreRequest* request);
// Store1.Open: "stream" (b).
Status ParseOpenOptions(const CallOptions& options, OpenOptions* open);
// Manager1.Collect: "target-size" (t), "unused-for" (t), "dry-run" (b).
Status ParseCollectOptions(const CallOptions& options, CollectOptions* collect);
// Manager1.Verify: "digests" (as); absent means every file.
Status ParseVerifyOptions(const CallOptions& options, std::vector<std::string>* digests);

}  // namespace costore
