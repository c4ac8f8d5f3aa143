/* The TLS policy every Corvid endpoint shares, server or client: HTTPS, Raft, the node's own
 * fetches, the CLI and the benchmarks. Sans I/O: it only configures an SSL_CTX. Not part of
 * ca/ca.h, so that users of certificates alone need not see libssl. */
#ifndef CORVID_CA_TLS_H
#define CORVID_CA_TLS_H

#include <openssl/ssl.h>

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

#endif
