/* The node's JSON configuration (DESIGN.md section 5): RavenDB's flat dotted key names;
 * relative paths resolve against the file's folder; unknown keys, wrong types and missing
 * files are refused with a message naming the key. */
#ifndef CORVID_NODE_CONFIG_H
#define CORVID_NODE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"
#include "common/log.h"

#define NODE_MAX_MEMBERS 32

struct node_member {
    char tag[8];
    char server_url[256];
    char tcp_url[256];
};

/* Everything owned by the struct; release with node_config_fini. */
struct node_config {
    char *path;       /* the file read */
    char *server_url; /* ServerUrl: https://ip:port */
    char *tcp_url;    /* ServerUrl.Tcp: tls://ip:port */
    char *public_url; /* PublicServerUrl, or ServerUrl */
    char *data_dir;
    char *cert_path;
    char *cert_password;
    unsigned renew_before_days; /* Security.Certificate.RenewBeforeDays; 0: never */
    char **admin_thumbprints;   /* Security.WellKnownCertificates.Admin */
    size_t n_admin_thumbprints;
    char **admin_issuers; /* Security.WellKnownIssuers.Admin: paths (resolved) or base64 */
    size_t n_admin_issuers;
    char *cluster_ca_path;
    char *cluster_ca_password;
    char *master_key_path; /* Security.MasterKey.Path (node/keys.c) */
    char tag[8];
    struct node_member bootstrap[NODE_MAX_MEMBERS];
    size_t n_bootstrap; /* 0: start passive */
    char *trusted_nodes_path;
    int twofa_default_min;
    int twofa_max_min;
    enum cmn_log_level log_level;
    char *audit_path;
    unsigned election_ms, heartbeat_ms, snapshot_threshold, snapshot_trailing, snapshot_mb;
};

int node_config_load(const char *path, struct node_config *out, char *errmsg) CMN_MUST_CHECK;
void node_config_fini(struct node_config *c);

/* "ip:port" of a URL such as https://127.0.0.1:8081 or tls://127.0.0.1:9081. */
int node_url_hostport(const char *url, char *out, size_t cap) CMN_MUST_CHECK;

#endif
