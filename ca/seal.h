/* Sealing secrets at rest under the cluster master key (Security.MasterKey.Path), sans I/O:
 * AES-256-GCM with a random nonce, a versioned header, and a purpose label bound as associated
 * data, so that a blob sealed for one use (the issuing CA key) never opens as another (a TOTP
 * key). */
#ifndef CORVID_CA_SEAL_H
#define CORVID_CA_SEAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/env.h"
#include "common/err.h"

/* A master key is 32 bytes; a key file holds the current key and, while a rotation is in
 * progress, the previous one after it. */
#define CA_MASTER_KEY_SIZE 32
#define CA_MASTER_KEYS_MAX 2
#define CA_SEAL_ID_SIZE    8 /* key identifier carried in every blob */
#define CA_SEAL_ID_HEX     (2 * CA_SEAL_ID_SIZE + 1)
#define CA_SEAL_HEADER     25 /* magic(4) version(1) key id(8) nonce(12) */
#define CA_SEAL_TAG        16
#define CA_SEAL_OVERHEAD   (CA_SEAL_HEADER + CA_SEAL_TAG)
#define CA_SEAL_MAX        (1u << 20) /* largest secret sealed or opened */

/* Purpose labels (associated data). A new use of sealing gets its own label; changing what a
 * label's plaintext means needs a new label, never a reuse. */
#define CA_SEAL_ISSUING_CA  "corvid issuing-ca key v1"
#define CA_SEAL_TOTP        "corvid totp key v1"
#define CA_SEAL_SERVER_CERT "corvid server certificate v1" /* a replacement's .pfx */

/* One master key, expanded: the AES key and the identifier are both derived from the 32 file
 * bytes (HMAC-SHA256 with distinct labels), so the file bytes themselves never key AES and the
 * identifier reveals nothing about them. Secret: release with ca_master_key_fini. */
struct ca_master_key {
    uint8_t aead[32];
    uint8_t id[CA_SEAL_ID_SIZE];
};

/* Expands CA_MASTER_KEY_SIZE bytes into mk. CMN_EINVALID for another length. */
int ca_master_key_init(struct ca_master_key *mk, const uint8_t *bytes, size_t len,
                       char *errmsg) CMN_MUST_CHECK;
/* Wipes mk. */
void ca_master_key_fini(struct ca_master_key *mk);
/* The identifier as lower-case hex (CA_SEAL_ID_HEX bytes): safe to log and to compare between
 * nodes. */
void ca_master_key_id_hex(const uint8_t id[CA_SEAL_ID_SIZE], char out[CA_SEAL_ID_HEX]);

/* The contents of a master key file: one key (32 bytes), or during a rotation two (64 bytes:
 * the new current key, then the previous one). Fills keys[0..*n) (current first); on failure
 * nothing is left in keys. CMN_EINVALID names the length found, never the bytes. */
int ca_master_keys_parse(const uint8_t *bytes, size_t len,
                         struct ca_master_key keys[CA_MASTER_KEYS_MAX], size_t *n,
                         char *errmsg) CMN_MUST_CHECK;

/* Seals plain[0..len) for `purpose` under mk, with a nonce from rng, appending
 * header || ciphertext || tag to out (len + CA_SEAL_OVERHEAD bytes). Sealing twice gives two
 * different blobs. CMN_ETOOBIG above CA_SEAL_MAX, CMN_EIO when rng fails, CMN_ECRYPTO. */
int ca_seal(const struct ca_master_key *mk, const char *purpose, const struct cmn_rng *rng,
            const void *plain, size_t len, struct cmn_buf *out, char *errmsg) CMN_MUST_CHECK;

/* Opens a blob made by ca_seal with the same key and purpose, appending the plaintext to out,
 * which must be a secret buffer (CMN_EINVALID otherwise). Fails closed, with nothing appended:
 * CMN_EMALFORMED (not a sealed blob), CMN_EUNSUPPORTED (a later format version),
 * CMN_ETRUNCATED, CMN_EBADPASSWORD (sealed under another master key: the message names both
 * identifiers), CMN_EBADSIG (the authentication failed: altered bytes, or sealed for another
 * purpose). */
int ca_seal_open(const struct ca_master_key *mk, const char *purpose, const void *blob, size_t len,
                 struct cmn_buf *out, char *errmsg) CMN_MUST_CHECK;

/* True when blob starts like a sealed blob of a known version (cheap; proves nothing). */
bool ca_seal_sniff(const void *blob, size_t len);
/* The identifier of the key a blob was sealed under. CMN_EMALFORMED / CMN_ETRUNCATED. */
int ca_seal_key_id(const void *blob, size_t len, uint8_t id[CA_SEAL_ID_SIZE]) CMN_MUST_CHECK;

#endif
