/* Allocation-failure sweeps over ca/'s entry points: every run with its Nth allocation failing
 * (corvid's and OpenSSL's, tests/unit/support/failalloc.h) must either fail with CMN_ENOMEM or
 * CMN_ECRYPTO and a message, and hand out nothing, or succeed with a correct result. Leaks of
 * any run fail the test binary (LeakSanitizer at exit). */
#include "fixture.h"

#include <stdio.h>

#include <openssl/err.h>

#include "../support/failalloc.h"

#define SWEEP_MAX 20000

/* What every failed run must look like. */
static void check_error(const char *what, unsigned long n, int rv, const char *errmsg)
{
    if (rv != CMN_ENOMEM && rv != CMN_ECRYPTO)
        fail_msg("%s, allocation %lu failed: code %d (%s), message '%s'", what, n, rv,
                 cmn_strerror(rv), errmsg);
    if (errmsg[0] == '\0')
        fail_msg("%s, allocation %lu failed: code %d (%s) without a message", what, n, rv,
                 cmn_strerror(rv));
    ERR_clear_error();
}

/* ---- key generation ---- */

struct keygen {
    EVP_PKEY *key;
    char errmsg[CMN_ERRMSG_SIZE];
};

static int keygen_op(void *ctx)
{
    struct keygen *k = ctx;
    k->errmsg[0] = '\0';
    k->key = NULL;
    return ca_key_generate(CA_KEY_EC_P256, &k->key, k->errmsg);
}

static void keygen_check(void *ctx, unsigned long n, int rv, bool fired)
{
    struct keygen *k = ctx;
    if (rv != 0) {
        assert_true(fired);
        check_error("ca_key_generate", n, rv, k->errmsg);
        assert_null(k->key);
        return;
    }
    enum ca_key_type t;
    assert_non_null(k->key);
    assert_int_equal(ca_key_type_of(k->key, &t), 0);
    assert_int_equal(t, CA_KEY_EC_P256);
    EVP_PKEY_free(k->key);
}

static void sweep_key_generate(void **state)
{
    (void)state;
    struct keygen k;
    unsigned long n = fa_sweep(keygen_op, keygen_check, &k, SWEEP_MAX);
    assert_true(n > 1);
}

/* ---- certificate issue ---- */

struct issue {
    struct t_pki *pki;
    EVP_PKEY *subject;
    enum ca_profile profile;
    X509 *out;
    char errmsg[CMN_ERRMSG_SIZE];
};

static int issue_op(void *ctx)
{
    struct issue *s = ctx;
    struct ca_cert_req req = {.profile = s->profile,
                              .cn = "node one",
                              .host = "127.0.0.1",
                              .node_tag = "A",
                              .not_before = T_NOW - CA_DAY_SECS,
                              .not_after = T_NOW + T_YEAR,
                              .subject_key = s->subject};
    s->errmsg[0] = '\0';
    s->out = NULL;
    return ca_cert_issue(&req, &s->pki->iss_signer, &t_rng, &s->out, s->errmsg);
}

static void issue_check(void *ctx, unsigned long n, int rv, bool fired)
{
    struct issue *s = ctx;
    if (rv != 0) {
        assert_true(fired);
        check_error("ca_cert_issue", n, rv, s->errmsg);
        assert_null(s->out);
        return;
    }
    assert_non_null(s->out);
    int purpose = s->profile == CA_PROFILE_CLIENT ? X509_PURPOSE_SSL_CLIENT : 0;
    assert_int_equal(t_verify(s->out, s->pki->root, &s->pki->chain, purpose, NULL), X509_V_OK);
    X509_free(s->out);
}

static void sweep_cert_issue(void **state)
{
    (void)state;
    struct t_pki pki;
    t_pki_init(&pki);
    struct issue s = {.pki = &pki, .subject = t_key(CA_KEY_EC_P256)};
    s.profile = CA_PROFILE_NODE;
    assert_true(fa_sweep(issue_op, issue_check, &s, SWEEP_MAX) > 1);
    s.profile = CA_PROFILE_CLIENT;
    assert_true(fa_sweep(issue_op, issue_check, &s, SWEEP_MAX) > 1);
    EVP_PKEY_free(s.subject);
    t_pki_fini(&pki);
}

/* ---- PFX build and parse ---- */

struct pfx {
    struct t_pki *pki;
    EVP_PKEY *key;
    X509 *cert;
    const struct ca_cert_list *chain; /* NULL: the leaf alone */
    unsigned flags;                   /* of ca_pfx_parse */
    enum ca_pfx_scheme scheme;
    struct cmn_buf built;
    struct ca_pfx parsed;
    char errmsg[CMN_ERRMSG_SIZE];
};

