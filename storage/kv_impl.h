/* Internals shared by storage/kv.c (store, queries, snapshots) and storage/apply.c. */
#ifndef CORVID_STORAGE_KV_IMPL_H
#define CORVID_STORAGE_KV_IMPL_H

#include <rocksdb/c.h>

#include "storage/kv.h"

/* Column families, in the fixed order used by hashes and snapshots. */
enum {
    CF_DEFAULT,
    CF_CERTS,     /* lower-case thumbprint -> certificate */
    CF_BY_PKPH,   /* pkph '\0' thumbprint -> "" */
    CF_BY_SERIAL, /* upper-case serial -> thumbprint */
    CF_NODES,     /* tag -> node */
    CF_REVOKED,   /* upper-case serial -> revoked */
    CF_CA,        /* "issuing" -> issuing CA */
    CF_AUDIT,     /* be64 index -> audit entry */
    CF_META,      /* "applied" -> be64; "replacement" -> replacement; "restoring" */
    CF_REQUESTS,  /* request id -> outcome */
    CF_TWOFA,     /* lower-case thumbprint -> two-factor state */
    CF_COUNT
};
extern const char *const kv__cf_names[CF_COUNT];

#define META_APPLIED     "applied"
#define META_REPLACEMENT "replacement"
#define META_RESTORING   "restoring"
#define META_CRL         "crl" /* be64 index, be64 time_ms: see kv_crl_state_get */
#define SAME_PKPH_KEEP   5

struct kv {
    rocksdb_t *db;
    rocksdb_options_t *opts;
    rocksdb_env_t *env;
    rocksdb_column_family_handle_t *cf[CF_COUNT];
    rocksdb_readoptions_t *ropts;
    rocksdb_writeoptions_t *wopts;
    uint64_t applied;
    unsigned fail_write_at; /* fault injection: countdown to a failing write */
    unsigned fail_read_at;  /* fault injection: countdown to a failing read */
    char write_failed[256]; /* RocksDB's error of a failed write ("" if none): no more writes */
    char *dir;              /* the store's folder, for its free space */
};

struct kv_snap {
    struct kv *kv;
    const rocksdb_snapshot_t *snap;
    uint64_t index;
};

typedef int (*kv__unpack_fn)(const msgpack_object *o, void *out, char *errmsg);
typedef int (*kv__scan_fn)(void *ctx, const char *k, size_t klen, const char *v, size_t vlen,
                           char *errmsg);

/* Turns a RocksDB error string (freed here) into CMN_EIO with context. */
int kv__rdb_fail(char *errmsg, char *err, const char *what);
/* Writes a batch (or fails on purpose under kv_fail_write_at). */
int kv__write(struct kv *kv, rocksdb_writebatch_t *b, char *errmsg);
/* Reads and decodes one record. CMN_ENOTFOUND when absent. */
int kv__get_record(struct kv *kv, int cf, const char *key, size_t klen, kv__unpack_fn fn, void *out,
                   char *errmsg);
/* Calls fn for each key of cf starting with prefix (all keys when plen is 0), through snap when
 * given; fn returns 1 to stop early, a negative code to fail. */
int kv__scan(struct kv *kv, const rocksdb_snapshot_t *snap, int cf, const char *prefix, size_t plen,
             kv__scan_fn fn, void *ctx, char *errmsg);
int kv__unpack_cert(const msgpack_object *o, void *out, char *errmsg);
int kv__unpack_ca(const msgpack_object *o, void *out, char *errmsg);
int kv__unpack_node(const msgpack_object *o, void *out, char *errmsg);
int kv__unpack_replacement(const msgpack_object *o, void *out, char *errmsg);
int kv__unpack_twofa(const msgpack_object *o, void *out, char *errmsg);

#endif
