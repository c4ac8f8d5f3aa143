/* The trust state in RocksDB column families; apply, queries, snapshots. */
#include "storage/kv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <openssl/evp.h>
#include <rocksdb/c.h>

#include "storage/kv_impl.h"
#include "storage/mp.h"

const char *const kv__cf_names[CF_COUNT] = {"default", "certs",    "by_pkph", "by_serial",
                                            "nodes",   "revoked",  "ca",      "audit",
                                            "meta",    "requests", "twofa"};

int kv__rdb_fail(char *errmsg, char *err, const char *what)
{
    cmn_fail(errmsg, CMN_EIO, "storage: %s: %s", what, err ? err : "failed");
    rocksdb_free(err);
    return CMN_EIO;
}

/* ---- open / close ---- */

int kv_open(const char *dir, struct kv **out, char *errmsg)
{
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return cmn_fail(errmsg, CMN_EIO, "storage: cannot create %s: %s", dir, strerror(errno));
    struct kv *kv = calloc(1, sizeof *kv);
    if (kv == NULL)
        return CMN_ENOMEM;
    kv->dir = strdup(dir);
    if (kv->dir == NULL) {
        free(kv);
        return CMN_ENOMEM;
    }
    /* No fallocate: RocksDB would preallocate every WAL file by min(1.1 x write buffer,
     * max_total_wal_size), 64 MiB here, so that a node would look short of disk (node/disk.c)
     * long before it is, and an ENOSPC would come only after that much more. Writes are not
     * synced one by one (Raft's log is the durable copy), so preallocation buys little. */
    rocksdb_options_t *base = rocksdb_options_create();
    kv->opts = rocksdb_options_create();
    char *err = NULL;
    rocksdb_get_options_from_string(base, "allow_fallocate=false", kv->opts, &err);
    rocksdb_options_destroy(base);
    if (err != NULL) {
        rocksdb_options_destroy(kv->opts);
        free(kv->dir);
        free(kv);
        return kv__rdb_fail(errmsg, err, "options");
    }
    rocksdb_options_set_create_if_missing(kv->opts, 1);
    rocksdb_options_set_create_missing_column_families(kv->opts, 1);
    rocksdb_options_set_paranoid_checks(kv->opts, 1);
    rocksdb_options_set_max_background_jobs(kv->opts, 2);
    /* The WAL replayed at open stays small: old WAL files are released by flushing the column
     * families that still have data in them (a restart after a bulk load replayed ~100 MB). */
    rocksdb_options_set_max_total_wal_size(kv->opts, 64u << 20);
    /* Compactions yield the CPU to the event loops (Raft heartbeats) on a busy machine. */
    kv->env = rocksdb_create_default_env();
    rocksdb_env_lower_thread_pool_cpu_priority(kv->env);
    rocksdb_options_set_env(kv->opts, kv->env);
    const rocksdb_options_t *cf_opts[CF_COUNT];
    for (int i = 0; i < CF_COUNT; i++)
        cf_opts[i] = kv->opts;
    kv->db =
        rocksdb_open_column_families(kv->opts, dir, CF_COUNT, kv__cf_names, cf_opts, kv->cf, &err);
    if (err != NULL) {
        rocksdb_options_destroy(kv->opts);
        rocksdb_env_destroy(kv->env);
        free(kv->dir);
        free(kv);
        return kv__rdb_fail(errmsg, err, "open");
    }
    kv->ropts = rocksdb_readoptions_create();
    kv->wopts = rocksdb_writeoptions_create();

    size_t vlen = 0;
    char *v = rocksdb_get_cf(kv->db, kv->ropts, kv->cf[CF_META], META_RESTORING,
                             strlen(META_RESTORING), &vlen, &err);
    if (err == NULL && v == NULL)
        v = rocksdb_get_cf(kv->db, kv->ropts, kv->cf[CF_META], META_APPLIED, strlen(META_APPLIED),
                           &vlen, &err);
    else if (v != NULL) {
        /* A restore was interrupted: the contents are partial, so claim nothing applied and let
         * Raft send the snapshot again. */
        rocksdb_free(v);
        v = NULL;
    }
    if (err != NULL) {
        kv_close(kv);
        return kv__rdb_fail(errmsg, err, "read applied index");
    }
    if (v != NULL) {
        if (vlen != 8) {
            rocksdb_free(v);
            kv_close(kv);
            return cmn_fail(errmsg, CMN_EMALFORMED, "storage: corrupt applied index");
        }
        kv->applied = cmn_be64_get((const uint8_t *)v);
        rocksdb_free(v);
    }
    *out = kv;
    return 0;
}

