/* ca/certfile.c: one loader for PKCS#12 and PEM, with the step that failed. */
#include <stdio.h>
#include <unistd.h>

#include "ca/certfile.h"
#include "tests/unit/ca/fixture.h"

struct t_files {
    struct t_pki pki;
    EVP_PKEY *key, *other;
    X509 *cert;
    struct cmn_buf pfx, pem, pem_key, certs_only;
};

static void t_files_init(struct t_files *t)
{
    memset(t, 0, sizeof *t);
    t_pki_init(&t->pki);
    t->key = t_key(CA_KEY_EC_P256);
    t->other = t_key(CA_KEY_EC_P256);
    t->cert = t_issue(CA_PROFILE_NODE, "node A", t->key, &t->pki.iss_signer);
    char errmsg[CMN_ERRMSG_SIZE] = "";
    assert_int_equal(ca_pfx_build(t->key, t->cert, &t->pki.chain, "pw", NULL, &t->pfx, errmsg), 0);
    /* PEM: the chain first, then the leaf, then the key: the leaf is found by its key. */
    assert_int_equal(ca_certs_to_pem(&t->pki.chain, &t->certs_only), 0);
    assert_int_equal(ca_cert_to_pem(t->cert, &t->certs_only), 0);
    assert_int_equal(cmn_buf_append(&t->pem, t->certs_only.data, t->certs_only.len), 0);
    assert_int_equal(ca_key_to_pem(t->key, "kpw", &t->pem_key, errmsg), 0);
    assert_int_equal(cmn_buf_append(&t->pem, t->pem_key.data, t->pem_key.len), 0);
}

static void t_files_fini(struct t_files *t)
{
    cmn_buf_fini(&t->pfx);
    cmn_buf_fini(&t->pem);
    cmn_buf_fini(&t->pem_key);
    cmn_buf_fini(&t->certs_only);
    X509_free(t->cert);
    EVP_PKEY_free(t->key);
    EVP_PKEY_free(t->other);
    t_pki_fini(&t->pki);
}

static void pkcs12_and_pem_alike(void **state)
{
    struct t_files t;
    t_files_init(&t);
    char errmsg[CMN_ERRMSG_SIZE] = "";
    struct ca_certfile f;
    enum ca_certfile_step step;
    const struct cmn_buf *inputs[] = {&t.pfx, &t.pem};
    const char *pws[] = {"pw", "kpw"};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(ca_certfile_parse(inputs[i]->data, inputs[i]->len, NULL, 0, pws[i],
                                           CA_CERTFILE_KEY, &f, &step, errmsg),
                         0);
        assert_int_equal(f.pfx, i == 0);
        assert_int_equal(f.certs.n, 3);
        assert_int_equal(X509_cmp(f.leaf, t.cert), 0);
        assert_int_equal(EVP_PKEY_eq(f.key, t.key), 1);
        struct ca_cert_list chain;
        ca_cert_list_init(&chain);
        assert_int_equal(ca_certfile_chain(&f, &chain), 0);
        assert_int_equal(chain.n, 2);
        for (size_t k = 0; k < chain.n; k++)
            assert_int_not_equal(X509_cmp(chain.v[k], t.cert), 0);
        ca_cert_list_fini(&chain);
        ca_certfile_fini(&f);
    }
    /* The key from another file; without CA_CERTFILE_KEY no key is read. */
    assert_int_equal(ca_certfile_parse(t.certs_only.data, t.certs_only.len, t.pem_key.data,
                                       t.pem_key.len, "kpw", 0, &f, &step, errmsg),
                     0);
    assert_non_null(f.key);
    ca_certfile_fini(&f);
    assert_int_equal(ca_certfile_parse(t.pem.data, t.pem.len, NULL, 0, NULL, 0, &f, &step, errmsg),
                     0);
    assert_null(f.key);
    assert_int_equal(X509_cmp(f.leaf, t.pki.chain.v[0]), 0); /* no key: the first */
    ca_certfile_fini(&f);
    t_files_fini(&t);
}

