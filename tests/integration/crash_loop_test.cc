// The real costored, killed with SIGKILL at random moments while several
// clients store, store again and delete files, and restarted each time.
// After every restart the store must hold every file whose Store was
// acknowledged, byte for byte; no file whose Delete was acknowledged; a
// file that was in flight either not at all or whole; exactly the files
// Manager1.List lists under blobs/sha256/xx/ (no record without a blob, no
// blob without a record); and nothing in ingest/.
//
// Most kills come at a random moment; a quarter are aimed just after a
// Delete is sent (a delete takes milliseconds, and a random kill seldom
// lands in one); one restart in five is itself killed a few milliseconds
// in, in the middle of start-up (the cleanup of ingest/, the
// reconciliation of catalog and disk). A store cut off by a kill whose
// blob was published but not recorded is re-indexed at start with no
// known owner; the test grants itself that file before reading it.
//
// A SIGKILL is a process crash, not a power cut: the page cache survives,
// so this checks the daemon's ordering of rename, record and reply, and
// its start-up reconciliation, not its fsyncs (tests/daemon/engine/
// engine_crash_test.cc drops unsynced data).
//
// Replay: the seed is printed at the start (and recorded as the test's
// "seed" property). COSTORE_CRASH_SEED=<seed> repeats the same sizes,
// contents, jobs, deletes and kill delays; where within the daemon a kill
// lands still depends on timing. COSTORE_CRASH_ROUNDS=<n> changes the
// number of kills (a longer soak).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

#include "costore-ipc/names.h"
#include "tests/integration/daemon_harness.h"

namespace costore::test {
namespace {

constexpr uint64_t kMiB = uint64_t{1} << 20;
constexpr int kDefaultRounds = 150;
constexpr int kStoreThreads = 3;
// Deletes keep the files alive under this many bytes, so that hashing all
// of them after every restart stays cheap.
constexpr uint64_t kLiveBytesBudget = 64 * kMiB;
constexpr char kCostoreErrorPrefix[] = "io.github.costore.Error.";
constexpr char kNotFound[] = "io.github.costore.Error.NotFound";
constexpr char kNoDaemon[] = "org.freedesktop.DBus.Error.ServiceUnknown";

using Clock = std::chrono::steady_clock;

uint64_t SplitMix64(uint64_t* state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

std::string HexOf(const unsigned char* md, unsigned len) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 0xf];
  }
  return out;
}

// SHA-256, fed in pieces.
class Hasher {
 public:
  Hasher() : ctx_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr); }
  ~Hasher() { EVP_MD_CTX_free(ctx_); }
  Hasher(const Hasher&) = delete;
  Hasher& operator=(const Hasher&) = delete;
  void Update(const void* data, size_t size) { EVP_DigestUpdate(ctx_, data, size); }
  std::string Finish() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    EVP_DigestFinal_ex(ctx_, md, &len);
    return "sha256:" + HexOf(md, len);
  }

 private:
  EVP_MD_CTX* ctx_;
};

// The file a store sends: `size` bytes drawn from `seed`.
struct Spec {
  uint64_t seed = 0;
  uint64_t size = 0;
};

// Writes the spec's bytes into a memfd (a regular file to the daemon, no
// disk involved) and returns it at offset 0; *digest gets their SHA-256.
int MakeSource(const Spec& spec, std::string* digest) {
  int fd = memfd_create("costore-crash-source", MFD_CLOEXEC);
  if (fd < 0) return -1;
  std::vector<uint64_t> buffer(kMiB / sizeof(uint64_t));
  uint64_t state = spec.seed;
  Hasher hasher;
  for (uint64_t done = 0; done < spec.size;) {
    for (uint64_t& word : buffer) word = SplitMix64(&state);
    const size_t n = static_cast<size_t>(std::min<uint64_t>(kMiB, spec.size - done));
    hasher.Update(buffer.data(), n);
    for (size_t written = 0; written < n;) {
      ssize_t w = write(fd, reinterpret_cast<const char*>(buffer.data()) + written, n - written);
      if (w <= 0) {
        close(fd);
        return -1;
      }
      written += static_cast<size_t>(w);
    }
    done += n;
  }
  lseek(fd, 0, SEEK_SET);
  *digest = hasher.Finish();
  return fd;
}

