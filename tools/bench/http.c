/* corvid-bench http-*: load on a running Corvid cluster through its HTTPS API, C connections
 * with one request in flight each (HTTP/1.1 keep-alive, client certificates, poll()):
 *   http-whoami    GET /certificates/whoami per second, callers registered certificates
 *   http-register  PUT /admin/certificates: distinct client certificates registered per second
 *                  (also the bulk loader: --count N, --bundle K certificates per PUT)
 *   http-generate  POST /admin/certificates: certificates generated end to end (zip returned) */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/pem.h>

#include "common/env.h"
#include "tools/bench/bench.h"

#define MAX_URLS     16
#define MAX_CLIENTS  1024
#define OP_TIMEOUT_S 30.0

/* ---- shared options and the load loop ---- */

struct hopts {
    const char *urls[MAX_URLS];
    struct sockaddr_in sa[MAX_URLS];
    int n_urls;
    const char *cacert, *cert, *key;
    long clients;
    double seconds, warmup;
    const char *system, *target;
};

struct load {
    struct hopts *o;
    SSL_CTX *tls;
    X509 **certs; /* per-connection client certificates (i mod n_certs), or none */
    EVP_PKEY **keys;
    long n_certs;
    long count; /* count mode: stop after this many requests (seconds is then ignored) */
    /* The request for connection i: 0 with *req and *len, 1 when there is nothing left, -1 on
     * an error (message on stderr). The bytes stay valid until the response. */
    int (*make)(void *arg, long i, const char **req, size_t *len);
    /* Whether the response is a success; err gets why not. */
    bool (*check)(void *arg, long i, const struct hc *c, char *err, size_t cap);
    void *arg;
    long done_ok; /* successful responses, all of them (warm-up included) */
};

static int opt_common(struct hopts *o, int argc, char **argv, int *i)
{
    const char *a = argv[*i];
    bool has = *i + 1 < argc;
    if (strcmp(a, "--url") == 0 && has) {
        if (o->n_urls == MAX_URLS) {
            fprintf(stderr, "corvid-bench: at most %d --url\n", MAX_URLS);
            return -1;
        }
        const char *u = argv[++*i];
        if (hc_parse_url(u, &o->sa[o->n_urls]) != 0) {
            fprintf(stderr, "corvid-bench: --url wants https://IPv4:PORT, not %s\n", u);
            return -1;
        }
        o->urls[o->n_urls++] = u;
    } else if (strcmp(a, "--cacert") == 0 && has) {
        o->cacert = argv[++*i];
    } else if (strcmp(a, "--cert") == 0 && has) {
        o->cert = argv[++*i];
    } else if (strcmp(a, "--key") == 0 && has) {
        o->key = argv[++*i];
    } else if (strcmp(a, "--clients") == 0 && has) {
        return bench_arg_long(a, argv[++*i], 1, MAX_CLIENTS, &o->clients) == 0 ? 1 : -1;
    } else if (strcmp(a, "--seconds") == 0 && has) {
        return bench_arg_double(a, argv[++*i], 0.1, 3600, &o->seconds) == 0 ? 1 : -1;
    } else if (strcmp(a, "--warmup") == 0 && has) {
        return bench_arg_double(a, argv[++*i], 0, 600, &o->warmup) == 0 ? 1 : -1;
    } else if (strcmp(a, "--system") == 0 && has) {
        o->system = argv[++*i];
    } else if (strcmp(a, "--target") == 0 && has) {
        o->target = argv[++*i];
    } else {
        return 0;
    }
    return 1;
}

static const char COMMON_USAGE[] =
    "  --url URL         https://IPv4:PORT of a node (repeat: connection i goes to URL i mod\n"
    "                    their count)\n"
    "  --cacert FILE     verify the nodes against these CA certificates\n"
    "  --clients C       connections, one request in flight each (default %d)\n"
    "  --seconds S       measuring window (default 5)\n"
    "  --warmup S        unmeasured time first (default 1)\n"
    "  --system NAME     the result line's system= (default corvid-http)\n"
    "  --target LABEL    the result line's target= (default: the path)\n";

/* Opens every connection (handshakes one after the other), then keeps one request in flight
 * on each until the window (or the count) is over. 0, 1 when some requests failed, -1. */
