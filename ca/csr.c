/* PKCS#10 parsing and verification, and policy-bound client certificate issuance from a CSR. */
#include "ca/csr.h"

#include <openssl/err.h>
#include <openssl/pem.h>

#include "ca/encode.h"
#include "ca/ident.h"
#include "ca/internal.h"
#include "ca/key.h"

static int no_pass_cb(char *buf, int size, int rwflag, void *u)
{
    (void)buf, (void)size, (void)rwflag, (void)u;
    return -1;
}

int ca_csr_parse(const void *p, size_t n, X509_REQ **out, char *errmsg)
{
    *out = NULL;
    if (n > CA_INPUT_MAX)
        return cmn_fail(errmsg, CMN_ETOOBIG, "CSR larger than %u bytes", CA_INPUT_MAX);
    if (n == 0)
        return cmn_fail(errmsg, CMN_EMALFORMED, "empty CSR");
    X509_REQ *req = NULL;
    if (ca__looks_pem(p, n)) {
        BIO *bio = ca__bio_ro(p, n);
        if (bio == NULL)
            return cmn_fail(errmsg, CMN_ENOMEM, "out of memory");
        req = PEM_read_bio_X509_REQ(bio, NULL, no_pass_cb, NULL);
        BIO_free(bio);
        if (req == NULL)
            return ca__ossl_fail(errmsg, CMN_EMALFORMED,
                                 "no valid CERTIFICATE REQUEST block in PEM text");
    } else {
        const unsigned char *q = p;
        req = d2i_X509_REQ(NULL, &q, (long)n);
        if (req == NULL)
            return ca__ossl_fail(errmsg, CMN_EMALFORMED, "CSR DER does not decode");
        if ((size_t)(q - (const unsigned char *)p) != n) {
            X509_REQ_free(req);
            return cmn_fail(errmsg, CMN_EMALFORMED, "trailing bytes after the CSR DER");
        }
    }
    EVP_PKEY *pub = X509_REQ_get0_pubkey(req);
    if (pub == NULL) {
        X509_REQ_free(req);
        return ca__ossl_fail(errmsg, CMN_EMALFORMED, "CSR public key does not decode");
    }
    if (X509_REQ_verify(req, pub) != 1) {
        X509_REQ_free(req);
        return ca__ossl_fail(errmsg, CMN_EBADSIG,
                             "CSR signature does not verify with its own public key");
    }
    ERR_clear_error();
    *out = req;
    return 0;
}

int ca_csr_issue_client(const X509_REQ *req, const struct ca_signer *signer,
                        const struct ca_csr_policy *policy, const struct cmn_rng *rng, X509 **out,
                        char *errmsg)
{
    *out = NULL;
    if (policy == NULL || policy->max_validity_secs <= 0)
        return cmn_fail(errmsg, CMN_EINVALID, "CSR policy needs a positive maximum validity");
    /* X509_REQ_get0_pubkey only fills a cache in OpenSSL 3.0; the request is not changed. */
    EVP_PKEY *pub = X509_REQ_get0_pubkey((X509_REQ *)req);
    if (pub == NULL)
        return ca__ossl_fail(errmsg, CMN_EMALFORMED, "CSR public key does not decode");
    int rv = ca_key_check(pub, errmsg);
    if (rv != 0 && rv != CMN_EUNSUPPORTED)
        return rv;
    if (rv != 0) {
        char desc[32];
        ca_key_describe(pub, desc, sizeof desc);
        return cmn_fail(errmsg, CMN_EUNSUPPORTED,
                        "CSR key %s is not accepted (RSA 2048+ or EC P-256/P-384/P-521)", desc);
    }
    struct ca_cert_req cr = {
        .profile = CA_PROFILE_CLIENT,
        .cn = policy->name,
        .not_before = policy->not_before,
        .not_after = policy->not_after,
        .subject_key = pub,
    };
    if (cr.not_after > cr.not_before && cr.not_after - cr.not_before > policy->max_validity_secs)
        cr.not_after = cr.not_before + policy->max_validity_secs;
    int64_t signer_nb, signer_na;
    if (signer != NULL && signer->cert != NULL &&
        ca_validity(signer->cert, &signer_nb, &signer_na) == 0 && cr.not_after > signer_na)
        cr.not_after = signer_na;
    return ca_cert_issue(&cr, signer, rng, out, errmsg);
}
