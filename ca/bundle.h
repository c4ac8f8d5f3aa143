/* The zip of a generated client certificate: <Name>.pfx, <Name>.crt, <Name>.key, in memory. */
#ifndef CORVID_CA_BUNDLE_H
#define CORVID_CA_BUNDLE_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "ca/cert.h"
#include "ca/pfx.h"
#include "common/buf.h"
#include "common/err.h"

#define CA_BUNDLE_NAME_MAX 100 /* bytes of a sanitized file-name stem */

/* Turns a certificate Name into a safe file-name stem: '/', '\\', control characters, ':' and
 * the other characters Windows forbids become '_', leading dots and spaces are dropped, the
 * result is cut to CA_BUNDLE_NAME_MAX bytes (never inside a UTF-8 sequence) and is never empty,
 * "." or ".." ("certificate" then). out must hold CA_BUNDLE_NAME_MAX + 1 bytes. */
void ca_bundle_safe_name(const char *name, char *out);

struct ca_bundle_in {
    const char *name;                 /* certificate Name; sanitized for the entry names */
    X509 *cert;                       /* borrowed */
    EVP_PKEY *key;                    /* borrowed */
    const struct ca_cert_list *chain; /* added to the .pfx after cert; may be NULL */
    const char *password;             /* NULL or "": no password (plain .key) */
    const struct ca_pfx_opts *pfx;    /* may be NULL: MODERN, friendly name = name */
    int64_t mtime;                    /* entry modification time, unix seconds */
};

/* Builds the zip in memory: <Name>.pfx (key, cert, chain; with password if given), <Name>.crt
 * (PEM certificate), <Name>.key (PEM PKCS#8, AES-256-CBC encrypted when a password is given),
 * each with Unix mode 0600 in its external attributes. Appends to out and sets out->secret.
 * Note: libzip's own working buffers are freed without being wiped. */
int ca_bundle_zip(const struct ca_bundle_in *in, struct cmn_buf *out, char *errmsg) CMN_MUST_CHECK;

#endif
