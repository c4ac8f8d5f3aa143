/* Client-certificate authentication and route authorization. */
#include "node/auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "common/env.h"
#include "common/log.h"
#include "node/node.h"

void node_auth_free(struct node_auth *a)
{
    if (a == NULL)
        return;
    kv_cert_fini(&a->def);
    free(a);
}

static bool issued_by_well_known(struct node *n, X509 *peer, char *label, size_t cap)
{
    for (size_t i = 0; i < node_admin_issuers(n)->n; i++) {
        X509_STORE *store = X509_STORE_new();
        X509_STORE_CTX *ctx = X509_STORE_CTX_new();
        bool ok = false;
        if (store && ctx && X509_STORE_add_cert(store, node_admin_issuers(n)->v[i]) == 1 &&
            X509_STORE_CTX_init(ctx, store, peer, NULL) == 1) {
            X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_PARTIAL_CHAIN);
            ok = X509_verify_cert(ctx) == 1;
        }
        X509_STORE_CTX_free(ctx);
        X509_STORE_free(store);
        if (ok) {
            char tp[CA_THUMBPRINT_SIZE] = "";
            CMN_IGNORE(ca_thumbprint(node_admin_issuers(n)->v[i], tp));
            snprintf(label, cap, "Well Known Issuer Certificate: %s", tp);
            return true;
        }
    }
    return false;
}

/* The issuer key behind a renewal: the pinning-hash fallback accepts a certificate only when
 * its signature and the stored certificate's verify under the same issuing key (the cluster CA
 * or a configured well-known issuer). Anything the key's holder can make alone (self-signed, or
 * an Authority Key Identifier copied from the stored certificate) proves nothing. */
static bool same_issuer_key(struct node *n, X509 *peer, const struct kv_cert *stored)
{
    X509 *old = NULL;
    char errmsg[CMN_ERRMSG_SIZE] = "";
    if (ca_cert_from_der(stored->der, stored->der_len, &old, errmsg) != 0) {
        CMN_WARN("HTTP-AUTH", "registration %s: %s", stored->thumbprint, errmsg);
        return false;
    }
    struct node_cluster_cas cas;
    if (node_cluster_cas_get(n, &cas, errmsg) != 0) {
        CMN_WARN("HTTP-AUTH", "registration %s: %s", stored->thumbprint, errmsg);
        X509_free(old);
        return false; /* fail closed */
    }
    bool ok = false;
    for (size_t i = 0; !ok && i < 2; i++)
        ok = cas.cert[i] && ca_issued_by(peer, cas.cert[i], NULL) == 0 &&
             ca_issued_by(old, cas.cert[i], NULL) == 0;
    for (size_t i = 0; !ok && i < node_admin_issuers(n)->n; i++)
        ok = ca_issued_by(peer, node_admin_issuers(n)->v[i], NULL) == 0 &&
             ca_issued_by(old, node_admin_issuers(n)->v[i], NULL) == 0;
    node_cluster_cas_fini(&cas);
    X509_free(old);
    return ok;
}

static void renew_done(void *ctx, int status, const struct kv_result *res, const char *errmsg)
{
    (void)ctx;
    if (status != 0)
        CMN_WARN("HTTP-AUTH", "registering a renewed certificate failed: %s", errmsg);
    else if (res->rejected)
        CMN_WARN("HTTP-AUTH", "renewed certificate refused: %s", res->reason);
}

/* The registration of a renewal: everything of the one it renews (name, clearance,
 * permissions, two-factor key, collection), with the renewal's own identity. */
static int renewal_record(struct node *n, X509 *peer, const struct kv_cert *like,
                          struct kv_cert *out)
{
    struct kv_cert id;
    char errmsg[CMN_ERRMSG_SIZE];
    int rv = node_cert_record(n, peer, like->name, like->clearance, &id, errmsg);
    if (rv != 0)
        return rv;
    rv = kv_cert_copy(out, like);
    if (rv == 0) {
        memcpy(out->thumbprint, id.thumbprint, sizeof out->thumbprint);
        memcpy(out->serial, id.serial, sizeof out->serial);
        out->not_before = id.not_before;
        out->not_after = id.not_after;
        out->registered_ms = id.registered_ms;
        out->ca_issued = id.ca_issued;
        free(out->der);
        out->der = id.der;
        out->der_len = id.der_len;
        id.der = NULL;
        /* a renewal is a registration of its own, not a member of the old collection */
        out->primary[0] = '\0';
        free(out->secondaries);
        out->secondaries = NULL;
        out->n_secondaries = 0;
    } else {
        kv_cert_fini(out);
    }
    kv_cert_fini(&id);
    return rv;
}

