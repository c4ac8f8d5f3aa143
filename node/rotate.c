/* This node's own certificate, changed with no downtime: rotated on request (POST
 * /admin/certificates/replace-node-cert), renewed from the cluster CA before it expires (the
 * duty timer), and recovered once expired (the admin channel's renewNodeCert).
 *
 * A rotation registers the new certificate as ClusterNode beside the old one (so that every
 * peer trusts both), writes it to Security.Certificate.Path, swaps it into the HTTPS, Raft
 * and fetch contexts (open connections finish on the old one, new handshakes use the new
 * one), then commits KV_CMD_REPLACE_REPLACED: the node record names the new certificate and
 * the old one is revoked as superseded, which closes the connections it still holds.
 * Everything that can fail is done before the file is written. A node that stops between
 * two steps finishes on its own: at the next start it loads the new file, and self_register
 * commits what is missing (the registration, then the switch). A recovery swaps first (the
 * peers refuse the expired certificate, so nothing can be committed before) and leaves both
 * steps to self_register; the peers take the new certificate meanwhile because the cluster CA
 * issued it for a node they know (node_peer_trust). */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ca/cert.h"
#include "ca/ident.h"
#include "ca/key.h"
#include "ca/pfx.h"
#include "ca/seal.h"
#include "ca/certfile.h"
#include "ca/tls.h"
#include "common/log.h"
#include "node/core.h"

struct node_rotation {
    struct node *n;
    EVP_PKEY *key;
    X509 *cert;
    struct ca_cert_list chain;
    char thumb[CA_THUMBPRINT_SIZE]; /* lower case */
    char old[CA_THUMBPRINT_SIZE];
    int64_t not_after;
    SSL_CTX *https, *raft, *fetch;
    struct cmn_buf pfx; /* what Security.Certificate.Path will hold */
    node_rotate_cb cb;
    void *ctx;
};

static void rot_free(struct node_rotation *r)
{
    EVP_PKEY_free(r->key);
    X509_free(r->cert);
    ca_cert_list_fini(&r->chain);
    SSL_CTX_free(r->https);
    SSL_CTX_free(r->raft);
    SSL_CTX_free(r->fetch);
    cmn_buf_fini(&r->pfx);
    free(r);
}

static void rot_finish(struct node_rotation *r, int status, const char *msg)
{
    struct node *n = r->n;
    struct node_rotate_result res = {.status = status, .not_after = r->not_after};
    memcpy(res.old_thumb, r->old, sizeof res.old_thumb);
    memcpy(res.new_thumb, r->thumb, sizeof res.new_thumb);
    snprintf(res.msg, sizeof res.msg, "%s", msg);
    if (status != 0)
        CMN_WARN("NODE-CERT", "node %s: certificate %s not put in place of %s: %s", n->cfg.tag,
                 r->thumb, r->old, msg);
    n->rotation = NULL;
    node_rotate_cb cb = r->cb;
    void *ctx = r->ctx;
    rot_free(r);
    if (cb)
        cb(ctx, &res);
}

/* The host this node's certificate names (SAN IP or DNS), from the current one. */
static int current_host(struct node *n, char *out, size_t cap, char *errmsg)
{
    struct ca_strlist sans;
    int rv = ca_sans(n->cert, &sans, errmsg);
    if (rv != 0)
        return rv;
    rv = cmn_fail(errmsg, CMN_EINVALID,
                  "the current certificate names no host (SAN IP or DNS) to certify again");
    for (size_t i = 0; i < sans.n && rv != 0; i++) {
        const char *s = sans.v[i];
        const char *h = strncmp(s, "IP:", 3) == 0    ? s + 3
                        : strncmp(s, "DNS:", 4) == 0 ? s + 4
                                                     : NULL;
        if (h && snprintf(out, cap, "%s", h) < (int)cap)
            rv = 0;
    }
    ca_strlist_fini(&sans);
    return rv;
}

