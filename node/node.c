/* corvid-node: start-up, identity, peer trust, bootstrap duties, shutdown. */
#include "node/core.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/err.h>

#include "ca/certfile.h"
#include "ca/tls.h"
#include "common/env.h"
#include "common/file.h"
#include "common/log.h"
#include "raft/tls.h"

#define DUTY_MS                 500
#define DISK_STEP_DOWN_FIRST_MS 5000
#define DISK_STEP_DOWN_MAX_MS   300000
/* Election timeouts without a known leader after which a node stops serving its state. */
#define LEADERLESS_ELECTIONS 2

/* ---- files ---- */

/* A PKCS#12 file named by configuration key `key`. */
static int load_pfx(const char *key, const char *path, const char *password,
                    struct ca_certfile *out, char *errmsg)
{
    int rv = ca_certfile_load(path, NULL, password, CA_CERTFILE_PFX, out, NULL, errmsg);
    if (rv != 0)
        cmn_errctx(errmsg, "%s", key);
    return rv;
}

/* One process per DataDir: raft has no lock of its own, and two writers corrupt the log. */
static int lock_data_dir(struct node *n, char *errmsg)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/corvid.lock", n->cfg.data_dir);
    n->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (n->lock_fd < 0)
        return cmn_fail(errmsg, CMN_EIO, "cannot open %s: %s", path, strerror(errno));
    if (flock(n->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        char pid[32] = "";
        ssize_t got = pread(n->lock_fd, pid, sizeof pid - 1, 0);
        if (got > 0)
            pid[strcspn(pid, "\n")] = '\0';
        close(n->lock_fd);
        n->lock_fd = -1;
        return cmn_fail(errmsg, CMN_EBUSY,
                        "DataDir %s is in use by another corvid-node (pid %s): refusing to start",
                        n->cfg.data_dir, pid[0] ? pid : "?");
    }
    char pid[32];
    int len = snprintf(pid, sizeof pid, "%d\n", (int)getpid());
    if (ftruncate(n->lock_fd, 0) != 0 || pwrite(n->lock_fd, pid, (size_t)len, 0) != len)
        return cmn_fail(errmsg, CMN_EIO, "cannot write %s", path);
    return 0;
}

/* ---- identity ---- */

static int load_identity(struct node *n, char *errmsg)
{
    struct ca_certfile f;
    enum ca_certfile_step step;
    int rv = ca_certfile_load(n->cfg.cert_path, NULL, n->cfg.cert_password,
                              CA_CERTFILE_PFX | CA_CERTFILE_KEY, &f, &step, errmsg);
    if (rv != 0 && step == CA_CERTFILE_NOKEY)
        return cmn_fail(errmsg, CMN_EINVALID,
                        "Security.Certificate.Path: %s holds no certificate with its private key",
                        n->cfg.cert_path);
    if (rv != 0) {
        cmn_errctx(errmsg, "Security.Certificate.Path");
        return rv;
    }
    X509 *leaf = f.leaf;
    struct ca_ident id;
    rv = ca_ident_get(leaf, &id, errmsg);
    if (rv == 0 && (id.eku & (CA_EKU_SERVER | CA_EKU_ANY)) == 0)
        rv = cmn_fail(errmsg, CMN_EINVALID,
                      "Security.Certificate.Path: the certificate lacks the serverAuth usage");
    if (rv == 0 && (id.eku & (CA_EKU_CLIENT | CA_EKU_ANY)) == 0)
        rv = cmn_fail(errmsg, CMN_EINVALID,
                      "Security.Certificate.Path: the certificate lacks the clientAuth usage "
                      "that nodes use to authenticate to each other");
    if (rv == 0 && !ca_names_node(leaf, n->cfg.tag))
        rv = cmn_fail(errmsg, CMN_EINVALID,
                      "Security.Certificate.Path: the certificate names node '%s' "
                      "(URI:urn:corvid:node:…) but Cluster.NodeTag is '%s'",
                      id.node_tag, n->cfg.tag);
    if (rv != 0) {
        ca_certfile_fini(&f);
        return rv;
    }
    memcpy(n->thumb, id.thumbprint, sizeof n->thumb);
    cmn_ascii_lower(n->thumb);
    n->key = f.key;
    f.key = NULL;
    n->cert = leaf;
    X509_up_ref(leaf);
    ca_cert_list_init(&n->chain);
    rv = ca_certfile_chain(&f, &n->chain);
    ca_certfile_fini(&f);
    return rv;
}

static int make_raft_ctx(struct node *n, char *errmsg)
{
    struct ca_tls_ident id = {.cert = n->cert, .key = n->key, .chain = &n->chain};
    int rv = ca_tls_peer_ctx(&id, &n->raft_ctx, errmsg);
    if (rv != 0)
        cmn_errctx(errmsg, "TLS setup");
    return rv;
}

/* Security.WellKnownIssuers.Admin: each a path or base64 of certificates, never a key. */
static int load_admin_issuers(struct node *n, char *errmsg)
{
    ca_cert_list_init(&n->issuers);
    for (size_t i = 0; i < n->cfg.n_admin_issuers; i++) {
        const char *v = n->cfg.admin_issuers[i];
        struct cmn_buf b;
        cmn_buf_init(&b, true);
        /* a path (config.c resolved the values that name a file), or base64 */
        struct stat st;
        int rv = stat(v, &st) == 0 ? cmn_read_file(v, CA_INPUT_MAX, &b, errmsg)
                                   : cmn_buf_append_str(&b, v);
        if (rv == 0 && b.data && strstr((const char *)b.data, "PRIVATE KEY") != NULL)
            rv = cmn_fail(errmsg, CMN_EINVALID,
                          "Security.WellKnownIssuers.Admin[%zu] includes the PRIVATE KEY, that is "
                          "not a secured model",
                          i);
        struct ca_cert_list certs;
        ca_cert_list_init(&certs);
        if (rv == 0)
            rv = ca_certs_from_bytes(b.data, b.len, &certs, errmsg);
        for (size_t j = 0; rv == 0 && j < certs.n; j++)
            rv = ca_cert_list_add(&n->issuers, certs.v[j]);
        ca_cert_list_fini(&certs);
        cmn_buf_fini(&b);
        if (rv != 0) {
            cmn_errctx(errmsg, "Security.WellKnownIssuers.Admin[%zu]", i);
            return rv;
        }
    }
    return 0;
}

/* The client side of node_fetch: this node's certificate, any server (the caller checks the
 * certificate the peer presented). */
static int make_fetch_ctx(struct node *n, char *errmsg)
{
    struct ca_tls_client_opts fo = {.trust = CA_TLS_TRUST_PINNED,
                                    .id = {.cert = n->cert, .key = n->key, .chain = &n->chain}};
    int rv = ca_tls_client_ctx(&fo, &n->fetch_ctx, errmsg);
    if (rv != 0)
        cmn_errctx(errmsg, "TLS client setup");
    return rv;
}

