/* TOTP on liboath (ca/totp.h). */
#include "ca/totp.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <liboath/oath.h>
#include <openssl/crypto.h>

/* liboath's global initialisation; the library keeps no other state. */
static int oath_ready(char *errmsg)
{
    int rv = oath_init();
    return rv == OATH_OK ? 0 : cmn_fail(errmsg, CMN_ECRYPTO, "liboath: %s", oath_strerror(rv));
}

/* Decodes secret into a buffer the caller wipes and frees (liboath's own allocation). */
static int decode(const char *secret, char **key, size_t *len, char *errmsg)
{
    *key = NULL;
    *len = 0;
    size_t n = strlen(secret);
    if (n == 0 || n > CA_TOTP_MAX_B32)
        return cmn_fail(errmsg, CMN_EINVALID,
                        "the two-factor key must be 16 to %d base32 characters", CA_TOTP_MAX_B32);
    int rv = oath_ready(errmsg);
    if (rv != 0)
        return rv;
    rv = oath_base32_decode(secret, n, key, len);
    if (rv != OATH_OK)
        return cmn_fail(errmsg, CMN_EINVALID,
                        "the two-factor key is not base32 (the letters A-Z and digits 2-7)");
    if (*len < CA_TOTP_MIN_BYTES) {
        OPENSSL_cleanse(*key, *len);
        free(*key);
        *key = NULL;
        return cmn_fail(errmsg, CMN_EINVALID,
                        "the two-factor key is too short: at least %d bytes (16 base32 characters)",
                        CA_TOTP_MIN_BYTES);
    }
    return 0;
}

static void drop(char *key, size_t len)
{
    if (key)
        OPENSSL_cleanse(key, len);
    free(key);
}

int ca_totp_secret_new(const struct cmn_rng *rng, char out[CA_TOTP_SECRET_B32 + 1], char *errmsg)
{
    uint8_t raw[CA_TOTP_SECRET_BYTES];
    if (cmn_random(rng, raw, sizeof raw) != 0)
        return cmn_fail(errmsg, CMN_EIO, "no randomness for the two-factor key");
    int rv = oath_ready(errmsg);
    char *b32 = NULL;
    size_t len = 0;
    if (rv == 0 && oath_base32_encode((const char *)raw, sizeof raw, &b32, &len) != OATH_OK)
        rv = cmn_fail(errmsg, CMN_ENOMEM, "out of memory");
    OPENSSL_cleanse(raw, sizeof raw);
    if (rv == 0 && len != CA_TOTP_SECRET_B32)
        rv = cmn_fail(errmsg, CMN_ECRYPTO, "liboath: unexpected base32 length %zu", len);
    if (rv == 0)
        memcpy(out, b32, CA_TOTP_SECRET_B32 + 1);
    drop(b32, len);
    return rv;
}

int ca_totp_secret_check(const char *s, char *errmsg)
{
    char *key;
    size_t len;
    int rv = decode(s, &key, &len, errmsg);
    drop(key, len);
    return rv;
}

bool ca_totp_code_form(const char *code)
{
    if (strlen(code) != CA_TOTP_DIGITS)
        return false;
    for (size_t i = 0; i < CA_TOTP_DIGITS; i++)
        if (code[i] < '0' || code[i] > '9')
            return false;
    return true;
}

int ca_totp_verify(const char *secret, int64_t now, const char *code, uint64_t *step, char *errmsg)
{
    if (!ca_totp_code_form(code))
        return cmn_fail(errmsg, CMN_EINVALID, "the code must be %d digits", CA_TOTP_DIGITS);
    char *key;
    size_t len;
    int rv = decode(secret, &key, &len, errmsg);
    if (rv != 0)
        return rv;
    int pos = 0;
    uint64_t counter = 0;
    int got = oath_totp_validate3(key, len, (time_t)now, CA_TOTP_STEP_SECS, 0, CA_TOTP_WINDOW, &pos,
                                  &counter, code);
    drop(key, len);
    if (got < 0)
        return cmn_fail(errmsg, CMN_EDENIED, "wrong code");
    *step = counter;
    return 0;
}

int ca_totp_code(const char *secret, int64_t now, char out[CA_TOTP_DIGITS + 1], char *errmsg)
{
    char *key;
    size_t len;
    int rv = decode(secret, &key, &len, errmsg);
    if (rv != 0)
        return rv;
    if (oath_totp_generate(key, len, (time_t)now, CA_TOTP_STEP_SECS, 0, CA_TOTP_DIGITS, out) !=
        OATH_OK)
        rv = cmn_fail(errmsg, CMN_ECRYPTO, "liboath cannot make the code");
    drop(key, len);
    return rv;
}
