// A property every fuzz target asserts: on failure, say which and abort, so
// libFuzzer records the input as a crash (a plain assert vanishes under
// NDEBUG, which RelWithDebInfo defines).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "daemon/engine/quote.h"

#define FUZZ_CHECK(condition)                                                              \
  do {                                                                                     \
    if (!(condition)) {                                                                    \
      std::fprintf(stderr, "%s:%d: property failed: %s\n", __FILE__, __LINE__, #condition); \
      std::abort();                                                                        \
    }                                                                                      \
  } while (0)

namespace costore::fuzz {

// What D-Bus (and JSON) can carry: error messages must be valid UTF-8.
inline bool IsValidUtf8(std::string_view text) { return ValidUtf8(text) == text; }

inline bool StartsWith(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

}  // namespace costore::fuzz
