/* Reading HTTP/1.1 answers, sans I/O, on http_parser: the one response reader of the CLI's
 * client, the benchmarks' poll loops and the node's fetch. Bytes in, status, kept headers and
 * body out; the caller owns the socket or TLS connection. No allocation of its own: the body
 * goes into the caller's buffer, whose capacity is kept from one answer to the next. */
#ifndef CORVID_NET_HTTP_H
#define CORVID_NET_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include <http_parser.h>

#include "common/buf.h"
#include "common/err.h"

/* A response header the caller wants kept (e.g. Content-Type, Location). */
struct net_http_header {
    const char *name; /* borrowed; compared without case */
    char *value;      /* the caller's buffer of cap bytes: the value, NUL-terminated; "" when
                       * absent or longer than cap - 1 (a cut Location would lead elsewhere) */
    size_t cap;
};

/* One answer at a time on one connection. The caller sets the configuration, then calls
 * net_http_resp_start before each answer. */
struct net_http_resp {
    /* configuration: borrowed, kept across answers */
    size_t max_head;                 /* bytes of status text, header names and values */
    size_t max_body;                 /* bytes of body */
    struct cmn_buf *body;            /* receives the body (NUL-terminated once complete); NULL
                                      * to count it only */
    struct net_http_header *headers; /* kept headers, may be NULL */
    size_t n_headers;
    /* results */
    int status;        /* the status code, once the head is complete */
    bool headers_done; /* the head (of the final answer, after any 1xx) is complete */
    bool complete;     /* the whole answer is in */
    bool keep_alive;   /* once complete: the connection may carry the next request */
    size_t body_len;   /* bytes of body so far (also when body is NULL) */
    /* private */
    http_parser parser;
    size_t head_bytes;
    int err;
    struct net_http_header *cur; /* the kept header whose value is arriving */
    size_t vlen;
    bool in_value;
    char field[32];
    size_t flen;
    bool field_long;
    bool fed; /* bytes of this answer have arrived */
};

/* Prepares r for the next answer: the results cleared, the body emptied (capacity kept), the
 * kept headers set to "". */
void net_http_resp_start(struct net_http_resp *r);

/* Parses n more bytes of the answer; *used tells how many were taken. Once r->complete, bytes
 * after the answer are left (*used < n): the caller decides what they mean (a pipelined
 * answer, or a protocol error). Interim answers (1xx other than 101) are skipped. Errors, with
 * errmsg saying why (and after an error r must be started again before reuse):
 * CMN_EMALFORMED (not HTTP/1.x), CMN_ETOOBIG (over max_head or max_body; r->headers_done says
 * which), CMN_ENOMEM (the body buffer). */
int net_http_resp_feed(struct net_http_resp *r, const void *p, size_t n, size_t *used,
                       char *errmsg) CMN_MUST_CHECK;

/* The connection ended. Completes an answer framed by the end of the connection (no
 * Content-Length, not chunked); CMN_ETRUNCATED when the answer was cut short. */
int net_http_resp_eof(struct net_http_resp *r, char *errmsg) CMN_MUST_CHECK;

#endif
