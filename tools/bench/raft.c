/* corvid-bench raft: trust-state commands committed per second on a running Corvid cluster.
 * Registers freshly generated client certificates with `trustClientCert` over the nodes'
 * admin channels, C commands in flight (one per connection, as the channel allows), and
 * measures each command from the request to the node's answer, which comes after the Raft
 * entry is committed and applied on that node. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "ca/ca.h"
#include "ca/certfile.h"
#include "common/env.h"
#include "tools/bench/bench.h"

#define MAX_SOCKETS  16
#define MAX_CLIENTS  1024
#define OP_TIMEOUT_S 30.0

struct rconn {
    int fd;
    bool busy;
    double start;
    char out[1400];
    size_t out_len, out_off;
    char in[4096];
    size_t in_len;
    bool registered; /* the answer so far says "Registered" */
    char first_line[256];
};

struct rbench {
    const char *sockets[MAX_SOCKETS];
    int n_sockets;
    long clients;
    double seconds, warmup;
    long pool;
    const char *dir_arg;
    const char *target;
    const char *system; /* the result line's system= */
    const char *issuer; /* a PFX with the CA that signs the pool, NULL: a throwaway CA */
    bool keep;
    bool generate_only;
    long first; /* -1, or: use the existing files <dir>/<first>.pem ... */
    char dir[1024];
    long generated; /* files <dir>/<i>.pem for i < generated */
    long next;      /* next certificate to register */
    unsigned tag;   /* distinguishes the names of one run from those of earlier runs */
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: corvid-bench raft --socket DATADIR/admin.sock [--socket ...] [options]\n\n"
            "Registers distinct, freshly generated client certificates as ClusterAdmin with\n"
            "`trustClientCert` over the admin channels, C commands in flight (one per connection;\n"
            "connection i goes to socket i mod the number of sockets), and prints the rate and\n"
            "latency percentiles of the commands answered (= committed and applied there).\n\n"
            "  --socket PATH     a node's admin channel (repeat for several nodes)\n"
            "  --clients C       commands in flight (default 1)\n"
            "  --seconds S       measuring window (default 5)\n"
            "  --warmup S        unmeasured time first (default 1)\n"
            "  --pool N          certificates generated beforehand (default 20000); the run\n"
            "                    ends early when they are used up\n"
            "  --dir DIR         where the certificates are written (default: a new dir in\n"
            "                    $TMPDIR or /tmp, removed afterwards)\n"
            "  --issuer PFX      sign the certificates with this CA (key and certificate in a\n"
            "                    PKCS#12 file without password, e.g. the cluster's issuing.pfx)\n"
            "                    instead of a throwaway CA the cluster does not know\n"
            "  --target LABEL    how the nodes were chosen, for the result line (default\n"
            "                    \"nodes=<count>\")\n"
            "  --system NAME     the result line's system= (default corvid)\n"
            "  --keep            keep the certificate files\n"
            "  --generate        only write --pool certificates into --dir (0.pem, 1.pem, ...)\n"
            "  --first K         use certificates K, K+1, ... (--pool of them) that an earlier\n"
            "                    --generate wrote into --dir, instead of generating; prints\n"
            "                    \"POOL next=<index>\": the first one left unused\n"
            "Generating costs ~0.1 ms per certificate; several runs can share one pool.\n");
}

/* ---- the certificate pool ---- */

/* The signing CA from a PKCS#12 file: *cert and *key are new references owned by the caller. */
int bench_load_issuer(const char *path, X509 **cert, EVP_PKEY **key, char *errmsg)
{
    struct ca_certfile f;
    int rv =
        ca_certfile_load(path, NULL, NULL, CA_CERTFILE_PFX | CA_CERTFILE_KEY, &f, NULL, errmsg);
    if (rv != 0)
        return rv;
    X509_up_ref(f.leaf);
    *cert = f.leaf;
    *key = f.key;
    f.key = NULL;
    ca_certfile_fini(&f);
    return 0;
}

