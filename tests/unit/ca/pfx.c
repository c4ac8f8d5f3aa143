/* Unit tests of ca/: PKCS#12 building and parsing (hostile input included) and the zip bundle. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include "tests/unit/ca/fixture.h"

#include <stdio.h>
#include <stdlib.h>

#include <openssl/pkcs12.h>
#include <openssl/provider.h>
#include <zip.h>

struct leaf {
    struct t_pki pki;
    EVP_PKEY *key;
    X509 *cert;
};

static int setup_leaf(void **state)
{
    struct leaf *l = calloc(1, sizeof *l);
    t_pki_init(&l->pki);
    l->key = t_key(CA_KEY_EC_P256);
    l->cert = t_issue(CA_PROFILE_CLIENT, "client one", l->key, &l->pki.iss_signer);
    *state = l;
    return 0;
}

static int teardown_leaf(void **state)
{
    struct leaf *l = *state;
    X509_free(l->cert);
    EVP_PKEY_free(l->key);
    t_pki_fini(&l->pki);
    free(l);
    return 0;
}

static void build(struct leaf *l, const char *password, enum ca_pfx_scheme scheme, int iter,
                  struct cmn_buf *out)
{
    cmn_buf_init(out, false);
    struct ca_pfx_opts opts = {scheme, "client one", iter};
    char errmsg[CMN_ERRMSG_SIZE] = "";
    int rv = ca_pfx_build(l->key, l->cert, &l->pki.chain, password, &opts, out, errmsg);
    if (rv != 0)
        fail_msg("ca_pfx_build: %s", errmsg);
    assert_true(out->secret);
}

static void assert_parses(struct leaf *l, const struct cmn_buf *b, const char *password)
{
    struct ca_pfx pfx;
    char errmsg[CMN_ERRMSG_SIZE] = "";
    int rv = ca_pfx_parse(b->data, b->len, password, 0, &pfx, errmsg);
    if (rv != 0)
        fail_msg("ca_pfx_parse(%s): %d %s", password ? password : "NULL", rv, errmsg);
    assert_non_null(pfx.key);
    assert_int_equal(EVP_PKEY_eq(pfx.key, l->key), 1);
    assert_int_equal(pfx.certs.n, 3);
    assert_int_equal(pfx.leaf, 0);
    assert_int_equal(X509_cmp(ca_pfx_leaf(&pfx), l->cert), 0);
    assert_int_equal(X509_cmp(pfx.certs.v[1], l->pki.iss), 0);
    assert_int_equal(X509_cmp(pfx.certs.v[2], l->pki.root), 0);
    assert_non_null(pfx.friendly_name);
    assert_string_equal(pfx.friendly_name, "client one");
    ca_pfx_fini(&pfx);
}

static int parse_code(const struct cmn_buf *b, const char *password, unsigned flags, char *errmsg)
{
    struct ca_pfx pfx;
    int rv = ca_pfx_parse(b->data, b->len, password, flags, &pfx, errmsg);
    if (rv == 0)
        ca_pfx_fini(&pfx);
    else
        assert_null(pfx.key);
    return rv;
}

/* The algorithms actually written: key bag and certificate safe encryption, MAC digest. */
static void algorithms(const struct cmn_buf *b, int *key_alg, int *cert_alg, int *mac_md)
{
    const unsigned char *q = b->data;
    PKCS12 *p12 = d2i_PKCS12(NULL, &q, (long)b->len);
    assert_non_null(p12);
    const X509_ALGOR *macalg = NULL;
    PKCS12_get0_mac(NULL, &macalg, NULL, NULL, p12);
    assert_non_null(macalg);
    const ASN1_OBJECT *obj = NULL;
    X509_ALGOR_get0(&obj, NULL, NULL, macalg);
    *mac_md = OBJ_obj2nid(obj);
    *key_alg = *cert_alg = NID_undef;
    STACK_OF(PKCS7) *safes = PKCS12_unpack_authsafes(p12);
    for (int i = 0; i < sk_PKCS7_num(safes); i++) {
        PKCS7 *p7 = sk_PKCS7_value(safes, i);
        if (OBJ_obj2nid(p7->type) == NID_pkcs7_encrypted) {
            *cert_alg = OBJ_obj2nid(p7->d.encrypted->enc_data->algorithm->algorithm);
            if (*cert_alg == NID_pbes2) {
                PBE2PARAM *p2 = ASN1_TYPE_unpack_sequence(
                    ASN1_ITEM_rptr(PBE2PARAM), p7->d.encrypted->enc_data->algorithm->parameter);
                *cert_alg = OBJ_obj2nid(p2->encryption->algorithm);
                PBE2PARAM_free(p2);
            }
            continue;
        }
        STACK_OF(PKCS12_SAFEBAG) *bags = PKCS12_unpack_p7data(p7);
        for (int j = 0; j < sk_PKCS12_SAFEBAG_num(bags); j++) {
            PKCS12_SAFEBAG *bag = sk_PKCS12_SAFEBAG_value(bags, j);
            if (PKCS12_SAFEBAG_get_nid(bag) != NID_pkcs8ShroudedKeyBag)
                continue;
            const X509_ALGOR *alg = NULL;
            X509_SIG_get0(PKCS12_SAFEBAG_get0_pkcs8(bag), &alg, NULL);
            *key_alg = OBJ_obj2nid(alg->algorithm);
            if (*key_alg == NID_pbes2) {
                PBE2PARAM *p2 =
                    ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBE2PARAM), alg->parameter);
                *key_alg = OBJ_obj2nid(p2->encryption->algorithm);
                PBE2PARAM_free(p2);
            }
        }
        sk_PKCS12_SAFEBAG_pop_free(bags, PKCS12_SAFEBAG_free);
    }
    sk_PKCS7_pop_free(safes, PKCS7_free);
    PKCS12_free(p12);
}

