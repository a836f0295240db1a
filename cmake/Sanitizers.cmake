# COSTORE_SANITIZE and COSTORE_FUZZ (see the top-level CMakeLists.txt).
if(COSTORE_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "COSTORE_FUZZ needs clang (CC=clang CXX=clang++): libFuzzer is clang's")
  endif()
  if(COSTORE_SANITIZE)
    message(FATAL_ERROR "COSTORE_FUZZ already builds with ASan and UBSan; leave COSTORE_SANITIZE empty")
  endif()
  # Coverage instrumentation everywhere; the fuzzer's main only in fuzz/
  # (-fsanitize=fuzzer on those links).
  set(costore_sanitize_flags -fsanitize=fuzzer-no-link,address,undefined)
elseif(COSTORE_SANITIZE STREQUAL "address,undefined" OR COSTORE_SANITIZE STREQUAL "thread")
  set(costore_sanitize_flags -fsanitize=${COSTORE_SANITIZE})
elseif(COSTORE_SANITIZE)
  message(FATAL_ERROR "COSTORE_SANITIZE must be \"\", \"address,undefined\" or \"thread\", not \"${COSTORE_SANITIZE}\"")
endif()

if(costore_sanitize_flags)
  # Readable stacks; and UBSan findings are errors, not log lines a passing
  # test would hide.
  list(APPEND costore_sanitize_flags -fno-omit-frame-pointer)
  if(NOT COSTORE_SANITIZE STREQUAL "thread")
    list(APPEND costore_sanitize_flags -fno-sanitize-recover=undefined)
  endif()
  add_compile_options(${costore_sanitize_flags})
  add_link_options(${costore_sanitize_flags})
endif()
