/* Unit tests of ca/: keys, issuance profiles, identity, CSRs, CRLs and encodings. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include "tests/unit/ca/fixture.h"

#include <stdio.h>
#include <stdlib.h>

#include <openssl/pem.h>

/* ---------------------------------------------------------------- keys */

static void test_key_type_names(void **state)
{
    (void)state;
    const char *names[] = {"EC-P256", "EC-P384", "RSA-2048", "RSA-3072", "RSA-4096"};
    for (size_t i = 0; i < 5; i++) {
        enum ca_key_type t;
        assert_int_equal(ca_key_type_parse(names[i], &t, NULL), 0);
        assert_string_equal(ca_key_type_name(t), names[i]);
    }
    enum ca_key_type t = CA_KEY_RSA_4096;
    assert_int_equal(ca_key_type_parse("ec-p384", &t, NULL), 0);
    assert_int_equal(t, CA_KEY_EC_P384);
    char errmsg[CMN_ERRMSG_SIZE];
    assert_int_equal(ca_key_type_parse("RSA-1024", &t, errmsg), CMN_EINVALID);
    assert_non_null(strstr(errmsg, "RSA-1024"));
    assert_int_equal(ca_key_type_parse("", &t, NULL), CMN_EINVALID);
    assert_int_equal(ca_key_type_parse(NULL, &t, NULL), CMN_EINVALID);
    assert_int_equal(CA_KEY_DEFAULT, CA_KEY_EC_P256);
}

static void test_key_generate(void **state)
{
    (void)state;
    /* RSA-4096 works the same way and is left out only for time under sanitizers. */
    enum ca_key_type types[] = {CA_KEY_EC_P256, CA_KEY_EC_P384, CA_KEY_RSA_2048, CA_KEY_RSA_3072};
    const char *desc[] = {"EC-P256", "EC-P384", "RSA-2048", "RSA-3072"};
    for (size_t i = 0; i < 4; i++) {
        EVP_PKEY *k = t_key(types[i]);
        enum ca_key_type got;
        assert_int_equal(ca_key_type_of(k, &got), 0);
        assert_int_equal(got, types[i]);
        char d[32];
        ca_key_describe(k, d, sizeof d);
        assert_string_equal(d, desc[i]);
        assert_true(ca_key_acceptable(k));
        assert_int_equal(ca_key_is_rsa(k), i >= 2);
        EVP_PKEY_free(k);
    }
    EVP_PKEY *k = NULL;
    assert_int_equal(ca_key_generate((enum ca_key_type)99, &k, NULL), CMN_EINVALID);
    assert_null(k);

    EVP_PKEY *weak = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    assert_non_null(weak);
    enum ca_key_type got;
    assert_int_equal(ca_key_type_of(weak, &got), CMN_EUNSUPPORTED);
    assert_false(ca_key_acceptable(weak));
    char d[32];
    ca_key_describe(weak, d, sizeof d);
    assert_string_equal(d, "RSA-1024");
    EVP_PKEY_free(weak);
    EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    assert_non_null(ed);
    assert_false(ca_key_acceptable(ed));
    ca_key_describe(ed, d, sizeof d);
    assert_string_equal(d, "ED25519");
    EVP_PKEY_free(ed);
}

/* ---------------------------------------------------------------- issuance */

static void assert_bc(X509 *x, bool ca, long pathlen)
{
    int crit = -1;
    BASIC_CONSTRAINTS *bc = X509_get_ext_d2i(x, NID_basic_constraints, &crit, NULL);
    assert_non_null(bc);
    assert_int_equal(crit, 1);
    assert_int_equal(bc->ca != 0, ca);
    if (pathlen >= 0) {
        assert_non_null(bc->pathlen);
        assert_int_equal(ASN1_INTEGER_get(bc->pathlen), pathlen);
    } else {
        assert_null(bc->pathlen);
    }
    BASIC_CONSTRAINTS_free(bc);
}

static void assert_has_ski_aki(X509 *x, X509 *issuer)
{
    const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(x);
    const ASN1_OCTET_STRING *aki = X509_get0_authority_key_id(x);
    assert_non_null(ski);
    assert_non_null(aki);
    assert_int_equal(ASN1_OCTET_STRING_cmp(aki, X509_get0_subject_key_id(issuer)), 0);
}

static void test_issue_ca_chain(void **state)
{
    (void)state;
    struct t_pki p;
    t_pki_init(&p);
    assert_true(ca_is_ca(p.root));
    assert_true(ca_is_ca(p.iss));
    assert_bc(p.root, true, -1);
    assert_bc(p.iss, true, 0);
    assert_int_equal(X509_get_key_usage(p.root), KU_KEY_CERT_SIGN | KU_CRL_SIGN);
    assert_int_equal(X509_get_key_usage(p.iss),
                     KU_DIGITAL_SIGNATURE | KU_KEY_CERT_SIGN | KU_CRL_SIGN);
    assert_int_equal(X509_get_version(p.root), X509_VERSION_3);
    assert_int_equal(X509_get_signature_nid(p.root), NID_ecdsa_with_SHA256);
    assert_int_equal(X509_get_signature_nid(p.iss), NID_ecdsa_with_SHA256);
    assert_has_ski_aki(p.root, p.root);
    assert_has_ski_aki(p.iss, p.root);
    struct ca_ident id;
    assert_int_equal(ca_ident_get(p.root, &id, NULL), 0);
    assert_true(id.self_signed);
    assert_int_equal(ca_ident_get(p.iss, &id, NULL), 0);
    assert_false(id.self_signed);
    assert_int_equal(t_verify(p.iss, p.root, NULL, 0, NULL), X509_V_OK);
    assert_int_equal(ca_issued_by(p.iss, p.root, NULL), 0);
    assert_int_equal(ca_issued_by(p.root, p.root, NULL), 0);

    /* pathlen:0 forbids a CA below the issuing CA */
    EVP_PKEY *k = t_key(CA_KEY_EC_P256);
    struct ca_cert_req req = {.profile = CA_PROFILE_ISSUING,
                              .cn = "Sub CA",
                              .not_before = T_NOW,
                              .not_after = T_NOW + T_YEAR,
                              .subject_key = k};
    X509 *x = NULL;
    char errmsg[CMN_ERRMSG_SIZE] = "";
    assert_int_equal(ca_cert_issue(&req, &p.iss_signer, &t_rng, &x, errmsg), CMN_EINVALID);
    assert_non_null(strstr(errmsg, "pathlen"));
    assert_null(x);
    EVP_PKEY_free(k);
    t_pki_fini(&p);
}