static int load_trusted_nodes(struct node *n, char *errmsg)
{
    if (n->cfg.trusted_nodes_path == NULL)
        return 0;
    struct ca_certfile pfx;
    int rv = load_pfx("Cluster.TrustedNodeCertificates.Path", n->cfg.trusted_nodes_path, NULL, &pfx,
                      errmsg);
    if (rv != 0)
        return rv;
    n->trusted = calloc(pfx.certs.n + 1, sizeof *n->trusted);
    if (n->trusted == NULL) {
        ca_certfile_fini(&pfx);
        return CMN_ENOMEM;
    }
    for (size_t i = 0; i < pfx.certs.n; i++) {
        char t[CA_THUMBPRINT_SIZE];
        if (ca_thumbprint(pfx.certs.v[i], t) == 0) {
            cmn_ascii_lower(t);
            memcpy(n->trusted[n->n_trusted++], t, CA_THUMBPRINT_SIZE);
        }
    }
    ca_certfile_fini(&pfx);
    CMN_INFO("NODE-TRUST", "trusting %zu node certificates from %s", n->n_trusted,
             n->cfg.trusted_nodes_path);
    return 0;
}

/* ---- peer trust ---- */

static bool is_bootstrap_tag(struct node *n, const char *tag)
{
    for (size_t i = 0; i < n->cfg.n_bootstrap; i++)
        if (strcmp(n->cfg.bootstrap[i].tag, tag) == 0)
            return true;
    return false;
}

/* Whether the trust state has a node record for tag: 0 (*found set) or the read's error. */
static int node_record_find(struct node *n, const char *tag, bool *found, char *errmsg)
{
    struct kv_node *nodes;
    size_t count;
    *found = false;
    int rv = kv_node_list(n->kv, &nodes, &count, errmsg);
    if (rv != 0)
        return rv;
    for (size_t i = 0; i < count; i++)
        *found |= strcmp(nodes[i].tag, tag) == 0;
    kv_node_free_array(nodes, count);
    return 0;
}

bool node_trusts_thumbprint(struct node *n, const char *thumbprint)
{
    for (size_t i = 0; i < n->n_trusted; i++)
        if (strcasecmp(n->trusted[i], thumbprint) == 0)
            return true;
    return false;
}

static int issuing_cert_get(struct node *n, X509 **out, char *errmsg)
{
    *out = n->issuing_cert;
    if (n->issuing_cert != NULL)
        return 0;
    struct kv_issuing_ca ca;
    int rv = kv_issuing_ca_get(n->kv, &ca, errmsg);
    if (rv == CMN_ENOTFOUND)
        return 0;
    if (rv == 0) {
        rv = ca_cert_from_der(ca.cert_der, ca.cert_len, &n->issuing_cert, errmsg);
        kv_issuing_ca_fini(&ca);
    }
    if (rv != 0) {
        n->issuing_cert = NULL;
        cmn_errctx(errmsg, "the issuing CA");
        return rv;
    }
    *out = n->issuing_cert;
    return 0;
}

X509 *node_issuing_cert(struct node *n)
{
    X509 *x;
    char errmsg[CMN_ERRMSG_SIZE] = "";
    if (issuing_cert_get(n, &x, errmsg) != 0)
        CMN_WARN("NODE-CA", "%s", errmsg);
    return x;
}

void node_issuing_forget(struct node *n)
{
    X509_free(n->issuing_cert);
    n->issuing_cert = NULL;
    if (n->have_issuer) {
        node_issuer_fini(&n->issuer);
        n->have_issuer = false;
    }
}

int node_cluster_cas_get(struct node *n, struct node_cluster_cas *out, char *errmsg)
{
    memset(out, 0, sizeof *out);
    X509 *v[2] = {n->have_cluster_ca ? n->cluster_ca.leaf : NULL, NULL};
    int rv = issuing_cert_get(n, &v[1], errmsg);
    if (rv != 0)
        return rv; /* never a registration or a trust decision without the cluster CA */
    for (size_t i = 0; i < 2; i++)
        if (v[i] && X509_up_ref(v[i]) == 1)
            out->cert[i] = v[i];
    return 0;
}

void node_cluster_cas_fini(struct node_cluster_cas *c)
{
    for (size_t i = 0; i < 2; i++) {
        X509_free(c->cert[i]);
        c->cert[i] = NULL;
    }
}

static bool issued_by(const struct node_cluster_cas *cas, X509 *cert)
{
    for (size_t i = 0; i < 2; i++)
        if (cas->cert[i] && ca_issued_by(cert, cas->cert[i], NULL) == 0)
            return true;
    return false;
}

bool node_issued_by_cluster_ca(struct node *n, X509 *cert)
{
    struct node_cluster_cas cas;
    char errmsg[CMN_ERRMSG_SIZE] = "";
    if (node_cluster_cas_get(n, &cas, errmsg) != 0) {
        CMN_WARN("NODE-TRUST", "%s", errmsg);
        return false; /* fail closed */
    }
    bool ok = issued_by(&cas, cert);
    node_cluster_cas_fini(&cas);
    return ok;
}

int node_peer_trust(struct node *n, X509 *cert, const char *tag, char *errmsg)
{
    struct ca_ident id;
    if (ca_ident_get(cert, &id, errmsg) != 0)
        return CMN_EDENIED;
    int64_t now = cmn_now_ms(&cmn_clock_system) / 1000;
    if (id.not_after < now)
        return cmn_fail(errmsg, CMN_EDENIED, "certificate %s expired", id.thumbprint);
    if (id.not_before > now + NODE_CLOCK_SLACK_S)
        return cmn_fail(errmsg, CMN_EDENIED, "certificate %s is not yet valid", id.thumbprint);
    char lower[CA_THUMBPRINT_SIZE];
    memcpy(lower, id.thumbprint, sizeof lower);
    cmn_ascii_lower(lower);
    /* Fail closed: a trust state that cannot be read trusts nobody. */
    struct kv_revoked rev;
    char why[CMN_ERRMSG_SIZE] = "";
    int rv = kv_revoked_get(n->kv, id.serial, &rev, why);
    if (rv == 0 && strcmp(rev.thumbprint, lower) == 0)
        return cmn_fail(errmsg, CMN_EDENIED, "certificate %s was revoked", id.thumbprint);
    if (rv != 0 && rv != CMN_ENOTFOUND)
        return cmn_fail(errmsg, CMN_EDENIED, "certificate %s: cannot read the revocations: %s",
                        id.thumbprint, why);
    if (strcmp(lower, n->thumb) == 0)
        return 0;
    struct kv_cert reg;
    rv = kv_cert_get(n->kv, lower, &reg, why);
    if (rv != 0 && rv != CMN_ENOTFOUND)
        return cmn_fail(errmsg, CMN_EDENIED, "certificate %s: cannot read its registration: %s",
                        id.thumbprint, why);
    if (rv == 0) {
        enum kv_clearance cl = reg.clearance;
        kv_cert_fini(&reg);
        if (cl == KV_CL_CLUSTER_NODE)
            return 0;
        return cmn_fail(errmsg, CMN_EDENIED, "certificate %s is registered as %s, not ClusterNode",
                        id.thumbprint, kv_clearance_name(cl));
    }
    /* Cluster.TrustedNodeCertificates lets a passive node meet the cluster that adds it; once
     * the node is a member, only the replicated state decides (a removed node is not trusted). */
    struct rft_status st;
    rft_status(n->rft, &st);
    for (size_t i = 0; strcmp(st.state, "Passive") == 0 && i < n->n_trusted; i++)
        if (strcmp(n->trusted[i], lower) == 0)
            return 0;
    /* A certificate from the cluster CA naming the node: before the bootstrap members have
     * registered themselves; and for a node this trust state knows, whose new certificate it
     * has not applied yet (a node that was down while its peer rotated, renewed or recovered
     * from an expired certificate: node/rotate.c). The cluster CA certifies node names only
     * in node certificates. A removed node has no record: refused. */
    bool known;
    if (node_record_find(n, tag, &known, why) != 0)
        return cmn_fail(errmsg, CMN_EDENIED, "certificate %s: cannot read the node records: %s",
                        id.thumbprint, why);
    if ((known || is_bootstrap_tag(n, tag)) && ca_names_node(cert, tag) &&
        node_issued_by_cluster_ca(n, cert))
        return 0;
    return cmn_fail(errmsg, CMN_EDENIED, "certificate %s is not a trusted cluster node certificate",
                    id.thumbprint);
}

