/* ca/tls.c: the TLS policy every endpoint shares offers AEAD suites with ECDHE only, and the
 * builder of each role (HTTPS server, Raft peer, client) sets what that role needs, checked by
 * handshakes over in-memory BIO pairs. */
#include <stdio.h>
#include <unistd.h>

#include <openssl/obj_mac.h>
#include <openssl/ssl.h>

#include "ca/tls.h"
#include "tests/unit/ca/fixture.h"

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

/* ---- the role builders ---- */

struct t_ident {
    struct t_pki pki;
    EVP_PKEY *key;
    X509 *cert;
    struct ca_tls_ident id;
};

static void t_ident_init(struct t_ident *t, enum ca_profile profile)
{
    t_pki_init(&t->pki);
    t->key = t_key(CA_KEY_EC_P256);
    t->cert = t_issue(profile, "node A", t->key, &t->pki.iss_signer);
    t->id = (struct ca_tls_ident){.cert = t->cert, .key = t->key, .chain = &t->pki.chain};
}

static void t_ident_fini(struct t_ident *t)
{
    X509_free(t->cert);
    EVP_PKEY_free(t->key);
    t_pki_fini(&t->pki);
}

/* Runs a handshake between a client of cctx and a server of sctx over a BIO pair. 1 when both
 * ends completed, 0 when either failed; *server_reason gets the server's OpenSSL reason. */
static int t_handshake(SSL_CTX *cctx, SSL_CTX *sctx, int *server_reason)
{
    SSL *c = SSL_new(cctx), *s = SSL_new(sctx);
    assert_non_null(c);
    assert_non_null(s);
    BIO *cb = NULL, *sb = NULL;
    assert_int_equal(BIO_new_bio_pair(&cb, 0, &sb, 0), 1);
    SSL_set_bio(c, cb, cb);
    SSL_set_bio(s, sb, sb);
    SSL_set_connect_state(c);
    SSL_set_accept_state(s);
    int cdone = 0, sdone = 0, failed = 0;
    *server_reason = 0;
    for (int i = 0; i < 100 && !failed && !(cdone && sdone); i++) {
        if (!cdone) {
            int r = SSL_do_handshake(c);
            if (r == 1)
                cdone = 1;
            else if (SSL_get_error(c, r) != SSL_ERROR_WANT_READ)
                failed = 1;
            ERR_clear_error();
        }
        if (!sdone && !failed) {
            int r = SSL_do_handshake(s);
            if (r == 1) {
                sdone = 1;
            } else if (SSL_get_error(s, r) != SSL_ERROR_WANT_READ) {
                *server_reason = ERR_GET_REASON(ERR_peek_last_error());
                failed = 1;
            }
            ERR_clear_error();
        }
    }
    /* TLS 1.3: the client finishes first, the server's verdict on its certificate comes next. */
    if (cdone && !sdone && !failed) {
        int r = SSL_do_handshake(s);
        if (r != 1)
            *server_reason = ERR_GET_REASON(ERR_peek_last_error());
        sdone = r == 1;
        ERR_clear_error();
    }
    SSL_free(c);
    SSL_free(s);
    return cdone && sdone && !failed;
}

/* A plain client with the given version range and TLS 1.2 cipher list, no verification. */
static SSL_CTX *t_client(int min, int max, const char *ciphers, const struct ca_tls_ident *id)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(ctx);
    SSL_CTX_set_security_level(ctx, 0); /* so that refusing old versions is the server's doing */
    assert_int_equal(SSL_CTX_set_min_proto_version(ctx, min), 1);
    assert_int_equal(SSL_CTX_set_max_proto_version(ctx, max), 1);
    if (ciphers)
        assert_int_equal(SSL_CTX_set_cipher_list(ctx, ciphers), 1);
    if (id) {
        assert_int_equal(SSL_CTX_use_certificate(ctx, id->cert), 1);
        assert_int_equal(SSL_CTX_use_PrivateKey(ctx, id->key), 1);
    }
    return ctx;
}

