/* The HTTPS API: its server and TLS context, the router (route, authenticate, authorize,
 * then the resource's handler), and the reaction to trust changes. The resources are in
 * node/certs.c, node/cluster.c and node/pki.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <http_parser.h>

#include "ca/tls.h"
#include "common/env.h"
#include "common/log.h"
#include "net/url.h"
#include "node/api.h"
#include "node/lastused.h"
#include "node/resource.h"
#include "raft/transport.h"

/* ---- routing ---- */

/* Every resource's routes; a new resource adds its table here. */
static const struct api_routes *const tables[] = {&api_cert_routes,   &api_cluster_routes,
                                                  &api_pki_routes,    &api_twofa_routes,
                                                  &api_studio_routes, &api_replace_routes};

const struct api_route *api_route_find(int method, const char *path, bool *path_known)
{
    *path_known = false;
    for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++) {
        for (size_t i = 0; i < tables[t]->n; i++) {
            const struct api_route *r = &tables[t]->v[i];
            size_t len = strlen(r->path);
            if (len > 0 && r->path[len - 1] == '*' ? strncmp(r->path, path, len - 1) != 0
                                                   : strcmp(r->path, path) != 0)
                continue;
            *path_known = true;
            if (r->method == method)
                return r;
        }
    }
    return NULL;
}

/* The connection's authentication, (re)computed after any trust change and when the
 * certificate's validity ends; NULL when out of memory. */
static struct node_auth *conn_auth(struct node *n, struct http_request *req)
{
    void **slot = http_conn_auth(req->conn);
    struct node_auth *a = *slot;
    if (a == NULL) {
        a = calloc(1, sizeof *a);
        if (a == NULL)
            return NULL;
        a->gen = UINT64_MAX;
        *slot = a;
        req->auth = a;
    }
    int64_t now_s = cmn_now_ms(&cmn_clock_system) / 1000;
    if (a->gen != node_trust_gen(n) ||
        (a->status != AUTH_NO_CERT && (now_s > a->not_after || now_s < a->not_before))) {
        node_auth_compute(n, req->peer, now_s, a);
        if (a->renewal)
            node_auth_register_renewal(n, a);
    }
    return a;
}

static bool authorized(struct node *n, struct http_request *req, struct node_auth *a,
                       const struct api_route *r)
{
    if (node_auth_check(n, req, a, r->need))
        return true;
    CMN_INFO("HTTP-AUTH", "refused %s %s for %s", req->method_name, req->path,
             a->thumb_upper[0] ? a->thumb_upper : "a client without a certificate");
    return false;
}

/* Routes that read the trust state answer only while the node serves (node_serves): caught up,
 * and holding a read lease, so that no acknowledged revocation can be missing from what it
 * reads. Otherwise 503 NotReady with the reason; false then. */
static bool serves_or_503(struct node *n, struct http_request *req)
{
    char why[128] = "";
    if (node_serves(n, why, sizeof why))
        return true;
    struct rft_status st;
    rft_status(node_rft(n), &st);
    if (strcmp(st.state, "Passive") == 0)
        http_respond_error(req, 503, "NotReady",
                           "Node %s is not part of a cluster yet: add it with PUT "
                           "/admin/cluster/node on the cluster's leader",
                           node_config(n)->tag);
    else if (!node_caught_up(n) && st.leader[0] == '\0')
        http_respond_error(req, 503, "NotReady",
                           "Node %s knows no leader of its cluster (cut off from the majority, "
                           "or no quorum): retry on another node",
                           node_config(n)->tag);
    else if (!node_caught_up(n))
        http_respond_error(req, 503, "NotReady",
                           "Node %s is catching up with the cluster: retry in a moment",
                           node_config(n)->tag);
    else
        http_respond_error(req, 503, "NotReady",
                           "Node %s may not answer from its trust state: %s (cut off from the "
                           "majority, or an election is under way): retry on another node",
                           node_config(n)->tag, why);
    return false;
}

