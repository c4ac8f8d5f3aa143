/* Certificate identity: digests, pinning hash, serial, validity, EKUs, SANs, names, issuer check.
 */
#include "ca/ident.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "ca/cert.h"
#include "ca/internal.h"

/* OpenSSL 3.0 takes non-const X509 in accessors that only fill its extension cache (which it
 * does under a lock); the certificate's content is not changed. */
static X509 *mut(const X509 *x)
{
    return (X509 *)x;
}

static int digest_hex(const X509 *x, const EVP_MD *md, char *out)
{
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (!X509_digest(x, md, d, &n)) {
        ERR_clear_error();
        return CMN_ECRYPTO;
    }
    cmn_hex_upper(d, n, out);
    return 0;
}

int ca_thumbprint(const X509 *x, char out[CA_THUMBPRINT_SIZE])
{
    return digest_hex(x, EVP_sha1(), out);
}

int ca_fingerprint_sha256(const X509 *x, char out[CA_SHA256_HEX_SIZE])
{
    return digest_hex(x, EVP_sha256(), out);
}

int ca_pkph(const X509 *x, char out[CA_PKPH_SIZE])
{
    unsigned char *der = NULL;
    int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);
    if (len <= 0) {
        ERR_clear_error();
        return CMN_EMALFORMED;
    }
    unsigned char d[32];
    int ok = EVP_Digest(der, (size_t)len, d, NULL, EVP_sha256(), NULL);
    OPENSSL_free(der);
    if (!ok) {
        ERR_clear_error();
        return CMN_ECRYPTO;
    }
    EVP_EncodeBlock((unsigned char *)out, d, sizeof d); /* 44 characters and a NUL */
    return 0;
}

int ca_serial_hex(const X509 *x, char out[CA_SERIAL_HEX_SIZE])
{
    const ASN1_INTEGER *s = X509_get0_serialNumber(x);
    if (ASN1_STRING_type(s) == V_ASN1_NEG_INTEGER)
        return CMN_EUNSUPPORTED;
    int len = ASN1_STRING_length(s);
    if (len > (CA_SERIAL_HEX_SIZE - 1) / 2)
        return CMN_EUNSUPPORTED;
    if (len == 0) {
        strcpy(out, "00");
        return 0;
    }
    cmn_hex_upper(ASN1_STRING_get0_data(s), (size_t)len, out);
    return 0;
}

static int time_to_unix(const ASN1_TIME *t, int64_t *out)
{
    struct tm tm;
    if (t == NULL || !ASN1_TIME_to_tm(t, &tm)) {
        ERR_clear_error();
        return CMN_EMALFORMED;
    }
    *out = ca__unix_from_civil((int64_t)tm.tm_year + 1900, (unsigned)tm.tm_mon + 1,
                               (unsigned)tm.tm_mday, (unsigned)tm.tm_hour, (unsigned)tm.tm_min,
                               (unsigned)tm.tm_sec);
    return 0;
}

int ca_validity(const X509 *x, int64_t *not_before, int64_t *not_after)
{
    int rv = time_to_unix(X509_get0_notBefore(x), not_before);
    if (rv == 0)
        rv = time_to_unix(X509_get0_notAfter(x), not_after);
    return rv;
}

unsigned ca_eku(const X509 *x)
{
    uint32_t xku = X509_get_extended_key_usage(mut(x));
    if (xku == UINT32_MAX || (xku & XKU_ANYEKU))
        return CA_EKU_ANY | CA_EKU_SERVER | CA_EKU_CLIENT;
    unsigned r = 0;
    if (xku & XKU_SSL_SERVER)
        r |= CA_EKU_SERVER;
    if (xku & XKU_SSL_CLIENT)
        r |= CA_EKU_CLIENT;
    return r;
}

bool ca_is_ca(const X509 *x)
{
    return (X509_get_extension_flags(mut(x)) & EXFLAG_CA) != 0;
}

/* Copies an ASN1 string's bytes, replacing non-printable ones (and NULs) with '?'. */
static void printable(char *dst, size_t cap, const ASN1_STRING *s)
{
    const unsigned char *p = ASN1_STRING_get0_data(s);
    size_t n = (size_t)ASN1_STRING_length(s);
    if (n > cap - 1)
        n = cap - 1;
    for (size_t i = 0; i < n; i++)
        dst[i] = (p[i] >= 0x20 && p[i] < 0x7f) ? (char)p[i] : '?';
    dst[n] = '\0';
}

