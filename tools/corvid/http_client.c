/* The corvid CLI's HTTPS client: OpenSSL over non-blocking sockets driven synchronously with
 * poll() (for timeouts and progress), responses parsed with http_parser, failover across URLs. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "ca/tls.h"
#include "net/http.h"
#include "net/url.h"
#include "tools/corvid/http_client.h"

struct hc_conn {
    struct hc_url url;
    int fd;      /* -1 when not connected */
    SSL *ssl;    /* NULL when not connected */
    bool reused; /* has answered a request already */
};

/* ---------------------------------------------------------------- URLs */

int hc_url_parse(const char *s, struct hc_url *out, char *errmsg)
{
    memset(out, 0, sizeof *out);
    if (strncasecmp(s, "https://", 8) != 0) {
        if (strncasecmp(s, "http://", 7) == 0)
            return cmn_fail(errmsg, CMN_EINVALID, "%s: nodes serve HTTPS only (https://…)", s);
        return cmn_fail(errmsg, CMN_EINVALID, "%s: not an https:// URL", s);
    }
    struct net_url u;
    int rv = net_url_parse(s, 0, &u, errmsg);
    if (rv != 0)
        return rv;
    if (u.path[0] != '\0' && strcmp(u.path, "/") != 0)
        return cmn_fail(errmsg, CMN_EINVALID,
                        "%s: give the node's base URL only (https://host:port), no path", s);
    if (strlen(u.origin) >= sizeof out->base)
        return cmn_fail(errmsg, CMN_EINVALID, "%s: URL too long", s);
    snprintf(out->base, sizeof out->base, "%s", u.origin);
    snprintf(out->host, sizeof out->host, "%s", u.host);
    snprintf(out->port, sizeof out->port, "%u", u.port);
    snprintf(out->host_header, sizeof out->host_header, "%s", u.authority);
    out->host_is_ip = u.family != AF_UNSPEC;
    return 0;
}

int hc_query_escape(const char *s, struct cmn_buf *out)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        int rv;
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '.' || *p == '_' || *p == '~') {
            rv = cmn_buf_append(out, p, 1);
        } else {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            rv = cmn_buf_append(out, e, 3);
        }
        if (rv != 0)
            return rv;
    }
    if (cmn_buf_reserve(out, 1) != 0)
        return CMN_ENOMEM;
    out->data[out->len] = '\0';
    return 0;
}

/* ---------------------------------------------------------------- client */

void hc_response_init(struct hc_response *r)
{
    memset(r, 0, sizeof *r);
    cmn_buf_init(&r->body, false);
}

void hc_response_fini(struct hc_response *r)
{
    cmn_buf_fini(&r->body);
    r->status = 0;
}

static void openssl_reason(char *out, size_t n)
{
    unsigned long e = ERR_peek_last_error();
    if (e == 0)
        snprintf(out, n, "unknown error");
    else
        ERR_error_string_n(e, out, n);
    ERR_clear_error();
}

int hc_client_init(struct hc_client *c, const struct hc_tls_opts *tls, char *errmsg)
{
    memset(c, 0, sizeof *c);
    c->connect_timeout_ms = 5000;
    c->timeout_ms = 60000;
    c->insecure = tls->insecure;
    /* Nodes close with or without close_notify: a missing one is not an error here because
     * every answer is framed by Content-Length. */
    struct ca_tls_client_opts o = {
        .trust = tls->insecure  ? CA_TLS_TRUST_NONE
                 : tls->ca_file ? CA_TLS_TRUST_FILE
                                : CA_TLS_TRUST_SYSTEM,
        .ca_file = tls->ca_file,
        .id = {.cert = tls->cert, .key = tls->key, .chain = tls->chain},
        .flags = CA_TLS_LENIENT_EOF,
    };
    return ca_tls_client_ctx(&o, &c->ctx, errmsg);
}

