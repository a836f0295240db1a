/*
 * c_api_verify_gc_test: the store's upkeep through the C ABI against the
 * real costored, in C11 with nothing but <costore/costore.h> (and libc):
 * verify (a file damaged on disk, then repaired), pinning, collecting, the
 * store's space and its settings. Run it through tests/support/with-costored
 * (COSTORE_TEST_STORE is the daemon's store); COSTORE_SOURCE_DIR locates the
 * model file.
 */
#include "c_test_support.h"

/* 5000 bytes of 'x' (the stream source below), and their SHA-256. */
static const char kXsDigest[] = "sha256:c59d3c0480cc2d71d8f646e735e92da65450311eec46e81a5db8c7e6e8a92054";
static const size_t kXsSize = 5000;
static const char kOrigin[] = "https://upkeep.example";
static const uint64_t kGiB = (uint64_t)1 << 30;

static ssize_t read_xs(void *buffer, size_t size, void *user_data) {
  size_t *left = user_data;
  size_t n = *left < size ? *left : size;
  memset(buffer, 'x', n);
  *left -= n;
  return (ssize_t)n;
}

static costore_error store_xs(costore_client *client) {
  size_t left = kXsSize;
  costore_store_options *options = costore_store_options_new();
  costore_store_options_set_origin(options, kOrigin);
  costore_error rc = costore_client_store_stream(client, read_xs, &left, kXsDigest, options, NULL);
  costore_store_options_free(options);
  return rc;
}

static costore_error store_model(costore_client *client, const char *model_path) {
  costore_store_options *options = costore_store_options_new();
  costore_store_options_set_origin(options, kOrigin);
  costore_error rc = costore_client_store_path(client, model_path, kModelDigest, options, NULL);
  costore_store_options_free(options);
  return rc;
}

/* Whether @digest is stored (Stat succeeds); any error but NotFound fails. */
static int stored(costore_client *client, const char *digest) {
  costore_file_entry *entry = NULL;
  costore_error rc = costore_client_stat(client, digest, &entry);
  costore_file_entry_free(entry);
  if (rc != COSTORE_OK && rc != COSTORE_ERROR_NOT_FOUND) {
    fprintf(stderr, "stat %s: %s: %s\n", digest, costore_error_name(rc), costore_client_get_error_message(client));
    failures++;
  }
  return rc == COSTORE_OK;
}

static int collected(const costore_collect_result *result, const char *digest) {
  for (char **it = result ? result->digests : NULL; it && *it; ++it)
    if (strcmp(*it, digest) == 0) return 1;
  return 0;
}

static size_t count_digests(const costore_collect_result *result) {
  size_t n = 0;
  for (char **it = result ? result->digests : NULL; it && *it; ++it) n++;
  return n;
}

/* Flips one byte of the model's stored file on disk (it is 0444). */
static int corrupt_model(void) {
  const char *store = getenv("COSTORE_TEST_STORE");
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/blobs/sha256/%.2s/%s", store ? store : "", kModelHex, kModelHex);
  if (chmod(path, 0644) != 0) {
    fprintf(stderr, "chmod %s: %s\n", path, strerror(errno));
    return 0;
  }
  int fd = open(path, O_RDWR);
  if (fd < 0) return 0;
  unsigned char byte = 0;
  int ok = pread(fd, &byte, 1, 4242) == 1;
  byte ^= 0xff;
  ok = ok && pwrite(fd, &byte, 1, 4242) == 1;
  close(fd);
  return chmod(path, 0444) == 0 && ok;
}

