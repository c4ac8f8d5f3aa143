/* corvid-bench's HTTPS/1.1 client for poll() loops (non-blocking connect, TLS handshake,
 * keep-alive requests, Content-Length responses), and the client certificates the HTTP
 * benchmarks register and present. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include "ca/certfile.h"
#include "ca/tls.h"
#include "common/env.h"
#include "net/url.h"
#include "tools/bench/bench.h"

#define HC_IN_MAX   (8u << 20)  /* the largest response body kept */
#define HC_HEAD_MAX (64u << 10) /* the largest response head */

static void ssl_err(char *out, size_t n, const char *what)
{
    unsigned long e = ERR_get_error();
    char buf[160] = "";
    if (e)
        ERR_error_string_n(e, buf, sizeof buf);
    snprintf(out, n, "%s%s%s", what, e ? ": " : "", buf);
    ERR_clear_error();
}

SSL_CTX *bench_tls_ctx(const char *cacert, const char *cert, const char *key, unsigned flags,
                       const unsigned char *alpn, unsigned alpn_len)
{
    char msg[CMN_ERRMSG_SIZE] = "";
    struct ca_certfile id;
    memset(&id, 0, sizeof id);
    struct ca_cert_list chain;
    ca_cert_list_init(&chain);
    SSL_CTX *ctx = NULL;
    int rv = 0;
    if (cert != NULL) {
        rv = ca_certfile_load(cert, key, NULL, CA_CERTFILE_KEY, &id, NULL, msg);
        if (rv != 0)
            cmn_errctx(msg, "%s", key ? key : cert);
        else
            rv = ca_certfile_chain(&id, &chain);
    }
    struct ca_tls_client_opts o = {
        .trust = cacert ? CA_TLS_TRUST_FILE : CA_TLS_TRUST_NONE,
        .ca_file = cacert,
        .id = {.cert = id.leaf, .key = id.key, .chain = &chain},
        .flags = flags,
        .alpn = alpn,
        .alpn_len = alpn_len,
    };
    if (rv == 0)
        rv = ca_tls_client_ctx(&o, &ctx, msg);
    if (rv != 0)
        fprintf(stderr, "corvid-bench: TLS setup: %s\n", msg);
    ca_cert_list_fini(&chain);
    ca_certfile_fini(&id);
    return ctx;
}

SSL_CTX *hc_ctx_new(const char *cacert, const char *cert, const char *key)
{
    /* Partial writes for the poll loops; one read() per socket wake-up instead of two per TLS
     * record (header, then body); every probe a full handshake: no session resumption. */
    return bench_tls_ctx(cacert, cert, key,
                         CA_TLS_PARTIAL_WRITES | CA_TLS_LENIENT_EOF | CA_TLS_READ_AHEAD |
                             CA_TLS_NO_RESUMPTION,
                         NULL, 0);
}

int hc_parse_url(const char *url, struct sockaddr_in *sa)
{
    const unsigned flags = NET_URL_BARE | NET_URL_PORT | NET_URL_NO_PATH | NET_URL_IP;
    struct net_url u;
    if (net_url_parse(url, flags, &u, NULL) != 0 || u.family != AF_INET)
        return -1;
    if (u.scheme[0] != '\0' && strcmp(u.scheme, "https") != 0)
        return -1;
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons(u.port);
    return inet_pton(AF_INET, u.host, &sa->sin_addr) == 1 ? 0 : -1;
}

static int fail(struct hc *c, const char *fmt, ...) CMN_PRINTF(2, 3);
static int fail(struct hc *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
    if (c->st != HC_CLOSED) {
        SSL_free(c->ssl);
        close(c->fd);
        c->ssl = NULL;
        c->fd = -1;
        c->st = HC_CLOSED;
    }
    c->want = 0;
    return HC_FAILED;
}

