/* corvid-bench etcd: the reference for `corvid-bench raft`: etcd v3 puts per second with mutual
 * TLS, C puts in flight (one per connection), each measured from the request to etcd's answer
 * (which comes after the entry is committed). Two client paths:
 *   grpc  etcdserverpb.KV/Put over HTTP/2 (what etcd's own clients use), a minimal HTTP/2
 *         client: one stream at a time per connection, literal HPACK headers, no Huffman;
 *   json  POST /v3/kv/put on etcd's JSON gateway over HTTP/1.1 keep-alive (the gateway turns
 *         it into a gRPC call to itself, so it costs etcd an extra hop). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "ca/ca.h"
#include "ca/tls.h"
#include "common/env.h"
#include "net/url.h"
#include "tools/bench/bench.h"

#define MAX_ENDPOINTS 16
#define MAX_CLIENTS   1024
#define OP_TIMEOUT_S  30.0
#define IN_MAX        (256 * 1024)

/* HTTP/2 (RFC 9113) frame types and flags used here. */
enum {
    H2_DATA = 0,
    H2_HEADERS = 1,
    H2_RST_STREAM = 3,
    H2_SETTINGS = 4,
    H2_PING = 6,
    H2_GOAWAY = 7,
    H2_WINDOW_UPDATE = 8,
    H2_CONTINUATION = 9
};
enum { H2_END_STREAM = 0x1, H2_ACK = 0x1, H2_END_HEADERS = 0x4 };

enum api { API_GRPC, API_JSON };

struct endpoint {
    char host[64];
    int port;
};

struct econn {
    int fd;
    SSL *ssl;
    const struct endpoint *ep;
    bool busy;
    double start;
    bool want_write; /* the last SSL call asked for POLLOUT */
    uint8_t *out;
    size_t out_len, out_off, out_cap;
    uint8_t *in;
    size_t in_len;
    /* grpc: the stream of the call in flight */
    uint32_t stream, next_stream;
    size_t got_data;
    bool end_pending; /* END_STREAM seen on HEADERS, waiting for END_HEADERS */
    /* json: the answer being read, and its body (capacity kept between answers) */
    struct net_http_resp resp;
    struct cmn_buf body;
    /* result of the call that just finished */
    bool done, ok;
    char err[160];
};

struct ebench {
    struct endpoint eps[MAX_ENDPOINTS];
    int n_eps;
    const char *cacert, *cert, *key;
    long clients;
    double seconds, warmup;
    long value_size;
    enum api api;
    const char *target;
    SSL_CTX *ctx;
    unsigned tag;
    long next;
    uint8_t *value;
    struct cmn_buf value_b64;
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: corvid-bench etcd --endpoint HOST:PORT [--endpoint ...] --cacert CA.pem\n"
            "                         --cert CLIENT.pem --key CLIENT.key [options]\n\n"
            "Puts distinct keys with VALUE-SIZE-byte values into etcd v3 over mutual TLS, C puts\n"
            "in flight (one per connection; connection i goes to endpoint i mod the number of\n"
            "endpoints), and prints the rate and latency percentiles of the puts answered.\n\n"
            "  --endpoint H:P     an etcd member's client URL, without the scheme (repeat)\n"
            "  --cacert/--cert/--key  PEM files: the CA that signed the members' certificates,\n"
            "                     and the client certificate and key\n"
            "  --api grpc|json    gRPC KV/Put over HTTP/2 (default), or the JSON gateway\n"
            "                     POST /v3/kv/put over HTTP/1.1 keep-alive\n"
            "  --clients C        puts in flight (default 1)\n"
            "  --seconds S        measuring window (default 5)\n"
            "  --warmup S         unmeasured time first (default 1)\n"
            "  --value-size N     bytes per value (default 256)\n"
            "  --target LABEL     how the members were chosen, for the result line\n");
}

/* ---- buffers ---- */

