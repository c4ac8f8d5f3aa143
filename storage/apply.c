/* The state machine: applies one committed command as one RocksDB write batch, together with
 * the applied index, the request-id record and an audit entry. Deterministic: every input comes
 * from the entry or the current state, never from a clock, an RNG or the network. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "storage/kv_impl.h"
#include "storage/mp.h"

#define REJECTED 1 /* a business rule refused the command: not an error */
/* How long a raft-request-id is remembered, by the commands' own clock (the proposers'): a
 * retry within this time gets the first answer; after it the id may be used again. */
#define REQUEST_TTL_MS (24LL * 3600 * 1000)
/* Expired request records deleted per applied entry: more than the one an entry adds, so the
 * table shrinks back to the last REQUEST_TTL_MS of requests. */
#define REQUEST_PRUNE 4

/* A set of thumbprints (open addressing, linear probing), so that an entry touching N
 * registrations (a purge, a revoked collection) stays O(N). */
struct tpset {
    char (*slot)[KV_THUMB_LEN + 1]; /* "" empty, "-" a deleted one */
    size_t cap, used;               /* used counts deleted slots too */
};

static size_t tp_hash(const char *tp)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *tp; tp++)
        h = (h ^ (uint8_t)*tp) * 1099511628211ull;
    return (size_t)h;
}

static char *tpset_find(const struct tpset *s, const char *tp, bool for_insert)
{
    char *tomb = NULL;
    for (size_t i = tp_hash(tp) & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
        char *e = s->slot[i];
        if (e[0] == '\0')
            return for_insert ? (tomb ? tomb : e) : NULL;
        if (strcmp(e, "-") == 0) {
            if (tomb == NULL)
                tomb = e;
        } else if (strcmp(e, tp) == 0) {
            return e;
        }
    }
}

static bool tpset_has(const struct tpset *s, const char *tp)
{
    return s->cap && tpset_find(s, tp, false) != NULL;
}

/* Adds tp: 0, or CMN_ENOMEM. */
static int tpset_add(struct tpset *s, const char *tp)
{
    if (2 * (s->used + 1) > s->cap) { /* at most half full: probes stay short */
        struct tpset g = {.cap = s->cap ? 2 * s->cap : 64};
        if ((g.slot = calloc(g.cap, sizeof *g.slot)) == NULL)
            return CMN_ENOMEM;
        for (size_t i = 0; i < s->cap; i++)
            if (s->slot[i][0] != '\0' && strcmp(s->slot[i], "-") != 0) {
                memcpy(tpset_find(&g, s->slot[i], true), s->slot[i], KV_THUMB_LEN + 1);
                g.used++;
            }
        free(s->slot);
        *s = g;
    }
    char *e = tpset_find(s, tp, true);
    if (strcmp(e, tp) != 0) {
        if (e[0] == '\0')
            s->used++;
        snprintf(e, KV_THUMB_LEN + 1, "%s", tp);
    }
    return 0;
}

static void tpset_del(struct tpset *s, const char *tp)
{
    char *e = s->cap ? tpset_find(s, tp, false) : NULL;
    if (e)
        strcpy(e, "-");
}

struct apply {
    struct kv *kv;
    uint64_t index;
    rocksdb_writebatch_t *b;
    const struct kv_cmd *cmd;
    enum kv_clearance actor_cl; /* the caller's clearance, as the state applied to knows it */
    char reason[CMN_ERRMSG_SIZE];
    int code; /* enum kv_reject */
    char summary[1024];
    char errmsg[CMN_ERRMSG_SIZE]; /* I/O or decoding errors while reading the state */
    /* What the entry changes, for kv_result (kept only when it commits). */
    unsigned fx; /* KV_FX_* */
    /* Registrations removed and not put back: in order, with "" for one put back, and as a set;
     * kv_result gets them without the gaps. */
    char (*removed)[KV_THUMB_LEN + 1];
    size_t n_removed, cap_removed;
    struct tpset removed_set;
};

/* Notes that registration tp is gone (gone: true) or back (false) after this entry. */
static int note_removed(struct apply *a, const char *tp, bool gone)
{
    bool known = tpset_has(&a->removed_set, tp);
    if (!gone) {
        if (known) {
            tpset_del(&a->removed_set, tp);
            for (size_t i = a->n_removed; i-- > 0;)
                if (strcmp(a->removed[i], tp) == 0) {
                    a->removed[i][0] = '\0';
                    break;
                }
        }
        return 0;
    }
    if (known)
        return 0;
    if (tpset_add(&a->removed_set, tp) != 0)
        return cmn_fail(a->errmsg, CMN_ENOMEM, "out of memory");
    if (a->n_removed == a->cap_removed) {
        size_t cap = a->cap_removed ? 2 * a->cap_removed : 8;
        void *v = realloc(a->removed, cap * sizeof *a->removed);
        if (v == NULL)
            return cmn_fail(a->errmsg, CMN_ENOMEM, "out of memory");
        a->removed = v;
        a->cap_removed = cap;
    }
    memcpy(a->removed[a->n_removed++], tp, KV_THUMB_LEN + 1);
    return 0;
}

static int reject(struct apply *a, int code, const char *fmt, ...) CMN_PRINTF(3, 4);
static int reject(struct apply *a, int code, const char *fmt, ...)
{
    a->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->reason, sizeof a->reason, fmt, ap);
    va_end(ap);
    return REJECTED;
}

static void summarize(struct apply *a, const char *fmt, ...) CMN_PRINTF(2, 3);
static void summarize(struct apply *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->summary, sizeof a->summary, fmt, ap);
    va_end(ap);
}

typedef int (*pack_fn)(msgpack_packer *pk, const void *rec);

static int put_packed(struct apply *a, int cf, const char *key, size_t klen, pack_fn fn,
                      const void *rec)
{
    struct cmn_buf buf;
    cmn_buf_init(&buf, cf == CF_CA || cf == CF_META || cf == CF_CERTS);
    msgpack_packer pk;
    kv_packer_init(&pk, &buf);
    int rv = fn(&pk, rec);
    if (rv == 0)
        rocksdb_writebatch_put_cf(a->b, a->kv->cf[cf], key, klen, (const char *)buf.data, buf.len);
    cmn_buf_fini(&buf);
    return rv;
}

static int pack_cert(msgpack_packer *pk, const void *r)
{
    return kv_cert_pack(pk, r);
}
static int pack_node(msgpack_packer *pk, const void *r)
{
    return kv_node_pack(pk, r);
}
static int pack_ca(msgpack_packer *pk, const void *r)
{
    return kv_issuing_ca_pack(pk, r);
}
static int pack_revoked(msgpack_packer *pk, const void *r)
{
    return kv_revoked_pack(pk, r);
}
static int pack_replacement(msgpack_packer *pk, const void *r)
{
    return kv_replacement_pack(pk, r);
}
static int pack_audit(msgpack_packer *pk, const void *r)
{
    return kv_audit_pack(pk, r);
}

/* Reads a certificate; 0, CMN_ENOTFOUND or an error (which is in a->errmsg). */
static int load_cert(struct apply *a, const char *tp, struct kv_cert *out)
{
    return kv__get_record(a->kv, CF_CERTS, tp, KV_THUMB_LEN, kv__unpack_cert, out, a->errmsg);
}

static bool actor_is_admin(const struct apply *a)
{
    return kv_clearance_is_admin(a->actor_cl);
}

static int need_cert_clearance(struct apply *a)
{
    if (!actor_is_admin(a) && a->actor_cl != KV_CL_OPERATOR)
        return reject(a, KV_REJ_FORBIDDEN,
                      "Insufficient security clearance: %s cannot manage certificates",
                      kv_clearance_name(a->actor_cl));
    return 0;
}

static int need_admin(struct apply *a)
{
    if (!actor_is_admin(a))
        return reject(a, KV_REJ_FORBIDDEN,
                      "Insufficient security clearance: ClusterAdmin access is required, not %s",
                      kv_clearance_name(a->actor_cl));
    return 0;
}

/* A caller that authenticated by its registration has the clearance the state applied to
 * gives it: a downgrade or a revocation that the proposing node had not applied yet counts. */
