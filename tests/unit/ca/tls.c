/* ca/tls.c: the TLS policy every endpoint shares offers AEAD suites with ECDHE only. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/obj_mac.h>
#include <openssl/ssl.h>

#include "ca/tls.h"

static void check_ctx(const SSL_METHOD *method)
{
    SSL_CTX *ctx = SSL_CTX_new(method);
    assert_non_null(ctx);
    char errmsg[CMN_ERRMSG_SIZE] = "";
    assert_int_equal(ca_tls_policy(ctx, errmsg), 0);
    assert_int_equal(SSL_CTX_get_min_proto_version(ctx), TLS1_2_VERSION);
    STACK_OF(SSL_CIPHER) *list = SSL_CTX_get_ciphers(ctx);
    assert_non_null(list);
    int tls12 = 0, tls13 = 0;
    for (int i = 0; i < sk_SSL_CIPHER_num(list); i++) {
        const SSL_CIPHER *c = sk_SSL_CIPHER_value(list, i);
        const char *name = SSL_CIPHER_get_name(c);
        assert_true(SSL_CIPHER_is_aead(c)); /* no CBC, no SHA-1 MAC */
        assert_null(strstr(name, "CCM"));
        int kx = SSL_CIPHER_get_kx_nid(c);
        if (kx == NID_kx_any) { /* TLS 1.3: the group decides, and groups are curves only */
            tls13++;
        } else {
            assert_int_equal(kx, NID_kx_ecdhe); /* forward secrecy, no static RSA, no DHE */
            tls12++;
        }
    }
    assert_int_equal(tls12, 6);
    assert_int_equal(tls13, 3);
    SSL_CTX_free(ctx);
}

static void only_aead_suites_with_ecdhe(void **state)
{
    check_ctx(TLS_server_method());
    check_ctx(TLS_client_method());
    check_ctx(TLS_method());
}

static void every_named_suite_is_known(void **state)
{
    /* A typo in a list would silently drop a suite: each one must resolve on its own. */
    static const char *const suites[] = {
        "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
    };
    SSL_CTX *ctx = SSL_CTX_new(TLS_method());
    assert_non_null(ctx);
    for (size_t i = 0; i < sizeof suites / sizeof *suites; i++) {
        assert_non_null(strstr(CA_TLS12_SUITES, suites[i]));
        assert_int_equal(SSL_CTX_set_cipher_list(ctx, suites[i]), 1);
    }
    SSL_CTX_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(only_aead_suites_with_ecdhe),
        cmocka_unit_test(every_named_suite_is_known),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