/* A new key of the current key's type and a certificate for it from signer (the cluster CA:
 * chain its certificate first): the same host and node tag, valid as long as the current one
 * was (at least 2 x Security.Certificate.RenewBeforeDays), within the signer's validity. */
static int issue(struct node_rotation *r, const struct ca_signer *signer,
                 const struct ca_cert_list *chain, char *errmsg)
{
    struct node *n = r->n;
    enum ca_key_type kt;
    if (ca_key_type_of(n->key, &kt) != 0)
        kt = CA_KEY_EC_P256;
    char host[256], cn[64];
    int rv = current_host(n, host, sizeof host, errmsg);
    if (rv != 0)
        return rv;
    int64_t nb0, na0, now = cmn_now_ms(&cmn_clock_system) / 1000, nb, na;
    if (ca_validity(n->cert, &nb0, &na0) != 0)
        na0 = nb0 = 0;
    int64_t days = (na0 - nb0) / CA_DAY_SECS - CA_CLOCK_SKEW_SECS / CA_DAY_SECS;
    if (days < 2 * (int64_t)n->cfg.renew_before_days)
        days = 2 * (int64_t)n->cfg.renew_before_days;
    if (days < 1)
        days = 1;
    ca_validity_days(now, days, &nb, &na);
    int64_t snb, sna;
    if (ca_validity(signer->cert, &snb, &sna) != 0)
        return cmn_fail(errmsg, CMN_EINVALID, "the cluster CA has an invalid validity");
    if (na > sna)
        na = sna;
    if (nb < snb)
        nb = snb;
    if (na <= now)
        return cmn_fail(errmsg, CMN_EINVALID, "the cluster CA has expired: it cannot certify");
    snprintf(cn, sizeof cn, "Corvid Node %s", n->cfg.tag);
    if ((rv = ca_key_generate(kt, &r->key, errmsg)) != 0)
        return rv;
    struct ca_cert_req req = {.profile = CA_PROFILE_NODE,
                              .cn = cn,
                              .host = host,
                              .node_tag = n->cfg.tag,
                              .not_before = nb,
                              .not_after = na,
                              .subject_key = r->key};
    if ((rv = ca_cert_issue(&req, signer, &cmn_rng_system, &r->cert, errmsg)) != 0)
        return rv;
    for (size_t i = 0; rv == 0 && i < chain->n; i++)
        rv = ca_cert_list_add(&r->chain, chain->v[i]);
    return rv;
}

/* Checks the new certificate as Security.Certificate.Path would be checked at start (and
 * more: it must be valid now), then builds everything the switch needs. */
static int prepare(struct node_rotation *r, char *errmsg)
{
    struct node *n = r->n;
    struct ca_ident id;
    int rv = ca_ident_get(r->cert, &id, errmsg);
    if (rv != 0)
        return rv;
    int64_t now = cmn_now_ms(&cmn_clock_system) / 1000;
    if ((id.eku & (CA_EKU_SERVER | CA_EKU_ANY)) == 0)
        return cmn_fail(errmsg, CMN_EINVALID,
                        "the certificate lacks the serverAuth usage (1.3.6.1.5.5.7.3.1)");
    if ((id.eku & (CA_EKU_CLIENT | CA_EKU_ANY)) == 0)
        return cmn_fail(errmsg, CMN_EINVALID,
                        "the certificate lacks the clientAuth usage (1.3.6.1.5.5.7.3.2) that "
                        "nodes use to authenticate to each other");
    if (!ca_names_node(r->cert, n->cfg.tag))
        return cmn_fail(errmsg, CMN_EINVALID,
                        "the certificate names node '%s' (URI:urn:corvid:node:…), not node '%s'",
                        id.node_tag, n->cfg.tag);
    if (id.not_after <= now)
        return cmn_fail(errmsg, CMN_EINVALID, "the certificate expired");
    if (id.not_before > now)
        return cmn_fail(errmsg, CMN_EINVALID,
                        "the certificate is not valid yet (its NotBefore is in the future)");
    memcpy(r->thumb, id.thumbprint, sizeof r->thumb);
    cmn_ascii_lower(r->thumb);
    r->not_after = id.not_after;
    struct ca_tls_ident ti = {.cert = r->cert, .key = r->key, .chain = &r->chain};
    struct ca_tls_client_opts fo = {.trust = CA_TLS_TRUST_PINNED, .id = ti};
    struct ca_pfx_opts po = {CA_PFX_MODERN, NULL, 0};
    if ((rv = ca_tls_server_ctx(&ti, &r->https, errmsg)) != 0 ||
        (rv = ca_tls_peer_ctx(&ti, &r->raft, errmsg)) != 0 ||
        (rv = ca_tls_client_ctx(&fo, &r->fetch, errmsg)) != 0) {
        cmn_errctx(errmsg, "TLS setup");
        return rv;
    }
    rv = ca_pfx_build(r->key, r->cert, &r->chain, n->cfg.cert_password, &po, &r->pfx, errmsg);
    return rv;
}