static void test_issue_node(void **state)
{
    (void)state;
    struct t_pki p;
    t_pki_init(&p);
    const struct {
        enum ca_key_type kt;
        const char *host, *tag, *san0;
    } cases[] = {
        {CA_KEY_EC_P256, "127.0.0.1", "A", "IP:127.0.0.1"},
        {CA_KEY_EC_P384, "::1", "BC", "IP:::1"},
        {CA_KEY_RSA_2048, "node-d.example.com", "ABCD", "DNS:node-d.example.com"},
    };
    for (size_t i = 0; i < 3; i++) {
        EVP_PKEY *k = t_key(cases[i].kt);
        struct ca_cert_req req = {.profile = CA_PROFILE_NODE,
                                  .cn = "Corvid Node",
                                  .host = cases[i].host,
                                  .node_tag = cases[i].tag,
                                  .not_before = T_NOW - 10,
                                  .not_after = T_NOW + T_YEAR,
                                  .subject_key = k};
        X509 *x = NULL;
        char errmsg[CMN_ERRMSG_SIZE] = "";
        assert_int_equal(ca_cert_issue(&req, &p.iss_signer, &t_rng, &x, errmsg), 0);
        assert_int_equal(ca_eku(x), CA_EKU_SERVER | CA_EKU_CLIENT);
        assert_false(ca_is_ca(x));
        assert_bc(x, false, -1);
        uint32_t ku = X509_get_key_usage(x);
        assert_int_equal(ku, cases[i].kt == CA_KEY_RSA_2048
                                 ? (KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT)
                                 : KU_DIGITAL_SIGNATURE);
        struct ca_strlist sans;
        assert_int_equal(ca_sans(x, &sans, NULL), 0);
        assert_int_equal(sans.n, 2);
        assert_string_equal(sans.v[0], cases[i].san0);
        char uri[64];
        snprintf(uri, sizeof uri, "URI:urn:corvid:node:%s", cases[i].tag);
        assert_string_equal(sans.v[1], uri);
        ca_strlist_fini(&sans);
        char tag[CA_NODE_TAG_SIZE];
        assert_int_equal(ca_node_tag(x, tag), 0);
        assert_string_equal(tag, cases[i].tag);
        assert_true(ca_names_node(x, cases[i].tag));
        assert_false(ca_names_node(x, "Q"));
        assert_false(ca_names_node(x, ""));
        struct ca_ident id;
        assert_int_equal(ca_ident_get(x, &id, NULL), 0);
        assert_string_equal(id.node_tag, cases[i].tag);
        assert_int_equal(id.not_before, T_NOW - 10);
        assert_int_equal(id.not_after, T_NOW + T_YEAR);
        assert_has_ski_aki(x, p.iss);
        assert_int_equal(t_verify(x, p.root, &p.chain, X509_PURPOSE_SSL_SERVER, NULL), X509_V_OK);
        assert_int_equal(t_verify(x, p.root, &p.chain, X509_PURPOSE_SSL_CLIENT, NULL), X509_V_OK);
        if (cases[i].san0[0] == 'I')
            assert_int_equal(X509_check_ip_asc(x, cases[i].host, 0), 1);
        else
            assert_int_equal(X509_check_host(x, cases[i].host, 0, 0, NULL), 1);
        assert_int_equal(ca_issued_by(x, p.iss, NULL), 0);
        X509_free(x);
        EVP_PKEY_free(k);
    }
    t_pki_fini(&p);
}

