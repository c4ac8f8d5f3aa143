/* The cluster resources: topology and node info (RavenDB's), and membership (Corvid's
 * PUT/DELETE /admin/cluster/node, on the leader). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <http_parser.h>

#include "common/env.h"
#include "common/log.h"
#include "node/expiry.h"
#include "node/resource.h"
#include "raft/transport.h"

static void h_topology(struct api *api, struct http_request *req, struct node_auth *a)
{
    struct node *n = api->n;
    struct rft_status st;
    rft_status(node_rft(n), &st);
    struct kv_node *nodes = NULL;
    size_t count = 0;
    char errmsg[CMN_ERRMSG_SIZE] = "";
    if (kv_node_list(node_kv(n), &nodes, &count, errmsg) != 0) {
        http_respond_error(req, 500, "InternalError", "cannot read the node records: %s", errmsg);
        return;
    }
    json_t *members = json_object(), *promotables = json_object(), *watchers = json_object(),
           *all = json_object();
    for (size_t i = 0; i < st.n_members; i++) {
        const char *url = "";
        for (size_t j = 0; j < count; j++)
            if (strcmp(nodes[j].tag, st.members[i].tag) == 0)
                url = nodes[j].server_url;
        json_t *dst = st.members[i].role == RAFT_VOTER     ? members
                      : st.members[i].role == RAFT_STANDBY ? promotables
                                                           : watchers;
        /* RavenDB's clients send requests to every entry of Members and Watchers: a member
         * whose node record is not committed yet (at bootstrap) has no URL to send them to,
         * so it is listed in AllNodes only until it has one. */
        if (url[0])
            json_object_set_new(dst, st.members[i].tag, json_string(url));
        json_object_set_new(all, st.members[i].tag, json_string(url));
    }
    kv_node_free_array(nodes, count);
    const char *state = strcmp(st.state, "Leader") == 0      ? "Leader"
                        : strcmp(st.state, "Candidate") == 0 ? "Candidate"
                        : strcmp(st.state, "Passive") == 0   ? "Passive"
                                                             : "Follower";
    json_t *topo = json_pack("{s:o, s:o, s:o, s:o, s:s, s:I}", "Members", members, "Promotables",
                             promotables, "Watchers", watchers, "AllNodes", all, "TopologyId",
                             "corvid", "Etag", (json_int_t)st.commit_index);
    /* The top-level Etag is what RavenDB's clients compare: they take a topology only when its
     * Etag is above the one they hold. The applied index is written in the same RocksDB batch
     * as every applied entry, so on a node it only grows, restarts included, and every node
     * passes through the same indexes: an answer with a higher Etag reflects at least every
     * membership change of a lower one. (Topology.Etag stays the commit index, which
     * `corvid cluster status` shows.) Status is RavenDB's per-node report of its cluster
     * observer, which Corvid has not; its clients require the object, so it is empty. */
    api_respond_json(req, 200,
                     json_pack("{s:o, s:s?, s:s, s:s, s:I, s:I, s:{}}", "Topology", topo, "Leader",
                               st.leader[0] ? st.leader : NULL, "NodeTag", node_config(n)->tag,
                               "CurrentState", state, "CurrentTerm", (json_int_t)st.term, "Etag",
                               (json_int_t)st.applied_index, "Status"));
    (void)a;
}

/* GET /info/tcp: RavenDB's clients ask it (?tcp=health-check) of a node they saw fail, and
 * send it requests again once it answers 200. Not early, so a node is taken back only once it
 * serves. Corvid has no RavenDB TCP endpoint (ServerUrl.Tcp is Raft's, another protocol), so
 * the answer names none. */
static void h_tcp_info(struct api *api, struct http_request *req, struct node_auth *a)
{
    api_respond_json(
        req, 200,
        json_pack("{s:s, s:n, s:[]}", "NodeTag", node_config(api->n)->tag, "Url", "Urls"));
    (void)a;
}

