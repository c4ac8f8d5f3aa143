/* The authentication verdict (node/auth.c, node_auth_compute) against a real core: node A of a
 * test core (tests/unit/support/testcore.h, its loop never run) and the clock passed in. The
 * verdict reads; it never changes the state. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "ca/ca.h"
#include "ca/certfile.h"
#include "common/env.h"
#include "node/auth.h"
#include "node/node.h"
#include "storage/cmd.h"
#include "tests/unit/support/testcore.h"

#define NOW TC_NOW /* inside every certificate's validity below */

/* An answer taken by an http_sink (node_auth_check's refusals). */
struct answer {
    int status;
    char body[1024];
};

static void sink_fn(void *ctx, struct http_request *req, int status, const char *content_type,
                    const void *body, size_t len, const char *extra_headers)
{
    struct answer *a = ctx;
    a->status = status;
    snprintf(a->body, sizeof a->body, "%.*s", (int)len, (const char *)body);
    (void)req, (void)content_type, (void)extra_headers;
}

static struct tc_core F;

static int setup(void **state)
{
    *state = &F;
    return tc_start(&F, "corvid-auth");
}

static int teardown(void **state)
{
    return tc_stop(&F);
}

/* The verdict at now, with the nth read of the trust state failing (0: none; *fired says
 * whether it did); the trust state is the same afterwards. */
static enum auth_status verdict_failing(X509 *x, int64_t now, struct node_auth *a, unsigned nth,
                                        bool *fired)
{
    uint8_t before[32], after[32];
    assert_int_equal(kv_state_hash(node_kv(F.n), before, NULL), 0);
    kv_fail_read_at(node_kv(F.n), nth);
    node_auth_compute(F.n, x, now, a);
    *fired = nth > 0 && kv_fail_read_at(node_kv(F.n), 0) == 0;
    assert_int_equal(kv_state_hash(node_kv(F.n), after, NULL), 0);
    assert_memory_equal(before, after, 32);
    return a->status;
}

static enum auth_status verdict(X509 *x, int64_t now, struct node_auth *a)
{
    bool fired;
    return verdict_failing(x, now, a, 0, &fired);
}

static void without_or_with_the_nodes_own(void **state)
{
    struct node_auth a = {0};
    assert_int_equal(verdict(NULL, NOW, &a), AUTH_NO_CERT);
    assert_int_equal(verdict(node_cert(F.n), NOW, &a), AUTH_CLUSTER_ADMIN);
    assert_string_equal(a.source, "Server Certificate");
    assert_false(a.registered);
    kv_cert_fini(&a.def);
}

static void registered_by_clearance(void **state)
{
    static const struct {
        enum kv_clearance cl;
        enum auth_status status;
    } cases[] = {{KV_CL_VALID_USER, AUTH_ALLOWED},
                 {KV_CL_OPERATOR, AUTH_OPERATOR},
                 {KV_CL_CLUSTER_ADMIN, AUTH_CLUSTER_ADMIN}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        EVP_PKEY *key = NULL;
        X509 *x = tc_client_cert(&F, &key, "user", NOW - 86400, NOW + 86400 * 30, false);
        struct node_auth a = {0};
        assert_int_equal(verdict(x, NOW, &a), AUTH_UNFAMILIAR); /* not registered yet */
        tc_register(&F, x, "user", cases[i].cl, NULL);
        assert_int_equal(verdict(x, NOW, &a), cases[i].status);
        assert_true(a.registered);
        assert_false(a.renewal);
        assert_int_equal(node_auth_clearance(&a), cases[i].cl);
        /* the clock decides validity: before NotBefore, after NotAfter */
        assert_int_equal(verdict(x, NOW - 2 * 86400, &a), AUTH_NOT_YET_VALID);
        assert_int_equal(verdict(x, NOW + 86400 * 31, &a), AUTH_EXPIRED);
        kv_cert_fini(&a.def);
        X509_free(x);
        EVP_PKEY_free(key);
    }
}

