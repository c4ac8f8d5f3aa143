/* CRL building and signing (v2, SHA-256, CRL number, AKI). */
#include "ca/crl.h"

#include <limits.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "ca/encode.h"
#include "ca/internal.h"

static int serial_from_hex(const char *hex, ASN1_INTEGER **out)
{
    size_t len = hex ? strlen(hex) : 0;
    if (len == 0 || len > 128 || !cmn_is_hex(hex, len))
        return CMN_EINVALID;
    BIGNUM *bn = NULL;
    if (!BN_hex2bn(&bn, hex))
        return CMN_ENOMEM;
    *out = BN_to_ASN1_INTEGER(bn, NULL);
    BN_free(bn);
    return *out ? 0 : CMN_ENOMEM;
}

static bool reason_valid(int r)
{
    return r >= CA_CRL_REASON_NONE && r <= CA_CRL_REASON_AA_COMPROMISE && r != 7;
}

static int add_entry(X509_CRL *crl, const struct ca_crl_entry *e, size_t i, char *errmsg)
{
    if (!reason_valid(e->reason))
        return cmn_fail(errmsg, CMN_EINVALID, "CRL entry %zu: invalid reason code %d", i,
                        e->reason);
    ASN1_INTEGER *serial = NULL;
    int rv = serial_from_hex(e->serial_hex, &serial);
    if (rv != 0)
        return cmn_fail(errmsg, rv, "CRL entry %zu: invalid serial '%.40s'", i,
                        e->serial_hex ? e->serial_hex : "");
    X509_REVOKED *r = X509_REVOKED_new();
    ASN1_TIME *t = ASN1_TIME_set(NULL, (time_t)e->revoked_at);
    rv = CMN_ECRYPTO;
    if (r == NULL || t == NULL || !X509_REVOKED_set_serialNumber(r, serial) ||
        !X509_REVOKED_set_revocationDate(r, t))
        goto out;
    if (e->reason > CA_CRL_REASON_UNSPECIFIED) {
        ASN1_ENUMERATED *code = ASN1_ENUMERATED_new();
        int ok = code && ASN1_ENUMERATED_set(code, e->reason) &&
                 X509_REVOKED_add1_ext_i2d(r, NID_crl_reason, code, 0, 0);
        ASN1_ENUMERATED_free(code);
        if (!ok)
            goto out;
    }
    if (!X509_CRL_add0_revoked(crl, r))
        goto out;
    r = NULL;
    rv = 0;
out:
    X509_REVOKED_free(r);
    ASN1_TIME_free(t);
    ASN1_INTEGER_free(serial);
    if (rv != 0)
        return ca__ossl_fail(errmsg, rv, "CRL entry %zu: building failed", i);
    return 0;
}

int ca_crl_build(const struct ca_crl_params *p, const struct ca_signer *signer,
                 struct cmn_buf *der_out, char *errmsg)
{
    if (signer == NULL || signer->cert == NULL || signer->key == NULL)
        return cmn_fail(errmsg, CMN_EINVALID, "a CRL needs a signer certificate and key");
    if (p->n > 0 && p->entries == NULL)
        return cmn_fail(errmsg, CMN_EINVALID, "CRL entries missing");
    if (p->next_update <= p->this_update)
        return cmn_fail(errmsg, CMN_EINVALID, "CRL nextUpdate must follow thisUpdate");
    if (X509_check_private_key(signer->cert, signer->key) != 1)
        return ca__ossl_fail(errmsg, CMN_EINVALID,
                             "the signer's key does not match the signer's certificate");
    uint32_t flags = X509_get_extension_flags(signer->cert);
    if (!(flags & EXFLAG_CA) ||
        ((flags & EXFLAG_KUSAGE) && !(X509_get_key_usage(signer->cert) & KU_CRL_SIGN)))
        return cmn_fail(errmsg, CMN_EINVALID, "the signer is not a CA allowed to sign CRLs");

    int rv = 0;
    X509_CRL *crl = X509_CRL_new();
    ASN1_TIME *this_up = ASN1_TIME_set(NULL, (time_t)p->this_update);
    ASN1_TIME *next_up = ASN1_TIME_set(NULL, (time_t)p->next_update);
    ASN1_INTEGER *number = ASN1_INTEGER_new();
    X509_EXTENSION *aki = NULL;
    if (crl == NULL || this_up == NULL || next_up == NULL || number == NULL ||
        !X509_CRL_set_version(crl, X509_CRL_VERSION_2) ||
        !X509_CRL_set_issuer_name(crl, X509_get_subject_name(signer->cert)) ||
        !X509_CRL_set1_lastUpdate(crl, this_up) || !X509_CRL_set1_nextUpdate(crl, next_up) ||
        !ASN1_INTEGER_set_uint64(number, p->crl_number) ||
        !X509_CRL_add1_ext_i2d(crl, NID_crl_number, number, 0, 0)) {
        rv = ca__ossl_fail(errmsg, CMN_ECRYPTO, "building the CRL failed");
        goto out;
    }
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, signer->cert, NULL, NULL, crl, 0);
    aki = X509V3_EXT_nconf_nid(NULL, &ctx, NID_authority_key_identifier, "keyid:always");
    if (aki == NULL || !X509_CRL_add_ext(crl, aki, -1)) {
        rv = ca__ossl_fail(errmsg, CMN_ECRYPTO,
                           "adding the authority key identifier to the CRL failed");
        goto out;
    }
    for (size_t i = 0; i < p->n; i++)
        if ((rv = add_entry(crl, &p->entries[i], i, errmsg)) != 0)
            goto out;
    if (!X509_CRL_sort(crl) || X509_CRL_sign(crl, signer->key, EVP_sha256()) <= 0) {
        rv = ca__ossl_fail(errmsg, CMN_ECRYPTO, "signing the CRL failed");
        goto out;
    }
    unsigned char *der = NULL;
    int len = i2d_X509_CRL(crl, &der);
    if (len <= 0) {
        rv = ca__ossl_fail(errmsg, CMN_ECRYPTO, "encoding the CRL failed");
        goto out;
    }
    rv = cmn_buf_append(der_out, der, (size_t)len);
    OPENSSL_free(der);
    if (rv != 0)
        rv = cmn_fail(errmsg, rv, "out of memory");
out:
    X509_EXTENSION_free(aki);
    ASN1_INTEGER_free(number);
    ASN1_TIME_free(this_up);
    ASN1_TIME_free(next_up);
    X509_CRL_free(crl);
    return rv;
}

int ca_crl_to_pem(const void *der, size_t n, struct cmn_buf *out, char *errmsg)
{
    if (n > (size_t)LONG_MAX)
        return cmn_fail(errmsg, CMN_ETOOBIG, "CRL too large");
    const unsigned char *q = der;
    X509_CRL *crl = d2i_X509_CRL(NULL, &q, (long)n);
    if (crl == NULL)
        return ca__ossl_fail(errmsg, CMN_EMALFORMED, "CRL DER does not decode");
    BIO *bio = BIO_new(BIO_s_mem());
    int rv = bio && PEM_write_bio_X509_CRL(bio, crl) ? ca__bio_to_buf(bio, out) : CMN_ECRYPTO;
    BIO_free(bio);
    X509_CRL_free(crl);
    if (rv != 0)
        return ca__ossl_fail(errmsg, rv, "writing the CRL as PEM failed");
    return 0;
}
