// CrashEnv on its own: that a simulated crash really drops what was not made
// durable (bytes never synced, names never SyncDir'd), keeps what was, and
// that a dead Env does nothing at all.
#include "tests/daemon/engine/crash_env.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "tests/daemon/engine/test_util.h"

namespace costore::test {
namespace {

using ::testing::HasSubstr;

std::span<const std::byte> Bytes(std::string_view text) {
  return std::as_bytes(std::span<const char>(text.data(), text.size()));
}

bool Exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

class CrashEnvTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::filesystem::create_directories(Dir());
    env_ = std::make_unique<CrashEnv>(Env::Default(), dir_.Join("scratch"));
  }

  void UseSemantics(CrashEnv::Semantics semantics) {
    env_ = std::make_unique<CrashEnv>(Env::Default(), dir_.Join("scratch"), semantics);
  }

  // A directory that existed before the Env saw it: durable.
  std::string Dir() const { return dir_.Join("d"); }
  std::string Path(const std::string& name) const { return Dir() + "/" + name; }

  // Creates `name` through the Env and appends `synced`, syncs, then
  // appends `unsynced`; the file is closed.
  void Write(const std::string& name, const std::string& synced, const std::string& unsynced = "") {
    std::unique_ptr<WritableFile> file;
    ASSERT_TRUE(env_->NewWritableFile(Path(name), 0600, &file).ok());
    ASSERT_TRUE(file->Append(Bytes(synced)).ok());
    ASSERT_TRUE(file->Sync().ok());
    if (!unsynced.empty()) {
      ASSERT_TRUE(file->Append(Bytes(unsynced)).ok());
    }
    ASSERT_TRUE(file->Close().ok());
  }

  std::vector<std::string> Drop() {
    std::vector<std::string> report;
    Status s = env_->DropUnsyncedData(&report);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return report;
  }

  TempDir dir_;
  std::unique_ptr<CrashEnv> env_;
};

TEST_F(CrashEnvTest, BytesAppendedAfterTheLastSyncAreDropped) {
  Write("f", "synced,", "not synced");
  ASSERT_TRUE(env_->SyncDir(Dir()).ok());
  // Before the crash the process saw every byte.
  EXPECT_EQ(ReadFile(Path("f")), "synced,not synced");
  std::vector<std::string> report = Drop();
  EXPECT_EQ(ReadFile(Path("f")), "synced,");
  EXPECT_THAT(report, ::testing::Contains(HasSubstr("truncated " + Path("f") + " from 17 to 7 bytes")));
}

TEST_F(CrashEnvTest, AFileNeverSyncedIsEmpty) {
  std::unique_ptr<WritableFile> file;
  ASSERT_TRUE(env_->NewWritableFile(Path("f"), 0600, &file).ok());
  ASSERT_TRUE(env_->SyncDir(Dir()).ok());  // its name is durable, its bytes are not
  ASSERT_TRUE(file->Append(Bytes("written, never synced")).ok());
  ASSERT_TRUE(file->Close().ok());
  Drop();
  ASSERT_TRUE(Exists(Path("f")));
  EXPECT_EQ(ReadFile(Path("f")), "");
}

TEST_F(CrashEnvTest, ACreationNeverSyncDirdIsLostThoughItsBytesWereSynced) {
  Write("f", "synced bytes");
  Drop();
  EXPECT_FALSE(Exists(Path("f")));
}

TEST_F(CrashEnvTest, ASyncDirMakesEveryEarlierChangeOfItsDirectoryDurable) {
  Write("before", "kept");
  ASSERT_TRUE(env_->SyncDir(Dir()).ok());
  Write("after", "lost");
  Drop();
  EXPECT_EQ(ReadFile(Path("before")), "kept");
  EXPECT_FALSE(Exists(Path("after")));
}

