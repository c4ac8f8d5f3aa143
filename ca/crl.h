/* Certificate revocation lists: build and sign a v2 CRL for the cluster CA. */
#ifndef CORVID_CA_CRL_H
#define CORVID_CA_CRL_H

#include <stddef.h>
#include <stdint.h>

#include "ca/cert.h"
#include "common/buf.h"
#include "common/err.h"

/* RFC 5280 §5.3.1 reason codes. */
enum ca_crl_reason {
    CA_CRL_REASON_NONE = -1,       /* no reasonCode extension */
    CA_CRL_REASON_UNSPECIFIED = 0, /* written as no extension, as RFC 5280 asks */
    CA_CRL_REASON_KEY_COMPROMISE = 1,
    CA_CRL_REASON_CA_COMPROMISE = 2,
    CA_CRL_REASON_AFFILIATION_CHANGED = 3,
    CA_CRL_REASON_SUPERSEDED = 4,
    CA_CRL_REASON_CESSATION_OF_OPERATION = 5,
    CA_CRL_REASON_CERTIFICATE_HOLD = 6,
    CA_CRL_REASON_REMOVE_FROM_CRL = 8,
    CA_CRL_REASON_PRIVILEGE_WITHDRAWN = 9,
    CA_CRL_REASON_AA_COMPROMISE = 10,
};

struct ca_crl_entry {
    const char *serial_hex; /* hex digits (either case), 1..128 of them (borrowed) */
    int64_t revoked_at;     /* unix seconds */
    int reason;             /* enum ca_crl_reason */
};

struct ca_crl_params {
    const struct ca_crl_entry *entries; /* borrowed; n may be 0 */
    size_t n;
    int64_t this_update;
    int64_t next_update; /* > this_update */
    uint64_t crl_number; /* monotonically increasing per issuer */
};

/* Builds a v2 CRL signed with SHA-256 by signer (a CA with cRLSign; borrowed), with the CRL
 * number and authority key identifier extensions, entries sorted by serial. Appends the DER to
 * der_out. Errors: CMN_EINVALID (bad serial, reason, times or signer), CMN_ECRYPTO. */
int ca_crl_build(const struct ca_crl_params *p, const struct ca_signer *signer,
                 struct cmn_buf *der_out, char *errmsg) CMN_MUST_CHECK;

/* PEM ("X509 CRL") of a DER CRL; appends to out. CMN_EMALFORMED when der does not decode. */
int ca_crl_to_pem(const void *der, size_t n, struct cmn_buf *out, char *errmsg) CMN_MUST_CHECK;

#endif
