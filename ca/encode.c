/* Base64, DER and PEM encodings, certificate loading from bytes, and shared OpenSSL helpers. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include "ca/encode.h"

#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "ca/internal.h"

/* ---- shared helpers (internal.h) ---- */

/* Whether OpenSSL's error queue holds an allocation failure (the queue is left as it is): at
 * its start, where the cause is, or its end, where the outermost report of it is. */
static bool queue_has_oom(void)
{
    unsigned long first = ERR_peek_error(), last = ERR_peek_last_error();
    return (first != 0 && ERR_GET_REASON(first) == ERR_R_MALLOC_FAILURE) ||
           (last != 0 && ERR_GET_REASON(last) == ERR_R_MALLOC_FAILURE);
}

int ca__ossl_fail(char *errmsg, int code, const char *fmt, ...)
{
    unsigned long e = ERR_peek_last_error();
    if (queue_has_oom())
        code = CMN_ENOMEM; /* not the input's fault, whatever failed with it */
    if (errmsg != NULL) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(errmsg, CMN_ERRMSG_SIZE, fmt, ap);
        va_end(ap);
        const char *reason = e ? ERR_reason_error_string(e) : NULL;
        size_t len = strlen(errmsg);
        if (reason != NULL && len + 4 < CMN_ERRMSG_SIZE)
            snprintf(errmsg + len, CMN_ERRMSG_SIZE - len, " (%s)", reason);
    }
    ERR_clear_error();
    return code;
}

int ca__ossl_oom(char *errmsg, const char *what)
{
    if (!queue_has_oom())
        return 0;
    ERR_clear_error();
    return cmn_fail(errmsg, CMN_ENOMEM, "%s: out of memory", what);
}

int ca__bio_to_buf(BIO *bio, struct cmn_buf *out)
{
    char *p = NULL;
    long n = BIO_get_mem_data(bio, &p);
    if (n < 0)
        return CMN_ECRYPTO;
    return cmn_buf_append(out, p, (size_t)n);
}

BIO *ca__bio_ro(const void *data, size_t len)
{
    if (len > INT_MAX)
        return NULL;
    return BIO_new_mem_buf(data, (int)len);
}

STACK_OF(X509) * ca__list_to_stack(const struct ca_cert_list *l)
{
    STACK_OF(X509) *sk = sk_X509_new_null();
    if (sk == NULL)
        return NULL;
    for (size_t i = 0; l != NULL && i < l->n; i++) {
        if (!X509_add_cert(sk, l->v[i], X509_ADD_FLAG_UP_REF)) {
            sk_X509_pop_free(sk, X509_free);
            return NULL;
        }
    }
    return sk;
}

int ca__looks_pem(const void *p, size_t n)
{
    return memmem(p, n, "-----BEGIN ", 11) != NULL;
}

/* A PEM password callback that never prompts: it hands over u (a C string) or fails. */
static int pass_cb(char *buf, int size, int rwflag, void *u)
{
    (void)rwflag;
    if (u == NULL)
        return -1;
    size_t len = strlen(u);
    if (len > (size_t)size)
        return -1;
    memcpy(buf, u, len);
    return (int)len;
}

/* ---- base64 ---- */

int ca_b64_encode(const void *p, size_t n, struct cmn_buf *out)
{
    if (n > (size_t)INT_MAX / 4 * 3 - 3)
        return CMN_ETOOBIG;
    size_t need = 4 * ((n + 2) / 3) + 1;
    int rv = cmn_buf_reserve(out, need);
    if (rv != 0)
        return rv;
    int len = EVP_EncodeBlock(out->data + out->len, p, (int)n);
    out->len += (size_t)len;
    out->data[out->len] = 0;
    return 0;
}

static bool b64_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