static void revoked_and_two_factor(void **state)
{
    EVP_PKEY *k1 = NULL, *k2 = NULL;
    X509 *x = tc_client_cert(&F, &k1, "gone", NOW - 86400, NOW + 86400 * 30, false);
    tc_register(&F, x, "gone", KV_CL_OPERATOR, NULL);
    struct node_auth a = {0};
    assert_int_equal(verdict(x, NOW, &a), AUTH_OPERATOR);
    tc_revoke(&F, x);
    assert_int_equal(verdict(x, NOW, &a), AUTH_REVOKED);
    assert_false(a.registered);
    X509 *t = tc_client_cert(&F, &k2, "2fa", NOW - 86400, NOW + 86400 * 30, false);
    tc_register(&F, t, "2fa", KV_CL_CLUSTER_ADMIN, "JBSWY3DPEHPK3PXP");
    assert_int_equal(verdict(t, NOW, &a), AUTH_TWO_FACTOR); /* no session */
    kv_cert_fini(&a.def);
    X509_free(x);
    X509_free(t);
    EVP_PKEY_free(k1);
    EVP_PKEY_free(k2);
}

/* A two-factor session: the real clearance until it ends (by the clock passed in); the cookie
 * of a session with limits on every request that needs more than NEED_NONE; and the node's own
 * certificate needs no second factor even when a registration of it has a key. */
