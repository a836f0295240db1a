/*
 * c_api_test: the C ABI of libcostore against the real costored, written in
 * C11 with nothing but <costore/costore.h> (and libc). Run it through
 * tests/support/with-costored; COSTORE_SOURCE_DIR locates the model file.
 */
#include "c_test_support.h"

static const char kOriginA[] = "https://a.example";
static const char kOriginB[] = "https://b.example";
static const char kOriginC[] = "https://c.example";

static unsigned char *read_all(int fd, size_t *size) {
  size_t capacity = 1 << 20, used = 0;
  unsigned char *data = malloc(capacity);
  for (;;) {
    if (used == capacity) {
      capacity *= 2;
      data = realloc(data, capacity);
    }
    ssize_t got = read(fd, data + used, capacity - used);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    used += (size_t)got;
  }
  *size = used;
  return data;
}

static unsigned char *read_path(const char *path, size_t *size) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) return NULL;
  unsigned char *data = read_all(fd, size);
  close(fd);
  return data;
}

/* Replaces every occurrence of `from` in `text` by `to` (same length). */
static void replace_all(char *text, const char *from, const char *to) {
  size_t length = strlen(from);
  for (char *at = strstr(text, from); at; at = strstr(at + length, from)) memcpy(at, to, length);
}

typedef struct {
  int calls;
  int went_backwards;
  uint64_t last_done;
  uint64_t last_total;
} progress_record;

static void record_progress(uint64_t done, uint64_t total, void *user_data) {
  progress_record *record = user_data;
  if (record->calls > 0 && done < record->last_done) record->went_backwards = 1;
  record->calls++;
  record->last_done = done;
  record->last_total = total;
}

typedef struct {
  const unsigned char *data;
  size_t size;
  size_t offset;
  size_t chunk;      /* at most this much per call */
  size_t fail_after; /* return -1 once this much was given (0: never) */
  int calls;
} stream_source;

static ssize_t read_stream(void *buffer, size_t size, void *user_data) {
  stream_source *source = user_data;
  source->calls++;
  if (source->fail_after && source->offset >= source->fail_after) return -1;
  size_t left = source->size - source->offset;
  size_t n = left < size ? left : size;
  if (n > source->chunk) n = source->chunk;
  memcpy(buffer, source->data + source->offset, n);
  source->offset += n;
  return (ssize_t)n;
}

static void test_library_basics(void) {
  CHECK(strlen(costore_version()) > 0);
  CHECK(strcmp(costore_error_name(COSTORE_OK), "OK") == 0);
  CHECK(strcmp(costore_error_name(COSTORE_ERROR_NOT_FOUND), "NotFound") == 0);
  CHECK(strcmp(costore_error_name(COSTORE_ERROR_DIGEST_MISMATCH), "DigestMismatch") == 0);
  CHECK(strcmp(costore_error_name(COSTORE_ERROR_IO), "IOError") == 0);
  CHECK(strcmp(costore_error_name(COSTORE_ERROR_UNREACHABLE), "Unreachable") == 0);
  CHECK(strcmp(costore_error_name(COSTORE_ERROR_FAILED), "Failed") == 0);
  CHECK(strcmp(costore_error_name((costore_error)99), "Failed") == 0);
}

static void test_digest_normalize(void) {
  char out[COSTORE_DIGEST_BUFFER_SIZE];
  const char *reason = NULL;
  CHECK(costore_digest_normalize("1A153A22F4509E292A94E67D6F9B85E8DEB25B4988682B7E174C65279D8788E3", out,
                                 sizeof out, &reason) == COSTORE_OK);
  CHECK(strcmp(out, kModelDigest) == 0);
  CHECK(reason == NULL);
  CHECK(costore_digest_normalize(kModelDigest, out, sizeof out, NULL) == COSTORE_OK);
  CHECK(strcmp(out, kModelDigest) == 0);
  CHECK(costore_digest_normalize(" sha256-1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3\n", out,
                                 sizeof out, NULL) == COSTORE_OK);
  CHECK(strcmp(out, kModelDigest) == 0);

  CHECK(costore_digest_normalize("md5:d41d8cd98f00b204e9800998ecf8427e", out, sizeof out, &reason) ==
        COSTORE_ERROR_INVALID_ARGUMENT);
  CHECK(reason != NULL && strstr(reason, "SHA-256") != NULL);
  CHECK(costore_digest_normalize("sha256:1a15", out, sizeof out, &reason) == COSTORE_ERROR_INVALID_ARGUMENT);
  CHECK(reason != NULL && strstr(reason, "64") != NULL);
  CHECK(costore_digest_normalize("", out, sizeof out, &reason) == COSTORE_ERROR_INVALID_ARGUMENT);
  CHECK(costore_digest_normalize("g", out, sizeof out, &reason) == COSTORE_ERROR_INVALID_ARGUMENT);
  CHECK(costore_digest_normalize(kModelDigest, out, 10, &reason) == COSTORE_ERROR_INVALID_ARGUMENT);
}