static int pfx_build_op(void *ctx)
{
    struct pfx *s = ctx;
    struct ca_pfx_opts opts = {s->scheme, "leaf one", 1};
    s->errmsg[0] = '\0';
    cmn_buf_init(&s->built, true);
    return ca_pfx_build(s->key, s->cert, s->chain, "pw", &opts, &s->built, s->errmsg);
}

static void pfx_build_check(void *ctx, unsigned long n, int rv, bool fired)
{
    struct pfx *s = ctx;
    if (rv != 0) {
        assert_true(fired);
        check_error("ca_pfx_build", n, rv, s->errmsg);
        assert_int_equal(s->built.len, 0);
        cmn_buf_fini(&s->built);
        return;
    }
    struct ca_pfx p;
    char errmsg[CMN_ERRMSG_SIZE] = "";
    if (ca_pfx_parse(s->built.data, s->built.len, "pw", 0, &p, errmsg) != 0)
        fail_msg("a PFX built with allocation %lu failing does not parse: %s", n, errmsg);
    assert_int_equal(p.certs.n, s->chain ? 3 : 1);
    ca_pfx_fini(&p);
    cmn_buf_fini(&s->built);
}

static int pfx_parse_op(void *ctx)
{
    struct pfx *s = ctx;
    s->errmsg[0] = '\0';
    memset(&s->parsed, 0x5a, sizeof s->parsed); /* must be set on every path */
    return ca_pfx_parse(s->built.data, s->built.len, "pw", s->flags, &s->parsed, s->errmsg);
}

static void pfx_parse_check(void *ctx, unsigned long n, int rv, bool fired)
{
    struct pfx *s = ctx;
    if (rv != 0) {
        assert_true(fired);
        /* OpenSSL 3.0 leaves no trace of some allocation failures (OSSL_PARAM_get_octet_string
         * in the MAC's key derivation, X509_check_private_key): the parse then refuses the
         * file as corrupt, the password as wrong or the key as matching no certificate. A
         * refusal with a message, never a wrong result; where OpenSSL does report the
         * allocation failure, CMN_ENOMEM. */
        if ((rv == CMN_EMALFORMED || rv == CMN_EBADPASSWORD || rv == CMN_EINVALID) &&
            s->errmsg[0] != '\0')
            ERR_clear_error();
        else
            check_error("ca_pfx_parse", n, rv, s->errmsg);
        assert_null(s->parsed.key);
        assert_int_equal(s->parsed.certs.n, 0);
        return;
    }
    assert_non_null(s->parsed.key);
    assert_int_equal(s->parsed.certs.n, s->chain ? 3 : 1);
    assert_int_equal(X509_cmp(ca_pfx_leaf(&s->parsed), s->cert), 0);
    ca_pfx_fini(&s->parsed);
}

static void sweep_pfx(void **state)
{
    (void)state;
    struct t_pki pki;
    t_pki_init(&pki);
    struct pfx s = {.pki = &pki, .key = t_key(CA_KEY_EC_P256)};
    s.cert = t_issue(CA_PROFILE_CLIENT, "leaf one", s.key, &pki.iss_signer);
    for (int scheme = CA_PFX_MODERN; scheme <= CA_PFX_LEGACY; scheme++) {
        s.scheme = (enum ca_pfx_scheme)scheme;
        s.chain = &pki.chain;
        assert_true(fa_sweep(pfx_build_op, pfx_build_check, &s, SWEEP_MAX) > 1);
        /* The leaf alone to parse: the same paths, a third of the allocations (each run of
         * the sweep costs all of them). */
        s.chain = NULL;
        assert_int_equal(pfx_build_op(&s), 0);
        assert_true(fa_sweep(pfx_parse_op, pfx_parse_check, &s, SWEEP_MAX) > 1);
        cmn_buf_fini(&s.built);
    }
    X509_free(s.cert);
    EVP_PKEY_free(s.key);
    t_pki_fini(&pki);
}

/* ---- CRL ---- */

struct crl {
    struct t_pki *pki;
    struct cmn_buf der;
    char errmsg[CMN_ERRMSG_SIZE];
};

static int crl_op(void *ctx)
{
    struct crl *s = ctx;
    static const struct ca_crl_entry e[] = {
        {"01AB", T_NOW - 100, CA_CRL_REASON_KEY_COMPROMISE},
        {"7f00112233445566778899aabbccddee", T_NOW - 50, CA_CRL_REASON_UNSPECIFIED},
        {"42", T_NOW - 10, CA_CRL_REASON_SUPERSEDED},
    };
    struct ca_crl_params p = {e, 3, T_NOW, T_NOW + CA_DAY_SECS, 17};
    s->errmsg[0] = '\0';
    cmn_buf_init(&s->der, false);
    return ca_crl_build(&p, &s->pki->iss_signer, &s->der, s->errmsg);
}

