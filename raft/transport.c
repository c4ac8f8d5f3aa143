/* canonical/raft transport over mutually authenticated TLS (see transport.h). */
#include "raft/transport.h"

#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/x509v3.h>

#include "ca/ident.h"
#include "common/buf.h"
#include "common/log.h"

#define PREAMBLE_MAX (8 + 8 + 8 + 256)

struct impl;

enum conn_kind { CONN_INBOUND, CONN_OUTBOUND };

/* One TLS connection and, once authenticated, the socketpair end that Raft's stream talks to. */
struct conn {
    struct tls_conn tls;
    uv_pipe_t local;
    bool local_open;
    bool tls_closed, local_closed;
    enum conn_kind kind;
    struct impl *impl;
    raft_id peer_id;
    char thumb[CA_THUMBPRINT_SIZE];
    struct raft_uv_connect *req; /* outbound until the connect callback fired */
    raft_id want_id;
    bool is_chan;   /* a forwarding channel rather than a Raft stream */
    bool chan_open; /* callbacks may fire */
    struct rft_chan chan;
    uint8_t pre[PREAMBLE_MAX];
    size_t pre_len;
    bool counted; /* an inbound handshake in impl->handshaking, until it ends either way */
    struct conn *next, *prev;
};

struct impl {
    struct rft_transport_config cfg;
    SSL_CTX *ctx;
    raft_id id;
    char address[256];
    uv_tcp_t listener;
    bool listening;
    bool closing;
    raft_uv_accept_cb accept_cb;
    raft_uv_transport_close_cb close_cb;
    struct raft_uv_transport *t;
    struct conn *conns;
    unsigned handshaking;
    unsigned open_handles; /* listener */
};

static void logf_(struct impl *im, int level, const char *fmt, ...) CMN_PRINTF(3, 4);
static void logf_(struct impl *im, int level, const char *fmt, ...)
{
    if (im->cfg.log == NULL)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    im->cfg.log(im->cfg.cb_ctx, level, msg);
}

raft_id rft_tag_to_id(const char *tag)
{
    raft_id id = 0;
    size_t n = strlen(tag);
    if (n == 0 || n > 4)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (tag[i] < 'A' || tag[i] > 'Z')
            return 0;
        id = id * 26 + (raft_id)(tag[i] - 'A' + 1);
    }
    return id;
}

void rft_id_to_tag(raft_id id, char out[8])
{
    char tmp[8];
    int n = 0;
    while (id > 0 && n < 7) {
        id--;
        tmp[n++] = (char)('A' + id % 26);
        id /= 26;
    }
    for (int i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    out[n] = '\0';
}

static void thumb_of(X509 *cert, char out[CA_THUMBPRINT_SIZE])
{
    char upper[CA_THUMBPRINT_SIZE];
    out[0] = '\0';
    if (ca_thumbprint(cert, upper) == 0) {
        memcpy(out, upper, CA_THUMBPRINT_SIZE);
        cmn_ascii_lower(out);
    }
}

/* ---- connection lifecycle ---- */

static void maybe_free(struct conn *c);

static void list_remove(struct conn *c)
{
    struct impl *im = c->impl;
    if (c->prev)
        c->prev->next = c->next;
    else if (im->conns == c)
        im->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->next = c->prev = NULL;
}

static void maybe_finish_close(struct impl *im)
{
    if (!im->closing || im->conns != NULL || im->open_handles > 0)
        return;
    raft_uv_transport_close_cb cb = im->close_cb;
    im->close_cb = NULL;
    if (cb)
        cb(im->t);
}

static void fire_connect(struct conn *c, struct uv_stream_s *stream, int status)
{
    struct raft_uv_connect *req = c->req;
    c->req = NULL;
    if (req)
        req->cb(req, stream, status);
}

static void tls_closed(struct tls_conn *tls)
{
    struct conn *c = tls->data;
    c->tls_closed = true;
    maybe_free(c);
}

static void local_closed(uv_handle_t *h)
{
    struct conn *c = h->data;
    c->local_closed = true;
    maybe_free(c);
}

static void maybe_free(struct conn *c)
{
    if (!c->tls_closed || !c->local_closed)
        return;
    struct impl *im = c->impl;
    list_remove(c);
    free(c);
    maybe_finish_close(im);
}

/* A pending inbound handshake is counted once, when accepted, and uncounted here once,
 * however it ends: completed, failed, timed out, evicted or closed with the transport. */
static void handshake_over(struct conn *c)
{
    if (!c->counted)
        return;
    c->counted = false;
    c->impl->handshaking--;
}

/* Tears both sides down; an outbound connect still pending gets RAFT_NOCONNECTION (or
 * RAFT_CANCELED when the transport is closing). */
static void conn_close(struct conn *c)
{
    handshake_over(c);
    if (c->req)
        fire_connect(c, NULL, c->impl->closing ? RAFT_CANCELED : RAFT_NOCONNECTION);
    if (c->is_chan && c->chan_open) {
        c->chan_open = false;
        if (c->chan.on_event)
            c->chan.on_event(&c->chan, CMN_EIO);
    }
    if (c->tls.state != TLS_CLOSING)
        tls_conn_close(&c->tls, tls_closed);
    if (c->local_open) {
        c->local_open = false;
        uv_close((uv_handle_t *)&c->local, local_closed);
    } else if (!c->local_closed) {
        c->local_closed = true;
    }
    maybe_free(c);
}

static struct conn *conn_new(struct impl *im, enum conn_kind kind)
{
    struct conn *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->impl = im;
    c->kind = kind;
    c->next = im->conns;
    if (im->conns)
        im->conns->prev = c;
    im->conns = c;
    return c;
}

/* ---- pumping between Raft's socketpair end and TLS ---- */

static void local_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static char slab[65536];
    (void)h;
    (void)suggested;
    *buf = uv_buf_init(slab, sizeof slab);
}

