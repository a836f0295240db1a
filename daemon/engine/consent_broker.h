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
// Bounded: what it remembers per principal (the budget, and the last
// kMaxDenialsPerPrincipal files the user denied it) is kept for at most
// kMaxPrincipals principals, least recently used evicted first, so that
// callers minting origins cannot grow the daemon (about 300 bytes each).
// Pending prompts are bounded by the engine's caps on opens in flight.
//
// Forgetting must not let a page prompt faster than its budget allows:
// - A budget refills to full within an hour whatever the rate, so the
//   state of a principal that last prompted an hour ago and holds no
//   denial is exactly a new principal's: evicting it loses nothing.
// - Evicting any other state ("lossy") makes every principal the broker
//   does not know start with an empty budget (refilling at the normal
//   rate from then on) for the next hour, since it may be the one just
//   evicted. After that hour the evicted principal's own budget would have
//   been full again anyway.
// - So a page whose denial was evicted can ask again, but only as its
//   budget refills: its denial costs it one prompt of its budget, no more.
//   The price: while someone floods the broker, a principal it has never
//   seen waits 3600/prompts_per_hour seconds for its first prompt.
// The same holds for denials dropped past kMaxDenialsPerPrincipal: each was
// a prompt the budget paid for.
//
// Thread-safe; `done` callbacks run without the broker's lock held.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "daemon/engine/consent.h"
#include "daemon/engine/env.h"
#include "daemon/engine/lru_map.h"

namespace costore {

class ConsentBroker {
 public:
  using Done = std::function<void(ConsentDecision)>;

  static constexpr size_t kMaxPrincipals = 4096;
  static constexpr size_t kMaxDenialsPerPrincipal = 32;

  explicit ConsentBroker(Env* env, size_t max_principals = kMaxPrincipals);

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

  // Principals whose state is kept now (tests, logs).
  size_t principals_tracked();

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
  struct PrincipalState {
    Budget budget;
    std::vector<std::string> denied;  // digests, oldest first
  };

  // Spends one prompt of the principal's budget; false if none is left.
  bool TakePrompt(const Principal& who, uint32_t per_hour);
  // Whether TakePrompt would succeed; creates no state.
  bool HasPrompt(const Principal& who, uint32_t per_hour);
  // The budget's tokens at `now_us`, refilled since it was last spent.
  static double Refilled(const Budget& budget, uint32_t per_hour, int64_t now_us);
  // The tokens a principal with no state starts with (see the header).
  double FreshTokens(uint32_t per_hour, int64_t now_us) const;
  bool IsDenied(const Key& key);
  void RememberDenial(const Key& key);
  // The state of `who`, made as the header says if there was none.
  PrincipalState& StateOf(const Principal& who, uint32_t per_hour);
  void Evicted(const PrincipalState& state);
  void Finish(const Key& key, const std::string& id, ConsentDecision decision);

  Env* env_;
  std::mutex mu_;
  ConsentAgent* agent_ = nullptr;
  uint64_t next_id_ = 1;
  std::map<Key, Pending> pending_;
  LruMap<Principal, PrincipalState> principals_;
  int64_t last_lossy_eviction_us_ = INT64_MIN;
};

}  // namespace costore
