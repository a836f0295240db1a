// EventLoop: the daemon's one thread that touches the bus connection.
//
// sd-bus is not thread-safe, so workers (a Store streaming for minutes)
// never call it: they Post() a closure, which runs here. The loop polls the
// connection's fd, an eventfd for posted work, and a signalfd for SIGTERM
// and SIGINT (which the caller must block in every thread first).
#pragma once

#include <sdbus-c++/IConnection.h>

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <vector>

namespace costore {

class EventLoop {
 public:
  explicit EventLoop(sdbus::IConnection& connection);
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Serves until Quit() or a termination signal; on the signal calls
  // on_signal (once) and keeps serving until Quit().
  void Run(const std::function<void(int signo)>& on_signal);
  // Thread-safe: runs `task` on the loop thread.
  void Post(std::function<void()> task);
  // Thread-safe.
  void Quit();
  // Runs `task` on the loop thread after `delay`. Loop thread only.
  void RunAfter(std::chrono::milliseconds delay, std::function<void()> task);

 private:
  void RunPosted();
  void RunDueTimers();
  // Milliseconds until the next timer (-1: none), at most `cap` unless -1.
  int NextTimerTimeout(int cap) const;

  sdbus::IConnection& connection_;
  int wake_fd_ = -1;
  int signal_fd_ = -1;
  std::mutex mu_;
  std::vector<std::function<void()>> posted_;
  bool quit_ = false;
  std::multimap<std::chrono::steady_clock::time_point, std::function<void()>> timers_;
};

}  // namespace costore
