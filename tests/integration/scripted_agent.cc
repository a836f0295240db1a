#include "tests/integration/scripted_agent.h"

#include <chrono>

#include "costore-ipc/names.h"

namespace costore::test {

ScriptedAgent::ScriptedAgent(const std::string& bus_address, std::optional<std::string> decision)
    : AgentConnection{sdbus::createSessionBusConnectionWithAddress(bus_address)},
      AdaptorInterfaces(*connection, kPath),
      decision_(std::move(decision)) {
  registerAdaptor();
  connection->enterEventLoopAsync();
}

ScriptedAgent::~ScriptedAgent() {
  connection->leaveEventLoop();
  unregisterAdaptor();
}

namespace {
std::string CallManager(sdbus::IConnection& connection, const char* method, const char* path) {
  auto proxy = sdbus::createProxy(connection, ipc::kBusName, ipc::kObjectPath);
  try {
    proxy->callMethod(method).onInterface("io.github.costore.Manager1").withArguments(sdbus::ObjectPath(path));
    return "";
  } catch (const sdbus::Error& e) {
    return e.getName();
  }
}
}  // namespace

std::string ScriptedAgent::Register() { return CallManager(*connection, "RegisterConsentAgent", kPath); }
std::string ScriptedAgent::Unregister() { return CallManager(*connection, "UnregisterConsentAgent", kPath); }

void ScriptedAgent::RequestConsent(sdbus::Result<std::string, Dict>&& result, Dict request) {
  std::lock_guard<std::mutex> lock(mu_);
  requests_.push_back(request);
  if (decision_) {
    result.returnResults(*decision_, Dict{});
  } else {
    held_[request["id"].get<std::string>()] = std::make_shared<sdbus::Result<std::string, Dict>>(std::move(result));
  }
  changed_.notify_all();
}

void ScriptedAgent::Cancel(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  cancelled_.push_back(id);
  held_.erase(id);
  changed_.notify_all();
}

std::vector<ScriptedAgent::Dict> ScriptedAgent::requests() {
  std::lock_guard<std::mutex> lock(mu_);
  return requests_;
}

std::vector<std::string> ScriptedAgent::cancelled() {
  std::lock_guard<std::mutex> lock(mu_);
  return cancelled_;
}

bool ScriptedAgent::WaitForRequests(size_t n) {
  std::unique_lock<std::mutex> lock(mu_);
  return changed_.wait_for(lock, std::chrono::seconds(10), [&] { return requests_.size() >= n; });
}

bool ScriptedAgent::WaitForCancels(size_t n) {
  std::unique_lock<std::mutex> lock(mu_);
  return changed_.wait_for(lock, std::chrono::seconds(10), [&] { return cancelled_.size() >= n; });
}

void ScriptedAgent::Answer(const std::string& id, const std::string& decision) {
  std::shared_ptr<sdbus::Result<std::string, Dict>> result;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = held_.find(id);
    if (it == held_.end()) return;
    result = it->second;
    held_.erase(it);
  }
  result->returnResults(decision, Dict{});
}

}  // namespace costore::test