static void each_failure_names_its_step(void **state)
{
    struct t_files t;
    t_files_init(&t);
    char errmsg[CMN_ERRMSG_SIZE] = "";
    struct ca_certfile f;
    enum ca_certfile_step step;
    assert_int_equal(
        ca_certfile_parse(t.pfx.data, t.pfx.len, NULL, 0, "wrong", 0, &f, &step, errmsg),
        CMN_EBADPASSWORD);
    assert_int_equal(step, CA_CERTFILE_PKCS12);
    assert_int_equal(ca_certfile_parse(t.pem.data, t.pem.len, NULL, 0, "wrong", CA_CERTFILE_KEY, &f,
                                       &step, errmsg),
                     CMN_EBADPASSWORD);
    assert_int_equal(step, CA_CERTFILE_KEYREAD);
    assert_int_equal(ca_certfile_parse(t.certs_only.data, t.certs_only.len, NULL, 0, NULL,
                                       CA_CERTFILE_KEY, &f, &step, errmsg),
                     CMN_ENOTFOUND);
    assert_int_equal(step, CA_CERTFILE_NOKEY);
    struct cmn_buf k;
    cmn_buf_init(&k, true);
    assert_int_equal(ca_key_to_pem(t.other, NULL, &k, errmsg), 0);
    assert_int_equal(ca_certfile_parse(t.certs_only.data, t.certs_only.len, k.data, k.len, NULL, 0,
                                       &f, &step, errmsg),
                     CMN_EINVALID);
    assert_int_equal(step, CA_CERTFILE_MISMATCH);
    assert_non_null(strstr(errmsg, "matches none"));
    cmn_buf_fini(&k);
    assert_int_not_equal(ca_certfile_parse("garbage", 7, NULL, 0, NULL, 0, &f, &step, errmsg), 0);
    assert_int_equal(step, CA_CERTFILE_CERTS);
    /* PKCS#12 only: PEM fails as ca_pfx_parse fails on it. */
    assert_int_not_equal(
        ca_certfile_parse(t.pem.data, t.pem.len, NULL, 0, NULL, CA_CERTFILE_PFX, &f, &step, errmsg),
        0);
    assert_int_equal(step, CA_CERTFILE_PKCS12);
    /* A certificate-only PKCS#12 where a key is required. */
    struct cmn_buf coll;
    cmn_buf_init(&coll, false);
    assert_int_equal(ca_pfx_build_collection(&t.pki.chain, &coll, errmsg), 0);
    assert_int_equal(
        ca_certfile_parse(coll.data, coll.len, NULL, 0, NULL, CA_CERTFILE_KEY, &f, &step, errmsg),
        CMN_ENOTFOUND);
    assert_int_equal(step, CA_CERTFILE_NOKEY);
    cmn_buf_fini(&coll);
    t_files_fini(&t);
}

static void load_reads_files(void **state)
{
    struct t_files t;
    t_files_init(&t);
    char errmsg[CMN_ERRMSG_SIZE] = "";
    struct ca_certfile f;
    enum ca_certfile_step step;
    char path[] = "/tmp/corvid-certfile-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, t.pfx.data, t.pfx.len), (ssize_t)t.pfx.len);
    close(fd);
    assert_int_equal(
        ca_certfile_load(path, NULL, "pw", CA_CERTFILE_PFX | CA_CERTFILE_KEY, &f, &step, errmsg),
        0);
    assert_true(f.pfx);
    ca_certfile_fini(&f);
    unlink(path);
    assert_int_equal(ca_certfile_load(path, NULL, "pw", 0, &f, &step, errmsg), CMN_EIO);
    assert_int_equal(step, CA_CERTFILE_READ);
    assert_non_null(strstr(errmsg, "cannot read /tmp/corvid-certfile-"));
    t_files_fini(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pkcs12_and_pem_alike),
        cmocka_unit_test(each_failure_names_its_step),
        cmocka_unit_test(load_reads_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
