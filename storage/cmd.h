/* The Raft commands of the trust state: [u8 type][msgpack map], zero-padded to a multiple of
 * 8 bytes, with a format version and the client's request id. Decoding is strict: entries come
 * from the log of every node, so a bad one must be an error, never a crash or a partial read. */
#ifndef CORVID_STORAGE_CMD_H
#define CORVID_STORAGE_CMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"
#include "storage/model.h"

#define KV_CMD_VERSION 1
#define KV_CMD_MAX     (4u * 1024 * 1024) /* largest encoded command */
#define KV_RID_MAX     256                /* request id length */
#define KV_DELETE_MAX  1024               /* thumbprints in one delete */

enum kv_cmd_type {
    KV_CMD_PUT_CERTS = 1,      /* register one certificate or a collection (primary first) */
    KV_CMD_EDIT_CERT = 2,      /* name, clearance, permissions, 2FA key */
    KV_CMD_DELETE_CERTS = 3,   /* delete = revoke; a primary takes its secondaries along */
    KV_CMD_PURGE_EXPIRED = 4,  /* every primary with NotAfter before the command's time */
    KV_CMD_SET_ISSUING_CA = 5, /* at bootstrap */
    KV_CMD_PUT_NODE = 6,
    KV_CMD_REMOVE_NODE = 7,
    KV_CMD_REPLACE_INSTALL = 8, /* server-certificate replacement steps */
    KV_CMD_REPLACE_RECEIVED = 9,
    KV_CMD_REPLACE_REPLACED = 10,
    KV_CMD_AUDIT = 11,       /* an event for the replicated audit trail */
    KV_CMD_REFRESH_CRL = 12, /* the leader re-issues the CRL (a new number and thisUpdate) */
    /* Two-factor authentication (POST and DELETE /authentication/2fa): the proposer checked
     * the code against the certificate's key; apply decides replay and the rate limit. */
    KV_CMD_TWOFA_LOGIN = 13,   /* a right code: a session, unless replayed or rate-limited */
    KV_CMD_TWOFA_FAIL = 14,    /* a wrong code, counted against the limit */
    KV_CMD_TWOFA_LOGOUT = 15,  /* ends the session everywhere */
    KV_CMD_RESEAL_TOTP = 16,   /* a TOTP key sealed again under the current master key */
    KV_CMD_REPLACE_RESET = 17, /* forget the replacement in progress */
};
#define KV_CMD_TYPE_MAX 17

const char *kv_cmd_type_name(int type);

/* A decoded command. Everything it points to is owned by it: release with kv_cmd_fini. The
 * proposer fixes every time, decision input and signature; apply never reads a clock. */
struct kv_cmd {
    enum kv_cmd_type type;
    char *request_id;                  /* raft-request-id, NULL when none */
    int64_t time_ms;                   /* the proposer's clock */
    char actor[KV_THUMB_LEN + 1];      /* caller's thumbprint (lower-case) or "" for the system */
    enum kv_clearance actor_clearance; /* as the proposer authenticated the caller */
    /* The caller authenticated by its registration: apply then reads its clearance from the
     * state it applies to (a downgrade or revocation the proposer had not applied yet counts),
     * and refuses the command when the registration is gone. Otherwise (the node's own
     * certificate, a well-known admin certificate or issuer: configuration, not state) the
     * proposer's actor_clearance stands. */
    bool actor_registered;
    union {
        struct {
            struct kv_cert *certs; /* certs[0] is the primary of a collection */
            size_t n;
            bool same_pkph; /* keep only the 5 newest registrations with this pinning hash */
        } put;
        struct {
            char thumbprint[KV_THUMB_LEN + 1];
            char *name;
            enum kv_clearance clearance;
            struct kv_perm *perms;
            size_t n_perms;
            char *twofa_key;   /* NULL: keep the current one */
            bool delete_twofa; /* ?deleteTwoFactorConfiguration=true */
        } edit;
        struct {
            char (*thumbprints)[KV_THUMB_LEN + 1];
            size_t n;
            int reason; /* RFC 5280 CRLReason for the CRL */
        } del;
        struct kv_issuing_ca set_ca;
        struct kv_node node;           /* PUT_NODE; REMOVE_NODE uses node.tag only */
        struct kv_replacement replace; /* INSTALL: pfx, thumbprints, flag */
        /* RECEIVED / REPLACED by node `tag` for certificate `thumbprint`. REPLACED also ends a
         * node's own rotation (no replacement in progress): its node record takes the
         * thumbprint and its old certificate is retired. RECEIVED with a note: why the node
         * cannot switch yet, for replacement/status. */
        struct {
            char thumbprint[KV_THUMB_LEN + 1];
            char tag[KV_TAG_MAX + 1];
            char *note; /* NULL when none */
        } confirm;
        struct {
            char *event;
        } audit;
        struct {
            char thumbprint[KV_THUMB_LEN + 1]; /* the caller's own: a certificate logs itself in */
            uint64_t step;                     /* LOGIN: the TOTP step of the code */
            int64_t expires_ms;                /* LOGIN: the session's end */
            bool has_limits;
            uint8_t cookie_hash[KV_2FA_COOKIE_HASH];
        } twofa;
        struct {
            char thumbprint[KV_THUMB_LEN + 1];
            char *old_key; /* the stored form it replaces (applied only if still stored) */
            char *new_key;
        } reseal;
    } u;
};

/* Initialises an empty command of a type (for building one to encode). */
void kv_cmd_init(struct kv_cmd *c, enum kv_cmd_type type);
void kv_cmd_fini(struct kv_cmd *c);

/* Encodes into out (appended); the result's length is a multiple of 8. */
int kv_cmd_encode(const struct kv_cmd *c, struct cmn_buf *out, char *errmsg) CMN_MUST_CHECK;

/* Decodes one entry. Errors: CMN_ETRUNCATED, CMN_ETOOBIG, CMN_EUNSUPPORTED (unknown type or
 * version), CMN_EMALFORMED (anything else); on error *out holds nothing to free. */
int kv_cmd_decode(const void *p, size_t len, struct kv_cmd *out, char *errmsg) CMN_MUST_CHECK;
/* The same for the envelope only (type, request id, time, actor), checked as kv_cmd_decode
 * checks it; the body is left unread (out->u is empty). Release with kv_cmd_fini. */
int kv_cmd_decode_head(const void *p, size_t len, struct kv_cmd *out, char *errmsg) CMN_MUST_CHECK;

#endif
