/* Encoding and strict decoding of the trust-state Raft commands. */
#include "storage/cmd.h"

#include <stdlib.h>
#include <string.h>

#include "storage/mp.h"

#define PKM(expr) TRY((expr) ? CMN_ENOMEM : 0)

static const char *const type_names[KV_CMD_TYPE_MAX + 1] = {
    "?",
    "PutCertificates",
    "EditCertificate",
    "DeleteCertificates",
    "PurgeExpired",
    "SetIssuingCA",
    "PutNode",
    "RemoveNode",
    "InstallServerCertificate",
    "ConfirmServerCertificateReceipt",
    "ConfirmServerCertificateReplaced",
    "RecordAudit",
    "RefreshCRL",
    "TwoFactorLogin",
    "TwoFactorWrongCode",
    "TwoFactorLogout",
    "ResealTwoFactorKey",
    "ResetServerCertificateReplacement",
};

const char *kv_cmd_type_name(int type)
{
    return type >= 1 && type <= KV_CMD_TYPE_MAX ? type_names[type] : "?";
}

void kv_cmd_init(struct kv_cmd *c, enum kv_cmd_type type)
{
    memset(c, 0, sizeof *c);
    c->type = type;
    if (type == KV_CMD_SET_ISSUING_CA)
        cmn_buf_init(&c->u.set_ca.key_der, true);
    if (type == KV_CMD_REPLACE_INSTALL)
        cmn_buf_init(&c->u.replace.pfx, true);
}

void kv_cmd_fini(struct kv_cmd *c)
{
    free(c->request_id);
    switch (c->type) {
    case KV_CMD_PUT_CERTS:
        kv_cert_free_array(c->u.put.certs, c->u.put.n);
        break;
    case KV_CMD_EDIT_CERT:
        free(c->u.edit.name);
        kv_perms_free(c->u.edit.perms, c->u.edit.n_perms);
        if (c->u.edit.twofa_key) {
            cmn_cleanse(c->u.edit.twofa_key, strlen(c->u.edit.twofa_key));
            free(c->u.edit.twofa_key);
        }
        break;
    case KV_CMD_DELETE_CERTS:
        free(c->u.del.thumbprints);
        break;
    case KV_CMD_SET_ISSUING_CA:
        kv_issuing_ca_fini(&c->u.set_ca);
        break;
    case KV_CMD_PUT_NODE:
    case KV_CMD_REMOVE_NODE:
        kv_node_fini(&c->u.node);
        break;
    case KV_CMD_REPLACE_INSTALL:
        kv_replacement_fini(&c->u.replace);
        break;
    case KV_CMD_REPLACE_RECEIVED:
    case KV_CMD_REPLACE_REPLACED:
        free(c->u.confirm.note);
        break;
    case KV_CMD_AUDIT:
        free(c->u.audit.event);
        break;
    case KV_CMD_RESEAL_TOTP:
        free(c->u.reseal.old_key);
        free(c->u.reseal.new_key);
        break;
    default:
        break;
    }
    memset(c, 0, sizeof *c);
}

/* ---- encoding ---- */

