/* Private-key types Corvid issues with, and fresh key generation. */
#ifndef CORVID_CA_KEY_H
#define CORVID_CA_KEY_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/evp.h>

#include "common/err.h"

/* The key types Corvid generates (DESIGN.md §8 `KeyType`). */
enum ca_key_type {
    CA_KEY_EC_P256 = 0, /* default */
    CA_KEY_EC_P384,
    CA_KEY_RSA_2048,
    CA_KEY_RSA_3072,
    CA_KEY_RSA_4096,
};
#define CA_KEY_DEFAULT CA_KEY_EC_P256

/* "EC-P256", "EC-P384", "RSA-2048", "RSA-3072", "RSA-4096"; static, never NULL. */
const char *ca_key_type_name(enum ca_key_type t);

/* Parses one of the names above (ASCII case-insensitive). CMN_EINVALID otherwise. */
int ca_key_type_parse(const char *s, enum ca_key_type *out, char *errmsg) CMN_MUST_CHECK;

/* Generates a fresh key with OpenSSL's DRBG. On success *out is a new key owned by the caller
 * (EVP_PKEY_free). CMN_EINVALID for an unknown type, CMN_ECRYPTO when generation fails. */
int ca_key_generate(enum ca_key_type t, EVP_PKEY **out, char *errmsg) CMN_MUST_CHECK;

/* Which of the types above key is (public or private; borrowed). CMN_EUNSUPPORTED for any
 * other key (e.g. RSA-1024, P-521, Ed25519), CMN_ECRYPTO when OpenSSL could not tell (out of
 * memory). */
int ca_key_type_of(const EVP_PKEY *key, enum ca_key_type *out) CMN_MUST_CHECK;

/* Human description of any key: "EC-P256", "EC-P521", "RSA-1024", "ED25519", ... Writes a
 * NUL-terminated string of at most n-1 bytes into out. */
void ca_key_describe(const EVP_PKEY *key, char *out, size_t n);

/* True when key is strong enough to be certified by Corvid: RSA 2048..16384 bits or EC on
 * P-256, P-384 or P-521. Used for keys that come from outside (CSRs). */
bool ca_key_acceptable(const EVP_PKEY *key);
/* The same as a code: 0, CMN_EUNSUPPORTED (no message: the caller names the key), or
 * CMN_ECRYPTO with a message when OpenSSL could not read the key (out of memory), which must
 * not be reported as an unsupported key. */
int ca_key_check(const EVP_PKEY *key, char *errmsg) CMN_MUST_CHECK;

/* True when key is RSA (its certificates then also carry keyEncipherment). */
bool ca_key_is_rsa(const EVP_PKEY *key);

#endif
