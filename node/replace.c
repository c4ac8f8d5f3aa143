/* Replacing node certificates: POST /admin/certificates/replace-node-cert?nodeTag=X rotates
 * node X's certificate with no downtime (node/rotate.c), with the .pfx sent or with a key X
 * makes itself and has certified by the cluster CA; and RavenDB's cluster-wide replacement
 * (replace-cluster-cert, replacement/status and /reset, refresh). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "ca/certfile.h"
#include "ca/encode.h"
#include "common/log.h"
#include "node/resource.h"

/* Answers 307 to node tag's URL; 404 when there is no such node. */
static void redirect_to_node(struct node *n, struct http_request *req, const char *tag)
{
    char url[1024], errmsg[CMN_ERRMSG_SIZE] = "", msg[128];
    int rv = api_node_url(n, tag, url, sizeof url, errmsg);
    snprintf(msg, sizeof msg, "Node %s rotates its own certificate", tag);
    if (rv == CMN_ENOTFOUND)
        http_respond_error(req, 404, "NotFound", "There is no node %s in this cluster", tag);
    else if (rv != 0)
        http_respond_error(req, 500, "InternalError", "%s", errmsg);
    else
        api_redirect(req, url, msg);
}

static void iso_time(int64_t t, char out[32])
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%S.0000000Z", &tm);
}

struct rotate_job {
    struct http_request *req;
    char tag[8]; /* the node rotating */
};

static void rotated(void *ctx, const struct node_rotate_result *res)
{
    struct rotate_job *j = ctx;
    struct http_request *req = j->req;
    if (res->status != 0) {
        int code = res->status == CMN_EDENIED ? 409 : res->status == CMN_EBUSY ? 503 : 500;
        http_respond_error(req, code, code == 503 ? "NoLeader" : "InvalidOperation", "%s",
                           res->msg);
    } else {
        char old_up[CA_THUMBPRINT_SIZE], new_up[CA_THUMBPRINT_SIZE], na[32];
        api_upper(res->old_thumb, old_up);
        api_upper(res->new_thumb, new_up);
        iso_time(res->not_after, na);
        api_respond_json(req, 200,
                         json_pack("{s:s, s:s, s:s, s:s, s:b}", "Node", j->tag, "OldThumbprint",
                                   old_up, "Thumbprint", new_up, "NotAfter", na, "Changed",
                                   !res->unchanged));
    }
    free(j);
}

/* The body's {"Certificate": base64 of a .pfx, "Password": …} into f: the certificate with
 * its private key. Messages say what is wrong, never a byte of the file. */
static int body_identity(json_t *body, struct ca_certfile *f, char *errmsg)
{
    const char *b64 = NULL, *password = NULL, *bad;
    if ((bad = api_get_string(body, "Certificate", true, &b64)) != NULL ||
        (bad = api_get_string(body, "Password", false, &password)) != NULL)
        return cmn_fail(errmsg, CMN_EINVALID, "%s", bad);
    struct cmn_buf raw;
    cmn_buf_init(&raw, true);
    int rv = ca_b64_decode(b64, strlen(b64), &raw, NULL);
    if (rv != 0) {
        cmn_buf_fini(&raw);
        return cmn_fail(errmsg, CMN_EMALFORMED,
                        "Unable to parse the Certificate property, expected a Base64 value");
    }
    enum ca_certfile_step step;
    char why[CMN_ERRMSG_SIZE] = "";
    rv = ca_certfile_parse(raw.data, raw.len, NULL, 0, password, CA_CERTFILE_PFX | CA_CERTFILE_KEY,
                           f, &step, why);
    cmn_buf_fini(&raw);
    if (rv == 0)
        return 0;
    if (step == CA_CERTFILE_NOKEY)
        return cmn_fail(errmsg, CMN_EINVALID,
                        "The provided certificate has no private key: a node needs its key");
    if (rv == CMN_EBADPASSWORD)
        return cmn_fail(errmsg, CMN_EBADPASSWORD,
                        "Unable to open the provided certificate: wrong or missing Password");
    return cmn_fail(errmsg, rv, "Unable to load the provided certificate: %s", why);
}

/* POST /admin/certificates/replace-node-cert?nodeTag=X: body {"Certificate","Password"}, or
 * none for a key X makes itself, certified by the cluster CA. Another node's tag: 307 there. */
