// costore agent: a text-mode consent agent, as polkit's pkttyagent is for
// polkit. It serves io.github.costore.ConsentAgent1 on its own session-bus
// connection, registers it with Manager1.RegisterConsentAgent, and asks on
// the terminal (or answers by itself with --answer).
#pragma once

#include <optional>
#include <string>

namespace costore::cli {

struct AgentArgs {
  // "allow-once", "allow-always" or "deny": answer every request with it,
  // without reading standard input. Unset: ask on the terminal.
  std::optional<std::string> answer;
  // Stop after the first request (answered or withdrawn).
  bool once = false;
};

// Runs the agent until end of input, SIGINT, SIGTERM or SIGHUP (or the
// first request with --once); returns the exit status. Throws Failure when
// it cannot register (kExitAgentBusy when another agent is registered).
int Agent(const AgentArgs& args);

}  // namespace costore::cli
