// How many threads this process has now (its entries in /proc/self/task).
#pragma once

#include <dirent.h>

namespace costore::test {

inline int ThreadsOfThisProcess() {
  int count = 0;
  DIR* tasks = opendir("/proc/self/task");
  while (dirent* entry = readdir(tasks)) count += entry->d_name[0] != '.';
  closedir(tasks);
  return count;
}

}  // namespace costore::test
