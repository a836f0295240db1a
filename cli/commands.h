// The costore subcommands. Each returns the process exit status and throws
// Failure (see exit_codes.h) when something goes wrong.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <costore/costore.hpp>

namespace costore::cli {

struct PutArgs {
  std::string source;  // a path, or "-" for standard input
  std::string origin;
  std::optional<std::string> name;
  std::optional<uint64_t> size;
  std::optional<std::string> digest;
  bool is_private = false;  // encrypted at rest, this principal's own
};

struct GetArgs {
  std::string digest;
  std::string output;  // "" or "-": standard output
  std::string origin;
  bool stream = false;  // a private file through a pipe instead of a memfd
};

struct GrantArgs {
  std::string digest;  // a digest or "*"
  std::string app;     // "self" means this executable
  std::string origin;
};

struct ConsentArgs {
  std::optional<std::string> policy;  // "ask", "ask-later" or "deny"
  std::optional<uint32_t> timeout_s;
  std::optional<uint32_t> prompts_per_hour;
  bool json = false;
};

struct VerifyArgs {
  std::vector<std::string> digests;  // none: every entry
  bool json = false;
};

struct GcArgs {
  std::optional<std::string> to;  // a SIZE (ParseSize)
  std::optional<uint32_t> older_than_days;
  bool dry_run = false;
  bool json = false;
};

struct SpaceArgs {
  std::optional<std::string> min_free;      // a SIZE or "auto"
  std::optional<std::string> quota;         // a SIZE or "none"
  std::optional<std::string> auto_collect;  // "on" or "off"
  std::optional<uint32_t> scrub_interval_days;
  std::optional<std::string> min_store_rate;  // a SIZE (per second) or "off"
  bool json = false;
};

int Put(const client::Client& client, const PutArgs& args);
int Get(const client::Client& client, const GetArgs& args);
// Every entry, or (digest not empty) the entries of one digest.
int List(const client::Client& client, const std::string& digest, bool json);
int Info(const client::Client& client, const std::string& digest, bool json);
int Remove(const client::Client& client, const std::string& digest);
int Grant(const client::Client& client, const GrantArgs& args);
int Revoke(const client::Client& client, const GrantArgs& args);
int Grants(const client::Client& client, const std::string& digest, bool json);
int Usage(const client::Client& client, const std::string& digest, bool json);
int ForgetSite(const client::Client& client, const std::string& origin, bool json);
// Sets what `args` names, then shows the settings.
int Consent(const client::Client& client, const ConsentArgs& args);
// The keyring's state for private files; kExitKeyring unless private files
// can be stored and opened now.
int Doctor(const client::Client& client, bool json);
// Re-wraps every private file's data key under a new master key.
int Rekey(const client::Client& client, bool json);
// Hashes every entry (or those of the digests); kExitDamaged when one is
// damaged, else kExitNotFound when a digest is not stored.
int Verify(const client::Client& client, const VerifyArgs& args);
// Deletes unpinned public files, least recently used first, as `args` says.
int Gc(const client::Client& client, const GcArgs& args);
int Pin(const client::Client& client, const std::string& digest, bool pinned);
// Sets what `args` names, then shows the store's size, room and settings.
int Space(const client::Client& client, const SpaceArgs& args);

}  // namespace costore::cli