static int out_append(struct econn *c, const void *p, size_t n)
{
    if (c->out_off == c->out_len)
        c->out_off = c->out_len = 0;
    if (c->out_len + n > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 4096;
        while (cap < c->out_len + n)
            cap *= 2;
        uint8_t *q = realloc(c->out, cap);
        if (q == NULL)
            return -1;
        c->out = q;
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, p, n);
    c->out_len += n;
    return 0;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get_be(const uint8_t *p, int n)
{
    uint32_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

/* ---- TLS ---- */

static void ssl_err(char *out, size_t n, const char *what)
{
    unsigned long e = ERR_get_error();
    char buf[200] = "";
    if (e)
        ERR_error_string_n(e, buf, sizeof buf);
    snprintf(out, n, "%s%s%s", what, e ? ": " : "", buf);
    ERR_clear_error();
}

static int make_ctx(struct ebench *b)
{
    /* ALPN decides the protocol: Go's server speaks HTTP/2 only when it was offered. */
    static const unsigned char h2[] = "\x02h2";
    static const unsigned char h11[] = "\x08http/1.1";
    b->ctx =
        b->api == API_GRPC
            ? bench_tls_ctx(b->cacert, b->cert, b->key, CA_TLS_PARTIAL_WRITES, h2, sizeof h2 - 1)
            : bench_tls_ctx(b->cacert, b->cert, b->key, CA_TLS_PARTIAL_WRITES, h11, sizeof h11 - 1);
    return b->ctx ? 0 : -1;
}

/* A TCP connection with a completed TLS handshake (blocking), then made non-blocking. */
static int dial(struct ebench *b, struct econn *c, const struct endpoint *ep)
{
    char msg[300];
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)ep->port)};
    if (inet_pton(AF_INET, ep->host, &sa.sin_addr) != 1) {
        fprintf(stderr, "corvid-bench: %s is not an IPv4 address\n", ep->host);
        return -1;
    }
    c->ep = ep;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return -1;
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        fprintf(stderr, "corvid-bench: cannot connect to %s:%d: %s\n", ep->host, ep->port,
                strerror(errno));
        return -1;
    }
    c->ssl = SSL_new(b->ctx);
    if (c->ssl == NULL)
        return -1;
    SSL_set_fd(c->ssl, c->fd);
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), ep->host);
    if (SSL_connect(c->ssl) != 1) {
        ssl_err(msg, sizeof msg, "handshake");
        fprintf(stderr, "corvid-bench: %s:%d: %s\n", ep->host, ep->port, msg);
        return -1;
    }
    const unsigned char *alpn = NULL;
    unsigned alpn_len = 0;
    SSL_get0_alpn_selected(c->ssl, &alpn, &alpn_len);
    if (b->api == API_GRPC && !(alpn_len == 2 && memcmp(alpn, "h2", 2) == 0)) {
        fprintf(stderr, "corvid-bench: %s:%d did not agree to HTTP/2\n", ep->host, ep->port);
        return -1;
    }
    if (fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK) != 0)
        return -1;
    c->in = malloc(IN_MAX);
    if (c->in == NULL)
        return -1;
    c->next_stream = 1;
    if (b->api == API_GRPC) {
        /* Preface; SETTINGS: no push, 16 MiB stream windows; and a 1 GiB connection window, so
         * that the answers never wait for a WINDOW_UPDATE from us. */
        static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
        /* clang-format off */
        uint8_t f[9 + 12 + 9 + 4] = {0, 0, 12, H2_SETTINGS, 0, 0, 0, 0, 0,
                                     0, 2, 0, 0, 0, 0, /* ENABLE_PUSH 0 */
                                     0, 4, 1, 0, 0, 0, /* INITIAL_WINDOW_SIZE 2^24 */
                                     0, 0, 4, H2_WINDOW_UPDATE, 0, 0, 0, 0, 0};
        /* clang-format on */
        put_be32(f + 30, (1u << 30) - 65535);
        if (out_append(c, preface, sizeof preface - 1) != 0 || out_append(c, f, sizeof f) != 0)
            return -1;
    }
    return 0;
}

