/* HTTPS/1.1 server: TLS connections, http-parser, responses, limits. */
#include "node/http.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/resource.h>

#include <http_parser.h>
#include <jansson.h>

#include "common/log.h"
#include "raft/tls.h"

/* Descriptors kept for everything but HTTPS connections (RocksDB's files, Raft, the admin
 * channel) when the process limit is what bounds the connections. */
#define FD_RESERVE 1024

struct http_server {
    uv_loop_t *loop;
    SSL_CTX *ctx;
    uv_tcp_t listener;
    bool listener_open;
    bool closing;
    http_head_fn head;
    http_handler_fn handler;
    http_conn_gone_fn gone;
    void *cb_ctx;
    struct http_conn *conns; /* every allocated connection, closing ones included */
    unsigned n_conns;
    unsigned max_conns;    /* HTTP_MAX_CONNS, or fewer when descriptors are short */
    unsigned room_pending; /* connections closed to make room and not freed yet */
    unsigned handshaking;  /* pending handshakes, listed from hs_newest to hs_oldest */
    struct http_conn *hs_newest, *hs_oldest;
    bool backlog_waiting; /* libuv holds an accepted socket we have not taken yet */
    uv_timer_t retry;     /* when a pending handshake may give way to a waiting connection */
    bool retry_open;
    bool accepting;    /* in try_accept: the evictions it makes do not re-enter it */
    size_t body_bytes; /* request bodies held, against HTTP_BODY_BUDGET */
    void (*close_cb)(void *ctx);
    void *close_ctx;
};

/* rp->cur: no header value yet, a header the node does not keep, Expect, or H_KEPT + the
 * index in kept[] of the request field its value goes to. */
enum { H_NONE, H_OTHER, H_EXPECT, H_KEPT };
#define REQ_FIELD(f) offsetof(struct http_request, f), sizeof(((struct http_request *)0)->f)
static const struct {
    const char *name;
    size_t off, cap;
} kept[] = {
    {"Content-Type", REQ_FIELD(content_type)},
    {"Accept", REQ_FIELD(accept)},
    {"Cookie", REQ_FIELD(cookie)},
    {"Origin", REQ_FIELD(origin)},
    {"Host", REQ_FIELD(host)},
    {"Sec-Fetch-Site", REQ_FIELD(fetch_site)},
};
#undef REQ_FIELD

struct http_conn {
    struct tls_conn tls;
    uv_timer_t deadline; /* the first byte while handshaking, then HTTP_REQUEST_MS per request */
    struct http_server *s;
    struct http_reqparser rp;
    void *auth;
    X509 *peer;                   /* the client certificate from the handshake */
    uint64_t look_bytes, look_ms; /* what gives_way saw of a pending handshake, and when */
    bool looked;
    bool counted;     /* in s->handshaking and its list until the handshake ends, either way */
    bool in_request;  /* bytes of a request arrived */
    bool at_head;     /* the node's head hook runs: a response now refuses the request */
    bool answered;    /* the request was answered at its head: the rest of it is skipped */
    bool busy;        /* a complete request is being handled */
    bool close_after; /* no keep-alive after this response */
    bool dead;        /* TLS gone or closing */
    bool pumping;     /* in pump(): responses made meanwhile do not re-enter it */
    bool for_room;    /* closed to make room for a new connection (s->room_pending) */
    bool handles_closed;
    unsigned open_handles;
    size_t charged; /* this connection's share of s->body_bytes */
    /* Plaintext received and not parsed yet: what was left of one TLS read when the
     * connection stopped reading (busy, or its answers are not being read). */
    struct cmn_buf in;
    size_t in_off;
    struct http_conn *next, *prev;
    struct http_conn *hs_newer, *hs_older;
};

static void try_accept(struct http_server *s);

/* ---- lifecycle ---- */

static void maybe_finish_server_close(struct http_server *s)
{
    if (!s->closing || s->listener_open || s->retry_open || s->conns)
        return;
    void (*cb)(void *) = s->close_cb;
    s->close_cb = NULL;
    if (cb)
        cb(s->close_ctx);
}