static int load_run(struct load *L, struct bench_run *r)
{
    struct hopts *o = L->o;
    long n = o->clients;
    struct hc *conns = calloc((size_t)n, sizeof *conns);
    struct pollfd *pfd = calloc((size_t)n, sizeof *pfd);
    bool *busy = calloc((size_t)n, sizeof *busy);
    int rv = -1;
    if (conns == NULL || pfd == NULL || busy == NULL || bench_run_init(r, 1 << 16) != 0)
        goto out;
    for (long i = 0; i < n; i++)
        conns[i].fd = -1;
    for (long i = 0; i < n; i++) {
        X509 *cert = L->n_certs ? L->certs[i % L->n_certs] : NULL;
        EVP_PKEY *key = L->n_certs ? L->keys[i % L->n_certs] : NULL;
        if (hc_open_wait(&conns[i], L->tls, &o->sa[i % o->n_urls], cert, key, 10) != 0) {
            fprintf(stderr, "corvid-bench: %s: %s\n", o->urls[i % o->n_urls], conns[i].err);
            goto out;
        }
    }
    double begin = bench_now();
    if (L->count > 0) {
        r->t0 = begin;
        r->t1 = 1e300;
    } else {
        r->t0 = begin + o->warmup;
        r->t1 = r->t0 + o->seconds;
    }
    long issued = 0;
    bool exhausted = false;
    double next_note = begin + 10;
    for (long i = 0; i < n; i++) {
        const char *req;
        size_t len;
        int m = L->count > 0 && issued >= L->count ? 1 : L->make(L->arg, i, &req, &len);
        if (m < 0)
            goto out;
        if (m > 0) {
            exhausted = true;
            break;
        }
        issued++;
        conns[i].start = bench_now();
        hc_send(&conns[i], req, len);
        busy[i] = true;
    }
    for (;;) {
        long nbusy = 0;
        for (long i = 0; i < n; i++) {
            pfd[i].fd = busy[i] ? conns[i].fd : -1;
            pfd[i].events = conns[i].want;
            pfd[i].revents = 0;
            nbusy += busy[i];
        }
        if (nbusy == 0)
            break;
        int pn = poll(pfd, (nfds_t)n, 100);
        if (pn < 0 && errno != EINTR)
            goto out;
        double now = bench_now();
        if (L->count > 0 && now >= next_note) {
            fprintf(stderr, "  ... %ld of %ld answered, %.0f/s so far\n", L->done_ok, L->count,
                    (double)L->done_ok / (now - begin));
            next_note = now + 10;
        }
        for (long i = 0; i < n; i++) {
            struct hc *c = &conns[i];
            if (!busy[i])
                continue;
            if (now - c->start > OP_TIMEOUT_S) {
                fprintf(stderr, "corvid-bench: no answer from %s within %.0f s\n",
                        o->urls[i % o->n_urls], OP_TIMEOUT_S);
                goto out;
            }
            if (pfd[i].revents == 0)
                continue;
            /* A response can be complete right after the next request is written (a fast
             * answer read in the same call): go on until the connection has to wait. */
            for (int e = hc_io(c); e != HC_AGAIN; e = hc_io(c)) {
                if (e == HC_FAILED) {
                    fprintf(stderr, "corvid-bench: %s: %s\n", o->urls[i % o->n_urls], c->err);
                    goto out;
                }
                if (e != HC_RESPONSE)
                    continue;
                double done = bench_now();
                char err[300] = "";
                bool ok = L->check(L->arg, i, c, err, sizeof err);
                bench_run_record(r, c->start, done, ok, err);
                L->done_ok += ok;
                busy[i] = false;
                if (c->close_after) {
                    fprintf(stderr, "corvid-bench: %s closed the connection after: %s\n",
                            o->urls[i % o->n_urls], err[0] ? err : "a success");
                    goto out;
                }
                if (done >= r->t1 || exhausted || (L->count > 0 && issued >= L->count))
                    break;
                const char *req;
                size_t len;
                int m = L->make(L->arg, i, &req, &len);
                if (m < 0)
                    goto out;
                if (m > 0) {
                    exhausted = true;
                    break;
                }
                issued++;
                c->start = bench_now();
                hc_send(c, req, len);
                busy[i] = true;
            }
        }
    }
    if (exhausted && L->count == 0)
        printf("note: the prepared requests were used up before the end of the window; "
               "use a larger --pool\n");
    rv = r->errors ? 1 : 0;
out:
    for (long i = 0; conns && i < n; i++)
        hc_close(&conns[i]);
    free(conns);
    free(pfd);
    free(busy);
    return rv;
}

