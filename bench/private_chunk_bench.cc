// private_chunk_bench: picks the chunk size of private files by measurement.
//
// For each chunk size, in one process (no daemon, no D-Bus, no keyring):
//   seal    the daemon's private ingest: BlobStore::Ingest from a regular
//           file in the page cache, hashing the plaintext and sealing it
//           through SealingFile into ingest/ (fsync included), one pass
//   memfd   SealedReader + UnsealToMemfd (what a private Open does)
//   stream  PrivateStream into a pipe, read to EOF by another thread
// against the public ingest (no sealing) as the baseline. Reported: wall
// and CPU seconds (this process, all threads), medians of interleaved
// rounds, and the bytes of memory the chunk buffers take.
//
// Usage: private_chunk_bench [--bytes N[M|G]] [--rounds N] [--cipher aes|xchacha]
// The scratch directory is made under $TMPDIR, or /tmp.
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_util.h"
#include "daemon/crypto/sealed_file.h"
#include "daemon/engine/blob_store.h"
#include "daemon/engine/private_files.h"
#include "daemon/engine/sha256.h"

namespace costore {
namespace {

using bench::FillXorshift;
using bench::Median;
using bench::Now;
using bench::ParseBytes;

double CpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_utime.tv_sec + usage.ru_stime.tv_sec + (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

struct Sample {
  double wall = 0, cpu = 0;
};

void Die(const Status& s, const char* what) {
  if (s.ok()) return;
  std::fprintf(stderr, "%s: %s\n", what, s.ToString().c_str());
  std::exit(1);
}

}  // namespace
}  // namespace costore

int main(int argc, char** argv) {
  using namespace costore;
  uint64_t bytes = 256ull << 20;
  int rounds = 3;
  Cipher cipher = PreferredCipher();
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--bytes" && i + 1 < argc) bytes = ParseBytes(argv[++i]);
    else if (arg == "--rounds" && i + 1 < argc) rounds = std::atoi(argv[++i]);
    else if (arg == "--cipher" && i + 1 < argc) {
      cipher = std::string(argv[++i]) == "aes" ? Cipher::kAes256Gcm : Cipher::kXChaCha20Poly1305;
    } else {
      std::fprintf(stderr, "usage: private_chunk_bench [--bytes N[M|G]] [--rounds N] [--cipher aes|xchacha]\n");
      return 2;
    }
  }
  const char* tmp = std::getenv("TMPDIR");
  std::string scratch = std::string(tmp && *tmp ? tmp : "/tmp") + "/costore-chunk-bench-XXXXXX";
  if (mkdtemp(scratch.data()) == nullptr) return 1;

