// The Engine crashed at every Env operation of a workload (stores, a store
// of a file already there, deletes, a restart), one crash per run, as a
// power cut would leave the disk: after each crash the engine is destroyed,
// CrashEnv drops whatever was not durable (see crash_env.h for the model),
// and a new Engine on Env::Default() must open the store and serve every
// store that was acknowledged before the crash, byte for byte, serve
// nothing damaged, list exactly the blobs on disk, and leave ingest/ empty.
//
// The SQLite catalog does not go through Env, so CrashEnv cannot fail its
// writes. A dead process writes nothing, though, so the catalog's files are
// copied at the moment of the crash (CrashEnv's crash hook) and put back
// after the drop: every transaction committed before the crash is kept and
// none after, as after a process crash. What a power cut takes from SQLite
// (a commit made with synchronous=NORMAL in WAL mode) is SQLite's
// durability, not modelled here. What is tested is the engine's ordering of
// its files against its catalog, and its start-up reconciliation.
//
// Each workload runs once uncrashed to count its N operations, then N+1
// times crashed after operation k = 0..N, under both models of CrashEnv
// (kPosix: a name is durable once its directory is synced; kJournaled:
// once anything is synced), on a new store and on one that already holds a
// file.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <iostream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>

#include "daemon/engine/engine.h"
#include "tests/daemon/engine/crash_env.h"
#include "tests/daemon/engine/engine_test_util.h"
#include "tests/daemon/engine/test_util.h"

namespace costore::test {
namespace {

const Principal kOwner{"/usr/bin/owner", "https://owner.example"};

// The first two hex digits of a digest: its fan-out directory.
std::string FanOut(const std::string& bytes) { return DigestText(bytes).substr(7, 2); }

// Bytes from a seed, chosen so that their digest's fan-out directory is
// `fan_out` (if not empty) and none of `avoid`.
std::string BytesWithFanOut(size_t size, uint32_t seed, const std::string& fan_out,
                            const std::set<std::string>& avoid = {}) {
  for (;; ++seed) {
    std::string bytes = RandomBytes(size, seed);
    const std::string mine = FanOut(bytes);
    if ((fan_out.empty() || mine == fan_out) && !avoid.count(mine)) return bytes;
  }
}

struct Step {
  enum Kind { kOpen, kStore, kDelete, kClose } kind;
  std::string bytes;  // kStore: what is stored; kDelete: what is deleted
  bool give_size = false;

