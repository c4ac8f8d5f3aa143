/* `corvid pki`: offline cluster PKI (root CA, issuing CA, node certificates) and file inspection.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ca/ca.h"
#include "common/buf.h"
#include "common/env.h"
#include "common/file.h"
#include "tools/corvid/cli.h"
#include "tools/corvid/remote.h"

const char pki_summary[] =
    "offline PKI: create the cluster CA and node certificates, inspect files";

#define ROOT_YEARS        20
#define ISSUING_YEARS     10
#define NODE_DEFAULT_DAYS 825 /* the longest TLS server validity Apple platforms accept */
#define NODE_MAX_DAYS     3650
#define MAX_NODES         64

/* ---------------------------------------------------------------- files */

static const char *password_of(const struct cmn_buf *b)
{
    return b->len ? (const char *)b->data : NULL;
}

static int path_join(char *out, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(out, cap, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= cap) {
        fprintf(stderr, "corvid: path too long: %s/%s\n", dir, name);
        return -1;
    }
    return 0;
}

/* Writes a file whole, created with `mode` from the start (never chmod-ed afterwards): a
 * temporary file opened O_CREAT|O_EXCL, then linked into place (refusing to replace an existing
 * file) or, with force, renamed over it. */
static int write_file(const char *dir, const char *name, const void *data, size_t len, mode_t mode,
                      bool force)
{
    char path[PATH_MAX], tmp[PATH_MAX], tmpname[NAME_MAX];
    snprintf(tmpname, sizeof tmpname, ".%.200s.tmp-%ld", name, (long)getpid());
    if (path_join(path, sizeof path, dir, name) != 0 ||
        path_join(tmp, sizeof tmp, dir, tmpname) != 0)
        return -1;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0) {
        fprintf(stderr, "corvid: cannot create %s: %s\n", tmp, strerror(errno));
        return -1;
    }
    const uint8_t *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            fprintf(stderr, "corvid: cannot write %s: %s\n", tmp, strerror(errno));
            goto err;
        }
        p += w;
        left -= (size_t)w;
    }
    if (fsync(fd) != 0) {
        fprintf(stderr, "corvid: cannot sync %s: %s\n", tmp, strerror(errno));
        goto err;
    }
    if (close(fd) != 0) {
        fd = -1;
        fprintf(stderr, "corvid: cannot write %s: %s\n", tmp, strerror(errno));
        goto err;
    }
    fd = -1;
    if (force) {
        if (rename(tmp, path) != 0) {
            fprintf(stderr, "corvid: cannot rename %s to %s: %s\n", tmp, path, strerror(errno));
            goto err;
        }
    } else {
        if (link(tmp, path) != 0) {
            fprintf(stderr, "corvid: cannot create %s: %s%s\n", path, strerror(errno),
                    errno == EEXIST ? " (use --force to overwrite)" : "");
            goto err;
        }
        unlink(tmp);
    }
    return 0;
err:
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    return -1;
}

/* Creates dir and its missing parents with mode 0700 (existing ones are left as they are). */
static int make_dirs(const char *dir)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", dir) >= (int)sizeof buf) {
        fprintf(stderr, "corvid: path too long: %s\n", dir);
        return -1;
    }
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        if (mkdir(buf, 0700) != 0 && errno != EEXIST) {
            fprintf(stderr, "corvid: cannot create directory %s: %s\n", buf, strerror(errno));
            return -1;
        }
        *p = c;
        if (c == '\0')
            break;
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "corvid: %s is not a directory\n", dir);
        return -1;
    }
    return 0;
}

/* Fails when any of the names exists in dir (unless force). */
static int check_absent(const char *dir, const char *const *names, size_t n, bool force)
{
    if (force)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char path[PATH_MAX];
        struct stat st;
        if (path_join(path, sizeof path, dir, names[i]) != 0)
            return -1;
        if (lstat(path, &st) == 0) {
            fprintf(stderr, "corvid: %s already exists; refusing to overwrite (use --force)\n",
                    path);
            return -1;
        }
    }
    return 0;
}

static void wrote(const char *dir, const char *name, const char *what)
{
    printf("wrote %s/%s  (%s)\n", dir, name, what);
}

/* ---------------------------------------------------------------- master key */

#define MASTER_KEY_NAME     "master.key"
#define MASTER_KEY_READ_MAX (CA_MASTER_KEY_SIZE * CA_MASTER_KEYS_MAX + 64)

/* Reads a master key file (owner-only, 32 or 64 bytes) into bytes (secret) and its identifiers
 * into ids (current first). Prints what is wrong, never the key. */
static int read_master_key(const char *path, struct cmn_buf *bytes,
                           char ids[CA_MASTER_KEYS_MAX][CA_SEAL_ID_HEX], size_t *n)
{
    char errmsg[CMN_ERRMSG_SIZE] = "";
    struct ca_master_key keys[CA_MASTER_KEYS_MAX];
    int e = cmn_read_private_file(path, MASTER_KEY_READ_MAX, bytes, errmsg);
    if (e != 0) {
        fprintf(stderr, "corvid: master key: %s\n", errmsg);
        return -1;
    }
    if ((e = ca_master_keys_parse(bytes->data, bytes->len, keys, n, errmsg)) != 0) {
        fprintf(stderr, "corvid: master key %s %s\n", path, errmsg);
        return -1;
    }
    for (size_t i = 0; i < *n; i++) {
        ca_master_key_id_hex(keys[i].id, ids[i]);
        ca_master_key_fini(&keys[i]);
    }
    return 0;
}

/* The identifier of 32 fresh key bytes, for printing. */
static int master_key_id(const uint8_t *bytes, char id[CA_SEAL_ID_HEX])
{
    struct ca_master_key mk;
    char errmsg[CMN_ERRMSG_SIZE] = "";
    int e = ca_master_key_init(&mk, bytes, CA_MASTER_KEY_SIZE, errmsg);
    if (e != 0) {
        fprintf(stderr, "corvid: master key: %s\n", errmsg);
        return -1;
    }
    ca_master_key_id_hex(mk.id, id);
    ca_master_key_fini(&mk);
    return 0;
}

