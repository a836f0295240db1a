#include "daemon/engine/access_policy.h"

#include <gtest/gtest.h>

#include <string>

namespace costore {
namespace {

std::string Describe(const AccessFacts& facts) {
  return std::string("{file_exists ") + (facts.file_exists ? "1" : "0") + ", stored_by_principal " +
         (facts.stored_by_principal ? "1" : "0") + ", granted " + (facts.granted ? "1" : "0") + "}";
}

// Every combination of the three facts, with the decision written out by
// hand rather than computed, so that the table is the specification.
TEST(AccessPolicyTest, AllCombinations) {
  struct Case {
    bool file_exists;
    bool stored_by_principal;
    bool granted;
    AccessDecision expected;
  };
  const Case kCases[] = {
      // Absent: nothing opens it, not even a "*" grant or a stale owner fact.
      {false, false, false, AccessDecision::kNotFound},
      {false, false, true, AccessDecision::kNotFound},
      {false, true, false, AccessDecision::kNotFound},
      {false, true, true, AccessDecision::kNotFound},
      // Present: someone else's file without a grant looks absent.
      {true, false, false, AccessDecision::kNotFound},
      // Granted to this principal (for this file or "*").
      {true, false, true, AccessDecision::kAllow},
      // The principal that stored it reads it back.
      {true, true, false, AccessDecision::kAllow},
      {true, true, true, AccessDecision::kAllow},
  };
  int seen = 0;
  for (const Case& c : kCases) {
    AccessFacts facts;
    facts.file_exists = c.file_exists;
    facts.stored_by_principal = c.stored_by_principal;
    facts.granted = c.granted;
    EXPECT_EQ(DecideOpen(facts), c.expected) << Describe(facts);
    seen |= 1 << ((c.file_exists ? 4 : 0) | (c.stored_by_principal ? 2 : 0) | (c.granted ? 1 : 0));
  }
  EXPECT_EQ(seen, 0xff) << "the table must hold each of the 8 combinations once";
}

TEST(AccessPolicyTest, DefaultFactsAreRefused) {
  EXPECT_EQ(DecideOpen(AccessFacts{}), AccessDecision::kNotFound);
}

TEST(AccessPolicyTest, StarGrantDoesNotOpenAnAbsentFile) {
  AccessFacts facts;
  facts.granted = true;
  EXPECT_EQ(DecideOpen(facts), AccessDecision::kNotFound);
  facts.file_exists = true;
  EXPECT_EQ(DecideOpen(facts), AccessDecision::kAllow);
}

}  // namespace
}  // namespace costore

namespace costore {
namespace {

// Which entry an Open gets once private entries exist, written out by hand
// for every combination of the six facts.
TEST(AccessPolicyTest, OpenEntryForEveryCombination) {
  for (int bits = 0; bits < 64; ++bits) {
    AccessFacts f;
    f.file_exists = bits & 1;
    f.stored_by_principal = bits & 2;
    f.granted = bits & 4;
    f.owns_private = bits & 8;
    f.private_exists = (bits & 16) || f.owns_private;
    f.granted_explicitly = bits & 32;
    OpenEntry expected;
    if (f.file_exists && f.stored_by_principal) {
      expected = OpenEntry::kPublic;
    } else if (f.owns_private) {
      expected = OpenEntry::kOwnPrivate;
    } else if (f.file_exists && f.granted) {
      expected = OpenEntry::kPublic;
    } else if (f.private_exists && f.granted_explicitly) {
      expected = OpenEntry::kGrantedPrivate;
    } else if (f.file_exists) {
      expected = OpenEntry::kAskConsent;
    } else {
      expected = OpenEntry::kNotFound;
    }
    EXPECT_EQ(DecideOpenEntry(f), expected) << "bits " << bits;
  }
}

TEST(AccessPolicyTest, PrivateEntriesAreNeverAskedForNorOpenedByStarGrants) {
  AccessFacts f;
  f.private_exists = true;
  EXPECT_EQ(DecideOpenEntry(f), OpenEntry::kNotFound);  // no consent dialog
  f.granted = true;                                      // "*" (or a consent answer)
  EXPECT_EQ(DecideOpenEntry(f), OpenEntry::kNotFound);
  f.granted_explicitly = true;  // Manager1.Grant of this digest
  EXPECT_EQ(DecideOpenEntry(f), OpenEntry::kGrantedPrivate);
}

TEST(AccessPolicyTest, DefaultFactsOpenNothing) { EXPECT_EQ(DecideOpenEntry(AccessFacts{}), OpenEntry::kNotFound); }

}  // namespace
}  // namespace costore
