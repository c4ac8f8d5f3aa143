/* An in-process cluster for the raft/ unit tests: several rft nodes on one libuv loop, each
 * with its own RocksDB store and Raft directory under one temporary directory, talking over
 * the real TLS transport on loopback. A test cuts a link by refusing the peer in the trust
 * callback and closing the connections already authenticated (rft_drop_peer), as a revoked or
 * unreachable node would look; it heals by accepting again.
 *
 * Nothing here waits for a duration: tc_run_until turns the loop until a condition holds, and
 * its deadline is only a guard against a hang (a test that reaches it fails). */
#ifndef CORVID_TESTS_UNIT_RAFT_CLUSTER_H
#define CORVID_TESTS_UNIT_RAFT_CLUSTER_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/ssl.h>
#include <uv.h>

#include "ca/ca.h"
#include "common/log.h"
#include "raft/rft.h"
#include "storage/cmd.h"
#include "storage/kv.h"
#include "tests/unit/support/port.h"

#define TC_MAX       5
#define TC_ELECTION  400
#define TC_HEARTBEAT 50
#define TC_GUARD_MS  60000 /* a hang, not a slow run: the test fails */
#define TC_TIME_MS   1750000000000LL

struct tc;

struct tc_node {
    struct tc *c;
    size_t i;
    char tag[RFT_TAG_MAX];
    char address[64];
    char raft_dir[512];
    char kv_dir[512];
    struct kv *kv;
    struct rft *r;
    SSL_CTX *ctx;
    char thumb[CA_THUMBPRINT_SIZE]; /* lower-case, as rft_drop_peer takes it */
    bool running;
    bool closed;
    unsigned applied_calls;
    uint64_t applied_index;   /* the last index the applied callback saw */
    uint64_t committed_index; /* the last announcement taken (rft_committed_cb) */
    unsigned committed_calls;
};

struct tc {
    uv_loop_t loop;
    struct tc_node n[TC_MAX];
    size_t n_nodes, n_bootstrap;
    bool cut[TC_MAX][TC_MAX];
    bool announce_audit; /* AUDIT entries are announced like revocations */
    unsigned propose_timeout_ms;
    char dir[256];
    EVP_PKEY *ca_key;
    X509 *ca;
    uv_timer_t guard;
    bool expired;
};

/* The outcome of one proposal, and how many times its callback fired. */
struct tc_prop {
    unsigned calls;
    int status;
    struct kv_result res;
    char errmsg[CMN_ERRMSG_SIZE];
};

static inline void tc_prop_cb(void *ctx, int status, const struct kv_result *res,
                              const char *errmsg)
{
    struct tc_prop *p = ctx;
    p->calls++;
    p->status = status;
    if (res)
        p->res = *res;
    snprintf(p->errmsg, sizeof p->errmsg, "%s", errmsg ? errmsg : "");
}

/* ---- callbacks rft calls ---- */

static inline int tc_trust(void *ctx, X509 *cert, const char *tag, char *errmsg)
{
    struct tc_node *me = ctx;
    for (size_t j = 0; j < me->c->n_nodes; j++)
        if (strcmp(me->c->n[j].tag, tag) == 0 && me->c->cut[me->i][j])
            return cmn_fail(errmsg, CMN_EDENIED, "link %s-%s is cut", me->tag, tag);
    (void)cert;
    return 0;
}

static inline void tc_applied(void *ctx, uint64_t index, const void *entry, size_t len,
                              const struct kv_result *res)
{
    struct tc_node *me = ctx;
    me->applied_calls++;
    me->applied_index = index;
    (void)entry;
    (void)len;
    (void)res;
}

static inline bool tc_announce(void *ctx, const struct kv_result *res)
{
    struct tc_node *me = ctx;
    return me->c->announce_audit && res->type == KV_CMD_AUDIT;
}

static inline int tc_committed(void *ctx, uint64_t index, const void *entry, size_t len,
                               char *errmsg)
{
    struct tc_node *me = ctx;
    me->committed_calls++;
    if (index > me->committed_index)
        me->committed_index = index;
    (void)entry;
    (void)len;
    (void)errmsg;
    return 0;
}

/* ---- setup ---- */

static inline int tc_free_port(void)
{
    int port = ts_free_port();
    assert_true(port > 0);
    return port;
}