// SHA-256 and length of what `fd` holds.
void HashFd(int fd, std::string* digest, uint64_t* size) {
  std::vector<char> buffer(kMiB);
  Hasher hasher;
  uint64_t offset = 0;
  for (;;) {
    ssize_t n = pread(fd, buffer.data(), buffer.size(), static_cast<off_t>(offset));
    if (n <= 0) break;
    hasher.Update(buffer.data(), static_cast<size_t>(n));
    offset += static_cast<uint64_t>(n);
  }
  *digest = hasher.Finish();
  *size = offset;
}

// Mostly small files, a few large: 1-64 MiB, sizes not aligned to anything.
uint64_t DrawSize(std::mt19937_64& rng) {
  const double p = std::uniform_real_distribution<double>(0, 1)(rng);
  uint64_t low = 1 * kMiB, high = 4 * kMiB;
  if (p >= 0.97) {
    low = 16 * kMiB;
    high = 64 * kMiB;
  } else if (p >= 0.82) {
    low = 4 * kMiB;
    high = 16 * kMiB;
  }
  return std::uniform_int_distribution<uint64_t>(low, high)(rng);
}

// How long a round runs before the kill: mostly spread over 0.4 s, some
// at once (the daemon has just started; the first stores are arriving).
std::chrono::milliseconds DrawKillDelay(std::mt19937_64& rng) {
  if (std::uniform_int_distribution<int>(0, 9)(rng) == 0) {
    return std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 30)(rng));
  }
  return std::chrono::milliseconds(std::uniform_int_distribution<int>(30, 400)(rng));
}

uint64_t EnvNumber(const char* name, uint64_t fallback) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return fallback;
  return std::strtoull(text, nullptr, 10);
}

// What the test knows of a digest.
enum class Known {
  kAcked,  // a Store returned success (and no Delete since): must be there
  kMaybe,  // a Store or Delete was cut off by the kill: either way, but whole
  kGone,   // a Delete returned success, or it was absent after a restart
};

struct FileState {
  Spec spec;
  Known known = Known::kMaybe;
};

// One job of a store thread.
struct Job {
  bool restore = false;  // store an acknowledged file again
  std::string digest;    // restore only
};

class CrashLoop {
 public:
  CrashLoop(uint64_t seed, int rounds) : seed_(seed), rounds_(rounds), rng_(seed) {}

  void Run() {
    for (int i = 0; i < kStoreThreads; ++i) clients_.push_back(harness_.Connect());
    deleter_ = harness_.Connect();
    checker_ = harness_.Connect();
    const auto start = Clock::now();
    for (round_ = 1; round_ <= rounds_; ++round_) {
      const auto t0 = Clock::now();
      const RoundPlan plan = PlanRound();
      RunRound(plan);
      const auto t1 = Clock::now();
      Restart(plan);
      const auto t2 = Clock::now();
      if (!::testing::Test::HasFailure()) Check();
      const auto t3 = Clock::now();
      stats_.round_s += std::chrono::duration<double>(t1 - t0).count();
      stats_.start_s += std::chrono::duration<double>(t2 - t1).count();
      stats_.check_s += std::chrono::duration<double>(t3 - t2).count();
      if (::testing::Test::HasFailure()) {
        ADD_FAILURE() << "stopped at kill " << round_ << " of seed " << seed_ << " (" << plan.Describe()
                      << "); daemon log tail:\n"
                      << LogTail(harness_.DaemonLog(), 40);
        return;
      }
    }
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    std::cout << "crash loop: " << rounds_ << " kills (" << stats_.aimed_at_delete << " aimed at a delete) and "
              << stats_.start_kills << " kills during start-up in " << seconds << " s; " << stats_.stores_acked
              << " stores acknowledged (" << stats_.bytes_acked / kMiB << " MiB), " << stats_.stores_cut
              << " cut off by a kill (" << stats_.cut_present << " present after the restart, "
              << stats_.recovered_ownerless << " of them re-indexed with no owner), "
              << stats_.restores_acked << " repeated stores, " << stats_.deletes_acked << " deletes acknowledged, "
              << stats_.deletes_cut << " cut off; " << stats_.files_hashed << " files ("
              << stats_.bytes_hashed / kMiB << " MiB) hashed after restarts; time in rounds " << stats_.round_s
              << " s, restarts " << stats_.start_s << " s, checks " << stats_.check_s << " s" << std::endl;
  }

