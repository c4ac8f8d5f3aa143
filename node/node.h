/* The corvid-node daemon: one libuv loop running Raft, the TLS transport, the admin channel and
 * (later) the HTTPS API over the replicated trust state. */
#ifndef CORVID_NODE_NODE_H
#define CORVID_NODE_NODE_H

#include <stdbool.h>
#include <stdint.h>

#include <openssl/ssl.h>
#include <uv.h>

#include "ca/ca.h"
#include "node/config.h"
#include "raft/rft.h"
#include "storage/kv.h"
#include "node/http.h"

/* How far in the future a node certificate's NotBefore may be and still be taken (clocks of
 * the issuer and the node differ). */
#define NODE_CLOCK_SLACK_S CA_DAY_SECS

/* The CRL: re-issued through Raft every NODE_CRL_REFRESH_MS, each valid NODE_CRL_VALID_MS. */
#define NODE_CRL_REFRESH_MS (3600LL * 1000)
#define NODE_CRL_VALID_MS   (2 * NODE_CRL_REFRESH_MS)

/* Disk space (node/disk.c). canonical/raft preallocates its log in 8 MiB open segments (two
 * kept ready beside the one in use), RocksDB appends to its WAL and writes SST files when it
 * flushes or compacts, and a snapshot is written beside the previous one before that is
 * removed. A node keeps NODE_DISK_RESERVE_BASE free (the next two Raft segments and 32 MiB for
 * RocksDB), plus its memtables (what their flush writes) and twice its last snapshot: below
 * that it refuses writes (HTTP 507), a leader hands leadership over, and the node does not
 * start. The reserve is headroom, not a guarantee: when the store has no room left for a write
 * (storage/kv.c, KV_DISK_FLOOR beside the memtables) or Raft's log write fails, the node
 * exits (fail closed). */
#define NODE_DISK_RAFT_RESERVE  (2ULL * 8 * 1024 * 1024)
#define NODE_DISK_STORE_RESERVE (32ULL * 1024 * 1024)
#define NODE_DISK_RESERVE_BASE  (NODE_DISK_RAFT_RESERVE + NODE_DISK_STORE_RESERVE)

struct node_disk {
    uint64_t free;    /* bytes available to the node on DataDir's filesystem */
    uint64_t reserve; /* bytes the node keeps free */
    bool low;         /* free < reserve: writes are refused */
};

struct lastused;
struct node_crl;

struct node_admin;

/* The issuing CA from the trust state, ready to sign (node_issuer_load; release with
 * node_issuer_fini). */
struct node_issuer {
    X509 *cert;
    EVP_PKEY *key;
    struct ca_cert_list chain; /* issuing CA first, then its issuers */
};

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
    struct ca_pfx cluster_ca; /* Security.ClusterCA: the issuing CA to commit at bootstrap */
    bool have_cluster_ca;
    char (
        *trusted)[CA_THUMBPRINT_SIZE]; /* Cluster.TrustedNodeCertificates thumbprints, lower-case */
    size_t n_trusted;
    /* Security.MasterKey.Path (node/keys.c): mkeys[0] seals, each of them opens */
    struct ca_master_key mkeys[CA_MASTER_KEYS_MAX];
    size_t n_mkeys;
    bool ca_clear_warned;    /* logged once: the trust state's CA key is not sealed */
    bool ca_foreign_warned;  /* logged once: it is sealed under a key this node lacks */
    int64_t reseal_after_ms; /* a failed re-seal is retried from then on */
    /* background duties */
    uv_timer_t duty;
    bool registering; /* self-registration proposal in flight */
    bool serving;     /* caught up with the cluster since start: may answer authenticated calls */
    uint64_t leader_seen_ms; /* loop time a leader was last known, while serving */
    bool syncing;            /* the catch-up proposal is in flight */
    bool ca_proposing;       /* issuing-CA proposal in flight */
    bool crl_refreshing;     /* CRL re-issue proposal in flight */
    uv_signal_t sigterm, sigint;
    struct node_admin *admin;
    /* HTTPS API */
    SSL_CTX *https_ctx;
    SSL_CTX *fetch_ctx; /* client side of node_fetch: this node's certificate, any server */
    struct http_server *http;
    struct ca_cert_list issuers; /* Security.WellKnownIssuers.Admin */
    uint64_t trust_gen;          /* bumped by every applied trust change: re-authenticate */
    X509 *issuing_cert;          /* cache of the trust state's issuing CA certificate */
    struct node_issuer issuer;   /* cache of node_issuer_load, when have_issuer */
    bool have_issuer;
    struct lastused *lastused; /* node/lastused.h, owned by the HTTPS API */
    struct node_crl *crl;      /* the signed CRL GET /ca/crl serves (node/api.c) */
    /* revocations the leader announced as committed, not applied here yet (node/auth.c) */
    struct node_early_revocation *early;
    size_t n_early;
    char data_dir_abs[4096];    /* DataDir, absolute, for messages */
    bool disk_low;              /* last seen by node_disk_watch */
    uint64_t disk_step_down_at; /* loop time from which a full leader hands over again */
    uint64_t disk_step_down_ms; /* the wait after the last hand-over (doubles, reset by room) */
    bool stopping;
    int exit_code;
};

