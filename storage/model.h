/* The records of the trust state (certificates, nodes, issuing CA, revocations, audit) and their
 * msgpack form, shared by the command codec and the RocksDB store. No I/O. */
#ifndef CORVID_STORAGE_MODEL_H
#define CORVID_STORAGE_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "common/buf.h"
#include "common/err.h"

#define KV_THUMB_LEN      40   /* SHA-1 hex */
#define KV_PKPH_MAX       64   /* base64 of SHA-256 is 44 */
#define KV_SERIAL_MAX     128  /* hex of a serial number of up to 64 bytes */
#define KV_TAG_MAX        4    /* node tags: 1..4 upper-case letters */
#define KV_NAME_MAX       1024 /* certificate name */
#define KV_URL_MAX        512
#define KV_DER_MAX        (64 * 1024)
#define KV_PERMS_MAX      4096 /* databases per certificate */
#define KV_COLLECTION_MAX 256

/* RavenDB's SecurityClearance, in RavenDB's numeric order. */
enum kv_clearance {
    KV_CL_UNAUTHENTICATED = 0,
    KV_CL_CLUSTER_ADMIN = 1,
    KV_CL_CLUSTER_NODE = 2,
    KV_CL_OPERATOR = 3,
    KV_CL_VALID_USER = 4,
};
#define KV_CL_COUNT 5

/* RavenDB's DatabaseAccess. */
enum kv_access { KV_ACC_READ_WRITE = 0, KV_ACC_ADMIN = 1, KV_ACC_READ = 2 };
#define KV_ACC_COUNT 3

/* RavenDB's JSON names ("ClusterAdmin", "ValidUser", ...); parse is exact-case like .NET enums. */
const char *kv_clearance_name(enum kv_clearance c);
int kv_clearance_parse(const char *s, enum kv_clearance *out) CMN_MUST_CHECK;
const char *kv_access_name(enum kv_access a);
int kv_access_parse(const char *s, enum kv_access *out) CMN_MUST_CHECK;
/* ClusterAdmin and ClusterNode: what an Operator may never create, edit, edit into or delete. */
static inline bool kv_clearance_is_admin(enum kv_clearance c)
{
    return c == KV_CL_CLUSTER_ADMIN || c == KV_CL_CLUSTER_NODE;
}

struct kv_perm {
    char *db; /* owned */
    enum kv_access access;
};

/* A registered certificate (RavenDB's CertificateDefinition as stored). All pointers owned. */
struct kv_cert {
    char thumbprint[KV_THUMB_LEN + 1]; /* lower-case hex: the storage key */
    char *name;
    enum kv_clearance clearance;
    struct kv_perm *perms;
    size_t n_perms;
    uint8_t *der; /* public certificate only, never a private key */
    size_t der_len;
    char pkph[KV_PKPH_MAX + 1];     /* base64(SHA-256(SubjectPublicKeyInfo)) */
    char serial[KV_SERIAL_MAX + 1]; /* upper-case hex */
    int64_t not_before;             /* unix seconds */
    int64_t not_after;
    bool ca_issued;                        /* issued by the cluster CA: revocation enters the CRL */
    char primary[KV_THUMB_LEN + 1];        /* "" for a primary, else the collection's primary */
    char (*secondaries)[KV_THUMB_LEN + 1]; /* a primary's collection members */
    size_t n_secondaries;
    char *twofa_key; /* base32 TOTP secret or NULL; a secret: never logged, never returned */
    int64_t registered_ms;
};

/* A cluster node. */
struct kv_node {
    char tag[KV_TAG_MAX + 1];
    char *server_url; /* owned */
    char *tcp_url;    /* owned */
    char thumbprint[KV_THUMB_LEN + 1];
};

