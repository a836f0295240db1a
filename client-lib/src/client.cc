// costore::client::Client: the generated Store1/Manager1 proxies behind a
// small API with file-descriptor plumbing, progress and error mapping.
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <future>
#include <initializer_list>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include <costore-ipc/Manager1_proxy.h>
#include <costore-ipc/Store1_proxy.h>
#include <costore-ipc/names.h>
#include <sdbus-c++/sdbus-c++.h>

#include "busy_retry.h"
#include "internal.h"
#include "stall_watchdog.h"

namespace costore::client {
namespace {

using namespace std::chrono_literals;
using VariantMap = std::map<std::string, sdbus::Variant>;

// Method-call timeouts. The generated proxies use the connection's timeout,
// so each call sets it on the connection it runs on. Every call is also
// watched for a stalled daemon (StallWatchdog, the Client's stall timeout):
// these only bound what a daemon that answers pings may take. Store has
// none: it lasts as long as its bytes take to arrive (a private one may
// first wait for the keyring to be unlocked), and the daemon itself
// abandons a source idle for 120 s. Open may wait for the user's answer in a consent dialog
// (up to 60 s), or for the keyring's unlock prompt and the decryption of a
// private file. Rekey may wait for the unlock prompt, then re-wraps every
// private file's data key. Verify reads and hashes every byte of the files
// it checks, at idle I/O priority: hours for a large store on a busy disk.
constexpr uint64_t kStoreTimeoutUsec = UINT64_MAX;  // sd-bus: infinity
constexpr uint64_t kOpenTimeoutUsec = std::chrono::microseconds(10min).count();
constexpr uint64_t kRekeyTimeoutUsec = std::chrono::microseconds(10min).count();
constexpr uint64_t kVerifyTimeoutUsec = std::chrono::microseconds(24h).count();
constexpr uint64_t kManagerTimeoutUsec = std::chrono::microseconds(25s).count();  // the D-Bus default

constexpr std::chrono::milliseconds kDefaultStallTimeout = 30s;

constexpr size_t kMaxIdleConnections = 4;
constexpr auto kProgressInterval = 100ms;
constexpr size_t kStreamChunkSize = size_t{1} << 20;
constexpr int kPipeSize = 1 << 20;

// Store1 through the generated glue. Store1 has no signals, so the proxy
// needs no registration.
class StoreProxy final : public sdbus::ProxyInterfaces<io::github::costore::Store1_proxy> {
 public:
  explicit StoreProxy(sdbus::IConnection& connection)
      : ProxyInterfaces(connection, ipc::kBusName, ipc::kObjectPath) {}
  ~StoreProxy() { unregisterProxy(); }
};

// Manager1 through the generated glue. registerProxy() is deliberately not
// called: it would subscribe to Changed, and these connections run no event
// loop, so the signals would only pile up unread.
class ManagerProxy final : public sdbus::ProxyInterfaces<io::github::costore::Manager1_proxy> {
 public:
  explicit ManagerProxy(sdbus::IConnection& connection)
      : ProxyInterfaces(connection, ipc::kBusName, ipc::kObjectPath) {}
  ~ManagerProxy() { unregisterProxy(); }

