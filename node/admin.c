/* The admin channel: an owner-only Unix socket in DataDir taking RavenDB's server CLI commands.
 * Protocol (node/lineconn.h): the client sends one command per line; the node answers with text
 * lines, a line that starts with '.' being escaped as '..', and ends the answer with
 * ".<exit code>". */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ca/certfile.h"
#include "common/file.h"
#include "common/log.h"
#include "node/lineconn.h"
#include "node/admin.h"

#define MAX_ARGS 8

struct client;

struct node_admin {
    struct node *n;
    uv_pipe_t listener;
    char path[1100];
    struct client *clients;
    bool listener_open;
    bool closing; /* frees itself once the listener and every client are closed */
};

static void admin_free_maybe(struct node_admin *a)
{
    if (!a->listener_open && a->clients == NULL)
        free(a);
}

/* One connection; its line reading and answers are node/lineconn.c's. Freed in client_gone,
 * which waits for a running command's answer. */
struct client {
    struct node_lineconn lc;
    struct node_admin *a;
    struct client *next;
};

/* A command running asynchronously, holding the client until it answers. */
struct job {
    struct client *c;
    struct node *n;
    uv_work_t work;
    char name[256];
    char outdir[1024];
    char password[256];
    int months;
    /* results of the work */
    int rv;
    char errmsg[CMN_ERRMSG_SIZE];
    X509 *cert;
    struct cmn_buf pfx, crt, key, pem;
    struct node_issuer issuer;
};

/* Ends the running command of c with its answer. c may be gone after this call. */
static void answer(struct client *c, int code, const char *fmt, ...) CMN_PRINTF(3, 4);
static void answer(struct client *c, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    node_lineconn_vanswer(&c->lc, code, fmt, ap);
    va_end(ap);
}

/* ---- commands ---- */

static const char help_text[] =
    "Commands (RavenDB's server CLI):\n"
    "  info                                   this node: tag, Raft state, indices, state hash\n"
    "  clusterStatus                          members, roles and the leader\n"
    "  generateClientCert <name> <outdir> [months] [password]\n"
    "                                         new ClusterAdmin client certificate from the\n"
    "                                         cluster CA: <outdir>/<name>.pfx, .crt, .key, .pem\n"
    "  trustClientCert <name> <file> [password]\n"
    "                                         register a .pfx/.pem/.crt as ClusterAdmin\n"
    "  trustServerCert <name> <file> [password]\n"
    "                                         register a node certificate as ClusterNode\n"
    "  addNode <Tag> <ServerUrl> <TcpUrl> <node-cert-file>\n"
    "                                         (on the leader) register the node's certificate\n"
    "                                         as ClusterNode, add it to Raft, catch it up and\n"
    "                                         promote it to voter\n"
    "  removeNode <Tag>                       (on the leader) remove a node from the cluster\n"
    "  replaceClusterCert [-replaceImmediately] <pfx> [password]\n"
    "                                         one certificate, naming every node, for the whole\n"
    "                                         cluster: each node switches as it gets it\n"
    "  renewNodeCert [<cluster-ca.pfx> [password]]\n"
    "                                         a new certificate for this node from the\n"
    "                                         cluster CA, in place at once: recovers a node\n"
    "                                         whose certificate expired\n"
    "  help                                   this text\n";

/* info: the Raft figures are read on the loop; the state hashes and the certificate count read
 * the whole store (seconds at a million certificates), so they run in the threadpool over a
 * RocksDB snapshot while the loop keeps serving. */
struct info_job {
    uv_work_t work;
    struct client *c;
    struct kv_snap *snap; /* taken with st, so that the hashes match AppliedIndex */
    struct rft_status st;
    bool serving;
    char why[160]; /* "no (...)" when not serving */
    bool issuing_ca;
    char records[256]; /* tags with a committed node record */
    char state_hash[CMN_ERRMSG_SIZE], trust_hash[CMN_ERRMSG_SIZE]; /* or why not */
    char certs[CMN_ERRMSG_SIZE];                                   /* the count, or why not */
    char master_key[96], ca_key[96]; /* key identifiers only (node_keys_describe) */
    char totp_keys[96];
};

static void info_work(uv_work_t *w)
{
    struct info_job *j = w->data;
    uint8_t h[32];
    char err[CMN_ERRMSG_SIZE] = "";
    if (kv_snap_hash(j->snap, false, h, err) == 0)
        cmn_hex_lower(h, 32, j->state_hash);
    else
        snprintf(j->state_hash, sizeof j->state_hash, "? (%s)", err);
    if (kv_snap_hash(j->snap, true, h, err) == 0)
        cmn_hex_lower(h, 32, j->trust_hash);
    else
        snprintf(j->trust_hash, sizeof j->trust_hash, "? (%s)", err);
    size_t certs;
    if (kv_snap_cert_count(j->snap, &certs, err) == 0)
        snprintf(j->certs, sizeof j->certs, "%zu", certs);
    else
        snprintf(j->certs, sizeof j->certs, "? (%s)", err);
}

