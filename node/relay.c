/* Answers of another node, relayed: GET /admin/stats?nodeTag=X and GET
 * /cluster/node-info?nodeTag=X, so that the Studio (which talks to one node only, its own
 * origin) shows every node's "last used" times and state. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <http_parser.h>

#include "common/log.h"
#include "node/resource.h"

/* The paths whose answer is per node, and the least a caller needs to ask another node
 * (node-info answers anyone about this node, but asking another one makes this node connect
 * out: only for registered certificates). */
static const struct {
    const char *path;
    enum auth_status least;
} relayed[] = {
    {"/admin/stats", AUTH_OPERATOR},
    {"/cluster/node-info", AUTH_ALLOWED},
};

struct relay_job {
    struct node *n;
    struct http_request *req;
    char tag[16];
    char url[256];
};

static void relay_answered(void *ctx, int status, const char *msg, X509 *peer, int http_status,
                           const char *body, size_t len)
{
    struct relay_job *j = ctx;
    char errmsg[CMN_ERRMSG_SIZE] = "no certificate presented";
    if (status != 0) {
        http_respond_error(j->req, 502, "NodeUnreachable", "Node %s (%s) did not answer: %s",
                           j->tag, j->url, msg);
    } else if (peer == NULL || node_peer_trust(j->n, peer, j->tag, errmsg) != 0) {
        CMN_WARN("HTTP-RELAY", "node %s at %s: %s", j->tag, j->url, errmsg);
        http_respond_error(j->req, 502, "NodeUntrusted",
                           "The server at %s did not present node %s's certificate: %s", j->url,
                           j->tag, errmsg);
    } else if (http_status < 200 || http_status > 599) {
        http_respond_error(j->req, 502, "NodeUnreachable", "Node %s (%s) answered HTTP %d", j->tag,
                           j->url, http_status);
    } else {
        http_respond(j->req, http_status, API_JSON_TYPE, body ? body : "", body ? len : 0, NULL);
    }
    free(j);
}

bool api_relay(struct api *api, struct http_request *req, const struct node_auth *a)
{
    struct node *n = api->n;
    if (req->method != HTTP_GET)
        return false;
    size_t i = 0;
    while (i < sizeof relayed / sizeof relayed[0] && strcmp(relayed[i].path, req->path) != 0)
        i++;
    if (i == sizeof relayed / sizeof relayed[0])
        return false;
    char tag[16];
    int has = http_query(req, "nodeTag", tag, sizeof tag, NULL);
    if (has == 0 || (has == 1 && strcmp(tag, node_config(n)->tag) == 0))
        return false;
    if (has < 0) {
        http_respond_error(req, 400, "BadRequest", "'nodeTag' must be a node tag");
        return true;
    }
    if (a->status < relayed[i].least) {
        http_respond_error(req, 403, "InvalidAuth",
                           "Asking node %s through node %s needs a registered certificate", tag,
                           node_config(n)->tag);
        return true;
    }
    struct relay_job *j = calloc(1, sizeof *j);
    char errmsg[CMN_ERRMSG_SIZE] = "";
    int rv = j ? api_node_url(n, tag, j->url, sizeof j->url, errmsg) : CMN_ENOMEM;
    if (rv != 0) {
        if (rv == CMN_ENOTFOUND)
            http_respond_error(req, 404, "NotFound", "There is no node %s in this cluster", tag);
        else
            http_respond_error(req, 500, "InternalError", "%s",
                               rv == CMN_ENOMEM ? "out of memory" : errmsg);
        free(j);
        return true;
    }
    j->n = n;
    j->req = req;
    snprintf(j->tag, sizeof j->tag, "%s", tag);
    if (node_fetch(n, j->url, req->path, relay_answered, j, errmsg) != 0) {
        http_respond_error(req, 502, "NodeUnreachable", "Node %s (%s) did not answer: %s", j->tag,
                           j->url, errmsg);
        free(j);
    }
    return true;
}