  std::string Describe() const {
    switch (kind) {
      case kOpen:
        return "Engine::Open";
      case kStore:
        return "Store " + DigestText(bytes) + " (" + std::to_string(bytes.size()) + " bytes)";
      case kDelete:
        return "Delete " + DigestText(bytes);
      case kClose:
        return "~Engine";
    }
    return "";
  }
};

// What the store must hold after the crash, as far as the callers know.
struct Expected {
  std::map<std::string, std::string> bytes;  // every digest ever stored
  std::set<std::string> present;             // acknowledged stores, not deleted since
  std::set<std::string> absent;              // acknowledged deletes, not stored since
  std::set<std::string> either;              // the store or delete the crash cut off
};

// The catalog's files (catalog.db and SQLite's -wal and -shm beside it).
std::vector<std::filesystem::path> CatalogFiles(const std::string& dir) {
  std::vector<std::filesystem::path> out;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (entry.path().filename().string().rfind("catalog.db", 0) == 0) out.push_back(entry.path());
  }
  return out;
}

// Copies the catalog as a crash leaves it: at that moment.
void SnapshotCatalog(const std::string& root, const std::string& snapshot) {
  std::filesystem::create_directories(snapshot);
  for (const auto& path : CatalogFiles(root)) {
    // The wal-index (-shm) is rebuilt from the WAL when the database opens.
    if (path.filename().string().ends_with("-shm")) continue;
    std::filesystem::copy_file(path, snapshot + "/" + path.filename().string());
  }
}

void RestoreCatalog(const std::string& snapshot, const std::string& root) {
  // A store directory that was never made durable is gone, catalog and all.
  if (!std::filesystem::exists(root)) return;
  for (const auto& path : CatalogFiles(root)) std::filesystem::remove(path);
  for (const auto& path : CatalogFiles(snapshot)) {
    std::filesystem::copy_file(path, root + "/" + path.filename().string());
  }
}

std::string Join(const std::vector<std::string>& lines) {
  std::string out;
  for (const std::string& line : lines) out += "  " + line + "\n";
  return out;
}

class EngineCrashTest : public ::testing::TestWithParam<std::tuple<CrashEnv::Semantics, bool>> {
 protected:
  void SetUp() override {
    // Pipe feeders may outlive a store that the crash cut off.
    signal(SIGPIPE, SIG_IGN);
    // CrashEnv decides what is durable, not the disk: on a tmpfs the
    // engine's fsyncs cost nothing, and the runs take a fraction of the
    // time they take on a busy disk. The files are as real.
    if (::access("/dev/shm", W_OK) == 0) setenv("TMPDIR", "/dev/shm", 1);
    // Four files: a and b share a fan-out directory (the second store in it
    // finds the directory there), c and d each have one of their own.
    a_ = RandomBytes(1'500'000, 1);  // several Appends
    b_ = BytesWithFanOut(1000, 100, FanOut(a_));
    c_ = BytesWithFanOut(300'000, 200, "", {FanOut(a_)});
    d_ = BytesWithFanOut(5000, 300, "", {FanOut(a_), FanOut(c_)});
    existing_ = BytesWithFanOut(2000, 500, "", {FanOut(a_), FanOut(c_), FanOut(d_)});
  }

  CrashEnv::Semantics semantics() const { return std::get<0>(GetParam()); }
  bool existing_store() const { return std::get<1>(GetParam()); }

  std::vector<Step> Workload() const {
    return {
        {Step::kOpen, "", false},
        {Step::kStore, a_, true},
        {Step::kStore, b_, false},
        {Step::kStore, c_, true},
        {Step::kStore, a_, true},  // already there
        {Step::kDelete, b_, false},
        {Step::kClose, "", false},
        {Step::kOpen, "", false},  // the start-up path, after a clean stop
        {Step::kStore, d_, false},
        {Step::kDelete, c_, false},
        {Step::kStore, b_, true},  // deleted before, stored again
        {Step::kClose, "", false},
    };
  }

  // A store that already holds a file, made without CrashEnv (durable).
  void MakeExistingStore(const std::string& root, Expected* expected) {
    EngineOptions options;
    options.root = root;
    std::unique_ptr<Engine> engine;
    Status s = Engine::Open(options, &engine);
    ASSERT_TRUE(s.ok()) << s.ToString();
    s = StoreBytes(engine.get(), kOwner, existing_, StoreRequest{}, nullptr);
    ASSERT_TRUE(s.ok()) << s.ToString();
    expected->bytes[DigestText(existing_)] = existing_;
    expected->present.insert(DigestText(existing_));
  }

  // Runs the workload on `env` until it ends or the crash stops it.
  // Returns the index of the step the crash cut off (-1: none).
  int RunWorkload(CrashEnv* env, const std::string& root, Expected* expected,
                  std::vector<int64_t>* step_starts = nullptr) {
    std::unique_ptr<Engine> engine;
    const std::vector<Step> steps = Workload();
    for (size_t i = 0; i < steps.size(); ++i) {
      const Step& step = steps[i];
      if (step_starts != nullptr) step_starts->push_back(env->operations());
      Status s;
      const std::string digest = step.bytes.empty() ? "" : DigestText(step.bytes);
      switch (step.kind) {
        case Step::kOpen: {
          EngineOptions options;
          options.root = root;
          options.env = env;
          s = Engine::Open(options, &engine);
          break;
        }
        case Step::kStore: {
          expected->bytes[digest] = step.bytes;
          StoreRequest request;
          if (step.give_size) request.size = step.bytes.size();
          s = StoreBytes(engine.get(), kOwner, step.bytes, request, nullptr);
          break;
        }
        case Step::kDelete:
          s = engine->Delete(digest);
          break;
        case Step::kClose:
          engine.reset();
          break;
      }
      // A call that returned after the crash was never answered: the
      // process died before it could (OK included: the last operations of a
      // store, such as reading the clock, cannot fail).
      const bool acknowledged = s.ok() && !env->crashed();
      if (step.kind == Step::kStore) {
        if (acknowledged) {
          expected->present.insert(digest);
          expected->absent.erase(digest);
        } else if (!expected->present.count(digest)) {
          // It may be there or not. (A store of a file that is there
          // leaves it there, crash or not.)
          expected->absent.erase(digest);
          expected->either.insert(digest);
        }
      } else if (step.kind == Step::kDelete) {
        if (acknowledged) {
          expected->present.erase(digest);
          expected->absent.insert(digest);
        } else if (expected->present.erase(digest)) {
          expected->either.insert(digest);
        }
      }
      if (!s.ok()) {
        EXPECT_TRUE(env->crashed()) << step.Describe() << " failed without a crash: " << s.ToString();
      }
      if (env->crashed()) return static_cast<int>(i);
    }
    return -1;
  }

  // The blobs under <root>/blobs/sha256/xx/, as digests.
  static std::set<std::string> BlobsOnDisk(const std::string& root) {
    std::set<std::string> out;
    for (const std::string& relative : FilesBelow(root + "/blobs/sha256")) {
      const size_t slash = relative.find('/');
      const std::string name = relative.substr(slash + 1);
      EXPECT_TRUE(slash == 2 && name.size() == 64 && name.compare(0, 2, relative.substr(0, 2)) == 0)
          << "unexpected file blobs/sha256/" << relative;
      out.insert("sha256:" + name);
    }
    return out;
  }

  static ino_t InodeOf(const std::string& path) {
    struct stat st {};
    return ::lstat(path.c_str(), &st) == 0 ? st.st_ino : 0;
  }

  static std::string BlobPath(const std::string& root, const std::string& digest) {
    const std::string hex = digest.substr(7);
    return root + "/blobs/sha256/" + hex.substr(0, 2) + "/" + hex;
  }

  // Opens the crashed store with Env::Default() and checks it, twice: as
  // the first start after the crash finds it, then after a restart.
  //
  // `touched`: inodes whose ctime the simulation changed (CrashEnv moved
  // or linked them back). The engine takes a blob whose inode changed
  // after commit for damaged, quarantines it and repairs it from the
  // quarantined copy; a real crash does not change the ctime, so for these
  // blobs alone the first open may miss, and the repair must bring them
  // back.
  void Check(const std::string& root, const Expected& expected, const std::set<ino_t>& touched) {
    std::mutex mu;
    std::condition_variable cv;
    std::set<std::string> verified;
    EngineOptions options;
    options.root = root;
    options.on_change = [&](const ChangeEvent& event) {
      std::lock_guard<std::mutex> lock(mu);
      if (event.what == "verified") verified.insert(event.digest);
      cv.notify_all();
    };
    {
      SCOPED_TRACE("the first start after the crash");
      std::unique_ptr<Engine> engine;
      Status s = Engine::Open(options, &engine);
      ASSERT_TRUE(s.ok()) << "the store does not open after the crash: " << s.ToString();
      std::vector<FileRecord> files;
      CheckListing(engine.get(), root, expected, &files);
      for (const FileRecord& file : files) {
        const std::string digest = file.digest.ToString();
        const bool was_touched = touched.count(InodeOf(BlobPath(root, digest))) != 0;
        std::string bytes;
        s = OpenBytes(engine.get(), digest, &bytes);
        if (s.ok()) {
          EXPECT_TRUE(bytes == expected.bytes.at(digest)) << "served bytes differ from the stored ones: " << digest;
          continue;
        }
        FileRecord record;
        const bool damaged = engine->Stat(digest, &record).ok() && record.damaged();
        if (damaged && was_touched) {
          ++repairs_;
          // Repaired on a thread of the engine: waited for before it goes.
          std::unique_lock<std::mutex> lock(mu);
          EXPECT_TRUE(cv.wait_for(lock, std::chrono::seconds(20), [&] { return verified.count(digest) != 0; }))
              << digest << " was found damaged (" << record.problem << ") and not repaired";
        } else if (damaged) {
          ADD_FAILURE() << digest << " was found damaged when opened: " << record.problem;
        } else {
          // Not acknowledged: a blob re-indexed after the crash has no
          // known owner, and only its owners may read it.
          EXPECT_FALSE(expected.present.count(digest))
              << "acknowledged store not served: " << digest << ": " << s.ToString();
        }
      }
    }
    SCOPED_TRACE("after a restart");
    std::unique_ptr<Engine> engine;
    Status s = Engine::Open(options, &engine);
    ASSERT_TRUE(s.ok()) << "the store does not open after a restart: " << s.ToString();
    std::vector<FileRecord> files;
    CheckListing(engine.get(), root, expected, &files);
    if (std::filesystem::exists(root + "/quarantine")) {
      EXPECT_TRUE(FilesBelow(root + "/quarantine").empty())
          << "quarantined after a crash: " << ::testing::PrintToString(FilesBelow(root + "/quarantine"));
    }
    for (const std::string& digest : expected.present) {
      std::string bytes;
      s = OpenBytes(engine.get(), digest, &bytes);
      EXPECT_TRUE(s.ok()) << "acknowledged store not served: " << digest << ": " << s.ToString();
      EXPECT_TRUE(!s.ok() || bytes == expected.bytes.at(digest)) << "served bytes differ from the stored ones: " << digest;
    }
    // Nothing else is served but the stored bytes (or nothing).
    for (const auto& [digest, stored] : expected.bytes) {
      std::string bytes;
      if (OpenBytes(engine.get(), digest, &bytes).ok()) {
        EXPECT_TRUE(bytes == stored) << "served bytes differ from the stored ones: " << digest;
      }
    }
  }

  // What both starts must see: ingest/ empty, List = the blobs on disk,
  // nothing damaged, every acknowledged store there, no acknowledged
  // delete undone, and every blob on disk holding what its name says.
  void CheckListing(Engine* engine, const std::string& root, const Expected& expected,
                    std::vector<FileRecord>* files) {
    EXPECT_TRUE(FilesBelow(root + "/ingest").empty())
        << "left in ingest/: " << ::testing::PrintToString(FilesBelow(root + "/ingest"));
    Status s = engine->List(files);
    ASSERT_TRUE(s.ok()) << s.ToString();
    std::set<std::string> listed;
    for (const FileRecord& file : *files) {
      const std::string digest = file.digest.ToString();
      listed.insert(digest);
      EXPECT_FALSE(file.damaged()) << digest << " is damaged: " << file.problem;
      auto it = expected.bytes.find(digest);
      if (it == expected.bytes.end()) {
        ADD_FAILURE() << "listed but never stored: " << digest;
      } else {
        EXPECT_EQ(file.size, it->second.size()) << digest;
      }
    }
    const std::set<std::string> on_disk = BlobsOnDisk(root);
    EXPECT_EQ(listed, on_disk) << "List and the blobs on disk differ";
    for (const std::string& digest : expected.present) {
      EXPECT_TRUE(listed.count(digest)) << "acknowledged store lost: " << digest;
    }
    for (const std::string& digest : expected.absent) {
      EXPECT_FALSE(listed.count(digest) || on_disk.count(digest)) << "acknowledged delete undone: " << digest;
    }
    for (const std::string& digest : on_disk) {
      const std::string bytes = ReadFile(BlobPath(root, digest));
      EXPECT_EQ(DigestText(bytes), digest) << "a blob on disk is damaged (" << bytes.size() << " bytes)";
    }
    // A file neither listed nor on disk is not served.
    for (const auto& [digest, bytes] : expected.bytes) {
      if (listed.count(digest)) continue;
      std::string ignored;
      EXPECT_EQ(OpenBytes(engine, digest, &ignored).code(), Code::kNotFound) << digest;
    }
  }

  static Status OpenBytes(Engine* engine, const std::string& digest, std::string* bytes) {
    int fd = -1;
    FileInfo info;
    Status s = engine->OpenFile(kOwner, digest, &fd, &info);
    if (s.ok()) {
      *bytes = ReadFd(fd);
      close(fd);
    }
    return s;
  }

  // What a crashed run left: where, and what the crash changed.
  struct Crash {
    int step = -1;  // the step it cut off (-1: none)
    std::vector<std::string> report;
    std::set<ino_t> touched;
    // What the crash left, to tell two crash points apart: every file
    // (random names made alike) with its size, and the catalog's bytes.
    std::string signature;
  };

  static std::string Signature(const std::string& root) {
    std::string out;
    for (std::string relative : FilesBelow(root)) {
      const std::string path = root + "/" + relative;
      if (relative.rfind("catalog.db", 0) == 0) {
        out += relative + " " + DigestText(ReadFile(path)) + "\n";
        continue;
      }
      if (relative.ends_with(".part")) relative = relative.substr(0, relative.rfind('/') + 1) + "*.part";
      std::error_code ec;
      out += relative + " " + std::to_string(std::filesystem::file_size(path, ec)) + "\n";
    }
    return out;
  }

  // Runs the workload in `dir` (a store at dir/store, made first if the
  // test wants an existing one), crashed after operation `k` (-1: never),
  // and leaves the disk and the catalog as the crash would. With `names`,
  // records every operation's name; with `step_starts`, the operation
  // count before each step.
  Crash RunCrashed(const TempDir& dir, int64_t k, Expected* expected, std::vector<std::string>* names = nullptr,
                   std::vector<int64_t>* step_starts = nullptr) {
    Crash crash;
    const std::string root = dir.Join("store");
    if (existing_store()) {
      MakeExistingStore(root, expected);
      if (HasFatalFailure()) return crash;
    }
    CrashEnv env(Env::Default(), dir.Join("crash-scratch"), semantics());
    env.CrashAfter(k);
    env.set_record_operations(names != nullptr);
    const std::string snapshot = dir.Join("catalog-at-crash");
    env.set_crash_hook([&] { SnapshotCatalog(root, snapshot); });
    crash.step = RunWorkload(&env, root, expected, step_starts);
    if (names != nullptr) {
      for (int64_t i = 1; i <= env.operations(); ++i) names->push_back(env.Operation(i));
    }
    Status dropped = env.DropUnsyncedData(&crash.report);
    EXPECT_TRUE(dropped.ok()) << dropped.ToString() << "\n" << Join(crash.report);
    RestoreCatalog(snapshot, root);
    crash.touched = env.touched_inodes();
    crash.signature = Signature(root);
    return crash;
  }

  // Opens the engine on what a crash left, crashed after operation `k` of
  // its start-up (-1: never); *names gets the operations it made.
  Crash CrashStartUp(const TempDir& dir, int64_t k, std::vector<std::string>* names) {
    Crash crash;
    const std::string root = dir.Join("store");
    CrashEnv env(Env::Default(), dir.Join("crash-scratch-2"), semantics());
    env.CrashAfter(k);
    env.set_record_operations(true);
    const std::string snapshot = dir.Join("catalog-at-crash-2");
    env.set_crash_hook([&] { SnapshotCatalog(root, snapshot); });
    {
      EngineOptions options;
      options.root = root;
      options.env = &env;
      std::unique_ptr<Engine> engine;
      Status s = Engine::Open(options, &engine);
      EXPECT_TRUE(s.ok() || env.crashed()) << "start-up failed without a crash: " << s.ToString();
    }
    names->clear();
    for (int64_t i = 1; i <= env.operations(); ++i) names->push_back(env.Operation(i));
    Status dropped = env.DropUnsyncedData(&crash.report);
    EXPECT_TRUE(dropped.ok()) << dropped.ToString() << "\n" << Join(crash.report);
    RestoreCatalog(snapshot, root);
    crash.touched = env.touched_inodes();
    return crash;
  }

  std::string Where(int64_t k, const std::vector<std::string>& names, const Crash& crash) const {
    std::ostringstream where;
    where << "crash after operation " << k << " of " << names.size() << " ("
          << (k == 0 ? std::string("none") : names[static_cast<size_t>(k - 1)]) << "), so that operation " << k + 1
          << " (" << (static_cast<size_t>(k) < names.size() ? names[static_cast<size_t>(k)] : "none")
          << ") failed"
          << (crash.step < 0 ? std::string() : ", in step " + Workload()[static_cast<size_t>(crash.step)].Describe())
          << "; the crash dropped:\n"
          << Join(crash.report);
    return where.str();
  }

  std::string a_, b_, c_, d_, existing_;
  int repairs_ = 0;  // blobs whose ctime the simulation changed, repaired
};

TEST_P(EngineCrashTest, CrashAtEveryOperation) {
  // The uncrashed run: how many operations, and which.
  std::vector<std::string> names;
  {
    TempDir dir;
    Expected expected;
    Crash crash = RunCrashed(dir, -1, &expected, &names);
    ASSERT_EQ(crash.step, -1);
    SCOPED_TRACE("uncrashed run, then a crash after its last operation; the crash dropped:\n" + Join(crash.report));
    Check(dir.Join("store"), expected, crash.touched);
    if (HasFailure()) return;
  }
  const int64_t total = static_cast<int64_t>(names.size());
  ASSERT_GT(total, 20);

  int failures = 0, cut_calls = 0;
  for (int64_t k = 0; k < total; ++k) {
    TempDir dir;
    Expected expected;
    Crash crash = RunCrashed(dir, k, &expected);
    if (HasFatalFailure()) return;
    SCOPED_TRACE(Where(k, names, crash));
    const bool failed_before = HasFailure();
    Check(dir.Join("store"), expected, crash.touched);
    if (HasFailure() && !failed_before && ++failures >= 3) {
      ADD_FAILURE() << "stopping after 3 failing crash points";
      return;
    }
    if (crash.step >= 0 && Workload()[static_cast<size_t>(crash.step)].kind != Step::kOpen) ++cut_calls;
  }
  std::cout << total << " crash points; " << cut_calls << " cut a store or delete off; " << repairs_
            << " times a blob whose ctime the simulation changed was repaired" << std::endl;
}

// A second crash during the start-up that recovers from the first: for
// every crash point of a Delete, and of a Store from the moment its blob
// is published, every operation of the next Engine::Open is crashed in
// turn (what that start-up finishes, an interrupted removal, a blob
// without a record, must survive being interrupted itself). About a
// thousand runs: on an existing store, with the journaled model only (the
// POSIX model takes as long again).
class EngineRecoveryCrashTest : public EngineCrashTest {};

TEST_P(EngineRecoveryCrashTest, CrashAgainDuringTheRecovery) {
  std::vector<std::string> names;
  std::vector<int64_t> step_starts;
  {
    TempDir dir;
    Expected expected;
    RunCrashed(dir, -1, &expected, &names, &step_starts);
    if (HasFailure()) return;
  }
  const std::vector<Step> steps = Workload();
  std::vector<int64_t> first_crashes;
  for (size_t i = 0; i < steps.size(); ++i) {
    const int64_t begin = step_starts[i];
    const int64_t end = i + 1 < steps.size() ? step_starts[i + 1] : static_cast<int64_t>(names.size());
    bool publishing = false;
    for (int64_t k = begin; k < end; ++k) {
      publishing = publishing || (steps[i].kind == Step::kStore &&
                                  names[static_cast<size_t>(k)].rfind("RenameNoReplace", 0) == 0);
      if (steps[i].kind == Step::kDelete || publishing) first_crashes.push_back(k);
    }
  }
  ASSERT_FALSE(first_crashes.empty());

  int failures = 0, runs = 0, distinct = 0;
  std::set<std::string> seen;
  for (int64_t k1 : first_crashes) {
    // How many operations the recovery makes from this state; a state an
    // earlier crash point left already is not crashed again.
    std::vector<std::string> recovery;
    {
      TempDir dir;
      Expected expected;
      Crash first = RunCrashed(dir, k1, &expected);
      if (!seen.insert(first.signature).second) continue;
      ++distinct;
      CrashStartUp(dir, -1, &recovery);
    }
    const int64_t recovery_operations = static_cast<int64_t>(recovery.size());
    for (int64_t k2 = 0; k2 < recovery_operations; ++k2) {
      TempDir dir;
      Expected expected;
      Crash first = RunCrashed(dir, k1, &expected);
      std::vector<std::string> ignored;
      Crash second = CrashStartUp(dir, k2, &ignored);
      if (HasFatalFailure()) return;
      ++runs;
      second.step = -1;
      SCOPED_TRACE("first " + Where(k1, names, first) + "then Engine::Open on that: " + Where(k2, recovery, second));
      std::set<ino_t> touched = first.touched;
      touched.insert(second.touched.begin(), second.touched.end());
      const bool failed_before = HasFailure();
      Check(dir.Join("store"), expected, touched);
      if (HasFailure() && !failed_before && ++failures >= 3) {
        ADD_FAILURE() << "stopping after 3 failing crash points";
        return;
      }
    }
  }
  std::cout << first_crashes.size() << " first crash points leaving " << distinct << " different states, " << runs
            << " crashed recoveries" << std::endl;
}

INSTANTIATE_TEST_SUITE_P(
    Models, EngineCrashTest,
    ::testing::Combine(::testing::Values(CrashEnv::Semantics::kPosix, CrashEnv::Semantics::kJournaled),
                       ::testing::Bool()),
    [](const ::testing::TestParamInfo<EngineCrashTest::ParamType>& param_info) {
      return std::string(std::get<0>(param_info.param) == CrashEnv::Semantics::kPosix ? "Posix" : "Journaled") +
             (std::get<1>(param_info.param) ? "ExistingStore" : "NewStore");
    });

INSTANTIATE_TEST_SUITE_P(Models, EngineRecoveryCrashTest,
                         ::testing::Values(std::make_tuple(CrashEnv::Semantics::kJournaled, true)),
                         [](const ::testing::TestParamInfo<EngineRecoveryCrashTest::ParamType>&) {
                           return std::string("JournaledExistingStore");
                         });

}  // namespace
}  // namespace costore::test