static int node_trust(void *ctx, X509 *cert, const char *tag, char *errmsg)
{
    return node_peer_trust(ctx, cert, tag, errmsg);
}

/* ---- proposals ---- */

int node_snapshot_job(struct node *n, struct kv_snap **snap, uv_work_t *w, uv_work_cb work,
                      uv_after_work_cb after, char *errmsg)
{
    int rv = kv_snap_begin(n->kv, snap, errmsg);
    if (rv != 0)
        return rv;
    if (uv_queue_work(&n->loop, w, work, after) != 0) {
        kv_snap_end(*snap);
        *snap = NULL;
        return cmn_fail(errmsg, CMN_EIO, "cannot queue the work");
    }
    return 0;
}

int node_propose(struct node *n, struct kv_cmd *cmd, rft_propose_cb cb, void *ctx, char *errmsg)
{
    int rv = node_disk_check(n, NULL, errmsg);
    if (rv != 0) {
        kv_cmd_fini(cmd);
        return rv;
    }
    return node_propose_anyway(n, cmd, cb, ctx, errmsg);
}

int node_propose_anyway(struct node *n, struct kv_cmd *cmd, rft_propose_cb cb, void *ctx,
                        char *errmsg)
{
    if (cmd->request_id == NULL) {
        uint8_t rnd[8];
        char hex[17];
        if (cmn_random(&cmn_rng_system, rnd, sizeof rnd) != 0) {
            kv_cmd_fini(cmd);
            return cmn_fail(errmsg, CMN_EIO, "no randomness");
        }
        cmn_hex_lower(rnd, sizeof rnd, hex);
        size_t len = strlen(n->cfg.tag) + 1 + 16 + 1;
        cmd->request_id = malloc(len);
        if (cmd->request_id)
            snprintf(cmd->request_id, len, "%s-%s", n->cfg.tag, hex);
    }
    cmd->time_ms = cmn_now_ms(&cmn_clock_system);
    struct cmn_buf b;
    cmn_buf_init(&b, true);
    int rv = kv_cmd_encode(cmd, &b, errmsg);
    kv_cmd_fini(cmd);
    if (rv == 0) {
        rv = rft_propose(n->rft, b.data, b.len, cb, ctx);
        if (rv != 0)
            cmn_fail(errmsg, rv, "cannot propose: %s", cmn_strerror(rv));
    }
    cmn_buf_fini(&b);
    return rv;
}

int node_cert_record(struct node *n, X509 *x, const char *name, enum kv_clearance cl,
                     struct kv_cert *out, char *errmsg)
{
    struct node_cluster_cas cas;
    int rv = node_cluster_cas_get(n, &cas, errmsg);
    if (rv != 0)
        return rv;
    rv = node_cert_record_cas(&cas, x, name, cl, out, errmsg);
    node_cluster_cas_fini(&cas);
    return rv;
}

int node_cert_put_cmd(struct node *n, X509 *x, const char *name, struct kv_cmd *cmd, char *errmsg)
{
    struct kv_cert rec;
    int rv = node_cert_record(n, x, name, KV_CL_CLUSTER_NODE, &rec, errmsg);
    if (rv != 0)
        return rv;
    kv_cmd_init(cmd, KV_CMD_PUT_CERTS);
    cmd->u.put.certs = malloc(sizeof rec);
    if (cmd->u.put.certs == NULL) {
        kv_cert_fini(&rec);
        return cmn_fail(errmsg, CMN_ENOMEM, "out of memory");
    }
    cmd->u.put.certs[0] = rec;
    cmd->u.put.n = 1;
    memcpy(cmd->actor, n->thumb, sizeof cmd->actor);
    cmd->actor_clearance = KV_CL_CLUSTER_NODE;
    return 0;
}

int node_cert_record_cas(const struct node_cluster_cas *cas, X509 *x, const char *name,
                         enum kv_clearance cl, struct kv_cert *out, char *errmsg)
{
    memset(out, 0, sizeof *out);
    struct ca_ident id;
    int rv = ca_ident_get(x, &id, errmsg);
    if (rv != 0)
        return rv;
    if (strlen(id.serial) > KV_SERIAL_MAX)
        id.serial[0] = '\0'; /* beyond RFC 5280's 20 octets: not indexed */
    memcpy(out->thumbprint, id.thumbprint, sizeof out->thumbprint);
    cmn_ascii_lower(out->thumbprint);
    snprintf(out->pkph, sizeof out->pkph, "%s", id.pkph);
    snprintf(out->serial, sizeof out->serial, "%s", id.serial);
    out->not_before = id.not_before;
    out->not_after = id.not_after;
    out->clearance = cl;
    out->registered_ms = cmn_now_ms(&cmn_clock_system);
    out->name = strdup(name);
    struct cmn_buf der;
    cmn_buf_init(&der, false);
    rv = out->name ? ca_cert_to_der(x, &der) : CMN_ENOMEM;
    if (rv == 0) {
        out->der = cmn_buf_release(&der, &out->der_len);
        out->ca_issued = issued_by(cas, x);
    }
    cmn_buf_fini(&der);
    if (rv != 0)
        kv_cert_fini(out);
    return rv;
}

static int issuer_decode(struct node *n, struct node_issuer *out, char *errmsg)
{
    memset(out, 0, sizeof *out);
    ca_cert_list_init(&out->chain);
    struct kv_issuing_ca ca;
    int rv = kv_issuing_ca_get(n->kv, &ca, errmsg);
    if (rv == CMN_ENOTFOUND)
        return cmn_fail(errmsg, rv, "the cluster has no issuing CA yet (bootstrap not finished)");
    if (rv != 0)
        return rv;
    rv = ca_cert_from_der(ca.cert_der, ca.cert_len, &out->cert, errmsg);
    if (rv == 0)
        rv = node_keys_open_issuing(n, &ca.key_der, &out->key, errmsg);
    if (rv == 0 && X509_check_private_key(out->cert, out->key) != 1) {
        ERR_clear_error();
        rv = cmn_fail(errmsg, CMN_EINVALID, "the issuing CA key does not match its certificate");
    }
    if (rv == 0)
        rv = ca_cert_list_add(&out->chain, out->cert);
    for (size_t i = 0; rv == 0 && i < ca.n_chain; i++) {
        X509 *x;
        rv = ca_cert_from_der(ca.chain_der[i], ca.chain_len[i], &x, errmsg);
        if (rv == 0) {
            rv = ca_cert_list_add(&out->chain, x);
            X509_free(x);
        }
    }
    kv_issuing_ca_fini(&ca);
    if (rv != 0)
        node_issuer_fini(out);
    return rv;
}

/* The decoded issuer is cached (decoding its key through OpenSSL 3's decoders cost more than
 * signing a certificate); callers get their own references, usable in the threadpool. */