static int tc_verify_any(int ok, X509_STORE_CTX *x)
{
    (void)ok;
    (void)x;
    return 1; /* as node/: trust is decided after the handshake, by the trust callback */
}

static inline SSL_CTX *tc_node_ctx(struct tc *c, const char *tag, char thumb[CA_THUMBPRINT_SIZE])
{
    char err[CMN_ERRMSG_SIZE] = "";
    EVP_PKEY *key = NULL;
    assert_int_equal(ca_key_generate(CA_KEY_EC_P256, &key, err), 0);
    int64_t now = (int64_t)time(NULL);
    struct ca_cert_req req = {.profile = CA_PROFILE_NODE,
                              .cn = tag,
                              .host = "127.0.0.1",
                              .node_tag = tag,
                              .not_before = now - CA_DAY_SECS,
                              .not_after = now + 30 * CA_DAY_SECS,
                              .subject_key = key};
    struct ca_signer signer = {c->ca, c->ca_key};
    X509 *cert = NULL;
    if (ca_cert_issue(&req, &signer, &cmn_rng_system, &cert, err) != 0)
        fail_msg("node certificate %s: %s", tag, err);
    assert_int_equal(ca_thumbprint(cert, thumb), 0);
    for (char *p = thumb; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    SSL_CTX *ctx = SSL_CTX_new(TLS_method());
    assert_non_null(ctx);
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, tc_verify_any);
    SSL_CTX_set_num_tickets(ctx, 0);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    assert_int_equal(SSL_CTX_use_certificate(ctx, cert), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey(ctx, key), 1);
    X509_free(cert);
    EVP_PKEY_free(key);
    return ctx;
}

/* n_nodes nodes "A", "B", …; the first n_bootstrap bootstrap the cluster, the others start
 * passive (to be added). Nothing runs until tc_start. */
static inline void tc_init(struct tc *c, size_t n_nodes, size_t n_bootstrap)
{
    memset(c, 0, sizeof *c);
    assert_true(n_nodes <= TC_MAX && n_bootstrap <= n_nodes);
    signal(SIGPIPE, SIG_IGN); /* raft-stack.md §0.6 */
    cmn_log_setup(getenv("TC_LOG") ? CMN_LOG_DEBUG : CMN_LOG_ERROR, NULL);
    c->n_nodes = n_nodes;
    c->n_bootstrap = n_bootstrap;
    snprintf(c->dir, sizeof c->dir, "/tmp/corvid-rft-XXXXXX");
    assert_non_null(mkdtemp(c->dir));
    assert_int_equal(uv_loop_init(&c->loop), 0);
    char err[CMN_ERRMSG_SIZE] = "";
    assert_int_equal(ca_key_generate(CA_KEY_EC_P256, &c->ca_key, err), 0);
    int64_t now = (int64_t)time(NULL);
    struct ca_cert_req rr = {.profile = CA_PROFILE_ROOT,
                             .cn = "Test Cluster CA",
                             .not_before = now - 2 * CA_DAY_SECS,
                             .not_after = now + 60 * CA_DAY_SECS,
                             .subject_key = c->ca_key};
    assert_int_equal(ca_cert_issue(&rr, NULL, &cmn_rng_system, &c->ca, err), 0);
    for (size_t i = 0; i < n_nodes; i++) {
        struct tc_node *n = &c->n[i];
        n->c = c;
        n->i = i;
        n->tag[0] = (char)('A' + i);
        snprintf(n->address, sizeof n->address, "127.0.0.1:%d", tc_free_port());
        snprintf(n->raft_dir, sizeof n->raft_dir, "%s/%s/raft", c->dir, n->tag);
        snprintf(n->kv_dir, sizeof n->kv_dir, "%s/%s/state", c->dir, n->tag);
        n->ctx = tc_node_ctx(c, n->tag, n->thumb);
        char home[300];
        snprintf(home, sizeof home, "%s/%s", c->dir, n->tag);
        assert_int_equal(cmn_mkdir_p(home, 0700), 0);
        if (kv_open(n->kv_dir, &n->kv, err) != 0)
            fail_msg("kv_open %s: %s", n->kv_dir, err);
    }
}