static void info_after(uv_work_t *w, int status)
{
    struct info_job *j = w->data;
    struct node *n = j->c->a->n;
    const struct rft_status *st = &j->st;
    (void)status;
    answer(j->c, 0,
           "Tag: %s\nState: %s\nLeader: %s\nTerm: %llu\nCommitIndex: %llu\nLastIndex: %llu\n"
           "AppliedIndex: %llu\nStateHash: %s\nTrustHash: %s\nCertificates: %s\n"
           "Thumbprint: %s\n"
           "ServerUrl: %s\nTcpUrl: %s\nDataDir: %s\nServing: %s\nIssuingCA: %s\n"
           "NodeRecords: %s\nPid: %ld\nMasterKey: %s\nIssuingCAKey: %s\nTwoFactorKeys: %s\n",
           node_config(n)->tag, st->state, st->leader[0] ? st->leader : "(none)",
           (unsigned long long)st->term, (unsigned long long)st->commit_index,
           (unsigned long long)st->last_index, (unsigned long long)st->applied_index, j->state_hash,
           j->trust_hash, j->certs, node_thumb(n), node_config(n)->public_url,
           node_config(n)->tcp_url, node_config(n)->data_dir, j->serving ? "yes" : j->why,
           j->issuing_ca ? "yes" : "no", j->records, (long)getpid(), j->master_key, j->ca_key,
           j->totp_keys);
    kv_snap_end(j->snap);
    free(j);
}

static void cmd_info(struct client *c)
{
    struct node *n = c->a->n;
    struct info_job *j = calloc(1, sizeof *j);
    if (j == NULL) {
        answer(c, 1, "error: out of memory");
        return;
    }
    j->c = c;
    char errmsg[CMN_ERRMSG_SIZE] = "";
    if (kv_snap_begin(node_kv(n), &j->snap, errmsg) != 0) {
        free(j);
        answer(c, 1, "error: cannot read the state: %s", errmsg);
        return;
    }
    rft_status(node_rft(n), &j->st);
    char why[128] = "";
    j->serving = node_serves(n, why, sizeof why);
    snprintf(j->why, sizeof j->why, "no (%s)", why);
    j->issuing_ca = node_issuing_cert(n) != NULL;
    struct kv_issuing_ca ca;
    int rv = kv_issuing_ca_get(node_kv(n), &ca, errmsg);
    node_keys_describe(n, rv == 0 ? &ca.key_der : NULL, j->master_key, sizeof j->master_key,
                       j->ca_key, sizeof j->ca_key);
    if (rv == 0)
        kv_issuing_ca_fini(&ca);
    else if (rv != CMN_ENOTFOUND)
        snprintf(j->ca_key, sizeof j->ca_key, "? (%.80s)", errmsg);
    node_keys_totp_describe(n, j->totp_keys, sizeof j->totp_keys);
    struct kv_node *nodes = NULL;
    size_t count = 0;
    if (kv_node_list(node_kv(n), &nodes, &count, errmsg) != 0)
        snprintf(j->records, sizeof j->records, "? (%s)", errmsg);
    size_t used = 0;
    for (size_t i = 0; i < count && used < sizeof j->records; i++)
        used += (size_t)snprintf(j->records + used, sizeof j->records - used, "%s%s", i ? " " : "",
                                 nodes[i].tag);
    kv_node_free_array(nodes, count);
    snprintf(j->state_hash, sizeof j->state_hash, "?");
    snprintf(j->trust_hash, sizeof j->trust_hash, "?");
    j->work.data = j;
    if (uv_queue_work(node_loop(n), &j->work, info_work, info_after) != 0) {
        kv_snap_end(j->snap);
        free(j);
        answer(c, 1, "error: cannot start the work");
    }
}

