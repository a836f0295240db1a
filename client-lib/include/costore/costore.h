/*
 * libcostore: the C interface to costored, the per-user store of AI model
 * files named by their SHA-256.
 *
 * Bytes never travel in D-Bus messages: a store hands the daemon a file
 * descriptor to read from, and an open hands the caller a read-only file
 * descriptor (mmap-able) on the stored bytes.
 *
 * Conventions
 *   - Every function that can fail returns a costore_error; COSTORE_OK (0)
 *     is success. On failure the handle keeps the error's code and message
 *     (costore_client_get_error_code / _get_error_message) until the next
 *     call on that handle. Messages from the daemon are kept word for word.
 *   - No C++ exception ever crosses this interface.
 *   - Strings and records returned through out-parameters are allocated by
 *     the library and released with the matching *_free function; the
 *     caller never frees them with free(3) directly.
 *   - Digests are written "sha256:<64 lowercase hex>". Every function taking
 *     a digest also accepts what costore_digest_normalize() accepts (bare
 *     hex, any case).
 *   - Times are microseconds since the Unix epoch.
 *   - A costore_client is not meant for concurrent use: use one handle per
 *     thread (the last-error message belongs to the handle). Callbacks run
 *     on the thread that made the call.
 *
 * Usable from C11 and C++.
 */
#ifndef COSTORE_COSTORE_H
#define COSTORE_COSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifndef COSTORE_EXPORT
#if defined(__GNUC__)
#define COSTORE_EXPORT __attribute__((visibility("default")))
#else
#define COSTORE_EXPORT
#endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* The size of a buffer that holds a normalized digest and its NUL:
 * "sha256:" + 64 hex digits + NUL. */
#define COSTORE_DIGEST_BUFFER_SIZE 72

/* A total size that is not known (progress callbacks). */
#define COSTORE_SIZE_UNKNOWN UINT64_MAX

/*
 * costore_error: the outcome of a call. Codes 1-10 are the daemon's errors
 * (io.github.costore.Error.<Name>); the last two are the library's own.
 * The numbers are part of the ABI and never change.
 */
typedef enum costore_error {
  COSTORE_OK = 0,
  COSTORE_ERROR_NOT_FOUND = 1,           /* no such file, or not readable by this principal */
  COSTORE_ERROR_PERMISSION_DENIED = 2,   /* the caller may not use this interface */
  COSTORE_ERROR_DIGEST_MISMATCH = 3,     /* the bytes did not match the digest or size */
  COSTORE_ERROR_INVALID_ARGUMENT = 4,    /* a malformed digest, origin, option or descriptor */
  COSTORE_ERROR_KEYRING_UNAVAILABLE = 5, /* private files need the (unlocked) keyring */
  COSTORE_ERROR_NO_SPACE = 6,            /* the disk holding the store is full */
  COSTORE_ERROR_QUOTA_EXCEEDED = 7,      /* a configured limit would be exceeded */
  COSTORE_ERROR_CANCELLED = 8,           /* the transfer was abandoned */
  COSTORE_ERROR_BUSY = 9,                /* too many transfers in flight (store, open: after retries) */
  COSTORE_ERROR_IO = 10,                 /* the daemon (or this library) could not read or write */
  COSTORE_ERROR_UNREACHABLE = 11,        /* no session bus, no costored on it, or it stopped answering */
  COSTORE_ERROR_FAILED = 12              /* anything else; the message says what */
} costore_error;

/*
 * The records below are always allocated by the library and handed out by
 * pointer: later versions may append fields, so never allocate, embed or
 * copy them by value.
 */

/* A stored file, as Store and Open describe it. */
typedef struct costore_file_info {
  char *digest;               /* "sha256:<hex>" */
  uint64_t size;              /* bytes */
  char *name;                 /* human-readable hint, may be "" */
  int64_t first_stored_usec;
} costore_file_info;

/* One file of the store, as the manager sees it (List, Stat). */
typedef struct costore_file_entry {
  char *digest;
  uint64_t size;
  char *name;
  bool is_private;            /* encrypted at rest */
  int64_t first_stored_usec;
  int64_t last_used_usec;     /* the last store or read */
  uint32_t stored_by;         /* how many principals stored it */
  uint32_t used_by;           /* how many principals stored or read it */
} costore_file_entry;