static bool setup_common(struct hopts *o, const char *path)
{
    if (o->n_urls == 0) {
        fprintf(stderr, "corvid-bench: --url is required\n");
        return false;
    }
    if (o->system == NULL)
        o->system = "corvid-http";
    if (o->target == NULL)
        o->target = path;
    signal(SIGPIPE, SIG_IGN);
    return true;
}

static char *request_head(const char *method, const char *path, const struct hopts *o,
                          size_t body_len, size_t *len)
{
    char host[64];
    snprintf(host, sizeof host, "%s", o->urls[0] + (strncmp(o->urls[0], "https://", 8) ? 0 : 8));
    struct cmn_buf b;
    cmn_buf_init(&b, false);
    int rv = body_len == (size_t)-1
                 ? cmn_buf_printf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n\r\n", method, path, host)
                 : cmn_buf_printf(&b,
                                  "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json"
                                  "\r\nContent-Length: %zu\r\n\r\n",
                                  method, path, host, body_len);
    if (rv != 0 || cmn_buf_append(&b, "", 1) != 0) {
        cmn_buf_fini(&b);
        return NULL;
    }
    *len = b.len - 1;
    return (char *)b.data;
}

static void body_error(const struct hc *c, char *err, size_t cap)
{
    snprintf(err, cap, "HTTP %d: %.200s", c->status, c->body_len ? hc_body(c) : "");
}

/* ---- http-whoami ---- */

struct whoami {
    char *req;
    size_t len;
    int expect;
};

static int whoami_make(void *ctx, long i, const char **req, size_t *len)
{
    (void)i;
    struct whoami *w = ctx;
    *req = w->req;
    *len = w->len;
    return 0;
}

static bool whoami_check(void *ctx, long i, const struct hc *c, char *err, size_t cap)
{
    (void)i;
    struct whoami *w = ctx;
    if (c->status == w->expect)
        return true;
    body_error(c, err, cap);
    return false;
}

/* Client certificates from DIR/0.pem, DIR/1.pem, ... (certificate and key in each). */
static long load_callers(const char *dir, long max, X509 ***certs, EVP_PKEY ***keys)
{
    *certs = calloc((size_t)max, sizeof **certs);
    *keys = calloc((size_t)max, sizeof **keys);
    if (*certs == NULL || *keys == NULL)
        return -1;
    long n = 0;
    for (; n < max; n++) {
        char path[1200];
        snprintf(path, sizeof path, "%s/%ld.pem", dir, n);
        FILE *f = fopen(path, "rb");
        if (f == NULL)
            break;
        (*certs)[n] = PEM_read_X509(f, NULL, NULL, NULL);
        rewind(f);
        (*keys)[n] = PEM_read_PrivateKey(f, NULL, NULL, NULL);
        fclose(f);
        if ((*certs)[n] == NULL || (*keys)[n] == NULL) {
            fprintf(stderr, "corvid-bench: %s lacks a certificate or a key\n", path);
            return -1;
        }
    }
    return n;
}

static void free_callers(X509 **certs, EVP_PKEY **keys, long n)
{
    for (long i = 0; i < n; i++) {
        X509_free(certs ? certs[i] : NULL);
        EVP_PKEY_free(keys ? keys[i] : NULL);
    }
    free(certs);
    free(keys);
}

