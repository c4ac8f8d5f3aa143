/* The trust state in RocksDB: apply, rejections, idempotence, faults, snapshots, determinism. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "fixture.h"

struct env {
    char *dir;
    struct kv *kv;
};

static int setup(void **state)
{
    struct env *e = calloc(1, sizeof *e);
    e->dir = fx_tmpdir();
    char err[CMN_ERRMSG_SIZE] = "";
    if (kv_open(e->dir, &e->kv, err) != 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    struct env *e = *state;
    kv_close(e->kv);
    fx_rmrf(e->dir);
    free(e->dir);
    free(e);
    return 0;
}

static void hash(struct kv *kv, uint8_t out[32])
{
    assert_int_equal(kv_state_hash(kv, out, NULL), 0);
}

/* Registers a certificate from seed at index; returns its thumbprint in tp. */
static void put(struct kv *kv, uint64_t index, unsigned seed, enum kv_clearance cl,
                enum kv_clearance actor, char tp[KV_THUMB_LEN + 1], struct kv_result *res)
{
    struct kv_cert cert;
    struct kv_cmd c;
    fx_cert(&cert, seed, "cert", cl);
    if (tp)
        memcpy(tp, cert.thumbprint, KV_THUMB_LEN + 1);
    fx_put(&c, &cert, actor);
    assert_int_equal(fx_apply(kv, index, &c, res), 0);
}

static void put_and_query(void **state)
{
    struct env *e = *state;
    struct kv_result res;
    char tp[KV_THUMB_LEN + 1];
    put(e->kv, 1, 1, KV_CL_VALID_USER, KV_CL_CLUSTER_ADMIN, tp, &res);
    assert_false(res.rejected);
    assert_int_equal(kv_applied_index(e->kv), 1);

    char upper[KV_THUMB_LEN + 1];
    for (int i = 0; i <= KV_THUMB_LEN; i++)
        upper[i] = (char)(tp[i] >= 'a' && tp[i] <= 'f' ? tp[i] - 32 : tp[i]);
    struct kv_cert got;
    assert_int_equal(kv_cert_get(e->kv, upper, &got, NULL), 0); /* any case */
    assert_string_equal(got.thumbprint, tp);
    assert_string_equal(got.name, "cert");
    assert_int_equal(got.clearance, KV_CL_VALID_USER);
    kv_cert_fini(&got);

    struct kv_cert *list;
    size_t n;
    assert_int_equal(
        kv_cert_by_pkph(e->kv, "pkph00000001AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", &list, &n, NULL),
        0);
    assert_int_equal(n, 1);
    kv_cert_free_array(list, n);
    assert_int_equal(kv_cert_by_serial(e->kv, "0000000100112233445566778899aa", &got, NULL), 0);
    assert_string_equal(got.thumbprint, tp);
    kv_cert_fini(&got);
    assert_int_equal(kv_cert_get(e->kv, "0000000000000000000000000000000000000000", &got, NULL),
                     CMN_ENOTFOUND);
}

static void replay_is_a_noop(void **state)
{
    struct env *e = *state;
    struct kv_result res;
    uint8_t before[32], after[32];
    put(e->kv, 5, 1, KV_CL_VALID_USER, KV_CL_CLUSTER_ADMIN, NULL, &res);
    hash(e->kv, before);
    put(e->kv, 5, 2, KV_CL_VALID_USER, KV_CL_CLUSTER_ADMIN, NULL, &res); /* same index again */
    assert_true(res.skipped);
    put(e->kv, 3, 3, KV_CL_VALID_USER, KV_CL_CLUSTER_ADMIN, NULL, &res); /* an older one */
    assert_true(res.skipped);
    hash(e->kv, after);
    assert_memory_equal(before, after, 32);
    assert_int_equal(kv_applied_index(e->kv), 5);
}

static void rejected_commands_change_nothing(void **state)
{
    struct env *e = *state;
    struct kv_result res;
    struct kv_cmd c;
    char admin[KV_THUMB_LEN + 1], user[KV_THUMB_LEN + 1];
    put(e->kv, 1, 1, KV_CL_CLUSTER_ADMIN, KV_CL_CLUSTER_ADMIN, admin, &res);
    put(e->kv, 2, 2, KV_CL_VALID_USER, KV_CL_CLUSTER_ADMIN, user, &res);
    size_t count;
    uint64_t idx = 3;

    /* deleting an unknown thumbprint */
    fx_delete(&c, "1111111111111111111111111111111111111111", NULL, KV_CL_CLUSTER_ADMIN);
    assert_int_equal(fx_apply(e->kv, idx++, &c, &res), 0);
    assert_true(res.rejected);
    assert_non_null(strstr(res.reason, "doesn't exist"));
    assert_int_equal(res.code, KV_REJ_NOTFOUND);

    /* an Operator deleting a ClusterAdmin */
    fx_delete(&c, admin, NULL, KV_CL_OPERATOR);
    assert_int_equal(fx_apply(e->kv, idx++, &c, &res), 0);
    assert_true(res.rejected);
    assert_non_null(strstr(res.reason, "lower clearance: Operator"));
    assert_int_equal(res.code, KV_REJ_FORBIDDEN);

    /* an Operator registering a ClusterNode (RavenDB's gap, closed) */
    put(e->kv, idx++, 9, KV_CL_CLUSTER_NODE, KV_CL_OPERATOR, NULL, &res);
    assert_true(res.rejected);
    assert_non_null(strstr(res.reason, "ClusterNode"));

    /* an Operator editing a User into a ClusterAdmin */
    kv_cmd_init(&c, KV_CMD_EDIT_CERT);
    fx_actor(&c, NULL, KV_CL_OPERATOR);
    strcpy(c.u.edit.thumbprint, user);
    c.u.edit.name = strdup("promoted");
    c.u.edit.clearance = KV_CL_CLUSTER_ADMIN;
    assert_int_equal(fx_apply(e->kv, idx++, &c, &res), 0);
    assert_true(res.rejected);

    /* nobody deletes the certificate they are using, not even a ClusterAdmin */
    fx_delete(&c, admin, admin, KV_CL_CLUSTER_ADMIN);
    assert_int_equal(fx_apply(e->kv, idx++, &c, &res), 0);
    assert_true(res.rejected);
    assert_non_null(strstr(res.reason, "current client certificate"));

    /* a ValidUser manages no certificates */
    fx_delete(&c, user, NULL, KV_CL_VALID_USER);
    assert_int_equal(fx_apply(e->kv, idx++, &c, &res), 0);
    assert_true(res.rejected);

    /* a malformed entry is recorded as rejected and does not stall the log */
    uint8_t junk[16] = {KV_CMD_PUT_CERTS, 0x81};
    assert_int_equal(kv_apply(e->kv, idx, junk, sizeof junk, &res, NULL), 0);
    assert_true(res.rejected);
    assert_non_null(strstr(res.reason, "malformed"));
    assert_int_equal(kv_applied_index(e->kv), idx);
    idx++;

    /* Only the audit trail grew; the trust state is the same. */
    assert_int_equal(kv_cert_count(e->kv, &count, NULL), 0);
    assert_int_equal(count, 2);
    struct kv_cert got;
    assert_int_equal(kv_cert_get(e->kv, user, &got, NULL), 0);
    assert_int_equal(got.clearance, KV_CL_VALID_USER);
    kv_cert_fini(&got);
    struct kv_audit *audit;
    size_t n_audit;
    assert_int_equal(kv_audit_page(e->kv, 2, 100, &audit, &n_audit, NULL), 0);
    assert_int_equal(n_audit, idx - 3);
    for (size_t i = 0; i < n_audit; i++) {
        assert_true(audit[i].rejected);
        assert_int_equal(audit[i].index, 3 + i);
    }
    kv_audit_free_array(audit, n_audit);
}

