/* Trust-state records: enum names, lifecycle, validation and their strict msgpack codec. */
#include "storage/model.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "storage/mp.h"

static const char *const clearance_names[KV_CL_COUNT] = {
    "UnauthenticatedClients", "ClusterAdmin", "ClusterNode", "Operator", "ValidUser",
};
static const char *const access_names[KV_ACC_COUNT] = {"ReadWrite", "Admin", "Read"};

const char *kv_clearance_name(enum kv_clearance c)
{
    return (unsigned)c < KV_CL_COUNT ? clearance_names[c] : "?";
}

int kv_clearance_parse(const char *s, enum kv_clearance *out)
{
    for (int i = 0; i < KV_CL_COUNT; i++) {
        if (strcmp(s, clearance_names[i]) == 0) {
            *out = (enum kv_clearance)i;
            return 0;
        }
    }
    return CMN_EINVALID;
}

const char *kv_access_name(enum kv_access a)
{
    return (unsigned)a < KV_ACC_COUNT ? access_names[a] : "?";
}

int kv_access_parse(const char *s, enum kv_access *out)
{
    for (int i = 0; i < KV_ACC_COUNT; i++) {
        if (strcmp(s, access_names[i]) == 0) {
            *out = (enum kv_access)i;
            return 0;
        }
    }
    return CMN_EINVALID;
}

int kv_thumb_norm(const char *in, char out[KV_THUMB_LEN + 1])
{
    if (in == NULL || !cmn_is_hex(in, KV_THUMB_LEN))
        return CMN_EINVALID;
    memcpy(out, in, KV_THUMB_LEN + 1);
    cmn_ascii_lower(out);
    return 0;
}

void kv_cert_fini(struct kv_cert *c)
{
    free(c->name);
    kv_perms_free(c->perms, c->n_perms);
    free(c->der);
    free(c->secondaries);
    if (c->twofa_key != NULL) {
        cmn_cleanse(c->twofa_key, strlen(c->twofa_key));
        free(c->twofa_key);
    }
    memset(c, 0, sizeof *c);
}

void kv_cert_free_array(struct kv_cert *certs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        kv_cert_fini(&certs[i]);
    free(certs);
}

void kv_node_fini(struct kv_node *n)
{
    free(n->server_url);
    free(n->tcp_url);
    memset(n, 0, sizeof *n);
}

void kv_issuing_ca_fini(struct kv_issuing_ca *ca)
{
    free(ca->cert_der);
    cmn_buf_fini(&ca->key_der);
    for (size_t i = 0; i < ca->n_chain; i++)
        free(ca->chain_der[i]);
    free(ca->chain_der);
    free(ca->chain_len);
    memset(ca, 0, sizeof *ca);
}

void kv_replacement_fini(struct kv_replacement *r)
{
    cmn_buf_fini(&r->pfx);
    free(r->confirmed);
    free(r->replaced);
    free(r->notes);
    memset(r, 0, sizeof *r);
}

void kv_audit_fini(struct kv_audit *a)
{
    free(a->request_id);
    free(a->summary);
    memset(a, 0, sizeof *a);
}

static char *dup_or_null(const char *s, int *rv)
{
    if (s == NULL)
        return NULL;
    char *d = strdup(s);
    if (d == NULL)
        *rv = CMN_ENOMEM;
    return d;
}

int kv_cert_copy(struct kv_cert *dst, const struct kv_cert *src)
{
    int rv = 0;
    *dst = *src;
    dst->perms = NULL;
    dst->n_perms = 0;
    dst->der = NULL;
    dst->secondaries = NULL;
    dst->name = dup_or_null(src->name, &rv);
    dst->twofa_key = dup_or_null(src->twofa_key, &rv);
    if (src->der_len) {
        dst->der = malloc(src->der_len);
        if (dst->der == NULL)
            rv = CMN_ENOMEM;
        else
            memcpy(dst->der, src->der, src->der_len);
    }
    if (src->n_secondaries) {
        dst->secondaries = malloc(src->n_secondaries * sizeof *src->secondaries);
        if (dst->secondaries == NULL)
            rv = CMN_ENOMEM;
        else
            memcpy(dst->secondaries, src->secondaries,
                   src->n_secondaries * sizeof *src->secondaries);
    }
    if (rv == 0)
        rv = kv_perms_copy(src->perms, src->n_perms, &dst->perms, &dst->n_perms);
    if (rv != 0)
        kv_cert_fini(dst);
    return rv;
}

