/* The shared TLS policy (versions, cipher suites and groups) and the SSL_CTX of each role. */
#include "ca/tls.h"

#include <stdio.h>

#include <openssl/err.h>

/* OpenSSL's reason for the last failure, and its queue cleared. */
static void reason(char *out, size_t n, const char *fallback)
{
    unsigned long e = ERR_peek_last_error();
    if (e != 0)
        ERR_error_string_n(e, out, n);
    else
        snprintf(out, n, "%s", fallback);
    ERR_clear_error();
}

int ca_tls_policy(SSL_CTX *ctx, char *errmsg)
{
    const char *what = NULL;
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1)
        what = "the lowest version";
    else if (SSL_CTX_set_cipher_list(ctx, CA_TLS12_SUITES) != 1)
        what = "the TLS 1.2 cipher suites";
    else if (SSL_CTX_set_ciphersuites(ctx, CA_TLS13_SUITES) != 1)
        what = "the TLS 1.3 cipher suites";
    else if (SSL_CTX_set1_groups_list(ctx, CA_TLS_GROUPS) != 1)
        what = "the key-exchange groups";
    if (what == NULL)
        return 0;
    char why[160];
    reason(why, sizeof why, "refused");
    return cmn_fail(errmsg, CMN_ECRYPTO, "TLS policy: cannot set %s: %s", what, why);
}

/* Server and peer contexts accept any chain: trust is decided after the handshake, by
 * registration (HTTPS) or by the node list (Raft), never by a chain alone. */
static int verify_any(int ok, X509_STORE_CTX *ctx)
{
    (void)ok;
    (void)ctx;
    return 1;
}

/* A context of method with the shared policy, or NULL and errmsg set. */
static SSL_CTX *ctx_new(const SSL_METHOD *method, int *rv, char *errmsg)
{
    SSL_CTX *ctx = SSL_CTX_new(method);
    if (ctx == NULL) {
        ERR_clear_error();
        *rv = cmn_fail(errmsg, CMN_ENOMEM, "cannot create a TLS context");
        return NULL;
    }
    *rv = ca_tls_policy(ctx, errmsg);
    if (*rv != 0) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

static int use_ident(SSL_CTX *ctx, const struct ca_tls_ident *id, const char *role, char *errmsg)
{
    if (id->cert == NULL || id->key == NULL)
        return cmn_fail(errmsg, CMN_EINVALID, "no %s certificate with its key", role);
    int ok = SSL_CTX_use_certificate(ctx, id->cert) == 1 &&
             SSL_CTX_use_PrivateKey(ctx, id->key) == 1 && SSL_CTX_check_private_key(ctx) == 1;
    for (size_t i = 0; ok && id->chain && i < id->chain->n; i++)
        ok = SSL_CTX_add1_chain_cert(ctx, id->chain->v[i]) == 1;
    if (ok)
        return 0;
    char why[160];
    reason(why, sizeof why, "refused");
    return cmn_fail(errmsg, CMN_ECRYPTO, "cannot use the %s certificate: %s", role, why);
}

int ca_tls_server_ctx(const struct ca_tls_ident *id, SSL_CTX **out, char *errmsg)
{
    *out = NULL;
    int rv;
    SSL_CTX *ctx = ctx_new(TLS_server_method(), &rv, errmsg);
    if (ctx == NULL)
        return rv;
    /* Request bodies carry passwords: OpenSSL wipes its copy of the plaintext once read. */
    SSL_CTX_set_options(ctx, SSL_OP_CLEANSE_PLAINTEXT);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, verify_any); /* asked for, not required */
    /* An idle keep-alive connection gives its record buffers back (about 34 KB): a thousand
     * of them open from one load balancer is normal. */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"corvid", 6) != 1)
        rv = cmn_fail(errmsg, CMN_ECRYPTO, "cannot set the session id context");
    if (rv == 0)
        rv = use_ident(ctx, id, "server", errmsg);
    if (rv != 0) {
        SSL_CTX_free(ctx);
        return rv;
    }
    *out = ctx;
    return 0;
}

int ca_tls_peer_ctx(const struct ca_tls_ident *id, SSL_CTX **out, char *errmsg)
{
    *out = NULL;
    int rv;
    SSL_CTX *ctx = ctx_new(TLS_method(), &rv, errmsg);
    if (ctx == NULL)
        return rv;
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1) /* only nodes speak Raft */
        rv = cmn_fail(errmsg, CMN_ECRYPTO, "cannot require TLS 1.3");
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, verify_any);
    if (rv == 0 && SSL_CTX_set_num_tickets(ctx, 0) != 1)
        rv = cmn_fail(errmsg, CMN_ECRYPTO, "cannot turn session tickets off");
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    if (rv == 0)
        rv = use_ident(ctx, id, "node", errmsg);
    if (rv != 0) {
        SSL_CTX_free(ctx);
        return rv;
    }
    *out = ctx;
    return 0;
}

static int client_trust(SSL_CTX *ctx, const struct ca_tls_client_opts *o, char *errmsg)
{
    if (o->trust == CA_TLS_TRUST_NONE || o->trust == CA_TLS_TRUST_PINNED) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
        return 0;
    }
    if (o->trust == CA_TLS_TRUST_FILE && o->ca_file == NULL)
        return cmn_fail(errmsg, CMN_EINVALID, "no CA file");
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    int ok = o->trust == CA_TLS_TRUST_FILE ? SSL_CTX_load_verify_locations(ctx, o->ca_file, NULL)
                                           : SSL_CTX_set_default_verify_paths(ctx);
    if (ok == 1)
        return 0;
    char why[160];
    reason(why, sizeof why, "unknown error");
    return cmn_fail(errmsg, CMN_ECRYPTO, "cannot load the CA file %s: %s",
                    o->trust == CA_TLS_TRUST_FILE ? o->ca_file : "(system default)", why);
}

int ca_tls_client_ctx(const struct ca_tls_client_opts *o, SSL_CTX **out, char *errmsg)
{
    *out = NULL;
    int rv;
    SSL_CTX *ctx = ctx_new(TLS_client_method(), &rv, errmsg);
    if (ctx == NULL)
        return rv;
    if (o->flags & CA_TLS_PARTIAL_WRITES)
        SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (o->flags & CA_TLS_LENIENT_EOF)
        SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    if (o->flags & CA_TLS_READ_AHEAD)
        SSL_CTX_set_read_ahead(ctx, 1);
    if (o->flags & CA_TLS_NO_RESUMPTION) {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    }
    rv = client_trust(ctx, o, errmsg);
    if (rv == 0 && o->id.cert != NULL)
        rv = use_ident(ctx, &o->id, "client", errmsg);
    /* SSL_CTX_set_alpn_protos is the one OpenSSL call that returns 0 on success. */
    if (rv == 0 && o->alpn != NULL && SSL_CTX_set_alpn_protos(ctx, o->alpn, o->alpn_len) != 0)
        rv = cmn_fail(errmsg, CMN_ECRYPTO, "cannot set ALPN");
    if (rv != 0) {
        SSL_CTX_free(ctx);
        return rv;
    }
    *out = ctx;
    return 0;
}