static int fail_ssl(struct hc *c, const char *what)
{
    char msg[200];
    int saved = errno;
    bool queued = ERR_peek_error() != 0;
    ssl_err(msg, sizeof msg, what);
    if (!queued) /* nothing from OpenSSL: the socket failed or the peer went away */
        return fail(c, "%s: %s", msg,
                    c->eof  ? "the server closed the connection"
                    : saved ? strerror(saved)
                            : "connection lost");
    return fail(c, "%s", msg);
}

int hc_open(struct hc *c, SSL_CTX *ctx, const struct sockaddr_in *sa, X509 *cert, EVP_PKEY *key)
{
    struct cmn_buf body = c->body; /* its capacity serves the next answers too */
    memset(c, 0, sizeof *c);
    c->body = body;
    c->fd = -1;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (c->fd < 0) {
        snprintf(c->err, sizeof c->err, "socket: %s", strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->ssl = SSL_new(ctx);
    if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1 ||
        (cert && SSL_use_certificate(c->ssl, cert) != 1) ||
        (key && SSL_use_PrivateKey(c->ssl, key) != 1)) {
        c->st = HC_CONNECTING; /* so that fail() frees */
        fail_ssl(c, "TLS setup");
        return -1;
    }
    c->st = HC_CONNECTING;
    if (connect(c->fd, (const struct sockaddr *)sa, sizeof *sa) != 0 && errno != EINPROGRESS) {
        fail(c, "connect: %s", strerror(errno));
        return -1;
    }
    c->want = POLLOUT;
    return 0;
}

void hc_send(struct hc *c, const char *req, size_t len)
{
    c->req = req;
    c->req_len = len;
    c->req_off = 0;
    c->resp.max_head = HC_HEAD_MAX;
    c->resp.max_body = HC_IN_MAX;
    c->resp.body = &c->body;
    net_http_resp_start(&c->resp);
    c->body_len = 0;
    c->status = 0;
    c->close_after = false;
    c->have_req = true;
    if (c->st == HC_OPEN) {
        c->st = HC_WRITING;
        c->want = POLLOUT; /* a poll() says at once that hc_io can go on */
    }
}

const char *hc_body(const struct hc *c)
{
    return c->body.data && c->body_len ? (const char *)c->body.data : "";
}

void hc_close(struct hc *c)
{
    if (c->st != HC_CLOSED) {
        SSL_free(c->ssl);
        close(c->fd);
    }
    c->ssl = NULL;
    c->fd = -1;
    c->st = HC_CLOSED;
    c->want = 0;
    cmn_buf_fini(&c->body);
}

int hc_io(struct hc *c)
{
    for (;;) {
        switch (c->st) {
        case HC_CLOSED:
            return HC_FAILED;
        case HC_CONNECTING: {
            int e = 0;
            socklen_t l = sizeof e;
            if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &e, &l) != 0)
                e = errno;
            if (e == EINPROGRESS || e == EALREADY) {
                c->want = POLLOUT;
                return HC_AGAIN;
            }
            if (e != 0)
                return fail(c, "connect: %s", strerror(e));
            struct pollfd p = {.fd = c->fd, .events = POLLOUT};
            if (poll(&p, 1, 0) == 0) { /* not connected yet */
                c->want = POLLOUT;
                return HC_AGAIN;
            }
            c->st = HC_HANDSHAKE;
            break;
        }
        case HC_HANDSHAKE: {
            int r = SSL_connect(c->ssl);
            if (r == 1) {
                c->st = c->have_req ? HC_WRITING : HC_OPEN;
                if (!c->have_req) {
                    c->want = POLLIN; /* session tickets and alerts */
                    return HC_OPENED;
                }
                break;
            }
            int e = SSL_get_error(c->ssl, r);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                c->want = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
                return HC_AGAIN;
            }
            if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0))
                c->eof = true;
            return fail_ssl(c, "handshake");
        }
        case HC_OPEN: {
            /* Idle: read what the server sends unasked (tickets, alerts, its close). */
            char buf[4096];
            int r = SSL_read(c->ssl, buf, sizeof buf);
            if (r > 0)
                return fail(c, "%s", "unexpected bytes from the server between responses");
            int e = SSL_get_error(c->ssl, r);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                c->want = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
                return HC_AGAIN;
            }
            c->eof = e == SSL_ERROR_ZERO_RETURN || e == SSL_ERROR_SYSCALL;
            return c->eof ? fail(c, "%s", "the server closed the connection") : fail_ssl(c, "read");
        }
        case HC_WRITING: {
            c->have_req = false;
            while (c->req_off < c->req_len) {
                int r = SSL_write(c->ssl, c->req + c->req_off, (int)(c->req_len - c->req_off));
                if (r > 0) {
                    c->req_off += (size_t)r;
                    continue;
                }
                int e = SSL_get_error(c->ssl, r);
                if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                    c->want = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
                    return HC_AGAIN;
                }
                c->eof = e == SSL_ERROR_ZERO_RETURN || e == SSL_ERROR_SYSCALL;
                return c->eof ? fail(c, "%s", "the server closed the connection")
                              : fail_ssl(c, "write");
            }
            c->st = HC_READING;
            break;
        }
        case HC_READING: {
            for (;;) {
                char buf[16384];
                int r = SSL_read(c->ssl, buf, sizeof buf);
                if (r <= 0) {
                    int e = SSL_get_error(c->ssl, r);
                    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                        c->want = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
                        return HC_AGAIN;
                    }
                    c->eof = e == SSL_ERROR_ZERO_RETURN || e == SSL_ERROR_SYSCALL;
                    return c->eof ? fail(c, "%s", "the server closed the connection")
                                  : fail_ssl(c, "read");
                }
                size_t used;
                char why[CMN_ERRMSG_SIZE];
                int rv = net_http_resp_feed(&c->resp, buf, (size_t)r, &used, why);
                if (rv == CMN_ETOOBIG)
                    return fail(c, "%s", "response too large");
                if (rv == CMN_ENOMEM)
                    return fail(c, "%s", "out of memory");
                if (rv != 0)
                    return fail(c, "malformed HTTP response: %s", why);
                if (!c->resp.complete)
                    continue;
                if (used < (size_t)r)
                    return fail(c, "%s", "bytes after the response");
                c->status = c->resp.status;
                c->body_len = c->resp.body_len;
                c->close_after = !c->resp.keep_alive;
                c->st = HC_OPEN;
                c->want = POLLIN;
                return HC_RESPONSE;
            }
        }
        }
    }
}