void node_auth_register_renewal(struct node *n, const struct node_auth *a)
{
    const struct kv_cert *rec = &a->def;
    char errmsg[CMN_ERRMSG_SIZE] = "out of memory";
    struct kv_cmd cmd;
    kv_cmd_init(&cmd, KV_CMD_PUT_CERTS);
    cmd.u.put.certs = malloc(sizeof *rec);
    if (cmd.u.put.certs == NULL) {
        renew_done(NULL, CMN_ENOMEM, NULL, errmsg);
        return;
    }
    if (kv_cert_copy(cmd.u.put.certs, rec) != 0) {
        kv_cert_fini(cmd.u.put.certs);
        free(cmd.u.put.certs);
        renew_done(NULL, CMN_ENOMEM, NULL, errmsg);
        return;
    }
    cmd.u.put.n = 1;
    cmd.u.put.same_pkph = true;
    memcpy(cmd.actor, node_thumb(n), sizeof cmd.actor);
    cmd.actor_clearance = KV_CL_CLUSTER_NODE;
    if (node_propose(n, &cmd, renew_done, NULL, errmsg) != 0)
        renew_done(NULL, CMN_EIO, NULL, errmsg);
}

/* The pinning-hash fallback: an unregistered certificate with the key pair of a registration
 * that is current (not expired, not revoked) and issued under the same issuer key is that
 * registration renewed. Fills a->def with the renewal's registration (a->renewal). */
static bool renewal_of(struct node *n, X509 *peer, const struct ca_ident *id, int64_t now,
                       struct node_auth *a)
{
    struct kv_cert *same = NULL;
    size_t n_same = 0;
    char errmsg[CMN_ERRMSG_SIZE] = "";
    if (kv_cert_by_pkph(node_kv(n), id->pkph, &same, &n_same, errmsg) != 0) {
        CMN_WARN("HTTP-AUTH", "%s refused: %s", a->label, errmsg); /* fail closed */
        return false;
    }
    if (n_same == 0)
        return false;
    a->status = AUTH_UNFAMILIAR_ISSUER;
    bool adopted = false;
    for (size_t i = 0; i < n_same && !adopted; i++) { /* newest first */
        int64_t early_ms;
        if (same[i].not_after < now || same[i].not_before > now ||
            node_revoked_early(n, &same[i], &early_ms) || !same_issuer_key(n, peer, &same[i]))
            continue;
        if (renewal_record(n, peer, &same[i], &a->def) != 0) {
            memset(&a->def, 0, sizeof a->def);
            a->status = AUTH_UNFAMILIAR; /* fail closed */
            break;
        }
        a->renewal = true;
        CMN_INFO("HTTP-AUTH", "allowing %s as a renewal of %s (the same key pair and issuer)",
                 a->thumb_upper, same[i].thumbprint);
        adopted = true;
    }
    kv_cert_free_array(same, n_same);
    return adopted;
}

