/* HTTPS/1.1 server: TLS connections, http-parser, responses, limits. */
#include "node/http.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <http_parser.h>
#include <jansson.h>

#include "common/log.h"
#include "raft/tls.h"

struct http_server {
    uv_loop_t *loop;
    SSL_CTX *ctx;
    uv_tcp_t listener;
    bool listener_open;
    bool closing;
    http_handler_fn handler;
    http_conn_gone_fn gone;
    void *cb_ctx;
    struct http_conn *conns;
    unsigned handshaking;
    void (*close_cb)(void *ctx);
    void *close_ctx;
};

enum hdr { H_NONE, H_CONTENT_TYPE, H_ACCEPT, H_COOKIE, H_ORIGIN, H_EXPECT, H_OTHER };

struct http_conn {
    struct tls_conn tls;
    uv_timer_t deadline; /* HTTP_REQUEST_MS from a request's first byte */
    struct http_server *s;
    struct http_reqparser rp;
    void *auth;
    X509 *peer; /* the client certificate from the handshake */
    bool counted;     /* counted in s->handshaking until its handshake ends, either way */
    bool in_request;  /* bytes of a request arrived */
    bool busy;        /* a complete request is being handled */
    bool close_after; /* no keep-alive after this response */
    bool dead;        /* TLS gone or closing */
    bool handles_closed;
    unsigned open_handles;
    struct cmn_buf pending; /* bytes that arrived while busy (secret, like a body) */
    struct http_conn *next, *prev;
};

/* ---- lifecycle ---- */

static void maybe_finish_server_close(struct http_server *s)
{
    if (!s->closing || s->listener_open || s->conns)
        return;
    void (*cb)(void *) = s->close_cb;
    s->close_cb = NULL;
    if (cb)
        cb(s->close_ctx);
}

static void conn_free_maybe(struct http_conn *c)
{
    if (!c->handles_closed || c->busy)
        return;
    struct http_server *s = c->s;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (s->gone && c->auth)
        s->gone(s->cb_ctx, c->auth);
    http_reqparser_fini(&c->rp);
    cmn_buf_fini(&c->pending);
    X509_free(c->peer);
    free(c);
    maybe_finish_server_close(s);
}

static void handle_down(struct http_conn *c)
{
    if (--c->open_handles > 0)
        return;
    c->handles_closed = true;
    conn_free_maybe(c);
}

static void deadline_closed(uv_handle_t *h)
{
    handle_down(h->data);
}

static void tls_closed(struct tls_conn *t)
{
    handle_down(t->data);
}

static void handshake_over(struct http_conn *c)
{
    if (c->counted) {
        c->counted = false;
        c->s->handshaking--;
    }
}

static void conn_close(struct http_conn *c)
{
    if (c->dead)
        return;
    c->dead = true;
    handshake_over(c);
    uv_close((uv_handle_t *)&c->deadline, deadline_closed);
    tls_conn_close_graceful(&c->tls, tls_closed, 2000);
}

/* ---- responses ---- */

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 302: return "Found";
    case 307: return "Temporary Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 428: return "Precondition Required";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Unknown";
    }
}

static void feed(struct http_conn *c, const uint8_t *data, size_t len);

static void send_raw(struct http_conn *c, int status, const char *content_type, const void *body,
                     size_t len, const char *extra)
{
    if (c->dead)
        return;
    char head[1024];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nServer: Corvid\r\nContent-Length: %zu\r\n"
                     "Connection: %s\r\n%s%s%s%s\r\n",
                     status, reason(status), len, c->close_after ? "close" : "keep-alive",
                     content_type ? "Content-Type: " : "", content_type ? content_type : "",
                     content_type ? "\r\n" : "", extra ? extra : "");
    if (n < 0 || (size_t)n >= sizeof head || tls_conn_write(&c->tls, head, (size_t)n) != 0 ||
        (len && tls_conn_write(&c->tls, body, len) != 0))
        c->close_after = true;
}

