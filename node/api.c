/* The HTTP API: RavenDB's certificate endpoints and Corvid's additions, with routing,
 * per-route clearance, JSON in and out, and writes through Raft. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <http_parser.h>
#include <jansson.h>

#include "ca/tls.h"
#include "common/env.h"
#include "common/log.h"
#include "node/auth.h"
#include "node/node.h"
#include "raft/transport.h"

#define JSON_TYPE          "application/json; charset=utf-8"
#define LAST_USED_EVERY_MS 15000
#define DEFAULT_PAGE       1024

/* ---- "last used" per certificate (node-local, like RavenDB's statistics) ---- */

struct lu_entry {
    char thumb[41];
    int64_t when_ms;
    struct lu_entry *next;
};

struct node_lastused {
    struct lu_entry *buckets[4096];
};

static unsigned lu_hash(const char *t)
{
    unsigned h = 2166136261u;
    for (; *t; t++)
        h = (h ^ (unsigned char)*t) * 16777619u;
    return h % 4096;
}

static void lu_touch(struct node *n, const char *thumb, int64_t now_ms)
{
    if (n->lastused == NULL && (n->lastused = calloc(1, sizeof *n->lastused)) == NULL)
        return;
    struct lu_entry **b = &n->lastused->buckets[lu_hash(thumb)];
    for (struct lu_entry *e = *b; e; e = e->next) {
        if (strcmp(e->thumb, thumb) == 0) {
            if (now_ms - e->when_ms >= LAST_USED_EVERY_MS)
                e->when_ms = now_ms;
            return;
        }
    }
    struct lu_entry *e = calloc(1, sizeof *e);
    if (e == NULL)
        return;
    snprintf(e->thumb, sizeof e->thumb, "%s", thumb);
    e->when_ms = now_ms;
    e->next = *b;
    *b = e;
}

static void lu_forget(struct node *n, const char *thumb)
{
    if (n->lastused == NULL)
        return;
    for (struct lu_entry **p = &n->lastused->buckets[lu_hash(thumb)]; *p; p = &(*p)->next) {
        if (strcmp((*p)->thumb, thumb) == 0) {
            struct lu_entry *e = *p;
            *p = e->next;
            free(e);
            return;
        }
    }
}

static void lu_free(struct node *n)
{
    if (n->lastused == NULL)
        return;
    for (size_t i = 0; i < 4096; i++) {
        struct lu_entry *e = n->lastused->buckets[i];
        while (e) {
            struct lu_entry *next = e->next;
            free(e);
            e = next;
        }
    }
    free(n->lastused);
    n->lastused = NULL;
}

/* ---- JSON helpers ---- */

/* .NET's round-trip format, as RavenDB writes dates. */
static void iso(int64_t secs, char out[40])
{
    time_t t = (time_t)secs;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 40, "%Y-%m-%dT%H:%M:%S.0000000Z", &tm);
}

static json_t *perms_json(const struct kv_perm *perms, size_t n)
{
    json_t *o = json_object();
    for (size_t i = 0; i < n; i++)
        json_object_set_new(o, perms[i].db, json_string(kv_access_name(perms[i].access)));
    return o;
}

static void upper(const char *in, char *out)
{
    size_t i = 0;
    for (; in[i]; i++)
        out[i] = (char)(in[i] >= 'a' && in[i] <= 'f' ? in[i] - 32 : in[i]);
    out[i] = '\0';
}

/* RavenDB's CertificateDefinition; the TOTP key is never returned. */
static json_t *def_json(const struct kv_cert *c, bool metadata_only)
{
    char tp[41], nb[40], na[40];
    upper(c->thumbprint, tp);
    iso(c->not_before, nb);
    iso(c->not_after, na);
    json_t *sec = json_array();
    for (size_t i = 0; i < c->n_secondaries; i++) {
        char s[41];
        upper(c->secondaries[i], s);
        json_array_append_new(sec, json_string(s));
    }
    char pri[41] = "";
    upper(c->primary, pri);
    json_t *o = json_pack("{s:s, s:s, s:s, s:o, s:s, s:s, s:s, s:o, s:s, s:b}", "Name",
                          c->name ? c->name : "", "Thumbprint", tp, "SecurityClearance",
                          kv_clearance_name(c->clearance), "Permissions",
                          perms_json(c->perms, c->n_perms), "NotAfter", na, "NotBefore", nb,
                          "PublicKeyPinningHash", c->pkph, "CollectionSecondaryKeys", sec,
                          "CollectionPrimaryKey", pri, "HasTwoFactor", c->twofa_key != NULL);
    if (o && !metadata_only) {
        struct cmn_buf b64;
        cmn_buf_init(&b64, false);
        if (ca_b64_encode(c->der, c->der_len, &b64) == 0)
            json_object_set_new(o, "Certificate", json_string((const char *)b64.data));
        cmn_buf_fini(&b64);
    }
    return o;
}

static void respond_json(struct http_request *req, int status, json_t *o)
{
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    if (text == NULL)
        http_respond_error(req, 500, "InternalError", "cannot encode the answer");
    else
        http_respond(req, status, JSON_TYPE, text, strlen(text), NULL);
    free(text);
    json_decref(o);
}

/* Parses the JSON body into *out; answers 400 and returns false on bad JSON. */
static bool body_json(struct http_request *req, json_t **out)
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
static const char *parse_perms(json_t *v, struct kv_perm **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (v == NULL || json_is_null(v))
        return "Permissions is a required field in the certificate definition";
    if (!json_is_object(v))
        return "Permissions must be an object of database name to access";
    size_t count = json_object_size(v);
    if (count > KV_PERMS_MAX)
        return "too many databases in Permissions";
    *out = calloc(count ? count : 1, sizeof **out);
    if (*out == NULL)
        return "out of memory";
    const char *db;
    json_t *acc;
    json_object_foreach(v, db, acc)
    {
        enum kv_access a;
        if (db[0] == '\0' || strlen(db) > 128 || strpbrk(db, "/\\\"'<>:|?*") != NULL)
            return "Permissions: invalid database name";
        if (!json_is_string(acc) || kv_access_parse(json_string_value(acc), &a) != 0)
            return "Permissions: access must be ReadWrite, Admin or Read";
        (*out)[*n].db = strdup(db);
        (*out)[*n].access = a;
        (*n)++;
    }
    return NULL;
}

static void free_perms(struct kv_perm *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(p[i].db);
    free(p);
}

static const char *parse_clearance(json_t *v, enum kv_clearance *out)
{
    /* RavenDB defaults an omitted clearance to UnauthenticatedClients, which can do nothing;
     * a demanding user wants ValidUser, the least privileged working level. */
    if (v == NULL || json_is_null(v)) {
        *out = KV_CL_VALID_USER;
        return NULL;
    }
    if (!json_is_string(v) || kv_clearance_parse(json_string_value(v), out) != 0 ||
        *out == KV_CL_UNAUTHENTICATED)
        return "SecurityClearance must be ClusterAdmin, ClusterNode, Operator or ValidUser";
    return NULL;
}

static const char *get_string(json_t *o, const char *key, bool required, const char **out)
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