void kv_close(struct kv *kv)
{
    if (kv == NULL)
        return;
    if (kv->db && !kv->write_failed[0]) { /* memtables to disk now: the next open replays no WAL */
        rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
        for (int i = 0; fo && i < CF_COUNT; i++) {
            char *err = NULL;
            if (kv->cf[i])
                rocksdb_flush_cf(kv->db, fo, kv->cf[i], &err);
            free(err);
        }
        rocksdb_flushoptions_destroy(fo);
    }
    for (int i = 0; i < CF_COUNT; i++)
        if (kv->cf[i])
            rocksdb_column_family_handle_destroy(kv->cf[i]);
    if (kv->db)
        rocksdb_close(kv->db);
    if (kv->ropts)
        rocksdb_readoptions_destroy(kv->ropts);
    if (kv->wopts)
        rocksdb_writeoptions_destroy(kv->wopts);
    rocksdb_options_destroy(kv->opts);
    rocksdb_env_destroy(kv->env);
    free(kv->dir);
    free(kv);
}

uint64_t kv_applied_index(const struct kv *kv)
{
    return kv->applied;
}

void kv_fail_write_at(struct kv *kv, unsigned nth)
{
    kv->fail_write_at = nth;
}

unsigned kv_fail_read_at(struct kv *kv, unsigned nth)
{
    unsigned left = kv->fail_read_at;
    kv->fail_read_at = nth;
    return left;
}

/* CMN_EIO when kv_fail_read_at's countdown reaches this read. */
static int read_fault(struct kv *kv, char *errmsg)
{
    if (kv->fail_read_at && --kv->fail_read_at == 0)
        return cmn_fail(errmsg, CMN_EIO, "storage: read: injected failure");
    return 0;
}

uint64_t kv_memtable_bytes(struct kv *kv)
{
    uint64_t mem = 0;
    for (int i = 0; i < CF_COUNT; i++) {
        uint64_t v = 0;
        if (rocksdb_property_int_cf(kv->db, kv->cf[i], "rocksdb.cur-size-all-mem-tables", &v) == 0)
            mem += v;
    }
    return mem;
}

/* RocksDB must never meet ENOSPC: Debian's 7.8 is built with assertions, and a file writer
 * used again after a failed write aborts the process (WritableFileWriter::
 * AssertFalseAndGetStatusForPrevError), as a flush or the WAL does on a full disk (seen under
 * tools/chaos). A write is not tried while the free space is below what the memtables' flush,
 * the batch and KV_DISK_FLOOR may need. Compactions are not covered. */
static int check_room(struct kv *kv, size_t batch, char *errmsg)
{
    struct statvfs sv;
    if (statvfs(kv->dir, &sv) != 0)
        return 0; /* cannot tell: RocksDB will say */
    uint64_t avail = (uint64_t)sv.f_bavail * (uint64_t)sv.f_frsize;
    uint64_t mem = kv_memtable_bytes(kv);
    uint64_t need = mem + batch + KV_DISK_FLOOR;
    if (avail >= need)
        return 0;
    return cmn_fail(errmsg, CMN_ENOSPACE,
                    "storage: write: not tried: %s has %llu bytes free, a write may need %llu "
                    "(memtables %llu, batch %zu, floor %u)",
                    kv->dir, (unsigned long long)avail, (unsigned long long)need,
                    (unsigned long long)mem, batch, KV_DISK_FLOOR);
}

int kv__write(struct kv *kv, rocksdb_writebatch_t *b, char *errmsg)
{
    if (kv->fail_write_at && --kv->fail_write_at == 0)
        return cmn_fail(errmsg, CMN_EIO, "storage: write: injected failure");
    size_t batch = 0;
    (void)rocksdb_writebatch_data(b, &batch);
    int rv = check_room(kv, batch, errmsg);
    if (rv != 0)
        return rv;
    if (kv->write_failed[0])
        return cmn_fail(errmsg, CMN_EIO,
                        "storage: write: refused after an earlier failure (%s): the store takes "
                        "no more writes until it is opened again",
                        kv->write_failed);
    char *err = NULL;
    rocksdb_write(kv->db, kv->wopts, b, &err);
    if (err != NULL) {
        /* Debian's RocksDB 7.8 is built with assertions, and a write after a failed WAL append
         * (ENOSPC) aborts the process in WritableFileWriter: no write is tried again. */
        snprintf(kv->write_failed, sizeof kv->write_failed, "%s", err);
        return kv__rdb_fail(errmsg, err, "write");
    }
    return 0;
}