static inline void tc_start(struct tc *c, size_t i)
{
    struct tc_node *n = &c->n[i];
    struct rft_member members[TC_MAX];
    for (size_t j = 0; j < c->n_bootstrap; j++) {
        snprintf(members[j].tag, sizeof members[j].tag, "%s", c->n[j].tag);
        snprintf(members[j].address, sizeof members[j].address, "%s", c->n[j].address);
    }
    bool boot = i < c->n_bootstrap;
    struct rft_config rc = {
        .tag = n->tag,
        .address = n->address,
        .dir = n->raft_dir,
        .bootstrap = boot ? members : NULL,
        .n_bootstrap = boot ? c->n_bootstrap : 0,
        .ssl_ctx = n->ctx,
        .kv = n->kv,
        .trust = tc_trust,
        .applied = tc_applied,
        .announce = tc_announce,
        .committed = tc_committed,
        .cb_ctx = n,
        .election_ms = TC_ELECTION,
        .heartbeat_ms = TC_HEARTBEAT,
        .propose_timeout_ms = c->propose_timeout_ms,
    };
    char err[CMN_ERRMSG_SIZE] = "";
    if (rft_new(&c->loop, &rc, &n->r, err) != 0)
        fail_msg("rft_new %s: %s", n->tag, err);
    if (rft_start(n->r, err) != 0)
        fail_msg("rft_start %s: %s", n->tag, err);
    n->running = true;
}

static inline void tc_start_all(struct tc *c)
{
    for (size_t i = 0; i < c->n_nodes; i++)
        tc_start(c, i);
}

static void tc_guard_cb(uv_timer_t *t)
{
    struct tc *c = t->data;
    c->expired = true;
}

/* Turns the loop until pred(c, arg) holds; fails the test after TC_GUARD_MS. */
static inline void tc_run_until_(struct tc *c, bool (*pred)(struct tc *, void *), void *arg,
                                 const char *what)
{
    c->expired = false;
    uv_timer_init(&c->loop, &c->guard);
    c->guard.data = c;
    uv_timer_start(&c->guard, tc_guard_cb, TC_GUARD_MS, 0);
    while (!pred(c, arg) && !c->expired)
        uv_run(&c->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&c->guard, NULL);
    uv_run(&c->loop, UV_RUN_NOWAIT);
    if (c->expired)
        fail_msg("still waiting for: %s", what);
}
#define tc_run_until(c, pred, arg) tc_run_until_(c, pred, arg, #pred)

/* The ready leader among the running nodes (the only one), or -1. */
static inline int tc_leader(struct tc *c)
{
    int found = -1;
    for (size_t i = 0; i < c->n_nodes; i++) {
        if (!c->n[i].running)
            continue;
        struct rft_status st;
        rft_status(c->n[i].r, &st);
        if (st.ready) {
            if (found >= 0)
                return -1; /* two claim it (an old one has not noticed yet): wait */
            found = (int)i;
        }
    }
    return found;
}

static inline bool tc_has_leader(struct tc *c, void *arg)
{
    (void)arg;
    return tc_leader(c) >= 0;
}

static inline int tc_wait_leader(struct tc *c)
{
    tc_run_until(c, tc_has_leader, NULL);
    return tc_leader(c);
}

/* A follower that is running, other than `not`. */
static inline size_t tc_follower(struct tc *c, int leader, int not )
{
    for (size_t i = 0; i < c->n_nodes; i++)
        if (c->n[i].running && (int)i != leader && (int)i != not )
            return i;
    fail_msg("no follower");
    return 0;
}

static inline bool tc_prop_done(struct tc *c, void *arg)
{
    (void)c;
    return ((struct tc_prop *)arg)->calls > 0;
}

/* An AUDIT command (the smallest a ClusterAdmin may propose) with a request id, encoded. */
static inline void tc_audit_entry(struct cmn_buf *out, const char *rid, const char *event,
                                  enum kv_clearance cl)
{
    struct kv_cmd cmd;
    kv_cmd_init(&cmd, KV_CMD_AUDIT);
    cmd.request_id = rid ? strdup(rid) : NULL;
    cmd.time_ms = TC_TIME_MS;
    cmd.actor_clearance = cl;
    cmd.u.audit.event = strdup(event);
    cmn_buf_init(out, false);
    char err[CMN_ERRMSG_SIZE] = "";
    if (kv_cmd_encode(&cmd, out, err) != 0)
        fail_msg("encode: %s", err);
    kv_cmd_fini(&cmd);
}

