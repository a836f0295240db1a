/*
 * c_test_support.h: what the C11 tests of the C ABI (c_api_test.c,
 * c_api_verify_gc_test.c) share: the CHECK macros and their failure count,
 * the model file's digest and size, finding the model file from the
 * environment tests/support/with-costored sets, and the final verdict.
 * Strict C11 with nothing but <costore/costore.h> and POSIX libc; include it
 * before any other header (it defines _POSIX_C_SOURCE).
 */
#ifndef COSTORE_TESTS_CLIENT_LIB_C_TEST_SUPPORT_H
#define COSTORE_TESTS_CLIENT_LIB_C_TEST_SUPPORT_H

#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <costore/costore.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* How many checks failed; each test file has its own (static). */
static int failures = 0;

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      failures++;                                                              \
    }                                                                          \
  } while (0)

/* A call expected to succeed; on failure prints the handle's error. */
#define CHECK_OK(client, call)                                                              \
  do {                                                                                      \
    costore_error check_ok_rc = (call);                                                     \
    if (check_ok_rc != COSTORE_OK) {                                                        \
      fprintf(stderr, "%s:%d: %s failed: %s: %s\n", __FILE__, __LINE__, #call,              \
              costore_error_name(check_ok_rc), costore_client_get_error_message(client));   \
      failures++;                                                                           \
    }                                                                                       \
  } while (0)

/* A call expected to fail with `code`. */
#define CHECK_FAILS(client, code, call)                                                              \
  do {                                                                                               \
    costore_error check_fails_rc = (call);                                                           \
    if (check_fails_rc != (code)) {                                                                  \
      fprintf(stderr, "%s:%d: %s returned %s (%s), expected %s\n", __FILE__, __LINE__, #call,        \
              costore_error_name(check_fails_rc), costore_client_get_error_message(client),          \
              costore_error_name(code));                                                             \
      failures++;                                                                                    \
    } else if (costore_client_get_error_code(client) != (code) ||                                    \
               costore_client_get_error_message(client)[0] == '\0') {                                \
      fprintf(stderr, "%s:%d: %s: the handle lost the error code or message\n", __FILE__, __LINE__,  \
              #call);                                                                                \
      failures++;                                                                                    \
    }                                                                                                \
  } while (0)

/* The model file (../shared/data/models/silero_vad.onnx) and a digest that
 * is never stored. */
static const char kModelDigest[] = "sha256:1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3";
static const char kModelHex[] = "1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3";
static const uint64_t kModelSize = 2327524;
static const char kUnknownDigest[] = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

/* Checks that `test` runs under tests/support/with-costored with
 * COSTORE_SOURCE_DIR set (and, if `need_store`, COSTORE_TEST_STORE), and
 * puts the model file's path in `model_path`. Returns 0, having said why,
 * if not, or if that file is missing or not kModelSize bytes. */
static inline int find_model(const char *test, int need_store, char *model_path, size_t size) {
  const char *source_dir = getenv("COSTORE_SOURCE_DIR");
  if (!source_dir || !getenv("DBUS_SESSION_BUS_ADDRESS") || (need_store && !getenv("COSTORE_TEST_STORE"))) {
    fprintf(stderr, "%s: run me through tests/support/with-costored with COSTORE_SOURCE_DIR set\n", test);
    return 0;
  }
  snprintf(model_path, size, "%s/../shared/data/models/silero_vad.onnx", source_dir);
  struct stat st;
  if (stat(model_path, &st) != 0 || (uint64_t)st.st_size != kModelSize) {
    fprintf(stderr, "%s: the model file %s is missing or not %llu bytes\n", test, model_path,
            (unsigned long long)kModelSize);
    return 0;
  }
  return 1;
}

/* The exit status of `test`: 1 (and how many) if any check failed. */
static inline int finish(const char *test) {
  if (failures) {
    fprintf(stderr, "%s: %d check(s) failed\n", test, failures);
    return 1;
  }
  printf("%s: all checks passed\n", test);
  return 0;
}

#endif /* COSTORE_TESTS_CLIENT_LIB_C_TEST_SUPPORT_H */
