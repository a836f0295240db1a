// integrity_bench: what the integrity work costs, against baselines timed
// in the same interleaved rounds (these machines are shared and noisy).
//
//  1. Open: p50 of Store1.Open of a small file through
//       A  this costored (inode check at every open, read-only view),
//       N  this costored with --no-read-only-view (the check alone),
//       B  a costored built before the change (--costored-b PATH),
//     each on its own private bus, with Peer.Ping p50 to the same daemon as
//     the floor. Reported as ratios A/B and N/B.
//  2. Verify: Manager1.Verify of every file (SHA-256 of every byte through
//     the daemon) against `openssl dgst -sha256` of the same blob files,
//     warm page cache, as GB/s and a ratio.
//
// Usage: integrity_bench [--costored-b PATH] [--rounds N] [--opens N] [--verify-bytes N[M|G]]
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "bench/bench_util.h"
#include "costore-ipc/names.h"
#include "tests/integration/daemon_harness.h"

extern char** environ;

namespace {

using costore::bench::Median;
using costore::bench::Now;
using costore::test::DaemonHarness;
using costore::test::Dict;

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "integrity_bench: %s\n", what.c_str());
  std::exit(1);
}

struct Target {
  std::string label;
  std::unique_ptr<DaemonHarness> harness;
  std::unique_ptr<costore::test::BusClient> client;
  std::unique_ptr<sdbus::IProxy> peer;
  std::string digest;
  pid_t other = -1;
};

// p50 of `n` calls of `call`, in microseconds.
template <typename F>
double P50Micros(int n, F&& call) {
  std::vector<double> samples;
  samples.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    const double start = Now();
    call();
    samples.push_back((Now() - start) * 1e6);
  }
  return Median(samples);
}

double RunCommand(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  pid_t pid = -1;
  const double start = Now();
  if (posix_spawnp(&pid, argv[0].c_str(), &actions, nullptr, args.data(), environ) != 0) Fail("spawn " + argv[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  posix_spawn_file_actions_destroy(&actions);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) Fail(argv[0] + " failed");
  return Now() - start;
}

}  // namespace