static int pack_body(msgpack_packer *pk, const struct kv_cmd *c)
{
    switch (c->type) {
    case KV_CMD_PUT_CERTS:
        PKM(msgpack_pack_map(pk, 2));
        TRY(kv__pk_key(pk, "certs"));
        PKM(msgpack_pack_array(pk, c->u.put.n));
        for (size_t i = 0; i < c->u.put.n; i++)
            TRY(kv_cert_pack(pk, &c->u.put.certs[i]));
        return kv__pk_bool(pk, "pk", c->u.put.same_pkph);
    case KV_CMD_EDIT_CERT:
        PKM(msgpack_pack_map(pk, 5 + (c->u.edit.twofa_key ? 1 : 0)));
        TRY(kv__pk_str(pk, "tp", c->u.edit.thumbprint));
        TRY(kv__pk_str(pk, "name", c->u.edit.name ? c->u.edit.name : ""));
        TRY(kv__pk_u64(pk, "cl", (uint64_t)c->u.edit.clearance));
        TRY(kv__perms_pack(pk, c->u.edit.perms, c->u.edit.n_perms));
        TRY(kv__pk_bool(pk, "del2fa", c->u.edit.delete_twofa));
        if (c->u.edit.twofa_key)
            TRY(kv__pk_str(pk, "2fa", c->u.edit.twofa_key));
        return 0;
    case KV_CMD_DELETE_CERTS:
        PKM(msgpack_pack_map(pk, 2));
        TRY(kv__pk_strarray(pk, "tps", c->u.del.thumbprints ? c->u.del.thumbprints[0] : "",
                            c->u.del.n, sizeof *c->u.del.thumbprints));
        return kv__pk_i64(pk, "why", c->u.del.reason);
    case KV_CMD_PURGE_EXPIRED:
    case KV_CMD_REFRESH_CRL:
    case KV_CMD_REPLACE_RESET:
        PKM(msgpack_pack_map(pk, 0));
        return 0;
    case KV_CMD_SET_ISSUING_CA:
        return kv_issuing_ca_pack(pk, &c->u.set_ca);
    case KV_CMD_PUT_NODE:
        return kv_node_pack(pk, &c->u.node);
    case KV_CMD_REMOVE_NODE:
        PKM(msgpack_pack_map(pk, 1));
        return kv__pk_str(pk, "tag", c->u.node.tag);
    case KV_CMD_REPLACE_INSTALL:
        return kv_replacement_pack(pk, &c->u.replace);
    case KV_CMD_REPLACE_RECEIVED:
    case KV_CMD_REPLACE_REPLACED:
        PKM(msgpack_pack_map(pk, c->u.confirm.note ? 3 : 2));
        TRY(kv__pk_str(pk, "tp", c->u.confirm.thumbprint));
        TRY(kv__pk_str(pk, "tag", c->u.confirm.tag));
        return c->u.confirm.note ? kv__pk_str(pk, "note", c->u.confirm.note) : 0;
    case KV_CMD_AUDIT:
        PKM(msgpack_pack_map(pk, 1));
        return kv__pk_str(pk, "ev", c->u.audit.event ? c->u.audit.event : "");
    case KV_CMD_TWOFA_LOGIN:
    case KV_CMD_TWOFA_FAIL:
    case KV_CMD_TWOFA_LOGOUT:
        PKM(msgpack_pack_map(pk, 5));
        TRY(kv__pk_str(pk, "tp", c->u.twofa.thumbprint));
        TRY(kv__pk_u64(pk, "step", c->u.twofa.step));
        TRY(kv__pk_i64(pk, "exp", c->u.twofa.expires_ms));
        TRY(kv__pk_bool(pk, "lim", c->u.twofa.has_limits));
        return kv__pk_bin(pk, "ck", c->u.twofa.cookie_hash, sizeof c->u.twofa.cookie_hash);
    case KV_CMD_RESEAL_TOTP:
        PKM(msgpack_pack_map(pk, 3));
        TRY(kv__pk_str(pk, "tp", c->u.reseal.thumbprint));
        TRY(kv__pk_str(pk, "old", c->u.reseal.old_key ? c->u.reseal.old_key : ""));
        return kv__pk_str(pk, "new", c->u.reseal.new_key ? c->u.reseal.new_key : "");
    }
    return CMN_EINVALID;
}

int kv_cmd_encode(const struct kv_cmd *c, struct cmn_buf *out, char *errmsg)
{
    if (c->type < 1 || c->type > KV_CMD_TYPE_MAX)
        return cmn_fail(errmsg, CMN_EINVALID, "command: unknown type %d", (int)c->type);
    size_t start = out->len;
    uint8_t type = (uint8_t)c->type;
    int rv = cmn_buf_append(out, &type, 1);
    msgpack_packer pk;
    kv_packer_init(&pk, out);
    if (rv == 0)
        rv = msgpack_pack_map(&pk, 5 + (c->request_id ? 1 : 0) + (c->actor_registered ? 1 : 0))
                 ? CMN_ENOMEM
                 : 0;
    if (rv == 0)
        rv = kv__pk_u64(&pk, "v", KV_CMD_VERSION);
    if (rv == 0 && c->request_id)
        rv = kv__pk_str(&pk, "rid", c->request_id);
    if (rv == 0)
        rv = kv__pk_i64(&pk, "ts", c->time_ms);
    if (rv == 0)
        rv = kv__pk_str(&pk, "by", c->actor);
    if (rv == 0)
        rv = kv__pk_u64(&pk, "byc", (uint64_t)c->actor_clearance);
    if (rv == 0 && c->actor_registered)
        rv = kv__pk_bool(&pk, "abr", true);
    if (rv == 0)
        rv = kv__pk_key(&pk, "b");
    if (rv == 0)
        rv = pack_body(&pk, c);
    if (rv == 0)
        rv = cmn_buf_pad(out, 8);
    if (rv == 0 && out->len - start > KV_CMD_MAX)
        rv = cmn_fail(errmsg, CMN_ETOOBIG, "command: %zu bytes, more than %u", out->len - start,
                      KV_CMD_MAX);
    if (rv != 0) {
        out->len = start;
        if (rv == CMN_ENOMEM)
            cmn_fail(errmsg, rv, "command: out of memory");
    }
    return rv;
}