static void server_ctx_settings(void **state)
{
    struct t_ident t;
    t_ident_init(&t, CA_PROFILE_NODE);
    SSL_CTX *ctx = NULL;
    char errmsg[CMN_ERRMSG_SIZE] = "";
    assert_int_equal(ca_tls_server_ctx(&t.id, &ctx, errmsg), 0);
    assert_non_null(ctx);
    assert_int_equal(SSL_CTX_get_min_proto_version(ctx), TLS1_2_VERSION);
    assert_true(SSL_CTX_get_options(ctx) & SSL_OP_CLEANSE_PLAINTEXT);
    assert_true(SSL_CTX_get_mode(ctx) & SSL_MODE_RELEASE_BUFFERS);
    assert_int_equal(SSL_CTX_get_verify_mode(ctx), SSL_VERIFY_PEER); /* asked, not required */
    assert_non_null(SSL_CTX_get_verify_callback(ctx));
    STACK_OF(X509) *chain = NULL;
    assert_int_equal(SSL_CTX_get0_chain_certs(ctx, &chain), 1);
    assert_int_equal(sk_X509_num(chain), 2);
    SSL_CTX_free(ctx);
    t_ident_fini(&t);
}

static void server_ctx_handshakes(void **state)
{
    struct t_ident t, stranger;
    t_ident_init(&t, CA_PROFILE_NODE);
    t_ident_init(&stranger, CA_PROFILE_CLIENT); /* another PKI: its chain verifies nowhere */
    SSL_CTX *sctx = NULL;
    char errmsg[CMN_ERRMSG_SIZE] = "";
    assert_int_equal(ca_tls_server_ctx(&t.id, &sctx, errmsg), 0);
    int why;
    /* TLS 1.2 and 1.3, with or without a client certificate of any chain. */
    SSL_CTX *c = t_client(TLS1_2_VERSION, TLS1_2_VERSION, NULL, NULL);
    assert_int_equal(t_handshake(c, sctx, &why), 1);
    SSL_CTX_free(c);
    c = t_client(TLS1_3_VERSION, TLS1_3_VERSION, NULL, &stranger.id);
    assert_int_equal(t_handshake(c, sctx, &why), 1);
    SSL_CTX_free(c);
    /* TLS 1.1 is refused by the server. */
    c = t_client(TLS1_1_VERSION, TLS1_1_VERSION, "ALL:@SECLEVEL=0", NULL);
    assert_int_equal(t_handshake(c, sctx, &why), 0);
    assert_int_equal(why, SSL_R_UNSUPPORTED_PROTOCOL);
    SSL_CTX_free(c);
    /* So are CBC suites and static RSA in TLS 1.2, and finite-field DHE. */
    static const char *const refused[] = {"ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA384",
                                          "ECDHE-ECDSA-AES128-CCM"};
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
        c = t_client(TLS1_2_VERSION, TLS1_2_VERSION, refused[i], NULL);
        assert_int_equal(t_handshake(c, sctx, &why), 0);
        assert_int_equal(why, SSL_R_NO_SHARED_CIPHER);
        SSL_CTX_free(c);
    }
    SSL_CTX_free(sctx);
    t_ident_fini(&stranger);
    t_ident_fini(&t);
}

static void peer_ctx_is_tls13_with_a_certificate(void **state)
{
    struct t_ident t;
    t_ident_init(&t, CA_PROFILE_NODE);
    SSL_CTX *pctx = NULL;
    char errmsg[CMN_ERRMSG_SIZE] = "";
    assert_int_equal(ca_tls_peer_ctx(&t.id, &pctx, errmsg), 0);
    assert_int_equal(SSL_CTX_get_min_proto_version(pctx), TLS1_3_VERSION);
    assert_int_equal(SSL_CTX_get_verify_mode(pctx),
                     SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT);
    assert_int_equal(SSL_CTX_get_num_tickets(pctx), 0);
    assert_int_equal(SSL_CTX_get_session_cache_mode(pctx), SSL_SESS_CACHE_OFF);
    int why;
    /* Two peers: both ends are the same context, as in the Raft transport. */
    assert_int_equal(t_handshake(pctx, pctx, &why), 1);
    /* TLS 1.2 is refused. */
    SSL_CTX *c = t_client(TLS1_2_VERSION, TLS1_2_VERSION, NULL, &t.id);
    assert_int_equal(t_handshake(c, pctx, &why), 0);
    assert_int_equal(why, SSL_R_UNSUPPORTED_PROTOCOL);
    SSL_CTX_free(c);
    /* A peer without a certificate is refused. */
    c = t_client(TLS1_3_VERSION, TLS1_3_VERSION, NULL, NULL);
    assert_int_equal(t_handshake(c, pctx, &why), 0);
    assert_int_equal(why, SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE);
    SSL_CTX_free(c);
    SSL_CTX_free(pctx);
    t_ident_fini(&t);
}