static void conn_close(struct hc_conn *k)
{
    if (k->ssl) {
        SSL_free(k->ssl); /* no close_notify: the other end does not need one */
        k->ssl = NULL;
    }
    if (k->fd >= 0)
        close(k->fd);
    k->fd = -1;
    k->reused = false;
}

void hc_client_fini(struct hc_client *c)
{
    for (size_t i = 0; i < c->n_conns; i++)
        conn_close(&c->conns[i]);
    free(c->conns);
    SSL_CTX_free(c->ctx);
    memset(c, 0, sizeof *c);
}

int hc_client_add_url(struct hc_client *c, const char *url, char *errmsg)
{
    if (c->n_urls == HC_MAX_URLS)
        return cmn_fail(errmsg, CMN_ETOOBIG, "at most %d URLs", HC_MAX_URLS);
    struct hc_url u;
    int rv = hc_url_parse(url, &u, errmsg);
    if (rv != 0)
        return rv;
    c->urls[c->n_urls++] = u;
    return 0;
}

/* The kept connection for a base URL, created (not connected) when new. */
static struct hc_conn *conn_for(struct hc_client *c, const struct hc_url *u)
{
    for (size_t i = 0; i < c->n_conns; i++)
        if (strcmp(c->conns[i].url.base, u->base) == 0)
            return &c->conns[i];
    struct hc_conn *n = realloc(c->conns, (c->n_conns + 1) * sizeof *n);
    if (n == NULL)
        return NULL;
    c->conns = n;
    struct hc_conn *k = &c->conns[c->n_conns++];
    memset(k, 0, sizeof *k);
    k->url = *u;
    k->fd = -1;
    return k;
}

/* ---------------------------------------------------------------- I/O */

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct waiter {
    int64_t start;
    int64_t deadline;
    const struct hc_request *req; /* for progress; NULL while connecting */
};

/* Waits until fd is ready for reading or writing, or the deadline passes (CMN_EIO, "timed
 * out"). */
static int wait_fd(int fd, bool for_write, const struct waiter *w)
{
    for (;;) {
        int64_t now = mono_ms();
        if (now >= w->deadline)
            return CMN_EIO;
        int64_t left = w->deadline - now;
        struct pollfd p = {.fd = fd, .events = for_write ? POLLOUT : POLLIN};
        int r = poll(&p, 1, (int)(left < 250 ? left : 250));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return CMN_EIO;
        if (r > 0)
            return 0;
        if (w->req && w->req->progress)
            w->req->progress(w->req->progress_ctx, mono_ms() - w->start);
    }
}

/* Connects the TCP socket: every address of the host in turn, each within the connect
 * timeout. */
static int tcp_connect(struct hc_client *c, struct hc_conn *k, char *errmsg)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC};
    struct addrinfo *res = NULL;
    int g = getaddrinfo(k->url.host, k->url.port, &hints, &res);
    if (g != 0)
        return cmn_fail(errmsg, CMN_EIO, "%s: cannot resolve %s: %s", k->url.base, k->url.host,
                        gai_strerror(g));
    int err = 0;
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        int fd =
            socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        if (connect(fd, a->ai_addr, a->ai_addrlen) != 0 && errno != EINPROGRESS) {
            err = errno;
            close(fd);
            continue;
        }
        struct waiter w = {mono_ms(), mono_ms() + c->connect_timeout_ms, NULL};
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        if (wait_fd(fd, true, &w) != 0) {
            err = ETIMEDOUT;
            close(fd);
            continue;
        }
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr != 0) {
            err = soerr ? soerr : errno;
            close(fd);
            continue;
        }
        int one = 1;
        CMN_IGNORE(setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one));
        freeaddrinfo(res);
        k->fd = fd;
        return 0;
    }
    freeaddrinfo(res);
    return cmn_fail(errmsg, CMN_EIO, "%s: cannot connect: %s", k->url.base,
                    err == ETIMEDOUT ? "timed out" : strerror(err ? err : ECONNREFUSED));
}