static int resolve_actor(struct apply *a)
{
    const struct kv_cmd *c = a->cmd;
    a->actor_cl = c->actor_clearance;
    if (!c->actor_registered)
        return 0;
    struct kv_cert reg;
    int rv = load_cert(a, c->actor, &reg);
    if (rv == CMN_ENOTFOUND)
        return reject(a, KV_REJ_FORBIDDEN,
                      "The client certificate %s is no longer registered: it was deleted or "
                      "revoked",
                      c->actor);
    if (rv != 0)
        return rv;
    a->actor_cl = reg.clearance;
    kv_cert_fini(&reg);
    return 0;
}

static void pkph_key(const struct kv_cert *c, char *key, size_t *klen)
{
    size_t n = strlen(c->pkph);
    memcpy(key, c->pkph, n);
    key[n] = '\0';
    memcpy(key + n + 1, c->thumbprint, KV_THUMB_LEN);
    *klen = n + 1 + KV_THUMB_LEN;
}

static void serial_key(const char *serial, char *key)
{
    size_t i = 0;
    for (; serial[i]; i++)
        key[i] = (char)(serial[i] >= 'a' && serial[i] <= 'f' ? serial[i] - 32 : serial[i]);
    key[i] = '\0';
}

/* Removes a registration and its index entries. */
/* Ends tp's two-factor session and forgets its state when its registration or its key
 * changes (which KV_FX_CERTS reports). */
static void twofa_forget(struct apply *a, const char *tp)
{
    rocksdb_writebatch_delete_cf(a->b, a->kv->cf[CF_TWOFA], tp, KV_THUMB_LEN);
}

static int cert_remove(struct apply *a, const struct kv_cert *c)
{
    char key[KV_PKPH_MAX + 2 + KV_THUMB_LEN];
    size_t klen;
    a->fx |= KV_FX_CERTS;
    TRY(note_removed(a, c->thumbprint, true));
    rocksdb_writebatch_delete_cf(a->b, a->kv->cf[CF_CERTS], c->thumbprint, KV_THUMB_LEN);
    twofa_forget(a, c->thumbprint);
    pkph_key(c, key, &klen);
    rocksdb_writebatch_delete_cf(a->b, a->kv->cf[CF_BY_PKPH], key, klen);
    if (c->serial[0]) {
        /* Serials are unique per issuer only: drop the index only if it points here. */
        char sk[KV_SERIAL_MAX + 1], *err = NULL;
        size_t vlen = 0;
        serial_key(c->serial, sk);
        char *v = rocksdb_get_cf(a->kv->db, a->kv->ropts, a->kv->cf[CF_BY_SERIAL], sk, strlen(sk),
                                 &vlen, &err);
        if (err != NULL)
            return kv__rdb_fail(a->errmsg, err, "read serial index");
        if (v != NULL && vlen == KV_THUMB_LEN && memcmp(v, c->thumbprint, KV_THUMB_LEN) == 0)
            rocksdb_writebatch_delete_cf(a->b, a->kv->cf[CF_BY_SERIAL], sk, strlen(sk));
        rocksdb_free(v);
    }
    return 0;
}

static int cert_insert(struct apply *a, const struct kv_cert *c)
{
    char key[KV_PKPH_MAX + 2 + KV_THUMB_LEN];
    size_t klen;
    a->fx |= KV_FX_CERTS;
    TRY(note_removed(a, c->thumbprint, false));
    TRY(put_packed(a, CF_CERTS, c->thumbprint, KV_THUMB_LEN, pack_cert, c));
    pkph_key(c, key, &klen);
    rocksdb_writebatch_put_cf(a->b, a->kv->cf[CF_BY_PKPH], key, klen, "", 0);
    if (c->serial[0]) {
        char sk[KV_SERIAL_MAX + 1];
        serial_key(c->serial, sk);
        rocksdb_writebatch_put_cf(a->b, a->kv->cf[CF_BY_SERIAL], sk, strlen(sk), c->thumbprint,
                                  KV_THUMB_LEN);
    }
    return 0;
}

/* The CRL changes with this entry: a new number (its index) and thisUpdate (its time). */
static void crl_changed(struct apply *a)
{
    uint8_t v[16];
    a->fx |= KV_FX_CRL;
    cmn_be64_put(v, a->index);
    cmn_be64_put(v + 8, (uint64_t)a->cmd->time_ms);
    rocksdb_writebatch_put_cf(a->b, a->kv->cf[CF_META], META_CRL, strlen(META_CRL), (const char *)v,
                              sizeof v);
}

/* Records the revocation of a certificate the cluster CA issued, for the CRL and OCSP. */
static int cert_revoke(struct apply *a, const struct kv_cert *c, int reason)
{
    if (!c->ca_issued || c->serial[0] == '\0')
        return 0;
    struct kv_revoked r = {.revoked_ms = a->cmd->time_ms, .reason = reason};
    crl_changed(a);
    serial_key(c->serial, r.serial);
    memcpy(r.thumbprint, c->thumbprint, sizeof r.thumbprint);
    return put_packed(a, CF_REVOKED, r.serial, strlen(r.serial), pack_revoked, &r);
}

static bool in_list(const char (*list)[KV_THUMB_LEN + 1], size_t n, const char *tp)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i], tp) == 0)
            return true;
    return false;
}

static const char *lower_clearance_msg(const struct apply *a)
{
    return kv_clearance_name(a->actor_cl);
}

/* ---- PutCertificates ---- */

static int check_collection(struct apply *a, const struct kv_cert *certs, size_t n)
{
    const struct kv_cert *p = &certs[0];
    if (p->primary[0] != '\0')
        return reject(a, KV_REJ_INVALID,
                      "the first certificate of a collection must be its primary");
    if (p->n_secondaries != n - 1)
        return reject(a, KV_REJ_INVALID,
                      "the primary must list the other %zu certificates as secondaries", n - 1);
    for (size_t i = 1; i < n; i++) {
        if (strcmp(certs[i].primary, p->thumbprint) != 0 ||
            strcmp(p->secondaries[i - 1], certs[i].thumbprint) != 0)
            return reject(a, KV_REJ_INVALID, "certificate %s is not a secondary of %s",
                          certs[i].thumbprint, p->thumbprint);
        if (certs[i].n_secondaries != 0)
            return reject(a, KV_REJ_INVALID, "a secondary cannot have secondaries");
        for (size_t j = 0; j < i; j++)
            if (strcmp(certs[i].thumbprint, certs[j].thumbprint) == 0)
                return reject(a, KV_REJ_INVALID, "certificate %s appears twice",
                              certs[i].thumbprint);
    }
    return 0;
}

static bool cmd_has_thumb(const struct kv_cert *certs, size_t n, const char *tp)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(certs[i].thumbprint, tp) == 0)
            return true;
    return false;
}

/* Keeps the newest SAME_PKPH_KEEP registrations sharing the new certificate's pinning hash. */
static int prune_same_pkph(struct apply *a, const struct kv_cert *fresh, size_t n_fresh)
{
    struct kv_cert *olds = NULL;
    size_t n_old = 0;
    TRY(kv_cert_by_pkph(a->kv, fresh[0].pkph, &olds, &n_old, a->errmsg));
    /* Candidates: the stored ones not replaced by this command, plus the new ones. */
    size_t total = 0;
    const struct kv_cert **all = calloc(n_old + n_fresh, sizeof *all);
    if (all == NULL) {
        kv_cert_free_array(olds, n_old);
        return CMN_ENOMEM;
    }
    for (size_t i = 0; i < n_old; i++)
        if (!cmd_has_thumb(fresh, n_fresh, olds[i].thumbprint))
            all[total++] = &olds[i];
    for (size_t i = 0; i < n_fresh; i++)
        if (strcmp(fresh[i].pkph, fresh[0].pkph) == 0)
            all[total++] = &fresh[i];
    /* Newest NotAfter first, thumbprint as the tie-break: the same order on every node. */
    for (size_t i = 1; i < total; i++) {
        for (size_t j = i; j > 0; j--) {
            const struct kv_cert *x = all[j - 1], *y = all[j];
            bool swap = x->not_after < y->not_after ||
                        (x->not_after == y->not_after && strcmp(x->thumbprint, y->thumbprint) > 0);
            if (!swap)
                break;
            all[j - 1] = y;
            all[j] = x;
        }
    }
    int rv = 0;
    for (size_t i = SAME_PKPH_KEEP; i < total && rv == 0; i++)
        if (!cmd_has_thumb(fresh, n_fresh, all[i]->thumbprint))
            rv = cert_remove(a, all[i]);
    free(all);
    kv_cert_free_array(olds, n_old);
    return rv;
}

