// Quick calls start no thread: libcostore's stall watchdog is one thread
// per process, not one per call. pthread_create is interposed (this
// program's definition comes first in the dynamic lookup, for libcostore
// and libstdc++ too) to count every thread started while the calls run.
#include <dlfcn.h>
#include <pthread.h>

#include <atomic>
#include <cstdlib>
#include <string>

#include <gtest/gtest.h>

#include "client_test_support.h"
#include "thread_count.h"

namespace {

using costore::test::ThreadsOfThisProcess;

std::atomic<int> threads_started{0};

}  // namespace

extern "C" int pthread_create(pthread_t* thread, const pthread_attr_t* attr, void* (*start)(void*), void* arg) {
  using Create = int (*)(pthread_t*, const pthread_attr_t*, void* (*)(void*), void*);
  static const auto real = reinterpret_cast<Create>(dlsym(RTLD_NEXT, "pthread_create"));
  ++threads_started;
  return real(thread, attr, start, arg);
}

namespace {

using namespace costore::client_test;

TEST(ClientThreads, AThousandQuickCallsStartAtMostOneThread) {
  ASSERT_NE(std::getenv("DBUS_SESSION_BUS_ADDRESS"), nullptr) << "run me through tests/support/with-costored";
  Client client = Client::Connect();
  const std::string missing = "sha256:" + std::string(64, 'e');
  const int tasks_before = ThreadsOfThisProcess();
  const int started_before = threads_started.load();
  int most_tasks = tasks_before;
  for (int i = 0; i < 1000; ++i) {
    EXPECT_EQ(ErrorOf([&] { client.Stat(missing); }).code(), ErrorCode::kNotFound);
    most_tasks = std::max(most_tasks, ThreadsOfThisProcess());
  }
  EXPECT_LE(threads_started.load() - started_before, 1);
  EXPECT_LE(most_tasks, tasks_before + 1);
  EXPECT_LE(ThreadsOfThisProcess(), tasks_before + 1);
}

}  // namespace