static int make_pool(struct rbench *b)
{
    char errmsg[CMN_ERRMSG_SIZE] = "";
    int64_t now = cmn_now_ms(&cmn_clock_system) / 1000, nb, na;
    EVP_PKEY *ca_key = NULL;
    X509 *ca = NULL;
    int rv = -1;
    if (b->dir_arg) {
        snprintf(b->dir, sizeof b->dir, "%s", b->dir_arg);
        if (mkdir(b->dir, 0700) != 0 && errno != EEXIST) {
            fprintf(stderr, "corvid-bench: cannot create %s: %s\n", b->dir, strerror(errno));
            return -1;
        }
    } else {
        const char *tmp = getenv("TMPDIR");
        snprintf(b->dir, sizeof b->dir, "%s/corvid-bench-raft.XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (mkdtemp(b->dir) == NULL) {
            fprintf(stderr, "corvid-bench: cannot create %s: %s\n", b->dir, strerror(errno));
            return -1;
        }
    }
    if (b->dir[0] != '/') {
        /* the node opens the file itself, from its own working directory */
        char *abs = realpath(b->dir, NULL);
        if (abs == NULL || strlen(abs) >= sizeof b->dir) {
            fprintf(stderr, "corvid-bench: cannot resolve %s\n", b->dir);
            free(abs);
            return -1;
        }
        memcpy(b->dir, abs, strlen(abs) + 1);
        free(abs);
    }
    if (b->issuer) {
        if (bench_load_issuer(b->issuer, &ca, &ca_key, errmsg) != 0)
            goto out;
    } else {
        if (ca_key_generate(CA_KEY_EC_P256, &ca_key, errmsg) != 0)
            goto out;
        ca_validity_days(now, 30, &nb, &na);
        struct ca_cert_req cr = {.profile = CA_PROFILE_ROOT,
                                 .cn = "corvid-bench raft CA",
                                 .not_before = nb,
                                 .not_after = na,
                                 .subject_key = ca_key};
        if (ca_cert_issue(&cr, NULL, &cmn_rng_system, &ca, errmsg) != 0)
            goto out;
    }
    struct ca_signer signer = {ca, ca_key};
    double t = bench_now();
    for (long i = 0; i < b->pool; i++) {
        EVP_PKEY *key = NULL;
        X509 *cert = NULL;
        struct cmn_buf pem;
        cmn_buf_init(&pem, false);
        char cn[64], path[1100];
        snprintf(cn, sizeof cn, "bench-%08x-%ld", b->tag, i);
        /* the client profile of ca_cert_issue, made ~4x faster (see https.c) */
        int r = bench_client_cert(&signer, cn, 7, &cert, &key, errmsg);
        if (r == 0 && (r = ca_cert_to_pem(cert, &pem)) != 0)
            snprintf(errmsg, sizeof errmsg, "PEM encoding: %s", cmn_strerror(r));
        if (r == 0) {
            snprintf(path, sizeof path, "%s/%ld.pem", b->dir, i);
            FILE *f = fopen(path, "wb");
            if (f == NULL || fwrite(pem.data, 1, pem.len, f) != pem.len) {
                snprintf(errmsg, sizeof errmsg, "cannot write %.160s: %.60s", path,
                         strerror(errno));
                r = -1;
            }
            if (f != NULL && fclose(f) != 0 && r == 0) {
                snprintf(errmsg, sizeof errmsg, "cannot write %.160s: %.60s", path,
                         strerror(errno));
                r = -1;
            }
        }
        cmn_buf_fini(&pem);
        X509_free(cert);
        EVP_PKEY_free(key);
        if (r != 0)
            goto out;
        b->generated = i + 1;
    }
    printf("generated %ld EC-P256 client certificates (signed by %s) in %.2f s into %s\n",
           b->generated, b->issuer ? b->issuer : "a throwaway CA", bench_now() - t, b->dir);
    fflush(stdout);
    rv = 0;
out:
    if (rv != 0)
        fprintf(stderr, "corvid-bench: certificate pool: %s\n", errmsg);
    X509_free(ca);
    EVP_PKEY_free(ca_key);
    return rv;
}

static void remove_pool(struct rbench *b)
{
    if (b->keep || b->dir[0] == '\0')
        return;
    char path[1100];
    for (long i = 0; i < b->generated; i++) {
        snprintf(path, sizeof path, "%s/%ld.pem", b->dir, i);
        unlink(path);
    }
    if (b->dir_arg == NULL)
        rmdir(b->dir);
}

/* ---- the admin-channel clients ---- */

static int dial(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path) {
        fprintf(stderr, "corvid-bench: socket path too long: %s\n", path);
        return -1;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    /* Blocking connect: the node's listen backlog is short, and a full backlog makes a
     * non-blocking connect fail instead of waiting for the accept. */
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        fprintf(stderr, "corvid-bench: cannot connect to %s: %s\n", path, strerror(errno));
        close(fd);
        return -1;
    }
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int flush_out(struct rconn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t w = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
        if (w < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            if (errno == EINTR)
                continue;
            return -1;
        }
        c->out_off += (size_t)w;
    }
    return 0;
}