static int apply_put(struct apply *a)
{
    const struct kv_cmd *c = a->cmd;
    const struct kv_cert *certs = c->u.put.certs;
    size_t n = c->u.put.n;
    TRY(need_cert_clearance(a));
    for (size_t i = 0; i < n; i++) {
        char why[CMN_ERRMSG_SIZE];
        int vrv = kv_cert_validate(&certs[i], why);
        if (vrv == CMN_ECRYPTO || vrv == CMN_ENOMEM) /* this node's trouble, not the entry's */
            return cmn_fail(a->errmsg, vrv, "%s", why);
        if (vrv != 0)
            return reject(a, KV_REJ_INVALID, "%s", why);
        if (strcmp(certs[i].thumbprint, certs[0].thumbprint) != 0 &&
            certs[i].clearance != certs[0].clearance)
            return reject(a, KV_REJ_INVALID,
                          "the certificates of a collection share one clearance");
    }
    TRY(check_collection(a, certs, n));
    if (kv_clearance_is_admin(certs[0].clearance) && !actor_is_admin(a))
        return reject(a, KV_REJ_FORBIDDEN,
                      "Cannot register the certificate '%s' with '%s' security clearance because "
                      "the current client certificate being used has a lower clearance: %s",
                      certs[0].name, kv_clearance_name(certs[0].clearance), lower_clearance_msg(a));
    for (size_t i = 0; i < n; i++) {
        const struct kv_cert *nc = &certs[i];
        if (nc->ca_issued && nc->serial[0]) {
            char sk[KV_SERIAL_MAX + 1];
            struct kv_revoked r;
            serial_key(nc->serial, sk);
            int rv = kv_revoked_get(a->kv, sk, &r, a->errmsg);
            if (rv == 0)
                return reject(a, KV_REJ_CONFLICT,
                              "the certificate with serial %s was revoked; revocation is final",
                              sk);
            if (rv != CMN_ENOTFOUND)
                return rv;
        }
        struct kv_cert old;
        int rv = load_cert(a, nc->thumbprint, &old);
        if (rv == CMN_ENOTFOUND)
            continue;
        if (rv != 0)
            return rv;
        if (old.primary[0] && !cmd_has_thumb(certs, n, old.primary)) {
            rv = reject(a, KV_REJ_CONFLICT,
                        "Certificate %s is part of the collection of %s: delete that collection "
                        "first",
                        nc->thumbprint, old.primary);
        } else if (kv_clearance_is_admin(old.clearance) && !actor_is_admin(a)) {
            rv = reject(a, KV_REJ_FORBIDDEN,
                        "Cannot replace the certificate '%s' with '%s' security clearance because "
                        "the current client certificate being used has a lower clearance: %s",
                        old.name, kv_clearance_name(old.clearance), lower_clearance_msg(a));
        } else {
            /* Secondaries the new registration no longer lists go with the old primary. */
            for (size_t j = 0; j < old.n_secondaries && rv == 0; j++) {
                if (cmd_has_thumb(certs, n, old.secondaries[j]))
                    continue;
                struct kv_cert sec;
                int r2 = load_cert(a, old.secondaries[j], &sec);
                if (r2 == 0) {
                    rv = cert_remove(a, &sec);
                    kv_cert_fini(&sec);
                } else if (r2 != CMN_ENOTFOUND) {
                    rv = r2;
                }
            }
            if (rv == 0)
                rv = cert_remove(a, &old);
        }
        kv_cert_fini(&old);
        if (rv != 0)
            return rv;
    }
    for (size_t i = 0; i < n; i++)
        TRY(cert_insert(a, &certs[i]));
    if (c->u.put.same_pkph)
        TRY(prune_same_pkph(a, certs, n));
    summarize(a, "registered '%s' (%s) as %s%s", certs[0].name, certs[0].thumbprint,
              kv_clearance_name(certs[0].clearance),
              c->u.put.same_pkph ? ", a renewal with the key pair of a registered certificate"
              : n > 1            ? " with its collection"
                                 : "");
    return 0;
}

/* ---- EditCertificate ---- */

static int apply_edit(struct apply *a)
{
    const struct kv_cmd *c = a->cmd;
    char tp[KV_THUMB_LEN + 1];
    TRY(need_cert_clearance(a));
    if (kv_thumb_norm(c->u.edit.thumbprint, tp) != 0)
        return reject(a, KV_REJ_INVALID, "'%s' is not a thumbprint", c->u.edit.thumbprint);
    if (c->u.edit.name == NULL || c->u.edit.name[0] == '\0')
        return reject(a, KV_REJ_INVALID, "Name is a required field in the certificate definition");
    struct kv_cert cert;
    int rv = load_cert(a, tp, &cert);
    if (rv == CMN_ENOTFOUND)
        return reject(a, KV_REJ_NOTFOUND,
                      "Cannot edit permissions for certificate with thumbprint '%s'. It doesn't "
                      "exist in the cluster.",
                      tp);
    if (rv != 0)
        return rv;
    if (cert.primary[0]) {
        rv = reject(a, KV_REJ_INVALID,
                    "Certificate %s belongs to the collection of %s, which is edited as one: edit "
                    "the primary certificate %s",
                    tp, cert.primary, cert.primary);
        goto out;
    }
    if (!actor_is_admin(a) &&
        (kv_clearance_is_admin(cert.clearance) || kv_clearance_is_admin(c->u.edit.clearance))) {
        rv = reject(a, KV_REJ_FORBIDDEN,
                    "Cannot edit the certificate '%s'. It has '%s' security clearance while the "
                    "current client certificate being used has a lower clearance: %s",
                    cert.name,
                    kv_clearance_name(kv_clearance_is_admin(cert.clearance) ? cert.clearance
                                                                            : c->u.edit.clearance),
                    lower_clearance_msg(a));
        goto out;
    }
    for (size_t i = 0; i < c->u.edit.n_perms; i++) {
        if (c->u.edit.perms[i].db[0] == '\0') {
            rv = reject(a, KV_REJ_INVALID, "empty database name in Permissions");
            goto out;
        }
    }
    /* One definition for the whole collection: the primary and each of its secondaries. */
    for (size_t i = 0; i <= cert.n_secondaries && rv == 0; i++) {
        struct kv_cert sec;
        const struct kv_cert *cur = &cert;
        if (i > 0) {
            rv = load_cert(a, cert.secondaries[i - 1], &sec);
            if (rv == CMN_ENOTFOUND) {
                rv = 0;
                continue;
            }
            if (rv != 0)
                break;
            cur = &sec;
        }
        struct kv_cert upd = *cur;
        upd.name = c->u.edit.name;
        upd.clearance = c->u.edit.clearance;
        upd.perms = c->u.edit.perms;
        upd.n_perms = c->u.edit.n_perms;
        if (c->u.edit.delete_twofa)
            upd.twofa_key = NULL;
        else if (c->u.edit.twofa_key)
            upd.twofa_key = c->u.edit.twofa_key;
        if (c->u.edit.delete_twofa || c->u.edit.twofa_key)
            twofa_forget(a, upd.thumbprint); /* a new key or none: its sessions end */
        rv = put_packed(a, CF_CERTS, upd.thumbprint, KV_THUMB_LEN, pack_cert, &upd);
        a->fx |= KV_FX_CERTS;
        if (i > 0)
            kv_cert_fini(&sec);
    }
    summarize(a, "edited '%s' (%s)%s: %s, %zu database permissions%s", c->u.edit.name, tp,
              cert.n_secondaries ? " with its collection" : "",
              kv_clearance_name(c->u.edit.clearance), c->u.edit.n_perms,
              c->u.edit.delete_twofa ? ", two-factor removed"
                                     : (c->u.edit.twofa_key ? ", two-factor set" : ""));
out:
    kv_cert_fini(&cert);
    return rv;
}

/* ---- DeleteCertificates / PurgeExpired ---- */

/* A set of certificates to remove, each loaded once. */
struct doomed {
    struct kv_cert *certs;
    size_t n, cap;
    struct tpset set; /* their thumbprints */
};

static bool doomed_has(const struct doomed *d, const char *tp)
{
    return tpset_has(&d->set, tp);
}

/* The slot of doomed_slot, filled, is taken (or released on failure). */
static int doomed_take(struct doomed *d)
{
    if (tpset_add(&d->set, d->certs[d->n].thumbprint) != 0) {
        kv_cert_fini(&d->certs[d->n]);
        return CMN_ENOMEM;
    }
    d->n++;
    return 0;
}

