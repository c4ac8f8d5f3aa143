/* One node's Raft: FSM, bootstrap, proposals and their forwarding, membership, shutdown. */
#include "raft/rft.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <raft/uv.h>

#include "ca/ident.h"
#include "common/buf.h"
#include "common/env.h"
#include "common/log.h"
#include "raft/lease.h"
#include "raft/transport.h"
#include "storage/cmd.h"

#define TICK_MS           50
#define TRANSFER_WAIT_MS  3000
#define CATCH_UP_ROUND_MS 300000
/* canonical/raft's own snapshot threshold is kept out of the way; maybe_snapshot decides. */
#define SNAP_NEVER    (UINT_MAX / 2)
#define FWD_FRAME_MAX (KV_CMD_MAX + 64)
#define FWD_REQ       1  /* follower -> leader: a proposal */
#define FWD_RESP      2  /* leader -> follower: its outcome */
#define FWD_COMMITTED 3  /* leader -> follower: an announced entry is committed */
#define FWD_ACK       4  /* follower -> leader: the announcement was taken */
#define FWD_LEASE_REQ 5  /* follower -> leader: a read lease, please */
#define FWD_LEASE     6  /* leader -> follower: its answer, granted or not */
#define LEASE_RING    16 /* lease requests whose send time a follower remembers */
#define FWD_RETRY_MS  200

enum prop_state { P_QUEUED, P_APPLYING, P_FORWARDED, P_WAIT_APPLY, P_DONE };

struct fwd_peer;

struct prop {
    struct rft *r;
    uint8_t *entry;
    size_t len;
    rft_propose_cb cb; /* NULL for a proposal forwarded to us (origin set) */
    void *ctx;
    struct fwd_peer *origin; /* the follower that forwarded it, if any */
    uint64_t origin_seq;
    enum prop_state state;
    uint64_t deadline;
    uint64_t seq;        /* while forwarded by us */
    bool local;          /* applied through this node's raft_apply (as the leader) */
    bool unacked_logged; /* answered without some node's acknowledgement: logged */
    uint64_t done_ms;    /* lease clock when it was first found done */
    uint64_t retry_at;   /* forwarded and refused for a full disk: asked again from then */
    int refused;         /* that refusal's code (its message in errmsg), 0 if none */
    int status;
    struct kv_result res;
    char errmsg[CMN_ERRMSG_SIZE];
    struct raft_apply req;
    struct prop *next;
};

/* A follower's channel to us (we are, or were, the leader). */
struct fwd_peer {
    struct rft *r;
    struct rft_chan *ch;
    struct cmn_buf rx;
    uint64_t acked; /* the last announcement acknowledged */
    /* Every announcement above base went over this channel (UINT64_MAX: one could not be
     * sent, so it grants nothing); a lease is granted on it only to a node that applied base. */
    uint64_t base;
    uint64_t opened_ms; /* lease clock when accepted: no echo of ours on it is older */
    struct fwd_peer *next;
};

struct rft {
    uv_loop_t *loop;
    struct rft_config cfg;
    char tag[RFT_TAG_MAX];
    char address[256];
    char dir[1024];
    struct rft_member *bootstrap;
    raft_id id;
    struct raft raft;
    struct raft_io io;
    struct raft_uv_transport transport;
    struct raft_fsm fsm;
    bool raft_inited, started, closing, closed_raft;
    /* a write of the log or an apply failed (rft_failed): nothing more goes on */
    bool failed;
    char failed_msg[CMN_ERRMSG_SIZE];
    int (*io_append)(struct raft_io *io, struct raft_io_append *req,
                     const struct raft_entry entries[], unsigned n, raft_io_append_cb cb);
#ifdef CORVID_TEST_HOOKS
    int (*io_set_term)(struct raft_io *io, raft_term term);
    const char *fail_term_file; /* CORVID_TEST_FAIL_RAFT_TERM: while it exists, term writes fail */
    const char *fail_append_file; /* CORVID_TEST_FAIL_RAFT_APPEND: likewise, log writes */
#endif
    struct kv_result last_result;
    struct kv_snap *snap;
    int snap_rv;                     /* of the serialization thread */
    uint64_t log_bytes, log_entries; /* applied since the last snapshot */
    uint64_t last_snap_bytes;        /* size of the last snapshot taken or restored */
    bool snap_wanted;                /* canonical/raft's threshold lowered to take one now */
    struct cmn_buf snap_buf;
    struct raft_buffer snap_rbuf;
    /* leadership */
    bool ready;
    bool barrier_pending;
    struct raft_barrier barrier;
    /* canonical/raft tells followers about a new commit index only with the next entry or
     * heartbeat; a barrier right after a command commits carries it at once, so that a write
     * (a revocation above all) is applied on every node without waiting a heartbeat. */
    bool nudge_wanted, nudge_pending;
    struct raft_barrier nudge;
    /* proposals */
    struct prop *props;
    uint64_t next_seq;
    uv_timer_t tick;
    uv_timer_t kick;
    /* forwarding, follower side */
    struct rft_chan *fwd;
    raft_id fwd_leader;
    bool fwd_open;
    struct cmn_buf fwd_rx;
    uint64_t fwd_retry_at; /* the channel failed: reopen it on its own from then */
    bool fwd_bad; /* a committed callback failed: drop the channel once its frames are read */
    /* forwarding, leader side */
    struct fwd_peer *peers;
    uint64_t announced; /* the last index announced */
    /* read leases (see "read leases" below); times on lease_now()'s clock */
    uint64_t lease_ms;             /* cfg.election_ms */
    struct rft_lease_table leases; /* as a leader: what each node was granted and said */
    raft_term leading_term;        /* the term this node last noticed it leads */
    uint64_t became_leader_ms;     /* when it noticed */
    raft_term ready_term;          /* the term of the barrier that made it ready */
    uint64_t ready_applied;        /* what it had applied then: a lease needs as much */
    uint64_t lease_until;          /* as a follower: the lease granted to it */
    uint64_t lease_seq, lease_echo, lease_next_ms;
    struct lease_sent {
        uint64_t seq, sent_ms;
    } lease_sent[LEASE_RING];
    bool lease_was_held; /* for logging its transitions */
    /* membership */
    bool change_busy;
    struct raft_change change;
    raft_id change_id;
    bool change_promote;
    rft_change_cb change_cb;
    void *change_ctx;
    /* leadership handed over for a full disk */
    struct raft_transfer step_down;
    bool stepping_down;
    /* shutdown */
    struct raft_transfer transfer;
    bool transferring;
    void (*close_cb)(void *ctx);
    void *close_ctx;
    unsigned open_handles;
};

const char *rft_strerror(int code)
{
    switch (code) {
    case RAFT_NOTFOUND:
        return "not found";
    case RAFT_INVALID:
        return "invalid";
    case RAFT_UNAUTHORIZED:
        return "unauthorized";
    case RAFT_NOSPACE:
        return "no space left";
    case RAFT_TOOMANY:
        return "too many";
    default:
        return raft_strerror(code);
    }
}

static void rlog(struct rft *r, enum cmn_log_level level, const char *id, const char *fmt, ...)
    CMN_PRINTF(4, 5);
static void rlog(struct rft *r, enum cmn_log_level level, const char *id, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cmn_log(level, id, "%s", msg);
    (void)r;
}

static void kick(struct rft *r);
static void announce(struct rft *r, uint64_t index, const void *entry, size_t len);

/* Records the first failure that Raft cannot go on from (see rft_failed). */
static void fail(struct rft *r, const char *fmt, ...) CMN_PRINTF(2, 3);
static void fail(struct rft *r, const char *fmt, ...)
{
    if (r->failed)
        return;
    r->failed = true;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->failed_msg, sizeof r->failed_msg, fmt, ap);
    va_end(ap);
    rlog(r, CMN_LOG_ERROR, "RFT-FAIL", "%s", r->failed_msg);
    kick(r);
}

/* ---- I/O: canonical/raft's uv backend, with its write failures seen ---- */

struct append_req {
    struct raft_io_append req; /* given to the uv backend */
    struct raft_io_append *outer;
    raft_io_append_cb cb;
    struct rft *r;
};

static void append_cb(struct raft_io_append *req, int status)
{
    struct append_req *a = (struct append_req *)req;
    struct rft *r = a->r;
    struct raft_io_append *outer = a->outer;
    raft_io_append_cb cb = a->cb;
    free(a);
#ifdef CORVID_TEST_HOOKS
    if (status == 0 && r->fail_append_file && access(r->fail_append_file, F_OK) == 0) {
        /* As when no segment can be prepared (ENOSPC), only later than that: the entries are
         * on disk, which is a write that was not acknowledged, as before a crash. */
        snprintf(r->io.errmsg, sizeof r->io.errmsg,
                 "not enough space: injected failure (CORVID_TEST_FAIL_RAFT_APPEND)");
        status = RAFT_NOSPACE;
    }
#endif
    if (status != 0 && status != RAFT_CANCELED && !r->closing) {
        fail(r, "Raft could not write its log: %s (%s)", r->io.errmsg, rft_strerror(status));
        if (r->started && raft_state(&r->raft) == RAFT_LEADER) {
            /* See rft_failed: canonical/raft would crash on its way on. What is on disk is as
             * after a crash, which Raft is made for: the others elect a new leader. */
            if (r->cfg.fatal)
                r->cfg.fatal(r->cfg.cb_ctx, r->failed_msg);
            abort();
        }
    }
    cb(outer, status);
}

