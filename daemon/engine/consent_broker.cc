#include "daemon/engine/consent_broker.h"

#include <algorithm>

namespace costore {

ConsentDecision ParseConsentDecision(const std::string& text) {
  if (text == "allow-once") return ConsentDecision::kAllowOnce;
  if (text == "allow-always") return ConsentDecision::kAllowAlways;
  return ConsentDecision::kDeny;
}

const char* ConsentPolicyName(ConsentPolicy policy) {
  switch (policy) {
    case ConsentPolicy::kAsk:
      return "ask";
    case ConsentPolicy::kAskLater:
      return "ask-later";
    case ConsentPolicy::kDeny:
      return "deny";
  }
  return "ask";
}

bool ParseConsentPolicy(const std::string& text, ConsentPolicy* out) {
  for (ConsentPolicy policy : {ConsentPolicy::kAsk, ConsentPolicy::kAskLater, ConsentPolicy::kDeny}) {
    if (text == ConsentPolicyName(policy)) {
      *out = policy;
      return true;
    }
  }
  return false;
}

void ConsentBroker::SetAgent(ConsentAgent* agent) {
  std::lock_guard<std::mutex> lock(mu_);
  agent_ = agent;
}

namespace {
// A budget refills from empty to full in this time, whatever its rate.
constexpr int64_t kRefillUs = int64_t{3600} * 1'000'000;
}  // namespace

ConsentBroker::ConsentBroker(Env* env, size_t max_principals)
    : env_(env), principals_(max_principals, [this](const Principal&, const PrincipalState& state) { Evicted(state); }) {}

void ConsentBroker::Evicted(const PrincipalState& state) {
  const int64_t now = env_->NowMicros();
  if (!state.denied.empty() || now - state.budget.updated_us < kRefillUs) last_lossy_eviction_us_ = now;
}

ConsentBroker::PrincipalState& ConsentBroker::StateOf(const Principal& who, uint32_t per_hour) {
  const int64_t now = env_->NowMicros();
  PrincipalState fresh;
  fresh.budget.updated_us = now;
  fresh.budget.tokens = FreshTokens(per_hour, now);
  return principals_.FindOrInsert(who, std::move(fresh));
}

double ConsentBroker::FreshTokens(uint32_t per_hour, int64_t now_us) const {
  // Possibly one just evicted: then it starts empty (see the header).
  const bool after_lossy = last_lossy_eviction_us_ != INT64_MIN && now_us - last_lossy_eviction_us_ < kRefillUs;
  return after_lossy ? 0 : per_hour;
}

double ConsentBroker::Refilled(const Budget& budget, uint32_t per_hour, int64_t now_us) {
  double refill = static_cast<double>(now_us - budget.updated_us) / 3.6e9 * per_hour;
  return std::min<double>(per_hour, budget.tokens + std::max(0.0, refill));
}

bool ConsentBroker::HasPrompt(const Principal& who, uint32_t per_hour) {
  if (per_hour == 0) return false;
  const int64_t now = env_->NowMicros();
  const PrincipalState* state = principals_.Find(who);
  return (state == nullptr ? FreshTokens(per_hour, now) : Refilled(state->budget, per_hour, now)) >= 1;
}

bool ConsentBroker::TakePrompt(const Principal& who, uint32_t per_hour) {
  if (per_hour == 0) return false;
  const int64_t now = env_->NowMicros();
  Budget& budget = StateOf(who, per_hour).budget;
  budget.tokens = Refilled(budget, per_hour, now);
  budget.updated_us = now;
  if (budget.tokens < 1) return false;
  budget.tokens -= 1;
  return true;
}

bool ConsentBroker::WouldAsk(const Principal& who, const std::string& digest, const ConsentSettings& settings) {
  if (settings.policy == ConsentPolicy::kDeny) return false;
  std::lock_guard<std::mutex> lock(mu_);
  const Key key{who, digest};
  if (IsDenied(key)) return false;
  if (pending_.count(key)) return settings.policy == ConsentPolicy::kAsk;  // joins the question in flight
  return agent_ != nullptr && agent_->CanAsk() && HasPrompt(who, settings.prompts_per_hour);
}

bool ConsentBroker::IsDenied(const Key& key) {
  const PrincipalState* state = principals_.Find(key.first);
  return state != nullptr && std::find(state->denied.begin(), state->denied.end(), key.second) != state->denied.end();
}

void ConsentBroker::RememberDenial(const Key& key) {
  // A denial only follows a prompt, so the state is there unless it was
  // evicted meanwhile; made again, it starts as the header says.
  PrincipalState& state = StateOf(key.first, 0);
  if (std::find(state.denied.begin(), state.denied.end(), key.second) != state.denied.end()) return;
  if (state.denied.size() >= kMaxDenialsPerPrincipal) state.denied.erase(state.denied.begin());
  state.denied.push_back(key.second);
}

size_t ConsentBroker::principals_tracked() {
  std::lock_guard<std::mutex> lock(mu_);
  return principals_.size();
}

void ConsentBroker::Request(const ConsentRequest& request, const std::string& waiter,
                            const ConsentSettings& settings, Done done) {
  const std::string digest = request.files.empty() ? "" : request.files.front().digest.ToString();
  const Key key{request.who, digest};
  ConsentRequest ask = request;
  ConsentAgent* agent = nullptr;
  ConsentDecision unasked = ConsentDecision::kNoAnswer;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (IsDenied(key)) {
      unasked = ConsentDecision::kDeny;
    } else if (auto pending = pending_.find(key); pending != pending_.end()) {
      if (request.deferred) {
        unasked = ConsentDecision::kNoAnswer;  // already being asked
      } else {
        pending->second.waiters.emplace_back(waiter, std::move(done));
        return;
      }
    } else if (settings.policy != ConsentPolicy::kDeny && agent_ != nullptr &&
               TakePrompt(request.who, settings.prompts_per_hour)) {
      agent = agent_;
      ask.id = "consent-" + std::to_string(next_id_++);
      Pending& entry = pending_[key];
      entry.id = ask.id;
      entry.waiters.emplace_back(waiter, std::move(done));
    }
  }
  if (agent == nullptr) {
    done(unasked);
    return;
  }
  agent->Ask(ask, settings.timeout_s,
             [this, key, id = ask.id](ConsentDecision decision) { Finish(key, id, decision); });
}