static int tls_handshake(struct hc_client *c, struct hc_conn *k, char *errmsg)
{
    char why[256];
    k->ssl = SSL_new(c->ctx);
    if (k->ssl == NULL || SSL_set_fd(k->ssl, k->fd) != 1)
        return cmn_fail(errmsg, CMN_ENOMEM, "cannot set up TLS");
    if (!k->url.host_is_ip)
        SSL_set_tlsext_host_name(k->ssl, k->url.host);
    if (!c->insecure) {
        int ok = k->url.host_is_ip
                     ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(k->ssl), k->url.host)
                     : SSL_set1_host(k->ssl, k->url.host);
        if (ok != 1)
            return cmn_fail(errmsg, CMN_ECRYPTO, "%s: cannot set the expected host name",
                            k->url.base);
    }
    /* A live node completes a handshake in milliseconds; one that accepted the connection but
     * does not answer (stopped, overloaded) is skipped after twice the connect timeout. */
    int hs_ms =
        2 * c->connect_timeout_ms < c->timeout_ms ? 2 * c->connect_timeout_ms : c->timeout_ms;
    struct waiter w = {mono_ms(), mono_ms() + hs_ms, NULL};
    for (;;) {
        ERR_clear_error();
        int r = SSL_connect(k->ssl);
        if (r == 1)
            return 0;
        int e = SSL_get_error(k->ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            if (wait_fd(k->fd, e == SSL_ERROR_WANT_WRITE, &w) != 0)
                return cmn_fail(errmsg, CMN_EIO, "%s: the TLS handshake timed out", k->url.base);
            continue;
        }
        long vr = SSL_get_verify_result(k->ssl);
        if (vr != X509_V_OK) {
            const char *hint = "";
            if (vr == X509_V_ERR_HOSTNAME_MISMATCH || vr == X509_V_ERR_IP_ADDRESS_MISMATCH)
                hint = " (the node's certificate does not name this host)";
            else if (vr == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
                     vr == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN ||
                     vr == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT ||
                     vr == X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE)
                hint = " (give --ca-file with the cluster's CA chain, e.g. "
                       "var/local/pki/ca-chain.crt)";
            return cmn_fail(errmsg, CMN_ECRYPTO,
                            "%s: the server's certificate does not verify: %s%s", k->url.base,
                            X509_verify_cert_error_string(vr), hint);
        }
        if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)
            return cmn_fail(errmsg, CMN_ECRYPTO,
                            "%s: the connection closed during the TLS handshake%s", k->url.base,
                            errno ? "" : " (is it a TLS port?)");
        openssl_reason(why, sizeof why);
        return cmn_fail(errmsg, CMN_ECRYPTO, "%s: TLS handshake failed: %s", k->url.base, why);
    }
}

static int send_all(struct hc_conn *k, const void *p, size_t n, const struct waiter *w,
                    char *errmsg)
{
    const uint8_t *b = p;
    while (n > 0) {
        ERR_clear_error();
        int chunk = n > (1u << 30) ? (1 << 30) : (int)n;
        int r = SSL_write(k->ssl, b, chunk);
        if (r > 0) {
            b += r;
            n -= (size_t)r;
            continue;
        }
        int e = SSL_get_error(k->ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            if (wait_fd(k->fd, e == SSL_ERROR_WANT_WRITE, w) != 0)
                return cmn_fail(errmsg, CMN_EIO, "%s: timed out sending the request", k->url.base);
            continue;
        }
        return cmn_fail(errmsg, CMN_EIO, "%s: the connection broke while sending", k->url.base);
    }
    return 0;
}

/* ---------------------------------------------------------------- responses */

/* Reads one answer. *got_bytes tells whether anything at all arrived (a kept connection the
 * server had closed gives nothing). */
