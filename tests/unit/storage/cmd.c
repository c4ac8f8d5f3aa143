/* The Raft command codec: round trips, padding, and strict refusal of bad entries. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "fixture.h"
#include "storage/mp.h"

/* One command of every type, encoded. */
static void build(int type, struct cmn_buf *out)
{
    struct kv_cmd c;
    struct kv_cert cert;
    kv_cmd_init(&c, (enum kv_cmd_type)type);
    fx_actor(&c, "0123456789abcdef0123456789abcdef01234567", KV_CL_CLUSTER_ADMIN);
    c.request_id = strdup("req-1");
    switch (type) {
    case KV_CMD_PUT_CERTS:
        fx_cert(&cert, 7, "app", KV_CL_VALID_USER);
        fx_perm(&cert, "orders", KV_ACC_READ);
        cert.twofa_key = strdup("JBSWY3DPEHPK3PXP");
        c.u.put.certs = malloc(sizeof cert);
        c.u.put.certs[0] = cert;
        c.u.put.n = 1;
        c.u.put.same_pkph = true;
        break;
    case KV_CMD_EDIT_CERT:
        snprintf(c.u.edit.thumbprint, sizeof c.u.edit.thumbprint, "%040d", 1);
        c.u.edit.name = strdup("renamed");
        c.u.edit.clearance = KV_CL_OPERATOR;
        c.u.edit.perms = calloc(1, sizeof *c.u.edit.perms);
        c.u.edit.perms[0].db = strdup("db1");
        c.u.edit.n_perms = 1;
        c.u.edit.twofa_key = strdup("ABC");
        break;
    case KV_CMD_DELETE_CERTS:
        c.u.del.thumbprints = calloc(2, sizeof *c.u.del.thumbprints);
        strcpy(c.u.del.thumbprints[0], "aa");
        strcpy(c.u.del.thumbprints[1], "bb");
        c.u.del.n = 2;
        c.u.del.reason = 4;
        break;
    case KV_CMD_SET_ISSUING_CA:
        c.u.set_ca.cert_der = malloc(3);
        memcpy(c.u.set_ca.cert_der, "abc", 3);
        c.u.set_ca.cert_len = 3;
        assert_int_equal(cmn_buf_append(&c.u.set_ca.key_der, "key", 3), 0);
        c.u.set_ca.chain_der = calloc(1, sizeof *c.u.set_ca.chain_der);
        c.u.set_ca.chain_len = calloc(1, sizeof *c.u.set_ca.chain_len);
        c.u.set_ca.chain_der[0] = (uint8_t *)strdup("root");
        c.u.set_ca.chain_len[0] = 4;
        c.u.set_ca.n_chain = 1;
        break;
    case KV_CMD_PUT_NODE:
    case KV_CMD_REMOVE_NODE:
        strcpy(c.u.node.tag, "D");
        c.u.node.server_url = strdup("https://127.0.0.1:8084");
        c.u.node.tcp_url = strdup("tls://127.0.0.1:9084");
        break;
    case KV_CMD_REPLACE_INSTALL:
        assert_int_equal(cmn_buf_append(&c.u.replace.pfx, "pfxbytes", 8), 0);
        break;
    case KV_CMD_REPLACE_RECEIVED:
    case KV_CMD_REPLACE_REPLACED:
        strcpy(c.u.confirm.tag, "B");
        break;
    case KV_CMD_AUDIT:
        c.u.audit.event = strdup("node A rotated its certificate");
        break;
    }
    fx_encode(&c, out);
}

static void round_trip_every_type(void **state)
{
    for (int t = 1; t <= KV_CMD_TYPE_MAX; t++) {
        struct cmn_buf a, b;
        build(t, &a);
        assert_int_equal(a.len % 8, 0);
        struct kv_cmd c;
        char err[CMN_ERRMSG_SIZE] = "";
        int rv = kv_cmd_decode(a.data, a.len, &c, err);
        if (rv != 0)
            fail_msg("type %d: %s", t, err);
        assert_int_equal(c.type, t);
        assert_string_equal(c.request_id, "req-1");
        assert_int_equal(c.actor_clearance, KV_CL_CLUSTER_ADMIN);
        assert_true(c.time_ms == 1750000000000);
        fx_encode(&c, &b); /* re-encoding gives the same bytes */
        assert_int_equal(a.len, b.len);
        assert_memory_equal(a.data, b.data, a.len);
        cmn_buf_fini(&a);
        cmn_buf_fini(&b);
    }
}

static void decoded_fields(void **state)
{
    struct cmn_buf a;
    build(KV_CMD_PUT_CERTS, &a);
    struct kv_cmd c;
    assert_int_equal(kv_cmd_decode(a.data, a.len, &c, NULL), 0);
    assert_int_equal(c.u.put.n, 1);
    assert_true(c.u.put.same_pkph);
    assert_string_equal(c.u.put.certs[0].name, "app");
    assert_string_equal(c.u.put.certs[0].twofa_key, "JBSWY3DPEHPK3PXP");
    assert_int_equal(c.u.put.certs[0].n_perms, 1);
    assert_string_equal(c.u.put.certs[0].perms[0].db, "orders");
    assert_int_equal(c.u.put.certs[0].perms[0].access, KV_ACC_READ);
    assert_int_equal(kv_cert_validate(&c.u.put.certs[0], NULL), 0);
    kv_cmd_fini(&c);
    cmn_buf_fini(&a);
}