static int issue(struct rbench *b, struct rconn *c)
{
    long i = b->next++;
    int n = snprintf(c->out, sizeof c->out, "trustClientCert bench-%08x-%ld %s/%ld.pem\n", b->tag,
                     i, b->dir, i);
    if (n < 0 || (size_t)n >= sizeof c->out)
        return -1;
    c->out_len = (size_t)n;
    c->out_off = 0;
    c->in_len = 0;
    c->registered = false;
    c->first_line[0] = '\0';
    c->busy = true;
    c->start = bench_now();
    return flush_out(c);
}

/* Consumes the answer lines read so far. Returns 1 when the answer is complete (*ok set), 0
 * when more is needed, -1 on a protocol error. */
static int parse_answer(struct rconn *c, bool *ok)
{
    size_t off = 0;
    int done = 0;
    while (!done) {
        char *nl = memchr(c->in + off, '\n', c->in_len - off);
        if (nl == NULL)
            break;
        char *line = c->in + off;
        size_t len = (size_t)(nl - line);
        off += len + 1;
        if (len >= 1 && line[0] == '.' && (len == 1 || line[1] != '.')) {
            char code[16];
            size_t cl = len - 1 < sizeof code - 1 ? len - 1 : sizeof code - 1;
            memcpy(code, line + 1, cl);
            code[cl] = '\0';
            *ok = strcmp(code, "0") == 0 && c->registered;
            if (!*ok && c->first_line[0] == '\0')
                snprintf(c->first_line, sizeof c->first_line, "exit code %s", code);
            done = 1;
            break;
        }
        if (c->first_line[0] == '\0')
            snprintf(c->first_line, sizeof c->first_line, "%.*s", (int)(len < 200 ? len : 200),
                     line);
        if (len >= 10 && memcmp(line, "Registered", 10) == 0)
            c->registered = true;
    }
    memmove(c->in, c->in + off, c->in_len - off);
    c->in_len -= off;
    if (!done && c->in_len == sizeof c->in)
        return -1; /* a line longer than the buffer: not an answer this tool expects */
    return done;
}