static void collections_and_revocation(void **state)
{
    struct env *e = *state;
    struct kv_result res;
    struct kv_cmd c;
    struct kv_cert certs[3];
    for (int i = 0; i < 3; i++)
        fx_cert(&certs[i], 20 + (unsigned)i, "coll", KV_CL_VALID_USER);
    certs[2].ca_issued = false; /* not issued by the cluster CA: no CRL entry */
    certs[0].secondaries = calloc(2, sizeof *certs[0].secondaries);
    strcpy(certs[0].secondaries[0], certs[1].thumbprint);
    strcpy(certs[0].secondaries[1], certs[2].thumbprint);
    certs[0].n_secondaries = 2;
    strcpy(certs[1].primary, certs[0].thumbprint);
    strcpy(certs[2].primary, certs[0].thumbprint);
    char p[KV_THUMB_LEN + 1], s1[KV_THUMB_LEN + 1];
    strcpy(p, certs[0].thumbprint);
    strcpy(s1, certs[1].thumbprint);
    char certs_tp2[KV_THUMB_LEN + 1];
    strcpy(certs_tp2, certs[2].thumbprint);

    kv_cmd_init(&c, KV_CMD_PUT_CERTS);
    fx_actor(&c, NULL, KV_CL_OPERATOR);
    c.u.put.certs = malloc(sizeof certs);
    memcpy(c.u.put.certs, certs, sizeof certs);
    c.u.put.n = 3;
    assert_int_equal(fx_apply(e->kv, 1, &c, &res), 0);
    assert_false(res.rejected);
    assert_int_equal(res.type, KV_CMD_PUT_CERTS);
    assert_int_equal(res.effects, KV_FX_CERTS); /* added, nothing gone, the CRL as it was */
    assert_int_equal(res.n_removed, 0);

    struct kv_cert *list;
    size_t n;
    assert_int_equal(kv_cert_list(e->kv, false, 0, 100, &list, &n, NULL), 0);
    assert_int_equal(n, 1); /* primaries only */
    kv_cert_free_array(list, n);
    assert_int_equal(kv_cert_list(e->kv, true, 0, 100, &list, &n, NULL), 0);
    assert_int_equal(n, 3);
    kv_cert_free_array(list, n);
    assert_int_equal(kv_cert_list(e->kv, true, 1, 1, &list, &n, NULL), 0);
    assert_int_equal(n, 1); /* paging */
    kv_cert_free_array(list, n);

    /* a secondary goes only with its primary */
    fx_delete(&c, s1, NULL, KV_CL_CLUSTER_ADMIN);
    assert_int_equal(fx_apply(e->kv, 2, &c, &res), 0);
    assert_true(res.rejected);
    assert_non_null(strstr(res.reason, "primary certificate of the collection"));
    assert_int_equal(res.effects, 0); /* a refusal changes nothing */
    assert_null(res.removed);

    fx_delete(&c, p, NULL, KV_CL_OPERATOR);
    assert_int_equal(fx_apply(e->kv, 3, &c, &res), 0);
    assert_false(res.rejected);
    /* the whole collection is reported gone, so that the node closes its connections */
    assert_int_equal(res.effects, KV_FX_CERTS | KV_FX_REMOVED | KV_FX_CRL);
    assert_int_equal(res.n_removed, 3);
    for (int i = 0; i < 3; i++) {
        bool listed = false;
        for (size_t k = 0; k < res.n_removed; k++)
            listed |= strcmp(res.removed[k], i == 0 ? p : i == 1 ? s1 : certs_tp2) == 0;
        assert_true(listed);
    }
    size_t count;
    assert_int_equal(kv_cert_count(e->kv, &count, NULL), 0);
    assert_int_equal(count, 0);

    struct kv_revoked *rev;
    assert_int_equal(kv_revoked_list(e->kv, &rev, &n, NULL), 0);
    assert_int_equal(n, 2); /* the two CA-issued members */
    assert_true(rev[0].revoked_ms == 1750000000000);
    free(rev);

    /* a revoked serial cannot come back */
    put(e->kv, 4, 20, KV_CL_VALID_USER, KV_CL_CLUSTER_ADMIN, NULL, &res);
    assert_true(res.rejected);
    assert_non_null(strstr(res.reason, "revoked"));
    assert_int_equal(res.code, KV_REJ_CONFLICT);
}

static void edit_keeps_identity(void **state)
{
    struct env *e = *state;
    struct kv_result res;
    struct kv_cmd c;
    struct kv_cert cert;
    fx_cert(&cert, 3, "app", KV_CL_VALID_USER);
    cert.twofa_key = strdup("SECRET");
    char tp[KV_THUMB_LEN + 1];
    strcpy(tp, cert.thumbprint);
    fx_put(&c, &cert, KV_CL_CLUSTER_ADMIN);
    assert_int_equal(fx_apply(e->kv, 1, &c, &res), 0);

    kv_cmd_init(&c, KV_CMD_EDIT_CERT);
    fx_actor(&c, NULL, KV_CL_OPERATOR);
    strcpy(c.u.edit.thumbprint, tp);
    c.u.edit.name = strdup("app2");
    c.u.edit.clearance = KV_CL_OPERATOR;
    c.u.edit.perms = calloc(1, sizeof *c.u.edit.perms);
    c.u.edit.perms[0].db = strdup("hr");
    c.u.edit.perms[0].access = KV_ACC_ADMIN;
    c.u.edit.n_perms = 1;
    assert_int_equal(fx_apply(e->kv, 2, &c, &res), 0);
    assert_false(res.rejected);
    assert_int_equal(res.type, KV_CMD_EDIT_CERT);
    assert_int_equal(res.effects, KV_FX_CERTS);
    struct kv_cert got;
    assert_int_equal(kv_cert_get(e->kv, tp, &got, NULL), 0);
    assert_string_equal(got.name, "app2");
    assert_int_equal(got.clearance, KV_CL_OPERATOR);
    assert_int_equal(got.n_perms, 1);
    assert_string_equal(got.twofa_key, "SECRET"); /* kept unless deleted */
    assert_true(got.not_after == 1900000000);
    kv_cert_fini(&got);

    kv_cmd_init(&c, KV_CMD_EDIT_CERT);
    fx_actor(&c, NULL, KV_CL_CLUSTER_ADMIN);
    strcpy(c.u.edit.thumbprint, tp);
    c.u.edit.name = strdup("app3");
    c.u.edit.clearance = KV_CL_VALID_USER;
    c.u.edit.delete_twofa = true;
    assert_int_equal(fx_apply(e->kv, 3, &c, &res), 0);
    assert_int_equal(kv_cert_get(e->kv, tp, &got, NULL), 0);
    assert_null(got.twofa_key);
    kv_cert_fini(&got);
}

