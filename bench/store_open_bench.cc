// store_open_bench: storing and opening one large file through the real
// costored, against the command-line tools that do the same work.
//
//   store      Store1.Store of FILE (the daemon reads, hashes, writes, fsyncs)
//     vs  hash  `openssl dgst -sha256 FILE`
//     vs  copy  `cp FILE DEST` then `sync DEST`
//   open+read  Store1.Open, then read(2) the descriptor to EOF
//     vs  cat   `cat FILE > /dev/null`
//
// Ratios: store / max(hash, copy) (goal <= 1.10: hashing and writing overlap,
// so a store costs one pass over the bytes) and open+read / cat (goal <= 1.02).
//
// A plain main rather than Google Benchmark: every measurement is a
// multi-second, disk-bound run of a real command or a daemon call, and the
// point is to interleave them round by round so that the noise of a shared
// machine hits baselines and costore alike. Google Benchmark runs one
// benchmark to completion before the next and picks its own iteration counts;
// here each round runs each measurement exactly once, in an order that
// alternates between rounds, and the medians and their ratios are reported
// (with the per-round ratios, and the CPU pressure during each sample).
//
// Every measurement starts from the same state: the source file in the page
// cache (read once before timing), and nothing of ours dirty (syncfs on the
// store's file system, untimed). Before each measurement that writes (copy,
// store), a scratch file as large as the test file is written and deleted
// (untimed), so that every writer draws on just-freed page-cache pages: on a
// VM whose balloon driver hands idle free memory back to the host (free page
// reporting), a page not used for a few seconds costs a host fault to touch
// again, ~10x the CPU of writing into a recycled one (measured on the 2-core
// dev VM: 1.4-1.8 s against 0.15 s per GiB), and which writer got which kind
// of page would otherwise decide the result. --no-prime turns this off.
//
// The page cache is warm for every measurement unless --cold: then it is
// dropped before the two read measurements (needs root and a writable
// /proc/sys/vm/drop_caches), so cat and open+read both read from the disk.
//
// Usage: store_open_bench [--bytes N[K|M|G]] [--rounds N] [--read-buffer N[K|M]]
//                         [--cold] [--no-prime] [--markdown FILE] [--costored-b PATH]
//   --bytes        size of the test file (default 1G; env COSTORE_BENCH_BYTES)
//   --rounds       interleaved rounds, median reported (default 3; env COSTORE_BENCH_ROUNDS)
//   --read-buffer  read(2) size for open+read (default 1M)
//   --markdown     also write the result tables to FILE (bench/run appends them to RESULTS.md)
//   --costored-b   also store and open through a second costored binary (say,
//                  one built from a patched checkout), on its own private bus
//                  and store, interleaved with the first in every round:
//                  "store B / store A" compares two daemons under the same noise.
// Flags win over the environment. The scratch directory (source file, copies
// and the store) is made under $TMPDIR, or /tmp: point TMPDIR at the file
// system to measure.

#include <fcntl.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "costore-ipc/names.h"
#include "tests/integration/daemon_harness.h"

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;
using costore::test::BusClient;
using costore::test::DaemonHarness;
using costore::test::Dict;

[[noreturn]] void Fail(const std::string& what) {
  throw std::runtime_error(what);
}

std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }

// "1G", "512M", "4096": bytes.
uint64_t ParseSize(const std::string& text) {
  if (text.empty()) Fail("empty size");
  size_t used = 0;
  const unsigned long long number = std::stoull(text, &used);
  const std::string suffix = text.substr(used);
  uint64_t unit = 1;
  if (suffix == "K" || suffix == "k" || suffix == "KiB") unit = uint64_t{1} << 10;
  else if (suffix == "M" || suffix == "m" || suffix == "MiB") unit = uint64_t{1} << 20;
  else if (suffix == "G" || suffix == "g" || suffix == "GiB") unit = uint64_t{1} << 30;
  else if (!suffix.empty()) Fail("bad size suffix in \"" + text + "\" (use K, M or G)");
  return static_cast<uint64_t>(number) * unit;
}