static struct kv_cert *doomed_slot(struct doomed *d)
{
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 8;
        struct kv_cert *p = realloc(d->certs, cap * sizeof *p);
        if (p == NULL)
            return NULL;
        d->certs = p;
        d->cap = cap;
    }
    return &d->certs[d->n];
}

/* Adds a primary and its secondaries. */
static int doom_collection(struct apply *a, struct doomed *d, const struct kv_cert *primary)
{
    if (doomed_has(d, primary->thumbprint))
        return 0;
    struct kv_cert *slot = doomed_slot(d);
    if (slot == NULL || kv_cert_copy(slot, primary) != 0)
        return CMN_ENOMEM;
    TRY(doomed_take(d));
    for (size_t i = 0; i < primary->n_secondaries; i++) {
        if (doomed_has(d, primary->secondaries[i]))
            continue;
        slot = doomed_slot(d);
        if (slot == NULL)
            return CMN_ENOMEM;
        int rv = load_cert(a, primary->secondaries[i], slot);
        if (rv == CMN_ENOTFOUND)
            continue;
        if (rv != 0)
            return rv;
        TRY(doomed_take(d));
    }
    return 0;
}

static int remove_doomed(struct apply *a, struct doomed *d, bool revoke, int reason)
{
    for (size_t i = 0; i < d->n; i++) {
        TRY(cert_remove(a, &d->certs[i]));
        if (revoke)
            TRY(cert_revoke(a, &d->certs[i], reason));
    }
    return 0;
}

/* A compromised key is revoked once, everywhere: every registration with the public key of a
 * doomed one (a renewal, an upload of the same key) goes too, with its whole collection. */
static int doom_same_key(struct apply *a, struct doomed *d)
{
    for (size_t i = 0; i < d->n; i++) { /* d grows: the ones added are looked at too */
        char pkph[KV_PKPH_MAX + 1];
        snprintf(pkph, sizeof pkph, "%s", d->certs[i].pkph);
        if (pkph[0] == '\0')
            continue;
        struct kv_cert *same = NULL;
        size_t n_same = 0;
        TRY(kv_cert_by_pkph(a->kv, pkph, &same, &n_same, a->errmsg));
        int rv = 0;
        for (size_t j = 0; j < n_same && rv == 0; j++) {
            if (doomed_has(d, same[j].thumbprint))
                continue;
            if (same[j].primary[0] == '\0') {
                rv = doom_collection(a, d, &same[j]);
                continue;
            }
            struct kv_cert primary;
            rv = load_cert(a, same[j].primary, &primary);
            if (rv == 0) {
                rv = doom_collection(a, d, &primary);
                kv_cert_fini(&primary);
            }
        }
        kv_cert_free_array(same, n_same);
        TRY(rv);
    }
    return 0;
}

static int delete_check(struct apply *a, const struct kv_cert *cert)
{
    const struct kv_cmd *c = a->cmd;
    if (strcmp(cert->thumbprint, c->actor) == 0)
        return reject(a, KV_REJ_FORBIDDEN,
                      "Cannot delete %s because it's the current client certificate being used",
                      cert->name);
    if (kv_clearance_is_admin(cert->clearance) && !actor_is_admin(a))
        return reject(a, KV_REJ_FORBIDDEN,
                      "Cannot delete the certificate '%s' with '%s' security clearance because the "
                      "current client certificate being used has a lower clearance: %s",
                      cert->name, kv_clearance_name(cert->clearance), lower_clearance_msg(a));
    return 0;
}

static int apply_delete(struct apply *a, struct doomed *d)
{
    const struct kv_cmd *c = a->cmd;
    TRY(need_cert_clearance(a));
    for (size_t i = 0; i < c->u.del.n; i++) {
        char tp[KV_THUMB_LEN + 1];
        if (kv_thumb_norm(c->u.del.thumbprints[i], tp) != 0)
            return reject(a, KV_REJ_INVALID, "'%s' is not a thumbprint", c->u.del.thumbprints[i]);
        struct kv_cert cert;
        int rv = load_cert(a, tp, &cert);
        if (rv == CMN_ENOTFOUND)
            return reject(a, KV_REJ_NOTFOUND, "Certificate %s doesn't exist in the cluster", tp);
        if (rv != 0)
            return rv;
        if (cert.primary[0] && !in_list(c->u.del.thumbprints, c->u.del.n, cert.primary))
            rv = reject(a, KV_REJ_INVALID,
                        "Cannot delete the certificate '%s' with thumbprint '%s'. You need to "
                        "delete the primary certificate of the collection: %s",
                        cert.name, tp, cert.primary);
        else if (cert.primary[0] == '\0')
            rv = doom_collection(a, d, &cert);
        kv_cert_fini(&cert);
        if (rv != 0)
            return rv;
    }
    size_t asked = d->n;
    TRY(doom_same_key(a, d));
    for (size_t i = 0; i < d->n; i++)
        TRY(delete_check(a, &d->certs[i]));
    TRY(remove_doomed(a, d, true, c->u.del.reason));
    summarize(a, "deleted and revoked '%s' (%s)%s", d->certs[0].name, d->certs[0].thumbprint,
              asked > 1 ? " with its collection" : "");
    if (c->u.del.n > 1)
        summarize(a, "deleted and revoked %zu certificates", asked);
    if (d->n > asked)
        snprintf(a->summary + strlen(a->summary), sizeof a->summary - strlen(a->summary),
                 ", and %zu more registered with the same key", d->n - asked);
    return 0;
}

struct purge_scan {
    struct apply *a;
    struct doomed *d;
    int64_t now_s;
};

static int purge_item(void *ctx, const char *k, size_t klen, const char *v, size_t vlen,
                      char *errmsg)
{
    struct purge_scan *s = ctx;
    msgpack_unpacked u;
    TRY(kv_mp_unpack(v, vlen, &u, errmsg));
    struct kv_cert cert;
    int rv = kv_cert_unpack(&u.data, &cert, errmsg);
    msgpack_unpacked_destroy(&u);
    if (rv != 0)
        return rv;
    if (cert.primary[0] == '\0' && cert.not_after < s->now_s)
        rv = doom_collection(s->a, s->d, &cert);
    kv_cert_fini(&cert);
    return rv;
}

static int apply_purge(struct apply *a, struct doomed *d)
{
    TRY(need_cert_clearance(a));
    struct purge_scan s = {.a = a, .d = d, .now_s = a->cmd->time_ms / 1000};
    TRY(kv__scan(a->kv, NULL, CF_CERTS, "", 0, purge_item, &s, a->errmsg));
    TRY(remove_doomed(a, d, false, 0));
    summarize(a, "purged %zu expired certificates", d->n);
    return 0;
}

/* ---- cluster records ---- */

