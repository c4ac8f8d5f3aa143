/* Certificate issuance for the four Corvid profiles, validity helpers and certificate lists. */
#include "ca/cert.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "ca/ident.h"
#include "ca/internal.h"
#include "ca/key.h"

/* Earliest and latest times an X.509 Time can carry (1950-01-01 and 9999-12-31T23:59:59Z). */
#define CA_TIME_MIN (-631152000LL)
#define CA_TIME_MAX 253402300799LL

void ca_cert_list_init(struct ca_cert_list *l)
{
    memset(l, 0, sizeof *l);
}

void ca_cert_list_fini(struct ca_cert_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        X509_free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

int ca_cert_list_push(struct ca_cert_list *l, X509 *x)
{
    if (x == NULL)
        return CMN_EINVALID;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 4;
        X509 **v = realloc(l->v, cap * sizeof *v);
        if (v == NULL) {
            X509_free(x);
            return CMN_ENOMEM;
        }
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = x;
    return 0;
}

int ca_cert_list_add(struct ca_cert_list *l, X509 *x)
{
    if (x == NULL || !X509_up_ref(x))
        return CMN_EINVALID;
    return ca_cert_list_push(l, x);
}

/* ---- validity helpers ---- */

int64_t ca_day_start(int64_t t)
{
    int64_t r = t % CA_DAY_SECS;
    return r < 0 ? t - r - CA_DAY_SECS : t - r;
}

/* Days since 1970-01-01 of a proleptic Gregorian date, and back (H. Hinnant's algorithms). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

int64_t ca__unix_from_civil(int64_t y, unsigned mon, unsigned day, unsigned h, unsigned mi,
                            unsigned s)
{
    return days_from_civil(y, mon, day) * CA_DAY_SECS + h * 3600 + mi * 60 + s;
}

int64_t ca_add_years(int64_t t, int years)
{
    int64_t day = ca_day_start(t);
    int64_t secs = t - day;
    int64_t y;
    unsigned m, d;
    civil_from_days(day / CA_DAY_SECS, &y, &m, &d);
    y += years;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (m == 2 && d == 29 && !leap)
        d = 28;
    return days_from_civil(y, m, d) * CA_DAY_SECS + secs;
}

void ca_client_default_validity(int64_t now, int64_t *not_before, int64_t *not_after)
{
    int64_t today = ca_day_start(now);
    *not_before = today - CA_CLOCK_SKEW_SECS;
    *not_after = ca_add_years(today, CA_CLIENT_DEFAULT_YEARS);
}

void ca_validity_days(int64_t now, int64_t days, int64_t *not_before, int64_t *not_after)
{
    int64_t today = ca_day_start(now);
    *not_before = today - CA_CLOCK_SKEW_SECS;
    *not_after = today + days * CA_DAY_SECS;
}

/* ---- input validation ---- */

bool ca_node_tag_valid(const char *s)
{
    if (s == NULL)
        return false;
    size_t n = 0;
    for (; s[n]; n++)
        if (s[n] < 'A' || s[n] > 'Z' || n >= 4)
            return false;
    return n >= 1;
}

/* Parses an IP literal strictly (inet_pton) into 4 or 16 bytes; returns the length or 0. */
static int parse_ip(const char *s, unsigned char out[16])
{
    if (inet_pton(AF_INET, s, out) == 1)
        return 4;
    if (inet_pton(AF_INET6, s, out) == 1)
        return 16;
    return 0;
}

static bool dns_name_valid(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || len > 253)
        return false;
    size_t label = 0;
    bool digits_only = true; /* of the current label: a numeric last label is a mangled IP */
    for (size_t i = 0; i <= len; i++) {
        char c = s[i];
        if (c == '.' || c == '\0') {
            if (label == 0 || label > 63 || s[i - 1] == '-')
                return false;
            if (c == '\0')
                return !digits_only;
            label = 0;
            digits_only = true;
            continue;
        }
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && !(c == '-' && label > 0))
            return false;
        if (!(c >= '0' && c <= '9'))
            digits_only = false;
        label++;
    }
    return false;
}