struct write_job {
    struct http_request *req;
    struct node *n;
    int ok_status;
    /* for POST /admin/certificates */
    struct cmn_buf zip;
    char filename[400];
};

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
        json_object_set_new(o, "Node", json_string(n->cfg.tag));
        json_object_set_new(o, "DataDir", json_string(n->data_dir_abs));
        json_object_set_new(o, "FreeBytes", json_integer((json_int_t)d.free));
        json_object_set_new(o, "NeededBytes", json_integer((json_int_t)d.reserve));
    }
    respond_json(req, 507, o);
}

static void write_done(void *ctx, int status, const struct kv_result *res, const char *errmsg)
{
    struct write_job *j = ctx;
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

static void write_job_free(struct write_job *j)
{
    if (j == NULL)
        return;
    cmn_buf_fini(&j->zip);
    free(j);
}

/* Proposes cmd for the caller; answers ok_status (no body) once applied here. */
static void propose(struct node *n, struct http_request *req, struct node_auth *a,
                    struct kv_cmd *cmd, int ok_status, struct write_job *j)
{
    char rid[KV_RID_MAX + 1];
    int count = 0;
    int rc = http_query(req, "raft-request-id", rid, sizeof rid, &count);
    if (rc < 0 || count > 1) {
        /* a replaced id would make a retry apply twice */
        kv_cmd_fini(cmd);
        write_job_free(j);
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
            write_job_free(j);
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

/* ---- handlers ---- */

typedef void (*handler_fn)(struct node *n, struct http_request *req, struct node_auth *a);

static void h_whoami(struct node *n, struct http_request *req, struct node_auth *a)
{
    if (!a->registered && a->status != AUTH_CLUSTER_ADMIN) {
        http_respond(req, 204, NULL, NULL, 0, NULL);
        return;
    }
    json_t *o;
    if (a->registered) {
        o = def_json(&a->def, false);
    } else {
        /* The server certificate and well-known admins are ClusterAdmin without a record. */
        char nb[40], na[40];
        iso(a->not_before, nb);
        iso(a->not_after, na);
        bool server = strcmp(a->thumb, n->thumb) == 0;
        o = json_pack("{s:s, s:s, s:s, s:{}, s:s, s:s, s:b}", "Name", a->source, "Thumbprint",
                      a->thumb_upper, "SecurityClearance", server ? "ClusterNode" : "ClusterAdmin",
                      "Permissions", "NotAfter", na, "NotBefore", nb, "HasTwoFactor", 0);
    }
    if (o)
        json_object_set_new(o, "TwoFactorExpirationDate", json_null());
    respond_json(req, 200, o);
}

static json_t *server_cert_entry(struct node *n, bool metadata_only)
{
    struct kv_cert c;
    char errmsg[CMN_ERRMSG_SIZE];
    if (node_cert_record(n, n->cert, "Server Certificate", KV_CL_CLUSTER_NODE, &c, errmsg) != 0)
        return NULL;
    json_t *o = def_json(&c, metadata_only);
    kv_cert_fini(&c);
    return o;
}

static bool parse_size(struct http_request *req, const char *name, size_t dflt, size_t max,
                       size_t *out)
{
    char v[32];
    int rc = http_query(req, name, v, sizeof v, NULL);
    *out = dflt;
    if (rc == 0)
        return true;
    char *end;
    long long x = rc == 1 ? strtoll(v, &end, 10) : -1;
    if (rc != 1 || *end || x < 0 || (unsigned long long)x > max) {
        http_respond_error(req, 400, "BadRequest", "'%s' must be a number from 0 to %zu", name,
                           max);
        return false;
    }
    *out = (size_t)x;
    return true;
}

static void h_get_certs(struct node *n, struct http_request *req, struct node_auth *a)
{
    char thumb[64] = "", name[KV_NAME_MAX + 1] = "", days[32] = "";
    bool metadata_only = http_query_bool(req, "metadataOnly", false);
    bool secondary = http_query_bool(req, "secondary", false);
    size_t start, page;
    if (!parse_size(req, "start", 0, SIZE_MAX / 2, &start) ||
        !parse_size(req, "pageSize", DEFAULT_PAGE, 1000000, &page))
        return;
    int has_thumb = http_query(req, "thumbprint", thumb, sizeof thumb, NULL);
    int has_name = http_query(req, "name", name, sizeof name, NULL);
    int has_days = http_query(req, "expiringWithinDays", days, sizeof days, NULL);
    if (has_thumb < 0 || has_name < 0 || has_days < 0) {
        http_respond_error(req, 400, "BadRequest", "bad query string");
        return;
    }
    int64_t horizon = 0;
    if (has_days == 1) {
        char *end;
        long d = strtol(days, &end, 10);
        if (*end || d < 0 || d > 36500) {
            http_respond_error(req, 400, "BadRequest",
                               "'expiringWithinDays' must be a number of days from 0 to 36500");
            return;
        }
        horizon = cmn_now_ms(&cmn_clock_system) / 1000 + (int64_t)d * 86400;
    }
    json_t *results = json_array();
    if (has_thumb == 1) {
        struct kv_cert c;
        int rv = kv_cert_get(n->kv, thumb, &c, NULL);
        if (rv == CMN_ENOTFOUND && strcasecmp(thumb, n->thumb) == 0) {
            json_array_append_new(results, server_cert_entry(n, metadata_only));
        } else if (rv != 0) {
            json_decref(results);
            http_respond_error(req, 404, "NotFound", "Certificate %s was not found", thumb);
            return;
        } else {
            if (c.primary[0]) { /* a secondary answers with its primary */
                struct kv_cert p;
                if (kv_cert_get(n->kv, c.primary, &p, NULL) == 0) {
                    kv_cert_fini(&c);
                    c = p;
                }
            }
            json_array_append_new(results, def_json(&c, metadata_only));
            kv_cert_fini(&c);
        }
    } else {
        if (has_name != 1 && has_days != 1 && start == 0)
            json_array_append_new(results, server_cert_entry(n, metadata_only));
        struct kv_cert *list = NULL;
        size_t count = 0;
        bool filtered = has_name == 1 || has_days == 1;
        int rv = kv_cert_list(n->kv, secondary, filtered ? 0 : start, filtered ? SIZE_MAX : page,
                              &list, &count, NULL);
        if (rv != 0) {
            json_decref(results);
            http_respond_error(req, 500, "InternalError", "cannot read the trust state");
            return;
        }
        size_t skipped = 0, taken = 0;
        for (size_t i = 0; i < count; i++) {
            if (has_name == 1 && strcmp(list[i].name, name) != 0)
                continue;
            if (has_days == 1 && list[i].not_after > horizon)
                continue;
            if (!filtered && strcmp(list[i].thumbprint, n->thumb) == 0)
                continue; /* listed first, as "Server Certificate" */
            if (filtered && skipped < start) {
                skipped++;
                continue;
            }
            if (taken++ >= page)
                break;
            json_array_append_new(results, def_json(&list[i], metadata_only));
        }
        kv_cert_free_array(list, count);
    }
    json_t *wk = json_array();
    for (size_t i = 0; i < n->cfg.n_admin_thumbprints; i++)
        json_array_append_new(wk, json_string(n->cfg.admin_thumbprints[i]));
    json_t *issuers = json_array();
    for (size_t i = 0; i < n->issuers.n; i++) {
        char tp[CA_THUMBPRINT_SIZE] = "";
        CMN_IGNORE(ca_thumbprint(n->issuers.v[i], tp));
        json_array_append_new(issuers, json_string(tp));
    }
    char own[41];
    upper(n->thumb, own);
    respond_json(req, 200,
                 json_pack("{s:o, s:s, s:o, s:o}", "Results", results, "LoadedServerCert", own,
                           "WellKnownAdminCerts", wk, "WellKnownIssuers", issuers));
    (void)a;
}

/* The clearance rule every certificate change follows, checked before proposing (the state
 * machine checks it again at apply time). */
static bool may_touch(struct http_request *req, struct node_auth *a, enum kv_clearance target,
                      const char *verb, const char *name)
{
    if (kv_clearance_is_admin(target) && a->status != AUTH_CLUSTER_ADMIN) {
        http_respond_error(req, 403, "InvalidAuth",
                           "Cannot %s the certificate '%s' with '%s' security clearance because "
                           "the current client certificate being used has a lower clearance: %s",
                           verb, name, kv_clearance_name(target),
                           kv_clearance_name(node_auth_clearance(a)));
        return false;
    }
    return true;
}

/* Loads certificates from RavenDB's Certificate field: base64 of DER or PFX, or PEM text. */
static int load_certificate_field(const char *value, const char *password, struct ca_cert_list *out,
                                  char *errmsg)
{
    struct cmn_buf raw;
    cmn_buf_init(&raw, true);
    int rv;
    if (strstr(value, "-----BEGIN") != NULL) {
        rv = cmn_buf_append_str(&raw, value);
    } else {
        rv = ca_b64_decode(value, strlen(value), &raw, NULL);
        if (rv != 0)
            rv = cmn_fail(errmsg, CMN_EMALFORMED,
                          "Unable to parse the Certificate property, expected a Base64 value");
    }
    if (rv == 0 && ca_pfx_sniff(raw.data, raw.len)) {
        struct ca_pfx pfx;
        rv = ca_pfx_parse(raw.data, raw.len, password, 0, &pfx, errmsg);
        for (size_t i = 0; rv == 0 && i < pfx.certs.n; i++)
            if (!ca_is_ca(pfx.certs.v[i]))
                rv = ca_cert_list_add(out, pfx.certs.v[i]);
        if (rv == 0 || pfx.certs.v)
            ca_pfx_fini(&pfx);
    } else if (rv == 0) {
        struct ca_cert_list all;
        ca_cert_list_init(&all);
        rv = ca_certs_from_bytes(raw.data, raw.len, &all, NULL);
        if (rv != 0)
            rv = cmn_fail(errmsg, CMN_EMALFORMED, "Unable to load the provided certificate.");
        for (size_t i = 0; rv == 0 && i < all.n; i++)
            if (!ca_is_ca(all.v[i]) || all.n == 1)
                rv = ca_cert_list_add(out, all.v[i]);
        ca_cert_list_fini(&all);
    }
    cmn_buf_fini(&raw);
    if (rv == 0 && out->n == 0)
        rv = cmn_fail(errmsg, CMN_EINVALID, "Unable to load the provided certificate.");
    if (rv == 0 && out->n > KV_COLLECTION_MAX)
        rv = cmn_fail(errmsg, CMN_ETOOBIG, "more than %d certificates", KV_COLLECTION_MAX);
    return rv;
}

/* PUT /admin/certificates: the request's fields are checked on the loop; the certificates
 * (up to KV_COLLECTION_MAX in one PEM bundle or PFX) are parsed and made into registrations in
 * the threadpool, so that a burst of large PUTs never holds the loop (and Raft's heartbeats). */
struct put_job {
    uv_work_t work;
    struct node *n;
    struct http_request *req;
    struct node_auth *a;
    char *name, *cert, *password, *totp;
    enum kv_clearance cl;
    struct kv_perm *perms;
    size_t n_perms;
    struct node_cluster_cas cas;
    struct kv_cmd cmd;
    int status; /* 0, or the HTTP status of the refusal in errmsg */
    char errmsg[CMN_ERRMSG_SIZE];
};

static void put_job_free(struct put_job *j)
{
    free(j->name);
    free(j->cert);
    if (j->password)
        cmn_cleanse(j->password, strlen(j->password));
    free(j->password);
    if (j->totp)
        cmn_cleanse(j->totp, strlen(j->totp));
    free(j->totp);
    free_perms(j->perms, j->n_perms);
    node_cluster_cas_fini(&j->cas);
    kv_cmd_fini(&j->cmd);
    free(j);
}

static void put_work(uv_work_t *w)
{
    struct put_job *j = w->data;
    struct kv_cmd *cmd = &j->cmd;
    struct ca_cert_list certs;
    ca_cert_list_init(&certs);
    j->status = 400;
    if (load_certificate_field(j->cert, j->password, &certs, j->errmsg) != 0)
        goto out; /* errmsg says why (bad base64, wrong password, corrupt PFX) */
    cmd->u.put.certs = calloc(certs.n, sizeof *cmd->u.put.certs);
    if (cmd->u.put.certs == NULL) {
        j->status = 500;
        goto out;
    }
    for (size_t i = 0; i < certs.n; i++) {
        char tp[CA_THUMBPRINT_SIZE] = "";
        CMN_IGNORE(ca_thumbprint(certs.v[i], tp));
        if (strcasecmp(tp, j->n->thumb) == 0) {
            snprintf(j->errmsg, sizeof j->errmsg,
                     "You are trying to import the same server certificate (%s) as the one "
                     "which is already loaded. This is not supported.",
                     tp);
            goto out;
        }
        struct kv_cert *rec = &cmd->u.put.certs[i];
        if (node_cert_record_cas(&j->cas, certs.v[i], j->name, j->cl, rec, j->errmsg) != 0)
            goto out;
        cmd->u.put.n = i + 1;
        if (j->totp)
            rec->twofa_key = strdup(j->totp);
        rec->perms = calloc(j->n_perms ? j->n_perms : 1, sizeof *rec->perms);
        for (size_t k = 0; rec->perms && k < j->n_perms; k++) {
            rec->perms[k].db = strdup(j->perms[k].db);
            rec->perms[k].access = j->perms[k].access;
            rec->n_perms = k + 1;
        }
    }
    if (cmd->u.put.n > 1) {
        struct kv_cert *p = &cmd->u.put.certs[0];
        p->secondaries = calloc(cmd->u.put.n - 1, sizeof *p->secondaries);
        p->n_secondaries = cmd->u.put.n - 1;
        for (size_t i = 1; p->secondaries && i < cmd->u.put.n; i++) {
            memcpy(p->secondaries[i - 1], cmd->u.put.certs[i].thumbprint, KV_THUMB_LEN + 1);
            memcpy(cmd->u.put.certs[i].primary, p->thumbprint, KV_THUMB_LEN + 1);
        }
    }
    j->status = 0;
out:
    ca_cert_list_fini(&certs);
}

static void put_after(uv_work_t *w, int status)
{
    struct put_job *j = w->data;
    if (status != 0 || j->status != 0) {
        http_respond_error(j->req, status != 0 ? 500 : j->status,
                           status != 0 || j->status == 500 ? "InternalError" : "BadRequest", "%s",
                           j->errmsg[0] ? j->errmsg : "out of memory");
        put_job_free(j);
        return;
    }
    struct kv_cmd cmd = j->cmd;
    kv_cmd_init(&j->cmd, KV_CMD_PUT_CERTS); /* the command moves to the proposal */
    propose(j->n, j->req, j->a, &cmd, 201, NULL);
    put_job_free(j);
}

static char *dup_opt(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void h_put_cert(struct node *n, struct http_request *req, struct node_auth *a)
{
    json_t *body;
    if (!body_json(req, &body))
        return;
    const char *name, *cert, *password, *totp, *err;
    struct put_job *j = calloc(1, sizeof *j);
    if (j == NULL) {
        json_decref(body);
        http_respond_error(req, 500, "InternalError", "out of memory");
        return;
    }
    kv_cmd_init(&j->cmd, KV_CMD_PUT_CERTS);
    j->n = n;
    j->req = req;
    j->a = a;
    char errmsg[CMN_ERRMSG_SIZE] = "";
    int status = 400;
    if ((err = get_string(body, "Name", true, &name)) != NULL || name[0] == '\0') {
        snprintf(errmsg, sizeof errmsg, "Name is a required field in the certificate definition");
    } else if ((err = get_string(body, "Certificate", true, &cert)) != NULL) {
        snprintf(errmsg, sizeof errmsg,
                 "Certificate is a mandatory property when registering a certificate");
    } else if ((err = get_string(body, "Password", false, &password)) != NULL) {
        snprintf(errmsg, sizeof errmsg, "Password %s", err);
    } else if ((err = get_string(body, "TwoFactorAuthenticationKey", false, &totp)) != NULL) {
        snprintf(errmsg, sizeof errmsg, "TwoFactorAuthenticationKey %s", err);
    } else if ((err = parse_clearance(json_object_get(body, "SecurityClearance"), &j->cl)) !=
               NULL) {
        snprintf(errmsg, sizeof errmsg, "%s", err);
    } else if ((err = parse_perms(json_object_get(body, "Permissions"), &j->perms, &j->n_perms)) !=
               NULL) {
        snprintf(errmsg, sizeof errmsg, "%s", err);
    } else if (!may_touch(req, a, j->cl, "register", name)) {
        status = 0; /* answered */
    } else {
        j->name = strdup(name);
        j->cert = strdup(cert);
        j->password = dup_opt(password);
        j->totp = dup_opt(totp);
        status = j->name && j->cert && (j->password || !password) && (j->totp || !totp) ? -1 : 500;
    }
    json_decref(body);
    if (status == -1) {
        node_cluster_cas_get(n, &j->cas);
        j->work.data = j;
        if (uv_queue_work(&n->loop, &j->work, put_work, put_after) == 0)
            return;
        status = 500;
        snprintf(errmsg, sizeof errmsg, "cannot queue the work");
    }
    put_job_free(j);
    if (status != 0)
        http_respond_error(req, status, status == 500 ? "InternalError" : "BadRequest", "%s",
                           errmsg[0] ? errmsg : "out of memory");
}

/* POST /admin/certificates: a key, a certificate from the cluster CA, PKCS#12 and the zip, made
 * in the threadpool; registered through Raft; the zip answered once committed. */
struct gen_job {
    uv_work_t work;
    struct node *n;
    struct http_request *req;
    struct node_auth *a;
    char name[KV_NAME_MAX + 1];
    char password[256];
    enum ca_key_type key_type;
    int64_t not_after;
    enum kv_clearance cl;
    struct kv_perm *perms;
    size_t n_perms;
    char *totp;
    struct node_issuer issuer;
    X509 *cert;
    struct cmn_buf zip;
    int rv;
    char errmsg[CMN_ERRMSG_SIZE];
};

static void gen_job_free(struct gen_job *g)
{
    free_perms(g->perms, g->n_perms);
    free(g->totp);
    node_issuer_fini(&g->issuer);
    X509_free(g->cert);
    cmn_buf_fini(&g->zip);
    cmn_cleanse(g->password, sizeof g->password);
    free(g);
}

static void gen_work(uv_work_t *w)
{
    struct gen_job *g = w->data;
    int64_t now = cmn_now_ms(&cmn_clock_system) / 1000;
    int64_t nb, na;
    ca_client_default_validity(now, &nb, &na);
    if (g->not_after)
        na = g->not_after;
    EVP_PKEY *key = NULL;
    g->rv = ca_key_generate(g->key_type, &key, g->errmsg);
    struct ca_cert_req creq = {
        .profile = CA_PROFILE_CLIENT,
        .cn = g->name,
        .not_before = nb,
        .not_after = na,
        .subject_key = key,
    };
    struct ca_signer signer = {.cert = g->issuer.cert, .key = g->issuer.key};
    if (g->rv == 0)
        g->rv = ca_cert_issue(&creq, &signer, &cmn_rng_system, &g->cert, g->errmsg);
    struct ca_bundle_in in = {
        .name = g->name,
        .cert = g->cert,
        .key = key,
        .chain = &g->issuer.chain,
        .password = g->password[0] ? g->password : NULL,
        .mtime = now,
    };
    if (g->rv == 0)
        g->rv = ca_bundle_zip(&in, &g->zip, g->errmsg);
    EVP_PKEY_free(key);
}

static void gen_after(uv_work_t *w, int status)
{
    struct gen_job *g = w->data;
    struct node *n = g->n;
    if (status != 0 || g->rv != 0) {
        http_respond_error(g->req, 400, "BadRequest", "Cannot generate the client certificate: %s",
                           g->errmsg[0] ? g->errmsg : "cancelled");
        gen_job_free(g);
        return;
    }
    struct kv_cmd cmd;
    kv_cmd_init(&cmd, KV_CMD_PUT_CERTS);
    cmd.u.put.certs = calloc(1, sizeof *cmd.u.put.certs);
    char errmsg[CMN_ERRMSG_SIZE] = "";
    int rv = cmd.u.put.certs
                 ? node_cert_record(n, g->cert, g->name, g->cl, &cmd.u.put.certs[0], errmsg)
                 : CMN_ENOMEM;
    struct write_job *j = calloc(1, sizeof *j);
    if (rv != 0 || j == NULL) {
        kv_cmd_fini(&cmd);
        free(j);
        http_respond_error(g->req, 500, "InternalError", "%s", errmsg);
        gen_job_free(g);
        return;
    }
    cmd.u.put.n = 1;
    cmd.u.put.certs[0].perms = g->perms;
    cmd.u.put.certs[0].n_perms = g->n_perms;
    cmd.u.put.certs[0].twofa_key = g->totp;
    g->perms = NULL;
    g->n_perms = 0;
    g->totp = NULL;
    j->zip = g->zip;
    cmn_buf_init(&g->zip, false);
    char enc[300];
    http_urlencode(g->name, enc, sizeof enc);
    snprintf(j->filename, sizeof j->filename, "%s.zip", enc);
    propose(n, g->req, g->a, &cmd, 200, j);
    gen_job_free(g);
}

static void h_post_cert(struct node *n, struct http_request *req, struct node_auth *a)
{
    json_t *body;
    if (!body_json(req, &body))
        return;
    struct gen_job *g = calloc(1, sizeof *g);
    if (g == NULL) {
        json_decref(body);
        http_respond_error(req, 500, "InternalError", "out of memory");
        return;
    }
    g->n = n;
    g->req = req;
    g->a = a;
    g->key_type = CA_KEY_EC_P256;
    cmn_buf_init(&g->zip, true);
    const char *name, *password, *totp, *key_type, *not_after, *err;
    char errmsg[CMN_ERRMSG_SIZE] = "";
    bool ok = false;
    if ((err = get_string(body, "Name", true, &name)) != NULL || name[0] == '\0') {
        snprintf(errmsg, sizeof errmsg, "Name is a required field in the certificate definition");
    } else if (strlen(name) > 64) {
        snprintf(errmsg, sizeof errmsg, "Name is longer than 64 characters");
    } else if ((err = get_string(body, "Password", false, &password)) != NULL ||
               (password && strlen(password) >= sizeof g->password)) {
        snprintf(errmsg, sizeof errmsg, "Password must be a string of at most 255 bytes");
    } else if ((err = get_string(body, "TwoFactorAuthenticationKey", false, &totp)) != NULL) {
        snprintf(errmsg, sizeof errmsg, "TwoFactorAuthenticationKey %s", err);
    } else if ((err = get_string(body, "KeyType", false, &key_type)) != NULL ||
               (key_type && ca_key_type_parse(key_type, &g->key_type, NULL) != 0)) {
        snprintf(errmsg, sizeof errmsg,
                 "KeyType must be EC-P256, EC-P384, RSA-2048, RSA-3072 or RSA-4096");
    } else if ((err = get_string(body, "NotAfter", false, &not_after)) != NULL) {
        snprintf(errmsg, sizeof errmsg, "NotAfter must be a date string");
    } else if ((err = parse_clearance(json_object_get(body, "SecurityClearance"), &g->cl)) !=
               NULL) {
        snprintf(errmsg, sizeof errmsg, "%s", err);
    } else if ((err = parse_perms(json_object_get(body, "Permissions"), &g->perms, &g->n_perms)) !=
                   NULL &&
               json_object_get(body, "Permissions") != NULL) {
        snprintf(errmsg, sizeof errmsg, "%s", err);
    } else {
        ok = true;
        snprintf(g->name, sizeof g->name, "%s", name);
        if (password)
            snprintf(g->password, sizeof g->password, "%s", password);
        if (totp)
            g->totp = strdup(totp);
        if (not_after) {
            struct tm tm = {0};
            const char *end = strptime(not_after, "%Y-%m-%d", &tm);
            int64_t today = cmn_now_ms(&cmn_clock_system) / 1000 / 86400 * 86400;
            if (end == NULL) {
                ok = false;
                snprintf(errmsg, sizeof errmsg, "NotAfter must be a date (YYYY-MM-DD…)");
            } else {
                g->not_after = (int64_t)timegm(&tm);
                if (g->not_after <= today) {
                    ok = false;
                    snprintf(errmsg, sizeof errmsg,
                             "The certificate expiration date must be in the future.");
                }
            }
        }
    }
    json_decref(body);
    if (!ok) {
        gen_job_free(g);
        http_respond_error(req, 400, "BadRequest", "%s", errmsg);
        return;
    }
    if (g->perms == NULL) { /* RavenDB requires it; generating an admin needs none */
        free_perms(g->perms, g->n_perms);
        g->perms = calloc(1, sizeof *g->perms);
        g->n_perms = 0;
    }
    if (!may_touch(req, a, g->cl, "generate", g->name)) {
        gen_job_free(g);
        return;
    }
    if (node_issuer_load(n, &g->issuer, errmsg) != 0) {
        gen_job_free(g);
        http_respond_error(req, 503, "NoIssuer", "%s", errmsg);
        return;
    }
    g->work.data = g;
    if (uv_queue_work(&n->loop, &g->work, gen_work, gen_after) != 0) {
        gen_job_free(g);
        http_respond_error(req, 500, "InternalError", "cannot queue the work");
    }
}

static void h_delete_cert(struct node *n, struct http_request *req, struct node_auth *a)
{
    char thumb[64];
    int count = 0;
    int rc = http_query(req, "thumbprint", thumb, sizeof thumb, &count);
    if (rc != 1 || count != 1 || thumb[0] == '\0') {
        http_respond_error(req, 400, "BadRequest",
                           "Query string value 'thumbprint' must appear exactly once");
        return;
    }
    struct kv_cert c;
    int rv = kv_cert_get(n->kv, thumb, &c, NULL);
    char rid[KV_RID_MAX + 1], norm[KV_THUMB_LEN + 1];
    if (rv == CMN_ENOTFOUND && http_query(req, "raft-request-id", rid, sizeof rid, NULL) != 0 &&
        kv_thumb_norm(thumb, norm) == 0) {
        /* Gone here, and a request id: maybe the retry of a revocation already applied, which
         * gets its first answer; apply decides, with every check of a first attempt. */
        struct kv_cmd cmd;
        kv_cmd_init(&cmd, KV_CMD_DELETE_CERTS);
        cmd.u.del.thumbprints = calloc(1, sizeof *cmd.u.del.thumbprints);
        if (cmd.u.del.thumbprints == NULL) {
            http_respond_error(req, 500, "InternalError", "out of memory");
            return;
        }
        memcpy(cmd.u.del.thumbprints[0], norm, KV_THUMB_LEN + 1);
        cmd.u.del.n = 1;
        propose(n, req, a, &cmd, 204, NULL);
        return;
    }
    if (rv != 0) {
        http_respond_error(req, rv == CMN_ENOTFOUND ? 404 : 500,
                           rv == CMN_ENOTFOUND ? "NotFound" : "InternalError",
                           rv == CMN_ENOTFOUND ? "Certificate %s doesn't exist in the cluster"
                                               : "Cannot read certificate %s",
                           thumb);
        return;
    }
    bool ok = strcmp(c.thumbprint, a->thumb) != 0;
    if (!ok)
        http_respond_error(req, 403, "InvalidAuth",
                           "Cannot delete %s because it's the current client certificate being "
                           "used",
                           c.name);
    else
        ok = may_touch(req, a, c.clearance, "delete", c.name);
    struct kv_cmd cmd;
    kv_cmd_init(&cmd, KV_CMD_DELETE_CERTS);
    cmd.u.del.thumbprints = calloc(1, sizeof *cmd.u.del.thumbprints);
    if (ok && cmd.u.del.thumbprints) {
        memcpy(cmd.u.del.thumbprints[0], c.thumbprint, KV_THUMB_LEN + 1);
        cmd.u.del.n = 1;
    }
    kv_cert_fini(&c);
    if (!ok || cmd.u.del.n == 0) {
        kv_cmd_fini(&cmd);
        if (ok)
            http_respond_error(req, 500, "InternalError", "out of memory");
        return;
    }
    propose(n, req, a, &cmd, 204, NULL);
}

static void h_edit_cert(struct node *n, struct http_request *req, struct node_auth *a)
{
    json_t *body;
    if (!body_json(req, &body))
        return;
    const char *thumb, *name, *totp, *err;
    char errmsg[CMN_ERRMSG_SIZE] = "";
    struct kv_cmd cmd;
    kv_cmd_init(&cmd, KV_CMD_EDIT_CERT);
    bool ok = false;
    if ((err = get_string(body, "Thumbprint", true, &thumb)) != NULL ||
        kv_thumb_norm(thumb, cmd.u.edit.thumbprint) != 0) {
        snprintf(errmsg, sizeof errmsg, "Thumbprint is a required field (40 hex digits)");
    } else if ((err = get_string(body, "Name", true, &name)) != NULL || name[0] == '\0') {
        snprintf(errmsg, sizeof errmsg, "Name is a required field in the certificate definition");
    } else if ((err = get_string(body, "TwoFactorAuthenticationKey", false, &totp)) != NULL) {
        snprintf(errmsg, sizeof errmsg, "TwoFactorAuthenticationKey %s", err);
    } else if ((err = parse_clearance(json_object_get(body, "SecurityClearance"),
                                      &cmd.u.edit.clearance)) != NULL) {
        snprintf(errmsg, sizeof errmsg, "%s", err);
    } else if ((err = parse_perms(json_object_get(body, "Permissions"), &cmd.u.edit.perms,
                                  &cmd.u.edit.n_perms)) != NULL) {
        snprintf(errmsg, sizeof errmsg, "%s", err);
    } else {
        ok = true;
        cmd.u.edit.name = strdup(name);
        if (totp)
            cmd.u.edit.twofa_key = strdup(totp);
        cmd.u.edit.delete_twofa = http_query_bool(req, "deleteTwoFactorConfiguration", false);
    }
    json_decref(body);
    if (!ok) {
        kv_cmd_fini(&cmd);
        http_respond_error(req, 400, "BadRequest", "%s", errmsg);
        return;
    }
    struct kv_cert c;
    if (kv_cert_get(n->kv, cmd.u.edit.thumbprint, &c, NULL) != 0) {
        http_respond_error(req, 404, "NotFound",
                           "Cannot edit permissions for certificate with thumbprint '%s'. It "
                           "doesn't exist in the cluster.",
                           cmd.u.edit.thumbprint);
        kv_cmd_fini(&cmd);
        return;
    }
    ok = may_touch(req, a, c.clearance, "edit", c.name) &&
         may_touch(req, a, cmd.u.edit.clearance, "edit", c.name);
    kv_cert_fini(&c);
    if (!ok) {
        kv_cmd_fini(&cmd);
        return;
    }
    propose(n, req, a, &cmd, 201, NULL);
}

static void h_purge(struct node *n, struct http_request *req, struct node_auth *a)
{
    struct kv_cmd cmd;
    kv_cmd_init(&cmd, KV_CMD_PURGE_EXPIRED);
    propose(n, req, a, &cmd, 204, NULL);
}

static void h_export(struct node *n, struct http_request *req, struct node_auth *a)
{
    struct ca_cert_list certs;
    ca_cert_list_init(&certs);
    int rv = ca_cert_list_add(&certs, n->cert);
    struct kv_cert *list = NULL;
    size_t count = 0;
    if (rv == 0)
        rv = kv_cert_list(n->kv, true, 0, SIZE_MAX, &list, &count, NULL);
    for (size_t i = 0; rv == 0 && i < count; i++) {
        if (list[i].clearance != KV_CL_CLUSTER_NODE || strcmp(list[i].thumbprint, n->thumb) == 0)
            continue;
        X509 *x;
        if (ca_cert_from_der(list[i].der, list[i].der_len, &x, NULL) == 0) {
            rv = ca_cert_list_push(&certs, x);
        }
    }
    kv_cert_free_array(list, count);
    struct cmn_buf pfx;
    cmn_buf_init(&pfx, false);
    char errmsg[CMN_ERRMSG_SIZE] = "";
    if (rv == 0)
        rv = ca_pfx_build_collection(&certs, &pfx, errmsg);
    ca_cert_list_fini(&certs);
    if (rv != 0)
        http_respond_error(req, 500, "InternalError", "%s", errmsg);
    else
        http_respond(req, 200, "application/octet-stream", pfx.data, pfx.len,
                     "Content-Disposition: attachment; "
                     "filename=ServerCertificatesCollection.pfx\r\n");
    cmn_buf_fini(&pfx);
    (void)a;
}

static void h_stats(struct node *n, struct http_request *req, struct node_auth *a)
{
    json_t *map = json_object();
    if (n->lastused) {
        for (size_t i = 0; i < 4096; i++) {
            for (struct lu_entry *e = n->lastused->buckets[i]; e; e = e->next) {
                char when[40], tp[41];
                iso(e->when_ms / 1000, when);
                upper(e->thumb, tp);
                json_object_set_new(map, tp, json_string(when));
            }
        }
    }
    respond_json(req, 200, json_pack("{s:o}", "LastRequestTimePerCertificate", map));
    (void)a;
}

static void h_topology(struct node *n, struct http_request *req, struct node_auth *a)
{
    struct rft_status st;
    rft_status(n->rft, &st);
    struct kv_node *nodes = NULL;
    size_t count = 0;
    CMN_IGNORE(kv_node_list(n->kv, &nodes, &count, NULL));
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
    respond_json(req, 200,
                 json_pack("{s:o, s:s?, s:s, s:s, s:I}", "Topology", topo, "Leader",
                           st.leader[0] ? st.leader : NULL, "NodeTag", n->cfg.tag, "CurrentState",
                           state, "CurrentTerm", (json_int_t)st.term));
    (void)a;
}

static void h_node_info(struct node *n, struct http_request *req, struct node_auth *a)
{
    char tp[41];
    upper(n->thumb, tp);
    struct rft_status st;
    rft_status(n->rft, &st);
    respond_json(req, 200,
                 json_pack("{s:s, s:s, s:s, s:s, s:s, s:b, s:b}", "NodeTag", n->cfg.tag,
                           "ServerUrl", n->cfg.public_url, "TcpUrl", n->cfg.tcp_url, "Thumbprint",
                           tp, "CurrentState", st.state, "HasFixedPort", 1, "Serving",
                           node_serves(n, NULL, 0)));
    (void)a;
}

static void h_ca_certificate(struct node *n, struct http_request *req, struct node_auth *a)
{
    struct node_issuer is;
    char errmsg[CMN_ERRMSG_SIZE] = "";
    if (node_issuer_load(n, &is, errmsg) != 0) {
        http_respond_error(req, 503, "NoIssuer", "%s", errmsg);
        return;
    }
    struct cmn_buf pem;
    cmn_buf_init(&pem, false);
    int rv = ca_certs_to_pem(&is.chain, &pem);
    node_issuer_fini(&is);
    if (rv != 0)
        http_respond_error(req, 500, "InternalError", "cannot encode the chain");
    else
        http_respond(req, 200, "application/pem-certificate-chain", pem.data, pem.len, NULL);
    cmn_buf_fini(&pem);
    (void)a;
}

/* The CRL, signed once per CRL the trust state defines (kv_crl_state: a revocation, the
 * issuing CA, or the leader's hourly RefreshCRL) and served from memory: signing it per
 * request let anyone make the loop thread sign without end. */
struct node_crl {
    uint64_t index; /* kv_crl_state's: the entry whose CRL this is */
    struct cmn_buf der, pem;
};

static void crl_forget(struct node *n)
{
    if (n->crl == NULL)
        return;
    cmn_buf_fini(&n->crl->der);
    cmn_buf_fini(&n->crl->pem);
    free(n->crl);
    n->crl = NULL;
}

/* Builds and signs the CRL from the trust state into out (DER and PEM). */
static int crl_build(struct node *n, const struct node_issuer *is, struct node_crl *out,
                     char *errmsg)
{
    struct kv_revoked *rev = NULL;
    size_t count = 0;
    int rv = kv_revoked_list(n->kv, &rev, &count, errmsg);
    struct ca_crl_entry *entries = calloc(count ? count : 1, sizeof *entries);
    for (size_t i = 0; rv == 0 && entries && i < count; i++) {
        entries[i].serial_hex = rev[i].serial;
        entries[i].revoked_at = rev[i].revoked_ms / 1000;
        entries[i].reason = rev[i].reason == 0 ? CA_CRL_REASON_NONE : rev[i].reason;
    }
    /* Number and dates from the committed state: every node signs the same CRL. */
    struct kv_crl_state crl = {0};
    if (rv == 0)
        rv = kv_crl_state_get(n->kv, &crl, errmsg);
    struct ca_crl_params p = {
        .entries = entries,
        .n = count,
        .this_update = crl.time_ms / 1000,
        .next_update = (crl.time_ms + NODE_CRL_VALID_MS) / 1000,
        .crl_number = crl.index,
    };
    struct ca_signer signer = {.cert = is->cert, .key = is->key};
    cmn_buf_init(&out->der, false);
    cmn_buf_init(&out->pem, false);
    if (rv == 0 && entries == NULL)
        rv = cmn_fail(errmsg, CMN_ENOMEM, "out of memory");
    if (rv == 0)
        rv = ca_crl_build(&p, &signer, &out->der, errmsg);
    if (rv == 0)
        rv = ca_crl_to_pem(out->der.data, out->der.len, &out->pem, errmsg);
    if (rv != 0) {
        cmn_buf_fini(&out->der);
        cmn_buf_fini(&out->pem);
    }
    out->index = crl.index;
    free(entries);
    free(rev);
    return rv;
}

static void h_ca_crl(struct node *n, struct http_request *req, struct node_auth *a)
{
    struct kv_crl_state state;
    char errmsg[CMN_ERRMSG_SIZE] = "";
    if (n->n_early > 0) {
        /* A revocation the leader announced is in force here and not applied yet: the CRL of
         * the applied state would not list it (tools/chaos found one served so). */
        http_respond_error(req, 503, "NotReady",
                           "Node %s is applying a revocation: retry in a moment", n->cfg.tag);
        return;
    }
    if (kv_crl_state_get(n->kv, &state, errmsg) != 0) {
        http_respond_error(req, 503, "NoIssuer", "%s", errmsg);
        return;
    }
    if (n->crl && n->crl->index != state.index)
        crl_forget(n);
    struct node_crl fresh;
    struct node_crl *crl = n->crl;
    if (crl == NULL) {
        struct node_issuer is;
        if (node_issuer_load(n, &is, errmsg) != 0) {
            http_respond_error(req, 503, "NoIssuer", "%s", errmsg);
            return;
        }
        int rv = crl_build(n, &is, &fresh, errmsg);
        node_issuer_fini(&is);
        if (rv != 0) {
            http_respond_error(req, 500, "InternalError", "cannot build the CRL: %s", errmsg);
            return;
        }
        crl = &fresh;
        if (!n->stopping && (n->crl = malloc(sizeof *n->crl)) != NULL) {
            *n->crl = fresh;
            crl = n->crl;
        }
    }
    char fmt[16] = "";
    bool want_pem =
        http_query(req, "format", fmt, sizeof fmt, NULL) == 1 && strcasecmp(fmt, "pem") == 0;
    if (want_pem)
        http_respond(req, 200, "application/x-pem-file", crl->pem.data, crl->pem.len, NULL);
    else
        http_respond(req, 200, "application/pkix-crl", crl->der.data, crl->der.len, NULL);
    if (crl == &fresh) {
        cmn_buf_fini(&fresh.der);
        cmn_buf_fini(&fresh.pem);
    }
    (void)a;
}

/* ---- cluster membership: PUT/DELETE /admin/cluster/node (leader only; 307 elsewhere) ---- */

/* Answers 307 to the leader's URL when this node is not the leader; true when answered. */
static bool redirect_to_leader(struct node *n, struct http_request *req)
{
    struct rft_status st;
    rft_status(n->rft, &st);
    if (st.ready)
        return false;
    const char *url = NULL;
    struct kv_node *nodes = NULL;
    size_t count = 0;
    CMN_IGNORE(kv_node_list(n->kv, &nodes, &count, NULL));
    for (size_t i = 0; st.leader[0] && i < count; i++)
        if (strcmp(nodes[i].tag, st.leader) == 0)
            url = nodes[i].server_url;
    if (url == NULL) {
        http_respond_error(req, 503, "NoLeader",
                           "The cluster has no leader right now: retry when a majority of nodes "
                           "is up");
    } else {
        char extra[6000];
        snprintf(extra, sizeof extra, "Location: %s%s%s%s\r\n", url, req->path,
                 req->query[0] ? "?" : "", req->query);
        char msg[128];
        snprintf(msg, sizeof msg, "Membership changes run on the leader, node %s", st.leader);
        json_t *o = json_pack("{s:s, s:s}", "Type", "Redirect", "Message", msg);
        char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
        http_respond(req, 307, JSON_TYPE, text ? text : "{}", text ? strlen(text) : 2, extra);
        free(text);
        json_decref(o);
    }
    kv_node_free_array(nodes, count);
    return true;
}

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
        respond_json(j->req, 200, json_pack("{s:s, s:s}", "NodeTag", j->tag, "Message", msg));
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
    if (status != 0) {
        snprintf(errmsg, sizeof errmsg, "Cannot add node %s at %s: %s", j->tag, j->url, msg);
    } else if (peer == NULL || ca_ident_get(peer, &id, NULL) != 0) {
        snprintf(errmsg, sizeof errmsg, "Node %s at %s presented no usable certificate", j->tag,
                 j->url);
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
    } else if (id.not_before > now + 86400) {
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

static void h_add_node(struct node *n, struct http_request *req, struct node_auth *a)
{
    if (redirect_to_leader(n, req))
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
    rft_status(n->rft, &st);
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

static void h_remove_node(struct node *n, struct http_request *req, struct node_auth *a)
{
    if (redirect_to_leader(n, req))
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

/* ---- routing ---- */

#define NO_BODY 0
#define BODY    HTTP_MAX_BODY_BYTES

struct route {
    int method;
    const char *path;
    enum route_need need;
    handler_fn fn;
    bool early;      /* answered before the node caught up: reads nothing of the trust state */
    size_t max_body; /* the body it reads (NO_BODY: one sent is skipped, unbuffered) */
};

static const struct route routes[] = {
    {HTTP_GET, "/certificates/whoami", NEED_NONE, h_whoami, false, NO_BODY},
    {HTTP_GET, "/admin/certificates", NEED_OPERATOR, h_get_certs, false, NO_BODY},
    {HTTP_PUT, "/admin/certificates", NEED_OPERATOR, h_put_cert, false, BODY},
    {HTTP_POST, "/admin/certificates", NEED_OPERATOR, h_post_cert, false, BODY},
    {HTTP_DELETE, "/admin/certificates", NEED_OPERATOR, h_delete_cert, false, NO_BODY},
    {HTTP_POST, "/admin/certificates/edit", NEED_OPERATOR, h_edit_cert, false, BODY},
    {HTTP_DELETE, "/admin/certificates/purge", NEED_OPERATOR, h_purge, false, NO_BODY},
    {HTTP_GET, "/admin/certificates/export", NEED_OPERATOR, h_export, false, NO_BODY},
    {HTTP_GET, "/admin/stats", NEED_OPERATOR, h_stats, false, NO_BODY},
    {HTTP_GET, "/cluster/topology", NEED_VALID_USER, h_topology, false, NO_BODY},
    {HTTP_GET, "/cluster/node-info", NEED_NONE, h_node_info, true, NO_BODY},
    {HTTP_GET, "/ca/certificate", NEED_NONE, h_ca_certificate, true, NO_BODY},
    {HTTP_GET, "/ca/crl", NEED_NONE, h_ca_crl, false, NO_BODY},
    {HTTP_PUT, "/admin/cluster/node", NEED_CLUSTER_ADMIN, h_add_node, false, NO_BODY},
    {HTTP_DELETE, "/admin/cluster/node", NEED_CLUSTER_ADMIN, h_remove_node, false, NO_BODY},
};

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
    if (a->gen != n->trust_gen ||
        (a->status != AUTH_NO_CERT && (now_s > a->not_after || now_s < a->not_before)))
        node_auth_compute(n, req->peer, a);
    return a;
}

static bool authorized(struct node *n, struct http_request *req, struct node_auth *a,
                       const struct route *r)
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
    rft_status(n->rft, &st);
    if (strcmp(st.state, "Passive") == 0)
        http_respond_error(req, 503, "NotReady",
                           "Node %s is not part of a cluster yet: add it with PUT "
                           "/admin/cluster/node on the cluster's leader",
                           n->cfg.tag);
    else if (!n->serving && st.leader[0] == '\0')
        http_respond_error(req, 503, "NotReady",
                           "Node %s knows no leader of its cluster (cut off from the majority, "
                           "or no quorum): retry on another node",
                           n->cfg.tag);
    else if (!n->serving)
        http_respond_error(req, 503, "NotReady",
                           "Node %s is catching up with the cluster: retry in a moment",
                           n->cfg.tag);
    else
        http_respond_error(req, 503, "NotReady",
                           "Node %s may not answer from its trust state: %s (cut off from the "
                           "majority, or an election is under way): retry on another node",
                           n->cfg.tag, why);
    return false;
}

/* The request's headers are complete: route, authenticate and authorize now, so that a
 * refused request never has its body read (http_head_fn). Returns the body the route takes. */
static size_t on_head(void *ctx, struct http_request *req)
{
    struct node *n = ctx;
    struct node_auth *a = conn_auth(n, req);
    if (a == NULL) {
        http_close_after(req);
        http_respond_error(req, 500, "InternalError", "out of memory");
        return 0;
    }
    size_t plen = strlen(req->path);
    while (plen > 1 && req->path[plen - 1] == '/')
        req->path[--plen] = '\0';
    const struct route *match = NULL;
    bool path_known = false;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        if (strcmp(routes[i].path, req->path) != 0)
            continue;
        path_known = true;
        if (routes[i].method == req->method)
            match = &routes[i];
    }
    if (match == NULL) {
        if (path_known)
            http_respond_error(req, 405, "MethodNotAllowed", "%s is not allowed on %s",
                               req->method_name, req->path);
        else
            http_respond_error(req, 404, "NotFound", "There is no endpoint %s %s", req->method_name,
                               req->path);
        return 0;
    }
    if (a->thumb[0] && a->status >= AUTH_ALLOWED) {
        uint64_t now_ms = uv_now(&n->loop);
        if (now_ms - a->last_used_ms >= LAST_USED_EVERY_MS || a->last_used_ms == 0) {
            a->last_used_ms = now_ms;
            lu_touch(n, a->thumb, cmn_now_ms(&cmn_clock_system));
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
    struct node *n = ctx;
    const struct route *match = req->route;
    struct node_auth *a = *http_conn_auth(req->conn);
    /* its lease may have run out while the body came */
    if (!match->early && !serves_or_503(n, req))
        return;
    if (a->gen != n->trust_gen) {
        a = conn_auth(n, req);
        if (!authorized(n, req, a, match))
            return;
    }
    match->fn(n, req, a);
}

static void conn_gone(void *ctx, void *auth)
{
    (void)ctx;
    node_auth_free(auth);
}

int node_api_start(struct node *n, char *errmsg)
{
    struct ca_tls_ident id = {.cert = n->cert, .key = n->key, .chain = &n->chain};
    int rv = ca_tls_server_ctx(&id, &n->https_ctx, errmsg);
    if (rv != 0) {
        cmn_errctx(errmsg, "HTTPS setup");
        return rv;
    }
    /* node_fetch: this node's certificate, any server (the peer's certificate is checked
     * after the handshake). */
    struct ca_tls_client_opts fo = {.trust = CA_TLS_TRUST_PINNED, .id = id};
    if ((rv = ca_tls_client_ctx(&fo, &n->fetch_ctx, errmsg)) != 0) {
        cmn_errctx(errmsg, "TLS client setup");
        return rv;
    }
    char hostport[256];
    if (node_url_hostport(n->cfg.server_url, hostport, sizeof hostport) != 0)
        return cmn_fail(errmsg, CMN_EINVALID, "ServerUrl: bad URL");
    rv = http_server_start(&n->loop, n->https_ctx, hostport, on_head, on_request, conn_gone, n,
                           &n->http, errmsg);
    if (rv != 0)
        cmn_errctx(errmsg, "ServerUrl");
    return rv;
}

void node_api_close(struct node *n, void (*cb)(void *ctx), void *ctx)
{
    lu_free(n);
    crl_forget(n);
    if (n->http)
        http_server_close(n->http, cb, ctx);
    else if (cb)
        cb(ctx);
}

static bool auth_revoked(void *ctx, void *auth)
{
    const struct kv_cmd *cmd = ctx;
    const struct node_auth *a = auth;
    for (size_t i = 0; i < cmd->u.del.n; i++)
        if (strcasecmp(cmd->u.del.thumbprints[i], a->thumb) == 0)
            return true;
    return false;
}

void node_api_trust_changed(struct node *n, const struct kv_cmd *cmd)
{
    n->trust_gen++;
    if (cmd == NULL || cmd->type == KV_CMD_SET_ISSUING_CA)
        node_issuing_forget(n);
    /* Registrations and edits leave the CRL as it is; anything else may change the revoked
     * serials (a revocation, announced early or applied; a purge; a new state) or its signer. */
    if (cmd == NULL || (cmd->type != KV_CMD_PUT_CERTS && cmd->type != KV_CMD_EDIT_CERT))
        crl_forget(n);
    if (cmd && cmd->type == KV_CMD_DELETE_CERTS) {
        for (size_t i = 0; i < cmd->u.del.n; i++) {
            char lower[41];
            if (kv_thumb_norm(cmd->u.del.thumbprints[i], lower) == 0)
                lu_forget(n, lower);
        }
        if (n->http)
            http_server_drop(n->http, auth_revoked, (void *)cmd);
    }
}