 private:
  void onChanged(const std::string& /*what*/, const std::string& /*digest*/) override {}
};

std::string SystemError(int err) { return std::strerror(err); }

std::unique_ptr<sdbus::IConnection> ConnectToSessionBus() {
  try {
    return sdbus::createSessionBusConnection();
  } catch (const sdbus::Error& error) {
    const char* address = std::getenv("DBUS_SESSION_BUS_ADDRESS");
    throw Error(ErrorCode::kUnreachable,
                "cannot connect to the session bus (DBUS_SESSION_BUS_ADDRESS " +
                    (address ? internal::Quote(address) : std::string("is not set")) + "): " + error.getMessage());
  }
}

// How a call is watched for a stalled daemon: after `stall_timeout` of
// silence (zero: never), with `progress_fd` (a regular file being stored,
// or -1) as further sign of life.
struct CallWatch {
  std::chrono::milliseconds stall_timeout;
  int progress_fd = -1;
};

// A call that hit its own D-Bus timeout is reported as a stalled daemon
// when the pings went unanswered for at least this long too.
constexpr auto kSilentLongEnough = 1s;

// Idle session-bus connections. A call takes a connection for its whole
// duration (an sd-bus connection must not be used by two threads at once:
// sdbus-c++ would even spin waiting for it), so concurrent calls each get
// their own, and sequential ones reuse the same.
class ConnectionPool {
 public:
  std::unique_ptr<sdbus::IConnection> Take(uint64_t timeout_usec) {
    std::unique_ptr<sdbus::IConnection> connection;
    {
      std::lock_guard lock(mutex_);
      if (!idle_.empty()) {
        connection = std::move(idle_.back());
        idle_.pop_back();
      }
    }
    if (!connection) connection = ConnectToSessionBus();
    connection->setMethodCallTimeout(timeout_usec);
    return connection;
  }

  void Give(std::unique_ptr<sdbus::IConnection> connection) {
    std::lock_guard lock(mutex_);
    if (idle_.size() < kMaxIdleConnections) idle_.push_back(std::move(connection));
  }

  // Runs fn(connection) on a connection of this pool whose method calls
  // time out after `timeout_usec`, translating D-Bus errors, and fails it
  // with kUnreachable when the daemon answers nothing for `watch` (see
  // StallWatchdog). A connection whose failure says nothing about the bus
  // goes back to the pool; one that may be broken is dropped.
  template <typename Fn>
  auto Run(uint64_t timeout_usec, const CallWatch& watch, Fn&& fn) -> std::invoke_result_t<Fn, sdbus::IConnection&> {
    auto connection = Take(timeout_usec);
    internal::StallWatchdog watchdog(watch.stall_timeout, connection->getEventLoopPollData().fd, watch.progress_fd);
    // A connection the watchdog shut down is of no further use.
    auto give_back = [&] {
      watchdog.Finish();
      if (!watchdog.Stalled()) Give(std::move(connection));
    };
    try {
      if constexpr (std::is_void_v<std::invoke_result_t<Fn, sdbus::IConnection&>>) {
        fn(*connection);
        give_back();
      } else {
        auto result = fn(*connection);
        give_back();
        return result;
      }
    } catch (const sdbus::Error& error) {
      watchdog.Finish();
      if (auto stalled = watchdog.Stalled()) throw Error(ErrorCode::kUnreachable, *stalled);
      // The call's own timeout came first, with the pings unanswered too.
      if (error.getName() == "org.freedesktop.DBus.Error.Timeout" ||
          error.getName() == "org.freedesktop.DBus.Error.NoReply") {
        if (auto silent = watchdog.SilentFor(kSilentLongEnough)) throw Error(ErrorCode::kUnreachable, *silent);
      }
      if (internal::ConnectionStillUsable(error)) Give(std::move(connection));
      throw internal::TranslateDbusError(error);
    }
  }