void node_auth_compute(struct node *n, X509 *peer, int64_t now, struct node_auth *a)
{
    uint64_t last_used = a->last_used_ms;
    kv_cert_fini(&a->def);
    memset(a, 0, sizeof *a);
    a->last_used_ms = last_used;
    a->gen = node_trust_gen(n);
    if (peer == NULL) {
        a->status = AUTH_NO_CERT;
        return;
    }
    struct ca_ident id;
    char errmsg[CMN_ERRMSG_SIZE] = "";
    if (ca_ident_get(peer, &id, errmsg) != 0) {
        CMN_DEBUG("HTTP-AUTH", "a client certificate refused: %s", errmsg);
        a->status = AUTH_UNFAMILIAR;
        return;
    }
    memcpy(a->thumb_upper, id.thumbprint, sizeof a->thumb_upper);
    memcpy(a->thumb, id.thumbprint, sizeof a->thumb);
    cmn_ascii_lower(a->thumb);
    a->not_before = id.not_before;
    a->not_after = id.not_after;
    struct cmn_buf subj;
    cmn_buf_init(&subj, false);
    CMN_IGNORE(ca_subject_str(peer, &subj));
    snprintf(a->label, sizeof a->label, "%s (Thumbprint: %s)",
             subj.data ? (const char *)subj.data : "?", id.thumbprint);
    cmn_buf_fini(&subj);
    if (id.not_after < now) {
        a->status = AUTH_EXPIRED;
        return;
    }
    if (id.not_before > now) {
        a->status = AUTH_NOT_YET_VALID;
        return;
    }
    if (strcmp(a->thumb, node_thumb(n)) == 0) {
        a->status = AUTH_CLUSTER_ADMIN;
        snprintf(a->source, sizeof a->source, "Server Certificate");
        return;
    }
    for (size_t i = 0; i < node_config(n)->n_admin_thumbprints; i++) {
        if (strcasecmp(node_config(n)->admin_thumbprints[i], a->thumb) == 0) {
            a->status = AUTH_CLUSTER_ADMIN;
            snprintf(a->source, sizeof a->source, "Well Known Admin Certificate");
            return;
        }
    }
    if (issued_by_well_known(n, peer, a->source, sizeof a->source)) {
        a->status = AUTH_CLUSTER_ADMIN;
        return;
    }
    char why[CMN_ERRMSG_SIZE] = "";
    int rv = kv_cert_get(node_kv(n), a->thumb, &a->def, why);
    if (rv != 0) {
        memset(&a->def, 0, sizeof a->def);
        a->status = AUTH_UNFAMILIAR;
        if (rv != CMN_ENOTFOUND) { /* fail closed: the trust state could not be read */
            CMN_ERROR("HTTP-AUTH", "refusing %s: cannot read its registration: %s", a->thumb_upper,
                      why);
            return;
        }
        struct kv_revoked rev;
        rv = kv_revoked_get(node_kv(n), id.serial, &rev, why);
        if (rv == 0 && strcmp(rev.thumbprint, a->thumb) == 0) {
            a->status = AUTH_REVOKED;
            a->revoked_ms = rev.revoked_ms;
            return;
        }
        if (rv != 0 && rv != CMN_ENOTFOUND) {
            CMN_ERROR("HTTP-AUTH", "refusing %s: cannot read the revocations: %s", a->thumb_upper,
                      why);
            return;
        }
        if (!renewal_of(n, peer, &id, now, a))
            return;
    }
    if (node_revoked_early(n, &a->def, &a->revoked_ms)) {
        /* as once applied: no registration; a certificate of the cluster CA is revoked, any
         * other unknown */
        a->status = a->def.ca_issued ? AUTH_REVOKED : AUTH_UNFAMILIAR;
        kv_cert_fini(&a->def);
        memset(&a->def, 0, sizeof a->def);
        return;
    }
    a->registered = true;
    snprintf(a->source, sizeof a->source, "Registered");
    if (a->def.twofa_key != NULL) {
        /* Registered with a TOTP key: 428 until a session (POST /authentication/2fa) holds. */
        struct kv_twofa t;
        rv = kv_twofa_get(node_kv(n), a->thumb, &t, why);
        if (rv != 0 && rv != CMN_ENOTFOUND) /* fail closed */
            CMN_ERROR("HTTP-AUTH", "refusing %s: cannot read its two-factor session: %s",
                      a->thumb_upper, why);
        if (rv != 0 || t.expires_ms <= now * 1000 || node_logged_out_early(n, a->thumb)) {
            a->status = AUTH_TWO_FACTOR;
            return;
        }
        a->twofa_expires_ms = t.expires_ms;
        a->twofa_limits = t.has_limits;
        memcpy(a->twofa_cookie, t.cookie_hash, sizeof a->twofa_cookie);
    }
    switch (a->def.clearance) {
    case KV_CL_CLUSTER_ADMIN:
    case KV_CL_CLUSTER_NODE:
        a->status = AUTH_CLUSTER_ADMIN;
        break;
    case KV_CL_OPERATOR:
        a->status = AUTH_OPERATOR;
        break;
    default:
        a->status = AUTH_ALLOWED;
        break;
    }
}

enum kv_clearance node_auth_clearance(const struct node_auth *a)
{
    switch (a->status) {
    case AUTH_CLUSTER_ADMIN:
        return a->registered && a->def.clearance == KV_CL_CLUSTER_NODE ? KV_CL_CLUSTER_NODE
                                                                       : KV_CL_CLUSTER_ADMIN;
    case AUTH_OPERATOR:
        return KV_CL_OPERATOR;
    case AUTH_ALLOWED:
        return KV_CL_VALID_USER;
    default:
        return KV_CL_UNAUTHENTICATED;
    }
}

static void long_date(int64_t t, char *out, size_t cap)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, cap, "%A, %B %e, %Y", &tm);
}

static const char *suffix(enum route_need need)
{
    return need == NEED_CLUSTER_ADMIN ? " ClusterAdmin access is required but not given to this "
                                        "certificate"
           : need == NEED_OPERATOR    ? " Operator/ClusterAdmin access is required but not given "
                                        "to this certificate"
                                      : "";
}