/* A new master key: 32 bytes from the system's random source, written 0600. */
static int write_new_master_key(const char *dir, bool force)
{
    uint8_t key[CA_MASTER_KEY_SIZE];
    char id[CA_SEAL_ID_HEX], what[160];
    int e = cmn_random(&cmn_rng_system, key, sizeof key);
    if (e != 0) {
        fprintf(stderr, "corvid: random source failed: %s\n", cmn_strerror(e));
        return -1;
    }
    int rv = master_key_id(key, id) == 0 &&
                     write_file(dir, MASTER_KEY_NAME, key, sizeof key, 0600, force) == 0
                 ? 0
                 : -1;
    cmn_cleanse(key, sizeof key);
    if (rv != 0)
        return -1;
    snprintf(what, sizeof what,
             "master key %s: Security.MasterKey.Path of every node, outside its DataDir", id);
    wrote(dir, MASTER_KEY_NAME, what);
    return 0;
}

/* ---------------------------------------------------------------- material */

static int fail(const char *what, int rv, const char *errmsg)
{
    fprintf(stderr, "corvid: %s: %s\n", what, errmsg[0] ? errmsg : cmn_strerror(rv));
    return -1;
}

struct node_spec {
    char tag[CA_NODE_TAG_SIZE];
    char host[256];
};

/* The material of one node: key, certificate and its files (.pfx, .pem, .crt). */
static int make_node(const struct node_spec *spec, const struct ca_signer *issuing,
                     const struct ca_cert_list *chain, enum ca_key_type kt, int64_t nb, int64_t na,
                     const char *password, X509 **cert_out, const char *dir, bool force)
{
    char errmsg[CMN_ERRMSG_SIZE] = "";
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    struct cmn_buf pfx, pem, crt;
    cmn_buf_init(&pfx, true);
    cmn_buf_init(&pem, true);
    cmn_buf_init(&crt, false);
    int rv = -1, e;
    char cn[64], name[32];
    snprintf(cn, sizeof cn, "Corvid Node %s", spec->tag);
    if ((e = ca_key_generate(kt, &key, errmsg)) != 0) {
        fail("generating a node key", e, errmsg);
        goto out;
    }
    struct ca_cert_req req = {.profile = CA_PROFILE_NODE,
                              .cn = cn,
                              .host = spec->host,
                              .node_tag = spec->tag,
                              .not_before = nb,
                              .not_after = na,
                              .subject_key = key};
    if ((e = ca_cert_issue(&req, issuing, &cmn_rng_system, &cert, errmsg)) != 0) {
        fail("issuing a node certificate", e, errmsg);
        goto out;
    }
    struct ca_pfx_opts opts = {CA_PFX_MODERN, cn, 0};
    if ((e = ca_pfx_build(key, cert, chain, password, &opts, &pfx, errmsg)) != 0) {
        fail("building the node PFX", e, errmsg);
        goto out;
    }
    if ((e = ca_cert_to_pem(cert, &crt)) != 0 || (e = ca_cert_to_pem(cert, &pem)) != 0 ||
        (e = ca_cert_to_pem(chain->v[0], &pem)) != 0 ||
        (e = ca_key_to_pem(key, password, &pem, errmsg)) != 0) {
        fail("encoding the node certificate", e, errmsg);
        goto out;
    }
    snprintf(name, sizeof name, "%.4s.pfx", spec->tag);
    if (write_file(dir, name, pfx.data, pfx.len, 0600, force) != 0)
        goto out;
    wrote(dir, name, "node key + certificate + chain, PKCS#12");
    snprintf(name, sizeof name, "%.4s.pem", spec->tag);
    if (write_file(dir, name, pem.data, pem.len, 0600, force) != 0)
        goto out;
    wrote(dir, name, "node certificate + issuing CA + key, PEM (for curl --cert)");
    snprintf(name, sizeof name, "%.4s.crt", spec->tag);
    if (write_file(dir, name, crt.data, crt.len, 0644, force) != 0)
        goto out;
    wrote(dir, name, "node certificate, PEM");
    *cert_out = cert;
    cert = NULL;
    rv = 0;
out:
    X509_free(cert);
    EVP_PKEY_free(key);
    cmn_buf_fini(&pfx);
    cmn_buf_fini(&pem);
    cmn_buf_fini(&crt);
    return rv;
}

static int parse_nodes(const char *arg, struct node_spec *nodes, size_t *n)
{
    *n = 0;
    const char *p = arg;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        if (*n == MAX_NODES) {
            fprintf(stderr, "corvid: at most %d nodes\n", MAX_NODES);
            return -1;
        }
        struct node_spec *s = &nodes[*n];
        size_t tlen = eq ? (size_t)(eq - p) : 0;
        size_t hlen = eq ? len - tlen - 1 : 0;
        if (eq == NULL || tlen >= sizeof s->tag || hlen == 0 || hlen >= sizeof s->host) {
            fprintf(stderr, "corvid: --nodes: expected TAG=HOST, got '%.*s'\n", (int)len, p);
            return -1;
        }
        memcpy(s->tag, p, tlen);
        s->tag[tlen] = '\0';
        memcpy(s->host, eq + 1, hlen);
        s->host[hlen] = '\0';
        if (!ca_node_tag_valid(s->tag)) {
            fprintf(stderr, "corvid: --nodes: invalid tag '%s' (1..4 upper-case letters)\n",
                    s->tag);
            return -1;
        }
        if (!ca_host_valid(s->host)) {
            fprintf(stderr, "corvid: --nodes: invalid host '%s' (IP address or DNS name)\n",
                    s->host);
            return -1;
        }
        for (size_t i = 0; i < *n; i++)
            if (strcmp(nodes[i].tag, s->tag) == 0) {
                fprintf(stderr, "corvid: --nodes: tag %s given twice\n", s->tag);
                return -1;
            }
        (*n)++;
        if (end == NULL)
            break;
        p = end + 1;
    }
    if (*n == 0) {
        fprintf(stderr, "corvid: --nodes: no node given\n");
        return -1;
    }
    return 0;
}

