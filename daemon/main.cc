// costored: the per-user costore daemon on the D-Bus session bus.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <sstream>
#include <thread>

#include "costore-ipc/names.h"
#include "daemon/dbus/event_loop.h"
#include "daemon/dbus/service.h"
#include "daemon/engine/engine.h"
#include "daemon/keyring/secret_service_key_store.h"
#include "daemon/log.h"

namespace {

std::string DefaultStoreDir() {
  const char* data_home = std::getenv("XDG_DATA_HOME");
  if (data_home && *data_home == '/') return std::string(data_home) + "/costore";
  const char* home = std::getenv("HOME");
  if (home && *home == '/') return std::string(home) + "/.local/share/costore";
  return {};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"costored: the costore daemon. Owns the per-user store of model files and serves\n"
               "io.github.costore on the D-Bus session bus. Usually started by D-Bus activation."};
  std::string store_dir = DefaultStoreDir();
  int idle_timeout_s = 120;
  costore::EngineOptions defaults;
  int max_stores = defaults.store_caps.total;
  int max_app_stores = defaults.store_caps.per_app;
  int max_principal_stores = defaults.store_caps.per_principal;
  uint64_t min_store_rate = defaults.min_store_rate;
  int store_rate_window_s = defaults.store_rate_window_ms / 1000;
  bool verbose = false;
  bool no_read_only_view = false;
  std::string agent_command = "costore-consent --agent";
  app.add_option("--store", store_dir, "Store directory (default: $XDG_DATA_HOME/costore)");
  app.add_option("--idle-timeout", idle_timeout_s, "Abandon a store whose source is silent this long (seconds)")
      ->check(CLI::Range(1, 86400));
  app.add_option("--max-stores", max_stores, "Stores in flight at once, all callers together; more get Busy")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  app.add_option("--max-stores-per-app", max_app_stores,
                 "Stores in flight at once for one app, all its origins together")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  app.add_option("--max-stores-per-origin", max_principal_stores,
                 "Stores in flight at once for one principal (an app and one origin)")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  app.add_option("--min-store-rate", min_store_rate,
                 "Cancel a store averaging fewer bytes per second than this over the rate window, once the "
                 "window has passed (0: off); the Manager1 setting min-store-rate, once set, takes its place")
      ->capture_default_str();
  app.add_option("--store-rate-window", store_rate_window_s,
                 "Seconds a store may run before its rate counts, and over which it is averaged")
      ->check(CLI::Range(1, 86400))
      ->capture_default_str();
  app.add_option("--consent-agent", agent_command,
                 "Command that starts a consent agent when a file needs the user's consent and none is "
                 "registered; \"\" to never start one")
      ->capture_default_str();
  bool agent_headless = false;
  app.add_flag("--consent-agent-headless", agent_headless,
               "The consent agent command needs no display: start it even where neither DISPLAY nor "
               "WAYLAND_DISPLAY is set (by default the agent is started only in a graphical session)");
  app.add_flag("--no-read-only-view", no_read_only_view,
               "Hand out public files directly instead of through a read-only view of the store (sandboxed "
               "apps then get copies); for systems that forbid user namespaces");
  app.add_flag("-v,--verbose", verbose, "Log every store and open");
  app.set_version_flag("--version", std::string("costored ") + COSTORE_VERSION);
  CLI11_PARSE(app, argc, argv);
  costore::SetLogVerbose(verbose);

  if (store_dir.empty()) {
    costore::LogError("no store directory: set --store, XDG_DATA_HOME or HOME");
    return 2;
  }

  // Termination signals are taken by the event loop's signalfd; block them
  // before any thread starts so that every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  // A client that closes its end of a pipe must not kill the daemon.
  signal(SIGPIPE, SIG_IGN);
  umask(077);

  try {
    auto connection = sdbus::createSessionBusConnection();
    costore::EventLoop loop(*connection);
    // The master key of private files lives in the Secret Service only.
    costore::SecretServiceKeyStore key_store;

    std::unique_ptr<costore::Engine> engine;
    std::unique_ptr<costore::Service> service;
    costore::EngineOptions options;
    options.root = store_dir;
    options.idle_timeout_ms = idle_timeout_s * 1000;
    // No one app may take every store slot; the total counts once for the
    // caps under it.
    options.store_caps = {std::min(max_principal_stores, max_stores), std::min(max_app_stores, max_stores), max_stores};
    options.min_store_rate = min_store_rate;
    options.store_rate_grace_ms = options.store_rate_window_ms = store_rate_window_s * 1000;
    options.key_store = &key_store;
    options.read_only_view = !no_read_only_view;
    // For the crash-safety test of Rekey only: die (SIGKILL, as a kill
    // would) once this many data keys are re-wrapped.
    if (const char* kill_after = std::getenv("COSTORE_TEST_REKEY_KILL_AFTER")) {
      const unsigned long limit = std::strtoul(kill_after, nullptr, 10);
      options.rekey_interrupt = [limit](uint32_t rewrapped) {
        if (limit > 0 && rewrapped >= limit) {
          costore::LogWarning("COSTORE_TEST_REKEY_KILL_AFTER: killing this daemon in the middle of a rekey");
          raise(SIGKILL);
        }
        return false;
      };
    }
    // Changes happen on worker threads; the signal is sent from the loop.
    options.on_change = [&loop, &service](const costore::ChangeEvent& event) {
      loop.Post([&service, event] {
        if (service) service->EmitChanged(event);
      });
    };
    costore::Status s = costore::Engine::Open(options, &engine);
    if (!s.ok()) {
      // A second daemon on the same store stops here having changed nothing.
      costore::LogError("cannot open the store at " + store_dir + ": " + s.message());
      return s.code() == costore::Code::kBusy ? 3 : 1;
    }
    std::vector<std::string> agent_argv;
    std::istringstream words(agent_command);
    for (std::string word; words >> word;) agent_argv.push_back(word);
    // Stores hold a worker for as long as they stream, and so do private
    // and copied opens; each kind is capped, and two more serve
    // verification, rekeying and the keyring, so no kind starves another.
    // (32 with the defaults.)
    service = std::make_unique<costore::Service>(*connection, *engine, loop, std::move(agent_argv),
                                                 /*agent_needs_display=*/!agent_headless,
                                                 max_stores + options.worker_open_caps.total + 2);

    // The objects exist before the name is taken, so a caller that activated
    // us is served as soon as it sees the name.
    try {
      connection->requestName(costore::ipc::kBusName);
    } catch (const sdbus::Error& e) {
      costore::LogError(std::string("cannot own ") + costore::ipc::kBusName +
                        " (is another costored running?): " + e.getMessage());
      return 1;
    }
    costore::LogInfo("serving " + std::string(costore::ipc::kBusName) + " with the store at " + store_dir);

    loop.Run([&](int signo) {
      costore::LogInfo(std::string("received ") + strsignal(signo) + "; finishing transfers in flight");
      engine->CancelAll();
      // Let cancelled stores post their replies, then stop.
      std::thread([&] {
        if (!service->WaitForWorkers(10'000)) costore::LogWarning("workers still busy after 10 s; leaving anyway");
        loop.Quit();
      }).detach();
    });
    connection->releaseName(costore::ipc::kBusName);
    costore::LogInfo("stopped");
    // Workers that did not finish in time still hold the engine: leave
    // without running destructors under them.
    std::fflush(nullptr);
    _exit(0);
  } catch (const sdbus::Error& e) {
    costore::LogError("D-Bus: " + e.getName() + ": " + e.getMessage());
    return 1;
  } catch (const std::exception& e) {
    costore::LogError(e.what());
    return 1;
  }
}