 private:
  std::mutex mutex_;
  std::vector<std::unique_ptr<sdbus::IConnection>> idle_;
};

template <typename T>
T Field(const VariantMap& map, const char* key) {
  auto it = map.find(key);
  if (it == map.end() || !it->second.containsValueOfType<T>()) return T{};
  return it->second.get<T>();
}

// "cipher", or "none" from a daemon older than private files.
std::string CipherOf(const VariantMap& map) {
  std::string cipher = Field<std::string>(map, "cipher");
  return cipher.empty() ? std::string(kCipherNone) : cipher;
}

FileInfo ToFileInfo(const VariantMap& map) {
  FileInfo info;
  info.digest = Field<std::string>(map, "digest");
  info.size = Field<uint64_t>(map, "size");
  info.name = Field<std::string>(map, "name");
  info.first_stored_usec = Field<int64_t>(map, "first-stored");
  info.is_private = Field<bool>(map, "private");
  info.cipher = CipherOf(map);
  return info;
}

// Reads "state" and "problem" as the library reports them: a state of
// `known` as is; any other is "damaged" (the contract says so), naming what
// the daemon called it when it gave no problem of its own. No "state" at
// all is `missing`: "ok" for List and Stat entries of a daemon older than
// states (it checks none).
void ReadState(const VariantMap& map, std::initializer_list<std::string_view> known, std::string_view missing,
               std::string* state, std::string* problem) {
  *problem = Field<std::string>(map, "problem");
  *state = map.count("state") ? Field<std::string>(map, "state") : std::string(missing);
  if (std::find(known.begin(), known.end(), *state) != known.end()) return;
  if (problem->empty())
    *problem = state->empty() ? std::string("the daemon reports no state")
                              : "the daemon reports the state " + internal::Quote(*state);
  *state = std::string(kStateDamaged);
}

FileEntry ToFileEntry(const VariantMap& map) {
  FileEntry entry;
  entry.digest = Field<std::string>(map, "digest");
  entry.size = Field<uint64_t>(map, "size");
  entry.name = Field<std::string>(map, "name");
  entry.is_private = Field<bool>(map, "private");
  entry.first_stored_usec = Field<int64_t>(map, "first-stored");
  entry.last_used_usec = Field<int64_t>(map, "last-used");
  entry.stored_by = Field<uint32_t>(map, "stored-by");
  entry.used_by = Field<uint32_t>(map, "used-by");
  entry.cipher = CipherOf(map);
  entry.owner_app = Field<std::string>(map, "owner-app");
  entry.owner_origin = Field<std::string>(map, "owner-origin");
  entry.entries = Field<uint32_t>(map, "entries");
  ReadState(map, {kStateOk, kStateDamaged}, kStateOk, &entry.state, &entry.problem);
  entry.last_verified_usec = Field<int64_t>(map, "last-verified");
  entry.pinned = Field<bool>(map, "pinned");
  return entry;
}

VerifyResult ToVerifyResult(const VariantMap& map) {
  VerifyResult result;
  result.digest = Field<std::string>(map, "digest");
  result.is_private = Field<bool>(map, "private");
  result.owner_app = Field<std::string>(map, "owner-app");
  result.owner_origin = Field<std::string>(map, "owner-origin");
  // A result without a state was not found right: damaged.
  ReadState(map, {kStateOk, kStateDamaged, kStateAbsent, kStateUnreadable}, "", &result.state, &result.problem);
  result.size = Field<uint64_t>(map, "size");
  return result;
}

GrantEntry ToGrantEntry(const VariantMap& map) {
  GrantEntry grant;
  grant.app = Field<std::string>(map, "app");
  grant.origin = Field<std::string>(map, "origin");
  grant.digest = Field<std::string>(map, "digest");
  grant.created_usec = Field<int64_t>(map, "created");
  return grant;
}

PrincipalUsage ToPrincipalUsage(const VariantMap& map) {
  PrincipalUsage usage;
  usage.app = Field<std::string>(map, "app");
  usage.origin = Field<std::string>(map, "origin");
  usage.stored = Field<bool>(map, "stored");
  usage.first_used_usec = Field<int64_t>(map, "first-used");
  usage.last_used_usec = Field<int64_t>(map, "last-used");
  usage.stores = Field<uint32_t>(map, "stores");
  usage.reads = Field<uint32_t>(map, "reads");
  return usage;
}

// The Grant/Revoke digest: "*" (every file) or a digest.
std::string GrantTarget(std::string_view digest) {
  return digest == "*" ? std::string("*") : NormalizeDigest(digest);
}

// The shared file offset of `fd`, or -1 when it has none (pipe, socket).
int64_t FileOffset(int fd) { return ::lseek(fd, 0, SEEK_CUR); }

// Calls `progress` at most every kProgressInterval (and always when forced).
class ProgressThrottle {
 public:
  ProgressThrottle(const ProgressCallback& progress, uint64_t total) : progress_(progress), total_(total) {}

  void Report(uint64_t done, bool force = false) {
    if (!progress_) return;
    auto now = std::chrono::steady_clock::now();
    if (!force && (done == last_done_ || now - last_time_ < kProgressInterval)) return;
    last_time_ = now;
    last_done_ = done;
    progress_(done, total_);
  }

