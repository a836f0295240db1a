// watchdog_bench: what libcostore's stall watchdog costs a quick call.
// Stat of a missing digest through the real costored (private bus, the
// integration-test harness), from two clients: one with the default 30 s
// stall timeout (watched) and one with none (unwatched), interleaved
// sample by sample so that load on the machine hits both alike.
//
//   watchdog_bench [SAMPLES]     (default 5000 per side)
//
// Prints the medians and their ratio (goal <= 1.03). Record the run in
// bench/RESULTS.md with machine, date and load.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <costore/costore.hpp>

#include "bench/bench_util.h"
#include "tests/integration/daemon_harness.h"

namespace {

using costore::bench::Median;
using costore::bench::Now;
using costore::client::Client;

double TimeStat(const Client& client, const std::string& digest) {
  const double start = Now();
  try {
    client.Stat(digest);
  } catch (const costore::client::Error& error) {
    if (error.code() != costore::client::ErrorCode::kNotFound) {
      std::fprintf(stderr, "watchdog_bench: Stat: %s\n", error.what());
      std::exit(1);
    }
  }
  return Now() - start;
}

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[static_cast<size_t>(p * static_cast<double>(v.size() - 1))];
}

}  // namespace

int main(int argc, char** argv) {
  const int samples = argc > 1 ? std::atoi(argv[1]) : 5000;
  costore::test::DaemonHarness harness;
  Client watched = Client::Connect();  // the default stall timeout, 30 s
  Client unwatched = Client::Connect();
  unwatched.SetStallTimeout(std::chrono::milliseconds(0));
  const std::string missing = "sha256:" + std::string(64, 'e');
  for (int i = 0; i < 200; ++i) {  // warm up: connections, the daemon's caches
    TimeStat(watched, missing);
    TimeStat(unwatched, missing);
  }
  std::vector<double> on, off;
  for (int i = 0; i < samples; ++i) {
    // Alternate which goes first, so neither always follows the other.
    if (i % 2) {
      on.push_back(TimeStat(watched, missing));
      off.push_back(TimeStat(unwatched, missing));
    } else {
      off.push_back(TimeStat(unwatched, missing));
      on.push_back(TimeStat(watched, missing));
    }
  }
  std::printf("Stat of a missing digest, %d interleaved samples each\n", samples);
  std::printf("  unwatched: p50 %.1f us  p90 %.1f us\n", Median(off) * 1e6, Percentile(off, 0.9) * 1e6);
  std::printf("  watched:   p50 %.1f us  p90 %.1f us\n", Median(on) * 1e6, Percentile(on, 0.9) * 1e6);
  std::printf("  ratio watched/unwatched p50: %.3f (goal <= 1.03)\n", Median(on) / Median(off));
  return 0;
}
