#include "daemon/engine/access_policy.h"

namespace costore {

AccessDecision DecideOpen(const AccessFacts& facts) {
  // A grant of "*" holds whether or not the file exists: only a file that
  // exists can be opened.
  if (!facts.file_exists) return AccessDecision::kNotFound;
  // The principal that stored a file may always read it back; anyone else
  // needs a grant. A refusal is reported as a miss.
  if (facts.stored_by_principal || facts.granted) return AccessDecision::kAllow;
  return AccessDecision::kNotFound;
}

}  // namespace costore

namespace costore {

OpenEntry DecideOpenEntry(const AccessFacts& facts) {
  if (facts.file_exists && facts.stored_by_principal) return OpenEntry::kPublic;
  if (facts.owns_private) return OpenEntry::kOwnPrivate;
  if (facts.file_exists && facts.granted) return OpenEntry::kPublic;
  if (facts.private_exists && facts.granted_explicitly) return OpenEntry::kGrantedPrivate;
  if (facts.file_exists) return OpenEntry::kAskConsent;
  return OpenEntry::kNotFound;
}

}  // namespace costore
