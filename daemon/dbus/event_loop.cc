#include "daemon/dbus/event_loop.h"

#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "daemon/log.h"

namespace costore {

EventLoop::EventLoop(sdbus::IConnection& connection) : connection_(connection) {
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) throw std::runtime_error(std::string("eventfd: ") + std::strerror(errno));
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  signal_fd_ = ::signalfd(-1, &signals, SFD_CLOEXEC | SFD_NONBLOCK);
  if (signal_fd_ < 0) throw std::runtime_error(std::string("signalfd: ") + std::strerror(errno));
}

EventLoop::~EventLoop() {
  ::close(wake_fd_);
  ::close(signal_fd_);
}

void EventLoop::Post(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    posted_.push_back(std::move(task));
  }
  uint64_t one = 1;
  ssize_t ignored = ::write(wake_fd_, &one, sizeof one);
  (void)ignored;
}

void EventLoop::Quit() {
  Post([this] { quit_ = true; });
}

void EventLoop::RunPosted() {
  uint64_t count;
  ssize_t ignored = ::read(wake_fd_, &count, sizeof count);
  (void)ignored;
  std::vector<std::function<void()>> tasks;
  {
    std::lock_guard<std::mutex> lock(mu_);
    tasks.swap(posted_);
  }
  for (auto& task : tasks) {
    try {
      task();
    } catch (const std::exception& e) {
      LogError(std::string("posted task failed: ") + e.what());
    }
  }
}

void EventLoop::RunAfter(std::chrono::milliseconds delay, std::function<void()> task) {
  timers_.emplace(std::chrono::steady_clock::now() + delay, std::move(task));
}

void EventLoop::RunDueTimers() {
  const auto now = std::chrono::steady_clock::now();
  while (!timers_.empty() && timers_.begin()->first <= now) {
    auto task = std::move(timers_.begin()->second);
    timers_.erase(timers_.begin());
    task();
  }
}

int EventLoop::NextTimerTimeout(int cap) const {
  if (timers_.empty()) return cap;
  auto left = std::chrono::ceil<std::chrono::milliseconds>(timers_.begin()->first -
                                                           std::chrono::steady_clock::now());
  int ms = static_cast<int>(std::max<int64_t>(0, left.count()));
  return cap < 0 ? ms : std::min(cap, ms);
}

void EventLoop::Run(const std::function<void(int)>& on_signal) {
  bool signalled = false;
  while (!quit_) {
    // Dispatch everything sd-bus already has before sleeping.
    while (connection_.processPendingRequest()) {
    }
    auto bus = connection_.getEventLoopPollData();
    pollfd fds[3] = {
        {bus.fd, bus.events, 0},
        {wake_fd_, POLLIN, 0},
        {signal_fd_, POLLIN, 0},
    };
    int r = ::poll(fds, 3, NextTimerTimeout(bus.getPollTimeout()));
    if (r < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error(std::string("poll: ") + std::strerror(errno));
    }
    if (fds[1].revents & POLLIN) RunPosted();
    RunDueTimers();
    if (fds[2].revents & POLLIN) {
      signalfd_siginfo info;
      if (::read(signal_fd_, &info, sizeof info) == sizeof info && !signalled) {
        signalled = true;
        on_signal(static_cast<int>(info.ssi_signo));
      }
    }
  }
}

}  // namespace costore
