/* The certificate resources: RavenDB's /admin/certificates endpoints (list, register,
 * generate, edit, delete = revoke, purge, export), whoami, and the last-used statistics. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <http_parser.h>

#include "common/env.h"
#include "common/log.h"
#include "node/expiry.h"
#include "node/resource.h"
#include "node/lastused.h"
#include "ca/totp.h"

#define DEFAULT_PAGE 1024 /* certificates a page holds unless pageSize says otherwise */

static json_t *perms_json(const struct kv_perm *perms, size_t n)
{
    json_t *o = json_object();
    for (size_t i = 0; i < n; i++)
        json_object_set_new(o, perms[i].db, json_string(kv_access_name(perms[i].access)));
    return o;
}

/* RavenDB's CertificateDefinition; the TOTP key is never returned. */
static json_t *def_json(const struct kv_cert *c, bool metadata_only)
{
    char tp[CA_THUMBPRINT_SIZE], nb[40], na[40];
    api_upper(c->thumbprint, tp);
    cmn_iso_date(c->not_before, nb);
    cmn_iso_date(c->not_after, na);
    json_t *sec = json_array();
    for (size_t i = 0; i < c->n_secondaries; i++) {
        char s[CA_THUMBPRINT_SIZE];
        api_upper(c->secondaries[i], s);
        json_array_append_new(sec, json_string(s));
    }
    char pri[CA_THUMBPRINT_SIZE] = "";
    api_upper(c->primary, pri);
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
        if (((*out)[*n].db = strdup(db)) == NULL)
            return "out of memory";
        (*out)[*n].access = a;
        (*n)++;
    }
    return NULL;
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

static void h_whoami(struct api *api, struct http_request *req, struct node_auth *a)
{
    struct node *n = api->n;
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
        cmn_iso_date(a->not_before, nb);
        cmn_iso_date(a->not_after, na);
        bool server = strcmp(a->thumb, node_thumb(n)) == 0;
        o = json_pack("{s:s, s:s, s:s, s:{}, s:s, s:s, s:b}", "Name", a->source, "Thumbprint",
                      a->thumb_upper, "SecurityClearance", server ? "ClusterNode" : "ClusterAdmin",
                      "Permissions", "NotAfter", na, "NotBefore", nb, "HasTwoFactor", 0);
    }
    if (o && a->twofa_expires_ms > cmn_now_ms(&cmn_clock_system)) {
        char exp[40];
        cmn_iso_date(a->twofa_expires_ms / 1000, exp);
        json_object_set_new(o, "TwoFactorExpirationDate", json_string(exp));
    } else if (o) {
        json_object_set_new(o, "TwoFactorExpirationDate", json_null());
    }
    api_respond_json(req, 200, o);
}

/* Appends this node's certificate, as RavenDB lists it, to results: 0, or an error in errmsg
 * (the listing then fails: it never leaves the entry out). */
static int add_server_cert(struct node *n, json_t *results, bool metadata_only, char *errmsg)
{
    struct kv_cert c;
    int rv =
        node_cert_record(n, node_cert(n), "Server Certificate", KV_CL_CLUSTER_NODE, &c, errmsg);
    if (rv != 0)
        return rv;
    if (json_array_append_new(results, def_json(&c, metadata_only)) != 0)
        rv = cmn_fail(errmsg, CMN_ENOMEM, "out of memory");
    kv_cert_fini(&c);
    return rv;
}

