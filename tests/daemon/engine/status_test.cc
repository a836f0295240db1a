#include "daemon/engine/status.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>

namespace costore {
namespace {

using ::testing::HasSubstr;

TEST(StatusTest, DefaultIsOk) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.code(), Code::kOk);
  EXPECT_EQ(s.message(), "");
  EXPECT_EQ(s.ToString(), "OK");
  EXPECT_TRUE(Status::OK().ok());
}

TEST(StatusTest, FactoriesSetCodeAndMessage) {
  struct Case {
    Status status;
    Code code;
    std::string_view name;
  };
  const Case cases[] = {
      {Status::NotFound("m"), Code::kNotFound, "NotFound"},
      {Status::PermissionDenied("m"), Code::kPermissionDenied, "PermissionDenied"},
      {Status::DigestMismatch("m"), Code::kDigestMismatch, "DigestMismatch"},
      {Status::InvalidArgument("m"), Code::kInvalidArgument, "InvalidArgument"},
      {Status::KeyringUnavailable("m"), Code::kKeyringUnavailable, "KeyringUnavailable"},
      {Status::NoSpace("m"), Code::kNoSpace, "NoSpace"},
      {Status::QuotaExceeded("m"), Code::kQuotaExceeded, "QuotaExceeded"},
      {Status::Cancelled("m"), Code::kCancelled, "Cancelled"},
      {Status::Busy("m"), Code::kBusy, "Busy"},
      {Status::IOError("m"), Code::kIOError, "IOError"},
  };
  for (const Case& c : cases) {
    EXPECT_FALSE(c.status.ok()) << c.name;
    EXPECT_EQ(c.status.code(), c.code) << c.name;
    EXPECT_EQ(c.status.message(), "m") << c.name;
    EXPECT_EQ(CodeName(c.code), c.name);
    EXPECT_EQ(c.status.ToString(), std::string(c.name) + ": m");
  }
  EXPECT_EQ(CodeName(Code::kOk), "OK");
}

TEST(StatusTest, FromErrnoNamesContextAndError) {
  Status s = Status::FromErrno("open /some/path", EIO);
  EXPECT_EQ(s.code(), Code::kIOError);
  EXPECT_THAT(s.message(), HasSubstr("open /some/path"));
  EXPECT_THAT(s.message(), HasSubstr(std::strerror(EIO)));
}

TEST(StatusTest, FromErrnoMapsFullDiskToNoSpace) {
  EXPECT_EQ(Status::FromErrno("write x", ENOSPC).code(), Code::kNoSpace);
  EXPECT_EQ(Status::FromErrno("write x", EDQUOT).code(), Code::kNoSpace);
  EXPECT_EQ(Status::FromErrno("write x", EACCES).code(), Code::kIOError);
}

TEST(StatusTest, CopiesAndMovesKeepCodeAndMessage) {
  Status original = Status::Busy("try later");
  Status copy = original;
  EXPECT_EQ(copy.code(), Code::kBusy);
  EXPECT_EQ(copy.message(), "try later");
  Status moved = std::move(copy);
  EXPECT_EQ(moved.code(), Code::kBusy);
  EXPECT_EQ(moved.message(), "try later");
}

}  // namespace
}  // namespace costore
