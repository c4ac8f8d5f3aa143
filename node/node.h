/* The node's core as every other part sees it: the trust state to read, proposals to write,
 * the node's identity and configuration, the issuer cache, and the rooms (the HTTPS API, the
 * admin channel) it tells of trust changes and closes when it stops. struct node itself is
 * the core's own (node/core.h). */
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

struct node;

/* The issuing CA from the trust state, ready to sign (node_issuer_load; release with
 * node_issuer_fini). */
struct node_issuer {
    X509 *cert;
    EVP_PKEY *key;
    struct ca_cert_list chain; /* issuing CA first, then its issuers */
};

/* Loads the configuration, the identity and the keys, opens the trust state and starts Raft.
 * *out is the caller's, freed with node_free after node_run. After a failure (here or in
 * starting a room) handles may live on the loop: the process ends without node_run or
 * node_free. */
int node_new(const char *config_path, struct node **out, char *errmsg) CMN_MUST_CHECK;
/* Runs the loop until SIGTERM/SIGINT (or a fatal error); returns the process exit code. */
int node_run(struct node *n);
/* Frees the core and every room (node_room_add); NULL is ignored. */
void node_free(struct node *n);

/* ---- what the core holds (borrowed, valid until node_free) ---- */

uv_loop_t *node_loop(struct node *n);
const struct node_config *node_config(const struct node *n);
struct kv *node_kv(struct node *n);   /* the applied trust state: read it */
struct rft *node_rft(struct node *n); /* Raft: status, membership */
/* This node's certificate, key and chain (the issuers sent after the certificate). */
X509 *node_cert(const struct node *n);
EVP_PKEY *node_key(const struct node *n);
const struct ca_cert_list *node_chain(const struct node *n);
const char *node_thumb(const struct node *n); /* lower case */
/* Security.WellKnownIssuers.Admin, loaded at start. */
const struct ca_cert_list *node_admin_issuers(const struct node *n);
/* DataDir, absolute, for messages. */
const char *node_data_dir(const struct node *n);
/* Bumped by every trust change: an authentication computed at another value is stale. */
uint64_t node_trust_gen(const struct node *n);
/* Whether it caught up with the cluster since it started (node_serves needs a lease too). */
bool node_caught_up(const struct node *n);
bool node_stopping(const struct node *n);

/* ---- rooms ---- */

/* A change of the trust state: what changed (enum kv_effect) and the registrations gone
 * (lower-case thumbprints, borrowed for the call). */
struct node_trust_change {
    unsigned effects;
    const char (*removed)[KV_THUMB_LEN + 1];
    size_t n_removed;
};

#define NODE_ROOMS_MAX 8

/* A part started on the core (node/api.c, node/admin.c), in the order added. */
struct node_room_ops {
    /* After a trust change (ch NULL: a snapshot replaced the whole state), once the core has
     * bumped node_trust_gen and dropped its own caches. May be NULL. */
    void (*trust_changed)(void *room, const struct node_trust_change *ch);
    /* This node's certificate changed (node_rotate): server_ctx (a reference now the room's)
     * holds the new one, for handshakes from now on. May be NULL. */
    void (*identity_changed)(void *room, SSL_CTX *server_ctx);
    /* The node stops: close every handle; the loop ends once all are closed. */
    void (*close)(void *room);
    /* After the loop ended (or when the node is freed without running). */
    void (*free)(void *room);
};
/* Adds a room (ops static; room owned by the core from now on, freed with node_free).
 * CMN_ETOOBIG beyond NODE_ROOMS_MAX, and the room is freed at once (ops->free). */
int node_room_add(struct node *n, const struct node_room_ops *ops, void *room) CMN_MUST_CHECK;

/* Whether this node may answer from its trust state now: it caught up since it started
 * (n->serving) and holds a read lease (rft_lease_held: a follower heard from the leader, a
 * leader from a majority, within an election timeout), so that it cannot miss a revocation
 * that was acknowledged. When not, why (may be NULL) gets the reason. */
bool node_serves(struct node *n, char *why, size_t cap);
/* Revocations the leader announced as committed and this node has not applied yet: in force
 * at once. Whether registration def (or the collection it belongs to) is among them, with the
 * revocation's time; and how many there are. */
bool node_revoked_early(const struct node *n, const struct kv_cert *def, int64_t *time_ms);
/* Whether thumb's two-factor session ended by an entry committed and not applied here yet. */
bool node_logged_out_early(const struct node *n, const char *thumb);
size_t node_revocations_pending(const struct node *n);
/* Whether the cluster CA (Security.ClusterCA or the trust state's issuing CA) signed cert. */
bool node_issued_by_cluster_ca(struct node *n, X509 *cert);

