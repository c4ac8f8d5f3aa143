/* TLS over libuv with memory BIOs. */
#include "raft/tls.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/err.h>

#include "common/buf.h"
#include "net/url.h"

struct wreq {
    uv_write_t req;
    struct tls_conn *conn;
    size_t len;
    char data[];
};

const char *tls_ssl_error(char *buf, size_t len)
{
    unsigned long e = ERR_get_error();
    if (e == 0)
        snprintf(buf, len, "TLS error");
    else
        ERR_error_string_n(e, buf, len);
    ERR_clear_error();
    return buf;
}

static void fail(struct tls_conn *c, const char *fmt, const char *detail) CMN_PRINTF(2, 0);
static void fail(struct tls_conn *c, const char *fmt, const char *detail)
{
    if (c->state == TLS_FAILED || c->state == TLS_CLOSING)
        return;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    snprintf(c->errmsg, sizeof c->errmsg, fmt, detail); /* fmt: one of this file's literals */
#pragma GCC diagnostic pop
    c->state = TLS_FAILED;
    uv_read_stop((uv_stream_t *)&c->tcp);
    uv_timer_stop(&c->timer);
    if (c->on_event)
        c->on_event(c, CMN_EIO);
}

static void write_cb(uv_write_t *req, int status)
{
    struct wreq *w = (struct wreq *)req;
    struct tls_conn *c = w->conn;
    free(w);
    /* A failed write shows up as a read error or EOF too. Cancelled writes of a closing
     * connection still arrive here before its close callback, so c is valid. */
    if (status == 0 && c->on_drain && c->state == TLS_OPEN &&
        tls_conn_backlog(c) <= TLS_HIGH_WATER / 4)
        c->on_drain(c);
}

/* Moves whatever OpenSSL produced for the socket into uv_write calls. */
static int flush(struct tls_conn *c)
{
    BIO *wbio = SSL_get_wbio(c->ssl);
    size_t pending;
    while ((pending = BIO_ctrl_pending(wbio)) > 0) {
        struct wreq *w = malloc(sizeof *w + pending);
        if (w == NULL)
            return CMN_ENOMEM;
        int n = BIO_read(wbio, w->data, (int)pending);
        if (n <= 0) {
            free(w);
            return CMN_EIO;
        }
        w->len = (size_t)n;
        w->conn = c;
        uv_buf_t buf = uv_buf_init(w->data, (unsigned)n);
        int rv = uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, write_cb);
        if (rv != 0) {
            free(w);
            return CMN_EIO;
        }
    }
    return 0;
}

static void deliver(struct tls_conn *c)
{
    uint8_t buf[16384];
    /* Where OpenSSL is told to wipe its plaintext (HTTPS: bodies carry passwords), this copy
     * is wiped too. */
    bool wipe = (SSL_get_options(c->ssl) & SSL_OP_CLEANSE_PLAINTEXT) != 0;
    while (c->state == TLS_OPEN && !c->reading_paused) {
        ERR_clear_error();
        int n = SSL_read(c->ssl, buf, sizeof buf);
        if (n > 0) {
            c->on_data(c, buf, (size_t)n);
            if (wipe)
                cmn_cleanse(buf, (size_t)n);
            continue;
        }
        int err = SSL_get_error(c->ssl, n);
        if (err == SSL_ERROR_WANT_READ)
            break;
        char e[160];
        if (err == SSL_ERROR_ZERO_RETURN)
            fail(c, "%s", "closed by peer");
        else
            fail(c, "TLS read: %s", tls_ssl_error(e, sizeof e));
        return;
    }
    if (c->state == TLS_OPEN && flush(c) != 0)
        fail(c, "%s", "socket write failed");
}

static void handshake(struct tls_conn *c)
{
    ERR_clear_error();
    int n = SSL_do_handshake(c->ssl);
    if (flush(c) != 0) {
        fail(c, "%s", "socket write failed");
        return;
    }
    if (n == 1) {
        c->state = TLS_OPEN;
        uv_timer_stop(&c->timer);
        c->last_activity = uv_now(c->tcp.loop);
        tls_conn_set_idle(c, c->idle_ms);
        if (c->on_event)
            c->on_event(c, 0);
        if (c->state == TLS_OPEN)
            deliver(c); /* application data that came with the last flight */
        return;
    }
    int err = SSL_get_error(c->ssl, n);
    if (err == SSL_ERROR_WANT_READ)
        return;
    char e[160];
    fail(c, "TLS handshake: %s", tls_ssl_error(e, sizeof e));
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static char slab[65536]; /* one loop thread: data is consumed before the next read */
    (void)suggested;
    (void)h;
    *buf = uv_buf_init(slab, sizeof slab);
}

