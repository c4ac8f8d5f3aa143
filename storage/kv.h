/* The replicated trust state in RocksDB: apply committed commands (one write batch each, with
 * the applied index), answer the node's queries, take and restore snapshots. No libuv: the
 * caller decides which thread runs what. One writer at a time; queries may run concurrently
 * with it (RocksDB is thread-safe). */
#ifndef CORVID_STORAGE_KV_H
#define CORVID_STORAGE_KV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"
#include "storage/cmd.h"
#include "storage/model.h"

struct kv;

/* Why a command was rejected, so that callers can answer with the right status. */
enum kv_reject {
    KV_REJ_NONE = 0,
    KV_REJ_INVALID = 1,   /* malformed or invalid input */
    KV_REJ_NOTFOUND = 2,  /* the target does not exist */
    KV_REJ_FORBIDDEN = 3, /* the actor's clearance does not allow it */
    KV_REJ_CONFLICT = 4,  /* the current state forbids it (revoked, already set, in use) */
    KV_REJ_LIMIT = 5,     /* too many attempts: reason says how long to wait */
};

/* What an applied entry changed (kv_result.effects), so that no layer decodes it again. */
enum kv_effect {
    KV_FX_CERTS = 1u << 0,   /* registrations were added, edited or removed */
    KV_FX_REMOVED = 1u << 1, /* some are gone: kv_result.removed lists them */
    KV_FX_CRL = 1u << 2,     /* the CRL's content or number changed */
    KV_FX_CA = 1u << 3,      /* the issuing CA (or the seal of its key) changed */
    KV_FX_NODES = 1u << 4,   /* node records changed */
    KV_FX_2FA = 1u << 5,     /* a two-factor session began or ended */
    KV_FX_REPLACE = 1u << 6, /* the server-certificate replacement began, moved or ended */
};
#define KV_FX_TRUST (KV_FX_CERTS | KV_FX_REMOVED | KV_FX_CRL | KV_FX_CA | KV_FX_2FA)

/* The outcome of applying one entry, handed back to the proposer. */
struct kv_result {
    uint64_t index;
    bool skipped;   /* index at or below the applied index: nothing was done */
    bool duplicate; /* its request id was applied before: the earlier outcome is reported */
    bool rejected;  /* invalid for the current state; reason says why; nothing changed */
    int code;       /* enum kv_reject */
    char reason[CMN_ERRMSG_SIZE];
    int type;         /* the entry's enum kv_cmd_type; 0 when it did not decode */
    unsigned effects; /* enum kv_effect: what this entry committed (0 when skipped, a
                       * duplicate or rejected) */
    char (*removed)[KV_THUMB_LEN + 1]; /* registrations removed (lower-case), owned */
    size_t n_removed;
};
/* Frees what a result owns, and zeroes it. */
void kv_result_fini(struct kv_result *res);

/* Opens (creating if needed) the store in directory `dir` (created 0700). */
int kv_open(const char *dir, struct kv **out, char *errmsg) CMN_MUST_CHECK;
void kv_close(struct kv *kv);

uint64_t kv_applied_index(const struct kv *kv);

/* Applies the committed entry at `index`. Returns 0 whenever the entry was dealt with, including
 * a malformed or rejected command (see res); an error only when the store could not be written
 * (CMN_EIO) or memory ran out (CMN_ENOMEM), in which case nothing changed and the same index
 * may be applied again. After
 * RocksDB itself failed a write (a full disk), every later write fails at once without reaching
 * it, until the store is opened again (kv_close then skips its flush). A write that could make
 * RocksDB meet ENOSPC is not tried (CMN_ENOSPACE): less free space on the store's filesystem
 * than its memtables (what their flush writes), the batch and KV_DISK_FLOOR. res is
 * overwritten: release what it owns (removed) with kv_result_fini before the next call. */
int kv_apply(struct kv *kv, uint64_t index, const void *entry, size_t len, struct kv_result *res,
             char *errmsg) CMN_MUST_CHECK;
#define KV_DISK_FLOOR (4u << 20)

/* The memory of the memtables (RocksDB's cur-size-all-mem-tables, every column family): at
 * most what their flush writes to disk. */
uint64_t kv_memtable_bytes(struct kv *kv);

/* ---- queries (answers are the caller's to free) ---- */

/* By thumbprint in any case. CMN_ENOTFOUND when not registered. */
int kv_cert_get(struct kv *kv, const char *thumbprint, struct kv_cert *out,
                char *errmsg) CMN_MUST_CHECK;
/* Every registration with this public-key pinning hash, newest NotAfter first. */
int kv_cert_by_pkph(struct kv *kv, const char *pkph, struct kv_cert **out, size_t *n,
                    char *errmsg) CMN_MUST_CHECK;
/* By serial (hex, any case). CMN_ENOTFOUND when none. */
int kv_cert_by_serial(struct kv *kv, const char *serial, struct kv_cert *out,
                      char *errmsg) CMN_MUST_CHECK;
