/* Allocation-failure sweeps over storage/ (tests/unit/support/failalloc.h): kv_apply of every
 * command type, command encode and decode, snapshot serialisation and restore. A failed run
 * returns an error with a message and leaves the store as it was (same state hash, same applied
 * index); a run that succeeds despite a failed allocation has exactly the clean run's outcome.
 * Allocations inside RocksDB (C++) and msgpack-c's unpacker are not reached. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../support/failalloc.h"
#include "fixture.h"

#define SWEEP_MAX 20000
#define BASE_N    4 /* entries of the base state */

static char tp1[KV_THUMB_LEN + 1], tp2[KV_THUMB_LEN + 1];

static void apply_ok(struct kv *kv, uint64_t index, struct kv_cmd *c)
{
    struct kv_result res;
    assert_int_equal(fx_apply(kv, index, c, &res), 0);
    if (res.rejected)
        fail_msg("base entry %llu rejected: %s", (unsigned long long)index, res.reason);
}

/* Two certificates (tp1 with a permission), the issuing CA, node A: indices 1..BASE_N. */
static void base_state(struct kv *kv)
{
    struct kv_cmd c;
    struct kv_cert cert;
    fx_cert(&cert, 1, "one", KV_CL_VALID_USER);
    fx_perm(&cert, "db1", KV_ACC_READ_WRITE);
    snprintf(tp1, sizeof tp1, "%s", cert.thumbprint);
    fx_put(&c, &cert, KV_CL_CLUSTER_ADMIN);
    apply_ok(kv, 1, &c);
    fx_cert(&cert, 2, "two", KV_CL_VALID_USER);
    snprintf(tp2, sizeof tp2, "%s", cert.thumbprint);
    fx_put(&c, &cert, KV_CL_CLUSTER_ADMIN);
    apply_ok(kv, 2, &c);
    kv_cmd_init(&c, KV_CMD_SET_ISSUING_CA);
    fx_actor(&c, NULL, KV_CL_CLUSTER_NODE);
    c.u.set_ca.cert_der = (uint8_t *)strdup("cert-1");
    c.u.set_ca.cert_len = 6;
    assert_int_equal(cmn_buf_append(&c.u.set_ca.key_der, "key", 3), 0);
    apply_ok(kv, 3, &c);
    kv_cmd_init(&c, KV_CMD_PUT_NODE);
    fx_actor(&c, NULL, KV_CL_CLUSTER_NODE);
    strcpy(c.u.node.tag, "A");
    c.u.node.server_url = strdup("https://127.0.0.1:8081");
    c.u.node.tcp_url = strdup("tls://127.0.0.1:9081");
    snprintf(c.u.node.thumbprint, sizeof c.u.node.thumbprint, "%040d", 7);
    apply_ok(kv, 4, &c);
}

