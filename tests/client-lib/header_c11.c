/* Compiles <costore/costore.h> alone as strict C11, without any feature
 * macro: the header must be self-contained and portable C. */
#include <costore/costore.h>

/* Not called: the point is that the types and prototypes compile. */
int costore_header_c11_check(void);
int costore_header_c11_check(void) {
  costore_read_fn read = 0;
  costore_progress_fn progress = 0;
  costore_error code = COSTORE_OK;
  return (read == 0 && progress == 0 && code == COSTORE_OK) ? COSTORE_DIGEST_BUFFER_SIZE : 0;
}