static void test_settings(costore_client *client) {
  costore_settings *settings = NULL;
  CHECK_OK(client, costore_client_get_settings(client, &settings));
  CHECK(settings != NULL);
  CHECK(costore_settings_get_min_free_space(settings) == 0);
  CHECK(costore_settings_get_quota(settings) == 0);
  CHECK(!costore_settings_get_auto_collect(settings));
  CHECK(costore_settings_get_scrub_interval_days(settings) == 0);
  costore_settings_free(settings);

  CHECK_OK(client, costore_client_set_setting_uint64(client, COSTORE_SETTING_MIN_FREE_SPACE, kGiB));
  CHECK_OK(client, costore_client_set_setting_uint64(client, COSTORE_SETTING_QUOTA, 20 * kGiB));
  CHECK_OK(client, costore_client_set_setting_bool(client, COSTORE_SETTING_AUTO_COLLECT, true));
  CHECK_OK(client, costore_client_set_setting_uint32(client, COSTORE_SETTING_SCRUB_INTERVAL, 30));
  CHECK_OK(client, costore_client_get_settings(client, &settings));
  CHECK(settings != NULL);
  if (settings) {
    CHECK(costore_settings_get_min_free_space(settings) == kGiB);
    CHECK(costore_settings_get_quota(settings) == 20 * kGiB);
    CHECK(costore_settings_get_auto_collect(settings));
    CHECK(costore_settings_get_scrub_interval_days(settings) == 30);
    CHECK(strcmp(settings->consent_policy, "ask") == 0 && settings->consent_timeout_s == 60);
  }
  costore_settings_free(settings);

  costore_space *space = NULL;
  CHECK_OK(client, costore_client_space(client, &space));
  CHECK(space != NULL && space->floor_bytes == kGiB && space->quota_bytes == 20 * kGiB);
  costore_space_free(space);

  /* Wrong types, unknown keys: the daemon names them. */
  CHECK_FAILS(client, COSTORE_ERROR_INVALID_ARGUMENT,
              costore_client_set_setting_string(client, COSTORE_SETTING_QUOTA, "lots"));
  CHECK(strstr(costore_client_get_error_message(client), "quota") != NULL);
  CHECK_FAILS(client, COSTORE_ERROR_INVALID_ARGUMENT,
              costore_client_set_setting_bool(client, COSTORE_SETTING_MIN_FREE_SPACE, true));
  CHECK(strstr(costore_client_get_error_message(client), "min-free-space") != NULL);
  CHECK_FAILS(client, COSTORE_ERROR_INVALID_ARGUMENT,
              costore_client_set_setting_string(client, COSTORE_SETTING_AUTO_COLLECT, "on"));
  CHECK(strstr(costore_client_get_error_message(client), "auto-collect") != NULL);
  CHECK_FAILS(client, COSTORE_ERROR_INVALID_ARGUMENT, costore_client_set_setting_bool(client, "colour", true));
  CHECK(strstr(costore_client_get_error_message(client), "colour") != NULL);
  CHECK_FAILS(client, COSTORE_ERROR_INVALID_ARGUMENT, costore_client_set_setting_uint64(client, NULL, 1));
  CHECK_FAILS(client, COSTORE_ERROR_INVALID_ARGUMENT, costore_client_set_setting_bool(client, NULL, true));

  CHECK_OK(client, costore_client_set_setting_uint64(client, COSTORE_SETTING_MIN_FREE_SPACE, 0));
  CHECK_OK(client, costore_client_set_setting_uint64(client, COSTORE_SETTING_QUOTA, 0));
  CHECK_OK(client, costore_client_set_setting_bool(client, COSTORE_SETTING_AUTO_COLLECT, false));
  CHECK_OK(client, costore_client_set_setting_uint32(client, COSTORE_SETTING_SCRUB_INTERVAL, 0));
  CHECK_OK(client, costore_client_get_settings(client, &settings));
  CHECK(settings != NULL && costore_settings_get_quota(settings) == 0 && !costore_settings_get_auto_collect(settings));
  costore_settings_free(settings);

  CHECK(costore_settings_get_min_free_space(NULL) == 0);
  CHECK(costore_settings_get_quota(NULL) == 0);
  CHECK(!costore_settings_get_auto_collect(NULL));
  CHECK(costore_settings_get_scrub_interval_days(NULL) == 0);
  CHECK_FAILS(client, COSTORE_ERROR_INVALID_ARGUMENT, costore_client_space(client, NULL));
}

