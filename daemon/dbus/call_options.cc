#include "daemon/dbus/call_options.h"

namespace costore {
namespace {

// An optional<uint64_t> field: set only when the key is present.
Status GetOptionalUint64(const CallOptions& options, const std::string& key, std::optional<uint64_t>* out) {
  if (!options.count(key)) return Status::OK();
  uint64_t value = 0;
  Status s = GetOption(options, key, "t", &value);
  if (s.ok()) *out = value;
  return s;
}

}  // namespace

Status ParseStoreOptions(const CallOptions& options, StoreRequest* request) {
  Status s = GetOptionalUint64(options, "size", &request->size);
  if (s.ok()) s = GetOption(options, "name", "s", &request->name);
  if (s.ok()) s = GetOption(options, "private", "b", &request->is_private);
  return s;
}

Status ParseOpenOptions(const CallOptions& options, OpenOptions* open) {
  return GetOption(options, "stream", "b", &open->stream);
}

Status ParseCollectOptions(const CallOptions& options, CollectOptions* collect) {
  Status s = GetOptionalUint64(options, "target-size", &collect->target_size);
  if (s.ok()) s = GetOptionalUint64(options, "unused-for", &collect->unused_for_s);
  if (s.ok()) s = GetOption(options, "dry-run", "b", &collect->dry_run);
  return s;
}

Status ParseVerifyOptions(const CallOptions& options, std::vector<std::string>* digests) {
  return GetOption(options, "digests", "as", digests);
}

}  // namespace costore
