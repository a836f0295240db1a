// Every method of Store1 and Manager1 answers hostile non-ASCII arguments:
// long multi-byte strings, digits that are not ASCII, four-byte characters
// placed so that the 80-byte cut of a quoted argument lands on every byte
// of one, control characters between them. Each call must get a reply (an
// error whose message is UTF-8, or a result) within a finite timeout: an
// error message cut inside a character used to make sd-bus send no reply
// at all (issue 11).
//
// Strings that are not UTF-8 cannot be tested here: dbus-daemon refuses
// to route a message holding one (and sd-bus to build it), so they never
// reach costored over the bus; daemon/engine's quote_test covers them.
// The same goes for RegisterConsentAgent and UnregisterConsentAgent, whose
// one argument is an object path (ASCII by the D-Bus grammar), and for
// GetSettings, KeyringStatus and Space, which take no argument.
//
// The calls are made through a raw sdbus-c++ proxy, not libcostore, so
// the test sees what the bus delivers.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <sdbus-c++/sdbus-c++.h>

#include "costore-ipc/names.h"
#include "tests/integration/daemon_harness.h"

namespace costore::test {
namespace {

constexpr char kStore1[] = "io.github.costore.Store1";
constexpr char kManager1[] = "io.github.costore.Manager1";
// Long enough for any refusal, far shorter than ctest's timeout.
constexpr uint64_t kReplyTimeoutUsec = 10'000'000;

// UTF-8 as D-Bus defines it, checked from the bit patterns alone: no
// overlong forms, no surrogates, nothing past U+10FFFF.
bool IsUtf8(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    uint32_t code = n == 1 ? c : c & (0x7f >> n);
    for (size_t k = 1; k < n; ++k) {
      const auto d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xc0) != 0x80) return false;
      code = (code << 6) | (d & 0x3f);
    }
    static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (code < kMin[n] || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) return false;
    i += n;
  }
  return true;
}

std::string Repeat(const std::string& piece, int times) {
  std::string out;
  for (int i = 0; i < times; ++i) out += piece;
  return out;
}

// The hostile strings, each with a label for failure messages.
std::map<std::string, std::string> HostileStrings() {
  std::map<std::string, std::string> strings = {
      {"600 x U+00E9", Repeat("\u00e9", 600)},
      {"a digest of U+0661 digits", "sha256:" + Repeat("\u0661", 64)},
      {"bare U+0661 digits", Repeat("\u0661", 64)},
      {"an origin with a non-ASCII host", "https://" + Repeat("\u00e9", 50) + ".example"},
      {"multibyte and control characters", "\u00e9\n\u65e5\x01\u672c\t\U0001F642\x7f\u00e9" + Repeat("\u0661\r", 40)},
  };
  // A four-byte character straddling byte 80 at each of its offsets (the
  // cut of a quoted argument), with or without a prefix the message adds.
  for (size_t lead = 72; lead <= 80; ++lead) {
    strings["emoji after " + std::to_string(lead) + " bytes"] = std::string(lead, 'a') + Repeat("\U0001F642", 30);
  }
  return strings;
}

struct Reply {
  bool answered = false;  // a reply (a result or an error) arrived in time
  std::string error_name;
  std::string error_message;
};

class Utf8ReplyTest : public ::testing::Test {
 protected:
  Utf8ReplyTest()
      : connection_(sdbus::createSessionBusConnectionWithAddress(harness_.address())),
        proxy_(sdbus::createProxy(*connection_, ipc::kBusName, ipc::kObjectPath)) {}

  // Calls interface.method with the arguments `fill` serializes.
  Reply Call(const char* interface, const char* method, const std::function<void(sdbus::MethodCall&)>& fill) {
    auto call = proxy_->createMethodCall(interface, method);
    fill(call);
    Reply reply;
    try {
      proxy_->callMethod(call, kReplyTimeoutUsec);
      reply.answered = true;
    } catch (const sdbus::Error& error) {
      reply.error_name = error.getName();
      reply.error_message = error.getMessage();
      reply.answered = error.getName() != "org.freedesktop.DBus.Error.NoReply" &&
                       error.getName() != "org.freedesktop.DBus.Error.Timeout";
    }
    return reply;
  }

  // Checks one call: answered, and an error (if any) is the daemon's own
  // with a UTF-8 message (the client would not have been given one that
  // is not, but this says which call it was).
  void Check(const std::string& what, const Reply& reply) {
    ++calls_;
    EXPECT_TRUE(reply.answered) << what << ": no reply (" << reply.error_name << ": " << reply.error_message << ")";
    if (!reply.error_name.empty() && reply.answered) {
      EXPECT_THAT(reply.error_name, ::testing::StartsWith("io.github.costore.Error.")) << what;
      EXPECT_TRUE(IsUtf8(reply.error_message)) << what;
    }
  }