/* Writes the new file beside the old one and renames it over: a crash leaves one or the
 * other, whole, owner-only. */
static int write_identity(struct node_rotation *r, char *errmsg)
{
    const char *path = r->n->cfg.cert_path;
    char tmp[4200], dir[4200];
    snprintf(tmp, sizeof tmp, "%s.new", path);
    snprintf(dir, sizeof dir, "%s", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return cmn_fail(errmsg, CMN_EIO,
                        "Cannot write certificate to %s, Corvid needs write permissions for "
                        "its folder: %s",
                        path, strerror(errno));
    bool ok = fchmod(fd, 0600) == 0;
    for (size_t off = 0; ok && off < r->pfx.len;) {
        ssize_t w = write(fd, r->pfx.data + off, r->pfx.len - off);
        ok = w > 0;
        off += ok ? (size_t)w : 0;
    }
    ok = ok && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    ok = ok && rename(tmp, path) == 0;
    if (!ok) {
        int e = errno;
        unlink(tmp);
        return cmn_fail(errmsg, CMN_EIO, "Cannot write certificate to %s: %s", path, strerror(e));
    }
    int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        CMN_IGNORE(fsync(dfd));
        close(dfd);
    }
    return 0;
}

/* Puts the new identity in place: the file, then every context. */
static int switch_identity(struct node_rotation *r, char *errmsg)
{
    struct node *n = r->n;
    int rv = write_identity(r, errmsg);
    if (rv != 0)
        return rv;
    rft_set_ssl_ctx(n->rft, r->raft);
    SSL_CTX_free(n->raft_ctx);
    n->raft_ctx = r->raft;
    r->raft = NULL;
    SSL_CTX_free(n->fetch_ctx);
    n->fetch_ctx = r->fetch;
    r->fetch = NULL;
    for (size_t i = 0; i < n->n_rooms; i++)
        if (n->rooms[i].ops->identity_changed) {
            SSL_CTX_up_ref(r->https);
            n->rooms[i].ops->identity_changed(n->rooms[i].room, r->https);
        }
    EVP_PKEY *k = n->key;
    X509 *c = n->cert;
    struct ca_cert_list ch = n->chain;
    n->key = r->key;
    n->cert = r->cert;
    n->chain = r->chain;
    memcpy(n->thumb, r->thumb, sizeof n->thumb);
    r->key = k;
    r->cert = c;
    r->chain = ch;
    n->expiry_next_ms = 0; /* node-info and the banner report the new expiry at once */
    CMN_INFO("NODE-CERT", "node %s now presents certificate %s (was %s) on new connections",
             n->cfg.tag, r->thumb, r->old);
    return 0;
}