static void two_factor_session(void **state)
{
    /* node_auth_check reads the wall clock: the session is set up around whichever is later */
    const int64_t T = time(NULL) > NOW ? (int64_t)time(NULL) : NOW;
    EVP_PKEY *k = NULL;
    X509 *x = tc_client_cert(&F, &k, "totp", T - 86400, T + 86400 * 30, false);
    tc_register(&F, x, "totp", KV_CL_OPERATOR, "JBSWY3DPEHPK3PXP");
    struct node_auth a = {0};
    assert_int_equal(verdict(x, T, &a), AUTH_TWO_FACTOR);
    struct kv_cmd c;
    kv_cmd_init(&c, KV_CMD_TWOFA_LOGIN);
    memcpy(c.actor, a.thumb, sizeof c.actor);
    memcpy(c.u.twofa.thumbprint, a.thumb, sizeof c.u.twofa.thumbprint);
    c.actor_registered = true;
    c.u.twofa.step = 1;
    c.u.twofa.expires_ms = (int64_t)T * 1000 + 60000;
    c.u.twofa.has_limits = true;
    unsigned len = 0;
    assert_int_equal(EVP_Digest("c00k1e", 6, c.u.twofa.cookie_hash, &len, EVP_sha256(), NULL), 1);
    tc_apply(&F, &c);
    assert_int_equal(verdict(x, T, &a), AUTH_OPERATOR);
    assert_int_equal(a.twofa_expires_ms, (int64_t)T * 1000 + 60000);
    assert_true(a.twofa_limits);
    assert_int_equal(verdict(x, T + 59, &a), AUTH_OPERATOR);
    assert_int_equal(verdict(x, T + 60, &a), AUTH_TWO_FACTOR); /* expired */

    /* The cookie, request by request (by the wall clock the session holds). */
    assert_int_equal(verdict(x, T, &a), AUTH_OPERATOR);
    static const struct {
        const char *cookie;
        bool ok;
        const char *message;
    } cases[] = {
        {"2fa-cookie=c00k1e", true, NULL},
        {"theme=dark; 2fa-cookie=c00k1e; x=1", true, NULL},
        {"", false, "Missing the '2fa-cookie' in the request"},
        {"2fa-cookie=c00k1f", false, "Expected cookie value does not match provided value"},
        {"2fa-cookie=", false, "Expected cookie value does not match provided value"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct answer ans = {0};
        struct http_sink sink = {sink_fn, &ans};
        struct http_request req = {.sink = &sink};
        snprintf(req.cookie, sizeof req.cookie, "%s", cases[i].cookie);
        assert_true(node_auth_check(F.n, &req, &a, NEED_NONE)); /* never asked there */
        assert_int_equal(node_auth_check(F.n, &req, &a, NEED_OPERATOR), cases[i].ok);
        if (!cases[i].ok) {
            assert_int_equal(ans.status, 428);
            assert_non_null(strstr(ans.body, cases[i].message));
        }
    }

    /* the node's own certificate, registered with a key: still the node */
    tc_register(&F, node_cert(F.n), "me", KV_CL_CLUSTER_NODE, "JBSWY3DPEHPK3PXP");
    assert_int_equal(verdict(node_cert(F.n), T, &a), AUTH_CLUSTER_ADMIN);
    tc_revoke(&F, x);
    kv_cert_fini(&a.def);
    X509_free(x);
    EVP_PKEY_free(k);
}

/* A new certificate for the key of a current registration, from the same CA, is its renewal:
 * allowed with the old one's settings, and to be registered by the caller (a->renewal); the
 * same key in a certificate anyone could make (self-signed) is not. */
static void renewal_by_pinning_hash(void **state)
{
    EVP_PKEY *key = NULL;
    X509 *old = tc_client_cert(&F, &key, "app", NOW - 86400, NOW + 86400 * 30, false);
    tc_register(&F, old, "app", KV_CL_OPERATOR, NULL);
    X509 *renewed = tc_client_cert(&F, &key, "app", NOW - 3600, NOW + 86400 * 400, false);
    struct node_auth a = {0};
    assert_int_equal(verdict(renewed, NOW, &a), AUTH_OPERATOR);
    assert_true(a.renewal);
    assert_string_equal(a.def.name, "app");
    char tp[CA_THUMBPRINT_SIZE];
    assert_int_equal(ca_thumbprint(renewed, tp), 0);
    assert_int_equal(strcasecmp(a.def.thumbprint, tp), 0);
    X509 *forged = tc_client_cert(&F, &key, "app", NOW - 3600, NOW + 86400 * 400, true);
    assert_int_equal(verdict(forged, NOW, &a), AUTH_UNFAMILIAR_ISSUER);
    assert_false(a.renewal);
    /* once the old registration is revoked, its key is: no renewal of it either */
    tc_revoke(&F, old);
    assert_int_equal(verdict(renewed, NOW, &a), AUTH_UNFAMILIAR);
    kv_cert_fini(&a.def);
    X509_free(old);
    X509_free(renewed);
    X509_free(forged);
    EVP_PKEY_free(key);
}

/* Fail closed: whichever read of the trust state fails during a verdict (the N-th, for
 * N = 1, 2, … until none is left to fail), the verdict grants no more than the clean one, and
 * refuses when the certificate's own registration or revocation cannot be read; once no read
 * fails, it is the clean one. */
static void read_failures_refuse(void **state)
{
    EVP_PKEY *ku = NULL, *kr = NULL, *kn = NULL;
    X509 *user = tc_client_cert(&F, &ku, "reader", NOW - 86400, NOW + 86400 * 30, false);
    tc_register(&F, user, "reader", KV_CL_CLUSTER_ADMIN, NULL);
    X509 *rev = tc_client_cert(&F, &kr, "revoked", NOW - 86400, NOW + 86400 * 30, false);
    tc_register(&F, rev, "revoked", KV_CL_OPERATOR, NULL);
    tc_revoke(&F, rev);
    X509 *old = tc_client_cert(&F, &kn, "old", NOW - 86400, NOW + 86400 * 30, false);
    tc_register(&F, old, "old", KV_CL_OPERATOR, NULL);
    X509 *renewed = tc_client_cert(&F, &kn, "old", NOW - 60, NOW + 86400 * 60, false);
    X509 *certs[] = {user, rev, renewed};
    static const enum auth_status clean[] = {AUTH_CLUSTER_ADMIN, AUTH_REVOKED, AUTH_OPERATOR};
    for (size_t c = 0; c < 3; c++) {
        for (unsigned nth = 1;; nth++) {
            struct node_auth a = {0};
            bool fired;
            enum auth_status got = verdict_failing(certs[c], NOW, &a, nth, &fired);
            kv_cert_fini(&a.def);
            if (!fired) { /* past the last read: the clean verdict */
                assert_int_equal(got, clean[c]);
                assert_true(nth > 1);
                break;
            }
            /* never more than the clean verdict (a read that fails can only take trust away:
             * the renewal above may still be allowed by Security.ClusterCA when the trust
             * state's copy of the CA cannot be read), and the registration or revocation
             * lookup failing (the first read) refuses */
            bool more = got >= AUTH_ALLOWED && (clean[c] < AUTH_ALLOWED || got > clean[c]);
            if (more || (nth == 1 && got >= AUTH_ALLOWED))
                fail_msg("certificate %zu: with read %u failing, status %d (clean: %d)", c, nth,
                         got, clean[c]);
        }
    }
    X509_free(user);
    X509_free(rev);
    X509_free(old);
    X509_free(renewed);
    EVP_PKEY_free(ku);
    EVP_PKEY_free(kr);
    EVP_PKEY_free(kn);
}

/* Who may take part in Raft (node_peer_trust): the node itself, a ClusterNode registration,
 * nothing else; and whichever read of the trust state fails, the peer is refused. */
static void peer_trust_fails_closed(void **state)
{
    char path[256], err[CMN_ERRMSG_SIZE] = "";
    snprintf(path, sizeof path, "%s/pki/B.pfx", F.dir);
    struct ca_certfile b;
    assert_int_equal(ca_certfile_load(path, NULL, NULL, 0, &b, NULL, err), 0);
    X509 *bcert = b.leaf;
    assert_int_equal(node_peer_trust(F.n, node_cert(F.n), "A", err), 0);
    /* B is no bootstrap member of this cluster and not registered */
    assert_int_equal(node_peer_trust(F.n, bcert, "B", err), CMN_EDENIED);
    assert_non_null(strstr(err, "not a trusted cluster node certificate"));
    tc_register(&F, bcert, "B", KV_CL_CLUSTER_NODE, NULL);
    assert_int_equal(node_peer_trust(F.n, bcert, "B", err), 0);
    /* a client certificate, registered, is no node */
    EVP_PKEY *k = NULL;
    int64_t now = cmn_now_ms(&cmn_clock_system) / 1000;
    X509 *user = tc_client_cert(&F, &k, "user", now - 86400, now + 86400, false);
    tc_register(&F, user, "user", KV_CL_CLUSTER_ADMIN, NULL);
    assert_int_equal(node_peer_trust(F.n, user, "C", err), CMN_EDENIED);
    assert_non_null(strstr(err, "not ClusterNode"));
    X509 *peers[] = {node_cert(F.n), bcert};
    const char *tags[] = {"A", "B"};
    for (size_t p = 0; p < 2; p++) {
        for (unsigned nth = 1;; nth++) {
            err[0] = '\0';
            kv_fail_read_at(node_kv(F.n), nth);
            int rv = node_peer_trust(F.n, peers[p], tags[p], err);
            bool fired = kv_fail_read_at(node_kv(F.n), 0) == 0;
            if (!fired) {
                assert_int_equal(rv, 0);
                assert_true(nth > 1);
                break;
            }
            if (rv != CMN_EDENIED)
                fail_msg("node %s: with read %u failing, trusted (%d)", tags[p], nth, rv);
            assert_non_null(strstr(err, "cannot read"));
        }
    }
    X509_free(user);
    EVP_PKEY_free(k);
    ca_certfile_fini(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(without_or_with_the_nodes_own),
        cmocka_unit_test(registered_by_clearance),
        cmocka_unit_test(revoked_and_two_factor),
        cmocka_unit_test(renewal_by_pinning_hash),
        cmocka_unit_test(read_failures_refuse),
        cmocka_unit_test(peer_trust_fails_closed),
        cmocka_unit_test(two_factor_session),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