bool ca_host_valid(const char *s)
{
    unsigned char ip[16];
    return s != NULL && (parse_ip(s, ip) != 0 || dns_name_valid(s));
}

static bool cn_valid(const char *s)
{
    if (s == NULL || s[0] == '\0' || strlen(s) > 256)
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return false;
    return true;
}

/* ---- issuance ---- */

static int add_conf_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value, char *errmsg)
{
    X509_EXTENSION *e = X509V3_EXT_nconf_nid(NULL, ctx, nid, value);
    if (e == NULL)
        return ca__ossl_fail(errmsg, CMN_ECRYPTO, "building extension %s=%s failed",
                             OBJ_nid2sn(nid), value);
    int ok = X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
    if (!ok)
        return ca__ossl_fail(errmsg, CMN_ENOMEM, "adding extension %s failed", OBJ_nid2sn(nid));
    return 0;
}

static GENERAL_NAME *make_name(int type, const void *data, int len)
{
    ASN1_STRING *s =
        ASN1_STRING_type_new(type == GEN_IPADD ? V_ASN1_OCTET_STRING : V_ASN1_IA5STRING);
    GENERAL_NAME *g = GENERAL_NAME_new();
    if (s == NULL || g == NULL || !ASN1_STRING_set(s, data, len)) {
        ASN1_STRING_free(s);
        GENERAL_NAME_free(g);
        return NULL;
    }
    GENERAL_NAME_set0_value(g, type, s);
    return g;
}

static int add_node_san(X509 *x, const char *host, const char *tag, char *errmsg)
{
    int rv = CMN_ENOMEM;
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
    if (gens == NULL)
        goto out;
    unsigned char ip[16];
    int iplen = parse_ip(host, ip);
    GENERAL_NAME *g =
        iplen ? make_name(GEN_IPADD, ip, iplen) : make_name(GEN_DNS, host, (int)strlen(host));
    if (g == NULL || !sk_GENERAL_NAME_push(gens, g)) {
        GENERAL_NAME_free(g);
        goto out;
    }
    char uri[64];
    snprintf(uri, sizeof uri, "%s%s", CA_NODE_URN_PREFIX, tag);
    g = make_name(GEN_URI, uri, (int)strlen(uri));
    if (g == NULL || !sk_GENERAL_NAME_push(gens, g)) {
        GENERAL_NAME_free(g);
        goto out;
    }
    if (!X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT))
        goto out;
    rv = 0;
out:
    GENERAL_NAMES_free(gens);
    if (rv != 0)
        return ca__ossl_fail(errmsg, rv, "building subjectAltName failed");
    return 0;
}

static int random_serial(X509 *x, const struct cmn_rng *rng, char *errmsg)
{
    unsigned char b[CA_SERIAL_BYTES];
    int rv = cmn_random(rng, b, sizeof b);
    if (rv != 0)
        return cmn_fail(errmsg, rv, "random source failed: %s", cmn_strerror(rv));
    b[0] = (unsigned char)((b[0] & 0x7f) | 0x40);
    ASN1_INTEGER *serial = ASN1_INTEGER_new();
    if (serial == NULL || !ASN1_STRING_set(serial, b, sizeof b) ||
        !X509_set_serialNumber(x, serial)) {
        ASN1_INTEGER_free(serial);
        return ca__ossl_fail(errmsg, CMN_ENOMEM, "setting serial number failed");
    }
    ASN1_INTEGER_free(serial);
    return 0;
}