std::string HumanBytes(uint64_t bytes) {
  char text[64];
  if (bytes >= (uint64_t{1} << 30) && bytes % (uint64_t{1} << 30) == 0) {
    std::snprintf(text, sizeof text, "%" PRIu64 " GiB", bytes >> 30);
  } else if (bytes >= (uint64_t{1} << 20) && bytes % (uint64_t{1} << 20) == 0) {
    std::snprintf(text, sizeof text, "%" PRIu64 " MiB", bytes >> 20);
  } else {
    std::snprintf(text, sizeof text, "%" PRIu64 " bytes", bytes);
  }
  return text;
}

struct Options {
  uint64_t bytes = uint64_t{1} << 30;
  int rounds = 3;
  size_t read_buffer = size_t{1} << 20;
  bool cold = false;
  bool prime = true;
  std::string markdown;
  std::string costored_b;
};

Options ParseOptions(int argc, char** argv) {
  Options options;
  if (const char* env = std::getenv("COSTORE_BENCH_BYTES"); env && *env) options.bytes = ParseSize(env);
  if (const char* env = std::getenv("COSTORE_BENCH_ROUNDS"); env && *env) options.rounds = std::atoi(env);
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) Fail(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--bytes") options.bytes = ParseSize(value());
    else if (arg == "--rounds") options.rounds = std::stoi(value());
    else if (arg == "--read-buffer") options.read_buffer = static_cast<size_t>(ParseSize(value()));
    else if (arg == "--cold") options.cold = true;
    else if (arg == "--no-prime") options.prime = false;
    else if (arg == "--markdown") options.markdown = value();
    else if (arg == "--costored-b") options.costored_b = value();
    else if (arg == "--help" || arg == "-h") {
      std::printf(
          "usage: %s [--bytes N[K|M|G]] [--rounds N] [--read-buffer N[K|M]] [--cold] [--no-prime]\n"
          "       [--markdown FILE] [--costored-b PATH]\n"
          "env: COSTORE_BENCH_BYTES, COSTORE_BENCH_ROUNDS; scratch dir under $TMPDIR or /tmp\n",
          argv[0]);
      std::exit(0);
    } else {
      Fail("unknown argument " + arg + " (try --help)");
    }
  }
  if (options.bytes == 0) Fail("--bytes must be positive");
  if (options.rounds < 1) Fail("--rounds must be at least 1");
  if (options.read_buffer == 0) Fail("--read-buffer must be positive");
  return options;
}

std::string Hex(const unsigned char* bytes, size_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    out += kHex[bytes[i] >> 4];
    out += kHex[bytes[i] & 0xf];
  }
  return out;
}

// Writes `bytes` pseudo-random bytes (xoshiro256**, incompressible for any
// file system) to `path`, fsyncs it, and returns "sha256:<hex>".
std::string MakeRandomFile(const std::string& path, uint64_t bytes) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) Fail(Errno("create " + path));
  std::array<uint64_t, 4> s{0x9E3779B97F4A7C15ull, 0xD1B54A32D192ED03ull, 0xABCDEF0123456789ull,
                            static_cast<uint64_t>(::time(nullptr))};
  auto rotl = [](uint64_t x, int k) { return (x << k) | (x >> (64 - k)); };
  auto next = [&] {
    const uint64_t result = rotl(s[1] * 5, 7) * 9;
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
  };
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  constexpr size_t kChunk = size_t{1} << 20;
  std::vector<uint64_t> buffer(kChunk / sizeof(uint64_t));
  uint64_t left = bytes;
  while (left > 0) {
    for (auto& word : buffer) word = next();
    const size_t n = static_cast<size_t>(std::min<uint64_t>(left, kChunk));
    const char* data = reinterpret_cast<const char*>(buffer.data());
    EVP_DigestUpdate(ctx, data, n);
    for (size_t done = 0; done < n;) {
      ssize_t w = ::write(fd, data + done, n - done);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) Fail(Errno("write " + path));
      done += static_cast<size_t>(w);
    }
    left -= n;
  }
  if (::fsync(fd) != 0) Fail(Errno("fsync " + path));
  ::close(fd);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx, md, &len);
  EVP_MD_CTX_free(ctx);
  return "sha256:" + Hex(md, len);
}