static int read_response(struct hc_client *c, struct hc_conn *k, const struct waiter *w,
                         struct hc_response *out, bool *got_bytes, bool *keep_alive, char *errmsg)
{
    struct net_http_header keep[] = {
        {"Content-Type", out->content_type, sizeof out->content_type},
        {"Location", out->location, sizeof out->location},
        {"Retry-After", out->retry_after, sizeof out->retry_after},
    };
    struct net_http_resp resp = {.max_head = HC_MAX_HEADERS,
                                 .max_body = HC_MAX_BODY,
                                 .body = &out->body,
                                 .headers = keep,
                                 .n_headers = sizeof keep / sizeof *keep};
    net_http_resp_start(&resp);
    *got_bytes = false;
    char buf[16384];
    char why[CMN_ERRMSG_SIZE];
    while (!resp.complete) {
        ERR_clear_error();
        int r = SSL_read(k->ssl, buf, sizeof buf);
        if (r <= 0) {
            int e = SSL_get_error(k->ssl, r);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                if (wait_fd(k->fd, e == SSL_ERROR_WANT_WRITE, w) != 0)
                    return cmn_fail(errmsg, CMN_EIO,
                                    "%s: no answer within %d s (--timeout to wait longer)",
                                    k->url.base, c->timeout_ms / 1000);
                continue;
            }
            if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)) {
                /* End of stream: completes an answer framed by the connection's end. */
                if (*got_bytes && net_http_resp_eof(&resp, why) == 0)
                    break;
                return cmn_fail(errmsg, CMN_EIO, "%s: the connection closed %s", k->url.base,
                                *got_bytes ? "in the middle of the answer" : "before an answer");
            }
            openssl_reason(why, sizeof why);
            return cmn_fail(errmsg, CMN_EIO, "%s: reading the answer failed: %s", k->url.base, why);
        }
        *got_bytes = true;
        size_t used;
        int rv = net_http_resp_feed(&resp, buf, (size_t)r, &used, why);
        if (rv == CMN_ETOOBIG && resp.headers_done)
            return cmn_fail(errmsg, CMN_ETOOBIG, "%s: the answer is larger than %u MiB",
                            k->url.base, HC_MAX_BODY >> 20);
        if (rv == CMN_ETOOBIG)
            return cmn_fail(errmsg, CMN_EMALFORMED, "%s: the answer's head is too large",
                            k->url.base);
        if (rv != 0)
            return cmn_fail(errmsg, rv, "%s: %s", k->url.base, why);
    }
    out->status = resp.status;
    *keep_alive = resp.keep_alive;
    return 0;
}

/* ---------------------------------------------------------------- calls */

enum outcome {
    SENT_NOTHING, /* failed before any byte of the request left: safe to send elsewhere */
    SENT,         /* the request may have reached the node */
};

static int build_head(const struct hc_url *u, const struct hc_request *req, struct cmn_buf *head)
{
    int rv = cmn_buf_printf(head,
                            "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: corvid-cli/0.1\r\n"
                            "Accept: application/json, */*\r\n",
                            req->method, req->path, u->host_header);
    if (rv == 0 && (req->body != NULL || strcmp(req->method, "GET") != 0))
        rv = cmn_buf_printf(head, "Content-Length: %zu\r\n", req->body ? req->body_len : 0);
    if (rv == 0 && req->content_type)
        rv = cmn_buf_printf(head, "Content-Type: %s\r\n", req->content_type);
    if (rv == 0)
        rv = cmn_buf_append_str(head, "\r\n");
    return rv;
}

/* One attempt against one node. A kept-alive connection that the node has closed meanwhile is
 * reopened once, when nothing of the answer had arrived. */