int kv_cert_validate(const struct kv_cert *c, char *errmsg)
{
    if (c->der == NULL || c->der_len == 0)
        return cmn_fail(errmsg, CMN_EINVALID, "Certificate is mandatory");
    if (!cmn_is_hex(c->thumbprint, KV_THUMB_LEN))
        return cmn_fail(errmsg, CMN_EINVALID, "Thumbprint is mandatory (40 hex digits)");
    if (c->pkph[0] == '\0')
        return cmn_fail(errmsg, CMN_EINVALID, "PublicKeyPinningHash is mandatory");
    if (c->name == NULL || c->name[0] == '\0')
        return cmn_fail(errmsg, CMN_EINVALID, "Name is mandatory");
    if (c->not_after == 0)
        return cmn_fail(errmsg, CMN_EINVALID, "NotAfter is mandatory");
    if ((unsigned)c->clearance >= KV_CL_COUNT)
        return cmn_fail(errmsg, CMN_EINVALID, "unknown SecurityClearance");
    for (size_t i = 0; i < c->n_perms; i++) {
        if (c->perms[i].db == NULL || c->perms[i].db[0] == '\0')
            return cmn_fail(errmsg, CMN_EINVALID, "empty database name in Permissions");
        if ((unsigned)c->perms[i].access >= KV_ACC_COUNT)
            return cmn_fail(errmsg, CMN_EINVALID, "unknown DatabaseAccess");
    }
    uint8_t md[20];
    unsigned mdlen = 0;
    if (!EVP_Digest(c->der, c->der_len, md, &mdlen, EVP_sha1(), NULL))
        return cmn_fail(errmsg, CMN_ECRYPTO, "SHA-1 unavailable");
    char hex[KV_THUMB_LEN + 1];
    cmn_hex_lower(md, sizeof md, hex);
    if (strcmp(hex, c->thumbprint) != 0)
        return cmn_fail(errmsg, CMN_EINVALID, "Thumbprint %s is not the SHA-1 of the certificate",
                        c->thumbprint);
    return 0;
}

/* ---- certificate ---- */

enum {
    C_TP,
    C_NAME,
    C_CL,
    C_PERMS,
    C_DER,
    C_PKPH,
    C_SER,
    C_NB,
    C_NA,
    C_CAI,
    C_PRI,
    C_SEC,
    C_2FA,
    C_REG,
    C_N
};
static const char *const cert_fields[C_N] = {"tp", "name", "cl",  "perms", "der", "pkph", "ser",
                                             "nb", "na",   "cai", "pri",   "sec", "2fa",  "reg"};

int kv_cert_pack(msgpack_packer *pk, const struct kv_cert *c)
{
    TRY(msgpack_pack_map(pk, C_N - (c->twofa_key ? 0 : 1)) ? CMN_ENOMEM : 0);
    TRY(kv__pk_str(pk, "tp", c->thumbprint));
    TRY(kv__pk_str(pk, "name", c->name ? c->name : ""));
    TRY(kv__pk_u64(pk, "cl", (uint64_t)c->clearance));
    TRY(kv__perms_pack(pk, c->perms, c->n_perms));
    TRY(kv__pk_bin(pk, "der", c->der, c->der_len));
    TRY(kv__pk_str(pk, "pkph", c->pkph));
    TRY(kv__pk_str(pk, "ser", c->serial));
    TRY(kv__pk_i64(pk, "nb", c->not_before));
    TRY(kv__pk_i64(pk, "na", c->not_after));
    TRY(kv__pk_bool(pk, "cai", c->ca_issued));
    TRY(kv__pk_str(pk, "pri", c->primary));
    TRY(kv__pk_strarray(pk, "sec", c->secondaries ? c->secondaries[0] : "", c->n_secondaries,
                        sizeof *c->secondaries));
    if (c->twofa_key)
        TRY(kv__pk_str(pk, "2fa", c->twofa_key));
    TRY(kv__pk_i64(pk, "reg", c->registered_ms));
    return 0;
}