static void request_id_applies_once(void **state)
{
    struct env *e = *state;
    struct kv_result res;
    struct kv_cmd c;
    struct kv_cert cert;
    for (uint64_t idx = 1; idx <= 2; idx++) {
        fx_cert(&cert, 4, "retry", KV_CL_VALID_USER);
        fx_put(&c, &cert, KV_CL_CLUSTER_ADMIN);
        c.request_id = strdup("client-42");
        assert_int_equal(fx_apply(e->kv, idx, &c, &res), 0);
        assert_false(res.rejected);
        assert_int_equal(res.code, KV_REJ_NONE);
        assert_int_equal(res.duplicate, idx == 2);
    }
    struct kv_audit *audit;
    size_t n;
    assert_int_equal(kv_audit_page(e->kv, 0, 10, &audit, &n, NULL), 0);
    assert_int_equal(n, 1); /* the retry left no second trace */
    kv_audit_free_array(audit, n);
    assert_int_equal(kv_applied_index(e->kv), 2);
}

static void write_failure_leaves_state(void **state)
{
    struct env *e = *state;
    struct kv_result res;
    uint8_t before[32], after[32];
    put(e->kv, 1, 1, KV_CL_VALID_USER, KV_CL_CLUSTER_ADMIN, NULL, &res);
    hash(e->kv, before);

    struct kv_cert cert;
    struct kv_cmd c;
    struct cmn_buf b;
    fx_cert(&cert, 2, "second", KV_CL_OPERATOR);
    fx_put(&c, &cert, KV_CL_CLUSTER_ADMIN);
    fx_encode(&c, &b);
    char err[CMN_ERRMSG_SIZE] = "";
    kv_fail_write_at(e->kv, 1);
    assert_int_equal(kv_apply(e->kv, 2, b.data, b.len, &res, err), CMN_EIO);
    assert_non_null(strstr(err, "injected"));
    assert_int_equal(kv_applied_index(e->kv), 1);
    hash(e->kv, after);
    assert_memory_equal(before, after, 32);
    /* the same entry applies once the store works again */
    assert_int_equal(kv_apply(e->kv, 2, b.data, b.len, &res, err), 0);
    assert_false(res.rejected);
    size_t count;
    assert_int_equal(kv_cert_count(e->kv, &count, NULL), 0);
    assert_int_equal(count, 2);
    cmn_buf_fini(&b);
}

/* A mixed workload, reproducible from a seed. */
static void workload(struct kv *kv, unsigned seed, int n)
{
    struct kv_result res;
    char tps[64][KV_THUMB_LEN + 1];
    int have = 0;
    srand(seed);
    for (int i = 1; i <= n; i++) {
        int op = rand() % 4;
        if (op < 3 || have == 0) {
            enum kv_clearance cl = (enum kv_clearance)(1 + rand() % 4);
            put(kv, (uint64_t)i, (unsigned)(rand() % 200), cl,
                rand() % 2 ? KV_CL_CLUSTER_ADMIN : KV_CL_OPERATOR, have < 64 ? tps[have] : NULL,
                &res);
            if (!res.rejected && have < 64)
                have++;
        } else {
            struct kv_cmd c;
            fx_delete(&c, tps[rand() % have], NULL, KV_CL_CLUSTER_ADMIN);
            assert_int_equal(fx_apply(kv, (uint64_t)i, &c, &res), 0);
        }
    }
}

static void same_commands_same_hash(void **state)
{
    struct env *e = *state;
    void *p = NULL;
    assert_int_equal(setup(&p), 0);
    struct env *other = p;
    workload(e->kv, 7, 300);
    workload(other->kv, 7, 300);
    uint8_t a[32], b[32];
    hash(e->kv, a);
    hash(other->kv, b);
    assert_memory_equal(a, b, 32);
    /* and a different history gives a different hash */
    struct kv_result res;
    put(other->kv, 301, 999, KV_CL_VALID_USER, KV_CL_CLUSTER_ADMIN, NULL, &res);
    hash(other->kv, b);
    assert_memory_not_equal(a, b, 32);
    teardown(&p);
}

static void snapshot_round_trip(void **state)
{
    struct env *e = *state;
    workload(e->kv, 11, 200);
    struct kv_snap *s;
    struct cmn_buf snap;
    cmn_buf_init(&snap, true);
    assert_int_equal(kv_snap_begin(e->kv, &s, NULL), 0);
    assert_int_equal(kv_snap_index(s), 200);
    struct kv_result res;
    put(e->kv, 201, 555, KV_CL_VALID_USER, KV_CL_CLUSTER_ADMIN, NULL, &res); /* after the view */
    assert_int_equal(kv_snap_serialize(s, &snap, NULL), 0);
    kv_snap_end(s);

    void *p = NULL;
    assert_int_equal(setup(&p), 0);
    struct env *other = p;
    put(other->kv, 1, 777, KV_CL_VALID_USER, KV_CL_CLUSTER_ADMIN, NULL, &res); /* replaced */

    /* corrupt snapshots are refused before anything is written */
    char err[CMN_ERRMSG_SIZE] = "";
    uint8_t before[32], after[32];
    hash(other->kv, before);
    snap.data[snap.len / 2] ^= 0x40;
    assert_int_equal(kv_restore(other->kv, snap.data, snap.len, err), CMN_EMALFORMED);
    snap.data[snap.len / 2] ^= 0x40;
    assert_int_equal(kv_restore(other->kv, snap.data, snap.len - 1, err), CMN_EMALFORMED);
    hash(other->kv, after);
    assert_memory_equal(before, after, 32);

    assert_int_equal(kv_restore(other->kv, snap.data, snap.len, err), 0);
    assert_int_equal(kv_applied_index(other->kv), 200);
    /* identical to the source at index 200: replay 201 there too and compare */
    put(other->kv, 201, 555, KV_CL_VALID_USER, KV_CL_CLUSTER_ADMIN, NULL, &res);
    hash(e->kv, before);
    hash(other->kv, after);
    assert_memory_equal(before, after, 32);

    /* restoring over a store that is ahead is refused */
    assert_int_equal(kv_restore(other->kv, snap.data, snap.len, err), CMN_ESTALE);

    /* the restored state survives a reopen */
    kv_close(other->kv);
    assert_int_equal(kv_open(other->dir, &other->kv, err), 0);
    assert_int_equal(kv_applied_index(other->kv), 201);
    hash(other->kv, after);
    assert_memory_equal(before, after, 32);
    cmn_buf_fini(&snap);
    teardown(&p);
}

