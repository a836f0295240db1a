// costore-test-keyring: what the integration tests do to the real keyring,
// through libsecret, each call in a fresh process (so that libsecret's
// process-wide state never outlives one test's private bus).
//
//   costore-test-keyring lock      lock the default collection (Secret Service Lock)
//   costore-test-keyring keys      print "<version> <64 hex>" per costore master key
//                                  (locked items print "<version> locked")
//   costore-test-keyring clear     delete every costore master key
//
// The bus is $DBUS_SESSION_BUS_ADDRESS. Exit status 0 on success.
#include <libsecret/secret.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "daemon/keyring/master_key_schema.h"

namespace {

int Fail(const char* what, GError* error) {
  std::fprintf(stderr, "costore-test-keyring: %s: %s\n", what, error != nullptr ? error->message : "failed");
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: costore-test-keyring lock|keys|clear\n");
    return 2;
  }
  const std::string command = argv[1];
  GError* error = nullptr;
  SecretService* service = secret_service_get_sync(SECRET_SERVICE_OPEN_SESSION, nullptr, &error);
  if (service == nullptr) return Fail("connect", error);

  if (command == "lock") {
    SecretCollection* collection =
        secret_collection_for_alias_sync(service, SECRET_COLLECTION_DEFAULT, SECRET_COLLECTION_NONE, nullptr, &error);
    if (collection == nullptr) return Fail("default collection", error);
    GList objects{collection, nullptr, nullptr};
    GList* locked = nullptr;
    int n = secret_service_lock_sync(service, &objects, nullptr, &locked, &error);
    if (n <= 0) return Fail("lock", error);
    g_list_free_full(locked, g_object_unref);
    return 0;
  }

  GHashTable* attributes = g_hash_table_new(g_str_hash, g_str_equal);
  if (command == "keys") {
    GList* items = secret_service_search_sync(service, costore::MasterKeySchema(), attributes,
                                              static_cast<SecretSearchFlags>(SECRET_SEARCH_ALL | SECRET_SEARCH_LOAD_SECRETS),
                                              nullptr, &error);
    if (error != nullptr) return Fail("search", error);
    for (GList* l = items; l != nullptr; l = l->next) {
      SecretItem* item = SECRET_ITEM(l->data);
      GHashTable* found = secret_item_get_attributes(item);
      const char* version = static_cast<const char*>(g_hash_table_lookup(found, "version"));
      SecretValue* value = secret_item_get_secret(item);
      if (value == nullptr) {
        std::printf("%s locked\n", version ? version : "?");
      } else {
        gsize length = 0;
        const gchar* text = secret_value_get(value, &length);
        std::printf("%s %.*s\n", version ? version : "?", static_cast<int>(length), text);
        secret_value_unref(value);
      }
      g_hash_table_unref(found);
    }
    g_list_free_full(items, g_object_unref);
    return 0;
  }
  if (command == "clear") {
    secret_password_clearv_sync(costore::MasterKeySchema(), attributes, nullptr, &error);
    if (error != nullptr) return Fail("clear", error);
    return 0;
  }
  std::fprintf(stderr, "costore-test-keyring: unknown command %s\n", command.c_str());
  return 2;
}