int kv__perms_unpack(const msgpack_object *v, struct kv_perm **perms, size_t *n, char *errmsg)
{
    const msgpack_object_array *a = NULL;
    TRY(kv__get_array(v, "perms", KV_PERMS_MAX, &a, errmsg));
    *perms = calloc(a->size ? a->size : 1, sizeof **perms);
    if (*perms == NULL)
        return CMN_ENOMEM;
    for (uint32_t i = 0; i < a->size; i++) {
        const msgpack_object *p = &a->ptr[i];
        if (p->type != MSGPACK_OBJECT_ARRAY || p->via.array.size != 2)
            return cmn_fail(errmsg, CMN_EMALFORMED, "field 'perms': expected [db, access] pairs");
        uint64_t acc;
        TRY(kv__get_str(&p->via.array.ptr[0], "perms", KV_NAME_MAX, &(*perms)[i].db, errmsg));
        *n = i + 1;
        TRY(kv__get_u64(&p->via.array.ptr[1], "perms", &acc, errmsg));
        if (acc >= KV_ACC_COUNT)
            return cmn_fail(errmsg, CMN_EMALFORMED, "field 'perms': unknown access %llu",
                            (unsigned long long)acc);
        (*perms)[i].access = (enum kv_access)acc;
    }
    return 0;
}

int kv__perms_pack(msgpack_packer *pk, const struct kv_perm *perms, size_t n)
{
    TRY(kv__pk_key(pk, "perms"));
    TRY(msgpack_pack_array(pk, n) ? CMN_ENOMEM : 0);
    for (size_t i = 0; i < n; i++) {
        TRY(msgpack_pack_array(pk, 2) ? CMN_ENOMEM : 0);
        TRY(msgpack_pack_str_with_body(pk, perms[i].db, strlen(perms[i].db)) ? CMN_ENOMEM : 0);
        TRY(msgpack_pack_uint8(pk, (uint8_t)perms[i].access) ? CMN_ENOMEM : 0);
    }
    return 0;
}

void kv_perms_free(struct kv_perm *perms, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(perms[i].db);
    free(perms);
}

int kv_perms_copy(const struct kv_perm *src, size_t n, struct kv_perm **out, size_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    if (n == 0)
        return 0;
    struct kv_perm *v = calloc(n, sizeof *v);
    if (v == NULL)
        return CMN_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        v[i].access = src[i].access;
        if (src[i].db && (v[i].db = strdup(src[i].db)) == NULL) {
            kv_perms_free(v, i);
            return CMN_ENOMEM;
        }
    }
    *out = v;
    *n_out = n;
    return 0;
}

static int cert_field(void *ctx, int f, const msgpack_object *v, char *errmsg)
{
    struct kv_cert *c = ctx;
    uint64_t u;
    switch (f) {
    case C_TP:
        TRY(kv__get_strbuf(v, "tp", c->thumbprint, sizeof c->thumbprint, errmsg));
        return 0;
    case C_NAME:
        return kv__get_str(v, "name", KV_NAME_MAX, &c->name, errmsg);
    case C_CL:
        TRY(kv__get_u64(v, "cl", &u, errmsg));
        if (u >= KV_CL_COUNT)
            return cmn_fail(errmsg, CMN_EMALFORMED, "field 'cl': unknown clearance");
        c->clearance = (enum kv_clearance)u;
        return 0;
    case C_PERMS:
        return kv__perms_unpack(v, &c->perms, &c->n_perms, errmsg);
    case C_DER:
        return kv__get_bin(v, "der", KV_DER_MAX, &c->der, &c->der_len, errmsg);
    case C_PKPH:
        return kv__get_strbuf(v, "pkph", c->pkph, sizeof c->pkph, errmsg);
    case C_SER:
        return kv__get_strbuf(v, "ser", c->serial, sizeof c->serial, errmsg);
    case C_NB:
        return kv__get_i64(v, "nb", &c->not_before, errmsg);
    case C_NA:
        return kv__get_i64(v, "na", &c->not_after, errmsg);
    case C_CAI:
        return kv__get_bool(v, "cai", &c->ca_issued, errmsg);
    case C_PRI:
        return kv__get_strbuf(v, "pri", c->primary, sizeof c->primary, errmsg);
    case C_SEC:
        return kv__get_strarray(v, "sec", KV_COLLECTION_MAX, sizeof *c->secondaries,
                                &c->secondaries, &c->n_secondaries, errmsg);
    case C_2FA:
        return kv__get_str(v, "2fa", 256, &c->twofa_key, errmsg);
    case C_REG:
        return kv__get_i64(v, "reg", &c->registered_ms, errmsg);
    }
    return CMN_EMALFORMED;
}