static void local_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct conn *c = s->data;
    if (n == 0)
        return;
    if (n < 0 || tls_conn_write(&c->tls, buf->base, (size_t)n) != 0) {
        conn_close(c); /* Raft closed its end, or TLS is gone */
        return;
    }
    if (tls_conn_backlog(&c->tls) > TLS_HIGH_WATER)
        uv_read_stop((uv_stream_t *)&c->local);
}

static void tls_drained(struct tls_conn *tls)
{
    struct conn *c = tls->data;
    if (c->local_open)
        uv_read_start((uv_stream_t *)&c->local, local_alloc, local_read);
}

struct lwrite {
    uv_write_t req;
    struct conn *conn;
    char data[];
};

static void local_write_cb(uv_write_t *req, int status)
{
    struct lwrite *w = (struct lwrite *)req;
    struct conn *c = w->conn;
    free(w);
    if (status == 0 && c->local_open &&
        uv_stream_get_write_queue_size((uv_stream_t *)&c->local) < TLS_HIGH_WATER / 4)
        tls_conn_pause(&c->tls, false);
}

static void to_local(struct conn *c, const uint8_t *data, size_t len)
{
    if (!c->local_open || len == 0)
        return;
    struct lwrite *w = malloc(sizeof *w + len);
    if (w == NULL) {
        conn_close(c);
        return;
    }
    w->conn = c;
    memcpy(w->data, data, len);
    uv_buf_t b = uv_buf_init(w->data, (unsigned)len);
    if (uv_write(&w->req, (uv_stream_t *)&c->local, &b, 1, local_write_cb) != 0) {
        free(w);
        conn_close(c);
        return;
    }
    if (uv_stream_get_write_queue_size((uv_stream_t *)&c->local) > TLS_HIGH_WATER)
        tls_conn_pause(&c->tls, true);
}

/* Creates the socketpair: our end in c->local, Raft's end returned (raft_malloc'd). */
static uv_pipe_t *make_pair(struct conn *c)
{
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
        return NULL;
    uv_loop_t *loop = c->impl->cfg.loop;
    uv_pipe_t *theirs = raft_malloc(sizeof *theirs);
    if (theirs == NULL) {
        close(fds[0]);
        close(fds[1]);
        return NULL;
    }
    uv_pipe_init(loop, &c->local, 0);
    c->local.data = c;
    c->local_open = true;
    uv_pipe_open(&c->local, fds[0]);
    uv_pipe_init(loop, theirs, 0);
    uv_pipe_open(theirs, fds[1]);
    uv_read_start((uv_stream_t *)&c->local, local_alloc, local_read);
    return theirs;
}

static void tls_data(struct tls_conn *tls, const uint8_t *data, size_t len);

/* ---- authentication ---- */