static void close_handles(struct tls_conn *c);

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct tls_conn *c = s->data;
    if (nread == 0)
        return;
    if (c->state == TLS_CLOSING) { /* lingering: discard until the peer's EOF */
        if (nread < 0)
            close_handles(c);
        return;
    }
    if (nread < 0) {
        fail(c, "%s", nread == UV_EOF ? "connection closed" : uv_strerror((int)nread));
        return;
    }
    c->last_activity = uv_now(s->loop);
    if (BIO_write(SSL_get_rbio(c->ssl), buf->base, (int)nread) != nread) {
        fail(c, "%s", "out of memory");
        return;
    }
    if (c->state == TLS_HANDSHAKE)
        handshake(c);
    else if (c->state == TLS_OPEN)
        deliver(c);
}

static void timer_cb(uv_timer_t *t)
{
    struct tls_conn *c = t->data;
    if (c->state == TLS_CLOSING) {
        close_handles(c); /* the linger time is over */
        return;
    }
    if (c->state == TLS_HANDSHAKE || c->state == TLS_CONNECTING) {
        fail(c, "%s", "handshake timed out");
        return;
    }
    if (c->state == TLS_OPEN && c->idle_ms) {
        uint64_t idle = uv_now(t->loop) - c->last_activity;
        if (idle >= c->idle_ms)
            fail(c, "%s", "idle timeout");
        else
            uv_timer_start(&c->timer, timer_cb, c->idle_ms - idle, 0);
    }
}

int tls_conn_init(struct tls_conn *c, uv_loop_t *loop, SSL_CTX *ctx, bool server,
                  tls_data_cb on_data, tls_event_cb on_event)
{
    memset(c, 0, sizeof *c);
    c->server = server;
    c->on_data = on_data;
    c->on_event = on_event;
    c->ssl = SSL_new(ctx);
    if (c->ssl == NULL)
        return CMN_ENOMEM;
    BIO *rbio = BIO_new(BIO_s_mem()), *wbio = BIO_new(BIO_s_mem());
    if (rbio == NULL || wbio == NULL) {
        BIO_free(rbio);
        BIO_free(wbio);
        SSL_free(c->ssl);
        c->ssl = NULL;
        return CMN_ENOMEM;
    }
    BIO_set_mem_eof_return(rbio, -1); /* "want more", not EOF, when drained */
    SSL_set_bio(c->ssl, rbio, wbio);
    if (server)
        SSL_set_accept_state(c->ssl);
    else
        SSL_set_connect_state(c->ssl);
    uv_tcp_init(loop, &c->tcp);
    uv_timer_init(loop, &c->timer);
    c->open_handles = 2;
    c->tcp.data = c;
    c->timer.data = c;
    c->state = server ? TLS_HANDSHAKE : TLS_CONNECTING;
    return 0;
}

int tls_conn_start(struct tls_conn *c, uint64_t handshake_ms)
{
    tls_tcp_tune(&c->tcp);
    uv_timer_start(&c->timer, timer_cb, handshake_ms, 0);
    int rv = uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
    return rv == 0 ? 0 : CMN_EIO;
}

static void connect_cb(uv_connect_t *req, int status)
{
    struct tls_conn *c = req->data;
    if (c->state != TLS_CONNECTING)
        return;
    if (status != 0) {
        fail(c, "connect: %s", uv_strerror(status));
        return;
    }
    tls_tcp_tune(&c->tcp);
    c->state = TLS_HANDSHAKE;
    if (uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb) != 0) {
        fail(c, "%s", "cannot read");
        return;
    }
    handshake(c);
}

int tls_conn_connect(struct tls_conn *c, const struct sockaddr *addr, uint64_t handshake_ms)
{
    c->connect_req.data = c;
    uv_timer_start(&c->timer, timer_cb, handshake_ms, 0);
    int rv = uv_tcp_connect(&c->connect_req, &c->tcp, addr, connect_cb);
    if (rv != 0) {
        snprintf(c->errmsg, sizeof c->errmsg, "connect: %s", uv_strerror(rv));
        return CMN_EIO;
    }
    return 0;
}