static void cmd_cluster_status(struct client *c)
{
    struct node *n = c->a->n;
    struct rft_status st;
    rft_status(node_rft(n), &st);
    struct cmn_buf out;
    cmn_buf_init(&out, false);
    CMN_IGNORE(cmn_buf_printf(&out, "Leader: %s (term %llu)\n", st.leader[0] ? st.leader : "(none)",
                              (unsigned long long)st.term));
    struct kv_node *nodes = NULL;
    size_t count = 0;
    char errmsg[CMN_ERRMSG_SIZE] = "";
    if (kv_node_list(node_kv(n), &nodes, &count, errmsg) != 0) {
        cmn_buf_fini(&out);
        answer(c, 1, "error: cannot read the node records: %s", errmsg);
        return;
    }
    for (size_t i = 0; i < st.n_members; i++) {
        const char *url = "";
        for (size_t j = 0; j < count; j++)
            if (strcmp(nodes[j].tag, st.members[i].tag) == 0)
                url = nodes[j].server_url;
        const char *role = st.members[i].role == RAFT_VOTER     ? "Member"
                           : st.members[i].role == RAFT_STANDBY ? "Promotable"
                                                                : "Watcher";
        CMN_IGNORE(cmn_buf_printf(&out, "Node %s: %s%s raft=%s %s\n", st.members[i].tag, role,
                                  strcmp(st.members[i].tag, st.leader) == 0 ? " (leader)" : "",
                                  st.members[i].address, url));
    }
    kv_node_free_array(nodes, count);
    answer(c, 0, "%s", out.data ? (const char *)out.data : "");
    cmn_buf_fini(&out);
}

static void propose_done(void *ctx, int status, const struct kv_result *res, const char *errmsg)
{
    struct job *j = ctx;
    struct client *c = j->c;
    if (status != 0)
        answer(c, 1, "error: %s", errmsg);
    else if (res->rejected)
        answer(c, 1, "refused: %s", res->reason);
    else
        answer(c, 0, "%s (committed at index %llu)", j->errmsg, (unsigned long long)res->index);
    free(j);
}

/* trustClientCert / trustServerCert: register every certificate of a file as one entry
 * (a collection when there are several), like RavenDB's PutCertificateCollectionInCluster. */
static void cmd_trust(struct client *c, int argc, char **argv, bool server)
{
    struct node *n = c->a->n;
    char errmsg[CMN_ERRMSG_SIZE] = "";
    if (argc < 3 || argc > 4) {
        answer(c, 2, "usage: %s <name> <file> [password]", argv[0]);
        return;
    }
    struct cmn_buf bytes;
    cmn_buf_init(&bytes, true);
    struct ca_cert_list certs;
    ca_cert_list_init(&certs);
    int rv = cmn_read_file(argv[2], CA_INPUT_MAX, &bytes, errmsg);
    if (rv == 0 && ca_pfx_sniff(bytes.data, bytes.len)) {
        struct ca_pfx pfx;
        rv = ca_pfx_parse(bytes.data, bytes.len, argc == 4 ? argv[3] : NULL, 0, &pfx, errmsg);
        for (size_t i = 0; rv == 0 && i < pfx.certs.n; i++)
            rv = ca_cert_list_add(&certs, pfx.certs.v[i]);
        if (rv == 0 || pfx.certs.v)
            ca_pfx_fini(&pfx);
    } else if (rv == 0) {
        rv = ca_certs_from_bytes(bytes.data, bytes.len, &certs, errmsg);
    }
    cmn_buf_fini(&bytes);
    /* CA certificates that came along in the file are not registered (RavenDB does the same). */
    struct ca_cert_list leaves;
    ca_cert_list_init(&leaves);
    for (size_t i = 0; rv == 0 && i < certs.n; i++) {
        if (ca_is_ca(certs.v[i]))
            continue;
        unsigned eku = ca_eku(certs.v[i]);
        bool ok =
            (eku & CA_EKU_ANY) || ((eku & CA_EKU_CLIENT) && (!server || (eku & CA_EKU_SERVER)));
        if (!ok)
            rv = cmn_fail(errmsg, CMN_EINVALID,
                          server ? "the certificate cannot be used as a server certificate "
                                   "(it needs both serverAuth and clientAuth)"
                                 : "the certificate cannot be used as a client certificate "
                                   "(it lacks clientAuth)");
        else
            rv = ca_cert_list_add(&leaves, certs.v[i]);
    }
    if (rv == 0 && leaves.n == 0)
        rv = cmn_fail(errmsg, CMN_EINVALID, "%s holds no certificate to register", argv[2]);
    if (rv == 0 && leaves.n > KV_COLLECTION_MAX)
        rv = cmn_fail(errmsg, CMN_ETOOBIG, "more than %d certificates", KV_COLLECTION_MAX);
    struct kv_cmd cmd;
    kv_cmd_init(&cmd, KV_CMD_PUT_CERTS);
    if (rv == 0) {
        cmd.u.put.certs = calloc(leaves.n, sizeof *cmd.u.put.certs);
        if (cmd.u.put.certs == NULL)
            rv = CMN_ENOMEM;
    }
    for (size_t i = 0; rv == 0 && i < leaves.n; i++) {
        rv = node_cert_record(n, leaves.v[i], argv[1],
                              server ? KV_CL_CLUSTER_NODE : KV_CL_CLUSTER_ADMIN,
                              &cmd.u.put.certs[i], errmsg);
        if (rv == 0)
            cmd.u.put.n = i + 1;
    }
    if (rv == 0 && cmd.u.put.n > 1) {
        struct kv_cert *p = &cmd.u.put.certs[0];
        p->secondaries = calloc(cmd.u.put.n - 1, sizeof *p->secondaries);
        if (p->secondaries == NULL)
            rv = CMN_ENOMEM;
        for (size_t i = 1; rv == 0 && i < cmd.u.put.n; i++) {
            memcpy(p->secondaries[i - 1], cmd.u.put.certs[i].thumbprint, KV_THUMB_LEN + 1);
            memcpy(cmd.u.put.certs[i].primary, p->thumbprint, KV_THUMB_LEN + 1);
        }
        p->n_secondaries = cmd.u.put.n - 1;
    }
    ca_cert_list_fini(&certs);
    ca_cert_list_fini(&leaves);
    if (rv != 0) {
        kv_cmd_fini(&cmd);
        answer(c, 1, "error: %s", errmsg[0] ? errmsg : cmn_strerror(rv));
        return;
    }
    struct job *j = calloc(1, sizeof *j);
    if (j == NULL) {
        kv_cmd_fini(&cmd);
        answer(c, 1, "error: out of memory");
        return;
    }
    j->c = c;
    char tp[KV_THUMB_LEN + 1];
    memcpy(tp, cmd.u.put.certs[0].thumbprint, sizeof tp);
    snprintf(j->errmsg, sizeof j->errmsg, "Registered '%s' as %s: %s%s", argv[1],
             server ? "ClusterNode" : "ClusterAdmin", tp,
             cmd.u.put.n > 1 ? " with its collection" : "");
    memcpy(cmd.actor, node_thumb(n), sizeof cmd.actor);
    cmd.actor_clearance = KV_CL_CLUSTER_ADMIN;
    if (node_propose(n, &cmd, propose_done, j, errmsg) != 0) {
        free(j);
        answer(c, 1, "error: %s", errmsg);
    }
}

