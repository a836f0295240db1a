#include "agent.h"

#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <deque>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <costore-ipc/ConsentAgent1_adaptor.h>
#include <costore-ipc/names.h>
#include <sdbus-c++/sdbus-c++.h>

#include <costore/costore.hpp>

#include "exit_codes.h"
#include "format.h"

// sdbus-c++ 1.2 is not thread-safe, so the agent has exactly one thread: a
// poll(2) loop over the bus connection, standard input and a signalfd. Every
// sdbus callback (RequestConsent, Cancel, NameOwnerChanged) runs from
// processPendingRequest() on that thread, and answers are sent from it.

namespace costore::cli {
namespace {

using Dict = std::map<std::string, sdbus::Variant>;
using ConsentResult = sdbus::Result<std::string, Dict>;

constexpr const char* kAgentPath = "/io/github/costore/cli/Agent";
constexpr const char* kManagerInterface = "io.github.costore.Manager1";
constexpr const char* kCancelledError = "io.github.costore.Error.Cancelled";
constexpr size_t kMaxFileLines = 20;
constexpr size_t kMaxAttributionLines = 10;
constexpr size_t kMaxPendingInput = 4096;  // a longer line without a newline is dropped

template <typename T>
T Get(const Dict& map, const char* key) {
  auto it = map.find(key);
  if (it == map.end() || !it->second.containsValueOfType<T>()) return T{};
  return it->second.get<T>();
}

std::string Plural(uint64_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

// A Failure for a D-Bus error from the daemon or the bus.
Failure BusFailure(const std::string& what, const sdbus::Error& error) {
  const std::string& name = error.getName();
  const std::string prefix = ipc::kErrorPrefix;
  if (name.rfind(prefix, 0) == 0) {
    const std::string_view short_name = std::string_view(name).substr(prefix.size());
    for (int code = 1; code <= static_cast<int>(client::ErrorCode::kFailed); ++code) {
      auto known = static_cast<client::ErrorCode>(code);
      if (client::ErrorCodeName(known) == short_name) return Failure{ExitCodeFor(known), what + ": " + error.getMessage()};
    }
  }
  static constexpr std::string_view kUnreachable[] = {
      "org.freedesktop.DBus.Error.ServiceUnknown", "org.freedesktop.DBus.Error.NameHasNoOwner",
      "org.freedesktop.DBus.Error.NoServer",       "org.freedesktop.DBus.Error.Disconnected",
      "org.freedesktop.DBus.Error.NoReply",        "org.freedesktop.DBus.Error.Spawn.ChildExited",
      "org.freedesktop.DBus.Error.Spawn.Failed",   "org.freedesktop.DBus.Error.FileNotFound"};
  for (std::string_view unreachable : kUnreachable) {
    if (name == unreachable) return Failure{kExitUnreachable, what + ": costored is not reachable: " + error.getMessage()};
  }
  if (name.rfind("System.Error.", 0) == 0 || name == "org.sdbus-cpp.Error")
    return Failure{kExitUnreachable, what + ": cannot talk to the session bus: " + error.getMessage()};
  if (name == "org.freedesktop.DBus.Error.AccessDenied")
    return Failure{kExitPermissionDenied, what + ": " + error.getMessage()};
  return Failure{kExitOther, what + ": " + error.getMessage() + " (" + name + ")"};
}

// Blocks SIGINT, SIGTERM and SIGHUP (the agent is single-threaded, so this
// covers every thread) and returns a signalfd that reports them.
int SignalFd() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  if (::sigprocmask(SIG_BLOCK, &signals, nullptr) != 0)
    throw Failure{kExitOther, std::string("agent: sigprocmask: ") + std::strerror(errno)};
  int fd = ::signalfd(-1, &signals, SFD_CLOEXEC | SFD_NONBLOCK);
  if (fd < 0) throw Failure{kExitOther, std::string("agent: signalfd: ") + std::strerror(errno)};
  return fd;
}

// Bases are built in order: the connection exists before the object on it
// and is destroyed after it.
struct AgentConnection {
  std::unique_ptr<sdbus::IConnection> connection;
};

class TextAgent final : private AgentConnection,
                        public sdbus::AdaptorInterfaces<io::github::costore::ConsentAgent1_adaptor> {
 public:
  TextAgent(std::unique_ptr<sdbus::IConnection> bus, const AgentArgs& args, int signal_fd)
      : AgentConnection{std::move(bus)},
        AdaptorInterfaces(*connection, kAgentPath),
        args_(args),
        signal_fd_(signal_fd),
        interactive_(!args.answer),
        stdin_is_tty_(::isatty(STDIN_FILENO) == 1) {
    registerAdaptor();
    manager_ = sdbus::createProxy(*connection, ipc::kBusName, ipc::kObjectPath);
    // Follow the daemon: if it goes away, its questions are moot; if it
    // comes back (restarted or activated), register with it again.
    daemon_watch_ = connection->addMatch(
        std::string("type='signal',sender='org.freedesktop.DBus',interface='org.freedesktop.DBus',"
                    "member='NameOwnerChanged',arg0='") +
            ipc::kBusName + "'",
        [this](sdbus::Message& message) {
          std::string name, old_owner, new_owner;
          message >> name >> old_owner >> new_owner;
          if (!old_owner.empty()) DaemonGone();
          if (!new_owner.empty() && !registered_) daemon_back_ = true;
        });
  }

  virtual ~TextAgent() {
    daemon_watch_.reset();
    unregisterAdaptor();
  }

  int Run() {
    Register();
    Say(std::string("Registered as the costore consent agent. ") +
        (interactive_ ? "Waiting for requests; Ctrl-D or Ctrl-C stops."
                      : "Answering every request with " + *args_.answer + "; Ctrl-C stops."));
    while (!quit_) {
      while (!quit_ && connection->processPendingRequest()) {
      }
      if (quit_) break;
      if (daemon_back_) {
        daemon_back_ = false;
        Register();
        Say("costored is back: registered again.");
        continue;
      }
      auto bus = connection->getEventLoopPollData();
      const bool read_stdin = interactive_ && !stdin_closed_;
      pollfd fds[3] = {{bus.fd, bus.events, 0},
                       {signal_fd_, POLLIN, 0},
                       {read_stdin ? STDIN_FILENO : -1, POLLIN, 0}};
      if (::poll(fds, 3, bus.getPollTimeout()) < 0) {
        if (errno == EINTR) continue;
        throw Failure{kExitOther, std::string("agent: poll: ") + std::strerror(errno)};
      }
      if (fds[1].revents & POLLIN) {
        signalfd_siginfo info{};
        if (::read(signal_fd_, &info, sizeof info) == sizeof info) {
          Say(std::string("\nStopping (") + SignalWord(info.ssi_signo) + ").");
          quit_ = true;
        }
      }
      if (!quit_ && (fds[2].revents & (POLLIN | POLLHUP | POLLERR))) ReadInput();
    }
    Unregister();
    return kExitOk;
  }

 private:
  struct Pending {
    std::string id;
    Dict request;
    ConsentResult result;
  };

  static const char* SignalWord(uint32_t signo) {
    switch (signo) {
      case SIGINT: return "interrupted";
      case SIGTERM: return "terminated";
      case SIGHUP: return "hangup";
      default: return "signal";
    }
  }

  void Say(const std::string& line) { std::cout << line << std::endl; }

  void Register() {
    try {
      manager_->callMethod("RegisterConsentAgent")
          .onInterface(kManagerInterface)
          .withArguments(sdbus::ObjectPath(kAgentPath));
    } catch (const sdbus::Error& error) {
      if (error.getName() == std::string(ipc::kErrorPrefix) + "Busy") {
        throw Failure{kExitAgentBusy, "agent: " + error.getMessage() +
                                          ": only one consent agent can be registered at a time; stop it first"};
      }
      throw BusFailure("agent: cannot register as the consent agent", error);
    }
    registered_ = true;
  }

  // Best effort: the daemon also forgets an agent whose connection closes.
  void Unregister() {
    if (!registered_) return;
    registered_ = false;
    try {
      manager_->callMethod("UnregisterConsentAgent")
          .onInterface(kManagerInterface)
          .withArguments(sdbus::ObjectPath(kAgentPath));
    } catch (const sdbus::Error&) {
    }
  }

  // --- ConsentAgent1 ---

  void RequestConsent(ConsentResult&& result, Dict request) override {
    std::string id = Get<std::string>(request, "id");
    if (args_.answer) {
      std::cout << '\n' << Describe(id, request);
      result.returnResults(*args_.answer, Dict{});
      Say("decision: " + *args_.answer + " (--answer)");
      Finished();
      return;
    }
    pending_.push_back(Pending{std::move(id), std::move(request), std::move(result)});
    if (!showing_) ShowNext();
  }

  void Cancel(const std::string& id) override {
    auto it = std::find_if(pending_.begin(), pending_.end(), [&](const Pending& p) { return p.id == id; });
    if (it == pending_.end()) return;  // answered already, or never seen: ignored
    const bool shown = showing_ && it == pending_.begin();
    // Complete the daemon's call without a decision (an error is not a deny).
    it->result.returnError(sdbus::Error(kCancelledError, "the request was withdrawn"));
    pending_.erase(it);
    if (shown) {
      showing_ = false;
      Say("\nRequest " + Printable(id) +
          " was withdrawn (the asking program went away, or the daemon stopped waiting): no answer needed.");
      Finished();
      if (!quit_) ShowNext();
    } else {
      Say("\n(Request " + Printable(id) + ", waiting in line, was withdrawn.)");
      if (showing_) Prompt();
    }
  }

  // --- the terminal ---

  std::string Describe(const std::string& id, const Dict& request) const {
    const std::string app = Get<std::string>(request, "app");
    const std::string origin = Get<std::string>(request, "origin");
    std::string text = "Consent request " + Printable(id) + ":\n";
    text += "  app:   " + Printable(app) + "\n";
    text += "  site:  " + (origin.empty() ? std::string("- (the app itself, no web origin)") : Printable(origin)) + "\n";

    auto files = Get<std::vector<Dict>>(request, "files");
    text += "  asks to read " + Plural(files.size(), "file", "files") + ":\n";
    Table file_table({"NAME", "SIZE", "DIGEST"});
    for (size_t i = 0; i < files.size() && i < kMaxFileLines; ++i) {
      const std::string name = Get<std::string>(files[i], "name");
      file_table.Add({name.empty() ? "(no name)" : name, HumanSize(Get<uint64_t>(files[i], "size")),
                      ShortDigest(Get<std::string>(files[i], "digest"))});
    }
    text += Indent(file_table.Render(), "    ");
    if (files.size() > kMaxFileLines) text += "    ... and " + std::to_string(files.size() - kMaxFileLines) + " more\n";

    if (Get<bool>(request, "deferred")) {
      text += "  it was told they are not here (policy ask-later): allowing lets it read them next time.\n";
    }
    auto attribution = Get<std::vector<Dict>>(request, "attribution");
    if (attribution.empty()) {
      text += "  nobody else has stored or used them.\n";
    } else {
      text += "  already stored or used by:\n";
      Table who({"SITE", "APP", "STORED", "STORES", "READS", "LAST USED"});
      for (size_t i = 0; i < attribution.size() && i < kMaxAttributionLines; ++i) {
        const Dict& use = attribution[i];
        who.Add({HumanOrigin(Get<std::string>(use, "origin")), Get<std::string>(use, "app"),
                 Get<bool>(use, "stored") ? "yes" : "no", std::to_string(Get<uint32_t>(use, "stores")),
                 std::to_string(Get<uint32_t>(use, "reads")), HumanTime(Get<int64_t>(use, "last-used"))});
      }
      text += Indent(who.Render(), "    ");
      if (attribution.size() > kMaxAttributionLines)
        text += "    ... and " + std::to_string(attribution.size() - kMaxAttributionLines) + " more\n";
    }
    return text;
  }

  void ShowNext() {
    if (pending_.empty()) return;
    const Pending& front = pending_.front();
    std::cout << '\n' << Describe(front.id, front.request);
    if (pending_.size() > 1) std::cout << "  (" << Plural(pending_.size() - 1, "more request", "more requests") << " waiting)\n";
    showing_ = true;
    // Only what is typed after the question appears answers it.
    input_.clear();
    if (stdin_is_tty_) ::tcflush(STDIN_FILENO, TCIFLUSH);
    Prompt();
  }

  void Prompt() { std::cout << "Allow? [o]nce / [a]lways / [d]eny (default deny): " << std::flush; }

  void ReadInput() {
    char buffer[1024];
    ssize_t got = ::read(STDIN_FILENO, buffer, sizeof buffer);
    if (got < 0 && (errno == EINTR || errno == EAGAIN)) return;
    if (got <= 0) {
      stdin_closed_ = true;
      if (!input_.empty()) HandleLine(std::exchange(input_, std::string()));  // a last line without '\n'
      if (!quit_) Say(std::string(showing_ ? "\n" : "") + "End of input: stopping.");
      quit_ = true;
      return;
    }
    input_.append(buffer, static_cast<size_t>(got));
    size_t newline;
    while ((newline = input_.find('\n')) != std::string::npos) {
      std::string line = input_.substr(0, newline);
      input_.erase(0, newline + 1);
      HandleLine(line);  // may show the next question, which clears input_
      if (quit_) return;
    }
    if (input_.size() > kMaxPendingInput) input_.clear();
  }

  void HandleLine(std::string line) {
    if (!showing_) return;  // typed while no question was shown: ignored
    // A terminal echoes what is typed; from a pipe, show it for the record.
    if (!stdin_is_tty_) std::cout << Printable(line) << '\n';
    line.erase(std::remove_if(line.begin(), line.end(), [](unsigned char c) { return std::isspace(c); }),
               line.end());
    std::transform(line.begin(), line.end(), line.begin(), [](unsigned char c) { return std::tolower(c); });
    if (line.empty() || line == "d" || line == "deny" || line == "n" || line == "no") return Answer("deny");
    if (line == "o" || line == "once") return Answer("allow-once");
    if (line == "a" || line == "always") return Answer("allow-always");
    std::cout << "Please answer o (allow once), a (allow always for this site) or d (deny).\n";
    Prompt();
  }

  void Answer(const std::string& decision) {
    Pending answered = std::move(pending_.front());
    pending_.pop_front();
    showing_ = false;
    answered.result.returnResults(decision, Dict{});
    const std::string origin = Get<std::string>(answered.request, "origin");
    const std::string who = origin.empty() ? Printable(Get<std::string>(answered.request, "app")) : Printable(origin);
    if (decision == "allow-always") {
      Say("decision: allow-always (" + who + " may read these files from now on; see costore grants)");
    } else if (decision == "allow-once") {
      Say("decision: allow-once (this request only)");
    } else {
      Say("decision: deny (not asked again for these files until costored restarts)");
    }
    Finished();
    if (!quit_) ShowNext();
  }

  // A request is done with (answered or withdrawn).
  void Finished() {
    if (args_.once) quit_ = true;
  }

  // costored left the bus: its questions are moot and its registration gone.
  void DaemonGone() {
    if (!registered_) return;
    registered_ = false;
    const size_t dropped = pending_.size();
    pending_.clear();
    showing_ = false;
    Say("\ncostored went away" + (dropped ? ": " + Plural(dropped, "request", "requests") + " dropped" : std::string()) +
        "; waiting for it to come back.");
  }

  const AgentArgs& args_;
  const int signal_fd_;
  const bool interactive_;
  const bool stdin_is_tty_;
  std::unique_ptr<sdbus::IProxy> manager_;
  sdbus::Slot daemon_watch_;
  std::deque<Pending> pending_;  // front: the question shown, if showing_
  bool showing_ = false;
  std::string input_;
  bool stdin_closed_ = false;
  bool registered_ = false;
  bool daemon_back_ = false;
  bool quit_ = false;
};

}  // namespace

int Agent(const AgentArgs& args) {
  if (args.answer && *args.answer != "allow-once" && *args.answer != "allow-always" && *args.answer != "deny")
    throw Failure{kExitUsage, "agent: --answer takes allow-once, allow-always or deny"};
  client::UniqueFd signal_fd(SignalFd());
  std::unique_ptr<sdbus::IConnection> bus;
  try {
    bus = sdbus::createSessionBusConnection();
  } catch (const sdbus::Error& error) {
    throw Failure{kExitUnreachable, "agent: cannot connect to the session bus: " + error.getMessage()};
  }
  try {
    TextAgent agent(std::move(bus), args, signal_fd.get());
    return agent.Run();
  } catch (const sdbus::Error& error) {
    throw BusFailure("agent", error);
  }
}

}  // namespace costore::cli
