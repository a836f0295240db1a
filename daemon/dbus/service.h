// The D-Bus front of the engine: io.github.costore.Store1 and
// io.github.costore.Manager1 on /io/github/costore. It parses arguments,
// identifies the caller from kernel data, calls the Engine and turns its
// Status into io.github.costore.Error.<Name>. Nothing else: the policy
// lives in the engine.
#pragma once

#include <sdbus-c++/sdbus-c++.h>

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "daemon/dbus/caller_identity.h"
#include "daemon/dbus/consent_agent_channel.h"
#include "daemon/dbus/event_loop.h"
#include "daemon/dbus/worker_pool.h"
#include "daemon/engine/engine.h"
#include "daemon/engine/lru_map.h"

namespace costore {

class StoreObject;
class ManagerObject;

class Service {
 public:
  // `agent_command`: argv of the consent agent to start when none is
  // registered (empty: never start one); `agent_needs_display`: start it
  // only in a graphical session.
  Service(sdbus::IConnection& connection, Engine& engine, EventLoop& loop,
          std::vector<std::string> agent_command, bool agent_needs_display = true, int max_workers = 32);
  ~Service();

  // Sends Manager1.Changed to each subscribed connection. Loop thread only.
  void EmitChanged(const ChangeEvent& event);
  // Manager1.Subscribe/Unsubscribe for the connection `sender`.
  Status Subscribe(const std::string& sender);
  Status Unsubscribe(const std::string& sender);
  static constexpr size_t kMaxSubscribers = 256;
  // Blocks until every worker has finished (and joins them), or
  // `timeout_ms` passes; true if they finished.
  bool WaitForWorkers(int timeout_ms);

  // The identity of the sender of the message being dispatched; cached per
  // unique bus name until the name goes away. Loop thread only.
  Status IdentifyCurrentCaller(const sdbus::IObject& object, CallerIdentity* identity);

  Engine& engine() { return engine_; }
  ConsentAgentChannel& consent_agents() { return consent_agents_; }
  EventLoop& loop() { return loop_; }
  // Runs `work` on a worker; its result must be Post()ed back.
  void StartWorker(std::function<void()> work);

 private:
  sdbus::IConnection& connection_;
  Engine& engine_;
  EventLoop& loop_;
  // By unique bus name, for the connections that called most recently:
  // bounded, since a caller can open connections at will; one evicted is
  // identified again from kernel data at its next call, so nothing is lost.
  static constexpr size_t kMaxCachedIdentities = 4096;
  LruMap<std::string, CallerIdentity> identities_{kMaxCachedIdentities};
  std::set<std::string> subscribers_;  // unique bus names, for Changed
  ConsentAgentChannel consent_agents_;
  sdbus::Slot name_owner_watch_;
  WorkerPool workers_;
  std::unique_ptr<StoreObject> store_;
  std::unique_ptr<ManagerObject> manager_;
};

// io.github.costore.Error.<CodeName(code)> carrying the status's message.
sdbus::Error ToDbusError(const Status& status);

}  // namespace costore