/* ---- generateClientCert: key and PKCS#12 in the threadpool, files after commit ---- */

static void gen_work(uv_work_t *w)
{
    struct job *j = w->data;
    int64_t now = cmn_now_ms(&cmn_clock_system) / 1000;
    int64_t nb, na;
    ca_client_default_validity(now, &nb, &na);
    if (j->months > 0)
        na = ca_day_start(now) + (int64_t)j->months * 30 * CA_DAY_SECS;
    EVP_PKEY *key = NULL;
    struct ca_signer signer = {.cert = j->issuer.cert, .key = j->issuer.key};
    j->rv = ca_client_issue(CA_KEY_EC_P256, j->name, nb, na, &signer, &cmn_rng_system, &key,
                            &j->cert, j->errmsg);
    const char *pw = j->password[0] ? j->password : NULL;
    struct ca_pfx_opts opts = {.scheme = CA_PFX_MODERN, .friendly_name = j->name};
    if (j->rv == 0)
        j->rv = ca_pfx_build(key, j->cert, &j->issuer.chain, pw, &opts, &j->pfx, j->errmsg);
    if (j->rv == 0)
        j->rv = ca_cert_to_pem(j->cert, &j->crt);
    if (j->rv == 0)
        j->rv = ca_key_to_pem(key, pw, &j->key, j->errmsg);
    if (j->rv == 0)
        j->rv = cmn_buf_append(&j->pem, j->crt.data, j->crt.len);
    if (j->rv == 0)
        j->rv = cmn_buf_append(&j->pem, j->key.data, j->key.len);
    EVP_PKEY_free(key);
}

static void job_free(struct job *j)
{
    X509_free(j->cert);
    cmn_buf_fini(&j->pfx);
    cmn_buf_fini(&j->crt);
    cmn_buf_fini(&j->key);
    cmn_buf_fini(&j->pem);
    node_issuer_fini(&j->issuer);
    cmn_cleanse(j->password, sizeof j->password);
    free(j);
}

/* Creates path with mode 0600 from the start (never widened then narrowed), refusing to
 * replace an existing file. */