static int call_one(struct hc_client *c, const struct hc_url *u, const struct hc_request *req,
                    struct hc_response *out, enum outcome *oc, char *errmsg)
{
    *oc = SENT_NOTHING;
    struct hc_conn *k = conn_for(c, u);
    if (k == NULL)
        return cmn_fail(errmsg, CMN_ENOMEM, "out of memory");
    struct cmn_buf head;
    cmn_buf_init(&head, false);
    if (build_head(u, req, &head) != 0)
        return cmn_fail(errmsg, CMN_ENOMEM, "out of memory");
    int rv = 0;
    /* A request that must not be sent twice goes on a new connection: on a kept one, a close
     * by the node could not be told from a failure after the node acted on it. */
    if (!req->resend_ok && k->fd >= 0)
        conn_close(k);
    for (int attempt = 0; attempt < 2; attempt++) {
        bool was_reused = k->fd >= 0 && k->reused;
        if (k->fd < 0) {
            if ((rv = tcp_connect(c, k, errmsg)) != 0 || (rv = tls_handshake(c, k, errmsg)) != 0) {
                conn_close(k);
                break;
            }
        }
        struct waiter w = {mono_ms(), mono_ms() + c->timeout_ms, req};
        hc_response_fini(out);
        hc_response_init(out);
        out->body.secret = req->secret_answer;
        snprintf(out->url, sizeof out->url, "%s", u->base);
        if ((rv = send_all(k, head.data, head.len, &w, errmsg)) == 0 && req->body_len > 0)
            rv = send_all(k, req->body, req->body_len, &w, errmsg);
        bool got = false, keep = false;
        if (rv == 0)
            rv = read_response(c, k, &w, out, &got, &keep, errmsg);
        if (rv == 0) {
            k->reused = true;
            if (!keep)
                conn_close(k);
            break;
        }
        conn_close(k);
        if (was_reused && !got && rv == CMN_EIO && req->resend_ok)
            continue; /* the node closed the idle connection: once more on a new one */
        *oc = SENT;
        break;
    }
    cmn_buf_fini(&head);
    if (rv != 0)
        out->maybe_sent = *oc == SENT;
    return rv;
}

int hc_call_url(struct hc_client *c, const char *url, const struct hc_request *req,
                struct hc_response *out, char *errmsg)
{
    struct hc_url u;
    int rv = hc_url_parse(url, &u, errmsg);
    if (rv != 0)
        return rv;
    enum outcome oc;
    return call_one(c, &u, req, out, &oc, errmsg);
}

int hc_call_location(struct hc_client *c, const char *location, const struct hc_request *req,
                     struct hc_response *out, char *errmsg)
{
    if (strncasecmp(location, "https://", 8) != 0)
        return cmn_fail(errmsg, CMN_EINVALID, "a redirect to %.200s, which is not https://",
                        location);
    struct net_url u;
    if (net_url_parse(location, 0, &u, errmsg) != 0)
        return cmn_fail(errmsg, CMN_EINVALID, "a redirect to a URL that is not valid: %.200s",
                        location);
    const char *base = u.origin;
    struct hc_request r2 = *req;
    r2.path = u.path[0] == '/' ? u.path : "/";
    return hc_call_url(c, base, &r2, out, errmsg);
}

int hc_call(struct hc_client *c, const struct hc_request *req, struct hc_response *out,
            char *errmsg)
{
    if (c->n_urls == 0)
        return cmn_fail(errmsg, CMN_EINVALID, "no node URL");
    int rv = CMN_EIO;
    char last[CMN_ERRMSG_SIZE] = "";
    for (size_t i = 0; i < c->n_urls; i++) {
        size_t at = (c->current + i) % c->n_urls;
        enum outcome oc;
        rv = call_one(c, &c->urls[at], req, out, &oc, last);
        if (rv == 0) {
            c->current = at;
            return 0;
        }
        /* A certificate that does not verify may be an attack: stop, never try around it. */
        if (rv != CMN_EIO || (oc == SENT && !req->resend_ok))
            break;
        if (i + 1 < c->n_urls && c->note) {
            char msg[512];
            snprintf(msg, sizeof msg, "%.200s; trying %.200s", last,
                     c->urls[(at + 1) % c->n_urls].base);
            c->note(c->note_ctx, msg);
        }
    }
    if (rv == CMN_EIO && c->n_urls > 1)
        return cmn_fail(errmsg, rv, "no node could be reached (last: %s)", last);
    snprintf(errmsg, CMN_ERRMSG_SIZE, "%s", last);
    return rv;
}