/* The command under test, of each type, with a request id. */
static void make_cmd(int type, struct cmn_buf *out)
{
    struct kv_cmd c;
    struct kv_cert cert;
    switch (type) {
    case KV_CMD_PUT_CERTS:
        fx_cert(&cert, 3, "three", KV_CL_OPERATOR);
        fx_perm(&cert, "db2", KV_ACC_READ);
        fx_put(&c, &cert, KV_CL_CLUSTER_ADMIN);
        break;
    case KV_CMD_EDIT_CERT:
        kv_cmd_init(&c, KV_CMD_EDIT_CERT);
        fx_actor(&c, NULL, KV_CL_CLUSTER_ADMIN);
        snprintf(c.u.edit.thumbprint, sizeof c.u.edit.thumbprint, "%s", tp1);
        c.u.edit.name = strdup("one renamed");
        c.u.edit.clearance = KV_CL_OPERATOR;
        fx_perm_edit(&c, "db3", KV_ACC_ADMIN);
        break;
    case KV_CMD_DELETE_CERTS:
        fx_delete(&c, tp2, NULL, KV_CL_CLUSTER_ADMIN);
        break;
    case KV_CMD_PURGE_EXPIRED:
        kv_cmd_init(&c, KV_CMD_PURGE_EXPIRED);
        fx_actor(&c, NULL, KV_CL_CLUSTER_ADMIN);
        c.time_ms = 1950000000000; /* after every NotAfter */
        break;
    case KV_CMD_SET_ISSUING_CA:
        kv_cmd_init(&c, KV_CMD_SET_ISSUING_CA);
        fx_actor(&c, NULL, KV_CL_CLUSTER_NODE);
        c.u.set_ca.cert_der = (uint8_t *)strdup("cert-1");
        c.u.set_ca.cert_len = 6;
        assert_int_equal(cmn_buf_append(&c.u.set_ca.key_der, "resealed", 8), 0);
        break;
    case KV_CMD_PUT_NODE:
        kv_cmd_init(&c, KV_CMD_PUT_NODE);
        fx_actor(&c, NULL, KV_CL_CLUSTER_NODE);
        strcpy(c.u.node.tag, "B");
        c.u.node.server_url = strdup("https://127.0.0.1:8082");
        c.u.node.tcp_url = strdup("tls://127.0.0.1:9082");
        snprintf(c.u.node.thumbprint, sizeof c.u.node.thumbprint, "%040d", 8);
        break;
    case KV_CMD_REMOVE_NODE:
        kv_cmd_init(&c, KV_CMD_REMOVE_NODE);
        fx_actor(&c, NULL, KV_CL_CLUSTER_ADMIN);
        strcpy(c.u.node.tag, "A");
        break;
    case KV_CMD_AUDIT:
        kv_cmd_init(&c, KV_CMD_AUDIT);
        fx_actor(&c, NULL, KV_CL_CLUSTER_ADMIN);
        c.u.audit.event = strdup("an event");
        break;
    case KV_CMD_REFRESH_CRL:
        kv_cmd_init(&c, KV_CMD_REFRESH_CRL);
        fx_actor(&c, NULL, KV_CL_CLUSTER_NODE);
        break;
    default:
        fail_msg("no builder for type %d", type);
    }
    c.request_id = strdup("rid-under-test");
    fx_encode(&c, out);
}

struct apply_sweep {
    char *dir;
    struct kv *kv;
    struct cmn_buf entry;
    uint8_t before[32], after[32];
    struct kv_result expect, res;
    char errmsg[CMN_ERRMSG_SIZE];
};

static void hash_of(struct kv *kv, uint8_t out[32])
{
    char err[CMN_ERRMSG_SIZE] = "";
    if (kv_state_hash(kv, out, err) != 0)
        fail_msg("state hash: %s", err);
}

static struct kv *fresh_store(char **dir)
{
    *dir = fx_tmpdir();
    struct kv *kv = NULL;
    char err[CMN_ERRMSG_SIZE] = "";
    if (kv_open(*dir, &kv, err) != 0)
        fail_msg("kv_open: %s", err);
    base_state(kv);
    return kv;
}

static void drop_store(struct kv *kv, char *dir)
{
    kv_close(kv);
    fx_rmrf(dir);
    free(dir);
}

static int apply_op(void *ctx)
{
    struct apply_sweep *s = ctx;
    s->errmsg[0] = '\0';
    return kv_apply(s->kv, BASE_N + 1, s->entry.data, s->entry.len, &s->res, s->errmsg);
}

static void apply_check(void *ctx, unsigned long n, int rv, bool fired)
{
    struct apply_sweep *s = ctx;
    uint8_t h[32];
    hash_of(s->kv, h);
    if (rv != 0) {
        assert_true(fired);
        if ((rv != CMN_ENOMEM && rv != CMN_ECRYPTO) || s->errmsg[0] == '\0')
            fail_msg("kv_apply, allocation %lu failed: code %d (%s), message '%s'", n, rv,
                     cmn_strerror(rv), s->errmsg);
        assert_int_equal(kv_applied_index(s->kv), BASE_N);
        assert_memory_equal(h, s->before, 32); /* nothing half-written */
        return;
    }
    if (n == 0) { /* the clean run: what every other run that succeeds must match */
        s->expect = s->res;
        s->expect.removed = NULL; /* freed with s->res below; the count is compared */
        memcpy(s->after, h, 32);
    } else {
        if (s->res.rejected != s->expect.rejected || s->res.code != s->expect.code ||
            s->res.duplicate != s->expect.duplicate || strcmp(s->res.reason, s->expect.reason) != 0)
            fail_msg("kv_apply, allocation %lu failed: succeeded with another outcome "
                     "(rejected %d '%s', clean run: rejected %d '%s')",
                     n, s->res.rejected, s->res.reason, s->expect.rejected, s->expect.reason);
        if (s->res.effects != s->expect.effects || s->res.n_removed != s->expect.n_removed)
            fail_msg("kv_apply, allocation %lu failed: succeeded with other effects", n);
        if (memcmp(h, s->after, 32) != 0)
            fail_msg("kv_apply, allocation %lu failed: succeeded with another state", n);
    }
    kv_result_fini(&s->res);
    /* the store moved on: the next run starts again from the base state */
    drop_store(s->kv, s->dir);
    s->kv = fresh_store(&s->dir);
}