int node_issuer_load(struct node *n, struct node_issuer *out, char *errmsg)
{
    if (!n->have_issuer) {
        int rv = issuer_decode(n, &n->issuer, errmsg);
        if (rv != 0)
            return rv;
        n->have_issuer = true;
    }
    memset(out, 0, sizeof *out);
    ca_cert_list_init(&out->chain);
    if (X509_up_ref(n->issuer.cert) == 1)
        out->cert = n->issuer.cert;
    if (EVP_PKEY_up_ref(n->issuer.key) == 1)
        out->key = n->issuer.key;
    int rv = out->cert && out->key ? 0 : CMN_ENOMEM;
    for (size_t i = 0; rv == 0 && i < n->issuer.chain.n; i++)
        rv = ca_cert_list_add(&out->chain, n->issuer.chain.v[i]);
    if (rv != 0) {
        node_issuer_fini(out);
        return cmn_fail(errmsg, rv, "out of memory");
    }
    return 0;
}

void node_issuer_fini(struct node_issuer *is)
{
    X509_free(is->cert);
    EVP_PKEY_free(is->key);
    ca_cert_list_fini(&is->chain);
    memset(is, 0, sizeof *is);
}

/* ---- duties: the issuing CA at bootstrap, and this node's own registration ---- */

static void ca_done(void *ctx, int status, const struct kv_result *res, const char *errmsg)
{
    struct node *n = ctx;
    n->ca_proposing = false;
    if (status != 0)
        CMN_WARN("NODE-BOOT", "committing the issuing CA failed: %s", errmsg);
    else if (res->rejected)
        CMN_WARN("NODE-BOOT", "issuing CA refused: %s", res->reason);
    else
        CMN_INFO("NODE-BOOT", "issuing CA committed at index %llu", (unsigned long long)res->index);
}

static void crl_refreshed(void *ctx, int status, const struct kv_result *res, const char *errmsg)
{
    struct node *n = ctx;
    n->crl_refreshing = false;
    if (status != 0)
        CMN_WARN("NODE-CRL", "re-issuing the CRL failed: %s", errmsg);
    else if (res->rejected)
        CMN_WARN("NODE-CRL", "re-issuing the CRL refused: %s", res->reason);
}

/* The leader re-issues the CRL through Raft once the committed one is NODE_CRL_REFRESH_MS old,
 * so that every node serves the same CRL, valid NODE_CRL_VALID_MS from its commit; a cluster
 * that cannot commit lets it age. */
static void maybe_refresh_crl(struct node *n)
{
    struct kv_crl_state crl;
    char errmsg[CMN_ERRMSG_SIZE] = "";
    if (n->crl_refreshing)
        return;
    int rv = kv_crl_state_get(n->kv, &crl, errmsg);
    if (rv != 0 && rv != CMN_ENOTFOUND)
        CMN_WARN("NODE-CRL", "cannot read the CRL's state: %s", errmsg);
    if (rv != 0 || crl.time_ms + NODE_CRL_REFRESH_MS > cmn_now_ms(&cmn_clock_system))
        return;
    struct kv_cmd cmd;
    kv_cmd_init(&cmd, KV_CMD_REFRESH_CRL);
    memcpy(cmd.actor, n->thumb, sizeof cmd.actor);
    cmd.actor_clearance = KV_CL_CLUSTER_NODE;
    n->crl_refreshing = true;
    if (node_propose(n, &cmd, crl_refreshed, n, errmsg) != 0)
        n->crl_refreshing = false;
}

/* The SET_ISSUING_CA command for cert (borrowed) and key, its key sealed under the master key:
 * the entry, and so the Raft log, RocksDB and snapshots, never hold the key in clear. chain
 * holds the issuers above cert. */
static int set_ca_cmd(struct node *n, X509 *cert, EVP_PKEY *key, const struct ca_cert_list *chain,
                      struct kv_cmd *cmd, char *errmsg)
{
    kv_cmd_init(cmd, KV_CMD_SET_ISSUING_CA);
    struct kv_issuing_ca *ca = &cmd->u.set_ca;
    struct cmn_buf der;
    cmn_buf_init(&der, false);
    int rv = ca_cert_to_der(cert, &der);
    if (rv == 0)
        ca->cert_der = cmn_buf_release(&der, &ca->cert_len);
    if (rv == 0)
        rv = node_keys_seal_issuing(n, key, &ca->key_der, errmsg);
    if (rv == 0 && chain->n) {
        ca->chain_der = calloc(chain->n, sizeof *ca->chain_der);
        ca->chain_len = calloc(chain->n, sizeof *ca->chain_len);
        if (ca->chain_der == NULL || ca->chain_len == NULL)
            rv = CMN_ENOMEM;
        for (size_t i = 0; rv == 0 && i < chain->n; i++) {
            rv = ca_cert_to_der(chain->v[i], &der);
            if (rv == 0) {
                ca->chain_der[i] = cmn_buf_release(&der, &ca->chain_len[i]);
                ca->n_chain = i + 1;
            }
        }
    }
    cmn_buf_fini(&der);
    if (rv != 0)
        kv_cmd_fini(cmd);
    return rv;
}

/* Builds the SET_ISSUING_CA command from Security.ClusterCA, or from a CA generated now when
 * none is configured. */
static int issuing_ca_cmd(struct node *n, struct kv_cmd *cmd, char *errmsg)
{
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    struct ca_cert_list chain;
    ca_cert_list_init(&chain);
    int rv = 0;
    if (n->have_cluster_ca) {
        cert = n->cluster_ca.leaf;
        key = n->cluster_ca.key;
        if (cert == NULL || key == NULL)
            return cmn_fail(errmsg, CMN_EINVALID,
                            "Security.ClusterCA.Path holds no certificate with its key");
        X509_up_ref(cert);
        EVP_PKEY_up_ref(key);
        rv = ca_certfile_chain(&n->cluster_ca, &chain);
    } else {
        int64_t now = cmn_now_ms(&cmn_clock_system) / 1000;
        rv = ca_key_generate(CA_KEY_EC_P256, &key, errmsg);
        struct ca_cert_req req = {
            .profile = CA_PROFILE_ROOT,
            .cn = "Corvid Cluster CA",
            .not_before = now - CA_CLOCK_SKEW_SECS,
            .not_after = ca_add_years(now, 10),
            .subject_key = key,
        };
        if (rv == 0)
            rv = ca_cert_issue(&req, NULL, &cmn_rng_system, &cert, errmsg);
        if (rv == 0)
            CMN_INFO("NODE-BOOT", "no Security.ClusterCA configured: generated a cluster CA");
    }
    if (rv == 0)
        rv = set_ca_cmd(n, cert, key, &chain, cmd, errmsg);
    X509_free(cert);
    EVP_PKEY_free(key);
    ca_cert_list_fini(&chain);
    return rv;
}

static void reseal_done(void *ctx, int status, const struct kv_result *res, const char *errmsg)
{
    struct node *n = ctx;
    n->ca_proposing = false;
    char id[CA_SEAL_ID_HEX];
    ca_master_key_id_hex(n->mkeys[0].id, id);
    if (status == 0 && !res->rejected) {
        CMN_INFO("NODE-KEYS", "issuing CA key re-sealed under master key %s at index %llu", id,
                 (unsigned long long)res->index);
        return;
    }
    CMN_WARN("NODE-KEYS", "re-sealing the issuing CA key under master key %s failed: %s", id,
             status != 0 ? errmsg : res->reason);
    n->reseal_after_ms = cmn_now_ms(&cmn_clock_system) + 10000;
}

/* On the leader: an issuing CA key sealed under the previous master key of a rotation, or not
 * sealed at all (committed by an older version), is committed again sealed under the current
 * key, so that the previous key can be retired. A key sealed under a master key this node does
 * not hold is left alone: re-sealing needs to open it. */
