/* AES-256-GCM sealing of secrets under the master key (format: ca/seal.h, README). */
#include "ca/seal.h"

#include <limits.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "ca/internal.h"

/* Blob layout, version 1:
 *   "CVSL"  4 bytes   magic
 *   0x01    1 byte    format version (AES-256-GCM, 96-bit nonce, 128-bit tag)
 *   id      8 bytes   identifier of the master key (ca_master_key.id)
 *   nonce  12 bytes   random
 *   ciphertext        as long as the plaintext
 *   tag    16 bytes
 * Associated data: the 25 header bytes, then the purpose label. The header is authenticated so
 * that a blob cannot be relabelled to another key or version; the label, so that it cannot be
 * used for another purpose. */
static const uint8_t magic[4] = {'C', 'V', 'S', 'L'};
#define SEAL_V1    1
#define NONCE_SIZE 12

/* Derivation labels: distinct, so the AES key and the public identifier are independent. */
static const char label_aead[] = "corvid master key: AES-256-GCM sealing v1";
static const char label_id[] = "corvid master key: identifier v1";

static int hmac(const uint8_t *key, size_t klen, const char *label, uint8_t out[32])
{
    size_t got = 0;
    if (EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, klen, (const unsigned char *)label,
                  strlen(label), out, 32, &got) == NULL ||
        got != 32)
        return CMN_ECRYPTO;
    return 0;
}

int ca_master_key_init(struct ca_master_key *mk, const uint8_t *bytes, size_t len, char *errmsg)
{
    memset(mk, 0, sizeof *mk);
    if (len != CA_MASTER_KEY_SIZE)
        return cmn_fail(errmsg, CMN_EINVALID, "a master key is %d bytes, not %zu",
                        CA_MASTER_KEY_SIZE, len);
    uint8_t id[32];
    if (hmac(bytes, len, label_aead, mk->aead) != 0 || hmac(bytes, len, label_id, id) != 0) {
        ca_master_key_fini(mk);
        return ca__ossl_fail(errmsg, CMN_ECRYPTO, "deriving the master key failed");
    }
    memcpy(mk->id, id, sizeof mk->id);
    OPENSSL_cleanse(id, sizeof id);
    return 0;
}

void ca_master_key_fini(struct ca_master_key *mk)
{
    OPENSSL_cleanse(mk, sizeof *mk);
}

void ca_master_key_id_hex(const uint8_t id[CA_SEAL_ID_SIZE], char out[CA_SEAL_ID_HEX])
{
    cmn_hex_lower(id, CA_SEAL_ID_SIZE, out);
}

int ca_master_keys_parse(const uint8_t *bytes, size_t len,
                         struct ca_master_key keys[CA_MASTER_KEYS_MAX], size_t *n, char *errmsg)
{
    *n = 0;
    if (len == 0 || len % CA_MASTER_KEY_SIZE != 0 || len / CA_MASTER_KEY_SIZE > CA_MASTER_KEYS_MAX)
        return cmn_fail(errmsg, CMN_EINVALID,
                        "holds %zu bytes: a master key file holds %d random bytes (%d while a "
                        "rotation is in progress)",
                        len, CA_MASTER_KEY_SIZE, CA_MASTER_KEY_SIZE * CA_MASTER_KEYS_MAX);
    size_t count = len / CA_MASTER_KEY_SIZE;
    for (size_t i = 0; i < count; i++) {
        int rv = ca_master_key_init(&keys[i], bytes + i * CA_MASTER_KEY_SIZE, CA_MASTER_KEY_SIZE,
                                    errmsg);
        if (rv != 0) {
            for (size_t j = 0; j < i; j++)
                ca_master_key_fini(&keys[j]);
            return rv;
        }
    }
    if (count == 2 && memcmp(keys[0].id, keys[1].id, CA_SEAL_ID_SIZE) == 0) {
        for (size_t j = 0; j < count; j++)
            ca_master_key_fini(&keys[j]);
        return cmn_fail(errmsg, CMN_EINVALID, "holds the same key twice");
    }
    *n = count;
    return 0;
}

bool ca_seal_sniff(const void *blob, size_t len)
{
    const uint8_t *p = blob;
    return len >= sizeof magic + 1 && memcmp(p, magic, sizeof magic) == 0 && p[4] == SEAL_V1;
}

int ca_seal_key_id(const void *blob, size_t len, uint8_t id[CA_SEAL_ID_SIZE])
{
    struct cmn_cur c;
    const uint8_t *m, *i;
    uint8_t v;
    cmn_cur_init(&c, blob, len);
    if (cmn_cur_take(&c, sizeof magic, &m) != 0 || cmn_cur_u8(&c, &v) != 0 ||
        cmn_cur_take(&c, CA_SEAL_ID_SIZE, &i) != 0)
        return CMN_ETRUNCATED;
    if (memcmp(m, magic, sizeof magic) != 0)
        return CMN_EMALFORMED;
    memcpy(id, i, CA_SEAL_ID_SIZE);
    return 0;
}

/* One AES-256-GCM pass; in and out are both n bytes. Encrypts and writes tag, or decrypts and
 * checks it. */