TEST_F(CrashEnvTest, ARenameWithoutSyncDirIsUndone) {
  WriteFile(Path("old"), "contents");  // made before the Env: durable
  bool existed = true;
  ASSERT_TRUE(env_->RenameNoReplace(Path("old"), Path("new"), &existed).ok());
  ASSERT_FALSE(existed);
  ASSERT_FALSE(Exists(Path("old")));
  std::vector<std::string> report = Drop();
  EXPECT_FALSE(Exists(Path("new")));
  EXPECT_EQ(ReadFile(Path("old")), "contents");
  EXPECT_THAT(report, ::testing::Contains(HasSubstr("moved " + Path("new") + " back to " + Path("old"))));
}

TEST_F(CrashEnvTest, ARenameWithSyncDirStays) {
  WriteFile(Path("old"), "contents");
  bool existed = true;
  ASSERT_TRUE(env_->RenameNoReplace(Path("old"), Path("new"), &existed).ok());
  ASSERT_TRUE(env_->SyncDir(Dir()).ok());
  Drop();
  EXPECT_FALSE(Exists(Path("old")));
  EXPECT_EQ(ReadFile(Path("new")), "contents");
}

TEST_F(CrashEnvTest, ARenameThatFoundTheTargetChangesNothing) {
  WriteFile(Path("old"), "old");
  WriteFile(Path("new"), "new");
  bool existed = false;
  ASSERT_TRUE(env_->RenameNoReplace(Path("old"), Path("new"), &existed).ok());
  EXPECT_TRUE(existed);
  Drop();
  EXPECT_EQ(ReadFile(Path("old")), "old");
  EXPECT_EQ(ReadFile(Path("new")), "new");
}

// Across directories each half of a rename is durable on its own (POSIX):
// the ingest-to-blobs pattern of the store, with only the target synced.
TEST_F(CrashEnvTest, ACrossDirectoryRenameKeepsWhatEachSyncDirMadeDurable) {
  const std::string from_dir = dir_.Join("from"), to_dir = dir_.Join("to");
  std::filesystem::create_directories(from_dir);
  std::filesystem::create_directories(to_dir);
  WriteFile(from_dir + "/a", "A");
  WriteFile(from_dir + "/b", "B");
  WriteFile(from_dir + "/c", "C");
  bool existed = false;
  ASSERT_TRUE(env_->RenameNoReplace(from_dir + "/a", to_dir + "/a", &existed).ok());
  ASSERT_TRUE(env_->SyncDir(to_dir).ok());  // the new name of a is durable
  ASSERT_TRUE(env_->RenameNoReplace(from_dir + "/b", to_dir + "/b", &existed).ok());
  ASSERT_TRUE(env_->RenameNoReplace(from_dir + "/c", to_dir + "/c", &existed).ok());
  ASSERT_TRUE(env_->SyncDir(from_dir).ok());  // the removal of every old name is durable
  Drop();
  // a: both halves durable. b and c: only the removal of the old name.
  EXPECT_EQ(ReadFile(to_dir + "/a"), "A");
  EXPECT_FALSE(Exists(from_dir + "/a"));
  EXPECT_FALSE(Exists(from_dir + "/b"));
  EXPECT_FALSE(Exists(to_dir + "/b"));
  EXPECT_FALSE(Exists(to_dir + "/c"));
}

TEST_F(CrashEnvTest, ARenameWhoseTargetOnlyWasSyncedLeavesBothNames) {
  const std::string from_dir = dir_.Join("from"), to_dir = dir_.Join("to");
  std::filesystem::create_directories(from_dir);
  std::filesystem::create_directories(to_dir);
  WriteFile(from_dir + "/a", "A");
  bool existed = false;
  ASSERT_TRUE(env_->RenameNoReplace(from_dir + "/a", to_dir + "/a", &existed).ok());
  ASSERT_TRUE(env_->SyncDir(to_dir).ok());
  Drop();
  EXPECT_EQ(ReadFile(to_dir + "/a"), "A");
  EXPECT_EQ(ReadFile(from_dir + "/a"), "A");
}

