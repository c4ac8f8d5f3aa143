/* Certificate signing requests: parse and verify, then issue a client certificate under policy. */
#ifndef CORVID_CA_CSR_H
#define CORVID_CA_CSR_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "ca/cert.h"
#include "common/env.h"
#include "common/err.h"

/* Parses a PKCS#10 request in PEM ("CERTIFICATE REQUEST") or DER and verifies its
 * self-signature. On success *out is owned by the caller (X509_REQ_free).
 * Errors: CMN_ETOOBIG (over CA_INPUT_MAX), CMN_EMALFORMED (does not decode), CMN_EBADSIG (the
 * signature does not verify with the request's own public key: the requester does not hold the
 * key). */
int ca_csr_parse(const void *p, size_t n, X509_REQ **out, char *errmsg) CMN_MUST_CHECK;

/* What the CA grants, whatever the request asks for. */
struct ca_csr_policy {
    const char *name;   /* subject CN of the issued certificate (borrowed); the CSR's own
                         * subject is ignored */
    int64_t not_before; /* requested window (unix seconds) */
    int64_t not_after;
    int64_t max_validity_secs; /* not_after is capped at not_before + this (> 0) */
};

/* Issues a client certificate (CA_PROFILE_CLIENT: clientAuth only; extensions requested in the
 * CSR are ignored) for the CSR's public key. not_after is capped by the policy maximum and by the
 * signer's own NotAfter. req and signer are borrowed; *out is owned by the caller.
 * Errors: CMN_EUNSUPPORTED (weak or unknown key type) and those of ca_cert_issue. */
int ca_csr_issue_client(const X509_REQ *req, const struct ca_signer *signer,
                        const struct ca_csr_policy *policy, const struct cmn_rng *rng, X509 **out,
                        char *errmsg) CMN_MUST_CHECK;

#endif