/* ---- cross-site requests ---- */

static bool same_origin(const char *origin, const char *url)
{
    struct net_url u;
    char why[CMN_ERRMSG_SIZE];
    return url && net_url_parse(url, 0, &u, why) == 0 && strcasecmp(u.origin, origin) == 0;
}

bool api_same_site(const struct http_request *req, const char *const *urls, size_t n_urls)
{
    if (req->method == HTTP_GET || req->method == HTTP_HEAD || req->method == HTTP_OPTIONS)
        return true;
    if (req->origin[0] == '\0')
        return req->fetch_site[0] == '\0' || strcmp(req->fetch_site, "same-origin") == 0 ||
               strcmp(req->fetch_site, "none") == 0;
    char here[sizeof req->host + 16];
    snprintf(here, sizeof here, "https://%s", req->host);
    if (req->host[0] && same_origin(req->origin, here))
        return true;
    for (size_t i = 0; i < n_urls; i++)
        if (same_origin(req->origin, urls[i]))
            return true;
    return false;
}

/* api_same_site with this node's URLs, then, for an Origin that is none of them, the URLs of
 * every node of the cluster (a trust state that cannot be read adds none). On refusal answers
 * 403 CrossSiteRequest and returns false. */
static bool same_site_or_403(struct node *n, struct http_request *req)
{
    const char *own[] = {node_config(n)->public_url, node_config(n)->server_url};
    if (api_same_site(req, own, 2))
        return true;
    bool same = false;
    struct kv_node *nodes = NULL;
    size_t count = 0;
    char errmsg[CMN_ERRMSG_SIZE];
    if (req->origin[0] && kv_node_list(node_kv(n), &nodes, &count, errmsg) == 0) {
        for (size_t i = 0; i < count && !same; i++) {
            const char *url = nodes[i].server_url;
            same = api_same_site(req, &url, 1);
        }
        kv_node_free_array(nodes, count);
    }
    if (same)
        return true;
    const char *from = req->origin[0] ? req->origin : req->fetch_site;
    CMN_WARN("HTTP-CSRF", "refused %s %s sent from %s", req->method_name, req->path, from);
    http_respond_error(req, 403, "CrossSiteRequest",
                       "Refused a %s request sent by a page of another site (%s): state-changing "
                       "requests from a browser must come from this node's own Studio",
                       req->method_name, from);
    return false;
}

/* The request's headers are complete: route, authenticate and authorize now, so that a
 * refused request never has its body read (http_head_fn). Returns the body the route takes. */
static size_t on_head(void *ctx, struct http_request *req)
{
    struct api *api = ctx;
    struct node *n = api->n;
    struct node_auth *a = conn_auth(n, req);
    if (a == NULL) {
        http_close_after(req);
        http_respond_error(req, 500, "InternalError", "out of memory");
        return 0;
    }
    size_t plen = strlen(req->path);
    while (plen > 1 && req->path[plen - 1] == '/')
        req->path[--plen] = '\0';
    bool path_known;
    const struct api_route *match = api_route_find(req->method, req->path, &path_known);
    if (match == NULL) {
        if (path_known)
            http_respond_error(req, 405, "MethodNotAllowed", "%s is not allowed on %s",
                               req->method_name, req->path);
        else
            http_respond_error(req, 404, "NotFound", "There is no endpoint %s %s", req->method_name,
                               req->path);
        return 0;
    }
    if (!same_site_or_403(n, req))
        return 0;
    if (a->thumb[0] && a->status >= AUTH_ALLOWED) {
        uint64_t now_ms = uv_now(node_loop(n));
        if (now_ms - a->last_used_ms >= LASTUSED_EVERY_MS || a->last_used_ms == 0) {
            a->last_used_ms = now_ms;
            lastused_touch(api->lastused, a->thumb, cmn_now_ms(&cmn_clock_system));
        }
    }
    if (!match->early && !serves_or_503(n, req))
        return 0;
    if (!authorized(n, req, a, match))
        return 0;
    req->route = match;
    return match->max_body;
}