static void test_issue_client(void **state)
{
    (void)state;
    struct t_pki p;
    t_pki_init(&p);
    EVP_PKEY *k = t_key(CA_KEY_EC_P256);
    X509 *x = t_issue(CA_PROFILE_CLIENT, "admin", k, &p.iss_signer);
    assert_int_equal(ca_eku(x), CA_EKU_CLIENT);
    int crit = -1;
    EXTENDED_KEY_USAGE *eku = X509_get_ext_d2i(x, NID_ext_key_usage, &crit, NULL);
    assert_non_null(eku);
    assert_int_equal(crit, 1);
    assert_int_equal(sk_ASN1_OBJECT_num(eku), 1);
    EXTENDED_KEY_USAGE_free(eku);
    struct ca_strlist sans;
    assert_int_equal(ca_sans(x, &sans, NULL), 0);
    assert_int_equal(sans.n, 0);
    ca_strlist_fini(&sans);
    char tag[CA_NODE_TAG_SIZE];
    assert_int_equal(ca_node_tag(x, tag), CMN_ENOTFOUND);
    assert_false(ca_names_node(x, "A"));
    assert_int_equal(t_verify(x, p.root, &p.chain, X509_PURPOSE_SSL_CLIENT, NULL), X509_V_OK);
    assert_int_equal(t_verify(x, p.root, &p.chain, X509_PURPOSE_SSL_SERVER, NULL),
                     X509_V_ERR_INVALID_PURPOSE);
    /* without the issuing CA the chain does not build */
    assert_int_equal(t_verify(x, p.root, NULL, 0, NULL),
                     X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
    struct cmn_buf b;
    cmn_buf_init(&b, false);
    assert_int_equal(ca_subject_str(x, &b), 0);
    assert_string_equal((char *)b.data, "CN=admin");
    b.len = 0;
    assert_int_equal(ca_issuer_str(x, &b), 0);
    assert_string_equal((char *)b.data, "CN=Test Issuing CA");
    b.len = 0;
    assert_int_equal(ca_subject_cn(x, &b), 0);
    assert_string_equal((char *)b.data, "admin");
    cmn_buf_fini(&b);
    X509_free(x);
    EVP_PKEY_free(k);
    /* a key and its client certificate in one call (RavenDB's generate) */
    EVP_PKEY *gk = NULL;
    X509 *gx = NULL;
    int64_t now = T_NOW;
    assert_int_equal(ca_client_issue(CA_KEY_EC_P384, "gen", now - 60, now + 86400, &p.iss_signer,
                                     &t_rng, &gk, &gx, NULL),
                     0);
    assert_int_equal(ca_eku(gx), CA_EKU_CLIENT);
    assert_int_equal(X509_check_private_key(gx, gk), 1);
    enum ca_key_type kt;
    assert_int_equal(ca_key_type_of(gk, &kt), 0);
    assert_int_equal(kt, CA_KEY_EC_P384);
    assert_int_equal(t_verify(gx, p.root, &p.chain, X509_PURPOSE_SSL_CLIENT, NULL), X509_V_OK);
    X509_free(gx);
    EVP_PKEY_free(gk);
    char err[CMN_ERRMSG_SIZE] = "";
    assert_int_equal(ca_client_issue(CA_KEY_EC_P256, "", now - 60, now + 86400, &p.iss_signer,
                                     &t_rng, &gk, &gx, err),
                     CMN_EINVALID); /* an empty name: nothing handed out */
    assert_null(gk);
    assert_null(gx);
    t_pki_fini(&p);
}

static void expect_issue_fail(const struct ca_cert_req *req, const struct ca_signer *signer,
                              int code, const char *needle)
{
    X509 *x = (X509 *)1;
    char errmsg[CMN_ERRMSG_SIZE] = "";
    int rv = ca_cert_issue(req, signer, &t_rng, &x, errmsg);
    if (rv != code)
        fail_msg("expected %d, got %d (%s)", code, rv, errmsg);
    assert_null(x);
    if (needle != NULL && strstr(errmsg, needle) == NULL)
        fail_msg("message '%s' lacks '%s'", errmsg, needle);
}

static void test_issue_rejects(void **state)
{
    (void)state;
    struct t_pki p;
    t_pki_init(&p);
    EVP_PKEY *k = t_key(CA_KEY_EC_P256);
    struct ca_cert_req base = {.profile = CA_PROFILE_NODE,
                               .cn = "n",
                               .host = "127.0.0.1",
                               .node_tag = "A",
                               .not_before = T_NOW,
                               .not_after = T_NOW + T_YEAR,
                               .subject_key = k};
    struct ca_cert_req r;
    const char *bad_tags[] = {"", "a", "ABCDE", "A1", "Ä", NULL};
    for (size_t i = 0; i < sizeof bad_tags / sizeof bad_tags[0]; i++) {
        r = base;
        r.node_tag = bad_tags[i];
        expect_issue_fail(&r, &p.iss_signer, CMN_EINVALID, "node tag");
    }
    const char *bad_hosts[] = {"",      "-bad.example", "a..b",         "host name",
                               "1.2.3", "1.2.3.4.5",    "a/b",          "x.example-",
                               NULL,    "1.2.3.999",    "host,DNS:evil"};
    for (size_t i = 0; i < sizeof bad_hosts / sizeof bad_hosts[0]; i++) {
        r = base;
        r.host = bad_hosts[i];
        expect_issue_fail(&r, &p.iss_signer, CMN_EINVALID, "host");
    }
    assert_true(ca_host_valid("localhost"));
    assert_true(ca_host_valid("10.0.0.1"));
    assert_true(ca_host_valid("fe80::1"));
    assert_true(ca_host_valid("a-1.example.com"));

    r = base;
    r.not_after = r.not_before;
    expect_issue_fail(&r, &p.iss_signer, CMN_EINVALID, "validity");
    r = base;
    r.not_after = T_NOW + 20 * T_YEAR; /* outlives the issuing CA */
    expect_issue_fail(&r, &p.iss_signer, CMN_EINVALID, "signer's NotAfter");
    r = base;
    r.cn = "";
    expect_issue_fail(&r, &p.iss_signer, CMN_EINVALID, "common name");
    r = base;
    r.cn = "line\nbreak";
    expect_issue_fail(&r, &p.iss_signer, CMN_EINVALID, "common name");
    char long_cn[70];
    memset(long_cn, 'x', 65);
    long_cn[65] = '\0';
    r = base;
    r.cn = long_cn;
    expect_issue_fail(&r, &p.iss_signer, CMN_EINVALID, "common name");
    r = base;
    r.cn = "\xff\xfe"; /* not UTF-8 */
    expect_issue_fail(&r, &p.iss_signer, CMN_EINVALID, "common name");
    r = base;
    expect_issue_fail(&r, NULL, CMN_EINVALID, "signer");
    r = base;
    r.profile = CA_PROFILE_ROOT;
    expect_issue_fail(&r, &p.iss_signer, CMN_EINVALID, "self-signed");
    r = base;
    r.profile = (enum ca_profile)42;
    expect_issue_fail(&r, &p.iss_signer, CMN_EINVALID, "profile");
    r = base;
    r.subject_key = NULL;
    expect_issue_fail(&r, &p.iss_signer, CMN_EINVALID, "key");

    /* signer whose key does not match, and a signer that is not a CA */
    struct ca_signer mismatched = {p.iss, p.root_key};
    expect_issue_fail(&base, &mismatched, CMN_EINVALID, "does not match");
    X509 *leaf = t_issue(CA_PROFILE_CLIENT, "leaf", k, &p.iss_signer);
    struct ca_signer not_ca = {leaf, k};
    expect_issue_fail(&base, &not_ca, CMN_EINVALID, "not a CA");

    EVP_PKEY *weak = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    r = base;
    r.subject_key = weak;
    expect_issue_fail(&r, &p.iss_signer, CMN_EUNSUPPORTED, "RSA-1024");

    X509_free(leaf);
    EVP_PKEY_free(weak);
    EVP_PKEY_free(k);
    t_pki_fini(&p);
}

static int failing_rng(void *ctx, void *buf, size_t n)
{
    (void)ctx, (void)buf, (void)n;
    return CMN_EIO;
}

static void test_serial(void **state)
{
    (void)state;
    struct t_pki p;
    t_pki_init(&p);
    EVP_PKEY *k = t_key(CA_KEY_EC_P256);
    char s1[CA_SERIAL_HEX_SIZE], s2[CA_SERIAL_HEX_SIZE], s3[CA_SERIAL_HEX_SIZE];
    t_rng_state = 7;
    X509 *a = t_issue(CA_PROFILE_CLIENT, "a", k, &p.iss_signer);
    t_rng_state = 7;
    X509 *b = t_issue(CA_PROFILE_CLIENT, "b", k, &p.iss_signer);
    X509 *c = t_issue(CA_PROFILE_CLIENT, "c", k, &p.iss_signer);
    assert_int_equal(ca_serial_hex(a, s1), 0);
    assert_int_equal(ca_serial_hex(b, s2), 0);
    assert_int_equal(ca_serial_hex(c, s3), 0);
    assert_string_equal(s1, s2);
    assert_string_not_equal(s1, s3);
    assert_int_equal(strlen(s1), 32);
    assert_true(cmn_is_hex(s1, 32));
    assert_true(s1[0] >= '4' && s1[0] <= '7'); /* positive, 16 bytes */
    /* the serial is exactly the first 16 bytes of the generator with the top bits fixed */
    uint64_t st = 7;
    unsigned char raw[16];
    assert_int_equal(cmn_rng_counter_fill(&st, raw, sizeof raw), 0);
    raw[0] = (unsigned char)((raw[0] & 0x7f) | 0x40);
    char expect[33];
    cmn_hex_upper(raw, 16, expect);
    assert_string_equal(s1, expect);

    struct cmn_rng bad = {failing_rng, NULL};
    struct ca_cert_req req = {.profile = CA_PROFILE_CLIENT,
                              .cn = "x",
                              .not_before = T_NOW,
                              .not_after = T_NOW + 10,
                              .subject_key = k};
    X509 *x = NULL;
    char errmsg[CMN_ERRMSG_SIZE] = "";
    assert_int_equal(ca_cert_issue(&req, &p.iss_signer, &bad, &x, errmsg), CMN_EIO);
    assert_non_null(strstr(errmsg, "random"));
    assert_null(x);
    X509_free(a);
    X509_free(b);
    X509_free(c);
    EVP_PKEY_free(k);
    t_pki_fini(&p);
}

static void test_validity_helpers(void **state)
{
    (void)state;
    assert_int_equal(ca_day_start(T_NOW + 3600 * 13 + 5), T_NOW);
    assert_int_equal(ca_day_start(-1), -CA_DAY_SECS);
    int64_t nb, na;
    ca_client_default_validity(T_NOW + 3600, &nb, &na);
    assert_int_equal(nb, T_NOW - 7 * CA_DAY_SECS);
    assert_int_equal(na, 1867017600LL); /* 2029-03-01T00:00:00Z */
    /* 2024-02-29 + 5 years = 2029-02-28, as .NET AddYears */
    assert_int_equal(ca_add_years(1709164800LL, 5), 1866931200LL);
    assert_int_equal(ca_add_years(1709164800LL + 61, 4), 1835395200LL + 61); /* 2028-02-29 */
    ca_validity_days(T_NOW, 825, &nb, &na);
    assert_int_equal(nb, T_NOW - CA_CLOCK_SKEW_SECS);
    assert_int_equal(na, T_NOW + 825 * CA_DAY_SECS);

    /* the times round-trip through a certificate, including GeneralizedTime after 2049 */
    struct t_pki p;
    t_pki_init(&p);
    EVP_PKEY *k = t_key(CA_KEY_EC_P256);
    struct ca_cert_req rr = {.profile = CA_PROFILE_ROOT,
                             .cn = "far",
                             .not_before = -86400 * 365LL,
                             .not_after = 4102444800LL + 17, /* 2100-01-01T00:00:17Z */
                             .subject_key = k};
    X509 *x = NULL;
    assert_int_equal(ca_cert_issue(&rr, NULL, &t_rng, &x, NULL), 0);
    assert_int_equal(ca_validity(x, &nb, &na), 0);
    assert_int_equal(nb, -86400 * 365LL);
    assert_int_equal(na, 4102444800LL + 17);
    X509_free(x);
    EVP_PKEY_free(k);
    t_pki_fini(&p);
}

/* ---------------------------------------------------------------- identity */

static const char kat_pem[] = "-----BEGIN CERTIFICATE-----\n"
                              "MIIBgTCCASegAwIBAgIUUVcRfzBHiyS7Zr7ZZDYBraUjoYYwCgYIKoZIzj0EAwIw\n"
                              "FTETMBEGA1UEAwwKQ29ydmlkIEtBVDAgFw0yNjExMjYxMzM5MTVaGA8yMTI2MTEw\n"
                              "MjEzMzkxNVowFTETMBEGA1UEAwwKQ29ydmlkIEtBVDBZMBMGByqGSM49AgEGCCqG\n"
                              "SM49AwEHA0IABNoJZWMCwZybhhfypIGaProeIRYqFxYtnFChdQ//gRdWSKErgLoe\n"
                              "YL2BvC/LQdUAZavXyU1wHic+WRSOZfXUmHujUzBRMB0GA1UdDgQWBBQ823TMLTIC\n"
                              "7tYZtsIB0YeAEDaI0jAfBgNVHSMEGDAWgBQ823TMLTIC7tYZtsIB0YeAEDaI0jAP\n"
                              "BgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0gAMEUCIQDVCttftzZDI9uu7ZfB\n"
                              "dYP7zGtzrjep4Mfvq7MkFeOwUAIgTxTs2BBp9ZbJ9mxXFRLd0poBR3vMzfqK65w4\n"
                              "ahj6HtI=\n"
                              "-----END CERTIFICATE-----\n";

/* Known answers computed with the openssl command-line tool (x509 -fingerprint; pkey -pubin
 * -outform der | dgst -sha256 -binary | base64). */
static void test_ident_known_answers(void **state)
{
    (void)state;
    X509 *x = NULL;
    char errmsg[CMN_ERRMSG_SIZE] = "";
    assert_int_equal(ca_cert_from_bytes(kat_pem, sizeof kat_pem - 1, &x, errmsg), 0);
    struct ca_ident id;
    assert_int_equal(ca_ident_get(x, &id, errmsg), 0);
    assert_string_equal(id.thumbprint, "B5355DC4414F01922AC8DB6EE0AFCD1F629651BB");
    assert_string_equal(id.sha256,
                        "56BB0BA197456A1F4BFCACB30D7649FC409FB16E124578C99DE831BD1EA252B2");
    assert_string_equal(id.pkph, "VBG2RffjZ9zkHYUVO8yRV1qeW+njJLOqToAPP3krc2g=");
    assert_string_equal(id.serial, "5157117F30478B24BB66BED9643601ADA523A186");
    assert_true(id.is_ca);
    assert_true(id.self_signed);
    assert_int_equal(id.eku, CA_EKU_ANY | CA_EKU_SERVER | CA_EKU_CLIENT);
    assert_string_equal(id.node_tag, "");
    assert_int_equal(id.not_before, 1795700355LL); /* 2026-11-26T13:39:15Z */
    X509_free(x);
}

/* The same values computed independently of ca/ident.c, on freshly issued certificates. */
static void test_ident_second_path(void **state)
{
    (void)state;
    struct t_pki p;
    t_pki_init(&p);
    X509 *certs[] = {p.root, p.iss};
    for (size_t i = 0; i < 2; i++) {
        X509 *x = certs[i];
        unsigned char *der = NULL;
        int len = i2d_X509(x, &der);
        assert_true(len > 0);
        unsigned char d[32];
        char hex[65];
        assert_int_equal(EVP_Digest(der, (size_t)len, d, NULL, EVP_sha1(), NULL), 1);
        cmn_hex_upper(d, 20, hex);
        char tp[CA_THUMBPRINT_SIZE];
        assert_int_equal(ca_thumbprint(x, tp), 0);
        assert_string_equal(tp, hex);
        assert_int_equal(EVP_Digest(der, (size_t)len, d, NULL, EVP_sha256(), NULL), 1);
        cmn_hex_upper(d, 32, hex);
        char fp[CA_SHA256_HEX_SIZE];
        assert_int_equal(ca_fingerprint_sha256(x, fp), 0);
        assert_string_equal(fp, hex);
        OPENSSL_free(der);

        der = NULL;
        len = i2d_PUBKEY(X509_get0_pubkey(x), &der);
        assert_true(len > 0);
        assert_int_equal(EVP_Digest(der, (size_t)len, d, NULL, EVP_sha256(), NULL), 1);
        OPENSSL_free(der);
        unsigned char b64[64];
        EVP_EncodeBlock(b64, d, 32);
        char pk[CA_PKPH_SIZE];
        assert_int_equal(ca_pkph(x, pk), 0);
        assert_string_equal(pk, (char *)b64);
        assert_int_equal(strlen(pk), 44);
    }
    t_pki_fini(&p);
}

static void test_issued_by(void **state)
{
    (void)state;
    struct t_pki p, q;
    t_pki_init(&p);
    t_pki_init(&q); /* same names, other keys */
    EVP_PKEY *k = t_key(CA_KEY_EC_P256);
    X509 *x = t_issue(CA_PROFILE_CLIENT, "c", k, &p.iss_signer);
    char errmsg[CMN_ERRMSG_SIZE] = "";
    assert_int_equal(ca_issued_by(x, p.iss, errmsg), 0);
    assert_int_equal(ca_issued_by(x, p.root, errmsg), CMN_EINVALID);
    assert_non_null(strstr(errmsg, "not issued by"));
    assert_int_equal(ca_issued_by(x, q.iss, errmsg), CMN_EINVALID); /* AKI differs */

    /* a flipped signature byte */
    unsigned char *der = NULL;
    int len = i2d_X509(x, &der);
    der[len - 1] ^= 0x01;
    X509 *bad = NULL;
    assert_int_equal(ca_cert_from_der(der, (size_t)len, &bad, NULL), 0);
    assert_int_equal(ca_issued_by(bad, p.iss, errmsg), CMN_EBADSIG);
    assert_non_null(strstr(errmsg, "signature"));
    OPENSSL_free(der);
    X509_free(bad);
    X509_free(x);
    EVP_PKEY_free(k);
    t_pki_fini(&q);
    t_pki_fini(&p);
}

/* ---------------------------------------------------------------- CSR */

/* A CSR for key asking for CN=requested, CA:true and serverAuth (which must all be ignored). */
static X509_REQ *make_req(EVP_PKEY *key)
{
    X509_REQ *req = X509_REQ_new();
    assert_non_null(req);
    X509_NAME *name = X509_REQ_get_subject_name(req);
    assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                                (const unsigned char *)"requested", -1, -1, 0),
                     1);
    assert_int_equal(X509_REQ_set_pubkey(req, key), 1);
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
    X509_EXTENSION *e1 = X509V3_EXT_conf_nid(NULL, NULL, NID_basic_constraints, "critical,CA:TRUE");
    X509_EXTENSION *e2 = X509V3_EXT_conf_nid(NULL, NULL, NID_ext_key_usage, "serverAuth");
    assert_non_null(e1);
    assert_non_null(e2);
    sk_X509_EXTENSION_push(exts, e1);
    sk_X509_EXTENSION_push(exts, e2);
    assert_int_equal(X509_REQ_add_extensions(req, exts), 1);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    assert_true(X509_REQ_sign(req, key, EVP_sha256()) > 0);
    return req;
}

