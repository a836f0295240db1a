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
