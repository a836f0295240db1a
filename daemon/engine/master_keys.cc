#include "daemon/engine/master_keys.h"

#include <sodium.h>

#include <map>

#include "daemon/crypto/key_wrap.h"
#include "daemon/log.h"

namespace costore {
namespace {

Status NoKeyring() {
  return Status::KeyringUnavailable(
      "this costored has no keyring support, so private files cannot be stored or opened; public files are "
      "not affected");
}

uint32_t ParseVersion(const std::string& text) {
  if (text.empty() || text.size() > 9) return 0;
  uint32_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return 0;
    v = v * 10 + static_cast<uint32_t>(c - '0');
  }
  return v;
}

std::string Plural(uint32_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

}  // namespace

Status MasterKeys::StoreId(std::string* id) {
  std::lock_guard<std::mutex> lock(id_mu_);
  if (!store_id_.empty()) {
    *id = store_id_;
    return Status::OK();
  }
  std::string value;
  Status s = catalog_->GetSetting(kStoreIdSetting, &value);
  if (s.code() == Code::kNotFound) {
    EnsureSodium();
    uint8_t bytes[16];
    randombytes_buf(bytes, sizeof bytes);
    char hex[2 * sizeof bytes + 1];
    sodium_bin2hex(hex, sizeof hex, bytes, sizeof bytes);
    value = hex;
    s = catalog_->SetSetting(kStoreIdSetting, value);
  }
  if (!s.ok()) return s;
  store_id_ = value;
  *id = value;
  return Status::OK();
}

Status MasterKeys::Versions(uint32_t* current, uint32_t* target) {
  *current = 0;
  *target = 0;
  std::string text;
  Status s = catalog_->GetSetting(kMasterKeyVersionSetting, &text);
  if (s.ok()) {
    *current = ParseVersion(text);
  } else if (s.code() != Code::kNotFound) {
    return s;
  }
  s = catalog_->GetSetting(kRekeyTargetSetting, &text);
  if (s.ok()) {
    *target = ParseVersion(text);
  } else if (s.code() != Code::kNotFound) {
    return s;
  }
  return Status::OK();
}

Status MasterKeys::Lookup(uint32_t version, bool interactive, SecretKey* key, bool* found, KeyringState* state) {
  std::string id;
  Status s = StoreId(&id);
  if (!s.ok()) return s;
  return store_->Lookup(MasterKeyId{id, version}, interactive, key, found, state);
}

Status MasterKeys::MissingKey(uint32_t version) {
  uint32_t total = 0, other = 0;
  Status s = catalog_->CountPrivateFiles(&total);
  if (s.ok()) s = catalog_->CountPrivateFilesNotAt(version, &other);
  if (!s.ok()) return s;
  std::string id;
  s = StoreId(&id);
  if (!s.ok()) return s;
  const uint32_t need = total - other;
  return Status::KeyringUnavailable(
      "costore's master key (store " + id + ", version " + std::to_string(version) +
      ") is missing from the keyring, and " + Plural(need, "private file is", "private files are") +
      " encrypted under it: they cannot be opened until the key is back. Restore the keyring from a backup, or "
      "unlock the keyring that holds the key. costore will not make a new key, which would orphan them; to give "
      "them up instead, delete them (costore rm), and the next private store makes a new key. Public files are "
      "not affected.");
}

Status MasterKeys::CreateKey(uint32_t version, SecretKey* key) {
  std::string id;
  Status s = StoreId(&id);
  if (!s.ok()) return s;
  SecretKey fresh = SecretKey::Random();
  KeyringState state;
  s = store_->Save(MasterKeyId{id, version}, fresh, &state);
  if (!s.ok()) return s;
  // Read it back: a keyring that did not keep it faithfully would make
  // every file stored now unreadable later.
  SecretKey back;
  bool found = false;
  s = store_->Lookup(MasterKeyId{id, version}, /*interactive=*/true, &back, &found, &state);
  if (!s.ok()) return s;
  if (!found || !back.Equals(fresh)) {
    return Status::KeyringUnavailable(
        "the keyring did not keep costore's new master key faithfully (it reads back " +
        std::string(found ? "different" : "nothing") + "); private files cannot be stored with this keyring");
  }
  LogInfo("made master key version " + std::to_string(version) + " of store " + id + " in the keyring");
  *key = std::move(fresh);
  return Status::OK();
}

Status MasterKeys::ForNewFile(SecretKey* key, uint32_t* version) {
  if (store_ == nullptr) return NoKeyring();
  std::lock_guard<std::mutex> lock(mu_);
  uint32_t current = 0, target = 0;
  Status s = Versions(&current, &target);
  if (!s.ok()) return s;
  const uint32_t use = target != 0 ? target : current;
  uint32_t next = 1;
  if (use != 0) {
    bool found = false;
    KeyringState state;
    s = Lookup(use, /*interactive=*/true, key, &found, &state);
    if (!s.ok()) return s;
    if (found) {
      *version = use;
      return Status::OK();
    }
    uint32_t total = 0;
    s = catalog_->CountPrivateFiles(&total);
    if (!s.ok()) return s;
    if (total > 0) return MissingKey(use);
    // Nothing is encrypted under the lost key: start afresh, under a new
    // version so that a copy of the old one, should it come back, is never
    // confused with the new one.
    LogWarning("master key version " + std::to_string(use) +
               " is missing from the keyring; no private file needs it, so a new key is made");
    next = std::max(current, target) + 1;
  }
  s = CreateKey(next, key);
  if (!s.ok()) return s;
  s = catalog_->SetMasterKeyVersion(next);
  if (!s.ok()) return s;
  *version = next;
  return Status::OK();
}

bool MasterKeys::StillValidForNewFile(uint32_t version) {
  uint32_t current = 0, target = 0;
  if (!Versions(&current, &target).ok()) return false;
  // While a rekey runs, entries under the old key are re-wrapped by its
  // loop, which ends only when none is left.
  return version != 0 && (version == current || version == target);
}

Status MasterKeys::ForVersion(uint32_t version, bool interactive, SecretKey* key) {
  if (store_ == nullptr) return NoKeyring();
  bool found = false;
  KeyringState state;
  Status s = Lookup(version, interactive, key, &found, &state);
  if (!s.ok()) return s;
  if (!found) return MissingKey(version);
  return Status::OK();
}

Status MasterKeys::Rekey(const std::function<bool(uint32_t)>& interrupt, RekeyResult* out) {
  if (store_ == nullptr) return NoKeyring();
  std::unique_lock<std::mutex> rekey_lock(rekey_mu_, std::try_to_lock);
  if (!rekey_lock.owns_lock()) return Status::Busy("a rekey is already running");
  RekeyResult result;
  uint32_t current = 0, target = 0;
  Status s = Versions(&current, &target);
  if (!s.ok()) return s;
  if (current == 0 && target == 0) {
    *out = result;  // no key yet: nothing is wrapped, nothing to do
    return Status::OK();
  }
  std::string id;
  s = StoreId(&id);
  if (!s.ok()) return s;

  SecretKey new_key;
  result.resumed = target != 0;
  if (!result.resumed) {
    // The current key must be at hand: every entry needs it to be re-wrapped.
    uint32_t total = 0;
    s = catalog_->CountPrivateFiles(&total);
    if (!s.ok()) return s;
    if (total > 0) {
      SecretKey old_key;
      s = ForVersion(current, /*interactive=*/true, &old_key);
      if (!s.ok()) return s;
    }
    target = current + 1;
    bool found = false;
    KeyringState state;
    // A key of this version with no record of a rekey is left by a crash
    // before the target was recorded: nothing uses it yet, so it serves.
    s = Lookup(target, /*interactive=*/true, &new_key, &found, &state);
    if (!s.ok()) return s;
    if (!found) {
      s = CreateKey(target, &new_key);
      if (!s.ok()) return s;
    }
    std::unique_lock<std::shared_mutex> versions(versions_mu_);
    std::lock_guard<std::mutex> lock(mu_);
    s = catalog_->BeginRekey(target);
    if (!s.ok()) return s;
    LogInfo("rekey to master key version " + std::to_string(target) + " begun");
  } else {
    bool found = false;
    KeyringState state;
    s = Lookup(target, /*interactive=*/true, &new_key, &found, &state);
    if (!s.ok()) return s;
    if (!found) {
      uint32_t total = 0, other = 0;
      s = catalog_->CountPrivateFiles(&total);
      if (s.ok()) s = catalog_->CountPrivateFilesNotAt(target, &other);
      if (!s.ok()) return s;
      if (total - other > 0) return MissingKey(target);
      s = CreateKey(target, &new_key);  // lost before any entry used it
      if (!s.ok()) return s;
    }
    LogInfo("resuming the rekey to master key version " + std::to_string(target));
  }

  std::map<uint32_t, SecretKey> old_keys;
  for (;;) {
    std::vector<PrivateFileRecord> entries;
    s = catalog_->ListPrivateFiles(std::nullopt, &entries);
    if (!s.ok()) return s;
    bool any = false;
    for (const PrivateFileRecord& entry : entries) {
      if (entry.key_version == target) continue;
      any = true;
      auto it = old_keys.find(entry.key_version);
      if (it == old_keys.end()) {
        SecretKey key;
        s = ForVersion(entry.key_version, /*interactive=*/true, &key);
        if (!s.ok()) return s;
        it = old_keys.emplace(entry.key_version, std::move(key)).first;
      }
      SecretKey data_key;
      s = UnwrapDataKey(it->second, entry.key_version, entry.digest, entry.wrapped_key, &data_key);
      if (!s.ok()) return s;
      const std::string wrapped = WrapDataKey(new_key, target, entry.digest, data_key);
      bool updated = false;
      s = catalog_->RewrapPrivateKey(entry.id, entry.key_version, target, wrapped, &updated);
      if (!s.ok()) return s;
      if (!updated) continue;  // deleted meanwhile
      ++result.rewrapped;
      if (interrupt && interrupt(result.rewrapped)) {
        return Status::Cancelled("the rekey was interrupted after " + std::to_string(result.rewrapped) +
                                 " files (test hook); run it again to finish");
      }
    }
    if (any) continue;  // look again: a store may have recorded one meanwhile
    bool finished = false;
    {
      std::unique_lock<std::shared_mutex> versions(versions_mu_);
      std::lock_guard<std::mutex> lock(mu_);
      s = catalog_->FinishRekey(target, &finished);
    }
    if (!s.ok()) return s;
    if (finished) break;
  }
  LogInfo("rekey to master key version " + std::to_string(target) + " finished: " +
          std::to_string(result.rewrapped) + " data keys re-wrapped");

  // Only now may the old keys go. A failure here leaves them in the
  // keyring, unused; the next rekey removes them.
  std::vector<uint32_t> versions;
  s = store_->ListVersions(id, &versions);
  if (s.ok()) {
    for (uint32_t v : versions) {
      if (v == target) continue;
      Status removed = store_->Remove(MasterKeyId{id, v});
      if (removed.ok()) {
        ++result.old_keys_removed;
      } else {
        LogWarning("could not remove the old master key version " + std::to_string(v) +
                   " from the keyring: " + removed.message());
      }
    }
  } else {
    LogWarning("could not list the old master keys in the keyring: " + s.message());
  }
  result.key_version = target;
  *out = result;
  return Status::OK();
}

KeyringReport MasterKeys::Report() {
  KeyringReport report;
  uint32_t current = 0, target = 0;
  Status s = Versions(&current, &target);
  if (s.ok()) s = catalog_->CountPrivateFiles(&report.private_files);
  if (!s.ok()) {
    report.state = "error";
    report.message = s.message();
    return report;
  }
  report.key_version = current;
  report.rekey_pending = target != 0;
  if (store_ == nullptr) {
    report.state = "no-service";
    report.message = NoKeyring().message();
    return report;
  }
  std::string probe_message;
  KeyringState probe = store_->Probe(&probe_message);
  if (probe == KeyringState::kNoService || probe == KeyringState::kError) {
    report.state = KeyringStateName(probe);
    report.message = probe_message;
    return report;
  }
  const uint32_t use = target != 0 ? target : current;
  if (use == 0) {
    if (probe == KeyringState::kReady) {
      report.state = "no-key";
      report.message =
          "the keyring is ready; costore has made no master key yet: the first private store makes one in the "
          "keyring's default collection";
    } else {
      report.state = KeyringStateName(probe);
      report.message = probe_message;
    }
    return report;
  }
  SecretKey key;
  bool found = false;
  KeyringState state = KeyringState::kReady;
  s = Lookup(use, /*interactive=*/false, &key, &found, &state);
  if (!s.ok()) {
    report.state = KeyringStateName(state);
    report.message = s.message();
    return report;
  }
  if (!found) {
    if (report.private_files > 0) {
      report.state = "key-missing";
      report.message = MissingKey(use).message();
    } else {
      report.state = "no-key";
      report.message =
          "the keyring is ready; its master key is gone, but no private file needs it: the next private store "
          "makes a new one";
    }
    return report;
  }
  report.state = "ready";
  report.message = "the keyring is unlocked and holds costore's master key (version " + std::to_string(use) + "); " +
                   Plural(report.private_files, "private file", "private files") + " in the store" +
                   (report.rekey_pending ? "; a rekey was interrupted: run it again to finish" : "");
  return report;
}

}  // namespace costore
