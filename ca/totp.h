/* Time-based one-time passwords (RFC 6238) on liboath, as RavenDB's two-factor authentication
 * uses them: HMAC-SHA1, 30-second steps, 6 digits, accepted within 2 steps either side; the
 * shared secret is base32 (RFC 4648: A-Z and 2-7, '=' padding optional). Sans I/O: the clock
 * and the randomness are passed in. */
#ifndef CORVID_CA_TOTP_H
#define CORVID_CA_TOTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/env.h"
#include "common/err.h"

#define CA_TOTP_SECRET_BYTES 20 /* a new secret: 160 bits, RFC 4226's recommendation */
#define CA_TOTP_SECRET_B32   32 /* its base32 length (20 bytes need no padding) */
#define CA_TOTP_MIN_BYTES    10 /* the shortest secret accepted (RFC 4226's minimum, 80 bits) */
#define CA_TOTP_MAX_B32      128
#define CA_TOTP_STEP_SECS    30
#define CA_TOTP_DIGITS       6
#define CA_TOTP_WINDOW       2

/* A new secret from rng, base32, NUL-terminated (secret: wipe it after use). */
int ca_totp_secret_new(const struct cmn_rng *rng, char out[CA_TOTP_SECRET_B32 + 1],
                       char *errmsg) CMN_MUST_CHECK;
/* Whether s is a secret: base32 of CA_TOTP_MIN_BYTES or more, at most CA_TOTP_MAX_B32
 * characters. CMN_EINVALID with the reason (never the secret). */
int ca_totp_secret_check(const char *s, char *errmsg) CMN_MUST_CHECK;
/* Whether code has the form of a code: exactly CA_TOTP_DIGITS ASCII digits. */
bool ca_totp_code_form(const char *code);
/* Checks code (CA_TOTP_DIGITS digits) against secret at time now (seconds): 0 and *step, the
 * time step (now / 30, shifted by at most CA_TOTP_WINDOW) whose code it is; CMN_EDENIED for a
 * wrong code, CMN_EINVALID for a code that is not 6 digits or a secret that is not base32. */
int ca_totp_verify(const char *secret, int64_t now, const char *code, uint64_t *step,
                   char *errmsg) CMN_MUST_CHECK;
/* The code of secret at time now, NUL-terminated (for tests and tools). */
int ca_totp_code(const char *secret, int64_t now, char out[CA_TOTP_DIGITS + 1],
                 char *errmsg) CMN_MUST_CHECK;

#endif