static int parse_days(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || end == s || v < 1 || v > NODE_MAX_DAYS) {
        fprintf(stderr, "corvid: --days must be 1..%d\n", NODE_MAX_DAYS);
        return -1;
    }
    *out = v;
    return 0;
}

static int64_t now_secs(void)
{
    return cmn_now_ms(&cmn_clock_system) / 1000;
}

/* ---------------------------------------------------------------- init-cluster */

static const char init_cluster_help[] =
    "usage: corvid pki init-cluster --out DIR --nodes TAG=HOST[,TAG=HOST...]\n"
    "                               [--key-type TYPE] [--days N] [--password-file F] [--force]\n"
    "\n"
    "Creates, offline, a root CA, an issuing CA signed by it, and one certificate per node\n"
    "signed by the issuing CA. DIR is created with mode 0700 when missing; files holding private\n"
    "keys are created with mode 0600. Existing files are never overwritten without --force.\n"
    "\n"
    "Options:\n"
    "  --out DIR           where to write the material\n"
    "  --nodes LIST        node tags (1..4 upper-case letters) and hosts (IP or DNS name)\n"
    "  --key-type TYPE     EC-P256 (default), EC-P384, RSA-2048, RSA-3072 or RSA-4096\n"
    "  --days N            node certificate validity in days (default 825, at most 3650);\n"
    "                      the root CA lasts 20 years and the issuing CA 10\n"
    "  --password-file F   protect every .pfx and .key/.pem key with the first line of F\n"
    "                      (default: no password)\n"
    "  --force             overwrite existing files\n"
    "\n"
    "Writes: root.crt, root.key (keep it offline), issuing.crt, issuing.key, issuing.pfx\n"
    "(Security.ClusterCA.Path), <TAG>.pfx (Security.Certificate.Path), <TAG>.pem (curl),\n"
    "<TAG>.crt, ServerCertificatesCollection.pfx (public node certificates), ca-chain.crt and\n"
    "master.key (32 random bytes, mode 0600: Security.MasterKey.Path, the same file on every\n"
    "node, outside its DataDir; the nodes seal the issuing CA key with it).\n"
    "\n"
    "Examples:\n"
    "  corvid pki init-cluster --out var/local/pki --nodes A=127.0.0.1,B=127.0.0.1,C=127.0.0.1\n"
    "  corvid pki init-cluster --out pki --nodes A=a.example.com,B=b.example.com \\\n"
    "      --key-type RSA-3072 --days 365 --password-file secret.txt\n";

