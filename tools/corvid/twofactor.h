/* The corvid CLI's two-factor pieces that need no node: the code a person types for `corvid
 * login`, the check of the key a node answers for `--two-factor`, and how that key is shown. */
#ifndef CORVID_TOOLS_TWOFACTOR_H
#define CORVID_TOOLS_TWOFACTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

#include "common/err.h"

#define TF_CODE_DIGITS 6
#define TF_LINE_MAX    64 /* the longest line read for a code */
#define TF_SECRET_MIN  16 /* base32 characters of a key: 80 bits at least */
#define TF_SECRET_MAX  128
#define TF_URI_MAX     2048 /* fits a QR code at error correction M */

/* Takes a code from the line (len bytes, borrowed, need not be NUL-terminated): blanks around it
 * are dropped, and what is left must be exactly TF_CODE_DIGITS ASCII digits, copied to code with
 * a NUL. Otherwise CMN_EINVALID with the reason in errmsg, which never repeats the line (it may
 * be a key pasted by mistake). */
int tf_code_parse(const char *line, size_t len, char code[TF_CODE_DIGITS + 1],
                  char *errmsg) CMN_MUST_CHECK;

/* Reads one line from fd, a byte at a time so that nothing after its '\n' is taken (a script's
 * next input stays for it), and parses it with tf_code_parse. The end of the input ends the line
 * too. The bytes read are wiped before returning. Errors: those of tf_code_parse, CMN_ETOOBIG (no
 * '\n' within TF_LINE_MAX bytes), CMN_EIO (read failed). */
int tf_code_read(int fd, char code[TF_CODE_DIGITS + 1], char *errmsg) CMN_MUST_CHECK;

/* A --duration argument: a whole number of minutes from 1 to max (the cluster's
 * MaxTwoFactorSessionDurationInMin). CMN_EINVALID otherwise, with errmsg saying the range. */
int tf_duration_parse(const char *arg, long max, long *out, char *errmsg) CMN_MUST_CHECK;

/* Checks a node's answer to GET /admin/certificates/2fa/generate: "Secret" is base32 (A-Z, 2-7,
 * TF_SECRET_MIN to TF_SECRET_MAX characters, no padding) and "QrCodeUri" an otpauth://totp/ URI of
 * printable ASCII, at most TF_URI_MAX bytes, whose secret parameter is that key (what the QR code
 * holds is what is shown and sent). *secret and *uri are borrowed from answer. CMN_EMALFORMED
 * otherwise, with a reason that never shows the key. */
int tf_key_check(json_t *answer, const char **secret, const char **uri,
                 char *errmsg) CMN_MUST_CHECK;

/* Prints for people the key just set on a certificate: that it is shown this once and goes into
 * an authenticator app now, the key, the URI and, with qr, the URI's QR code in UTF-8 half blocks
 * (common/qr.h; for a terminal); then that the certificate now needs `corvid login`. The QR
 * code's text is wiped after use. Fails (CMN_ETOOBIG, CMN_ENOMEM) only when the QR code cannot be
 * made; the rest is printed then too. */
int tf_key_print(FILE *out, const char *secret, const char *uri, bool qr,
                 char *errmsg) CMN_MUST_CHECK;

#endif