/* The two-factor state of a certificate (thumbprint in any case). CMN_ENOTFOUND when it has
 * none (out zeroed). */
int kv_twofa_get(struct kv *kv, const char *thumbprint, struct kv_twofa *out,
                 char *errmsg) CMN_MUST_CHECK;
/* A page of registrations ordered by thumbprint: primaries only unless with_secondaries. */
int kv_cert_list(struct kv *kv, bool with_secondaries, size_t start, size_t page_size,
                 struct kv_cert **out, size_t *n, char *errmsg) CMN_MUST_CHECK;
/* Counts registrations (primaries and secondaries). */
int kv_cert_count(struct kv *kv, size_t *n, char *errmsg) CMN_MUST_CHECK;

int kv_revoked_list(struct kv *kv, struct kv_revoked **out, size_t *n, char *errmsg) CMN_MUST_CHECK;
int kv_revoked_get(struct kv *kv, const char *serial, struct kv_revoked *out,
                   char *errmsg) CMN_MUST_CHECK;

int kv_node_list(struct kv *kv, struct kv_node **out, size_t *n, char *errmsg) CMN_MUST_CHECK;
void kv_node_free_array(struct kv_node *nodes, size_t n);

/* CMN_ENOTFOUND before bootstrap committed one. */
int kv_issuing_ca_get(struct kv *kv, struct kv_issuing_ca *out, char *errmsg) CMN_MUST_CHECK;
/* The CRL the trust state defines, the same on every node: numbered by the index of the entry
 * that last changed the revoked serials or refreshed the CRL, issued at that entry's time.
 * CMN_ENOTFOUND before the issuing CA is committed. */
struct kv_crl_state {
    uint64_t index;
    int64_t time_ms;
};
int kv_crl_state_get(struct kv *kv, struct kv_crl_state *out, char *errmsg) CMN_MUST_CHECK;
/* CMN_ENOTFOUND when no server-certificate replacement is in progress. */
int kv_replacement_get(struct kv *kv, struct kv_replacement *out, char *errmsg) CMN_MUST_CHECK;

/* Audit entries with index > after, oldest first, at most limit. */
int kv_audit_page(struct kv *kv, uint64_t after, size_t limit, struct kv_audit **out, size_t *n,
                  char *errmsg) CMN_MUST_CHECK;
void kv_audit_free_array(struct kv_audit *a, size_t n);

/* SHA-256 over every record of every column family: equal for equal states. */
int kv_state_hash(struct kv *kv, uint8_t out[32], char *errmsg) CMN_MUST_CHECK;
/* The same over the trust state only: without the audit trail and request-id records, so it
 * stays the same across events that only add to the audit (a node restarting). */
int kv_trust_hash(struct kv *kv, uint8_t out[32], char *errmsg) CMN_MUST_CHECK;

/* ---- snapshots ---- */

/* A consistent point-in-time view: begin on the writer's thread (cheap), serialise anywhere,
 * end to release. */
struct kv_snap;
int kv_snap_begin(struct kv *kv, struct kv_snap **out, char *errmsg) CMN_MUST_CHECK;
uint64_t kv_snap_index(const struct kv_snap *s);
int kv_snap_serialize(struct kv_snap *s, struct cmn_buf *out, char *errmsg) CMN_MUST_CHECK;
void kv_snap_end(struct kv_snap *s);
/* kv_state_hash (or kv_trust_hash) and kv_cert_count of the view, from any thread. */
int kv_snap_hash(struct kv_snap *s, bool trust_only, uint8_t out[32], char *errmsg) CMN_MUST_CHECK;
int kv_snap_cert_count(struct kv_snap *s, size_t *n, char *errmsg) CMN_MUST_CHECK;
/* Calls fn for each registration of the view (c borrowed for the call), from any thread; fn
 * returns 0 to go on, 1 to stop, a negative code to fail. */
int kv_snap_cert_each(struct kv_snap *s, int (*fn)(void *ctx, const struct kv_cert *c), void *ctx,
                      char *errmsg) CMN_MUST_CHECK;

/* Replaces the whole state with a serialised snapshot. The buffer is checked completely before
 * anything is written. CMN_ESTALE (and nothing done) when the store is already at or past the
 * snapshot's index; CMN_EMALFORMED for a corrupt snapshot. */
int kv_restore(struct kv *kv, const void *p, size_t len, char *errmsg) CMN_MUST_CHECK;

/* Fault injection for tests: the nth write to RocksDB from now on fails (0 turns it off). */
void kv_fail_write_at(struct kv *kv, unsigned nth);
/* The same for reads (a record, a scan): the nth from now on fails with CMN_EIO. Returns the
 * countdown it replaces: 0 once the failure happened (or when none was set). */
unsigned kv_fail_read_at(struct kv *kv, unsigned nth);

#endif
