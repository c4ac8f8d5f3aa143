/* TLS over a libuv TCP handle with OpenSSL memory BIOs: socket bytes in, plaintext out, and the
 * reverse. Used by the Raft transport and the HTTPS server. One loop thread; no callback is ever
 * called synchronously from the function that caused it, except tls_conn_write's errors, which are
 * returned. */
#ifndef CORVID_RAFT_TLS_H
#define CORVID_RAFT_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>
#include <uv.h>

#include "common/err.h"

struct tls_conn;

/* Plaintext arrived. The bytes are borrowed for the call. */
typedef void (*tls_data_cb)(struct tls_conn *c, const uint8_t *data, size_t len);
/* The handshake finished (status 0) or the connection failed or ended (status < 0, with a
 * message in c->errmsg). After a failure the owner must call tls_conn_close. */
typedef void (*tls_event_cb)(struct tls_conn *c, int status);
typedef void (*tls_close_cb)(struct tls_conn *c);
/* The socket backlog fell to the low-water mark after being above it. */
typedef void (*tls_drain_cb)(struct tls_conn *c);

#define TLS_HIGH_WATER (4u << 20) /* producers pause above this many queued bytes */

enum tls_state { TLS_CONNECTING, TLS_HANDSHAKE, TLS_OPEN, TLS_FAILED, TLS_CLOSING };

/* Caller-allocated; must stay valid until the close callback. */
struct tls_conn {
    uv_tcp_t tcp;
    uv_timer_t timer; /* handshake deadline, then idle timeout when set */
    uv_connect_t connect_req;
    uv_shutdown_t shutdown_req;
    bool handles_closing;
    SSL *ssl;
    enum tls_state state;
    bool server;
    bool reading_paused;
    unsigned open_handles;
    uint64_t idle_ms; /* 0: no idle timeout once open */
    uint64_t last_activity;
    tls_data_cb on_data;
    tls_event_cb on_event;
    tls_close_cb on_close;
    tls_drain_cb on_drain; /* optional */
    void *data;            /* the owner's */
    char errmsg[CMN_ERRMSG_SIZE];
};

/* Prepares c on loop with a new SSL from ctx (borrowed; SSL_CTX_up_ref'd by OpenSSL). For a
 * server, then uv_accept into &c->tcp and call tls_conn_start; for a client, tls_conn_connect. */
int tls_conn_init(struct tls_conn *c, uv_loop_t *loop, SSL_CTX *ctx, bool server,
                  tls_data_cb on_data, tls_event_cb on_event) CMN_MUST_CHECK;
/* Server side: starts reading and the handshake deadline. */
int tls_conn_start(struct tls_conn *c, uint64_t handshake_ms) CMN_MUST_CHECK;
/* Client side: connects to addr and runs the handshake. */
int tls_conn_connect(struct tls_conn *c, const struct sockaddr *addr,
                     uint64_t handshake_ms) CMN_MUST_CHECK;
/* Sets an idle timeout for an open connection (0 turns it off). */
void tls_conn_set_idle(struct tls_conn *c, uint64_t idle_ms);
/* Encrypts and queues plaintext. CMN_EIO when the connection is not open. */
int tls_conn_write(struct tls_conn *c, const void *data, size_t len) CMN_MUST_CHECK;
/* Bytes queued for the socket and not yet written: producers pause above a threshold. */
size_t tls_conn_backlog(const struct tls_conn *c);
/* Stops or resumes delivering data (backpressure from the consumer). */
void tls_conn_pause(struct tls_conn *c, bool paused);
/* The peer's certificate (a new reference, X509_free it) or NULL. */
X509 *tls_conn_peer_cert(const struct tls_conn *c);
/* Closes both handles; cb (may be NULL) fires once both are closed, and c may then be freed. */
void tls_conn_close(struct tls_conn *c, tls_close_cb cb);

/* Like tls_conn_close, but lets what was written reach the peer first: shuts the write side
 * down, discards what the peer still sends, and closes at its EOF or after linger_ms. Closing
 * at once with unread input makes the kernel reset the connection, and the peer may then never
 * read the last answer (a 413 for a body it is still sending). */
void tls_conn_close_graceful(struct tls_conn *c, tls_close_cb cb, uint64_t linger_ms);

/* Sets TCP keepalive (3 s idle, 3 probes of 3 s), TCP_USER_TIMEOUT and TCP_NODELAY. */
void tls_tcp_tune(uv_tcp_t *tcp);

/* Parses "host:port", "[v6]:port" or a URL like "tls://host:port" / "https://host:port"
 * (net_url_parse) into addr. Host must be an IP literal, the port given. */
int tls_parse_addr(const char *s, struct sockaddr_storage *addr, char *errmsg) CMN_MUST_CHECK;

/* The last OpenSSL error as text, and the queue cleared. */
const char *tls_ssl_error(char *buf, size_t len);

#endif
