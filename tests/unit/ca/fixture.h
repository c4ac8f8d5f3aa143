/* Shared helpers of the ca/ unit tests: a deterministic rng, a CA chain, chain verification. */
#ifndef CORVID_TESTS_UNIT_CA_FIXTURE_H
#define CORVID_TESTS_UNIT_CA_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "ca/ca.h"
#include "common/env.h"

/* 2024-03-01T00:00:00Z: a fixed "now" for every test. */
#define T_NOW  1709251200LL
#define T_YEAR (365LL * CA_DAY_SECS)

static uint64_t t_rng_state = 42;
static const struct cmn_rng t_rng = {cmn_rng_counter_fill, &t_rng_state};

/* A root CA, an issuing CA under it, both EC P-256, valid T_NOW - 1 day .. + 10/9 years. */
struct t_pki {
    EVP_PKEY *root_key, *iss_key;
    X509 *root, *iss;
    struct ca_signer root_signer, iss_signer;
    struct ca_cert_list chain; /* issuing, root */
};

static inline EVP_PKEY *t_key(enum ca_key_type kt)
{
    EVP_PKEY *k = NULL;
    char errmsg[CMN_ERRMSG_SIZE];
    assert_int_equal(ca_key_generate(kt, &k, errmsg), 0);
    assert_non_null(k);
    return k;
}

static inline X509 *t_issue(enum ca_profile profile, const char *cn, EVP_PKEY *key,
                            const struct ca_signer *signer)
{
    struct ca_cert_req req = {.profile = profile,
                              .cn = cn,
                              .host = "127.0.0.1",
                              .node_tag = "A",
                              .not_before = T_NOW - CA_DAY_SECS,
                              .not_after = T_NOW + T_YEAR,
                              .subject_key = key};
    X509 *x = NULL;
    char errmsg[CMN_ERRMSG_SIZE] = "";
    int rv = ca_cert_issue(&req, signer, &t_rng, &x, errmsg);
    if (rv != 0)
        fail_msg("ca_cert_issue: %d %s", rv, errmsg);
    return x;
}

static inline void t_pki_init(struct t_pki *p)
{
    memset(p, 0, sizeof *p);
    p->root_key = t_key(CA_KEY_EC_P256);
    p->iss_key = t_key(CA_KEY_EC_P256);
    char errmsg[CMN_ERRMSG_SIZE] = "";
    struct ca_cert_req rr = {.profile = CA_PROFILE_ROOT,
                             .cn = "Test Root CA",
                             .not_before = T_NOW - CA_DAY_SECS,
                             .not_after = T_NOW + 10 * T_YEAR,
                             .subject_key = p->root_key};
    assert_int_equal(ca_cert_issue(&rr, NULL, &t_rng, &p->root, errmsg), 0);
    p->root_signer = (struct ca_signer){p->root, p->root_key};
    struct ca_cert_req ir = {.profile = CA_PROFILE_ISSUING,
                             .cn = "Test Issuing CA",
                             .not_before = T_NOW - CA_DAY_SECS,
                             .not_after = T_NOW + 9 * T_YEAR,
                             .subject_key = p->iss_key};
    assert_int_equal(ca_cert_issue(&ir, &p->root_signer, &t_rng, &p->iss, errmsg), 0);
    p->iss_signer = (struct ca_signer){p->iss, p->iss_key};
    ca_cert_list_init(&p->chain);
    assert_int_equal(ca_cert_list_add(&p->chain, p->iss), 0);
    assert_int_equal(ca_cert_list_add(&p->chain, p->root), 0);
}

static inline void t_pki_fini(struct t_pki *p)
{
    ca_cert_list_fini(&p->chain);
    X509_free(p->root);
    X509_free(p->iss);
    EVP_PKEY_free(p->root_key);
    EVP_PKEY_free(p->iss_key);
}

/* X509_verify_cert of leaf against root (trusted) with untrusted intermediates, at T_NOW, for
 * purpose (X509_PURPOSE_SSL_SERVER/CLIENT, or 0 for none). Returns the X509_V_* result. An
 * optional CRL turns on CRL checking for the leaf. */
static inline int t_verify(X509 *leaf, X509 *root, const struct ca_cert_list *untrusted,
                           int purpose, X509_CRL *crl)
{
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    STACK_OF(X509) *sk = sk_X509_new_null();
    assert_non_null(store);
    assert_non_null(ctx);
    assert_non_null(sk);
    assert_int_equal(X509_STORE_add_cert(store, root), 1);
    for (size_t i = 0; untrusted && i < untrusted->n; i++)
        assert_int_equal(X509_add_cert(sk, untrusted->v[i], X509_ADD_FLAG_UP_REF), 1);
    if (crl != NULL) {
        assert_int_equal(X509_STORE_add_crl(store, crl), 1);
        X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
    }
    assert_int_equal(X509_STORE_CTX_init(ctx, store, leaf, sk), 1);
    X509_STORE_CTX_set_time(ctx, 0, (time_t)T_NOW);
    if (purpose)
        assert_int_equal(X509_STORE_CTX_set_purpose(ctx, purpose), 1);
    int ok = X509_verify_cert(ctx);
    int err = X509_STORE_CTX_get_error(ctx);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    sk_X509_pop_free(sk, X509_free);
    ERR_clear_error();
    return ok == 1 ? X509_V_OK : (err == X509_V_OK ? -1 : err);
}

#endif
