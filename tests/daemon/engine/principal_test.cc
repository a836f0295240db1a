#include "daemon/engine/principal.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace costore {
namespace {

using ::testing::HasSubstr;

TEST(ValidateOriginTest, AcceptsSerializedOrigins) {
  for (std::string_view origin :
       {"", "https://huggingface.co", "http://127.0.0.1:8001", "http://localhost:8002",
        "http://[::1]:8080", "http://[::1]", "https://a.b-c.example:443", "chrome-extension://abcdef",
        "https://a.com:65535", "https://a.com:1"}) {
    Status s = ValidateOrigin(origin);
    EXPECT_TRUE(s.ok()) << origin << ": " << s.ToString();
  }
}

struct BadOrigin {
  std::string origin;
  std::string why;  // part of the message
};

TEST(ValidateOriginTest, RejectsWhatIsNotAnOrigin) {
  const BadOrigin cases[] = {
      {"null", "opaque"},
      {"https://a.com\n", "control character"},
      {"https://a.com\x7f", "control character"},
      {std::string("https://a.com\0", 14), "control character"},
      {"https://a.com/x", "path"},
      {"https://a.com/", "path"},
      {"https://a.com?q=1", "path"},
      {"https://a.com#frag", "path"},
      {"https://a.com:8080/", "path"},
      {"https://A.com", "lowercase"},
      {"https://huggingFace.co", "lowercase"},
      {"HTTPS://a.com", "scheme"},
      {"https://user@a.com", "user information"},
      {"https://user:pw@a.com", "port"},
      {"https://a.com:0", "out of range"},
      {"https://a.com:65536", "out of range"},
      {"https://a.com:123456", "out of range"},
      {"https://a.com:abc", "not a number"},
      {"https://a.com:", "empty port"},
      {"huggingface.co", "no scheme"},
      {"://a.com", "no scheme"},
      {"../etc", "no scheme"},
      {"/etc/passwd", "no scheme"},
      {"https://", "no host"},
      {"https://:8080", "no host"},
      {"https://a..com", "empty host label"},
      {"https://.a.com", "empty host label"},
      {"https://a.com.", "empty host label"},
      {"https://a com", "not allowed"},
      {"http://[::1", "unterminated"},
      {"http://[::G]", "IPv6"},
      {"http://[::1]x", "path"},
      {"https://" + std::string(250, 'a') + ".com", "longer than 255"},
  };
  for (const BadOrigin& c : cases) {
    Status s = ValidateOrigin(c.origin);
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << c.origin;
    EXPECT_THAT(s.message(), HasSubstr(c.why)) << c.origin;
  }
}

TEST(ValidateOriginTest, AcceptsExactlyTheLongestOrigin) {
  std::string origin = "https://" + std::string(255 - 8 - 4, 'a') + ".com";
  ASSERT_EQ(origin.size(), 255u);
  EXPECT_TRUE(ValidateOrigin(origin).ok());
  EXPECT_FALSE(ValidateOrigin(origin + "m").ok());
}

TEST(ValidateOriginTest, MessageNamesTheOriginSafely) {
  Status s = ValidateOrigin("https://evil.com/\nFAKE LOG LINE");
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("https://evil.com/"));
  EXPECT_EQ(s.message().find('\n'), std::string::npos);
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

TEST(ValidateOriginTest, RejectsMalformedHostsFoundInReview) {
  for (const char* origin : {"http://[]", "http://[1]", "http://[:::]:80", "http://[::G]", "http://[::A]",
                             "https://-a.com", "https://a-.com", "https://a.-b.com"}) {
    Status s = ValidateOrigin(origin);
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << origin;
  }
  EXPECT_TRUE(ValidateOrigin("http://[::1]:8080").ok());
  EXPECT_TRUE(ValidateOrigin("http://[2001:db8::a]").ok());
  EXPECT_TRUE(ValidateOrigin("https://a-b.example").ok());
  Status s = ValidateOrigin("https://user:pw@a.com");
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_NE(s.message().find("user information"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace costore