/* The cluster's issuing CA: certificate, private key and chain up to the root. */
struct kv_issuing_ca {
    uint8_t *cert_der;
    size_t cert_len;
    /* The DER private key sealed under the cluster master key by the proposer (ca/seal.h);
     * storage never opens it. Kept in a wiping buffer all the same. */
    struct cmn_buf key_der;
    uint8_t **chain_der; /* issuer first, root last */
    size_t *chain_len;
    size_t n_chain;
};

/* A revoked serial, for the CRL and OCSP. */
struct kv_revoked {
    char serial[KV_SERIAL_MAX + 1];
    char thumbprint[KV_THUMB_LEN + 1];
    int64_t revoked_ms;
    int reason; /* RFC 5280 CRLReason */
};

/* An in-progress server-certificate replacement (RavenDB's server/cert document). Every node
 * switches to the new certificate as soon as it holds it (old and new are both registered as
 * ClusterNode meanwhile) and confirms; each confirmation retires that node's old certificate
 * unless another node still uses it, and the last one ends the replacement. */
#define KV_REPL_NOTE_MAX 320 /* "TAG: why it has not switched", NUL included */
struct kv_replacement {
    /* secret: the new certificate with its key, sealed under the master key by the proposer
     * (storage never opens it) */
    struct cmn_buf pfx;
    char thumbprint[KV_THUMB_LEN + 1];
    char old_thumbprint[KV_THUMB_LEN + 1]; /* the proposer's certificate when it began */
    bool replace_immediately;
    int64_t started_ms;
    char (*confirmed)[KV_TAG_MAX + 1]; /* tags that confirmed receipt */
    size_t n_confirmed;
    char (*replaced)[KV_TAG_MAX + 1]; /* tags that confirmed the swap */
    size_t n_replaced;
    char (*notes)[KV_REPL_NOTE_MAX]; /* the latest problem each node reported, one per tag */
    size_t n_notes;
};

/* A certificate's two-factor state, replicated so that one login holds on every node and
 * across restarts (RavenDB keeps it in one node's memory). Keyed by the certificate's
 * thumbprint; gone with its registration, or when its TOTP key changes. */
#define KV_2FA_FAILS_MAX      5 /* wrong codes per certificate within KV_2FA_FAIL_WINDOW_MS */
#define KV_2FA_FAIL_WINDOW_MS 60000
#define KV_2FA_COOKIE_HASH    32 /* SHA-256 */
struct kv_twofa {
    char thumbprint[KV_THUMB_LEN + 1];
    int64_t expires_ms; /* the session's end, fixed by the node that checked the code; 0: none */
    bool has_limits;    /* only requests with the cookie (a browser's "only this browser") */
    uint8_t cookie_hash[KV_2FA_COOKIE_HASH]; /* SHA-256 of the cookie: never the cookie */
    uint64_t last_step;                      /* the newest TOTP step used: none twice */
    int64_t fails_ms[KV_2FA_FAILS_MAX];      /* the latest wrong codes, newest first; 0: none */
};

/* One entry of the replicated audit trail: every command, applied or rejected. */
struct kv_audit {
    uint64_t index;
    int64_t time_ms;
    int type; /* enum kv_cmd_type */
    char actor[KV_THUMB_LEN + 1];
    char *request_id; /* owned, may be NULL */
    bool rejected;
    char *summary; /* owned: what changed, or why it was rejected */
};

void kv_cert_fini(struct kv_cert *c);
void kv_cert_free_array(struct kv_cert *certs, size_t n);
void kv_node_fini(struct kv_node *n);
void kv_issuing_ca_fini(struct kv_issuing_ca *ca);
void kv_replacement_fini(struct kv_replacement *r);
void kv_audit_fini(struct kv_audit *a);
/* Deep copy; dst must be uninitialised. */
int kv_cert_copy(struct kv_cert *dst, const struct kv_cert *src) CMN_MUST_CHECK;
/* A copy of n permissions in a new array (*out and *n_out, the caller's: kv_perms_free; NULL
 * and 0 for none). CMN_ENOMEM leaves nothing to free. */