int bench_http_whoami_main(int argc, char **argv)
{
    struct hopts o = {.clients = 64, .seconds = 5, .warmup = 1};
    const char *callers = NULL, *path = "/certificates/whoami";
    long expect = 200;
    for (int i = 2; i < argc; i++) {
        int c = opt_common(&o, argc, argv, &i);
        if (c < 0)
            return 2;
        if (c > 0)
            continue;
        if ((strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)) {
            printf("usage: corvid-bench http-whoami --url URL [--callers DIR | --cert PEM [--key "
                   "PEM]] [options]\n\n"
                   "Authenticated GET requests per second on keep-alive connections (default\n"
                   "GET /certificates/whoami), one in flight per connection.\n\n");
            printf(COMMON_USAGE, 64);
            printf(
                "  --callers DIR     client certificates DIR/0.pem, 1.pem, ... (certificate and\n"
                "                    key; connection i presents file i mod their count), e.g.\n"
                "                    what `http-register --save DIR` wrote\n"
                "  --cert/--key PEM  one client certificate for every connection instead\n"
                "  --path PATH       another GET path (default /certificates/whoami)\n"
                "  --expect STATUS   the status that counts as success (default 200)\n");
            return 0;
        } else if (strcmp(argv[i], "--callers") == 0 && i + 1 < argc) {
            callers = argv[++i];
        } else if (strcmp(argv[i], "--path") == 0 && i + 1 < argc) {
            path = argv[++i];
        } else if (strcmp(argv[i], "--expect") == 0 && i + 1 < argc) {
            if (bench_arg_long("--expect", argv[++i], 100, 599, &expect) != 0)
                return 2;
        } else {
            fprintf(stderr, "corvid-bench http-whoami: unknown argument %s (try --help)\n",
                    argv[i]);
            return 2;
        }
    }
    if (!setup_common(&o, path))
        return 2;
    if (callers == NULL && o.cert == NULL) {
        fprintf(stderr, "corvid-bench http-whoami: --callers DIR or --cert PEM is required\n");
        return 2;
    }
    struct load L = {.o = &o, .make = whoami_make, .check = whoami_check};
    if (callers) {
        L.n_certs = load_callers(callers, o.clients, &L.certs, &L.keys);
        if (L.n_certs <= 0) {
            if (L.n_certs == 0)
                fprintf(stderr, "corvid-bench: no %s/0.pem\n", callers);
            free_callers(L.certs, L.keys, L.n_certs > 0 ? L.n_certs : 0);
            return 1;
        }
    }
    struct whoami w = {.expect = (int)expect};
    w.req = request_head("GET", path, &o, (size_t)-1, &w.len);
    L.arg = &w;
    L.tls = hc_ctx_new(o.cacert, o.cert, o.key);
    int rv = -1;
    struct bench_run r;
    memset(&r, 0, sizeof r);
    if (L.tls && w.req) {
        rv = load_run(&L, &r);
        if (rv >= 0)
            bench_run_report(&r, o.system, o.target, (int)o.clients);
    }
    bench_run_fini(&r);
    SSL_CTX_free(L.tls);
    free_callers(L.certs, L.keys, L.n_certs);
    free(w.req);
    return rv == 0 ? 0 : 1;
}

/* ---- http-register ---- */

struct reg {
    struct hopts *o;
    struct ca_signer signer;
    long bundle;
    unsigned tag;
    const char *prefix, *clearance;
    long seq;    /* certificates made so far */
    long limit;  /* certificates to make at most (0: no limit) */
    char **pool; /* prepared requests (pool mode), or NULL: made on demand */
    size_t *pool_len;
    long n_pool, pool_next;
    struct cmn_buf *bufs; /* per connection, on demand */
    const char *save_dir;
    long save_count, saved;
};

/* One PUT with the next `bundle` fresh certificates into out. 0, 1 at the limit, -1. */
static int reg_build(struct reg *g, struct cmn_buf *out)
{
    char errmsg[CMN_ERRMSG_SIZE] = "";
    if (g->limit && g->seq >= g->limit)
        return 1;
    long k = g->bundle;
    if (g->limit && g->seq + k > g->limit)
        k = g->limit - g->seq;
    struct cmn_buf body, certs;
    cmn_buf_init(&body, false);
    cmn_buf_init(&certs, false);
    char name[96];
    snprintf(name, sizeof name, "%s-%08x-%ld", g->prefix, g->tag, g->seq);
    int rv = cmn_buf_append_str(&body, "{\"Name\":") || bench_json_str(&body, name, strlen(name)) ||
                     cmn_buf_append_str(&body, ",\"Certificate\":")
                 ? -1
                 : 0;
    for (long j = 0; rv == 0 && j < k; j++) {
        X509 *cert = NULL;
        EVP_PKEY *key = NULL;
        char cn[96];
        snprintf(cn, sizeof cn, "%s-%08x-%ld", g->prefix, g->tag, g->seq + j);
        if (bench_client_cert(&g->signer, cn, 30, &cert, &key, errmsg) != 0) {
            rv = -1;
            break;
        }
        if (j == 0 && g->save_dir && g->saved < g->save_count) {
            char path[1200];
            snprintf(path, sizeof path, "%s/%ld.pem", g->save_dir, g->saved);
            if (bench_write_pem(path, cert, key, errmsg) != 0)
                rv = -1;
            g->saved++;
        }
        if (rv == 0)
            rv = k == 1 ? ca_cert_to_der(cert, &certs) : ca_cert_to_pem(cert, &certs);
        X509_free(cert);
        EVP_PKEY_free(key);
    }
    if (rv == 0 && k == 1) {
        struct cmn_buf b64;
        cmn_buf_init(&b64, false);
        rv = ca_b64_encode(certs.data, certs.len, &b64);
        if (rv == 0)
            rv = bench_json_str(&body, (const char *)b64.data, b64.len);
        cmn_buf_fini(&b64);
    } else if (rv == 0) {
        rv = bench_json_str(&body, (const char *)certs.data, certs.len);
    }
    if (rv == 0)
        rv = cmn_buf_printf(&body, ",\"SecurityClearance\":\"%s\",\"Permissions\":{}}",
                            g->clearance);
    size_t hl = 0;
    char *head = rv == 0 ? request_head("PUT", "/admin/certificates", g->o, body.len, &hl) : NULL;
    out->len = 0;
    if (head == NULL || cmn_buf_append(out, head, hl) != 0 ||
        cmn_buf_append(out, body.data, body.len) != 0)
        rv = -1;
    free(head);
    cmn_buf_fini(&body);
    cmn_buf_fini(&certs);
    if (rv != 0) {
        fprintf(stderr, "corvid-bench: making a registration: %s\n",
                errmsg[0] ? errmsg : "out of memory");
        return -1;
    }
    g->seq += k;
    return 0;
}