static int io_append(struct raft_io *io, struct raft_io_append *req,
                     const struct raft_entry entries[], unsigned n, raft_io_append_cb cb)
{
    struct rft *r = (struct rft *)((char *)io - offsetof(struct rft, io));
    struct append_req *a = calloc(1, sizeof *a);
    if (a == NULL)
        return RAFT_NOMEM;
    a->outer = req;
    a->cb = cb;
    a->r = r;
    int rv = r->io_append(io, &a->req, entries, n, append_cb);
    if (rv != 0) {
        free(a);
        fail(r, "Raft could not write its log: %s (%s)", io->errmsg, rft_strerror(rv));
    }
    return rv;
}

#ifdef CORVID_TEST_HOOKS
/* Test builds only: the cluster tests make canonical/raft itself turn Unavailable, through the
 * real path (a failed write of the term makes it give up), to check that the node fails
 * closed. */
static int io_set_term(struct raft_io *io, raft_term term)
{
    struct rft *r = (struct rft *)((char *)io - offsetof(struct rft, io));
    if (r->fail_term_file && access(r->fail_term_file, F_OK) == 0) {
        snprintf(io->errmsg, sizeof io->errmsg,
                 "persist term %llu: injected failure (CORVID_TEST_FAIL_RAFT_TERM)",
                 (unsigned long long)term);
        return RAFT_IOERR;
    }
    return r->io_set_term(io, term);
}
#endif

/* ---- FSM ---- */

/* The snapshot policy. canonical/raft counts entries only, and one entry may carry hundreds of
 * certificates, while its log is held in memory, reloaded at start and shipped whole to a
 * joining node. A snapshot is due once the entries applied since the last one reach
 * cfg.snapshot_threshold entries or cfg.snapshot_mb MiB, but waits until they hold a quarter of
 * the last snapshot's size: a snapshot copies the whole state, so a large state is not copied
 * for every few MiB of log (at most ~4 bytes of snapshot per byte of log). About an eighth of
 * cfg.snapshot_mb of log is kept behind it. */
static void maybe_snapshot(struct rft *r)
{
    bool due = r->log_entries >= r->cfg.snapshot_threshold ||
               r->log_bytes >= (uint64_t)r->cfg.snapshot_mb << 20;
    if (r->snap_wanted || !due || r->log_bytes < r->last_snap_bytes / 4)
        return;
    uint64_t avg = r->log_bytes / r->log_entries + 1;
    uint64_t trail = ((uint64_t)r->cfg.snapshot_mb << 17) / avg;
    trail = trail < 2 ? 2 : trail > r->cfg.snapshot_trailing ? r->cfg.snapshot_trailing : trail;
    r->snap_wanted = true;
    rlog(r, CMN_LOG_DEBUG, "RFT-SNAP",
         "%llu entries (%llu MiB) applied since the last snapshot: taking one, keeping %llu",
         (unsigned long long)r->log_entries, (unsigned long long)(r->log_bytes >> 20),
         (unsigned long long)trail);
    raft_set_snapshot_threshold(&r->raft, 1);
    raft_set_snapshot_trailing(&r->raft, (unsigned)trail);
}

static int fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
    struct rft *r = fsm->data;
    /* canonical/raft 0.15 advances last_applied after this returns. */
    uint64_t index = raft_last_applied(&r->raft) + 1;
    char err[CMN_ERRMSG_SIZE] = "";
    if (r->failed)
        return RAFT_IOERR;
    kv_result_fini(&r->last_result); /* the previous entry's */
    int rv = kv_apply(r->cfg.kv, index, buf->base, buf->len, &r->last_result, err);
    if (rv != 0) {
        /* Not retried, and not even waited on: after a failed write RocksDB's own threads may
         * abort the process (storage/kv.c). The entry is in the log: a restart applies it. */
        fail(r, "apply %llu failed: %s", (unsigned long long)index, err);
        if (r->cfg.fatal)
            r->cfg.fatal(r->cfg.cb_ctx, r->failed_msg);
        abort();
    }
    *result = &r->last_result; /* read synchronously by the proposer's callback, if any */
    r->log_bytes += buf->len;
    r->log_entries++;
    maybe_snapshot(r);
    if (r->ready)
        r->nudge_wanted = true;
    if (!r->last_result.skipped && r->cfg.applied)
        r->cfg.applied(r->cfg.cb_ctx, index, buf->base, buf->len, &r->last_result);
    if (r->ready && !r->last_result.skipped && !r->last_result.duplicate &&
        !r->last_result.rejected && r->cfg.announce &&
        r->cfg.announce(r->cfg.cb_ctx, &r->last_result))
        announce(r, index, buf->base, buf->len);
    kick(r); /* proposals waiting for this index */
    return 0;
}

static int fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    struct rft *r = fsm->data;
    if (r->snap != NULL)
        return RAFT_BUSY;
    char err[CMN_ERRMSG_SIZE] = "";
    if (kv_snap_begin(r->cfg.kv, &r->snap, err) != 0)
        return RAFT_IOERR;
    r->log_bytes = r->log_entries = 0;
    *bufs = NULL;
    *n_bufs = 0;
    return 0;
}

/* Serializes the view on a thread of the lowest CPU priority: copying a large state must not
 * starve the event loops (Raft heartbeats) of a busy machine. */
static void *serialize_thread(void *arg)
{
    struct rft *r = arg;
    CMN_IGNORE(setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 19));
    char err[CMN_ERRMSG_SIZE] = "";
    r->snap_rv = kv_snap_serialize(r->snap, &r->snap_buf, err);
    return NULL;
}

/* Runs in the libuv threadpool: only the RocksDB snapshot view is touched. */
static int fsm_snapshot_async(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    struct rft *r = fsm->data;
    cmn_buf_init(&r->snap_buf, false);
    pthread_t t;
    if (pthread_create(&t, NULL, serialize_thread, r) == 0)
        pthread_join(t, NULL);
    else
        serialize_thread(r); /* at the pool thread's own priority */
    if (r->snap_rv != 0)
        return RAFT_IOERR;
    r->snap_rbuf.base = r->snap_buf.data;
    r->snap_rbuf.len = r->snap_buf.len;
    *bufs = &r->snap_rbuf;
    *n_bufs = 1;
    return 0;
}

static int fsm_snapshot_finalize(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    struct rft *r = fsm->data;
    if (r->snap_buf.len)
        r->last_snap_bytes = r->snap_buf.len;
    cmn_buf_fini(&r->snap_buf);
    memset(&r->snap_rbuf, 0, sizeof r->snap_rbuf);
    kv_snap_end(r->snap);
    r->snap = NULL;
    if (r->snap_wanted) { /* the log behind it is truncated by now */
        r->snap_wanted = false;
        raft_set_snapshot_threshold(&r->raft, SNAP_NEVER);
    }
    *bufs = NULL;
    *n_bufs = 0;
    return 0;
}

static int fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
    struct rft *r = fsm->data;
    char err[CMN_ERRMSG_SIZE] = "";
    int rv = kv_restore(r->cfg.kv, buf->base, buf->len, err);
    if (rv == CMN_ESTALE) {
        r->last_snap_bytes = buf->len;
        rlog(r, CMN_LOG_DEBUG, "RFT-SNAP", "snapshot skipped: %s", err);
    } else if (rv == CMN_EIO || rv == CMN_ENOSPACE) {
        /* The store is part emptied, part restored (kv_open says so at the next start, and
         * Raft sends the snapshot again): it must not be served. */
        fail(r, "cannot restore snapshot: %s", err);
        if (r->cfg.fatal)
            r->cfg.fatal(r->cfg.cb_ctx, r->failed_msg);
        abort();
    } else if (rv != 0) {
        rlog(r, CMN_LOG_ERROR, "RFT-SNAP", "cannot restore snapshot: %s", err);
        return RAFT_MALFORMED;
    } else {
        r->log_bytes = r->log_entries = 0;
        r->last_snap_bytes = buf->len;
        rlog(r, CMN_LOG_INFO, "RFT-SNAP", "restored snapshot at index %llu",
             (unsigned long long)kv_applied_index(r->cfg.kv));
        if (r->cfg.applied)
            r->cfg.applied(r->cfg.cb_ctx, kv_applied_index(r->cfg.kv), NULL, 0, NULL);
    }
    raft_free(buf->base);
    kick(r);
    return 0;
}

/* ---- trust ---- */