int ca_node_tag(const X509 *x, char out[CA_NODE_TAG_SIZE])
{
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    int rv = CMN_ENOTFOUND;
    size_t plen = strlen(CA_NODE_URN_PREFIX);
    for (int i = 0; gens != NULL && i < sk_GENERAL_NAME_num(gens); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        if (g->type != GEN_URI)
            continue;
        char uri[64];
        if ((size_t)ASN1_STRING_length(g->d.uniformResourceIdentifier) >= sizeof uri)
            continue;
        printable(uri, sizeof uri, g->d.uniformResourceIdentifier);
        if (strncmp(uri, CA_NODE_URN_PREFIX, plen) == 0 && ca_node_tag_valid(uri + plen)) {
            strcpy(out, uri + plen);
            rv = 0;
            break;
        }
    }
    GENERAL_NAMES_free(gens);
    ERR_clear_error();
    if (rv != 0)
        out[0] = '\0';
    return rv;
}

bool ca_names_node(const X509 *x, const char *tag)
{
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    bool found = false;
    char want[64];
    if (!ca_node_tag_valid(tag) ||
        snprintf(want, sizeof want, CA_NODE_URN_PREFIX "%s", tag) >= (int)sizeof want)
        want[0] = '\0';
    for (int i = 0; want[0] && gens != NULL && !found && i < sk_GENERAL_NAME_num(gens); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        if (g->type != GEN_URI)
            continue;
        const ASN1_STRING *u = g->d.uniformResourceIdentifier;
        found = (size_t)ASN1_STRING_length(u) == strlen(want) &&
                memcmp(ASN1_STRING_get0_data(u), want, strlen(want)) == 0;
    }
    GENERAL_NAMES_free(gens);
    ERR_clear_error();
    return found;
}

int ca_ident_get(const X509 *x, struct ca_ident *out, char *errmsg)
{
    memset(out, 0, sizeof *out);
    if (X509_get_extension_flags(mut(x)) & EXFLAG_INVALID)
        return cmn_fail(errmsg, CMN_EMALFORMED, "certificate has invalid extensions");
    int rv;
    if ((rv = ca_thumbprint(x, out->thumbprint)) != 0 ||
        (rv = ca_fingerprint_sha256(x, out->sha256)) != 0 || (rv = ca_pkph(x, out->pkph)) != 0)
        return cmn_fail(errmsg, rv, "cannot digest certificate");
    if ((rv = ca_serial_hex(x, out->serial)) != 0)
        return cmn_fail(errmsg, rv, "certificate serial is negative or longer than 64 bytes");
    if ((rv = ca_validity(x, &out->not_before, &out->not_after)) != 0)
        return cmn_fail(errmsg, rv, "certificate has an invalid validity time");
    out->eku = ca_eku(x);
    out->is_ca = ca_is_ca(x);
    out->self_signed = X509_self_signed(mut(x), 0) == 1;
    ERR_clear_error();
    if (ca_node_tag(x, out->node_tag) != 0)
        out->node_tag[0] = '\0'; /* not a node certificate */
    return 0;
}

static int name_str(const X509_NAME *name, struct cmn_buf *out)
{
    BIO *bio = BIO_new(BIO_s_mem());
    if (bio == NULL)
        return CMN_ENOMEM;
    unsigned long flags = (ASN1_STRFLGS_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) | XN_FLAG_SEP_CPLUS_SPC |
                          XN_FLAG_DN_REV | XN_FLAG_FN_SN | XN_FLAG_DUMP_UNKNOWN_FIELDS;
    int rv = X509_NAME_print_ex(bio, name, 0, flags) < 0 ? CMN_EMALFORMED : 0;
    if (rv == 0)
        rv = ca__bio_to_buf(bio, out);
    if (rv == 0)
        rv = cmn_buf_append(out, "", 0); /* NUL-terminate even when empty */
    BIO_free(bio);
    ERR_clear_error();
    return rv;
}

int ca_subject_str(const X509 *x, struct cmn_buf *out)
{
    return name_str(X509_get_subject_name(x), out);
}

