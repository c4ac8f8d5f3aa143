/* One node's Raft: canonical/raft on the loop with the TLS transport, the trust-state FSM over
 * storage/, bootstrap, membership, leadership, and proposals from any node (a follower forwards
 * to the leader over an authenticated channel and answers once the entry is applied locally).
 *
 * Every hazard of Debian's canonical/raft 0.15 is handled here: entries are padded to 8 bytes
 * (the codec does it; rft_propose refuses anything else), auto-recovery is off, a new leader
 * commits a barrier before it serves writes, and async snapshots get io.version = 2. */
#ifndef CORVID_RAFT_RFT_H
#define CORVID_RAFT_RFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>
#include <raft.h>
#include <uv.h>

#include "common/err.h"
#include "storage/kv.h"

#define RFT_TAG_MAX 8

struct rft;

struct rft_member {
    char tag[RFT_TAG_MAX];
    char address[256]; /* Raft address, "ip:port" */
};

/* Decides whether cert may act as cluster node `tag` (already checked: the certificate's
 * urn:corvid:node SAN names that tag). 0 or a code with the reason in errmsg. */
typedef int (*rft_trust_cb)(void *ctx, X509 *cert, const char *tag, char *errmsg);
/* Called on the loop after every applied command entry, on every node, with the raw entry and
 * what applying it did (res: its type and effects, kv_result). After a snapshot replaced the
 * whole state, it is called once with entry NULL and res NULL. */
typedef void (*rft_applied_cb)(void *ctx, uint64_t index, const void *entry, size_t len,
                               const struct kv_result *res);
/* This node became a leader that may serve writes (after its barrier), or stopped being one. */
typedef void (*rft_leader_cb)(void *ctx, bool leader);
/* Whether an applied (not rejected) entry must be in force on every node before its proposer
 * is answered, such as a revocation. The leader sends it to the other nodes as committed over
 * their forwarding channels; they run rft_committed_cb at once, without waiting for their own
 * apply, and acknowledge. The proposer is answered once every node that holds a read lease
 * (rft_lease_held) has acknowledged it, reported it applied, or seen its lease run out, and,
 * on a new leader, once leases granted by earlier leaders have run out (see raft/rft.c). */
typedef bool (*rft_announce_fn)(void *ctx, const struct kv_result *res);
/* On a node other than the leader: entry `index` is committed and not applied here yet. 0 when
 * it is in force here (then acknowledged); otherwise this node drops its read lease and its
 * channel to the leader, and is granted a lease again only once it has applied the entry;
 * errmsg then says why. */
typedef int (*rft_committed_cb)(void *ctx, uint64_t index, const void *entry, size_t len,
                                char *errmsg);
/* Whether this node's disk has room for the entry forwarded to it: 0, or CMN_ENOSPACE with the
 * reason. A leader refuses such a proposal then, and the follower that forwarded it asks again
 * (wherever the leader is by then) until its proposal times out. */
typedef int (*rft_space_fn)(void *ctx, const void *entry, size_t len, char *errmsg);
/* Raft cannot go on and the process must end now, before control returns to canonical/raft
 * (see rft_failed): msg says why. Must not return; rft aborts if it does. */
typedef void (*rft_fatal_fn)(void *ctx, const char *msg);

struct rft_config {
    const char *tag;
    const char *address;                /* Raft listen address, "ip:port" */
    const char *dir;                    /* Raft's data directory (created 0700 if missing) */
    const struct rft_member *bootstrap; /* NULL: start passive and wait to be added */
    size_t n_bootstrap;
    SSL_CTX *ssl_ctx; /* borrowed: the node certificate, TLS 1.3, peer certificate required */
    struct kv *kv;    /* borrowed */
    rft_trust_cb trust;
    rft_applied_cb applied;
    rft_leader_cb leader;
    rft_announce_fn announce;
    rft_committed_cb committed;
    rft_space_fn space; /* may be NULL: no check */
    rft_fatal_fn fatal; /* may be NULL: abort() */
    void *cb_ctx;
    unsigned election_ms;        /* default 1000; also the read lease (rft_lease_held) */
    unsigned heartbeat_ms;       /* default 100 */
    unsigned snapshot_threshold; /* default 16384 */
    unsigned snapshot_trailing;  /* default 8192 */
    unsigned snapshot_mb; /* also a snapshot once the entries since the last hold this many MiB:
                           * default 32 */
    unsigned propose_timeout_ms; /* how long a proposal waits for a leader: default 5000 */
};

int rft_new(uv_loop_t *loop, const struct rft_config *cfg, struct rft **out,
            char *errmsg) CMN_MUST_CHECK;
/* Bootstraps when configured and the log is empty, then starts Raft. */
int rft_start(struct rft *r, char *errmsg) CMN_MUST_CHECK;
/* Stops: a leader hands leadership to a follower first (bounded wait), then Raft closes.
 * cb fires once every handle is closed; then rft_free. */