int ca_b64_decode(const char *s, size_t n, struct cmn_buf *out, char *errmsg)
{
    if (n > (size_t)INT_MAX)
        return cmn_fail(errmsg, CMN_ETOOBIG, "base64 input too large");
    unsigned char *clean = malloc(n + 1);
    if (clean == NULL)
        return cmn_fail(errmsg, CMN_ENOMEM, "out of memory");
    size_t len = 0, pad = 0;
    int rv = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
            continue;
        if (c == '=') {
            pad++;
        } else if (!b64_char(c)) {
            rv = cmn_fail(errmsg, CMN_EMALFORMED,
                          "invalid base64: unexpected character at offset %zu", i);
            goto out;
        } else if (pad > 0) {
            rv = cmn_fail(errmsg, CMN_EMALFORMED, "invalid base64: data after '=' padding");
            goto out;
        }
        clean[len++] = c;
    }
    if (len % 4 != 0 || pad > 2) {
        rv = cmn_fail(errmsg, CMN_EMALFORMED,
                      "invalid base64: length is not a multiple of 4 or too much padding");
        goto out;
    }
    if (len == 0)
        goto out;
    if ((rv = cmn_buf_reserve(out, len / 4 * 3 + 1)) != 0) {
        rv = cmn_fail(errmsg, rv, "out of memory");
        goto out;
    }
    int got = EVP_DecodeBlock(out->data + out->len, clean, (int)len);
    if (got < 0 || (size_t)got < pad) {
        rv = ca__ossl_fail(errmsg, CMN_EMALFORMED, "invalid base64");
        goto out;
    }
    out->len += (size_t)got - pad;
    out->data[out->len] = 0;
out:
    free(clean);
    return rv;
}

/* ---- certificates ---- */

int ca_cert_to_der(const X509 *x, struct cmn_buf *out)
{
    unsigned char *der = NULL;
    int len = i2d_X509(x, &der);
    if (len <= 0) {
        ERR_clear_error();
        return CMN_ECRYPTO;
    }
    int rv = cmn_buf_append(out, der, (size_t)len);
    OPENSSL_free(der);
    return rv;
}

int ca_cert_to_pem(const X509 *x, struct cmn_buf *out)
{
    BIO *bio = BIO_new(BIO_s_mem());
    if (bio == NULL)
        return CMN_ENOMEM;
    int rv = PEM_write_bio_X509(bio, x) ? ca__bio_to_buf(bio, out) : CMN_ECRYPTO;
    BIO_free(bio);
    ERR_clear_error();
    return rv;
}

int ca_certs_to_pem(const struct ca_cert_list *l, struct cmn_buf *out)
{
    for (size_t i = 0; i < l->n; i++) {
        int rv = ca_cert_to_pem(l->v[i], out);
        if (rv != 0)
            return rv;
    }
    return 0;
}

int ca_cert_from_der(const void *p, size_t n, X509 **out, char *errmsg)
{
    *out = NULL;
    if (n > CA_INPUT_MAX)
        return cmn_fail(errmsg, CMN_ETOOBIG, "certificate larger than %u bytes", CA_INPUT_MAX);
    const unsigned char *q = p;
    X509 *x = d2i_X509(NULL, &q, (long)n);
    if (x == NULL)
        return ca__ossl_fail(errmsg, CMN_EMALFORMED, "certificate DER does not decode");
    if ((size_t)(q - (const unsigned char *)p) != n) {
        X509_free(x);
        return cmn_fail(errmsg, CMN_EMALFORMED, "trailing bytes after the certificate DER");
    }
    *out = x;
    return 0;
}

static int certs_from_pem(const void *p, size_t n, struct ca_cert_list *out, char *errmsg)
{
    BIO *bio = ca__bio_ro(p, n);
    if (bio == NULL)
        return cmn_fail(errmsg, CMN_ENOMEM, "out of memory");
    size_t found = 0;
    int rv = 0;
    for (;;) {
        X509 *x = PEM_read_bio_X509(bio, NULL, pass_cb, NULL);
        if (x == NULL) {
            unsigned long e = ERR_peek_last_error();
            if (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
                ERR_clear_error();
                if (found == 0)
                    rv = cmn_fail(errmsg, CMN_ENOTFOUND, "no CERTIFICATE block in PEM text");
            } else {
                rv = ca__ossl_fail(errmsg, CMN_EMALFORMED, "PEM certificate #%zu is corrupt",
                                   found + 1);
            }
            break;
        }
        if ((rv = ca_cert_list_push(out, x)) != 0) {
            rv = cmn_fail(errmsg, rv, "out of memory");
            break;
        }
        found++;
    }
    BIO_free(bio);
    return rv;
}