int node_auth_cookie_hash(const char *cookie, uint8_t out[KV_2FA_COOKIE_HASH])
{
    unsigned len = 0;
    return EVP_Digest(cookie, strlen(cookie), out, &len, EVP_sha256(), NULL) == 1 ? 0 : CMN_ECRYPTO;
}

/* RavenDB's 428, and why when the session exists but this request is not in it ("" else). */
static void refuse_two_factor(struct http_request *req, const struct node_auth *a, const char *why)
{
    http_respond_error(
        req, 428, "InvalidAuth",
        "The supplied client certificate '%s' requires two factor authorization "
        "to be valid. Please POST the relevant TOTP value to /authentication/2fa%s%s",
        a->label, why[0] ? ". " : "", why);
}

/* The request's part of a two-factor session: not expired, and the cookie when it has limits
 * (compared by digest, in constant time). */
static bool twofa_request_ok(struct http_request *req, const struct node_auth *a)
{
    const char *why = NULL;
    char cookie[128];
    if (cmn_now_ms(&cmn_clock_system) >= a->twofa_expires_ms) {
        why = "Its two-factor session has expired.";
    } else if (a->twofa_limits) {
        uint8_t h[KV_2FA_COOKIE_HASH];
        int rc = http_cookie(req, AUTH_2FA_COOKIE, cookie, sizeof cookie);
        if (rc != 1)
            why = "Missing the '" AUTH_2FA_COOKIE "' in the request";
        else if (node_auth_cookie_hash(cookie, h) != 0 ||
                 CRYPTO_memcmp(h, a->twofa_cookie, sizeof h) != 0)
            why = "Expected cookie value does not match provided value";
        OPENSSL_cleanse(cookie, sizeof cookie);
    }
    if (why == NULL)
        return true;
    refuse_two_factor(req, a, why);
    return false;
}

bool node_auth_check(struct node *n, struct http_request *req, struct node_auth *a,
                     enum route_need need)
{
    if (need == NEED_NONE)
        return true;
    if (a->twofa_expires_ms != 0 && !twofa_request_ok(req, a))
        return false;
    char date[64];
    switch (a->status) {
    case AUTH_CLUSTER_ADMIN:
        return true;
    case AUTH_OPERATOR:
        if (need != NEED_CLUSTER_ADMIN)
            return true;
        http_respond_error(req, 403, "InvalidAuth",
                           "Insufficient security clearance to access the server using provided "
                           "client certificate '%s'.%s",
                           a->label, suffix(need));
        return false;
    case AUTH_ALLOWED:
        if (need == NEED_VALID_USER)
            return true;
        http_respond_error(req, 403, "InvalidAuth",
                           "Could not authorize access to the server using provided client "
                           "certificate '%s'.%s",
                           a->label, suffix(need));
        return false;
    case AUTH_NO_CERT:
        http_respond_error(req, 403, "InvalidAuth",
                           "This server requires client certificate for authentication, but none "
                           "was provided by the client. Did you forget to install the "
                           "certificate?");
        return false;
    case AUTH_EXPIRED:
        long_date(a->not_after, date, sizeof date);
        http_respond_error(req, 403, "InvalidAuth",
                           "The supplied client certificate '%s' has expired on %s. Please "
                           "contact your system administrator in order to obtain a new one.",
                           a->label, date);
        return false;
    case AUTH_NOT_YET_VALID:
        long_date(a->not_before, date, sizeof date);
        http_respond_error(req, 403, "InvalidAuth",
                           "The supplied client certificate '%s' cannot be used before %s",
                           a->label, date);
        return false;
    case AUTH_REVOKED:
        long_date(a->revoked_ms / 1000, date, sizeof date);
        http_close_after(req);
        http_respond_error(req, 403, "InvalidAuth",
                           "The supplied client certificate '%s' was revoked on %s.", a->label,
                           date);
        return false;
    case AUTH_UNFAMILIAR_ISSUER:
        http_respond_error(req, 403, "InvalidAuth",
                           "The supplied client certificate '%s' is unknown to the server but has "
                           "a known Public Key Pinning Hash. Will not use it to authenticate "
                           "because the issuer is unknown.",
                           a->label);
        return false;
    case AUTH_TWO_FACTOR:
        refuse_two_factor(req, a, "");
        return false;
    default:
        http_respond_error(req, 403, "InvalidAuth",
                           "The supplied client certificate '%s' is unknown to the server. In "
                           "order to register your certificate please contact your system "
                           "administrator.",
                           a->label);
        return false;
    }
    (void)n;
}
