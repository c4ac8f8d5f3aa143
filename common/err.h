/* Error codes shared by every module: 0 is success, each failure a negative CMN_E* value. */
#ifndef CORVID_COMMON_ERR_H
#define CORVID_COMMON_ERR_H

#include <stddef.h>

#define CMN_ERRMSG_SIZE 256

#define CMN_MUST_CHECK   __attribute__((warn_unused_result))
#define CMN_PRINTF(f, a) __attribute__((format(printf, f, a)))

/* For best-effort paths (building a message): the result is deliberately not checked. */
#define CMN_IGNORE(expr)                                                                           \
    do {                                                                                           \
        if (expr) {                                                                                \
        }                                                                                          \
    } while (0)

/* X(name, text): the one table of error codes. */
#define CMN_ERRORS(X)                                                                              \
    X(NOMEM, "out of memory")                                                                      \
    X(INVALID, "invalid argument")                                                                 \
    X(MALFORMED, "malformed input")                                                                \
    X(TRUNCATED, "truncated input")                                                                \
    X(TOOBIG, "input too large")                                                                   \
    X(UNSUPPORTED, "unsupported format or version")                                                \
    X(BADPASSWORD, "wrong password")                                                               \
    X(BADSIG, "bad signature")                                                                     \
    X(NOTFOUND, "not found")                                                                       \
    X(EXISTS, "already exists")                                                                    \
    X(IO, "I/O error")                                                                             \
    X(CRYPTO, "crypto library error")                                                              \
    X(STALE, "local state is ahead")                                                               \
    X(DENIED, "permission denied")                                                                 \
    X(BUSY, "busy")                                                                                \
    X(TIMEDOUT, "timed out")                                                                       \
    X(NOSPACE, "no space left on the disk")

enum cmn_err {
    CMN_OK = 0,
#define CMN__ENUM(name, text) CMN_E##name,
    CMN__FIRST = -100,
    CMN_ERRORS(CMN__ENUM) CMN__LAST
#undef CMN__ENUM
};

/* Static text for a code; never NULL. */
const char *cmn_strerror(int code);

/* Formats into errmsg (CMN_ERRMSG_SIZE bytes, may be NULL) and returns code, so that
 * `return cmn_fail(errmsg, CMN_EINVALID, "bad %s", x);` reads as one step. */
int cmn_fail(char *errmsg, int code, const char *fmt, ...) CMN_PRINTF(3, 4);

/* Prepends "prefix: " to an existing message (each layer adds context on the way up). */
void cmn_errctx(char *errmsg, const char *fmt, ...) CMN_PRINTF(2, 3);

#endif
