#include "daemon/dbus/call_options.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace costore {
namespace {

using ::testing::HasSubstr;

TEST(CallOptionsTest, StoreReadsEveryKey) {
  CallOptions options{{"size", sdbus::Variant(uint64_t{42})},
                      {"name", sdbus::Variant(std::string("model.gguf"))},
                      {"private", sdbus::Variant(true)},
                      {"unknown", sdbus::Variant(int32_t{7})}};
  StoreRequest request;
  ASSERT_TRUE(ParseStoreOptions(options, &request).ok());
  EXPECT_EQ(request.size, std::optional<uint64_t>(42));
  EXPECT_EQ(request.name, "model.gguf");
  EXPECT_TRUE(request.is_private);
}

TEST(CallOptionsTest, AbsentKeysLeaveTheDefaults) {
  StoreRequest request;
  ASSERT_TRUE(ParseStoreOptions({}, &request).ok());
  EXPECT_FALSE(request.size.has_value());
  EXPECT_EQ(request.name, "");
  EXPECT_FALSE(request.is_private);

  CollectOptions collect;
  ASSERT_TRUE(ParseCollectOptions({}, &collect).ok());
  EXPECT_FALSE(collect.target_size.has_value());
  EXPECT_FALSE(collect.unused_for_s.has_value());
  EXPECT_FALSE(collect.dry_run);
}

TEST(CallOptionsTest, ZeroIsAValueNotAbsence) {
  StoreRequest request;
  ASSERT_TRUE(ParseStoreOptions({{"size", sdbus::Variant(uint64_t{0})}}, &request).ok());
  EXPECT_EQ(request.size, std::optional<uint64_t>(0));
}

TEST(CallOptionsTest, AWrongTypeNamesTheKeyAndBothTypes) {
  StoreRequest request;
  Status s = ParseStoreOptions({{"size", sdbus::Variant(int32_t{42})}}, &request);
  ASSERT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("\"size\""));
  EXPECT_THAT(s.message(), HasSubstr("type t, not i"));
  EXPECT_FALSE(request.size.has_value());

  s = ParseStoreOptions({{"name", sdbus::Variant(true)}}, &request);
  EXPECT_THAT(s.message(), HasSubstr("option \"name\" must be of D-Bus type s, not b"));
}

TEST(CallOptionsTest, OpenReadsStream) {
  OpenOptions open;
  ASSERT_TRUE(ParseOpenOptions({{"stream", sdbus::Variant(true)}}, &open).ok());
  EXPECT_TRUE(open.stream);
  Status s = ParseOpenOptions({{"stream", sdbus::Variant(std::string("yes"))}}, &open);
  EXPECT_THAT(s.message(), HasSubstr("option \"stream\" must be of D-Bus type b, not s"));
}

TEST(CallOptionsTest, CollectReadsEveryKey) {
  CollectOptions collect;
  ASSERT_TRUE(ParseCollectOptions({{"target-size", sdbus::Variant(uint64_t{1000})},
                                   {"unused-for", sdbus::Variant(uint64_t{86400})},
                                   {"dry-run", sdbus::Variant(true)}},
                                  &collect)
                  .ok());
  EXPECT_EQ(collect.target_size, std::optional<uint64_t>(1000));
  EXPECT_EQ(collect.unused_for_s, std::optional<uint64_t>(86400));
  EXPECT_TRUE(collect.dry_run);
  Status s = ParseCollectOptions({{"unused-for", sdbus::Variant(uint32_t{5})}}, &collect);
  EXPECT_THAT(s.message(), HasSubstr("option \"unused-for\" must be of D-Bus type t, not u"));
}

TEST(CallOptionsTest, VerifyReadsDigests) {
  std::vector<std::string> digests;
  std::vector<std::string> given = {"sha256:aa", "sha256:bb"};
  ASSERT_TRUE(ParseVerifyOptions({{"digests", sdbus::Variant(given)}}, &digests).ok());
  EXPECT_EQ(digests, given);
  Status s = ParseVerifyOptions({{"digests", sdbus::Variant(std::string("sha256:aa"))}}, &digests);
  EXPECT_THAT(s.message(), HasSubstr("option \"digests\" must be of D-Bus type as, not s"));
}

}  // namespace
}  // namespace costore
