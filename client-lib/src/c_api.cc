// The C ABI over costore::client::Client. Every entry point catches every
// exception: none crosses into C.
#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <new>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "costore/costore.h"
#include "internal.h"

using costore::client::Client;
using costore::client::Error;
using costore::client::ErrorCode;

static_assert(static_cast<int>(ErrorCode::kNotFound) == COSTORE_ERROR_NOT_FOUND);
static_assert(static_cast<int>(ErrorCode::kPermissionDenied) == COSTORE_ERROR_PERMISSION_DENIED);
static_assert(static_cast<int>(ErrorCode::kDigestMismatch) == COSTORE_ERROR_DIGEST_MISMATCH);
static_assert(static_cast<int>(ErrorCode::kInvalidArgument) == COSTORE_ERROR_INVALID_ARGUMENT);
static_assert(static_cast<int>(ErrorCode::kKeyringUnavailable) == COSTORE_ERROR_KEYRING_UNAVAILABLE);
static_assert(static_cast<int>(ErrorCode::kNoSpace) == COSTORE_ERROR_NO_SPACE);
static_assert(static_cast<int>(ErrorCode::kQuotaExceeded) == COSTORE_ERROR_QUOTA_EXCEEDED);
static_assert(static_cast<int>(ErrorCode::kCancelled) == COSTORE_ERROR_CANCELLED);
static_assert(static_cast<int>(ErrorCode::kBusy) == COSTORE_ERROR_BUSY);
static_assert(static_cast<int>(ErrorCode::kIOError) == COSTORE_ERROR_IO);
static_assert(static_cast<int>(ErrorCode::kUnreachable) == COSTORE_ERROR_UNREACHABLE);
static_assert(static_cast<int>(ErrorCode::kFailed) == COSTORE_ERROR_FAILED);

struct costore_client {
  std::optional<Client> client;
  std::optional<std::chrono::milliseconds> stall_timeout;  // until connected
  costore_error last_code = COSTORE_OK;
  std::string last_message;
};

struct costore_store_options {
  costore::client::StoreOptions options;
  costore_progress_fn progress = nullptr;
  void* progress_data = nullptr;
};

struct costore_collect_options {
  costore::client::CollectOptions options;
};