static int transport_trust(void *ctx, X509 *cert, raft_id id, char *errmsg)
{
    struct rft *r = ctx;
    char want[8], got[CA_NODE_TAG_SIZE] = "";
    rft_id_to_tag(id, want);
    if (ca_node_tag(cert, got) != 0)
        got[0] = '\0';
    if (want[0] == '\0')
        return cmn_fail(errmsg, CMN_EDENIED, "invalid node id %llu", (unsigned long long)id);
    if (!ca_names_node(cert, want))
        return cmn_fail(errmsg, CMN_EDENIED, "its certificate names node '%s', not '%s'", got,
                        want);
    return r->cfg.trust(r->cfg.cb_ctx, cert, want, errmsg);
}

static void transport_log(void *ctx, int level, const char *msg)
{
    cmn_log((enum cmn_log_level)level, "RFT-PEER", "%s", msg);
    (void)ctx;
}

/* ---- proposals ---- */

static void prop_free(struct prop *p)
{
    free(p->entry);
    free(p);
}

static void prop_unlink(struct rft *r, struct prop *p)
{
    for (struct prop **pp = &r->props; *pp; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = p->next;
            return;
        }
    }
}

static void prop_finish(struct prop *p, int status, const char *fmt, ...) CMN_PRINTF(3, 4);
static void prop_finish(struct prop *p, int status, const char *fmt, ...)
{
    p->status = status;
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->errmsg, sizeof p->errmsg, fmt, ap);
        va_end(ap);
    }
    p->state = P_DONE;
    kick(p->r);
}

static void kick_cb(uv_timer_t *t);

static void kick(struct rft *r)
{
    if (!uv_is_closing((uv_handle_t *)&r->kick) && !uv_is_active((uv_handle_t *)&r->kick))
        uv_timer_start(&r->kick, kick_cb, 0, 0);
}

static uint64_t frame_put(uint8_t *hdr, uint32_t len)
{
    hdr[0] = (uint8_t)(len >> 24);
    hdr[1] = (uint8_t)(len >> 16);
    hdr[2] = (uint8_t)(len >> 8);
    hdr[3] = (uint8_t)len;
    return len;
}

/* Answers a follower: [u8 2][be64 seq][be32 status][be64 index][u8 flags][reason]. */
static void respond(struct prop *p)
{
    struct fwd_peer *peer = p->origin;
    if (peer == NULL)
        return; /* the follower went away; it will retry by request id */
    const char *reason = p->status == 0 ? p->res.reason : p->errmsg;
    size_t rlen = strnlen(reason, CMN_ERRMSG_SIZE - 1);
    uint8_t buf[4 + 1 + 8 + 4 + 8 + 1 + CMN_ERRMSG_SIZE];
    size_t n = 4;
    buf[n++] = FWD_RESP;
    cmn_be64_put(buf + n, p->origin_seq);
    n += 8;
    uint32_t st = (uint32_t)p->status;
    buf[n++] = (uint8_t)(st >> 24);
    buf[n++] = (uint8_t)(st >> 16);
    buf[n++] = (uint8_t)(st >> 8);
    buf[n++] = (uint8_t)st;
    cmn_be64_put(buf + n, p->res.index);
    n += 8;
    buf[n++] = (uint8_t)((p->res.rejected ? 1 : 0) | (p->res.duplicate ? 2 : 0) |
                         ((p->res.code & 15) << 4));
    memcpy(buf + n, reason, rlen);
    n += rlen;
    frame_put(buf, (uint32_t)(n - 4));
    if (rft_chan_write(peer->ch, buf, n) != 0)
        rlog(p->r, CMN_LOG_DEBUG, "RFT-FWD", "cannot answer a forwarded proposal");
}

static void apply_cb(struct raft_apply *req, int status, void *result)
{
    struct prop *p = req->data;
    struct rft *r = p->r;
    if (status == 0) {
        p->res = *(const struct kv_result *)result;
        p->res.removed = NULL; /* the next entry's apply frees it */
        p->res.n_removed = 0;
        p->local = true;
        prop_finish(p, 0, NULL);
        return;
    }
    if (status == RAFT_SHUTDOWN || r->closing) {
        prop_finish(p, CMN_EIO, "the node is shutting down");
        return;
    }
    /* Leadership lost: the entry may or may not commit. Propose again with the same request id:
     * the state machine applies it at most once. */
    p->state = P_QUEUED;
    kick(r);
}

static int copy_entry(struct prop *p, uint8_t **out)
{
    *out = raft_malloc(p->len);
    if (*out == NULL)
        return CMN_ENOMEM;
    memcpy(*out, p->entry, p->len);
    return 0;
}

static void dispatch_local(struct rft *r, struct prop *p)
{
    struct raft_buffer buf;
    uint8_t *copy;
    if (copy_entry(p, &copy) != 0) {
        prop_finish(p, CMN_ENOMEM, "out of memory");
        return;
    }
    buf.base = copy;
    buf.len = p->len;
    p->req.data = p;
    p->state = P_APPLYING;
    int rv = raft_apply(&r->raft, &p->req, &buf, 1, apply_cb);
    if (rv != 0) {
        raft_free(copy);
        p->state = P_QUEUED; /* not leader any more, or a transfer is running: retry */
    }
}

static void fwd_data(struct rft_chan *ch, const uint8_t *data, size_t len);
static void fwd_event(struct rft_chan *ch, int status);

static void requeue_forwarded(struct rft *r)
{
    for (struct prop *p = r->props; p; p = p->next)
        if (p->state == P_FORWARDED)
            p->state = P_QUEUED;
}

static void fwd_drop(struct rft *r)
{
    if (r->fwd) {
        rft_chan_close(r->fwd);
        r->fwd = NULL;
    }
    r->fwd_open = false;
    r->fwd_leader = 0;
    r->lease_echo = 0;
    cmn_buf_fini(&r->fwd_rx);
    requeue_forwarded(r);
}

/* Opens the channel to the leader (kept open: it also brings announcements); false while it
 * is not open yet. */
static bool fwd_connect(struct rft *r, raft_id leader, const char *address)
{
    if (r->fwd && r->fwd_leader != leader)
        fwd_drop(r);
    if (r->fwd == NULL) {
        r->fwd = rft_chan_open(&r->transport, leader, address, fwd_data, fwd_event, r);
        if (r->fwd == NULL)
            return false;
        r->fwd_leader = leader;
        r->fwd_open = false;
        r->lease_echo = 0;
        r->lease_next_ms = 0;
    }
    return r->fwd_open;
}

static void dispatch_forward(struct rft *r, struct prop *p, raft_id leader, const char *address)
{
    if (!fwd_connect(r, leader, address))
        return; /* sent once the channel is up */
    p->seq = ++r->next_seq;
    uint8_t hdr[4 + 1 + 8];
    frame_put(hdr, (uint32_t)(1 + 8 + p->len));
    hdr[4] = FWD_REQ;
    cmn_be64_put(hdr + 5, p->seq);
    if (rft_chan_write(r->fwd, hdr, sizeof hdr) != 0 ||
        rft_chan_write(r->fwd, p->entry, p->len) != 0) {
        fwd_drop(r);
        return;
    }
    p->state = P_FORWARDED;
}

static void complete(struct prop *p)
{
    struct rft *r = p->r;
    prop_unlink(r, p);
    if (p->origin)
        respond(p);
    else if (p->cb)
        p->cb(p->ctx, p->status, p->status == 0 ? &p->res : NULL, p->errmsg);
    prop_free(p);
}

static void check_leadership(struct rft *r);

static void nudge_cb(struct raft_barrier *req, int status)
{
    struct rft *r = req->data;
    r->nudge_pending = false;
    (void)status;
}

static void maybe_nudge(struct rft *r)
{
    if (!r->nudge_wanted || r->nudge_pending || !r->ready || r->closing || r->failed)
        return;
    r->nudge_wanted = false;
    r->nudge.data = r;
    if (raft_barrier(&r->raft, &r->nudge, nudge_cb) == 0)
        r->nudge_pending = true;
}

static bool leads(struct rft *r);
static uint64_t lease_now(void);
static void lease_ask(struct rft *r, raft_id leader);

/* Whether node id took announcement `index`: acknowledged it on a channel that carried it. */
static bool took(struct rft *r, raft_id id, uint64_t index)
{
    for (struct fwd_peer *peer = r->peers; peer; peer = peer->next)
        if (peer->ch->peer == id && peer->base < index && peer->acked >= index)
            return true;
    return false;
}

/* Whether the answer to p waits: a revocation (an announced entry) applied here as the leader
 * is answered only once no node can serve without it, by the read-lease rules (see "read
 * leases" below): every node granted a lease by us has taken it, reported it applied, or
 * seen its lease run out; and, when we became the leader lately, leases granted by earlier
 * leaders have run out. A duplicate (a retry) waits like its first answer did, though it is
 * not announced: its nodes report it applied with their next lease request. */
