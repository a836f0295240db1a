// ingest_variants: the daemon's ingest loop (daemon/engine/blob_store.cc,
// CopyAndHash + PosixWritableFile) rebuilt in one process, next to variants
// of it, to see where a store's time goes and what would shorten it. No
// daemon, no D-Bus: only read/hash/write/fsync of one file.
//
// Usage: ingest_variants SOURCE DEST_DIR [ROUNDS] [VARIANT...]
//   SOURCE is read from the page cache (it is read once first); each variant
//   writes DEST_DIR/variant.out, fsyncs it, checks its digest and removes it.
//   Variants run interleaved, ROUNDS times (default 3); medians are printed.
//   With no VARIANT, all run.

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kMiB = size_t{1} << 20;
constexpr uint64_t kWritebackInterval = uint64_t{64} << 20;

[[noreturn]] void Fail(const std::string& what) {
  throw std::runtime_error(what + ": " + std::strerror(errno));
}

class Hasher {
 public:
  Hasher() : ctx_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr); }
  ~Hasher() { EVP_MD_CTX_free(ctx_); }
  Hasher(const Hasher&) = delete;
  Hasher& operator=(const Hasher&) = delete;
  void Update(const void* data, size_t n) { EVP_DigestUpdate(ctx_, data, n); }
  std::string Hex() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx_, md, &len);
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    for (unsigned i = 0; i < len; ++i) {
      out += kHex[md[i] >> 4];
      out += kHex[md[i] & 0xf];
    }
    return out;
  }

 private:
  EVP_MD_CTX* ctx_;
};

void WriteAll(int fd, const char* data, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, data, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) Fail("write");
    data += w;
    n -= static_cast<size_t>(w);
  }
}

ssize_t ReadSome(int fd, char* data, size_t n) {
  for (;;) {
    ssize_t r = ::read(fd, data, n);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) Fail("read");
    return r;
  }
}

// Writer flags.
constexpr int kRangeSync = 1;       // sync_file_range(WRITE) every 64 MiB (the daemon before 6a96322)
constexpr int kBackgroundSync = 2;  // a helper thread fdatasyncs every 128 MiB
constexpr uint64_t kBackgroundSyncInterval = uint64_t{128} << 20;

// What the daemon's PosixWritableFile does: write(2). With kRangeSync, every
// 64 MiB ask the kernel to start writeback of what was written since. With
// kBackgroundSync, a helper thread fdatasyncs the file every 128 MiB, so
// that the device cache flush (the slow part of the final fsync on this VM:
// ~0.4 s per GiB written since the last flush) overlaps the loop.
class Writer {
 public:
  Writer(int fd, int flags) : fd_(fd), flags_(flags) {
    if (flags_ & kBackgroundSync) syncer_ = std::thread([this] { SyncLoop(); });
  }
  ~Writer() {
    if (syncer_.joinable()) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        stop_ = true;
      }
      cv_.notify_all();
      syncer_.join();
    }
  }
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  void Append(const char* data, size_t n) {
    WriteAll(fd_, data, n);
    written_ += n;
    if ((flags_ & kRangeSync) && written_ - started_ >= kWritebackInterval) {
      ::sync_file_range(fd_, static_cast<off_t>(started_), static_cast<off_t>(written_ - started_),
                        SYNC_FILE_RANGE_WRITE);
      started_ = written_;
    }
    if ((flags_ & kBackgroundSync) && written_ - synced_request_ >= kBackgroundSyncInterval) {
      synced_request_ = written_;
      {
        std::lock_guard<std::mutex> lock(mu_);
        sync_wanted_ = true;
      }
      cv_.notify_all();
    }
  }

 private:
  void SyncLoop() {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      cv_.wait(lock, [&] { return sync_wanted_ || stop_; });
      if (stop_) return;
      sync_wanted_ = false;
      lock.unlock();
      ::fdatasync(fd_);  // a head start; errors show again at the final fsync
      lock.lock();
    }
  }

  int fd_;
  int flags_;
  uint64_t written_ = 0;
  uint64_t started_ = 0;
  uint64_t synced_request_ = 0;
  std::thread syncer_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool sync_wanted_ = false;
  bool stop_ = false;
};

