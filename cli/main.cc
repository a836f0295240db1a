// costore: the command-line tool for the per-user model store (costored).
// See README.md for the commands and exit codes.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <string>

#include <CLI/CLI.hpp>

#include <costore/costore.hpp>

#include "agent.h"
#include "commands.h"
#include "exit_codes.h"

namespace {

using namespace costore::cli;

constexpr const char* kDigestHelp = "a digest: sha256:<64 hex digits>, or the bare hex";

int Run(int argc, char** argv) {
  CLI::App app{"costore: the per-user store of AI model files, named by SHA-256 and shared by browsers and apps"};
  app.set_version_flag("--version", std::string("costore ") + COSTORE_VERSION);
  app.require_subcommand(1);
  app.footer(kExitCodesHelp);
  // Before or after the command: `costore --stall-timeout 5 ls`, `costore ls --stall-timeout 5`.
  app.fallthrough();
  double stall_timeout_s = 30;
  app.add_option("--stall-timeout", stall_timeout_s,
                 "give up on costored when it answers nothing for SECONDS while a command waits for it "
                 "(exit 9); 0: never (default 30)")
      ->check(CLI::Range(0.0, 86400.0));

  PutArgs put;
  auto* put_cmd = app.add_subcommand("put", "Store a file (or standard input, \"-\") and print its digest");
  put_cmd->add_option("FILE", put.source, "the file to store, or - for standard input")->required();
  put_cmd->add_option("--origin", put.origin, "the web origin to store it for (default: this app itself)");
  put_cmd->add_option("--name", put.name, "a name shown to the user (default: the file's name)");
  put_cmd->add_option("--size", put.size, "the expected size in bytes (default: the file's size)");
  put_cmd->add_option("--digest", put.digest,
                      "the expected digest; when omitted it is computed first (standard input is then spooled "
                      "to an unnamed temporary file in $TMPDIR)");
  put_cmd->add_flag("--private", put.is_private,
                    "store it privately: encrypted at rest with a key kept in the keyring, and readable only by "
                    "this app (and origin) and those granted this very file");

  GetArgs get;
  auto* get_cmd = app.add_subcommand("get", "Write a stored file to standard output or to a file");
  get_cmd->add_option("DIGEST", get.digest, kDigestHelp)->required();
  get_cmd->add_option("-o,--output", get.output, "the file to write (default: standard output)");
  get_cmd->add_option("--origin", get.origin, "the web origin to read it as (default: this app itself)");
  get_cmd->add_flag("--stream", get.stream,
                    "for a private file, have the daemon decrypt it into a pipe as it is read instead of into "
                    "memory first");

  bool json = false;
  std::string digest;
  auto* ls_cmd = app.add_subcommand("ls", "List the stored files (or the public and private entries of DIGEST)");
  ls_cmd->add_option("DIGEST", digest, kDigestHelp);
  ls_cmd->add_flag("--json", json, "print JSON");

  auto* info_cmd = app.add_subcommand("info", "Show one stored file");
  info_cmd->add_option("DIGEST", digest, kDigestHelp)->required();
  info_cmd->add_flag("--json", json, "print JSON");

  auto* rm_cmd = app.add_subcommand("rm", "Delete a stored file, its attribution and its grants");
  rm_cmd->add_option("DIGEST", digest, kDigestHelp)->required();

  GrantArgs grant;
  const char* app_help =
      "the app, as the daemon identifies it: an absolute executable path, flatpak:<id> or snap:<name>; "
      "\"self\" is this costore executable";
  auto* grant_cmd = app.add_subcommand("grant", "Let an app (and origin) open a file, or every file with '*'");
  grant_cmd->add_option("DIGEST", grant.digest, "a digest, or '*' for every file")->required();
  grant_cmd->add_option("--app", grant.app, app_help)->required();
  grant_cmd->add_option("--origin", grant.origin, "the web origin (default: the app itself)");

  auto* revoke_cmd = app.add_subcommand("revoke", "Remove a grant");
  revoke_cmd->add_option("DIGEST", grant.digest, "a digest, or '*' for every file")->required();
  revoke_cmd->add_option("--app", grant.app, app_help)->required();
  revoke_cmd->add_option("--origin", grant.origin, "the web origin (default: the app itself)");

  auto* grants_cmd = app.add_subcommand("grants", "List grants (all, or those naming DIGEST)");
  grants_cmd->add_option("DIGEST", digest, kDigestHelp);
  grants_cmd->add_flag("--json", json, "print JSON");

  auto* usage_cmd = app.add_subcommand("usage", "Show which apps and origins stored and read a file");
  usage_cmd->add_option("DIGEST", digest, kDigestHelp)->required();
  usage_cmd->add_flag("--json", json, "print JSON");

  std::string origin;
  auto* forget_cmd = app.add_subcommand(
      "forget-site", "Forget a site: remove its grants and its records, delete the files only it stored");
  forget_cmd->add_option("ORIGIN", origin, "the web origin, e.g. https://example.org")->required();
  forget_cmd->add_flag("--json", json, "print JSON");

  ConsentArgs consent;
  auto* consent_cmd = app.add_subcommand("consent", "Show the consent settings; with options, change them first");
  consent_cmd
      ->add_option("--policy", consent.policy,
                   "ask: ask the consent agent, starting one if none is registered, while the caller waits; "
                   "ask-later: answer the caller at once as if the file were absent, and ask whether to allow "
                   "it next time; deny: never ask, only grants let others read a file")
      ->check(CLI::IsMember({"ask", "ask-later", "deny"}));
  consent_cmd->add_option("--timeout", consent.timeout_s,
                          "seconds to wait for an answer; no answer by then is a refusal (1-3600)");
  consent_cmd->add_option("--prompts-per-hour", consent.prompts_per_hour,
                          "how many requests one site or app may put to the user per hour (0-3600)");
  consent_cmd->add_flag("--json", consent.json, "print JSON");

  AgentArgs agent;
  auto* agent_cmd = app.add_subcommand(
      "agent", "Be the consent agent: show each request on this terminal and ask (like pkttyagent)");
  agent_cmd->add_option("--answer", agent.answer, "answer every request with this, without asking (for scripts)")
      ->check(CLI::IsMember({"allow-once", "allow-always", "deny"}));
  agent_cmd->add_flag("--once", agent.once, "exit after the first request (answered or withdrawn)");

  auto* doctor_cmd = app.add_subcommand(
      "doctor", "Tell whether private files can be stored and opened: the keyring's state, in plain words");
  doctor_cmd->add_flag("--json", json, "print JSON");

  auto* rekey_cmd = app.add_subcommand(
      "rekey", "Re-wrap every private file's key under a new master key in the keyring (finishes an interrupted one)");
  rekey_cmd->add_flag("--json", json, "print JSON");

  VerifyArgs verify;
  auto* verify_cmd = app.add_subcommand(
      "verify", "Read and hash every stored file (or those of DIGEST...); exit 12 if one is damaged, 2 if one is "
                "not stored");
  verify_cmd->add_option("DIGEST", verify.digests, kDigestHelp);
  verify_cmd->add_flag("--json", verify.json, "print JSON");

  GcArgs gc;
  auto* gc_cmd = app.add_subcommand(
      "gc", "Delete unpinned public files, least recently used first, to shrink the store");
  gc_cmd->add_option("--to", gc.to, "delete until the store holds at most SIZE (500M, 2G, 1.5GiB or bytes)")
      ->type_name("SIZE");
  gc_cmd->add_option("--older-than", gc.older_than_days, "delete files nobody stored or read for DAYS days")
      ->type_name("DAYS");
  gc_cmd->add_flag("--dry-run", gc.dry_run, "show what would be deleted; delete nothing");
  gc_cmd->add_flag("--json", gc.json, "print JSON");

  auto* pin_cmd = app.add_subcommand("pin", "Pin a file: gc and automatic eviction never delete it");
  pin_cmd->add_option("DIGEST", digest, kDigestHelp)->required();
  auto* unpin_cmd = app.add_subcommand("unpin", "Unpin a file: gc may delete it again");
  unpin_cmd->add_option("DIGEST", digest, kDigestHelp)->required();

  SpaceArgs space;
  auto* space_cmd = app.add_subcommand(
      "space", "Show the store's size, free space, floor, quota and scrub; with options, change them first");
  space_cmd
      ->add_option("--min-free", space.min_free,
                   "the free space the store always leaves on its file system: a SIZE, or auto (5% of the file "
                   "system or 2 GiB, whichever is smaller)")
      ->type_name("SIZE|auto");
  space_cmd->add_option("--quota", space.quota, "the most the store may hold: a SIZE, or none")
      ->type_name("SIZE|none");
  space_cmd
      ->add_option("--auto-collect", space.auto_collect,
                   "on: past the quota or the floor, delete the least recently used unpinned public files to make "
                   "room; off: refuse the store")
      ->check(CLI::IsMember({"on", "off"}));
  space_cmd->add_option("--scrub-interval", space.scrub_interval_days,
                        "days between background verifications of every file (0: off)")
      ->type_name("DAYS");
  space_cmd
      ->add_option("--min-store-rate", space.min_store_rate,
                   "cancel a store averaging less than RATE bytes per second over a minute, once its first "
                   "minute has passed: a SIZE (per second), or off")
      ->type_name("RATE|off");
  space_cmd->add_flag("--json", space.json, "print JSON");

  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& success) {
    return app.exit(success);  // --help, --version
  } catch (const CLI::ParseError& error) {
    app.exit(error);  // prints the message and a hint
    return kExitUsage;
  }