static void every_truncation_refused(void **state)
{
    for (int t = 1; t <= KV_CMD_TYPE_MAX; t++) {
        struct cmn_buf a;
        build(t, &a);
        for (size_t len = 0; len < a.len; len++) {
            uint8_t *copy = malloc(len ? len : 1); /* exact size: ASan sees any overread */
            memcpy(copy, a.data, len);
            struct kv_cmd c;
            char err[CMN_ERRMSG_SIZE] = "";
            int rv = kv_cmd_decode(copy, len, &c, err);
            free(copy);
            if (rv == 0)
                fail_msg("type %d truncated to %zu decoded", t, len);
            assert_true(err[0] != '\0');
        }
        cmn_buf_fini(&a);
    }
}

static void oversized_refused(void **state)
{
    size_t len = KV_CMD_MAX + 8;
    uint8_t *p = calloc(1, len);
    p[0] = KV_CMD_AUDIT;
    struct kv_cmd c;
    char err[CMN_ERRMSG_SIZE] = "";
    assert_int_equal(kv_cmd_decode(p, len, &c, err), CMN_ETOOBIG);
    assert_non_null(strstr(err, "more than"));
    free(p);
}

/* Builds [type][map] with a caller-written map, padded. */
static void raw(struct cmn_buf *out, uint8_t type, void (*body)(msgpack_packer *))
{
    cmn_buf_init(out, false);
    assert_int_equal(cmn_buf_append(out, &type, 1), 0);
    msgpack_packer pk;
    kv_packer_init(&pk, out);
    body(&pk);
    assert_int_equal(cmn_buf_pad(out, 8), 0);
}

static void header(msgpack_packer *pk, int version, int n_extra)
{
    msgpack_pack_map(pk, 5 + n_extra);
    assert_int_equal(kv__pk_u64(pk, "v", (uint64_t)version), 0);
    assert_int_equal(kv__pk_i64(pk, "ts", 1), 0);
    assert_int_equal(kv__pk_str(pk, "by", ""), 0);
    assert_int_equal(kv__pk_u64(pk, "byc", 1), 0);
}

static void v2_audit(msgpack_packer *pk)
{
    header(pk, 2, 0);
    assert_int_equal(kv__pk_key(pk, "b"), 0);
    msgpack_pack_map(pk, 1);
    assert_int_equal(kv__pk_str(pk, "ev", "x"), 0);
}

static void ts_as_string(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 5);
    assert_int_equal(kv__pk_u64(pk, "v", 1), 0);
    assert_int_equal(kv__pk_str(pk, "ts", "yesterday"), 0);
    assert_int_equal(kv__pk_str(pk, "by", ""), 0);
    assert_int_equal(kv__pk_u64(pk, "byc", 1), 0);
    assert_int_equal(kv__pk_key(pk, "b"), 0);
    msgpack_pack_map(pk, 1);
    assert_int_equal(kv__pk_str(pk, "ev", "x"), 0);
}

static void unknown_field(msgpack_packer *pk)
{
    header(pk, 1, 1);
    assert_int_equal(kv__pk_key(pk, "b"), 0);
    msgpack_pack_map(pk, 1);
    assert_int_equal(kv__pk_str(pk, "ev", "x"), 0);
    assert_int_equal(kv__pk_str(pk, "surprise", "x"), 0);
}

static void missing_body(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 4);
    assert_int_equal(kv__pk_u64(pk, "v", 1), 0);
    assert_int_equal(kv__pk_i64(pk, "ts", 1), 0);
    assert_int_equal(kv__pk_str(pk, "by", ""), 0);
    assert_int_equal(kv__pk_u64(pk, "byc", 1), 0);
}

static void expect(uint8_t type, void (*body)(msgpack_packer *), int code, const char *words)
{
    struct cmn_buf b;
    raw(&b, type, body);
    struct kv_cmd c;
    char err[CMN_ERRMSG_SIZE] = "";
    assert_int_equal(kv_cmd_decode(b.data, b.len, &c, err), code);
    if (strstr(err, words) == NULL)
        fail_msg("message '%s' lacks '%s'", err, words);
    cmn_buf_fini(&b);
}

