// costore-test-agent: a scripted consent agent as a process of its own, for
// tests that start, kill or let the daemon spawn an agent.
//   costore-test-agent allow-once|allow-always|deny|hold
// Registers on $DBUS_SESSION_BUS_ADDRESS, prints "registered", and serves
// until killed. Each request is logged to stdout as "request <id>".
#include <sys/prctl.h>
#include <unistd.h>
#include <csignal>

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>

#include "tests/integration/scripted_agent.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s allow-once|allow-always|deny|hold\n", argv[0]);
    return 1;
  }
  // Started by a test or by the daemon: go when it goes.
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  std::string mode = argv[1];
  std::optional<std::string> decision;
  if (mode != "hold") decision = mode;
  const char* address = std::getenv("DBUS_SESSION_BUS_ADDRESS");
  if (address == nullptr) {
    std::fprintf(stderr, "costore-test-agent: DBUS_SESSION_BUS_ADDRESS is not set\n");
    return 1;
  }
  costore::test::ScriptedAgent agent(address, decision);
  std::string error = agent.Register();
  if (!error.empty()) {
    std::fprintf(stderr, "costore-test-agent: cannot register: %s\n", error.c_str());
    return 1;
  }
  std::printf("registered\n");
  std::fflush(stdout);
  size_t seen = 0;
  for (;;) {
    agent.WaitForRequests(seen + 1);
    auto requests = agent.requests();
    for (; seen < requests.size(); ++seen) {
      std::printf("request %s\n", requests[seen]["id"].get<std::string>().c_str());
      std::fflush(stdout);
    }
  }
}
