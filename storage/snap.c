/* Snapshots of the trust state (serialise / restore) and the state hash.
 *
 * Format: "CVSNAP01" | be64 applied index | records | 0xFF | SHA-256 of all bytes before it.
 * A record is u8 column family | be32 key length | key | be32 value length | value. */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "storage/kv_impl.h"

#define SNAP_MAGIC       "CVSNAP01"
#define SNAP_END         0xFF
#define SNAP_BATCH_BYTES (8u << 20) /* restore writes in batches of about this size */

/* Meta keys that describe the store itself rather than the trust state. */
static bool local_only(int cf, const char *k, size_t klen)
{
    return cf == CF_META &&
           ((klen == strlen(META_APPLIED) && memcmp(k, META_APPLIED, klen) == 0) ||
            (klen == strlen(META_RESTORING) && memcmp(k, META_RESTORING, klen) == 0));
}

int kv_snap_begin(struct kv *kv, struct kv_snap **out, char *errmsg)
{
    struct kv_snap *s = calloc(1, sizeof *s);
    if (s == NULL)
        return CMN_ENOMEM;
    s->kv = kv;
    s->snap = rocksdb_create_snapshot(kv->db);
    s->index = kv->applied;
    *out = s;
    return 0;
}

uint64_t kv_snap_index(const struct kv_snap *s)
{
    return s->index;
}

void kv_snap_end(struct kv_snap *s)
{
    if (s == NULL)
        return;
    rocksdb_release_snapshot(s->kv->db, s->snap);
    free(s);
}

static void be32_put(uint8_t out[4], uint32_t v)
{
    out[0] = (uint8_t)(v >> 24);
    out[1] = (uint8_t)(v >> 16);
    out[2] = (uint8_t)(v >> 8);
    out[3] = (uint8_t)v;
}

struct ser {
    struct cmn_buf *out;
    int cf;
};

static int ser_item(void *ctx, const char *k, size_t klen, const char *v, size_t vlen, char *errmsg)
{
    struct ser *s = ctx;
    if (local_only(s->cf, k, klen))
        return 0;
    if (klen > UINT32_MAX || vlen > UINT32_MAX)
        return CMN_ETOOBIG;
    uint8_t hdr[5];
    hdr[0] = (uint8_t)s->cf;
    be32_put(hdr + 1, (uint32_t)klen);
    int rv = cmn_buf_append(s->out, hdr, 5);
    if (rv == 0)
        rv = cmn_buf_append(s->out, k, klen);
    be32_put(hdr, (uint32_t)vlen);
    if (rv == 0)
        rv = cmn_buf_append(s->out, hdr, 4);
    if (rv == 0)
        rv = cmn_buf_append(s->out, v, vlen);
    return rv;
}

int kv_snap_serialize(struct kv_snap *s, struct cmn_buf *out, char *errmsg)
{
    size_t start = out->len;
    uint8_t idx[8];
    cmn_be64_put(idx, s->index);
    int rv = cmn_buf_append(out, SNAP_MAGIC, 8);
    if (rv == 0)
        rv = cmn_buf_append(out, idx, 8);
    for (int cf = 1; cf < CF_COUNT && rv == 0; cf++) {
        struct ser ser = {.out = out, .cf = cf};
        rv = kv__scan(s->kv, s->snap, cf, "", 0, ser_item, &ser, errmsg);
    }
    uint8_t end = SNAP_END;
    if (rv == 0)
        rv = cmn_buf_append(out, &end, 1);
    if (rv == 0) {
        uint8_t md[32];
        unsigned mdlen = 0;
        if (!EVP_Digest(out->data + start, out->len - start, md, &mdlen, EVP_sha256(), NULL))
            rv = CMN_ECRYPTO;
        else
            rv = cmn_buf_append(out, md, sizeof md);
    }
    if (rv != 0) {
        out->len = start;
        if (errmsg && !errmsg[0])
            cmn_fail(errmsg, rv, "storage: snapshot: %s", cmn_strerror(rv));
    }
    return rv;
}