static void test_csr_issue(void **state)
{
    (void)state;
    struct t_pki p;
    t_pki_init(&p);
    EVP_PKEY *k = t_key(CA_KEY_EC_P256);
    X509_REQ *req = make_req(k);
    unsigned char *der = NULL;
    int len = i2d_X509_REQ(req, &der);
    BIO *bio = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_X509_REQ(bio, req), 1);
    char *pem = NULL;
    long pem_len = BIO_get_mem_data(bio, &pem);

    X509_REQ *parsed[2] = {NULL, NULL};
    char errmsg[CMN_ERRMSG_SIZE] = "";
    assert_int_equal(ca_csr_parse(der, (size_t)len, &parsed[0], errmsg), 0);
    assert_int_equal(ca_csr_parse(pem, (size_t)pem_len, &parsed[1], errmsg), 0);
    for (size_t i = 0; i < 2; i++) {
        struct ca_csr_policy pol = {.name = "policy-name",
                                    .not_before = T_NOW - CA_DAY_SECS,
                                    .not_after = T_NOW + 10 * T_YEAR,
                                    .max_validity_secs = T_YEAR};
        X509 *x = NULL;
        assert_int_equal(ca_csr_issue_client(parsed[i], &p.iss_signer, &pol, &t_rng, &x, errmsg),
                         0);
        struct cmn_buf cn;
        cmn_buf_init(&cn, false);
        assert_int_equal(ca_subject_cn(x, &cn), 0);
        assert_string_equal((char *)cn.data, "policy-name");
        cmn_buf_fini(&cn);
        assert_int_equal(ca_eku(x), CA_EKU_CLIENT);
        assert_false(ca_is_ca(x));
        int64_t nb, na;
        assert_int_equal(ca_validity(x, &nb, &na), 0);
        assert_int_equal(nb, T_NOW - CA_DAY_SECS);
        assert_int_equal(na, T_NOW - CA_DAY_SECS + T_YEAR); /* capped */
        assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(x), k), 1);
        assert_int_equal(t_verify(x, p.root, &p.chain, X509_PURPOSE_SSL_CLIENT, NULL), X509_V_OK);
        X509_free(x);

        /* a huge cap is bounded by the issuing CA's own NotAfter */
        pol.max_validity_secs = 100 * T_YEAR;
        pol.not_after = T_NOW + 50 * T_YEAR;
        assert_int_equal(ca_csr_issue_client(parsed[i], &p.iss_signer, &pol, &t_rng, &x, errmsg),
                         0);
        int64_t iss_nb, iss_na;
        assert_int_equal(ca_validity(x, &nb, &na), 0);
        assert_int_equal(ca_validity(p.iss, &iss_nb, &iss_na), 0);
        assert_int_equal(na, iss_na);
        X509_free(x);
        pol.max_validity_secs = 0;
        assert_int_equal(ca_csr_issue_client(parsed[i], &p.iss_signer, &pol, &t_rng, &x, errmsg),
                         CMN_EINVALID);
        X509_REQ_free(parsed[i]);
    }

    /* a flipped byte in the signature */
    der[len - 1] ^= 0x01;
    X509_REQ *bad = (X509_REQ *)1;
    assert_int_equal(ca_csr_parse(der, (size_t)len, &bad, errmsg), CMN_EBADSIG);
    assert_null(bad);
    assert_non_null(strstr(errmsg, "signature"));
    der[len - 1] ^= 0x01;
    /* a changed subject (signed bytes) also breaks the signature */
    unsigned char *cn = memmem(der, (size_t)len, "requested", 9);
    assert_non_null(cn);
    cn[0] = 'R';
    assert_int_equal(ca_csr_parse(der, (size_t)len, &bad, errmsg), CMN_EBADSIG);
    /* truncated, garbage, empty, trailing bytes, PEM without a request */
    assert_int_equal(ca_csr_parse(der, (size_t)len - 5, &bad, errmsg), CMN_EMALFORMED);
    assert_int_equal(ca_csr_parse("garbage", 7, &bad, errmsg), CMN_EMALFORMED);
    assert_int_equal(ca_csr_parse("", 0, &bad, errmsg), CMN_EMALFORMED);
    assert_int_equal(ca_csr_parse(kat_pem, sizeof kat_pem - 1, &bad, errmsg), CMN_EMALFORMED);
    OPENSSL_free(der);
    BIO_free(bio);
    X509_REQ_free(req);

    /* a weak key is refused at issuance */
    EVP_PKEY *weak = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    req = make_req(weak);
    struct ca_csr_policy pol = {"w", T_NOW, T_NOW + 10, 100};
    X509 *x = NULL;
    assert_int_equal(ca_csr_issue_client(req, &p.iss_signer, &pol, &t_rng, &x, errmsg),
                     CMN_EUNSUPPORTED);
    assert_non_null(strstr(errmsg, "RSA-1024"));
    X509_REQ_free(req);
    EVP_PKEY_free(weak);
    EVP_PKEY_free(k);
    t_pki_fini(&p);
}

