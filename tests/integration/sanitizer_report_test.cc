// The harness fails a test when a daemon's log holds a sanitizer report
// (scripts/test-sanitizers): these are the reports it must recognise, as
// the sanitizers of gcc 12 and clang 14 write them, and logs it must not
// mistake for one.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/integration/daemon_harness.h"

namespace costore::test {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

TEST(SanitizerReportTest, FindsEachSanitizersReport) {
  const std::string costored_lines = "costored: listening on io.github.costore\ncostored: stored sha256:00\n";
  for (const std::string report : {
           "=================================================================\n"
           "==4242==ERROR: AddressSanitizer: heap-buffer-overflow on address 0x602000000011\n"
           "READ of size 1 at 0x602000000011 thread T0\n",
           "==4242==ERROR: LeakSanitizer: detected memory leaks\n\nDirect leak of 24 byte(s)\n",
           "../daemon/engine/catalog.cc:120:7: runtime error: signed integer overflow: 2147483647 + 1\n",
           "==================\nWARNING: ThreadSanitizer: data race (pid=4242)\n  Write of size 8\n",
       }) {
    const std::string found = SanitizerReport(costored_lines + report + "costored: exiting\n");
    EXPECT_THAT(found, Not(HasSubstr("listening"))) << report;
    EXPECT_FALSE(found.empty()) << report;
    EXPECT_THAT(report, HasSubstr(found.substr(0, found.find('\n')))) << report;
  }
}

TEST(SanitizerReportTest, QuotesTheReportFromItsFirstLine) {
  const std::string found =
      SanitizerReport("costored: started\n==1==ERROR: AddressSanitizer: SEGV on unknown address\n    #0 0x1 in f\n");
  EXPECT_THAT(found, StartsWith("==1==ERROR: AddressSanitizer: SEGV"));
  EXPECT_THAT(found, HasSubstr("#0 0x1 in f"));
}

TEST(SanitizerReportTest, IgnoresOrdinaryLogs) {
  EXPECT_EQ(SanitizerReport(""), "");
  EXPECT_EQ(SanitizerReport("costored: listening\ncostored: refused \"x\": an error\nAddressSanitizer mentioned\n"),
            "");
}

}  // namespace
}  // namespace costore::test
