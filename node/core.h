/* The node's core, private to its own files (node/node.c, keys.c, disk.c, members.c,
 * fetch.c): the one struct node, with everything it owns. Every other file sees the narrow
 * interface of node/node.h. */
#ifndef CORVID_NODE_CORE_H
#define CORVID_NODE_CORE_H

#include "ca/certfile.h"
#include "node/expiry.h"
#include "node/node.h"

struct node_early_revocation;
struct node_rotation;

/* ---- the core's own functions, across its files ---- */

/* Makes a node that has known no leader for two election timeouts catch up again (through the
 * next leader) before it serves. What keeps a cut-off node from answering with a state that
 * misses a revocation is its read lease (node_serves), which runs out within one election
 * timeout. Called by the duty timer and before each request. */
void node_watch_leader(struct node *n);
/* The same without the disk check, for the one small entry a node needs to serve reads at all
 * (its catch-up after a start or a leaderless spell). */
int node_propose_anyway(struct node *n, struct kv_cmd *cmd, rft_propose_cb cb, void *ctx,
                        char *errmsg) CMN_MUST_CHECK;
/* The reserve this node keeps on DataDir now (bytes). */
uint64_t node_disk_reserve(struct node *n);
/* 0, or CMN_ENOSPACE with a message naming DataDir, its free bytes and the reserve; d (may be
 * NULL) gets the figures. */
int node_disk_check(struct node *n, struct node_disk *d, char *errmsg) CMN_MUST_CHECK;
/* The message of node_disk_check for figures d. */
void node_disk_describe(struct node *n, const struct node_disk *d, char *errmsg);
/* Logs when DataDir goes below its reserve and when it has room again (the duty timer). */
void node_disk_watch(struct node *n);
/* Forgets the cached issuing CA (the trust state was replaced or set). */
void node_issuing_forget(struct node *n);
/* Secrets at rest (node/keys.c). The trust state holds the issuing CA key sealed under the
 * master key (ca/seal.h), so that the Raft log, RocksDB and snapshots carry only ciphertext.
 * node_keys_load reads Security.MasterKey.Path (refused unless owner-only, outside DataDir, of
 * 32 or 64 bytes); node_keys_fini wipes the keys. */
int node_keys_load(struct node *n, char *errmsg) CMN_MUST_CHECK;
void node_keys_fini(struct node *n);
/* Any secret for purpose (CA_SEAL_*), sealed under the current master key (appended to out),
 * and opened again with whichever of this node's keys sealed it (out: a secret buffer). */
int node_keys_seal(struct node *n, const char *purpose, const void *plain, size_t len,
                   struct cmn_buf *out, char *errmsg) CMN_MUST_CHECK;
int node_keys_open(struct node *n, const char *purpose, const struct cmn_buf *blob,
                   struct cmn_buf *out, char *errmsg) CMN_MUST_CHECK;
/* Appends key, sealed under the current master key, to out. */
int node_keys_seal_issuing(struct node *n, EVP_PKEY *key, struct cmn_buf *out,
                           char *errmsg) CMN_MUST_CHECK;
enum node_ca_seal node_keys_issuing_state(struct node *n, const struct cmn_buf *blob,
                                          char id[CA_SEAL_ID_HEX]);
/* Opens the blob into a new key owned by the caller. A blob sealed under a key this node does
 * not hold fails with CMN_EBADPASSWORD and a message naming both key identifiers. */
int node_keys_open_issuing(struct node *n, const struct cmn_buf *blob, EVP_PKEY **out,
                           char *errmsg) CMN_MUST_CHECK;
/* On the leader, from its duty timer: TOTP keys not sealed under the current master key (a
 * rotation in progress, or keys registered before sealing) are sealed again, a batch at a time:
 * the registrations are read over a snapshot in the threadpool, the new blobs committed with
 * KV_CMD_RESEAL_TOTP. Scans while a rotation is in progress, and once after the node starts. */
void node_keys_reseal_totp(struct node *n);
/* A job that reads the trust state in the threadpool: takes a snapshot into *snap and queues
 * w (its data set by the caller) with work and after, which ends the snapshot. On failure
 * nothing is left to end. */
int node_snapshot_job(struct node *n, struct kv_snap **snap, uv_work_t *w, uv_work_cb work,
                      uv_after_work_cb after, char *errmsg) CMN_MUST_CHECK;