// The new name made durable and then durably removed; the old name's
// removal never made durable: the file comes back under its old name.
TEST_F(CrashEnvTest, AnOldNameComesBackEvenWhenTheNewOneWasRemovedSince) {
  const std::string from_dir = dir_.Join("from"), to_dir = dir_.Join("to");
  std::filesystem::create_directories(from_dir);
  std::filesystem::create_directories(to_dir);
  WriteFile(from_dir + "/a", "A");
  bool existed = false;
  ASSERT_TRUE(env_->RenameNoReplace(from_dir + "/a", to_dir + "/a", &existed).ok());
  ASSERT_TRUE(env_->SyncDir(to_dir).ok());
  ASSERT_TRUE(env_->RemoveFile(to_dir + "/a").ok());
  ASSERT_TRUE(env_->SyncDir(to_dir).ok());
  Drop();
  EXPECT_FALSE(Exists(to_dir + "/a"));
  EXPECT_EQ(ReadFile(from_dir + "/a"), "A");
}

TEST_F(CrashEnvTest, ARemovalWithoutSyncDirIsUndone) {
  WriteFile(Path("f"), "still here");
  ASSERT_TRUE(env_->RemoveFile(Path("f")).ok());
  EXPECT_FALSE(env_->FileExists(Path("f")));
  Drop();
  EXPECT_EQ(ReadFile(Path("f")), "still here");
}

TEST_F(CrashEnvTest, ARemovalWithSyncDirStays) {
  WriteFile(Path("f"), "gone");
  ASSERT_TRUE(env_->RemoveFile(Path("f")).ok());
  ASSERT_TRUE(env_->SyncDir(Dir()).ok());
  Drop();
  EXPECT_FALSE(Exists(Path("f")));
  EXPECT_TRUE(std::filesystem::is_empty(dir_.Join("scratch")));
}

TEST_F(CrashEnvTest, ARemovedFileComesBackWithItsSyncedBytesOnly) {
  Write("f", "synced", " unsynced");
  ASSERT_TRUE(env_->SyncDir(Dir()).ok());
  ASSERT_TRUE(env_->RemoveFile(Path("f")).ok());
  Drop();
  EXPECT_EQ(ReadFile(Path("f")), "synced");
}

TEST_F(CrashEnvTest, ANewDirectoryIsLostWithAllBelowItUnlessItsParentWasSynced) {
  const std::string lost = Path("x/y"), kept = Path("k/l");
  ASSERT_TRUE(env_->CreateDirs(lost, 0700).ok());
  ASSERT_TRUE(env_->CreateDirs(kept, 0700).ok());
  Write("x/y/f", "durable inside y, but y is not reachable");
  ASSERT_TRUE(env_->SyncDir(lost).ok());
  Write("k/l/f", "durable all the way");
  ASSERT_TRUE(env_->SyncDir(kept).ok());
  ASSERT_TRUE(env_->SyncDir(Path("k")).ok());
  ASSERT_TRUE(env_->SyncDir(Dir()).ok());  // x and k are durable in d; y is not in x
  Drop();
  EXPECT_TRUE(Exists(Path("x")));
  EXPECT_FALSE(Exists(Path("x/y")));
  EXPECT_EQ(ReadFile(Path("k/l/f")), "durable all the way");
}

TEST_F(CrashEnvTest, WriteFileAtomicIsDurableAndSyncsItsDirectory) {
  Write("earlier", "made durable by the atomic write's SyncDir");
  ASSERT_TRUE(env_->WriteFileAtomic(Path("atomic"), "contents", 0644).ok());
  Drop();
  EXPECT_EQ(ReadFile(Path("atomic")), "contents");
  EXPECT_EQ(ReadFile(Path("earlier")), "made durable by the atomic write's SyncDir");
}