static void h_replace_node_cert(struct api *api, struct http_request *req, struct node_auth *a)
{
    struct node *n = api->n;
    const char *self = node_config(n)->tag;
    char tag[16];
    int has = http_query(req, "nodeTag", tag, sizeof tag, NULL);
    if (has != 1 || tag[0] == '\0') {
        http_respond_error(req, 400, "BadRequest", "Query string argument 'nodeTag' is required");
        return;
    }
    if (strcmp(tag, self) != 0) {
        redirect_to_node(n, req, tag);
        return;
    }
    struct ca_certfile f = {0};
    bool have_file = false;
    char errmsg[CMN_ERRMSG_SIZE] = "";
    if (req->body.len > 0) {
        json_t *body;
        if (!api_body_json(req, &body))
            return;
        int rv = body_identity(body, &f, errmsg);
        json_decref(body);
        if (rv != 0) {
            http_respond_error(req, 400, "BadRequest", "%s", errmsg);
            return;
        }
        have_file = true;
    }
    struct ca_cert_list chain;
    ca_cert_list_init(&chain);
    struct node_rotate_req rr = {0};
    int rv = 0;
    if (have_file) {
        rr.cert = f.leaf;
        rr.key = f.key;
        rr.chain = &chain;
        rv = ca_certfile_chain(&f, &chain);
    }
    struct rotate_job *j = calloc(1, sizeof *j);
    if (rv == 0 && j == NULL)
        rv = cmn_fail(errmsg, CMN_ENOMEM, "out of memory");
    if (rv == 0) {
        j->req = req;
        snprintf(j->tag, sizeof j->tag, "%s", self);
        CMN_INFO("NODE-CERT", "%s asked node %s to rotate its certificate%s", a->label, self,
                 have_file ? " to the one it sent" : "");
        rv = node_rotate(n, &rr, rotated, j, errmsg);
    }
    ca_cert_list_fini(&chain);
    if (have_file)
        ca_certfile_fini(&f);
    if (rv != 0) {
        free(j);
        int code = rv == CMN_EEXISTS ? 409 : rv == CMN_EINVALID ? 400 : 503;
        http_respond_error(req, code, code == 400 ? "BadRequest" : "InvalidOperation", "%s",
                           errmsg);
    }
}

/* POST /admin/certificates/replace-cluster-cert?replaceImmediately=: RavenDB's, on the leader
 * (307 elsewhere). Every node switches as soon as it has the new certificate (both are trusted
 * meanwhile), so none waits for the others and replaceImmediately changes nothing. */
static void cluster_installed(void *ctx, int status, const char *msg)
{
    struct rotate_job *j = ctx;
    if (status != 0) {
        int code = status == CMN_EDENIED ? 409 : status == CMN_EBUSY ? 503 : 500;
        http_respond_error(j->req, code, code == 503 ? "NoLeader" : "InvalidOperation",
                           "Failed to replace the server certificate: %s", msg);
    } else {
        http_respond(j->req, 201, NULL, NULL, 0, NULL); /* RavenDB's: no body */
    }
    free(j);
}

static void h_replace_cluster_cert(struct api *api, struct http_request *req, struct node_auth *a)
{
    struct node *n = api->n;
    if (api_redirect_to_leader(n, req, "Server certificate replacements"))
        return;
    char imm[8] = "";
    bool immediately = http_query(req, "replaceImmediately", imm, sizeof imm, NULL) == 1 &&
                       strcmp(imm, "true") == 0;
    json_t *body;
    if (!api_body_json(req, &body))
        return;
    struct ca_certfile f = {0};
    char errmsg[CMN_ERRMSG_SIZE] = "";
    int rv = body_identity(body, &f, errmsg);
    json_decref(body);
    if (rv != 0) {
        http_respond_error(req, 400, "BadRequest", "%s", errmsg);
        return;
    }
    struct ca_cert_list chain;
    ca_cert_list_init(&chain);
    struct node_rotate_req rr = {.cert = f.leaf, .key = f.key, .chain = &chain};
    struct rotate_job *j = calloc(1, sizeof *j);
    rv = j ? ca_certfile_chain(&f, &chain) : cmn_fail(errmsg, CMN_ENOMEM, "out of memory");
    if (rv == 0) {
        j->req = req;
        CMN_INFO("NODE-CERT", "%s asked to replace the server certificate of every node", a->label);
        rv = node_replace_cluster(n, &rr, immediately, cluster_installed, j, errmsg);
    }
    ca_cert_list_fini(&chain);
    ca_certfile_fini(&f);
    if (rv == CMN_EEXISTS) {
        http_respond(req, 201, NULL, NULL, 0, NULL); /* the certificate in use: nothing to do */
    } else if (rv != 0) {
        int code = rv == CMN_EINVALID ? 400 : rv == CMN_EDENIED ? 409 : 503;
        http_respond_error(req, code, code == 400 ? "BadRequest" : "InvalidOperation", "%s",
                           errmsg);
    }
    if (rv != 0)
        free(j);
}

static bool listed(char (*v)[KV_TAG_MAX + 1], size_t n, const char *tag)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i], tag) == 0)
            return true;
    return false;
}

/* GET /admin/certificates/replacement/status: RavenDB's fields, and each node's state with
 * the reason one has not switched. 404 when no replacement is in progress. */
