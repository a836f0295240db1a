#include "commands.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <iostream>
#include <optional>

#include <nlohmann/json.hpp>

#include "exit_codes.h"
#include "format.h"
#include "progress.h"
#include "transfer.h"

namespace costore::cli {
namespace {

using client::kUnknownSize;
using nlohmann::json;

std::string Basename(const std::string& path) {
  size_t slash = path.find_last_not_of('/');
  if (slash == std::string::npos) return path;
  std::string trimmed = path.substr(0, slash + 1);
  size_t start = trimmed.rfind('/');
  return start == std::string::npos ? trimmed : trimmed.substr(start + 1);
}

std::string NormalizedOrFail(const std::string& what, const std::string& digest) {
  return Attempt(what, [&] { return client::NormalizeDigest(digest); });
}

// "self" stands for this program, as the daemon will identify it.
std::string ResolveApp(const std::string& app) {
  if (app != "self") return app;
  char path[PATH_MAX];
  ssize_t length = ::readlink("/proc/self/exe", path, sizeof path - 1);
  if (length < 0) throw Failure{kExitOther, std::string("cannot resolve --app self: ") + std::strerror(errno)};
  return std::string(path, static_cast<size_t>(length));
}

json ToJson(const client::FileEntry& entry) {
  json object = {{"digest", entry.digest},           {"size", entry.size},
                 {"name", entry.name},               {"private", entry.is_private},
                 {"first-stored", entry.first_stored_usec}, {"last-used", entry.last_used_usec},
                 {"stored-by", entry.stored_by},     {"used-by", entry.used_by},
                 {"cipher", entry.cipher},           {"state", entry.state},
                 {"problem", entry.problem},         {"last-verified", entry.last_verified_usec},
                 {"pinned", entry.pinned}};
  if (entry.is_private) {
    object["owner-app"] = entry.owner_app;
    object["owner-origin"] = entry.owner_origin;
  }
  return object;
}

// "https://a.example (/usr/bin/chromium)", or the app alone for its own
// principal.
std::string HumanPrincipal(const std::string& app, const std::string& origin) {
  return origin.empty() ? app : origin + " (" + app + ")";
}

// An entry's state for a table cell: "ok", "pinned", "damaged: <problem>",
// "damaged, pinned: <problem>".
std::string HumanState(const client::FileEntry& entry) {
  if (!entry.damaged()) return entry.pinned ? "pinned" : "ok";
  std::string words = entry.pinned ? "damaged, pinned" : "damaged";
  return entry.problem.empty() ? words : words + ": " + entry.problem;
}

// "1 file", "2 files".
std::string Count(uint64_t n, const std::string& one, const std::string& many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

// What a person typed for a SIZE option, in bytes; a usage error naming
// the option and the text otherwise.
uint64_t SizeOrFail(const std::string& what, const std::string& text) {
  std::string why;
  std::optional<uint64_t> bytes = ParseSize(text, &why);
  if (!bytes)
    throw Failure{kExitUsage, what + ": \"" + Printable(text) + "\" is not a size: " + why +
                                  " (write it as 500M, 2G, 1.5GiB or a number of bytes)"};
  return *bytes;
}

// The state of KeyringStatus in plain words.
std::string KeyringStateWords(const std::string& state) {
  if (state == "ready") return "ready: unlocked, and it holds costore's master key";
  if (state == "no-key") return "ready: no master key yet (the first private store makes one)";
  if (state == "no-service") return "unavailable: no Secret Service (keyring daemon) on the session bus";
  if (state == "locked") return "locked";
  if (state == "no-default-collection") return "unavailable: no default collection to keep a key in";
  if (state == "key-missing") return "the master key is missing from the keyring";
  if (state == "error") return "error: the keyring could not be read";
  return "unknown state \"" + state + "\" (taken as not ready)";
}

void PrintJson(const json& value) { std::cout << value.dump(2) << '\n'; }

}  // namespace

int Put(const client::Client& client, const PutArgs& args) {
  const bool from_stdin = args.source == "-";
  const std::string what = "put " + (from_stdin ? std::string("standard input") : args.source);
  client::UniqueFd file;
  int fd = STDIN_FILENO;
  if (!from_stdin) {
    file.reset(::open(args.source.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
    if (!file) throw Failure{kExitOther, "cannot open " + args.source + ": " + std::strerror(errno)};
    fd = file.get();
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw Failure{kExitOther, what + ": " + std::strerror(errno)};
  if (S_ISDIR(st.st_mode)) throw Failure{kExitOther, what + ": it is a directory"};
  const bool regular = S_ISREG(st.st_mode);
  off_t offset = regular ? ::lseek(fd, 0, SEEK_CUR) : 0;
  if (offset < 0) offset = 0;

  client::StoreOptions options;
  options.origin = args.origin;
  options.is_private = args.is_private;
  options.name = args.name.value_or(from_stdin ? std::string() : Basename(args.source));
  std::string digest;
  client::UniqueFd spool;
  if (args.digest) {
    digest = NormalizedOrFail(what, *args.digest);
    if (regular) options.size = static_cast<uint64_t>(st.st_size - offset);
  } else if (regular) {
    // The daemon needs the digest up front: hash the file first.
    ProgressBar bar("hashing");
    const auto total = static_cast<uint64_t>(st.st_size - offset);
    Hashed hashed = Attempt(what, [&] {
      return HashFile(fd, static_cast<uint64_t>(offset), [&](uint64_t done) { bar.Update(done, total); });
    });
    digest = hashed.digest;
    options.size = hashed.size;
  } else {
    // A pipe or terminal can be read only once: spool it to an unnamed
    // temporary file while hashing, then store that.
    ProgressBar bar("reading");
    Spooled spooled = Attempt(what, [&] {
      return SpoolAndHash(fd, [&](uint64_t done) { bar.Update(done, kUnknownSize); });
    });
    spool = std::move(spooled.fd);
    fd = spool.get();
    digest = spooled.hashed.digest;
    options.size = spooled.hashed.size;
  }
  if (args.size) options.size = *args.size;

  ProgressBar bar("storing");
  options.progress = [&](uint64_t done, uint64_t total) { bar.Update(done, total); };
  client::FileInfo info = Attempt(what, [&] { return client.StoreFd(fd, digest, options); });
  bar.Finish();
  std::cout << info.digest << '\n';
  return kExitOk;
}

int Get(const client::Client& client, const GetArgs& args) {
  std::string digest = NormalizedOrFail("get", args.digest);
  const std::string what = "get " + digest;
  const bool to_stdout = args.output.empty() || args.output == "-";
  if (to_stdout && ::isatty(STDOUT_FILENO) == 1)
    throw Failure{kExitUsage, "get: not writing a model file to a terminal: use -o FILE or redirect standard output"};

  client::OpenOptions open_options;
  open_options.stream = args.stream;
  client::OpenedFile opened;
  try {
    opened = client.Open(digest, args.origin, open_options);
  } catch (const client::Error& error) {
    std::string message = what + ": " + error.what();
    // A damaged file is never served, and Open says no more than for a
    // file that is not there; the store's own user may hear why.
    if (error.code() == client::ErrorCode::kNotFound) {
      try {
        client::FileEntry entry = client.Stat(digest);
        if (entry.damaged())
          message += " (the store's copy is damaged" + (entry.problem.empty() ? "" : ": " + entry.problem) +
                     "; storing the right bytes again repairs it)";
      } catch (const client::Error&) {
        // Not stored at all: the daemon's message says it.
      }
    }
    throw Failure{ExitCodeFor(error.code()), message};
  }
  ProgressBar bar("reading");
  auto progress = [&](uint64_t done) { bar.Update(done, opened.info.size); };
  uint64_t copied = 0;
  if (to_stdout) {
    copied = Attempt(what, [&] { return CopyAll(opened.fd.get(), STDOUT_FILENO, progress); });
  } else {
    Attempt(what, [&] {
      OutputFile output(args.output);
      copied = CopyAll(opened.fd.get(), output.fd(), progress);
      if (copied == opened.info.size) output.Commit();
    });
  }
  bar.Finish();
  if (copied != opened.info.size) {
    std::string message = what + ": the file ended after " + std::to_string(copied) + " of " +
                          std::to_string(opened.info.size) + " bytes";
    // A private file's pipe ends early when a chunk fails authentication.
    if (opened.info.is_private)
      message += " (the daemon stopped: a chunk of this private file may have failed authentication; its log "
                 "says which)";
    if (!to_stdout) message += "; " + args.output + " was not written";
    throw Failure{kExitOther, message};
  }
  return kExitOk;
}

int List(const client::Client& client, const std::string& digest_text, bool as_json) {
  std::string digest = digest_text.empty() ? std::string() : NormalizedOrFail("ls", digest_text);
  auto files = Attempt(digest.empty() ? std::string("ls") : "ls " + digest, [&] { return client.List(digest); });
  if (as_json) {
    json array = json::array();
    for (const auto& entry : files) array.push_back(ToJson(entry));
    PrintJson(array);
    return kExitOk;
  }
  if (files.empty()) {
    if (!digest.empty()) throw Failure{kExitNotFound, "ls " + digest + ": no file " + digest + " in the store"};
    std::cout << "The store is empty.\n";
    return kExitOk;
  }
  // Private entries are marked with whose they are; a store without any
  // keeps the plain table.
  const bool any_private = std::any_of(files.begin(), files.end(), [](const auto& entry) { return entry.is_private; });
  // So are damaged and pinned ones, in a last column (a problem can be long).
  const size_t damaged = static_cast<size_t>(
      std::count_if(files.begin(), files.end(), [](const auto& entry) { return entry.damaged(); }));
  const bool any_state =
      damaged > 0 || std::any_of(files.begin(), files.end(), [](const auto& entry) { return entry.pinned; });
  std::vector<std::string> header = {"DIGEST", "SIZE", "NAME", "STORED BY", "USED BY", "LAST USED"};
  if (any_private) header.push_back("PRIVATE TO");
  if (any_state) header.push_back("STATE");
  Table table(header);
  for (const auto& entry : files) {
    std::vector<std::string> row = {ShortDigest(entry.digest), HumanSize(entry.size),
                                    entry.name.empty() ? "-" : entry.name, std::to_string(entry.stored_by),
                                    std::to_string(entry.used_by), HumanTime(entry.last_used_usec)};
    if (any_private) row.push_back(entry.is_private ? HumanPrincipal(entry.owner_app, entry.owner_origin) : "-");
    if (any_state) row.push_back(HumanState(entry));
    table.Add(std::move(row));
  }
  std::cout << table.Render();
  if (damaged > 0) {
    std::cout << Count(damaged, "entry is", "entries are")
              << " damaged: never served until the right bytes are stored again (costore put FILE).\n";
  }
  return kExitOk;
}

int Info(const client::Client& client, const std::string& digest_text, bool as_json) {
  std::string digest = NormalizedOrFail("info", digest_text);
  client::FileEntry entry = Attempt("info " + digest, [&] { return client.Stat(digest); });
  if (as_json) {
    json object = ToJson(entry);
    object["entries"] = entry.entries;
    PrintJson(object);
    return kExitOk;
  }
  Table table({"digest:", entry.digest});
  table.Add({"name:", entry.name.empty() ? "-" : entry.name});
  table.Add({"size:", std::to_string(entry.size) + " bytes (" + HumanSize(entry.size) + ")"});
  if (entry.is_private) {
    table.Add({"visibility:", "private (encrypted at rest; opens only for its owner and for those granted this "
                              "very file)"});
    table.Add({"cipher:", entry.cipher});
    table.Add({"owner:", HumanPrincipal(entry.owner_app, entry.owner_origin)});
  } else {
    table.Add({"visibility:", "public"});
    table.Add({"cipher:", entry.cipher + " (stored as is)"});
  }
  if (entry.damaged()) {
    table.Add({"state:", "damaged" + (entry.problem.empty() ? std::string() : ": " + entry.problem)});
    table.Add({"", "(never served; storing the right bytes again repairs it)"});
  } else {
    table.Add({"state:", "ok"});
  }
  table.Add({"pinned:", entry.pinned ? "yes (gc and automatic eviction never delete it)" : "no"});
  // When its bytes were last hashed and found right (verify, the scrub, a store).
  table.Add({"verified:", entry.last_verified_usec > 0 ? HumanTime(entry.last_verified_usec) : std::string("never")});
  table.Add({"first stored:", HumanTime(entry.first_stored_usec)});
  table.Add({"last used:", HumanTime(entry.last_used_usec)});
  table.Add({"stored by:", std::to_string(entry.stored_by) + " principal(s)"});
  table.Add({"used by:", std::to_string(entry.used_by) + " principal(s)"});
  if (entry.entries > 1) {
    table.Add({"entries:", std::to_string(entry.entries) + " (public and private copies kept apart; costore ls " +
                               entry.digest + " shows each)"});
  }
  std::cout << table.Render();
  return kExitOk;
}

int Remove(const client::Client& client, const std::string& digest_text) {
  std::string digest = NormalizedOrFail("rm", digest_text);
  Attempt("rm " + digest, [&] { client.Delete(digest); });
  return kExitOk;
}

int Grant(const client::Client& client, const GrantArgs& args) {
  std::string app = ResolveApp(args.app);
  Attempt("grant " + args.digest, [&] { client.Grant(app, args.origin, args.digest); });
  return kExitOk;
}

int Revoke(const client::Client& client, const GrantArgs& args) {
  std::string app = ResolveApp(args.app);
  Attempt("revoke " + args.digest, [&] { client.Revoke(app, args.origin, args.digest); });
  return kExitOk;
}

int Grants(const client::Client& client, const std::string& digest_text, bool as_json) {
  std::string digest = digest_text.empty() ? std::string() : NormalizedOrFail("grants", digest_text);
  auto grants = Attempt("grants", [&] { return client.ListGrants(digest); });
  if (as_json) {
    json array = json::array();
    for (const auto& grant : grants) {
      array.push_back({{"app", grant.app},
                       {"origin", grant.origin},
                       {"digest", grant.digest},
                       {"created", grant.created_usec}});
    }
    PrintJson(array);
    return kExitOk;
  }
  if (grants.empty()) {
    std::cout << "No grants.\n";
    return kExitOk;
  }
  Table table({"APP", "ORIGIN", "FILE", "CREATED"});
  for (const auto& grant : grants) {
    table.Add({grant.app, HumanOrigin(grant.origin), grant.digest == "*" ? "* (every file)" : ShortDigest(grant.digest),
               HumanTime(grant.created_usec)});
  }
  std::cout << table.Render();
  return kExitOk;
}

int Usage(const client::Client& client, const std::string& digest_text, bool as_json) {
  std::string digest = NormalizedOrFail("usage", digest_text);
  auto principals = Attempt("usage " + digest, [&] { return client.Usage(digest); });
  if (as_json) {
    json array = json::array();
    for (const auto& usage : principals) {
      array.push_back({{"app", usage.app},
                       {"origin", usage.origin},
                       {"stored", usage.stored},
                       {"first-used", usage.first_used_usec},
                       {"last-used", usage.last_used_usec},
                       {"stores", usage.stores},
                       {"reads", usage.reads}});
    }
    PrintJson(array);
    return kExitOk;
  }
  Table table({"APP", "ORIGIN", "STORED", "STORES", "READS", "FIRST USED", "LAST USED"});
  for (const auto& usage : principals) {
    table.Add({usage.app, HumanOrigin(usage.origin), usage.stored ? "yes" : "no", std::to_string(usage.stores),
               std::to_string(usage.reads), HumanTime(usage.first_used_usec), HumanTime(usage.last_used_usec)});
  }
  std::cout << table.Render();
  return kExitOk;
}

int ForgetSite(const client::Client& client, const std::string& origin, bool as_json) {
  const std::string what = "forget-site " + (origin.empty() ? std::string("\"\"") : Printable(origin));
  // The daemon reports counts; the files it deleted are those that were
  // listed before and are gone after.
  auto before = Attempt(what, [&] { return client.List(); });
  client::ForgetResult result = Attempt(what, [&] { return client.ForgetOrigin(origin); });
  std::vector<client::FileEntry> deleted;
  if (result.files_deleted > 0) {
    auto after = Attempt(what, [&] { return client.List(); });
    for (const auto& entry : before) {
      bool kept = std::any_of(after.begin(), after.end(), [&](const auto& other) { return other.digest == entry.digest; });
      if (!kept) deleted.push_back(entry);
    }
    // Deleted by someone else meanwhile too: the list would say more than
    // this call did, so show only the counts.
    if (deleted.size() != result.files_deleted) deleted.clear();
  }
  if (as_json) {
    json files = json::array();
    for (const auto& entry : deleted) files.push_back(ToJson(entry));
    PrintJson({{"origin", origin},
               {"grants-removed", result.grants_removed},
               {"claims-removed", result.claims_removed},
               {"files-deleted", result.files_deleted},
               {"deleted", files}});
    return kExitOk;
  }
  std::cout << "Forgot " << Printable(origin) << ":\n";
  Table counts({"grants removed:", std::to_string(result.grants_removed)});
  counts.Add({"records removed:", std::to_string(result.claims_removed) + " (what it stored and read)"});
  counts.Add({"files deleted:", std::to_string(result.files_deleted) + " (stored by this site only)"});
  std::cout << Indent(counts.Render(), "  ");
  if (!deleted.empty()) {
    Table table({"DIGEST", "SIZE", "NAME"});
    for (const auto& entry : deleted)
      table.Add({ShortDigest(entry.digest), HumanSize(entry.size), entry.name.empty() ? "-" : entry.name});
    std::cout << Indent(table.Render(), "    ");
  }
  return kExitOk;
}

int Consent(const client::Client& client, const ConsentArgs& args) {
  // One setting at a time, in this order; a refused one stops there and
  // says which.
  if (args.policy) {
    Attempt("consent --policy", [&] { client.SetSetting(client::kSettingConsentPolicy, std::string_view(*args.policy)); });
  }
  if (args.timeout_s) {
    Attempt("consent --timeout", [&] { client.SetSetting(client::kSettingConsentTimeout, *args.timeout_s); });
  }
  if (args.prompts_per_hour) {
    Attempt("consent --prompts-per-hour",
            [&] { client.SetSetting(client::kSettingPromptsPerHour, *args.prompts_per_hour); });
  }
  client::Settings settings = Attempt("consent", [&] { return client.GetSettings(); });
  if (args.json) {
    PrintJson({{"consent-policy", settings.consent_policy},
               {"consent-timeout", settings.consent_timeout_s},
               {"prompts-per-hour", settings.prompts_per_hour}});
    return kExitOk;
  }
  std::string policy = settings.consent_policy;
  if (policy == "ask") {
    policy += " (ask the consent agent; with none registered, start costore-consent --agent)";
  } else if (policy == "ask-later") {
    policy += " (answer at once as if the file were absent, then ask whether to allow it next time)";
  } else if (policy == "deny") {
    policy += " (never ask: only grants let a site or app read files others stored)";
  }
  Table table({"policy:", policy});
  table.Add({"timeout:", std::to_string(settings.consent_timeout_s) + " s (an unanswered request is refused)"});
  table.Add({"prompts per hour:", std::to_string(settings.prompts_per_hour) +
                                      " per site or app (past it, requests are refused unasked)"});
  std::cout << table.Render();
  return kExitOk;
}

int Doctor(const client::Client& client, bool as_json) {
  client::KeyringStatus status = Attempt("doctor", [&] { return client.GetKeyringStatus(); });
  const bool usable = status.usable();
  if (as_json) {
    PrintJson({{"state", status.state},
               {"message", status.message},
               {"private-files", status.private_files},
               {"key-version", status.key_version},
               {"rekey-pending", status.rekey_pending},
               {"cipher", status.cipher},
               {"chunk-size", status.chunk_size},
               {"usable", usable}});
    return usable ? kExitOk : kExitKeyring;
  }
  // One fact a line.
  Table table({"keyring:", KeyringStateWords(status.state)});
  if (!status.message.empty()) table.Add({"details:", status.message});
  std::string files;
  if (status.private_files == 0) {
    files = usable ? "none yet; they can be stored" : "none; new ones cannot be stored until the keyring is fixed";
  } else {
    const bool one = status.private_files == 1;
    files = std::to_string(status.private_files) + (one ? " private file; " : " private files; ") +
            (usable ? (one ? "it can be opened" : "they can be opened")
                    : "unavailable until the keyring is fixed");
  }
  table.Add({"private files:", files});
  table.Add({"master key:", status.key_version == 0 ? std::string("none yet")
                                                    : "version " + std::to_string(status.key_version)});
  if (status.rekey_pending) table.Add({"rekey:", "interrupted; run \"costore rekey\" to finish it"});
  if (!status.cipher.empty()) {
    std::string sealing = status.cipher;
    if (status.chunk_size > 0) sealing += ", in " + HumanSize(status.chunk_size) + " chunks";
    table.Add({"new private files:", sealing});
  }
  table.Add({"public files:", "not affected (only private files need the keyring)"});
  std::cout << table.Render();
  return usable ? kExitOk : kExitKeyring;
}

int Rekey(const client::Client& client, bool as_json) {
  client::RekeyResult result = Attempt("rekey", [&] { return client.Rekey(); });
  if (as_json) {
    PrintJson({{"files-rewrapped", result.files_rewrapped},
               {"key-version", result.key_version},
               {"resumed", result.resumed},
               {"old-keys-removed", result.old_keys_removed}});
    return kExitOk;
  }
  if (result.key_version == 0) {
    std::cout << "No master key yet (no private file was ever stored): nothing to re-wrap.\n";
    return kExitOk;
  }
  std::cout << "Rekeyed: every private file's data key is now wrapped by master key version "
            << result.key_version << ".\n";
  Table table({"files re-wrapped:", std::to_string(result.files_rewrapped)});
  table.Add({"master key:", "version " + std::to_string(result.key_version)});
  table.Add({"resumed:", result.resumed ? "yes (this finished a rekey that had been interrupted)"
                                        : "no (a new rekey, run to the end)"});
  table.Add({"old keys removed:", std::to_string(result.old_keys_removed) + " (from the keyring)"});
  std::cout << Indent(table.Render(), "  ");
  return kExitOk;
}

int Verify(const client::Client& client, const VerifyArgs& args) {
  std::vector<std::string> digests;
  for (const auto& digest : args.digests) digests.push_back(NormalizedOrFail("verify", digest));
  // The names come from the list; Verify reports digests and sizes.
  auto files = Attempt("verify", [&] { return client.List(); });
  auto results = Attempt("verify", [&] { return client.Verify(digests); });
  size_t ok = 0, damaged = 0, absent = 0, unreadable = 0;
  uint64_t bytes = 0;
  for (const auto& result : results) {
    if (result.state == client::kStateOk) {
      ++ok;
    } else if (result.state == client::kStateAbsent) {
      ++absent;
    } else if (result.state == client::kStateUnreadable) {
      ++unreadable;  // a read failed this time; nothing was marked
    } else {
      ++damaged;
    }
    if (result.state != client::kStateAbsent) bytes += result.size;
  }
  const int status = damaged > 0      ? kExitDamaged
                     : unreadable > 0 ? kExitOther
                     : absent > 0     ? kExitNotFound
                                      : kExitOk;
  if (args.json) {
    json array = json::array();
    for (const auto& result : results) {
      json object = {{"digest", result.digest}, {"private", result.is_private}, {"state", result.state},
                     {"problem", result.problem}, {"size", result.size}};
      if (result.is_private) {
        object["owner-app"] = result.owner_app;
        object["owner-origin"] = result.owner_origin;
      }
      array.push_back(std::move(object));
    }
    PrintJson(array);
    return status;
  }
  if (results.empty()) {
    std::cout << "The store is empty: nothing to verify.\n";
    return kExitOk;
  }
  const bool any_private =
      std::any_of(results.begin(), results.end(), [](const auto& result) { return result.is_private; });
  std::vector<std::string> header = {"STATE", "DIGEST", "SIZE", "NAME"};
  if (any_private) header.push_back("PRIVATE TO");
  if (ok < results.size()) header.push_back("PROBLEM");
  Table table(header);
  for (const auto& result : results) {
    auto file = std::find_if(files.begin(), files.end(), [&](const auto& entry) {
      return entry.digest == result.digest && entry.is_private == result.is_private &&
             entry.owner_app == result.owner_app && entry.owner_origin == result.owner_origin;
    });
    const bool is_absent = result.state == client::kStateAbsent;
    std::vector<std::string> row = {result.state, result.digest, is_absent ? "-" : HumanSize(result.size),
                                    file == files.end() || file->name.empty() ? "-" : file->name};
    if (any_private) row.push_back(result.is_private ? HumanPrincipal(result.owner_app, result.owner_origin) : "-");
    if (ok < results.size()) {
      row.push_back(!result.problem.empty() ? result.problem : is_absent ? "not in the store" : "");
    }
    table.Add(std::move(row));
  }
  std::cout << table.Render();
  std::cout << "Verified " << Count(results.size(), "entry", "entries") << " (" << HumanSize(bytes) << " read): "
            << ok << " ok, " << damaged << " damaged, " << absent << " absent"
            << (unreadable > 0 ? ", " + std::to_string(unreadable) + " unreadable (try again)" : std::string()) << ".\n";
  if (damaged > 0) {
    std::cout << "A damaged file is kept in the store's quarantine and never served; storing its right bytes "
                 "again (costore put FILE) repairs it.\n";
  }
  return status;
}

int Gc(const client::Client& client, const GcArgs& args) {
  if (!args.to && !args.older_than_days) {
    throw Failure{kExitUsage,
                  "gc: say what to delete: --to SIZE (until the store holds at most SIZE) and/or --older-than DAYS "
                  "(files nobody stored or read for DAYS days); --dry-run shows what would go"};
  }
  client::CollectOptions options;
  if (args.to) options.target_size = SizeOrFail("gc --to", *args.to);
  if (args.older_than_days) options.unused_for_seconds = uint64_t{*args.older_than_days} * 86400;
  options.dry_run = args.dry_run;
  // The daemon reports digests; the list before says their names and sizes.
  auto before = Attempt("gc", [&] { return client.List(); });
  client::CollectResult result = Attempt("gc", [&] { return client.Collect(options); });
  if (args.json) {
    PrintJson({{"dry-run", args.dry_run},
               {"files-deleted", result.files_deleted},
               {"bytes-freed", result.bytes_freed},
               {"digests", result.digests},
               {"store-bytes", result.store_bytes}});
    return kExitOk;
  }
  if (result.files_deleted == 0) {
    std::cout << "Nothing to collect (pinned and private files are never collected); the store holds "
              << HumanSize(result.store_bytes) << ".\n";
    return kExitOk;
  }
  const std::string files = Count(result.files_deleted, "file", "files");
  if (args.dry_run) {
    std::cout << "Dry run: gc would delete " << files << ", freeing " << HumanSize(result.bytes_freed)
              << "; the store would then hold " << HumanSize(result.store_bytes) << ". Nothing was deleted.\n";
  } else {
    std::cout << "Collected " << files << ", " << HumanSize(result.bytes_freed) << " freed; the store now holds "
              << HumanSize(result.store_bytes) << ".\n";
  }
  Table table({"DIGEST", "SIZE", "NAME"});
  for (const auto& digest : result.digests) {
    auto entry = std::find_if(before.begin(), before.end(),
                              [&](const auto& file) { return file.digest == digest && !file.is_private; });
    if (entry == before.end()) {
      table.Add({ShortDigest(digest), "-", "-"});
    } else {
      table.Add({ShortDigest(digest), HumanSize(entry->size), entry->name.empty() ? "-" : entry->name});
    }
  }
  std::cout << Indent(table.Render(), "  ");
  return kExitOk;
}

int Pin(const client::Client& client, const std::string& digest_text, bool pinned) {
  const std::string command = pinned ? "pin" : "unpin";
  std::string digest = NormalizedOrFail(command, digest_text);
  Attempt(command + " " + digest, [&] { client.SetPinned(digest, pinned); });
  return kExitOk;
}

int Space(const client::Client& client, const SpaceArgs& args) {
  // Every value is read before any is set: a malformed one changes nothing.
  std::optional<uint64_t> min_free, quota;
  if (args.min_free) {
    if (*args.min_free == "auto") {
      min_free = 0;
    } else {
      min_free = SizeOrFail("space --min-free", *args.min_free);
      if (*min_free == 0)
        throw Failure{kExitUsage, "space --min-free: 0 is not a floor: give the size the store must always leave "
                                  "free, or auto (5% of the file system or 2 GiB, whichever is smaller)"};
    }
  }
  std::optional<uint64_t> min_rate;
  if (args.min_store_rate) {
    min_rate = *args.min_store_rate == "off" ? 0 : SizeOrFail("space --min-store-rate", *args.min_store_rate);
  }
  if (args.quota) {
    if (*args.quota == "none") {
      quota = 0;
    } else {
      quota = SizeOrFail("space --quota", *args.quota);
      if (*quota == 0)
        throw Failure{kExitUsage, "space --quota: 0 is not a quota: give the most the store may hold, or none"};
    }
  }
  // One setting at a time, in this order; a refused one stops there and
  // says which.
  if (min_free) Attempt("space --min-free", [&] { client.SetSettingUint64(client::kSettingMinFreeSpace, *min_free); });
  if (quota) Attempt("space --quota", [&] { client.SetSettingUint64(client::kSettingQuota, *quota); });
  if (args.auto_collect) {
    Attempt("space --auto-collect",
            [&] { client.SetSettingBool(client::kSettingAutoCollect, *args.auto_collect == "on"); });
  }
  if (args.scrub_interval_days) {
    Attempt("space --scrub-interval",
            [&] { client.SetSetting(client::kSettingScrubInterval, *args.scrub_interval_days); });
  }
  if (min_rate) {
    Attempt("space --min-store-rate", [&] { client.SetSettingUint64(client::kSettingMinStoreRate, *min_rate); });
  }
  client::Space space = Attempt("space", [&] { return client.GetSpace(); });
  client::Settings settings = Attempt("space", [&] { return client.GetSettings(); });
  if (args.json) {
    PrintJson({{"store-bytes", space.store_bytes},
               {"files", space.files},
               {"damaged", space.damaged},
               {"pinned", space.pinned},
               {"free-bytes", space.free_bytes},
               {"floor-bytes", space.floor_bytes},
               {"quota-bytes", space.quota_bytes},
               {"last-scrub", space.last_scrub_usec},
               {"min-free-space", settings.min_free_space},
               {"quota", settings.quota},
               {"auto-collect", settings.auto_collect},
               {"scrub-interval", settings.scrub_interval_days},
               {"min-store-rate", settings.min_store_rate}});
    return kExitOk;
  }
  Table table({"store:", HumanSize(space.store_bytes) + " (" + std::to_string(space.store_bytes) + " bytes)"});
  table.Add({"files:", std::to_string(space.files)});
  table.Add({"damaged:", space.damaged == 0 ? std::string("0")
                                            : std::to_string(space.damaged) +
                                                  " (never served; costore verify names them, storing the right "
                                                  "bytes again repairs them)"});
  table.Add({"pinned:", std::to_string(space.pinned) + (space.pinned > 0 ? " (gc never deletes them)" : "")});
  table.Add({"free:", HumanSize(space.free_bytes) + " on the store's file system"});
  table.Add({"floor:", HumanSize(space.floor_bytes) +
                           (settings.min_free_space == 0
                                ? " always left free (automatic: 5% of the file system or 2 GiB, whichever is smaller)"
                                : " always left free")});
  std::string quota_words = "none";
  if (space.quota_bytes > 0) {
    quota_words = HumanSize(space.quota_bytes);
    quota_words += space.store_bytes < space.quota_bytes
                       ? " (" + HumanSize(space.quota_bytes - space.store_bytes) + " left)"
                       : " (reached)";
  }
  table.Add({"quota:", quota_words});
  table.Add({"auto-collect:", settings.auto_collect
                                  ? "on (past the quota or the floor, the least recently used unpinned public files "
                                    "make room)"
                                  : "off (a store past the quota or the floor is refused)"});
  table.Add({"scrub:", settings.scrub_interval_days == 0
                           ? std::string("off")
                           : "every " + Count(settings.scrub_interval_days, "day", "days") + ", at idle priority"});
  table.Add({"store rate:", settings.min_store_rate == 0
                                ? std::string("no minimum")
                                : "at least " + HumanSize(settings.min_store_rate) +
                                      "/s (a slower store is cancelled once its first minute has passed)"});
  table.Add({"last scrub:", space.last_scrub_usec > 0 ? HumanTime(space.last_scrub_usec) : std::string("never")});
  std::cout << table.Render();
  return kExitOk;
}

}  // namespace costore::cli