static int write_new(const char *path, const struct cmn_buf *b, mode_t mode, char *errmsg)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0)
        return cmn_fail(errmsg, CMN_EIO, "cannot create %s: %s", path, strerror(errno));
    CMN_IGNORE(fchmod(fd, mode)); /* the node's umask is 077; the public .crt stays 0644 */
    size_t off = 0;
    while (off < b->len) {
        ssize_t w = write(fd, b->data + off, b->len - off);
        if (w < 0) {
            close(fd);
            unlink(path);
            return cmn_fail(errmsg, CMN_EIO, "cannot write %s: %s", path, strerror(errno));
        }
        off += (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0)
        return cmn_fail(errmsg, CMN_EIO, "cannot write %s", path);
    return 0;
}

static void gen_committed(void *ctx, int status, const struct kv_result *res, const char *errmsg)
{
    struct job *j = ctx;
    struct client *c = j->c;
    if (status != 0) {
        answer(c, 1, "error: %s", errmsg);
    } else if (res->rejected) {
        answer(c, 1, "refused: %s", res->reason);
    } else {
        char safe[CA_BUNDLE_NAME_MAX + 1], path[1400], err[CMN_ERRMSG_SIZE] = "";
        ca_bundle_safe_name(j->name, safe);
        static const char *const ext[] = {"pfx", "crt", "key", "pem"};
        const struct cmn_buf *bufs[] = {&j->pfx, &j->crt, &j->key, &j->pem};
        int rv = 0;
        struct cmn_buf list;
        cmn_buf_init(&list, false);
        for (int i = 0; i < 4 && rv == 0; i++) {
            snprintf(path, sizeof path, "%s/%s.%s", j->outdir, safe, ext[i]);
            rv = write_new(path, bufs[i], i == 1 ? 0644 : 0600, err);
            if (rv == 0)
                CMN_IGNORE(cmn_buf_printf(&list, "  %s\n", path));
        }
        char tp[CA_THUMBPRINT_SIZE] = "";
        CMN_IGNORE(ca_thumbprint(j->cert, tp));
        if (rv != 0)
            answer(c, 1,
                   "error: the certificate %s is registered but its files could not be written: "
                   "%s",
                   tp, err);
        else
            answer(c, 0, "Generated ClusterAdmin certificate '%s' (%s), index %llu:\n%s", j->name,
                   tp, (unsigned long long)res->index, (const char *)list.data);
        cmn_buf_fini(&list);
    }
    job_free(j);
}

static void gen_after(uv_work_t *w, int status)
{
    struct job *j = w->data;
    struct node *n = j->n;
    char errmsg[CMN_ERRMSG_SIZE] = "";
    if (status != 0 || j->rv != 0) {
        answer(j->c, 1, "error: %s", j->errmsg[0] ? j->errmsg : "cancelled");
        job_free(j);
        return;
    }
    struct kv_cmd cmd;
    kv_cmd_init(&cmd, KV_CMD_PUT_CERTS);
    cmd.u.put.certs = calloc(1, sizeof *cmd.u.put.certs);
    int rv = cmd.u.put.certs ? node_cert_record(n, j->cert, j->name, KV_CL_CLUSTER_ADMIN,
                                                &cmd.u.put.certs[0], errmsg)
                             : CMN_ENOMEM;
    if (rv == 0)
        cmd.u.put.n = 1;
    memcpy(cmd.actor, node_thumb(n), sizeof cmd.actor);
    cmd.actor_clearance = KV_CL_CLUSTER_ADMIN;
    if (rv != 0) {
        kv_cmd_fini(&cmd);
    } else {
        rv = node_propose(n, &cmd, gen_committed, j, errmsg);
    }
    if (rv != 0) {
        answer(j->c, 1, "error: %s", errmsg);
        job_free(j);
    }
}

