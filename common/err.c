/* Error code table and error-message helpers. */
#include "common/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *cmn_strerror(int code)
{
    switch (code) {
    case CMN_OK:
        return "ok";
#define CMN__CASE(name, text)                                                                      \
    case CMN_E##name:                                                                              \
        return text;
        CMN_ERRORS(CMN__CASE)
#undef CMN__CASE
    default:
        return "unknown error";
    }
}

int cmn_fail(char *errmsg, int code, const char *fmt, ...)
{
    if (errmsg != NULL) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(errmsg, CMN_ERRMSG_SIZE, fmt, ap);
        va_end(ap);
    }
    return code;
}

void cmn_errctx(char *errmsg, const char *fmt, ...)
{
    if (errmsg == NULL)
        return;
    char prefix[CMN_ERRMSG_SIZE], old[CMN_ERRMSG_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, errmsg, sizeof old);
    old[sizeof old - 1] = '\0';
    /* Truncation is fine: the message is for people, and its start says most. */
    size_t n = strlen(prefix);
    if (n > CMN_ERRMSG_SIZE - 3)
        n = CMN_ERRMSG_SIZE - 3;
    memcpy(errmsg, prefix, n);
    memcpy(errmsg + n, ": ", 2);
    size_t m = strlen(old);
    if (m > CMN_ERRMSG_SIZE - n - 3)
        m = CMN_ERRMSG_SIZE - n - 3;
    memcpy(errmsg + n + 2, old, m);
    errmsg[n + 2 + m] = '\0';
}