static void test_unreachable_bus(void) {
  const char *saved = getenv("DBUS_SESSION_BUS_ADDRESS");
  char *saved_copy = saved ? strdup(saved) : NULL;
  setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/costore-test-bus", 1);
  costore_client *client = costore_client_new();
  CHECK(client != NULL);
  CHECK_FAILS(client, COSTORE_ERROR_UNREACHABLE, costore_client_connect(client));
  CHECK(strstr(costore_client_get_error_message(client), "session bus") != NULL);
  /* Calls connect on first use, and fail the same way. */
  costore_file_entry **entries = NULL;
  CHECK_FAILS(client, COSTORE_ERROR_UNREACHABLE, costore_client_list(client, &entries, NULL));
  CHECK(entries == NULL);
  costore_client_free(client);
  if (saved_copy) setenv("DBUS_SESSION_BUS_ADDRESS", saved_copy, 1);
  free(saved_copy);
}

static void test_null_arguments(costore_client *client) {
  CHECK(costore_client_connect(NULL) == COSTORE_ERROR_INVALID_ARGUMENT);
  CHECK(costore_client_get_error_code(NULL) == COSTORE_ERROR_INVALID_ARGUMENT);
  int fd = 0;
  CHECK_FAILS(client, COSTORE_ERROR_INVALID_ARGUMENT, costore_client_open(client, NULL, NULL, &fd, NULL));
  CHECK(fd == -1);
  CHECK_FAILS(client, COSTORE_ERROR_INVALID_ARGUMENT, costore_client_store_path(client, NULL, kModelDigest, NULL, NULL));
  CHECK_FAILS(client, COSTORE_ERROR_INVALID_ARGUMENT, costore_client_store_stream(client, NULL, NULL, kModelDigest, NULL, NULL));
  CHECK(costore_store_options_set_name(NULL, "x") == COSTORE_ERROR_INVALID_ARGUMENT);
  costore_client_free(NULL);
  costore_store_options_free(NULL);
  costore_file_info_free(NULL);
  costore_file_entry_array_free(NULL);
  costore_grant_array_free(NULL);
  costore_principal_usage_array_free(NULL);
  costore_forget_result_free(NULL);
  costore_settings_free(NULL);
}