static void cmd_generate(struct client *c, int argc, char **argv)
{
    struct node *n = c->a->n;
    if (argc < 3 || argc > 5) {
        answer(c, 2, "usage: generateClientCert <name> <outdir> [months] [password]");
        return;
    }
    if (argv[2][0] != '/') {
        answer(c, 2, "generateClientCert: <outdir> must be an absolute path");
        return;
    }
    struct stat sb;
    if (stat(argv[2], &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        answer(c, 1, "error: %s is not a directory", argv[2]);
        return;
    }
    struct job *j = calloc(1, sizeof *j);
    if (j == NULL) {
        answer(c, 1, "error: out of memory");
        return;
    }
    j->c = c;
    j->n = n;
    snprintf(j->name, sizeof j->name, "%s", argv[1]);
    snprintf(j->outdir, sizeof j->outdir, "%s", argv[2]);
    if (argc >= 4) {
        char *end;
        long m = strtol(argv[3], &end, 10);
        if (*end || m < 1 || m > 1200) {
            answer(c, 2, "generateClientCert: [months] must be a number from 1 to 1200");
            free(j);
            return;
        }
        j->months = (int)m;
    }
    if (argc == 5)
        snprintf(j->password, sizeof j->password, "%s", argv[4]);
    cmn_buf_init(&j->pfx, false);
    cmn_buf_init(&j->crt, false);
    cmn_buf_init(&j->key, true);
    cmn_buf_init(&j->pem, true);
    char errmsg[CMN_ERRMSG_SIZE] = "";
    if (node_issuer_load(n, &j->issuer, errmsg) != 0) {
        answer(c, 1, "error: %s", errmsg);
        job_free(j);
        return;
    }
    j->work.data = j;
    if (uv_queue_work(node_loop(n), &j->work, gen_work, gen_after) != 0) {
        answer(c, 1, "error: cannot start the work");
        job_free(j);
    }
}

/* ---- addNode / removeNode (node/members.c) ---- */

static void member_done(void *ctx, int status, const char *msg)
{
    answer(ctx, status == 0 ? 0 : 1, status == 0 ? "%s" : "error: %s", msg);
}

static bool require_leader(struct client *c)
{
    struct rft_status st;
    rft_status(node_rft(c->a->n), &st);
    if (st.ready)
        return true;
    if (st.leader[0])
        answer(c, 1, "error: only the leader changes the membership: run this on node %s",
               st.leader);
    else
        answer(c, 1, "error: the cluster has no leader");
    return false;
}

static void cmd_add_node(struct client *c, int argc, char **argv)
{
    struct node *n = c->a->n;
    if (argc != 5) {
        answer(c, 2, "usage: addNode <Tag> <ServerUrl> <TcpUrl> <node-cert-file>");
        return;
    }
    if (!require_leader(c))
        return;
    char errmsg[CMN_ERRMSG_SIZE] = "";
    struct cmn_buf bytes;
    cmn_buf_init(&bytes, false);
    struct ca_cert_list certs;
    ca_cert_list_init(&certs);
    int rv = cmn_read_file(argv[4], CA_INPUT_MAX, &bytes, errmsg);
    if (rv == 0 && ca_pfx_sniff(bytes.data, bytes.len)) {
        struct ca_pfx pfx;
        rv = ca_pfx_parse(bytes.data, bytes.len, NULL, 0, &pfx, errmsg);
        if (rv == 0) {
            X509 *leaf = ca_pfx_leaf(&pfx) ? ca_pfx_leaf(&pfx) : pfx.certs.v[0];
            rv = ca_cert_list_add(&certs, leaf);
            ca_pfx_fini(&pfx);
        }
    } else if (rv == 0) {
        rv = ca_certs_from_bytes(bytes.data, bytes.len, &certs, errmsg);
    }
    cmn_buf_fini(&bytes);
    if (rv == 0)
        rv = node_member_add(n, argv[1], argv[2], argv[3], certs.v[0], member_done, c, errmsg);
    ca_cert_list_fini(&certs);
    if (rv != 0)
        answer(c, 1, "error: %s", errmsg[0] ? errmsg : cmn_strerror(rv));
}

static void renewed_now(void *ctx, const struct node_rotate_result *res)
{
    *(struct node_rotate_result *)ctx = *res;
}

/* renewNodeCert [<cluster-ca.pfx> [password]]: a new key and certificate for this node from
 * the cluster CA (the trust state's issuing CA, or the one in the file), put in place at once.
 * For a node whose certificate expired while it was off: its peers refuse it, so nothing could
 * be committed first; they take the new one because the cluster CA issued it for a node they
 * know, and the node then registers it and retires the old one through Raft. */
static void cmd_renew(struct client *c, int argc, char **argv)
{
    struct node *n = c->a->n;
    char errmsg[CMN_ERRMSG_SIZE] = "";
    if (argc > 3) {
        answer(c, 2, "usage: renewNodeCert [<cluster-ca.pfx> [password]]");
        return;
    }
    struct ca_certfile f = {0};
    bool have_file = argc >= 2;
    int rv = 0;
    if (have_file)
        rv = ca_certfile_load(argv[1], NULL, argc == 3 ? argv[2] : NULL, CA_CERTFILE_KEY, &f, NULL,
                              errmsg);
    if (rv == 0 && have_file && !ca_is_ca(f.leaf))
        rv = cmn_fail(errmsg, CMN_EINVALID, "%s holds no CA certificate with its key", argv[1]);
    struct ca_cert_list chain;
    ca_cert_list_init(&chain);
    struct ca_signer signer = {0};
    struct node_rotate_req req = {.recovery = true};
    if (rv == 0 && have_file) {
        signer.cert = f.leaf;
        signer.key = f.key;
        rv = ca_cert_list_add(&chain, f.leaf);
        for (size_t i = 0; rv == 0 && i < f.certs.n; i++)
            if (f.certs.v[i] != f.leaf)
                rv = ca_cert_list_add(&chain, f.certs.v[i]);
        req.signer = &signer;
        req.signer_chain = &chain;
    }
    struct node_rotate_result res = {0};
    if (rv == 0)
        rv = node_rotate(n, &req, renewed_now, &res, errmsg);
    ca_cert_list_fini(&chain);
    if (have_file && (rv == 0 || f.certs.v))
        ca_certfile_fini(&f);
    if (rv != 0) {
        answer(c, 1, "%s", errmsg);
        return;
    }
    char na[32];
    time_t t = (time_t)res.not_after;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(na, sizeof na, "%Y-%m-%d %H:%M UTC", &tm);
    answer(c, 0,
           "node %s now presents certificate %s, valid until %s (was %s); it registers it with "
           "the cluster and retires the old one as soon as its peers answer",
           node_config(n)->tag, res.new_thumb, na, res.old_thumb);
}

/* replaceClusterCert [-replaceImmediately] <pfx> [password]: RavenDB's, as
 * POST /admin/certificates/replace-cluster-cert, on any node. */
static void replace_done(void *ctx, int status, const char *msg)
{
    answer(ctx, status == 0 ? 0 : 1,
           status == 0 ? "the replacement is committed: every node switches to the new "
                         "certificate as it applies it (replacement/status follows it)%s"
                       : "error: %s",
           msg);
}

static void cmd_replace_cluster(struct client *c, int argc, char **argv)
{
    struct node *n = c->a->n;
    char errmsg[CMN_ERRMSG_SIZE] = "";
    int at = 1;
    bool immediately = argc > 1 && strcmp(argv[1], "-replaceImmediately") == 0;
    at += immediately;
    if (argc - at < 1 || argc - at > 2) {
        answer(c, 2, "usage: replaceClusterCert [-replaceImmediately] <pfx> [password]");
        return;
    }
    struct ca_certfile f;
    int rv = ca_certfile_load(argv[at], NULL, argc - at == 2 ? argv[at + 1] : NULL,
                              CA_CERTFILE_PFX | CA_CERTFILE_KEY, &f, NULL, errmsg);
    if (rv != 0) {
        answer(c, 1, "error: %s", errmsg);
        return;
    }
    struct ca_cert_list chain;
    ca_cert_list_init(&chain);
    rv = ca_certfile_chain(&f, &chain);
    struct node_rotate_req req = {.cert = f.leaf, .key = f.key, .chain = &chain};
    if (rv == 0)
        rv = node_replace_cluster(n, &req, immediately, replace_done, c, errmsg);
    ca_cert_list_fini(&chain);
    ca_certfile_fini(&f);
    if (rv == CMN_EEXISTS)
        answer(c, 0, "nothing to do: %s", errmsg);
    else if (rv != 0)
        answer(c, 1, "error: %s", errmsg);
}

static void cmd_remove_node(struct client *c, int argc, char **argv)
{
    if (argc != 2) {
        answer(c, 2, "usage: removeNode <Tag>");
        return;
    }
    if (!require_leader(c))
        return;
    char errmsg[CMN_ERRMSG_SIZE] = "";
    if (node_member_remove(c->a->n, argv[1], member_done, c, errmsg) != 0)
        answer(c, 1, "error: %s", errmsg);
}

/* Splits a line into words; double quotes group words with spaces. */
static int split(char *line, char **argv)
{
    int argc = 0;
    char *p = line;
    while (*p && argc < MAX_ARGS) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p)
            break;
        if (*p == '"') {
            argv[argc++] = ++p;
            while (*p && *p != '"')
                p++;
        } else {
            argv[argc++] = p;
            while (*p && *p != ' ' && *p != '\t')
                p++;
        }
        if (*p)
            *p++ = '\0';
    }
    return argc;
}