static enum node_ca_seal check_issuing_key(struct node *n, const struct kv_issuing_ca *ca)
{
    char id[CA_SEAL_ID_HEX];
    enum node_ca_seal st = node_keys_issuing_state(n, &ca->key_der, id);
    if (st == NODE_CA_FOREIGN && !n->ca_foreign_warned) {
        char have[CA_SEAL_ID_HEX];
        ca_master_key_id_hex(n->mkeys[0].id, have);
        CMN_ERROR("NODE-KEYS",
                  "the issuing CA key is sealed under master key %s, but Security.MasterKey.Path "
                  "holds key %s: this node cannot issue until it has the cluster's master key",
                  id, have);
        n->ca_foreign_warned = true;
    }
    return st;
}

static void reseal(struct node *n, const struct kv_issuing_ca *ca)
{
    enum node_ca_seal st = check_issuing_key(n, ca);
    if (st == NODE_CA_CURRENT || st == NODE_CA_FOREIGN)
        return;
    if (cmn_now_ms(&cmn_clock_system) < n->reseal_after_ms)
        return;
    char errmsg[CMN_ERRMSG_SIZE] = "";
    struct node_issuer is;
    struct kv_cmd cmd;
    struct ca_cert_list above;
    ca_cert_list_init(&above);
    int rv = node_issuer_load(n, &is, errmsg);
    if (rv == 0) {
        for (size_t i = 1; rv == 0 && i < is.chain.n; i++)
            rv = ca_cert_list_add(&above, is.chain.v[i]);
        if (rv == 0)
            rv = set_ca_cmd(n, is.cert, is.key, &above, &cmd, errmsg);
        node_issuer_fini(&is);
    }
    ca_cert_list_fini(&above);
    if (rv == 0) {
        memcpy(cmd.actor, n->thumb, sizeof cmd.actor);
        cmd.actor_clearance = KV_CL_CLUSTER_NODE;
        n->ca_proposing = true;
        rv = node_propose(n, &cmd, reseal_done, n, errmsg);
        if (rv != 0)
            n->ca_proposing = false;
    }
    if (rv != 0) {
        CMN_WARN("NODE-KEYS", "cannot re-seal the issuing CA key: %s", errmsg);
        n->reseal_after_ms = cmn_now_ms(&cmn_clock_system) + 10000;
    }
}

static void register_done(void *ctx, int status, const struct kv_result *res, const char *errmsg)
{
    struct node *n = ctx;
    n->registering = false;
    if (status != 0)
        CMN_DEBUG("NODE-BOOT", "self-registration not committed yet: %s", errmsg);
    else if (res->rejected)
        CMN_WARN("NODE-BOOT", "self-registration refused: %s", res->reason);
}

static void self_register(struct node *n)
{
    char errmsg[CMN_ERRMSG_SIZE] = "";
    struct kv_cmd cmd;
    struct kv_cert reg;
    int rv = kv_cert_get(n->kv, n->thumb, &reg, errmsg);
    if (rv != 0 && rv != CMN_ENOTFOUND) {
        CMN_WARN("NODE-BOOT", "self-registration: %s", errmsg);
        return; /* the next tick tries again */
    }
    bool have_cert = rv == 0;
    if (have_cert)
        kv_cert_fini(&reg);
    if (!have_cert) {
        char name[64];
        snprintf(name, sizeof name, "Server Certificate for Node %s", n->cfg.tag);
        if (node_cert_put_cmd(n, n->cert, name, &cmd, errmsg) != 0)
            return;
    } else {
        struct kv_node *nodes;
        size_t count;
        bool current = false;
        if (kv_node_list(n->kv, &nodes, &count, errmsg) != 0) {
            CMN_WARN("NODE-BOOT", "self-registration: %s", errmsg);
            return;
        }
        bool switched = false;
        for (size_t i = 0; i < count; i++)
            if (strcmp(nodes[i].tag, n->cfg.tag) == 0) {
                switched = strcasecmp(nodes[i].thumbprint, n->thumb) != 0;
                current = !switched && strcmp(nodes[i].server_url, n->cfg.public_url) == 0 &&
                          strcmp(nodes[i].tcp_url, n->cfg.tcp_url) == 0;
            }
        kv_node_free_array(nodes, count);
        if (current)
            return;
        if (switched && n->rotation == NULL) {
            /* this node started with (or recovered to) a certificate its record does not name:
             * the last step of a rotation (node/rotate.c), the old one retired */
            kv_cmd_init(&cmd, KV_CMD_REPLACE_REPLACED);
            memcpy(cmd.u.confirm.thumbprint, n->thumb, sizeof cmd.u.confirm.thumbprint);
            snprintf(cmd.u.confirm.tag, sizeof cmd.u.confirm.tag, "%s", n->cfg.tag);
            goto propose;
        }
        kv_cmd_init(&cmd, KV_CMD_PUT_NODE);
        snprintf(cmd.u.node.tag, sizeof cmd.u.node.tag, "%.4s", n->cfg.tag);
        cmd.u.node.server_url = strdup(n->cfg.public_url);
        cmd.u.node.tcp_url = strdup(n->cfg.tcp_url);
        memcpy(cmd.u.node.thumbprint, n->thumb, sizeof cmd.u.node.thumbprint);
    }
propose:
    memcpy(cmd.actor, n->thumb, sizeof cmd.actor);
    cmd.actor_clearance = KV_CL_CLUSTER_NODE;
    n->registering = true;
    if (node_propose(n, &cmd, register_done, n, errmsg) != 0)
        n->registering = false;
}

static void sync_done(void *ctx, int status, const struct kv_result *res, const char *errmsg)
{
    struct node *n = ctx;
    n->syncing = false;
    if (status != 0)
        return; /* no quorum yet: the duty timer tries again */
    n->serving = true;
    n->leader_seen_ms = uv_now(&n->loop);
    CMN_INFO("NODE-START", "node %s caught up with the cluster at index %llu: serving requests",
             n->cfg.tag, (unsigned long long)res->index);
}

/* A node that restarts may have missed commits (a revocation above all). It answers
 * authenticated requests only once an entry it proposed is applied locally: everything
 * committed before is then applied too. */
static void catch_up(struct node *n)
{
    struct kv_cmd cmd;
    char errmsg[CMN_ERRMSG_SIZE] = "";
    kv_cmd_init(&cmd, KV_CMD_AUDIT);
    char event[96];
    snprintf(event, sizeof event, "node %s started and caught up", n->cfg.tag);
    cmd.u.audit.event = strdup(event);
    memcpy(cmd.actor, n->thumb, sizeof cmd.actor);
    cmd.actor_clearance = KV_CL_CLUSTER_NODE;
    n->syncing = true;
    if (node_propose_anyway(n, &cmd, sync_done, n, errmsg) != 0)
        n->syncing = false;
}

static void stop(struct node *n);

void node_watch_leader(struct node *n)
{
    if (!n->serving)
        return;
    struct rft_status st;
    rft_status(n->rft, &st);
    uint64_t now = uv_now(&n->loop);
    if (st.leader[0]) {
        n->leader_seen_ms = now;
        return;
    }
    uint64_t limit = (uint64_t)LEADERLESS_ELECTIONS * n->cfg.election_ms;
    if (now - n->leader_seen_ms < limit)
        return;
    n->serving = false; /* the duty timer catches up again once a leader is known */
    CMN_WARN("NODE-LEADER",
             "no leader known for %llu ms: answering 503 NotReady until this node has caught up "
             "with a leader again",
             (unsigned long long)(now - n->leader_seen_ms));
}

