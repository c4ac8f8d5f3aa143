/* Loading and validating the node's JSON configuration. */
#include "node/config.h"

#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "net/url.h"

typedef int (*setter_fn)(struct node_config *c, const char *key, json_t *v, const char *base,
                         char *errmsg);

static int want_string(const char *key, json_t *v, char *errmsg)
{
    if (!json_is_string(v) || json_string_length(v) == 0)
        return cmn_fail(errmsg, CMN_EINVALID, "%s: expected a non-empty string", key);
    return 0;
}

static char *resolve(const char *base, const char *p)
{
    if (p[0] == '/' || base == NULL) {
        return strdup(p);
    }
    size_t n = strlen(base) + 1 + strlen(p) + 1;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s/%s", base, p);
    return s;
}

#define STRING_FIELD(fn, field, is_path)                                                           \
    static int fn(struct node_config *c, const char *key, json_t *v, const char *base,             \
                  char *errmsg)                                                                    \
    {                                                                                              \
        int rv = want_string(key, v, errmsg);                                                      \
        if (rv != 0)                                                                               \
            return rv;                                                                             \
        free(c->field);                                                                            \
        c->field = (is_path) ? resolve(base, json_string_value(v)) : strdup(json_string_value(v)); \
        return c->field ? 0 : CMN_ENOMEM;                                                          \
    }

STRING_FIELD(set_server_url, server_url, false)
STRING_FIELD(set_tcp_url, tcp_url, false)
STRING_FIELD(set_public_url, public_url, false)
STRING_FIELD(set_data_dir, data_dir, true)
STRING_FIELD(set_cert_path, cert_path, true)
STRING_FIELD(set_cluster_ca_path, cluster_ca_path, true)
STRING_FIELD(set_trusted_nodes, trusted_nodes_path, true)
STRING_FIELD(set_audit_path, audit_path, true)
STRING_FIELD(set_master_key_path, master_key_path, true)

/* Passwords may be empty strings. */
static int set_password(char **field, const char *key, json_t *v, char *errmsg)
{
    if (!json_is_string(v))
        return cmn_fail(errmsg, CMN_EINVALID, "%s: expected a string", key);
    free(*field);
    *field = strdup(json_string_value(v));
    return *field ? 0 : CMN_ENOMEM;
}

static int set_cert_password(struct node_config *c, const char *key, json_t *v, const char *base,
                             char *errmsg)
{
    return set_password(&c->cert_password, key, v, errmsg);
}

static int set_cluster_ca_password(struct node_config *c, const char *key, json_t *v,
                                   const char *base, char *errmsg)
{
    return set_password(&c->cluster_ca_password, key, v, errmsg);
}

static int string_array(const char *key, json_t *v, const char *base, bool paths, char ***out,
                        size_t *n, char *errmsg)
{
    if (json_is_string(v)) { /* RavenDB also accepts a single string */
        json_t *a = json_array();
        json_array_append(a, v);
        int rv = string_array(key, a, base, paths, out, n, errmsg);
        json_decref(a);
        return rv;
    }
    if (!json_is_array(v))
        return cmn_fail(errmsg, CMN_EINVALID, "%s: expected an array of strings", key);
    size_t count = json_array_size(v);
    char **items = calloc(count + 1, sizeof *items);
    if (items == NULL)
        return CMN_ENOMEM;
    for (size_t i = 0; i < count; i++) {
        json_t *s = json_array_get(v, i);
        if (want_string(key, s, errmsg) != 0) {
            for (size_t j = 0; j < i; j++)
                free(items[j]);
            free(items);
            return CMN_EINVALID;
        }
        const char *str = json_string_value(s);
        /* A value that names an existing file is a path; otherwise it is base64 (issuers). */
        char *resolved = paths ? resolve(base, str) : NULL;
        if (resolved && access(resolved, F_OK) == 0)
            items[i] = resolved;
        else {
            free(resolved);
            items[i] = strdup(str);
        }
    }
    *out = items;
    *n = count;
    return 0;
}

static int set_admin_thumbs(struct node_config *c, const char *key, json_t *v, const char *base,
                            char *errmsg)
{
    int rv =
        string_array(key, v, base, false, &c->admin_thumbprints, &c->n_admin_thumbprints, errmsg);
    for (size_t i = 0; rv == 0 && i < c->n_admin_thumbprints; i++) {
        const char *t = c->admin_thumbprints[i];
        size_t len = strlen(t);
        bool hex = len == 40;
        for (size_t j = 0; hex && j < len; j++)
            hex = strchr("0123456789abcdefABCDEF", t[j]) != NULL;
        if (!hex)
            rv = cmn_fail(errmsg, CMN_EINVALID, "%s: '%s' is not a SHA-1 thumbprint", key, t);
    }
    return rv;
}