static void execute(struct node_lineconn *lc, char *line)
{
    struct client *c = lc->data;
    char *argv[MAX_ARGS];
    int argc = split(line, argv);
    if (argc == 0) {
        answer(c, 0, NULL);
        return;
    }
    /* Never log the arguments: they may hold a password; nor an unknown first word, which is
     * whatever bytes a client sent. Read-only commands are polled. */
    static const char *const changing[] = {"trustClientCert",    "trustServerCert",
                                           "generateClientCert", "addNode",
                                           "removeNode",         "renewNodeCert"};
    bool known = false;
    for (size_t i = 0; i < sizeof changing / sizeof *changing; i++)
        known = known || strcmp(argv[0], changing[i]) == 0;
    if (strcmp(argv[0], "info") == 0 || strcmp(argv[0], "clusterStatus") == 0 ||
        strcmp(argv[0], "help") == 0)
        CMN_DEBUG("NODE-ADMIN", "admin channel: %s", argv[0]);
    else if (known)
        CMN_INFO("NODE-ADMIN", "admin channel: %s", argv[0]);
    else
        CMN_INFO("NODE-ADMIN", "admin channel: unknown command");
    if (strcmp(argv[0], "help") == 0)
        answer(c, 0, "%s", help_text);
    else if (strcmp(argv[0], "info") == 0)
        cmd_info(c);
    else if (strcmp(argv[0], "clusterStatus") == 0)
        cmd_cluster_status(c);
    else if (strcmp(argv[0], "trustClientCert") == 0)
        cmd_trust(c, argc, argv, false);
    else if (strcmp(argv[0], "trustServerCert") == 0)
        cmd_trust(c, argc, argv, true);
    else if (strcmp(argv[0], "generateClientCert") == 0)
        cmd_generate(c, argc, argv);
    else if (strcmp(argv[0], "addNode") == 0)
        cmd_add_node(c, argc, argv);
    else if (strcmp(argv[0], "removeNode") == 0)
        cmd_remove_node(c, argc, argv);
    else if (strcmp(argv[0], "renewNodeCert") == 0)
        cmd_renew(c, argc, argv);
    else if (strcmp(argv[0], "replaceClusterCert") == 0)
        cmd_replace_cluster(c, argc, argv);
    else
        answer(c, 2, "unknown command '%s' (try: help)", argv[0]);
}

