/* A small HTTPS/1.1 client for the corvid CLI: synchronous calls over OpenSSL, with failover
 * across a list of node URLs. */
#ifndef CORVID_TOOLS_HTTP_CLIENT_H
#define CORVID_TOOLS_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "ca/cert.h"
#include "common/buf.h"
#include "common/err.h"

#define HC_URL_MAX     512
#define HC_MAX_URLS    32
#define HC_MAX_BODY    (64u << 20) /* largest response body accepted */
#define HC_MAX_HEADERS (64u << 10) /* largest response head accepted */

/* An https:// base URL, split. */
struct hc_url {
    char base[HC_URL_MAX]; /* "https://host:port", without a trailing slash or path */
    char host[256];        /* without IPv6 brackets */
    char port[8];
    char host_header[300]; /* host[:port] as sent in Host:, IPv6 in brackets */
    bool host_is_ip;
};

/* Accepts "https://HOST[:PORT][/]" (HOST a DNS name, an IPv4 literal or an [IPv6] literal).
 * Anything else, http:// included, is CMN_EINVALID with the reason in errmsg. */
int hc_url_parse(const char *s, struct hc_url *out, char *errmsg) CMN_MUST_CHECK;

/* How the server is verified and how the client authenticates. All pointers borrowed for the
 * duration of hc_client_init (the SSL_CTX takes its own references). */
struct hc_tls_opts {
    const char *ca_file;              /* PEM file of trusted CAs; NULL: the system's trust store */
    bool insecure;                    /* no verification of the server at all (explicit opt-in) */
    X509 *cert;                       /* client certificate, NULL for none */
    EVP_PKEY *key;                    /* its private key */
    const struct ca_cert_list *chain; /* sent after cert; may be NULL */
};

struct hc_response {
    int status;             /* HTTP status code */
    struct cmn_buf body;    /* owned; NUL-terminated after len */
    char content_type[128]; /* "" when absent */
    char location[1024];    /* Location header (redirects), "" when absent or too long */
    char retry_after[32];   /* Retry-After header (429: seconds to wait), "" when absent */
    char url[HC_URL_MAX];   /* base URL of the node that answered */
    bool maybe_sent;        /* after a failed call: the request may have reached the node */
};
void hc_response_init(struct hc_response *r);
void hc_response_fini(struct hc_response *r);

struct hc_request {
    const char *method;       /* "GET", "PUT", ... */
    const char *path;         /* "/admin/certificates?x=y": starts with '/', already encoded */
    const char *content_type; /* of body; NULL without a body */
    const void *body;         /* borrowed; may be NULL */
    size_t body_len;
    /* True when the request may be sent again to the next node after it was sent once and the
     * connection failed before an answer (idempotent reads, and writes that carry a
     * raft-request-id). Requests are always retried on the next node when connecting failed. */
    bool resend_ok;
    /* The answer holds a secret (a generated key): out->body is a secret buffer from the first
     * byte, wiped whenever it grows, moves or is freed. */
    bool secret_answer;
    /* Called about every 250 ms while waiting for the answer (progress on a terminal). */
    void (*progress)(void *ctx, int64_t waited_ms);
    void *progress_ctx;
};

struct hc_conn; /* one connection per base URL, kept alive between calls */

struct hc_client {
    SSL_CTX *ctx;
    bool insecure;
    struct hc_url urls[HC_MAX_URLS]; /* the failover list, in order */
    size_t n_urls;
    size_t current; /* index in urls of the node that answered last */
    int connect_timeout_ms;
    int timeout_ms; /* for the whole answer, once the request is sent */
    /* Told when a node is skipped (e.g. "https://…: connection refused"); may be NULL. */
    void (*note)(void *ctx, const char *msg);
    void *note_ctx;
    struct hc_conn *conns; /* owned */
    size_t n_conns;
};

/* Sets up TLS 1.2+ with verification (unless insecure) and the client certificate. Errors:
 * CMN_ECRYPTO (the key does not match the certificate, the CA file cannot be loaded), CMN_ENOMEM.
 * On failure nothing is left to release. */
int hc_client_init(struct hc_client *c, const struct hc_tls_opts *tls, char *errmsg) CMN_MUST_CHECK;
/* Closes every connection and frees everything. */
void hc_client_fini(struct hc_client *c);
/* Appends a URL to the failover list (CMN_EINVALID for a bad URL, CMN_ETOOBIG past
 * HC_MAX_URLS). */
int hc_client_add_url(struct hc_client *c, const char *url, char *errmsg) CMN_MUST_CHECK;

/* Sends req to the node that answered last (first: the first URL), failing over to the next
 * URLs in order when one cannot be reached. out must have been set up with hc_response_init. On
 * success (any HTTP status, redirects included) fills out, which the caller then releases with
 * hc_response_fini. Errors, with errmsg saying which node and why:
 * CMN_EIO (no node reachable, or the connection broke), CMN_ECRYPTO (the TLS handshake failed
 * or the server's certificate did not verify: never failed over, it may be an attack),
 * CMN_EMALFORMED (not an HTTP answer), CMN_ETOOBIG, CMN_ENOMEM. */
int hc_call(struct hc_client *c, const struct hc_request *req, struct hc_response *out,
            char *errmsg) CMN_MUST_CHECK;

/* As hc_call but to one base URL only (which need not be in the list): for asking every node. */
int hc_call_url(struct hc_client *c, const char *url, const struct hc_request *req,
                struct hc_response *out, char *errmsg) CMN_MUST_CHECK;

/* Sends req to an absolute URL as found in a Location header ("https://host:port/path?q"):
 * req->path is replaced by the URL's path. Errors as hc_call_url. */
int hc_call_location(struct hc_client *c, const char *location, const struct hc_request *req,
                     struct hc_response *out, char *errmsg) CMN_MUST_CHECK;

/* Percent-encodes s for a query string value (RFC 3986 unreserved characters kept). Appends a
 * NUL-terminated string to out. */
int hc_query_escape(const char *s, struct cmn_buf *out) CMN_MUST_CHECK;

#endif