static void request_done(struct http_conn *c)
{
    c->busy = false;
    c->in_request = false;
    http_reqparser_next(&c->rp);
    if (c->dead) {
        conn_free_maybe(c);
        return;
    }
    uv_timer_stop(&c->deadline);
    if (c->close_after) {
        conn_close(c);
        return;
    }
    if (c->pending.len) {
        struct cmn_buf rest = c->pending;
        cmn_buf_init(&c->pending, true);
        feed(c, rest.data, rest.len);
        cmn_buf_fini(&rest);
    }
}

void http_respond(struct http_request *req, int status, const char *content_type,
                  const void *body, size_t len, const char *extra_headers)
{
    struct http_conn *c = req->conn;
    send_raw(c, status, content_type, body, len, extra_headers);
    request_done(c);
}

void http_respond_error(struct http_request *req, int status, const char *type, const char *fmt,
                        ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_t *o = json_pack("{s:s, s:s}", "Type", type, "Message", msg);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    http_respond(req, status, "application/json; charset=utf-8", text ? text : "{}",
                 text ? strlen(text) : 2, NULL);
    free(text);
    json_decref(o);
}

void http_close_after(struct http_request *req)
{
    req->conn->close_after = true;
}

/* An error found while parsing: answer and close. */
static void protocol_error(struct http_conn *c, int status, const char *msg)
{
    c->close_after = true;
    json_t *o = json_pack("{s:s, s:s}", "Type", "BadRequest", "Message", msg);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    send_raw(c, status, "application/json; charset=utf-8", text ? text : "{}",
             text ? strlen(text) : 2, NULL);
    free(text);
    json_decref(o);
    conn_close(c);
}

/* ---- parsing ---- */

static int percent_decode(const char *in, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = in[i];
        if (ch == '%') {
            if (i + 2 >= n || !isxdigit((unsigned char)in[i + 1]) ||
                !isxdigit((unsigned char)in[i + 2]))
                return -1;
            char hex[3] = {in[i + 1], in[i + 2], 0};
            ch = (char)strtol(hex, NULL, 16);
            i += 2;
            if (ch == '\0')
                return -1;
        } else if (ch == '+') {
            ch = ' ';
        }
        if (o + 1 >= cap)
            return -1;
        out[o++] = ch;
    }
    out[o] = '\0';
    return 0;
}

static int on_message_begin(http_parser *p)
{
    struct http_reqparser *rp = p->data;
    struct http_request *r = &rp->req;
    struct http_conn *conn = r->conn;
    X509 *peer = r->peer;
    void *auth = r->auth;
    cmn_buf_fini(&r->body);
    memset(r, 0, sizeof *r);
    r->conn = conn;
    r->peer = peer;
    r->auth = auth;
    cmn_buf_init(&r->body, true);
    rp->cur = H_NONE;
    rp->field_len = 0;
    rp->header_bytes = 0;
    return 0;
}