static int wait_io(struct hc *c, double deadline, int stop_at)
{
    for (;;) {
        int r = hc_io(c);
        if (r == HC_FAILED || r == stop_at)
            return r;
        double left = deadline - bench_now();
        if (left <= 0)
            return fail(c, "%s", "timed out");
        struct pollfd p = {.fd = c->fd, .events = c->want};
        if (poll(&p, 1, (int)(left * 1000) + 1) < 0 && errno != EINTR)
            return fail(c, "poll: %s", strerror(errno));
    }
}

int hc_open_wait(struct hc *c, SSL_CTX *ctx, const struct sockaddr_in *sa, X509 *cert,
                 EVP_PKEY *key, double timeout_s)
{
    if (hc_open(c, ctx, sa, cert, key) != 0)
        return -1;
    return wait_io(c, bench_now() + timeout_s, HC_OPENED) == HC_OPENED ? 0 : -1;
}

int hc_roundtrip(struct hc *c, const char *req, size_t len, double timeout_s)
{
    hc_send(c, req, len);
    return wait_io(c, bench_now() + timeout_s, HC_RESPONSE);
}

/* ---- certificates ---- */

/* Issues like ca_cert_issue's client profile (basic constraints CA:FALSE, key usage
 * digitalSignature, extended key usage clientAuth, all critical; subject and authority key
 * identifiers), but sets the public key from its encoded point: X509_set_pubkey in OpenSSL 3
 * encodes and decodes the key again, which is most of the ~0.35 ms ca_cert_issue costs, and
 * the bulk loads make hundreds of thousands of certificates. */
