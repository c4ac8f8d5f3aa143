/* Cluster membership changes as committed steps: a node's certificate registered as
 * ClusterNode, its node record, then the Raft change (add as non-voter, catch up, promote);
 * removal is the reverse and revokes the node's registration. Used by the admin channel and
 * by PUT/DELETE /admin/cluster/node. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "common/log.h"
#include "node/core.h"

/* An added node is a member once it serves requests: after its promotion it still proposes its
 * catch-up entry (node.c) before it answers authenticated calls. The job asks it until then. */
#define SERVE_WAIT_MS 30000
#define SERVE_POLL_MS 100

struct member_job {
    struct node *n;
    char tag[8];
    char server_url[256];
    char tcp_url[256];
    char thumb[CA_THUMBPRINT_SIZE];
    struct kv_cert rec;
    bool remove;
    int step;
    uv_timer_t poll; /* while waiting for an added node to serve */
    bool polling;
    uint64_t serve_deadline;
    node_member_cb cb;
    void *ctx;
};

static void step(struct member_job *j);
static void poll_closed(uv_handle_t *h);
static void poll_serving(uv_timer_t *t);

static void finish(struct member_job *j, int status, const char *fmt, ...) CMN_PRINTF(3, 4);
static void finish(struct member_job *j, int status, const char *fmt, ...)
{
    char msg[CMN_ERRMSG_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (status == 0)
        CMN_INFO("NODE-MEMBER", "%s", msg);
    else
        CMN_WARN("NODE-MEMBER", "%s", msg);
    j->cb(j->ctx, status, msg);
    kv_cert_fini(&j->rec);
    if (j->polling)
        uv_close((uv_handle_t *)&j->poll, poll_closed);
    else
        free(j);
}

static void poll_closed(uv_handle_t *h)
{
    free(h->data);
}

/* The added node's /cluster/node-info: done once it names this node's certificate and says it
 * serves; asked again every SERVE_POLL_MS until SERVE_WAIT_MS have passed. */
static void serve_answer(void *ctx, int status, const char *msg, X509 *peer, int http_status,
                         const char *body, size_t len)
{
    struct member_job *j = ctx;
    (void)peer;
    json_t *info = status == 0 && http_status == 200 ? json_loadb(body, len, 0, NULL) : NULL;
    const char *tp = json_string_value(json_object_get(info, "Thumbprint"));
    bool serving =
        tp && strcasecmp(tp, j->thumb) == 0 && json_is_true(json_object_get(info, "Serving"));
    json_decref(info);
    if (serving) {
        finish(j, 0, "Node %s is a voting member of the cluster and serves requests", j->tag);
        return;
    }
    if (uv_now(&j->n->loop) >= j->serve_deadline) {
        finish(j, CMN_ETIMEDOUT,
               "Node %s is a voting member of the cluster but does not serve requests at %s "
               "after %d s (%s)",
               j->tag, j->server_url, SERVE_WAIT_MS / 1000,
               status != 0          ? msg
               : http_status != 200 ? "no /cluster/node-info"
                                    : "catching up");
        return;
    }
    uv_timer_start(&j->poll, poll_serving, SERVE_POLL_MS, 0);
}

static void poll_serving(uv_timer_t *t)
{
    struct member_job *j = t->data;
    char errmsg[CMN_ERRMSG_SIZE] = "";
    if (node_fetch(j->n, j->server_url, "/cluster/node-info", serve_answer, j, errmsg) != 0)
        serve_answer(j, CMN_EIO, errmsg, NULL, 0, NULL, 0);
}

static void wait_serving(struct member_job *j)
{
    uv_timer_init(&j->n->loop, &j->poll);
    j->poll.data = j;
    j->polling = true;
    j->serve_deadline = uv_now(&j->n->loop) + SERVE_WAIT_MS;
    poll_serving(&j->poll);
}

static void committed(void *ctx, int status, const struct kv_result *res, const char *errmsg)
{
    struct member_job *j = ctx;
    if (status != 0)
        finish(j, status, "%s", errmsg);
    else if (res->rejected)
        finish(j, res->code == KV_REJ_CONFLICT ? CMN_EEXISTS : CMN_EINVALID, "%s", res->reason);
    else
        step(j);
}

static void changed(void *ctx, int status, const char *errmsg)
{
    struct member_job *j = ctx;
    if (status != 0)
        finish(j, status, "%s", errmsg);
    else
        step(j);
}

static void propose_step(struct member_job *j, struct kv_cmd *cmd)
{
    char errmsg[CMN_ERRMSG_SIZE] = "";
    memcpy(cmd->actor, j->n->thumb, sizeof cmd->actor);
    cmd->actor_clearance = KV_CL_CLUSTER_ADMIN;
    int rv = node_propose(j->n, cmd, committed, j, errmsg);
    if (rv != 0)
        finish(j, rv, "%s", errmsg);
}

static void step(struct member_job *j)
{
    struct node *n = j->n;
    char errmsg[CMN_ERRMSG_SIZE] = "";
    struct kv_cmd cmd;
    int s = j->step++;
    if (!j->remove) {
        switch (s) {
        case 0: /* the node's certificate becomes a ClusterNode registration */
            kv_cmd_init(&cmd, KV_CMD_PUT_CERTS);
            cmd.u.put.certs = malloc(sizeof j->rec);
            if (cmd.u.put.certs == NULL) {
                finish(j, CMN_ENOMEM, "out of memory");
                return;
            }
            cmd.u.put.certs[0] = j->rec;
            memset(&j->rec, 0, sizeof j->rec);
            cmd.u.put.n = 1;
            propose_step(j, &cmd);
            return;
        case 1: /* its node record */
            kv_cmd_init(&cmd, KV_CMD_PUT_NODE);
            snprintf(cmd.u.node.tag, sizeof cmd.u.node.tag, "%.4s", j->tag);
            cmd.u.node.server_url = strdup(j->server_url);
            cmd.u.node.tcp_url = strdup(j->tcp_url);
            if (cmd.u.node.server_url == NULL || cmd.u.node.tcp_url == NULL) {
                kv_cmd_fini(&cmd);
                finish(j, CMN_ENOMEM, "out of memory");
                return;
            }
            memcpy(cmd.u.node.thumbprint, j->thumb, sizeof cmd.u.node.thumbprint);
            propose_step(j, &cmd);
            return;
        case 2: { /* Raft: add as non-voter, catch up, promote */
            char addr[256];
            if (node_url_hostport(j->tcp_url, addr, sizeof addr) != 0) {
                finish(j, CMN_EINVALID, "bad TcpUrl '%s'", j->tcp_url);
                return;
            }
            int rv = rft_add_node(n->rft, j->tag, addr, changed, j, errmsg);
            if (rv != 0)
                finish(j, rv, "%s", errmsg);
            return;
        }
        default:
            wait_serving(j);
            return;
        }
    }
    switch (s) {
    case 0: { /* Raft first: once removed it takes no part in decisions */
        int rv = rft_remove_node(n->rft, j->tag, changed, j, errmsg);
        if (rv != 0)
            finish(j, rv, "%s", errmsg);
        return;
    }
    case 1:
        kv_cmd_init(&cmd, KV_CMD_REMOVE_NODE);
        snprintf(cmd.u.node.tag, sizeof cmd.u.node.tag, "%.4s", j->tag);
        propose_step(j, &cmd);
        return;
    case 2: { /* its node certificate is no longer trusted anywhere */
        struct kv_cert reg;
        int rv = j->thumb[0] ? kv_cert_get(n->kv, j->thumb, &reg, errmsg) : CMN_ENOTFOUND;
        if (rv == CMN_ENOTFOUND) {
            step(j);
            return;
        }
        if (rv != 0) { /* fail closed: never leave a removed node's certificate trusted */
            finish(j, rv, "node %s: cannot read its registration: %s", j->tag, errmsg);
            return;
        }
        kv_cert_fini(&reg);
        kv_cmd_init(&cmd, KV_CMD_DELETE_CERTS);
        cmd.u.del.thumbprints = calloc(1, sizeof *cmd.u.del.thumbprints);
        if (cmd.u.del.thumbprints == NULL) {
            finish(j, CMN_ENOMEM, "out of memory");
            return;
        }
        memcpy(cmd.u.del.thumbprints[0], j->thumb, KV_THUMB_LEN + 1);
        cmd.u.del.n = 1;
        propose_step(j, &cmd);
        return;
    }
    default:
        finish(j, 0, "Node %s was removed from the cluster and its certificate revoked", j->tag);
        return;
    }
}

int node_member_add(struct node *n, const char *tag, const char *server_url, const char *tcp_url,
                    X509 *cert, node_member_cb cb, void *ctx, char *errmsg)
{
    struct rft_status st;
    rft_status(n->rft, &st);
    if (!st.ready)
        return cmn_fail(errmsg, CMN_EDENIED, "only the leader changes the membership%s%s",
                        st.leader[0] ? ": the leader is node " : "", st.leader);
    for (size_t i = 0; i < st.n_members; i++)
        if (strcmp(st.members[i].tag, tag) == 0)
            return cmn_fail(errmsg, CMN_EEXISTS, "node tag %s is already in use", tag);
    struct ca_ident id;
    int rv = ca_ident_get(cert, &id, errmsg);
    if (rv != 0)
        return rv;
    if (!ca_names_node(cert, tag))
        return cmn_fail(errmsg, CMN_EINVALID, "the certificate names node '%s', not '%s'",
                        id.node_tag, tag);
    if (!(id.eku & CA_EKU_ANY) &&
        (id.eku & (CA_EKU_SERVER | CA_EKU_CLIENT)) != (CA_EKU_SERVER | CA_EKU_CLIENT))
        return cmn_fail(errmsg, CMN_EINVALID,
                        "a node certificate needs both serverAuth and clientAuth");
    struct member_job *j = calloc(1, sizeof *j);
    if (j == NULL)
        return CMN_ENOMEM;
    char name[64];
    snprintf(name, sizeof name, "Server certificate for Node %.4s", tag);
    rv = node_cert_record(n, cert, name, KV_CL_CLUSTER_NODE, &j->rec, errmsg);
    if (rv != 0) {
        free(j);
        return rv;
    }
    j->n = n;
    j->cb = cb;
    j->ctx = ctx;
    snprintf(j->tag, sizeof j->tag, "%.4s", tag);
    snprintf(j->server_url, sizeof j->server_url, "%s", server_url);
    snprintf(j->tcp_url, sizeof j->tcp_url, "%s", tcp_url);
    memcpy(j->thumb, j->rec.thumbprint, sizeof j->thumb);
    step(j);
    return 0;
}

int node_member_remove(struct node *n, const char *tag, node_member_cb cb, void *ctx, char *errmsg)
{
    struct rft_status st;
    rft_status(n->rft, &st);
    if (!st.ready)
        return cmn_fail(errmsg, CMN_EDENIED, "only the leader changes the membership%s%s",
                        st.leader[0] ? ": the leader is node " : "", st.leader);
    if (strcmp(tag, n->cfg.tag) == 0)
        return cmn_fail(errmsg, CMN_EBUSY,
                        "node %s leads the cluster: stop it (it hands over leadership) or remove "
                        "it from the new leader",
                        tag);
    bool member = false;
    for (size_t i = 0; i < st.n_members; i++)
        member |= strcmp(st.members[i].tag, tag) == 0;
    if (!member)
        return cmn_fail(errmsg, CMN_ENOTFOUND, "node %s is not in the cluster", tag);
    struct member_job *j = calloc(1, sizeof *j);
    if (j == NULL)
        return CMN_ENOMEM;
    j->n = n;
    j->cb = cb;
    j->ctx = ctx;
    j->remove = true;
    snprintf(j->tag, sizeof j->tag, "%.4s", tag);
    struct kv_node *nodes;
    size_t count;
    int rv = kv_node_list(n->kv, &nodes, &count, errmsg);
    if (rv != 0) { /* fail closed: the certificate to revoke with the node is in its record */
        free(j);
        return rv;
    }
    for (size_t i = 0; i < count; i++)
        if (strcmp(nodes[i].tag, tag) == 0)
            memcpy(j->thumb, nodes[i].thumbprint, sizeof j->thumb);
    kv_node_free_array(nodes, count);
    step(j);
    return 0;
}
