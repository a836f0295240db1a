// WorkerPool: the daemon's threads for work that may block (streams in,
// the keyring, decryption, verification). Bounded: at most `max_threads`
// run at once, the rest wait in order. Owned by the Service and joined at
// shutdown, so no worker outlives what it uses.
//
// A task must not throw: every engine entry point returns a Status. Should
// one throw all the same, the pool catches it, logs it and goes on; the
// daemon stays up for every other app. (Each task posts its own reply, so
// the caller of a task that threw gets the error its own guard made, or,
// for a task with no guard, its D-Bus timeout.)
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace costore {

class WorkerPool {
 public:
  explicit WorkerPool(int max_threads);
  ~WorkerPool();  // Shutdown(no limit)
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Runs `task` on a worker, starting one if none is idle and fewer than
  // max_threads exist. After Shutdown, tasks are dropped.
  void Submit(std::function<void()> task);
  // Waits up to `timeout_ms` (-1: forever) for queued and running tasks to
  // finish, then stops and joins the workers if they did; true if so.
  bool Shutdown(int timeout_ms);

  // Tasks that threw, for tests and logs.
  int escaped() const;

 private:
  void Run();

  const int max_threads_;
  mutable std::mutex mu_;
  std::condition_variable work_ready_;
  std::condition_variable all_idle_;
  std::deque<std::function<void()>> queue_;
  std::vector<std::thread> threads_;
  int idle_ = 0;
  int running_ = 0;
  int escaped_ = 0;
  bool stopping_ = false;
};

}  // namespace costore