/* A standing permission for the principal (app, origin) to open a file. */
typedef struct costore_grant {
  char *app;                  /* "/usr/bin/foo", "flatpak:<id>" or "snap:<name>" */
  char *origin;               /* "" for the app itself, or a web origin */
  char *digest;               /* a digest, or "*" for every file */
  int64_t created_usec;
} costore_grant;

/* How one principal (app, origin) used one file. */
typedef struct costore_principal_usage {
  char *app;
  char *origin;
  bool stored;                /* this principal stored the file */
  int64_t first_used_usec;
  int64_t last_used_usec;
  uint32_t stores;            /* how many times it stored the file */
  uint32_t reads;             /* how many times it opened the file */
} costore_principal_usage;

/* What costore_client_forget_origin removed. */
typedef struct costore_forget_result {
  uint32_t grants_removed;    /* grants to the origin, for any app */
  uint32_t claims_removed;    /* its storing and reading records */
  uint32_t files_deleted;     /* files that nobody else had stored */
} costore_forget_result;

/* The user's consent settings (costore_client_get_settings). */
typedef struct costore_settings {
  char *consent_policy;       /* "ask" or "deny"; treat other values as "not ask" */
  uint32_t consent_timeout_s; /* an unanswered prompt is refused after this */
  uint32_t prompts_per_hour;  /* per principal; past it, refused unasked */
} costore_settings;

/* What costore_client_rekey did. */
typedef struct costore_rekey_result {
  uint32_t files_rewrapped;   /* data keys re-wrapped by this call */
  uint32_t key_version;       /* the master key version now in use (0: none yet, nothing to do) */
  bool resumed;               /* it finished a rekey that had been interrupted */
  uint32_t old_keys_removed;  /* old master key versions removed from the keyring */
} costore_rekey_result;

/* The keyring as the daemon sees it (costore_client_keyring_status). */
typedef struct costore_keyring_status {
  char *state;                /* "ready", "no-key", "no-service", "locked", "no-default-collection",
                                 "key-missing" or "error"; treat unknown states as not ready */
  char *message;              /* the state in plain words, with what to do */
  uint32_t private_files;     /* private entries in the store */
  uint32_t key_version;       /* the current master key version (0: none yet) */
  bool rekey_pending;         /* a rekey was interrupted: costore_client_rekey finishes it */
  char *cipher;               /* the AEAD new private files get here */
  uint32_t chunk_size;        /* plaintext bytes per sealed chunk of new files */
} costore_keyring_status;

/* One entry checked by costore_client_verify. */
typedef struct costore_verify_result {
  char *digest;
  bool is_private;            /* a private entry */
  char *owner_app;            /* private entries: the principal that stored it ("" for public ones) */
  char *owner_origin;
  char *state;                /* COSTORE_STATE_OK, _DAMAGED or _ABSENT (the digest is not stored) */
  char *problem;              /* what was wrong, in plain words; "" when ok */
  uint64_t size;              /* the entry's size in bytes */
} costore_verify_result;

/* What costore_client_collect deleted (or, dry run, would delete). */
typedef struct costore_collect_result {
  uint32_t files_deleted;
  uint64_t bytes_freed;
  char **digests;             /* the files deleted: a NULL-terminated array */
  uint64_t store_bytes;       /* what the store holds afterwards */
} costore_collect_result;

/* The store's size and room (costore_client_space). */
typedef struct costore_space {
  uint64_t store_bytes;       /* its files as stored (sealed private files at their sealed size) */
  uint32_t files;             /* entries, public and private */
  uint32_t damaged;           /* entries found damaged */
  uint32_t pinned;            /* pinned entries */
  uint64_t free_bytes;        /* free for this user on the store's file system */
  uint64_t floor_bytes;       /* the free space the store always leaves (COSTORE_SETTING_MIN_FREE_SPACE, resolved) */
  uint64_t quota_bytes;       /* COSTORE_SETTING_QUOTA (0: none) */
  int64_t last_scrub_usec;    /* when the background scrub last finished (0: never) */
} costore_space;

/* The states of an entry (costore_file_entry_get_state,
 * costore_verify_result.state). A damaged entry's bytes on disk are not
 * the stored bytes: it is never served (an open fails with
 * COSTORE_ERROR_NOT_FOUND) until the right bytes are stored again. The
 * library reports any state it does not know as COSTORE_STATE_DAMAGED. */