static void replaced_done(void *ctx, int status, const struct kv_result *res, const char *errmsg)
{
    struct node_rotation *r = ctx;
    char msg[CMN_ERRMSG_SIZE];
    if (status == 0 && !res->rejected) {
        CMN_INFO("NODE-CERT", "node %s: certificate %s retired in favour of %s", r->n->cfg.tag,
                 r->old, r->thumb);
        rot_finish(r, 0, "");
        return;
    }
    snprintf(msg, sizeof msg,
             "node %s switched to certificate %s, but retiring %s is not committed yet (%s): "
             "the node retries on its own",
             r->n->cfg.tag, r->thumb, r->old, status != 0 ? errmsg : res->reason);
    rot_finish(r, status != 0 ? status : CMN_EDENIED, msg);
}

static void propose_replaced(struct node_rotation *r)
{
    struct node *n = r->n;
    struct kv_cmd cmd;
    char errmsg[CMN_ERRMSG_SIZE] = "";
    kv_cmd_init(&cmd, KV_CMD_REPLACE_REPLACED);
    memcpy(cmd.u.confirm.thumbprint, r->thumb, sizeof cmd.u.confirm.thumbprint);
    snprintf(cmd.u.confirm.tag, sizeof cmd.u.confirm.tag, "%s", n->cfg.tag);
    memcpy(cmd.actor, n->thumb, sizeof cmd.actor);
    cmd.actor_clearance = KV_CL_CLUSTER_NODE;
    int rv = node_propose(n, &cmd, replaced_done, r, errmsg);
    if (rv != 0) {
        struct kv_result none = {.rejected = false};
        replaced_done(r, rv, &none, errmsg);
    }
}

static void registered(void *ctx, int status, const struct kv_result *res, const char *errmsg)
{
    struct node_rotation *r = ctx;
    char msg[CMN_ERRMSG_SIZE] = "";
    if (status != 0 || res->rejected) {
        snprintf(msg, sizeof msg, "registering certificate %s: %s", r->thumb,
                 status != 0 ? errmsg : res->reason);
        rot_finish(r, status != 0 ? status : CMN_EDENIED, msg);
        return;
    }
    if (r->n->stopping) {
        rot_finish(r, CMN_EIO, "the node is stopping");
        return;
    }
    int rv = switch_identity(r, msg);
    if (rv != 0) {
        rot_finish(r, rv, msg);
        return;
    }
    propose_replaced(r);
}

static int propose_registration(struct node_rotation *r, char *errmsg)
{
    struct node *n = r->n;
    char name[64];
    snprintf(name, sizeof name, "Server Certificate for Node %s", n->cfg.tag);
    struct kv_cmd cmd;
    int rv = node_cert_put_cmd(n, r->cert, name, &cmd, errmsg);
    return rv != 0 ? rv : node_propose(n, &cmd, registered, r, errmsg);
}

