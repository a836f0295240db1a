// ConsentBroker: when to ask, and how often.
//
// - A principal the user denied a file is refused unasked until restart,
//   so that a page cannot re-prompt in a loop.
// - Each principal has a prompt budget (a token bucket refilled at
//   prompts_per_hour); past it, requests are refused unasked.
// - Identical concurrent requests (same principal, same file) share one
//   prompt; each waiter gets the answer.
// - A waiter whose caller went away is dropped; a prompt nobody waits for
//   any more is cancelled.
//
// Thread-safe; `done` callbacks run without the broker's lock held.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "daemon/engine/consent.h"
#include "daemon/engine/env.h"

namespace costore {

class ConsentBroker {
 public:
  using Done = std::function<void(ConsentDecision)>;

  explicit ConsentBroker(Env* env) : env_(env) {}

  // May be null (no agent): then every request is kNoAnswer.
  void SetAgent(ConsentAgent* agent);

  // Whether Request would put the question to the user (or join one in
  // flight) now, decided from what the broker holds in memory alone: false
  // when the policy is "deny", no agent can ask, the principal was denied
  // this file, or its prompt budget is spent. A caller uses it to refuse
  // without first reading what the question would show (a refusal must cost
  // what a miss costs); Request decides again. Creates no state.
  bool WouldAsk(const Principal& who, const std::string& digest, const ConsentSettings& settings);

  // Asks (or joins an identical question in flight) for `waiter` (an id of
  // the caller, to drop it if it goes away), or answers unasked. A
  // `request.deferred` question (the caller was answered already) never
  // joins one in flight: it is answered kNoAnswer at once instead.
  void Request(const ConsentRequest& request, const std::string& waiter,
               const ConsentSettings& settings, Done done);

  // The caller `waiter` went away: its callbacks are dropped uncalled.
  void DropWaiter(const std::string& waiter);

  // Answers every pending request with kNoAnswer (shutdown).
  void AbandonAll();

 private:
  using Key = std::pair<Principal, std::string>;  // (principal, digest)
  struct Pending {
    std::string id;
    std::vector<std::pair<std::string, Done>> waiters;  // (waiter, done)
  };
  struct Budget {
    double tokens = 0;
    int64_t updated_us = 0;
  };

  // Spends one prompt of the principal's budget; false if none is left.
  bool TakePrompt(const Principal& who, uint32_t per_hour);
  // Whether TakePrompt would succeed; changes nothing.
  bool HasPrompt(const Principal& who, uint32_t per_hour) const;
  // The budget's tokens at `now_us`, refilled since it was last spent.
  static double Refilled(const Budget& budget, uint32_t per_hour, int64_t now_us);
  void Finish(const Key& key, const std::string& id, ConsentDecision decision);

  Env* env_;
  std::mutex mu_;
  ConsentAgent* agent_ = nullptr;
  uint64_t next_id_ = 1;
  std::map<Key, Pending> pending_;
  std::set<Key> denied_;
  std::map<Principal, Budget> budgets_;
};

}  // namespace costore