/* A view's hash and count are those of the state when it was taken, whatever comes after. */
static void snapshot_view_hash(void **state)
{
    struct env *e = *state;
    workload(e->kv, 12, 50);
    uint8_t now[32], trust[32], viewed[32];
    size_t count = 0, viewed_count = 0;
    hash(e->kv, now);
    assert_int_equal(kv_trust_hash(e->kv, trust, NULL), 0);
    assert_int_equal(kv_cert_count(e->kv, &count, NULL), 0);
    struct kv_snap *s;
    assert_int_equal(kv_snap_begin(e->kv, &s, NULL), 0);
    struct kv_result res;
    put(e->kv, 51, 4242, KV_CL_VALID_USER, KV_CL_CLUSTER_ADMIN, NULL, &res);
    assert_false(res.rejected);
    assert_int_equal(kv_snap_hash(s, false, viewed, NULL), 0);
    assert_memory_equal(now, viewed, 32);
    assert_int_equal(kv_snap_hash(s, true, viewed, NULL), 0);
    assert_memory_equal(trust, viewed, 32);
    assert_int_equal(kv_snap_cert_count(s, &viewed_count, NULL), 0);
    assert_int_equal(viewed_count, count);
    kv_snap_end(s);
    /* and the store itself moved on */
    hash(e->kv, viewed);
    assert_memory_not_equal(now, viewed, 32);
    assert_int_equal(kv_cert_count(e->kv, &viewed_count, NULL), 0);
    assert_int_equal(viewed_count, count + 1);
}

static void purge_expired(void **state)
{
    struct env *e = *state;
    struct kv_result res;
    struct kv_cert cert;
    struct kv_cmd c;
    fx_cert(&cert, 1, "old", KV_CL_VALID_USER);
    cert.not_after = 1700000000; /* before the command's time */
    fx_put(&c, &cert, KV_CL_CLUSTER_ADMIN);
    assert_int_equal(fx_apply(e->kv, 1, &c, &res), 0);
    put(e->kv, 2, 2, KV_CL_VALID_USER, KV_CL_CLUSTER_ADMIN, NULL, &res);
    kv_cmd_init(&c, KV_CMD_PURGE_EXPIRED);
    fx_actor(&c, NULL, KV_CL_OPERATOR);
    assert_int_equal(fx_apply(e->kv, 3, &c, &res), 0);
    assert_false(res.rejected);
    size_t count;
    assert_int_equal(kv_cert_count(e->kv, &count, NULL), 0);
    assert_int_equal(count, 1);
    struct kv_revoked *rev;
    size_t n;
    assert_int_equal(kv_revoked_list(e->kv, &rev, &n, NULL), 0);
    assert_int_equal(n, 0); /* expiry is not revocation */
    free(rev);
}

static void same_pinning_hash_keeps_five(void **state)
{
    struct env *e = *state;
    struct kv_result res;
    for (unsigned i = 0; i < 7; i++) {
        struct kv_cert cert;
        struct kv_cmd c;
        fx_cert(&cert, 100 + i, "renewed", KV_CL_VALID_USER);
        snprintf(cert.pkph, sizeof cert.pkph, "samekey=");
        cert.not_after = 1800000000 + i;
        fx_put(&c, &cert, KV_CL_CLUSTER_ADMIN);
        c.u.put.same_pkph = true;
        assert_int_equal(fx_apply(e->kv, 1 + i, &c, &res), 0);
        assert_false(res.rejected);
    }
    struct kv_cert *list;
    size_t n;
    assert_int_equal(kv_cert_by_pkph(e->kv, "samekey=", &list, &n, NULL), 0);
    assert_int_equal(n, 5);
    assert_true(list[0].not_after == 1800000006); /* newest first */
    assert_true(list[4].not_after == 1800000002);
    kv_cert_free_array(list, n);
}

static void cluster_records(void **state)
{
    struct env *e = *state;
    struct kv_result res;
    struct kv_cmd c;
    kv_cmd_init(&c, KV_CMD_SET_ISSUING_CA);
    fx_actor(&c, NULL, KV_CL_CLUSTER_NODE);
    c.u.set_ca.cert_der = (uint8_t *)strdup("cert-1");
    c.u.set_ca.cert_len = 6;
    assert_int_equal(cmn_buf_append(&c.u.set_ca.key_der, "key", 3), 0);
    assert_int_equal(fx_apply(e->kv, 1, &c, &res), 0);
    assert_false(res.rejected);
    kv_cmd_init(&c, KV_CMD_SET_ISSUING_CA);
    fx_actor(&c, NULL, KV_CL_CLUSTER_ADMIN);
    c.u.set_ca.cert_der = (uint8_t *)strdup("cert-2");
    c.u.set_ca.cert_len = 6;
    assert_int_equal(cmn_buf_append(&c.u.set_ca.key_der, "key", 3), 0);
    assert_int_equal(fx_apply(e->kv, 2, &c, &res), 0);
    assert_true(res.rejected);
    struct kv_issuing_ca ca;
    assert_int_equal(kv_issuing_ca_get(e->kv, &ca, NULL), 0);
    assert_memory_equal(ca.cert_der, "cert-1", 6);
    assert_true(ca.key_der.secret);
    kv_issuing_ca_fini(&ca);
    /* the same CA with its key sealed again (a master key rotation) replaces the key blob */
    kv_cmd_init(&c, KV_CMD_SET_ISSUING_CA);
    fx_actor(&c, NULL, KV_CL_CLUSTER_NODE);
    c.u.set_ca.cert_der = (uint8_t *)strdup("cert-1");
    c.u.set_ca.cert_len = 6;
    assert_int_equal(cmn_buf_append(&c.u.set_ca.key_der, "resealed", 8), 0);
    assert_int_equal(fx_apply(e->kv, 3, &c, &res), 0);
    assert_false(res.rejected);
    assert_int_equal(kv_issuing_ca_get(e->kv, &ca, NULL), 0);
    assert_int_equal(ca.key_der.len, 8);
    assert_memory_equal(ca.key_der.data, "resealed", 8);
    kv_issuing_ca_fini(&ca);

    const char *tags[] = {"A", "B", "C"};
    for (int i = 0; i < 3; i++) {
        kv_cmd_init(&c, KV_CMD_PUT_NODE);
        fx_actor(&c, NULL, KV_CL_CLUSTER_NODE);
        strcpy(c.u.node.tag, tags[i]);
        c.u.node.server_url = strdup("https://127.0.0.1:8081");
        c.u.node.tcp_url = strdup("tls://127.0.0.1:9081");
        snprintf(c.u.node.thumbprint, sizeof c.u.node.thumbprint, "%040d", i);
        assert_int_equal(fx_apply(e->kv, 4 + (uint64_t)i, &c, &res), 0);
        assert_false(res.rejected);
    }
    kv_cmd_init(&c, KV_CMD_REMOVE_NODE);
    fx_actor(&c, NULL, KV_CL_OPERATOR); /* only ClusterAdmin changes the cluster */
    strcpy(c.u.node.tag, "B");
    assert_int_equal(fx_apply(e->kv, 7, &c, &res), 0);
    assert_true(res.rejected);
    kv_cmd_init(&c, KV_CMD_REMOVE_NODE);
    fx_actor(&c, NULL, KV_CL_CLUSTER_ADMIN);
    strcpy(c.u.node.tag, "B");
    assert_int_equal(fx_apply(e->kv, 8, &c, &res), 0);
    assert_false(res.rejected);
    struct kv_node *nodes;
    size_t n;
    assert_int_equal(kv_node_list(e->kv, &nodes, &n, NULL), 0);
    assert_int_equal(n, 2);
    assert_string_equal(nodes[1].tag, "C");
    kv_node_free_array(nodes, n);

    /* a replacement needs the new certificate registered as ClusterNode first */
    char fresh[KV_THUMB_LEN + 1];
    kv_cmd_init(&c, KV_CMD_REPLACE_INSTALL);
    fx_actor(&c, NULL, KV_CL_CLUSTER_ADMIN);
    assert_int_equal(cmn_buf_append(&c.u.replace.pfx, "pfx", 3), 0);
    snprintf(c.u.replace.thumbprint, sizeof c.u.replace.thumbprint, "%040d", 9);
    assert_int_equal(fx_apply(e->kv, 9, &c, &res), 0);
    assert_true(res.rejected);
    put(e->kv, 10, 77, KV_CL_CLUSTER_NODE, KV_CL_CLUSTER_ADMIN, fresh, &res);
    assert_false(res.rejected);
    kv_cmd_init(&c, KV_CMD_REPLACE_INSTALL);
    fx_actor(&c, NULL, KV_CL_CLUSTER_ADMIN);
    assert_int_equal(cmn_buf_append(&c.u.replace.pfx, "pfx", 3), 0);
    memcpy(c.u.replace.thumbprint, fresh, sizeof c.u.replace.thumbprint);
    assert_int_equal(fx_apply(e->kv, 11, &c, &res), 0);
    assert_false(res.rejected);
    assert_true(res.effects & KV_FX_REPLACE);
    const char *left[] = {"A", "C"}; /* B was removed above */
    for (int i = 0; i < 2; i++) {
        kv_cmd_init(&c, KV_CMD_REPLACE_RECEIVED);
        fx_actor(&c, NULL, KV_CL_CLUSTER_NODE);
        memcpy(c.u.confirm.thumbprint, fresh, sizeof c.u.confirm.thumbprint);
        strcpy(c.u.confirm.tag, left[i]);
        if (i == 1)
            c.u.confirm.note = strdup("not valid before tomorrow");
        assert_int_equal(fx_apply(e->kv, 12 + (uint64_t)i, &c, &res), 0);
        assert_false(res.rejected);
    }
    struct kv_replacement r;
    assert_int_equal(kv_replacement_get(e->kv, &r, NULL), 0);
    assert_int_equal(r.n_confirmed, 2);
    assert_int_equal(r.n_replaced, 0);
    assert_int_equal(r.n_notes, 1);
    assert_string_equal(r.notes[0], "C: not valid before tomorrow");
    kv_replacement_fini(&r);
    /* each switch counts; the last one ends the replacement */
    for (int i = 0; i < 2; i++) {
        kv_cmd_init(&c, KV_CMD_REPLACE_REPLACED);
        fx_actor(&c, NULL, KV_CL_CLUSTER_NODE);
        memcpy(c.u.confirm.thumbprint, fresh, sizeof c.u.confirm.thumbprint);
        strcpy(c.u.confirm.tag, left[i]);
        assert_int_equal(fx_apply(e->kv, 14 + (uint64_t)i, &c, &res), 0);
        assert_false(res.rejected);
        assert_true(res.effects & KV_FX_NODES);
    }
    assert_int_equal(kv_replacement_get(e->kv, &r, NULL), CMN_ENOTFOUND);
    assert_int_equal(kv_node_list(e->kv, &nodes, &n, NULL), 0);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(nodes[i].thumbprint, fresh);
    kv_node_free_array(nodes, n);
}