int node_rotate(struct node *n, const struct node_rotate_req *req, node_rotate_cb cb, void *ctx,
                char *errmsg)
{
    if (n->rotation != NULL)
        return cmn_fail(errmsg, CMN_EEXISTS,
                        "node %s is already putting a new certificate in place: retry when it "
                        "is done",
                        n->cfg.tag);
    struct node_rotation *r = calloc(1, sizeof *r);
    if (r == NULL)
        return cmn_fail(errmsg, CMN_ENOMEM, "out of memory");
    r->n = n;
    r->cb = cb;
    r->ctx = ctx;
    ca_cert_list_init(&r->chain);
    cmn_buf_init(&r->pfx, true);
    memcpy(r->old, n->thumb, sizeof r->old);
    int rv = 0;
    if (req->cert != NULL) {
        r->cert = req->cert;
        X509_up_ref(r->cert);
        r->key = req->key;
        EVP_PKEY_up_ref(r->key);
        for (size_t i = 0; rv == 0 && req->chain && i < req->chain->n; i++)
            rv = ca_cert_list_add(&r->chain, req->chain->v[i]);
    } else if (req->signer != NULL) {
        rv = issue(r, req->signer, req->signer_chain, errmsg);
    } else {
        struct node_issuer is;
        rv = node_issuer_load(n, &is, errmsg);
        if (rv == 0) {
            struct ca_signer s = {.cert = is.cert, .key = is.key};
            rv = issue(r, &s, &is.chain, errmsg);
            node_issuer_fini(&is);
        }
    }
    if (rv == 0 && req->signer != NULL && !node_issued_by_cluster_ca(n, r->cert))
        rv = cmn_fail(errmsg, CMN_EINVALID,
                      "that CA is not this cluster's (the trust state's issuing CA or "
                      "Security.ClusterCA): the peers would not take its certificate");
    if (rv == 0)
        rv = prepare(r, errmsg);
    bool same = rv == 0 && strcmp(r->thumb, r->old) == 0; /* nothing to do */
    bool kept = false; /* r belongs to the steps in flight (freed by rot_finish) */
    if (rv == 0 && !same && req->recovery) {
        rv = switch_identity(r, errmsg);
    } else if (rv == 0 && !same) {
        n->rotation = r;
        kept = true;
        if (req->registered) {
            rv = switch_identity(r, errmsg);
            if (rv == 0)
                propose_replaced(r); /* may finish (and free r) at once */
        } else {
            rv = propose_registration(r, errmsg);
        }
        if (rv != 0) {
            n->rotation = NULL;
            kept = false;
        }
    }
    if (!kept) {
        if (rv == 0 && cb) {
            struct node_rotate_result res = {.not_after = r->not_after, .unchanged = same};
            memcpy(res.old_thumb, r->old, sizeof res.old_thumb);
            memcpy(res.new_thumb, r->thumb, sizeof res.new_thumb);
            cb(ctx, &res);
        }
        rot_free(r);
    }
    return rv;
}

/* ---- automatic renewal (the duty timer) ---- */

#define RENEW_RETRY_MS (60 * 1000)

static void renewed(void *ctx, const struct node_rotate_result *res)
{
    struct node *n = ctx;
    if (res->status != 0)
        n->renew_after_ms = cmn_now_ms(&cmn_clock_system) + RENEW_RETRY_MS;
    else
        CMN_INFO("NODE-CERT",
                 "node %s renewed its certificate from the cluster CA: %s, valid "
                 "until %lld (unix time)",
                 n->cfg.tag, res->new_thumb, (long long)res->not_after);
}

void node_renew_watch(struct node *n)
{
    int64_t now_ms = cmn_now_ms(&cmn_clock_system);
    if (n->cfg.renew_before_days == 0 || !n->serving || n->rotation != NULL ||
        now_ms < n->renew_after_ms)
        return;
    int64_t nb, na, now = now_ms / 1000;
    if (ca_validity(n->cert, &nb, &na) != 0)
        return;
    if (na - now > (int64_t)n->cfg.renew_before_days * CA_DAY_SECS)
        return;
    n->renew_after_ms = now_ms + RENEW_RETRY_MS;
    if (!node_issued_by_cluster_ca(n, n->cert)) {
        if (!n->renew_warned)
            CMN_WARN("NODE-CERT",
                     "node %s's certificate expires within Security.Certificate.RenewBeforeDays "
                     "(%u) but was not issued by the cluster CA: replace it yourself (POST "
                     "/admin/certificates/replace-node-cert?nodeTag=%s with a .pfx)",
                     n->cfg.tag, n->cfg.renew_before_days, n->cfg.tag);
        n->renew_warned = true;
        return;
    }
    X509 *ca = node_issuing_cert(n);
    int64_t cnb, cna;
    if (ca == NULL || ca_validity(ca, &cnb, &cna) != 0 || cna <= na + CA_DAY_SECS) {
        if (!n->renew_warned)
            CMN_WARN("NODE-CERT",
                     "node %s cannot renew its certificate: the cluster CA expires before a "
                     "renewed one would outlast it",
                     n->cfg.tag);
        n->renew_warned = true;
        return;
    }
    char errmsg[CMN_ERRMSG_SIZE] = "";
    struct node_rotate_req req = {0};
    CMN_INFO("NODE-CERT",
             "node %s's certificate expires in %lld s: renewing it from the cluster CA", n->cfg.tag,
             (long long)(na - now));
    if (node_rotate(n, &req, renewed, n, errmsg) != 0)
        CMN_WARN("NODE-CERT", "node %s cannot renew its certificate: %s", n->cfg.tag, errmsg);
}