static void uncharge(struct http_conn *c)
{
    c->s->body_bytes -= c->charged;
    c->charged = 0;
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
    s->n_conns--;
    if (c->for_room)
        s->room_pending--;
    if (s->gone && c->auth)
        s->gone(s->cb_ctx, c->auth);
    uncharge(c);
    http_reqparser_fini(&c->rp);
    cmn_buf_fini(&c->in);
    X509_free(c->peer);
    free(c);
    try_accept(s);
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
    if (!c->counted)
        return;
    struct http_server *s = c->s;
    c->counted = false;
    s->handshaking--;
    if (c->hs_newer)
        c->hs_newer->hs_older = c->hs_older;
    else
        s->hs_newest = c->hs_older;
    if (c->hs_older)
        c->hs_older->hs_newer = c->hs_newer;
    else
        s->hs_oldest = c->hs_newer;
    c->hs_newer = c->hs_older = NULL;
    try_accept(s); /* a slot is free for a connection waiting in the backlog */
}

/* Closes the connection. An open one closes gracefully, so that its last answer reaches the
 * peer; `abort` (nothing left to say: a handshake that never finished, an idle connection
 * making room) closes the socket at once. */
static void conn_close(struct http_conn *c, bool abort)
{
    if (c->dead)
        return;
    c->dead = true;
    abort |= c->tls.state != TLS_OPEN;
    handshake_over(c);
    uv_close((uv_handle_t *)&c->deadline, deadline_closed);
    if (abort)
        tls_conn_close(&c->tls, tls_closed);
    else
        tls_conn_close_graceful(&c->tls, tls_closed, 2000);
}

/* ---- responses ---- */

/* http_parser's reason phrases (HTTP_STATUS_MAP), for every status the node sends. */
static const char *reason(int status)
{
    return http_status_str((enum http_status)status);
}

static void pump(struct http_conn *c);

/* Sent with every answer, API and Studio alike: nothing of the node may be framed, sniffed
 * into another type or cached (the API's answers name certificates and carry keys); the one
 * Content-Security-Policy is the Studio's (its own scripts, styles and images only, no inline
 * script), and it does no harm to JSON. A response that may be cached says so in its extra
 * headers. */
#define HTTP_SECURITY_HEADERS                                                                      \
    "X-Frame-Options: DENY\r\nX-Content-Type-Options: nosniff\r\n"                                 \
    "Referrer-Policy: no-referrer\r\nCross-Origin-Opener-Policy: same-origin\r\n"                  \
    "Cross-Origin-Resource-Policy: same-origin\r\n"                                                \
    "Content-Security-Policy: default-src 'none'; script-src 'self'; style-src 'self'; "           \
    "img-src 'self' data:; connect-src 'self'; form-action 'none'; frame-ancestors 'none'; "       \
    "base-uri 'none'\r\n"

static void send_raw(struct http_conn *c, int status, const char *content_type, const void *body,
                     size_t len, const char *extra)
{
    if (c->dead)
        return;
    char head[8192];
    bool cacheable = extra && strcasestr(extra, "Cache-Control:") != NULL;
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nServer: Corvid\r\nContent-Length: %zu\r\n"
                     "Connection: %s\r\n%s%s%s%s%s%s\r\n",
                     status, reason(status), len, c->close_after ? "close" : "keep-alive",
                     content_type ? "Content-Type: " : "", content_type ? content_type : "",
                     content_type ? "\r\n" : "", HTTP_SECURITY_HEADERS,
                     cacheable ? "" : "Cache-Control: no-store\r\n", extra ? extra : "");
    if (n < 0 || (size_t)n >= sizeof head || tls_conn_write(&c->tls, head, (size_t)n) != 0 ||
        (len && tls_conn_write(&c->tls, body, len) != 0))
        c->close_after = true;
}

/* The request is over (answered, and parsed to its end): ready for the next one. */
static void finish_request(struct http_conn *c)
{
    c->in_request = false;
    c->answered = false;
    http_reqparser_next(&c->rp);
    uncharge(c);
    if (!c->dead)
        uv_timer_stop(&c->deadline);
}

static void request_done(struct http_conn *c)
{
    if (c->at_head) {
        /* Refused at its head: pump() skips the rest of the request or closes. */
        c->answered = true;
        return;
    }
    c->busy = false;
    finish_request(c);
    if (c->dead) {
        conn_free_maybe(c);
        return;
    }
    if (c->close_after) {
        conn_close(c, false);
        return;
    }
    pump(c); /* a pipelined request may be waiting */
}