int kv_perms_copy(const struct kv_perm *src, size_t n, struct kv_perm **out,
                  size_t *n_out) CMN_MUST_CHECK;
void kv_perms_free(struct kv_perm *perms, size_t n);

/* Validates a certificate record as the state machine requires (RavenDB's Raft-side checks:
 * Certificate, Thumbprint, PublicKeyPinningHash, Name and NotAfter are mandatory; the thumbprint
 * must be the SHA-1 of the DER). */
int kv_cert_validate(const struct kv_cert *c, char *errmsg) CMN_MUST_CHECK;

/* Lower-cases a thumbprint given in any case into out; CMN_EINVALID unless 40 hex digits. */
int kv_thumb_norm(const char *in, char out[KV_THUMB_LEN + 1]) CMN_MUST_CHECK;

/* msgpack form of each record (a map with short string keys). Decoders are strict: unknown or
 * duplicate keys, wrong types and out-of-range sizes are errors; on error *out holds nothing. */
int kv_cert_pack(msgpack_packer *pk, const struct kv_cert *c) CMN_MUST_CHECK;
int kv_cert_unpack(const msgpack_object *o, struct kv_cert *out, char *errmsg) CMN_MUST_CHECK;
int kv_node_pack(msgpack_packer *pk, const struct kv_node *n) CMN_MUST_CHECK;
int kv_node_unpack(const msgpack_object *o, struct kv_node *out, char *errmsg) CMN_MUST_CHECK;
int kv_issuing_ca_pack(msgpack_packer *pk, const struct kv_issuing_ca *ca) CMN_MUST_CHECK;
int kv_issuing_ca_unpack(const msgpack_object *o, struct kv_issuing_ca *out,
                         char *errmsg) CMN_MUST_CHECK;
int kv_revoked_pack(msgpack_packer *pk, const struct kv_revoked *r) CMN_MUST_CHECK;
int kv_revoked_unpack(const msgpack_object *o, struct kv_revoked *out, char *errmsg) CMN_MUST_CHECK;
int kv_replacement_pack(msgpack_packer *pk, const struct kv_replacement *r) CMN_MUST_CHECK;
int kv_replacement_unpack(const msgpack_object *o, struct kv_replacement *out,
                          char *errmsg) CMN_MUST_CHECK;
/* How long from now (ms) t refuses codes: KV_2FA_FAILS_MAX wrong codes within the window
 * before now lock it until the oldest of them leaves the window; 0 when not locked. */
int64_t kv_twofa_locked_ms(const struct kv_twofa *t, int64_t now_ms);
int kv_twofa_pack(msgpack_packer *pk, const struct kv_twofa *t) CMN_MUST_CHECK;
int kv_twofa_unpack(const msgpack_object *o, struct kv_twofa *out, char *errmsg) CMN_MUST_CHECK;
int kv_audit_pack(msgpack_packer *pk, const struct kv_audit *a) CMN_MUST_CHECK;
int kv_audit_unpack(const msgpack_object *o, struct kv_audit *out, char *errmsg) CMN_MUST_CHECK;

/* Checks that bytes hold one msgpack value whose every container declares no more elements
 * than bytes remain and nests at most `max_depth` deep, before msgpack-c allocates for it.
 * *used gets the value's encoded length. */
int kv_mp_precheck(const uint8_t *p, size_t len, int max_depth, size_t *used) CMN_MUST_CHECK;

/* Unpacks exactly one value of a record stored by the store (precheck + msgpack_unpack_next);
 * the caller destroys `out`. Trailing bytes are an error. */
int kv_mp_unpack(const void *p, size_t len, msgpack_unpacked *out, char *errmsg) CMN_MUST_CHECK;

/* msgpack-c packer writing into a cmn_buf. */
void kv_packer_init(msgpack_packer *pk, struct cmn_buf *out);

#endif