static int check_peer(struct conn *c, raft_id id)
{
    struct impl *im = c->impl;
    X509 *cert = tls_conn_peer_cert(&c->tls);
    char why[CMN_ERRMSG_SIZE] = "no certificate";
    char tag[8];
    rft_id_to_tag(id, tag);
    int rv = cert ? im->cfg.trust(im->cfg.cb_ctx, cert, id, why) : CMN_EDENIED;
    if (cert)
        thumb_of(cert, c->thumb);
    X509_free(cert);
    if (rv != 0)
        logf_(im, CMN_LOG_WARN, "refused %s peer claiming node %s: %s",
              c->kind == CONN_INBOUND ? "inbound" : "outbound", tag, why);
    return rv;
}

/* Inbound: the preamble decides what the connection is for. */
static void inbound_preamble(struct conn *c)
{
    struct impl *im = c->impl;
    if (c->pre_len < 16)
        return;
    bool raft = memcmp(c->pre, RFT_PREAMBLE_RAFT, 8) == 0;
    bool fwd = memcmp(c->pre, RFT_PREAMBLE_FWD, 8) == 0;
    if (!raft && !fwd) {
        logf_(im, CMN_LOG_WARN, "refused inbound connection: unknown preamble");
        conn_close(c);
        return;
    }
    raft_id id = cmn_be64_get(c->pre + 8);
    size_t need = 16;
    uint64_t alen = 0;
    if (raft) {
        if (c->pre_len < 24)
            return;
        alen = cmn_be64_get(c->pre + 16);
        if (alen == 0 || alen > PREAMBLE_MAX - 24) {
            logf_(im, CMN_LOG_WARN, "refused inbound connection: bad address length");
            conn_close(c);
            return;
        }
        need = 24 + alen;
        if (c->pre_len < need)
            return;
    }
    if (check_peer(c, id) != 0) {
        conn_close(c);
        return;
    }
    c->peer_id = id;
    const uint8_t *rest = c->pre + need;
    size_t rest_len = c->pre_len - need;
    if (fwd) {
        if (im->cfg.forward_accept == NULL || im->closing) {
            conn_close(c);
            return;
        }
        c->is_chan = true;
        c->chan_open = true;
        c->chan.peer = id;
        tls_conn_set_idle(&c->tls, 0);
        im->cfg.forward_accept(im->cfg.cb_ctx, &c->chan);
        if (c->chan_open && rest_len && c->chan.on_data)
            c->chan.on_data(&c->chan, rest, rest_len);
        return;
    }
    if (im->closing || im->accept_cb == NULL) {
        conn_close(c);
        return;
    }
    char address[PREAMBLE_MAX];
    memcpy(address, c->pre + 24, alen);
    address[alen] = '\0';
    uv_pipe_t *theirs = make_pair(c);
    if (theirs == NULL) {
        conn_close(c);
        return;
    }
    c->pre_len = 0;
    im->accept_cb(im->t, id, address, (struct uv_stream_s *)theirs);
    to_local(c, rest, rest_len);
}

static void tls_data(struct tls_conn *tls, const uint8_t *data, size_t len)
{
    struct conn *c = tls->data;
    if (c->local_open) {
        to_local(c, data, len);
        return;
    }
    if (c->is_chan) {
        if (c->chan_open && c->peer_id != 0 && c->chan.on_data)
            c->chan.on_data(&c->chan, data, len);
        return;
    }
    if (c->kind != CONN_INBOUND || c->peer_id != 0)
        return; /* outbound streams are write-only for Raft */
    size_t room = sizeof c->pre - c->pre_len;
    size_t take = len < room ? len : room;
    memcpy(c->pre + c->pre_len, data, take);
    c->pre_len += take;
    if (take < len && c->pre_len == sizeof c->pre) {
        /* a preamble never needs the whole buffer: bytes past it belong to Raft */
    }
    inbound_preamble(c);
    if (take < len && c->local_open)
        to_local(c, data + take, len - take);
}