TEST_F(CrashEnvTest, AfterTheCrashEveryOperationFailsAndChangesNothing) {
  WriteFile(Path("f"), "untouched");
  std::unique_ptr<WritableFile> open;
  ASSERT_TRUE(env_->NewWritableFile(Path("open"), 0600, &open).ok());
  env_->SimulateCrash();
  EXPECT_TRUE(env_->crashed());

  Status s = open->Append(Bytes("after the crash"));
  EXPECT_EQ(s.code(), Code::kIOError);
  EXPECT_THAT(s.message(), HasSubstr("the process is dead"));
  EXPECT_EQ(open->Sync().code(), Code::kIOError);
  EXPECT_EQ(open->Close().code(), Code::kIOError);
  EXPECT_EQ(ReadFile(Path("open")), "");

  std::unique_ptr<WritableFile> file;
  EXPECT_EQ(env_->NewWritableFile(Path("g"), 0600, &file).code(), Code::kIOError);
  EXPECT_FALSE(Exists(Path("g")));
  EXPECT_EQ(env_->RemoveFile(Path("f")).code(), Code::kIOError);
  bool existed = false;
  EXPECT_EQ(env_->RenameNoReplace(Path("f"), Path("h"), &existed).code(), Code::kIOError);
  EXPECT_EQ(env_->CreateDirs(Path("newdir"), 0700).code(), Code::kIOError);
  EXPECT_FALSE(Exists(Path("newdir")));
  int fd = -1;
  EXPECT_EQ(env_->OpenReadOnly(Path("f"), &fd, nullptr).code(), Code::kIOError);
  FileStat st;
  EXPECT_EQ(env_->Stat(Path("f"), &st).code(), Code::kIOError);
  std::vector<DirEntry> entries;
  EXPECT_EQ(env_->ListDir(Dir(), &entries).code(), Code::kIOError);
  FsSpace space;
  EXPECT_EQ(env_->GetFsSpace(Dir(), &space).code(), Code::kIOError);
  EXPECT_EQ(env_->Preallocate(Path("reserve"), 4096).code(), Code::kIOError);
  EXPECT_FALSE(Exists(Path("reserve")));
  std::unique_ptr<StoreLock> lock;
  EXPECT_EQ(env_->LockStore(Dir(), &lock).code(), Code::kIOError);
  EXPECT_EQ(env_->Chmod(Path("f"), 0400).code(), Code::kIOError);
  EXPECT_EQ(env_->SyncDir(Dir()).code(), Code::kIOError);
  std::vector<std::string> names;
  EXPECT_EQ(env_->GetChildren(Dir(), &names).code(), Code::kIOError);
  uint64_t free_bytes = 0;
  EXPECT_EQ(env_->FreeSpace(Dir(), &free_bytes).code(), Code::kIOError);
  EXPECT_EQ(env_->WriteFileAtomic(Path("atomic"), "x", 0600).code(), Code::kIOError);
  EXPECT_FALSE(env_->FileExists(Path("f")));
  EXPECT_EQ(ReadFile(Path("f")), "untouched");

  Drop();
  EXPECT_FALSE(Exists(Path("open")));  // never SyncDir'd
  EXPECT_EQ(ReadFile(Path("f")), "untouched");
}

TEST_F(CrashEnvTest, CrashAfterLetsExactlyKOperationsThrough) {
  env_->set_record_operations(true);
  env_->CrashAfter(3);
  EXPECT_FALSE(env_->FileExists(Path("f")));                  // 1
  EXPECT_TRUE(env_->CreateDirs(Path("sub"), 0700).ok());      // 2
  std::unique_ptr<WritableFile> file;
  ASSERT_TRUE(env_->NewWritableFile(Path("f"), 0600, &file).ok());  // 3
  EXPECT_FALSE(env_->crashed());
  EXPECT_EQ(file->Append(Bytes("x")).code(), Code::kIOError);  // 4: dead
  EXPECT_TRUE(env_->crashed());
  EXPECT_EQ(file->Close().code(), Code::kIOError);  // 5
  EXPECT_EQ(env_->operations(), 5);
  EXPECT_EQ(env_->Operation(1), "FileExists " + Path("f"));
  EXPECT_EQ(env_->Operation(2), "CreateDirs " + Path("sub"));
  EXPECT_EQ(env_->Operation(3), "NewWritableFile " + Path("f"));
  EXPECT_EQ(env_->Operation(4), "Append " + Path("f"));
}