void http_respond(struct http_request *req, int status, const char *content_type, const void *body,
                  size_t len, const char *extra_headers)
{
    struct http_conn *c = req->conn;
    if (c == NULL) {
        req->sink->fn(req->sink->ctx, req, status, content_type, body, len, extra_headers);
        return;
    }
    if (c->at_head && c->rp.has_body)
        c->close_after = true; /* its body is never read: the connection cannot go on */
    send_raw(c, status, content_type, body, len, extra_headers);
    request_done(c);
}

static void respond_error_v(struct http_request *req, int status, const char *extra,
                            const char *type, const char *fmt, va_list ap) CMN_PRINTF(5, 0);
static void respond_error_v(struct http_request *req, int status, const char *extra,
                            const char *type, const char *fmt, va_list ap)
{
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    /* RavenDB's exception envelope: its clients take the text from Error (Message alone
     * surfaces as an empty error) and name the request by Url, the path without its query. */
    json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "Type", type, "Message", msg, "Error", msg, "Url",
                          req->path);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    http_respond(req, status, "application/json; charset=utf-8", text ? text : "{}",
                 text ? strlen(text) : 2, extra);
    free(text);
    json_decref(o);
}

void http_respond_error(struct http_request *req, int status, const char *type, const char *fmt,
                        ...)
{
    va_list ap;
    va_start(ap, fmt);
    respond_error_v(req, status, NULL, type, fmt, ap);
    va_end(ap);
}

void http_respond_error_h(struct http_request *req, int status, const char *extra, const char *type,
                          const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    respond_error_v(req, status, extra, type, fmt, ap);
    va_end(ap);
}

void http_close_after(struct http_request *req)
{
    if (req->conn)
        req->conn->close_after = true;
}

/* A request the connection itself refuses (bad input, too big, no room): answer and close. */
static void refuse(struct http_conn *c, int status, const char *type, const char *msg,
                   const char *extra)
{
    c->close_after = true;
    json_t *o = json_pack("{s:s, s:s}", "Type", type, "Message", msg);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    send_raw(c, status, "application/json; charset=utf-8", text ? text : "{}",
             text ? strlen(text) : 2, extra);
    free(text);
    json_decref(o);
    conn_close(c, false);
}

static void protocol_error(struct http_conn *c, int status, const char *msg)
{
    refuse(c, status, "BadRequest", msg, NULL);
}

static void refuse_busy(struct http_conn *c)
{
    CMN_WARN("HTTP-BUSY", "refused a request body: %zu bytes of request bodies are held",
             c->s->body_bytes);
    refuse(c, 503, "ServiceUnavailable",
           "The server holds too many request bodies right now: retry in a moment",
           "Retry-After: 1\r\n");
}

/* Charges growth of the request's body to the global budget; refuses (and returns -1) when
 * it does not fit. */
static int charge(struct http_conn *c)
{
    struct http_server *s = c->s;
    size_t cap = c->rp.req.body.cap;
    if (cap <= c->charged)
        return 0;
    size_t more = cap - c->charged;
    if (more > HTTP_BODY_BUDGET - s->body_bytes) {
        refuse_busy(c);
        return -1;
    }
    s->body_bytes += more;
    c->charged = cap;
    return 0;
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
    rp->expect_continue = false;
    rp->head = false;
    rp->has_body = false;
    rp->body_len = 0;
    rp->body_max = 0;
    rp->body_keep = false;
    rp->body_seen = 0;
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
        rp->cur = strcasecmp(rp->field, "Expect") == 0 ? H_EXPECT : H_OTHER;
        for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++)
            if (strcasecmp(rp->field, kept[i].name) == 0)
                rp->cur = H_KEPT + (int)i;
        rp->field_len = 0;
    }
    if (rp->cur == H_EXPECT) {
        if (len >= 12 && strncasecmp(at, "100-continue", 12) == 0)
            rp->expect_continue = true;
        return 0;
    }
    if (rp->cur < H_KEPT)
        return 0;
    char *dst = (char *)r + kept[rp->cur - H_KEPT].off;
    size_t cap = kept[rp->cur - H_KEPT].cap;
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
    rp->has_body =
        (p->flags & F_CHUNKED) || (p->content_length != ULLONG_MAX && p->content_length > 0);
    rp->body_len = (p->flags & F_CHUNKED) ? UINT64_MAX : rp->has_body ? p->content_length : 0;
    rp->keep_alive = http_should_keep_alive(p);
    /* Stop before the body: the caller decides about it (http_reqparser_body). http-parser
     * returns without taking the headers' last byte and takes it again when resumed. */
    rp->head = true;
    http_parser_pause(p, 1);
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct http_reqparser *rp = p->data;
    if (len > rp->body_max - rp->body_seen) {
        rp->status = 413;
        rp->error = "The request body is larger than this endpoint takes";
        return -1;
    }
    rp->body_seen += len;
    if (!rp->body_keep)
        return 0;
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
    if (rp->head)
        return 0; /* waits for http_reqparser_body */
    size_t n = http_parser_execute(&rp->parser, &settings, (const char *)data, len);
    enum http_errno e = HTTP_PARSER_ERRNO(&rp->parser);
    *used = n;
    if (e == HPE_OK || (e == HPE_PAUSED && (rp->complete || rp->head)))
        return 0;
    if (!rp->status) {
        rp->status = 400;
        rp->error = http_errno_description(e);
    }
    return rp->status;
}