/* ---- record get/put helpers ---- */

/* Reads key from cf (through snapshot-less read options) and decodes it. CMN_ENOTFOUND. */
int kv__get_record(struct kv *kv, int cf, const char *key, size_t klen, kv__unpack_fn fn, void *out,
                   char *errmsg)
{
    int rv = read_fault(kv, errmsg);
    if (rv != 0)
        return rv;
    char *err = NULL;
    size_t vlen = 0;
    char *v = rocksdb_get_cf(kv->db, kv->ropts, kv->cf[cf], key, klen, &vlen, &err);
    if (err != NULL)
        return kv__rdb_fail(errmsg, err, "read");
    if (v == NULL)
        return CMN_ENOTFOUND;
    msgpack_unpacked u;
    rv = kv_mp_unpack(v, vlen, &u, errmsg);
    if (rv == 0) {
        rv = fn(&u.data, out, errmsg);
        msgpack_unpacked_destroy(&u);
    }
    rocksdb_free(v);
    if (rv != 0)
        cmn_errctx(errmsg, "storage: corrupt %s record", kv__cf_names[cf]);
    return rv;
}

int kv__unpack_cert(const msgpack_object *o, void *out, char *errmsg)
{
    return kv_cert_unpack(o, out, errmsg);
}
int kv__unpack_node(const msgpack_object *o, void *out, char *errmsg)
{
    return kv_node_unpack(o, out, errmsg);
}
int kv__unpack_ca(const msgpack_object *o, void *out, char *errmsg)
{
    return kv_issuing_ca_unpack(o, out, errmsg);
}
static int unpack_revoked(const msgpack_object *o, void *out, char *errmsg)
{
    return kv_revoked_unpack(o, out, errmsg);
}
int kv__unpack_replacement(const msgpack_object *o, void *out, char *errmsg)
{
    return kv_replacement_unpack(o, out, errmsg);
}
int kv__unpack_twofa(const msgpack_object *o, void *out, char *errmsg)
{
    return kv_twofa_unpack(o, out, errmsg);
}

/* ---- queries ---- */

int kv_cert_get(struct kv *kv, const char *thumbprint, struct kv_cert *out, char *errmsg)
{
    char key[KV_THUMB_LEN + 1];
    if (kv_thumb_norm(thumbprint, key) != 0)
        return cmn_fail(errmsg, CMN_ENOTFOUND, "not a thumbprint");
    return kv__get_record(kv, CF_CERTS, key, KV_THUMB_LEN, kv__unpack_cert, out, errmsg);
}

int kv_twofa_get(struct kv *kv, const char *thumbprint, struct kv_twofa *out, char *errmsg)
{
    char key[KV_THUMB_LEN + 1];
    memset(out, 0, sizeof *out);
    if (kv_thumb_norm(thumbprint, key) != 0)
        return cmn_fail(errmsg, CMN_ENOTFOUND, "not a thumbprint");
    return kv__get_record(kv, CF_TWOFA, key, KV_THUMB_LEN, kv__unpack_twofa, out, errmsg);
}

int kv_cert_by_serial(struct kv *kv, const char *serial, struct kv_cert *out, char *errmsg)
{
    char key[KV_SERIAL_MAX + 1];
    size_t n = strlen(serial);
    if (n == 0 || n > KV_SERIAL_MAX || !cmn_is_hex(serial, n))
        return CMN_ENOTFOUND;
    for (size_t i = 0; i <= n; i++)
        key[i] = (char)(serial[i] >= 'a' && serial[i] <= 'f' ? serial[i] - 32 : serial[i]);
    int rv = read_fault(kv, errmsg);
    if (rv != 0)
        return rv;
    char *err = NULL;
    size_t vlen = 0;
    char *v = rocksdb_get_cf(kv->db, kv->ropts, kv->cf[CF_BY_SERIAL], key, n, &vlen, &err);
    if (err != NULL)
        return kv__rdb_fail(errmsg, err, "read");
    if (v == NULL)
        return CMN_ENOTFOUND;
    char tp[KV_THUMB_LEN + 1] = "";
    if (vlen == KV_THUMB_LEN)
        memcpy(tp, v, KV_THUMB_LEN);
    rocksdb_free(v);
    return kv__get_record(kv, CF_CERTS, tp, KV_THUMB_LEN, kv__unpack_cert, out, errmsg);
}