/* ---------------------------------------------------------------- CRL */

static void test_crl(void **state)
{
    (void)state;
    struct t_pki p;
    t_pki_init(&p);
    EVP_PKEY *k = t_key(CA_KEY_EC_P256);
    X509 *revoked = t_issue(CA_PROFILE_CLIENT, "revoked", k, &p.iss_signer);
    X509 *fine = t_issue(CA_PROFILE_CLIENT, "fine", k, &p.iss_signer);
    char serial[CA_SERIAL_HEX_SIZE];
    assert_int_equal(ca_serial_hex(revoked, serial), 0);
    cmn_ascii_lower(serial); /* either case is accepted */
    struct ca_crl_entry entries[] = {
        {"7F00000000000000000000000000000A", T_NOW - 100, CA_CRL_REASON_NONE},
        {serial, T_NOW - 50, CA_CRL_REASON_KEY_COMPROMISE},
        {"01", T_NOW - 10, CA_CRL_REASON_UNSPECIFIED},
    };
    struct ca_crl_params prm = {entries, 3, T_NOW - 60, T_NOW + 7 * CA_DAY_SECS, 17};
    struct cmn_buf der;
    cmn_buf_init(&der, false);
    char errmsg[CMN_ERRMSG_SIZE] = "";
    assert_int_equal(ca_crl_build(&prm, &p.iss_signer, &der, errmsg), 0);
    const unsigned char *q = der.data;
    X509_CRL *crl = d2i_X509_CRL(NULL, &q, (long)der.len);
    assert_non_null(crl);
    assert_int_equal(X509_CRL_verify(crl, X509_get0_pubkey(p.iss)), 1);
    assert_int_equal(X509_CRL_verify(crl, X509_get0_pubkey(p.root)), 0);
    ERR_clear_error();
    assert_int_equal(X509_CRL_get_version(crl), X509_CRL_VERSION_2);
    assert_int_equal(X509_CRL_get_signature_nid(crl), NID_ecdsa_with_SHA256);
    assert_int_equal(X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(p.iss)), 0);
    STACK_OF(X509_REVOKED) *rs = X509_CRL_get_REVOKED(crl);
    assert_int_equal(sk_X509_REVOKED_num(rs), 3);
    ASN1_INTEGER *num = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
    assert_non_null(num);
    assert_int_equal(ASN1_INTEGER_get(num), 17);
    ASN1_INTEGER_free(num);
    AUTHORITY_KEYID *akid = X509_CRL_get_ext_d2i(crl, NID_authority_key_identifier, NULL, NULL);
    assert_non_null(akid);
    assert_int_equal(ASN1_OCTET_STRING_cmp(akid->keyid, X509_get0_subject_key_id(p.iss)), 0);
    AUTHORITY_KEYID_free(akid);
    X509_REVOKED *r = NULL;
    assert_int_equal(X509_CRL_get0_by_cert(crl, &r, revoked), 1);
    ASN1_ENUMERATED *reason = X509_REVOKED_get_ext_d2i(r, NID_crl_reason, NULL, NULL);
    assert_non_null(reason);
    assert_int_equal(ASN1_ENUMERATED_get(reason), CA_CRL_REASON_KEY_COMPROMISE);
    ASN1_ENUMERATED_free(reason);
    assert_int_equal(X509_CRL_get0_by_cert(crl, &r, fine), 0);
    /* the unspecified reason is written as no extension */
    for (int i = 0; i < 3; i++) {
        X509_REVOKED *e = sk_X509_REVOKED_value(rs, i);
        int crit = 0;
        void *ext = X509_REVOKED_get_ext_d2i(e, NID_crl_reason, &crit, NULL);
        if (ASN1_INTEGER_get(X509_REVOKED_get0_serialNumber(e)) == 1)
            assert_null(ext);
        ASN1_ENUMERATED_free(ext);
    }
    /* the whole chain check with CRL checking: the revoked leaf is refused */
    assert_int_equal(t_verify(revoked, p.root, &p.chain, 0, crl), X509_V_ERR_CERT_REVOKED);
    assert_int_equal(t_verify(fine, p.root, &p.chain, 0, crl), X509_V_OK);

    struct cmn_buf pem;
    cmn_buf_init(&pem, false);
    assert_int_equal(ca_crl_to_pem(der.data, der.len, &pem, errmsg), 0);
    assert_non_null(strstr((char *)pem.data, "-----BEGIN X509 CRL-----"));
    assert_int_equal(ca_crl_to_pem("xx", 2, &pem, errmsg), CMN_EMALFORMED);
    cmn_buf_fini(&pem);
    X509_CRL_free(crl);

    /* an empty CRL is fine */
    der.len = 0;
    struct ca_crl_params empty = {NULL, 0, T_NOW, T_NOW + 1, 1};
    assert_int_equal(ca_crl_build(&empty, &p.iss_signer, &der, errmsg), 0);

    /* rejects */
    struct ca_crl_entry bad_serial[] = {{"XYZ", T_NOW, -1}};
    struct ca_crl_entry bad_reason[] = {{"01", T_NOW, 7}};
    struct ca_crl_entry empty_serial[] = {{"", T_NOW, -1}};
    struct ca_crl_params b1 = {bad_serial, 1, T_NOW, T_NOW + 1, 1};
    assert_int_equal(ca_crl_build(&b1, &p.iss_signer, &der, errmsg), CMN_EINVALID);
    assert_non_null(strstr(errmsg, "serial"));
    b1.entries = empty_serial;
    assert_int_equal(ca_crl_build(&b1, &p.iss_signer, &der, errmsg), CMN_EINVALID);
    b1.entries = bad_reason;
    assert_int_equal(ca_crl_build(&b1, &p.iss_signer, &der, errmsg), CMN_EINVALID);
    assert_non_null(strstr(errmsg, "reason"));
    struct ca_crl_params b2 = {NULL, 0, T_NOW, T_NOW, 1};
    assert_int_equal(ca_crl_build(&b2, &p.iss_signer, &der, errmsg), CMN_EINVALID);
    struct ca_signer leaf_signer = {fine, k};
    assert_int_equal(ca_crl_build(&empty, &leaf_signer, &der, errmsg), CMN_EINVALID);
    struct ca_signer mismatched = {p.iss, k};
    assert_int_equal(ca_crl_build(&empty, &mismatched, &der, errmsg), CMN_EINVALID);
    cmn_buf_fini(&der);
    X509_free(revoked);
    X509_free(fine);
    EVP_PKEY_free(k);
    t_pki_fini(&p);
}