static bool held(struct rft *r, struct prop *p)
{
    if (!p->local || p->status != 0 || p->res.rejected || p->res.index == 0 ||
        r->cfg.announce == NULL || !r->cfg.announce(r->cfg.cb_ctx, &p->res))
        return false;
    uint64_t now = lease_now();
    if (p->done_ms == 0)
        p->done_ms = now;
    if (now < r->became_leader_ms + rft_lease_new_leader_ms(r->lease_ms))
        return true;
    bool wait = false;
    for (size_t i = 0; i < r->leases.n && !wait; i++) {
        const struct rft_lease_entry *e = &r->leases.e[i];
        if (e->id != r->id &&
            rft_lease_waits(e->granted_ms,
                            e->applied >= p->res.index || took(r, e->id, p->res.index), now,
                            r->lease_ms))
            wait = true;
    }
    if (wait || p->unacked_logged)
        return wait;
    p->unacked_logged = true;
    for (size_t i = 0; i < r->leases.n; i++) {
        const struct rft_lease_entry *e = &r->leases.e[i];
        uint64_t ends = e->granted_ms + rft_lease_hold_ms(r->lease_ms);
        if (e->id == r->id || e->granted_ms == 0 || ends <= p->done_ms ||
            e->applied >= p->res.index || took(r, e->id, p->res.index))
            continue;
        char tag[8] = "";
        rft_id_to_tag(e->id, tag);
        rlog(r, CMN_LOG_WARN, "RFT-ANNOUNCE",
             "node %s did not acknowledge entry %llu: answered once its read lease had run out "
             "(%llu ms after it was last granted one)",
             tag, (unsigned long long)p->res.index, (unsigned long long)(now - e->granted_ms));
    }
    return false;
}

static void pump(struct rft *r)
{
    if (!r->closing) {
        check_leadership(r);
        maybe_nudge(r);
    }
    uint64_t now = uv_now(r->loop);
    uint64_t applied = kv_applied_index(r->cfg.kv);
    raft_id leader = 0;
    const char *leader_addr = NULL;
    if (r->started && !r->closed_raft)
        raft_leader(&r->raft, &leader, &leader_addr);
    if (!r->closing && leader != 0 && leader != r->id && leader_addr &&
        (r->fwd == NULL || r->fwd_leader != leader) && now >= r->fwd_retry_at)
        fwd_connect(r, leader, leader_addr);
    if (!r->closing && leader != 0 && leader != r->id)
        lease_ask(r, leader);
    struct prop *p = r->props;
    while (p) {
        struct prop *next = p->next;
        if (r->closing && p->state != P_DONE && p->state != P_APPLYING) {
            prop_finish(p, CMN_EIO, "the node is shutting down");
        } else if (p->state == P_WAIT_APPLY && applied >= p->res.index) {
            prop_finish(p, 0, NULL);
        } else if (p->state == P_QUEUED && r->failed) {
            /* nothing is proposed any more: the node is stopping (rft_failed); a follower that
             * forwarded a proposal asks the next leader */
            if (p->origin)
                prop_finish(p, CMN_EBUSY, "not the leader");
            else if (now >= p->deadline)
                prop_finish(p, CMN_EIO, "Raft stopped on this node: %s", r->failed_msg);
        } else if (p->state == P_QUEUED) {
            char space[CMN_ERRMSG_SIZE] = "";
            if (p->origin) {
                /* forwarded to us: only a ready leader with room takes it, otherwise the
                 * follower asks again wherever the leader is now */
                if (!r->ready)
                    prop_finish(p, CMN_EBUSY, "not the leader");
                else if (r->cfg.space && r->cfg.space(r->cfg.cb_ctx, p->entry, p->len, space) != 0)
                    prop_finish(p, CMN_ENOSPACE, "%s", space);
                else
                    dispatch_local(r, p);
            } else if (now < p->retry_at) {
                /* the leader's disk was full: give it time to hand leadership over */
            } else if (r->ready) {
                dispatch_local(r, p);
            } else if (leader != 0 && leader != r->id && leader_addr) {
                dispatch_forward(r, p, leader, leader_addr);
            }
            if (p->state == P_QUEUED && now >= p->deadline) {
                if (p->refused)
                    prop_finish(p, p->refused, NULL); /* the leader's message is in errmsg */
                else
                    prop_finish(p, CMN_EBUSY,
                                "no leader: the cluster has no quorum (retry when a majority of "
                                "nodes is up)");
            }
        }
        p = next;
    }
    p = r->props;
    while (p) {
        struct prop *next = p->next;
        if (p->state == P_DONE && (r->closing || !held(r, p)))
            complete(p);
        p = next;
    }
}

static void kick_cb(uv_timer_t *t)
{
    pump(t->data);
}

static void tick_cb(uv_timer_t *t)
{
    pump(t->data);
}

int rft_propose(struct rft *r, const void *entry, size_t len, rft_propose_cb cb, void *ctx)
{
    if (r->closing)
        return CMN_EIO;
    struct kv_cmd cmd;
    char err[CMN_ERRMSG_SIZE];
    if (kv_cmd_decode_head(entry, len, &cmd, err) != 0)
        return CMN_EINVALID;
    bool has_rid = cmd.request_id != NULL && cmd.request_id[0] != '\0';
    kv_cmd_fini(&cmd);
    if (!has_rid)
        return CMN_EINVALID; /* retries after a lost leadership must be idempotent */
    struct prop *p = calloc(1, sizeof *p);
    if (p == NULL)
        return CMN_ENOMEM;
    p->entry = malloc(len);
    if (p->entry == NULL) {
        free(p);
        return CMN_ENOMEM;
    }
    memcpy(p->entry, entry, len);
    p->len = len;
    p->r = r;
    p->cb = cb;
    p->ctx = ctx;
    p->deadline = uv_now(r->loop) + r->cfg.propose_timeout_ms;
    p->next = r->props;
    r->props = p;
    kick(r);
    return 0;
}

/* ---- forwarding wire: follower side ---- */

static int parse_frames(struct cmn_buf *rx, const uint8_t *data, size_t len,
                        void (*fn)(void *ctx, const uint8_t *frame, size_t n), void *ctx)
{
    if (cmn_buf_append(rx, data, len) != 0)
        return CMN_ENOMEM;
    size_t off = 0;
    while (rx->len - off >= 4) {
        const uint8_t *h = rx->data + off;
        uint32_t n = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
        if (n == 0 || n > FWD_FRAME_MAX)
            return CMN_EMALFORMED;
        if (rx->len - off - 4 < n)
            break;
        fn(ctx, h + 4, n);
        off += 4 + n;
    }
    if (off) {
        memmove(rx->data, rx->data + off, rx->len - off);
        rx->len -= off;
    }
    return 0;
}

/* [u8 3][be64 index][entry]: run the committed callback, acknowledge with [u8 4][be64 index]. */
static void fwd_committed(struct rft *r, const uint8_t *f, size_t n)
{
    if (n < 1 + 8 + 1)
        return;
    uint64_t index = cmn_be64_get(f + 1);
    char err[CMN_ERRMSG_SIZE] = "";
    if (index > kv_applied_index(r->cfg.kv) && r->cfg.committed &&
        r->cfg.committed(r->cfg.cb_ctx, index, f + 9, n - 9, err) != 0) {
        /* Not in force here: no acknowledgement, no lease until it is applied (a new channel
         * grants only then), and the leader waits for the lease we had to run out. */
        rlog(r, CMN_LOG_WARN, "RFT-LEASE",
             "cannot take announced entry %llu (%s): dropping the read lease until it is applied",
             (unsigned long long)index, err);
        r->lease_until = 0;
        r->fwd_bad = true;
        return;
    }
    uint8_t ack[4 + 1 + 8];
    frame_put(ack, 1 + 8);
    ack[4] = FWD_ACK;
    cmn_be64_put(ack + 5, index);
    if (r->fwd && rft_chan_write(r->fwd, ack, sizeof ack) != 0)
        rlog(r, CMN_LOG_DEBUG, "RFT-FWD", "cannot acknowledge entry %llu",
             (unsigned long long)index);
}

/* [u8 6][be64 seq][be64 stamp][u8 granted]: the leader's answer to lease request seq. */
static void fwd_lease(struct rft *r, const uint8_t *f, size_t n)
{
    if (n != 1 + 8 + 8 + 1 || r->fwd_bad)
        return;
    uint64_t seq = cmn_be64_get(f + 1);
    bool first = r->lease_echo == 0;
    r->lease_echo = cmn_be64_get(f + 9);
    if (f[17] & 1) {
        const struct lease_sent *slot = &r->lease_sent[seq % LEASE_RING];
        if (slot->seq == seq) {
            uint64_t until = rft_lease_until(slot->sent_ms, r->lease_ms);
            if (until > r->lease_until)
                r->lease_until = until;
        }
    }
    if (first) { /* ask again at once, now with a stamp to echo: the leader counts us then */
        r->lease_next_ms = 0;
        kick(r);
    }
}

