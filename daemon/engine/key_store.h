// KeyStore: where the master key lives. Production uses the Secret Service
// through libsecret (daemon/keyring/); engine tests use an in-memory fake
// that injects the keyring's failures. The engine never writes a master
// key anywhere else.
//
// A master key is named by the store's id (a random id kept in the
// catalog, so that two stores of one user never share or clobber a key)
// and a version (1, 2, ...; a rekey makes the next one).
//
// Every method may block (a D-Bus round trip, or a prompt the user
// answers): call them on a worker thread, never on the bus's loop thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/crypto/secret_key.h"
#include "daemon/engine/status.h"

namespace costore {

// The keyring's state, as KeyringStatus reports it.
enum class KeyringState {
  kReady,                // reachable and unlocked
  kNoService,            // no Secret Service on the session bus
  kLocked,               // the collection (or item) is locked, and stayed locked
  kNoDefaultCollection,  // nowhere to create an item
  kError,                // anything else; the message says what
};

// "ready", "no-service", "locked", "no-default-collection", "error".
inline std::string_view KeyringStateName(KeyringState state) {
  switch (state) {
    case KeyringState::kReady: return "ready";
    case KeyringState::kNoService: return "no-service";
    case KeyringState::kLocked: return "locked";
    case KeyringState::kNoDefaultCollection: return "no-default-collection";
    case KeyringState::kError: return "error";
  }
  return "error";
}

struct MasterKeyId {
  std::string store_id;
  uint32_t version = 0;
};

class KeyStore {
 public:
  virtual ~KeyStore() = default;

  // Finds the master key. OK with *found = false when the keyring is
  // usable and holds no such key. When the key (or the default collection)
  // is locked and `interactive`, asks the service to unlock it, which may
  // show the desktop's own prompt; otherwise, or if it stays locked, the
  // result is KeyringUnavailable with *state = kLocked. Every failure is
  // KeyringUnavailable whose message says what to do, with *state telling
  // which.
  virtual Status Lookup(const MasterKeyId& id, bool interactive, SecretKey* key, bool* found,
                        KeyringState* state) = 0;
  // Stores the key in the default collection, replacing an item with the
  // same id. KeyringUnavailable (with *state) on failure.
  virtual Status Save(const MasterKeyId& id, const SecretKey& key, KeyringState* state) = 0;
  // Removes the key; OK if there is none.
  virtual Status Remove(const MasterKeyId& id) = 0;
  // The versions held for `store_id` (unlocked or not), ascending.
  virtual Status ListVersions(const std::string& store_id, std::vector<uint32_t>* versions) = 0;
  // The keyring's state, never prompting. *message says it in plain words.
  virtual KeyringState Probe(std::string* message) = 0;
};

}  // namespace costore
