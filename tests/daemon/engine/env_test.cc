#include "daemon/engine/env.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>

#include "daemon/engine/env_posix.h"
#include "tests/daemon/engine/test_util.h"

namespace costore {
namespace {

using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;
using test::ReadFile;
using test::TempDir;
using test::WriteFile;

std::span<const std::byte> Bytes(std::string_view text) {
  return std::as_bytes(std::span<const char>(text.data(), text.size()));
}

mode_t ModeOf(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

class EnvTest : public ::testing::Test {
 protected:
  void SetUp() override { old_umask_ = ::umask(022); }
  void TearDown() override { ::umask(old_umask_); }

  Env* env_ = Env::Default();
  TempDir dir_;
  mode_t old_umask_ = 0;
};

TEST_F(EnvTest, DefaultIsOneInstance) { EXPECT_EQ(Env::Default(), Env::Default()); }

TEST_F(EnvTest, WritableFileAppendsSyncsAndCloses) {
  const std::string path = dir_.Join("file");
  std::unique_ptr<WritableFile> file;
  ASSERT_TRUE(env_->NewWritableFile(path, 0600, &file).ok());
  EXPECT_EQ(file->path(), path);
  ASSERT_TRUE(file->Append(Bytes("hello, ")).ok());
  ASSERT_TRUE(file->Append(Bytes("")).ok());
  ASSERT_TRUE(file->Append(Bytes("world")).ok());
  ASSERT_TRUE(file->Sync().ok());
  ASSERT_TRUE(file->Close().ok());
  EXPECT_EQ(ReadFile(path), "hello, world");
  EXPECT_EQ(ModeOf(path), 0600u);
}

TEST_F(EnvTest, WritableFileSurvivesManyMegabytes) {
  // Many appends of a buffer-sized chunk, as an ingest makes them.
  const std::string path = dir_.Join("big");
  std::unique_ptr<WritableFile> file;
  ASSERT_TRUE(env_->NewWritableFile(path, 0600, &file).ok());
  const std::string chunk = test::RandomBytes(1 << 20, 7);
  const int chunks = 24;
  for (int i = 0; i < chunks; ++i) ASSERT_TRUE(file->Append(Bytes(chunk)).ok());
  ASSERT_TRUE(file->Sync().ok());
  ASSERT_TRUE(file->Close().ok());
  const std::string written = ReadFile(path);
  ASSERT_EQ(written.size(), chunk.size() * chunks);
  EXPECT_EQ(written.compare(written.size() - chunk.size(), chunk.size(), chunk), 0);
}

// Early flushes (PosixFileOptions): counted, or made to fail with EIO.
std::atomic<int> datasync_calls{0};
int CountingDatasync(int fd) {
  ++datasync_calls;
  return ::fdatasync(fd);
}
int FailingDatasync(int) {
  ++datasync_calls;
  errno = EIO;
  return -1;
}

std::unique_ptr<WritableFile> NewFileWithEarlyFlushes(const std::string& path, uint64_t every,
                                                      int (*datasync)(int)) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  EXPECT_GE(fd, 0) << path;
  PosixFileOptions options;
  options.early_flush_bytes = every;
  options.datasync = datasync;
  return NewPosixWritableFile(path, fd, options);
}

TEST_F(EnvTest, EarlyFlushesRunWhileWritingAndKeepEveryByte) {
  const std::string path = dir_.Join("flushed");
  datasync_calls = 0;
  auto file = NewFileWithEarlyFlushes(path, 64 * 1024, CountingDatasync);
  const std::string contents = test::RandomBytes(1 << 20, 11);
  for (size_t at = 0; at < contents.size(); at += 16 * 1024) {
    ASSERT_TRUE(file->Append(Bytes(std::string_view(contents).substr(at, 16 * 1024))).ok());
  }
  ASSERT_TRUE(file->Sync().ok());
  ASSERT_TRUE(file->Close().ok());
  // One flush at a time, started every 64 KiB when none is running: at
  // least one ran, and never more than one per 64 KiB.
  EXPECT_GE(datasync_calls.load(), 1);
  EXPECT_LE(datasync_calls.load(), 16);
  EXPECT_EQ(ReadFile(path), contents);
}

TEST_F(EnvTest, NoEarlyFlushBelowTheIntervalOrWhenTurnedOff) {
  datasync_calls = 0;
  auto small = NewFileWithEarlyFlushes(dir_.Join("small"), 64 * 1024, CountingDatasync);
  ASSERT_TRUE(small->Append(Bytes(std::string(64 * 1024 - 1, 'x'))).ok());
  ASSERT_TRUE(small->Sync().ok());
  auto off = NewFileWithEarlyFlushes(dir_.Join("off"), 0, CountingDatasync);
  ASSERT_TRUE(off->Append(Bytes(std::string(1 << 20, 'y'))).ok());
  ASSERT_TRUE(off->Sync().ok());
  EXPECT_EQ(datasync_calls.load(), 0);
}

TEST_F(EnvTest, FailedEarlyFlushFailsEveryLaterAppendAndSync) {
  // The kernel reports a writeback error once: a later fsync may succeed
  // though the bytes never reached the disk, so the first error must stick.
  const std::string path = dir_.Join("unflushable");
  datasync_calls = 0;
  auto file = NewFileWithEarlyFlushes(path, 4096, FailingDatasync);
  ASSERT_TRUE(file->Append(Bytes(std::string(4096, 'a'))).ok());  // starts the flush
  Status s = file->Sync();
  EXPECT_EQ(s.code(), Code::kIOError);
  EXPECT_THAT(s.message(), HasSubstr("fdatasync " + path));
  EXPECT_EQ(file->Sync().code(), Code::kIOError);
  EXPECT_EQ(file->Append(Bytes("more")).code(), Code::kIOError);
  EXPECT_EQ(datasync_calls.load(), 1);
  EXPECT_TRUE(file->Close().ok());
}

TEST_F(EnvTest, NewWritableFileIsExclusive) {
  const std::string path = dir_.Join("taken");
  WriteFile(path, "keep me");
  std::unique_ptr<WritableFile> file;
  Status s = env_->NewWritableFile(path, 0600, &file);
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr(path));
  EXPECT_EQ(ReadFile(path), "keep me");
}

TEST_F(EnvTest, OpenReadOnlyGivesACloseOnExecDescriptor) {
  const std::string path = dir_.Join("r");
  WriteFile(path, "data");
  int fd = -1;
  ASSERT_TRUE(env_->OpenReadOnly(path, &fd, nullptr).ok());
  EXPECT_EQ(test::ReadFd(fd), "data");
  EXPECT_EQ(::fcntl(fd, F_GETFL) & O_ACCMODE, O_RDONLY);
  EXPECT_NE(::fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);
  ::close(fd);
}

TEST_F(EnvTest, OpenReadOnlyMissingIsNotFoundNamingThePath) {
  const std::string path = dir_.Join("missing");
  int fd = -1;
  Status s = env_->OpenReadOnly(path, &fd, nullptr);
  EXPECT_EQ(s.code(), Code::kNotFound);
  EXPECT_THAT(s.message(), HasSubstr(path));
  EXPECT_EQ(fd, -1);
}

TEST_F(EnvTest, RenameNoReplaceMovesWhenTargetIsAbsent) {
  const std::string from = dir_.Join("from"), to = dir_.Join("to");
  WriteFile(from, "payload");
  bool existed = true;
  ASSERT_TRUE(env_->RenameNoReplace(from, to, &existed).ok());
  EXPECT_FALSE(existed);
  EXPECT_FALSE(env_->FileExists(from));
  EXPECT_EQ(ReadFile(to), "payload");
}

TEST_F(EnvTest, RenameNoReplaceNeverReplaces) {
  const std::string from = dir_.Join("from"), to = dir_.Join("to");
  WriteFile(from, "new");
  WriteFile(to, "old");
  bool existed = false;
  ASSERT_TRUE(env_->RenameNoReplace(from, to, &existed).ok());
  EXPECT_TRUE(existed);
  EXPECT_EQ(ReadFile(to), "old");
  EXPECT_EQ(ReadFile(from), "new");
}

TEST_F(EnvTest, RenameNoReplaceMissingSourceFails) {
  bool existed = false;
  Status s = env_->RenameNoReplace(dir_.Join("nope"), dir_.Join("to"), &existed);
  EXPECT_FALSE(s.ok());
  EXPECT_FALSE(existed);
  EXPECT_THAT(s.message(), HasSubstr(dir_.Join("nope")));
  EXPECT_FALSE(env_->FileExists(dir_.Join("to")));
}

TEST_F(EnvTest, RemoveFile) {
  const std::string path = dir_.Join("x");
  WriteFile(path, "x");
  ASSERT_TRUE(env_->RemoveFile(path).ok());
  EXPECT_FALSE(env_->FileExists(path));
  Status s = env_->RemoveFile(path);
  EXPECT_EQ(s.code(), Code::kNotFound);
  EXPECT_THAT(s.message(), HasSubstr(path));
}

TEST_F(EnvTest, Chmod) {
  const std::string path = dir_.Join("x");
  WriteFile(path, "x");
  ASSERT_TRUE(env_->Chmod(path, 0444).ok());
  EXPECT_EQ(ModeOf(path), 0444u);
  EXPECT_EQ(env_->Chmod(dir_.Join("missing"), 0444).code(), Code::kNotFound);
}

TEST_F(EnvTest, CreateDirsMakesParentsWithTheMode) {
  const std::string deep = dir_.Join("a/b/c");
  ASSERT_TRUE(env_->CreateDirs(deep, 0700).ok());
  EXPECT_EQ(ModeOf(dir_.Join("a")), 0700u);
  EXPECT_EQ(ModeOf(dir_.Join("a/b")), 0700u);
  EXPECT_EQ(ModeOf(deep), 0700u);
  // Existing directories are fine, with or without a trailing slash.
  EXPECT_TRUE(env_->CreateDirs(deep, 0700).ok());
  EXPECT_TRUE(env_->CreateDirs(deep + "/", 0700).ok());
  EXPECT_TRUE(env_->CreateDirs(dir_.path(), 0700).ok());
}

TEST_F(EnvTest, CreateDirsFailsWhereAFileIsInTheWay) {
  WriteFile(dir_.Join("file"), "x");
  Status s = env_->CreateDirs(dir_.Join("file/sub"), 0700);
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr(dir_.Join("file")));
  EXPECT_FALSE(env_->CreateDirs(dir_.Join("file"), 0700).ok());
}