static int set_admin_issuers(struct node_config *c, const char *key, json_t *v, const char *base,
                             char *errmsg)
{
    return string_array(key, v, base, true, &c->admin_issuers, &c->n_admin_issuers, errmsg);
}

static bool valid_tag(const char *t)
{
    size_t n = strlen(t);
    if (n < 1 || n > 4)
        return false;
    for (size_t i = 0; i < n; i++)
        if (t[i] < 'A' || t[i] > 'Z')
            return false;
    return true;
}

static int set_tag(struct node_config *c, const char *key, json_t *v, const char *base,
                   char *errmsg)
{
    if (!json_is_string(v) || !valid_tag(json_string_value(v)))
        return cmn_fail(errmsg, CMN_EINVALID, "%s: expected 1 to 4 upper-case letters (A…Z)", key);
    snprintf(c->tag, sizeof c->tag, "%s", json_string_value(v));
    return 0;
}

static int set_bootstrap(struct node_config *c, const char *key, json_t *v, const char *base,
                         char *errmsg)
{
    if (!json_is_array(v) || json_array_size(v) == 0)
        return cmn_fail(errmsg, CMN_EINVALID,
                        "%s: expected an array of {\"Tag\",\"ServerUrl\",\"TcpUrl\"}", key);
    if (json_array_size(v) > NODE_MAX_MEMBERS)
        return cmn_fail(errmsg, CMN_EINVALID, "%s: at most %d members", key, NODE_MAX_MEMBERS);
    size_t i;
    json_t *m;
    json_array_foreach(v, i, m)
    {
        struct node_member *nm = &c->bootstrap[i];
        const char *k;
        json_t *val;
        if (!json_is_object(m))
            return cmn_fail(errmsg, CMN_EINVALID, "%s[%zu]: expected an object", key, i);
        json_object_foreach(m, k, val)
        {
            char *dst;
            size_t cap;
            if (strcmp(k, "Tag") == 0) {
                dst = nm->tag;
                cap = sizeof nm->tag;
            } else if (strcmp(k, "ServerUrl") == 0) {
                dst = nm->server_url;
                cap = sizeof nm->server_url;
            } else if (strcmp(k, "TcpUrl") == 0) {
                dst = nm->tcp_url;
                cap = sizeof nm->tcp_url;
            } else {
                return cmn_fail(errmsg, CMN_EINVALID, "%s[%zu]: unknown key '%s'", key, i, k);
            }
            if (!json_is_string(val) || json_string_length(val) == 0 ||
                json_string_length(val) >= cap)
                return cmn_fail(errmsg, CMN_EINVALID, "%s[%zu].%s: expected a string", key, i, k);
            snprintf(dst, cap, "%s", json_string_value(val));
        }
        if (!valid_tag(nm->tag) || !nm->server_url[0] || !nm->tcp_url[0])
            return cmn_fail(errmsg, CMN_EINVALID, "%s[%zu]: needs Tag (A…Z), ServerUrl and TcpUrl",
                            key, i);
        for (size_t j = 0; j < i; j++)
            if (strcmp(c->bootstrap[j].tag, nm->tag) == 0)
                return cmn_fail(errmsg, CMN_EINVALID, "%s: tag %s appears twice", key, nm->tag);
    }
    c->n_bootstrap = json_array_size(v);
    return 0;
}

static int set_uint(unsigned *field, const char *key, json_t *v, unsigned lo, unsigned hi,
                    char *errmsg)
{
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return cmn_fail(errmsg, CMN_EINVALID, "%s: expected an integer from %u to %u", key, lo, hi);
    *field = (unsigned)json_integer_value(v);
    return 0;
}

static int set_2fa_default(struct node_config *c, const char *key, json_t *v, const char *base,
                           char *errmsg)
{
    unsigned u = 0;
    int rv = set_uint(&u, key, v, 1, 100000, errmsg);
    if (rv == 0)
        c->twofa_default_min = (int)u;
    return rv;
}

static int set_2fa_max(struct node_config *c, const char *key, json_t *v, const char *base,
                       char *errmsg)
{
    unsigned u = 0;
    int rv = set_uint(&u, key, v, 1, 100000, errmsg);
    if (rv == 0)
        c->twofa_max_min = (int)u;
    return rv;
}