int bench_client_cert(const struct ca_signer *signer, const char *cn, int days, X509 **cert,
                      EVP_PKEY **key, char *errmsg)
{
    static EVP_PKEY_CTX *kctx;
    int64_t now = cmn_now_ms(&cmn_clock_system) / 1000, nb, na;
    ca_validity_days(now, days, &nb, &na);
    *cert = NULL;
    *key = NULL;
    if (kctx == NULL) {
        kctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
        if (kctx == NULL || EVP_PKEY_keygen_init(kctx) <= 0 ||
            EVP_PKEY_CTX_set_group_name(kctx, "P-256") <= 0) {
            EVP_PKEY_CTX_free(kctx);
            kctx = NULL;
            snprintf(errmsg, CMN_ERRMSG_SIZE, "EC key generation setup failed");
            return -1;
        }
    }
    unsigned char pt[133], serial[16], ski[SHA_DIGEST_LENGTH];
    size_t ptlen = 0;
    if (EVP_PKEY_generate(kctx, key) <= 0 ||
        EVP_PKEY_get_octet_string_param(*key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pt, sizeof pt,
                                        &ptlen) != 1 ||
        cmn_random(&cmn_rng_system, serial, sizeof serial) != 0) {
        snprintf(errmsg, CMN_ERRMSG_SIZE, "EC key generation failed");
        EVP_PKEY_free(*key);
        *key = NULL;
        return -1;
    }
    serial[0] = (unsigned char)((serial[0] & 0x7f) | 0x40); /* positive, 16 octets */
    SHA1(pt, ptlen, ski);
    X509 *x = X509_new();
    X509_NAME *subject = X509_NAME_new();
    ASN1_INTEGER *sn = ASN1_INTEGER_new();
    unsigned char *penc = OPENSSL_memdup(pt, ptlen);
    BASIC_CONSTRAINTS *bc = BASIC_CONSTRAINTS_new();
    ASN1_BIT_STRING *ku = ASN1_BIT_STRING_new();
    EXTENDED_KEY_USAGE *eku = sk_ASN1_OBJECT_new_null();
    ASN1_OCTET_STRING *skid = ASN1_OCTET_STRING_new();
    AUTHORITY_KEYID *akid = AUTHORITY_KEYID_new();
    const ASN1_OCTET_STRING *issuer_kid = X509_get0_subject_key_id(signer->cert);
    int ok =
        x && subject && sn && penc && bc && ku && eku && skid && akid &&
        X509_set_version(x, X509_VERSION_3) &&
        X509_NAME_add_entry_by_NID(subject, NID_commonName, MBSTRING_UTF8,
                                   (const unsigned char *)cn, -1, -1, 0) &&
        X509_set_subject_name(x, subject) &&
        X509_set_issuer_name(x, X509_get_subject_name(signer->cert)) &&
        ASN1_STRING_set(sn, serial, sizeof serial) && X509_set_serialNumber(x, sn) &&
        ASN1_TIME_set(X509_getm_notBefore(x), (time_t)nb) &&
        ASN1_TIME_set(X509_getm_notAfter(x), (time_t)na) &&
        X509_PUBKEY_set0_param(X509_get_X509_PUBKEY(x), OBJ_nid2obj(NID_X9_62_id_ecPublicKey),
                               V_ASN1_OBJECT, OBJ_nid2obj(NID_X9_62_prime256v1), penc, (int)ptlen);
    if (ok)
        penc = NULL; /* owned by the certificate now */
    ok = ok && ASN1_BIT_STRING_set_bit(ku, 0, 1) &&
         sk_ASN1_OBJECT_push(eku, OBJ_nid2obj(NID_client_auth)) > 0 &&
         ASN1_OCTET_STRING_set(skid, ski, sizeof ski) &&
         X509_add1_ext_i2d(x, NID_basic_constraints, bc, 1, X509V3_ADD_DEFAULT) == 1 &&
         X509_add1_ext_i2d(x, NID_key_usage, ku, 1, X509V3_ADD_DEFAULT) == 1 &&
         X509_add1_ext_i2d(x, NID_ext_key_usage, eku, 1, X509V3_ADD_DEFAULT) == 1 &&
         X509_add1_ext_i2d(x, NID_subject_key_identifier, skid, 0, X509V3_ADD_DEFAULT) == 1;
    if (ok && issuer_kid) {
        akid->keyid = ASN1_OCTET_STRING_dup(issuer_kid);
        ok = akid->keyid &&
             X509_add1_ext_i2d(x, NID_authority_key_identifier, akid, 0, X509V3_ADD_DEFAULT) == 1;
    }
    ok = ok && X509_sign(x, signer->key, EVP_sha256()) > 0;
    OPENSSL_free(penc);
    X509_NAME_free(subject);
    ASN1_INTEGER_free(sn);
    BASIC_CONSTRAINTS_free(bc);
    ASN1_BIT_STRING_free(ku);
    sk_ASN1_OBJECT_free(eku); /* the objects are static */
    ASN1_OCTET_STRING_free(skid);
    AUTHORITY_KEYID_free(akid);
    if (!ok) {
        char msg[200];
        ssl_err(msg, sizeof msg, "issuing a client certificate");
        snprintf(errmsg, CMN_ERRMSG_SIZE, "%s", msg);
        X509_free(x);
        EVP_PKEY_free(*key);
        *key = NULL;
        return -1;
    }
    *cert = x;
    return 0;
}