int http_reqparser_body(struct http_reqparser *rp, size_t max, bool keep)
{
    if (!rp->head || rp->status)
        return rp->status;
    rp->head = false;
    rp->body_max = max;
    rp->body_keep = keep;
    http_parser_pause(&rp->parser, 0);
    if (!rp->has_body)
        return 0;
    if (rp->body_len != UINT64_MAX && rp->body_len > max) {
        rp->status = 413;
        rp->error = "The request body is larger than this endpoint takes";
        return rp->status;
    }
    if (keep && rp->body_len != UINT64_MAX) {
        /* One allocation of exactly the announced size: what the body budget charges is
         * what it holds (cmn_buf would round up to a power of two). */
        struct cmn_buf *b = &rp->req.body;
        cmn_buf_fini(b);
        b->data = malloc((size_t)rp->body_len + 1);
        if (b->data == NULL) {
            rp->status = 500;
            rp->error = "out of memory";
            return rp->status;
        }
        b->cap = (size_t)rp->body_len + 1;
    }
    return 0;
}

void http_reqparser_next(struct http_reqparser *rp)
{
    rp->complete = false;
    rp->head = false;
    cmn_buf_fini(&rp->req.body);
    cmn_buf_init(&rp->req.body, true);
    http_parser_pause(&rp->parser, 0);
}

void http_reqparser_fini(struct http_reqparser *rp)
{
    cmn_buf_fini(&rp->req.body);
}

/* ---- connections ---- */

/* Bytes the peer sent that the kernel holds and this loop has not read yet. */
static int bytes_waiting(struct http_conn *c)
{
    uv_os_fd_t fd;
    int waiting = 0;
    if (uv_fileno((uv_handle_t *)&c->tls.tcp, &fd) != 0 || ioctl(fd, FIONREAD, &waiting) != 0)
        return 0;
    return waiting;
}

/* Whether the connection has sent nothing at all: no byte read (tls.c stamps every read in
 * last_activity), none waiting in the kernel. */
static bool silent(struct http_conn *c)
{
    return c->tls.last_activity == 0 && bytes_waiting(c) == 0;
}

/* Whether a pending handshake gives way to a new connection: it has sent nothing for
 * HTTP_SILENT_GRACE_MS, or nothing more for HTTP_STALL_MS. Never while bytes of it wait to be
 * read: then the node owes the next step, and a handshake slowed by the node's own load is a
 * real client's. Judged over two looks at it, by the bytes it has sent: loop time is taken
 * once per iteration, and a busy iteration would make a timestamp of its reads look old.
 * *next gets when to look again. */
static bool gives_way(struct http_conn *c, uint64_t now, uint64_t *next)
{
    uint64_t got = BIO_number_written(SSL_get_rbio(c->tls.ssl));
    uint64_t wait = got ? HTTP_STALL_MS : HTTP_SILENT_GRACE_MS;
    if (!c->looked || got != c->look_bytes || bytes_waiting(c) > 0) {
        c->looked = true;
        c->look_bytes = got;
        c->look_ms = now;
    } else if (now - c->look_ms >= wait) {
        return true;
    }
    if (c->look_ms + wait < *next)
        *next = c->look_ms + wait;
    return false;
}

