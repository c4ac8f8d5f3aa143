/* The authentication verdict (node/auth.c, node_auth_compute) against a real core: node A of a
 * cluster made by `corvid pki init-cluster`, started with node_new (its store on disk, Raft
 * started but its loop never run), its trust state set by applying commands to the store the
 * way Raft would, and the clock passed in. The verdict reads; it never changes the state. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include "ca/ca.h"
#include "ca/certfile.h"
#include "common/env.h"
#include "node/auth.h"
#include "node/node.h"
#include "storage/cmd.h"
#include "tests/unit/support/port.h"

#define NOW 1800000000 /* 2027-01-15: inside every certificate's validity below */

struct fx {
    char dir[64];
    struct node *n;
    struct ca_certfile issuing; /* the cluster CA, to issue client certificates */
    uint8_t hash[32];
};

static struct fx F;

static int setup(void **state)
{
    snprintf(F.dir, sizeof F.dir, "/tmp/corvid-auth-XXXXXX");
    if (mkdtemp(F.dir) == NULL)
        return -1;
    const char *bin = getenv("CORVID_BUILD_DIR");
    char cmd[1024];
    snprintf(
        cmd, sizeof cmd,
        "'%s/corvid' pki init-cluster --out '%s/pki' --nodes A=127.0.0.1,B=127.0.0.1 >/dev/null",
        bin ? bin : ".", F.dir);
    if (system(cmd) != 0)
        return -1;
    int hp = ts_free_port(), rp = ts_free_port();
    char path[256];
    snprintf(path, sizeof path, "%s/A.json", F.dir);
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    fprintf(f,
            "{\"ServerUrl\": \"https://127.0.0.1:%d\", \"ServerUrl.Tcp\": \"tls://127.0.0.1:%d\",\n"
            " \"DataDir\": \"data\", \"Security.Certificate.Path\": \"pki/A.pfx\",\n"
            " \"Security.ClusterCA.Path\": \"pki/issuing.pfx\",\n"
            " \"Security.MasterKey.Path\": \"pki/master.key\", \"Cluster.NodeTag\": \"A\",\n"
            " \"Cluster.Bootstrap\": [{\"Tag\": \"A\", \"ServerUrl\": \"https://127.0.0.1:%d\",\n"
            "   \"TcpUrl\": \"tls://127.0.0.1:%d\"}], \"Logs.Level\": \"Warning\"}\n",
            hp, rp, hp, rp);
    fclose(f);
    char err[CMN_ERRMSG_SIZE] = "";
    if (node_new(path, &F.n, err) != 0) {
        fprintf(stderr, "node_new: %s\n", err);
        return -1;
    }
    snprintf(path, sizeof path, "%s/pki/issuing.pfx", F.dir);
    if (ca_certfile_load(path, NULL, NULL, CA_CERTFILE_KEY, &F.issuing, NULL, err) != 0) {
        fprintf(stderr, "issuing.pfx: %s\n", err);
        return -1;
    }
    *state = &F;
    return 0;
}