static size_t batch_bytes(rocksdb_writebatch_t *b)
{
    size_t n = 0;
    (void)rocksdb_writebatch_data(b, &n);
    return n;
}

/* Walks the records of a snapshot; with b == NULL it only checks them. */
static int walk_records(struct kv *kv, struct cmn_cur *c, rocksdb_writebatch_t *b, char *errmsg)
{
    for (;;) {
        uint8_t cf;
        const uint8_t *p;
        if (cmn_cur_u8(c, &cf) != 0)
            return cmn_fail(errmsg, CMN_EMALFORMED, "storage: snapshot truncated");
        if (cf == SNAP_END)
            return 0;
        if (cf == CF_DEFAULT || cf >= CF_COUNT)
            return cmn_fail(errmsg, CMN_EMALFORMED, "storage: snapshot: unknown family %u", cf);
        uint32_t len[2];
        const uint8_t *kv_bytes[2];
        for (int i = 0; i < 2; i++) {
            if (cmn_cur_take(c, 4, &p) != 0)
                return cmn_fail(errmsg, CMN_EMALFORMED, "storage: snapshot truncated");
            len[i] = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
            if (cmn_cur_take(c, len[i], &kv_bytes[i]) != 0)
                return cmn_fail(errmsg, CMN_EMALFORMED, "storage: snapshot truncated");
        }
        if (b != NULL)
            rocksdb_writebatch_put_cf(b, kv->cf[cf], (const char *)kv_bytes[0], len[0],
                                      (const char *)kv_bytes[1], len[1]);
        if (b != NULL && batch_bytes(b) >= SNAP_BATCH_BYTES) {
            int rv = kv__write(kv, b, errmsg);
            if (rv != 0)
                return rv;
            rocksdb_writebatch_clear(b);
        }
    }
}

static void put_applied(struct kv *kv, rocksdb_writebatch_t *b, uint64_t index)
{
    uint8_t idx[8];
    cmn_be64_put(idx, index);
    rocksdb_writebatch_put_cf(b, kv->cf[CF_META], META_APPLIED, strlen(META_APPLIED),
                              (const char *)idx, 8);
}

int kv_restore(struct kv *kv, const void *p, size_t len, char *errmsg)
{
    const uint8_t *b = p;
    if (len < 8 + 8 + 1 + 32 || memcmp(b, SNAP_MAGIC, 8) != 0)
        return cmn_fail(errmsg, CMN_EMALFORMED, "storage: not a Corvid snapshot");
    uint8_t md[32];
    unsigned mdlen = 0;
    if (!EVP_Digest(b, len - 32, md, &mdlen, EVP_sha256(), NULL))
        return cmn_fail(errmsg, CMN_ECRYPTO, "storage: snapshot checksum: SHA-256 failed");
    if (memcmp(md, b + len - 32, 32) != 0)
        return cmn_fail(errmsg, CMN_EMALFORMED, "storage: snapshot checksum mismatch");
    uint64_t index = cmn_be64_get(b + 8);
    if (index <= kv->applied)
        return cmn_fail(errmsg, CMN_ESTALE,
                        "storage: snapshot at index %llu is not ahead of the store (%llu)",
                        (unsigned long long)index, (unsigned long long)kv->applied);
    struct cmn_cur c;
    cmn_cur_init(&c, b + 16, len - 16 - 32);
    int rv = walk_records(kv, &c, NULL, errmsg);
    if (rv != 0)
        return rv;
    if (cmn_cur_left(&c) != 0)
        return cmn_fail(errmsg, CMN_EMALFORMED, "storage: snapshot has trailing bytes");

    /* 1: mark the store as restoring and empty it. A crash from here on leaves the marker, and
     * kv_open then reports index 0 so that Raft sends the snapshot again. */
    static const char hi[512] = {[0 ... 511] = (char)0xFF}; /* above every key we write */
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    rocksdb_writebatch_put_cf(wb, kv->cf[CF_META], META_RESTORING, strlen(META_RESTORING), "1", 1);
    for (int cf = 1; cf < CF_COUNT; cf++)
        if (cf != CF_META)
            rocksdb_writebatch_delete_range_cf(wb, kv->cf[cf], "", 0, hi, sizeof hi);
    rocksdb_writebatch_delete_cf(wb, kv->cf[CF_META], META_REPLACEMENT, strlen(META_REPLACEMENT));
    rocksdb_writebatch_delete_cf(wb, kv->cf[CF_META], META_CRL, strlen(META_CRL));
    put_applied(kv, wb, 0);
    rv = kv__write(kv, wb, errmsg);
    if (rv != 0)
        goto out;
    kv->applied = 0;
    rocksdb_writebatch_clear(wb);
    /* 2: the records, in batches. */
    cmn_cur_init(&c, b + 16, len - 16 - 32);
    rv = walk_records(kv, &c, wb, errmsg);
    if (rv != 0)
        goto out;
    /* 3: the index, and the marker gone, atomically with the last records. */
    put_applied(kv, wb, index);
    rocksdb_writebatch_delete_cf(wb, kv->cf[CF_META], META_RESTORING, strlen(META_RESTORING));
    rv = kv__write(kv, wb, errmsg);
    if (rv == 0)
        kv->applied = index;
out:
    rocksdb_writebatch_destroy(wb);
    return rv;
}