static void test_pfx_modern_password(void **state)
{
    struct leaf *l = *state;
    struct cmn_buf b;
    build(l, "pa55 wörd", CA_PFX_MODERN, 0, &b);
    assert_parses(l, &b, "pa55 wörd");
    int key_alg, cert_alg, mac;
    algorithms(&b, &key_alg, &cert_alg, &mac);
    assert_int_equal(key_alg, NID_aes_256_cbc);
    assert_int_equal(cert_alg, NID_aes_256_cbc);
    assert_int_equal(mac, NID_sha256);
    assert_true(ca_pfx_sniff(b.data, b.len));

    char errmsg[CMN_ERRMSG_SIZE] = "";
    assert_int_equal(parse_code(&b, "wrong", 0, errmsg), CMN_EBADPASSWORD);
    assert_non_null(strstr(errmsg, "wrong password"));
    assert_int_equal(parse_code(&b, NULL, 0, errmsg), CMN_EBADPASSWORD);
    assert_non_null(strstr(errmsg, "password is required"));
    assert_int_equal(parse_code(&b, "", 0, errmsg), CMN_EBADPASSWORD);
    cmn_buf_fini(&b);
}

static void test_pfx_no_password(void **state)
{
    struct leaf *l = *state;
    struct cmn_buf b;
    build(l, NULL, CA_PFX_MODERN, 0, &b);
    assert_parses(l, &b, NULL);
    assert_parses(l, &b, "");
    char errmsg[CMN_ERRMSG_SIZE] = "";
    assert_int_equal(parse_code(&b, "unexpected", 0, errmsg), CMN_EBADPASSWORD);
    cmn_buf_fini(&b);
    build(l, "", CA_PFX_MODERN, 0, &b); /* "" is the same as no password */
    assert_parses(l, &b, NULL);
    cmn_buf_fini(&b);
}

