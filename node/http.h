/* HTTPS/1.1 server on the node's loop: TLS 1.2+ over raft/tls, requests parsed with
 * http-parser, keep-alive, limits with clear statuses (431 headers, 413 body, 408 slow
 * request, 503 busy, idle timeout). One request at a time per connection; pipelined requests
 * wait. The node routes and authorizes each request when its headers are complete, before any
 * of its body is read (see http_head_fn). */
#ifndef CORVID_NODE_HTTP_H
#define CORVID_NODE_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <http_parser.h>
#include <openssl/ssl.h>
#include <uv.h>

#include "common/buf.h"
#include "common/err.h"

#define HTTP_MAX_HEADER_BYTES (16 * 1024)
#define HTTP_MAX_BODY_BYTES   (4 * 1024 * 1024)
/* A body sent to a route that reads none is skipped, unbuffered, up to this size. */
#define HTTP_MAX_SKIPPED_BODY (64 * 1024)
/* Request bodies buffered across all connections. A body that does not fit is refused with
 * 503 and Retry-After before it is read (its Content-Length is known) or when it outgrows the
 * room (chunked); the connection closes after the answer. */
#define HTTP_BODY_BUDGET (64u * 1024 * 1024)
/* Answers written and not yet taken by a connection's peer: above this the connection reads
 * no further request until the backlog drains (a client pipelining without reading). */
#define HTTP_MAX_UNSENT     (64 * 1024)
#define HTTP_MAX_CONNS      4096
#define HTTP_MAX_HANDSHAKES 256
/* Connections wait in the kernel's accept queue while no handshake slot is free: a queue that
 * overflows drops their handshake's last ACK, and a client whose retransmission then backs off
 * looks silent to the node. (The kernel caps it at net.core.somaxconn.) */
#define HTTP_LISTEN_BACKLOG 4096
#define HTTP_FIRST_BYTE_MS  2000 /* from accept to the ClientHello's first byte */
/* At HTTP_MAX_HANDSHAKES, a pending handshake gives way to a new connection when it has sent
 * nothing for this long, or nothing more for HTTP_STALL_MS (gives_way in http.c); otherwise
 * the new one waits in the listen backlog for a free slot. */
#define HTTP_SILENT_GRACE_MS 500
#define HTTP_STALL_MS        5000
#define HTTP_HANDSHAKE_MS    10000
#define HTTP_REQUEST_MS      30000  /* from a request's first byte to its last */
#define HTTP_IDLE_MS         120000 /* keep-alive */

struct http_server;
struct http_conn;
struct http_request;

/* Where the answer goes for a request that came from no connection (conn NULL): a unit test
 * driving a handler. */
struct http_sink {
    void (*fn)(void *ctx, struct http_request *req, int status, const char *content_type,
               const void *body, size_t len, const char *extra_headers);
    void *ctx;
};

/* One request; valid until the response is sent. */
struct http_request {
    struct http_conn *conn;
    const struct http_sink *sink; /* when conn is NULL */
    int method;                   /* http_parser's enum http_method */
    const char *method_name;
    char path[1024];  /* percent-decoded, without the query */
    char query[4096]; /* raw query string */
    char content_type[128];
    char accept[256];
    char cookie[1024];
    char origin[256];
    char host[256];      /* the Host header */
    char fetch_site[32]; /* Sec-Fetch-Site: a browser's own word on where the request came from */
    struct cmn_buf body; /* secret (wiped on free): bodies carry passwords */
    X509 *peer;          /* the client certificate (borrowed; NULL when none) */
    void *auth;          /* the node's per-connection authentication state (see http_conn_auth) */
    const void *route;   /* the node's (borrowed), set by its http_head_fn */
    uint64_t started_ms;
};

/* The request parser, sans I/O (the connection feeds it; the fuzz target too). It stops twice
 * per request: when the headers are complete (head), so that the caller decides about the
 * body with http_reqparser_body before any of it is taken, and when the request is complete. */
struct http_reqparser {
    http_parser parser;
    struct http_request req;
    char field[64];
    size_t field_len;
    int cur;
    size_t header_bytes;
    bool expect_continue; /* the client waits for "100 Continue" before its body */
    bool head;            /* headers complete: call http_reqparser_body before feeding more */
    bool has_body;        /* the request announced a body (Content-Length > 0 or chunked) */
    uint64_t body_len;    /* its Content-Length; UINT64_MAX when chunked */
    size_t body_max;      /* the decision: the largest body taken */
    bool body_keep;       /* and whether it goes to req.body (else it is counted and dropped) */
    size_t body_seen;
    bool complete; /* req holds a whole request; call http_reqparser_next after it */
    bool keep_alive;
    int status;        /* after a refusal: the HTTP status to answer (400, 413, 431, 500) */
    const char *error; /* and why (static text) */
};
void http_reqparser_init(struct http_reqparser *rp);
/* Parses up to len bytes; *used gets how many were taken (the head or a complete request
 * stops there). Returns 0, or the error status when the input is refused (see rp->error). */