#define COSTORE_STATE_OK "ok"
#define COSTORE_STATE_DAMAGED "damaged"
#define COSTORE_STATE_ABSENT "absent" /* costore_client_verify only */
#define COSTORE_STATE_UNREADABLE "unreadable" /* costore_client_verify only: a read failed this time */

/* The keys of costore_client_set_setting_string / _uint32 / _uint64 / _bool. */
#define COSTORE_SETTING_CONSENT_POLICY "consent-policy"     /* string: "ask" or "deny" */
#define COSTORE_SETTING_CONSENT_TIMEOUT "consent-timeout"   /* uint32: seconds, 1-3600 */
#define COSTORE_SETTING_PROMPTS_PER_HOUR "prompts-per-hour" /* uint32: 0-3600 */
#define COSTORE_SETTING_MIN_FREE_SPACE "min-free-space"     /* uint64: bytes, 0 = automatic */
#define COSTORE_SETTING_QUOTA "quota"                       /* uint64: bytes, 0 = none */
#define COSTORE_SETTING_AUTO_COLLECT "auto-collect"         /* bool */
#define COSTORE_SETTING_SCRUB_INTERVAL "scrub-interval"     /* uint32: days, 0 = off */

/* The handle on the daemon. */
typedef struct costore_client costore_client;

/* Options of a store (origin, name, expected size, progress). */
typedef struct costore_store_options costore_store_options;

/* Options of costore_client_collect (target size, unused for, dry run). */
typedef struct costore_collect_options costore_collect_options;

/*
 * costore_progress_fn: called during a store, about ten times a second and
 * once at the end with done == total. @total is COSTORE_SIZE_UNKNOWN when
 * the size is not known in advance.
 */
typedef void (*costore_progress_fn)(uint64_t done, uint64_t total, void *user_data);

/*
 * costore_read_fn: feeds a streamed store. Copy up to @size bytes into
 * @buffer and return how many; return 0 at the end of the stream, or a
 * negative number to abandon the store (it then fails with
 * COSTORE_ERROR_CANCELLED and nothing is stored).
 */
typedef ssize_t (*costore_read_fn)(void *buffer, size_t size, void *user_data);

/* ---- library ---------------------------------------------------------- */

/* The library's version, "MAJOR.MINOR.PATCH". Static; do not free. */
COSTORE_EXPORT const char *costore_version(void);

/* The name of @code: "OK", "NotFound", ..., "IOError", "Unreachable",
 * "Failed" (the D-Bus error names without their prefix). Static. */
COSTORE_EXPORT const char *costore_error_name(costore_error code);

/*
 * costore_digest_normalize: turns a user-typed digest into the one form the
 * daemon accepts. Accepts "sha256:<hex>", "sha256-<hex>" (Ollama) or bare
 * <hex>, 64 hex digits in any case, surrounded by optional whitespace.
 * Writes "sha256:<64 lowercase hex>" and a NUL to @out (at least
 * COSTORE_DIGEST_BUFFER_SIZE bytes) and returns COSTORE_OK; otherwise
 * returns COSTORE_ERROR_INVALID_ARGUMENT and, if @reason is not NULL, points
 * it at a static English sentence saying what is wrong.
 */
COSTORE_EXPORT costore_error costore_digest_normalize(const char *text, char *out, size_t out_size,
                                                      const char **reason);

/* ---- the handle ------------------------------------------------------- */

/* A new, unconnected handle; NULL only when out of memory. */
COSTORE_EXPORT costore_client *costore_client_new(void);

/* Frees @client (NULL is allowed). File descriptors it returned stay open. */
COSTORE_EXPORT void costore_client_free(costore_client *client);

/*
 * costore_client_connect: connects to the session bus
 * (DBUS_SESSION_BUS_ADDRESS). Optional: every call connects on first use,
 * but calling it first reports COSTORE_ERROR_UNREACHABLE early. Does not
 * start or look for the daemon itself.
 */
COSTORE_EXPORT costore_error costore_client_connect(costore_client *client);