static int init_cluster(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"out", required_argument, NULL, 'o'},
        {"nodes", required_argument, NULL, 'n'},
        {"key-type", required_argument, NULL, 'k'},
        {"days", required_argument, NULL, 'd'},
        {"password-file", required_argument, NULL, 'p'},
        {"force", no_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *out_dir = NULL, *nodes_arg = NULL, *pass_file = NULL;
    enum ca_key_type kt = CA_KEY_DEFAULT;
    int64_t days = NODE_DEFAULT_DAYS;
    bool force = false;
    char errmsg[CMN_ERRMSG_SIZE] = "";
    optind = 0;
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'o':
            out_dir = optarg;
            break;
        case 'n':
            nodes_arg = optarg;
            break;
        case 'k':
            if (ca_key_type_parse(optarg, &kt, errmsg) != 0) {
                fprintf(stderr, "corvid: --key-type: %s\n", errmsg);
                return CLI_USAGE;
            }
            break;
        case 'd':
            if (parse_days(optarg, &days) != 0)
                return CLI_USAGE;
            break;
        case 'p':
            pass_file = optarg;
            break;
        case 'f':
            force = true;
            break;
        case 'h':
            fputs(init_cluster_help, stdout);
            return CLI_OK;
        default:
            fputs(init_cluster_help, stderr);
            return CLI_USAGE;
        }
    }
    if (optind != argc || out_dir == NULL || nodes_arg == NULL) {
        fprintf(stderr,
                "corvid: init-cluster needs --out and --nodes (and no other arguments)\n\n");
        fputs(init_cluster_help, stderr);
        return CLI_USAGE;
    }
    static struct node_spec nodes[MAX_NODES];
    size_t n_nodes = 0;
    if (parse_nodes(nodes_arg, nodes, &n_nodes) != 0)
        return CLI_USAGE;

    /* Refuse early, before generating anything, when material is already there. */
    const char *fixed[] = {"root.crt",     "root.key",     "issuing.crt",
                           "issuing.key",  "issuing.pfx",  "ServerCertificatesCollection.pfx",
                           "ca-chain.crt", MASTER_KEY_NAME};
    if (check_absent(out_dir, fixed, sizeof fixed / sizeof fixed[0], force) != 0)
        return CLI_FAILURE;
    for (size_t i = 0; i < n_nodes; i++) {
        char a[16], b[16], d[16];
        snprintf(a, sizeof a, "%.4s.pfx", nodes[i].tag);
        snprintf(b, sizeof b, "%.4s.pem", nodes[i].tag);
        snprintf(d, sizeof d, "%.4s.crt", nodes[i].tag);
        const char *names[] = {a, b, d};
        if (check_absent(out_dir, names, 3, force) != 0)
            return CLI_FAILURE;
    }

    int rv = CLI_FAILURE, e;
    struct cmn_buf pass, buf;
    cmn_buf_init(&pass, true);
    cmn_buf_init(&buf, true);
    EVP_PKEY *root_key = NULL, *iss_key = NULL;
    X509 *root = NULL, *iss = NULL;
    struct ca_cert_list chain, node_certs, iss_chain;
    ca_cert_list_init(&chain);
    ca_cert_list_init(&node_certs);
    ca_cert_list_init(&iss_chain);
    if (pass_file != NULL && cli_read_password_file(pass_file, &pass) != 0)
        goto out;
    const char *pw = password_of(&pass);
    if (make_dirs(out_dir) != 0)
        goto out;

    int64_t now = now_secs(), today = ca_day_start(now);
    int64_t nb = today - CA_CLOCK_SKEW_SECS;
    unsigned char id[4];
    char idhex[9], root_cn[64], iss_cn[64];
    if ((e = cmn_random(&cmn_rng_system, id, sizeof id)) != 0) {
        fprintf(stderr, "corvid: random source failed: %s\n", cmn_strerror(e));
        goto out;
    }
    cmn_hex_upper(id, sizeof id, idhex);
    snprintf(root_cn, sizeof root_cn, "Corvid Root CA %s", idhex);
    snprintf(iss_cn, sizeof iss_cn, "Corvid Issuing CA %s", idhex);

    if ((e = ca_key_generate(kt, &root_key, errmsg)) != 0 ||
        (e = ca_key_generate(kt, &iss_key, errmsg)) != 0) {
        fail("generating CA keys", e, errmsg);
        goto out;
    }
    struct ca_cert_req rreq = {.profile = CA_PROFILE_ROOT,
                               .cn = root_cn,
                               .not_before = nb,
                               .not_after = ca_add_years(today, ROOT_YEARS),
                               .subject_key = root_key};
    if ((e = ca_cert_issue(&rreq, NULL, &cmn_rng_system, &root, errmsg)) != 0) {
        fail("issuing the root CA", e, errmsg);
        goto out;
    }
    struct ca_signer root_signer = {root, root_key};
    struct ca_cert_req ireq = {.profile = CA_PROFILE_ISSUING,
                               .cn = iss_cn,
                               .not_before = nb,
                               .not_after = ca_add_years(today, ISSUING_YEARS),
                               .subject_key = iss_key};
    if ((e = ca_cert_issue(&ireq, &root_signer, &cmn_rng_system, &iss, errmsg)) != 0) {
        fail("issuing the issuing CA", e, errmsg);
        goto out;
    }
    if (ca_cert_list_add(&chain, iss) != 0 || ca_cert_list_add(&chain, root) != 0 ||
        ca_cert_list_add(&iss_chain, root) != 0) {
        fprintf(stderr, "corvid: out of memory\n");
        goto out;
    }

    /* root */
    buf.len = 0;
    if (ca_cert_to_pem(root, &buf) != 0 ||
        write_file(out_dir, "root.crt", buf.data, buf.len, 0644, force) != 0)
        goto out;
    wrote(out_dir, "root.crt", "root CA certificate, PEM");
    buf.len = 0;
    if ((e = ca_key_to_pem(root_key, pw, &buf, errmsg)) != 0) {
        fail("encoding the root key", e, errmsg);
        goto out;
    }
    if (write_file(out_dir, "root.key", buf.data, buf.len, 0600, force) != 0)
        goto out;
    wrote(out_dir, "root.key", "root CA private key, PEM PKCS#8: keep it offline, off the nodes");

    /* issuing */
    buf.len = 0;
    if (ca_cert_to_pem(iss, &buf) != 0 ||
        write_file(out_dir, "issuing.crt", buf.data, buf.len, 0644, force) != 0)
        goto out;
    wrote(out_dir, "issuing.crt", "issuing CA certificate, PEM");
    buf.len = 0;
    if ((e = ca_key_to_pem(iss_key, pw, &buf, errmsg)) != 0) {
        fail("encoding the issuing key", e, errmsg);
        goto out;
    }
    if (write_file(out_dir, "issuing.key", buf.data, buf.len, 0600, force) != 0)
        goto out;
    wrote(out_dir, "issuing.key", "issuing CA private key, PEM PKCS#8");
    buf.len = 0;
    struct ca_pfx_opts iopts = {CA_PFX_MODERN, iss_cn, 0};
    if ((e = ca_pfx_build(iss_key, iss, &iss_chain, pw, &iopts, &buf, errmsg)) != 0) {
        fail("building issuing.pfx", e, errmsg);
        goto out;
    }
    if (write_file(out_dir, "issuing.pfx", buf.data, buf.len, 0600, force) != 0)
        goto out;
    wrote(out_dir, "issuing.pfx",
          "issuing CA key + certificate + root, PKCS#12 (Security.ClusterCA.Path)");

    /* nodes */
    struct ca_signer iss_signer = {iss, iss_key};
    int64_t node_na = today + days * CA_DAY_SECS;
    for (size_t i = 0; i < n_nodes; i++) {
        X509 *cert = NULL;
        if (make_node(&nodes[i], &iss_signer, &chain, kt, nb, node_na, pw, &cert, out_dir, force) !=
            0)
            goto out;
        if (ca_cert_list_push(&node_certs, cert) != 0) {
            fprintf(stderr, "corvid: out of memory\n");
            goto out;
        }
    }
    buf.len = 0;
    if ((e = ca_pfx_build_collection(&node_certs, &buf, errmsg)) != 0) {
        fail("building ServerCertificatesCollection.pfx", e, errmsg);
        goto out;
    }
    if (write_file(out_dir, "ServerCertificatesCollection.pfx", buf.data, buf.len, 0644, force) !=
        0)
        goto out;
    wrote(out_dir, "ServerCertificatesCollection.pfx",
          "public node certificates, PKCS#12 without keys or password");
    buf.len = 0;
    if (ca_certs_to_pem(&chain, &buf) != 0 ||
        write_file(out_dir, "ca-chain.crt", buf.data, buf.len, 0644, force) != 0)
        goto out;
    wrote(out_dir, "ca-chain.crt", "issuing CA + root CA certificates, PEM");
    if (write_new_master_key(out_dir, force) != 0)
        goto out;
    rv = CLI_OK;
out:
    ca_cert_list_fini(&chain);
    ca_cert_list_fini(&iss_chain);
    ca_cert_list_fini(&node_certs);
    X509_free(root);
    X509_free(iss);
    EVP_PKEY_free(root_key);
    EVP_PKEY_free(iss_key);
    cmn_buf_fini(&buf);
    cmn_buf_fini(&pass);
    return rv;
}