static bool valid_tag(const char *t)
{
    size_t n = strlen(t);
    if (n < 1 || n > KV_TAG_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (t[i] < 'A' || t[i] > 'Z')
            return false;
    return true;
}

static int apply_set_ca(struct apply *a)
{
    const struct kv_issuing_ca *ca = &a->cmd->u.set_ca;
    TRY(need_admin(a));
    if (ca->cert_len == 0 || ca->key_der.len == 0)
        return reject(a, KV_REJ_INVALID, "the issuing CA needs a certificate and a private key");
    struct kv_issuing_ca cur;
    int rv = kv__get_record(a->kv, CF_CA, "issuing", 7, kv__unpack_ca, &cur, a->errmsg);
    if (rv == 0) {
        bool same =
            cur.cert_len == ca->cert_len && memcmp(cur.cert_der, ca->cert_der, ca->cert_len) == 0;
        /* The same CA with its key sealed again (another master key, or a fresh nonce): the
         * proposer re-sealed it, and the new blob replaces the old one. */
        bool resealed = same && (cur.key_der.len != ca->key_der.len ||
                                 memcmp(cur.key_der.data, ca->key_der.data, ca->key_der.len) != 0);
        kv_issuing_ca_fini(&cur);
        if (!same)
            return reject(a, KV_REJ_CONFLICT, "The cluster already has an issuing CA");
        if (!resealed) {
            summarize(a, "issuing CA unchanged");
            return 0;
        }
        TRY(put_packed(a, CF_CA, "issuing", 7, pack_ca, ca));
        a->fx |= KV_FX_CA;
        summarize(a, "re-sealed the issuing CA key");
        return 0;
    }
    if (rv != CMN_ENOTFOUND)
        return rv;
    TRY(put_packed(a, CF_CA, "issuing", 7, pack_ca, ca));
    a->fx |= KV_FX_CA;
    crl_changed(a); /* the first CRL, empty */
    summarize(a, "set the issuing CA");
    return 0;
}

/* A scan of the node records for the certificate tp: whether a node other than tag names it,
 * and how many records there are and name target (tag's counting as switched to it). */
struct node_uses {
    const char *tag;  /* the node concerned */
    const char *tp;   /* lower case: the certificate looked for */
    bool other;       /* another node's record names tp */
    size_t n, on_new; /* node records, and how many (after the switch) name `target` */
    const char *target;
};

static int uses_item(void *ctx, const char *k, size_t klen, const char *v, size_t vlen,
                     char *errmsg)
{
    struct node_uses *u = ctx;
    msgpack_unpacked m;
    TRY(kv_mp_unpack(v, vlen, &m, errmsg));
    struct kv_node other;
    int rv = kv_node_unpack(&m.data, &other, errmsg);
    msgpack_unpacked_destroy(&m);
    if (rv != 0)
        return rv;
    bool self = strcmp(other.tag, u->tag) == 0;
    if (!self && strcasecmp(other.thumbprint, u->tp) == 0)
        u->other = true;
    u->n++;
    if (self || (u->target && strcasecmp(other.thumbprint, u->target) == 0))
        u->on_new++;
    kv_node_fini(&other);
    return 0;
}

static int apply_put_node(struct apply *a)
{
    const struct kv_node *n = &a->cmd->u.node;
    TRY(need_admin(a));
    if (!valid_tag(n->tag))
        return reject(a, KV_REJ_INVALID, "node tag '%s' must be 1 to 4 upper-case letters", n->tag);
    if (n->server_url == NULL || n->server_url[0] == '\0')
        return reject(a, KV_REJ_INVALID, "node %s needs a server URL", n->tag);
    if (!cmn_is_hex(n->thumbprint, KV_THUMB_LEN))
        return reject(a, KV_REJ_INVALID, "node %s needs its certificate thumbprint", n->tag);
    struct node_uses u = {.tag = n->tag, .tp = n->thumbprint};
    TRY(kv__scan(a->kv, NULL, CF_NODES, "", 0, uses_item, &u, a->errmsg));
    if (u.other)
        return reject(a, KV_REJ_CONFLICT, "another node already uses certificate %s",
                      n->thumbprint);
    TRY(put_packed(a, CF_NODES, n->tag, strlen(n->tag), pack_node, n));
    a->fx |= KV_FX_NODES;
    summarize(a, "node %s at %s", n->tag, n->server_url);
    return 0;
}

static int apply_remove_node(struct apply *a)
{
    const char *tag = a->cmd->u.node.tag;
    TRY(need_admin(a));
    char *err = NULL;
    size_t vlen = 0;
    char *v =
        rocksdb_get_cf(a->kv->db, a->kv->ropts, a->kv->cf[CF_NODES], tag, strlen(tag), &vlen, &err);
    if (err != NULL)
        return kv__rdb_fail(a->errmsg, err, "read node");
    if (v == NULL)
        return reject(a, KV_REJ_NOTFOUND, "node %s is not in the cluster", tag);
    rocksdb_free(v);
    rocksdb_writebatch_delete_cf(a->b, a->kv->cf[CF_NODES], tag, strlen(tag));
    a->fx |= KV_FX_NODES;
    summarize(a, "removed node %s", tag);
    return 0;
}

/* ---- server-certificate replacement and node rotation ---- */

#define CRL_SUPERSEDED 4 /* RFC 5280 CRLReason superseded */

static int get_replacement(struct apply *a, struct kv_replacement *doc)
{
    return kv__get_record(a->kv, CF_META, META_REPLACEMENT, strlen(META_REPLACEMENT),
                          kv__unpack_replacement, doc, a->errmsg);
}

static int put_replacement(struct apply *a, const struct kv_replacement *doc)
{
    a->fx |= KV_FX_REPLACE;
    return put_packed(a, CF_META, META_REPLACEMENT, strlen(META_REPLACEMENT), pack_replacement,
                      doc);
}

static void del_replacement(struct apply *a)
{
    a->fx |= KV_FX_REPLACE;
    rocksdb_writebatch_delete_cf(a->b, a->kv->cf[CF_META], META_REPLACEMENT,
                                 strlen(META_REPLACEMENT));
}

/* Rejects unless tp is registered as ClusterNode: a node may only switch to a certificate its
 * peers already trust. */
static int need_node_cert(struct apply *a, const char *tp)
{
    char low[KV_THUMB_LEN + 1];
    if (kv_thumb_norm(tp, low) != 0)
        return reject(a, KV_REJ_INVALID, "'%s' is not a thumbprint", tp);
    struct kv_cert reg;
    int rv = load_cert(a, low, &reg);
    if (rv == CMN_ENOTFOUND)
        return reject(a, KV_REJ_CONFLICT, "certificate %s is not registered", low);
    if (rv != 0)
        return rv;
    enum kv_clearance cl = reg.clearance;
    kv_cert_fini(&reg);
    if (cl != KV_CL_CLUSTER_NODE)
        return reject(a, KV_REJ_CONFLICT, "certificate %s is registered as %s, not ClusterNode",
                      low, kv_clearance_name(cl));
    return 0;
}

static int apply_replace_install(struct apply *a)
{
    const struct kv_replacement *r = &a->cmd->u.replace;
    TRY(need_admin(a));
    if (r->pfx.len == 0 || !cmn_is_hex(r->thumbprint, KV_THUMB_LEN))
        return reject(a, KV_REJ_INVALID,
                      "a replacement needs the new certificate and its thumbprint");
    TRY(need_node_cert(a, r->thumbprint));
    struct kv_replacement doc;
    int rv = get_replacement(a, &doc);
    if (rv == 0) {
        rv = reject(a, KV_REJ_CONFLICT,
                    "a replacement with certificate %s is in progress: wait for it to finish, or "
                    "reset it (POST /admin/certificates/replacement/reset)",
                    doc.thumbprint);
        kv_replacement_fini(&doc);
        return rv;
    }
    if (rv != CMN_ENOTFOUND)
        return rv;
    doc = *r;
    doc.started_ms = a->cmd->time_ms;
    doc.n_confirmed = doc.n_replaced = doc.n_notes = 0;
    doc.confirmed = doc.replaced = NULL;
    doc.notes = NULL;
    cmn_ascii_lower(doc.thumbprint);
    TRY(put_replacement(a, &doc));
    summarize(a, "server certificate replacement %s -> %s started%s", r->old_thumbprint,
              doc.thumbprint, r->replace_immediately ? " (replace immediately)" : "");
    return 0;
}

static int add_tag(char (**list)[KV_TAG_MAX + 1], size_t *n, const char *tag)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp((*list)[i], tag) == 0)
            return 0;
    char(*p)[KV_TAG_MAX + 1] = realloc(*list, (*n + 1) * sizeof *p);
    if (p == NULL)
        return CMN_ENOMEM;
    snprintf(p[*n], sizeof p[*n], "%s", tag);
    *list = p;
    (*n)++;
    return 0;
}

/* Sets (note non-NULL) or clears tag's note in the replacement document. */
static int set_note(struct kv_replacement *doc, const char *tag, const char *note)
{
    size_t tl = strlen(tag), k = doc->n_notes;
    for (size_t i = 0; i < doc->n_notes; i++)
        if (strncmp(doc->notes[i], tag, tl) == 0 && doc->notes[i][tl] == ':')
            k = i;
    if (note == NULL) {
        if (k < doc->n_notes)
            memmove(doc->notes[k], doc->notes[k + 1], (doc->n_notes - k - 1) * sizeof *doc->notes);
        doc->n_notes -= k < doc->n_notes;
        return 0;
    }
    if (k == doc->n_notes) {
        char(*p)[KV_REPL_NOTE_MAX] = realloc(doc->notes, (doc->n_notes + 1) * sizeof *p);
        if (p == NULL)
            return CMN_ENOMEM;
        doc->notes = p;
        doc->n_notes++;
    }
    snprintf(doc->notes[k], sizeof doc->notes[k], "%s: %s", tag, note);
    return 0;
}

/* Node `tag` now serves with certificate `tp` (registered as ClusterNode): its record names
 * it, and the certificate it used before is revoked as superseded unless another node still
 * uses it. A replacement in progress for tp counts the node, and ends once every node
 * switched. */
