// Consent: asking the user whether a principal may read a file that others
// stored. The engine owns the policy (ConsentBroker); a ConsentAgent only
// carries one question to the user and the answer back, so the transport
// (D-Bus, a terminal) stays out of the engine.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "daemon/engine/catalog.h"
#include "daemon/engine/principal.h"

namespace costore {

enum class ConsentDecision {
  kAllowOnce,    // this request only
  kAllowAlways,  // record a grant
  kDeny,         // refuse; remembered until the daemon restarts
  kNoAnswer,     // no agent, a timeout, an error: refuse, remember nothing
};

// "allow-once", "allow-always", "deny"; anything else is kDeny.
ConsentDecision ParseConsentDecision(const std::string& text);

struct ConsentRequest {
  std::string id;
  Principal who;
  std::vector<FileRecord> files;
  std::vector<UsageRecord> attribution;  // who already stored or read them
  // The caller was already answered NotFound (policy "ask-later"): the
  // question is whether to allow it from now on, not this once.
  bool deferred = false;
};

// Manager1 setting "consent-policy".
enum class ConsentPolicy {
  kAsk,       // "ask": the caller waits while the user is asked
  kAskLater,  // "ask-later": the caller is answered at once as a miss, and
              // the user is asked whether to allow it next time
  kDeny,      // "deny": never ask
};

// "ask", "ask-later", "deny".
const char* ConsentPolicyName(ConsentPolicy policy);
// false (and *out untouched) for any other text.
bool ParseConsentPolicy(const std::string& text, ConsentPolicy* out);

// The user's consent settings, kept in the catalog.
struct ConsentSettings {
  ConsentPolicy policy = ConsentPolicy::kAsk;
  uint32_t timeout_s = 60;     // an unanswered prompt is refused after this
  uint32_t prompts_per_hour = 10;  // per principal; past it, refuse unasked
};

class ConsentAgent {
 public:
  virtual ~ConsentAgent() = default;
  // Puts the question to the user. `done` runs exactly once: with the
  // answer, or kNoAnswer on timeout, error or no agent. It may run before
  // Ask returns. Called on the thread that called Engine::OpenFileAsync.
  virtual void Ask(const ConsentRequest& request, uint32_t timeout_s,
                   std::function<void(ConsentDecision)> done) = 0;
  // Whether Ask could reach the user now: an agent is there, or one can
  // be started. When false, Ask would answer kNoAnswer, so the engine
  // refuses at once, without the work of preparing the question (a
  // refusal must cost what a miss costs). Same thread as Ask.
  virtual bool CanAsk() { return true; }
  // The question is moot (every caller waiting for it went away).
  virtual void Cancel(const std::string& request_id) = 0;
};

}  // namespace costore