/* ---------------------------------------------------------------- init-node */

/* Puts the cluster's master key (bytes, read from ca_dir) beside the new node's material in
 * out_dir: nothing to do in the same directory, kept when out_dir already holds the same key,
 * refused when it holds another one (unless force). */
static int copy_master_key(const char *ca_dir, const char *out_dir, const struct cmn_buf *bytes,
                           const char *id, bool force)
{
    char a[PATH_MAX], b[PATH_MAX], path[PATH_MAX], what[160];
    if (realpath(ca_dir, a) == NULL || realpath(out_dir, b) == NULL) {
        fprintf(stderr, "corvid: cannot resolve %s or %s: %s\n", ca_dir, out_dir, strerror(errno));
        return -1;
    }
    if (strcmp(a, b) == 0) {
        printf("kept %s/%s  (the cluster's master key %s: Security.MasterKey.Path)\n", ca_dir,
               MASTER_KEY_NAME, id);
        return 0;
    }
    if (path_join(path, sizeof path, out_dir, MASTER_KEY_NAME) != 0)
        return -1;
    struct stat st;
    if (!force && lstat(path, &st) == 0) {
        struct cmn_buf there;
        cmn_buf_init(&there, true);
        char errmsg[CMN_ERRMSG_SIZE] = "";
        int e = cmn_read_private_file(path, MASTER_KEY_READ_MAX, &there, errmsg);
        bool same =
            e == 0 && there.len == bytes->len && memcmp(there.data, bytes->data, bytes->len) == 0;
        cmn_buf_fini(&there);
        if (!same) {
            fprintf(stderr,
                    "corvid: %s already exists and is not the cluster's master key (%s): "
                    "refusing to overwrite it (use --force)\n",
                    path, e != 0 ? errmsg : "another key");
            return -1;
        }
        printf("kept %s  (the cluster's master key %s: Security.MasterKey.Path)\n", path, id);
        return 0;
    }
    if (write_file(out_dir, MASTER_KEY_NAME, bytes->data, bytes->len, 0600, force) != 0)
        return -1;
    snprintf(what, sizeof what, "copy of the cluster's master key %s: Security.MasterKey.Path", id);
    wrote(out_dir, MASTER_KEY_NAME, what);
    return 0;
}

static const char init_node_help[] =
    "usage: corvid pki init-node --ca-dir DIR --tag TAG --host HOST [--out DIR]\n"
    "                            [--key-type TYPE] [--days N] [--password-file F] [--force]\n"
    "\n"
    "Creates a certificate for one more node, signed by the issuing CA that init-cluster left\n"
    "in DIR (issuing.crt, issuing.key, root.crt). Writes <TAG>.pfx, <TAG>.pem (mode 0600) and\n"
    "<TAG>.crt. The node needs the cluster's master key too: DIR/master.key is checked, and\n"
    "copied (mode 0600) when --out is another directory; a different master.key already there\n"
    "is refused (--force replaces it).\n"
    "\n"
    "Options:\n"
    "  --ca-dir DIR        directory holding issuing.crt, issuing.key, root.crt, master.key\n"
    "  --tag TAG           node tag, 1..4 upper-case letters\n"
    "  --host HOST         the node's IP address or DNS name (goes into the SAN)\n"
    "  --out DIR           where to write (default: the CA directory)\n"
    "  --key-type TYPE     EC-P256 (default), EC-P384, RSA-2048, RSA-3072 or RSA-4096\n"
    "  --days N            validity in days (default 825)\n"
    "  --password-file F   password of issuing.key, also used for the new .pfx and key\n"
    "  --force             overwrite existing files\n"
    "\n"
    "Example:\n"
    "  corvid pki init-node --ca-dir var/local/pki --tag D --host 127.0.0.1\n";