static void fwd_response(void *ctx, const uint8_t *f, size_t n)
{
    struct rft *r = ctx;
    if (n >= 1 && f[0] == FWD_COMMITTED) {
        if (!r->fwd_bad)
            fwd_committed(r, f, n);
        return;
    }
    if (n >= 1 && f[0] == FWD_LEASE) {
        fwd_lease(r, f, n);
        return;
    }
    if (n < 1 + 8 + 4 + 8 + 1 || f[0] != FWD_RESP)
        return;
    uint64_t seq = cmn_be64_get(f + 1);
    int32_t status =
        (int32_t)((uint32_t)f[9] << 24 | (uint32_t)f[10] << 16 | (uint32_t)f[11] << 8 | f[12]);
    uint64_t index = cmn_be64_get(f + 13);
    uint8_t flags = f[21];
    size_t rlen = n - 22;
    for (struct prop *p = r->props; p; p = p->next) {
        if (p->state != P_FORWARDED || p->seq != seq)
            continue;
        if (status == CMN_EBUSY) {
            p->state = P_QUEUED; /* that node is no longer the leader: find the new one */
            kick(r);
            return;
        }
        if (status == CMN_ENOSPACE) {
            /* The leader's disk is full and it hands leadership over: ask the next leader,
             * and answer with this refusal if none takes it in time. */
            p->state = P_QUEUED;
            p->refused = status;
            p->retry_at = uv_now(r->loop) + FWD_RETRY_MS;
            snprintf(p->errmsg, sizeof p->errmsg, "%.*s",
                     (int)(rlen < CMN_ERRMSG_SIZE - 1 ? rlen : CMN_ERRMSG_SIZE - 1), f + 22);
            rlog(r, CMN_LOG_DEBUG, "RFT-FWD", "the leader refused a proposal (%s): asking again",
                 p->errmsg);
            return;
        }
        if (status != 0) {
            prop_finish(p, status, "%.*s",
                        (int)(rlen < CMN_ERRMSG_SIZE - 1 ? rlen : CMN_ERRMSG_SIZE - 1), f + 22);
            return;
        }
        memset(&p->res, 0, sizeof p->res);
        p->res.index = index;
        p->res.rejected = flags & 1;
        p->res.duplicate = flags & 2;
        p->res.code = flags >> 4;
        snprintf(p->res.reason, sizeof p->res.reason, "%.*s", (int)(rlen < 255 ? rlen : 255),
                 f + 22);
        p->state = P_WAIT_APPLY; /* answer once this node has applied it too */
        kick(r);
        return;
    }
}

static void fwd_data(struct rft_chan *ch, const uint8_t *data, size_t len)
{
    struct rft *r = ch->data;
    if (parse_frames(&r->fwd_rx, data, len, fwd_response, r) != 0 || r->fwd_bad) {
        r->fwd_bad = false;
        r->fwd_retry_at = uv_now(r->loop) + FWD_RETRY_MS;
        fwd_drop(r);
    }
}

static void fwd_event(struct rft_chan *ch, int status)
{
    struct rft *r = ch->data;
    if (status == 0) {
        r->fwd_open = true;
        kick(r);
        return;
    }
    /* closed or failed: the channel is gone */
    r->fwd_retry_at = uv_now(r->loop) + FWD_RETRY_MS;
    r->fwd = NULL;
    r->fwd_open = false;
    r->fwd_leader = 0;
    r->lease_echo = 0;
    cmn_buf_fini(&r->fwd_rx);
    requeue_forwarded(r);
    kick(r);
}

/* ---- forwarding wire: leader side ---- */

/* Sends an announced entry to every follower channel (see rft_announce_fn). */
static void announce(struct rft *r, uint64_t index, const void *entry, size_t len)
{
    uint8_t hdr[4 + 1 + 8];
    frame_put(hdr, (uint32_t)(1 + 8 + len));
    hdr[4] = FWD_COMMITTED;
    cmn_be64_put(hdr + 5, index);
    r->announced = index;
    for (struct fwd_peer *peer = r->peers; peer; peer = peer->next) {
        if (rft_chan_write(peer->ch, hdr, sizeof hdr) != 0 ||
            rft_chan_write(peer->ch, entry, len) != 0)
            peer->base = UINT64_MAX; /* it missed one: never a lease over this channel */
    }
}

/* ---- read leases ----
 *
 * The promise: once a revocation's answer is given, no node answers from a trust state that
 * misses it. A node answers only while it holds a read lease (rft_lease_held; node/ answers
 * 503 NotReady otherwise), and the leader gives a revocation's answer only once every lease
 * that could let a node serve without it has run out. Times are each node's own
 * CLOCK_BOOTTIME in ms; no two clocks are compared, only spans: the one assumption is that a
 * span of d on one node's clock lasts at most d + RFT_LEASE_DRIFT_PCT% on another's
 * (rft_lease_hold_ms adds that, and a margin). Let L = the election timeout.
 *
 * Protocol, over the forwarding channel (frames on one channel are taken in order):
 * - A follower F, while raft_leader() names node N and its channel to N is open, sends
 *   FWD_LEASE_REQ(k, echo, applied) every L/4, noting its clock t_k first. echo is the stamp
 *   of N's last FWD_LEASE on this channel (0 on a new channel), applied its applied index.
 * - N answers FWD_LEASE(k, stamp, granted), stamp = N's clock just before it writes. N grants
 *   only while it is the ready leader of its current term (no transfer under way, not
 *   closing), F is a member, F's applied index covers both what N had applied when its
 *   barrier committed (ready_applied) and every announcement this channel did not carry
 *   (base), and N has heard from a majority of voters (itself counted) within L. "N heard
 *   from X at h" means X echoed a stamp h of ours on a channel opened before h: X then sent
 *   its request after h, while naming N as leader. A reception time would not do: a request
 *   delayed in the network says nothing about how recently X followed us.
 *   N records granted[F] = its clock after the request came (so after t_k), per Raft id, in
 *   a table that outlives channels.
 * - On grant(k), F serves until t_k + L on its clock. A leader serves while it is ready and
 *   heard from a majority within L (the same test as for a grant). Either is enough.
 *
 * Why an answered revocation R (index i, applied on leader N in term t) is never served:
 * (1) Leases granted by N: N answers once, for every F with granted[F], F acknowledged the
 *     announcement of i on a channel that carried it, or reported an applied index >= i, or
 *     N's clock passed granted[F] + hold. A lease F took from N ends at t_k + L on F's clock,
 *     at most granted[F] + hold on N's (t_k came before granted[F]). An announcement written
 *     before a grant on the same channel is taken before that grant; a channel that missed
 *     announcements carries no grant until F's applied index covers them (base).
 * (2) Leases granted by earlier leaders, and earlier leaders serving themselves: N holds
 *     revocation answers until E + 2 * hold, E = when it noticed it leads term t (no earlier
 *     than its election). Let M (term t0 < t) have granted at g, or served at g. Then a
 *     majority heard-from M within L before g, and N's electors are a majority: some X is in
 *     both (with single-server membership changes, as here, any two majorities meet). X
 *     echoed h >= g - L and sent that request at s > h naming M as leader, so in a term
 *     <= t0 < t. X voted for N in term t at v, and s < v: canonical/raft 0.15 grants no vote
 *     while it knows a leader (recv_request_vote.c, "local server has a leader -> reject"),
 *     and a follower's term moves otherwise only with AppendEntries or InstallSnapshot, which
 *     name their sender leader at once; after voting X names M again only for a term >= t,
 *     while M's term at g is t0 (terms only grow, and s < g). The one exception is a vote for
 *     a candidate that TimeoutNow started: X then keeps naming M, rejecting its heartbeats.
 *     Only M's raft_transfer sends TimeoutNow, only rft_close calls it, and M sets closing
 *     first and for good: M grants and serves nothing once it may have sent one.
 *     So h < s < v < E, g <= h + L on M's clock, and a lease from g ends by g + L on F's:
 *     on N's clock, before E + 2 * hold. If X is M itself, M left term t0 before voting.
 * (3) Leases granted by a later leader M (term > t), and M serving: R is in M's log (Raft's
 *     leader completeness), so applied by the time M's barrier commits, and M grants only to
 *     nodes that applied as much (ready_applied).
 * (4) A node that restarts holds no lease, and gets one only from a leader, as above.
 * The Raft-level assumption is Raft's own: a committed R is in every later leader's log
 * (0.15's counting bug, raft-stack.md section 0, is outside this argument).
 * The fast path stays: every connected node acknowledges at once, and a node that holds no
 * lease (cut off for longer than a lease, or never granted one) costs nothing. */

static uint64_t lease_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_BOOTTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000 + 1; /* never 0 */
}

/* Whether this node may grant leases and serve as the leader. */
static bool leads(struct rft *r)
{
    return r->started && !r->closed_raft && !r->closing && !r->transferring && r->ready &&
           raft_state(&r->raft) == RAFT_LEADER && r->raft.transfer == NULL &&
           r->raft.current_term == r->ready_term;
}

static bool is_member(struct rft *r, raft_id id)
{
    const struct raft_configuration *c = &r->raft.configuration;
    for (unsigned i = 0; i < c->n; i++)
        if (c->servers[i].id == id)
            return true;
    return false;
}

/* Whether a majority of the voters (this node counted if it is one) was heard within L. */
static bool leader_quorum(struct rft *r, uint64_t now)
{
    const struct raft_configuration *c = &r->raft.configuration;
    uint64_t heard[RFT_LEASE_TABLE_MAX];
    size_t n = 0;
    if (c->n > RFT_LEASE_TABLE_MAX)
        return false;
    for (unsigned i = 0; i < c->n; i++) {
        if (c->servers[i].role != RAFT_VOTER)
            continue;
        const struct rft_lease_entry *e = rft_lease_entry(&r->leases, c->servers[i].id, false);
        heard[n++] = c->servers[i].id == r->id ? now : e ? e->heard_ms : 0;
    }
    return rft_lease_quorum(heard, n, now, r->lease_ms);
}