static int check_request(const struct ca_cert_req *req, const struct ca_signer *signer,
                         char *errmsg)
{
    if (req->subject_key == NULL)
        return cmn_fail(errmsg, CMN_EINVALID, "no subject key");
    int krv = ca_key_check(req->subject_key, errmsg);
    if (krv != 0 && krv != CMN_EUNSUPPORTED)
        return krv;
    if (krv != 0) {
        char desc[32];
        ca_key_describe(req->subject_key, desc, sizeof desc);
        return cmn_fail(errmsg, CMN_EUNSUPPORTED,
                        "%s keys are not accepted (RSA 2048+ or EC P-256/P-384/P-521)", desc);
    }
    if (!cn_valid(req->cn))
        return cmn_fail(errmsg, CMN_EINVALID,
                        "invalid common name: 1..64 characters without control characters");
    if (req->not_before < CA_TIME_MIN || req->not_after > CA_TIME_MAX ||
        req->not_after <= req->not_before)
        return cmn_fail(errmsg, CMN_EINVALID,
                        "invalid validity: NotAfter must follow NotBefore, both within "
                        "1950..9999");
    if (req->profile == CA_PROFILE_NODE) {
        if (!ca_node_tag_valid(req->node_tag))
            return cmn_fail(errmsg, CMN_EINVALID,
                            "invalid node tag '%.16s': 1..4 upper-case letters",
                            req->node_tag ? req->node_tag : "");
        if (!ca_host_valid(req->host))
            return cmn_fail(errmsg, CMN_EINVALID,
                            "invalid node host '%.100s': an IP address or a DNS name",
                            req->host ? req->host : "");
    }
    switch (req->profile) {
    case CA_PROFILE_ROOT:
        if (signer != NULL)
            return cmn_fail(errmsg, CMN_EINVALID, "a root CA is self-signed: no signer");
        return 0;
    case CA_PROFILE_ISSUING:
    case CA_PROFILE_NODE:
    case CA_PROFILE_CLIENT:
        break;
    default:
        return cmn_fail(errmsg, CMN_EINVALID, "unknown certificate profile %d", (int)req->profile);
    }
    if (signer == NULL || signer->cert == NULL || signer->key == NULL)
        return cmn_fail(errmsg, CMN_EINVALID, "a signer certificate and key are required");
    if (X509_check_private_key(signer->cert, signer->key) != 1)
        return ca__ossl_fail(errmsg, CMN_EINVALID,
                             "the signer's key does not match the signer's certificate");
    uint32_t flags = X509_get_extension_flags(signer->cert);
    if (!(flags & EXFLAG_CA) || (flags & EXFLAG_INVALID))
        return cmn_fail(errmsg, CMN_EINVALID, "the signer certificate is not a CA");
    if ((flags & EXFLAG_KUSAGE) && !(X509_get_key_usage(signer->cert) & KU_KEY_CERT_SIGN))
        return cmn_fail(errmsg, CMN_EINVALID, "the signer certificate lacks keyCertSign");
    if (req->profile == CA_PROFILE_ISSUING && X509_get_pathlen(signer->cert) == 0)
        return cmn_fail(errmsg, CMN_EINVALID,
                        "the signer has pathlen:0 and cannot certify another CA");
    int64_t signer_nb, signer_na;
    int rv = ca_validity(signer->cert, &signer_nb, &signer_na);
    if (rv != 0)
        return cmn_fail(errmsg, rv, "the signer certificate has an unreadable validity");
    if (req->not_after > signer_na)
        return cmn_fail(errmsg, CMN_EINVALID,
                        "NotAfter (%lld) is after the signer's NotAfter (%lld)",
                        (long long)req->not_after, (long long)signer_na);
    return 0;
}