int kv_cert_unpack(const msgpack_object *o, struct kv_cert *out, char *errmsg)
{
    memset(out, 0, sizeof *out);
    uint64_t required = ((1ull << C_N) - 1) & ~(1ull << C_2FA);
    int rv = kv__walk_map(o, "certificate", cert_fields, C_N, required, cert_field, out, errmsg);
    if (rv != 0)
        kv_cert_fini(out);
    return rv;
}

/* ---- node ---- */

enum { N_TAG, N_URL, N_TCP, N_TP, N_N };
static const char *const node_fields[N_N] = {"tag", "url", "tcp", "tp"};

int kv_node_pack(msgpack_packer *pk, const struct kv_node *n)
{
    TRY(msgpack_pack_map(pk, N_N) ? CMN_ENOMEM : 0);
    TRY(kv__pk_str(pk, "tag", n->tag));
    TRY(kv__pk_str(pk, "url", n->server_url ? n->server_url : ""));
    TRY(kv__pk_str(pk, "tcp", n->tcp_url ? n->tcp_url : ""));
    TRY(kv__pk_str(pk, "tp", n->thumbprint));
    return 0;
}

static int node_field(void *ctx, int f, const msgpack_object *v, char *errmsg)
{
    struct kv_node *n = ctx;
    switch (f) {
    case N_TAG:
        return kv__get_strbuf(v, "tag", n->tag, sizeof n->tag, errmsg);
    case N_URL:
        return kv__get_str(v, "url", KV_URL_MAX, &n->server_url, errmsg);
    case N_TCP:
        return kv__get_str(v, "tcp", KV_URL_MAX, &n->tcp_url, errmsg);
    case N_TP:
        return kv__get_strbuf(v, "tp", n->thumbprint, sizeof n->thumbprint, errmsg);
    }
    return CMN_EMALFORMED;
}

int kv_node_unpack(const msgpack_object *o, struct kv_node *out, char *errmsg)
{
    memset(out, 0, sizeof *out);
    int rv = kv__walk_map(o, "node", node_fields, N_N, (1ull << N_N) - 1, node_field, out, errmsg);
    if (rv != 0)
        kv_node_fini(out);
    return rv;
}

/* ---- issuing CA ---- */

enum { I_CERT, I_KEY, I_CHAIN, I_N };
static const char *const ca_fields[I_N] = {"cert", "key", "chain"};

int kv_issuing_ca_pack(msgpack_packer *pk, const struct kv_issuing_ca *ca)
{
    TRY(msgpack_pack_map(pk, I_N) ? CMN_ENOMEM : 0);
    TRY(kv__pk_bin(pk, "cert", ca->cert_der, ca->cert_len));
    TRY(kv__pk_bin(pk, "key", ca->key_der.data, ca->key_der.len));
    TRY(kv__pk_key(pk, "chain"));
    TRY(msgpack_pack_array(pk, ca->n_chain) ? CMN_ENOMEM : 0);
    for (size_t i = 0; i < ca->n_chain; i++)
        TRY(msgpack_pack_bin_with_body(pk, ca->chain_der[i], ca->chain_len[i]) ? CMN_ENOMEM : 0);
    return 0;
}