/*
 * costore_client_set_stall_timeout: how long a call in progress waits for
 * any sign of life from the daemon (it is pinged while the call runs; a
 * store's file offset moving counts too) before failing with
 * COSTORE_ERROR_UNREACHABLE, "costored (pid N) stopped answering: no reply
 * to a ping for 30 s". Default 30000 ms; 0 turns the check off, leaving
 * each call's own D-Bus timeout (25 s for the manager calls, 10 min for
 * an open, none for a store). Store and open calls answered
 * COSTORE_ERROR_BUSY are tried again first, as costore.hpp describes (at
 * most 5 calls and 60 s of waiting). The pings come from one thread per
 * process, as costore.hpp describes.
 */
COSTORE_EXPORT costore_error costore_client_set_stall_timeout(costore_client *client, uint32_t milliseconds);

/* The code of the last failed call on @client (COSTORE_OK if none). */
COSTORE_EXPORT costore_error costore_client_get_error_code(const costore_client *client);

/* The message of the last failed call on @client, "" if none. Owned by the
 * handle, valid until the next call on it. */
COSTORE_EXPORT const char *costore_client_get_error_message(const costore_client *client);

/* ---- store options ---------------------------------------------------- */

/* New options: origin "", no name, size unknown, no progress. NULL only
 * when out of memory. */
COSTORE_EXPORT costore_store_options *costore_store_options_new(void);

/* Frees @options (NULL is allowed). */
COSTORE_EXPORT void costore_store_options_free(costore_store_options *options);

/* The web origin the caller acts for ("https://example.org"), or "" (the
 * default) for the calling app itself. Copied. */
COSTORE_EXPORT costore_error costore_store_options_set_origin(costore_store_options *options,
                                                              const char *origin);

/* A human-readable name shown to the user, e.g.
 * "Xenova/whisper-tiny.en/onnx/decoder_model_merged.onnx". Copied. */
COSTORE_EXPORT costore_error costore_store_options_set_name(costore_store_options *options,
                                                            const char *name);

/* The expected size in bytes; the store fails with
 * COSTORE_ERROR_DIGEST_MISMATCH if another amount arrives. Stores from a
 * path fill it in from the file when it is not set. */
COSTORE_EXPORT costore_error costore_store_options_set_size(costore_store_options *options,
                                                            uint64_t size);

/* A progress callback (NULL to remove) and its user data. */
COSTORE_EXPORT costore_error costore_store_options_set_progress(costore_store_options *options,
                                                                costore_progress_fn progress,
                                                                void *user_data);

/* Stores privately (default false): encrypted at rest, an entry of the
 * storing principal's own that others open only with a grant of that very
 * digest. Needs the keyring: the store fails with
 * COSTORE_ERROR_KEYRING_UNAVAILABLE (before any byte is read) when it is
 * out of reach, and may wait for the user to unlock it. */
COSTORE_EXPORT costore_error costore_store_options_set_private(costore_store_options *options,
                                                               bool is_private);

/* ---- Store1: storing and opening ------------------------------------- */

/*
 * costore_client_store_path: stores the file at @path under @digest. The
 * daemon reads it and verifies every byte; on a mismatch nothing is stored
 * and COSTORE_ERROR_DIGEST_MISMATCH's message names the digest and size
 * that arrived. @options may be NULL. On success, if @info is not NULL, it
 * receives the stored file's description (free it with
 * costore_file_info_free). Stores take as long as the bytes take: there is
 * no timeout.
 */
COSTORE_EXPORT costore_error costore_client_store_path(costore_client *client, const char *path,
                                                       const char *digest,
                                                       const costore_store_options *options,
                                                       costore_file_info **info);

/*
 * costore_client_store_fd: as store_path, reading @fd (a regular file, pipe
 * or socket) from its current position to its end. @fd stays the caller's:
 * it is not closed. For a regular file, progress follows the file offset.
 */
COSTORE_EXPORT costore_error costore_client_store_fd(costore_client *client, int fd,
                                                     const char *digest,
                                                     const costore_store_options *options,
                                                     costore_file_info **info);

/*
 * costore_client_store_stream: as store_path, with the bytes produced by
 * @read (see costore_read_fn), which is called on the calling thread while
 * the daemon reads them from a pipe. Progress counts the bytes produced.
 */
COSTORE_EXPORT costore_error costore_client_store_stream(costore_client *client,
                                                         costore_read_fn read, void *read_data,
                                                         const char *digest,
                                                         const costore_store_options *options,
                                                         costore_file_info **info);