static int run(struct rbench *b)
{
    struct rconn *conns = calloc((size_t)b->clients, sizeof *conns);
    struct pollfd *pfd = calloc((size_t)b->clients, sizeof *pfd);
    struct bench_run r;
    int rv = -1;
    if (conns == NULL || pfd == NULL || bench_run_init(&r, 4096) != 0) {
        free(conns);
        free(pfd);
        return -1;
    }
    for (long i = 0; i < b->clients; i++)
        conns[i].fd = -1;
    for (long i = 0; i < b->clients; i++)
        if ((conns[i].fd = dial(b->sockets[i % b->n_sockets])) < 0)
            goto out;
    double begin = bench_now();
    r.t0 = begin + b->warmup;
    r.t1 = r.t0 + b->seconds;
    bool exhausted = false;
    for (long i = 0; i < b->clients && b->next < b->generated; i++)
        if (issue(b, &conns[i]) != 0)
            goto io_error;
    for (;;) {
        long busy = 0;
        for (long i = 0; i < b->clients; i++) {
            pfd[i].fd = conns[i].busy ? conns[i].fd : -1;
            pfd[i].events = POLLIN | (conns[i].out_off < conns[i].out_len ? POLLOUT : 0);
            pfd[i].revents = 0;
            busy += conns[i].busy;
        }
        if (busy == 0)
            break;
        int n = poll(pfd, (nfds_t)b->clients, 100);
        if (n < 0 && errno != EINTR)
            goto io_error;
        double now = bench_now();
        for (long i = 0; i < b->clients; i++) {
            struct rconn *c = &conns[i];
            if (!c->busy)
                continue;
            if (now - c->start > OP_TIMEOUT_S) {
                fprintf(stderr, "corvid-bench: no answer from %s within %.0f s\n",
                        b->sockets[i % b->n_sockets], OP_TIMEOUT_S);
                goto out;
            }
            if (pfd[i].revents == 0)
                continue;
            if ((pfd[i].revents & POLLOUT) && flush_out(c) != 0)
                goto io_error;
            if (!(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            ssize_t got = read(c->fd, c->in + c->in_len, sizeof c->in - c->in_len);
            if (got == 0) {
                fprintf(stderr, "corvid-bench: %s closed the connection\n",
                        b->sockets[i % b->n_sockets]);
                goto out;
            }
            if (got < 0) {
                if (errno == EAGAIN || errno == EINTR)
                    continue;
                goto io_error;
            }
            c->in_len += (size_t)got;
            bool ok = false;
            int d = parse_answer(c, &ok);
            if (d < 0) {
                fprintf(stderr, "corvid-bench: unexpected answer from %s\n",
                        b->sockets[i % b->n_sockets]);
                goto out;
            }
            if (d == 0)
                continue;
            double done = bench_now();
            c->busy = false;
            bench_run_record(&r, c->start, done, ok, c->first_line);
            if (done < r.t1) {
                if (b->next < b->generated) {
                    if (issue(b, c) != 0)
                        goto io_error;
                } else {
                    exhausted = true;
                }
            }
        }
    }
    if (exhausted)
        printf("note: the certificates were used up before the end of the window; "
               "use a larger --pool\n");
    bench_run_report(&r, b->system, b->target, (int)b->clients);
    if (b->first >= 0)
        printf("POOL next=%ld\n", b->next);
    rv = r.errors ? 1 : 0;
    goto out;
io_error:
    fprintf(stderr, "corvid-bench: admin channel: %s\n", strerror(errno));
out:
    for (long i = 0; i < b->clients; i++)
        if (conns[i].fd >= 0)
            close(conns[i].fd);
    free(conns);
    free(pfd);
    bench_run_fini(&r);
    return rv;
}

int bench_raft_main(int argc, char **argv)
{
    struct rbench b = {
        .clients = 1, .seconds = 5, .warmup = 1, .pool = 20000, .first = -1, .system = "corvid"};
    char target[64];
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        bool has = i + 1 < argc;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--socket") == 0 && has) {
            if (b.n_sockets == MAX_SOCKETS) {
                fprintf(stderr, "corvid-bench: at most %d sockets\n", MAX_SOCKETS);
                return 2;
            }
            b.sockets[b.n_sockets++] = argv[++i];
        } else if (strcmp(a, "--clients") == 0 && has) {
            if (bench_arg_long(a, argv[++i], 1, MAX_CLIENTS, &b.clients) != 0)
                return 2;
        } else if (strcmp(a, "--seconds") == 0 && has) {
            if (bench_arg_double(a, argv[++i], 0.1, 3600, &b.seconds) != 0)
                return 2;
        } else if (strcmp(a, "--warmup") == 0 && has) {
            if (bench_arg_double(a, argv[++i], 0, 600, &b.warmup) != 0)
                return 2;
        } else if (strcmp(a, "--pool") == 0 && has) {
            if (bench_arg_long(a, argv[++i], 1, 10000000, &b.pool) != 0)
                return 2;
        } else if (strcmp(a, "--dir") == 0 && has) {
            b.dir_arg = argv[++i];
        } else if (strcmp(a, "--target") == 0 && has) {
            b.target = argv[++i];
        } else if (strcmp(a, "--system") == 0 && has) {
            b.system = argv[++i];
        } else if (strcmp(a, "--issuer") == 0 && has) {
            b.issuer = argv[++i];
        } else if (strcmp(a, "--keep") == 0) {
            b.keep = true;
        } else if (strcmp(a, "--generate") == 0) {
            b.generate_only = true;
        } else if (strcmp(a, "--first") == 0 && has) {
            if (bench_arg_long(a, argv[++i], 0, 100000000, &b.first) != 0)
                return 2;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if ((b.n_sockets == 0 && !b.generate_only) ||
        ((b.generate_only || b.first >= 0) && b.dir_arg == NULL)) {
        usage(stderr);
        return 2;
    }
    if (b.target == NULL) {
        snprintf(target, sizeof target, "nodes=%d", b.n_sockets);
        b.target = target;
    }
    if (cmn_random(&cmn_rng_system, &b.tag, sizeof b.tag) != 0) {
        fprintf(stderr, "corvid-bench: no randomness\n");
        return 1;
    }
    if (b.generate_only) {
        b.keep = true;
        return make_pool(&b) == 0 ? 0 : 1;
    }
    if (b.first >= 0) {
        b.keep = true;
        char *abs = realpath(b.dir_arg, NULL);
        if (abs == NULL || strlen(abs) >= sizeof b.dir) {
            fprintf(stderr, "corvid-bench: cannot resolve %s\n", b.dir_arg);
            free(abs);
            return 1;
        }
        memcpy(b.dir, abs, strlen(abs) + 1);
        free(abs);
        b.next = b.first;
        b.generated = b.first + b.pool;
        char path[1100];
        struct stat sb;
        snprintf(path, sizeof path, "%s/%ld.pem", b.dir, b.generated - 1);
        if (stat(path, &sb) != 0) {
            fprintf(stderr,
                    "corvid-bench: %s is missing: --first %ld --pool %ld wants "
                    "certificates %ld..%ld\n",
                    path, b.first, b.pool, b.first, b.generated - 1);
            return 1;
        }
        return run(&b) == 0 ? 0 : 1;
    }
    int rv = make_pool(&b) == 0 ? run(&b) : -1;
    remove_pool(&b);
    return rv == 0 ? 0 : 1;
}