static void crl_check(void *ctx, unsigned long n, int rv, bool fired)
{
    struct crl *s = ctx;
    if (rv != 0) {
        assert_true(fired);
        check_error("ca_crl_build", n, rv, s->errmsg);
        assert_int_equal(s->der.len, 0);
    } else {
        const unsigned char *p = s->der.data;
        X509_CRL *c = d2i_X509_CRL(NULL, &p, (long)s->der.len);
        assert_non_null(c);
        assert_int_equal(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(c)), 3);
        EVP_PKEY *pub = X509_get_pubkey(s->pki->iss);
        assert_int_equal(X509_CRL_verify(c, pub), 1);
        EVP_PKEY_free(pub);
        X509_CRL_free(c);
    }
    cmn_buf_fini(&s->der);
}

static void sweep_crl_build(void **state)
{
    (void)state;
    struct t_pki pki;
    t_pki_init(&pki);
    struct crl s = {.pki = &pki};
    assert_true(fa_sweep(crl_op, crl_check, &s, SWEEP_MAX) > 1);
    t_pki_fini(&pki);
}

/* ---- seal and open ---- */

struct seal {
    struct ca_master_key mk;
    struct cmn_buf blob, plain;
    char errmsg[CMN_ERRMSG_SIZE];
};

static const char secret[] = "-----BEGIN PRIVATE KEY----- not really -----END PRIVATE KEY-----";

static int seal_op(void *ctx)
{
    struct seal *s = ctx;
    s->errmsg[0] = '\0';
    cmn_buf_init(&s->blob, false);
    return ca_seal(&s->mk, CA_SEAL_ISSUING_CA, &cmn_rng_system, secret, sizeof secret, &s->blob,
                   s->errmsg);
}

static void seal_check(void *ctx, unsigned long n, int rv, bool fired)
{
    struct seal *s = ctx;
    if (rv != 0) {
        assert_true(fired);
        check_error("ca_seal", n, rv, s->errmsg);
        assert_int_equal(s->blob.len, 0);
        cmn_buf_fini(&s->blob);
        return;
    }
    struct cmn_buf out;
    cmn_buf_init(&out, true);
    char errmsg[CMN_ERRMSG_SIZE] = "";
    assert_int_equal(
        ca_seal_open(&s->mk, CA_SEAL_ISSUING_CA, s->blob.data, s->blob.len, &out, errmsg), 0);
    assert_memory_equal(out.data, secret, sizeof secret);
    cmn_buf_fini(&out);
    cmn_buf_fini(&s->blob);
}

static int open_op(void *ctx)
{
    struct seal *s = ctx;
    s->errmsg[0] = '\0';
    cmn_buf_init(&s->plain, true);
    return ca_seal_open(&s->mk, CA_SEAL_ISSUING_CA, s->blob.data, s->blob.len, &s->plain,
                        s->errmsg);
}

static void open_check(void *ctx, unsigned long n, int rv, bool fired)
{
    struct seal *s = ctx;
    if (rv != 0) {
        assert_true(fired);
        check_error("ca_seal_open", n, rv, s->errmsg);
        assert_int_equal(s->plain.len, 0);
    } else {
        assert_int_equal(s->plain.len, sizeof secret);
        assert_memory_equal(s->plain.data, secret, sizeof secret);
    }
    cmn_buf_fini(&s->plain);
}

static void sweep_seal_open(void **state)
{
    (void)state;
    struct seal s;
    memset(&s, 0, sizeof s);
    uint8_t b[CA_MASTER_KEY_SIZE];
    for (size_t i = 0; i < sizeof b; i++)
        b[i] = (uint8_t)(7 * i + 1);
    char errmsg[CMN_ERRMSG_SIZE] = "";
    assert_int_equal(ca_master_key_init(&s.mk, b, sizeof b, errmsg), 0);
    assert_true(fa_sweep(seal_op, seal_check, &s, SWEEP_MAX) >= 1);
    assert_int_equal(seal_op(&s), 0);
    assert_true(fa_sweep(open_op, open_check, &s, SWEEP_MAX) >= 1);
    cmn_buf_fini(&s.blob);
    ca_master_key_fini(&s.mk);
}

int main(void)
{
    if (!fa_init()) {
        fprintf(stderr, "OpenSSL allocated before main: its allocations cannot be failed\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sweep_key_generate), cmocka_unit_test(sweep_cert_issue),
        cmocka_unit_test(sweep_pfx),          cmocka_unit_test(sweep_crl_build),
        cmocka_unit_test(sweep_seal_open),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