/*
 * costore_client_open: opens a stored file on behalf of (this app,
 * @origin); @origin NULL or "" means the app itself. On success *@fd is a
 * new read-only descriptor (close-on-exec) at the start of the bytes; it is
 * the caller's to close. @info may be NULL. A file this principal may not
 * read fails exactly like a missing one: COSTORE_ERROR_NOT_FOUND.
 */
COSTORE_EXPORT costore_error costore_client_open(costore_client *client, const char *digest,
                                                 const char *origin, int *fd,
                                                 costore_file_info **info);

/* Flags of costore_client_open_with_flags. */
/* For a private file, a pipe filled as the caller reads instead of a memfd
 * holding the whole file; it ends early if a chunk fails authentication, so
 * read until the info's size arrived. No effect on public files. */
#define COSTORE_OPEN_STREAM 0x1u

/*
 * costore_client_open_with_flags: costore_client_open with @flags (0 or
 * COSTORE_OPEN_STREAM; unknown bits are COSTORE_ERROR_INVALID_ARGUMENT).
 * A private file may wait for the keyring to be unlocked; without
 * COSTORE_OPEN_STREAM it comes as a sealed memfd holding the plaintext.
 */
COSTORE_EXPORT costore_error costore_client_open_with_flags(costore_client *client, const char *digest,
                                                            const char *origin, unsigned int flags,
                                                            int *fd, costore_file_info **info);

/* Private files: whether @info describes a private entry, and its cipher:
 * "none" for a public file, else "aes-256-gcm" or "xchacha20-poly1305".
 * The string belongs to @info. @info NULL: false, "". */
COSTORE_EXPORT bool costore_file_info_is_private(const costore_file_info *info);
COSTORE_EXPORT const char *costore_file_info_get_cipher(const costore_file_info *info);

/* ---- Manager1: the user's view --------------------------------------- */

/* Every stored file, ordered by digest: a NULL-terminated array in
 * *@entries, freed with costore_file_entry_array_free. If @count is not
 * NULL it receives the number of entries. */
COSTORE_EXPORT costore_error costore_client_list(costore_client *client,
                                                 costore_file_entry ***entries, size_t *count);

/* As costore_client_list, only the entries of @digest: its public entry
 * first, then its private ones (none if it is not stored). */
COSTORE_EXPORT costore_error costore_client_list_digest(costore_client *client, const char *digest,
                                                        costore_file_entry ***entries, size_t *count);

/* An entry's cipher (as costore_file_info_get_cipher) and, for a private
 * entry, the principal that stored it ("" for public ones). The strings
 * belong to @entry. @entry NULL: "". */
COSTORE_EXPORT const char *costore_file_entry_get_cipher(const costore_file_entry *entry);
COSTORE_EXPORT const char *costore_file_entry_get_owner_app(const costore_file_entry *entry);
COSTORE_EXPORT const char *costore_file_entry_get_owner_origin(const costore_file_entry *entry);

/* One stored file (its public entry if there is one, else its first
 * private one); free *@entry with costore_file_entry_free. */
COSTORE_EXPORT costore_error costore_client_stat(costore_client *client, const char *digest,
                                                 costore_file_entry **entry);

/* Deletes a file: its bytes, record, attribution and grants. Descriptors
 * already handed out stay readable until closed. */
COSTORE_EXPORT costore_error costore_client_delete(costore_client *client, const char *digest);

/* Lets the principal (@app, @origin) open @digest, or every file when
 * @digest is "*". @app is written as the daemon identifies apps: an
 * absolute executable path, "flatpak:<id>" or "snap:<name>". @origin NULL or
 * "" means the app itself. Granting twice is not an error. */
COSTORE_EXPORT costore_error costore_client_grant(costore_client *client, const char *app,
                                                  const char *origin, const char *digest);

/* Removes a grant made by costore_client_grant (same arguments);
 * COSTORE_ERROR_NOT_FOUND if there is no such grant. */
COSTORE_EXPORT costore_error costore_client_revoke(costore_client *client, const char *app,
                                                   const char *origin, const char *digest);

/* The grants, all of them when @digest is NULL or "", otherwise those
 * naming @digest (including grants for "*"). NULL-terminated array in
 * *@grants, freed with costore_grant_array_free; @count may be NULL. */
COSTORE_EXPORT costore_error costore_client_list_grants(costore_client *client, const char *digest,
                                                        costore_grant ***grants, size_t *count);

