/* corvid-bench internals shared by its subcommands: the clock, latency statistics over a
 * measuring window, and the result line every load generator prints. */
#ifndef CORVID_TOOLS_BENCH_BENCH_H
#define CORVID_TOOLS_BENCH_BENCH_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

#include "ca/ca.h"
#include "common/buf.h"
#include "net/http.h"

double bench_now(void); /* CLOCK_MONOTONIC, seconds */

/* Per-operation latencies of one run. An operation counts when it started inside the
 * measuring window [t0, t1) (after the warm-up, before the deadline); the rate is the number
 * of counted operations over the time from t0 to the last counted completion. */
struct bench_run {
    double t0, t1;
    double *lat; /* seconds, one per counted operation; owned */
    size_t n, cap;
    double last_done;
    long errors;
    char first_error[512];
};

int bench_run_init(struct bench_run *r, size_t expected);
void bench_run_fini(struct bench_run *r);
/* An operation that started at `start` finished now at `done`, successfully or not. */
void bench_run_record(struct bench_run *r, double start, double done, bool ok, const char *err);

/* Prints the human-readable summary and one machine line for scripts:
 *   RESULT system=S target=T clients=C ops=N errors=E secs=D rate=R p50=.. p90=.. p99=.. max=..
 * (latencies in milliseconds). Sorts r->lat. */
void bench_run_report(struct bench_run *r, const char *system, const char *target, int clients);

/* Shared command-line numbers. 0 or -1 with a message on stderr. */
int bench_arg_double(const char *opt, const char *s, double lo, double hi, double *out);
int bench_arg_long(const char *opt, const char *s, long lo, long hi, long *out);

/* The signing CA from a PKCS#12 file without password: *cert and *key are new references. */
int bench_load_issuer(const char *path, X509 **cert, EVP_PKEY **key, char *errmsg);

/* ---- a non-blocking HTTPS/1.1 client for poll() loops (https.c) ----
 * One request in flight per connection, keep-alive; answers read with net/http.h (length,
 * chunked, interim 100 skipped). No allocation per request once the body buffer has grown. */
enum hc_state { HC_CLOSED, HC_CONNECTING, HC_HANDSHAKE, HC_OPEN, HC_WRITING, HC_READING };
enum hc_event { HC_AGAIN = 0, HC_OPENED = 1, HC_RESPONSE = 2, HC_FAILED = -1 };

struct hc {
    int fd;
    SSL *ssl;
    enum hc_state st;
    short want;      /* poll events the last call needs */
    bool have_req;   /* a request waits for the handshake */
    bool eof;        /* the peer closed the connection (cleanly or not) */
    const char *req; /* borrowed until the response arrives */
    size_t req_len, req_off;
    struct net_http_resp resp; /* the answer being read */
    struct cmn_buf body;       /* owned: the last answer's body, NUL-terminated; kept by hc_open */
    size_t body_len;           /* of the last answer */
    int status;
    bool close_after; /* the response said Connection: close */
    double start;     /* the caller's */
    char err[200];
};

/* A client context (ca_tls_client_ctx with flags and ALPN): verifies the server against cacert
 * when given (else not at all), presents the certificate of the file cert (ca_certfile: PEM
 * with its key, or key in the file key; or a .pfx without password) when given. The caller
 * owns the context. NULL with a message on stderr. */
SSL_CTX *bench_tls_ctx(const char *cacert, const char *cert, const char *key, unsigned flags,
                       const unsigned char *alpn, unsigned alpn_len);
/* bench_tls_ctx for the HTTPS poll loops below: partial writes, read-ahead, no resumption. */
SSL_CTX *hc_ctx_new(const char *cacert, const char *cert, const char *key);
/* "https://A.B.C.D:PORT" (or "A.B.C.D:PORT") into sa. */
int hc_parse_url(const char *url, struct sockaddr_in *sa);
/* Starts a connection (non-blocking connect, then the handshake); cert/key, when given, replace
 * the context's client certificate for this connection. 0 or -1 (err set). */
int hc_open(struct hc *c, SSL_CTX *ctx, const struct sockaddr_in *sa, X509 *cert, EVP_PKEY *key);
/* Queues a request (bytes borrowed until the response); sent once the handshake is done. */
void hc_send(struct hc *c, const char *req, size_t len);
/* Advances c after poll said so (or right after hc_open/hc_send): HC_AGAIN, HC_OPENED (the
 * handshake finished and no request waits), HC_RESPONSE (a complete response: status, body at
 * in + head_len), HC_FAILED (err set; eof when the peer closed). */
int hc_io(struct hc *c);
const char *hc_body(const struct hc *c);
void hc_close(struct hc *c);
/* Connects and handshakes, blocking (setup paths). 0 or -1 (err set). */
int hc_open_wait(struct hc *c, SSL_CTX *ctx, const struct sockaddr_in *sa, X509 *cert,
                 EVP_PKEY *key, double timeout_s);
/* One request and its response, blocking. HC_RESPONSE or HC_FAILED. */
int hc_roundtrip(struct hc *c, const char *req, size_t len, double timeout_s);

/* A fresh EC-P256 client certificate named cn, signed by signer, for `days`. 0 or -1 with
 * errmsg. Its public key is only encoded: parse it back from DER before using it for TLS. */
int bench_client_cert(const struct ca_signer *signer, const char *cn, int days, X509 **cert,
                      EVP_PKEY **key, char *errmsg);
/* A signer: the CA in the PKCS#12 file at path, or a throwaway self-signed CA when NULL. */
int bench_signer(const char *path, struct ca_signer *out, char *errmsg);
void bench_signer_fini(struct ca_signer *s);
/* Writes cert and key (unencrypted) as one PEM file. */
int bench_write_pem(const char *path, X509 *cert, EVP_PKEY *key, char *errmsg);
/* The JSON string value of s (quotes included) appended to out. */
int bench_json_str(struct cmn_buf *out, const char *s, size_t n);

int bench_raft_main(int argc, char **argv);
int bench_etcd_main(int argc, char **argv);
int bench_http_whoami_main(int argc, char **argv);
int bench_http_register_main(int argc, char **argv);
int bench_http_generate_main(int argc, char **argv);
int bench_revoke_main(int argc, char **argv);

#endif
