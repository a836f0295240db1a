#include "stall_registry.h"

#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

#include "stall_watchdog.h"

namespace costore::client::internal {
namespace {

using Clock = StallClock;
using std::chrono::milliseconds;
using namespace std::chrono_literals;

int PollTimeoutMs(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
  return static_cast<int>(std::clamp<int64_t>(left + 1, 0, 60'000));
}

int64_t OffsetOf(int fd) { return fd >= 0 ? ::lseek(fd, 0, SEEK_CUR) : -1; }

}  // namespace

milliseconds PingInterval(milliseconds timeout) { return std::clamp(timeout / 6, milliseconds(50), milliseconds(5000)); }

StallRegistry::StallRegistry(PingerFactory make_pinger, milliseconds idle)
    : make_pinger_(std::move(make_pinger)), idle_(idle), wake_fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

StallRegistry::~StallRegistry() {
  std::unique_ptr<std::thread> thread;
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
    thread = std::move(thread_);
  }
  Wake();
  if (thread && thread->joinable()) thread->join();
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

StallRegistry& StallRegistry::Global() {
  // Destroyed at exit, which stops and joins the thread (at once, unless it
  // is looking the daemon up for a call still in progress: then within the
  // ping interval, at most 5 s); a thread that has
  // gone idle has already exited, so a process that made its last call a
  // while ago exits (or forks) with no thread of ours at all.
  static StallRegistry registry(MakeDbusPinger, 10s);
  static const bool fork_handlers = [] {
    // A fork while the thread runs: the child has no thread and no calls
    // in progress (only the forking thread survives, and it is not in a
    // call), so it forgets both; the mutex is held across the fork so that
    // the child's copy is consistent.
    ::pthread_atfork([] { registry.mutex_.lock(); }, [] { registry.mutex_.unlock(); },
                     [] {
                       registry.mutex_.unlock();
                       registry.ForgetAfterFork();
                     });
    return true;
  }();
  (void)fork_handlers;
  return registry;
}

void StallRegistry::ForgetAfterFork() {
  std::lock_guard lock(mutex_);
  // The parent's thread does not exist here: its handle is left unjoined
  // (leaked), never joined or destroyed.
  (void)thread_.release();
  running_ = false;
  watches_.clear();
  // Not the parent's eventfd: a write here would wake the parent's thread.
  if (wake_fd_ >= 0) ::close(wake_fd_);
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
}

void StallRegistry::Arm(StallWatch& watch) {
  watch.start = Clock::now();  // the vDSO clock: no syscall
  watch.last_progress = watch.start;
  const Clock::time_point due = watch.start + PingInterval(watch.timeout);
  // The thread may look at the call late, as long as enough of its timeout
  // is left for pings to find the daemon alive: half of it.
  const Clock::time_point latest = std::max(due, watch.start + watch.timeout / 2);
  bool wake = false;
  {
    std::lock_guard lock(mutex_);
    watches_.push_back(&watch);
    ++arms_;
    if (!running_ && !stop_) {
      // A thread that went idle has finished (it exits right after saying
      // so under this lock); join it before starting the next.
      if (thread_ && thread_->joinable()) thread_->join();
      running_ = true;
      next_wake_ = due;
      thread_ = std::make_unique<std::thread>([this] { Loop(); });
    } else if (next_wake_ > latest) {
      // Only a call the thread would look at too late needs a wake-up. The
      // thread looks at least every `idle_` (10 s), so with a stall timeout
      // of 20 s or more (the default is 30 s) no call ever does.
      next_wake_ = due;
      wake = true;
    }
  }
  if (wake) Wake();
}

void StallRegistry::Disarm(StallWatch& watch) {
  std::lock_guard lock(mutex_);
  auto it = std::find(watches_.begin(), watches_.end(), &watch);
  if (it == watches_.end()) return;
  *it = watches_.back();
  watches_.pop_back();
  if (!watch.stalled && watch.overdue && daemon_silent_) {
    const Clock::time_point last = std::max({watch.start, watch.last_progress, last_answer_.value_or(watch.start)});
    watch.silence = std::chrono::duration_cast<milliseconds>(Clock::now() - last);
    watch.daemon_pid = daemon_pid_;
  }
}

bool StallRegistry::ThreadRunning() const {
  std::lock_guard lock(mutex_);
  return running_;
}

void StallRegistry::Wake() {
  uint64_t one = 1;
  [[maybe_unused]] ssize_t ignored = ::write(wake_fd_, &one, sizeof one);
}

Clock::time_point StallRegistry::Check(Clock::time_point now, milliseconds& ping_interval, milliseconds& reply_timeout) {
  Clock::time_point wake = Clock::time_point::max();
  ping_interval = 0ms;
  reply_timeout = 0ms;
  for (StallWatch* watch : watches_) {
    if (watch->stalled) continue;
    const milliseconds interval = PingInterval(watch->timeout);
    if (now - watch->start < interval) {
      wake = std::min(wake, watch->start + interval);  // most calls end before this
      continue;
    }
    const int64_t offset = OffsetOf(watch->progress_fd);
    if (!watch->overdue) {
      watch->overdue = true;
    } else if (offset != watch->offset) {
      watch->last_progress = now;  // the daemon is reading the caller's file: alive
    }
    watch->offset = offset;
    ping_interval = ping_interval == 0ms ? interval : std::min(ping_interval, interval);
    reply_timeout = std::max(reply_timeout, watch->timeout);
    const Clock::time_point last = std::max({watch->start, watch->last_progress, last_answer_.value_or(watch->start)});
    if (now - last >= watch->timeout) {
      watch->silence = std::chrono::duration_cast<milliseconds>(now - last);
      watch->daemon_pid = daemon_pid_;
      watch->stalled = StallMessage(daemon_pid_, watch->timeout);
      // The call blocked on this socket sees it end and returns. Under the
      // lock: Disarm() waits for this, so the fd is still the call's own.
      ::shutdown(watch->bus_fd, SHUT_RDWR);
      continue;
    }
    wake = std::min({wake, last + watch->timeout, now + interval});
  }
  return wake;
}

void StallRegistry::Loop() {
  std::unique_ptr<Pinger> pinger;
  Clock::time_point next_ping = Clock::now();
  Clock::time_point idle_since = Clock::now();
  uint64_t arms_seen = ~uint64_t{0};
  std::unique_lock lock(mutex_);
  for (;;) {
    if (stop_) break;
    const Clock::time_point now = Clock::now();
    if (pinger) {
      daemon_silent_ = pinger->Silent();
      last_answer_ = pinger->LastAnswer();
      daemon_pid_ = pinger->DaemonPid();
    }
    milliseconds ping_interval{0};
    milliseconds reply_timeout{0};
    // At least every `idle_`, which Arm() counts on.
    Clock::time_point wake = std::min(Check(now, ping_interval, reply_timeout), now + idle_);

    if (watches_.empty()) {
      if (arms_ != arms_seen) {
        arms_seen = arms_;
        idle_since = now;
      } else if (now - idle_since >= idle_) {
        break;  // nothing armed for `idle_`: exit; the next Arm() starts a thread again
      }
      wake = std::min(wake, idle_since + idle_);
    }
    if (ping_interval == 0ms) {
      // Nothing overdue: no connection kept open for nothing.
      if (pinger) {
        lock.unlock();
        pinger.reset();
        lock.lock();
        daemon_silent_ = false;
        last_answer_.reset();
        continue;
      }
    } else {
      if (!pinger) {
        lock.unlock();
        pinger = make_pinger_();
        lock.lock();
        continue;
      }
      if (!pinger->Pending() && now >= next_ping) {
        next_ping = now + ping_interval;
        lock.unlock();
        pinger->Ping(ping_interval, reply_timeout);
        lock.lock();
        continue;
      }
      if (!pinger->Pending()) wake = std::min(wake, next_ping);
    }

    next_wake_ = wake;
    lock.unlock();
    pollfd fds[2] = {{wake_fd_, POLLIN, 0}, {-1, 0, 0}};
    if (pinger) {
      const Pinger::Wait wait = pinger->NextWait();
      fds[1] = {wait.fd, wait.events, 0};
      wake = std::min(wake, wait.until);
    }
    if (::poll(fds, 2, PollTimeoutMs(wake)) > 0 && (fds[0].revents & POLLIN)) {
      uint64_t count;
      [[maybe_unused]] ssize_t ignored = ::read(wake_fd_, &count, sizeof count);
    }
    if (pinger) pinger->Process();
    lock.lock();
  }
  // Still under the lock: after this the thread touches nothing of ours
  // but the pinger, which Arm() waits for by joining.
  running_ = false;
  lock.unlock();
  pinger.reset();
}

}  // namespace costore::client::internal