static int init_node(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"ca-dir", required_argument, NULL, 'c'},
        {"tag", required_argument, NULL, 't'},
        {"host", required_argument, NULL, 'H'},
        {"out", required_argument, NULL, 'o'},
        {"key-type", required_argument, NULL, 'k'},
        {"days", required_argument, NULL, 'd'},
        {"password-file", required_argument, NULL, 'p'},
        {"force", no_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *ca_dir = NULL, *out_dir = NULL, *pass_file = NULL;
    struct node_spec spec = {"", ""};
    enum ca_key_type kt = CA_KEY_DEFAULT;
    int64_t days = NODE_DEFAULT_DAYS;
    bool force = false;
    char errmsg[CMN_ERRMSG_SIZE] = "";
    optind = 0;
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            ca_dir = optarg;
            break;
        case 't':
            if (!ca_node_tag_valid(optarg)) {
                fprintf(stderr, "corvid: --tag: 1..4 upper-case letters\n");
                return CLI_USAGE;
            }
            snprintf(spec.tag, sizeof spec.tag, "%s", optarg);
            break;
        case 'H':
            if (!ca_host_valid(optarg) || strlen(optarg) >= sizeof spec.host) {
                fprintf(stderr, "corvid: --host: an IP address or DNS name\n");
                return CLI_USAGE;
            }
            snprintf(spec.host, sizeof spec.host, "%s", optarg);
            break;
        case 'o':
            out_dir = optarg;
            break;
        case 'k':
            if (ca_key_type_parse(optarg, &kt, errmsg) != 0) {
                fprintf(stderr, "corvid: --key-type: %s\n", errmsg);
                return CLI_USAGE;
            }
            break;
        case 'd':
            if (parse_days(optarg, &days) != 0)
                return CLI_USAGE;
            break;
        case 'p':
            pass_file = optarg;
            break;
        case 'f':
            force = true;
            break;
        case 'h':
            fputs(init_node_help, stdout);
            return CLI_OK;
        default:
            fputs(init_node_help, stderr);
            return CLI_USAGE;
        }
    }
    if (optind != argc || ca_dir == NULL || spec.tag[0] == '\0' || spec.host[0] == '\0') {
        fprintf(stderr, "corvid: init-node needs --ca-dir, --tag and --host\n\n");
        fputs(init_node_help, stderr);
        return CLI_USAGE;
    }
    if (out_dir == NULL)
        out_dir = ca_dir;

    int rv = CLI_FAILURE, e;
    struct cmn_buf pass, file, mkey;
    cmn_buf_init(&pass, true);
    cmn_buf_init(&file, true);
    cmn_buf_init(&mkey, true);
    EVP_PKEY *iss_key = NULL;
    X509 *iss = NULL, *root = NULL, *cert = NULL;
    struct ca_cert_list chain;
    ca_cert_list_init(&chain);
    char path[PATH_MAX];
    if (pass_file != NULL && cli_read_password_file(pass_file, &pass) != 0)
        goto out;
    const char *pw = password_of(&pass);

    if (path_join(path, sizeof path, ca_dir, "issuing.crt") != 0 ||
        cli_read_file(path, CA_INPUT_MAX, &file) != 0)
        goto out;
    if ((e = ca_cert_from_bytes(file.data, file.len, &iss, errmsg)) != 0) {
        fail(path, e, errmsg);
        goto out;
    }
    if (path_join(path, sizeof path, ca_dir, "root.crt") != 0 ||
        cli_read_file(path, CA_INPUT_MAX, &file) != 0)
        goto out;
    if ((e = ca_cert_from_bytes(file.data, file.len, &root, errmsg)) != 0) {
        fail(path, e, errmsg);
        goto out;
    }
    cmn_buf_fini(&file);
    cmn_buf_init(&file, true);
    if (path_join(path, sizeof path, ca_dir, "issuing.key") != 0 ||
        cli_read_file(path, CA_INPUT_MAX, &file) != 0)
        goto out;
    if ((e = ca_key_from_pem(file.data, file.len, pw, &iss_key, errmsg)) != 0) {
        fprintf(stderr, "corvid: %s: %s%s\n", path, errmsg,
                e == CMN_EBADPASSWORD ? " (give --password-file)" : "");
        goto out;
    }
    if ((e = ca_issued_by(iss, root, errmsg)) != 0) {
        fail("issuing.crt is not signed by root.crt", e, errmsg);
        goto out;
    }
    /* A node that joins must open the issuing CA key the cluster sealed: the same master key,
     * never a new one. */
    char ids[CA_MASTER_KEYS_MAX][CA_SEAL_ID_HEX];
    size_t n_ids = 0;
    if (path_join(path, sizeof path, ca_dir, MASTER_KEY_NAME) != 0)
        goto out;
    if (access(path, F_OK) != 0) {
        fprintf(stderr,
                "corvid: %s: %s: a node needs the cluster's master key "
                "(Security.MasterKey.Path), as init-cluster wrote it\n",
                path, strerror(errno));
        goto out;
    }
    if (read_master_key(path, &mkey, ids, &n_ids) != 0)
        goto out;
    char a[16], b[16], d[16];
    snprintf(a, sizeof a, "%.4s.pfx", spec.tag);
    snprintf(b, sizeof b, "%.4s.pem", spec.tag);
    snprintf(d, sizeof d, "%.4s.crt", spec.tag);
    const char *names[] = {a, b, d};
    if (make_dirs(out_dir) != 0 || check_absent(out_dir, names, 3, force) != 0)
        goto out;
    if (ca_cert_list_add(&chain, iss) != 0 || ca_cert_list_add(&chain, root) != 0) {
        fprintf(stderr, "corvid: out of memory\n");
        goto out;
    }
    struct ca_signer signer = {iss, iss_key};
    int64_t nb, na;
    ca_validity_days(now_secs(), days, &nb, &na);
    if (copy_master_key(ca_dir, out_dir, &mkey, ids[0], force) != 0 ||
        make_node(&spec, &signer, &chain, kt, nb, na, pw, &cert, out_dir, force) != 0)
        goto out;
    rv = CLI_OK;
out:
    X509_free(cert);
    X509_free(iss);
    X509_free(root);
    EVP_PKEY_free(iss_key);
    ca_cert_list_fini(&chain);
    cmn_buf_fini(&mkey);
    cmn_buf_fini(&file);
    cmn_buf_fini(&pass);
    return rv;
}

/* ---------------------------------------------------------------- rotate-master-key */

static const char rotate_help[] =
    "usage: corvid pki rotate-master-key --key FILE [--finish]\n"
    "\n"
    "Rotates the cluster master key (Security.MasterKey.Path) in two steps; FILE is replaced\n"
    "atomically, mode 0600, and only key identifiers are printed, never key bytes.\n"
    "\n"
    "  without --finish  FILE holds one key: it then holds a new key followed by the old one.\n"
    "                    Nodes started with it seal with the new key and still open what the\n"
    "                    old one sealed; the leader re-seals the issuing CA key under the new\n"
    "                    key.\n"
    "  --finish          FILE holds the two keys of a rotation: it then holds the new key only.\n"
    "\n"
    "Between the steps: copy FILE to every node, restart the nodes one at a time (followers\n"
    "first, the leader last), and wait until `corvid admin-channel info` shows\n"
    "'IssuingCAKey: sealed under <new id>' on every node. After --finish: copy FILE to every\n"
    "node again and restart them one at a time. README, \"Rotating the master key\".\n"
    "\n"
    "Example:\n"
    "  corvid pki rotate-master-key --key var/local/pki/master.key\n";