static int gcm(bool enc, const struct ca_master_key *mk, const uint8_t *header, const char *purpose,
               const uint8_t *in, size_t n, uint8_t *out, uint8_t *tag)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL)
        return CMN_ENOMEM;
    const uint8_t *nonce = header + sizeof magic + 1 + CA_SEAL_ID_SIZE;
    int len = 0, ok;
    ok = EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) == 1 &&
         EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_SIZE, NULL) == 1 &&
         EVP_CipherInit_ex(ctx, NULL, NULL, mk->aead, nonce, enc) == 1 &&
         EVP_CipherUpdate(ctx, NULL, &len, header, CA_SEAL_HEADER) == 1 &&
         EVP_CipherUpdate(ctx, NULL, &len, (const unsigned char *)purpose, (int)strlen(purpose)) ==
             1 &&
         (n == 0 || EVP_CipherUpdate(ctx, out, &len, in, (int)n) == 1);
    if (ok && !enc)
        ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, CA_SEAL_TAG, tag) == 1;
    int rv = ok ? 0 : CMN_ECRYPTO;
    if (ok && EVP_CipherFinal_ex(ctx, out + (n ? len : 0), &len) != 1)
        rv = enc ? CMN_ECRYPTO : CMN_EBADSIG; /* decrypting, this is the tag check */
    if (rv == 0 && enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, CA_SEAL_TAG, tag) != 1)
        rv = CMN_ECRYPTO;
    EVP_CIPHER_CTX_free(ctx);
    return rv;
}

static int check_purpose(const char *purpose, char *errmsg)
{
    if (purpose == NULL || purpose[0] == '\0' || strlen(purpose) > 256)
        return cmn_fail(errmsg, CMN_EINVALID, "sealing needs a purpose label");
    return 0;
}

int ca_seal(const struct ca_master_key *mk, const char *purpose, const struct cmn_rng *rng,
            const void *plain, size_t len, struct cmn_buf *out, char *errmsg)
{
    int rv = check_purpose(purpose, errmsg);
    if (rv != 0)
        return rv;
    if (len > CA_SEAL_MAX)
        return cmn_fail(errmsg, CMN_ETOOBIG, "a sealed secret is at most %u bytes", CA_SEAL_MAX);
    size_t start = out->len;
    if ((rv = cmn_buf_reserve(out, len + CA_SEAL_OVERHEAD)) != 0)
        return cmn_fail(errmsg, rv, "out of memory");
    uint8_t *h = out->data + start;
    memcpy(h, magic, sizeof magic);
    h[4] = SEAL_V1;
    memcpy(h + 5, mk->id, CA_SEAL_ID_SIZE);
    if ((rv = cmn_random(rng, h + 5 + CA_SEAL_ID_SIZE, NONCE_SIZE)) != 0)
        return cmn_fail(errmsg, CMN_EIO, "no randomness for the nonce");
    rv = gcm(true, mk, h, purpose, plain, len, h + CA_SEAL_HEADER, h + CA_SEAL_HEADER + len);
    if (rv != 0) {
        OPENSSL_cleanse(h, len + CA_SEAL_OVERHEAD);
        return ca__ossl_fail(errmsg, rv, "sealing failed");
    }
    out->len = start + len + CA_SEAL_OVERHEAD;
    return 0;
}

int ca_seal_open(const struct ca_master_key *mk, const char *purpose, const void *blob, size_t len,
                 struct cmn_buf *out, char *errmsg)
{
    int rv = check_purpose(purpose, errmsg);
    if (rv != 0)
        return rv;
    if (!out->secret) /* a plaintext secret only ever lands in memory that is wiped on free */
        return cmn_fail(errmsg, CMN_EINVALID, "opening a sealed secret needs a secret buffer");
    const uint8_t *p = blob;
    size_t m = len < sizeof magic ? len : sizeof magic;
    if (m > 0 && memcmp(p, magic, m) != 0)
        return cmn_fail(errmsg, CMN_EMALFORMED, "not a sealed secret");
    if (len <= sizeof magic)
        return cmn_fail(errmsg, CMN_ETRUNCATED, "sealed secret truncated (%zu bytes)", len);
    if (p[4] != SEAL_V1)
        return cmn_fail(errmsg, CMN_EUNSUPPORTED,
                        "sealed secret of format version %u (this build reads version %u)",
                        (unsigned)p[4], (unsigned)SEAL_V1);
    if (len < CA_SEAL_OVERHEAD)
        return cmn_fail(errmsg, CMN_ETRUNCATED, "sealed secret truncated (%zu bytes)", len);
    size_t n = len - CA_SEAL_OVERHEAD;
    if (n > CA_SEAL_MAX)
        return cmn_fail(errmsg, CMN_ETOOBIG, "a sealed secret is at most %u bytes", CA_SEAL_MAX);
    if (memcmp(p + 5, mk->id, CA_SEAL_ID_SIZE) != 0) {
        char want[CA_SEAL_ID_HEX], have[CA_SEAL_ID_HEX];
        ca_master_key_id_hex(p + 5, want);
        ca_master_key_id_hex(mk->id, have);
        return cmn_fail(errmsg, CMN_EBADPASSWORD,
                        "sealed under master key %s, not under this master key (%s)", want, have);
    }
    size_t start = out->len;
    if ((rv = cmn_buf_reserve(out, n + 1)) != 0)
        return cmn_fail(errmsg, rv, "out of memory");
    uint8_t tag[CA_SEAL_TAG];
    memcpy(tag, p + CA_SEAL_HEADER + n, sizeof tag);
    rv = gcm(false, mk, p, purpose, p + CA_SEAL_HEADER, n, out->data + start, tag);
    if (rv != 0) {
        /* Nothing of an unauthenticated plaintext may survive. */
        OPENSSL_cleanse(out->data + start, n);
        ERR_clear_error();
        if (rv == CMN_EBADSIG)
            return cmn_fail(errmsg, rv,
                            "sealed secret fails authentication (altered, or sealed for another "
                            "purpose than '%s')",
                            purpose);
        return cmn_fail(errmsg, rv, "opening a sealed secret failed");
    }
    out->len = start + n;
    return 0;
}