/* ---------------------------------------------------------------- encodings */

static void test_base64(void **state)
{
    (void)state;
    unsigned char src[70];
    for (size_t i = 0; i < sizeof src; i++)
        src[i] = (unsigned char)(i * 37 + 11);
    for (size_t n = 0; n <= sizeof src; n++) {
        struct cmn_buf enc, dec;
        cmn_buf_init(&enc, false);
        cmn_buf_init(&dec, false);
        assert_int_equal(ca_b64_encode(src, n, &enc), 0);
        assert_int_equal(enc.len, 4 * ((n + 2) / 3));
        assert_null(memchr(enc.data, '\n', enc.len));
        assert_int_equal(ca_b64_decode((char *)enc.data, enc.len, &dec, NULL), 0);
        assert_int_equal(dec.len, n);
        assert_memory_equal(dec.data ? dec.data : src, src, n);
        cmn_buf_fini(&enc);
        cmn_buf_fini(&dec);
    }
    struct cmn_buf dec;
    cmn_buf_init(&dec, false);
    assert_int_equal(ca_b64_decode("SGVs\r\nbG8=\n", 11, &dec, NULL), 0);
    assert_int_equal(dec.len, 5);
    assert_memory_equal(dec.data, "Hello", 5);
    const char *bad[] = {"abc",       "ab=c",     "a$bc",     "====",        "SGVsbG8",
                         "SGVsbG8==", "SG=sbG8=", "SGVs-G8=", "SGVsbG8=A==="};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char errmsg[CMN_ERRMSG_SIZE] = "";
        dec.len = 0;
        int rv = ca_b64_decode(bad[i], strlen(bad[i]), &dec, errmsg);
        if (rv != CMN_EMALFORMED)
            fail_msg("'%s' gave %d", bad[i], rv);
        assert_non_null(strstr(errmsg, "base64"));
    }
    cmn_buf_fini(&dec);
}