/* ---- the cluster-wide replacement (RavenDB's replace-cluster-cert) ---- */

#define REPL_RETRY_MS (10 * 1000) /* a node that could not switch looks again */

struct cluster_job {
    struct node *n;
    struct kv_cmd install; /* proposed once the new certificate is registered */
    node_replace_cb cb;
    void *ctx;
};

static void cluster_finish(struct cluster_job *j, int status, const char *msg)
{
    kv_cmd_fini(&j->install);
    if (j->cb)
        j->cb(j->ctx, status, msg);
    free(j);
}

static void installed(void *ctx, int status, const struct kv_result *res, const char *errmsg)
{
    struct cluster_job *j = ctx;
    if (status == 0 && res->rejected)
        cluster_finish(j, CMN_EDENIED, res->reason);
    else
        cluster_finish(j, status, status != 0 ? errmsg : "");
}

static void cluster_registered(void *ctx, int status, const struct kv_result *res,
                               const char *errmsg)
{
    struct cluster_job *j = ctx;
    if (status != 0 || res->rejected) {
        cluster_finish(j, status != 0 ? status : CMN_EDENIED, status != 0 ? errmsg : res->reason);
        return;
    }
    char msg[CMN_ERRMSG_SIZE] = "";
    struct kv_cmd cmd = j->install;
    kv_cmd_init(&j->install, KV_CMD_AUDIT);
    int rv = node_propose(j->n, &cmd, installed, j, msg);
    if (rv != 0)
        cluster_finish(j, rv, msg);
}

/* The checks of a certificate for every node: its key, both usages, valid now, and each node
 * of the trust state named (URI:urn:corvid:node:<TAG>). */
static int check_cluster_cert(struct node *n, X509 *cert, char *errmsg)
{
    struct ca_ident id;
    int rv = ca_ident_get(cert, &id, errmsg);
    if (rv != 0)
        return rv;
    int64_t now = cmn_now_ms(&cmn_clock_system) / 1000;
    if ((id.eku & (CA_EKU_SERVER | CA_EKU_ANY)) == 0 ||
        (id.eku & (CA_EKU_CLIENT | CA_EKU_ANY)) == 0)
        return cmn_fail(errmsg, CMN_EINVALID,
                        "the certificate needs both the serverAuth (1.3.6.1.5.5.7.3.1) and the "
                        "clientAuth (1.3.6.1.5.5.7.3.2) usages: nodes serve and call each other "
                        "with it");
    if (id.not_after <= now)
        return cmn_fail(errmsg, CMN_EINVALID, "the certificate expired");
    if (id.not_before > now)
        return cmn_fail(errmsg, CMN_EINVALID,
                        "the certificate is not valid yet (its NotBefore is in the future)");
    struct kv_node *nodes = NULL;
    size_t count = 0;
    if ((rv = kv_node_list(n->kv, &nodes, &count, errmsg)) != 0)
        return rv;
    for (size_t i = 0; rv == 0 && i < count; i++)
        if (!ca_names_node(cert, nodes[i].tag))
            rv = cmn_fail(errmsg, CMN_EINVALID,
                          "the certificate does not name node %s (URI:urn:corvid:node:%s): a "
                          "certificate for the whole cluster names every node",
                          nodes[i].tag, nodes[i].tag);
    kv_node_free_array(nodes, count);
    return rv;
}