static void test_pfx_legacy(void **state)
{
    struct leaf *l = *state;
    struct cmn_buf b;
    build(l, "legacy", CA_PFX_LEGACY, 0, &b);
    assert_parses(l, &b, "legacy");
    int key_alg, cert_alg, mac;
    algorithms(&b, &key_alg, &cert_alg, &mac);
    assert_int_equal(key_alg, NID_pbe_WithSHA1And3_Key_TripleDES_CBC);
    assert_int_equal(cert_alg, NID_pbe_WithSHA1And3_Key_TripleDES_CBC);
    assert_int_equal(mac, NID_sha1);
    char errmsg[CMN_ERRMSG_SIZE] = "";
    assert_int_equal(parse_code(&b, "Legacy", 0, errmsg), CMN_EBADPASSWORD);
    cmn_buf_fini(&b);
    build(l, NULL, CA_PFX_LEGACY, 0, &b);
    assert_parses(l, &b, NULL);
    cmn_buf_fini(&b);
}

static void test_pfx_build_rejects(void **state)
{
    struct leaf *l = *state;
    struct cmn_buf b;
    cmn_buf_init(&b, false);
    char errmsg[CMN_ERRMSG_SIZE] = "";
    assert_int_equal(ca_pfx_build(l->pki.iss_key, l->cert, NULL, NULL, NULL, &b, errmsg),
                     CMN_EINVALID);
    assert_non_null(strstr(errmsg, "does not match"));
    assert_int_equal(ca_pfx_build(NULL, l->cert, NULL, NULL, NULL, &b, errmsg), CMN_EINVALID);
    struct ca_pfx_opts bad = {(enum ca_pfx_scheme)9, NULL, 0};
    assert_int_equal(ca_pfx_build(l->key, l->cert, NULL, NULL, &bad, &b, errmsg), CMN_EINVALID);
    struct ca_pfx_opts iter = {CA_PFX_MODERN, NULL, -1};
    assert_int_equal(ca_pfx_build(l->key, l->cert, NULL, NULL, &iter, &b, errmsg), CMN_EINVALID);
    struct ca_cert_list empty;
    ca_cert_list_init(&empty);
    assert_int_equal(ca_pfx_build_collection(&empty, &b, errmsg), CMN_EINVALID);
    assert_int_equal(b.len, 0);
    /* without a chain and with defaults */
    assert_int_equal(ca_pfx_build(l->key, l->cert, NULL, "x", NULL, &b, errmsg), 0);
    struct ca_pfx pfx;
    assert_int_equal(ca_pfx_parse(b.data, b.len, "x", 0, &pfx, errmsg), 0);
    assert_int_equal(pfx.certs.n, 1);
    assert_null(pfx.friendly_name);
    ca_pfx_fini(&pfx);
    cmn_buf_fini(&b);
}

/* Every truncation of a PFX is refused as malformed; every single-bit flip is refused or
 * parsed, never a crash or a leak. */