/* ---- decoding ---- */

enum { H_V, H_RID, H_TS, H_BY, H_BYC, H_B, H_ABR, H_N };
static const char *const head_fields[H_N] = {"v", "rid", "ts", "by", "byc", "b", "abr"};

static int put_field(void *ctx, int f, const msgpack_object *v, char *errmsg)
{
    struct kv_cmd *c = ctx;
    const msgpack_object_array *a = NULL;
    if (f == 1)
        return kv__get_bool(v, "pk", &c->u.put.same_pkph, errmsg);
    TRY(kv__get_array(v, "certs", KV_COLLECTION_MAX, &a, errmsg));
    if (a->size == 0)
        return cmn_fail(errmsg, CMN_EMALFORMED, "field 'certs': empty");
    c->u.put.certs = calloc(a->size, sizeof *c->u.put.certs);
    if (c->u.put.certs == NULL)
        return CMN_ENOMEM;
    for (uint32_t i = 0; i < a->size; i++) {
        TRY(kv_cert_unpack(&a->ptr[i], &c->u.put.certs[i], errmsg));
        c->u.put.n = i + 1;
    }
    return 0;
}

static int edit_field(void *ctx, int f, const msgpack_object *v, char *errmsg)
{
    struct kv_cmd *c = ctx;
    uint64_t u;
    switch (f) {
    case 0:
        return kv__get_strbuf(v, "tp", c->u.edit.thumbprint, sizeof c->u.edit.thumbprint, errmsg);
    case 1:
        return kv__get_str(v, "name", KV_NAME_MAX, &c->u.edit.name, errmsg);
    case 2:
        TRY(kv__get_u64(v, "cl", &u, errmsg));
        if (u >= KV_CL_COUNT)
            return cmn_fail(errmsg, CMN_EMALFORMED, "field 'cl': unknown clearance");
        c->u.edit.clearance = (enum kv_clearance)u;
        return 0;
    case 3:
        return kv__perms_unpack(v, &c->u.edit.perms, &c->u.edit.n_perms, errmsg);
    case 4:
        return kv__get_bool(v, "del2fa", &c->u.edit.delete_twofa, errmsg);
    case 5:
        return kv__get_str(v, "2fa", 256, &c->u.edit.twofa_key, errmsg);
    }
    return CMN_EMALFORMED;
}

static int del_field(void *ctx, int f, const msgpack_object *v, char *errmsg)
{
    struct kv_cmd *c = ctx;
    int64_t why;
    if (f == 0)
        return kv__get_strarray(v, "tps", KV_DELETE_MAX, sizeof *c->u.del.thumbprints,
                                &c->u.del.thumbprints, &c->u.del.n, errmsg);
    TRY(kv__get_i64(v, "why", &why, errmsg));
    if (why < 0 || why > 10)
        return cmn_fail(errmsg, CMN_EMALFORMED, "field 'why': not a CRL reason");
    c->u.del.reason = (int)why;
    return 0;
}

static int tag_field(void *ctx, int f, const msgpack_object *v, char *errmsg)
{
    struct kv_cmd *c = ctx;
    return kv__get_strbuf(v, "tag", c->u.node.tag, sizeof c->u.node.tag, errmsg);
}

static int confirm_field(void *ctx, int f, const msgpack_object *v, char *errmsg)
{
    struct kv_cmd *c = ctx;
    if (f == 0)
        return kv__get_strbuf(v, "tp", c->u.confirm.thumbprint, sizeof c->u.confirm.thumbprint,
                              errmsg);
    if (f == 2)
        return kv__get_str(v, "note", KV_REPL_NOTE_MAX - KV_TAG_MAX - 3, &c->u.confirm.note,
                           errmsg);
    return kv__get_strbuf(v, "tag", c->u.confirm.tag, sizeof c->u.confirm.tag, errmsg);
}

static int audit_field(void *ctx, int f, const msgpack_object *v, char *errmsg)
{
    struct kv_cmd *c = ctx;
    return kv__get_str(v, "ev", 4096, &c->u.audit.event, errmsg);
}