/* The envelope alone: what raft/ reads of a proposal (its request id), without the body. */
static void head_without_body(void **state)
{
    for (int t = 1; t <= KV_CMD_TYPE_MAX; t++) {
        struct cmn_buf a;
        build(t, &a);
        struct kv_cmd c;
        char err[CMN_ERRMSG_SIZE] = "";
        if (kv_cmd_decode_head(a.data, a.len, &c, err) != 0)
            fail_msg("type %d: %s", t, err);
        assert_int_equal(c.type, t);
        assert_string_equal(c.request_id, "req-1");
        assert_true(c.time_ms == 1750000000000);
        assert_string_equal(c.actor, "0123456789abcdef0123456789abcdef01234567");
        if (t == KV_CMD_PUT_CERTS)
            assert_null(c.u.put.certs); /* the body is not read */
        kv_cmd_fini(&c);
        /* the envelope is checked as strictly as by kv_cmd_decode */
        for (size_t cut = 8; cut < a.len; cut += 8)
            assert_int_not_equal(kv_cmd_decode_head(a.data, cut, &c, NULL), 0);
        cmn_buf_fini(&a);
    }
    struct cmn_buf b;
    raw(&b, KV_CMD_AUDIT, v2_audit);
    struct kv_cmd c;
    assert_int_equal(kv_cmd_decode_head(b.data, b.len, &c, NULL), CMN_EUNSUPPORTED);
    cmn_buf_fini(&b);
}

static void strict_refusals(void **state)
{
    expect(KV_CMD_AUDIT, v2_audit, CMN_EUNSUPPORTED, "version");
    expect(KV_CMD_AUDIT, ts_as_string, CMN_EMALFORMED, "'ts'");
    expect(KV_CMD_AUDIT, unknown_field, CMN_EMALFORMED, "unknown field");
    expect(KV_CMD_AUDIT, missing_body, CMN_EMALFORMED, "missing field 'b'");
    expect(99, missing_body, CMN_EUNSUPPORTED, "unknown type");
}

static void padding_rules(void **state)
{
    struct cmn_buf a;
    build(KV_CMD_AUDIT, &a);
    struct kv_cmd c;
    char err[CMN_ERRMSG_SIZE] = "";
    a.data[a.len - 1] = 0x01; /* non-zero padding */
    int rv = kv_cmd_decode(a.data, a.len, &c, err);
    /* either the last byte was padding (refused as such) or part of the body (refused too) */
    assert_int_not_equal(rv, 0);
    a.data[a.len - 1] = 0;
    assert_int_equal(cmn_buf_append(&a, "\0\0\0\0\0\0\0\0", 8), 0); /* 8+ bytes of padding */
    assert_int_equal(kv_cmd_decode(a.data, a.len, &c, err), CMN_EMALFORMED);
    assert_non_null(strstr(err, "after the body"));
    assert_int_equal(kv_cmd_decode(a.data, 13, &c, err), CMN_EMALFORMED); /* not a multiple */
    cmn_buf_fini(&a);
}

static void huge_declared_sizes(void **state)
{
    /* Containers and strings claiming 4 billion items must fail fast, without allocating. */
    static const uint8_t cases[][8] = {
        {KV_CMD_AUDIT, 0xdd, 0xff, 0xff, 0xff, 0xff, 0, 0}, /* array32 */
        {KV_CMD_AUDIT, 0xdf, 0xff, 0xff, 0xff, 0xff, 0, 0}, /* map32 */
        {KV_CMD_AUDIT, 0xdb, 0xff, 0xff, 0xff, 0xff, 0, 0}, /* str32 */
        {KV_CMD_AUDIT, 0xc6, 0xff, 0xff, 0xff, 0xff, 0, 0}, /* bin32 */
        {KV_CMD_AUDIT, 0xc1, 0, 0, 0, 0, 0, 0},             /* never used */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct kv_cmd c;
        char err[CMN_ERRMSG_SIZE] = "";
        assert_int_not_equal(kv_cmd_decode(cases[i], 8, &c, err), 0);
    }
    /* deep nesting */
    uint8_t deep[64];
    deep[0] = KV_CMD_AUDIT;
    memset(deep + 1, 0x91, sizeof deep - 1);
    struct kv_cmd c;
    assert_int_not_equal(kv_cmd_decode(deep, sizeof deep, &c, NULL), 0);
}

static void precheck_counts(void **state)
{
    size_t used = 0;
    static const uint8_t ok[] = {0x82, 0xa1, 'a', 0x01, 0xa1, 'b', 0x92, 0xc3, 0xc0};
    assert_int_equal(kv_mp_precheck(ok, sizeof ok, 8, &used), 0);
    assert_int_equal(used, sizeof ok);
    assert_int_equal(kv_mp_precheck(ok, sizeof ok - 1, 8, &used), CMN_ETRUNCATED);
}

/* `cmd --write-seeds DIR` writes one encoded command of each type: the fuzz seed corpus. */
static int write_seeds(const char *dir)
{
    for (int t = 1; t <= KV_CMD_TYPE_MAX; t++) {
        struct cmn_buf a;
        build(t, &a);
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, kv_cmd_type_name(t));
        FILE *f = fopen(path, "wb");
        if (f == NULL || fwrite(a.data, 1, a.len, f) != a.len)
            return 1;
        fclose(f);
        cmn_buf_fini(&a);
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--write-seeds") == 0)
        return write_seeds(argv[2]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip_every_type), cmocka_unit_test(decoded_fields),
        cmocka_unit_test(head_without_body),     cmocka_unit_test(every_truncation_refused),
        cmocka_unit_test(oversized_refused),     cmocka_unit_test(strict_refusals),
        cmocka_unit_test(padding_rules),         cmocka_unit_test(huge_declared_sizes),
        cmocka_unit_test(precheck_counts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
