// MasterKeys: which master key wraps which data key, and keeping the
// master key in the KeyStore (the keyring) only.
//
// The catalog records the current version ("master-key-version"), a rekey
// in progress ("rekey-target") and, per private entry, the version that
// wraps its data key. The keys themselves are fetched from the keyring for
// every operation and never cached or written anywhere: a keyring the
// user locks is locked for costore at once.
//
// First need: the first private store creates version 1 (32 random bytes)
// in the default collection. A key that is missing while private entries
// need it is never replaced (that would orphan them): the error says so.
//
// Rekey (crash-safe): make version N+1 and keep it in the keyring; record
// the target durably; re-wrap every data key still under another version,
// one committed row at a time; then, in one durable transaction that
// checks no row is left behind, make N+1 current. Only after that is the
// old key removed from the keyring. A rerun after a crash anywhere resumes
// from what the catalog says; until it finishes, both keys are kept and
// every entry opens with the key its row names.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <shared_mutex>
#include <string>

#include "daemon/crypto/secret_key.h"
#include "daemon/engine/catalog.h"
#include "daemon/engine/key_store.h"
#include "daemon/engine/status.h"

namespace costore {

struct RekeyResult {
  uint32_t rewrapped = 0;         // data keys re-wrapped by this run
  uint32_t key_version = 0;       // the current master key version afterwards (0: none yet)
  bool resumed = false;           // this run finished one that had been interrupted
  uint32_t old_keys_removed = 0;  // old versions removed from the keyring
};

struct KeyringReport {
  // "ready", "no-key" (none made yet; the first private store makes one),
  // "no-service", "locked", "no-default-collection", "key-missing", "error".
  std::string state;
  std::string message;  // plain words, with what to do
  uint32_t private_files = 0;
  uint32_t key_version = 0;
  bool rekey_pending = false;
};

class MasterKeys {
 public:
  // `store` may be null (no keyring support): every private operation is
  // then KeyringUnavailable.
  MasterKeys(Catalog* catalog, KeyStore* store) : catalog_(catalog), store_(store) {}

  // The key new files are wrapped with, and its version; creates the first
  // one on first need. May prompt to unlock the keyring.
  Status ForNewFile(SecretKey* key, uint32_t* version);
  // The key of `version`. A missing key is KeyringUnavailable saying how
  // many private files need it.
  Status ForVersion(uint32_t version, bool interactive, SecretKey* key);

  // Held (shared) by a store from checking its key version to recording
  // its entry, so that a rekey never finishes between the two.
  std::shared_lock<std::shared_mutex> HoldVersions() { return std::shared_lock<std::shared_mutex>(versions_mu_); }
  // Whether an entry wrapped under `version` may be recorded now (call
  // while holding HoldVersions()).
  bool StillValidForNewFile(uint32_t version);

  // `interrupt`, for tests: called after each committed re-wrap with the
  // count so far; returning true stops the run there, as a crash would.
  Status Rekey(const std::function<bool(uint32_t)>& interrupt, RekeyResult* out);

  // Never prompts.
  KeyringReport Report();

  // The store's id, made on first need.
  Status StoreId(std::string* id);

 private:
  Status Versions(uint32_t* current, uint32_t* target);
  Status Lookup(uint32_t version, bool interactive, SecretKey* key, bool* found, KeyringState* state);
  Status MissingKey(uint32_t version);
  // Makes, saves and verifies a new key of `version`.
  Status CreateKey(uint32_t version, SecretKey* key);

  Catalog* catalog_;
  KeyStore* store_;
  std::mutex mu_;        // key creation; taken after versions_mu_, never before
  std::mutex rekey_mu_;  // one rekey at a time
  std::shared_mutex versions_mu_;
  std::mutex id_mu_;
  std::string store_id_;
};

}  // namespace costore