int kv__scan(struct kv *kv, const rocksdb_snapshot_t *snap, int cf, const char *prefix, size_t plen,
             kv__scan_fn fn, void *ctx, char *errmsg)
{
    int rv = read_fault(kv, errmsg);
    if (rv != 0)
        return rv;
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    if (snap)
        rocksdb_readoptions_set_snapshot(ro, snap);
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(kv->db, ro, kv->cf[cf]);
    if (plen)
        rocksdb_iter_seek(it, prefix, plen);
    else
        rocksdb_iter_seek_to_first(it);
    for (; rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t klen, vlen;
        const char *k = rocksdb_iter_key(it, &klen);
        const char *v = rocksdb_iter_value(it, &vlen);
        if (klen < plen || memcmp(k, prefix, plen) != 0)
            break;
        rv = fn(ctx, k, klen, v, vlen, errmsg);
        if (rv != 0)
            break;
    }
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    rocksdb_iter_destroy(it);
    rocksdb_readoptions_destroy(ro);
    if (err != NULL)
        return kv__rdb_fail(errmsg, err, "scan");
    return rv > 0 ? 0 : rv;
}

/* A growable array of records. */
struct vec {
    void *items;
    size_t n, cap, size;
};

static void *vec_push(struct vec *v)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 8;
        void *p = realloc(v->items, cap * v->size);
        if (p == NULL)
            return NULL;
        v->items = p;
        v->cap = cap;
    }
    void *slot = (char *)v->items + v->n * v->size;
    memset(slot, 0, v->size);
    return slot;
}

struct pkph_scan {
    struct kv *kv;
    size_t plen;
    struct vec certs;
};

static int pkph_item(void *ctx, const char *k, size_t klen, const char *v, size_t vlen,
                     char *errmsg)
{
    struct pkph_scan *s = ctx;
    if (klen != s->plen + 1 + KV_THUMB_LEN || k[s->plen] != '\0')
        return 0; /* another hash that shares the prefix */
    struct kv_cert *c = vec_push(&s->certs);
    if (c == NULL)
        return CMN_ENOMEM;
    int rv =
        kv__get_record(s->kv, CF_CERTS, k + s->plen + 1, KV_THUMB_LEN, kv__unpack_cert, c, errmsg);
    if (rv == CMN_ENOTFOUND)
        return 0;
    if (rv == 0)
        s->certs.n++;
    return rv;
}

static int cmp_newest_first(const void *a, const void *b)
{
    const struct kv_cert *x = a, *y = b;
    if (x->not_after != y->not_after)
        return x->not_after > y->not_after ? -1 : 1;
    return strcmp(x->thumbprint, y->thumbprint);
}

int kv_cert_by_pkph(struct kv *kv, const char *pkph, struct kv_cert **out, size_t *n, char *errmsg)
{
    struct pkph_scan s = {
        .kv = kv, .plen = strlen(pkph), .certs = {.size = sizeof(struct kv_cert)}};
    *out = NULL;
    *n = 0;
    if (s.plen == 0 || s.plen > KV_PKPH_MAX)
        return 0;
    int rv = kv__scan(kv, NULL, CF_BY_PKPH, pkph, s.plen, pkph_item, &s, errmsg);
    if (rv != 0) {
        kv_cert_free_array(s.certs.items, s.certs.n);
        return rv;
    }
    if (s.certs.n > 1)
        qsort(s.certs.items, s.certs.n, sizeof(struct kv_cert), cmp_newest_first);
    *out = s.certs.items;
    *n = s.certs.n;
    return 0;
}

struct list_scan {
    bool with_secondaries;
    size_t skip, limit;
    struct vec certs;
};

static int list_item(void *ctx, const char *k, size_t klen, const char *v, size_t vlen,
                     char *errmsg)
{
    struct list_scan *s = ctx;
    if (s->certs.n >= s->limit)
        return 1;
    struct kv_cert *c = vec_push(&s->certs);
    if (c == NULL)
        return CMN_ENOMEM;
    msgpack_unpacked u;
    TRY(kv_mp_unpack(v, vlen, &u, errmsg));
    int rv = kv_cert_unpack(&u.data, c, errmsg);
    msgpack_unpacked_destroy(&u);
    if (rv != 0)
        return rv;
    if (!s->with_secondaries && c->primary[0] != '\0') {
        kv_cert_fini(c);
        return 0;
    }
    if (s->skip > 0) {
        s->skip--;
        kv_cert_fini(c);
        return 0;
    }
    s->certs.n++;
    return 0;
}

