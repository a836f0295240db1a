#include "daemon/dbus/worker_pool.h"

#include <chrono>
#include <exception>
#include <string>
#include <system_error>

#include "daemon/log.h"

namespace costore {

WorkerPool::WorkerPool(int max_threads) : max_threads_(max_threads < 1 ? 1 : max_threads) {}

WorkerPool::~WorkerPool() { Shutdown(-1); }

void WorkerPool::Submit(std::function<void()> task) {
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_) return;
  queue_.push_back(std::move(task));
  // More queued than idle workers to take them (an idle one may not have
  // woken yet for an earlier task): another worker, up to the bound.
  if (static_cast<int>(queue_.size()) > idle_ && static_cast<int>(threads_.size()) < max_threads_) {
    try {
      threads_.emplace_back([this] { Run(); });
      return;
    } catch (const std::system_error& e) {
      // No thread to be had now: an existing worker takes it later.
      LogError(std::string("cannot start a worker thread: ") + e.what());
      if (threads_.empty()) queue_.pop_back();
    }
  }
  work_ready_.notify_one();
}

void WorkerPool::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    ++idle_;
    work_ready_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    --idle_;
    if (queue_.empty()) return;  // stopping, nothing left
    std::function<void()> task = std::move(queue_.front());
    queue_.pop_front();
    ++running_;
    lock.unlock();
    try {
      task();
    } catch (const std::exception& e) {
      LogError(std::string("a worker task failed with an exception: ") + e.what());
      lock.lock();
      ++escaped_;
      lock.unlock();
    } catch (...) {
      LogError("a worker task failed with an unknown exception");
      lock.lock();
      ++escaped_;
      lock.unlock();
    }
    task = nullptr;  // its captures go before the pool may be torn down
    lock.lock();
    --running_;
    if (running_ == 0 && queue_.empty()) all_idle_.notify_all();
  }
}

bool WorkerPool::Shutdown(int timeout_ms) {
  std::vector<std::thread> threads;
  {
    std::unique_lock<std::mutex> lock(mu_);
    auto drained = [&] { return running_ == 0 && queue_.empty(); };
    if (timeout_ms < 0) {
      all_idle_.wait(lock, drained);
    } else if (!all_idle_.wait_for(lock, std::chrono::milliseconds(timeout_ms), drained)) {
      return false;
    }
    stopping_ = true;
    threads.swap(threads_);
  }
  work_ready_.notify_all();
  for (auto& thread : threads) thread.join();
  return true;
}

int WorkerPool::escaped() const {
  std::lock_guard<std::mutex> lock(mu_);
  return escaped_;
}

}  // namespace costore
