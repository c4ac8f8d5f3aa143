/* Issuing X.509 v3 certificates: root CA, issuing CA, node and client profiles. */
#ifndef CORVID_CA_CERT_H
#define CORVID_CA_CERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "ca/key.h"
#include "common/env.h"
#include "common/err.h"

/* A list of certificates; the list owns one reference to each element. Zero-initialised is a
 * valid empty list. */
struct ca_cert_list {
    X509 **v;
    size_t n;
    size_t cap;
};

void ca_cert_list_init(struct ca_cert_list *l);
/* Releases every certificate; the list is empty and reusable afterwards. */
void ca_cert_list_fini(struct ca_cert_list *l);
/* Appends x and takes ownership of it, also on failure (x is then freed). */
int ca_cert_list_push(struct ca_cert_list *l, X509 *x) CMN_MUST_CHECK;
/* Appends a new reference to x (borrowed). */
int ca_cert_list_add(struct ca_cert_list *l, X509 *x) CMN_MUST_CHECK;

/* Who signs: a CA certificate and its private key, both borrowed. */
struct ca_signer {
    X509 *cert;
    EVP_PKEY *key;
};

enum ca_profile {
    CA_PROFILE_ROOT,    /* self-signed; CA:true (critical); keyCertSign, cRLSign */
    CA_PROFILE_ISSUING, /* CA:true, pathlen:0 (critical); keyCertSign, cRLSign, digitalSignature
                         * (so it may sign OCSP responses itself) */
    CA_PROFILE_NODE,   /* EKU serverAuth+clientAuth; SAN IP or DNS host + URI urn:corvid:node:TAG */
    CA_PROFILE_CLIENT, /* EKU clientAuth only (critical) */
};
/* Leaf key usage: digitalSignature, plus keyEncipherment for RSA keys (critical). */

/* What to certify. Strings and the key are borrowed. */
struct ca_cert_req {
    enum ca_profile profile;
    const char *cn;        /* subject CN: 1..64 bytes of UTF-8; for clients the Name */
    const char *host;      /* NODE: an IPv4/IPv6 literal (SAN IP) or a DNS name (SAN DNS) */
    const char *node_tag;  /* NODE: 1..4 upper-case letters (SAN URI urn:corvid:node:TAG) */
    int64_t not_before;    /* unix seconds */
    int64_t not_after;     /* unix seconds, > not_before */
    EVP_PKEY *subject_key; /* the key certified (only its public half is used); for ROOT also
                            * the signing key */
};

/* The SAN URI that names a node: urn:corvid:node:<TAG>. */
#define CA_NODE_URN_PREFIX "urn:corvid:node:"

/* Serial numbers are 128 random bits from rng with the top bit cleared (positive) and the next
 * bit set (always 16 bytes of DER, 32 hex digits). */
#define CA_SERIAL_BYTES 16

/* Issues one certificate signed with SHA-256, with SKI and AKI. signer is NULL for ROOT
 * (self-signed) and required otherwise; it must be a CA whose key matches its certificate and
 * whose validity covers [not_before, not_after]. On success *out is a new certificate owned by
 * the caller (X509_free).
 * Errors: CMN_EINVALID (bad name, host, tag, times, signer), CMN_EUNSUPPORTED (subject key too
 * weak or of an unknown kind), an rng error, CMN_ECRYPTO. */
int ca_cert_issue(const struct ca_cert_req *req, const struct ca_signer *signer,
                  const struct cmn_rng *rng, X509 **out, char *errmsg) CMN_MUST_CHECK;
/* A new key of type t and a client certificate for it (CN name, valid [not_before,
 * not_after]) signed by signer: what RavenDB's "generate client certificate" makes. *key and
 * *cert are the caller's; on failure both are NULL. */
int ca_client_issue(enum ca_key_type t, const char *name, int64_t not_before, int64_t not_after,
                    const struct ca_signer *signer, const struct cmn_rng *rng, EVP_PKEY **key,
                    X509 **cert, char *errmsg) CMN_MUST_CHECK;

/* Validity helpers (all unix seconds, UTC). */
#define CA_DAY_SECS 86400
/* RavenDB backdates NotBefore by 7 days to tolerate clock skew between machines. */
#define CA_CLOCK_SKEW_SECS      (7 * CA_DAY_SECS)
#define CA_CLIENT_DEFAULT_YEARS 5

/* Midnight UTC of the day containing t. */
int64_t ca_day_start(int64_t t);
/* t plus `years` calendar years (29 February becomes 28 February, as .NET's AddYears). */
int64_t ca_add_years(int64_t t, int years);
/* RavenDB's client-certificate window: not_before = today - 7 days, not_after = today + 5
 * years ("today" is midnight UTC of now). */
void ca_client_default_validity(int64_t now, int64_t *not_before, int64_t *not_after);
/* The same skewed start, ending `days` days after today: for node and CA certificates. */
void ca_validity_days(int64_t now, int64_t days, int64_t *not_before, int64_t *not_after);

/* True when s is a valid node tag: 1..4 upper-case ASCII letters. */
bool ca_node_tag_valid(const char *s);
/* True when s is an IPv4/IPv6 literal or a syntactically valid DNS host name. */
bool ca_host_valid(const char *s);

#endif