bool node_serves(struct node *n, char *why, size_t cap)
{
    node_watch_leader(n);
    if (!n->serving) {
        if (why != NULL && cap > 0)
            snprintf(why, cap, "catching up with the cluster");
        return false;
    }
    return rft_lease_held(n->rft, why, cap);
}

/* The fail-closed exit's log line: why Raft stopped, and the full disk if that is the cause. */
static void log_raft_stopped(struct node *n, const char *why, const char *what)
{
    struct node_disk d;
    char disk[CMN_ERRMSG_SIZE] = "";
    if (node_disk_state(n, &d) == 0 && d.low)
        node_disk_describe(n, &d, disk);
    CMN_ERROR("NODE-RAFT", "Raft stopped on this node (%s)%s%s: %s%s", why, disk[0] ? "; " : "",
              disk, what, disk[0] ? " (free space on that disk, then start the node again)" : "");
}

static void duty_cb(uv_timer_t *t)
{
    struct node *n = t->data;
    if (n->stopping)
        return;
    char why[CMN_ERRMSG_SIZE] = "";
    if (rft_failed(n->rft, why)) {
        /* Fail closed: a node whose Raft stopped would serve a trust state that no longer
         * follows the cluster (revocations included). Its data is intact: a restart recovers. */
        log_raft_stopped(n, why, "shutting down");
        n->exit_code = 1;
        stop(n);
        return;
    }
    node_watch_leader(n);
    node_disk_watch(n);
    node_expiry_check(n);
    struct rft_status st;
    rft_status(n->rft, &st);
    uint64_t now = uv_now(&n->loop);
    if (!n->disk_low) {
        n->disk_step_down_ms = 0;
        n->disk_step_down_at = 0;
    } else if (st.ready && now >= n->disk_step_down_at) {
        /* A leader appends every entry first: with no room it would stop the cluster's
         * writes. Another node leads while this one only follows (its own writes are refused).
         * When that one is full too, leadership comes back: hand it over again less and less
         * often, so that a cluster of full disks does not spend itself on elections. */
        char errmsg[CMN_ERRMSG_SIZE] = "";
        int rv = rft_step_down(n->rft, errmsg);
        if (rv == 0)
            CMN_WARN("NODE-DISK", "disk full on the leader: handing leadership to another node");
        else if (rv != CMN_EBUSY)
            CMN_WARN("NODE-DISK", "disk full on the leader; cannot hand leadership over: %s",
                     errmsg);
        n->disk_step_down_ms = n->disk_step_down_ms == 0 ? DISK_STEP_DOWN_FIRST_MS
                               : n->disk_step_down_ms >= DISK_STEP_DOWN_MAX_MS / 2
                                   ? DISK_STEP_DOWN_MAX_MS
                                   : 2 * n->disk_step_down_ms;
        n->disk_step_down_at = now + n->disk_step_down_ms;
    }
    if (st.ready)
        node_keys_reseal_totp(n);
    if (st.ready && !n->ca_proposing) {
        struct kv_issuing_ca ca;
        char err[CMN_ERRMSG_SIZE] = "";
        int rv = kv_issuing_ca_get(n->kv, &ca, err);
        if (rv == 0) {
            reseal(n, &ca);
            kv_issuing_ca_fini(&ca);
        } else if (rv != CMN_ENOTFOUND) {
            CMN_WARN("NODE-CA", "the issuing CA: %s", err);
        } else {
            struct kv_cmd cmd;
            char errmsg[CMN_ERRMSG_SIZE] = "";
            if (issuing_ca_cmd(n, &cmd, errmsg) != 0) {
                CMN_ERROR("NODE-BOOT", "%s", errmsg);
            } else {
                memcpy(cmd.actor, n->thumb, sizeof cmd.actor);
                cmd.actor_clearance = KV_CL_CLUSTER_NODE;
                n->ca_proposing = true;
                if (node_propose(n, &cmd, ca_done, n, errmsg) != 0)
                    n->ca_proposing = false;
            }
        }
    }
    if (st.ready)
        maybe_refresh_crl(n);
    if (st.leader[0] && !n->registering && strcmp(st.state, "Passive") != 0)
        self_register(n);
    node_renew_watch(n);
    node_replacement_watch(n);
    if (!n->serving && !n->syncing && st.leader[0] && strcmp(st.state, "Passive") != 0)
        catch_up(n);
}

/* ---- revocations announced by the leader before this node applies them ---- */

/* A revocation (KV_CMD_DELETE_CERTS) the leader announced as committed at `index`: refused
 * here from then on, until this node has applied it. */
struct node_early_revocation {
    char thumb[KV_THUMB_LEN + 1]; /* lower case */
    uint64_t index;
    int64_t time_ms;
    bool logout; /* its two-factor session ends, not the certificate */
};

static int revoke_early(struct node *n, uint64_t index, const struct kv_cmd *cmd, char *errmsg)
{
    bool logout = cmd->type == KV_CMD_TWOFA_LOGOUT;
    size_t count = logout ? 1 : cmd->type == KV_CMD_DELETE_CERTS ? cmd->u.del.n : 0;
    if (count == 0)
        return 0;
    struct node_early_revocation *v = realloc(n->early, (n->n_early + count) * sizeof *n->early);
    if (v == NULL)
        return cmn_fail(errmsg, CMN_ENOMEM, "out of memory for the revocation");
    n->early = v;
    for (size_t i = 0; i < count; i++) {
        struct node_early_revocation *e = &n->early[n->n_early];
        if (kv_thumb_norm(logout ? cmd->u.twofa.thumbprint : cmd->u.del.thumbprints[i], e->thumb) !=
            0)
            continue;
        e->index = index;
        e->time_ms = cmd->time_ms;
        e->logout = logout;
        n->n_early++;
    }
    return 0;
}

static void early_applied(struct node *n, uint64_t applied)
{
    size_t k = 0;
    for (size_t i = 0; i < n->n_early; i++)
        if (n->early[i].index > applied)
            n->early[k++] = n->early[i];
    n->n_early = k;
    if (k == 0) {
        free(n->early);
        n->early = NULL;
    }
}

bool node_revoked_early(const struct node *n, const struct kv_cert *def, int64_t *time_ms)
{
    for (size_t i = 0; i < n->n_early; i++) {
        if (!n->early[i].logout && (strcmp(n->early[i].thumb, def->thumbprint) == 0 ||
                                    strcmp(n->early[i].thumb, def->primary) == 0)) {
            *time_ms = n->early[i].time_ms;
            return true;
        }
    }
    return false;
}

bool node_logged_out_early(const struct node *n, const char *thumb)
{
    for (size_t i = 0; i < n->n_early; i++)
        if (n->early[i].logout && strcmp(n->early[i].thumb, thumb) == 0)
            return true;
    return false;
}

size_t node_revocations_pending(const struct node *n)
{
    return n->n_early;
}

/* ---- trust changes, told to the rooms ---- */

static void trust_changed(struct node *n, const struct node_trust_change *ch)
{
    if (ch == NULL || (ch->effects & (KV_FX_CERTS | KV_FX_REMOVED | KV_FX_CA | KV_FX_2FA)))
        n->trust_gen++; /* connections authenticate again */
    if (ch == NULL || (ch->effects & KV_FX_CA))
        node_issuing_forget(n);
    for (size_t i = 0; i < n->n_rooms; i++)
        if (n->rooms[i].ops->trust_changed)
            n->rooms[i].ops->trust_changed(n->rooms[i].room, ch);
}