static void tls_event(struct tls_conn *tls, int status)
{
    struct conn *c = tls->data;
    struct impl *im = c->impl;
    if (status != 0) {
        if (c->kind == CONN_OUTBOUND && c->req) {
            char tag[8];
            rft_id_to_tag(c->want_id, tag);
            logf_(im, CMN_LOG_DEBUG, "connection to node %s failed: %s", tag, tls->errmsg);
        }
        conn_close(c);
        return;
    }
    if (c->kind == CONN_INBOUND) {
        handshake_over(c);
        tls_conn_set_idle(tls, RFT_HANDSHAKE_MS); /* until the preamble is complete */
        return;
    }
    /* Outbound: the server must be the node Raft asked for. */
    if (check_peer(c, c->want_id) != 0) {
        conn_close(c);
        return;
    }
    c->peer_id = c->want_id;
    if (c->is_chan) {
        uint8_t pre[16];
        memcpy(pre, RFT_PREAMBLE_FWD, 8);
        cmn_be64_put(pre + 8, im->id);
        if (tls_conn_write(tls, pre, sizeof pre) != 0) {
            conn_close(c);
            return;
        }
        c->chan.peer = c->want_id;
        if (c->chan.on_event)
            c->chan.on_event(&c->chan, 0);
        return;
    }
    size_t alen = strlen(im->address);
    uint8_t pre[PREAMBLE_MAX];
    memcpy(pre, RFT_PREAMBLE_RAFT, 8);
    cmn_be64_put(pre + 8, im->id);
    cmn_be64_put(pre + 16, alen);
    memcpy(pre + 24, im->address, alen);
    if (tls_conn_write(tls, pre, 24 + alen) != 0) {
        conn_close(c);
        return;
    }
    uv_pipe_t *theirs = make_pair(c);
    if (theirs == NULL) {
        conn_close(c);
        return;
    }
    fire_connect(c, (struct uv_stream_s *)theirs, 0);
}

/* ---- raft_uv_transport methods ---- */

static int t_init(struct raft_uv_transport *t, raft_id id, const char *address)
{
    struct impl *im = t->impl;
    im->id = id;
    snprintf(im->address, sizeof im->address, "%s", address);
    return 0;
}

static void on_connection(uv_stream_t *server, int status)
{
    struct impl *im = server->data;
    if (status != 0 || im->closing)
        return;
    struct conn *c = conn_new(im, CONN_INBOUND);
    if (c == NULL)
        return;
    if (tls_conn_init(&c->tls, im->cfg.loop, im->ctx, true, tls_data, tls_event) != 0) {
        list_remove(c);
        free(c);
        return;
    }
    c->tls.data = c;
    c->tls.on_drain = tls_drained;
    c->local_closed = true; /* no local end yet */
    if (uv_accept(server, (uv_stream_t *)&c->tls.tcp) != 0) {
        conn_close(c);
        return;
    }
    if (im->handshaking >= RFT_MAX_HANDSHAKES) {
        /* The oldest pending handshake gives way: a peer completes its handshake in
         * milliseconds, so sockets that hold slots without doing so cannot keep peers out. */
        struct conn *oldest = NULL;
        for (struct conn *o = im->conns; o; o = o->next)
            if (o->counted)
                oldest = o; /* the list is newest first */
        if (oldest == NULL) {
            conn_close(c);
            return;
        }
        logf_(im, CMN_LOG_DEBUG, "%u handshakes pending: the oldest gives way", im->handshaking);
        conn_close(oldest);
    }
    c->counted = true;
    im->handshaking++;
    if (tls_conn_start(&c->tls, RFT_HANDSHAKE_MS) != 0)
        conn_close(c);
}

static int t_listen(struct raft_uv_transport *t, raft_uv_accept_cb cb)
{
    struct impl *im = t->impl;
    struct sockaddr_storage addr;
    char err[CMN_ERRMSG_SIZE];
    if (tls_parse_addr(im->address, &addr, err) != 0) {
        snprintf(t->errmsg, sizeof t->errmsg, "%s", err);
        return RAFT_INVALID;
    }
    im->accept_cb = cb;
    uv_tcp_init(im->cfg.loop, &im->listener);
    im->listener.data = im;
    im->open_handles++;
    im->listening = true;
    int rv = uv_tcp_bind(&im->listener, (struct sockaddr *)&addr, 0);
    if (rv == 0)
        rv = uv_listen((uv_stream_t *)&im->listener, 128, on_connection);
    if (rv != 0) {
        snprintf(t->errmsg, sizeof t->errmsg, "listen on %.200s: %s", im->address, uv_strerror(rv));
        return RAFT_IOERR;
    }
    return 0;
}