/* Follower: a lease request to the leader raft_leader() names, every quarter lease. */
static void lease_ask(struct rft *r, raft_id leader)
{
    uint64_t now = lease_now();
    if (r->fwd == NULL || !r->fwd_open || r->fwd_leader != leader || r->fwd_bad ||
        now < r->lease_next_ms)
        return;
    uint64_t seq = ++r->lease_seq;
    uint8_t f[4 + 1 + 8 + 8 + 8];
    frame_put(f, 1 + 8 + 8 + 8);
    f[4] = FWD_LEASE_REQ;
    cmn_be64_put(f + 5, seq);
    cmn_be64_put(f + 13, r->lease_echo);
    cmn_be64_put(f + 21, kv_applied_index(r->cfg.kv));
    if (rft_chan_write(r->fwd, f, sizeof f) != 0) {
        fwd_drop(r);
        return;
    }
    r->lease_sent[seq % LEASE_RING].seq = seq;
    r->lease_sent[seq % LEASE_RING].sent_ms = now; /* read before the write: never late */
    r->lease_next_ms = now + (r->lease_ms / 4 ? r->lease_ms / 4 : 1);
}

/* Leader: answers lease request seq from the node on peer's channel. */
static void lease_answer(struct fwd_peer *peer, uint64_t seq, uint64_t echo, uint64_t applied)
{
    struct rft *r = peer->r;
    raft_id id = peer->ch->peer;
    uint64_t now = lease_now();
    struct rft_lease_entry *e = is_member(r, id) ? rft_lease_entry(&r->leases, id, true) : NULL;
    bool grant = false;
    if (e != NULL) {
        if (echo >= peer->opened_ms && echo <= now && echo > e->heard_ms)
            e->heard_ms = echo;
        if (applied > e->applied)
            e->applied = applied;
        grant = leads(r) && peer->base != UINT64_MAX && applied >= peer->base &&
                applied >= r->ready_applied && leader_quorum(r, now);
        if (grant)
            e->granted_ms = now; /* after F's t_k; before anything F can do with the grant */
    }
    uint8_t f[4 + 1 + 8 + 8 + 1];
    frame_put(f, 1 + 8 + 8 + 1);
    f[4] = FWD_LEASE;
    cmn_be64_put(f + 5, seq);
    cmn_be64_put(f + 13, lease_now());
    f[21] = grant ? 1 : 0;
    if (rft_chan_write(peer->ch, f, sizeof f) != 0)
        rlog(r, CMN_LOG_DEBUG, "RFT-LEASE", "cannot answer a lease request");
}

bool rft_lease_held(struct rft *r, char *why, size_t cap)
{
    uint64_t now = lease_now();
    bool leader = leads(r);
    bool held =
        !r->closing && ((leader && leader_quorum(r, now)) || rft_lease_valid(r->lease_until, now));
    if (!held && why != NULL && cap > 0)
        snprintf(why, cap,
                 leader ? "it leads but has not heard from a majority of the voters within %u ms"
                        : "it has not heard from a leader within %u ms (no read lease)",
                 (unsigned)r->lease_ms);
    if (held != r->lease_was_held && r->started && !r->closing) {
        r->lease_was_held = held;
        if (held)
            rlog(r, CMN_LOG_INFO, "RFT-LEASE", "node %s holds a read lease: serving", r->tag);
        else
            rlog(r, CMN_LOG_WARN, "RFT-LEASE",
                 "node %s holds no read lease (%s within %u ms): answering 503 NotReady", r->tag,
                 leader ? "no majority heard from" : "no grant from a leader",
                 (unsigned)r->lease_ms);
    }
    return held;
}

static void peer_request(void *ctx, const uint8_t *f, size_t n)
{
    struct fwd_peer *peer = ctx;
    struct rft *r = peer->r;
    if (n == 1 + 8 && f[0] == FWD_ACK) {
        uint64_t index = cmn_be64_get(f + 1);
        if (index > peer->acked)
            peer->acked = index;
        kick(r);
        return;
    }
    if (n == 1 + 8 + 8 + 8 && f[0] == FWD_LEASE_REQ) {
        lease_answer(peer, cmn_be64_get(f + 1), cmn_be64_get(f + 9), cmn_be64_get(f + 17));
        return;
    }
    if (n < 1 + 8 + 8 || f[0] != FWD_REQ)
        return;
    struct prop *p = calloc(1, sizeof *p);
    if (p == NULL)
        return;
    p->len = n - 9;
    p->entry = malloc(p->len);
    if (p->entry == NULL) {
        free(p);
        return;
    }
    memcpy(p->entry, f + 9, p->len);
    p->r = r;
    p->origin = peer;
    p->origin_seq = cmn_be64_get(f + 1);
    p->deadline = uv_now(r->loop) + r->cfg.propose_timeout_ms;
    struct kv_cmd cmd;
    if (kv_cmd_decode_head(p->entry, p->len, &cmd, NULL) != 0) {
        prop_finish(p, CMN_EINVALID, "not a valid command");
    } else {
        kv_cmd_fini(&cmd);
    }
    p->next = r->props;
    r->props = p;
    kick(r);
}

static void peer_free(struct fwd_peer *peer)
{
    struct rft *r = peer->r;
    for (struct prop *p = r->props; p; p = p->next)
        if (p->origin == peer)
            p->origin = NULL;
    for (struct fwd_peer **pp = &r->peers; *pp; pp = &(*pp)->next) {
        if (*pp == peer) {
            *pp = peer->next;
            break;
        }
    }
    cmn_buf_fini(&peer->rx);
    free(peer);
}

static void peer_data(struct rft_chan *ch, const uint8_t *data, size_t len)
{
    struct fwd_peer *peer = ch->data;
    if (parse_frames(&peer->rx, data, len, peer_request, peer) != 0) {
        rft_chan_close(ch);
        peer_free(peer);
    }
}

static void peer_event(struct rft_chan *ch, int status)
{
    if (status != 0)
        peer_free(ch->data);
}

static void forward_accept(void *ctx, struct rft_chan *ch)
{
    struct rft *r = ctx;
    struct fwd_peer *peer = calloc(1, sizeof *peer);
    if (peer == NULL) {
        rft_chan_close(ch);
        return;
    }
    peer->r = r;
    peer->ch = ch;
    peer->base = r->announced;
    peer->opened_ms = lease_now();
    peer->next = r->peers;
    r->peers = peer;
    ch->data = peer;
    ch->on_data = peer_data;
    ch->on_event = peer_event;
}

/* ---- leadership ---- */

static void barrier_cb(struct raft_barrier *req, int status)
{
    struct rft *r = req->data;
    r->barrier_pending = false;
    if (status != 0 || r->closing || raft_state(&r->raft) != RAFT_LEADER)
        return;
    r->ready = true;
    r->ready_term = r->raft.current_term;
    /* Everything committed before this barrier is applied: every revocation any earlier
     * leader answered for is in it. A lease goes only to a node that applied as much. */
    r->ready_applied = kv_applied_index(r->cfg.kv);
    rlog(r, CMN_LOG_INFO, "RFT-ELECT", "node %s leads term %llu", r->tag,
         (unsigned long long)r->raft.current_term);
    if (r->cfg.leader)
        r->cfg.leader(r->cfg.cb_ctx, true);
    kick(r);
}

static void check_leadership(struct rft *r)
{
    if (!r->started || r->closed_raft)
        return;
    int state = raft_state(&r->raft);
    if (state == RAFT_LEADER && r->raft.current_term != r->leading_term) {
        /* Noticed after canonical/raft made us leader, never before: the new-leader hold
         * (see "read leases") counts from a time no earlier than the election. */
        r->leading_term = r->raft.current_term;
        r->became_leader_ms = lease_now();
    }
    if (state != RAFT_LEADER || (r->ready && r->raft.current_term != r->ready_term)) {
        /* (or lost and won again between two looks: the new term needs its own barrier) */
        if (r->ready) {
            r->ready = false;
            rlog(r, CMN_LOG_INFO, "RFT-ELECT", "node %s is no longer the leader", r->tag);
            if (r->cfg.leader)
                r->cfg.leader(r->cfg.cb_ctx, false);
        }
        if (state != RAFT_LEADER)
            return;
    }
    if (r->ready || r->barrier_pending || r->failed)
        return;
    /* canonical/raft 0.15 appends no entry of the new term on election: without this barrier
     * a new leader could serve from, or count replicas of, entries of earlier terms. */
    r->barrier.data = r;
    if (raft_barrier(&r->raft, &r->barrier, barrier_cb) == 0)
        r->barrier_pending = true;
}

/* ---- lifecycle ---- */