struct Io {
  int src;
  int dst;  // -1 for hash-only variants
};

// The daemon today (CopyAndHash): one thread, read -> hash -> write, 1 MiB
// at a time.
std::string Serial(const Io& io, size_t buffer_size, int flags, bool hash, bool write) {
  auto buffer = std::make_unique_for_overwrite<char[]>(buffer_size);
  Hasher hasher;
  Writer writer(io.dst, flags);
  for (;;) {
    ssize_t n = ReadSome(io.src, buffer.get(), buffer_size);
    if (n == 0) break;
    if (hash) hasher.Update(buffer.get(), static_cast<size_t>(n));
    if (write) writer.Append(buffer.get(), static_cast<size_t>(n));
  }
  return hasher.Hex();
}

// Two threads over a ring of buffers: this one reads and writes, a second
// one hashes the same buffers; a buffer is reused once it is hashed.
std::string Pipelined(const Io& io, size_t buffer_size, size_t slots, int flags) {
  std::vector<std::unique_ptr<char[]>> buffers;
  for (size_t i = 0; i < slots; ++i) buffers.push_back(std::make_unique_for_overwrite<char[]>(buffer_size));
  std::vector<size_t> lengths(slots, 0);
  std::mutex mu;
  std::condition_variable cv;
  size_t produced = 0, consumed = 0;  // counts of buffers
  bool done = false;
  Hasher hasher;
  std::thread hash_thread([&] {
    for (;;) {
      size_t slot, length;
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return consumed < produced || done; });
        if (consumed == produced) return;
        slot = consumed % slots;
        length = lengths[slot];
      }
      hasher.Update(buffers[slot].get(), length);
      {
        std::lock_guard<std::mutex> lock(mu);
        ++consumed;
      }
      cv.notify_all();
    }
  });
  Writer writer(io.dst, flags);
  for (;;) {
    size_t slot;
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return produced - consumed < slots; });
      slot = produced % slots;
    }
    ssize_t n = ReadSome(io.src, buffers[slot].get(), buffer_size);
    if (n == 0) break;
    writer.Append(buffers[slot].get(), static_cast<size_t>(n));
    {
      std::lock_guard<std::mutex> lock(mu);
      lengths[slot] = static_cast<size_t>(n);
      ++produced;
    }
    cv.notify_all();
  }
  {
    std::lock_guard<std::mutex> lock(mu);
    done = true;
  }
  cv.notify_all();
  hash_thread.join();
  return hasher.Hex();
}

// Same ring, but this thread only reads; a second one hashes and a third
// one writes, so read, hash and write all overlap.
std::string ReadThenFanOut(const Io& io, size_t buffer_size, size_t slots, int flags) {
  std::vector<std::unique_ptr<char[]>> buffers;
  for (size_t i = 0; i < slots; ++i) buffers.push_back(std::make_unique_for_overwrite<char[]>(buffer_size));
  std::vector<size_t> lengths(slots, 0);
  std::mutex mu;
  std::condition_variable cv;
  size_t produced = 0, hashed = 0, written = 0;
  bool done = false;
  Hasher hasher;
  Writer writer(io.dst, flags);
  auto consumer = [&](size_t* counter, const std::function<void(const char*, size_t)>& use) {
    for (;;) {
      size_t slot, length;
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return *counter < produced || done; });
        if (*counter == produced) return;
        slot = *counter % slots;
        length = lengths[slot];
      }
      use(buffers[slot].get(), length);
      {
        std::lock_guard<std::mutex> lock(mu);
        ++*counter;
      }
      cv.notify_all();
    }
  };
  std::thread hash_thread([&] { consumer(&hashed, [&](const char* d, size_t n) { hasher.Update(d, n); }); });
  std::thread write_thread([&] { consumer(&written, [&](const char* d, size_t n) { writer.Append(d, n); }); });
  for (;;) {
    size_t slot;
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return produced - std::min(hashed, written) < slots; });
      slot = produced % slots;
    }
    ssize_t n = ReadSome(io.src, buffers[slot].get(), buffer_size);
    if (n == 0) break;
    {
      std::lock_guard<std::mutex> lock(mu);
      lengths[slot] = static_cast<size_t>(n);
      ++produced;
    }
    cv.notify_all();
  }
  {
    std::lock_guard<std::mutex> lock(mu);
    done = true;
  }
  cv.notify_all();
  hash_thread.join();
  write_thread.join();
  return hasher.Hex();
}