 private:
  struct Stats {
    uint64_t stores_acked = 0, bytes_acked = 0, stores_cut = 0, cut_present = 0, restores_acked = 0;
    uint64_t deletes_acked = 0, deletes_cut = 0, files_hashed = 0, bytes_hashed = 0;
    uint64_t aimed_at_delete = 0, start_kills = 0, recovered_ownerless = 0;
    double round_s = 0, start_s = 0, check_s = 0;
  };

  // Everything a round does that the seed decides.
  struct RoundPlan {
    std::vector<std::string> deletes;
    std::vector<std::chrono::milliseconds> delete_pauses;  // before each delete
    std::vector<Job> jobs;  // more than a round can do; the kill ends it
    // The kill comes this long after the round starts, or, when aimed at a
    // delete, this long after the first delete is sent.
    std::chrono::milliseconds kill_delay{0};
    bool aim_at_delete = false;
    // Before the restart that serves, one more start killed this soon (in
    // the middle of start-up: the cleanup of ingest/, the reconciliation).
    std::optional<std::chrono::milliseconds> start_kill;

    std::string Describe() const {
      std::string text = aim_at_delete ? "killed " + std::to_string(kill_delay.count()) + " ms after a delete was sent"
                                       : "killed after " + std::to_string(kill_delay.count()) + " ms";
      if (start_kill) text += ", then a start killed after " + std::to_string(start_kill->count()) + " ms";
      return text;
    }
  };

  // The last lines of the daemon's log, without the one per store.
  static std::string LogTail(const std::string& log, size_t lines) {
    std::vector<std::string> kept;
    std::istringstream in(log);
    for (std::string line; std::getline(in, line);) {
      if (line.find("costored: stored ") == std::string::npos) kept.push_back(line);
    }
    std::string out;
    for (size_t i = kept.size() > lines ? kept.size() - lines : 0; i < kept.size(); ++i) out += kept[i] + "\n";
    return out;
  }

  int Draw(int low, int high) { return std::uniform_int_distribution<int>(low, high)(rng_); }

  RoundPlan PlanRound() {
    TrimToBudget();
    RoundPlan plan;
    std::vector<std::string> acked = Acked();
    // A few deletes, which the kill may cut off.
    const size_t want = static_cast<size_t>(Draw(1, 3));
    while (!acked.empty() && plan.deletes.size() < want) {
      plan.deletes.push_back(acked.back());
      plan.delete_pauses.push_back(std::chrono::milliseconds(Draw(0, 60)));
      acked.pop_back();
    }
    // A few files stored again (the digest exists; the store must not
    // disturb it, and a kill during it must not either).
    std::vector<std::string> restores(acked.begin(), acked.begin() + std::min<size_t>(acked.size(), 2));
    for (size_t i = 0; i < 400; ++i) {
      if (!restores.empty() && Draw(0, 7) == 0) {
        plan.jobs.push_back({true, restores[i % restores.size()]});
      } else {
        plan.jobs.push_back({false, ""});
      }
    }
    // A delete takes a few milliseconds: a kill at a random moment seldom
    // lands in one, so a quarter of the kills are aimed at one.
    plan.aim_at_delete = !plan.deletes.empty() && Draw(0, 3) == 0;
    plan.kill_delay = plan.aim_at_delete ? std::chrono::milliseconds(Draw(0, 8)) : DrawKillDelay(rng_);
    if (Draw(0, 4) == 0) plan.start_kill = std::chrono::milliseconds(Draw(0, 40));
    return plan;
  }