int rft_new(uv_loop_t *loop, const struct rft_config *cfg, struct rft **out, char *errmsg)
{
    struct rft *r = calloc(1, sizeof *r);
    if (r == NULL)
        return CMN_ENOMEM;
    r->loop = loop;
    r->cfg = *cfg;
    if (!r->cfg.election_ms)
        r->cfg.election_ms = 1000;
    if (!r->cfg.heartbeat_ms)
        r->cfg.heartbeat_ms = 100;
    if (!r->cfg.snapshot_threshold)
        r->cfg.snapshot_threshold = 16384;
    if (!r->cfg.snapshot_trailing)
        r->cfg.snapshot_trailing = 8192;
    if (!r->cfg.snapshot_mb)
        r->cfg.snapshot_mb = 32;
    if (!r->cfg.propose_timeout_ms)
        r->cfg.propose_timeout_ms = 5000;
    r->lease_ms = r->cfg.election_ms;
    snprintf(r->tag, sizeof r->tag, "%s", cfg->tag);
    snprintf(r->address, sizeof r->address, "%s", cfg->address);
    snprintf(r->dir, sizeof r->dir, "%s", cfg->dir);
    r->id = rft_tag_to_id(cfg->tag);
    if (r->id == 0) {
        free(r);
        return cmn_fail(errmsg, CMN_EINVALID, "node tag '%s' must be 1 to 4 upper-case letters",
                        cfg->tag);
    }
    if (cfg->n_bootstrap) {
        r->bootstrap = calloc(cfg->n_bootstrap, sizeof *r->bootstrap);
        if (r->bootstrap == NULL) {
            free(r);
            return CMN_ENOMEM;
        }
        memcpy(r->bootstrap, cfg->bootstrap, cfg->n_bootstrap * sizeof *r->bootstrap);
        r->cfg.bootstrap = r->bootstrap;
    }
    uv_timer_init(loop, &r->tick);
    uv_timer_init(loop, &r->kick);
    r->tick.data = r->kick.data = r;
    r->open_handles = 2;
    *out = r;
    return 0;
}

int rft_start(struct rft *r, char *errmsg)
{
    if (cmn_mkdir_p(r->dir, 0700) != 0)
        return cmn_fail(errmsg, CMN_EIO, "cannot create %s: %s", r->dir, strerror(errno));
    struct rft_transport_config tc = {
        .loop = r->loop,
        .ctx = r->cfg.ssl_ctx,
        .trust = transport_trust,
        .forward_accept = forward_accept,
        .log = transport_log,
        .cb_ctx = r,
    };
    if (rft_transport_init(&r->transport, &tc) != 0)
        return CMN_ENOMEM;
    int rv = raft_uv_init(&r->io, r->loop, r->dir, &r->transport);
    if (rv != 0) {
        cmn_fail(errmsg, CMN_EIO, "raft: %s", r->io.errmsg);
        rft_transport_fini(&r->transport);
        return CMN_EIO;
    }
    r->io.version = 2; /* 0.15 says 1, which refuses an FSM with async snapshots */
    r->io_append = r->io.append;
    r->io.append = io_append;
#ifdef CORVID_TEST_HOOKS
    r->fail_append_file = getenv("CORVID_TEST_FAIL_RAFT_APPEND");
    if (r->fail_append_file && r->fail_append_file[0])
        rlog(r, CMN_LOG_WARN, "RFT-TEST", "test hook: log writes fail while %s exists",
             r->fail_append_file);
    r->fail_term_file = getenv("CORVID_TEST_FAIL_RAFT_TERM");
    if (r->fail_term_file && r->fail_term_file[0]) {
        r->io_set_term = r->io.set_term;
        r->io.set_term = io_set_term;
        rlog(r, CMN_LOG_WARN, "RFT-TEST", "test hook: term writes fail while %s exists",
             r->fail_term_file);
    }
#endif
    raft_uv_set_auto_recovery(&r->io, false); /* a corrupt log fails loudly, never truncates */
    r->fsm.version = 3;
    r->fsm.data = r;
    r->fsm.apply = fsm_apply;
    r->fsm.snapshot = fsm_snapshot;
    r->fsm.snapshot_async = fsm_snapshot_async;
    r->fsm.snapshot_finalize = fsm_snapshot_finalize;
    r->fsm.restore = fsm_restore;
    rv = raft_init(&r->raft, &r->io, &r->fsm, r->id, r->address);
    if (rv != 0) {
        cmn_fail(errmsg, CMN_EIO, "raft init: %s (%s)", raft_errmsg(&r->raft),
                 rv > 0 ? rft_strerror(rv) : "version mismatch");
        raft_uv_close(&r->io);
        rft_transport_fini(&r->transport);
        return CMN_EIO;
    }
    r->raft_inited = true;
    raft_set_election_timeout(&r->raft, r->cfg.election_ms);
    raft_set_heartbeat_timeout(&r->raft, r->cfg.heartbeat_ms);
    raft_set_snapshot_threshold(&r->raft, SNAP_NEVER); /* maybe_snapshot decides */
    raft_set_snapshot_trailing(&r->raft, r->cfg.snapshot_trailing);
    raft_set_pre_vote(&r->raft, true);
    /* A joining node first receives a snapshot (or the whole log) in one catch-up round; 0.15
     * gives up on a round after 5 s: too short for 100,000 certificates, and a snapshot of
     * 900,000 (570 MB) took 38 s to arrive and restore on a busy 2-CPU machine. An unreachable
     * node is refused before Raft is asked to add it. */
    raft_set_max_catch_up_round_duration(&r->raft, CATCH_UP_ROUND_MS);
    if (r->cfg.n_bootstrap) {
        struct raft_configuration conf;
        raft_configuration_init(&conf);
        for (size_t i = 0; i < r->cfg.n_bootstrap && rv == 0; i++)
            rv = raft_configuration_add(&conf, rft_tag_to_id(r->bootstrap[i].tag),
                                        r->bootstrap[i].address, RAFT_VOTER);
        if (rv == 0)
            rv = raft_bootstrap(&r->raft, &conf);
        raft_configuration_close(&conf);
        if (rv == 0)
            rlog(r, CMN_LOG_INFO, "RFT-BOOT", "bootstrapped a cluster of %zu nodes",
                 r->cfg.n_bootstrap);
        else if (rv != RAFT_CANTBOOTSTRAP)
            return cmn_fail(errmsg, CMN_EIO, "raft bootstrap: %s", raft_errmsg(&r->raft));
    }
    rv = raft_start(&r->raft);
    if (rv != 0) {
        /* 0.15 passes on no message when its transport cannot listen (uvStart) */
        const char *m = raft_errmsg(&r->raft);
        if (m == NULL || m[0] == '\0')
            m = r->transport.errmsg[0] ? r->transport.errmsg : r->io.errmsg;
        return cmn_fail(errmsg, CMN_EIO, "raft start: %s (%s)", m, rft_strerror(rv));
    }
    r->started = true;
    /* The tick also sends lease requests, every quarter of a lease. */
    uint64_t tick = r->lease_ms / 4 < TICK_MS ? r->lease_ms / 4 : TICK_MS;
    tick = tick < 10 ? 10 : tick;
    uv_timer_start(&r->tick, tick_cb, tick, tick);
    return 0;
}

static void handle_closed(uv_handle_t *h)
{
    struct rft *r = h->data;
    if (--r->open_handles > 0)
        return;
    if (r->close_cb)
        r->close_cb(r->close_ctx);
}

static void close_handles(struct rft *r)
{
    uv_close((uv_handle_t *)&r->tick, handle_closed);
    uv_close((uv_handle_t *)&r->kick, handle_closed);
}

static void raft_closed(struct raft *raft)
{
    struct rft *r = raft->data;
    r->closed_raft = true;
    raft_uv_close(&r->io);
    rft_transport_fini(&r->transport);
    pump(r); /* fails whatever is left */
    close_handles(r);
}

static void do_close(struct rft *r)
{
    r->ready = false;
    /* Forwarding channels belong to the transport, which raft_close closes. */
    if (r->fwd) {
        r->fwd->on_event = NULL;
        r->fwd->on_data = NULL;
        r->fwd = NULL;
    }
    while (r->peers) {
        r->peers->ch->on_event = NULL;
        r->peers->ch->on_data = NULL;
        peer_free(r->peers);
    }
    pump(r);
    if (r->raft_inited) {
        r->raft.data = r;
        raft_close(&r->raft, raft_closed);
    } else {
        close_handles(r);
    }
}

static void transfer_cb(struct raft_transfer *req)
{
    struct rft *r = req->data;
    if (!r->transferring)
        return;
    r->transferring = false;
    raft_id leader = 0;
    const char *addr;
    raft_leader(&r->raft, &leader, &addr);
    char tag[8] = "";
    rft_id_to_tag(leader, tag);
    if (leader != 0 && leader != r->id)
        rlog(r, CMN_LOG_INFO, "RFT-ELECT", "leadership handed to node %s", tag);
    else
        rlog(r, CMN_LOG_WARN, "RFT-ELECT", "leadership transfer did not complete");
    do_close(r);
}