// The kernel copies (copy_file_range from the shared offset, page cache to
// page cache, no user copy); a second thread hashes the copied bytes from
// the destination's page cache through mmap, following behind.
std::string CopyRangeHashDest(const Io& io, size_t chunk, int flags) {
  std::mutex mu;
  std::condition_variable cv;
  uint64_t copied = 0;
  bool done = false;
  Hasher hasher;
  std::thread hash_thread([&] {
    uint64_t hashed = 0;
    void* map = nullptr;
    size_t map_size = 0;
    for (;;) {
      uint64_t upto;
      bool finished;
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return copied > hashed || done; });
        upto = copied;
        finished = done;
      }
      if (upto > hashed) {
        // Map what exists so far (the file grows: remap when needed).
        if (upto > map_size) {
          if (map != nullptr) ::munmap(map, map_size);
          map_size = static_cast<size_t>(upto);
          map = ::mmap(nullptr, map_size, PROT_READ, MAP_SHARED, io.dst, 0);
          if (map == MAP_FAILED) Fail("mmap");
          ::madvise(map, map_size, MADV_SEQUENTIAL);
        }
        hasher.Update(static_cast<const char*>(map) + hashed, static_cast<size_t>(upto - hashed));
        hashed = upto;
      } else if (finished) {
        break;
      }
    }
    if (map != nullptr) ::munmap(map, map_size);
  });
  uint64_t started = 0;
  for (;;) {
    ssize_t n = ::copy_file_range(io.src, nullptr, io.dst, nullptr, chunk, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) Fail("copy_file_range");
    if (n == 0) break;
    {
      std::lock_guard<std::mutex> lock(mu);
      copied += static_cast<uint64_t>(n);
    }
    cv.notify_all();
    if ((flags & kRangeSync) && copied - started >= kWritebackInterval) {
      ::sync_file_range(io.dst, static_cast<off_t>(started), static_cast<off_t>(copied - started),
                        SYNC_FILE_RANGE_WRITE);
      started = copied;
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu);
    done = true;
  }
  cv.notify_all();
  hash_thread.join();
  return hasher.Hex();
}

struct Variant {
  const char* name;
  bool writes;
  std::function<std::string(const Io&)> run;
};

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

double ThreadsCpu() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