// Reads `fd` to EOF through a buffer of `buffer_size`; returns the bytes read.
uint64_t Drain(int fd, size_t buffer_size) {
  const auto buffer = std::make_unique_for_overwrite<char[]>(buffer_size);
  uint64_t total = 0;
  for (;;) {
    ssize_t n = ::read(fd, buffer.get(), buffer_size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) Fail(Errno("read"));
    if (n == 0) return total;
    total += static_cast<uint64_t>(n);
  }
}

void WarmUp(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) Fail(Errno("open " + path));
  Drain(fd, size_t{1} << 20);
  ::close(fd);
}

// Writes `bytes` to a new file at `path` and deletes it: its page-cache
// pages go back to the allocator, where the next writer finds them.
void PrimePageCache(const std::string& path, uint64_t bytes) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) Fail(Errno("create " + path));
  constexpr size_t kChunk = size_t{1} << 20;
  const std::vector<char> buffer(kChunk, 'p');
  for (uint64_t done = 0; done < bytes;) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(kChunk, bytes - done));
    ssize_t w = ::write(fd, buffer.data(), n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) Fail(Errno("write " + path));
    done += static_cast<uint64_t>(w);
  }
  ::close(fd);
  if (::unlink(path.c_str()) != 0) Fail(Errno("unlink " + path));
}

// Flushes everything dirty on the file system holding `dir`: no measurement
// pays for the writeback (or the discards) of the one before it.
void SyncFs(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) Fail(Errno("open " + dir));
  if (::syncfs(fd) != 0) Fail(Errno("syncfs " + dir));
  ::close(fd);
}

bool DropCaches() {
  ::sync();
  std::ofstream out("/proc/sys/vm/drop_caches");
  if (!out) return false;
  out << "3\n";
  out.flush();
  return static_cast<bool>(out);
}

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

double TimevalSeconds(const timeval& tv) { return static_cast<double>(tv.tv_sec) + tv.tv_usec / 1e6; }

struct Sample {
  double wall = 0;      // seconds
  double cpu = 0;       // user + system seconds of whoever did the work
  double pressure = 0;  // share of the wall time some task waited for a CPU
};

// The kernel's CPU pressure counter (/proc/pressure/cpu, "some ... total="):
// microseconds during which at least one runnable task waited for a CPU.
// -1 without PSI. It says how contended the machine was during a sample.
double CpuPressureTotal() {
  std::ifstream in("/proc/pressure/cpu");
  std::string line;
  if (!std::getline(in, line)) return -1;
  const size_t at = line.find("total=");
  if (at == std::string::npos) return -1;
  return std::strtod(line.c_str() + at + 6, nullptr) / 1e6;
}

// Runs a real command (argv[0] looked up in PATH), stdout to `stdout_path`
// (or captured into *captured), and waits. Adds its wall and CPU time.
void RunCommand(const std::vector<std::string>& argv, Sample* sample, std::string* captured = nullptr) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  int pipe_fds[2] = {-1, -1};
  if (captured != nullptr) {
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0) Fail(Errno("pipe2"));
    posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);
  } else {
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  }
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  const Clock::time_point start = Clock::now();
  int err = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (err != 0) {
    errno = err;
    Fail(Errno("spawn " + argv[0]));
  }
  if (captured != nullptr) {
    ::close(pipe_fds[1]);
    char buf[4096];
    ssize_t n;
    while ((n = ::read(pipe_fds[0], buf, sizeof buf)) > 0) captured->append(buf, static_cast<size_t>(n));
    ::close(pipe_fds[0]);
  }
  int status = 0;
  rusage usage{};
  if (::wait4(pid, &status, 0, &usage) != pid) Fail(Errno("wait4 " + argv[0]));
  sample->wall += Seconds(Clock::now() - start);
  sample->cpu += TimevalSeconds(usage.ru_utime) + TimevalSeconds(usage.ru_stime);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::string line;
    for (const auto& a : argv) line += a + " ";
    Fail("command failed: " + line);
  }
}