static void builders_refuse_a_key_of_another_certificate(void **state)
{
    struct t_ident t;
    t_ident_init(&t, CA_PROFILE_NODE);
    EVP_PKEY *other = t_key(CA_KEY_EC_P256);
    struct ca_tls_ident bad = {.cert = t.cert, .key = other, .chain = NULL};
    SSL_CTX *ctx = (SSL_CTX *)1;
    char errmsg[CMN_ERRMSG_SIZE] = "";
    assert_int_equal(ca_tls_server_ctx(&bad, &ctx, errmsg), CMN_ECRYPTO);
    assert_null(ctx);
    assert_non_null(strstr(errmsg, "cannot use the server certificate"));
    assert_int_equal(ca_tls_peer_ctx(&bad, &ctx, errmsg), CMN_ECRYPTO);
    assert_non_null(strstr(errmsg, "cannot use the node certificate"));
    struct ca_tls_client_opts o = {.trust = CA_TLS_TRUST_NONE, .id = bad};
    assert_int_equal(ca_tls_client_ctx(&o, &ctx, errmsg), CMN_ECRYPTO);
    assert_null(ctx);
    assert_non_null(strstr(errmsg, "cannot use the client certificate"));
    struct ca_tls_ident none = {0};
    assert_int_equal(ca_tls_server_ctx(&none, &ctx, errmsg), CMN_EINVALID);
    EVP_PKEY_free(other);
    t_ident_fini(&t);
}

