/* Compiles <costore/costore.h> alone as strict C11, without any feature
 * macro: the header must be self-contained and portable C. */
#include <costore/costore.h>

/* Not called: the point is that the types and prototypes compile. */
int costore_header_c11_check(void);
int costore_header_c11_check(void) {
  costore_read_fn read = 0;
  costore_progress_fn progress = 0;
  costore_error code = COSTORE_OK;
  costore_verify_result *verified = 0;
  costore_collect_options *collect = 0;
  costore_collect_result *collected = 0;
  costore_space *space = 0;
  const char *states[] = {COSTORE_STATE_OK, COSTORE_STATE_DAMAGED, COSTORE_STATE_ABSENT};
  const char *keys[] = {COSTORE_SETTING_MIN_FREE_SPACE, COSTORE_SETTING_QUOTA, COSTORE_SETTING_AUTO_COLLECT,
                        COSTORE_SETTING_SCRUB_INTERVAL};
  if (verified || collect || collected || space || !states[2] || !keys[3]) return 0;
  return (read == 0 && progress == 0 && code == COSTORE_OK) ? COSTORE_DIGEST_BUFFER_SIZE : 0;
}