static void test_pfx_corrupt(void **state)
{
    struct leaf *l = *state;
    struct cmn_buf b;
    build(l, "pw", CA_PFX_MODERN, 1, &b);
    char errmsg[CMN_ERRMSG_SIZE];
    for (size_t n = 0; n < b.len; n++) {
        struct ca_pfx pfx;
        errmsg[0] = '\0';
        int rv = ca_pfx_parse(b.data, n, "pw", 0, &pfx, errmsg);
        if (rv != CMN_EMALFORMED)
            fail_msg("truncated to %zu: %d %s", n, rv, errmsg);
        assert_true(errmsg[0] != '\0');
    }
    struct cmn_buf trailing;
    cmn_buf_init(&trailing, false);
    assert_int_equal(cmn_buf_append(&trailing, b.data, b.len), 0);
    assert_int_equal(cmn_buf_append(&trailing, "\0", 1), 0);
    assert_int_equal(parse_code(&trailing, "pw", 0, errmsg), CMN_EMALFORMED);
    cmn_buf_fini(&trailing);

    size_t counts[5] = {0};
    for (size_t i = 0; i < b.len; i++) {
        for (int bit = 0; bit < 8; bit += 3) {
            b.data[i] ^= (uint8_t)(1u << bit);
            int rv = parse_code(&b, "pw", 0, errmsg);
            b.data[i] ^= (uint8_t)(1u << bit);
            switch (rv) {
            case 0:
                counts[0]++;
                break;
            case CMN_EMALFORMED:
                counts[1]++;
                break;
            case CMN_EBADPASSWORD:
                counts[2]++;
                break;
            case CMN_EUNSUPPORTED:
                counts[3]++;
                break;
            case CMN_EINVALID:
                counts[4]++;
                break;
            default:
                fail_msg("flip at %zu bit %d: unexpected %d %s", i, bit, rv, errmsg);
            }
        }
    }
    /* a flip inside the MAC-protected contents reads as a wrong password */
    assert_true(counts[2] > 0);
    assert_true(counts[1] > 0);

    const char garbage[] = "this is not a pfx at all";
    struct ca_pfx pfx;
    assert_int_equal(ca_pfx_parse(garbage, sizeof garbage, NULL, 0, &pfx, errmsg), CMN_EMALFORMED);
    assert_false(ca_pfx_sniff(garbage, sizeof garbage));
    assert_false(ca_pfx_sniff(b.data, b.len - 1));
    size_t big = CA_INPUT_MAX + 1;
    uint8_t *huge = calloc(1, big);
    assert_int_equal(ca_pfx_parse(huge, big, NULL, 0, &pfx, errmsg), CMN_ETOOBIG);
    free(huge);
    cmn_buf_fini(&b);
}

/* A PFX assembled by hand from bags: lets tests make what the builder refuses to. */
static void raw_pfx(EVP_PKEY *key, X509 *cert, int mac_iter, struct cmn_buf *out)
{
    STACK_OF(PKCS12_SAFEBAG) *bags = NULL;
    if (cert != NULL)
        assert_non_null(PKCS12_add_cert(&bags, cert));
    if (key != NULL)
        assert_non_null(PKCS12_add_key(&bags, key, 0, 1, -1, NULL));
    STACK_OF(PKCS7) *safes = NULL;
    assert_non_null(PKCS12_add_safe(&safes, bags, -1, 0, NULL));
    PKCS12 *p12 = PKCS12_add_safes(safes, 0);
    assert_non_null(p12);
    assert_int_equal(PKCS12_set_mac(p12, "", -1, NULL, 0, mac_iter, EVP_sha256()), 1);
    unsigned char *der = NULL;
    int len = i2d_PKCS12(p12, &der);
    cmn_buf_init(out, false);
    assert_int_equal(cmn_buf_append(out, der, (size_t)len), 0);
    OPENSSL_free(der);
    PKCS12_free(p12);
    sk_PKCS7_pop_free(safes, PKCS7_free);
    sk_PKCS12_SAFEBAG_pop_free(bags, PKCS12_SAFEBAG_free);
}

static void test_pfx_structure_errors(void **state)
{
    struct leaf *l = *state;
    char errmsg[CMN_ERRMSG_SIZE] = "";
    struct cmn_buf b;
    /* a key and no certificate */
    raw_pfx(l->key, NULL, 1, &b);
    assert_int_equal(parse_code(&b, NULL, 0, errmsg), CMN_EINVALID);
    assert_non_null(strstr(errmsg, "no certificate"));
    cmn_buf_fini(&b);
    /* a key that belongs to none of the certificates */
    raw_pfx(l->pki.root_key, l->cert, 1, &b);
    assert_int_equal(parse_code(&b, NULL, 0, errmsg), CMN_EINVALID);
    assert_non_null(strstr(errmsg, "matches none"));
    cmn_buf_fini(&b);
    /* a plain (unshrouded) key bag is read too */
    raw_pfx(l->key, l->cert, 1, &b);
    struct ca_pfx pfx;
    assert_int_equal(ca_pfx_parse(b.data, b.len, NULL, 0, &pfx, errmsg), 0);
    assert_int_equal(pfx.leaf, 0);
    ca_pfx_fini(&pfx);
    cmn_buf_fini(&b);
    /* an iteration count beyond the work limit is refused before any work */
    raw_pfx(NULL, l->cert, CA_PFX_MAX_WORK + 1, &b);
    assert_int_equal(parse_code(&b, NULL, 0, errmsg), CMN_EUNSUPPORTED);
    assert_non_null(strstr(errmsg, "iterations"));
    cmn_buf_fini(&b);
}