 private:
  const ProgressCallback& progress_;
  const uint64_t total_;
  std::chrono::steady_clock::time_point last_time_{};
  uint64_t last_done_ = UINT64_MAX;
};

// Writes all of `data` to the non-blocking pipe `fd`. Returns false if
// the daemon answered (`done_event` became readable) before taking it all.
bool WriteToPipe(int fd, const std::byte* data, size_t size, int done_event) {
  while (size > 0) {
    ssize_t written = ::write(fd, data, size);
    if (written > 0) {
      data += written;
      size -= static_cast<size_t>(written);
      continue;
    }
    if (written < 0 && errno == EINTR) continue;
    if (written < 0 && errno != EAGAIN) {
      if (errno == EPIPE) return false;
      throw Error(ErrorCode::kIOError, "cannot write to the pipe feeding the daemon: " + SystemError(errno));
    }
    pollfd fds[2] = {{fd, POLLOUT, 0}, {done_event, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0 && errno != EINTR)
      throw Error(ErrorCode::kIOError, "poll: " + SystemError(errno));
    if (fds[1].revents & POLLIN) return false;
  }
  return true;
}

// Sets FD_CLOEXEC: descriptors from sdbus-c++ are dup(2)ed without it.
void SetCloseOnExec(int fd) {
  int flags = ::fcntl(fd, F_GETFD);
  if (flags >= 0) ::fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
}

// A number in [0, 1) for the jitter of Busy retries.
double Jitter() {
  thread_local std::minstd_rand random(std::random_device{}());
  return std::uniform_real_distribution<double>(0.0, 1.0)(random);
}

// Calls `call` until it is not Busy, as BusyRetryDelay schedules, while
// `may_retry()` says that nothing was consumed; then the last Busy stands.
template <typename Call, typename MayRetry>
auto RetryWhileBusy(Call&& call, MayRetry&& may_retry) {
  std::optional<uint32_t> first_hint;
  std::chrono::milliseconds waited{0};
  for (int tries = 1;; ++tries) {
    try {
      return call();
    } catch (const Error& error) {
      if (error.code() != ErrorCode::kBusy || !may_retry()) throw;
      const std::optional<uint32_t> hint = internal::RetryAfterSeconds(error.what());
      if (tries == 1) first_hint = hint;
      const auto delay = internal::BusyRetryDelay(tries, first_hint, hint, waited, Jitter());
      if (!delay) throw;
      std::this_thread::sleep_for(*delay);
      waited += *delay;
    }
  }
}

}  // namespace

struct Client::Impl {
  ConnectionPool connections;
  std::atomic<int64_t> stall_timeout_ms{kDefaultStallTimeout.count()};

  CallWatch Watch(int progress_fd = -1) const {
    return CallWatch{std::chrono::milliseconds(stall_timeout_ms.load()), progress_fd};
  }

  template <typename Fn>
  auto CallManager(Fn&& fn) {
    return connections.Run(kManagerTimeoutUsec, Watch(), [&](sdbus::IConnection& connection) {
      ManagerProxy proxy(connection);
      return fn(proxy);
    });
  }

  // The Store call itself, blocking until the daemon answers; a Busy one
  // again, as long as no byte of `source` was read.
  FileInfo CallStore(int source, const std::string& digest, const StoreOptions& options,
                     std::optional<uint64_t> size) {
    VariantMap store_options;
    if (size) store_options["size"] = sdbus::Variant(*size);
    if (!options.name.empty()) store_options["name"] = sdbus::Variant(options.name);
    if (options.is_private) store_options["private"] = sdbus::Variant(true);
    // A close-on-exec duplicate (sdbus::UnixFd(int) would dup without it);
    // `source` stays the caller's.
    int duplicate = ::fcntl(source, F_DUPFD_CLOEXEC, 3);
    if (duplicate < 0)
      throw Error(ErrorCode::kInvalidArgument, "source: not a usable file descriptor: " + SystemError(errno));
    sdbus::UnixFd source_fd(duplicate, sdbus::adopt_fd);
    // A regular file's shared offset shows both progress and, after a Busy
    // answer, whether the daemon read anything; a pipe's bytes are not read
    // before a Busy answer (Store1.xml says so).
    const int64_t start = FileOffset(source);
    const CallWatch watch = Watch(start >= 0 ? source : -1);
    return RetryWhileBusy(
        [&] {
          return connections.Run(kStoreTimeoutUsec, watch, [&](sdbus::IConnection& connection) {
            StoreProxy proxy(connection);
            return ToFileInfo(proxy.Store(options.origin, digest, source_fd, store_options));
          });
        },
        [&] { return start < 0 || FileOffset(source) == start; });
  }