/* Narrows every file under dir to owner-only (0600-like) and every folder to 0700. */
int node_keys_private_data_dir(const char *dir, char *errmsg) CMN_MUST_CHECK;

struct node {
    uv_loop_t loop;
    struct node_config cfg;
    int lock_fd;
    struct kv *kv;
    struct rft *rft;
    SSL_CTX *raft_ctx;
    /* this node's identity */
    EVP_PKEY *key;
    X509 *cert;
    struct ca_cert_list chain;      /* issuers sent after the certificate */
    char thumb[CA_THUMBPRINT_SIZE]; /* lower-case */
    /* from the configuration */
    struct ca_certfile cluster_ca; /* Security.ClusterCA: the issuing CA to commit at bootstrap */
    bool have_cluster_ca;
    /* Cluster.TrustedNodeCertificates thumbprints, lower-case */
    char (*trusted)[CA_THUMBPRINT_SIZE];
    size_t n_trusted;
    /* Security.MasterKey.Path (node/keys.c): mkeys[0] seals, each of them opens */
    struct ca_master_key mkeys[CA_MASTER_KEYS_MAX];
    size_t n_mkeys;
    bool ca_clear_warned;    /* logged once: the trust state's CA key is not sealed */
    bool ca_foreign_warned;  /* logged once: it is sealed under a key this node lacks */
    int64_t reseal_after_ms; /* a failed re-seal is retried from then on */
    /* TOTP keys under an older master key (node_keys_reseal_totp) */
    bool totp_scanning;         /* a scan or its proposals in flight */
    bool totp_scanned;          /* once since the start */
    int64_t totp_scan_after_ms; /* the next scan */
    long totp_older;            /* found by the last scan; -1 before one */
    /* expiring certificates (node/expiry.c) */
    struct node_expiry_report expiry;
    bool expiry_checking;
    int64_t expiry_next_ms, expiry_logged_ms;
    uint64_t expiry_gen; /* the trust generation the last check saw */
    /* this node's certificate being replaced (node/rotate.c), NULL when none */
    struct node_rotation *rotation;
    int64_t renew_after_ms; /* the next automatic renewal check */
    /* the cluster-wide replacement, as this node takes part (node/rotate.c) */
    bool repl_proposing;              /* its RECEIVED note in flight */
    int64_t repl_after_ms;            /* the next look at the replacement */
    char repl_note[KV_REPL_NOTE_MAX]; /* the last note it committed */
    bool renew_warned;                /* logged once: cannot renew automatically */
    /* background duties */
    uv_timer_t duty;
    bool registering; /* self-registration proposal in flight */
    bool serving;     /* caught up with the cluster since start: may answer authenticated calls */
    uint64_t leader_seen_ms; /* loop time a leader was last known, while serving */
    bool syncing;            /* the catch-up proposal is in flight */
    bool ca_proposing;       /* issuing-CA proposal in flight */
    bool crl_refreshing;     /* CRL re-issue proposal in flight */
    uv_signal_t sigterm, sigint;
    /* HTTPS API */
    SSL_CTX *fetch_ctx; /* client side of node_fetch: this node's certificate, any server */
    struct ca_cert_list issuers; /* Security.WellKnownIssuers.Admin */
    uint64_t trust_gen;          /* bumped by every applied trust change: re-authenticate */
    X509 *issuing_cert;          /* cache of the trust state's issuing CA certificate */
    struct node_issuer issuer;   /* cache of node_issuer_load, when have_issuer */
    bool have_issuer;
    /* revocations the leader announced as committed, not applied here yet (node/auth.c) */
    struct node_early_revocation *early;
    size_t n_early;
    char data_dir_abs[4096];    /* DataDir, absolute, for messages */
    bool disk_low;              /* last seen by node_disk_watch */
    uint64_t disk_step_down_at; /* loop time from which a full leader hands over again */
    uint64_t disk_step_down_ms; /* the wait after the last hand-over (doubles, reset by room) */
    /* the rooms started on the core (node_room_add), told of changes, closed at stop */
    struct {
        const struct node_room_ops *ops;
        void *room;
    } rooms[NODE_ROOMS_MAX];
    size_t n_rooms;
    bool stopping;
    int exit_code;
};

#endif
