#include "daemon/dbus/consent_agent_channel.h"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <thread>

#include "costore-ipc/ConsentAgent1_proxy.h"
#include "daemon/engine/quote.h"
#include "daemon/log.h"

extern char** environ;

namespace costore {
namespace {

using Dict = std::map<std::string, sdbus::Variant>;
constexpr const char* kAgentInterface = io::github::costore::ConsentAgent1_proxy::INTERFACE_NAME;
// How long a started agent has to register before its questions are refused.
constexpr std::chrono::seconds kAgentStartTimeout{10};
// After a start that failed, how long before trying again.
constexpr std::chrono::seconds kAgentRetryDelay{60};

Dict RequestDict(const ConsentRequest& request) {
  std::vector<Dict> files;
  for (const FileRecord& file : request.files) {
    files.push_back({{"digest", sdbus::Variant(file.digest.ToString())},
                     {"name", sdbus::Variant(file.name)},
                     {"size", sdbus::Variant(file.size)}});
  }
  std::vector<Dict> attribution;
  for (const UsageRecord& use : request.attribution) {
    attribution.push_back({{"app", sdbus::Variant(use.principal.app)},
                           {"origin", sdbus::Variant(use.principal.origin)},
                           {"stored", sdbus::Variant(use.stored)},
                           {"stores", sdbus::Variant(use.stores)},
                           {"reads", sdbus::Variant(use.reads)},
                           {"last-used", sdbus::Variant(use.last_used_us)}});
  }
  return {{"id", sdbus::Variant(request.id)},
          {"deferred", sdbus::Variant(request.deferred)},
          {"app", sdbus::Variant(request.who.app)},
          {"origin", sdbus::Variant(request.who.origin)},
          {"files", sdbus::Variant(files)},
          {"attribution", sdbus::Variant(attribution)}};
}

}  // namespace

bool HasGraphicalSession() {
  for (const char* name : {"WAYLAND_DISPLAY", "DISPLAY"}) {
    const char* value = std::getenv(name);
    if (value != nullptr && *value != '\0') return true;
  }
  return false;
}

ConsentAgentChannel::ConsentAgentChannel(sdbus::IConnection& connection, EventLoop& loop,
                                         std::vector<std::string> spawn_command, bool spawn_needs_display)
    : connection_(connection),
      loop_(loop),
      spawn_command_(std::move(spawn_command)),
      spawn_needs_display_(spawn_needs_display) {
  if (!spawn_command_.empty() && spawn_needs_display_ && !HasGraphicalSession()) {
    LogInfo("no graphical session (neither DISPLAY nor WAYLAND_DISPLAY is set): the consent agent " +
            Quote(spawn_command_[0]) + " will not be started; requests that need consent are refused "
            "unless an agent registers");
  }
}

ConsentAgentChannel::~ConsentAgentChannel() {
  auto in_flight = std::move(in_flight_);
  AnswerAll(&in_flight);
  for (auto& question : waiting_) question.done(ConsentDecision::kNoAnswer);
}

Status ConsentAgentChannel::Register(const std::string& sender, const std::string& path) {
  if (!agent_name_.empty() && agent_name_ != sender) {
    return Status::Busy("another consent agent (" + agent_name_ + ") is registered");
  }
  if (agent_name_ == sender && agent_path_ == path) return Status::OK();
  // A new path from the same connection: questions in flight go to the old one.
  agent_name_ = sender;
  agent_path_ = path;
  agent_ = sdbus::createProxy(connection_, sender, path);
  starting_ = false;
  LogInfo("consent agent registered: " + sender + " " + path);
  auto waiting = std::move(waiting_);
  waiting_.clear();
  for (auto& question : waiting) Send(std::move(question));
  return Status::OK();
}

Status ConsentAgentChannel::Unregister(const std::string& sender, const std::string& path) {
  if (agent_name_ != sender || agent_path_ != path) {
    return Status::NotFound("the caller is not the registered consent agent at " + Quote(path));
  }
  NameVanished(sender);
  return Status::OK();
}

void ConsentAgentChannel::NameVanished(const std::string& name) {
  if (name != agent_name_) return;
  LogInfo("consent agent " + name + " went away");
  agent_name_.clear();
  agent_path_.clear();
  // Destroying the proxy drops its pending calls without their callbacks:
  // answer them here instead.
  auto in_flight = std::move(in_flight_);
  in_flight_.clear();
  agent_.reset();
  AnswerAll(&in_flight);
}

void ConsentAgentChannel::AnswerAll(
    std::map<std::string, std::function<void(ConsentDecision)>>* in_flight) {
  for (auto& [id, done] : *in_flight) done(ConsentDecision::kNoAnswer);
  in_flight->clear();
}

bool ConsentAgentChannel::MayStartAgent() const {
  if (spawn_command_.empty()) return false;
  if (spawn_needs_display_ && !HasGraphicalSession()) return false;
  return last_failed_start_ == std::chrono::steady_clock::time_point{} ||
         std::chrono::steady_clock::now() - last_failed_start_ > kAgentRetryDelay;
}

bool ConsentAgentChannel::CanAsk() { return agent_ != nullptr || starting_ || MayStartAgent(); }

void ConsentAgentChannel::Ask(const ConsentRequest& request, uint32_t timeout_s,
                              std::function<void(ConsentDecision)> done) {
  Question question{request, timeout_s, std::move(done)};
  if (agent_) return Send(std::move(question));
  if (!starting_ && !MayStartAgent()) return question.done(ConsentDecision::kNoAnswer);
  waiting_.push_back(std::move(question));
  if (!starting_) StartAgent();
}

void ConsentAgentChannel::StartAgent() {
  std::vector<char*> argv;
  for (auto& arg : spawn_command_) argv.push_back(arg.data());
  argv.push_back(nullptr);
  // Descriptors callers passed in (store sources, from sdbus-c++'s dup(),
  // which drops close-on-exec) must not leak into the agent.
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addclosefrom_np(&actions, STDERR_FILENO + 1);
  pid_t pid = 0;
  int rc = posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    LogWarning("cannot start the consent agent " + Quote(spawn_command_[0]) + ": " + std::strerror(rc));
    GiveUpWaitingForAgent();
    return;
  }
  LogInfo("started the consent agent " + Quote(spawn_command_[0]) + " as pid " + std::to_string(pid));
  starting_ = true;
  started_pid_ = pid;
  // Reap it whenever it exits, so that it never lingers as a zombie; one
  // that exits before it registered (no display, a crash) ends the wait.
  std::weak_ptr<ConsentAgentChannel*> self = self_;
  EventLoop* loop = &loop_;
  std::thread([pid, self, loop] {
    int status = 0;
    waitpid(pid, &status, 0);
    loop->Post([pid, status, self] {
      auto alive = self.lock();
      if (!alive) return;
      ConsentAgentChannel* channel = *alive;
      if (!channel->starting_ || channel->started_pid_ != pid) return;
      LogWarning("the consent agent " + Quote(channel->spawn_command_[0]) + " exited before it registered (" +
                 (WIFEXITED(status) ? "status " + std::to_string(WEXITSTATUS(status))
                                    : "signal " + std::to_string(WTERMSIG(status))) +
                 ")");
      channel->GiveUpWaitingForAgent();
    });
  }).detach();
  loop_.RunAfter(kAgentStartTimeout, [this] {
    if (starting_) {
      LogWarning("the consent agent did not register in time");
      GiveUpWaitingForAgent();
    }
  });
}

