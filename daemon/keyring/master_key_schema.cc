#include "daemon/keyring/master_key_schema.h"

namespace costore {

const SecretSchema* MasterKeySchema() {
  static const SecretSchema schema = [] {
    SecretSchema s{};
    s.name = "io.github.costore.MasterKey";
    s.flags = SECRET_SCHEMA_NONE;
    s.attributes[0].name = "store";
    s.attributes[0].type = SECRET_SCHEMA_ATTRIBUTE_STRING;
    s.attributes[1].name = "version";
    s.attributes[1].type = SECRET_SCHEMA_ATTRIBUTE_STRING;
    return s;
  }();
  return &schema;
}

}  // namespace costore