/* The principals that stored or read @digest, first stored first.
 * NULL-terminated array in *@usage, freed with
 * costore_principal_usage_array_free; @count may be NULL. */
COSTORE_EXPORT costore_error costore_client_usage(costore_client *client, const char *digest,
                                                  costore_principal_usage ***usage,
                                                  size_t *count);

/*
 * costore_client_forget_origin: forgets a site. @origin is a web origin
 * ("https://example.org"; not "" or NULL). Removes every grant to it (for
 * any app), its storing and reading records, and deletes the files that
 * nobody else stored. An origin the store does not know is not an error
 * (every count is 0). If @result is not NULL it receives the counts; free
 * them with costore_forget_result_free.
 */
COSTORE_EXPORT costore_error costore_client_forget_origin(costore_client *client, const char *origin,
                                                          costore_forget_result **result);

/* The consent settings; free *@settings with costore_settings_free. */
COSTORE_EXPORT costore_error costore_client_get_settings(costore_client *client,
                                                         costore_settings **settings);

/*
 * costore_client_set_setting_string / _uint32: change one setting, kept
 * across daemon restarts. @key is one of the COSTORE_SETTING_* keys;
 * COSTORE_SETTING_CONSENT_POLICY takes a string, the others a number. The
 * daemon checks key, type and range: COSTORE_ERROR_INVALID_ARGUMENT's
 * message names what is wrong.
 */
COSTORE_EXPORT costore_error costore_client_set_setting_string(costore_client *client, const char *key,
                                                               const char *value);
COSTORE_EXPORT costore_error costore_client_set_setting_uint32(costore_client *client, const char *key,
                                                               uint32_t value);

/*
 * costore_client_rekey: re-wraps every private file's data key under a new
 * master key in the keyring. Crash-safe: after an interruption, calling it
 * again finishes it. May wait for the user to unlock the keyring (several
 * minutes at most). COSTORE_ERROR_KEYRING_UNAVAILABLE when the keyring is
 * out of reach or a key is missing; COSTORE_ERROR_BUSY while another rekey
 * runs. If @result is not NULL it receives what was done; free it with
 * costore_rekey_result_free.
 */
COSTORE_EXPORT costore_error costore_client_rekey(costore_client *client, costore_rekey_result **result);

/* The keyring's state (looks, never prompts); free *@status with
 * costore_keyring_status_free. */
COSTORE_EXPORT costore_error costore_client_keyring_status(costore_client *client,
                                                           costore_keyring_status **status);

/* ---- Manager1: verifying, pinning, collecting, space ---------------- */

/* An entry's state: COSTORE_STATE_OK or COSTORE_STATE_DAMAGED (treat
 * anything but "ok" as damaged); for a damaged one, what was found, in plain
 * words ("" when ok). The strings belong to @entry. @entry NULL: "". */
COSTORE_EXPORT const char *costore_file_entry_get_state(const costore_file_entry *entry);
COSTORE_EXPORT const char *costore_file_entry_get_problem(const costore_file_entry *entry);
/* When its bytes were last hashed and found right (0: never, or @entry NULL). */
COSTORE_EXPORT int64_t costore_file_entry_get_last_verified_usec(const costore_file_entry *entry);
/* Whether it is pinned: collecting never deletes it. @entry NULL: false. */
COSTORE_EXPORT bool costore_file_entry_is_pinned(const costore_file_entry *entry);

/* The settings of the store's room, beside the consent settings of
 * @settings (see costore_settings_get_* and COSTORE_SETTING_*): the free
 * space it always leaves (0: automatic, 5% of the file system or 2 GiB,
 * whichever is smaller), its quota (0: none), whether it evicts unpinned
 * public files to make room, and the days between background scrubs (0:
 * off). @settings NULL: 0, false. */
COSTORE_EXPORT uint64_t costore_settings_get_min_free_space(const costore_settings *settings);
COSTORE_EXPORT uint64_t costore_settings_get_quota(const costore_settings *settings);
COSTORE_EXPORT bool costore_settings_get_auto_collect(const costore_settings *settings);
COSTORE_EXPORT uint32_t costore_settings_get_scrub_interval_days(const costore_settings *settings);

