/* Reading whole small files: those that hold secrets (the master key) checked to be private to
 * this user, and the others. */
#ifndef CORVID_COMMON_FILE_H
#define CORVID_COMMON_FILE_H

#include <stddef.h>

#include "common/buf.h"
#include "common/err.h"

/* Reads the whole of path into out (give a secret buffer) after checking, on the open file,
 * that it is a regular file owned by this process's effective user with no permission for
 * group or others (0600 or 0400): a key that others can read is refused, not used. At most
 * max bytes. Fails with CMN_ENOTFOUND (missing), CMN_EDENIED (mode or owner), CMN_EINVALID
 * (not a regular file), CMN_ETOOBIG, CMN_EIO; messages name the path and what is wrong, never
 * the contents. On failure out is left as it was. */
int cmn_read_private_file(const char *path, size_t max, struct cmn_buf *out,
                          char *errmsg) CMN_MUST_CHECK;

/* Reads the whole of path (any file, no checks on its owner or mode) and appends it to out: at
 * most max bytes in all (CMN_ETOOBIG "PATH is larger than MAX bytes"), CMN_EIO "cannot read
 * PATH: reason". Bytes already appended stay in out on failure (the caller frees it, wiped if
 * secret). Nothing of the contents reaches a message. */
int cmn_read_file(const char *path, size_t max, struct cmn_buf *out, char *errmsg) CMN_MUST_CHECK;

#endif