static void test_verify(costore_client *client, const char *model_path) {
  CHECK_OK(client, store_model(client, model_path));

  costore_verify_result **results = NULL;
  size_t count = 0;
  const char *digests[] = {kModelHex, kUnknownDigest};
  CHECK_OK(client, costore_client_verify(client, digests, 2, &results, &count));
  CHECK(count == 2 && results != NULL && results[2] == NULL);
  int saw_ok = 0, saw_absent = 0;
  for (size_t i = 0; results && results[i]; ++i) {
    if (strcmp(results[i]->digest, kModelDigest) == 0) {
      saw_ok = 1;
      CHECK(strcmp(results[i]->state, COSTORE_STATE_OK) == 0);
      CHECK(strcmp(results[i]->problem, "") == 0);
      CHECK(results[i]->size == kModelSize);
      CHECK(!results[i]->is_private && strcmp(results[i]->owner_app, "") == 0);
    } else if (strcmp(results[i]->digest, kUnknownDigest) == 0) {
      saw_absent = 1;
      CHECK(strcmp(results[i]->state, COSTORE_STATE_ABSENT) == 0);
    }
  }
  CHECK(saw_ok && saw_absent);
  costore_verify_result_array_free(results);

  /* Every entry: NULL and 0. */
  CHECK_OK(client, costore_client_verify(client, NULL, 0, &results, &count));
  CHECK(count >= 1 && results != NULL && results[count] == NULL);
  costore_verify_result_array_free(results);

  /* A byte changed on disk: damaged, said so everywhere, never served. */
  CHECK(corrupt_model());
  CHECK_OK(client, costore_client_verify(client, digests, 1, &results, &count));
  CHECK(count == 1);
  if (count == 1) {
    CHECK(strcmp(results[0]->digest, kModelDigest) == 0);
    CHECK(strcmp(results[0]->state, COSTORE_STATE_DAMAGED) == 0);
    CHECK(results[0]->problem[0] != '\0');
  }
  costore_verify_result_array_free(results);
  costore_file_entry **entries = NULL;
  CHECK_OK(client, costore_client_list_digest(client, kModelDigest, &entries, &count));
  CHECK(count == 1);
  if (count == 1) {
    CHECK(strcmp(costore_file_entry_get_state(entries[0]), COSTORE_STATE_DAMAGED) == 0);
    CHECK(costore_file_entry_get_problem(entries[0])[0] != '\0');
  }
  costore_file_entry_array_free(entries);
  costore_space *space = NULL;
  CHECK_OK(client, costore_client_space(client, &space));
  CHECK(space != NULL && space->damaged == 1);
  costore_space_free(space);
  int fd = -1;
  CHECK_FAILS(client, COSTORE_ERROR_NOT_FOUND, costore_client_open(client, kModelDigest, kOrigin, &fd, NULL));
  CHECK(fd == -1);

  /* Storing the right bytes repairs it. */
  CHECK_OK(client, store_model(client, model_path));
  costore_file_entry *entry = NULL;
  CHECK_OK(client, costore_client_stat(client, kModelDigest, &entry));
  CHECK(entry != NULL && strcmp(costore_file_entry_get_state(entry), COSTORE_STATE_OK) == 0);
  CHECK(entry != NULL && strcmp(costore_file_entry_get_problem(entry), "") == 0);
  CHECK(entry != NULL && costore_file_entry_get_last_verified_usec(entry) > 0);
  costore_file_entry_free(entry);
  CHECK_OK(client, costore_client_open(client, kModelDigest, kOrigin, &fd, NULL));
  if (fd >= 0) close(fd);
  CHECK_OK(client, costore_client_space(client, &space));
  CHECK(space != NULL && space->damaged == 0);
  costore_space_free(space);

  CHECK_FAILS(client, COSTORE_ERROR_INVALID_ARGUMENT, costore_client_verify(client, digests, 1, NULL, NULL));
  CHECK_FAILS(client, COSTORE_ERROR_INVALID_ARGUMENT, costore_client_verify(client, NULL, 1, &results, NULL));
  CHECK(results == NULL);
  const char *bad[] = {"sha256:nope"};
  CHECK_FAILS(client, COSTORE_ERROR_INVALID_ARGUMENT, costore_client_verify(client, bad, 1, &results, NULL));
  const char *null_digest[] = {kModelDigest, NULL};
  CHECK_FAILS(client, COSTORE_ERROR_INVALID_ARGUMENT, costore_client_verify(client, null_digest, 2, &results, NULL));
  CHECK(strcmp(costore_file_entry_get_state(NULL), "") == 0);
  CHECK(strcmp(costore_file_entry_get_problem(NULL), "") == 0);
  CHECK(costore_file_entry_get_last_verified_usec(NULL) == 0);
}