  // Stores from `fd`; with a progress callback, the call runs on a worker
  // thread while this one follows the shared file offset.
  FileInfo StoreFromFd(int fd, const std::string& digest, const StoreOptions& options,
                       std::optional<uint64_t> size) {
    if (!options.progress) return CallStore(fd, digest, options, size);

    const int64_t start = FileOffset(fd);
    uint64_t total = size.value_or(kUnknownSize);
    struct stat st {};
    if (!size && start >= 0 && ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size >= start)
      total = static_cast<uint64_t>(st.st_size - start);

    ProgressThrottle throttle(options.progress, total);
    auto call = std::async(std::launch::async, [&] { return CallStore(fd, digest, options, size); });
    std::exception_ptr callback_error;
    try {
      throttle.Report(0, /*force=*/true);
      while (call.wait_for(kProgressInterval) != std::future_status::ready) {
        int64_t offset = start >= 0 ? FileOffset(fd) : -1;
        if (offset >= start) throttle.Report(static_cast<uint64_t>(offset - start));
      }
    } catch (...) {
      callback_error = std::current_exception();  // rethrown once the daemon has answered
    }
    if (callback_error) {
      call.wait();
      std::rethrow_exception(callback_error);
    }
    FileInfo info = call.get();
    ProgressThrottle(options.progress, info.size).Report(info.size, /*force=*/true);
    return info;
  }

  // Stores the bytes produced by `read`: the daemon reads a pipe on a worker
  // thread while this thread fills it. This thread keeps the read end open
  // to the end, so writing can never raise SIGPIPE; an eventfd tells it when
  // the daemon has answered (possibly before taking every byte).
  FileInfo StoreFromStream(const ReadCallback& read, const std::string& digest, const StoreOptions& options) {
    int pipe_fds[2];
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0)
      throw Error(ErrorCode::kIOError, "cannot create a pipe: " + SystemError(errno));
    UniqueFd read_end(pipe_fds[0]);
    UniqueFd write_end(pipe_fds[1]);
    ::fcntl(write_end.get(), F_SETPIPE_SZ, kPipeSize);  // best effort: fewer wake-ups
    if (::fcntl(write_end.get(), F_SETFL, O_NONBLOCK) != 0)
      throw Error(ErrorCode::kIOError, "cannot set up the pipe: " + SystemError(errno));
    UniqueFd done_event(::eventfd(0, EFD_CLOEXEC));
    if (!done_event) throw Error(ErrorCode::kIOError, "cannot create an eventfd: " + SystemError(errno));

    auto call = std::async(std::launch::async, [&] {
      struct SignalDone {
        int fd;
        ~SignalDone() {
          uint64_t one = 1;
          [[maybe_unused]] ssize_t ignored = ::write(fd, &one, sizeof one);
        }
      } signal_done{done_event.get()};
      return CallStore(read_end.get(), digest, options, options.size);
    });

