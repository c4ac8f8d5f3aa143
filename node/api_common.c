/* The HTTPS API's shared helpers: JSON in and out, and writes through Raft with RavenDB's
 * statuses for their outcomes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "node/resource.h"

/* ---- JSON helpers ---- */

void api_upper(const char *in, char *out)
{
    size_t i = 0;
    for (; in[i]; i++)
        out[i] = (char)(in[i] >= 'a' && in[i] <= 'f' ? in[i] - 32 : in[i]);
    out[i] = '\0';
}

void api_respond_json(struct http_request *req, int status, json_t *o)
{
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    if (text == NULL)
        http_respond_error(req, 500, "InternalError", "cannot encode the answer");
    else
        http_respond(req, status, API_JSON_TYPE, text, strlen(text), NULL);
    free(text);
    json_decref(o);
}

bool api_body_json(struct http_request *req, json_t **out)
{
    json_error_t err;
    if (req->body.len == 0) {
        http_respond_error(req, 400, "BadRequest", "The request needs a JSON body");
        return false;
    }
    *out = json_loadb((const char *)req->body.data, req->body.len, JSON_REJECT_DUPLICATES, &err);
    if (*out == NULL || !json_is_object(*out)) {
        http_respond_error(req, 400, "BadRequest", "Invalid JSON body: %s",
                           *out ? "expected an object" : err.text);
        json_decref(*out);
        return false;
    }
    return true;
}

/* Reads RavenDB's Permissions object; NULL on success or the error text. */
const char *api_get_string(json_t *o, const char *key, bool required, const char **out)
{
    json_t *v = json_object_get(o, key);
    *out = NULL;
    if (v == NULL || json_is_null(v))
        return required ? "missing" : NULL;
    if (!json_is_string(v))
        return "must be a string";
    *out = json_string_value(v);
    return NULL;
}

/* ---- writes ---- */

static int status_for(const struct kv_result *res)
{
    switch (res->code) {
    case KV_REJ_NOTFOUND:
        return 404;
    case KV_REJ_FORBIDDEN:
        return 403;
    case KV_REJ_CONFLICT:
        return 409;
    default:
        return 400;
    }
}

/* 507 Insufficient Storage: msg names the node, its DataDir and the figures; a refusal of
 * this node's own (local) also carries them as fields. */
static void respond_disk_full(struct node *n, struct http_request *req, bool local, const char *msg)
{
    char text[1024];
    snprintf(text, sizeof text,
             "%s: writes are refused until that disk has room again (reads go on)", msg);
    json_t *o = json_pack("{s:s, s:s}", "Type", "DiskFull", "Message", text);
    struct node_disk d;
    if (o && local && node_disk_state(n, &d) == 0) {
        json_object_set_new(o, "Node", json_string(node_config(n)->tag));
        json_object_set_new(o, "DataDir", json_string(node_data_dir(n)));
        json_object_set_new(o, "FreeBytes", json_integer((json_int_t)d.free));
        json_object_set_new(o, "NeededBytes", json_integer((json_int_t)d.reserve));
    }
    api_respond_json(req, 507, o);
}

static void write_done(void *ctx, int status, const struct kv_result *res, const char *errmsg)
{
    struct api_write *j = ctx;
    struct http_request *req = j->req;
    if (status == CMN_EBUSY)
        http_respond_error(req, 503, "NoLeader", "%s", errmsg);
    else if (status == CMN_ENOSPACE)
        respond_disk_full(j->n, req, false, errmsg);
    else if (status != 0)
        http_respond_error(req, 500, "InternalError", "%s", errmsg);
    else if (res->rejected)
        http_respond_error(req, status_for(res),
                           res->code == KV_REJ_FORBIDDEN ? "InvalidAuth" : "InvalidOperation", "%s",
                           res->reason);
    else if (j->zip.len) {
        /* Also when res->duplicate: the request id's record holds this very command (its
         * digest covers the certificate), so what is registered is the certificate whose key
         * this node holds. That happens when a forwarded proposal is sent again after a leader
         * change; a client's retry through a node generates another key pair, a different
         * command, refused by apply as a reused id. */
        char extra[600];
        snprintf(extra, sizeof extra, "Content-Disposition: attachment; filename=%s\r\n",
                 j->filename);
        http_respond(req, 200, "application/octet-stream", j->zip.data, j->zip.len, extra);
    } else
        http_respond(req, j->ok_status, NULL, NULL, 0, NULL);
    cmn_buf_fini(&j->zip);
    free(j);
}

