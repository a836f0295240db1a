#include "daemon/engine/principal.h"
#include "daemon/engine/origin.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace costore {
namespace {

using ::testing::HasSubstr;

// --- origins: one origin, one spelling ---------------------------------------

struct Spelling {
  std::string given;
  std::string canonical;
};

TEST(CanonicalizeOriginTest, GivesTheFormABrowserSerializes) {
  const Spelling cases[] = {
      {"", ""},
      {"https://huggingface.co", "https://huggingface.co"},
      // Scheme and host in any case, written lowercase.
      {"HTTPS://EXAMPLE.COM", "https://example.com"},
      {"https://Example.COM", "https://example.com"},
      {"hTtPs://huggingFace.co", "https://huggingface.co"},
      // Default ports dropped; ports as numbers.
      {"https://example.com:443", "https://example.com"},
      {"https://example.com:0443", "https://example.com"},
      {"https://example.com:000443", "https://example.com"},
      {"https://example.com:80", "https://example.com:80"},
      {"https://example.com:8443", "https://example.com:8443"},
      {"https://example.com:08443", "https://example.com:8443"},
      {"https://a.com:1", "https://a.com:1"},
      {"https://a.com:65535", "https://a.com:65535"},
      {"http://localhost:80", "http://localhost"},
      {"http://localhost:0080", "http://localhost"},
      {"http://localhost:443", "http://localhost:443"},
      {"https://localhost:443", "https://localhost"},
      // http only for loopback hosts.
      {"http://localhost:8002", "http://localhost:8002"},
      {"http://LOCALHOST", "http://localhost"},
      {"http://app.localhost:3000", "http://app.localhost:3000"},
      {"http://a.b.localhost", "http://a.b.localhost"},
      {"http://127.0.0.1:8001", "http://127.0.0.1:8001"},
      {"http://127.255.255.254", "http://127.255.255.254"},
      {"http://[::1]", "http://[::1]"},
      {"http://[::1]:8080", "http://[::1]:8080"},
      {"http://[0:0:0:0:0:0:0:1]", "http://[::1]"},
      {"http://[0000::0001]:80", "http://[::1]"},
      // Hosts as browsers decode them.
      {"https://ex%61mple.com", "https://example.com"},
      {"https://ex%41mple.com", "https://example.com"},
      {"https://xn--bcher-kva.example", "https://xn--bcher-kva.example"},
      {"https://XN--BCHER-KVA.example", "https://xn--bcher-kva.example"},
      {"https://a-b.example", "https://a-b.example"},
      {"https://a--b.example", "https://a--b.example"},
      {"https://1a.example", "https://1a.example"},
      {"https://example.1a", "https://example.1a"},
      {"https://x", "https://x"},
      // IPv4 in dotted decimal only.
      {"https://192.168.1.1", "https://192.168.1.1"},
      {"https://0.0.0.0:8443", "https://0.0.0.0:8443"},
      {"https://255.255.255.255", "https://255.255.255.255"},
      // IPv6 as WHATWG writes it: lowercase, the first longest zero run
      // compressed, no embedded IPv4.
      {"https://[2001:DB8::A]", "https://[2001:db8::a]"},
      {"https://[2001:0db8:0000:0000:0000:0000:0000:0001]", "https://[2001:db8::1]"},
      {"https://[2001:db8:0:0:1:0:0:1]", "https://[2001:db8::1:0:0:1]"},
      {"https://[2001:db8:0:1:0:0:0:1]", "https://[2001:db8:0:1::1]"},
      {"https://[2001:db8:1:1:1:1:0:1]", "https://[2001:db8:1:1:1:1:0:1]"},
      {"https://[1::]", "https://[1::]"},
      {"https://[::]", "https://[::]"},
      {"https://[::ffff:1.2.3.4]", "https://[::ffff:102:304]"},
      {"https://[::1.2.3.4]:8443", "https://[::102:304]:8443"},
      {"https://[fe80::1]:443", "https://[fe80::1]"},
  };
  for (const Spelling& c : cases) {
    std::string out = "untouched";
    Status s = CanonicalizeOrigin(c.given, &out);
    EXPECT_TRUE(s.ok()) << c.given << ": " << s.ToString();
    EXPECT_EQ(out, c.canonical) << c.given;
    // The canonical form is its own canonical form.
    std::string again;
    EXPECT_TRUE(CanonicalizeOrigin(out, &again).ok()) << out;
    EXPECT_EQ(again, out);
  }
}

struct BadOrigin {
  std::string origin;
  std::string why;  // part of the message
};

TEST(CanonicalizeOriginTest, RefusesWhatIsNotASecureOrigin) {
  const BadOrigin cases[] = {
      {"null", "opaque"},
      {"https://a.com\n", "control character"},
      {"https://a.com\x7f", "control character"},
      {std::string("https://a.com\0", 14), "control character"},
      // Only https, and http for loopback, give a secure context.
      {"ws://x", "scheme \"ws\""},
      {"wss://example.com", "scheme \"wss\""},
      {"moz-extension://x", "scheme \"moz-extension\""},
      {"chrome-extension://abcdef", "scheme \"chrome-extension\""},
      {"ftp://example.com", "scheme \"ftp\""},
      {"file:///etc/passwd", "scheme \"file\""},
      {"http://example.com", "not loopback"},
      {"http://example.com:80", "not loopback"},
      {"http://192.168.1.1", "not loopback"},
      {"http://128.0.0.1", "not loopback"},
      {"http://[::2]", "not loopback"},
      {"http://[::ffff:127.0.0.1]", "not loopback"},
      {"http://localhost.example.com", "not loopback"},
      {"http://xlocalhost", "not loopback"},
      {"http://127.0.0.1.example", "not loopback"},
      {"1http://a.com", "scheme that is not"},
      {"ht_tp://a.com", "scheme that is not"},
      {"huggingface.co", "no scheme"},
      {"https:example.com", "no scheme"},
      {"https:/example.com", "no scheme"},
      {"://a.com", "no scheme"},
      {"../etc", "no scheme"},
      {"/etc/passwd", "no scheme"},
      {"javascript:alert(1)", "no scheme"},
      // No userinfo, path, query or fragment.
      {"https://a.com/x", "path"},
      {"https://a.com/", "path"},
      {"https://a.com?q=1", "path"},
      {"https://a.com#frag", "path"},
      {"https://a.com:8080/", "path"},
      {"https://a.com\\x", "path"},
      {"https://user@a.com", "user information"},
      {"https://user:pw@a.com", "user information"},
      // Ports.
      {"https://a.com:0", "out of range"},
      {"https://a.com:00000", "out of range"},
      {"https://a.com:65536", "out of range"},
      {"https://a.com:123456", "out of range"},
      {"https://a.com:99999999999999999999", "out of range"},
      {"https://a.com:abc", "not a number"},
      {"https://a.com:+443", "not a number"},
      {"https://a.com:-1", "not a number"},
      {"https://a.com:443:443", "not a number"},
      {"https://a.com:", "empty port"},
      {"http://[::1]:", "empty port"},
      // Host names: LDH labels.
      {"https://", "no host"},
      {"https://:8080", "no host"},
      {"https://a_b.c", "\"_\" in its host"},
      {"https://a com", "\" \" in its host"},
      {"https://a*b.com", "\"*\" in its host"},
      {"https://a%2fb.com", "\"/\" in its host"},
      {"https://a%zz.com", "not a %XX escape"},
      {"https://a%2.com", "not a %XX escape"},
      {"https://a.com%", "not a %XX escape"},
      {"https://a..com", "empty host label"},
      {"https://.a.com", "empty host label"},
      {"https://a.com.", "trailing dot"},
      {"https://-a.com", "starts or ends with '-'"},
      {"https://a-.com", "starts or ends with '-'"},
      {"https://a.-b.com", "starts or ends with '-'"},
      {"https://" + std::string(64, 'a') + ".com", "longer than 63"},
      {"https://b\xC3\xBC" "cher.example", "xn--"},
      {"https://b%C3%BCcher.example", "xn--"},
      {"https://\xEF\xBC\xA1.com", "xn--"},  // a fullwidth 'A'
      {"https://a\xFF.com", "xn--"},          // not even UTF-8
      // A host that ends in a number is an IPv4 address, in dotted decimal.
      {"https://0x7f.1", "dotted decimal"},
      {"https://0x7f000001", "dotted decimal"},
      {"https://2130706433", "dotted decimal"},
      {"http://127.1", "dotted decimal"},
      {"https://127.0.0.01", "dotted decimal"},
      {"https://010.0.0.1", "dotted decimal"},
      {"https://1.2.3.256", "dotted decimal"},
      {"https://1.2.3.4.5", "dotted decimal"},
      {"https://a.1", "dotted decimal"},
      {"https://example.0x", "dotted decimal"},
      {"https://example.0xff", "dotted decimal"},
      {"https://1.2.3.4.", "trailing dot"},
      // IPv6.
      {"http://[::1", "unterminated"},
      {"http://[::G]", "invalid IPv6"},
      {"http://[]", "invalid IPv6"},
      {"http://[1]", "invalid IPv6"},
      {"http://[:::]:80", "invalid IPv6"},
      {"http://[::1%25eth0]", "invalid IPv6"},
      {"http://[fe80::1%eth0]", "invalid IPv6"},
      {"http://[::1]x", "not a port"},
      {"http://[::1]]", "not a port"},
      // Length: 1024 bytes as given, 255 once canonical.
      {"https://" + std::string(60, 'a') + "." + std::string(60, 'b') + "." + std::string(60, 'c') + "." +
           std::string(60, 'd') + ".example",
       "longer than 255"},
      {"https://a.com:" + std::string(1020, '0') + "1", "longer than 1024"},
  };
  for (const BadOrigin& c : cases) {
    std::string out = "untouched";
    Status s = CanonicalizeOrigin(c.origin, &out);
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << c.origin;
    EXPECT_THAT(s.message(), HasSubstr(c.why)) << c.origin;
    EXPECT_EQ(out, "untouched") << c.origin;
  }
}

TEST(CanonicalizeOriginTest, MessageNamesTheOriginAndWhatIsWrong) {
  for (const char* origin : {"https://0x7f.1", "https://a_b.c", "ws://x", "moz-extension://x"}) {
    std::string out;
    Status s = CanonicalizeOrigin(origin, &out);
    ASSERT_EQ(s.code(), Code::kInvalidArgument) << origin;
    EXPECT_THAT(s.message(), HasSubstr(std::string("origin \"") + origin + "\""));
  }
  std::string out;
  Status s = CanonicalizeOrigin("https://evil.com/\nFAKE LOG LINE", &out);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("https://evil.com/"));
  EXPECT_EQ(s.message().find('\n'), std::string::npos);
}