void ConsentAgentChannel::GiveUpWaitingForAgent() {
  starting_ = false;
  last_failed_start_ = std::chrono::steady_clock::now();
  auto waiting = std::move(waiting_);
  waiting_.clear();
  for (auto& question : waiting) question.done(ConsentDecision::kNoAnswer);
}

void ConsentAgentChannel::Send(Question question) {
  const std::string id = question.request.id;
  in_flight_[id] = std::move(question.done);
  try {
    agent_->callMethodAsync("RequestConsent")
        .onInterface(kAgentInterface)
        .withTimeout(std::chrono::seconds(question.timeout_s))
        .withArguments(RequestDict(question.request))
        .uponReplyInvoke([this, id](const sdbus::Error* error, std::string decision, Dict /*results*/) {
          auto it = in_flight_.find(id);
          if (it == in_flight_.end()) return;  // answered already (agent gone)
          auto done = std::move(it->second);
          in_flight_.erase(it);
          if (error != nullptr) {
            LogInfo("consent request " + id + " got no answer: " + error->getName());
            // Close the dialog of a question nobody waits for any more.
            if (error->getName() == "org.freedesktop.DBus.Error.NoReply") Cancel(id);
            return done(ConsentDecision::kNoAnswer);
          }
          done(ParseConsentDecision(decision));
        });
  } catch (const sdbus::Error& e) {
    LogWarning("cannot ask the consent agent: " + e.getMessage());
    auto done = std::move(in_flight_[id]);
    in_flight_.erase(id);
    done(ConsentDecision::kNoAnswer);
  }
}

void ConsentAgentChannel::Cancel(const std::string& request_id) {
  if (!agent_) return;
  try {
    agent_->callMethod("Cancel").onInterface(kAgentInterface).withArguments(request_id).dontExpectReply();
  } catch (const sdbus::Error& e) {
    LogWarning("cannot cancel consent request " + request_id + ": " + e.getMessage());
  }
}

}  // namespace costore
