/* What identifies a certificate: thumbprint, fingerprint, pinning hash, serial, validity,
 * EKUs, SANs, names, node tag; and "was this certificate issued by that CA". */
#ifndef CORVID_CA_IDENT_H
#define CORVID_CA_IDENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "common/buf.h"
#include "common/err.h"

/* Buffer sizes including the terminating NUL. */
#define CA_THUMBPRINT_SIZE 41  /* SHA-1 of the DER, 40 upper-case hex digits */
#define CA_SHA256_HEX_SIZE 65  /* SHA-256 of the DER, 64 upper-case hex digits */
#define CA_PKPH_SIZE       45  /* base64(SHA-256(DER SubjectPublicKeyInfo)), 44 characters */
#define CA_SERIAL_HEX_SIZE 129 /* serials up to 64 bytes, upper-case hex */
#define CA_NODE_TAG_SIZE   5

/* Extended key usage bits. */
#define CA_EKU_SERVER 1u /* serverAuth */
#define CA_EKU_CLIENT 2u /* clientAuth */
#define CA_EKU_ANY    4u /* no EKU extension, or anyExtendedKeyUsage: not restricted */

/* The fixed-size facts about a certificate, for storage keys and authentication. */
struct ca_ident {
    char thumbprint[CA_THUMBPRINT_SIZE];
    char sha256[CA_SHA256_HEX_SIZE];
    char pkph[CA_PKPH_SIZE];
    char serial[CA_SERIAL_HEX_SIZE];
    int64_t not_before; /* unix seconds */
    int64_t not_after;
    unsigned eku;     /* CA_EKU_* bits */
    bool is_ca;       /* basicConstraints CA:TRUE */
    bool self_signed; /* self-issued: subject == issuer and AKI/SKI agree (the signature is
                       * not checked here: see ca_issued_by(x, x)) */
    char node_tag[CA_NODE_TAG_SIZE]; /* from URI:urn:corvid:node:<TAG>, "" when absent */
};

/* All functions below borrow x. */

/* Fills every field. CMN_EMALFORMED when the certificate has invalid extensions or times,
 * CMN_EUNSUPPORTED for a serial longer than 64 bytes. */
int ca_ident_get(const X509 *x, struct ca_ident *out, char *errmsg) CMN_MUST_CHECK;

int ca_thumbprint(const X509 *x, char out[CA_THUMBPRINT_SIZE]) CMN_MUST_CHECK;
int ca_fingerprint_sha256(const X509 *x, char out[CA_SHA256_HEX_SIZE]) CMN_MUST_CHECK;
/* RavenDB's public-key pinning hash. */
int ca_pkph(const X509 *x, char out[CA_PKPH_SIZE]) CMN_MUST_CHECK;
/* Upper-case hex of the serial's magnitude (even length; "00" for zero; a negative serial, which
 * RFC 5280 forbids, is CMN_EUNSUPPORTED). */
int ca_serial_hex(const X509 *x, char out[CA_SERIAL_HEX_SIZE]) CMN_MUST_CHECK;
int ca_validity(const X509 *x, int64_t *not_before, int64_t *not_after) CMN_MUST_CHECK;
unsigned ca_eku(const X509 *x);
bool ca_is_ca(const X509 *x);
/* The node tag of a node certificate; CMN_ENOTFOUND when it has no urn:corvid:node SAN. */
int ca_node_tag(const X509 *x, char out[CA_NODE_TAG_SIZE]) CMN_MUST_CHECK;
/* Whether x names node tag in any of its URI:urn:corvid:node:<TAG> names: a certificate that
 * several nodes share (a cluster-wide replacement) names each of them. */
bool ca_names_node(const X509 *x, const char *tag);

/* Subject / issuer as one line, most specific first: "CN=Corvid Node A, O=Example". Appends a
 * NUL-terminated string to out. */
int ca_subject_str(const X509 *x, struct cmn_buf *out) CMN_MUST_CHECK;
int ca_issuer_str(const X509 *x, struct cmn_buf *out) CMN_MUST_CHECK;
/* The subject's first CN as UTF-8 (appended to out); CMN_ENOTFOUND without one. */
int ca_subject_cn(const X509 *x, struct cmn_buf *out) CMN_MUST_CHECK;

/* A list of strings; owns the array and each string. Zero-initialised is empty. */
struct ca_strlist {
    char **v;
    size_t n;
};
void ca_strlist_fini(struct ca_strlist *l);

/* Subject alternative names as "IP:127.0.0.1", "IP:::1", "DNS:x", "URI:urn:corvid:node:A",
 * "email:x", "DirName:...", "othername"; non-printable bytes shown as '?'. Empty list without a
 * SAN extension; CMN_EMALFORMED when the extension does not decode. */
int ca_sans(const X509 *x, struct ca_strlist *out, char *errmsg) CMN_MUST_CHECK;

/* 0 when cert names ca_cert as its issuer (names, AKI/SKI and CA key usage agree) and its
 * signature verifies with ca_cert's public key. CMN_EINVALID when the names do not match,
 * CMN_EBADSIG when the signature does not verify. */
int ca_issued_by(const X509 *cert, const X509 *ca_cert, char *errmsg) CMN_MUST_CHECK;

#endif