static void deadline_cb(uv_timer_t *t);

static void update_reading(struct http_conn *c)
{
    if (c->dead)
        return;
    bool stop = c->busy || c->in_off < c->in.len || tls_conn_backlog(&c->tls) > HTTP_MAX_UNSENT;
    tls_conn_pause(&c->tls, stop);
}

/* Headers complete: the node routes and authorizes, and the body is taken, skipped or
 * refused before any of it is read. */
static void on_head(struct http_conn *c)
{
    struct http_server *s = c->s;
    struct http_reqparser *rp = &c->rp;
    size_t max = HTTP_MAX_BODY_BYTES;
    c->answered = false;
    c->close_after = !rp->keep_alive; /* so that an answer given at the head says so */
    if (s->head) {
        c->at_head = true;
        max = s->head(s->cb_ctx, &rp->req);
        c->at_head = false;
    }
    if (c->dead)
        return;
    if (c->answered) {
        if (c->close_after) {
            conn_close(c, false); /* the announced body stays unread; the peer gets the answer */
            return;
        }
        CMN_IGNORE(http_reqparser_body(rp, 0, false)); /* no body: parse on to its end */
        return;
    }
    bool keep = max > 0;
    if (!keep)
        max = HTTP_MAX_SKIPPED_BODY;
    if (keep && rp->has_body && rp->body_len <= max &&
        rp->body_len + 1 > HTTP_BODY_BUDGET - s->body_bytes) {
        refuse_busy(c);
        return;
    }
    int status = http_reqparser_body(rp, max, keep);
    if (status != 0) {
        protocol_error(c, status, rp->error);
        return;
    }
    if (charge(c) != 0)
        return;
    if (rp->expect_continue && rp->has_body) {
        /* curl waits a second for this before sending a body larger than 1 KiB */
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        CMN_IGNORE(tls_conn_write(&c->tls, cont, sizeof cont - 1));
    }
    rp->expect_continue = false;
}

/* Parses the connection's input request by request until it is used up or the connection has
 * to wait (what is left stays in c->in). Responses made meanwhile (a synchronous handler)
 * continue this loop rather than nest in it. */
static void pump(struct http_conn *c)
{
    if (c->dead || c->pumping)
        return;
    c->pumping = true;
    while (!c->dead && !c->busy && c->in_off < c->in.len) {
        if (!c->in_request) {
            if (tls_conn_backlog(&c->tls) > HTTP_MAX_UNSENT)
                break; /* the next request waits until the peer reads its answers */
            c->in_request = true;
            uv_timer_start(&c->deadline, deadline_cb, HTTP_REQUEST_MS, 0);
        }
        size_t n = 0;
        int status = http_reqparser_feed(&c->rp, c->in.data + c->in_off, c->in.len - c->in_off, &n);
        c->in_off += n;
        if (status != 0) {
            protocol_error(c, status, c->rp.error);
            break;
        }
        if (c->rp.head) {
            on_head(c);
            continue;
        }
        if (charge(c) != 0)
            break;
        if (!c->rp.complete) {
            if (n == 0) { /* the parser took nothing and did not stop: never expected */
                protocol_error(c, 500, "The request parser stalled");
                break;
            }
            continue;
        }
        if (c->answered) { /* refused at its head, and now parsed to its end */
            bool keep_alive = c->rp.keep_alive;
            finish_request(c);
            if (!keep_alive)
                conn_close(c, false);
            continue;
        }
        c->busy = true;
        c->close_after = !c->rp.keep_alive;
        c->rp.req.started_ms = uv_now(c->s->loop);
        c->s->handler(c->s->cb_ctx, &c->rp.req);
    }
    if (c->in_off >= c->in.len) { /* all parsed: an idle connection holds no input buffer */
        cmn_buf_fini(&c->in);
        c->in_off = 0;
    }
    c->pumping = false;
    update_reading(c);
}

static void deadline_cb(uv_timer_t *t)
{
    struct http_conn *c = t->data;
    if (c->dead)
        return;
    if (c->counted) { /* still handshaking at HTTP_FIRST_BYTE_MS */
        if (silent(c)) {
            CMN_DEBUG("HTTP-CONN", "closed a connection that sent nothing");
            conn_close(c, true);
        }
        return;
    }
    if (c->busy)
        return; /* the node is working on it: its own timeouts answer */
    protocol_error(c, 408, "The request did not arrive in time");
}