// The file records as this library allocates them: the public struct first
// (its layout is ABI and never changes), then what later versions added,
// reached through accessor functions. The header promises that records are
// only ever allocated by the library, so a pointer to the public struct is
// always a pointer to one of these.
namespace {

struct FileInfoRecord {
  costore_file_info pub;
  bool is_private;
  char* cipher;
};

struct FileEntryRecord {
  costore_file_entry pub;
  char* cipher;
  char* owner_app;
  char* owner_origin;
  char* state;
  char* problem;
  int64_t last_verified_usec;
  bool pinned;
};

struct SettingsRecord {
  costore_settings pub;
  uint64_t min_free_space;
  uint64_t quota;
  bool auto_collect;
  uint32_t scrub_interval_days;
};

static_assert(std::is_standard_layout_v<FileInfoRecord> && offsetof(FileInfoRecord, pub) == 0);
static_assert(std::is_standard_layout_v<FileEntryRecord> && offsetof(FileEntryRecord, pub) == 0);
static_assert(std::is_standard_layout_v<SettingsRecord> && offsetof(SettingsRecord, pub) == 0);

// Thrown by the C read callback adapter when the callback asks to stop.
struct StreamAbandoned {};

costore_error Fail(costore_client* client, costore_error code, std::string message) {
  try {
    client->last_code = code;
    client->last_message = std::move(message);
  } catch (...) {
    client->last_message.clear();
  }
  return code;
}

// Runs `body` for `client`, turning every exception into an error code and a
// message kept on the handle.
template <typename Body>
costore_error Guard(costore_client* client, Body&& body) {
  if (!client) return COSTORE_ERROR_INVALID_ARGUMENT;
  client->last_code = COSTORE_OK;
  client->last_message.clear();
  try {
    body();
    return COSTORE_OK;
  } catch (const Error& error) {
    return Fail(client, static_cast<costore_error>(error.code()), error.what());
  } catch (const StreamAbandoned&) {
    return Fail(client, COSTORE_ERROR_CANCELLED, "the read callback abandoned the store; nothing was stored");
  } catch (const std::bad_alloc&) {
    return Fail(client, COSTORE_ERROR_FAILED, "out of memory");
  } catch (const std::exception& error) {
    return Fail(client, COSTORE_ERROR_FAILED, error.what());
  } catch (...) {
    return Fail(client, COSTORE_ERROR_FAILED, "unknown error");
  }
}

Client& Connected(costore_client* client) {
  if (!client->client) {
    client->client.emplace(Client::Connect());
    if (client->stall_timeout) client->client->SetStallTimeout(*client->stall_timeout);
  }
  return *client->client;
}

void Require(const void* pointer, const char* argument) {
  if (!pointer) throw Error(ErrorCode::kInvalidArgument, std::string(argument) + ": must not be NULL");
}

std::string_view OrEmpty(const char* text) { return text ? std::string_view(text) : std::string_view(); }

char* CopyString(const std::string& text) {
  char* copy = static_cast<char*>(std::malloc(text.size() + 1));
  if (!copy) throw std::bad_alloc();
  std::memcpy(copy, text.c_str(), text.size() + 1);
  return copy;
}

template <typename T>
T* AllocateRecord() {
  T* record = static_cast<T*>(std::calloc(1, sizeof(T)));
  if (!record) throw std::bad_alloc();
  return record;
}

costore::client::StoreOptions ToStoreOptions(const costore_store_options* options) {
  if (!options) return {};
  costore::client::StoreOptions converted = options->options;
  if (options->progress) {
    converted.progress = [fn = options->progress, data = options->progress_data](uint64_t done, uint64_t total) {
      fn(done, total, data);
    };
  }
  return converted;
}

costore_file_info* NewFileInfo(const costore::client::FileInfo& info) {
  auto* record = AllocateRecord<FileInfoRecord>();
  try {
    record->pub.digest = CopyString(info.digest);
    record->pub.name = CopyString(info.name);
    record->cipher = CopyString(info.cipher);
  } catch (...) {
    costore_file_info_free(&record->pub);
    throw;
  }
  record->pub.size = info.size;
  record->pub.first_stored_usec = info.first_stored_usec;
  record->is_private = info.is_private;
  return &record->pub;
}

costore_file_entry* NewFileEntry(const costore::client::FileEntry& entry) {
  auto* record = AllocateRecord<FileEntryRecord>();
  try {
    record->pub.digest = CopyString(entry.digest);
    record->pub.name = CopyString(entry.name);
    record->cipher = CopyString(entry.cipher);
    record->owner_app = CopyString(entry.owner_app);
    record->owner_origin = CopyString(entry.owner_origin);
    record->state = CopyString(entry.state);
    record->problem = CopyString(entry.problem);
  } catch (...) {
    costore_file_entry_free(&record->pub);
    throw;
  }
  record->last_verified_usec = entry.last_verified_usec;
  record->pinned = entry.pinned;
  record->pub.size = entry.size;
  record->pub.is_private = entry.is_private;
  record->pub.first_stored_usec = entry.first_stored_usec;
  record->pub.last_used_usec = entry.last_used_usec;
  record->pub.stored_by = entry.stored_by;
  record->pub.used_by = entry.used_by;
  return &record->pub;
}

const FileInfoRecord* RecordOf(const costore_file_info* info) { return reinterpret_cast<const FileInfoRecord*>(info); }

const FileEntryRecord* RecordOf(const costore_file_entry* entry) {
  return reinterpret_cast<const FileEntryRecord*>(entry);
}

const SettingsRecord* RecordOf(const costore_settings* settings) {
  return reinterpret_cast<const SettingsRecord*>(settings);
}

const char* OrEmptyString(const char* text) { return text ? text : ""; }

void FreeString(char* text) { std::free(text); }

void FreeVerifyResult(costore_verify_result* result) {
  if (!result) return;
  std::free(result->digest);
  std::free(result->owner_app);
  std::free(result->owner_origin);
  std::free(result->state);
  std::free(result->problem);
  std::free(result);
}

costore_verify_result* NewVerifyResult(const costore::client::VerifyResult& result) {
  auto* record = AllocateRecord<costore_verify_result>();
  try {
    record->digest = CopyString(result.digest);
    record->owner_app = CopyString(result.owner_app);
    record->owner_origin = CopyString(result.owner_origin);
    record->state = CopyString(result.state);
    record->problem = CopyString(result.problem);
  } catch (...) {
    FreeVerifyResult(record);
    throw;
  }
  record->is_private = result.is_private;
  record->size = result.size;
  return record;
}

void FreeGrant(costore_grant* grant) {
  if (!grant) return;
  std::free(grant->app);
  std::free(grant->origin);
  std::free(grant->digest);
  std::free(grant);
}

costore_grant* NewGrant(const costore::client::GrantEntry& grant) {
  auto* record = AllocateRecord<costore_grant>();
  try {
    record->app = CopyString(grant.app);
    record->origin = CopyString(grant.origin);
    record->digest = CopyString(grant.digest);
  } catch (...) {
    FreeGrant(record);
    throw;
  }
  record->created_usec = grant.created_usec;
  return record;
}

void FreePrincipalUsage(costore_principal_usage* usage) {
  if (!usage) return;
  std::free(usage->app);
  std::free(usage->origin);
  std::free(usage);
}

costore_principal_usage* NewPrincipalUsage(const costore::client::PrincipalUsage& usage) {
  auto* record = AllocateRecord<costore_principal_usage>();
  try {
    record->app = CopyString(usage.app);
    record->origin = CopyString(usage.origin);
  } catch (...) {
    FreePrincipalUsage(record);
    throw;
  }
  record->stored = usage.stored;
  record->first_used_usec = usage.first_used_usec;
  record->last_used_usec = usage.last_used_usec;
  record->stores = usage.stores;
  record->reads = usage.reads;
  return record;
}

// A NULL-terminated array of records made by `make`, freed with `free_one`
// if anything fails half-way.
template <typename Record, typename Item, typename Make, typename FreeOne>
Record** NewArray(const std::vector<Item>& items, Make make, FreeOne free_one) {
  auto** array = static_cast<Record**>(std::calloc(items.size() + 1, sizeof(Record*)));
  if (!array) throw std::bad_alloc();
  try {
    for (size_t i = 0; i < items.size(); ++i) array[i] = make(items[i]);
  } catch (...) {
    for (Record** it = array; *it; ++it) free_one(*it);
    std::free(array);
    throw;
  }
  return array;
}

template <typename Record, typename FreeOne>
void FreeArray(Record** array, FreeOne free_one) {
  if (!array) return;
  for (Record** it = array; *it; ++it) free_one(*it);
  std::free(array);
}

void SetInfo(costore_file_info** out, const costore::client::FileInfo& info) {
  if (out) *out = NewFileInfo(info);
}

}  // namespace