/* Starts an outbound TLS connection to node id; NULL on a synchronous failure. */
static struct conn *dial(struct impl *im, raft_id id, const char *address, char *errmsg)
{
    struct sockaddr_storage addr;
    if (im->closing || tls_parse_addr(address, &addr, errmsg) != 0)
        return NULL;
    struct conn *c = conn_new(im, CONN_OUTBOUND);
    if (c == NULL)
        return NULL;
    if (tls_conn_init(&c->tls, im->cfg.loop, im->ctx, false, tls_data, tls_event) != 0) {
        list_remove(c);
        free(c);
        return NULL;
    }
    c->tls.data = c;
    c->tls.on_drain = tls_drained;
    c->local_closed = true;
    c->want_id = id;
    if (tls_conn_connect(&c->tls, (struct sockaddr *)&addr, RFT_HANDSHAKE_MS) != 0) {
        snprintf(errmsg, CMN_ERRMSG_SIZE, "%s", c->tls.errmsg);
        conn_close(c);
        return NULL;
    }
    return c;
}

static int t_connect(struct raft_uv_transport *t, struct raft_uv_connect *req, raft_id id,
                     const char *address, raft_uv_connect_cb cb)
{
    struct impl *im = t->impl;
    if (im->closing)
        return RAFT_CANCELED;
    req->cb = cb;
    struct conn *c = dial(im, id, address, t->errmsg);
    if (c == NULL)
        return RAFT_NOCONNECTION; /* synchronous failure: never reported through cb */
    c->req = req;
    return 0;
}

struct rft_chan *rft_chan_open(struct raft_uv_transport *t, raft_id id, const char *address,
                               rft_chan_data_cb on_data, rft_chan_event_cb on_event, void *data)
{
    struct impl *im = t->impl;
    char err[CMN_ERRMSG_SIZE];
    struct conn *c = dial(im, id, address, err);
    if (c == NULL)
        return NULL;
    c->is_chan = true;
    c->chan_open = true;
    c->chan.data = data;
    c->chan.on_data = on_data;
    c->chan.on_event = on_event;
    return &c->chan;
}

static struct conn *chan_conn(const struct rft_chan *ch)
{
    return (struct conn *)((char *)ch - offsetof(struct conn, chan));
}

int rft_chan_write(struct rft_chan *ch, const void *data, size_t len)
{
    return tls_conn_write(&chan_conn(ch)->tls, data, len);
}

size_t rft_chan_backlog(const struct rft_chan *ch)
{
    return tls_conn_backlog(&chan_conn(ch)->tls);
}

void rft_chan_close(struct rft_chan *ch)
{
    struct conn *c = chan_conn(ch);
    c->chan_open = false;
    conn_close(c);
}

static void listener_closed(uv_handle_t *h)
{
    struct impl *im = h->data;
    im->open_handles--;
    maybe_finish_close(im);
}

static void t_close(struct raft_uv_transport *t, raft_uv_transport_close_cb cb)
{
    struct impl *im = t->impl;
    im->closing = true;
    im->close_cb = cb;
    if (im->listening) {
        im->listening = false;
        uv_close((uv_handle_t *)&im->listener, listener_closed);
    }
    struct conn *c = im->conns;
    while (c) {
        struct conn *next = c->next;
        conn_close(c);
        c = next;
    }
    maybe_finish_close(im);
}

int rft_transport_init(struct raft_uv_transport *t, const struct rft_transport_config *cfg)
{
    struct impl *im = calloc(1, sizeof *im);
    if (im == NULL)
        return CMN_ENOMEM;
    im->cfg = *cfg;
    im->ctx = cfg->ctx;
    im->t = t;
    t->impl = im;
    t->init = t_init;
    t->listen = t_listen;
    t->connect = t_connect;
    t->close = t_close;
    return 0;
}

void rft_transport_fini(struct raft_uv_transport *t)
{
    free(t->impl);
    t->impl = NULL;
}

void rft_transport_set_ctx(struct raft_uv_transport *t, SSL_CTX *ctx)
{
    struct impl *im = t->impl;
    im->ctx = ctx;
}

void rft_transport_drop_peer(struct raft_uv_transport *t, const char *thumbprint_lower)
{
    struct impl *im = t->impl;
    struct conn *c = im->conns;
    while (c) {
        struct conn *next = c->next;
        if (strcmp(c->thumb, thumbprint_lower) == 0) {
            logf_(im, CMN_LOG_WARN, "closing connection of revoked node certificate %s",
                  thumbprint_lower);
            conn_close(c);
        }
        c = next;
    }
}