/* The whole request arrived (http_handler_fn). The trust state may have changed while its
 * body did: then the caller is checked again. */
static void on_request(void *ctx, struct http_request *req)
{
    struct api *api = ctx;
    struct node *n = api->n;
    const struct api_route *match = req->route;
    struct node_auth *a = *http_conn_auth(req->conn);
    /* its lease may have run out while the body came */
    if (!match->early && !serves_or_503(n, req))
        return;
    if (a->gen != node_trust_gen(n)) {
        a = conn_auth(n, req);
        if (!authorized(n, req, a, match))
            return;
    }
    if (api_relay(api, req, a))
        return;
    match->fn(api, req, a);
}

static void conn_gone(void *ctx, void *auth)
{
    (void)ctx;
    node_auth_free(auth);
}

static bool auth_revoked(void *ctx, void *auth)
{
    const struct node_trust_change *ch = ctx;
    const struct node_auth *a = auth;
    for (size_t i = 0; i < ch->n_removed; i++)
        if (strcmp(ch->removed[i], a->thumb) == 0)
            return true;
    return false;
}

static void api_trust_changed(void *room, const struct node_trust_change *ch)
{
    struct api *api = room;
    if (ch == NULL || (ch->effects & (KV_FX_CRL | KV_FX_CA)))
        api_crl_forget(api);
    if (ch && (ch->effects & KV_FX_REMOVED)) {
        for (size_t i = 0; i < ch->n_removed; i++)
            lastused_forget(api->lastused, ch->removed[i]);
        if (api->http)
            http_server_drop(api->http, auth_revoked, (void *)ch);
    }
}

static void api_identity_changed(void *room, SSL_CTX *server_ctx)
{
    struct api *api = room;
    if (api->http)
        http_server_set_ctx(api->http, server_ctx);
    SSL_CTX_free(api->ctx);
    api->ctx = server_ctx;
}

static void api_close(void *room)
{
    struct api *api = room;
    if (api->http)
        http_server_close(api->http, NULL, NULL);
}

static void api_free(void *room)
{
    struct api *api = room;
    http_server_free(api->http);
    SSL_CTX_free(api->ctx);
    lastused_free(api->lastused);
    api_crl_forget(api);
    free(api);
}

static const struct node_room_ops api_ops = {.trust_changed = api_trust_changed,
                                             .identity_changed = api_identity_changed,
                                             .close = api_close,
                                             .free = api_free};

int node_api_start(struct node *n, char *errmsg)
{
    struct api *api = calloc(1, sizeof *api);
    if (api == NULL)
        return cmn_fail(errmsg, CMN_ENOMEM, "out of memory");
    api->n = n;
    int rv = node_room_add(n, &api_ops, api); /* the core frees it from now on */
    if (rv != 0)
        return cmn_fail(errmsg, rv, "too many rooms");
    if ((api->lastused = lastused_new()) == NULL)
        return cmn_fail(errmsg, CMN_ENOMEM, "out of memory");
    struct ca_tls_ident id = {.cert = node_cert(n), .key = node_key(n), .chain = node_chain(n)};
    if ((rv = ca_tls_server_ctx(&id, &api->ctx, errmsg)) != 0) {
        cmn_errctx(errmsg, "HTTPS setup");
        return rv;
    }
    char hostport[256];
    if (node_url_hostport(node_config(n)->server_url, hostport, sizeof hostport) != 0)
        return cmn_fail(errmsg, CMN_EINVALID, "ServerUrl: bad URL");
    rv = http_server_start(node_loop(n), api->ctx, hostport, on_head, on_request, conn_gone, api,
                           &api->http, errmsg);
    if (rv != 0)
        cmn_errctx(errmsg, "ServerUrl");
    return rv;
}