void rft_close(struct rft *r, void (*cb)(void *ctx), void *ctx)
{
    if (r->closing)
        return;
    r->closing = true;
    r->close_cb = cb;
    r->close_ctx = ctx;
    uv_timer_stop(&r->tick);
    if (r->started && raft_state(&r->raft) == RAFT_LEADER && r->raft.configuration.n > 1) {
        r->transfer.data = r;
        if (raft_transfer(&r->raft, &r->transfer, 0, transfer_cb) == 0) {
            r->transferring = true;
            return; /* canonical/raft fires the callback within an election timeout */
        }
    }
    do_close(r);
}

void rft_free(struct rft *r)
{
    if (r == NULL)
        return;
    cmn_buf_fini(&r->fwd_rx);
    kv_result_fini(&r->last_result);
    free(r->bootstrap);
    free(r);
}

bool rft_failed(struct rft *r, char *errmsg)
{
    if (!r->started || r->closing || r->closed_raft)
        return false;
    if (r->failed) {
        cmn_fail(errmsg, CMN_EIO, "%s", r->failed_msg);
        return true;
    }
    if (raft_state(&r->raft) != RAFT_UNAVAILABLE)
        return false;
    /* 0.15 often leaves its own message empty: the I/O layer's last error says more. */
    const char *m = raft_errmsg(&r->raft);
    cmn_fail(errmsg, CMN_EIO, "canonical/raft turned Unavailable: %s%s%s",
             m && m[0] ? m : "no reason given", r->io.errmsg[0] ? "; last I/O error: " : "",
             r->io.errmsg);
    return true;
}

static void step_down_cb(struct raft_transfer *req)
{
    struct rft *r = req->data;
    r->stepping_down = false;
    kick(r);
}

int rft_step_down(struct rft *r, char *errmsg)
{
    if (r->stepping_down || r->transferring)
        return cmn_fail(errmsg, CMN_EBUSY, "leadership is being handed over");
    if (!r->started || r->closing || raft_state(&r->raft) != RAFT_LEADER)
        return cmn_fail(errmsg, CMN_EDENIED, "not the leader");
    r->step_down.data = r;
    int rv = raft_transfer(&r->raft, &r->step_down, 0, step_down_cb);
    if (rv != 0)
        return cmn_fail(errmsg, CMN_EINVALID, "%s", raft_errmsg(&r->raft));
    r->stepping_down = true;
    return 0;
}

uint64_t rft_snapshot_bytes(struct rft *r)
{
    return r->last_snap_bytes;
}

void rft_status(struct rft *r, struct rft_status *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->tag, sizeof out->tag, "%s", r->tag);
    out->applied_index = kv_applied_index(r->cfg.kv);
    if (!r->started || r->closed_raft) {
        snprintf(out->state, sizeof out->state, "Unavailable");
        return;
    }
    static const char *const names[] = {"Unavailable", "Follower", "Candidate", "Leader"};
    int st = raft_state(&r->raft);
    snprintf(out->state, sizeof out->state, "%s", st >= 0 && st <= 3 ? names[st] : "?");
    bool member = false;
    const struct raft_configuration *c = &r->raft.configuration;
    for (unsigned i = 0; i < c->n && out->n_members < 32; i++) {
        rft_id_to_tag(c->servers[i].id, out->members[out->n_members].tag);
        snprintf(out->members[out->n_members].address, sizeof out->members[0].address, "%s",
                 c->servers[i].address);
        out->members[out->n_members].role = c->servers[i].role;
        out->n_members++;
        if (c->servers[i].id == r->id)
            member = true;
    }
    if (!member)
        snprintf(out->state, sizeof out->state, "Passive");
    raft_id leader = 0;
    const char *addr = NULL;
    raft_leader(&r->raft, &leader, &addr);
    if (leader)
        rft_id_to_tag(leader, out->leader);
    out->ready = r->ready;
    out->lease = rft_lease_held(r, NULL, 0);
    out->term = r->raft.current_term;
    out->commit_index = r->raft.commit_index;
    out->last_index = raft_last_index(&r->raft);
}

/* ---- membership ---- */

static void change_done(struct rft *r, int status, const char *fmt, ...) CMN_PRINTF(3, 4);
static void change_done(struct rft *r, int status, const char *fmt, ...)
{
    char msg[CMN_ERRMSG_SIZE] = "";
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
    }
    r->change_busy = false;
    if (r->change_cb)
        r->change_cb(r->change_ctx, status, msg);
}

static void assign_cb(struct raft_change *req, int status)
{
    struct rft *r = req->data;
    char tag[8];
    rft_id_to_tag(r->change_id, tag);
    if (status != 0) {
        change_done(r, CMN_EIO, "node %s could not catch up to become a voter: %s", tag,
                    rft_strerror(status));
        return;
    }
    rlog(r, CMN_LOG_INFO, "RFT-MEMBER", "node %s is a voter", tag);
    change_done(r, 0, NULL);
}

static void add_cb(struct raft_change *req, int status)
{
    struct rft *r = req->data;
    char tag[8];
    rft_id_to_tag(r->change_id, tag);
    if (status != 0) {
        change_done(r, CMN_EIO, "adding node %s failed: %s", tag, rft_strerror(status));
        return;
    }
    rlog(r, CMN_LOG_INFO, "RFT-MEMBER", "node %s added; catching it up", tag);
    /* Promotion runs catch-up rounds first: the node becomes a voter only once it has the log. */
    r->change.data = r;
    int rv = raft_assign(&r->raft, &r->change, r->change_id, RAFT_VOTER, assign_cb);
    if (rv != 0)
        change_done(r, CMN_EIO, "promoting node %s failed: %s", tag, raft_errmsg(&r->raft));
}

static int change_begin(struct rft *r, char *errmsg)
{
    if (!r->ready)
        return cmn_fail(errmsg, CMN_EDENIED, "only the leader changes the membership");
    if (r->change_busy)
        return cmn_fail(errmsg, CMN_EBUSY, "another membership change is in progress");
    return 0;
}

static int change_error(struct rft *r, int rv, char *errmsg)
{
    /* 0.15 sets no message for some refusals (an unknown id): its code's text then */
    const char *m = raft_errmsg(&r->raft);
    if (m == NULL || m[0] == '\0')
        m = rft_strerror(rv);
    if (rv == RAFT_CANTCHANGE)
        return cmn_fail(errmsg, CMN_EBUSY, "another membership change is in progress");
    if (rv == RAFT_NOTLEADER)
        return cmn_fail(errmsg, CMN_EDENIED, "only the leader changes the membership");
    if (rv == RAFT_DUPLICATEID || rv == RAFT_DUPLICATEADDRESS)
        return cmn_fail(errmsg, CMN_EEXISTS, "%s", m);
    if (rv == RAFT_BADID)
        return cmn_fail(errmsg, CMN_ENOTFOUND, "%s", m);
    return cmn_fail(errmsg, CMN_EINVALID, "%s", m);
}

int rft_add_node(struct rft *r, const char *tag, const char *address, rft_change_cb cb, void *ctx,
                 char *errmsg)
{
    int rv = change_begin(r, errmsg);
    if (rv != 0)
        return rv;
    raft_id id = rft_tag_to_id(tag);
    if (id == 0)
        return cmn_fail(errmsg, CMN_EINVALID, "'%s' is not a node tag", tag);
    r->change.data = r;
    r->change_id = id;
    r->change_cb = cb;
    r->change_ctx = ctx;
    rv = raft_add(&r->raft, &r->change, id, address, add_cb);
    if (rv != 0)
        return change_error(r, rv, errmsg);
    r->change_busy = true;
    return 0;
}

static void remove_cb(struct raft_change *req, int status)
{
    struct rft *r = req->data;
    char tag[8];
    rft_id_to_tag(r->change_id, tag);
    if (status != 0) {
        change_done(r, CMN_EIO, "removing node %s failed: %s", tag, rft_strerror(status));
        return;
    }
    rlog(r, CMN_LOG_INFO, "RFT-MEMBER", "node %s removed", tag);
    change_done(r, 0, NULL);
}

int rft_remove_node(struct rft *r, const char *tag, rft_change_cb cb, void *ctx, char *errmsg)
{
    int rv = change_begin(r, errmsg);
    if (rv != 0)
        return rv;
    raft_id id = rft_tag_to_id(tag);
    if (id == 0)
        return cmn_fail(errmsg, CMN_EINVALID, "'%s' is not a node tag", tag);
    r->change.data = r;
    r->change_id = id;
    r->change_cb = cb;
    r->change_ctx = ctx;
    rv = raft_remove(&r->raft, &r->change, id, remove_cb);
    if (rv != 0)
        return change_error(r, rv, errmsg);
    r->change_busy = true;
    return 0;
}

void rft_set_ssl_ctx(struct rft *r, SSL_CTX *ctx)
{
    r->cfg.ssl_ctx = ctx;
    if (r->transport.impl != NULL)
        rft_transport_set_ctx(&r->transport, ctx);
}

void rft_drop_peer(struct rft *r, const char *thumbprint_lower)
{
    if (r->started && !r->closed_raft)
        rft_transport_drop_peer(&r->transport, thumbprint_lower);
}