static void client_ctx_options(void **state)
{
    struct t_ident t;
    t_ident_init(&t, CA_PROFILE_NODE);
    SSL_CTX *ctx = NULL;
    char errmsg[CMN_ERRMSG_SIZE] = "";
    /* The CLI's: verified against a CA file, a client certificate, EOF without close_notify. */
    char path[] = "/tmp/corvid-tls-test-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_X509(f, t.pki.root), 1);
    fclose(f);
    struct ca_tls_client_opts o = {
        .trust = CA_TLS_TRUST_FILE, .ca_file = path, .id = t.id, .flags = CA_TLS_LENIENT_EOF};
    assert_int_equal(ca_tls_client_ctx(&o, &ctx, errmsg), 0);
    assert_int_equal(SSL_CTX_get_min_proto_version(ctx), TLS1_2_VERSION);
    assert_int_equal(SSL_CTX_get_verify_mode(ctx), SSL_VERIFY_PEER);
    assert_true(SSL_CTX_get_options(ctx) & SSL_OP_IGNORE_UNEXPECTED_EOF);
    assert_false(SSL_CTX_get_options(ctx) & SSL_OP_NO_TICKET);
    assert_true(SSL_CTX_get_mode(ctx) & SSL_MODE_AUTO_RETRY);
    assert_false(SSL_CTX_get_mode(ctx) & SSL_MODE_ENABLE_PARTIAL_WRITE);
    assert_int_equal(X509_STORE_get0_objects(SSL_CTX_get_cert_store(ctx)) != NULL, 1);
    assert_int_equal(sk_X509_OBJECT_num(X509_STORE_get0_objects(SSL_CTX_get_cert_store(ctx))), 1);
    SSL_CTX_free(ctx);
    unlink(path);
    /* The benchmark's: poll loops, full handshakes, no verification. */
    o = (struct ca_tls_client_opts){.trust = CA_TLS_TRUST_NONE,
                                    .flags = CA_TLS_PARTIAL_WRITES | CA_TLS_NO_RESUMPTION |
                                             CA_TLS_READ_AHEAD};
    assert_int_equal(ca_tls_client_ctx(&o, &ctx, errmsg), 0);
    assert_int_equal(SSL_CTX_get_verify_mode(ctx), SSL_VERIFY_NONE);
    assert_true(SSL_CTX_get_mode(ctx) & SSL_MODE_ENABLE_PARTIAL_WRITE);
    assert_true(SSL_CTX_get_mode(ctx) & SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    assert_true(SSL_CTX_get_options(ctx) & SSL_OP_NO_TICKET);
    assert_int_equal(SSL_CTX_get_session_cache_mode(ctx), SSL_SESS_CACHE_OFF);
    assert_int_equal(SSL_CTX_get_read_ahead(ctx), 1);
    SSL_CTX_free(ctx);
    /* A missing CA file, or none given. */
    o = (struct ca_tls_client_opts){.trust = CA_TLS_TRUST_FILE, .ca_file = path};
    ctx = (SSL_CTX *)1;
    assert_int_equal(ca_tls_client_ctx(&o, &ctx, errmsg), CMN_ECRYPTO);
    assert_null(ctx);
    assert_non_null(strstr(errmsg, "cannot load the CA file /tmp/corvid-tls-test-"));
    o.ca_file = NULL;
    assert_int_equal(ca_tls_client_ctx(&o, &ctx, errmsg), CMN_EINVALID);
    t_ident_fini(&t);
}

static void client_ctx_verifies_the_server(void **state)
{
    struct t_ident t, stranger;
    t_ident_init(&t, CA_PROFILE_NODE);
    t_ident_init(&stranger, CA_PROFILE_NODE);
    SSL_CTX *sctx = NULL, *cctx = NULL;
    char errmsg[CMN_ERRMSG_SIZE] = "";
    assert_int_equal(ca_tls_server_ctx(&t.id, &sctx, errmsg), 0);
    char path[] = "/tmp/corvid-tls-test-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_X509(f, stranger.pki.root), 1);
    fclose(f);
    /* A server whose chain is not under the CA file is refused (the fixture's certificates
     * are valid in 2024: check at T_NOW). */
    struct ca_tls_client_opts o = {.trust = CA_TLS_TRUST_FILE, .ca_file = path};
    assert_int_equal(ca_tls_client_ctx(&o, &cctx, errmsg), 0);
    X509_VERIFY_PARAM_set_time(SSL_CTX_get0_param(cctx), (time_t)T_NOW);
    int why;
    assert_int_equal(t_handshake(cctx, sctx, &why), 0);
    SSL_CTX_free(cctx);
    /* Pinned: no verdict in the handshake; the caller compares the certificate after. */
    o = (struct ca_tls_client_opts){.trust = CA_TLS_TRUST_PINNED, .id = stranger.id};
    assert_int_equal(ca_tls_client_ctx(&o, &cctx, errmsg), 0);
    assert_int_equal(t_handshake(cctx, sctx, &why), 1);
    SSL_CTX_free(cctx);
    /* Under its own root it verifies. */
    f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_X509(f, t.pki.root), 1);
    fclose(f);
    o = (struct ca_tls_client_opts){.trust = CA_TLS_TRUST_FILE, .ca_file = path};
    assert_int_equal(ca_tls_client_ctx(&o, &cctx, errmsg), 0);
    X509_VERIFY_PARAM_set_time(SSL_CTX_get0_param(cctx), (time_t)T_NOW);
    assert_int_equal(t_handshake(cctx, sctx, &why), 1);
    SSL_CTX_free(cctx);
    unlink(path);
    SSL_CTX_free(sctx);
    t_ident_fini(&stranger);
    t_ident_fini(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(only_aead_suites_with_ecdhe),
        cmocka_unit_test(every_named_suite_is_known),
        cmocka_unit_test(server_ctx_settings),
        cmocka_unit_test(server_ctx_handshakes),
        cmocka_unit_test(peer_ctx_is_tls13_with_a_certificate),
        cmocka_unit_test(builders_refuse_a_key_of_another_certificate),
        cmocka_unit_test(client_ctx_options),
        cmocka_unit_test(client_ctx_verifies_the_server),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