/* Whether cert may take part in Raft as node tag (its certificate names that tag): 0, or
 * CMN_EDENIED with the reason. Expired, revoked, or registered with another clearance than
 * ClusterNode: refused; this node's own certificate and ClusterNode registrations: taken; a
 * passive node also takes Cluster.TrustedNodeCertificates, and before the bootstrap members
 * registered themselves, a bootstrap member's certificate from the cluster CA is enough. A
 * trust state that cannot be read refuses. */
int node_peer_trust(struct node *n, X509 *cert, const char *tag, char *errmsg) CMN_MUST_CHECK;
/* Whether thumbprint (any case) is in Cluster.TrustedNodeCertificates. */
bool node_trusts_thumbprint(struct node *n, const char *thumbprint);

/* Proposes cmd (consumed): fills the request id when absent, the time and the actor. Fails
 * with CMN_ENOSPACE (and node_disk_describe's message) while DataDir is below its reserve. */
int node_propose(struct node *n, struct kv_cmd *cmd, rft_propose_cb cb, void *ctx,
                 char *errmsg) CMN_MUST_CHECK;

/* Fills out; CMN_EIO when statvfs fails (out->low is then false: nothing is refused for it). */
int node_disk_state(struct node *n, struct node_disk *out);

/* References to the cached issuing CA (usable in the threadpool). */
int node_issuer_load(struct node *n, struct node_issuer *out, char *errmsg) CMN_MUST_CHECK;
void node_issuer_fini(struct node_issuer *is);
/* The issuing CA's certificate (borrowed, cached; NULL before bootstrap committed it, and when
 * it cannot be read: logged). */
X509 *node_issuing_cert(struct node *n);

/* Builds a certificate registration (kv_cert) for x: thumbprint, pinning hash, serial, validity,
 * public DER, and whether the cluster CA issued it. */
int node_cert_record(struct node *n, X509 *x, const char *name, enum kv_clearance cl,
                     struct kv_cert *out, char *errmsg) CMN_MUST_CHECK;
/* KV_CMD_PUT_CERTS (into cmd, initialised here) registering node certificate x as ClusterNode
 * under name, proposed by this node itself. */
int node_cert_put_cmd(struct node *n, X509 *x, const char *name, struct kv_cmd *cmd,
                      char *errmsg) CMN_MUST_CHECK;
/* The cluster CA certificates (Security.ClusterCA and the trust state's issuing CA), each
 * referenced, so that registrations can be built in the threadpool with node_cert_record_cas
 * while the loop changes the trust state. */
struct node_cluster_cas {
    X509 *cert[2];
};
/* Fails (and references nothing) when the trust state's issuing CA cannot be read. */
int node_cluster_cas_get(struct node *n, struct node_cluster_cas *out, char *errmsg) CMN_MUST_CHECK;
void node_cluster_cas_fini(struct node_cluster_cas *c);
int node_cert_record_cas(const struct node_cluster_cas *cas, X509 *x, const char *name,
                         enum kv_clearance cl, struct kv_cert *out, char *errmsg) CMN_MUST_CHECK;

/* A certificate's TOTP key as the trust state stores it: sealed under the current master key,
 * "sealed:" and base64 (the Raft log, RocksDB and snapshots carry only that). Open gives the
 * base32 key back (out: at least CA_TOTP_MAX_B32 + 1 bytes, wipe it after use); a key stored
 * before sealing (no prefix) is returned as it is. */
#define NODE_TOTP_STORED_MAX 256
int node_totp_seal(struct node *n, const char *key, char out[NODE_TOTP_STORED_MAX],
                   char *errmsg) CMN_MUST_CHECK;
int node_totp_open(struct node *n, const char *stored, char *out, size_t cap,
                   char *errmsg) CMN_MUST_CHECK;

/* For `info`: what this node found of TOTP keys under an older master key, as the leader. */
void node_keys_totp_describe(struct node *n, char *out, size_t cap);

/* Which key the trust state's CA key blob is sealed under (its identifier into id, "" when
 * clear): a clear key comes from a version without sealing. */
enum node_ca_seal { NODE_CA_CLEAR, NODE_CA_CURRENT, NODE_CA_PREVIOUS, NODE_CA_FOREIGN };
/* For `info`: this node's key identifiers, and what seals the CA key (blob NULL: none yet). */
void node_keys_describe(struct node *n, const struct cmn_buf *blob, char *master, size_t mcap,
                        char *ca, size_t ccap);