static void audit_changes_state_not_trust(void **state)
{
    struct env *e = *state;
    struct kv_result res;
    put(e->kv, 1, 1, KV_CL_VALID_USER, KV_CL_CLUSTER_ADMIN, NULL, &res);
    uint8_t s1[32], s2[32], t1[32], t2[32];
    hash(e->kv, s1);
    assert_int_equal(kv_trust_hash(e->kv, t1, NULL), 0);
    struct kv_cmd c;
    kv_cmd_init(&c, KV_CMD_AUDIT);
    fx_actor(&c, NULL, KV_CL_CLUSTER_NODE);
    c.u.audit.event = strdup("node A started");
    assert_int_equal(fx_apply(e->kv, 2, &c, &res), 0);
    assert_false(res.rejected);
    hash(e->kv, s2);
    assert_int_equal(kv_trust_hash(e->kv, t2, NULL), 0);
    assert_memory_not_equal(s1, s2, 32);
    assert_memory_equal(t1, t2, 32);
}

static void reopen_keeps_everything(void **state)
{
    struct env *e = *state;
    workload(e->kv, 3, 50);
    uint8_t before[32], after[32];
    hash(e->kv, before);
    kv_close(e->kv);
    assert_int_equal(kv_open(e->dir, &e->kv, NULL), 0);
    assert_int_equal(kv_applied_index(e->kv), 50);
    hash(e->kv, after);
    assert_memory_equal(before, after, 32);
}

/* A put of a three-certificate collection (primary first) at index; thumbprints into tp[]. */
static void put_collection(struct kv *kv, uint64_t index, unsigned seed, enum kv_clearance cl,
                           char tp[3][KV_THUMB_LEN + 1])
{
    struct kv_cert certs[3];
    struct kv_cmd c;
    struct kv_result res;
    for (unsigned i = 0; i < 3; i++) {
        fx_cert(&certs[i], seed + i, "coll", cl);
        strcpy(tp[i], certs[i].thumbprint);
    }
    certs[0].secondaries = calloc(2, sizeof *certs[0].secondaries);
    strcpy(certs[0].secondaries[0], tp[1]);
    strcpy(certs[0].secondaries[1], tp[2]);
    certs[0].n_secondaries = 2;
    strcpy(certs[1].primary, tp[0]);
    strcpy(certs[2].primary, tp[0]);
    kv_cmd_init(&c, KV_CMD_PUT_CERTS);
    fx_actor(&c, NULL, KV_CL_CLUSTER_ADMIN);
    c.u.put.certs = malloc(sizeof certs);
    memcpy(c.u.put.certs, certs, sizeof certs);
    c.u.put.n = 3;
    assert_int_equal(fx_apply(kv, index, &c, &res), 0);
    assert_false(res.rejected);
}

static void edit_cmd(struct kv_cmd *c, const char *tp, const char *name, enum kv_clearance cl)
{
    kv_cmd_init(c, KV_CMD_EDIT_CERT);
    fx_actor(c, NULL, KV_CL_CLUSTER_ADMIN);
    strcpy(c->u.edit.thumbprint, tp);
    c->u.edit.name = strdup(name);
    c->u.edit.clearance = cl;
}