int main(int argc, char** argv) {
  std::string costored_b;
  int rounds = 5, opens = 2000;
  uint64_t verify_bytes = uint64_t{1} << 30;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) Fail(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--costored-b") costored_b = value();
    else if (arg == "--rounds") rounds = std::stoi(value());
    else if (arg == "--opens") opens = std::stoi(value());
    else if (arg == "--verify-bytes") verify_bytes = costore::bench::ParseBytes(value().c_str());
    else Fail("unknown argument " + arg);
  }

  // ---- 1. Open
  std::vector<Target> targets;
  auto add = [&](const std::string& label, const std::vector<std::string>& args, const std::string& other) {
    Target t;
    t.label = label;
    t.harness = std::make_unique<DaemonHarness>();
    if (!other.empty()) {
      t.other = t.harness->StartOtherDaemon(other);
    } else if (!args.empty()) {
      t.harness->StopDaemon(SIGTERM);
      t.harness->StartDaemon(args);
    }
    t.client = t.harness->Connect();
    t.peer = sdbus::createProxy(t.client->connection(), costore::ipc::kBusName, costore::ipc::kObjectPath);
    const std::string data = "a small model file, opened many times";
    t.digest = costore::test::DigestOf(data);
    if (!t.client->TryStore("", t.digest, costore::test::PipeFrom(data), {}).empty()) Fail(label + ": store failed");
    targets.push_back(std::move(t));
  };
  add("A: this costored", {}, "");
  add("N: this costored --no-read-only-view", {"--no-read-only-view"}, "");
  if (!costored_b.empty()) add("B: costored before (" + costored_b + ")", {}, costored_b);

  std::vector<std::vector<double>> open_p50(targets.size()), ping_p50(targets.size());
  for (int round = 0; round < rounds; ++round) {
    for (size_t k = 0; k < targets.size(); ++k) {
      // Rotate the order each round so that no target always goes first.
      Target& t = targets[(k + static_cast<size_t>(round)) % targets.size()];
      const size_t index = (k + static_cast<size_t>(round)) % targets.size();
      ping_p50[index].push_back(P50Micros(opens, [&] {
        t.peer->callMethod("Ping").onInterface("org.freedesktop.DBus.Peer");
      }));
      open_p50[index].push_back(P50Micros(opens, [&] {
        auto [fd, info] = t.client->Open("", t.digest, {});
        (void)info;
      }));
    }
  }
  std::printf("\n### Open p50 (%d rounds of %d opens, interleaved)\n\n", rounds, opens);
  std::printf("| daemon | Open p50 (us) | Ping p50 (us) | Open / Ping |\n|---|---:|---:|---:|\n");
  for (size_t k = 0; k < targets.size(); ++k) {
    const double o = Median(open_p50[k]), p = Median(ping_p50[k]);
    std::printf("| %s | %.1f | %.1f | %.2f |\n", targets[k].label.c_str(), o, p, o / p);
  }
  if (targets.size() == 3) {
    std::vector<double> ab, nb;
    for (int r = 0; r < rounds; ++r) {
      ab.push_back(open_p50[0][static_cast<size_t>(r)] / open_p50[2][static_cast<size_t>(r)]);
      nb.push_back(open_p50[1][static_cast<size_t>(r)] / open_p50[2][static_cast<size_t>(r)]);
    }
    std::printf("\nOpen p50 ratio A/B (median of per-round ratios): %.3f; N/B: %.3f\n", Median(ab), Median(nb));
  }

  // ---- 2. Verify
  Target& a = targets[0];
  const uint64_t file_bytes = uint64_t{128} << 20;
  const int files = static_cast<int>(std::max<uint64_t>(1, verify_bytes / file_bytes));
  std::vector<std::string> paths;
  uint64_t state = 0x9e3779b97f4a7c15ULL;
  for (int f = 0; f < files; ++f) {
    std::vector<char> block(file_bytes);
    costore::bench::FillXorshift(&block, &state);
    std::string data(block.begin(), block.end());
    const std::string digest = costore::test::DigestOf(data);
    if (!a.client->TryStore("", digest, costore::test::PipeFrom(data), {}).empty()) Fail("verify: store failed");
    const std::string hex = digest.substr(7);
    paths.push_back(a.harness->store_dir() + "/blobs/sha256/" + hex.substr(0, 2) + "/" + hex);
  }
  const double total = static_cast<double>(files) * static_cast<double>(file_bytes);
  std::vector<std::string> openssl = {"openssl", "dgst", "-sha256"};
  openssl.insert(openssl.end(), paths.begin(), paths.end());
  RunCommand(openssl);  // warm the page cache
  std::vector<double> verify_s, openssl_s, ratio;
  for (int round = 0; round < rounds; ++round) {
    double v = 0, o = 0;
    auto run_verify = [&] {
      const double start = Now();
      std::vector<Dict> results = a.client->Verify(Dict{});
      v = Now() - start;
      for (auto& r : results) {
        if (r["state"].get<std::string>() != "ok") Fail("verify reported a damaged file");
      }
    };
    if (round % 2 == 0) {
      run_verify();
      o = RunCommand(openssl);
    } else {
      o = RunCommand(openssl);
      run_verify();
    }
    verify_s.push_back(v);
    openssl_s.push_back(o);
    ratio.push_back(v / o);
  }
  std::printf("\n### Verify of %d files, %.0f MiB (warm page cache, %d interleaved rounds)\n\n", files + 1,
              total / (1 << 20), rounds);
  std::printf("| | median s | GB/s |\n|---|---:|---:|\n");
  std::printf("| Manager1.Verify | %.3f | %.2f |\n", Median(verify_s), total / Median(verify_s) / 1e9);
  std::printf("| openssl dgst -sha256 | %.3f | %.2f |\n", Median(openssl_s), total / Median(openssl_s) / 1e9);
  std::printf("\nVerify / openssl time ratio (median of per-round ratios): %.3f\n", Median(ratio));
  for (Target& t : targets) {
    if (t.other > 0) {
      ::kill(t.other, SIGTERM);
      ::waitpid(t.other, nullptr, 0);
    }
  }
  return 0;
}