/* The handle is closed and no command holds the client. */
static void client_gone(struct node_lineconn *lc)
{
    struct client *c = lc->data;
    struct node_admin *a = c->a;
    for (struct client **pp = &a->clients; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    free(c);
    if (a->closing)
        admin_free_maybe(a);
}

static void on_connection(uv_stream_t *server, int status)
{
    struct node_admin *a = server->data;
    if (status != 0)
        return;
    struct client *c = calloc(1, sizeof *c);
    if (c == NULL)
        return;
    if (node_lineconn_init(&c->lc, node_loop(a->n), execute, client_gone) != 0) {
        free(c);
        return;
    }
    c->lc.data = c;
    c->a = a;
    c->next = a->clients;
    a->clients = c;
    if (uv_accept(server, (uv_stream_t *)&c->lc.pipe) != 0)
        node_lineconn_close(&c->lc);
    else
        CMN_IGNORE(node_lineconn_start(&c->lc)); /* on failure it is closing: client_gone */
}

static void listener_closed(uv_handle_t *h)
{
    struct node_admin *a = h->data;
    a->listener_open = false;
    admin_free_maybe(a);
}

static void admin_close(void *room)
{
    struct node_admin *a = room;
    a->closing = true;
    for (struct client *c = a->clients; c; c = c->next)
        node_lineconn_close(&c->lc);
    unlink(a->path);
    uv_close((uv_handle_t *)&a->listener, listener_closed);
}

static void admin_gone(void *room)
{
    (void)room; /* freed by its close, once its handles closed */
}

static const struct node_room_ops admin_ops = {.close = admin_close, .free = admin_gone};

int node_admin_start(struct node *n, char *errmsg)
{
    struct node_admin *a = calloc(1, sizeof *a);
    if (a == NULL)
        return CMN_ENOMEM;
    a->n = n;
    snprintf(a->path, sizeof a->path, "%s/admin.sock", node_config(n)->data_dir);
    if (strlen(a->path) >= 108) {
        free(a);
        return cmn_fail(errmsg, CMN_EINVALID, "DataDir path is too long for the admin socket");
    }
    unlink(a->path); /* a leftover of a crashed node: the DataDir lock is ours */
    uv_pipe_init(node_loop(n), &a->listener, 0);
    a->listener.data = a;
    a->listener_open = true;
    mode_t old = umask(0177); /* the socket is created 0600: owner only */
    int rv = uv_pipe_bind(&a->listener, a->path);
    umask(old);
    if (rv == 0)
        rv = chmod(a->path, 0600) == 0 ? 0 : UV_EPERM;
    if (rv == 0)
        rv = uv_listen((uv_stream_t *)&a->listener, 128, on_connection);
    if (rv != 0) {
        admin_close(a);
        return cmn_fail(errmsg, CMN_EIO, "admin channel %s: %s", a->path, uv_strerror(rv));
    }
    if ((rv = node_room_add(n, &admin_ops, a)) != 0) {
        admin_close(a);
        return cmn_fail(errmsg, rv, "too many rooms");
    }
    return 0;
}