static int open_and_compare(costore_client *client, const char *digest, const char *origin,
                            const unsigned char *expected, size_t expected_size) {
  int fd = -1;
  costore_file_info *info = NULL;
  costore_error rc = costore_client_open(client, digest, origin, &fd, &info);
  if (rc != COSTORE_OK) {
    fprintf(stderr, "open %s as %s: %s: %s\n", digest, origin, costore_error_name(rc),
            costore_client_get_error_message(client));
    return 0;
  }
  size_t size = 0;
  unsigned char *data = read_all(fd, &size);
  int same = size == expected_size && memcmp(data, expected, size) == 0;
  if (!same) fprintf(stderr, "open %s as %s: %zu bytes differ from the %zu expected\n", digest, origin, size, expected_size);
  CHECK(info != NULL && strcmp(info->digest, digest) == 0 && info->size == expected_size);
  CHECK((fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
  CHECK(write(fd, "x", 1) < 0); /* read-only */
  free(data);
  costore_file_info_free(info);
  close(fd);
  return same;
}

static int self_executable(char *out, size_t size) {
  ssize_t length = readlink("/proc/self/exe", out, size - 1);
  if (length < 0) return 0;
  out[length] = '\0';
  return 1;
}

/* Forgetting a site: its grants and records go, and the files only it stored. */
static void test_forget_origin(costore_client *client, const char *self, const char *model_path) {
  static const char kForgotten[] = "https://forgotten.example";
  static const char kKeeper[] = "https://keeper.example";
  costore_store_options *options = costore_store_options_new();
  CHECK_OK(client, costore_store_options_set_origin(options, kForgotten));
  CHECK_OK(client, costore_client_store_path(client, model_path, kModelDigest, options, NULL));
  costore_store_options_free(options);
  CHECK_OK(client, costore_client_grant(client, self, kForgotten, "*"));

  costore_forget_result *result = NULL;
  CHECK_OK(client, costore_client_forget_origin(client, kForgotten, &result));
  CHECK(result != NULL);
  if (result) {
    CHECK(result->grants_removed == 1);
    CHECK(result->files_deleted == 1);
  }
  costore_forget_result_free(result);
  costore_file_entry *entry = NULL;
  CHECK_FAILS(client, COSTORE_ERROR_NOT_FOUND, costore_client_stat(client, kModelDigest, &entry));

  /* A file another site stored too stays; @result may be NULL. */
  options = costore_store_options_new();
  CHECK_OK(client, costore_store_options_set_origin(options, kForgotten));
  CHECK_OK(client, costore_client_store_path(client, model_path, kModelDigest, options, NULL));
  CHECK_OK(client, costore_store_options_set_origin(options, kKeeper));
  CHECK_OK(client, costore_client_store_path(client, model_path, kModelDigest, options, NULL));
  costore_store_options_free(options);
  CHECK_OK(client, costore_client_forget_origin(client, kForgotten, NULL));
  CHECK_OK(client, costore_client_stat(client, kModelDigest, &entry));
  CHECK(entry != NULL && entry->stored_by == 1);
  costore_file_entry_free(entry);

  /* Again: nothing left to forget, which is not an error. */
  CHECK_OK(client, costore_client_forget_origin(client, kForgotten, &result));
  CHECK(result != NULL && result->grants_removed == 0 && result->claims_removed == 0 && result->files_deleted == 0);
  costore_forget_result_free(result);

  result = (costore_forget_result *)1;
  CHECK_FAILS(client, COSTORE_ERROR_INVALID_ARGUMENT, costore_client_forget_origin(client, "", &result));
  CHECK(result == NULL);
  CHECK_FAILS(client, COSTORE_ERROR_INVALID_ARGUMENT, costore_client_forget_origin(client, NULL, NULL));
  CHECK_FAILS(client, COSTORE_ERROR_INVALID_ARGUMENT, costore_client_forget_origin(client, "not an origin", NULL));
  CHECK_OK(client, costore_client_delete(client, kModelDigest));
}

/* The consent settings: read, change, read back, refuse nonsense. */
static void test_settings(costore_client *client) {
  costore_settings *settings = NULL;
  CHECK_OK(client, costore_client_get_settings(client, &settings));
  CHECK(settings != NULL);
  if (settings) {
    CHECK(strcmp(settings->consent_policy, "ask") == 0);
    CHECK(settings->consent_timeout_s == 60);
    CHECK(settings->prompts_per_hour == 10);
  }
  costore_settings_free(settings);

  CHECK_OK(client, costore_client_set_setting_string(client, COSTORE_SETTING_CONSENT_POLICY, "deny"));
  CHECK_OK(client, costore_client_set_setting_uint32(client, COSTORE_SETTING_CONSENT_TIMEOUT, 15));
  CHECK_OK(client, costore_client_set_setting_uint32(client, COSTORE_SETTING_PROMPTS_PER_HOUR, 0));
  CHECK_OK(client, costore_client_get_settings(client, &settings));
  if (settings) {
    CHECK(strcmp(settings->consent_policy, "deny") == 0);
    CHECK(settings->consent_timeout_s == 15);
    CHECK(settings->prompts_per_hour == 0);
  }
  costore_settings_free(settings);

  /* The daemon checks key, type and range, and names what is wrong. */
  CHECK_FAILS(client, COSTORE_ERROR_INVALID_ARGUMENT,
              costore_client_set_setting_string(client, COSTORE_SETTING_CONSENT_POLICY, "sometimes"));
  CHECK_FAILS(client, COSTORE_ERROR_INVALID_ARGUMENT,
              costore_client_set_setting_uint32(client, COSTORE_SETTING_CONSENT_POLICY, 1));
  CHECK_FAILS(client, COSTORE_ERROR_INVALID_ARGUMENT,
              costore_client_set_setting_string(client, COSTORE_SETTING_CONSENT_TIMEOUT, "60"));
  CHECK_FAILS(client, COSTORE_ERROR_INVALID_ARGUMENT,
              costore_client_set_setting_uint32(client, COSTORE_SETTING_CONSENT_TIMEOUT, 0));
  CHECK(strstr(costore_client_get_error_message(client), "consent-timeout") != NULL);
  CHECK_FAILS(client, COSTORE_ERROR_INVALID_ARGUMENT, costore_client_set_setting_uint32(client, "colour", 1));
  CHECK(strstr(costore_client_get_error_message(client), "colour") != NULL);
  CHECK_FAILS(client, COSTORE_ERROR_INVALID_ARGUMENT, costore_client_set_setting_string(client, NULL, "ask"));
  CHECK_FAILS(client, COSTORE_ERROR_INVALID_ARGUMENT,
              costore_client_set_setting_string(client, COSTORE_SETTING_CONSENT_POLICY, NULL));
  CHECK_FAILS(client, COSTORE_ERROR_INVALID_ARGUMENT, costore_client_get_settings(client, NULL));

  CHECK_OK(client, costore_client_set_setting_string(client, COSTORE_SETTING_CONSENT_POLICY, "ask"));
  CHECK_OK(client, costore_client_set_setting_uint32(client, COSTORE_SETTING_CONSENT_TIMEOUT, 60));
  CHECK_OK(client, costore_client_set_setting_uint32(client, COSTORE_SETTING_PROMPTS_PER_HOUR, 10));
  CHECK_OK(client, costore_client_get_settings(client, &settings));
  CHECK(settings != NULL && strcmp(settings->consent_policy, "ask") == 0 && settings->consent_timeout_s == 60 &&
        settings->prompts_per_hour == 10);
  costore_settings_free(settings);
}

/* with-costored starts no keyring: the private additions of the ABI, as far
 * as they go without one (client_private_test covers them with a keyring). */
static void test_private_without_keyring(costore_client *client, const char *model_path) {
  static const char kPublic[] = "https://public.example";
  costore_keyring_status *status = NULL;
  CHECK_OK(client, costore_client_keyring_status(client, &status));
  CHECK(status != NULL);
  if (status) {
    CHECK(strcmp(status->state, "no-service") == 0);
    CHECK(strstr(status->message, "Secret Service") != NULL);
    CHECK(status->private_files == 0 && status->key_version == 0 && !status->rekey_pending);
    CHECK(status->cipher[0] != '\0' && status->chunk_size > 0);
  }
  costore_keyring_status_free(status);
  CHECK_FAILS(client, COSTORE_ERROR_INVALID_ARGUMENT, costore_client_keyring_status(client, NULL));

  costore_store_options *options = costore_store_options_new();
  CHECK_OK(client, costore_store_options_set_private(options, true));
  CHECK(costore_store_options_set_private(NULL, true) == COSTORE_ERROR_INVALID_ARGUMENT);
  costore_file_info *info = NULL;
  CHECK_FAILS(client, COSTORE_ERROR_KEYRING_UNAVAILABLE,
              costore_client_store_path(client, model_path, kModelDigest, options, &info));
  CHECK(info == NULL);
  CHECK(strstr(costore_client_get_error_message(client), "Secret Service") != NULL);
  costore_rekey_result *rekey = NULL;
  CHECK_OK(client, costore_client_rekey(client, &rekey)); /* no master key: nothing to do */
  CHECK(rekey != NULL && rekey->key_version == 0 && rekey->files_rewrapped == 0 && !rekey->resumed);
  costore_rekey_result_free(rekey);

  /* Public: cipher "none", not private, no owner; "stream" changes nothing. */
  CHECK_OK(client, costore_store_options_set_private(options, false));
  CHECK_OK(client, costore_store_options_set_origin(options, kPublic));
  CHECK_OK(client, costore_client_store_path(client, model_path, kModelDigest, options, &info));
  CHECK(info != NULL && !costore_file_info_is_private(info) && strcmp(costore_file_info_get_cipher(info), "none") == 0);
  costore_file_info_free(info);
  costore_store_options_free(options);
  int fd = -1;
  info = NULL;
  CHECK_OK(client, costore_client_open_with_flags(client, kModelHex, kPublic, COSTORE_OPEN_STREAM, &fd, &info));
  struct stat st;
  CHECK(fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode));
  CHECK(info != NULL && info->size == kModelSize && !costore_file_info_is_private(info));
  costore_file_info_free(info);
  if (fd >= 0) close(fd);
  CHECK_FAILS(client, COSTORE_ERROR_INVALID_ARGUMENT,
              costore_client_open_with_flags(client, kModelDigest, kPublic, 0x80u, &fd, NULL));
  CHECK(fd == -1);
  CHECK(!costore_file_info_is_private(NULL));
  CHECK(strcmp(costore_file_info_get_cipher(NULL), "") == 0);

  costore_file_entry **entries = NULL;
  size_t count = 0;
  CHECK_OK(client, costore_client_list_digest(client, kModelHex, &entries, &count));
  CHECK(count == 1 && entries != NULL && entries[1] == NULL);
  if (count == 1) {
    CHECK(!entries[0]->is_private);
    CHECK(strcmp(costore_file_entry_get_cipher(entries[0]), "none") == 0);
    CHECK(strcmp(costore_file_entry_get_owner_app(entries[0]), "") == 0);
    CHECK(strcmp(costore_file_entry_get_owner_origin(entries[0]), "") == 0);
  }
  costore_file_entry_array_free(entries);
  CHECK_OK(client, costore_client_list_digest(client, kUnknownDigest, &entries, &count));
  CHECK(count == 0 && entries != NULL && entries[0] == NULL);
  costore_file_entry_array_free(entries);
  CHECK_FAILS(client, COSTORE_ERROR_INVALID_ARGUMENT, costore_client_list_digest(client, "", &entries, &count));
  CHECK_FAILS(client, COSTORE_ERROR_INVALID_ARGUMENT, costore_client_list_digest(client, "nope", &entries, &count));
  CHECK(strcmp(costore_file_entry_get_cipher(NULL), "") == 0);
  costore_file_entry *entry = NULL;
  CHECK_OK(client, costore_client_stat(client, kModelDigest, &entry));
  CHECK(entry != NULL && strcmp(costore_file_entry_get_cipher(entry), "none") == 0);
  costore_file_entry_free(entry);
  CHECK_OK(client, costore_client_delete(client, kModelDigest));
  costore_rekey_result_free(NULL);
  costore_keyring_status_free(NULL);
}

int main(void) {
  char model_path[PATH_MAX];
  if (!find_model("c_api_test", 0, model_path, sizeof model_path)) return 1;
  size_t model_size = 0;
  unsigned char *model = read_path(model_path, &model_size);
  if (!model || model_size != kModelSize) {
    fprintf(stderr, "c_api_test: the model file %s is missing or not %llu bytes\n", model_path,
            (unsigned long long)kModelSize);
    return 1;
  }
  char self[PATH_MAX];
  if (!self_executable(self, sizeof self)) {
    fprintf(stderr, "c_api_test: cannot read /proc/self/exe\n");
    return 1;
  }

  test_library_basics();
  test_digest_normalize();
  test_unreachable_bus();

  costore_client *client = costore_client_new();
  CHECK_OK(client, costore_client_connect(client));
  test_null_arguments(client);

  /* Store by path as origin A, with a name and progress. */
  progress_record progress = {0, 0, 0, 0};
  costore_store_options *options = costore_store_options_new();
  CHECK_OK(client, costore_store_options_set_origin(options, kOriginA));
  CHECK_OK(client, costore_store_options_set_name(options, "snakers4/silero-vad/silero_vad.onnx"));
  CHECK_OK(client, costore_store_options_set_progress(options, record_progress, &progress));
  costore_file_info *info = NULL;
  CHECK_OK(client, costore_client_store_path(client, model_path, kModelHex, options, &info));
  CHECK(costore_client_get_error_code(client) == COSTORE_OK);
  CHECK(strcmp(costore_client_get_error_message(client), "") == 0);
  CHECK(info != NULL);
  if (info) {
    CHECK(strcmp(info->digest, kModelDigest) == 0);
    CHECK(info->size == kModelSize);
    CHECK(strcmp(info->name, "snakers4/silero-vad/silero_vad.onnx") == 0);
    CHECK(info->first_stored_usec > 0);
  }
  costore_file_info_free(info);
  CHECK(progress.calls >= 1);
  CHECK(!progress.went_backwards);
  CHECK(progress.last_done == kModelSize);
  CHECK(progress.last_total == kModelSize);
  costore_store_options_free(options);

  /* A reads it back. */
  CHECK(open_and_compare(client, kModelDigest, kOriginA, model, model_size));

  /* B gets NotFound, worded exactly as for a digest that is not stored. */
  int fd = -1;
  CHECK_FAILS(client, COSTORE_ERROR_NOT_FOUND, costore_client_open(client, kModelDigest, kOriginB, &fd, NULL));
  CHECK(fd == -1);
  char refused[1024];
  snprintf(refused, sizeof refused, "%s", costore_client_get_error_message(client));
  CHECK_FAILS(client, COSTORE_ERROR_NOT_FOUND, costore_client_open(client, kUnknownDigest, kOriginB, &fd, NULL));
  char unknown[1024];
  snprintf(unknown, sizeof unknown, "%s", costore_client_get_error_message(client));
  replace_all(unknown, kUnknownDigest + 7, kModelHex);
  if (strcmp(refused, unknown) != 0) {
    fprintf(stderr, "refusal and miss differ:\n  refused: %s\n  unknown: %s\n", refused, unknown);
    failures++;
  }

  /* A grant lets B read; revoking takes it back. */
  CHECK_OK(client, costore_client_grant(client, self, kOriginB, kModelHex));
  CHECK(open_and_compare(client, kModelDigest, kOriginB, model, model_size));
  costore_grant **grants = NULL;
  size_t grant_count = 0;
  CHECK_OK(client, costore_client_list_grants(client, kModelDigest, &grants, &grant_count));
  int grant_listed = 0;
  for (size_t i = 0; grants && grants[i]; ++i) {
    if (strcmp(grants[i]->app, self) == 0 && strcmp(grants[i]->origin, kOriginB) == 0 &&
        strcmp(grants[i]->digest, kModelDigest) == 0 && grants[i]->created_usec > 0)
      grant_listed = 1;
  }
  CHECK(grant_listed);
  CHECK(grants != NULL && grants[grant_count] == NULL);
  costore_grant_array_free(grants);
  CHECK_OK(client, costore_client_revoke(client, self, kOriginB, kModelDigest));
  CHECK_FAILS(client, COSTORE_ERROR_NOT_FOUND, costore_client_open(client, kModelDigest, kOriginB, &fd, NULL));
  CHECK_FAILS(client, COSTORE_ERROR_NOT_FOUND, costore_client_revoke(client, self, kOriginB, kModelDigest));

  /* The wrong digest stores nothing, and the message names what arrived. */
  const char *wrong = "sha256:abababababababababababababababababababababababababababababababab";
  CHECK_FAILS(client, COSTORE_ERROR_DIGEST_MISMATCH, costore_client_store_path(client, model_path, wrong, NULL, NULL));
  CHECK(strstr(costore_client_get_error_message(client), kModelHex) != NULL);
  costore_file_entry *entry = NULL;
  CHECK_FAILS(client, COSTORE_ERROR_NOT_FOUND, costore_client_stat(client, wrong, &entry));
  CHECK(entry == NULL);

  /* So does the wrong expected size. */
  options = costore_store_options_new();
  CHECK_OK(client, costore_store_options_set_size(options, kModelSize - 1));
  CHECK_FAILS(client, COSTORE_ERROR_DIGEST_MISMATCH,
              costore_client_store_path(client, model_path, kModelDigest, options, NULL));
  costore_store_options_free(options);

  /* A streamed store, fed in small pieces, as origin C. */
  stream_source source = {model, model_size, 0, 100000, 0, 0};
  progress_record stream_progress = {0, 0, 0, 0};
  options = costore_store_options_new();
  CHECK_OK(client, costore_store_options_set_origin(options, kOriginC));
  CHECK_OK(client, costore_store_options_set_progress(options, record_progress, &stream_progress));
  CHECK_OK(client, costore_client_store_stream(client, read_stream, &source, kModelDigest, options, &info));
  CHECK(info != NULL && info->size == kModelSize);
  costore_file_info_free(info);
  CHECK(source.calls > 20);
  CHECK(stream_progress.last_done == kModelSize && !stream_progress.went_backwards);
  CHECK(open_and_compare(client, kModelDigest, kOriginC, model, model_size));

  /* A stream whose callback gives up is Cancelled. */
  stream_source failing = {model, model_size, 0, 100000, 500000, 0};
  CHECK_FAILS(client, COSTORE_ERROR_CANCELLED,
              costore_client_store_stream(client, read_stream, &failing, kModelDigest, options, NULL));
  costore_store_options_free(options);

  /* Store from a descriptor: it stays open, and the daemon read it to the end. */
  int model_fd = open(model_path, O_RDONLY);
  CHECK(model_fd >= 0);
  CHECK_OK(client, costore_client_store_fd(client, model_fd, kModelDigest, NULL, NULL));
  CHECK(fcntl(model_fd, F_GETFD) >= 0);
  CHECK(lseek(model_fd, 0, SEEK_CUR) == (off_t)kModelSize);
  close(model_fd);

  /* Malformed arguments. */
  CHECK_FAILS(client, COSTORE_ERROR_INVALID_ARGUMENT,
              costore_client_store_path(client, model_path, "not-a-digest", NULL, NULL));
  CHECK(strstr(costore_client_get_error_message(client), "invalid digest") != NULL);
  CHECK_FAILS(client, COSTORE_ERROR_INVALID_ARGUMENT, costore_client_open(client, "sha256:xyz", NULL, &fd, NULL));
  CHECK_FAILS(client, COSTORE_ERROR_INVALID_ARGUMENT,
              costore_client_open(client, kModelDigest, "https://Not An Origin/", &fd, NULL));
  CHECK_FAILS(client, COSTORE_ERROR_IO,
              costore_client_store_path(client, "/nonexistent/model.onnx", kModelDigest, NULL, NULL));

  /* The manager's view. */
  costore_file_entry **entries = NULL;
  size_t count = 0;
  CHECK_OK(client, costore_client_list(client, &entries, &count));
  int listed = 0;
  for (size_t i = 0; entries && entries[i]; ++i) {
    if (strcmp(entries[i]->digest, kModelDigest) == 0) {
      listed = 1;
      CHECK(entries[i]->size == kModelSize);
      CHECK(strcmp(entries[i]->name, "snakers4/silero-vad/silero_vad.onnx") == 0);
      CHECK(!entries[i]->is_private);
    }
    CHECK(strcmp(entries[i]->digest, wrong) != 0);
  }
  CHECK(listed && count >= 1 && entries[count] == NULL);
  costore_file_entry_array_free(entries);

  CHECK_OK(client, costore_client_stat(client, kModelHex, &entry));
  if (entry) {
    CHECK(strcmp(entry->digest, kModelDigest) == 0);
    CHECK(entry->size == kModelSize);
    CHECK(entry->stored_by == 3); /* (self, A), (self, C), (self, "") */
    CHECK(entry->used_by >= entry->stored_by);
    CHECK(entry->first_stored_usec > 0 && entry->last_used_usec >= entry->first_stored_usec);
  }
  costore_file_entry_free(entry);

  costore_principal_usage **usage = NULL;
  CHECK_OK(client, costore_client_usage(client, kModelDigest, &usage, &count));
  int saw_a = 0, saw_b = 0;
  for (size_t i = 0; usage && usage[i]; ++i) {
    CHECK(strcmp(usage[i]->app, self) == 0);
    if (strcmp(usage[i]->origin, kOriginA) == 0) {
      saw_a = 1;
      CHECK(usage[i]->stored && usage[i]->stores == 1 && usage[i]->reads == 1);
    }
    if (strcmp(usage[i]->origin, kOriginB) == 0) {
      saw_b = 1;
      CHECK(!usage[i]->stored && usage[i]->stores == 0 && usage[i]->reads == 1);
    }
  }
  CHECK(saw_a && saw_b && count == 4);
  costore_principal_usage_array_free(usage);

  /* Delete: gone for everyone, and the miss reads exactly like B's refusal. */
  CHECK_OK(client, costore_client_delete(client, kModelDigest));
  CHECK_FAILS(client, COSTORE_ERROR_NOT_FOUND, costore_client_stat(client, kModelDigest, &entry));
  CHECK_FAILS(client, COSTORE_ERROR_NOT_FOUND, costore_client_open(client, kModelDigest, kOriginA, &fd, NULL));
  if (strcmp(costore_client_get_error_message(client), refused) != 0) {
    fprintf(stderr, "refusal and miss differ:\n  refused: %s\n  deleted: %s\n", refused,
            costore_client_get_error_message(client));
    failures++;
  }
  CHECK_FAILS(client, COSTORE_ERROR_NOT_FOUND, costore_client_delete(client, kModelDigest));

  test_forget_origin(client, self, model_path);
  test_settings(client);
  test_private_without_keyring(client, model_path);

  costore_client_free(client);
  free(model);
  return finish("c_api_test");
}