static int apply_replaced(struct apply *a)
{
    const struct kv_cmd *c = a->cmd;
    TRY(need_admin(a));
    if (!valid_tag(c->u.confirm.tag))
        return reject(a, KV_REJ_INVALID, "'%s' is not a node tag", c->u.confirm.tag);
    TRY(need_node_cert(a, c->u.confirm.thumbprint));
    char tp[KV_THUMB_LEN + 1];
    CMN_IGNORE(kv_thumb_norm(c->u.confirm.thumbprint, tp));
    const char *tag = c->u.confirm.tag;
    struct kv_node rec;
    int rv = kv__get_record(a->kv, CF_NODES, tag, strlen(tag), kv__unpack_node, &rec, a->errmsg);
    if (rv == CMN_ENOTFOUND)
        return reject(a, KV_REJ_NOTFOUND, "node %s is not in the cluster", tag);
    if (rv != 0)
        return rv;
    char old[KV_THUMB_LEN + 1];
    snprintf(old, sizeof old, "%s", rec.thumbprint);
    cmn_ascii_lower(old);
    struct kv_replacement doc;
    rv = get_replacement(a, &doc);
    bool loaded = rv == 0, have_doc = loaded && strcmp(doc.thumbprint, tp) == 0;
    if (rv == CMN_ENOTFOUND)
        rv = 0;
    struct node_uses u = {.tag = tag, .tp = old, .target = have_doc ? tp : NULL};
    if (rv == 0)
        rv = kv__scan(a->kv, NULL, CF_NODES, "", 0, uses_item, &u, a->errmsg);
    if (rv == 0 && strcmp(old, tp) != 0) {
        memcpy(rec.thumbprint, tp, sizeof rec.thumbprint);
        rv = put_packed(a, CF_NODES, tag, strlen(tag), pack_node, &rec);
        a->fx |= KV_FX_NODES;
        struct kv_cert prev;
        int got = u.other ? CMN_ENOTFOUND : load_cert(a, old, &prev);
        if (rv == 0 && got == 0) {
            if (prev.clearance == KV_CL_CLUSTER_NODE && prev.primary[0] == '\0' &&
                prev.n_secondaries == 0) {
                rv = cert_remove(a, &prev);
                if (rv == 0)
                    rv = cert_revoke(a, &prev, CRL_SUPERSEDED);
            }
            kv_cert_fini(&prev);
        } else if (got != 0 && got != CMN_ENOTFOUND) {
            rv = got;
        }
    }
    bool done = false;
    if (rv == 0 && have_doc) {
        rv = add_tag(&doc.replaced, &doc.n_replaced, tag);
        if (rv == 0)
            rv = add_tag(&doc.confirmed, &doc.n_confirmed, tag);
        if (rv == 0)
            rv = set_note(&doc, tag, NULL);
        done = u.on_new >= u.n;
        if (rv == 0 && done)
            del_replacement(a);
        else if (rv == 0)
            rv = put_replacement(a, &doc);
    }
    if (rv == 0)
        summarize(a, "node %s switched from certificate %s to %s%s%s", tag, old, tp,
                  u.other || strcmp(old, tp) == 0 ? "" : " (the old one revoked as superseded)",
                  done ? "; the server certificate was replaced in the entire cluster" : "");
    if (loaded)
        kv_replacement_fini(&doc);
    kv_node_fini(&rec);
    return rv;
}

static int apply_received(struct apply *a)
{
    const struct kv_cmd *c = a->cmd;
    TRY(need_admin(a));
    if (!valid_tag(c->u.confirm.tag))
        return reject(a, KV_REJ_INVALID, "'%s' is not a node tag", c->u.confirm.tag);
    struct kv_replacement doc;
    int rv = get_replacement(a, &doc);
    if (rv == CMN_ENOTFOUND)
        return reject(a, KV_REJ_NOTFOUND, "no server certificate replacement is in progress");
    if (rv != 0)
        return rv;
    if (strcasecmp(doc.thumbprint, c->u.confirm.thumbprint) != 0) {
        rv = reject(a, KV_REJ_CONFLICT, "the replacement in progress is for %s, not %s",
                    doc.thumbprint, c->u.confirm.thumbprint);
    } else {
        rv = add_tag(&doc.confirmed, &doc.n_confirmed, c->u.confirm.tag);
        if (rv == 0)
            rv = set_note(&doc, c->u.confirm.tag, c->u.confirm.note);
        if (rv == 0)
            rv = put_replacement(a, &doc);
        summarize(a, "node %s received server certificate %s%s%s", c->u.confirm.tag, doc.thumbprint,
                  c->u.confirm.note ? ": " : "", c->u.confirm.note ? c->u.confirm.note : "");
    }
    kv_replacement_fini(&doc);
    return rv;
}

static int apply_replace_reset(struct apply *a)
{
    TRY(need_admin(a));
    struct kv_replacement doc;
    int rv = get_replacement(a, &doc);
    if (rv == CMN_ENOTFOUND)
        return reject(a, KV_REJ_NOTFOUND, "no server certificate replacement is in progress");
    if (rv != 0)
        return rv;
    del_replacement(a);
    summarize(a, "server certificate replacement with %s reset (%zu node(s) had switched)",
              doc.thumbprint, doc.n_replaced);
    kv_replacement_fini(&doc);
    return 0;
}

/* ---- two-factor authentication ---- */

static int pack_twofa(msgpack_packer *pk, const void *r)
{
    return kv_twofa_pack(pk, r);
}

/* The registration of tp, or a rejection when there is none. */
static int load_registered(struct apply *a, const char *tp, struct kv_cert *out)
{
    int rv = load_cert(a, tp, out);
    if (rv == CMN_ENOTFOUND)
        return reject(a, KV_REJ_NOTFOUND, "Certificate %s is not registered", tp);
    return rv;
}

static int apply_twofa(struct apply *a)
{
    const struct kv_cmd *c = a->cmd;
    char tp[KV_THUMB_LEN + 1];
    if (kv_thumb_norm(c->u.twofa.thumbprint, tp) != 0)
        return reject(a, KV_REJ_INVALID, "'%s' is not a thumbprint", c->u.twofa.thumbprint);
    /* A certificate opens and closes its own session only (resolve_actor checked that it is
     * still registered). */
    if (!c->actor_registered || strcmp(c->actor, tp) != 0)
        return reject(a, KV_REJ_FORBIDDEN, "a two-factor session is its own certificate's");
    struct kv_cert cert;
    TRY(load_registered(a, tp, &cert));
    char name[128];
    snprintf(name, sizeof name, "%s", cert.name ? cert.name : "");
    bool has_key = cert.twofa_key != NULL;
    kv_cert_fini(&cert);
    if (!has_key)
        return reject(a, KV_REJ_INVALID,
                      "The certificate '%s' has no two-factor authentication key", name);
    struct kv_twofa t;
    int rv = kv__get_record(a->kv, CF_TWOFA, tp, KV_THUMB_LEN, kv__unpack_twofa, &t, a->errmsg);
    if (rv == CMN_ENOTFOUND) {
        memset(&t, 0, sizeof t);
        memcpy(t.thumbprint, tp, sizeof t.thumbprint);
    } else if (rv != 0) {
        return rv;
    }
    int64_t now = c->time_ms, locked = kv_twofa_locked_ms(&t, now);
    switch (c->type) {
    case KV_CMD_TWOFA_LOGIN:
        if (locked > 0)
            return reject(a, KV_REJ_LIMIT,
                          "Too many wrong codes for the certificate '%s': try again in %lld "
                          "seconds",
                          name, (long long)((locked + 999) / 1000));
        if (c->u.twofa.step <= t.last_step)
            return reject(a, KV_REJ_CONFLICT,
                          "This code was used already: wait for the next code of '%s'", name);
        if (c->u.twofa.expires_ms <= now)
            return reject(a, KV_REJ_INVALID, "the session must end after it begins");
        t.last_step = c->u.twofa.step;
        t.expires_ms = c->u.twofa.expires_ms;
        t.has_limits = c->u.twofa.has_limits;
        memcpy(t.cookie_hash, c->u.twofa.cookie_hash, sizeof t.cookie_hash);
        memset(t.fails_ms, 0, sizeof t.fails_ms);
        a->fx |= KV_FX_2FA;
        summarize(a, "two-factor session for '%s' (%s) until %lld%s", name, tp,
                  (long long)t.expires_ms, t.has_limits ? ", this browser only" : "");
        break;
    case KV_CMD_TWOFA_FAIL:
        memmove(t.fails_ms + 1, t.fails_ms, (KV_2FA_FAILS_MAX - 1) * sizeof *t.fails_ms);
        t.fails_ms[0] = now;
        summarize(a, "wrong two-factor code for '%s' (%s)", name, tp);
        break;
    default:
        t.expires_ms = 0;
        t.has_limits = false;
        memset(t.cookie_hash, 0, sizeof t.cookie_hash);
        a->fx |= KV_FX_2FA;
        summarize(a, "two-factor session of '%s' (%s) ended", name, tp);
        break;
    }
    return put_packed(a, CF_TWOFA, tp, KV_THUMB_LEN, pack_twofa, &t);
}