static void test_cert_loading(void **state)
{
    (void)state;
    struct t_pki p;
    t_pki_init(&p);
    char errmsg[CMN_ERRMSG_SIZE] = "";
    struct cmn_buf der, pem, b64;
    cmn_buf_init(&der, false);
    cmn_buf_init(&pem, false);
    cmn_buf_init(&b64, false);
    assert_int_equal(ca_cert_to_der(p.iss, &der), 0);
    assert_int_equal(ca_cert_to_pem(p.iss, &pem), 0);
    assert_int_equal(ca_b64_encode(der.data, der.len, &b64), 0);
    X509 *x = NULL;
    assert_int_equal(ca_cert_from_bytes(der.data, der.len, &x, errmsg), 0);
    assert_int_equal(X509_cmp(x, p.iss), 0);
    X509_free(x);
    assert_int_equal(ca_cert_from_bytes(pem.data, pem.len, &x, errmsg), 0);
    assert_int_equal(X509_cmp(x, p.iss), 0);
    X509_free(x);
    assert_int_equal(ca_cert_from_bytes(b64.data, b64.len, &x, errmsg), 0);
    assert_int_equal(X509_cmp(x, p.iss), 0);
    X509_free(x);

    /* many PEM certificates, with a private key block and text in between */
    struct cmn_buf many;
    cmn_buf_init(&many, true);
    assert_int_equal(cmn_buf_append_str(&many, "Bag Attributes: junk\n"), 0);
    assert_int_equal(ca_cert_to_pem(p.root, &many), 0);
    assert_int_equal(ca_key_to_pem(p.root_key, NULL, &many, NULL), 0);
    assert_int_equal(ca_certs_to_pem(&p.chain, &many), 0);
    struct ca_cert_list l;
    ca_cert_list_init(&l);
    assert_int_equal(ca_certs_from_bytes(many.data, many.len, &l, errmsg), 0);
    assert_int_equal(l.n, 3);
    assert_int_equal(X509_cmp(l.v[0], p.root), 0);
    assert_int_equal(X509_cmp(l.v[1], p.iss), 0);
    assert_int_equal(X509_cmp(l.v[2], p.root), 0);
    ca_cert_list_fini(&l);
    assert_int_equal(ca_cert_from_bytes(many.data, many.len, &x, errmsg), CMN_EINVALID);
    assert_non_null(strstr(errmsg, "found 3"));
    assert_null(x);

    /* rejects */
    assert_int_equal(ca_cert_from_bytes("", 0, &x, errmsg), CMN_EMALFORMED);
    assert_int_equal(ca_cert_from_bytes("hello world!", 12, &x, errmsg), CMN_EMALFORMED);
    assert_int_equal(ca_cert_from_bytes(der.data, der.len - 1, &x, errmsg), CMN_EMALFORMED);
    assert_int_equal(cmn_buf_append(&der, "\0", 1), 0);
    assert_int_equal(ca_cert_from_bytes(der.data, der.len, &x, errmsg), CMN_EMALFORMED);
    const char nocert[] = "-----BEGIN FOO-----\nAAAA\n-----END FOO-----\n";
    assert_int_equal(ca_cert_from_bytes(nocert, sizeof nocert - 1, &x, errmsg), CMN_ENOTFOUND);
    pem.data[40] ^= 0x20; /* corrupt the base64 inside the PEM */
    pem.data[41] = '*';
    assert_int_equal(ca_cert_from_bytes(pem.data, pem.len, &x, errmsg), CMN_EMALFORMED);
    size_t big = CA_INPUT_MAX + 1;
    char *huge = calloc(1, big);
    assert_int_equal(ca_cert_from_bytes(huge, big, &x, errmsg), CMN_ETOOBIG);
    free(huge);
    assert_null(x);
    cmn_buf_fini(&many);
    cmn_buf_fini(&der);
    cmn_buf_fini(&pem);
    cmn_buf_fini(&b64);
    t_pki_fini(&p);
}

