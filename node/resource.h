/* The HTTPS API room's own interface, shared by its router (node/api.c), its helpers
 * (node/api_common.c) and its resources (node/certs.c, node/cluster.c, node/pki.c): the
 * room's state, the route each resource exports, JSON in and out, and writes through Raft.
 * Nothing outside the room includes it. */
#ifndef CORVID_NODE_RESOURCE_H
#define CORVID_NODE_RESOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "node/auth.h"
#include "node/http.h"
#include "node/node.h"

#define API_JSON_TYPE "application/json; charset=utf-8"
#define API_NO_BODY   0                   /* a body sent is skipped, unbuffered */
#define API_BODY      HTTP_MAX_BODY_BYTES /* the largest body a route reads */

struct api_crl;
struct lastused;

/* The room: created by node_api_start, owned by the core from then on (node_room_add). */
struct api {
    struct node *n;
    SSL_CTX *ctx; /* HTTPS, this node's certificate */
    struct http_server *http;
    struct lastused *lastused; /* node/lastused.h */
    struct api_crl *crl;       /* the signed CRL GET /ca/crl serves (node/pki.c) */
};

/* Answers req (now, or later from a callback); a is the caller, authorized for the route. */
typedef void (*api_handler_fn)(struct api *api, struct http_request *req, struct node_auth *a);

struct api_route {
    int method;       /* http_parser's enum http_method */
    const char *path; /* ending in "*": every path that starts with what comes before it */
    enum route_need need;
    api_handler_fn fn;
    bool early;      /* answered before the node caught up: reads nothing of the trust state */
    size_t max_body; /* API_NO_BODY or the most it reads */
};

/* The routes of one resource file. */
struct api_routes {
    const struct api_route *v;
    size_t n;
};
extern const struct api_routes api_cert_routes;    /* node/certs.c */
extern const struct api_routes api_cluster_routes; /* node/cluster.c */
extern const struct api_routes api_pki_routes;     /* node/pki.c */
extern const struct api_routes api_twofa_routes;   /* node/twofa.c */
extern const struct api_routes api_studio_routes;  /* node/studio.c */
extern const struct api_routes api_replace_routes; /* node/replace.c */

/* The route for (method, path), path without trailing slashes; NULL when there is none, and
 * *path_known then tells a path served for other methods (405) from an unknown one (404). */
const struct api_route *api_route_find(int method, const char *path, bool *path_known);

/* CSRF (node/api.c): a browser presents its client certificate to the node whichever page
 * sends the request, so a state-changing request (any method but GET, HEAD and OPTIONS) that a
 * browser sent from another site's page is refused, before anything else is looked at.
 * Browsers name the page's origin in Origin on every such request (form posts included), and
 * Sec-Fetch-Site says where it came from; a client that is no browser (curl, the CLI,
 * RavenDB's clients) sends neither and is not concerned. Whether req may go on: its Origin is
 * the node as the browser reached it (https:// and the Host header) or the origin of one of
 * urls; without Origin, Sec-Fetch-Site is absent, same-origin or none. "Origin: null" (a
 * sandboxed or local page) is refused. */
bool api_same_site(const struct http_request *req, const char *const *urls, size_t n_urls);

/* ---- JSON (node/api_common.c) ---- */

/* A thumbprint in upper case (out holds at least strlen(in) + 1). */
void api_upper(const char *in, char *out);
/* Answers status with o as compact JSON (o consumed; NULL answers 500). */
void api_respond_json(struct http_request *req, int status, json_t *o);
/* Parses the body as a JSON object into *out (the caller's); answers 400 and returns false
 * when it is missing or not an object. */
bool api_body_json(struct http_request *req, json_t **out);
/* Reads string field key of o into *out (borrowed from o); NULL, or the error text. */
const char *api_get_string(json_t *o, const char *key, bool required, const char **out);

/* ---- writes through Raft (node/api_common.c) ---- */

/* A write in flight; a handler that answers with a file (POST /admin/certificates) passes
 * its own with zip and filename set. */
struct api_write {
    struct http_request *req;
    struct node *n;
    int ok_status;
    struct cmn_buf zip;
    char filename[400];
};
void api_write_free(struct api_write *j);
/* Proposes cmd (consumed) for caller a, with the request's raft-request-id; answers once it
 * is applied here: ok_status without a body, or j's zip; refusals with RavenDB's statuses,
 * 503 NoLeader, 507 DiskFull. j (consumed) may be NULL. */
void api_propose(struct node *n, struct http_request *req, struct node_auth *a, struct kv_cmd *cmd,
                 int ok_status, struct api_write *j);

/* Node tag's URL from the node records into url: 0, CMN_ENOTFOUND, or the read's error. */
int api_node_url(struct node *n, const char *tag, char *url, size_t cap, char *errmsg);
/* Answers 307 to the same path and query at url (another node), msg saying why. */
void api_redirect(struct http_request *req, const char *url, const char *msg);
/* Answers 307 to the leader's URL (what: "Membership changes", … run on the leader) when this
 * node is not the leader, 503 when none is known; true when answered. */
bool api_redirect_to_leader(struct node *n, struct http_request *req, const char *what);

/* ---- answers from another node of the cluster (node/relay.c) ---- */

/* GET /admin/stats and GET /cluster/node-info with ?nodeTag=X name node X's answer, as
 * RavenDB's Studio asks for each node's statistics: when X is another node, this node asks X
 * (as itself, over HTTPS, X's certificate checked as X's) and relays X's status and JSON.
 * The caller was authorized for the route here. True when req was taken (answered now or
 * later); false when it is this node's to answer. */
bool api_relay(struct api *api, struct http_request *req, const struct node_auth *a);

/* ---- the signed CRL's cache (node/pki.c) ---- */

void api_crl_forget(struct api *api);

#endif