int node_room_add(struct node *n, const struct node_room_ops *ops, void *room)
{
    if (n->n_rooms == NODE_ROOMS_MAX) {
        ops->free(room);
        return CMN_ETOOBIG;
    }
    n->rooms[n->n_rooms].ops = ops;
    n->rooms[n->n_rooms].room = room;
    n->n_rooms++;
    return 0;
}

/* ---- applied entries ---- */

/* Logs.AuditPath: one JSON line per applied entry, written after commit, from the replicated
 * audit trail (so every node writes the same lines). */
static void audit_line(struct node *n, uint64_t index)
{
    if (n->cfg.audit_path == NULL)
        return;
    struct kv_audit *a = NULL;
    size_t count = 0;
    char errmsg[CMN_ERRMSG_SIZE] = "";
    if (kv_audit_page(n->kv, index - 1, 1, &a, &count, errmsg) != 0) {
        CMN_ERROR("NODE-AUDIT", "entry %llu is not in %s: %s", (unsigned long long)index,
                  n->cfg.audit_path, errmsg);
        return;
    }
    if (count == 0 || a[0].index != index) {
        kv_audit_free_array(a, count);
        return;
    }
    struct rft_status st;
    rft_status(n->rft, &st);
    json_t *o = json_pack("{s:I, s:I, s:I, s:s, s:s, s:s, s:b, s:s}", "Index", (json_int_t)index,
                          "Term", (json_int_t)st.term, "TimeMs", (json_int_t)a[0].time_ms, "Node",
                          n->cfg.tag, "Command", kv_cmd_type_name(a[0].type), "Actor", a[0].actor,
                          "Rejected", a[0].rejected, "Summary", a[0].summary ? a[0].summary : "");
    char *line = o ? json_dumps(o, JSON_COMPACT) : NULL;
    FILE *f = line ? fopen(n->cfg.audit_path, "a") : NULL;
    if (f) {
        fprintf(f, "%s\n", line);
        fclose(f);
    }
    free(line);
    json_decref(o);
    kv_audit_free_array(a, count);
}

static void on_applied(void *ctx, uint64_t index, const void *entry, size_t len,
                       const struct kv_result *res)
{
    struct node *n = ctx;
    if (res != NULL && !res->duplicate)
        audit_line(n, index);
    early_applied(n, kv_applied_index(n->kv));
    if (res == NULL) {
        trust_changed(n, NULL); /* a snapshot replaced the whole state */
        return;
    }
    if (!(res->effects & KV_FX_TRUST))
        return;
    for (size_t i = 0; i < res->n_removed; i++)
        rft_drop_peer(n->rft, res->removed[i]);
    struct node_trust_change ch = {
        .effects = res->effects, .removed = res->removed, .n_removed = res->n_removed};
    trust_changed(n, &ch);
    (void)entry;
    (void)len;
}

/* Revocations and two-factor logouts must be in force on every node when the call that made
 * them returns: the leader announces them as committed, and each node refuses the
 * certificates, or the sessions, at once. */
static bool announce_entry(void *ctx, const struct kv_result *res)
{
    (void)ctx;
    return res->type == KV_CMD_DELETE_CERTS || res->type == KV_CMD_TWOFA_LOGOUT;
}

static int on_committed(void *ctx, uint64_t index, const void *entry, size_t len, char *errmsg)
{
    struct node *n = ctx;
    struct kv_cmd cmd;
    int rv = kv_cmd_decode(entry, len, &cmd, errmsg);
    if (rv != 0)
        return rv;
    rv = revoke_early(n, index, &cmd, errmsg);
    if (rv == 0 && cmd.type == KV_CMD_DELETE_CERTS) {
        /* The thumbprints named; the rest of what the entry revokes (a collection's
         * secondaries, registrations of the same key) is refused here once it is applied. */
        char(*named)[KV_THUMB_LEN + 1] = calloc(cmd.u.del.n ? cmd.u.del.n : 1, sizeof *named);
        size_t k = 0;
        for (size_t i = 0; named && i < cmd.u.del.n; i++)
            k += kv_thumb_norm(cmd.u.del.thumbprints[i], named[k]) == 0;
        struct node_trust_change ch = {
            .effects = KV_FX_CERTS | KV_FX_REMOVED | KV_FX_CRL, .removed = named, .n_removed = k};
        trust_changed(n, &ch);
        free(named); /* without it (out of memory) open connections re-authenticate instead */
    } else if (rv == 0 && cmd.type == KV_CMD_TWOFA_LOGOUT) {
        struct node_trust_change ch = {.effects = KV_FX_2FA};
        trust_changed(n, &ch);
    }
    kv_cmd_fini(&cmd);
    return rv;
}

/* Raft cannot go on and must not be returned to (rft_fatal_fn): the fail-closed exit at once,
 * without the clean shutdown of stop(). Everything committed is on disk, as after a crash. */
static void raft_fatal(void *ctx, const char *msg)
{
    log_raft_stopped(ctx, msg, "exiting at once");
    _exit(1);
}

/* A leader takes no proposal forwarded from another node while its own disk is full, but a
 * node's catch-up entry (the only audit event proposed), as node_propose_anyway does. */
static int disk_space(void *ctx, const void *entry, size_t len, char *errmsg)
{
    if (len > 0 && ((const uint8_t *)entry)[0] == KV_CMD_AUDIT)
        return 0;
    return node_disk_check(ctx, NULL, errmsg);
}

/* ---- lifecycle ---- */

