/* The TLS policy every Corvid endpoint shares, server or client: HTTPS, Raft, the node's own
 * fetches, the CLI and the benchmarks; and the one SSL_CTX builder of each role. Sans I/O: it
 * only configures an SSL_CTX. Not part of ca/ca.h, so that users of certificates alone need not
 * see libssl. */
#ifndef CORVID_CA_TLS_H
#define CORVID_CA_TLS_H

#include <stdbool.h>

#include <openssl/ssl.h>

#include "ca/cert.h"
#include "common/err.h"

/* TLS 1.3 cipher suites: its AEAD ones, CCM left out. */
#define CA_TLS13_SUITES "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
/* TLS 1.2 cipher suites: ECDHE key exchange with an AEAD only (AES-GCM, ChaCha20-Poly1305), for
 * ECDSA and RSA certificates. No CBC (Lucky13 and its kin), no SHA-1 MAC, no static-RSA key
 * exchange (no forward secrecy), no finite-field DHE. */
#define CA_TLS12_SUITES                                                                            \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                                   \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                                   \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
/* Key-exchange groups: elliptic curves only, in TLS 1.3 too. */
#define CA_TLS_GROUPS "X25519:P-256:X448:P-384:P-521"

/* Sets TLS 1.2 as the lowest version (a caller may raise it afterwards) and the suites and
 * groups above. CMN_ECRYPTO, with the reason, when OpenSSL refuses a list. */
int ca_tls_policy(SSL_CTX *ctx, char *errmsg) CMN_MUST_CHECK;

/* The certificate an endpoint presents. All borrowed: the SSL_CTX takes its own references. */
struct ca_tls_ident {
    X509 *cert;                       /* NULL: none (clients only) */
    EVP_PKEY *key;                    /* its private key */
    const struct ca_cert_list *chain; /* sent after cert; may be NULL */
};

/* The three builders below return a new SSL_CTX in *out (the caller owns it: SSL_CTX_free),
 * or leave *out NULL and fail with CMN_ENOMEM, or CMN_ECRYPTO with OpenSSL's reason (a policy
 * list refused, a key that does not match its certificate, a CA file that does not load). */

/* The HTTPS server: TLS 1.2+, a client certificate asked for but not required and accepted
 * whatever its chain (trust is decided by registration after the handshake), plaintext wiped
 * once read (request bodies carry passwords), record buffers released while idle (thousands of
 * keep-alive connections), and a session id context so that resumed sessions work. id->cert
 * is required. */
int ca_tls_server_ctx(const struct ca_tls_ident *id, SSL_CTX **out, char *errmsg) CMN_MUST_CHECK;

/* A Raft peer, both ends (TLS_method): TLS 1.3 only (only Corvid nodes speak Raft), the peer's
 * certificate required and accepted whatever its chain (trust is decided by the node list
 * after the handshake), no session tickets and no session cache. id->cert is required. */
int ca_tls_peer_ctx(const struct ca_tls_ident *id, SSL_CTX **out, char *errmsg) CMN_MUST_CHECK;

/* How a client judges the server's certificate during the handshake. */
enum ca_tls_trust {
    CA_TLS_TRUST_SYSTEM, /* the chain verifies to the system's trust store */
    CA_TLS_TRUST_FILE,   /* the chain verifies to the PEM CAs in ca_file */
    CA_TLS_TRUST_NONE,   /* not verified at all: an explicit opt-in (--insecure, no --cacert) */
    CA_TLS_TRUST_PINNED, /* not verified in the handshake: the caller compares the peer's
                          * certificate with the one it expects afterwards */
};

/* Client flags. */
#define CA_TLS_PARTIAL_WRITES                                                                      \
    1u /* SSL_write returns after part of the buffer; the buffer may                               \
        * move between retries (poll loops that queue their output) */
#define CA_TLS_NO_RESUMPTION                                                                       \
    2u                       /* no session cache, no tickets: each connection a full               \
                              * handshake (benchmarks measure it) */
#define CA_TLS_READ_AHEAD 4u /* one read() per wake-up instead of two per record */
#define CA_TLS_LENIENT_EOF                                                                         \
    8u /* a close without close_notify is a plain EOF: for answers                                 \
        * framed by their length, never by the connection's end */

/* A client context's options; pointers borrowed for the call. */
struct ca_tls_client_opts {
    enum ca_tls_trust trust;
    const char *ca_file;       /* CA_TLS_TRUST_FILE */
    struct ca_tls_ident id;    /* the client certificate; id.cert NULL for none */
    unsigned flags;            /* CA_TLS_* above */
    const unsigned char *alpn; /* protocol list in wire format (length-prefixed), or NULL */
    unsigned alpn_len;
};

/* A client: TLS 1.2+, trust as opts->trust (with the host name or IP address checked per
 * connection by the caller: SSL_set1_host / X509_VERIFY_PARAM_set1_ip_asc), the client
 * certificate when given. */
int ca_tls_client_ctx(const struct ca_tls_client_opts *opts, SSL_CTX **out,
                      char *errmsg) CMN_MUST_CHECK;

#endif