void rft_close(struct rft *r, void (*cb)(void *ctx), void *ctx);
void rft_free(struct rft *r);

/* The outcome of a proposal: status 0 and res filled (res->rejected says whether the state
 * machine refused it), or CMN_EBUSY (no leader within the timeout: retry later), CMN_EIO (the
 * node is shutting down or the store failed), CMN_EINVALID (not a valid entry), CMN_ENOSPACE
 * (the leader's disk stayed full until the timeout; errmsg says whose). Of res, the outcome
 * (index, duplicate, rejected, code, reason) is what a proposer reads; type and effects are
 * reported to rft_applied_cb, and removed is never set here. */
typedef void (*rft_propose_cb)(void *ctx, int status, const struct kv_result *res,
                               const char *errmsg);
/* Proposes an encoded command (kv_cmd_encode, with a request id so that retries are safe).
 * The entry is copied. cb fires exactly once, never synchronously, after the entry is applied
 * on this node. */
int rft_propose(struct rft *r, const void *entry, size_t len, rft_propose_cb cb,
                void *ctx) CMN_MUST_CHECK;

struct rft_status {
    char tag[RFT_TAG_MAX];
    char state[16];           /* "Leader", "Follower", "Candidate", "Passive", "Unavailable" */
    char leader[RFT_TAG_MAX]; /* "" when unknown */
    bool ready;               /* leader whose barrier committed */
    bool lease;               /* rft_lease_held */
    uint64_t term, commit_index, last_index, applied_index;
    size_t n_members;
    struct {
        char tag[RFT_TAG_MAX];
        char address[256];
        int role; /* RAFT_VOTER, RAFT_STANDBY, RAFT_SPARE */
    } members[32];
};
void rft_status(struct rft *r, struct rft_status *out);

/* Membership, on the leader, one change at a time (CMN_EBUSY while another runs, CMN_EDENIED
 * on a follower). add_node adds tag as a non-voter, lets it catch up, then promotes it; cb
 * fires when done. */
typedef void (*rft_change_cb)(void *ctx, int status, const char *errmsg);
int rft_add_node(struct rft *r, const char *tag, const char *address, rft_change_cb cb, void *ctx,
                 char *errmsg) CMN_MUST_CHECK;
int rft_remove_node(struct rft *r, const char *tag, rft_change_cb cb, void *ctx,
                    char *errmsg) CMN_MUST_CHECK;

/* Whether this node may answer from its local trust state now (its read lease): a follower was
 * granted a lease by a leader within the election timeout; a ready leader has heard from a
 * majority of voters within it. When not, why gets the reason (why may be NULL). A node that
 * holds no lease may have missed an acknowledged revocation. */
bool rft_lease_held(struct rft *r, char *why, size_t cap);

/* Closes Raft connections authenticated with a revoked node certificate. */
void rft_drop_peer(struct rft *r, const char *thumbprint_lower);
/* This node's certificate changed: connections made from now on, both ways, present the one
 * of ctx (borrowed, as cfg->ssl_ctx: the caller keeps it until the next call or rft_free);
 * open connections finish on the one they began with (each SSL holds its own reference). */
void rft_set_ssl_ctx(struct rft *r, SSL_CTX *ctx);

/* Whether Raft cannot go on on this node: canonical/raft stopped on its own (state
 * Unavailable: an I/O error or an inconsistency; it then answers nothing until restarted), or
 * a write of its log or an apply to the store failed. 0.15 recovers from neither in place: a
 * leader truncates its in-memory log after a failed append and could write other entries at
 * the same index and term, a follower re-acknowledges entries it never stored, and RocksDB
 * after a failed WAL write may abort on the next one. Nothing more is proposed or applied from
 * then on; the caller must stop the node (a restart reloads what is on disk). errmsg gets the
 * first failure's message. Some failures end the process at once through cfg.fatal: a
 * leader's failed append is not even handed back to canonical/raft (0.15 truncates its
 * in-memory log under entries still being sent to the followers and crashes when those sends
 * complete: seen, SIGSEGV in libraft), and after a failed apply or restore RocksDB's own
 * threads may abort on the full disk (storage/kv.c). */
bool rft_failed(struct rft *r, char *errmsg);

/* On a leader that cannot take more entries (its disk is full): hands leadership to the most
 * up-to-date voter. CMN_EBUSY while a transfer runs, CMN_EDENIED when not leading, CMN_EINVALID
 * with the reason when canonical/raft refuses (no other voter). */
int rft_step_down(struct rft *r, char *errmsg) CMN_MUST_CHECK;

/* The size of the last snapshot taken or restored (0: none yet), for disk reserves. */
uint64_t rft_snapshot_bytes(struct rft *r);

/* Readable text for canonical/raft codes, including those raft_strerror does not know. */
const char *rft_strerror(int code);

#endif