static int ca_field(void *ctx, int f, const msgpack_object *v, char *errmsg)
{
    struct kv_issuing_ca *ca = ctx;
    const msgpack_object_array *a = NULL;
    switch (f) {
    case I_CERT:
        return kv__get_bin(v, "cert", KV_DER_MAX, &ca->cert_der, &ca->cert_len, errmsg);
    case I_KEY:
        if (v->type != MSGPACK_OBJECT_BIN || v->via.bin.size > KV_DER_MAX)
            return cmn_fail(errmsg, CMN_EMALFORMED, "field 'key': expected bytes");
        cmn_buf_fini(&ca->key_der);
        return cmn_buf_append(&ca->key_der, v->via.bin.ptr, v->via.bin.size);
    case I_CHAIN:
        TRY(kv__get_array(v, "chain", 8, &a, errmsg));
        ca->chain_der = calloc(a->size + 1, sizeof *ca->chain_der);
        ca->chain_len = calloc(a->size + 1, sizeof *ca->chain_len);
        if (ca->chain_der == NULL || ca->chain_len == NULL)
            return CMN_ENOMEM;
        for (uint32_t i = 0; i < a->size; i++) {
            TRY(kv__get_bin(&a->ptr[i], "chain", KV_DER_MAX, &ca->chain_der[i], &ca->chain_len[i],
                            errmsg));
            ca->n_chain = i + 1;
        }
        return 0;
    }
    return CMN_EMALFORMED;
}

int kv_issuing_ca_unpack(const msgpack_object *o, struct kv_issuing_ca *out, char *errmsg)
{
    memset(out, 0, sizeof *out);
    cmn_buf_init(&out->key_der, true);
    int rv =
        kv__walk_map(o, "issuing CA", ca_fields, I_N, (1ull << I_N) - 1, ca_field, out, errmsg);
    if (rv != 0)
        kv_issuing_ca_fini(out);
    return rv;
}

/* ---- revoked serial ---- */

enum { R_SER, R_TP, R_AT, R_WHY, R_N };
static const char *const revoked_fields[R_N] = {"ser", "tp", "at", "why"};

int kv_revoked_pack(msgpack_packer *pk, const struct kv_revoked *r)
{
    TRY(msgpack_pack_map(pk, R_N) ? CMN_ENOMEM : 0);
    TRY(kv__pk_str(pk, "ser", r->serial));
    TRY(kv__pk_str(pk, "tp", r->thumbprint));
    TRY(kv__pk_i64(pk, "at", r->revoked_ms));
    TRY(kv__pk_i64(pk, "why", r->reason));
    return 0;
}

static int revoked_field(void *ctx, int f, const msgpack_object *v, char *errmsg)
{
    struct kv_revoked *r = ctx;
    int64_t why;
    switch (f) {
    case R_SER:
        return kv__get_strbuf(v, "ser", r->serial, sizeof r->serial, errmsg);
    case R_TP:
        return kv__get_strbuf(v, "tp", r->thumbprint, sizeof r->thumbprint, errmsg);
    case R_AT:
        return kv__get_i64(v, "at", &r->revoked_ms, errmsg);
    case R_WHY:
        TRY(kv__get_i64(v, "why", &why, errmsg));
        if (why < 0 || why > 10)
            return cmn_fail(errmsg, CMN_EMALFORMED, "field 'why': not a CRL reason");
        r->reason = (int)why;
        return 0;
    }
    return CMN_EMALFORMED;
}

int kv_revoked_unpack(const msgpack_object *o, struct kv_revoked *out, char *errmsg)
{
    memset(out, 0, sizeof *out);
    return kv__walk_map(o, "revoked", revoked_fields, R_N, (1ull << R_N) - 1, revoked_field, out,
                        errmsg);
}

/* ---- certificate replacement ---- */

enum { P_PFX, P_TP, P_OLD, P_NOW, P_CONF, P_REPL, P_AT, P_NOTES, P_N };
static const char *const repl_fields[P_N] = {"pfx",  "tp",   "old", "now",
                                             "conf", "repl", "at",  "notes"};