static void sweep_apply_type(int type, const struct cmn_buf *entry)
{
    struct apply_sweep s;
    memset(&s, 0, sizeof s);
    s.kv = fresh_store(&s.dir);
    hash_of(s.kv, s.before);
    if (entry)
        assert_int_equal(cmn_buf_append(&s.entry, entry->data, entry->len), 0);
    else
        make_cmd(type, &s.entry);
    unsigned long n = fa_sweep(apply_op, apply_check, &s, SWEEP_MAX);
    if (type != 0 && s.expect.rejected)
        fail_msg("command type %d was rejected in the clean run: %s", type, s.expect.reason);
    assert_true(n >= 1);
    cmn_buf_fini(&s.entry);
    drop_store(s.kv, s.dir);
}

static void sweep_apply_each_command(void **state)
{
    (void)state;
    static const int types[] = {KV_CMD_PUT_CERTS,      KV_CMD_EDIT_CERT, KV_CMD_DELETE_CERTS,
                                KV_CMD_PURGE_EXPIRED,  KV_CMD_PUT_NODE,  KV_CMD_REMOVE_NODE,
                                KV_CMD_SET_ISSUING_CA, KV_CMD_AUDIT,     KV_CMD_REFRESH_CRL};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        sweep_apply_type(types[i], NULL);
}

static void sweep_apply_malformed(void **state)
{
    (void)state;
    /* Recorded as a rejected entry on every node alike: an allocation failure must not turn
     * a valid entry into that, nor this one into anything else. */
    struct cmn_buf junk;
    cmn_buf_init(&junk, false);
    const uint8_t b[16] = {KV_CMD_PUT_CERTS, 0x81};
    assert_int_equal(cmn_buf_append(&junk, b, sizeof b), 0);
    sweep_apply_type(0, &junk);
    cmn_buf_fini(&junk);
}

/* ---- command encode and decode ---- */

struct codec {
    struct cmn_buf entry, out;
    struct kv_cmd cmd;
    char errmsg[CMN_ERRMSG_SIZE];
};

static int decode_op(void *ctx)
{
    struct codec *s = ctx;
    s->errmsg[0] = '\0';
    return kv_cmd_decode(s->entry.data, s->entry.len, &s->cmd, s->errmsg);
}

static void decode_check(void *ctx, unsigned long n, int rv, bool fired)
{
    struct codec *s = ctx;
    if (rv != 0) {
        assert_true(fired);
        if (rv != CMN_ENOMEM || s->errmsg[0] == '\0')
            fail_msg("kv_cmd_decode, allocation %lu failed: code %d (%s), message '%s'", n, rv,
                     cmn_strerror(rv), s->errmsg);
        return;
    }
    assert_int_equal(s->cmd.type, KV_CMD_PUT_CERTS);
    assert_int_equal(s->cmd.u.put.n, 1);
    assert_int_equal(s->cmd.u.put.certs[0].n_perms, 1);
    assert_string_equal(s->cmd.request_id, "rid-under-test");
    kv_cmd_fini(&s->cmd);
}

static int encode_op(void *ctx)
{
    struct codec *s = ctx;
    s->errmsg[0] = '\0';
    cmn_buf_init(&s->out, false);
    return kv_cmd_encode(&s->cmd, &s->out, s->errmsg);
}

static void encode_check(void *ctx, unsigned long n, int rv, bool fired)
{
    struct codec *s = ctx;
    if (rv != 0) {
        assert_true(fired);
        if (rv != CMN_ENOMEM || s->errmsg[0] == '\0')
            fail_msg("kv_cmd_encode, allocation %lu failed: code %d (%s), message '%s'", n, rv,
                     cmn_strerror(rv), s->errmsg);
    } else {
        assert_int_equal(s->out.len, s->entry.len);
        assert_memory_equal(s->out.data, s->entry.data, s->entry.len);
    }
    cmn_buf_fini(&s->out);
}