static int twofa_field(void *ctx, int f, const msgpack_object *v, char *errmsg)
{
    struct kv_cmd *c = ctx;
    switch (f) {
    case 0:
        return kv__get_strbuf(v, "tp", c->u.twofa.thumbprint, sizeof c->u.twofa.thumbprint, errmsg);
    case 1:
        return kv__get_u64(v, "step", &c->u.twofa.step, errmsg);
    case 2:
        return kv__get_i64(v, "exp", &c->u.twofa.expires_ms, errmsg);
    case 3:
        return kv__get_bool(v, "lim", &c->u.twofa.has_limits, errmsg);
    case 4:
        return kv__get_binbuf(v, "ck", c->u.twofa.cookie_hash, sizeof c->u.twofa.cookie_hash,
                              errmsg);
    }
    return CMN_EMALFORMED;
}

static int reseal_field(void *ctx, int f, const msgpack_object *v, char *errmsg)
{
    struct kv_cmd *c = ctx;
    if (f == 0)
        return kv__get_strbuf(v, "tp", c->u.reseal.thumbprint, sizeof c->u.reseal.thumbprint,
                              errmsg);
    return kv__get_str(v, f == 1 ? "old" : "new", 256,
                       f == 1 ? &c->u.reseal.old_key : &c->u.reseal.new_key, errmsg);
}

static int none_field(void *ctx, int f, const msgpack_object *v, char *errmsg)
{
    return CMN_EMALFORMED;
}

static int unpack_body(struct kv_cmd *c, const msgpack_object *b, char *errmsg)
{
    static const char *const put_f[] = {"certs", "pk"};
    static const char *const edit_f[] = {"tp", "name", "cl", "perms", "del2fa", "2fa"};
    static const char *const del_f[] = {"tps", "why"};
    static const char *const tag_f[] = {"tag"};
    static const char *const confirm_f[] = {"tp", "tag", "note"};
    static const char *const audit_f[] = {"ev"};
    static const char *const twofa_f[] = {"tp", "step", "exp", "lim", "ck"};
    static const char *const reseal_f[] = {"tp", "old", "new"};
    switch (c->type) {
    case KV_CMD_PUT_CERTS:
        return kv__walk_map(b, "put", put_f, 2, 3, put_field, c, errmsg);
    case KV_CMD_EDIT_CERT:
        return kv__walk_map(b, "edit", edit_f, 6, 0x1f, edit_field, c, errmsg);
    case KV_CMD_DELETE_CERTS:
        TRY(kv__walk_map(b, "delete", del_f, 2, 3, del_field, c, errmsg));
        if (c->u.del.n == 0)
            return cmn_fail(errmsg, CMN_EMALFORMED, "delete: no thumbprint");
        return 0;
    case KV_CMD_PURGE_EXPIRED:
        return kv__walk_map(b, "purge", NULL, 0, 0, none_field, c, errmsg);
    case KV_CMD_REFRESH_CRL:
        return kv__walk_map(b, "refresh CRL", NULL, 0, 0, none_field, c, errmsg);
    case KV_CMD_REPLACE_RESET:
        return kv__walk_map(b, "reset replacement", NULL, 0, 0, none_field, c, errmsg);
    case KV_CMD_SET_ISSUING_CA:
        return kv_issuing_ca_unpack(b, &c->u.set_ca, errmsg);
    case KV_CMD_PUT_NODE:
        return kv_node_unpack(b, &c->u.node, errmsg);
    case KV_CMD_REMOVE_NODE:
        return kv__walk_map(b, "remove node", tag_f, 1, 1, tag_field, c, errmsg);
    case KV_CMD_REPLACE_INSTALL:
        return kv_replacement_unpack(b, &c->u.replace, errmsg);
    case KV_CMD_REPLACE_RECEIVED:
    case KV_CMD_REPLACE_REPLACED:
        return kv__walk_map(b, "confirm", confirm_f, 3, 3, confirm_field, c, errmsg);
    case KV_CMD_AUDIT:
        return kv__walk_map(b, "audit", audit_f, 1, 1, audit_field, c, errmsg);
    case KV_CMD_TWOFA_LOGIN:
    case KV_CMD_TWOFA_FAIL:
    case KV_CMD_TWOFA_LOGOUT:
        return kv__walk_map(b, "two-factor", twofa_f, 5, 0x1f, twofa_field, c, errmsg);
    case KV_CMD_RESEAL_TOTP:
        return kv__walk_map(b, "re-seal", reseal_f, 3, 7, reseal_field, c, errmsg);
    }
    return CMN_EUNSUPPORTED;
}

struct head_walk {
    struct kv_cmd *c;
    bool body; /* false: the envelope only */
};

