// private_bench: private store and open throughput against public ones,
// through the real costored on a private bus with a real gnome-keyring,
// as ratios measured in one run.
//
//   store      Store1.Store of FILE, public               (read, hash, write, fsync)
//   store/p    Store1.Store of FILE with "private"        (+ seal each chunk, keyring)
//   open       Store1.Open + read(2) to EOF, public       (the file itself)
//   open/p     the same, private: a sealed memfd          (+ keyring, decrypt all first)
//   stream/p   the same, private with "stream": a pipe    (+ keyring, decrypt as read)
//
// Each round runs each measurement once, in an order that alternates
// between rounds, so that a shared machine's noise hits both sides; every
// store is of a file the store does not hold (the previous copy is deleted,
// untimed). Medians and their ratios are printed; with --markdown FILE a
// dated section with the machine's description is appended to FILE.
//
// Usage: private_bench [--bytes N[M|G]] [--rounds N] [--markdown FILE]
// Environment: COSTORE_BENCH_BYTES, COSTORE_BENCH_ROUNDS (flags win).
// The scratch directory (source file, store, keyring) is under $TMPDIR or /tmp.
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "bench/bench_util.h"
#include "tests/integration/daemon_harness.h"
#include "tests/integration/keyring_harness.h"

namespace {

using costore::test::DaemonHarness;
using costore::test::Dict;
using costore::bench::Median;
using costore::bench::Now;
using costore::test::KeyringHarness;

std::string Command(const std::string& command) {
  std::string out;
  if (FILE* pipe = popen(command.c_str(), "r")) {
    char buf[512];
    while (fgets(buf, sizeof buf, pipe)) out += buf;
    pclose(pipe);
  }
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

uint64_t ReadToEnd(int fd) {
  static std::vector<char> buf(1 << 20);
  uint64_t total = 0;
  ssize_t n;
  while ((n = read(fd, buf.data(), buf.size())) > 0) total += static_cast<uint64_t>(n);
  return total;
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t bytes = 256ull << 20;
  int rounds = 3;
  std::string markdown;
  if (const char* env = std::getenv("COSTORE_BENCH_BYTES")) bytes = costore::bench::ParseBytes(env);
  if (const char* env = std::getenv("COSTORE_BENCH_ROUNDS")) rounds = std::atoi(env);
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--bytes" && i + 1 < argc) bytes = costore::bench::ParseBytes(argv[++i]);
    else if (arg == "--rounds" && i + 1 < argc) rounds = std::atoi(argv[++i]);
    else if (arg == "--markdown" && i + 1 < argc) markdown = argv[++i];
    else {
      std::fprintf(stderr, "usage: private_bench [--bytes N[M|G]] [--rounds N] [--markdown FILE]\n");
      return 2;
    }
  }
  const std::string load_at_start = Command("cut -d' ' -f1-3 /proc/loadavg");

  DaemonHarness harness;
  KeyringHarness keyring(harness.address(), harness.scratch("keyring"));
  keyring.Start();
  auto client = harness.Connect();

  const std::string source = harness.scratch("source.bin");
  {
    std::ofstream out(source, std::ios::binary);
    std::vector<char> block(1 << 20);
    uint64_t state = 0x243f6a8885a308d3ull;
    for (uint64_t done = 0; done < bytes; done += block.size()) {
      costore::bench::FillXorshift(&block, &state);
      out.write(block.data(), static_cast<std::streamsize>(std::min<uint64_t>(block.size(), bytes - done)));
    }
  }
  const std::string digest = costore::test::DigestOf(costore::test::ReadFile(source));  // also warms the cache
  const std::string kOrigin = "https://bench.example";

  auto store = [&](bool is_private) {
    int fd = open(source.c_str(), O_RDONLY | O_CLOEXEC);
    Dict options{{"size", sdbus::Variant(bytes)}};
    if (is_private) options["private"] = sdbus::Variant(true);
    std::string message;
    std::string error = client->TryStore(kOrigin, digest, fd, options, nullptr, &message);
    close(fd);
    if (!error.empty()) throw std::runtime_error(error + ": " + message);
  };
  auto open_read = [&](bool stream) {
    Dict options;
    if (stream) options["stream"] = sdbus::Variant(true);
    auto [fd, info] = client->Open(kOrigin, digest, options);
    uint64_t got = ReadToEnd(fd.get());
    if (got != bytes) throw std::runtime_error("short read: " + std::to_string(got));
  };

  std::map<std::string, std::vector<double>> times;
  auto measure = [&](const std::string& name, const std::function<void()>& body) {
    sync();
    double t0 = Now();
    body();
    times[name].push_back(Now() - t0);
  };
  // Store the private copy once untimed, so that the first keyring use
  // (making the master key) is not in any measurement.
  store(true);
  client->Delete(digest);

  for (int round = 0; round < rounds; ++round) {
    const bool private_first = round % 2 == 1;
    for (int k = 0; k < 2; ++k) {
      const bool is_private = (k == 0) == private_first;
      measure(is_private ? "store/p" : "store", [&] { store(is_private); });
      measure(is_private ? "open/p" : "open", [&] { open_read(false); });
      if (is_private) measure("stream/p", [&] { open_read(true); });
      client->Delete(digest);
    }
  }

  // The fixed cost of a private open (the keyring lookup, the memfd): a
  // 4 KiB file opened 50 times each way.
  const std::string small(4096, 's');
  const std::string small_digest = costore::test::DigestOf(small);
  client->TryStore(kOrigin, small_digest, costore::test::PipeFrom(small), {});
  const std::string small_private_origin = "https://bench-private.example";
  client->TryStore(small_private_origin, small_digest, costore::test::PipeFrom(small),
                   {{"private", sdbus::Variant(true)}});
  auto small_opens = [&](const std::string& origin) {
    double t0 = Now();
    for (int i = 0; i < 50; ++i) {
      auto [fd, info] = client->Open(origin, small_digest, {});
      ReadToEnd(fd.get());
    }
    return (Now() - t0) / 50;
  };
  const double small_public = small_opens(kOrigin);
  const double small_private = small_opens(small_private_origin);

  const double mib = static_cast<double>(bytes) / (1 << 20);
  std::ostringstream table;
  char line[512];
  table << "| measurement | median s | MiB/s | rounds (s) |\n|---|---:|---:|---|\n";
  for (const char* name : {"store", "store/p", "open", "open/p", "stream/p"}) {
    std::string all;
    for (double t : times[name]) {
      char v[32];
      std::snprintf(v, sizeof v, "%s%.3f", all.empty() ? "" : ", ", t);
      all += v;
    }
    std::snprintf(line, sizeof line, "| %s | %.3f | %.0f | %s |\n", name, Median(times[name]),
                  mib / Median(times[name]), all.c_str());
    table << line;
  }
  table << "\n| ratio | median-based |\n|---|---:|\n";
  std::snprintf(line, sizeof line, "| private store / public store | **%.2f** |\n",
                Median(times["store/p"]) / Median(times["store"]));
  table << line;
  std::snprintf(line, sizeof line, "| private open+read (memfd) / public open+read | **%.2f** |\n",
                Median(times["open/p"]) / Median(times["open"]));
  table << line;
  std::snprintf(line, sizeof line, "| private open+read (stream) / public open+read | **%.2f** |\n",
                Median(times["stream/p"]) / Median(times["open"]));
  table << line;
  std::snprintf(line, sizeof line,
                "\nA 4 KiB file, Open + read, mean of 50: public %.2f ms, private %.2f ms (the keyring lookup and "
                "the memfd: the fixed cost of a private open).\n",
                small_public * 1000, small_private * 1000);
  table << line;
  std::printf("%s", table.str().c_str());

  if (!markdown.empty()) {
    char date[64];
    std::time_t now = std::time(nullptr);
    std::strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S %Z", std::localtime(&now));
    utsname u{};
    uname(&u);
    std::ofstream out(markdown, std::ios::app);
    out << "\n## " << date << ", " << u.nodename << ": private files (bench/private_bench)\n\n";
    out << "- date: " << date << "\n";
    out << "- uname -a: `" << Command("uname -a") << "`\n";
    out << "- cpu: " << Command("lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1") << "; nproc: "
        << Command("nproc") << "; AES-NI: " << (Command("grep -qw aes /proc/cpuinfo && echo yes || echo no"))
        << "; SHA-NI: " << Command("grep -qw sha_ni /proc/cpuinfo && echo yes || echo no") << "\n";
    out << "- load average at start: " << load_at_start << "\n";
    out << "- costore: " << Command("git -C " COSTORE_SOURCE_DIR " rev-parse --short HEAD 2>/dev/null") << " (+ working tree)"
        << "; cipher of private files: aes-256-gcm if AES-NI, else xchacha20-poly1305; chunk 1 MiB\n";
    out << "- command: `private_bench --bytes " << bytes << " --rounds " << rounds << "`\n\n";
    std::snprintf(line, sizeof line,
                  "File: %.0f MiB of random bytes; %d interleaved round(s), median shown; page cache warm; "
                  "real costored and gnome-keyring-daemon on a private bus; store on %s.\n\n",
                  mib, rounds, Command("df --output=fstype " + harness.scratch("") + " | tail -1").c_str());
    out << line;
    out << "Public store: read, hash, write, fsync. Private store: the same pass, sealing each 1 MiB chunk, plus "
           "one keyring lookup. Public open: the file's descriptor. Private open: a keyring lookup, then every chunk "
           "authenticated and decrypted into a sealed memfd before the reply (memfd), or into a pipe as the "
           "caller reads (stream).\n\n";
    out << table.str();
  }
  return 0;
}