static int set_log_level(struct node_config *c, const char *key, json_t *v, const char *base,
                         char *errmsg)
{
    if (!json_is_string(v) || cmn_log_level_parse(json_string_value(v), &c->log_level) != 0)
        return cmn_fail(errmsg, CMN_EINVALID, "%s: expected Debug, Information, Warning or Error",
                        key);
    return 0;
}

static int set_election(struct node_config *c, const char *key, json_t *v, const char *base,
                        char *errmsg)
{
    return set_uint(&c->election_ms, key, v, 100, 60000, errmsg);
}

static int set_heartbeat(struct node_config *c, const char *key, json_t *v, const char *base,
                         char *errmsg)
{
    return set_uint(&c->heartbeat_ms, key, v, 10, 10000, errmsg);
}

static int set_snap_threshold(struct node_config *c, const char *key, json_t *v, const char *base,
                              char *errmsg)
{
    return set_uint(&c->snapshot_threshold, key, v, 16, 1000000, errmsg);
}

static int set_snap_trailing(struct node_config *c, const char *key, json_t *v, const char *base,
                             char *errmsg)
{
    return set_uint(&c->snapshot_trailing, key, v, 8, 1000000, errmsg);
}

static int set_snap_mb(struct node_config *c, const char *key, json_t *v, const char *base,
                       char *errmsg)
{
    return set_uint(&c->snapshot_mb, key, v, 1, 4096, errmsg);
}

/* 0: never renew automatically. */
static int set_renew_days(struct node_config *c, const char *key, json_t *v, const char *base,
                          char *errmsg)
{
    return set_uint(&c->renew_before_days, key, v, 0, 3650, errmsg);
}

static const struct {
    const char *key;
    setter_fn set;
} keys[] = {
    {"ServerUrl", set_server_url},
    {"ServerUrl.Tcp", set_tcp_url},
    {"PublicServerUrl", set_public_url},
    {"DataDir", set_data_dir},
    {"Security.Certificate.Path", set_cert_path},
    {"Security.Certificate.Password", set_cert_password},
    {"Security.Certificate.RenewBeforeDays", set_renew_days},
    {"Security.WellKnownCertificates.Admin", set_admin_thumbs},
    {"Security.WellKnownIssuers.Admin", set_admin_issuers},
    {"Security.ClusterCA.Path", set_cluster_ca_path},
    {"Security.ClusterCA.Password", set_cluster_ca_password},
    {"Security.MasterKey.Path", set_master_key_path},
    {"Cluster.NodeTag", set_tag},
    {"Cluster.Bootstrap", set_bootstrap},
    {"Cluster.TrustedNodeCertificates.Path", set_trusted_nodes},
    {"Security.TwoFactor.DefaultSessionDurationInMin", set_2fa_default},
    {"Security.TwoFactor.MaxSessionDurationInMin", set_2fa_max},
    {"Logs.Level", set_log_level},
    {"Logs.AuditPath", set_audit_path},
    {"Cluster.ElectionTimeoutInMs", set_election},
    {"Cluster.HeartbeatTimeoutInMs", set_heartbeat},
    {"Cluster.SnapshotThreshold", set_snap_threshold},
    {"Cluster.SnapshotTrailing", set_snap_trailing},
    {"Cluster.SnapshotThresholdInMb", set_snap_mb},
};

static int check_file(const char *key, const char *path, char *errmsg)
{
    if (path && access(path, R_OK) != 0)
        return cmn_fail(errmsg, CMN_ENOTFOUND, "%s: cannot read '%s'", key, path);
    return 0;
}

int node_url_hostport(const char *url, char *out, size_t cap)
{
    struct net_url u;
    if (net_url_parse(url, NET_URL_BARE | NET_URL_PORT, &u, NULL) != 0 || strlen(u.hostport) >= cap)
        return CMN_EINVALID;
    memcpy(out, u.hostport, strlen(u.hostport) + 1);
    return 0;
}

static int check_url(const char *key, const char *url, const char *scheme, char *errmsg)
{
    char hp[256];
    if (strncmp(url, scheme, strlen(scheme)) != 0 || node_url_hostport(url, hp, sizeof hp) != 0)
        return cmn_fail(errmsg, CMN_EINVALID, "%s: expected %sHOST:PORT, got '%s'", key, scheme,
                        url);
    return 0;
}