static bool parse_size(struct http_request *req, const char *name, size_t dflt, size_t max,
                       size_t *out)
{
    char v[32];
    int rc = http_query(req, name, v, sizeof v, NULL);
    *out = dflt;
    /* RavenDB's Node.js client pastes its arguments in as they are: GetCertificatesOperation()
     * without them asks for start=undefined&pageSize=undefined, which means the defaults. */
    if (rc == 0 || (rc == 1 && strcmp(v, "undefined") == 0))
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

static void h_get_certs(struct api *api, struct http_request *req, struct node_auth *a)
{
    struct node *n = api->n;
    char thumb[64] = "", name[KV_NAME_MAX + 1] = "", days[32] = "", errmsg[CMN_ERRMSG_SIZE] = "";
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
        horizon = cmn_now_ms(&cmn_clock_system) / 1000 + (int64_t)d * CA_DAY_SECS;
    }
    json_t *results = json_array();
    if (has_thumb == 1) {
        struct kv_cert c;
        int rv = kv_cert_get(node_kv(n), thumb, &c, errmsg);
        bool server = rv == CMN_ENOTFOUND && strcasecmp(thumb, node_thumb(n)) == 0;
        if (server)
            rv = add_server_cert(n, results, metadata_only, errmsg);
        if (rv != 0) {
            json_decref(results);
            if (rv == CMN_ENOTFOUND)
                http_respond_error(req, 404, "NotFound", "Certificate %s was not found", thumb);
            else
                http_respond_error(req, 500, "InternalError", "cannot read the trust state: %s",
                                   errmsg);
            return;
        } else if (!server) {
            if (c.primary[0]) { /* a secondary answers with its primary */
                struct kv_cert p;
                if ((rv = kv_cert_get(node_kv(n), c.primary, &p, errmsg)) == 0) {
                    kv_cert_fini(&c);
                    c = p;
                } else if (rv != CMN_ENOTFOUND) {
                    kv_cert_fini(&c);
                    json_decref(results);
                    http_respond_error(req, 500, "InternalError", "cannot read the trust state: %s",
                                       errmsg);
                    return;
                }
            }
            json_array_append_new(results, def_json(&c, metadata_only));
            kv_cert_fini(&c);
        }
    } else {
        int rv = 0;
        if (has_name != 1 && has_days != 1 && start == 0)
            rv = add_server_cert(n, results, metadata_only, errmsg);
        struct kv_cert *list = NULL;
        size_t count = 0;
        bool filtered = has_name == 1 || has_days == 1;
        if (rv == 0)
            rv = kv_cert_list(node_kv(n), secondary, filtered ? 0 : start,
                              filtered ? SIZE_MAX : page, &list, &count, errmsg);
        if (rv != 0) {
            json_decref(results);
            http_respond_error(req, 500, "InternalError", "cannot read the trust state: %s",
                               errmsg);
            return;
        }
        size_t skipped = 0, taken = 0;
        for (size_t i = 0; i < count; i++) {
            if (has_name == 1 && strcmp(list[i].name, name) != 0)
                continue;
            if (has_days == 1 && list[i].not_after > horizon)
                continue;
            if (!filtered && strcmp(list[i].thumbprint, node_thumb(n)) == 0)
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
    for (size_t i = 0; i < node_config(n)->n_admin_thumbprints; i++)
        json_array_append_new(wk, json_string(node_config(n)->admin_thumbprints[i]));
    json_t *issuers = json_array();
    for (size_t i = 0; i < node_admin_issuers(n)->n; i++) {
        char tp[CA_THUMBPRINT_SIZE] = "";
        CMN_IGNORE(ca_thumbprint(node_admin_issuers(n)->v[i], tp));
        json_array_append_new(issuers, json_string(tp));
    }
    char own[CA_THUMBPRINT_SIZE];
    api_upper(node_thumb(n), own);
    api_respond_json(req, 200,
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
        char why[CMN_ERRMSG_SIZE] = "";
        rv = ca_certs_from_bytes(raw.data, raw.len, &all, why);
        if (rv != 0)
            rv = cmn_fail(errmsg, CMN_EMALFORMED, "Unable to load the provided certificate. (%s)",
                          why);
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
    kv_perms_free(j->perms, j->n_perms);
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
        if (strcasecmp(tp, node_thumb(j->n)) == 0) {
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
        /* Out of memory fails the request: never a registration without its 2FA key or with
         * fewer permissions than asked for. */
        if ((j->totp && (rec->twofa_key = strdup(j->totp)) == NULL) ||
            kv_perms_copy(j->perms, j->n_perms, &rec->perms, &rec->n_perms) != 0) {
            j->status = 500;
            snprintf(j->errmsg, sizeof j->errmsg, "out of memory");
            goto out;
        }
    }
    if (cmd->u.put.n > 1) {
        struct kv_cert *p = &cmd->u.put.certs[0];
        if ((p->secondaries = calloc(cmd->u.put.n - 1, sizeof *p->secondaries)) == NULL) {
            j->status = 500;
            snprintf(j->errmsg, sizeof j->errmsg, "out of memory");
            goto out;
        }
        p->n_secondaries = cmd->u.put.n - 1;
        for (size_t i = 1; i < cmd->u.put.n; i++) {
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
    api_propose(j->n, j->req, j->a, &cmd, 201, NULL);
    put_job_free(j);
}

static char *dup_opt(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* A TwoFactorAuthenticationKey as the trust state stores it (node_totp_seal) into *out (NULL
 * for none): CMN_EINVALID when it is not a key (errmsg says why), another error for this
 * node's trouble. */
static int totp_field(struct node *n, const char *key, char **out, char *errmsg)
{
    *out = NULL;
    if (key == NULL)
        return 0;
    char sealed[NODE_TOTP_STORED_MAX];
    int rv = ca_totp_secret_check(key, errmsg);
    if (rv == 0)
        rv = node_totp_seal(n, key, sealed, errmsg);
    if (rv == 0 && (*out = strdup(sealed)) == NULL)
        rv = cmn_fail(errmsg, CMN_ENOMEM, "out of memory");
    return rv;
}

static void h_put_cert(struct api *api, struct http_request *req, struct node_auth *a)
{
    struct node *n = api->n;
    json_t *body;
    if (!api_body_json(req, &body))
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
    int status = 400, rv;
    if ((err = api_get_string(body, "Name", true, &name)) != NULL || name[0] == '\0') {
        snprintf(errmsg, sizeof errmsg, "Name is a required field in the certificate definition");
    } else if ((err = api_get_string(body, "Certificate", true, &cert)) != NULL) {
        snprintf(errmsg, sizeof errmsg,
                 "Certificate is a mandatory property when registering a certificate");
    } else if ((err = api_get_string(body, "Password", false, &password)) != NULL) {
        snprintf(errmsg, sizeof errmsg, "Password %s", err);
    } else if ((err = api_get_string(body, "TwoFactorAuthenticationKey", false, &totp)) != NULL) {
        snprintf(errmsg, sizeof errmsg, "TwoFactorAuthenticationKey %s", err);
    } else if ((err = parse_clearance(json_object_get(body, "SecurityClearance"), &j->cl)) !=
               NULL) {
        snprintf(errmsg, sizeof errmsg, "%s", err);
    } else if ((err = parse_perms(json_object_get(body, "Permissions"), &j->perms, &j->n_perms)) !=
               NULL) {
        snprintf(errmsg, sizeof errmsg, "%s", err);
    } else if (!may_touch(req, a, j->cl, "register", name)) {
        status = 0; /* answered */
    } else if ((rv = totp_field(n, totp, &j->totp, errmsg)) != 0) {
        status = rv == CMN_EINVALID ? 400 : 500;
    } else {
        j->name = strdup(name);
        j->cert = strdup(cert);
        j->password = dup_opt(password);
        status = j->name && j->cert && (j->password || !password) ? -1 : 500;
    }
    json_decref(body);
    if (status == -1 && node_cluster_cas_get(n, &j->cas, errmsg) != 0)
        status = 500;
    if (status == -1) {
        j->work.data = j;
        if (uv_queue_work(node_loop(n), &j->work, put_work, put_after) == 0)
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
    kv_perms_free(g->perms, g->n_perms);
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
    struct ca_signer signer = {.cert = g->issuer.cert, .key = g->issuer.key};
    g->rv = ca_client_issue(g->key_type, g->name, nb, na, &signer, &cmn_rng_system, &key, &g->cert,
                            g->errmsg);
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
    struct api_write *j = calloc(1, sizeof *j);
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
    api_propose(n, g->req, g->a, &cmd, 200, j);
    gen_job_free(g);
}

static void h_post_cert(struct api *api, struct http_request *req, struct node_auth *a)
{
    struct node *n = api->n;
    json_t *body;
    if (!api_body_json(req, &body))
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
    int status = 400;
    if ((err = api_get_string(body, "Name", true, &name)) != NULL || name[0] == '\0') {
        snprintf(errmsg, sizeof errmsg, "Name is a required field in the certificate definition");
    } else if (strlen(name) > 64) {
        snprintf(errmsg, sizeof errmsg, "Name is longer than 64 characters");
    } else if ((err = api_get_string(body, "Password", false, &password)) != NULL ||
               (password && strlen(password) >= sizeof g->password)) {
        snprintf(errmsg, sizeof errmsg, "Password must be a string of at most 255 bytes");
    } else if ((err = api_get_string(body, "TwoFactorAuthenticationKey", false, &totp)) != NULL) {
        snprintf(errmsg, sizeof errmsg, "TwoFactorAuthenticationKey %s", err);
    } else if ((err = api_get_string(body, "KeyType", false, &key_type)) != NULL ||
               (key_type && ca_key_type_parse(key_type, &g->key_type, NULL) != 0)) {
        snprintf(errmsg, sizeof errmsg,
                 "KeyType must be EC-P256, EC-P384, RSA-2048, RSA-3072 or RSA-4096");
    } else if ((err = api_get_string(body, "NotAfter", false, &not_after)) != NULL) {
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
        int rv = totp_field(n, totp, &g->totp, errmsg);
        if (rv != 0) {
            ok = false;
            status = rv == CMN_EINVALID ? 400 : 500;
        }
        if (ok && not_after) {
            struct tm tm = {0};
            const char *end = strptime(not_after, "%Y-%m-%d", &tm);
            int64_t today = cmn_now_ms(&cmn_clock_system) / 1000 / CA_DAY_SECS * CA_DAY_SECS;
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
        http_respond_error(req, status, status == 400 ? "BadRequest" : "InternalError", "%s",
                           errmsg);
        return;
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
    if (uv_queue_work(node_loop(n), &g->work, gen_work, gen_after) != 0) {
        gen_job_free(g);
        http_respond_error(req, 500, "InternalError", "cannot queue the work");
    }
}

static void h_delete_cert(struct api *api, struct http_request *req, struct node_auth *a)
{
    struct node *n = api->n;
    char thumb[64];
    int count = 0;
    int rc = http_query(req, "thumbprint", thumb, sizeof thumb, &count);
    if (rc != 1 || count != 1 || thumb[0] == '\0') {
        http_respond_error(req, 400, "BadRequest",
                           "Query string value 'thumbprint' must appear exactly once");
        return;
    }
    struct kv_cert c;
    char errmsg[CMN_ERRMSG_SIZE] = "";
    int rv = kv_cert_get(node_kv(n), thumb, &c, errmsg);
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
        api_propose(n, req, a, &cmd, 204, NULL);
        return;
    }
    if (rv != 0) {
        if (rv == CMN_ENOTFOUND)
            http_respond_error(req, 404, "NotFound", "Certificate %s doesn't exist in the cluster",
                               thumb);
        else
            http_respond_error(req, 500, "InternalError", "Cannot read certificate %s: %s", thumb,
                               errmsg);
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
    api_propose(n, req, a, &cmd, 204, NULL);
}

static void h_edit_cert(struct api *api, struct http_request *req, struct node_auth *a)
{
    struct node *n = api->n;
    json_t *body;
    if (!api_body_json(req, &body))
        return;
    const char *thumb, *name, *totp, *err;
    char errmsg[CMN_ERRMSG_SIZE] = "";
    struct kv_cmd cmd;
    kv_cmd_init(&cmd, KV_CMD_EDIT_CERT);
    bool ok = false;
    int status = 400, rv;
    if ((err = api_get_string(body, "Thumbprint", true, &thumb)) != NULL ||
        kv_thumb_norm(thumb, cmd.u.edit.thumbprint) != 0) {
        snprintf(errmsg, sizeof errmsg, "Thumbprint is a required field (40 hex digits)");
    } else if ((err = api_get_string(body, "Name", true, &name)) != NULL || name[0] == '\0') {
        snprintf(errmsg, sizeof errmsg, "Name is a required field in the certificate definition");
    } else if ((err = api_get_string(body, "TwoFactorAuthenticationKey", false, &totp)) != NULL) {
        snprintf(errmsg, sizeof errmsg, "TwoFactorAuthenticationKey %s", err);
    } else if ((err = parse_clearance(json_object_get(body, "SecurityClearance"),
                                      &cmd.u.edit.clearance)) != NULL) {
        snprintf(errmsg, sizeof errmsg, "%s", err);
    } else if ((err = parse_perms(json_object_get(body, "Permissions"), &cmd.u.edit.perms,
                                  &cmd.u.edit.n_perms)) != NULL) {
        snprintf(errmsg, sizeof errmsg, "%s", err);
    } else if ((rv = totp_field(n, totp, &cmd.u.edit.twofa_key, errmsg)) != 0) {
        status = rv == CMN_EINVALID ? 400 : 500;
    } else {
        cmd.u.edit.name = strdup(name);
        ok = cmd.u.edit.name != NULL;
        if (!ok) {
            status = 500;
            snprintf(errmsg, sizeof errmsg, "out of memory");
        }
        cmd.u.edit.delete_twofa = http_query_bool(req, "deleteTwoFactorConfiguration", false);
    }
    json_decref(body);
    if (!ok) {
        kv_cmd_fini(&cmd);
        http_respond_error(req, status, status == 400 ? "BadRequest" : "InternalError", "%s",
                           errmsg);
        return;
    }
    struct kv_cert c;
    rv = kv_cert_get(node_kv(n), cmd.u.edit.thumbprint, &c, errmsg);
    if (rv != 0 && rv != CMN_ENOTFOUND) {
        http_respond_error(req, 500, "InternalError", "Cannot read certificate %s: %s",
                           cmd.u.edit.thumbprint, errmsg);
        kv_cmd_fini(&cmd);
        return;
    }
    if (rv != 0) {
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
    api_propose(n, req, a, &cmd, 201, NULL);
}

static void h_purge(struct api *api, struct http_request *req, struct node_auth *a)
{
    struct node *n = api->n;
    struct kv_cmd cmd;
    kv_cmd_init(&cmd, KV_CMD_PURGE_EXPIRED);
    api_propose(n, req, a, &cmd, 204, NULL);
}

static void h_export(struct api *api, struct http_request *req, struct node_auth *a)
{
    struct node *n = api->n;
    char errmsg[CMN_ERRMSG_SIZE] = "";
    struct ca_cert_list certs;
    ca_cert_list_init(&certs);
    int rv = ca_cert_list_add(&certs, node_cert(n));
    struct kv_cert *list = NULL;
    size_t count = 0;
    if (rv == 0)
        rv = kv_cert_list(node_kv(n), true, 0, SIZE_MAX, &list, &count, errmsg);
    for (size_t i = 0; rv == 0 && i < count; i++) {
        if (list[i].clearance != KV_CL_CLUSTER_NODE ||
            strcmp(list[i].thumbprint, node_thumb(n)) == 0)
            continue;
        X509 *x;
        rv = ca_cert_from_der(list[i].der, list[i].der_len, &x, errmsg);
        if (rv == 0)
            rv = ca_cert_list_push(&certs, x);
        else /* a collection without a node's certificate would fail at the import */
            cmn_errctx(errmsg, "the certificate of node registration %s", list[i].thumbprint);
    }
    kv_cert_free_array(list, count);
    struct cmn_buf pfx;
    cmn_buf_init(&pfx, false);
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

static void stat_entry(void *ctx, const char *thumb, int64_t when_ms)
{
    char when[40], tp[CA_THUMBPRINT_SIZE];
    cmn_iso_date(when_ms / 1000, when);
    api_upper(thumb, tp);
    json_object_set_new(ctx, tp, json_string(when));
}

static void h_stats(struct api *api, struct http_request *req, struct node_auth *a)
{
    json_t *map = json_object();
    if (map)
        lastused_each(api->lastused, stat_entry, map);
    struct node_expiry_report ex;
    node_expiry_get(api->n, &ex);
    api_respond_json(req, 200,
                     json_pack("{s:o, s:o}", "LastRequestTimePerCertificate", map,
                               "CertificateExpiry",
                               node_expiry_json(&ex, cmn_now_ms(&cmn_clock_system) / 1000)));
    (void)a;
}

static const struct api_route routes[] = {
    {HTTP_GET, "/certificates/whoami", NEED_NONE, h_whoami, false, API_NO_BODY},
    {HTTP_GET, "/admin/certificates", NEED_OPERATOR, h_get_certs, false, API_NO_BODY},
    {HTTP_PUT, "/admin/certificates", NEED_OPERATOR, h_put_cert, false, API_BODY},
    {HTTP_POST, "/admin/certificates", NEED_OPERATOR, h_post_cert, false, API_BODY},
    {HTTP_DELETE, "/admin/certificates", NEED_OPERATOR, h_delete_cert, false, API_NO_BODY},
    {HTTP_POST, "/admin/certificates/edit", NEED_OPERATOR, h_edit_cert, false, API_BODY},
    {HTTP_DELETE, "/admin/certificates/purge", NEED_OPERATOR, h_purge, false, API_NO_BODY},
    {HTTP_GET, "/admin/certificates/export", NEED_OPERATOR, h_export, false, API_NO_BODY},
    {HTTP_GET, "/admin/stats", NEED_OPERATOR, h_stats, false, API_NO_BODY},
};
const struct api_routes api_cert_routes = {routes, sizeof routes / sizeof routes[0]};