int Main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s SOURCE DEST_DIR [ROUNDS] [VARIANT...]\n", argv[0]);
    return 2;
  }
  const std::string source = argv[1];
  const std::string out = std::string(argv[2]) + "/variant.out";
  const int rounds = argc > 3 ? std::atoi(argv[3]) : 3;

  constexpr int kSfr = kRangeSync;
  constexpr int kFlush = kBackgroundSync;
  const std::vector<Variant> all = {
      {"hash-only (read+sha256)", false, [](const Io& io) { return Serial(io, kMiB, 0, true, false); }},
      {"write-only (read+write+fsync)", true,
       [](const Io& io) {
         Serial(io, kMiB, 0, false, true);
         return std::string();
       }},
      {"daemon: serial 1M", true, [](const Io& io) { return Serial(io, kMiB, 0, true, true); }},
      {"serial 1M +sfr", true, [](const Io& io) { return Serial(io, kMiB, kSfr, true, true); }},
      {"serial 256K", true, [](const Io& io) { return Serial(io, 256 << 10, 0, true, true); }},
      {"serial 8M", true, [](const Io& io) { return Serial(io, 8 * kMiB, 0, true, true); }},
      {"serial 1M +early-flush", true, [](const Io& io) { return Serial(io, kMiB, kFlush, true, true); }},
      {"2 threads 1Mx4", true, [](const Io& io) { return Pipelined(io, kMiB, 4, 0); }},
      {"2 threads 1Mx4 +sfr", true, [](const Io& io) { return Pipelined(io, kMiB, 4, kSfr); }},
      {"2 threads 1Mx4 +early-flush", true, [](const Io& io) { return Pipelined(io, kMiB, 4, kFlush); }},
      {"3 threads 1Mx4", true, [](const Io& io) { return ReadThenFanOut(io, kMiB, 4, 0); }},
      {"copy_file_range+mmap hash", true, [](const Io& io) { return CopyRangeHashDest(io, 8 * kMiB, 0); }},
  };
  std::vector<const Variant*> chosen;
  for (int i = 4; i < argc; ++i) {
    for (const Variant& v : all) {
      if (std::strstr(v.name, argv[i]) != nullptr) chosen.push_back(&v);
    }
  }
  if (chosen.empty()) {
    for (const Variant& v : all) chosen.push_back(&v);
  }

  // The reference digest, and a warm page cache.
  std::string expected;
  {
    int fd = ::open(source.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) Fail("open " + source);
    expected = Serial(Io{fd, -1}, kMiB, false, true, false);
    ::close(fd);
  }
  struct stat st {};
  ::stat(source.c_str(), &st);
  const double mib = static_cast<double>(st.st_size) / kMiB;

  std::map<const Variant*, std::vector<double>> walls, cpus;
  for (int round = 0; round < rounds; ++round) {
    std::vector<const Variant*> order = chosen;
    if (round % 2 == 1) std::reverse(order.begin(), order.end());
    for (const Variant* v : order) {
      int dirfd = ::open(argv[2], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      ::syncfs(dirfd);
      int src = ::open(source.c_str(), O_RDONLY | O_CLOEXEC);
      if (src < 0) Fail("open " + source);
      ::posix_fadvise(src, 0, 0, POSIX_FADV_SEQUENTIAL);
      int dst = -1;
      if (v->writes) {
        dst = ::open(out.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (dst < 0) Fail("create " + out);
      }
      const double cpu0 = ThreadsCpu();
      const Clock::time_point start = Clock::now();
      std::string digest = v->run(Io{src, dst});
      const Clock::time_point loop_end = Clock::now();
      if (dst >= 0 && ::fsync(dst) != 0) Fail("fsync");
      const double wall = std::chrono::duration<double>(Clock::now() - start).count();
      const double fsync_wait = std::chrono::duration<double>(Clock::now() - loop_end).count();
      const double cpu = ThreadsCpu() - cpu0;
      ::close(src);
      if (dst >= 0) {
        ::close(dst);
        ::unlink(out.c_str());
      }
      ::close(dirfd);
      if (!digest.empty() && digest != expected) {
        std::fprintf(stderr, "%s: wrong digest %s\n", v->name, digest.c_str());
        return 1;
      }
      walls[v].push_back(wall);
      cpus[v].push_back(cpu);
      std::printf("  %-32s %7.3f s %7.0f MiB/s  cpu %5.2f s  (of which final fsync %5.3f s)\n", v->name,
                  wall, mib / wall, cpu, fsync_wait);
      std::fflush(stdout);
    }
  }
  std::printf("\n| variant | median s | MiB/s | min s | cpu s (median) | cpu s (min) |\n"
              "|---|---:|---:|---:|---:|---:|\n");
  for (const Variant* v : chosen) {
    const double m = Median(walls[v]);
    std::printf("| %s | %.3f | %.0f | %.3f | %.2f | %.2f |\n", v->name, m, mib / m,
                *std::min_element(walls[v].begin(), walls[v].end()), Median(cpus[v]),
                *std::min_element(cpus[v].begin(), cpus[v].end()));
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return Main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ingest_variants: %s\n", e.what());
    return 1;
  }
}