int kv_cert_list(struct kv *kv, bool with_secondaries, size_t start, size_t page_size,
                 struct kv_cert **out, size_t *n, char *errmsg)
{
    struct list_scan s = {.with_secondaries = with_secondaries,
                          .skip = start,
                          .limit = page_size,
                          .certs = {.size = sizeof(struct kv_cert)}};
    int rv = kv__scan(kv, NULL, CF_CERTS, "", 0, list_item, &s, errmsg);
    if (rv != 0) {
        kv_cert_free_array(s.certs.items, s.certs.n);
        *out = NULL;
        *n = 0;
        return rv;
    }
    *out = s.certs.items;
    *n = s.certs.n;
    return 0;
}

static int count_item(void *ctx, const char *k, size_t klen, const char *v, size_t vlen,
                      char *errmsg)
{
    (*(size_t *)ctx)++;
    return 0;
}

int kv_cert_count(struct kv *kv, size_t *n, char *errmsg)
{
    *n = 0;
    return kv__scan(kv, NULL, CF_CERTS, "", 0, count_item, n, errmsg);
}

int kv_snap_cert_count(struct kv_snap *s, size_t *n, char *errmsg)
{
    *n = 0;
    return kv__scan(s->kv, s->snap, CF_CERTS, "", 0, count_item, n, errmsg);
}

struct each_scan {
    int (*fn)(void *ctx, const struct kv_cert *c);
    void *ctx;
};

static int each_item(void *ctx, const char *k, size_t klen, const char *v, size_t vlen,
                     char *errmsg)
{
    const struct each_scan *s = ctx;
    msgpack_unpacked u;
    struct kv_cert c;
    TRY(kv_mp_unpack(v, vlen, &u, errmsg));
    int rv = kv_cert_unpack(&u.data, &c, errmsg);
    msgpack_unpacked_destroy(&u);
    if (rv != 0)
        return rv;
    rv = s->fn(s->ctx, &c);
    kv_cert_fini(&c);
    return rv;
}

int kv_snap_cert_each(struct kv_snap *s, int (*fn)(void *ctx, const struct kv_cert *c), void *ctx,
                      char *errmsg)
{
    struct each_scan e = {fn, ctx};
    return kv__scan(s->kv, s->snap, CF_CERTS, "", 0, each_item, &e, errmsg);
}

/* Decodes every value of a column family into a vec of records of `size` bytes. */
struct all_scan {
    kv__unpack_fn fn;
    struct vec items;
};

static int all_item(void *ctx, const char *k, size_t klen, const char *v, size_t vlen, char *errmsg)
{
    struct all_scan *s = ctx;
    void *slot = vec_push(&s->items);
    if (slot == NULL)
        return CMN_ENOMEM;
    msgpack_unpacked u;
    TRY(kv_mp_unpack(v, vlen, &u, errmsg));
    int rv = s->fn(&u.data, slot, errmsg);
    msgpack_unpacked_destroy(&u);
    if (rv == 0)
        s->items.n++;
    return rv;
}

static int all_records(struct kv *kv, int cf, kv__unpack_fn fn, size_t size, void **out, size_t *n,
                       void (*fini)(void *), char *errmsg)
{
    struct all_scan s = {.fn = fn, .items = {.size = size}};
    int rv = kv__scan(kv, NULL, cf, "", 0, all_item, &s, errmsg);
    if (rv != 0) {
        for (size_t i = 0; fini && i < s.items.n; i++)
            fini((char *)s.items.items + i * size);
        free(s.items.items);
        s.items.items = NULL;
        s.items.n = 0;
    }
    *out = s.items.items;
    *n = s.items.n;
    return rv;
}

static void node_fini_v(void *p)
{
    kv_node_fini(p);
}

int kv_revoked_list(struct kv *kv, struct kv_revoked **out, size_t *n, char *errmsg)
{
    void *items;
    int rv = all_records(kv, CF_REVOKED, unpack_revoked, sizeof **out, &items, n, NULL, errmsg);
    *out = items;
    return rv;
}

int kv_revoked_get(struct kv *kv, const char *serial, struct kv_revoked *out, char *errmsg)
{
    char key[KV_SERIAL_MAX + 1];
    size_t n = strlen(serial);
    if (n == 0 || n > KV_SERIAL_MAX || !cmn_is_hex(serial, n))
        return CMN_ENOTFOUND;
    for (size_t i = 0; i <= n; i++)
        key[i] = (char)(serial[i] >= 'a' && serial[i] <= 'f' ? serial[i] - 32 : serial[i]);
    return kv__get_record(kv, CF_REVOKED, key, n, unpack_revoked, out, errmsg);
}