void api_write_free(struct api_write *j)
{
    if (j == NULL)
        return;
    cmn_buf_fini(&j->zip);
    free(j);
}

void api_propose(struct node *n, struct http_request *req, struct node_auth *a, struct kv_cmd *cmd,
                 int ok_status, struct api_write *j)
{
    char rid[KV_RID_MAX + 1];
    int count = 0;
    int rc = http_query(req, "raft-request-id", rid, sizeof rid, &count);
    if (rc < 0 || count > 1) {
        /* a replaced id would make a retry apply twice */
        kv_cmd_fini(cmd);
        api_write_free(j);
        http_respond_error(req, 400, "BadRequest",
                           "raft-request-id must be given at most once, with at most %d "
                           "characters",
                           KV_RID_MAX);
        return;
    }
    if (rc == 1 && rid[0]) {
        cmd->request_id = strdup(rid);
        if (cmd->request_id == NULL) {
            kv_cmd_fini(cmd);
            api_write_free(j);
            http_respond_error(req, 500, "InternalError", "out of memory");
            return;
        }
    }
    memcpy(cmd->actor, a->thumb, sizeof cmd->actor);
    cmd->actor_clearance = node_auth_clearance(a);
    cmd->actor_registered = a->registered;
    if (j == NULL) {
        j = calloc(1, sizeof *j);
        if (j == NULL) {
            kv_cmd_fini(cmd);
            http_respond_error(req, 500, "InternalError", "out of memory");
            return;
        }
    }
    j->req = req;
    j->n = n;
    j->ok_status = ok_status;
    char errmsg[CMN_ERRMSG_SIZE] = "";
    int rv = node_propose(n, cmd, write_done, j, errmsg);
    if (rv != 0) {
        cmn_buf_fini(&j->zip);
        free(j);
        if (rv == CMN_ENOSPACE)
            respond_disk_full(n, req, true, errmsg);
        else
            http_respond_error(req, 500, "InternalError", "%s", errmsg);
    }
}

int api_node_url(struct node *n, const char *tag, char *url, size_t cap, char *errmsg)
{
    struct kv_node *nodes = NULL;
    size_t count = 0;
    int rv = kv_node_list(node_kv(n), &nodes, &count, errmsg);
    if (rv != 0) {
        cmn_errctx(errmsg, "cannot read the node records");
        return rv;
    }
    rv = CMN_ENOTFOUND;
    for (size_t i = 0; i < count && rv != 0; i++)
        if (strcmp(nodes[i].tag, tag) == 0)
            rv = snprintf(url, cap, "%s", nodes[i].server_url) < (int)cap ? 0 : CMN_ETOOBIG;
    kv_node_free_array(nodes, count);
    return rv;
}

void api_redirect(struct http_request *req, const char *url, const char *msg)
{
    char extra[6000];
    snprintf(extra, sizeof extra, "Location: %s%s%s%s\r\n", url, req->path,
             req->query[0] ? "?" : "", req->query);
    json_t *o = json_pack("{s:s, s:s}", "Type", "Redirect", "Message", msg);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    http_respond(req, 307, API_JSON_TYPE, text ? text : "{}", text ? strlen(text) : 2, extra);
    free(text);
    json_decref(o);
}

bool api_redirect_to_leader(struct node *n, struct http_request *req, const char *what)
{
    struct rft_status st;
    rft_status(node_rft(n), &st);
    if (st.ready)
        return false;
    char url[1024], errmsg[CMN_ERRMSG_SIZE] = "";
    int rv = st.leader[0] ? api_node_url(n, st.leader, url, sizeof url, errmsg) : CMN_ENOTFOUND;
    if (rv == CMN_ENOTFOUND) {
        http_respond_error(req, 503, "NoLeader",
                           "The cluster has no leader right now: retry when a majority of nodes "
                           "is up");
    } else if (rv != 0) {
        http_respond_error(req, 500, "InternalError", "%s", errmsg);
    } else {
        char msg[128];
        snprintf(msg, sizeof msg, "%s run on the leader, node %s", what, st.leader);
        api_redirect(req, url, msg);
    }
    return true;
}