static void h_node_info(struct api *api, struct http_request *req, struct node_auth *a)
{
    struct node *n = api->n;
    char tp[CA_THUMBPRINT_SIZE];
    api_upper(node_thumb(n), tp);
    struct rft_status st;
    rft_status(node_rft(n), &st);
    struct node_expiry_report ex;
    node_expiry_get(n, &ex);
    api_respond_json(
        req, 200,
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:b, s:b, s:o, s:I, s:I}", "NodeTag",
                  node_config(n)->tag, "ServerUrl", node_config(n)->public_url, "TcpUrl",
                  node_config(n)->tcp_url, "Thumbprint", tp, "CurrentState", st.state,
                  "HasFixedPort", 1, "Serving", node_serves(n, NULL, 0), "CertificateExpiry",
                  node_expiry_json(&ex, cmn_now_ms(&cmn_clock_system) / 1000), "CurrentTerm",
                  (json_int_t)st.term, "AppliedIndex", (json_int_t)st.applied_index));
    (void)a;
}

/* ---- cluster membership: PUT/DELETE /admin/cluster/node (leader only; 307 elsewhere) ---- */

static int member_status(int code)
{
    switch (code) {
    case CMN_EBUSY:
    case CMN_EEXISTS:
        return 409;
    case CMN_ENOTFOUND:
        return 404;
    case CMN_EINVALID:
        return 400;
    case CMN_EDENIED:
        return 503;
    case CMN_ETIMEDOUT:
        return 504;
    case CMN_ENOSPACE:
        return 507;
    default:
        return 500;
    }
}

struct add_job {
    struct node *n;
    struct http_request *req;
    char tag[8];
    char url[256];
    char expected[64];
};

static void add_done(void *ctx, int status, const char *msg)
{
    struct add_job *j = ctx;
    if (status != 0)
        http_respond_error(j->req, member_status(status), "InvalidOperation", "%s", msg);
    else
        api_respond_json(j->req, 200, json_pack("{s:s, s:s}", "NodeTag", j->tag, "Message", msg));
    free(j);
}

static void add_fetched(void *ctx, int status, const char *msg, X509 *peer, int http_status,
                        const char *body, size_t len)
{
    struct add_job *j = ctx;
    struct http_request *req = j->req;
    char errmsg[1024] = "";
    json_t *info = NULL;
    int code = 400;
    struct ca_ident id;
    int64_t now = cmn_now_ms(&cmn_clock_system) / 1000;
    const char *tag, *tcp, *state;
    char why[CMN_ERRMSG_SIZE] = "none sent";
    if (status != 0) {
        snprintf(errmsg, sizeof errmsg, "Cannot add node %s at %s: %s", j->tag, j->url, msg);
    } else if (peer == NULL || ca_ident_get(peer, &id, why) != 0) {
        snprintf(errmsg, sizeof errmsg, "Node %s at %s presented no usable certificate (%s)",
                 j->tag, j->url, why);
    } else if (http_status != 200 || (info = json_loadb(body ? body : "", len, 0, NULL)) == NULL ||
               (tag = json_string_value(json_object_get(info, "NodeTag"))) == NULL ||
               (tcp = json_string_value(json_object_get(info, "TcpUrl"))) == NULL) {
        snprintf(errmsg, sizeof errmsg, "%s did not answer /cluster/node-info (HTTP %d)", j->url,
                 http_status);
    } else if (j->tag[0] && strcmp(tag, j->tag) != 0) {
        snprintf(errmsg, sizeof errmsg, "The node at %s is node %s, not %s", j->url, tag, j->tag);
    } else if ((state = json_string_value(json_object_get(info, "CurrentState"))) != NULL &&
               strcmp(state, "Passive") != 0) {
        code = 409;
        snprintf(errmsg, sizeof errmsg,
                 "Node %s at %s is already a member of a cluster (state %s): start it without "
                 "Cluster.Bootstrap and with an empty DataDir",
                 j->tag, j->url, state);
    } else if (id.not_after < now) {
        snprintf(errmsg, sizeof errmsg, "The certificate of node %s (%s) has expired", j->tag,
                 id.thumbprint);
    } else if (id.not_before > now + NODE_CLOCK_SLACK_S) {
        snprintf(errmsg, sizeof errmsg, "The certificate of node %s (%s) is not yet valid", j->tag,
                 id.thumbprint);
    } else if (j->expected[0] && strcasecmp(j->expected, id.thumbprint) != 0) {
        snprintf(errmsg, sizeof errmsg,
                 "The certificate of node %s is %s, not the expected thumbprint %s", j->tag,
                 id.thumbprint, j->expected);
    } else if (!j->expected[0] && !node_issued_by_cluster_ca(j->n, peer) &&
               !node_trusts_thumbprint(j->n, id.thumbprint)) {
        snprintf(errmsg, sizeof errmsg,
                 "The certificate of node %s at %s (%s) is not issued by the cluster CA: check "
                 "its thumbprint out of band and pass it as "
                 "&expectedThumbprint=%s to trust it",
                 j->tag[0] ? j->tag : tag, j->url, id.thumbprint, id.thumbprint);
    } else {
        code = 0;
        if (!j->tag[0]) /* RavenDB's tag is optional: the node names itself */
            snprintf(j->tag, sizeof j->tag, "%.4s", tag);
        int rv = node_member_add(j->n, j->tag, j->url, tcp, peer, add_done, j, errmsg);
        if (rv != 0)
            code = member_status(rv) == 500 ? 400 : member_status(rv);
    }
    json_decref(info);
    if (code != 0) {
        http_respond_error(req, code, "InvalidOperation", "%s", errmsg);
        free(j);
    }
}