static int head_field(void *ctx, int f, const msgpack_object *v, char *errmsg)
{
    const struct head_walk *w = ctx;
    struct kv_cmd *c = w->c;
    uint64_t u;
    switch (f) {
    case H_V:
        return 0; /* checked before the walk */
    case H_RID:
        TRY(kv__get_str(v, "rid", KV_RID_MAX, &c->request_id, errmsg));
        return 0;
    case H_TS:
        return kv__get_i64(v, "ts", &c->time_ms, errmsg);
    case H_BY:
        TRY(kv__get_strbuf(v, "by", c->actor, sizeof c->actor, errmsg));
        if (c->actor[0] && !cmn_is_hex(c->actor, KV_THUMB_LEN))
            return cmn_fail(errmsg, CMN_EMALFORMED, "field 'by': not a thumbprint");
        return 0;
    case H_BYC:
        TRY(kv__get_u64(v, "byc", &u, errmsg));
        if (u >= KV_CL_COUNT)
            return cmn_fail(errmsg, CMN_EMALFORMED, "field 'byc': unknown clearance");
        c->actor_clearance = (enum kv_clearance)u;
        return 0;
    case H_B:
        return w->body ? unpack_body(c, v, errmsg) : 0;
    case H_ABR:
        return kv__get_bool(v, "abr", &c->actor_registered, errmsg);
    }
    return CMN_EMALFORMED;
}

static int decode(const void *p, size_t len, struct kv_cmd *out, bool body, char *errmsg)
{
    const uint8_t *b = p;
    memset(out, 0, sizeof *out);
    if (len > KV_CMD_MAX)
        return cmn_fail(errmsg, CMN_ETOOBIG, "command: %zu bytes, more than %u", len, KV_CMD_MAX);
    if (len < 8 || len % 8 != 0)
        return cmn_fail(errmsg, len < 8 ? CMN_ETRUNCATED : CMN_EMALFORMED,
                        "command: length %zu is not a positive multiple of 8", len);
    if (b[0] < 1 || b[0] > KV_CMD_TYPE_MAX)
        return cmn_fail(errmsg, CMN_EUNSUPPORTED, "command: unknown type %u", b[0]);
    size_t used = 0;
    int rv = kv_mp_precheck(b + 1, len - 1, 8, &used);
    if (rv != 0)
        return cmn_fail(errmsg, rv, "command: %s",
                        rv == CMN_ETRUNCATED ? "truncated" : "malformed");
    if (len - 1 - used >= 8)
        return cmn_fail(errmsg, CMN_EMALFORMED, "command: %zu bytes after the body",
                        len - 1 - used);
    for (size_t i = 1 + used; i < len; i++)
        if (b[i] != 0)
            return cmn_fail(errmsg, CMN_EMALFORMED, "command: non-zero padding");

    msgpack_unpacked u;
    rv = kv_mp_unpack(b + 1, used, &u, errmsg);
    if (rv != 0)
        return rv;
    const msgpack_object *o = &u.data;
    if (o->type != MSGPACK_OBJECT_MAP) {
        rv = cmn_fail(errmsg, CMN_EMALFORMED, "command: expected a map");
        goto out;
    }
    /* The version decides how to read the rest, so it is checked first. */
    bool have_v = false;
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object_kv *kv = &o->via.map.ptr[i];
        if (kv__field(&kv->key, head_fields, 1) == 0) {
            if (kv->val.type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
                kv->val.via.u64 != KV_CMD_VERSION) {
                rv = cmn_fail(errmsg, CMN_EUNSUPPORTED, "command: unsupported format version");
                goto out;
            }
            have_v = true;
        }
    }
    if (!have_v) {
        rv = cmn_fail(errmsg, CMN_EMALFORMED, "command: missing format version");
        goto out;
    }
    kv_cmd_init(out, (enum kv_cmd_type)b[0]);
    uint64_t required =
        (1ull << H_V) | (1ull << H_TS) | (1ull << H_BY) | (1ull << H_BYC) | (1ull << H_B);
    struct head_walk w = {.c = out, .body = body};
    rv = kv__walk_map(o, "command", head_fields, H_N, required, head_field, &w, errmsg);
out:
    msgpack_unpacked_destroy(&u);
    if (rv != 0)
        kv_cmd_fini(out);
    if (rv == CMN_ENOMEM)
        cmn_fail(errmsg, rv, "command: out of memory");
    return rv;
}

int kv_cmd_decode(const void *p, size_t len, struct kv_cmd *out, char *errmsg)
{
    return decode(p, len, out, true, errmsg);
}

int kv_cmd_decode_head(const void *p, size_t len, struct kv_cmd *out, char *errmsg)
{
    return decode(p, len, out, false, errmsg);
}