    ProgressThrottle throttle(options.progress, options.size.value_or(kUnknownSize));
    std::exception_ptr callback_error;
    try {
      throttle.Report(0, /*force=*/true);
      std::vector<std::byte> buffer(kStreamChunkSize);
      uint64_t produced = 0;
      for (;;) {
        size_t got = read(std::span<std::byte>(buffer));
        if (got == 0) break;
        if (got > buffer.size())
          throw Error(ErrorCode::kInvalidArgument, "the read callback returned more bytes than its buffer holds");
        if (!WriteToPipe(write_end.get(), buffer.data(), got, done_event.get())) break;
        produced += got;
        throttle.Report(produced);
      }
    } catch (...) {
      callback_error = std::current_exception();
    }
    write_end.reset();  // end of stream: after a failure, a short one that the daemon rejects
    if (callback_error) {
      call.wait();
      std::rethrow_exception(callback_error);
    }
    FileInfo info = call.get();
    ProgressThrottle(options.progress, info.size).Report(info.size, /*force=*/true);
    return info;
  }
};

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::Client(Client&&) noexcept = default;
Client& Client::operator=(Client&&) noexcept = default;
Client::~Client() = default;

Client Client::Connect() {
  auto impl = std::make_unique<Impl>();
  impl->connections.Give(ConnectToSessionBus());
  return Client(std::move(impl));
}

void Client::SetStallTimeout(std::chrono::milliseconds timeout) {
  impl_->stall_timeout_ms = std::max<int64_t>(timeout.count(), 0);
}

FileInfo Client::StorePath(const std::string& path, std::string_view digest, const StoreOptions& options) const {
  std::string normalized = NormalizeDigest(digest);
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (!fd) throw Error(ErrorCode::kIOError, "cannot open " + internal::Quote(path) + ": " + SystemError(errno));
  std::optional<uint64_t> size = options.size;
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0)
    throw Error(ErrorCode::kIOError, "cannot stat " + internal::Quote(path) + ": " + SystemError(errno));
  if (S_ISDIR(st.st_mode)) throw Error(ErrorCode::kInvalidArgument, internal::Quote(path) + " is a directory");
  if (!size && S_ISREG(st.st_mode)) size = static_cast<uint64_t>(st.st_size);
  return impl_->StoreFromFd(fd.get(), normalized, options, size);
}

FileInfo Client::StoreFd(int fd, std::string_view digest, const StoreOptions& options) const {
  std::string normalized = NormalizeDigest(digest);
  if (fd < 0 || ::fcntl(fd, F_GETFD) < 0)
    throw Error(ErrorCode::kInvalidArgument, "source: not an open file descriptor");
  return impl_->StoreFromFd(fd, normalized, options, options.size);
}

FileInfo Client::StoreStream(const ReadCallback& read, std::string_view digest, const StoreOptions& options) const {
  std::string normalized = NormalizeDigest(digest);
  if (!read) throw Error(ErrorCode::kInvalidArgument, "source: no read callback");
  return impl_->StoreFromStream(read, normalized, options);
}

OpenedFile Client::Open(std::string_view digest, std::string_view origin) const {
  return Open(digest, origin, OpenOptions{});
}

OpenedFile Client::Open(std::string_view digest, std::string_view origin, const OpenOptions& options) const {
  std::string normalized = NormalizeDigest(digest);
  VariantMap open_options;
  if (options.stream) open_options["stream"] = sdbus::Variant(true);
  return RetryWhileBusy(
      [&] {
        return impl_->connections.Run(kOpenTimeoutUsec, impl_->Watch(), [&](sdbus::IConnection& connection) {
          StoreProxy proxy(connection);
          auto [fd, info] = proxy.Open(std::string(origin), normalized, open_options);
          OpenedFile opened{UniqueFd(fd.release()), ToFileInfo(info)};
          SetCloseOnExec(opened.fd.get());
          return opened;
        });
      },
      [] { return true; });
}

std::vector<FileEntry> Client::List() const { return List(std::string_view()); }

std::vector<FileEntry> Client::List(std::string_view digest) const {
  VariantMap options;
  std::string normalized;
  if (!digest.empty()) {
    normalized = NormalizeDigest(digest);
    options["digest"] = sdbus::Variant(normalized);
  }
  return impl_->CallManager([&](ManagerProxy& proxy) {
    std::vector<FileEntry> entries;
    for (const auto& map : proxy.List(options)) {
      entries.push_back(ToFileEntry(map));
      // A daemon that does not know the option lists every file.
      if (!normalized.empty() && entries.back().digest != normalized) entries.pop_back();
    }
    return entries;
  });
}