/* Proposes on node i and runs the loop until the answer. */
static inline void tc_propose(struct tc *c, size_t i, const struct cmn_buf *entry,
                              struct tc_prop *p)
{
    memset(p, 0, sizeof *p);
    assert_int_equal(rft_propose(c->n[i].r, entry->data, entry->len, tc_prop_cb, p), 0);
    tc_run_until(c, tc_prop_done, p);
    assert_int_equal(p->calls, 1);
}

static inline void tc_audit(struct tc *c, size_t i, const char *rid, struct tc_prop *p)
{
    struct cmn_buf b;
    tc_audit_entry(&b, rid, rid, KV_CL_CLUSTER_ADMIN);
    tc_propose(c, i, &b, p);
    cmn_buf_fini(&b);
}

struct tc_applied_arg {
    uint64_t index;
    unsigned mask; /* the nodes that must have applied it */
};

static inline bool tc_applied_on(struct tc *c, void *arg)
{
    const struct tc_applied_arg *a = arg;
    for (size_t i = 0; i < c->n_nodes; i++)
        if ((a->mask & (1u << i)) && kv_applied_index(c->n[i].kv) < a->index)
            return false;
    return true;
}

static inline void tc_wait_applied(struct tc *c, uint64_t index, unsigned mask)
{
    struct tc_applied_arg a = {index, mask};
    tc_run_until(c, tc_applied_on, &a);
}

/* How many audit entries of node i's store carry request id rid. */
static inline size_t tc_audit_count(struct tc *c, size_t i, const char *rid)
{
    struct kv_audit *a = NULL;
    size_t n = 0, count = 0;
    char err[CMN_ERRMSG_SIZE] = "";
    if (kv_audit_page(c->n[i].kv, 0, 100000, &a, &n, err) != 0)
        fail_msg("audit page: %s", err);
    for (size_t k = 0; k < n; k++)
        if (a[k].type == KV_CMD_AUDIT && a[k].summary && strcmp(a[k].summary, rid) == 0)
            count++;
    kv_audit_free_array(a, n);
    return count;
}

/* Cuts (or heals) the link between nodes i and j, both ways. */
static inline void tc_cut(struct tc *c, size_t i, size_t j, bool cut)
{
    c->cut[i][j] = c->cut[j][i] = cut;
    if (cut) {
        if (c->n[i].running)
            rft_drop_peer(c->n[i].r, c->n[j].thumb);
        if (c->n[j].running)
            rft_drop_peer(c->n[j].r, c->n[i].thumb);
    }
}

static inline void tc_isolate(struct tc *c, size_t i, bool cut)
{
    for (size_t j = 0; j < c->n_nodes; j++)
        if (j != i)
            tc_cut(c, i, j, cut);
}

/* ---- teardown ---- */

static void tc_closed_cb(void *ctx)
{
    struct tc_node *n = ctx;
    n->closed = true;
}

static inline bool tc_all_closed(struct tc *c, void *arg)
{
    (void)arg;
    for (size_t i = 0; i < c->n_nodes; i++)
        if (c->n[i].running && !c->n[i].closed)
            return false;
    return true;
}

static inline void tc_stop(struct tc *c, size_t i)
{
    struct tc_node *n = &c->n[i];
    n->closed = false;
    rft_close(n->r, tc_closed_cb, n);
    while (!n->closed)
        uv_run(&c->loop, UV_RUN_ONCE);
    rft_free(n->r);
    n->r = NULL;
    n->running = false;
}

static inline void tc_fini(struct tc *c)
{
    for (size_t i = 0; i < c->n_nodes; i++)
        if (c->n[i].running) {
            c->n[i].closed = false;
            rft_close(c->n[i].r, tc_closed_cb, &c->n[i]);
        }
    tc_run_until(c, tc_all_closed, NULL);
    /* every handle is closed: the loop must run dry */
    uv_run(&c->loop, UV_RUN_DEFAULT);
    for (size_t i = 0; i < c->n_nodes; i++) {
        struct tc_node *n = &c->n[i];
        if (n->running)
            rft_free(n->r);
        kv_close(n->kv);
        SSL_CTX_free(n->ctx);
    }
    assert_int_equal(uv_loop_close(&c->loop), 0);
    X509_free(c->ca);
    EVP_PKEY_free(c->ca_key);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", c->dir);
    assert_int_equal(system(cmd), 0);
}

#endif