static void test_pfx_collection(void **state)
{
    struct leaf *l = *state;
    struct ca_cert_list certs;
    ca_cert_list_init(&certs);
    EVP_PKEY *k2 = t_key(CA_KEY_EC_P256);
    X509 *c2 = t_issue(CA_PROFILE_NODE, "node", k2, &l->pki.iss_signer);
    assert_int_equal(ca_cert_list_add(&certs, l->cert), 0);
    assert_int_equal(ca_cert_list_push(&certs, c2), 0);
    assert_int_equal(ca_cert_list_add(&certs, l->pki.iss), 0);
    struct cmn_buf b;
    cmn_buf_init(&b, false);
    char errmsg[CMN_ERRMSG_SIZE] = "";
    assert_int_equal(ca_pfx_build_collection(&certs, &b, errmsg), 0);
    assert_null(memmem(b.data, b.len, "PRIVATE", 7));
    const char *passwords[] = {NULL, ""};
    for (size_t i = 0; i < 2; i++) {
        struct ca_pfx pfx;
        assert_int_equal(ca_pfx_parse(b.data, b.len, passwords[i], 0, &pfx, errmsg), 0);
        assert_null(pfx.key);
        assert_int_equal(pfx.leaf, -1);
        assert_int_equal(pfx.certs.n, 3);
        for (size_t j = 0; j < 3; j++)
            assert_int_equal(X509_cmp(pfx.certs.v[j], certs.v[j]), 0);
        assert_int_equal(X509_cmp(ca_pfx_leaf(&pfx), l->cert), 0);
        ca_pfx_fini(&pfx);
    }
    cmn_buf_fini(&b);
    ca_cert_list_fini(&certs);
    EVP_PKEY_free(k2);
}

/* RC2-40 certificate encryption, as old Windows exports: readable through the legacy provider
 * when it is installed, a clear CMN_EUNSUPPORTED when it is not allowed. */
static void test_pfx_rc2(void **state)
{
    struct leaf *l = *state;
    OSSL_LIB_CTX *lctx = OSSL_LIB_CTX_new();
    OSSL_PROVIDER *def = OSSL_PROVIDER_load(lctx, "default");
    OSSL_PROVIDER *leg = OSSL_PROVIDER_load(lctx, "legacy");
    ERR_clear_error();
    if (leg == NULL) {
        OSSL_PROVIDER_unload(def);
        OSSL_LIB_CTX_free(lctx);
        skip();
    }
    PKCS12 *p12 = PKCS12_create_ex("old", "rc2", l->key, l->cert, NULL,
                                   NID_pbe_WithSHA1And3_Key_TripleDES_CBC,
                                   NID_pbe_WithSHA1And40BitRC2_CBC, 2048, 2048, 0, lctx, NULL);
    assert_non_null(p12);
    unsigned char *der = NULL;
    int len = i2d_PKCS12(p12, &der);
    struct cmn_buf b;
    cmn_buf_init(&b, false);
    assert_int_equal(cmn_buf_append(&b, der, (size_t)len), 0);
    OPENSSL_free(der);
    PKCS12_free(p12);

    char errmsg[CMN_ERRMSG_SIZE] = "";
    struct ca_pfx pfx;
    int rv = ca_pfx_parse(b.data, b.len, "old", 0, &pfx, errmsg);
    if (rv != 0)
        fail_msg("RC2 PFX: %d %s", rv, errmsg);
    assert_int_equal(pfx.certs.n, 1);
    assert_int_equal(EVP_PKEY_eq(pfx.key, l->key), 1);
    ca_pfx_fini(&pfx);
    assert_int_equal(parse_code(&b, "old", CA_PFX_NO_LEGACY, errmsg), CMN_EUNSUPPORTED);
    assert_non_null(strstr(errmsg, "RC2-40-CBC"));
    assert_non_null(strstr(errmsg, "legacy provider"));
    /* the password is still checked first */
    assert_int_equal(parse_code(&b, "new", CA_PFX_NO_LEGACY, errmsg), CMN_EBADPASSWORD);
    cmn_buf_fini(&b);
    OSSL_PROVIDER_unload(leg);
    OSSL_PROVIDER_unload(def);
    OSSL_LIB_CTX_free(lctx);
}

