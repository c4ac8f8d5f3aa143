/* HTTPS/1.1 server on the node's loop: TLS 1.2+ over raft/tls, requests parsed with
 * http-parser, keep-alive, limits with clear statuses (431 headers, 413 body, 408 slow
 * request, idle timeout). One request at a time per connection; pipelined requests wait. */
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
#define HTTP_MAX_BODY_BYTES (4 * 1024 * 1024)
#define HTTP_HANDSHAKE_MS 10000
#define HTTP_REQUEST_MS 30000 /* from a request's first byte to its last */
#define HTTP_IDLE_MS 120000   /* keep-alive */

struct http_server;
struct http_conn;

/* One request; valid until the response is sent. */
struct http_request {
    struct http_conn *conn;
    int method;          /* http_parser's enum http_method */
    const char *method_name;
    char path[1024];     /* percent-decoded, without the query */
    char query[4096];    /* raw query string */
    char content_type[128];
    char accept[256];
    char cookie[1024];
    char origin[256];
    struct cmn_buf body; /* secret (wiped on free): bodies carry passwords */
    X509 *peer;  /* the client certificate (borrowed; NULL when none) */
    void *auth;  /* the node's per-connection authentication state (see http_conn_auth) */
    uint64_t started_ms;
};

/* The request parser, sans I/O (the connection feeds it; the fuzz target too). */
struct http_reqparser {
    http_parser parser;
    struct http_request req;
    char field[64];
    size_t field_len;
    int cur;
    size_t header_bytes;
    bool expect_continue; /* the client waits for "100 Continue" before its body */
    bool complete;        /* req holds a whole request; call http_reqparser_next after it */
    bool keep_alive;
    int status;           /* after a refusal: the HTTP status to answer (400, 413, 431) */
    const char *error;    /* and why (static text) */
};
void http_reqparser_init(struct http_reqparser *rp);
/* Parses up to len bytes; *used gets how many were taken (a complete request stops there).
 * Returns 0, or the error status when the input is refused (then see rp->error). */
int http_reqparser_feed(struct http_reqparser *rp, const uint8_t *data, size_t len,
                        size_t *used) CMN_MUST_CHECK;
void http_reqparser_next(struct http_reqparser *rp);
void http_reqparser_fini(struct http_reqparser *rp);

typedef void (*http_handler_fn)(void *ctx, struct http_request *req);
/* Called when a connection goes away, to free what the node attached to it. */
typedef void (*http_conn_gone_fn)(void *ctx, void *auth);

int http_server_start(uv_loop_t *loop, SSL_CTX *ctx, const char *hostport,
                      http_handler_fn handler, http_conn_gone_fn gone, void *cb_ctx,
                      struct http_server **out, char *errmsg) CMN_MUST_CHECK;
/* Stops listening and closes every connection; cb fires when all handles are closed. */
void http_server_close(struct http_server *s, void (*cb)(void *ctx), void *ctx);
void http_server_set_ctx(struct http_server *s, SSL_CTX *ctx);
/* Frees a server whose close completed (or that never started listening). */
void http_server_free(struct http_server *s);

/* The per-connection slot for the node's authentication state. */
void **http_conn_auth(struct http_conn *c);
/* Closes, after any response in progress, every connection whose auth slot matches. */
void http_server_drop(struct http_server *s, bool (*match)(void *ctx, void *auth), void *ctx);

/* Sends the response; extra_headers is "Name: value\r\n"… or NULL. */
void http_respond(struct http_request *req, int status, const char *content_type,
                  const void *body, size_t len, const char *extra_headers);
/* {"Type":type,"Message":message} with the status. */
void http_respond_error(struct http_request *req, int status, const char *type, const char *fmt,
                        ...) CMN_PRINTF(4, 5);
/* Closes the connection after this response (e.g. a refused certificate). */
void http_close_after(struct http_request *req);

/* A query parameter, percent-decoded into buf: 1 found, 0 absent, -1 bad or too long.
 * *count (may be NULL) gets how many times the name appears. */
int http_query(const struct http_request *req, const char *name, char *buf, size_t cap,
               int *count);
bool http_query_bool(const struct http_request *req, const char *name, bool dflt);

/* Percent-encodes s (for Content-Disposition file names) into out. */
void http_urlencode(const char *s, char *out, size_t cap);

#endif