/* Change a setting that takes a uint64 (COSTORE_SETTING_MIN_FREE_SPACE,
 * COSTORE_SETTING_QUOTA) or a bool (COSTORE_SETTING_AUTO_COLLECT); as
 * costore_client_set_setting_uint32 otherwise. */
COSTORE_EXPORT costore_error costore_client_set_setting_uint64(costore_client *client, const char *key,
                                                               uint64_t value);
COSTORE_EXPORT costore_error costore_client_set_setting_bool(costore_client *client, const char *key,
                                                             bool value);

/*
 * costore_client_verify: reads and hashes every byte of every entry, or
 * (@n_digests > 0) of the entries of the @n_digests digests at @digests,
 * ordered as costore_client_list orders them; a digest that is not stored
 * is reported with state COSTORE_STATE_ABSENT. Entries whose bytes do not
 * match are quarantined and marked damaged; storing the right bytes again
 * repairs them. Takes as long as reading the files takes (the daemon reads
 * at idle I/O priority); COSTORE_ERROR_BUSY while another verify runs.
 * NULL-terminated array in *@results, freed with
 * costore_verify_result_array_free; @count may be NULL.
 */
COSTORE_EXPORT costore_error costore_client_verify(costore_client *client, const char *const *digests,
                                                   size_t n_digests, costore_verify_result ***results,
                                                   size_t *count);

/* Pins (@pinned true) or unpins every entry of @digest: collecting and
 * automatic eviction never delete a pinned file (costore_client_delete and
 * costore_client_forget_origin still do). COSTORE_ERROR_NOT_FOUND if it is
 * not stored. */
COSTORE_EXPORT costore_error costore_client_set_pinned(costore_client *client, const char *digest,
                                                       bool pinned);

/* New collect options, with neither limit set and no dry run. NULL only
 * when out of memory. */
COSTORE_EXPORT costore_collect_options *costore_collect_options_new(void);

/* Frees @options (NULL is allowed). */
COSTORE_EXPORT void costore_collect_options_free(costore_collect_options *options);

/* Delete until the store holds at most @bytes. */
COSTORE_EXPORT costore_error costore_collect_options_set_target_size(costore_collect_options *options,
                                                                     uint64_t bytes);

/* Delete files nobody stored or read for at least @seconds. */
COSTORE_EXPORT costore_error costore_collect_options_set_unused_for(costore_collect_options *options,
                                                                    uint64_t seconds);

/* Report what would be deleted, delete nothing (default false). */
COSTORE_EXPORT costore_error costore_collect_options_set_dry_run(costore_collect_options *options,
                                                                 bool dry_run);

/*
 * costore_client_collect: deletes public files, least recently used
 * (stored or read) first, while either limit of @options says so; pinned
 * files and private entries are never collected. At least one limit must
 * be set (COSTORE_ERROR_INVALID_ARGUMENT otherwise). If @result is not NULL
 * it receives what was deleted; free it with costore_collect_result_free.
 */
COSTORE_EXPORT costore_error costore_client_collect(costore_client *client,
                                                    const costore_collect_options *options,
                                                    costore_collect_result **result);

/* The store's size and room; free *@space with costore_space_free. */
COSTORE_EXPORT costore_error costore_client_space(costore_client *client, costore_space **space);

/* ---- freeing results (NULL is allowed everywhere) -------------------- */

COSTORE_EXPORT void costore_file_info_free(costore_file_info *info);
COSTORE_EXPORT void costore_file_entry_free(costore_file_entry *entry);
COSTORE_EXPORT void costore_file_entry_array_free(costore_file_entry **entries);
COSTORE_EXPORT void costore_grant_array_free(costore_grant **grants);
COSTORE_EXPORT void costore_principal_usage_array_free(costore_principal_usage **usage);
COSTORE_EXPORT void costore_forget_result_free(costore_forget_result *result);
COSTORE_EXPORT void costore_settings_free(costore_settings *settings);
COSTORE_EXPORT void costore_rekey_result_free(costore_rekey_result *result);
COSTORE_EXPORT void costore_keyring_status_free(costore_keyring_status *status);
COSTORE_EXPORT void costore_verify_result_array_free(costore_verify_result **results);
COSTORE_EXPORT void costore_collect_result_free(costore_collect_result *result);
COSTORE_EXPORT void costore_space_free(costore_space *space);

#ifdef __cplusplus
}
#endif

#endif /* COSTORE_COSTORE_H */