static void test_pin_and_collect(costore_client *client, const char *model_path) {
  CHECK_OK(client, store_model(client, model_path));
  CHECK_OK(client, store_xs(client));
  CHECK_OK(client, costore_client_set_pinned(client, kModelHex, true));
  costore_file_entry *entry = NULL;
  CHECK_OK(client, costore_client_stat(client, kModelDigest, &entry));
  CHECK(costore_file_entry_is_pinned(entry));
  costore_file_entry_free(entry);
  CHECK(!costore_file_entry_is_pinned(NULL));
  costore_space *space = NULL;
  CHECK_OK(client, costore_client_space(client, &space));
  CHECK(space != NULL && space->pinned == 1 && space->files == 2 && space->store_bytes >= kModelSize + kXsSize);
  CHECK(space != NULL && space->free_bytes > 0 && space->floor_bytes > 0);
  costore_space_free(space);

  /* A dry run deletes nothing. */
  costore_collect_options *options = costore_collect_options_new();
  CHECK(options != NULL);
  CHECK_OK(client, costore_collect_options_set_target_size(options, 0));
  CHECK_OK(client, costore_collect_options_set_dry_run(options, true));
  costore_collect_result *result = NULL;
  CHECK_OK(client, costore_client_collect(client, options, &result));
  CHECK(result != NULL);
  if (result) {
    CHECK(collected(result, kXsDigest) && !collected(result, kModelDigest));
    CHECK(result->files_deleted == 1 && count_digests(result) == 1);
    CHECK(result->bytes_freed >= kXsSize);
    CHECK(result->store_bytes >= kModelSize);
  }
  costore_collect_result_free(result);
  CHECK(stored(client, kXsDigest) && stored(client, kModelDigest));

  /* For real: the pinned model stays. @result may be NULL. */
  CHECK_OK(client, costore_collect_options_set_dry_run(options, false));
  CHECK_OK(client, costore_client_collect(client, options, NULL));
  CHECK(!stored(client, kXsDigest) && stored(client, kModelDigest));

  /* Unpinned, it goes too. */
  CHECK_OK(client, costore_client_set_pinned(client, kModelDigest, false));
  CHECK_OK(client, costore_client_collect(client, options, &result));
  CHECK(result != NULL && collected(result, kModelDigest) && result->bytes_freed >= kModelSize &&
        result->store_bytes == 0);
  costore_collect_result_free(result);
  CHECK(!stored(client, kModelDigest));
  costore_collect_options_free(options);

  /* By age: just stored is not unused for a day. */
  CHECK_OK(client, store_xs(client));
  options = costore_collect_options_new();
  CHECK_OK(client, costore_collect_options_set_unused_for(options, 86400));
  CHECK_OK(client, costore_client_collect(client, options, &result));
  CHECK(result != NULL && result->files_deleted == 0 && count_digests(result) == 0);
  costore_collect_result_free(result);
  CHECK(stored(client, kXsDigest));
  costore_collect_options_free(options);

  /* Neither limit: refused. */
  options = costore_collect_options_new();
  CHECK_OK(client, costore_collect_options_set_dry_run(options, true));
  result = (costore_collect_result *)1;
  CHECK_FAILS(client, COSTORE_ERROR_INVALID_ARGUMENT, costore_client_collect(client, options, &result));
  CHECK(result == NULL);
  costore_collect_options_free(options);
  CHECK_FAILS(client, COSTORE_ERROR_INVALID_ARGUMENT, costore_client_collect(client, NULL, NULL));
  CHECK(costore_collect_options_set_target_size(NULL, 0) == COSTORE_ERROR_INVALID_ARGUMENT);
  CHECK(costore_collect_options_set_unused_for(NULL, 0) == COSTORE_ERROR_INVALID_ARGUMENT);
  CHECK(costore_collect_options_set_dry_run(NULL, true) == COSTORE_ERROR_INVALID_ARGUMENT);

  CHECK_FAILS(client, COSTORE_ERROR_NOT_FOUND, costore_client_set_pinned(client, kUnknownDigest, true));
  CHECK_FAILS(client, COSTORE_ERROR_INVALID_ARGUMENT, costore_client_set_pinned(client, "nope", true));
  CHECK_FAILS(client, COSTORE_ERROR_INVALID_ARGUMENT, costore_client_set_pinned(client, NULL, true));
  CHECK_OK(client, costore_client_delete(client, kXsDigest));

  costore_collect_options_free(NULL);
  costore_collect_result_free(NULL);
  costore_verify_result_array_free(NULL);
  costore_space_free(NULL);
}

int main(void) {
  char model_path[PATH_MAX];
  if (!find_model("c_api_verify_gc_test", 1, model_path, sizeof model_path)) return 1;

  costore_client *client = costore_client_new();
  CHECK_OK(client, costore_client_connect(client));
  test_settings(client);
  test_verify(client, model_path);
  test_pin_and_collect(client, model_path);
  costore_client_free(client);
  return finish("c_api_verify_gc_test");
}