int http_reqparser_feed(struct http_reqparser *rp, const uint8_t *data, size_t len,
                        size_t *used) CMN_MUST_CHECK;
/* After the head: takes a body of up to max bytes, into req.body when keep (sized at once
 * when its length is known) or dropped. Returns 0, or 413 when the announced length is over
 * max, or 500 when req.body cannot be allocated (see rp->error). */
int http_reqparser_body(struct http_reqparser *rp, size_t max, bool keep) CMN_MUST_CHECK;
void http_reqparser_next(struct http_reqparser *rp);
void http_reqparser_fini(struct http_reqparser *rp);

/* Called when a request's headers are complete, before any of its body is read: the node
 * routes and authorizes here. It either answers the request (a refusal, with http_respond*),
 * or returns the largest body it takes: 0 for a route that reads none (a body of up to
 * HTTP_MAX_SKIPPED_BODY is then skipped unbuffered, a larger one refused with 413). A request
 * answered here gets no "100 Continue"; when it announced a body the connection closes after
 * the answer, otherwise it goes on with the next request. */
typedef size_t (*http_head_fn)(void *ctx, struct http_request *req);
/* Called when a request accepted at its head is complete, body included. */
typedef void (*http_handler_fn)(void *ctx, struct http_request *req);
/* Called when a connection goes away, to free what the node attached to it. */
typedef void (*http_conn_gone_fn)(void *ctx, void *auth);

/* Connection limits: at most HTTP_MAX_CONNS connections (at the cap the longest idle keep-alive
 * connection gives way to a new one; without one the new one waits in the listen backlog) and
 * HTTP_MAX_HANDSHAKES pending TLS handshakes (see on_connection in http.c). */
int http_server_start(uv_loop_t *loop, SSL_CTX *ctx, const char *hostport, http_head_fn head,
                      http_handler_fn handler, http_conn_gone_fn gone, void *cb_ctx,
                      struct http_server **out, char *errmsg) CMN_MUST_CHECK;
/* Stops listening and closes every connection; cb fires when all handles are closed. */
void http_server_close(struct http_server *s, void (*cb)(void *ctx), void *ctx);
/* Handshakes from now on use ctx (borrowed: the caller keeps it until the next call or
 * http_server_free); connections already open keep the one they began with. */
void http_server_set_ctx(struct http_server *s, SSL_CTX *ctx);
/* Frees a server whose close completed (or that never started listening). */
void http_server_free(struct http_server *s);

/* The per-connection slot for the node's authentication state. */
void **http_conn_auth(struct http_conn *c);
/* Closes, after any response in progress, every connection whose auth slot matches. */
void http_server_drop(struct http_server *s, bool (*match)(void *ctx, void *auth), void *ctx);

/* Sends the response; extra_headers is "Name: value\r\n"… or NULL. */
void http_respond(struct http_request *req, int status, const char *content_type, const void *body,
                  size_t len, const char *extra_headers);
/* {"Type":type,"Message":message,"Error":message,"Url":path} with the status. */
void http_respond_error(struct http_request *req, int status, const char *type, const char *fmt,
                        ...) CMN_PRINTF(4, 5);
/* The same with extra headers (e.g. Retry-After), or NULL. */
void http_respond_error_h(struct http_request *req, int status, const char *extra, const char *type,
                          const char *fmt, ...) CMN_PRINTF(5, 6);
/* Closes the connection after this response (e.g. a refused certificate). */
void http_close_after(struct http_request *req);

/* A query parameter, percent-decoded into buf: 1 found, 0 absent, -1 bad or too long.
 * *count (may be NULL) gets how many times the name appears. */
int http_query(const struct http_request *req, const char *name, char *buf, size_t cap, int *count);
bool http_query_bool(const struct http_request *req, const char *name, bool dflt);
/* A cookie of the request's Cookie header into buf: 1 found, 0 absent, -1 too long. */
int http_cookie(const struct http_request *req, const char *name, char *buf, size_t cap);

/* Percent-encodes s (for Content-Disposition file names) into out. */
void http_urlencode(const char *s, char *out, size_t cap);

#endif
