// FakeKeyStore: the keyring in memory, with its failures on demand (no
// service, locked with or without a successful unlock prompt, no default
// collection, errors), for engine tests. The integration tests use the
// real gnome-keyring instead.
#pragma once

#include <atomic>
#include <map>
#include <mutex>
#include <stdexcept>

#include "daemon/engine/key_store.h"

namespace costore::test {

class FakeKeyStore : public KeyStore {
 public:
  // The state the keyring is in.
  KeyringState state = KeyringState::kReady;
  // When locked: whether the user unlocks it at the prompt.
  bool unlock_succeeds = false;
  bool fail_save = false;
  // Fault injection: Lookup throws, as code below the engine (libsodium
  // wrappers, allocation) can.
  std::atomic<bool> throw_in_lookup{false};

  std::atomic<int> lookups{0}, saves{0}, removes{0}, prompts{0};

  Status Lookup(const MasterKeyId& id, bool interactive, SecretKey* key, bool* found,
                KeyringState* out_state) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++lookups;
    if (throw_in_lookup) throw std::runtime_error("fake: the cipher library threw");
    *found = false;
    Status s = Reach(interactive, out_state);
    if (!s.ok()) return s;
    auto it = items_.find({id.store_id, id.version});
    if (it == items_.end()) return Status::OK();
    *key = SecretKey::FromBytes(it->second);
    *found = true;
    return Status::OK();
  }

  Status Save(const MasterKeyId& id, const SecretKey& key, KeyringState* out_state) override {
    std::lock_guard<std::mutex> lock(mu_);
    Status s = Reach(/*interactive=*/true, out_state);
    if (!s.ok()) return s;
    if (fail_save) {
      *out_state = KeyringState::kNoDefaultCollection;
      return Status::KeyringUnavailable("fake: no default collection");
    }
    ++saves;
    std::array<uint8_t, 32> bytes;
    std::copy(key.data(), key.data() + 32, bytes.begin());
    items_[{id.store_id, id.version}] = bytes;
    return Status::OK();
  }

  Status Remove(const MasterKeyId& id) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++removes;
    items_.erase({id.store_id, id.version});
    return Status::OK();
  }

  Status ListVersions(const std::string& store_id, std::vector<uint32_t>* versions) override {
    std::lock_guard<std::mutex> lock(mu_);
    versions->clear();
    for (const auto& [k, v] : items_) {
      if (k.first == store_id) versions->push_back(k.second);
    }
    return Status::OK();
  }

  KeyringState Probe(std::string* message) override {
    std::lock_guard<std::mutex> lock(mu_);
    *message = "fake keyring: " + std::string(KeyringStateName(state));
    return state;
  }

  // Test access to what the keyring holds.
  std::vector<uint32_t> Versions() {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<uint32_t> out;
    for (const auto& [k, v] : items_) out.push_back(k.second);
    return out;
  }
  std::vector<std::array<uint8_t, 32>> Keys() {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::array<uint8_t, 32>> out;
    for (const auto& [k, v] : items_) out.push_back(v);
    return out;
  }
  void Clear() {
    std::lock_guard<std::mutex> lock(mu_);
    items_.clear();
  }

 private:
  Status Reach(bool interactive, KeyringState* out_state) {
    *out_state = state;
    switch (state) {
      case KeyringState::kReady:
        return Status::OK();
      case KeyringState::kNoService:
        return Status::KeyringUnavailable("fake: no Secret Service on the bus");
      case KeyringState::kLocked:
        if (interactive) {
          ++prompts;
          if (unlock_succeeds) {
            state = KeyringState::kReady;
            *out_state = state;
            return Status::OK();
          }
        }
        return Status::KeyringUnavailable("fake: the keyring is locked");
      case KeyringState::kNoDefaultCollection:
        return Status::OK();  // lookups work; Save fails (fail_save)
      case KeyringState::kError:
        return Status::KeyringUnavailable("fake: the keyring failed");
    }
    return Status::OK();
  }

  std::mutex mu_;
  std::map<std::pair<std::string, uint32_t>, std::array<uint8_t, 32>> items_;
};

}  // namespace costore::test