struct hasher {
    EVP_MD_CTX *md;
    int cf;
};

static int hash_item(void *ctx, const char *k, size_t klen, const char *v, size_t vlen,
                     char *errmsg)
{
    struct hasher *h = ctx;
    if (local_only(h->cf, k, klen))
        return 0;
    uint8_t hdr[17];
    hdr[0] = (uint8_t)h->cf;
    cmn_be64_put(hdr + 1, klen);
    cmn_be64_put(hdr + 9, vlen);
    if (!EVP_DigestUpdate(h->md, hdr, sizeof hdr) || !EVP_DigestUpdate(h->md, k, klen) ||
        !EVP_DigestUpdate(h->md, v, vlen))
        return CMN_ECRYPTO;
    return 0;
}

static int hash_families(struct kv *kv, const rocksdb_snapshot_t *snap, bool trust_only,
                         uint8_t out[32], char *errmsg)
{
    struct hasher h = {.md = EVP_MD_CTX_new()};
    if (h.md == NULL || !EVP_DigestInit_ex(h.md, EVP_sha256(), NULL)) {
        EVP_MD_CTX_free(h.md);
        return cmn_fail(errmsg, CMN_ECRYPTO, "storage: state hash: SHA-256 failed");
    }
    int rv = 0;
    for (int cf = 1; cf < CF_COUNT && rv == 0; cf++) {
        if (trust_only && (cf == CF_AUDIT || cf == CF_REQUESTS))
            continue;
        h.cf = cf;
        rv = kv__scan(kv, snap, cf, "", 0, hash_item, &h, errmsg);
    }
    unsigned n = 0;
    if (rv == 0 && !EVP_DigestFinal_ex(h.md, out, &n))
        rv = cmn_fail(errmsg, CMN_ECRYPTO, "storage: state hash: SHA-256 failed");
    EVP_MD_CTX_free(h.md);
    return rv;
}

static int hash_now(struct kv *kv, bool trust_only, uint8_t out[32], char *errmsg)
{
    const rocksdb_snapshot_t *snap = rocksdb_create_snapshot(kv->db);
    int rv = hash_families(kv, snap, trust_only, out, errmsg);
    rocksdb_release_snapshot(kv->db, snap);
    return rv;
}

int kv_state_hash(struct kv *kv, uint8_t out[32], char *errmsg)
{
    return hash_now(kv, false, out, errmsg);
}

int kv_trust_hash(struct kv *kv, uint8_t out[32], char *errmsg)
{
    return hash_now(kv, true, out, errmsg);
}

int kv_snap_hash(struct kv_snap *s, bool trust_only, uint8_t out[32], char *errmsg)
{
    return hash_families(s->kv, s->snap, trust_only, out, errmsg);
}