static void tls_data(struct tls_conn *t, const uint8_t *data, size_t len)
{
    struct http_conn *c = t->data;
    if (c->dead)
        return;
    if (cmn_buf_append(&c->in, data, len) != 0) {
        conn_close(c, true);
        return;
    }
    pump(c);
}

static void tls_drained(struct tls_conn *t)
{
    struct http_conn *c = t->data;
    if (!c->dead && tls_conn_backlog(t) <= HTTP_MAX_UNSENT)
        pump(c); /* parses what waits, then reads again */
}

static void tls_event(struct tls_conn *t, int status)
{
    struct http_conn *c = t->data;
    if (status != 0) {
        CMN_DEBUG("HTTP-CONN", "connection ended: %s", t->errmsg);
        conn_close(c, true);
        return;
    }
    handshake_over(c);
    uv_timer_stop(&c->deadline);
    c->peer = tls_conn_peer_cert(t);
    c->rp.req.peer = c->peer;
}

/* ---- accepting ---- */

static void retry_cb(uv_timer_t *t)
{
    try_accept(t->data);
}

/* Makes room for one more connection, evicting if it may; false when the new one must wait. */
static bool make_room(struct http_server *s)
{
    uint64_t now = uv_now(s->loop);
    if (s->handshaking >= HTTP_MAX_HANDSHAKES) {
        /* the oldest pending handshake that may give way does */
        struct http_conn *victim = NULL;
        uint64_t next = UINT64_MAX;
        for (struct http_conn *c = s->hs_oldest; c && !victim; c = c->hs_newer)
            if (gives_way(c, now, &next))
                victim = c;
        if (victim == NULL) {
            if (next != UINT64_MAX) /* look again when the first one may give way */
                uv_timer_start(&s->retry, retry_cb, next - now, 0);
            return false;
        }
        CMN_DEBUG("HTTP-CONN", "a pending handshake gave way to a new connection");
        conn_close(victim, true);
    }
    if (s->n_conns - s->room_pending >= s->max_conns) {
        /* the connection idle the longest (no request, nothing unsent) gives way */
        struct http_conn *victim = NULL;
        for (struct http_conn *c = s->conns; c; c = c->next) {
            if (c->dead || c->counted || c->in_request || c->busy || tls_conn_backlog(&c->tls))
                continue;
            if (victim == NULL || c->tls.last_activity < victim->tls.last_activity)
                victim = c;
        }
        if (victim == NULL)
            return false;
        CMN_DEBUG("HTTP-CONN", "an idle connection gave way to a new connection");
        victim->for_room = true;
        s->room_pending++;
        conn_close(victim, true);
    }
    /* A victim of the cap is still allocated until its handles close (conn_free_maybe then
     * calls try_accept again). */
    return s->n_conns < s->max_conns;
}

static void accept_one(struct http_server *s)
{
    struct http_conn *c = calloc(1, sizeof *c);
    if (c == NULL)
        return; /* stays in the backlog: retried when a connection goes */
    c->s = s;
    if (tls_conn_init(&c->tls, s->loop, s->ctx, true, tls_data, tls_event) != 0) {
        free(c);
        return;
    }
    s->backlog_waiting = false;
    c->tls.data = c;
    c->tls.idle_ms = HTTP_IDLE_MS;
    c->tls.on_drain = tls_drained;
    uv_timer_init(s->loop, &c->deadline);
    c->deadline.data = c;
    c->open_handles = 2; /* the TLS connection (its own two handles) and the deadline timer */
    http_reqparser_init(&c->rp);
    c->rp.req.conn = c;
    cmn_buf_init(&c->in, true); /* may hold passwords, like a body */
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->n_conns++;
    if (uv_accept((uv_stream_t *)&s->listener, (uv_stream_t *)&c->tls.tcp) != 0) {
        conn_close(c, true);
        return;
    }
    uv_update_time(s->loop); /* a busy iteration must not shorten the first-byte deadline */
    c->counted = true;
    s->handshaking++;
    c->hs_older = s->hs_newest;
    if (s->hs_newest)
        s->hs_newest->hs_newer = c;
    else
        s->hs_oldest = c;
    s->hs_newest = c;
    uv_timer_start(&c->deadline, deadline_cb, HTTP_FIRST_BYTE_MS, 0);
    if (tls_conn_start(&c->tls, HTTP_HANDSHAKE_MS) != 0)
        conn_close(c, true);
}

