#include "daemon/keyring/secret_service_key_store.h"

#include <libsecret/secret.h>
#include <sodium.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "daemon/keyring/master_key_schema.h"

namespace costore {
namespace {

constexpr char kLabel[] = "costore master key";
constexpr char kHowToStart[] =
    "Private files need a keyring that implements the Secret Service: start one (gnome-keyring-daemon, "
    "KeePassXC with its Secret Service integration enabled, or KWallet) in this session and try again. "
    "Public files are not affected.";
constexpr char kHowToUnlock[] =
    "Unlock it (log in to the desktop session, or unlock it in Passwords and Keys or your keyring app) and "
    "try again. Public files are not affected.";

// --- small owners for GLib objects -----------------------------------------

struct GErrorOwner {
  GError* error = nullptr;
  ~GErrorOwner() { Clear(); }
  void Clear() {
    if (error != nullptr) g_error_free(error);
    error = nullptr;
  }
  std::string message() const { return error != nullptr ? error->message : "unknown error"; }
};

template <typename T>
struct ObjectOwner {
  T* object = nullptr;
  ~ObjectOwner() {
    if (object != nullptr) g_object_unref(object);
  }
};

struct ListOwner {
  GList* list = nullptr;
  ~ListOwner() { g_list_free_full(list, g_object_unref); }
};

struct Attributes {
  GHashTable* table = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  ~Attributes() { g_hash_table_unref(table); }
  void Set(const char* key, const std::string& value) {
    g_hash_table_insert(table, g_strdup(key), g_strdup(value.c_str()));
  }
};

Attributes AttributesFor(const MasterKeyId& id) {
  Attributes attributes;
  attributes.Set("store", id.store_id);
  attributes.Set("version", std::to_string(id.version));
  return attributes;
}

// Runs `call` with a cancellable that is cancelled after `timeout_s`, so
// that an unanswered prompt cannot hold the keyring forever.
template <typename Call>
auto WithTimeout(int timeout_s, Call call) {
  GCancellable* cancellable = g_cancellable_new();
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  std::thread watchdog([&] {
    std::unique_lock<std::mutex> lock(mu);
    if (!cv.wait_for(lock, std::chrono::seconds(timeout_s), [&] { return done; })) {
      g_cancellable_cancel(cancellable);
    }
  });
  auto result = call(cancellable);
  {
    std::lock_guard<std::mutex> lock(mu);
    done = true;
  }
  cv.notify_all();
  watchdog.join();
  g_object_unref(cancellable);
  return result;
}

std::string CollectionName(SecretCollection* collection) {
  gchar* label = secret_collection_get_label(collection);
  std::string name = label != nullptr && *label != '\0' ? label : "(unnamed)";
  g_free(label);
  return "\"" + name + "\"";
}

Status Unavailable(KeyringState* state, KeyringState what, std::string message) {
  *state = what;
  return Status::KeyringUnavailable(std::move(message));
}

// 64 lowercase hex digits -> 32 bytes.
bool ParseHexKey(const char* text, size_t length, SecretKey* key) {
  if (length != 2 * SecretKey::kSize) return false;
  SecretKey out;
  size_t bin_len = 0;
  if (sodium_hex2bin(out.data(), SecretKey::kSize, text, length, nullptr, &bin_len, nullptr) != 0 ||
      bin_len != SecretKey::kSize) {
    return false;
  }
  *key = std::move(out);
  return true;
}

}  // namespace


SecretServiceKeyStore::SecretServiceKeyStore(int prompt_timeout_s) : prompt_timeout_s_(prompt_timeout_s) {}

SecretServiceKeyStore::~SecretServiceKeyStore() { Disconnect(); }

void SecretServiceKeyStore::Disconnect() {
  if (service_ != nullptr) g_object_unref(service_);
  service_ = nullptr;
}

Status SecretServiceKeyStore::Connect(KeyringState* state) {
  if (service_ != nullptr) return Status::OK();
  GErrorOwner error;
  // A service object of our own (not libsecret's process-wide one), with
  // one transfer session kept for its lifetime. No collections are loaded:
  // their cached lock state could be stale.
  service_ = secret_service_open_sync(SECRET_TYPE_SERVICE, nullptr, SECRET_SERVICE_OPEN_SESSION, nullptr,
                                      &error.error);
  if (service_ == nullptr) {
    return Unavailable(state, KeyringState::kNoService,
                       "no Secret Service (org.freedesktop.secrets) answers on the session bus (" +
                           error.message() + "). " + kHowToStart);
  }
  return Status::OK();
}

Status SecretServiceKeyStore::Lookup(const MasterKeyId& id, bool interactive, SecretKey* key, bool* found,
                                     KeyringState* state) {
  std::lock_guard<std::mutex> lock(mu_);
  *found = false;
  *state = KeyringState::kReady;
  bool retry = false;
  Status s = LookupOnce(id, interactive, key, found, state, &retry);
  if (retry) {
    // The keyring may have restarted since the last call: a new connection.
    Disconnect();
    retry = false;
    *state = KeyringState::kReady;
    s = LookupOnce(id, interactive, key, found, state, &retry);
  }
  return s;
}

Status SecretServiceKeyStore::LookupOnce(const MasterKeyId& id, bool interactive, SecretKey* key, bool* found,
                                         KeyringState* state, bool* retry) {
  Status s = Connect(state);
  if (!s.ok()) return s;
  Attributes attributes = AttributesFor(id);
  for (int attempt = 0; attempt < 2; ++attempt) {
    GErrorOwner error;
    ListOwner items;
    // SECRET_SEARCH_ALL: locked items too. (secret_password_lookup would
    // answer "nothing" for a locked item, indistinguishable from "none".)
    items.list = secret_service_search_sync(service_, MasterKeySchema(), attributes.table, SECRET_SEARCH_ALL, nullptr,
                                            &error.error);
    if (error.error != nullptr) {
      *retry = true;
      return Unavailable(state, KeyringState::kError,
                         "searching the keyring for costore's master key failed: " + error.message());
    }
    if (items.list == nullptr) {
      // Some keyrings (KeePassXC) hide the items of a locked database: a
      // locked default collection may hold the key.
      ObjectOwner<SecretCollection> collection;
      collection.object = secret_collection_for_alias_sync(service_, SECRET_COLLECTION_DEFAULT,
                                                           SECRET_COLLECTION_NONE, nullptr, &error.error);
      if (collection.object == nullptr || !secret_collection_get_locked(collection.object)) return Status::OK();
      const std::string name = CollectionName(collection.object);
      if (!interactive) {
        return Unavailable(state, KeyringState::kLocked,
                           "the keyring's default collection " + name + " is locked. " + kHowToUnlock);
      }
      if (attempt == 1) break;
      GList objects{collection.object, nullptr, nullptr};
      ListOwner unlocked;
      GErrorOwner unlock_error;
      gint n = WithTimeout(prompt_timeout_s_, [&](GCancellable* c) {
        return secret_service_unlock_sync(service_, &objects, c, &unlocked.list, &unlock_error.error);
      });
      if (n <= 0) {
        return Unavailable(state, KeyringState::kLocked,
                           "the keyring's default collection " + name +
                               " is locked, and it stayed locked: costore asked the keyring to unlock it, and "
                               "the prompt was dismissed, timed out or could not be shown" +
                               (unlock_error.error != nullptr ? " (" + unlock_error.message() + ")" : "") + ". " +
                               kHowToUnlock);
      }
      continue;  // search again, now that it is unlocked
    }

    SecretItem* item = nullptr;
    ListOwner unlocked;
    for (GList* l = items.list; l != nullptr; l = l->next) {
      if (!secret_item_get_locked(SECRET_ITEM(l->data))) {
        item = SECRET_ITEM(l->data);
        break;
      }
    }
    if (item == nullptr) {
      if (!interactive) {
        return Unavailable(state, KeyringState::kLocked,
                           "the keyring collection that holds costore's master key is locked. " +
                               std::string(kHowToUnlock));
      }
      GErrorOwner unlock_error;
      gint n = WithTimeout(prompt_timeout_s_, [&](GCancellable* c) {
        return secret_service_unlock_sync(service_, items.list, c, &unlocked.list, &unlock_error.error);
      });
      if (n <= 0 || unlocked.list == nullptr) {
        return Unavailable(state, KeyringState::kLocked,
                           "the keyring collection that holds costore's master key is locked, and it stayed "
                           "locked: costore asked the keyring to unlock it, and the prompt was dismissed, timed "
                           "out or could not be shown" +
                               (unlock_error.error != nullptr ? " (" + unlock_error.message() + ")" : "") + ". " +
                               kHowToUnlock);
      }
      item = SECRET_ITEM(unlocked.list->data);
    }

    if (!secret_item_load_secret_sync(item, nullptr, &error.error)) {
      *retry = true;
      return Unavailable(state, KeyringState::kError,
                         "reading costore's master key from the keyring failed: " + error.message());
    }
    SecretValue* value = secret_item_get_secret(item);
    if (value == nullptr) {
      return Unavailable(state, KeyringState::kLocked,
                         "the keyring did not hand out costore's master key (its collection is locked?). " +
                             std::string(kHowToUnlock));
    }
    gsize length = 0;
    const gchar* text = secret_value_get(value, &length);
    const bool parsed = ParseHexKey(text, length, key);
    secret_value_unref(value);
    if (!parsed) {
      return Unavailable(state, KeyringState::kError,
                         "the keyring item \"" + std::string(kLabel) + "\" (store " + id.store_id + ", version " +
                             std::to_string(id.version) +
                             ") does not hold a key of 64 hex digits; was it edited? costore will not replace it");
    }
    *found = true;
    return Status::OK();
  }
  return Status::OK();
}

Status SecretServiceKeyStore::Save(const MasterKeyId& id, const SecretKey& key, KeyringState* state) {
  std::lock_guard<std::mutex> lock(mu_);
  *state = KeyringState::kReady;
  for (int attempt = 0; attempt < 2; ++attempt) {
    Status s = Connect(state);
    if (!s.ok()) return s;
    GErrorOwner error;
    ObjectOwner<SecretCollection> collection;
    collection.object = secret_collection_for_alias_sync(service_, SECRET_COLLECTION_DEFAULT,
                                                         SECRET_COLLECTION_NONE, nullptr, &error.error);
    if (error.error != nullptr && attempt == 0) {
      Disconnect();
      continue;
    }
    error.Clear();
    if (collection.object != nullptr && secret_collection_get_locked(collection.object)) {
      GList objects{collection.object, nullptr, nullptr};
      ListOwner unlocked;
      gint n = WithTimeout(prompt_timeout_s_, [&](GCancellable* c) {
        return secret_service_unlock_sync(service_, &objects, c, &unlocked.list, &error.error);
      });
      if (n <= 0) {
        return Unavailable(state, KeyringState::kLocked,
                           "the keyring's default collection " + CollectionName(collection.object) +
                               " is locked, and it stayed locked: costore asked the keyring to unlock it to keep a "
                               "new master key there, and the prompt was dismissed, timed out or could not be "
                               "shown. " +
                               kHowToUnlock);
      }
      error.Clear();
    }
    // The key as text: 64 hex digits, in guarded memory.
    char* hex = static_cast<char*>(sodium_malloc(2 * SecretKey::kSize + 1));
    if (hex == nullptr) throw std::bad_alloc();
    sodium_bin2hex(hex, 2 * SecretKey::kSize + 1, key.data(), SecretKey::kSize);
    SecretValue* value = secret_value_new(hex, 2 * SecretKey::kSize, "text/plain");
    sodium_free(hex);
    Attributes attributes = AttributesFor(id);
    const std::string label = std::string(kLabel) + " (store " + id.store_id + ", version " +
                              std::to_string(id.version) + ")";
    // With no default collection, gnome-keyring offers to create one (a
    // prompt): that is the desktop's own way, so let it.
    gboolean stored = WithTimeout(prompt_timeout_s_, [&](GCancellable* c) {
      return secret_service_store_sync(service_, MasterKeySchema(), attributes.table, SECRET_COLLECTION_DEFAULT,
                                       label.c_str(), value, c, &error.error);
    });
    secret_value_unref(value);
    if (stored) return Status::OK();
    if (collection.object == nullptr) {
      return Unavailable(state, KeyringState::kNoDefaultCollection,
                         "the keyring has no default collection to keep costore's master key in (creating the item "
                         "failed: " +
                             error.message() +
                             "). Create a keyring and make it the default (in Passwords and Keys, for example), or "
                             "log in to the desktop once so that the login keyring exists, and try again. Public "
                             "files are not affected.");
    }
    if (attempt == 0) {
      Disconnect();
      continue;
    }
    return Unavailable(state, KeyringState::kError,
                       "keeping costore's master key in the keyring's default collection " +
                           CollectionName(collection.object) + " failed: " + error.message());
  }
  return Unavailable(state, KeyringState::kError, "the keyring failed twice in a row");
}

Status SecretServiceKeyStore::Remove(const MasterKeyId& id) {
  std::lock_guard<std::mutex> lock(mu_);
  for (int attempt = 0; attempt < 2; ++attempt) {
    KeyringState state;
    Status s = Connect(&state);
    if (!s.ok()) return s;
    GErrorOwner error;
    Attributes attributes = AttributesFor(id);
    // FALSE with no error: nothing matched.
    secret_service_clear_sync(service_, MasterKeySchema(), attributes.table, nullptr, &error.error);
    if (error.error == nullptr) return Status::OK();
    if (attempt == 1) {
      return Status::KeyringUnavailable("removing master key version " + std::to_string(id.version) +
                                        " from the keyring failed: " + error.message());
    }
    Disconnect();
  }
  return Status::OK();
}

Status SecretServiceKeyStore::ListVersions(const std::string& store_id, std::vector<uint32_t>* versions) {
  std::lock_guard<std::mutex> lock(mu_);
  versions->clear();
  for (int attempt = 0; attempt < 2; ++attempt) {
    KeyringState state;
    Status s = Connect(&state);
    if (!s.ok()) return s;
    GErrorOwner error;
    Attributes attributes;
    attributes.Set("store", store_id);
    ListOwner items;
    items.list = secret_service_search_sync(service_, MasterKeySchema(), attributes.table, SECRET_SEARCH_ALL, nullptr,
                                            &error.error);
    if (error.error != nullptr) {
      if (attempt == 1) {
        return Status::KeyringUnavailable("searching the keyring for costore's master keys failed: " +
                                          error.message());
      }
      Disconnect();
      continue;
    }
    for (GList* l = items.list; l != nullptr; l = l->next) {
      GHashTable* found = secret_item_get_attributes(SECRET_ITEM(l->data));
      const char* version = static_cast<const char*>(g_hash_table_lookup(found, "version"));
      if (version != nullptr) {
        char* end = nullptr;
        unsigned long v = std::strtoul(version, &end, 10);
        if (end != version && *end == '\0' && v > 0 && v <= UINT32_MAX) versions->push_back(static_cast<uint32_t>(v));
      }
      g_hash_table_unref(found);
    }
    std::sort(versions->begin(), versions->end());
    versions->erase(std::unique(versions->begin(), versions->end()), versions->end());
    return Status::OK();
  }
  return Status::OK();
}

KeyringState SecretServiceKeyStore::Probe(std::string* message) {
  std::lock_guard<std::mutex> lock(mu_);
  for (int attempt = 0; attempt < 2; ++attempt) {
    KeyringState state = KeyringState::kReady;
    Status s = Connect(&state);
    if (!s.ok()) {
      *message = s.message();
      return state;
    }
    GErrorOwner error;
    ObjectOwner<SecretCollection> collection;
    collection.object = secret_collection_for_alias_sync(service_, SECRET_COLLECTION_DEFAULT,
                                                         SECRET_COLLECTION_NONE, nullptr, &error.error);
    if (error.error != nullptr) {
      if (attempt == 0) {
        Disconnect();
        continue;
      }
      *message = "the keyring does not answer as a Secret Service should: " + error.message();
      return KeyringState::kError;
    }
    if (collection.object == nullptr) {
      *message =
          "the keyring has no default collection, so there is nowhere to keep a new master key. Create a keyring "
          "and make it the default (in Passwords and Keys, for example), or log in to the desktop once so that the "
          "login keyring exists.";
      return KeyringState::kNoDefaultCollection;
    }
    const std::string name = CollectionName(collection.object);
    if (secret_collection_get_locked(collection.object)) {
      *message = "the keyring's default collection " + name + " is locked. " + kHowToUnlock;
      return KeyringState::kLocked;
    }
    *message = "the keyring is reachable and its default collection " + name + " is unlocked";
    return KeyringState::kReady;
  }
  *message = "the keyring failed twice in a row";
  return KeyringState::kError;
}

}  // namespace costore
