/* Encodings: base64, DER and PEM of certificates and private keys, and certificate loading
 * from bytes in any common form (DER, PEM, base64 of DER). */
#ifndef CORVID_CA_ENCODE_H
#define CORVID_CA_ENCODE_H

#include <stddef.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "ca/cert.h"
#include "common/buf.h"
#include "common/err.h"

/* Largest certificate, key, CSR or PFX input accepted from outside (1 MiB): CMN_ETOOBIG above. */
#define CA_INPUT_MAX (1u << 20)

/* All output functions append to `out` (NUL-terminated after the appended bytes). Functions
 * that write private-key material set out->secret first, so that it is wiped on free. */

/* Standard base64 with padding, on one line. */
int ca_b64_encode(const void *p, size_t n, struct cmn_buf *out) CMN_MUST_CHECK;
/* Decodes standard base64 (padding required, ASCII whitespace ignored). Any other character,
 * misplaced '=' or a length that is not a multiple of 4 is CMN_EMALFORMED. */
int ca_b64_decode(const char *s, size_t n, struct cmn_buf *out, char *errmsg) CMN_MUST_CHECK;

int ca_cert_to_der(const X509 *x, struct cmn_buf *out) CMN_MUST_CHECK;
int ca_cert_to_pem(const X509 *x, struct cmn_buf *out) CMN_MUST_CHECK;
/* Every certificate of l, in order, as concatenated PEM. */
int ca_certs_to_pem(const struct ca_cert_list *l, struct cmn_buf *out) CMN_MUST_CHECK;

/* Exactly one DER certificate, with no trailing bytes. *out is owned by the caller. */
int ca_cert_from_der(const void *p, size_t n, X509 **out, char *errmsg) CMN_MUST_CHECK;

/* Loads certificates from DER, PEM (one or many CERTIFICATE blocks; other blocks such as
 * private keys are skipped) or base64 of DER (RavenDB's PUT body). Appends to out (owned by the
 * caller). CMN_EMALFORMED when nothing parses or a PEM block is corrupt, CMN_ENOTFOUND for PEM
 * text without any certificate, CMN_ETOOBIG above CA_INPUT_MAX. Does not read PKCS#12: see
 * ca_pfx_sniff / ca_pfx_parse. */
int ca_certs_from_bytes(const void *p, size_t n, struct ca_cert_list *out,
                        char *errmsg) CMN_MUST_CHECK;
/* As above but requires exactly one certificate (CMN_EINVALID otherwise). */
int ca_cert_from_bytes(const void *p, size_t n, X509 **out, char *errmsg) CMN_MUST_CHECK;

/* PEM PKCS#8 ("PRIVATE KEY"), or when password is non-NULL and non-empty, "ENCRYPTED PRIVATE
 * KEY" with PBES2: AES-256-CBC, PBKDF2-HMAC-SHA256. Sets out->secret. */
int ca_key_to_pem(EVP_PKEY *key, const char *password, struct cmn_buf *out,
                  char *errmsg) CMN_MUST_CHECK;
/* Reads the first private key of PEM text (PKCS#8 plain or encrypted, or traditional RSA/EC).
 * password may be NULL for plain keys. CMN_EBADPASSWORD for an encrypted key with a wrong or
 * missing password, CMN_ENOTFOUND when there is no key, CMN_EMALFORMED when it does not decode.
 * *out is owned by the caller. */
int ca_key_from_pem(const void *p, size_t n, const char *password, EVP_PKEY **out,
                    char *errmsg) CMN_MUST_CHECK;

#endif