/* A master-key rotation: the leader seals each TOTP key again under the current key. The key
 * itself is the same, so its session goes on; an edit that came in between wins. */
static int apply_reseal_totp(struct apply *a)
{
    const struct kv_cmd *c = a->cmd;
    char tp[KV_THUMB_LEN + 1];
    TRY(need_admin(a));
    if (kv_thumb_norm(c->u.reseal.thumbprint, tp) != 0 || c->u.reseal.new_key == NULL ||
        c->u.reseal.new_key[0] == '\0')
        return reject(a, KV_REJ_INVALID, "a re-seal names a thumbprint and the sealed key");
    struct kv_cert cert;
    TRY(load_registered(a, tp, &cert));
    int rv;
    if (cert.twofa_key == NULL || c->u.reseal.old_key == NULL ||
        strcmp(cert.twofa_key, c->u.reseal.old_key) != 0) {
        rv = reject(a, KV_REJ_CONFLICT, "the two-factor key of %s changed meanwhile", tp);
    } else {
        struct kv_cert upd = cert;
        upd.twofa_key = c->u.reseal.new_key;
        rv = put_packed(a, CF_CERTS, tp, KV_THUMB_LEN, pack_cert, &upd);
        summarize(a, "two-factor key of '%s' (%s) sealed under the current master key",
                  cert.name ? cert.name : "", tp);
    }
    kv_cert_fini(&cert);
    return rv;
}

/* ---- the entry point ---- */

static int execute(struct apply *a, struct doomed *d)
{
    switch (a->cmd->type) {
    case KV_CMD_PUT_CERTS:
        return apply_put(a);
    case KV_CMD_EDIT_CERT:
        return apply_edit(a);
    case KV_CMD_DELETE_CERTS:
        return apply_delete(a, d);
    case KV_CMD_PURGE_EXPIRED:
        return apply_purge(a, d);
    case KV_CMD_SET_ISSUING_CA:
        return apply_set_ca(a);
    case KV_CMD_PUT_NODE:
        return apply_put_node(a);
    case KV_CMD_REMOVE_NODE:
        return apply_remove_node(a);
    case KV_CMD_REPLACE_INSTALL:
        return apply_replace_install(a);
    case KV_CMD_REPLACE_RECEIVED:
        return apply_received(a);
    case KV_CMD_REPLACE_REPLACED:
        return apply_replaced(a);
    case KV_CMD_REPLACE_RESET:
        return apply_replace_reset(a);
    case KV_CMD_AUDIT:
        TRY(need_admin(a));
        summarize(a, "%s", a->cmd->u.audit.event);
        return 0;
    case KV_CMD_TWOFA_LOGIN:
    case KV_CMD_TWOFA_FAIL:
    case KV_CMD_TWOFA_LOGOUT:
        return apply_twofa(a);
    case KV_CMD_RESEAL_TOTP:
        return apply_reseal_totp(a);
    case KV_CMD_REFRESH_CRL:
        TRY(need_admin(a));
        crl_changed(a);
        summarize(a, "CRL number %llu", (unsigned long long)a->index);
        return 0;
    }
    return reject(a, KV_REJ_INVALID, "unknown command type");
}

/* ---- request ids: a retried proposal is applied once ----
 *
 * CF_REQUESTS holds "r" actor ":" id -> the outcome, the command's digest and time, and an
 * index "t" be64(time) actor ":" id -> "" by which records older than REQUEST_TTL_MS are
 * deleted. The id is the caller's (keyed with its thumbprint, so that callers never share one),
 * and the digest tells a replay of the same command from a different command under a used id. */

struct request_key {
    char rec[1 + KV_THUMB_LEN + 1 + KV_RID_MAX + 1];
    size_t rec_len;
};

static void request_key(const struct kv_cmd *c, struct request_key *k)
{
    k->rec_len = (size_t)snprintf(k->rec, sizeof k->rec, "r%s:%s", c->actor, c->request_id);
}

static void request_time_key(const struct request_key *k, int64_t time_ms, char *out, size_t *len)
{
    out[0] = 't';
    cmn_be64_put((uint8_t *)out + 1, (uint64_t)time_ms);
    memcpy(out + 9, k->rec + 1, k->rec_len - 1);
    *len = 9 + k->rec_len - 1;
}

/* SHA-256 of the command without what a retry changes: the proposer's clock and the request id
 * (and the registration time it puts in each certificate). */
static int command_digest(const struct kv_cmd *c, uint8_t out[32], char *errmsg)
{
    struct kv_cmd n = *c;
    n.request_id = NULL;
    n.time_ms = 0;
    struct kv_cert *certs = NULL;
    if (c->type == KV_CMD_PUT_CERTS && c->u.put.n) {
        certs = malloc(c->u.put.n * sizeof *certs);
        if (certs == NULL)
            return CMN_ENOMEM;
        memcpy(certs, c->u.put.certs, c->u.put.n * sizeof *certs);
        for (size_t i = 0; i < c->u.put.n; i++)
            certs[i].registered_ms = 0;
        n.u.put.certs = certs;
    }
    struct cmn_buf b;
    cmn_buf_init(&b, true);
    int rv = kv_cmd_encode(&n, &b, errmsg);
    unsigned len = 0;
    if (rv == 0 && EVP_Digest(b.data, b.len, out, &len, EVP_sha256(), NULL) != 1)
        rv = cmn_fail(errmsg, CMN_ECRYPTO, "digest of the command");
    cmn_buf_fini(&b);
    free(certs); /* a shallow copy: what it points to is the command's */
    return rv;
}

static int put_request(struct apply *a, const struct request_key *k, uint64_t index, bool rejected,
                       const uint8_t digest[32])
{
    struct cmn_buf buf;
    cmn_buf_init(&buf, false);
    msgpack_packer pk;
    kv_packer_init(&pk, &buf);
    int rv = msgpack_pack_map(&pk, 6) ? CMN_ENOMEM : 0;
    if (rv == 0)
        rv = kv__pk_u64(&pk, "idx", index);
    if (rv == 0)
        rv = kv__pk_u64(&pk, "code", rejected ? (uint64_t)a->code : 0);
    if (rv == 0)
        rv = kv__pk_bool(&pk, "rej", rejected);
    if (rv == 0)
        rv = kv__pk_str(&pk, "why", rejected ? a->reason : "");
    if (rv == 0)
        rv = kv__pk_bin(&pk, "dg", digest, 32);
    if (rv == 0)
        rv = kv__pk_i64(&pk, "ts", a->cmd->time_ms);
    if (rv == 0) {
        char tk[9 + sizeof k->rec];
        size_t tlen;
        request_time_key(k, a->cmd->time_ms, tk, &tlen);
        rocksdb_writebatch_put_cf(a->b, a->kv->cf[CF_REQUESTS], k->rec, k->rec_len,
                                  (const char *)buf.data, buf.len);
        rocksdb_writebatch_put_cf(a->b, a->kv->cf[CF_REQUESTS], tk, tlen, "", 0);
    }
    cmn_buf_fini(&buf);
    return rv;
}

struct request_outcome {
    uint64_t index;
    uint64_t code;
    bool rejected;
    char *why;
    uint8_t *digest;
    size_t digest_len;
    int64_t time_ms;
};

static int request_field(void *ctx, int f, const msgpack_object *v, char *errmsg)
{
    struct request_outcome *o = ctx;
    switch (f) {
    case 0:
        return kv__get_u64(v, "idx", &o->index, errmsg);
    case 1:
        return kv__get_bool(v, "rej", &o->rejected, errmsg);
    case 2:
        return kv__get_str(v, "why", CMN_ERRMSG_SIZE, &o->why, errmsg);
    case 3:
        return kv__get_u64(v, "code", &o->code, errmsg);
    case 4:
        return kv__get_bin(v, "dg", 32, &o->digest, &o->digest_len, errmsg);
    default:
        return kv__get_i64(v, "ts", &o->time_ms, errmsg);
    }
}