int ca_certs_from_bytes(const void *p, size_t n, struct ca_cert_list *out, char *errmsg)
{
    if (n > CA_INPUT_MAX)
        return cmn_fail(errmsg, CMN_ETOOBIG, "certificate input larger than %u bytes",
                        CA_INPUT_MAX);
    if (n == 0)
        return cmn_fail(errmsg, CMN_EMALFORMED, "empty certificate input");
    const unsigned char *b = p;
    X509 *x = NULL;
    if (b[0] == 0x30 && ca_cert_from_der(p, n, &x, NULL) == 0) /* a DER SEQUENCE */
        return ca_cert_list_push(out, x) ? cmn_fail(errmsg, CMN_ENOMEM, "out of memory") : 0;
    if (ca__looks_pem(p, n))
        return certs_from_pem(p, n, out, errmsg);
    struct cmn_buf der;
    cmn_buf_init(&der, false);
    int rv = ca_b64_decode(p, n, &der, NULL);
    if (rv == 0 && der.len > 0)
        rv = ca_cert_from_der(der.data, der.len, &x, NULL);
    else if (rv == 0)
        rv = CMN_EMALFORMED;
    cmn_buf_fini(&der);
    if (rv != 0)
        return cmn_fail(errmsg, CMN_EMALFORMED,
                        "not a certificate in DER, PEM or base64-of-DER form");
    return ca_cert_list_push(out, x) ? cmn_fail(errmsg, CMN_ENOMEM, "out of memory") : 0;
}

int ca_cert_from_bytes(const void *p, size_t n, X509 **out, char *errmsg)
{
    *out = NULL;
    struct ca_cert_list l;
    ca_cert_list_init(&l);
    int rv = ca_certs_from_bytes(p, n, &l, errmsg);
    if (rv == 0 && l.n != 1)
        rv = cmn_fail(errmsg, CMN_EINVALID, "expected one certificate, found %zu", l.n);
    if (rv == 0) {
        *out = l.v[0];
        l.n = 0;
    }
    ca_cert_list_fini(&l);
    return rv;
}

/* ---- private keys ---- */

int ca_key_to_pem(EVP_PKEY *key, const char *password, struct cmn_buf *out, char *errmsg)
{
    out->secret = true;
    BIO *bio = BIO_new(BIO_s_secmem()); /* wiped when freed */
    if (bio == NULL)
        return cmn_fail(errmsg, CMN_ENOMEM, "out of memory");
    int ok;
    if (password != NULL && password[0] != '\0') {
        size_t len = strlen(password);
        if (len > INT_MAX) {
            BIO_free(bio);
            return cmn_fail(errmsg, CMN_EINVALID, "password too long");
        }
        ok = PEM_write_bio_PKCS8PrivateKey(bio, key, EVP_aes_256_cbc(), password, (int)len, NULL,
                                           NULL);
    } else {
        ok = PEM_write_bio_PKCS8PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL);
    }
    int rv = ok ? ca__bio_to_buf(bio, out)
                : ca__ossl_fail(errmsg, CMN_ECRYPTO, "encoding the private key failed");
    BIO_free(bio);
    return rv;
}

int ca_key_from_pem(const void *p, size_t n, const char *password, EVP_PKEY **out, char *errmsg)
{
    *out = NULL;
    if (n > CA_INPUT_MAX)
        return cmn_fail(errmsg, CMN_ETOOBIG, "key input larger than %u bytes", CA_INPUT_MAX);
    if (memmem(p, n, "PRIVATE KEY-----", 16) == NULL)
        return cmn_fail(errmsg, CMN_ENOTFOUND, "no private key in PEM text");
    /* The PKCS#8 marker is matched without its dashes: no key-shaped text in the sources. */
    bool encrypted = memmem(p, n, "BEGIN ENCRYPTED PRIVATE KEY", 27) != NULL ||
                     memmem(p, n, "Proc-Type: 4,ENCRYPTED", 22) != NULL;
    if (encrypted && (password == NULL || password[0] == '\0'))
        return cmn_fail(errmsg, CMN_EBADPASSWORD,
                        "the private key is encrypted and no password was given");
    BIO *bio = ca__bio_ro(p, n);
    if (bio == NULL)
        return cmn_fail(errmsg, CMN_ENOMEM, "out of memory");
    EVP_PKEY *k = PEM_read_bio_PrivateKey_ex(bio, NULL, pass_cb, (void *)password, NULL, NULL);
    BIO_free(bio);
    if (k != NULL) {
        ERR_clear_error();
        *out = k;
        return 0;
    }
    unsigned long e = ERR_peek_last_error();
    if (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE)
        return ca__ossl_fail(errmsg, CMN_ENOTFOUND, "no private key in PEM text");
    if (encrypted)
        return ca__ossl_fail(errmsg, CMN_EBADPASSWORD,
                             "wrong password for the encrypted private key (or it is corrupt)");
    return ca__ossl_fail(errmsg, CMN_EMALFORMED, "the private key does not decode");
}