  try {
    if (*agent_cmd) return Agent(agent);  // on a bus connection of its own
    costore::client::Client client = costore::client::Client::Connect();
    client.SetStallTimeout(std::chrono::milliseconds(static_cast<int64_t>(stall_timeout_s * 1000)));
    if (*put_cmd) return Put(client, put);
    if (*get_cmd) return Get(client, get);
    if (*ls_cmd) return List(client, digest, json);
    if (*info_cmd) return Info(client, digest, json);
    if (*rm_cmd) return Remove(client, digest);
    if (*grant_cmd) return Grant(client, grant);
    if (*revoke_cmd) return Revoke(client, grant);
    if (*grants_cmd) return Grants(client, digest, json);
    if (*usage_cmd) return Usage(client, digest, json);
    if (*forget_cmd) return ForgetSite(client, origin, json);
    if (*consent_cmd) return Consent(client, consent);
    if (*doctor_cmd) return Doctor(client, json);
    if (*rekey_cmd) return Rekey(client, json);
    if (*verify_cmd) return Verify(client, verify);
    if (*gc_cmd) return Gc(client, gc);
    if (*pin_cmd) return Pin(client, digest, true);
    if (*unpin_cmd) return Pin(client, digest, false);
    if (*space_cmd) return Space(client, space);
  } catch (const Failure& failure) {
    std::cerr << "costore: " << failure.message << '\n';
    return failure.code;
  } catch (const costore::client::Error& error) {
    std::cerr << "costore: " << error.what() << '\n';
    return ExitCodeFor(error.code());
  } catch (const std::exception& error) {
    std::cerr << "costore: " << error.what() << '\n';
    return kExitOther;
  }
  return kExitUsage;
}

}  // namespace

int main(int argc, char** argv) { return Run(argc, argv); }