static int reg_make(void *arg, long i, const char **req, size_t *len)
{
    struct reg *g = arg;
    if (g->pool) {
        if (g->pool_next >= g->n_pool)
            return 1;
        *req = g->pool[g->pool_next];
        *len = g->pool_len[g->pool_next++];
        return 0;
    }
    int m = reg_build(g, &g->bufs[i]);
    if (m != 0)
        return m;
    *req = (const char *)g->bufs[i].data;
    *len = g->bufs[i].len;
    return 0;
}

static bool reg_check(void *arg, long i, const struct hc *c, char *err, size_t cap)
{
    (void)arg;
    (void)i;
    if (c->status == 201)
        return true;
    body_error(c, err, cap);
    return false;
}

int bench_http_register_main(int argc, char **argv)
{
    struct hopts o = {.clients = 64, .seconds = 5, .warmup = 1};
    struct reg g = {.o = &o, .bundle = 1, .prefix = "bench", .clearance = "ValidUser"};
    const char *issuer = NULL;
    long count = 0, pool = -1;
    for (int i = 2; i < argc; i++) {
        int c = opt_common(&o, argc, argv, &i);
        if (c < 0)
            return 2;
        if (c > 0)
            continue;
        const char *a = argv[i];
        bool has = i + 1 < argc;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            printf(
                "usage: corvid-bench http-register --url URL --cert PEM [--key PEM] [options]\n\n"
                "Registers distinct, freshly generated EC-P256 client certificates with\n"
                "PUT /admin/certificates (RavenDB's body: Name, Certificate, SecurityClearance,\n"
                "Permissions), each answered 201 once applied on that node. --cert is the\n"
                "caller (Operator or above, e.g. a node's .pem).\n\n");
            printf(COMMON_USAGE, 64);
            printf("  --pool N          certificates prepared before the window (default 20000);\n"
                   "                    the run ends early when they are used up\n"
                   "  --count N         bulk mode instead: register N certificates, made while\n"
                   "                    sending (no window, no warm-up), and report the rate\n"
                   "  --bundle K        certificates per PUT (PEM bundle: the first is the\n"
                   "                    primary, the others its secondaries; at most 256)\n"
                   "  --issuer PFX      sign them with this CA (PKCS#12 without password, e.g.\n"
                   "                    the cluster's issuing.pfx) instead of a throwaway CA\n"
                   "  --clearance C     SecurityClearance (default ValidUser)\n"
                   "  --name PREFIX     names PREFIX-<run>-<index> (default bench)\n"
                   "  --save DIR        write the first certificate of the first --save-count\n"
                   "                    PUTs with its key to DIR/0.pem, 1.pem, ... (callers for\n"
                   "                    http-whoami)\n"
                   "  --save-count K    (default 64)\n");
            return 0;
        } else if (strcmp(a, "--pool") == 0 && has) {
            if (bench_arg_long(a, argv[++i], 1, 10000000, &pool) != 0)
                return 2;
        } else if (strcmp(a, "--count") == 0 && has) {
            if (bench_arg_long(a, argv[++i], 1, 100000000, &count) != 0)
                return 2;
        } else if (strcmp(a, "--bundle") == 0 && has) {
            if (bench_arg_long(a, argv[++i], 1, 256, &g.bundle) != 0)
                return 2;
        } else if (strcmp(a, "--issuer") == 0 && has) {
            issuer = argv[++i];
        } else if (strcmp(a, "--clearance") == 0 && has) {
            g.clearance = argv[++i];
        } else if (strcmp(a, "--name") == 0 && has) {
            g.prefix = argv[++i];
        } else if (strcmp(a, "--save") == 0 && has) {
            g.save_dir = argv[++i];
            if (g.save_count == 0)
                g.save_count = 64;
        } else if (strcmp(a, "--save-count") == 0 && has) {
            if (bench_arg_long(a, argv[++i], 0, 100000, &g.save_count) != 0)
                return 2;
        } else {
            fprintf(stderr, "corvid-bench http-register: unknown argument %s (try --help)\n", a);
            return 2;
        }
    }
    if (!setup_common(&o, "register"))
        return 2;
    if (o.cert == NULL) {
        fprintf(stderr, "corvid-bench http-register: --cert is required (the caller)\n");
        return 2;
    }
    if (g.save_dir && mkdir(g.save_dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "corvid-bench: cannot create %s: %s\n", g.save_dir, strerror(errno));
        return 1;
    }
    char errmsg[CMN_ERRMSG_SIZE] = "";
    if (cmn_random(&cmn_rng_system, &g.tag, sizeof g.tag) != 0 ||
        bench_signer(issuer, &g.signer, errmsg) != 0) {
        fprintf(stderr, "corvid-bench: signing CA: %s\n", errmsg[0] ? errmsg : "no randomness");
        return 1;
    }
    struct load L = {.o = &o, .make = reg_make, .check = reg_check, .arg = &g};
    int rv = -1;
    struct bench_run r;
    memset(&r, 0, sizeof r);
    L.tls = hc_ctx_new(o.cacert, o.cert, o.key);
    if (L.tls == NULL)
        goto out;
    if (count > 0) {
        L.count = (count + g.bundle - 1) / g.bundle;
        g.limit = count;
        g.bufs = calloc((size_t)o.clients, sizeof *g.bufs);
        if (g.bufs == NULL)
            goto out;
    } else {
        g.n_pool = ((pool > 0 ? pool : 20000) + g.bundle - 1) / g.bundle;
        g.pool = calloc((size_t)g.n_pool, sizeof *g.pool);
        g.pool_len = calloc((size_t)g.n_pool, sizeof *g.pool_len);
        if (g.pool == NULL || g.pool_len == NULL)
            goto out;
        double t = bench_now();
        for (long i = 0; i < g.n_pool; i++) {
            struct cmn_buf b;
            cmn_buf_init(&b, false);
            if (reg_build(&g, &b) != 0) {
                cmn_buf_fini(&b);
                goto out;
            }
            g.pool[i] = (char *)b.data;
            g.pool_len[i] = b.len;
        }
        printf("prepared %ld PUTs of %ld certificate(s) in %.2f s\n", g.n_pool, g.bundle,
               bench_now() - t);
        fflush(stdout);
    }
    double t0 = bench_now();
    rv = load_run(&L, &r);
    double secs = bench_now() - t0;
    if (rv >= 0) {
        bench_run_report(&r, o.system, o.target, (int)o.clients);
        if (count > 0)
            printf("REGISTERED certs=%ld puts=%ld secs=%.2f certs_per_s=%.0f\n",
                   L.done_ok * g.bundle < count ? L.done_ok * g.bundle : count, L.done_ok, secs,
                   (double)(L.done_ok * g.bundle < count ? L.done_ok * g.bundle : count) / secs);
    }