  DaemonHarness harness_;
  std::unique_ptr<sdbus::IConnection> connection_;
  std::unique_ptr<sdbus::IProxy> proxy_;
  int calls_ = 0;
};

using Dict = std::map<std::string, sdbus::Variant>;

TEST_F(Utf8ReplyTest, EveryMethodAnswersHostileStrings) {
  const std::string good_digest = DigestOf("x");
  for (const auto& [label, s] : HostileStrings()) {
    SCOPED_TRACE(label);
    // --- Store1: each string argument, the name option, an unknown option key.
    Check("Store origin", Call(kStore1, "Store", [&](auto& m) {
            m << s << good_digest << sdbus::UnixFd(PipeFrom("x")) << Dict{};
          }));
    Check("Store digest", Call(kStore1, "Store", [&](auto& m) {
            m << std::string() << s << sdbus::UnixFd(PipeFrom("x")) << Dict{};
          }));
    Check("Store name", Call(kStore1, "Store", [&](auto& m) {
            m << std::string() << good_digest << sdbus::UnixFd(PipeFrom("x")) << Dict{{"name", sdbus::Variant(s)}};
          }));
    Check("Store option key", Call(kStore1, "Store", [&](auto& m) {
            m << std::string() << DigestOf("y") << sdbus::UnixFd(PipeFrom("x")) << Dict{{s, sdbus::Variant(s)}};
          }));
    Check("Store size as a string", Call(kStore1, "Store", [&](auto& m) {
            m << std::string() << good_digest << sdbus::UnixFd(PipeFrom("x")) << Dict{{"size", sdbus::Variant(s)}};
          }));
    Check("Open origin", Call(kStore1, "Open", [&](auto& m) { m << s << good_digest << Dict{}; }));
    Check("Open digest", Call(kStore1, "Open", [&](auto& m) { m << std::string() << s << Dict{}; }));
    Check("Open option", Call(kStore1, "Open", [&](auto& m) {
            m << std::string() << s << Dict{{s, sdbus::Variant(s)}, {"stream", sdbus::Variant(s)}};
          }));

    // --- Manager1: every method taking a string or a dictionary.
    Check("List digest", Call(kManager1, "List", [&](auto& m) { m << Dict{{"digest", sdbus::Variant(s)}}; }));
    Check("List option key", Call(kManager1, "List", [&](auto& m) { m << Dict{{s, sdbus::Variant(s)}}; }));
    Check("Stat", Call(kManager1, "Stat", [&](auto& m) { m << s; }));
    Check("Delete", Call(kManager1, "Delete", [&](auto& m) { m << s; }));
    for (const char* method : {"Grant", "Revoke"}) {
      const std::string name = method;
      Check(name + " app", Call(kManager1, method, [&](auto& m) { m << s << std::string() << good_digest; }));
      Check(name + " origin", Call(kManager1, method, [&](auto& m) {
              m << std::string("/usr/bin/x") << s << good_digest;
            }));
      Check(name + " digest", Call(kManager1, method, [&](auto& m) {
              m << std::string("/usr/bin/x") << std::string() << s;
            }));
    }
    Check("ListGrants digest", Call(kManager1, "ListGrants", [&](auto& m) { m << Dict{{"digest", sdbus::Variant(s)}}; }));
    Check("Usage", Call(kManager1, "Usage", [&](auto& m) { m << s; }));
    Check("ForgetOrigin", Call(kManager1, "ForgetOrigin", [&](auto& m) { m << s; }));
    Check("SetSetting key", Call(kManager1, "SetSetting", [&](auto& m) { m << s << sdbus::Variant(uint32_t{1}); }));
    for (const char* key : {"consent-policy", "consent-timeout", "quota"}) {
      Check(std::string("SetSetting ") + key, Call(kManager1, "SetSetting", [&](auto& m) {
              m << std::string(key) << sdbus::Variant(s);
            }));
    }
    Check("Rekey option", Call(kManager1, "Rekey", [&](auto& m) { m << Dict{{s, sdbus::Variant(s)}}; }));
    Check("Verify digests", Call(kManager1, "Verify", [&](auto& m) {
            m << Dict{{"digests", sdbus::Variant(std::vector<std::string>{good_digest, s})}};
          }));
    Check("SetPinned", Call(kManager1, "SetPinned", [&](auto& m) { m << s << true; }));
    Check("Collect option", Call(kManager1, "Collect", [&](auto& m) {
            m << Dict{{s, sdbus::Variant(s)}, {"target-size", sdbus::Variant(s)}};
          }));
  }
  EXPECT_GT(calls_, 300);
  // And the daemon is still itself afterwards.
  auto client = harness_.Connect();
  EXPECT_EQ(client->TryStore("", good_digest, PipeFrom("x"), {}), "");
}

}  // namespace
}  // namespace costore::test
