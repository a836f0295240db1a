#include "daemon/engine/blob_store.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <csignal>
#include <cstdlib>
#include <thread>

#include "daemon/engine/env_posix.h"
#include "daemon/engine/sha256.h"
#include "tests/daemon/engine/test_util.h"

namespace costore {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::StartsWith;
using test::FaultInjectionEnv;
using test::RandomBytes;
using test::ReadFile;
using test::TempDir;
using test::WriteFile;
using test::FilesBelow;

std::span<const std::byte> Bytes(std::string_view text) {
  return std::as_bytes(std::span<const char>(text.data(), text.size()));
}

Digest DigestOf(std::string_view text) { return Sha256::Of(Bytes(text)); }

mode_t ModeOf(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

off_t OffsetOf(int fd) { return ::lseek(fd, 0, SEEK_CUR); }

// Owns a descriptor for the length of a test.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() { Reset(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  void Reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

struct Pipe {
  Pipe() {
    int fds[2];
    EXPECT_EQ(::pipe2(fds, O_CLOEXEC), 0);
    read_end = std::make_unique<Fd>(fds[0]);
    write_end = std::make_unique<Fd>(fds[1]);
  }
  std::unique_ptr<Fd> read_end, write_end;
};

// Writes `data` into a pipe from a thread, in pieces, then closes the write
// end. With `endless`, repeats until the reader goes away (EPIPE).
class PipeFeeder {
 public:
  PipeFeeder(Pipe* pipe, std::string data, bool endless)
      : pipe_(pipe), thread_([this, data = std::move(data), endless] {
          do {
            size_t done = 0;
            while (done < data.size()) {
              ssize_t n = ::write(pipe_->write_end->get(), data.data() + done,
                                  std::min<size_t>(data.size() - done, 100'000));
              if (n <= 0) return;  // the reader is gone
              done += static_cast<size_t>(n);
            }
          } while (endless);
          pipe_->write_end->Reset();
        }) {}
  // Closing the read end ends a feeder the test no longer reads from.
  ~PipeFeeder() {
    pipe_->read_end->Reset();
    thread_.join();
  }

 private:
  Pipe* pipe_;
  std::thread thread_;
};

Status InitOf(BlobStore& store) {
  InitReport report;
  return store.Init(&report);
}

Status CommitOf(BlobStore& store, StagedBlob* staged) {
  FileStat committed;
  bool existed = false;
  return store.Commit(staged, &committed, &existed);
}

class BlobStoreTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // Endless feeders learn that the reader left through EPIPE, not a signal.
    std::signal(SIGPIPE, SIG_IGN);
  }

  void SetUp() override {
    old_umask_ = ::umask(022);
    ASSERT_TRUE(InitOf(store_).ok());
  }
  void TearDown() override { ::umask(old_umask_); }

  std::string IngestDir() const { return root_ + "/ingest"; }

  std::vector<std::string> IngestFiles() {
    std::vector<std::string> names;
    EXPECT_TRUE(Env::Default()->GetChildren(IngestDir(), &names).ok());
    return names;
  }

  std::vector<Digest> Blobs(BlobStore* store = nullptr) {
    std::vector<Digest> digests;
    ScanResult scan;
    EXPECT_TRUE((store ? store : &store_)->Scan(&scan).ok());
    return scan.blobs;
  }

  // A regular source file holding `contents`, opened read-only.
  int OpenSource(const std::string& contents, const std::string& name = "source") {
    const std::string path = dir_.Join(name);
    WriteFile(path, contents);
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    EXPECT_GE(fd, 0);
    return fd;
  }

  Status IngestString(const std::string& contents, const Digest& expected,
                      std::optional<uint64_t> expected_size, StagedBlob* staged,
                      BlobStore* store = nullptr) {
    Fd fd(OpenSource(contents));
    IngestRequest request;
    request.source_fd = fd.get();
    request.expected = expected;
    request.expected_size = expected_size;
    return (store ? store : &store_)->Ingest(request, staged);
  }

  Status Store(const std::string& contents) {
    StagedBlob staged;
    Status s = IngestString(contents, DigestOf(contents), contents.size(), &staged);
    if (!s.ok()) return s;
    return CommitOf(store_, &staged);
  }

  TempDir dir_;
  std::string root_ = dir_.Join("store");
  BlobStore store_{Env::Default(), root_};
  mode_t old_umask_ = 0;
};

TEST_F(BlobStoreTest, InitCreatesThePrivateLayout) {
  EXPECT_EQ(ModeOf(root_), 0700u);
  EXPECT_EQ(ModeOf(root_ + "/blobs/sha256") & 0777, 0700u);
  EXPECT_EQ(ModeOf(IngestDir()) & 0777, 0700u);
  EXPECT_THAT(ReadFile(root_ + "/CACHEDIR.TAG"),
              StartsWith("Signature: 8a477f597d28d172789f06886806bc55\n#"));
  EXPECT_THAT(IngestFiles(), IsEmpty());
  EXPECT_THAT(Blobs(), IsEmpty());
  EXPECT_EQ(store_.root(), root_);
}

TEST_F(BlobStoreTest, InitTightensAnExistingRootAndIsRepeatable) {
  const std::string root = dir_.Join("loose");
  ASSERT_EQ(::mkdir(root.c_str(), 0755), 0);
  // The engine takes the store's lock first, which tightens the root.
  std::unique_ptr<StoreLock> lock;
  ASSERT_TRUE(Env::Default()->LockStore(root, &lock).ok());
  BlobStore store(Env::Default(), root);
  ASSERT_TRUE(InitOf(store).ok());
  EXPECT_EQ(ModeOf(root), 0700u);
  const std::string tag = ReadFile(root + "/CACHEDIR.TAG");
  ASSERT_TRUE(InitOf(store).ok());
  EXPECT_EQ(ReadFile(root + "/CACHEDIR.TAG"), tag);
}

TEST_F(BlobStoreTest, InitFailsWhenTheRootIsAFile) {
  const std::string root = dir_.Join("file");
  WriteFile(root, "x");
  BlobStore store(Env::Default(), root);
  Status s = InitOf(store);
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr(root));
}

// The store never follows a link inside itself: every such case is moved
// to quarantine/ whole, and what it pointed at is left exactly as it was.
class ConfinedBlobStoreTest : public BlobStoreTest {
 protected:
  void SetUp() override {
    BlobStoreTest::SetUp();
    ASSERT_TRUE(Env::Default()->LockStore(root_, &lock_).ok());
    WriteFile(outside_ + "-precious", "the user's file");
    ASSERT_EQ(::mkdir(outside_.c_str(), 0700), 0);
    WriteFile(outside_ + "/document", "not costore's");
  }
  std::vector<std::string> Outside() { return FilesBelow(outside_); }
  void ReplaceWithLink(const std::string& dir) {
    ASSERT_EQ(::rename(dir.c_str(), (dir + "-old").c_str()), 0);
    ASSERT_EQ(::symlink(outside_.c_str(), dir.c_str()), 0);
  }
  std::string outside_ = dir_.Join("outside");
  std::unique_ptr<StoreLock> lock_;
};

TEST_F(ConfinedBlobStoreTest, ASymlinkedIngestIsQuarantinedNotEmptied) {
  ReplaceWithLink(IngestDir());
  BlobStore restarted(Env::Default(), root_);
  InitReport report;
  ASSERT_TRUE(restarted.Init(&report).ok());
  EXPECT_THAT(Outside(), ElementsAre("document"));
  EXPECT_EQ(ReadFile(outside_ + "/document"), "not costore's");
  ASSERT_EQ(report.quarantined.size(), 1u);
  EXPECT_THAT(report.quarantined[0], HasSubstr("ingest (a symbolic link)"));
  struct stat st {};
  ASSERT_EQ(::lstat(IngestDir().c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
}

TEST_F(ConfinedBlobStoreTest, SymlinkedBlobsAndPrivateAreQuarantined) {
  ReplaceWithLink(root_ + "/blobs/sha256");
  ASSERT_EQ(::rename((root_ + "/private").c_str(), (root_ + "/private-old").c_str()), 0);
  ASSERT_EQ(::symlink((outside_ + "-precious").c_str(), (root_ + "/private").c_str()), 0);
  BlobStore restarted(Env::Default(), root_);
  InitReport report;
  ASSERT_TRUE(restarted.Init(&report).ok());
  EXPECT_EQ(report.quarantined.size(), 2u);
  EXPECT_THAT(Outside(), ElementsAre("document"));
  EXPECT_EQ(ReadFile(outside_ + "-precious"), "the user's file");
  // Writes land in the real directories, not through the old links.
  ASSERT_TRUE(Store("after").ok());
  EXPECT_THAT(Outside(), ElementsAre("document"));
}

TEST_F(ConfinedBlobStoreTest, ALinkPlantedBelowTheStoreIsNeverFollowed) {
  ASSERT_TRUE(Store("one").ok());
  const std::string hex = DigestOf("two").hex();
  // A fan-out directory that is a link: a commit into it must fail, not
  // write outside.
  ASSERT_EQ(::symlink(outside_.c_str(), (root_ + "/blobs/sha256/" + hex.substr(0, 2)).c_str()), 0);
  Status s = Store("two");
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(Outside(), ElementsAre("document"));
  // Opening a blob that is a link to a file outside: refused.
  const std::string link = store_.BlobPath(DigestOf("three"));
  ASSERT_TRUE(Env::Default()->CreateDirs(link.substr(0, link.rfind('/')), 0700).ok());
  ASSERT_EQ(::symlink((outside_ + "-precious").c_str(), link.c_str()), 0);
  int fd = -1;
  s = store_.OpenBlob(DigestOf("three"), &fd, nullptr);
  EXPECT_EQ(s.code(), Code::kIOError) << s.ToString();
  EXPECT_EQ(fd, -1);
}

TEST_F(ConfinedBlobStoreTest, AFifoAtABlobPathIsRefusedWithoutBlocking) {
  const std::string path = store_.BlobPath(DigestOf("fifo"));
  ASSERT_TRUE(Env::Default()->CreateDirs(path.substr(0, path.rfind('/')), 0700).ok());
  ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0);
  int fd = -1;
  Status s = store_.OpenBlob(DigestOf("fifo"), &fd, nullptr);  // would block forever without O_NONBLOCK
  EXPECT_EQ(s.code(), Code::kIOError);
  EXPECT_THAT(s.message(), HasSubstr("FIFO"));
}

TEST_F(ConfinedBlobStoreTest, AStrayDirectoryInIngestIsQuarantined) {
  ASSERT_EQ(::mkdir((IngestDir() + "/stray-dir").c_str(), 0700), 0);
  WriteFile(IngestDir() + "/stray-dir/inside", "kept");
  BlobStore restarted(Env::Default(), root_);
  InitReport report;
  ASSERT_TRUE(restarted.Init(&report).ok());
  EXPECT_THAT(IngestFiles(), IsEmpty());
  ASSERT_EQ(report.quarantined.size(), 1u);
  EXPECT_THAT(FilesBelow(root_ + "/quarantine"), ElementsAre(testing::EndsWith("ingest-stray-dir/inside")));
}

TEST_F(ConfinedBlobStoreTest, AQuarantineThatIsALinkIsMovedIntoARealOne) {
  ReplaceWithLink(root_ + "/quarantine");
  BlobStore restarted(Env::Default(), root_);
  InitReport report;
  ASSERT_TRUE(restarted.Init(&report).ok());
  ASSERT_EQ(report.quarantined.size(), 1u);
  struct stat st {};
  ASSERT_EQ(::lstat((root_ + "/quarantine").c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_THAT(Outside(), ElementsAre("document"));
  // The link itself now sits inside the real quarantine/.
  std::vector<DirEntry> entries;
  ASSERT_TRUE(Env::Default()->ListDir(root_ + "/quarantine", &entries).ok());
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].type, FileStat::Type::kSymlink);
}

TEST(StoreLockTest, ALinkWhereTheLockGoesIsSetAsideNeverFollowed) {
  TempDir dir;
  const std::string root = dir.Join("store");
  ASSERT_EQ(::mkdir(root.c_str(), 0755), 0);
  WriteFile(dir.Join("victim"), "the user's file");
  ASSERT_EQ(::symlink(dir.Join("victim").c_str(), (root + "/costored.lock").c_str()), 0);
  std::unique_ptr<StoreLock> lock;
  Status s = Env::Default()->LockStore(root, &lock);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(ReadFile(dir.Join("victim")), "the user's file");
  EXPECT_EQ(ModeOf(root), 0700u);  // tightened by the holder
  BlobStore store(Env::Default(), root);
  InitReport report;
  ASSERT_TRUE(store.Init(&report).ok());
  ASSERT_EQ(report.quarantined.size(), 1u);
  EXPECT_THAT(report.quarantined[0], HasSubstr("costored.lock (a symbolic link)"));
  EXPECT_EQ(ReadFile(dir.Join("victim")), "the user's file");
}

TEST_F(ConfinedBlobStoreTest, ASecondLockOnTheStoreIsBusy) {
  std::unique_ptr<StoreLock> second;
  Status s = Env::Default()->LockStore(root_, &second);
  EXPECT_EQ(s.code(), Code::kBusy);
  EXPECT_THAT(s.message(), HasSubstr("pid " + std::to_string(::getpid())));
  lock_.reset();
  EXPECT_TRUE(Env::Default()->LockStore(root_, &second).ok());
}

TEST_F(ConfinedBlobStoreTest, TheReadOnlyViewRefusesChmodAndReopeningForWrite) {
  ASSERT_TRUE(Store("shared bytes").ok());
  Status s = store_.UseReadOnlyView();
  ASSERT_TRUE(s.ok()) << s.ToString();
  int fd = -1;
  ASSERT_TRUE(store_.OpenBlob(DigestOf("shared bytes"), &fd, nullptr).ok());
  Fd opened(fd);
  EXPECT_EQ(::fchmod(fd, 0644), -1);
  EXPECT_EQ(errno, EROFS);
  const std::string self = "/proc/self/fd/" + std::to_string(fd);
  EXPECT_EQ(::open(self.c_str(), O_RDWR), -1);
  EXPECT_EQ(errno, EROFS);
  EXPECT_EQ(test::ReadFd(fd), "shared bytes");
}

TEST_F(BlobStoreTest, InitRemovesIngestLeftoversButKeepsBlobs) {
  const std::string kept = "committed before the crash";
  ASSERT_TRUE(Store(kept).ok());
  WriteFile(IngestDir() + "/0123456789abcdef.part", "half a file");
  WriteFile(IngestDir() + "/stray", "");
  ASSERT_EQ(IngestFiles().size(), 2u);

  BlobStore restarted(Env::Default(), root_);
  ASSERT_TRUE(InitOf(restarted).ok());
  EXPECT_THAT(IngestFiles(), IsEmpty());
  EXPECT_THAT(Blobs(&restarted), ElementsAre(DigestOf(kept)));
  EXPECT_EQ(ReadFile(restarted.BlobPath(DigestOf(kept))), kept);
}

TEST_F(BlobStoreTest, StoresAndCommitsAFile) {
  // Several read buffers long, and not a multiple of any of them.
  const std::string contents = RandomBytes(3 * 1024 * 1024 + 7);
  const Digest digest = DigestOf(contents);
  StagedBlob staged;
  ASSERT_TRUE(IngestString(contents, digest, contents.size(), &staged).ok());
  EXPECT_EQ(staged.digest(), digest);
  EXPECT_EQ(staged.size(), contents.size());
  EXPECT_THAT(staged.path(), StartsWith(IngestDir() + "/"));
  EXPECT_EQ(ModeOf(staged.path()), 0600u);
  EXPECT_FALSE(store_.Contains(digest));  // staged is not visible

  ASSERT_TRUE(CommitOf(store_, &staged).ok());
  EXPECT_TRUE(staged.path().empty());
  const std::string hex = digest.hex();
  const std::string path = store_.BlobPath(digest);
  EXPECT_EQ(path, root_ + "/blobs/sha256/" + hex.substr(0, 2) + "/" + hex);
  EXPECT_TRUE(store_.Contains(digest));
  EXPECT_EQ(ModeOf(path), 0444u);
  EXPECT_EQ(ModeOf(root_ + "/blobs/sha256/" + hex.substr(0, 2)), 0700u);
  EXPECT_TRUE(ReadFile(path) == contents);
  EXPECT_THAT(IngestFiles(), IsEmpty());
  EXPECT_THAT(Blobs(), ElementsAre(digest));

  int fd = -1;
  ASSERT_TRUE(store_.OpenBlob(digest, &fd, nullptr).ok());
  EXPECT_EQ(::fcntl(fd, F_GETFL) & O_ACCMODE, O_RDONLY);
  EXPECT_TRUE(test::ReadFd(fd) == contents);
  ::close(fd);
}

TEST_F(BlobStoreTest, StoresAnEmptyFile) {
  StagedBlob staged;
  ASSERT_TRUE(IngestString("", DigestOf(""), 0, &staged).ok());
  ASSERT_TRUE(CommitOf(store_, &staged).ok());
  EXPECT_EQ(DigestOf("").hex(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_TRUE(store_.Contains(DigestOf("")));
}

TEST_F(BlobStoreTest, ExpectedSizeIsOptional) {
  StagedBlob staged;
  ASSERT_TRUE(IngestString("no size given", DigestOf("no size given"), std::nullopt, &staged).ok());
  EXPECT_EQ(staged.size(), 13u);
}

TEST_F(BlobStoreTest, ReadsFromTheCurrentOffsetAndAdvancesIt) {
  // Callers follow progress through the shared offset, and may have
  // consumed a header first.
  const std::string body = RandomBytes(100'000, 3);
  Fd fd(OpenSource("HEADER" + body));
  ASSERT_EQ(::lseek(fd.get(), 6, SEEK_SET), 6);
  IngestRequest request;
  request.source_fd = fd.get();
  request.expected = DigestOf(body);
  request.expected_size = body.size();
  StagedBlob staged;
  ASSERT_TRUE(store_.Ingest(request, &staged).ok());
  EXPECT_EQ(OffsetOf(fd.get()), static_cast<off_t>(6 + body.size()));
}

TEST_F(BlobStoreTest, DigestMismatchStoresNothingAndNamesWhatArrived) {
  const std::string contents = "the bytes that arrived";
  const Digest wanted = DigestOf("the bytes that were promised");
  StagedBlob staged;
  Status s = IngestString(contents, wanted, contents.size(), &staged);
  EXPECT_EQ(s.code(), Code::kDigestMismatch);
  EXPECT_THAT(s.message(), HasSubstr("expected " + wanted.ToString() + " (22 bytes)"));
  EXPECT_THAT(s.message(), HasSubstr("received " + DigestOf(contents).ToString() + " (22 bytes)"));
  EXPECT_TRUE(staged.path().empty());
  EXPECT_THAT(IngestFiles(), IsEmpty());
  EXPECT_THAT(Blobs(), IsEmpty());
  EXPECT_FALSE(store_.Contains(DigestOf(contents)));
  EXPECT_FALSE(store_.Contains(wanted));
}

TEST_F(BlobStoreTest, ShortSourceIsASizeMismatch) {
  const std::string promised = "twelve bytes";
  const std::string truncated = "twelve";
  StagedBlob staged;
  Status s = IngestString(truncated, DigestOf(promised), promised.size(), &staged);
  EXPECT_EQ(s.code(), Code::kDigestMismatch);
  EXPECT_THAT(s.message(), HasSubstr("expected " + DigestOf(promised).ToString() + " (12 bytes)"));
  EXPECT_THAT(s.message(), HasSubstr("received " + DigestOf(truncated).ToString() + " (6 bytes)"));
  EXPECT_THAT(IngestFiles(), IsEmpty());
  EXPECT_THAT(Blobs(), IsEmpty());
}

TEST_F(BlobStoreTest, RightDigestWrongSizeIsAMismatch) {
  // The digest alone matches; a caller that also states a size must be right.
  const std::string contents = "sized";
  StagedBlob staged;
  Status s = IngestString(contents, DigestOf(contents), 6, &staged);
  EXPECT_EQ(s.code(), Code::kDigestMismatch);
  EXPECT_THAT(s.message(), HasSubstr("(6 bytes), received " + DigestOf(contents).ToString() +
                                     " (5 bytes)"));
  EXPECT_THAT(IngestFiles(), IsEmpty());
  EXPECT_THAT(Blobs(), IsEmpty());
}

TEST_F(BlobStoreTest, LongSourceStopsOneBytePastTheExpectedSize) {
  const std::string contents = RandomBytes(10'000, 5);
  Fd fd(OpenSource(contents));
  IngestRequest request;
  request.source_fd = fd.get();
  request.expected = DigestOf(contents.substr(0, 1000));
  request.expected_size = 1000;
  StagedBlob staged;
  Status s = store_.Ingest(request, &staged);
  EXPECT_EQ(s.code(), Code::kDigestMismatch);
  EXPECT_THAT(s.message(), HasSubstr("received more than 1000 bytes"));
  EXPECT_EQ(OffsetOf(fd.get()), 1001);
  EXPECT_THAT(IngestFiles(), IsEmpty());
  EXPECT_THAT(Blobs(), IsEmpty());
}

TEST_F(BlobStoreTest, EndlessDeviceIsCutOffAtTheExpectedSize) {
  Fd fd(::open("/dev/zero", O_RDONLY | O_CLOEXEC));
  ASSERT_GE(fd.get(), 0);
  IngestRequest request;
  request.source_fd = fd.get();
  request.expected = DigestOf(std::string(5'000'000, '\0'));
  request.expected_size = 5'000'000;
  StagedBlob staged;
  Status s = store_.Ingest(request, &staged);
  EXPECT_EQ(s.code(), Code::kDigestMismatch);
  EXPECT_THAT(s.message(), HasSubstr("received more than 5000000 bytes"));
  EXPECT_THAT(IngestFiles(), IsEmpty());
}

TEST_F(BlobStoreTest, EndlessPipeIsCutOffAtTheExpectedSize) {
  Pipe pipe;
  {
    PipeFeeder feeder(&pipe, RandomBytes(65'536, 9), /*endless=*/true);
    IngestRequest request;
    request.source_fd = pipe.read_end->get();
    request.expected = DigestOf("whatever");
    request.expected_size = 300'000;
    StagedBlob staged;
    Status s = store_.Ingest(request, &staged);
    EXPECT_EQ(s.code(), Code::kDigestMismatch);
    EXPECT_THAT(s.message(), HasSubstr("received more than 300000 bytes"));
  }
  EXPECT_THAT(IngestFiles(), IsEmpty());
}

TEST_F(BlobStoreTest, CommittingTheSameDigestTwiceKeepsOneBlob) {
  const std::string contents = RandomBytes(200'000, 11);
  const Digest digest = DigestOf(contents);
  StagedBlob first, second;
  ASSERT_TRUE(IngestString(contents, digest, contents.size(), &first).ok());
  ASSERT_TRUE(IngestString(contents, digest, contents.size(), &second).ok());
  EXPECT_NE(first.path(), second.path());
  ASSERT_TRUE(CommitOf(store_, &first).ok());
  ASSERT_TRUE(CommitOf(store_, &second).ok());
  EXPECT_TRUE(second.path().empty());
  EXPECT_THAT(Blobs(), ElementsAre(digest));
  EXPECT_THAT(IngestFiles(), IsEmpty());
  EXPECT_EQ(ModeOf(store_.BlobPath(digest)), 0444u);
  EXPECT_TRUE(ReadFile(store_.BlobPath(digest)) == contents);
}

TEST_F(BlobStoreTest, CommitWithNothingStagedIsRefused) {
  StagedBlob empty;
  EXPECT_EQ(CommitOf(store_, &empty).code(), Code::kInvalidArgument);
}

TEST_F(BlobStoreTest, IngestsFromAPipe) {
  const std::string contents = RandomBytes(3 * 1024 * 1024 + 1, 13);
  Pipe pipe;
  PipeFeeder feeder(&pipe, contents, /*endless=*/false);
  IngestRequest request;
  request.source_fd = pipe.read_end->get();
  request.expected = DigestOf(contents);
  request.expected_size = contents.size();
  StagedBlob staged;
  ASSERT_TRUE(store_.Ingest(request, &staged).ok());
  ASSERT_TRUE(CommitOf(store_, &staged).ok());
  EXPECT_TRUE(ReadFile(store_.BlobPath(DigestOf(contents))) == contents);
}

TEST_F(BlobStoreTest, IngestsFromANonBlockingPipe) {
  const std::string contents = RandomBytes(2 * 1024 * 1024, 17);
  Pipe pipe;
  ASSERT_EQ(::fcntl(pipe.read_end->get(), F_SETFL, O_NONBLOCK), 0);
  PipeFeeder feeder(&pipe, contents, /*endless=*/false);
  IngestRequest request;
  request.source_fd = pipe.read_end->get();
  request.expected = DigestOf(contents);
  StagedBlob staged;
  ASSERT_TRUE(store_.Ingest(request, &staged).ok());
  EXPECT_EQ(staged.size(), contents.size());
}

TEST_F(BlobStoreTest, SilentPipeTimesOut) {
  Pipe pipe;
  ASSERT_EQ(::write(pipe.write_end->get(), "a few bytes", 11), 11);  // then silence
  IngestRequest request;
  request.source_fd = pipe.read_end->get();
  request.expected = DigestOf("a few bytes and more");
  request.idle_timeout_ms = 200;
  StagedBlob staged;
  Status s = store_.Ingest(request, &staged);
  EXPECT_EQ(s.code(), Code::kCancelled);
  EXPECT_THAT(s.message(), HasSubstr("no data from the source for 0.2 seconds"));
  EXPECT_THAT(IngestFiles(), IsEmpty());
  EXPECT_THAT(Blobs(), IsEmpty());
}

TEST_F(BlobStoreTest, CancelledBeforeStartReadsNothing) {
  const std::string contents = "never read";
  Fd fd(OpenSource(contents));
  std::atomic<bool> cancelled{true};
  IngestRequest request;
  request.source_fd = fd.get();
  request.expected = DigestOf(contents);
  request.cancelled = &cancelled;
  StagedBlob staged;
  Status s = store_.Ingest(request, &staged);
  EXPECT_EQ(s.code(), Code::kCancelled);
  EXPECT_THAT(s.message(), HasSubstr("cancelled"));
  EXPECT_EQ(OffsetOf(fd.get()), 0);
  EXPECT_THAT(IngestFiles(), IsEmpty());
}

TEST_F(BlobStoreTest, CancellingStopsAnIngestWaitingForData) {
  // The idle timeout is long: only the flag can end this ingest in time.
  Pipe pipe;
  ASSERT_EQ(::write(pipe.write_end->get(), "partial", 7), 7);
  std::atomic<bool> cancelled{false};
  IngestRequest request;
  request.source_fd = pipe.read_end->get();
  request.expected = DigestOf("partial and the rest");
  request.cancelled = &cancelled;
  request.idle_timeout_ms = 600'000;
  Status s;
  std::thread ingest([&] {
    StagedBlob staged;
    s = store_.Ingest(request, &staged);
  });
  // Wait until the ingest has consumed what was there, then cancel.
  while (IngestFiles().empty()) std::this_thread::yield();
  cancelled = true;
  ingest.join();
  EXPECT_EQ(s.code(), Code::kCancelled);
  EXPECT_THAT(IngestFiles(), IsEmpty());
}

TEST_F(BlobStoreTest, RefusesAWriteOnlyDescriptor) {
  const std::string path = dir_.Join("wo");
  WriteFile(path, "data");
  Fd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  ASSERT_GE(fd.get(), 0);
  IngestRequest request;
  request.source_fd = fd.get();
  request.expected = DigestOf("data");
  StagedBlob staged;
  Status s = store_.Ingest(request, &staged);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("writing only"));

  Pipe pipe;
  request.source_fd = pipe.write_end->get();
  EXPECT_EQ(store_.Ingest(request, &staged).code(), Code::kInvalidArgument);
  EXPECT_THAT(IngestFiles(), IsEmpty());
}

TEST_F(BlobStoreTest, RefusesADirectoryDescriptor) {
  Fd fd(::open(dir_.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ASSERT_GE(fd.get(), 0);
  IngestRequest request;
  request.source_fd = fd.get();
  request.expected = DigestOf("");
  StagedBlob staged;
  Status s = store_.Ingest(request, &staged);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_EQ(s.message(), "source descriptor is a directory");
  EXPECT_THAT(IngestFiles(), IsEmpty());
}

TEST_F(BlobStoreTest, RefusesAClosedDescriptor) {
  IngestRequest request;
  request.source_fd = -1;
  request.expected = DigestOf("");
  StagedBlob staged;
  EXPECT_EQ(store_.Ingest(request, &staged).code(), Code::kInvalidArgument);
}

TEST_F(BlobStoreTest, RefusesAHugeExpectedSize) {
  Fd fd(OpenSource("small"));
  IngestRequest request;
  request.source_fd = fd.get();
  request.expected = DigestOf("small");
  request.expected_size = uint64_t{1} << 60;
  StagedBlob staged;
  Status s = store_.Ingest(request, &staged);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr(std::to_string(uint64_t{1} << 60) + " bytes"));
  EXPECT_THAT(s.message(), HasSubstr("1 PiB"));
  EXPECT_EQ(OffsetOf(fd.get()), 0);
}

TEST_F(BlobStoreTest, RefusesAtOnceWhatCannotFit) {
  uint64_t free_bytes = 0;
  ASSERT_TRUE(Env::Default()->FreeSpace(root_, &free_bytes).ok());
  ASSERT_LT(free_bytes, BlobStore::kMaxFileSize) << "test needs a disk smaller than 1 PiB";
  Fd fd(OpenSource("small"));
  IngestRequest request;
  request.source_fd = fd.get();
  request.expected = DigestOf("small");
  request.expected_size = BlobStore::kMaxFileSize;
  StagedBlob staged;
  Status s = store_.Ingest(request, &staged);
  EXPECT_EQ(s.code(), Code::kNoSpace);
  EXPECT_THAT(s.message(), HasSubstr(root_));
  EXPECT_EQ(OffsetOf(fd.get()), 0);
  EXPECT_THAT(IngestFiles(), IsEmpty());
}

TEST_F(BlobStoreTest, FullDiskGivesNoSpaceAndLeavesNothing) {
  FaultInjectionEnv env(Env::Default());
  BlobStore store(&env, root_);
  ASSERT_TRUE(InitOf(store).ok());
  env.fail_append_after = 1;  // the second buffer hits ENOSPC
  const std::string contents = RandomBytes(3 * 1024 * 1024, 19);
  StagedBlob staged;
  Status s = IngestString(contents, DigestOf(contents), contents.size(), &staged, &store);
  EXPECT_EQ(s.code(), Code::kNoSpace);
  EXPECT_THAT(s.message(), HasSubstr(IngestDir()));
  EXPECT_TRUE(staged.path().empty());
  EXPECT_THAT(IngestFiles(), IsEmpty());
  EXPECT_THAT(Blobs(), IsEmpty());
}

TEST_F(BlobStoreTest, FailedFsyncStoresNothing) {
  FaultInjectionEnv env(Env::Default());
  BlobStore store(&env, root_);
  ASSERT_TRUE(InitOf(store).ok());
  env.fail_sync = true;
  const std::string contents = RandomBytes(10'000, 23);
  StagedBlob staged;
  Status s = IngestString(contents, DigestOf(contents), contents.size(), &staged, &store);
  EXPECT_EQ(s.code(), Code::kIOError);
  EXPECT_THAT(s.message(), HasSubstr("fsync"));
  EXPECT_TRUE(staged.path().empty());
  EXPECT_THAT(IngestFiles(), IsEmpty());
  EXPECT_THAT(Blobs(), IsEmpty());
}

// Real files whose early flush (every 1 MiB) fails with EIO, as a disk
// failing in the middle of a large store would.
class FailingEarlyFlushEnv : public EnvWrapper {
 public:
  using EnvWrapper::EnvWrapper;
  Status NewWritableFile(const std::string& path, mode_t mode,
                         std::unique_ptr<WritableFile>* out) override {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) return Status::FromErrno("create " + path, errno);
    PosixFileOptions options;
    options.early_flush_bytes = 1 << 20;
    options.datasync = [](int) {
      errno = EIO;
      return -1;
    };
    *out = NewPosixWritableFile(path, fd, options);
    return Status::OK();
  }
};

TEST_F(BlobStoreTest, FailedEarlyFlushStoresNothing) {
  FailingEarlyFlushEnv env(Env::Default());
  BlobStore store(&env, root_);
  ASSERT_TRUE(InitOf(store).ok());
  const std::string contents = RandomBytes(5 * 1024 * 1024, 31);
  StagedBlob staged;
  Status s = IngestString(contents, DigestOf(contents), contents.size(), &staged, &store);
  EXPECT_EQ(s.code(), Code::kIOError);
  EXPECT_THAT(s.message(), HasSubstr("fdatasync"));
  EXPECT_THAT(s.message(), HasSubstr(IngestDir()));
  EXPECT_TRUE(staged.path().empty());
  EXPECT_THAT(IngestFiles(), IsEmpty());
  EXPECT_THAT(Blobs(), IsEmpty());
}

TEST_F(BlobStoreTest, FailedRenamePublishesNothingAndCanBeRetried) {
  FaultInjectionEnv env(Env::Default());
  BlobStore store(&env, root_);
  ASSERT_TRUE(InitOf(store).ok());
  const std::string contents = RandomBytes(10'000, 29);
  const Digest digest = DigestOf(contents);
  {
    StagedBlob staged;
    ASSERT_TRUE(IngestString(contents, digest, contents.size(), &staged, &store).ok());
    env.fail_rename = true;
    Status s = CommitOf(store, &staged);
    EXPECT_EQ(s.code(), Code::kIOError);
    EXPECT_FALSE(store.Contains(digest));
    EXPECT_THAT(Blobs(), IsEmpty());
    EXPECT_FALSE(staged.path().empty());  // still staged, still owned

    env.fail_rename = false;
    ASSERT_TRUE(CommitOf(store, &staged).ok());
    EXPECT_TRUE(store.Contains(digest));
  }
  {
    const std::string other = RandomBytes(10'000, 31);
    StagedBlob staged;
    ASSERT_TRUE(IngestString(other, DigestOf(other), other.size(), &staged, &store).ok());
    env.fail_rename = true;
    EXPECT_FALSE(CommitOf(store, &staged).ok());
  }  // the uncommitted file goes with its StagedBlob
  EXPECT_THAT(IngestFiles(), IsEmpty());
  EXPECT_THAT(Blobs(), ElementsAre(digest));
}

TEST_F(BlobStoreTest, UncommittedStagedBlobRemovesItsFile) {
  const std::string contents = "staged only";
  std::string path;
  {
    StagedBlob staged;
    ASSERT_TRUE(IngestString(contents, DigestOf(contents), contents.size(), &staged).ok());
    path = staged.path();
    EXPECT_TRUE(Env::Default()->FileExists(path));
  }
  EXPECT_FALSE(Env::Default()->FileExists(path));
  EXPECT_THAT(IngestFiles(), IsEmpty());
  EXPECT_THAT(Blobs(), IsEmpty());
}

TEST_F(BlobStoreTest, MovingAStagedBlobMovesOwnership) {
  const std::string contents = "moved";
  StagedBlob source;
  ASSERT_TRUE(IngestString(contents, DigestOf(contents), contents.size(), &source).ok());
  const std::string path = source.path();
  StagedBlob moved(std::move(source));
  EXPECT_TRUE(source.path().empty());  // NOLINT(bugprone-use-after-move): defined as empty
  EXPECT_EQ(moved.path(), path);
  EXPECT_EQ(moved.digest(), DigestOf(contents));
  EXPECT_EQ(moved.size(), contents.size());
  { StagedBlob gone = std::move(source); }  // an empty one removes nothing
  EXPECT_TRUE(Env::Default()->FileExists(path));

  // Assigning over a staged blob drops the file it held.
  StagedBlob other;
  ASSERT_TRUE(IngestString("other", DigestOf("other"), 5, &other).ok());
  const std::string other_path = other.path();
  other = std::move(moved);
  EXPECT_FALSE(Env::Default()->FileExists(other_path));
  EXPECT_EQ(other.path(), path);
  ASSERT_TRUE(CommitOf(store_, &other).ok());
  EXPECT_THAT(Blobs(), ElementsAre(DigestOf(contents)));
  EXPECT_THAT(IngestFiles(), IsEmpty());
}

TEST_F(BlobStoreTest, OpenAndRemoveMissingBlobsAreNotFound) {
  const Digest digest = DigestOf("absent");
  int fd = -1;
  Status s = store_.OpenBlob(digest, &fd, nullptr);
  EXPECT_EQ(s.code(), Code::kNotFound);
  EXPECT_THAT(s.message(), HasSubstr(digest.ToString()));
  EXPECT_EQ(fd, -1);
  EXPECT_EQ(store_.BeginRemove(digest).code(), Code::kNotFound);
  EXPECT_FALSE(store_.Contains(digest));
}

TEST_F(BlobStoreTest, RemovalMovesIntoIngestThenUnlinks) {
  ASSERT_TRUE(Store("first").ok());
  ASSERT_TRUE(Store("second").ok());
  ASSERT_TRUE(store_.BeginRemove(DigestOf("first")).ok());
  EXPECT_FALSE(store_.Contains(DigestOf("first")));
  EXPECT_THAT(IngestFiles(), ElementsAre(DigestOf("first").hex() + ".deleting"));
  ASSERT_TRUE(store_.FinishRemove(DigestOf("first")).ok());
  EXPECT_THAT(IngestFiles(), IsEmpty());
  EXPECT_THAT(Blobs(), ElementsAre(DigestOf("second")));
  EXPECT_EQ(store_.BeginRemove(DigestOf("first")).code(), Code::kNotFound);
}

TEST_F(BlobStoreTest, UndoRemovePutsTheBlobBack) {
  ASSERT_TRUE(Store("kept").ok());
  ASSERT_TRUE(store_.BeginRemove(DigestOf("kept")).ok());
  ASSERT_TRUE(store_.UndoRemove(DigestOf("kept")).ok());
  EXPECT_EQ(ReadFile(store_.BlobPath(DigestOf("kept"))), "kept");
  EXPECT_THAT(IngestFiles(), IsEmpty());
}

TEST_F(BlobStoreTest, InitReportsAnInterruptedRemoval) {
  ASSERT_TRUE(Store("half deleted").ok());
  ASSERT_TRUE(store_.BeginRemove(DigestOf("half deleted")).ok());
  BlobStore restarted(Env::Default(), root_);
  InitReport report;
  ASSERT_TRUE(restarted.Init(&report).ok());
  EXPECT_THAT(report.interrupted_removals, ElementsAre(DigestOf("half deleted")));
  // Kept until the engine has dropped the record: a crash during this
  // start must still find it.
  EXPECT_THAT(IngestFiles(), ElementsAre(DigestOf("half deleted").hex() + ".deleting"));
  ASSERT_TRUE(restarted.FinishRemove(DigestOf("half deleted")).ok());
  EXPECT_THAT(IngestFiles(), IsEmpty());
}

TEST_F(BlobStoreTest, ScanQuarantinesWhatIsNotABlob) {
  ASSERT_TRUE(Store("one").ok());
  ASSERT_TRUE(Store("two").ok());
  const std::string blobs = root_ + "/blobs/sha256";
  const std::string hex = DigestOf("three").hex();
  ASSERT_TRUE(Env::Default()->CreateDirs(blobs + "/" + hex.substr(0, 2), 0700).ok());
  ASSERT_TRUE(Env::Default()->CreateDirs(blobs + "/zz", 0700).ok());
  WriteFile(blobs + "/" + hex.substr(0, 2) + "/not-a-digest", "");
  WriteFile(blobs + "/" + hex.substr(0, 2) + "/" + hex + ".part", "");
  std::string upper = hex;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  WriteFile(blobs + "/" + hex.substr(0, 2) + "/" + upper, "");
  WriteFile(blobs + "/zz/" + hex, "");  // a valid name in the wrong fan-out directory
  WriteFile(blobs + "/loose-file", "");
  std::vector<Digest> expected = {DigestOf("one"), DigestOf("two")};
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(Blobs(), expected);
  // Moved aside, not deleted: five strays (zz/ whole, with its one file).
  EXPECT_EQ(FilesBelow(root_ + "/quarantine").size(), 5u);
  EXPECT_EQ(Blobs(), expected);
}

std::string ModelsDir() {
  // ctest sets COSTORE_SOURCE_DIR; run by hand, the binary finds the
  // checkout from where this file was compiled.
  if (const char* source_dir = std::getenv("COSTORE_SOURCE_DIR"); source_dir && *source_dir) {
    return std::string(source_dir) + "/../shared/data/models/";
  }
  std::string here = __FILE__;
  return here.substr(0, here.rfind("/tests/daemon/engine/")) + "/../shared/data/models/";
}

TEST_F(BlobStoreTest, StoresTheRealModelUnderItsKnownDigest) {
  const std::string path = ModelsDir() + "silero_vad.onnx";
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_GE(fd.get(), 0) << "the model file " << path
                         << " is missing; it is part of the shared test data (set "
                            "COSTORE_SOURCE_DIR to the checkout next to shared/)";
  Digest expected;
  ASSERT_TRUE(Digest::Parse(
                  "sha256:1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3",
                  &expected)
                  .ok());
  IngestRequest request;
  request.source_fd = fd.get();
  request.expected = expected;
  request.expected_size = 2'327'524;
  StagedBlob staged;
  Status s = store_.Ingest(request, &staged);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_TRUE(CommitOf(store_, &staged).ok());
  EXPECT_THAT(Blobs(), ElementsAre(expected));
  EXPECT_EQ(ReadFile(store_.BlobPath(expected)).size(), 2'327'524u);
  EXPECT_TRUE(ReadFile(store_.BlobPath(expected)) == ReadFile(path));
}

}  // namespace
}  // namespace costore
