/* PKCS#12 (.pfx) in and out: key + certificate + chain, and certificate-only collections. */
#ifndef CORVID_CA_PFX_H
#define CORVID_CA_PFX_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "ca/cert.h"
#include "common/buf.h"
#include "common/err.h"

enum ca_pfx_scheme {
    /* AES-256-CBC with PBKDF2-HMAC-SHA256 for key and certificates, HMAC-SHA256 MAC. */
    CA_PFX_MODERN = 0,
    /* pbeWithSHAAnd3-KeyTripleDES-CBC for key and certificates, HMAC-SHA1 MAC: for importers
     * that predate PBES2 (Windows Server 2016 and older, old Java and macOS). */
    CA_PFX_LEGACY,
};

#define CA_PFX_DEFAULT_ITER 2048 /* PKCS12_DEFAULT_ITER, as OpenSSL and .NET write */

struct ca_pfx_opts {
    enum ca_pfx_scheme scheme;
    const char *friendly_name; /* on the key and leaf bags; NULL for none (borrowed) */
    int iterations;            /* KDF and MAC iterations; 0 = CA_PFX_DEFAULT_ITER with a
                                * password, 1 without one (stretching the empty password protects
                                * nothing and would cost ~90% of the build time) */
};

/* Builds a PFX holding key, cert and then every certificate of chain (may be NULL), in order.
 * password NULL or "" means no password: the bags are then encrypted and MACed with the empty
 * password, which OpenSSL, .NET and Windows all open without one. opts may be NULL (MODERN,
 * default iterations). All inputs borrowed; appends the DER to out and sets out->secret.
 * Errors: CMN_EINVALID (key does not match cert), CMN_ECRYPTO. */
int ca_pfx_build(EVP_PKEY *key, X509 *cert, const struct ca_cert_list *chain, const char *password,
                 const struct ca_pfx_opts *opts, struct cmn_buf *out, char *errmsg) CMN_MUST_CHECK;

/* Builds a certificate-only collection (no key, no password: plain certificate bags and an
 * HMAC-SHA256 MAC with the empty password, 1 iteration), e.g. ServerCertificatesCollection.pfx.
 * certs must
 * not be empty. Appends to out. */
int ca_pfx_build_collection(const struct ca_cert_list *certs, struct cmn_buf *out,
                            char *errmsg) CMN_MUST_CHECK;

/* A parsed PFX. Owns everything it points to; release with ca_pfx_fini. */
struct ca_pfx {
    EVP_PKEY *key;             /* the first private key, NULL when the PFX holds none */
    struct ca_cert_list certs; /* every certificate, in file order */
    long leaf;                 /* index in certs of the certificate matching key, -1 if none */
    char *friendly_name;       /* of the leaf (or first certificate), NULL if none */
};

/* Parse flags. */
#define CA_PFX_NO_LEGACY 1u /* never use OpenSSL's legacy provider (RC2, RC4, DES...) */

/* Most KDF/MAC iterations one PFX may make us compute in total (as .NET's limit). */
#define CA_PFX_MAX_WORK 600000

/* Parses a PFX. password NULL or "" tries the NULL and the empty password, as .NET and OpenSSL
 * do. Algorithms of OpenSSL's legacy provider (RC2-40 as in old Windows exports) are used when
 * that provider is installed, unless CA_PFX_NO_LEGACY. out is filled only on success.
 * Errors: CMN_ETOOBIG (over CA_INPUT_MAX), CMN_EMALFORMED (corrupt or truncated),
 * CMN_EBADPASSWORD (MAC verification failed: wrong or missing password), CMN_EUNSUPPORTED (an
 * algorithm OpenSSL cannot use here, or more than CA_PFX_MAX_WORK iterations), CMN_EINVALID (no
 * certificate at all, or a key that matches none of the certificates). */
int ca_pfx_parse(const void *p, size_t n, const char *password, unsigned flags, struct ca_pfx *out,
                 char *errmsg) CMN_MUST_CHECK;
void ca_pfx_fini(struct ca_pfx *pfx);

/* The leaf certificate (borrowed from pfx): the one matching the key, else the first. NULL when
 * there is no certificate. */
X509 *ca_pfx_leaf(const struct ca_pfx *pfx);

/* True when p decodes as a PKCS#12 structure (without decrypting anything). */
bool ca_pfx_sniff(const void *p, size_t n);

#endif