out:
    bench_run_fini(&r);
    SSL_CTX_free(L.tls);
    for (long i = 0; g.pool && i < g.n_pool; i++)
        free(g.pool[i]);
    free(g.pool);
    free(g.pool_len);
    for (long i = 0; g.bufs && i < o.clients; i++)
        cmn_buf_fini(&g.bufs[i]);
    free(g.bufs);
    bench_signer_fini(&g.signer);
    return rv == 0 ? 0 : 1;
}

/* ---- http-generate ---- */

struct gen {
    struct hopts *o;
    unsigned tag;
    long seq;
    const char *key_type, *password;
    struct cmn_buf *bufs;
};

static int gen_make(void *arg, long i, const char **req, size_t *len)
{
    struct gen *g = arg;
    struct cmn_buf body;
    cmn_buf_init(&body, false);
    int rv = cmn_buf_printf(&body,
                            "{\"Name\":\"gen-%08x-%ld\",\"SecurityClearance\":\"ValidUser\","
                            "\"Permissions\":{},\"KeyType\":\"%s\"",
                            g->tag, g->seq++, g->key_type);
    if (rv == 0 && g->password)
        rv = cmn_buf_append_str(&body, ",\"Password\":") ||
             bench_json_str(&body, g->password, strlen(g->password));
    if (rv == 0)
        rv = cmn_buf_append_str(&body, "}");
    size_t hl = 0;
    char *head = rv == 0 ? request_head("POST", "/admin/certificates", g->o, body.len, &hl) : NULL;
    struct cmn_buf *b = &g->bufs[i];
    b->len = 0;
    if (head == NULL || cmn_buf_append(b, head, hl) != 0 ||
        cmn_buf_append(b, body.data, body.len) != 0)
        rv = -1;
    free(head);
    cmn_buf_fini(&body);
    if (rv != 0) {
        fprintf(stderr, "corvid-bench: out of memory\n");
        return -1;
    }
    *req = (const char *)b->data;
    *len = b->len;
    return 0;
}

