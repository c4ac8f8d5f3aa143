/* Who is calling: RavenDB's authentication of a client certificate (reference section 4.2, in
 * that order), cached per connection and recomputed whenever the trust state changed; and the
 * route check with RavenDB's refusal messages. */
#ifndef CORVID_NODE_AUTH_H
#define CORVID_NODE_AUTH_H

#include <stdbool.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "ca/ident.h"
#include "node/http.h"
#include "storage/cmd.h"
#include "storage/model.h"

struct node;

#define AUTH_2FA_COOKIE "2fa-cookie" /* RavenDB's name */

enum auth_status {
    AUTH_NO_CERT,
    AUTH_EXPIRED,
    AUTH_NOT_YET_VALID,
    AUTH_UNFAMILIAR,
    AUTH_UNFAMILIAR_ISSUER,
    AUTH_REVOKED,
    AUTH_TWO_FACTOR, /* registered with a TOTP key and no session */
    AUTH_ALLOWED,    /* ValidUser: its databases only */
    AUTH_OPERATOR,
    AUTH_CLUSTER_ADMIN,
};

/* What a route needs (RavenDB's AuthorizationStatus). */
enum route_need { NEED_NONE, NEED_VALID_USER, NEED_OPERATOR, NEED_CLUSTER_ADMIN };

struct node_auth {
    enum auth_status status;
    uint64_t gen;                   /* trust generation this was computed at */
    char thumb[CA_THUMBPRINT_SIZE]; /* lower case; "" without a certificate */
    char thumb_upper[CA_THUMBPRINT_SIZE];
    char label[300];    /* "CN=… (Thumbprint: …)" for messages */
    char source[128];   /* how it authenticated, for whoami */
    bool registered;    /* found in the trust state (directly or by pinning hash) */
    bool renewal;       /* allowed as a renewal not registered yet: def is its registration */
    struct kv_cert def; /* the registration when registered */
    int64_t not_before, not_after;
    int64_t revoked_ms;
    uint64_t last_used_ms; /* throttles the "last used" map */
    /* Registered with a TOTP key and in a session: its end, and whether each request must
     * carry the session's cookie (its SHA-256 here); node_auth_check enforces both. */
    int64_t twofa_expires_ms;
    bool twofa_limits;
    uint8_t twofa_cookie[KV_2FA_COOKIE_HASH];
};

/* Computes (or refreshes) a's status for the peer certificate at time now (seconds), from the
 * node's configuration and trust state only: it changes nothing. A certificate allowed as the
 * renewal of a registration (the same key pair and issuer) has a->renewal set and a->def
 * holding the registration to make: node_auth_register_renewal proposes it. */
void node_auth_compute(struct node *n, X509 *peer, int64_t now, struct node_auth *a);
/* Proposes a->def (a renewal) in the background; failures are logged. */
void node_auth_register_renewal(struct node *n, const struct node_auth *a);
void node_auth_free(struct node_auth *a);

/* Checks the caller against a route; on refusal answers the request (403 or 428) and returns
 * false. A two-factor session is checked on every request that needs more than NEED_NONE:
 * expired, or without its cookie, it is refused with 428. */
bool node_auth_check(struct node *n, struct http_request *req, struct node_auth *a,
                     enum route_need need);

/* The digest of a session cookie, as the session stores it (SHA-256): 0, or CMN_ECRYPTO. */
int node_auth_cookie_hash(const char *cookie, uint8_t out[KV_2FA_COOKIE_HASH]) CMN_MUST_CHECK;

/* The caller's effective clearance for the state machine's own checks. */
enum kv_clearance node_auth_clearance(const struct node_auth *a);

#endif