int node_init(struct node *n, const char *config_path, char *errmsg) CMN_MUST_CHECK;
/* Runs the loop until SIGTERM/SIGINT; returns the process exit code. */
int node_run(struct node *n);
void node_fini(struct node *n);

/* Makes a node that has known no leader for two election timeouts catch up again (through the
 * next leader) before it serves. What keeps a cut-off node from answering with a state that
 * misses a revocation is its read lease (node_serves), which runs out within one election
 * timeout. Called by the duty timer and before each request. */
void node_watch_leader(struct node *n);
/* Whether this node may answer from its trust state now: it caught up since it started
 * (n->serving) and holds a read lease (rft_lease_held: a follower heard from the leader, a
 * leader from a majority, within an election timeout), so that it cannot miss a revocation
 * that was acknowledged. When not, why (may be NULL) gets the reason. */
bool node_serves(struct node *n, char *why, size_t cap);
/* Revocations the leader announced as committed and this node has not applied yet: in force
 * at once. Whether registration def (or the collection it belongs to) is among them, with the
 * revocation's time; and how many there are. */
bool node_revoked_early(const struct node *n, const struct kv_cert *def, int64_t *time_ms);
size_t node_revocations_pending(const struct node *n);
/* Whether the cluster CA (Security.ClusterCA or the trust state's issuing CA) signed cert. */
bool node_issued_by_cluster_ca(struct node *n, X509 *cert);

/* Whether thumbprint (any case) is in Cluster.TrustedNodeCertificates. */
bool node_trusts_thumbprint(struct node *n, const char *thumbprint);

/* Reads a whole file (at most CA_INPUT_MAX bytes) into out. */
int node_read_file(const char *path, struct cmn_buf *out, char *errmsg) CMN_MUST_CHECK;

/* Proposes cmd (consumed): fills the request id when absent, the time and the actor. Fails
 * with CMN_ENOSPACE (and node_disk_describe's message) while DataDir is below its reserve. */
int node_propose(struct node *n, struct kv_cmd *cmd, rft_propose_cb cb, void *ctx,
                 char *errmsg) CMN_MUST_CHECK;
/* The same without the disk check, for the one small entry a node needs to serve reads at all
 * (its catch-up after a start or a leaderless spell). */
int node_propose_anyway(struct node *n, struct kv_cmd *cmd, rft_propose_cb cb, void *ctx,
                        char *errmsg) CMN_MUST_CHECK;

/* The reserve this node keeps on DataDir now (bytes). */
uint64_t node_disk_reserve(struct node *n);
/* Fills out; CMN_EIO when statvfs fails (out->low is then false: nothing is refused for it). */
int node_disk_state(struct node *n, struct node_disk *out);
/* 0, or CMN_ENOSPACE with a message naming DataDir, its free bytes and the reserve; d (may be
 * NULL) gets the figures. */
int node_disk_check(struct node *n, struct node_disk *d, char *errmsg) CMN_MUST_CHECK;
/* The message of node_disk_check for figures d. */
void node_disk_describe(struct node *n, const struct node_disk *d, char *errmsg);
/* Logs when DataDir goes below its reserve and when it has room again (the duty timer). */
void node_disk_watch(struct node *n);

/* References to the cached issuing CA (usable in the threadpool). */
int node_issuer_load(struct node *n, struct node_issuer *out, char *errmsg) CMN_MUST_CHECK;
void node_issuer_fini(struct node_issuer *is);
/* The issuing CA's certificate (borrowed, cached; NULL before bootstrap committed it). */
X509 *node_issuing_cert(struct node *n);
/* Forgets the cached issuing CA (the trust state was replaced or set). */
void node_issuing_forget(struct node *n);

/* Builds a certificate registration (kv_cert) for x: thumbprint, pinning hash, serial, validity,
 * public DER, and whether the cluster CA issued it. */