static int teardown(void **state)
{
    ca_certfile_fini(&F.issuing);
    /* The loop never ran: the node is not freed (its handles are on the loop), as after a
     * failed start; the process ends with the test. */
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", F.dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* A client certificate for key (a new EC key when *key is NULL), signed by the cluster CA or,
 * with self_signed, by nobody. */
static X509 *client_cert(EVP_PKEY **key, const char *cn, int64_t nb, int64_t na, bool self_signed)
{
    if (*key == NULL)
        assert_int_equal(ca_key_generate(CA_KEY_EC_P256, key, NULL), 0);
    struct ca_cert_req req = {.profile = self_signed ? CA_PROFILE_ROOT : CA_PROFILE_CLIENT,
                              .cn = cn,
                              .not_before = nb,
                              .not_after = na,
                              .subject_key = *key};
    struct ca_signer signer = {.cert = F.issuing.leaf, .key = F.issuing.key};
    X509 *x = NULL;
    char err[CMN_ERRMSG_SIZE] = "";
    if (ca_cert_issue(&req, self_signed ? NULL : &signer, &cmn_rng_system, &x, err) != 0)
        fail_msg("issue %s: %s", cn, err);
    return x;
}

static void apply(struct kv_cmd *c)
{
    c->time_ms = (int64_t)NOW * 1000;
    memcpy(c->actor, node_thumb(F.n), sizeof c->actor);
    c->actor_clearance = KV_CL_CLUSTER_NODE;
    struct cmn_buf b;
    cmn_buf_init(&b, false);
    char err[CMN_ERRMSG_SIZE] = "";
    assert_int_equal(kv_cmd_encode(c, &b, err), 0);
    kv_cmd_fini(c);
    struct kv_result res;
    struct kv *kv = node_kv(F.n);
    assert_int_equal(kv_apply(kv, kv_applied_index(kv) + 1, b.data, b.len, &res, err), 0);
    if (res.rejected)
        fail_msg("refused: %s", res.reason);
    kv_result_fini(&res);
    cmn_buf_fini(&b);
}

static void register_cert(X509 *x, const char *name, enum kv_clearance cl, const char *totp)
{
    struct kv_cmd c;
    kv_cmd_init(&c, KV_CMD_PUT_CERTS);
    c.u.put.certs = calloc(1, sizeof *c.u.put.certs);
    assert_non_null(c.u.put.certs);
    char err[CMN_ERRMSG_SIZE] = "";
    assert_int_equal(node_cert_record(F.n, x, name, cl, &c.u.put.certs[0], err), 0);
    c.u.put.n = 1;
    if (totp)
        c.u.put.certs[0].twofa_key = strdup(totp);
    apply(&c);
}

static void revoke_cert(X509 *x)
{
    struct kv_cmd c;
    kv_cmd_init(&c, KV_CMD_DELETE_CERTS);
    c.u.del.thumbprints = calloc(1, sizeof *c.u.del.thumbprints);
    assert_non_null(c.u.del.thumbprints);
    char tp[CA_THUMBPRINT_SIZE];
    assert_int_equal(ca_thumbprint(x, tp), 0);
    assert_int_equal(kv_thumb_norm(tp, c.u.del.thumbprints[0]), 0);
    c.u.del.n = 1;
    apply(&c);
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
        X509 *x = client_cert(&key, "user", NOW - 86400, NOW + 86400 * 30, false);
        struct node_auth a = {0};
        assert_int_equal(verdict(x, NOW, &a), AUTH_UNFAMILIAR); /* not registered yet */
        register_cert(x, "user", cases[i].cl, NULL);
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
    X509 *x = client_cert(&k1, "gone", NOW - 86400, NOW + 86400 * 30, false);
    register_cert(x, "gone", KV_CL_OPERATOR, NULL);
    struct node_auth a = {0};
    assert_int_equal(verdict(x, NOW, &a), AUTH_OPERATOR);
    revoke_cert(x);
    assert_int_equal(verdict(x, NOW, &a), AUTH_REVOKED);
    assert_false(a.registered);
    X509 *t = client_cert(&k2, "2fa", NOW - 86400, NOW + 86400 * 30, false);
    register_cert(t, "2fa", KV_CL_CLUSTER_ADMIN, "JBSWY3DPEHPK3PXP");
    assert_int_equal(verdict(t, NOW, &a), AUTH_TWO_FACTOR); /* no session */
    kv_cert_fini(&a.def);
    X509_free(x);
    X509_free(t);
    EVP_PKEY_free(k1);
    EVP_PKEY_free(k2);
}

/* A new certificate for the key of a current registration, from the same CA, is its renewal:
 * allowed with the old one's settings, and to be registered by the caller (a->renewal); the
 * same key in a certificate anyone could make (self-signed) is not. */
static void renewal_by_pinning_hash(void **state)
{
    EVP_PKEY *key = NULL;
    X509 *old = client_cert(&key, "app", NOW - 86400, NOW + 86400 * 30, false);
    register_cert(old, "app", KV_CL_OPERATOR, NULL);
    X509 *renewed = client_cert(&key, "app", NOW - 3600, NOW + 86400 * 400, false);
    struct node_auth a = {0};
    assert_int_equal(verdict(renewed, NOW, &a), AUTH_OPERATOR);
    assert_true(a.renewal);
    assert_string_equal(a.def.name, "app");
    char tp[CA_THUMBPRINT_SIZE];
    assert_int_equal(ca_thumbprint(renewed, tp), 0);
    assert_int_equal(strcasecmp(a.def.thumbprint, tp), 0);
    X509 *forged = client_cert(&key, "app", NOW - 3600, NOW + 86400 * 400, true);
    assert_int_equal(verdict(forged, NOW, &a), AUTH_UNFAMILIAR_ISSUER);
    assert_false(a.renewal);
    /* once the old registration is revoked, its key is: no renewal of it either */
    revoke_cert(old);
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
    X509 *user = client_cert(&ku, "reader", NOW - 86400, NOW + 86400 * 30, false);
    register_cert(user, "reader", KV_CL_CLUSTER_ADMIN, NULL);
    X509 *rev = client_cert(&kr, "revoked", NOW - 86400, NOW + 86400 * 30, false);
    register_cert(rev, "revoked", KV_CL_OPERATOR, NULL);
    revoke_cert(rev);
    X509 *old = client_cert(&kn, "old", NOW - 86400, NOW + 86400 * 30, false);
    register_cert(old, "old", KV_CL_OPERATOR, NULL);
    X509 *renewed = client_cert(&kn, "old", NOW - 60, NOW + 86400 * 60, false);
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
    register_cert(bcert, "B", KV_CL_CLUSTER_NODE, NULL);
    assert_int_equal(node_peer_trust(F.n, bcert, "B", err), 0);
    /* a client certificate, registered, is no node */
    EVP_PKEY *k = NULL;
    int64_t now = cmn_now_ms(&cmn_clock_system) / 1000;
    X509 *user = client_cert(&k, "user", now - 86400, now + 86400, false);
    register_cert(user, "user", KV_CL_CLUSTER_ADMIN, NULL);
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
        cmocka_unit_test(without_or_with_the_nodes_own), cmocka_unit_test(registered_by_clearance),
        cmocka_unit_test(revoked_and_two_factor),        cmocka_unit_test(renewal_by_pinning_hash),
        cmocka_unit_test(read_failures_refuse),          cmocka_unit_test(peer_trust_fails_closed),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