static void h_add_node(struct api *api, struct http_request *req, struct node_auth *a)
{
    struct node *n = api->n;
    if (api_redirect_to_leader(n, req, "Membership changes"))
        return;
    struct add_job *j = calloc(1, sizeof *j);
    if (j == NULL) {
        http_respond_error(req, 500, "InternalError", "out of memory");
        return;
    }
    j->n = n;
    j->req = req;
    char errmsg[CMN_ERRMSG_SIZE] = "";
    int rc = http_query(req, "expectedThumbprint", j->expected, sizeof j->expected, NULL);
    int has_tag = http_query(req, "tag", j->tag, sizeof j->tag, NULL);
    if (http_query(req, "url", j->url, sizeof j->url, NULL) != 1 || has_tag < 0 || rc < 0) {
        free(j);
        http_respond_error(req, 400, "BadRequest",
                           "PUT /admin/cluster/node needs ?url=https://HOST:PORT[&tag=TAG]");
        return;
    }
    if (has_tag == 1 && rft_tag_to_id(j->tag) == 0) {
        http_respond_error(req, 400, "BadRequest", "'%s' is not a node tag (1 to 4 letters A-Z)",
                           j->tag);
        free(j);
        return;
    }
    struct rft_status st;
    rft_status(node_rft(n), &st);
    for (size_t i = 0; i < st.n_members; i++) {
        if (strcmp(st.members[i].tag, j->tag) == 0) {
            http_respond_error(req, 409, "InvalidOperation", "Node tag %s is already in use",
                               j->tag);
            free(j);
            return;
        }
    }
    if (node_fetch(n, j->url, "/cluster/node-info", add_fetched, j, errmsg) != 0) {
        http_respond_error(req, 400, "BadRequest", "%s", errmsg);
        free(j);
    }
    (void)a;
}

static void remove_done(void *ctx, int status, const char *msg)
{
    struct http_request *req = ctx;
    if (status != 0)
        http_respond_error(req, member_status(status), "InvalidOperation", "%s", msg);
    else
        http_respond(req, 204, NULL, NULL, 0, NULL);
}

static void h_remove_node(struct api *api, struct http_request *req, struct node_auth *a)
{
    struct node *n = api->n;
    if (api_redirect_to_leader(n, req, "Membership changes"))
        return;
    char tag[16], errmsg[CMN_ERRMSG_SIZE] = "";
    if (http_query(req, "nodeTag", tag, sizeof tag, NULL) != 1) {
        http_respond_error(req, 400, "BadRequest", "DELETE /admin/cluster/node needs ?nodeTag=TAG");
        return;
    }
    int rv = node_member_remove(n, tag, remove_done, req, errmsg);
    if (rv != 0)
        http_respond_error(req, member_status(rv), "InvalidOperation", "%s", errmsg);
    (void)a;
}

static const struct api_route routes[] = {
    {HTTP_GET, "/cluster/topology", NEED_VALID_USER, h_topology, false, API_NO_BODY},
    {HTTP_GET, "/cluster/node-info", NEED_NONE, h_node_info, true, API_NO_BODY},
    {HTTP_GET, "/info/tcp", NEED_VALID_USER, h_tcp_info, false, API_NO_BODY},
    {HTTP_PUT, "/admin/cluster/node", NEED_CLUSTER_ADMIN, h_add_node, false, API_NO_BODY},
    {HTTP_DELETE, "/admin/cluster/node", NEED_CLUSTER_ADMIN, h_remove_node, false, API_NO_BODY},
};
const struct api_routes api_cluster_routes = {routes, sizeof routes / sizeof routes[0]};