  void RunRound(const RoundPlan& plan) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      jobs_ = plan.jobs;
      next_job_ = 0;
    }
    killed_ = false;
    delete_sent_ = false;
    std::vector<std::thread> threads;
    for (int i = 0; i < kStoreThreads; ++i) threads.emplace_back([this, i] { StoreWorker(clients_[i].get()); });
    threads.emplace_back([this, &plan] { DeleteWorker(plan.deletes, plan.delete_pauses); });
    if (plan.aim_at_delete) {
      ++stats_.aimed_at_delete;
      for (int i = 0; i < 5000 && !delete_sent_; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    std::this_thread::sleep_for(plan.kill_delay);
    harness_.StopDaemon(SIGKILL);
    killed_ = true;
    for (auto& thread : threads) thread.join();
    std::vector<std::string> failures;
    {
      std::lock_guard<std::mutex> lock(mu_);
      failures.swap(failures_);
    }
    for (const std::string& failure : failures) {
      ADD_FAILURE() << "kill " << round_ << " (" << plan.Describe() << "): " << failure;
    }
  }

  // Starts the daemon that serves the next checks, after a start that is
  // killed midway if the plan says so.
  void Restart(const RoundPlan& plan) {
    if (plan.start_kill) {
      ++stats_.start_kills;
      const std::string log = harness_.scratch("costored.log");
      pid_t pid = fork();
      if (pid == 0) {
        int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (fd >= 0) dup2(fd, STDERR_FILENO);
        execl(COSTORED_PATH, COSTORED_PATH, "--store", harness_.store_dir().c_str(), "--verbose", "--consent-agent",
              "", static_cast<char*>(nullptr));
        _exit(127);
      }
      ASSERT_GT(pid, 0);
      std::this_thread::sleep_for(*plan.start_kill);
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
    // A killed daemon's name may linger on the bus for a moment; the checks
    // must talk to the new one, after its start-up work.
    WaitUntilNameOwnedBy(-1);
    harness_.StartDaemon();
    WaitUntilNameOwnedBy(harness_.daemon_pid());
  }

  // Waits until the bus name has no owner (pid -1), or is owned by `pid`.
  void WaitUntilNameOwnedBy(pid_t pid) {
    auto bus = sdbus::createProxy(checker_->connection(), "org.freedesktop.DBus", "/org/freedesktop/DBus");
    pid_t owner = 0;
    for (int i = 0; i < 10'000; ++i) {
      owner = -1;
      try {
        uint32_t value = 0;
        bus->callMethod("GetConnectionUnixProcessID")
            .onInterface("org.freedesktop.DBus")
            .withArguments(std::string(ipc::kBusName))
            .storeResultsTo(value);
        owner = static_cast<pid_t>(value);
      } catch (const sdbus::Error&) {
        // NameHasNoOwner
      }
      if (owner == pid) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    FAIL() << "the bus name is owned by pid " << owner << ", not " << pid;
  }

  // The digests that must be there, in an order drawn from the seed.
  std::vector<std::string> Acked() {
    std::vector<std::string> acked;
    for (const auto& [digest, file] : files_) {
      if (file.known == Known::kAcked) acked.push_back(digest);
    }
    std::shuffle(acked.begin(), acked.end(), rng_);
    return acked;
  }

  // Between kills: deletes acknowledged files until the rest fit the
  // budget (so that hashing all of them after each restart stays cheap).
  void TrimToBudget() {
    std::vector<std::string> acked = Acked();
    uint64_t live_bytes = 0;
    for (const std::string& digest : acked) live_bytes += files_[digest].spec.size;
    while (live_bytes > kLiveBytesBudget && !acked.empty()) {
      const std::string digest = acked.back();
      acked.pop_back();
      try {
        checker_->Delete(digest);
      } catch (const sdbus::Error& e) {
        ADD_FAILURE() << "delete of acknowledged " << digest << " failed: " << e.getName() << ": " << e.getMessage();
        return;
      }
      files_[digest].known = Known::kGone;
      newly_gone_.insert(digest);
      live_bytes -= files_[digest].spec.size;
      ++stats_.deletes_acked;
    }
  }

  bool NextJob(Job* job, Spec* spec) {
    std::lock_guard<std::mutex> lock(mu_);
    if (killed_ || next_job_ >= jobs_.size()) return false;
    *job = jobs_[next_job_++];
    if (!job->restore) {
      spec->seed = SplitMix64(&spec_state_);
      spec->size = DrawSize(spec_rng_);
    } else {
      *spec = files_[job->digest].spec;
    }
    return true;
  }

  void Fail(const std::string& what) {
    std::lock_guard<std::mutex> lock(mu_);
    failures_.push_back(what);
  }

  void StoreWorker(BusClient* client) {
    Job job;
    Spec spec;
    while (NextJob(&job, &spec)) {
      std::string digest;
      int fd = MakeSource(spec, &digest);
      if (fd < 0) return Fail("cannot make a source of " + std::to_string(spec.size) + " bytes");
      if (!job.restore) {
        std::lock_guard<std::mutex> lock(mu_);
        files_[digest] = FileState{spec, Known::kMaybe};
      }
      Dict options;
      if (spec.seed % 2 == 0) options["size"] = sdbus::Variant(spec.size);
      std::string message;
      const std::string error = client->TryStore("", digest, fd, options, nullptr, &message);
      close(fd);
      std::lock_guard<std::mutex> lock(mu_);
      FileState& file = files_[digest];
      if (error.empty()) {
        // A repeated store of an acknowledged file changes nothing it knows.
        file.known = Known::kAcked;
        if (job.restore) {
          ++stats_.restores_acked;
        } else {
          ++stats_.stores_acked;
          stats_.bytes_acked += spec.size;
        }
        continue;
      }
      if (error.rfind(kCostoreErrorPrefix, 0) == 0) {
        // The daemon answered: not a kill. A store of good bytes has no
        // reason to fail.
        failures_.push_back("store of " + digest + " (" + std::to_string(spec.size) + " bytes) failed: " + error +
                            ": " + message);
      }
      // A store sent after the kill never reached a daemon.
      if (!job.restore && error != kNoDaemon) ++stats_.stores_cut;
    }
  }

  void DeleteWorker(const std::vector<std::string>& deletes,
                    const std::vector<std::chrono::milliseconds>& pauses) {
    for (size_t i = 0; i < deletes.size(); ++i) {
      std::this_thread::sleep_for(pauses[i]);
      if (killed_) return;
      const std::string& digest = deletes[i];
      {
        std::lock_guard<std::mutex> lock(mu_);
        files_[digest].known = Known::kMaybe;
      }
      delete_sent_ = true;
      std::string error, message;
      try {
        deleter_->Delete(digest);
      } catch (const sdbus::Error& e) {
        error = e.getName();
        message = e.getMessage();
      }
      std::lock_guard<std::mutex> lock(mu_);
      if (error.empty()) {
        files_[digest].known = Known::kGone;
        newly_gone_.insert(digest);
        ++stats_.deletes_acked;
        continue;
      }
      if (error != kNoDaemon) ++stats_.deletes_cut;
      if (error.rfind(kCostoreErrorPrefix, 0) == 0) {
        // NotFound here: an acknowledged file was not in the store.
        failures_.push_back("delete of acknowledged " + digest + " failed: " + error + ": " + message);
      }
    }
  }

  // The blobs on disk, as "sha256:<hex>"; anything else there is a failure.
  std::set<std::string> BlobsOnDisk() {
    std::set<std::string> out;
    const std::filesystem::path blobs = harness_.store_dir() + "/blobs/sha256";
    for (const auto& fan_out : std::filesystem::directory_iterator(blobs)) {
      const std::string fan = fan_out.path().filename().string();
      if (!fan_out.is_directory() || fan.size() != 2) {
        ADD_FAILURE() << "unexpected entry in blobs/sha256: " << fan_out.path();
        continue;
      }
      for (const auto& blob : std::filesystem::directory_iterator(fan_out.path())) {
        const std::string name = blob.path().filename().string();
        if (!blob.is_regular_file() || name.size() != 64 || name.compare(0, 2, fan) != 0) {
          ADD_FAILURE() << "unexpected entry in blobs/sha256/" << fan << ": " << name;
          continue;
        }
        out.insert("sha256:" + name);
      }
    }
    return out;
  }

  void Check() {
    SCOPED_TRACE("after the restart that followed kill " + std::to_string(round_) + " of seed " +
                 std::to_string(seed_));
    // Start-up has emptied ingest/ before the daemon took its name.
    EXPECT_TRUE(FilesBelow(harness_.store_dir() + "/ingest").empty())
        << "left in ingest/: " << ::testing::PrintToString(FilesBelow(harness_.store_dir() + "/ingest"));
    // A kill is not damage: nothing is put aside.
    const std::string quarantine = harness_.store_dir() + "/quarantine";
    if (std::filesystem::exists(quarantine)) {
      EXPECT_TRUE(FilesBelow(quarantine).empty())
          << "quarantined after a kill: " << ::testing::PrintToString(FilesBelow(quarantine));
    }

    std::map<std::string, Dict> listed;
    for (Dict& entry : checker_->List({})) {
      if (entry.count("private") && entry["private"].get<bool>()) {
        ADD_FAILURE() << "a private entry appeared: " << entry["digest"].get<std::string>();
        continue;
      }
      const std::string digest = entry["digest"].get<std::string>();
      EXPECT_EQ(listed.count(digest), 0u) << digest << " is listed twice";
      listed[digest] = std::move(entry);
    }
    const std::set<std::string> on_disk = BlobsOnDisk();
    for (const auto& [digest, entry] : listed) {
      EXPECT_TRUE(on_disk.count(digest)) << "listed but no blob on disk: " << digest;
    }
    for (const std::string& digest : on_disk) {
      EXPECT_TRUE(listed.count(digest)) << "blob on disk but not listed: " << digest;
    }

    // Cut off by the kill, yet there: a blob committed but not recorded is
    // re-indexed at start, with no known owner (the daemon cannot know who
    // stored it), so its storer may need a grant to read it.
    std::set<std::string> recovered;
    for (auto& [digest, file] : files_) {
      const bool present = listed.count(digest) != 0 || on_disk.count(digest) != 0;
      switch (file.known) {
        case Known::kAcked:
          EXPECT_TRUE(present) << "acknowledged store lost: " << digest << " (" << file.spec.size << " bytes)";
          break;
        case Known::kGone:
          EXPECT_FALSE(present) << "deleted (or absent since a restart) and back: " << digest;
          break;
        case Known::kMaybe:
          if (present) {
            ++stats_.cut_present;
            recovered.insert(digest);
          }
          // From now on it is there (or not), like any other file.
          file.known = present ? Known::kAcked : Known::kGone;
          if (!present) newly_gone_.insert(digest);
          break;
      }
    }
    for (auto& [digest, entry] : listed) {
      auto it = files_.find(digest);
      if (it == files_.end()) {
        ADD_FAILURE() << "listed but never stored: " << digest;
        continue;
      }
      if (entry.count("state")) {
        EXPECT_EQ(entry["state"].get<std::string>(), "ok")
            << digest << ": " << (entry.count("problem") ? entry["problem"].get<std::string>() : "");
      }
      EXPECT_EQ(entry["size"].get<uint64_t>(), it->second.spec.size) << digest;
      // Served, and byte for byte what was stored.
      if (recovered.count(digest) && checker_->TryOpen("", digest, nullptr) == kNotFound) {
        ++stats_.recovered_ownerless;
        checker_->Grant(DaemonHarness::SelfApp(), "", digest);
      }
      try {
        auto [fd, info] = checker_->Open("", digest, {});
        std::string hashed;
        uint64_t size = 0;
        HashFd(fd.get(), &hashed, &size);
        EXPECT_EQ(hashed, digest) << "served bytes do not match";
        EXPECT_EQ(size, it->second.spec.size) << digest;
        ++stats_.files_hashed;
        stats_.bytes_hashed += size;
      } catch (const sdbus::Error& e) {
        ADD_FAILURE() << "listed " << digest << " but Open says " << e.getName() << ": " << e.getMessage();
      }
    }
    // A deleted file is not served either. (Every earlier one is checked
    // above: neither listed nor on disk.)
    for (const std::string& digest : newly_gone_) {
      EXPECT_EQ(checker_->TryOpen("", digest, nullptr), kNotFound) << digest;
    }
    newly_gone_.clear();
  }

  DaemonHarness harness_;
  const uint64_t seed_;
  const int rounds_;
  std::mt19937_64 rng_;
  // The specs of new stores come from these, in the order threads ask.
  uint64_t spec_state_ = seed_ ^ 0x5bd1e995ULL;
  std::mt19937_64 spec_rng_{seed_ + 1};
  int round_ = 0;
  std::vector<std::unique_ptr<BusClient>> clients_;
  std::unique_ptr<BusClient> deleter_;
  std::unique_ptr<BusClient> checker_;
  std::atomic<bool> killed_{false};
  std::atomic<bool> delete_sent_{false};

  std::mutex mu_;  // guards what follows while a round runs
  std::map<std::string, FileState> files_;
  std::set<std::string> newly_gone_;  // became kGone since the last check
  std::vector<Job> jobs_;
  size_t next_job_ = 0;
  std::vector<std::string> failures_;
  Stats stats_;
};

TEST(CrashLoopTest, AcknowledgedStoresAndDeletesSurviveSigkill) {
  const uint64_t seed = EnvNumber("COSTORE_CRASH_SEED", std::random_device{}());
  const int rounds = static_cast<int>(EnvNumber("COSTORE_CRASH_ROUNDS", kDefaultRounds));
  std::cout << "crash loop seed " << seed << " (replay: COSTORE_CRASH_SEED=" << seed << ")" << std::endl;
  ::testing::Test::RecordProperty("seed", std::to_string(seed));
  SCOPED_TRACE("crash loop seed " + std::to_string(seed));
  CrashLoop loop(seed, rounds);
  loop.Run();
}

}  // namespace
}  // namespace costore::test