int bench_signer(const char *path, struct ca_signer *out, char *errmsg)
{
    out->cert = NULL;
    out->key = NULL;
    if (path)
        return bench_load_issuer(path, &out->cert, &out->key, errmsg) == 0 ? 0 : -1;
    int64_t now = cmn_now_ms(&cmn_clock_system) / 1000, nb, na;
    if (ca_key_generate(CA_KEY_EC_P256, &out->key, errmsg) != 0)
        return -1;
    ca_validity_days(now, 30, &nb, &na);
    struct ca_cert_req cr = {.profile = CA_PROFILE_ROOT,
                             .cn = "corvid-bench http CA",
                             .not_before = nb,
                             .not_after = na,
                             .subject_key = out->key};
    if (ca_cert_issue(&cr, NULL, &cmn_rng_system, &out->cert, errmsg) != 0) {
        bench_signer_fini(out);
        return -1;
    }
    return 0;
}

void bench_signer_fini(struct ca_signer *s)
{
    X509_free(s->cert);
    EVP_PKEY_free(s->key);
    s->cert = NULL;
    s->key = NULL;
}

int bench_write_pem(const char *path, X509 *cert, EVP_PKEY *key, char *errmsg)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL) {
        snprintf(errmsg, CMN_ERRMSG_SIZE, "cannot write %.200s: %s", path, strerror(errno));
        return -1;
    }
    int ok = PEM_write_X509(f, cert) == 1 &&
             PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) == 1;
    if (fclose(f) != 0)
        ok = 0;
    if (!ok)
        snprintf(errmsg, CMN_ERRMSG_SIZE, "cannot write %.200s", path);
    return ok ? 0 : -1;
}

int bench_json_str(struct cmn_buf *out, const char *s, size_t n)
{
    if (cmn_buf_append(out, "\"", 1) != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        char esc[8];
        if (ch == '"' || ch == '\\') {
            esc[0] = '\\';
            esc[1] = (char)ch;
            if (cmn_buf_append(out, esc, 2) != 0)
                return -1;
        } else if (ch == '\n') {
            if (cmn_buf_append(out, "\\n", 2) != 0)
                return -1;
        } else if (ch < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", ch);
            if (cmn_buf_append(out, esc, 6) != 0)
                return -1;
        } else if (cmn_buf_append(out, s + i, 1) != 0) {
            return -1;
        }
    }
    return cmn_buf_append(out, "\"", 1);
}