/* Security review 2: an edit applies to the whole collection; naming a secondary is refused. */
static void edit_applies_to_the_collection(void **state)
{
    struct env *e = *state;
    struct kv_result res;
    struct kv_cmd c;
    char tp[3][KV_THUMB_LEN + 1];
    put_collection(e->kv, 1, 40, KV_CL_CLUSTER_ADMIN, tp);

    edit_cmd(&c, tp[1], "sec", KV_CL_VALID_USER);
    assert_int_equal(fx_apply(e->kv, 2, &c, &res), 0);
    assert_true(res.rejected);
    assert_int_equal(res.code, KV_REJ_INVALID);
    assert_non_null(strstr(res.reason, tp[0]));

    edit_cmd(&c, tp[0], "downgraded", KV_CL_VALID_USER);
    fx_perm_edit(&c, "db1", KV_ACC_READ);
    assert_int_equal(fx_apply(e->kv, 3, &c, &res), 0);
    assert_false(res.rejected);
    for (int i = 0; i < 3; i++) {
        struct kv_cert got;
        assert_int_equal(kv_cert_get(e->kv, tp[i], &got, NULL), 0);
        assert_int_equal(got.clearance, KV_CL_VALID_USER);
        assert_string_equal(got.name, "downgraded");
        assert_int_equal(got.n_perms, 1);
        assert_string_equal(got.perms[0].db, "db1");
        assert_string_equal(got.primary, i ? tp[0] : ""); /* the collection is kept */
        kv_cert_fini(&got);
    }
}

/* Security review 1: revoking a certificate revokes every registration with its key. */
static void revocation_takes_every_registration_of_the_key(void **state)
{
    struct env *e = *state;
    struct kv_result res;
    struct kv_cmd c;
    char tp[3][KV_THUMB_LEN + 1], other[KV_THUMB_LEN + 1];
    for (unsigned i = 0; i < 2; i++) {
        struct kv_cert cert;
        fx_cert(&cert, 60 + i, i ? "renewal" : "original", KV_CL_VALID_USER);
        snprintf(cert.pkph, sizeof cert.pkph, "compromised=");
        strcpy(tp[i], cert.thumbprint);
        fx_put(&c, &cert, KV_CL_CLUSTER_ADMIN);
        assert_int_equal(fx_apply(e->kv, 1 + i, &c, &res), 0);
    }
    put(e->kv, 3, 62, KV_CL_VALID_USER, KV_CL_CLUSTER_ADMIN, other, &res);
    fx_delete(&c, tp[0], NULL, KV_CL_OPERATOR);
    assert_int_equal(fx_apply(e->kv, 4, &c, &res), 0);
    assert_false(res.rejected);
    struct kv_cert got;
    assert_int_equal(kv_cert_get(e->kv, tp[0], &got, NULL), CMN_ENOTFOUND);
    assert_int_equal(kv_cert_get(e->kv, tp[1], &got, NULL), CMN_ENOTFOUND);
    assert_int_equal(kv_cert_get(e->kv, other, &got, NULL), 0); /* another key stays */
    kv_cert_fini(&got);
    struct kv_revoked *rev;
    size_t n;
    assert_int_equal(kv_revoked_list(e->kv, &rev, &n, NULL), 0);
    assert_int_equal(n, 2); /* both serials are in the CRL */
    free(rev);
    struct kv_audit *audit;
    assert_int_equal(kv_audit_page(e->kv, 3, 1, &audit, &n, NULL), 0);
    assert_int_equal(n, 1);
    assert_non_null(strstr(audit[0].summary, "1 more registered with the same key"));
    kv_audit_free_array(audit, n);
}

/* Security review 7: a registered caller has the clearance of the state applied to. */
static void registered_actor_clearance_from_state(void **state)
{
    struct env *e = *state;
    struct kv_result res;
    struct kv_cmd c;
    char admin[KV_THUMB_LEN + 1], user[KV_THUMB_LEN + 1];
    put(e->kv, 1, 70, KV_CL_CLUSTER_ADMIN, KV_CL_CLUSTER_ADMIN, admin, &res);
    put(e->kv, 2, 71, KV_CL_CLUSTER_ADMIN, KV_CL_CLUSTER_ADMIN, user, &res);
    edit_cmd(&c, admin, "demoted", KV_CL_VALID_USER);
    assert_int_equal(fx_apply(e->kv, 3, &c, &res), 0);
    assert_false(res.rejected);

    /* a node that had not applied the downgrade proposes with the old clearance */
    fx_delete(&c, user, admin, KV_CL_CLUSTER_ADMIN);
    c.actor_registered = true;
    assert_int_equal(fx_apply(e->kv, 4, &c, &res), 0);
    assert_true(res.rejected);
    assert_int_equal(res.code, KV_REJ_FORBIDDEN);
    assert_non_null(strstr(res.reason, "ValidUser"));

    /* a caller whose registration is gone commits nothing */
    fx_delete(&c, admin, NULL, KV_CL_CLUSTER_ADMIN);
    assert_int_equal(fx_apply(e->kv, 5, &c, &res), 0);
    assert_false(res.rejected);
    kv_cmd_init(&c, KV_CMD_PURGE_EXPIRED);
    fx_actor(&c, admin, KV_CL_CLUSTER_ADMIN);
    c.actor_registered = true;
    assert_int_equal(fx_apply(e->kv, 6, &c, &res), 0);
    assert_true(res.rejected);
    assert_non_null(strstr(res.reason, "no longer registered"));

    /* not registered (the node's own or a well-known certificate): the proposer's word */
    fx_delete(&c, user, admin, KV_CL_CLUSTER_ADMIN);
    assert_int_equal(fx_apply(e->kv, 7, &c, &res), 0);
    assert_false(res.rejected);
}

/* A two-factor command of the caller tp about itself, at time t. */
static void twofa_cmd(struct kv_cmd *c, int type, const char *tp, int64_t t, uint64_t step)
{
    kv_cmd_init(c, type);
    fx_actor(c, tp, KV_CL_VALID_USER);
    c->actor_registered = true;
    c->time_ms = t;
    snprintf(c->u.twofa.thumbprint, sizeof c->u.twofa.thumbprint, "%s", tp);
    c->u.twofa.step = step;
    c->u.twofa.expires_ms = t + 60000;
    c->u.twofa.has_limits = true;
    memset(c->u.twofa.cookie_hash, 0xab, sizeof c->u.twofa.cookie_hash);
}

/* Sessions: one per certificate with a key, a code used once, five wrong codes a minute, and
 * gone with the key or the registration. */