extern "C" {

const char* costore_version(void) { return COSTORE_VERSION; }

const char* costore_error_name(costore_error code) {
  if (code == COSTORE_OK) return "OK";
  if (code < COSTORE_ERROR_NOT_FOUND || code > COSTORE_ERROR_FAILED) return "Failed";
  // The names are string literals: their data() is NUL-terminated.
  return costore::client::ErrorCodeName(static_cast<ErrorCode>(code)).data();
}

costore_error costore_digest_normalize(const char* text, char* out, size_t out_size, const char** reason) {
  try {
    if (reason) *reason = nullptr;
    if (!text || !out) {
      if (reason) *reason = "text and out must not be NULL";
      return COSTORE_ERROR_INVALID_ARGUMENT;
    }
    if (out_size < COSTORE_DIGEST_BUFFER_SIZE) {
      if (reason) *reason = "the output buffer is smaller than COSTORE_DIGEST_BUFFER_SIZE";
      return COSTORE_ERROR_INVALID_ARGUMENT;
    }
    std::string normalized;
    if (const char* why = costore::client::internal::NormalizeDigestTo(text, &normalized)) {
      if (reason) *reason = why;
      return COSTORE_ERROR_INVALID_ARGUMENT;
    }
    std::memcpy(out, normalized.c_str(), normalized.size() + 1);
    return COSTORE_OK;
  } catch (...) {
    if (reason) *reason = "out of memory";
    return COSTORE_ERROR_FAILED;
  }
}

costore_client* costore_client_new(void) { return new (std::nothrow) costore_client(); }

void costore_client_free(costore_client* client) { delete client; }

costore_error costore_client_connect(costore_client* client) {
  return Guard(client, [&] { Connected(client); });
}

costore_error costore_client_set_stall_timeout(costore_client* client, uint32_t milliseconds) {
  return Guard(client, [&] {
    client->stall_timeout = std::chrono::milliseconds(milliseconds);
    if (client->client) client->client->SetStallTimeout(*client->stall_timeout);
  });
}

costore_error costore_client_get_error_code(const costore_client* client) {
  return client ? client->last_code : COSTORE_ERROR_INVALID_ARGUMENT;
}

const char* costore_client_get_error_message(const costore_client* client) {
  return client ? client->last_message.c_str() : "client: must not be NULL";
}

costore_store_options* costore_store_options_new(void) { return new (std::nothrow) costore_store_options(); }

void costore_store_options_free(costore_store_options* options) { delete options; }

costore_error costore_store_options_set_origin(costore_store_options* options, const char* origin) {
  if (!options) return COSTORE_ERROR_INVALID_ARGUMENT;
  try {
    options->options.origin = OrEmpty(origin);
    return COSTORE_OK;
  } catch (...) {
    return COSTORE_ERROR_FAILED;
  }
}

costore_error costore_store_options_set_name(costore_store_options* options, const char* name) {
  if (!options) return COSTORE_ERROR_INVALID_ARGUMENT;
  try {
    options->options.name = OrEmpty(name);
    return COSTORE_OK;
  } catch (...) {
    return COSTORE_ERROR_FAILED;
  }
}

costore_error costore_store_options_set_size(costore_store_options* options, uint64_t size) {
  if (!options) return COSTORE_ERROR_INVALID_ARGUMENT;
  options->options.size = size;
  return COSTORE_OK;
}

costore_error costore_store_options_set_private(costore_store_options* options, bool is_private) {
  if (!options) return COSTORE_ERROR_INVALID_ARGUMENT;
  options->options.is_private = is_private;
  return COSTORE_OK;
}

costore_error costore_store_options_set_progress(costore_store_options* options, costore_progress_fn progress,
                                                 void* user_data) {
  if (!options) return COSTORE_ERROR_INVALID_ARGUMENT;
  options->progress = progress;
  options->progress_data = user_data;
  return COSTORE_OK;
}

costore_error costore_client_store_path(costore_client* client, const char* path, const char* digest,
                                        const costore_store_options* options, costore_file_info** info) {
  if (info) *info = nullptr;
  return Guard(client, [&] {
    Require(path, "path");
    Require(digest, "digest");
    SetInfo(info, Connected(client).StorePath(path, digest, ToStoreOptions(options)));
  });
}

costore_error costore_client_store_fd(costore_client* client, int fd, const char* digest,
                                      const costore_store_options* options, costore_file_info** info) {
  if (info) *info = nullptr;
  return Guard(client, [&] {
    Require(digest, "digest");
    SetInfo(info, Connected(client).StoreFd(fd, digest, ToStoreOptions(options)));
  });
}

costore_error costore_client_store_stream(costore_client* client, costore_read_fn read, void* read_data,
                                          const char* digest, const costore_store_options* options,
                                          costore_file_info** info) {
  if (info) *info = nullptr;
  return Guard(client, [&] {
    Require(reinterpret_cast<const void*>(read), "read");
    Require(digest, "digest");
    auto reader = [read, read_data](std::span<std::byte> buffer) -> size_t {
      ssize_t got = read(buffer.data(), buffer.size(), read_data);
      if (got < 0) throw StreamAbandoned{};
      return static_cast<size_t>(got);
    };
    SetInfo(info, Connected(client).StoreStream(reader, digest, ToStoreOptions(options)));
  });
}

costore_error costore_client_open(costore_client* client, const char* digest, const char* origin, int* fd,
                                  costore_file_info** info) {
  return costore_client_open_with_flags(client, digest, origin, 0, fd, info);
}

costore_error costore_client_open_with_flags(costore_client* client, const char* digest, const char* origin,
                                             unsigned int flags, int* fd, costore_file_info** info) {
  if (fd) *fd = -1;
  if (info) *info = nullptr;
  return Guard(client, [&] {
    Require(digest, "digest");
    Require(fd, "fd");
    if ((flags & ~COSTORE_OPEN_STREAM) != 0)
      throw Error(ErrorCode::kInvalidArgument, "flags: unknown bits " + std::to_string(flags & ~COSTORE_OPEN_STREAM));
    costore::client::OpenOptions options;
    options.stream = (flags & COSTORE_OPEN_STREAM) != 0;
    costore::client::OpenedFile opened = Connected(client).Open(digest, OrEmpty(origin), options);
    SetInfo(info, opened.info);
    *fd = opened.fd.release();
  });
}

bool costore_file_info_is_private(const costore_file_info* info) { return info && RecordOf(info)->is_private; }

const char* costore_file_info_get_cipher(const costore_file_info* info) {
  return info ? OrEmptyString(RecordOf(info)->cipher) : "";
}

const char* costore_file_entry_get_cipher(const costore_file_entry* entry) {
  return entry ? OrEmptyString(RecordOf(entry)->cipher) : "";
}

const char* costore_file_entry_get_owner_app(const costore_file_entry* entry) {
  return entry ? OrEmptyString(RecordOf(entry)->owner_app) : "";
}

const char* costore_file_entry_get_owner_origin(const costore_file_entry* entry) {
  return entry ? OrEmptyString(RecordOf(entry)->owner_origin) : "";
}

costore_error costore_client_list(costore_client* client, costore_file_entry*** entries, size_t* count) {
  if (entries) *entries = nullptr;
  if (count) *count = 0;
  return Guard(client, [&] {
    Require(entries, "entries");
    auto list = Connected(client).List();
    *entries = NewArray<costore_file_entry>(list, NewFileEntry, costore_file_entry_free);
    if (count) *count = list.size();
  });
}

costore_error costore_client_list_digest(costore_client* client, const char* digest, costore_file_entry*** entries,
                                         size_t* count) {
  if (entries) *entries = nullptr;
  if (count) *count = 0;
  return Guard(client, [&] {
    Require(digest, "digest");
    Require(entries, "entries");
    if (*digest == '\0') throw Error(ErrorCode::kInvalidArgument, "digest: must not be empty");
    auto list = Connected(client).List(digest);
    *entries = NewArray<costore_file_entry>(list, NewFileEntry, costore_file_entry_free);
    if (count) *count = list.size();
  });
}

costore_error costore_client_stat(costore_client* client, const char* digest, costore_file_entry** entry) {
  if (entry) *entry = nullptr;
  return Guard(client, [&] {
    Require(digest, "digest");
    Require(entry, "entry");
    *entry = NewFileEntry(Connected(client).Stat(digest));
  });
}

costore_error costore_client_delete(costore_client* client, const char* digest) {
  return Guard(client, [&] {
    Require(digest, "digest");
    Connected(client).Delete(digest);
  });
}

costore_error costore_client_grant(costore_client* client, const char* app, const char* origin, const char* digest) {
  return Guard(client, [&] {
    Require(app, "app");
    Require(digest, "digest");
    Connected(client).Grant(app, OrEmpty(origin), digest);
  });
}

costore_error costore_client_revoke(costore_client* client, const char* app, const char* origin,
                                    const char* digest) {
  return Guard(client, [&] {
    Require(app, "app");
    Require(digest, "digest");
    Connected(client).Revoke(app, OrEmpty(origin), digest);
  });
}

costore_error costore_client_list_grants(costore_client* client, const char* digest, costore_grant*** grants,
                                         size_t* count) {
  if (grants) *grants = nullptr;
  if (count) *count = 0;
  return Guard(client, [&] {
    Require(grants, "grants");
    auto list = Connected(client).ListGrants(OrEmpty(digest));
    *grants = NewArray<costore_grant>(list, NewGrant, FreeGrant);
    if (count) *count = list.size();
  });
}

costore_error costore_client_usage(costore_client* client, const char* digest, costore_principal_usage*** usage,
                                   size_t* count) {
  if (usage) *usage = nullptr;
  if (count) *count = 0;
  return Guard(client, [&] {
    Require(digest, "digest");
    Require(usage, "usage");
    auto list = Connected(client).Usage(digest);
    *usage = NewArray<costore_principal_usage>(list, NewPrincipalUsage, FreePrincipalUsage);
    if (count) *count = list.size();
  });
}

costore_error costore_client_forget_origin(costore_client* client, const char* origin,
                                          costore_forget_result** result) {
  if (result) *result = nullptr;
  return Guard(client, [&] {
    Require(origin, "origin");
    costore::client::ForgetResult counts = Connected(client).ForgetOrigin(origin);
    if (!result) return;
    auto* record = AllocateRecord<costore_forget_result>();
    record->grants_removed = counts.grants_removed;
    record->claims_removed = counts.claims_removed;
    record->files_deleted = counts.files_deleted;
    *result = record;
  });
}

costore_error costore_client_get_settings(costore_client* client, costore_settings** settings) {
  if (settings) *settings = nullptr;
  return Guard(client, [&] {
    Require(settings, "settings");
    costore::client::Settings got = Connected(client).GetSettings();
    auto* record = AllocateRecord<SettingsRecord>();
    try {
      record->pub.consent_policy = CopyString(got.consent_policy);
    } catch (...) {
      costore_settings_free(&record->pub);
      throw;
    }
    record->pub.consent_timeout_s = got.consent_timeout_s;
    record->pub.prompts_per_hour = got.prompts_per_hour;
    record->min_free_space = got.min_free_space;
    record->quota = got.quota;
    record->auto_collect = got.auto_collect;
    record->scrub_interval_days = got.scrub_interval_days;
    *settings = &record->pub;
  });
}

costore_error costore_client_set_setting_string(costore_client* client, const char* key, const char* value) {
  return Guard(client, [&] {
    Require(key, "key");
    Require(value, "value");
    Connected(client).SetSetting(key, std::string_view(value));
  });
}

costore_error costore_client_set_setting_uint32(costore_client* client, const char* key, uint32_t value) {
  return Guard(client, [&] {
    Require(key, "key");
    Connected(client).SetSetting(key, value);
  });
}

costore_error costore_client_set_setting_uint64(costore_client* client, const char* key, uint64_t value) {
  return Guard(client, [&] {
    Require(key, "key");
    Connected(client).SetSettingUint64(key, value);
  });
}

costore_error costore_client_set_setting_bool(costore_client* client, const char* key, bool value) {
  return Guard(client, [&] {
    Require(key, "key");
    Connected(client).SetSettingBool(key, value);
  });
}

uint64_t costore_settings_get_min_free_space(const costore_settings* settings) {
  return settings ? RecordOf(settings)->min_free_space : 0;
}

uint64_t costore_settings_get_quota(const costore_settings* settings) {
  return settings ? RecordOf(settings)->quota : 0;
}

bool costore_settings_get_auto_collect(const costore_settings* settings) {
  return settings && RecordOf(settings)->auto_collect;
}

uint32_t costore_settings_get_scrub_interval_days(const costore_settings* settings) {
  return settings ? RecordOf(settings)->scrub_interval_days : 0;
}

const char* costore_file_entry_get_state(const costore_file_entry* entry) {
  return entry ? OrEmptyString(RecordOf(entry)->state) : "";
}

const char* costore_file_entry_get_problem(const costore_file_entry* entry) {
  return entry ? OrEmptyString(RecordOf(entry)->problem) : "";
}

int64_t costore_file_entry_get_last_verified_usec(const costore_file_entry* entry) {
  return entry ? RecordOf(entry)->last_verified_usec : 0;
}

bool costore_file_entry_is_pinned(const costore_file_entry* entry) { return entry && RecordOf(entry)->pinned; }

costore_error costore_client_verify(costore_client* client, const char* const* digests, size_t n_digests,
                                    costore_verify_result*** results, size_t* count) {
  if (results) *results = nullptr;
  if (count) *count = 0;
  return Guard(client, [&] {
    Require(results, "results");
    if (n_digests > 0) Require(digests, "digests");
    std::vector<std::string> wanted;
    wanted.reserve(n_digests);
    for (size_t i = 0; i < n_digests; ++i) {
      if (!digests[i]) throw Error(ErrorCode::kInvalidArgument, "digests[" + std::to_string(i) + "]: must not be NULL");
      wanted.emplace_back(digests[i]);
    }
    auto list = Connected(client).Verify(wanted);
    *results = NewArray<costore_verify_result>(list, NewVerifyResult, FreeVerifyResult);
    if (count) *count = list.size();
  });
}

costore_error costore_client_set_pinned(costore_client* client, const char* digest, bool pinned) {
  return Guard(client, [&] {
    Require(digest, "digest");
    Connected(client).SetPinned(digest, pinned);
  });
}

costore_collect_options* costore_collect_options_new(void) { return new (std::nothrow) costore_collect_options(); }

void costore_collect_options_free(costore_collect_options* options) { delete options; }

costore_error costore_collect_options_set_target_size(costore_collect_options* options, uint64_t bytes) {
  if (!options) return COSTORE_ERROR_INVALID_ARGUMENT;
  options->options.target_size = bytes;
  return COSTORE_OK;
}

costore_error costore_collect_options_set_unused_for(costore_collect_options* options, uint64_t seconds) {
  if (!options) return COSTORE_ERROR_INVALID_ARGUMENT;
  options->options.unused_for_seconds = seconds;
  return COSTORE_OK;
}

costore_error costore_collect_options_set_dry_run(costore_collect_options* options, bool dry_run) {
  if (!options) return COSTORE_ERROR_INVALID_ARGUMENT;
  options->options.dry_run = dry_run;
  return COSTORE_OK;
}

costore_error costore_client_collect(costore_client* client, const costore_collect_options* options,
                                     costore_collect_result** result) {
  if (result) *result = nullptr;
  return Guard(client, [&] {
    Require(options, "options");
    costore::client::CollectResult done = Connected(client).Collect(options->options);
    if (!result) return;
    auto* record = AllocateRecord<costore_collect_result>();
    try {
      record->digests = NewArray<char>(done.digests, CopyString, FreeString);
    } catch (...) {
      costore_collect_result_free(record);
      throw;
    }
    record->files_deleted = done.files_deleted;
    record->bytes_freed = done.bytes_freed;
    record->store_bytes = done.store_bytes;
    *result = record;
  });
}

costore_error costore_client_space(costore_client* client, costore_space** space) {
  if (space) *space = nullptr;
  return Guard(client, [&] {
    Require(space, "space");
    costore::client::Space got = Connected(client).GetSpace();
    auto* record = AllocateRecord<costore_space>();
    record->store_bytes = got.store_bytes;
    record->files = got.files;
    record->damaged = got.damaged;
    record->pinned = got.pinned;
    record->free_bytes = got.free_bytes;
    record->floor_bytes = got.floor_bytes;
    record->quota_bytes = got.quota_bytes;
    record->last_scrub_usec = got.last_scrub_usec;
    *space = record;
  });
}

costore_error costore_client_rekey(costore_client* client, costore_rekey_result** result) {
  if (result) *result = nullptr;
  return Guard(client, [&] {
    costore::client::RekeyResult done = Connected(client).Rekey();
    if (!result) return;
    auto* record = AllocateRecord<costore_rekey_result>();
    record->files_rewrapped = done.files_rewrapped;
    record->key_version = done.key_version;
    record->resumed = done.resumed;
    record->old_keys_removed = done.old_keys_removed;
    *result = record;
  });
}

costore_error costore_client_keyring_status(costore_client* client, costore_keyring_status** status) {
  if (status) *status = nullptr;
  return Guard(client, [&] {
    Require(status, "status");
    costore::client::KeyringStatus got = Connected(client).GetKeyringStatus();
    auto* record = AllocateRecord<costore_keyring_status>();
    try {
      record->state = CopyString(got.state);
      record->message = CopyString(got.message);
      record->cipher = CopyString(got.cipher);
    } catch (...) {
      costore_keyring_status_free(record);
      throw;
    }
    record->private_files = got.private_files;
    record->key_version = got.key_version;
    record->rekey_pending = got.rekey_pending;
    record->chunk_size = got.chunk_size;
    *status = record;
  });
}

void costore_forget_result_free(costore_forget_result* result) { std::free(result); }

void costore_rekey_result_free(costore_rekey_result* result) { std::free(result); }

void costore_keyring_status_free(costore_keyring_status* status) {
  if (!status) return;
  std::free(status->state);
  std::free(status->message);
  std::free(status->cipher);
  std::free(status);
}

void costore_settings_free(costore_settings* settings) {
  if (!settings) return;
  auto* record = reinterpret_cast<SettingsRecord*>(settings);
  std::free(record->pub.consent_policy);
  std::free(record);
}

void costore_verify_result_array_free(costore_verify_result** results) { FreeArray(results, FreeVerifyResult); }

void costore_collect_result_free(costore_collect_result* result) {
  if (!result) return;
  FreeArray(result->digests, FreeString);
  std::free(result);
}

void costore_space_free(costore_space* space) { std::free(space); }

void costore_file_info_free(costore_file_info* info) {
  if (!info) return;
  auto* record = reinterpret_cast<FileInfoRecord*>(info);
  std::free(record->pub.digest);
  std::free(record->pub.name);
  std::free(record->cipher);
  std::free(record);
}

void costore_file_entry_free(costore_file_entry* entry) {
  if (!entry) return;
  auto* record = reinterpret_cast<FileEntryRecord*>(entry);
  std::free(record->pub.digest);
  std::free(record->pub.name);
  std::free(record->cipher);
  std::free(record->owner_app);
  std::free(record->owner_origin);
  std::free(record->state);
  std::free(record->problem);
  std::free(record);
}

void costore_file_entry_array_free(costore_file_entry** entries) { FreeArray(entries, costore_file_entry_free); }

void costore_grant_array_free(costore_grant** grants) { FreeArray(grants, FreeGrant); }

void costore_principal_usage_array_free(costore_principal_usage** usage) { FreeArray(usage, FreePrincipalUsage); }

}  // extern "C"