static int rotate_master_key(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"key", required_argument, NULL, 'k'},
        {"finish", no_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *file = NULL;
    bool finish = false;
    optind = 0;
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'k':
            file = optarg;
            break;
        case 'f':
            finish = true;
            break;
        case 'h':
            fputs(rotate_help, stdout);
            return CLI_OK;
        default:
            fputs(rotate_help, stderr);
            return CLI_USAGE;
        }
    }
    if (optind != argc || file == NULL) {
        fprintf(stderr, "corvid: rotate-master-key needs --key FILE\n\n");
        fputs(rotate_help, stderr);
        return CLI_USAGE;
    }
    char dir[PATH_MAX], name[NAME_MAX + 1];
    const char *slash = strrchr(file, '/');
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash == file ? 1 : slash - file) : 1,
             slash ? file : ".");
    snprintf(name, sizeof name, "%s", slash ? slash + 1 : file);
    int rv = CLI_FAILURE;
    struct cmn_buf bytes, next;
    cmn_buf_init(&bytes, true);
    cmn_buf_init(&next, true);
    char ids[CA_MASTER_KEYS_MAX][CA_SEAL_ID_HEX], id[CA_SEAL_ID_HEX];
    size_t n = 0;
    if (read_master_key(file, &bytes, ids, &n) != 0)
        goto out;
    if (finish) {
        if (n != 2) {
            fprintf(stderr, "corvid: %s holds one key (%s): no rotation to finish\n", file, ids[0]);
            goto out;
        }
        if (cmn_buf_append(&next, bytes.data, CA_MASTER_KEY_SIZE) != 0 ||
            write_file(dir, name, next.data, next.len, 0600, true) != 0)
            goto out;
        printf("%s: master key %s; the previous key %s is removed\n", file, ids[0], ids[1]);
        printf("next: copy %s to every node and restart the nodes one at a time\n", file);
        rv = CLI_OK;
        goto out;
    }
    if (n != 1) {
        fprintf(stderr,
                "corvid: %s holds two keys (%s, and the previous %s): a rotation is in progress; "
                "finish it first (--finish)\n",
                file, ids[0], ids[1]);
        goto out;
    }
    uint8_t key[CA_MASTER_KEY_SIZE];
    int e = cmn_random(&cmn_rng_system, key, sizeof key);
    if (e == 0)
        e = cmn_buf_append(&next, key, sizeof key);
    cmn_cleanse(key, sizeof key);
    if (e != 0 || cmn_buf_append(&next, bytes.data, bytes.len) != 0) {
        fprintf(stderr, "corvid: cannot make a new key: %s\n", cmn_strerror(e ? e : CMN_ENOMEM));
        goto out;
    }
    if (master_key_id(next.data, id) != 0 ||
        write_file(dir, name, next.data, next.len, 0600, true) != 0)
        goto out;
    printf("%s: new master key %s, then the previous key %s (kept to open what it sealed)\n", file,
           id, ids[0]);
    printf("next: copy %s to every node, restart the nodes one at a time (followers first), wait\n"
           "until `corvid admin-channel info` shows 'IssuingCAKey: sealed under %s' on every\n"
           "node, then run: corvid pki rotate-master-key --key %s --finish\n",
           file, id, file);
    rv = CLI_OK;
out:
    cmn_buf_fini(&bytes);
    cmn_buf_fini(&next);
    return rv;
}

/* ---------------------------------------------------------------- inspect */

static const char inspect_help[] =
    "usage: corvid pki inspect FILE [--password-file F]\n"
    "\n"
    "Prints each certificate of FILE (.pfx/.p12, .pem, .crt/.cer in PEM, DER or base64):\n"
    "subject, issuer, serial, validity, key type, EKUs, SANs, thumbprint (SHA-1), SHA-256\n"
    "fingerprint and public-key pinning hash. Private keys are never printed.\n"
    "\n"
    "Options:\n"
    "  --password-file F   password of a .pfx or an encrypted PEM key (first line of F)\n"
    "\n"
    "Examples:\n"
    "  corvid pki inspect var/local/pki/A.pfx\n"
    "  corvid pki inspect admin.pfx --password-file admin.pass\n";

static void fmt_time(int64_t t, char *out, size_t n)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (gmtime_r(&tt, &tm) == NULL || strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, n, "%lld", (long long)t);
}

static int print_cert(X509 *x, size_t i, size_t n, const char *note)
{
    char errmsg[CMN_ERRMSG_SIZE] = "";
    struct ca_ident id;
    int e = ca_ident_get(x, &id, errmsg);
    if (e != 0)
        return fail("reading the certificate", e, errmsg);
    struct cmn_buf subj, iss;
    cmn_buf_init(&subj, false);
    cmn_buf_init(&iss, false);
    struct ca_strlist sans = {NULL, 0};
    if (ca_subject_str(x, &subj) != 0 || ca_issuer_str(x, &iss) != 0 ||
        ca_sans(x, &sans, errmsg) != 0) {
        cmn_buf_fini(&subj);
        cmn_buf_fini(&iss);
        return fail("reading the certificate names", CMN_EMALFORMED, errmsg);
    }
    char nb[32], na[32], kdesc[32];
    fmt_time(id.not_before, nb, sizeof nb);
    fmt_time(id.not_after, na, sizeof na);
    ca_key_describe(X509_get0_pubkey(x), kdesc, sizeof kdesc);
    printf("Certificate %zu of %zu%s\n", i + 1, n, note);
    printf("  Subject:       %s\n", (const char *)subj.data);
    printf("  Issuer:        %s\n", (const char *)iss.data);
    printf("  Serial:        %s\n", id.serial);
    printf("  Not before:    %s\n", nb);
    printf("  Not after:     %s\n", na);
    printf("  Key type:      %s\n", kdesc);
    printf("  CA:            %s\n", id.is_ca ? "yes" : "no");
    if (id.eku & CA_EKU_ANY)
        printf("  EKU:           (unrestricted)\n");
    else
        printf("  EKU:           %s%s%s\n", (id.eku & CA_EKU_SERVER) ? "serverAuth" : "",
               (id.eku & CA_EKU_SERVER) && (id.eku & CA_EKU_CLIENT) ? ", " : "",
               (id.eku & CA_EKU_CLIENT) ? "clientAuth" : (id.eku ? "" : "(none for TLS)"));
    printf("  SAN:           ");
    for (size_t k = 0; k < sans.n; k++)
        printf("%s%s", k ? ", " : "", sans.v[k]);
    printf("%s\n", sans.n ? "" : "(none)");
    if (id.node_tag[0])
        printf("  Node tag:      %s\n", id.node_tag);
    printf("  Thumbprint:    %s\n", id.thumbprint);
    printf("  SHA-256:       %s\n", id.sha256);
    printf("  Pinning hash:  %s\n", id.pkph);
    ca_strlist_fini(&sans);
    cmn_buf_fini(&subj);
    cmn_buf_fini(&iss);
    return 0;
}

