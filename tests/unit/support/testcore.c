/* The test core of testcore.h. */
#include "tests/unit/support/testcore.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ca/ca.h"
#include "common/env.h"
#include "tests/unit/support/port.h"

int tc_start(struct tc_core *t, const char *prefix)
{
    snprintf(t->dir, sizeof t->dir, "/tmp/%s-XXXXXX", prefix);
    if (mkdtemp(t->dir) == NULL)
        return -1;
    const char *bin = getenv("CORVID_BUILD_DIR");
    char cmd[1024];
    snprintf(
        cmd, sizeof cmd,
        "'%s/corvid' pki init-cluster --out '%s/pki' --nodes A=127.0.0.1,B=127.0.0.1 >/dev/null",
        bin ? bin : ".", t->dir);
    if (system(cmd) != 0)
        return -1;
    int hp = ts_free_port(), rp = ts_free_port();
    char path[256];
    snprintf(path, sizeof path, "%s/A.json", t->dir);
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
    if (node_new(path, &t->n, err) != 0) {
        fprintf(stderr, "node_new: %s\n", err);
        return -1;
    }
    snprintf(path, sizeof path, "%s/pki/issuing.pfx", t->dir);
    if (ca_certfile_load(path, NULL, NULL, CA_CERTFILE_KEY, &t->issuing, NULL, err) != 0) {
        fprintf(stderr, "issuing.pfx: %s\n", err);
        return -1;
    }
    return 0;
}

int tc_stop(struct tc_core *t)
{
    ca_certfile_fini(&t->issuing);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", t->dir);
    return system(cmd) == 0 ? 0 : -1;
}

X509 *tc_client_cert(struct tc_core *t, EVP_PKEY **key, const char *cn, int64_t nb, int64_t na,
                     bool self_signed)
{
    if (*key == NULL)
        assert_int_equal(ca_key_generate(CA_KEY_EC_P256, key, NULL), 0);
    struct ca_cert_req req = {.profile = self_signed ? CA_PROFILE_ROOT : CA_PROFILE_CLIENT,
                              .cn = cn,
                              .not_before = nb,
                              .not_after = na,
                              .subject_key = *key};
    struct ca_signer signer = {.cert = t->issuing.leaf, .key = t->issuing.key};
    X509 *x = NULL;
    char err[CMN_ERRMSG_SIZE] = "";
    if (ca_cert_issue(&req, self_signed ? NULL : &signer, &cmn_rng_system, &x, err) != 0)
        fail_msg("issue %s: %s", cn, err);
    return x;
}

void tc_apply(struct tc_core *t, struct kv_cmd *c)
{
    c->time_ms = (int64_t)TC_NOW * 1000;
    if (c->actor[0] == '\0') {
        memcpy(c->actor, node_thumb(t->n), sizeof c->actor);
        c->actor_clearance = KV_CL_CLUSTER_NODE;
    }
    struct cmn_buf b;
    cmn_buf_init(&b, false);
    char err[CMN_ERRMSG_SIZE] = "";
    assert_int_equal(kv_cmd_encode(c, &b, err), 0);
    kv_cmd_fini(c);
    struct kv_result res;
    struct kv *kv = node_kv(t->n);
    assert_int_equal(kv_apply(kv, kv_applied_index(kv) + 1, b.data, b.len, &res, err), 0);
    if (res.rejected)
        fail_msg("refused: %s", res.reason);
    kv_result_fini(&res);
    cmn_buf_fini(&b);
}

void tc_register(struct tc_core *t, X509 *x, const char *name, enum kv_clearance cl,
                 const char *totp)
{
    struct kv_cmd c;
    kv_cmd_init(&c, KV_CMD_PUT_CERTS);
    c.u.put.certs = calloc(1, sizeof *c.u.put.certs);
    assert_non_null(c.u.put.certs);
    char err[CMN_ERRMSG_SIZE] = "";
    assert_int_equal(node_cert_record(t->n, x, name, cl, &c.u.put.certs[0], err), 0);
    c.u.put.n = 1;
    if (totp)
        assert_non_null(c.u.put.certs[0].twofa_key = strdup(totp));
    tc_apply(t, &c);
}

void tc_revoke(struct tc_core *t, X509 *x)
{
    struct kv_cmd c;
    kv_cmd_init(&c, KV_CMD_DELETE_CERTS);
    c.u.del.thumbprints = calloc(1, sizeof *c.u.del.thumbprints);
    assert_non_null(c.u.del.thumbprints);
    char tp[CA_THUMBPRINT_SIZE];
    assert_int_equal(ca_thumbprint(x, tp), 0);
    assert_int_equal(kv_thumb_norm(tp, c.u.del.thumbprints[0]), 0);
    c.u.del.n = 1;
    tc_apply(t, &c);
}