/* Membership (node/members.c), on the leader. cb gets 0 or a CMN_E* code and a message. */
typedef void (*node_member_cb)(void *ctx, int status, const char *msg);
int node_member_add(struct node *n, const char *tag, const char *server_url, const char *tcp_url,
                    X509 *cert, node_member_cb cb, void *ctx, char *errmsg) CMN_MUST_CHECK;
int node_member_remove(struct node *n, const char *tag, node_member_cb cb, void *ctx,
                       char *errmsg) CMN_MUST_CHECK;

/* Rotation of this node's own certificate (node/rotate.c): the new one registered as
 * ClusterNode beside the old, written to Security.Certificate.Path (owner-only, with
 * Security.Certificate.Password), swapped into every TLS context with no restart (open
 * connections finish on the old one), then the old one revoked as superseded. */
struct node_rotate_req {
    /* the new certificate with its key (and the chain to send after it), borrowed; or, when
     * cert is NULL, a new key made here and certified by signer (with signer_chain, its
     * certificate first), or by the trust state's issuing CA when signer is NULL too */
    X509 *cert;
    EVP_PKEY *key;
    const struct ca_cert_list *chain;
    const struct ca_signer *signer;
    const struct ca_cert_list *signer_chain;
    /* swap at once and leave the registration and the switch to the duty timer: for a node
     * whose certificate expired, which its peers refuse */
    bool recovery;
    /* the certificate is registered as ClusterNode already (a cluster-wide replacement) */
    bool registered;
};
struct node_rotate_result {
    int status;     /* 0 or a CMN_E* code: CMN_EDENIED a refusal of the trust state, CMN_EBUSY no
                     * leader, CMN_EIO the node stops or its disk failed */
    bool unchanged; /* the node already had that certificate: nothing was done */
    char old_thumb[CA_THUMBPRINT_SIZE], new_thumb[CA_THUMBPRINT_SIZE]; /* lower case */
    int64_t not_after;                                                 /* the new one's */
    char msg[CMN_ERRMSG_SIZE];
};
typedef void (*node_rotate_cb)(void *ctx, const struct node_rotate_result *res);
/* Starts; cb (may be NULL) fires once it ended either way, from the loop (for a recovery or an
 * unchanged certificate, before this returns). Fails at once, cb not called, when the new
 * certificate does not fit this node (CMN_EINVALID: usages, tag, validity), when another
 * rotation is in progress (CMN_EEXISTS), or when no signer is at hand. */
int node_rotate(struct node *n, const struct node_rotate_req *req, node_rotate_cb cb, void *ctx,
                char *errmsg) CMN_MUST_CHECK;
/* From the duty timer: renews this node's certificate from the cluster CA once less than
 * Security.Certificate.RenewBeforeDays remain. */
void node_renew_watch(struct node *n);
/* RavenDB's replace-cluster-cert: one certificate (req->cert with its key and chain), naming
 * every node, for the whole cluster. Checked (CMN_EINVALID: usages, validity, a node not
 * named; CMN_EEXISTS: this node's own; CMN_EBUSY: a replacement in progress), registered as
 * ClusterNode ("Server Certificate"), then installed: the .pfx, sealed under the master key, in
 * the replicated state, which every node takes as soon as it applies it, or when it comes back
 * (node_replacement_watch); cb gets 0 once the install is committed, or the error. */
typedef void (*node_replace_cb)(void *ctx, int status, const char *msg);
int node_replace_cluster(struct node *n, const struct node_rotate_req *req, bool immediately,
                         node_replace_cb cb, void *ctx, char *errmsg) CMN_MUST_CHECK;
/* RavenDB's refresh: Security.Certificate.Path read again; a certificate other than the one in
 * use (the file was overwritten) is put in place as node_rotate does. */
int node_refresh_identity(struct node *n, node_rotate_cb cb, void *ctx,
                          char *errmsg) CMN_MUST_CHECK;
/* From the duty timer: switches this node to the certificate of the replacement in progress,
 * or commits why it cannot (replacement/status shows it). */
void node_replacement_watch(struct node *n);

/* An HTTPS GET to another node (node/fetch.c). cb gets status 0 and the answer, or an error and
 * a message; peer is the certificate the node presented (borrowed for the call). */
typedef void (*node_fetch_cb)(void *ctx, int status, const char *msg, X509 *peer, int http_status,
                              const char *body, size_t len);
int node_fetch(struct node *n, const char *url, const char *path, node_fetch_cb cb, void *ctx,
               char *errmsg) CMN_MUST_CHECK;

#endif
