// ConsentAgentChannel: the engine's ConsentAgent over D-Bus. It keeps the
// one registered agent (Manager1.RegisterConsentAgent), calls its
// io.github.costore.ConsentAgent1.RequestConsent, and, when no agent is
// registered, starts one (costore-consent --agent) and waits for it to
// register. Loop thread only, like everything that touches the bus.
//
// It starts an agent only where one can reach the user: the command is a
// graphical one (costore-consent), so only in a graphical session (DISPLAY
// or WAYLAND_DISPLAY set in the daemon's environment), unless the command
// is marked as needing no display. An agent that exits before registering
// ends the wait at once, and none is started again for a minute: a request
// is never held up by an agent that cannot come.
#pragma once

#include <sdbus-c++/sdbus-c++.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <sys/types.h>

#include "daemon/dbus/event_loop.h"
#include "daemon/engine/consent.h"
#include "daemon/engine/status.h"

namespace costore {

class ConsentAgentChannel : public ConsentAgent {
 public:
  // `spawn_command`: argv of the agent to start when none is registered;
  // empty: never start one.
  // `spawn_needs_display`: the command draws on a display (start it only
  // in a graphical session).
  ConsentAgentChannel(sdbus::IConnection& connection, EventLoop& loop,
                      std::vector<std::string> spawn_command, bool spawn_needs_display = true);
  ~ConsentAgentChannel() override;

  // `sender` (a unique bus name) serves ConsentAgent1 at `path`. Busy if
  // another live connection is the agent.
  Status Register(const std::string& sender, const std::string& path);
  Status Unregister(const std::string& sender, const std::string& path);
  // A bus name went away: if it was the agent, forget it and refuse what
  // it was asked.
  void NameVanished(const std::string& name);

  void Ask(const ConsentRequest& request, uint32_t timeout_s,
           std::function<void(ConsentDecision)> done) override;
  void Cancel(const std::string& request_id) override;
  bool CanAsk() override;

 private:
  struct Question {
    ConsentRequest request;
    uint32_t timeout_s;
    std::function<void(ConsentDecision)> done;
  };
  void Send(Question question);
  void StartAgent();
  bool MayStartAgent() const;
  void GiveUpWaitingForAgent();
  void AnswerAll(std::map<std::string, std::function<void(ConsentDecision)>>* in_flight);

  sdbus::IConnection& connection_;
  EventLoop& loop_;
  std::vector<std::string> spawn_command_;
  bool spawn_needs_display_;
  std::string agent_name_;
  std::string agent_path_;
  std::unique_ptr<sdbus::IProxy> agent_;
  // Asked and not answered yet, by request id.
  std::map<std::string, std::function<void(ConsentDecision)>> in_flight_;
  // Waiting for a started agent to register.
  std::vector<Question> waiting_;
  bool starting_ = false;
  std::chrono::steady_clock::time_point last_failed_start_{};
  pid_t started_pid_ = 0;
  // Lets the thread that reaps a started agent tell whether this channel
  // still exists when the agent exits.
  std::shared_ptr<ConsentAgentChannel*> self_ = std::make_shared<ConsentAgentChannel*>(this);
};

}  // namespace costore