/* ---------------------------------------------------------------- bundle */

static void test_bundle_safe_name(void **state)
{
    (void)state;
    char out[CA_BUNDLE_NAME_MAX + 1];
    const struct {
        const char *in, *out;
    } cases[] = {
        {"admin", "admin"},
        {"My/Name", "My_Name"},
        {"../../etc/passwd", "_.._etc_passwd"},
        {"..", "certificate"},
        {".", "certificate"},
        {"", "certificate"},
        {NULL, "certificate"},
        {"a:b*c?d\"e<f>g|h\\i", "a_b_c_d_e_f_g_h_i"},
        {"tab\there", "tab_here"},
        {"trailing. ", "trailing"},
        {"Zoë", "Zoë"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ca_bundle_safe_name(cases[i].in, out);
        assert_string_equal(out, cases[i].out);
    }
    char longname[300];
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    ca_bundle_safe_name(longname, out);
    assert_int_equal(strlen(out), CA_BUNDLE_NAME_MAX);
    /* cut before a multi-byte character that does not fit whole */
    memset(longname, 'n', 99);
    strcpy(longname + 99, "\xc3\xabtail");
    ca_bundle_safe_name(longname, out);
    assert_int_equal(strlen(out), 99);
}

static void read_entry(zip_t *za, zip_int64_t idx, struct cmn_buf *out)
{
    zip_stat_t st;
    assert_int_equal(zip_stat_index(za, (zip_uint64_t)idx, 0, &st), 0);
    zip_file_t *f = zip_fopen_index(za, (zip_uint64_t)idx, 0);
    assert_non_null(f);
    cmn_buf_init(out, true);
    assert_int_equal(cmn_buf_reserve(out, st.size + 1), 0);
    assert_int_equal(zip_fread(f, out->data, st.size), (zip_int64_t)st.size);
    out->len = st.size;
    out->data[out->len] = 0;
    zip_fclose(f);
}

static void check_bundle(struct leaf *l, const char *password)
{
    struct ca_bundle_in in = {.name = "ops/Team",
                              .cert = l->cert,
                              .key = l->key,
                              .chain = &l->pki.chain,
                              .password = password,
                              .mtime = T_NOW};
    struct cmn_buf zipb;
    cmn_buf_init(&zipb, false);
    char errmsg[CMN_ERRMSG_SIZE] = "";
    assert_int_equal(ca_bundle_zip(&in, &zipb, errmsg), 0);
    assert_true(zipb.secret);

    zip_error_t ze;
    zip_error_init(&ze);
    zip_source_t *src = zip_source_buffer_create(zipb.data, zipb.len, 0, &ze);
    assert_non_null(src);
    zip_t *za = zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &ze);
    assert_non_null(za);
    zip_error_fini(&ze);
    assert_int_equal(zip_get_num_entries(za, 0), 3);
    const char *names[] = {"ops_Team.pfx", "ops_Team.crt", "ops_Team.key"};
    struct cmn_buf data[3];
    for (size_t i = 0; i < 3; i++) {
        zip_int64_t idx = zip_name_locate(za, names[i], 0);
        assert_true(idx >= 0);
        zip_uint8_t opsys = 0;
        zip_uint32_t attr = 0;
        assert_int_equal(zip_file_get_external_attributes(za, (zip_uint64_t)idx, 0, &opsys, &attr),
                         0);
        assert_int_equal(opsys, ZIP_OPSYS_UNIX);
        assert_int_equal(attr >> 16, 0100600);
        zip_stat_t st;
        assert_int_equal(zip_stat_index(za, (zip_uint64_t)idx, 0, &st), 0);
        assert_int_equal((int64_t)st.mtime, T_NOW);
        read_entry(za, idx, &data[i]);
    }
    /* .pfx opens with the password */
    struct ca_pfx pfx;
    assert_int_equal(ca_pfx_parse(data[0].data, data[0].len, password, 0, &pfx, errmsg), 0);
    assert_int_equal(EVP_PKEY_eq(pfx.key, l->key), 1);
    assert_int_equal(pfx.certs.n, 3);
    assert_string_equal(pfx.friendly_name, "ops/Team");
    ca_pfx_fini(&pfx);
    /* .crt is the PEM certificate */
    X509 *x = NULL;
    assert_int_equal(ca_cert_from_bytes(data[1].data, data[1].len, &x, errmsg), 0);
    assert_int_equal(X509_cmp(x, l->cert), 0);
    X509_free(x);
    /* .key is encrypted exactly when a password was given */
    bool encrypted = strstr((char *)data[2].data, "-----BEGIN ENCRYPTED PRIVATE KEY-----") != NULL;
    bool plain = strstr((char *)data[2].data, "-----BEGIN PRIVATE KEY-----") != NULL;
    assert_int_equal(encrypted, password != NULL);
    assert_int_equal(plain, password == NULL);
    EVP_PKEY *k = NULL;
    assert_int_equal(ca_key_from_pem(data[2].data, data[2].len, password, &k, errmsg), 0);
    assert_int_equal(EVP_PKEY_eq(k, l->key), 1);
    EVP_PKEY_free(k);
    for (size_t i = 0; i < 3; i++)
        cmn_buf_fini(&data[i]);
    zip_close(za);
    cmn_buf_fini(&zipb);
}

