// KeyringHarness: a real gnome-keyring-daemon (Secret Service only) on a
// DaemonHarness's private bus, with its files in a temporary HOME, so that
// the user's own keyring is never touched.
//
// What gnome-keyring 42 needs, found by trying it:
//   - `gnome-keyring-daemon --foreground --unlock --components=secrets`
//     reads the login password from stdin up to end of file (so stdin must
//     be closed after it), creates $XDG_DATA_HOME/keyrings/login.keyring
//     with that password when there is none, unlocks it, and points the
//     "default" alias at it. Without --unlock there is no collection at
//     all: the default alias is "/", and creating an item asks
//     org.gnome.keyring.SystemPrompter to prompt for a new keyring's
//     password, which fails without a desktop (no such service on a
//     private bus).
//   - It owns org.freedesktop.secrets shortly after it starts: wait for
//     that, and for the default alias, before the first call.
//   - Its control socket goes to $XDG_RUNTIME_DIR/keyring, so
//     XDG_RUNTIME_DIR is a temporary directory too (0700).
//   - Unlocking again over the Secret Service (after Lock) needs a prompt,
//     which fails at once without a desktop: the daemon's unlock request
//     is refused, which is how a user dismissing the prompt looks. A test
//     that needs it unlocked again restarts the keyring (--unlock again).
#pragma once

#include <sys/types.h>

#include <string>
#include <utility>
#include <vector>

namespace costore::test {

class KeyringHarness {
 public:
  // `dir`: a directory of the test's own (HOME, XDG dirs go below it).
  KeyringHarness(std::string bus_address, std::string dir, std::string password = "costore test password");
  ~KeyringHarness();
  KeyringHarness(const KeyringHarness&) = delete;
  KeyringHarness& operator=(const KeyringHarness&) = delete;

  // Starts gnome-keyring-daemon and waits until it serves a default
  // collection; throws if it does not within 20 seconds.
  void Start();
  void Stop();

  // Through libsecret (costore-test-keyring), on the private bus:
  void LockDefaultCollection();
  // (version, 64 hex digits or "locked") of every costore master key.
  std::vector<std::pair<std::string, std::string>> MasterKeys();
  void ClearMasterKeys();
  // `secret-tool search --all xdg:schema io.github.costore.MasterKey`:
  // its standard output and error.
  std::string SecretToolSearch();

 private:
  std::string Run(const std::vector<std::string>& argv, int* status);

  std::string address_;
  std::string dir_;
  std::string password_;
  pid_t pid_ = -1;
};

// 64 hex digits -> 32 bytes.
std::string HexToBytes(const std::string& hex);

}  // namespace costore::test