TEST_F(EnvTest, SyncDir) {
  EXPECT_TRUE(env_->SyncDir(dir_.path()).ok());
  Status s = env_->SyncDir(dir_.Join("missing"));
  EXPECT_EQ(s.code(), Code::kNotFound);
  EXPECT_THAT(s.message(), HasSubstr("missing"));
}

TEST_F(EnvTest, GetChildrenListsNamesOnly) {
  WriteFile(dir_.Join("one"), "1");
  WriteFile(dir_.Join(".hidden"), "2");
  ASSERT_TRUE(env_->CreateDirs(dir_.Join("sub"), 0700).ok());
  std::vector<std::string> names = {"stale"};
  ASSERT_TRUE(env_->GetChildren(dir_.path(), &names).ok());
  EXPECT_THAT(names, UnorderedElementsAre("one", ".hidden", "sub"));

  ASSERT_TRUE(env_->GetChildren(dir_.Join("sub"), &names).ok());
  EXPECT_TRUE(names.empty());
  EXPECT_EQ(env_->GetChildren(dir_.Join("missing"), &names).code(), Code::kNotFound);
  EXPECT_FALSE(env_->GetChildren(dir_.Join("one"), &names).ok());
}

TEST_F(EnvTest, FileExists) {
  EXPECT_TRUE(env_->FileExists(dir_.path()));
  EXPECT_FALSE(env_->FileExists(dir_.Join("x")));
  WriteFile(dir_.Join("x"), "");
  EXPECT_TRUE(env_->FileExists(dir_.Join("x")));
}

