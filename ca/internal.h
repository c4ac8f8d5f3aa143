/* Helpers shared by the ca/ source files only (not part of the public API). */
#ifndef CORVID_CA_INTERNAL_H
#define CORVID_CA_INTERNAL_H

#include <openssl/x509.h>

#include "ca/cert.h"
#include "common/buf.h"
#include "common/err.h"

/* Like cmn_fail, but appends the most recent OpenSSL reason (if any) and clears OpenSSL's
 * per-thread error queue so that no stale error leaks into the caller's next operation. */
int ca__ossl_fail(char *errmsg, int code, const char *fmt, ...) CMN_PRINTF(3, 4);
/* Where OpenSSL failing on hostile input reads as "malformed": CMN_ENOMEM with "what: out of
 * memory" (the queue cleared) when the failure was an allocation, 0 otherwise (the queue kept).
 * ca__ossl_fail makes the same distinction itself. */
int ca__ossl_oom(char *errmsg, const char *what) CMN_MUST_CHECK;

/* Copies the contents of a memory BIO to the end of out. */
int ca__bio_to_buf(BIO *bio, struct cmn_buf *out) CMN_MUST_CHECK;

/* A read-only memory BIO over borrowed bytes (len must fit in int). */
BIO *ca__bio_ro(const void *data, size_t len);

/* New stack holding a reference to every certificate of l (NULL l gives an empty stack). */
STACK_OF(X509) * ca__list_to_stack(const struct ca_cert_list *l);

/* True when p[0..n) begins, after optional whitespace, with a PEM armour line. */
int ca__looks_pem(const void *p, size_t n);

/* Unix seconds of a UTC civil date and time (proleptic Gregorian). */
int64_t ca__unix_from_civil(int64_t year, unsigned mon, unsigned day, unsigned h, unsigned mi,
                            unsigned s);

#endif