int node_cert_record(struct node *n, X509 *x, const char *name, enum kv_clearance cl,
                     struct kv_cert *out, char *errmsg) CMN_MUST_CHECK;
/* The cluster CA certificates (Security.ClusterCA and the trust state's issuing CA), each
 * referenced, so that registrations can be built in the threadpool with node_cert_record_cas
 * while the loop changes the trust state. */
struct node_cluster_cas {
    X509 *cert[2];
};
void node_cluster_cas_get(struct node *n, struct node_cluster_cas *out);
void node_cluster_cas_fini(struct node_cluster_cas *c);
int node_cert_record_cas(const struct node_cluster_cas *cas, X509 *x, const char *name,
                         enum kv_clearance cl, struct kv_cert *out, char *errmsg) CMN_MUST_CHECK;

/* Secrets at rest (node/keys.c). The trust state holds the issuing CA key sealed under the
 * master key (ca/seal.h), so that the Raft log, RocksDB and snapshots carry only ciphertext.
 * node_keys_load reads Security.MasterKey.Path (refused unless owner-only, outside DataDir, of
 * 32 or 64 bytes); node_keys_fini wipes the keys. */
int node_keys_load(struct node *n, char *errmsg) CMN_MUST_CHECK;
void node_keys_fini(struct node *n);
/* Appends key, sealed under the current master key, to out. */
int node_keys_seal_issuing(struct node *n, EVP_PKEY *key, struct cmn_buf *out,
                           char *errmsg) CMN_MUST_CHECK;
/* Which key the trust state's CA key blob is sealed under (its identifier into id, "" when
 * clear): a clear key comes from a version without sealing. */
enum node_ca_seal { NODE_CA_CLEAR, NODE_CA_CURRENT, NODE_CA_PREVIOUS, NODE_CA_FOREIGN };
enum node_ca_seal node_keys_issuing_state(struct node *n, const struct cmn_buf *blob,
                                          char id[CA_SEAL_ID_HEX]);
/* Opens the blob into a new key owned by the caller. A blob sealed under a key this node does
 * not hold fails with CMN_EBADPASSWORD and a message naming both key identifiers. */
int node_keys_open_issuing(struct node *n, const struct cmn_buf *blob, EVP_PKEY **out,
                           char *errmsg) CMN_MUST_CHECK;
/* For `info`: this node's key identifiers, and what seals the CA key (blob NULL: none yet). */
void node_keys_describe(struct node *n, const struct cmn_buf *blob, char *master, size_t mcap,
                        char *ca, size_t ccap);
/* Narrows every file under dir to owner-only (0600-like) and every folder to 0700. */
int node_keys_private_data_dir(const char *dir, char *errmsg) CMN_MUST_CHECK;

/* Membership (node/members.c), on the leader. cb gets 0 or a CMN_E* code and a message. */
typedef void (*node_member_cb)(void *ctx, int status, const char *msg);
int node_member_add(struct node *n, const char *tag, const char *server_url, const char *tcp_url,
                    X509 *cert, node_member_cb cb, void *ctx, char *errmsg) CMN_MUST_CHECK;
int node_member_remove(struct node *n, const char *tag, node_member_cb cb, void *ctx,
                       char *errmsg) CMN_MUST_CHECK;

/* An HTTPS GET to another node (node/fetch.c). cb gets status 0 and the answer, or an error and
 * a message; peer is the certificate the node presented (borrowed for the call). */
typedef void (*node_fetch_cb)(void *ctx, int status, const char *msg, X509 *peer, int http_status,
                              const char *body, size_t len);
int node_fetch(struct node *n, const char *url, const char *path, node_fetch_cb cb, void *ctx,
               char *errmsg) CMN_MUST_CHECK;

/* HTTPS API (node/api.c). */
int node_api_start(struct node *n, char *errmsg) CMN_MUST_CHECK;
void node_api_close(struct node *n, void (*cb)(void *ctx), void *ctx);
/* A change of the trust state: what changed (enum kv_effect) and the registrations gone
 * (lower-case thumbprints, borrowed). */
struct node_trust_change {
    unsigned effects;
    const char (*removed)[KV_THUMB_LEN + 1];
    size_t n_removed;
};
/* After a trust change (ch NULL: the whole state was replaced): connections re-authenticate,
 * those of removed registrations close. */
void node_api_trust_changed(struct node *n, const struct node_trust_change *ch);

/* Admin channel (node/admin.c). */
int node_admin_start(struct node *n, char *errmsg) CMN_MUST_CHECK;
void node_admin_close(struct node *n);

#endif