TEST_F(CrashEnvTest, TheCrashHookRunsOnceWhenTheEnvDies) {
  int runs = 0;
  int64_t operations_at_hook = -1;
  env_->set_crash_hook([&] {
    ++runs;
    operations_at_hook = env_->operations();
  });
  env_->CrashAfter(2);
  EXPECT_TRUE(env_->CreateDirs(Path("a"), 0700).ok());
  EXPECT_TRUE(env_->CreateDirs(Path("b"), 0700).ok());
  EXPECT_EQ(runs, 0);
  EXPECT_FALSE(env_->CreateDirs(Path("c"), 0700).ok());
  EXPECT_EQ(runs, 1);
  EXPECT_EQ(operations_at_hook, 3);  // while the third one was failing
  EXPECT_FALSE(env_->SyncDir(Dir()).ok());
  Drop();
  EXPECT_EQ(runs, 1);
}

TEST_F(CrashEnvTest, CrashAfterZeroFailsTheFirstOperation) {
  env_->CrashAfter(0);
  EXPECT_EQ(env_->CreateDirs(Path("sub"), 0700).code(), Code::kIOError);
  EXPECT_FALSE(Exists(Path("sub")));
  EXPECT_EQ(env_->operations(), 1);
}

TEST_F(CrashEnvTest, AReadOnlyFileIsTruncatedToo) {
  std::unique_ptr<WritableFile> file;
  ASSERT_TRUE(env_->NewWritableFile(Path("f"), 0600, &file).ok());
  ASSERT_TRUE(env_->SyncDir(Dir()).ok());
  ASSERT_TRUE(file->Append(Bytes("unsynced")).ok());
  ASSERT_TRUE(file->Close().ok());
  ASSERT_TRUE(env_->Chmod(Path("f"), 0444).ok());
  Drop();
  EXPECT_EQ(ReadFile(Path("f")), "");
  struct stat st {};
  ASSERT_EQ(::stat(Path("f").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0444u);
}

// ext4 data=ordered: one journal, committed in order by any fsync.
TEST_F(CrashEnvTest, JournaledAnySyncCommitsEveryEarlierNameChange) {
  UseSemantics(CrashEnv::Semantics::kJournaled);
  const std::string from_dir = dir_.Join("from"), to_dir = dir_.Join("to");
  std::filesystem::create_directories(from_dir);
  std::filesystem::create_directories(to_dir);
  WriteFile(from_dir + "/a", "A");
  WriteFile(from_dir + "/b", "B");
  bool existed = false;
  ASSERT_TRUE(env_->RenameNoReplace(from_dir + "/a", to_dir + "/a", &existed).ok());
  Write("f", "synced", " unsynced");  // its Sync commits the rename and its own creation
  ASSERT_TRUE(env_->RenameNoReplace(from_dir + "/b", to_dir + "/b", &existed).ok());  // never committed
  Drop();
  EXPECT_EQ(ReadFile(to_dir + "/a"), "A");
  EXPECT_FALSE(Exists(from_dir + "/a"));
  EXPECT_EQ(ReadFile(Path("f")), "synced");
  EXPECT_EQ(ReadFile(from_dir + "/b"), "B");
  EXPECT_FALSE(Exists(to_dir + "/b"));
}

TEST_F(CrashEnvTest, JournaledUnsyncedChangesAreStillLost) {
  UseSemantics(CrashEnv::Semantics::kJournaled);
  WriteFile(Path("f"), "back");
  ASSERT_TRUE(env_->RemoveFile(Path("f")).ok());
  std::unique_ptr<WritableFile> file;
  ASSERT_TRUE(env_->NewWritableFile(Path("g"), 0600, &file).ok());
  ASSERT_TRUE(file->Append(Bytes("never synced")).ok());
  ASSERT_TRUE(file->Close().ok());
  Drop();
  EXPECT_EQ(ReadFile(Path("f")), "back");
  EXPECT_FALSE(Exists(Path("g")));
}

TEST_F(CrashEnvTest, DropTwiceIsAnError) {
  Drop();
  EXPECT_EQ(env_->DropUnsyncedData().code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace costore::test