int ca_issuer_str(const X509 *x, struct cmn_buf *out)
{
    return name_str(X509_get_issuer_name(x), out);
}

int ca_subject_cn(const X509 *x, struct cmn_buf *out)
{
    const X509_NAME *name = X509_get_subject_name(x);
    int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    if (i < 0)
        return CMN_ENOTFOUND;
    unsigned char *utf8 = NULL;
    int n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)));
    if (n < 0) {
        ERR_clear_error();
        return CMN_EMALFORMED;
    }
    int rv = cmn_buf_append(out, utf8, (size_t)n);
    OPENSSL_free(utf8);
    return rv;
}

void ca_strlist_fini(struct ca_strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

static int strlist_push(struct ca_strlist *l, const char *prefix, const char *value)
{
    size_t len = strlen(prefix) + strlen(value) + 1;
    char *s = malloc(len);
    char **v = realloc(l->v, (l->n + 1) * sizeof *v);
    if (v != NULL)
        l->v = v;
    if (s == NULL || v == NULL) {
        free(s);
        return CMN_ENOMEM;
    }
    snprintf(s, len, "%s%s", prefix, value);
    l->v[l->n++] = s;
    return 0;
}

static int san_push(struct ca_strlist *l, const GENERAL_NAME *g)
{
    char buf[512];
    switch (g->type) {
    case GEN_DNS:
        printable(buf, sizeof buf, g->d.dNSName);
        return strlist_push(l, "DNS:", buf);
    case GEN_URI:
        printable(buf, sizeof buf, g->d.uniformResourceIdentifier);
        return strlist_push(l, "URI:", buf);
    case GEN_EMAIL:
        printable(buf, sizeof buf, g->d.rfc822Name);
        return strlist_push(l, "email:", buf);
    case GEN_IPADD: {
        int len = ASN1_STRING_length(g->d.iPAddress);
        const unsigned char *p = ASN1_STRING_get0_data(g->d.iPAddress);
        if ((len == 4 && inet_ntop(AF_INET, p, buf, sizeof buf) != NULL) ||
            (len == 16 && inet_ntop(AF_INET6, p, buf, sizeof buf) != NULL))
            return strlist_push(l, "IP:", buf);
        return strlist_push(l, "IP:", "<invalid>");
    }
    case GEN_DIRNAME: {
        struct cmn_buf b;
        cmn_buf_init(&b, false);
        int rv = name_str(g->d.directoryName, &b);
        if (rv == 0)
            rv = strlist_push(l, "DirName:", (const char *)b.data);
        cmn_buf_fini(&b);
        return rv;
    }
    case GEN_RID:
        return strlist_push(l, "RID", "");
    default:
        return strlist_push(l, "othername", "");
    }
}

int ca_sans(const X509 *x, struct ca_strlist *out, char *errmsg)
{
    out->v = NULL;
    out->n = 0;
    int crit = 0;
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, &crit, NULL);
    if (gens == NULL) {
        ERR_clear_error();
        if (crit == -1) /* no extension */
            return 0;
        return cmn_fail(errmsg, CMN_EMALFORMED,
                        crit == -2 ? "certificate has more than one subjectAltName extension"
                                   : "certificate's subjectAltName does not decode");
    }
    int rv = 0;
    for (int i = 0; rv == 0 && i < sk_GENERAL_NAME_num(gens); i++)
        rv = san_push(out, sk_GENERAL_NAME_value(gens, i));
    GENERAL_NAMES_free(gens);
    if (rv != 0) {
        ca_strlist_fini(out);
        return cmn_fail(errmsg, rv, "listing subjectAltName failed");
    }
    return 0;
}

int ca_issued_by(const X509 *cert, const X509 *ca_cert, char *errmsg)
{
    int v = X509_check_issued(mut(ca_cert), mut(cert));
    if (v != X509_V_OK) {
        ERR_clear_error();
        return cmn_fail(errmsg, CMN_EINVALID, "not issued by this CA: %s",
                        X509_verify_cert_error_string(v));
    }
    EVP_PKEY *pub = X509_get0_pubkey(ca_cert);
    if (pub == NULL || X509_verify(mut(cert), pub) != 1)
        return ca__ossl_fail(errmsg, CMN_EBADSIG,
                             "certificate signature does not verify with the CA's key");
    return 0;
}