void tls_conn_set_idle(struct tls_conn *c, uint64_t idle_ms)
{
    c->idle_ms = idle_ms;
    if (c->state != TLS_OPEN)
        return;
    if (idle_ms)
        uv_timer_start(&c->timer, timer_cb, idle_ms, 0);
    else
        uv_timer_stop(&c->timer);
}

int tls_conn_write(struct tls_conn *c, const void *data, size_t len)
{
    if (c->state != TLS_OPEN)
        return CMN_EIO;
    const uint8_t *p = data;
    while (len > 0) {
        int chunk = len > (1u << 30) ? 1 << 30 : (int)len;
        ERR_clear_error();
        int n = SSL_write(c->ssl, p, chunk);
        if (n <= 0) {
            char e[160];
            snprintf(c->errmsg, sizeof c->errmsg, "TLS write: %s", tls_ssl_error(e, sizeof e));
            return CMN_EIO;
        }
        p += n;
        len -= (size_t)n;
    }
    return flush(c) == 0 ? 0 : CMN_EIO;
}

size_t tls_conn_backlog(const struct tls_conn *c)
{
    return uv_stream_get_write_queue_size((const uv_stream_t *)&c->tcp);
}

void tls_conn_pause(struct tls_conn *c, bool paused)
{
    if (c->reading_paused == paused)
        return;
    c->reading_paused = paused;
    if (c->state != TLS_OPEN)
        return;
    if (paused) {
        uv_read_stop((uv_stream_t *)&c->tcp);
    } else {
        uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
        deliver(c); /* records already decrypted but not yet handed over */
    }
}

X509 *tls_conn_peer_cert(const struct tls_conn *c)
{
    return SSL_get1_peer_certificate(c->ssl);
}

static void handle_closed(uv_handle_t *h)
{
    struct tls_conn *c = h->data;
    if (--c->open_handles > 0)
        return;
    SSL_free(c->ssl);
    c->ssl = NULL;
    if (c->on_close)
        c->on_close(c);
}

static void close_handles(struct tls_conn *c)
{
    if (c->handles_closing)
        return;
    c->handles_closing = true;
    uv_close((uv_handle_t *)&c->tcp, handle_closed);
    uv_close((uv_handle_t *)&c->timer, handle_closed);
}

void tls_conn_close(struct tls_conn *c, tls_close_cb cb)
{
    if (c->state == TLS_CLOSING)
        return;
    c->state = TLS_CLOSING;
    c->on_close = cb;
    close_handles(c);
}

static void shutdown_cb(uv_shutdown_t *req, int status)
{
    (void)req;
    (void)status; /* written (or failed): now wait for the peer's EOF, or the timer */
}

void tls_conn_close_graceful(struct tls_conn *c, tls_close_cb cb, uint64_t linger_ms)
{
    if (c->state == TLS_CLOSING)
        return;
    bool connected = c->state == TLS_OPEN || c->state == TLS_HANDSHAKE;
    c->state = TLS_CLOSING;
    c->on_close = cb;
    c->shutdown_req.data = c;
    if (!connected || !uv_is_writable((uv_stream_t *)&c->tcp) ||
        uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, shutdown_cb) != 0) {
        close_handles(c);
        return;
    }
    uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb); /* no-op when reading already */
    uv_timer_start(&c->timer, timer_cb, linger_ms, 0);
}

void tls_tcp_tune(uv_tcp_t *tcp)
{
    uv_tcp_nodelay(tcp, 1);
    uv_tcp_keepalive(tcp, 1, 3);
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)tcp, &fd) == 0) {
        int intvl = 3, cnt = 3;
        unsigned timeout_ms = 20000;
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
        setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &timeout_ms, sizeof timeout_ms);
    }
}

int tls_parse_addr(const char *s, struct sockaddr_storage *addr, char *errmsg)
{
    struct net_url u;
    int rv = net_url_parse(s, NET_URL_BARE | NET_URL_PORT | NET_URL_IP, &u, errmsg);
    if (rv != 0)
        return rv;
    memset(addr, 0, sizeof *addr);
    if (u.family == AF_INET ? uv_ip4_addr(u.host, u.port, (struct sockaddr_in *)addr) == 0
                            : uv_ip6_addr(u.host, u.port, (struct sockaddr_in6 *)addr) == 0)
        return 0;
    return cmn_fail(errmsg, CMN_EINVALID, "'%s' is not an IP address (in '%s')", u.host, s);
}