int ca_cert_issue(const struct ca_cert_req *req, const struct ca_signer *signer,
                  const struct cmn_rng *rng, X509 **out, char *errmsg)
{
    *out = NULL;
    int rv = check_request(req, signer, errmsg);
    if (rv != 0)
        return rv;

    X509 *x = X509_new();
    X509_NAME *subject = X509_NAME_new();
    if (x == NULL || subject == NULL) {
        rv = cmn_fail(errmsg, CMN_ENOMEM, "out of memory");
        goto err;
    }
    if (!X509_set_version(x, X509_VERSION_3) ||
        !X509_NAME_add_entry_by_NID(subject, NID_commonName, MBSTRING_UTF8,
                                    (const unsigned char *)req->cn, -1, -1, 0)) {
        rv = ca__ossl_fail(errmsg, CMN_EINVALID, "invalid common name (1..64 characters of UTF-8)");
        goto err;
    }
    bool root = req->profile == CA_PROFILE_ROOT;
    EVP_PKEY *sign_key = root ? req->subject_key : signer->key;
    X509 *issuer_cert = root ? x : signer->cert;
    if (!X509_set_subject_name(x, subject) ||
        !X509_set_issuer_name(x, root ? subject : X509_get_subject_name(signer->cert)) ||
        !X509_set_pubkey(x, req->subject_key) ||
        !ASN1_TIME_set(X509_getm_notBefore(x), (time_t)req->not_before) ||
        !ASN1_TIME_set(X509_getm_notAfter(x), (time_t)req->not_after)) {
        rv = ca__ossl_fail(errmsg, CMN_ECRYPTO, "filling the certificate failed");
        goto err;
    }
    rv = random_serial(x, rng, errmsg);
    if (rv != 0)
        goto err;

    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer_cert, x, NULL, NULL, 0);
    if (!X509V3_set_issuer_pkey(&ctx, sign_key)) {
        rv = ca__ossl_fail(errmsg, CMN_ECRYPTO, "setting up extensions failed");
        goto err;
    }
    bool rsa = ca_key_is_rsa(req->subject_key);
    const char *bc, *ku, *eku = NULL;
    switch (req->profile) {
    case CA_PROFILE_ROOT:
        bc = "critical,CA:TRUE";
        ku = "critical,keyCertSign,cRLSign";
        break;
    case CA_PROFILE_ISSUING:
        bc = "critical,CA:TRUE,pathlen:0";
        ku = "critical,digitalSignature,keyCertSign,cRLSign";
        break;
    case CA_PROFILE_NODE:
        bc = "critical,CA:FALSE";
        ku = rsa ? "critical,digitalSignature,keyEncipherment" : "critical,digitalSignature";
        eku = "serverAuth,clientAuth";
        break;
    default:
        bc = "critical,CA:FALSE";
        ku = rsa ? "critical,digitalSignature,keyEncipherment" : "critical,digitalSignature";
        eku = "critical,clientAuth";
        break;
    }
    if ((rv = add_conf_ext(x, &ctx, NID_basic_constraints, bc, errmsg)) != 0 ||
        (rv = add_conf_ext(x, &ctx, NID_key_usage, ku, errmsg)) != 0 ||
        (eku && (rv = add_conf_ext(x, &ctx, NID_ext_key_usage, eku, errmsg)) != 0) ||
        (rv = add_conf_ext(x, &ctx, NID_subject_key_identifier, "hash", errmsg)) != 0 ||
        (rv = add_conf_ext(x, &ctx, NID_authority_key_identifier, "keyid:always", errmsg)) != 0)
        goto err;
    if (req->profile == CA_PROFILE_NODE &&
        (rv = add_node_san(x, req->host, req->node_tag, errmsg)) != 0)
        goto err;

    if (X509_sign(x, sign_key, EVP_sha256()) <= 0) {
        rv = ca__ossl_fail(errmsg, CMN_ECRYPTO, "signing the certificate failed");
        goto err;
    }
    X509_NAME_free(subject);
    *out = x;
    return 0;
err:
    X509_NAME_free(subject);
    X509_free(x);
    return rv;
}

int ca_client_issue(enum ca_key_type t, const char *name, int64_t not_before, int64_t not_after,
                    const struct ca_signer *signer, const struct cmn_rng *rng, EVP_PKEY **key,
                    X509 **cert, char *errmsg)
{
    *cert = NULL;
    int rv = ca_key_generate(t, key, errmsg);
    if (rv != 0)
        return rv;
    struct ca_cert_req req = {
        .profile = CA_PROFILE_CLIENT,
        .cn = name,
        .not_before = not_before,
        .not_after = not_after,
        .subject_key = *key,
    };
    rv = ca_cert_issue(&req, signer, rng, cert, errmsg);
    if (rv != 0) {
        EVP_PKEY_free(*key);
        *key = NULL;
    }
    return rv;
}