int kv_replacement_pack(msgpack_packer *pk, const struct kv_replacement *r)
{
    TRY(msgpack_pack_map(pk, P_N) ? CMN_ENOMEM : 0);
    TRY(kv__pk_bin(pk, "pfx", r->pfx.data, r->pfx.len));
    TRY(kv__pk_str(pk, "tp", r->thumbprint));
    TRY(kv__pk_str(pk, "old", r->old_thumbprint));
    TRY(kv__pk_bool(pk, "now", r->replace_immediately));
    TRY(kv__pk_strarray(pk, "conf", r->confirmed ? r->confirmed[0] : "", r->n_confirmed,
                        sizeof *r->confirmed));
    TRY(kv__pk_strarray(pk, "repl", r->replaced ? r->replaced[0] : "", r->n_replaced,
                        sizeof *r->replaced));
    TRY(kv__pk_i64(pk, "at", r->started_ms));
    TRY(kv__pk_strarray(pk, "notes", r->notes ? r->notes[0] : "", r->n_notes, sizeof *r->notes));
    return 0;
}

static int repl_field(void *ctx, int f, const msgpack_object *v, char *errmsg)
{
    struct kv_replacement *r = ctx;
    switch (f) {
    case P_PFX:
        if (v->type != MSGPACK_OBJECT_BIN || v->via.bin.size > KV_DER_MAX)
            return cmn_fail(errmsg, CMN_EMALFORMED, "field 'pfx': expected bytes");
        cmn_buf_fini(&r->pfx);
        return cmn_buf_append(&r->pfx, v->via.bin.ptr, v->via.bin.size);
    case P_TP:
        return kv__get_strbuf(v, "tp", r->thumbprint, sizeof r->thumbprint, errmsg);
    case P_OLD:
        return kv__get_strbuf(v, "old", r->old_thumbprint, sizeof r->old_thumbprint, errmsg);
    case P_NOW:
        return kv__get_bool(v, "now", &r->replace_immediately, errmsg);
    case P_CONF:
        return kv__get_strarray(v, "conf", 64, sizeof *r->confirmed, &r->confirmed, &r->n_confirmed,
                                errmsg);
    case P_REPL:
        return kv__get_strarray(v, "repl", 64, sizeof *r->replaced, &r->replaced, &r->n_replaced,
                                errmsg);
    case P_AT:
        return kv__get_i64(v, "at", &r->started_ms, errmsg);
    case P_NOTES:
        return kv__get_strarray(v, "notes", 64, sizeof *r->notes, &r->notes, &r->n_notes, errmsg);
    }
    return CMN_EMALFORMED;
}

int kv_replacement_unpack(const msgpack_object *o, struct kv_replacement *out, char *errmsg)
{
    memset(out, 0, sizeof *out);
    cmn_buf_init(&out->pfx, true);
    int rv = kv__walk_map(o, "replacement", repl_fields, P_N, (1ull << P_N) - 1, repl_field, out,
                          errmsg);
    if (rv != 0)
        kv_replacement_fini(out);
    return rv;
}

/* ---- two-factor state ---- */

int64_t kv_twofa_locked_ms(const struct kv_twofa *t, int64_t now_ms)
{
    size_t k = 0;
    int64_t frees = now_ms;
    for (size_t i = 0; i < KV_2FA_FAILS_MAX; i++) {
        if (t->fails_ms[i] > now_ms - KV_2FA_FAIL_WINDOW_MS) {
            k++;
            frees = t->fails_ms[i] + KV_2FA_FAIL_WINDOW_MS; /* newest first: the oldest last */
        }
    }
    return k >= KV_2FA_FAILS_MAX ? frees - now_ms : 0;
}

enum { T_TP, T_EXP, T_LIM, T_CK, T_STEP, T_FAIL, T_N };
static const char *const twofa_fields[T_N] = {"tp", "exp", "lim", "ck", "step", "fail"};

int kv_twofa_pack(msgpack_packer *pk, const struct kv_twofa *t)
{
    TRY(msgpack_pack_map(pk, T_N) ? CMN_ENOMEM : 0);
    TRY(kv__pk_str(pk, "tp", t->thumbprint));
    TRY(kv__pk_i64(pk, "exp", t->expires_ms));
    TRY(kv__pk_bool(pk, "lim", t->has_limits));
    TRY(kv__pk_bin(pk, "ck", t->cookie_hash, sizeof t->cookie_hash));
    TRY(kv__pk_u64(pk, "step", t->last_step));
    TRY(kv__pk_key(pk, "fail"));
    TRY(msgpack_pack_array(pk, KV_2FA_FAILS_MAX) ? CMN_ENOMEM : 0);
    for (size_t i = 0; i < KV_2FA_FAILS_MAX; i++)
        TRY(msgpack_pack_int64(pk, t->fails_ms[i]) ? CMN_ENOMEM : 0);
    return 0;
}

