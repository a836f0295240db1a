// The store on a full disk, for real: a small tmpfs mounted over the
// store directory (mounting needs root; CI runs as root). Reads, deletes,
// grants, revokes and settings keep working when not one byte is free; a
// store stops at the free-space floor with NoSpace, and at the quota with
// QuotaExceeded, before it fills the disk.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "tests/integration/daemon_harness.h"

namespace costore::test {
namespace {

using ::testing::HasSubstr;

constexpr char kNoSpace[] = "io.github.costore.Error.NoSpace";
constexpr char kQuota[] = "io.github.costore.Error.QuotaExceeded";
constexpr uint64_t kMiB = uint64_t{1} << 20;

uint64_t FreeBytes(const std::string& dir) {
  struct statvfs st {};
  if (::statvfs(dir.c_str(), &st) != 0) return 0;
  return static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
}

// Writes zeros to `path` until the file system says ENOSPC.
void FillDisk(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0);
  std::string block(1 << 16, '\0');
  for (;;) {
    ssize_t n = ::write(fd, block.data(), block.size());
    if (n < 0) {
      ASSERT_EQ(errno, ENOSPC) << std::strerror(errno);
      break;
    }
  }
  // The last few bytes a 64 KiB write could not take.
  while (::write(fd, block.data(), 1) == 1) {
  }
  ::close(fd);
}

class SpaceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "mounting a small tmpfs needs root (CI runs as root)";
    harness_.StopDaemon();
    store_ = harness_.store_dir();
    // 160 MiB: room for the daemon's 8 MiB reserve (made when 8x is free).
    if (::mount("tmpfs", store_.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, "size=160m,mode=0700") != 0) {
      GTEST_SKIP() << "cannot mount a tmpfs here: " << std::strerror(errno);
    }
    mounted_ = true;
    harness_.StartDaemon();
    client_ = harness_.Connect();
  }
  void TearDown() override {
    client_.reset();
    if (mounted_) {
      harness_.StopDaemon();
      ::umount2(store_.c_str(), MNT_DETACH);
    }
  }

  std::string Store(const std::string& data, const Dict& options = {}, std::string* message = nullptr) {
    return client_->TryStore("", DigestOf(data), PipeFrom(data), options, nullptr, message);
  }

  DaemonHarness harness_;
  std::string store_;
  bool mounted_ = false;
  std::unique_ptr<BusClient> client_;
};

TEST_F(SpaceTest, TheUserCanStillReadDeleteGrantRevokeAndSetOnAFullDisk) {
  ASSERT_TRUE(std::filesystem::exists(store_ + "/reserve")) << harness_.DaemonLog();
  const std::string kept = RandomBytes(4 * kMiB, 1);
  const std::string other = RandomBytes(kMiB, 2);
  ASSERT_EQ(Store(kept), "");
  ASSERT_EQ(Store(other), "");

  FillDisk(store_ + "/filler");
  ASSERT_LT(FreeBytes(store_), 64u * 1024);

  // Reads: the usage record cannot be written; the read works all the same.
  std::string bytes;
  EXPECT_EQ(client_->TryOpen("", DigestOf(kept), &bytes), "");
  EXPECT_TRUE(bytes == kept);
  // Settings, grants, revokes: the reserve is released so the catalog can commit.
  EXPECT_NO_THROW(client_->SetSetting("consent-timeout", sdbus::Variant(uint32_t{30})));
  EXPECT_NO_THROW(client_->Grant("/usr/bin/reader", "", DigestOf(kept)));
  EXPECT_NO_THROW(client_->Revoke("/usr/bin/reader", "", DigestOf(kept)));
  EXPECT_NO_THROW(client_->SetPinned(DigestOf(kept), true));
  EXPECT_THAT(harness_.DaemonLog(), HasSubstr("released the"));
  // A store is refused before it writes anything.
  std::string message;
  EXPECT_EQ(Store(RandomBytes(kMiB, 3), {{"size", sdbus::Variant(uint64_t{kMiB})}}, &message), kNoSpace);
  EXPECT_THAT(message, HasSubstr("min-free-space"));
  EXPECT_TRUE(FilesBelow(store_ + "/ingest").empty());
  // The user frees space through costore.
  EXPECT_NO_THROW(client_->Delete(DigestOf(other)));
  EXPECT_EQ(client_->TryOpen("", DigestOf(other), nullptr), "io.github.costore.Error.NotFound");
  // Everything stored is intact.
  EXPECT_EQ(client_->TryOpen("", DigestOf(kept), &bytes), "");
  EXPECT_TRUE(bytes == kept);
}

TEST_F(SpaceTest, AStoreOfUnknownSizeStopsAtTheFloorAndLeavesNothing) {
  // Floor: 100 MiB of the 160 MiB file system must stay free.
  client_->SetSetting("min-free-space", sdbus::Variant(uint64_t{100 * kMiB}));
  const uint64_t before = FreeBytes(store_);
  const std::string endless = RandomBytes(90 * kMiB, 4);  // more than fits above the floor
  std::string message;
  EXPECT_EQ(Store(endless, {}, &message), kNoSpace);
  EXPECT_THAT(message, HasSubstr("unknown size"));
  EXPECT_TRUE(FilesBelow(store_ + "/ingest").empty());
  EXPECT_GE(FreeBytes(store_) + kMiB, before);  // the partial file is gone
  // With a size, refused at once.
  EXPECT_EQ(Store(endless, {{"size", sdbus::Variant(uint64_t{endless.size()})}}, &message), kNoSpace);
  // Small files still fit.
  EXPECT_EQ(Store(RandomBytes(kMiB, 5), {{"size", sdbus::Variant(uint64_t{kMiB})}}), "");
}

TEST_F(SpaceTest, TheQuotaRefusesStoresPastItAndAutoCollectMakesRoom) {
  client_->SetSetting("quota", sdbus::Variant(uint64_t{6 * kMiB}));
  const std::string a = RandomBytes(3 * kMiB, 6), b = RandomBytes(2 * kMiB, 7), c = RandomBytes(2 * kMiB, 8);
  ASSERT_EQ(Store(a), "");
  ASSERT_EQ(Store(b), "");
  std::string message;
  EXPECT_EQ(Store(c, {{"size", sdbus::Variant(uint64_t{c.size()})}}, &message), kQuota);
  EXPECT_THAT(message, HasSubstr("quota"));
  EXPECT_EQ(Store(c, {}, &message), kQuota);  // unknown size: refused once it is known
  EXPECT_TRUE(FilesBelow(store_ + "/ingest").empty());
  // With auto-collect, the least recently used unpinned file makes room.
  client_->SetPinned(DigestOf(a), true);
  client_->SetSetting("auto-collect", sdbus::Variant(true));
  EXPECT_EQ(Store(c, {{"size", sdbus::Variant(uint64_t{c.size()})}}), "");
  EXPECT_EQ(client_->TryOpen("", DigestOf(b), nullptr), "io.github.costore.Error.NotFound");
  std::string bytes;
  EXPECT_EQ(client_->TryOpen("", DigestOf(a), &bytes), "");  // pinned: kept
  EXPECT_TRUE(bytes == a);
  auto space = client_->Space();
  EXPECT_EQ(space["store-bytes"].get<uint64_t>(), a.size() + c.size());
  EXPECT_EQ(space["quota-bytes"].get<uint64_t>(), 6 * kMiB);
  EXPECT_EQ(space["pinned"].get<uint32_t>(), 1u);
}

}  // namespace
}  // namespace costore::test