// utime + stime of a whole process (all its threads), in seconds.
double ProcessCpu(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Fields after the command name, which is in parentheses and may hold spaces.
  std::istringstream rest(text.substr(text.rfind(')') + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

double SelfCpu() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  return TimevalSeconds(usage.ru_utime) + TimevalSeconds(usage.ru_stime);
}

enum Measure { kHash, kCopy, kStore, kCat, kOpenRead, kStoreB, kOpenReadB, kMeasureCount };
constexpr std::array<const char*, kMeasureCount> kNames = {
    "hash: openssl dgst -sha256", "copy: cp + sync DEST", "costore Store", "cat > /dev/null",
    "costore Open + read",        "costore-b Store",      "costore-b Open + read"};

// One costored on its own private bus, and a client of it.
struct Daemon {
  pid_t pid = -1;
  std::unique_ptr<BusClient> client;
  // Store goes through a plain proxy on the client's connection: the
  // generated one uses the default D-Bus timeout (25 s), too short for a
  // slow disk.
  std::unique_ptr<sdbus::IProxy> store_proxy;

  void Connect(DaemonHarness& harness) {
    client = harness.Connect();
    store_proxy = sdbus::createProxy(client->connection(), costore::ipc::kBusName, costore::ipc::kObjectPath);
  }
};

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

std::string Fixed(double value, int digits = 3) {
  char text[64];
  std::snprintf(text, sizeof text, "%.*f", digits, value);
  return text;
}

std::string FileSystemType(const std::string& dir) {
  struct statfs fs {};
  if (::statfs(dir.c_str(), &fs) != 0) return "?";
  switch (static_cast<unsigned long>(fs.f_type)) {
    case 0xEF53: return "ext4";
    case 0x58465342: return "xfs";
    case 0x9123683E: return "btrfs";
    case 0x01021994: return "tmpfs";
    case 0x794c7630: return "overlayfs";
    default: {
      char text[32];
      std::snprintf(text, sizeof text, "0x%lx", static_cast<unsigned long>(fs.f_type));
      return text;
    }
  }
}

int Run(const Options& options) {
  DaemonHarness harness;  // private dbus-daemon + costored, store under $TMPDIR
  const std::string dir = harness.scratch("");
  const std::string source = harness.scratch("source.bin");
  const std::string copy = harness.scratch("copy.bin");
  const uint64_t bytes = options.bytes;

  std::printf("costore store/open benchmark: %s, %d round(s), read buffer %s, page cache %s\n",
              HumanBytes(bytes).c_str(), options.rounds, HumanBytes(options.read_buffer).c_str(),
              options.cold ? "cold for reads (dropped before cat and open+read)" : "warm");
  std::printf("scratch dir and store: %s (%s), costored pid %d\n", dir.c_str(),
              FileSystemType(dir).c_str(), static_cast<int>(harness.daemon_pid()));
  std::fflush(stdout);

  const Clock::time_point made = Clock::now();
  const std::string digest = MakeRandomFile(source, bytes);
  std::printf("made %s (%s s), %s\n", source.c_str(), Fixed(Seconds(Clock::now() - made), 1).c_str(),
              digest.c_str());
  if (options.cold && !DropCaches()) Fail("--cold: cannot write /proc/sys/vm/drop_caches (root needed)");

  Daemon daemon_a;
  daemon_a.pid = harness.daemon_pid();
  daemon_a.Connect(harness);
  // B: a second private bus and store, its costored swapped for another binary.
  std::unique_ptr<DaemonHarness> harness_b;
  Daemon daemon_b;
  const bool with_b = !options.costored_b.empty();
  // The harness does not know B's process: stop it on every way out.
  struct Reaper {
    pid_t* pid;
    ~Reaper() {
      if (*pid > 0) {
        ::kill(*pid, SIGTERM);
        ::waitpid(*pid, nullptr, 0);
        *pid = -1;
      }
    }
  } reap_b{&daemon_b.pid};
  if (with_b) {
    harness_b = std::make_unique<DaemonHarness>();
    daemon_b.pid = harness_b->StartOtherDaemon(options.costored_b);
    daemon_b.Connect(*harness_b);
    std::printf("costore-b: %s, pid %d, store %s\n", options.costored_b.c_str(), static_cast<int>(daemon_b.pid),
                harness_b->scratch("store-b").c_str());
  }
  const Dict store_options = {{"size", sdbus::Variant(static_cast<uint64_t>(bytes))},
                              {"name", sdbus::Variant(std::string("store_open_bench/source.bin"))}};

  std::array<std::vector<Sample>, kMeasureCount> samples;
  auto measure = [&](Measure which) {
    // Same starting line for all: source cached, nothing of ours dirty.
    WarmUp(source);
    SyncFs(dir);
    if (options.prime && (which == kCopy || which == kStore || which == kStoreB)) {
      PrimePageCache(harness.scratch("prime.bin"), bytes);
    }
    if (options.cold && (which == kCat || which == kOpenRead || which == kOpenReadB)) {
      if (!DropCaches()) Fail("cannot drop caches");
    }
    Sample sample;
    const double pressure_start = CpuPressureTotal();
    const Clock::time_point sample_start = Clock::now();
    switch (which) {
      case kHash: {
        std::string out;
        RunCommand({"openssl", "dgst", "-sha256", source}, &sample, &out);
        if (out.find(digest.substr(7)) == std::string::npos) Fail("openssl printed another digest: " + out);
        break;
      }
      case kCopy:
        RunCommand({"cp", source, copy}, &sample);
        RunCommand({"sync", copy}, &sample);
        if (::unlink(copy.c_str()) != 0) Fail(Errno("unlink " + copy));
        break;
      case kStore:
      case kStoreB: {
        Daemon& d = which == kStore ? daemon_a : daemon_b;
        const double daemon_cpu = ProcessCpu(d.pid);
        const Clock::time_point start = Clock::now();
        int fd = ::open(source.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) Fail(Errno("open " + source));
        Dict info;
        try {
          d.store_proxy->callMethod("Store")
              .onInterface(io::github::costore::Store1_proxy::INTERFACE_NAME)
              .withTimeout(std::chrono::minutes(30))
              .withArguments(std::string(), digest, sdbus::UnixFd(fd), store_options)
              .storeResultsTo(info);
        } catch (const sdbus::Error& e) {
          ::close(fd);
          Fail("Store failed: " + e.getName() + ": " + e.getMessage());
        }
        ::close(fd);
        sample.wall = Seconds(Clock::now() - start);
        sample.cpu = ProcessCpu(d.pid) - daemon_cpu;
        if (info.count("size") == 0 || info.at("size").get<uint64_t>() != bytes) Fail("Store: wrong size");
        break;
      }
      case kCat:
        RunCommand({"cat", source}, &sample);
        break;
      case kOpenRead:
      case kOpenReadB: {
        Daemon& d = which == kOpenRead ? daemon_a : daemon_b;
        const double self_cpu = SelfCpu();
        const Clock::time_point start = Clock::now();
        uint64_t got = 0;
        try {
          auto [fd, info] = d.client->Open(std::string(), digest, {});
          got = Drain(fd.get(), options.read_buffer);
        } catch (const sdbus::Error& e) {
          Fail("Open failed: " + e.getName() + ": " + e.getMessage());
        }
        sample.wall = Seconds(Clock::now() - start);
        sample.cpu = SelfCpu() - self_cpu;
        if (got != bytes) Fail("Open + read: got " + std::to_string(got) + " bytes");
        break;
      }
      case kMeasureCount:
        break;
    }
    if (pressure_start >= 0) {
      sample.pressure =
          (CpuPressureTotal() - pressure_start) / Seconds(Clock::now() - sample_start);
    }
    samples[which].push_back(sample);
    std::printf("  %-28s %8.3f s  %8.1f MiB/s  cpu %6.2f s  cpu pressure %3.0f%%\n", kNames[which],
                sample.wall, static_cast<double>(bytes) / (1 << 20) / sample.wall, sample.cpu,
                100 * sample.pressure);
    std::fflush(stdout);
  };

  for (int round = 0; round < options.rounds; ++round) {
    std::printf("round %d/%d\n", round + 1, options.rounds);
    // Alternate the order so that neither side always runs first (or right
    // after the other's writeback); Store must precede Open within a round.
    std::vector<Measure> order = round % 2 == 0
                                     ? std::vector<Measure>{kHash, kCopy, kStore, kStoreB, kCat, kOpenRead, kOpenReadB}
                                     : std::vector<Measure>{kStoreB, kStore, kCopy, kHash, kOpenReadB, kOpenRead, kCat};
    if (!with_b) std::erase_if(order, [](Measure m) { return m == kStoreB || m == kOpenReadB; });
    for (Measure which : order) measure(which);
    // Next round's Store must really write: forget the file (untimed).
    for (Daemon* d : {&daemon_a, &daemon_b}) {
      if (!d->client) continue;
      try {
        d->client->Delete(digest);
      } catch (const sdbus::Error& e) {
        Fail("Delete failed: " + e.getName() + ": " + e.getMessage());
      }
    }
  }
  if (with_b) {
    daemon_b.store_proxy.reset();
    daemon_b.client.reset();
  }

  // ---- results
  std::array<double, kMeasureCount> median{};
  std::array<double, kMeasureCount> median_cpu{};
  std::array<double, kMeasureCount> median_pressure{};
  for (int m = 0; m < kMeasureCount; ++m) {
    if (samples[m].empty()) continue;
    std::vector<double> walls, cpus, pressures;
    for (const Sample& s : samples[m]) {
      walls.push_back(s.wall);
      cpus.push_back(s.cpu);
      pressures.push_back(s.pressure);
    }
    median[m] = Median(walls);
    median_cpu[m] = Median(cpus);
    median_pressure[m] = Median(pressures);
  }
  const double write_base = std::max(median[kHash], median[kCopy]);
  const double store_ratio = median[kStore] / write_base;
  const double read_ratio = median[kOpenRead] / median[kCat];
  // Paired, per round: the two sides of one round saw the same machine.
  std::vector<double> store_paired, read_paired;
  for (int r = 0; r < options.rounds; ++r) {
    store_paired.push_back(samples[kStore][static_cast<size_t>(r)].wall /
                           std::max(samples[kHash][static_cast<size_t>(r)].wall,
                                    samples[kCopy][static_cast<size_t>(r)].wall));
    read_paired.push_back(samples[kOpenRead][static_cast<size_t>(r)].wall /
                          samples[kCat][static_cast<size_t>(r)].wall);
  }

  std::ostringstream md;
  md << "File: " << HumanBytes(bytes) << " of random bytes; " << options.rounds
     << " interleaved round(s), median shown; page cache: "
     << (options.cold ? "**cold** for cat and open+read (drop_caches before each), warm source for the rest"
                      : "**warm** (source read once before every measurement; blob cached from its store)")
     << "; page cache primed before each write: " << (options.prime ? "yes" : "no (--no-prime)")
     << "; open+read buffer " << HumanBytes(options.read_buffer) << "; store on " << FileSystemType(dir)
     << " (" << dir << ").\n\n";
  md << "| measurement | median s | MiB/s | min s | max s | cpu s | cpu pressure | rounds (s) |\n";
  md << "|---|---:|---:|---:|---:|---:|---:|---|\n";
  for (int m = 0; m < kMeasureCount; ++m) {
    if (samples[m].empty()) continue;
    std::vector<double> walls;
    for (const Sample& s : samples[m]) walls.push_back(s.wall);
    std::string rounds;
    for (double w : walls) rounds += (rounds.empty() ? "" : ", ") + Fixed(w);
    md << "| " << kNames[m] << " | " << Fixed(median[m]) << " | "
       << Fixed(static_cast<double>(bytes) / (1 << 20) / median[m], 0) << " | "
       << Fixed(*std::min_element(walls.begin(), walls.end())) << " | "
       << Fixed(*std::max_element(walls.begin(), walls.end())) << " | " << Fixed(median_cpu[m], 2) << " | "
       << Fixed(100 * median_pressure[m], 0) << "% | " << rounds << " |\n";
  }
  auto paired = [](const std::vector<double>& v) {
    std::string text;
    for (double x : v) text += (text.empty() ? "" : ", ") + Fixed(x);
    return text;
  };
  md << "\ncpu s (median): the child's user+sys for commands; costored's (all threads) for Store; this "
        "process's for Open + read. cpu pressure (median): share of the wall time during which some "
        "task on the machine waited for a CPU (/proc/pressure/cpu): near 0% is a quiet machine, the "
        "higher the noisier.\n\n";
  md << "| ratio | median-based | per round | goal | |\n|---|---:|---|---:|---|\n";
  md << "| store / max(hash, copy) | **" << Fixed(store_ratio) << "** | " << paired(store_paired)
     << " | 1.10 | " << (store_ratio <= 1.10 ? "met" : "**missed**") << " |\n";
  md << "| open+read / cat | **" << Fixed(read_ratio) << "** | " << paired(read_paired) << " | 1.02 | "
     << (read_ratio <= 1.02 ? "met" : "**missed**") << " |\n";
  if (with_b) {
    std::vector<double> store_b_paired, store_ba, read_b_paired;
    for (size_t r = 0; r < static_cast<size_t>(options.rounds); ++r) {
      store_b_paired.push_back(samples[kStoreB][r].wall /
                               std::max(samples[kHash][r].wall, samples[kCopy][r].wall));
      store_ba.push_back(samples[kStoreB][r].wall / samples[kStore][r].wall);
      read_b_paired.push_back(samples[kOpenReadB][r].wall / samples[kCat][r].wall);
    }
    const double store_b_ratio = median[kStoreB] / write_base;
    const double read_b_ratio = median[kOpenReadB] / median[kCat];
    md << "| costore-b: store / max(hash, copy) | **" << Fixed(store_b_ratio) << "** | " << paired(store_b_paired)
       << " | 1.10 | " << (store_b_ratio <= 1.10 ? "met" : "**missed**") << " |\n";
    md << "| costore-b: open+read / cat | **" << Fixed(read_b_ratio) << "** | " << paired(read_b_paired)
       << " | 1.02 | " << (read_b_ratio <= 1.02 ? "met" : "**missed**") << " |\n";
    md << "| store B / store A | **" << Fixed(median[kStoreB] / median[kStore]) << "** (median of per-round: "
       << Fixed(Median(store_ba)) << ") | " << paired(store_ba) << " | | |\n";
    md << "\ncostore-b: " << options.costored_b << "\n";
  }

  std::printf("\n%s", md.str().c_str());
  if (!options.markdown.empty()) {
    std::ofstream out(options.markdown);
    out << md.str();
    if (!out) Fail("cannot write " + options.markdown);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return Run(ParseOptions(argc, argv));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "store_open_bench: %s\n", e.what());
    return 1;
  }
}