TEST(CanonicalizeOriginTest, TheLimitIsOnTheCanonicalForm) {
  std::string origin = "https://" + std::string(63, 'a') + "." + std::string(63, 'b') + "." +
                       std::string(63, 'c') + "." + std::string(255 - 8 - 3 * 64, 'd');
  ASSERT_EQ(origin.size(), 255u);
  std::string out;
  EXPECT_TRUE(CanonicalizeOrigin(origin, &out).ok());
  EXPECT_EQ(out, origin);
  EXPECT_FALSE(CanonicalizeOrigin(origin + "d", &out).ok());
  // A default port beyond the limit is dropped, so the origin fits.
  EXPECT_TRUE(CanonicalizeOrigin(origin + ":443", &out).ok());
  EXPECT_EQ(out, origin);
}

TEST(ValidateAppTest, AcceptsThePrincipalForms) {
  for (std::string_view app :
       {"/usr/bin/foo", "/", "flatpak:org.example.App", "snap:foo", "/opt/My App/bin/x"}) {
    Status s = ValidateApp(app);
    EXPECT_TRUE(s.ok()) << app << ": " << s.ToString();
  }
  EXPECT_TRUE(ValidateApp("/" + std::string(4095, 'a')).ok());
}

TEST(ValidateAppTest, RejectsEverythingElse) {
  const BadOrigin cases[] = {
      {"", "empty"},
      {"foo", "not recognised"},
      {"usr/bin/foo", "not recognised"},
      {"docker:foo", "not recognised"},
      {"flatpak:", "empty id"},
      {"snap:", "empty id"},
      {"flatpak:org/example", "'/'"},
      {"snap:../../etc", "'/'"},
      {"/usr/bin/foo\n", "control character"},
      {"/usr/bin/\tfoo", "control character"},
      {"/" + std::string(4096, 'a'), "longer than 4096"},
  };
  for (const BadOrigin& c : cases) {
    Status s = ValidateApp(c.origin);
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << c.origin;
    EXPECT_THAT(s.message(), HasSubstr(c.why)) << c.origin;
  }
}

TEST(ValidateNameTest, AcceptsPlainNames) {
  for (std::string_view name : {"", "silero_vad.onnx", "Llama 3 8B (Q4_K_M).gguf", "模型.bin"}) {
    EXPECT_TRUE(ValidateName(name).ok()) << name;
  }
  EXPECT_TRUE(ValidateName(std::string(1024, 'n')).ok());
}

TEST(ValidateNameTest, RejectsLongOrControlCharacters) {
  Status s = ValidateName(std::string(1025, 'n'));
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("longer than 1024"));
  for (std::string_view name : {"a\nb", "a\tb", "\x1b[31mred", "del\x7f"}) {
    s = ValidateName(name);
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << name;
    EXPECT_THAT(s.message(), HasSubstr("control character"));
  }
}

}  // namespace
}  // namespace costore