/* Writes what is pending. 0, or -1 when the connection failed. */
static int flush_out(struct econn *c)
{
    c->want_write = false;
    while (c->out_off < c->out_len) {
        int w = SSL_write(c->ssl, c->out + c->out_off, (int)(c->out_len - c->out_off));
        if (w > 0) {
            c->out_off += (size_t)w;
            continue;
        }
        int e = SSL_get_error(c->ssl, w);
        if (e == SSL_ERROR_WANT_WRITE) {
            c->want_write = true;
            return 0;
        }
        if (e == SSL_ERROR_WANT_READ)
            return 0;
        ssl_err(c->err, sizeof c->err, "TLS write");
        return -1;
    }
    return 0;
}

/* Reads everything available. 0, or -1 when the connection failed or closed. */
static int fill_in(struct econn *c)
{
    for (;;) {
        if (c->in_len == IN_MAX) {
            snprintf(c->err, sizeof c->err, "answer larger than %d bytes", IN_MAX);
            return -1;
        }
        int r = SSL_read(c->ssl, c->in + c->in_len, (int)(IN_MAX - c->in_len));
        if (r > 0) {
            c->in_len += (size_t)r;
            continue;
        }
        int e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_READ)
            return 0;
        if (e == SSL_ERROR_WANT_WRITE) {
            c->want_write = true;
            return 0;
        }
        if (e == SSL_ERROR_ZERO_RETURN)
            snprintf(c->err, sizeof c->err, "the server closed the connection");
        else
            ssl_err(c->err, sizeof c->err, "TLS read");
        return -1;
    }
}

/* ---- gRPC over HTTP/2 ---- */