FileEntry Client::Stat(std::string_view digest) const {
  std::string normalized = NormalizeDigest(digest);
  return impl_->CallManager([&](ManagerProxy& proxy) { return ToFileEntry(proxy.Stat(normalized)); });
}

void Client::Delete(std::string_view digest) const {
  std::string normalized = NormalizeDigest(digest);
  impl_->CallManager([&](ManagerProxy& proxy) { proxy.Delete(normalized); });
}

void Client::Grant(std::string_view app, std::string_view origin, std::string_view digest) const {
  std::string target = GrantTarget(digest);
  impl_->CallManager([&](ManagerProxy& proxy) { proxy.Grant(std::string(app), std::string(origin), target); });
}

void Client::Revoke(std::string_view app, std::string_view origin, std::string_view digest) const {
  std::string target = GrantTarget(digest);
  impl_->CallManager([&](ManagerProxy& proxy) { proxy.Revoke(std::string(app), std::string(origin), target); });
}

std::vector<GrantEntry> Client::ListGrants(std::string_view digest) const {
  VariantMap options;
  if (!digest.empty()) options["digest"] = sdbus::Variant(NormalizeDigest(digest));
  return impl_->CallManager([&](ManagerProxy& proxy) {
    std::vector<GrantEntry> grants;
    for (const auto& map : proxy.ListGrants(options)) grants.push_back(ToGrantEntry(map));
    return grants;
  });
}

std::vector<PrincipalUsage> Client::Usage(std::string_view digest) const {
  std::string normalized = NormalizeDigest(digest);
  return impl_->CallManager([&](ManagerProxy& proxy) {
    std::vector<PrincipalUsage> principals;
    for (const auto& map : proxy.Usage(normalized)) principals.push_back(ToPrincipalUsage(map));
    return principals;
  });
}

ForgetResult Client::ForgetOrigin(std::string_view origin) const {
  return impl_->CallManager([&](ManagerProxy& proxy) {
    VariantMap counts = proxy.ForgetOrigin(std::string(origin));
    ForgetResult result;
    result.grants_removed = Field<uint32_t>(counts, "grants-removed");
    result.claims_removed = Field<uint32_t>(counts, "claims-removed");
    result.files_deleted = Field<uint32_t>(counts, "files-deleted");
    return result;
  });
}

Settings Client::GetSettings() const {
  return impl_->CallManager([&](ManagerProxy& proxy) {
    VariantMap map = proxy.GetSettings();
    Settings settings;
    settings.consent_policy = Field<std::string>(map, "consent-policy");
    settings.consent_timeout_s = Field<uint32_t>(map, "consent-timeout");
    settings.prompts_per_hour = Field<uint32_t>(map, "prompts-per-hour");
    settings.min_free_space = Field<uint64_t>(map, "min-free-space");
    settings.quota = Field<uint64_t>(map, "quota");
    settings.auto_collect = Field<bool>(map, "auto-collect");
    settings.scrub_interval_days = Field<uint32_t>(map, "scrub-interval");
    settings.min_store_rate = Field<uint64_t>(map, "min-store-rate");
    return settings;
  });
}

void Client::SetSetting(std::string_view key, std::string_view value) const {
  sdbus::Variant variant{std::string(value)};
  impl_->CallManager([&](ManagerProxy& proxy) { proxy.SetSetting(std::string(key), variant); });
}

void Client::SetSetting(std::string_view key, uint32_t value) const {
  sdbus::Variant variant{value};
  impl_->CallManager([&](ManagerProxy& proxy) { proxy.SetSetting(std::string(key), variant); });
}

void Client::SetSettingUint64(std::string_view key, uint64_t value) const {
  sdbus::Variant variant{value};
  impl_->CallManager([&](ManagerProxy& proxy) { proxy.SetSetting(std::string(key), variant); });
}