static void test_key_pem(void **state)
{
    (void)state;
    EVP_PKEY *k = t_key(CA_KEY_EC_P256);
    char errmsg[CMN_ERRMSG_SIZE] = "";
    struct cmn_buf plain, enc;
    cmn_buf_init(&plain, false);
    cmn_buf_init(&enc, false);
    assert_int_equal(ca_key_to_pem(k, NULL, &plain, errmsg), 0);
    assert_true(plain.secret);
    assert_non_null(strstr((char *)plain.data, "-----BEGIN PRIVATE KEY-----"));
    assert_int_equal(ca_key_to_pem(k, "s3cret", &enc, errmsg), 0);
    assert_true(enc.secret);
    assert_non_null(strstr((char *)enc.data, "-----BEGIN ENCRYPTED PRIVATE KEY-----"));
    /* PBES2 with AES-256-CBC */
    BIO *bio = BIO_new_mem_buf(enc.data, (int)enc.len);
    X509_SIG *sig = PEM_read_bio_PKCS8(bio, NULL, NULL, NULL);
    assert_non_null(sig);
    const X509_ALGOR *alg = NULL;
    X509_SIG_get0(sig, &alg, NULL);
    assert_int_equal(OBJ_obj2nid(alg->algorithm), NID_pbes2);
    PBE2PARAM *p2 = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBE2PARAM), alg->parameter);
    assert_non_null(p2);
    assert_int_equal(OBJ_obj2nid(p2->encryption->algorithm), NID_aes_256_cbc);
    PBE2PARAM_free(p2);
    X509_SIG_free(sig);
    BIO_free(bio);

    EVP_PKEY *back = NULL;
    assert_int_equal(ca_key_from_pem(plain.data, plain.len, NULL, &back, errmsg), 0);
    assert_int_equal(EVP_PKEY_eq(back, k), 1);
    EVP_PKEY_free(back);
    back = NULL;
    assert_int_equal(ca_key_from_pem(enc.data, enc.len, "s3cret", &back, errmsg), 0);
    assert_int_equal(EVP_PKEY_eq(back, k), 1);
    EVP_PKEY_free(back);
    back = NULL;
    assert_int_equal(ca_key_from_pem(enc.data, enc.len, "wrong", &back, errmsg), CMN_EBADPASSWORD);
    assert_int_equal(ca_key_from_pem(enc.data, enc.len, NULL, &back, errmsg), CMN_EBADPASSWORD);
    assert_non_null(strstr(errmsg, "no password"));
    assert_int_equal(ca_key_from_pem(kat_pem, sizeof kat_pem - 1, NULL, &back, errmsg),
                     CMN_ENOTFOUND);
    plain.data[40] = '*';
    assert_int_equal(ca_key_from_pem(plain.data, plain.len, NULL, &back, errmsg), CMN_EMALFORMED);
    assert_null(back);
    cmn_buf_fini(&plain);
    cmn_buf_fini(&enc);
    EVP_PKEY_free(k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_type_names),
        cmocka_unit_test(test_key_generate),
        cmocka_unit_test(test_issue_ca_chain),
        cmocka_unit_test(test_issue_node),
        cmocka_unit_test(test_issue_client),
        cmocka_unit_test(test_issue_rejects),
        cmocka_unit_test(test_serial),
        cmocka_unit_test(test_validity_helpers),
        cmocka_unit_test(test_ident_known_answers),
        cmocka_unit_test(test_ident_second_path),
        cmocka_unit_test(test_issued_by),
        cmocka_unit_test(test_csr_issue),
        cmocka_unit_test(test_crl),
        cmocka_unit_test(test_base64),
        cmocka_unit_test(test_cert_loading),
        cmocka_unit_test(test_key_pem),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