/* Takes the connection libuv holds when there is room. While it is not taken libuv accepts
 * no other, so the rest wait in the kernel's listen backlog: a burst of real clients is
 * served in turn instead of refused, and every slot that frees (a handshake done or closed,
 * a connection freed, a slow handshake's deadline) calls this again. */
static void try_accept(struct http_server *s)
{
    if (!s->backlog_waiting || s->accepting || s->closing)
        return;
    s->accepting = true;
    if (make_room(s))
        accept_one(s);
    s->accepting = false;
}

static void on_connection(uv_stream_t *server, int status)
{
    struct http_server *s = server->data;
    if (status != 0 || s->closing)
        return;
    s->backlog_waiting = true;
    try_accept(s);
}

/* ---- server ---- */

/* Raises the descriptor limit towards what HTTP_MAX_CONNS needs, and caps the connections by
 * what it allows, so that accept() does not fail with EMFILE under load. */
static unsigned conn_cap(void)
{
    struct rlimit rl;
    rlim_t want = HTTP_MAX_CONNS + FD_RESERVE;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return HTTP_MAX_CONNS;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
        struct rlimit up = rl;
        up.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &up) == 0)
            rl = up;
    }
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= want)
        return HTTP_MAX_CONNS;
    return rl.rlim_cur > FD_RESERVE + 64 ? (unsigned)(rl.rlim_cur - FD_RESERVE) : 64;
}

int http_server_start(uv_loop_t *loop, SSL_CTX *ctx, const char *hostport, http_head_fn head,
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
    s->head = head;
    s->handler = handler;
    s->gone = gone;
    s->cb_ctx = cb_ctx;
    s->max_conns = conn_cap();
    uv_timer_init(loop, &s->retry);
    s->retry.data = s;
    s->retry_open = true;
    uv_tcp_init(loop, &s->listener);
    s->listener.data = s;
    s->listener_open = true;
    int e = uv_tcp_bind(&s->listener, (struct sockaddr *)&addr, 0);
    if (e == 0)
        e = uv_listen((uv_stream_t *)&s->listener, HTTP_LISTEN_BACKLOG, on_connection);
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

static void retry_closed(uv_handle_t *h)
{
    struct http_server *s = h->data;
    s->retry_open = false;
    maybe_finish_server_close(s);
}

void http_server_close(struct http_server *s, void (*cb)(void *ctx), void *ctx)
{
    s->closing = true;
    s->close_cb = cb;
    s->close_ctx = ctx;
    uv_close((uv_handle_t *)&s->listener, listener_closed);
    uv_close((uv_handle_t *)&s->retry, retry_closed);
    for (struct http_conn *c = s->conns; c; c = c->next)
        conn_close(c, false);
}

void http_server_set_ctx(struct http_server *s, SSL_CTX *ctx)
{
    s->ctx = ctx;
}

void http_server_free(struct http_server *s)
{
    free(s);
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
            conn_close(c, false);
    }
}

/* ---- helpers for handlers ---- */

int http_query(const struct http_request *req, const char *name, char *buf, size_t cap, int *count)
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

int http_cookie(const struct http_request *req, const char *name, char *buf, size_t cap)
{
    /* RFC 6265 section 4.2.1: cookie-pair *( ";" SP cookie-pair ), name=value. */
    size_t nlen = strlen(name);
    for (const char *p = req->cookie; *p;) {
        p += strspn(p, " ;");
        size_t len = strcspn(p, ";");
        if (len > nlen && strncmp(p, name, nlen) == 0 && p[nlen] == '=') {
            size_t vlen = len - nlen - 1;
            while (vlen > 0 && p[nlen + 1 + vlen - 1] == ' ')
                vlen--;
            if (vlen >= cap)
                return -1;
            memcpy(buf, p + nlen + 1, vlen);
            buf[vlen] = '\0';
            return 1;
        }
        p += len;
    }
    return 0;
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