static void two_factor_sessions(void **state)
{
    struct env *e = *state;
    struct kv_result res;
    struct kv_cmd c;
    struct kv_cert cert;
    char tp[KV_THUMB_LEN + 1], plain[KV_THUMB_LEN + 1];
    const int64_t t0 = 1750000000000;
    fx_cert(&cert, 90, "alice", KV_CL_VALID_USER);
    cert.twofa_key = strdup("sealed-key");
    memcpy(tp, cert.thumbprint, sizeof tp);
    fx_put(&c, &cert, KV_CL_CLUSTER_ADMIN);
    assert_int_equal(fx_apply(e->kv, 1, &c, &res), 0);
    put(e->kv, 2, 91, KV_CL_VALID_USER, KV_CL_CLUSTER_ADMIN, plain, &res);
    uint64_t idx = 3;

    /* a certificate without a key, or another certificate's session: refused */
    twofa_cmd(&c, KV_CMD_TWOFA_LOGIN, plain, t0, 100);
    assert_int_equal(fx_apply(e->kv, idx++, &c, &res), 0);
    assert_true(res.rejected);
    assert_non_null(strstr(res.reason, "has no two-factor authentication key"));
    twofa_cmd(&c, KV_CMD_TWOFA_LOGIN, tp, t0, 100);
    snprintf(c.actor, sizeof c.actor, "%s", plain);
    assert_int_equal(fx_apply(e->kv, idx++, &c, &res), 0);
    assert_int_equal(res.code, KV_REJ_FORBIDDEN);

    twofa_cmd(&c, KV_CMD_TWOFA_LOGIN, tp, t0, 100);
    assert_int_equal(fx_apply(e->kv, idx++, &c, &res), 0);
    if (res.rejected)
        fail_msg("%s", res.reason);
    assert_true(res.effects & KV_FX_2FA);
    struct kv_twofa t;
    assert_int_equal(kv_twofa_get(e->kv, tp, &t, NULL), 0);
    assert_int_equal(t.expires_ms, t0 + 60000);
    assert_true(t.has_limits);
    assert_int_equal(t.last_step, 100);

    /* the same code again, or an older one: a replay */
    for (uint64_t step = 99; step <= 100; step++) {
        twofa_cmd(&c, KV_CMD_TWOFA_LOGIN, tp, t0 + 1000, step);
        assert_int_equal(fx_apply(e->kv, idx++, &c, &res), 0);
        assert_int_equal(res.code, KV_REJ_CONFLICT);
        assert_non_null(strstr(res.reason, "This code was used already"));
    }

    /* five wrong codes within a minute: a right one is refused until the first is a minute old */
    for (int i = 0; i < KV_2FA_FAILS_MAX; i++) {
        twofa_cmd(&c, KV_CMD_TWOFA_FAIL, tp, t0 + 2000 + i * 1000, 0);
        assert_int_equal(fx_apply(e->kv, idx++, &c, &res), 0);
        assert_false(res.rejected);
    }
    twofa_cmd(&c, KV_CMD_TWOFA_LOGIN, tp, t0 + 10000, 101);
    assert_int_equal(fx_apply(e->kv, idx++, &c, &res), 0);
    assert_int_equal(res.code, KV_REJ_LIMIT);
    assert_non_null(strstr(res.reason, "try again in 52 seconds"));
    twofa_cmd(&c, KV_CMD_TWOFA_LOGIN, tp, t0 + 2000 + KV_2FA_FAIL_WINDOW_MS, 102);
    assert_int_equal(fx_apply(e->kv, idx++, &c, &res), 0);
    assert_false(res.rejected);

    /* logout ends the session and keeps the replay guard */
    twofa_cmd(&c, KV_CMD_TWOFA_LOGOUT, tp, t0 + 70000, 0);
    assert_int_equal(fx_apply(e->kv, idx++, &c, &res), 0);
    assert_true(res.effects & KV_FX_2FA);
    assert_int_equal(kv_twofa_get(e->kv, tp, &t, NULL), 0);
    assert_int_equal(t.expires_ms, 0);
    assert_int_equal(t.last_step, 102);

    /* a re-seal (a master-key rotation) replaces the stored key only if it is still the one
     * read, and keeps the session */
    twofa_cmd(&c, KV_CMD_TWOFA_LOGIN, tp, t0 + 75000, 103);
    assert_int_equal(fx_apply(e->kv, idx++, &c, &res), 0);
    assert_false(res.rejected);
    for (int stale = 1; stale >= 0; stale--) {
        kv_cmd_init(&c, KV_CMD_RESEAL_TOTP);
        fx_actor(&c, NULL, KV_CL_CLUSTER_NODE);
        snprintf(c.u.reseal.thumbprint, sizeof c.u.reseal.thumbprint, "%s", tp);
        c.u.reseal.old_key = strdup(stale ? "not-what-is-stored" : "sealed-key");
        c.u.reseal.new_key = strdup("resealed-key");
        assert_int_equal(fx_apply(e->kv, idx++, &c, &res), 0);
        assert_int_equal(res.rejected, stale);
    }
    struct kv_cert got;
    assert_int_equal(kv_cert_get(e->kv, tp, &got, NULL), 0);
    assert_string_equal(got.twofa_key, "resealed-key");
    kv_cert_fini(&got);
    assert_int_equal(kv_twofa_get(e->kv, tp, &t, NULL), 0);
    assert_int_equal(t.expires_ms, t0 + 75000 + 60000);

    /* a new key, or the registration's end, forgets it all */
    twofa_cmd(&c, KV_CMD_TWOFA_LOGIN, tp, t0 + 80000, 104);
    assert_int_equal(fx_apply(e->kv, idx++, &c, &res), 0);
    assert_false(res.rejected);
    edit_cmd(&c, tp, "alice", KV_CL_VALID_USER);
    c.u.edit.twofa_key = strdup("another");
    assert_int_equal(fx_apply(e->kv, idx++, &c, &res), 0);
    assert_false(res.rejected);
    assert_int_equal(kv_twofa_get(e->kv, tp, &t, NULL), CMN_ENOTFOUND);
    twofa_cmd(&c, KV_CMD_TWOFA_LOGIN, tp, t0 + 90000, 105);
    assert_int_equal(fx_apply(e->kv, idx++, &c, &res), 0);
    fx_delete(&c, tp, NULL, KV_CL_CLUSTER_ADMIN);
    assert_int_equal(fx_apply(e->kv, idx++, &c, &res), 0);
    assert_false(res.rejected);
    assert_int_equal(kv_twofa_get(e->kv, tp, &t, NULL), CMN_ENOTFOUND);
}

/* Security review 3: request ids are per caller, tied to one command, and expire. */
static void request_ids_per_caller_and_command(void **state)
{
    struct env *e = *state;
    struct kv_result res;
    struct kv_cmd c;
    char a[KV_THUMB_LEN + 1], b[KV_THUMB_LEN + 1];
    put(e->kv, 1, 80, KV_CL_VALID_USER, KV_CL_CLUSTER_ADMIN, a, &res);
    put(e->kv, 2, 81, KV_CL_VALID_USER, KV_CL_CLUSTER_ADMIN, b, &res);
    const char *actor = "00000000000000000000000000000000000000aa";

    kv_cmd_init(&c, KV_CMD_PURGE_EXPIRED);
    fx_actor(&c, actor, KV_CL_CLUSTER_ADMIN);
    c.request_id = strdup("id-1");
    assert_int_equal(fx_apply(e->kv, 3, &c, &res), 0);
    assert_false(res.rejected || res.duplicate);

    /* the same id for a revocation: refused, and nothing revoked */
    fx_delete(&c, a, actor, KV_CL_CLUSTER_ADMIN);
    c.request_id = strdup("id-1");
    assert_int_equal(fx_apply(e->kv, 4, &c, &res), 0);
    assert_true(res.rejected);
    assert_false(res.duplicate);
    assert_int_equal(res.code, KV_REJ_CONFLICT);
    assert_non_null(strstr(res.reason, "different command"));
    struct kv_cert got;
    assert_int_equal(kv_cert_get(e->kv, a, &got, NULL), 0);
    kv_cert_fini(&got);

    /* another caller's id-1 is its own */
    fx_delete(&c, a, "00000000000000000000000000000000000000bb", KV_CL_CLUSTER_ADMIN);
    c.request_id = strdup("id-1");
    assert_int_equal(fx_apply(e->kv, 5, &c, &res), 0);
    assert_false(res.rejected || res.duplicate);
    assert_int_equal(kv_cert_get(e->kv, a, &got, NULL), CMN_ENOTFOUND);

    /* the same command again, at another time: its first answer */
    fx_delete(&c, a, "00000000000000000000000000000000000000bb", KV_CL_CLUSTER_ADMIN);
    c.request_id = strdup("id-1");
    c.time_ms += 60000;
    assert_int_equal(fx_apply(e->kv, 6, &c, &res), 0);
    assert_true(res.duplicate);
    assert_false(res.rejected);

    /* a day later the id is free again */
    fx_delete(&c, b, actor, KV_CL_CLUSTER_ADMIN);
    c.request_id = strdup("id-1");
    c.time_ms += 24LL * 3600 * 1000 + 1;
    assert_int_equal(fx_apply(e->kv, 7, &c, &res), 0);
    assert_false(res.rejected || res.duplicate);
    assert_int_equal(kv_cert_get(e->kv, b, &got, NULL), CMN_ENOTFOUND);
}