TEST_F(EnvTest, FreeSpaceIsPositive) {
  uint64_t bytes = 0;
  ASSERT_TRUE(env_->FreeSpace(dir_.path(), &bytes).ok());
  EXPECT_GT(bytes, 0u);
  EXPECT_EQ(env_->FreeSpace(dir_.Join("missing"), &bytes).code(), Code::kNotFound);
}

TEST_F(EnvTest, WriteFileAtomicCreatesAndReplaces) {
  const std::string path = dir_.Join("settings");
  ASSERT_TRUE(env_->WriteFileAtomic(path, "first", 0644).ok());
  EXPECT_EQ(ReadFile(path), "first");
  EXPECT_EQ(ModeOf(path), 0644u);
  ASSERT_TRUE(env_->WriteFileAtomic(path, "second, longer", 0600).ok());
  EXPECT_EQ(ReadFile(path), "second, longer");
  ASSERT_TRUE(env_->WriteFileAtomic(path, "", 0600).ok());
  EXPECT_EQ(ReadFile(path), "");
  // No temporary file is left next to it.
  std::vector<std::string> names;
  ASSERT_TRUE(env_->GetChildren(dir_.path(), &names).ok());
  EXPECT_THAT(names, UnorderedElementsAre("settings"));
}

TEST_F(EnvTest, WriteFileAtomicIntoMissingDirectoryFails) {
  const std::string path = dir_.Join("missing/settings");
  Status s = env_->WriteFileAtomic(path, "x", 0644);
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr(dir_.Join("missing")));
}

TEST_F(EnvTest, NowMicrosIsAfter2020) {
  EXPECT_GT(env_->NowMicros(), int64_t{1'577'836'800} * 1'000'000);
}

}  // namespace
}  // namespace costore