int node_config_load(const char *path, struct node_config *c, char *errmsg)
{
    memset(c, 0, sizeof *c);
    c->twofa_default_min = 120;
    c->renew_before_days = 30;
    c->twofa_max_min = 1440;
    c->log_level = CMN_LOG_INFO;
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        if (access(path, R_OK) != 0)
            return cmn_fail(errmsg, CMN_ENOTFOUND, "config: cannot read '%s'", path);
        return cmn_fail(errmsg, CMN_EINVALID, "config %s: line %d: %s", path, jerr.line, jerr.text);
    }
    int rv = 0;
    if (!json_is_object(root)) {
        rv = cmn_fail(errmsg, CMN_EINVALID, "config %s: expected a JSON object", path);
        goto out;
    }
    char *copy = strdup(path);
    char *base = copy ? strdup(dirname(copy)) : NULL;
    free(copy);
    c->path = strdup(path);
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v)
    {
        size_t i = 0;
        for (; i < sizeof keys / sizeof keys[0]; i++)
            if (strcmp(keys[i].key, key) == 0)
                break;
        if (i == sizeof keys / sizeof keys[0]) {
            rv = cmn_fail(errmsg, CMN_EINVALID, "config %s: unknown key '%s'", path, key);
            break;
        }
        rv = keys[i].set(c, key, v, base, errmsg);
        if (rv != 0) {
            cmn_errctx(errmsg, "config %s", path);
            break;
        }
    }
    free(base);
    if (rv != 0)
        goto out;
    const char *missing = !c->server_url        ? "ServerUrl"
                          : !c->tcp_url         ? "ServerUrl.Tcp"
                          : !c->data_dir        ? "DataDir"
                          : !c->cert_path       ? "Security.Certificate.Path"
                          : !c->master_key_path ? "Security.MasterKey.Path"
                          : !c->tag[0]          ? "Cluster.NodeTag"
                                                : NULL;
    if (missing) {
        rv = cmn_fail(errmsg, CMN_EINVALID, "config %s: missing required key '%s'", path, missing);
        goto out;
    }
    if ((rv = check_url("ServerUrl", c->server_url, "https://", errmsg)) != 0 ||
        (rv = check_url("ServerUrl.Tcp", c->tcp_url, "tls://", errmsg)) != 0 ||
        (c->public_url &&
         (rv = check_url("PublicServerUrl", c->public_url, "https://", errmsg)) != 0) ||
        (rv = check_file("Security.Certificate.Path", c->cert_path, errmsg)) != 0 ||
        (rv = check_file("Security.ClusterCA.Path", c->cluster_ca_path, errmsg)) != 0 ||
        (rv = check_file("Cluster.TrustedNodeCertificates.Path", c->trusted_nodes_path, errmsg)) !=
            0)
        goto out;
    if (c->twofa_default_min > c->twofa_max_min) {
        rv = cmn_fail(errmsg, CMN_EINVALID,
                      "Security.TwoFactor.DefaultSessionDurationInMin is above the maximum");
        goto out;
    }
    if (c->n_bootstrap) {
        bool self = false;
        for (size_t i = 0; i < c->n_bootstrap; i++)
            self |= strcmp(c->bootstrap[i].tag, c->tag) == 0;
        if (!self) {
            rv = cmn_fail(errmsg, CMN_EINVALID,
                          "Cluster.Bootstrap: this node's tag %s is not among the members", c->tag);
            goto out;
        }
    }
    if (!c->public_url && (c->public_url = strdup(c->server_url)) == NULL)
        rv = CMN_ENOMEM;
out:
    json_decref(root);
    if (rv != 0)
        node_config_fini(c);
    return rv;
}

void node_config_fini(struct node_config *c)
{
    free(c->path);
    free(c->server_url);
    free(c->tcp_url);
    free(c->public_url);
    free(c->data_dir);
    free(c->cert_path);
    if (c->cert_password) {
        memset(c->cert_password, 0, strlen(c->cert_password));
        free(c->cert_password);
    }
    for (size_t i = 0; i < c->n_admin_thumbprints; i++)
        free(c->admin_thumbprints[i]);
    free(c->admin_thumbprints);
    for (size_t i = 0; i < c->n_admin_issuers; i++)
        free(c->admin_issuers[i]);
    free(c->admin_issuers);
    free(c->cluster_ca_path);
    if (c->cluster_ca_password) {
        memset(c->cluster_ca_password, 0, strlen(c->cluster_ca_password));
        free(c->cluster_ca_password);
    }
    free(c->trusted_nodes_path);
    free(c->audit_path);
    free(c->master_key_path);
    memset(c, 0, sizeof *c);
}
