// The access rule, in one place: who may open a stored file.
// Kept pure (facts in, decision out) so that it is tested exhaustively and
// grows with consent and private files without touching storage code.
#pragma once

#include "daemon/engine/catalog.h"

namespace costore {

enum class AccessDecision {
  kAllow,
  kNotFound,  // absent, or present but not readable: the caller cannot tell
};

AccessDecision DecideOpen(const AccessFacts& facts);

}  // namespace costore

namespace costore {

// Which entry of a digest an Open gets, public and private entries
// together. In order:
//   1. the public entry, if the principal stored it;
//   2. the principal's own private entry;
//   3. the public entry, if the principal holds a grant (for it or "*");
//   4. a private entry of someone else, only with an explicit grant for
//      this very digest (set in the manager; "*" and consent answers never
//      reach private files);
//   5. the public entry, if the user agrees in a consent dialog;
//   otherwise NotFound, exactly as for a digest nobody stored.
enum class OpenEntry {
  kNotFound,
  kPublic,
  kOwnPrivate,
  kGrantedPrivate,
  kAskConsent,
};

OpenEntry DecideOpenEntry(const AccessFacts& facts);

}  // namespace costore
