/* The one certificate loader: a .pfx/.p12, or certificates in PEM, DER or base64 with a PEM
 * private key (in the same file or another), told apart by content. Used by the CLI's --cert
 * and uploads, the benchmarks and the node's identity. */
#ifndef CORVID_CA_CERTFILE_H
#define CORVID_CA_CERTFILE_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "ca/cert.h"
#include "common/err.h"

/* What a file held. Owns the key and the list; release with ca_certfile_fini. */
struct ca_certfile {
    X509 *leaf;                /* borrowed from certs: the one matching key, else the first */
    EVP_PKEY *key;             /* NULL when the file holds none (or none was read) */
    struct ca_cert_list certs; /* every certificate, in file order */
    bool pfx;                  /* the file was PKCS#12 */
};

/* Flags. */
#define CA_CERTFILE_KEY 1u /* a private key is required (PEM: read it) */
#define CA_CERTFILE_PFX 2u /* PKCS#12 only: anything else fails as ca_pfx_parse does */

/* Which step failed, for callers that explain each in their own words. */
enum ca_certfile_step {
    CA_CERTFILE_READ,     /* reading the file (ca_certfile_load) */
    CA_CERTFILE_PKCS12,   /* opening the PKCS#12 (CMN_EBADPASSWORD: ask for a password) */
    CA_CERTFILE_CERTS,    /* no certificate could be read from the bytes */
    CA_CERTFILE_KEYREAD,  /* the PEM key does not decode (CMN_EBADPASSWORD: ask) */
    CA_CERTFILE_NOKEY,    /* a key was required and there is none (CMN_ENOTFOUND) */
    CA_CERTFILE_MISMATCH, /* the key matches none of the certificates (CMN_EINVALID) */
};

/* Parses p/n (borrowed). PKCS#12 is recognised by its structure and opened with password
 * (NULL or "" tries no password, as ca_pfx_parse). Otherwise the certificates are read and,
 * with CA_CERTFILE_KEY or when key_p is given, the first PEM private key of key_p/key_n (or of
 * p/n when key_p is NULL), decrypted with password; leaf is then the certificate it matches.
 * out is filled only on success; on failure *step (may be NULL) says where, and errmsg why.
 * Errors: as ca_pfx_parse, ca_certs_from_bytes and ca_key_from_pem, CMN_ENOTFOUND (no key),
 * CMN_EINVALID (a key of another certificate), CMN_ENOMEM. */
int ca_certfile_parse(const void *p, size_t n, const void *key_p, size_t key_n,
                      const char *password, unsigned flags, struct ca_certfile *out,
                      enum ca_certfile_step *step, char *errmsg) CMN_MUST_CHECK;

/* As ca_certfile_parse on the contents of path and key_path (may be NULL), read whole (at most
 * CA_INPUT_MAX bytes each, into buffers wiped after): CMN_EIO "cannot read PATH: reason",
 * CMN_ETOOBIG "PATH is larger than N bytes". */
int ca_certfile_load(const char *path, const char *key_path, const char *password, unsigned flags,
                     struct ca_certfile *out, enum ca_certfile_step *step,
                     char *errmsg) CMN_MUST_CHECK;

/* The certificates other than the leaf, in file order, as new references appended to out (the
 * caller's): the chain to send after the leaf. */
int ca_certfile_chain(const struct ca_certfile *f, struct ca_cert_list *out) CMN_MUST_CHECK;

void ca_certfile_fini(struct ca_certfile *f);

#endif
