// The libsecret schema of costore's master keys, "io.github.costore.MasterKey",
// with the attributes "store" (the store's id) and "version". One definition
// for the daemon and for the test tool that inspects the keyring.
#pragma once

#include <libsecret/secret.h>

namespace costore {

const SecretSchema* MasterKeySchema();

}  // namespace costore