int node_replace_cluster(struct node *n, const struct node_rotate_req *req, bool immediately,
                         node_replace_cb cb, void *ctx, char *errmsg)
{
    int rv = check_cluster_cert(n, req->cert, errmsg);
    char tp[CA_THUMBPRINT_SIZE];
    if (rv == 0 && (rv = ca_thumbprint(req->cert, tp)) == 0)
        cmn_ascii_lower(tp);
    if (rv == 0 && strcmp(tp, n->thumb) == 0)
        return cmn_fail(errmsg, CMN_EEXISTS, "node %s already uses certificate %s", n->cfg.tag, tp);
    struct kv_replacement doc;
    int got = rv == 0 ? kv_replacement_get(n->kv, &doc, errmsg) : CMN_ENOTFOUND;
    if (got == 0) {
        rv = cmn_fail(errmsg, CMN_EDENIED,
                      "a replacement with certificate %s is in progress: wait for it to finish "
                      "(GET /admin/certificates/replacement/status), or reset it",
                      doc.thumbprint);
        kv_replacement_fini(&doc);
    } else if (got != CMN_ENOTFOUND) {
        rv = got;
    }
    if (rv != 0)
        return rv;
    struct cluster_job *j = calloc(1, sizeof *j);
    if (j == NULL)
        return cmn_fail(errmsg, CMN_ENOMEM, "out of memory");
    j->n = n;
    j->cb = cb;
    j->ctx = ctx;
    kv_cmd_init(&j->install, KV_CMD_REPLACE_INSTALL);
    struct kv_replacement *r = &j->install.u.replace;
    struct cmn_buf plain;
    cmn_buf_init(&plain, true);
    rv = ca_pfx_build(req->key, req->cert, req->chain, NULL, NULL, &plain, errmsg);
    if (rv == 0)
        rv = node_keys_seal(n, CA_SEAL_SERVER_CERT, plain.data, plain.len, &r->pfx, errmsg);
    cmn_buf_fini(&plain);
    memcpy(r->thumbprint, tp, sizeof r->thumbprint);
    memcpy(r->old_thumbprint, n->thumb, sizeof r->old_thumbprint);
    r->replace_immediately = immediately;
    memcpy(j->install.actor, n->thumb, sizeof j->install.actor);
    j->install.actor_clearance = KV_CL_CLUSTER_NODE;
    struct kv_cmd cmd;
    if (rv == 0)
        rv = node_cert_put_cmd(n, req->cert, "Server Certificate", &cmd, errmsg);
    if (rv != 0) {
        kv_cmd_fini(&j->install);
        free(j);
        return rv;
    }
    CMN_INFO("NODE-CERT", "replacing the server certificate of every node with %s", tp);
    rv = node_propose(n, &cmd, cluster_registered, j, errmsg);
    if (rv != 0) {
        kv_cmd_fini(&j->install);
        free(j);
    }
    return rv;
}

static void note_done(void *ctx, int status, const struct kv_result *res, const char *errmsg)
{
    struct node *n = ctx;
    n->repl_proposing = false;
    if (status != 0 || res->rejected)
        n->repl_note[0] = '\0'; /* sent again at the next look */
    (void)errmsg;
}

/* Tells the cluster why this node has not switched yet (once per reason). */
static void note(struct node *n, const struct kv_replacement *doc, const char *why)
{
    if (strcmp(n->repl_note, why) == 0)
        return;
    CMN_WARN("NODE-CERT", "node %s cannot switch to server certificate %s yet: %s", n->cfg.tag,
             doc->thumbprint, why);
    snprintf(n->repl_note, sizeof n->repl_note, "%s", why);
    struct kv_cmd cmd;
    char errmsg[CMN_ERRMSG_SIZE] = "";
    kv_cmd_init(&cmd, KV_CMD_REPLACE_RECEIVED);
    memcpy(cmd.u.confirm.thumbprint, doc->thumbprint, sizeof cmd.u.confirm.thumbprint);
    snprintf(cmd.u.confirm.tag, sizeof cmd.u.confirm.tag, "%s", n->cfg.tag);
    cmd.u.confirm.note = strdup(why);
    memcpy(cmd.actor, n->thumb, sizeof cmd.actor);
    cmd.actor_clearance = KV_CL_CLUSTER_NODE;
    n->repl_proposing = true;
    if (node_propose(n, &cmd, note_done, n, errmsg) != 0) {
        n->repl_proposing = false;
        n->repl_note[0] = '\0';
    }
}