/* Security review 9: the CRL's number and time come from the committed state, and only grow. */
static void crl_state_from_commits(void **state)
{
    struct env *e = *state;
    struct kv_result res;
    struct kv_cmd c;
    struct kv_crl_state crl;
    char tp[KV_THUMB_LEN + 1];
    put(e->kv, 1, 90, KV_CL_VALID_USER, KV_CL_CLUSTER_ADMIN, tp, &res);
    assert_int_equal(kv_crl_state_get(e->kv, &crl, NULL), CMN_ENOTFOUND);
    fx_delete(&c, tp, NULL, KV_CL_CLUSTER_ADMIN);
    c.time_ms += 5000;
    assert_int_equal(fx_apply(e->kv, 2, &c, &res), 0);
    assert_int_equal(kv_crl_state_get(e->kv, &crl, NULL), 0);
    assert_int_equal(crl.index, 2);
    assert_true(crl.time_ms == 1750000005000);
    put(e->kv, 3, 91, KV_CL_VALID_USER, KV_CL_CLUSTER_ADMIN, NULL, &res); /* no revocation */
    assert_int_equal(kv_crl_state_get(e->kv, &crl, NULL), 0);
    assert_int_equal(crl.index, 2);
    kv_cmd_init(&c, KV_CMD_REFRESH_CRL);
    fx_actor(&c, NULL, KV_CL_OPERATOR); /* only a node or an admin re-issues it */
    assert_int_equal(fx_apply(e->kv, 4, &c, &res), 0);
    assert_true(res.rejected);
    kv_cmd_init(&c, KV_CMD_REFRESH_CRL);
    fx_actor(&c, NULL, KV_CL_CLUSTER_NODE);
    c.time_ms += 3600000;
    assert_int_equal(fx_apply(e->kv, 5, &c, &res), 0);
    assert_false(res.rejected);
    assert_int_equal(res.effects, KV_FX_CRL); /* a new CRL, the same registrations */
    assert_int_equal(kv_crl_state_get(e->kv, &crl, NULL), 0);
    assert_int_equal(crl.index, 5);
    assert_true(crl.time_ms == 1750003600000);
}

/* A write that fails at each step of a restore: an error, and a store that either is as it
 * was (the first write) or reports index 0 on reopen, so that Raft sends the snapshot again;
 * the next restore then gives the source's state. */
static void restore_write_failures(void **state)
{
    struct env *e = *state;
    workload(e->kv, 13, 50);
    struct kv_snap *s;
    struct cmn_buf snap;
    cmn_buf_init(&snap, true);
    assert_int_equal(kv_snap_begin(e->kv, &s, NULL), 0);
    assert_int_equal(kv_snap_serialize(s, &snap, NULL), 0);
    kv_snap_end(s);
    uint8_t source[32], before[32], got[32];
    hash(e->kv, source);
    for (unsigned nth = 1;; nth++) {
        void *p = NULL;
        assert_int_equal(setup(&p), 0);
        struct env *other = p;
        struct kv_result res;
        put(other->kv, 1, 777, KV_CL_VALID_USER, KV_CL_CLUSTER_ADMIN, NULL, &res);
        hash(other->kv, before);
        char err[CMN_ERRMSG_SIZE] = "";
        kv_fail_write_at(other->kv, nth);
        int rv = kv_restore(other->kv, snap.data, snap.len, err);
        kv_fail_write_at(other->kv, 0);
        if (rv == 0) { /* past the last write: the sweep is over */
            assert_true(nth > 2);
            assert_int_equal(kv_applied_index(other->kv), 50);
            assert_int_equal(teardown(&p), 0);
            break;
        }
        assert_int_equal(rv, CMN_EIO);
        assert_non_null(strstr(err, "injected"));
        kv_close(other->kv);
        assert_int_equal(kv_open(other->dir, &other->kv, err), 0);
        if (nth == 1) { /* nothing was written */
            assert_int_equal(kv_applied_index(other->kv), 1);
            hash(other->kv, got);
            assert_memory_equal(got, before, 32);
        } else { /* half restored: it says so, and asks for the snapshot again */
            assert_int_equal(kv_applied_index(other->kv), 0);
        }
        assert_int_equal(kv_restore(other->kv, snap.data, snap.len, err), 0);
        assert_int_equal(kv_applied_index(other->kv), 50);
        hash(other->kv, got);
        assert_memory_equal(got, source, 32);
        assert_int_equal(teardown(&p), 0);
    }
    cmn_buf_fini(&snap);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(put_and_query, setup, teardown),
        cmocka_unit_test_setup_teardown(replay_is_a_noop, setup, teardown),
        cmocka_unit_test_setup_teardown(rejected_commands_change_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(collections_and_revocation, setup, teardown),
        cmocka_unit_test_setup_teardown(edit_keeps_identity, setup, teardown),
        cmocka_unit_test_setup_teardown(request_id_applies_once, setup, teardown),
        cmocka_unit_test_setup_teardown(write_failure_leaves_state, setup, teardown),
        cmocka_unit_test_setup_teardown(same_commands_same_hash, setup, teardown),
        cmocka_unit_test_setup_teardown(snapshot_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(restore_write_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(snapshot_view_hash, setup, teardown),
        cmocka_unit_test_setup_teardown(purge_expired, setup, teardown),
        cmocka_unit_test_setup_teardown(same_pinning_hash_keeps_five, setup, teardown),
        cmocka_unit_test_setup_teardown(cluster_records, setup, teardown),
        cmocka_unit_test_setup_teardown(reopen_keeps_everything, setup, teardown),
        cmocka_unit_test_setup_teardown(audit_changes_state_not_trust, setup, teardown),
        cmocka_unit_test_setup_teardown(edit_applies_to_the_collection, setup, teardown),
        cmocka_unit_test_setup_teardown(revocation_takes_every_registration_of_the_key, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(registered_actor_clearance_from_state, setup, teardown),
        cmocka_unit_test_setup_teardown(request_ids_per_caller_and_command, setup, teardown),
        cmocka_unit_test_setup_teardown(crl_state_from_commits, setup, teardown),
        cmocka_unit_test_setup_teardown(two_factor_sessions, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