static void sweep_cmd_codec(void **state)
{
    (void)state;
    struct codec s;
    memset(&s, 0, sizeof s);
    make_cmd(KV_CMD_PUT_CERTS, &s.entry);
    assert_true(fa_sweep(decode_op, decode_check, &s, SWEEP_MAX) > 1);
    char err[CMN_ERRMSG_SIZE] = "";
    assert_int_equal(kv_cmd_decode(s.entry.data, s.entry.len, &s.cmd, err), 0);
    assert_true(fa_sweep(encode_op, encode_check, &s, SWEEP_MAX) > 1);
    kv_cmd_fini(&s.cmd);
    cmn_buf_fini(&s.entry);
}

/* ---- snapshots ---- */

struct snap {
    struct kv *kv;
    char *dir;
    struct kv_snap *view;
    struct cmn_buf out, image;
    struct kv *target;
    char *target_dir;
    uint8_t target_before[32], expect[32];
    char errmsg[CMN_ERRMSG_SIZE];
};

static int serialize_op(void *ctx)
{
    struct snap *s = ctx;
    s->errmsg[0] = '\0';
    cmn_buf_init(&s->out, false);
    return kv_snap_serialize(s->view, &s->out, s->errmsg);
}

static void serialize_check(void *ctx, unsigned long n, int rv, bool fired)
{
    struct snap *s = ctx;
    if (rv != 0) {
        assert_true(fired);
        if ((rv != CMN_ENOMEM && rv != CMN_ECRYPTO) || s->errmsg[0] == '\0')
            fail_msg("kv_snap_serialize, allocation %lu failed: code %d (%s), message '%s'", n, rv,
                     cmn_strerror(rv), s->errmsg);
    } else if (n == 0) {
        assert_int_equal(cmn_buf_append(&s->image, s->out.data, s->out.len), 0);
    } else {
        assert_int_equal(s->out.len, s->image.len);
        assert_memory_equal(s->out.data, s->image.data, s->image.len);
    }
    cmn_buf_fini(&s->out);
}

static int restore_op(void *ctx)
{
    struct snap *s = ctx;
    s->errmsg[0] = '\0';
    return kv_restore(s->target, s->image.data, s->image.len, s->errmsg);
}

static void restore_check(void *ctx, unsigned long n, int rv, bool fired)
{
    struct snap *s = ctx;
    uint8_t h[32];
    hash_of(s->target, h);
    if (rv != 0) {
        assert_true(fired);
        if ((rv != CMN_ENOMEM && rv != CMN_ECRYPTO) || s->errmsg[0] == '\0')
            fail_msg("kv_restore, allocation %lu failed: code %d (%s), message '%s'", n, rv,
                     cmn_strerror(rv), s->errmsg);
        assert_int_equal(kv_applied_index(s->target), 0);
        assert_memory_equal(h, s->target_before, 32);
        return;
    }
    assert_int_equal(kv_applied_index(s->target), BASE_N);
    assert_memory_equal(h, s->expect, 32);
    /* restored: a fresh target for the next run */
    kv_close(s->target);
    fx_rmrf(s->target_dir);
    free(s->target_dir);
    s->target_dir = fx_tmpdir();
    char err[CMN_ERRMSG_SIZE] = "";
    assert_int_equal(kv_open(s->target_dir, &s->target, err), 0);
}

static void sweep_snapshot(void **state)
{
    (void)state;
    struct snap s;
    memset(&s, 0, sizeof s);
    s.kv = fresh_store(&s.dir);
    hash_of(s.kv, s.expect);
    char err[CMN_ERRMSG_SIZE] = "";
    assert_int_equal(kv_snap_begin(s.kv, &s.view, err), 0);
    cmn_buf_init(&s.image, false);
    assert_true(fa_sweep(serialize_op, serialize_check, &s, SWEEP_MAX) > 1);
    kv_snap_end(s.view);

    s.target_dir = fx_tmpdir();
    assert_int_equal(kv_open(s.target_dir, &s.target, err), 0);
    hash_of(s.target, s.target_before);
    assert_true(fa_sweep(restore_op, restore_check, &s, SWEEP_MAX) > 1);
    kv_close(s.target);
    fx_rmrf(s.target_dir);
    free(s.target_dir);
    cmn_buf_fini(&s.image);
    drop_store(s.kv, s.dir);
}

int main(void)
{
    if (!fa_init()) {
        fprintf(stderr, "OpenSSL allocated before main: its allocations cannot be failed\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sweep_apply_each_command),
        cmocka_unit_test(sweep_apply_malformed),
        cmocka_unit_test(sweep_cmd_codec),
        cmocka_unit_test(sweep_snapshot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