static void switched(void *ctx, const struct node_rotate_result *res)
{
    struct node *n = ctx;
    if (res->status != 0)
        n->repl_after_ms = cmn_now_ms(&cmn_clock_system) + REPL_RETRY_MS;
    else
        CMN_INFO("NODE-CERT", "the server certificate was successfully replaced on node %s",
                 n->cfg.tag);
}

void node_replacement_watch(struct node *n)
{
    int64_t now_ms = cmn_now_ms(&cmn_clock_system);
    if (!n->serving || n->rotation != NULL || n->repl_proposing || now_ms < n->repl_after_ms)
        return;
    struct kv_replacement doc;
    char errmsg[CMN_ERRMSG_SIZE] = "";
    int rv = kv_replacement_get(n->kv, &doc, errmsg);
    if (rv != 0) {
        if (rv != CMN_ENOTFOUND)
            CMN_WARN("NODE-CERT", "the server certificate replacement: %s", errmsg);
        n->repl_note[0] = '\0';
        return;
    }
    bool done = strcmp(doc.thumbprint, n->thumb) == 0; /* self_register confirms it */
    for (size_t i = 0; i < doc.n_replaced; i++)
        done |= strcmp(doc.replaced[i], n->cfg.tag) == 0;
    if (done) {
        kv_replacement_fini(&doc);
        return;
    }
    n->repl_after_ms = now_ms + REPL_RETRY_MS;
    struct cmn_buf plain;
    cmn_buf_init(&plain, true);
    struct ca_certfile f = {0};
    bool have_f = false;
    rv = node_keys_open(n, CA_SEAL_SERVER_CERT, &doc.pfx, &plain, errmsg);
    if (rv == 0) {
        rv = ca_certfile_parse(plain.data, plain.len, NULL, 0, NULL,
                               CA_CERTFILE_PFX | CA_CERTFILE_KEY, &f, NULL, errmsg);
        have_f = rv == 0;
    }
    cmn_buf_fini(&plain);
    struct ca_cert_list chain;
    ca_cert_list_init(&chain);
    if (rv == 0)
        rv = ca_certfile_chain(&f, &chain);
    struct node_rotate_req req = {.cert = have_f ? f.leaf : NULL,
                                  .key = have_f ? f.key : NULL,
                                  .chain = &chain,
                                  .registered = true};
    if (rv == 0) {
        CMN_INFO("NODE-CERT", "node %s switches to the cluster's new server certificate %s",
                 n->cfg.tag, doc.thumbprint);
        rv = node_rotate(n, &req, switched, n, errmsg);
    }
    if (rv != 0)
        note(n, &doc, errmsg);
    ca_cert_list_fini(&chain);
    if (have_f)
        ca_certfile_fini(&f);
    kv_replacement_fini(&doc);
}

int node_refresh_identity(struct node *n, node_rotate_cb cb, void *ctx, char *errmsg)
{
    struct ca_certfile f;
    enum ca_certfile_step step;
    int rv = ca_certfile_load(n->cfg.cert_path, NULL, n->cfg.cert_password,
                              CA_CERTFILE_PFX | CA_CERTFILE_KEY, &f, &step, errmsg);
    if (rv != 0) {
        cmn_errctx(errmsg, "Security.Certificate.Path");
        return rv;
    }
    struct ca_cert_list chain;
    ca_cert_list_init(&chain);
    rv = ca_certfile_chain(&f, &chain);
    struct node_rotate_req req = {.cert = f.leaf, .key = f.key, .chain = &chain};
    if (rv == 0)
        rv = node_rotate(n, &req, cb, ctx, errmsg);
    ca_cert_list_fini(&chain);
    ca_certfile_fini(&f);
    return rv;
}