  // The source: random bytes, written once and read once so they sit in
  // the page cache.
  const std::string source = scratch + "/source";
  {
    int fd = open(source.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    std::vector<char> block(1 << 20);
    uint64_t state = 0x9e3779b97f4a7c15ull;
    for (uint64_t done = 0; done < bytes; done += block.size()) {
      FillXorshift(&block, &state);
      size_t n = static_cast<size_t>(std::min<uint64_t>(block.size(), bytes - done));
      if (write(fd, block.data(), n) != static_cast<ssize_t>(n)) return 1;
    }
    close(fd);
  }
  Digest digest;
  {
    Sha256 hasher;
    int fd = open(source.c_str(), O_RDONLY);
    std::vector<std::byte> buf(1 << 20);
    ssize_t n;
    while ((n = read(fd, buf.data(), buf.size())) > 0) hasher.Update(std::span(buf.data(), static_cast<size_t>(n)));
    close(fd);
    digest = hasher.Finish();
  }

  const std::vector<uint32_t> sizes = {16u << 10, 64u << 10, 256u << 10, 1u << 20, 4u << 20, 16u << 20};
  std::map<std::string, std::vector<double>> wall, cpu;
  SecretKey key = SecretKey::Random();
  BlobStore store(Env::Default(), scratch + "/store");
  costore::InitReport report;
  Die(store.Init(&report), "init");

  auto measure = [&](const std::string& name, const std::function<void()>& body) {
    sync();
    double w0 = Now(), c0 = CpuSeconds();
    body();
    wall[name].push_back(Now() - w0);
    cpu[name].push_back(CpuSeconds() - c0);
  };

  auto public_ingest = [&] {
    measure("public ingest", [&] {
      int fd = open(source.c_str(), O_RDONLY | O_CLOEXEC);
      IngestRequest request;
      request.source_fd = fd;
      request.expected = digest;
      StagedBlob staged;
      Die(store.Ingest(request, &staged), "public ingest");
      close(fd);
      // Removing the file is not part of the work measured.
      std::filesystem::rename(staged.path(), scratch + "/public");
      staged = StagedBlob();
    });
    std::filesystem::remove(scratch + "/public");
  };
  for (int round = 0; round < rounds; ++round) {
    // The baseline twice a round, at both ends, so that drift in a shared
    // machine's load hits it as much as the chunk sizes.
    public_ingest();
    for (size_t k = 0; k < sizes.size(); ++k) {
      const uint32_t chunk = sizes[(k + static_cast<size_t>(round)) % sizes.size()];  // vary the order
      const std::string tag = std::to_string(chunk >> 10) + " KiB";
      SealedHeader header;
      header.cipher = cipher;
      header.chunk_size = chunk;
      header.digest = digest;
      std::string sealed_path;
      measure("seal " + tag, [&] {
        std::unique_ptr<ChunkCipher> chunk_cipher;
        Die(ChunkCipher::Create(header, key, &chunk_cipher), "cipher");
        int fd = open(source.c_str(), O_RDONLY | O_CLOEXEC);
        IngestRequest request;
        request.source_fd = fd;
        request.expected = digest;
        request.filter = [&](std::unique_ptr<WritableFile> file) -> std::unique_ptr<WritableFile> {
          return std::make_unique<SealingFile>(std::move(file), std::move(chunk_cipher));
        };
        StagedBlob staged;
        Die(store.Ingest(request, &staged), "private ingest");
        close(fd);
        sealed_path = scratch + "/sealed";
        std::filesystem::remove(sealed_path);
        std::filesystem::rename(staged.path(), sealed_path);
        staged = StagedBlob();
      });
      measure("memfd " + tag, [&] {
        int fd = open(sealed_path.c_str(), O_RDONLY | O_CLOEXEC);
        std::unique_ptr<SealedReader> reader;
        Die(SealedReader::Open(fd, {digest, bytes, cipher}, key, "bench", &reader), "reader");
        int memfd = -1;
        Die(UnsealToMemfd(reader.get(), "bench", &memfd), "memfd");
        close(memfd);
        close(fd);
      });
      measure("stream " + tag, [&] {
        int fd = open(sealed_path.c_str(), O_RDONLY | O_CLOEXEC);
        std::unique_ptr<SealedReader> reader;
        Die(SealedReader::Open(fd, {digest, bytes, cipher}, key, "bench", &reader), "reader");
        PrivateStream stream(fd, std::move(reader), "bench");
        int read_fd = -1;
        Die(stream.Prepare(&read_fd), "prepare");
        std::thread consumer([read_fd] {
          std::vector<char> buf(1 << 20);
          while (read(read_fd, buf.data(), buf.size()) > 0) {
          }
          close(read_fd);
        });
        Die(stream.Pump(nullptr, 60'000), "pump");
        consumer.join();
      });
      std::filesystem::remove(sealed_path);
    }
    public_ingest();
  }

  const double mib = static_cast<double>(bytes) / (1 << 20);
  std::printf("private_chunk_bench: %.0f MiB, %d rounds (median), cipher %s, scratch on %s\n\n", mib, rounds,
              std::string(CipherName(cipher)).c_str(), scratch.c_str());
  std::printf("| chunk | seal wall s | seal cpu s | seal MiB/s | memfd wall s | memfd cpu s | stream wall s | stream cpu s | buffers |\n");
  std::printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  std::printf("| public ingest | %.3f | %.3f | %.0f | | | | | 1 MiB |\n", Median(wall["public ingest"]),
              Median(cpu["public ingest"]), mib / Median(wall["public ingest"]));
  for (uint32_t chunk : sizes) {
    const std::string tag = std::to_string(chunk >> 10) + " KiB";
    std::printf("| %s | %.3f | %.3f | %.0f | %.3f | %.3f | %.3f | %.3f | %u KiB |\n", tag.c_str(),
                Median(wall["seal " + tag]), Median(cpu["seal " + tag]), mib / Median(wall["seal " + tag]),
                Median(wall["memfd " + tag]), Median(cpu["memfd " + tag]), Median(wall["stream " + tag]),
                Median(cpu["stream " + tag]), 3 * (chunk >> 10) + 1024);
  }
  std::filesystem::remove_all(scratch);
  return 0;
}