void Client::SetSettingBool(std::string_view key, bool value) const {
  sdbus::Variant variant{value};
  impl_->CallManager([&](ManagerProxy& proxy) { proxy.SetSetting(std::string(key), variant); });
}

RekeyResult Client::Rekey() const {
  return impl_->connections.Run(kRekeyTimeoutUsec, impl_->Watch(), [&](sdbus::IConnection& connection) {
    ManagerProxy proxy(connection);
    VariantMap map = proxy.Rekey(VariantMap{});
    RekeyResult result;
    result.files_rewrapped = Field<uint32_t>(map, "files-rewrapped");
    result.key_version = Field<uint32_t>(map, "key-version");
    result.resumed = Field<bool>(map, "resumed");
    result.old_keys_removed = Field<uint32_t>(map, "old-keys-removed");
    return result;
  });
}

KeyringStatus Client::GetKeyringStatus() const {
  return impl_->CallManager([&](ManagerProxy& proxy) {
    VariantMap map = proxy.KeyringStatus();
    KeyringStatus status;
    status.state = Field<std::string>(map, "state");
    status.message = Field<std::string>(map, "message");
    status.private_files = Field<uint32_t>(map, "private-files");
    status.key_version = Field<uint32_t>(map, "key-version");
    status.rekey_pending = Field<bool>(map, "rekey-pending");
    status.cipher = Field<std::string>(map, "cipher");
    status.chunk_size = Field<uint32_t>(map, "chunk-size");
    return status;
  });
}

std::vector<VerifyResult> Client::Verify(const std::vector<std::string>& digests) const {
  VariantMap options;
  if (!digests.empty()) {
    std::vector<std::string> normalized;
    normalized.reserve(digests.size());
    for (const auto& digest : digests) normalized.push_back(NormalizeDigest(digest));
    options["digests"] = sdbus::Variant(normalized);
  }
  return impl_->connections.Run(kVerifyTimeoutUsec, impl_->Watch(), [&](sdbus::IConnection& connection) {
    ManagerProxy proxy(connection);
    std::vector<VerifyResult> results;
    for (const auto& map : proxy.Verify(options)) results.push_back(ToVerifyResult(map));
    return results;
  });
}

void Client::SetPinned(std::string_view digest, bool pinned) const {
  std::string normalized = NormalizeDigest(digest);
  impl_->CallManager([&](ManagerProxy& proxy) { proxy.SetPinned(normalized, pinned); });
}

CollectResult Client::Collect(const CollectOptions& options) const {
  VariantMap collect_options;
  if (options.target_size) collect_options["target-size"] = sdbus::Variant(*options.target_size);
  if (options.unused_for_seconds) collect_options["unused-for"] = sdbus::Variant(*options.unused_for_seconds);
  if (options.dry_run) collect_options["dry-run"] = sdbus::Variant(true);
  return impl_->CallManager([&](ManagerProxy& proxy) {
    VariantMap map = proxy.Collect(collect_options);
    CollectResult result;
    result.files_deleted = Field<uint32_t>(map, "files-deleted");
    result.bytes_freed = Field<uint64_t>(map, "bytes-freed");
    result.digests = Field<std::vector<std::string>>(map, "digests");
    result.store_bytes = Field<uint64_t>(map, "store-bytes");
    return result;
  });
}

Space Client::GetSpace() const {
  return impl_->CallManager([&](ManagerProxy& proxy) {
    VariantMap map = proxy.Space();
    Space space;
    space.store_bytes = Field<uint64_t>(map, "store-bytes");
    space.files = Field<uint32_t>(map, "files");
    space.damaged = Field<uint32_t>(map, "damaged");
    space.pinned = Field<uint32_t>(map, "pinned");
    space.free_bytes = Field<uint64_t>(map, "free-bytes");
    space.floor_bytes = Field<uint64_t>(map, "floor-bytes");
    space.quota_bytes = Field<uint64_t>(map, "quota-bytes");
    space.last_scrub_usec = Field<int64_t>(map, "last-scrub");
    return space;
  });
}

std::string_view LibraryVersion() { return COSTORE_VERSION; }

}  // namespace costore::client