static int twofa_field(void *ctx, int f, const msgpack_object *v, char *errmsg)
{
    struct kv_twofa *t = ctx;
    const msgpack_object_array *a = NULL;
    switch (f) {
    case T_TP:
        return kv__get_strbuf(v, "tp", t->thumbprint, sizeof t->thumbprint, errmsg);
    case T_EXP:
        return kv__get_i64(v, "exp", &t->expires_ms, errmsg);
    case T_LIM:
        return kv__get_bool(v, "lim", &t->has_limits, errmsg);
    case T_CK:
        return kv__get_binbuf(v, "ck", t->cookie_hash, sizeof t->cookie_hash, errmsg);
    case T_STEP:
        return kv__get_u64(v, "step", &t->last_step, errmsg);
    case T_FAIL:
        TRY(kv__get_array(v, "fail", KV_2FA_FAILS_MAX, &a, errmsg));
        for (uint32_t i = 0; i < a->size; i++)
            TRY(kv__get_i64(&a->ptr[i], "fail", &t->fails_ms[i], errmsg));
        return 0;
    }
    return CMN_EMALFORMED;
}

int kv_twofa_unpack(const msgpack_object *o, struct kv_twofa *out, char *errmsg)
{
    memset(out, 0, sizeof *out);
    int rv = kv__walk_map(o, "two-factor state", twofa_fields, T_N, (1ull << T_N) - 1, twofa_field,
                          out, errmsg);
    if (rv != 0)
        memset(out, 0, sizeof *out);
    return rv;
}

/* ---- audit ---- */

enum { A_IDX, A_TS, A_TYPE, A_ACTOR, A_RID, A_REJ, A_SUM, A_N };
static const char *const audit_fields[A_N] = {"idx", "ts", "type", "by", "rid", "rej", "sum"};

int kv_audit_pack(msgpack_packer *pk, const struct kv_audit *a)
{
    TRY(msgpack_pack_map(pk, A_N) ? CMN_ENOMEM : 0);
    TRY(kv__pk_u64(pk, "idx", a->index));
    TRY(kv__pk_i64(pk, "ts", a->time_ms));
    TRY(kv__pk_i64(pk, "type", a->type));
    TRY(kv__pk_str(pk, "by", a->actor));
    TRY(kv__pk_str(pk, "rid", a->request_id ? a->request_id : ""));
    TRY(kv__pk_bool(pk, "rej", a->rejected));
    TRY(kv__pk_str(pk, "sum", a->summary ? a->summary : ""));
    return 0;
}

static int audit_field(void *ctx, int f, const msgpack_object *v, char *errmsg)
{
    struct kv_audit *a = ctx;
    int64_t t;
    switch (f) {
    case A_IDX:
        return kv__get_u64(v, "idx", &a->index, errmsg);
    case A_TS:
        return kv__get_i64(v, "ts", &a->time_ms, errmsg);
    case A_TYPE:
        TRY(kv__get_i64(v, "type", &t, errmsg));
        a->type = (int)t;
        return 0;
    case A_ACTOR:
        return kv__get_strbuf(v, "by", a->actor, sizeof a->actor, errmsg);
    case A_RID:
        return kv__get_str(v, "rid", KV_URL_MAX, &a->request_id, errmsg);
    case A_REJ:
        return kv__get_bool(v, "rej", &a->rejected, errmsg);
    case A_SUM:
        return kv__get_str(v, "sum", 4096, &a->summary, errmsg);
    }
    return CMN_EMALFORMED;
}

int kv_audit_unpack(const msgpack_object *o, struct kv_audit *out, char *errmsg)
{
    memset(out, 0, sizeof *out);
    int rv =
        kv__walk_map(o, "audit", audit_fields, A_N, (1ull << A_N) - 1, audit_field, out, errmsg);
    if (rv != 0)
        kv_audit_fini(out);
    return rv;
}