int kv_node_list(struct kv *kv, struct kv_node **out, size_t *n, char *errmsg)
{
    void *items;
    int rv =
        all_records(kv, CF_NODES, kv__unpack_node, sizeof **out, &items, n, node_fini_v, errmsg);
    *out = items;
    return rv;
}

void kv_node_free_array(struct kv_node *nodes, size_t n)
{
    for (size_t i = 0; i < n; i++)
        kv_node_fini(&nodes[i]);
    free(nodes);
}

int kv_issuing_ca_get(struct kv *kv, struct kv_issuing_ca *out, char *errmsg)
{
    return kv__get_record(kv, CF_CA, "issuing", 7, kv__unpack_ca, out, errmsg);
}

int kv_crl_state_get(struct kv *kv, struct kv_crl_state *out, char *errmsg)
{
    char *err = NULL;
    size_t vlen = 0;
    char *v =
        rocksdb_get_cf(kv->db, kv->ropts, kv->cf[CF_META], META_CRL, strlen(META_CRL), &vlen, &err);
    if (err != NULL)
        return kv__rdb_fail(errmsg, err, "read the CRL state");
    int rv = 0;
    if (v == NULL)
        rv = cmn_fail(errmsg, CMN_ENOTFOUND, "no CRL yet: the issuing CA is not committed");
    else if (vlen != 16)
        rv = cmn_fail(errmsg, CMN_EMALFORMED, "the CRL state is %zu bytes, not 16", vlen);
    else {
        out->index = cmn_be64_get((const uint8_t *)v);
        out->time_ms = (int64_t)cmn_be64_get((const uint8_t *)v + 8);
    }
    rocksdb_free(v);
    return rv;
}

int kv_replacement_get(struct kv *kv, struct kv_replacement *out, char *errmsg)
{
    return kv__get_record(kv, CF_META, META_REPLACEMENT, strlen(META_REPLACEMENT),
                          kv__unpack_replacement, out, errmsg);
}

struct audit_scan {
    size_t limit;
    struct vec items;
};

static int audit_item(void *ctx, const char *k, size_t klen, const char *v, size_t vlen,
                      char *errmsg)
{
    struct audit_scan *s = ctx;
    if (s->items.n >= s->limit)
        return 1;
    struct kv_audit *a = vec_push(&s->items);
    if (a == NULL)
        return CMN_ENOMEM;
    msgpack_unpacked u;
    TRY(kv_mp_unpack(v, vlen, &u, errmsg));
    int rv = kv_audit_unpack(&u.data, a, errmsg);
    msgpack_unpacked_destroy(&u);
    if (rv == 0)
        s->items.n++;
    return rv;
}

int kv_audit_page(struct kv *kv, uint64_t after, size_t limit, struct kv_audit **out, size_t *n,
                  char *errmsg)
{
    struct audit_scan s = {.limit = limit, .items = {.size = sizeof(struct kv_audit)}};
    *out = NULL;
    *n = 0;
    if (after == UINT64_MAX || limit == 0)
        return 0;
    /* Seek by scanning from the first key >= after+1: encode it as the scan start. */
    uint8_t from[8];
    cmn_be64_put(from, after + 1);
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(kv->db, kv->ropts, kv->cf[CF_AUDIT]);
    int rv = 0;
    for (rocksdb_iter_seek(it, (const char *)from, 8); rocksdb_iter_valid(it);
         rocksdb_iter_next(it)) {
        size_t klen, vlen;
        const char *k = rocksdb_iter_key(it, &klen);
        const char *v = rocksdb_iter_value(it, &vlen);
        rv = audit_item(&s, k, klen, v, vlen, errmsg);
        if (rv != 0)
            break;
    }
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    rocksdb_iter_destroy(it);
    if (err != NULL && rv <= 0)
        rv = kv__rdb_fail(errmsg, err, "scan audit");
    else
        rocksdb_free(err);
    if (rv < 0) {
        kv_audit_free_array(s.items.items, s.items.n);
        return rv;
    }
    *out = s.items.items;
    *n = s.items.n;
    return 0;
}

void kv_audit_free_array(struct kv_audit *a, size_t n)
{
    for (size_t i = 0; i < n; i++)
        kv_audit_fini(&a[i]);
    free(a);
}