static void h_replacement_status(struct api *api, struct http_request *req, struct node_auth *a)
{
    struct node *n = api->n;
    struct kv_replacement doc;
    char errmsg[CMN_ERRMSG_SIZE] = "";
    int rv = kv_replacement_get(node_kv(n), &doc, errmsg);
    if (rv == CMN_ENOTFOUND) {
        http_respond_error(req, 404, "NotFound",
                           "No server certificate replacement is in progress");
        return;
    }
    struct kv_node *nodes = NULL;
    size_t count = 0;
    if (rv == 0 && (rv = kv_node_list(node_kv(n), &nodes, &count, errmsg)) != 0)
        kv_replacement_fini(&doc);
    if (rv != 0) {
        http_respond_error(req, 500, "InternalError", "%s", errmsg);
        return;
    }
    json_t *list = json_array();
    for (size_t i = 0; i < count; i++) {
        const char *tag = nodes[i].tag, *why = NULL;
        size_t tl = strlen(tag);
        for (size_t k = 0; k < doc.n_notes; k++)
            if (strncmp(doc.notes[k], tag, tl) == 0 && doc.notes[k][tl] == ':')
                why = doc.notes[k] + tl + 2;
        bool replaced = listed(doc.replaced, doc.n_replaced, tag) ||
                        strcasecmp(nodes[i].thumbprint, doc.thumbprint) == 0;
        const char *state = replaced                                      ? "Replaced"
                            : listed(doc.confirmed, doc.n_confirmed, tag) ? "Received"
                                                                          : "Pending";
        if (!replaced && why == NULL)
            why = "has not taken the new certificate yet: it is down, or catching up";
        json_array_append_new(list, json_pack("{s:s, s:s, s:s?}", "Tag", tag, "State", state,
                                              "Note", replaced ? NULL : why));
    }
    char tp[KV_THUMB_LEN + 1], old[KV_THUMB_LEN + 1], at[32];
    api_upper(doc.thumbprint, tp);
    api_upper(doc.old_thumbprint, old);
    iso_time(doc.started_ms / 1000, at);
    api_respond_json(req, 200,
                     json_pack("{s:i, s:i, s:s, s:s, s:b, s:s, s:o}", "Confirmations",
                               (int)doc.n_confirmed, "Replaced", (int)doc.n_replaced, "Thumbprint",
                               tp, "OldThumbprint", old, "ReplaceImmediately",
                               doc.replace_immediately, "StartedAt", at, "Nodes", list));
    kv_node_free_array(nodes, count);
    kv_replacement_fini(&doc);
    (void)a;
}

/* POST /admin/certificates/replacement/reset: forgets the replacement, on every node (RavenDB
 * deletes it on one node only). Nodes that switched keep the new certificate. */
static void h_replacement_reset(struct api *api, struct http_request *req, struct node_auth *a)
{
    struct kv_cmd cmd;
    kv_cmd_init(&cmd, KV_CMD_REPLACE_RESET);
    api_propose(api->n, req, a, &cmd, 204, NULL);
}

static void refreshed(void *ctx, const struct node_rotate_result *res)
{
    struct rotate_job *j = ctx;
    if (res->status != 0)
        http_respond_error(j->req, res->status == CMN_EBUSY ? 503 : 409, "InvalidOperation", "%s",
                           res->msg);
    else
        http_respond(j->req, 204, NULL, NULL, 0, NULL);
    free(j);
}

/* POST /admin/certificates/refresh: this node reads Security.Certificate.Path again and puts a
 * certificate written there meanwhile in place, as a rotation does. */
static void h_refresh(struct api *api, struct http_request *req, struct node_auth *a)
{
    struct rotate_job *j = calloc(1, sizeof *j);
    char errmsg[CMN_ERRMSG_SIZE] = "";
    int rv = j ? 0 : cmn_fail(errmsg, CMN_ENOMEM, "out of memory");
    if (rv == 0) {
        j->req = req;
        rv = node_refresh_identity(api->n, refreshed, j, errmsg);
    }
    if (rv != 0) {
        free(j);
        http_respond_error(req, rv == CMN_EEXISTS ? 409 : 400,
                           rv == CMN_EEXISTS ? "InvalidOperation" : "BadRequest", "%s", errmsg);
    }
    (void)a;
}

static const struct api_route routes[] = {
    {HTTP_POST, "/admin/certificates/replace-node-cert", NEED_CLUSTER_ADMIN, h_replace_node_cert,
     false, API_BODY},
    {HTTP_POST, "/admin/certificates/replace-cluster-cert", NEED_CLUSTER_ADMIN,
     h_replace_cluster_cert, false, API_BODY},
    {HTTP_GET, "/admin/certificates/replacement/status", NEED_CLUSTER_ADMIN, h_replacement_status,
     false, API_NO_BODY},
    {HTTP_POST, "/admin/certificates/replacement/reset", NEED_CLUSTER_ADMIN, h_replacement_reset,
     false, API_NO_BODY},
    {HTTP_POST, "/admin/certificates/refresh", NEED_CLUSTER_ADMIN, h_refresh, false, API_NO_BODY},
};
const struct api_routes api_replace_routes = {routes, sizeof routes / sizeof routes[0]};