static size_t varint(uint8_t *p, size_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

/* HPACK literal header field without indexing, new name, no Huffman (RFC 7541 6.2.2); names
 * and values here are shorter than 127 bytes. */
static size_t hpack_literal(uint8_t *p, const char *name, const char *value)
{
    size_t nl = strlen(name), vl = strlen(value), n = 0;
    p[n++] = 0x00;
    p[n++] = (uint8_t)nl;
    memcpy(p + n, name, nl);
    n += nl;
    p[n++] = (uint8_t)vl;
    memcpy(p + n, value, vl);
    return n + vl;
}

static int grpc_put(struct ebench *b, struct econn *c, const char *key)
{
    uint8_t hdr[512], msg[1024 + 64];
    char authority[80];
    snprintf(authority, sizeof authority, "%s:%d", c->ep->host, c->ep->port);
    size_t h = 9;
    hdr[h++] = 0x83; /* :method POST (static table 3) */
    hdr[h++] = 0x87; /* :scheme https (static table 7) */
    h += hpack_literal(hdr + h, ":path", "/etcdserverpb.KV/Put");
    h += hpack_literal(hdr + h, ":authority", authority);
    h += hpack_literal(hdr + h, "content-type", "application/grpc");
    h += hpack_literal(hdr + h, "te", "trailers");
    c->stream = c->next_stream;
    c->next_stream += 2;
    put_be32(hdr, (uint32_t)(h - 9) << 8);
    hdr[3] = H2_HEADERS;
    hdr[4] = H2_END_HEADERS;
    put_be32(hdr + 5, c->stream);
    /* PutRequest{key = 1, value = 2}, after the gRPC prefix (uncompressed, length). */
    size_t kl = strlen(key), m = 9 + 5;
    msg[m++] = 0x0a;
    m += varint(msg + m, kl);
    memcpy(msg + m, key, kl);
    m += kl;
    msg[m++] = 0x12;
    m += varint(msg + m, (size_t)b->value_size);
    memcpy(msg + m, b->value, (size_t)b->value_size);
    m += (size_t)b->value_size;
    put_be32(msg, (uint32_t)(m - 9) << 8);
    msg[3] = H2_DATA;
    msg[4] = H2_END_STREAM;
    put_be32(msg + 5, c->stream);
    msg[9] = 0;
    put_be32(msg + 10, (uint32_t)(m - 14));
    c->got_data = 0;
    c->end_pending = false;
    return out_append(c, hdr, h) == 0 && out_append(c, msg, m) == 0 ? 0 : -1;
}

static void finish(struct econn *c, bool ok, const char *err)
{
    c->done = true;
    c->ok = ok;
    if (!ok)
        snprintf(c->err, sizeof c->err, "%s", err);
}

/* Handles the complete frames read so far. -1 for a connection-level failure. */
static int grpc_frames(struct econn *c)
{
    size_t off = 0;
    while (c->in_len - off >= 9) {
        const uint8_t *f = c->in + off;
        size_t len = get_be(f, 3);
        if (c->in_len - off < 9 + len)
            break;
        uint8_t type = f[3], flags = f[4];
        uint32_t sid = get_be(f + 5, 4) & 0x7fffffffu;
        const uint8_t *p = f + 9;
        off += 9 + len;
        bool ours = c->busy && !c->done && sid == c->stream && sid != 0;
        switch (type) {
        case H2_DATA:
            if (ours) {
                c->got_data += len;
                if (flags & H2_END_STREAM)
                    finish(c, c->got_data > 5, "the answer carried no message");
            }
            break;
        case H2_HEADERS:
        case H2_CONTINUATION:
            if (!ours)
                break;
            if (type == H2_HEADERS && (flags & H2_END_STREAM))
                c->end_pending = true;
            if (c->end_pending && (flags & H2_END_HEADERS))
                finish(c, c->got_data > 5, "gRPC error (trailers-only answer: no PutResponse)");
            break;
        case H2_RST_STREAM:
            if (ours)
                finish(c, false, "the server reset the stream");
            break;
        case H2_SETTINGS:
            if (!(flags & H2_ACK)) {
                static const uint8_t ack[9] = {0, 0, 0, H2_SETTINGS, H2_ACK, 0, 0, 0, 0};
                if (out_append(c, ack, sizeof ack) != 0)
                    return -1;
            }
            break;
        case H2_PING:
            if (!(flags & H2_ACK) && len == 8) {
                uint8_t pong[17] = {0, 0, 8, H2_PING, H2_ACK, 0, 0, 0, 0};
                memcpy(pong + 9, p, 8);
                if (out_append(c, pong, sizeof pong) != 0)
                    return -1;
            }
            break;
        case H2_GOAWAY:
            snprintf(c->err, sizeof c->err, "GOAWAY from the server (error code %u)",
                     len >= 8 ? get_be(p + 4, 4) : 0);
            return -1;
        default: /* WINDOW_UPDATE, PRIORITY, ...: nothing to do for a client this small */
            break;
        }
    }
    memmove(c->in, c->in + off, c->in_len - off);
    c->in_len -= off;
    return 0;
}

/* ---- the JSON gateway over HTTP/1.1 ---- */

static int json_put(struct ebench *b, struct econn *c, const char *key)
{
    struct cmn_buf k, body;
    cmn_buf_init(&k, false);
    cmn_buf_init(&body, false);
    int rv = ca_b64_encode(key, strlen(key), &k);
    if (rv == 0)
        rv = cmn_buf_printf(&body, "{\"key\":\"%s\",\"value\":\"%s\"}", (const char *)k.data,
                            (const char *)b->value_b64.data);
    char head[256];
    int n = snprintf(head, sizeof head,
                     "POST /v3/kv/put HTTP/1.1\r\nHost: %s:%d\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                     c->ep->host, c->ep->port, body.len);
    if (rv == 0 && (n < 0 || (size_t)n >= sizeof head))
        rv = -1;
    if (rv == 0)
        rv = out_append(c, head, (size_t)n);
    if (rv == 0)
        rv = out_append(c, body.data, body.len);
    cmn_buf_fini(&k);
    cmn_buf_fini(&body);
    return rv == 0 ? 0 : -1;
}

/* Reads the HTTP/1.1 answer at the start of c->in as far as it has arrived. */
static int json_answer(struct econn *c)
{
    if (!c->busy || c->done || c->in_len == 0)
        return 0;
    size_t used;
    char why[CMN_ERRMSG_SIZE];
    if (net_http_resp_feed(&c->resp, c->in, c->in_len, &used, why) != 0) {
        snprintf(c->err, sizeof c->err, "not an HTTP answer: %s", why);
        return -1;
    }
    memmove(c->in, c->in + used, c->in_len - used);
    c->in_len -= used;
    if (!c->resp.complete)
        return 0;
    const char *body = (const char *)c->body.data;
    size_t n = c->body.len;
    bool ok = c->resp.status == 200 && body && memmem(body, n, "\"header\"", 8) != NULL;
    char err[160];
    snprintf(err, sizeof err, "HTTP %d: %.*s", c->resp.status, (int)(n < 100 ? n : 100),
             body ? body : "");
    finish(c, ok, err);
    return 0;
}

/* ---- the run ---- */

static int issue(struct ebench *b, struct econn *c)
{
    char key[64];
    snprintf(key, sizeof key, "bench/%08x/%ld", b->tag, b->next++);
    c->busy = true;
    c->done = false;
    c->start = bench_now();
    if (b->api == API_JSON) {
        c->resp.max_head = IN_MAX;
        c->resp.max_body = IN_MAX;
        c->resp.body = &c->body;
        net_http_resp_start(&c->resp);
    }
    int rv = b->api == API_GRPC ? grpc_put(b, c, key) : json_put(b, c, key);
    return rv == 0 ? flush_out(c) : -1;
}

static void close_conn(struct econn *c)
{
    if (c->ssl)
        SSL_free(c->ssl);
    if (c->fd >= 0)
        close(c->fd);
    free(c->in);
    free(c->out);
    cmn_buf_fini(&c->body);
}

static int run(struct ebench *b)
{
    struct econn *conns = calloc((size_t)b->clients, sizeof *conns);
    struct pollfd *pfd = calloc((size_t)b->clients, sizeof *pfd);
    struct bench_run r;
    int rv = -1;
    struct econn *bad = NULL;
    if (conns == NULL || pfd == NULL || bench_run_init(&r, 4096) != 0) {
        free(conns);
        free(pfd);
        return -1;
    }
    for (long i = 0; i < b->clients; i++)
        conns[i].fd = -1;
    for (long i = 0; i < b->clients; i++)
        if (dial(b, &conns[i], &b->eps[i % b->n_eps]) != 0)
            goto out;
    double begin = bench_now();
    r.t0 = begin + b->warmup;
    r.t1 = r.t0 + b->seconds;
    for (long i = 0; i < b->clients; i++)
        if (issue(b, &conns[i]) != 0) {
            bad = &conns[i];
            goto out;
        }
    for (;;) {
        long busy = 0;
        for (long i = 0; i < b->clients; i++) {
            struct econn *c = &conns[i];
            pfd[i].fd = c->fd;
            pfd[i].events = POLLIN | (c->want_write || c->out_off < c->out_len ? POLLOUT : 0);
            pfd[i].revents = 0;
            busy += c->busy;
        }
        if (busy == 0)
            break;
        int n = poll(pfd, (nfds_t)b->clients, 100);
        if (n < 0 && errno != EINTR)
            goto out;
        double now = bench_now();
        for (long i = 0; i < b->clients; i++) {
            struct econn *c = &conns[i];
            if (c->busy && now - c->start > OP_TIMEOUT_S) {
                snprintf(c->err, sizeof c->err, "no answer within %.0f s", OP_TIMEOUT_S);
                bad = c;
                goto out;
            }
            if (pfd[i].revents == 0)
                continue;
            if (fill_in(c) != 0 || (b->api == API_GRPC ? grpc_frames(c) : json_answer(c)) != 0 ||
                flush_out(c) != 0) {
                bad = c;
                goto out;
            }
            if (!c->busy || !c->done)
                continue;
            double done = bench_now();
            c->busy = false;
            bench_run_record(&r, c->start, done, c->ok, c->err);
            if (done < r.t1 && issue(b, c) != 0) {
                bad = c;
                goto out;
            }
        }
    }
    bench_run_report(&r, b->api == API_GRPC ? "etcd" : "etcd-json", b->target, (int)b->clients);
    rv = r.errors ? 1 : 0;
out:
    if (bad)
        fprintf(stderr, "corvid-bench: %s:%d: %s\n", bad->ep->host, bad->ep->port, bad->err);
    for (long i = 0; i < b->clients; i++)
        close_conn(&conns[i]);
    free(conns);
    free(pfd);
    bench_run_fini(&r);
    return rv;
}

static int parse_endpoint(const char *s, struct endpoint *ep)
{
    struct net_url u;
    if (net_url_parse(s, NET_URL_BARE, &u, NULL) != 0 || u.scheme[0] != '\0' ||
        strlen(u.host) >= sizeof ep->host) {
        fprintf(stderr, "corvid-bench: --endpoint wants HOST:PORT, not '%s'\n", s);
        return -1;
    }
    snprintf(ep->host, sizeof ep->host, "%s", u.host);
    ep->port = u.port;
    return 0;
}

int bench_etcd_main(int argc, char **argv)
{
    struct ebench b = {.clients = 1, .seconds = 5, .warmup = 1, .value_size = 256};
    char target[64];
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        bool has = i + 1 < argc;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--endpoint") == 0 && has) {
            if (b.n_eps == MAX_ENDPOINTS || parse_endpoint(argv[++i], &b.eps[b.n_eps]) != 0)
                return 2;
            b.n_eps++;
        } else if (strcmp(a, "--cacert") == 0 && has) {
            b.cacert = argv[++i];
        } else if (strcmp(a, "--cert") == 0 && has) {
            b.cert = argv[++i];
        } else if (strcmp(a, "--key") == 0 && has) {
            b.key = argv[++i];
        } else if (strcmp(a, "--api") == 0 && has) {
            const char *v = argv[++i];
            if (strcmp(v, "grpc") == 0) {
                b.api = API_GRPC;
            } else if (strcmp(v, "json") == 0) {
                b.api = API_JSON;
            } else {
                fprintf(stderr, "corvid-bench: --api is grpc or json\n");
                return 2;
            }
        } else if (strcmp(a, "--clients") == 0 && has) {
            if (bench_arg_long(a, argv[++i], 1, MAX_CLIENTS, &b.clients) != 0)
                return 2;
        } else if (strcmp(a, "--seconds") == 0 && has) {
            if (bench_arg_double(a, argv[++i], 0.1, 3600, &b.seconds) != 0)
                return 2;
        } else if (strcmp(a, "--warmup") == 0 && has) {
            if (bench_arg_double(a, argv[++i], 0, 600, &b.warmup) != 0)
                return 2;
        } else if (strcmp(a, "--value-size") == 0 && has) {
            if (bench_arg_long(a, argv[++i], 1, 1024, &b.value_size) != 0)
                return 2;
        } else if (strcmp(a, "--target") == 0 && has) {
            b.target = argv[++i];
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (b.n_eps == 0 || !b.cacert || !b.cert || !b.key) {
        usage(stderr);
        return 2;
    }
    if (b.target == NULL) {
        snprintf(target, sizeof target, "members=%d", b.n_eps);
        b.target = target;
    }
    int rv = 1;
    cmn_buf_init(&b.value_b64, false);
    b.value = malloc((size_t)b.value_size);
    if (b.value == NULL || cmn_random(&cmn_rng_system, &b.tag, sizeof b.tag) != 0 ||
        cmn_random(&cmn_rng_system, b.value, (size_t)b.value_size) != 0 ||
        ca_b64_encode(b.value, (size_t)b.value_size, &b.value_b64) != 0)
        goto out;
    if (make_ctx(&b) != 0)
        goto out;
    rv = run(&b) == 0 ? 0 : 1;
out:
    SSL_CTX_free(b.ctx);
    cmn_buf_fini(&b.value_b64);
    free(b.value);
    return rv;
}
