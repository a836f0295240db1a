// A consent agent that answers from a script instead of a person: it
// implements io.github.costore.ConsentAgent1 on its own bus connection,
// registers with the daemon, and either answers each request at once with
// a fixed decision or holds it until the test answers.
#pragma once

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <sdbus-c++/sdbus-c++.h>

#include "costore-ipc/ConsentAgent1_adaptor.h"

namespace costore::test {

// Bases are built in order: the connection exists before the object on it
// and goes after it.
struct AgentConnection {
  std::unique_ptr<sdbus::IConnection> connection;
};

class ScriptedAgent : private AgentConnection,
                      public sdbus::AdaptorInterfaces<io::github::costore::ConsentAgent1_adaptor> {
 public:
  using Dict = std::map<std::string, sdbus::Variant>;
  static constexpr const char* kPath = "/io/github/costore/TestAgent";

  // `decision`: answer every request with it at once; nullopt: hold them.
  ScriptedAgent(const std::string& bus_address, std::optional<std::string> decision);
  virtual ~ScriptedAgent();

  // Manager1.RegisterConsentAgent from this agent's connection; returns the
  // D-Bus error name, "" on success.
  std::string Register();
  std::string Unregister();

  // Requests received so far, and ids cancelled.
  std::vector<Dict> requests();
  std::vector<std::string> cancelled();
  // Waits until at least `n` requests (or cancels) arrived, up to 10 s.
  bool WaitForRequests(size_t n);
  bool WaitForCancels(size_t n);
  // Answers a held request.
  void Answer(const std::string& id, const std::string& decision);

 private:
  void RequestConsent(sdbus::Result<std::string, Dict>&& result, Dict request) override;
  void Cancel(const std::string& id) override;

  std::optional<std::string> decision_;
  std::mutex mu_;
  std::condition_variable changed_;
  std::vector<Dict> requests_;
  std::vector<std::string> cancelled_;
  std::map<std::string, std::shared_ptr<sdbus::Result<std::string, Dict>>> held_;
};

}  // namespace costore::test