void ConsentBroker::Finish(const Key& key, const std::string& id, ConsentDecision decision) {
  std::vector<std::pair<std::string, Done>> waiters;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = pending_.find(key);
    // Abandoned (every waiter left) or already answered: nothing to do.
    if (it == pending_.end() || it->second.id != id) return;
    waiters = std::move(it->second.waiters);
    pending_.erase(it);
    if (decision == ConsentDecision::kDeny) RememberDenial(key);
  }
  for (auto& [waiter, done] : waiters) done(decision);
}

void ConsentBroker::DropWaiter(const std::string& waiter) {
  std::vector<std::string> abandoned;
  ConsentAgent* agent = nullptr;
  std::vector<Done> dropped;  // destroyed outside the lock
  {
    std::lock_guard<std::mutex> lock(mu_);
    agent = agent_;
    for (auto it = pending_.begin(); it != pending_.end();) {
      auto& waiters = it->second.waiters;
      for (auto w = waiters.begin(); w != waiters.end();) {
        if (w->first == waiter) {
          dropped.push_back(std::move(w->second));
          w = waiters.erase(w);
        } else {
          ++w;
        }
      }
      if (waiters.empty()) {
        abandoned.push_back(it->second.id);
        it = pending_.erase(it);
      } else {
        ++it;
      }
    }
  }
  if (agent != nullptr) {
    for (const auto& id : abandoned) agent->Cancel(id);
  }
}

void ConsentBroker::AbandonAll() {
  std::map<Key, Pending> pending;
  {
    std::lock_guard<std::mutex> lock(mu_);
    pending.swap(pending_);
  }
  for (auto& [key, entry] : pending) {
    for (auto& [waiter, done] : entry.waiters) done(ConsentDecision::kNoAnswer);
  }
}

}  // namespace costore