static int count_header(struct http_reqparser *rp, size_t len)
{
    rp->header_bytes += len;
    if (rp->header_bytes > HTTP_MAX_HEADER_BYTES) {
        rp->status = 431;
        rp->error = "The request headers are larger than 16 KiB";
        return -1;
    }
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    struct http_reqparser *rp = p->data;
    if (count_header(rp, len) != 0)
        return -1;
    size_t have = strlen(rp->req.query); /* the raw URL is gathered in query first */
    if (have + len >= sizeof rp->req.query) {
        rp->status = 431;
        rp->error = "The request URL is too long";
        return -1;
    }
    memcpy(rp->req.query + have, at, len);
    rp->req.query[have + len] = '\0';
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    struct http_reqparser *rp = p->data;
    if (count_header(rp, len) != 0)
        return -1;
    if (rp->cur != H_NONE) /* a value came before: this is a new field */
        rp->field_len = 0;
    rp->cur = H_NONE;
    size_t room = sizeof rp->field - 1 - rp->field_len;
    size_t take = len < room ? len : room;
    memcpy(rp->field + rp->field_len, at, take);
    rp->field_len += take;
    rp->field[rp->field_len] = '\0';
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    struct http_reqparser *rp = p->data;
    struct http_request *r = &rp->req;
    if (count_header(rp, len) != 0)
        return -1;
    if (rp->cur == H_NONE) {
        rp->cur = strcasecmp(rp->field, "Content-Type") == 0 ? H_CONTENT_TYPE
                  : strcasecmp(rp->field, "Accept") == 0     ? H_ACCEPT
                  : strcasecmp(rp->field, "Cookie") == 0     ? H_COOKIE
                  : strcasecmp(rp->field, "Origin") == 0     ? H_ORIGIN
                  : strcasecmp(rp->field, "Expect") == 0     ? H_EXPECT
                                                             : H_OTHER;
        rp->field_len = 0;
    }
    char *dst = NULL;
    size_t cap = 0;
    switch (rp->cur) {
    case H_CONTENT_TYPE: dst = r->content_type; cap = sizeof r->content_type; break;
    case H_ACCEPT: dst = r->accept; cap = sizeof r->accept; break;
    case H_COOKIE: dst = r->cookie; cap = sizeof r->cookie; break;
    case H_ORIGIN: dst = r->origin; cap = sizeof r->origin; break;
    case H_EXPECT:
        if (len >= 12 && strncasecmp(at, "100-continue", 12) == 0)
            rp->expect_continue = true;
        return 0;
    default: return 0;
    }
    size_t have = strlen(dst);
    size_t take = len < cap - 1 - have ? len : cap - 1 - have;
    memcpy(dst + have, at, take);
    dst[have + take] = '\0';
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    struct http_reqparser *rp = p->data;
    struct http_request *r = &rp->req;
    /* 1 and 2 mean "no body" to http-parser: errors must be another value */
    if (p->content_length != ULLONG_MAX && p->content_length > HTTP_MAX_BODY_BYTES) {
        rp->status = 413;
        rp->error = "The request body is larger than 4 MiB";
        return -1;
    }
    /* Split the URL into a decoded path and the raw query. */
    struct http_parser_url u;
    char url[sizeof r->query];
    snprintf(url, sizeof url, "%s", r->query);
    r->query[0] = '\0';
    http_parser_url_init(&u);
    if (http_parser_parse_url(url, strlen(url), 0, &u) != 0 || !(u.field_set & (1 << UF_PATH)) ||
        percent_decode(url + u.field_data[UF_PATH].off, u.field_data[UF_PATH].len, r->path,
                       sizeof r->path) != 0) {
        rp->status = 400;
        rp->error = "The request URL is not valid";
        return -1;
    }
    if (u.field_set & (1 << UF_QUERY))
        snprintf(r->query, sizeof r->query, "%.*s", (int)u.field_data[UF_QUERY].len,
                 url + u.field_data[UF_QUERY].off);
    r->method = p->method;
    r->method_name = http_method_str((enum http_method)p->method);
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct http_reqparser *rp = p->data;
    if (rp->req.body.len + len > HTTP_MAX_BODY_BYTES) {
        rp->status = 413;
        rp->error = "The request body is larger than 4 MiB";
        return -1;
    }
    if (cmn_buf_append(&rp->req.body, at, len) != 0) {
        rp->status = 500;
        rp->error = "out of memory";
        return -1;
    }
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct http_reqparser *rp = p->data;
    rp->complete = true;
    rp->keep_alive = http_should_keep_alive(p);
    http_parser_pause(p, 1); /* one request at a time: what follows waits */
    return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

void http_reqparser_init(struct http_reqparser *rp)
{
    memset(rp, 0, sizeof *rp);
    http_parser_init(&rp->parser, HTTP_REQUEST);
    rp->parser.data = rp;
    cmn_buf_init(&rp->req.body, true);
}

int http_reqparser_feed(struct http_reqparser *rp, const uint8_t *data, size_t len, size_t *used)
{
    *used = 0;
    if (rp->status || rp->complete)
        return rp->status;
    size_t n = http_parser_execute(&rp->parser, &settings, (const char *)data, len);
    enum http_errno e = HTTP_PARSER_ERRNO(&rp->parser);
    *used = n;
    if (e == HPE_OK || (e == HPE_PAUSED && rp->complete))
        return 0;
    if (!rp->status) {
        rp->status = 400;
        rp->error = http_errno_description(e);
    }
    return rp->status;
}

void http_reqparser_next(struct http_reqparser *rp)
{
    rp->complete = false;
    cmn_buf_fini(&rp->req.body);
    cmn_buf_init(&rp->req.body, true);
    http_parser_pause(&rp->parser, 0);
}

void http_reqparser_fini(struct http_reqparser *rp)
{
    cmn_buf_fini(&rp->req.body);
}

static void deadline_cb(uv_timer_t *t)
{
    struct http_conn *c = t->data;
    if (c->busy || c->dead)
        return; /* the node is working on it: its own timeouts answer */
    protocol_error(c, 408, "The request did not arrive in time");
}

static void feed(struct http_conn *c, const uint8_t *data, size_t len)
{
    while (len > 0 && !c->dead) {
        if (c->busy) {
            if (c->pending.len + len > HTTP_MAX_BODY_BYTES + HTTP_MAX_HEADER_BYTES) {
                protocol_error(c, 413, "Too much pipelined data");
                return;
            }
            if (cmn_buf_append(&c->pending, data, len) != 0)
                conn_close(c);
            return;
        }
        if (!c->in_request) {
            c->in_request = true;
            uv_timer_start(&c->deadline, deadline_cb, HTTP_REQUEST_MS, 0);
        }
        size_t n;
        int status = http_reqparser_feed(&c->rp, data, len, &n);
        if (c->rp.expect_continue) {
            /* curl waits a second for this before sending a body larger than 1 KiB */
            static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
            c->rp.expect_continue = false;
            CMN_IGNORE(tls_conn_write(&c->tls, cont, sizeof cont - 1));
        }
        if (status != 0) {
            protocol_error(c, status, c->rp.error);
            return;
        }
        if (c->rp.complete) {
            /* a complete request: hand it over, keep what follows */
            c->busy = true;
            c->close_after = !c->rp.keep_alive;
            c->rp.req.started_ms = uv_now(c->s->loop);
            if (n < len && cmn_buf_append(&c->pending, data + n, len - n) != 0) {
                conn_close(c);
                return;
            }
            c->s->handler(c->s->cb_ctx, &c->rp.req);
            return;
        }
        data += n;
        len -= n;
    }
}

static void tls_data(struct tls_conn *t, const uint8_t *data, size_t len)
{
    feed(t->data, data, len);
}

static void tls_event(struct tls_conn *t, int status)
{
    struct http_conn *c = t->data;
    if (status != 0) {
        CMN_DEBUG("HTTP-CONN", "connection ended: %s", t->errmsg);
        conn_close(c);
        return;
    }
    handshake_over(c);
    c->peer = tls_conn_peer_cert(t);
    c->rp.req.peer = c->peer;
}

static void on_connection(uv_stream_t *server, int status)
{
    struct http_server *s = server->data;
    if (status != 0 || s->closing)
        return;
    struct http_conn *c = calloc(1, sizeof *c);
    if (c == NULL)
        return;
    c->s = s;
    if (tls_conn_init(&c->tls, s->loop, s->ctx, true, tls_data, tls_event) != 0) {
        free(c);
        return;
    }
    c->tls.data = c;
    c->tls.idle_ms = HTTP_IDLE_MS;
    uv_timer_init(s->loop, &c->deadline);
    c->deadline.data = c;
    c->open_handles = 2; /* the TLS connection (its own two handles) and the deadline timer */
    http_reqparser_init(&c->rp);
    c->rp.req.conn = c;
    cmn_buf_init(&c->pending, true);
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    if (uv_accept(server, (uv_stream_t *)&c->tls.tcp) != 0 || s->handshaking > 256) {
        conn_close(c);
        return;
    }
    s->handshaking++;
    c->counted = true;
    if (tls_conn_start(&c->tls, HTTP_HANDSHAKE_MS) != 0)
        conn_close(c);
}

/* ---- server ---- */

int http_server_start(uv_loop_t *loop, SSL_CTX *ctx, const char *hostport,
                      http_handler_fn handler, http_conn_gone_fn gone, void *cb_ctx,
                      struct http_server **out, char *errmsg)
{
    struct sockaddr_storage addr;
    int rv = tls_parse_addr(hostport, &addr, errmsg);
    if (rv != 0)
        return rv;
    struct http_server *s = calloc(1, sizeof *s);
    if (s == NULL)
        return CMN_ENOMEM;
    s->loop = loop;
    s->ctx = ctx;
    s->handler = handler;
    s->gone = gone;
    s->cb_ctx = cb_ctx;
    uv_tcp_init(loop, &s->listener);
    s->listener.data = s;
    s->listener_open = true;
    int e = uv_tcp_bind(&s->listener, (struct sockaddr *)&addr, 0);
    if (e == 0)
        e = uv_listen((uv_stream_t *)&s->listener, 511, on_connection);
    *out = s;
    if (e != 0)
        return cmn_fail(errmsg, CMN_EIO, "cannot listen on %s: %s", hostport, uv_strerror(e));
    return 0;
}

static void listener_closed(uv_handle_t *h)
{
    struct http_server *s = h->data;
    s->listener_open = false;
    maybe_finish_server_close(s);
}

void http_server_close(struct http_server *s, void (*cb)(void *ctx), void *ctx)
{
    s->closing = true;
    s->close_cb = cb;
    s->close_ctx = ctx;
    uv_close((uv_handle_t *)&s->listener, listener_closed);
    for (struct http_conn *c = s->conns; c; c = c->next)
        conn_close(c);
}

void http_server_free(struct http_server *s)
{
    free(s);
}

void http_server_set_ctx(struct http_server *s, SSL_CTX *ctx)
{
    s->ctx = ctx;
}

void **http_conn_auth(struct http_conn *c)
{
    return &c->auth;
}

void http_server_drop(struct http_server *s, bool (*match)(void *ctx, void *auth), void *ctx)
{
    for (struct http_conn *c = s->conns; c; c = c->next) {
        if (c->dead || c->auth == NULL || !match(ctx, c->auth))
            continue;
        if (c->busy)
            c->close_after = true;
        else
            conn_close(c);
    }
}

/* ---- helpers for handlers ---- */

int http_query(const struct http_request *req, const char *name, char *buf, size_t cap,
               int *count)
{
    size_t nlen = strlen(name);
    int found = 0, rv = 0;
    const char *p = req->query;
    while (*p) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        size_t klen = eq ? (size_t)(eq - p) : len;
        char key[128];
        if (klen < sizeof key && percent_decode(p, klen, key, sizeof key) == 0 &&
            strcasecmp(key, name) == 0 && strlen(key) == nlen) {
            found++;
            if (found == 1) {
                const char *v = eq ? eq + 1 : p + len;
                size_t vlen = eq ? len - klen - 1 : 0;
                rv = percent_decode(v, vlen, buf, cap) == 0 ? 1 : -1;
            }
        }
        p += len;
        if (*p == '&')
            p++;
    }
    if (count)
        *count = found;
    return rv;
}

bool http_query_bool(const struct http_request *req, const char *name, bool dflt)
{
    char v[16];
    if (http_query(req, name, v, sizeof v, NULL) != 1)
        return dflt;
    if (strcasecmp(v, "true") == 0 || strcmp(v, "1") == 0)
        return true;
    if (strcasecmp(v, "false") == 0 || strcmp(v, "0") == 0)
        return false;
    return dflt;
}

void http_urlencode(const char *s, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (; *s && o + 4 < cap; s++) {
        unsigned char ch = (unsigned char)*s;
        if (isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~') {
            out[o++] = (char)ch;
        } else {
            out[o++] = '%';
            out[o++] = hex[ch >> 4];
            out[o++] = hex[ch & 15];
        }
    }
    out[o] = '\0';
}