static int unpack_request(const msgpack_object *o, void *out, char *errmsg)
{
    static const char *const f[] = {"idx", "rej", "why", "code", "dg", "ts"};
    return kv__walk_map(o, "request", f, 6, 63, request_field, out, errmsg);
}

struct prune_scan {
    struct apply *a;
    int64_t before_ms;
    int left;
};

static int prune_item(void *ctx, const char *k, size_t klen, const char *v, size_t vlen,
                      char *errmsg)
{
    struct prune_scan *s = ctx;
    (void)v;
    (void)vlen;
    (void)errmsg;
    if (klen < 9 || s->left == 0 || (int64_t)cmn_be64_get((const uint8_t *)k + 1) >= s->before_ms)
        return 1;
    char rec[1 + KV_THUMB_LEN + 1 + KV_RID_MAX + 1];
    if (klen - 9 + 1 > sizeof rec)
        return 1;
    rec[0] = 'r';
    memcpy(rec + 1, k + 9, klen - 9);
    rocksdb_writebatch_delete_cf(s->a->b, s->a->kv->cf[CF_REQUESTS], k, klen);
    rocksdb_writebatch_delete_cf(s->a->b, s->a->kv->cf[CF_REQUESTS], rec, klen - 9 + 1);
    s->left--;
    return 0;
}

/* Deletes a few request records older than REQUEST_TTL_MS by this command's clock. */
static int prune_requests(struct apply *a, int64_t now_ms)
{
    struct prune_scan s = {.a = a, .before_ms = now_ms - REQUEST_TTL_MS, .left = REQUEST_PRUNE};
    return kv__scan(a->kv, NULL, CF_REQUESTS, "t", 1, prune_item, &s, a->errmsg);
}

static int write_audit(struct apply *a, uint64_t index, int type, bool rejected)
{
    const struct kv_cmd *c = a->cmd;
    struct kv_audit e = {
        .index = index,
        .time_ms = c ? c->time_ms : 0,
        .type = type,
        .request_id = c ? c->request_id : NULL,
        .rejected = rejected,
        .summary = rejected ? a->reason : a->summary,
    };
    if (c)
        memcpy(e.actor, c->actor, sizeof e.actor);
    uint8_t key[8];
    cmn_be64_put(key, index);
    return put_packed(a, CF_AUDIT, (const char *)key, 8, pack_audit, &e);
}

int kv_apply(struct kv *kv, uint64_t index, const void *entry, size_t len, struct kv_result *res,
             char *errmsg)
{
    memset(res, 0, sizeof *res);
    res->index = index;
    if (index <= kv->applied) {
        res->skipped = true;
        return 0;
    }
    struct apply a = {.kv = kv, .index = index};
    struct kv_cmd cmd;
    struct doomed d = {0};
    int rv = 0;
    bool rejected = false;
    a.b = rocksdb_writebatch_create();

    char why[CMN_ERRMSG_SIZE] = "";
    int drv = kv_cmd_decode(entry, len, &cmd, why);
    if (drv == CMN_ENOMEM) {
        /* Not the entry's fault: recording it as malformed would make this node's state
         * differ from every other's. Nothing is written; the same index may be applied again. */
        rv = drv;
        snprintf(a.errmsg, sizeof a.errmsg, "%s", why);
        goto fail;
    }
    if (drv != 0) {
        /* A malformed entry must not stall every node: record it as rejected and move on. */
        rejected = true;
        reject(&a, KV_REJ_INVALID, "malformed command: %.200s", why);
        rv = write_audit(&a, index, len ? ((const uint8_t *)entry)[0] : 0, true);
        goto commit;
    }
    a.cmd = &cmd;
    res->type = (int)cmd.type;
    bool has_rid = cmd.request_id != NULL && cmd.request_id[0] != '\0';
    struct request_key rk;
    uint8_t digest[32];
    bool id_reused = false, expired = false;
    int64_t expired_ms = 0;
    if (has_rid) {
        request_key(&cmd, &rk);
        rv = command_digest(&cmd, digest, a.errmsg);
        if (rv != 0)
            goto fail;
        struct request_outcome prev = {0};
        rv = kv__get_record(kv, CF_REQUESTS, rk.rec, rk.rec_len, unpack_request, &prev, a.errmsg);
        bool live = rv == 0 && prev.time_ms + REQUEST_TTL_MS > cmd.time_ms;
        if (live && prev.digest_len == 32 && memcmp(prev.digest, digest, 32) == 0) {
            res->duplicate = true; /* the same command again: its first answer */
            res->rejected = prev.rejected;
            res->code = (int)prev.code;
            snprintf(res->reason, sizeof res->reason, "%s", prev.why ? prev.why : "");
        } else if (live) {
            id_reused = true;
            reject(&a, KV_REJ_CONFLICT,
                   "raft-request-id '%.100s' was already used by this client for a different "
                   "command (applied at index %llu): use a new id for a new command",
                   cmd.request_id, (unsigned long long)prev.index);
        } else if (rv == 0) { /* expired: a new record replaces it, below */
            expired = true;
            expired_ms = prev.time_ms;
        }
        free(prev.why);
        free(prev.digest);
        if (rv != 0 && rv != CMN_ENOTFOUND)
            goto fail;
        rv = 0;
        if (res->duplicate)
            goto commit; /* only the applied index moves */
    }
    rv = id_reused ? REJECTED : resolve_actor(&a);
    if (rv == 0)
        rv = execute(&a, &d);
    if (rv == REJECTED) {
        rejected = true;
        rocksdb_writebatch_clear(a.b); /* nothing of a rejected command is kept */
        a.fx = 0;
        a.n_removed = 0;
        free(a.removed_set.slot);
        a.removed_set = (struct tpset){0};
        rv = 0;
    }
    if (rv == 0)
        rv = prune_requests(&a, cmd.time_ms);
    if (rv != 0)
        goto fail;
    rv = write_audit(&a, index, cmd.type, rejected);
    if (rv == 0 && has_rid && !id_reused) {
        if (expired) { /* the replaced record's index entry goes with it */
            char tk[9 + sizeof rk.rec];
            size_t tlen;
            request_time_key(&rk, expired_ms, tk, &tlen);
            rocksdb_writebatch_delete_cf(a.b, kv->cf[CF_REQUESTS], tk, tlen);
        }
        rv = put_request(&a, &rk, index, rejected, digest);
    }

commit:
    if (rv != 0)
        goto fail;
    {
        uint8_t idx[8];
        cmn_be64_put(idx, index);
        rocksdb_writebatch_put_cf(a.b, kv->cf[CF_META], META_APPLIED, strlen(META_APPLIED),
                                  (const char *)idx, 8);
    }
    rv = kv__write(kv, a.b, a.errmsg);
    if (rv != 0)
        goto fail;
    kv->applied = index;
    if (!res->duplicate) {
        res->rejected = rejected;
        res->code = rejected ? a.code : KV_REJ_NONE;
        snprintf(res->reason, sizeof res->reason, "%s", rejected ? a.reason : "");
        res->effects = a.fx;
        size_t k = 0;
        for (size_t i = 0; i < a.n_removed; i++) /* without the ones put back */
            if (a.removed[i][0] != '\0')
                memmove(a.removed[k++], a.removed[i], sizeof *a.removed);
        if (k) {
            res->effects |= KV_FX_REMOVED;
            res->removed = a.removed; /* moves to the result */
            res->n_removed = k;
            a.removed = NULL;
        }
    }
    goto out;
fail:
    cmn_fail(errmsg, rv, "storage: apply %llu: %s", (unsigned long long)index,
             a.errmsg[0] ? a.errmsg : cmn_strerror(rv));
out:
    for (size_t i = 0; i < d.n; i++)
        kv_cert_fini(&d.certs[i]);
    free(d.certs);
    free(d.set.slot);
    free(a.removed);
    free(a.removed_set.slot);
    if (drv == 0)
        kv_cmd_fini(&cmd);
    rocksdb_writebatch_destroy(a.b);
    return rv;
}

void kv_result_fini(struct kv_result *res)
{
    free(res->removed);
    memset(res, 0, sizeof *res);
}