static bool gen_check(void *arg, long i, const struct hc *c, char *err, size_t cap)
{
    (void)arg;
    (void)i;
    if (c->status == 200 && c->body_len > 4 && memcmp(hc_body(c), "PK\x03\x04", 4) == 0)
        return true;
    if (c->status == 200)
        snprintf(err, cap, "HTTP 200 without a zip (%zu bytes)", c->body_len);
    else
        body_error(c, err, cap);
    return false;
}

int bench_http_generate_main(int argc, char **argv)
{
    struct hopts o = {.clients = 16, .seconds = 5, .warmup = 1};
    struct gen g = {.o = &o, .key_type = "EC-P256"};
    for (int i = 2; i < argc; i++) {
        int c = opt_common(&o, argc, argv, &i);
        if (c < 0)
            return 2;
        if (c > 0)
            continue;
        const char *a = argv[i];
        bool has = i + 1 < argc;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            printf(
                "usage: corvid-bench http-generate --url URL --cert PEM [--key PEM] [options]\n\n"
                "Client certificates generated end to end per second: POST /admin/certificates\n"
                "(Name, SecurityClearance ValidUser, KeyType), each answered with the zip once\n"
                "the registration is applied on that node; an answer counts when it is 200 and\n"
                "a zip. --cert is the caller (Operator or above).\n\n");
            printf(COMMON_USAGE, 16);
            printf("  --key-type T      EC-P256 (default), EC-P384, RSA-2048, ...\n"
                   "  --password P      protect the .pfx and .key in the zip (default: none)\n");
            return 0;
        } else if (strcmp(a, "--key-type") == 0 && has) {
            g.key_type = argv[++i];
        } else if (strcmp(a, "--password") == 0 && has) {
            g.password = argv[++i];
        } else {
            fprintf(stderr, "corvid-bench http-generate: unknown argument %s (try --help)\n", a);
            return 2;
        }
    }
    if (!setup_common(&o, "generate"))
        return 2;
    if (o.cert == NULL) {
        fprintf(stderr, "corvid-bench http-generate: --cert is required (the caller)\n");
        return 2;
    }
    if (cmn_random(&cmn_rng_system, &g.tag, sizeof g.tag) != 0)
        return 1;
    g.bufs = calloc((size_t)o.clients, sizeof *g.bufs);
    struct load L = {.o = &o, .make = gen_make, .check = gen_check, .arg = &g};
    L.tls = hc_ctx_new(o.cacert, o.cert, o.key);
    int rv = -1;
    struct bench_run r;
    memset(&r, 0, sizeof r);
    if (L.tls && g.bufs) {
        rv = load_run(&L, &r);
        if (rv >= 0)
            bench_run_report(&r, o.system, o.target, (int)o.clients);
    }
    bench_run_fini(&r);
    SSL_CTX_free(L.tls);
    for (long i = 0; g.bufs && i < o.clients; i++)
        cmn_buf_fini(&g.bufs[i]);
    free(g.bufs);
    return rv == 0 ? 0 : 1;
}