static void test_bundle_zip(void **state)
{
    struct leaf *l = *state;
    check_bundle(l, "zip-pass");
    check_bundle(l, NULL);
    struct ca_bundle_in in = {.name = "x", .cert = l->cert, .key = NULL};
    struct cmn_buf b;
    cmn_buf_init(&b, false);
    assert_int_equal(ca_bundle_zip(&in, &b, NULL), CMN_EINVALID);
    in.key = l->pki.root_key; /* does not match */
    char errmsg[CMN_ERRMSG_SIZE] = "";
    assert_int_equal(ca_bundle_zip(&in, &b, errmsg), CMN_EINVALID);
    assert_int_equal(b.len, 0);
    cmn_buf_fini(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pfx_modern_password, setup_leaf, teardown_leaf),
        cmocka_unit_test_setup_teardown(test_pfx_no_password, setup_leaf, teardown_leaf),
        cmocka_unit_test_setup_teardown(test_pfx_legacy, setup_leaf, teardown_leaf),
        cmocka_unit_test_setup_teardown(test_pfx_build_rejects, setup_leaf, teardown_leaf),
        cmocka_unit_test_setup_teardown(test_pfx_corrupt, setup_leaf, teardown_leaf),
        cmocka_unit_test_setup_teardown(test_pfx_structure_errors, setup_leaf, teardown_leaf),
        cmocka_unit_test_setup_teardown(test_pfx_collection, setup_leaf, teardown_leaf),
        cmocka_unit_test_setup_teardown(test_pfx_rc2, setup_leaf, teardown_leaf),
        cmocka_unit_test(test_bundle_safe_name),
        cmocka_unit_test_setup_teardown(test_bundle_zip, setup_leaf, teardown_leaf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