static int inspect(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"password-file", required_argument, NULL, 'p'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *pass_file = NULL;
    optind = 0;
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'p':
            pass_file = optarg;
            break;
        case 'h':
            fputs(inspect_help, stdout);
            return CLI_OK;
        default:
            fputs(inspect_help, stderr);
            return CLI_USAGE;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "corvid: inspect needs exactly one FILE\n\n");
        fputs(inspect_help, stderr);
        return CLI_USAGE;
    }
    const char *path = argv[optind];
    int rv = CLI_FAILURE, e;
    char errmsg[CMN_ERRMSG_SIZE] = "";
    struct cmn_buf pass, file;
    cmn_buf_init(&pass, true);
    cmn_buf_init(&file, true);
    struct ca_pfx pfx;
    memset(&pfx, 0, sizeof pfx);
    struct ca_cert_list certs;
    ca_cert_list_init(&certs);
    EVP_PKEY *key = NULL;
    if (pass_file != NULL && cli_read_password_file(pass_file, &pass) != 0)
        goto out;
    if (cli_read_file(path, CA_INPUT_MAX, &file) != 0)
        goto out;
    if (ca_pfx_sniff(file.data, file.len)) {
        if ((e = ca_pfx_parse(file.data, file.len, password_of(&pass), 0, &pfx, errmsg)) != 0) {
            fprintf(stderr, "corvid: %s: %s%s\n", path, errmsg,
                    e == CMN_EBADPASSWORD && pass_file == NULL ? " (give --password-file)" : "");
            goto out;
        }
        char kdesc[32];
        ca_key_describe(pfx.key, kdesc, sizeof kdesc);
        printf("%s: PKCS#12, %zu certificate%s, private key: %s\n", path, pfx.certs.n,
               pfx.certs.n == 1 ? "" : "s", pfx.key ? kdesc : "none");
        if (pfx.friendly_name)
            printf("Friendly name: %s\n", pfx.friendly_name);
        for (size_t i = 0; i < pfx.certs.n; i++)
            if (print_cert(pfx.certs.v[i], i, pfx.certs.n,
                           (long)i == pfx.leaf ? " (holds the private key)" : "") != 0)
                goto out;
        rv = CLI_OK;
        goto out;
    }
    if ((e = ca_certs_from_bytes(file.data, file.len, &certs, errmsg)) != 0) {
        fail(path, e, errmsg);
        goto out;
    }
    printf("%s: %zu certificate%s\n", path, certs.n, certs.n == 1 ? "" : "s");
    if (memmem(file.data, file.len, "PRIVATE KEY-----", 16) != NULL) {
        e = ca_key_from_pem(file.data, file.len, password_of(&pass), &key, errmsg);
        char kdesc[32];
        ca_key_describe(key, kdesc, sizeof kdesc);
        if (e == 0)
            printf("Private key: %s%s\n", kdesc,
                   X509_check_private_key(certs.v[0], key) == 1 ? " (matches certificate 1)" : "");
        else if (e == CMN_EBADPASSWORD)
            printf("Private key: encrypted (%s)\n",
                   pass_file ? "wrong password" : "give --password-file to check it");
        else
            printf("Private key: present but unreadable (%s)\n", errmsg);
    }
    for (size_t i = 0; i < certs.n; i++)
        if (print_cert(certs.v[i], i, certs.n, "") != 0)
            goto out;
    rv = CLI_OK;
out:
    EVP_PKEY_free(key);
    ca_cert_list_fini(&certs);
    ca_pfx_fini(&pfx);
    cmn_buf_fini(&file);
    cmn_buf_fini(&pass);
    return rv;
}

/* ---------------------------------------------------------------- dispatch */

struct pki_cmd {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
};

static const struct pki_cmd pki_cmds[] = {
    {"init-cluster", init_cluster, "create root CA, issuing CA and node certificates"},
    {"init-node", init_node, "create one more node certificate from an existing issuing CA"},
    {"rotate-master-key", rotate_master_key, "replace the master key, in two steps"},
    {"inspect", inspect, "print what a .pfx/.pem/.crt/.cer file holds"},
};
#define N_PKI_CMDS (sizeof pki_cmds / sizeof pki_cmds[0])

static void pki_usage(FILE *out)
{
    fprintf(out, "usage: corvid pki <command> [<args>]\n\n"
                 "Offline PKI work: nothing here talks to a running node.\n\n"
                 "Commands:\n");
    for (size_t i = 0; i < N_PKI_CMDS; i++)
        fprintf(out, "  %-18s %s\n", pki_cmds[i].name, pki_cmds[i].summary);
    fprintf(out, "\nExamples:\n"
                 "  corvid pki init-cluster --out var/local/pki --nodes A=127.0.0.1,B=127.0.0.1,"
                 "C=127.0.0.1\n"
                 "  corvid pki init-node --ca-dir var/local/pki --tag D --host 127.0.0.1\n"
                 "  corvid pki inspect var/local/pki/A.pfx\n"
                 "\nRun 'corvid pki <command> --help' for a command's options.\n");
}

int pki_main(int argc, char **argv)
{
    if (argc < 2) {
        pki_usage(stderr);
        return CLI_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        pki_usage(stdout);
        return CLI_OK;
    }
    for (size_t i = 0; i < N_PKI_CMDS; i++)
        if (strcmp(cmd, pki_cmds[i].name) == 0) {
            int rv = pki_cmds[i].run(argc - 1, argv + 1);
            fflush(stdout);
            return rv;
        }
    fprintf(stderr, "corvid: unknown pki command '%s'\n\n", cmd);
    pki_usage(stderr);
    return CLI_USAGE;
}