static void signal_cb(uv_signal_t *s, int signum)
{
    struct node *n = s->data;
    CMN_INFO("NODE-STOP", "%s received: stopping", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    stop(n);
}

static int node_init(struct node *n, const char *config_path, char *errmsg)
{
    n->lock_fd = -1;
    n->totp_older = -1;
    ca_cert_list_init(&n->chain);
    ca_cert_list_init(&n->issuers);
    int rv = node_config_load(config_path, &n->cfg, errmsg);
    if (rv != 0)
        return rv;
    cmn_log_setup(n->cfg.log_level, NULL);
    if (cmn_mkdir_p(n->cfg.data_dir, 0700) != 0)
        return cmn_fail(errmsg, CMN_EIO, "DataDir: cannot create %s: %s", n->cfg.data_dir,
                        strerror(errno));
    chmod(n->cfg.data_dir, 0700);
    if (realpath(n->cfg.data_dir, n->data_dir_abs) == NULL)
        snprintf(n->data_dir_abs, sizeof n->data_dir_abs, "%s", n->cfg.data_dir);
    /* Raft preallocates its open segments at start and RocksDB writes a new WAL: on a full
     * disk either would fail later, less clearly. */
    struct node_disk disk;
    if (node_disk_state(n, &disk) == 0 && disk.low) {
        node_disk_describe(n, &disk, errmsg);
        cmn_errctx(errmsg, "cannot start");
        size_t len = strlen(errmsg);
        snprintf(errmsg + len, CMN_ERRMSG_SIZE - len, ": free space on that disk");
        return CMN_ENOSPACE;
    }
    if ((rv = lock_data_dir(n, errmsg)) != 0 ||
        (rv = node_keys_private_data_dir(n->cfg.data_dir, errmsg)) != 0 ||
        (rv = node_keys_load(n, errmsg)) != 0 || (rv = load_identity(n, errmsg)) != 0 ||
        (rv = make_raft_ctx(n, errmsg)) != 0 || (rv = load_trusted_nodes(n, errmsg)) != 0)
        return rv;
    if (n->cfg.cluster_ca_path) {
        rv = load_pfx("Security.ClusterCA.Path", n->cfg.cluster_ca_path, n->cfg.cluster_ca_password,
                      &n->cluster_ca, errmsg);
        if (rv != 0)
            return rv;
        n->have_cluster_ca = true;
    }
    char dir[1100];
    snprintf(dir, sizeof dir, "%s/state", n->cfg.data_dir);
    if ((rv = kv_open(dir, &n->kv, errmsg)) != 0)
        return rv;
    struct kv_issuing_ca ca;
    if ((rv = kv_issuing_ca_get(n->kv, &ca, errmsg)) == 0) { /* say now what fails at use */
        CMN_IGNORE(check_issuing_key(n, &ca));
        kv_issuing_ca_fini(&ca);
    } else if (rv != CMN_ENOTFOUND) {
        return rv;
    }
    if (uv_loop_init(&n->loop) != 0)
        return cmn_fail(errmsg, CMN_EIO, "cannot create the event loop");

    struct rft_member members[NODE_MAX_MEMBERS];
    for (size_t i = 0; i < n->cfg.n_bootstrap; i++) {
        snprintf(members[i].tag, sizeof members[i].tag, "%s", n->cfg.bootstrap[i].tag);
        if (node_url_hostport(n->cfg.bootstrap[i].tcp_url, members[i].address,
                              sizeof members[i].address) != 0)
            return cmn_fail(errmsg, CMN_EINVALID, "Cluster.Bootstrap: bad TcpUrl '%s'",
                            n->cfg.bootstrap[i].tcp_url);
    }
    char address[256];
    if (node_url_hostport(n->cfg.tcp_url, address, sizeof address) != 0)
        return cmn_fail(errmsg, CMN_EINVALID, "ServerUrl.Tcp: bad URL");
    snprintf(dir, sizeof dir, "%s/raft", n->cfg.data_dir);
    struct rft_config rc = {
        .tag = n->cfg.tag,
        .address = address,
        .dir = dir,
        .bootstrap = n->cfg.n_bootstrap ? members : NULL,
        .n_bootstrap = n->cfg.n_bootstrap,
        .ssl_ctx = n->raft_ctx,
        .kv = n->kv,
        .trust = node_trust,
        .applied = on_applied,
        .announce = announce_entry,
        .committed = on_committed,
        .space = disk_space,
        .fatal = raft_fatal,
        .cb_ctx = n,
        .election_ms = n->cfg.election_ms,
        .heartbeat_ms = n->cfg.heartbeat_ms,
        .snapshot_threshold = n->cfg.snapshot_threshold,
        .snapshot_trailing = n->cfg.snapshot_trailing,
        .snapshot_mb = n->cfg.snapshot_mb,
    };
    if ((rv = rft_new(&n->loop, &rc, &n->rft, errmsg)) != 0)
        return rv;
    if ((rv = rft_start(n->rft, errmsg)) != 0)
        return rv;
    if ((rv = load_admin_issuers(n, errmsg)) != 0 || (rv = make_fetch_ctx(n, errmsg)) != 0)
        return rv;
    uv_timer_init(&n->loop, &n->duty);
    n->duty.data = n;
    uv_timer_start(&n->duty, duty_cb, DUTY_MS, DUTY_MS);
    uv_signal_init(&n->loop, &n->sigterm);
    uv_signal_init(&n->loop, &n->sigint);
    n->sigterm.data = n->sigint.data = n;
    uv_signal_start(&n->sigterm, signal_cb, SIGTERM);
    uv_signal_start(&n->sigint, signal_cb, SIGINT);
    CMN_INFO("NODE-START", "node %s: HTTPS on %s, Raft on %s, data in %s, certificate %s%s",
             n->cfg.tag, n->cfg.server_url, address, n->cfg.data_dir, n->thumb,
             n->cfg.n_bootstrap ? "" : " (passive: waiting to be added to a cluster)");
    return 0;
}

static void rft_closed(void *ctx)
{
    struct node *n = ctx;
    uv_close((uv_handle_t *)&n->duty, NULL);
    uv_close((uv_handle_t *)&n->sigterm, NULL);
    uv_close((uv_handle_t *)&n->sigint, NULL);
}

static void stop(struct node *n)
{
    if (n->stopping)
        return;
    n->stopping = true;
    uv_timer_stop(&n->duty);
    /* All at once: closing Raft fails pending proposals, which answers the HTTP requests
     * waiting on them, so that the HTTPS connections can close. */
    for (size_t i = n->n_rooms; i-- > 0;)
        n->rooms[i].ops->close(n->rooms[i].room);
    rft_close(n->rft, rft_closed, n);
}

int node_run(struct node *n)
{
    uv_run(&n->loop, UV_RUN_DEFAULT);
    int rv = uv_loop_close(&n->loop);
    if (rv != 0) {
        CMN_ERROR("NODE-STOP", "event loop still has open handles at exit");
        return 1;
    }
    CMN_INFO("NODE-STOP", "node %s stopped cleanly", n->cfg.tag);
    return n->exit_code;
}

int node_new(const char *config_path, struct node **out, char *errmsg)
{
    struct node *n = *out = calloc(1, sizeof *n);
    if (n == NULL)
        return cmn_fail(errmsg, CMN_ENOMEM, "out of memory");
    return node_init(n, config_path, errmsg);
}

void node_free(struct node *n)
{
    if (n == NULL)
        return;
    for (size_t i = n->n_rooms; i-- > 0;)
        n->rooms[i].ops->free(n->rooms[i].room);
    rft_free(n->rft);
    kv_close(n->kv);
    SSL_CTX_free(n->raft_ctx);
    SSL_CTX_free(n->fetch_ctx);
    node_issuing_forget(n);
    ca_cert_list_fini(&n->issuers);
    EVP_PKEY_free(n->key);
    X509_free(n->cert);
    ca_cert_list_fini(&n->chain);
    if (n->have_cluster_ca)
        ca_certfile_fini(&n->cluster_ca);
    free(n->trusted);
    free(n->early);
    node_keys_fini(n);
    if (n->lock_fd >= 0)
        close(n->lock_fd);
    node_config_fini(&n->cfg);
    free(n);
}

/* ---- what the core holds ---- */

uv_loop_t *node_loop(struct node *n)
{
    return &n->loop;
}

const struct node_config *node_config(const struct node *n)
{
    return &n->cfg;
}

struct kv *node_kv(struct node *n)
{
    return n->kv;
}

struct rft *node_rft(struct node *n)
{
    return n->rft;
}

X509 *node_cert(const struct node *n)
{
    return n->cert;
}

EVP_PKEY *node_key(const struct node *n)
{
    return n->key;
}

const struct ca_cert_list *node_chain(const struct node *n)
{
    return &n->chain;
}

const char *node_thumb(const struct node *n)
{
    return n->thumb;
}

const struct ca_cert_list *node_admin_issuers(const struct node *n)
{
    return &n->issuers;
}

const char *node_data_dir(const struct node *n)
{
    return n->data_dir_abs;
}

uint64_t node_trust_gen(const struct node *n)
{
    return n->trust_gen;
}

bool node_caught_up(const struct node *n)
{
    return n->serving;
}

bool node_stopping(const struct node *n)
{
    return n->stopping;
}
