// SecretServiceKeyStore: the master key in the user's keyring, through
// libsecret (any Secret Service: gnome-keyring, KeePassXC, KWallet).
//
// Items use the schema "io.github.costore.MasterKey" (master_key_schema.h)
// with the attributes "store" (the store's id) and "version"; the secret is the key as 64
// lowercase hex digits (text, so that every implementation keeps it
// faithfully), labelled "costore master key". New items go to the default
// collection.
//
// One SecretService connection (one session) is kept and rebuilt after any
// error, so a keyring that restarts is found again. Lock states are read
// from objects made afresh for each call, never from a cache. Calls are
// serialised; each may block (see KeyStore), and an unlock prompt is
// abandoned after `prompt_timeout_s`.
#pragma once

#include <memory>
#include <mutex>

#include "daemon/engine/key_store.h"

typedef struct _SecretService SecretService;

namespace costore {

class SecretServiceKeyStore : public KeyStore {
 public:
  explicit SecretServiceKeyStore(int prompt_timeout_s = 120);
  ~SecretServiceKeyStore() override;

  Status Lookup(const MasterKeyId& id, bool interactive, SecretKey* key, bool* found,
                KeyringState* state) override;
  Status Save(const MasterKeyId& id, const SecretKey& key, KeyringState* state) override;
  Status Remove(const MasterKeyId& id) override;
  Status ListVersions(const std::string& store_id, std::vector<uint32_t>* versions) override;
  KeyringState Probe(std::string* message) override;


 private:
  // The connected service, or KeyringUnavailable (kNoService).
  Status Connect(KeyringState* state);
  void Disconnect();

  Status LookupOnce(const MasterKeyId& id, bool interactive, SecretKey* key, bool* found, KeyringState* state,
                    bool* retry);

  const int prompt_timeout_s_;
  std::mutex mu_;
  SecretService* service_ = nullptr;
};

}  // namespace costore
